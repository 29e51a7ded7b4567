"""envgym's batched robot env vs raw ``mujoco.rollout`` vs Gymnasium's MuJoCo vector env.

All in one process. The env and raw MuJoCo are timed step by step in pairs, so that load from
other processes on a shared machine hits both alike, and medians over the steps are reported:

- ``env``: ``gym.make_vec(ID, vectorization_mode="vector_entry_point")``, random actions;
- ``raw``: bare ``mujoco.rollout`` on the env's own compiled models (per-world copies), same
  batch size, same thread count, same physics steps per env step, doing the same physics work
  as the env step that follows it (a copy of the env's state, the env's controls);
- ``gymnasium``: ``gym.make_vec("Pusher-v5", vectorization_mode="sync")`` (Gymnasium's own
  7-DoF arm pushing task, ``SyncVectorEnv``), as a user would run MuJoCo envs in Gymnasium.

Each row also gives the medians in microseconds, the same overhead from the fastest decile of
each (``..._p10``: under heavy outside load the medians of a 1 ms step swing by 2x, while the
fast decile is the step's own cost with the least interference), the time ``env.step`` spends
outside its rollout, and the load average (``os.getloadavg``) before and after the row: on a
shared machine the ratios are the figures to compare, and the load says how far to trust them.

Usage::

    python docs/bench/robot_compare.py OUT.json [ID] [N,N,...] [STEPS]

``STEPS`` (default 140) is the number of paired steps per batch size.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import gymnasium as gym
import mujoco
import mujoco.rollout
import numpy as np
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core.machine import timestamp

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


class _RolloutTimer:
    """Wraps the env's own ``Rollout.rollout`` to time the physics inside ``env.step``."""

    def __init__(self, pool) -> None:
        self.pool, self.inner, self.seconds = pool, pool.rollout, 0.0
        pool.rollout = self

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        out = self.inner(*args, **kwargs)
        self.seconds += time.perf_counter() - t
        return out


def compare(env_id: str, num_envs: int, paired_steps: int = PAIRED_STEPS) -> dict:
    """Paired timing: before every env step, the raw rollout does the same physics work (the
    env's current state, the env's controls for this step's action) on the env's own models
    with its own thread count; medians over all steps. Then Gymnasium's Pusher, same N."""
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    base = envs.unwrapped
    ph = base.engine.physics
    m = base.compiled.model
    envs.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    acts = [torch.rand(num_envs, 7, generator=gen) * 2 - 1 for _ in range(paired_steps)]
    pool = mujoco.rollout.Rollout(nthread=ph.num_threads if ph.num_threads > 1 else 0)
    datas = [mujoco.MjData(m) for _ in range(max(1, ph.num_threads))]
    out = np.zeros((num_envs, ph.substeps, ph.nstate))
    ctrl = np.zeros((num_envs, ph.substeps, m.nu))
    for a in acts[:STEPS]:  # warm-up (the paired steps then start from this state)
        envs.step(a)
    env_t, raw_t, inside_t = [], [], []
    timer = _RolloutTimer(ph.pool)
    for a in acts:
        state = ph.state.copy()
        ctrl[:] = base.engine.controls(a).numpy()[:, None, :]
        t = time.perf_counter()
        pool.rollout(
            ph.models,
            datas,
            state,
            ctrl,
            control_spec=mujoco.mjtState.mjSTATE_CTRL.value,
            skip_checks=True,
            nstep=ph.substeps,
            initial_warmstart=ph._warm,
            state=out,
            sensordata=ph._sens,
        )
        raw_t.append(time.perf_counter() - t)
        timer.seconds = 0.0
        t = time.perf_counter()
        envs.step(a)
        env_t.append(time.perf_counter() - t)
        inside_t.append(timer.seconds)
    pool.close()
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
        "load_avg_1min": [load_before, os.getloadavg()[0]],
        "gymnasium_pusher_sync_steps_per_s": num_envs / statistics.median(gym_t),
        "pusher_frame_skip": 5,
        "pusher_timestep": 0.01,
        "steps_timed": len(acts),
    }


def main() -> None:
    out_path = sys.argv[1]
    env_id = sys.argv[2] if len(sys.argv) > 2 else "envgym/Robot-PickPlace-v0"
    sizes = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "16,128,512").split(",")]
    paired = int(sys.argv[4]) if len(sys.argv) > 4 else PAIRED_STEPS
    rows = []
    for n in sizes:
        row = compare(env_id, n, paired)
        print(json.dumps(row), flush=True)
        rows.append(row)
    meta = {
        "date": timestamp(),
        "command": " ".join(["python", *sys.argv]),
        "mujoco": mujoco.__version__,
        "torch_threads": 1,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, **meta}, f, indent=2)


if __name__ == "__main__":
    main()
