"""A TorchRL env over envgym's native batched engine (``envgym.wrappers.TorchRLEnv``).

TorchRL's conventions differ from Gymnasium's vector API in one way that matters here: a
world that ended stays ended (its ``("next", "done")`` is set and ``("next", obs)`` is its
true last observation) until TorchRL resets it through ``_reset`` with a ``"_reset"`` mask.
envgym's engines auto-reset on the ending step (SAME_STEP). The adapter bridges the two without
stepping or resetting any world twice: on an ending step it reports ``info["final_obs"]`` as
the next observation and keeps the engine's already-reset first observation, which the
following ``_reset`` of that world hands out.

Each step's tensordict also holds the transition's ``next_obs_target``, ``success``,
``action_error`` and the named ``reward_terms``, under ``"next"``: the world-model targets
ride along with the transitions.

TorchRL is optional: this module imports it at import time, and ``envgym.wrappers`` imports
this module only when ``TorchRLEnv`` is first used.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase
from torchrl.envs.gym_like import default_info_dict_reader
from torchrl.envs.libs.gym import _gym_to_torchrl_spec_transform

from envgym.core import keys


def _spec(space: spaces.Space, n: int, device: torch.device) -> Any:
    """TorchRL spec of a single Gymnasium space, batched over ``n`` worlds."""
    single = _gym_to_torchrl_spec_transform(space, device=device, categorical_action_encoding=True)
    return single.expand(n, *single.shape)


def target_info_reader(target_space: spaces.Box) -> Any:
    """An info reader that puts ``next_obs_target`` into a ``torchrl.envs.GymEnv``'s
    tensordicts: ``GymEnv(id).auto_register_info_dict(info_dict_reader=...)``, with
    ``target_space = env.unwrapped.single_target_space`` of the id.

    TorchRL's own reader without a spec guesses the spec from a rollout, and can't take the
    dict ``reward_terms`` or Python-bool entries of the single envs' infos.
    """
    spec = _gym_to_torchrl_spec_transform(target_space, device="cpu")
    return default_info_dict_reader([keys.NEXT_OBS_TARGET], spec=[spec])


class TorchRLEnv(EnvBase):
    """A TorchRL ``EnvBase`` with batch size ``[num_envs]`` over an envgym native vector env.

    Args:
        env: ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` of a
            family with tensor observations (phone, robot). The browser family's observations
            are strings, which TorchRL's tensor specs do not describe.

    Example:
        >>> envs = gym.make_vec("envgym/Robot-Reach-v0", num_envs=8,
        ...     vectorization_mode="vector_entry_point")
        >>> env = TorchRLEnv(envs)
        >>> td = env.rollout(16)  # td["next", "next_obs_target"]: [8, 16, 17]
    """

    def __init__(self, env: Any) -> None:
        base = env.unwrapped
        n = int(base.num_envs)
        super().__init__(device=base.device, batch_size=torch.Size([n]))
        self.env = env
        self._dict_obs = isinstance(env.single_observation_space, spaces.Dict)
        obs_spec = _spec(env.single_observation_space, n, self.device)
        names = tuple(getattr(base, "reward_term_names", ()))
        self._term_names = names
        extra = {
            keys.NEXT_OBS_TARGET: _spec(base.single_target_space, n, self.device),
            keys.SUCCESS: Categorical(2, shape=(n,), dtype=torch.bool, device=self.device),
            keys.ACTION_ERROR: Unbounded(shape=(n,), dtype=torch.int64, device=self.device),
            keys.REWARD_TERMS: Composite(
                {k: Unbounded(shape=(n,), device=self.device) for k in names},
                shape=(n,),
                device=self.device,
            ),
        }
        if self._dict_obs:
            self.observation_spec = Composite(
                {**dict(obs_spec.items()), **extra}, shape=(n,), device=self.device
            )
        else:
            self.observation_spec = Composite(
                {"observation": obs_spec, **extra}, shape=(n,), device=self.device
            )
        self.action_spec = _spec(env.single_action_space, n, self.device)
        self.reward_spec = Unbounded(shape=(n, 1), device=self.device)
        flag = Categorical(2, shape=(n, 1), dtype=torch.bool, device=self.device)
        self.done_spec = Composite(
            done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(), shape=(n,)
        )
        self._seed: int | None = None
        self._pending: Any = None  # the engine's first obs of worlds that auto-reset
        self._pending_mask: torch.Tensor | None = None

    # ------------------------------------------------------------------ helpers
    def _obs_td(self, obs: Any) -> dict[str, torch.Tensor]:
        if self._dict_obs:
            return {k: v.to(self.device) for k, v in obs.items()}
        return {"observation": obs.to(self.device)}

    def _blank_extra(self) -> dict[str, Any]:
        z = self.observation_spec
        return {k: z[k].zero() for k in (keys.NEXT_OBS_TARGET, keys.SUCCESS, keys.ACTION_ERROR)} | {
            keys.REWARD_TERMS: z[keys.REWARD_TERMS].zero()
        }

    # ------------------------------------------------------------------ EnvBase API
    def _reset(self, tensordict: TensorDictBase | None, **kwargs: Any) -> TensorDictBase:
        n = self.batch_size[0]
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():  # noqa: SIM118 (TensorDict)
            mask = tensordict.get("_reset").reshape(n).to(self.device)
        if mask is not None and self._pending is not None:
            # Worlds TorchRL resets after they ended: the engine already started their next
            # episode on the ending step; hand out that first observation.
            obs = self._pending
        else:
            obs, _ = self.env.reset(seed=self._seed)
            self._seed = None
        self._pending = None
        td = {**self._obs_td(obs), **self._blank_extra()}
        return TensorDict(td, batch_size=self.batch_size, device=self.device)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get("action")
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = terminated | truncated
        next_obs = obs
        if bool(done.any()):
            final = info[keys.FINAL_OBS]
            if self._dict_obs:
                next_obs = {k: torch.where(_col(done, v), final[k], v) for k, v in obs.items()}
            else:
                next_obs = torch.where(_col(done, obs), final, obs)
            self._pending = obs
        n = self.batch_size[0]
        terms = info.get(keys.REWARD_TERMS, {})
        td = {
            **self._obs_td(next_obs),
            keys.NEXT_OBS_TARGET: info[keys.NEXT_OBS_TARGET],
            keys.SUCCESS: info[keys.SUCCESS].to(torch.bool),
            keys.ACTION_ERROR: torch.as_tensor(info[keys.ACTION_ERROR]).to(torch.int64),
            keys.REWARD_TERMS: TensorDict(
                {k: terms[k].to(torch.float32) for k in self._term_names}, batch_size=[n]
            ),
            "reward": reward.to(torch.float32).reshape(n, 1),
            "done": done.reshape(n, 1),
            "terminated": terminated.reshape(n, 1),
            "truncated": truncated.reshape(n, 1),
        }
        return TensorDict(td, batch_size=self.batch_size, device=self.device)

    def _set_seed(self, seed: int | None) -> None:
        """The next full reset seeds world ``i`` with ``seed + i`` (envgym's convention)."""
        self._seed = None if seed is None else int(seed)

    def close(self, *, raise_if_closed: bool = True) -> None:
        self.env.close()
        super().close(raise_if_closed=raise_if_closed)


def _col(done: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``done`` shaped to broadcast over ``like``'s trailing dimensions."""
    return done.reshape(done.shape[0], *([1] * (like.dim() - 1)))
