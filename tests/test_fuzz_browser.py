"""Fuzz suite, browser family: the action parser directly, then live pages.

The rule under test (``docs/browser.md``, "Bad input"): any string or dict action either
parses into a :class:`BrowserAction` within bounds or raises :class:`ParseError`, in bounded
time; on a live env a string or dict never raises, never faults the world and never touches
another world: it is carried out, or reported in ``action_error`` (1 unparseable, 2 refused)
with the ``invalid_action`` penalty. Quick profile in every run; the long profile
(``pytest -m fuzz``) runs 10,000 parser cases and a few hundred live steps.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envgym.browser.actions import (
    KEYS,
    MAX_ACTION_CHARS,
    MAX_COORD,
    OPS,
    BrowserAction,
    ParseError,
    parse_action,
)
from envgym.browser.engine import ERROR_CODES
from tests.fuzzing import case_timeout, long, quick

NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["inf", "-inf", "nan", "1e999", "1e5", "0x10", "1_000", "\u0661", "\u00b2", ""]
    ),
)
WORDS = st.one_of(
    st.sampled_from(["e1", "e2", "e999999", "e0", "e1234567", "E1", "e-1", "Enter", "Tab"]),
    st.sampled_from(sorted(KEYS)),
    st.text(max_size=12),
    NUMBERS.map(str),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def commands(draw: st.DrawFn) -> str:
    """Command strings: near-grammatical ones (a real op and fuzzed arguments) and noise."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.text(max_size=80))
    if kind == 1:
        return draw(st.text(alphabet=st.characters(codec="ascii"), max_size=600))
    op = draw(st.sampled_from(sorted(OPS)))
    n = draw(st.integers(0, len(OPS[op]) + 2))
    args = draw(st.lists(WORDS, min_size=n, max_size=n))
    sep = draw(st.sampled_from([" ", "  ", "\t", " \u3000 "]))
    return sep.join([op, *args])


@st.composite
def json_actions(draw: st.DrawFn) -> Any:
    """Structured dicts and tool calls (as dicts or JSON text), with fuzzed fields and depth."""
    op = draw(st.one_of(st.sampled_from(sorted(OPS)), JSON_VALUES))
    names = list(OPS.get(op, ())) if isinstance(op, str) else []
    args = {
        name: draw(st.one_of(WORDS, NUMBERS, JSON_VALUES))
        for name in names
        if draw(st.integers(0, 9)) > 0
    }
    args.update(draw(st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=2)))
    depth = draw(st.integers(0, 12))
    if depth > 6:
        args["deep"] = json.loads("[" * depth + "]" * depth)
    shape = draw(st.integers(0, 3))
    if shape == 0:
        obj: Any = {"op": op, **args}
    elif shape == 1:
        obj = {"name": op, "arguments": args}
    elif shape == 2:
        obj = {"type": "function", "function": {"name": op, "arguments": json.dumps(args)}}
    else:
        obj = {"name": op, "arguments": draw(st.text(max_size=40))}
    if draw(st.booleans()):
        try:
            return json.dumps(obj)
        except (TypeError, ValueError):  # NaN/inf are fine in json.dumps; other oddities
            return obj
    return obj


ACTIONS = st.one_of(commands(), json_actions())


def _check_parse(action: Any) -> None:
    with case_timeout(2):
        try:
            a = parse_action(action)
        except ParseError as e:
            assert len(str(e)) < 400
            return
    assert isinstance(a, BrowserAction) and a.op in OPS
    for v in (a.x, a.y, a.x2, a.y2):
        assert isinstance(v, int) and -MAX_COORD <= v <= MAX_COORD
    if a.text is not None:
        assert len(a.text) <= MAX_ACTION_CHARS
    if a.ref is not None:
        assert a.ref.startswith("e") and a.ref[1:].isascii() and a.ref[1:].isdigit()


_LIVE: dict[str, Any] = {}


def _live_env() -> Any:
    if "env" not in _LIVE:
        from envgym.browser.env import BrowserVectorEnv

        env = BrowserVectorEnv(4, "FillForm", max_steps=10_000)
        env.reset(seed=0)
        _LIVE["env"] = env
    return _LIVE["env"]


def _check_live(actions: list[Any]) -> None:
    env = _live_env()
    with case_timeout(30):
        _, _, term, trunc, info = env.step(actions)
    codes = info["action_error"].tolist()
    assert all(c in (0, ERROR_CODES["parse"], ERROR_CODES["action"]) for c in codes), (
        actions,
        info["action_error_message"],
    )
    assert not bool(trunc.any()), info["truncation_reason"]
    for i, a in enumerate(actions):
        try:
            parse_action(a)
        except ParseError:
            assert codes[i] == ERROR_CODES["parse"]


@pytest.fixture(scope="module", autouse=True)
def _close_live() -> Any:
    yield
    env = _LIVE.pop("env", None)
    if env is not None:
        env.close()


# ---------------------------------------------------------------- quick profile (every run)
@quick(150)
@given(ACTIONS)
def test_fuzz_parse_action(action: Any) -> None:
    _check_parse(action)


@pytest.mark.browser
@quick(12)
@given(
    st.lists(
        st.one_of(ACTIONS, st.sampled_from(["click e1", "fill e2 x", "noop"])),
        min_size=4,
        max_size=4,
    )
)
def test_fuzz_live_actions(actions: list[Any]) -> None:
    _check_live(actions)


# ---------------------------------------------------------------- long profile (pytest -m fuzz)
@pytest.mark.fuzz
@long(10_000)
@given(ACTIONS)
def test_fuzz_parse_action_long(action: Any) -> None:
    _check_parse(action)


@pytest.mark.fuzz
@pytest.mark.browser
@long(1_000)
@given(st.lists(ACTIONS, min_size=4, max_size=4))
def test_fuzz_live_actions_long(actions: list[Any]) -> None:
    _check_live(actions)
