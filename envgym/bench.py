"""Throughput benchmarks: an envgym vector env against a raw backend baseline.

Usable from Python::

    from envgym.bench import bench_env
    row = bench_env("envgym/Phone-v0", num_envs=1024, device="cuda", steps=200)
    print(row["env_steps_per_s"], row["raw_steps_per_s"], row["ratio"])

and from the command line as ``envgym bench``.

The env figure counts ``env.step`` only: random actions are drawn on the device before the
timed loop, and the oracle policy's time (``envs.oracle_action()``) is measured separately. The
raw baseline is the family's backend with none of envgym around it, same batch size, same
device, same process. An env that knows its backend times it itself: the robot env runs raw MuJoCo
on its models right before each timed step, doing that step's physics from the same state
under the same controls (``raw_step_seconds``: the same work under any policy, so the
oracle's contact-heavy grasps count on both sides); the phone vector env (``raw_baseline``,
timed after the env) runs the phone *ceiling*
(:mod:`envgym.phone.ceiling`: a minimal table-driven dialogue step with message ids, a
verification bitmask, reward, auto-reset and the token gather, at the env's own shapes), so
``ratio`` is ``env / ceiling``. Other phone envs (real-time) fall back to a bare tabular state
machine stepped by a plain torch loop (``state = table[state, action]`` plus a reward gather).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from envgym.core.allocator import allocator_mode
from envgym.core.machine import device_name, provenance

POLICIES = ("random", "oracle")
_PACKAGES = ("envgym", "torch", "gymnasium")
"""The software whose versions a row records (see :func:`envgym.core.machine.provenance`)."""
RAW_NUM_STATES = 64


def sync(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def family_of(env_id: str) -> str:
    """The family of a registered envgym id (``"unknown"`` for ids envgym didn't register)."""
    from envgym.registration import entries

    for e in entries():
        if e.id == env_id:
            return e.family
    return "unknown"


def random_actions(
    space: gym.Space, steps: int, num_envs: int, device: torch.device, generator: torch.Generator
) -> torch.Tensor:
    """``steps`` batches of uniformly random actions for ``num_envs`` worlds, on ``device``.

    Args:
        space: the env's single action space (``Discrete`` or bounded ``Box``).
        steps: number of batches.
        num_envs: worlds per batch.
        device: where the actions live.
        generator: a torch generator on ``device``.

    Returns:
        ``[steps, num_envs, *shape]`` actions.
    """
    if isinstance(space, spaces.Discrete):
        lo = int(space.start)
        return torch.randint(
            lo, lo + int(space.n), (steps, num_envs), device=device, generator=generator
        )
    if (
        isinstance(space, spaces.Box)
        and np.all(np.isfinite(space.low))
        and np.all(np.isfinite(space.high))
    ):
        low = torch.as_tensor(space.low, dtype=torch.float32, device=device)
        high = torch.as_tensor(space.high, dtype=torch.float32, device=device)
        u = torch.rand((steps, num_envs, *space.shape), device=device, generator=generator)
        return low + u * (high - low)
    raise NotImplementedError(f"no random policy for action space {space}")


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def raw_tabular_steps_per_s(
    num_envs: int,
    num_actions: int,
    device: str | torch.device = "cpu",
    steps: int = 200,
    warmup: int = 20,
    seed: int = 0,
    num_states: int = RAW_NUM_STATES,
) -> tuple[float, float]:
    """Time a bare tabular state machine: the phone family's raw backend baseline.

    Each step is ``reward = reward_table[state, action]; state = table[state, action]`` over
    ``num_envs`` worlds, with random actions drawn on the device before the timed loop (as the
    env benchmark draws them).

    Args:
        num_envs: batch size.
        num_actions: actions per state (use the env's action count).
        device: torch device.
        steps: timed steps.
        warmup: untimed steps first.
        seed: seeds the tables and the actions.
        num_states: rows of the transition table.

    Returns:
        ``(steps_per_s, seconds)``: world-steps per second and the timed seconds.
    """
    dev = torch.device(device)
    g = _generator(dev, seed)
    table = torch.randint(0, num_states, (num_states, num_actions), device=dev, generator=g)
    reward_table = torch.rand((num_states, num_actions), device=dev, generator=g)
    state = torch.zeros(num_envs, dtype=torch.int64, device=dev)
    total = torch.zeros(num_envs, dtype=torch.float32, device=dev)
    actions = torch.randint(0, num_actions, (warmup + steps, num_envs), device=dev, generator=g)
    for t in range(warmup):
        a = actions[t]
        total += reward_table[state, a]
        state = table[state, a]
    sync(dev)
    t0 = time.perf_counter()
    for t in range(warmup, warmup + steps):
        a = actions[t]
        total += reward_table[state, a]
        state = table[state, a]
    sync(dev)
    dt = time.perf_counter() - t0
    return num_envs * steps / max(dt, 1e-12), dt


RawBaseline = Callable[..., tuple[float, float]]
"""``f(num_envs, num_actions, device, steps, warmup, seed) -> (steps_per_s, seconds)``."""

RAW_BASELINES: dict[str, tuple[str, RawBaseline]] = {
    "phone": ("plain torch loop: tabular state machine, 64 states", raw_tabular_steps_per_s),
}
"""Per family: a description of its raw backend baseline and the function that times it."""


def _num_actions(space: gym.Space) -> int:
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    raise NotImplementedError(f"no tabular baseline for action space {space}")


def _time_steps(
    envs: Any, policy: str, steps: int, warmup: int, seed: int, paired: PairedRaw | None = None
) -> tuple[float, float | None, float | None]:
    """Seconds in ``envs.step`` over ``steps`` steps after ``warmup``, and, for the oracle
    policy, the seconds the oracle took, and with ``paired``, the raw baseline's seconds of
    each timed step's physics (see :func:`_time_loop`)."""
    base, dev = envs.unwrapped, envs.unwrapped.device
    if policy == "random":
        g = _generator(dev, seed)
        acts = random_actions(envs.single_action_space, warmup + steps, envs.num_envs, dev, g)
        return _time_loop(envs.step, acts.__getitem__, None, steps, warmup, dev, paired)
    return _time_loop(envs.step, None, base.oracle_action, steps, warmup, dev, paired)


PairedRaw = Callable[[Any], float]
"""An env's ``raw_step_seconds(actions)``: seconds of its bare backend doing the work of
``step(actions)`` from the current state, leaving the state as it is."""


def _time_loop(
    step: Callable[[Any], Any],
    drawn: Callable[[int], Any] | None,
    oracle: Callable[[], Any] | None,
    steps: int,
    warmup: int,
    dev: torch.device,
    paired: PairedRaw | None = None,
) -> tuple[float, float | None, float | None]:
    """The timed loop of every env benchmark: ``warmup`` untimed calls of ``step``, then
    ``steps`` timed ones, on actions ``drawn(t)`` for step ``t`` (drawn before the loop: one
    timed span) or from ``oracle()`` (called before each step and timed apart). With
    ``paired``, the raw baseline does each step's work right before it (timed step by step,
    not in one span). Returns the seconds in ``step``, the oracle's seconds and the paired
    raw seconds (``None`` without an oracle, without ``paired``)."""
    if drawn is not None and paired is None:
        for t in range(warmup):
            step(drawn(t))
        sync(dev)
        t0 = time.perf_counter()
        for t in range(warmup, warmup + steps):
            step(drawn(t))
        sync(dev)
        return time.perf_counter() - t0, None, None

    def action(t: int) -> Any:
        if drawn is not None:
            return drawn(t)
        assert oracle is not None
        return oracle()

    env_time = oracle_time = raw_time = 0.0
    for t in range(warmup + steps):
        t0 = time.perf_counter()
        a = action(t)
        sync(dev)
        t1 = time.perf_counter()
        raw = paired(a) if paired is not None else 0.0
        t2 = time.perf_counter()
        step(a)
        sync(dev)
        t3 = time.perf_counter()
        if t >= warmup:
            oracle_time += t1 - t0
            env_time += t3 - t2
            raw_time += raw
    return (
        env_time,
        oracle_time if drawn is None else None,
        raw_time if paired is not None else None,
    )


def _raw_baseline(
    base: Any, family: str, space: gym.Space, steps: int, warmup: int, seed: int
) -> tuple[str | None, float | None, float | None]:
    """(description, steps/s, seconds) of the env's raw baseline: its own (``raw_baseline``:
    raw MuJoCo for the robot env, the ceiling for the phone vector env), else the family's."""
    if hasattr(base, "raw_baseline"):
        return base.raw_baseline(steps, warmup, seed)
    if family in RAW_BASELINES:
        desc, raw_fn = RAW_BASELINES[family]
        sps, secs = raw_fn(base.num_envs, _num_actions(space), base.device, steps, warmup, seed)
        return desc, sps, secs
    return None, None, None


def bench_env(
    env_id: str,
    num_envs: int,
    device: str = "cpu",
    steps: int = 200,
    warmup: int = 20,
    policy: str = "random",
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Time ``env.step`` of a vector env and its family's raw backend baseline.

    Args:
        env_id: a registered id, e.g. ``"envgym/Phone-v0"``.
        num_envs: batch size.
        device: torch device of the env and the baseline.
        steps: timed steps.
        warmup: untimed steps first (each timed separately from the measured steps).
        policy: ``"random"`` (uniform actions drawn on the device) or ``"oracle"``
            (``envs.oracle_action()``, timed separately as ``oracle_time_s``).
        seed: seeds the env reset, the random actions and the baseline.
        env_kwargs: extra keyword arguments for ``gym.make_vec`` (e.g. ``scenario``).
        command: the command line to record (default: ``sys.argv``).

    Returns:
        One result row (a JSON-serialisable dict): ``env_steps_per_s``, ``raw_steps_per_s``,
        ``ratio`` and the conditions they were measured under.
    """
    import envgym  # noqa: F401  (registers the ids)

    if family_of(env_id) == "browser":
        # Real browser pages: its own workloads and a raw-Playwright baseline.
        from envgym.browser.bench import bench_browser

        timing = {"steps": steps, "warmup": warmup, "policy": policy, "seed": seed}
        return bench_browser(env_id, num_envs, **timing, env_kwargs=env_kwargs, command=command)
    _check_bench_args(policy, steps, warmup)
    from envgym.core.vector import resolve_device

    dev = resolve_device(device)
    kwargs = dict(env_kwargs or {})
    envs = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        device=str(dev),
        **kwargs,
    )
    try:
        space = envs.single_action_space
        envs.reset(seed=seed)
        family = family_of(env_id)
        timings = _env_timings(envs, family, policy, steps, warmup, seed)
        return {
            "id": env_id,
            "family": family,
            "env_kwargs": _as_text(kwargs),
            "num_envs": int(num_envs),
            "device": str(dev),
            "device_name": device_name(dev),
            "allocator": allocator_mode(),
            "steps": int(steps),
            "warmup": int(warmup),
            "seed": int(seed),
            "policy": policy,
            "num_actions": _num_actions(space) if isinstance(space, spaces.Discrete) else None,
            **timings,
            **provenance(command, packages=_PACKAGES),
        }
    finally:
        envs.close()


def _check_bench_args(policy: str, steps: int, warmup: int) -> None:
    """A known policy, at least one timed step and no negative warmup."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")


def _env_timings(
    envs: Any, family: str, policy: str, steps: int, warmup: int, seed: int
) -> dict[str, Any]:
    """``env.step`` timed under ``policy`` and the raw baseline: paired with the steps where
    the env times its backend step by step (``raw_step_seconds``: the robot), else after them
    (the env's own ``raw_baseline``, else the ``family``'s). A row's timing fields."""
    base = envs.unwrapped
    paired = getattr(base, "raw_step_seconds", None)
    env_time, oracle_time, raw_time = _time_steps(envs, policy, steps, warmup, seed, paired)
    if raw_time is not None:
        raw_desc, raw_sps = base.raw_baseline_name(), envs.num_envs * steps / max(raw_time, 1e-12)
    else:
        raw_desc, raw_sps, raw_time = _raw_baseline(
            base, family, envs.single_action_space, steps, warmup, seed
        )
    env_sps = envs.num_envs * steps / max(env_time, 1e-12)
    return {
        "env_time_s": env_time,
        "env_steps_per_s": env_sps,
        "oracle_time_s": oracle_time,
        "raw_baseline": raw_desc,
        "raw_time_s": raw_time,
        "raw_steps_per_s": raw_sps,
        "ratio": env_sps / raw_sps if raw_sps else None,
    }


def _as_text(kwargs: dict[str, Any]) -> dict[str, str]:
    """Env keyword arguments as a row shows them (values as text)."""
    return {k: str(v) for k, v in kwargs.items()}


def bench_three_party(
    num_envs: int,
    learners: tuple[str, ...] = ("assistant", "rep", "user"),
    device: str = "cpu",
    steps: int = 200,
    warmup: int = 20,
    policy: str = "random",
    seed: int = 0,
    scenario: Any = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Time the batched three-party phone env in the same run as the single-agent phone env.

    The single-agent row is :func:`bench_env` on ``envgym/Phone-v0`` (same batch, device,
    policy, scenario), with its raw baseline; the three-party figure is
    ``PhoneParallelVectorEnv.step`` with ``learners`` learned, actions for every learner drawn
    before the timed loop (``random``) or from each learner's oracle (``oracle``, whose time is
    recorded apart). A step is one turn in each world: a learned rep's or user's turn is a step
    of its own, so calls take more steps than in the single-agent env.

    Returns:
        The single-agent row plus ``three_party_*`` fields and ``ratio_three_party_vs_single``.
    """
    from envgym.phone.multiagent import PhoneParallelVectorEnv

    kwargs = {} if scenario is None else {"scenario": scenario}
    row = bench_env(
        "envgym/Phone-v0", num_envs, device, steps, warmup, policy, seed, kwargs, command
    )
    dev = torch.device(row["device"])
    env = PhoneParallelVectorEnv(num_envs, learners=learners, device=dev, **kwargs)
    try:
        env.reset(seed=seed)
        if policy == "random":
            g = _generator(dev, seed)
            drawn = {
                a: random_actions(env.single_action_spaces[a], warmup + steps, num_envs, dev, g)
                for a in env.learners
            }
            env_time, oracle_time, _ = _time_loop(
                env.step, lambda t: {a: v[t] for a, v in drawn.items()}, None, steps, warmup, dev
            )
        else:
            env_time, oracle_time, _ = _time_loop(
                env.step, None, env.oracle_actions, steps, warmup, dev
            )
    finally:
        env.close()
    sps = num_envs * steps / max(env_time, 1e-12)
    row.update(
        {
            "three_party_learners": list(env.learners),
            "three_party_time_s": env_time,
            "three_party_steps_per_s": sps,
            "three_party_oracle_time_s": oracle_time,
            "ratio_three_party_vs_single": sps / row["env_steps_per_s"],
            "ratio_three_party_vs_raw": sps / row["raw_steps_per_s"]
            if row["raw_steps_per_s"]
            else None,
        }
    )
    return row


def _times(x: float) -> str:
    """A speed-up factor as people write it: ``1.16`` -> ``1.2x``, ``157.3`` -> ``157x``."""
    return f"{x:.1f}x" if x < 10 else f"{x:,.0f}x"


def format_three_party_row(row: dict[str, Any]) -> str:
    """A :func:`bench_three_party` row as a few readable lines."""
    learners = ",".join(row["three_party_learners"])
    return "\n".join(
        [
            format_row(row),
            f"  three parties: {row['three_party_steps_per_s']:>14,.0f} steps/s"
            f"  (learners {learners}; "
            f"{row['ratio_three_party_vs_single']:.2f}x the single-agent env)",
        ]
    )


def format_row(row: dict[str, Any]) -> str:
    """A bench row as a few readable lines."""

    def num(x: float | None, fmt: str = ",.0f") -> str:
        return "n/a" if x is None else format(x, fmt)

    extra = " ".join(f"{k}={v}" for k, v in row.get("env_kwargs", {}).items() if k != "scenario")
    lines = [
        f"{row['id']}  num_envs={row['num_envs']}  device={row['device']} ({row['device_name']})"
        f"  torch_threads={row['torch_threads']}  policy={row['policy']}  steps={row['steps']}"
        + (f"  [{extra}]" if extra else ""),
        f"  env.step:      {num(row['env_steps_per_s']):>14} env-steps/s"
        f"  ({row['env_time_s']:.3f} s)",
    ]
    if row.get("oracle_time_s") is not None:
        lines.append(
            f"  oracle policy: {row['oracle_time_s']:.3f} s over {row['steps']} steps "
            "(not in the env figure)"
        )
    lines.append(
        f"  raw baseline:  {num(row['raw_steps_per_s']):>14} steps/s"
        + (f"  ({row['raw_baseline']})" if row.get("raw_baseline") else "  (none for this family)")
    )
    ratio = row.get("ratio")
    what = "ceiling" if str(row.get("raw_baseline") or "").startswith("phone ceiling") else "raw"
    lines.append(
        f"  ratio env/{what}: {num(ratio, '.3g'):>10}"
        + (f"  (the raw loop is {_times(1 / ratio)} faster)" if ratio else "")
    )
    if row.get("family") == "browser":
        from envgym.browser.bench import format_browser_row

        lines.append(format_browser_row(row))
    return "\n".join(lines)


# --------------------------------------------------------------------------- served envs


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _play_in_process(env_id: str, sessions: int, steps: int, seed: int, kwargs: dict) -> tuple:
    """``sessions`` single envs in this process, stepped round-robin with the oracle."""
    envs = [gym.make(env_id, **kwargs) for _ in range(sessions)]
    try:
        for i, env in enumerate(envs):
            env.reset(seed=seed + i)
        episodes = 0
        t0 = time.perf_counter()
        for _ in range(steps):
            for i, env in enumerate(envs):
                _, _, term, trunc, _ = env.step(env.unwrapped.oracle_action())
                if term or trunc:
                    episodes += 1
                    env.reset(seed=seed + i + 1000 * episodes)
        return time.perf_counter() - t0, episodes
    finally:
        for env in envs:
            env.close()


def _play_served(url: str, env_id: str, sessions: int, steps: int, seed: int, kwargs: dict):
    """``sessions`` concurrent sessions of one server (the async client), oracle policy."""
    import asyncio

    from envgym.remote import AsyncRemoteEnv

    async def session(i: int, clients: list, start: asyncio.Event) -> tuple[int, float]:
        env = clients[i]
        await env.reset(seed=seed + i)
        await start.wait()
        episodes, latency = 0, 0.0
        for _ in range(steps):
            t = time.perf_counter()
            _, _, term, trunc, _ = await env.step(env.oracle_action())
            latency += time.perf_counter() - t
            if term or trunc:
                episodes += 1
                await env.reset(seed=seed + i + 1000 * episodes)
        return episodes, latency

    async def run() -> tuple[float, int, float]:
        clients = [AsyncRemoteEnv(url, env_id, oracle=True, **kwargs) for _ in range(sessions)]
        await asyncio.gather(*(c.connect() for c in clients))
        start = asyncio.Event()
        tasks = [asyncio.create_task(session(i, clients, start)) for i in range(sessions)]
        await asyncio.sleep(0.2)  # every session has reset
        t0 = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        await asyncio.gather(*(c.close() for c in clients))
        return elapsed, sum(e for e, _ in results), sum(lat for _, lat in results)

    return asyncio.run(run())


def bench_served(
    env_id: str,
    sessions: Sequence[int] = (1, 16),
    steps: int = 200,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    command: str | None = None,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Steps/s and episodes/s through an ``envgym serve`` server against the in-process env.

    For each session count S, the same run times (a) S single envs in this process stepped
    round-robin by the oracle (resetting at each episode's end) and (b) S concurrent sessions of
    one server started as a separate process on a loopback port, played by the async client with
    the same oracle (computed on the server). Each session takes ``steps`` steps. (a) and (b)
    alternate ``repeats`` times and the figures are the medians, so a change in the machine's
    load hits both sides.

    Returns:
        One row per S: ``in_process_steps_per_s``, ``served_steps_per_s``, the same for
        episodes, ``ratio`` (served / in-process steps/s), ``overhead_ms_per_step`` (wall time
        per step through the server minus in process) and ``served_step_latency_ms`` (mean round
        trip of one step as a session sees it).
    """
    import subprocess

    import envgym  # noqa: F401  (registers the ids)

    kwargs = dict(env_kwargs or {})
    port = _free_port()
    cmd = _serve_command(env_id, port, max(sessions) + 1, kwargs)
    server = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        _wait_until_healthy(url, server, cmd)
        for n in sessions:
            local_runs, served_runs = [], []
            for _ in range(repeats):
                local_runs.append(_play_in_process(env_id, n, steps, seed, kwargs))
                served_runs.append(_play_served(url, env_id, n, steps, seed, kwargs))
            rows.append(_served_row(env_id, kwargs, n, steps, local_runs, served_runs, command))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def _serve_command(env_id: str, port: int, max_sessions: int, kwargs: dict) -> list[str]:
    """The ``envgym serve`` command line of the benchmark's server."""
    cmd = [sys.executable, "-m", "envgym.cli", "serve", env_id, "--port", str(port)]
    cmd += ["--max-sessions", str(max_sessions)]
    for k, v in kwargs.items():
        cmd += ["--env-kwarg", f"{k}={v}"]
    return cmd


def _wait_until_healthy(url: str, server: Any, cmd: list[str], timeout: float = 120) -> None:
    """Poll the server's ``/health`` until it answers 200; raise if it exits or ``timeout``
    seconds pass first."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"the server did not start: {' '.join(cmd)}")
        time.sleep(0.2)


def _median(runs: list[tuple]) -> tuple:
    """The median run (by time first) of an odd number of runs; the upper one of an even."""
    return sorted(runs)[len(runs) // 2]


def _served_row(
    env_id: str,
    kwargs: dict[str, Any],
    sessions: int,
    steps: int,
    local_runs: list[tuple],
    served_runs: list[tuple],
    command: str | None,
) -> dict[str, Any]:
    """A :func:`bench_served` row for one session count, from the alternating runs of both
    sides: ``(seconds, episodes)`` in process, ``(seconds, episodes, latency)`` served."""
    local_time, local_eps = _median(local_runs)
    served_time, served_eps, latency = _median(served_runs)
    total = sessions * steps
    local_sps, served_sps = total / local_time, total / served_time
    return {
        "id": env_id,
        "family": family_of(env_id),
        "env_kwargs": _as_text(kwargs),
        "sessions": sessions,
        "steps_per_session": steps,
        "repeats": len(local_runs),
        "in_process_times_s": [t for t, _ in local_runs],
        "served_times_s": [t for t, _, _ in served_runs],
        "policy": "oracle",
        "in_process_time_s": local_time,
        "in_process_steps_per_s": local_sps,
        "in_process_episodes_per_s": local_eps / local_time,
        "served_time_s": served_time,
        "served_steps_per_s": served_sps,
        "served_episodes_per_s": served_eps / served_time,
        "ratio": served_sps / local_sps,
        "overhead_ms_per_step": 1000 * (1 / served_sps - 1 / local_sps),
        "served_step_latency_ms": 1000 * latency / total,
        "transport": "OpenEnv WebSocket /ws, loopback, server in its own process",
        **provenance(command, packages=_PACKAGES),
    }
