"""Compile phone scenarios into the tables the batched engine steps.

``compile_scenarios([...])`` turns a list of validated :class:`PhoneScenario` into one
:class:`CompiledPhone`: an action catalogue shared by every scenario of the set (services and
facts are named by id, so ``request:discount`` means the same in every scenario that has it),
a message book with token ids, and per-scenario integer tables padded to common shapes.
The engine indexes these tables by each world's scenario id, so a heterogeneous batch runs
without a per-world Python loop.

The company's rules are not written here: the policy tables are values of the functions of
:mod:`envgym.phone.policy` (verification, eligibility, fees, offers, lockout, success), computed
per scenario and service. Compilation also proves every scenario solvable: the policy's planner
finds the services whose outcomes produce the goal records, and routes through numbers, IVR
menus and transfers reach their departments. The oracle follows that plan.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from envgym.dsl.errors import Problem, ScenarioError
from envgym.phone import policy
from envgym.phone.models import IVR_KEYS, PhoneScenario, Service, check_references

# The codes, names and reward terms are declared once, in envgym.phone.names.
from envgym.phone.names import (
    A_ASK_ABOUT,
    A_ASK_USER,
    A_DIAL,
    A_HANGUP,
    A_NO,
    A_PRESS,
    A_PROVIDE,
    A_REPORT,
    A_REQUEST,
    A_WAIT,
    A_YES,
    MSG_SLOTS,
    R_ASK,
    REP_MOVES,
    REWARD_TERMS,
    SLOT_ELIG,
)
from envgym.phone.policy import Plan
from envgym.phone.policy import plan_scenario as plan_scenario  # re-exported: its old home
from envgym.phone.text import DEFAULT_PHRASING, MessageBook, fill_template, ordinal


@dataclass(frozen=True)
class ActionSpec:
    """One entry of the action catalogue."""

    kind: int
    arg: int
    name: str


def build_catalogue(services: list[str], facts: list[str], max_numbers: int) -> list[ActionSpec]:
    """The discrete action catalogue for a set of services, facts and directory size."""
    cat = [
        ActionSpec(A_WAIT, 0, "wait"),
        ActionSpec(A_HANGUP, 0, "hang_up"),
        ActionSpec(A_YES, 0, "say_yes"),
        ActionSpec(A_NO, 0, "say_no"),
        ActionSpec(A_REPORT, 0, "report"),
    ]
    cat += [ActionSpec(A_DIAL, i, f"dial:{i}") for i in range(max_numbers)]
    cat += [ActionSpec(A_PRESS, i, f"press:{k}") for i, k in enumerate(IVR_KEYS)]
    cat += [ActionSpec(A_REQUEST, i, f"request:{s}") for i, s in enumerate(services)]
    cat += [ActionSpec(A_ASK_ABOUT, i, f"ask_about:{s}") for i, s in enumerate(services)]
    cat += [ActionSpec(A_PROVIDE, i, f"provide:{f}") for i, f in enumerate(facts)]
    cat += [ActionSpec(A_ASK_USER, i, f"ask_user:{f}") for i, f in enumerate(facts)]
    return cat


def build_rep_catalogue(facts: list[str]) -> list[ActionSpec]:
    """The rep's discrete action catalogue: the fixed moves plus ``ask:f`` per fact."""
    cat = [ActionSpec(k, 0, name) for k, name in enumerate(REP_MOVES)]
    cat += [ActionSpec(R_ASK, i, f"ask:{f}") for i, f in enumerate(facts)]
    return cat


@dataclass
class CompiledPhone:
    """A compiled scenario set: catalogue, messages and padded per-scenario tables."""

    scenarios: list[PhoneScenario]
    services: list[str]
    facts: list[str]
    catalogue: list[ActionSpec]
    book: MessageBook
    max_tokens: int
    plans: list[Plan]
    tables: dict[str, torch.Tensor] = field(default_factory=dict)
    msg_tokens: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    msg_len: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    msg_nvar: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    dims: dict[str, int] = field(default_factory=dict)

    @property
    def num_actions(self) -> int:
        return len(self.catalogue)

    @property
    def vocab_size(self) -> int:
        return len(self.book.vocab)

    def to(self, device: torch.device) -> CompiledPhone:
        """Move every table to ``device`` (in place) and return self."""
        self.tables = {k: v.to(device) for k, v in self.tables.items()}
        self.msg_tokens = self.msg_tokens.to(device)
        self.msg_len = self.msg_len.to(device)
        self.msg_nvar = self.msg_nvar.to(device)
        return self


# --------------------------------------------------------------------------- compile
def _phr(sc: PhoneScenario, kind: str) -> list[str]:
    custom = getattr(sc.phrasing, kind, None) if kind in type(sc.phrasing).model_fields else None
    return list(custom) if custom else list(DEFAULT_PHRASING[kind])


def _fmt(templates: list[str], **slots: Any) -> list[str]:
    """Fill each template's placeholders (checked when the scenario loaded)."""
    return [fill_template(t, {k: str(v) for k, v in slots.items()}) for t in templates]


MAX_CALLS = 10
"""Calls to one number the hint messages count ("your 10th call")."""
MAX_MISMATCHES = 64
"""Longest mismatch count searched for the lockout threshold."""


def compile_scenarios(
    scenarios: list[PhoneScenario], max_tokens: int | None = None
) -> CompiledPhone:
    """Compile a scenario set into engine tables.

    Every policy table is the value of a :mod:`envgym.phone.policy` function for one scenario
    and service (the lowering calls them; it never restates a rule).

    Args:
        scenarios: validated scenarios; a batch may mix them (world i draws one per episode).
        max_tokens: length of the observation / target token vectors. Default: long enough for
            the longest step of the set (four message slots), so nothing is cut.

    Raises:
        ScenarioError: a scenario has broken references, an unreachable goal or department.
    """
    if not scenarios:
        raise ValueError("compile_scenarios needs at least one scenario")
    for sc in scenarios:
        problems = check_references(sc)
        if problems:
            raise ScenarioError(f"scenario {sc.name!r}", problems)
    services = sorted({s.id for sc in scenarios for s in sc.policies.services})
    facts = sorted({f.id for sc in scenarios for f in sc.user.facts})
    dims = _dims(scenarios, services, facts)
    book = MessageBook()
    t = _empty_tables(dims)
    s_index = {s: i for i, s in enumerate(services)}
    f_index = {f: i for i, f in enumerate(facts)}
    plans = [
        _lower_scenario(_Scope(k, sc, t, book, s_index, f_index, dims))
        for k, sc in enumerate(scenarios)
    ]
    _lower_three_party_messages(t, book, dims["K"])
    msg_tokens, msg_len, msg_nvar = _message_tensors(book)
    if max_tokens is None:
        max_tokens = _default_max_tokens(t, msg_len)
    return CompiledPhone(
        scenarios=list(scenarios),
        services=services,
        facts=facts,
        catalogue=build_catalogue(services, facts, dims["N"]),
        book=book,
        max_tokens=int(max_tokens),
        plans=plans,
        tables=t,
        msg_tokens=msg_tokens,
        msg_len=msg_len,
        msg_nvar=msg_nvar,
        dims=dims,
    )


def _dims(scenarios: list[PhoneScenario], services: list[str], facts: list[str]) -> dict[str, int]:
    """The padded sizes of a set's tables (each the largest over its scenarios)."""
    V = max(len(policy.verification_facts(s)) for sc in scenarios for s in sc.policies.services)
    return {
        "K": len(scenarios),
        "N": max(len(sc.company.numbers) for sc in scenarios),
        "D": max(len(sc.company.departments) for sc in scenarios),
        "NODES": max(1, max(len(sc.company.ivr) for sc in scenarios)),
        "S": len(services),
        "F": len(facts),
        "V": V,
        "P": V + 4,  # the verify slots, then SLOT_ELIG, SLOT_FEE, SLOT_OFFER, SLOT_GRANT
        "R": max(len(sc.records) for sc in scenarios),
        "REPS": max(len(sc.company.rep_names) for sc in scenarios),
        "MAX_CALLS": MAX_CALLS,
    }


def _z(*shape: int, fill: int = 0, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.full(shape, fill, dtype=dtype)


def _empty_tables(d: dict[str, int]) -> dict[str, torch.Tensor]:
    """Every table of the set, zero or -1 filled, in the engine's order of keys."""
    return {
        **_world_tables(d),
        **_service_tables(d),
        **_message_tables(d),
        **_system_message_tables(d),
    }


def _world_tables(d: dict[str, int]) -> dict[str, torch.Tensor]:
    """Scenario settings, numbers, IVR and departments."""
    K, N, D, NODES = d["K"], d["N"], d["D"], d["NODES"]
    z = _z
    return {
        "n_numbers": z(K),
        "max_calls_per_number": z(K),
        "max_mismatch": z(K),
        "call_budget": z(K),
        "max_turns": z(K),
        "hints": z(K, dtype=torch.bool),
        "user_on_call": z(K, dtype=torch.bool),
        "max_fees": z(K),
        "n_reps": z(K),
        "w": z(K, len(REWARD_TERMS), dtype=torch.float32),
        "num_listed": z(K, N, dtype=torch.bool),
        "num_route_kind": z(K, N),
        "num_route_id": z(K, N, fill=-1),
        "ivr_opt_kind": z(K, NODES, 12),
        "ivr_opt_id": z(K, NODES, 12, fill=-1),
        "ivr_to_kind": z(K, NODES),
        "ivr_to_id": z(K, NODES, fill=-1),
        "ivr_key_toward": z(K, NODES, D, fill=-1),
        "dept_hold_lo": z(K, D),
        "dept_hold_hi": z(K, D),
        "dept_transfers": z(K, D, dtype=torch.bool),
    }


def _service_tables(d: dict[str, int]) -> dict[str, torch.Tensor]:
    """Services' policy, facts, records and goal, and the oracle's plan and routes."""
    K, S, F, P, R = d["K"], d["S"], d["F"], d["P"], d["R"]
    z = _z
    return {
        "svc_exists": z(K, S, dtype=torch.bool),
        "svc_dept": z(K, S, fill=-1),
        "svc_other_number": z(K, S, fill=-1),
        "prog_fact": z(K, S, P, fill=-1),  # verify slots and the eligibility slot
        "elig_pass": z(K, S, dtype=torch.bool),
        "svc_fee": z(K, S),
        "has_offer": z(K, S, dtype=torch.bool),
        "grant_val": z(K, S, R, fill=-1),
        "offer_val": z(K, S, R, fill=-1),
        "fact_exists": z(K, F, dtype=torch.bool),
        "fact_known0": z(K, F, dtype=torch.bool),
        "fact_sensitive": z(K, F, dtype=torch.bool),
        "rec_init": z(K, R),
        "goal_mask": z(K, R, dtype=torch.bool),
        "goal_val": z(K, R),
        "plan": z(K, 3, fill=-1),
        "plan_accept_offer": z(K, S, dtype=torch.bool),
        "plan_accept_fee": z(K, S, dtype=torch.bool),
        "oracle_number": z(K, S, fill=-1),
        "oracle_number_alt": z(K, S, fill=-1),
        "oracle_entry_dept": z(K, S, fill=-1),
        "needs_fact": z(K, S, F, dtype=torch.bool),
    }


def _message_tables(d: dict[str, int]) -> dict[str, torch.Tensor]:
    """Message ids of the IVR, the rep and the user."""
    K, D, NODES, S, F, REPS = d["K"], d["D"], d["NODES"], d["S"], d["F"], d["REPS"]
    z = _z
    return {
        "m_intro": z(K),
        "m_invalid_key": z(K),
        "m_ivr_prompt": z(K, NODES, fill=-1),
        "m_hold": z(K, D),
        "m_still_hold": z(K),
        "m_greet": z(K, D, REPS),
        "m_greet_transfer": z(K, D, REPS, S),
        "m_ask_fact": z(K, F),
        "m_verified": z(K),
        "m_mismatch": z(K),
        "m_security": z(K),
        "m_eligible": z(K),
        "m_refusal": z(K, S),
        "m_fee_q": z(K, S),
        "m_offer": z(K, S),
        "m_offer_accepted": z(K, S),
        "m_offer_declined": z(K),
        "m_done": z(K, S),
        "m_transfer": z(K, D),
        "m_call_other": z(K, S),
        "m_cannot_help": z(K),
        "m_unrequested": z(K),
        "m_not_understood": z(K),
        "m_still_there": z(K),
        "m_explain": z(K, S),
        "m_user_says": z(K, F),
        "m_user_unknown": z(K),
    }


def _system_message_tables(d: dict[str, int]) -> dict[str, torch.Tensor]:
    """Message ids of the system lines, and the three-party mode's."""
    K, N = d["K"], d["N"]
    z = _z
    return {
        "m_sys_user_away": z(K, fill=-1),
        "m_sys_not_on_call": z(K),
        "m_sys_on_call": z(K),
        "m_sys_call_ended": z(K),
        "m_sys_rep_hung_up": z(K),
        "m_sys_call_refused": z(K),
        "m_sys_hint": z(K, MAX_CALLS),
        "m_sys_unknown_number": z(K),
        "m_sys_nobody": z(K),
        "m_sys_idle": z(K),
        "m_sys_report": z(K),
        "m_sys_number_noted": z(K, N),
        "m_ivr_no_speech": z(K),
        # three-party mode only (added after every other message: ids above stay unchanged)
        "m_user_dont_know": z(K),
        "m_user_refuses": z(K),
        "m_rep_hold": z(K),
    }


class _Scope:
    """One scenario being lowered into row ``k`` of the set's tables."""

    def __init__(
        self,
        k: int,
        sc: PhoneScenario,
        t: dict[str, torch.Tensor],
        book: MessageBook,
        s_index: dict[str, int],
        f_index: dict[str, int],
        dims: dict[str, int],
    ) -> None:
        self.k, self.sc, self.t, self.book, self.dims = k, sc, t, book, dims
        self.s_index, self.f_index = s_index, f_index
        co = sc.company
        self.dept_ix = {d.id: i for i, d in enumerate(co.departments)}
        self.node_ix = {n.id: i for i, n in enumerate(co.ivr)}
        self.rec_ix = {r: i for i, r in enumerate(sc.records)}
        self.user_facts = {f.id: f for f in sc.user.facts}
        # Each record field's values, numbered: initial, effects, offers, goal.
        self.rec_vals: dict[str, list[str]] = {r: [v] for r, v in sc.records.items()}
        for svc in sc.policies.services:
            for out in policy.outcomes(svc):
                for r, v in out.effects.items():
                    if v not in self.rec_vals[r]:
                        self.rec_vals[r].append(v)
        for r, v in sc.goal.records.items():
            if v not in self.rec_vals[r]:
                self.rec_vals[r].append(v)

    def val_id(self, r: str, v: str) -> int:
        """The number of record ``r``'s value ``v``."""
        return self.rec_vals[r].index(v)

    def add(self, who: str, text: str | list[str]) -> int:
        """A message id (the book numbers messages in the order they are added)."""
        return self.book.add(who, text)

    def reaches(self, num_i: int, d: int) -> bool:
        """Whether number ``num_i`` leads to department ``d`` (directly or through the IVR)."""
        kind = int(self.t["num_route_kind"][self.k, num_i])
        rid = int(self.t["num_route_id"][self.k, num_i])
        if kind == 2:
            return rid == d
        return kind == 1 and int(self.t["ivr_key_toward"][self.k, rid, d]) >= 0

    def entry_depts(self, num_i: int) -> list[int]:
        """The departments number ``num_i`` can reach."""
        n_dept = len(self.sc.company.departments)
        return [d for d in range(n_dept) if self.reaches(num_i, d)]


def _lower_scenario(cx: _Scope) -> Plan:
    """Fill row ``cx.k`` of every table; the scenario's plan (raises if it has none)."""
    sc = cx.sc
    _lower_settings(cx)
    _lower_routes(cx)
    _lower_ivr_paths(cx)
    _lower_departments(cx)
    _lower_facts(cx)
    _lower_records(cx)
    for svc in sc.policies.services:
        _lower_service_policy(cx, svc)
        _lower_service_messages(cx, svc)
        _lower_service_routing(cx, svc)
    plan, problems = _lower_plan(cx)
    if plan is None or problems:
        raise ScenarioError(f"scenario {sc.name!r}", problems)
    _lower_call_messages(cx)
    _lower_system_messages(cx)
    return plan


def _lower_settings(cx: _Scope) -> None:
    """Scenario-level limits, the lockout threshold and the reward weights."""
    k, sc, t = cx.k, cx.sc, cx.t
    t["n_numbers"][k] = len(sc.company.numbers)
    t["max_calls_per_number"][k] = sc.policies.max_calls_per_number
    t["max_mismatch"][k] = _lockout_threshold(sc)
    t["call_budget"][k] = sc.constraints.call_budget
    t["max_turns"][k] = sc.constraints.max_turns
    t["hints"][k] = sc.constraints.hints
    t["user_on_call"][k] = sc.constraints.user_reachable == "always"
    t["max_fees"][k] = sc.goal.max_fees
    t["n_reps"][k] = len(sc.company.rep_names)
    rw = sc.rewards
    t["w"][k] = torch.tensor(
        [rw.goal, rw.turn_cost, rw.privacy_violation, rw.over_call_budget, rw.invalid_action]
    )


def _lockout_threshold(sc: PhoneScenario) -> int:
    """The mismatch count at which :func:`policy.locks_out` first holds: the engine ends a
    call when the call's count reaches it."""
    n = next((n for n in range(1, MAX_MISMATCHES + 1) if policy.locks_out(sc, n)), None)
    if n is None:
        raise ValueError(f"scenario {sc.name!r}: the policy never locks out")
    return n


def _route_code(cx: _Scope, r: Any) -> tuple[int, int]:
    """A route as (kind, id): 0 none, 1 IVR node, 2 department."""
    if r is None:
        return 0, -1
    if r.department is not None:
        return 2, cx.dept_ix[r.department]
    return 1, cx.node_ix[r.node]


def _lower_routes(cx: _Scope) -> None:
    """Numbers and IVR menus: where each leads, and the menus' prompts."""
    k, t, co = cx.k, cx.t, cx.sc.company
    for i, num in enumerate(co.numbers):
        t["num_listed"][k, i] = num.listed
        t["num_route_kind"][k, i], t["num_route_id"][k, i] = _route_code(cx, num.routes_to)
    for i, node in enumerate(co.ivr):
        t["m_ivr_prompt"][k, i] = cx.add("ivr", node.prompt)
        for key, r in node.options.items():
            ki = IVR_KEYS.index(key)
            t["ivr_opt_kind"][k, i, ki], t["ivr_opt_id"][k, i, ki] = _route_code(cx, r)
        t["ivr_to_kind"][k, i], t["ivr_to_id"][k, i] = _route_code(cx, node.timeout)


def _lower_ivr_paths(cx: _Scope) -> None:
    """The first key of a shortest path from every node toward every department.

    A BFS backwards over the reversed option edges, built once: linear in the IVR's size per
    department. Nodes are taken in order, each by its first key (as a forward scan would).
    """
    k, t, co = cx.k, cx.t, cx.sc.company
    into: list[list[tuple[int, str]]] = [[] for _ in co.ivr]
    for i, node in enumerate(co.ivr):
        for key, r in node.options.items():
            if r.node is not None:
                into[cx.node_ix[r.node]].append((i, key))
    for d in range(len(co.departments)):
        dist: dict[int, int] = {}
        q: deque[int] = deque()
        for i, node in enumerate(co.ivr):
            for key, r in node.options.items():
                if r.department is not None and cx.dept_ix[r.department] == d and i not in dist:
                    dist[i] = 1
                    t["ivr_key_toward"][k, i, d] = IVR_KEYS.index(key)
                    q.append(i)
        while q:
            j = q.popleft()
            for i, key in into[j]:
                if i not in dist:
                    dist[i] = dist[j] + 1
                    t["ivr_key_toward"][k, i, d] = IVR_KEYS.index(key)
                    q.append(i)


def _lower_departments(cx: _Scope) -> None:
    """Hold ranges, transfers, and the hold, transfer and greeting lines."""
    k, t, sc = cx.k, cx.t, cx.sc
    co = sc.company
    for i, dep in enumerate(co.departments):
        t["dept_hold_lo"][k, i], t["dept_hold_hi"][k, i] = dep.hold
        t["dept_transfers"][k, i] = dep.transfers
        t["m_hold"][k, i] = cx.add("system", _fmt(_phr(sc, "hold"), department=dep.label))
        t["m_transfer"][k, i] = cx.add("rep", _fmt(_phr(sc, "transfer"), department=dep.label))
        for r, rep in enumerate(co.rep_names):
            t["m_greet"][k, i, r] = cx.add(
                "rep", _fmt(_phr(sc, "greeting"), company=co.name, department=dep.label, rep=rep)
            )
        for r in range(len(co.rep_names), cx.dims["REPS"]):
            t["m_greet"][k, i, r] = t["m_greet"][k, i, 0]


def _lower_facts(cx: _Scope) -> None:
    """The user's facts: which exist, which the assistant knows, which are sensitive."""
    k, t, sc = cx.k, cx.t, cx.sc
    for f in sc.user.facts:
        fi = cx.f_index[f.id]
        t["fact_exists"][k, fi] = True
        t["fact_known0"][k, fi] = f.known_to_assistant
        t["fact_sensitive"][k, fi] = f.sensitive
        t["m_ask_fact"][k, fi] = cx.add("rep", _fmt(_phr(sc, "ask_fact"), fact=f.label))
        t["m_user_says"][k, fi] = cx.add(
            "user", [f"My {f.label} is {f.value}.", f"It's {f.value}, that's my {f.label}."]
        )
    t["m_user_unknown"][k] = cx.add("user", "I don't know what you mean.")


def _lower_records(cx: _Scope) -> None:
    """Initial records and the goal (value numbers per field)."""
    k, t, sc = cx.k, cx.t, cx.sc
    for r, v in sc.records.items():
        t["rec_init"][k, cx.rec_ix[r]] = cx.val_id(r, v)
    for r, v in sc.goal.records.items():
        t["goal_mask"][k, cx.rec_ix[r]] = True
        t["goal_val"][k, cx.rec_ix[r]] = cx.val_id(r, v)


def _lower_service_policy(cx: _Scope, svc: Service) -> None:
    """A service's program: its checklist, eligibility verdict, fee, offer and outcomes."""
    k, t = cx.k, cx.t
    si = cx.s_index[svc.id]
    t["svc_exists"][k, si] = True
    t["svc_dept"][k, si] = cx.dept_ix[svc.department]
    for j, fid in enumerate(policy.verification_facts(svc)):
        t["prog_fact"][k, si, j] = cx.f_index[fid]
    el = policy.eligibility_fact(svc)
    if el is not None:
        t["prog_fact"][k, si, cx.dims["V"] + SLOT_ELIG] = cx.f_index[el]
    for fid in policy.checklist(svc):
        t["needs_fact"][k, si, cx.f_index[fid]] = True
    t["elig_pass"][k, si] = policy.eligible(cx.sc, svc)
    t["svc_fee"][k, si] = policy.fee(svc)
    t["has_offer"][k, si] = policy.offer_made(svc)
    for out in policy.outcomes(svc):
        table = t["offer_val"] if out.via_offer else t["grant_val"]
        for r, v in out.effects.items():
            table[k, si, cx.rec_ix[r]] = cx.val_id(r, v)


def _lower_service_messages(cx: _Scope, svc: Service) -> None:
    """What the rep says about a service: refusal, fee question, done, offer, greetings."""
    k, t, sc = cx.k, cx.t, cx.sc
    si = cx.s_index[svc.id]
    d = cx.dept_ix[svc.department]
    dep = sc.company.departments[d]
    el = svc.eligibility
    if el is not None and el.refusal:
        refusal = [el.refusal]
    else:
        refusal = _fmt(_phr(sc, "ineligible"), service=svc.label)
    anything = _phr(sc, "anything_else")
    t["m_refusal"][k, si] = cx.add("rep", [f"{r} {anything[0]}" for r in refusal])
    t["m_fee_q"][k, si] = cx.add("rep", _fmt(_phr(sc, "fee_question"), fee=policy.fee(svc)))
    t["m_done"][k, si] = cx.add("rep", [f"{svc.done} {a}" for a in anything])
    if svc.offer is not None:
        t["m_offer"][k, si] = cx.add("rep", svc.offer.text)
        t["m_offer_accepted"][k, si] = cx.add(
            "rep", [f"{svc.offer.accepted_reply} {a}" for a in anything]
        )
    reps = sc.company.rep_names
    for r in range(cx.dims["REPS"]):
        t["m_greet_transfer"][k, d, r, si] = cx.add(
            "rep",
            _fmt(
                _phr(sc, "greeting_transfer"),
                rep=reps[r % len(reps)],
                department=dep.label,
                service=svc.label,
            ),
        )
    t["m_explain"][k, si] = cx.add("rep", _explanation(cx, svc))


def _explanation(cx: _Scope, svc: Service) -> str:
    """What the rep says when asked what a request needs (default: from its policy)."""
    if svc.explanation:
        return svc.explanation
    parts = []
    if svc.verify:
        labels = [cx.user_facts[f].label for f in policy.verification_facts(svc)]
        parts.append("To do that I'll need the " + ", the ".join(labels) + ".")
    if svc.eligibility is not None:
        parts.append(
            f"It's only available if your {cx.user_facts[svc.eligibility.fact].label}"
            f" is {' or '.join(svc.eligibility.allowed)}."
        )
    if policy.fee(svc):
        parts.append(f"There is a {policy.fee(svc)} dollar fee.")
    dep = cx.sc.company.departments[cx.dept_ix[svc.department]]
    parts.append(f"That's handled by {dep.label}.")
    return " ".join(parts)


def _lower_service_routing(cx: _Scope, svc: Service) -> None:
    """The number a rep names for a service, and the oracle's number and entry department.

    The oracle dials a listed number reaching the department, else one reaching a department
    that transfers, else one whose rep names a reachable number.
    """
    k, t, co = cx.k, cx.t, cx.sc.company
    si = cx.s_index[svc.id]
    d = cx.dept_ix[svc.department]
    listed = [i for i, n in enumerate(co.numbers) if n.listed]
    reach = [i for i in range(len(co.numbers)) if cx.reaches(i, d)]
    if reach:
        t["svc_other_number"][k, si] = reach[0]
        digits = co.numbers[reach[0]].digits
        t["m_call_other"][k, si] = cx.add(
            "rep", _fmt(_phr(cx.sc, "call_other_number"), number=digits)
        )
    else:
        t["m_call_other"][k, si] = cx.add("rep", _fmt(_phr(cx.sc, "cannot_help")))
    transfers = t["dept_transfers"][k]
    direct = [i for i in listed if cx.reaches(i, d)]
    via_transfer = [i for i in listed if any(bool(transfers[e]) for e in cx.entry_depts(i))]
    if direct:
        t["oracle_number"][k, si] = direct[0]
        t["oracle_entry_dept"][k, si] = d
    elif via_transfer:
        t["oracle_number"][k, si] = via_transfer[0]
        t["oracle_entry_dept"][k, si] = next(
            e for e in cx.entry_depts(via_transfer[0]) if bool(transfers[e])
        )
    elif reach and listed and cx.entry_depts(listed[0]):
        # The rep there can't transfer but names a number that reaches d.
        t["oracle_number"][k, si] = listed[0]
        t["oracle_entry_dept"][k, si] = cx.entry_depts(listed[0])[0]
    # After being told another number, the oracle dials the one the rep names.
    t["oracle_number_alt"][k, si] = reach[0] if reach else -1


def _lower_plan(cx: _Scope) -> tuple[Plan | None, list[Problem]]:
    """The policy's plan as the oracle's tables, and why the scenario is unsolvable if so."""
    k, t, sc = cx.k, cx.t, cx.sc
    plan = policy.plan_scenario(sc)
    if plan is None:
        why = (
            "unreachable: no combination of up to 3 services (grants or accepted offers) "
            "sets these values within goal.max_fees for which the user is eligible"
        )
        return None, [Problem("goal.records", why)]
    problems: list[Problem] = []
    for j, sid in enumerate(plan.services):
        si = cx.s_index[sid]
        t["plan"][k, j] = si
        t["plan_accept_offer"][k, si] = plan.accept_offer[sid]
        t["plan_accept_fee"][k, si] = plan.accept_fee[sid]
        svc = next(s for s in sc.policies.services if s.id == sid)
        num_i = int(t["oracle_number"][k, si])
        if num_i < 0:
            problems.append(
                Problem(
                    f"policies.services.{sid}.department",
                    f"department {svc.department!r} can't be reached: no listed number "
                    "leads to it, to a department that transfers, or to a rep who names "
                    "its number",
                )
            )
        elif not cx.entry_depts(num_i):
            # The entry department must be able to pass the caller on.
            problems.append(
                Problem(
                    f"company.numbers[{num_i}].routes_to",
                    "this number's IVR leads to no department",
                )
            )
    return plan, problems


def _lower_call_messages(cx: _Scope) -> None:
    """The intro, the IVR's fixed lines and the rep's fixed lines."""
    k, t, sc = cx.k, cx.t, cx.sc
    co = sc.company
    directory = "; ".join(
        f"{n.label}: {n.digits} (dial {i})" for i, n in enumerate(co.numbers) if n.listed
    )
    known = [f for f in sc.user.facts if f.known_to_assistant]
    known_txt = "; ".join(f"{f.label}: {f.value}" for f in known) or "nothing else"
    t["m_intro"][k] = cx.add(
        "user",
        f"{sc.user.request} Numbers: {directory}. You know: {known_txt}. "
        f"Use at most {sc.constraints.call_budget} calls.",
    )
    t["m_invalid_key"][k] = cx.add(
        "ivr", ["Sorry, that is not a valid option.", "Invalid selection."]
    )
    t["m_ivr_no_speech"][k] = cx.add("ivr", "Sorry, I didn't understand. Please use your keypad.")
    for key, kind, who in (
        ("m_still_hold", "still_hold", "system"),
        ("m_verified", "verified", "rep"),
        ("m_mismatch", "mismatch", "rep"),
        ("m_security", "security_hangup", "rep"),
        ("m_eligible", "eligible", "rep"),
        ("m_offer_declined", "offer_declined", "rep"),
        ("m_cannot_help", "cannot_help", "rep"),
        ("m_unrequested", "unrequested_fact", "rep"),
        ("m_not_understood", "not_understood", "rep"),
        ("m_still_there", "still_there", "rep"),
    ):
        t[key][k] = cx.add(who, _phr(sc, kind))


def _lower_system_messages(cx: _Scope) -> None:
    """The system's lines: call state, refusals, hints, noted numbers."""
    k, t, sc = cx.k, cx.t, cx.sc
    co = sc.company
    for key, text in (
        ("m_sys_not_on_call", "You are not on a call."),
        ("m_sys_on_call", "You are already on a call; hang up first."),
        ("m_sys_call_ended", "The call has ended."),
        ("m_sys_rep_hung_up", "The other side hung up."),
        (
            "m_sys_call_refused",
            f"{co.name} accepts at most {sc.policies.max_calls_per_number} calls to one "
            "number per day; this call was not connected.",
        ),
    ):
        t[key][k] = cx.add("system", text)
    for c in range(MAX_CALLS):
        t["m_sys_hint"][k, c] = cx.add(
            "system", f"This is your {ordinal(c + 1)} call to this number."
        )
    t["m_sys_unknown_number"][k] = cx.add("system", "That number is not in your directory.")
    t["m_sys_nobody"][k] = cx.add("system", "You are on hold; nobody is listening.")
    t["m_sys_idle"][k] = cx.add("system", "Time passes.")
    if sc.constraints.user_reachable == "off_call":
        t["m_sys_user_away"][k] = cx.add(
            "system", "The user can't be reached during a call; ask between calls."
        )
    t["m_sys_report"][k] = cx.add("system", "You report back to the user. The task is over.")
    for i, num in enumerate(co.numbers):
        t["m_sys_number_noted"][k, i] = cx.add(
            "system", f"Noted {num.label}: {num.digits} (dial {i})."
        )


def _lower_three_party_messages(t: dict[str, torch.Tensor], book: MessageBook, K: int) -> None:
    """Messages only a learned user or rep can cause, added last so that the ids (and token
    ids) of every other message are those of the single-agent engine."""
    for k in range(K):
        t["m_user_dont_know"][k] = book.add("user", "Sorry, I don't know that.")
        t["m_user_refuses"][k] = book.add("user", "I'd rather not share that.")
        t["m_rep_hold"][k] = book.add("rep", "Let me put you on a brief hold.")


def _message_tensors(book: MessageBook) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The book's token ids as ``msg_tokens`` [M, NV, longest] (int32), ``msg_len`` [M, NV]
    and ``msg_nvar`` [M] (int64); variants beyond a message's own repeat cyclically."""
    tok_rows, longest = book.tables()
    M = len(tok_rows)
    NV = max(len(r) for r in tok_rows)
    msg_tokens = torch.zeros(M, NV, longest, dtype=torch.int32)
    msg_len = torch.zeros(M, NV, dtype=torch.int64)
    msg_nvar = torch.zeros(M, dtype=torch.int64)
    for m, rows in enumerate(tok_rows):
        msg_nvar[m] = len(rows)
        for v in range(NV):
            ids = rows[v % len(rows)]
            msg_tokens[m, v, : len(ids)] = torch.tensor(ids, dtype=torch.int32)
            msg_len[m, v] = len(ids)
    return msg_tokens, msg_len, msg_nvar


def _default_max_tokens(t: dict[str, torch.Tensor], msg_len: torch.Tensor) -> int:
    """Longest possible step: the intro alone (a reset), or the four longest other messages
    back to back; capped for memory (longer steps are cut, documented)."""
    intro_ids = {int(x) for x in t["m_intro"]}
    longest_m = msg_len.max(dim=1).values
    intro_len = max(int(longest_m[m]) for m in intro_ids)
    others = sorted(
        (int(longest_m[m]) for m in range(len(longest_m)) if m not in intro_ids), reverse=True
    )
    return min(max(intro_len, sum(others[:MSG_SLOTS])), 512)
