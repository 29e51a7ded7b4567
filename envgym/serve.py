"""An envgym id as an OpenEnv server: ``envgym serve ID`` (needs ``pip install 'envgym[serve]'``).

The server is OpenEnv's own (``openenv-core``: :class:`openenv.core.env_server.HTTPEnvServer`
on FastAPI and uvicorn), so any OpenEnv client speaks to it. Each WebSocket connection to
``/ws`` is one **session** with its own env instance, seed and state; messages are OpenEnv's
``{"type": "reset" | "step" | "state" | "close", "data": {...}}``.

What envgym adds to OpenEnv's server:

- :class:`ServedEnv` runs one envgym env per session, all of its calls on one thread of its own
  (Playwright pages are bound to the thread that made them), under a **per-step deadline**: a
  reset or step that takes longer is answered with a ``DEADLINE_EXCEEDED`` error, the stuck env
  is abandoned and the session's next reset builds a fresh one.
- Every transition is sent whole: ``obs``, ``reward``, ``terminated``, ``truncated`` and every
  ``info`` key (``next_obs_target``, ``reward_terms``, ``success``, ``action_error``,
  ``action_mask`` where the family has one, ...) in the encoding of :mod:`envgym.core.wire`.
- Reset data: ``seed``, ``options``, ``env_id`` (must be the served id), ``env_kwargs`` (merged
  over the server's own kwargs; a change rebuilds the session's env), ``oracle`` (send
  ``oracle_action()`` with every transition) and ``describe_only`` (build the env and send its
  spaces without resetting it; the client's constructor uses it).
- Bounded requests: a WebSocket message or HTTP body over ``max_message_bytes`` is refused
  (WebSocket close code 1009, HTTP 413).
- Errors are answered, never fatal: a bad message gets OpenEnv's error response
  (``INVALID_JSON``, ``VALIDATION_ERROR``, ``UNKNOWN_TYPE``, ``CAPACITY_REACHED``); an action the
  env rejects gets ``EXECUTION_ERROR`` with the env's own error type and message
  (``"ValueError: ..."``); the session and the server keep serving.
- Idle sessions are reaped after ``idle_timeout_s`` (OpenEnv's reaper), and a dropped connection
  closes its session at once. A session with a call running is never reaped (the reaper looks
  again later), and an env is never closed under a running call: a close that arrives during
  one takes effect when it returns. Every call on a session the reaper closed is answered with
  ``EXECUTION_ERROR``, message ``SESSION_EXPIRED: ...``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from envgym.core.wire import from_wire, space_to_wire, to_wire

try:
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, Observation, State
    from pydantic import Field
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "envgym's env server needs the serve extra: pip install 'envgym[serve]'"
    ) from e

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
"""Largest request accepted (1 MiB): a WebSocket message or an HTTP body."""

DEFAULT_STEP_TIMEOUT_S = 60.0
"""Per-step (and per-reset) deadline in seconds."""

DEFAULT_IDLE_TIMEOUT_S = 300.0
"""A session with no message for this long is closed by the reaper."""

DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
"""Error message prefix of a reset or step that ran past the per-step deadline."""

SESSION_EXPIRED = "SESSION_EXPIRED"
"""Error message prefix of a call on a session the server closed (the idle reaper)."""


class EnvgymAction(Action):
    """One envgym action on the wire."""

    action: Any = Field(description="the env's action, encoded by envgym.core.wire.to_wire")


class EnvgymObservation(Observation):
    """One envgym transition on the wire (``done`` and ``reward`` are OpenEnv's own fields)."""

    obs: Any = Field(default=None, description="the env's observation (wire-encoded)")
    terminated: bool = Field(default=False, description="the episode ended in the MDP")
    truncated: bool = Field(default=False, description="the episode was cut (time limit)")
    info: dict[str, Any] = Field(default_factory=dict, description="every info key, encoded")
    oracle_action: Any = Field(default=None, description="oracle_action() if requested")
    spaces: dict[str, Any] | None = Field(
        default=None, description="observation/action/target spaces (reset replies only)"
    )


class ServedEnvError(RuntimeError):
    """An env call failed; the message names the env's own error type."""


class ServedEnv(Environment):
    """One session's envgym env behind OpenEnv's :class:`Environment` interface.

    Args:
        env_id: the served id.
        env_kwargs: the server's kwargs for ``gym.make``; a client's ``env_kwargs`` go over them.
        step_timeout_s: the per-step deadline.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.env_id = env_id
        self.server_kwargs = dict(env_kwargs or {})
        self.step_timeout_s = step_timeout_s
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envgym-session")
        self._epoch = 0
        """Which env thread is current: a call abandoned past its deadline (its thread left
        behind, :meth:`_abandon`) belongs to an older epoch and, if it ever returns, changes
        nothing (:meth:`_commit`)."""
        self._env: Any = None
        self._kwargs: dict[str, Any] | None = None
        self._oracle = False
        self._state = State(episode_id=None, step_count=0)
        # _lock guards _calls (calls running) and _closing (no new calls): a close that finds
        # calls running leaves releasing the env to the last of them.
        self._lock = threading.Lock()
        self._calls = 0
        self._closing = False
        self._released = False

    # ------------------------------------------------------------------ env thread

    def _make(self, kwargs: dict[str, Any], epoch: int) -> Any:
        """The session's env for ``kwargs`` (the current one, or a new one replacing it)."""
        import gymnasium as gym

        import envgym  # noqa: F401  (registers the ids)

        if self._env is not None and kwargs == self._kwargs:
            return self._env
        if self._env is not None:
            self._env.close()
            self._commit(epoch, _env=None)
        env = gym.make(self.env_id, **kwargs)
        try:
            self._commit(epoch, _env=env, _kwargs=kwargs)
        except _Abandoned:
            env.close()
            raise
        return env

    def _commit(self, epoch: int, **fields: Any) -> None:
        """Set session fields from a call of env thread ``epoch``, unless that call was
        abandoned (then :class:`_Abandoned`: whatever it returns is dropped)."""
        with self._lock:
            if epoch != self._epoch:
                raise _Abandoned
            for k, v in fields.items():
                setattr(self, k, v)

    def _spaces(self) -> dict[str, Any]:
        env = self._env
        return {
            "observation_space": space_to_wire(env.observation_space),
            "action_space": space_to_wire(env.action_space),
            "target_space": space_to_wire(getattr(env.unwrapped, "target_space", None)),
        }

    def _oracle_action(self) -> Any:
        return to_wire(self._env.unwrapped.oracle_action()) if self._oracle else None

    def _reset(self, data: dict[str, Any], epoch: int) -> EnvgymObservation:
        env_id = data.get("env_id")
        if env_id is not None and env_id != self.env_id:
            raise ValueError(f"this server serves {self.env_id!r}, not {env_id!r}")
        client_kwargs = data.get("env_kwargs") or {}
        if not isinstance(client_kwargs, dict):
            raise ValueError("env_kwargs must be a JSON object")
        env = self._make({**self.server_kwargs, **client_kwargs}, epoch)
        self._commit(epoch, _oracle=bool(data.get("oracle", False)))
        if data.get("describe_only"):
            return EnvgymObservation(spaces=self._spaces())
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        obs, info = env.reset(seed=seed, options=from_wire(data.get("options")))
        self._commit(epoch, _state=State(episode_id=data.get("episode_id"), step_count=0))
        return EnvgymObservation(
            obs=to_wire(obs),
            info=to_wire(info),
            oracle_action=self._oracle_action(),
            spaces=self._spaces(),
        )

    def _step(self, action: Any, epoch: int) -> EnvgymObservation:
        env = self._env
        if env is None:
            raise RuntimeError("reset the session before stepping it")
        obs, reward, terminated, truncated, info = env.step(from_wire(action))
        st = self._state
        self._commit(epoch, _state=State(episode_id=st.episode_id, step_count=st.step_count + 1))
        done = bool(terminated or truncated)
        return EnvgymObservation(
            obs=to_wire(obs),
            reward=float(reward),
            done=done,
            terminated=bool(terminated),
            truncated=bool(truncated),
            info=to_wire(info),
            oracle_action=None if done else self._oracle_action(),
        )

    # ------------------------------------------------------------------ session lifetime

    def _begin(self) -> None:
        """Count a call in, or refuse it if the session was closed."""
        with self._lock:
            if self._closing:
                raise ServedEnvError(
                    f"{SESSION_EXPIRED}: the server closed this session (idle past its "
                    "timeout); open a new session"
                )
            self._calls += 1

    def _end(self) -> None:
        """Count a call out; the last call of a closing session releases the env."""
        with self._lock:
            self._calls -= 1
            release = self._closing and self._calls == 0
        if release:
            self._release(wait=False)

    def expire_if_idle(self) -> bool:
        """Close the session unless a call on it is running (the idle reaper asks this).

        Returns:
            ``True`` if the session is now closing (its env is released by :meth:`close`);
            ``False`` if a call is running, and the session stays open.
        """
        with self._lock:
            if self._calls:
                return False
            self._closing = True
            return True

    def _release(self, wait: bool) -> None:
        """Close the env on its own thread, once; ``wait`` for it at most the deadline."""
        with self._lock:
            if self._released:
                return
            self._released = True
            env, self._env = self._env, None
        if env is not None:
            future = self._thread.submit(env.close)
            if wait:
                with contextlib.suppress(Exception):  # best effort: resources go with the process
                    future.result(timeout=self.step_timeout_s)
        self._thread.shutdown(wait=False)

    # ------------------------------------------------------------------ event loop

    async def _call(self, fn: Any, *args: Any) -> EnvgymObservation:
        self._begin()
        try:
            return await self._run(fn, *args)
        finally:
            self._end()

    async def _run(self, fn: Any, *args: Any) -> EnvgymObservation:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._thread, fn, *args, self._epoch)
        try:
            return await asyncio.wait_for(future, self.step_timeout_s)
        except TimeoutError:
            raise self._abandon() from None
        except ServedEnvError:
            raise
        except Exception as e:  # the env's own documented error, named for the client
            raise ServedEnvError(f"{type(e).__name__}: {e}") from e

    def _abandon(self) -> ServedEnvError:
        """The env's thread is stuck past the deadline: leave it (and the env it owns) behind;
        a call of it that returns later changes nothing (a new epoch); the next reset builds a
        fresh env on a fresh thread. Returns the client's error."""
        with self._lock:
            self._epoch += 1
            stuck, self._env, self._kwargs = self._thread, None, None
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envgym-session")
        stuck.shutdown(wait=False, cancel_futures=True)
        return ServedEnvError(
            f"{DEADLINE_EXCEEDED}: the env call ran past {self.step_timeout_s:g} s; "
            "reset the session"
        )

    async def reset_async(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> EnvgymObservation:
        """Reset (OpenEnv reset message); see the module docstring for the data it reads."""
        return await self._call(self._reset, {"seed": seed, "episode_id": episode_id, **kwargs})

    async def step_async(
        self, action: EnvgymAction, timeout_s: float | None = None, **kwargs: Any
    ) -> EnvgymObservation:
        """Step (OpenEnv step message) under the per-step deadline."""
        return await self._call(self._step, action.action)

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> EnvgymObservation:
        """Synchronous reset (OpenEnv's stateless HTTP ``/reset``)."""
        return self._call_sync(self._reset, {"seed": seed, "episode_id": episode_id, **kwargs})

    def step(
        self, action: EnvgymAction, timeout_s: float | None = None, **kwargs: Any
    ) -> EnvgymObservation:
        """Synchronous step (OpenEnv's stateless HTTP ``/step``)."""
        return self._call_sync(self._step, action.action)

    def _call_sync(self, fn: Any, *args: Any) -> EnvgymObservation:
        """:meth:`_call` for the synchronous face: the same deadline and the same errors."""
        self._begin()
        try:
            future = self._thread.submit(fn, *args, self._epoch)
            return future.result(self.step_timeout_s)
        except concurrent.futures.TimeoutError:
            raise self._abandon() from None
        except ServedEnvError:
            raise
        except Exception as e:  # the env's own documented error, named for the client
            raise ServedEnvError(f"{type(e).__name__}: {e}") from e
        finally:
            self._end()

    @property
    def state(self) -> State:
        """Episode id and step count (read without touching the env)."""
        return self._state

    def close(self) -> None:
        """Refuse further calls and close the env on its own thread (a stuck thread is not
        waited for); with a call running, the env is closed when that call returns."""
        with self._lock:
            self._closing = True
            if self._calls:
                return
        self._release(wait=True)

    @property
    def is_open(self) -> bool:
        """Whether the session still takes calls (neither closed nor expired)."""
        return not self._closing


class _Abandoned(Exception):
    """A call of an abandoned env thread tried to change the session (it is dropped)."""


class _BodyLimit:
    """ASGI middleware: HTTP bodies over ``limit`` bytes get 413 (WebSocket messages are
    bounded by uvicorn's ``ws_max_size``); a WebSocket client that left first is not an error."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            from starlette.websockets import WebSocketDisconnect

            with contextlib.suppress(WebSocketDisconnect):  # the client left first
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(send)
                return
        seen = 0

        async def bounded_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, bounded_receive, send)
        except _TooLarge:
            await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        body = b'{"detail": "request body larger than %d bytes"}' % self.limit
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    max_sessions: int = 64,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> Any:
    """The ASGI app serving ``env_id`` (OpenEnv's routes with envgym's limits).

    Returns:
        ``(asgi_app, env_server)``: the app to run and OpenEnv's :class:`HTTPEnvServer` behind
        it (its sessions and capacity).

    Args:
        env_id: a registered envgym id.
        env_kwargs: ``gym.make`` kwargs of every session (a client's go over them).
        max_sessions: concurrent sessions; one more gets ``CAPACITY_REACHED``.
        idle_timeout_s: sessions idle this long are closed.
        step_timeout_s: the per-step deadline.
        max_message_bytes: the largest HTTP body accepted.
    """
    import gymnasium as gym
    from fastapi import FastAPI
    from openenv.core.env_server.http_server import HTTPEnvServer
    from openenv.core.env_server.types import ConcurrencyConfig

    import envgym  # noqa: F401  (registers the ids)

    if env_id not in gym.registry:
        raise gym.error.UnregisteredEnv(f"{env_id!r} is not a registered env id")

    def factory() -> ServedEnv:
        return ServedEnv(env_id, env_kwargs, step_timeout_s)

    app = FastAPI(title=f"envgym: {env_id}", description="OpenEnv server of an envgym env")
    server = _server_class(HTTPEnvServer)(
        factory,
        EnvgymAction,
        EnvgymObservation,
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=max_sessions, session_timeout=idle_timeout_s
        ),
    )
    server.register_routes(app)
    return _BodyLimit(app, max_message_bytes), server


def _server_class(base: type) -> type:
    """OpenEnv's ``HTTPEnvServer`` whose session teardown spares a session with a call running.

    OpenEnv's idle reaper measures idleness from the end of a session's last call, so a long
    call can outlast the timeout; it tears a session down through ``_destroy_session`` (as does
    a dropped connection, which can't happen mid-call: a connection's messages run one at a
    time). A session that :meth:`ServedEnv.expire_if_idle` refuses stays open; the reaper's next
    look, after the call refreshed its activity, finds it active.
    """

    class EnvgymHTTPServer(base):
        async def _destroy_session(self, session_id: str) -> None:
            env = self._sessions.get(session_id)
            if isinstance(env, ServedEnv) and not env.expire_if_idle():
                return
            await super()._destroy_session(session_id)

    return EnvgymHTTPServer


class EnvServer:
    """A running server on a background thread (tests, notebooks, benchmarks).

    ``with EnvServer("envgym/Phone-v0", port=0) as server: RemoteEnv(server.url, ...)``;
    ``port=0`` picks a free port. Keyword arguments go to :func:`create_app`.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        **app_kwargs: Any,
    ) -> None:
        import uvicorn

        asgi, self.env_server = create_app(
            env_id, env_kwargs, max_message_bytes=max_message_bytes, **app_kwargs
        )
        config = uvicorn.Config(
            asgi,
            host=host,
            port=port,
            log_level="warning",
            ws_max_size=max_message_bytes,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    def start(self) -> EnvServer:
        """Start serving; returns once the socket is bound."""
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="envgym-serve")
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server did not start on {self.host}:{self.port}")
            threading.Event().wait(0.02)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def active_sessions(self) -> int:
        """The number of open sessions."""
        return self.env_server.active_sessions

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> EnvServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    **app_kwargs: Any,
) -> None:
    """Serve ``env_id`` in the foreground until interrupted (``envgym serve``)."""
    import uvicorn

    asgi, _server = create_app(
        env_id, env_kwargs, max_message_bytes=max_message_bytes, **app_kwargs
    )
    uvicorn.run(asgi, host=host, port=port, log_level="info", ws_max_size=max_message_bytes)


__all__ = [
    "DEADLINE_EXCEEDED",
    "SESSION_EXPIRED",
    "EnvServer",
    "EnvgymAction",
    "EnvgymObservation",
    "ServedEnv",
    "ServedEnvError",
    "create_app",
    "serve",
]
