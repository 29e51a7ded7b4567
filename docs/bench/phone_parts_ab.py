"""Two versions of the phone engine, stepped alternately: the whole step and named parts of it.

The old and the new ``PhoneVectorEnv(N, "all", obs_mode=MODE, copy=False)`` run in one process
from the same seed and actions (random, drawn before the loop), one step each in turn (which
goes first alternates). The first ``CHECK`` steps compare every output and state field, bit for
bit; the timed steps after them compare nothing, so that the timing is the env's alone. Per
step: the wall time of ``env.step``, and the wall time of each engine method named in ``PARTS``
(comma-separated ``PhoneEngine`` method names, timed in place by a wrapper: two clock reads a
call) and their sum (``parts_ms``; a part called inside another counts twice there), medians
over the steps after the first 10 (``part_ms``: per part). With the same version on both sides
it is a breakdown of the step. A part measured inside the whole step
sees the caches the rest of the step leaves, which a part timed alone does not.

The old version is imported under another package name, made as ``robot_ab.py``'s docstring
says (``envgym_base``). Usage::

    PYTHONPATH=/tmp/old python docs/bench/phone_parts_ab.py OUT.json N MODE STEPS PARTS [CHECK]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from copy_ab import leaves  # a sibling script: docs/bench is on sys.path when run

from envgym.core.machine import provenance


def _time_parts(engine_cls: type, parts: list[str], into: dict[str, float]) -> None:
    """Wrap ``engine_cls``'s methods ``parts`` so that each call adds its duration to
    ``into[name]``."""
    clock = time.perf_counter
    for name in parts:
        inner: Callable[..., Any] = getattr(engine_cls, name)

        def timed(
            *args: Any, _inner: Callable[..., Any] = inner, _name: str = name, **kwargs: Any
        ) -> Any:
            t0 = clock()
            try:
                return _inner(*args, **kwargs)
            finally:
                into[_name] += clock() - t0

        setattr(engine_cls, name, timed)


def _same(x: Any, y: Any, what: str) -> None:
    """Assert that two outputs hold the same tensors, bit for bit."""
    a, b = leaves(x), leaves(y)
    assert len(a) == len(b) and all(map(torch.equal, a, b)), f"{what} differs"


def main() -> None:
    out_path, n, mode, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    parts = sys.argv[5].split(",")
    check = int(sys.argv[6]) if len(sys.argv) > 6 else 20
    torch.set_num_threads(2)
    import envgym_base.phone.engine as old_engine  # type: ignore[import-not-found]
    from envgym_base.phone.faces import PhoneVectorEnv as Old  # type: ignore[import-not-found]

    import envgym.phone.engine as new_engine
    from envgym.phone.faces import PhoneVectorEnv as New

    envs = {
        "old": Old(n, "all", obs_mode=mode, copy=False),
        "new": New(n, "all", obs_mode=mode, copy=False),
    }
    # keys from the start: a part may also run in reset() (the action mask does)
    part_time = {tag: dict.fromkeys(parts, 0.0) for tag in ("old", "new")}
    _time_parts(old_engine.PhoneEngine, parts, part_time["old"])
    _time_parts(new_engine.PhoneEngine, parts, part_time["new"])
    for env in envs.values():
        env.reset(seed=0)
    A = int(envs["old"].single_action_space.n)
    g = torch.Generator().manual_seed(0)
    acts = torch.randint(0, A, (check + steps, n), generator=g)
    step_s: dict[str, list[float]] = {"old": [], "new": []}
    part_s: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for i, act in enumerate(acts):
        order = ("old", "new") if i % 2 else ("new", "old")
        results = {}
        for tag in order:
            part_time[tag].update(dict.fromkeys(parts, 0.0))
            t0 = time.perf_counter()
            results[tag] = envs[tag].step(act)
            if i >= check:
                step_s[tag].append(time.perf_counter() - t0)
                part_s[tag].append(dict(part_time[tag]))
        if i < check:
            _same(results["old"], results["new"], "step")
            _same(envs["old"].state, envs["new"].state, "state")

    def med_ms(xs: list[float]) -> float:
        return round(statistics.median(xs[10:]) * 1e3, 3)

    row = {
        "num_envs": n,
        "obs_mode": mode,
        "parts": parts,
        "steps_compared": check,
        "steps_timed": steps,
        "step_ms": {k: med_ms(v) for k, v in step_s.items()},
        "parts_ms": {k: med_ms([sum(p.values()) for p in v]) for k, v in part_s.items()},
        "part_ms": {
            name: {k: med_ms([p[name] for p in v]) for k, v in part_s.items()} for name in parts
        },
    }
    row["step_new_over_old"] = round(row["step_ms"]["new"] / row["step_ms"]["old"], 3)
    meta = provenance(" ".join(["python", *sys.argv]))
    print(json.dumps(row))
    with open(out_path, "w") as f:
        json.dump({"meta": meta, "rows": [row]}, f, indent=1)


if __name__ == "__main__":
    main()
