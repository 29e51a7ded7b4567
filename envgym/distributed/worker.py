"""The Ray actor that hosts one block of worlds: a native envgym vector env of the id.

The class is plain Python; :class:`envgym.distributed.RayVectorEnv` turns it into a Ray actor
with ``ray.remote(...)`` and its restart options, so this module imports Ray only for the
node address.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envgym.core import keys
from envgym.distributed.wire import from_wire, take_rows, to_wire

RESTARTED = "__envgym_worker_restarted__"
"""What ``step`` / ``oracle_action`` return from a worker Ray restarted on its own (after its
process died between two steps): its fresh env has not been reset, so its worlds are lost."""


class EnvWorker:
    """``num_envs`` worlds of ``env_id`` in this process, stepped by the learner through Ray.

    Args:
        env_id: a registered envgym id.
        num_envs: worlds in this worker.
        env_kwargs: passed to ``gym.make_vec(env_id, ..., vectorization_mode="vector_entry_point")``
            (``device`` is the worker's device).
        num_threads: torch intra-op threads in this process.
    """

    def __init__(
        self, env_id: str, num_envs: int, env_kwargs: dict[str, Any], num_threads: int = 1
    ) -> None:
        torch.set_num_threads(max(1, int(num_threads)))
        import envgym  # noqa: F401  (registers the ids in this process)

        self.env = gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs
        )
        self.base = self.env.unwrapped
        self._hang_s = 0.0
        self._was_reset = False

    # ------------------------------------------------------------------ description
    def describe(self) -> dict[str, Any]:
        """The spaces and declared capabilities of the hosted env (for the learner's face)."""
        b = self.base
        return {
            "single_observation_space": b.single_observation_space,
            "single_action_space": b.single_action_space,
            "single_target_space": getattr(b, "single_target_space", None),
            "supports_state_snapshots": getattr(b, "supports_state_snapshots", True),
            "metadata": dict(b.metadata),
            # The family's action rule (a picklable function): the learner checks a whole
            # batch with it before any worker steps (docs/distributed.md, "Bad input").
            "action_rule": b.action_rule() if hasattr(b, "action_rule") else None,
            "attributes": {
                name: getattr(b, name)
                for name in (
                    "action_names",
                    "action_error_names",
                    "phase_names",
                    "reward_term_names",
                    "obs_layout",
                    "target_size",
                    "task_name",
                    "max_tokens",
                )
                if hasattr(b, name)
            },
        }

    def pid(self) -> int:
        """This worker's process id (to inject faults, e.g. ``os.kill(pid, SIGKILL)``)."""
        return os.getpid()

    def node_ip(self) -> str:
        """The address of the node this worker was placed on."""
        from ray.util import get_node_ip_address

        return get_node_ip_address()

    def inject_hang(self, seconds: float) -> None:
        """Fault injection: the next ``step`` sleeps ``seconds`` before stepping."""
        self._hang_s = float(seconds)

    # ------------------------------------------------------------------ stepping
    def reset(self, seed: Any, options: dict[str, Any] | None) -> tuple[Any, Any]:
        """``env.reset`` in wire form."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._was_reset = True
        return to_wire(obs), to_wire(info)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, Any] | str:
        """One batched step in wire form: ``((obs, reward, terminated, truncated, info),
        done_rows, final_obs_rows)``.

        ``final_obs`` travels only for the worlds that ended (``done_rows``): the other rows of
        ``final_obs`` equal ``obs`` (the auto-reset touches only ended worlds), so the learner
        rebuilds the full batch without moving it twice. ``actions`` are this worker's rows in
        wire form (a record, e.g. ``PhoneActions``, is rebuilt here with tensors on the env's
        device).
        """
        if not self._was_reset:
            return RESTARTED
        if self._hang_s > 0:
            seconds, self._hang_s = self._hang_s, 0.0
            time.sleep(seconds)
        obs, reward, terminated, truncated, info = self.env.step(
            from_wire(actions, self.base.device)
        )
        info = dict(info)
        final = info.pop(keys.FINAL_OBS, None)
        info.pop("_" + keys.FINAL_OBS, None)
        done = np.asarray(torch.as_tensor(terminated | truncated).cpu().numpy(), dtype=bool)
        rows = np.flatnonzero(done)
        final_rows = take_rows(final, rows) if final is not None else None
        return to_wire((obs, reward, terminated, truncated, info)), rows, to_wire(final_rows)

    def restart(self, seeds: list[int], last_obs: Any) -> tuple[Any, Any, Any]:
        """After a restart: new episodes in every world (``seeds``), and the target encoding
        of the observations the learner last saw (the lost step's ``next_obs_target``)."""
        obs, info = self.reset(seeds, None)
        target = self.base.target_from_obs(from_wire(last_obs, self.base.device))
        return obs, info, to_wire(target)

    # ------------------------------------------------------------------ extras
    def oracle_action(self) -> Any:
        """The hosted env's ``oracle_action()`` in wire form."""
        if not self._was_reset:
            return RESTARTED
        return to_wire(self.base.oracle_action())

    def get_state(self, worlds: list[int] | None) -> Any:
        """``get_state`` of the hosted env (local world indices) in wire form."""
        return to_wire(self.base.get_state(worlds))

    def set_state(self, state: Any, worlds: list[int] | None) -> None:
        """``set_state`` of the hosted env (local world indices) from wire form."""
        self.base.set_state(from_wire(state, self.base.device), worlds)

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call any method of the hosted env (positional arguments in wire form); the result
        comes back in wire form."""
        args = tuple(from_wire(a, self.base.device) for a in args)
        return to_wire(getattr(self.base, name)(*args, **kwargs))

    def close(self) -> None:
        """Close the hosted env (pages, browsers)."""
        self.env.close()
