"""Every README Quick start block and every docs/integrations.md example runs as written."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path, section: str | None = None) -> list[str]:
    """The ```python blocks of ``path`` (only those under the ``## section`` heading if given)."""
    text = path.read_text()
    if section is not None:
        start = text.index(f"## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end > 0 else None]
        # The Quick start's family blocks follow it up to the command-line block.
        if section == "Quick start":
            text = text.split("The command line:")[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def skip_reason(code: str) -> str | None:
    """Why a block can't run on this machine: its family's extra (or the feature) is missing."""
    if "Robot-" in code and importlib.util.find_spec("mujoco") is None:
        return "the robot extra (mujoco) is not installed"
    if "Browser-" in code and importlib.util.find_spec("playwright") is None:
        return "the browser extra (playwright) is not installed"
    if "MaskablePPO" in code:
        from envgym.wrappers import SB3VecEnv

        if not hasattr(SB3VecEnv, "action_masks"):
            return "SB3VecEnv.action_masks() (phone action masks) has not landed yet"
    return None


README = python_blocks(ROOT / "README.md", "Quick start")
INTEGRATIONS = python_blocks(ROOT / "docs" / "integrations.md")


def run_block(code: str) -> None:
    """Run a block as a user would: in this interpreter (fast), or, for a block with a
    ``__main__`` guard (it starts worker processes), as a script in a fresh interpreter."""
    if (why := skip_reason(code)) is not None:
        pytest.skip(why)
    if "__main__" not in code:
        exec(compile(code, "<docs block>", "exec"), {"__name__": "docs_block"})
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode == 0, res.stderr[-3000:]


def test_blocks_found() -> None:
    assert len(README) == 3 and len(INTEGRATIONS) >= 5


@pytest.mark.parametrize("index", range(len(README)))
def test_readme_quick_start_block(index: int) -> None:
    run_block(README[index])


@pytest.mark.parametrize("index", range(len(INTEGRATIONS)))
def test_integrations_example(index: int) -> None:
    run_block(INTEGRATIONS[index])
