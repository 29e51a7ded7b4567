"""Smoke runs of the baseline scripts (tiny step counts): they run end to end and write their
logs, CSV and checkpoint."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("tensorboard", reason="needs the baselines extra")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "baselines" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve field types through sys.modules
    spec.loader.exec_module(module)
    return module


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("wm_coef", [0.0, 1.0])
def test_ppo_world_model_smoke(tmp_path: Path, wm_coef: float) -> None:
    mod = _load("ppo_world_model")
    args = mod.parse_args(
        ["--scenario", "mock", "--num-envs", "16", "--num-steps", "8", "--total-timesteps",
         "512", "--wm-coef", str(wm_coef), "--wm-pretrain-steps", "128" if wm_coef else "0",
         "--curiosity-coef", "0.1" if wm_coef else "0", "--out-dir", str(tmp_path),
         "--csv", str(tmp_path / "log.csv"), "--no-progress", "--device", "cpu"]
    )  # fmt: skip
    result = mod.train(args)
    assert result["global_step"] >= 512
    rows = _rows(tmp_path / "log.csv")
    assert int(rows[-1]["global_step"]) == result["global_step"]
    if wm_coef:
        # pre-training rows come first (negative iterations) and every row has WM metrics
        assert int(rows[0]["iteration"]) < 0
        assert all(0.0 <= float(r["wm_token_acc"]) <= 1.0 for r in rows)
    else:
        assert "wm_loss" not in rows[-1] or rows[-1]["wm_loss"] == ""
    run_dir = tmp_path / "ppo_world_model_s1"
    assert (run_dir / "checkpoint.pt").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == result["global_step"]


def test_world_model_beats_copy_last_on_phone_targets() -> None:
    """A small world model trained on random-policy transitions predicts the next target's
    tokens better than copying the current observation (held-out worlds)."""
    mod = _load("ppo_world_model")
    result = mod.target_quality(
        scenario="mock", num_envs=64, train_steps=120, seed=0, eval_steps=20
    )
    assert result["world_model_token_acc"] > result["copy_last_token_acc"] + 0.1
    assert not math.isnan(result["copy_last_token_acc"])


def test_sb3_ppo_smoke(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3", reason="needs the baselines extra")
    mod = _load("sb3_ppo")
    args = mod.parse_args(
        ["--scenario", "mock", "--num-envs", "16", "--n-steps", "8", "--batch-size", "64",
         "--total-timesteps", "512", "--out-dir", str(tmp_path), "--csv",
         str(tmp_path / "log.csv"), "--no-progress"]
    )  # fmt: skip
    result = mod.train(args)
    assert result["global_step"] >= 512
    assert (tmp_path / "sb3_ppo_s1" / "model.zip").exists()
    rows = _rows(tmp_path / "log.csv")
    assert len(rows) == 4  # 512 steps / (16 worlds x 8 steps)


def test_plot_sb3_curves_table(tmp_path: Path) -> None:
    """Seed 1 crosses 80% at its fourth rollout (pooled over 2 rollouts and >= 100 episodes);
    seed 2 never does."""
    plot = _load("plot_sb3_curves")
    runs = {1: [0.0, 0.5, 1.0, 1.0], 2: [0.0, 0.1, 0.2, 0.3]}
    for seed, rates in runs.items():
        with open(tmp_path / f"run_s{seed}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["global_step", "episodes", "success_rate", "sps"])
            for i, r in enumerate(rates):
                w.writerow([(i + 1) * 100, 60, r, 1.0])
    out = tmp_path / "curve.png"
    pattern = str(tmp_path / "run_s{seed}.csv")
    args = plot.parse_args(
        ["--pattern", pattern, "--seeds", "1,2", "--out", str(out), "--smooth", "2"]
    )
    table = plot.main(args)
    assert out.stat().st_size > 0
    assert "| 1/2 | 400 ± 0 | s1: 400, s2: not reached | 0.62 ± 0.38 |" in table
    assert out.with_suffix(".md").read_text() == table


def test_ppo_world_model_mask_and_aids_smoke(tmp_path: Path) -> None:
    """The masked torch PPO with shaped rewards, structured fields, the novelty bonus and the
    held-out evaluation: per-sub-goal columns in the CSV, held-out success in the summary."""
    mod = _load("ppo_world_model")
    args = mod.parse_args(
        ["--scenario", "generated", "--difficulty", "0.5", "--num-generated", "2",
         "--num-envs", "16", "--num-steps", "8", "--total-timesteps", "512", "--mask",
         "--reward-mode", "shaped", "--structured-obs", "--novelty-coef", "0.1",
         "--wm-coef", "1", "--aux-target", "current", "--eval-episodes", "8",
         "--out-dir", str(tmp_path), "--csv", str(tmp_path / "log.csv"), "--no-progress",
         "--device", "cpu"]
    )  # fmt: skip
    result = mod.train(args)
    rows = _rows(tmp_path / "log.csv")
    assert all(0.0 <= float(r["sg_user_fact"]) <= 1.0 for r in rows if r["sg_user_fact"])
    for split in ("train_set", "held_out"):
        assert result["eval"][split]["episodes"] == 8
        assert 0.0 <= result["eval"][split]["success_rate"] <= 1.0
    assert result["eval"]["held_out"]["generator_seed"] == 1000


def test_masked_policy_never_takes_an_inadmissible_action() -> None:
    mod = _load("ppo_world_model")
    import torch

    agent = mod.Agent(10, 4, 2, 1, 5, 8, 16)
    mask = torch.tensor([[True, False, False, True, False]] * 64)
    dist, _ = agent.policy_value(torch.randn(64, 16), mask)
    assert mask.gather(1, dist.sample()[:, None]).all()


def test_novelty_bonus_decays_with_visits() -> None:
    mod = _load("ppo_world_model")
    import torch

    counts = mod.NoveltyCounts(torch.device("cpu"), buckets=1 << 10)
    obs = {"tokens": torch.tensor([[1, 2], [1, 2], [3, 4]])}
    first = counts.bonus(obs)
    assert torch.allclose(first, torch.tensor([0.5**0.5, 0.5**0.5, 1.0]))
    assert (counts.bonus(obs) < first).all()


def test_phone_hidden_revealed_smoke(tmp_path: Path) -> None:
    """Two arms x two twins x two seeds at a tiny budget: one CSV/JSON per run, and the
    analysis (IQM, bootstrap intervals, advantages, verdict, table, plot)."""
    mod = _load("phone_hidden_revealed")
    out = tmp_path / "hr"
    summary = mod.main(
        ["--out", str(out), "--difficulty", "0.5", "--num-generated", "2", "--num-envs", "16",
         "--num-steps", "8", "--total-timesteps", "256", "--eval-episodes", "4",
         "--arms", "ppo,ppo+recon", "--seeds", "1,2", "--bootstrap", "50"]
    )  # fmt: skip
    for twin in ("hidden", "revealed"):
        for arm in ("ppo", "ppo+recon"):
            for seed in (1, 2):
                run = json.loads((out / twin / f"{arm}_s{seed}.json").read_text())
                assert run["global_step"] == 256
                assert "--reveal-hidden" in run["command"].split() or twin == "hidden"
        cell = summary["cells"][twin]["ppo"]
        assert 0.0 <= cell["auc_iqm"] <= 1.0
        lo, hi = cell["auc_ci"]
        assert lo <= cell["auc_iqm"] <= hi
    assert "hidden_minus_revealed" in summary["advantage_over_ppo"]["ppo+recon"]
    assert (out / "curves.png").stat().st_size > 0
    assert "| hidden | ppo |" in (out / "table.md").read_text()


def test_iqm_and_auc() -> None:
    mod = _load("phone_hidden_revealed")
    import numpy as np

    assert mod.iqm(np.array([0.0, 1.0, 2.0, 100.0])) == 1.5
    curve = {"step": np.array([50, 100]), "success": np.array([1.0, 1.0])}
    assert mod.auc(curve, 100) == 0.75  # 0 at step 0, 1 from step 50


def test_sparse_bag_features_equal_the_dense_bag() -> None:
    """The encoder's embedding-bag first layer computes the same product as the dense
    normalised bag of words it replaces (and the same gradient)."""
    mod = _load("ppo_world_model")
    import torch

    torch.manual_seed(0)
    agent = mod.Agent(50, 6, 3, 2, 7, 8, 16)
    tokens = torch.randint(0, 50, (32, 6))
    tokens[0] = 0  # an empty observation
    w = agent.encoder[0].weight[:, :50]
    sparse = agent._bag_times(tokens, w)
    dense = agent._bag(tokens) @ w.t()
    assert torch.allclose(sparse, dense, atol=1e-6)
    (g_sparse,) = torch.autograd.grad(sparse.sum(), w)
    (g_dense,) = torch.autograd.grad(dense.sum(), w)
    assert torch.allclose(g_sparse, g_dense, atol=1e-6)


def test_phone_ladder_budget_reads_flags_without_values() -> None:
    mod = _load("phone_ladder")
    job = ["--scenario", "isp_bill_discount", "--reveal-hidden", "--total-timesteps", "100000"]
    assert mod.budget(job) == 100_000
    assert mod.budget(["--scenario", "mock", "--seed", "1"]) == 200_000
