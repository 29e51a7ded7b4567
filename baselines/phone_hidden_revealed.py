"""Issue 11's experiment: does predicting ``next_obs_target`` pay off more when a fact is hidden?

Hidden (``reveal_hidden=False``) vs revealed twin of one phone task, times arms of the project's
torch PPO (``baselines/ppo_world_model.py``, batched on the native vector env, with the
engine's action mask, shaped rewards and the structured observation fields), times seeds:

- ``ppo``: masked PPO, no auxiliary head;
- ``ppo+wm``: + the world-model auxiliary loss (predict ``next_obs_target``);
- ``ppo+wm-detached``: the same head, its gradient stopped at the encoder;
- ``ppo+recon``: the same-size head reconstructing the *current* observation (control);
- ``ppo+wm-curiosity``: + the world model's surprise on the ``target_mask``-ed (non-noise)
  target tokens as an intrinsic reward;
- ``ppo+novelty``: + a count-based novelty bonus (control for curiosity).

Each run writes ``<out>/<twin>/<arm>_s<seed>.csv`` (one row per PPO iteration) and ``.json``
(its summary, with the success on a held-out generated set). ``--analyse-only`` reads them
back and writes ``summary.json``, ``table.md`` and ``curves.png``: steps to 80%, area under
the success curve, IQM over seeds with bootstrap intervals, held-out success, and the
world-model arms' advantage over ``ppo`` on each twin. Runs are resumable (a run whose JSON
exists is skipped) and run one at a time, in this process.

    python baselines/phone_hidden_revealed.py --out baselines/results/phone_hidden_revealed
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent

ARMS: dict[str, list[str]] = {
    "ppo": ["--wm-coef", "0"],
    "ppo+wm": ["--wm-coef", "1"],
    "ppo+wm-detached": ["--wm-coef", "1", "--wm-detach"],
    "ppo+recon": ["--wm-coef", "1", "--aux-target", "current"],
    "ppo+wm-curiosity": ["--wm-coef", "1", "--curiosity-coef", "0.03", "--curiosity-target-mask"],
    "ppo+novelty": ["--wm-coef", "0", "--novelty-coef", "0.03"],
}
"""The arms: flags added to the shared command (``ppo_world_model.py`` flags)."""

CONTRASTS = {"ppo+wm": "ppo+recon", "ppo+wm-curiosity": "ppo+novelty"}
"""Each world-model arm and the control it must beat."""


@dataclass
class Args:
    out: str = "baselines/results/phone_hidden_revealed"
    """folder for the per-run CSV/JSON, the summary, table and plot"""
    scenario: str = "generated"
    """phone scenario (``ppo_world_model.py --scenario``)"""
    difficulty: float = 2
    """difficulty of generated scenarios (2: exactly one fact only the user knows)"""
    num_generated: int = 32
    """generated scenarios in the training set (held out: ``generator_seed + 1000``)"""
    arms: str = ",".join(ARMS)
    """comma-separated arms (names in ``ARMS``)"""
    twins: str = "hidden,revealed"
    """which twins to run"""
    seeds: str = "1,2,3,4,5"
    """comma-separated seeds; every (twin, arm) runs every seed"""
    total_timesteps: int = 300_000
    """env steps per run"""
    num_envs: int = 512
    """worlds per run"""
    num_steps: int = 32
    """rollout length per world"""
    update_epochs: int = 2
    """PPO epochs over each rollout"""
    wm_batch: int = 128
    """transitions per minibatch the auxiliary head is trained on (its cost dominates on CPU)"""
    eval_episodes: int = 1000
    """episodes of the final policy on the held-out generated set (and on the training set)"""
    stop_success: float = 0.0
    """stop a run once 3 consecutive iterations reach this success (0: never; the AUC then
    holds the last value to the end of the budget)"""
    threshold: float = 0.8
    """success rate of steps-to-threshold"""
    smooth: int = 3
    """iterations in the moving average the threshold is read from"""
    bootstrap: int = 2000
    """bootstrap resamples of the IQM intervals"""
    deadline_min: float = 0.0
    """start no new run after this many minutes (0: no deadline)"""
    analyse_only: bool = False
    """skip the runs; analyse the results already in ``out``"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Command-line flags from the ``Args`` fields."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if str(f.type) == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(flag, type=kind, default=f.default)
    return Args(**vars(parser.parse_args(argv)))


def _load(name: str) -> Any:
    """A sibling baseline script as a module (one home for PPO and the curve helpers)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _list(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


# ======================================================================== runs
def run_flags(args: Args, twin: str, arm: str, seed: int, out: Path) -> list[str]:
    """The ``ppo_world_model.py`` flags of one run."""
    flags = [
        "--scenario", args.scenario, "--difficulty", f"{args.difficulty:g}",
        "--num-generated", str(args.num_generated), "--num-envs", str(args.num_envs),
        "--num-steps", str(args.num_steps), "--update-epochs", str(args.update_epochs),
        "--wm-batch", str(args.wm_batch),
        "--total-timesteps", str(args.total_timesteps),
        "--seed", str(seed), "--mask", "--reward-mode", "shaped", "--structured-obs",
        "--eval-episodes", str(args.eval_episodes), "--exp-name", f"{twin}_{arm}",
        "--out-dir", str(out / "runs"), "--csv", str(out / twin / f"{arm}_s{seed}.csv"),
        "--no-progress", "--device", "cpu", "--stop-success", f"{args.stop_success:g}",
    ]  # fmt: skip
    if twin == "revealed":
        flags.append("--reveal-hidden")
    return flags + ARMS[arm]


def run_all(args: Args, out: Path) -> None:
    """Every (seed, twin, arm) run not done yet, one at a time, seeds outermost (so a deadline
    leaves whole seeds of every cell rather than all seeds of a few cells)."""
    ppo = _load("ppo_world_model")
    start = time.time()
    for seed in (int(s) for s in _list(args.seeds)):
        for twin in _list(args.twins):
            (out / twin).mkdir(parents=True, exist_ok=True)
            for arm in _list(args.arms):
                result_path = out / twin / f"{arm}_s{seed}.json"
                if result_path.exists():
                    continue
                if args.deadline_min and time.time() - start > 60 * args.deadline_min:
                    print("deadline reached; stopping", flush=True)
                    return
                flags = run_flags(args, twin, arm, seed, out)
                command = shlex.join(["python", "baselines/ppo_world_model.py", *flags])
                print(f"[{time.strftime('%H:%M:%S')}] {command}", flush=True)
                result = ppo.train(ppo.parse_args(flags))
                result["command"] = command
                result_path.write_text(json.dumps(result, indent=1))


# ======================================================================== analysis
def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% (Agarwal et al. 2021)."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    return float(x[lo:hi].mean()) if hi > lo else float(x.mean())


def bootstrap_ci(
    x: np.ndarray, stat: Any, reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile interval of ``stat`` over resamples of the seeds."""
    x = np.asarray(x, dtype=float)
    draws = [stat(rng.choice(x, len(x), replace=True)) for _ in range(reps)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def auc(curve: dict[str, np.ndarray], total: int) -> float:
    """Area under the success curve over ``[0, total]`` env steps, divided by ``total`` (1:
    always succeeding; a run that stopped early is held at its last value)."""
    step = np.concatenate([[0], curve["step"], [total]]).astype(float)
    succ = np.nan_to_num(curve["success"], nan=0.0)
    y = np.concatenate([[0.0], succ, [succ[-1] if len(succ) else 0.0]])
    keep = step <= total
    return float(np.trapezoid(y[keep], step[keep]) / total)


def finished_curves(args: Args, out: Path, twin: str, arm: str) -> dict[int, Any]:
    """The learning curves of a cell's finished runs (those with a JSON; a CSV without one is
    a run in progress or cut off)."""
    exp = _load("phone_experiment")
    seeds = [int(s) for s in _list(args.seeds)]
    curves = exp.load_curves(out / twin, arm, seeds)
    return {s: c for s, c in curves.items() if (out / twin / f"{arm}_s{s}.json").exists()}


def cell_stats(args: Args, out: Path, twin: str, arm: str, rng: np.random.Generator) -> dict:
    """Per-seed metrics of one (twin, arm) cell, and their IQM with bootstrap intervals."""
    exp = _load("phone_experiment")
    curves = finished_curves(args, out, twin, arm)
    if not curves:
        return {}
    per_seed: dict[str, dict[int, Any]] = {"steps_to_threshold": {}, "auc": {}, "final": {},
                                           "held_out": {}, "train_set_eval": {}}  # fmt: skip
    for seed, curve in curves.items():
        reached = exp.steps_to_threshold(curve, args.threshold, args.smooth)
        per_seed["steps_to_threshold"][seed] = reached
        per_seed["auc"][seed] = auc(curve, args.total_timesteps)
        per_seed["final"][seed] = float(np.nanmean(curve["success"][-args.smooth :]))
        path = out / twin / f"{arm}_s{seed}.json"
        ev = json.loads(path.read_text()).get("eval", {}) if path.exists() else {}
        per_seed["held_out"][seed] = ev.get("held_out", {}).get("success_rate")
        per_seed["train_set_eval"][seed] = ev.get("train_set", {}).get("success_rate")
    cell: dict[str, Any] = {"seeds": list(curves), "per_seed": per_seed}
    # Steps-to-threshold of a seed that never reached it counts as the whole budget.
    budget = [v if v is not None else args.total_timesteps
              for v in per_seed["steps_to_threshold"].values()]  # fmt: skip
    hits = sum(v is not None for v in per_seed["steps_to_threshold"].values())
    cell["reached"] = f"{hits}/{len(curves)}"
    for name, values in (("auc", per_seed["auc"].values()), ("final", per_seed["final"].values()),
                         ("held_out", per_seed["held_out"].values()),
                         ("steps_to_threshold", budget)):  # fmt: skip
        vals = np.array([v for v in values if v is not None], dtype=float)
        if len(vals):
            cell[f"{name}_iqm"] = iqm(vals)
            cell[f"{name}_ci"] = bootstrap_ci(vals, iqm, args.bootstrap, rng)
    return cell


def advantages(args: Args, cells: dict, rng: np.random.Generator) -> dict[str, Any]:
    """Each auxiliary / bonus arm's AUC advantage over ``ppo`` per twin (difference of IQMs,
    bootstrap interval resampling both cells' seeds), and the hidden-minus-revealed gap."""
    result: dict[str, Any] = {}
    draws_of: dict[tuple[str, str], np.ndarray] = {}
    for arm in _list(args.arms):
        if arm == "ppo":
            continue
        row: dict[str, Any] = {}
        for twin in _list(args.twins):
            a, b = cells.get(twin, {}).get(arm), cells.get(twin, {}).get("ppo")
            if not a or not b:
                continue
            xa = np.array(list(a["per_seed"]["auc"].values()))
            xb = np.array(list(b["per_seed"]["auc"].values()))
            draws = np.array([iqm(rng.choice(xa, len(xa))) - iqm(rng.choice(xb, len(xb)))
                              for _ in range(args.bootstrap)])  # fmt: skip
            draws_of[(arm, twin)] = draws
            row[twin] = {"auc_advantage": iqm(xa) - iqm(xb),
                         "ci": (float(np.percentile(draws, 2.5)),
                                float(np.percentile(draws, 97.5)))}  # fmt: skip
        if "hidden" in row and "revealed" in row:
            gap = row["hidden"]["auc_advantage"] - row["revealed"]["auc_advantage"]
            row["hidden_minus_revealed"] = gap
            gaps = draws_of[(arm, "hidden")] - draws_of[(arm, "revealed")]
            row["hidden_minus_revealed_ci"] = _interval(gaps)
        result[arm] = row
    for arm, control in CONTRASTS.items():
        if (arm, "hidden") in draws_of and (control, "hidden") in draws_of:
            diff = draws_of[(arm, "hidden")] - draws_of[(control, "hidden")]
            result[arm]["minus_control_on_hidden_ci"] = _interval(diff)
    return result


def _interval(draws: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def verdict(adv: dict[str, Any]) -> dict[str, Any]:
    """The claim, per world-model arm: its advantage is larger on hidden than on revealed, and
    its hidden-twin advantage beats its control's (``CONTRASTS``)."""
    out = {}
    for arm, control in CONTRASTS.items():
        a, c = adv.get(arm, {}), adv.get(control, {})
        if "hidden_minus_revealed" not in a or "hidden" not in c:
            continue
        larger_on_hidden = a["hidden_minus_revealed"] > 0
        beats_control = a["hidden"]["auc_advantage"] > c["hidden"]["auc_advantage"]
        # "Holds" asks the point estimates; "clear" also asks the 95% intervals to exclude 0.
        clear = (a["hidden_minus_revealed_ci"][0] > 0
                 and a.get("minus_control_on_hidden_ci", (0.0, 0.0))[0] > 0)  # fmt: skip
        out[arm] = {"control": control, "larger_on_hidden": bool(larger_on_hidden),
                    "beats_control_on_hidden": bool(beats_control),
                    "claim_holds": bool(larger_on_hidden and beats_control),
                    "clear_at_95": bool(clear)}  # fmt: skip
    return out


def plot(args: Args, out: Path) -> None:
    """Success vs env steps, one panel per twin, mean over seeds per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exp = _load("phone_experiment")
    twins = _list(args.twins)
    fig, axes = plt.subplots(1, len(twins), figsize=(6 * len(twins), 4), squeeze=False)
    for ax, twin in zip(axes[0], twins, strict=True):
        for arm in _list(args.arms):
            curves = finished_curves(args, out, twin, arm)
            if not curves:
                continue
            n = min(len(c["step"]) for c in curves.values())
            ys = np.stack([exp.smoothed(c["success"][:n], args.smooth) for c in curves.values()])
            ax.plot(next(iter(curves.values()))["step"][:n], np.nanmean(ys, 0),
                    label=f"{arm} (n={len(curves)})")  # fmt: skip
        ax.axhline(args.threshold, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{twin} twin")
        ax.set_xlabel("env steps")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("success rate (mean over seeds)")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    task = args.scenario if args.scenario != "generated" else f"generated d{args.difficulty:g}"
    fig.suptitle(f"phone {task}: masked torch PPO, {args.total_timesteps:,} env steps")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)


def table(args: Args, cells: dict) -> str:
    """The markdown table of every cell."""
    pct = round(100 * args.threshold)
    lines = [f"| twin | arm | seeds reaching {pct}% | steps to {pct}% IQM [95% CI] "
             f"| AUC IQM [95% CI] | final IQM | held-out IQM [95% CI] |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip

    def ci(c: dict, key: str, fmt: str) -> str:
        if f"{key}_iqm" not in c:
            return "-"
        lo, hi = c[f"{key}_ci"]
        return f"{c[f'{key}_iqm']:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"

    for twin, arms in cells.items():
        for arm, c in arms.items():
            cols = [twin, arm, c["reached"], ci(c, "steps_to_threshold", ",.0f"),
                    ci(c, "auc", ".3f"), f"{c.get('final_iqm', float('nan')):.2f}",
                    ci(c, "held_out", ".2f")]  # fmt: skip
            lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"


def analyse(args: Args, out: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    cells: dict[str, dict[str, Any]] = {}
    for twin in _list(args.twins):
        for arm in _list(args.arms):
            cell = cell_stats(args, out, twin, arm, rng)
            if cell:
                cells.setdefault(twin, {})[arm] = cell
    adv = advantages(args, cells, rng)
    summary = {"args": dataclasses.asdict(args), "cells": cells, "advantage_over_ppo": adv,
               "verdict": verdict(adv)}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "table.md").write_text(table(args, cells))
    plot(args, out)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.analyse_only:
        with open(out / "experiments.jsonl", "a") as fh:
            record = {"command": shlex.join(["python", *sys.argv]), **dataclasses.asdict(args)}
            fh.write(json.dumps(record) + "\n")
        run_all(args, out)
    return analyse(args, out)


if __name__ == "__main__":
    summary = main()
    print(json.dumps({"verdict": summary["verdict"], "advantage": summary["advantage_over_ppo"]},
                     indent=1))  # fmt: skip
