"""The phone family's registered ids (light: imports no engine code)."""

from __future__ import annotations

from envgym.core.family import EnvEntry, camel


def phone_scenario_id(name: str) -> str:
    """The per-scenario id of a shipped phone scenario, e.g. ``envgym/Phone-IspBillDiscount-v0``."""
    return f"envgym/Phone-{camel(name)}-v0"


def entries() -> list[EnvEntry]:
    """``envgym/Phone-v0`` plus one id per shipped scenario."""
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
