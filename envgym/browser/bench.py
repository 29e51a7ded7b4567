"""Browser benchmarks: env-steps/s of N pages, reset time, and overhead against raw Playwright.

Workloads (``policy``):

- ``fill``: every world fills its first textbox with a new word each step (an in-page action);
- ``navigate``: every world clicks its first and second tab in turn (a page load each step);
- ``oracle`` / ``random``: the oracle or uniformly sampled commands (auto-resets included).

For ``fill`` and ``navigate`` the raw baseline does the same operations on the same pages in
the same run with bare Playwright: ``locator(...).fill()`` / ``.click()`` then
``locator("body").aria_snapshot(mode="ai")`` for every page, concurrently with
``asyncio.gather``: what the env adds (parsing, settling, judging, tokens, tensors) is the
difference. Reset time is measured on a single env (``reset()`` moving to the next episode).
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from typing import Any

import gymnasium as gym

from envgym.core.machine import provenance

BROWSER_POLICIES = ("fill", "navigate", "oracle", "random")

_ROLE_OF = {"fill": "textbox", "navigate": "tab"}


def _refs(tree: str, role: str) -> list[str]:
    return re.findall(rf"- {role}(?: \"[^\"]*\")?[^\n]*\[ref=((?:f\d+)?e\d+)\]", tree)


def _action(policy: str, tree: str, t: int) -> str:
    refs = _refs(tree, _ROLE_OF[policy])
    if not refs or (policy == "navigate" and len(refs) < 2):
        raise ValueError(f"the {policy!r} workload needs a page with {_ROLE_OF[policy]}s")
    if policy == "fill":
        return f"fill {refs[0]} word{t}"
    return f"click {refs[t % 2]}"


def reset_ms(env_id: str, episodes: int = 20, **kwargs: Any) -> float:
    """Mean milliseconds of ``reset()`` (next episode of a warm single env)."""
    env = gym.make(env_id, **kwargs)
    try:
        env.reset(seed=0)
        env.reset()
        t0 = time.perf_counter()
        for _ in range(episodes):
            env.reset()
        return (time.perf_counter() - t0) / episodes * 1000
    finally:
        env.close()


def bench_browser(
    env_id: str,
    num_envs: int,
    steps: int = 60,
    warmup: int = 5,
    policy: str = "fill",
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Time ``env.step`` of a browser vector env, and raw Playwright doing the same.

    Returns:
        A row like :func:`envgym.bench.bench_env`'s, plus ``reset_ms`` (single env, per
        episode) and ``batch_reset_ms`` (all ``num_envs`` worlds reset together).
    """
    import envgym  # noqa: F401

    if policy not in BROWSER_POLICIES:
        raise ValueError(f"browser policy must be one of {BROWSER_POLICIES}, got {policy!r}")
    kwargs = dict(env_kwargs or {})
    if policy in _ROLE_OF:
        kwargs.setdefault("max_steps", 10**6)
    envs = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    base = envs.unwrapped
    try:
        timings = _timings(envs, policy, steps, warmup, seed)
        return {
            "id": env_id,
            "family": "browser",
            "env_kwargs": {k: str(v) for k, v in kwargs.items()},
            "num_envs": int(num_envs),
            "device": str(base.device),
            "device_name": "Chromium " + _chromium_version(base),
            "steps": int(steps),
            "warmup": int(warmup),
            "seed": int(seed),
            "policy": policy,
            "num_actions": None,
            **timings,
            "reset_ms": reset_ms(env_id, **{k: v for k, v in kwargs.items() if k != "max_steps"}),
            **provenance(command, packages=("envgym", "torch", "playwright")),
        }
    finally:
        envs.close()


def _timings(envs: Any, policy: str, steps: int, warmup: int, seed: int) -> dict[str, Any]:
    """Two batch resets, the workload's ``env.step`` and, for ``fill`` and ``navigate``, raw
    Playwright doing the same: a row's timing fields."""
    t0 = time.perf_counter()
    envs.reset(seed=seed)
    first_reset = time.perf_counter() - t0
    t0 = time.perf_counter()
    obs, _ = envs.reset(seed=seed)
    batch_reset = time.perf_counter() - t0
    env_time = _time_steps(envs, obs, policy, steps, warmup, seed)
    raw_time = None
    if policy in _ROLE_OF:
        raw_time = _raw_playwright(envs.unwrapped, policy, steps, warmup)
    env_sps = envs.num_envs * steps / max(env_time, 1e-12)
    raw_sps = envs.num_envs * steps / raw_time if raw_time else None
    return {
        "env_time_s": env_time,
        "env_steps_per_s": env_sps,
        "oracle_time_s": None,
        "raw_baseline": (
            f"bare Playwright on the same pages: {policy} + aria_snapshot, asyncio.gather"
            if raw_time
            else None
        ),
        "raw_time_s": raw_time,
        "raw_steps_per_s": raw_sps,
        "ratio": env_sps / raw_sps if raw_sps else None,
        "first_reset_s": first_reset,
        "batch_reset_ms": batch_reset * 1000,
    }


def _time_steps(envs: Any, obs: Any, policy: str, steps: int, warmup: int, seed: int) -> float:
    """Seconds in ``envs.step`` over ``steps`` steps of the workload after ``warmup``, from the
    observation ``obs`` (the workload's actions are made outside the timed calls)."""
    base, num_envs = envs.unwrapped, envs.num_envs
    sampler = copy.deepcopy(envs.single_action_space)
    sampler.seed(seed)

    def actions(t: int) -> list[Any]:
        if policy == "oracle":
            return base.oracle_action()
        if policy == "random":
            return [sampler.sample() for _ in range(num_envs)]
        return [_action(policy, obs["tree"][i], t) for i in range(num_envs)]

    for t in range(warmup):
        obs, *_ = envs.step(actions(t))
    env_time = 0.0
    for t in range(warmup, warmup + steps):
        a = actions(t)
        t1 = time.perf_counter()
        obs, *_ = envs.step(a)
        env_time += time.perf_counter() - t1
    return env_time


def _chromium_version(base: Any) -> str:
    pool = base.engine.pool

    async def version() -> str:
        return str((await pool.browser(0)).version)

    try:
        return pool.run(version(), timeout=10)
    except Exception:
        return "unknown"


def _raw_playwright(base: Any, policy: str, steps: int, warmup: int) -> float:
    """Seconds for ``steps`` rounds of the same operation + aria_snapshot on every page.

    Like the env, each page's target comes from its previous snapshot's refs
    (``aria-ref=...`` locators), so both do the same browser work.
    """
    pages = [w.page for w in base.engine.worlds]
    role = _ROLE_OF[policy]

    async def one(page: Any, tree: str, t: int) -> str:
        refs = _refs(tree, role)
        loc = page.locator(f"aria-ref={refs[0 if policy == 'fill' else t % 2]}")
        if policy == "fill":
            await loc.fill(f"raw{t}")
        else:
            await loc.click()
        return str(await page.locator("body").aria_snapshot(mode="ai"))

    async def run() -> float:
        trees = [str(await p.locator("body").aria_snapshot(mode="ai")) for p in pages]
        for t in range(warmup):
            jobs = (one(p, x, t) for p, x in zip(pages, trees, strict=True))
            trees = list(await asyncio.gather(*jobs))
        t0 = time.perf_counter()
        for t in range(steps):
            jobs = (one(p, x, t) for p, x in zip(pages, trees, strict=True))
            trees = list(await asyncio.gather(*jobs))
        return time.perf_counter() - t0

    return float(base.engine.pool.run(run(), timeout=600))


def format_browser_row(row: dict[str, Any]) -> str:
    """Extra lines for a browser bench row (reset times)."""
    return (
        f"  reset:         {row['reset_ms']:>14.1f} ms per episode (single env, warm)"
        f"   batch reset of {row['num_envs']}: {row['batch_reset_ms']:.1f} ms"
    )
