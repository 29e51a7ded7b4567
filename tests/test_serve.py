"""The env server (``envgym serve``) and its client (``envgym.remote``), end to end on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import envgym  # noqa: F401  (registers the ids)
from envgym.cli import main
from envgym.phone.scenarios import shipped_names
from envgym.remote import AsyncRemoteEnv, RemoteEnv, RemoteEnvError
from envgym.serve import (
    DEADLINE_EXCEEDED,
    SESSION_EXPIRED,
    EnvgymAction,
    EnvServer,
    ServedEnv,
    ServedEnvError,
)

PHONE = "envgym/Phone-v0"


@pytest.fixture(scope="module")
def phone_server() -> Iterator[EnvServer]:
    with EnvServer(PHONE, max_sessions=32, idle_timeout_s=1.0, max_message_bytes=1 << 16) as s:
        yield s


def _ws_url(server: EnvServer) -> str:
    return f"ws://{server.host}:{server.port}/ws"


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_binds_loopback_by_default(phone_server: EnvServer) -> None:
    assert phone_server.host == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", phone_server.port), timeout=2):
        pass


def test_remote_env_matches_in_process_env(phone_server: EnvServer) -> None:
    """Same seed and actions: the same observations, rewards and every info key."""
    local = gym.make(PHONE, scenario="isp_bill_discount")
    remote = RemoteEnv(phone_server.url, env_id=PHONE, oracle=True, scenario="isp_bill_discount")
    try:
        assert remote.action_space == local.action_space
        assert remote.target_space == local.unwrapped.target_space
        lo, linfo = local.reset(seed=3)
        ro, rinfo = remote.reset(seed=3)
        assert ro == lo and rinfo.keys() == linfo.keys()
        done = False
        while not done:
            action = local.unwrapped.oracle_action()
            assert remote.oracle_action() == action
            lo, lr, lt, ltr, linfo = local.step(action)
            ro, rr, rt, rtr, rinfo = remote.step(action)
            assert (ro, rt, rtr) == (lo, lt, ltr)
            assert rr == pytest.approx(lr)
            assert rinfo.keys() == linfo.keys()  # every key, generically (action_mask too)
            np.testing.assert_array_equal(rinfo["next_obs_target"], linfo["next_obs_target"])
            assert rinfo["reward_terms"] == pytest.approx(linfo["reward_terms"])
            assert sum(rinfo["reward_terms"].values()) == pytest.approx(rr, abs=1e-5)
            done = lt or ltr
        assert rinfo["success"] is True
    finally:
        remote.close()
        local.close()


def test_sixteen_concurrent_sessions_play_the_oracle(phone_server: EnvServer) -> None:
    """The async face: 16 sessions at once, each its own scenario and seed, all succeed."""
    names = sorted(shipped_names())

    async def episode(i: int) -> tuple[bool, int, int]:
        env = AsyncRemoteEnv(phone_server.url, PHONE, oracle=True, scenario=names[i % len(names)])
        try:
            obs, info = await env.reset(seed=100 + i)
            done, steps = False, 0
            while not done:
                obs, r, term, trunc, info = await env.step(env.oracle_action())
                done, steps = term or trunc, steps + 1
            return bool(info["success"]), steps, phone_server.active_sessions()
        finally:
            await env.close()

    async def run() -> list[tuple[bool, int, int]]:
        return await asyncio.gather(*(episode(i) for i in range(16)))

    results = asyncio.run(run())
    assert all(ok for ok, _, _ in results), results
    assert max(n for _, _, n in results) >= 2  # the sessions overlapped on the server
    assert _wait_for(lambda: phone_server.active_sessions() == 0, 5)


def test_docs_client_blocks_run(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "llm_agents.md").read_text()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    # Its own server with the default idle timeout: the shared fixture reaps sessions idle for
    # 1 s, which 16 concurrent sessions on a loaded 2-core machine can exceed between steps.
    with EnvServer(PHONE, max_sessions=32) as server:
        for marker in ("RemoteEnv(", "AsyncRemoteEnv("):
            block = next(b for b in blocks if marker in b and "import" in b)
            block = block.replace("http://127.0.0.1:8000", server.url)
            exec(compile(block, "llm_agents.md", "exec"), {})
    assert "[True, True" in capsys.readouterr().out  # the 16 async episodes succeeded


def test_seeds_reach_the_env(phone_server: EnvServer) -> None:
    env = RemoteEnv(phone_server.url, env_id=PHONE, scenario="generated")
    try:
        a, _ = env.reset(seed=1)
        b, _ = env.reset(seed=2)
        c, _ = env.reset(seed=1)
        assert a == c and a != b
        assert a == gym.make(PHONE, scenario="generated").reset(seed=1)[0]
    finally:
        env.close()


def test_disconnected_client_is_reaped(phone_server: EnvServer) -> None:
    # A client that drops its connection mid-episode: its session closes at once.
    with connect(_ws_url(phone_server)) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
        assert json.loads(ws.recv())["type"] == "observation"
        ws.send(json.dumps({"type": "step", "data": {"action": "wait"}}))
        assert json.loads(ws.recv())["type"] == "observation"
        assert phone_server.active_sessions() == 1
        ws.socket.close()  # no close handshake: the client vanished
        assert _wait_for(lambda: phone_server.active_sessions() == 0, 5)

    # A client that stays connected but goes silent mid-episode: the idle reaper closes it.
    with connect(_ws_url(phone_server)) as silent:
        silent.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
        silent.recv()
        assert phone_server.active_sessions() == 1
        assert _wait_for(lambda: phone_server.active_sessions() == 0, 12)


def test_garbage_requests_get_clear_errors(phone_server: EnvServer) -> None:
    with connect(_ws_url(phone_server), max_size=None) as ws:

        def ask(raw: str) -> dict:
            ws.send(raw)
            return json.loads(ws.recv())

        err = ask("{not json")
        assert err["type"] == "error" and err["data"]["code"] == "INVALID_JSON"
        err = ask(json.dumps({"type": "teleport"}))
        assert err["data"]["code"] == "UNKNOWN_TYPE"
        err = ask(json.dumps({"type": "step", "data": {"nope": 1}}))
        assert err["data"]["code"] == "VALIDATION_ERROR"
        err = ask(json.dumps({"type": "step", "data": {"action": "wait"}}))  # before any reset
        assert err["data"]["code"] == "EXECUTION_ERROR" and "reset" in err["data"]["message"]
        err = ask(json.dumps({"type": "reset", "data": {"env_id": "envgym/Nope-v0"}}))
        assert "ValueError" in err["data"]["message"] and "Nope" in err["data"]["message"]
        err = ask(json.dumps({"type": "reset", "data": {"seed": "zero"}}))
        assert "seed must be an integer" in err["data"]["message"]
        err = ask(json.dumps({"type": "reset", "data": {"env_kwargs": {"scenario": "nope"}}}))
        assert err["data"]["code"] == "EXECUTION_ERROR" and "nope" in err["data"]["message"]
        ok = ask(json.dumps({"type": "reset", "data": {"seed": 0}}))
        assert ok["type"] == "observation"
        # The session is still usable after all of that.
        ok = ask(json.dumps({"type": "step", "data": {"action": "wait"}}))
        assert ok["type"] == "observation"
        with pytest.raises(ConnectionClosed) as closed:  # over max_message_bytes (64 KiB)
            ask(json.dumps({"type": "step", "data": {"action": "x" * 200_000}}))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    # Out-of-space actions get the env's documented in-band answer, as in process.
    env = RemoteEnv(phone_server.url, env_id=PHONE, scenario="isp_bill_discount")
    local = gym.make(PHONE, scenario="isp_bill_discount")
    try:
        env.reset(seed=0)
        local.reset(seed=0)
        for bad in (12345, [1, 2], None, '{"name": "fly"}', "x" * 2000):
            _, r, _, _, info = env.step(bad)
            _, lr, _, _, linfo = local.step(bad)
            assert info["action_error"] == linfo["action_error"] and info["action_error"]
            assert r == pytest.approx(lr) and r < 0
        with pytest.raises(TypeError, match="cannot encode"):  # refused before sending
            env.step(object())
        _, _, _, _, info = env.step("wait")
        assert info["action_error"] == ""
    finally:
        env.close()
        local.close()

    # Huge HTTP bodies get 413; the server keeps serving.
    r = httpx.post(f"{phone_server.url}/step", content=b"x" * 200_000)
    assert r.status_code == 413
    assert httpx.get(f"{phone_server.url}/health").status_code == 200
    env = RemoteEnv(phone_server.url, env_id=PHONE, oracle=True)
    try:
        env.reset(seed=5)
        _, _, _, _, info = env.step(env.oracle_action())
        assert "next_obs_target" in info
    finally:
        env.close()


class _SlowEnv(gym.Env):
    """Steps take ``action`` seconds (to hit the per-step deadline)."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Box(0.0, 10.0, (), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        time.sleep(float(action))
        return 1, 0.0, False, False, {"slept": float(action)}


def test_capacity_and_step_deadline() -> None:
    gym.register("tests/Slow-v0", entry_point=_SlowEnv)
    with EnvServer("tests/Slow-v0", max_sessions=1, step_timeout_s=0.5) as server:
        first = RemoteEnv(server.url, env_id="tests/Slow-v0")
        try:
            with pytest.raises(RemoteEnvError) as e:
                RemoteEnv(server.url, env_id="tests/Slow-v0")
            assert e.value.code == "CAPACITY_REACHED"
            first.reset(seed=0)
            assert first.step(0.0)[4] == {"slept": 0.0}
            with pytest.raises(RemoteEnvError, match="DEADLINE_EXCEEDED"):
                first.step(3.0)
            with pytest.raises(RemoteEnvError, match="reset"):
                first.step(0.0)  # the stuck env was abandoned
            first.reset(seed=1)  # a fresh env on a fresh thread
            assert first.step(0.0)[4] == {"slept": 0.0}
        finally:
            first.close()


class _GateEnv(gym.Env):
    """Steps block until the test opens the gate; records whether ``close`` came mid-step."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)
    made: list[_GateEnv] = []  # every instance, so the test reaches the server's envs

    def __init__(self) -> None:
        self.entered = threading.Event()  # a step is running
        self.gate = threading.Event()  # the test lets the step return
        self.closed = threading.Event()
        self.stepping = False
        self.closed_mid_step = False
        _GateEnv.made.append(self)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        self.stepping = True
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        self.stepping = False
        return 1, 1.0, False, False, {"stepped": True}

    def oracle_action(self) -> int:
        return 1

    def close(self) -> None:
        self.closed_mid_step |= self.stepping
        self.closed.set()


GATE = "tests/Gate-v0"


@pytest.fixture()
def gate_id() -> Iterator[str]:
    if GATE not in gym.registry:
        gym.register(GATE, entry_point=_GateEnv, disable_env_checker=True)
    _GateEnv.made.clear()
    yield GATE
    for env in _GateEnv.made:
        env.gate.set()  # never leave a session thread blocked


def test_close_during_a_call_waits_for_it(gate_id: str) -> None:
    """A close (the reaper's, a server's) that arrives mid-call: the call finishes and answers
    (oracle action included), then the env is closed; the next call says the session expired."""
    served = ServedEnv(gate_id)

    async def run() -> None:
        await served.reset_async(seed=0, oracle=True)
        gate = _GateEnv.made[-1]
        step = asyncio.create_task(served.step_async(EnvgymAction(action=0)))
        assert await asyncio.to_thread(gate.entered.wait, 30)
        await asyncio.to_thread(served.close)  # OpenEnv closes on its own thread: returns now
        assert not served.is_open and not gate.closed.is_set()
        gate.gate.set()
        reply = await step
        assert reply.obs == 1 and reply.info == {"stepped": True} and reply.oracle_action == 1
        assert await asyncio.to_thread(gate.closed.wait, 30)  # released after the call
        assert not gate.closed_mid_step
        with pytest.raises(ServedEnvError, match=f"^{SESSION_EXPIRED}: "):
            await served.step_async(EnvgymAction(action=0))
        with pytest.raises(ServedEnvError, match=f"^{SESSION_EXPIRED}: "):
            await served.reset_async(seed=1)

    asyncio.run(run())
    with pytest.raises(ServedEnvError, match=f"^{SESSION_EXPIRED}: "):
        served.step(EnvgymAction(action=0))  # the synchronous (HTTP) face too


def test_reaper_spares_a_running_call_then_expires_the_idle_session(
    gate_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idle reaper (idle timeout far below the call's length) looks at a session while its
    step runs and leaves it; once idle it closes it, and the client's next call gets
    ``EXECUTION_ERROR`` / ``SESSION_EXPIRED``. Synchronised on events, not on sleeps."""
    spared = threading.Event()
    expire = ServedEnv.expire_if_idle

    def watched(self: ServedEnv) -> bool:
        gate = _GateEnv.made[-1] if _GateEnv.made else None
        if gate is None or not gate.entered.is_set():
            return False  # the test's own hold: no reaping before the step is in flight
        closing = expire(self)
        if not closing:
            spared.set()  # the reaper looked during the step and left the session open
        return closing

    monkeypatch.setattr(ServedEnv, "expire_if_idle", watched)
    with (
        EnvServer(gate_id, idle_timeout_s=0.01, step_timeout_s=120) as server,
        connect(_ws_url(server)) as ws,
    ):
        ws.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
        assert json.loads(ws.recv())["type"] == "observation"
        ws.send(json.dumps({"type": "step", "data": {"action": 0}}))
        gate = _GateEnv.made[-1]
        assert gate.entered.wait(30)
        assert spared.wait(30), "the reaper never looked at the running session"
        assert server.active_sessions() == 1 and not gate.closed.is_set()
        gate.gate.set()
        reply = json.loads(ws.recv())
        assert reply["type"] == "observation", reply
        assert reply["data"]["observation"]["info"] == {"stepped": True}
        # Idle now: the reaper's next look closes the session.
        assert _wait_for(lambda: server.active_sessions() == 0, 30)
        assert gate.closed.wait(30) and not gate.closed_mid_step
        ws.send(json.dumps({"type": "step", "data": {"action": 0}}))
        error = json.loads(ws.recv())
        assert error["type"] == "error", error
        assert error["data"]["code"] == "EXECUTION_ERROR"
        assert error["data"]["message"].startswith(f"{SESSION_EXPIRED}: ")


def test_cli_serve_rejects_unknown_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "envgym/Nope-v0", "--port", "0"]) == 1
    assert "Nope" in capsys.readouterr().err


@pytest.mark.browser
def test_sixteen_concurrent_browser_sessions() -> None:
    """The sync face from 16 threads: each session's own Chromium page, oracle to success."""
    env_id = "envgym/Browser-ClickButton-v0"
    # 16 Chromium pages start at once on a small CI machine: a generous deadline.
    with EnvServer(env_id, max_sessions=16, step_timeout_s=300) as server:

        def episode(i: int) -> bool:
            env = RemoteEnv(server.url, env_id=env_id, oracle=True)
            try:
                env.reset(seed=i)
                for _ in range(20):
                    _, _, term, trunc, info = env.step(env.oracle_action())
                    if term or trunc:
                        break
                return bool(info["success"]) and "next_obs_target" in info
            finally:
                env.close()

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(episode, range(16)))
        assert all(results), results
        assert _wait_for(lambda: server.active_sessions() == 0, 10)
        assert threading.active_count() < 200


def test_wire_round_trips_values_and_spaces() -> None:
    import torch
    from gymnasium import spaces

    from envgym.core.wire import from_wire, space_from_wire, space_to_wire, to_wire

    value = {
        "a": np.arange(6, dtype=np.int32).reshape(2, 3),
        "t": torch.tensor([[True, False]]),
        "s": np.float32(1.5),
        "nested": ({"x": [np.int64(3), None, "text"]},),
    }
    back = from_wire(json.loads(json.dumps(to_wire(value))))
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["a"].dtype == np.int32 and back["t"].dtype == np.bool_
    assert back["s"] == 1.5 and back["nested"] == [{"x": [3, None, "text"]}]
    space = spaces.Dict(
        {
            "box": spaces.Box(-1.0, 1.0, (3,), np.float32),
            "d": spaces.Discrete(5, start=1),
            "md": spaces.MultiDiscrete([2, 3]),
            "mb": spaces.MultiBinary(4),
            "text": spaces.Text(12, min_length=1, charset="abc"),
            "tup": spaces.Tuple([spaces.Discrete(2)]),
        }
    )
    assert space_from_wire(json.loads(json.dumps(space_to_wire(space)))) == space
    with pytest.raises(TypeError, match="cannot encode"):
        to_wire(object())


def test_cli_serve_serves_sessions() -> None:
    """``envgym serve`` as users run it: its own process, loopback, a client plays an episode."""
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "envgym.cli", "serve", PHONE, "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--env-kwarg", "scenario=mock"], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_for(lambda: _healthy(url) or proc.poll() is not None, 120)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        env = RemoteEnv(url, env_id=PHONE, oracle=True)
        try:
            _, first = env.reset(seed=0)
            assert first["scenario"] == "mock"  # the server's --env-kwarg reached gym.make
            for _ in range(60):
                _, _, term, trunc, info = env.step(env.oracle_action())
                if term or trunc:
                    break
            assert info["success"]
        finally:
            env.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_call_abandoned_past_its_deadline_changes_nothing_when_it_returns(
    gate_id: str,
) -> None:
    """A step stuck past the deadline is abandoned (DEADLINE_EXCEEDED, on the async and the
    synchronous face alike); the session resets onto a fresh env; when the stuck step finally
    returns, it changes neither the session's env nor its step count."""
    served = ServedEnv(gate_id, step_timeout_s=0.3)

    async def run() -> None:
        await served.reset_async(seed=0)
        old = _GateEnv.made[-1]
        old.gate.set()
        for _ in range(2):
            await served.step_async(EnvgymAction(action=0))
        assert served.state.step_count == 2
        old.gate.clear()
        with pytest.raises(ServedEnvError, match=f"^{DEADLINE_EXCEEDED}: "):
            await served.step_async(EnvgymAction(action=0))
        await served.reset_async(seed=1)  # a fresh env on a fresh thread
        new = _GateEnv.made[-1]
        assert new is not old
        new.gate.set()
        await served.step_async(EnvgymAction(action=0))
        assert served.state.step_count == 1
        old.gate.set()  # the abandoned step returns now (and tries to count itself)
        for _ in range(100):
            if not old.stepping:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert not old.stepping
        assert served.state.step_count == 1
        assert served._env.unwrapped is new

    asyncio.run(run())
    assert served.state.step_count == 1
    # The synchronous (HTTP) face: the same deadline, the same error, not a raw TimeoutError.
    _GateEnv.made[-1].gate.clear()
    with pytest.raises(ServedEnvError, match=f"^{DEADLINE_EXCEEDED}: "):
        served.step(EnvgymAction(action=0))
    _GateEnv.made[-1].gate.set()
    served.reset(seed=2)
    _GateEnv.made[-1].gate.set()
    assert served.step(EnvgymAction(action=0)).obs == 1
    served.close()
