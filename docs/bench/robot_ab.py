"""Two versions of the robot env against raw MuJoCo in one process, interleaved step by step.

``robot_compare.py`` pairs each env step with a raw rollout, but comparing two engine versions
with it means two processes minutes apart, and on a shared machine the load (and with it the
rollout's own time) changes between them. Here, per step: the raw ``mujoco.rollout``
(the new env's ``raw_step_seconds``, as in ``robot_compare.py``: its state and controls, same
models and thread count), then the old env's step and the new env's step in alternating order, from
the same seed and actions (so the same trajectories). Medians over the steps: overhead against
raw (median and fast decile), against each env's own rollout, and the time outside it.

The old version is imported under another package name; make it once, e.g. for ``afaa5c4``::

    mkdir /tmp/old && git archive afaa5c4 envgym | tar -x -C /tmp/old
    mv /tmp/old/envgym /tmp/old/envgym_base
    grep -rl envgym /tmp/old/envgym_base | xargs sed -i -E \\
        -e 's/\\benvgym\\./envgym_base./g' -e 's/from envgym import/from envgym_base import/' \\
        -e 's/^register_envs\\(\\)$/pass/' -e 's/envgym_base\\.scenarios/envgym.scenarios/g'

Usage::

    PYTHONPATH=/tmp/old python docs/bench/robot_ab.py OUT.json [SCENE] [N,N,...] [STEPS]
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import torch
from envgym_base.robot.env import RobotVectorEnv as OldEnv
from robot_raw import RolloutTimer, run  # a sibling script: docs/bench is on sys.path

from envgym.robot.env import RobotVectorEnv as NewEnv


def _summary(env_t: list[float], inside: list[float], raw_t: list[float]) -> dict[str, float]:
    p10 = statistics.quantiles
    return {
        "overhead_vs_raw": statistics.median(env_t) / statistics.median(raw_t) - 1,
        "overhead_vs_raw_p10": p10(env_t, n=10)[0] / p10(raw_t, n=10)[0] - 1,
        "overhead_vs_own_rollout": statistics.median(
            [e / i - 1 for e, i in zip(env_t, inside, strict=True)]
        ),
        "outside_rollout_us": 1e6
        * statistics.median([e - i for e, i in zip(env_t, inside, strict=True)]),
        "env_step_us": 1e6 * statistics.median(env_t),
    }


def compare(scene: str, B: int, steps: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    envs = {"old": OldEnv(B, scene), "new": NewEnv(B, scene)}
    for e in envs.values():
        e.reset(seed=0)
    new = envs["new"]
    gen = torch.Generator().manual_seed(0)
    acts = [torch.rand(B, new.engine.act_dim, generator=gen) * 2 - 1 for _ in range(steps + 20)]
    for a in acts[:20]:
        for e in envs.values():
            e.step(a)
    timers = {k: RolloutTimer(e.engine.physics.pool) for k, e in envs.items()}
    t_env: dict[str, list[float]] = {"old": [], "new": []}
    t_in: dict[str, list[float]] = {"old": [], "new": []}
    raw_t: list[float] = []
    for i, a in enumerate(acts[20:]):
        raw_t.append(new.raw_step_seconds(a))
        for k in ("old", "new") if i % 2 == 0 else ("new", "old"):
            timers[k].seconds = 0.0
            t = time.perf_counter()
            envs[k].step(a)
            t_env[k].append(time.perf_counter() - t)
            t_in[k].append(timers[k].seconds)
    for e in envs.values():
        e.close()
    row: dict[str, Any] = {"scene": scene, "num_envs": B, "steps_timed": steps}
    row.update({k: _summary(t_env[k], t_in[k], raw_t) for k in ("old", "new")})
    row["raw_rollout_us"] = 1e6 * statistics.median(raw_t)
    row["load_avg_1min"] = [load, os.getloadavg()[0]]
    return row


if __name__ == "__main__":
    run(compare, 1000, "pick_place")
