"""The company's policy for a request: one home for the rules both channels apply.

A phone scenario's ``policies`` block (the DSL of :mod:`envgym.phone.models`) describes what a
company requires before it changes an account. This module is the only place those rules are
written, as small pure functions over the scenario model (no torch):

- **verification** (:func:`checklist`, :func:`stated_correct`, :func:`first_mismatch`): the facts
  checked for a service, in order (its ``verify`` facts, then its eligibility fact), each stated
  value compared with the user's true value, case, spaces and punctuation ignored;
- **lockout** (:func:`locks_out`): ``max_verification_failures`` mismatches *within one contact*
  (a phone call, a portal sign-in session) end that contact; the next contact starts from zero;
- **eligibility** (:func:`eligible`): decided on the user's *true* value of the rule's fact, which
  is itself on the checklist, so a false claim is a mismatch, never a way in;
- **fees** (:func:`fee`) and **offers** (:func:`outcome`): a fee must be agreed before anything
  happens; an offer is made after that, and accepting it applies its effects and charges no fee,
  declining it grants the service and charges its fee;
- **the order** (:func:`review`): mismatch, then eligibility, then the fee, then the offer;
- **success** (:func:`success`): every goal record holds its value and fees are within the
  budget;
- **the planner** (:func:`plan_scenario`): the services (at most three) whose outcomes reach the
  goal, which the oracles of both channels follow.

The phone compiler lowers these functions to the engine's tables by calling them per scenario
and service (``envgym.phone.compiler``); the browser portal calls them per request
(``envgym.browser.tasks.portal``); ``tests/test_policy_parity.py`` holds the two channels'
verdicts equal.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from envgym.phone.models import PhoneScenario, Service
from envgym.phone.text import normalize_value

MAX_PLAN_SERVICES = 3
"""The planner combines at most this many services."""


# --------------------------------------------------------------------------- verification
def matches(stated: str, true: str) -> bool:
    """Whether a stated fact value is the true one (case, spaces and punctuation ignored)."""
    return normalize_value(stated) == normalize_value(true)


def true_value(sc: PhoneScenario, fact_id: str) -> str | None:
    """The user's true value of a fact (None: the scenario has no such fact)."""
    return next((f.value for f in sc.user.facts if f.id == fact_id), None)


def stated_correct(sc: PhoneScenario, fact_id: str, stated: str | None) -> bool:
    """Whether ``stated`` is the user's true value of ``fact_id`` (an unknown fact never is)."""
    truth = true_value(sc, fact_id)
    return stated is not None and truth is not None and matches(stated, truth)


def verification_facts(svc: Service) -> tuple[str, ...]:
    """The service's ``verify`` facts, in the order they are checked."""
    return tuple(svc.verify)


def eligibility_fact(svc: Service) -> str | None:
    """The fact the service's eligibility rule reads (None: everyone is eligible)."""
    return None if svc.eligibility is None else svc.eligibility.fact


def checklist(svc: Service) -> tuple[str, ...]:
    """Every fact checked for the service, in order, each once: ``verify``, then the
    eligibility fact (a false eligibility claim is a mismatch like any other)."""
    out = list(dict.fromkeys(svc.verify))
    el = eligibility_fact(svc)
    if el is not None and el not in out:
        out.append(el)
    return tuple(out)


def first_mismatch(sc: PhoneScenario, svc: Service, stated: Mapping[str, str]) -> str | None:
    """The first checklist fact whose stated value is wrong or missing (None: all match)."""
    return next((f for f in checklist(svc) if not stated_correct(sc, f, stated.get(f))), None)


def locks_out(sc: PhoneScenario, mismatches: int) -> bool:
    """Whether ``mismatches`` wrong answers within one contact end that contact.

    The count is per contact: a new call (phone) or a new sign-in (portal) starts from zero,
    and a lockout ends only the contact, not the account.
    """
    return mismatches >= sc.policies.max_verification_failures


# --------------------------------------------------------------------------- eligibility, fees
def eligible(sc: PhoneScenario, svc: Service) -> bool:
    """Whether the user qualifies for the service, judged on the user's true facts."""
    el = svc.eligibility
    if el is None:
        return True
    truth = true_value(sc, el.fact)
    return truth is not None and any(matches(truth, a) for a in el.allowed)


def fee(svc: Service) -> int:
    """Dollars charged when the service itself is granted (0: no fee question)."""
    return svc.fee


def offer_made(svc: Service) -> bool:
    """Whether the company proposes an offer before granting the service."""
    return svc.offer is not None


@dataclass(frozen=True)
class Outcome:
    """What a request that went through changes: record values and the fee charged."""

    effects: dict[str, str]
    fee: int
    via_offer: bool


def outcome(svc: Service, accept_offer: bool) -> Outcome:
    """The outcome of a request past its checks and its fee question.

    Accepting an offer applies its effects and charges no fee; otherwise (no offer, or the
    offer declined) the service is granted: its effects, its fee.
    """
    if accept_offer and svc.offer is not None:
        return Outcome(dict(svc.offer.effects_if_accepted), 0, True)
    return Outcome(dict(svc.effects), fee(svc), False)


def outcomes(svc: Service) -> list[Outcome]:
    """Every way a request can end with changes: the grant, then the accepted offer if any."""
    outs = [outcome(svc, accept_offer=False)]
    if offer_made(svc):
        outs.append(outcome(svc, accept_offer=True))
    return outs


# --------------------------------------------------------------------------- one request
class Verdict(Enum):
    """How the company answers a request (one submission of the portal's form, or the rep's
    program run through on a call)."""

    MISMATCH = "mismatch"
    """A checklist fact doesn't match; the request stays open."""
    LOCKED_OUT = "locked_out"
    """A mismatch that reaches the lockout limit: the contact ends."""
    INELIGIBLE = "ineligible"
    """The eligibility rule fails: refused, nothing changes."""
    FEE_DECLINED = "fee_declined"
    """The fee was not agreed: nothing changes."""
    OFFER = "offer"
    """The checks passed; the offer is proposed (:func:`outcome` decides the rest)."""
    GRANT = "grant"
    """The checks passed and no offer: the service is granted (``outcome(svc, False)``)."""


@dataclass(frozen=True)
class Review:
    """The verdict on a request and, for a mismatch, the fact that failed."""

    verdict: Verdict
    fact: str | None = None


def review(
    sc: PhoneScenario,
    svc: Service,
    stated: Mapping[str, str],
    mismatches: int,
    fee_agreed: bool,
) -> Review:
    """The company's verdict on a request, in the policy's order.

    Args:
        sc: the scenario (the company and the user's true facts).
        svc: the service requested.
        stated: fact id -> the value stated for it.
        mismatches: mismatches counted so far in this contact.
        fee_agreed: whether the caller agreed to the service's fee.
    """
    bad = first_mismatch(sc, svc, stated)
    if bad is not None:
        locked = locks_out(sc, mismatches + 1)
        return Review(Verdict.LOCKED_OUT if locked else Verdict.MISMATCH, bad)
    if not eligible(sc, svc):
        return Review(Verdict.INELIGIBLE)
    if fee(svc) > 0 and not fee_agreed:
        return Review(Verdict.FEE_DECLINED)
    return Review(Verdict.OFFER if offer_made(svc) else Verdict.GRANT)


# --------------------------------------------------------------------------- success
def goal_met(sc: PhoneScenario, records: Mapping[str, str]) -> bool:
    """Whether every goal record holds its goal value (exact values)."""
    return all(records.get(k) == v for k, v in sc.goal.records.items())


def success(sc: PhoneScenario, records: Mapping[str, str], fees: int) -> bool:
    """The task's success: the goal records hold and the fees charged are within budget."""
    return goal_met(sc, records) and fees <= sc.goal.max_fees


# --------------------------------------------------------------------------- the planner
@dataclass
class Plan:
    """The oracle's plan for one scenario."""

    services: list[str]
    accept_offer: dict[str, bool]
    accept_fee: dict[str, bool]


def _plan_options(sc: PhoneScenario) -> list[tuple[Service, Outcome]]:
    """Outcomes of services the user is eligible for that set some goal field right and none
    wrong, in service order (the grant before the offer)."""
    goal = sc.goal.records
    options: list[tuple[Service, Outcome]] = []
    for svc in sc.policies.services:
        if not eligible(sc, svc):
            continue
        for out in outcomes(svc):
            eff = out.effects
            if any(k in goal and goal[k] != v for k, v in eff.items()):
                continue
            if not any(k in goal and goal[k] == v for k, v in eff.items()):
                continue
            options.append((svc, out))
    return options


def plan_scenario(sc: PhoneScenario) -> Plan | None:
    """Find services (at most 3) whose outcomes set the goal records within the fee limit.

    Returns None when no plan exists. A service is usable only if the user passes its
    eligibility rule; outcomes that set a goal field to a wrong value are never chosen.
    """
    options = _plan_options(sc)
    goal = sc.goal.records
    # Options never set a goal field to a wrong value, so a combination reaches the goal iff
    # the fields it sets right, with those right from the start, cover the goal: one bitmask
    # OR per combination. The search is the first combination in itertools order; the schema's
    # bounds on services keep its cube small.
    bit = {k: 1 << i for i, k in enumerate(goal)}
    full = (1 << len(goal)) - 1
    start = sum(bit[k] for k, v in goal.items() if sc.records.get(k) == v)
    cover = [sum(bit[k] for k, v in o.effects.items() if goal.get(k) == v) for _s, o in options]
    for size in range(1, MAX_PLAN_SERVICES + 1):
        for ix in itertools.combinations(range(len(options)), size):
            mask = start
            for i in ix:
                mask |= cover[i]
            fees = sum(options[i][1].fee for i in ix)
            combo = [options[i] for i in ix]
            if mask != full or fees > sc.goal.max_fees or len({s.id for s, _ in combo}) < size:
                continue
            return Plan(
                services=[s.id for s, _ in combo],
                accept_offer={s.id: o.via_offer for s, o in combo},
                # Saying yes to the fee question is the way on to the offer, too.
                accept_fee={s.id: o.via_offer or o.fee <= sc.goal.max_fees for s, o in combo},
            )
    return None
