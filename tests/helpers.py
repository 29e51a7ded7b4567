"""Small drivers shared by the tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core import keys


def make_vec(num_envs: int = 8, device: str = "cpu", **kwargs: Any) -> Any:
    return gym.make_vec(
        "envgym/Phone-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        device=device,
        **kwargs,
    )


def run_policy(envs: Any, policy: str, steps: int, seed: int = 0) -> tuple[int, int, float]:
    """Run ``policy`` (oracle / random / wait); return (episodes ended, successes, mean return)."""
    gen = torch.Generator().manual_seed(seed)
    envs.reset(seed=seed)
    ended = succ = 0
    returns: list[float] = []
    n = envs.single_action_space.n
    for _ in range(steps):
        if policy == "oracle":
            act = envs.oracle_action()
        elif policy == "random":
            act = torch.randint(0, n, (envs.num_envs,), generator=gen)
        elif policy == "wait":
            act = torch.zeros(envs.num_envs, dtype=torch.int64)
        else:
            raise ValueError(policy)
        _, _, term, trunc, info = envs.step(act)
        done = term | trunc
        ended += int(done.sum())
        succ += int((info["success"] & done).sum())
        returns += info[keys.EPISODE]["r"][done].tolist()
    return ended, succ, sum(returns) / max(len(returns), 1)
