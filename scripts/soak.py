"""Soak: memory growth of a long phone run (issue 13: at most 5% over 10^6 steps).

Steps a native phone vector env (``num_envs`` worlds) for ``steps`` batched steps (world steps
= the product) with random actions, every ``--oracle-every``-th step the oracle's, and samples
the process's resident memory (RSS, from ``/proc/self/statm``) along the way. Growth is
measured from the end of a warm-up (allocator pools, caches and the first auto-resets are
filled by then) to the end of the run. The result is one JSON row::

    python scripts/soak.py --num-envs 1024 --steps 1000 --out docs/bench/soak-phone.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import time
from pathlib import Path

import gymnasium as gym
import torch

import envgym  # noqa: F401  (registers the ids)


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def soak(num_envs: int, steps: int, warmup: int, oracle_every: int, seed: int) -> dict:
    envs = gym.make_vec(
        "envgym/Phone-v0", num_envs=num_envs, vectorization_mode="vector_entry_point"
    )
    envs.reset(seed=seed)
    n = envs.single_action_space.n
    gen = torch.Generator().manual_seed(seed)
    samples: list[tuple[int, int]] = []
    episodes = 0
    t0 = time.perf_counter()
    base = 0
    for t in range(steps):
        if oracle_every and t % oracle_every == 0:
            act = envs.unwrapped.oracle_action()
        else:
            act = torch.randint(0, n, (num_envs,), generator=gen)
        _obs, _r, term, trunc, _info = envs.step(act)
        episodes += int((term | trunc).sum())
        if t + 1 == warmup:
            gc.collect()
            base = rss_bytes()
        if (t + 1) % max(1, steps // 20) == 0:
            samples.append((t + 1, rss_bytes()))
    gc.collect()
    end = rss_bytes()
    wall = time.perf_counter() - t0
    envs.close()
    return {
        "kind": "soak",
        "family": "phone",
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "torch_threads": torch.get_num_threads(),
        "num_envs": num_envs,
        "steps": steps,
        "world_steps": num_envs * steps,
        "episodes_ended": episodes,
        "warmup_steps": warmup,
        "rss_after_warmup_mb": round(base / 2**20, 1),
        "rss_end_mb": round(end / 2**20, 1),
        "growth_pct": round(100 * (end - base) / base, 2),
        "rss_samples_mb": [(s, round(b / 2**20, 1)) for s, b in samples],
        "wall_s": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--num-envs", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--oracle-every", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    row = soak(args.num_envs, args.steps, args.warmup, args.oracle_every, args.seed)
    text = json.dumps(row, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
