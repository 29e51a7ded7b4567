"""The B=1 face in core (envgym/core/single.py): one world of a vector env as a gymnasium.Env."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from envgym.core.single import SingleEnv, world_obs
from envgym.phone.faces import PhoneEnv, PhoneVectorEnv
from envgym.phone.realtime import PhoneRealtimeEnv, PhoneRealtimeVectorEnv


def test_world_obs_takes_world_and_makes_discrete_entries_int64_scalars() -> None:
    space = spaces.Dict({"phase": spaces.Discrete(4), "tokens": spaces.Box(0, 9, (3,), np.int32)})
    batched = {
        "phase": torch.tensor([2, 3]),
        "tokens": torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int32),
    }
    one = world_obs(batched, space, world=1)
    assert isinstance(one["phase"], np.int64) and one["phase"] == 3
    assert one["tokens"].dtype == np.int32 and one["tokens"].tolist() == [4, 5, 6]
    assert world_obs(torch.tensor([[7.0], [8.0]])).tolist() == [7.0]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    ("single", "vector"),
    [(PhoneEnv, PhoneVectorEnv), (PhoneRealtimeEnv, PhoneRealtimeVectorEnv)],
    ids=["phone", "realtime"],
)
def test_single_env_is_world_zero_of_a_vector_env_across_episodes(
    single: type[SingleEnv], vector: type
) -> None:
    """Same seed, same actions: the single env returns world 0 of the vector env step by step;
    the ending step returns the final observation, stepping on raises, and an unseeded reset
    continues from the engine's auto-reset exactly as the vector env does."""
    env = single("mock", obs_mode="tokens")
    vec = vector(1, "mock")
    obs, _ = env.reset(seed=3)
    vobs, _ = vec.reset(seed=3)
    assert _same(obs, world_obs(vobs, vec.single_observation_space))
    episodes = 0
    for _ in range(400):
        a = int(env.oracle_action())
        obs, rew, term, trunc, info = env.step(a)
        vobs, vrew, vterm, vtrunc, vinfo = vec.step(torch.tensor([a]))
        assert rew == float(vrew[0]) and term == bool(vterm[0]) and trunc == bool(vtrunc[0])
        assert info["next_obs_target"].tolist() == vinfo["next_obs_target"][0].tolist()
        if term or trunc:
            episodes += 1
            final = world_obs(vinfo["final_obs"], vec.single_observation_space)
            assert _same(obs, final)
            with pytest.raises(RuntimeError, match="call reset"):
                env.step(a)
            obs, reset_info = env.reset()
            assert _same(obs, world_obs(vobs, vec.single_observation_space))
            assert reset_info["action_error"] == "" and reset_info["success"] is False
            if episodes == 2:
                break
        else:
            assert _same(obs, world_obs(vobs, vec.single_observation_space))
    assert episodes == 2
    env.close()
    vec.close()


def test_render_mode_is_checked_against_the_face_modes() -> None:
    with pytest.raises(ValueError, match="render_mode must be one of"):
        PhoneEnv("mock", render_mode="video")
