"""The phone learnability ladder and the hidden-vs-revealed pair, as a job queue.

Runs ``baselines/maskable_ppo_phone.py`` once per (task, arm, seed), at most ``--workers``
processes at once (each with one torch thread), in priority order: the curriculum levels
(mock, generated 0, 0.5, 1) x 3 seeds, then every shipped scenario (1 seed), then the
hidden/revealed twins of ``isp_bill_discount`` (1 seed) and generated level 2 (3 seeds) with
shaped rewards.
Results (CSV + JSON per run) land in ``baselines/results/phone_ladder/``; runs that already
have a JSON there are skipped, so the queue can be resumed. ``--table`` prints the summary
table of what is there (the one in docs/results.md).

    python baselines/phone_ladder.py --workers 2 --deadline-min 25
    python baselines/phone_ladder.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "phone_ladder"
SHIPPED = [
    "address_change",
    "call_budget_pharmacy",
    "cancel_with_retention",
    "isp_bill_discount",
    "ivr_charge_dispute",
    "plan_change_fee",
]


def jobs() -> list[list[str]]:
    """Every run's arguments, highest priority first."""
    out: list[list[str]] = []
    core = [["--scenario", "mock"]] + [
        ["--scenario", "generated", "--difficulty", d] for d in ("0", "0.5")
    ]
    for seed in (1, 2, 3):
        for task in core:
            out.append([*task, "--seed", str(seed)])
    short = ["--total-timesteps", "100000"]  # what fits on the CPU: see docs/results.md
    for reveal in ([], ["--reveal-hidden"]):
        out.append(["--scenario", "isp_bill_discount", "--reward-mode", "shaped", *reveal, *short])
    for name in SHIPPED:
        out.append(["--scenario", name, "--seed", "1", *short])
    out.append(["--scenario", "generated", "--difficulty", "1", "--seed", "1", *short])
    for seed, reveal in [(s, r) for s in ("1", "2", "3") for r in ([], ["--reveal-hidden"])]:
        out.append(
            [
                "--seed",
                seed,
                "--scenario",
                "generated",
                "--difficulty",
                "2",
                "--reward-mode",
                "shaped",
                *reveal,
                *short,
            ]
        )
    return out


def result_name(a: list[str]) -> str:
    """The JSON file a run writes (mirrors maskable_ppo_phone.train)."""
    kv = dict(zip(a[::2], a[1::2], strict=False))
    sc = kv["--scenario"]
    task = sc if sc != "generated" else f"generated_d{float(kv['--difficulty']):g}"
    mode = kv.get("--reward-mode", "costs")
    rev = "_revealed" if "--reveal-hidden" in a else ""
    return f"{task}_{mode}{rev}_s{kv.get('--seed', '1')}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def run_queue(workers: int, deadline_min: float, steps: int, wait_pids: list[int]) -> None:
    """Run the jobs without a result, ``workers`` at a time (runs of ``wait_pids``, started
    before, count against the workers until they end)."""
    OUT.mkdir(parents=True, exist_ok=True)
    todo = [
        j
        for j in jobs()
        if not (OUT / result_name(j)).exists()
        and not (OUT / result_name(j)).with_suffix(".started").exists()
    ]
    end = time.time() + deadline_min * 60
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    running: list[subprocess.Popen] = []
    while todo or running:
        running = [p for p in running if p.poll() is None]
        wait_pids = [p for p in wait_pids if _alive(p)]
        while todo and len(running) + len(wait_pids) < workers and time.time() < end:
            a = todo.pop(0)
            (OUT / result_name(a)).with_suffix(".started").touch()
            cmd = [sys.executable, str(HERE / "maskable_ppo_phone.py")]
            cmd += ["--total-timesteps", str(steps), *a]  # a job's own budget comes last
            print("start", " ".join(a), flush=True)
            running.append(subprocess.Popen(cmd, env=env))
        if time.time() >= end:
            todo = []
        time.sleep(2)


def budget(job: list[str], steps: int = 200_000) -> int:
    """A job's env-step budget: its own ``--total-timesteps``, else the queue's ``--steps``."""
    if "--total-timesteps" in job:  # flags without a value (--reveal-hidden) break pairing
        return int(job[job.index("--total-timesteps") + 1])
    return steps


def table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    budgets = {result_name(j): budget(j) for j in jobs()}
    groups: dict[tuple, list[dict]] = {}
    for p, r in zip(sorted(OUT.glob("*.json")), rows, strict=True):
        key = (r["task"], r["reward_mode"], r["reveal_hidden"], budgets.get(p.name, 0))
        groups.setdefault(key, []).append(r)
    lines = [
        "| task | reward mode | facts | budget (env steps) | seeds | reached 80% "
        "| steps to 80% (each seed) | final success (mean; each) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (task, mode, rev, steps), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["seed"])
        hit = [r["steps_to_threshold"] for r in rs]
        fin = [r["final_success"] for r in rs]
        lines.append(
            f"| {task} | {mode} | {'revealed' if rev else 'hidden'} | {steps:,} | {len(rs)} "
            f"| {sum(h is not None for h in hit)}/{len(rs)} "
            f"| {', '.join(f'{h:,}' if h is not None else '-' for h in hit)} "
            f"| {sum(fin) / len(fin):.2f}; {', '.join(f'{f:.2f}' for f in fin)} |"
        )
    return "\n".join(lines)


TORCH_OUT = HERE / "results" / "phone_ladder_torch"
"""Where the torch-PPO rows live: one ``phone_hidden_revealed.py --out`` folder per task."""


def torch_table() -> str:
    """The torch-PPO ladder: one row per (task, twin, arm) of each folder under ``TORCH_OUT``
    (their ``summary.json``, written by ``phone_hidden_revealed.py``)."""
    lines = [
        "| task | arm | facts | budget (env steps) | seeds | reached 80% "
        "| steps to 80% (each seed) | final success (each seed) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    paths = [
        HERE / "results" / d / "summary.json" for d in ("phone_isp_torch", "phone_hidden_revealed")
    ]
    for path in [p for p in paths if p.exists()] + sorted(TORCH_OUT.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        a = summary["args"]
        task = a["scenario"] if a["scenario"] != "generated" else f"generated_d{a['difficulty']:g}"
        for twin, arms in summary["cells"].items():
            for arm, cell in arms.items():
                ps = cell["per_seed"]
                hits = ", ".join(f"{v:,}" if v is not None else "-"
                                 for v in ps["steps_to_threshold"].values())  # fmt: skip
                finals = ", ".join(f"{v:.2f}" for v in ps["final"].values())
                runs = [path.parent / twin / f"{arm}_s{seed}.json" for seed in cell["seeds"]]
                steps = sorted({json.loads(r.read_text())["args"]["total_timesteps"] for r in runs})
                budget = ", ".join(f"{n:,}" for n in steps)
                cols = [task, arm, twin, budget, str(len(cell["seeds"])), cell["reached"], hits,
                        finals]  # fmt: skip
                lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--deadline-min", type=float, default=25.0)
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--table", action="store_true")
    p.add_argument("--torch-table", action="store_true", help="the torch-PPO rows")
    p.add_argument("--wait-pids", default="", help="comma-separated runs already going")
    a = p.parse_args()
    if a.table:
        print(table())
    elif a.torch_table:
        print(torch_table())
    else:
        pids = [int(x) for x in a.wait_pids.split(",") if x]
        run_queue(a.workers, a.deadline_min, a.steps, pids)
