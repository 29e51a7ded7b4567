"""The vector env base every batched envgym engine builds on (ARCHITECTURE §2-3).

A family implements three things over an explicit state (a dict of tensors whose leading
dimension is the world index, in the spirit of Brax / MuJoCo Playground):

- ``_reset_worlds(mask, seeds)``: start a new episode in the masked worlds;
- ``_step_worlds(actions) -> StepOutput``: advance every world by one transition;
- ``_observe() -> obs``: the current observation of every world.

This base class adds the parts that must behave identically in every family: seeding world
``i`` with ``seed + i``, SAME_STEP auto-reset with ``final_obs``, episode
statistics, action conversion and validation, device handling, and per-world snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from envgym.core import keys
from envgym.core.errors import (
    SEED_MAX,
    InvalidActionError,
    InvalidResetError,
    InvalidStateError,
)

Obs = dict[str, torch.Tensor] | torch.Tensor

SMALL = 1024
"""Batches below this many worlds take the plain (fewest-op) path of the layout tricks of the
engines and of this module: at small sizes a step's cost is its op count, at large ones the
bytes it moves."""


ActionRule = Callable[..., Any]
"""A family's action rule (:meth:`TorchVectorEnv.action_rule`): ``rule(actions, num_envs,
worlds=None)`` returns the validated batch or raises the family's error."""


@dataclass
class StepOutput:
    """What an engine returns from one batched transition (before any auto-reset).

    Attributes:
        reward: float32 ``[B]``; equals the sum of ``reward_terms``.
        terminated: bool ``[B]``: the episode reached a terminal state.
        truncated: bool ``[B]``: the episode was cut short (time limit, fault).
        next_obs_target: the transition's predictable target, batched over ``target_space``.
        reward_terms: named float32 ``[B]`` components of the reward.
        success: bool ``[B]``: whether the goal holds in the world's state after the step.
        action_error: int64 ``[B]`` error code, 0 when the action was carried out.
        extra: further per-world tensors to pass through in ``info``.
        subgoals: named bool ``[B]``: sub-goals the episode has reached so far (before any
            auto-reset); reported per ended episode under ``info[keys.EPISODE]["subgoals"]``.
        returns: optional float32 ``[1 + T, B]``: ``reward`` and the ``T`` ``reward_terms``
            (in their order) as the rows of one tensor, for an engine that computes them so
            (``reward`` and the terms are then its rows): the episode sums take it in one
            addition instead of stacking the rows first.
        done: optional bool ``[B]``: ``terminated | truncated``, and ``any_done`` whether any
            entry is set, for an engine that has them already (the core computes them
            otherwise); they must agree with ``terminated`` and ``truncated``.
    """

    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    next_obs_target: torch.Tensor
    reward_terms: dict[str, torch.Tensor]
    success: torch.Tensor
    action_error: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    subgoals: dict[str, torch.Tensor] = field(default_factory=dict)
    returns: torch.Tensor | None = None
    done: torch.Tensor | None = None
    any_done: bool | None = None


def _clone_tree(x: Any) -> Any:
    if isinstance(x, StepOutput):
        return StepOutput(
            reward=x.reward.clone(),
            terminated=x.terminated.clone(),
            truncated=x.truncated.clone(),
            next_obs_target=x.next_obs_target.clone(),
            reward_terms={k: v.clone() for k, v in x.reward_terms.items()},
            success=x.success.clone(),
            action_error=x.action_error.clone(),
            extra={k: v.clone() for k, v in x.extra.items()},
            subgoals={k: v.clone() for k, v in x.subgoals.items()},
        )
    if isinstance(x, dict):
        return {k: _clone_tree(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(_clone_tree(v) for v in x)
    return x.clone() if torch.is_tensor(x) else x


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn a user's device argument into a ``torch.device`` with a clear error if unusable."""
    dev = torch.device(device if device is not None else "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={str(device)!r} was asked for but CUDA is not available on this machine; "
            "use device='cpu'."
        )
    return dev


class TorchVectorEnv(VectorEnv):
    """A Gymnasium ``VectorEnv`` whose worlds live in torch tensors on ``device``.

    Subclasses set ``single_observation_space``, ``single_action_space``,
    ``observation_space``, ``action_space``, ``single_target_space`` and implement the three
    engine methods. Everything returned (observations, rewards, flags, info values) is a torch
    tensor on ``self.device``; actions may be torch tensors or NumPy arrays.

    The explicit state lives in ``self.state`` (``dict[str, Tensor]``, leading dim ``num_envs``).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    autoreset_mode: AutoresetMode = AutoresetMode.SAME_STEP
    """Also an attribute, as Gymnasium's own vector envs have it (TorchRL reads it there)."""

    state: dict[str, torch.Tensor]
    single_target_space: Any

    def __init__(self, num_envs: int, device: str | torch.device | None = "cpu") -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.device = resolve_device(device)
        self.state = {}
        self._episode_return = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        self._episode_length = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._episode_terms: dict[str, torch.Tensor] = {}
        self._episode_sums = self._episode_return[None]
        self._sum_names: tuple[str, ...] = ()
        self._needs_reset = True

    # ------------------------------------------------------------------ engine hooks
    def _reset_worlds(self, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        """Start a new episode in worlds where ``mask``; ``seeds=None`` keeps each world's seed
        and moves to its next episode."""
        raise NotImplementedError

    def _step_worlds(self, actions: torch.Tensor) -> StepOutput:
        raise NotImplementedError

    def _observe(self) -> Obs:
        """The current observation of every world, as new tensors (never views of state)."""
        raise NotImplementedError

    def observe(self) -> Obs:
        """The current observation of every world, as :meth:`reset` and :meth:`step` return
        it (new tensors): for a caller that changed the state in place (a pinned scenario, a
        face resuming an auto-reset world)."""
        return self._observe()

    def target_from_obs(self, obs: Obs) -> torch.Tensor:
        """The ``next_obs_target`` encoding of a (batched) observation.

        A transition's target is this function of the true o(t+1); conformance checks use it
        to prove targets at episode ends come from ``final_obs``, never the reset observation.
        """
        raise NotImplementedError

    def _convert_actions(self, actions: Any) -> torch.Tensor:
        """Turn user actions into a validated tensor on ``self.device``.

        The default handles ``Discrete`` single action spaces with :func:`discrete_actions`;
        anything it refuses raises :class:`~envgym.core.errors.InvalidActionError` and nothing
        in the env changes. Families with other spaces override it (and :meth:`action_rule`).
        """
        from gymnasium import spaces

        space = self.single_action_space
        if not isinstance(space, spaces.Discrete):
            raise NotImplementedError("override _convert_actions for non-Discrete action spaces")
        return discrete_actions(actions, self.num_envs, space).to(self.device)

    def action_rule(self) -> ActionRule | None:
        """This env's bad-input rule for a batch of actions, callable without an env.

        A picklable ``rule(actions, num_envs, worlds=None)`` that checks a batch of any number
        of worlds exactly as :meth:`step` checks this env's (the same function
        :meth:`_convert_actions` calls), raising the same error, naming the bad rows as
        ``worlds[row]`` when ``worlds`` is given, and touching no env. A driver of several
        envs (``RayVectorEnv``) checks a whole batch with it before any of them steps.
        ``None``: no such rule (the default for non-``Discrete`` spaces); a family that
        overrides :meth:`_convert_actions` with another rule overrides this too.
        """
        from gymnasium import spaces

        space = self.single_action_space
        if not isinstance(space, spaces.Discrete):
            return None
        return partial(discrete_actions, space=space)

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Reset every world. ``seed=s`` seeds world ``i`` with ``s + i``; a list gives one seed
        per world; ``None`` draws fresh seeds from OS entropy (or continues if seeded before).

        ``options={"reset_mask": mask}`` resets only the masked worlds (partial reset).
        """
        # Everything is validated before any world changes (docs/reliability.md).
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        if options and "reset_mask" in options:
            mask = reset_mask(options["reset_mask"], self.num_envs).to(self.device)
        seeds: torch.Tensor | None
        if seed is None:
            if self._needs_reset:
                base = int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])
                seeds = base + torch.arange(self.num_envs, dtype=torch.int64, device=self.device)
            else:
                seeds = None
        else:
            seeds = world_seeds(seed, self.num_envs).to(self.device)
        self._reset_worlds(mask, seeds)
        self._episode_return[mask] = 0.0
        self._episode_length[mask] = 0
        for v in self._episode_terms.values():
            v[mask] = 0.0
        self._needs_reset = False
        return self._observe(), {}

    def step(
        self, actions: Any
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        act = self._convert_actions(actions)
        if self.fused_mode != "off":
            return self._step_fused(act)
        out = self._step_worlds(act)
        # SAME_STEP auto-reset: the ended worlds' true last observation goes to final_obs,
        # and obs already holds their next episode's first observation.
        # _observe() builds new tensors, so the pre-reset obs can be handed out without a copy.
        final_obs = obs = self._observe()
        done, any_done = out.done, out.any_done
        if done is None or any_done is None:
            done = out.terminated | out.truncated
            any_done = bool(done.any())
        if any_done:
            self._reset_worlds(done, None)
            obs = self._observe()
        return self._finish_step(out, final_obs, obs, done, any_done)

    def _finish_step(
        self,
        out: StepOutput,
        final_obs: Obs,
        obs: Obs,
        done: torch.Tensor | None = None,
        any_done: bool | None = None,
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Episode statistics and the info dict, shared by the plain and the fused step.

        ``done`` (``terminated | truncated``) and ``any_done`` (whether any world ended) are
        passed when the caller knows them already; without ``any_done`` (the fused step
        avoids host syncs) the ended worlds' sums are restarted unconditionally."""
        if done is None:
            done = out.terminated | out.truncated
        ended = _ended_rows(done, any_done)
        ret, terms = self._accumulate_returns(
            out.reward, out.reward_terms, done, any_done, out.returns, ended
        )
        self._episode_length += 1
        length = self._episode_length.clone()
        if ended is not None:
            self._episode_length.index_fill_(0, ended, 0)
        elif any_done is not False:
            self._episode_length.masked_fill_(done, 0)
        info: dict[str, Any] = {
            keys.NEXT_OBS_TARGET: out.next_obs_target,
            keys.REWARD_TERMS: out.reward_terms,
            keys.SUCCESS: out.success,
            keys.ACTION_ERROR: out.action_error,
            **out.extra,
            keys.FINAL_OBS: final_obs,
            "_" + keys.FINAL_OBS: done,
            keys.EPISODE: {
                "r": ret,
                "l": length,
                # per reward term: the episode's return of that term; per sub-goal: reached
                "terms": terms,
                "subgoals": dict(out.subgoals),
            },
            "_" + keys.EPISODE: done,
        }
        return obs, out.reward, out.terminated, out.truncated, info

    def _accumulate_returns(
        self,
        reward: torch.Tensor,
        terms: Mapping[str, torch.Tensor],
        done: torch.Tensor,
        any_done: bool | None = None,
        rows: torch.Tensor | None = None,
        ended: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Add a step's reward and reward terms to the episode's sums; return copies (the
        return, and per term) and restart the ended worlds' sums (``ended``: their indices,
        when :func:`_ended_rows` gave them; else by ``done``).

        The sums are the rows of one ``[1 + T, B]`` tensor (row 0 the return, then one row
        per term name seen so far; ``_episode_return`` and ``_episode_terms`` are views of
        it), so a step that reports the same terms as the last costs a handful of ops
        whatever their number: the same float32 additions as one accumulator per term.
        ``rows`` is :attr:`StepOutput.returns` (``reward`` and ``terms`` as one tensor) when
        the engine has it."""
        names = tuple(terms)
        if names != self._sum_names and not set(names) <= set(self._sum_names):
            self._layout_sums(names)
        sums = self._episode_sums
        if names == self._sum_names and rows is not None:
            sums += rows
        elif names == self._sum_names and (self.num_envs < SMALL or not sums.is_cpu):
            sums += torch.stack([reward, *terms.values()])  # the fewest ops (and launches)
        elif names == self._sum_names:  # on CPU, row by row: no [1 + T, B] copy of the terms
            for row, v in zip(sums.unbind(0), (reward, *terms.values()), strict=True):
                row += v
        else:  # a subset of the terms, or another order: row by row
            self._episode_return += reward
            for k, v in terms.items():
                self._episode_terms[k] += v
        snapshot = sums.clone()
        if ended is not None:
            sums.index_fill_(1, ended, 0.0)
        elif any_done is not False:
            sums.masked_fill_(done, 0.0)
        ret, *rows = snapshot.unbind(0)
        out = dict(zip(self._sum_names, rows, strict=True))
        return ret, out if names == self._sum_names else {k: out[k] for k in names}

    def _layout_sums(self, names: tuple[str, ...]) -> None:
        """Rebuild the episode sums with rows for ``names`` too, keeping every sum so far."""
        old = {"": self._episode_return, **self._episode_terms}
        layout = (*names, *(k for k in self._sum_names if k not in names))
        sums = torch.zeros(1 + len(layout), self.num_envs, dtype=torch.float32, device=self.device)
        for i, k in enumerate(("", *layout)):
            if k in old:
                sums[i] = old[k]
        self._episode_sums, self._sum_names = sums, layout
        self._episode_return = sums[0]
        self._episode_terms = {k: sums[1 + i] for i, k in enumerate(layout)}

    # ------------------------------------------------------------------ fused / CUDA graph
    # A family may implement `_fused_step`: one transition *including* the SAME_STEP
    # auto-reset, with no host synchronisation (masks instead of `if any()`), so that the
    # whole step can be captured once as a CUDA graph and replayed: one launch per step
    # instead of hundreds. fused_mode is "off" (the plain path above), "eager" (the fused
    # function run as-is: tests it on CPU) or "graph" (captured on CUDA).
    fused_mode: str = "off"
    _graph: Any = None

    def _fused_step(self, actions: torch.Tensor) -> tuple[StepOutput, Obs, Obs]:
        """One transition and auto-reset without host syncs: (output, final_obs, obs)."""
        raise NotImplementedError

    def _enable_fused(self, mode: str) -> None:
        if mode not in ("off", "eager", "graph"):
            raise ValueError(f"fused mode must be 'off', 'eager' or 'graph', got {mode!r}")
        if mode == "graph" and self.device.type != "cuda":
            raise ValueError("CUDA graphs need device='cuda'")
        self.fused_mode = mode
        self._graph = None

    def _fused_static(self, act: torch.Tensor) -> tuple[StepOutput, Obs, Obs]:
        """The fused step on static state tensors: results are copied back into the tensors
        the state held before, so a captured graph always reads and writes the same memory."""
        self._pin_state()  # eager code (reset, set_state) may have replaced tensors
        result = self._fused_step(act)
        self._pin_state()
        return result

    def _pin_state(self) -> None:
        """Copy any state tensor that was replaced back into its static tensor, and point the
        state at the static tensors again."""
        static = self._static_state
        for k, v in self.state.items():
            if v is not static[k]:
                static[k].copy_(v)
        self.state = dict(static)

    def _step_fused(
        self, act: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        if getattr(self, "_static_state", None) is None or set(self._static_state) != set(
            self.state
        ):
            self._static_state = {k: v.clone() for k, v in self.state.items()}
            self._graph = None
        if self.fused_mode == "graph":
            if self._graph is None:
                self._capture(act)
            self._static_act.copy_(act)
            self._pin_state()
            self._graph.replay()
            # Replays overwrite the graph's outputs: hand out copies.
            out, final_obs, obs = _clone_tree(self._graph_out)
        else:
            out, final_obs, obs = self._fused_static(act)
        return self._finish_step(out, final_obs, obs)

    def _capture(self, act: torch.Tensor) -> None:
        """Warm up the fused step on a side stream (state restored after), then capture it."""
        self._static_act = act.clone()
        snapshot = {k: v.clone() for k, v in self._static_state.items()}

        def restore() -> None:
            for k, v in snapshot.items():
                self._static_state[k].copy_(v)

        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self._fused_static(self._static_act)
                restore()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._graph_out = self._fused_static(self._static_act)
        # Capturing records kernels without running them: the state is still the snapshot.
        restore()
        self.state = dict(self._static_state)
        self._graph = graph

    # ------------------------------------------------------------------ snapshots
    def get_state(
        self, worlds: Sequence[int] | torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """A deep copy of the worlds' state (all worlds, or the rows ``worlds`` in that order).

        Restoring it with :meth:`set_state` reproduces the same future for the same actions.
        Passing ``worlds=[k] * num_envs`` copies world ``k`` into every row: the way to branch
        several rollouts from one state.
        """
        st = dict(self.state)
        st["__episode_return"] = self._episode_return
        st["__episode_length"] = self._episode_length
        if worlds is None:
            return {k: v.clone() for k, v in st.items()}
        # Index each tensor on its own device (an engine may keep some state off `device`).
        return {
            k: v[torch.as_tensor(worlds, dtype=torch.int64, device=v.device)].clone()
            for k, v in st.items()
        }

    def set_state(
        self, state: Mapping[str, torch.Tensor], worlds: Sequence[int] | torch.Tensor | None = None
    ) -> None:
        """Write a snapshot back: into every world, or into the rows ``worlds``."""
        targets: dict[str, torch.Tensor] = dict(self.state)
        targets["__episode_return"] = self._episode_return
        targets["__episode_length"] = self._episode_length
        # Validate every field first, then write: a rejected snapshot changes nothing.
        idx = None if worlds is None else world_indices(worlds, self.num_envs)
        checked = check_snapshot(state, targets, idx)
        self._check_state_values(checked, idx)
        for k, v in checked.items():
            dst = targets[k]
            if idx is None:
                dst.copy_(v)
            else:
                dst[idx.to(dst.device)] = v
        self._needs_reset = False

    def _check_state_values(
        self, state: dict[str, torch.Tensor], worlds: torch.Tensor | None
    ) -> None:
        """Family hook: reject snapshot *values* the engine can't run (e.g. an index past a
        table) with :class:`~envgym.core.errors.InvalidStateError`. ``state`` holds every key
        already on the right device, shape and dtype. The default accepts any values."""


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def one_world_action(action: Any) -> Any:
    """A single env's action as a batch of one world (a leading axis of 1), for the vector
    env's own validation to accept or reject: never raises, never reshapes a wrong shape into
    a right one."""
    if torch.is_tensor(action):
        return action.unsqueeze(0)
    try:
        return np.asarray(action)[None]
    except (ValueError, TypeError, OverflowError):
        return action


def integer_actions(actions: Any, num_envs: int) -> torch.Tensor:
    """Integer actions of shape ``[num_envs]`` or ``[num_envs, 1]`` as an int64 ``[num_envs]``
    tensor (on the input's device), or :class:`InvalidActionError`."""
    if torch.is_tensor(actions):
        t = actions
        if t.dtype not in _INT_DTYPES:
            raise InvalidActionError(
                f"actions must be integers for a Discrete space, got dtype {t.dtype}"
            )
    else:
        try:
            a = np.asarray(actions)
        except (ValueError, TypeError, OverflowError) as e:  # ragged lists, odd objects
            raise InvalidActionError(f"actions are not an integer array: {e}") from None
        if a.dtype.kind not in "iu":
            raise InvalidActionError(
                f"actions must be integers for a Discrete space, got dtype {a.dtype}"
            )
        if a.dtype.kind == "u" and a.size and int(a.max()) > torch.iinfo(torch.int64).max:
            raise InvalidActionError("actions out of the action space: values past int64")
        t = torch.from_numpy(np.ascontiguousarray(a.astype(np.int64, copy=False)))
    if tuple(t.shape) not in ((num_envs,), (num_envs, 1)):
        raise InvalidActionError(
            f"expected {num_envs} actions (shape [{num_envs}] or [{num_envs}, 1]), "
            f"got shape {tuple(t.shape)}"
        )
    return t.to(torch.int64).reshape(num_envs)


def true_rows(mask: torch.Tensor) -> torch.Tensor:
    """The indices of the set entries of the bool [B] ``mask`` (int64, ascending: as
    ``nonzero(mask).flatten()``; on CPU through NumPy, 3-5x cheaper at 65,536 worlds)."""
    if mask.is_cpu:
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask).flatten()


def _ended_rows(done: torch.Tensor, any_done: bool | None) -> torch.Tensor | None:
    """The indices of the worlds that ended, where restarting their episode sums by index is
    the cheaper way (on CPU, from ``SMALL`` worlds on, when any ended: a masked fill of
    ``[1 + T, B]`` sums broadcasts the ``[B]`` mask, ~9x the cost); else ``None``."""
    if not any_done or not done.is_cpu or done.shape[0] < SMALL:
        return None
    return true_rows(done)


def world_names(rows: Any, worlds: Sequence[int] | np.ndarray | None = None) -> list[int]:
    """The first 8 of the rows ``rows`` (indices, or a bool mask) for an error message: as
    world indices ``worlds[row]`` when ``worlds`` is given (a driver checking a batch of
    several envs' worlds), else the rows themselves."""
    arr = np.asarray(rows.cpu() if torch.is_tensor(rows) else rows)
    idx = np.flatnonzero(arr) if arr.dtype == np.bool_ else arr.reshape(-1)
    idx = idx[:8]
    return [int(i) for i in (idx if worlds is None else np.asarray(worlds)[idx])]


def discrete_actions(
    actions: Any,
    num_envs: int,
    space: Any,
    worlds: Sequence[int] | np.ndarray | None = None,
) -> torch.Tensor:
    """The vector base's rule for a ``Discrete`` space (``space``): integers (any signed or
    unsigned integer dtype; not bool, float or complex) of shape ``[num_envs]`` or
    ``[num_envs, 1]``, each inside the space, as zero-based int64 ``[num_envs]`` (on the
    input's device). Anything else raises :class:`InvalidActionError` naming the problem (and
    the worlds, for out-of-space values: see :func:`world_names`)."""
    t = integer_actions(actions, num_envs)
    lo, hi = int(space.start), int(space.start + space.n)
    bad = (t < lo) | (t >= hi)
    if bool(bad.any()):
        idx = world_names(bad, worlds)
        vals = t[bad][:8].tolist()
        raise InvalidActionError(
            f"actions out of the action space Discrete({space.n}) in worlds {idx}: {vals}"
        )
    return t - lo


def reset_mask(mask: Any, num_envs: int) -> torch.Tensor:
    """``options["reset_mask"]`` as a bool ``[num_envs]`` tensor, or :class:`InvalidResetError`:
    it must be booleans (a tensor, array or list) of exactly that shape."""
    if torch.is_tensor(mask):
        m = mask
        ok = m.dtype == torch.bool
    else:
        try:
            a = np.asarray(mask)
        except (ValueError, TypeError) as e:
            raise InvalidResetError(f"reset_mask is not a bool array: {e}") from None
        ok = a.dtype == np.bool_
        m = torch.from_numpy(np.ascontiguousarray(a)) if ok else None
    if not ok or m is None:
        raise InvalidResetError(
            f"reset_mask must be bools, got {getattr(mask, 'dtype', type(mask).__name__)}"
        )
    if tuple(m.shape) != (num_envs,):
        raise InvalidResetError(f"reset_mask must have shape [{num_envs}], got {tuple(m.shape)}")
    return m


def _seed_int(x: Any) -> int:
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
        if torch.is_tensor(x) and x.numel() == 1 and x.dtype in _INT_DTYPES:
            return int(x.item())
        raise InvalidResetError(f"a seed must be an int, got {type(x).__name__}")
    return int(x)


def world_seeds(seed: Any, num_envs: int) -> torch.Tensor:
    """The seed of each world: ``seed + i`` for an int, or one int per world from a
    sequence; every seed in ``[0, SEED_MAX]`` (unsigned 64-bit), else
    :class:`InvalidResetError`. Returned as int64 holding the same 64 bits (two's complement:
    seeds of ``2**63`` or more come out negative), which the engines' hashes and
    :func:`unsigned_seed` read back exactly."""
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool | np.bool_):
        base = int(seed)
        if base < 0 or base + num_envs - 1 > SEED_MAX:
            raise InvalidResetError(
                f"seed must be in [0, {SEED_MAX - num_envs + 1}] for {num_envs} worlds "
                f"(world i uses seed + i, an unsigned 64-bit int), got {base}"
            )
        return _as_int64([base + i for i in range(num_envs)])
    if isinstance(seed, str | bytes | Mapping) or not isinstance(
        seed, Sequence | np.ndarray | torch.Tensor
    ):
        raise InvalidResetError(
            f"seed must be an int or one int per world, got {type(seed).__name__}"
        )
    values = [_seed_int(x) for x in (seed.tolist() if hasattr(seed, "tolist") else seed)]
    if len(values) != num_envs:
        raise InvalidResetError(f"expected {num_envs} seeds, got {len(values)}")
    bad = [v for v in values if not 0 <= v <= SEED_MAX]
    if bad:
        raise InvalidResetError(f"seeds must be in [0, {SEED_MAX}], got {bad[:4]}")
    return _as_int64(values)


def _as_int64(values: list[int]) -> torch.Tensor:
    """Unsigned 64-bit seeds as an int64 tensor of the same bits."""
    return torch.tensor([v - 2**64 if v >= 2**63 else v for v in values], dtype=torch.int64)


def unsigned_seed(seed: int) -> int:
    """A world's seed as the user gave it (``[0, 2**64)``), from its int64 form."""
    return int(seed) & SEED_MAX


def world_indices(worlds: Any, num_envs: int) -> torch.Tensor:
    """``worlds`` of ``set_state`` as distinct int64 indices in ``[0, num_envs)``, or
    :class:`InvalidStateError`."""
    try:
        if torch.is_tensor(worlds):
            if worlds.dtype not in _INT_DTYPES:
                raise InvalidStateError(f"worlds must be integers, got dtype {worlds.dtype}")
            idx = worlds.detach().to("cpu", torch.int64)
        else:
            a = np.asarray(worlds)
            if a.dtype.kind not in "iu" and a.size:
                raise InvalidStateError(f"worlds must be integers, got dtype {a.dtype}")
            idx = torch.from_numpy(np.ascontiguousarray(a.astype(np.int64)))
    except (ValueError, TypeError, OverflowError) as e:
        if isinstance(e, InvalidStateError):
            raise
        raise InvalidStateError(f"worlds is not an index list: {e}") from None
    if idx.dim() != 1:
        raise InvalidStateError(f"worlds must be a 1-D index list, got shape {tuple(idx.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_envs):
        raise InvalidStateError(f"worlds must be in [0, {num_envs}), got {idx.tolist()[:8]}")
    if idx.unique().numel() != idx.numel():
        raise InvalidStateError("worlds must not repeat (each row is written once)")
    return idx


def check_snapshot(
    state: Any, targets: Mapping[str, torch.Tensor], worlds: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """Every field of a snapshot checked against the env's tensors (keys, tensor type, dtype,
    shape) and moved to each field's device; :class:`InvalidStateError` on the first problem."""
    if not isinstance(state, Mapping):
        raise InvalidStateError(f"a snapshot is a mapping of tensors, got {type(state).__name__}")
    expected = set(targets)
    if set(state) != expected:
        raise InvalidStateError(
            f"state keys do not match this env: missing {sorted(map(str, expected - set(state)))}"
            f", unexpected {sorted(map(str, set(state) - expected))}"
        )
    out: dict[str, torch.Tensor] = {}
    for k, dst in targets.items():
        v = state[k]
        if not torch.is_tensor(v):
            raise InvalidStateError(f"state[{k!r}] must be a tensor, got {type(v).__name__}")
        if v.dtype != dst.dtype:
            raise InvalidStateError(f"state[{k!r}] has dtype {v.dtype}, expected {dst.dtype}")
        shape = tuple(dst.shape) if worlds is None else (worlds.numel(), *dst.shape[1:])
        if tuple(v.shape) != shape:
            raise InvalidStateError(f"state[{k!r}] has shape {tuple(v.shape)}, expected {shape}")
        out[k] = v.detach().to(dst.device)
    return out
