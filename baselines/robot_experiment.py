"""The robot-reach experiment: PPO alone vs PPO + world model, same seeds, same env steps.

Runs ``baselines/ppo_world_model_robot.py`` once per (arm, seed) on ``envgym/Robot-Reach-v0``,
``--parallel`` runs at a time (one torch thread and one MuJoCo thread each), with the exact
command of each run written to ``<out>/commands.txt``; then draws the learning curves (success
rate vs env steps, mean and min-max over seeds) as a PNG, writes the table of env steps to reach
80% success, and runs the world-model target-quality check for the robot family (a predictor
trained on rollouts vs copying the last observation, mean squared error on held-out
``next_obs_target``).

Run (one command, CPU):

    python baselines/robot_experiment.py --out baselines/results/robot_reach

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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent

ARMS: dict[str, list[str]] = {
    "ppo": ["--wm-coef", "0"],
    "ppo+wm": ["--wm-coef", "1"],
    "ppo+wm+pretrain": ["--wm-coef", "1", "--wm-pretrain-steps", "40960"],
    "ppo+wm+curiosity": ["--wm-coef", "1", "--curiosity-coef", "0.1"],
}
"""The arms: flags added to the shared command. ``ppo`` is the same network and update with
the world-model loss off; ``ppo+wm`` adds the world-model loss (the normalised change of the
physical state) as an auxiliary objective on the shared encoder; ``ppo+wm+pretrain`` is
``ppo+wm`` after a reward-free world-model phase of 40,960 env steps (20 iterations of the
initial policy, counted in the budget); ``ppo+wm+curiosity`` also pays the world model's error
on each transition (over its running mean) times 0.1 as an intrinsic reward."""


@dataclass
class Args:
    out: str = "baselines/results/robot_reach"
    """folder for the CSVs, commands, figures and tables"""
    env_id: str = "envgym/Robot-Reach-v0"
    """robot task the arms train on"""
    seeds: str = "1,2,3"
    """comma-separated seeds; every arm runs every seed"""
    arms: str = "ppo,ppo+wm"
    """comma-separated arms to run (names in ``ARMS``)"""
    total_timesteps: int = 500_000
    """env steps per run"""
    num_envs: int = 64
    """worlds per run"""
    parallel: int = 2
    """training runs at a time (each uses one torch thread and one MuJoCo thread)"""
    threshold: float = 0.8
    """success rate for the env-steps-to-threshold table"""
    smooth: int = 3
    """iterations the success rate is pooled over (episodes that ended in them)"""
    min_episodes: int = 100
    """episodes the pooled success rate must cover before the threshold counts"""
    quality_ids: str = (
        "envgym/Robot-Reach-v0,envgym/Robot-Push-v0,envgym/Robot-PickPlace-v0,envgym/Robot-Stack-v0"
    )
    """robot tasks of the world-model target-quality check ("" skips it)"""
    extra: str = ""
    """more curves for the figure and the table, made elsewhere: comma-separated
    ``label=CSV pattern`` (``{seed}`` is replaced; relative to ``out``), e.g.
    ``sb3=../sb3_robot_reach/sb3_ppo_s{seed}.csv``"""
    plot_only: bool = False
    """skip the runs; redraw figures and tables from the CSVs in ``out``"""
    quality_only: bool = False
    """only run the target-quality check (writes ``target_quality.json``)"""


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


def say(out: Path, text: str) -> None:
    """Print a line and append it to ``<out>/output.log`` (the experiment's console record)."""
    print(text, flush=True)
    with open(out / "output.log", "a") as fh:
        fh.write(text + "\n")


# ======================================================================== runs
def run_command(args: Args, arm: str, seed: int, out: Path) -> list[str]:
    """The exact command line of one run."""
    return [
        sys.executable, str(HERE / "ppo_world_model_robot.py"),
        "--env-id", args.env_id, "--num-envs", str(args.num_envs),
        "--total-timesteps", str(args.total_timesteps), "--seed", str(seed),
        "--exp-name", arm.replace("+", "_"), "--out-dir", str(out / "runs"),
        "--csv", str(out / f"{arm}_s{seed}.csv"), "--no-progress", "--device", "cpu",
        "--threads", "1", "--physics-threads", "1",
        *ARMS[arm],
    ]  # fmt: skip


def run_all(args: Args, out: Path) -> None:
    """Every (arm, seed), at most ``--parallel`` at a time; a failed run stops the experiment."""
    queue = [(arm, seed) for seed in _ints(args.seeds) for arm in args.arms.split(",")]
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    with open(out / "commands.txt", "a") as log:
        while queue or running:
            while queue and len(running) < max(1, args.parallel):
                arm, seed = queue.pop(0)
                cmd = run_command(args, arm, seed, out)
                shown = shlex.join(["python", *[_rel(c) for c in cmd[1:]]])
                log.write(shown + "\n")
                log.flush()
                say(out, f"[{time.strftime('%H:%M:%S')}] start {shown}")
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
                running.append((f"{arm} s{seed}", proc))
            time.sleep(1.0)
            for name, proc in list(running):
                code = proc.poll()
                if code is None:
                    continue
                running.remove((name, proc))
                say(out, f"[{time.strftime('%H:%M:%S')}] done {name} (exit {code})")
                if code != 0:
                    for _, other in running:
                        other.terminate()
                    raise SystemExit(f"run {name} failed with exit code {code}")


def _rel(part: str) -> str:
    try:
        return str(Path(part).resolve().relative_to(Path.cwd()))
    except ValueError:
        return part


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


# ======================================================================== analysis
def load_curves(
    out: Path, arm: str, seeds: list[int], pattern: str = "{arm}_s{seed}.csv"
) -> dict[int, dict[str, np.ndarray]]:
    """Per seed: env steps and success rate of each PPO iteration (pre-training rows too).
    ``pattern`` names the CSV under ``out`` (or an absolute path); a column a script does not
    write (SB3's CSV has no episode return or length) reads as NaN."""
    curves = {}
    for seed in seeds:
        path = out / pattern.format(arm=arm, seed=seed)
        if not path.exists():
            continue
        with open(path) as fh:
            rows = list(csv.DictReader(fh))
        curves[seed] = {
            key: np.array([float(r.get(col) or "nan") for r in rows])
            for key, col in (("step", "global_step"), ("success", "success_rate"),
                             ("return", "episode_return"), ("length", "episode_length"),
                             ("episodes", "episodes"))
        }  # fmt: skip
        curves[seed]["step"] = curves[seed]["step"].astype(np.int64)
    return curves


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def curve_sources(args: Args) -> list[tuple[str, str]]:
    """(label, CSV pattern) of every curve in the figure and the table: the arms, then
    ``--extra``."""
    sources = [(arm, "{arm}_s{seed}.csv") for arm in args.arms.split(",") if arm]
    for item in args.extra.split(","):
        if item:
            label, _, pattern = item.partition("=")
            sources.append((label, pattern))
    return sources


def pooled_success(curve: dict[str, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Success rate over the episodes that ended in the last ``k`` iterations (pooled, so an
    iteration where one episode ended weighs one episode), and how many episodes that is."""
    wins = np.nan_to_num(curve["success"]) * curve["episodes"]
    rate, count = np.full(len(wins), np.nan), np.zeros(len(wins))
    for i in range(len(wins)):
        lo = max(0, i - k + 1)
        count[i] = curve["episodes"][lo : i + 1].sum()
        if count[i] > 0:
            rate[i] = wins[lo : i + 1].sum() / count[i]
    return rate, count


def steps_to_threshold(
    curve: dict[str, np.ndarray], threshold: float, k: int, min_episodes: int
) -> int | None:
    """First env step at which the success rate pooled over the last ``k`` iterations reaches
    ``threshold`` over at least ``min_episodes`` episodes (None: never)."""
    rate, count = pooled_success(curve, k)
    hit = np.flatnonzero((rate >= threshold) & (count >= min_episodes))
    return int(curve["step"][hit[0]]) if len(hit) else None


def analyse(args: Args, out: Path) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = _ints(args.seeds)
    summary: dict[str, Any] = {
        "env_id": args.env_id,
        "threshold": args.threshold,
        "smooth": args.smooth,
        "min_episodes": args.min_episodes,
        "arms": {},
    }
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm, pattern in curve_sources(args):
        curves = load_curves(out, arm, seeds, pattern)
        if not curves:
            continue
        n = min(len(c["step"]) for c in curves.values())
        steps = next(iter(curves.values()))["step"][:n]
        # A point needs min_episodes pooled episodes (the first iteration may end just one).
        pooled = [pooled_success(c, args.smooth) for c in curves.values()]
        ys = np.stack([np.where(cnt >= args.min_episodes, r, np.nan)[:n] for r, cnt in pooled])
        with warnings.catch_warnings():  # columns before min_episodes are all-NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, low, high = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
        ax.plot(steps, mean, label=f"{arm} (n={len(curves)})")
        ax.fill_between(steps, low, high, alpha=0.2)
        reached = {
            s: steps_to_threshold(c, args.threshold, args.smooth, args.min_episodes)
            for s, c in curves.items()
        }
        hits = [v for v in reached.values() if v is not None]
        k = args.smooth
        finals = [float(pooled_success(c, k)[0][-1]) for c in curves.values()]
        lengths = [_nanmean(c["length"][-k:]) for c in curves.values()]
        returns = [_nanmean(c["return"][-k:]) for c in curves.values()]
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
    ax.set_ylabel(f"success rate (episodes of the last {args.smooth} iterations)")
    ax.set_title(f"{args.env_id}: mean and min-max over seeds")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)
    wm_loss_plot(args, out, seeds, plt)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "table.md").write_text(table(summary, args))
    return summary


def wm_loss_plot(args: Args, out: Path, seeds: list[int], plt: Any) -> None:
    """World-model loss on each rollout before training on it, against copying the last
    observation on the same rollout (arms with a world model; mean squared error on the
    normalised change of the physical state, log scale)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm in args.arms.split(","):
        for seed in seeds:
            path = out / f"{arm}_s{seed}.csv"
            if not path.exists():
                continue
            with open(path) as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("wm_loss")]
            if not rows:
                continue
            step = [int(r["global_step"]) for r in rows]
            line = ax.plot(step, [float(r["wm_loss"]) for r in rows], lw=1,
                           label=f"{arm} s{seed}: world model")  # fmt: skip
            ax.plot(step, [float(r["copy_last_loss"]) for r in rows], lw=1, ls=":",
                    color=line[0].get_color(), label=f"{arm} s{seed}: copy last obs")  # fmt: skip
    ax.set_xlabel("env steps")
    ax.set_ylabel("MSE on the normalised next_obs_target change")
    ax.set_yscale("log")
    ax.set_title("world model vs copy-the-last-observation, on the agent's own rollouts")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "wm_loss.png", dpi=120)
    plt.close(fig)


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


def quality_check(args: Args, out: Path) -> list[dict[str, Any]]:
    """The world-model target-quality check on each of ``quality_ids``."""
    spec = importlib.util.spec_from_file_location(
        "ppo_world_model_robot", HERE / "ppo_world_model_robot.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ppo_world_model_robot"] = mod
    spec.loader.exec_module(mod)
    results = []
    for env_id in args.quality_ids.split(","):
        if env_id:
            r = mod.target_quality(env_id=env_id, num_envs=64, seed=0)
            say(out, json.dumps(r))
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
        # One line per invocation: the arguments and the command that made the outputs.
        with open(out / "experiments.jsonl", "a") as fh:
            record = {"command": shlex.join(["python", *sys.argv]), **dataclasses.asdict(args)}
            fh.write(json.dumps(record) + "\n")
    if args.quality_only:
        quality_check(args, out)
        return
    if not args.plot_only:
        run_all(args, out)
        quality_check(args, out)
    say(out, json.dumps(analyse(args, out), indent=1))


if __name__ == "__main__":
    main()
