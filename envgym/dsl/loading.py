"""Load YAML scenario files into pydantic models with errors that name file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from envgym.dsl.errors import Problem, ScenarioError, loc_to_path

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; syntax errors become a ``ScenarioError`` with line and column."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(p), [Problem("", "file not found")]) from None
    except OSError as e:
        raise ScenarioError(str(p), [Problem("", f"cannot read file: {e}")]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError(str(p), [Problem(where, f"YAML syntax error: {problem}")]) from None


def validate_data(model: type[M], data: Any, source: str) -> M:
    """Validate a parsed document against ``model``; every error names its field path."""
    if not isinstance(data, dict):
        raise ScenarioError(
            source, [Problem("", f"expected a mapping at the top level, got {type(data).__name__}")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
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
