"""The phone scenario DSL: pydantic models for a company, its policies, the user and the goal.

A scenario is one YAML document under ``scenarios/phone/``. Every model forbids unknown fields
and documents each field, so ``envgym schema phone`` exports a JSON Schema editors can use.
Cross-references (an IVR option naming a department, a goal naming a record) are checked by
:func:`check_references`, which reports each problem with its field path.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from envgym.dsl.errors import Problem
from envgym.phone.text import template_problems

Ident = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=64,
        description="identifier: lowercase, digits, underscores (at most 64 characters)",
    ),
]
IVR_KEYS = "0123456789*#"

# Bounds of the DSL (docs/reliability.md, "Scenario DSL"): every number and collection has one,
# so compile time and memory stay linear in a scenario's size and no value overflows the
# engine's int64 tables.
MAX_TEXT = 2_000
"""Longest text field (characters)."""
MAX_ITEMS = 64
"""Most entries of a scenario's lists and maps (numbers, departments, services, facts, ...)."""
MAX_IVR_NODES = 10_000
"""Most IVR menu nodes."""
MAX_VARIANTS = 16
"""Most phrasing variants per message kind (and rep names)."""
MAX_DOLLARS = 1_000_000
"""Largest fee / fee budget."""
MAX_WEIGHT = 1_000.0
"""Largest magnitude of a reward weight."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_max_length=MAX_TEXT, allow_inf_nan=False
    )


class Route(_Model):
    """Where a phone number, an IVR option or an IVR timeout leads."""

    department: Ident | None = Field(None, description="connect to this department's queue")
    node: Ident | None = Field(None, description="go to this IVR menu node")

    @model_validator(mode="after")
    def _exactly_one(self) -> Route:
        if (self.department is None) == (self.node is None):
            raise ValueError("a route names exactly one of 'department' or 'node'")
        return self


class PhoneNumber(_Model):
    """A number the assistant can dial."""

    id: Ident = Field(
        description="identifier; actions dial numbers by their position in this list (dial:i)"
    )
    label: str = Field(description="how the directory names it, e.g. 'Skyline customer service'")
    digits: str = Field(
        pattern=r"^[0-9][0-9\-]{6,15}$", description="the number as dialled, e.g. 800-555-0100"
    )
    routes_to: Route = Field(description="the IVR node or department a call reaches")
    listed: bool = Field(
        True, description="whether the number is in the directory the assistant starts with"
    )


class Department(_Model):
    """A queue of reps that handles some services."""

    id: Ident = Field(description="identifier")
    label: str = Field(description="spoken name, e.g. 'billing'")
    hold: tuple[int, int] = Field(
        (0, 0),
        description="steps on hold before a rep answers: [min, max], drawn each time the caller "
        "enters this queue (a transfer included)",
    )
    transfers: bool = Field(
        True,
        description="reps here transfer a request they can't handle to the right department; "
        "if false they tell the caller which number to call",
    )

    @model_validator(mode="after")
    def _hold_range(self) -> Department:
        lo, hi = self.hold
        if lo < 0 or hi < lo or hi > 20:
            raise ValueError(f"hold must be [min, max] with 0 <= min <= max <= 20, got {self.hold}")
        return self


class IvrNode(_Model):
    """One menu of the interactive voice response tree."""

    id: Ident = Field(description="identifier")
    prompt: str = Field(description="what the menu says, e.g. 'For billing, press 1.'")
    options: dict[str, Route] = Field(
        max_length=len(IVR_KEYS), description="key pressed -> where it leads (keys 0-9 * #)"
    )
    timeout: Route | None = Field(
        None, description="where waiting without pressing a key leads (default: the prompt repeats)"
    )

    @model_validator(mode="after")
    def _keys(self) -> IvrNode:
        bad = [k for k in self.options if len(k) != 1 or k not in IVR_KEYS]
        if bad:
            raise ValueError(f"IVR option keys must be one of {IVR_KEYS!r}, got {bad}")
        if not self.options:
            raise ValueError("an IVR node needs at least one option")
        return self


class Company(_Model):
    """The company the assistant phones."""

    name: str = Field(description="the company's name as spoken")
    rep_names: list[str] = Field(
        default_factory=lambda: ["Sam", "Priya", "Marco", "Dana"],
        min_length=1,
        max_length=MAX_VARIANTS,
        description="names reps introduce themselves with (seeded per call)",
    )
    numbers: list[PhoneNumber] = Field(
        min_length=1, max_length=MAX_ITEMS, description="the company's phone numbers"
    )
    departments: list[Department] = Field(
        min_length=1, max_length=MAX_ITEMS, description="its departments"
    )
    ivr: list[IvrNode] = Field(
        default_factory=list, max_length=MAX_IVR_NODES, description="the IVR menu nodes"
    )


class Eligibility(_Model):
    """A rule such as 'discount only for veterans and doctors'."""

    fact: Ident = Field(description="the user fact the rule reads, e.g. occupation")
    allowed: list[str] = Field(
        min_length=1, max_length=MAX_ITEMS, description="values that qualify"
    )
    refusal: str | None = Field(None, description="what the rep says when the user doesn't qualify")


class Offer(_Model):
    """A yes/no proposal the rep makes before granting (e.g. a retention deal)."""

    text: str = Field(description="the rep's proposal, a yes/no question")
    effects_if_accepted: dict[Ident, str] = Field(
        max_length=MAX_ITEMS,
        description="record changes when the caller says yes (the service then ends)",
    )
    accepted_reply: str = Field(
        "Great, I've set that up for you.", description="what the rep says after a yes"
    )


class Service(_Model):
    """Something a caller can ask for, and the policy that governs it."""

    id: Ident = Field(description="identifier; actions name services by id")
    label: str = Field(description="how the caller asks for it, e.g. 'a discount on my bill'")
    department: Ident = Field(description="the department whose reps grant it")
    verify: list[Ident] = Field(
        default_factory=list,
        max_length=16,
        description="user facts the rep verifies before acting, in order",
    )
    eligibility: Eligibility | None = Field(None, description="who may have it")
    offer: Offer | None = Field(None, description="a proposal made before granting")
    fee: int = Field(
        0, ge=0, le=MAX_DOLLARS, description="dollars charged when granted; the rep asks first"
    )
    effects: dict[Ident, str] = Field(
        max_length=MAX_ITEMS, description="record changes when granted"
    )
    done: str = Field(
        "Okay, that's all taken care of.", description="what the rep says after granting"
    )
    explanation: str | None = Field(
        None,
        description="what the rep says when asked what the request needs "
        "(default: generated from verify and eligibility)",
    )


class Policies(_Model):
    """Company rules that apply to every call."""

    services: list[Service] = Field(
        min_length=1, max_length=MAX_ITEMS, description="what callers can ask for"
    )
    max_calls_per_number: int = Field(
        3,
        ge=1,
        le=9,
        description="calls to one number accepted per episode; later calls are refused",
    )
    max_verification_failures: int = Field(
        2, ge=1, le=9, description="wrong answers to verification before the rep ends the call"
    )


class Fact(_Model):
    """Something about the user."""

    id: Ident = Field(description="identifier; actions name facts by id")
    label: str = Field(description="spoken name, e.g. 'last four digits of the card'")
    value: str = Field(description="the true value")
    known_to_assistant: bool = Field(
        False, description="whether the assistant is told it at the start (else: ask the user)"
    )
    sensitive: bool = Field(
        True, description="sharing it when nobody asked for it is a privacy violation"
    )


class User(_Model):
    """The person the assistant works for."""

    name: str = Field("the user", description="the user's name")
    request: str = Field(description="what the user asks the assistant to do")
    facts: list[Fact] = Field(
        min_length=1, max_length=MAX_ITEMS, description="facts about the user"
    )


class Goal(_Model):
    """The required end state of the company's account records."""

    records: dict[Ident, str] = Field(
        min_length=1, max_length=MAX_ITEMS, description="record field -> required value"
    )
    max_fees: int = Field(
        0, ge=0, le=MAX_DOLLARS, description="most dollars of fees the user accepts"
    )


class Constraints(_Model):
    """Limits the user sets and the episode's length."""

    call_budget: int = Field(3, ge=1, le=9, description="calls the user allows; more are penalised")
    max_turns: int = Field(40, ge=4, le=200, description="assistant turns before truncation")
    hints: bool = Field(
        True, description="system hints such as 'this is your 3rd call to this number'"
    )
    user_reachable: Literal["always", "off_call"] = Field(
        "always",
        description="when ask_user reaches the user: 'always' (the user is beside the assistant) "
        "or 'off_call' (only between calls; during a call the user can't be asked)",
    )


class Rewards(_Model):
    """Weights of the named reward terms (penalties are given as positive magnitudes)."""

    goal: float = Field(
        1.0, ge=-MAX_WEIGHT, le=MAX_WEIGHT, description="paid at episode end if the goal holds"
    )
    turn_cost: float = Field(0.01, ge=0, le=MAX_WEIGHT, description="charged every turn")
    privacy_violation: float = Field(
        0.2, ge=0, le=MAX_WEIGHT, description="per sensitive fact shared unasked"
    )
    over_call_budget: float = Field(
        0.25, ge=0, le=MAX_WEIGHT, description="per call beyond the call budget"
    )
    invalid_action: float = Field(
        0.05,
        ge=0,
        le=MAX_WEIGHT,
        description="per action that can't be carried out or can't be parsed",
    )


class Realtime(_Model):
    """How the call behaves in real-time mode (``gym.make('envgym/Phone-v0', realtime=True)``).

    Ignored by the turn-based mode. Times are seconds of call time; the env converts them to
    ticks (``tick_ms``, default 200 ms) and rounds up.
    """

    on_interrupt: Literal["yield", "talk_on"] = Field(
        "yield",
        description="what the rep does when the caller talks over them: 'yield' stops talking "
        "(the rest of the sentence is lost); 'talk_on' keeps talking, and the caller's "
        "sentence is not understood",
    )
    backchannel: bool = Field(
        True,
        description="the rep says 'mm-hm' while the caller talks at length (never a turn)",
    )
    patience_s: float = Field(
        4.0, gt=0, le=60, description="dead air with a rep before they ask 'are you still there?'"
    )
    ivr_timeout_s: float = Field(
        5.0, gt=0, le=60, description="silence in an IVR menu before it times out (as 'wait')"
    )
    hold_turn_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="seconds of hold music per hold turn (departments give hold in turns)",
    )
    max_seconds: float | None = Field(
        None,
        gt=0,
        le=7200,
        description="call-time limit of an episode (truncation); default: 10 s per max_turns",
    )
    response_latency: float = Field(
        0.005,
        ge=0,
        le=MAX_WEIGHT,
        description="reward weight: per tick of response latency, charged at the reply",
    )
    talk_over: float = Field(
        0.01,
        ge=0,
        le=MAX_WEIGHT,
        description="reward weight: per tick the caller talks over the other party",
    )
    dead_air: float = Field(
        0.002,
        ge=0,
        le=MAX_WEIGHT,
        description="reward weight: per tick of silence on the caller's floor (rep)",
    )


PHRASE_KINDS = (
    "greeting",
    "ask_fact",
    "verified",
    "mismatch",
    "security_hangup",
    "anything_else",
    "transfer",
    "hold",
    "still_hold",
    "cannot_help",
    "call_other_number",
    "unrequested_fact",
    "not_understood",
    "still_there",
    "fee_question",
    "offer_declined",
    "eligible",
    "ineligible",
)


PLACEHOLDERS: dict[str, set[str]] = {
    "greeting": {"company", "department", "rep"},
    "ask_fact": {"fact"},
    "transfer": {"department"},
    "hold": {"department"},
    "call_other_number": {"number"},
    "fee_question": {"fee"},
    "ineligible": {"service"},
}
"""The placeholders each phrasing kind fills; other kinds fill none."""


class Phrasing(_Model):
    """The rep's phrasing variants per message kind; one is drawn (seeded) each time.

    Templates may use the placeholders their kind fills (:data:`PLACEHOLDERS`): greeting
    ``{company}`` ``{department}`` ``{rep}``; ask_fact ``{fact}``; transfer and hold
    ``{department}``; call_other_number ``{number}``; fee_question ``{fee}``; ineligible
    ``{service}``. Kinds left out use envgym's defaults.
    """

    greeting: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="rep answers the call"
    )
    ask_fact: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="rep asks for a fact ({fact})"
    )
    verified: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="a verification item matched"
    )
    mismatch: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="a stated value doesn't match records"
    )
    security_hangup: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="too many mismatches; call ends"
    )
    anything_else: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="after a request is handled"
    )
    transfer: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="rep transfers ({department})"
    )
    hold: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="caller is put on hold"
    )
    still_hold: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="hold continues"
    )
    cannot_help: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="request unknown to the company"
    )
    call_other_number: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="rep gives another {number}"
    )
    unrequested_fact: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="caller volunteers a fact"
    )
    not_understood: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="'sorry, I didn't catch that'"
    )
    still_there: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="caller silent on a live call"
    )
    fee_question: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="rep asks to accept a {fee}"
    )
    offer_declined: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="after the caller says no"
    )
    eligible: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="eligibility confirmed"
    )
    ineligible: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        None, max_length=MAX_VARIANTS, description="default refusal for eligibility"
    )


class PhoneScenario(_Model):
    """One phone task: a company, its policies, the user, the goal."""

    name: Ident = Field(
        description="scenario name, equal to the file's stem; a shipped scenario is registered "
        "as envgym/Phone-<CamelCaseName>-v0"
    )
    title: str = Field(description="one line for listings")
    description: str = Field("", description="what the scenario exercises")
    company: Company = Field(description="the company called")
    policies: Policies = Field(description="the company's rules")
    user: User = Field(description="the user the assistant works for")
    records: dict[Ident, str] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="the account's record fields and their initial values",
    )
    goal: Goal = Field(description="the required end state")
    constraints: Constraints = Field(default_factory=Constraints, description="user's limits")
    rewards: Rewards = Field(default_factory=Rewards, description="reward term weights")
    phrasing: Phrasing = Field(default_factory=Phrasing, description="rep phrasing variants")
    realtime: Realtime = Field(
        default_factory=Realtime, description="behaviour in real-time (full-duplex) mode"
    )
    tags: list[str] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="free labels for filtering"
    )


def _known(names: set[str] | dict[str, str]) -> str:
    """The known names for an error message, at most 20 of them (messages stay small)."""
    ordered = sorted(names)
    more = f" and {len(ordered) - 20} more" if len(ordered) > 20 else ""
    return f"{ordered[:20]}{more}"


def check_references(sc: PhoneScenario) -> list[Problem]:
    """Cross-reference checks pydantic can't express; each problem names its field path."""
    return [
        *_duplicate_ids(sc),
        *_route_problems(sc),
        *_service_problems(sc),
        *_record_problems(sc.goal.records, sc, "goal.records"),
        *([] if any(n.listed for n in sc.company.numbers) else [_NO_LISTED]),
        *_template_problems(sc),
        *_verbatim_problems(sc),
    ]


_NO_LISTED = Problem("company.numbers", "at least one number must be listed")


def _duplicate_ids(sc: PhoneScenario) -> list[Problem]:
    """Ids that appear twice in one list (departments, IVR nodes, numbers, facts, services)."""
    problems: list[Problem] = []
    for kind, path, ids in (
        ("department", "company.departments", [d.id for d in sc.company.departments]),
        ("IVR node", "company.ivr", [n.id for n in sc.company.ivr]),
        ("number", "company.numbers", [n.id for n in sc.company.numbers]),
        ("fact", "user.facts", [f.id for f in sc.user.facts]),
        ("service", "policies.services", [s.id for s in sc.policies.services]),
    ):
        seen: set[str] = set()
        for i, x in enumerate(ids):
            if x in seen:
                problems.append(Problem(f"{path}[{i}].id", f"duplicate {kind} id {x!r}"))
            seen.add(x)
    return problems


def _route_problems(sc: PhoneScenario) -> list[Problem]:
    """Routes of numbers and IVR options / timeouts that name no department or node."""
    depts = {d.id for d in sc.company.departments}
    nodes = {n.id for n in sc.company.ivr}
    routes: list[tuple[Route | None, str]] = [
        (num.routes_to, f"company.numbers[{i}].routes_to")
        for i, num in enumerate(sc.company.numbers)
    ]
    for i, node in enumerate(sc.company.ivr):
        routes += [(r, f"company.ivr[{i}].options.{key}") for key, r in node.options.items()]
        routes.append((node.timeout, f"company.ivr[{i}].timeout"))
    problems: list[Problem] = []
    for r, path in routes:
        if r is None:
            continue
        if r.department is not None and r.department not in depts:
            why = f"unknown department {r.department!r}; known: {_known(depts)}"
            problems.append(Problem(f"{path}.department", why))
        if r.node is not None and r.node not in nodes:
            why = f"unknown IVR node {r.node!r}; known: {_known(nodes)}"
            problems.append(Problem(f"{path}.node", why))
    return problems


def _record_problems(eff: dict[str, str], sc: PhoneScenario, path: str) -> list[Problem]:
    """Record fields of ``eff`` the scenario's records don't have."""
    return [
        Problem(f"{path}.{field}", f"unknown record field {field!r}; known: {_known(sc.records)}")
        for field in eff
        if field not in sc.records
    ]


def _service_problems(sc: PhoneScenario) -> list[Problem]:
    """Services naming an unknown department, fact or record field."""
    depts = {d.id for d in sc.company.departments}
    facts = {f.id for f in sc.user.facts}
    problems: list[Problem] = []
    for i, s in enumerate(sc.policies.services):
        p = f"policies.services[{i}]"
        if s.department not in depts:
            why = f"unknown department {s.department!r}; known: {_known(depts)}"
            problems.append(Problem(f"{p}.department", why))
        for j, f in enumerate(s.verify):
            if f not in facts:
                why = f"unknown user fact {f!r}; known: {_known(facts)}"
                problems.append(Problem(f"{p}.verify[{j}]", why))
        if s.eligibility is not None and s.eligibility.fact not in facts:
            why = f"unknown user fact {s.eligibility.fact!r}; known: {_known(facts)}"
            problems.append(Problem(f"{p}.eligibility.fact", why))
        problems += _record_problems(s.effects, sc, f"{p}.effects")
        if s.offer is not None:
            eff = s.offer.effects_if_accepted
            problems += _record_problems(eff, sc, f"{p}.offer.effects_if_accepted")
    return problems


def _template_problems(sc: PhoneScenario) -> list[Problem]:
    """Phrasing templates with placeholders their kind doesn't fill (or malformed ones)."""
    problems: list[Problem] = []
    for kind in PHRASE_KINDS:
        allowed = PLACEHOLDERS.get(kind, set())
        for j, t in enumerate(getattr(sc.phrasing, kind) or []):
            for why in template_problems(t, allowed, f"{kind!r} messages"):
                problems.append(Problem(f"phrasing.{kind}[{j}]", why))
    return problems


def _verbatim_problems(sc: PhoneScenario) -> list[Problem]:
    """Texts spoken verbatim: a placeholder there would be read out with its braces."""
    services = sc.policies.services
    verbatim = [
        (f"policies.services[{i}].{f}", getattr(s, f))
        for i, s in enumerate(services)
        for f in ("done", "explanation")
    ]
    verbatim += [
        (f"policies.services[{i}].offer.text", s.offer.text)
        for i, s in enumerate(services)
        if s.offer is not None
    ]
    verbatim += [
        (f"policies.services[{i}].eligibility.refusal", s.eligibility.refusal)
        for i, s in enumerate(services)
        if s.eligibility is not None
    ]
    return [
        Problem(path, "placeholders are not filled in this field; write the text out")
        for path, text in verbatim
        if text and re.search(r"{\w+}", text)
    ]
