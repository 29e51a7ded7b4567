"""Message ids and their token packing: the gather table behind ``obs_mode="ids"``.

Each step a world hears up to ``MSG_SLOTS`` messages, each a (message, phrasing variant)
pair. Its **message id** is ``1 + message * NV + variant`` (0: no message in that slot), a row
of the gather table :attr:`MessagePacker.table` (int32 ``[1 + M * NV, W]``, each row a
message's tokens padded with 0; row 0 is all pad) whose lengths are
:attr:`MessagePacker.lengths`. The token observation is the slots' rows laid end to end and
padded (or cut) to ``L`` tokens: :meth:`MessagePacker.pack` does exactly that, so a consumer
of ``obs_mode="ids"`` that gathers with it gets the token observation bit for bit.
"""

from __future__ import annotations

import torch

from envgym.core.vector import true_rows
from envgym.phone.tables import at


class MessagePacker:
    """The gather table of a compiled set's messages and the packing of ids into tokens."""

    def __init__(self, msg_tokens: torch.Tensor, msg_len: torch.Tensor, max_tokens: int) -> None:
        """``msg_tokens``: int32 ``[M, NV, W]``; ``msg_len``: ``[M, NV]``; ``max_tokens``: L."""
        M, NV, W = msg_tokens.shape
        dev = msg_tokens.device
        pad = torch.zeros(1, W, dtype=torch.int32, device=dev)
        self.table = torch.cat([pad, msg_tokens.reshape(M * NV, W).to(torch.int32)]).contiguous()
        """int32 ``[1 + M * NV, W]``: row ``id`` holds message id ``id``'s tokens (0-padded)."""
        zero = torch.zeros(1, dtype=torch.int64, device=dev)
        self.lengths = torch.cat([zero, msg_len.reshape(-1).to(torch.int64)])
        """int64 ``[1 + M * NV]``: the number of tokens of each message id."""
        self.num_variants = NV
        self.L = int(max_tokens)
        self.width = min(W, self.L)
        self._offsets = torch.arange(W, dtype=torch.int64, device=dev)[None, :]
        rows = torch.zeros((self.table.shape[0], self.L), dtype=torch.int32, device=dev)
        rows[:, : self.width] = self.table[:, : self.width]
        self._rows = rows
        """int32 ``[1 + M * NV, L]``: each id's tokens as a whole observation row (a world that
        heard one message gets its row: one contiguous row copy, the common case)."""

    def ids(self, msgs: torch.Tensor, variants: torch.Tensor) -> torch.Tensor:
        """int32 ``[B, S]`` message ids of the slots' (message, variant) pairs (-1: none)."""
        uid = torch.add(variants, msgs, alpha=self.num_variants).add_(1)
        return torch.where(msgs >= 0, uid, 0).to(torch.int32)

    def pack(
        self, ids: torch.Tensor, sync_free: bool = False, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """int32 ``[B, L]`` tokens of ``[B, S]`` message ids, laid end to end, 0-padded
        (written into ``out`` when given: a persistent buffer spares a large allocation).

        On CPU (``sync_free=False``) the common case is one row copy: worlds that heard a
        single message get its row; only worlds with more messages take the general path
        (:meth:`pack_general`). ``sync_free=True`` (CUDA graphs) runs the general path on every
        world, with no host sync. Both give the same tokens.
        """
        if sync_free:
            general = self.pack_general(ids)
            return general if out is None else out.copy_(general)
        if out is None:
            out = torch.empty((ids.shape[0], self.L), dtype=torch.int32, device=ids.device)
        torch.index_select(self._rows, 0, ids[:, 0].to(torch.int64), out=out)
        more = true_rows((ids[:, 1:] > 0).any(dim=1))
        if len(more):
            out.index_copy_(0, more, self.pack_general(ids[more]))
        return out

    def pack_general(self, ids: torch.Tensor) -> torch.Tensor:
        """:meth:`pack` for any number of messages per world (a scatter per slot).

        Slots are written in order, each as its full padded row starting where the previous
        message ended: a row's padding lands where the next message (or the final padding)
        belongs, so it is overwritten or correct. Positions past ``L`` go to a discard column.
        """
        B, S = ids.shape
        uid = ids.to(torch.int64)
        ln = at(self.lengths, uid)
        start = torch.cumsum(ln, dim=1) - ln
        out = torch.zeros((B, self.L + 1), dtype=torch.int32, device=ids.device)
        for j in range(S):
            pos = (start[:, j : j + 1] + self._offsets).clamp_(max=self.L)
            out.scatter_(1, pos, self.table.index_select(0, uid[:, j]))
        return out[:, : self.L].contiguous()
