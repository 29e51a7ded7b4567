"""envgym.distributed.RayVectorEnv: the local contract on Ray workers, and lost workers.

Ray runs in local mode on this machine (2 CPUs, no dashboard, a small object store), started
and stopped by a module fixture. Faults are real: a worker process killed with SIGKILL, and a
worker whose step sleeps past the deadline.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import envgym  # noqa: F401
from envgym.core import keys
from envgym.core.errors import InvalidActionError
from envgym.phone.engine import STATES_KNOWN, PhoneActions
from envgym.testing import check_vector_env
from envgym.wrappers import TransitionRecorder
from tests.helpers import assert_kept_unchanged, keep_some

ray = pytest.importorskip("ray")

from envgym.distributed import WORKER_LOST, RayVectorEnv  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_local() -> Any:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def _np(x: Any) -> Any:
    if torch.is_tensor(x):
        return x.cpu().numpy()
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    return np.asarray(x)


def _rows(x: Any, rows: slice) -> Any:
    if isinstance(x, tuple):
        return tuple(_rows(v, rows) for v in x)
    return {k: _rows(v, rows) for k, v in x.items()} if isinstance(x, dict) else x[rows]


def assert_same(a: Any, b: Any, where: str) -> None:
    """Bit-for-bit equality of two (nested) results."""
    a, b = _np(a), _np(b)
    if isinstance(b, dict):
        assert isinstance(a, dict), where
        for k in b:
            assert k in a, f"{where}: missing key {k!r}"
            assert_same(a[k], b[k], f"{where}[{k!r}]")
        return
    assert a.shape == b.shape and a.dtype == b.dtype, f"{where}: {a.shape}/{a.dtype} vs {b.shape}"
    assert np.array_equal(a, b), f"{where}: values differ"


def assert_step_equal(dist: tuple, local: tuple, where: str) -> None:
    """The distributed step equals the local one: obs, reward, flags and every local info key."""
    for name, x, y in zip(("obs", "reward", "terminated", "truncated"), dist, local, strict=False):
        assert_same(x, y, f"{where} {name}")
    if len(local) < 5:
        return
    info_d, info_l = dist[4], local[4]
    for k, v in info_l.items():
        assert_same(info_d[k], v, f"{where} info")


def phone_vec(n: int, **kwargs: Any) -> Any:
    return gym.make_vec(
        "envgym/Phone-v0", n, vectorization_mode="vector_entry_point", scenario="all", **kwargs
    )


# ------------------------------------------------------------------------ contract
def test_phone_on_ray_equals_local_bit_for_bit() -> None:
    # Through gym.make_vec(distributed=...): 2 workers, 16 worlds, the shipped scenarios.
    dist = phone_vec(16, distributed={"num_workers": 2, "step_timeout_s": 60})
    local = phone_vec(16)
    try:
        assert isinstance(dist, RayVectorEnv)
        assert dist.world_ranges == [(0, 8), (8, 16)]
        assert_same(dist.reset(seed=11)[0], local.reset(seed=11)[0], "reset")
        gen = torch.Generator().manual_seed(0)
        ended = 0
        for t in range(50):
            oracle = local.oracle_action()
            assert_same(dist.oracle_action(), oracle, f"oracle {t}")
            # Mix in random actions so errors and truncations happen too.
            rnd = torch.randint(0, local.single_action_space.n, (16,), generator=gen)
            act = torch.where(torch.rand(16, generator=gen) < 0.3, rnd, oracle)
            if t % 2:
                dist.step_async(act.numpy())  # NumPy actions, and the async pair
                d = dist.step_wait()
            else:
                d = dist.step(act)
            lo = local.step(act)
            assert_step_equal(d, lo, f"step {t}")
            assert list(d[4]["truncation_reason"]) == [""] * 16
            ended += int((lo[2] | lo[3]).sum())
        assert ended > 0, "no episode ended: auto-reset was not exercised"
        # Snapshots are forwarded: branch world 11 (worker 1) into world 2 (worker 0) and back.
        snap = dist.get_state()
        assert_same(snap, local.get_state(), "get_state")
        assert_same(dist.get_state([11, 2, 11]), local.get_state([11, 2, 11]), "get_state rows")
        dist.set_state(dist.get_state([11]), [2])
        local.set_state(local.get_state([11]), [2])
        act = local.oracle_action()
        assert_step_equal(dist.step(act), local.step(act), "after set_state")
        dist.set_state(snap)
        local.set_state(snap)
        act = local.oracle_action()
        assert_step_equal(dist.step(act), local.step(act), "after restoring the snapshot")
    finally:
        dist.close()
        local.close()


def test_ray_batches_kept_by_the_caller_never_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """The learner writes the batch's big arrays into memory an earlier step handed out once
    nothing holds it (``core.allocator.Recycler``; every array counts as big here). Outputs
    the caller keeps (tensors, views, ``.numpy()``) keep their values; the batches equal the
    local env's; what it drops is reused."""
    from envgym.core import allocator

    monkeypatch.setattr(allocator, "BIG_BYTES", 0)
    dist = phone_vec(16, distributed={"num_workers": 2, "step_timeout_s": 60})
    local = phone_vec(16)
    try:
        dist.reset(seed=2)
        local.reset(seed=2)
        gen = torch.Generator().manual_seed(3)
        rng = np.random.default_rng(3)
        kept: list[tuple[Any, torch.Tensor]] = []
        ended = 0
        for t in range(30):
            act = torch.randint(0, local.single_action_space.n, (16,), generator=gen)
            d = dist.step(act)
            lo = local.step(act)
            assert_step_equal(d, lo, f"step {t}")
            ended += int((lo[2] | lo[3]).sum())
            info = d[4]
            outs = [d[0]["tokens"], d[1], d[3], info[keys.NEXT_OBS_TARGET]]
            outs += [info[keys.FINAL_OBS]["tokens"], info[keys.REWARD_TERMS]["goal"]]
            keep_some(outs, rng, kept)
            assert_kept_unchanged(kept, f"step {t}")
            del d, info, outs
        assert ended > 0
        kept.clear()
        ptrs = [dist.step(local.oracle_action())[1].data_ptr() for _ in range(8)]
        assert len(set(ptrs[2:])) <= 2  # the rewards' memory came back
    finally:
        dist.close()
        local.close()


def test_phone_on_ray_passes_the_vector_contract_checks() -> None:
    envs = RayVectorEnv("envgym/Phone-v0", 6, 2, step_timeout_s=60, scenario="mock")
    try:
        check_vector_env(envs, steps=30)
    finally:
        envs.close()


def _robot_push_pair() -> tuple[RayVectorEnv, Any]:
    """Five push worlds on 2 Ray workers (3 + 2) and the same five locally (12-step episodes,
    the CPU backend)."""
    kw: dict[str, Any] = {"episode_length": 12, "backend": "cpu"}
    dist = RayVectorEnv("envgym/Robot-Push-v0", 5, 2, step_timeout_s=60, **kw)
    local = gym.make_vec("envgym/Robot-Push-v0", 5, vectorization_mode="vector_entry_point", **kw)
    return dist, local


@pytest.mark.mujoco
def test_robot_on_ray_equals_local_bit_for_bit() -> None:
    pytest.importorskip("mujoco")
    dist, local = _robot_push_pair()
    try:
        assert dist.world_ranges == [(0, 3), (3, 5)]
        assert_same(dist.reset(seed=4)[0], local.reset(seed=4)[0], "reset")
        gen = torch.Generator().manual_seed(1)
        for t in range(30):
            act = local.oracle_action() if t % 3 else torch.rand(5, 7, generator=gen) * 2 - 1
            assert_step_equal(dist.step(act), local.step(act), f"step {t}")
        assert_same(dist.get_state(), local.get_state(), "get_state")
    finally:
        dist.close()
        local.close()


def _stated_values(envs: Any, a: torch.Tensor, t: int) -> torch.Tensor:
    """Per world, for a ``provide:f`` action: the id of the user's true value of ``f``, of a
    value no fact has, or ``STATES_KNOWN``, in turn by world and step (else ``STATES_KNOWN``)."""
    said = torch.full_like(a, STATES_KNOWN)
    for i, act in enumerate(a.tolist()):
        name = envs.action_names[act] if act < len(envs.action_names) else ""
        if not name.startswith("provide:"):
            continue
        fact = name.split(":", 1)[1]
        sc = envs.compiled.scenarios[int(envs.state["scenario"][i])]
        truth = next((f.value for f in sc.user.facts if f.id == fact), None)
        pick = (i + t) % 3
        if pick == 0 and truth is not None:
            said[i] = envs.engine.value_id(truth)
        elif pick == 1:
            said[i] = envs.engine.value_id("no-such-value")
    return said


def _record(envs: Any, t: int, gen: torch.Generator) -> Any:
    """Step ``t``'s actions for ``envs`` (the local env): the oracle's, as plain ids or as a
    PhoneActions record (stated values right and wrong, none, a learned rep's and user's
    moves now and then, the garbled action in one world)."""
    a = envs.oracle_action()
    n = a.shape[0]
    if t % 5 == 0:
        return a
    if t % 5 == 1:
        return PhoneActions(a)
    stated = _stated_values(envs, a, t)
    if t % 5 == 2:
        a = a.clone()
        a[t % n] = envs.engine.garbled_action
        return PhoneActions(a, stated.numpy()[:, None])  # NumPy, [B, 1]: the rule takes both
    if t % 5 == 3:
        return PhoneActions(a, stated)
    rep = torch.randint(0, len(envs.engine.rep_catalogue), (n,), generator=gen)
    user = torch.randint(0, 3, (n,), generator=gen)
    return PhoneActions(a, stated, rep, user)


def test_phone_actions_records_on_ray_equal_local() -> None:
    """PhoneActions records (stated values right, wrong and unsaid, the garbled action, a
    learned rep and user) through step, step_async and send on 2 workers equal a local run;
    the stated values change the rep's verdict (some verifications fail, some pass)."""
    n = 8
    dist = RayVectorEnv("envgym/Phone-v0", n, 2, step_timeout_s=60, scenario="all")
    local = phone_vec(n)
    try:
        assert_same(dist.reset(seed=21)[0], local.reset(seed=21)[0], "reset")
        gen = torch.Generator().manual_seed(3)
        mismatched = verified = False
        for t in range(60):
            act = _record(local, t, gen)
            if t % 3 == 1:
                dist.step_async(act)
                d = dist.step_wait()
            elif t % 3 == 2:
                dist.send(act)
                d = dist.recv(min_workers=2)
                assert list(d[4]["env_id"]) == list(range(n))
            else:
                d = dist.step(act)
            lo = local.step(act)
            assert_step_equal(d, lo, f"step {t}")
            mismatched |= bool((local.state["mismatches"] > 0).any())
            verified |= bool(local.state["verified"].any())
        assert mismatched and verified, "the stated values never changed a verdict"
        assert_same(dist.get_state(), local.get_state(), "get_state")
    finally:
        dist.close()
        local.close()


def _tick_record(envs: Any, t: int) -> Any:
    """Tick ``t``'s actions for the real-time ``envs`` (local): the oracle's, plain or as a
    record whose ``prepare:provide:f`` worlds state the true value, a wrong one, or what
    they know, in turn by world and tick."""
    a = envs.oracle_action()
    if t % 4 == 0:
        return a
    said = torch.full_like(a, STATES_KNOWN)
    for i, act in enumerate(a.tolist()):
        name = envs.action_names[act]
        if not name.startswith("prepare:provide:"):
            continue
        sc = envs.compiled.scenarios[int(envs.state["scenario"][i])]
        fact = name.split(":", 2)[2]
        truth = next((f.value for f in sc.user.facts if f.id == fact), None)
        if (i + t) % 3 == 0 and truth is not None:
            said[i] = envs.engine.value_id(truth)
        elif (i + t) % 3 == 1:
            said[i] = envs.engine.value_id("no-such-value")
    return PhoneActions(a, said)


def test_realtime_phone_records_on_ray_equal_local_and_bad_ones_are_refused() -> None:
    """The real-time face's records (tick actions with stated values) on 2 workers equal a
    local run, and the stated values change verdicts; a record with a learned rep's moves
    (this face has the scripted rep) or a stated value of the wrong shape is the local env's
    InvalidActionError on Ray too, and changes no world."""
    n = 6
    dist = RayVectorEnv("envgym/Phone-v0", n, 2, step_timeout_s=60, scenario="all", realtime=True)
    local = phone_vec(n, realtime=True)
    try:
        assert_same(dist.reset(seed=5)[0], local.reset(seed=5)[0], "reset")
        a = local.oracle_action()
        snap = local.get_state()
        for record, match in (
            (PhoneActions(a, None, torch.zeros_like(a)), "scripted rep and user"),
            (PhoneActions(a, torch.zeros(n - 1, dtype=torch.int64)), "stated_value: expected"),
        ):
            with pytest.raises(InvalidActionError, match=match):
                local.step(record)
            _refused(dist, record, match)
        assert_same(dist.get_state(), snap, "state after the refusals")
        mismatched = verified = False
        for t in range(160):
            act = _tick_record(local, t)
            assert_step_equal(dist.step(act), local.step(act), f"tick {t}")
            mismatched |= bool((local.state["mismatches"] > 0).any())
            verified |= bool(local.state["verified"].any())
        assert mismatched and verified, "the stated values never changed a verdict"
    finally:
        dist.close()
        local.close()


def test_phone_bad_record_is_refused_before_any_worker_steps() -> None:
    """A record with a bad field (assistant id past the garbled action, a rep or user move out
    of its catalogue, a stated value of the wrong shape or dtype) in the first or the last
    worker's slice: the local env's InvalidActionError, naming the global world; no world
    changes, and the trajectory goes on equal to the local env's."""
    n = 6
    dist = RayVectorEnv("envgym/Phone-v0", n, 2, step_timeout_s=60, scenario="mock")
    local = gym.make_vec(
        "envgym/Phone-v0", n, vectorization_mode="vector_entry_point", scenario="mock"
    )
    try:
        dist.reset(seed=7)
        local.reset(seed=7)
        a = local.oracle_action()
        reps = len(local.engine.rep_catalogue)
        zero = torch.zeros(n, dtype=torch.int64)

        def at(world: int, value: int, base: torch.Tensor = zero) -> torch.Tensor:
            out = base.clone()
            out[world] = value
            return out

        bad = [
            (PhoneActions(at(5, local.engine.garbled_action + 1, a)), r"assistant .* \[5\]"),
            (PhoneActions(a, None, at(4, reps)), rf"rep actions: .*\({reps}\) in worlds \[4\]"),
            (PhoneActions(a, None, None, at(0, -1)), r"user actions: .* in worlds \[0\]"),
            (PhoneActions(a, zero[:5]), r"stated_value: expected 6 actions"),
            (PhoneActions(a, zero.float()), r"stated_value: .*must be integers"),
            (PhoneActions(None, zero), "needs assistant actions"),
        ]
        snap = local.get_state()
        for record, match in bad:
            with pytest.raises(InvalidActionError, match=match):
                local.step(record)
            _refused(dist, record, match)
        # send() to worker 1 alone: its row 0 is world 3.
        _refused(dist, PhoneActions(a[3:], None, at(0, reps)[:3]), r"worlds \[3\]", workers=[1])
        assert dist.worker_losses == []
        assert_same(local.get_state(), snap, "local state after the refusals")
        assert_same(dist.get_state(), snap, "state after the refusals")
        gen = torch.Generator().manual_seed(4)
        for t in range(10):
            act = _record(local, t, gen)
            assert_step_equal(dist.step(act), local.step(act), f"after {t}")
    finally:
        dist.close()
        local.close()


# ------------------------------------------------------------------------ faults
def test_phone_killed_and_hung_workers_are_restarted_and_their_worlds_truncated() -> None:
    """16 phone worlds on 2 workers under a TransitionRecorder. Worker 1's process is killed
    (SIGKILL) at step 4 and its step sleeps past the 3 s deadline at step 9. Worker 0's worlds
    equal a local run throughout (recorded transitions included); worker 1's worlds end
    truncated 'worker_lost' on each fault's step; shapes never change."""
    n, steps, faults = 16, 14, {4: "kill", 9: "hang"}
    dist = RayVectorEnv("envgym/Phone-v0", n, 2, step_timeout_s=3, scenario="mock")
    rec = TransitionRecorder(dist, capacity=steps)
    local = gym.make_vec(
        "envgym/Phone-v0", n, vectorization_mode="vector_entry_point", scenario="mock"
    )
    try:
        rec.reset(seed=5)
        local.reset(seed=5)
        pids = [dist.worker_pids()]
        w0, w1 = slice(0, 8), slice(8, 16)
        local_targets = []
        for t in range(steps):
            act = local.oracle_action()
            if faults.get(t) == "kill":
                os.kill(pids[-1][1], signal.SIGKILL)
            elif faults.get(t) == "hang":
                dist.inject_hang(1, 600)
            obs, rew, term, trunc, info = rec.step(act)
            lo = local.step(act)
            local_targets.append(lo[4][keys.NEXT_OBS_TARGET])
            assert tuple(rew.shape) == (n,) and tuple(obs["tokens"].shape[:1]) == (n,)
            assert tuple(info[keys.NEXT_OBS_TARGET].shape[:1]) == (n,)
            # Worker 0's worlds are untouched by worker 1's faults.
            assert_step_equal(
                (_rows(obs, w0), rew[w0], term[w0], trunc[w0]),
                (_rows(lo[0], w0), lo[1][w0], lo[2][w0], lo[3][w0]),
                f"step {t} worker 0",
            )
            reasons = list(info["truncation_reason"])
            if t in faults:
                pids.append(dist.worker_pids())
                assert reasons == [""] * 8 + [WORKER_LOST] * 8
                assert bool(trunc[w1].all()) and not bool(term[w1].any())
                assert bool(info["_" + keys.FINAL_OBS][w1].all())
                assert float(rew[w1].abs().sum()) == 0.0
                # final_obs of the lost worlds: the last observation the learner saw (the one
                # the recorder just stored as this step's obs); the target is its encoding.
                last = {k: v[t][w1] for k, v in rec._buf["obs"].items()}
                assert_same(_rows(info[keys.FINAL_OBS], w1), last, "lost final_obs")
                assert_same(
                    info[keys.NEXT_OBS_TARGET][w1],
                    dist.target_from_obs(_rows(info[keys.FINAL_OBS], w1)),
                    "lost target",
                )
            else:
                assert reasons == [""] * n
            if t < 4:
                assert_step_equal((obs, rew, term, trunc), lo[:4], f"step {t} before the fault")
        assert dist.worker_losses == [(4, 1, "dead"), (9, 1, "hung")]
        assert len({p[0] for p in pids}) == 1, "worker 0 was restarted"
        assert len({p[1] for p in pids}) == 3, "worker 1 was not restarted twice"
        # The recorder kept every transition: all steps, worker 0's equal to the local run.
        assert rec.size == steps
        assert_same(rec._buf["target"][:, w0], torch.stack(local_targets)[:, w0], "recorded")
        done = rec._buf["done"]
        assert bool(done[4][w1].all()) and bool(done[9][w1].all())
    finally:
        dist.close()
        local.close()


@pytest.mark.browser
def test_browser_killed_and_hung_workers_keep_the_batch() -> None:
    pytest.importorskip("playwright")
    from envgym.browser.launch import chromium_executable

    if chromium_executable() is None:
        pytest.skip("no Chromium")
    n, steps, faults = 2, 6, {1: "kill", 3: "hang"}
    kw: dict[str, Any] = {"task": "ClickButton", "max_tokens": 512}
    # (No TransitionRecorder here: it records tensors, and browser actions are strings.)
    dist = RayVectorEnv("envgym/Browser-ClickButton-v0", n, 2, step_timeout_s=8, **kw)
    try:
        obs, _ = dist.reset(seed=3)
        pids = [dist.worker_pids()]
        for t in range(steps):
            act = dist.oracle_action()
            if faults.get(t) == "kill":
                os.kill(pids[-1][1], signal.SIGKILL)
            elif faults.get(t) == "hang":
                dist.inject_hang(1, 600)
            obs, rew, term, trunc, info = dist.step(act)
            assert tuple(obs["tokens"].shape) == (n, 512) and len(obs["tree"]) == n
            expected = ["", WORKER_LOST] if t in faults else [""] * n
            reasons = [r if r == WORKER_LOST else "" for r in info["truncation_reason"]]
            assert reasons == expected, (t, list(info["truncation_reason"]))
            if t in faults:
                pids.append(dist.worker_pids())
                assert bool(trunc[1]) and float(rew[1]) == 0.0
                assert info[keys.FINAL_OBS]["tree"][1] != ""
                assert obs["tree"][1] != ""  # the restarted worker's new page
        assert len({p[0] for p in pids}) == 1 and len({p[1] for p in pids}) == 3
        assert dist.worker_losses == [(1, 1, "dead"), (3, 1, "hung")]
    finally:
        dist.close()


def test_ready_mode_returns_finished_workers_while_a_slow_one_steps() -> None:
    """send/recv: worker 1 is slow (sleeps 8 s, inside the 60 s deadline); worker 0's worlds
    step twice meanwhile; each row equals a local run of the same world and actions."""
    n = 8
    dist = RayVectorEnv("envgym/Phone-v0", n, 2, step_timeout_s=60, scenario="mock")
    once, twice = (
        gym.make_vec("envgym/Phone-v0", n, vectorization_mode="vector_entry_point", scenario="mock")
        for _ in range(2)
    )
    try:
        dist.reset(seed=9)
        once.reset(seed=9)
        twice.reset(seed=9)
        a1 = once.oracle_action()
        once_out = once.step(a1)
        twice.step(a1)
        a2 = twice.oracle_action()
        twice_out = twice.step(a2)
        dist.inject_hang(1, 8)
        dist.send(a1)
        with pytest.raises(RuntimeError, match="every worker has a step in flight"):
            dist.send(a1)  # no idle worker left (was a raw ValueError from NumPy)
        for k in range(2):
            obs, rew, term, trunc, info = dist.recv(min_workers=1)
            assert list(info["worker_id"]) == [0] and list(info["env_id"]) == [0, 1, 2, 3]
            ref = once_out if k == 0 else twice_out
            assert_step_equal((obs, rew, term, trunc), _rows(ref[:4], slice(0, 4)), f"w0 {k}")
            if k == 0:
                dist.send(a2[:4], workers=[0])
        obs, rew, term, trunc, info = dist.recv(min_workers=1)
        assert list(info["worker_id"]) == [1] and list(info["env_id"]) == [4, 5, 6, 7]
        assert_step_equal((obs, rew, term, trunc), _rows(once_out[:4], slice(4, 8)), "w1")
        assert list(info["truncation_reason"]) == [""] * 4
        assert dist.worker_losses == []
    finally:
        dist.close()
        once.close()
        twice.close()


# ------------------------------------------------------------------------ bad input
def _refused(
    dist: RayVectorEnv,
    actions: Any,
    match: str,
    workers: Any = None,
    error: type[Exception] = InvalidActionError,
) -> None:
    """The batch is refused with the family's error (message ``match``)."""
    with pytest.raises(error, match=match):
        if workers is None:
            dist.step(actions)
        else:
            dist.send(actions, workers=workers)


def test_phone_bad_batch_is_refused_before_any_worker_steps() -> None:
    """An out-of-space action in the last worker's slice, then in the first, a float batch and
    a short one (step and send): each raises InvalidActionError naming the global world, and
    afterwards snapshot and trajectory equal a local env that never saw the bad batches."""
    n = 6
    dist = RayVectorEnv("envgym/Phone-v0", n, 2, step_timeout_s=60, scenario="mock")
    local = gym.make_vec(
        "envgym/Phone-v0", n, vectorization_mode="vector_entry_point", scenario="mock"
    )
    try:
        assert dist.world_ranges == [(0, 3), (3, 6)]
        dist.reset(seed=5)
        local.reset(seed=5)
        for t in range(3):
            act = local.oracle_action()
            assert_step_equal(dist.step(act), local.step(act), f"before {t}")
        good = local.oracle_action().numpy()
        size = int(dist.single_action_space.n)
        last, first = good.copy(), good.copy()
        last[5] = size
        first[0] = -1
        _refused(dist, last, rf"Discrete\({size}\) in worlds \[5\]")
        _refused(dist, torch.as_tensor(first), r"in worlds \[0\]")
        _refused(dist, good.astype(np.float32), "must be integers")
        _refused(dist, good[:5], "expected 6 actions")
        # send() to worker 1 alone: its row 0 is world 3.
        _refused(dist, np.array([size, 0, 0]), r"in worlds \[3\]", workers=[1])
        assert dist.worker_losses == []
        assert_same(dist.get_state(), local.get_state(), "state after the refusals")
        for t in range(8):
            act = local.oracle_action()
            assert_step_equal(dist.step(act), local.step(act), f"after {t}")
        dist.send(local.oracle_action())  # ready mode works after a refused send
        assert dist.recv(min_workers=2)[1].shape == (n,)
    finally:
        dist.close()
        local.close()


@pytest.mark.mujoco
def test_robot_bad_batch_is_refused_before_any_worker_steps() -> None:
    """NaN in the last worker's slice, inf in the first, a wrong shape, a bool batch: each is
    InvalidActionError naming the global world, and every world is left as it was."""
    pytest.importorskip("mujoco")
    dist, local = _robot_push_pair()
    try:
        assert dist.world_ranges == [(0, 3), (3, 5)]
        dist.reset(seed=8)
        local.reset(seed=8)
        gen = torch.Generator().manual_seed(2)
        for t in range(3):
            act = torch.rand(5, 7, generator=gen) * 2 - 1
            assert_step_equal(dist.step(act), local.step(act), f"before {t}")
        good = local.oracle_action()
        last, first = good.clone(), good.clone()
        last[4, 2] = float("nan")
        first[0, 6] = float("inf")
        _refused(dist, last, r"non-finite actions \(NaN or inf\) in worlds \[4\]")
        _refused(dist, first.numpy(), r"in worlds \[0\]")
        _refused(dist, good[:, :6], "expected actions of shape")
        _refused(dist, good > 0, "real numbers")
        _refused(dist, last[3:].numpy(), r"in worlds \[4\]", workers=[1])
        assert_same(dist.get_state(), local.get_state(), "state after the refusals")
        for t in range(6):
            act = local.oracle_action()
            assert_step_equal(dist.step(act), local.step(act), f"after {t}")
    finally:
        dist.close()
        local.close()


@pytest.mark.mujoco
def test_robot_one_world_takes_an_unbatched_action_as_the_local_env_does() -> None:
    """A vector env of one robot world takes a single [7] action (docs/reliability.md, Robot):
    on Ray as locally, through step and through send to a one-world worker; a [6] action and,
    with two worlds, a [7] one are the local env's InvalidActionError."""
    pytest.importorskip("mujoco")
    kw: dict[str, Any] = {"episode_length": 5, "backend": "cpu"}

    def local_env(n: int) -> Any:
        return gym.make_vec(
            "envgym/Robot-Reach-v0", n, vectorization_mode="vector_entry_point", **kw
        )

    # Three workers at once on the fixture's 2 CPUs: half a CPU each.
    half = {"num_cpus": 0.5}
    one, two = (
        RayVectorEnv("envgym/Robot-Reach-v0", n, n, step_timeout_s=60, worker_options=half, **kw)
        for n in (1, 2)
    )
    local_one, local_two, world_1 = local_env(1), local_env(2), local_env(1)
    try:
        assert_same(one.reset(seed=6)[0], local_one.reset(seed=6)[0], "reset")
        for t in range(8):  # an episode ends at step 5: the auto-reset is exercised
            a = local_one.oracle_action()[0]
            act = (a, a.numpy(), a.tolist())[t % 3]
            assert_step_equal(one.step(act), local_one.step(act), f"step {t}")
        for actions in (np.zeros(6, np.float32), torch.zeros(1, 6)):
            with pytest.raises(InvalidActionError) as want:
                local_one.step(actions)
            _refused(one, actions, re.escape(str(want.value)))
        two.reset(seed=10)
        local_two.reset(seed=10)
        world_1.reset(seed=11)  # world 1 of the two is seeded 10 + 1
        a = world_1.oracle_action()[0].numpy()
        with pytest.raises(InvalidActionError) as want:
            local_two.step(a)
        _refused(two, a, re.escape(str(want.value)))
        two.send(a, workers=[1])
        assert_step_equal(two.recv(min_workers=1)[:4], world_1.step(a)[:4], "send to world 1")
        assert_same(one.get_state(), local_one.get_state(), "get_state")
    finally:
        for e in (one, two, local_one, local_two, world_1):
            e.close()


@pytest.mark.browser
def test_browser_bad_batch_is_refused_before_any_worker_steps() -> None:
    """A non-string action in the last worker's slice, then the first: the browser's
    ValueError naming the global world; then the trajectory equals a local env's that never
    saw them (the oracle's click would have ended world 0's episode had worker 0 stepped)."""
    pytest.importorskip("playwright")
    from envgym.browser.launch import chromium_executable

    if chromium_executable() is None:
        pytest.skip("no Chromium")
    kw: dict[str, Any] = {"task": "ClickButton", "max_tokens": 512}
    dist = RayVectorEnv("envgym/Browser-ClickButton-v0", 2, 2, step_timeout_s=30, **kw)
    local = gym.make_vec(
        "envgym/Browser-ClickButton-v0", 2, vectorization_mode="vector_entry_point", **kw
    )
    try:
        assert_same(dist.reset(seed=3)[0]["tokens"], local.reset(seed=3)[0]["tokens"], "reset")
        good = local.oracle_action()
        _refused(dist, [good[0], 5], r"worlds \[1\] got \['int'\]", error=ValueError)
        _refused(dist, [None, good[1]], r"worlds \[0\]", error=ValueError)
        _refused(dist, [b"click"], r"worlds \[1\]", workers=[1], error=ValueError)
        ended = 0
        for t in range(3):
            act = local.oracle_action()
            d, lo = dist.step(act), local.step(act)
            for name, x, y in zip(
                ("reward", "terminated", "truncated"), d[1:4], lo[1:4], strict=True
            ):
                assert_same(x, y, f"step {t} {name}")
            assert_same(d[0]["tokens"], lo[0]["tokens"], f"step {t} tokens")
            ended += int((lo[2] | lo[3]).sum())
        assert ended > 0
    finally:
        dist.close()
        local.close()
