"""Three parties on one phone engine: the assistant, the company's rep and the user.

Any subset of the parties is learned; the others are played by the engine's scripted
simulators (the assistant by its oracle, the rep by :meth:`PhoneEngine.rep_policy`, the user by
:meth:`PhoneEngine.user_policy`). Two faces over the same batched engine:

- :class:`PhoneParallelVectorEnv`: B worlds at once, dicts of ``[B, ...]`` tensors per agent
  (for training loops), SAME_STEP auto-reset like every envgym vector env.
- :class:`PhoneParallelEnv`: a PettingZoo ``ParallelEnv``, that engine at B=1
  (``envgym.phone.parallel_env(...)``; ``envgym.phone.aec_env(...)`` is its AEC form).

Turn structure: a world's *floor* says who speaks next. Each step, the party holding the floor
acts; the others' actions are ignored in that world (``info[agent]["my_turn"]`` and the
``my_turn`` observation say whose turn it is). A scripted party answers within the step, so
with only the assistant learned a step is exactly a single-agent ``PhoneEnv`` step.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envgym.core import StepOutput, keys
from envgym.core.errors import InvalidActionError
from envgym.core.single import world_info, world_obs
from envgym.core.vector import integer_actions, one_world_action
from envgym.phone.engine import PhoneActions
from envgym.phone.faces import PhoneVectorEnv
from envgym.phone.names import (
    FLOOR_ASSISTANT,
    FLOOR_REP,
    FLOOR_USER,
    PARTIES,
    REP,
    REP_ACTION_ERRORS,
    REP_REWARD_TERMS,
    SLOT_GRANT,
    STIMULUS_NAMES,
    USER_ACTIONS,
    USER_REWARD_TERMS,
)
from envgym.phone.scenarios import ScenarioSpec

_TURN_MAX = 10_000
_FLOOR_OF = {"assistant": FLOOR_ASSISTANT, "rep": FLOOR_REP, "user": FLOOR_USER}


def _box(low: int, high: int, n: int = 1) -> spaces.Box:
    return spaces.Box(low, high, (n,), np.int32)


def check_learners(learners: Sequence[str] | str) -> tuple[str, ...]:
    """Validate a ``learners`` argument: a non-empty subset of the three parties."""
    if isinstance(learners, str):
        learners = (learners,)
    out = tuple(learners)
    bad = [p for p in out if p not in PARTIES]
    if bad or not out or len(set(out)) != len(out):
        raise ValueError(
            f"learners must be a non-empty subset of {PARTIES} without repeats, got {out!r}"
        )
    return tuple(p for p in PARTIES if p in out)


class _ThreePartyCore(PhoneVectorEnv):
    """The phone vector env with per-party observations and the learned parties' actions
    passed to the engine (the auto-reset, seeding and snapshots are the base class's)."""

    def __init__(self, num_envs: int, scenario: ScenarioSpec, learners: tuple[str, ...], **kw: Any):
        super().__init__(num_envs, scenario, cuda_graph=False, **kw)
        self.learners = learners
        self.last_out: dict[str, torch.Tensor] = {}
        c, e = self.compiled, self.engine
        e.party_rewards = True  # the rep's and the user's rewards come out of every step
        F, S, P, D = c.dims["F"], c.dims["S"], c.dims["P"], c.dims["D"]
        max_fee = int(e.t["svc_fee"].max()) if e.t["svc_fee"].numel() else 0
        self.party_observation_space = {
            "assistant": spaces.Dict(
                {**self.single_observation_space.spaces, "my_turn": _box(0, 1)}
            ),
            "rep": spaces.Dict(
                {
                    "my_turn": _box(0, 1),
                    "on_line": _box(0, 1),
                    "stimulus": _box(0, len(STIMULUS_NAMES) - 1),
                    "stated": _box(-1, max(F, S) - 1),
                    "claim_matches": _box(0, 1),
                    "request": _box(-1, S - 1),
                    "stage": _box(0, P),
                    "pending": _box(-1, F - 1),
                    "department": _box(0, D - 1),
                    "required": _box(0, 1, F),
                    "verified": _box(0, 1, F),
                    "eligible": _box(0, 1),
                    "fee": _box(0, max_fee),
                    "has_offer": _box(0, 1),
                    "can_transfer": _box(0, 1),
                    "stated_department": _box(-1, D - 1),
                    "turn": _box(0, _TURN_MAX),
                }
            ),
            "user": spaces.Dict(
                {
                    "my_turn": _box(0, 1),
                    "asked": _box(-1, F - 1),
                    "has_fact": _box(0, 1, F),
                    "told": _box(0, 1, F),
                    "refused": _box(0, 1, F),
                    "turn": _box(0, _TURN_MAX),
                }
            ),
        }
        self.party_action_space = {
            "assistant": self.single_action_space,
            "rep": spaces.Discrete(len(e.rep_catalogue)),
            "user": spaces.Discrete(len(USER_ACTIONS)),
        }
        self.party_target_space: dict[str, spaces.Space] = {"assistant": self.single_target_space}
        for p in ("rep", "user"):
            sub = self.party_observation_space[p].spaces.values()
            self.party_target_space[p] = spaces.Box(
                np.concatenate([s.low for s in sub]).astype(np.int32),
                np.concatenate([s.high for s in sub]).astype(np.int32),
                dtype=np.int32,
            )

    # ------------------------------------------------------------------ engine hooks
    def _step_worlds(self, actions: torch.Tensor) -> StepOutput:
        out = self.engine.step(self.state, self._engine_inputs(actions))
        self.last_out = out
        self._step_msgs = (self.state["msgs"].clone(), self.state["vars"].clone())
        self.state_changed()
        return StepOutput(
            reward=out["reward"],
            terminated=out["terminated"],
            truncated=out["truncated"],
            next_obs_target=self.heard_tokens(),
            reward_terms=out["reward_terms"],
            success=out["success"],
            action_error=out["action_error"],
        )

    def _observe(self) -> dict[str, dict[str, torch.Tensor]]:  # type: ignore[override]
        st, t = self.state, self.engine.t
        sc = st["scenario"]
        i32 = torch.int32
        turn = st["turn"].to(i32)[:, None]
        floor = st["floor"]
        out: dict[str, dict[str, torch.Tensor]] = {}
        if "assistant" in self.learners:
            obs = super()._observe()
            obs["my_turn"] = (floor == FLOOR_ASSISTANT).to(i32)[:, None]
            out["assistant"] = obs
        if "rep" in self.learners:
            svc = st["service"]
            s0 = svc.clamp(min=0)
            active = (svc >= 0)[:, None]
            prog = t["prog_fact"][sc, s0, : self.engine.V + SLOT_GRANT]  # [B, V+3]
            F = self.engine.F
            required = torch.zeros(sc.shape[0], F + 1, dtype=torch.bool, device=self.device)
            required.scatter_(1, torch.where(prog >= 0, prog, F), True)
            about = st["stim_arg"].clamp(min=0, max=max(len(self.compiled.services) - 1, 0))
            stated_dept = torch.where(
                (st["stim_arg"] >= 0) & t["svc_exists"][sc, about],
                t["svc_dept"][sc, about],
                -1,
            )

            def col(x: torch.Tensor) -> torch.Tensor:
                return x.to(i32)[:, None]

            out["rep"] = {
                "my_turn": col(floor == FLOOR_REP),
                "on_line": col(st["phase"] == REP),
                "stimulus": col(st["stim"]),
                "stated": col(st["stim_arg"]),
                "claim_matches": col(st["stim_ok"]),
                "request": col(svc),
                "stage": col(st["pc"]),
                "pending": col(self.engine.pending_fact(st)),
                "department": col(st["dept"]),
                "required": (required[:, :F] & active).to(i32),
                "verified": st["verified"].to(i32),
                "eligible": col(t["elig_pass"][sc, s0] & (svc >= 0)),
                "fee": col(torch.where(svc >= 0, t["svc_fee"][sc, s0], 0)),
                "has_offer": col(t["has_offer"][sc, s0] & (svc >= 0)),
                "can_transfer": col(t["dept_transfers"][sc, st["dept"]]),
                "stated_department": col(stated_dept),
                "turn": turn,
            }
        if "user" in self.learners:
            out["user"] = {
                "my_turn": (floor == FLOOR_USER).to(i32)[:, None],
                "asked": st["user_asked"].to(i32)[:, None],
                "has_fact": t["fact_exists"][sc].to(i32),
                "told": st["known"].to(i32),
                "refused": st["user_refused"].to(i32),
                "turn": turn.clone(),
            }
        return out

    def party_target(self, agent: str, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """An agent's ``next_obs_target`` encoding of its (batched) observation: the heard
        tokens for the assistant (as in the single-agent env), the flattened observation for
        the rep and the user (everything in it is a function of the world's state)."""
        if agent == "assistant":
            return obs["tokens"]
        order = self.party_observation_space[agent].spaces  # the space's (sorted) key order
        return torch.cat([obs[k].to(torch.int32) for k in order], dim=1)

    def target_from_obs(self, obs: Any) -> torch.Tensor:
        return self.party_target(self.learners[0], obs[self.learners[0]])


class PhoneParallelVectorEnv:
    """B three-party calls on the batched phone engine; any subset of the parties learned.

    ## Agents
    ``learners`` (a subset of ``("assistant", "rep", "user")``); the other parties are the
    engine's scripted simulators (assistant: the oracle; rep: the company's policy,
    :meth:`PhoneEngine.rep_policy`; user: answers every fact it has).

    ## Observations (``dict[agent, dict[str, Tensor [B, ...]]]``)
    - assistant: the single-agent tokens observation plus ``my_turn``.
    - rep: its screen: ``my_turn``, ``on_line``, ``stimulus`` (what it answers: pickup,
      continue, unclear, waiting, request, ask_about, provide), ``stated`` (the service or
      fact named), ``claim_matches`` (the stated value matches the account), ``request`` (the
      active request, -1 none), ``stage`` (its checklist position), ``pending`` (the fact
      the checklist waits for, -1 none), ``department``,
      ``required`` / ``verified`` (facts, ``[F]``), ``eligible`` (the account passes the
      request's eligibility rule), ``fee``, ``has_offer``, ``can_transfer``,
      ``stated_department``, ``turn``.
    - user: ``my_turn``, ``asked`` (the fact asked, -1 none), ``has_fact`` / ``told`` /
      ``refused`` (``[F]``), ``turn``.

    ## Actions (``dict[agent, int Tensor [B]]``; only the floor holder's counts in a world)
    - assistant: the single-agent catalogue (``action_names["assistant"]``).
    - rep: ``listen``, ``greet``, ``verify`` / ``reject`` (the stated fact), ``grant`` /
      ``refuse`` (the active request), ``transfer``, ``refer`` (give the other department's
      number), ``hold``, ``explain``, ``ask_fee``, ``offer``, ``cannot_help``,
      ``not_understood``, ``still_there``, ``unrequested``, ``ask:f`` per fact.
    - user: ``answer``, ``dont_know``, ``refuse``.

    ## Rewards (``info[agent]["reward_terms"]`` sum to the agent's reward)
    - assistant: the single-agent terms.
    - rep: ``resolved`` (the goal term: the caller's request done), ``forbidden_grant`` (-1 per
      grant before the request's checks are done: unverified caller, ineligible account or no
      fee consent), ``false_verification`` (-1 per false statement accepted),
      ``wrongful_refusal`` (-0.5 per refusal of an eligible caller or rejection of a true
      statement), ``invalid_action``, ``turn_cost``.
    - user: ``goal``, ``turn_cost``.

    ``info[agent]["success"]``: the goal holds (assistant, user); the goal holds and no policy
    was broken this episode (rep). ``next_obs_target`` per agent, computed from the true next
    observation before any auto-reset; ``final_obs`` / ``_final_obs`` as in every envgym vector
    env. Episodes end for all agents together (the assistant's report, or the turn limit; with
    a learned rep or user their turns count toward it).
    """

    def __init__(
        self,
        num_envs: int = 1,
        scenario: ScenarioSpec = "isp_bill_discount",
        learners: Sequence[str] | str = PARTIES,
        *,
        device: str | torch.device | None = "cpu",
        **kwargs: Any,
    ) -> None:
        self.learners = check_learners(learners)
        self.core = _ThreePartyCore(num_envs, scenario, self.learners, device=device, **kwargs)
        self.num_envs = self.core.num_envs
        self.device = self.core.device
        self.compiled = self.core.compiled
        self.engine = self.core.engine
        self.possible_agents = list(self.learners)
        self.agents = list(self.learners)
        c = self.core
        self.single_observation_spaces = {a: c.party_observation_space[a] for a in self.learners}
        self.single_action_spaces = {a: c.party_action_space[a] for a in self.learners}
        self.single_target_spaces = {a: c.party_target_space[a] for a in self.learners}
        self.action_names = {
            "assistant": c.action_names,
            "rep": [a.name for a in self.engine.rep_catalogue],
            "user": list(USER_ACTIONS),
        }
        self.reward_term_names = {
            "assistant": c.reward_term_names,
            "rep": REP_REWARD_TERMS,
            "user": USER_REWARD_TERMS,
        }
        self.action_error_names = {
            "assistant": c.action_error_names,
            "rep": REP_ACTION_ERRORS,
            "user": ("",),
        }

    # ------------------------------------------------------------------ helpers
    def _convert(self, agent: str, action: Any) -> torch.Tensor:
        """One party's actions, validated by the vector base's rule (``InvalidActionError``)."""
        try:
            a = integer_actions(action, self.num_envs)
        except InvalidActionError as e:
            raise InvalidActionError(f"{agent} actions: {e}") from None
        n = int(self.single_action_spaces[agent].n)
        bad = (a < 0) | (a >= n)
        if bool(bad.any()):
            idx = torch.nonzero(bad).flatten()[:8].tolist()
            raise InvalidActionError(
                f"{agent} actions out of Discrete({n}) in worlds {idx}: {a[bad][:8].tolist()}"
            )
        return a.to(self.device)

    def oracle_actions(self) -> dict[str, torch.Tensor]:
        """Each learned party's scripted decision per world (its oracle): the assistant's
        planner, the rep's policy, the user answering."""
        st, e = self.core.state, self.engine
        out = {}
        if "assistant" in self.learners:
            out["assistant"] = e.oracle(st)
        if "rep" in self.learners:
            out["rep"] = e.rep_policy(st)
        if "user" in self.learners:
            out["user"] = e.user_policy(st)
        return out

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, dict[str, Any]]]:
        """Reset the worlds (``seed=s`` seeds world i with ``s+i``, as every envgym vector env)."""
        obs, _ = self.core.reset(seed=seed, options=options)
        return obs, {a: {"my_turn": obs[a]["my_turn"][:, 0].bool()} for a in self.learners}

    def step(
        self, actions: dict[str, Any], stated_value: torch.Tensor | None = None
    ) -> tuple[Any, Any, Any, Any, Any]:
        """One turn in every world: ``actions[agent]`` is an int ``[B]`` per learned agent.

        ``stated_value`` (int64 ``[B]``, optional): for the assistant's ``provide`` actions,
        the id of the value it states (:meth:`PhoneEngine.value_id`; ``STATES_KNOWN`` or
        None: it states what it knows); the engine checks it against the user's true value.
        """
        if not isinstance(actions, dict):
            raise InvalidActionError(
                f"actions must be a dict agent -> [B] actions, got {reprlib.repr(actions)}"
            )
        missing = [a for a in self.learners if a not in actions]
        if missing:
            raise InvalidActionError(
                f"missing actions for agents {missing} (learners: {self.learners})"
            )
        act = {a: self._convert(a, actions[a]) for a in self.learners}
        core = self.core
        # A scripted assistant is the oracle.
        assistant = act["assistant"] if "assistant" in act else self.engine.oracle(core.state)
        inputs = PhoneActions(assistant, stated_value, act.get("rep"), act.get("user"))
        obs, reward, term, trunc, info = core.step(inputs)
        out = core.last_out
        final = info[keys.FINAL_OBS]
        done = term | trunc
        rewards = {
            "assistant": reward,
            "rep": out["rep_reward"],
            "user": out["user_reward"],
        }
        terms = {
            "assistant": out["reward_terms"],
            "rep": out["rep_reward_terms"],
            "user": out["user_reward_terms"],
        }
        success = {
            "assistant": out["success"],
            "rep": out["rep_success"],
            "user": out["success"],
        }
        errors = {
            "assistant": out["action_error"],
            "rep": out["rep_action_error"],
            "user": torch.zeros_like(out["action_error"]),
        }
        infos = {}
        for a in self.learners:
            infos[a] = {
                keys.NEXT_OBS_TARGET: core.party_target(a, final[a]),
                keys.REWARD_TERMS: terms[a],
                keys.SUCCESS: success[a],
                keys.ACTION_ERROR: errors[a],
                "my_turn": obs[a]["my_turn"][:, 0].bool(),
                keys.FINAL_OBS: final[a],
                "_" + keys.FINAL_OBS: done,
            }
        return (
            obs,
            {a: rewards[a] for a in self.learners},
            {a: term for a in self.learners},
            {a: trunc for a in self.learners},
            infos,
        )

    def get_state(self, worlds: Sequence[int] | torch.Tensor | None = None) -> dict[str, Any]:
        """A deep copy of the worlds' state (see :meth:`TorchVectorEnv.get_state`)."""
        return self.core.get_state(worlds)

    def set_state(self, state: Any, worlds: Sequence[int] | torch.Tensor | None = None) -> None:
        """Write a snapshot back (see :meth:`TorchVectorEnv.set_state`)."""
        self.core.set_state(state, worlds)

    def decode(self, tokens: torch.Tensor | np.ndarray) -> str:
        """Token ids back to text."""
        return self.core.decode(tokens)

    def close(self) -> None:
        self.core.close()


class PhoneParallelEnv(ParallelEnv):
    """The three-party phone call as a PettingZoo ``ParallelEnv``: the batched engine at B=1.

    See :class:`PhoneParallelVectorEnv` for agents, observations, actions and rewards; here
    they are NumPy values of one world, rewards floats, ``info[agent]`` has
    ``next_obs_target`` (NumPy), ``reward_terms`` (floats), ``success``, ``action_error``
    (a name, ``""`` when fine) and ``my_turn``. When the episode ends every agent leaves
    ``agents``; ``reset()`` starts the next episode.
    """

    metadata: dict[str, Any] = {
        "name": "envgym_phone_v0",
        "render_modes": [],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        scenario: ScenarioSpec = "isp_bill_discount",
        learners: Sequence[str] | str = PARTIES,
        *,
        device: str | torch.device | None = "cpu",
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError("the three-party phone env has no render modes")
        self.render_mode = None
        self.vec = PhoneParallelVectorEnv(1, scenario, learners, device=device, **kwargs)
        self.possible_agents = list(self.vec.possible_agents)
        self.agents: list[str] = []
        self._next_obs: dict[str, Any] | None = None

    def _world_obs(self, agent: str, obs: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The world's observation of ``agent`` as NumPy (core's un-batching rule)."""
        return world_obs(obs, self.vec.single_observation_spaces[agent])

    def observation_space(self, agent: str) -> spaces.Space:
        # The same space object on every call (PettingZoo seeds and checks it by identity).
        return self.vec.single_observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.vec.single_action_spaces[agent]

    def target_space(self, agent: str) -> spaces.Space:
        """The space of ``info[agent]["next_obs_target"]``."""
        return self.vec.single_target_spaces[agent]

    def oracle_actions(self) -> dict[str, int]:
        """Each agent's scripted decision (its oracle) as ints."""
        return {a: int(v[0]) for a, v in self.vec.oracle_actions().items() if a in self.agents}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is None and self._next_obs is not None:
            # The engine already started this world's next episode (SAME_STEP auto-reset).
            obs = self._next_obs
        else:
            obs, _ = self.vec.reset(seed=seed, options=options)
        self._next_obs = None
        self.agents = list(self.possible_agents)
        np_obs = {a: self._world_obs(a, obs[a]) for a in self.agents}
        return np_obs, {a: {"my_turn": bool(np_obs[a]["my_turn"][0])} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
        if not self.agents:
            raise RuntimeError("the episode has ended; call reset()")
        if not isinstance(actions, dict):
            raise InvalidActionError(
                f"actions must be a dict agent -> action, got {reprlib.repr(actions)}"
            )
        obs, rew, term, trunc, info = self.vec.step(
            {a: one_world_action(actions[a]) for a in self.agents if a in actions}
        )
        done = bool(term[self.agents[0]][0] or trunc[self.agents[0]][0])
        names = self.vec.action_error_names
        out_obs, rewards, terms, truncs, infos = {}, {}, {}, {}, {}
        for a in self.agents:
            src = info[a][keys.FINAL_OBS] if done else obs[a]
            out_obs[a] = self._world_obs(a, src)
            rewards[a] = float(rew[a][0])
            terms[a] = bool(term[a][0])
            truncs[a] = bool(trunc[a][0])
            infos[a] = world_info(info[a], names[a][int(info[a][keys.ACTION_ERROR][0])])
            infos[a]["my_turn"] = bool(out_obs[a]["my_turn"][0])
        if done:
            self._next_obs = obs
            self.agents = []
        return out_obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        """The world's heard tokens (a global view for centralised critics)."""
        return self.vec.core.heard_tokens()[0].cpu().numpy()

    def close(self) -> None:
        self.vec.close()
