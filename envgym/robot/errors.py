"""The robot family's one error type for bad input (see ``docs/robot.md``, "Bad input")."""

from __future__ import annotations


class InvalidActionError(ValueError, TypeError):
    """An action batch the env refuses: not real numbers (bool, complex, text, objects), the
    wrong shape, or NaN/inf. Raised before any world steps, on the single and the vector face
    alike. A ``ValueError`` (the project-wide rule for refused input) and, for code written
    against the earlier dtype check, a ``TypeError``."""
