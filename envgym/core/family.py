"""What a family declares to the top level: its registered ids and its demo tasks.

A family (``envgym.phone``, ``envgym.robot``, ``envgym.browser``) lists its ids in
``envgym/<family>/ids.py`` as ``entries() -> list[EnvEntry]`` and its ``envgym demo`` rows in
``envgym/<family>/__init__.py`` as ``demo_tasks() -> list[DemoTask]``. The top level
(:mod:`envgym.registration`, :mod:`envgym.demo`) collects them; the types live here, in core, so
that a family never imports the top level (docs/architecture.md, "Layers").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class DemoTask:
    """One row group of the demo: an env id and the keyword arguments that pick a scenario."""

    family: str
    label: str
    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_envs: int | None = None
    """Cap on the worlds for this task (e.g. physics-heavy robot scenes on a CPU)."""
    max_steps: int | None = None
    """Cap on the steps per policy for this task."""

    def sizes(self, num_envs: int, steps: int) -> tuple[int, int]:
        """(worlds, steps) for this task under the demo's settings and the task's caps."""
        n = num_envs if self.max_envs is None else min(num_envs, self.max_envs)
        t = steps if self.max_steps is None else min(steps, self.max_steps)
        return n, t
