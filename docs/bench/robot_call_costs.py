"""What a small torch or NumPy call costs right after a physics rollout, against the same call
warm: why the robot step's time outside ``mujoco.rollout`` is about twice its stubbed cost.

Two sequences of the kind the CPU step runs after its rollout, on ``[T, B]`` / ``[B]`` arrays
of the env's batch size: the core's episode bookkeeping in torch (``from_numpy``, an ``|`` of
the flags, ``any``, a ``stack`` of the term rows, the sums' ``add_`` and ``clone``, the length
counter) and the same work in NumPy. Each is timed call by call (``perf_counter_ns``) right
after a real ``step_np`` of the env's physics (``after_rollout``) and right after running the
sequence once already (``warm``); medians over the repetitions, in microseconds. A third row
times the first ``torch.empty(3)`` after 5 ms of a Python busy loop that calls no torch at all
(``after_busy_5ms``), against the second call: on this project's shared 2-core VM the first
call is ~50x the second, so the cost is in torch's own code and data falling out of the caches
while anything else runs, not in the rollout's data.

Usage::

    python docs/bench/robot_call_costs.py OUT.json [ID] [N] [REPS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core.machine import provenance

clock = time.perf_counter_ns


def sequences(B: int) -> dict[str, tuple[list[str], Callable[[], list[int]]]]:
    """The two sequences: each returns its calls' durations (ns)."""
    rows = np.random.default_rng(0).random((6, B)).astype(np.float32)
    flags = np.zeros(B, dtype=bool)
    sums, length = torch.zeros(6, B), torch.zeros(B, dtype=torch.int64)
    acc = np.zeros((6, B), dtype=np.float32)

    def torch_seq() -> list[int]:
        t = [clock()]
        r = torch.from_numpy(rows)
        t.append(clock())
        done = torch.from_numpy(flags) | torch.from_numpy(flags)
        t.append(clock())
        bool(done.any())
        t.append(clock())
        s = torch.stack(list(r.unbind(0)))
        t.append(clock())
        sums.add_(s)
        t.append(clock())
        sums.clone()
        t.append(clock())
        length.add_(1)
        length.clone()
        t.append(clock())
        return list(np.diff(t))

    def numpy_seq() -> list[int]:
        t = [clock()]
        r = rows.copy()
        t.append(clock())
        done = flags | flags
        t.append(clock())
        bool(done.any())
        t.append(clock())
        s = np.stack(list(r))
        t.append(clock())
        np.add(acc, s, out=acc)
        t.append(clock())
        acc.copy()
        t.append(clock())
        return list(np.diff(t))

    names = ["from_numpy/copy", "or", "any", "stack", "add_", "clone", "length"]
    return {"torch": (names, torch_seq), "numpy": (names[:6], numpy_seq)}


def first_call_after_busy(reps: int) -> dict[str, float]:
    """Median µs of the first and the second ``torch.empty(3)`` after a 5 ms busy loop."""
    first, second = [], []
    for _ in range(reps):
        t0 = clock()
        while clock() - t0 < 5_000_000:
            pass
        a = clock()
        torch.empty(3)
        b = clock()
        torch.empty(3)
        first.append(b - a)
        second.append(clock() - b)
    med = statistics.median
    return {"first_us": med(first) / 1e3, "second_us": med(second) / 1e3}


def main() -> None:
    out = sys.argv[1]
    env_id = sys.argv[2] if len(sys.argv) > 2 else "envgym/Robot-PickPlace-v0"
    B = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    torch.set_num_threads(1)
    envs = gym.make_vec(env_id, num_envs=B, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    physics = envs.unwrapped.engine.physics
    row: dict[str, object] = {"id": env_id, "num_envs": B, "reps": reps}
    for name, (calls, seq) in sequences(B).items():
        for when in ("after_rollout", "warm"):
            runs = []
            for _ in range(reps):
                physics.step_np() if when == "after_rollout" else seq()
                runs.append(seq())
            per_call = [statistics.median(r[i] for r in runs) / 1e3 for i in range(len(calls))]
            total = statistics.median(sum(r) for r in runs) / 1e3
            row[f"{name}_{when}"] = {"total_us": total, **dict(zip(calls, per_call, strict=True))}
    row["torch_empty_after_busy_5ms"] = first_call_after_busy(reps)
    row.update(provenance(" ".join(["python", *sys.argv]), packages=("envgym", "torch", "mujoco")))
    envs.close()
    print(json.dumps(row, indent=1))
    with open(out, "w") as f:
        json.dump(row, f, indent=1)


if __name__ == "__main__":
    main()
