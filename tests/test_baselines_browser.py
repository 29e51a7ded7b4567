"""Browser part of the baselines: the slot-action wrapper (``envgym.wrappers.BrowserSlotActions``),
a tiny SB3 PPO run through it, and a tiny world-model target-quality run (real Chromium)."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.browser.env import decode_tokens
from envgym.browser.ids import browser_id
from envgym.wrappers import BrowserSlotActions
from envgym.wrappers.browser import (
    FEATURES,
    NUM_FEATURES,
    best_overlap_slot,
    feature_index,
    page_features,
)

ROOT = Path(__file__).resolve().parents[1]

TREE = """- generic [ref=e1]:
  - generic [ref=e2]:
    - checkbox "Falcon" [checked] [ref=e3]
    - text: Falcon
  - textbox "City" [ref=e4]: Paris
  - combobox "Item" [ref=e5]:
    - option "Birch" [selected]
    - option "Amber"
  - button "Submit" [ref=e6]"""


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "baselines" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve field types through sys.modules
    spec.loader.exec_module(module)
    return module


def _make(task: str, n: int, max_slots: int = 16, **kwargs: Any) -> BrowserSlotActions:
    envs = gym.make_vec(
        browser_id(task), num_envs=n, vectorization_mode="vector_entry_point", **kwargs
    )
    return BrowserSlotActions(envs, max_slots=max_slots)


# ---------------------------------------------------------------- features (no browser)
def test_page_features_and_commands_come_from_the_page() -> None:
    instruction = 'Untick "Falcon", set City: "Lisbon", pick "Amber", then submit.'
    feats, cmds = page_features(instruction, TREE, "", max_slots=6)
    assert feats.shape == (6, NUM_FEATURES) and feats.dtype == np.float32
    # generic nodes and options are not slots; tree order is kept
    assert cmds == ["uncheck e3", "fill e4 Lisbon", "select e5 Amber", "click e6"]
    col = {name: feature_index(name) for name in FEATURES}
    assert feats[:4, col["present"]].tolist() == [1, 1, 1, 1]
    assert feats[4:, col["present"]].tolist() == [0, 0]
    assert feats[0, col["role_toggle"]] == 1 and feats[0, col["on"]] == 1
    assert feats[0, col["name_quoted"]] == 1 and feats[3, col["name_quoted"]] == 0
    assert feats[3, col["name_overlap"]] == 1  # "submit" occurs in the instruction
    assert feats[1, col["has_value"]] == 1 and feats[1, col["value_matches"]] == 0
    assert feats[2, col["value_matches"]] == 0  # Birch is selected, Amber is wanted
    assert not feats[:, col["last_action_failed"]].any()
    failed, _ = page_features(instruction, TREE, "no element e9", max_slots=6)
    assert failed[:, col["last_action_failed"]].all()
    # more elements than slots: the first ones are kept
    few, cmds = page_features(instruction, TREE, "", max_slots=2)
    assert few.shape == (2, NUM_FEATURES) and cmds == ["uncheck e3", "fill e4 Lisbon"]
    # nothing quoted: the field is cleared (a dict, since a command string can't end empty)
    _, cmds = page_features("Submit the form.", TREE, "", max_slots=6)
    assert cmds[1] == {"op": "fill", "ref": "e4", "text": ""} and cmds[2] == "select e5 Birch"


def test_importing_the_wrappers_loads_no_playwright_or_sb3() -> None:
    import subprocess

    code = "import envgym.wrappers, sys; print('playwright' in sys.modules, 'stable_baselines3' in sys.modules)"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- the wrapper (real Chromium)
@pytest.mark.browser
def test_wrapper_spaces_slots_bad_slots_and_targets() -> None:
    envs = _make("Checkboxes", 2)
    try:
        assert envs.single_action_space == gym.spaces.Discrete(16)
        assert envs.action_space.shape == (2,)
        assert envs.single_observation_space.shape == (16, NUM_FEATURES)
        obs, _ = envs.reset(seed=0)
        assert tuple(obs.shape) == (2, 16, NUM_FEATURES) and obs.dtype == torch.float32
        assert envs.observation_space.contains(obs.numpy())
        # slot k acts on the k-th interactive element: slot 0 is the first checkbox
        cmds = envs.slot_commands()
        assert cmds[0][0] == "check e3" and cmds[0][-1].startswith("click ")
        obs, rew, term, trunc, info = envs.step(np.array([0, 15]))
        assert list(info["command"]) == ["check e3", "click e0"]
        assert "checkbox" in envs.raw_obs["tree"][0].split("[checked]")[0].splitlines()[-1]
        assert obs[0, 0, feature_index("on")] == 1  # the feature follows the page
        assert envs.slot_commands()[0][0] == "uncheck e3"
        # the out-of-range slot went through the env's own error path and penalty
        assert int(info["action_error"][0]) == 0 and int(info["action_error"][1]) == 2
        assert "no element e0" in info["action_error_message"][1]
        assert float(info["reward_terms"]["invalid_action"][1]) < 0 and not bool(term[1])
        assert obs[1, :, feature_index("last_action_failed")].all()
        # targets are the raw next page's tokens, untouched
        for i in range(2):
            assert np.array_equal(info["next_obs_target"][i], envs.raw_obs["tokens"][i])
        with pytest.raises(ValueError, match="action space"):
            envs.step(np.array([0, 16]))
        with pytest.raises(ValueError, match="expected 2"):
            envs.step(np.array([0, 1, 2]))
    finally:
        envs.close()


@pytest.mark.browser
def test_wrapper_final_obs_are_features_of_the_last_page() -> None:
    envs = _make("ClickButton", 2)
    try:
        obs, _ = envs.reset(seed=3)
        first_page = envs.raw_obs["instruction"].copy()
        # world 0 clicks a button (the episode ends), world 1 an out-of-range slot (goes on)
        obs, _, term, trunc, info = envs.step(np.array([0, 15]))
        done = (term | trunc).numpy()
        assert done.tolist() == [True, False] and info["_final_obs"].tolist() == [True, False]
        final = info["final_obs"]
        assert tuple(final.shape) == (2, 16, NUM_FEATURES)
        # the last page of world 0 is the "thank you" page: no interactive element left
        assert not final[0, :, feature_index("present")].any()
        assert decode_tokens(info["next_obs_target"][0]).split("\n")[1].endswith("/done")
        # ... while obs already shows the next episode's first page (SAME_STEP auto-reset)
        assert obs[0, :, feature_index("present")].sum() >= 3
        assert envs.raw_obs["instruction"][0] != first_page[0]
        assert torch.equal(final[1], obs[1])
    finally:
        envs.close()


@pytest.mark.browser
def test_sb3_adapter_over_the_wrapper_reports_wrapped_terminal_observations() -> None:
    pytest.importorskip("stable_baselines3", reason="needs the baselines extra")
    from envgym.wrappers import SB3VecEnv

    venv = SB3VecEnv(_make("ClickButton", 2), seed=3)
    try:
        obs = venv.reset()
        assert obs.shape == (2, 16, NUM_FEATURES) and obs.dtype == np.float32
        venv.step_async(np.array([0, 15]))
        obs, rew, dones, infos = venv.step_wait()
        assert dones.tolist() == [True, False]
        term = infos[0]["terminal_observation"]
        assert term.shape == (16, NUM_FEATURES) and not term[:, feature_index("present")].any()
        assert obs[0, :, feature_index("present")].sum() >= 3  # already the next episode
        assert "terminal_observation" not in infos[1] and infos[1]["action_error"] == 2
        assert infos[0]["next_obs_target"].shape == (4096,)
    finally:
        venv.close()


@pytest.mark.browser
def test_best_overlap_slot_solves_clickbutton_random_does_not() -> None:
    envs = _make("ClickButton", 4)
    try:

        def play(policy: Any) -> list[bool]:
            obs, _ = envs.reset(seed=50)
            out: list[bool] = []
            while len(out) < 8:
                obs, _, term, trunc, info = envs.step(policy(obs))
                out += [bool(info["success"][i]) for i in np.flatnonzero((term | trunc).numpy())]
            return out[:8]

        rng = np.random.default_rng(0)
        greedy = play(best_overlap_slot)
        rand = play(lambda obs: rng.integers(0, 16, size=4))
        assert all(greedy), greedy
        assert sum(rand) <= 3, rand
        # the oracle's command is a slot here too
        envs.reset(seed=1)
        assert (envs.oracle_action() >= 0).all()
    finally:
        envs.close()


@pytest.mark.browser
def test_wrapper_passes_the_vector_env_checks() -> None:
    from envgym.testing.vector_checks import check_vector_env

    envs = _make("ClickButton", 2)
    try:
        # The features can't be turned back into tokens, so the checker skips its
        # target-vs-final_obs comparison (and says so); the tests above check the targets.
        with pytest.warns(UserWarning) as record:
            check_vector_env(envs, steps=12)
        assert any("target_from_obs" in str(w.message) for w in record)
    finally:
        envs.close()


# ---------------------------------------------------------------- the scripts (smoke runs)
@pytest.mark.browser
def test_sb3_ppo_browser_smoke(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3", reason="needs the baselines extra")
    pytest.importorskip("tensorboard", reason="needs the baselines extra")
    mod = _load("sb3_ppo_browser")
    args = mod.parse_args(
        ["--task", "ClickButton", "--num-envs", "2", "--n-steps", "8", "--batch-size", "16",
         "--n-epochs", "1", "--total-timesteps", "32", "--eval-episodes", "4",
         "--out-dir", str(tmp_path), "--csv", str(tmp_path / "log.csv"), "--no-progress"]
    )  # fmt: skip
    result = mod.train(args)
    assert result["global_step"] >= 32
    run_dir = tmp_path / "sb3_ppo_browser_ClickButton_s1"
    assert (run_dir / "model.zip").exists()
    assert any(p.name.startswith("PPO_") for p in run_dir.iterdir())  # TensorBoard logs
    with open(tmp_path / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2  # 32 steps / (2 worlds x 8 steps)
    for arm in ("trained", "random"):
        assert result["eval"][arm]["episodes"] == 4
        assert 0.0 <= result["eval"][arm]["success_rate"] <= 1.0
    assert json.loads((run_dir / "summary.json").read_text())["eval"] == result["eval"]


@pytest.mark.browser
def test_target_quality_browser_smoke(tmp_path: Path) -> None:
    mod = _load("target_quality_browser")
    args = mod.parse_args(
        ["--tasks", "ClickButton", "--num-envs", "2", "--train-steps", "6", "--eval-steps", "3",
         "--iterations", "3", "--batch-size", "4", "--channels", "16", "--max-tokens", "256",
         "--out", str(tmp_path)]
    )  # fmt: skip
    result = mod.run(args)
    assert result["train_transitions"] == 12 and result["test_transitions"] == 6
    acc = result["scores"]["all"]
    for k in ("predictor_token_acc", "copy_last_token_acc", "position_mode_token_acc"):
        assert 0.0 <= acc[k] <= 1.0
    # ClickButton's random slots click a button or fail; either way the page changes
    assert result["test_share_target_differs_from_obs"] > 0
    assert (tmp_path / "target_quality.json").exists()


@pytest.mark.browser
@pytest.mark.parametrize(
    "task", ["ClickButton", "EnterText", "SelectList", "Checkboxes", "NavigateTabs", "FillForm"]
)
def test_oracle_as_slots_solves_the_element_choice_tasks(task: str) -> None:
    """Every oracle action of these tasks is one of the slots (same element, same verb), and
    playing those slots solves the task: the slot verbs act on the right elements."""
    envs = _make(task, 2)
    try:
        envs.reset(seed=7)
        ended: list[bool] = []
        for _ in range(30):
            slots = envs.oracle_action()
            assert (slots >= 0).all(), envs.env.unwrapped.oracle_action()
            _, _, term, trunc, info = envs.step(slots)
            ended += [bool(info["success"][i]) for i in np.flatnonzero((term | trunc).numpy())]
            if len(ended) >= 2:
                break
        assert len(ended) >= 2 and all(ended), ended
    finally:
        envs.close()
