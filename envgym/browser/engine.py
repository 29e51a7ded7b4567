"""The browser engine: B worlds (one Chromium page each), stepped concurrently.

Each world is a browser context with one page on a shared :class:`BrowserPool`; every request
of the page goes through ``context.route("**/*")``: requests for :data:`ORIGIN` are answered by
the world's task app in Python, everything else is aborted at the route layer (never sent), and
WebSockets are refused. All worlds' actions run as coroutines on the pool's event loop, so N
pages are in flight at once over one (or ``num_browsers``) Chromium processes.

Faults never stop the batch: a step that exceeds ``step_timeout_s``, a crashed page (renderer
killed) or a dead browser process ends that world's episode ``truncated`` with the reason in
``fault``; its context is rebuilt (and its browser relaunched if needed) at the next reset,
while the other worlds go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envgym.browser.actions import BrowserAction, ParseError
from envgym.browser.launch import BrowserPool, LaunchConfig
from envgym.browser.tasks.base import ORIGIN, PageView, Request, Response, Task
from envgym.core.vector import unsigned_seed

TaskFactory = Callable[[int, int], Task]

_REF_RE = re.compile(r"\[ref=((?:f\d+)?e\d+)\]")
_NON_ASCII = re.compile(r"[^\n\x20-\x7e]")

_NAV_WATCH = """
if (window.navigation && !window.__envgymWatch) {
  window.__envgymWatch = true;
  navigation.addEventListener('navigate', e => {
    if (!e.destination.sameDocument) window.__envgymNavigating = true;
  });
}
"""
"""Init script: flags a cross-document navigation the page started (a new document, and so
a fresh flag, follows)."""

BLANK_URL = ORIGIN + "/__envgym_blank__"
"""A blank document of the origin (no script) that every reset passes through."""
_BLANK = "<!doctype html><html><head></head><body></body></html>"

ERROR_CODES = {"": 0, "parse": 1, "action": 2, "fault": 3}
"""``info["action_error"]`` codes of the vector env: 0 ok, 1 unparseable, 2 the browser could
not carry it out, 3 a fault (timeout, crash) ended the episode."""


def ascii_text(text: str, limit: int) -> str:
    """Printable ASCII (others become ``?``), cut to ``limit`` characters."""
    return _NON_ASCII.sub("?", text)[:limit]


@dataclass
class Observation:
    """One world's observation."""

    instruction: str
    url: str
    error: str
    tree: str
    screenshot: np.ndarray | None = None

    def text(self) -> str:
        """The text that ``tokens`` encodes: instruction, URL, last error, tree."""
        return f"{self.instruction}\n{self.url}\n{self.error}\n{self.tree}"


@dataclass
class StepResult:
    """One world's transition (before any auto-reset)."""

    success: bool
    terminated: bool
    truncated: bool
    error_kind: str
    error: str
    fault: str = ""


@dataclass
class _Slot:
    """A browser context with one page, lent to one world at a time."""

    context: Any
    page: Any
    world: World | None = None
    crashed: bool = False
    cdp: Any = None
    """A DevTools session on the page (storage clearing at reset), opened on first use."""


@dataclass
class World:
    """One page and the episode running on it."""

    index: int
    browser_index: int
    context: Any = None
    page: Any = None
    slot: _Slot | None = None
    task: Task | None = None
    rng: np.random.Generator | None = None
    steps: int = 0
    navs: int = 0
    crashed: bool = False
    broken: bool = True
    doc_requests: int = 0
    doc_loads: int = 0
    refs: dict[str, str] = field(default_factory=dict)
    """Ref shown in the tree -> Playwright's ref (which may carry a frame prefix)."""
    obs: Observation | None = None
    blocked: list[str] = field(default_factory=list)
    loaded: asyncio.Event | None = None


class BrowserEngine:
    """B pages on a shared browser pool; synchronous API, concurrent inside."""

    def __init__(
        self,
        make_task: TaskFactory,
        num_worlds: int,
        *,
        difficulty: int = 1,
        max_steps: int | None = None,
        screenshot: bool = False,
        viewport: tuple[int, int] = (800, 600),
        action_timeout_ms: float = 2000,
        step_timeout_s: float = 10.0,
        num_browsers: int = 1,
        max_chars: int = 16384,
        executable_path: str | None = None,
        launch_args: Sequence[str] | None = None,
    ) -> None:
        self.make_task = make_task
        self.difficulty = int(difficulty)
        self.max_steps = max_steps
        self.screenshot = bool(screenshot)
        self.viewport = (int(viewport[0]), int(viewport[1]))
        self.action_timeout_ms = float(action_timeout_ms)
        self.step_timeout_s = float(step_timeout_s)
        self.max_chars = int(max_chars)
        self.num_browsers = max(1, int(num_browsers))
        self.pool = BrowserPool.get(LaunchConfig.resolve(executable_path, launch_args))
        self.worlds = [World(i, i % self.num_browsers) for i in range(int(num_worlds))]
        self.closed = False

    # ------------------------------------------------------------------ world lifecycle
    async def _open(self, w: World) -> None:
        """(Re)build the world's page, relaunching its browser if it died.

        Healthy pages of closed envs are kept by the pool and reused (their handlers read the
        slot's current world), so making an env costs no new browser context when one is free.
        """
        await self._close_world(w)
        key = (w.browser_index, self.viewport)
        free = self.pool.free_slots.setdefault(key, [])
        slot: _Slot | None = None
        while free:
            cand = free.pop()
            if cand.page.is_closed() or cand.crashed or not cand.context.browser.is_connected():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(cand.context.close(), 5)
                continue
            slot = cand
            break
        if slot is None:
            slot = await self._new_slot(w.browser_index)
        slot.world = w
        w.slot, w.context, w.page = slot, slot.context, slot.page
        w.crashed = False
        w.broken = False
        w.loaded = asyncio.Event()

    async def _new_slot(self, browser_index: int) -> _Slot:
        browser = await self.pool.browser(browser_index)
        ctx = await browser.new_context(
            viewport={"width": self.viewport[0], "height": self.viewport[1]},
            java_script_enabled=True,
            service_workers="block",
        )
        slot = _Slot(ctx, None)

        async def route(route: Any) -> None:
            w = slot.world
            req = route.request
            url = req.url
            if url == BLANK_URL:
                with contextlib.suppress(Exception):
                    await route.fulfill(status=200, content_type="text/html", body=_BLANK)
            elif w is not None and (url == ORIGIN or url.startswith(ORIGIN + "/")):
                try:
                    body = req.post_data if req.method == "POST" else None
                except Exception:  # binary bodies
                    body = None
                try:
                    assert w.task is not None
                    resp = w.task.handle(Request.from_parts(req.method, url, body))
                    if resp.location is not None:
                        # Redirects of fulfilled requests escape routing in Chromium, so the
                        # app's post/redirect/get is done here: answer with the target page
                        # and put its URL in the address bar (replaceState).
                        target = ORIGIN + resp.location
                        resp = w.task.handle(Request.from_parts("GET", target, None))
                        resp.body = with_url(resp.body, target)
                except Exception as e:  # an app bug must not kill the batch
                    resp = Response(f"<p>server error: {type(e).__name__}</p>", status=500)
                if req.resource_type == "document" and req.frame == slot.page.main_frame:
                    w.doc_requests += 1
                with contextlib.suppress(Exception):
                    await route.fulfill(
                        status=resp.status, content_type=resp.content_type, body=resp.body
                    )
            else:
                # Never sent: the request dies here, before any network access.
                if w is not None:
                    w.blocked.append(url)
                with contextlib.suppress(Exception):
                    await route.abort("blockedbyclient")

        async def ws_route(ws: Any) -> None:
            if slot.world is not None:
                slot.world.blocked.append(ws.url)
            with contextlib.suppress(Exception):
                await ws.close()

        await ctx.route("**/*", route)
        await ctx.route_web_socket(re.compile(".*"), ws_route)
        await ctx.add_init_script(_NAV_WATCH)
        page = await ctx.new_page()
        page.set_default_timeout(self.action_timeout_ms)
        page.set_default_navigation_timeout(self.step_timeout_s * 1000)

        def crashed(_: Any) -> None:
            slot.crashed = True
            if slot.world is not None:
                slot.world.crashed = True

        def loaded(_: Any) -> None:
            w = slot.world
            if w is not None:
                w.doc_loads += 1
                if w.loaded is not None:
                    w.loaded.set()

        page.on("crash", crashed)
        page.on("domcontentloaded", loaded)
        slot.page = page
        return slot

    async def _close_world(self, w: World, recycle: bool = False) -> None:
        slot = w.slot
        w.slot = w.context = w.page = None
        if slot is None:
            return
        slot.world = None
        if recycle and not w.broken and not slot.crashed and not slot.page.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(slot.page.goto("about:blank"), 5)
                self.pool.free_slots.setdefault((w.browser_index, self.viewport), []).append(slot)
                return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(slot.context.close(), 5)

    async def _reset_world(self, w: World, seed: int | None) -> None:
        if seed is not None:
            # Seeds travel as int64 tensors holding unsigned 64-bit seeds (world_seeds).
            w.rng = np.random.default_rng(unsigned_seed(seed))
        if w.rng is None:
            w.rng = np.random.default_rng()
        task_seed = int(w.rng.integers(2**31 - 1))
        w.task = self.make_task(task_seed, self.difficulty)
        w.steps = 0
        w.blocked = []
        for attempt in range(2):
            try:
                if w.broken or w.page is None or w.crashed or w.page.is_closed():
                    await self._open(w)
                url = ORIGIN + w.task.start_path
                await self._wipe(w)
                # Write the new episode's start page into the blank document (no second
                # navigation, so no second new document for Playwright to instrument).
                resp = w.task.handle(Request.from_parts("GET", url, None))
                if resp.location is not None:  # a start page that redirects
                    url = ORIGIN + resp.location
                    resp = w.task.handle(Request.from_parts("GET", url, None))
                await w.page.set_content(with_url(resp.body, url), wait_until="load")
                await w.page.evaluate("() => window.scrollTo(0, 0)")
                w.doc_requests = w.doc_loads = 0
                w.navs = 1
                w.obs = await self._observe(w, "")
                return
            except Exception:
                w.broken = True
                if attempt == 1:
                    raise

    async def _wipe(self, w: World) -> None:
        """End everything the last episode left in the page and clear the context's storage.

        Navigating to a blank document of :data:`ORIGIN` (no script) destroys the old
        document, and with it its timers, animation frames, workers and connections (the
        back/forward cache is off, see ``launch.NETWORK_POLICY_ARGS``); then cookies, local and
        session storage, IndexedDB and cache storage of the origin are cleared, before the next
        episode's page exists.
        """
        page = w.page
        await page.goto(BLANK_URL, wait_until="commit")
        slot = w.slot
        assert slot is not None
        if slot.cdp is None:
            slot.cdp = await w.context.new_cdp_session(page)
        await slot.cdp.send("Storage.clearDataForOrigin", {"origin": ORIGIN, "storageTypes": "all"})
        await w.context.clear_cookies()
        await page.evaluate("() => { sessionStorage.clear(); localStorage.clear(); }")

    def reset(self, worlds: Sequence[int], seeds: Sequence[int | None]) -> None:
        """Start the next episode in ``worlds`` (``seeds[j]=None``: continue the world's
        seed sequence)."""

        async def go() -> None:
            await asyncio.gather(
                *(self._reset_world(self.worlds[i], s) for i, s in zip(worlds, seeds, strict=True))
            )

        self.pool.run(go(), timeout=60 + 10 * len(worlds))

    # ------------------------------------------------------------------ observing
    async def _observe(self, w: World, error: str) -> Observation:
        assert w.task is not None
        tree = await w.page.locator("body").aria_snapshot(
            mode="ai", boxes=w.task.boxes, timeout=self.step_timeout_s * 1000
        )
        tree = _normalize_refs(tree, w)
        shot = None
        if self.screenshot:
            shot = _decode_png(await w.page.screenshot(type="png"))
        url = w.page.url
        return Observation(
            instruction=ascii_text(w.task.instruction, 1024),
            url=ascii_text(url, 1024),
            error=ascii_text(error, 1024),
            tree=ascii_text(tree, self.max_chars),
            screenshot=shot,
        )

    def page_screenshot(self, world: int = 0) -> np.ndarray:
        """uint8 ``[H, W, 3]`` screenshot of world ``world``'s page as it is now (the blank
        frame when the page is gone)."""
        w = self.worlds[world]
        if w.page is None or w.page.is_closed():
            return self.blank_screenshot()
        data = self.pool.run(w.page.screenshot(type="png"), timeout=self.step_timeout_s + 10)
        return _decode_png(data)

    def blank_screenshot(self) -> np.ndarray:
        return np.zeros((self.viewport[1], self.viewport[0], 3), np.uint8)

    # ------------------------------------------------------------------ acting
    async def _settle(self, w: World, op: str, docs_before: int, loads_before: int) -> None:
        """Let a navigation the action started finish before the page is read."""
        page = w.page
        if op in ("mouse_click", "drag", "press"):
            # Locator clicks wait for the navigations they start; raw input events don't. The
            # page's own Navigation API tells whether one started (see _NAV_WATCH); then we
            # wait for the new document (ours, or a browser error page for a blocked URL).
            try:
                navigating = await page.evaluate(
                    "() => new Promise(r => setTimeout(() => r(!!window.__envgymNavigating), 0))"
                )
            except Exception:  # the old document went away mid-call: a navigation
                navigating = True
            if navigating:
                for _ in range(40):
                    if w.crashed or w.doc_loads > loads_before:
                        break
                    assert w.loaded is not None
                    w.loaded.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(w.loaded.wait(), 0.25)
        deadline = 40
        while w.doc_requests > w.doc_loads and deadline > 0 and not w.crashed:
            assert w.loaded is not None
            w.loaded.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(w.loaded.wait(), 0.25)
            deadline -= 1
        if w.doc_requests > docs_before or w.doc_loads > loads_before or op == "go_back":
            with contextlib.suppress(Exception):
                await page.wait_for_load_state("domcontentloaded")

    async def _act(self, w: World, a: BrowserAction) -> None:
        page = w.page
        if a.ref is not None and a.ref not in w.refs:
            raise _ActionFailed(f"no element {a.ref} in the current tree")
        loc = page.locator(f"aria-ref={w.refs[a.ref]}") if a.ref else None
        t = self.action_timeout_ms
        op = a.op
        if op == "noop":
            return
        if op == "click":
            await loc.click(timeout=t)
        elif op == "fill":
            await loc.fill(a.text or "", timeout=t)
        elif op == "select":
            await loc.select_option(label=a.text, timeout=t)
        elif op == "check":
            await loc.check(timeout=t)
        elif op == "uncheck":
            await loc.uncheck(timeout=t)
        elif op == "press":
            await loc.press(a.text or "", timeout=t)
        elif op == "scroll":
            # scrollBy, not a wheel event: it lands at once, so the next tree is deterministic.
            await page.evaluate("([x, y]) => window.scrollBy(x, y)", [a.x, a.y])
        elif op == "go_back":
            if w.navs <= 1:
                raise _ActionFailed("no previous page in this episode")
            await page.go_back(wait_until="domcontentloaded")
        elif op == "mouse_click":
            await page.mouse.click(a.x, a.y)
        elif op == "drag":
            await page.mouse.move(a.x, a.y)
            await page.mouse.down()
            await page.mouse.move(a.x2, a.y2, steps=4)
            await page.mouse.up()
        else:  # pragma: no cover - the parser only produces known ops
            raise _ActionFailed(f"unknown op {op}")

    async def _step_world(self, w: World, action: BrowserAction | ParseError) -> StepResult:
        assert w.task is not None
        w.steps += 1
        kind, msg, fault = "", "", ""
        if isinstance(action, ParseError):
            kind, msg = "parse", f"could not parse the action: {action}"
        else:
            navs_before, depth_before = w.doc_requests, w.navs
            try:
                await asyncio.wait_for(self._act_and_settle(w, action), self.step_timeout_s)
            except _ActionFailed as e:
                kind, msg = "action", str(e)
            except TimeoutError:
                fault = f"step timed out after {self.step_timeout_s:g} s"
            except Exception as e:
                if w.crashed or w.page is None or w.page.is_closed():
                    fault = "page crashed"
                elif not _browser_alive(w):
                    fault = "browser process died"
                else:
                    kind, msg = "action", _short_error(e)
            if action.op == "go_back" and not kind and not fault:
                w.navs = depth_before - 1
            elif w.doc_requests > navs_before:
                w.navs += w.doc_requests - navs_before
        if not fault and w.crashed:
            fault = "page crashed"
        if not fault:
            fault = await self._observe_or_fault(w, msg)
        if fault:
            w.broken = True
            assert w.obs is not None
            w.obs = Observation(
                w.obs.instruction,
                w.obs.url,
                ascii_text(f"fault: {fault}", 1024),
                w.obs.tree,
                w.obs.screenshot,
            )
            return StepResult(False, False, True, "fault", f"fault: {fault}", fault)
        j = w.task.judge()
        limit = self.max_steps or w.task.max_steps
        truncated = (not j.done) and w.steps >= limit
        return StepResult(j.success, j.done, truncated, kind, msg)

    async def _observe_or_fault(self, w: World, msg: str) -> str:
        """Read the page into ``w.obs``; return a fault reason, or ``""``.

        A read that fails on a live page (a navigation the page started itself replaced the
        document mid-read) is retried once after the page settles.
        """
        for attempt in range(2):
            try:
                w.obs = await asyncio.wait_for(self._observe(w, msg), self.step_timeout_s)
                return ""
            except TimeoutError:
                return f"observation timed out after {self.step_timeout_s:g} s"
            except Exception:
                if w.crashed:
                    return "page crashed"
                if not _browser_alive(w):
                    return "browser process died"
                if attempt == 0:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(w.page.wait_for_load_state("load"), 2)
        return "page could not be read"

    async def _act_and_settle(self, w: World, a: BrowserAction) -> None:
        docs_before, loads_before = w.doc_requests, w.doc_loads
        await self._act(w, a)
        await self._settle(w, a.op, docs_before, loads_before)

    def step(self, actions: Sequence[BrowserAction | ParseError]) -> list[StepResult]:
        """Carry out one action per world, concurrently; read every page; judge every task."""

        async def one(w: World, a: BrowserAction | ParseError) -> StepResult:
            try:
                return await self._step_world(w, a)
            except Exception as e:  # never let one world take the batch down
                w.broken = True
                return StepResult(False, False, True, "fault", f"fault: {e}", str(e))

        async def go() -> list[StepResult]:
            return list(
                await asyncio.gather(
                    *(one(w, a) for w, a in zip(self.worlds, actions, strict=True))
                )
            )

        return self.pool.run(go(), timeout=self.step_timeout_s * 3 + 30)

    # ------------------------------------------------------------------ oracle
    def oracle(self) -> list[str]:
        """Each world's oracle command for its current page."""
        out = []
        for w in self.worlds:
            if w.task is None or w.obs is None:
                out.append("noop")
                continue
            out.append(w.task.oracle(PageView(w.obs.url, w.obs.tree)))
        return out

    def close(self) -> None:
        """Close the worlds' contexts (the shared browser stays up for other envs)."""
        if self.closed:
            return
        self.closed = True

        async def go() -> None:
            await asyncio.gather(*(self._close_world(w, recycle=True) for w in self.worlds))

        with contextlib.suppress(Exception):
            self.pool.run(go(), timeout=30)


def _normalize_refs(tree: str, w: World) -> str:
    """Renumber refs ``e1, e2, ...`` in tree order and remember the mapping for acting.

    Playwright's own refs depend on the page's history (a counter per document and an
    ``f<n>`` frame prefix after navigations); numbering by position makes the tree, and so the
    target, a function of the page's content alone.
    """
    mapping: dict[str, str] = {}

    def renumber(m: re.Match[str]) -> str:
        shown = f"e{len(mapping) + 1}"
        mapping[shown] = m.group(1)
        return f"[ref={shown}]"

    tree = _REF_RE.sub(renumber, tree)
    w.refs = mapping
    return tree


def with_url(body: str, url: str) -> str:
    """``body`` with a script that puts ``url`` in the address bar (``history.replaceState``),
    placed inside ``<head>`` so the page keeps its standards mode."""
    script = f"<script>history.replaceState(null, '', {json.dumps(url)})</script>"
    k = body.find("<head>")
    if k < 0:
        return script + body
    k += len("<head>")
    return body[:k] + script + body[k:]


class _ActionFailed(Exception):
    """The browser could not carry out an action (reported, not a fault)."""


def _browser_alive(w: World) -> bool:
    try:
        return bool(w.context is not None and w.context.browser.is_connected())
    except Exception:
        return False


def _short_error(e: BaseException) -> str:
    """The first line of a Playwright error, without the API prefix (deterministic text)."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return re.sub(r"^\w+\.\w+: ", "", first)[:300]


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
