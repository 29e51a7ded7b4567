"""Fork safety: a process forked from one that ran torch ops must not use torch's OpenMP pool.

GNU OpenMP's thread pool does not survive ``fork()``: a child whose parent had run a parallel
torch op hangs forever in its first one (``gym.make_vec(..., vectorization_mode="async")``
builds one env in the parent to read the spaces, then forks its workers; so does a
``multiprocessing.Process`` started after an env was made). PyTorch's own ``DataLoader`` workers
run with one intra-op thread for the same reason. :func:`install` registers a handler that does
the same in every forked child, before any code runs there: worker processes are already the
unit of parallelism, so one torch thread each is what they should use anyway.
"""

from __future__ import annotations

import os
import sys

_installed = False


def _after_fork_in_child() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:  # nothing to do in a child of a process that never imported torch
        torch.set_num_threads(1)


def install() -> None:
    """Register the after-fork handler once per process (idempotent)."""
    global _installed
    if not _installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _installed = True
