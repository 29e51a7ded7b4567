"""The phone family's text face for actions: JSON tool calls and free text, parsed without eval.

Both forms resolve to a catalogue action id plus, for ``provide``, the stated value. Text that
matches nothing becomes the engine's *garbled* action: the rep says "sorry, I didn't catch
that" and the ``invalid_action`` penalty applies.

This is the one rule for malformed text actions on every text face (turn-based, real-time,
chat): :meth:`ActionParser.parse` never raises and its cost is bounded. Text longer than
:data:`MAX_ACTION_CHARS`, JSON nested deeper than :data:`MAX_JSON_DEPTH`, a tool call of the
wrong shape or an unknown value all come back as a :class:`ParsedAction` with ``error`` set
(``action_error`` ``"not_understood: ..."``). Free text is matched with string operations and
anchored regexes without nested quantifiers (linear time).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from envgym.core.jsontext import json_depth
from envgym.phone.compiler import IVR_KEYS, CompiledPhone
from envgym.phone.text import normalize_value

MAX_ACTION_CHARS = 4_000
"""Longest text action parsed; longer text is not understood (the parser's cost is linear in it)."""
MAX_JSON_DEPTH = 16
"""Deepest JSON nesting parsed (a tool call needs 4); deeper JSON is not understood."""


def _loads(text: str) -> tuple[Any, str]:
    """JSON text as (value, error): depth-limited, never raises."""
    if json_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        return json.loads(text), ""
    except (json.JSONDecodeError, RecursionError, ValueError) as e:
        return None, f"invalid JSON: {getattr(e, 'msg', str(e))[:80]}"


def _arg(args: dict[str, Any], key: str) -> str:
    """A tool-call argument as text: strings and numbers only (anything else reads as empty)."""
    v = args.get(key, "")
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        return ""
    return str(v)[:MAX_ACTION_CHARS]


@dataclass(frozen=True)
class ParsedAction:
    """A text action resolved against the catalogue."""

    action: int
    """Catalogue id, or the engine's garbled id when nothing could be parsed."""
    value: str | None = None
    """For ``provide``: the value the assistant stated."""
    error: str = ""
    """Why parsing failed (empty when it didn't)."""


def tool_schemas(compiled: CompiledPhone) -> list[dict[str, Any]]:
    """The assistant's actions as OpenAI-style function tool schemas."""

    def fn(name: str, desc: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
        props = props or {}
        return {
            "type": "function",
            "function": {
                "name": name,
                "description": desc,
                "parameters": {
                    "type": "object",
                    "properties": props,
                    "required": list(props),
                    "additionalProperties": False,
                },
            },
        }

    services = {"type": "string", "enum": compiled.services, "description": "service id"}
    facts = {"type": "string", "enum": compiled.facts, "description": "fact id"}
    return [
        fn(
            "dial",
            "Dial a number (its digits, or its directory index).",
            {"number": {"type": "string", "description": "e.g. 800-555-0100 or 0"}},
        ),
        fn(
            "press",
            "Press a key on the phone keypad (IVR menus).",
            {"key": {"type": "string", "enum": list(IVR_KEYS)}},
        ),
        fn("wait", "Stay silent and listen (wait on hold, let a menu time out)."),
        fn("hang_up", "End the current call."),
        fn("say_yes", "Answer yes to the rep's question."),
        fn("say_no", "Answer no to the rep's question."),
        fn("request", "Ask the rep for a service.", {"service": services}),
        fn("ask_about", "Ask the rep what a service requires.", {"service": services}),
        fn(
            "provide",
            "Tell the rep a fact about the user.",
            {"fact": facts, "value": {"type": "string", "description": "the value stated"}},
        ),
        fn("ask_user", "Ask the user for a fact only they know.", {"fact": facts}),
        fn(
            "report",
            "Report the outcome to the user; ends the task.",
            {"summary": {"type": "string", "description": "what you tell the user"}},
        ),
    ]


class ActionParser:
    """Resolves text actions for one compiled scenario set."""

    def __init__(self, compiled: CompiledPhone, garbled: int) -> None:
        self.c = compiled
        self.garbled = garbled
        self.ids = {a.name: i for i, a in enumerate(compiled.catalogue)}
        self.service_names: dict[str, str] = {}
        self.fact_names: dict[str, str] = {}
        for sc in compiled.scenarios:
            for s in sc.policies.services:
                self.service_names.setdefault(normalize_value(s.id), s.id)
                self.service_names.setdefault(normalize_value(s.label), s.id)
            for f in sc.user.facts:
                self.fact_names.setdefault(normalize_value(f.id), f.id)
                self.fact_names.setdefault(normalize_value(f.label), f.id)

    # ------------------------------------------------------------------ helpers
    def _bad(self, why: str) -> ParsedAction:
        return ParsedAction(self.garbled, None, why)

    def _lookup(self, table: dict[str, str], text: str) -> str | None:
        key = normalize_value(text)
        if not key:
            return None
        if key in table:
            return table[key]
        # A label contained in the text, longest first ("the card's last four digits").
        for name in sorted(table, key=len, reverse=True):
            if len(name) >= 3 and name in key:
                return table[name]
        # Or the text abbreviates exactly one label ("the card's last four digits").
        hits = {table[name] for name in table if len(key) >= 6 and key in name}
        return hits.pop() if len(hits) == 1 else None

    def _dial(self, number: str, scenario_index: int) -> ParsedAction:
        sc = self.c.scenarios[scenario_index]
        n = number.strip()
        if n.isascii() and n.isdigit() and len(n) <= 2:
            idx = int(n)
        else:
            digits = normalize_value(n)
            idx = next(
                (
                    i
                    for i, num in enumerate(sc.company.numbers)
                    if normalize_value(num.digits) == digits
                ),
                -1,
            )
            if idx < 0:
                return self._bad(f"unknown number {number!r}")
        if f"dial:{idx}" not in self.ids:
            return self._bad(f"no directory entry {idx}")
        return ParsedAction(self.ids[f"dial:{idx}"])

    def _call(self, name: str, args: dict[str, Any], scenario_index: int) -> ParsedAction:
        name = name.strip().lower()
        simple = {
            "wait": "wait",
            "hang_up": "hang_up",
            "hangup": "hang_up",
            "say_yes": "say_yes",
            "yes": "say_yes",
            "say_no": "say_no",
            "no": "say_no",
            "report": "report",
        }
        if name in simple:
            return ParsedAction(self.ids[simple[name]])
        if name == "dial":
            return self._dial(_arg(args, "number"), scenario_index)
        if name == "press":
            key = _arg(args, "key").strip()
            if key not in IVR_KEYS or len(key) != 1:
                return self._bad(f"not a keypad key: {key!r}")
            return ParsedAction(self.ids[f"press:{key}"])
        if name in ("request", "ask_about"):
            service = _arg(args, "service")
            sid = self._lookup(self.service_names, service)
            if sid is None:
                return self._bad(f"unknown service {service[:60]!r}")
            return ParsedAction(self.ids[f"{name}:{sid}"])
        if name in ("provide", "ask_user"):
            fact = _arg(args, "fact")
            fid = self._lookup(self.fact_names, fact)
            if fid is None:
                return self._bad(f"unknown fact {fact[:60]!r}")
            if name == "provide":
                value = _arg(args, "value")
                if value.strip() == "":
                    return self._bad("provide needs a value (a string)")
                return ParsedAction(self.ids[f"provide:{fid}"], value)
            return ParsedAction(self.ids[f"ask_user:{fid}"])
        return self._bad(f"unknown tool {name[:60]!r}")

    # ------------------------------------------------------------------ entry point
    def parse(self, text: Any, scenario_index: int) -> ParsedAction:
        """Parse one action: an int catalogue id, a JSON tool call (text or dict) or free text.

        Never raises: anything malformed is the garbled action with ``error`` set.
        """
        if isinstance(text, int | np.integer) and not isinstance(text, bool | np.bool_):
            if 0 <= int(text) < len(self.c.catalogue):
                return ParsedAction(int(text))
            return self._bad(f"action id {int(text)} outside the catalogue")
        if isinstance(text, dict):
            return self._parse_json(text, scenario_index)
        if not isinstance(text, str):
            return self._bad(f"expected text, got {type(text).__name__}")
        if len(text) > MAX_ACTION_CHARS:
            return self._bad(f"action longer than {MAX_ACTION_CHARS} characters")
        s = text.strip()
        if s.startswith("{"):
            obj, err = _loads(s)
            if err:
                return self._bad(err)
            if not isinstance(obj, dict):
                return self._bad("a tool call must be a JSON object")
            return self._parse_json(obj, scenario_index)
        return self._parse_free(s, scenario_index)

    def _parse_json(self, obj: dict[str, Any], scenario_index: int) -> ParsedAction:
        calls = obj.get("tool_calls")
        if isinstance(calls, list) and calls:
            obj = calls[0]
        if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
            obj = obj["function"]
        if not isinstance(obj, dict):
            return self._bad("a tool call must be an object with 'name' and 'arguments'")
        name = obj.get("name")
        args = obj.get("arguments", {})
        if isinstance(args, str):
            if len(args) > MAX_ACTION_CHARS:
                return self._bad(f"arguments longer than {MAX_ACTION_CHARS} characters")
            args, err = _loads(args) if args.strip() else ({}, "")
            if err:
                return self._bad(f"arguments: {err}")
        if not isinstance(name, str) or not isinstance(args, dict):
            return self._bad("a tool call needs a string 'name' and object 'arguments'")
        return self._call(name[:MAX_ACTION_CHARS], args, scenario_index)

    def _parse_free(self, s: str, scenario_index: int) -> ParsedAction:
        # Whitespace runs collapse to one space first, so no pattern below can backtrack over
        # a run of spaces; every pattern is anchored, with at most one open-ended group.
        s = " ".join(s.split())
        low = s.lower().rstrip(".!")
        if low in ("wait", "hold", "listen", "stay silent", "..."):
            return self._call("wait", {}, scenario_index)
        if low in ("hang up", "hangup", "hang_up", "end call", "goodbye", "bye"):
            return self._call("hang_up", {}, scenario_index)
        if re.fullmatch(r"(yes|yeah|yep|sure|ok|okay)( please| thanks)?", low):
            return self._call("say_yes", {}, scenario_index)
        if low in ("no", "nope", "no thanks", "no thank you"):
            return self._call("say_no", {}, scenario_index)
        if low.startswith("report"):
            return self._call("report", {}, scenario_index)
        m = re.fullmatch(r"(?:dial|call) (.+)", low)
        if m:
            return self._dial(m.group(1), scenario_index)
        m = re.fullmatch(r"press (\S)", low)
        if m:
            return self._call("press", {"key": m.group(1)}, scenario_index)
        m = re.fullmatch(r"ask (?:the )?user (?:for |about )?(?:the |my |their )?(.+)", low)
        if m:
            return self._call("ask_user", {"fact": m.group(1)}, scenario_index)
        m = re.fullmatch(r"ask about (.+)", low)
        if m:
            return self._call("ask_about", {"service": m.group(1)}, scenario_index)
        m = re.fullmatch(r"(?:request|i'd like|i would like|i want) (.+)", low)
        if m:
            return self._call("request", {"service": m.group(1)}, scenario_index)
        m = re.fullmatch(r"provide (\S+) (.+)", s, flags=re.IGNORECASE)
        if m:
            return self._call("provide", {"fact": m.group(1), "value": m.group(2)}, scenario_index)
        # "my <fact> is <value>": split at the first " is " (str.partition, linear).
        first, _, rest = s.rstrip(".").partition(" ")
        cut = rest.lower().find(" is ")
        fact, value = (rest[:cut], rest[cut + 4 :]) if cut >= 0 else ("", "")
        if first.lower() in ("my", "the", "our") and fact and value:
            return self._call("provide", {"fact": fact, "value": value}, scenario_index)
        return self._bad(f"could not parse {s[:60]!r}")
