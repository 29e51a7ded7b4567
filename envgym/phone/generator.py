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
from dataclasses import dataclass

from envgym.phone.domains import Dept, Rule, domain_data
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


def _generate(seed: int, level: float) -> PhoneScenario:
    """:func:`generate_scenario` for a checked level (an int, or one of HALF_LEVELS: drawn
    with its own knobs and otherwise built as the integer level below it)."""
    half = level in HALF_LEVELS
    d = int(level)
    rng = random.Random(seed * 7919 + (d if not half else 1000 + int(level * 100)))
    k = _half_level_knobs(rng, level) if half else _knobs(rng, d)
    level_name = f"{level:g}".replace(".", "_")  # 0.5 -> "0_5" (names are identifiers)

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

    def fill(text: str) -> str:
        return text.format(**slots)

    # ---- departments ------------------------------------------------------------------------
    dept_by_id = {x.id: x for x in (*dom.depts, dom.general)}
    target = dept_by_id[task.dept]
    entry = dom.general if k.mode != "direct" else target
    pool = [x for x in dom.depts if x.id not in (target.id, entry.id)]
    if k.mode == "direct" and d >= 2:
        pool.append(dom.general)
    rng.shuffle(pool)
    distractor_depts = pool[: min(k.n_depts, len(pool))]
    used_depts = [target] + ([entry] if entry is not target else []) + distractor_depts

    def transfers_flag(dept: Dept) -> bool:
        if k.mode == "call_other":
            return False
        if dept is entry or dept is target:
            return True
        return not (d >= 3 and rng.random() < 0.3)

    departments: dict[str, Department] = {}
    for dept in used_depts:
        hold = _hold(rng, k.hold_max)
        if dept is entry and entry is not target and d >= 2:
            hold = (hold[0], max(hold[1], min(k.hold_max, hold[1] + 1)))
        departments[dept.id] = Department(
            id=dept.id, label=dept.label, hold=hold, transfers=transfers_flag(dept)
        )

    # ---- facts ------------------------------------------------------------------------------
    id_fid, id_label, id_kind = dom.id_fact
    secrets = [s for s in _SECRETS if s[0] != id_fid]
    rng.shuffle(secrets)
    verify_secrets = secrets[: k.n_verify - 1]
    spare_secrets = secrets[k.n_verify - 1 :]
    verify = [id_fid] + [s[0] for s in verify_secrets]
    n_unknown = min(k.n_unknown, len(verify_secrets))
    unknown = {s[0] for s in rng.sample(verify_secrets, n_unknown)}

    facts: list[Fact] = [
        Fact(
            id=id_fid,
            label=id_label,
            value=_fmt_value(rng, id_kind, first, last),
            known_to_assistant=True,
        )
    ]
    for fid, label, kind in verify_secrets:
        facts.append(
            Fact(
                id=fid,
                label=label,
                value=_fmt_value(rng, kind, first, last),
                known_to_assistant=fid not in unknown,
            )
        )

    rule: Rule | None = None
    if k.eligibility:
        candidates = [r for r in (task.rule, *dom.rules, *_ROLE_RULES) if r is not None]
        rule = task.rule if task.rule is not None and rng.random() < 0.7 else rng.choice(candidates)
        elig_known = d < 3 or rng.random() < 0.5
        facts.append(
            Fact(
                id=rule.fact,
                label=rule.label,
                value=rng.choice(rule.allowed),
                known_to_assistant=elig_known,
                sensitive=rule.fact not in ("account_role", "account_type", "device_paid_off"),
            )
        )

    n_spare = min(len(spare_secrets), [0, 1, 1, 2, 3][d])
    for fid, label, kind in spare_secrets[:n_spare]:
        facts.append(
            Fact(
                id=fid,
                label=label,
                value=_fmt_value(rng, kind, first, last),
                known_to_assistant=rng.random() < 0.5,
            )
        )
    verifiable = [f.id for f in facts if f.id in {s[0] for s in _SECRETS}]

    # ---- records, goal, task service ----------------------------------------------------------
    records: dict[str, str] = {task.field: fill(task.initial)}
    goal: dict[str, str] = {task.field: fill(task.target)}

    fee = rng.choice((5, 10, 15, 20, 25)) if k.fee else 0
    max_fees = fee + (rng.choice((0, 5, 10)) if fee else 0)
    eligibility = (
        Eligibility(fact=rule.fact, allowed=list(rule.allowed), refusal=rule.refusal)
        if rule is not None
        else None
    )
    offer: Offer | None = None
    if k.offer:
        spec = task.offer if task.offer is not None and rng.random() < 0.7 else None
        if spec is None:
            spec = rng.choice(dom.upsells)
        field = spec.field or task.field
        if field != task.field:
            records.setdefault(field, spec.initial)
        offer = Offer(text=fill(spec.text), effects_if_accepted={field: spec.value})

    services: list[Service] = [
        Service(
            id=task.id,
            label=fill(task.label),
            department=target.id,
            verify=verify,
            eligibility=eligibility,
            offer=offer,
            fee=fee,
            effects=dict(goal),
            done=fill(task.done),
        )
    ]
    if k.pricier_twin:
        services.append(
            Service(
                id=f"{task.id}_priority",
                label=f"{fill(task.label)}, with priority processing",
                department=target.id,
                verify=verify,
                eligibility=eligibility,
                fee=max_fees + rng.choice((10, 15, 20, 30)),
                effects=dict(goal),
                done="Done, and it's flagged for priority processing.",
            )
        )

    request = [fill(task.request)]
    if k.trap and task.trap is not None:
        trap = task.trap
        for field, initial in trap.initials:
            records.setdefault(field, initial)
            goal.setdefault(field, initial)
        services.append(
            Service(
                id=trap.id,
                label=fill(trap.label),
                department=rng.choice([target.id, *[x.id for x in distractor_depts]]),
                verify=verify[: rng.randint(1, len(verify))],
                effects={f: fill(v) for f, v in trap.effects},
                done="Okay, that's all set.",
            )
        )
        request.append(trap.hint)

    # ---- distractor services --------------------------------------------------------------------
    taken_fields = set(records)
    taken_ids = {s.id for s in services}
    extras = [e for e in dom.extras if e.field not in taken_fields and e.id not in taken_ids]
    rng.shuffle(extras)
    # Prefer services whose own department is in the scenario; the rest fall back to the
    # general department (or the task's) rather than an unrelated one.
    extras.sort(key=lambda e: e.dept not in departments)
    fallback = dom.general.id if dom.general.id in departments else target.id
    for ex in extras[: k.n_extras]:
        dept_id = ex.dept if ex.dept in departments else fallback
        records[ex.field] = ex.initial
        services.append(
            Service(
                id=ex.id,
                label=ex.label,
                department=dept_id,
                verify=[id_fid, *rng.sample(verifiable, rng.randint(0, min(2, len(verifiable))))]
                if d > 0
                else [id_fid],
                fee=ex.fee if d >= 1 else 0,
                effects={ex.field: ex.value},
            )
        )

    if offer is not None:
        request.append(rng.choice(_OFFER_HINTS))
    if max_fees > 0:
        request.append(f"I'm okay paying up to ${max_fees} in fees, but no more.")
    elif any(s.fee for s in services):
        request.append("I don't want to pay any fees.")
    if k.call_budget < 3:
        plural = "call" if k.call_budget == 1 else "calls"
        request.append(f"Please make no more than {k.call_budget} {plural}.")

    # ---- IVR and numbers ----------------------------------------------------------------------
    used_digits: set[str] = set()

    def digits() -> str:
        while True:
            num = f"{rng.choice(_AREAS)}-555-{rng.randint(100, 199):04d}"
            if num not in used_digits:
                used_digits.add(num)
                return num

    ivr: list[IvrNode] = []
    # Services a distractor IVR option may name: not the task's own department when the task
    # is meant to be reached by a transfer or a second number.
    hidden = {target.id} if k.mode != "direct" else set()
    option_pool: list[tuple[str, Route]] = [
        (f"for {_second_person(s.label)}", Route(department=s.department))
        for s in services[1:]
        if s.department not in hidden and s.id != f"{task.id}_priority"
    ]
    dept_options: list[tuple[str, Route]] = [
        (x.menu, Route(department=x.id)) for x in distractor_depts if x.id not in hidden
    ]

    def build_menu(
        node_id: str,
        intro: str,
        correct: tuple[str, Route],
        distractors: list[tuple[str, Route]],
        root: bool,
        back: bool = True,
    ) -> None:
        opts = [correct, *distractors]
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
            timeout = Route(department=entry.id)
        elif not root and d >= 4 and dept_options and rng.random() < 0.3:
            timeout = rng.choice(dept_options)[1]
        ivr.append(
            IvrNode(
                id=node_id,
                prompt=_prompt(intro, [(key, phrase) for key, phrase, _ in keyed]),
                options={key: r for key, _, r in keyed},
                timeout=timeout,
            )
        )

    if k.ivr_depth == 0:
        main_route = Route(department=entry.id)
    else:
        main_route = Route(node="main_menu")
        phrases = task.menu[3 - k.ivr_depth :]
        node_ids = ["main_menu", "account_menu", "request_menu"][: k.ivr_depth]
        for level, (node_id, phrase) in enumerate(zip(node_ids, phrases, strict=True)):
            last_level = level == k.ivr_depth - 1
            nxt = Route(department=entry.id) if last_level else Route(node=node_ids[level + 1])
            if level == 0:
                dist = list(dept_options)
                if d >= 3 and len(dist) >= 1:
                    # Turn one department option into a submenu of its own.
                    sub_phrase, sub_route = dist[0]
                    sub_id = f"{sub_route.department}_menu"
                    subs = [o for o in option_pool if o[1] == sub_route][:3]
                    sub_opts = [("to speak with a representative", sub_route), *subs]
                    build_menu(
                        sub_id,
                        _cap(departments[str(sub_route.department)].label) + ".",
                        sub_opts[0],
                        sub_opts[1:],
                        root=False,
                    )
                    dist[0] = (sub_phrase, Route(node=sub_id))
                dist = dist[: max(1, k.options_per_menu)]
                if len(dist) < k.options_per_menu:
                    dist += rng.sample(
                        option_pool, min(len(option_pool), k.options_per_menu - len(dist))
                    )
                intro = f"Thank you for calling {company}."
            else:
                dist = rng.sample(option_pool, min(len(option_pool), k.options_per_menu))
                intro = ""
            build_menu(node_id, intro, (phrase, nxt), dist, root=level == 0)

    numbers: list[PhoneNumber] = [
        PhoneNumber(
            id="customer_service",
            label=f"{company} customer service",
            digits=digits(),
            routes_to=main_route,
        )
    ]
    reachable = {entry.id} | {
        r.department for n in ivr for r in (*n.options.values(), n.timeout) if r and r.department
    }

    other_depth = 0
    if k.mode == "call_other":
        if d >= 4 and rng.random() < 0.5:
            other_depth = 1
            build_menu(
                "direct_menu",
                f"You've reached {company} {target.label}.",
                (task.menu[-1], Route(department=target.id)),
                [
                    (
                        "to speak with a representative about anything else",
                        Route(department=target.id),
                    )
                ],
                root=False,
                back=False,
            )
            direct_route = Route(node="direct_menu")
        else:
            direct_route = Route(department=target.id)
        numbers.append(
            PhoneNumber(
                id=f"{target.id}_line",
                label=f"{company} {target.label}",
                digits=digits(),
                routes_to=direct_route,
                listed=False,
            )
        )
        reachable.add(target.id)

    candidates_for_numbers = [x for x in distractor_depts if x.id not in hidden]
    rng.shuffle(candidates_for_numbers)
    for x in candidates_for_numbers[: k.n_numbers]:
        numbers.append(
            PhoneNumber(
                id=f"{x.id}_line",
                label=f"{company} {x.label}",
                digits=digits(),
                routes_to=Route(department=x.id),
            )
        )
        reachable.add(x.id)
    # Every department gets some number, so a rep that can't transfer can always name one.
    for dept_id in departments:
        if dept_id not in reachable:
            numbers.append(
                PhoneNumber(
                    id=f"{dept_id}_direct",
                    label=f"{company} {departments[dept_id].label} (direct line)",
                    digits=digits(),
                    routes_to=Route(department=dept_id),
                    listed=False,
                )
            )

    # ---- budget of turns ----------------------------------------------------------------------
    asks = sum(1 for f in facts if not f.known_to_assistant and f.id in verify)
    if rule is not None and not next(f for f in facts if f.id == rule.fact).known_to_assistant:
        asks += 1
    turns = asks + 1 + k.ivr_depth + departments[entry.id].hold[1] + 1
    if k.mode == "transfer":
        turns += departments[target.id].hold[1]
    elif k.mode == "call_other":
        turns += 1 + 1 + other_depth + departments[target.id].hold[1] + 1
    turns += len(verify) + (rule is not None) + (fee > 0) + (offer is not None) + 2
    max_turns = min(200, 2 * turns + rng.randint(4, 8))

    # ---- assemble -----------------------------------------------------------------------------
    features = [
        f"ivr_depth_{k.ivr_depth}",
        k.mode,
        *(["eligibility"] if rule else []),
        *(["fee"] if fee else []),
        *(["offer"] if offer else []),
        *(["trap"] if k.trap and task.trap else []),
    ]
    description = (
        f"Generated ({dom.kind}, difficulty {level_name}): {fill(task.title)}. "
        f"IVR depth {k.ivr_depth}; "
        f"{len(verify)} verification item(s), {asks} fact(s) to ask the user for; route: "
        f"{k.mode.replace('_', ' ')}; fee ${fee} (limit ${max_fees}); call budget "
        f"{k.call_budget}."
    )
    phrasing = Phrasing(greeting=list(rng.choice(_GREETINGS))) if rng.random() < 0.5 else Phrasing()
    return PhoneScenario(
        name=f"generated_d{level_name}_s{seed}"
        if seed >= 0
        else f"generated_d{level_name}_sm{-seed}",
        title=f"{company}: {fill(task.title)}",
        description=description,
        company=Company(
            name=company,
            rep_names=rng.sample(_REPS, 4),
            numbers=numbers,
            departments=list(departments.values()),
            ivr=ivr,
        ),
        policies=Policies(
            services=services,
            max_calls_per_number=k.calls_per_number,
            max_verification_failures=k.max_failures,
        ),
        user=User(name=f"{first} {last}", request=" ".join(request), facts=facts),
        records=records,
        goal=Goal(records=goal, max_fees=max_fees),
        constraints=Constraints(call_budget=k.call_budget, max_turns=max_turns, hints=k.hints),
        phrasing=phrasing,
        realtime=_realtime_behaviour(seed, d),
        tags=["generated", dom.kind, f"difficulty_{level_name}", *features],
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
