"""Stable-Baselines3 PPO on the phone env's tokens face, through ``envgym.wrappers.SB3VecEnv``.

One file in the CleanRL spirit: the ``Args`` below, a visible ``make_env``, and SB3 doing the
algorithm. The batched phone engine runs all worlds in one process; the adapter hands SB3
NumPy arrays, ``dones``, per-world infos with ``terminal_observation`` and episode stats.

Run (one command):

    python baselines/sb3_ppo.py --scenario isp_bill_discount --total-timesteps 1000000

TensorBoard logs and the saved model go under ``--out-dir/<exp_name>_s<seed>``; SB3 prints its
progress bar (env-steps/s) and rollout stats; ``--csv`` writes the success rate of the episodes
that ended in each rollout.
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
from torch import nn


@dataclass
class Args:
    exp_name: str = "sb3_ppo"
    """name of this experiment (the run directory is ``<out_dir>/<exp_name>_s<seed>``)"""
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
    scenario: str = "isp_bill_discount"
    """phone scenario: a shipped name, a YAML path, ``all`` or ``generated``"""
    difficulty: int = 1
    """difficulty of generated scenarios (0..4)"""
    num_generated: int = 8
    """how many scenarios to generate for ``--scenario generated``"""
    num_envs: int = 256
    """number of worlds stepped together by the batched engine"""

    # algorithm (SB3 PPO hyper-parameters)
    total_timesteps: int = 1_000_000
    """env steps in all"""
    n_steps: int = 32
    """rollout length per world between updates"""
    batch_size: int = 2048
    """minibatch size"""
    n_epochs: int = 4
    """epochs over each rollout"""
    learning_rate: float = 5e-4
    """Adam learning rate"""
    gamma: float = 0.99
    """discount factor"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    hidden_dim: int = 256
    """width of the features extractor and of the policy/value MLPs"""


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
    """The batched phone engine (tokens face, CPU) as an SB3 ``VecEnv``."""
    import envgym  # noqa: F401  (registers the envgym/... ids)
    from envgym.wrappers import SB3VecEnv

    kwargs: dict[str, Any] = {"scenario": args.scenario}
    if args.scenario == "generated":
        kwargs |= {"difficulty": args.difficulty, "num_generated": args.num_generated}
    envs = gym.make_vec(
        "envgym/Phone-v0",
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        device="cpu",
        **kwargs,
    )
    return SB3VecEnv(envs, seed=args.seed)


def phone_features_extractor() -> type:
    """An SB3 features extractor for the phone observation: a bag of words over the heard
    tokens (SB3 would otherwise feed token ids to an MLP as numbers), the phase one-hot, known
    facts, log call counts and the turn."""
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class PhoneBagOfWords(BaseFeaturesExtractor):
        def __init__(self, observation_space: gym.spaces.Dict, hidden_dim: int = 256) -> None:
            super().__init__(observation_space, features_dim=hidden_dim)
            self.vocab = int(observation_space["tokens"].high.max()) + 1
            n_facts = observation_space["known_facts"].n
            n_numbers = observation_space["calls"].shape[0]
            in_dim = self.vocab + 4 + n_facts + n_numbers + 1
            self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.Tanh())

        def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
            tok = obs["tokens"].long()
            counts = torch.zeros(tok.shape[0], self.vocab, device=tok.device)
            counts.scatter_add_(1, tok, torch.ones_like(tok, dtype=counts.dtype))
            counts[:, 0] = 0.0
            bag = counts / counts.sum(1, keepdim=True).clamp(min=1.0)
            # SB3 has already one-hot encoded the Discrete phase.
            phase = obs["phase"].reshape(tok.shape[0], -1)  # [B, 4] or [B, 1, 4] from buffers
            parts = [bag, phase, obs["known_facts"], torch.log1p(obs["calls"]),
                     obs["turn"] / 32.0]  # fmt: skip
            return self.net(torch.cat(parts, dim=-1))

    return PhoneBagOfWords


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
            self.ended: list[bool] = []
            self.rows: list[dict[str, float]] = []
            self.start = time.time()

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
                if done:
                    self.ended.append(bool(info["success"]))
            return True

        def _on_rollout_end(self) -> None:
            rate = float(np.mean(self.ended)) if self.ended else float("nan")
            self.logger.record("rollout/success_rate", rate)
            self.rows.append({"global_step": self.num_timesteps, "episodes": len(self.ended),
                              "success_rate": rate,
                              "sps": self.num_timesteps / (time.time() - self.start)})  # fmt: skip
            self.ended = []

    logger = SuccessLogger()
    model = PPO(
        "MultiInputPolicy",
        envs,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        ent_coef=args.ent_coef,
        policy_kwargs={
            "features_extractor_class": phone_features_extractor(),
            "features_extractor_kwargs": {"hidden_dim": args.hidden_dim},
            "net_arch": [args.hidden_dim],
        },
        tensorboard_log=str(run_dir),
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    start = time.time()
    model.learn(args.total_timesteps, callback=logger, progress_bar=args.progress)
    model.save(run_dir / "model")
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
    }
    (run_dir / "summary.json").write_text(json.dumps(result, indent=1))
    envs.close()
    return result


if __name__ == "__main__":
    print(json.dumps(train(parse_args()), indent=1))
