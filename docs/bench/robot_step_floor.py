"""The floor of the robot step's bookkeeping: its NumPy/torch calls with nothing around them.

``robot_step_profile.py`` times the env's stages; this times the same sequence of calls the
CPU backend makes in a step outside the physics (the action check, controls, stability check,
forward kinematics, the pick-and-place rules, weighted reward terms, flags, observation, the
tensors handed out and the core's episode sums), written inline in one function on arrays of
the step's own shapes (16 worlds of the shipped arm: a 30-float state, 8 controls, an 8-link
chain, 4 reward terms), without the env's functions, dicts or checks around them, and without
a rollout. If it costs about what the env's stubbed step costs (``robot_step_profile.py ...
stub``), the time left is the calls themselves (a few µs each in a loop on a busy 2-core
machine), not the Python structure around them: cutting it further means fewer calls, not
tidier code. Median and fast decile over ``STEPS`` calls, with the load average.

Usage::

    python docs/bench/robot_step_floor.py [N] [STEPS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

from envgym.core.machine import provenance


def make_step(B: int) -> Any:
    """A step function over preallocated arrays of the shipped arm's shapes (B worlds)."""
    rng = np.random.default_rng(0)
    S = rng.random((B, 30))
    out = rng.random((B, 5, 30)) * 0.1
    ctrl = np.zeros((B, 5, 8))
    cols, lo, half = np.array([0, 1, 2, 3, 4, 5, 6, 6]), np.zeros(8), np.ones(8)
    coef, links = rng.random((8, 3, 16)), np.array([0, 0, 1, 2, 3, 4, 5, 0])
    trig = np.ones((B, 8, 1, 3))
    goal, t = rng.random((B, 3)), np.zeros(B, np.int64)
    rows, weights = np.zeros((4, B)), np.ones((4, 1))
    obs_cols = np.arange(36)
    sums, length = torch.zeros(5, B), torch.zeros(B, dtype=torch.int64)

    def step(a: torch.Tensor) -> tuple[Any, ...]:
        x = a.detach().numpy()
        if not (x.min() >= -1.0 and x.max() <= 1.0):
            raise ValueError("actions out of range")
        c = x[:, cols].astype(np.float64)
        np.minimum(np.maximum(c, -1.0, out=c), 1.0, out=c)
        c += 1
        c *= half
        np.add(c[:, None], lo, out=ctrl)
        new = out[:, -1]
        if np.isfinite(new.sum()) and np.abs(new[:, 16:30]).max() < 1e3:
            np.copyto(S, new)
        unstable = np.zeros(B, dtype=bool)
        q = S[:, 1:16][:, links]
        np.sin(q, out=trig[:, :, 0, 0])
        np.cos(q, out=trig[:, :, 0, 1])
        T = (trig @ coef).reshape(B, 8, 4, 4)
        while T.shape[1] > 1:
            T = T[:, 0::2] @ T[:, 1::2]
        grip, obj = T[:, 0, :3, 3], S[:, 9:12]
        joint_velocity = -(S[:, 16:22] ** 2).sum(-1)
        v = grip - obj
        grip_to_object = -((v * v).sum(-1) ** 0.5)
        v = obj - goal
        d = (v * v).sum(-1) ** 0.5
        success = d < 0.02
        rows[0], rows[1], rows[2], rows[3] = joint_velocity, grip_to_object, -d, success
        weighted = np.multiply(rows, weights, out=np.empty((4, B), np.float32))
        t[:] += 1
        terminated = success & True
        truncated = np.greater(t >= 100, terminated)
        obs = np.concatenate((S, grip, goal), axis=1, dtype=np.float32)[:, obs_cols]
        tensor = torch.from_numpy
        reward, terms = tensor(weighted.sum(0)), [tensor(w) for w in weighted]
        flags = [tensor(f) for f in (success, terminated, truncated, unstable)]
        obs_t, target = tensor(obs), tensor(obs[:, :33])
        errors = tensor(np.zeros(B, np.int64))
        done = flags[1] | flags[2]
        bool(done.any())
        sums.add_(torch.stack([reward, *terms]))
        ret, *returns = sums.clone().unbind(0)
        length.add_(1)
        info = {"target": target, "errors": errors, "r": ret, "l": length.clone()}
        return obs_t, reward, done, returns, flags, info

    return step


def main() -> None:
    B = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    torch.set_num_threads(1)
    step = make_step(B)
    gen = torch.Generator().manual_seed(0)
    acts = [torch.rand(B, 7, generator=gen) * 2 - 1 for _ in range(10)]
    load = os.getloadavg()[0]
    times = []
    for i in range(steps):
        t = time.perf_counter_ns()
        step(acts[i % len(acts)])
        times.append(time.perf_counter_ns() - t)
    row = {
        "num_envs": B,
        "floor_step_us": statistics.median(times) / 1e3,
        "floor_step_p10_us": statistics.quantiles(times, n=10)[0] / 1e3,
        "steps_timed": steps,
        "load_avg_1min": [load, os.getloadavg()[0]],
        **provenance(" ".join(["python", *sys.argv]), packages=("torch", "numpy")),
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
