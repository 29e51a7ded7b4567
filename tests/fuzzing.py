"""Shared settings of the fuzz suite (hypothesis), one profile per depth.

Every fuzz property is written once and run at two depths:

- ``quick()``: a few dozen cases per property, in every ``pytest -q`` run (CI), so that the
  whole quick profile stays within about three minutes;
- ``long()``: the long profile, in tests marked ``@pytest.mark.fuzz``, which the default run
  deselects (``addopts`` in ``pyproject.toml``) and ``pytest -m fuzz`` runs; a family's long
  properties add up to at least 10,000 cases.

``case_timeout(s)`` bounds one case in wall-clock time: a parser or engine that hangs fails
the case with :class:`Hang` instead of stalling the run.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # wall-clock limits are case_timeout's job, not hypothesis' deadline
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "derandomize": True,  # CI runs the same cases every time; the long profile explores more
}


def quick(max_examples: int = 40) -> settings:
    """The profile every test run uses."""
    return settings(max_examples=max_examples, **_COMMON)


def long(max_examples: int = 2_500) -> settings:
    """The long profile (``pytest -m fuzz``): fresh random cases on each run."""
    return settings(max_examples=max_examples, **{**_COMMON, "derandomize": False})


class Hang(AssertionError):
    """A single fuzz case ran past its time limit."""


@contextlib.contextmanager
def case_timeout(seconds: float) -> Iterator[None]:
    """Fail with :class:`Hang` if the body runs longer than ``seconds`` (main thread only;
    elsewhere the body runs unbounded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    fired = False

    def on_alarm(signum: int, frame: object) -> None:
        nonlocal fired
        fired = True
        raise Hang(f"fuzz case ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The alarm may have fired inside code that swallows exceptions (a garbage-collector
    # callback, a bare except): the case still counts as a hang.
    if fired:
        raise Hang(f"fuzz case ran past {seconds} s")
