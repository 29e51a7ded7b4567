"""Fuzz suite, robot family: tensor actions (vector and single face) and snapshots.

The rule under test (``docs/robot.md``, "Bad input"): an action batch of real numbers with the
right shape and every entry finite is carried out with out-of-range values clipped to
``[-1, 1]``; anything else raises :class:`InvalidActionError` (a ``ValueError``) before any
world steps, so every world's state is bit-identical to before. A snapshot is either written
whole or refused with ``ValueError`` with nothing written. Quick profile in every run; the
long profile (``pytest -m fuzz``) adds up to 10,000 cases.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from envgym.core.errors import InvalidActionError
from envgym.robot.env import RobotEnv, RobotVectorEnv
from tests.fuzzing import case_timeout, long, quick

pytestmark = pytest.mark.mujoco

B, A = 4, 7
_ENVS: dict[str, Any] = {}


def _envs() -> dict[str, Any]:
    """One vector env, its twin and a single env, shared by every case (resets are cheap)."""
    if not _ENVS:
        torch.set_num_threads(1)
        _ENVS["vec"] = RobotVectorEnv(B, "pick_place", num_threads=1)
        _ENVS["twin"] = RobotVectorEnv(B, "pick_place", num_threads=1)
        _ENVS["single"] = RobotEnv("pick_place")
        _ENVS["vec"].reset(seed=0)
        _ENVS["twin"].reset(seed=0)
        _ENVS["single"].reset(seed=0)
        _ENVS["vec"].step(torch.zeros(B, A))
        _ENVS["snap0"] = _ENVS["vec"].get_state()  # every snapshot case starts from this one
    return _ENVS


DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.longdouble,
    np.int8,
    np.int32,
    np.int64,
    np.uint8,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
    np.str_,
    np.object_,
]
SPECIAL = [0.0, 1.0, -1.0, 1.5, -3.0, 1e300, -1e300, 3e38, 1e-310, math.nan, math.inf, -math.inf]


@st.composite
def action_arrays(draw: st.DrawFn, rows: int, single: bool = False) -> tuple[Any, bool]:
    """An action array and whether the rule accepts it (``single``: the single env's,
    whose one valid shape is ``[A]``)."""
    shape = draw(
        st.sampled_from(
            [(rows, A), (rows, A), (rows, A), (A,), (rows, A + 1), (rows + 1, A), (8, 8), (), (0,)]
        )
    )
    dtype = draw(st.sampled_from(DTYPES))
    n = int(np.prod(shape)) if shape else 1
    vals = draw(
        st.lists(
            st.one_of(
                st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True, width=64)
            ),
            min_size=n,
            max_size=n,
        )
    )
    with np.errstate(all="ignore"):
        if dtype in (np.str_, np.object_):
            arr = np.array([str(v) for v in vals], dtype=dtype).reshape(shape)
        elif np.dtype(dtype).kind in "iub":
            ints = [
                0 if not math.isfinite(v) else max(-(2**7), min(2**7 - 1, int(v))) for v in vals
            ]
            if dtype in (np.uint8, np.uint64):
                ints = [abs(v) for v in ints]
            arr = np.array(ints).astype(dtype).reshape(shape)
        else:
            arr = np.array(vals, dtype=np.float64).astype(dtype).reshape(shape)
    as_tensor = draw(st.booleans()) and dtype not in (np.str_, np.object_, np.longdouble)
    shape_ok = shape == (A,) if single else shape == (rows, A) or (rows == 1 and shape == (A,))
    kind_ok = np.dtype(dtype).kind in "fiu"
    finite = np.dtype(dtype).kind != "f" or bool(np.isfinite(arr).all())
    ok = shape_ok and kind_ok and finite
    if as_tensor:
        arr = torch.from_numpy(np.ascontiguousarray(arr))
    return arr, ok


def _clipped(arr: Any) -> np.ndarray:
    a = arr.numpy() if torch.is_tensor(arr) else arr
    return np.clip(a, -1, 1).astype(np.float32).reshape(-1, A)


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _check_vector_action(case: tuple[Any, bool]) -> None:
    arr, ok = case
    e = _envs()
    vec, twin = e["vec"], e["twin"]
    before = vec.get_state()
    twin.set_state(before)
    with case_timeout(5):
        try:
            obs, rew, *_ = vec.step(arr)
        except InvalidActionError:
            assert not ok, "a valid action batch was refused"
            assert _same_state(vec.get_state(), before), "a refused batch changed a world"
            return
    assert ok, f"an invalid action batch was accepted: {getattr(arr, 'dtype', None)}"
    obs2, rew2, *_ = twin.step(torch.from_numpy(_clipped(arr)))
    assert torch.equal(obs, obs2) and torch.equal(rew, rew2), "not the clipped action"
    assert bool(torch.isfinite(obs).all())


def _check_single_action(case: tuple[Any, bool]) -> None:
    arr, ok = case
    single = _envs()["single"]
    with case_timeout(5):
        try:
            _, _, term, trunc, _ = single.step(arr)
        except InvalidActionError:
            assert not ok
            return
    assert ok, "the single env accepted what the vector env refuses"
    if term or trunc:
        single.reset()


def _mutate(draw: st.DrawFn, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v.clone() for k, v in state.items()}
    key = draw(st.sampled_from(sorted(state)))
    how = draw(
        st.sampled_from(
            [
                "nan",
                "inf",
                "huge",
                "negative",
                "shape",
                "dtype",
                "bool",
                "complex",
                "drop",
                "extra",
                "list",
                "noise",
            ]
        )
    )
    v = out[key]
    if how == "nan" and v.dtype.is_floating_point:
        v.view(-1)[draw(st.integers(0, v.numel() - 1))] = math.nan
    elif how == "inf" and v.dtype.is_floating_point:
        v.view(-1)[draw(st.integers(0, v.numel() - 1))] = -math.inf
    elif how == "huge":
        big = torch.finfo(v.dtype).max if v.dtype.is_floating_point else 2**62
        v.view(-1)[draw(st.integers(0, v.numel() - 1))] = big
    elif how == "negative":
        out[key] = -v - 1
    elif how == "shape":
        out[key] = torch.cat([v, v[:1]]) if draw(st.booleans()) else v[:, None]
    elif how == "dtype":
        out[key] = v.to(torch.int32 if v.dtype.is_floating_point else torch.float32)
    elif how == "bool":
        out[key] = v.bool()
    elif how == "complex":
        out[key] = v.to(torch.complex64)
    elif how == "drop":
        del out[key]
    elif how == "extra":
        out["surprise"] = torch.zeros(B)
    elif how == "list":
        out[key] = v.tolist()
    else:
        noise = draw(st.floats(-10, 10, allow_nan=False))
        out[key] = v + noise if v.dtype.is_floating_point else v
    return out


@st.composite
def mutated_snapshots(draw: st.DrawFn) -> dict[str, Any]:
    return _mutate(draw, _envs()["snap0"])


def _check_snapshot(snap: dict[str, Any]) -> None:
    vec = _envs()["vec"]
    vec.set_state(_envs()["snap0"])
    before = vec.get_state()
    with case_timeout(5):
        try:
            vec.set_state(snap)
        except ValueError:
            assert _same_state(vec.get_state(), before), "a refused snapshot wrote something"
            return
        for _ in range(3):  # an accepted snapshot keeps the env working
            obs, *_ = vec.step(torch.zeros(B, A))
            assert bool(torch.isfinite(obs).all())
    vec.set_state(before)


# ---------------------------------------------------------------- quick profile (every run)
@quick(60)
@given(action_arrays(B))
def test_fuzz_vector_actions(case: tuple[Any, bool]) -> None:
    _check_vector_action(case)


@quick(40)
@given(action_arrays(1, single=True))
def test_fuzz_single_actions(case: tuple[Any, bool]) -> None:
    _check_single_action(case)


@quick(40)
@given(mutated_snapshots())
def test_fuzz_snapshots(snap: dict[str, Any]) -> None:
    _check_snapshot(snap)


# ---------------------------------------------------------------- long profile (pytest -m fuzz)
@pytest.mark.fuzz
@long(5_000)
@given(action_arrays(B))
def test_fuzz_vector_actions_long(case: tuple[Any, bool]) -> None:
    _check_vector_action(case)


@pytest.mark.fuzz
@long(2_500)
@given(action_arrays(1, single=True))
def test_fuzz_single_actions_long(case: tuple[Any, bool]) -> None:
    _check_single_action(case)


@pytest.mark.fuzz
@long(2_500)
@given(mutated_snapshots())
def test_fuzz_snapshots_long(snap: dict[str, Any]) -> None:
    _check_snapshot(snap)


# ---------------------------------------------------------------- regressions (issue 13)
def test_huge_finite_actions_are_clipped_not_refused() -> None:
    e = _envs()
    vec, twin = e["vec"], e["twin"]
    twin.set_state(vec.get_state())
    obs, *_ = vec.step(np.full((B, A), 1e300, dtype=np.float64))
    obs2, *_ = twin.step(torch.ones(B, A))
    assert torch.equal(obs, obs2)
    single = e["single"]
    single.step(np.full(A, -1e300))


@pytest.mark.parametrize(
    "bad",
    [
        np.ones((B, A), dtype=bool),
        np.ones((B, A), dtype=np.complex128),
        torch.ones(B, A, dtype=torch.complex64),
        np.ones((8, 8)),
        np.full((B, A), math.nan),
    ],
    ids=["bool", "complex", "torch-complex", "shape-8x8", "nan"],
)
def test_bool_complex_and_misshapen_actions_raise_on_both_faces(bad: Any) -> None:
    e = _envs()
    before = e["vec"].get_state()
    with pytest.raises(InvalidActionError):
        e["vec"].step(bad)
    assert _same_state(e["vec"].get_state(), before)
    with pytest.raises(InvalidActionError):
        e["single"].step(bad[0])
    assert issubclass(InvalidActionError, ValueError)


def test_one_bad_world_leaves_every_world_untouched() -> None:
    e = _envs()
    vec = e["vec"]
    before = vec.get_state()
    a = np.zeros((B, A))
    a[2, 3] = math.inf
    with pytest.raises(InvalidActionError, match=r"worlds \[2\]"):
        vec.step(a)
    assert _same_state(vec.get_state(), before)
