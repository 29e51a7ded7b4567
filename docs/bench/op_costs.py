"""What one rule-like op costs at a big batch, by dtype and by array library.

A synthetic chain shaped like the phone engine's rules: 40 integer state fields of ``N`` worlds,
and 400 times a compare with a constant followed by a ``where`` that rebinds one field (800
ops). The chain runs in torch with int64, int32 and int16 fields, and in NumPy with int64
fields. The runs are interleaved round by round, so that load from other processes hits all of
them alike, and the JSON reports the median milliseconds per chain. Every variant computes the
same values (checked).

Usage::

    python docs/bench/op_costs.py OUT.json [N] [ROUNDS] [THREADS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from envgym.core.machine import provenance

FIELDS, LINKS = 40, 400


def chain(st: list[Any], where: Callable[..., Any]) -> None:
    """The 800-op chain over the fields ``st`` (rebound in place in the list)."""
    for i in range(LINKS):
        a, b, c = st[i % FIELDS], st[(i * 7 + 3) % FIELDS], st[(i * 13 + 5) % FIELDS]
        st[(i * 3) % FIELDS] = where(a == (i % 5), b, c)


def main() -> None:
    out_path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    base = [rng.integers(0, 7, n) for _ in range(FIELDS)]
    variants: dict[str, tuple[list[Any], Callable[..., Any]]] = {
        f"torch_{dt}".replace("torch.", ""): (
            [torch.from_numpy(x).to(dt) for x in base],
            torch.where,
        )
        for dt in (torch.int64, torch.int32, torch.int16)
    }
    variants["numpy_int64"] = ([x.copy() for x in base], np.where)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds + 3):
        for name, (st, where) in variants.items():
            t0 = time.perf_counter()
            chain(st, where)
            times[name].append(time.perf_counter() - t0)
    want = variants["numpy_int64"][0]
    for name, (st, _) in variants.items():
        got = [np.asarray(x, dtype=np.int64) for x in st]
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)), name
    row = {k: round(statistics.median(v[3:]) * 1e3, 2) for k, v in times.items()}
    meta = {
        "num_envs": n,
        "ops_per_chain": 2 * LINKS,
        "rounds": rounds,
        **provenance(" ".join(["python", *sys.argv]), packages=("torch", "numpy")),
    }
    print(json.dumps({"ms_per_chain": row, **meta}))
    with open(out_path, "w") as f:
        json.dump({"meta": meta, "ms_per_chain": row}, f, indent=1)


if __name__ == "__main__":
    main()
