"""One rule, one home: the portal's verdicts equal the phone engine's.

Both channels apply :mod:`envgym.phone.policy`: the compiler lowers it to the engine's tables,
the browser portal calls it per request. Over every shipped scenario and a few hundred
generated ones, each service is requested through both channels with the same scripts (right
and wrong facts, repeated mismatches up to the lockout and a new contact after it, the
eligibility rule, the fee agreed or not, the offer accepted or declined): the engine is
stepped through its real rules (the scripted rep answers, the test plays the caller), the
portal through its real request handlers (no browser needed), and the verdicts, the records,
the fees and the success judgement must be equal. The lowered tables are also compared with
the policy functions, and the planner's plan must succeed on both channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from envgym.browser.tasks.base import Request
from envgym.browser.tasks.portal import PortalTask
from envgym.phone import policy
from envgym.phone.compiler import CompiledPhone, compile_scenarios
from envgym.phone.engine import STATES_KNOWN, PhoneActions, PhoneEngine, oracle_success_rate
from envgym.phone.generator import generate_scenario
from envgym.phone.models import Eligibility, PhoneScenario, Service
from envgym.phone.names import FLOOR_ASSISTANT, REP, SLOT_ELIG, STIM_NONE
from envgym.phone.policy import Verdict
from envgym.phone.scenarios import load_scenario, shipped_names

GENERATED_PER_DIFFICULTY = 60
DIFFICULTIES = (0, 1, 2, 3, 4)


def restricted(sc: PhoneScenario) -> PhoneScenario:
    """``sc`` plus a copy of its first service that the user is not eligible for.

    Its rule allows only the wrong value the scripts state for the fact, so a false claim would
    pass a rule judged on stated values: the policy judges the true value (and the claim is a
    mismatch). The plan is unchanged (the planner skips services the user can't have).
    """
    first, fact = sc.policies.services[0], sc.user.facts[-1]
    rule = Eligibility(fact=fact.id, allowed=[f"x{fact.value}9"])
    extra = first.model_copy(update={"id": f"r_{first.id}"[:64], "eligibility": rule})
    pol = sc.policies.model_copy(update={"services": [*sc.policies.services, extra]})
    return sc.model_copy(update={"name": f"{sc.name}_restricted"[:64], "policies": pol})


def scenario_sets() -> dict[str, list[PhoneScenario]]:
    """The shipped scenarios as loaded (and restricted copies), and generated ones at several
    difficulties and generator seeds (every other one restricted)."""
    shipped = [load_scenario(n) for n in shipped_names()]
    sets = {"shipped": shipped + [restricted(sc) for sc in shipped]}
    for d in DIFFICULTIES:
        seed0 = 1000 * d + 7
        gen = [generate_scenario(seed0 + i, d) for i in range(GENERATED_PER_DIFFICULTY)]
        sets[f"generated-d{d}"] = [restricted(sc) if i % 2 else sc for i, sc in enumerate(gen)]
    return sets


SETS = scenario_sets()


# --------------------------------------------------------------------------- scripts
@dataclass(frozen=True)
class Script:
    """What the caller does about one service, the same on both channels.

    ``attempts``: per attempt, the checklist fact stated wrong (None: every fact right); after
    a lockout the next attempt starts a new contact (a new call, a new sign-in).
    """

    attempts: tuple[str | None, ...]
    fee_yes: bool
    offer_yes: bool


def scripts_for(sc: PhoneScenario, svc: Service) -> list[Script]:
    facts = policy.checklist(svc)
    out = [Script((None,), True, True), Script((None,), True, False), Script((None,), False, True)]
    if not facts:
        return out
    m = sc.policies.max_verification_failures
    last = facts[-1]  # the eligibility fact when there is one
    out.append(Script((facts[0], None), True, False))
    # Repeated mismatches: up to the lockout, then (a new contact) once more, then right. A
    # count carried over into the new contact would lock out again at the extra mismatch.
    again = (last,) if m > 1 else ()
    out.append(Script((last,) * m + again + (None,), True, True))
    return out


def stated_values(sc: PhoneScenario, svc: Service, wrong: str | None) -> dict[str, str]:
    """The values stated for the checklist: the truth (respelled: case, spaces and punctuation
    don't matter), except a wrong value for ``wrong``."""
    out = {}
    for fid in policy.checklist(svc):
        truth = policy.true_value(sc, fid) or ""
        out[fid] = f"x{truth}9" if fid == wrong else f" {truth.upper()} "
    return out


@dataclass
class Trace:
    """What a channel answered to one script."""

    verdicts: list[Verdict] = field(default_factory=list)
    records: dict[str, str] = field(default_factory=dict)
    fees: int = 0
    success: bool = False


# --------------------------------------------------------------------------- portal
def _post(task: PortalTask, path: str, form: dict[str, str]) -> str:
    resp = task.handle(Request("POST", path, {}, {k: [v] for k, v in form.items()}))
    assert resp.status == 303, (path, resp.status)
    return resp.location or ""


def _sign_in(task: PortalTask) -> None:
    assert _post(task, "/login", {f.id: f.value for f in task.login_facts}) == "/account"


def portal_trace(sc: PhoneScenario, svc: Service, script: Script) -> Trace:
    """Drive the portal's real handlers through ``script``."""
    task = PortalTask(0, 0, sc)
    _sign_in(task)
    tr = Trace()
    here = f"/service/{svc.id}"
    for wrong in script.attempts:
        form = stated_values(sc, svc, wrong)
        if script.fee_yes:
            form["accept_fee"] = "yes"
        before = task.failures
        loc = _post(task, here, form)
        if loc == "/login":
            tr.verdicts.append(Verdict.LOCKED_OUT)
            assert not task.logged_in
            _sign_in(task)  # a new contact
        elif loc == here and task.failures == before + 1:
            tr.verdicts.append(Verdict.MISMATCH)
        elif loc == here and task.notice.startswith("This request has a $"):
            tr.verdicts.append(Verdict.FEE_DECLINED)
        elif loc == here:
            tr.verdicts.append(Verdict.INELIGIBLE)
        elif loc == f"{here}/offer":
            tr.verdicts.append(Verdict.OFFER)
            answer = "yes" if script.offer_yes else "no"
            assert _post(task, f"{here}/offer", {"answer": answer}) == "/account"
        else:
            assert loc == "/account", loc
            tr.verdicts.append(Verdict.GRANT)
        if tr.verdicts[-1] not in (Verdict.MISMATCH, Verdict.LOCKED_OUT):
            break
    tr.records, tr.fees, tr.success = dict(task.records), task.fees, task.judge().success
    return tr


# --------------------------------------------------------------------------- engine
@dataclass
class World:
    """One engine world playing one script (the test is the caller)."""

    k: int
    svc: Service
    si: int
    script: Script
    attempt: int = 0
    phase: str = "request"  # request, talk, dial, done
    offer_made: bool = False
    said_no_to_fee: bool = False
    trace: Trace = field(default_factory=Trace)


def _start_contact(st: dict[str, torch.Tensor], b: int, dept: int) -> None:
    """Put world ``b`` with a rep of ``dept``, the floor with the caller (the routing to a
    department is not policy; the rules of a call from there on are the engine's own)."""
    st["phase"][b], st["dept"][b], st["floor"][b] = REP, dept, FLOOR_ASSISTANT
    st["stim"][b], st["stim_arg"][b], st["hold_left"][b] = STIM_NONE, -1, 0
    st["service"][b], st["pc"][b] = -1, 0


class EngineDriver:
    """Every (scenario, service, script) of a compiled set as a world of one engine batch."""

    def __init__(self, compiled: CompiledPhone) -> None:
        self.c, self.t = compiled, compiled.tables
        self.eng = PhoneEngine(compiled, torch.device("cpu"))
        self.names = {a.name: i for i, a in enumerate(compiled.catalogue)}
        self.worlds = [
            World(k, svc, compiled.services.index(svc.id), script)
            for k, sc in enumerate(compiled.scenarios)
            for svc in sc.policies.services
            for script in scripts_for(sc, svc)
        ]
        B = len(self.worlds)
        self.st = self.eng.empty_state(B)
        self.eng.reset(self.st, torch.ones(B, dtype=torch.bool), torch.arange(B))
        self.st["scenario"] = torch.tensor([w.k for w in self.worlds])
        self.eng.reset_scenario_fields(self.st)
        for b, w in enumerate(self.worlds):
            _start_contact(self.st, b, int(self.t["svc_dept"][w.k, w.si]))
        self.asked: list[str | None] = [None] * B  # what the rep asked each world last

    def run(self, max_steps: int = 80) -> list[Trace]:
        B = len(self.worlds)
        for _ in range(max_steps):
            if all(w.phase == "done" for w in self.worlds):
                break
            acts = torch.full((B,), self.names["wait"], dtype=torch.int64)
            said = torch.full((B,), STATES_KNOWN, dtype=torch.int64)
            for b, w in enumerate(self.worlds):
                acts[b], said[b] = self._act(b, w)
            self.eng.step(self.st, PhoneActions(acts, said))
            msgs = self.st["msgs"].tolist()
            for b, w in enumerate(self.worlds):
                self._observe(b, w, set(msgs[b]))
        assert all(w.phase == "done" for w in self.worlds), "a script did not finish"
        return [self._final(b, w) for b, w in enumerate(self.worlds)]

    def _act(self, b: int, w: World) -> tuple[int, int]:
        """The caller's action in world ``b`` and the id of the value it states (the engine
        alone decides whether it is right)."""
        if w.phase == "request":
            w.phase = "talk"
            return self.names[f"request:{w.svc.id}"], STATES_KNOWN
        if w.phase == "dial":
            listed = next(
                i for i, n in enumerate(self.c.scenarios[w.k].company.numbers) if n.listed
            )
            return self.names[f"dial:{listed}"], STATES_KNOWN
        if w.phase != "talk":
            return self.names["wait"], STATES_KNOWN
        asked = self.asked
        if asked[b] == "fee":
            w.said_no_to_fee = not w.script.fee_yes
            return self.names["say_yes" if w.script.fee_yes else "say_no"], STATES_KNOWN
        if asked[b] == "offer":
            return self.names["say_yes" if w.script.offer_yes else "say_no"], STATES_KNOWN
        fid = asked[b]
        assert fid is not None, f"world {b}: the rep asked nothing ({w})"
        sc = self.c.scenarios[w.k]
        wrong = w.script.attempts[w.attempt] == fid
        value = stated_values(sc, w.svc, w.script.attempts[w.attempt])[fid]
        return self.names[f"provide:{fid}"], self._value_id(sc, fid, value, wrong)

    def _value_id(self, sc: PhoneScenario, fid: str, value: str, wrong: bool) -> int:
        """The id of the value stated for ``fid``: a right one respelled (the engine's
        normalisation must find the truth), a wrong one as another value of the scenario where
        there is one (an id the engine knows, only not this fact's), else the text itself."""
        said = self.eng.value_id(value)
        if not wrong:
            return said
        truth = self.eng.value_id(policy.true_value(sc, fid) or "")
        others = (self.eng.value_id(f.value) for f in sc.user.facts)
        return next((v for v in others if v != truth), said)

    def _observe(self, b: int, w: World, said: set[int]) -> None:
        """Read the company's answer in world ``b`` from what the rep said."""
        t, k, si = self.t, w.k, w.si
        if w.phase == "dial":
            _start_contact(self.st, b, int(t["svc_dept"][k, si]))
            assert int(self.st["mismatches"][b]) == 0  # the new call's own count
            w.phase = "request"
            return
        if w.phase != "talk":
            return
        verdict = None
        if int(t["m_security"][k]) in said:
            verdict = Verdict.LOCKED_OUT
        elif int(t["m_mismatch"][k]) in said:
            verdict = Verdict.MISMATCH
        elif int(t["m_refusal"][k, si]) in said:
            verdict = Verdict.INELIGIBLE
        elif w.said_no_to_fee:
            verdict = Verdict.FEE_DECLINED
        elif int(t["m_offer"][k, si]) in said:
            w.trace.verdicts.append(Verdict.OFFER)
            w.offer_made = True
        elif int(t["m_offer_accepted"][k, si]) in said or int(t["m_done"][k, si]) in said:
            if not w.offer_made:
                verdict = Verdict.GRANT
            w.phase = "done"
        if verdict is not None:
            w.trace.verdicts.append(verdict)
            w.attempt += 1
            if verdict in (Verdict.INELIGIBLE, Verdict.FEE_DECLINED):
                w.phase = "done"
            elif verdict is Verdict.LOCKED_OUT:
                w.phase = "dial"
        self.asked[b] = self._question(k, si, said)

    def _question(self, k: int, si: int, said: set[int]) -> str | None:
        t = self.t
        if int(t["m_fee_q"][k, si]) in said:
            return "fee"
        if int(t["m_offer"][k, si]) in said:
            return "offer"
        facts = self.c.facts
        return next((f for i, f in enumerate(facts) if int(t["m_ask_fact"][k, i]) in said), None)

    def _final(self, b: int, w: World) -> Trace:
        sc = self.c.scenarios[w.k]
        codes = record_codes(self.c, w.k)
        decode = {(r, i): v for (r, v), i in codes.items()}
        w.trace.records = {
            r: decode[(r, int(self.st["records"][b, j]))] for j, r in enumerate(sc.records)
        }
        w.trace.fees = int(self.st["fees"][b])
        w.trace.success = bool(self.eng.success(self.st)[b])
        return w.trace


def record_codes(c: CompiledPhone, k: int) -> dict[tuple[str, str], int]:
    """(record field, value) -> the engine's value number, read back from the tables (initial
    records, grants, offers, goal); a value numbered twice differently fails the test."""
    sc, t = c.scenarios[k], c.tables
    fields = list(sc.records)
    pairs = [(r, v, int(t["rec_init"][k, j])) for j, (r, v) in enumerate(sc.records.items())]
    for svc in sc.policies.services:
        si = c.services.index(svc.id)
        for out in policy.outcomes(svc):
            table = t["offer_val"] if out.via_offer else t["grant_val"]
            pairs += [(r, v, int(table[k, si, fields.index(r)])) for r, v in out.effects.items()]
    pairs += [(r, v, int(t["goal_val"][k, fields.index(r)])) for r, v in sc.goal.records.items()]
    codes: dict[tuple[str, str], int] = {}
    for r, v, i in pairs:
        assert codes.setdefault((r, v), i) == i, (sc.name, r, v)
    assert len({(r, i) for (r, _v), i in codes.items()}) == len(codes), sc.name
    return codes


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module", params=list(SETS))
def compiled(request: pytest.FixtureRequest) -> CompiledPhone:
    return compile_scenarios(SETS[request.param])


def test_portal_and_engine_give_the_same_verdicts(compiled: CompiledPhone) -> None:
    driver = EngineDriver(compiled)
    engine_traces = driver.run()
    kinds: set[Verdict] = set()
    for w, got in zip(driver.worlds, engine_traces, strict=True):
        sc = compiled.scenarios[w.k]
        want = portal_trace(sc, w.svc, w.script)
        where = f"{sc.name} / {w.svc.id} / {w.script}"
        assert got.verdicts == want.verdicts, f"{where}: engine {got} vs portal {want}"
        assert got.records == want.records, where
        assert (got.fees, got.success) == (want.fees, want.success), where
        kinds |= set(got.verdicts)
    if compiled.scenarios[0].name in shipped_names():
        # The shipped set exercises every verdict (the scripts are not vacuous).
        assert kinds == set(Verdict), kinds


def test_lowered_tables_are_the_policy(compiled: CompiledPhone) -> None:
    t, V = compiled.tables, compiled.dims["V"]
    for k, sc in enumerate(compiled.scenarios):
        n = int(t["max_mismatch"][k])
        assert policy.locks_out(sc, n) and not policy.locks_out(sc, n - 1), sc.name
        assert int(t["max_fees"][k]) == sc.goal.max_fees
        for svc in sc.policies.services:
            si = compiled.services.index(svc.id)
            assert bool(t["elig_pass"][k, si]) == policy.eligible(sc, svc), (sc.name, svc.id)
            assert int(t["svc_fee"][k, si]) == policy.fee(svc)
            assert bool(t["has_offer"][k, si]) == policy.offer_made(svc)
            prog = [compiled.facts[int(i)] for i in t["prog_fact"][k, si, :V] if int(i) >= 0]
            assert tuple(prog) == policy.verification_facts(svc)
            el = int(t["prog_fact"][k, si, V + SLOT_ELIG])
            assert (compiled.facts[el] if el >= 0 else None) == policy.eligibility_fact(svc)
            needs = {compiled.facts[i] for i in t["needs_fact"][k, si].nonzero().flatten()}
            assert needs == set(policy.checklist(svc))
        plan = policy.plan_scenario(sc)
        assert plan is not None
        planned = [compiled.services[int(i)] for i in t["plan"][k] if int(i) >= 0]
        assert planned == plan.services, sc.name
        for sid in plan.services:
            si = compiled.services.index(sid)
            assert bool(t["plan_accept_offer"][k, si]) == plan.accept_offer[sid]
            assert bool(t["plan_accept_fee"][k, si]) == plan.accept_fee[sid]


def portal_follows_plan(sc: PhoneScenario) -> bool:
    """The policy's plan carried out through the portal's handlers: does it succeed?"""
    plan = policy.plan_scenario(sc)
    assert plan is not None
    task = PortalTask(0, 0, sc)
    _sign_in(task)
    for sid in plan.services:
        svc = next(s for s in sc.policies.services if s.id == sid)
        form = stated_values(sc, svc, None)
        if plan.accept_fee[sid]:
            form["accept_fee"] = "yes"
        loc = _post(task, f"/service/{sid}", form)
        if loc.endswith("/offer"):
            answer = "yes" if plan.accept_offer[sid] else "no"
            loc = _post(task, loc, {"answer": answer})
        assert loc == "/account", (sc.name, sid, task.notice)
    return task.judge().success


def test_the_plan_succeeds_on_both_channels(compiled: CompiledPhone) -> None:
    engine = oracle_success_rate(compiled, seeds=1)
    portal = [portal_follows_plan(sc) for sc in compiled.scenarios]
    assert portal == [r == 1.0 for r in engine]
    assert all(portal)
