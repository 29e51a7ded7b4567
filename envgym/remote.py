"""A served envgym env as a Gymnasium env: :class:`RemoteEnv` (sync) and :class:`AsyncRemoteEnv`.

Both are OpenEnv clients (subclasses of ``openenv-core``'s :class:`EnvClient`, WebSocket
``/ws``) of a server started with ``envgym serve ID`` (:mod:`envgym.serve`). Each client is one
session on the server with its own env, seed and state::

    env = RemoteEnv("http://127.0.0.1:8000", env_id="envgym/Phone-v0", scenario="isp_bill_discount")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())

Transitions are the in-process env's: ``info`` holds every key the env wrote
(``next_obs_target``, ``reward_terms``, ``success``, ``action_error``, ``action_mask``, ...);
arrays come back as NumPy arrays. An error the server answers (the env's own error, a bad
request, a deadline) raises :class:`RemoteEnvError` with OpenEnv's error code; the session
stays usable.

For trainers that run many episodes at once, :class:`AsyncRemoteEnv` has the same methods as
coroutines (``await env.reset(seed=s)``, ``await env.step(a)``); ``asyncio.gather`` over many
of them runs their episodes concurrently on the server.
"""

from __future__ import annotations

import contextlib
from typing import Any

import gymnasium as gym

from envgym.core.wire import from_wire, space_from_wire, to_wire

try:
    from openenv.core.client_types import StepResult
    from openenv.core.env_client import EnvClient
    from openenv.core.env_server.types import State
    from openenv.core.sync_client import SyncEnvClient
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("envgym.remote needs the serve extra: pip install 'envgym[serve]'") from e


class RemoteEnvError(RuntimeError):
    """The server answered with an error.

    Attributes:
        code: OpenEnv's error code (``EXECUTION_ERROR`` for an error of the env, whose message
            starts with the env's own error type, e.g. ``"ValueError: ..."``, or with
            ``DEADLINE_EXCEEDED`` / ``SESSION_EXPIRED`` (the idle reaper closed the session);
            ``VALIDATION_ERROR``, ``INVALID_JSON``, ``CAPACITY_REACHED``, ...).
        data: the whole error payload.
    """

    def __init__(self, code: str, message: str, data: dict[str, Any]) -> None:
        super().__init__(f"{message} (code: {code})")
        self.code = code
        self.data = data


Transition = tuple[Any, float, bool, bool, dict[str, Any]]


class AsyncRemoteEnv(EnvClient):
    """The async face: one session on an envgym server.

    Args:
        url: the server, ``http://host:port`` (or ``ws://``).
        env_id: the env id the server must be serving (checked at connect).
        oracle: send ``oracle_action()`` with every transition (so :meth:`oracle_action` works).
        message_timeout_s: how long to wait for any one answer.
        env_kwargs: ``gym.make`` kwargs for this session, over the server's own.
    """

    def __init__(
        self,
        url: str,
        env_id: str,
        *,
        oracle: bool = False,
        message_timeout_s: float = 120.0,
        max_message_size_mb: float = 64.0,
        **env_kwargs: Any,
    ) -> None:
        super().__init__(
            url, message_timeout_s=message_timeout_s, max_message_size_mb=max_message_size_mb
        )
        self.env_id = env_id
        self.env_kwargs = env_kwargs
        self.oracle = oracle
        self.observation_space: gym.Space | None = None
        self.action_space: gym.Space | None = None
        self.target_space: gym.Space | None = None
        self._oracle_action: Any = None
        self._described = False

    # OpenEnv's EnvClient hooks ----------------------------------------------------------------

    def _step_payload(self, action: Any) -> dict[str, Any]:
        return {"action": to_wire(action)}

    def _parse_result(self, payload: dict[str, Any]) -> StepResult:
        return StepResult(
            observation=payload.get("observation", {}),
            reward=payload.get("reward"),
            done=bool(payload.get("done", False)),
        )

    def _parse_state(self, payload: dict[str, Any]) -> State:
        return State(**payload)

    async def _send_and_receive(self, message: dict[str, Any]) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        try:
            # The server may have said why before closing (e.g. CAPACITY_REACHED): read it.
            with contextlib.suppress(ConnectionClosed):
                await self._send(message)
            response = await self._receive()
        except ConnectionClosed as e:
            self._ws = None
            raise RemoteEnvError(
                "CONNECTION_CLOSED", f"the server closed the session: {e}", {}
            ) from e
        if response.get("type") == "error":
            data = response.get("data", {})
            raise RemoteEnvError(
                str(data.get("code", "UNKNOWN")), str(data.get("message", "error")), data
            )
        return response

    # Gymnasium-shaped API ------------------------------------------------------------------

    async def connect(self) -> AsyncRemoteEnv:
        """Open the session and read the env's spaces (the env is built on the server)."""
        if self._ws is not None and self._described:
            return self
        await super().connect()
        body = await self._reset_message({"describe_only": True})
        self._set_spaces(body.get("spaces"))
        self._described = True
        return self

    async def _reset_message(self, data: dict[str, Any]) -> dict[str, Any]:
        data = {"env_id": self.env_id, "env_kwargs": self.env_kwargs, "oracle": self.oracle, **data}
        response = await self._send_and_receive({"type": "reset", "data": data})
        return response.get("data", {}).get("observation", {})

    def _set_spaces(self, spaces: dict[str, Any] | None) -> None:
        if spaces:
            self.observation_space = space_from_wire(spaces["observation_space"])
            self.action_space = space_from_wire(spaces["action_space"])
            self.target_space = space_from_wire(spaces.get("target_space"))

    async def reset(  # type: ignore[override]  (Gymnasium's signature, not OpenEnv's)
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode; returns ``(obs, info)`` as the in-process env does."""
        await self.connect()
        body = await self._reset_message({"seed": seed, "options": to_wire(options)})
        self._set_spaces(body.get("spaces"))
        self._oracle_action = from_wire(body.get("oracle_action"))
        return from_wire(body.get("obs")), from_wire(body.get("info") or {})

    async def step(self, action: Any) -> Transition:  # type: ignore[override]
        """One step; returns ``(obs, reward, terminated, truncated, info)``."""
        await self.connect()
        response = await self._send_and_receive(
            {"type": "step", "data": self._step_payload(action)}
        )
        data = response.get("data", {})
        body = data.get("observation", {})
        self._oracle_action = from_wire(body.get("oracle_action"))
        return (
            from_wire(body.get("obs")),
            float(data.get("reward") or 0.0),
            bool(body.get("terminated", False)),
            bool(body.get("truncated", False)),
            from_wire(body.get("info") or {}),
        )

    def oracle_action(self) -> Any:
        """The env's oracle action in the current state (needs ``oracle=True``)."""
        if not self.oracle:
            raise RuntimeError("make the client with oracle=True to receive oracle actions")
        return self._oracle_action

    async def close(self) -> None:
        """Close the session (the server closes its env)."""
        await self.disconnect()


class RemoteEnv(gym.Env):
    """The sync face: a Gymnasium env whose world runs on an envgym server.

    ``env.unwrapped.oracle_action()`` works as on the in-process env when made with
    ``oracle=True``. Arguments are :class:`AsyncRemoteEnv`'s; the session opens at once (so
    the spaces are known) and closes with :meth:`close`.
    """

    metadata = {"render_modes": []}

    def __init__(self, url: str, env_id: str, *, oracle: bool = False, **kwargs: Any) -> None:
        self.client = AsyncRemoteEnv(url, env_id, oracle=oracle, **kwargs)
        self._sync = SyncEnvClient(self.client)
        self._sync.connect()
        self.observation_space = self.client.observation_space
        self.action_space = self.client.action_space
        self.target_space = self.client.target_space
        self.spec = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode on the server; ``seed`` reaches the served env."""
        super().reset(seed=seed)
        return self._sync.reset(seed=seed, options=options)

    def step(self, action: Any) -> Transition:
        """One step on the server."""
        return self._sync.step(action)

    def oracle_action(self) -> Any:
        """The served env's ``oracle_action()`` in the current state (``oracle=True``)."""
        return self.client.oracle_action()

    def close(self) -> None:
        """Close the session and the client's event-loop thread."""
        sync = getattr(self, "_sync", None)
        if sync is not None:
            self._sync = None
            sync.close()
