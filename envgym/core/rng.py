"""Counter-based random numbers for batched engines.

A batched engine must give world ``i`` exactly the randomness a single env seeded ``s + i``
would see, whatever the batch size and whatever the device. A shared ``torch.Generator`` cannot
do that (its stream depends on how many worlds draw from it), so every random draw here is a
pure hash of ``(world_seed, episode, step, stream)``. The hash is computed in int64 arithmetic
that never overflows, so CPU and CUDA give the same bits; :func:`mix`, :func:`uniform` and
:func:`randint` take NumPy int64 arrays as well as tensors (the same operators, the same bits):
:func:`randint_cpu` uses them for the few worlds of a sparse draw on CPU, and the robot's resets
for the few worlds a reset touches, where a NumPy op's fixed cost is a fraction of a torch op's.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Ints = TypeVar("Ints", torch.Tensor, np.ndarray)

_MASK32 = 0xFFFFFFFF


def _mul32(x: Ints, c: int) -> Ints:
    """``(x * c) mod 2**32`` for ``x`` in ``[0, 2**32)`` and a constant ``c`` in ``[0, 2**32)``
    without int64 overflow: ``c`` is replaced by its representative in ``[-2**31, 2**31)`` (the
    same residue mod ``2**32``), so ``|x * c| < 2**63``, and the two's-complement low 32 bits of
    the product are the residue."""
    c = c - (1 << 32) if c >= 1 << 31 else c
    return (x * c) & _MASK32


def hash32(x: Ints) -> Ints:
    """A 32-bit avalanche hash (murmur3 finaliser) of int64 tensors (or NumPy arrays) holding
    values < 2**32."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    x = x ^ (x >> 16)
    return x


def _hash32_int(x: int) -> int:
    """:func:`hash32` of one Python int (the same bits)."""
    x &= _MASK32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & _MASK32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & _MASK32
    return x ^ (x >> 16)


def _key_int(k: int) -> int:
    """A constant key's term in :func:`mix` (what the tensor ops compute for it), in Python."""
    k = int(k) & 0xFFFFFFFFFFFFFFFF
    k = (k & _MASK32) ^ _hash32_int(k >> 32)
    return ((_hash32_int(k) * 0x27D4EB2F) & _MASK32) ^ 0x9E3779B9


def _int64(key: torch.Tensor | np.ndarray | int) -> torch.Tensor | np.ndarray:
    """A key as an int64 tensor, or NumPy array (a Python int: a 0-d tensor)."""
    if isinstance(key, np.ndarray):
        return key.astype(np.int64, copy=False)
    if isinstance(key, torch.Tensor):
        return key.to(torch.int64)
    return torch.tensor(int(key), dtype=torch.int64)


def _fold(k: Ints) -> Ints:
    """An int64 key folded into 32 bits (large seeds still differ)."""
    return (k & _MASK32) ^ hash32((k >> 32) & _MASK32)


def _term(folded: Ints) -> Ints:
    """What a folded key after the first XORs into :func:`mix`'s accumulator."""
    return _mul32(hash32(folded), 0x27D4EB2F) ^ 0x9E3779B9


class FixedKey:
    """A key array that is the same in every call (a table of stream ids, say), hashed once:
    where :func:`mix` meets it after the first key, it costs one XOR and one hash instead of
    three hashes. :func:`mix` gives the bits of the same key passed as an array."""

    def __init__(self, key: np.ndarray) -> None:
        self.term = _term(_fold(np.asarray(key, dtype=np.int64)))
        self._on: dict[torch.device, torch.Tensor] = {}

    def like(self, acc: Ints) -> Ints:
        """The key's term as ``acc``'s kind of array (a tensor on its device, kept)."""
        if isinstance(acc, np.ndarray):
            return self.term
        t = self._on.get(acc.device)
        if t is None:
            t = self._on[acc.device] = torch.from_numpy(self.term).to(acc.device)
        return t


def mix(*keys: Ints | FixedKey | int) -> Ints:
    """Hash several integer keys (tensors, or NumPy arrays, broadcast together; not both; and
    after the first, Python ints and :class:`FixedKey` arrays) into one 32-bit value."""
    acc = None
    for key in keys:
        if acc is not None and isinstance(key, FixedKey):
            acc = hash32(acc ^ key.like(acc))
            continue
        if acc is not None and not isinstance(key, (torch.Tensor, np.ndarray)):
            acc = hash32(acc ^ _key_int(key))  # a constant key: its hash costs no tensor op
            continue
        assert not isinstance(key, FixedKey), "a FixedKey cannot be the first key"
        k = _fold(_int64(key))
        acc = hash32(k) if acc is None else hash32(acc ^ _term(k))
    assert acc is not None, "mix() needs at least one key"
    return acc


def uniform(*keys: Ints | FixedKey | int) -> Ints:
    """A float32 in ``[0, 1)`` per element, determined by the keys alone (tensors, or NumPy
    arrays: the same bits; the product by ``2**-24`` is exact)."""
    x = mix(*keys) >> 8
    if isinstance(x, np.ndarray):
        return x.astype(np.float32) * np.float32(1.0 / float(1 << 24))
    return x.to(torch.float32) * (1.0 / float(1 << 24))


def randint(high: Ints, *keys: Ints | int) -> Ints:
    """An int64 in ``[0, high)`` per element (``high >= 1``), determined by the keys alone
    (tensors, or NumPy arrays: the same bits)."""
    if isinstance(high, np.ndarray):
        return mix(*keys) % np.maximum(high, 1).astype(np.int64, copy=False)
    return (mix(*keys) % high.clamp(min=1).to(torch.int64)).to(torch.int64)


def randint_cpu(high: torch.Tensor, *keys: torch.Tensor | int) -> torch.Tensor:
    """:func:`randint` of tensors; on CPU computed in NumPy (the same bits). For the few worlds
    of a sparse draw: there the hash's ~40 ops per key take about a quarter of torch's time
    (a few hundred worlds; about two thirds at 30,000)."""
    if not high.is_cpu:
        return randint(high, *keys)
    arrays = [k.numpy() if isinstance(k, torch.Tensor) else k for k in keys]
    return torch.from_numpy(randint(high.numpy(), *arrays))
