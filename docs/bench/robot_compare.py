"""envgym's batched robot env vs raw ``mujoco.rollout`` vs Gymnasium's MuJoCo vector env.

All in one process, interleaved round by round so that load from other processes on a shared
machine hits every contender alike (the medians over rounds are reported):

- ``env``: ``gym.make_vec(ID, vectorization_mode="vector_entry_point")``, random actions;
- ``raw``: bare ``mujoco.rollout`` on the env's own compiled models (per-world copies), same
  batch size, same thread count, same physics steps per env step, random controls;
- ``gymnasium``: ``gym.make_vec("Pusher-v5", vectorization_mode="sync")`` (Gymnasium's own
  7-DoF arm pushing task, ``SyncVectorEnv``), as a user would run MuJoCo envs in Gymnasium.

Usage::

    python docs/bench/robot_compare.py OUT.json [ID] [N,N,...]
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time

import gymnasium as gym
import mujoco
import mujoco.rollout
import numpy as np
import torch

import envgym  # noqa: F401  (registers the ids)

ROUNDS = 7
STEPS = 20


def _time_env(envs, acts) -> float:
    t = time.perf_counter()
    for a in acts:
        envs.step(a)
    return time.perf_counter() - t


def _time_raw(ph, pool, datas, state, out, ctrls) -> float:
    t = time.perf_counter()
    for c in ctrls:
        pool.rollout(
            ph.models,
            datas,
            state,
            c,
            control_spec=mujoco.mjtState.mjSTATE_CTRL.value,
            skip_checks=True,
            nstep=ph.substeps,
            initial_warmstart=ph._warm,
            state=out,
            sensordata=ph._sens,
        )
        state[:] = out[:, -1]
    return time.perf_counter() - t


def compare(env_id: str, num_envs: int) -> dict:
    torch.set_num_threads(1)
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    base = envs.unwrapped
    ph = base.engine.physics
    m = base.compiled.model
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    acts = [torch.rand(num_envs, 7) * 2 - 1 for _ in range(STEPS)]
    lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    ctrls = [
        np.ascontiguousarray(
            np.broadcast_to(
                lo + rng.random((num_envs, 1, m.nu)) * (hi - lo), (num_envs, ph.substeps, m.nu)
            )
        )
        for _ in range(STEPS)
    ]
    pool = mujoco.rollout.Rollout(nthread=ph.num_threads if ph.num_threads > 1 else 0)
    datas = [mujoco.MjData(m) for _ in range(max(1, ph.num_threads))]
    state, out = ph.state.copy(), np.zeros_like(ph._out)
    gym_envs = gym.make_vec("Pusher-v5", num_envs=num_envs, vectorization_mode="sync")
    gym_envs.reset(seed=0)
    gym_acts = [gym_envs.action_space.sample() for _ in range(STEPS)]
    env_t, raw_t, gym_t = [], [], []
    for r in range(ROUNDS + 1):
        e = _time_env(envs, acts)
        w = _time_raw(ph, pool, datas, state, out, ctrls)
        g = _time_env(gym_envs, gym_acts)
        if r > 0:  # the first round warms up
            env_t.append(e)
            raw_t.append(w)
            gym_t.append(g)
    pool.close()
    envs.close()
    gym_envs.close()
    n = num_envs * STEPS
    env_sps = n / statistics.median(env_t)
    raw_sps = n / statistics.median(raw_t)
    gym_sps = n / statistics.median(gym_t)
    return {
        "id": env_id,
        "num_envs": num_envs,
        "threads": ph.num_threads,
        "physics_steps_per_env_step": ph.substeps,
        "timestep": float(m.opt.timestep),
        "env_steps_per_s": env_sps,
        "raw_rollout_steps_per_s": raw_sps,
        "env_overhead_vs_raw": raw_sps / env_sps - 1.0,
        "gymnasium_pusher_sync_steps_per_s": gym_sps,
        "pusher_frame_skip": 5,
        "pusher_timestep": 0.01,
        "rounds": ROUNDS,
        "steps_per_round": STEPS,
    }


def main() -> None:
    out_path = sys.argv[1]
    env_id = sys.argv[2] if len(sys.argv) > 2 else "envgym/Robot-PickPlace-v0"
    sizes = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "16,128,512").split(",")]
    rows = []
    for n in sizes:
        row = compare(env_id, n)
        print(json.dumps(row), flush=True)
        rows.append(row)
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "mujoco": mujoco.__version__,
        "torch_threads": 1,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, **meta}, f, indent=2)


if __name__ == "__main__":
    main()
