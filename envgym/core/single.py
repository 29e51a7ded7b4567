"""One world of a native vector env as a ``gymnasium.Env``: the B=1 face every family uses.

A family's single env (``PhoneEnv``, ``PhoneRealtimeEnv``, ``RobotEnv``, ``BrowserEnv``) is a
:class:`SingleEnv` around its own :class:`~envgym.core.vector.TorchVectorEnv` built with
``num_envs=1``. What is the same for every family lives here:

- the spaces: ``observation_space``, ``action_space`` and ``target_space`` are the vector env's
  ``single_*`` spaces (a text face replaces the first two);
- un-batching: tensors become NumPy arrays of world 0, a ``Discrete`` entry of a ``Dict``
  observation a NumPy ``int64`` scalar, rewards ``float``, flags ``bool``, reward terms a dict of
  floats;
- the episode rule: the engine resets a world on the step that ends it (``SAME_STEP``), so the
  step returns ``info["final_obs"]``'s world as the episode's last observation, ``step`` after
  the end raises ``RuntimeError`` and ``reset()`` without a seed starts from the engine's
  already-reset state, exactly as world ``i`` of a vector env; a seeded reset seeds
  ``np_random`` (Gymnasium's rule) and the engine;
- the info contract (ARCHITECTURE §2): ``next_obs_target``, ``reward_terms``, ``success`` and
  ``action_error`` in every step info, and a reset info with the same keys at their reset values
  (:func:`envgym.core.info.reset_info`);
- the error rule (:mod:`envgym.core.errors`): a single action is handed to the vector env as a
  batch of one (:func:`~envgym.core.vector.one_world_action` by default), whose validation raises
  :class:`~envgym.core.errors.InvalidActionError` before anything changed;
- ``render_mode`` checked against ``metadata["render_modes"]`` (``"human"`` prints
  :meth:`render` after every step) and ``close`` closing the vector env.

A family overrides the small hooks below (``_to_vector_action``, ``_action_error``,
``_step_extra``, ``_begin_episode``, ...) for what is its own: text parsing, transcripts,
scenario pinning, extra info keys, rendering.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from envgym.core import keys
from envgym.core.info import reset_info
from envgym.core.vector import TorchVectorEnv, one_world_action


def world_value(value: Any, world: int = 0) -> Any:
    """One world of a batched value: a tensor row as NumPy, any other sequence's item."""
    if torch.is_tensor(value):
        return value[world].cpu().numpy()
    return value[world]


def world_obs(obs: Any, space: spaces.Space | None = None, world: int = 0) -> Any:
    """One world of a batched observation (a tensor or a dict of them) as NumPy; with the single
    observation ``space`` a ``Dict``, its ``Discrete`` entries become NumPy ``int64`` scalars."""
    if not isinstance(obs, dict):
        return world_value(obs, world)
    out = {k: world_value(v, world) for k, v in obs.items()}
    if isinstance(space, spaces.Dict):
        for k, sub in space.spaces.items():
            if isinstance(sub, spaces.Discrete) and k in out:
                out[k] = np.int64(out[k])
    return out


def world_info(info: dict[str, Any], action_error: str, world: int = 0) -> dict[str, Any]:
    """The contract keys of one world's step info (NumPy target, float terms, bool success)."""
    return {
        keys.NEXT_OBS_TARGET: info[keys.NEXT_OBS_TARGET][world].cpu().numpy(),
        keys.REWARD_TERMS: {k: float(v[world]) for k, v in info[keys.REWARD_TERMS].items()},
        keys.SUCCESS: bool(info[keys.SUCCESS][world]),
        keys.ACTION_ERROR: action_error,
    }


class SingleEnv(gym.Env):
    """A native vector env of one world as a ``gymnasium.Env`` (see the module docstring).

    Args:
        vec: the family's vector env, built with ``num_envs=1``.
        render_mode: one of ``metadata["render_modes"]`` or ``None``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, vec: TorchVectorEnv, render_mode: str | None = None) -> None:
        self.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.vec = vec
        self.observation_space = vec.single_observation_space
        self.action_space = vec.single_action_space
        self.target_space = self.single_target_space = vec.single_target_space
        self._ended = False

    @classmethod
    def check_render_mode(cls, render_mode: str | None) -> None:
        """Raise ``ValueError`` unless ``render_mode`` is ``None`` or one of the face's modes
        (a face may call it before it builds its vector env)."""
        if render_mode is not None and render_mode not in cls.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {cls.metadata['render_modes']}")

    # ------------------------------------------------------------------ family hooks
    def _to_vector_action(self, action: Any) -> Any:
        """The single action as the vector env's batch of one (validated there)."""
        return one_world_action(action)

    def _vector_step(self, action: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step the vector env (a family may bracket it, e.g. with per-step inputs)."""
        return self.vec.step(action)

    def _action_error(self, info: dict[str, Any]) -> str:
        """``info["action_error"]``: ``""`` when the action was carried out, else a reason."""
        return ""

    def _step_extra(self, info: dict[str, Any]) -> dict[str, Any]:
        """The family's further step-info keys, from the vector env's info."""
        return {}

    def _observation(self, obs: Any) -> Any:
        """World 0 of a batched observation as this face returns it."""
        return world_obs(obs, self.vec.single_observation_space)

    def _step_observation(self, final: Any, action: Any, info: dict[str, Any]) -> Any:
        """The observation ``step`` returns (the episode's last one when it ended); a face may
        also add to ``info`` here (e.g. the messages a text face heard)."""
        return self._observation(final)

    def _face_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Remove from ``options`` (and return) the reset options this face handles itself."""
        return {}

    def _begin_episode(self, obs: Any, face_options: dict[str, Any]) -> Any:
        """Start the face's episode from the vector env's first observation; returns the
        observation (a face that changes the world, e.g. pins a scenario, returns the new one)."""
        return obs

    def _reset_extra(self, obs: Any) -> dict[str, Any]:
        """The family's further info keys at their reset values."""
        return {}

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        face_options = self._face_options(options)
        if self._ended and seed is None:
            # The engine already moved this world to its next episode (SAME_STEP auto-reset),
            # exactly as world i of a vector env does.
            obs = self.vec.observe()
        else:
            obs, _ = self.vec.reset(seed=seed, options=options or None)
        obs = self._begin_episode(obs, face_options)
        self._ended = False
        target = self.vec.target_from_obs(obs)[0].cpu().numpy()
        info = reset_info(target, self.vec.reward_term_names, **self._reset_extra(obs))
        return self._observation(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._ended:
            raise RuntimeError("the episode has ended; call reset()")
        obs, rew, term, trunc, vinfo = self._vector_step(self._to_vector_action(action))
        self._ended = bool(term[0] or trunc[0])
        final = vinfo[keys.FINAL_OBS] if self._ended else obs
        info = world_info(vinfo, self._action_error(vinfo))
        info.update(self._step_extra(vinfo))
        out = self._step_observation(final, action, info)
        if self.render_mode == "human":
            print(self.render())
        return out, float(rew[0]), bool(term[0]), bool(trunc[0]), info

    def render(self) -> Any:
        return None

    def close(self) -> None:
        self.vec.close()
