"""Errors a scenario author sees: they name the file, the field path and what was expected."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario."""

    path: str
    """Dotted field path inside the document, e.g. ``company.ivr.main.options.1``."""
    message: str
    """What was expected / what is wrong."""


class ScenarioError(ValueError):
    """A scenario file (or object) is malformed or inconsistent.

    ``str(err)`` lists every problem as ``FILE: PATH: MESSAGE``.
    """

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {p.path or '<root>'}: {p.message}" for p in self.problems]
        super().__init__(
            f"invalid scenario ({len(self.problems)} problem"
            f"{'s' if len(self.problems) != 1 else ''}):\n  " + "\n  ".join(lines)
        )


def loc_to_path(loc: Sequence[str | int]) -> str:
    """Pydantic's ``loc`` tuple as a dotted path (list indices in brackets)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
