"""Fuzz suite of the phone family, the vector base and the scenario DSL (issue 13).

Every property runs twice: ``quick()`` in every test run and ``long()`` under
``pytest -m fuzz``. The rule they check (docs/reliability.md): a malformed text action is
answered in band (``action_error`` ``"not_understood: ..."``) and never raises or hangs; a
malformed tensor input raises the family's one error type (``envgym.core.errors``) and leaves
every world as it was; a mutated scenario is either a ``ScenarioError`` naming the file and a
field, or it validates and the engine then runs it.
"""

from __future__ import annotations

import json
import string
from functools import cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import envgym  # noqa: F401  (registers the ids)
from envgym.core.errors import InvalidActionError, InvalidResetError, InvalidStateError
from envgym.phone.scenarios import scenario_dir, shipped_names
from tests.fuzzing import case_timeout, long, quick
from tests.helpers import make_vec

B = 64

# --------------------------------------------------------------------------- strategies
WORDS = [
    "dial", "call", "press", "wait", "hang up", "yes", "no", "report", "provide", "ask user",
    "ask about", "request", "i'd like", "my", "the", "is", "our", "prepare", "speak", "barge",
    "0", "1", "#", "*", "²", "٣", "800-555-0100", "billing", "zip", "{", "}", "[", '"',
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["dial", "press", "wait", "provide", "request", "ask_user", "report"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)
TOOL_CALL = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["dial", "press", "provide", "request", "ask_about", "x"])
        | JSON_VALUES,
        "arguments": JSON_VALUES
        | st.dictionaries(
            st.sampled_from(["number", "key", "service", "fact", "value"]), JSON_VALUES, max_size=3
        )
        | JSON_VALUES.map(json.dumps),
        "function": JSON_VALUES,
        "tool_calls": st.lists(JSON_VALUES, max_size=3),
    },
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(WORDS) | st.text(string.whitespace, max_size=50), max_size=12).map(
        " ".join
    ),
    st.builds(
        lambda a, n, b: a + b * n,
        st.sampled_from(WORDS),
        st.integers(0, 6000),
        st.sampled_from([" ", "[", "{", "is ", "a", "\t"]),
    ),
    TOOL_CALL.map(json.dumps),
    st.integers(0, 12).map(lambda d: "[" * (50 * d) + "]" * (50 * d)),
)
ACTION = st.one_of(TEXT, TOOL_CALL, JSON_VALUES)


@cache
def _text_env(realtime: bool) -> Any:
    rt = {"realtime": True, "obs_mode": "text"} if realtime else {}
    env = gym.make("envgym/Phone-v0", scenario="all", **rt)
    env.reset(seed=0)
    return env


def _check_text(realtime: bool, actions: list[Any]) -> None:
    env = _text_env(realtime)
    for action in actions:
        with case_timeout(5):
            _obs, reward, term, trunc, info = env.step(action)
        assert isinstance(info["action_error"], str)
        assert np.isfinite(reward)
        if term or trunc:
            env.reset()
    # The env still works after the case.
    env.reset(seed=1)
    assert not env.step("dial 0")[4]["action_error"].startswith("not_understood")


def _bad_text_is_in_band(actions: list[Any]) -> None:
    _check_text(False, actions)


def _bad_text_realtime(actions: list[Any]) -> None:
    _check_text(True, actions)


test_text_actions = quick()(given(st.lists(ACTION, min_size=1, max_size=4))(_bad_text_is_in_band))
test_text_actions_realtime = quick(25)(
    given(st.lists(ACTION, min_size=1, max_size=3))(_bad_text_realtime)
)
test_text_actions_long = pytest.mark.fuzz(
    long(3000)(given(st.lists(ACTION, min_size=1, max_size=4))(_bad_text_is_in_band))
)
test_text_actions_realtime_long = pytest.mark.fuzz(
    long(3000)(given(st.lists(ACTION, min_size=1, max_size=3))(_bad_text_realtime))
)


# --------------------------------------------------------------------------- vector env
@cache
def _vec() -> Any:
    envs = make_vec(B, scenario="all")
    envs.reset(seed=0)
    return envs


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


DTYPES = st.sampled_from(
    [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.float32, np.float64,
     np.complex64, np.bool_]
)  # fmt: skip
SHAPES = st.sampled_from([(B,), (B, 1), (8, 8), (B - 1,), (B, 2), (), (1, B), (B, 1, 1)])
ACTIONS = st.one_of(
    st.builds(lambda d, s, seed: hnp.arrays(d, s), DTYPES, SHAPES, st.integers()).flatmap(
        lambda x: x
    ),
    hnp.arrays(np.int64, (B,), elements=st.integers(-(2**63), 2**63 - 1)),
    hnp.arrays(np.int64, (B,), elements=st.integers(0, 200)),
    st.lists(st.integers(-5, 100) | st.none() | st.text(max_size=2), min_size=B, max_size=B),
)


def _tensor_actions(actions: Any, as_torch: bool) -> None:
    envs = _vec()
    if as_torch and isinstance(actions, np.ndarray) and actions.dtype != np.uint64:
        actions = torch.from_numpy(actions)
    before = envs.get_state()
    with case_timeout(5):
        try:
            envs.step(actions)
        except InvalidActionError:
            assert _same(before, envs.get_state()), "a rejected action changed the state"
    envs.step(envs.oracle_action())


test_tensor_actions = quick()(given(ACTIONS, st.booleans())(_tensor_actions))
test_tensor_actions_long = pytest.mark.fuzz(
    long(1500)(given(ACTIONS, st.booleans())(_tensor_actions))
)

MUTATION = st.sampled_from(
    ["drop", "extra", "dtype", "shape", "numpy", "list", "rows", "ok", "worlds"]
)


def _snapshot(kind: str, key_i: int, worlds: list[int]) -> None:
    envs = _vec()
    snap = envs.get_state()
    keys = sorted(snap)
    k = keys[key_i % len(keys)]
    use_worlds: Any = None
    if kind == "drop":
        snap.pop(k)
    elif kind == "extra":
        snap["not_a_field"] = snap[k]
    elif kind == "dtype":
        snap[k] = snap[k].to(torch.float64 if not snap[k].is_floating_point() else torch.int64)
    elif kind == "shape":
        snap[k] = snap[k][: key_i % B]
    elif kind == "numpy":
        snap[k] = snap[k].numpy()
    elif kind == "list":
        snap[k] = snap[k].tolist()
    elif kind == "rows":  # a valid snapshot of other worlds' rows
        use_worlds = sorted(set(w % B for w in worlds)) or [0]
        snap = envs.get_state(worlds=[(w + 1) % B for w in use_worlds])
    elif kind == "worlds":
        use_worlds = worlds
        snap = envs.get_state(worlds=[0] * max(1, len(worlds)))
    before = envs.get_state()
    with case_timeout(5):
        try:
            envs.set_state(snap, use_worlds)
        except InvalidStateError:
            assert _same(before, envs.get_state()), "a rejected snapshot changed the state"
    envs.step(envs.oracle_action())


SNAP_ARGS = (MUTATION, st.integers(0, 1000), st.lists(st.integers(-3, B + 3), max_size=6))
test_snapshots = quick()(given(*SNAP_ARGS)(_snapshot))
test_snapshots_long = pytest.mark.fuzz(long(1500)(given(*SNAP_ARGS)(_snapshot)))

SEEDS = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.integers(0, 2**63),
    st.lists(st.integers(-(2**64), 2**64), min_size=B, max_size=B),
    st.lists(st.integers(0, 100), max_size=B + 2),
    st.floats(),
    st.text(max_size=3),
)
MASKS = st.one_of(
    st.none(),
    hnp.arrays(np.bool_, (B,)),
    hnp.arrays(np.bool_, st.sampled_from([(3,), (B, 1), (8, 8), ()])),
    hnp.arrays(st.sampled_from([np.int64, np.float32]), (B,)),
    st.lists(st.booleans(), max_size=B + 1),
    st.text(max_size=4),
)


def _reset(seed: Any, mask: Any) -> None:
    envs = _vec()
    options = None if mask is None else {"reset_mask": mask}
    before = envs.get_state()
    with case_timeout(5):
        try:
            envs.reset(seed=seed, options=options)
        except InvalidResetError:
            assert _same(before, envs.get_state()), "a rejected reset changed the state"
    envs.step(envs.oracle_action())


test_reset_options = quick()(given(SEEDS, MASKS)(_reset))
test_reset_options_long = pytest.mark.fuzz(long(1500)(given(SEEDS, MASKS)(_reset)))


# --------------------------------------------------------------------------- scenario YAML
@cache
def _shipped() -> dict[str, Any]:
    return {
        n: yaml.safe_load((scenario_dir() / f"{n}.yaml").read_text(encoding="utf-8"))
        for n in shipped_names()
    }


def _paths(x: Any, loc: tuple = ()) -> list[tuple]:
    out = [loc]
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, (*loc, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _paths(v, (*loc, i))
    return out


VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [10**30, -1, 0, 2**63, 1e308, "{company.__class__}", "{x!z}", "Hello {", "{rep}",
         "Hi {company:.>20000000}", "", "x" * 3000, ".nan", [], {}, "billing", "n0", "main"]
    ),
)  # fmt: skip
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["set", "delete", "duplicate", "swap"]), st.integers(0, 10**6), VALUES
    ),
    min_size=1,
    max_size=3,
)


def _mutate(doc: Any, edits: list[tuple[str, int, Any]]) -> Any:
    for op, pick, value in edits:
        paths = _paths(doc)
        loc = paths[pick % len(paths)]
        if not loc:
            continue
        parent = doc
        for part in loc[:-1]:
            parent = parent[part]
        last = loc[-1]
        if op == "set":
            parent[last] = value
        elif op == "delete":
            del parent[last]
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[last])))
        elif op == "swap":
            other = paths[(pick * 7 + 3) % len(paths)]
            src = doc
            try:
                for part in other:
                    src = src[part]
            except (KeyError, IndexError, TypeError):
                continue
            parent[last] = json.loads(json.dumps(src))
    return doc


def _scenario(name_i: int, edits: list[tuple[str, int, Any]], tmp: Path) -> None:
    from envgym.cli import validate_file

    names = sorted(_shipped())
    name = names[name_i % len(names)]
    doc = _mutate(json.loads(json.dumps(_shipped()[name])), edits)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=False), encoding="utf-8")
    with case_timeout(60):
        ok, msg = validate_file(path)
    assert "internal error" not in msg, msg
    if not ok:
        assert str(path) in msg and ": " in msg.split("\n", 1)[1], msg
        return
    with case_timeout(60):
        envs = make_vec(8, scenario=str(path))
        envs.reset(seed=0)
        gen = torch.Generator().manual_seed(0)
        for _ in range(60):
            envs.step(torch.randint(0, envs.single_action_space.n, (8,), generator=gen))


@pytest.fixture(scope="module")
def yaml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_yaml")


def _scenario_test(profile: Any) -> Any:
    @profile
    @given(st.integers(0, 100), EDITS)
    def prop(yaml_dir: Path, name_i: int, edits: list[tuple[str, int, Any]]) -> None:
        _scenario(name_i, edits, yaml_dir)

    return prop


test_scenario_mutation = _scenario_test(quick(20))
test_scenario_mutation_long = pytest.mark.fuzz(_scenario_test(long(1000)))
