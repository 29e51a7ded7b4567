"""Every README Quick start block and every docs/integrations.md example runs as written, and
so do docs/dsl.md's worked example (its scenario, its oracle check and the episode it shows)
and docs/datasets.md's record-then-load path;
every other docs example imports or defines every name it uses (a ``# sketch:`` first line
marks the few that leave some to the reader, and says which)."""

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


# ---------------------------------------------------------------- docs/dsl.md's tutorial
DSL = ROOT / "docs" / "dsl.md"
TUTORIAL_PATH = "/tmp/atm_limit.yaml"  # where the tutorial saves its scenario


def dsl_tutorial() -> tuple[str, str, str, list[tuple[str, str]]]:
    """docs/dsl.md's worked example: the scenario's YAML, the oracle check (a python block),
    the line the text says it prints, and the oracle's episode as the text shows it
    (``(catalogue name, messages)`` per step)."""
    text = DSL.read_text()
    start = text.index(f"`{TUTORIAL_PATH}`:")
    yaml_text = re.search(r"```yaml\n(.*?)```", text[start:], flags=re.S).group(1)
    check = next(b for b in python_blocks(DSL) if TUTORIAL_PATH in b)
    printed = re.search(r"This prints `([^`]+)`", text[start:]).group(1)
    episode = re.search(r"The oracle's episode for seed 0.*?```\n(.*?)```", text, flags=re.S)
    lines = [re.match(r"> (\S+)\s+(.*)", ln).groups() for ln in episode.group(1).splitlines()]
    return yaml_text, check, printed, lines


def test_the_dsl_tutorial_runs_as_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The tutorial's scenario validates, its oracle check prints what the text says, and the
    oracle's episode is the one the text shows (actions and messages)."""
    import gymnasium as gym

    from envgym.cli import main

    yaml_text, check, printed, lines = dsl_tutorial()
    path = tmp_path / "atm_limit.yaml"
    path.write_text(yaml_text)
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    exec(compile(check.replace(TUTORIAL_PATH, str(path)), "<dsl.md>", "exec"), {})
    assert capsys.readouterr().out.strip() == printed

    vec = gym.make_vec(
        "envgym/Phone-v0", num_envs=1, vectorization_mode="vector_entry_point", scenario=str(path)
    )
    text_env = gym.make("envgym/Phone-v0", scenario=str(path))
    vec.reset(seed=0)
    text_env.reset(seed=0)
    for name, shown in lines:
        action = vec.oracle_action()
        assert vec.action_names[int(action[0])] == name
        obs, _, term, trunc, info = text_env.step(text_env.unwrapped.oracle_action())
        heard = " / ".join(obs.splitlines())
        # the text cuts long messages short with "..."
        assert heard.startswith(shown[:-3].rstrip()) if shown.endswith("...") else heard == shown
        vec.step(action)
    assert term and info["success"]  # the episode shown is the whole of it, and succeeds
    vec.close()
    text_env.close()


# ---------------------------------------------------------------- docs/datasets.md
def test_the_datasets_page_records_and_loads_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/datasets.md's first ``envgym record`` command (fewer episodes), then its loading
    block as written: the shapes its comments state, and every target is the next
    observation."""
    import numpy as np

    from envgym.cli import main

    pytest.importorskip("minari", reason="needs the datasets extra")
    text = (ROOT / "docs" / "datasets.md").read_text()
    command = re.search(r"^envgym record envgym/Phone-v0 .*$", text, flags=re.M).group(0)
    argv = command.split()[1:]
    argv[argv.index("--episodes") + 1] = "4"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main(argv) == 0
    block = next(b for b in python_blocks(ROOT / "docs" / "datasets.md") if "load_dataset" in b)
    scope: dict = {}
    exec(compile(block, "<datasets.md>", "exec"), scope)
    assert scope["dataset"].total_episodes == 4
    for episode in scope["dataset"].iterate_episodes():
        tokens, target = episode.observations["tokens"], episode.infos["next_obs_target"]
        T = len(episode.actions)
        assert tokens.shape[0] == T + 1 and target.shape == (T, tokens.shape[1])
        assert np.array_equal(target, tokens[1:])
