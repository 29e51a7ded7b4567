"""The conformance checker catches what it promises to: each test breaks one contract of a real
vector env (the mock phone scenario) and expects ``check_vector_env`` to name it."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import pytest
import torch
from gymnasium.vector import AutoresetMode

import envgym  # noqa: F401
from envgym.core import keys
from envgym.testing import check_vector_env

ENV_ID = "envgym/Phone-Mock-v0"
B = 3
STEPS = 20


class Delegate:
    """A vector env that passes everything to a real one; subclasses break one contract."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def reset(self, **kwargs: Any) -> Any:
        return self.inner.reset(**kwargs)

    def step(self, action: Any) -> Any:
        return self.inner.step(action)


def _envs() -> Any:
    return gym.make_vec(ENV_ID, num_envs=B, vectorization_mode="vector_entry_point")


def _single() -> gym.Env:
    return gym.make(ENV_ID, obs_mode="tokens")


def _valid(action: Any, n: int) -> bool:
    """Whether ``action`` is B in-range discrete actions (not one of the checker's bad ones)."""
    return torch.is_tensor(action) and tuple(action.shape) == (B,) and bool((action < n).all())


def test_the_real_env_passes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing suspicious either
        check_vector_env(_envs(), single_env_fn=_single, steps=STEPS)


def test_wrong_autoreset_mode() -> None:
    class NextStep(Delegate):
        metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    with pytest.raises(AssertionError, match="autoreset_mode"):
        check_vector_env(NextStep(_envs()), steps=STEPS)


def test_reward_dtype() -> None:
    class Double(Delegate):
        def step(self, action: Any) -> Any:
            obs, rew, term, trunc, info = self.inner.step(action)
            return obs, rew.double(), term, trunc, info

    with pytest.raises(AssertionError, match=r"step 0: reward dtype torch\.float64"):
        check_vector_env(Double(_envs()), steps=STEPS)


def test_missing_info_key() -> None:
    class NoSuccess(Delegate):
        def step(self, action: Any) -> Any:
            obs, rew, term, trunc, info = self.inner.step(action)
            info = {k: v for k, v in info.items() if k != keys.SUCCESS}
            return obs, rew, term, trunc, info

    with pytest.raises(AssertionError, match="step 0: info lacks 'success'"):
        check_vector_env(NoSuccess(_envs()), steps=STEPS)


def test_reward_not_sum_of_terms() -> None:
    class Bonus(Delegate):
        def step(self, action: Any) -> Any:
            obs, rew, term, trunc, info = self.inner.step(action)
            return obs, rew + 1.0, term, trunc, info

    with pytest.raises(AssertionError, match=r"step 0: reward != sum of reward_terms"):
        check_vector_env(Bonus(_envs()), steps=STEPS)


def test_target_after_auto_reset() -> None:
    """A target taken from the reset observation instead of ``final_obs`` is caught."""

    class LateTarget(Delegate):
        def step(self, action: Any) -> Any:
            obs, rew, term, trunc, info = self.inner.step(action)
            info = {**info, keys.NEXT_OBS_TARGET: self.inner.target_from_obs(obs)}
            return obs, rew, term, trunc, info

    with pytest.raises(AssertionError, match="differs from the target of the true next obs"):
        check_vector_env(LateTarget(_envs()), steps=STEPS)


def test_out_of_space_action_accepted() -> None:
    class Clamp(Delegate):
        def step(self, action: Any) -> Any:
            n = int(self.inner.single_action_space.n)
            if torch.is_tensor(action) and tuple(action.shape) == (B,):
                action = action.clamp(0, n - 1)
            return self.inner.step(action)

    with pytest.raises(AssertionError, match="an out-of-space action must raise ValueError"):
        check_vector_env(Clamp(_envs()), steps=STEPS)


def test_wrong_number_of_actions_accepted() -> None:
    class Cut(Delegate):
        def step(self, action: Any) -> Any:
            return self.inner.step(action[:B])

    with pytest.raises(AssertionError, match="a wrong number of actions must raise ValueError"):
        check_vector_env(Cut(_envs()), steps=STEPS)


def test_nondeterministic_env() -> None:
    class Unseeded(Delegate):
        def step(self, action: Any) -> Any:
            n = int(self.inner.single_action_space.n)
            if _valid(action, n):  # the global generator: differs from rollout to rollout
                action = torch.randint(0, n, (B,))
            return self.inner.step(action)

    with pytest.raises(AssertionError, match="same seed, different trajectory at step"):
        check_vector_env(Unseeded(_envs()), steps=STEPS)


def test_snapshot_not_restored() -> None:
    class NoRestore(Delegate):
        def set_state(self, state: Any) -> None:
            pass

    with pytest.raises(AssertionError, match=r"set_state\(get_state\(\)\) did not reproduce"):
        check_vector_env(NoRestore(_envs()), steps=STEPS)


def test_batch_differs_from_single() -> None:
    class Bonus(gym.Wrapper):
        def step(self, action: Any) -> Any:
            obs, rew, term, trunc, info = self.env.step(action)
            return obs, rew + 1.0, term, trunc, info

    with pytest.raises(AssertionError, match="world 0, step 0: reward"):
        check_vector_env(_envs(), single_env_fn=lambda: Bonus(_single()), steps=STEPS)


def test_warnings_point_at_the_caller() -> None:
    """Suspicious-but-legal runs warn, attributed to the line that called the checker."""
    with pytest.warns(UserWarning, match="no episode ended in 1 random steps") as caught:
        check_vector_env(_envs(), steps=1)
    assert {w.filename for w in caught} == {__file__}


def test_target_checks_skipped_with_a_warning() -> None:
    """An env without ``target_from_obs`` skips the target checks, with a warning on the caller."""

    class NoTargetFn(Delegate):
        def target_from_obs(self, obs: Any) -> Any:
            raise NotImplementedError

    with pytest.warns(UserWarning) as caught:
        check_vector_env(NoTargetFn(_envs()), steps=STEPS)
    assert "env has no target_from_obs(); target checks skipped" in {str(w.message) for w in caught}
    assert {w.filename for w in caught} == {__file__}
