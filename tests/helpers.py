"""Small drivers shared by the tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
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


def keep_some(outs: list[torch.Tensor], rng: np.random.Generator, kept: list) -> None:
    """Keep each output the way callers do, at random: as is, as a view, as ``.numpy()``, or
    not at all; ``kept`` gets ``(holder, its values now)``."""
    for x in outs:
        how = rng.integers(4)
        if how == 0:
            kept.append((x, x.clone()))
        elif how == 1:
            kept.append((x[1:], x[1:].clone()))
        elif how == 2:
            kept.append((x.numpy(), x.clone()))


def assert_kept_unchanged(kept: list, where: str = "") -> None:
    """Every output :func:`keep_some` kept still holds the values it had."""
    for held, value in kept:
        now = torch.from_numpy(held) if isinstance(held, np.ndarray) else held
        assert torch.equal(now, value.view_as(now)), f"{where}: a kept output changed"
