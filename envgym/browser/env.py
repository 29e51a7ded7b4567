"""Gymnasium faces of the browser engine: the vector env (N pages) and the single env (one).

The single env is the vector env at ``num_envs=1`` (the same engine, the same code path), so
a single env seeded ``s + i`` behaves exactly like world ``i`` of a vector env seeded ``s``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from envgym.browser.actions import BrowserActionSpace, ParseError, parse_action, tool_schemas
from envgym.browser.engine import ERROR_CODES, BrowserEngine, Observation
from envgym.browser.tasks import task_factory
from envgym.browser.tasks.base import Task
from envgym.core import StepOutput, TorchVectorEnv
from envgym.core.single import SingleEnv
from envgym.core.vector import ActionRule, world_names

TEXT_CHARSET = frozenset(chr(c) for c in range(32, 127)) | {"\n"}
VOCAB_SIZE = 257
"""Token ids: 0 is padding, byte ``b`` of the UTF-8 (here ASCII) text is ``b + 1``."""

REWARD_WEIGHTS = {"goal": 1.0, "step_cost": 0.01, "invalid_action": 0.05}


def encode_text(text: str, max_tokens: int) -> np.ndarray:
    """Byte-level token ids of ``text`` (``b + 1``), cut or zero-padded to ``max_tokens``."""
    raw = np.frombuffer(text.encode("utf-8")[:max_tokens], dtype=np.uint8)
    out = np.zeros(max_tokens, dtype=np.int32)
    out[: raw.shape[0]] = raw.astype(np.int32) + 1
    return out


def decode_tokens(tokens: Any) -> str:
    """Inverse of :func:`encode_text` (padding dropped)."""
    arr = np.asarray(tokens.cpu() if torch.is_tensor(tokens) else tokens).reshape(-1)
    arr = arr[arr > 0] - 1
    return bytes(arr.astype(np.uint8).tolist()).decode("utf-8", errors="replace")


def unwrap_action(action: Any) -> Any:
    """A 0-d NumPy array (what batching a ``Text`` space gives) as its item; else ``action``."""
    if isinstance(action, np.ndarray) and action.shape == ():
        return action.item()
    return action


def action_items(
    actions: Any, num_envs: int, worlds: Sequence[int] | np.ndarray | None = None
) -> list[Any]:
    """The browser's bad-input rule for a batch (``docs/browser.md``): a sequence of
    ``num_envs`` strings or dicts (``unwrap_action`` applied), else ``ValueError`` before any
    world steps, naming the worlds (rows, or ``worlds[row]``) that hold something else."""
    if isinstance(actions, str | bytes | dict) or torch.is_tensor(actions):
        raise ValueError(
            f"expected a sequence of {num_envs} actions (strings or dicts), got "
            f"{type(actions).__name__}"
        )
    if isinstance(actions, np.ndarray) and actions.ndim != 1:
        raise ValueError(f"expected {num_envs} actions, got an array {actions.shape}")
    try:
        n = len(actions)
    except TypeError:
        raise ValueError(
            f"expected a sequence of {num_envs} actions, got {type(actions).__name__}"
        ) from None
    if n != num_envs:
        raise ValueError(f"expected {num_envs} actions, got {n}")
    items = [unwrap_action(a) for a in actions]
    bad = [i for i, a in enumerate(items) if not isinstance(a, str | dict)]
    if bad:
        raise ValueError(
            f"actions must be strings or dicts; worlds {world_names(bad, worlds)} got "
            f"{[type(items[i]).__name__ for i in bad[:8]]}"
        )
    return items


class BrowserVectorEnv(TorchVectorEnv):
    """N browser pages stepped together: skill tasks or a company's self-service portal.

    ## Description
    Each world is a Chromium page (its own browser context) showing a web app generated from
    the task's ``(seed, difficulty)``; the app's records live in Python and are fresh each
    episode. Pages come from a fake origin (``http://envgym.test``) through Playwright request
    routing; every other request is aborted before it leaves the browser.

    ## Observation, a ``Dict``
    - ``tokens``: int32 ``[max_tokens]`` (torch, on ``device``): byte-level token ids
      (``byte + 1``, 0 = padding) of ``instruction \\n url \\n error \\n tree``.
    - ``instruction``, ``url``, ``error``, ``tree``: text (NumPy object arrays of ``str``): the
      task's instruction, the page URL, the last action's error (``""`` if none) and the
      accessibility tree (``aria_snapshot(mode="ai")``) with element refs ``[ref=e12]``.
    - ``screenshot`` (``screenshot=True`` only): uint8 ``[H, W, 3]``.

    ## Action
    One string per world (see :mod:`envgym.browser.actions`): ``click e12``, ``fill e5 text``,
    ``select e7 option``, ``check e3``, ``uncheck e3``, ``press e5 Enter``, ``scroll dx dy``,
    ``go_back``, ``mouse_click x y``, ``drag x y x2 y2``, ``noop``; or a structured dict
    ``{"op": ..., ...}``; or an OpenAI-style JSON tool call (schemas: :meth:`tool_schemas`).

    ## Reward (``info["reward_terms"]``)
    ``goal`` (+1 on the step the goal holds and the episode ends), ``step_cost`` (-0.01 every
    step), ``invalid_action`` (-0.05 when the action could not be parsed or carried out).

    ## Target
    ``info["next_obs_target"]``: int32 ``[max_tokens]``: the ``tokens`` of the next
    observation (the full next tree, not its diff: a diff depends on the previous tree, while
    the full tree is a function of o(t+1) alone, stays well defined across page loads and
    episode ends, and a model can still predict it as "copy + edit"). Computed before any
    auto-reset. Nothing in it is wall-clock or random noise: pages are generated from the seed
    and refs are assigned deterministically.

    ## Episode end
    Terminated when the task's judge says the episode is over (an answer submitted, the goal
    reached); truncated at the task's step limit (``max_steps``) or by a fault (step timeout,
    crashed page, dead browser): ``info["truncation_reason"]`` says which. SAME_STEP auto-reset.

    ## Arguments
    ``num_envs``, ``task`` (skill task name or ``"Portal"``), ``scenario`` (portal: phone
    scenario name), ``difficulty`` (0-4), ``device``, ``max_tokens`` (default 4096),
    ``max_steps`` (default per task), ``screenshot``, ``viewport``, ``action_timeout_ms``,
    ``step_timeout_s``, ``num_browsers`` (Chromium processes the worlds are spread over),
    ``executable_path`` / ``launch_args`` (default: ``ENVGYM_CHROMIUM`` or
    ``/usr/bin/chromium`` and :data:`envgym.browser.launch.DEFAULT_ARGS`).

    ## Snapshots
    ``get_state``/``set_state`` are not supported: a world's state includes a live renderer's
    DOM, which cannot be copied into another page (``supports_state_snapshots = False``).

    ## Version history
    - v0: initial release.
    """

    supports_state_snapshots = False

    def __init__(
        self,
        num_envs: int = 1,
        task: str | Callable[[int, int], Task] = "ClickButton",
        *,
        scenario: str | None = None,
        difficulty: int = 1,
        device: str | torch.device | None = "cpu",
        max_tokens: int = 4096,
        max_steps: int | None = None,
        screenshot: bool = False,
        viewport: Sequence[int] = (800, 600),
        action_timeout_ms: float = 2000,
        step_timeout_s: float = 10.0,
        num_browsers: int = 1,
        executable_path: str | None = None,
        launch_args: Sequence[str] | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        super().__init__(num_envs, device)
        if not 0 <= int(difficulty) <= 4:
            raise ValueError(f"difficulty must be in 0..4, got {difficulty}")
        opts: dict[str, Any] = {} if scenario is None else {"scenario": scenario}
        self.task_name = task if isinstance(task, str) else getattr(task, "name", "custom")
        make_task = task_factory(task, **opts)
        self.max_tokens = int(max_tokens)
        w, h = int(viewport[0]), int(viewport[1])
        self.engine = BrowserEngine(
            make_task,
            num_envs,
            difficulty=difficulty,
            max_steps=max_steps or max_episode_steps,
            screenshot=screenshot,
            viewport=(w, h),
            action_timeout_ms=action_timeout_ms,
            step_timeout_s=step_timeout_s,
            num_browsers=num_browsers,
            executable_path=executable_path,
            launch_args=launch_args,
        )
        text = spaces.Text(16384, min_length=0, charset=TEXT_CHARSET)
        obs_spaces: dict[str, spaces.Space] = {
            "tokens": spaces.Box(0, VOCAB_SIZE - 1, (self.max_tokens,), np.int32),
            "instruction": spaces.Text(1024, min_length=0, charset=TEXT_CHARSET),
            "url": spaces.Text(1024, min_length=0, charset=TEXT_CHARSET),
            "error": spaces.Text(1024, min_length=0, charset=TEXT_CHARSET),
            "tree": text,
        }
        if screenshot:
            obs_spaces["screenshot"] = spaces.Box(0, 255, (h, w, 3), np.uint8)
        self.single_observation_space = spaces.Dict(obs_spaces)
        self.single_action_space = BrowserActionSpace(width=w, height=h)
        self.single_target_space = spaces.Box(0, VOCAB_SIZE - 1, (self.max_tokens,), np.int32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.target_space = batch_space(self.single_target_space, self.num_envs)
        self.reward_term_names = tuple(REWARD_WEIGHTS)
        self._last_messages = [""] * self.num_envs

    # ------------------------------------------------------------------ engine hooks
    def _reset_worlds(self, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        idx = torch.nonzero(mask.cpu()).flatten().tolist()
        s = [None] * len(idx) if seeds is None else [int(seeds[i]) for i in idx]
        self.engine.reset(idx, s)

    def _convert_actions(self, actions: Any) -> list[Any]:  # type: ignore[override]
        """Parse one action per world (:func:`action_items` checks the batch first): a string
        or dict that does not parse becomes that world's in-band ``action_error`` (code 1)
        with the ``invalid_action`` penalty."""
        parsed: list[Any] = []
        for a in action_items(actions, self.num_envs):
            try:
                parsed.append(parse_action(a))
            except ParseError as e:
                parsed.append(e)
        return parsed

    def action_rule(self) -> ActionRule:
        """:func:`action_items` (see :meth:`TorchVectorEnv.action_rule`)."""
        return action_items

    def _step_worlds(self, actions: Any) -> StepOutput:
        results = self.engine.step(actions)
        dev = self.device
        success = torch.tensor([r.success for r in results], dtype=torch.bool, device=dev)
        term = torch.tensor([r.terminated for r in results], dtype=torch.bool, device=dev)
        trunc = torch.tensor([r.truncated for r in results], dtype=torch.bool, device=dev)
        invalid = torch.tensor(
            [r.error_kind in ("parse", "action") for r in results], dtype=torch.float32, device=dev
        )
        goal = (success & term).float() * REWARD_WEIGHTS["goal"]
        terms = {
            "goal": goal,
            "step_cost": torch.full((self.num_envs,), -REWARD_WEIGHTS["step_cost"], device=dev),
            "invalid_action": -REWARD_WEIGHTS["invalid_action"] * invalid,
        }
        reward = terms["goal"] + terms["step_cost"] + terms["invalid_action"]
        codes = torch.tensor(
            [ERROR_CODES[r.error_kind] for r in results], dtype=torch.int64, device=dev
        )
        target = self._tokens()
        return StepOutput(
            reward=reward,
            terminated=term,
            truncated=trunc,
            next_obs_target=target,
            reward_terms=terms,
            success=success,
            action_error=codes,
            extra={
                "action_error_message": np.array([r.error for r in results], dtype=object),
                "truncation_reason": np.array(
                    [r.fault or ("time_limit" if r.truncated else "") for r in results],
                    dtype=object,
                ),
            },
        )

    def _obs_list(self) -> list[Observation]:
        return [w.obs for w in self.engine.worlds]  # type: ignore[misc]

    def _tokens(self) -> torch.Tensor:
        arr = np.stack([encode_text(o.text(), self.max_tokens) for o in self._obs_list()])
        return torch.from_numpy(arr).to(self.device)

    def _observe(self) -> dict[str, Any]:
        obs_list = self._obs_list()
        out: dict[str, Any] = {"tokens": self._tokens()}
        for k in ("instruction", "url", "error", "tree"):
            out[k] = np.array([getattr(o, k) for o in obs_list], dtype=object)
        if self.engine.screenshot:
            shots = [
                o.screenshot if o.screenshot is not None else self.engine.blank_screenshot()
                for o in obs_list
            ]
            out["screenshot"] = torch.from_numpy(np.stack(shots)).to(self.device)
        return out

    def target_from_obs(self, obs: dict[str, Any]) -> torch.Tensor:
        return obs["tokens"].clone() if torch.is_tensor(obs["tokens"]) else obs["tokens"]

    # ------------------------------------------------------------------ extras
    def oracle_action(self) -> list[str]:
        """One command string per world that makes progress towards its goal."""
        return self.engine.oracle()

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The actions as OpenAI-style function tool schemas."""
        return tool_schemas()

    def get_state(self, worlds: Any = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError(
            "browser worlds cannot be snapshotted: their state includes a live page's DOM"
        )

    def set_state(self, state: Any, worlds: Any = None) -> None:
        raise NotImplementedError(
            "browser worlds cannot be snapshotted: their state includes a live page's DOM"
        )

    def close(self, **kwargs: Any) -> None:
        self.engine.close()


class BrowserEnv(SingleEnv):
    """One browser page: :class:`BrowserVectorEnv` at ``num_envs=1`` (see its docstring for
    the observation, action, reward and target).

    ``step`` takes a command string, a structured dict or a JSON tool call; ``info`` has
    ``next_obs_target`` (NumPy int32), ``reward_terms``, ``success``, ``action_error`` (the
    message, ``""`` when the action was carried out) and ``truncation_reason``.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self.check_render_mode(render_mode)
        vec = BrowserVectorEnv(1, **kwargs)
        super().__init__(vec, render_mode)
        self.vec: BrowserVectorEnv = vec
        self._obs: dict[str, Any] | None = None

    # ------------------------------------------------------------------ SingleEnv hooks
    def _observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        self._obs = super()._observation(obs)
        return self._obs

    def _reset_extra(self, obs: Any) -> dict[str, Any]:
        return {"truncation_reason": "", "task": self.vec.task_name}

    def _to_vector_action(self, action: Any) -> list[Any]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        return [unwrap_action(action)]

    def _action_error(self, info: dict[str, Any]) -> str:
        return str(info["action_error_message"][0])

    def _step_extra(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"truncation_reason": str(info["truncation_reason"][0]), "task": self.vec.task_name}

    def oracle_action(self) -> str:
        """A command string that makes progress towards the goal from the current page."""
        return self.vec.oracle_action()[0]

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The actions as OpenAI-style function tool schemas."""
        return tool_schemas()

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: the observation as text (instruction, URL, error line, page tree);
        ``"rgb_array"``: a screenshot of the page (after an episode's last step, the next
        episode's first page: the world resets on the step that ends it)."""
        if self.render_mode == "ansi" and self._obs is not None:
            o = self._obs
            return f"{o['instruction']}\n{o['url']}\n{o['error']}\n{o['tree']}"
        if self.render_mode == "rgb_array":
            return self.vec.engine.page_screenshot(0)
        return None
