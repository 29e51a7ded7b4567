"""Two versions of the robot env's resets in one process, interleaved: what a reset costs, and
what resets cost a training loop whose episodes end at different steps.

``robot_compare.py`` and ``robot_ab.py`` drive random actions: every world's episode is then
truncated at the same step, one reset call every ``episode_length`` steps, and the medians
they report leave that step out. A policy that succeeds ends its worlds' episodes at
different steps, and then nearly every step of a batch of 128 resets a world or two. Here:

- ``reset``: the median of ``_reset_worlds`` on the first ``k`` worlds (``k`` = 1 and all),
  old and new alternately; after each pair the two envs' whole states are compared bit for
  bit (the same seeds and episodes must give the same new episodes);
- ``oracle``: both envs step the scripted controller's actions (``oracle_action()``: each
  world succeeds and ends its episode at its own step) in alternating blocks of steps from
  the same seed; the *mean* step time (resets included), the share of steps that reset a
  world, the worlds reset per step, and the mean raw ``mujoco.rollout`` of the same physics
  work (the new env's state and controls, same models and thread count) for the overhead.
  Every step's observations of the two versions are compared bit for bit.

The old version is imported under another package name; make it as ``robot_ab.py``'s
docstring shows (for the commit before the change). The raw rollout is the new env's
``raw_step_seconds``.

Usage::

    PYTHONPATH=/tmp/old python docs/bench/robot_reset_ab.py OUT.json [SCENE] [N,N,...] [STEPS]
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import torch
from envgym_base.robot.env import RobotVectorEnv as OldEnv
from robot_raw import run  # a sibling script: docs/bench is on sys.path

from envgym.robot.env import RobotVectorEnv as NewEnv

BLOCK = 10
"""Steps per alternating block of the oracle loop."""


def _same_state(a: Any, b: Any) -> bool:
    sa, sb = a.state, b.state
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _reset_costs(envs: dict[str, Any], B: int, rounds: int = 40) -> dict[str, Any]:
    """Median ``_reset_worlds`` time (µs) of the first ``k`` worlds, old and new alternately."""
    out: dict[str, Any] = {}
    for k in sorted({1, B}):
        mask = torch.zeros(B, dtype=torch.bool)
        mask[:k] = True
        times: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(rounds):
            for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
                t = time.perf_counter()
                envs[name]._reset_worlds(mask, None)
                times[name].append(time.perf_counter() - t)
            if not _same_state(envs["old"], envs["new"]):
                raise AssertionError(f"the two versions' resets of {k} worlds differ")
        out[f"worlds_{k}"] = {v: 1e6 * statistics.median(ts) for v, ts in times.items()}
    return out


def _oracle_loop(envs: dict[str, Any], steps: int) -> dict[str, Any]:
    """Mean step time under the oracle, resets included, old and new in alternating blocks."""
    for e in envs.values():
        e.reset(seed=0)
    times: dict[str, list[float]] = {"old": [], "new": []}
    raw_t: list[float] = []
    resets, worlds_reset = 0, 0
    for block in range(steps // BLOCK):
        # The same BLOCK steps for both: the second version replays from the first's start.
        start = {k: e.get_state() for k, e in envs.items()}
        obs: dict[str, list[torch.Tensor]] = {"old": [], "new": []}
        for name in ("old", "new") if block % 2 == 0 else ("new", "old"):
            e = envs[name]
            e.set_state(start[name])
            for _ in range(BLOCK):
                a = e.oracle_action()
                if name == "new":
                    raw_t.append(e.raw_step_seconds(a))
                t = time.perf_counter()
                o, _, term, trunc, _ = e.step(a)
                times[name].append(time.perf_counter() - t)
                obs[name].append(o)
                if name == "new":
                    done = int((term | trunc).sum())
                    resets += done > 0
                    worlds_reset += done
        if not all(torch.equal(a, b) for a, b in zip(obs["old"], obs["new"], strict=True)):
            raise AssertionError(f"the two versions' observations differ in block {block}")
    n = len(times["new"])
    mean_raw = statistics.fmean(raw_t)
    return {
        "steps_timed": n,
        "steps_with_a_reset": resets / n,
        "worlds_reset_per_step": worlds_reset / n,
        "raw_rollout_mean_us": 1e6 * mean_raw,
        **{
            v: {
                "step_mean_us": 1e6 * statistics.fmean(ts),
                "step_median_us": 1e6 * statistics.median(ts),
                "overhead_vs_raw_mean": statistics.fmean(ts) / mean_raw - 1,
            }
            for v, ts in times.items()
        },
    }


def compare(scene: str, B: int, steps: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    envs = {"old": OldEnv(B, scene), "new": NewEnv(B, scene)}
    for e in envs.values():
        e.reset(seed=0)
    row: dict[str, Any] = {"scene": scene, "num_envs": B}
    row["reset_us"] = _reset_costs(envs, B)
    row["oracle"] = _oracle_loop(envs, steps)
    for e in envs.values():
        e.close()
    row["load_avg_1min"] = [load, os.getloadavg()[0]]
    return row


if __name__ == "__main__":
    run(compare, 600, "pick_place")
