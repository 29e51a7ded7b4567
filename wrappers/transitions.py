"""Record world-model training data straight from a batched env, on its device."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium.vector import VectorWrapper

from envgym.core import keys


class TransitionRecorder(VectorWrapper):
    """Keeps the last ``capacity`` steps of ``(obs, action, reward, done, next_obs_target)``
    in preallocated ring buffers on the env's device: the inputs and labels of a world model
    trained alongside the policy.

    ``obs`` is the observation the action was taken in, so ``(obs[t], action[t]) ->
    target[t]`` is one supervised example, including at episode ends (the target comes from
    the true last observation, not from the reset one the env returns).

    Example:
        >>> envs = TransitionRecorder(gym.make_vec("envgym/Phone-v0", num_envs=64,
        ...     vectorization_mode="vector_entry_point"), capacity=128)
        >>> envs.reset(seed=0)
        >>> for _ in range(32):
        ...     envs.step(envs.unwrapped.oracle_action())
        >>> batch = envs.sample(256)  # dict of tensors, 256 random (world, step) pairs
    """

    def __init__(self, env: Any, capacity: int = 256) -> None:
        super().__init__(env)
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.size = 0
        self._pos = 0
        self._obs: Any = None
        self._buf: dict[str, Any] | None = None

    def _alloc(self, obs: Any, action: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        def ring(x: torch.Tensor) -> torch.Tensor:
            return torch.zeros((self.capacity, *x.shape), dtype=x.dtype, device=x.device)

        obs_buf = {k: ring(v) for k, v in obs.items()} if isinstance(obs, dict) else ring(obs)
        return {
            "obs": obs_buf,
            "action": ring(action),
            "reward": ring(torch.zeros(self.num_envs, device=target.device)),
            "done": ring(torch.zeros(self.num_envs, dtype=torch.bool, device=target.device)),
            "target": ring(target),
        }

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        obs, rew, term, trunc, info = self.env.step(actions)
        target = info[keys.NEXT_OBS_TARGET]
        act = torch.as_tensor(actions, device=target.device)
        if self._buf is None:
            self._buf = self._alloc(self._obs, act, target)
        i = self._pos
        if isinstance(self._obs, dict):
            for k, v in self._obs.items():
                self._buf["obs"][k][i] = v
        else:
            self._buf["obs"][i] = self._obs
        self._buf["action"][i] = act
        self._buf["reward"][i] = rew
        self._buf["done"][i] = term | trunc
        self._buf["target"][i] = target
        self._pos = (self._pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self._obs = obs
        return obs, rew, term, trunc, info

    def sample(self, n: int, generator: torch.Generator | None = None) -> dict[str, Any]:
        """``n`` uniformly drawn (step, world) examples as a dict of tensors on the device."""
        if self._buf is None or self.size == 0:
            raise RuntimeError("no transitions recorded yet")
        t = torch.randint(0, self.size, (n,), generator=generator)
        w = torch.randint(0, self.num_envs, (n,), generator=generator)
        dev = self._buf["target"].device
        t, w = t.to(dev), w.to(dev)

        def pick(x: torch.Tensor) -> torch.Tensor:
            return x[t, w]

        obs = self._buf["obs"]
        return {
            "obs": {k: pick(v) for k, v in obs.items()} if isinstance(obs, dict) else pick(obs),
            "action": pick(self._buf["action"]),
            "reward": pick(self._buf["reward"]),
            "done": pick(self._buf["done"]),
            "target": pick(self._buf["target"]),
        }
