"""What every browser task is made of: a web app in Python, a judge and an oracle.

A task instance is built from ``(seed, difficulty)`` by its generator (the class constructor)
and owns the app's records for one episode, so a reset is a fresh Python object, not a
database restore. The env serves the app to Chromium through Playwright request routing:
``handle(request)`` answers every request for :data:`ORIGIN`; pages change the app's state with
ordinary form POSTs (or a synchronous ``fetch``-free XHR for drag and drop), so the records are
up to date when the action returns. ``judge()`` reads the records every step; ``oracle(view)``
returns a command string that makes progress from the current page (BrowserGym's ``cheat``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

ORIGIN = "http://envgym.test"
"""The fake origin every page is served from; requests to anything else are aborted."""


@dataclass
class Request:
    """One HTTP request for the app (already routed to it)."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, list[str]]

    @staticmethod
    def from_parts(method: str, url: str, body: str | None) -> Request:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        form = parse_qs(body or "", keep_blank_values=True) if method == "POST" else {}
        return Request(method, parts.path or "/", query, form)

    def get(self, name: str, default: str = "") -> str:
        """The last value of form field ``name`` (POST) or query parameter (GET)."""
        if name in self.form:
            return self.form[name][-1]
        return self.query.get(name, default)


@dataclass
class Response:
    """What the app answers."""

    body: str = ""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None

    @staticmethod
    def redirect(path: str, **query: Any) -> Response:
        """A 303 to ``path`` (post/redirect/get, so going back never re-posts a form)."""
        q = f"?{urlencode(query)}" if query else ""
        return Response(status=303, location=path + q)


@dataclass
class Judgement:
    """The task's verdict on the current records."""

    success: bool
    done: bool
    """The episode is over (goal reached, or an answer was submitted)."""


@dataclass
class Node:
    """One line of the accessibility tree."""

    role: str
    name: str
    ref: str | None
    attrs: set[str] = field(default_factory=set)
    value: str = ""
    depth: int = 0


_LINE = re.compile(r"^(\s*)- (.*)$")
_ATTR = re.compile(r"\s*\[([^\]]*)\]")


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        inner = s[1:-1]
        return inner.replace('\\"', '"') if s[0] == '"' else inner.replace("''", "'")
    return s


def parse_tree(tree: str) -> list[Node]:
    """Parse ``aria_snapshot(mode="ai")`` text into nodes (role, name, ref, attrs, value)."""
    out: list[Node] = []
    for line in tree.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        body = m.group(2)
        if (body.startswith("'") and body.endswith("'")) or (body.startswith("'") and "':" in body):
            # YAML quoted the whole key: '- 'textbox "a: b" [ref=e3]': value'
            end = body.rfind("'")
            key, rest = _unquote(body[: end + 1]), body[end + 1 :]
            value = rest[1:].strip() if rest.startswith(":") else ""
        else:
            key, sep, value = body.partition(": ")
            if not sep and key.endswith(":"):
                key = key[:-1]
        role, _, rest = key.partition(" ")
        name = ""
        rest = rest.strip()
        if rest.startswith('"'):
            j = 1
            while j < len(rest) and not (rest[j] == '"' and rest[j - 1] != "\\"):
                j += 1
            name = rest[1:j].replace('\\"', '"')
            rest = rest[j + 1 :]
        attrs = set(_ATTR.findall(rest))
        ref = next((a[4:] for a in attrs if a.startswith("ref=")), None)
        out.append(Node(role, name, ref, attrs, _unquote(value), depth=len(m.group(1)) // 2))
    return out


@dataclass
class PageView:
    """What the oracle sees: the current URL and accessibility tree."""

    url: str
    tree: str

    def __post_init__(self) -> None:
        self.nodes = parse_tree(self.tree)
        parts = urlsplit(self.url)
        self.path = parts.path or "/"
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def find(self, role: str, name: str | None = None) -> Node | None:
        """The first node with ``role`` (and accessible name ``name``) that has a ref."""
        for n in self.nodes:
            if n.role == role and n.ref and (name is None or n.name == name):
                return n
        return None

    def ref(self, role: str, name: str | None = None) -> str | None:
        """The ref of :meth:`find`'s node, or None."""
        n = self.find(role, name)
        return n.ref if n else None


def esc(text: Any) -> str:
    """HTML-escape a value for a page."""
    return html.escape(str(text), quote=True)


def layout(title: str, body: str, *, head: str = "") -> str:
    """A complete, deterministic HTML page (no external resources, no clocks)."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)}</title>"
        "<style>body{font:14px sans-serif;margin:16px}button{margin:2px}"
        "label{display:block;margin:4px 0}</style>"
        f"{head}</head><body>{body}</body></html>"
    )


class Task:
    """Base class of every browser task (one episode's app, judge and oracle).

    Subclasses set :attr:`name` (the id part: ``envgym/Browser-<name>-v0``), :attr:`title`,
    and implement ``__init__(seed, difficulty)`` (the generator), :meth:`handle`,
    :meth:`judge` and :meth:`oracle`.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    max_steps: ClassVar[int] = 12
    boxes: ClassVar[bool] = False
    """Whether observations include element boxes (``[box=x,y,w,h]``); coordinate tasks do."""

    instruction: str = ""
    start_path: str = "/"

    def __init__(self, seed: int, difficulty: int = 1) -> None:
        self.seed = int(seed)
        self.difficulty = int(difficulty)

    def handle(self, req: Request) -> Response:
        """Answer one request for the app's origin."""
        raise NotImplementedError

    def judge(self) -> Judgement:
        """Whether the goal holds in the records now, and whether the episode is over."""
        raise NotImplementedError

    def oracle(self, view: PageView) -> str:
        """A command string that makes progress towards the goal from ``view``."""
        raise NotImplementedError
