"""Two versions of a big phone batch with ``copy=True``, stepped as a training loop steps it.

The caller keeps each step's outputs until the next step returns (``out = envs.step(a)``),
so memory a step hands out is held for one step, then dropped. Per step: minor page faults
(``resource.getrusage``) and wall time, medians over the steps.

- ``local``: the old and the new ``PhoneVectorEnv(N, "all", copy=True, obs_mode=MODE)`` in one
  process, stepped alternately from the same seed and actions; every output of every step is
  compared, bit for bit.
- ``ray``: ``RayVectorEnv`` of ``N`` worlds on 2 workers (1 CPU each; the workers' envs with
  ``copy=False``), old learner and new learner one after the other (one Ray session each), then
  the new learner with its recycling switched off and on in alternating blocks of 5 steps
  (``envgym.core.allocator.BIG_BYTES``).

The old version is imported under another package name, made as ``robot_ab.py``'s docstring
says (``envgym_base``). Usage::

    PYTHONPATH=/tmp/old python docs/bench/copy_ab.py OUT.json local [N] [MODE] [STEPS]
    PYTHONPATH=/tmp/old python docs/bench/copy_ab.py OUT.json ray [N] [MODE] [STEPS]
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from typing import Any

import torch

from envgym.core import allocator
from envgym.core.machine import provenance


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def leaves(x: Any) -> list[torch.Tensor]:
    """The tensors in an output (dicts by sorted key, tuples and lists in order), for a
    bit-for-bit compare of two versions' outputs (``phone_parts_ab.py`` uses it too)."""
    if torch.is_tensor(x):
        return [x]
    if isinstance(x, dict):
        return [t for k in sorted(x) for t in leaves(x[k])]
    if isinstance(x, tuple | list):
        return [t for v in x for t in leaves(v)]
    return []


def _summary(times: list[float], faults: list[int], n: int) -> dict[str, float]:
    med = statistics.median(times)
    return {
        "ms_per_step": med * 1e3,
        "env_steps_per_s": n / med,
        "minor_faults_per_step": statistics.median(faults),
    }


def local(n: int, mode: str, steps: int) -> dict[str, Any]:
    from envgym_base.phone.faces import PhoneVectorEnv as Old

    from envgym.phone.faces import PhoneVectorEnv as New

    envs = {"old": Old(n, "all", obs_mode=mode), "new": New(n, "all", obs_mode=mode)}
    for e in envs.values():
        e.reset(seed=0)
    acts = torch.randint(0, int(envs["new"].single_action_space.n), (steps + 5, n))
    times: dict[str, list[float]] = {k: [] for k in envs}
    faults: dict[str, list[int]] = {k: [] for k in envs}
    last: dict[str, Any] = {}
    for i, a in enumerate(acts):
        for k in ("old", "new") if i % 2 == 0 else ("new", "old"):
            f0, t0 = _faults(), time.perf_counter()
            last[k] = envs[k].step(a)
            dt, df = time.perf_counter() - t0, _faults() - f0
            if i >= 5:
                times[k].append(dt)
                faults[k].append(df)
        old, new = leaves(last["old"]), leaves(last["new"])
        assert len(old) == len(new) and all(map(torch.equal, old, new)), f"step {i} differs"
    return {k: _summary(times[k], faults[k], n) for k in envs}


def _ray_steps(cls: type, n: int, mode: str, steps: int, toggle: bool) -> dict[str, Any]:
    env = cls("envgym/Phone-v0", n, 2, scenario="all", obs_mode=mode, copy=False)
    try:
        env.reset(seed=0)
        acts = torch.randint(0, int(env.single_action_space.n), (steps + 4, n)).numpy()
        arms: dict[str, tuple[list[float], list[int]]] = {"on": ([], []), "off": ([], [])}
        out = None
        for i, a in enumerate(acts):
            arm = "on" if not toggle or (i // 5) % 2 == 0 else "off"
            allocator.BIG_BYTES = 1 << 20 if arm == "on" else 1 << 62
            f0, t0 = _faults(), time.perf_counter()
            out = env.step(a)
            if i >= 4:
                arms[arm][0].append(time.perf_counter() - t0)
                arms[arm][1].append(_faults() - f0)
        del out
        return {k: _summary(t, f, n) for k, (t, f) in arms.items() if t}
    finally:
        allocator.BIG_BYTES = 1 << 20
        env.close()


def ray(n: int, mode: str, steps: int) -> dict[str, Any]:
    import ray as ray_
    from envgym_base.distributed import RayVectorEnv as Old

    import envgym  # noqa: F401  (registers the ids the workers make)
    from envgym.distributed import RayVectorEnv as New

    result = {}
    for name, cls, toggle in (("old", Old, False), ("new", New, False), ("new_toggled", New, True)):
        ray_.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            result[name] = _ray_steps(cls, n, mode, steps, toggle)
        finally:
            ray_.shutdown()
    return result


def main() -> None:
    out_path, what = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
    mode = sys.argv[4] if len(sys.argv) > 4 else "tokens"
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 60
    torch.set_num_threads(2 if what == "local" else 1)
    rows = local(n, mode, steps) if what == "local" else ray(n, mode, steps)
    result = {
        "num_envs": n,
        "obs_mode": mode,
        "rows": rows,
        **provenance(" ".join(["python", *sys.argv]), packages=("envgym", "torch", "ray")),
    }
    print(json.dumps(result, indent=2))
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
