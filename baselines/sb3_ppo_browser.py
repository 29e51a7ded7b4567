"""Stable-Baselines3 PPO on one browser skill task, through ``envgym.wrappers.SB3VecEnv``.

One file in the CleanRL spirit: the ``Args`` below, a visible ``make_env``, and SB3 doing the
algorithm. SB3 cannot emit the browser's command strings, so ``make_env`` puts
``envgym.wrappers.BrowserSlotActions`` between the browser vector env (N Chromium pages) and
the SB3 adapter: a ``Discrete`` action over the page's interactive elements and a numeric
observation of per-element features built from the instruction and the accessibility tree.

Run (one command):

    python baselines/sb3_ppo_browser.py --task Checkboxes --total-timesteps 25600

TensorBoard logs and the saved model go under ``--out-dir/<exp_name>_<task>_s<seed>``; SB3
prints its progress bar (env-steps/s); ``--csv`` writes the success rate of the episodes that
ended in each rollout. At the end the trained policy and a uniformly random one each play
``--eval-episodes`` episodes on held-out seeds and their success rates are reported.
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

from envgym.core import keys


@dataclass
class Args:
    exp_name: str = "sb3_ppo_browser"
    """name of this experiment (the run directory is ``<out_dir>/<exp_name>_<task>_s<seed>``)"""
    seed: int = 1
    """seed of SB3 and of the envs (SB3 calls ``VecEnv.seed(seed)``: world i gets ``seed + i``)"""
    threads: int = 1
    """CPU threads torch may use (``torch.set_num_threads``); 0 keeps torch's default"""
    out_dir: str = "runs"
    """where TensorBoard logs and the model go"""
    csv: str = ""
    """if set, write one CSV row per rollout (success rate of ended episodes) to this path"""
    progress: bool = True
    """show SB3's progress bar (needs tqdm and rich)"""

    # env
    task: str = "Checkboxes"
    """browser skill task (``envgym/Browser-<task>-v0``)"""
    difficulty: int = 1
    """task difficulty (0..4)"""
    num_envs: int = 8
    """number of Chromium pages stepped together"""
    max_slots: int = 16
    """action slots: slot k acts on the k-th interactive element of the page"""

    # algorithm (SB3 PPO hyper-parameters)
    total_timesteps: int = 25_600
    """env steps in all"""
    n_steps: int = 64
    """rollout length per world between updates"""
    batch_size: int = 128
    """minibatch size"""
    n_epochs: int = 8
    """epochs over each rollout"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    gamma: float = 0.95
    """discount factor"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    hidden_dim: int = 128
    """width of the two hidden layers of the policy and value MLPs"""

    # evaluation
    eval_episodes: int = 64
    """episodes the trained policy and the random policy each play at the end (0: skip)"""
    eval_seed: int = 1_000_000
    """base seed of the evaluation worlds (far from the training seeds)"""


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
def make_browser_env(args: Args) -> Any:
    """The browser vector env (N pages) with slot actions and feature observations."""
    import envgym  # noqa: F401  (registers the envgym/... ids)
    from envgym.browser.ids import browser_id
    from envgym.wrappers import BrowserSlotActions

    envs = gym.make_vec(
        browser_id(args.task),
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        difficulty=args.difficulty,
        device="cpu",
    )
    return BrowserSlotActions(envs, max_slots=args.max_slots)


def make_env(args: Args) -> Any:
    """:func:`make_browser_env` as an SB3 ``VecEnv``."""
    from envgym.wrappers import SB3VecEnv

    return SB3VecEnv(make_browser_env(args), seed=args.seed)


def evaluate(envs: Any, policy: Any, episodes: int, seed: int) -> dict[str, float]:
    """Play until ``episodes`` episodes ended (counting the first ``episodes`` of them) with
    ``policy(obs) -> slots`` on ``envs`` (a :class:`BrowserSlotActions`) reset with ``seed``."""
    obs, _ = envs.reset(seed=seed)
    successes: list[bool] = []
    returns: list[float] = []
    lengths: list[int] = []
    while len(successes) < episodes:
        obs, _, term, trunc, info = envs.step(policy(obs))
        for i in np.flatnonzero((term | trunc).cpu().numpy()):
            successes.append(bool(info["success"][i]))
            returns.append(float(info[keys.EPISODE]["r"][i]))
            lengths.append(int(info[keys.EPISODE]["l"][i]))
    n = episodes
    return {
        "episodes": n,
        "success_rate": float(np.mean(successes[:n])),
        "mean_return": float(np.mean(returns[:n])),
        "mean_length": float(np.mean(lengths[:n])),
    }


# ======================================================================== algorithm: SB3 PPO
def train(args: Args) -> dict[str, Any]:
    """Train SB3 PPO, evaluate it against a random policy, return a summary (also written next
    to the model)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    run_dir = Path(args.out_dir) / f"{args.exp_name}_{args.task}_s{args.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    envs = make_env(args)

    class SuccessLogger(BaseCallback):
        """Success rate of the episodes that ended in each rollout: to TensorBoard and CSV."""

        def __init__(self) -> None:
            super().__init__()
            self.ended: list[bool] = []
            self.lengths: list[int] = []
            self.rows: list[dict[str, float]] = []
            self.start = time.time()

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
                if done:
                    self.ended.append(bool(info["success"]))
                    self.lengths.append(int(info["episode"]["l"]))
            return True

        def _on_rollout_end(self) -> None:
            rate = float(np.mean(self.ended)) if self.ended else float("nan")
            length = float(np.mean(self.lengths)) if self.lengths else float("nan")
            self.logger.record("rollout/success_rate", rate)
            self.rows.append({"global_step": self.num_timesteps, "episodes": len(self.ended),
                              "success_rate": rate, "mean_length": length,
                              "sps": self.num_timesteps / (time.time() - self.start)})  # fmt: skip
            self.ended, self.lengths = [], []

    logger = SuccessLogger()
    model = PPO(
        "MlpPolicy",
        envs,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        ent_coef=args.ent_coef,
        policy_kwargs={"net_arch": [args.hidden_dim, args.hidden_dim]},
        tensorboard_log=str(run_dir),
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    start = time.time()
    model.learn(args.total_timesteps, callback=logger, progress_bar=args.progress)
    train_s = time.time() - start
    model.save(run_dir / "model")
    if args.csv and logger.rows:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(logger.rows[0]))
            w.writeheader()
            w.writerows(logger.rows)
    tail = [r["success_rate"] for r in logger.rows[-5:] if np.isfinite(r["success_rate"])]
    result: dict[str, Any] = {
        "args": dataclasses.asdict(args),
        "global_step": int(model.num_timesteps),
        "train_wall_s": train_s,
        "final_success_rate": float(np.mean(tail)) if tail else None,
        "model": str(run_dir / "model.zip"),
    }

    # ---------------------------------------------------------------- evaluation
    if args.eval_episodes > 0:
        wrapped = envs.env  # the BrowserSlotActions under the SB3 adapter
        rng = np.random.default_rng(args.seed)

        def trained(obs: torch.Tensor) -> np.ndarray:
            act, _ = model.predict(obs.cpu().numpy(), deterministic=True)
            return act

        def random_policy(obs: torch.Tensor) -> np.ndarray:
            return rng.integers(0, args.max_slots, size=args.num_envs)

        result["eval"] = {
            "seed": args.eval_seed,
            "trained": evaluate(wrapped, trained, args.eval_episodes, args.eval_seed),
            "random": evaluate(wrapped, random_policy, args.eval_episodes, args.eval_seed),
        }
    (run_dir / "summary.json").write_text(json.dumps(result, indent=1))
    envs.close()
    return result


if __name__ == "__main__":
    print(json.dumps(train(parse_args()), indent=1))
