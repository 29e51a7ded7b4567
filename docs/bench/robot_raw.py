"""What the robot benchmark scripts share: a timer of the rollout inside an env's step, and
the scripts' command line and JSON.

``robot_compare.py`` (the issue's measure), ``robot_ab.py`` and ``robot_reset_ab.py`` import
these from here (``docs/bench`` is on ``sys.path`` when a script in it runs). Their raw
baseline is the env's own ``raw_step_seconds(actions)`` (``envgym bench``'s): bare
``mujoco.rollout`` doing the physics of the env's next step, from a copy of its state, under
its controls for the action, on its models, pool and thread count.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from envgym.core.machine import provenance


class RolloutTimer:
    """Wraps an env's ``Rollout.rollout`` to time the physics inside its step."""

    def __init__(self, pool: Any) -> None:
        self.inner, self.seconds = pool.rollout, 0.0
        pool.rollout = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = self.inner(*args, **kwargs)
        self.seconds += time.perf_counter() - t
        return out


def run(compare: Callable[[str, int, int], dict[str, Any]], default_steps: int, first: str) -> None:
    """``OUT.json [FIRST] [N,N,...] [STEPS]`` from the command line: ``compare`` per size,
    each row printed, all written to ``OUT.json``. ``first`` is the default of the first
    argument (a scene or an env id)."""
    out_path = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else first
    sizes = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "16,128,512").split(",")]
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else default_steps
    rows = []
    for n in sizes:
        rows.append(compare(name, n, steps))
        print(json.dumps(rows[-1]), flush=True)
    write_rows(out_path, rows)


def write_rows(out_path: str, rows: list[dict[str, Any]]) -> None:
    """The rows as JSON with the conditions they ran under (the date, the machine, the load at
    the end, the command line, the versions: :func:`envgym.core.machine.provenance`)."""
    meta = provenance(" ".join(["python", *sys.argv]), packages=("envgym", "torch", "mujoco"))
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, **meta}, f, indent=2)
