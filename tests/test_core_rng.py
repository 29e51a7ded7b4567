"""The counter-based RNG (``envgym.core.rng``): the tensor hash gives the bits of its plain
Python reference for every 32-bit input, whatever the batch; constant keys give the bits of
the same keys passed as tensors, and NumPy arrays the bits of the same keys as tensors."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from envgym.core import rng

U32 = st.integers(min_value=0, max_value=2**32 - 1)
KEY = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _mul32_ref(x: int, c: int) -> int:
    return (x * c) % 2**32


@settings(max_examples=300, deadline=None)
@given(st.lists(U32, min_size=1, max_size=64), U32)
def test_mul32_is_the_product_mod_2_32(xs: list[int], c: int) -> None:
    got = rng._mul32(torch.tensor(xs, dtype=torch.int64), c).tolist()
    assert got == [_mul32_ref(x, c) for x in xs]


@settings(max_examples=300, deadline=None)
@given(st.lists(U32, min_size=1, max_size=64))
def test_hash32_equals_its_python_reference(xs: list[int]) -> None:
    got = rng.hash32(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert got == [rng._hash32_int(x) for x in xs]
    assert all(0 <= v < 2**32 for v in got)


@settings(max_examples=200, deadline=None)
@given(st.lists(KEY, min_size=1, max_size=16), st.lists(KEY, min_size=1, max_size=3))
def test_constant_keys_mix_like_tensor_keys(seeds: list[int], consts: list[int]) -> None:
    s = torch.tensor(seeds, dtype=torch.int64)
    as_ints = rng.mix(s, *consts)
    as_tensors = rng.mix(s, *(torch.full_like(s, c) for c in consts))
    assert torch.equal(as_ints, as_tensors)


def test_draws_do_not_depend_on_the_batch() -> None:
    seeds = torch.arange(1000, dtype=torch.int64) * 7919 + 2**40
    whole = rng.randint(torch.full_like(seeds, 97), seeds, 3, 11)
    one_by_one = torch.cat(
        [rng.randint(torch.tensor([97]), seeds[i : i + 1], 3, 11) for i in range(0, 1000, 37)]
    )
    assert torch.equal(whole[::37], one_by_one)
    u = rng.uniform(seeds, 5)
    assert bool(((u >= 0) & (u < 1)).all())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(KEY, KEY, st.integers(min_value=-5, max_value=2**40)), min_size=1),
    KEY,
)
def test_numpy_arrays_draw_the_tensors_bits(rows: list[tuple[int, int, int]], const: int) -> None:
    seed, key, high = (torch.tensor(col, dtype=torch.int64) for col in zip(*rows, strict=True))
    want = rng.randint(high, seed, key, const)
    got = rng.randint(high.numpy(), seed.numpy(), key.numpy(), const)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    assert np.array_equal(got, want.numpy())
    assert torch.equal(rng.randint_cpu(high, seed, key, const), want)


@settings(max_examples=200, deadline=None)
@given(st.lists(KEY, min_size=1, max_size=8), st.lists(KEY, min_size=1, max_size=8), KEY)
def test_fixed_keys_mix_like_the_same_arrays(seeds: list[int], fixed: list[int], c: int) -> None:
    s = torch.tensor(seeds, dtype=torch.int64)[:, None]
    f = np.array([fixed], dtype=np.int64)
    want = rng.mix(s, c, torch.from_numpy(f))
    key = rng.FixedKey(f)
    assert torch.equal(rng.mix(s, c, key), want)
    assert np.array_equal(rng.mix(s.numpy(), c, key), want.numpy())
    assert torch.equal(rng.mix(s, key, c), rng.mix(s, torch.from_numpy(f), c))
    got = rng.uniform(s.numpy(), key)
    assert got.dtype == np.float32
    assert np.array_equal(got, rng.uniform(s, torch.from_numpy(f)).numpy())
