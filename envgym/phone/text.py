"""Text machinery of the phone family: tokenizer, message book and default phrasing.

Every utterance the world can produce is known when a scenario set compiles (its slots are
filled from the scenario), so each one becomes a *message* with a few phrasing variants, each
variant pre-tokenized. The engine then only moves message ids around; text and token ids are
table look-ups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PAD, UNK, SEP = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<unk>", "<sep>")
_TOKEN_RE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lowercase word/number/punctuation tokens: ``'Card 4242.'`` -> ``['card', '4242', '.']``."""
    return _TOKEN_RE.findall(text.lower())


def normalize_value(text: str) -> str:
    """A fact value as compared by reps: case, spaces and punctuation don't matter."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _template_parts(template: str) -> tuple[list[tuple[bool, str]], str]:
    """A phrasing template as (is_placeholder, text) parts, or an error message.

    The template language is plain text with ``{name}`` placeholders (``name``: lowercase
    letters and underscores) and ``{{`` / ``}}`` for literal braces. Nothing else: no
    attribute access, indexing, conversion (``!r``) or format spec (``:>20``). One linear scan.
    """
    parts: list[tuple[bool, str]] = []
    buf: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch in "{}" and i + 1 < n and template[i + 1] == ch:
            buf.append(ch)
            i += 2
            continue
        if ch == "}":
            return [], f"unmatched '}}' at character {i}; write '}}}}' for a literal brace"
        if ch == "{":
            end = template.find("}", i + 1)
            name = template[i + 1 : end] if end > 0 else ""
            if end < 0:
                return [], f"unclosed '{{' at character {i}; write '{{{{' for a literal brace"
            if not name or not all((c.islower() and c.isascii()) or c == "_" for c in name):
                shown = name if len(name) <= 40 else name[:40] + "..."
                return [], (
                    f"{{{shown}}} is not a placeholder: only {{name}} is allowed (no attribute "
                    "access, indexing, conversion or format spec)"
                )
            if buf:
                parts.append((False, "".join(buf)))
                buf = []
            parts.append((True, name))
            i = end + 1
            continue
        buf.append(ch)
        i += 1
    if buf:
        parts.append((False, "".join(buf)))
    return parts, ""


def template_problems(template: str, allowed: set[str], where: str = "here") -> list[str]:
    """What is wrong with a phrasing template whose kind (``where``, e.g. ``"'greeting'
    messages"``) fills ``allowed`` placeholders."""
    parts, err = _template_parts(template)
    if err:
        return [err]
    return [
        f"placeholder {{{name}}} is not filled in {where}; allowed here: "
        f"{sorted(allowed) or 'none'}"
        for is_ph, name in parts
        if is_ph and name not in allowed
    ]


def fill_template(template: str, slots: dict[str, str]) -> str:
    """Substitute ``{name}`` placeholders from ``slots`` (the only operation templates have).

    Raises:
        ValueError: the template is malformed or names a slot not given (templates are checked
            by :func:`template_problems` when a scenario loads, so this means a bug).
    """
    parts, err = _template_parts(template)
    if err:
        raise ValueError(err)
    try:
        return "".join(slots[text] if is_ph else text for is_ph, text in parts)
    except KeyError as e:
        raise ValueError(f"template placeholder {{{e.args[0]}}} has no value") from None


DEFAULT_PHRASING: dict[str, list[str]] = {
    "greeting": [
        "Thank you for calling {company} {department}, this is {rep}. How can I help you today?",
        "{company} {department}, {rep} speaking. What can I do for you?",
        "Hi, you've reached {department} at {company}. My name is {rep}, how may I help?",
    ],
    "greeting_transfer": [
        "Thanks for holding, this is {rep} in {department}. I have your request for {service}.",
        "Hi, {rep} from {department} here. I understand you're calling about {service}.",
    ],
    "ask_fact": [
        "Can I get the {fact}, please?",
        "I'll need the {fact} to continue.",
        "Could you give me the {fact}?",
    ],
    "verified": ["Thank you, that matches.", "Great, that's verified.", "Perfect, thanks."],
    "mismatch": [
        "I'm sorry, that doesn't match what we have on file.",
        "Hmm, that's not what I have in our records.",
    ],
    "security_hangup": [
        "For your security I can't continue this call. Goodbye.",
        "I'm unable to verify the account, so I have to end the call. Goodbye.",
    ],
    "anything_else": ["Is there anything else I can help you with?", "Anything else today?"],
    "transfer": [
        "That's handled by {department}. Let me transfer you.",
        "I'll transfer you to {department}, one moment.",
    ],
    "hold": [
        "All of our {department} agents are busy. Please hold.",
        "Please stay on the line; a {department} agent will be with you shortly.",
    ],
    "still_hold": ["(hold music)", "(hold music) Your call is important to us."],
    "cannot_help": [
        "I'm sorry, that's not something we can help with.",
        "Unfortunately we don't offer that.",
    ],
    "call_other_number": [
        "We can't do that here. You'll need to call {number}.",
        "For that, please call {number}; I can't transfer you.",
    ],
    "unrequested_fact": [
        "Thanks, but I don't need that right now.",
        "Okay, but I didn't ask for that.",
    ],
    "not_understood": ["Sorry, I didn't catch that.", "I'm sorry, could you say that again?"],
    "still_there": ["Hello? Are you still there?", "Are you still on the line?"],
    "fee_question": [
        "There's a fee of {fee} dollars for that. Shall I go ahead?",
        "That comes with a {fee} dollar fee. Do you want to proceed?",
    ],
    "offer_declined": ["Understood.", "No problem."],
    "eligible": ["Great, you qualify.", "Okay, you're eligible."],
    "ineligible": [
        "I'm sorry, you don't qualify for {service}.",
        "Unfortunately {service} isn't available to you.",
    ],
}


@dataclass
class MessageBook:
    """All messages of a scenario set with their phrasing variants and token ids.

    Messages are deduplicated by their variant texts, so identical messages of different
    scenarios share an id.
    """

    texts: list[tuple[str, ...]] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)
    vocab: dict[str, int] = field(
        default_factory=lambda: {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    )
    _index: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)

    def add(self, speaker: str, variants: list[str] | tuple[str, ...] | str) -> int:
        """Register a message (speaker ``rep``/``ivr``/``user``/``system``); return its id."""
        vs = (variants,) if isinstance(variants, str) else tuple(variants)
        if not vs:
            raise ValueError("a message needs at least one variant")
        key = (speaker, vs)
        if key in self._index:
            return self._index[key]
        mid = len(self.texts)
        self._index[key] = mid
        self.texts.append(vs)
        self.speakers.append(speaker)
        for v in vs:
            for tok in tokenize(f"{speaker}: {v}"):
                self.vocab.setdefault(tok, len(self.vocab))
        return mid

    def render(self, mid: int, variant: int) -> str:
        """The text of one message variant, with its speaker prefix."""
        vs = self.texts[mid]
        return f"{self.speakers[mid]}: {vs[variant % len(vs)]}"

    def token_ids(self, text: str) -> list[int]:
        return [self.vocab.get(t, UNK) for t in tokenize(text)]

    def tables(self) -> tuple[list[list[list[int]]], int]:
        """Per message, per variant, token ids followed by ``<sep>``; and the max length."""
        out: list[list[list[int]]] = []
        longest = 1
        for mid, vs in enumerate(self.texts):
            rows = []
            for v in range(len(vs)):
                ids = [*self.token_ids(self.render(mid, v)), SEP]
                longest = max(longest, len(ids))
                rows.append(ids)
            out.append(rows)
        return out, longest


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th'."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"
