"""Every README Quick start block and every docs/integrations.md example runs as written; every
other docs example imports or defines every name it uses (a ``# sketch:`` first line marks the
few that leave some to the reader, and says which)."""

from __future__ import annotations

import builtins
import importlib.util
import os
import re
import subprocess
import symtable
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


def undefined_names(code: str) -> set[str]:
    """The global names ``code`` reads but never imports, assigns, defines or gets from
    builtins (in any scope: functions, classes and comprehensions read the module's)."""
    top = symtable.symtable(code, "<docs block>", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    defined |= {c.get_name() for c in top.get_children()}  # defs and classes
    used: set[str] = set()

    def walk(table: symtable.SymbolTable) -> None:
        for s in table.get_symbols():
            top_level = table is top and s.is_referenced()
            if top_level or (table is not top and s.is_global()):
                used.add(s.get_name())
        for child in table.get_children():
            walk(child)

    walk(top)
    return used - defined - set(dir(builtins))


DOC_BLOCKS = [
    (f"{path.name}#{i}", code)
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for i, code in enumerate(python_blocks(path))
]


def test_undefined_names_are_found() -> None:
    assert undefined_names("import numpy as np\nx = np.zeros(2) + y\n") == {"y"}
    assert undefined_names("def f():\n    return [g(i) for i in range(2)]\n") == {"g"}
    assert undefined_names("class A:\n    pass\n\nA()\n") == set()


@pytest.mark.parametrize("where, code", DOC_BLOCKS, ids=[w for w, _ in DOC_BLOCKS])
def test_docs_block_defines_what_it_uses(where: str, code: str) -> None:
    if code.startswith("# sketch:"):
        pytest.skip(code.splitlines()[0])
    missing = undefined_names(code)
    assert not missing, f"{where} uses {sorted(missing)} without importing or defining them"
