"""The NumPy face of envgym's native vector envs, for NumPy-only consumers.

envgym's native vector envs return torch tensors on their ``device``. Gymnasium's own vector
wrappers (``RecordEpisodeStatistics``, ``NormalizeReward``, ``ClipAction``, ``RescaleAction``,
``TransformObservation``, ...) are written against NumPy arrays. :class:`NumpyVector` is the one
place where the two meet: it hands out every observation, reward, flag and info value as NumPy
on the host, and passes actions on (the engines accept NumPy actions). Everything else (the
SAME_STEP ``autoreset_mode`` metadata, the spaces, ``final_obs``, ``keys.EPISODE``) is the
native env's own.

:class:`TransformObservation` and :class:`NormalizeObservation` are Gymnasium's wrappers of the
same names made aware of SAME_STEP auto-reset: Gymnasium's refuse SAME_STEP envs because they
would leave ``info["final_obs"]`` untransformed (a value bootstrapped on it would see raw
inputs); these transform ``final_obs`` with the same function and statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers.utils import RunningMeanStd

from envgym.core import keys


def to_numpy(x: Any) -> Any:
    """A torch tensor, or a dict of them (nested), as NumPy on the host; other values as
    ``np.asarray`` gives them (object arrays of strings stay object arrays)."""
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class NumpyVector(VectorWrapper):
    """An envgym vector env whose outputs are NumPy arrays on the host.

    Put it first (right over ``gym.make_vec(..., vectorization_mode="vector_entry_point")``)
    and any NumPy vector wrapper of Gymnasium works on top. Infos are converted key by key, so
    keys added by the engine (action masks, per-term fields) pass through as NumPy too.

    Example:
        >>> from gymnasium.wrappers.vector import NormalizeReward, RecordEpisodeStatistics
        >>> envs = gym.make_vec("envgym/Robot-Reach-v0", num_envs=8,
        ...     vectorization_mode="vector_entry_point")
        >>> envs = NormalizeReward(RecordEpisodeStatistics(NumpyVector(envs)))
    """

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        if env.metadata.get("autoreset_mode") is None:
            raise ValueError(f"{env} declares no autoreset_mode in its metadata")

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset as the native env does (``options={"reset_mask": np.ndarray}`` too)."""
        obs, info = self.env.reset(seed=seed, options=options)
        return to_numpy(obs), to_numpy(info)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """One batched step; actions may be NumPy (or torch) as the native env accepts."""
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return (
            to_numpy(obs),
            to_numpy(reward),
            to_numpy(terminated).astype(bool),
            to_numpy(truncated).astype(bool),
            to_numpy(info),
        )

    def oracle_action(self) -> np.ndarray:
        """The native env's scripted solver's actions, as NumPy."""
        return to_numpy(self.env.unwrapped.oracle_action())


class TransformObservation(VectorWrapper):
    """Applies a batched function to the observations of a SAME_STEP vector env, and to
    ``info["final_obs"]`` (the ended worlds' true last observations) alike.

    Gymnasium's ``gymnasium.wrappers.vector.TransformObservation`` refuses SAME_STEP envs,
    because it would leave ``final_obs`` untransformed; this is the same wrapper for envgym's
    vector envs (native or under :class:`NumpyVector`), whose ``final_obs`` is batched like the
    observations (all rows; the rows flagged in ``info["_final_obs"]`` are meaningful).

    Args:
        env: a SAME_STEP vector env.
        func: maps a batched observation to the new batched observation.
        observation_space: the new batched space (``None`` keeps the env's).
        single_observation_space: the new single space (``None`` keeps the env's).
    """

    def __init__(
        self,
        env: VectorEnv,
        func: Callable[[Any], Any],
        observation_space: spaces.Space | None = None,
        single_observation_space: spaces.Space | None = None,
    ) -> None:
        super().__init__(env)
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"{type(self).__name__} is for SAME_STEP vector envs; use Gymnasium's own "
                "wrapper for NEXT_STEP ones"
            )
        self.func = func
        if single_observation_space is not None:
            self.single_observation_space = single_observation_space
        if observation_space is not None:
            self.observation_space = observation_space

    def observations(self, obs: Any) -> Any:
        """The transformed batched observation."""
        return self.func(obs)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observations(obs), info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self._observed(obs)
        if keys.FINAL_OBS in info:
            info = dict(info)
            info[keys.FINAL_OBS] = self.observations(info[keys.FINAL_OBS])
        return self.observations(obs), reward, terminated, truncated, info

    def _observed(self, obs: Any) -> None:
        """Hook: called with each step's raw observations before they are transformed."""


class NormalizeObservation(TransformObservation):
    """Running-mean/variance normalisation of ``Box`` observations for SAME_STEP vector envs.

    Each step's observations update the running statistics (after a SAME_STEP auto-reset they
    are the new episodes' first observations: genuine observations too), and both the returned
    observations and ``info["final_obs"]`` are normalised with the statistics as they stand
    after the update. It works on NumPy vector envs (put :class:`NumpyVector` under it);
    Gymnasium's own ``NormalizeObservation`` refuses SAME_STEP envs for the reason given in
    :class:`TransformObservation`.

    Args:
        env: a NumPy SAME_STEP vector env with a ``Box`` single observation space.
        epsilon: added to the variance under the square root; must be > 0.
    """

    def __init__(self, env: VectorEnv, epsilon: float = 1e-8) -> None:
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        space = env.single_observation_space
        if not isinstance(space, spaces.Box):
            raise TypeError(
                f"NormalizeObservation needs a Box observation space, got {space}; "
                "token-id observations are categorical and are not normalised"
            )
        single = spaces.Box(-np.inf, np.inf, space.shape, np.float32)
        super().__init__(env, self._normalize, batch_space(single, env.num_envs), single)
        self.obs_rms = RunningMeanStd(shape=space.shape, dtype=np.float64)
        self.epsilon = float(epsilon)
        self.update_running_mean = True

    def _normalize(self, obs: Any) -> np.ndarray:
        z = (np.asarray(obs) - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
        return z.astype(np.float32)

    def _observed(self, obs: Any) -> None:
        if self.update_running_mean:
            self.obs_rms.update(np.asarray(obs, dtype=np.float64))

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._observed(obs)
        return self.observations(obs), info
