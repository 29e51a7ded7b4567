"""The compiled phone tables, typed: one field per table, its dtype and shape documented.

:func:`envgym.phone.compiler.compile_scenarios` lowers a scenario set to padded per-scenario
tensors (a ``dict`` keyed by name); :class:`PhoneTables` wraps that dict once, when the engine
is built. A table the compiler didn't make (or one it made that isn't declared here) is an
error at construction, and a misspelt table in the engine is an ``AttributeError`` a type
checker sees, not a ``KeyError`` in the middle of a step.

Dimensions: ``K`` scenarios, ``N`` directory numbers, ``D`` departments, ``NODES`` IVR menu
nodes, ``S`` services, ``F`` facts, ``P`` steps of a request's checklist (``V`` verification
items, then eligibility, fee, offer, grant), ``R`` account records, ``REPS`` reps per
department, ``MAX_CALLS`` call-count hints (``CompiledPhone.dims`` holds the sizes). Message
tables hold message ids (rows of the compiled message book; -1: no message).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import numpy as np
import torch

from envgym.core.vector import SMALL


@dataclasses.dataclass
class PhoneTables:
    """The compiled tables of a phone scenario set (see the module docstring for the dims)."""

    n_numbers: torch.Tensor
    """int64 [K]: directory entries of the scenario."""
    max_calls_per_number: torch.Tensor
    """int64 [K]: policy: calls a number accepts per day."""
    max_mismatch: torch.Tensor
    """int64 [K]: policy: wrong statements before the rep hangs up."""
    call_budget: torch.Tensor
    """int64 [K]: the user's call budget."""
    max_turns: torch.Tensor
    """int64 [K]: turn limit."""
    hints: torch.Tensor
    """bool [K]: system hints on."""
    user_on_call: torch.Tensor
    """bool [K]: the user is reachable during a call."""
    max_fees: torch.Tensor
    """int64 [K]: the most fees the goal allows."""
    n_reps: torch.Tensor
    """int64 [K]: reps per department."""
    w: torch.Tensor
    """float32 [K, 5 weights]: reward weights (goal, turn_cost, privacy, over budget, invalid)."""
    num_listed: torch.Tensor
    """bool [K, N]: number listed in the directory at the start."""
    num_route_kind: torch.Tensor
    """int64 [K, N]: where dialing leads: 1 menu node, 2 department queue."""
    num_route_id: torch.Tensor
    """int64 [K, N]: the node or department it leads to."""
    ivr_opt_kind: torch.Tensor
    """int64 [K, NODES, 12 keys]: menu key's route kind (0: no such key)."""
    ivr_opt_id: torch.Tensor
    """int64 [K, NODES, 12 keys]: menu key's route id."""
    ivr_to_kind: torch.Tensor
    """int64 [K, NODES]: menu timeout route kind (0: repeat the prompt)."""
    ivr_to_id: torch.Tensor
    """int64 [K, NODES]: menu timeout route id."""
    ivr_key_toward: torch.Tensor
    """int64 [K, NODES, D]: oracle: key that leads toward a department (-1: none)."""
    dept_hold_lo: torch.Tensor
    """int64 [K, D]: hold length lower bound (turns)."""
    dept_hold_hi: torch.Tensor
    """int64 [K, D]: hold length upper bound."""
    dept_transfers: torch.Tensor
    """bool [K, D]: department can transfer."""
    svc_exists: torch.Tensor
    """bool [K, S]: service exists in the scenario."""
    svc_dept: torch.Tensor
    """int64 [K, S]: department handling the service."""
    svc_other_number: torch.Tensor
    """int64 [K, S]: number a rep refers to for it (-1: none)."""
    prog_fact: torch.Tensor
    """int64 [K, S, P]: the rep's checklist: fact id per program step (-1: none)."""
    elig_pass: torch.Tensor
    """bool [K, S]: the eligibility rule passes."""
    svc_fee: torch.Tensor
    """int64 [K, S]: service fee."""
    has_offer: torch.Tensor
    """bool [K, S]: a retention offer exists."""
    grant_val: torch.Tensor
    """int64 [K, S, R]: record values a grant sets (-1: unchanged)."""
    offer_val: torch.Tensor
    """int64 [K, S, R]: record values an accepted offer sets (-1: unchanged)."""
    fact_exists: torch.Tensor
    """bool [K, F]: the user has the fact."""
    fact_known0: torch.Tensor
    """bool [K, F]: the assistant knows it at the start."""
    fact_sensitive: torch.Tensor
    """bool [K, F]: the fact is sensitive (privacy)."""
    rec_init: torch.Tensor
    """int64 [K, R]: account records at the start."""
    goal_mask: torch.Tensor
    """bool [K, R]: records the goal constrains."""
    goal_val: torch.Tensor
    """int64 [K, R]: their goal values."""
    plan: torch.Tensor
    """int64 [K, 3 steps]: oracle plan: services in order (-1: none)."""
    plan_accept_offer: torch.Tensor
    """bool [K, S]: oracle accepts the offer."""
    plan_accept_fee: torch.Tensor
    """bool [K, S]: oracle accepts the fee."""
    oracle_number: torch.Tensor
    """int64 [K, S]: oracle: number to dial for the service."""
    oracle_number_alt: torch.Tensor
    """int64 [K, S]: oracle: a referred number (-1: none)."""
    oracle_entry_dept: torch.Tensor
    """int64 [K, S]: oracle: department the IVR leads to first."""
    needs_fact: torch.Tensor
    """bool [K, S, F]: facts the service's checklist needs."""
    m_intro: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_invalid_key: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_ivr_prompt: torch.Tensor
    """int64 [K, NODES]: message id (-1: none)."""
    m_hold: torch.Tensor
    """int64 [K, D]: message id (-1: none)."""
    m_still_hold: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_greet: torch.Tensor
    """int64 [K, D, REPS]: message id (-1: none)."""
    m_greet_transfer: torch.Tensor
    """int64 [K, D, REPS, S]: message id (-1: none)."""
    m_ask_fact: torch.Tensor
    """int64 [K, F]: message id (-1: none)."""
    m_verified: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_mismatch: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_security: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_eligible: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_refusal: torch.Tensor
    """int64 [K, S]: message id (-1: none)."""
    m_fee_q: torch.Tensor
    """int64 [K, S]: message id (-1: none)."""
    m_offer: torch.Tensor
    """int64 [K, S]: message id (-1: none)."""
    m_offer_accepted: torch.Tensor
    """int64 [K, S]: message id (-1: none)."""
    m_offer_declined: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_done: torch.Tensor
    """int64 [K, S]: message id (-1: none)."""
    m_transfer: torch.Tensor
    """int64 [K, D]: message id (-1: none)."""
    m_call_other: torch.Tensor
    """int64 [K, S]: message id (-1: none)."""
    m_cannot_help: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_unrequested: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_not_understood: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_still_there: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_explain: torch.Tensor
    """int64 [K, S]: message id (-1: none)."""
    m_user_says: torch.Tensor
    """int64 [K, F]: message id (-1: none)."""
    m_user_unknown: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_user_away: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_not_on_call: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_on_call: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_call_ended: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_rep_hung_up: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_call_refused: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_hint: torch.Tensor
    """int64 [K, MAX_CALLS]: message id (-1: none)."""
    m_sys_unknown_number: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_nobody: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_idle: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_report: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_sys_number_noted: torch.Tensor
    """int64 [K, N]: message id (-1: none)."""
    m_ivr_no_speech: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_user_dont_know: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_user_refuses: torch.Tensor
    """int64 [K]: message id (-1: none)."""
    m_rep_hold: torch.Tensor
    """int64 [K]: message id (-1: none)."""

    @classmethod
    def from_dict(cls, tables: Mapping[str, torch.Tensor]) -> PhoneTables:
        """Wrap the compiler's dict; raises ``ValueError`` naming missing or unknown tables."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing, extra = sorted(names - set(tables)), sorted(set(tables) - names)
        if missing or extra:
            raise ValueError(f"phone tables: missing {missing}, unknown {extra}")
        return cls(**{k: tables[k] for k in names})

    def __getitem__(self, name: str) -> torch.Tensor:
        """``tables["w"]``, as on the compiler's dict (code written against the dict)."""
        if name not in self.names():
            raise KeyError(name)
        return getattr(self, name)

    def names(self) -> tuple[str, ...]:
        """Every table's name, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(self))

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, tensor) of every table."""
        return ((k, getattr(self, k)) for k in self.names())

    def to(self, device: torch.device) -> PhoneTables:
        """A copy with every table on ``device``."""
        return PhoneTables(**{k: v.to(device) for k, v in self.items()})


def at(table: torch.Tensor, *idx: torch.Tensor) -> torch.Tensor:
    """``table[idx[0], idx[1], ...]`` for int64 index tensors of one shape, as one
    ``index_select`` of the flattened leading dims (on CPU several times faster than advanced
    indexing, the same values). Every index must lie inside its dim: none may be negative
    (clamp first). Below ``SMALL`` entries plain indexing is cheaper (fewer ops), and used."""
    if idx[0].numel() < SMALL:
        return table[idx]
    n = len(idx)
    lin = idx[0]
    for i, size in zip(idx[1:], table.shape[1:n], strict=True):
        lin = torch.add(i, lin, alpha=size)  # lin * size + i, one op
    rest = table.shape[n:]
    rows = table.reshape(-1, *rest).index_select(0, lin.reshape(-1))
    return rows if lin.dim() == 1 else rows.reshape(*lin.shape, *rest)


def pick(rows: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """``rows[arange(B), col]``: each world's entry ``col`` of its row of ``rows`` [B, X]
    (a gather; ``col`` int64 [B] inside ``0 .. X-1``)."""
    return rows.gather(1, col[:, None]).squeeze(1)


def present(values: torch.Tensor) -> set[int]:
    """The distinct values of an int64 tensor of codes (``set(values.unique().tolist())``;
    on CPU counted with NumPy's ``bincount``, ~15x cheaper than ``unique``'s sort at 65,536
    worlds, for codes that are small non-negative ints, as every enum here is)."""
    if values.is_cpu:
        arr = values.numpy().reshape(-1)
        try:
            return {int(v) for v in np.flatnonzero(np.bincount(arr))}
        except ValueError:  # a negative code: count by sorting instead
            return {int(v) for v in np.unique(arr)}
    return set(values.unique().tolist())


def copy_rows(dst: torch.Tensor, rows: torch.Tensor, src: torch.Tensor) -> None:
    """``dst[rows] = src`` in place (``index_copy_`` along dim 0; on CPU a NumPy assignment,
    about twice as cheap for the few hundred to few thousand rows of a sub-turn)."""
    if dst.is_cpu and src.is_cpu and dst.dtype == src.dtype:
        dst.numpy()[rows.numpy()] = src.numpy()
    else:
        dst.index_copy_(0, rows, src)
