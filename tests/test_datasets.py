"""Minari datasets: ``envgym record`` round trips through ``minari.load_dataset``, resumes,
survives SIGINT; ``minari.DataCollector(record_infos=True)`` works on every family's single env.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.core import keys

minari = pytest.importorskip("minari", reason="needs the datasets extra")
pytest.importorskip("h5py", reason="needs the datasets extra")

from envgym.datasets import StepDataCallback, load_policy, record  # noqa: E402

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
mujoco = pytest.mark.skipif(not HAS_MUJOCO, reason="needs MuJoCo")

PHONE = ("envgym/Phone-v0", {}, {"obs_mode": "tokens"})
ROBOT = ("envgym/Robot-Reach-v0", {"num_threads": 1}, {})


@pytest.fixture(autouse=True)
def _datasets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its datasets to its own tmp dir, never to ~/.minari."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def _direct_episodes(
    env_id: str, single_kwargs: dict[str, Any], worlds: int, per_world: int, seed: int
) -> dict[tuple[int, int], dict[str, Any]]:
    """Oracle episodes from single envs (world w = a single env seeded seed + w, continued by
    plain reset()), independently of the recorder's episode rebuilding."""
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for w in range(worlds):
        env = gym.make(env_id, disable_env_checker=True, **single_kwargs)
        obs, _ = env.reset(seed=seed + w)
        for k in range(per_world):
            if k:
                obs, _ = env.reset()
            ep: dict[str, Any] = {"obs": [obs], "act": [], "rew": [], "term": [], "trunc": []}
            ep.update(target=[], success=[], terms=[])
            while True:
                a = env.unwrapped.oracle_action()
                obs, r, te, tr, info = env.step(a)
                ep["obs"].append(obs)
                ep["act"].append(a)
                ep["rew"].append(r)
                ep["term"].append(te)
                ep["trunc"].append(tr)
                ep["target"].append(info[keys.NEXT_OBS_TARGET])
                ep["success"].append(info[keys.SUCCESS])
                ep["terms"].append(info[keys.REWARD_TERMS])
                if te or tr:
                    break
            out[(w, k)] = ep
        env.close()
    return out


def _stack_obs(rows: list[Any]) -> Any:
    if isinstance(rows[0], dict):
        return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
    return np.stack(rows)


@pytest.mark.parametrize(
    "case", [PHONE, pytest.param(ROBOT, marks=[pytest.mark.mujoco, mujoco])], ids=["phone", "robot"]
)
def test_record_round_trips_against_direct_rollout(case: tuple[Any, ...]) -> None:
    env_id, vec_kwargs, single_kwargs = case
    worlds, seed, n = 3, 7, 7
    rep = record(
        env_id, "envgym/rt-v0", policy="oracle", episodes=n, num_envs=worlds, seed=seed,
        env_kwargs=vec_kwargs,
    )  # fmt: skip
    assert rep.episodes == rep.written == n and not rep.interrupted
    ds = minari.load_dataset("envgym/rt-v0")
    assert ds.total_episodes == n
    metas = list(ds.storage.get_episode_metadata(range(n)))
    per_world = 1 + max(m["envgym_world_episode"] for m in metas)
    direct = _direct_episodes(env_id, single_kwargs, worlds, per_world, seed)
    steps = 0
    for ep, meta in zip(ds.iterate_episodes(), metas, strict=True):
        ref = direct[(meta["envgym_world"], meta["envgym_world_episode"])]
        steps += len(ep)
        want_obs = _stack_obs(ref["obs"])
        if isinstance(want_obs, dict):
            assert set(ep.observations) == set(want_obs)
            for k in want_obs:
                np.testing.assert_array_equal(ep.observations[k], want_obs[k], err_msg=k)
        else:
            np.testing.assert_array_equal(ep.observations, want_obs)
        np.testing.assert_array_equal(ep.actions, np.stack([np.asarray(a) for a in ref["act"]]))
        np.testing.assert_array_equal(ep.rewards, np.asarray(ref["rew"], dtype=np.float32))
        np.testing.assert_array_equal(ep.terminations, ref["term"])
        np.testing.assert_array_equal(ep.truncations, ref["trunc"])
        assert ep.terminations[-1] or ep.truncations[-1]
        assert not (ep.terminations[:-1] | ep.truncations[:-1]).any()
        np.testing.assert_array_equal(ep.infos[keys.NEXT_OBS_TARGET], np.stack(ref["target"]))
        np.testing.assert_array_equal(ep.infos[keys.SUCCESS], ref["success"])
        for term, vals in ep.infos[keys.REWARD_TERMS].items():
            np.testing.assert_allclose(vals, [t[term] for t in ref["terms"]], rtol=0, atol=0)
        assert len(ep.infos[keys.ACTION_ERROR]) == len(ep)
    assert ds.total_steps == steps == rep.steps_written
    # Episodes are stored in the order their worlds finished them: the final observation of
    # each is the true last one, so targets of episode ends decode from it.
    assert ds.env_spec is not None and ds.env_spec.id == env_id


def test_record_random_and_mixed_policies_are_seeded() -> None:
    for policy in ("random", "mixed:0.3"):
        a = record("envgym/Phone-v0", f"envgym/a-{policy[:5]}-v0", policy=policy, episodes=4,
                   num_envs=4, seed=3)  # fmt: skip
        b = record("envgym/Phone-v0", f"envgym/b-{policy[:5]}-v0", policy=policy, episodes=4,
                   num_envs=4, seed=3)  # fmt: skip
        assert a.steps_written == b.steps_written
        da = minari.load_dataset(f"envgym/a-{policy[:5]}-v0")
        db = minari.load_dataset(f"envgym/b-{policy[:5]}-v0")
        for ea, eb in zip(da, db, strict=True):
            np.testing.assert_array_equal(ea.actions, eb.actions)
    record("envgym/Phone-v0", "envgym/o-v0", episodes=8, num_envs=4, seed=3)
    record("envgym/Phone-v0", "envgym/r-v0", policy="random", episodes=8, num_envs=4, seed=3)
    oracle_success = [e.infos[keys.SUCCESS][-1] for e in minari.load_dataset("envgym/o-v0")]
    random_success = [e.infos[keys.SUCCESS][-1] for e in minari.load_dataset("envgym/r-v0")]
    assert np.mean(oracle_success) == 1.0 and np.mean(random_success) < 1.0


def test_resume_continues_and_equals_an_uninterrupted_recording() -> None:
    full = record("envgym/Phone-v0", "envgym/full-v0", policy="mixed", episodes=12, num_envs=4)
    part = record("envgym/Phone-v0", "envgym/part-v0", policy="mixed", episodes=5, num_envs=4)
    assert part.episodes == 5
    again = record("envgym/Phone-v0", "envgym/part-v0", policy="mixed", episodes=12, num_envs=4)
    assert again.resumed_from == 5 and again.written == 7 and again.episodes == 12
    assert full.episodes == 12
    done = record("envgym/Phone-v0", "envgym/part-v0", policy="mixed", episodes=12, num_envs=4)
    assert done.written == 0 and done.episodes == 12
    a, b = minari.load_dataset("envgym/full-v0"), minari.load_dataset("envgym/part-v0")
    assert a.total_steps == b.total_steps
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea.actions, eb.actions)
        np.testing.assert_array_equal(ea.observations["tokens"], eb.observations["tokens"])
        np.testing.assert_array_equal(
            ea.infos[keys.NEXT_OBS_TARGET], eb.infos[keys.NEXT_OBS_TARGET]
        )
    with pytest.raises(ValueError, match="recorded with"):
        record("envgym/Phone-v0", "envgym/part-v0", policy="oracle", episodes=20, num_envs=4)


def test_sigint_keeps_finished_episodes_and_the_same_command_resumes(
    _datasets_dir: Path,
) -> None:
    args = ["record", "envgym/Phone-v0", "--policy", "mixed", "--episodes", "1000000",
            "--num-envs", "8", "--out", "envgym/int-v0", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "envgym.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    meta = _datasets_dir / "envgym" / "int-v0" / "data" / "metadata.json"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if meta.exists() and json.loads(meta.read_text() or "{}").get("total_episodes", 0) > 3:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the recorder wrote no episode in 60 s")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    saved = minari.load_dataset("envgym/int-v0")
    n = saved.total_episodes
    assert n > 3
    for ep in saved:  # every stored episode is whole
        assert ep.terminations[-1] or ep.truncations[-1]
        assert len(ep.observations["tokens"]) == len(ep) + 1
    # The same command with a reachable --episodes continues where it stopped.
    from envgym.cli import main

    args[args.index("--episodes") + 1] = str(n + 3)
    assert main(args) == 0
    resumed = minari.load_dataset("envgym/int-v0")
    assert resumed.total_episodes == n + 3
    ref = record("envgym/Phone-v0", "envgym/ref-v0", policy="mixed", episodes=n + 3, num_envs=8)
    assert ref.episodes == n + 3
    for ea, eb in zip(resumed, minari.load_dataset("envgym/ref-v0"), strict=True):
        np.testing.assert_array_equal(ea.actions, eb.actions)


def test_policy_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "pol.py"
    f.write_text("def always_wait(obs, envs):\n    return [0] * envs.num_envs\n")
    rep = record("envgym/Phone-v0", "envgym/file-v0", policy=f"{f}:always_wait", episodes=2,
                 num_envs=2)  # fmt: skip
    ds = minari.load_dataset("envgym/file-v0")
    assert rep.episodes == 2 and all((ep.actions == 0).all() for ep in ds)
    with pytest.raises(ValueError, match="policy"):
        load_policy("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="mixed"):
        load_policy("mixed:2")


def test_record_cli_bench_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from envgym.cli import main

    out = tmp_path / "rec.json"
    code = main(["record", "envgym/Phone-v0", "--episodes", "6", "--num-envs", "4", "--out",
                 "envgym/cli-v0", "--bench", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    row = json.loads(out.read_text())
    assert row["episodes"] == 6 and row["rollout_env_steps_per_s"] > 0
    assert row["record_env_steps_per_s"] > 0 and row["command"].startswith("envgym record")
    assert minari.load_dataset("envgym/cli-v0").total_steps == row["steps_written"]
    assert "env-steps/s" in capsys.readouterr().out
    # --bench refuses an existing dataset (a resumed run would time only the tail).
    assert main(["record", "envgym/Phone-v0", "--episodes", "6", "--out", "envgym/cli-v0",
                 "--bench", str(out)]) == 2  # fmt: skip


# --------------------------------------------------------------------------- DataCollector


def _collect(env: gym.Env, episodes: int, **kwargs: Any) -> Any:
    dc = minari.DataCollector(env, record_infos=True, **kwargs)
    dc.reset(seed=0)
    done = 0
    while done < episodes:
        _, _, te, tr, _ = dc.step(dc.unwrapped.oracle_action())
        if te or tr:
            done += 1
            dc.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari asks for an author and a code permalink
        ds = dc.create_dataset("envgym/collected-v0", algorithm_name="oracle")
    dc.close()
    return ds


def _check_collected(ds: Any, episodes: int, extra: set[str]) -> None:
    assert ds.total_episodes == episodes
    for ep in ds:
        want = {keys.NEXT_OBS_TARGET, keys.REWARD_TERMS, keys.SUCCESS, keys.ACTION_ERROR, *extra}
        assert want <= set(ep.infos)
        # Minari stores the reset info first, then one per step.
        assert len(ep.infos[keys.NEXT_OBS_TARGET]) == len(ep) + 1
        assert not ep.infos[keys.SUCCESS][0]
        assert all((v[0] == 0.0) for v in ep.infos[keys.REWARD_TERMS].values())
        assert ep.infos[keys.SUCCESS][-1]


@pytest.mark.parametrize("obs_mode", ["tokens", "text"])
def test_data_collector_phone(obs_mode: str) -> None:
    env = gym.make("envgym/Phone-v0", obs_mode=obs_mode)
    obs, info = env.reset(seed=0)
    # The reset target is the first observation's target encoding.
    np.testing.assert_array_equal(
        info[keys.NEXT_OBS_TARGET],
        env.unwrapped.vec.target_from_obs(env.unwrapped.vec.observe())[0].numpy(),
    )
    if obs_mode == "tokens":
        ds = _collect(env, 2)
        _check_collected(ds, 2, {"scenario", "action_name"})
    else:
        # info["messages"] is a list of changing length: stored as JSON text per step.
        ds = _collect(env, 2, step_data_callback=StepDataCallback)
        _check_collected(ds, 2, {"scenario", "action_name", "messages"})
        first = next(iter(ds))
        msgs = json.loads(first.infos["messages"][0])
        assert msgs and msgs[0]["role"] == "user"
        assert isinstance(first.observations[0], str)


@pytest.mark.mujoco
@mujoco
def test_data_collector_robot() -> None:
    ds = _collect(gym.make("envgym/Robot-Reach-v0"), 2)
    _check_collected(ds, 2, {"unstable"})


@pytest.mark.browser
def test_data_collector_browser() -> None:
    ds = _collect(gym.make("envgym/Browser-ClickButton-v0"), 2)
    _check_collected(ds, 2, {"truncation_reason", "task"})


@pytest.mark.browser
def test_browser_accepts_64_bit_seeds() -> None:
    # Minari's DataCollector reseeds every reset with a random 64-bit seed.
    env = gym.make("envgym/Browser-ClickButton-v0")
    try:
        a, _ = env.reset(seed=2**64 - 5)
        b, _ = env.reset(seed=2**64 - 5)
        assert a["tree"] == b["tree"]
    finally:
        env.close()


# --------------------------------------------------------------------------- offline baseline


def _load_baseline() -> Any:
    import importlib.util as iu

    root = Path(__file__).resolve().parents[1]
    spec = iu.spec_from_file_location(
        "offline_world_model", root / "baselines" / "offline_world_model.py"
    )
    assert spec is not None and spec.loader is not None
    module = iu.module_from_spec(spec)
    sys.modules["offline_world_model"] = module  # dataclasses resolve field types through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("env_id", "episodes"),
    [("envgym/Phone-v0", 8), pytest.param("envgym/Robot-Reach-v0", 4, marks=[mujoco])],
    ids=["phone", "robot"],
)
def test_offline_world_model_smoke(tmp_path: Path, env_id: str, episodes: int) -> None:
    mod = _load_baseline()
    out = tmp_path / "report.json"
    report = mod.main(
        ["--dataset", "envgym/wm-v0", "--record-id", env_id, "--record-episodes", str(episodes),
         "--record-num-envs", "4", "--epochs", "1", "--hidden", "32", "--embed", "16",
         "--json", str(out)]
    )  # fmt: skip
    assert json.loads(out.read_text())["world_model"] == report["world_model"]
    assert report["train_episodes"] + report["holdout_episodes"] == episodes
    assert report["gradient_steps"] >= 1 and np.isfinite(report["final_train_loss"])
    for k in ("world_model", "copy_last", "marginal"):
        assert np.isfinite(report[k]) and report[k] >= 0
    if env_id.startswith("envgym/Phone"):
        assert 0 <= report["copy_last"] <= 1 and 0 <= report["world_model"] <= 1
