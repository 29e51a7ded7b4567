"""envgym's batched phone env against the phone ceiling, in one process, timed in pairs.

The ceiling (``envgym/phone/ceiling.py``) is the phone family's raw baseline: a minimal
table-driven dialogue step of the env's shapes (``B`` worlds, states x actions -> next state,
message ids, a verification bitmask, reward, auto-reset, and a ``[B, L]`` token gather; or,
``ids``, the message ids only). ``envgym bench envgym/Phone-v0`` reports the same ratio
(``env / ceiling``); this script times the two alternately, round after round, so that load from
other processes on a shared machine hits both alike, and reports medians:

- ``env``: ``PhoneVectorEnv(B, "all", obs_mode=MODE, copy=COPY)``, random actions drawn before
  the loop; ``copy=True`` (the default: new tensors every step) and ``copy=False`` (the tokens
  and the action mask in persistent buffers, as the ceiling keeps its own);
- ``ceiling``: the ceiling step at the same ``B``, action count and token length ``L``.

Usage::

    python docs/bench/phone_ceiling.py OUT.json [N,N,...] [ROUNDS] [reuse]

``reuse`` first applies :func:`envgym.core.allocator.reuse_freed_memory` (glibc reuses freed
big blocks instead of unmapping them: ``copy=True``'s fresh tensors stop page-faulting); the
JSON's ``meta.allocator`` says which allocator ran.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from envgym.bench import device_name
from envgym.core.allocator import allocator_mode, reuse_freed_memory
from envgym.core.machine import provenance
from envgym.phone.ceiling import CeilingWorlds, ceiling_tables
from envgym.phone.faces import PhoneVectorEnv


def _steps_for(n: int) -> int:
    """Steps per round: enough to time, few enough for 65,536 worlds on 2 cores."""
    return max(3, min(200, 200_000 // n))


def measure(n: int, mode: str, rounds: int, copy: bool) -> dict:
    """Median env and ceiling steps/s over ``rounds`` alternating rounds."""
    env = PhoneVectorEnv(n, "all", obs_mode=mode, copy=copy)
    env.reset(seed=0)
    A, L = int(env.single_action_space.n), env.engine.L
    ceiling = CeilingWorlds(ceiling_tables(A, L, env.device), n, ids_only=mode == "ids")
    steps = _steps_for(n)
    g = torch.Generator().manual_seed(0)
    acts = torch.randint(0, A, (rounds + 1, steps, n), generator=g)
    env_sps, ceil_sps = [], []
    for r in range(rounds + 1):  # round 0 warms both up
        t0 = time.perf_counter()
        for a in acts[r]:
            env.step(a)
        t1 = time.perf_counter()
        for a in acts[r]:
            ceiling.step(a)
        t2 = time.perf_counter()
        if r:
            env_sps.append(n * steps / (t1 - t0))
            ceil_sps.append(n * steps / (t2 - t1))
    ratios = [e / c for e, c in zip(env_sps, ceil_sps, strict=True)]
    return {
        "num_envs": n,
        "obs_mode": mode,
        "copy": copy,
        "steps_per_round": steps,
        "rounds": rounds,
        "env_steps_per_s": statistics.median(env_sps),
        "env_ms_per_step": 1e3 * n / statistics.median(env_sps),
        "ceiling_steps_per_s": statistics.median(ceil_sps),
        "ratio_env_over_ceiling": statistics.median(ratios),
    }


def main() -> None:
    out = sys.argv[1]
    sizes = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1,16384,65536").split(",")]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    if len(sys.argv) > 4 and sys.argv[4] == "reuse" and not reuse_freed_memory():
        sys.exit("reuse: this C library has no mallopt (not glibc)")
    rows = []
    for n in sizes:
        for mode, copy in (("tokens", True), ("tokens", False), ("ids", True), ("ids", False)):
            row = measure(n, mode, rounds, copy)
            print(
                f"B={n:>6} {mode:>6} copy={copy!s:>5}: env {row['env_steps_per_s']:>13,.0f}/s "
                f"({row['env_ms_per_step']:.2f} ms/step)  ceiling "
                f"{row['ceiling_steps_per_s']:>13,.0f}/s  env/ceiling "
                f"{row['ratio_env_over_ceiling']:.3f}",
                flush=True,
            )
            rows.append(row)
    meta = {
        "device_name": device_name(torch.device("cpu")),
        "allocator": allocator_mode(),
        **provenance(" ".join(["python", *sys.argv])),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
