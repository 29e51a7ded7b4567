"""Agents for the phone env's text face, used by ``envgym eval`` and the continual protocol.

An *agent* plays one episode at a time through the text face (``obs_mode="text"``)::

    agent.reset(env, obs, info)   # start of an episode (obs: the user's request)
    action = agent.act(obs, info) # each turn: obs/info from the last step
    agent.end(info)               # optional: the episode ended (info of the last step)

The same agent object is reused across the episodes of a continual sequence, so whatever it
keeps between ``reset`` calls is its memory. Built-ins: :class:`OracleAgent` (the env's scripted
solver), :class:`RandomAgent`, :class:`NoopAgent` (always waits) and :class:`ExplorerAgent`, a
heuristic caller that sees only what the assistant hears, with an optional notebook of what each
company asked for in earlier calls.
"""

from __future__ import annotations

import importlib
import json
import random
import re
from typing import Any, Protocol, runtime_checkable

from envgym.phone.text import normalize_value


@runtime_checkable
class Agent(Protocol):
    """What ``envgym eval`` and :func:`envgym.phone.continual.run_sequence` drive."""

    def reset(self, env: Any, obs: str, info: dict[str, Any]) -> None:
        """Start of an episode: ``obs`` is the user's request (the first observation)."""

    def act(self, obs: str, info: dict[str, Any]) -> Any:
        """The next action: a JSON tool call string/dict, free text, or a catalogue id."""


class OracleAgent:
    """The env's scripted solver (privileged: it reads the world's state)."""

    def reset(self, env: Any, obs: str, info: dict[str, Any]) -> None:
        self.env = env.unwrapped

    def act(self, obs: str, info: dict[str, Any]) -> Any:
        return self.env.oracle_action()


class RandomAgent:
    """A uniformly random catalogue action each turn (seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def reset(self, env: Any, obs: str, info: dict[str, Any]) -> None:
        self.env = env.unwrapped

    def act(self, obs: str, info: dict[str, Any]) -> Any:
        return self.env.action_to_text(self.rng.randrange(len(self.env.action_names)))


class NoopAgent:
    """Waits every turn: never calls anyone, never reports."""

    def reset(self, env: Any, obs: str, info: dict[str, Any]) -> None:
        pass

    def act(self, obs: str, info: dict[str, Any]) -> Any:
        return "wait"


class FunctionAgent:
    """A plain function ``fn(obs, info) -> action`` as an agent."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def reset(self, env: Any, obs: str, info: dict[str, Any]) -> None:
        pass

    def act(self, obs: str, info: dict[str, Any]) -> Any:
        return self.fn(obs, info)


def _call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def _words(text: str) -> set[str]:
    """Content words, cut to 5 letters so 'replacement' meets 'replace'."""
    stop = {"the", "and", "for", "you", "your", "with", "that", "this", "have", "please", "call"}
    return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in stop}


_ASK = re.compile(
    r"(?:get|need|give me|have|tell me|confirm) (?:the |your )?"
    r"([^.?!]+?)(?:,? please\?| to continue\.|\?)"
)
_USER_SAYS = (re.compile(r"^My (.+) is (.+)\.$"), re.compile(r"^It's (.+), that's my (.+)\.$"))
_FEE = re.compile(r"(\d+) dollar")
_PRESS = re.compile(r"([^.]*?),? press (\S+?)\.")


class ExplorerAgent:
    """A heuristic caller that acts only on what the assistant hears (no privileged state).

    It dials the customer-service number, picks IVR options and services by word overlap with
    the user's request, answers the rep with the facts it knows, and when a rep asks for a fact it
    doesn't know, asks the user (during the call if the user can be reached, else it hangs up,
    asks between calls and calls again). Fees within the user's limit are accepted, offers
    declined, and it reports once a request is granted.

    With ``notebook=True`` it also keeps, across episodes, the facts each company's reps asked for
    that it didn't know (``notebook[company] = {"last four digits of the card", ...}``) and asks
    the user for them *before* the first call to that company. Everything it writes was heard on
    a call; nothing comes from the env's state.
    """

    def __init__(self, notebook: bool = False) -> None:
        self.use_notebook = notebook
        self.notebook: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ episode start
    def reset(self, env: Any, obs: str, info: dict[str, Any]) -> None:
        intro = obs.partition("user: ")[2] if obs.startswith("user: ") else obs
        self.request, _, rest = intro.partition(" Numbers: ")
        directory, _, rest = rest.partition(". You know: ")
        known_txt = rest.rpartition(". Use at most")[0]
        self.numbers: list[tuple[str, str]] = []  # (label, dial index)
        for entry in directory.split("; "):
            m = re.match(r"(.+): [\d-]+ \(dial (\d+)\)", entry)
            if m:
                self.numbers.append((m.group(1), m.group(2)))
        self.company = self.numbers[0][0].rsplit(" customer service", 1)[0] if self.numbers else ""
        self.known: dict[str, str] = {}  # fact label -> value
        for item in known_txt.split("; "):
            label, sep, value = item.partition(": ")
            if sep:
                self.known[normalize_value(label)] = value
        m = re.search(r"up to \$(\d+)", self.request)
        self.fee_limit = int(m.group(1)) if m else 0
        schemas = {s["function"]["name"]: s["function"] for s in env.unwrapped.tool_schemas()}
        services = schemas["request"]["parameters"]["properties"]["service"]["enum"]
        want = _words(self.request) - _words(self.company)
        self.services = sorted(services, key=lambda s: -len(_words(s.replace("_", " ")) & want))
        self.service_i = 0
        self.requested = False
        self.on_call = False
        self.granted = False
        self.dials = 0
        self.to_dial: str | None = None
        self.asked: set[str] = set()  # unknown facts reps asked for in this episode
        self.pending_ask: list[str] = []  # facts to ask the user for between calls
        self.pressed: dict[str, set[str]] = {}
        self.last_ask = ""
        self.turns = 0
        self.tries = 0
        self.idle = 0
        if self.use_notebook:
            for label in sorted(self.notebook.get(self.company, ())):
                if normalize_value(label) not in self.known:
                    self.pending_ask.append(label)

    def end(self, info: dict[str, Any]) -> None:
        """Write what this call taught into the notebook (only with ``notebook=True``)."""
        if self.use_notebook and self.asked:
            self.notebook.setdefault(self.company, set()).update(self.asked)

    # ------------------------------------------------------------------ helpers
    def _provide_or_ask(self, label: str) -> str:
        key = normalize_value(label)
        for known_label, value in self.known.items():
            if known_label == key or known_label in key or key in known_label:
                return _call("provide", fact=label, value=value)
        self.asked.add(label.strip().lower())
        return _call("ask_user", fact=label)

    def _choose_key(self, prompt: str) -> str:
        options = [(p.strip(), k) for p, k in _PRESS.findall(prompt)]
        tried = self.pressed.setdefault(prompt, set())
        want = _words(self.request) | _words(self.services[self.service_i].replace("_", " "))
        best, best_score = None, -1
        for phrase, key in options:
            low = phrase.lower()
            if key in tried or "main menu" in low or "again" in low:
                continue
            score = 2 * len(_words(phrase) & want) + ("representative" in low or "other" in low)
            if score > best_score:
                best, best_score = key, score
        if best is None:
            return "wait"
        tried.add(best)
        return _call("press", key=best)

    # ------------------------------------------------------------------ act
    def act(self, obs: str, info: dict[str, Any]) -> Any:
        said = self._hear(obs)
        system, rep = " ".join(said["system"]), " ".join(said["rep"])
        hung_up = self._note_system(system)
        if hung_up is not None:
            return hung_up
        if not self.on_call:
            return self._off_call()
        if said["ivr"]:
            return self._choose_key(" ".join(said["ivr"]))
        if not rep:
            if self.last_ask and normalize_value(self.last_ask) in self.known:
                # The user just told us what the rep is waiting for.
                return self._provide_or_ask(self.last_ask)
            return "wait"
        return self._with_rep(rep)

    def _hear(self, obs: str) -> dict[str, list[str]]:
        """The observation's lines by speaker; what the user said goes into ``known``."""
        lines = [line.partition(": ") for line in obs.split("\n") if line]
        said: dict[str, list[str]] = {speaker: [] for speaker in ("user", "rep", "ivr", "system")}
        for speaker, _, text in lines:
            said.setdefault(speaker, []).append(text)
        first_turn, self.turns = self.turns == 0, self.turns + 1
        for text in [] if first_turn else said["user"]:
            for pattern, (li, vi) in zip(_USER_SAYS, ((0, 1), (1, 0)), strict=True):
                m = pattern.match(text)
                if m:
                    self.known[normalize_value(m.group(li + 1))] = m.group(vi + 1)
        return said

    def _note_system(self, system: str) -> str | None:
        """Track the system's notes (a number to dial, the call ending); a hang-up action when
        the user can't be reached during the call."""
        noted = re.search(r"Noted .*\(dial (\d+)\)", system)
        if noted:
            self.to_dial = noted.group(1)
        if "call has ended" in system or "hung up" in system or "at most" in system:
            self.on_call = False
            self.requested = False
        if "can't be reached during a call" in system:
            # The user isn't reachable now: hang up, ask between calls, call again.
            self.pending_ask.append(self.last_ask)
            self.on_call = False
            self.requested = False
            return _call("hang_up")
        return None

    def _off_call(self) -> str:
        """Between calls: report, ask the user what the last call taught, or dial."""
        if self.granted:
            return _call("report", summary="done")
        while self.pending_ask:
            label = self.pending_ask.pop(0)
            if normalize_value(label) not in self.known:
                return _call("ask_user", fact=label)
        if self.dials >= 3 or not self.numbers:
            return _call("report", summary="I could not get it done.")
        number = self.to_dial or self.numbers[0][1]
        self.to_dial = None
        self.dials += 1
        self.on_call = True
        self.pressed = {}
        return _call("dial", number=number)

    def _with_rep(self, rep: str) -> str:
        """Answer the rep: report a grant, move on from a refusal, fees and offers, provide or
        ask for what the rep asks, request the service, or give up when stuck."""
        low = rep.lower()
        if self.to_dial is not None:
            self.on_call = False
            return _call("hang_up")
        if "anything else" in low and not re.search(
            r"sorry|unfortunately|understood|no problem|qualify|isn't available", low
        ):
            self.granted = True
            return _call("report", summary="done")
        if re.search(r"can't help|don't offer|not something we can|^(understood|no problem)", low):
            # Not this service (or we declined its fee): try the next best one, or give up.
            if self.service_i + 1 >= len(self.services) or self.tries >= 2:
                return _call("report", summary="I could not get it done.")
            self.service_i += 1
            self.tries += 1
            self.requested = False
        if re.search(r"dollar fee|fee of", low):
            fee = _FEE.search(low)
            ok = fee is not None and int(fee.group(1)) <= self.fee_limit
            return _call("say_yes" if ok else "say_no")
        if "would you like" in low or "instead" in low or "offer" in low:
            return _call("say_no")
        asks = [m.group(1) for m in _ASK.finditer(rep)]
        if asks:
            self.last_ask = asks[-1]
            return self._provide_or_ask(asks[-1])
        if "transfer" in low:
            return "wait"
        if not self.requested:
            self.requested = True
            return _call("request", service=self.services[self.service_i])
        self.idle += 1
        if self.idle > 2:  # the rep waits for something we can't tell: give up
            return _call("report", summary="I could not get it done.")
        return "wait"


BUILTIN_AGENTS = ("oracle", "random", "noop", "explorer", "notebook")


def make_agent(spec: str, seed: int = 0) -> Any:
    """An agent from a policy spec: a built-in name or ``module:callable``.

    Built-ins: ``oracle``, ``random`` (seeded with ``seed``), ``noop``, ``explorer`` and
    ``notebook`` (the explorer with a notebook). ``module:callable`` imports ``callable`` and
    calls it with no arguments; it must return an agent (``reset``/``act``) or a function
    ``fn(obs, info) -> action``.

    Raises:
        ValueError: for an unknown name or a callable that can't be imported.
    """
    if spec == "oracle":
        return OracleAgent()
    if spec == "random":
        return RandomAgent(seed)
    if spec == "noop":
        return NoopAgent()
    if spec == "explorer":
        return ExplorerAgent()
    if spec == "notebook":
        return ExplorerAgent(notebook=True)
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(
            f"unknown policy {spec!r}: use one of {', '.join(BUILTIN_AGENTS)} or module:callable"
        )
    try:
        obj: Any = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load policy {spec!r}: {e}") from None
    agent = obj()
    if hasattr(agent, "act") and hasattr(agent, "reset"):
        return agent
    if callable(agent):
        return FunctionAgent(agent)
    raise ValueError(f"{spec} returned {type(agent).__name__}, not an agent or a function")
