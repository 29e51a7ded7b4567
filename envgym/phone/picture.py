"""The phone env's ``render_mode="rgb_array"`` frame: a picture of the call.

A header with the scenario and the call's state, then the last lines of the transcript (what
the assistant did and what it heard), wrapped to the frame. The frame size is fixed, so the
frames of a call make a video (``gymnasium.wrappers.RecordVideo``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

WIDTH, HEIGHT = 640, 480
_LINE = 14  # pixels per text line of Pillow's default bitmap font
_COLS = 100  # characters per wrapped line
_BG, _HEADER_BG, _TEXT, _ASSISTANT = (250, 250, 247), (32, 64, 96), (20, 20, 20), (0, 90, 160)


def call_frame(header: Sequence[str], transcript: Sequence[str]) -> np.ndarray:
    """uint8 ``[HEIGHT, WIDTH, 3]``: ``header`` lines on a band, then the newest transcript
    lines that fit (older lines scroll off the top)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (WIDTH, HEIGHT), _BG)
    draw = ImageDraw.Draw(img)
    band = 8 + _LINE * len(header)
    draw.rectangle((0, 0, WIDTH, band), fill=_HEADER_BG)
    for k, line in enumerate(header):
        draw.text((8, 4 + _LINE * k), line[:_COLS], fill=(255, 255, 255))
    rows: list[tuple[str, tuple[int, int, int]]] = []
    for entry in transcript:
        colour = _ASSISTANT if entry.startswith("assistant:") else _TEXT
        for part in entry.splitlines() or [""]:
            rows += [(w, colour) for w in textwrap.wrap(part, _COLS) or [""]]
    fit = (HEIGHT - band - 8) // _LINE
    for k, (line, colour) in enumerate(rows[-fit:]):
        draw.text((8, band + 4 + _LINE * k), line, fill=colour)
    return np.asarray(img, dtype=np.uint8)
