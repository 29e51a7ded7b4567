"""``envgym demo``: run every installed family's scenarios with an oracle and a random policy.

For each demo task (a registered id plus keyword arguments) the vector env runs the oracle
policy for ``steps`` steps, then (after a fresh reset with the same seed) a uniformly random
policy for ``steps`` steps. Episodes are counted where ``terminated | truncated``; success is
``info["success"]`` at that step and the return is ``info[keys.EPISODE]["r"]`` masked by
``info["_" + keys.EPISODE]``.

Families plug in through :data:`FAMILIES`: a family whose module is importable contributes its
tasks by defining ``demo_tasks() -> list[DemoTask]`` in its package (``envgym.phone``: every
shipped scenario plus a generated set). :class:`~envgym.core.family.DemoTask` is a core type, so
the families declare their rows without importing this module.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import torch
from tqdm import tqdm

from envgym.bench import random_actions, sync
from envgym.core import keys
from envgym.core.family import DemoTask

__all__ = ["DemoRow", "DemoTask", "demo_tasks", "installed_families", "run_demo", "run_policy"]

DEMO_POLICIES = ("oracle", "random")


@dataclass
class DemoRow:
    """The outcome of one policy on one task."""

    family: str
    scenario: str
    policy: str
    num_envs: int
    steps: int
    episodes: int
    successes: int
    success_rate: float | None
    mean_return: float | None
    env_steps_per_s: float
    seconds: float


def _module_tasks(module: str) -> Callable[[], list[DemoTask]]:
    def tasks() -> list[DemoTask]:
        mod = importlib.import_module(module)
        fn = getattr(mod, "demo_tasks", None)
        return list(fn()) if fn is not None else []

    return tasks


FAMILIES: dict[str, tuple[str, Callable[[], list[DemoTask]]]] = {
    "phone": ("envgym.phone", _module_tasks("envgym.phone")),
    "robot": ("envgym.robot", _module_tasks("envgym.robot")),
    "browser": ("envgym.browser", _module_tasks("envgym.browser")),
}
"""family -> (module that must be importable, function listing its demo tasks)."""


def installed_families() -> list[str]:
    """Families whose module is present in this installation."""
    out = []
    for name, (module, _) in FAMILIES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if found:
            out.append(name)
    return out


def demo_tasks(
    families: list[str] | None = None, scenarios: list[str] | None = None
) -> list[DemoTask]:
    """The demo's tasks.

    Args:
        families: restrict to these families (default: every installed one).
        scenarios: restrict to tasks whose label starts with one of these (e.g. ``mock``,
            ``generated``).
    """
    out: list[DemoTask] = []
    for fam in families or installed_families():
        if fam not in FAMILIES:
            raise ValueError(f"unknown family {fam!r}; known: {sorted(FAMILIES)}")
        out.extend(FAMILIES[fam][1]())
    if scenarios:
        out = [t for t in out if any(t.label.startswith(s) for s in scenarios)]
    return out


def run_policy(
    envs: Any, policy: str, steps: int, seed: int, progress: tqdm | None = None
) -> DemoRow:
    """Run one policy on a vector env from a fresh reset and count the episodes that ended.

    Args:
        envs: a vector env (``TorchVectorEnv``) with ``oracle_action()`` for ``"oracle"``.
        policy: ``"oracle"`` or ``"random"``.
        steps: vector steps to run.
        seed: reset seed (and seed of the random actions).
        progress: a tqdm bar to advance by one per step.

    Returns:
        A :class:`DemoRow` (family and scenario left empty for the caller to fill in).
    """
    if policy not in DEMO_POLICIES:
        raise ValueError(f"policy must be one of {DEMO_POLICIES}, got {policy!r}")
    dev = torch.device(envs.unwrapped.device)
    n = int(envs.num_envs)
    envs.reset(seed=seed)
    acts: Any = None
    if policy == "random":
        space = envs.single_action_space
        if isinstance(space, gym.spaces.Discrete | gym.spaces.Box):
            g = torch.Generator(device=dev)
            g.manual_seed(int(seed))
            acts = random_actions(space, steps, n, dev, g)
        else:  # e.g. text commands: per-world samples of the single action space
            sampler = copy.deepcopy(space)
            sampler.seed(int(seed))
            acts = [[sampler.sample() for _ in range(n)] for _ in range(steps)]
    episodes = torch.zeros((), dtype=torch.int64, device=dev)
    successes = torch.zeros((), dtype=torch.int64, device=dev)
    ret_sum = torch.zeros((), dtype=torch.float64, device=dev)
    step_time = 0.0
    for t in range(steps):
        a = envs.unwrapped.oracle_action() if acts is None else acts[t]
        sync(dev)
        t0 = time.perf_counter()
        _, _, term, trunc, info = envs.step(a)
        sync(dev)
        step_time += time.perf_counter() - t0
        done = term | trunc
        episodes += done.sum()
        successes += (info["success"] & done).sum()
        ended = info["_" + keys.EPISODE]
        ret_sum += torch.where(ended, info[keys.EPISODE]["r"], 0.0).sum().to(torch.float64)
        if progress is not None:
            progress.update(1)
    eps = int(episodes)
    return DemoRow(
        family="",
        scenario="",
        policy=policy,
        num_envs=n,
        steps=steps,
        episodes=eps,
        successes=int(successes),
        success_rate=int(successes) / eps if eps else None,
        mean_return=float(ret_sum) / eps if eps else None,
        env_steps_per_s=n * steps / max(step_time, 1e-12),
        seconds=step_time,
    )


def run_demo(
    num_envs: int = 256,
    steps: int = 300,
    device: str = "cpu",
    seed: int = 0,
    families: list[str] | None = None,
    scenarios: list[str] | None = None,
    progress: bool = True,
) -> list[DemoRow]:
    """Run the oracle and the random policy on every demo task.

    Args:
        num_envs: worlds per vector env.
        steps: vector steps per policy per task.
        device: torch device.
        seed: reset seed of every run.
        families: restrict to these families (default: every installed one).
        scenarios: restrict to tasks whose label starts with one of these.
        progress: show a tqdm progress bar over all the steps (on stderr, when it is a
            terminal).

    Returns:
        One :class:`DemoRow` per task and policy, oracle first.
    """
    import envgym  # noqa: F401  (registers the ids)

    tasks = demo_tasks(families, scenarios)
    rows: list[DemoRow] = []
    total = sum(len(DEMO_POLICIES) * t.sizes(num_envs, steps)[1] for t in tasks)
    # disable=None: tqdm hides itself when stderr isn't a terminal (logs stay readable).
    with tqdm(
        total=total, disable=None if progress else True, unit="step", dynamic_ncols=True
    ) as bar:
        for task in tasks:
            task_envs, task_steps = task.sizes(num_envs, steps)
            envs = gym.make_vec(
                task.env_id,
                num_envs=task_envs,
                vectorization_mode="vector_entry_point",
                device=device,
                **task.kwargs,
            )
            try:
                for policy in DEMO_POLICIES:
                    bar.set_description(f"{task.label} / {policy}")
                    row = run_policy(envs, policy, task_steps, seed, bar)
                    row.family, row.scenario = task.family, task.label
                    rows.append(row)
            finally:
                envs.close()
    return rows


def summarize(rows: list[DemoRow]) -> dict[str, dict[str, float | int | None]]:
    """Per policy: episodes, successes and success rate over all rows."""
    out: dict[str, dict[str, float | int | None]] = {}
    for policy in DEMO_POLICIES:
        eps = sum(r.episodes for r in rows if r.policy == policy)
        succ = sum(r.successes for r in rows if r.policy == policy)
        out[policy] = {
            "episodes": eps,
            "successes": succ,
            "success_rate": succ / eps if eps else None,
        }
    return out


def format_table(rows: list[DemoRow]) -> str:
    """The demo's results as a fixed-width text table."""

    def f(x: float | None, fmt: str) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

    head = ("family", "scenario", "policy", "episodes", "success", "mean return", "env-steps/s")
    body = [
        (
            r.family,
            r.scenario,
            r.policy,
            str(r.episodes),
            f(r.success_rate, ".1%"),
            f(r.mean_return, "+.3f"),
            f(r.env_steps_per_s, ",.0f"),
        )
        for r in rows
    ]
    summary = summarize(rows)
    for policy, s in summary.items():
        body.append(("all", "", policy, str(s["episodes"]), f(s["success_rate"], ".1%"), "", ""))
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    right = {3, 4, 5, 6}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    lines = [
        line(head),
        sep,
        *(line(b) for b in body[: len(rows)]),
        sep,
        *(line(b) for b in body[len(rows) :]),
    ]
    return "\n".join(lines)


def rows_to_json(rows: list[DemoRow]) -> list[dict[str, Any]]:
    """The rows as JSON-serialisable dicts."""
    return [asdict(r) for r in rows]
