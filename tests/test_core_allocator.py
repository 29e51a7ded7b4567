"""``envgym.core.allocator``: after :func:`reuse_freed_memory` a process that allocates, fills
and frees a big tensor over and over stops page-faulting on it (the pages are reused), where
by default every round faults its pages in anew. Each case runs in a fresh interpreter: the
switch is process-wide, and the test session's own allocator must stay as it was."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
