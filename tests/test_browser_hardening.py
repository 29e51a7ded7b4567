"""Browser family hardening: bad actions stay in-band, no network path besides routing, and
nothing (timers, workers, storage) survives a reset."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest

import envgym  # noqa: F401
from envgym.browser.actions import MAX_JSON_DEPTH, ParseError, parse_action
from envgym.browser.engine import ERROR_CODES
from envgym.browser.env import BrowserVectorEnv
from envgym.browser.tasks.base import ORIGIN, Judgement, PageView, Request, Response, Task, layout

# Each example of issue 13 (and its class), as the parser sees it.
BAD_ACTIONS: list[Any] = [
    "scroll inf 0",
    "scroll 0 -inf",
    "scroll nan 0",
    "drag 0 0 inf inf",
    "drag 0 0 1e999 0",
    '{"op": "drag", "x": 0, "y": 0, "x2": 1e999, "y2": 0}',
    '{"op": "scroll", "dx": ' + "9" * 400 + ', "dy": 0}',
    {"op": "scroll", "dx": 10**5000, "dy": 0},
    {"op": "scroll", "dx": True, "dy": 0},
    '{"name": "click", "arguments": {"ref": ' + "[" * 200 + "]" * 200 + "}}",
    {"name": "click", "arguments": "[" * 100_000},
    {"name": "click", "arguments": "[" * 300 + "]" * 300},
    {"op": [[[[]]]]},
    {"op": 10**5000},
    {"op": "noop", 1: 2, "a": 3},
    {f"k{i}": i for i in range(10_000)},
    {"op": "fill", "ref": "e1", "text": "x" * 100_000},
    "fill e1 \ud800",
    "{" * 511,
    "click e\u0661",
]


@pytest.mark.parametrize("action", BAD_ACTIONS, ids=range(len(BAD_ACTIONS)))
def test_bad_actions_raise_only_parse_errors_quickly(action: Any) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ParseError) as err:
        parse_action(action)
    assert time.perf_counter() - t0 < 0.05
    assert len(str(err.value)) < 400


def test_nesting_at_the_limit_still_parses() -> None:
    ok = '{"name": "scroll", "arguments": {"dx": 0, "dy": 5}}'
    assert parse_action(ok).y == 5
    deep = '{"op": "noop", "x": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    with pytest.raises(ParseError, match="takes no arguments"):
        parse_action(deep)  # within the depth limit: rejected for its content, not its depth


class Plain(Task):
    """A page with a button and a text box; never ends."""

    name = "Plain"
    max_steps = 1000

    def handle(self, req: Request) -> Response:
        return Response(layout("Plain", "<button>Go</button><input aria-label=Name>"))

    def judge(self) -> Judgement:
        return Judgement(False, False)

    def oracle(self, view: PageView) -> str:
        return "noop"


@pytest.mark.browser
def test_bad_actions_are_in_band_on_both_faces() -> None:
    envs = BrowserVectorEnv(2, Plain)
    env = gym.make("envgym/Browser-ClickButton-v0")
    try:
        envs.reset(seed=0)
        env.reset(seed=0)
        strings = [a for a in BAD_ACTIONS if isinstance(a, str)]
        for bad in [*strings, *BAD_ACTIONS[7:9], "drag 0 0 100000 100000", "mouse_click -5 99999"]:
            _, rew, term, trunc, info = envs.step([bad, "click e1"])
            code = int(info["action_error"][0])
            assert code in (ERROR_CODES["parse"], ERROR_CODES["action"], 0), bad
            assert not bool(trunc[0]), (bad, info["truncation_reason"][0])
            assert int(info["action_error"][1]) == 0  # the other world is not affected
            if code:
                assert float(info["reward_terms"]["invalid_action"][0]) == pytest.approx(-0.05)
            _, _, term1, trunc1, sinfo = env.step(bad)
            assert sinfo["truncation_reason"] in ("", "time_limit"), (bad, sinfo)
            assert sinfo["action_error"] or bad.startswith(("drag", "mouse")), bad
            if term1 or trunc1:
                env.reset()
        # Not a string or dict at all: ValueError, the same on both faces (0-d arrays too).
        for wrong in (5, None, b"click e1", np.array(5), np.zeros(3), [1, 2]):
            with pytest.raises(ValueError):
                envs.step([wrong, "noop"])
            with pytest.raises(ValueError):
                env.step(wrong)
        with pytest.raises(ValueError):
            envs.step(5)
        # The envs keep working.
        _, _, _, _, info = envs.step(["noop", "noop"])
        assert info["action_error"].tolist() == [0, 0]
        assert env.step("noop")[4]["action_error"] == ""
    finally:
        envs.close()
        env.close()


class Probe(Task):
    """A page running ``script`` (after an output paragraph)."""

    name = "Probe"
    max_steps = 1000
    script: ClassVar[str] = ""

    def handle(self, req: Request) -> Response:
        return Response(layout("Probe", f"<p id=out>pending</p><script>{self.script}</script>"))

    def judge(self) -> Judgement:
        return Judgement(False, False)

    def oracle(self, view: PageView) -> str:
        return "noop"


def _serve(kind: int, seconds: float) -> tuple[int, list[Any], threading.Thread]:
    """A loopback listener (UDP or TCP) recording what reaches it for ``seconds``."""
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    got: list[Any] = []

    def listen() -> None:
        end = time.time() + seconds
        while time.time() < end:
            try:
                if kind == socket.SOCK_DGRAM:
                    got.append(sock.recvfrom(4096))
                else:
                    conn, addr = sock.accept()
                    got.append(addr)
                    conn.close()
            except TimeoutError:
                pass
        sock.close()

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    return sock.getsockname()[1], got, t


def _rtc_script(udp: int, tcp: int) -> str:
    """WebRTC three ways (STUN to a server, TURN over TCP, checks to a remote candidate),
    then fetch, EventSource, WebSocket, a beacon, an image, an iframe and a preconnect to
    loopback ports."""
    return f"""
const log = [];
const show = () => {{ document.getElementById('out').textContent = 'ran: ' + log.join('; '); }};
const pc = new RTCPeerConnection({{iceServers: [
  {{urls: 'stun:127.0.0.1:{udp}'}},
  {{urls: 'turn:127.0.0.1:{udp}', username: 'u', credential: 'p'}},
  {{urls: 'turn:127.0.0.1:{tcp}?transport=tcp', username: 'u', credential: 'p'}}]}});
pc.createDataChannel('x');
pc.onicecandidate = e => {{ if (e.candidate) log.push('candidate'); show(); }};
const sdp = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 ' + Array(32).fill('AA').join(':'), 'a=setup:active', 'a=mid:0',
  'a=sctp-port:5000', ''].join('\\r\\n');
pc.createOffer().then(o => pc.setLocalDescription(o))
  .then(() => pc.setRemoteDescription({{type: 'answer', sdp}}))
  .then(() => pc.addIceCandidate({{candidate:
    'candidate:1 1 udp 2130706431 127.0.0.1 {udp} typ host', sdpMid: '0', sdpMLineIndex: 0}}))
  .then(() => {{ log.push('rtc set up'); show(); }})
  .catch(e => {{ log.push('rtc error ' + e.name); show(); }});
fetch('http://127.0.0.1:{tcp}/f').then(() => log.push('fetch: got'))
  .catch(() => log.push('fetch: failed')).finally(show);
const es = new EventSource('http://localhost:{tcp}/es');
es.onopen = () => log.push('es: open'); es.onerror = () => es.close();
const ws = new WebSocket('ws://127.0.0.1:{tcp}/ws'); ws.onopen = () => log.push('ws: open');
navigator.sendBeacon('http://127.0.0.1:{tcp}/beacon', 'x');
new Image().src = 'http://127.0.0.1:{tcp}/img';
const f = document.createElement('iframe'); f.src = 'http://127.0.0.1:{tcp}/frame';
document.body.appendChild(f);
const l = document.createElement('link'); l.rel = 'preconnect'; l.href = 'http://127.0.0.1:{tcp}';
document.head.appendChild(l);
show();
"""


@pytest.mark.browser
def test_no_packet_reaches_loopback_listeners_outside_routing() -> None:
    udp, datagrams, t_udp = _serve(socket.SOCK_DGRAM, 4.0)
    tcp, connections, t_tcp = _serve(socket.SOCK_STREAM, 4.0)

    class Leaky(Probe):
        script = _rtc_script(udp, tcp)

    envs = BrowserVectorEnv(1, Leaky)
    try:
        envs.reset(seed=0)
        tree = ""
        for _ in range(12):
            obs, *_ = envs.step(["noop"])
            tree = obs["tree"][0]
            time.sleep(0.25)
        assert "ran:" in tree and "rtc set up" in tree, tree  # the script did run
        assert "candidate" not in tree  # no local address was even gathered
        assert "got" not in tree and "open" not in tree, tree
        t_udp.join()
        t_tcp.join()
        assert datagrams == [], f"UDP reached 127.0.0.1:{udp}: {datagrams[:3]}"
        assert connections == [], f"TCP reached 127.0.0.1:{tcp}: {connections[:3]}"
        blocked = envs.engine.worlds[0].blocked
        for path in ("/f", "/es", "/ws", "/beacon", "/img", "/frame"):
            assert any(u.endswith(f"{tcp}{path}") for u in blocked), (path, blocked)
    finally:
        envs.close()


_POLLUTE = """
localStorage.setItem('k', 'v'); sessionStorage.setItem('k', 'v');
document.cookie = 'k=v; max-age=3600; path=/';
const req = indexedDB.open('db1', 1);
req.onupgradeneeded = () => req.result.createObjectStore('s');
setTimeout(() => { document.body.insertAdjacentHTML('beforeend', '<p>HIJACK timeout</p>'); },
  300);
setInterval(() => {
  document.body.insertAdjacentHTML('beforeend', '<p>HIJACK interval</p>');
  try { localStorage.setItem('late', '1'); } catch (e) {}
}, 50);
const w = new Worker('/worker.js');
w.onmessage = () => document.body.insertAdjacentHTML('beforeend', '<p>HIJACK worker</p>');
requestAnimationFrame(function f() { document.title = 'HIJACK'; requestAnimationFrame(f); });
document.getElementById('out').textContent = 'polluted';
"""

_REPORT = """
indexedDB.databases().then(dbs => {
  document.getElementById('out').textContent = 'report ' + JSON.stringify({
    local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
    idb: dbs.map(d => d.name)});
});
"""


class Polluter(Task):
    """Episode 1 leaves timers, a worker and storage behind; later episodes report."""

    name = "Polluter"
    max_steps = 1000
    episodes: ClassVar[int] = 0

    def __init__(self, seed: int, difficulty: int) -> None:
        Polluter.episodes += 1
        self.first = Polluter.episodes == 1

    def handle(self, req: Request) -> Response:
        if req.path == "/worker.js":
            return Response(
                "setInterval(() => postMessage(1), 50);", content_type="text/javascript"
            )
        script = _POLLUTE if self.first else _REPORT
        return Response(layout("Polluter", f"<p id=out>pending</p><script>{script}</script>"))

    def judge(self) -> Judgement:
        return Judgement(False, False)

    def oracle(self, view: PageView) -> str:
        return "noop"


@pytest.mark.browser
def test_nothing_survives_a_reset() -> None:
    Polluter.episodes = 0
    envs = BrowserVectorEnv(1, Polluter)
    try:
        envs.reset(seed=0)
        for _ in range(10):
            obs, *_ = envs.step(["noop"])
            time.sleep(0.05)
        first = obs["tree"][0]
        assert "polluted" in first and "HIJACK worker" in first and "HIJACK interval" in first
        assert "HIJACK timeout" in first
        obs, _ = envs.reset()
        tree = ""
        for _ in range(10):
            obs, *_ = envs.step(["noop"])
            tree = obs["tree"][0]
            time.sleep(0.08)
        assert "HIJACK" not in tree, tree
        assert obs["url"][0].startswith(ORIGIN)
        expected = 'report {"local":0,"session":0,"cookie":"","idb":[]}'
        assert expected in tree.replace("\\", ""), tree
        title = envs.engine.pool.run(envs.engine.worlds[0].page.title())
        assert title == "Polluter"
    finally:
        envs.close()
