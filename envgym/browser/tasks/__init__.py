"""Browser tasks: MiniWoB-style skill tasks and the company portal tasks."""

from __future__ import annotations

from collections.abc import Callable

from envgym.browser.tasks.base import Task

__all__ = ["Task", "task_factory", "task_names"]


def task_names() -> list[str]:
    """Every task's id part (``envgym/Browser-<name>-v0``)."""
    from envgym.browser.ids import PORTAL_SCENARIOS, SKILL_NAMES, portal_task_name

    return list(SKILL_NAMES) + [portal_task_name(s) for s in PORTAL_SCENARIOS]


def task_factory(
    name: str | Callable[[int, int], Task], **kwargs: object
) -> Callable[[int, int], Task]:
    """``(seed, difficulty) -> Task`` for the task called ``name`` (a skill task name, or
    ``Portal`` with ``scenario=`` a phone scenario), or ``name`` itself when it is already
    such a callable (e.g. your own :class:`Task` subclass)."""
    from envgym.browser.tasks.skills import SKILL_TASKS

    if callable(name):
        if kwargs:
            raise ValueError(f"a task class/factory takes no options, got {sorted(kwargs)}")
        return name
    if name in SKILL_TASKS:
        if kwargs:
            raise ValueError(f"task {name!r} takes no options, got {sorted(kwargs)}")
        return SKILL_TASKS[name]
    if name == "Portal":
        from envgym.browser.tasks.portal import portal_factory

        return portal_factory(**kwargs)  # type: ignore[arg-type]
    raise ValueError(
        f"unknown browser task {name!r}; known: {sorted(SKILL_TASKS)} and 'Portal' "
        "(with scenario=<phone scenario>)"
    )
