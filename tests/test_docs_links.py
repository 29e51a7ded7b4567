"""The documentation's links stay inside the repository and lead somewhere.

Every Markdown link in ``README.md`` and ``docs/*.md`` (outside code blocks and inline code)
must be relative, name a file or folder that exists, and, when it has a ``#fragment``, name a
heading of that file by the anchor GitHub gives it (lower case; punctuation other than ``-``
and ``_`` dropped; spaces to ``-``; a repeated heading gets ``-1``, ``-2``, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`[^`]*`")


def _outside_fences(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading's text (before the suffix for repeated headings)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for line in _outside_fences(page.read_text()):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = anchor(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    """The link targets of a page's prose (inline code spans left out)."""
    lines = _outside_fences(page.read_text())
    return [m.group(1) for line in lines for m in _LINK.finditer(_CODE_SPAN.sub("", line))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository_and_resolve(page: Path) -> None:
    bad = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            bad.append(f"{target}: leaves the repository")
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or ROOT not in (dest, *dest.parents):
            bad.append(f"{target}: no such file in the repository")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            bad.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert not bad, "\n".join(bad)


def test_anchor_follows_githubs_rule() -> None:
    assert anchor("2026-12-01, round 3: the calls after the rollout") == (
        "2026-12-01-round-3-the-calls-after-the-rollout"
    )
    assert anchor("Robot, CPU (this project's 2-core machine)") == (
        "robot-cpu-this-projects-2-core-machine"
    )
    assert anchor('The `obs_mode="ids"` [mode](x.md)') == "the-obs_modeids-mode"
