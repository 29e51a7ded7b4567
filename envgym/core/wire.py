"""JSON wire encoding of envgym values and spaces, shared by the env server and its client.

Observations, actions and infos hold NumPy arrays, torch tensors, NumPy scalars, tuples and
nested dicts; JSON holds none of them. :func:`to_wire` turns a value into JSON-ready data and
:func:`from_wire` turns it back:

- a NumPy array or torch tensor becomes ``{"__ndarray__": base64, "dtype": str, "shape": [...]}``
  (raw little-endian bytes; a tensor comes back as a NumPy array, on the host);
- NumPy scalars become Python numbers and bools, tuples become lists;
- dicts keep their keys (as strings), lists stay lists.

:func:`space_to_wire` / :func:`space_from_wire` do the same for Gymnasium spaces (``Box``,
``Discrete``, ``MultiDiscrete``, ``MultiBinary``, ``Text``, ``Dict``, ``Tuple``).
"""

from __future__ import annotations

import base64
from typing import Any

import gymnasium as gym
import numpy as np

ND = "__ndarray__"
"""The marker key of an encoded array."""


def _array_to_wire(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return {ND: base64.b64encode(a.tobytes()).decode("ascii"), "dtype": a.dtype.str,
            "shape": list(a.shape)}  # fmt: skip


def to_wire(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docstring for the encoding)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [to_wire(v) for v in value.tolist()]
        return _array_to_wire(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if type(value).__module__.startswith("torch"):
        import torch

        if isinstance(value, torch.Tensor):
            return _array_to_wire(value.detach().cpu().numpy())
    if hasattr(value, "model_dump"):  # pydantic models
        return to_wire(value.model_dump())
    raise TypeError(f"cannot encode a {type(value).__name__} for the wire")


def from_wire(data: Any) -> Any:
    """The value :func:`to_wire` encoded (arrays come back as NumPy arrays)."""
    if isinstance(data, dict):
        if ND in data:
            raw = base64.b64decode(data[ND])
            return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()
        return {k: from_wire(v) for k, v in data.items()}
    if isinstance(data, list):
        return [from_wire(v) for v in data]
    return data


def space_to_wire(space: gym.Space | None) -> dict[str, Any] | None:
    """A Gymnasium space as JSON-ready data; ``None`` stays ``None``."""
    from gymnasium import spaces

    if space is None:
        return None
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": to_wire(space.low), "high": to_wire(space.high),
                "dtype": np.dtype(space.dtype).str}  # fmt: skip
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": to_wire(space.nvec),
                "dtype": np.dtype(space.dtype).str}  # fmt: skip
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": [int(k) for k in n] if np.ndim(n) else int(n)}
    if isinstance(space, spaces.Text):
        charset = "".join(space.character_set)
        return {"type": "Text", "min_length": int(space.min_length),
                "max_length": int(space.max_length), "charset": charset}  # fmt: skip
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_wire(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_wire(s) for s in space.spaces]}
    raise TypeError(f"cannot encode a {type(space).__name__} space for the wire")


def space_from_wire(data: dict[str, Any] | None) -> gym.Space | None:
    """The space :func:`space_to_wire` encoded."""
    from gymnasium import spaces

    if data is None:
        return None
    kind = data["type"]
    if kind == "Box":
        low, high = from_wire(data["low"]), from_wire(data["high"])
        return spaces.Box(low=low, high=high, shape=low.shape, dtype=np.dtype(data["dtype"]))
    if kind == "Discrete":
        return spaces.Discrete(data["n"], start=data["start"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(from_wire(data["nvec"]), dtype=np.dtype(data["dtype"]))
    if kind == "MultiBinary":
        return spaces.MultiBinary(data["n"])
    if kind == "Text":
        return spaces.Text(data["max_length"], min_length=data["min_length"],
                           charset=data["charset"])  # fmt: skip
    if kind == "Dict":
        return spaces.Dict({k: space_from_wire(s) for k, s in data["spaces"].items()})
    if kind == "Tuple":
        return spaces.Tuple([space_from_wire(s) for s in data["spaces"]])
    raise ValueError(f"unknown space type {kind!r}")
