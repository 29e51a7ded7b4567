"""Browser family: action parsing, every task's oracle, do-nothing and random policies."""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.browser.actions import BrowserAction, ParseError, parse_action, tool_schemas
from envgym.browser.ids import SKILL_NAMES, browser_id, entries
from envgym.browser.tasks.base import parse_tree
from envgym.core import keys

BROWSER_IDS = [e.id for e in entries()]


# ---------------------------------------------------------------- parsing (no browser)
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("click e12", BrowserAction("click", ref="e12")),
        ("fill e5 Jane Doe", BrowserAction("fill", ref="e5", text="Jane Doe")),
        ("select e7 March", BrowserAction("select", ref="e7", text="March")),
        ("press e5 Enter", BrowserAction("press", ref="e5", text="Enter")),
        ("scroll 0 400", BrowserAction("scroll", x=0, y=400)),
        ("go_back", BrowserAction("go_back")),
        ("drag 1 2 3 4", BrowserAction("drag", x=1, y=2, x2=3, y2=4)),
        ({"op": "check", "ref": "e3"}, BrowserAction("check", ref="e3")),
        (
            '{"name": "fill", "arguments": {"ref": "e5", "text": "x y"}}',
            BrowserAction("fill", ref="e5", text="x y"),
        ),
        (
            {
                "type": "function",
                "function": {"name": "mouse_click", "arguments": '{"x": 3, "y": 4}'},
            },
            BrowserAction("mouse_click", x=3, y=4),
        ),
    ],
)
def test_parse_action_spellings(action: Any, expected: BrowserAction) -> None:
    assert parse_action(action) == expected
    assert parse_action(expected.to_command()) == expected


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("click", "needs"),
        ("click 12", "ref must look like"),
        ("explode e1", "unknown action"),
        ("press e1 F13", "unknown key"),
        ("scroll a b", "must be a number"),
        ('{"name": "click"', "not valid JSON"),
        ({"name": "click", "arguments": {"ref": "e1", "x": 1}}, "unexpected"),
        ("__import__('os').system('true')", "unknown action"),
        (42, "string or a dict"),
    ],
)
def test_parse_action_errors_are_clear(action: Any, says: str) -> None:
    with pytest.raises(ParseError, match=says):
        parse_action(action)


def test_tool_schemas_cover_every_op() -> None:
    names = [t["function"]["name"] for t in tool_schemas()]
    assert "click" in names and "drag" in names and len(names) == len(set(names))
    json.dumps(tool_schemas())  # serialisable for an LLM API


def test_parse_tree_reads_roles_refs_values() -> None:
    tree = (
        "- generic [active] [ref=e1]:\n"
        '  - textbox "Full name" [ref=e5]: Jane Doe\n'
        '  - checkbox "Newsletter" [checked] [ref=e6]\n'
        '  - option "March" [selected]\n'
    )
    nodes = parse_tree(tree)
    assert [n.role for n in nodes] == ["generic", "textbox", "checkbox", "option"]
    assert nodes[1].name == "Full name" and nodes[1].ref == "e5" and nodes[1].value == "Jane Doe"
    assert "checked" in nodes[2].attrs and nodes[3].ref is None


def test_importing_envgym_browser_loads_no_playwright() -> None:
    import subprocess
    import sys

    code = "import envgym, envgym.browser, sys; print('playwright' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- policies (real Chromium)
def _episodes(
    env_id: str, policy: str, n: int = 3, seed: int = 0, **kwargs: Any
) -> list[tuple[bool, float]]:
    """Run ``policy`` in ``n`` worlds until each finished one episode: (success, return)."""
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    try:
        envs.reset(seed=seed)
        space = envs.single_action_space
        space.seed(seed)
        out: list[tuple[bool, float] | None] = [None] * n
        for _ in range(40):
            if policy == "oracle":
                act = envs.oracle_action()
            elif policy == "noop":
                act = ["noop"] * n
            else:
                act = [space.sample() for _ in range(n)]
            _, _, term, trunc, info = envs.step(act)
            for i in np.flatnonzero((term | trunc).numpy()):
                if out[i] is None:
                    out[i] = (bool(info["success"][i]), float(info[keys.EPISODE]["r"][i]))
            if all(o is not None for o in out):
                break
        assert all(o is not None for o in out), f"{env_id}: some episode never ended"
        return out  # type: ignore[return-value]
    finally:
        envs.close()


@pytest.mark.browser
@pytest.mark.parametrize("env_id", BROWSER_IDS)
def test_oracle_solves_every_task(env_id: str) -> None:
    results = _episodes(env_id, "oracle", n=3, seed=11)
    assert all(s for s, _ in results), f"{env_id}: oracle failed in {results}"
    assert all(r > 0.5 for _, r in results)


@pytest.mark.browser
@pytest.mark.parametrize("env_id", BROWSER_IDS)
def test_noop_and_random_do_not_score(env_id: str) -> None:
    # Short episodes keep this fast; neither policy gets near the goal in any case.
    noop = _episodes(env_id, "noop", n=2, seed=3, max_steps=6)
    assert not any(s for s, _ in noop) and all(r < 0 for _, r in noop)
    rand = _episodes(env_id, "random", n=2, seed=3, max_steps=8)
    oracle_return = 0.9
    assert sum(s for s, _ in rand) <= 1 and np.mean([r for _, r in rand]) < oracle_return


@pytest.mark.browser
@pytest.mark.parametrize("difficulty", [0, 4])
@pytest.mark.parametrize("task", SKILL_NAMES)
def test_skill_generators_span_difficulty(task: str, difficulty: int) -> None:
    env = gym.make(browser_id(task), difficulty=difficulty)
    try:
        obs, _ = env.reset(seed=difficulty)
        for _ in range(20):
            obs, _, term, trunc, info = env.step(env.unwrapped.oracle_action())
            if term or trunc:
                break
        assert info["success"], f"{task} d={difficulty}: {obs['tree'][:400]}"
    finally:
        env.close()


@pytest.mark.browser
def test_generated_portal_companies() -> None:
    results = []
    env = gym.make("envgym/Browser-PortalIspBillDiscount-v1", scenario="generated", difficulty=2)
    try:
        for seed in range(3):
            obs, _ = env.reset(seed=seed)
            for _ in range(30):
                obs, _, term, trunc, info = env.step(env.unwrapped.oracle_action())
                if term or trunc:
                    break
            results.append(info["success"])
    finally:
        env.close()
    assert all(results), results


@pytest.mark.browser
def test_single_env_text_faces_and_errors() -> None:
    env = gym.make("envgym/Browser-EnterText-v0")
    try:
        obs, _ = env.reset(seed=0)
        assert obs["url"] == "http://envgym.test/" and "[ref=e" in obs["tree"]
        assert obs["instruction"].startswith("Type")
        _, r, _, _, info = env.step("click e999")
        assert "no element e999" in info["action_error"] and r < -0.01
        assert info["reward_terms"]["invalid_action"] < 0
        obs, _, _, _, info = env.step("definitely not an action")
        assert "could not parse" in obs["error"] and info["action_error"] == obs["error"]
        _, _, _, _, info = env.step('{"name": "noop", "arguments": {}}')
        assert info["action_error"] == ""
        nxt = info["next_obs_target"]
        from envgym.browser.env import decode_tokens

        assert decode_tokens(nxt).endswith(env.unwrapped._obs["tree"][-50:])
        with pytest.raises(ValueError, match="strings or dicts"):
            env.step(3.5)
    finally:
        env.close()


@pytest.mark.browser
def test_screenshot_observation() -> None:
    env = gym.make("envgym/Browser-ClickButton-v0", screenshot=True, viewport=(320, 240))
    try:
        obs, _ = env.reset(seed=0)
        shot = obs["screenshot"]
        assert shot.shape == (240, 320, 3) and shot.dtype == np.uint8 and shot.std() > 0
        assert env.observation_space.contains(obs)
    finally:
        env.close()


@pytest.mark.browser
def test_docs_authoring_example_runs() -> None:
    """The task-authoring example of docs/browser.md works as written."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "browser.md").read_text()
    block = next(b for b in text.split("```python")[1:] if "class Greet" in b).split("```")[0]
    scope: dict[str, Any] = {"gym": gym}
    exec(compile(block, "docs/browser.md", "exec"), scope)  # our own documentation's code
    env = scope["env"]
    try:
        env.reset(seed=1)
        for _ in range(5):
            _, reward, term, trunc, info = env.step(env.unwrapped.oracle_action())
            if term or trunc:
                break
        assert term and info["success"] and reward > 0.9
    finally:
        env.close()
