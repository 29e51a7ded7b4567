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


def browser_id(task: str) -> str:
    """``envgym/Browser-<task>-v0``."""
    return f"envgym/Browser-{task}-v0"


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
