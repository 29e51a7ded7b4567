"""How batches cross process boundaries: torch tensors travel as NumPy arrays.

A worker turns every tensor of its step into a :class:`TensorLeaf` (a NumPy array with a
marker saying "this was a tensor"); Ray serialises NumPy arrays with pickle protocol 5 and
out-of-band buffers, so a large result lands in the node's shared-memory object store once and
the learner reads it there without a deserialising copy. The learner then concatenates the
workers' parts (one copy, into an array it owns) and turns the marked leaves back into tensors
on its device. Text (object arrays of ``str``) is pickled: there is no zero-copy form of it.

Actions travel the other way in the same form: a batch as a NumPy array (or a list), a typed
record of per-world fields (a dataclass such as ``envgym.phone.engine.PhoneActions``) as a
:class:`RecordLeaf` of its fields in wire form, sliced per worker with :func:`take_rows` and
rebuilt on the worker by :func:`from_wire`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch


class TensorLeaf(NamedTuple):
    """A tensor in transit: its values as a NumPy array (``torch.from_numpy``-compatible)."""

    array: np.ndarray


@dataclasses.dataclass(frozen=True)
class RecordLeaf:
    """A dataclass record in transit: its class and its (``init``) fields in wire form. Each
    field is batched over worlds or ``None``."""

    cls: type
    fields: dict[str, Any]


def is_record(x: Any) -> bool:
    """Whether ``x`` is a dataclass instance (a typed record of per-world fields)."""
    return dataclasses.is_dataclass(x) and not isinstance(x, type | RecordLeaf)


class Missing:
    """Stands for a part no worker sent (a lost worker, or a key another worker lacks)."""


MISSING = Missing()


def to_wire(x: Any) -> Any:
    """Tensors -> :class:`TensorLeaf` (on the CPU), recursively through dicts, lists, tuples
    and dataclass records (-> :class:`RecordLeaf`)."""
    if torch.is_tensor(x):
        return TensorLeaf(x.detach().cpu().numpy())
    if is_record(x):
        names = [f.name for f in dataclasses.fields(x) if f.init]
        return RecordLeaf(type(x), {k: to_wire(getattr(x, k)) for k in names})
    if isinstance(x, dict):
        return {k: to_wire(v) for k, v in x.items()}
    if isinstance(x, list | tuple) and not isinstance(x, TensorLeaf):
        return type(x)(to_wire(v) for v in x)
    return x


def from_wire(x: Any, device: torch.device) -> Any:
    """Inverse of :func:`to_wire`: marked leaves become tensors on ``device``, records their
    class again."""
    if isinstance(x, TensorLeaf):
        arr = x.array if x.array.flags.writeable else x.array.copy()
        return torch.from_numpy(arr).to(device)
    if isinstance(x, RecordLeaf):
        return x.cls(**from_wire(x.fields, device))
    if isinstance(x, dict):
        return {k: from_wire(v, device) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(from_wire(v, device) for v in x)
    return x


def _blank(like: np.ndarray, n: int) -> np.ndarray:
    """``n`` rows shaped like ``like``'s rows: zeros, or ``""`` for text."""
    shape = (n, *like.shape[1:])
    if like.dtype == object:
        return np.full(shape, "", dtype=object)
    return np.zeros(shape, dtype=like.dtype)


Alloc = Callable[[str, tuple[int, ...], np.dtype], "np.ndarray | None"]
"""Where a batched leaf's new array goes: ``alloc(key, shape, dtype)`` returns an array to
write it into (every element is written), or ``None`` for a new one. ``key`` names the leaf by
its path in the tree (``Recycler.big`` of ``envgym.core.allocator`` is one)."""


def concat(
    parts: Sequence[Any], sizes: Sequence[int], alloc: Alloc | None = None, key: str = ""
) -> Any:
    """Concatenate the workers' parts along the world axis.

    ``parts[w]`` covers ``sizes[w]`` worlds; a :data:`MISSING` part (or key) is filled with
    zeros / ``""`` / ``None`` of the right shape, taken from a part that has it. A leaf that is
    not batched (a scalar, a string) is taken from the first part that has it. ``alloc`` gives
    the numeric leaves' arrays (:data:`Alloc`; ``key`` is the tree's path so far).
    """
    present = [p for p in parts if not isinstance(p, Missing)]
    if not present:
        return MISSING
    first = present[0]
    if isinstance(first, dict):
        names: dict[Any, None] = {}
        for p in present:
            if isinstance(p, dict):
                names.update(dict.fromkeys(p))
        return {
            k: concat(
                [p.get(k, MISSING) if isinstance(p, dict) else MISSING for p in parts],
                sizes,
                alloc,
                f"{key}/{k}",
            )
            for k in names
        }
    if isinstance(first, tuple) and not isinstance(first, TensorLeaf):
        return tuple(
            concat(
                [MISSING if isinstance(p, Missing) else p[i] for p in parts],
                sizes,
                alloc,
                f"{key}/{i}",
            )
            for i in range(len(first))
        )
    if isinstance(first, TensorLeaf | np.ndarray):
        like = first.array if isinstance(first, TensorLeaf) else first
        arrays = [
            _blank(like, n)
            if isinstance(p, Missing)
            else (p.array if isinstance(p, TensorLeaf) else np.asarray(p))
            for p, n in zip(parts, sizes, strict=True)
        ]
        out = _out(alloc, key, (sum(sizes), *like.shape[1:]), like.dtype)
        out = np.concatenate(arrays, axis=0, out=out)
        return TensorLeaf(out) if isinstance(first, TensorLeaf) else out
    if isinstance(first, list):
        merged: list[Any] = []
        for p, n in zip(parts, sizes, strict=True):
            merged.extend([None] * n if isinstance(p, Missing) else p)
        return merged
    return first


def copy_batch(x: Any, alloc: Alloc | None = None, key: str = "") -> Any:
    """A copy of a batch in wire form that shares no memory with it (``alloc``: as in
    :func:`concat`)."""
    if isinstance(x, TensorLeaf | np.ndarray):
        arr = x.array if isinstance(x, TensorLeaf) else x
        out = _out(alloc, key, arr.shape, arr.dtype)
        if out is None:
            out = arr.copy()
        else:
            np.copyto(out, arr)
        return TensorLeaf(out) if isinstance(x, TensorLeaf) else out
    if isinstance(x, dict):
        return {k: copy_batch(v, alloc, f"{key}/{k}") for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(copy_batch(v, alloc, f"{key}/{i}") for i, v in enumerate(x))
    if isinstance(x, list):
        return list(x)
    return x


def _out(alloc: Alloc | None, key: str, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    if alloc is None or dtype.hasobject:
        return None
    return alloc(key, shape, dtype)


def take_rows(x: Any, rows: np.ndarray) -> Any:
    """The rows ``rows`` of every batched leaf (tensors, arrays, lists; a record's fields)."""
    if torch.is_tensor(x):
        return x[torch.as_tensor(rows, dtype=torch.int64, device=x.device)]
    if isinstance(x, TensorLeaf):
        return TensorLeaf(x.array[rows])
    if isinstance(x, RecordLeaf):
        return RecordLeaf(x.cls, take_rows(x.fields, rows))
    if isinstance(x, np.ndarray):
        return x[rows]
    if isinstance(x, dict):
        return {k: take_rows(v, rows) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(take_rows(v, rows) for v in x)
    if isinstance(x, list):
        return [x[int(i)] for i in rows]
    return x


def put_rows(dst: Any, rows: np.ndarray, src: Any) -> Any:
    """Write ``src``'s rows into the rows ``rows`` of ``dst`` (wire form, in place where
    possible); returns the updated ``dst``."""
    if isinstance(dst, TensorLeaf | np.ndarray):
        arr = dst.array if isinstance(dst, TensorLeaf) else dst
        if not arr.flags.writeable:
            arr = arr.copy()
        arr[rows] = src.array if isinstance(src, TensorLeaf) else src
        return TensorLeaf(arr) if isinstance(dst, TensorLeaf) else arr
    if isinstance(dst, dict):
        return {k: put_rows(v, rows, src[k]) for k, v in dst.items()}
    if isinstance(dst, list):
        out = list(dst)
        for j, i in enumerate(rows):
            out[int(i)] = src[j]
        return out
    return dst
