"""Big fresh CPU outputs without page faults: glibc's malloc settings (an opt-in, process-wide
switch) and :class:`Recycler` (per env, always on where an env uses it).

A step of a big CPU batch with ``copy=True`` hands out fresh tensors of tens of MB (the phone
family's ``[B, L]`` tokens are 70 MB at 65,536 worlds, its action mask 8 MB). glibc serves every
block over 32 MB (its largest dynamic ``mmap`` threshold) with a fresh ``mmap`` and unmaps it
when it is freed, so every such tensor costs a page fault per 4 KB page, each page zeroed by the
kernel: at 65,536 phone worlds that is about as much time as the step itself.

:func:`reuse_freed_memory` has glibc serve big blocks from its heap and keep what is freed, so
the next step's tensors land on pages already mapped. It changes the allocator of the whole
process (freed memory is kept for reuse, not given back to the OS), so no env applies it: a
training script (or ``envgym bench --reuse-freed-memory``) calls it once, early. The same
settings from outside the process: ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``.

:class:`Recycler` is the per-env answer, with no process-wide effect: an env asks it for the
arrays of a step's big fresh outputs, and it hands back one that an earlier step handed out
once nothing outside holds it any more (no tensor, view or array still refers to its memory),
else a new one. A training loop that drops a step's outputs by the step after (``obs, ... =
envs.step(a)`` does) gets every big output in memory that is already mapped, and values it
keeps are never written over. New arrays come from NumPy, which asks the kernel for huge pages
for big blocks (``madvise``), so even they fault per 2 MB, not per 4 KB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
from collections.abc import Callable

import numpy as np
import torch

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP = 2**31 - 1  # the largest trim threshold mallopt takes (a C int)
_applied = False


def _libc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None where the C library has none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    fn = getattr(libc, "mallopt", None)
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn


def reuse_freed_memory() -> bool:
    """Serve big blocks from the heap (no ``mmap``) and never trim it, for this process.

    Returns whether the settings took (glibc: ``mallopt`` returns 1 for each); elsewhere it
    changes nothing and returns False. Calling it again is harmless."""
    global _applied
    mallopt = _libc_mallopt()
    if mallopt is None:
        return False
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _KEEP) == 1
    _applied = _applied or ok
    return ok


def allocator_mode() -> str:
    """``"reuse-freed-memory"`` where :func:`reuse_freed_memory` took or the environment set
    glibc's ``MALLOC_MMAP_MAX_=0``; else ``"default"`` (benchmark rows record it)."""
    if _applied or os.environ.get("MALLOC_MMAP_MAX_") == "0":
        return "reuse-freed-memory"
    return "default"


class Recycler:
    """The arrays of an env's big fresh outputs: new to the caller, in memory reused where
    nothing still holds it.

    :meth:`empty` returns an uninitialised array of ``shape`` and ``dtype`` (the caller writes
    every element) for the output ``key``: one this recycler handed out before for ``key`` when
    no object outside it refers to that array any more, else a new one. An array is held while
    a reference to it exists: a ``torch.from_numpy`` tensor's storage holds one (so do its
    views, ``.numpy()`` of it, DLPack capsules of it), a NumPy view holds one as its ``base``.
    CPython's reference count says so exactly; the recycler keeps at most ``depth`` arrays per
    key (the oldest is let go when a new one is made), so a caller that keeps more steps than
    that gets new memory, never shared memory.
    """

    def __init__(self, depth: int = 2) -> None:
        self.depth = depth
        self._pools: dict[str, list[np.ndarray]] = {}

    def empty(self, key: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An array for output ``key`` that nothing outside this recycler refers to."""
        pool = self._pools.setdefault(key, [])
        dtype = np.dtype(dtype)
        for i in range(len(pool)):
            if _unheld(pool, i) and pool[i].shape == shape and pool[i].dtype == dtype:
                return pool[i]
        arr = np.empty(shape, dtype)
        pool.append(arr)
        if len(pool) > self.depth:
            del pool[0]
        return arr

    def tensor(self, key: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """:meth:`empty` as a CPU tensor (``torch.from_numpy``: its storage holds the array)."""
        return torch.from_numpy(self.empty(key, tuple(shape), _NUMPY_DTYPES[dtype]))

    def big(self, key: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray | None:
        """:meth:`empty` for an output of at least :data:`BIG_BYTES`; ``None`` for a smaller
        one (allocate it as usual: glibc serves small blocks from memory already mapped, and
        the bookkeeping here would cost more than it saves)."""
        return self.empty(key, shape, dtype) if _is_big(shape, np.dtype(dtype)) else None

    def big_tensor(
        self, key: str, shape: tuple[int, ...], dtype: torch.dtype
    ) -> torch.Tensor | None:
        """:meth:`big` as a CPU tensor (:meth:`tensor`), or ``None``."""
        return self.tensor(key, shape, dtype) if _is_big(shape, _NUMPY_DTYPES[dtype]) else None


def _is_big(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    return math.prod(shape) * dtype.itemsize >= BIG_BYTES


BIG_BYTES = 1 << 20
"""From this size on (1 MiB) an output is worth recycling: glibc maps blocks over 128 KB afresh
until its threshold adapts, and a fresh mapping page-faults per 4 KB."""


_NUMPY_DTYPES = {
    d: torch.empty(0, dtype=d).numpy().dtype
    for d in (
        torch.bool,
        torch.int8,
        torch.uint8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.float16,
        torch.float32,
        torch.float64,
    )
}


def _refs(pool: list[np.ndarray], i: int) -> int:
    """The references to ``pool[i]`` as this function sees them (the pool's, the argument's)."""
    return sys.getrefcount(pool[i])


def _unheld(pool: list[np.ndarray], i: int) -> bool:
    """Whether ``pool[i]`` has no reference but the pool's own."""
    return _refs(pool, i) <= _FREE_REFS


_FREE_REFS = _refs([np.empty(0)], 0)
"""What :func:`_refs` counts for an array that only its pool holds: measured at import, not
assumed, so another interpreter's bookkeeping cannot make a held array look free."""
