"""Environment ids -> entry points. Entry points are strings, so a backend loads only when one
of its envs is made.

Each family lists its own ids in ``envgym/<family>/ids.py`` (a light module: it must not import
the family's backend) as a function ``entries() -> list[EnvEntry]``; :class:`EnvEntry` is a core
type (:mod:`envgym.core.family`), so a family never imports this module.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from envgym.core.family import EnvEntry, camel

FAMILIES = ("phone", "robot", "browser")

__all__ = ["EnvEntry", "VectorEntry", "camel", "entries", "register_envs"]

DISTRIBUTED_ENTRY = "envgym.distributed:RayVectorEnv"
"""The vector env ``distributed=`` builds, named as an entry point (loaded only when used) like
every family's: registration sits below :mod:`envgym.distributed` and never imports it."""


def entries() -> list[EnvEntry]:
    """Every id envgym registers, family by family."""
    out: list[EnvEntry] = []
    for family in FAMILIES:
        name = f"envgym.{family}.ids"
        if importlib.util.find_spec(f"envgym.{family}") is None:
            continue
        if importlib.util.find_spec(name) is None:
            continue
        out.extend(importlib.import_module(name).entries())
    return out


@dataclass(frozen=True)
class VectorEntry:
    """The ``vector_entry_point`` Gymnasium calls for an envgym id.

    ``gym.make_vec(id, num_envs, vectorization_mode="vector_entry_point", **kwargs)`` builds
    the family's native vector env (``target``, loaded only now); with ``distributed=`` it
    builds :class:`envgym.distributed.RayVectorEnv` instead, whose workers each build the native
    env. ``distributed`` is the number of workers or a dict of ``RayVectorEnv`` options
    (``{"num_workers": 4, "step_timeout_s": 10}``).
    """

    env_id: str
    target: str

    def __call__(
        self, num_envs: int = 1, distributed: int | dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        if distributed is not None:
            opts = {"num_workers": distributed} if isinstance(distributed, int) else distributed
            return load_env_creator(DISTRIBUTED_ENTRY)(self.env_id, num_envs, **opts, **kwargs)
        return load_env_creator(self.target)(num_envs=num_envs, **kwargs)


def register_envs() -> None:
    """Register every envgym id with Gymnasium (idempotent)."""
    for e in entries():
        if e.id in gym.registry:
            continue
        gym.register(
            id=e.id,
            entry_point=e.entry_point,
            vector_entry_point=(
                None if e.vector_entry_point is None else VectorEntry(e.id, e.vector_entry_point)
            ),
            kwargs=dict(e.kwargs),
            disable_env_checker=False,
        )
