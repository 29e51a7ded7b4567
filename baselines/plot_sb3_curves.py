"""Learning curves (success vs env steps, mean and min-max over seeds) from the ``--csv`` files
the SB3 scripts write (``sb3_ppo.py``, ``sb3_ppo_robot.py``, ``sb3_ppo_browser.py``), plus the
env steps at which each seed first reaches a success threshold.

Run (one command):

    python baselines/plot_sb3_curves.py \
        --pattern "baselines/results/sb3_browser_Checkboxes/sb3_ppo_browser_s{seed}.csv" \
        --seeds 1,2,3 --title "SB3 PPO, envgym/Browser-Checkboxes-v0" \
        --out baselines/results/sb3_browser_Checkboxes/learning_curve.png

The threshold is read from the success rate pooled over the episodes that ended in the last
``--smooth`` rollouts, once at least ``--min-episodes`` episodes are pooled (one rollout can end
a single lucky episode). The table goes to stdout and to ``--out`` with ``.md`` in place of
``.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# One threshold rule for every table: robot_experiment.py's (a sibling file, NumPy only).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from robot_experiment import load_curves, pooled_success, steps_to_threshold


@dataclass
class Args:
    pattern: str = ""
    """path of one seed's CSV, with ``{seed}`` where the seed goes"""
    seeds: str = "1,2,3"
    """comma-separated seeds"""
    out: str = "learning_curve.png"
    """the figure; the table is written next to it as ``.md``"""
    title: str = ""
    """title of the figure"""
    threshold: float = 0.8
    """success rate whose first crossing is tabled"""
    smooth: int = 3
    """rollouts the success rate is pooled over"""
    min_episodes: int = 100
    """episodes the pooled rate must cover before it counts"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Command-line flags from the ``Args`` fields."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        kind = {"int": int, "float": float, "str": str}[str(f.type)]
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)
    return Args(**vars(parser.parse_args(argv)))


def main(args: Args) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [int(s) for s in args.seeds.split(",") if s]
    runs = load_curves(Path.cwd(), "", seeds, args.pattern)
    if missing := [s for s in seeds if s not in runs]:
        raise FileNotFoundError(f"no CSV for seeds {missing}: {args.pattern}")
    n = min(len(r["step"]) for r in runs.values())
    steps = runs[seeds[0]]["step"][:n]
    curves, reached, finals = [], {}, {}
    for s, run in runs.items():
        rate, count = pooled_success(run, args.smooth)
        rate = np.where(count >= args.min_episodes, rate, np.nan)
        curves.append(rate[:n])
        reached[s] = steps_to_threshold(run, args.threshold, args.smooth, args.min_episodes)
        finals[s] = float(rate[-1])
    ys = np.stack(curves)
    ok = np.isfinite(ys).all(0)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(steps[ok], ys[:, ok].mean(0), label=f"mean (n={len(seeds)})")
    ax.fill_between(steps[ok], ys[:, ok].min(0), ys[:, ok].max(0), alpha=0.2, label="min-max")
    ax.axhline(args.threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"success rate (episodes of the last {args.smooth} rollouts)")
    ax.set_title(args.title or args.pattern)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    hits = [v for v in reached.values() if v is not None]
    spread = f"{np.mean(hits):,.0f} ± {np.std(hits):,.0f}" if hits else "—"
    per_seed = ", ".join(f"s{s}: {v:,}" if v else f"s{s}: not reached" for s, v in reached.items())
    fin = np.array(list(finals.values()))
    table = (
        f"| seeds reaching {args.threshold:.0%} | env steps to {args.threshold:.0%} "
        "(mean ± std over those) | per seed | final success (mean ± std) |\n"
        "| --- | --- | --- | --- |\n"
        f"| {len(hits)}/{len(seeds)} | {spread} | {per_seed} | "
        f"{fin.mean():.2f} ± {fin.std():.2f} |\n"
    )
    Path(args.out).with_suffix(".md").write_text(table)
    return table


if __name__ == "__main__":
    print(main(parse_args()), end="")
