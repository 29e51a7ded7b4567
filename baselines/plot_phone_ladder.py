"""Plot the phone ladder's learning curves (success of the episodes ended per rollout) from
``baselines/results/phone_ladder/*.csv``, one line per run, one colour per task.

    python baselines/plot_phone_ladder.py baselines/results/phone_ladder/ladder.png
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results" / "phone_ladder"


def main(out: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours: dict[str, str] = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for path in sorted(RESULTS.glob("*.csv")):
        task = path.stem.rsplit("_s", 1)[0]
        with open(path) as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["episodes"]) > 0]
        if not rows:
            continue
        first = task not in colours
        colours.setdefault(task, palette[len(colours) % len(palette)])
        ax.plot(
            [int(r["global_step"]) for r in rows],
            [float(r["success_rate"]) for r in rows],
            color=colours[task],
            alpha=0.8,
            label=task if first else None,
        )
    ax.axhline(0.8, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("env steps")
    ax.set_ylabel("success (episodes ended per rollout)")
    ax.set_title("MaskablePPO on the phone env, engine action mask")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(RESULTS / "ladder.png"))
