"""Gymnasium faces of the phone engine: the vector env (B worlds) and the single env (B=1)."""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from envgym.core import StepOutput, TorchVectorEnv, keys
from envgym.core.allocator import Recycler
from envgym.core.single import SingleEnv
from envgym.core.vector import ActionRule, one_world_action, true_rows
from envgym.phone.actions import ActionParser, ParsedAction, tool_schemas
from envgym.phone.compiler import CompiledPhone, compile_scenarios
from envgym.phone.engine import PhoneActions, PhoneEngine
from envgym.phone.inputs import phone_actions
from envgym.phone.names import ACTION_ERRORS, ALL_REWARD_TERMS, MSG_SLOTS, PHASE_NAMES, REWARD_MODES
from envgym.phone.scenarios import ScenarioSpec, resolve_scenarios

_TEXT_CHARSET = frozenset(chr(c) for c in range(32, 127)) | {"\n", "’"}
_MAX_CALL_COUNT = 255
OBS_MODES = ("tokens", "ids")
# The big outputs (see PhoneVectorEnv._out): what a step heard (the target and final_obs),
# what the worlds hear after its auto-reset (obs), the action mask.
_HEARD, _AFTER_RESET, _MASK = "heard", "after_reset", "action_mask"


def _compile(
    scenario: ScenarioSpec,
    difficulty: int,
    num_generated: int,
    generator_seed: int,
    max_tokens: int | None,
    hints: bool | None = None,
) -> CompiledPhone:
    scenarios = resolve_scenarios(scenario, difficulty, num_generated, generator_seed)
    if hints is not None:
        # An ablation switch: the same scenarios with system hints forced on or off.
        scenarios = [
            sc.model_copy(
                update={"constraints": sc.constraints.model_copy(update={"hints": hints})}
            )
            for sc in scenarios
        ]
    return compile_scenarios(scenarios, max_tokens)


def apply_switches(compiled: CompiledPhone, reveal_hidden: bool, variation: str) -> CompiledPhone:
    """The paired-task switches, applied to a compiled set's tables (in place; returns it).

    ``reveal_hidden=True``: every fact the user has is known to the assistant from the start
    (the *revealed* twin of each scenario; ``ask_user`` is then never needed).
    ``variation="off"``: one phrasing per message, one rep per department, a fixed hold length
    (each department's longest), so nothing the world says depends on a seeded draw.
    """
    if variation not in ("on", "off"):
        raise ValueError(f"variation must be 'on' or 'off', got {variation!r}")
    t = compiled.tables
    if reveal_hidden:
        t["fact_known0"] = t["fact_exists"].clone()
    if variation == "off":
        compiled.msg_nvar = torch.ones_like(compiled.msg_nvar)
        t["n_reps"] = torch.ones_like(t["n_reps"])
        t["dept_hold_lo"] = t["dept_hold_hi"].clone()
    return compiled


def _step_output(out: dict[str, torch.Tensor], target: torch.Tensor) -> StepOutput:
    """The engine's transition dict as the core's StepOutput."""
    return StepOutput(
        reward=out["reward"],
        terminated=out["terminated"],
        truncated=out["truncated"],
        next_obs_target=target,
        reward_terms=out["reward_terms"],
        success=out["success"],
        action_error=out["action_error"],
        subgoals=out["subgoals"],
    )


class PhoneVectorEnv(TorchVectorEnv):
    """B customer-service calls stepped together by the batched phone engine.

    ## Description
    The assistant phones a company for its user: dials, navigates the IVR, waits on hold,
    asks reps for services, answers verification questions with facts (asking the user for
    facts only the user knows), accepts or declines fees and offers, and reports back. Each
    world runs one scenario of the compiled set, drawn per episode from the world's seed.

    ## Observation (tokens face), a ``Dict``
    - ``tokens``: int32 ``[L]``: token ids of everything heard this step (system hints,
      IVR, rep, user), each message prefixed by its speaker and followed by ``<sep>``; padded
      with 0. ``L = max_tokens``.
    - ``phase``: 0 off the call, 1 IVR menu, 2 on hold, 3 talking to a rep.
    - ``known_facts``: int8 ``[F]``: which facts the assistant knows (its notes).
    - ``calls``: int32 ``[N]``: calls made to each directory entry this episode.
    - ``turn``: int32 ``[1]``: turns taken.

    ## Action
    ``Discrete(A)`` over the catalogue ``envs.action_names``: ``wait``, ``hang_up``,
    ``say_yes``, ``say_no``, ``report``, ``dial:i``, ``press:k``, ``request:s``,
    ``ask_about:s``, ``provide:f``, ``ask_user:f``. ``provide:f`` states the value the
    assistant knows; a fact it doesn't know comes out invented and fails verification.

    ## Reward (per term, in ``info["reward_terms"]``, weights per scenario)
    ``goal`` (+w at episode end if the account records meet the goal), ``turn_cost`` (-w
    every turn), ``privacy_violation`` (-w per sensitive fact volunteered unasked),
    ``over_call_budget`` (-w per call beyond the user's budget), ``invalid_action`` (-w per
    action that can't be carried out; see ``info["action_error"]``).

    ## Target
    ``info["next_obs_target"]``: int32 ``[L]``: the token ids of the world's answer to the
    action (the next observation's ``tokens``), computed before any auto-reset. Nothing in it
    is unpredictable noise except the seeded choice of phrasing variant and rep name.

    ## Starting state
    Off the call; the first observation is the user's request, the directory of listed numbers
    and the facts the assistant is told.

    ## Episode end
    Terminated by ``report``; truncated after the scenario's ``max_turns``. SAME_STEP
    auto-reset: ``info["final_obs"]`` holds the true last observation.

    ## Arguments
    ``num_envs``, ``scenario`` (shipped name, YAML path, list, ``"all"``, ``"generated"``),
    ``difficulty``, ``num_generated``, ``generator_seed`` (generated sets), ``obs_mode``
    (``"tokens"``, or ``"ids"``: message ids in ``msg_ids`` instead of ``tokens``, targets
    too; tokens gathered by the consumer from :attr:`message_tokens`, see
    :meth:`tokens_from_ids`), ``device``, ``max_tokens``, ``hints`` (force the
    scenarios' system hints on or off, e.g. to study their effect), ``cuda_graph``; the
    learnability aids (``docs/phone.md``): ``action_mask`` (publish ``info["action_mask"]``,
    default on), ``reward_mode`` (``"sparse"``, ``"costs"`` default, ``"shaped"``),
    ``structured_obs`` (add ``pending_fact``, ``department``, ``verification``,
    ``offer_pending`` to the observation; default off), ``reveal_hidden``, ``variation``
    (``"on"`` / ``"off"``), ``target_mask`` (publish ``info["target_mask"]``), ``levels``
    (a curriculum: one generated set per difficulty level, chosen per world with
    :meth:`set_difficulty`); ``copy`` (as Gymnasium's vector envs' ``copy``: ``True``, the
    default, returns new tensors every step; ``False`` writes the tokens and the action mask
    into persistent buffers, valid until the next ``step`` / ``reset``: no large allocation
    per step).

    ## Version history
    - v0: initial release.
    """

    def __init__(
        self,
        num_envs: int = 1,
        scenario: ScenarioSpec = "isp_bill_discount",
        *,
        difficulty: int = 1,
        num_generated: int = 32,
        generator_seed: int = 0,
        obs_mode: str = "tokens",
        device: str | torch.device | None = "cpu",
        max_tokens: int | None = None,
        hints: bool | None = None,
        compiled: CompiledPhone | None = None,
        max_episode_steps: int | None = None,
        cuda_graph: bool | None = None,
        action_mask: bool = True,
        reward_mode: str = "costs",
        structured_obs: bool = False,
        reveal_hidden: bool = False,
        variation: str = "on",
        target_mask: bool = False,
        levels: Sequence[float] | None = None,
        copy: bool = True,
    ) -> None:
        super().__init__(num_envs, device)
        self.copy = copy
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if obs_mode not in OBS_MODES:
            raise ValueError(
                f"the vector phone env serves obs_mode in {OBS_MODES} (got {obs_mode!r}); use "
                "gym.make('envgym/Phone-v0', obs_mode='text') for the text face"
            )
        self.obs_mode = obs_mode
        if max_episode_steps is not None:
            raise ValueError("episode length is set per scenario (constraints.max_turns)")
        self.levels: tuple[float, ...] | None = (
            None if levels is None or compiled is not None else tuple(levels)
        )
        self.compiled = compiled or self._compile_set(
            scenario, difficulty, num_generated, generator_seed, max_tokens, hints
        )
        apply_switches(self.compiled, reveal_hidden, variation)
        self.engine = PhoneEngine(self.compiled, self.device)
        self.engine.reward_mode = reward_mode
        if self.levels is not None:
            n = len(self.levels)
            self.engine.set_level_blocks(
                torch.arange(n, dtype=torch.int64) * num_generated,
                torch.full((n,), num_generated, dtype=torch.int64),
            )
        self.reward_mode = reward_mode
        self._heard_key = "tokens" if obs_mode == "tokens" else "msg_ids"
        self._ended_level = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.publish_mask = action_mask
        self.structured_obs = structured_obs
        self.publish_target_mask = target_mask
        self._init_spaces()
        c = self.compiled
        self.action_names = [a.name for a in c.catalogue]
        self.action_error_names = ACTION_ERRORS
        self.phase_names = PHASE_NAMES
        self.reward_term_names = ALL_REWARD_TERMS
        self.state = self.engine.empty_state(self.num_envs)
        self._inputs: PhoneActions | None = None
        self._step_msgs = (self.state["msgs"], self.state["vars"])
        self._heard: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        # The big outputs' memory (see _out): copy=False's buffers, copy=True's recycled arrays.
        self._bufs: dict[str, torch.Tensor] = {}
        self._recycler, self._buf_after_reset = Recycler(), False
        # On CUDA the whole step (transition, auto-reset, observation) is captured once as a
        # CUDA graph and replayed: one launch instead of hundreds of small kernels.
        if cuda_graph is None:
            cuda_graph = self.device.type == "cuda"
        if cuda_graph:
            self.engine.sync_free = True
            self._enable_fused("graph")

    def _compile_set(
        self,
        scenario: ScenarioSpec,
        difficulty: int,
        num_generated: int,
        generator_seed: int,
        max_tokens: int | None,
        hints: bool | None,
    ) -> CompiledPhone:
        """The env's scenario set: ``scenario`` at ``difficulty``, or (a curriculum,
        ``self.levels``) one generated set per level compiled together, each world drawing its
        scenarios from its own level's block (:meth:`set_difficulty`)."""
        if self.levels is None:
            return _compile(scenario, difficulty, num_generated, generator_seed, max_tokens, hints)
        sets = [
            resolve_scenarios("generated", lv, num_generated, generator_seed) for lv in self.levels
        ]
        return _compile([sc for st in sets for sc in st], 0, 0, 0, max_tokens, hints)

    def _init_spaces(self) -> None:
        """The observation, action and target spaces (single and batched)."""
        c = self.compiled
        L, Vocab, F, N = c.max_tokens, c.vocab_size, c.dims["F"], c.dims["N"]
        if self.obs_mode == "tokens":
            tok_space = spaces.Box(0, Vocab - 1, (L,), np.int32)
        else:
            num_ids = int(self.engine.packer.table.shape[0])
            tok_space = spaces.Box(0, num_ids - 1, (MSG_SLOTS,), np.int32)
        obs_spaces: dict[str, spaces.Space] = {
            self._heard_key: tok_space,
            "phase": spaces.Discrete(4),
            "known_facts": spaces.MultiBinary(F),
            "calls": spaces.Box(0, _MAX_CALL_COUNT, (N,), np.int32),
            "turn": spaces.Box(0, 10_000, (1,), np.int32),
        }
        if self.structured_obs:
            D = int(self.compiled.tables["dept_transfers"].shape[1])
            obs_spaces.update(
                {
                    "pending_fact": spaces.Discrete(F + 1),
                    "department": spaces.Discrete(D + 1),
                    "verification": spaces.MultiBinary(F),
                    "offer_pending": spaces.MultiBinary(2),
                }
            )
        self.single_observation_space = spaces.Dict(obs_spaces)
        self.single_action_space = spaces.Discrete(c.num_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_target_space = tok_space
        self.target_space = batch_space(tok_space, self.num_envs)

    # ------------------------------------------------------------------ engine hooks
    def _reset_worlds(self, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        if self.levels is not None:
            # The level of the episode that ends here (curricula score it).
            self._ended_level = torch.where(mask, self.difficulty, self._ended_level)
        heard = self._heard
        self.engine.reset(self.state, mask, seeds)
        self.state_changed()
        self._buf_after_reset = True
        if heard is not None:
            self._heard = self._reheard(heard, mask)

    def _reheard(self, heard: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """What the worlds hear after a partial reset: ``heard`` (before it) with the reset
        worlds' rows rebuilt, so a step packs the tokens of the worlds that reset only (into
        :meth:`_out`'s after-reset memory: ``heard`` was handed out as the final
        observation)."""
        rows = true_rows(mask)
        if len(rows) == 0:
            return heard
        if 2 * len(rows) > self.num_envs:
            return None  # most worlds reset: rebuild all of it
        ids = self.engine.packer.ids(self.state["msgs"][rows], self.state["vars"][rows])
        new = self._out(_AFTER_RESET, heard.shape, heard.dtype)
        new = heard.clone() if new is None else new.copy_(heard)
        new.index_copy_(0, rows, ids if self.obs_mode == "ids" else self.engine.packer.pack(ids))
        return new

    def _out(
        self, key: str, shape: torch.Size | tuple[int, ...], dtype: torch.dtype
    ) -> torch.Tensor | None:
        """Where the big output ``key`` is written: with ``copy=False`` its persistent buffer
        (the next step or reset overwrites it); with ``copy=True`` on CPU memory that an earlier
        step handed out and nothing holds any more, if it is big
        (:meth:`~envgym.core.allocator.Recycler.big_tensor`: new to the caller, without a fresh
        mapping's page faults); else ``None`` (a new tensor)."""
        if self.copy:
            if self.device.type != "cpu":
                return None
            return self._recycler.big_tensor(key, tuple(shape), dtype)
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._bufs[key] = torch.empty(shape, dtype=dtype, device=self.device)
        return buf

    def set_state(self, state: Any, worlds: Any = None) -> None:
        super().set_state(state, worlds)
        self.state_changed()

    def state_changed(self) -> None:
        """Forget what was derived from the state (what was heard, its action mask): call it
        after changing :attr:`state` in place (``step``, ``reset`` and ``set_state`` do)."""
        self._heard = None
        self._mask = None

    def heard_tokens(self) -> torch.Tensor:
        """What the worlds heard this step in the observation's form: int32 ``[B, L]`` tokens,
        or (``obs_mode="ids"``) int32 ``[B, MSG_SLOTS]`` message ids. The token expansion is
        the widest op of a step: it is computed once per state change."""
        if self._heard is None:
            if self.obs_mode == "ids":
                self._heard = self.engine.message_ids(self.state)
            else:
                key = _AFTER_RESET if self._buf_after_reset else _HEARD
                buf = self._out(key, (self.num_envs, self.engine.L), torch.int32)
                self._heard = self.engine.tokens(self.state, out=buf)
        return self._heard

    def _convert_actions(self, actions: Any) -> torch.Tensor:
        """Catalogue ids (see :meth:`TorchVectorEnv._convert_actions`), or a
        :class:`~envgym.phone.engine.PhoneActions` record: its assistant ids may also be the
        engine's ``garbled_action`` (text that could not be parsed), and its stated values
        (and a learned rep's / user's moves) go to the engine with them. Both are checked
        whole by :meth:`action_rule` before any world changes."""
        checked = self.action_rule()(actions, self.num_envs)
        if not isinstance(checked, PhoneActions):
            self._inputs = None
            return checked.to(self.device)
        a = checked.assistant.to(self.device)
        self._inputs = replace(checked, assistant=a)
        return a

    def action_rule(self) -> ActionRule:
        """:func:`envgym.phone.inputs.phone_actions` for this env's catalogues (see
        :meth:`TorchVectorEnv.action_rule`): plain ids and ``PhoneActions`` records."""
        e = self.engine
        return partial(
            phone_actions,
            space=self.single_action_space,
            garbled_action=e.garbled_action,
            rep_actions=len(e.rep_catalogue),
        )

    def _engine_inputs(self, actions: torch.Tensor) -> PhoneActions:
        """The step's inputs: the record passed to :meth:`step`, or just the actions."""
        inputs, self._inputs = self._inputs, None
        return inputs if inputs is not None else PhoneActions(actions)

    def _step_worlds(self, actions: torch.Tensor) -> StepOutput:
        out = self.engine.step(self.state, self._engine_inputs(actions))
        self._buf_after_reset = False
        # What was heard this step, kept past a SAME_STEP auto-reset for the text face.
        self._step_msgs = (self.state["msgs"].clone(), self.state["vars"].clone())
        self.state_changed()
        return _step_output(out, self.heard_tokens())

    def _fused_step(
        self, actions: torch.Tensor
    ) -> tuple[StepOutput, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        st = self.state
        out = self.engine.step(st, self._engine_inputs(actions))
        self._step_msgs = (st["msgs"].clone(), st["vars"].clone())
        self.state_changed()
        self._buf_after_reset = False
        target = self.heard_tokens()
        final = self._observation(target)
        done = out["terminated"] | out["truncated"]
        self.engine.reset(st, done, None)
        self.state_changed()
        self._buf_after_reset = True
        obs = self._observation(self.heard_tokens())
        return _step_output(out, target), final, obs

    def _observation(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        st = self.state
        obs = {
            self._heard_key: tokens,
            "phase": st["phase"].clone(),
            "known_facts": st["known"].view(torch.int8).clone(),  # bool bytes are 0 or 1
            "calls": st["calls"].clamp(max=_MAX_CALL_COUNT).to(torch.int32),
            "turn": st["turn"].to(torch.int32)[:, None],
        }
        if self.structured_obs:
            obs.update(self.engine.structured(st))
        return obs

    # ------------------------------------------------------------------ masks and curriculum
    def action_masks(self) -> torch.Tensor:
        """bool ``[B, A]``: the actions admissible in every world's current state (the same
        as the last ``info["action_mask"]``; see :meth:`PhoneEngine.action_mask`). Computed
        once per state: the step's info and a masked learner's call share it."""
        if self._mask is None:
            shape = (self.num_envs, self.engine.garbled_action)
            self._mask = self.engine.action_mask(
                self.state, out=self._out(_MASK, shape, torch.bool)
            )
        return self._mask

    def _add_masks(self, info: dict[str, Any]) -> dict[str, Any]:
        if self.publish_mask:
            info[keys.ACTION_MASK] = self.action_masks()
        return info

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Reset (see :meth:`TorchVectorEnv.reset`); ``options["difficulty"]`` (a level index
        per world, or one for all) sets the curriculum level first (``levels=`` envs)."""
        options = dict(options or {})
        level = options.pop("difficulty", None)
        if level is not None:
            mask = options.get("reset_mask")
            worlds = (
                torch.nonzero(torch.as_tensor(mask, dtype=torch.bool)).flatten()
                if mask is not None
                else torch.arange(self.num_envs)
            )
            self.set_difficulty(worlds, level)
        obs, info = super().reset(seed=seed, options=options or None)
        if self.publish_target_mask:
            info[keys.TARGET_MASK] = self.reset_target_mask()
        return obs, self._add_masks(info)

    def reset_target_mask(self) -> torch.Tensor:
        """bool ``[B, L]``: ``target_mask`` of the current observation (its seeded-noise
        tokens), as the reset info carries it."""
        return self._target_mask(self.state["msgs"], self.state["vars"])

    def _target_mask(self, msgs: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """The seeded-noise mask aligned with the target: per token, or per message slot
        (``obs_mode="ids"``)."""
        if self.obs_mode == "ids":
            return self.engine.noisy_slots(msgs)
        return self.engine.noise_mask(msgs, var)

    def step(self, actions: Any) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        obs, rew, term, trunc, info = super().step(actions)
        if self.publish_target_mask:
            msgs, var = self._step_msgs
            info[keys.TARGET_MASK] = self._target_mask(msgs, var)
        return obs, rew, term, trunc, self._add_masks(info)

    def set_difficulty(self, worlds: Any, level: Any) -> None:
        """Put ``worlds`` (indices or a bool mask) on curriculum level ``level`` (an index into
        ``levels``, one or one per world); it takes effect at each world's next episode."""
        if self.levels is None:
            raise ValueError("set_difficulty needs an env made with levels=[...]")
        idx = torch.as_tensor(worlds, device=self.device)
        if idx.dtype == torch.bool:
            idx = torch.nonzero(idx).flatten()
        lv = torch.as_tensor(level, dtype=torch.int64, device=self.device).expand(idx.shape)
        if bool(((lv < 0) | (lv >= len(self.levels))).any()):
            raise ValueError(f"levels are indices 0..{len(self.levels) - 1}, got {level!r}")
        self.state["level"][idx.to(torch.int64)] = lv

    @property
    def difficulty(self) -> torch.Tensor:
        """int64 ``[B]``: the curriculum level (index into ``levels``) of each world's current
        episode (``set_difficulty`` changes the level of the next one)."""
        if self.levels is None:
            return torch.zeros_like(self.state["level"])
        lo = self.engine.level_lo
        return (self.state["scenario"][:, None] >= lo[None, :]).sum(dim=1) - 1

    @property
    def ended_difficulty(self) -> torch.Tensor:
        """int64 ``[B]``: the level of the episode that last ended in each world (what a
        curriculum scores after a step with ``terminated | truncated``)."""
        return self._ended_level.clone()

    def _observe(self) -> dict[str, torch.Tensor]:
        return self._observation(self.heard_tokens())

    def target_from_obs(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The phone target is the heard part of the observation (``tokens`` or ``msg_ids``)."""
        return obs[self._heard_key]

    @property
    def message_tokens(self) -> torch.Tensor:
        """int32 ``[num_ids, W]``: the gather table of ``obs_mode="ids"``: row ``i`` holds the
        tokens of message id ``i``, 0-padded (row 0: no message). See
        :mod:`envgym.phone.packing`."""
        return self.engine.packer.table

    def tokens_from_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """int32 ``[B, L]``: the token observation of ``[B, MSG_SLOTS]`` message ids (the
        ``msg_ids`` of an ``obs_mode="ids"`` observation or target), gathered from
        :attr:`message_tokens` and laid end to end."""
        return self.engine.packer.pack(torch.as_tensor(ids, device=self.device))

    # ------------------------------------------------------------------ extras
    def raw_baseline(self, steps: int, warmup: int, seed: int) -> tuple[str, float, float]:
        """The phone family's raw baseline for ``envgym bench``: the ceiling step
        (:mod:`envgym.phone.ceiling`) at this env's batch size, action count, token length and
        observation mode, on its device: (description, steps/s, seconds)."""
        from envgym.phone.ceiling import ceiling_steps_per_s

        ids_only = self.obs_mode == "ids"
        n = int(self.single_action_space.n)
        sps, dt = ceiling_steps_per_s(
            self.num_envs, n, self.engine.L, self.device, steps, warmup, seed, ids_only
        )
        what = "message ids" if ids_only else f"a [B, {self.engine.L}] token gather"
        return f"phone ceiling: minimal table-driven dialogue step, {what}", sps, dt

    def oracle_action(self) -> torch.Tensor:
        """One catalogue action per world that makes progress toward the goal (a scripted
        planner over the compiled tables; robust to phrasing, rep and hold variation)."""
        return self.engine.oracle(self.state)

    def decode(self, tokens: torch.Tensor | np.ndarray) -> str:
        """Token ids back to text (for inspecting observations and targets)."""
        inv = {i: t for t, i in self.compiled.book.vocab.items()}
        arr = tokens.detach().cpu().numpy() if torch.is_tensor(tokens) else np.asarray(tokens)
        ids = [int(x) for x in arr.reshape(-1) if int(x) != 0]
        return " ".join(inv.get(i, "<unk>") for i in ids).replace(" <sep>", "\n").strip()

    def render_heard(self, world: int = 0, last_step: bool = False) -> list[tuple[str, str]]:
        """(speaker, text) of each message world ``world`` heard: in its current observation,
        or (``last_step=True``) in answer to the last step, before any auto-reset."""
        out = []
        msgs_t, vars_t = self._step_msgs if last_step else (self.state["msgs"], self.state["vars"])
        msgs = msgs_t[world].tolist()
        var = vars_t[world].tolist()
        for m, v in zip(msgs, var, strict=True):
            if m >= 0:
                text = self.compiled.book.render(m, v)
                speaker, _, body = text.partition(": ")
                out.append((speaker, body))
        return out


def _shown(action: Any) -> str:
    """An action as transcript text, bounded (a depth- and length-limited repr for objects)."""
    text = action if isinstance(action, str) else reprlib.repr(action)
    return text if len(text) <= 200 else text[:200] + "..."


class PhoneEnv(SingleEnv):
    """The phone env for one call at a time: the batched engine at B=1 plus text adapters.

    ``obs_mode="text"`` (default): observations are what the assistant hears this step as text
    (one ``speaker: words`` line per message) and ``info["messages"]`` holds them as chat
    messages; actions are strings: an OpenAI-style JSON tool call
    (``{"name": "provide", "arguments": {"fact": "card_last4", "value": "4242"}}``, schemas in
    :meth:`tool_schemas`) or free text (``dial 800-555-0100``, ``press 1``, ``wait``,
    ``request discount``, ``my account number is SK-1``, ``ask user card_last4``, ``yes``,
    ``report``). A stated value is checked against the truth: an invented card number fails
    verification as on a real call. Text that can't be parsed gets the rep's "sorry, I didn't
    catch that" and the ``invalid_action`` penalty.

    ``obs_mode="tokens"``: the observation, action and target spaces of
    :class:`PhoneVectorEnv` for one world; seeded ``s + i`` it equals world ``i`` of a vector
    env seeded ``s``.

    ``info`` always has ``next_obs_target`` (token ids of the world's answer),
    ``reward_terms``, ``success`` and ``action_error`` (``""`` when the action was carried out,
    else a reason such as ``"not_on_call"`` or ``"not_understood"``).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        scenario: ScenarioSpec = "isp_bill_discount",
        *,
        obs_mode: str = "text",
        difficulty: int = 1,
        num_generated: int = 32,
        generator_seed: int = 0,
        device: str | torch.device | None = "cpu",
        max_tokens: int | None = None,
        hints: bool | None = None,
        render_mode: str | None = None,
        show_admissible: bool = False,
        **aids: Any,
    ) -> None:
        if obs_mode not in ("text", "tokens"):
            raise ValueError(f"obs_mode must be 'text' or 'tokens', got {obs_mode!r}")
        self.check_render_mode(render_mode)
        self.obs_mode = obs_mode
        vec = PhoneVectorEnv(
            1,
            scenario,
            difficulty=difficulty,
            num_generated=num_generated,
            generator_seed=generator_seed,
            device=device,
            max_tokens=max_tokens,
            hints=hints,
            cuda_graph=False,  # one world: the text face reads step messages between steps
            **aids,
        )
        super().__init__(vec, render_mode)
        self.vec: PhoneVectorEnv = vec
        self.show_admissible = show_admissible
        self.compiled = self.vec.compiled
        self.parser = ActionParser(self.compiled, self.vec.engine.garbled_action)
        if obs_mode == "text":
            # Every character the world can say, so observations always lie in the space.
            said = {ch for texts in self.compiled.book.texts for v in texts for ch in v}
            self.observation_space = spaces.Text(
                max_length=8192, charset=frozenset(_TEXT_CHARSET | said)
            )
            self.action_space = spaces.Text(max_length=1024, min_length=1, charset=_TEXT_CHARSET)
        self.action_names = self.vec.action_names
        self._episode_scenario = 0
        self._transcript: list[str] = []
        self._parsed: ParsedAction | None = None
        self._last_action = 0

    # ------------------------------------------------------------------ helpers
    def _observation(self, obs: dict[str, torch.Tensor]) -> Any:
        if self.obs_mode == "tokens":
            return super()._observation(obs)
        return self._text()

    def _text(self, last_step: bool = False) -> str:
        text = "\n".join(f"{s}: {b}" for s, b in self.vec.render_heard(0, last_step))
        if self.show_admissible:
            text += "\n" + self.admissible_text()
        return text

    def admissible_actions(self) -> list[str]:
        """Catalogue names of the actions admissible now (see ``info["action_mask"]``)."""
        mask = self.vec.action_masks()[0].tolist()
        return [n for n, ok in zip(self.action_names, mask, strict=True) if ok]

    def admissible_text(self) -> str:
        """The admissible tools as one observation line (``show_admissible=True``)."""
        return "system: admissible: " + ", ".join(self.admissible_actions())

    def _messages(self, last_step: bool = False) -> list[dict[str, str]]:
        return [
            {"role": "user", "name": s, "content": b}
            for s, b in self.vec.render_heard(0, last_step)
        ]

    @property
    def scenario_index(self) -> int:
        """Index (in the compiled set) of the scenario the current episode runs."""
        return int(self.vec.state["scenario"][0])

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The assistant's actions as OpenAI-style function tool schemas."""
        return tool_schemas(self.compiled)

    def oracle_action(self) -> Any:
        """An action that makes progress toward the goal: an int (tokens face) or a JSON
        tool call string (text face) that names the true values."""
        a = int(self.vec.oracle_action()[0])
        if self.obs_mode == "tokens":
            return a
        return self.action_to_text(a)

    def action_to_text(self, action: int) -> str:
        """A catalogue action as the JSON tool call the text face accepts."""
        import json

        name = self.action_names[action]
        kind, _, arg = name.partition(":")
        sc = self.compiled.scenarios[self.scenario_index]
        args: dict[str, Any] = {}
        if kind == "dial":
            args = {
                "number": sc.company.numbers[int(arg)].digits
                if int(arg) < len(sc.company.numbers)
                else arg
            }
        elif kind == "press":
            args = {"key": arg}
        elif kind in ("request", "ask_about"):
            args = {"service": arg}
        elif kind == "ask_user":
            args = {"fact": arg}
        elif kind == "provide":
            val = next((f.value for f in sc.user.facts if f.id == arg), "unknown")
            known = bool(self.vec.state["known"][0, self.compiled.facts.index(arg)])
            args = {"fact": arg, "value": val if known else "0000"}
        return json.dumps({"name": kind, "arguments": args})

    def _pin_scenario(self, index: Any) -> dict[str, torch.Tensor]:
        """Restart the current episode on scenario ``index`` of the compiled set (evaluation
        and continual sequences choose the scenario instead of drawing it)."""
        K = len(self.compiled.scenarios)
        if (
            isinstance(index, bool)
            or not isinstance(index, (int, np.integer))
            or not (0 <= int(index) < K)
        ):
            raise ValueError(
                f"options['scenario_index'] must be an int in 0..{K - 1}, got {index!r}"
            )
        self.vec.state["scenario"][0] = int(index)
        self.vec.engine.reset_scenario_fields(self.vec.state)
        self.vec.state_changed()
        return self.vec.observe()

    # ------------------------------------------------------------------ SingleEnv hooks
    def _face_options(self, options: dict[str, Any]) -> dict[str, Any]:
        pin = options.pop("scenario_index", None)
        return {} if pin is None else {"scenario_index": pin}

    def _begin_episode(self, obs: Any, face_options: dict[str, Any]) -> Any:
        if "scenario_index" in face_options:
            obs = self._pin_scenario(face_options["scenario_index"])
        self._episode_scenario = self.scenario_index
        self._transcript = [self._text()]
        return obs

    def _reset_extra(self, obs: Any) -> dict[str, Any]:
        # The step info's keys at their reset values (envgym.core.info), so consumers that
        # stack infos over an episode (Minari's DataCollector) see one structure.
        extra: dict[str, Any] = {
            "action_name": "",
            "scenario": self.compiled.scenarios[self.scenario_index].name,
        }
        if self.obs_mode == "text":
            extra["messages"] = self._messages()
        if self.vec.publish_mask:
            extra[keys.ACTION_MASK] = self.vec.action_masks()[0].cpu().numpy()
        if self.vec.publish_target_mask:
            extra[keys.TARGET_MASK] = self.vec.reset_target_mask()[0].cpu().numpy()
        return extra

    def _to_vector_action(self, action: Any) -> Any:
        self._parsed = None
        if self.obs_mode == "tokens":
            a = one_world_action(action)
            step_in: Any = a
        else:
            # The text face passes what was said; the engine decides whether it is true.
            parsed = self._parsed = self.parser.parse(action, self.scenario_index)
            a = torch.tensor([parsed.action])
            said = None if parsed.value is None else self.vec.engine.value_id(parsed.value)
            step_in = PhoneActions(a, None if said is None else torch.tensor([said]))
        self._last_action = a
        return step_in

    def _action_error(self, info: dict[str, Any]) -> str:
        if self._parsed is not None and self._parsed.error:
            return f"not_understood: {self._parsed.error}"
        return ACTION_ERRORS[int(info[keys.ACTION_ERROR][0])]

    def _step_extra(self, info: dict[str, Any]) -> dict[str, Any]:
        aid = int(torch.as_tensor(self._last_action).reshape(-1)[0])
        extra: dict[str, Any] = {
            "action_name": self.action_names[aid] if aid < len(self.action_names) else "garbled",
            # The episode's scenario, as at reset (the world may already have auto-reset).
            "scenario": self.compiled.scenarios[self._episode_scenario].name,
        }
        for k in (keys.ACTION_MASK, keys.TARGET_MASK):
            if k in info:
                extra[k] = info[k][0].cpu().numpy()
        return extra

    def _step_observation(self, final: Any, action: Any, info: dict[str, Any]) -> Any:
        text = ""
        if self.obs_mode == "text" or self.render_mode is not None:
            # From the step's own messages: the world may already have auto-reset.
            text = self._text(last_step=True)
            said = _shown(action) if self.obs_mode == "text" else info["action_name"]
            self._transcript.append(f"assistant: {said}")
            self._transcript.append(text)
        if self.obs_mode == "text":
            info["messages"] = self._messages(last_step=True)
            return text
        return super()._observation(final)

    def render(self) -> str | np.ndarray | None:
        """``"ansi"`` / ``"human"``: the last step's lines of the transcript (``"human"`` prints
        them on every step); ``"rgb_array"``: a picture of the call (its state and the newest
        lines of the transcript, :func:`envgym.phone.picture.call_frame`)."""
        if self.render_mode in ("ansi", "human"):
            return "\n".join(self._transcript[-3:]) if self._transcript else ""
        if self.render_mode == "rgb_array":
            from envgym.phone.picture import call_frame

            st = self.vec.state
            known = [f for k, f in enumerate(self.compiled.facts) if bool(st["known"][0, k])]
            header = [
                f"envgym phone: {self.compiled.scenarios[self.scenario_index].name}",
                f"turn {int(st['turn'][0])}   phase {int(self.vec.observe()['phase'][0])}   "
                f"known: {', '.join(known) or '-'}",
            ]
            return call_frame(header, self._transcript)
        return None
