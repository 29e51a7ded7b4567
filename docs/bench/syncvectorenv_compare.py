"""envgym's batched phone engine vs Gymnasium's SyncVectorEnv over the single env.

Same scenario set, same batch size, same random actions, in one process:
    python docs/bench/syncvectorenv_compare.py OUT.json
"""

from __future__ import annotations

import json
import sys
import time

import gymnasium as gym
import numpy as np
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core.machine import provenance


def _steps_per_s(envs: gym.vector.VectorEnv, actions: list) -> float:
    """Reset with seed 0, warm up on 3 batches, then time ``step`` over all of them."""
    envs.reset(seed=0)
    for a in actions[:3]:
        envs.step(a)
    t = time.perf_counter()
    for a in actions:
        envs.step(a)
    return envs.num_envs * len(actions) / (time.perf_counter() - t)


def main(out_path: str) -> None:
    torch.set_num_threads(2)
    rows = []
    for num_envs in (16, 64, 256):
        sync = gym.make_vec(
            "envgym/Phone-v0",
            num_envs=num_envs,
            vectorization_mode="sync",
            obs_mode="tokens",
            scenario="all",
        )
        n = sync.single_action_space.n
        acts = np.random.default_rng(0).integers(0, n, size=(30, num_envs))
        sync_sps = _steps_per_s(sync, list(acts))
        vec = gym.make_vec(
            "envgym/Phone-v0",
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            scenario="all",
        )
        vec_sps = _steps_per_s(vec, list(torch.as_tensor(acts)))
        rows.append(
            {
                "num_envs": num_envs,
                "sync_vector_env_steps_per_s": sync_sps,
                "envgym_vector_steps_per_s": vec_sps,
                "speedup": vec_sps / sync_sps,
            }
        )
        print(rows[-1], flush=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, **provenance(" ".join(["python", *sys.argv]))}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
