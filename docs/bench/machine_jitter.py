"""How often this machine takes the CPU away from a busy process, and what the first small call
after a gap of other work costs: the floor under any small-batch step measured here.

Two measurements, no envgym code in them:

- ``interruptions``: a busy loop reads ``perf_counter_ns`` for ``SECONDS``; every step between
  two reads longer than 3 µs is a moment the process did not run (an interrupt, the host
  running something else on the core). Reported: how many, the median time between them, their
  median / p90 / max length, and the share of the wall time they took.
- ``after_gap``: after ``gap`` ms of a busy loop (Python only, no NumPy), the time of a first
  and a second ``np.zeros(1); z += 1`` and of a tiny pure-Python block (``sorted`` of three
  ints, a dict lookup), medians over the repetitions, in µs. On a machine whose caches survive
  a few milliseconds of other work, the first call costs what the second does.

Usage::

    python docs/bench/machine_jitter.py OUT.json [SECONDS] [REPS]
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time

import numpy as np

from envgym.core.machine import provenance

GAPS_MS = (0.02, 0.2, 1.0, 3.0, 5.0, 20.0)
THRESHOLD_NS = 3_000


def _busy(seconds: float) -> None:
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        pass  # spinning is the point: the process stays on its core doing Python only


def interruptions(seconds: float) -> dict[str, float]:
    """The moments a busy loop did not run, over ``seconds`` of wall time."""
    gaps: list[tuple[int, int]] = []
    t0 = last = time.perf_counter_ns()
    end = t0 + int(seconds * 1e9)
    while last < end:
        t = time.perf_counter_ns()
        if t - last > THRESHOLD_NS:
            gaps.append((last, t - last))
        last = t
    lengths = [g for _, g in gaps]
    starts = [s for s, _ in gaps]
    between = [b - a for a, b in itertools.pairwise(starts)]
    return {
        "seconds": seconds,
        "count": len(gaps),
        "median_interval_us": statistics.median(between) / 1e3 if between else float("nan"),
        "median_length_us": statistics.median(lengths) / 1e3 if lengths else 0.0,
        "p90_length_us": _p90(lengths) / 1e3 if len(lengths) > 1 else float("nan"),
        "max_length_us": max(lengths, default=0) / 1e3,
        "share_of_wall_time": sum(lengths) / (last - t0),
    }


def _p90(xs: list[int]) -> float:
    return statistics.quantiles(xs, n=10)[-1]


def after_gap(gap_ms: float, reps: int) -> dict[str, float]:
    """First and second tiny NumPy call, and a tiny Python block, after ``gap_ms`` busy."""
    first, second, python = [], [], []
    for _ in range(reps):
        _busy(gap_ms / 1e3)
        t0 = time.perf_counter_ns()
        z = np.zeros(1)
        z += 1
        t1 = time.perf_counter_ns()
        z = np.zeros(1)
        z += 1
        t2 = time.perf_counter_ns()
        first.append(t1 - t0)
        second.append(t2 - t1)
        _busy(gap_ms / 1e3)
        t3 = time.perf_counter_ns()
        sorted([3, 1, 2])
        {"a": 1}.get("b")
        python.append(time.perf_counter_ns() - t3)
    return {
        "gap_ms": gap_ms,
        "numpy_first_us": statistics.median(first) / 1e3,
        "numpy_second_us": statistics.median(second) / 1e3,
        "python_block_us": statistics.median(python) / 1e3,
    }


def main() -> None:
    out_path = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    result = {
        "cpus_usable": len(os.sched_getaffinity(0)),
        "interruptions": interruptions(seconds),
        "after_gap": [after_gap(g, reps) for g in GAPS_MS],
        **provenance(" ".join(["python", *sys.argv])),
    }
    print(json.dumps(result, indent=2))
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
