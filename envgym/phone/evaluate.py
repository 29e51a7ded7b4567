"""Evaluation of text-face agents: success and pass^k per scenario, reproducible per trial.

``evaluate("envgym/Phone-v0", "oracle", trials=4, scenario="all")`` runs every scenario of the
compiled set ``trials`` times, each trial on its own episode seed
(:func:`trial_seed`: a hash of the base seed, the scenario index and the trial index, so any one
trial can be re-run alone), with a fresh agent per trial. Per scenario it reports the success
rate and **pass^k**, the chance that k independent trials *all* succeed (tau-bench): with n
trials of which c succeeded, the unbiased estimate is ``C(c, k) / C(n, k)``; with k = n it is
1 when every trial succeeded and 0 otherwise. The overall pass^k is the mean over scenarios,
as in tau-bench's own ``run.py`` (``display_metrics``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from envgym.phone.agents import make_agent


def trial_seed(seed: int, task: int, trial: int) -> int:
    """The episode seed of trial ``trial`` of scenario ``task`` under base seed ``seed``."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, task, trial]).generate_state(1)[0])


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k from ``c`` successes in ``n`` trials: ``C(c, k) / C(n, k)``."""
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"need 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    return math.comb(c, k) / math.comb(n, k)


def run_episode(env: Any, agent: Any, seed: int, scenario_index: int | None = None) -> dict:
    """Play one episode of the text face with ``agent``; return success, return and turns."""
    options = None if scenario_index is None else {"scenario_index": scenario_index}
    obs, info = env.reset(seed=seed, options=options)
    agent.reset(env, obs, info)
    ret, turns, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
        ret += float(reward)
        turns += 1
        done = terminated or truncated
    end = getattr(agent, "end", None)
    if end is not None:
        end(info)
    return {"success": bool(info["success"]), "return": ret, "turns": turns, "seed": seed}


def evaluate(
    env_id: str,
    policy: str | Callable[[int], Any],
    *,
    trials: int = 4,
    ks: list[int] | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate a policy on every scenario of an env id's compiled set.

    Args:
        env_id: a phone id (``envgym/Phone-v0``, ``envgym/Phone-IspBillDiscount-v0``, ...).
        policy: a spec for :func:`~envgym.phone.agents.make_agent` (``oracle``, ``random``,
            ``noop``, ``explorer``, ``notebook``, ``module:callable``) or a function
            ``make(seed) -> agent``; a fresh agent is made for every trial.
        trials: trials per scenario (n).
        ks: the k of pass^k to report (each ``1 <= k <= trials``); default ``1..trials``.
        seed: base seed; trial seeds derive from it (:func:`trial_seed`).
        env_kwargs: passed to ``gym.make`` (``scenario=``, ``difficulty=``, ...).

    Returns:
        A JSON-ready report: per scenario ``trials``, ``successes``, ``success_rate``,
        ``pass_k`` (``{"1": ..., "k": ...}``), ``mean_return``, ``mean_turns`` and the trial
        ``seeds``; ``overall`` with the same rates averaged over scenarios.
    """
    import gymnasium as gym

    import envgym  # noqa: F401  (registers the ids)

    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    ks = sorted(set(ks or range(1, trials + 1)))
    if any(not 1 <= k <= trials for k in ks):
        raise ValueError(f"every k must be in 1..trials={trials}, got {ks}")
    make = policy if callable(policy) else (lambda s: make_agent(policy, s))
    env = gym.make(env_id, **{**(env_kwargs or {}), "obs_mode": "text"})
    rows = []
    try:
        scenarios = env.unwrapped.compiled.scenarios
        for task, sc in enumerate(scenarios):
            runs = []
            for trial in range(trials):
                s = trial_seed(seed, task, trial)
                runs.append(run_episode(env, make(s), s, task))
            c = sum(r["success"] for r in runs)
            rows.append(
                {
                    "scenario": sc.name,
                    "trials": trials,
                    "successes": c,
                    "success_rate": c / trials,
                    "pass_k": {str(k): pass_hat_k(trials, c, k) for k in ks},
                    "mean_return": sum(r["return"] for r in runs) / trials,
                    "mean_turns": sum(r["turns"] for r in runs) / trials,
                    "seeds": [r["seed"] for r in runs],
                    "success": [r["success"] for r in runs],
                }
            )
    finally:
        env.close()
    n = len(rows)
    overall = {
        "scenarios": n,
        "success_rate": sum(r["success_rate"] for r in rows) / n,
        "pass_k": {str(k): sum(r["pass_k"][str(k)] for r in rows) / n for k in ks},
        "mean_return": sum(r["mean_return"] for r in rows) / n,
    }
    return {
        "id": env_id,
        "policy": policy if isinstance(policy, str) else getattr(policy, "__name__", "custom"),
        "trials": trials,
        "ks": ks,
        "seed": seed,
        "env_kwargs": {k: v for k, v in (env_kwargs or {}).items() if _jsonable(v)},
        "scenarios": rows,
        "overall": overall,
    }


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, type(None), list))


def format_report(report: dict[str, Any]) -> str:
    """The report as a text table (one row per scenario, then the overall row)."""
    ks = report["ks"]
    head = f"{'scenario':<28} {'succ':>6} " + " ".join(f"{'pass^' + str(k):>7}" for k in ks)
    lines = [head]
    for r in [*report["scenarios"], {"scenario": "overall", **report["overall"]}]:
        succ = r["success_rate"]
        lines.append(
            f"{r['scenario'][:28]:<28} {succ:6.2f} "
            + " ".join(f"{r['pass_k'][str(k)]:7.2f}" for k in ks)
        )
    return "\n".join(lines)
