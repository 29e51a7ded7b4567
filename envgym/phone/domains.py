"""The phone generator's domain data: typed records loaded once from ``generator_data/*.yaml``.

``domains.yaml`` holds one entry per kind of company (departments, tasks with their trap, offer
and eligibility rule, distractor services, rules, upsells); ``common.yaml`` what every domain
shares (role rules, verifiable secrets, request hints, greetings, name pools). Both ship as
package data. :func:`domain_data` parses them on first use and caches the result; the records
are frozen and their sequences tuples, so :mod:`envgym.phone.generator` draws from exactly the
values the files hold (tests/test_generator_golden.py digests the scenarios it makes).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envgym.dsl.loading import read_yaml

DATA_DIR = Path(__file__).with_name("generator_data")
"""Where the data files live (inside the package, so an installed wheel has them)."""


@dataclass(frozen=True)
class Dept:
    """A department template: id, spoken label and the IVR phrase that leads to it."""

    id: str
    label: str
    menu: str


@dataclass(frozen=True)
class Rule:
    """An eligibility rule; the user's true value is drawn from ``allowed``."""

    fact: str
    label: str
    allowed: tuple[str, ...]
    refusal: str


@dataclass(frozen=True)
class Trap:
    """A tempting service that breaks the goal (``effects`` may name the task's field)."""

    id: str
    label: str
    effects: tuple[tuple[str, str], ...]
    initials: tuple[tuple[str, str], ...]
    hint: str


@dataclass(frozen=True)
class OfferSpec:
    """An offer to decline; ``field`` None means it sets the task's own field."""

    text: str
    field: str | None
    value: str
    initial: str = "none"


@dataclass(frozen=True)
class Task:
    """The service the user needs, with its goal record and IVR path (coarse to specific)."""

    id: str
    title: str
    label: str
    dept: str
    field: str
    initial: str
    target: str
    request: str
    menu: tuple[str, str, str]
    done: str
    trap: Trap | None = None
    offer: OfferSpec | None = None
    rule: Rule | None = None


@dataclass(frozen=True)
class Extra:
    """A distractor service with its own record field."""

    id: str
    label: str
    dept: str
    field: str
    initial: str
    value: str
    fee: int = 0


@dataclass(frozen=True)
class Domain:
    """One kind of company."""

    kind: str
    suffixes: tuple[str, ...]
    general: Dept
    depts: tuple[Dept, ...]
    id_fact: tuple[str, str, str]
    tasks: tuple[Task, ...]
    extras: tuple[Extra, ...]
    rules: tuple[Rule, ...]
    upsells: tuple[OfferSpec, ...]


@dataclass(frozen=True)
class DomainData:
    """Everything the generator draws from (the contents of the two data files)."""

    domains: tuple[Domain, ...]
    role_rules: tuple[Rule, ...]
    secrets: tuple[tuple[str, str, str], ...]
    """(id, label, value format) of the facts reps can verify beyond a domain's id fact."""
    offer_hints: tuple[str, ...]
    greetings: tuple[tuple[str, ...], ...]
    prefixes: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    rep_names: tuple[str, ...]
    merchants: tuple[str, ...]
    streets: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]
    months: tuple[str, ...]
    clubs: tuple[str, ...]
    pets: tuple[str, ...]
    areas: tuple[str, ...]


def _tuples(x: Any) -> Any:
    """Lists (at any depth) -> tuples."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def _rule(d: dict[str, Any]) -> Rule:
    return Rule(d["fact"], d["label"], _tuples(d["allowed"]), d["refusal"])


def _task(d: dict[str, Any]) -> Task:
    d = dict(d)
    trap, offer, rule = d.pop("trap", None), d.pop("offer", None), d.pop("rule", None)
    return Task(
        **{k: _tuples(v) for k, v in d.items()},
        trap=None if trap is None else Trap(**{k: _tuples(v) for k, v in trap.items()}),
        offer=None if offer is None else OfferSpec(**offer),
        rule=None if rule is None else _rule(rule),
    )


def _domain(d: dict[str, Any]) -> Domain:
    return Domain(
        kind=d["kind"],
        suffixes=_tuples(d["suffixes"]),
        general=Dept(**d["general"]),
        depts=tuple(Dept(**x) for x in d["depts"]),
        id_fact=_tuples(d["id_fact"]),
        tasks=tuple(_task(x) for x in d["tasks"]),
        extras=tuple(Extra(**x) for x in d["extras"]),
        rules=tuple(_rule(x) for x in d["rules"]),
        upsells=tuple(OfferSpec(**x) for x in d["upsells"]),
    )


@functools.cache
def domain_data() -> DomainData:
    """Parse ``generator_data/domains.yaml`` and ``common.yaml`` (once per process)."""
    common = read_yaml(DATA_DIR / "common.yaml")
    return DomainData(
        domains=tuple(_domain(d) for d in read_yaml(DATA_DIR / "domains.yaml")),
        role_rules=tuple(_rule(r) for r in common.pop("role_rules")),
        **{k: _tuples(v) for k, v in common.items()},
    )
