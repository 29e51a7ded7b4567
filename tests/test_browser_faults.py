"""Browser family: the network block and faults (timeout, crashed renderer, dead browser)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envgym  # noqa: F401
from envgym.browser.env import BrowserVectorEnv
from envgym.browser.launch import DEFAULT_ARGS, renderer_pids
from envgym.browser.tasks.base import Judgement, PageView, Request, Response, Task, layout

pytestmark = pytest.mark.browser

# A separate Chromium (other flags -> another pool) so killing its processes cannot disturb
# the browser the other tests share.
FAULT_ARGS = (*DEFAULT_ARGS, "--renderer-process-limit=32")

_LEAK_JS = """
<p id=out>pending</p>
<img src="http://93.184.216.34/pixel.png" alt="">
<script>
const out = [];
fetch('http://example.com/data.json').then(() => out.push('fetch: got data'))
  .catch(() => out.push('fetch: failed'))
  .finally(() => { document.getElementById('out').textContent = out.join('; '); });
try {
  const x = new XMLHttpRequest(); x.open('GET', 'http://10.1.2.3/secret', false); x.send();
  out.push('xhr: status ' + x.status);
} catch (e) { out.push('xhr: failed'); }
try { const ws = new WebSocket('ws://example.com/socket'); ws.onopen = () => out.push('ws: open'); }
catch (e) { out.push('ws: failed'); }
</script>
"""


class LeakyPage(Task):
    """A page that tries to reach outside addresses four ways."""

    name = "LeakyPage"
    max_steps = 50

    def handle(self, req: Request) -> Response:
        return Response(layout("Leaky", "<h1>Leaky</h1>" + _LEAK_JS))

    def judge(self) -> Judgement:
        return Judgement(False, False)

    def oracle(self, view: PageView) -> str:
        return "noop"


class HangingPage(Task):
    """A page whose button runs an endless loop."""

    name = "HangingPage"
    max_steps = 50

    def handle(self, req: Request) -> Response:
        return Response(
            layout("Hang", "<button onclick='while (true) {}'>Hang</button><p>alive</p>")
        )

    def judge(self) -> Judgement:
        return Judgement(False, False)

    def oracle(self, view: PageView) -> str:
        return "noop"


def test_outside_requests_are_blocked_at_the_route_layer() -> None:
    envs = BrowserVectorEnv(1, LeakyPage)
    try:
        envs.reset(seed=0)
        tree = ""
        for _ in range(20):
            obs, *_ = envs.step(["noop"])
            tree = obs["tree"][0]
            if "fetch:" in tree:
                break
            time.sleep(0.05)
        assert "fetch: failed" in tree and "xhr: failed" in tree, tree
        assert "got data" not in tree and "ws: open" not in tree
        blocked = envs.engine.worlds[0].blocked
        for url in (
            "http://example.com/data.json",
            "http://10.1.2.3/secret",
            "http://93.184.216.34/pixel.png",
            "ws://example.com/socket",
        ):
            assert url in blocked, f"{url} was not stopped by the router: {blocked}"
    finally:
        envs.close()


def _step_until_ended(envs: Any, actions: list[str], steps: int = 30) -> tuple[np.ndarray, Any]:
    """Step until some world's episode ends; return (ended mask, info)."""
    for _ in range(steps):
        _, _, term, trunc, info = envs.step(actions)
        done = (term | trunc).numpy()
        if done.any():
            return done, info
    raise AssertionError("no episode ended")


def test_killed_renderer_truncates_only_its_world() -> None:
    envs = BrowserVectorEnv(3, "ClickButton", max_steps=40, launch_args=FAULT_ARGS)
    try:
        envs.reset(seed=5)
        envs.step(["noop"] * 3)
        bpid = envs.engine.pool.browser_pids()[0]
        crashed: list[int] = []
        for pid in renderer_pids(bpid):  # some renderers may serve no world: try until one does
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)
            _, _, term, trunc, info = envs.step(["noop"] * 3)
            crashed = np.flatnonzero(trunc.numpy()).tolist()
            if crashed:
                break
        assert crashed, "killing the renderers crashed no world"
        assert len(crashed) < 3, "one renderer took down every world"
        for i in range(3):
            reason = info["truncation_reason"][i]
            if i in crashed:
                assert reason == "page crashed" and not bool(term[i])
                assert info["action_error"][i] == 3  # fault
                assert "fault: page crashed" in info["final_obs"]["error"][i]
            else:
                assert reason == "" and not bool(trunc[i])
        # Every world, the restarted one included, goes on and solves its next episode.
        solved = np.zeros(3, dtype=bool)
        for _ in range(10):
            _, _, term, trunc, info = envs.step(envs.oracle_action())
            solved |= (info["success"] & term).numpy()
            if solved.all():
                break
        assert solved.all(), solved
    finally:
        envs.close()


def test_dead_browser_process_truncates_its_worlds_and_relaunches() -> None:
    envs = BrowserVectorEnv(2, "ClickButton", max_steps=40, num_browsers=2, launch_args=FAULT_ARGS)
    try:
        envs.reset(seed=1)
        pids = envs.engine.pool.browser_pids()
        assert set(pids) == {0, 1}
        os.kill(pids[0], signal.SIGKILL)
        time.sleep(0.5)
        _, _, term, trunc, info = envs.step(["noop", "noop"])
        assert bool(trunc[0]) and info["truncation_reason"][0] in (
            "browser process died",
            "page crashed",
        ), info["truncation_reason"]
        assert not bool(trunc[1]) and not bool(term[1])
        solved = np.zeros(2, dtype=bool)
        for _ in range(10):
            _, _, term, _, info = envs.step(envs.oracle_action())
            solved |= (info["success"] & term).numpy()
            if solved.all():
                break
        assert solved.all(), solved
        assert envs.engine.pool.browser_pids()[0] != pids[0]  # relaunched
    finally:
        envs.close()


def test_step_timeout_truncates_the_hung_world_only() -> None:
    envs = BrowserVectorEnv(2, HangingPage, step_timeout_s=2.0, launch_args=FAULT_ARGS)
    try:
        obs, _ = envs.reset(seed=0)
        ref = PageView(obs["url"][0], obs["tree"][0]).ref("button", "Hang")
        t0 = time.perf_counter()
        obs, _, term, trunc, info = envs.step([f"click {ref}", "noop"])
        assert time.perf_counter() - t0 < 30
        assert bool(trunc[0]) and info["truncation_reason"][0].startswith("step timed out")
        assert not bool(trunc[1])
        # The hung world was rebuilt by the auto-reset and answers again.
        obs, _, _, trunc, _ = envs.step(["noop", "noop"])
        assert "alive" in obs["tree"][0] and not trunc.any()
    finally:
        envs.close()


def test_launch_settings_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from envgym.browser.launch import LaunchConfig

    monkeypatch.setenv("ENVGYM_CHROMIUM", "/opt/my/chromium")
    monkeypatch.setenv("ENVGYM_CHROMIUM_ARGS", "--lang=de")
    cfg = LaunchConfig.resolve()
    assert cfg.executable_path == "/opt/my/chromium" and cfg.args[-1] == "--lang=de"
    assert LaunchConfig.resolve("/x/chrome", ["--a"]).args[:1] == ("--a",)
    env = gym.make("envgym/Browser-ClickButton-v0", executable_path="/nonexistent/chromium")
    with pytest.raises(RuntimeError, match="could not launch Chromium"):
        env.reset(seed=0)
    env.close()
