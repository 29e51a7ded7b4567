"""Real-time, full-duplex phone calls: a tick layer over the batched :class:`PhoneEngine`.

Time advances in fixed ticks of call time (``tick_ms``, default 200 ms; decoupled from the wall
clock). Everything the world says streams as tokens, ``tokens_per_tick`` per tick, and the
assistant's own utterances take ticks to say. Each tick the assistant may stay silent, think
about (prepare) its next utterance while it listens, speak the next chunk of a prepared
utterance when the line is free, or barge in over the other party. When an utterance is
complete the layer calls the engine's *turn* step for exactly those worlds, so every phone rule
(IVR, hold, verification, fees, policies) stays in :mod:`envgym.phone.engine`; this module only
adds time. Silences take time too: on hold, hold music plays for ``realtime.hold_turn_s`` per
hold turn; an IVR menu left silent times out; a rep left in dead air asks whether the caller is
still there (each of these is the engine's ``wait`` turn, fired by a timer).

Like the engine, a tick is a fixed sequence of masked tensor operations over B worlds (the
engine's turn step runs batched, with a mask, only on ticks where some world needs it).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from envgym.core import StepOutput, TorchVectorEnv, keys
from envgym.core.single import SingleEnv
from envgym.core.vector import ActionRule, one_world_action
from envgym.phone.compiler import CompiledPhone
from envgym.phone.engine import STATES_KNOWN, PhoneActions, PhoneEngine
from envgym.phone.inputs import phone_actions
from envgym.phone.models import PhoneScenario
from envgym.phone.names import (
    A_ASK_ABOUT,
    A_ASK_USER,
    A_DIAL,
    A_HANGUP,
    A_NO,
    A_PRESS,
    A_PROVIDE,
    A_REQUEST,
    A_WAIT,
    A_YES,
    ACTION_ERRORS,
    HOLD,
    IVR,
    PHASE_NAMES,
    REP,
    REWARD_TERMS,
)
from envgym.phone.scenarios import ScenarioSpec
from envgym.phone.text import tokenize

# Who a heard token comes from (``heard_from``).
CH_NONE, CH_OTHER, CH_SYSTEM, CH_BACKCHANNEL, CH_MUSIC = range(5)
CHANNEL_NAMES = ("none", "other_party", "system_or_user", "backchannel", "hold_music")

# Tick actions before the ``prepare:<utterance>`` block.
RT_SILENT, RT_SPEAK, RT_BARGE_IN = 0, 1, 2
RT_FIRST_PREPARE = 3

RT_ACTION_ERRORS = (*ACTION_ERRORS, "nothing_prepared")
E_NOT_PREPARED = len(ACTION_ERRORS)

RT_REWARD_TERMS = (*REWARD_TERMS, "response_latency", "talk_over", "dead_air")

BACKCHANNEL_TOKEN = "<mm-hm>"
MUSIC_TOKEN = "<music>"

# Speech the other party hears as talk (keys, dialling, asking the user and reporting are not).
_TALK_KINDS = (A_YES, A_NO, A_REQUEST, A_ASK_ABOUT, A_PROVIDE)
_NO_LIMIT = 1 << 40


def utterance_text(sc: PhoneScenario, kind: int, arg_name: str) -> str:
    """The assistant's words for a catalogue action in scenario ``sc``.

    Speech (and asking the user) takes as many ticks as its tokens need; keys, dialling,
    hanging up and reporting take one tick.
    """
    services = {s.id: s.label for s in sc.policies.services}
    facts = {f.id: f for f in sc.user.facts}
    if kind == A_YES:
        return "Yes, please."
    if kind == A_NO:
        return "No, thank you."
    if kind == A_REQUEST:
        return f"Hi, I'm calling for {sc.user.name}. I'd like {services.get(arg_name, arg_name)}."
    if kind == A_ASK_ABOUT:
        return f"What do you need from me for {services.get(arg_name, arg_name)}?"
    if kind == A_PROVIDE:
        f = facts.get(arg_name)
        return f"Sure, the {f.label} is {f.value}." if f else f"The {arg_name} is unknown."
    if kind == A_ASK_USER:
        f = facts.get(arg_name)
        return f"(to the user) What is your {f.label if f else arg_name}?"
    if kind == A_DIAL:
        return "(dials)"
    if kind == A_PRESS:
        return f"(presses {arg_name})"
    if kind == A_HANGUP:
        return "(hangs up)"
    return "(reports to the user)"


def _ticks(seconds: float, tick_s: float) -> int:
    return max(1, math.ceil(seconds / tick_s - 1e-9))


class _AssistantTick(NamedTuple):
    """What the assistant did this tick (``[B]`` tensors), for the later parts of the tick."""

    prep: torch.Tensor
    """The catalogue action being prepared (0: none)."""
    not_ready: torch.Tensor
    """Wanted to speak with nothing ready (an ``E_NOT_PREPARED`` error)."""
    talk: torch.Tensor
    go: torch.Tensor
    """Said the next chunk."""
    voice: torch.Tensor
    """The assistant's voice is on the line."""
    starts: torch.Tensor
    complete: torch.Tensor
    """Said the utterance's last chunk: the engine takes the turn."""
    over: torch.Tensor
    """Talked over the other party."""
    interrupt: torch.Tensor
    on_rep: torch.Tensor
    yields: torch.Tensor
    """The rep yields to the interruption."""


class _EngineTick(NamedTuple):
    """The engine's side of a tick (``[B]`` tensors)."""

    stepped: torch.Tensor
    """Worlds whose engine took a turn."""
    quiet_before: torch.Tensor
    terms: dict[str, torch.Tensor]
    err: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor


def _check_arguments(
    obs_mode: str, cuda_graph: bool | None, tick_ms: int, tokens_per_tick: int, think_ticks: int
) -> None:
    """Raise ``ValueError`` for arguments the real-time vector env does not serve."""
    if obs_mode != "tokens":
        raise ValueError(
            f"the real-time phone env serves obs_mode='tokens' (got {obs_mode!r}); "
            "`envgym play envgym/Phone-v0 --realtime` is its text UI"
        )
    if cuda_graph:
        raise ValueError("the real-time phone env has no CUDA-graph step (cuda_graph=True)")
    for name, v, lo in (
        ("tick_ms", tick_ms, 10),
        ("tokens_per_tick", tokens_per_tick, 1),
        ("think_ticks", think_ticks, 0),
    ):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


class PhoneRealtimeVectorEnv(TorchVectorEnv):
    """B real-time phone calls, ticked together over the batched phone engine.

    ## Description
    The phone task of :class:`envgym.phone.faces.PhoneVectorEnv` in call time: each step is one
    tick (``tick_ms`` of call time). The world's words stream ``tokens_per_tick`` tokens per
    tick; an assistant utterance must first be *prepared* (``think_ticks`` ticks of thinking,
    which can overlap listening) and then takes ticks to say. When its last chunk is said, the
    engine takes it as a turn and its answer starts streaming in the same tick.

    ## Action: ``Discrete(3 + A - 1)``, names in ``envs.action_names``
    - ``silent`` (0): say nothing, think nothing; listen. Pauses an utterance being said.
    - ``speak`` (1): say the next chunk of the prepared utterance when the line is free; while
      words are still coming (the other party's or a system note), keep listening instead (the
      chunk waits). Keys, dialling, asking the user and reporting need no free line.
    - ``barge_in`` (2): say the next chunk now, over the other party if they talk
      (an interruption: the rep yields or talks on, per scenario ``realtime.on_interrupt``).
    - ``prepare:<action>`` (3 + j): think about catalogue action ``j + 1`` of the turn-based
      env (every action but ``wait``) for this tick; switching abandons the previous one.
    ``speak``/``barge_in`` with nothing ready is an ``action_error`` (``nothing_prepared``).
    ``step`` also takes a :class:`~envgym.phone.engine.PhoneActions` record of tick actions
    and, for ``prepare`` of a ``provide``, the stated value's id: it is kept with the prepared
    utterance and the engine checks it when the utterance is said (without one, or with plain
    actions, the assistant states what it knows).

    ## Observation, a ``Dict``
    ``heard`` int32 ``[C]``: tokens heard this tick (0 = nothing); ``heard_from`` int8 ``[C]``
    per token: 0 none, 1 the other party (rep or IVR), 2 system or user, 3 a backchannel
    (``<mm-hm>``, never a turn), 4 hold music (``<music>``); ``phase``; ``prepared``: the
    catalogue action being prepared or said (0 = none); ``progress`` int32 ``[2]``: ticks
    thought, ticks said; ``known_facts``; ``calls``; ``tick`` int32 ``[1]``.

    ## Reward terms
    The turn-based terms (``goal`` at episode end, the engine's per-turn terms on ticks where a
    turn happens) plus ``response_latency`` (-w per tick between the other party's end of turn
    and the assistant's reply, charged at the reply), ``talk_over`` (-w per tick the assistant
    talks while the other party talks) and ``dead_air`` (-w per silent tick on the assistant's
    floor with a rep). Weights per scenario in ``realtime:``.

    ## Target
    ``info["next_obs_target"]``: the ``heard`` tokens of the next observation (what the world
    emits in this tick), before any auto-reset.

    ## Episode end
    ``report`` terminates; the engine's turn limit or ``realtime.max_seconds`` truncates.
    On the last tick ``info["interaction"]`` (all worlds, running values; ``_interaction`` marks
    the ended ones) holds the episode's ``mean_response_latency_s``, ``responses``,
    ``interruptions``, ``overlap_s`` and ``dead_air_s``.

    ## Arguments
    Those of ``PhoneVectorEnv`` plus ``tick_ms`` (200), ``tokens_per_tick`` (2),
    ``think_ticks`` (3).
    """

    def __init__(
        self,
        num_envs: int = 1,
        scenario: ScenarioSpec = "isp_bill_discount",
        *,
        difficulty: int = 1,
        num_generated: int = 32,
        generator_seed: int = 0,
        obs_mode: str = "tokens",
        device: str | torch.device | None = "cpu",
        max_tokens: int | None = None,
        hints: bool | None = None,
        compiled: CompiledPhone | None = None,
        tick_ms: int = 200,
        tokens_per_tick: int = 2,
        think_ticks: int = 3,
        cuda_graph: bool | None = None,
    ) -> None:
        super().__init__(num_envs, device)
        from envgym.phone.faces import _compile

        _check_arguments(obs_mode, cuda_graph, tick_ms, tokens_per_tick, think_ticks)
        self.compiled = compiled or _compile(
            scenario, difficulty, num_generated, generator_seed, max_tokens, hints
        )
        c = self.compiled
        vocab = c.book.vocab
        self.backchannel_token = vocab.setdefault(BACKCHANNEL_TOKEN, len(vocab))
        self.music_token = vocab.setdefault(MUSIC_TOKEN, len(vocab))
        self.engine = PhoneEngine(c, self.device)
        self.tick_s = tick_ms / 1000.0
        self.C = int(tokens_per_tick)
        self.think_ticks = int(think_ticks)
        cat = c.catalogue
        assert cat[0].kind == A_WAIT, "the catalogue starts with wait"
        self.action_names = ["silent", "speak", "barge_in"] + [f"prepare:{a.name}" for a in cat[1:]]
        self.action_error_names = RT_ACTION_ERRORS
        self.phase_names = PHASE_NAMES
        self.channel_names = CHANNEL_NAMES
        self.reward_term_names = RT_REWARD_TERMS

        self._build_tables()
        self._build_spaces()
        self._stated_in: torch.Tensor | None = None  # this step's record's stated values
        self._L = L = c.max_tokens
        self._Lb = 2 * L  # the stream buffer: queued notes plus one answer
        self.state = self._empty_state(self.num_envs)
        self._rt_keys = tuple(k for k in self.state if k.startswith("rt_"))

    def _build_tables(self) -> None:
        """Per-scenario tables: utterance lengths (in ticks), timers, behaviour and weights."""
        c, dev = self.compiled, self.device
        cat = c.catalogue
        A = len(cat)
        K = len(c.scenarios)
        self.utterances: list[list[str]] = []
        utt = torch.ones(K, A, dtype=torch.int64)
        for k, sc in enumerate(c.scenarios):
            row = []
            for i, a in enumerate(cat):
                text = utterance_text(sc, a.kind, a.name.partition(":")[2])
                row.append(text)
                if a.kind in _TALK_KINDS or a.kind == A_ASK_USER:
                    utt[k, i] = max(1, math.ceil(len(tokenize(text)) / self.C))
            self.utterances.append(row)
        rt = [sc.realtime for sc in c.scenarios]
        ts = self.tick_s

        def col(vals: list[Any], dtype: torch.dtype = torch.int64) -> torch.Tensor:
            return torch.tensor(vals, dtype=dtype, device=dev)

        self.utterance_ticks = utt.to(dev)
        """int64 [K, A]: ticks it takes to say catalogue action ``a`` in scenario ``k``."""
        self._is_talk = col([a.kind in _TALK_KINDS for a in cat], torch.bool)
        self._yields = col([r.on_interrupt == "yield" for r in rt], torch.bool)
        self._backchannel = col([r.backchannel for r in rt], torch.bool)
        # Timer per phase (off, IVR, hold, rep): silent ticks before the engine's wait turn.
        self._timer = col(
            [
                [
                    _NO_LIMIT,
                    _ticks(r.ivr_timeout_s, ts),
                    _ticks(r.hold_turn_s, ts),
                    _ticks(r.patience_s, ts),
                ]
                for r in rt
            ]
        )
        self._max_ticks = col(
            [
                _ticks(r.max_seconds if r.max_seconds else 10.0 * sc.constraints.max_turns, ts)
                for r, sc in zip(rt, c.scenarios, strict=True)
            ]
        )
        self._w_rt = col([[r.response_latency, r.talk_over, r.dead_air] for r in rt], torch.float32)
        chan = [CH_OTHER if s in ("rep", "ivr") else CH_SYSTEM for s in c.book.speakers]
        self._msg_chan = col(chan, torch.int8)
        self._engine_keys = tuple(self.engine.empty_state(1))

    def _build_spaces(self) -> None:
        """The observation (what is heard this tick and the call's state) and action spaces."""
        c = self.compiled
        A = len(c.catalogue)
        vocab = c.book.vocab
        Vocab, F, N = len(vocab), c.dims["F"], c.dims["N"]
        heard = spaces.Box(0, Vocab - 1, (self.C,), np.int32)
        self.single_observation_space = spaces.Dict(
            {
                "heard": heard,
                "heard_from": spaces.Box(0, len(CHANNEL_NAMES) - 1, (self.C,), np.int8),
                "phase": spaces.Discrete(4),
                "prepared": spaces.Discrete(A),
                "progress": spaces.Box(0, 10_000, (2,), np.int32),
                "known_facts": spaces.MultiBinary(F),
                "calls": spaces.Box(0, 255, (N,), np.int32),
                "tick": spaces.Box(0, 10_000_000, (1,), np.int32),
            }
        )
        self.single_action_space = spaces.Discrete(len(self.action_names))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_target_space = heard
        self.target_space = batch_space(heard, self.num_envs)

    # ------------------------------------------------------------------ state
    def _empty_state(self, B: int) -> dict[str, torch.Tensor]:
        st = self.engine.empty_state(B)
        dev, i64 = self.device, torch.int64

        def z(*shape: int, dtype: torch.dtype = i64) -> torch.Tensor:
            return torch.zeros(shape, dtype=dtype, device=dev)

        st.update(
            {
                "rt_tick": z(B),
                "rt_buf": z(B, self._Lb, dtype=torch.int32),  # what the world is saying
                "rt_chan": z(B, self._Lb, dtype=torch.int8),
                "rt_len": z(B),
                "rt_pos": z(B),
                "rt_heard": z(B, self.C, dtype=torch.int32),  # heard in the last tick
                "rt_heard_from": z(B, self.C, dtype=torch.int8),
                "rt_prep": z(B),  # catalogue action thought about / being said (0 none)
                "rt_stated": z(B) + STATES_KNOWN,  # its stated value's id (PhoneActions)
                "rt_thought": z(B),
                "rt_said": z(B),
                "rt_garbled": z(B, dtype=torch.bool),  # talked over a rep who talked on
                "rt_over": z(B, dtype=torch.bool),  # talking over the other party last tick
                "rt_backchannel": z(B, dtype=torch.bool),  # given for this utterance
                "rt_quiet": z(B),  # consecutive ticks of silence on the line
                "rt_floor": z(B) - 1,  # tick the other party ended its turn (-1: not waiting)
                "rt_lat_sum": z(B),
                "rt_lat_n": z(B),
                "rt_interrupts": z(B),
                "rt_overlap": z(B),
                "rt_dead": z(B),
            }
        )
        return st

    def _channels(self, st: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per token of ``engine.tokens(st)``, the channel it comes from: int8 [B, L]."""
        msgs, var = st["msgs"], st["vars"]
        m = msgs.clamp(min=0)
        ln = torch.where(msgs >= 0, self.compiled.msg_len[m, var], torch.zeros_like(msgs))
        end = torch.cumsum(ln, dim=1)
        pos = torch.arange(self._L, device=self.device)
        slot = (pos[None, None, :] >= end[:, :, None]).sum(dim=1)  # [B, L]
        ch = torch.where(msgs >= 0, self._msg_chan[m], torch.zeros_like(self._msg_chan[m]))
        ch = torch.cat([ch, torch.zeros_like(ch[:, :1])], dim=1)
        return torch.gather(ch, 1, slot)

    def _load_stream(self, idx: torch.Tensor, tokens: torch.Tensor, chan: torch.Tensor) -> None:
        """Queue the engine's answer ``tokens`` ([n, L], for worlds ``idx``) in their streams.

        What was not heard yet of the other party's words is dropped (they stop to answer, or
        the IVR stops when a key is pressed); queued system and user notes are kept, in front.
        """
        st, Lb = self.state, self._Lb
        pos, ln = st["rt_pos"][idx], st["rt_len"][idx]
        at = pos[:, None] + torch.arange(Lb, device=self.device)[None, :]
        valid = at < ln[:, None]
        j = at.clamp(max=Lb - 1)
        rem_tok = torch.where(valid, torch.gather(st["rt_buf"][idx], 1, j), 0)
        rem_ch = torch.where(valid, torch.gather(st["rt_chan"][idx], 1, j), 0).to(torch.int8)
        tok_all = torch.cat([rem_tok, tokens.to(torch.int32)], dim=1)
        ch_all = torch.cat([rem_ch, chan], dim=1)
        keep = torch.cat([valid & (rem_ch != CH_OTHER), tokens != 0], dim=1)
        dest = torch.cumsum(keep.long(), dim=1) - 1
        dest = torch.where(keep & (dest < Lb), dest, Lb)  # the extra column is discarded
        n = tokens.shape[0]
        new_tok = torch.zeros(n, Lb + 1, dtype=torch.int32, device=self.device)
        new_ch = torch.zeros(n, Lb + 1, dtype=torch.int8, device=self.device)
        new_tok.scatter_(1, dest, tok_all)
        new_ch.scatter_(1, dest, ch_all)
        st["rt_buf"][idx] = new_tok[:, :Lb]
        st["rt_chan"][idx] = new_ch[:, :Lb]
        st["rt_len"][idx] = keep.sum(dim=1).clamp(max=Lb)
        st["rt_pos"][idx] = 0

    def _emit(self, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The next chunk of every world's stream: (tokens int32 [B, C], channels int8 [B, C]).

        Only the worlds in ``mask`` (default: all) move on in their stream."""
        st = self.state
        at = st["rt_pos"][:, None] + torch.arange(self.C, device=self.device)[None, :]
        valid = at < st["rt_len"][:, None]
        j = at.clamp(max=self._Lb - 1)
        tok = torch.where(valid, torch.gather(st["rt_buf"], 1, j), 0)
        ch = torch.where(valid, torch.gather(st["rt_chan"], 1, j), 0).to(torch.int8)
        moved = torch.minimum(st["rt_pos"] + self.C, st["rt_len"])
        st["rt_pos"] = moved if mask is None else torch.where(mask, moved, st["rt_pos"])
        return tok.to(torch.int32), ch

    # ------------------------------------------------------------------ engine hooks
    def _reset_worlds(self, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        self.engine.reset(self.state, mask, seeds)
        self._restart_streams(mask)

    def _restart_streams(self, mask: torch.Tensor) -> None:
        """Fresh real-time state for the masked worlds' new episode; the intro starts."""
        st = self.state
        fill = {"rt_floor": -1, "rt_stated": STATES_KNOWN}
        for k in self._rt_keys:
            m = mask.view(-1, *([1] * (st[k].dim() - 1)))
            st[k] = st[k].masked_fill(m, fill.get(k, 0))
        idx = torch.nonzero(mask).flatten()
        sub = {"msgs": st["msgs"][idx], "vars": st["vars"][idx]}
        self._load_stream(idx, self.engine.tokens(sub), self._channels(sub))
        tok, ch = self._emit(mask)
        st["rt_heard"] = torch.where(mask[:, None], tok, st["rt_heard"])
        st["rt_heard_from"] = torch.where(mask[:, None], ch, st["rt_heard_from"])

    def _engine_turn(self, idx: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        """The engine's turn step for worlds ``idx`` only (the others are not touched); their
        answer is queued in their streams. Returns the engine's output for those worlds."""
        st = self.state
        sub = {k: st[k][idx] for k in self._engine_keys}
        out = self.engine.step(sub, PhoneActions(actions[idx], st["rt_stated"][idx]))
        for k in self._engine_keys:
            st[k][idx] = sub[k]
        self._load_stream(idx, self.engine.tokens(sub), self._channels(sub))
        return out

    def _convert_actions(self, actions: Any) -> torch.Tensor:
        """Tick action ids (see :meth:`TorchVectorEnv._convert_actions`), or a
        :class:`~envgym.phone.engine.PhoneActions` record of them with the values stated by
        its ``prepare`` actions (int64 ``[B]`` value ids, :meth:`PhoneEngine.value_id`)."""
        checked = self.action_rule()(actions, self.num_envs)
        if not isinstance(checked, PhoneActions):
            self._stated_in = None
            return checked.to(self.device)
        said = checked.stated_value
        self._stated_in = None if said is None else said.to(self.device)
        return checked.assistant.to(self.device)

    def action_rule(self) -> ActionRule:
        """:func:`envgym.phone.inputs.phone_actions` for tick actions (see
        :meth:`TorchVectorEnv.action_rule`): plain ids and records of them with stated values
        (no learned rep or user here)."""
        return partial(
            phone_actions, space=self.single_action_space, garbled_action=None, rep_actions=None
        )

    def _step_worlds(self, actions: torch.Tensor) -> StepOutput:
        sc = self.state["scenario"]
        phase0 = self.state["phase"].clone()  # the engine turn below updates st in place
        me = self._assistant_tick(actions, sc, phase0)
        eng = self._engine_tick(me, sc, phase0)
        tok, ch, silent_world = self._world_speech(me, eng, sc)
        latency, dead = self._interaction_tick(me, eng, ch, silent_world)
        return self._tick_output(me, eng, sc, tok, latency, dead)

    def _assistant_tick(
        self, actions: torch.Tensor, sc: torch.Tensor, phase0: torch.Tensor
    ) -> _AssistantTick:
        """The assistant's tick: think, or say the next chunk of what it prepared; talking
        over the other party is an interruption, where the rep yields or talks on."""
        st = self.state
        prep_a = (actions - RT_FIRST_PREPARE + 1).clamp(min=0)  # catalogue id
        is_prep = actions >= RT_FIRST_PREPARE
        switch = is_prep & (prep_a != st["rt_prep"])
        for k in ("rt_thought", "rt_said"):
            st[k] = torch.where(switch, torch.zeros_like(st[k]), st[k])
        for k in ("rt_garbled", "rt_backchannel"):
            st[k] = st[k] & ~switch
        st["rt_prep"] = torch.where(switch, prep_a, st["rt_prep"])
        said, self._stated_in = self._stated_in, None
        said = torch.full_like(prep_a, STATES_KNOWN) if said is None else said.to(self.device)
        st["rt_stated"] = torch.where(is_prep, said, st["rt_stated"])
        st["rt_thought"] = torch.where(
            is_prep, (st["rt_thought"] + 1).clamp(max=self.think_ticks), st["rt_thought"]
        )
        prep = st["rt_prep"]
        ready = (prep > 0) & (st["rt_thought"] >= self.think_ticks)
        wants = (actions == RT_SPEAK) | (actions == RT_BARGE_IN)
        talk = self._is_talk[prep]
        nxt = torch.gather(st["rt_chan"], 1, st["rt_pos"].clamp(max=self._Lb - 1)[:, None])[:, 0]
        other_talking = (st["rt_pos"] < st["rt_len"]) & (nxt == CH_OTHER)
        busy = st["rt_pos"] < st["rt_len"]  # the world still has words on the way
        go = wants & ready & ~((actions == RT_SPEAK) & busy & talk)
        voice = go & talk  # the assistant's voice is on the line this tick
        starts = go & (st["rt_said"] == 0)
        st["rt_said"] = st["rt_said"] + go.long()
        complete = go & (st["rt_said"] >= self.utterance_ticks[sc, prep])
        over = voice & other_talking
        on_rep = phase0 == REP
        yields = over & on_rep & self._yields[sc]
        st["rt_garbled"] = st["rt_garbled"] | (over & ~yields)
        return _AssistantTick(
            prep=prep,
            not_ready=wants & ~ready,
            talk=talk,
            go=go,
            voice=voice,
            starts=starts,
            complete=complete,
            over=over,
            interrupt=over & ~st["rt_over"],
            on_rep=on_rep,
            yields=yields,
        )

    def _engine_tick(
        self, me: _AssistantTick, sc: torch.Tensor, phase0: torch.Tensor
    ) -> _EngineTick:
        """The engine's turn where an utterance completed or a silence timer ran out (only
        those worlds go through the engine); a completed utterance is cleared."""
        st, prep = self.state, me.prep
        B = prep.shape[0]
        zero_f = torch.zeros(B, dtype=torch.float32, device=self.device)
        quiet_before = st["rt_quiet"]
        stream_done = st["rt_pos"] >= st["rt_len"]
        timer = ~me.go & stream_done & (quiet_before >= self._timer[sc, phase0])
        garbled = torch.full_like(prep, self.engine.garbled_action)
        turn_act = torch.where(
            me.complete,
            torch.where(st["rt_garbled"] & me.talk, garbled, prep),
            torch.zeros_like(prep),
        )
        stepped = me.complete | timer
        terms = {k: zero_f for k in RT_REWARD_TERMS}
        err = torch.where(me.not_ready, E_NOT_PREPARED, 0)
        terminated = torch.zeros(B, dtype=torch.bool, device=self.device)
        eng_trunc = torch.zeros(B, dtype=torch.bool, device=self.device)
        idx = torch.nonzero(stepped).flatten()
        if idx.numel() > 0:
            out = self._engine_turn(idx, turn_act)
            for k in ("turn_cost", "privacy_violation", "over_call_budget", "invalid_action"):
                terms[k] = zero_f.index_put((idx,), out["reward_terms"][k])
            terminated = terminated.index_put((idx,), out["terminated"])
            eng_trunc = eng_trunc.index_put((idx,), out["truncated"])
            err = err.index_put(
                (idx,), torch.where(out["action_error"] != 0, out["action_error"], err[idx])
            )
        done_utt = me.complete
        st["rt_prep"] = torch.where(done_utt, torch.zeros_like(prep), st["rt_prep"])
        for k in ("rt_thought", "rt_said"):
            st[k] = torch.where(done_utt, torch.zeros_like(st[k]), st[k])
        for k in ("rt_garbled", "rt_backchannel"):
            st[k] = st[k] & ~done_utt
        return _EngineTick(stepped, quiet_before, terms, err, terminated, eng_trunc)

    def _world_speech(
        self, me: _AssistantTick, eng: _EngineTick, sc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the world says this tick (tokens, channels, whether it was silent): the stream's
        next chunk, a yielding rep cut off, a backchannel "mm-hm" or hold music."""
        st = self.state
        tok, ch = self._emit()
        # A rep who yields stops after this chunk: the rest of the sentence is lost.
        cut = me.yields & ~eng.stepped
        st["rt_len"] = torch.where(cut, st["rt_pos"], st["rt_len"])
        silent_world = ~(ch != CH_NONE).any(dim=1)
        # Backchannel: the rep says "mm-hm" while the assistant talks at length; not a turn.
        bc = (
            me.voice
            & ~me.complete
            & me.on_rep
            & (st["phase"] == REP)
            & silent_world
            & ~st["rt_backchannel"]
            & (st["rt_said"] >= 2)
            & self._backchannel[sc]
        )
        st["rt_backchannel"] = st["rt_backchannel"] | bc
        music = (st["phase"] == HOLD) & silent_world & ~bc
        first = torch.zeros_like(tok)
        first[:, 0] = 1
        first = first.bool()
        tok = torch.where(bc[:, None] & first, self.backchannel_token, tok)
        ch = torch.where(bc[:, None] & first, CH_BACKCHANNEL, ch).to(torch.int8)
        tok = torch.where(music[:, None] & first, self.music_token, tok).to(torch.int32)
        ch = torch.where(music[:, None] & first, CH_MUSIC, ch).to(torch.int8)
        st["rt_heard"], st["rt_heard_from"] = tok, ch
        return tok, ch, silent_world

    def _interaction_tick(
        self, me: _AssistantTick, eng: _EngineTick, ch: torch.Tensor, silent_world: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The interaction bookkeeping (response latency, floor, dead air, overlaps, the quiet
        timer, the tick counter); returns this tick's (latency, dead air)."""
        st = self.state
        now = st["rt_tick"]
        other_spoke = (ch == CH_OTHER).any(dim=1)
        responds = me.starts & (st["rt_floor"] >= 0) & ~me.over
        latency = torch.where(responds, now - st["rt_floor"] - 1, torch.zeros_like(now))
        st["rt_lat_sum"] = st["rt_lat_sum"] + latency
        st["rt_lat_n"] = st["rt_lat_n"] + responds.long()
        st["rt_floor"] = torch.where(me.starts, torch.full_like(now, -1), st["rt_floor"])
        live = (st["phase"] == IVR) | (st["phase"] == REP)
        turn_over = other_spoke & (st["rt_pos"] >= st["rt_len"]) & live & ~me.voice
        st["rt_floor"] = torch.where(turn_over, now, st["rt_floor"])
        st["rt_floor"] = torch.where(live, st["rt_floor"], torch.full_like(now, -1))
        dead = (st["rt_floor"] >= 0) & (st["phase"] == REP) & silent_world & ~me.voice & ~turn_over
        st["rt_interrupts"] = st["rt_interrupts"] + me.interrupt.long()
        st["rt_overlap"] = st["rt_overlap"] + me.over.long()
        st["rt_dead"] = st["rt_dead"] + dead.long()
        st["rt_over"] = me.over
        # Hold music plays on whether or not the caller talks; elsewhere talk breaks a silence.
        quiet = silent_world & (~me.voice | (st["phase"] == HOLD)) & ~eng.stepped
        st["rt_quiet"] = torch.where(
            quiet, eng.quiet_before + 1, torch.zeros_like(eng.quiet_before)
        )
        st["rt_tick"] = now + 1
        return latency, dead

    def _tick_output(
        self,
        me: _AssistantTick,
        eng: _EngineTick,
        sc: torch.Tensor,
        tok: torch.Tensor,
        latency: torch.Tensor,
        dead: torch.Tensor,
    ) -> StepOutput:
        """The tick's reward terms, episode end (the engine's, or the time limit) and metrics."""
        st, terms = self.state, eng.terms
        w = self._w_rt[sc]
        terms["response_latency"] = -w[:, 0] * latency.float()
        terms["talk_over"] = -w[:, 1] * me.over.float()
        terms["dead_air"] = -w[:, 2] * dead.float()
        w_eng = self.engine.t["w"][sc]
        terms["invalid_action"] = terms["invalid_action"] - w_eng[:, 4] * me.not_ready.float()
        terminated = eng.terminated
        truncated = (eng.truncated | (st["rt_tick"] >= self._max_ticks[sc])) & ~terminated
        success = self.engine.success(st)
        ended = terminated | truncated
        terms["goal"] = w_eng[:, 0] * (success & ended).float()
        reward = torch.stack([terms[k] for k in RT_REWARD_TERMS]).sum(dim=0)
        return StepOutput(
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            next_obs_target=tok.clone(),
            reward_terms=terms,
            success=success,
            action_error=eng.err.to(torch.int64),
            extra={"interaction": self.interaction(), "_interaction": ended},  # type: ignore[dict-item]
        )

    def interaction(self) -> dict[str, torch.Tensor]:
        """Every world's interaction metrics for its episode so far (float32 / int64 [B])."""
        st = self.state
        n = st["rt_lat_n"]
        return {
            "mean_response_latency_s": (
                st["rt_lat_sum"].float() / n.clamp(min=1).float() * self.tick_s
            ),
            "responses": n.clone(),
            "interruptions": st["rt_interrupts"].clone(),
            "overlap_s": st["rt_overlap"].float() * self.tick_s,
            "dead_air_s": st["rt_dead"].float() * self.tick_s,
            "call_s": st["rt_tick"].float() * self.tick_s,
        }

    def _observe(self) -> dict[str, torch.Tensor]:
        st = self.state
        return {
            "heard": st["rt_heard"].clone(),
            "heard_from": st["rt_heard_from"].clone(),
            "phase": st["phase"].clone(),
            "prepared": st["rt_prep"].clone(),
            "progress": torch.stack([st["rt_thought"], st["rt_said"]], dim=1).to(torch.int32),
            "known_facts": st["known"].to(torch.int8),
            "calls": st["calls"].clamp(max=255).to(torch.int32),
            "tick": st["rt_tick"].to(torch.int32)[:, None],
        }

    def target_from_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The real-time target is the ``heard`` part of the observation."""
        return obs["heard"]

    # ------------------------------------------------------------------ extras
    def pin_scenarios(self, scenario: torch.Tensor) -> dict[str, torch.Tensor]:
        """Restart every world's episode on the given scenario index (of the compiled set);
        returns the new observation. For evaluations that need each scenario covered; the
        next auto-reset draws scenarios from the worlds' seeds again."""
        sc = torch.as_tensor(scenario, dtype=torch.int64, device=self.device).reshape(-1)
        if sc.shape[0] != self.num_envs or bool(((sc < 0) | (sc >= len(self.utterances))).any()):
            raise ValueError(
                f"need {self.num_envs} scenario indices in [0, {len(self.utterances)})"
            )
        self.state["scenario"] = sc.clone()
        self.engine.reset_scenario_fields(self.state)
        self._restart_streams(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        self._episode_return.zero_()
        self._episode_length.zero_()
        return self._observe()

    def turn_oracle(self) -> torch.Tensor:
        """The turn-based oracle's next catalogue action per world (0 = wait)."""
        return self.engine.oracle(self.state)

    def oracle_action(self, prepare_while_listening: bool = True) -> torch.Tensor:
        """One tick action per world that makes progress toward the goal.

        Follows the turn-based oracle: thinks about its next utterance as soon as it knows it
        (``prepare_while_listening=True``: while the other party still talks), says it with
        ``speak`` (which waits for a free line, so it never talks over anyone) and stays silent
        when the turn-based oracle would wait. ``prepare_while_listening=False`` is the slower
        policy that waits for silence before it starts thinking.
        """
        st = self.state
        want = self.turn_oracle()
        busy = st["rt_pos"] < st["rt_len"]
        ready = (st["rt_prep"] == want) & (st["rt_thought"] >= self.think_ticks)
        act = torch.where(ready, RT_SPEAK, want - 1 + RT_FIRST_PREPARE)
        if not prepare_while_listening:
            idle = (st["rt_prep"] != want) | (st["rt_thought"] == 0)
            act = torch.where(idle & busy, RT_SILENT, act)
        return torch.where(want == A_WAIT, RT_SILENT, act)

    def decode(self, tokens: torch.Tensor | np.ndarray) -> str:
        """Token ids back to text."""
        inv = {i: t for t, i in self.compiled.book.vocab.items()}
        arr = tokens.detach().cpu().numpy() if torch.is_tensor(tokens) else np.asarray(tokens)
        ids = [int(x) for x in arr.reshape(-1) if int(x) != 0]
        return " ".join(inv.get(i, "<unk>") for i in ids).replace("<sep>", "/").strip()


class PhoneRealtimeEnv(SingleEnv):
    """One real-time call: :class:`PhoneRealtimeVectorEnv` at B=1, with a text face.

    ``obs_mode="tokens"`` (default): the vector env's spaces for one world; seeded ``s + i`` it
    equals world ``i`` of a real-time vector env seeded ``s``.

    ``obs_mode="text"``: the observation is what was heard this tick as text (tokens joined
    by spaces; ``/`` ends a message; ``<music>``, ``<mm-hm>``; empty for silence). Actions are
    strings: ``silent`` (also ``""``, ``listen``, ``wait``), ``speak``, ``barge_in``, or
    ``prepare <turn action>`` where the turn action is anything the turn-based text face
    accepts (free text such as ``prepare my account number is 12345`` or a JSON tool call; the
    word ``prepare`` may be left out). A stated value is checked against the truth when the
    utterance is said. Text that can't be parsed is a silent tick with ``action_error``
    ``"not_understood: ..."`` (no penalty: nothing was said).

    ``info`` has the contract keys, ``scenario`` and ``interaction`` (floats: the episode's
    running metrics, its totals on the last tick; all zero in the reset info, which has the
    step info's keys at their reset values, see :mod:`envgym.core.info`).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        scenario: ScenarioSpec = "isp_bill_discount",
        *,
        obs_mode: str = "tokens",
        **kwargs: Any,
    ) -> None:
        from envgym.phone.actions import ActionParser

        if obs_mode not in ("tokens", "text"):
            raise ValueError(f"obs_mode must be 'tokens' or 'text', got {obs_mode!r}")
        kwargs.pop("render_mode", None)  # no render modes (the argument is accepted and ignored)
        self.obs_mode = obs_mode
        vec = PhoneRealtimeVectorEnv(1, scenario, **kwargs)
        super().__init__(vec)
        self.vec: PhoneRealtimeVectorEnv = vec
        self.compiled = self.vec.compiled
        self.action_names = self.vec.action_names
        self.parser = ActionParser(self.compiled, self.vec.engine.garbled_action)
        if obs_mode == "text":
            chars = {ch for tok in self.compiled.book.vocab for ch in tok} | {" ", "/"}
            self.observation_space = spaces.Text(max_length=4096, charset=frozenset(chars))
            printable = frozenset(chr(c) for c in range(32, 127))
            self.action_space = spaces.Text(max_length=1024, min_length=0, charset=printable)
        self._episode_scenario = 0
        self._parse_error = ""

    @property
    def scenario_index(self) -> int:
        """Index (in the compiled set) of the scenario the current episode runs."""
        return int(self.vec.state["scenario"][0])

    def oracle_action(self, prepare_while_listening: bool = True) -> Any:
        """The vector oracle's action for this world (a string on the text face)."""
        a = int(self.vec.oracle_action(prepare_while_listening)[0])
        if self.obs_mode == "tokens":
            return a
        if a < RT_FIRST_PREPARE:
            return self.action_names[a]
        return "prepare " + self._turn_text(a - RT_FIRST_PREPARE + 1)

    def _turn_text(self, action: int) -> str:
        """A catalogue action as free text the turn-based parser reads back to it."""
        kind, _, arg = self.compiled.catalogue[action].name.partition(":")
        sc = self.compiled.scenarios[self.scenario_index]
        if kind == "provide":
            val = next((f.value for f in sc.user.facts if f.id == arg), "unknown")
            known = bool(self.vec.state["known"][0, self.compiled.facts.index(arg)])
            return f"provide {arg} {val if known else '0000'}"
        words = {"say_yes": "yes", "say_no": "no", "hang_up": "hang up", "ask_user": "ask user"}
        return f"{words.get(kind, kind.replace('_', ' '))} {arg}".strip()

    def _parse(self, text: Any) -> tuple[int, int | None, str]:
        """A text action as (tick action id, the stated value's id or None, parse error)."""
        if not isinstance(text, str):
            return RT_SILENT, None, f"not_understood: expected text, got {type(text).__name__}"
        s = text.strip()
        low = s.lower().rstrip(".!")
        if low in ("", "silent", "silence", "listen", "wait", "..."):
            return RT_SILENT, None, ""
        if low == "speak":
            return RT_SPEAK, None, ""
        if low in ("barge_in", "barge in", "barge"):
            return RT_BARGE_IN, None, ""
        if low.startswith("prepare"):
            s = s[len("prepare") :].strip(" :")
        parsed = self.parser.parse(s, self.scenario_index)
        if parsed.action >= len(self.compiled.catalogue):
            return RT_SILENT, None, f"not_understood: {parsed.error}"
        if parsed.action == 0:  # the turn-based wait: stay silent
            return RT_SILENT, None, ""
        # What was said; the engine checks it when the utterance is complete.
        said = None if parsed.value is None else self.vec.engine.value_id(parsed.value)
        return parsed.action - 1 + RT_FIRST_PREPARE, said, ""

    # ------------------------------------------------------------------ SingleEnv hooks
    def _observation(self, obs: dict[str, torch.Tensor]) -> Any:
        if self.obs_mode == "tokens":
            return super()._observation(obs)
        return self.vec.decode(obs["heard"][0])

    def _face_options(self, options: dict[str, Any]) -> dict[str, Any]:
        pin = options.pop("scenario_index", None)
        return {} if pin is None else {"scenario_index": pin}

    def _begin_episode(self, obs: Any, face_options: dict[str, Any]) -> Any:
        pin = face_options.get("scenario_index")
        if pin is not None:
            # As the turn-based env: restart this episode on scenario ``pin`` of the set.
            if isinstance(pin, bool) or not isinstance(pin, int | np.integer):
                raise ValueError(f"options['scenario_index'] must be an int, got {pin!r}")
            obs = self.vec.pin_scenarios(torch.tensor([int(pin)]))
        self._episode_scenario = self.scenario_index
        return obs

    def _reset_extra(self, obs: Any) -> dict[str, Any]:
        # `interaction` holds the episode's running metrics, all zero at the start.
        return {
            "scenario": self.compiled.scenarios[self._episode_scenario].name,
            "interaction": self._interaction(self.vec.interaction()),
        }

    @staticmethod
    def _interaction(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
        return {k: float(v[0]) for k, v in metrics.items()}

    def _to_vector_action(self, action: Any) -> Any:
        self._parse_error = ""
        if self.obs_mode == "text":
            tick_action, said, self._parse_error = self._parse(action)
            a = torch.tensor([tick_action])
            return a if said is None else PhoneActions(a, torch.tensor([said]))
        return one_world_action(action)

    def _action_error(self, info: dict[str, Any]) -> str:
        return self._parse_error or RT_ACTION_ERRORS[int(info[keys.ACTION_ERROR][0])]

    def _step_extra(self, info: dict[str, Any]) -> dict[str, Any]:
        return {
            "scenario": self.compiled.scenarios[self._episode_scenario].name,
            # The episode's running metrics; on its last tick, the episode's totals.
            "interaction": self._interaction(info["interaction"]),
        }

    def close(self) -> None:
        self.vec.close()
