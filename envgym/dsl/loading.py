"""Load YAML scenario files into pydantic models with errors that name file and field."""

from __future__ import annotations

import json
import math
import reprlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from envgym.dsl.errors import Problem, ScenarioError, loc_to_path

M = TypeVar("M", bound=BaseModel)


MAX_FILE_BYTES = 8 * 1024 * 1024
"""Largest scenario file read (a 10,000-node IVR is about 1 MB)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists in a scenario document."""


# libyaml's parser when PyYAML was built with it (10x faster; the same safe constructors).
_SafeBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader, refusing duplicate mapping keys (PyYAML keeps the last)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (each key may appear once)", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


class _PyStrictLoader(yaml.SafeLoader):
    """The same strict loader on PyYAML's pure-Python parser. libyaml refuses some escapes
    the pure parser reads (``"\\ud800"``, a lone surrogate); the pure parser's result then
    goes through :func:`plain_data_problems`, which names the field instead of a line."""


_PyStrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _depth_problem(text: str) -> str:
    """Why the text nests too deeply for the YAML parser (a linear pre-scan), or ''."""
    # Flow collections ([ {) nest without indentation; block nesting needs indentation, and
    # MAX_DEPTH levels need at least MAX_DEPTH leading spaces on some line.
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    if deepest > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    return ""


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; every failure becomes a ``ScenarioError`` naming the file and where.

    Refused: files over :data:`MAX_FILE_BYTES`, text that isn't UTF-8, duplicate keys, and
    nesting deeper than :data:`MAX_DEPTH` (see also :func:`plain_data_problems`).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(
                str(p), [Problem("", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")]
            )
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(str(p), [Problem("", "file not found")]) from None
    except OSError as e:
        raise ScenarioError(str(p), [Problem("", f"cannot read file: {e}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(
            str(p), [Problem(f"byte {e.start}", "not UTF-8 text (scenario files are UTF-8)")]
        ) from None
    deep = _depth_problem(text)
    if deep:
        raise ScenarioError(str(p), [Problem("", deep)])
    try:
        try:
            data = yaml.load(text, Loader=_StrictLoader)
        except yaml.YAMLError:
            if _SafeBase is yaml.SafeLoader:  # no libyaml: the pure parser already refused
                raise
            data = yaml.load(text, Loader=_PyStrictLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError(str(p), [Problem(where, f"YAML syntax error: {problem}")]) from None
    except RecursionError:
        raise ScenarioError(str(p), [Problem("", "nested too deeply")]) from None
    return data


def plain_data_problems(data: Any) -> list[Problem]:
    """Values no scenario field accepts, found by one iterative walk: non-finite numbers
    (``.nan``, ``.inf``), text that isn't valid Unicode (lone surrogates, e.g. ``"\\ud800"``),
    non-text mapping keys and nesting deeper than :data:`MAX_DEPTH`."""
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    seen: set[int] = set()  # YAML aliases share objects: walk each container once
    while stack and len(problems) < 20:
        x, loc = stack.pop()
        if isinstance(x, dict | list):
            if id(x) in seen:
                continue
            seen.add(id(x))
        path = loc_to_path(loc)
        if len(loc) > MAX_DEPTH:
            problems.append(Problem(path, f"nested more than {MAX_DEPTH} levels deep"))
            continue
        if isinstance(x, float) and not math.isfinite(x):
            problems.append(Problem(path, f"{x} is not allowed here (numbers must be finite)"))
        elif isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(Problem(path, "text is not valid Unicode (a lone surrogate)"))
        elif isinstance(x, dict):
            for k, v in x.items():
                if isinstance(k, str):
                    try:
                        k.encode("utf-8")
                    except UnicodeEncodeError:
                        problems.append(Problem(path, "a key is not valid Unicode"))
                        continue
                    stack.append((v, (*loc, k)))
                else:
                    stack.append((v, (*loc, str(k))))
        elif isinstance(x, list):
            stack.extend((v, (*loc, i)) for i, v in enumerate(x))
    return problems


def validate_data(model: type[M], data: Any, source: str) -> M:
    """Validate a parsed document against ``model``; every error names its field path."""
    if not isinstance(data, dict):
        raise ScenarioError(
            source, [Problem("", f"expected a mapping at the top level, got {type(data).__name__}")]
        )
    plain = plain_data_problems(data)
    if plain:
        raise ScenarioError(source, plain)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {reprlib.repr(got)})"
            hint = ""
            if err.get("type") == "string_type" and isinstance(got, bool | int | float):
                # YAML reads on/off/yes/no as booleans and 0042 as a number.
                hint = '; quote the value in YAML, e.g. "on" or "0042"'
            problems.append(Problem(loc_to_path(err["loc"]), f"{err['msg']}{shown}{hint}"))
        raise ScenarioError(source, problems) from None


def load_model(model: type[M], path: str | Path) -> M:
    """Read and validate one YAML file."""
    return validate_data(model, read_yaml(path), str(path))


def json_schema(model: type[BaseModel]) -> str:
    """The model's JSON Schema as pretty JSON (for editors and ``envgym schema``)."""
    return json.dumps(model.model_json_schema(), indent=2)
