"""Procedural phone scenarios: ``generate_scenario(seed, difficulty)``.

Every generated scenario is a valid :class:`~envgym.phone.models.PhoneScenario` that passes
:func:`~envgym.phone.models.check_references` and that a perfect caller can solve: one service
(the *task*) sets every goal record, its eligibility rule passes for the user's true facts, its
fee is within ``goal.max_fees``, its department is reachable from a listed number, and
``constraints.max_turns`` leaves at least twice the turns a perfect caller needs.

The company comes from a seeded domain (internet provider, bank, airline, utility, insurer,
phone carrier, gym) with its own departments, tasks, distractor services and facts. The
``difficulty`` dial (0..4) turns every knob up together:

========================  ======  ======  ========  ========  ==========
knob                      0       1       2         3         4
========================  ======  ======  ========  ========  ==========
IVR depth                 none    1       2         2-3       3
verification items        1       1-2     2         2-3       3-4
facts only the user knows 0       0-1     1         1-2       2-3
eligibility rule          no      no      50%       yes       yes
transfer to the task      no      no      40%       40%       30%
call another number       no      no      no        30%       50%
fee within max_fees       no      no      50%       60%       60%
pricier look-alike        no      no      no        with fee  with fee
offer to decline          no      no      no        40%       60%
trap service (if any)     no      no      50%       70%       yes
distractor departments    0       1       1-2       2-3       3-4
distractor services       1       1-2     2-3       3-4       4-5
distractor numbers        0       0-1     1         1-2       2-3
hold (max steps)          0       <=2     <=3       <=5       <=7
call budget               3       3       3         2-3       1-2
calls per number          3       3       3         2         1-2
========================  ======  ======  ========  ========  ==========

A half level, ``difficulty=0.5`` (:data:`HALF_LEVELS`), sits between 0 and 1: level 0's knobs
behind a one-option IVR menu, with a hold of up to 2 steps (the ladder is :data:`LEVELS`).

Otherwise the listed number reaches the task's department itself (through the IVR, if any).
"Transfer" means it reaches general customer service, which transfers to the task's department
(a second hold). "Call another number" means every department has ``transfers: false``: the
first rep names an unlisted number that reaches the task's department, so two calls are needed
(the call budget is 2 at difficulty 4, 2-3 at difficulty 3). A trap service looks like the
task but breaks the goal; an offer (a retention deal or an upsell) ends the request without
the task's effects if accepted.
"""

from __future__ import annotations

import dataclasses
import operator
import random
from dataclasses import dataclass, field

from envgym.phone.domains import Dept, Domain, Rule, Task, Trap, domain_data
from envgym.phone.models import (
    Company,
    Constraints,
    Department,
    Eligibility,
    Fact,
    Goal,
    IvrNode,
    Offer,
    PhoneNumber,
    PhoneScenario,
    Phrasing,
    Policies,
    Realtime,
    Route,
    Service,
    User,
)

MAX_DIFFICULTY = 4
"""Highest supported difficulty; difficulties run from 0 to this inclusive."""


# --------------------------------------------------------------------------------------------
# Domain data (generator_data/*.yaml, loaded by envgym.phone.domains)
# --------------------------------------------------------------------------------------------

_DATA = domain_data()
_DOMAINS = _DATA.domains
_ROLE_RULES = _DATA.role_rules
_SECRETS = _DATA.secrets
_OFFER_HINTS = _DATA.offer_hints
_GREETINGS = _DATA.greetings
_PREFIXES = _DATA.prefixes
_FIRST = _DATA.first_names
_LAST = _DATA.last_names
_REPS = _DATA.rep_names
_MERCHANTS = _DATA.merchants
_STREETS = _DATA.streets
_CITIES = _DATA.cities
_MONTHS = _DATA.months
_CLUBS = _DATA.clubs
_PETS = _DATA.pets
_AREAS = _DATA.areas


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _fmt_value(rng: random.Random, kind: str, first: str, last: str) -> str:
    """A fact value of the given format kind.

    Args:
        rng: the scenario's random source.
        kind: ``d<N>`` (N digits), ``date``, ``pet``, ``email``, ``surname``, ``code6`` or
            ``policy``.
        first: the user's first name (for e-mail addresses).
        last: the user's last name (for e-mail addresses).

    Returns:
        The value as a string.
    """
    if kind[0] == "d" and kind[1:].isdigit():
        n = int(kind[1:])
        return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))
    if kind == "date":
        return f"{rng.randint(1945, 2001)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "pet":
        return rng.choice(_PETS)
    if kind == "email":
        return f"{first[0].lower()}.{last.lower()}{rng.randint(10, 99)}@mail.example"
    if kind == "surname":
        return rng.choice([x for x in _LAST if x != last])
    if kind == "code6":
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        return "".join(rng.choice(letters) for _ in range(6))
    if kind == "policy":
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        digits = "".join(str(rng.randint(0, 9)) for _ in range(8))
        return f"{rng.choice(letters)}{rng.choice(letters)}-{digits}"
    raise ValueError(f"unknown fact format {kind!r}")


def _cap(phrase: str) -> str:
    """Capitalise the first letter of an IVR phrase."""
    return phrase[:1].upper() + phrase[1:]


def _second_person(label: str) -> str:
    """A caller's phrase as the IVR says it: 'my modem' -> 'your modem'."""
    return " ".join({"my": "your", "me": "you", "I": "you"}.get(w, w) for w in label.split())


def _prompt(intro: str, options: list[tuple[str, str]]) -> str:
    """An IVR prompt: the intro, then 'Phrase, press K.' for each (key, phrase)."""
    parts = [intro] if intro else []
    for key, phrase in options:
        key_word = {"*": "star", "#": "pound"}.get(key, key)
        parts.append(f"{_cap(phrase)}, press {key_word}.")
    return " ".join(parts)


@dataclass
class _Knobs:
    """The concrete dial settings drawn for one scenario."""

    ivr_depth: int
    n_verify: int
    n_unknown: int
    eligibility: bool
    mode: str  # "direct", "transfer" or "call_other"
    fee: bool
    pricier_twin: bool
    offer: bool
    trap: bool
    n_depts: int
    n_extras: int
    n_numbers: int
    hold_max: int
    call_budget: int
    calls_per_number: int
    max_failures: int
    hints: bool
    options_per_menu: int


def _knobs(rng: random.Random, d: int) -> _Knobs:
    """Draw the dial settings for difficulty ``d`` (see the module docstring's table)."""
    ivr_depth = [0, 1, 2, rng.randint(2, 3), 3][d]
    n_verify = [1, rng.randint(1, 2), 2, rng.randint(2, 3), rng.randint(3, 4)][d]
    n_unknown = [0, rng.randint(0, 1), 1, rng.randint(1, 2), rng.randint(2, 3)][d]
    eligibility = [False, False, rng.random() < 0.5, True, True][d]
    r = rng.random()
    if d <= 1:
        mode = "direct"
    elif d == 2:
        mode = "transfer" if r < 0.4 else "direct"
    elif d == 3:
        mode = "transfer" if r < 0.4 else "call_other" if r < 0.7 else "direct"
    else:
        mode = "transfer" if r < 0.3 else "call_other" if r < 0.8 else "direct"
    fee = d >= 2 and rng.random() < (0.5 if d == 2 else 0.6)
    pricier_twin = fee and d >= 3
    offer = d >= 3 and rng.random() < (0.4 if d == 3 else 0.6)
    trap = d >= 2 and rng.random() < [0, 0, 0.5, 0.7, 1.0][d]
    n_depts = [0, 1, rng.randint(1, 2), rng.randint(2, 3), rng.randint(3, 4)][d]
    n_extras = [1, rng.randint(1, 2), rng.randint(2, 3), rng.randint(3, 4), rng.randint(4, 5)][d]
    n_numbers = [0, rng.randint(0, 1), 1, rng.randint(1, 2), rng.randint(2, 3)][d]
    hold_max = [0, 2, 3, 5, 7][d]
    if mode == "call_other":
        call_budget = 2 if d == 4 else rng.randint(2, 3)
    else:
        call_budget = [3, 3, 3, rng.randint(2, 3), rng.randint(1, 2)][d]
    calls_per_number = [3, 3, 3, 2, rng.randint(1, 2)][d]
    max_failures = [3, 2, 2, 2, 1][d]
    hints = d < 4 or rng.random() < 0.5
    options_per_menu = [0, rng.randint(1, 2), 2, rng.randint(2, 3), rng.randint(3, 4)][d]
    return _Knobs(
        ivr_depth,
        n_verify,
        n_unknown,
        eligibility,
        mode,
        fee,
        pricier_twin,
        offer,
        trap,
        n_depts,
        n_extras,
        n_numbers,
        hold_max,
        call_budget,
        calls_per_number,
        max_failures,
        hints,
        options_per_menu,
    )


def _hold(rng: random.Random, hold_max: int) -> tuple[int, int]:
    """A hold range ``[lo, hi]`` with ``hi <= hold_max``."""
    if hold_max == 0:
        return (0, 0)
    hi = rng.randint(max(1, hold_max // 2), hold_max)
    lo = rng.randint(0, hi // 2)
    return (lo, hi)


HALF_LEVELS = (0.5,)
"""Levels between the integer difficulties (a gentler first step of the ladder):
0.5 is level 0 (nothing to ask, no distractor department or number) behind a one-option IVR
menu, with a short, varying hold (up to 2 steps)."""

LEVELS = (0, 0.5, 1, 2, 3, 4)
"""Every generator level, easiest first (the curriculum ladder)."""


def _half_level_knobs(rng: random.Random, d: float) -> _Knobs:
    """The knobs of a half level (see :data:`HALF_LEVELS`): level 0's, plus a menu and a hold."""
    k = _knobs(rng, 0)
    return dataclasses.replace(k, ivr_depth=1, options_per_menu=1, hold_max=2)


def generate_scenario(seed: int, difficulty: float) -> PhoneScenario:
    """Generate one solvable phone scenario.

    The result depends only on ``(seed, difficulty)``: the same pair always gives the same
    scenario, and no global random state is read or changed.

    Args:
        seed: any integer; picks the company, task, facts, menus and every other detail.
        difficulty: 0 (one number straight to the right department, nothing to ask) to 4 (deep
            IVR, several facts to ask for, eligibility, a transfer or a second number, fees,
            offers, traps, long holds and a tight call budget). See the module docstring.
            Integer-like values (e.g. numpy integers) are accepted.

    Returns:
        A scenario named ``generated_d{difficulty}_s{seed}`` that passes pydantic validation
        and :func:`~envgym.phone.models.check_references` and that a perfect caller can solve
        within ``constraints.max_turns`` (with at least 2x slack) and the call budget.

    Raises:
        ValueError: if ``difficulty`` is not an integer in ``0..4`` or a half level (0.5).
    """
    if isinstance(difficulty, float) and difficulty in HALF_LEVELS:
        return _generate(operator.index(seed), difficulty)
    try:
        if isinstance(difficulty, bool):
            raise TypeError
        difficulty = operator.index(difficulty)
        seed = operator.index(seed)
    except TypeError:
        raise ValueError(
            f"seed and difficulty must be integers (difficulty 0..{MAX_DIFFICULTY}), "
            f"got seed={seed!r}, difficulty={difficulty!r}"
        ) from None
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty must be in 0..{MAX_DIFFICULTY}, got {difficulty}")
    return _generate(seed, difficulty)


@dataclass
class _Draft:
    """A scenario under construction, shared by the build steps of :func:`_generate`.

    Each step reads what the earlier ones drew and draws from ``rng`` in a fixed order, so the
    result depends only on ``(seed, level)``; the steps must run in :func:`_generate`'s order.
    """

    rng: random.Random
    k: _Knobs
    d: int
    dom: Domain
    task: Task
    company: str
    first: str
    last: str
    slots: dict[str, str]
    # departments (_draw_departments)
    target: Dept = field(init=False)
    entry: Dept = field(init=False)
    distractor_depts: list[Dept] = field(init=False)
    departments: dict[str, Department] = field(init=False)
    # facts (_draw_facts)
    id_fid: str = field(init=False)
    verify: list[str] = field(init=False)
    facts: list[Fact] = field(init=False)
    rule: Rule | None = field(init=False)
    verifiable: list[str] = field(init=False)
    # records, goal and services (_draw_task_services, _draw_extras)
    records: dict[str, str] = field(init=False)
    goal: dict[str, str] = field(init=False)
    fee: int = field(init=False)
    max_fees: int = field(init=False)
    offer: Offer | None = field(init=False)
    services: list[Service] = field(init=False)
    request: list[str] = field(init=False)
    # IVR and numbers (_draw_ivr, _draw_numbers)
    ivr: list[IvrNode] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)
    dept_options: list[tuple[str, Route]] = field(default_factory=list)
    used_digits: set[str] = field(default_factory=set)
    numbers: list[PhoneNumber] = field(default_factory=list)
    other_depth: int = 0

    def fill(self, text: str) -> str:
        """``text`` with the scenario's slots (company, amount, merchant, ...) filled in."""
        return text.format(**self.slots)


def _generate(seed: int, level: float) -> PhoneScenario:
    """:func:`generate_scenario` for a checked level (an int, or one of HALF_LEVELS: drawn
    with its own knobs and otherwise built as the integer level below it)."""
    b = _draw_setting(seed, level)
    _draw_departments(b)
    _draw_facts(b)
    _draw_task_services(b)
    _draw_extras(b)
    _add_request_hints(b)
    _draw_ivr(b)
    _draw_numbers(b)
    return _assemble(b, seed, level)


def _draw_setting(seed: int, level: float) -> _Draft:
    """The knobs, the domain and task, the company, the user's name and the text slots."""
    half = level in HALF_LEVELS
    d = int(level)
    rng = random.Random(seed * 7919 + (d if not half else 1000 + int(level * 100)))
    k = _half_level_knobs(rng, level) if half else _knobs(rng, d)
    dom = rng.choice(_DOMAINS)
    task = rng.choice(dom.tasks)
    company = f"{rng.choice(_PREFIXES)} {rng.choice(dom.suffixes)}"
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, state = rng.choice(_CITIES)
    flight_old = rng.randint(100, 2899)
    slots = {
        "company": company,
        "amount": f"{rng.randint(12, 480)}.{rng.randint(0, 99):02d}",
        "merchant": rng.choice(_MERCHANTS),
        "new_address": f"{rng.randint(10, 2999)} {rng.choice(_STREETS)}, {city}, {state} "
        f"{rng.randint(10000, 99999)}",
        "flight_old": str(flight_old),
        "flight_new": str(flight_old + rng.choice((2, 4, 6, 8))),
        "date": f"{rng.choice(_MONTHS)} {rng.randint(2, 28)}",
        "driver": rng.choice(("Eli", "Marcus", "Owen", "Theo", "Caleb")),
        "club": rng.choice(_CLUBS),
    }
    return _Draft(rng, k, d, dom, task, company, first, last, slots)


def _draw_departments(b: _Draft) -> None:
    """The task's department, the one the listed number reaches, distractors and their holds."""
    rng, k, d, dom = b.rng, b.k, b.d, b.dom
    dept_by_id = {x.id: x for x in (*dom.depts, dom.general)}
    b.target = target = dept_by_id[b.task.dept]
    b.entry = entry = dom.general if k.mode != "direct" else target
    pool = [x for x in dom.depts if x.id not in (target.id, entry.id)]
    if k.mode == "direct" and d >= 2:
        pool.append(dom.general)
    rng.shuffle(pool)
    b.distractor_depts = pool[: min(k.n_depts, len(pool))]
    used_depts = [target] + ([entry] if entry is not target else []) + b.distractor_depts

    def transfers_flag(dept: Dept) -> bool:
        if k.mode == "call_other":
            return False
        if dept is entry or dept is target:
            return True
        return not (d >= 3 and rng.random() < 0.3)

    b.departments = {}
    for dept in used_depts:
        hold = _hold(rng, k.hold_max)
        if dept is entry and entry is not target and d >= 2:
            hold = (hold[0], max(hold[1], min(k.hold_max, hold[1] + 1)))
        b.departments[dept.id] = Department(
            id=dept.id, label=dept.label, hold=hold, transfers=transfers_flag(dept)
        )


def _draw_facts(b: _Draft) -> None:
    """The user's facts: the id fact, secrets to verify (some unknown to the assistant), the
    eligibility fact and spare secrets; which of them a rep may verify."""
    rng, k, d = b.rng, b.k, b.d
    b.id_fid, id_label, id_kind = b.dom.id_fact
    secrets = [s for s in _SECRETS if s[0] != b.id_fid]
    rng.shuffle(secrets)
    verify_secrets = secrets[: k.n_verify - 1]
    spare_secrets = secrets[k.n_verify - 1 :]
    b.verify = [b.id_fid] + [s[0] for s in verify_secrets]
    n_unknown = min(k.n_unknown, len(verify_secrets))
    unknown = {s[0] for s in rng.sample(verify_secrets, n_unknown)}

    def fact(fid: str, label: str, kind: str, known: bool | None = None) -> Fact:
        """A fact with a drawn value; ``known=None`` draws whether the assistant knows it."""
        value = _fmt_value(rng, kind, b.first, b.last)
        known_to_assistant = rng.random() < 0.5 if known is None else known
        return Fact(id=fid, label=label, value=value, known_to_assistant=known_to_assistant)

    b.facts = [fact(b.id_fid, id_label, id_kind, True)]
    b.facts += [fact(fid, label, kind, fid not in unknown) for fid, label, kind in verify_secrets]
    b.rule = None
    if k.eligibility:
        b.rule = _draw_rule(b)
    n_spare = min(len(spare_secrets), [0, 1, 1, 2, 3][d])
    b.facts += [fact(fid, label, kind) for fid, label, kind in spare_secrets[:n_spare]]
    b.verifiable = [f.id for f in b.facts if f.id in {s[0] for s in _SECRETS}]


def _draw_rule(b: _Draft) -> Rule:
    """The task's eligibility rule (its own, the domain's or a role rule) and the user's fact."""
    rng, task = b.rng, b.task
    candidates = [r for r in (task.rule, *b.dom.rules, *_ROLE_RULES) if r is not None]
    rule = task.rule if task.rule is not None and rng.random() < 0.7 else rng.choice(candidates)
    elig_known = b.d < 3 or rng.random() < 0.5
    b.facts.append(
        Fact(
            id=rule.fact,
            label=rule.label,
            value=rng.choice(rule.allowed),
            known_to_assistant=elig_known,
            sensitive=rule.fact not in ("account_role", "account_type", "device_paid_off"),
        )
    )
    return rule


def _draw_task_services(b: _Draft) -> None:
    """The goal record, the fee, the eligibility rule and offer of the task's service, its
    pricier look-alike and the trap service (with the user's request and the trap's hint)."""
    rng, k, task, fill = b.rng, b.k, b.task, b.fill
    b.records = {task.field: fill(task.initial)}
    b.goal = {task.field: fill(task.target)}
    b.fee = rng.choice((5, 10, 15, 20, 25)) if k.fee else 0
    b.max_fees = b.fee + (rng.choice((0, 5, 10)) if b.fee else 0)
    rule = b.rule
    eligibility = (
        Eligibility(fact=rule.fact, allowed=list(rule.allowed), refusal=rule.refusal)
        if rule is not None
        else None
    )
    b.offer = _draw_offer(b) if k.offer else None
    service = dict(department=b.target.id, verify=b.verify, eligibility=eligibility)
    b.services = [
        Service(
            id=task.id,
            label=fill(task.label),
            **service,
            offer=b.offer,
            fee=b.fee,
            effects=dict(b.goal),
            done=fill(task.done),
        )
    ]
    if k.pricier_twin:
        b.services.append(
            Service(
                id=f"{task.id}_priority",
                label=f"{fill(task.label)}, with priority processing",
                **service,
                fee=b.max_fees + rng.choice((10, 15, 20, 30)),
                effects=dict(b.goal),
                done="Done, and it's flagged for priority processing.",
            )
        )
    b.request = [fill(task.request)]
    if k.trap and task.trap is not None:
        _add_trap(b, task.trap)


def _draw_offer(b: _Draft) -> Offer:
    """The offer to decline: the task's own (mostly) or one of the domain's upsells."""
    rng, task = b.rng, b.task
    spec = task.offer if task.offer is not None and rng.random() < 0.7 else None
    if spec is None:
        spec = rng.choice(b.dom.upsells)
    rec = spec.field or task.field
    if rec != task.field:
        b.records.setdefault(rec, spec.initial)
    return Offer(text=b.fill(spec.text), effects_if_accepted={rec: spec.value})


def _add_trap(b: _Draft, trap: Trap) -> None:
    """The trap service (its fields join the records and the goal) and the user's hint."""
    rng = b.rng
    for rec, initial in trap.initials:
        b.records.setdefault(rec, initial)
        b.goal.setdefault(rec, initial)
    b.services.append(
        Service(
            id=trap.id,
            label=b.fill(trap.label),
            department=rng.choice([b.target.id, *[x.id for x in b.distractor_depts]]),
            verify=b.verify[: rng.randint(1, len(b.verify))],
            effects={f: b.fill(v) for f, v in trap.effects},
            done="Okay, that's all set.",
        )
    )
    b.request.append(trap.hint)


def _draw_extras(b: _Draft) -> None:
    """Distractor services with record fields of their own, in the scenario's departments
    where possible."""
    rng, d, departments = b.rng, b.d, b.departments
    taken_fields = set(b.records)
    taken_ids = {s.id for s in b.services}
    extras = [e for e in b.dom.extras if e.field not in taken_fields and e.id not in taken_ids]
    rng.shuffle(extras)
    # Prefer services whose own department is in the scenario; the rest fall back to the
    # general department (or the task's) rather than an unrelated one.
    extras.sort(key=lambda e: e.dept not in departments)
    fallback = b.dom.general.id if b.dom.general.id in departments else b.target.id
    for ex in extras[: b.k.n_extras]:
        dept_id = ex.dept if ex.dept in departments else fallback
        b.records[ex.field] = ex.initial
        n_more = min(2, len(b.verifiable))
        b.services.append(
            Service(
                id=ex.id,
                label=ex.label,
                department=dept_id,
                verify=[b.id_fid, *rng.sample(b.verifiable, rng.randint(0, n_more))]
                if d > 0
                else [b.id_fid],
                fee=ex.fee if d >= 1 else 0,
                effects={ex.field: ex.value},
            )
        )


def _add_request_hints(b: _Draft) -> None:
    """What the user tells the assistant about offers, fees and the call budget."""
    if b.offer is not None:
        b.request.append(b.rng.choice(_OFFER_HINTS))
    if b.max_fees > 0:
        b.request.append(f"I'm okay paying up to ${b.max_fees} in fees, but no more.")
    elif any(s.fee for s in b.services):
        b.request.append("I don't want to pay any fees.")
    if b.k.call_budget < 3:
        plural = "call" if b.k.call_budget == 1 else "calls"
        b.request.append(f"Please make no more than {b.k.call_budget} {plural}.")


def _digits(b: _Draft) -> str:
    """A fresh phone number (not used by the scenario yet)."""
    while True:
        num = f"{b.rng.choice(_AREAS)}-555-{b.rng.randint(100, 199):04d}"
        if num not in b.used_digits:
            b.used_digits.add(num)
            return num


def _build_menu(
    b: _Draft,
    node_id: str,
    intro: str,
    options: list[tuple[str, Route]],
    root: bool,
    back: bool = True,
) -> None:
    """Add an IVR node: ``options`` (the correct one first) shuffled and keyed 1.., a way back
    and a repeat option at higher levels, and a timeout route."""
    rng, d, dept_options = b.rng, b.d, b.dept_options
    opts = list(options)
    rng.shuffle(opts)
    keyed = [(str(i + 1), phrase, r) for i, (phrase, r) in enumerate(opts[:8])]
    if not root and back and d >= 2:
        keyed.append(("9", "to return to the main menu", Route(node="main_menu")))
    if root and d >= 2:
        keyed.append(("*", "to hear these options again", Route(node=node_id)))
    timeout: Route | None = None
    if root and d >= 3 and dept_options:
        timeout = rng.choice(dept_options)[1]
    elif root and d in (1, 2) and rng.random() < 0.5:
        timeout = Route(department=b.entry.id)
    elif not root and d >= 4 and dept_options and rng.random() < 0.3:
        timeout = rng.choice(dept_options)[1]
    b.ivr.append(
        IvrNode(
            id=node_id,
            prompt=_prompt(intro, [(key, phrase) for key, phrase, _ in keyed]),
            options={key: r for key, _, r in keyed},
            timeout=timeout,
        )
    )


def _draw_ivr(b: _Draft) -> None:
    """The IVR behind the listed number: ``ivr_depth`` menus down the task's menu phrases."""
    k, task = b.k, b.task
    # Services a distractor IVR option may name: not the task's own department when the task
    # is meant to be reached by a transfer or a second number.
    b.hidden = {b.target.id} if k.mode != "direct" else set()
    option_pool: list[tuple[str, Route]] = [
        (f"for {_second_person(s.label)}", Route(department=s.department))
        for s in b.services[1:]
        if s.department not in b.hidden and s.id != f"{task.id}_priority"
    ]
    b.dept_options = [
        (x.menu, Route(department=x.id)) for x in b.distractor_depts if x.id not in b.hidden
    ]
    phrases = task.menu[3 - k.ivr_depth :]
    node_ids = ["main_menu", "account_menu", "request_menu"][: k.ivr_depth]
    for depth, (node_id, phrase) in enumerate(zip(node_ids, phrases, strict=True)):
        last_level = depth == k.ivr_depth - 1
        nxt = Route(department=b.entry.id) if last_level else Route(node=node_ids[depth + 1])
        if depth == 0:
            dist = _root_distractors(b, option_pool)
            intro = f"Thank you for calling {b.company}."
        else:
            dist = b.rng.sample(option_pool, min(len(option_pool), k.options_per_menu))
            intro = ""
        _build_menu(b, node_id, intro, [(phrase, nxt), *dist], root=depth == 0)


def _root_distractors(b: _Draft, option_pool: list[tuple[str, Route]]) -> list[tuple[str, Route]]:
    """The main menu's other options: distractor departments (from level 3 the first behind
    a submenu of its own), topped up with distractor services."""
    k = b.k
    dist = list(b.dept_options)
    if b.d >= 3 and len(dist) >= 1:
        # Turn one department option into a submenu of its own.
        sub_phrase, sub_route = dist[0]
        sub_id = f"{sub_route.department}_menu"
        subs = [o for o in option_pool if o[1] == sub_route][:3]
        sub_opts = [("to speak with a representative", sub_route), *subs]
        label = _cap(b.departments[str(sub_route.department)].label) + "."
        _build_menu(b, sub_id, label, sub_opts, root=False)
        dist[0] = (sub_phrase, Route(node=sub_id))
    dist = dist[: max(1, k.options_per_menu)]
    if len(dist) < k.options_per_menu:
        dist += b.rng.sample(option_pool, min(len(option_pool), k.options_per_menu - len(dist)))
    return dist


def _draw_numbers(b: _Draft) -> None:
    """The listed number, the unlisted line of a two-call task, distractor lines and a direct
    line for every department no other number reaches."""
    main_route = Route(department=b.entry.id) if b.k.ivr_depth == 0 else Route(node="main_menu")
    company = b.company
    b.numbers = [
        PhoneNumber(
            id="customer_service",
            label=f"{company} customer service",
            digits=_digits(b),
            routes_to=main_route,
        )
    ]
    reachable = {b.entry.id} | {
        r.department for n in b.ivr for r in (*n.options.values(), n.timeout) if r and r.department
    }
    if b.k.mode == "call_other":
        _add_other_line(b)
        reachable.add(b.target.id)
    candidates_for_numbers = [x for x in b.distractor_depts if x.id not in b.hidden]
    b.rng.shuffle(candidates_for_numbers)
    for x in candidates_for_numbers[: b.k.n_numbers]:
        b.numbers.append(
            PhoneNumber(
                id=f"{x.id}_line",
                label=f"{company} {x.label}",
                digits=_digits(b),
                routes_to=Route(department=x.id),
            )
        )
        reachable.add(x.id)
    # Every department gets some number, so a rep that can't transfer can always name one.
    for dept_id in b.departments:
        if dept_id not in reachable:
            b.numbers.append(
                PhoneNumber(
                    id=f"{dept_id}_direct",
                    label=f"{company} {b.departments[dept_id].label} (direct line)",
                    digits=_digits(b),
                    routes_to=Route(department=dept_id),
                    listed=False,
                )
            )


def _add_other_line(b: _Draft) -> None:
    """The unlisted number the first rep names (to the task's department, at level 4 half the
    time behind a one-menu IVR)."""
    target = b.target
    direct_route = Route(department=target.id)
    if b.d >= 4 and b.rng.random() < 0.5:
        b.other_depth = 1
        anything_else = "to speak with a representative about anything else"
        _build_menu(
            b,
            "direct_menu",
            f"You've reached {b.company} {target.label}.",
            [(b.task.menu[-1], direct_route), (anything_else, direct_route)],
            root=False,
            back=False,
        )
        direct_route = Route(node="direct_menu")
    b.numbers.append(
        PhoneNumber(
            id=f"{target.id}_line",
            label=f"{b.company} {target.label}",
            digits=_digits(b),
            routes_to=direct_route,
            listed=False,
        )
    )


def _turns_needed(b: _Draft) -> tuple[int, int]:
    """(facts to ask the user for, turns a perfect caller needs)."""
    k, departments = b.k, b.departments
    asks = sum(1 for f in b.facts if not f.known_to_assistant and f.id in b.verify)
    rule = b.rule
    if rule is not None and not next(f for f in b.facts if f.id == rule.fact).known_to_assistant:
        asks += 1
    turns = asks + 1 + k.ivr_depth + departments[b.entry.id].hold[1] + 1
    if k.mode == "transfer":
        turns += departments[b.target.id].hold[1]
    elif k.mode == "call_other":
        turns += 1 + 1 + b.other_depth + departments[b.target.id].hold[1] + 1
    turns += len(b.verify) + (rule is not None) + (b.fee > 0) + (b.offer is not None) + 2
    return asks, turns


def _assemble(b: _Draft, seed: int, level: float) -> PhoneScenario:
    """The scenario: the turn budget (2x a perfect caller's, plus slack), tags, description."""
    rng, k, task, fill = b.rng, b.k, b.task, b.fill
    level_name = f"{level:g}".replace(".", "_")  # 0.5 -> "0_5" (names are identifiers)
    asks, turns = _turns_needed(b)
    max_turns = min(200, 2 * turns + rng.randint(4, 8))
    features = [
        f"ivr_depth_{k.ivr_depth}",
        k.mode,
        *(["eligibility"] if b.rule else []),
        *(["fee"] if b.fee else []),
        *(["offer"] if b.offer else []),
        *(["trap"] if k.trap and task.trap else []),
    ]
    description = (
        f"Generated ({b.dom.kind}, difficulty {level_name}): {fill(task.title)}. "
        f"IVR depth {k.ivr_depth}; "
        f"{len(b.verify)} verification item(s), {asks} fact(s) to ask the user for; route: "
        f"{k.mode.replace('_', ' ')}; fee ${b.fee} (limit ${b.max_fees}); call budget "
        f"{k.call_budget}."
    )
    phrasing = Phrasing(greeting=list(rng.choice(_GREETINGS))) if rng.random() < 0.5 else Phrasing()
    return PhoneScenario(
        name=f"generated_d{level_name}_s{seed}"
        if seed >= 0
        else f"generated_d{level_name}_sm{-seed}",
        title=f"{b.company}: {fill(task.title)}",
        description=description,
        company=Company(
            name=b.company,
            rep_names=rng.sample(_REPS, 4),
            numbers=b.numbers,
            departments=list(b.departments.values()),
            ivr=b.ivr,
        ),
        policies=Policies(
            services=b.services,
            max_calls_per_number=k.calls_per_number,
            max_verification_failures=k.max_failures,
        ),
        user=User(name=f"{b.first} {b.last}", request=" ".join(b.request), facts=b.facts),
        records=b.records,
        goal=Goal(records=b.goal, max_fees=b.max_fees),
        constraints=Constraints(call_budget=k.call_budget, max_turns=max_turns, hints=k.hints),
        phrasing=phrasing,
        realtime=_realtime_behaviour(seed, b.d),
        tags=["generated", b.dom.kind, f"difficulty_{level_name}", *features],
    )


def _realtime_behaviour(seed: int, d: int) -> Realtime:
    """The company's behaviour in real-time mode, from ``(seed, difficulty)`` on its own random
    stream (the scenario's other content doesn't change): the higher the difficulty, the more
    often reps talk on when interrupted and the less dead air they wait through."""
    r = random.Random(seed * 104729 + d * 31 + 7)
    return Realtime(
        on_interrupt="talk_on" if r.random() < 0.2 * d else "yield",
        backchannel=r.random() < 0.8,
        patience_s=round(6.0 - d + r.random(), 1),
    )
