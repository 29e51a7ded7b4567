"""envgym's batched robot env vs raw ``mujoco.rollout`` vs Gymnasium's MuJoCo vector env.

All in one process. The env and raw MuJoCo are timed step by step in pairs, so that load from
other processes on a shared machine hits both alike, and medians over the steps are reported:

- ``env``: ``gym.make_vec(ID, vectorization_mode="vector_entry_point")``, random actions;
- ``raw``: bare ``mujoco.rollout`` on the env's own compiled models (per-world copies), same
  batch size, same thread count, same physics steps per env step, doing the same physics work
  as the env step that follows it (a copy of the env's state, the env's controls);
- ``gymnasium``: ``gym.make_vec("Pusher-v5", vectorization_mode="sync")`` (Gymnasium's own
  7-DoF arm pushing task, ``SyncVectorEnv``), as a user would run MuJoCo envs in Gymnasium.

Under random actions every world is truncated at the same step, and the medians leave that
step's reset out. So each row also has ``oracle``: the same pairs under the scripted
controller (``oracle_action()``), whose worlds succeed and end their episodes at their own
steps, as a policy that has learned the task does; there the *means* are compared, resets
included (the raw rollout never resets), with the share of steps that reset a world.

Each row also gives the medians in microseconds, the same overhead from the fastest decile of
each (``..._p10``: under heavy outside load the medians of a 1 ms step swing by 2x, while the
fast decile is the step's own cost with the least interference), the time ``env.step`` spends
outside its rollout, and the load average (``os.getloadavg``) before and after the row: on a
shared machine the ratios are the figures to compare, and the load says how far to trust them.

Usage::

    python docs/bench/robot_compare.py OUT.json [ID] [N,N,...] [STEPS]

``STEPS`` (default 140) is the number of paired steps per batch size (random, then oracle).
"""

from __future__ import annotations

import os
import statistics
import time

import gymnasium as gym
import torch
from robot_raw import RolloutTimer, run  # a sibling script: docs/bench is on sys.path

import envgym  # noqa: F401  (registers the ids)

ROUNDS = 7
STEPS = 20
PAIRED_STEPS = ROUNDS * STEPS


def _p10(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[0]


def _time_env(envs, acts) -> float:
    t = time.perf_counter()
    for a in acts:
        envs.step(a)
    return time.perf_counter() - t


def _paired(envs, steps: int, action) -> tuple[list[float], ...]:
    """``steps`` pairs: the raw rollout of the env's next step's physics, then that step
    (``action()`` gives its action). Returns the env's, the raw and the inside-rollout
    seconds per step and the number of worlds each step reset."""
    pool = envs.unwrapped.engine.physics.pool
    timer = RolloutTimer(pool)
    env_t, raw_t, inside_t, reset = [], [], [], []
    for _ in range(steps):
        a = action()
        raw_t.append(envs.unwrapped.raw_step_seconds(a))
        timer.seconds = 0.0
        t = time.perf_counter()
        _, _, term, trunc, _ = envs.step(a)
        env_t.append(time.perf_counter() - t)
        inside_t.append(timer.seconds)
        reset.append(int((term | trunc).sum()))
    pool.rollout = timer.inner
    return env_t, raw_t, inside_t, reset


def _oracle(envs, steps: int) -> dict:
    """The scripted controller (each world ends its episode at its own step, so most steps
    of a large batch reset a world or two): *mean* times, resets included, against the mean
    raw rollout (which never resets)."""
    envs.reset(seed=0)
    action = envs.unwrapped.oracle_action
    _paired(envs, STEPS, action)  # warm-up
    env_t, raw_t, inside_t, reset = _paired(envs, steps, action)
    mean = statistics.fmean
    return {
        "overhead_vs_raw_mean": mean(env_t) / mean(raw_t) - 1.0,
        "env_step_mean_us": 1e6 * mean(env_t),
        "raw_rollout_mean_us": 1e6 * mean(raw_t),
        "env_outside_rollout_mean_us": 1e6 * (mean(env_t) - mean(inside_t)),
        "steps_with_a_reset": sum(r > 0 for r in reset) / steps,
        "worlds_reset_per_step": sum(reset) / steps,
    }


def compare(env_id: str, num_envs: int, paired_steps: int = PAIRED_STEPS) -> dict:
    """Paired timing: before every env step, the raw rollout does the same physics work (the
    env's current state, the env's controls for this step's action) on the env's own models
    with its own thread count. Random actions: medians over all steps; the oracle: means,
    resets included. Then Gymnasium's Pusher, same N."""
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    base = envs.unwrapped
    ph = base.engine.physics
    m = base.compiled.model
    envs.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    n = paired_steps + STEPS
    acts = iter([torch.rand(num_envs, 7, generator=gen) * 2 - 1 for _ in range(n)])
    _paired(envs, STEPS, lambda: next(acts))  # warm-up (the paired steps start from here)
    env_t, raw_t, inside_t, _ = _paired(envs, paired_steps, lambda: next(acts))
    oracle = _oracle(envs, paired_steps)
    envs.close()
    gym_envs = gym.make_vec("Pusher-v5", num_envs=num_envs, vectorization_mode="sync")
    gym_envs.reset(seed=0)
    gym_acts = [gym_envs.action_space.sample() for _ in range(STEPS)]
    _time_env(gym_envs, gym_acts)  # warm-up
    gym_t = [_time_env(gym_envs, gym_acts) / STEPS for _ in range(ROUNDS)]
    gym_envs.close()
    env_sps = num_envs / statistics.median(env_t)
    raw_sps = num_envs / statistics.median(raw_t)
    return {
        "id": env_id,
        "num_envs": num_envs,
        "threads": ph.num_threads,
        "physics_steps_per_env_step": ph.substeps,
        "timestep": float(m.opt.timestep),
        "env_steps_per_s": env_sps,
        "raw_rollout_steps_per_s": raw_sps,
        "env_overhead_vs_raw": raw_sps / env_sps - 1.0,
        "env_overhead_vs_own_rollout": statistics.median(
            [e / i - 1.0 for e, i in zip(env_t, inside_t, strict=True)]
        ),
        "env_overhead_vs_raw_p10": _p10(env_t) / _p10(raw_t) - 1.0,
        "env_step_us": 1e6 * statistics.median(env_t),
        "raw_rollout_us": 1e6 * statistics.median(raw_t),
        "env_outside_rollout_us": 1e6
        * statistics.median([e - i for e, i in zip(env_t, inside_t, strict=True)]),
        "oracle": oracle,
        "load_avg_1min": [load_before, os.getloadavg()[0]],
        "gymnasium_pusher_sync_steps_per_s": num_envs / statistics.median(gym_t),
        "pusher_frame_skip": 5,
        "pusher_timestep": 0.01,
        "steps_timed": paired_steps,
    }


if __name__ == "__main__":
    run(compare, PAIRED_STEPS, "envgym/Robot-PickPlace-v0")
