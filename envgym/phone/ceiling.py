"""The phone family's raw baseline: a minimal table-driven dialogue step (the *ceiling*).

What a phone step costs with none of the engine's rules around it, on tensors of the same
shape: ``B`` worlds, each in one of ``S`` dialogue states; an action looks up, in tables of
``S x A`` entries, the next state, the message ids the world answers with, a verification bit
and a reward; worlds that reach the end state (or their turn limit) reset; the observation
is the answer's tokens, gathered from a ``[messages, L]`` token table into ``[B, L]`` (or,
``ids_only``, just the message ids: the consumer gathers the tokens).

:func:`ceiling_steps_per_s` times it; :meth:`PhoneVectorEnv.raw_baseline` calls it with the
env's own batch size, action count, token length and observation mode, so ``envgym bench``
reports ``env / ceiling`` measured in the same run. ``docs/bench/phone_ceiling.py`` runs it
against the env at several batch sizes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

CEILING_STATES = 256
CEILING_MESSAGES = 512
CEILING_SLOTS = 4
CEILING_MAX_TURNS = 40


@dataclass
class CeilingTables:
    """The ceiling's tables (flat ``[S * A]`` rows, indexed by ``state * A + action``)."""

    next_state: torch.Tensor  # int32 [S*A]
    msgs: torch.Tensor  # int32 [S*A, SLOTS]: message ids, -1 none
    verify_bit: torch.Tensor  # int32 [S*A]: a bit to OR into the world's verification mask
    reward: torch.Tensor  # float32 [S*A]
    msg_tokens: torch.Tensor  # int32 [M + 1, L]: one message's tokens; row M is all pad
    num_actions: int


def ceiling_tables(
    num_actions: int, max_tokens: int, device: torch.device, seed: int = 0
) -> CeilingTables:
    """Random tables of the ceiling's shape (state 0 is the start, ``S - 1`` the end)."""
    g = torch.Generator().manual_seed(int(seed))
    S, A, M = CEILING_STATES, num_actions, CEILING_MESSAGES
    msgs = torch.randint(-1, M, (S * A, CEILING_SLOTS), generator=g, dtype=torch.int32)
    tokens = torch.randint(1, 200, (M + 1, max_tokens), generator=g, dtype=torch.int32)
    tokens[M] = 0
    return CeilingTables(
        next_state=torch.randint(0, S, (S * A,), generator=g, dtype=torch.int32).to(device),
        msgs=msgs.to(device),
        verify_bit=(1 << torch.randint(0, 16, (S * A,), generator=g)).to(torch.int32).to(device),
        reward=torch.rand(S * A, generator=g).to(device),
        msg_tokens=tokens.to(device),
        num_actions=A,
    )


class CeilingWorlds:
    """``B`` worlds of the ceiling step, in persistent buffers written in place."""

    def __init__(self, tables: CeilingTables, num_envs: int, ids_only: bool = False) -> None:
        dev = tables.reward.device
        self.t, self.ids_only = tables, ids_only
        B, L = num_envs, tables.msg_tokens.shape[1]
        self.state = torch.zeros(B, dtype=torch.int32, device=dev)
        self.turn = torch.zeros(B, dtype=torch.int32, device=dev)
        self.verified = torch.zeros(B, dtype=torch.int32, device=dev)
        self.ret = torch.zeros(B, dtype=torch.float32, device=dev)
        self.idx = torch.zeros(B, dtype=torch.int64, device=dev)
        self.done = torch.zeros(B, dtype=torch.bool, device=dev)
        self.msg_ids = torch.zeros(B, CEILING_SLOTS, dtype=torch.int32, device=dev)
        self.tokens = torch.zeros(B, L, dtype=torch.int32, device=dev)
        self._first = torch.zeros(B, dtype=torch.int64, device=dev)

    def step(self, actions: torch.Tensor) -> None:
        """One transition and auto-reset of every world; the observation lands in
        ``msg_ids`` (and ``tokens`` unless ``ids_only``)."""
        t = self.t
        torch.mul(self.state, t.num_actions, out=self.idx)
        self.idx.add_(actions)
        torch.index_select(t.next_state, 0, self.idx, out=self.state)
        torch.index_select(t.msgs, 0, self.idx, out=self.msg_ids)
        self.verified.bitwise_or_(t.verify_bit[self.idx])
        self.ret.add_(t.reward[self.idx])
        self.turn.add_(1)
        torch.ge(self.turn, CEILING_MAX_TURNS, out=self.done)
        self.done.logical_or_(self.state == CEILING_STATES - 1)
        self.state.masked_fill_(self.done, 0)
        self.turn.masked_fill_(self.done, 0)
        self.verified.masked_fill_(self.done, 0)
        self.ret.masked_fill_(self.done, 0.0)
        if not self.ids_only:
            # The observation's tokens: the first message's row of the token table.
            # (no message: id -1, the all-pad last row)
            self._first.copy_(self.msg_ids[:, 0])
            self._first.remainder_(t.msg_tokens.shape[0])
            torch.index_select(t.msg_tokens, 0, self._first, out=self.tokens)


def ceiling_steps_per_s(
    num_envs: int,
    num_actions: int,
    max_tokens: int,
    device: str | torch.device = "cpu",
    steps: int = 200,
    warmup: int = 20,
    seed: int = 0,
    ids_only: bool = False,
) -> tuple[float, float]:
    """Time the ceiling step: ``(world-steps per second, timed seconds)``.

    Random actions are drawn on the device before the timed loop, as ``envgym bench`` draws
    the env's.
    """
    dev = torch.device(device)
    worlds = CeilingWorlds(ceiling_tables(num_actions, max_tokens, dev, seed), num_envs, ids_only)
    g = torch.Generator(device=dev).manual_seed(int(seed))
    acts = torch.randint(0, num_actions, (warmup + steps, num_envs), device=dev, generator=g)
    for i in range(warmup):
        worlds.step(acts[i])
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        worlds.step(acts[i])
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    dt = time.perf_counter() - t0
    return num_envs * steps / max(dt, 1e-12), dt
