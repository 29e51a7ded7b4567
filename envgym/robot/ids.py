"""The robot family's registered ids (light: imports no MuJoCo)."""

from __future__ import annotations

from envgym.core.family import EnvEntry

TASKS: list[tuple[str, str, str]] = [
    ("envgym/Robot-Reach-v0", "reach", "move the grip site to a goal point"),
    ("envgym/Robot-Push-v0", "push", "push a cube onto a goal on the table"),
    ("envgym/Robot-PickPlace-v0", "pick_place", "carry a cube to a goal in the air"),
    ("envgym/Robot-Stack-v0", "stack", "stack a cube on another and let go"),
]
"""(id, shipped scene, description) of each robot task."""


def entries() -> list[EnvEntry]:
    """One id per shipped task; ``scene=`` may name another scene or a YAML path."""
    return [
        EnvEntry(
            env_id,
            "robot",
            "envgym.robot:make_single",
            "envgym.robot:make_vector",
            {"scene": scene},
            f"robot arm: {desc} (backend='cpu' or 'warp')",
        )
        for env_id, scene, desc in TASKS
    ]
