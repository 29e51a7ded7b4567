"""Stable-Baselines3 PPO on Robot-Reach, through ``envgym.wrappers.SB3VecEnv``.

One file in the CleanRL spirit: the ``Args`` below, a visible ``make_env``, and SB3 doing the
algorithm (``MlpPolicy``, a Gaussian policy over the 7 joint/gripper targets). The batched
MuJoCo engine steps all worlds in one process; the adapter hands SB3 NumPy arrays, ``dones``
and per-world infos with ``terminal_observation`` (envgym's ``final_obs``) and
``TimeLimit.truncated``, so SB3 bootstraps the value of episodes cut by the 50-step limit.
``VecNormalize`` normalises observations and rewards (its statistics are saved with the model).

Run (one command):

    python baselines/sb3_ppo_robot.py --total-timesteps 1000000

TensorBoard logs, ``model.zip`` and ``vecnormalize.pkl`` go under
``--out-dir/<exp_name>_s<seed>``; SB3's progress bar shows env-steps/s; ``--csv`` writes the
success rate of the episodes that ended in each rollout.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch


@dataclass
class Args:
    exp_name: str = "sb3_ppo_robot"
    """name of this experiment (the run directory is ``<out_dir>/<exp_name>_s<seed>``)"""
    seed: int = 1
    """seed of SB3 and of the envs (SB3 calls ``VecEnv.seed(seed)``: world i gets ``seed + i``)"""
    threads: int = 1
    """CPU threads torch may use (``torch.set_num_threads``); 0 keeps torch's default"""
    physics_threads: int = 1
    """MuJoCo threads of the CPU backend's rollout pool (0: every CPU this process may use)"""
    out_dir: str = "runs"
    """where TensorBoard logs and the model go"""
    csv: str = ""
    """if set, write one CSV row per rollout (success rate of ended episodes) to this path"""
    progress: bool = True
    """show SB3's progress bar (needs tqdm and rich)"""

    # env
    env_id: str = "envgym/Robot-Reach-v0"
    """robot task id"""
    num_envs: int = 64
    """number of worlds stepped together by the batched engine"""
    norm_obs: bool = True
    """normalise observations with ``VecNormalize``"""
    norm_reward: bool = True
    """scale rewards by the running std of the discounted return (``VecNormalize``)"""

    # algorithm (SB3 PPO hyper-parameters)
    total_timesteps: int = 1_000_000
    """env steps in all"""
    n_steps: int = 32
    """rollout length per world between updates"""
    batch_size: int = 512
    """minibatch size"""
    n_epochs: int = 5
    """epochs over each rollout"""
    learning_rate: float = 1e-3
    """Adam learning rate (annealed linearly to 0)"""
    gamma: float = 0.97
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    log_std_init: float = -0.5
    """initial log standard deviation of the Gaussian policy"""
    hidden_dim: int = 256
    """width of the two hidden layers of the policy and value MLPs"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Command-line flags from the ``Args`` fields (``--total-timesteps 1000``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if str(f.type) == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(flag, type=kind, default=f.default)
    return Args(**vars(parser.parse_args(argv)))


# ======================================================================== plumbing: the env
def make_env(args: Args) -> Any:
    """The batched robot engine (MuJoCo CPU backend) as an SB3 ``VecEnv``, normalised."""
    from stable_baselines3.common.vec_env import VecNormalize

    import envgym  # noqa: F401  (registers the envgym/... ids)
    from envgym.wrappers import SB3VecEnv

    envs = gym.make_vec(
        args.env_id,
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        backend="cpu",
        device="cpu",
        num_threads=args.physics_threads or None,
    )
    return VecNormalize(
        SB3VecEnv(envs, seed=args.seed),
        norm_obs=args.norm_obs,
        norm_reward=args.norm_reward,
        gamma=args.gamma,
    )


# ======================================================================== algorithm: SB3 PPO
def train(args: Args) -> dict[str, Any]:
    """Train SB3 PPO and return a summary (also written next to the model)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    run_dir = Path(args.out_dir) / f"{args.exp_name}_s{args.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    envs = make_env(args)

    class SuccessLogger(BaseCallback):
        """Success rate of the episodes that ended in each rollout: to TensorBoard and CSV."""

        def __init__(self) -> None:
            super().__init__()
            self.ended: list[tuple[bool, float, int]] = []
            self.rows: list[dict[str, float]] = []
            self.start = time.time()

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
                if done:  # the adapter's "episode" holds the raw (unnormalised) return
                    ep = info["episode"]
                    self.ended.append((bool(info["success"]), ep["r"], ep["l"]))
            return True

        def _on_rollout_end(self) -> None:
            ended = np.array(self.ended, dtype=np.float64).reshape(-1, 3)
            rate = float(ended[:, 0].mean()) if len(ended) else float("nan")
            self.logger.record("rollout/success_rate", rate)
            self.rows.append({
                "global_step": self.num_timesteps,
                "episodes": len(ended),
                "success_rate": rate,
                "episode_return": float(ended[:, 1].mean()) if len(ended) else float("nan"),
                "episode_length": float(ended[:, 2].mean()) if len(ended) else float("nan"),
                "sps": self.num_timesteps / (time.time() - self.start),
            })  # fmt: skip
            self.ended = []

    def linear(start: float) -> Any:
        return lambda progress_remaining: start * progress_remaining

    logger = SuccessLogger()
    model = PPO(
        "MlpPolicy",
        envs,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=linear(args.learning_rate),
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        ent_coef=args.ent_coef,
        policy_kwargs={
            "net_arch": [args.hidden_dim, args.hidden_dim],
            "log_std_init": args.log_std_init,
        },
        tensorboard_log=str(run_dir),
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    start = time.time()
    model.learn(args.total_timesteps, callback=logger, progress_bar=args.progress)
    model.save(run_dir / "model")
    envs.save(str(run_dir / "vecnormalize.pkl"))
    if args.csv and logger.rows:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(logger.rows[0]))
            w.writeheader()
            w.writerows(logger.rows)
    tail = [r["success_rate"] for r in logger.rows[-5:] if np.isfinite(r["success_rate"])]
    result = {
        "args": dataclasses.asdict(args),
        "global_step": int(model.num_timesteps),
        "wall_s": time.time() - start,
        "final_success_rate": float(np.mean(tail)) if tail else None,
        "model": str(run_dir / "model.zip"),
        "vecnormalize": str(run_dir / "vecnormalize.pkl"),
    }
    (run_dir / "summary.json").write_text(json.dumps(result, indent=1))
    envs.close()
    return result


if __name__ == "__main__":
    print(json.dumps(train(parse_args()), indent=1))
