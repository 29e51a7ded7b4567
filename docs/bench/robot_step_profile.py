"""Where a robot ``env.step`` spends its time: per-stage medians from ``perf_counter_ns``.

The stages of the CPU backend's step are timed in place by wrapping the methods that run them
(each wrapper adds two clock reads, about 0.1 µs): the action check (``_convert_actions``),
the action-to-control map, the physics step and, inside it, the ``mujoco.rollout`` call,
forward kinematics, the task's rules, the engine's whole NumPy pass, the face's
``_step_worlds`` and the core's ``_finish_step`` (episode statistics, info dict); ``total``
is ``env.step`` itself. Auto-resets are counted apart (their median is per reset call; the
``mean_per_step`` column spreads them over all steps). With ``stub`` the rollout is replaced
by a no-op after 20 real steps, so the same bookkeeping runs every step without the physics
(and without the cache misses a real rollout leaves behind: compare both).

Usage::

    python docs/bench/robot_step_profile.py OUT.json [ID] [N] [STEPS] [stub|oracle]

``oracle`` drives the scripted controller instead of random actions: its worlds end their
episodes at different steps, so resets happen on most steps of a large batch.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core.machine import provenance


def _wrap(obj: Any, name: str, into: list[int]) -> None:
    """Replace ``obj.name`` by a wrapper that appends each call's duration (ns) to ``into``."""
    inner: Callable[..., Any] = getattr(obj, name)
    clock = time.perf_counter_ns

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = clock()
        out = inner(*args, **kwargs)
        into.append(clock() - t)
        return out

    setattr(obj, name, timed)


def profile(env_id: str, num_envs: int, steps: int, stub: bool, oracle: bool) -> dict[str, Any]:
    """Per-stage medians (µs) of ``steps`` env steps after 20 warm-up steps; ``oracle``: the
    scripted controller's actions (computed outside the timed step) instead of random ones."""
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    env = envs.unwrapped
    eng, ph = env.engine, env.engine.physics
    envs.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    acts = [torch.rand(num_envs, eng.act_dim, generator=gen) * 2 - 1 for _ in range(100)]
    for a in acts[:20]:
        envs.step(a)
    if stub:
        ph.pool.rollout = lambda *args, **kwargs: None
    stages: dict[str, list[int]] = {}
    for obj, name, key in (
        (ph.pool, "rollout", "rollout"),
        (ph, "step_np", "physics_step"),
        (eng, "_controls_np", "controls"),
        (eng.kin, "forward_np", "forward_kinematics"),
        (eng, "success_and_terms", "rules"),
        (eng, "_step_np", "engine_step"),
        (env, "_step_worlds", "step_worlds"),
        (env, "_convert_actions", "convert_actions"),
        (env, "_finish_step", "finish_step"),
        (env, "_reset_worlds", "reset_worlds"),
    ):
        _wrap(obj, name, stages.setdefault(key, []))
    total: list[int] = []
    for i in range(steps):
        a = env.oracle_action() if oracle else acts[i % len(acts)]
        t = time.perf_counter_ns()
        envs.step(a)
        total.append(time.perf_counter_ns() - t)
    envs.close()
    rows = {"total": _row(total, steps)}
    rows.update({k: _row(v, steps) for k, v in stages.items() if v})
    return {
        "id": env_id,
        "num_envs": num_envs,
        "stub_rollout": stub,
        "policy": "oracle" if oracle else "random",
        "steps_timed": steps,
        "stages_us": rows,
        "load_avg_1min": [load_before, os.getloadavg()[0]],
    }


def _row(ns: list[int], steps: int) -> dict[str, float]:
    return {
        "median": statistics.median(ns) / 1e3,
        "mean_per_step": sum(ns) / steps / 1e3,
        "calls": len(ns),
    }


def main() -> None:
    out_path = sys.argv[1]
    env_id = sys.argv[2] if len(sys.argv) > 2 else "envgym/Robot-PickPlace-v0"
    num_envs = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
    mode = sys.argv[5] if len(sys.argv) > 5 else ""
    row = profile(env_id, num_envs, steps, mode == "stub", mode == "oracle")
    for k, v in row["stages_us"].items():
        print(f"{k:20s} median {v['median']:9.1f} us   mean/step {v['mean_per_step']:9.1f} us")
    meta = provenance(" ".join(["python", *sys.argv]), packages=("envgym", "torch", "mujoco"))
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"rows": [row], **meta}, f, indent=2)


if __name__ == "__main__":
    main()
