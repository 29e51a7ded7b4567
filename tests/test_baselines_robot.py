"""Robot baselines: smoke runs of the scripts on Robot-Reach (tiny step counts), the
world-model target-quality check, SB3VecEnv on a Box-observation robot env, and the
experiment's threshold analysis."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import gymnasium as gym
import numpy as np
import pytest
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core import keys

ROOT = Path(__file__).resolve().parents[1]
REACH = "envgym/Robot-Reach-v0"

pytestmark = [
    pytest.mark.mujoco,
    pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs MuJoCo"),
]
pytest.importorskip("tensorboard", reason="needs the baselines extra")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


def _reach(n: int) -> gym.vector.VectorEnv:
    return gym.make_vec(
        REACH,
        num_envs=n,
        vectorization_mode="vector_entry_point",
        backend="cpu",
        device="cpu",
        num_threads=1,
    )


# ---------------------------------------------------------------- ppo_world_model_robot.py
@pytest.mark.parametrize("wm_coef", [0.0, 1.0])
def test_ppo_world_model_robot_smoke(tmp_path: Path, wm_coef: float) -> None:
    mod = _load("ppo_world_model_robot")
    # 8 worlds x 16 steps per iteration; 448 steps reach the 50-step time limit, so the
    # truncation bootstrap from final_obs runs too.
    args = mod.parse_args(
        ["--num-envs", "8", "--num-steps", "16", "--total-timesteps", "512",
         "--wm-coef", str(wm_coef), "--wm-pretrain-steps", "128" if wm_coef else "0",
         "--curiosity-coef", "0.1" if wm_coef else "0", "--checkpoint-every", "2",
         "--out-dir", str(tmp_path), "--csv", str(tmp_path / "log.csv"), "--no-progress",
         "--device", "cpu", "--hidden-dim", "32"]
    )  # fmt: skip
    result = mod.train(args)
    assert result["global_step"] == 512
    rows = _rows(tmp_path / "log.csv")
    assert int(rows[-1]["global_step"]) == 512
    assert sum(int(r["episodes"]) for r in rows) >= 8  # every world hit the time limit once
    run_dir = tmp_path / "ppo_world_model_robot_s1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= {"args", "global_step", "wall_s", "final_success_rate", "checkpoint"}
    assert 0.0 <= summary["final_success_rate"] <= 1.0
    if wm_coef:
        assert int(rows[0]["iteration"]) < 0  # reward-free pre-training rows come first
        assert all(float(r["wm_loss"]) >= 0 and float(r["copy_last_loss"]) > 0 for r in rows)
        assert summary["final_wm_loss"] is not None
    else:
        assert all(r["wm_loss"] == "" for r in rows)
        assert summary["final_wm_loss"] is None
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())

    # The checkpoint restores a policy that acts on the real env.
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["global_step"] == 512 and ckpt["args"]["wm_coef"] == wm_coef
    agent = mod.Agent(20, 7, 17, 32, 0.0)
    agent.load_state_dict(ckpt["agent"])
    obs_rms = mod.RunningMeanStd((20,), torch.device("cpu"))
    obs_rms.load_state_dict(ckpt["obs_rms"])
    assert float(obs_rms.count) > 500  # statistics of the run, not the initial ones
    envs = _reach(4)
    obs, _ = envs.reset(seed=0)
    with torch.no_grad():
        dist, value = agent.policy_value(agent.features(obs_rms.normalize(obs)))
    assert dist.mean.shape == (4, 7) and value.shape == (4,)
    envs.step(dist.mean.clamp(-1, 1))
    envs.close()


def test_world_model_beats_copy_last_on_robot_targets() -> None:
    """A small predictor trained on oracle/random transitions predicts the held-out
    next_obs_target far better than copying the last observation."""
    mod = _load("ppo_world_model_robot")
    r = mod.target_quality(
        REACH, num_envs=16, train_steps=100, eval_steps=20, hidden_dim=64, oracle_fraction=0.5
    )
    assert r["train_transitions"] == 1600 and r["eval_transitions"] == 320
    assert r["copy_last_mse"] > 0  # the target is not constant
    assert r["world_model_mse"] < 0.5 * r["copy_last_mse"]
    assert r["ratio"] == pytest.approx(r["world_model_mse"] / r["copy_last_mse"])
    assert set(r["segments"]) == {"arm_qpos", "arm_qvel", "finger_qpos", "grip_pos"}


# ---------------------------------------------------------------- sb3_ppo_robot.py
def test_sb3_ppo_robot_smoke(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3", reason="needs the baselines extra")
    from stable_baselines3 import PPO

    mod = _load("sb3_ppo_robot")
    args = mod.parse_args(
        ["--num-envs", "8", "--n-steps", "16", "--batch-size", "64", "--n-epochs", "1",
         "--total-timesteps", "512", "--hidden-dim", "32", "--out-dir", str(tmp_path),
         "--csv", str(tmp_path / "log.csv"), "--no-progress"]
    )  # fmt: skip
    result = mod.train(args)
    assert result["global_step"] == 512
    run_dir = tmp_path / "sb3_ppo_robot_s1"
    assert (run_dir / "vecnormalize.pkl").exists()
    model = PPO.load(run_dir / "model.zip", device="cpu")
    action, _ = model.predict(np.zeros((3, 20), dtype=np.float32), deterministic=True)
    assert action.shape == (3, 7) and np.all(np.abs(action) <= 1.0)
    rows = _rows(tmp_path / "log.csv")
    assert len(rows) == 4  # 512 steps / (8 worlds x 16 steps)
    assert sum(int(r["episodes"]) for r in rows) >= 8
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 512


# ---------------------------------------------------------------- SB3VecEnv on a Box env
def test_sb3_vec_env_on_robot_reach_follows_envgym_final_obs() -> None:
    """Box observations and actions: obs are float32 rows of the space, the world seeds follow
    envgym's convention, and on the ending step terminal_observation is envgym's final_obs row
    (never the reset observation), with TimeLimit.truncated for the 50-step limit."""
    pytest.importorskip("stable_baselines3", reason="needs the baselines extra")
    from envgym.wrappers import SB3VecEnv

    venv = SB3VecEnv(_reach(4), seed=5)
    twin = _reach(4)
    assert venv.observation_space.shape == (20,) and venv.action_space.shape == (7,)
    obs = venv.reset()
    t_obs, _ = twin.reset(seed=5)
    assert obs.dtype == np.float32 and obs.shape == (4, 20)
    np.testing.assert_array_equal(obs, t_obs.numpy())
    rng = np.random.default_rng(0)
    truncated = terminated = 0
    for step in range(60):
        # random actions until step 30, then the oracle, so both kinds of end happen
        if step < 30:
            act = rng.uniform(-1, 1, (4, 7)).astype(np.float32)
        else:
            act = twin.unwrapped.oracle_action().numpy()
        obs, rew, dones, infos = venv.step(act)
        t_obs, t_rew, t_term, t_trunc, t_info = twin.step(torch.as_tensor(act))
        np.testing.assert_array_equal(obs, t_obs.numpy())
        np.testing.assert_array_equal(rew, t_rew.numpy())
        for i in range(4):
            d = infos[i]
            np.testing.assert_array_equal(
                d[keys.NEXT_OBS_TARGET], t_info[keys.NEXT_OBS_TARGET][i].numpy()
            )
            if not dones[i]:
                assert "terminal_observation" not in d
                continue
            final = t_info[keys.FINAL_OBS][i].numpy()
            np.testing.assert_array_equal(d["terminal_observation"], final)
            assert not np.array_equal(d["terminal_observation"], obs[i])  # not the reset obs
            # the target of the ending step is the final observation's physical state
            np.testing.assert_array_equal(d[keys.NEXT_OBS_TARGET], final[:17])
            assert d["TimeLimit.truncated"] == bool(t_trunc[i] and not t_term[i])
            assert d["episode"]["l"] == int(t_info[keys.EPISODE]["l"][i])
            truncated += d["TimeLimit.truncated"]
            terminated += bool(t_term[i])
    assert truncated == 4  # random actions: every world hits the 50-step limit
    assert terminated >= 1  # the oracle then reaches the goal
    venv.close()
    twin.close()


# ---------------------------------------------------------------- robot_experiment.py
def test_experiment_threshold_needs_enough_episodes(tmp_path: Path) -> None:
    """A lucky iteration with one successful episode does not count as reaching 80%; the
    analysis writes the table, summary and figures from the per-seed CSVs."""
    mod = _load("robot_experiment")
    fields = ["iteration", "global_step", "episodes", "success_rate", "episode_return",
              "episode_length", "wm_loss", "copy_last_loss"]  # fmt: skip
    curves = {  # (episodes, success rate) per iteration of 1000 env steps
        ("ppo", 1): [(1, 1.0), (60, 0.1), (60, 0.5), (60, 0.9), (60, 0.95), (60, 1.0)],
        ("ppo", 2): [(1, 1.0), (0, float("nan")), (60, 0.2), (60, 0.3), (60, 0.4), (60, 0.5)],
        ("ppo+wm", 1): [(60, 0.5), (60, 0.9), (60, 0.9), (60, 0.9), (60, 1.0), (60, 1.0)],
        ("ppo+wm", 2): [(60, 0.9), (60, 0.9), (60, 0.9), (60, 0.9), (60, 1.0), (60, 1.0)],
    }
    for (arm, seed), points in curves.items():
        with open(tmp_path / f"{arm}_s{seed}.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for it, (n, rate) in enumerate(points):
                w.writerow({"iteration": it, "global_step": 1000 * (it + 1), "episodes": n,
                            "success_rate": rate, "episode_return": -1.0, "episode_length": 20,
                            "wm_loss": 0.1 if arm == "ppo+wm" else "",
                            "copy_last_loss": 1.0 if arm == "ppo+wm" else ""})  # fmt: skip
    # A curve made elsewhere (SB3's CSV: no return or length columns) joins via --extra.
    (tmp_path / "sb3").mkdir()
    for seed in (1, 2):
        (tmp_path / "sb3" / f"sb3_ppo_s{seed}.csv").write_text(
            "global_step,episodes,success_rate,sps\n1000,60,0.5,1\n2000,60,0.9,1\n3000,60,0.9,1\n"
        )
    args = mod.parse_args(
        ["--out", str(tmp_path), "--seeds", "1,2", "--plot-only",
         "--extra", "sb3=sb3/sb3_ppo_s{seed}.csv"]
    )  # fmt: skip
    summary = mod.analyse(args, tmp_path)
    ppo, wm = summary["arms"]["ppo"], summary["arms"]["ppo+wm"]
    # ppo s1: pooled over 3 iterations, (30 + 54 + 57) / 180 = 0.78 at step 5000, 0.95 at 6000
    assert ppo["steps_to_threshold"] == {1: 6000, 2: None} and ppo["reached"] == "1/2"
    # ppo+wm s2: 0.9 from the first iteration, but 100 episodes are only pooled at step 2000
    # ppo+wm s1: (30 + 54 + 54) / 180 = 0.77 at step 3000, 0.9 at 4000
    assert wm["steps_to_threshold"] == {1: 4000, 2: 2000}
    assert wm["steps_to_threshold_mean"] == 3000 and wm["steps_to_threshold_std"] == 1000
    for name in ("table.md", "summary.json", "learning_curves.png", "wm_loss.png"):
        assert (tmp_path / name).stat().st_size > 0
    # sb3: (30 + 54 + 54) / 180 = 0.77 at 3000 with 180 episodes: not reached
    assert summary["arms"]["sb3"]["reached"] == "0/2"
    table = (tmp_path / "table.md").read_text()
    assert "| ppo+wm | 2/2 | 3,000 ± 1,000 |" in table and "| sb3 | 0/2 | — |" in table
