"""glibc's malloc settings for big batched CPU envs: an opt-in, process-wide switch.

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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable

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
