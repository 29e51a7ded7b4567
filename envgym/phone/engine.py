"""The batched phone engine: B customer-service calls stepped at once in torch.

The single source of the phone rules. :class:`PhoneEngine` holds the compiled tables of a
scenario set and implements ``reset`` / ``step`` / ``oracle`` over an explicit state (a dict
of tensors, leading dimension B). Each step is a fixed sequence of masked tensor operations: no
per-world Python loop, so the same code runs 1 or 1,000,000 worlds on CPU or CUDA.

Every random draw (phrasing variant, rep name, hold length, scenario choice) is a hash of
``(world seed, episode, turn, stream)`` (:mod:`envgym.core.rng`), so world ``i`` of a batch
behaves exactly like a single world with the same seed.
"""

from __future__ import annotations

import torch

from envgym.core import rng
from envgym.phone.compiler import (
    A_ASK_ABOUT,
    A_ASK_USER,
    A_DIAL,
    A_GARBLED,
    A_HANGUP,
    A_NO,
    A_PRESS,
    A_PROVIDE,
    A_REPORT,
    A_REQUEST,
    A_WAIT,
    A_YES,
    E_GARBLED,
    E_HOLD,
    E_IVR_KEYS,
    E_NO_MENU,
    E_NOT_ON_CALL,
    E_NOTHING_ASKED,
    E_ON_CALL,
    E_UNKNOWN_NUMBER,
    HOLD,
    IVR,
    MSG_SLOTS,
    OFF,
    REP,
    REWARD_TERMS,
    SLOT_ELIG,
    SLOT_FEE,
    SLOT_GRANT,
    SLOT_OFFER,
    CompiledPhone,
)

# RNG streams (any distinct constants).
_S_SCENARIO, _S_REP, _S_HOLD, _S_VARIANT = 11, 23, 37, 53

State = dict[str, torch.Tensor]


class PhoneEngine:
    """Steps B phone worlds of a compiled scenario set on one device."""

    def __init__(self, compiled: CompiledPhone, device: torch.device) -> None:
        self.c = compiled.to(device)
        self.t = self.c.tables
        self.device = device
        d = compiled.dims
        self.V, self.P, self.F, self.N, self.R = d["V"], d["P"], d["F"], d["N"], d["R"]
        self.K = d["K"]
        cat = compiled.catalogue
        # Catalogue plus one internal action: A_GARBLED (text that could not be parsed).
        self.act_kind = torch.tensor([a.kind for a in cat] + [A_GARBLED], device=device)
        self.act_arg = torch.tensor([a.arg for a in cat] + [0], device=device)
        self.garbled_action = len(cat)
        self.L = compiled.max_tokens
        self.sync_free = False
        # Flat token table: index 0 is a pad; each (message, variant) is a contiguous run.
        tok, ln = compiled.msg_tokens, compiled.msg_len
        M, NV, _ = tok.shape
        flat = [torch.zeros(1, dtype=torch.int32)]
        starts = torch.zeros(M, NV, dtype=torch.int64)
        pos = 1
        for mi in range(M):
            for v in range(NV):
                n = int(ln[mi, v])
                starts[mi, v] = pos
                flat.append(tok[mi, v, :n].cpu())
                pos += n
        self._flat_tokens = torch.cat(flat).to(device)
        self._flat_start = starts.to(device)
        self._positions = torch.arange(self.L, dtype=torch.int64, device=device)[None, :]
        self._scratch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._first = {k: i for i, a in reversed(list(enumerate(cat))) for k in [a.name]}
        self._kind_base = {}
        for i, a in enumerate(cat):
            self._kind_base.setdefault(a.kind, i)

    # ------------------------------------------------------------------ state
    def empty_state(self, B: int) -> State:
        dev, i64 = self.device, torch.int64

        def z(*shape: int, dtype: torch.dtype = i64) -> torch.Tensor:
            return torch.zeros(shape, dtype=dtype, device=dev)

        return {
            "scenario": z(B),
            "seed": z(B),
            "episode": z(B),
            "turn": z(B),
            "phase": z(B),
            "number": z(B) - 1,
            "node": z(B),
            "dept": z(B),
            "hold_left": z(B),
            "rep": z(B),
            "calls": z(B, self.N),
            "total_calls": z(B),
            "known": z(B, self.F, dtype=torch.bool),
            "num_known": z(B, self.N, dtype=torch.bool),
            "verified": z(B, self.F, dtype=torch.bool),
            "mismatches": z(B),
            "service": z(B) - 1,
            "pc": z(B),
            "records": z(B, self.R),
            "fees": z(B),
            "msgs": z(B, MSG_SLOTS) - 1,
            "vars": z(B, MSG_SLOTS),
        }

    def reset(self, st: State, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        """Start a new episode in the masked worlds (in place)."""
        if seeds is not None:
            st["seed"] = torch.where(mask, seeds.to(self.device), st["seed"])
            st["episode"] = torch.where(mask, torch.zeros_like(st["episode"]), st["episode"])
        else:
            st["episode"] = torch.where(mask, st["episode"] + 1, st["episode"])
        K = torch.full_like(st["seed"], self.K)
        sc = torch.where(
            mask, rng.randint(K, st["seed"], st["episode"], _S_SCENARIO), st["scenario"]
        )
        st["scenario"] = sc
        self._reset_episode(st, mask)

    def reset_scenario_fields(self, st: State) -> None:
        """Re-initialise every world's episode for the scenario already in ``st['scenario']``."""
        self._reset_episode(st, torch.ones_like(st["scenario"], dtype=torch.bool))

    def _reset_episode(self, st: State, mask: torch.Tensor) -> None:
        t = self.t
        sc = st["scenario"]
        m1 = mask[:, None]
        zero = torch.zeros_like(st["turn"])
        for key in (
            "turn",
            "phase",
            "node",
            "dept",
            "hold_left",
            "rep",
            "total_calls",
            "mismatches",
            "pc",
            "fees",
        ):
            st[key] = torch.where(mask, zero, st[key])
        for key in ("number", "service"):
            st[key] = torch.where(mask, zero - 1, st[key])
        st["calls"] = torch.where(m1, torch.zeros_like(st["calls"]), st["calls"])
        st["known"] = torch.where(m1, t["fact_known0"][sc], st["known"])
        st["num_known"] = torch.where(m1, t["num_listed"][sc], st["num_known"])
        st["verified"] = torch.where(m1, torch.zeros_like(st["verified"]), st["verified"])
        st["records"] = torch.where(m1, t["rec_init"][sc], st["records"])
        intro = torch.full_like(st["msgs"], -1)
        intro[:, 0] = t["m_intro"][sc]
        st["msgs"] = torch.where(m1, intro, st["msgs"])
        st["vars"] = torch.where(m1, self._variants(st, intro), st["vars"])

    # ------------------------------------------------------------------ helpers
    def _variants(self, st: State, msgs: torch.Tensor) -> torch.Tensor:
        nvar = self.c.msg_nvar[msgs.clamp(min=0)]
        slot = torch.arange(MSG_SLOTS, device=self.device)[None, :]
        return rng.randint(
            nvar,
            st["seed"][:, None],
            st["episode"][:, None],
            st["turn"][:, None],
            slot + _S_VARIANT,
        )

    def tokens(self, st: State) -> torch.Tensor:
        """Token ids of what the assistant heard this step, packed and padded: int32 [B, L].

        Cost is O(B * L): each output position finds its message slot by comparing with the
        slots' cumulative ends, then reads one token from the flat token table. The [B, L]
        intermediates live in reused scratch buffers (fresh multi-MB allocations page-fault on
        every step); only the returned tensor is new.
        """
        msgs, var = st["msgs"], st["vars"]
        B = msgs.shape[0]
        m = msgs.clamp(min=0)
        ln = torch.where(msgs >= 0, self.c.msg_len[m, var], torch.zeros_like(msgs))
        start = self._flat_start[m, var]
        end = torch.cumsum(ln, dim=1)  # [B, S]
        # Per slot: where its tokens start in the flat table, relative to the output position;
        # the extra last slot (past every message) points at the table's leading pad.
        base = torch.cat([start - (end - ln), torch.zeros_like(start[:, :1])], dim=1)
        if self._scratch is None or self._scratch[0].shape[0] != B:
            self._scratch = (
                torch.empty((B, self.L), dtype=torch.int64, device=self.device),
                torch.empty((B, self.L), dtype=torch.int64, device=self.device),
                torch.empty((B, self.L), dtype=torch.bool, device=self.device),
            )
        slot, src, cmp = self._scratch
        p = self._positions  # [1, L] int64
        slot.zero_()
        for j in range(MSG_SLOTS):
            torch.ge(p, end[:, j : j + 1], out=cmp)
            slot.add_(cmp)
        torch.gather(base, 1, slot, out=src)
        src.add_(p)
        torch.eq(slot, MSG_SLOTS, out=cmp)
        src.masked_fill_(cmp, 0)
        return torch.take(self._flat_tokens, src)

    def success(self, st: State) -> torch.Tensor:
        t, sc = self.t, st["scenario"]
        ok = (st["records"] == t["goal_val"][sc]) | ~t["goal_mask"][sc]
        return ok.all(dim=1) & (st["fees"] <= t["max_fees"][sc])

    # ------------------------------------------------------------------ step
    def step(
        self, st: State, actions: torch.Tensor, stated_correct: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Advance every world by one assistant turn (in place); return the transition.

        Args:
            st: the state (modified in place).
            actions: int64 [B] catalogue ids (``garbled_action`` for unparseable text).
            stated_correct: bool [B]: for ``provide`` actions, whether the value stated is the
                true one. Default: the assistant states what it knows, so it is correct iff it
                knows the fact (a fact it doesn't know comes out invented, hence wrong).
        """
        t, dev = self.t, self.device
        B = actions.shape[0]
        sc = st["scenario"]
        kind = self.act_kind[actions]
        arg = self.act_arg[actions]
        ph0 = st["phase"].clone()
        V = self.V
        bi = torch.arange(B, device=dev)

        # Messages are collected in the order the rules speak them and laid into the world's
        # message slots once, at the end of the step (one scatter instead of one per message).
        spoken: list[tuple[torch.Tensor, torch.Tensor]] = []
        err = torch.zeros(B, dtype=torch.int64, device=dev)
        privacy = torch.zeros(B, dtype=torch.float32, device=dev)
        over = torch.zeros(B, dtype=torch.float32, device=dev)
        to_advance = torch.zeros(B, dtype=torch.bool, device=dev)

        def emit(mask: torch.Tensor, mid: torch.Tensor) -> None:
            spoken.append((mask, mid))

        def fail(mask: torch.Tensor, code: int, mid: torch.Tensor) -> None:
            err.masked_fill_(mask, code)
            emit(mask, mid)

        def pending_fact() -> torch.Tensor:
            svc = st["service"]
            pc = st["pc"].clamp(max=self.P - 1)
            f = t["prog_fact"][sc, svc.clamp(min=0), pc]
            return torch.where((svc >= 0) & (st["pc"] <= V + SLOT_ELIG), f, torch.full_like(f, -1))

        def ask_pending(mask: torch.Tensor) -> None:
            """Re-ask whatever the rep is waiting for (a fact, a fee or an offer answer)."""
            svc = st["service"].clamp(min=0)
            pf = pending_fact()
            active = mask & (st["service"] >= 0)
            emit(active & (pf >= 0), t["m_ask_fact"][sc, pf.clamp(min=0)])
            emit(active & (st["pc"] == V + SLOT_FEE), t["m_fee_q"][sc, svc])
            emit(active & (st["pc"] == V + SLOT_OFFER), t["m_offer"][sc, svc])

        def end_service(mask: torch.Tensor) -> None:
            st["service"] = torch.where(mask, torch.full_like(st["service"], -1), st["service"])
            st["pc"] = torch.where(mask, torch.zeros_like(st["pc"]), st["pc"])

        def advance(mask: torch.Tensor) -> None:
            """Run the active request's program until it needs the caller (or completes)."""
            for _ in range(self.P + 1):
                svc = st["service"]
                active = mask & (svc >= 0) & (st["pc"] < self.P)
                s0 = svc.clamp(min=0)
                pc = st["pc"].clamp(max=self.P - 1)
                f = t["prog_fact"][sc, s0, pc]
                ver = st["verified"][bi, f.clamp(min=0)] & (f >= 0)
                skip_v = (st["pc"] < V) & ((f < 0) | ver)
                is_elig = st["pc"] == V + SLOT_ELIG
                elig_known = is_elig & ((f < 0) | ver)
                elig_fail = elig_known & (f >= 0) & ~t["elig_pass"][sc, s0]
                skip_f = (st["pc"] == V + SLOT_FEE) & (t["svc_fee"][sc, s0] == 0)
                skip_o = (st["pc"] == V + SLOT_OFFER) & ~t["has_offer"][sc, s0]
                refuse = active & elig_fail
                emit(refuse, t["m_refusal"][sc, s0])
                end_service(refuse)
                skip = active & ~refuse & (skip_v | (elig_known & ~elig_fail) | skip_f | skip_o)
                if not self.sync_free and not bool(skip.any()):
                    break  # saves work on CPU; on CUDA the loop runs in full, without a sync
                st["pc"] = torch.where(skip, st["pc"] + 1, st["pc"])
            svc = st["service"]
            s0 = svc.clamp(min=0)
            active = mask & (svc >= 0)
            grant = active & (st["pc"] == V + SLOT_GRANT)
            gv = t["grant_val"][sc, s0]
            st["records"] = torch.where(grant[:, None] & (gv >= 0), gv, st["records"])
            st["fees"] = torch.where(grant, st["fees"] + t["svc_fee"][sc, s0], st["fees"])
            emit(grant, t["m_done"][sc, s0])
            end_service(grant)
            ask_pending(active & ~grant)

        def connect(mask: torch.Tensor) -> None:
            """A rep picks up: greet, then carry on with a transferred request."""
            nonlocal to_advance
            st["phase"] = torch.where(mask, torch.full_like(st["phase"], REP), st["phase"])
            d = st["dept"].clamp(min=0)
            svc = st["service"]
            emit(mask & (svc < 0), t["m_greet"][sc, d, st["rep"]])
            emit(mask & (svc >= 0), t["m_greet_transfer"][sc, d, st["rep"], svc.clamp(min=0)])
            to_advance |= mask & (svc >= 0)

        def enter_queue(mask: torch.Tensor, dept: torch.Tensor) -> None:
            d = dept.clamp(min=0)
            st["dept"] = torch.where(mask, d, st["dept"])
            lo, hi = t["dept_hold_lo"][sc, d], t["dept_hold_hi"][sc, d]
            draw = lo + rng.randint(hi - lo + 1, st["seed"], st["episode"], st["turn"], _S_HOLD)
            st["hold_left"] = torch.where(mask, draw, st["hold_left"])
            # A new queue, a new rep (a transfer reaches someone else).
            rep_draw = rng.randint(t["n_reps"][sc], st["seed"], st["episode"], st["turn"], _S_REP)
            st["rep"] = torch.where(mask, rep_draw, st["rep"])
            st["phase"] = torch.where(mask, torch.full_like(st["phase"], HOLD), st["phase"])
            waits = mask & (draw > 0)
            emit(waits, t["m_hold"][sc, d])
            connect(mask & (draw == 0))

        def follow(mask: torch.Tensor, kind_: torch.Tensor, rid: torch.Tensor) -> None:
            """Follow an IVR route: 1 = menu node, 2 = department queue."""
            to_node = mask & (kind_ == 1)
            st["phase"] = torch.where(to_node, torch.full_like(st["phase"], IVR), st["phase"])
            st["node"] = torch.where(to_node, rid.clamp(min=0), st["node"])
            emit(to_node, t["m_ivr_prompt"][sc, st["node"]])
            enter_queue(mask & (kind_ == 2), rid)

        def end_call(mask: torch.Tensor) -> None:
            st["phase"] = torch.where(mask, torch.full_like(st["phase"], OFF), st["phase"])
            st["number"] = torch.where(mask, torch.full_like(st["number"], -1), st["number"])
            end_service(mask)

        off, on_ivr, on_hold, on_rep = ph0 == OFF, ph0 == IVR, ph0 == HOLD, ph0 == REP
        speech = (
            (kind == A_YES)
            | (kind == A_NO)
            | (kind == A_REQUEST)
            | (kind == A_ASK_ABOUT)
            | (kind == A_PROVIDE)
        )

        # --- report: the episode ends
        terminated = kind == A_REPORT
        emit(terminated, t["m_sys_report"][sc])

        # --- ask the user for a fact (in every phase: the user is beside us; with
        # constraints.user_reachable == "off_call", only between calls)
        asked = kind == A_ASK_USER
        m = asked & (off | t["user_on_call"][sc])
        emit(asked & ~m, t["m_sys_user_away"][sc])
        exists = t["fact_exists"][sc, arg.clamp(max=self.F - 1)] & m
        st["known"][bi, arg.clamp(max=self.F - 1)] |= exists
        emit(exists, t["m_user_says"][sc, arg.clamp(max=self.F - 1)])
        emit(m & ~exists, t["m_user_unknown"][sc])

        # --- text that could not be parsed
        m = kind == A_GARBLED
        err.masked_fill_(m, E_GARBLED)
        emit(m & on_rep, t["m_not_understood"][sc])
        emit(m & on_ivr, t["m_ivr_no_speech"][sc])
        emit(m & on_hold, t["m_sys_nobody"][sc])
        emit(m & off, t["m_user_unknown"][sc])
        ask_pending(m & on_rep)

        # --- dial
        m = kind == A_DIAL
        fail(m & ~off, E_ON_CALL, t["m_sys_on_call"][sc])
        num = arg.clamp(max=self.N - 1)
        listed = (arg < t["n_numbers"][sc]) & st["num_known"][bi, num]
        fail(m & off & ~listed, E_UNKNOWN_NUMBER, t["m_sys_unknown_number"][sc])
        dial = m & off & listed
        st["calls"][bi, num] += dial.long()
        st["total_calls"] = st["total_calls"] + dial.long()
        over = (dial & (st["total_calls"] > t["call_budget"][sc])).float()
        ncalls = st["calls"][bi, num]
        refused = dial & (ncalls > t["max_calls_per_number"][sc])
        emit(refused, t["m_sys_call_refused"][sc])
        connects = dial & ~refused
        emit(connects & t["hints"][sc], t["m_sys_hint"][sc, (ncalls - 1).clamp(0, 9)])
        st["number"] = torch.where(connects, num, st["number"])
        st["verified"] = torch.where(
            connects[:, None], torch.zeros_like(st["verified"]), st["verified"]
        )
        st["mismatches"] = torch.where(
            connects, torch.zeros_like(st["mismatches"]), st["mismatches"]
        )
        end_service(connects)
        follow(connects, t["num_route_kind"][sc, num], t["num_route_id"][sc, num])

        # --- press a key
        m = kind == A_PRESS
        fail(m & off, E_NOT_ON_CALL, t["m_sys_not_on_call"][sc])
        fail(m & on_hold, E_NO_MENU, t["m_sys_nobody"][sc])
        fail(m & on_rep, E_NO_MENU, t["m_not_understood"][sc])
        ask_pending(m & on_rep)
        press = m & on_ivr
        node = st["node"]
        key = arg.clamp(max=11)
        ok_kind = t["ivr_opt_kind"][sc, node, key]
        bad_key = press & (ok_kind == 0)
        emit(bad_key, t["m_invalid_key"][sc])
        emit(bad_key, t["m_ivr_prompt"][sc, node])
        follow(press & (ok_kind > 0), ok_kind, t["ivr_opt_id"][sc, node, key])

        # --- wait
        m = kind == A_WAIT
        emit(m & off, t["m_sys_idle"][sc])
        w_ivr = m & on_ivr
        to_kind = t["ivr_to_kind"][sc, node]
        emit(w_ivr & (to_kind == 0), t["m_ivr_prompt"][sc, node])
        follow(w_ivr & (to_kind > 0), to_kind, t["ivr_to_id"][sc, node])
        w_hold = m & on_hold
        st["hold_left"] = torch.where(w_hold, (st["hold_left"] - 1).clamp(min=0), st["hold_left"])
        picked = w_hold & (st["hold_left"] == 0)
        emit(w_hold & ~picked, t["m_still_hold"][sc])
        connect(picked)
        emit(m & on_rep, t["m_still_there"][sc])
        ask_pending(m & on_rep)

        # --- hang up
        m = kind == A_HANGUP
        fail(m & off, E_NOT_ON_CALL, t["m_sys_not_on_call"][sc])
        hang = m & ~off
        end_call(hang)
        emit(hang, t["m_sys_call_ended"][sc])

        # --- speech when nobody (or only a machine) listens
        fail(speech & off, E_NOT_ON_CALL, t["m_sys_not_on_call"][sc])
        fail(speech & on_ivr, E_IVR_KEYS, t["m_ivr_no_speech"][sc])
        emit(speech & on_ivr, t["m_ivr_prompt"][sc, node])
        fail(speech & on_hold, E_HOLD, t["m_sys_nobody"][sc])
        talk = speech & on_rep
        svc_arg = arg.clamp(max=max(len(self.c.services) - 1, 0))

        # request a service
        m = talk & (kind == A_REQUEST)
        s_exists = t["svc_exists"][sc, svc_arg]
        emit(m & ~s_exists, t["m_cannot_help"][sc])
        s_dept = t["svc_dept"][sc, svc_arg]
        here = m & s_exists & (s_dept == st["dept"])
        elsewhere = m & s_exists & (s_dept != st["dept"])
        transfers = t["dept_transfers"][sc, st["dept"]]
        st["service"] = torch.where(here | (elsewhere & transfers), svc_arg, st["service"])
        st["pc"] = torch.where(here | (elsewhere & transfers), torch.zeros_like(st["pc"]), st["pc"])
        to_advance |= here
        xfer = elsewhere & transfers
        emit(xfer, t["m_transfer"][sc, s_dept.clamp(min=0)])
        enter_queue(xfer, s_dept)
        redirect = elsewhere & ~transfers
        emit(redirect, t["m_call_other"][sc, svc_arg])
        other = t["svc_other_number"][sc, svc_arg]
        noted = redirect & (other >= 0)
        st["num_known"][bi, other.clamp(min=0)] |= noted
        emit(noted, t["m_sys_number_noted"][sc, other.clamp(min=0)])

        # ask what a request needs
        m = talk & (kind == A_ASK_ABOUT)
        emit(m & s_exists, t["m_explain"][sc, svc_arg])
        emit(m & ~s_exists, t["m_cannot_help"][sc])
        ask_pending(m)

        # provide a fact
        m = talk & (kind == A_PROVIDE)
        f = arg.clamp(max=self.F - 1)
        correct_default = st["known"][bi, f] & t["fact_exists"][sc, f]
        correct = (
            correct_default
            if stated_correct is None
            else (stated_correct.to(dev) & t["fact_exists"][sc, f])
        )
        pf = pending_fact()
        answers = m & (pf == f)
        unasked = m & (pf != f)
        privacy = privacy + (unasked & correct & t["fact_sensitive"][sc, f]).float()
        emit(unasked, t["m_unrequested"][sc])
        ask_pending(unasked)
        right = answers & correct
        wrong = answers & ~correct
        st["verified"][bi, f] |= right
        at_elig = st["pc"] == V + SLOT_ELIG
        s0 = st["service"].clamp(min=0)
        eligible = right & at_elig & t["elig_pass"][sc, s0]
        refused_e = right & at_elig & ~t["elig_pass"][sc, s0]
        emit(right & ~at_elig, t["m_verified"][sc])
        emit(eligible, t["m_eligible"][sc])
        emit(refused_e, t["m_refusal"][sc, s0])
        end_service(refused_e)
        moved = right & ~refused_e
        st["pc"] = torch.where(moved, st["pc"] + 1, st["pc"])
        to_advance |= moved
        st["mismatches"] = st["mismatches"] + wrong.long()
        lock = wrong & (st["mismatches"] >= t["max_mismatch"][sc])
        emit(lock, t["m_security"][sc])
        end_call(lock)
        emit(lock, t["m_sys_rep_hung_up"][sc])
        emit(wrong & ~lock, t["m_mismatch"][sc])
        ask_pending(wrong & ~lock)

        # yes / no
        m = talk & ((kind == A_YES) | (kind == A_NO))
        yes = kind == A_YES
        s0 = st["service"].clamp(min=0)
        at_fee = m & (st["service"] >= 0) & (st["pc"] == V + SLOT_FEE)
        at_offer = m & (st["service"] >= 0) & (st["pc"] == V + SLOT_OFFER)
        nothing = m & ~at_fee & ~at_offer
        fail(nothing, E_NOTHING_ASKED, t["m_not_understood"][sc])
        ask_pending(nothing)
        st["pc"] = torch.where(at_fee & yes, st["pc"] + 1, st["pc"])
        declined_fee = at_fee & ~yes
        emit(declined_fee, t["m_offer_declined"][sc])
        end_service(declined_fee)
        took_offer = at_offer & yes
        ov = t["offer_val"][sc, s0]
        st["records"] = torch.where(took_offer[:, None] & (ov >= 0), ov, st["records"])
        emit(took_offer, t["m_offer_accepted"][sc, s0])
        end_service(took_offer)
        declined_offer = at_offer & ~yes
        emit(declined_offer, t["m_offer_declined"][sc])
        st["pc"] = torch.where(declined_offer, st["pc"] + 1, st["pc"])
        to_advance |= (at_fee & yes) | declined_offer
        # A request's program always speaks last in a step, so every world that needs it is
        # advanced once, here, instead of once per branch.
        advance(to_advance)

        # --- bookkeeping, reward, episode end
        said = torch.stack([m for m, _ in spoken])  # [E, B]
        mids = torch.stack([i for _, i in spoken])
        said &= mids >= 0
        pos = torch.cumsum(said.long(), dim=0) - 1  # each message's slot in its world
        keep = said & (pos < MSG_SLOTS)
        slot = torch.where(keep, pos, torch.full_like(pos, MSG_SLOTS))  # extra column: discard
        msgs = torch.full((B, MSG_SLOTS + 1), -1, dtype=torch.int64, device=dev)
        msgs.scatter_(1, slot.T, mids.T)  # what lands in the discard column doesn't matter
        msgs = msgs[:, :MSG_SLOTS].contiguous()
        st["msgs"] = msgs
        st["vars"] = self._variants(st, msgs)
        st["turn"] = st["turn"] + 1
        truncated = (st["turn"] >= t["max_turns"][sc]) & ~terminated
        success = self.success(st)
        w = t["w"][sc]
        invalid = (err != 0).float()
        ended = (terminated | truncated).float()
        terms = {
            "goal": w[:, 0] * success.float() * ended,
            "turn_cost": -w[:, 1] * torch.ones_like(ended),
            "privacy_violation": -w[:, 2] * privacy,
            "over_call_budget": -w[:, 3] * over,
            "invalid_action": -w[:, 4] * invalid,
        }
        assert tuple(terms) == REWARD_TERMS
        reward = (
            terms["goal"]
            + terms["turn_cost"]
            + terms["privacy_violation"]
            + terms["over_call_budget"]
            + terms["invalid_action"]
        )
        return {
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            "success": success,
            "action_error": err,
            "reward_terms": terms,
        }

    # ------------------------------------------------------------------ oracle
    def oracle(self, st: State) -> torch.Tensor:
        """A catalogue action per world that makes progress toward the goal.

        Plans over the compiled tables: gather the facts the next planned request needs from
        the user, dial the number that reaches its department, navigate the IVR, wait on hold,
        request the service, answer the rep's questions, accept or decline fees and offers as
        the goal requires, and report once the records satisfy the goal.
        """
        t, dev = self.t, self.device
        sc = st["scenario"]
        B = sc.shape[0]
        bi = torch.arange(B, device=dev)
        base = self._kind_base
        V = self.V

        plan = t["plan"][sc]  # [B, 3]
        p0 = plan.clamp(min=0)
        gval = t["grant_val"][sc[:, None], p0]  # [B, 3, R]
        oval = t["offer_val"][sc[:, None], p0]
        use_offer = t["plan_accept_offer"][sc[:, None], p0]
        target = torch.where(use_offer[..., None], oval, gval)
        rec = st["records"][:, None, :]
        sat = ((target < 0) | (rec == target)).all(dim=2) | (plan < 0)
        first_open = (
            torch.where(
                ~sat, torch.arange(3, device=dev)[None, :].expand(B, 3), torch.full_like(plan, 3)
            )
            .min(dim=1)
            .values
        )
        s_star = plan[bi, first_open.clamp(max=2)].clamp(min=0)
        done = self.success(st) | (first_open >= 3)

        need = t["needs_fact"][sc, s_star] & ~st["known"]  # [B, F]
        has_need = need.any(dim=1)
        first_need = torch.argmax(need.long(), dim=1)

        a = torch.full((B,), base[A_WAIT], dtype=torch.int64, device=dev)
        phase = st["phase"]

        # off the call: dial the number for the next request
        num = t["oracle_number"][sc, s_star]
        alt = t["oracle_number_alt"][sc, s_star]
        use_alt = (
            (alt >= 0)
            & st["num_known"][bi, alt.clamp(min=0)]
            & ~t["num_listed"][sc, alt.clamp(min=0)]
        )
        num = torch.where(use_alt, alt, num).clamp(min=0)
        a = torch.where(phase == OFF, base[A_DIAL] + num, a)

        # in the IVR: press toward the entry department (or the service's, after a redirect)
        entry = torch.where(use_alt, t["svc_dept"][sc, s_star], t["oracle_entry_dept"][sc, s_star])
        key = t["ivr_key_toward"][sc, st["node"], entry.clamp(min=0)]
        a = torch.where((phase == IVR) & (key >= 0), base[A_PRESS] + key.clamp(min=0), a)
        a = torch.where((phase == IVR) & (key < 0), torch.full_like(a, base[A_HANGUP]), a)

        # with a rep
        on_rep = phase == REP
        svc = st["service"]
        here = t["svc_dept"][sc, s_star] == st["dept"]
        transfers = t["dept_transfers"][sc, st["dept"]]
        told = st["num_known"][bi, alt.clamp(min=0)] & (alt >= 0)
        request = on_rep & (svc != s_star) & (here | transfers | ~told)
        a = torch.where(request, base[A_REQUEST] + s_star, a)
        a = torch.where(
            on_rep & (svc != s_star) & ~(here | transfers | ~told),
            torch.full_like(a, base[A_HANGUP]),
            a,
        )
        working = on_rep & (svc == s_star)
        pc = st["pc"]
        pf = t["prog_fact"][sc, s_star, pc.clamp(max=self.P - 1)]
        a = torch.where(
            working & (pc <= V + SLOT_ELIG) & (pf >= 0), base[A_PROVIDE] + pf.clamp(min=0), a
        )
        fee_ok = t["plan_accept_fee"][sc, s_star]
        yes_no = torch.where(fee_ok, base[A_YES], base[A_NO])
        a = torch.where(working & (pc == V + SLOT_FEE), yes_no, a)
        offer_ok = t["plan_accept_offer"][sc, s_star]
        a = torch.where(
            working & (pc == V + SLOT_OFFER), torch.where(offer_ok, base[A_YES], base[A_NO]), a
        )

        # facts first, and report when done (both override the above)
        reachable = (phase == OFF) | t["user_on_call"][sc]
        a = torch.where(has_need & ~(phase == HOLD) & reachable, base[A_ASK_USER] + first_need, a)
        a = torch.where(done, torch.full_like(a, base[A_REPORT]), a)
        return a


def oracle_success_rate(compiled: CompiledPhone, seeds: int = 8) -> list[float]:
    """Per scenario of ``compiled``: the oracle's success rate over ``seeds`` seeded episodes.

    Proves a scenario solvable *within its turn limit* under the seeded variation (hold
    lengths, reps), which the compile-time planner alone doesn't check.
    """
    K = compiled.dims["K"]
    B = K * seeds
    eng = PhoneEngine(compiled, torch.device("cpu"))
    st = eng.empty_state(B)
    eng.reset(st, torch.ones(B, dtype=torch.bool), torch.arange(B, dtype=torch.int64))
    # Pin world b to scenario b % K (the reset drew one at random).
    st["scenario"] = torch.arange(B) % K
    eng.reset_scenario_fields(st)
    done = torch.zeros(B, dtype=torch.bool)
    won = torch.zeros(B, dtype=torch.bool)
    horizon = int(compiled.tables["max_turns"].max())
    for _ in range(horizon):
        out = eng.step(st, eng.oracle(st))
        end = (out["terminated"] | out["truncated"]) & ~done
        won |= end & out["success"]
        done |= end
        if bool(done.all()):
            break
    return [float(won[k::K].float().mean()) for k in range(K)]
