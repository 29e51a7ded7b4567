"""Benchmark: the local vector env against :class:`RayVectorEnv` at the same total worlds.

Every variant (local, Ray with 1 worker, Ray with 2 workers, ...) is built first and all of
them stay alive; then ``rounds`` rounds time ``steps`` steps of each variant in turn, so a
load spike on a shared machine hits every variant rather than one. The row reports each
variant's median env-steps/s over the rounds and the Ray variants' overhead against the local
env measured in the same rounds (``local_steps_per_s / ray_steps_per_s - 1``).

From the command line: ``envgym bench envgym/Phone-v0 --num-envs 16384 --distributed 1,2``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

from envgym.core.machine import device_name, provenance


def _actions(envs: Any, policy: str, gen: torch.Generator, n: int) -> Any:
    if policy == "oracle":
        return envs.oracle_action()
    space = envs.single_action_space
    return torch.randint(int(space.start), int(space.start + space.n), (n,), generator=gen)


def bench_distributed(
    env_id: str,
    num_envs: int,
    workers: Sequence[int] = (1, 2),
    *,
    steps: int = 50,
    warmup: int = 5,
    rounds: int = 3,
    policy: str = "random",
    seed: int = 0,
    step_timeout_s: float = 120.0,
    env_kwargs: dict[str, Any] | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Time the local vector env and ``RayVectorEnv`` with each of ``workers`` workers.

    Args:
        env_id: a registered envgym id.
        num_envs: total worlds, the same in every variant.
        workers: worker counts of the Ray variants.
        steps: timed steps per variant per round.
        warmup: untimed steps per variant before the first round.
        rounds: interleaved timing rounds.
        policy: ``"random"`` (Discrete actions drawn on the CPU, not timed) or ``"oracle"``
            (``envs.oracle_action()``, not timed: the only choice for string actions).
        seed: reset seed (the same in every variant).
        step_timeout_s: the Ray variants' step deadline.
        env_kwargs: passed to every variant's env (``scenario=``, ``task=``).
        address: Ray cluster address (``None``: a local Ray with ``num_cpus``).
        num_cpus: CPUs of the local Ray (default: the machine's).
        command: the command line to record.

    Returns:
        A JSON-serialisable row: per-variant ``steps_per_s`` (median and every round) and
        ``overhead_vs_local``.
    """
    import ray

    import envgym  # noqa: F401  (registers the ids)

    if policy not in ("random", "oracle"):
        raise ValueError(f"policy must be 'random' or 'oracle', got {policy!r}")
    kwargs = dict(env_kwargs or {})
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    variants: dict[str, Any] = {}
    try:
        variants.update(_variants(env_id, num_envs, workers, step_timeout_s, kwargs))
        timing = _Timing(policy, seed, warmup, rounds, steps, num_envs)
        times = _time_variants(variants, timing)
        losses = {
            name: len(envs.worker_losses)
            for name, envs in variants.items()
            if hasattr(envs, "worker_losses")
        }
    finally:
        for envs in variants.values():
            envs.close()
    return _row(env_id, kwargs, timing, times, losses, command)


def _variants(
    env_id: str,
    num_envs: int,
    workers: Sequence[int],
    step_timeout_s: float,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The local vector env and one ``RayVectorEnv`` per worker count, all alive at once.

    They share the cluster's CPUs among every worker (each worker still runs torch on one
    thread), so none waits for a CPU to be scheduled."""
    import ray

    from envgym.distributed import RayVectorEnv

    out: dict[str, Any] = {
        "local": gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", **kwargs)
    }
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        per_worker = min(1.0, cpus / max(1, sum(workers)))
        for w in workers:
            out[f"ray_{w}"] = RayVectorEnv(
                env_id,
                num_envs,
                w,
                step_timeout_s=step_timeout_s,
                worker_options={"num_cpus": per_worker},
                **kwargs,
            )
    except BaseException:
        for envs in out.values():
            envs.close()
        raise
    return out


@dataclass(frozen=True)
class _Timing:
    """How the variants are timed (the row records it)."""

    policy: str
    seed: int
    warmup: int
    rounds: int
    steps: int
    num_envs: int


def _time_variants(variants: dict[str, Any], timing: _Timing) -> dict[str, list[float]]:
    """Env-steps/s of every variant in every round: each reset and warmed up first, then
    ``rounds`` rounds of ``steps`` steps of each variant in turn (actions drawn untimed)."""
    gen = torch.Generator().manual_seed(timing.seed)
    n = timing.num_envs
    for envs in variants.values():
        envs.reset(seed=timing.seed)
        for _ in range(timing.warmup):
            envs.step(_actions(envs, timing.policy, gen, n))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(timing.rounds):
        for name, envs in variants.items():
            elapsed = 0.0
            for _ in range(timing.steps):
                act = _actions(envs, timing.policy, gen, n)
                t0 = time.perf_counter()
                envs.step(act)
                elapsed += time.perf_counter() - t0
            times[name].append(n * timing.steps / elapsed)
    return times


def _row(
    env_id: str,
    kwargs: dict[str, Any],
    timing: _Timing,
    times: dict[str, list[float]],
    losses: dict[str, int],
    command: str | None,
) -> dict[str, Any]:
    """The JSON-serialisable row: medians, every round, overheads against local, provenance."""
    import ray

    med = {name: statistics.median(v) for name, v in times.items()}
    return {
        "id": env_id,
        "kind": "distributed",
        "env_kwargs": {k: str(v) for k, v in kwargs.items()},
        "num_envs": int(timing.num_envs),
        "policy": timing.policy,
        "steps": int(timing.steps),
        "warmup": int(timing.warmup),
        "rounds": int(timing.rounds),
        "steps_per_s": med,
        "steps_per_s_rounds": times,
        "overhead_vs_local": {
            name: med["local"] / sps - 1.0 for name, sps in med.items() if name != "local"
        },
        "worker_losses": losses,
        "ray_cluster_cpus": ray.cluster_resources().get("CPU"),
        "device_name": device_name(torch.device("cpu")),
        **provenance(command, packages=("envgym", "torch", "ray")),
    }


def format_distributed_row(row: dict[str, Any]) -> str:
    """One line per variant: env-steps/s and overhead against the local env."""
    lines = [f"{row['id']}  num_envs={row['num_envs']}  policy={row['policy']}"]
    for name, sps in row["steps_per_s"].items():
        over = row["overhead_vs_local"].get(name)
        extra = "" if over is None else f"  overhead vs local {over:+.1%}"
        lines.append(f"  {name:>8}: {sps:12,.0f} env-steps/s{extra}")
    return "\n".join(lines)
