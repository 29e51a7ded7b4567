"""The browser family's registered ids (light: imports neither Playwright nor the engine)."""

from __future__ import annotations

from envgym.core.family import EnvEntry, camel

SKILL_NAMES = (
    "ClickButton",
    "EnterText",
    "SelectList",
    "Checkboxes",
    "NavigateTabs",
    "FillForm",
    "DatePicker",
    "DragDrop",
)
"""The MiniWoB-style skill tasks."""

PORTAL_SCENARIOS = (
    "isp_bill_discount",
    "plan_change_fee",
    "address_change",
    "cancel_with_retention",
)
"""Phone scenarios whose company portal is registered as a task of its own."""


def portal_task_name(scenario: str) -> str:
    """``isp_bill_discount`` -> ``PortalIspBillDiscount``."""
    return f"Portal{camel(scenario)}"


PORTAL_VERSION = 1
"""The portal tasks' id version. v1: the portal applies the phone family's policy module
(``envgym/phone/policy.py``): a verification lockout ends the sign-in session (the next one starts
from zero, as a new call does on the phone) instead of locking the account for good, and
eligibility is judged on the user's true value, so a false claim is a mismatch."""


def browser_id(task: str) -> str:
    """``envgym/Browser-<task>-v0`` for a skill task, ``-v<PORTAL_VERSION>`` for a portal task."""
    version = PORTAL_VERSION if task.startswith("Portal") else 0
    return f"envgym/Browser-{task}-v{version}"


def entries() -> list[EnvEntry]:
    """One id per skill task and per portal scenario."""
    out = [
        EnvEntry(
            browser_id(name),
            "browser",
            "envgym.browser:make_single",
            "envgym.browser:make_vector",
            {"task": name},
            f"browser skill task {name}",
        )
        for name in SKILL_NAMES
    ]
    for sc in PORTAL_SCENARIOS:
        out.append(
            EnvEntry(
                browser_id(portal_task_name(sc)),
                "browser",
                "envgym.browser:make_single",
                "envgym.browser:make_vector",
                {"task": "Portal", "scenario": sc},
                f"company self-service portal, phone scenario {sc}",
            )
        )
    return out
