"""One conformance test over the whole registry: every checker on every env."""

from __future__ import annotations

import gymnasium as gym
import pytest

import envgym  # noqa: F401
from envgym.registration import entries
from envgym.testing import check_single_env, check_vector_env

# Every registered phone id is checked here. The bare Phone-v0 id is also checked with a
# heterogeneous scenario set and with generated scenarios. Robot ids are excluded here only
# because they need a shorter episode and both backends: tests/test_robot.py runs the same
# checkers (check_vector_env with the single env, check_single_env) on every robot id. Browser
# ids are checked by the browser-marked tests at the end of this file, with fewer worlds and
# steps (each step drives real Chromium pages) and without obs_mode (the browser envs have one
# observation format).
CASES = [(e.id, {}) for e in entries() if e.family not in ("robot", "browser")] + [
    ("envgym/Phone-v0", {"scenario": "all"}),
    ("envgym/Phone-v0", {"scenario": "generated", "difficulty": 3, "num_generated": 8}),
    # the learnability aids together (docs/phone.md): mask, shaped terms, structured fields,
    # revealed facts, no variation, noise mask
    (
        "envgym/Phone-v0",
        {
            "scenario": "all",
            "reward_mode": "shaped",
            "structured_obs": True,
            "reveal_hidden": True,
            "variation": "off",
            "target_mask": True,
        },
    ),
]


@pytest.mark.parametrize(("env_id", "kwargs"), CASES, ids=[f"{i}-{k}" for i, k in CASES])
def test_vector_env_conformance(env_id: str, kwargs: dict) -> None:
    envs = gym.make_vec(env_id, num_envs=5, vectorization_mode="vector_entry_point", **kwargs)
    check_vector_env(
        envs,
        single_env_fn=lambda: gym.make(env_id, obs_mode="tokens", **kwargs),
        steps=50,
    )


@pytest.mark.parametrize(("env_id", "kwargs"), CASES, ids=[f"{i}-{k}" for i, k in CASES])
@pytest.mark.parametrize("obs_mode", ["text", "tokens"])
def test_single_env_conformance(env_id: str, kwargs: dict, obs_mode: str) -> None:
    check_single_env(gym.make(env_id, obs_mode=obs_mode, **kwargs))


BROWSER_IDS = [e.id for e in entries() if e.family == "browser"]


@pytest.mark.browser
@pytest.mark.parametrize("env_id", BROWSER_IDS)
def test_browser_vector_env_conformance(env_id: str) -> None:
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", max_steps=6)
    try:
        check_vector_env(
            envs,
            single_env_fn=lambda: gym.make(env_id, max_steps=6),
            steps=8,
            worlds_vs_single=2,
        )
    finally:
        envs.close()


@pytest.mark.browser
@pytest.mark.parametrize("env_id", BROWSER_IDS)
def test_browser_single_env_conformance(env_id: str) -> None:
    env = gym.make(env_id, max_steps=6)
    try:
        check_single_env(env, steps=6)
    finally:
        env.close()
