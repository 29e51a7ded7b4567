"""Environment ids -> entry points. Entry points are strings, so a backend loads only when one
of its envs is made.

Each family lists its own ids in ``envgym/<family>/ids.py`` (a light module: it must not import
the family's backend) as a function ``entries() -> list[EnvEntry]``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

import gymnasium as gym

FAMILIES = ("phone", "robot", "browser")


@dataclass(frozen=True)
class EnvEntry:
    """One registered id."""

    id: str
    family: str
    entry_point: str
    vector_entry_point: str | None
    kwargs: dict
    description: str


def camel(name: str) -> str:
    """``snake_case`` -> ``CamelCase`` (scenario names -> id parts)."""
    return "".join(part.capitalize() for part in name.split("_"))


def phone_scenario_id(name: str) -> str:
    """The per-scenario id of a shipped phone scenario, e.g. ``envgym/Phone-IspBillDiscount-v0``."""
    return f"envgym/Phone-{camel(name)}-v0"


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


def register_envs() -> None:
    """Register every envgym id with Gymnasium (idempotent)."""
    for e in entries():
        if e.id in gym.registry:
            continue
        gym.register(
            id=e.id,
            entry_point=e.entry_point,
            vector_entry_point=e.vector_entry_point,
            kwargs=dict(e.kwargs),
            disable_env_checker=False,
        )
