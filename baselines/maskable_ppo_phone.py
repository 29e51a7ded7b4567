"""sb3-contrib ``MaskablePPO`` on the phone env with the engine's admissible-action mask.

The learnability ladder of issue 11: MaskablePPO (through ``envgym.wrappers.SB3VecEnv``,
which serves ``info["action_mask"]`` as ``action_masks()``) on one task, one seed; the
success rate of the episodes that ended in each rollout goes to a CSV, and a JSON summary
(steps to 80% success, final success) next to it. The features extractor is the one of
``baselines/sb3_ppo.py`` (a bag of words over the heard tokens plus the state fields).

Run (one task, one seed):

    python baselines/maskable_ppo_phone.py --scenario mock --seed 1 --total-timesteps 200000
    python baselines/maskable_ppo_phone.py --scenario generated --difficulty 0.5 --seed 1

The whole ladder: ``python baselines/phone_ladder.py`` (see docs/results.md).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def _sb3_ppo() -> Any:
    """``baselines/sb3_ppo.py`` as a module (its features extractor; one rule, one home)."""
    spec = importlib.util.spec_from_file_location("sb3_ppo", HERE / "sb3_ppo.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["sb3_ppo"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="mock")
    p.add_argument("--difficulty", type=float, default=0)
    p.add_argument("--num-generated", type=int, default=32)
    p.add_argument("--reward-mode", default="costs", choices=["sparse", "costs", "shaped"])
    p.add_argument("--reveal-hidden", action="store_true")
    p.add_argument("--no-mask", action="store_true", help="plain PPO ablation: all actions")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--total-timesteps", type=int, default=200_000)
    p.add_argument("--n-steps", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--n-epochs", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--hidden-dim", type=int, default=256)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument(
        "--stop-when-solved",
        type=float,
        default=0.95,
        help="stop early once 3 consecutive rollouts reach this success (0: never)",
    )
    p.add_argument("--out", default=str(HERE / "results" / "phone_ladder"))
    p.add_argument("--name", default="")
    return p.parse_args(argv)


def make_env(args: argparse.Namespace) -> Any:
    import envgym  # noqa: F401  (registers the ids)
    from envgym.wrappers import SB3VecEnv

    kwargs: dict[str, Any] = {
        "scenario": args.scenario,
        "reward_mode": args.reward_mode,
        "reveal_hidden": args.reveal_hidden,
    }
    if args.scenario == "generated":
        d = args.difficulty
        kwargs |= {"difficulty": int(d) if float(d).is_integer() else d}
        kwargs |= {"num_generated": args.num_generated}
    envs = gym.make_vec(
        "envgym/Phone-v0",
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        device="cpu",
        **kwargs,
    )
    return SB3VecEnv(envs, seed=args.seed)


class _Solved(Exception):
    """Raised from the callback to end training once the task is solved."""


def steps_to(rows: list[dict[str, float]], threshold: float) -> int | None:
    """Env steps at the first rollout whose ended episodes reached ``threshold`` success."""
    for r in rows:
        if r["episodes"] > 0 and r["success_rate"] >= threshold:
            return int(r["global_step"])
    return None


def train(args: argparse.Namespace) -> dict[str, Any]:
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    envs = make_env(args)
    if args.no_mask:
        envs.action_masks = lambda: np.ones((envs.num_envs, envs.action_space.n), dtype=bool)

    class Log(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.ended: list[bool] = []
            self.rows: list[dict[str, float]] = []
            self.t0 = time.time()

        def _on_step(self) -> bool:
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
                if done:
                    self.ended.append(bool(info["success"]))
            return True

        def _on_training_start(self) -> None:
            self.stop = False

        def _on_rollout_start(self) -> None:
            if self.stop:
                raise _Solved

        def _on_rollout_end(self) -> None:
            rate = float(np.mean(self.ended)) if self.ended else float("nan")
            self.rows.append(
                {
                    "global_step": self.num_timesteps,
                    "episodes": len(self.ended),
                    "success_rate": rate,
                    "sps": self.num_timesteps / (time.time() - self.t0),
                }
            )
            self.ended = []
            last = [r["success_rate"] for r in self.rows[-3:]]
            solve = args.stop_when_solved
            if solve > 0 and len(last) == 3 and all(x >= solve for x in last):
                self.stop = True  # the update on this rollout still runs

    log = Log()
    model = MaskablePPO(
        "MultiInputPolicy",
        envs,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        ent_coef=args.ent_coef,
        policy_kwargs={
            "features_extractor_class": _sb3_ppo().phone_features_extractor(),
            "features_extractor_kwargs": {"hidden_dim": args.hidden_dim},
            "net_arch": [args.hidden_dim],
        },
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    t0 = time.time()
    with contextlib.suppress(_Solved):
        model.learn(args.total_timesteps, callback=log)
    rows = log.rows
    tail = [r["success_rate"] for r in rows[-2:] if r["episodes"] > 0]
    task = args.scenario if args.scenario != "generated" else f"generated_d{args.difficulty:g}"
    name = args.name or f"{task}_{args.reward_mode}{'_revealed' if args.reveal_hidden else ''}"
    summary = {
        "task": task,
        "reward_mode": args.reward_mode,
        "reveal_hidden": args.reveal_hidden,
        "masked": not args.no_mask,
        "seed": args.seed,
        "total_timesteps": int(model.num_timesteps),
        "steps_to_threshold": steps_to(rows, args.threshold),
        "threshold": args.threshold,
        "final_success": float(np.mean(tail)) if tail else float("nan"),
        "stopped_early": bool(log.stop),
        "wall_s": round(time.time() - t0, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}_s{args.seed}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / f"{name}_s{args.seed}.json").write_text(json.dumps(summary, indent=1) + "\n")
    envs.close()
    return summary


if __name__ == "__main__":
    print(json.dumps(train(parse_args())))
