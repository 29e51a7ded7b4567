"""``envgym.core.allocator``: after :func:`reuse_freed_memory` a process that allocates, fills
and frees a big tensor over and over stops page-faulting on it (the pages are reused), where
by default every round faults its pages in anew. Each case runs in a fresh interpreter: the
switch is process-wide, and the test session's own allocator must stay as it was."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.utils.dlpack
from hypothesis import given, settings
from hypothesis import strategies as st

from envgym.core.allocator import Recycler

_PROGRAM = """
import resource, sys, torch
from envgym.core.allocator import allocator_mode, reuse_freed_memory
took = reuse_freed_memory() if sys.argv[1] == "reuse" else None
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(64 * 2**20, dtype=torch.uint8)  # 64 MB: over glibc's mmap threshold
    del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(took, allocator_mode(), min(faults[2:]))
"""

PAGES = 64 * 2**20 // 4096


def _run(mode: str) -> tuple[str, str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    cmd = [sys.executable, "-c", _PROGRAM, mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.split()
    return out[0], out[1], int(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_big_tensors_are_reused_after_the_switch_and_faulted_anew_without_it() -> None:
    took, mode, faults = _run("reuse")
    if took != "True":
        pytest.skip("this C library has no mallopt (not glibc)")
    assert mode == "reuse-freed-memory"
    assert faults < PAGES // 10  # the same pages again: (almost) no faults
    took, mode, faults = _run("default")
    assert (took, mode) == ("None", "default")
    assert faults > PAGES // 2  # a fresh mapping each round: a fault per page


# ---------------------------------------------------------------------- Recycler
# The property: memory handed out is never handed out again while anything still refers to
# it, whatever keeps it (a tensor, a view, ``.numpy()``, a DLPack capsule, the storage, a
# NumPy view of a NumPy view). Each array handed out is stamped with a value of its own and its
# address range noted: a later array must not overlap a held one, and held stamps must stay.

_HOLDERS = ("tensor", "view", "numpy", "dlpack", "storage", "array_view")


def _holder(t: torch.Tensor, how: str) -> object:
    """Something that keeps ``t``'s memory referenced, the way callers keep outputs."""
    if how == "tensor":
        return t
    if how == "view":
        return t[1:]
    if how == "numpy":
        return t.numpy()
    if how == "dlpack":
        return torch.utils.dlpack.to_dlpack(t)
    if how == "storage":
        return t.untyped_storage()
    return t.numpy()[::2]


def _readable(h: object) -> torch.Tensor | None:
    """The held memory as a tensor, where the holder can be read without consuming it."""
    if isinstance(h, torch.Tensor):
        return h
    if isinstance(h, np.ndarray):
        return torch.from_numpy(h)
    if isinstance(h, torch.UntypedStorage):
        return torch.empty(0, dtype=torch.int64).set_(h)
    return None  # a DLPack capsule: its address range is checked


@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(("get", "get", "drop")),
            st.sampled_from(("a", "b")),
            st.sampled_from(((6,), (3, 2))),
            st.sampled_from(_HOLDERS),
            st.integers(0, 50),
        ),
        max_size=60,
    ),
    depth=st.integers(1, 3),
)
@settings(max_examples=150, deadline=None)
def test_recycler_never_hands_out_memory_that_is_still_held(ops: list, depth: int) -> None:
    rec = Recycler(depth)
    held: list[tuple[object, int, tuple[int, int]]] = []
    for n, (op, key, shape, how, pick) in enumerate(ops):
        if op == "drop" and held:
            held.pop(pick % len(held))
            continue
        if op != "get":
            continue
        t = rec.tensor(key, shape, torch.int64)
        assert t.shape == shape and t.dtype == torch.int64
        span = (t.data_ptr(), t.data_ptr() + t.nbytes)
        for _, _, (lo, hi) in held:
            assert span[1] <= lo or hi <= span[0], "memory still held was handed out again"
        t.fill_(n)
        held.append((_holder(t, how), n, span))
        del t
        for h, stamp, _ in held:
            now = _readable(h)
            assert now is None or bool((now == stamp).all())


def test_recycler_reuses_what_was_dropped_and_not_what_is_kept() -> None:
    rec = Recycler()
    a = rec.tensor("x", (4,), torch.float32)
    first = a.data_ptr()
    b = rec.tensor("x", (4,), torch.float32)
    assert b.data_ptr() != first  # `a` is still held
    del a
    again = rec.tensor("x", (4,), torch.float32)
    assert again.data_ptr() == first  # dropped: the same memory again
    kept = again[2:]  # only a view of it survives
    del again, b
    c = rec.tensor("x", (4,), torch.float32)
    assert c.data_ptr() != first and kept.data_ptr() == first + 8
    assert rec.tensor("x", (5,), torch.float32).shape == (5,)  # another shape: new memory
    assert rec.tensor("y", (4,), torch.bool).dtype == torch.bool


def test_only_big_outputs_are_recycled() -> None:
    from envgym.core.allocator import BIG_BYTES

    rec = Recycler()
    assert rec.big_tensor("x", (BIG_BYTES // 4 - 1,), torch.float32) is None
    big = rec.big_tensor("x", (BIG_BYTES // 4,), torch.float32)
    assert big is not None and big.shape == (BIG_BYTES // 4,)
    ptr = big.data_ptr()
    del big
    again = rec.big_tensor("x", (BIG_BYTES // 4,), torch.float32)
    assert again is not None and again.data_ptr() == ptr
