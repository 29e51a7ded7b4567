"""A Stable-Baselines3 ``VecEnv`` over any envgym vector env.

envgym's vector envs are Gymnasium vector envs with torch tensors on a device and SAME_STEP
auto-reset (``info["final_obs"]`` holds the true last observation of worlds that just ended).
Stable-Baselines3 expects NumPy, ``dones`` instead of terminated/truncated, one info dict per
world, and the ended world's last observation in ``infos[i]["terminal_observation"]``. Both
conventions auto-reset on the same step, so the adapter only converts; it never steps a world
twice or wastes a step on a reset.

Stable-Baselines3 is an optional dependency (the ``baselines`` extra): this module imports
without it, and :class:`SB3VecEnv` raises an error naming the install command when it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from envgym.core import keys
from envgym.wrappers.numpy_vector import to_numpy as _to_numpy

_INSTALL_HINT = "pip install -e '.[baselines]'"


def _import_vec_env_base() -> type:
    try:
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError as exc:
        raise ImportError(
            f"SB3VecEnv needs Stable-Baselines3, which is not installed; run {_INSTALL_HINT}"
        ) from exc
    return VecEnv


def _row(x: Any, i: int) -> Any:
    """Row ``i`` of a batched observation (a dict of arrays or one array)."""
    if isinstance(x, dict):
        return {k: v[i] for k, v in x.items()}
    return x[i]


def _sb3_space(space: spaces.Space) -> spaces.Space:
    """The single observation space as SB3 can preprocess it.

    SB3 treats a ``Discrete`` entry as an integer to one-hot encode and expects its observation
    batched as ``[B]``; envgym already returns that, so spaces pass through unchanged. The
    function exists so that a family with a space SB3 can't handle fails here, clearly.
    """
    supported = (spaces.Box, spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete)
    if isinstance(space, spaces.Dict):
        for name, sub in space.spaces.items():
            if not isinstance(sub, supported):
                raise TypeError(
                    f"observation entry {name!r} has space {sub}, which Stable-Baselines3 "
                    "cannot preprocess"
                )
        return space
    if not isinstance(space, supported):
        raise TypeError(f"observation space {space} is not supported by Stable-Baselines3")
    return space


class SB3VecEnv:
    """An envgym vector env (``gym.make_vec(..., vectorization_mode="vector_entry_point")``) as
    a Stable-Baselines3 ``VecEnv``.

    Observations, rewards and dones come back as NumPy arrays on the host; actions may be
    NumPy arrays (SB3's convention) and are handed to the env as they are. Per world, ``infos``
    holds ``next_obs_target``, ``success``, ``action_error`` and ``reward_terms`` (NumPy /
    Python scalars), and on the step that ends an episode also ``terminal_observation`` (from
    envgym's ``final_obs``), ``TimeLimit.truncated`` (truncated and not terminated, the key SB3
    reads to bootstrap the value of a cut-off episode) and ``episode`` (``r``, ``l``, as SB3's
    ``Monitor`` writes it, so ``ep_rew_mean`` and ``ep_len_mean`` are logged without a
    ``VecMonitor``).

    The instance is a ``stable_baselines3.common.vec_env.VecEnv`` (and an ``SB3VecEnv``): the
    subclass is built on first use, so that importing ``envgym.wrappers`` needs no SB3.

    Args:
        env: the envgym vector env (any wrapper chain whose ``unwrapped`` is a
            ``TorchVectorEnv`` or follows its contract).
        seed: seed of the first ``reset()``: world ``i`` gets ``seed + i`` (envgym's
            convention). ``VecEnv.seed(s)`` before a reset does the same.

    Raises:
        ImportError: Stable-Baselines3 is not installed (names the install command).

    Example:
        >>> envs = gym.make_vec("envgym/Phone-v0", num_envs=64,
        ...     vectorization_mode="vector_entry_point", scenario="isp_bill_discount")
        >>> model = PPO("MultiInputPolicy", SB3VecEnv(envs, seed=0)).learn(10_000)
    """

    env: Any

    def __new__(cls, env: Any, *, seed: int | None = None) -> Any:
        if cls is SB3VecEnv:
            cls = _sb3_class(_import_vec_env_base())
        return object.__new__(cls)


_CLASS_CACHE: dict[type, type] = {}


class _SB3Methods:
    """The methods of :class:`SB3VecEnv`'s SB3 subclass (``_sb3_class`` puts them in front of
    SB3's ``VecEnv``, imported on first use)."""

    _vec_env_base: type
    """SB3's ``VecEnv`` (set on the built subclass)."""

    def __init__(self, env: Any, *, seed: int | None = None) -> None:
        self.env = env
        obs_space = _sb3_space(env.single_observation_space)
        self._vec_env_base.__init__(self, env.num_envs, obs_space, env.single_action_space)
        self._actions: Any = None
        self._first_seed = seed
        self._is_dict = isinstance(obs_space, spaces.Dict)
        self._mask: Any = None

    # ---------------------------------------------------------------- action masks
    def action_masks(self) -> np.ndarray:
        """bool ``[B, A]``: the env's ``info["action_mask"]`` for the current observations
        (sb3-contrib's ``MaskablePPO`` reads it through ``env_method("action_masks")``)."""
        if self._mask is None:
            raise AttributeError(
                "this env publishes no info['action_mask'] (or reset() was not called)"
            )
        return _to_numpy(self._mask).astype(bool)

    # ---------------------------------------------------------------- VecEnv API
    def reset(self) -> Any:
        seed = self._first_seed
        # SB3 stores the seed of VecEnv.seed(s) as one seed per world: s, s+1, ...
        seeds = getattr(self, "_seeds", None) or []
        if seeds and seeds[0] is not None:
            seed = int(seeds[0])
        obs, info = self.env.reset(seed=seed)
        self._mask = info.get(keys.ACTION_MASK)
        self._first_seed = None
        if hasattr(self, "_reset_seeds"):
            self._reset_seeds()
        if hasattr(self, "_reset_options"):
            self._reset_options()
        return _to_numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        obs, rew, term, trunc, info = self.env.step(self._actions)
        self._mask = info.get(keys.ACTION_MASK)
        self._actions = None
        obs_np = _to_numpy(obs)
        term_np = _to_numpy(term).astype(bool)
        trunc_np = _to_numpy(trunc).astype(bool)
        dones = term_np | trunc_np
        infos = self._infos(info, term_np, trunc_np, dones)
        return obs_np, _to_numpy(rew).astype(np.float32), dones, infos

    def _infos(
        self,
        info: dict[str, Any],
        term: np.ndarray,
        trunc: np.ndarray,
        dones: np.ndarray,
    ) -> list[dict[str, Any]]:
        n = self.num_envs
        target = _to_numpy(info[keys.NEXT_OBS_TARGET])
        success = _to_numpy(info[keys.SUCCESS]).astype(bool)
        error = _to_numpy(info[keys.ACTION_ERROR]) if keys.ACTION_ERROR in info else None
        terms = {k: _to_numpy(v) for k, v in info.get(keys.REWARD_TERMS, {}).items()}
        infos: list[dict[str, Any]] = []
        for i in range(n):
            d: dict[str, Any] = {
                keys.NEXT_OBS_TARGET: target[i],
                keys.SUCCESS: bool(success[i]),
                keys.REWARD_TERMS: {k: float(v[i]) for k, v in terms.items()},
            }
            if error is not None:
                e = error[i]
                d[keys.ACTION_ERROR] = e.item() if isinstance(e, np.generic) else e
            infos.append(d)
        if dones.any():
            final = _to_numpy(info[keys.FINAL_OBS])
            ep = info.get(keys.EPISODE)
            ep_r = _to_numpy(ep["r"]) if ep is not None else None
            ep_l = _to_numpy(ep["l"]) if ep is not None else None
            for i in np.flatnonzero(dones):
                d = infos[i]
                d["terminal_observation"] = _row(final, int(i))
                d["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
                if ep_r is not None and ep_l is not None:
                    d["episode"] = {"r": float(ep_r[i]), "l": int(ep_l[i])}
        return infos

    def close(self) -> None:
        self.env.close()

    # ---------------------------------------------------------------- attributes
    def _indices(self, indices: int | Iterable[int] | None) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The vector env's attribute, once per requested world (all worlds share one
        engine, so every entry is the same object)."""
        if attr_name == "action_masks":
            # The masks are per world: each entry is that world's mask function.
            return [(lambda i=i: self.action_masks()[i]) for i in self._indices(indices)]
        value = getattr(self.env, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute on the vector env (shared by all worlds)."""
        self._indices(indices)
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the vector env once and report its result per world
        (``action_masks``: each world's row of the current mask)."""
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in self._indices(indices)]
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """Whether the vector env's wrapper chain contains ``wrapper_class``."""
        env, found = self.env, False
        while env is not None:
            if isinstance(env, wrapper_class):
                found = True
                break
            env = getattr(env, "env", None)
        return [found for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    @property
    def unwrapped_env(self) -> Any:
        """The wrapped envgym vector env (its ``oracle_action``, ``decode``, ...)."""
        return self.env.unwrapped


def _sb3_class(base: type) -> type:
    """The ``VecEnv`` subclass over SB3's ``base``, built once per base."""
    if base not in _CLASS_CACHE:

        class _SB3VecEnv(_SB3Methods, SB3VecEnv, base):  # type: ignore[misc, valid-type]
            """SB3 ``VecEnv`` over an envgym vector env (see :class:`SB3VecEnv`)."""

            _vec_env_base = base

        _CLASS_CACHE[base] = _SB3VecEnv
    return _CLASS_CACHE[base]
