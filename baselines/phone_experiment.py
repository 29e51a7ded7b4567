"""The phone experiment: PPO alone vs PPO + world model, same seeds, same env steps.

Runs ``baselines/ppo_world_model.py`` once per (arm, seed), one after the other, with the exact
command of each run written to ``<out>/commands.txt``; then draws the learning curves (success
rate vs env steps, mean and min-max over seeds) as a PNG, writes the table of env steps to reach
80% success, and runs the world-model target-quality check (a trained predictor vs copying the
last observation on ``next_obs_target``).

Run (one command, CPU, about 10 minutes per run on a shared 2-core machine):

    python baselines/phone_experiment.py --out baselines/results/phone

``--plot-only`` redraws the figures and tables from the CSVs already in ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import shlex
import subprocess
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
    "ppo+wm+curiosity": ["--wm-coef", "1", "--curiosity-coef", "0.05"],
    "ppo+curiosity-detached": ["--wm-coef", "1", "--curiosity-coef", "0.05", "--wm-detach"],
    "ppo+wm+pretrain": ["--wm-coef", "1", "--wm-pretrain-steps", "49152"],
}
"""The arms: flags added to the shared command. ``ppo`` is the same network and update with
the world-model loss off; ``ppo+wm`` adds the world-model loss as an auxiliary objective;
``ppo+wm+curiosity`` also pays the world model's surprise as an intrinsic reward;
``ppo+curiosity-detached`` is the same with the world-model gradient stopped at the encoder
(the curiosity bonus without the auxiliary objective); ``ppo+wm+pretrain`` is ``ppo+wm`` after a
reward-free world-model phase of 49,152 env steps (6 iterations, counted in the budget)."""


@dataclass
class Args:
    out: str = "baselines/results/phone"
    """folder for the CSVs, commands, figures and tables"""
    scenario: str = "generated"
    """phone scenario (see ``ppo_world_model.py --scenario``)"""
    difficulty: int = 1
    """difficulty of generated scenarios"""
    num_generated: int = 1
    """how many generated scenarios"""
    seeds: str = "1,2,3"
    """comma-separated seeds; every arm runs every seed"""
    arms: str = ",".join(ARMS)
    """comma-separated arms to run (names in ``ARMS``)"""
    total_timesteps: int = 300_000
    """env steps per run"""
    num_envs: int = 256
    """worlds per run"""
    threshold: float = 0.8
    """success rate for the env-steps-to-threshold table"""
    smooth: int = 3
    """iterations in the moving average of the success rate the threshold is read from"""
    quality_scenarios: str = "isp_bill_discount,address_change,call_budget_pharmacy"
    """scenarios of the world-model target-quality check"""
    plot_only: bool = False
    """skip the runs; redraw figures and tables from the CSVs in ``out``"""


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


# ======================================================================== runs
def run_command(args: Args, arm: str, seed: int, out: Path) -> list[str]:
    """The exact command line of one run."""
    return [
        sys.executable, str(HERE / "ppo_world_model.py"),
        "--scenario", args.scenario, "--difficulty", str(args.difficulty),
        "--num-generated", str(args.num_generated), "--num-envs", str(args.num_envs),
        "--total-timesteps", str(args.total_timesteps), "--seed", str(seed),
        "--exp-name", arm.replace("+", "_"), "--out-dir", str(out / "runs"),
        "--csv", str(out / f"{arm}_s{seed}.csv"), "--no-progress", "--device", "cpu",
        *ARMS[arm],
    ]  # fmt: skip


def run_all(args: Args, out: Path) -> None:
    with open(out / "commands.txt", "a") as log:
        for seed in _ints(args.seeds):
            for arm in args.arms.split(","):
                cmd = run_command(args, arm, seed, out)
                shown = shlex.join(["python", *[_rel(c) for c in cmd[1:]]])
                log.write(shown + "\n")
                log.flush()
                print(f"[{time.strftime('%H:%M:%S')}] {shown}", flush=True)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _rel(part: str) -> str:
    try:
        return str(Path(part).resolve().relative_to(Path.cwd()))
    except ValueError:
        return part


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


# ======================================================================== analysis
def load_curves(out: Path, arm: str, seeds: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """Per seed: env steps and success rate of each PPO iteration (pre-training rows too)."""
    curves = {}
    for seed in seeds:
        path = out / f"{arm}_s{seed}.csv"
        if not path.exists():
            continue
        with open(path) as fh:
            rows = list(csv.DictReader(fh))
        curves[seed] = {
            key: np.array([float(r[col]) for r in rows])
            for key, col in (("step", "global_step"), ("success", "success_rate"),
                             ("return", "episode_return"), ("length", "episode_length"))
        }  # fmt: skip
        curves[seed]["step"] = curves[seed]["step"].astype(np.int64)
    return curves


def smoothed(x: np.ndarray, k: int) -> np.ndarray:
    """Trailing moving average over ``k`` iterations (NaN-aware)."""
    out = np.empty_like(x)
    for i in range(len(x)):
        window = x[max(0, i - k + 1) : i + 1]
        out[i] = np.nanmean(window) if np.isfinite(window).any() else np.nan
    return out


def steps_to_threshold(curve: dict[str, np.ndarray], threshold: float, k: int) -> int | None:
    """First env step at which the smoothed success rate reaches ``threshold`` (None: never)."""
    s = smoothed(curve["success"], k)
    hit = np.flatnonzero(s >= threshold)
    return int(curve["step"][hit[0]]) if len(hit) else None


def analyse(args: Args, out: Path) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = _ints(args.seeds)
    summary: dict[str, Any] = {"threshold": args.threshold, "smooth": args.smooth, "arms": {}}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm in args.arms.split(","):
        curves = load_curves(out, arm, seeds)
        if not curves:
            continue
        n = min(len(c["step"]) for c in curves.values())
        steps = next(iter(curves.values()))["step"][:n]
        ys = np.stack([smoothed(c["success"][:n], args.smooth) for c in curves.values()])
        mean = np.nanmean(ys, 0)
        ax.plot(steps, mean, label=f"{arm} (n={len(curves)})")
        ax.fill_between(steps, np.nanmin(ys, 0), np.nanmax(ys, 0), alpha=0.2)
        reached = {s: steps_to_threshold(c, args.threshold, args.smooth) for s, c in curves.items()}
        hits = [v for v in reached.values() if v is not None]
        k = args.smooth
        finals = [float(np.nanmean(c["success"][-k:])) for c in curves.values()]
        lengths = [float(np.nanmean(c["length"][-k:])) for c in curves.values()]
        returns = [float(np.nanmean(c["return"][-k:])) for c in curves.values()]
        summary["arms"][arm] = {
            "seeds": list(curves),
            "steps_to_threshold": reached,
            "reached": f"{len(hits)}/{len(curves)}",
            "steps_to_threshold_mean": float(np.mean(hits)) if hits else None,
            "steps_to_threshold_std": float(np.std(hits)) if hits else None,
            "final_success_mean": float(np.mean(finals)),
            "final_success_std": float(np.std(finals)),
            "final_episode_length_mean": float(np.mean(lengths)),
            "final_episode_return_mean": float(np.mean(returns)),
        }
    ax.axhline(args.threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"success rate (moving avg of {args.smooth} iterations)")
    ax.set_title(f"phone: {_scenario_label(args)}; mean and min-max over seeds")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)
    wm_accuracy_plot(args, out, seeds, plt)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "table.md").write_text(table(summary, args))
    return summary


def wm_accuracy_plot(args: Args, out: Path, seeds: list[int], plt: Any) -> None:
    """World-model token accuracy on each rollout before training on it, against copying the
    last observation on the same rollout (arms with a world model)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm in args.arms.split(","):
        for seed in seeds:
            path = out / f"{arm}_s{seed}.csv"
            if not path.exists():
                continue
            with open(path) as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("wm_token_acc")]
            if not rows:
                continue
            step = [int(r["global_step"]) for r in rows]
            line = ax.plot(step, [float(r["wm_token_acc"]) for r in rows], lw=1,
                           label=f"{arm} s{seed}: world model")  # fmt: skip
            ax.plot(step, [float(r["copy_last_token_acc"]) for r in rows], lw=1, ls=":",
                    color=line[0].get_color(), label=f"{arm} s{seed}: copy last obs")  # fmt: skip
    ax.set_xlabel("env steps")
    ax.set_ylabel("token accuracy on next_obs_target")
    ax.set_title("world model vs copy-the-last-observation, on the agent's own rollouts")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "wm_accuracy.png", dpi=120)
    plt.close(fig)


def _scenario_label(args: Args) -> str:
    if args.scenario == "generated":
        return f"generated, difficulty {args.difficulty}, {args.num_generated} scenario(s)"
    return args.scenario


def table(summary: dict[str, Any], args: Args) -> str:
    pct = round(args.threshold * 100)
    lines = [
        f"| arm | seeds reaching {pct}% | env steps to {pct}% (mean ± std over those) "
        f"| per seed | final success (mean ± std) | final episode length | final return |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arm, s in summary["arms"].items():
        per_seed = ", ".join(
            f"s{k}: {v:,}" if v is not None else f"s{k}: not reached"
            for k, v in s["steps_to_threshold"].items()
        )
        mean = (
            f"{s['steps_to_threshold_mean']:,.0f} ± {s['steps_to_threshold_std']:,.0f}"
            if s["steps_to_threshold_mean"] is not None
            else "—"
        )
        lines.append(
            f"| {arm} | {s['reached']} | {mean} | {per_seed} | "
            f"{s['final_success_mean']:.2f} ± {s['final_success_std']:.2f} | "
            f"{s['final_episode_length_mean']:.1f} | {s['final_episode_return_mean']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def quality_check(args: Args, out: Path) -> list[dict[str, float]]:
    """The world-model target-quality check on each of ``quality_scenarios``."""
    spec = importlib.util.spec_from_file_location("ppo_world_model", HERE / "ppo_world_model.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ppo_world_model"] = mod
    spec.loader.exec_module(mod)
    results = []
    for name in args.quality_scenarios.split(","):
        if name:
            r = mod.target_quality(scenario=name, num_envs=128, train_steps=200, seed=0)
            print(json.dumps(r), flush=True)
            results.append(r)
    if results:
        (out / "target_quality.json").write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.plot_only:
        # One line per invocation: the arguments and the command that made the runs.
        with open(out / "experiments.jsonl", "a") as fh:
            record = {"command": shlex.join(["python", *sys.argv]), **dataclasses.asdict(args)}
            fh.write(json.dumps(record) + "\n")
        run_all(args, out)
        quality_check(args, out)
    print(json.dumps(analyse(args, out), indent=1))


if __name__ == "__main__":
    main()
