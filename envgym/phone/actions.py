"""The phone family's text face for actions: JSON tool calls and free text, parsed without eval.

Both forms resolve to a catalogue action id plus, for ``provide``, the stated value. Text that
matches nothing becomes the engine's *garbled* action: the rep says "sorry, I didn't catch
that" and the ``invalid_action`` penalty applies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from envgym.phone.compiler import IVR_KEYS, CompiledPhone
from envgym.phone.text import normalize_value


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
        if n.isdigit() and len(n) <= 2:
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
            return self._dial(str(args.get("number", "")), scenario_index)
        if name == "press":
            key = str(args.get("key", "")).strip()
            if key not in IVR_KEYS or len(key) != 1:
                return self._bad(f"not a keypad key: {key!r}")
            return ParsedAction(self.ids[f"press:{key}"])
        if name in ("request", "ask_about"):
            sid = self._lookup(self.service_names, str(args.get("service", "")))
            if sid is None:
                return self._bad(f"unknown service {args.get('service')!r}")
            return ParsedAction(self.ids[f"{name}:{sid}"])
        if name in ("provide", "ask_user"):
            fid = self._lookup(self.fact_names, str(args.get("fact", "")))
            if fid is None:
                return self._bad(f"unknown fact {args.get('fact')!r}")
            value = args.get("value")
            if name == "provide":
                if value is None or str(value).strip() == "":
                    return self._bad("provide needs a value")
                return ParsedAction(self.ids[f"provide:{fid}"], str(value))
            return ParsedAction(self.ids[f"ask_user:{fid}"])
        return self._bad(f"unknown tool {name!r}")

    # ------------------------------------------------------------------ entry point
    def parse(self, text: Any, scenario_index: int) -> ParsedAction:
        """Parse one action: an int catalogue id, a JSON tool call or free text."""
        if isinstance(text, int) and not isinstance(text, bool):
            if 0 <= text < len(self.c.catalogue):
                return ParsedAction(int(text))
            return self._bad(f"action id {text} outside the catalogue")
        if isinstance(text, dict):
            return self._parse_json(text, scenario_index)
        if not isinstance(text, str):
            return self._bad(f"expected text, got {type(text).__name__}")
        s = text.strip()
        if s.startswith("{"):
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as e:
                return self._bad(f"invalid JSON: {e.msg}")
            if not isinstance(obj, dict):
                return self._bad("a tool call must be a JSON object")
            return self._parse_json(obj, scenario_index)
        return self._parse_free(s, scenario_index)

    def _parse_json(self, obj: dict[str, Any], scenario_index: int) -> ParsedAction:
        if "tool_calls" in obj and isinstance(obj["tool_calls"], list) and obj["tool_calls"]:
            obj = obj["tool_calls"][0]
        if "function" in obj and isinstance(obj["function"], dict):
            obj = obj["function"]
        name = obj.get("name")
        args = obj.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as e:
                return self._bad(f"invalid JSON arguments: {e.msg}")
        if not isinstance(name, str) or not isinstance(args, dict):
            return self._bad("a tool call needs a string 'name' and object 'arguments'")
        return self._call(name, args, scenario_index)

    def _parse_free(self, s: str, scenario_index: int) -> ParsedAction:
        low = s.lower().strip().rstrip(".!")
        if low in ("wait", "hold", "listen", "stay silent", "..."):
            return self._call("wait", {}, scenario_index)
        if low in ("hang up", "hangup", "hang_up", "end call", "goodbye", "bye"):
            return self._call("hang_up", {}, scenario_index)
        if re.fullmatch(r"(yes|yeah|yep|sure|ok|okay)( please| thanks)?", low):
            return self._call("say_yes", {}, scenario_index)
        if re.fullmatch(r"(no|nope|no thanks|no thank you)", low):
            return self._call("say_no", {}, scenario_index)
        if low.startswith("report"):
            return self._call("report", {}, scenario_index)
        m = re.fullmatch(r"(?:dial|call)\s+(.+)", low)
        if m:
            return self._dial(m.group(1), scenario_index)
        m = re.fullmatch(r"press\s+(\S)", low)
        if m:
            return self._call("press", {"key": m.group(1)}, scenario_index)
        m = re.fullmatch(r"ask (?:the )?user (?:for |about )?(?:the |my |their )?(.+)", low)
        if m:
            return self._call("ask_user", {"fact": m.group(1)}, scenario_index)
        m = re.fullmatch(r"ask about\s+(.+)", low)
        if m:
            return self._call("ask_about", {"service": m.group(1)}, scenario_index)
        m = re.fullmatch(r"(?:request|i'd like|i would like|i want)\s+(.+)", low)
        if m:
            return self._call("request", {"service": m.group(1)}, scenario_index)
        m = re.fullmatch(r"provide\s+(\S+)\s+(.+)", s.strip(), flags=re.IGNORECASE)
        if m:
            return self._call("provide", {"fact": m.group(1), "value": m.group(2)}, scenario_index)
        m = re.fullmatch(
            r"(?:my|the|our)\s+(.+?)\s+is\s+(.+)", s.strip().rstrip("."), flags=re.IGNORECASE
        )
        if m:
            return self._call("provide", {"fact": m.group(1), "value": m.group(2)}, scenario_index)
        return self._bad(f"could not parse {s[:60]!r}")

    def stated_correct(self, parsed: ParsedAction, scenario_index: int) -> bool:
        """Whether a ``provide``'s stated value is the fact's true value in that scenario."""
        if parsed.value is None:
            return False
        name = self.c.catalogue[parsed.action].name
        fid = name.split(":", 1)[1]
        sc = self.c.scenarios[scenario_index]
        truth = next((f.value for f in sc.user.facts if f.id == fid), None)
        return truth is not None and normalize_value(parsed.value) == normalize_value(truth)
