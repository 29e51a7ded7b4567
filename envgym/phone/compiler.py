"""Compile phone scenarios into the tables the batched engine steps.

``compile_scenarios([...])`` turns a list of validated :class:`PhoneScenario` into one
:class:`CompiledPhone`: an action catalogue shared by every scenario of the set (services and
facts are named by id, so ``request:discount`` means the same in every scenario that has it),
a message book with token ids, and per-scenario integer tables padded to common shapes.
The engine indexes these tables by each world's scenario id, so a heterogeneous batch runs
without a per-world Python loop.

Compilation also proves every scenario solvable: a planner over service effects and offers
finds the services whose grants produce the goal records (within the fee limit and the user's
eligibility), and routes through numbers, IVR menus and transfers reach their departments.
The oracle follows that plan.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from envgym.dsl.errors import Problem, ScenarioError
from envgym.phone.models import IVR_KEYS, PhoneScenario, Service, check_references

# The codes, names and reward terms (declared once in envgym.phone.names; re-exported).
from envgym.phone.names import (  # noqa: F401
    A_ASK_ABOUT,
    A_ASK_USER,
    A_DIAL,
    A_GARBLED,
    A_HANGUP,
    A_IDLE,
    A_NO,
    A_PRESS,
    A_PROVIDE,
    A_REPORT,
    A_REQUEST,
    A_WAIT,
    A_YES,
    ACTION_ERRORS,
    ALL_REWARD_TERMS,
    E_GARBLED,
    E_HOLD,
    E_IVR_KEYS,
    E_NO_MENU,
    E_NOT_ON_CALL,
    E_NOTHING_ASKED,
    E_OK,
    E_ON_CALL,
    E_UNKNOWN_NUMBER,
    FLOOR_ASSISTANT,
    FLOOR_REP,
    FLOOR_USER,
    HOLD,
    IVR,
    MSG_SLOTS,
    OFF,
    PARTIES,
    PHASE_NAMES,
    R_ASK,
    R_ASK_FEE,
    R_CANNOT_HELP,
    R_EXPLAIN,
    R_GRANT,
    R_GREET,
    R_HOLD,
    R_LISTEN,
    R_NOT_UNDERSTOOD,
    R_OFFER,
    R_REFER,
    R_REFUSE,
    R_REJECT,
    R_STILL_THERE,
    R_TRANSFER,
    R_UNREQUESTED,
    R_VERIFY,
    RE_CANNOT_TRANSFER,
    RE_NO_FACT,
    RE_NO_OFFER,
    RE_NO_REQUEST,
    RE_NOTHING_STATED,
    RE_OK,
    REP,
    REP_ACTION_ERRORS,
    REP_MOVES,
    REP_REWARD_TERMS,
    REWARD_MODES,
    REWARD_TERMS,
    SHAPED_TERMS,
    SLOT_ELIG,
    SLOT_FEE,
    SLOT_GRANT,
    SLOT_OFFER,
    STIM_ASK_ABOUT,
    STIM_CONTINUE,
    STIM_NONE,
    STIM_PICKUP,
    STIM_PROVIDE,
    STIM_REQUEST,
    STIM_UNCLEAR,
    STIM_WAIT,
    STIMULUS_NAMES,
    SUBGOAL_SHARE,
    SUBGOALS,
    U_ANSWER,
    U_DONT_KNOW,
    U_REFUSE,
    USER_ACTIONS,
    USER_REWARD_TERMS,
)
from envgym.phone.text import (
    DEFAULT_PHRASING,
    MessageBook,
    fill_template,
    normalize_value,
    ordinal,
)


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
class Plan:
    """The oracle's plan for one scenario."""

    services: list[str]
    accept_offer: dict[str, bool]
    accept_fee: dict[str, bool]


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


# --------------------------------------------------------------------------- planning
def _service_outcomes(svc: Service) -> list[tuple[str, dict[str, str], int, bool]]:
    """Ways a request can end with changes: (label, record changes, fee, accepts offer)."""
    outs = [("grant", dict(svc.effects), svc.fee, False)]
    if svc.offer is not None:
        # The fee is charged only when the service itself is granted, not for an accepted offer.
        outs.append(("offer", dict(svc.offer.effects_if_accepted), 0, True))
    return outs


def plan_scenario(sc: PhoneScenario) -> Plan | None:
    """Find services (at most 3) whose outcomes set the goal records within the fee limit.

    Returns None when no plan exists. A service is usable only if the user passes its
    eligibility rule; outcomes that set a goal field to a wrong value are never chosen.
    """
    facts = {f.id: f.value for f in sc.user.facts}
    goal = sc.goal.records
    options: list[tuple[Service, dict[str, str], int, bool]] = []
    for svc in sc.policies.services:
        if svc.eligibility is not None:
            val = normalize_value(facts.get(svc.eligibility.fact, ""))
            if val not in {normalize_value(a) for a in svc.eligibility.allowed}:
                continue
        for _label, eff, fee, accepts in _service_outcomes(svc):
            if any(k in goal and goal[k] != v for k, v in eff.items()):
                continue
            if not any(k in goal and goal[k] == v for k, v in eff.items()):
                continue
            options.append((svc, eff, fee, accepts))
    # Options never set a goal field to a wrong value, so a combination reaches the goal iff
    # the fields it sets right, with those right from the start, cover the goal: one bitmask
    # OR per combination. The search is the first combination in itertools order (as before);
    # the schema's bounds on services keep its cube small.
    bit = {k: 1 << i for i, k in enumerate(goal)}
    full = (1 << len(goal)) - 1
    start = sum(bit[k] for k, v in goal.items() if sc.records.get(k) == v)
    cover = [sum(bit[k] for k, v in eff.items() if goal.get(k) == v) for _s, eff, _f, _a in options]
    for size in (1, 2, 3):
        for ix in itertools.combinations(range(len(options)), size):
            mask = start
            fees = 0
            for i in ix:
                mask |= cover[i]
                fees += options[i][2]
            if mask != full or fees > sc.goal.max_fees:
                continue
            combo = [options[i] for i in ix]
            if len({c[0].id for c in combo}) == size:
                return Plan(
                    services=[c[0].id for c in combo],
                    accept_offer={c[0].id: c[3] for c in combo},
                    # Saying yes to the fee question is the way on to the offer, too.
                    accept_fee={c[0].id: c[3] or c[2] <= sc.goal.max_fees for c in combo},
                )
    return None


# --------------------------------------------------------------------------- compile
def _phr(sc: PhoneScenario, kind: str) -> list[str]:
    custom = getattr(sc.phrasing, kind, None) if kind in type(sc.phrasing).model_fields else None
    return list(custom) if custom else list(DEFAULT_PHRASING[kind])


def _fmt(templates: list[str], **slots: Any) -> list[str]:
    """Fill each template's placeholders (checked when the scenario loaded)."""
    return [fill_template(t, {k: str(v) for k, v in slots.items()}) for t in templates]


def compile_scenarios(
    scenarios: list[PhoneScenario], max_tokens: int | None = None
) -> CompiledPhone:
    """Compile a scenario set into engine tables.

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
    s_index = {s: i for i, s in enumerate(services)}
    f_index = {f: i for i, f in enumerate(facts)}
    K = len(scenarios)
    N = max(len(sc.company.numbers) for sc in scenarios)
    D = max(len(sc.company.departments) for sc in scenarios)
    NODES = max(1, max(len(sc.company.ivr) for sc in scenarios))
    S, F = len(services), len(facts)
    V = max(
        len(sc.policies.services[i].verify)
        for sc in scenarios
        for i in range(len(sc.policies.services))
    )
    P = V + 4
    R = max(len(sc.records) for sc in scenarios)
    REPS = max(len(sc.company.rep_names) for sc in scenarios)
    MAX_CALLS = 10
    catalogue = build_catalogue(services, facts, N)
    book = MessageBook()

    def z(*shape: int, fill: int = 0, dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return torch.full(shape, fill, dtype=dtype)

    t: dict[str, torch.Tensor] = {
        # scenario-level
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
        # numbers
        "num_listed": z(K, N, dtype=torch.bool),
        "num_route_kind": z(K, N),
        "num_route_id": z(K, N, fill=-1),
        # IVR
        "ivr_opt_kind": z(K, NODES, 12),
        "ivr_opt_id": z(K, NODES, 12, fill=-1),
        "ivr_to_kind": z(K, NODES),
        "ivr_to_id": z(K, NODES, fill=-1),
        "ivr_key_toward": z(K, NODES, D, fill=-1),
        # departments
        "dept_hold_lo": z(K, D),
        "dept_hold_hi": z(K, D),
        "dept_transfers": z(K, D, dtype=torch.bool),
        # services
        "svc_exists": z(K, S, dtype=torch.bool),
        "svc_dept": z(K, S, fill=-1),
        "svc_other_number": z(K, S, fill=-1),
        "prog_fact": z(K, S, P, fill=-1),  # verify slots and the eligibility slot
        "elig_pass": z(K, S, dtype=torch.bool),
        "svc_fee": z(K, S),
        "has_offer": z(K, S, dtype=torch.bool),
        "grant_val": z(K, S, R, fill=-1),
        "offer_val": z(K, S, R, fill=-1),
        # facts
        "fact_exists": z(K, F, dtype=torch.bool),
        "fact_known0": z(K, F, dtype=torch.bool),
        "fact_sensitive": z(K, F, dtype=torch.bool),
        # records
        "rec_init": z(K, R),
        "goal_mask": z(K, R, dtype=torch.bool),
        "goal_val": z(K, R),
        # oracle
        "plan": z(K, 3, fill=-1),
        "plan_accept_offer": z(K, S, dtype=torch.bool),
        "plan_accept_fee": z(K, S, dtype=torch.bool),
        "oracle_number": z(K, S, fill=-1),
        "oracle_number_alt": z(K, S, fill=-1),
        "oracle_entry_dept": z(K, S, fill=-1),
        "needs_fact": z(K, S, F, dtype=torch.bool),
        # messages
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

    plans: list[Plan] = []
    for k, sc in enumerate(scenarios):
        src = f"scenario {sc.name!r}"
        problems: list[Problem] = []
        co = sc.company
        dept_ix = {d.id: i for i, d in enumerate(co.departments)}
        node_ix = {n.id: i for i, n in enumerate(co.ivr)}
        rec_fields = list(sc.records)
        rec_ix = {r: i for i, r in enumerate(rec_fields)}
        # Each record field's values: initial, effects, offers, goal.
        rec_vals: dict[str, list[str]] = {r: [sc.records[r]] for r in rec_fields}
        for svc in sc.policies.services:
            for eff in [svc.effects, *([svc.offer.effects_if_accepted] if svc.offer else [])]:
                for r, v in eff.items():
                    if v not in rec_vals[r]:
                        rec_vals[r].append(v)
        for r, v in sc.goal.records.items():
            if v not in rec_vals[r]:
                rec_vals[r].append(v)

        def val_id(r: str, v: str, _rv: dict[str, list[str]] = rec_vals) -> int:
            return _rv[r].index(v)

        company = co.name
        user_facts = {f.id: f for f in sc.user.facts}

        # --- scenario-level
        t["n_numbers"][k] = len(co.numbers)
        t["max_calls_per_number"][k] = sc.policies.max_calls_per_number
        t["max_mismatch"][k] = sc.policies.max_verification_failures
        t["call_budget"][k] = sc.constraints.call_budget
        t["max_turns"][k] = sc.constraints.max_turns
        t["hints"][k] = sc.constraints.hints
        t["user_on_call"][k] = sc.constraints.user_reachable == "always"
        t["max_fees"][k] = sc.goal.max_fees
        t["n_reps"][k] = len(co.rep_names)
        rw = sc.rewards
        t["w"][k] = torch.tensor(
            [rw.goal, rw.turn_cost, rw.privacy_violation, rw.over_call_budget, rw.invalid_action]
        )

        # --- routes
        def route_code(r: Any) -> tuple[int, int]:
            if r is None:
                return 0, -1
            if r.department is not None:
                return 2, dept_ix[r.department]
            return 1, node_ix[r.node]

        for i, num in enumerate(co.numbers):
            t["num_listed"][k, i] = num.listed
            kind, rid = route_code(num.routes_to)
            t["num_route_kind"][k, i], t["num_route_id"][k, i] = kind, rid
        for i, node in enumerate(co.ivr):
            t["m_ivr_prompt"][k, i] = book.add("ivr", node.prompt)
            for key, r in node.options.items():
                kind, rid = route_code(r)
                ki = IVR_KEYS.index(key)
                t["ivr_opt_kind"][k, i, ki], t["ivr_opt_id"][k, i, ki] = kind, rid
            kind, rid = route_code(node.timeout)
            t["ivr_to_kind"][k, i], t["ivr_to_id"][k, i] = kind, rid
        # Shortest key path from every node toward every department (BFS backwards over the
        # reversed option edges, built once: linear in the IVR's size per department).
        into: list[list[tuple[int, str]]] = [[] for _ in co.ivr]
        for i, node in enumerate(co.ivr):
            for key, r in node.options.items():
                if r.node is not None:
                    into[node_ix[r.node]].append((i, key))
        for d in range(len(co.departments)):
            dist = {}
            q: deque[int] = deque()
            for i, node in enumerate(co.ivr):
                for key, r in node.options.items():
                    if r.department is not None and dept_ix[r.department] == d and i not in dist:
                        dist[i] = 1
                        t["ivr_key_toward"][k, i, d] = IVR_KEYS.index(key)
                        q.append(i)
            while q:
                j = q.popleft()
                # Nodes in order, each by its first key leading to j (as a forward scan would).
                for i, key in into[j]:
                    if i not in dist:
                        dist[i] = dist[j] + 1
                        t["ivr_key_toward"][k, i, d] = IVR_KEYS.index(key)
                        q.append(i)

        def reaches(num_i: int, d: int) -> bool:
            kind = int(t["num_route_kind"][k, num_i])
            rid = int(t["num_route_id"][k, num_i])
            if kind == 2:
                return rid == d
            return kind == 1 and int(t["ivr_key_toward"][k, rid, d]) >= 0

        def entry_depts(num_i: int) -> list[int]:
            kind = int(t["num_route_kind"][k, num_i])
            rid = int(t["num_route_id"][k, num_i])
            if kind == 2:
                return [rid]
            return [
                d for d in range(len(co.departments)) if int(t["ivr_key_toward"][k, rid, d]) >= 0
            ]

        # --- departments
        for i, dep in enumerate(co.departments):
            t["dept_hold_lo"][k, i], t["dept_hold_hi"][k, i] = dep.hold
            t["dept_transfers"][k, i] = dep.transfers
            t["m_hold"][k, i] = book.add("system", _fmt(_phr(sc, "hold"), department=dep.label))
            t["m_transfer"][k, i] = book.add(
                "rep", _fmt(_phr(sc, "transfer"), department=dep.label)
            )
            for r, rep in enumerate(co.rep_names):
                t["m_greet"][k, i, r] = book.add(
                    "rep",
                    _fmt(_phr(sc, "greeting"), company=company, department=dep.label, rep=rep),
                )
            for r in range(len(co.rep_names), REPS):
                t["m_greet"][k, i, r] = t["m_greet"][k, i, 0]

        # --- facts
        for f in sc.user.facts:
            fi = f_index[f.id]
            t["fact_exists"][k, fi] = True
            t["fact_known0"][k, fi] = f.known_to_assistant
            t["fact_sensitive"][k, fi] = f.sensitive
            t["m_ask_fact"][k, fi] = book.add("rep", _fmt(_phr(sc, "ask_fact"), fact=f.label))
            t["m_user_says"][k, fi] = book.add(
                "user", [f"My {f.label} is {f.value}.", f"It's {f.value}, that's my {f.label}."]
            )
        t["m_user_unknown"][k] = book.add("user", "I don't know what you mean.")

        # --- records and goal
        for r in rec_fields:
            t["rec_init"][k, rec_ix[r]] = val_id(r, sc.records[r])
        for r, v in sc.goal.records.items():
            t["goal_mask"][k, rec_ix[r]] = True
            t["goal_val"][k, rec_ix[r]] = val_id(r, v)

        # --- services
        listed = [i for i, n in enumerate(co.numbers) if n.listed]
        for svc in sc.policies.services:
            si = s_index[svc.id]
            d = dept_ix[svc.department]
            dep = co.departments[d]
            t["svc_exists"][k, si] = True
            t["svc_dept"][k, si] = d
            for j, fid in enumerate(svc.verify):
                t["prog_fact"][k, si, j] = f_index[fid]
                t["needs_fact"][k, si, f_index[fid]] = True
            if svc.eligibility is not None:
                el = svc.eligibility
                t["prog_fact"][k, si, V + SLOT_ELIG] = f_index[el.fact]
                t["needs_fact"][k, si, f_index[el.fact]] = True
                true_val = normalize_value(user_facts[el.fact].value)
                t["elig_pass"][k, si] = true_val in {normalize_value(a) for a in el.allowed}
                refusal = (
                    [el.refusal] if el.refusal else _fmt(_phr(sc, "ineligible"), service=svc.label)
                )
            else:
                t["elig_pass"][k, si] = True
                refusal = _fmt(_phr(sc, "ineligible"), service=svc.label)
            anything = _phr(sc, "anything_else")
            t["m_refusal"][k, si] = book.add("rep", [f"{r} {anything[0]}" for r in refusal])
            t["svc_fee"][k, si] = svc.fee
            t["m_fee_q"][k, si] = book.add("rep", _fmt(_phr(sc, "fee_question"), fee=svc.fee))
            for r, v in svc.effects.items():
                t["grant_val"][k, si, rec_ix[r]] = val_id(r, v)
            t["m_done"][k, si] = book.add("rep", [f"{svc.done} {a}" for a in anything])
            if svc.offer is not None:
                t["has_offer"][k, si] = True
                t["m_offer"][k, si] = book.add("rep", svc.offer.text)
                t["m_offer_accepted"][k, si] = book.add(
                    "rep", [f"{svc.offer.accepted_reply} {a}" for a in anything]
                )
                for r, v in svc.offer.effects_if_accepted.items():
                    t["offer_val"][k, si, rec_ix[r]] = val_id(r, v)
            for r in range(REPS):
                rep = co.rep_names[r % len(co.rep_names)]
                t["m_greet_transfer"][k, d, r, si] = book.add(
                    "rep",
                    _fmt(
                        _phr(sc, "greeting_transfer"),
                        rep=rep,
                        department=dep.label,
                        service=svc.label,
                    ),
                )
            # What the rep says when asked what this request needs.
            if svc.explanation:
                expl = svc.explanation
            else:
                parts = []
                if svc.verify:
                    labels = [user_facts[f].label for f in svc.verify]
                    parts.append("To do that I'll need the " + ", the ".join(labels) + ".")
                if svc.eligibility is not None:
                    parts.append(
                        f"It's only available if your {user_facts[svc.eligibility.fact].label}"
                        f" is {' or '.join(svc.eligibility.allowed)}."
                    )
                if svc.fee:
                    parts.append(f"There is a {svc.fee} dollar fee.")
                parts.append(f"That's handled by {dep.label}.")
                expl = " ".join(parts)
            t["m_explain"][k, si] = book.add("rep", expl)
            # A number that reaches the department, for reps who can't transfer.
            reach = [i for i in range(len(co.numbers)) if reaches(i, d)]
            if reach:
                other = reach[0]
                t["svc_other_number"][k, si] = other
                t["m_call_other"][k, si] = book.add(
                    "rep", _fmt(_phr(sc, "call_other_number"), number=co.numbers[other].digits)
                )
            else:
                t["m_call_other"][k, si] = book.add("rep", _fmt(_phr(sc, "cannot_help")))
            # Oracle routing: a listed number reaching the department, else one reaching a
            # department that transfers, else one whose rep names a reachable number.
            direct = [i for i in listed if reaches(i, d)]
            via_transfer = [
                i for i in listed if any(bool(t["dept_transfers"][k, e]) for e in entry_depts(i))
            ]
            if direct:
                t["oracle_number"][k, si] = direct[0]
                t["oracle_entry_dept"][k, si] = d
            elif via_transfer:
                num_i = via_transfer[0]
                t["oracle_number"][k, si] = num_i
                t["oracle_entry_dept"][k, si] = next(
                    e for e in entry_depts(num_i) if bool(t["dept_transfers"][k, e])
                )
            elif reach and listed and entry_depts(listed[0]):
                # The rep there can't transfer but names a number that reaches d.
                t["oracle_number"][k, si] = listed[0]
                t["oracle_entry_dept"][k, si] = entry_depts(listed[0])[0]
            # After being told another number, the oracle dials the one the rep names.
            t["oracle_number_alt"][k, si] = reach[0] if reach else -1

        # --- plan (oracle) and solvability
        plan = plan_scenario(sc)
        if plan is None:
            problems.append(
                Problem(
                    "goal.records",
                    "unreachable: no combination of up to 3 services (grants or accepted offers) "
                    "sets these values within goal.max_fees for which the user is eligible",
                )
            )
        else:
            for j, sid in enumerate(plan.services):
                si = s_index[sid]
                t["plan"][k, j] = si
                t["plan_accept_offer"][k, si] = plan.accept_offer[sid]
                t["plan_accept_fee"][k, si] = plan.accept_fee[sid]
                svc = next(s for s in sc.policies.services if s.id == sid)
                if int(t["oracle_number"][k, si]) < 0:
                    problems.append(
                        Problem(
                            f"policies.services.{sid}.department",
                            f"department {svc.department!r} can't be reached: no listed number "
                            "leads to it, to a department that transfers, or to a rep who names "
                            "its number",
                        )
                    )
                # Entry department must be able to pass the caller on.
                num_i = int(t["oracle_number"][k, si])
                if num_i >= 0:
                    d = dept_ix[svc.department]
                    ents = entry_depts(num_i)
                    if not ents:
                        problems.append(
                            Problem(
                                f"company.numbers[{num_i}].routes_to",
                                "this number's IVR leads to no department",
                            )
                        )
            plans.append(plan)
        if problems:
            raise ScenarioError(src, problems)

        # --- fixed messages
        directory = "; ".join(
            f"{n.label}: {n.digits} (dial {i})" for i, n in enumerate(co.numbers) if n.listed
        )
        known = [f for f in sc.user.facts if f.known_to_assistant]
        known_txt = "; ".join(f"{f.label}: {f.value}" for f in known) or "nothing else"
        t["m_intro"][k] = book.add(
            "user",
            f"{sc.user.request} Numbers: {directory}. You know: {known_txt}. "
            f"Use at most {sc.constraints.call_budget} calls.",
        )
        t["m_invalid_key"][k] = book.add(
            "ivr", ["Sorry, that is not a valid option.", "Invalid selection."]
        )
        t["m_ivr_no_speech"][k] = book.add(
            "ivr", "Sorry, I didn't understand. Please use your keypad."
        )
        t["m_still_hold"][k] = book.add("system", _phr(sc, "still_hold"))
        t["m_verified"][k] = book.add("rep", _phr(sc, "verified"))
        t["m_mismatch"][k] = book.add("rep", _phr(sc, "mismatch"))
        t["m_security"][k] = book.add("rep", _phr(sc, "security_hangup"))
        t["m_eligible"][k] = book.add("rep", _phr(sc, "eligible"))
        t["m_offer_declined"][k] = book.add("rep", _phr(sc, "offer_declined"))
        t["m_cannot_help"][k] = book.add("rep", _phr(sc, "cannot_help"))
        t["m_unrequested"][k] = book.add("rep", _phr(sc, "unrequested_fact"))
        t["m_not_understood"][k] = book.add("rep", _phr(sc, "not_understood"))
        t["m_still_there"][k] = book.add("rep", _phr(sc, "still_there"))
        t["m_sys_not_on_call"][k] = book.add("system", "You are not on a call.")
        t["m_sys_on_call"][k] = book.add("system", "You are already on a call; hang up first.")
        t["m_sys_call_ended"][k] = book.add("system", "The call has ended.")
        t["m_sys_rep_hung_up"][k] = book.add("system", "The other side hung up.")
        t["m_sys_call_refused"][k] = book.add(
            "system",
            f"{company} accepts at most {sc.policies.max_calls_per_number} calls to one "
            "number per day; this call was not connected.",
        )
        for c in range(MAX_CALLS):
            t["m_sys_hint"][k, c] = book.add(
                "system", f"This is your {ordinal(c + 1)} call to this number."
            )
        t["m_sys_unknown_number"][k] = book.add("system", "That number is not in your directory.")
        t["m_sys_nobody"][k] = book.add("system", "You are on hold; nobody is listening.")
        t["m_sys_idle"][k] = book.add("system", "Time passes.")
        if sc.constraints.user_reachable == "off_call":
            t["m_sys_user_away"][k] = book.add(
                "system", "The user can't be reached during a call; ask between calls."
            )
        t["m_sys_report"][k] = book.add("system", "You report back to the user. The task is over.")
        for i, num in enumerate(co.numbers):
            t["m_sys_number_noted"][k, i] = book.add(
                "system", f"Noted {num.label}: {num.digits} (dial {i})."
            )

    # Messages only a learned user or rep can cause, added last so that the ids (and token ids)
    # of every message above are those of the single-agent engine.
    for k in range(K):
        t["m_user_dont_know"][k] = book.add("user", "Sorry, I don't know that.")
        t["m_user_refuses"][k] = book.add("user", "I'd rather not share that.")
        t["m_rep_hold"][k] = book.add("rep", "Let me put you on a brief hold.")

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
    if max_tokens is None:
        # Longest possible step: the intro alone (a reset), or the four longest other
        # messages back to back; capped for memory (longer steps are cut, documented).
        intro_ids = {int(x) for x in t["m_intro"]}
        longest_m = msg_len.max(dim=1).values
        intro_len = max(int(longest_m[m]) for m in intro_ids)
        others = sorted((int(longest_m[m]) for m in range(M) if m not in intro_ids), reverse=True)
        max_tokens = min(max(intro_len, sum(others[:MSG_SLOTS])), 512)
    dims = {
        "K": K,
        "N": N,
        "D": D,
        "NODES": NODES,
        "S": S,
        "F": F,
        "V": V,
        "P": P,
        "R": R,
        "REPS": REPS,
        "MAX_CALLS": MAX_CALLS,
    }
    return CompiledPhone(
        scenarios=list(scenarios),
        services=services,
        facts=facts,
        catalogue=catalogue,
        book=book,
        max_tokens=int(max_tokens),
        plans=plans,
        tables=t,
        msg_tokens=msg_tokens,
        msg_len=msg_len,
        msg_nvar=msg_nvar,
        dims=dims,
    )
