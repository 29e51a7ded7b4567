"""The robot env's per-step cost outside the physics: ``env.step`` with the rollout stubbed out.

``robot_compare.py`` times the env against raw ``mujoco.rollout``; on a shared machine a 1 ms
step's medians swing with the load. This isolates the other part: after a few real steps the
env's ``Rollout.rollout`` is replaced by a no-op (the state stays where it is, so every step
does the same bookkeeping: action checks, controls, stability check, forward kinematics, the
task's rules, reward, flags, observation, auto-reset test and the info dict), and
``env.step`` is timed alone. Median and fast decile (p10) per batch size, in microseconds,
with the load average. Compare two engines by running both in alternation.

Usage::

    python docs/bench/robot_bookkeeping.py OUT.json [ID] [N,N,...] [STEPS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import gymnasium as gym
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core.machine import provenance


def bookkeeping(env_id: str, num_envs: int, steps: int) -> dict:
    """Median and p10 of ``env.step`` with a no-op rollout, after 20 real steps."""
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    pool = envs.unwrapped.engine.physics.pool
    envs.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    acts = [torch.rand(num_envs, 7, generator=gen) * 2 - 1 for _ in range(50)]
    for a in acts[:20]:  # real steps: the rollout's output buffer holds a real state
        envs.step(a)
    pool.rollout = lambda *args, **kwargs: None
    times = []
    for i in range(steps):
        t = time.perf_counter()
        envs.step(acts[i % len(acts)])
        times.append(time.perf_counter() - t)
    envs.close()
    return {
        "id": env_id,
        "num_envs": num_envs,
        "step_without_rollout_us": 1e6 * statistics.median(times),
        "step_without_rollout_p10_us": 1e6 * statistics.quantiles(times, n=10)[0],
        "steps_timed": steps,
        "load_avg_1min": [load_before, os.getloadavg()[0]],
    }


def main() -> None:
    out_path = sys.argv[1]
    env_id = sys.argv[2] if len(sys.argv) > 2 else "envgym/Robot-PickPlace-v0"
    sizes = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "16,128,512").split(",")]
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    rows = []
    for n in sizes:
        rows.append(bookkeeping(env_id, n, steps))
        print(json.dumps(rows[-1]), flush=True)
    meta = provenance(" ".join(["python", *sys.argv]), packages=("envgym", "torch", "mujoco"))
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, **meta}, f, indent=2)


if __name__ == "__main__":
    main()
