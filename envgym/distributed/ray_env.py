"""``RayVectorEnv``: an envgym vector env whose worlds live in Ray actors (ARCHITECTURE §7)."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envgym.core import keys
from envgym.core.allocator import Recycler
from envgym.core.vector import ActionRule, one_world_action, resolve_device
from envgym.distributed.wire import (
    MISSING,
    Missing,
    TensorLeaf,
    concat,
    copy_batch,
    from_wire,
    is_record,
    put_rows,
    take_rows,
    to_wire,
)
from envgym.distributed.worker import RESTARTED, EnvWorker

TRUNCATION_REASON = keys.TRUNCATION_REASON
"""Info key: why a world's episode was truncated (``""`` when it was not, or not for a fault)."""

WORKER_LOST = "worker_lost"
"""``info["truncation_reason"]`` of worlds whose worker died or missed the step deadline."""


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("envgym.distributed needs Ray: pip install -e '.[distributed]'") from e
    return ray


class WorkerLostError(RuntimeError):
    """A lost worker could not be brought back within ``restart_timeout_s``."""


class RayVectorEnv(VectorEnv):
    """``num_envs`` worlds of ``env_id`` spread over ``num_workers`` Ray actors.

    Each actor hosts a native envgym vector env of the id (``gym.make_vec(env_id,
    vectorization_mode="vector_entry_point")``) with a contiguous block of the worlds: worker
    ``w`` holds worlds ``world_ranges[w]``. Every step the learner sends each worker its slice
    of the actions, waits for all of them until the step deadline, and gathers the results into
    one batch on ``device``. The contract is the local vector env's: SAME_STEP auto-reset with
    ``info["final_obs"]``, ``next_obs_target``, ``reward_terms``, ``success``,
    ``action_error``, episode statistics and every other info key the family emits (forwarded
    generically), world ``i`` seeded ``seed + i`` whatever worker it lives in.

    ## Faults
    A worker that has not answered ``step_timeout_s`` after the actions were sent (hung), or
    whose process died, is *lost*: a hung one is killed (``ray.kill(no_restart=False)``), Ray
    restarts it (``max_restarts``), and its worlds start new episodes with fresh seeds drawn
    from the reset seed. On that step its worlds report ``truncated=True``,
    ``info["truncation_reason"] == "worker_lost"``, reward 0 (every reward term 0),
    ``success=False``, ``final_obs`` = the last observation the learner saw for them,
    ``next_obs_target`` = its encoding (the world answered nothing), and ``obs`` = the first
    observation of the new episode. The batch shape never changes and the other workers' worlds
    are not touched. ``info["truncation_reason"]`` is in every step's info (``""`` for worlds
    that were not cut short by a fault; the family's own reasons, e.g. the browser's, pass
    through).

    ## Bad input
    A batch the local env would refuse (``step``, ``step_async``, ``send``) is refused with the
    same error before any worker steps, naming bad worlds by their global index: the learner
    checks every world of it with the family's own rule (``action_rule()`` of the hosted env,
    sent once by each worker with the spaces; no Ray call per step). No world changes. What the
    rule accepts is forwarded as the local env would take it: a typed record of per-world
    fields (the phone's ``PhoneActions``: stated values, a learned rep) travels as a record, each
    worker getting its rows of every field; one world's unbatched action (the robot's ``[7]``
    for a batch of one) travels as a batch of one.

    ## Transport
    Observations, rewards and infos travel as NumPy arrays inside Ray objects (see
    :mod:`envgym.distributed.wire`): results above Ray's inline limit (100 KiB) go to the
    node's shared-memory object store and are read there without a deserialising copy; the
    learner makes exactly one copy, into the batch. ``final_obs`` travels only for worlds that
    ended. The batch's big arrays (from 1 MiB) are written into memory that an earlier step
    handed out once nothing holds it (:class:`envgym.core.allocator.Recycler`): every step's
    tensors are new to the caller, without a fresh mapping's page faults.

    Args:
        env_id: a registered envgym id (``envgym/Phone-v0``, ``envgym/Robot-Reach-v0``, ...).
        num_envs: total worlds.
        num_workers: Ray actors (``<= num_envs``); worlds are split as evenly as possible.
        step_timeout_s: the per-step deadline, from sending the actions.
        restart_timeout_s: how long a lost worker (or the first start) may take to come back.
        device: where the gathered batch lives (the learner's device).
        worker_device: the ``device`` of each worker's env (``"cuda"`` needs
            ``worker_options={"num_gpus": 1}`` or a fraction).
        max_restarts: Ray restarts per worker before it counts as dead for good.
        address: a Ray cluster address for ``ray.init`` when Ray is not yet initialised
            (``None``: start Ray on this machine with the cores it has; ``"auto"``: join the
            cluster started with ``ray start``).
        worker_options: extra ``ray.remote`` options of the actors (``num_cpus``, ``num_gpus``,
            ``scheduling_strategy``, ``resources``, ...). Defaults: ``num_cpus=1``,
            ``scheduling_strategy="SPREAD"``.
        **env_kwargs: passed to each worker's ``gym.make_vec`` (``scenario=``, ``task=``, ...).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        num_workers: int = 2,
        *,
        step_timeout_s: float = 30.0,
        restart_timeout_s: float = 120.0,
        device: str | torch.device | None = "cpu",
        worker_device: str = "cpu",
        max_restarts: int = 8,
        address: str | None = None,
        worker_options: dict[str, Any] | None = None,
        **env_kwargs: Any,
    ) -> None:
        ray = _require_ray()
        self._ray = ray
        if int(num_workers) < 1 or int(num_workers) > int(num_envs):
            raise ValueError(f"num_workers must be in 1..num_envs={num_envs}, got {num_workers}")
        if step_timeout_s <= 0:
            raise ValueError(f"step_timeout_s must be > 0, got {step_timeout_s}")
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.num_workers = int(num_workers)
        self.device = resolve_device(device)
        self.step_timeout_s = float(step_timeout_s)
        self.restart_timeout_s = float(restart_timeout_s)
        sizes = [len(b) for b in np.array_split(np.arange(self.num_envs), self.num_workers)]
        self._sizes = sizes
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.world_ranges: list[tuple[int, int]] = [
            (int(starts[w]), int(starts[w + 1])) for w in range(self.num_workers)
        ]
        opts: dict[str, Any] = {"num_cpus": 1, "scheduling_strategy": "SPREAD"}
        opts.update(worker_options or {})
        opts.update(max_restarts=int(max_restarts), max_task_retries=0)
        threads = max(1, int(opts.get("num_cpus") or 1))
        actor_cls = ray.remote(**opts)(EnvWorker)
        kwargs = {**env_kwargs, "device": worker_device}
        self._workers = [actor_cls.remote(env_id, n, kwargs, threads) for n in sizes]
        try:
            descs = ray.get(
                [w.describe.remote() for w in self._workers], timeout=self.restart_timeout_s
            )
        except ray.exceptions.GetTimeoutError as e:
            for w in self._workers:
                ray.kill(w, no_restart=True)
            raise WorkerLostError(
                f"not every one of {self.num_workers} workers started within "
                f"{self.restart_timeout_s} s; the cluster has {ray.available_resources()} "
                f"available and each worker asks for {opts.get('num_cpus')} CPU "
                "(pass worker_options={'num_cpus': ...} to pack more workers per CPU)"
            ) from e
        desc = descs[0]
        self.single_observation_space = desc["single_observation_space"]
        self.single_action_space = desc["single_action_space"]
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_target_space = desc["single_target_space"]
        if self.single_target_space is not None:
            self.target_space = batch_space(self.single_target_space, self.num_envs)
        self.supports_state_snapshots = bool(desc["supports_state_snapshots"])
        self._action_rule: ActionRule | None = desc["action_rule"]
        self.metadata = {**desc["metadata"], "autoreset_mode": AutoresetMode.SAME_STEP}
        for name, value in desc["attributes"].items():
            setattr(self, name, value)
        self.worker_losses: list[tuple[int, int, str]] = []
        """``(step, worker, "hung" | "dead")`` of every loss so far."""
        self._steps = 0
        self._obs_parts: list[Any] = [MISSING] * self.num_workers
        self._pending: list[Any] | None = None
        self._inflight: dict[int, tuple[Any, float]] = {}
        self._sent_at = 0.0
        self._template: Any = None
        self._recycler = Recycler()  # the batch's big arrays: reused once the caller lets go
        self._fault_rng = np.random.default_rng()
        self._ep_return = np.zeros(self.num_envs, dtype=np.float32)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    # ------------------------------------------------------------------ workers
    def worker_pids(self) -> list[int]:
        """The process id of every worker, in worker order (changes when one is restarted)."""
        return self._ray.get(
            [w.pid.remote() for w in self._workers], timeout=self.restart_timeout_s
        )

    def worker_nodes(self) -> list[str]:
        """The node address every worker was placed on, in worker order."""
        return self._ray.get(
            [w.node_ip.remote() for w in self._workers], timeout=self.restart_timeout_s
        )

    def inject_hang(self, worker: int, seconds: float) -> None:
        """Fault injection: worker ``worker``'s next step sleeps ``seconds`` first (past
        ``step_timeout_s``, it is declared lost)."""
        self._ray.get(self._workers[worker].inject_hang.remote(seconds))

    def worker_of(self, world: int) -> int:
        """The worker that hosts world ``world``."""
        for w, (s, e) in enumerate(self.world_ranges):
            if s <= world < e:
                return w
        raise IndexError(f"world {world} out of range 0..{self.num_envs - 1}")

    def _restart(self, lost: Sequence[int], hung: Sequence[int], seeds: dict[int, Any]) -> dict:
        """Kill the hung workers, wait for Ray to restart every lost one, and start new
        episodes there: ``{worker: (obs, info, target_of_last_obs)}`` in wire form."""
        ray = self._ray
        for w in hung:
            ray.kill(self._workers[w], no_restart=False)
        deadline = time.monotonic() + self.restart_timeout_s
        todo = list(lost)
        done: dict[int, Any] = {}
        while todo:
            refs = {w: self._workers[w].restart.remote(seeds[w], self._last_obs(w)) for w in todo}
            left = max(0.0, deadline - time.monotonic())
            ray.wait(list(refs.values()), num_returns=len(refs), timeout=left)
            todo = []
            for w, ref in refs.items():
                try:
                    done[w] = ray.get(ref, timeout=0)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
                    # Submitted before Ray saw the death, or still restarting: try again.
                    if time.monotonic() >= deadline:
                        raise WorkerLostError(
                            f"worker {w} of {self.env_id} did not come back within "
                            f"{self.restart_timeout_s} s"
                        ) from e
                    todo.append(w)
            if todo:
                time.sleep(0.2)
        return done

    def _last_obs(self, w: int) -> Any:
        part = self._obs_parts[w]
        return None if isinstance(part, Missing) else part

    def _fresh_seeds(self, w: int) -> list[int]:
        return [int(s) for s in self._fault_rng.integers(0, 2**31 - 1, self._sizes[w])]

    def _gather(
        self,
        refs: Sequence[Any],
        timeout: float,
        record: bool = True,
        ids: Sequence[int] | None = None,
    ) -> tuple[list[Any], list[int], list[int]]:
        """Results of ``refs`` (one per worker) ready by ``timeout``; lost workers get
        :data:`MISSING`. Returns ``(parts, lost, hung)``."""
        ray = self._ray
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=max(0.0, timeout))
        ready_ids = {r.hex() for r in ready}
        parts: list[Any] = []
        lost: list[int] = []
        hung: list[int] = []
        for w, ref in enumerate(refs):
            if ref.hex() not in ready_ids:
                parts.append(MISSING)
                lost.append(w)
                hung.append(w)
                continue
            try:
                part = ray.get(ref)
            except ray.exceptions.RayActorError:
                part = RESTARTED
            if isinstance(part, str) and part == RESTARTED:
                parts.append(MISSING)
                lost.append(w)
            else:
                parts.append(part)
        for w in lost if record else ():
            wid = w if ids is None else int(ids[w])
            self.worker_losses.append((self._steps, wid, "hung" if w in hung else "dead"))
        return parts, lost, hung

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every world: ``seed=s`` seeds world ``i`` with ``s + i`` (worker ``w`` gets
        ``s + world_ranges[w][0]``); a list gives one seed per world; ``None`` continues.
        ``options={"reset_mask": mask}`` resets only the masked worlds."""
        self._drain()
        if isinstance(seed, int | np.integer):
            seeds: list[Any] = [int(seed) + s for s, _ in self.world_ranges]
            self._fault_rng = np.random.default_rng([int(seed), 0x5EED])
        elif seed is None:
            seeds = [None] * self.num_workers
        else:
            flat = [int(s) for s in seed]
            if len(flat) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(flat)}")
            seeds = [flat[s:e] for s, e in self.world_ranges]
            self._fault_rng = np.random.default_rng([*flat[:4], 0x5EED])
        mask = None
        if options and "reset_mask" in options:
            mask = np.asarray(torch.as_tensor(options["reset_mask"]).cpu(), dtype=bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},)")
        targets = []
        for w, (s, e) in enumerate(self.world_ranges):
            if mask is not None and not mask[s:e].any():
                continue
            opts = None if mask is None else {**options, "reset_mask": mask[s:e]}
            targets.append((w, self._workers[w].reset.remote(seeds[w], opts)))
        parts, lost, hung = self._gather(
            [r for _, r in targets], self.restart_timeout_s, ids=[w for w, _ in targets]
        )
        infos: list[Any] = [MISSING] * self.num_workers
        lost_workers = [targets[i][0] for i in lost]
        for (w, _), part in zip(targets, parts, strict=True):
            if not isinstance(part, Missing):
                self._obs_parts[w], infos[w] = part
        if lost_workers:
            restart_seeds = {
                w: seeds[w]
                if isinstance(seeds[w], list)
                else (
                    [seeds[w] + j for j in range(self._sizes[w])]
                    if seeds[w] is not None
                    else self._fresh_seeds(w)
                )
                for w in lost_workers
            }
            back = self._restart(lost_workers, [targets[i][0] for i in hung], restart_seeds)
            for w, (obs, info, _) in back.items():
                self._obs_parts[w], infos[w] = obs, info
        reset_rows = np.ones(self.num_envs, dtype=bool) if mask is None else mask
        self._ep_return[reset_rows] = 0.0
        self._ep_length[reset_rows] = 0
        obs = from_wire(concat(self._obs_parts, self._sizes), self.device)
        info = concat(infos, self._sizes)
        return obs, ({} if isinstance(info, Missing) else from_wire(info, self.device))

    def _check_actions(self, actions: Any, worlds: np.ndarray) -> None:
        """Refuse a bad batch before any worker steps: the family's own action rule (the
        function its ``_convert_actions`` calls, from :meth:`TorchVectorEnv.action_rule`),
        run here on every world of the batch, raises the family's error naming the bad worlds
        by their global index (``worlds[row]``). No Ray call: the rule came with the spaces."""
        if self._action_rule is not None:
            self._action_rule(actions, int(worlds.size), worlds=worlds)

    def _split(self, actions: Any, workers: Sequence[int]) -> list[Any]:
        """The batch for the worlds of ``workers`` (in that order), checked, as one part per
        worker in wire form (an array or list of its rows; a record of its rows' fields)."""
        worlds = np.concatenate([np.arange(*self.world_ranges[w]) for w in workers])
        self._check_actions(actions, worlds)
        batch = self._as_batch(actions, int(worlds.size))
        bounds = np.cumsum([0, *(self._sizes[w] for w in workers)])
        return [take_rows(batch, np.arange(s, e)) for s, e in itertools.pairwise(bounds)]

    def _as_batch(self, actions: Any, n: int) -> Any:
        """Checked actions for ``n`` worlds in wire form, one row per world."""
        if is_record(actions):
            # A typed record (PhoneActions): its fields travel, the family's rule checked them.
            return to_wire(actions)
        if torch.is_tensor(actions):
            arr: Any = actions.detach().cpu().numpy()
        elif isinstance(actions, np.ndarray):
            arr = actions
        elif isinstance(actions, str | dict):
            raise ValueError(f"expected a sequence of {n} actions")
        else:
            arr = list(actions)
        if n == 1 and self._action_rule is not None and len(arr) != 1:
            # The family's rule took it as one world's unbatched action (the robot's [7] for
            # one world, as the local env of one world does): it travels as a batch of one.
            arr = one_world_action(arr)
        if len(arr) != n:
            raise ValueError(f"expected {n} actions, got {len(arr)}")
        return arr

    def step_async(self, actions: Any) -> None:
        """Send the actions and return at once; :meth:`step_wait` gathers the batch. The
        learner can compute (a policy update, the next actions' features) in between."""
        if any(isinstance(p, Missing) for p in self._obs_parts):
            raise RuntimeError("call reset() before step()")
        if self._pending is not None:
            raise RuntimeError("step_async() called twice without step_wait()")
        if self._inflight:
            raise RuntimeError("steps sent with send() are in flight; recv() them first")
        parts = self._split(actions, range(self.num_workers))
        self._sent_at = time.monotonic()
        self._pending = [w.step.remote(p) for w, p in zip(self._workers, parts, strict=True)]

    def step_wait(self) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Wait (until the step deadline) for the step sent by :meth:`step_async`."""
        if self._pending is None:
            raise RuntimeError("step_wait() without step_async()")
        refs, self._pending = self._pending, None
        timeout = self._sent_at + self.step_timeout_s - time.monotonic()
        parts, lost, hung = self._gather(refs, timeout)
        back = self._restart(lost, hung, {w: self._fresh_seeds(w) for w in lost}) if lost else {}
        result = self._assemble(parts, back)
        self._steps += 1
        return result

    def step(self, actions: Any) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        self.step_async(actions)
        return self.step_wait()

    def _drain(self) -> None:
        """Forget steps sent but never waited for (their results are dropped)."""
        self._pending = None
        self._inflight = {}

    # ------------------------------------------------------------------ ready mode
    def send(self, actions: Any, workers: Sequence[int] | None = None) -> None:
        """ "Return whatever is ready" mode, step 1: send actions to ``workers`` (default: every
        idle worker), in world order of those workers (``sum`` of their world counts).

        Each worker steps on its own; :meth:`recv` returns the ones that have finished, so a
        slow worker delays only its own worlds. Mixing this with :meth:`step` / the
        ``step_async`` pair between two resets is refused.
        """
        if self._pending is not None:
            raise RuntimeError("a step_async() is pending; call step_wait() first")
        if any(isinstance(p, Missing) for p in self._obs_parts):
            raise RuntimeError("call reset() before send()")
        inflight = self._inflight
        ws = (
            [w for w in range(self.num_workers) if w not in inflight]
            if workers is None
            else [int(w) for w in workers]
        )
        busy = [w for w in ws if w in inflight]
        if busy:
            raise RuntimeError(f"workers {busy} have a step in flight; recv() it first")
        if not ws:
            raise RuntimeError("every worker has a step in flight (or none is named); recv() first")
        parts = self._split(actions, ws)
        now = time.monotonic()
        for w, part in zip(ws, parts, strict=True):
            inflight[w] = (self._workers[w].step.remote(part), now)

    def recv(
        self, min_workers: int = 1, timeout: float | None = None
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """ "Return whatever is ready" mode, step 2: the results of the workers whose step has
        finished (at least ``min_workers`` of those in flight, waiting at most ``timeout``
        seconds or until the first deadline), as one batch over their worlds.

        ``info["env_id"]`` (int64, NumPy) holds the global world index of every row and
        ``info["worker_id"]`` the workers, in row order. Workers past their step deadline are
        lost, restarted and returned with their worlds truncated (``"worker_lost"``), as in
        :meth:`step`.
        """
        inflight = self._inflight
        if not inflight:
            raise RuntimeError("recv() without send()")
        ray = self._ray
        now = time.monotonic()
        deadline = min(t for _, t in inflight.values()) + self.step_timeout_s
        wait_s = max(0.0, deadline - now)
        if timeout is not None:
            wait_s = min(wait_s, float(timeout))
        refs = [ref for ref, _ in inflight.values()]
        ray.wait(refs, num_returns=min(int(min_workers), len(refs)), timeout=wait_s)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        ready_ids = {r.hex() for r in ready}
        now = time.monotonic()
        ws = sorted(
            w
            for w, (ref, sent) in inflight.items()
            if ref.hex() in ready_ids or now >= sent + self.step_timeout_s
        )
        if not ws:
            raise TimeoutError(f"no worker finished within {timeout} s")
        refs_ws = [inflight.pop(w)[0] for w in ws]
        parts, lost_j, hung_j = self._gather(refs_ws, 0.0, ids=ws)
        lost = [ws[j] for j in lost_j]
        hung = [ws[j] for j in hung_j]
        back = self._restart(lost, hung, {w: self._fresh_seeds(w) for w in lost}) if lost else {}
        result = self._assemble(parts, back, ws)
        result[4]["worker_id"] = np.asarray(ws, dtype=np.int64)
        self._steps += 1
        return result

    def _fallback_template(self) -> Any:
        """The result structure of a step when none has been seen yet (all workers lost on
        the first step): the contract keys only."""
        f32, b, i64 = np.float32, np.bool_, np.int64
        return (
            TensorLeaf(np.zeros(0, f32)),
            TensorLeaf(np.zeros(0, b)),
            TensorLeaf(np.zeros(0, b)),
            {
                keys.REWARD_TERMS: {},
                keys.SUCCESS: TensorLeaf(np.zeros(0, b)),
                keys.ACTION_ERROR: TensorLeaf(np.zeros(0, i64)),
                keys.EPISODE: {
                    "r": TensorLeaf(np.zeros(0, f32)),
                    "l": TensorLeaf(np.zeros(0, i64)),
                },
                "_" + keys.EPISODE: TensorLeaf(np.zeros(0, b)),
            },
        )

    def _assemble(
        self, parts: list[Any], back: dict[int, Any], workers: Sequence[int] | None = None
    ) -> tuple[Any, ...]:
        """One batch from the workers ``workers`` (default: all, in order): ``parts[j]`` is
        worker ``workers[j]``'s step result or :data:`MISSING` (then ``back`` holds its
        restart)."""
        ws = list(range(self.num_workers)) if workers is None else list(workers)
        sizes = [self._sizes[w] for w in ws]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        n = int(offsets[-1])
        glob = np.concatenate([np.arange(*self.world_ranges[w]) for w in ws])
        prev_obs = {w: self._obs_parts[w] for w in ws}
        template = self._template if self._template is not None else self._fallback_template()
        results = [MISSING if isinstance(p, Missing) else p[0][1:] for p in parts]
        # The template (0 worlds) gives lost workers' rows their structure and dtypes.
        merged = concat([*results, template], [*sizes, 0], self._recycler.big, "step")
        reward, terminated, truncated, info = merged
        self._template = take_rows(merged, np.zeros(0, dtype=np.int64))
        for w, part in zip(ws, parts, strict=True):
            self._obs_parts[w] = back[w][0] if w in back else part[0][0]
        obs_wire = concat([self._obs_parts[w] for w in ws], sizes, self._recycler.big, "obs")
        done = terminated.array | truncated.array
        # final_obs: obs with the ended worlds' rows replaced (a copy only if any ended).
        any_ended = bool(done.any()) or bool(back)
        final = copy_batch(obs_wire, self._recycler.big, "final") if any_ended else obs_wire
        lost_rows: list[np.ndarray] = []
        for j, (w, part) in enumerate(zip(ws, parts, strict=True)):
            s = int(offsets[j])
            if w in back:
                rows = np.arange(s, s + sizes[j])
                lost_rows.append(rows)
                if not isinstance(prev_obs[w], Missing):
                    final = put_rows(final, rows, prev_obs[w])
                info[keys.NEXT_OBS_TARGET] = self._put_target(
                    info.get(keys.NEXT_OBS_TARGET, MISSING), rows, back[w][2], n
                )
                continue
            _, rows, final_rows = part
            if len(rows):
                final = put_rows(final, rows + s, final_rows)
        lost_idx = np.concatenate(lost_rows) if lost_rows else np.zeros(0, dtype=np.int64)
        if lost_idx.size:
            truncated.array[lost_idx] = True
            done[lost_idx] = True
        reasons = info.get(TRUNCATION_REASON)
        if not isinstance(reasons, np.ndarray):
            reasons = np.full(n, "", dtype=object)
        reasons[lost_idx] = WORKER_LOST
        info[TRUNCATION_REASON] = reasons
        # Episode statistics of lost worlds: what they had completed before the loss.
        rew = reward.array
        ep = info.get(keys.EPISODE)
        if isinstance(ep, dict) and lost_idx.size:
            ep["r"].array[lost_idx] = self._ep_return[glob[lost_idx]]
            ep["l"].array[lost_idx] = self._ep_length[glob[lost_idx]]
            info["_" + keys.EPISODE].array[lost_idx] = True
        live = np.ones(n, dtype=bool)
        live[lost_idx] = False
        self._ep_return[glob[live]] += rew[live]
        self._ep_length[glob[live]] += 1
        self._ep_return[glob[done]] = 0.0
        self._ep_length[glob[done]] = 0
        info["_" + keys.FINAL_OBS] = TensorLeaf(done.copy())
        if workers is not None:
            info["env_id"] = glob
        dev = self.device
        obs = from_wire(obs_wire, dev)
        info = from_wire(info, dev)
        # As in the local env: with no episode ended, final_obs *is* obs.
        info[keys.FINAL_OBS] = from_wire(final, dev) if any_ended else obs
        return (
            obs,
            from_wire(reward, dev),
            from_wire(terminated, dev),
            from_wire(truncated, dev),
            info,
        )

    def _put_target(self, current: Any, rows: np.ndarray, target: Any, n: int) -> Any:
        """Write a lost worker's target rows into the batch's ``next_obs_target``."""
        if isinstance(current, Missing):
            arr = target.array if isinstance(target, TensorLeaf) else np.asarray(target)
            blank = np.zeros((n, *arr.shape[1:]), dtype=arr.dtype)
            current = TensorLeaf(blank) if isinstance(target, TensorLeaf) else blank
        return put_rows(current, rows, target)

    # ------------------------------------------------------------------ extras
    def _all(self, method: str, *args: Any) -> list[Any]:
        ray = self._ray
        refs = [getattr(w, method).remote(*args) for w in self._workers]
        return ray.get(refs, timeout=self.restart_timeout_s)

    def oracle_action(self) -> Any:
        """Every worker's ``oracle_action()``, gathered in world order (a tensor on
        ``device``, or a list for string actions).

        The worlds of a worker that died since the last step get placeholder actions (zeros,
        or ``None`` for string actions); the next step reports those worlds lost.
        """
        refs = [w.oracle_action.remote() for w in self._workers]
        parts, _, _ = self._gather(refs, self.restart_timeout_s, record=False)
        if all(isinstance(p, Missing) for p in parts):
            raise WorkerLostError("no worker answered oracle_action()")
        return from_wire(concat(parts, self._sizes), self.device)

    def target_from_obs(self, obs: Any) -> Any:
        """The ``next_obs_target`` encoding of a batched observation (computed by worker 0's
        env: the encoding is the family's, the same in every worker)."""
        ray = self._ray
        ref = self._workers[0].call.remote("target_from_obs", (to_wire(obs),), {})
        return from_wire(ray.get(ref, timeout=self.restart_timeout_s), self.device)

    def _check_snapshots(self) -> None:
        if not self.supports_state_snapshots:
            raise NotImplementedError(
                f"{self.env_id} does not support state snapshots (supports_state_snapshots "
                "is False)"
            )

    def _owners(self, worlds: Any) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(torch.as_tensor(worlds).cpu(), dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_envs):
            raise IndexError(f"worlds must be in 0..{self.num_envs - 1}")
        ends = np.array([e for _, e in self.world_ranges])
        return idx, np.searchsorted(ends, idx, side="right")

    def get_state(self, worlds: Sequence[int] | torch.Tensor | None = None) -> dict[str, Any]:
        """The worlds' state snapshots gathered from the workers (all worlds, or the rows
        ``worlds`` in that order, repeats allowed): see ``TorchVectorEnv.get_state``."""
        self._check_snapshots()
        ray = self._ray
        if worlds is None:
            return from_wire(concat(self._all("get_state", None), self._sizes), self.device)
        idx, owner = self._owners(worlds)
        ws = [w for w in range(self.num_workers) if (owner == w).any()]
        locs = [(idx[owner == w] - self.world_ranges[w][0]).tolist() for w in ws]
        refs = [self._workers[w].get_state.remote(loc) for w, loc in zip(ws, locs, strict=True)]
        parts = ray.get(refs, timeout=self.restart_timeout_s)
        merged = concat(parts, [len(loc) for loc in locs])
        order = np.argsort(owner, kind="stable")  # merged row j is requested row order[j]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        return from_wire(take_rows(merged, inverse), self.device)

    def set_state(
        self, state: dict[str, Any], worlds: Sequence[int] | torch.Tensor | None = None
    ) -> None:
        """Write snapshots back into every world, or into the rows ``worlds``."""
        self._check_snapshots()
        wire = to_wire(state)
        if worlds is None:
            idx = np.arange(self.num_envs)
            owner = np.searchsorted(np.array([e for _, e in self.world_ranges]), idx, "right")
        else:
            idx, owner = self._owners(worlds)
        refs = []
        for w in range(self.num_workers):
            rows = np.flatnonzero(owner == w)
            if rows.size == 0:
                continue
            local = None if worlds is None else (idx[rows] - self.world_ranges[w][0]).tolist()
            refs.append(self._workers[w].set_state.remote(take_rows(wire, rows), local))
        self._ray.get(refs, timeout=self.restart_timeout_s)

    def call_workers(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Call method ``name`` of every worker's env; one result per worker."""
        return [from_wire(r, self.device) for r in self._all("call", name, args, kwargs)]

    def close(self, **kwargs: Any) -> None:
        """Close the workers' envs and end the actors (Ray itself keeps running)."""
        ray = self._ray
        if not getattr(self, "_workers", None):
            return
        # A dead or stuck worker raises here; ray.kill below ends it either way.
        with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
            ray.get([w.close.remote() for w in self._workers], timeout=30)
        for w in self._workers:
            ray.kill(w, no_restart=True)
        self._workers = []
