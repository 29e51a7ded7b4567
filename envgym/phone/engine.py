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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from envgym.core import rng
from envgym.core.vector import SMALL, true_rows
from envgym.phone.compiler import CompiledPhone, build_rep_catalogue
from envgym.phone.names import (
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
    ALL_REWARD_TERMS,
    E_GARBLED,
    E_HOLD,
    E_IVR_KEYS,
    E_NO_MENU,
    E_NOT_ON_CALL,
    E_NOTHING_ASKED,
    E_ON_CALL,
    E_UNKNOWN_NUMBER,
    FLOOR_ASSISTANT,
    FLOOR_REP,
    FLOOR_USER,
    HOLD,
    IVR,
    MSG_SLOTS,
    OFF,
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
    REP,
    REP_REWARD_TERMS,
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
    SUBGOAL_SHARE,
    SUBGOALS,
    U_ANSWER,
    U_DONT_KNOW,
    U_REFUSE,
    ActionKind,
)
from envgym.phone.packing import MessagePacker
from envgym.phone.tables import PhoneTables, at, copy_rows, pick, present
from envgym.phone.text import normalize_value

# RNG streams (any distinct constants).
_S_SCENARIO, _S_REP, _S_HOLD, _S_VARIANT = 11, 23, 37, 53

State = dict[str, torch.Tensor]

_RESET_ZERO = (
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
    "floor",
    "stim",
    "violations",
)
"""The per-world counters and ids an episode starts at 0."""

FEW_ROWS = 0.5
"""From ``SMALL`` worlds on, a rule that acts in at most this fraction of the worlds runs over
those worlds alone (:meth:`Turn.rows`: fewer bytes per op, a gather and a write-back more)."""

_TURN_INPUTS = (
    "kind",
    "arg",
    "off",
    "on_ivr",
    "on_hold",
    "on_rep",
    "speech",
    "floor0",
    "stated_value",
)
"""A :class:`Turn`'s per-world inputs, as of the step's start (the rules only read them)."""
_TALLIES = ("err", "rep_err", "privacy", "over", "forbidden", "false_ver", "wrongful")
"""The step's per-world tallies, which the rules write (a sub-turn's go back in ``merge``)."""

STATES_KNOWN = -1
"""A :attr:`PhoneActions.stated_value` entry: this world's assistant states what it knows (no
value id is -1: :meth:`PhoneEngine.value_id` gives ids from 0, and -2 for a value no fact has)."""


class GoalRows(NamedTuple):
    """Each world's records against its scenario's goal (:meth:`PhoneEngine.goal_rows`)."""

    held: torch.Tensor
    """bool [B, R]: the record holds its goal value."""
    constrained: torch.Tensor
    """bool [B, R]: the goal constrains the record."""


@dataclass(frozen=True)
class PhoneActions:
    """One step's inputs, explicit (:meth:`PhoneEngine.step`; ``PhoneVectorEnv.step`` takes
    one too). Whether a stated value is correct is the engine's decision alone: the caller
    passes what was said."""

    assistant: torch.Tensor
    """int64 [B] assistant catalogue ids (``garbled_action``: text that could not be parsed)."""
    stated_value: torch.Tensor | None = None
    """int64 [B], for ``provide``: the stated value's id (:meth:`PhoneEngine.value_id`), or
    ``STATES_KNOWN`` in worlds that state what they know (a fact the assistant doesn't know
    comes out invented); None: every world states what it knows."""
    rep: torch.Tensor | None = None
    """int64 [B] rep catalogue ids of a learned rep (None: the scripted rep)."""
    user: torch.Tensor | None = None
    """int64 [B] user action ids of a learned user (None: the scripted user)."""


class PhoneEngine:
    """Steps B phone worlds of a compiled scenario set on one device."""

    REP_MOVES_PER_STEP = 3
    """Most moves the scripted rep makes in one step: a transfer, the next rep's greeting,
    then going on with the transferred request."""
    REP_WEIGHTS = {"forbidden_grant": 1.0, "false_verification": 1.0, "wrongful_refusal": 0.5}
    """Penalty weights of the rep's policy reward terms (three-party mode)."""

    def __init__(self, compiled: CompiledPhone, device: torch.device) -> None:
        self.c = compiled.to(device)
        self.t = PhoneTables.from_dict(self.c.tables)
        """The compiled tables, typed (:class:`envgym.phone.tables.PhoneTables`)."""
        self.device = device
        d = compiled.dims
        self.V, self.P, self.F, self.N, self.R = d["V"], d["P"], d["F"], d["N"], d["R"]
        self.K = d["K"]
        cat = compiled.catalogue
        # Catalogue plus one internal action: A_GARBLED (text that could not be parsed).
        self.act_kind = torch.tensor([a.kind for a in cat] + [A_GARBLED], device=device)
        self.act_arg = torch.tensor([a.arg for a in cat] + [0], device=device)
        self.act_speech = torch.isin(
            self.act_kind,
            torch.tensor([A_YES, A_NO, A_REQUEST, A_ASK_ABOUT, A_PROVIDE], device=device),
        )
        """bool [A + 1]: the catalogue actions that are speech to the rep (``Turn.speech``)."""
        self._kind_sets: dict[tuple[int, ...], torch.Tensor] = {}
        """bool [number of kinds] per set of action kinds (``_assistant_rule``'s): whether a
        kind is in the set (one gather for a world's "chose one of these"), made on first use."""
        self.garbled_action = len(cat)
        self.L = compiled.max_tokens
        self.sync_free = False
        self.packer = MessagePacker(compiled.msg_tokens.to(device), compiled.msg_len, self.L)
        """The message-id gather table and the token packing (:mod:`envgym.phone.packing`)."""
        self._positions = torch.arange(self.L, dtype=torch.int64, device=device)[None, :]
        self._first = {k: i for i, a in reversed(list(enumerate(cat))) for k in [a.name]}
        self._kind_base = {}
        for i, a in enumerate(cat):
            self._kind_base.setdefault(a.kind, i)
        # The rep's catalogue (three-party mode; the scripted rep picks from it too).
        self.rep_catalogue = build_rep_catalogue(compiled.facts)
        self.rep_kind = torch.tensor([a.kind for a in self.rep_catalogue], device=device)
        self.rep_arg = torch.tensor([a.arg for a in self.rep_catalogue], device=device)
        self._rep_ask_base = next(i for i, a in enumerate(self.rep_catalogue) if a.kind == R_ASK)
        self.level_lo = torch.zeros(1, dtype=torch.int64, device=device)
        self.level_n = torch.full((1,), self.K, dtype=torch.int64, device=device)
        """Curriculum levels: level ``j`` draws from scenarios ``level_lo[j] .. +level_n[j]-1``
        (:meth:`set_level_blocks`; by default one level, the whole set)."""
        self.reward_mode = "costs"
        """``"sparse"`` (goal only), ``"costs"`` (goal and per-step costs: the default) or
        ``"shaped"`` (costs plus the once-per-episode sub-goal terms)."""
        self.party_rewards = False
        """Also compute the rep's and the user's rewards, success and action errors (the
        ``rep_*`` and ``user_*`` outputs of :meth:`step`; the three-party face sets it)."""
        self._init_mask_tables()
        self._init_subgoal_tables()
        self._init_noise_table()
        self._init_fact_values()

    def _init_fact_values(self) -> None:
        """Every fact value of the set, normalised as reps compare them, as an id; per
        scenario and fact, the true value's id (-1: the user doesn't have the fact)."""
        ids: dict[str, int] = {}
        true = torch.full((self.K, self.F), -1, dtype=torch.int64)
        for k, sc in enumerate(self.c.scenarios):
            for fact in sc.user.facts:
                if fact.id in self.c.facts:
                    v = ids.setdefault(normalize_value(fact.value), len(ids))
                    true[k, self.c.facts.index(fact.id)] = v
        self._value_ids = ids
        self._fact_value = true.to(self.device)

    def value_id(self, text: str) -> int:
        """The id of a stated value for :attr:`PhoneActions.stated_value`: the rep compares
        values without case, spaces or punctuation; a value no fact has is -2 (never true)."""
        return self._value_ids.get(normalize_value(text), -2)

    def set_level_blocks(self, lo: torch.Tensor, n: torch.Tensor) -> None:
        """Curriculum levels: level ``j`` draws its scenarios from ``lo[j] .. lo[j]+n[j]-1``."""
        if bool(((lo < 0) | (n < 1) | (lo + n > self.K)).any()):
            raise ValueError("level blocks must lie inside the compiled set")
        self.level_lo, self.level_n = lo.to(self.device), n.to(self.device)

    def structured(self, st: State) -> dict[str, torch.Tensor]:
        """The structured observation fields: what the rep asks for now (``pending_fact``:
        fact id + 1, 0 for nothing), the department of the rep on the line (id + 1, 0 when
        not with a rep), the facts verified on this call, and whether a fee (column 0) or an
        offer (column 1) question waits for a yes or no."""
        rep = st["phase"] == REP
        pc, active = st["pc"], st["service"] >= 0
        return {
            "pending_fact": self.pending_fact(st) + 1,
            "department": torch.where(rep, st["dept"] + 1, 0),
            "verification": st["verified"].to(torch.int8),
            "offer_pending": torch.stack(
                [rep & active & (pc == self.V + k) for k in (SLOT_FEE, SLOT_OFFER)], dim=1
            ).to(torch.int8),
        }

    def noisy_slots(self, msgs: torch.Tensor) -> torch.Tensor:
        """bool [B, S]: which message slots hold a message whose content is a seeded draw."""
        return at(self._noisy_msg, msgs.clamp(min=0)) & (msgs >= 0)

    def noise_mask(self, msgs: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """bool [B, L], aligned with :meth:`tokens` of the same messages: True on the tokens
        of messages whose content is a seeded draw (a phrasing variant, a rep's name in a
        greeting, whether a hold goes on or a rep picks up)."""
        noisy = self.noisy_slots(msgs)  # [B, S]
        m = msgs.clamp(min=0)
        ln = torch.where(msgs >= 0, at(self.c.msg_len, m, var), torch.zeros_like(msgs))
        end = torch.cumsum(ln, dim=1)
        slot = (self._positions[:, :, None] >= end[:, None, :]).sum(dim=2)  # [B, L]
        padded = torch.cat([noisy, torch.zeros_like(noisy[:, :1])], dim=1)
        return torch.gather(padded, 1, slot)

    def _init_noise_table(self) -> None:
        t = self.t
        M = self.c.msg_nvar.shape[0]
        noisy = self.c.msg_nvar > 1
        extra = torch.zeros(M, dtype=torch.bool, device=self.device)
        if bool((t.n_reps > 1).any()):
            extra[t.m_greet.flatten().clamp(min=0, max=M - 1)] = True
            extra[t.m_greet_transfer.flatten().clamp(min=0, max=M - 1)] = True
        if bool((t.dept_hold_hi > t.dept_hold_lo).any()):
            extra[t.m_still_hold.flatten().clamp(min=0, max=M - 1)] = True
            extra[t.m_greet.flatten().clamp(min=0, max=M - 1)] = True
        self._noisy_msg = noisy | extra

    def _init_mask_tables(self) -> None:
        """Column ranges of the catalogue per action kind (the catalogue is grouped by kind)."""
        kinds = self.act_kind[: self.garbled_action].cpu()
        args = self.act_arg[: self.garbled_action].cpu()

        def cols(kind: int) -> tuple[slice, torch.Tensor]:
            idx = torch.nonzero(kinds == kind).flatten()
            lo, hi = (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 0)
            assert hi - lo == len(idx), "the catalogue must group actions by kind"
            return slice(lo, hi), args[lo:hi].to(self.device)

        # Every kind the catalogue holds: all but the garbled action, the last kind.
        self._cols = {k: cols(k) for k in range(A_GARBLED)}
        self._cols_identity = {
            k: bool(torch.equal(a.cpu(), torch.arange(len(a)))) for k, (_, a) in self._cols.items()
        }
        # The kinds in column order (the action mask is their column blocks laid side by side).
        self._col_order = sorted(
            (k for k, (c, _) in self._cols.items() if c.stop > c.start),
            key=lambda k: self._cols[k][0].start,
        )
        assert sum(self._cols[k][0].stop - self._cols[k][0].start for k in self._col_order) == len(
            kinds
        ), "the catalogue's kinds must cover its columns"
        wait = self._cols[A_WAIT][0]
        assert wait.stop - wait.start == 1, "the catalogue must hold one wait action"
        self._wait_col = wait.start
        # provide:f's column per fact f (the wait column where the catalogue has none).
        provide = torch.full((self.F,), wait.start, dtype=torch.int64)
        c, facts = self._cols[A_PROVIDE]
        provide[facts.cpu()] = torch.arange(c.start, c.stop)
        self._provide_col = provide.to(self.device)
        self._init_static_mask()

    def _init_static_mask(self) -> None:
        """The action mask's part that depends only on the scenario, the phase and (in a
        menu) the menu's node, as a table of rows (:meth:`action_mask` gathers one per world).

        Per scenario ``R = NODES + 3`` rows: off the call, in menu node ``0 .. NODES - 1``, on
        hold, with a rep (``_phase_row[phase] + node`` in a menu); one last row for the worlds
        where the assistant doesn't hold the floor (only ``wait``). Each row holds the mask of a
        world in that place with nothing known yet: the columns that depend on the call's
        progress (dial, ask_user, provide, yes/no) are narrowed or set per step."""
        t = self.t
        has_key = t.ivr_opt_kind > 0  # [K, NODES, 12]
        K, NODES = has_key.shape[:2]
        place = [(OFF, 0), *((IVR, n) for n in range(NODES)), (HOLD, 0), (REP, 0)]
        self._rows_per_scenario = len(place)
        self._phase_row = torch.tensor(
            [next(i for i, (p, _) in enumerate(place) if p == ph) for ph in (OFF, IVR, HOLD, REP)],
            device=self.device,
        )
        dev = self.device
        sc = torch.arange(K, device=dev).repeat_interleave(len(place))
        ph = torch.tensor([p for p, _ in place], device=dev).repeat(K)[:, None]
        node = torch.tensor([n for _, n in place], device=dev).repeat(K)
        off, ivr, rep = ph == OFF, ph == IVR, ph == REP
        svcs = t.svc_exists.index_select(0, sc)
        listed = self._cols[A_DIAL][1][None, :] < t.n_numbers.index_select(0, sc)[:, None]
        none = torch.zeros_like(off)
        blocks = {
            A_WAIT: torch.ones_like(off),
            A_REPORT: torch.ones_like(off),
            A_HANGUP: ~off,
            A_YES: none,
            A_NO: none,
            A_DIAL: off & listed,
            A_PRESS: ivr & self._columns(has_key[sc, node], A_PRESS),
            A_REQUEST: rep & self._columns(svcs, A_REQUEST),
            A_ASK_ABOUT: rep & self._columns(svcs, A_ASK_ABOUT),
            A_PROVIDE: none.expand(
                -1, self._cols[A_PROVIDE][0].stop - self._cols[A_PROVIDE][0].start
            ),
            A_ASK_USER: (off | t.user_on_call.index_select(0, sc)[:, None])
            & self._columns(t.fact_exists.index_select(0, sc), A_ASK_USER),
        }
        rows = torch.cat([blocks[k].expand(len(sc), -1) for k in self._col_order], dim=1)
        not_mine = torch.zeros_like(rows[:1])
        not_mine[0, self._wait_col] = True
        self._mask_rows = torch.cat([rows, not_mine]).contiguous()

    def _init_subgoal_tables(self) -> None:
        """Per scenario: the departments, services and facts its oracle plan goes through."""
        t = self.t
        K, S = t.svc_exists.shape
        plan = t.plan  # [K, 3]
        ks = torch.arange(K, device=self.device)[:, None].expand_as(plan)
        in_plan = torch.zeros(K, S + 1, dtype=torch.bool, device=self.device)
        in_plan[ks, torch.where(plan >= 0, plan, torch.full_like(plan, S))] = True
        self._plan_svc = in_plan[:, :S]
        D = t.dept_transfers.shape[1]
        dept = t.svc_dept.clamp(min=0)  # [K, S]
        onehot = torch.zeros(K, S, D, dtype=torch.bool, device=self.device)
        onehot.scatter_(2, dept[..., None], True)
        self._plan_dept = (onehot & self._plan_svc[..., None]).any(dim=1)  # [K, D]
        self._plan_facts = (t.needs_fact & self._plan_svc[..., None]).any(dim=1)  # [K, F]
        # The planned facts the assistant does not know at the start, and the records that
        # already hold their goal value at the start (neither is a sub-goal reached).
        self._plan_hidden = self._plan_facts & ~t.fact_known0
        self._goal_held0 = (t.rec_init == t.goal_val) & t.goal_mask
        # Per scenario: each per-item group's payment per item (verified, fact, records).
        pf = self._plan_facts
        self._sg_per = torch.stack(
            [
                1.0 / pf.sum(dim=1).clamp(min=1).float(),
                1.0 / self._plan_hidden.sum(dim=1).clamp(min=1).float(),
                1.0 / t.goal_mask.sum(dim=1).clamp(min=1).float(),
            ],
            dim=1,
        )

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
            # three parties: who holds the floor, what the rep answers, what the user was asked
            "floor": z(B),
            "stim": z(B),
            "stim_arg": z(B) - 1,
            "stim_ok": z(B, dtype=torch.bool),
            "user_asked": z(B) - 1,
            "user_refused": z(B, self.F, dtype=torch.bool),
            "violations": z(B),
            "level": z(B),  # curriculum level: which block of the set the world draws from
            # sub-goals reached this episode (paid once each under reward_mode="shaped")
            "sg_dept": z(B, dtype=torch.bool),
            "sg_service": z(B, dtype=torch.bool),
            "sg_verified": z(B, self.F, dtype=torch.bool),
            "sg_fact": z(B, self.F, dtype=torch.bool),
            "sg_records": z(B, self.R, dtype=torch.bool),
        }

    def reset(self, st: State, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        """Start a new episode in the masked worlds (in place). On CPU, from ``SMALL`` worlds
        on, when few worlds reset (an auto-reset), only their rows are gathered, reset and
        written back; elsewhere every world runs the masked reset. Both give the same state."""
        B = mask.shape[0]
        if not self.sync_free and B >= SMALL:
            rows = true_rows(mask)
            if 4 * len(rows) < B:
                sub = {k: v.index_select(0, rows) for k, v in st.items()}
                ones = torch.ones_like(rows, dtype=torch.bool)
                sub_seeds = None if seeds is None else seeds.to(self.device).index_select(0, rows)
                self._reset_masked(sub, ones, sub_seeds)
                for k, v in sub.items():
                    copy_rows(st[k], rows, v)
                return
        self._reset_masked(st, mask, seeds)

    def _reset_masked(self, st: State, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        if seeds is not None:
            st["seed"] = torch.where(mask, seeds.to(self.device), st["seed"])
            st["episode"] = torch.where(mask, 0, st["episode"])
        else:
            st["episode"] = torch.where(mask, st["episode"] + 1, st["episode"])
        # Each world draws from its curriculum level's block of the set (one block: all K).
        lv = st["level"]
        draw = at(self.level_lo, lv) + self._draw(
            mask, at(self.level_n, lv), st["seed"], st["episode"], _S_SCENARIO
        )
        sc = torch.where(mask, draw, st["scenario"])
        st["scenario"] = sc
        self._reset_episode(st, mask)

    def reset_scenario_fields(self, st: State) -> None:
        """Re-initialise every world's episode for the scenario already in ``st['scenario']``."""
        self._reset_episode(st, torch.ones_like(st["scenario"], dtype=torch.bool))

    def _reset_episode(self, st: State, mask: torch.Tensor) -> None:
        t, sc = self.t, st["scenario"]
        zero = torch.zeros_like(st["turn"])
        for key in _RESET_ZERO:
            st[key] = torch.where(mask, zero, st[key])
        for key in ("number", "service", "stim_arg", "user_asked"):
            st[key] = torch.where(mask, zero - 1, st[key])
        for key in ("stim_ok", "sg_dept", "sg_service"):
            st[key] = st[key] & ~mask
        wide = _widener(mask)
        for key in ("user_refused", "verified", "sg_verified"):
            st[key] = st[key] & ~wide(st[key])
        st["calls"] = torch.where(wide(st["calls"]), 0, st["calls"])
        for key, start in (
            ("known", t.fact_known0),
            ("num_known", t.num_listed),
            ("records", t.rec_init),
        ):
            st[key] = torch.where(wide(st[key]), start.index_select(0, sc), st[key])
        # What the assistant knows, and records that already meet the goal, at the start are
        # not sub-goals it reached.
        st["sg_fact"] = torch.where(wide(st["sg_fact"]), st["known"], st["sg_fact"])
        st["sg_records"] = torch.where(
            wide(st["sg_records"]), self._goal_held0.index_select(0, sc), st["sg_records"]
        )
        intro = torch.full_like(st["msgs"], -1)
        intro[:, 0] = t.m_intro.index_select(0, sc)
        st["msgs"] = torch.where(wide(st["msgs"]), intro, st["msgs"])
        st["vars"] = torch.where(wide(st["vars"]), self._variants(st, intro), st["vars"])

    # ------------------------------------------------------------------ helpers
    def _draw(
        self, mask: torch.Tensor, high: torch.Tensor, *keys: torch.Tensor | int
    ) -> torch.Tensor:
        """``rng.randint(high, *keys)`` where ``mask`` (int64 [B]; 0 elsewhere): on CPU only the
        masked worlds are hashed (the hash is most of a step's ops); sync-free (CUDA graphs),
        every world is, with no host sync. Either way the masked values are the same bits."""
        if self.sync_free:
            return torch.where(mask, rng.randint(high, *keys), torch.zeros_like(high))
        out = torch.zeros(mask.shape, dtype=torch.int64, device=self.device)
        rows = true_rows(mask)
        if len(rows):
            sub = [k.index_select(0, rows) if isinstance(k, torch.Tensor) else k for k in keys]
            out.index_copy_(0, rows, rng.randint_cpu(high.index_select(0, rows), *sub))
        return out

    def _variants(self, st: State, msgs: torch.Tensor) -> torch.Tensor:
        """Each message slot's phrasing variant (0 where the message has one phrasing)."""
        nvar = at(self.c.msg_nvar, msgs.clamp(min=0))
        slot = torch.arange(MSG_SLOTS, device=self.device)[None, :]
        if self.sync_free:
            return rng.randint(
                nvar,
                st["seed"][:, None],
                st["episode"][:, None],
                st["turn"][:, None],
                slot + _S_VARIANT,
            )
        out = torch.zeros_like(msgs)
        b, j = torch.nonzero(nvar > 1, as_tuple=True)
        if len(b):
            keys = tuple(st[k].index_select(0, b) for k in ("seed", "episode", "turn"))
            flat = b * MSG_SLOTS + j
            high = nvar.reshape(-1).index_select(0, flat)
            out.view(-1).index_copy_(0, flat, rng.randint_cpu(high, *keys, j + _S_VARIANT))
        return out

    def message_ids(self, st: State) -> torch.Tensor:
        """int32 [B, MSG_SLOTS]: the message ids of what the assistant heard this step (rows of
        ``self.packer.table``; 0: empty slot)."""
        return self.packer.ids(st["msgs"], st["vars"])

    def tokens(self, st: State, out: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids of what the assistant heard this step, packed and padded: int32 [B, L]
        (:meth:`MessagePacker.pack` of :meth:`message_ids`; into ``out`` when given)."""
        return self.packer.pack(self.message_ids(st), self.sync_free, out)

    def goal_rows(self, st: State) -> GoalRows:
        """Each world's records against its goal (looked up once for all that a step asks)."""
        t, sc = self.t, st["scenario"]
        held = st["records"] == t.goal_val.index_select(0, sc)
        return GoalRows(held, t.goal_mask.index_select(0, sc))

    def success(self, st: State, goal: GoalRows | None = None) -> torch.Tensor:
        """bool [B]: every record the goal constrains holds its goal value, within the fee
        budget (``goal``: :meth:`goal_rows` of ``st``, when the caller has it)."""
        t, sc = self.t, st["scenario"]
        g = self.goal_rows(st) if goal is None else goal
        return _all_rows(g.held | ~g.constrained) & (st["fees"] <= t.max_fees.index_select(0, sc))

    # ------------------------------------------------------------------ step
    def step(
        self,
        st: State,
        actions: torch.Tensor | PhoneActions,
    ) -> dict[str, torch.Tensor]:
        """Advance every world by one turn (in place); return the transition.

        A turn is the assistant's action and the answers it draws: the rep's moves and the
        user's reply. Those answers are decisions, an action id per world, taken by the
        scripted rep (:meth:`rep_policy`) and user (:meth:`user_policy`) unless the caller
        supplies them: the engine applies the scripted or the supplied decision with the same
        code, so the three-party env and the single-agent env share every rule.

        The rules, in the order they run (each a method below): the assistant's action
        (:meth:`_assistant_system` report / ask the user / garbled text, :meth:`_call_dial`,
        :meth:`_call_ivr_hold` press / wait / hang up, :meth:`_assistant_speech` request /
        ask / provide, :meth:`_assistant_yes_no`), the user's reply (:meth:`_user_reply`), the
        rep's moves (:meth:`_rep_turns`, :meth:`_rep_move` and one ``_rep_*`` method per move),
        then the step's messages (:meth:`_lay_messages`) and rewards (:meth:`_rewards`).

        Args:
            st: the state (modified in place).
            actions: the step's inputs (:class:`PhoneActions`: the assistant's action, the
                value it states, a learned rep's and user's moves), or just the int64 [B]
                assistant catalogue ids (the assistant states what it knows; the scripted rep
                and user answer). The assistant's action is ignored in worlds where it does not
                hold the floor; a learned rep acts in the worlds where it holds the floor at the
                start of the step, one move per step (the scripted rep answers within the step).
        """
        if not isinstance(actions, PhoneActions):
            actions = PhoneActions(actions)
        u = Turn(self, st, actions)
        terminated = u.kind == A_REPORT
        u.say(terminated, self.t.m_sys_report)
        kinds_here = None if self.sync_free else present(u.kind)
        for kinds, rule in (
            ((A_ASK_USER, A_GARBLED), self._assistant_system),
            ((A_DIAL,), self._call_dial),
            ((A_PRESS, A_WAIT, A_HANGUP), self._call_ivr_hold),
            ((A_REQUEST, A_ASK_ABOUT, A_PROVIDE, A_YES, A_NO), self._assistant_speech),
            ((A_YES, A_NO), self._assistant_yes_no),
        ):
            self._assistant_rule(u, kinds, rule, kinds_here)
        self._user_reply(u, actions.user)
        self._rep_turns(u, actions.rep)
        self._lay_messages(u)
        st["turn"] = st["turn"] + 1
        return self._rewards(u, terminated)

    # ------------------------------------------------------------------ the assistant's turn
    def _assistant_rule(
        self,
        u: Turn,
        kinds: tuple[int, ...],
        rule: Callable[[Turn], None],
        kinds_here: set[int] | None,
    ) -> None:
        """Run ``rule``, which acts on the worlds whose action is one of ``kinds`` only: on CPU
        skipped where no world chose them (``kinds_here``: the kinds chosen), and from ``SMALL``
        worlds on run as :meth:`_in_rows` runs a rule."""
        if kinds_here is not None and kinds_here.isdisjoint(kinds):
            return
        if kinds_here is None or len(u.kind) < SMALL:
            rule(u)
            return
        table = self._kind_sets.get(kinds)
        if table is None:
            table = torch.zeros(len(ActionKind), dtype=torch.bool, device=self.device)
            table[list(kinds)] = True
            self._kind_sets[kinds] = table
        self._in_rows(u, table.index_select(0, u.kind), lambda v, _: rule(v))

    def _in_rows(
        self, u: Turn, mask: torch.Tensor, rule: Callable[[Turn, torch.Tensor], None]
    ) -> bool:
        """Run ``rule(turn, mask)``, a rule that acts in the masked worlds only; return whether
        it ran.

        On CPU it is skipped where no world is masked, and from ``SMALL`` worlds on, where at
        most ``FEW_ROWS`` of them are, it runs over those worlds alone (:meth:`Turn.rows`, every
        world of the sub-turn masked). Sync-free (CUDA graphs), it runs over every world."""
        if self.sync_free:
            rule(u, mask)
            return True
        if len(mask) < SMALL:
            if _none(mask):
                return False
            rule(u, mask)
            return True
        rows = true_rows(mask)
        if len(rows) == 0:
            return False
        if len(rows) > FEW_ROWS * len(mask):
            rule(u, mask)
            return True
        sub = u.rows(rows)
        rule(sub, torch.ones_like(rows, dtype=torch.bool))
        u.merge(sub, rows)
        return True

    def _assistant_system(self, u: Turn) -> None:
        """Asking the user for a fact (in every phase: the user is beside us; with
        ``constraints.user_reachable == "off_call"`` only between calls) and unparseable text."""
        t, st, sc = self.t, u.st, u.sc
        asked = u.kind == A_ASK_USER
        m = asked & (u.off | t.user_on_call.index_select(0, sc))
        u.say(asked & ~m, t.m_sys_user_away)
        st["floor"] = torch.where(m, FLOOR_USER, st["floor"])
        st["user_asked"] = torch.where(m, u.arg.clamp(max=self.F - 1), st["user_asked"])
        # text that could not be parsed
        m = u.kind == A_GARBLED
        u.err.masked_fill_(m, E_GARBLED)
        u.to_rep(m & u.on_rep, STIM_UNCLEAR)
        u.say(m & u.on_ivr, t.m_ivr_no_speech)
        u.say(m & u.on_hold, t.m_sys_nobody)
        u.say(m & u.off, t.m_user_unknown)

    def _call_dial(self, u: Turn) -> None:
        """Dialing a listed (or learned) number: the policy's call limits, then the number's
        route (an IVR menu or a department's queue)."""
        t, st, sc = self.t, u.st, u.sc
        m = u.kind == A_DIAL
        u.fail(m & ~u.off, E_ON_CALL, t.m_sys_on_call)
        num = u.arg.clamp(max=self.N - 1)
        listed = (u.arg < t.n_numbers.index_select(0, sc)) & pick(st["num_known"], num)
        u.fail(m & u.off & ~listed, E_UNKNOWN_NUMBER, t.m_sys_unknown_number)
        dial = m & u.off & listed
        st["calls"].scatter_add_(1, num[:, None], dial.long()[:, None])
        st["total_calls"] = st["total_calls"] + dial.long()
        u.over = (dial & (st["total_calls"] > t.call_budget.index_select(0, sc))).float()
        ncalls = pick(st["calls"], num)
        refused = dial & (ncalls > t.max_calls_per_number.index_select(0, sc))
        u.say(refused, t.m_sys_call_refused)
        connects = dial & ~refused
        u.emit(
            connects & t.hints.index_select(0, sc), at(t.m_sys_hint, sc, (ncalls - 1).clamp(0, 9))
        )
        st["number"] = torch.where(connects, num, st["number"])
        st["verified"] = st["verified"] & ~_wide(connects, st["verified"])
        st["mismatches"] = torch.where(connects, 0, st["mismatches"])
        u.end_service(connects)
        u.follow(connects, at(t.num_route_kind, sc, num), at(t.num_route_id, sc, num))

    def _call_ivr_hold(self, u: Turn) -> None:
        """Pressing a menu key, waiting (the menu's timeout route, the hold queue, or a rep's
        "still there?") and hanging up."""
        t, st, sc = self.t, u.st, u.sc
        m = u.kind == A_PRESS
        u.fail(m & u.off, E_NOT_ON_CALL, t.m_sys_not_on_call)
        u.fail(m & u.on_hold, E_NO_MENU, t.m_sys_nobody)
        u.err.masked_fill_(m & u.on_rep, E_NO_MENU)
        u.to_rep(m & u.on_rep, STIM_UNCLEAR)
        press = m & u.on_ivr
        node = u.node
        key = u.arg.clamp(max=11)
        ok_kind = at(t.ivr_opt_kind, sc, node, key)
        bad_key = press & (ok_kind == 0)
        u.say(bad_key, t.m_invalid_key)
        u.emit(bad_key, at(t.m_ivr_prompt, sc, node))
        u.follow(press & (ok_kind > 0), ok_kind, at(t.ivr_opt_id, sc, node, key))
        # wait
        m = u.kind == A_WAIT
        u.say(m & u.off, t.m_sys_idle)
        w_ivr = m & u.on_ivr
        to_kind = at(t.ivr_to_kind, sc, node)
        u.emit(w_ivr & (to_kind == 0), at(t.m_ivr_prompt, sc, node))
        u.follow(w_ivr & (to_kind > 0), to_kind, at(t.ivr_to_id, sc, node))
        w_hold = m & u.on_hold
        st["hold_left"] = torch.where(w_hold, (st["hold_left"] - 1).clamp(min=0), st["hold_left"])
        picked = w_hold & (st["hold_left"] == 0)
        u.say(w_hold & ~picked, t.m_still_hold)
        u.connect(picked)
        u.to_rep(m & u.on_rep, STIM_WAIT)
        # hang up
        m = u.kind == A_HANGUP
        u.fail(m & u.off, E_NOT_ON_CALL, t.m_sys_not_on_call)
        hang = m & ~u.off
        u.end_call(hang)
        u.say(hang, t.m_sys_call_ended)

    def _assistant_speech(self, u: Turn) -> None:
        """Speech: to nobody (or a machine) it fails; to a rep, a request makes a service this
        department handles the active request, and a stated fact is checked against the
        account (the rep answers both in its move)."""
        t, st, sc = self.t, u.st, u.sc
        speech = u.speech
        u.fail(speech & u.off, E_NOT_ON_CALL, t.m_sys_not_on_call)
        u.fail(speech & u.on_ivr, E_IVR_KEYS, t.m_ivr_no_speech)
        u.emit(speech & u.on_ivr, at(t.m_ivr_prompt, sc, u.node))
        u.fail(speech & u.on_hold, E_HOLD, t.m_sys_nobody)
        talk = speech & u.on_rep
        svc_arg = u.arg.clamp(max=max(len(self.c.services) - 1, 0))
        m = talk & (u.kind == A_REQUEST)
        here = m & at(t.svc_exists, sc, svc_arg) & (at(t.svc_dept, sc, svc_arg) == st["dept"])
        st["service"] = torch.where(here, svc_arg, st["service"])
        st["pc"] = torch.where(here, 0, st["pc"])
        u.to_rep(m, STIM_REQUEST, svc_arg)
        u.to_rep(talk & (u.kind == A_ASK_ABOUT), STIM_ASK_ABOUT, svc_arg)
        # provide a fact: the stated value is the true one, or (default) the fact is known
        m = talk & (u.kind == A_PROVIDE)
        f = u.arg.clamp(max=self.F - 1)
        exists = at(t.fact_exists, sc, f)
        correct = self._stated_true(u, f) & exists
        unasked = m & (self.pending_fact(st) != f)
        u.privacy = u.privacy + (unasked & correct & at(t.fact_sensitive, sc, f)).float()
        u.to_rep(m, STIM_PROVIDE, f)
        st["stim_ok"] = torch.where(m, correct, st["stim_ok"])

    def _stated_true(self, u: Turn, f: torch.Tensor) -> torch.Tensor:
        """bool [B]: whether the value stated for fact ``f`` is the account's (the rep's
        check): the stated value's id against the true one's; where none is stated
        (``STATES_KNOWN``, or no ``stated_value`` at all) the assistant states what it knows."""
        known = pick(u.st["known"], f)
        if u.stated_value is None:
            return known
        said = u.stated_value.to(self.device)
        return torch.where(said == STATES_KNOWN, known, at(self._fact_value, u.sc, f) == said)

    def _assistant_yes_no(self, u: Turn) -> None:
        """Yes or no to the rep's fee or offer question (nothing asked: not understood)."""
        t, st, sc, V = self.t, u.st, u.sc, self.V
        m = u.speech & u.on_rep & ((u.kind == A_YES) | (u.kind == A_NO))
        yes = u.kind == A_YES
        s0 = st["service"].clamp(min=0)
        at_fee = m & (st["service"] >= 0) & (st["pc"] == V + SLOT_FEE)
        at_offer = m & (st["service"] >= 0) & (st["pc"] == V + SLOT_OFFER)
        nothing = m & ~at_fee & ~at_offer
        u.err.masked_fill_(nothing, E_NOTHING_ASKED)
        u.to_rep(nothing, STIM_UNCLEAR)
        st["pc"] = torch.where(at_fee & yes, st["pc"] + 1, st["pc"])
        declined_fee = at_fee & ~yes
        u.say(declined_fee, t.m_offer_declined)
        u.end_service(declined_fee)
        took_offer = at_offer & yes
        ov = at(t.offer_val, sc, s0)
        st["records"] = torch.where(_and_rows(took_offer, ov >= 0), ov, st["records"])
        u.emit(took_offer, at(t.m_offer_accepted, sc, s0))
        u.end_service(took_offer)
        declined_offer = at_offer & ~yes
        u.say(declined_offer, t.m_offer_declined)
        st["pc"] = torch.where(declined_offer, st["pc"] + 1, st["pc"])
        u.to_rep((at_fee & yes) | declined_offer, STIM_CONTINUE)

    # ------------------------------------------------------------------ the user's reply
    def _user_reply(self, u: Turn, user_actions: torch.Tensor | None) -> None:
        """The user answers a fact it has (or, a learned user, doesn't know / refuses)."""
        u_turn = u.st["floor"] == FLOOR_USER
        if user_actions is None:
            self._in_rows(u, u_turn, lambda v, m: self._user_move(v, m, self.user_policy(v.st)))
            return
        u_turn = u_turn & (u.floor0 == FLOOR_USER)  # a learned user answers next step
        if self.sync_free or not _none(u_turn):
            self._user_move(u, u_turn, user_actions.to(self.device))

    def _user_move(self, u: Turn, u_turn: torch.Tensor, u_move: torch.Tensor) -> None:
        """Apply the user's move ``u_move`` in the worlds ``u_turn`` (the user holds the
        floor there)."""
        t, st, sc = self.t, u.st, u.sc
        uf = st["user_asked"].clamp(min=0)
        has = at(t.fact_exists, sc, uf)
        answer = u_turn & (u_move == U_ANSWER) & has
        _or_at(st["known"], uf, answer)
        u.emit(answer, at(t.m_user_says, sc, uf))
        u.say(u_turn & (u_move != U_REFUSE) & ~has, t.m_user_unknown)
        dont_know = u_turn & (u_move == U_DONT_KNOW) & has
        u.say(dont_know, t.m_user_dont_know)
        refuses = u_turn & (u_move == U_REFUSE)
        u.say(refuses, t.m_user_refuses)
        _or_at(st["user_refused"], uf, (dont_know | refuses) & has)
        st["floor"] = torch.where(u_turn, FLOOR_ASSISTANT, st["floor"])

    # ------------------------------------------------------------------ the rep's moves
    def _rep_turns(self, u: Turn, rep_actions: torch.Tensor | None) -> None:
        """The rep's moves: the scripted rep answers within the step, a few moves at most
        (acknowledge, greet after a transfer, go on with the request); a learned rep makes one
        move in the worlds where it held the floor at the start of the step."""
        st = u.st
        if rep_actions is None:
            for _ in range(self.REP_MOVES_PER_STEP):
                if not self._in_rows(u, st["floor"] == FLOOR_REP, self._scripted_move):
                    break
            return
        r_turn = (u.floor0 == FLOOR_REP) & (st["floor"] == FLOOR_REP)
        self._normalize(st, r_turn)
        self._rep_move(u, r_turn, rep_actions.to(self.device))
        # Where the rep now holds the floor, its next observation shows the program as the
        # rules will see it.
        self._normalize(st, st["floor"] == FLOOR_REP)

    def _scripted_move(self, u: Turn, mask: torch.Tensor) -> None:
        """One move of the scripted rep in the masked worlds: its checklist, then its choice."""
        self._normalize(u.st, mask)
        self._rep_move(u, mask, self.rep_policy(u.st))

    def _rep_move(self, u: Turn, mask: torch.Tensor, move: torch.Tensor) -> None:
        """Apply one rep move in the masked worlds (the rep holds the floor there).

        The move answers the stimulus; moves that leave the rep something to add (an
        acknowledgement, a greeting on a transferred request) keep the floor with
        ``STIM_CONTINUE``, the others hand it back to the assistant. On CPU only the moves some
        world makes are applied (fewer ops); sync-free (CUDA), every move's masked ops run.
        """
        st = u.st
        v = RepView(self, u, move)
        st["floor"] = torch.where(mask, FLOOR_ASSISTANT, st["floor"])
        st["stim"] = torch.where(mask, STIM_NONE, st["stim"])
        moves = set() if self.sync_free else present(v.rk[mask])
        for k, rule in self._rep_rules:
            if self.sync_free or k in moves:
                rule(u, mask & (v.rk == k), v)

    @property
    def _rep_rules(self) -> tuple[tuple[int, Callable[[Turn, torch.Tensor, RepView], None]], ...]:
        """(rep move kind, its rule), in the order the moves' effects are applied."""
        return (
            (R_GREET, self._rep_greet),
            (R_VERIFY, self._rep_verify),
            (R_REJECT, self._rep_reject),
            (R_GRANT, self._rep_grant),
            (R_REFUSE, self._rep_refuse),
            (R_TRANSFER, self._rep_transfer),
            (R_REFER, self._rep_refer),
            (R_HOLD, self._rep_hold),
            (R_EXPLAIN, self._rep_explain),
            (R_ASK_FEE, self._rep_ask_fee),
            (R_OFFER, self._rep_offer),
            (R_CANNOT_HELP, self._rep_cannot_help),
            (R_NOT_UNDERSTOOD, self._rep_not_understood),
            (R_STILL_THERE, self._rep_still_there),
            (R_UNREQUESTED, self._rep_unrequested),
            (R_ASK, self._rep_ask),
        )

    def _rep_greet(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """A greeting (on a transferred request: one that names it, and goes on with it)."""
        t, st, sc = self.t, u.st, u.sc
        d = st["dept"].clamp(min=0)
        u.emit(m & ~v.active, at(t.m_greet, sc, d, st["rep"]))
        u.emit(m & v.active, at(t.m_greet_transfer, sc, d, st["rep"], v.s0))
        u.to_rep(m & v.active, STIM_CONTINUE)

    def _rep_verify(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """Verification: the stated fact counts as checked (a false one is a violation); an
        answer to the checklist's item moves the checklist on."""
        t, st = self.t, u.st
        u.rep_err.masked_fill_(m & ~v.stated, RE_NOTHING_STATED)
        m = m & v.stated
        _or_at(st["verified"], v.sf, m)
        u.false_ver.add_((m & ~v.sok).float())
        u.say(m & v.answers & v.at_elig, t.m_eligible)
        u.say(m & ~(v.answers & v.at_elig), t.m_verified)
        st["pc"] = torch.where(m & v.answers, st["pc"] + 1, st["pc"])
        u.to_rep(m, STIM_CONTINUE)

    def _rep_reject(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """A mismatch: counted per call; at the policy's limit the rep hangs up (lockout)."""
        t, st, sc = self.t, u.st, u.sc
        u.rep_err.masked_fill_(m & ~v.stated, RE_NOTHING_STATED)
        m = m & v.stated
        u.wrongful.add_((m & v.sok).float())
        st["mismatches"] = st["mismatches"] + m.long()
        lock = m & (st["mismatches"] >= t.max_mismatch.index_select(0, sc))
        u.say(lock, t.m_security)
        u.end_call(lock)
        u.say(lock, t.m_sys_rep_hung_up)
        u.say(m & ~lock, t.m_mismatch)
        u.to_rep(m & ~lock, STIM_CONTINUE)

    def _rep_grant(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """A grant: the service's record changes and fee. Policy allows it once the request's
        checks are done (every verification item, the eligibility rule and the fee question:
        the program is past them); earlier it is a forbidden grant."""
        t, st, sc = self.t, u.st, u.sc
        u.rep_err.masked_fill_(m & ~v.active, RE_NO_REQUEST)
        m = m & v.active
        u.forbidden.add_((m & (v.pc < self.V + SLOT_OFFER)).float())
        gv = at(t.grant_val, sc, v.s0)
        st["records"] = torch.where(_and_rows(m, gv >= 0), gv, st["records"])
        st["fees"] = torch.where(m, st["fees"] + at(t.svc_fee, sc, v.s0), st["fees"])
        u.emit(m, at(t.m_done, sc, v.s0))
        u.end_service(m)

    def _rep_refuse(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """A refusal (wrongful where the eligibility rule passes)."""
        t, st, sc = self.t, u.st, u.sc
        u.rep_err.masked_fill_(m & ~v.active, RE_NO_REQUEST)
        m = m & v.active
        u.wrongful.add_((m & at(t.elig_pass, sc, v.s0)).float())
        # A refusal on a stated (true) eligibility fact still checked that fact.
        _or_at(st["verified"], v.sf, m & v.answers & v.sok)
        u.emit(m, at(t.m_refusal, sc, v.s0))
        u.end_service(m)

    def _rep_transfer(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """A transfer to the department that handles the service (its queue)."""
        t, st, sc = self.t, u.st, u.sc
        t_dept = at(t.svc_dept, sc, v.t0)
        can = v.t_ok & (t_dept != st["dept"]) & at(t.dept_transfers, sc, st["dept"])
        u.rep_err.masked_fill_(m & ~can, RE_CANNOT_TRANSFER)
        m = m & can
        st["service"] = torch.where(m, v.t0, st["service"])
        st["pc"] = torch.where(m, 0, st["pc"])
        u.emit(m, at(t.m_transfer, sc, t_dept.clamp(min=0)))
        u.enter_queue(m, t_dept)

    def _rep_refer(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """A referral: "call this other number" (noted in the directory where there is one)."""
        t, st, sc = self.t, u.st, u.sc
        u.rep_err.masked_fill_(m & ~v.t_ok, RE_NO_REQUEST)
        m = m & v.t_ok
        u.emit(m, at(t.m_call_other, sc, v.t0))
        other = at(t.svc_other_number, sc, v.t0)
        noted = m & (other >= 0)
        _or_at(st["num_known"], other.clamp(min=0), noted)
        u.emit(noted, at(t.m_sys_number_noted, sc, other.clamp(min=0)))

    def _rep_hold(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """Putting the caller on hold (back into the department's queue)."""
        u.say(m, self.t.m_rep_hold)
        u.enter_queue(m, u.st["dept"])

    def _rep_explain(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """What a service needs."""
        u.rep_err.masked_fill_(m & ~v.t_ok, RE_NO_REQUEST)
        m = m & v.t_ok
        u.emit(m, at(self.t.m_explain, u.sc, v.t0))
        u.to_rep(m, STIM_CONTINUE)

    def _rep_ask_fee(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """The fee question of the active request."""
        u.rep_err.masked_fill_(m & ~v.active, RE_NO_REQUEST)
        u.emit(m & v.active, at(self.t.m_fee_q, u.sc, v.s0))

    def _rep_offer(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """The retention offer of the active request."""
        has_offer = v.active & at(self.t.has_offer, u.sc, v.s0)
        u.rep_err.masked_fill_(m & ~has_offer, RE_NO_OFFER)
        u.emit(m & has_offer, at(self.t.m_offer, u.sc, v.s0))

    def _rep_cannot_help(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """ "I can't help with that" (after a question, the rep goes on)."""
        u.say(m, self.t.m_cannot_help)
        u.to_rep(m & (v.stim == STIM_ASK_ABOUT), STIM_CONTINUE)

    def _rep_not_understood(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        u.say(m, self.t.m_not_understood)
        u.to_rep(m, STIM_CONTINUE)

    def _rep_still_there(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        u.say(m, self.t.m_still_there)
        u.to_rep(m, STIM_CONTINUE)

    def _rep_unrequested(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        u.say(m, self.t.m_unrequested)
        u.to_rep(m, STIM_CONTINUE)

    def _rep_ask(self, u: Turn, m: torch.Tensor, v: RepView) -> None:
        """Asking the caller for a fact."""
        fa = v.ra.clamp(max=self.F - 1)
        exists = at(self.t.fact_exists, u.sc, fa)
        u.rep_err.masked_fill_(m & ~exists, RE_NO_FACT)
        u.emit(m & exists, at(self.t.m_ask_fact, u.sc, fa))

    # ------------------------------------------------------------------ messages and rewards
    def _lay_messages(self, u: Turn) -> None:
        """Lay the messages spoken this step, in the order spoken, into the world's message
        slots (messages past ``MSG_SLOTS`` are dropped) and draw their phrasing variants.

        On CPU (at least ``SMALL`` worlds) each message is written to the worlds that spoke it
        only (few worlds speak any one message), in NumPy: a few small integer ops per message,
        each about a quarter of a torch op's fixed cost; the variants are then drawn for the
        slots just written (:meth:`_variants_at`). Otherwise one masked pass per message over
        every world, a full world's message going to a discard column (on CPU a message nobody
        spoke costs one test). Both lay the same messages and draw the same variants.
        """
        st = u.st
        if not self.sync_free and self.device.type == "cpu" and u.sc.shape[0] >= SMALL:
            msgs, written = self._lay_sparse(u)
            st["msgs"] = torch.from_numpy(msgs.reshape(-1, MSG_SLOTS))
            st["vars"] = self._variants_at(st, msgs, written)
            return
        msgs = self._lay_masked(u)
        st["msgs"] = msgs
        st["vars"] = self._variants(st, msgs)

    @staticmethod
    def _lay_sparse(u: Turn) -> tuple[np.ndarray, np.ndarray]:
        """The slots as a flat int64 ``[B * MSG_SLOTS]`` NumPy array (-1: empty) and the flat
        positions written, each once."""
        B, S = u.sc.shape[0], MSG_SLOTS
        msgs = np.full(B * S, -1, dtype=np.int64)
        count = np.zeros(B, dtype=np.int64)  # next free slot per world
        written = []
        sc = u.sc.numpy()
        for mask, mid, per_scenario, where in u.spoken:
            sel = np.flatnonzero(mask.numpy())
            if len(sel) == 0:
                continue
            rows = sel if where is None else where.numpy()[sel]
            said = mid.numpy()[sc[rows] if per_scenario else sel]
            c = count[rows]
            keep = (said >= 0) & (c < S)
            if not keep.all():
                rows, said, c = rows[keep], said[keep], c[keep]
            pos = rows * S + c
            msgs[pos] = said
            written.append(pos)
            count[rows] = c + 1
        return msgs, np.concatenate(written) if written else count[:0]

    def _variants_at(self, st: State, msgs: np.ndarray, written: np.ndarray) -> torch.Tensor:
        """:meth:`_variants` of the flat slots ``msgs`` (NumPy), drawn at the ``written``
        positions only. :meth:`_variants` looks an empty slot (-1) up as message 0, so where
        message 0 has several phrasings empty slots draw too, and it runs instead."""
        nvar = self.c.msg_nvar.numpy()  # this path runs on CPU only
        if nvar[0] > 1:
            return self._variants(st, torch.from_numpy(msgs.reshape(-1, MSG_SLOTS)))
        out = np.zeros(msgs.shape, dtype=np.int64)
        high = nvar[msgs[written]]
        draw = high > 1
        pos = written[draw]
        if len(pos):
            b, j = np.divmod(pos, MSG_SLOTS)
            keys = [st[k].numpy()[b] for k in ("seed", "episode", "turn")]
            out[pos] = rng.randint(high[draw], *keys, j + _S_VARIANT)
        return torch.from_numpy(out.reshape(-1, MSG_SLOTS))

    def _lay_masked(self, u: Turn) -> torch.Tensor:
        B, S, dev = u.sc.shape[0], MSG_SLOTS, self.device
        msgs = torch.full((B, S + 1), -1, dtype=torch.int64, device=dev)
        count = torch.zeros((B, 1), dtype=torch.int64, device=dev)  # next free slot, at most S
        col = torch.empty_like(count)
        discard = torch.full_like(count, S)
        for mask, message, per_scenario, where in u.spoken:
            assert where is None, "sub-turns are merged on the sparse path only"
            if not self.sync_free and _none(mask):
                continue
            mid = message.index_select(0, u.sc) if per_scenario else message
            said = (mask & (mid >= 0))[:, None]
            torch.where(said, count, discard, out=col)
            msgs.scatter_(1, col, mid[:, None])  # what lands in the discard column is dropped
            count.add_(said).clamp_(max=S)
        return msgs[:, :S].contiguous()

    def _rewards(self, u: Turn, terminated: torch.Tensor) -> dict[str, torch.Tensor]:
        """The transition: the assistant's reward terms (per ``reward_mode``), the episode's
        end and success, and (with :attr:`party_rewards`) the rep's and the user's rewards."""
        t, st, sc = self.t, u.st, u.sc
        truncated = (st["turn"] >= t.max_turns.index_select(0, sc)) & ~terminated
        goal_rows = self.goal_rows(st)
        success = self.success(st, goal_rows)
        pf = at(self._plan_facts, sc)
        w = t.w.index_select(0, sc)
        ended = (terminated | truncated).float()
        terms = {
            "goal": w[:, 0] * success.float() * ended,
            "turn_cost": -w[:, 1] * torch.ones_like(ended),
            "privacy_violation": -w[:, 2] * u.privacy,
            "over_call_budget": -w[:, 3] * u.over,
            "invalid_action": -w[:, 4] * (u.err != 0).float(),
        }
        assert tuple(terms) == REWARD_TERMS
        # The per-step costs as the rep and the user see them (independent of reward_mode).
        goal, turn_cost = terms["goal"], terms["turn_cost"]
        reward = self._assistant_reward(terms, self._subgoal_terms(st, w[:, 0], goal_rows, pf))
        st["violations"] = st["violations"] + (u.forbidden + u.false_ver).long()
        out = {
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            "success": success,
            "action_error": u.err,
            "reward_terms": terms,
            "subgoals": self.subgoals(st, goal_rows, pf),
        }
        if self.party_rewards:
            out.update(self._party_rewards(u, w, goal, turn_cost, success))
        return out

    def _party_rewards(
        self,
        u: Turn,
        w: torch.Tensor,
        goal: torch.Tensor,
        turn_cost: torch.Tensor,
        success: torch.Tensor,
    ) -> dict[str, Any]:
        """The rep's and the user's rewards (their terms, the rep's success and action error)
        of the step: the goal and the turn cost as the assistant's, the rep's own penalties."""
        st = u.st
        rep_terms = {
            "resolved": goal,
            "forbidden_grant": -self.REP_WEIGHTS["forbidden_grant"] * u.forbidden,
            "false_verification": -self.REP_WEIGHTS["false_verification"] * u.false_ver,
            "wrongful_refusal": -self.REP_WEIGHTS["wrongful_refusal"] * u.wrongful,
            "invalid_action": -w[:, 4] * (u.rep_err != 0).float(),
            "turn_cost": turn_cost,
        }
        assert tuple(rep_terms) == REP_REWARD_TERMS
        user_terms = {"goal": goal, "turn_cost": turn_cost}
        return {
            "rep_reward": sum(rep_terms.values(), torch.zeros_like(goal)),
            "rep_reward_terms": rep_terms,
            "rep_success": success & (st["violations"] == 0),
            "rep_action_error": u.rep_err,
            "user_reward": user_terms["goal"] + user_terms["turn_cost"],
            "user_reward_terms": user_terms,
        }

    def _assistant_reward(
        self, terms: dict[str, torch.Tensor], shaped: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Apply ``reward_mode`` to the terms (in place: sparse zeroes the costs; the sub-goal
        terms, zero unless shaped (:meth:`_subgoal_terms`), are added to ``terms``) and sum
        them."""
        if self.reward_mode == "sparse":
            for k in REWARD_TERMS[1:]:
                terms[k] = torch.zeros_like(terms[k])
        terms.update(shaped)
        assert tuple(terms) == ALL_REWARD_TERMS
        reward = (
            terms["goal"]
            + terms["turn_cost"]
            + terms["privacy_violation"]
            + terms["over_call_budget"]
            + terms["invalid_action"]
        )
        if self.reward_mode == "shaped":
            for k in SHAPED_TERMS:
                reward = reward + terms[k]
        return reward

    # ------------------------------------------------------------------ sub-goals
    def _subgoal_terms(
        self, st: State, w_goal: torch.Tensor, goal: GoalRows, pf: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Mark the sub-goals reached this step; return each group's payment (once per episode;
        zeros unless ``reward_mode`` is ``"shaped"``, without computing the payments).

        Groups (of the scenario's oracle plan): a rep of a department the plan goes through
        answered; a planned service became the active request; each fact the plan needs was
        verified; each such fact the assistant didn't know at the start became known; each
        goal record took its goal value. Each group pays at most ``SUBGOAL_SHARE`` of the goal
        weight, split evenly over its items. ``goal`` is :meth:`goal_rows` of ``st``, ``pf``
        the facts of the scenario's plan (bool [B, F]).
        """
        sc = st["scenario"]
        dept = (st["phase"] == REP) & at(self._plan_dept, sc, st["dept"].clamp(min=0))
        svc = (st["service"] >= 0) & at(self._plan_svc, sc, st["service"].clamp(min=0))
        ver = st["verified"] & pf
        fact = st["known"] & pf
        rec = goal.held & goal.constrained
        if self.reward_mode != "shaped":
            self._mark_subgoals(st, dept, svc, ver, fact, rec)
            return {name: torch.zeros_like(w_goal) for name in SHAPED_TERMS}
        new = {
            "dept": (dept & ~st["sg_dept"]).float(),
            "service": (svc & ~st["sg_service"]).float(),
            "verified": _count_rows(ver & ~st["sg_verified"]).float(),
            "fact": _count_rows(fact & ~st["sg_fact"]).float(),
            "records": _count_rows(rec & ~st["sg_records"]).float(),
        }
        per_item = self._sg_per.index_select(0, sc)
        per = {
            "dept": torch.ones_like(w_goal),
            "service": torch.ones_like(w_goal),
            "verified": per_item[:, 0],
            "fact": per_item[:, 1],
            "records": per_item[:, 2],
        }
        self._mark_subgoals(st, dept, svc, ver, fact, rec)
        share = SUBGOAL_SHARE * w_goal
        return {
            name: share * new[g] * per[g]
            for name, g in zip(
                SHAPED_TERMS, ("dept", "service", "verified", "fact", "records"), strict=True
            )
        }

    @staticmethod
    def _mark_subgoals(st: State, *reached: torch.Tensor) -> None:
        """Add this step's reached items (dept, service, verified, fact, records) to the
        episode's sub-goal state."""
        for key, now in zip(
            ("sg_dept", "sg_service", "sg_verified", "sg_fact", "sg_records"), reached, strict=True
        ):
            st[key] = st[key] | now

    def subgoals(
        self, st: State, goal: GoalRows | None = None, pf: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """bool [B] per sub-goal: reached this episode (every item of the group, for the
        per-item groups; a group with no items counts as reached). ``goal`` and ``pf`` as in
        :meth:`_subgoal_terms`, when the caller has them."""
        t, sc = self.t, st["scenario"]
        pf = at(self._plan_facts, sc) if pf is None else pf
        hidden = at(self._plan_hidden, sc)
        constrained = t.goal_mask.index_select(0, sc) if goal is None else goal.constrained
        reached = (  # copies: what is handed out never aliases the state
            st["sg_dept"].clone(),
            st["sg_service"].clone(),
            _all_rows(st["sg_verified"] | ~pf),
            _all_rows(st["sg_fact"] | ~hidden),
            _all_rows(st["sg_records"] | ~constrained),
        )
        return dict(zip(SUBGOALS, reached, strict=True))

    # ------------------------------------------------------------------ admissible actions
    def action_mask(self, st: State, out: torch.Tensor | None = None) -> torch.Tensor:
        """bool [B, A]: the catalogue actions that can move each world's task on (the others
        fail, or draw only a refusal or a repeat: a key the menu lacks, a service the scenario
        doesn't offer, a fact already known or not asked for).

        Computed from the state with a few gathers per action kind (no per-world loop):
        ``wait`` and ``report`` always; ``dial:i`` off the call for listed / learned numbers;
        ``press:k`` in an IVR menu for the keys the menu has; ``hang_up`` on a call;
        ``request:s`` / ``ask_about:s`` with a rep, for the set's services; ``provide:f`` with
        a rep that asks for ``f``; ``say_yes`` / ``say_no`` at a fee or offer question;
        ``ask_user:f`` while the user is reachable, for facts the user has and the assistant
        doesn't know. An admissible action never yields an ``action_error``; the oracle's
        action is always admissible. In worlds where the assistant doesn't hold the floor
        (three-party mode) only ``wait`` is admissible. Written into ``out`` when given (a
        persistent bool [B, A] buffer).
        """
        sc, ph = st["scenario"], st["phase"]
        mine = st["floor"] == FLOOR_ASSISTANT
        # What the scenario, the phase and the menu's node allow: one row of a table.
        row = self._phase_row.index_select(0, ph) + (ph == IVR) * st["node"]
        row = torch.add(row, sc, alpha=self._rows_per_scenario)
        row = torch.where(mine, row, self._mask_rows.shape[0] - 1)
        mask = (
            torch.index_select(self._mask_rows, 0, row, out=out)
            if out is not None
            else self._mask_rows.index_select(0, row)
        )
        # What the call's progress allows: numbers known, facts the assistant still lacks and
        # the user hasn't refused, the fact the rep asks for, a fee or offer question.
        mask[:, self._cols[A_DIAL][0]] &= self._columns(st["num_known"], A_DIAL)
        settled = self._columns(st["known"], A_ASK_USER) | self._columns(
            st["user_refused"], A_ASK_USER
        )
        mask[:, self._cols[A_ASK_USER][0]] &= ~settled
        rep = (ph == REP) & mine
        pf = self.pending_fact(st)
        # Where the rep asks for nothing the write goes to the (always admissible) wait column.
        col = torch.where(
            rep & (pf >= 0), self._provide_col.index_select(0, pf.clamp(min=0)), self._wait_col
        )
        mask.scatter_(1, col[:, None], True)
        svc, pc = st["service"], st["pc"]
        asked = rep & (svc >= 0) & ((pc == self.V + SLOT_FEE) | (pc == self.V + SLOT_OFFER))
        for k in (A_YES, A_NO):
            mask[:, self._cols[k][0]] = asked[:, None]
        return mask

    def _columns(self, x: torch.Tensor, kind: int) -> torch.Tensor:
        """The columns of ``x`` [B, X] that the catalogue's actions of ``kind`` take as their
        argument, in catalogue order (a view when they are ``0 .. n-1``)."""
        args = self._cols[kind][1]
        if self._cols_identity[kind]:
            return x[:, : len(args)]
        return x.index_select(1, args)

    # ------------------------------------------------------------------ the rep's program
    def pending_fact(self, st: State) -> torch.Tensor:
        """The fact the rep's checklist waits for (-1: none): a verification item or the
        eligibility fact of the active request."""
        t, sc = self.t, st["scenario"]
        svc = st["service"]
        pc = st["pc"].clamp(max=self.P - 1)
        f = at(t.prog_fact, sc, svc.clamp(min=0), pc)
        return torch.where((svc >= 0) & (st["pc"] <= self.V + SLOT_ELIG), f, -1)

    def _normalize(self, st: State, mask: torch.Tensor) -> None:
        """Move the active request's checklist past what needs nobody: items already
        verified, an eligibility rule already known to pass, no fee, no offer. It stops at
        what needs the caller or a decision (a grant or a refusal)."""
        t, sc = self.t, st["scenario"]
        V = self.V
        if not self.sync_free and _none(mask & (st["service"] >= 0)):
            return
        for _ in range(self.P + 1):
            svc = st["service"]
            active = mask & (svc >= 0) & (st["pc"] < self.P)
            s0 = svc.clamp(min=0)
            pc = st["pc"].clamp(max=self.P - 1)
            f = at(t.prog_fact, sc, s0, pc)
            ver = pick(st["verified"], f.clamp(min=0)) & (f >= 0)
            skip_v = (st["pc"] < V) & ((f < 0) | ver)
            elig_pass_known = (st["pc"] == V + SLOT_ELIG) & (
                (f < 0) | (ver & at(t.elig_pass, sc, s0))
            )
            skip_f = (st["pc"] == V + SLOT_FEE) & (at(t.svc_fee, sc, s0) == 0)
            skip_o = (st["pc"] == V + SLOT_OFFER) & ~at(t.has_offer, sc, s0)
            skip = active & (skip_v | elig_pass_known | skip_f | skip_o)
            if not self.sync_free and _none(skip):
                break  # saves work on CPU; on CUDA the loop runs in full, without a sync
            st["pc"] = torch.where(skip, st["pc"] + 1, st["pc"])

    def rep_policy(self, st: State) -> torch.Tensor:
        """The scripted rep's move per world (a rep catalogue id): the company's policy.

        Greets on pickup; works through the request's checklist (asks each verification item,
        verifies true statements and rejects false ones, refuses when the eligibility rule
        fails, asks the fee question, makes the retention offer, grants when everything is
        done); transfers requests another department handles (or gives that department's
        number when it can't transfer); explains a request's requirements. This is also the
        rep-side oracle: it never grants what policy forbids.
        """
        t, sc = self.t, st["scenario"]
        V = self.V
        stim, sarg, sok = st["stim"], st["stim_arg"], st["stim_ok"]
        svc = st["service"]
        s0 = svc.clamp(min=0)
        pc = st["pc"]
        pf = self.pending_fact(st)
        f = at(t.prog_fact, sc, s0, pc.clamp(max=self.P - 1))
        elig_fails = (
            (pc == V + SLOT_ELIG)
            & (f >= 0)
            & pick(st["verified"], f.clamp(min=0))
            & ~at(t.elig_pass, sc, s0)
        )

        def c(k: int) -> torch.Tensor:
            return torch.full_like(stim, k)

        # go on with the request: the checklist's next step
        cont = c(R_LISTEN)
        cont = torch.where(pc == V + SLOT_OFFER, R_OFFER, cont)
        cont = torch.where(pc == V + SLOT_FEE, R_ASK_FEE, cont)
        cont = torch.where(pf >= 0, self._rep_ask_base + pf.clamp(min=0), cont)
        cont = torch.where(pc == V + SLOT_GRANT, R_GRANT, cont)
        cont = torch.where(elig_fails, R_REFUSE, cont)
        cont = torch.where(svc < 0, R_LISTEN, cont)

        s1 = sarg.clamp(min=0, max=max(len(self.c.services) - 1, 0))
        exists = (sarg >= 0) & at(t.svc_exists, sc, s1)
        here = at(t.svc_dept, sc, s1) == st["dept"]
        transfers = at(t.dept_transfers, sc, st["dept"])
        on_request = torch.where(
            ~exists,
            R_CANNOT_HELP,
            torch.where(here, cont, torch.where(transfers, R_TRANSFER, R_REFER)),
        )
        on_ask = torch.where(exists, R_EXPLAIN, R_CANNOT_HELP)
        answers = pf == sarg
        at_elig = pc == V + SLOT_ELIG
        on_provide = torch.where(
            ~answers,
            R_UNREQUESTED,
            torch.where(
                ~sok,
                R_REJECT,
                torch.where(at_elig & ~at(t.elig_pass, sc, s0), R_REFUSE, R_VERIFY),
            ),
        )
        move = c(R_LISTEN)
        move = torch.where(stim == STIM_PICKUP, R_GREET, move)
        move = torch.where(stim == STIM_CONTINUE, cont, move)
        move = torch.where(stim == STIM_UNCLEAR, R_NOT_UNDERSTOOD, move)
        move = torch.where(stim == STIM_WAIT, R_STILL_THERE, move)
        move = torch.where(stim == STIM_REQUEST, on_request, move)
        move = torch.where(stim == STIM_ASK_ABOUT, on_ask, move)
        move = torch.where(stim == STIM_PROVIDE, on_provide, move)
        return move

    def user_policy(self, st: State) -> torch.Tensor:
        """The scripted user's reply per world: answers every fact it has (the user-side
        oracle); a fact it doesn't have gets "I don't know what you mean"."""
        return torch.full_like(st["user_asked"], U_ANSWER)

    # ------------------------------------------------------------------ oracle
    def oracle(self, st: State) -> torch.Tensor:
        """A catalogue action per world that makes progress toward the goal.

        Plans over the compiled tables: gather the facts the next planned request needs from
        the user, dial the number that reaches its department, navigate the IVR, wait on hold,
        request the service, answer the rep's questions, accept or decline fees and offers as
        the goal requires, and report once the records satisfy the goal.
        """
        t, sc, base = self.t, st["scenario"], self._kind_base
        s_star, done = self._oracle_next_service(st)
        need = at(t.needs_fact, sc, s_star) & ~st["known"]  # [B, F]
        a = torch.full_like(sc, base[A_WAIT])
        a = self._oracle_on_call(st, s_star, a)
        # facts first, and report when done (both override the above); a fact the user won't
        # or can't give (three-party mode) ends the task: report back that it can't be done
        phase = st["phase"]
        reachable = (phase == OFF) | t.user_on_call.index_select(0, sc)
        first_need = torch.argmax(need.long(), dim=1)
        ask = need.any(dim=1) & ~(phase == HOLD) & reachable
        a = torch.where(ask, base[A_ASK_USER] + first_need, a)
        gave_up = (need & st["user_refused"]).any(dim=1) & ~done
        return torch.where(done | gave_up, torch.full_like(a, base[A_REPORT]), a)

    def _oracle_next_service(self, st: State) -> tuple[torch.Tensor, torch.Tensor]:
        """The plan's first service whose record changes aren't in place yet, and whether the
        task is done (the goal met, or nothing left to do)."""
        t, sc = self.t, st["scenario"]
        B = sc.shape[0]
        plan = t.plan.index_select(0, sc)  # [B, 3]
        p0 = plan.clamp(min=0)
        gval = t.grant_val[sc[:, None], p0]  # [B, 3, R]
        oval = t.offer_val[sc[:, None], p0]
        use_offer = t.plan_accept_offer[sc[:, None], p0]
        target = torch.where(use_offer[..., None], oval, gval)
        rec = st["records"][:, None, :]
        sat = ((target < 0) | (rec == target)).all(dim=2) | (plan < 0)
        steps = torch.arange(3, device=self.device)[None, :].expand(B, 3)
        first_open = torch.where(~sat, steps, torch.full_like(plan, 3)).min(dim=1).values
        s_star = plan[torch.arange(B, device=self.device), first_open.clamp(max=2)].clamp(min=0)
        return s_star, self.success(st) | (first_open >= 3)

    def _oracle_on_call(self, st: State, s_star: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The call's part of the plan for service ``s_star``: dial its number, press toward
        its department, then (with a rep) request it and answer the rep's checklist."""
        t, sc, base, V = self.t, st["scenario"], self._kind_base, self.V
        phase = st["phase"]
        # off the call: dial the number for the next request
        num = at(t.oracle_number, sc, s_star)
        alt = at(t.oracle_number_alt, sc, s_star)
        a0 = alt.clamp(min=0)
        use_alt = (alt >= 0) & pick(st["num_known"], a0) & ~at(t.num_listed, sc, a0)
        num = torch.where(use_alt, alt, num).clamp(min=0)
        a = torch.where(phase == OFF, base[A_DIAL] + num, a)
        # in the IVR: press toward the entry department (or the service's, after a redirect)
        entry = torch.where(
            use_alt, at(t.svc_dept, sc, s_star), at(t.oracle_entry_dept, sc, s_star)
        )
        key = at(t.ivr_key_toward, sc, st["node"], entry.clamp(min=0))
        a = torch.where((phase == IVR) & (key >= 0), base[A_PRESS] + key.clamp(min=0), a)
        a = torch.where((phase == IVR) & (key < 0), torch.full_like(a, base[A_HANGUP]), a)
        # with a rep: ask for the service here (or hang up to dial the number a rep gave)
        on_rep, svc = phase == REP, st["service"]
        here = at(t.svc_dept, sc, s_star) == st["dept"]
        transfers = at(t.dept_transfers, sc, st["dept"])
        told = pick(st["num_known"], a0) & (alt >= 0)
        ask_here = here | transfers | ~told
        a = torch.where(on_rep & (svc != s_star) & ask_here, base[A_REQUEST] + s_star, a)
        a = torch.where(on_rep & (svc != s_star) & ~ask_here, torch.full_like(a, base[A_HANGUP]), a)
        # the rep's checklist: state each fact, then yes or no to the fee and the offer
        working = on_rep & (svc == s_star)
        pc = st["pc"]
        pf = at(t.prog_fact, sc, s_star, pc.clamp(max=self.P - 1))
        provide = working & (pc <= V + SLOT_ELIG) & (pf >= 0)
        a = torch.where(provide, base[A_PROVIDE] + pf.clamp(min=0), a)
        fee = torch.where(at(t.plan_accept_fee, sc, s_star), base[A_YES], base[A_NO])
        a = torch.where(working & (pc == V + SLOT_FEE), fee, a)
        offer = torch.where(at(t.plan_accept_offer, sc, s_star), base[A_YES], base[A_NO])
        return torch.where(working & (pc == V + SLOT_OFFER), offer, a)


def _wide(per_world: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-world [B] or [B, 1] tensor laid out in full to ``like``'s [B, n] (on CPU an op
    broadcasting a [B, 1] operand is several times slower than a same-shape one)."""
    wide = per_world.reshape(-1, 1)
    return wide if like.shape[0] < SMALL else wide.expand_as(like).contiguous()


def _widener(per_world: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`_wide` of one per-world mask to any [B, n] tensor, laid out once per width."""
    cache: dict[int, torch.Tensor] = {}

    def wide(like: torch.Tensor) -> torch.Tensor:
        n = like.shape[1]
        if n not in cache:
            cache[n] = _wide(per_world, like)
        return cache[n]

    return wide


def _and_rows(per_world: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``per_world & x`` for bool [B, 1] and [B, n]."""
    return _wide(per_world, x) & x


_TRUE_BYTES = int.from_bytes(b"\x01" * 8, "little")
"""An int64 word of eight ``True`` bool bytes."""


def _all_rows(x: torch.Tensor) -> torch.Tensor:
    """``x.all(dim=1)`` of a bool [B, X]: on CPU from ``SMALL`` worlds on, rows of 8 bytes or
    more compared as int64 words (:func:`_all_words`; below it its few NumPy calls cost more
    than one torch op); else the bytes' minimum (several times faster than ``all`` over a
    short row), a row of 8 bytes, one int64 word, compared whole."""
    B, W = x.shape
    if W == 0:
        return torch.ones(B, dtype=torch.bool, device=x.device)
    if x.is_cpu and W >= 8 and B >= SMALL and x.is_contiguous():
        return torch.from_numpy(_all_words(x.numpy()))
    if W == 8 and x.is_contiguous() and x.storage_offset() % 8 == 0:
        return x.view(torch.int64).squeeze(1) == _TRUE_BYTES
    return x.view(torch.uint8).amin(dim=1) == 1


def _all_words(x: np.ndarray) -> np.ndarray:
    """Whether each row of a C-contiguous bool [B, W] (``B >= 1``, ``W >= 8``) is all True:
    its bytes read as int64 words at offsets 0, 8, ... and ``W - 8`` (the last overlapping
    the one before; every word inside its row), each compared with eight True bytes. At
    65,536 worlds and 21 columns ~0.15 ms against ~0.7 ms for the bytes' minimum."""
    B, W = x.shape
    data = x.reshape(-1)
    offsets = [*range(0, W - 7, 8)]
    if offsets[-1] != W - 8:
        offsets.append(W - 8)
    out = None
    for o in offsets:
        word = np.ndarray((B,), dtype=np.int64, buffer=data, offset=o, strides=(W,))
        same = word == _TRUE_BYTES
        out = same if out is None else np.logical_and(out, same, out=out)
    assert out is not None
    return out


def _none(mask: torch.Tensor) -> bool:
    """Whether no entry of the bool ``mask`` is set (on CPU NumPy's ``any``, ~4 µs against
    ~15-25 µs for torch's; elsewhere the bytes' maximum, cheaper than torch's ``any``)."""
    if mask.is_cpu:
        return not mask.numpy().any()
    return mask.numel() == 0 or not bool(mask.view(torch.uint8).amax())


def _count_rows(x: torch.Tensor) -> torch.Tensor:
    """int32 [B]: the True entries of each row of a bool [B, X] (summed as bytes, with no
    int64 copy of ``x``)."""
    return x.view(torch.uint8).sum(dim=1, dtype=torch.int32)


def _or_at(rows: torch.Tensor, col: torch.Tensor, value: torch.Tensor) -> None:
    """``rows[arange(B), col] |= value`` (bool rows [B, X], in place)."""
    rows.scatter_(1, col[:, None], (pick(rows, col) | value)[:, None])


class Turn:
    """One step in progress: the state, the assistant's action (as of the step's start), the
    messages spoken so far and the per-step tallies the rules write; and the effects the rules
    share (speak a message, fail an action, hand the floor to the rep, enter a queue, ...)."""

    def __init__(
        self,
        eng: PhoneEngine,
        st: State,
        inputs: PhoneActions,
    ) -> None:
        actions = inputs.assistant
        dev, B = eng.device, actions.shape[0]
        self.eng, self.t, self.st = eng, eng.t, st
        self.stated_value = inputs.stated_value
        self.sc = st["scenario"]
        self.floor0 = st["floor"].clone()
        a_turn = self.floor0 == FLOOR_ASSISTANT
        self.kind = torch.where(a_turn, at(eng.act_kind, actions), A_IDLE)
        self.arg = at(eng.act_arg, actions)
        ph0 = st["phase"].clone()
        self.off, self.on_ivr, self.on_hold, self.on_rep = (
            ph0 == OFF,
            ph0 == IVR,
            ph0 == HOLD,
            ph0 == REP,
        )
        self.speech = a_turn & at(eng.act_speech, actions)
        # Messages are collected in the order the rules speak them and laid into the world's
        # message slots once, at the end of the step (one scatter instead of one per message).
        self.spoken: list[tuple[torch.Tensor, torch.Tensor, bool, torch.Tensor | None]] = []
        """(mask, message, per_scenario, rows): a message id per world, or (per_scenario) a
        per-scenario table of them; ``rows`` maps a sub-turn's worlds to the step's
        (:meth:`merge`; None: the step's worlds)."""
        self.err = torch.zeros(B, dtype=torch.int64, device=dev)
        self.rep_err = torch.zeros(B, dtype=torch.int64, device=dev)
        zf = torch.zeros(B, dtype=torch.float32, device=dev)
        self.privacy, self.over = zf, zf.clone()
        self.forbidden, self.false_ver, self.wrongful = zf.clone(), zf.clone(), zf.clone()

    @property
    def node(self) -> torch.Tensor:
        """The IVR menu node each world is at now."""
        return self.st["node"]

    def idle(self, mask: torch.Tensor) -> bool:
        """Whether an effect on the masked worlds touches none (then it is skipped: the same
        state, and no draw is taken). A sync-free engine never tests (no host sync)."""
        return not self.eng.sync_free and _none(mask)

    def emit(self, mask: torch.Tensor, mid: torch.Tensor) -> None:
        """The masked worlds hear message ``mid`` (int64 [B]; -1: nothing)."""
        if not self.idle(mask):
            self.spoken.append((mask, mid, False, None))

    def say(self, mask: torch.Tensor, table: torch.Tensor) -> None:
        """The masked worlds hear their scenario's message ``table[scenario]`` (``table``:
        int64 [K], one of the per-scenario message tables; looked up for the speakers only)."""
        if not self.idle(mask):
            self.spoken.append((mask, table, True, None))

    def fail(self, mask: torch.Tensor, code: int, table: torch.Tensor) -> None:
        """The masked worlds' action fails with error ``code``; they hear why (their
        scenario's message ``table[scenario]``)."""
        self.err.masked_fill_(mask, code)
        self.say(mask, table)

    def rows(self, rows: torch.Tensor) -> Turn:
        """A turn over the worlds ``rows`` only, for rules that act in a few worlds; each state
        field, input and tally is gathered when a rule first reads it, and :meth:`merge`
        writes back the state fields and tallies it read or wrote."""
        sub = object.__new__(_SubTurn)
        sub.eng, sub.t = self.eng, self.t
        sub._parent, sub._rows = self, rows
        sub.st = _GatheredState(self.st, rows)
        sub.sc = sub.st["scenario"]
        sub.spoken = []
        return sub

    def merge(self, sub: Turn, rows: torch.Tensor) -> None:
        """Write back a :meth:`rows` turn: its worlds' state and tallies, and its messages
        after the ones spoken so far."""
        for k, v in sub.st.items():
            copy_rows(self.st[k], rows, v)
        mine = vars(sub)
        for k in _TALLIES:
            if k in mine:
                copy_rows(getattr(self, k), rows, mine[k])
        for mask, message, per_scenario, _ in sub.spoken:
            self.spoken.append((mask, message, per_scenario, rows))

    def end_service(self, mask: torch.Tensor) -> None:
        if self.idle(mask):
            return
        st = self.st
        st["service"] = torch.where(mask, -1, st["service"])
        st["pc"] = torch.where(mask, 0, st["pc"])

    def to_rep(self, mask: torch.Tensor, stim: int, stim_arg: torch.Tensor | None = None) -> None:
        """Hand the floor to the rep, who answers ``stim`` (with ``stim_arg``)."""
        if self.idle(mask):
            return
        st = self.st
        st["floor"] = torch.where(mask, FLOOR_REP, st["floor"])
        st["stim"] = torch.where(mask, stim, st["stim"])
        # A stimulus without an argument clears the last one's (the rep's screen shows only
        # what this turn is about).
        arg_ = torch.full_like(st["stim_arg"], -1) if stim_arg is None else stim_arg
        st["stim_arg"] = torch.where(mask, arg_, st["stim_arg"])
        st["stim_ok"] = st["stim_ok"] & ~mask

    def connect(self, mask: torch.Tensor) -> None:
        """A rep picks up (and greets: the rep's first move)."""
        if self.idle(mask):
            return
        st = self.st
        st["phase"] = torch.where(mask, REP, st["phase"])
        self.to_rep(mask, STIM_PICKUP)

    def enter_queue(self, mask: torch.Tensor, dept: torch.Tensor) -> None:
        """Join department ``dept``'s hold queue: a seeded hold length and rep (a transfer
        reaches someone else); no wait at all connects at once."""
        if self.idle(mask):
            return
        t, st, sc, eng = self.t, self.st, self.sc, self.eng
        d = dept.clamp(min=0)
        st["dept"] = torch.where(mask, d, st["dept"])
        lo, hi = at(t.dept_hold_lo, sc, d), at(t.dept_hold_hi, sc, d)
        keys = (st["seed"], st["episode"], st["turn"])
        draw = lo + eng._draw(mask, hi - lo + 1, *keys, _S_HOLD)
        st["hold_left"] = torch.where(mask, draw, st["hold_left"])
        st["rep"] = torch.where(
            mask, eng._draw(mask, t.n_reps.index_select(0, sc), *keys, _S_REP), st["rep"]
        )
        st["phase"] = torch.where(mask, HOLD, st["phase"])
        self.emit(mask & (draw > 0), at(t.m_hold, sc, d))
        self.connect(mask & (draw == 0))

    def follow(self, mask: torch.Tensor, kind: torch.Tensor, rid: torch.Tensor) -> None:
        """Follow an IVR route: 1 = menu node, 2 = department queue."""
        if self.idle(mask):
            return
        st = self.st
        to_node = mask & (kind == 1)
        st["phase"] = torch.where(to_node, IVR, st["phase"])
        st["node"] = torch.where(to_node, rid.clamp(min=0), st["node"])
        self.emit(to_node, at(self.t.m_ivr_prompt, self.sc, st["node"]))
        # Every world computes both branches: a menu id must never index the department
        # tables (a set with more menus than departments would read out of bounds).
        to_queue = mask & (kind == 2)
        self.enter_queue(to_queue, torch.where(to_queue, rid, 0))

    def end_call(self, mask: torch.Tensor) -> None:
        if self.idle(mask):
            return
        st = self.st
        st["phase"] = torch.where(mask, OFF, st["phase"])
        st["number"] = torch.where(mask, -1, st["number"])
        self.end_service(mask)


class _GatheredState(dict):
    """A sub-turn's state (:meth:`Turn.rows`): a field of the step's state at the sub-turn's
    worlds, gathered when first read (and then held, whatever the rules do to it)."""

    def __init__(self, parent: State, rows: torch.Tensor) -> None:
        super().__init__()
        self._parent, self._rows = parent, rows

    def __missing__(self, key: str) -> torch.Tensor:
        value = self[key] = self._parent[key].index_select(0, self._rows)
        return value


class _SubTurn(Turn):
    """A :class:`Turn` over some of the step's worlds (:meth:`Turn.rows`): its inputs and
    tallies are the parent turn's rows, gathered when a rule first reads them."""

    _parent: Turn
    _rows: torch.Tensor

    def __getattr__(self, name: str) -> Any:  # called only for attributes not set yet
        if name not in _TURN_INPUTS and name not in _TALLIES:
            raise AttributeError(name)
        value = getattr(self._parent, name)
        if value is not None:
            value = value.index_select(0, self._rows)
        setattr(self, name, value)
        return value


class RepView:
    """What a rep move sees: the stimulus it answers and the request, as they were when the
    move began (the move's rules read these, not what earlier rules of the move changed)."""

    def __init__(self, eng: PhoneEngine, u: Turn, move: torch.Tensor) -> None:
        st, sc = u.st, u.sc
        self.rk, self.ra = at(eng.rep_kind, move), at(eng.rep_arg, move)
        self.stim, self.sarg, self.sok = st["stim"], st["stim_arg"], st["stim_ok"]
        svc = st["service"]
        self.s0, self.active, self.pc = svc.clamp(min=0), svc >= 0, st["pc"]
        self.stated = self.stim == STIM_PROVIDE
        self.sf = self.sarg.clamp(min=0, max=eng.F - 1)
        self.answers = self.stated & (eng.pending_fact(st) == self.sarg)
        self.at_elig = self.pc == eng.V + SLOT_ELIG
        # the service a transfer / referral / explanation is about
        about = (self.stim == STIM_REQUEST) | (self.stim == STIM_ASK_ABOUT)
        target = torch.where(about, self.sarg, svc)
        self.t0 = target.clamp(min=0, max=max(len(eng.c.services) - 1, 0))
        self.t_ok = (target >= 0) & eng.t.svc_exists[sc, self.t0]


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


def random_action_smoke(compiled: CompiledPhone, worlds: int = 8, seed: int = 0) -> None:
    """Run every scenario of ``compiled`` under uniformly random actions (the garbled action
    included) for its whole turn limit, resetting worlds that end; observations included.

    The oracle takes one path through a scenario; random actions press every IVR key, dial
    every number and ask for every service, so this exercises the tables a scenario's other
    paths read. ``envgym validate`` runs it, so a scenario that validates can't crash the
    engine on those paths. Raises whatever the engine raises (a bug to report).
    """
    K = compiled.dims["K"]
    B = K * worlds
    eng = PhoneEngine(compiled, torch.device("cpu"))
    st = eng.empty_state(B)
    eng.reset(st, torch.ones(B, dtype=torch.bool), torch.arange(B, dtype=torch.int64) + seed)
    st["scenario"] = torch.arange(B) % K
    eng.reset_scenario_fields(st)
    gen = torch.Generator().manual_seed(seed)
    horizon = int(compiled.tables["max_turns"].max()) + 2
    for _ in range(horizon):
        acts = torch.randint(0, eng.garbled_action + 1, (B,), generator=gen)
        out = eng.step(st, acts)
        eng.tokens(st)
        done = out["terminated"] | out["truncated"]
        eng.reset(st, done, None)  # the next episode draws its scenario, as in a batch
