"""Browser actions: one grammar, three spellings, parsed without ``eval``/``exec``.

An action is a :class:`BrowserAction`. Agents may give it as

- a **command string**: ``click e12``, ``fill e5 Jane Doe``, ``select e7 March``, ``check e3``,
  ``uncheck e3``, ``press e5 Enter``, ``scroll 0 400``, ``go_back``, ``mouse_click 120 340``,
  ``drag 60 120 500 140``, ``noop``;
- a **structured dict**: ``{"op": "fill", "ref": "e5", "text": "Jane Doe"}``;
- a **JSON tool call** (OpenAI style, see :func:`tool_schemas`):
  ``{"name": "fill", "arguments": {"ref": "e5", "text": "Jane Doe"}}``, also wrapped as
  ``{"type": "function", "function": {...}}`` or with ``arguments`` as a JSON string.

Element refs (``e12``) are the ``[ref=e12]`` marks of the current accessibility tree.
Anything that does not parse gives a :class:`ParseError` whose message becomes the step's
``action_error`` (and the ``invalid_action`` penalty); nothing is ever executed from text.

Parsing is bounded: a command string or JSON text of at most :data:`MAX_ACTION_CHARS`
characters, JSON nested at most :data:`MAX_JSON_DEPTH` deep (checked by a linear scan before
``json.loads``), at most :data:`MAX_DICT_KEYS` keys in a dict action, coordinates finite and
within ``±MAX_COORD``, no regular expression that can backtrack; and every error message
quotes the offending value cut short (:func:`brief`), so no input costs more than linear time
or raises anything but :class:`ParseError`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from envgym.core.jsontext import json_depth

OPS: dict[str, tuple[str, ...]] = {
    "noop": (),
    "click": ("ref",),
    "fill": ("ref", "text"),
    "select": ("ref", "option"),
    "check": ("ref",),
    "uncheck": ("ref",),
    "press": ("ref", "key"),
    "scroll": ("dx", "dy"),
    "go_back": (),
    "mouse_click": ("x", "y"),
    "drag": ("x", "y", "x2", "y2"),
}
"""Every operation and its arguments, in command-string order."""

KEYS = frozenset(
    [
        "Enter",
        "Tab",
        "Escape",
        "Backspace",
        "Delete",
        "ArrowUp",
        "ArrowDown",
        "ArrowLeft",
        "ArrowRight",
        "Home",
        "End",
        "PageUp",
        "PageDown",
        "Space",
    ]
)
"""Keys ``press`` accepts."""

_REF = re.compile(r"e[0-9]{1,6}")
_INT_ARGS = frozenset({"dx", "dy", "x", "y", "x2", "y2"})
MAX_ACTION_CHARS = 512
"""The longest command string, JSON text, tool-call argument string or text argument."""
MAX_JSON_DEPTH = 8
"""The deepest JSON nesting an action may have (a tool call needs 3)."""
MAX_DICT_KEYS = 16
"""The most keys a dict action (or its arguments object) may have."""
MAX_COORD = 100_000
"""Coordinates and scroll offsets must lie in ``[-MAX_COORD, MAX_COORD]`` CSS pixels."""
ACTION_CHARSET = frozenset(chr(c) for c in range(32, 127))


class ParseError(ValueError):
    """An action that could not be parsed; its message is the step's ``action_error``."""


def brief(value: Any, limit: int = 40) -> str:
    """A short, cheap rendering of ``value`` for error messages (never a huge repr)."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
        return text if len(value) <= limit else text[:-1] + "...'"
    if isinstance(value, bool | float) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if -(10**30) < value < 10**30 else "a huge int"
    return f"a {type(value).__name__}"


def _loads(text: str, what: str) -> Any:
    if len(text) > MAX_ACTION_CHARS:
        raise ParseError(f"{what} longer than {MAX_ACTION_CHARS} characters")
    if json_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ParseError(f"{what} nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError as e:  # JSONDecodeError, and the int-digits limit
        raise ParseError(f"{what} is not valid JSON: {brief(str(e), 120)}") from None


def _coordinate(op: str, name: str, val: Any) -> int:
    """A finite number within ``±MAX_COORD`` (a number, or a string holding one)."""
    if isinstance(val, bool) or not isinstance(val, int | float | str):
        raise ParseError(f"{op}: {name} must be a number, got {brief(val)}")
    if isinstance(val, int):
        num: float = val
    else:
        try:
            num = float(val) if len(str(val)) <= 32 else math.inf
        except ValueError:
            raise ParseError(f"{op}: {name} must be a number, got {brief(val)}") from None
        if not math.isfinite(num):
            raise ParseError(f"{op}: {name} must be a finite number, got {brief(val)}")
    if not -MAX_COORD <= num <= MAX_COORD:
        raise ParseError(f"{op}: {name}={brief(val)} is out of range (±{MAX_COORD})")
    return int(num)


@dataclass(frozen=True)
class BrowserAction:
    """One parsed action."""

    op: str
    ref: str | None = None
    text: str | None = None
    x: int = 0
    y: int = 0
    x2: int = 0
    y2: int = 0

    def to_command(self) -> str:
        """The command-string spelling (round-trips through :func:`parse_action`)."""
        args: list[str] = []
        for name in OPS[self.op]:
            if name in ("text", "option", "key"):
                args.append(self.text or "")
            elif name == "ref":
                args.append(self.ref or "")
            else:
                args.append(str(getattr(self, {"dx": "x", "dy": "y"}.get(name, name))))
        return " ".join([self.op, *args]).rstrip() if args else self.op


def _build(op: Any, args: dict[str, Any]) -> BrowserAction:
    if not isinstance(op, str) or op not in OPS:
        raise ParseError(f"unknown action {brief(op)}; known: {', '.join(OPS)}")
    want = OPS[op]
    if len(args) > MAX_DICT_KEYS:
        raise ParseError(f"{op}: more than {MAX_DICT_KEYS} arguments")
    extra = [k for k in args if k not in want]
    if extra:
        names = sorted(brief(k) for k in extra)[:8]
        raise ParseError(f"{op} takes {list(want) or 'no arguments'}, got unexpected {names}")
    missing = [a for a in want if a not in args]
    if missing:
        raise ParseError(f"{op} needs {missing}")
    kw: dict[str, Any] = {"op": op}
    for name in want:
        val = args[name]
        if name == "ref":
            if not isinstance(val, str) or not _REF.fullmatch(val.strip()[:8]):
                raise ParseError(f"{op}: ref must look like 'e12', got {brief(val)}")
            kw["ref"] = val.strip()
        elif name in _INT_ARGS:
            kw[{"dx": "x", "dy": "y"}.get(name, name)] = _coordinate(op, name, val)
        else:
            if not isinstance(val, str):
                raise ParseError(f"{op}: {name} must be a string, got {brief(val)}")
            if len(val) > MAX_ACTION_CHARS:
                raise ParseError(f"{op}: {name} longer than {MAX_ACTION_CHARS} characters")
            if any("\ud800" <= c <= "\udfff" for c in val):
                raise ParseError(f"{op}: {name} is not valid Unicode (a lone surrogate)")
            if name == "key" and val not in KEYS:
                raise ParseError(f"press: unknown key {brief(val)}; known: {sorted(KEYS)}")
            kw["text"] = val
    return BrowserAction(**kw)


def _from_dict(d: dict[Any, Any]) -> BrowserAction:
    if len(d) > MAX_DICT_KEYS:
        raise ParseError(f"a dict action has at most {MAX_DICT_KEYS} keys")
    if "function" in d and isinstance(d["function"], dict):
        d = d["function"]
        if len(d) > MAX_DICT_KEYS:
            raise ParseError(f"a dict action has at most {MAX_DICT_KEYS} keys")
    if "op" in d:
        args = {k: v for k, v in d.items() if k != "op"}
        return _build(d["op"], args)
    if "name" in d:
        args = d.get("arguments", {})
        if isinstance(args, str):
            args = _loads(args, "tool call arguments") if args.strip() else {}
        if not isinstance(args, dict):
            raise ParseError("tool call arguments must be an object")
        return _build(d["name"], args)
    raise ParseError("a dict action needs 'op' (structured) or 'name' (tool call)")


def parse_action(action: Any) -> BrowserAction:
    """Parse a command string, a structured dict or a JSON tool call (see module docstring).

    Raises:
        ParseError: with a message saying what was wrong.
    """
    if isinstance(action, BrowserAction):
        return action
    if isinstance(action, dict):
        return _from_dict(action)
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if not isinstance(action, str):
        raise ParseError(f"an action is a string or a dict, got {type(action).__name__}")
    text = action.strip()
    if len(text) > MAX_ACTION_CHARS:
        raise ParseError(f"action longer than {MAX_ACTION_CHARS} characters")
    if text.startswith("{"):
        obj = _loads(text, "the action")
        if not isinstance(obj, dict):
            raise ParseError("a JSON action must be an object")
        return _from_dict(obj)
    if not text:
        raise ParseError("empty action")
    op, _, rest = text.partition(" ")
    if op not in OPS:
        raise ParseError(f"unknown action {brief(op)}; known: {', '.join(OPS)}")
    want = OPS[op]
    if not want:
        if rest.strip():
            raise ParseError(f"{op} takes no arguments")
        return BrowserAction(op)
    # The last argument of fill/select/press takes the rest of the line (spaces allowed).
    parts = rest.split(maxsplit=len(want) - 1) if rest.strip() else []
    if len(parts) != len(want):
        raise ParseError(f"{op} needs {len(want)} argument(s): {' '.join(want)}")
    return _build(op, dict(zip(want, parts, strict=True)))


def tool_schemas() -> list[dict[str, Any]]:
    """The actions as OpenAI-style function tool schemas (for LLM agents)."""
    desc = {
        "noop": "Do nothing this step.",
        "click": "Click the element with this ref.",
        "fill": "Replace the text of a textbox with `text`.",
        "select": "Choose the option labelled `option` in a combobox/listbox.",
        "check": "Tick a checkbox or choose a radio button.",
        "uncheck": "Untick a checkbox.",
        "press": "Focus the element and press a key (Enter, Tab, Escape, arrows, ...).",
        "scroll": "Scroll the page by (dx, dy) pixels.",
        "go_back": "Go back to the previous page of this episode.",
        "mouse_click": "Click the mouse at page coordinates (x, y).",
        "drag": "Press the mouse at (x, y), move to (x2, y2) and release.",
    }
    props = {
        "ref": {"type": "string", "pattern": "^e[0-9]+$", "description": "element ref, e.g. e12"},
        "text": {"type": "string", "description": "text to type"},
        "option": {"type": "string", "description": "the option's label"},
        "key": {"type": "string", "enum": sorted(KEYS), "description": "key name"},
    }
    for name in _INT_ARGS:
        props[name] = {"type": "integer", "description": f"{name} in CSS pixels"}
    out = []
    for op, args in OPS.items():
        out.append(
            {
                "type": "function",
                "function": {
                    "name": op,
                    "description": desc[op],
                    "parameters": {
                        "type": "object",
                        "properties": {a: props[a] for a in args},
                        "required": list(args),
                        "additionalProperties": False,
                    },
                },
            }
        )
    return out


_WORDS = ("a", "Blue", "Submit", "2026-03-14", "hello world", "Jane", "x")


class BrowserActionSpace(spaces.Text):
    """The action space: command strings / JSON tool calls up to 512 printable ASCII characters.

    ``sample()`` draws a random *well-formed* command (random op, ref ``e1``..``e40``,
    coordinates in the viewport, a few words), so random policies exercise the browser rather
    than the parser.
    """

    def __init__(self, max_ref: int = 40, width: int = 800, height: int = 600) -> None:
        super().__init__(MAX_ACTION_CHARS, min_length=1, charset="".join(sorted(ACTION_CHARSET)))
        self.max_ref, self.width, self.height = max_ref, width, height

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        r = self.np_random
        op = list(OPS)[int(r.integers(len(OPS)))]
        ref = f"e{int(r.integers(1, self.max_ref + 1))}"
        x, y = int(r.integers(self.width)), int(r.integers(self.height))
        word = _WORDS[int(r.integers(len(_WORDS)))]
        args = {
            "ref": ref,
            "text": word,
            "option": word,
            "key": sorted(KEYS)[int(r.integers(len(KEYS)))],
            "dx": 0,
            "dy": int(r.integers(-300, 300)),
            "x": x,
            "y": y,
            "x2": int(r.integers(self.width)),
            "y2": int(r.integers(self.height)),
        }
        return " ".join([op, *(str(args[a]) for a in OPS[op])])

    def __repr__(self) -> str:
        return f"BrowserActionSpace(max_length={MAX_ACTION_CHARS})"
