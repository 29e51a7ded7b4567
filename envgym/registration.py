"""Environment ids -> entry points. Entry points are strings, so a backend loads only when one
of its envs is made."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym


@dataclass(frozen=True)
class EnvEntry:
    """One registered id."""

    id: str
    family: str
    entry_point: str
    vector_entry_point: str | None
    kwargs: dict
    description: str


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def phone_scenario_id(name: str) -> str:
    """The per-scenario id of a shipped phone scenario, e.g. ``envgym/Phone-IspBillDiscount-v0``."""
    return f"envgym/Phone-{_camel(name)}-v0"


def entries() -> list[EnvEntry]:
    """Every id envgym registers."""
    from envgym.phone.scenarios import shipped_names

    out = [
        EnvEntry(
            "envgym/Phone-v0",
            "phone",
            "envgym.phone:make_single",
            "envgym.phone:make_vector",
            {},
            "phone customer service; scenario= name, path, list, 'all' or 'generated'",
        )
    ]
    for name in shipped_names():
        out.append(
            EnvEntry(
                phone_scenario_id(name),
                "phone",
                "envgym.phone:make_single",
                "envgym.phone:make_vector",
                {"scenario": name},
                f"phone scenario {name}",
            )
        )
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
