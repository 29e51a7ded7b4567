"""The browser pool: Playwright on one asyncio event loop in a background thread.

Every browser env in a process shares one :class:`BrowserPool` per launch configuration
(executable, flags): the pool owns the Playwright driver and one or a few Chromium processes;
envs open their own browser contexts (one per world) on them. Synchronous env code hands
coroutines to the loop with :meth:`BrowserPool.run`, so N pages are driven concurrently without
threads per page.

The launch path and flags are configurable: ``ENVGYM_CHROMIUM`` (path to the Chromium
executable, default ``/usr/bin/chromium`` when it exists, else Playwright's own download:
:func:`chromium_executable` says which, if any, is there) and
``ENVGYM_CHROMIUM_ARGS`` (extra flags, space-separated), or the ``executable_path`` /
``launch_args`` keyword arguments of the envs.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
"""Chromium flags every envgym browser gets: headless, no GPU, and no background traffic."""

NETWORK_POLICY_ARGS = (
    # WebRTC may not use UDP at all unless through a proxy (and the only proxy is a dead end).
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    # Loopback is not exempt from the proxy (Chromium's implicit bypass rule is removed).
    "--proxy-bypass-list=<-loopback>",
    # No name resolves (pages come from the routed fake origin, which is never resolved).
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # A document navigated away from is destroyed, not kept frozen for going back to.
    "--disable-back-forward-cache",
)
"""The network policy, always added after any other flags (so no launch setting undoes it),
together with ``--proxy-server`` pointing at :meth:`BrowserPool`'s sink: a loopback port that
the pool holds bound but never listens on, so any connection Chromium opens outside request
routing (``<link rel=preconnect>``, WebRTC's TURN over TCP, ...) is refused on the spot. Every
request the page makes still goes through ``context.route``, which answers the fake origin and
aborts the rest before they reach the network stack."""

INSTALL_HINT = (
    "the browser family needs Playwright and Chromium: pip install -e '.[browser]', then "
    "`bash scripts/install-system-deps.sh` (Debian's chromium package where apt has one, else "
    "`python -m playwright install --with-deps chromium`), or point ENVGYM_CHROMIUM at a "
    "Chromium executable"
)


def _import_playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return async_playwright


def default_executable() -> str | None:
    """``ENVGYM_CHROMIUM``, else Debian's ``/usr/bin/chromium`` (or a ``chromium`` /
    ``chromium-browser`` on PATH that is not a snap), else None (Playwright's own download)."""
    env = os.environ.get("ENVGYM_CHROMIUM")
    if env:
        return env
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = shutil.which(name)
        if path and not is_snap(path):
            return path
    return None


def is_snap(path: str) -> bool:
    """Whether ``path`` is a snap's Chromium, or Ubuntu's small wrapper script that starts one
    (its ``chromium-browser`` package): Playwright can't drive a snap's confined browser, so
    those are passed over for Playwright's own download."""
    real = os.path.realpath(path)
    if real.startswith("/snap/"):
        return True
    try:
        if os.path.getsize(real) > _WRAPPER_BYTES:
            return False  # a browser binary, not a wrapper script
        with open(real, "rb") as f:
            return b"/snap/" in f.read()
    except OSError:
        return False


_WRAPPER_BYTES = 1 << 16
"""Wrapper scripts are smaller than this; Chromium binaries are far bigger."""


def chromium_executable() -> str | None:
    """The Chromium the browser family will launch: :func:`default_executable`, else
    Playwright's own download where it has been installed (``python -m playwright install
    chromium``); None when there is neither, or no Playwright."""
    path = default_executable()
    return path if path is not None else _playwright_download()


def _playwright_download() -> str | None:
    """The path of Playwright's downloaded Chromium, if it is there (asks Playwright's driver:
    it knows its browsers' folder and layout)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as p:
        path = str(p.chromium.executable_path)
    return path if os.path.exists(path) else None


@dataclass(frozen=True)
class LaunchConfig:
    """How Chromium is started."""

    executable_path: str | None
    args: tuple[str, ...]

    @staticmethod
    def resolve(
        executable_path: str | None = None, launch_args: Sequence[str] | None = None
    ) -> LaunchConfig:
        """Fill in defaults from the environment variables."""
        args = list(DEFAULT_ARGS if launch_args is None else launch_args)
        extra = os.environ.get("ENVGYM_CHROMIUM_ARGS", "").split()
        return LaunchConfig(executable_path or default_executable(), tuple(args + extra))


class BrowserPool:
    """Playwright and its Chromium processes, driven from one background event loop."""

    _pools: dict[LaunchConfig, BrowserPool] = {}
    _lock = threading.Lock()

    def __init__(self, config: LaunchConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="envgym-browser-loop", daemon=True
        )
        self._thread.start()
        self._playwright: Any = None
        self._browsers: dict[int, Any] = {}
        self._pids: dict[int, int] = {}
        self.free_slots: dict[Any, list[Any]] = {}
        """Healthy pages of closed envs, by (browser index, viewport), for reuse."""
        self._launch_lock: asyncio.Lock | None = None
        self._sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sink.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        self.closed = False
        try:
            self.run(self._start(), timeout=60)
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    @classmethod
    def get(cls, config: LaunchConfig) -> BrowserPool:
        """The process-wide pool for ``config`` (started on first use)."""
        with cls._lock:
            pool = cls._pools.get(config)
            if pool is None or pool.closed:
                pool = cls._pools[config] = BrowserPool(config)
            return pool

    def launch_args(self) -> list[str]:
        """The flags Chromium is started with: the configured ones, then the network policy."""
        sink = self._sink.getsockname()[1]
        return [*self.config.args, *NETWORK_POLICY_ARGS, f"--proxy-server=http://127.0.0.1:{sink}"]

    async def _start(self) -> None:
        self._playwright = await _import_playwright()().start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run ``coro`` on the pool's loop and wait for its result (from any other thread)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("BrowserPool.run called from the pool's own loop")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    async def browser(self, index: int = 0) -> Any:
        """Browser process ``index`` (launched, or relaunched if it died, on demand)."""
        if self._launch_lock is None:
            self._launch_lock = asyncio.Lock()
        async with self._launch_lock:
            b = self._browsers.get(index)
            if b is None or not b.is_connected():
                if b is not None:
                    with contextlib.suppress(Exception):
                        await b.close()
                before = set(chromium_browser_pids())
                try:
                    b = await self._playwright.chromium.launch(
                        executable_path=self.config.executable_path,
                        args=self.launch_args(),
                        headless=True,
                    )
                except Exception as e:
                    raise RuntimeError(f"could not launch Chromium: {e}\n{INSTALL_HINT}") from e
                self._browsers[index] = b
                new = sorted(set(chromium_browser_pids()) - before)
                if new:
                    self._pids[index] = new[0]
            return b

    def browser_pids(self) -> dict[int, int]:
        """``{browser index: pid}`` of the live Chromium processes (for fault tests)."""
        return {
            i: pid
            for i, pid in self._pids.items()
            if i in self._browsers and self._browsers[i].is_connected()
        }

    def close(self) -> None:
        """Close every browser and stop the loop."""
        if self.closed:
            return
        self.closed = True

        async def stop() -> None:
            for b in self._browsers.values():
                with contextlib.suppress(Exception):
                    await b.close()
            with contextlib.suppress(Exception):
                await self._playwright.stop()

        with contextlib.suppress(Exception):
            self.run(stop(), timeout=20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self._sink.close()

    @classmethod
    def _forget_inherited(cls) -> None:
        """In a forked child: the parent's pools (their loop thread did not survive the fork;
        their browsers are the parent's) are dropped, not closed, so that the child's envs
        start their own pool and the child's exit leaves the parent's browsers alone."""
        cls._pools = {}
        cls._lock = threading.Lock()

    @classmethod
    def close_all(cls) -> None:
        """Close every pool of the process (registered with ``atexit``)."""
        with cls._lock:
            pools = list(cls._pools.values())
            cls._pools.clear()
        for p in pools:
            p.close()


atexit.register(BrowserPool.close_all)
if hasattr(os, "register_at_fork"):  # async vector envs and multiprocessing fork workers
    os.register_at_fork(after_in_child=BrowserPool._forget_inherited)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every descendant process of ``pid`` (Linux ``/proc``)."""
    out: list[int] = []
    todo = _children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def chromium_browser_pids() -> list[int]:
    """Pids of Chromium browser (main) processes started by this Python process."""
    return [
        p
        for p in descendants(os.getpid())
        if (cmd := _cmdline(p)) and "--type=" not in " ".join(cmd) and "chrom" in cmd[0].lower()
    ]


def renderer_pids(browser_pid_: int) -> list[int]:
    """Pids of the renderer processes of one Chromium browser process."""
    # Chromium rewrites its children's titles, so the arguments may come as one string.
    return [p for p in descendants(browser_pid_) if "--type=renderer" in " ".join(_cmdline(p))]
