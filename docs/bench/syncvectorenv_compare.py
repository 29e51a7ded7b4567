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
        sync.reset(seed=0)
        n = sync.single_action_space.n
        acts = np.random.default_rng(0).integers(0, n, size=(30, num_envs))
        for a in acts[:3]:
            sync.step(a)
        t = time.perf_counter()
        for a in acts:
            sync.step(a)
        sync_sps = num_envs * len(acts) / (time.perf_counter() - t)
        vec = gym.make_vec(
            "envgym/Phone-v0",
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            scenario="all",
        )
        vec.reset(seed=0)
        batched = torch.as_tensor(acts)
        for a in batched[:3]:
            vec.step(a)
        t = time.perf_counter()
        for a in batched:
            vec.step(a)
        vec_sps = num_envs * len(acts) / (time.perf_counter() - t)
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
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
