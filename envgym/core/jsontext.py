"""Bounded-cost reading of JSON text that comes from an agent (ARCHITECTURE §6).

``json.loads`` recurses once per nesting level, so deeply nested input raises
``RecursionError``. The action parsers of every family check the depth first with
:func:`json_depth`, one linear scan.
"""

from __future__ import annotations


def json_depth(text: str, limit: int | None = None) -> int:
    """The deepest ``[``/``{`` nesting of JSON ``text`` (brackets inside string literals
    skipped), in one linear scan; with ``limit``, it stops as soon as the depth passes it."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if limit is not None and deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest
