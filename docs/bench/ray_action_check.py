"""What ``RayVectorEnv``'s batch check costs the learner: the family's action rule
(``action_rule()``, the function its ``_convert_actions`` calls) over a whole batch, next to one
local step of the same batch, in interleaved rounds (rule, step, rule, step, ...) so a load
spike hits both. The distributed step does more than the local one, so the share of a
distributed step is smaller still. Median per call, with the load average.

Usage::

    OMP_NUM_THREADS=1 python docs/bench/ray_action_check.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envgym  # noqa: F401  (registers the ids)

CASES: tuple[tuple[str, int, dict[str, Any]], ...] = (
    ("envgym/Phone-v0", 16384, {"scenario": "all"}),
    ("envgym/Robot-Push-v0", 64, {"backend": "cpu"}),
)


def median_s(f: Callable[[], Any], calls: int) -> float:
    """The median wall time of ``calls`` calls of ``f``."""
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def measure(env_id: str, n: int, kwargs: dict[str, Any], rounds: int = 3) -> None:
    """Print the rule's and the local step's median, for tensor and NumPy actions."""
    envs = gym.make_vec(env_id, n, vectorization_mode="vector_entry_point", **kwargs)
    envs.reset(seed=0)
    base = envs.unwrapped
    rule, worlds = base.action_rule(), np.arange(n)
    for form in ("tensor", "numpy"):
        rule_s, step_s = [], []
        for _ in range(rounds):
            act = base.oracle_action()
            act = act.numpy() if form == "numpy" else act
            rule_s.append(median_s(lambda a=act: rule(a, n, worlds=worlds), 50))
            step_s.append(median_s(lambda a=act: envs.step(a), 5))
        r, s = float(np.median(rule_s)), float(np.median(step_s))
        print(
            f"{env_id} {n} worlds, {form} actions: rule {r * 1e6:.0f} us, local step "
            f"{s * 1e3:.1f} ms, rule / step {100 * r / s:.2f}%  (load {os.getloadavg()[0]:.2f})"
        )
    envs.close()


def main() -> None:
    torch.set_num_threads(1)
    for env_id, n, kwargs in CASES:
        measure(env_id, n, kwargs)


if __name__ == "__main__":
    main()
