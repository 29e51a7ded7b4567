"""Vector-env behaviour: targets at episode ends, seeding, snapshots, devices, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from envgym.core import keys
from envgym.core.vector import SMALL, true_rows
from envgym.phone.engine import _all_rows, _all_words, _none
from envgym.phone.tables import copy_rows, present
from tests.helpers import assert_kept_unchanged, keep_some, make_vec


def test_targets_at_episode_ends_are_the_true_last_observation() -> None:
    envs = make_vec(16, scenario="mock")
    envs.reset(seed=0)
    ends = 0
    for _ in range(40):
        obs, rew, term, trunc, info = envs.step(envs.oracle_action())
        done = term | trunc
        tgt = info["next_obs_target"]
        assert torch.equal(tgt, info["final_obs"]["tokens"])
        if done.any():
            ends += int(done.sum())
            # The returned obs is already the next episode's first observation (SAME_STEP)...
            assert not torch.equal(obs["tokens"][done], tgt[done])
            # ...and the target is the report confirmation, not the next intro.
            text = envs.decode(tgt[done][0])
            assert "report" in text and "numbers" not in text
            assert info["_final_obs"].equal(done) and info["_" + keys.EPISODE].equal(done)
    assert ends > 0


def test_world_i_is_seeded_seed_plus_i() -> None:
    a = make_vec(4, scenario="all")
    b = make_vec(1, scenario="all")
    oa, _ = a.reset(seed=10)
    ob, _ = b.reset(seed=12)
    assert torch.equal(oa["tokens"][2], ob["tokens"][0])
    assert int(a.state["scenario"][2]) == int(b.state["scenario"][0])


def test_heterogeneous_batch_runs_different_scenarios() -> None:
    envs = make_vec(64, scenario="all")
    envs.reset(seed=0)
    assert len(set(envs.state["scenario"].tolist())) >= 4


def test_reset_without_seed_gives_fresh_worlds() -> None:
    envs = make_vec(4, scenario="all")
    o1, _ = envs.reset()  # first reset without a seed: fresh seeds from OS entropy
    s1 = envs.state["seed"].clone()
    assert torch.equal(s1 - s1[0], torch.arange(4))
    envs.reset()  # later resets without a seed continue: same seeds, next episode
    assert torch.equal(s1, envs.state["seed"])
    assert torch.equal(envs.state["episode"], torch.ones(4, dtype=torch.int64))
    assert o1["tokens"].shape == (4, envs.compiled.max_tokens)


def test_partial_reset_only_touches_masked_worlds() -> None:
    envs = make_vec(4, scenario="mock")
    envs.reset(seed=0)
    envs.step(envs.oracle_action())
    before = envs.get_state()
    envs.reset(options={"reset_mask": np.array([True, False, False, False])})
    after = envs.get_state()
    assert int(after["turn"][0]) == 0 and int(after["episode"][0]) == 1
    for k in before:
        assert torch.equal(before[k][1:], after[k][1:]), k


def test_branching_from_one_state() -> None:
    envs = make_vec(6, scenario="isp_bill_discount")
    envs.reset(seed=3)
    for _ in range(4):
        envs.step(envs.oracle_action())
    envs.set_state(envs.get_state(worlds=[2] * 6))
    # Different actions from one state: a counterfactual per world.
    acts = torch.arange(6)
    _, _, _, _, info = envs.step(acts)
    tg = info["next_obs_target"]
    assert len({tuple(row.tolist()) for row in tg}) > 1


def test_bad_actions_raise_clear_errors() -> None:
    envs = make_vec(3, scenario="mock")
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"out of the action space.*worlds \[1\]"):
        envs.step(torch.tensor([0, 999, 0]))
    with pytest.raises(ValueError, match="expected 3 actions"):
        envs.step(torch.tensor([0, 0]))
    with pytest.raises(TypeError, match="integers"):
        envs.step(torch.tensor([0.5, 0.0, 1.0]))
    with pytest.raises(RuntimeError, match="reset"):
        make_vec(2, scenario="mock").step(torch.tensor([0, 0]))


def test_cuda_unavailable_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        make_vec(2, scenario="mock", device="cuda")


@pytest.mark.gpu
def test_cuda_matches_cpu_bit_for_bit() -> None:
    cpu = make_vec(256, scenario="all", device="cpu")
    gpu = make_vec(256, scenario="all", device="cuda")
    oc, _ = cpu.reset(seed=5)
    og, _ = gpu.reset(seed=5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        a = torch.randint(0, cpu.single_action_space.n, (256,), generator=gen)
        a = torch.where(torch.rand(256, generator=gen) < 0.7, cpu.oracle_action(), a)
        rc = cpu.step(a)
        rg = gpu.step(a.cuda())
        assert rg[0]["tokens"].device.type == "cuda"
        for x, y in zip(rc[:4], rg[:4], strict=True):
            if isinstance(x, dict):
                assert all(torch.equal(x[k], y[k].cpu()) for k in x)
            else:
                assert torch.equal(x, y.cpu())
        assert torch.equal(rc[4]["next_obs_target"], rg[4]["next_obs_target"].cpu())


def _trajectory(envs, steps: int = 80) -> list:
    gen = torch.Generator().manual_seed(1)
    out = []
    obs, _ = envs.reset(seed=9)
    out.append({k: v.cpu() for k, v in obs.items()})
    for _ in range(steps):
        a = torch.randint(0, envs.single_action_space.n, (envs.num_envs,), generator=gen)
        a = torch.where(
            torch.rand(envs.num_envs, generator=gen) < 0.6, envs.oracle_action().cpu(), a
        )
        obs, r, te, tr, info = envs.step(a.to(envs.device))
        out.append({k: v.cpu() for k, v in obs.items()})
        out.append({k: v.cpu() for k, v in info["final_obs"].items()})
        out += [
            r.cpu(),
            te.cpu(),
            tr.cpu(),
            info["next_obs_target"].cpu(),
            info[keys.EPISODE]["r"].cpu(),
            info["success"].cpu(),
        ]
    return out


def _same(a: list, b: list) -> bool:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, dict):
            if not all(torch.equal(x[k], y[k]) for k in x):
                return False
        elif not torch.equal(x, y):
            return False
    return True


def test_fused_sync_free_step_equals_the_plain_step() -> None:
    plain = make_vec(32, scenario="all")
    fused = make_vec(32, scenario="all")
    fused.engine.sync_free = True
    fused._enable_fused("eager")
    assert _same(_trajectory(plain), _trajectory(fused))


@pytest.mark.gpu
def test_cuda_graph_step_equals_cpu() -> None:
    cpu = make_vec(64, scenario="all")
    gpu = make_vec(64, scenario="all", device="cuda")
    assert gpu.fused_mode == "graph"
    assert _same(_trajectory(cpu), _trajectory(gpu))
    # Snapshots still work around the graph.
    snap = gpu.get_state()
    a = gpu.oracle_action()
    first = gpu.step(a)[4]["next_obs_target"].clone()
    gpu.set_state(snap)
    assert torch.equal(gpu.step(a)[4]["next_obs_target"], first)


def _tree_equal(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tree_equal(a[k], b[k]) for k in a)  # type: ignore[union-attr]
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)  # type: ignore[arg-type]
    return a == b


def test_copy_false_reuses_buffers_and_gives_the_same_transitions() -> None:
    """copy=False writes the tokens and the action mask into persistent buffers; every value
    it returns (obs, final_obs, targets, masks, rewards) is the copy=True env's, bit for bit,
    across auto-resets; copy=True observations stay as they were after the next step."""
    from envgym.phone.faces import PhoneVectorEnv

    fresh, reused = (PhoneVectorEnv(48, "all", copy=c) for c in (True, False))
    for env in (fresh, reused):
        env.reset(seed=3)
    g = torch.Generator().manual_seed(0)
    A = int(fresh.single_action_space.n)
    ptrs: set[tuple[int, int, int]] = set()
    resets = 0
    held = held_copy = None
    for _ in range(120):
        a = torch.randint(0, A, (48,), generator=g)
        o1, r1, t1, tr1, i1 = fresh.step(a)
        if held is not None:
            assert torch.equal(held, held_copy)  # copy=True: what was handed out stays
        held, held_copy = o1["tokens"], o1["tokens"].clone()
        o2, r2, t2, tr2, i2 = reused.step(a)
        assert _tree_equal(o1, o2) and torch.equal(r1, r2)
        assert torch.equal(t1, t2) and torch.equal(tr1, tr2)
        for k in (keys.NEXT_OBS_TARGET, keys.ACTION_MASK, keys.FINAL_OBS):
            assert _tree_equal(i1[k], i2[k]), k
        resets += int((t1 | tr1).sum())
        ptrs.add(
            (
                i2[keys.NEXT_OBS_TARGET].data_ptr(),
                o2["tokens"].data_ptr(),
                i2[keys.ACTION_MASK].data_ptr(),
            )
        )
    assert resets > 10  # the comparison went through auto-resets
    # Two token buffers (the step's, after its auto-reset) and one mask buffer, reused.
    assert len({p[0] for p in ptrs}) == 1 and len({p[2] for p in ptrs}) == 1
    assert len({p[1] for p in ptrs}) <= 2


@pytest.mark.parametrize("obs_mode", ["tokens", "ids"])
def test_copy_true_outputs_kept_by_the_caller_never_change(
    obs_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """copy=True on CPU writes its big outputs (the tokens or ids heard, the observation after
    an auto-reset, the action mask) into memory that an earlier step handed out once nothing
    holds it (``core.allocator.Recycler``). Outputs a caller keeps, as tensors, views or
    ``.numpy()`` arrays, for one step or many, keep their values; outputs it drops are written
    over (the memory is reused, not mapped anew)."""
    from envgym.core import allocator
    from envgym.phone.faces import PhoneVectorEnv

    monkeypatch.setattr(allocator, "BIG_BYTES", 0)  # 32 worlds' outputs count as big here
    B = 32
    env = PhoneVectorEnv(B, "all", obs_mode=obs_mode)
    env.reset(seed=5)
    heard_key = "tokens" if obs_mode == "tokens" else "msg_ids"
    g = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(1)
    A = int(env.single_action_space.n)
    kept: list[tuple[object, torch.Tensor]] = []
    ptrs: list[int] = []
    resets = 0
    for _ in range(150):
        obs, _, term, trunc, info = env.step(torch.randint(0, A, (B,), generator=g))
        resets += int((term | trunc).sum())
        outs = [obs[heard_key], info[keys.NEXT_OBS_TARGET], info[keys.ACTION_MASK]]
        outs.append(info[keys.FINAL_OBS][heard_key])
        keep_some(outs, rng, kept)
        if len(kept) > 40:  # the caller lets go of its oldest
            del kept[: rng.integers(1, 20)]
        assert_kept_unchanged(kept)
        del obs, info, outs
    assert resets > 10
    kept.clear()
    for _ in range(20):  # a caller that keeps nothing past the next step
        obs, _, _, _, info = env.step(torch.randint(0, A, (B,), generator=g))
        ptrs.append(info[keys.ACTION_MASK].data_ptr())
    assert len(set(ptrs[-16:])) <= 2  # its dropped outputs' memory came back


@pytest.mark.parametrize(
    ("few_rows", "phrasings_of_message_0"), [(0.0, None), (1.0, None), (1.0, 3)]
)
def test_large_batch_layout_paths_equal_the_small_batch_ones(
    few_rows: float, phrasings_of_message_0: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``SMALL`` worlds on, the engine looks tables up by flattened index, lays messages
    sparsely and draws their variants for the slots written, widens per-world masks and runs
    the assistant's rules over the worlds that chose their actions (``FEW_ROWS``: 0 never, 1
    always); below it, plain indexing and masked passes. World for world, with the same seeds
    and actions, both give the same transitions; also where message 0 (what an empty slot
    holds) has several phrasings, so that empty slots draw variants too."""
    from envgym.phone import engine
    from envgym.phone.faces import PhoneVectorEnv

    monkeypatch.setattr(engine, "FEW_ROWS", few_rows)

    big_n = SMALL + 40
    # 64 worlds spread over the batch, the first and the last among them.
    rows = torch.linspace(0, big_n - 1, 64).round().to(torch.int64)
    big = PhoneVectorEnv(big_n, "all", copy=False)
    small = PhoneVectorEnv(len(rows), "all")
    if phrasings_of_message_0 is not None:
        for eng in (big.engine, small.engine):
            nvar = eng.c.msg_nvar.clone()
            nvar[0] = phrasings_of_message_0
            monkeypatch.setattr(eng.c, "msg_nvar", nvar)
    seeds = 1000 + torch.arange(big_n)
    big.reset(seed=seeds.tolist())
    small.reset(seed=seeds[rows].tolist())
    g = torch.Generator().manual_seed(1)
    A = int(big.single_action_space.n)
    oracle_turns = 0
    for step in range(150):
        # Random actions, and now and then the oracle's (so that calls reach reps, checklists
        # and grants in many worlds, not only invalid actions).
        a = torch.randint(0, A, (big_n,), generator=g)
        if step % 3:
            a = big.oracle_action().to(torch.int64)
            oracle_turns += 1
        ob, rb, tb, trb, ib = big.step(a)
        os_, rs, ts, trs, is_ = small.step(a[rows])
        for k in ob:
            assert torch.equal(ob[k][rows], os_[k]), (step, k)
        assert torch.equal(rb[rows], rs) and torch.equal(tb[rows], ts)
        assert torch.equal(trb[rows], trs)
        for k in (keys.NEXT_OBS_TARGET, keys.ACTION_MASK, keys.ACTION_ERROR):
            assert torch.equal(ib[k][rows], is_[k]), (step, k)
        for k, v in ib[keys.REWARD_TERMS].items():
            assert torch.equal(v[rows], is_[keys.REWARD_TERMS][k]), (step, k)
        for k, v in big.state.items():  # every state field, not only what is observed
            assert torch.equal(v[rows], small.state[k]), (step, k)
    assert oracle_turns > 50


def test_sparse_partial_reset_equals_the_masked_reset() -> None:
    """From SMALL worlds on, a reset of a few worlds gathers, resets and writes back their
    rows only; it leaves the same state as the masked reset of every world (sync-free)."""
    from envgym.phone.faces import PhoneVectorEnv

    n = SMALL + 8
    sparse, masked = PhoneVectorEnv(n, "all"), PhoneVectorEnv(n, "all")
    masked.engine.sync_free = True
    mask = torch.zeros(n, dtype=torch.bool)
    mask[[3, 500, n - 1]] = True
    g = torch.Generator().manual_seed(2)
    for env in (sparse, masked):
        env.reset(seed=0)
        for a in torch.randint(0, int(env.single_action_space.n), (5, n), generator=g):
            env.step(a)
        g.manual_seed(2)
        env.reset(seed=list(range(100, 100 + n)), options={"reset_mask": mask})
    for k, v in sparse.state.items():
        assert torch.equal(v, masked.state[k]), k


@pytest.mark.parametrize("width", [1, 7, 8, 9, 16, 21, 29])
def test_all_rows_sees_a_false_column_anywhere(width: int) -> None:
    """``_all_rows`` over rows that are all True but for one column (each column once), and
    one all-True row, in a batch small and large (``SMALL``: words compared): every column is
    read."""
    x = ~torch.eye(width, dtype=torch.bool)
    x = torch.cat([x, torch.ones(1, width, dtype=torch.bool)])
    want = torch.zeros(width + 1, dtype=torch.bool)
    want[-1] = True
    assert torch.equal(_all_rows(x), want)
    copies = SMALL // (width + 1) + 1
    assert torch.equal(_all_rows(x.repeat(copies, 1)), want.repeat(copies))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 40),
    width=st.sampled_from([0, 1, 7, 8, 9, 16, 21, 29]),
    density=st.floats(0.0, 1.0),
    offset=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_host_side_helpers_equal_their_torch_definitions(
    rows: int, width: int, density: float, offset: bool, seed: int
) -> None:
    """The engine's NumPy-on-CPU index helpers give what the plain torch ops give: a row's
    ``all`` (rows of 8 bytes or more as overlapping int64 words, also in a view that isn't
    word-aligned), a mask's ``any``, its rows, the codes a batch holds and a row
    write-back."""
    g = torch.Generator().manual_seed(seed)
    flat = torch.rand(rows * width + int(offset), generator=g) < density
    x = flat[int(offset) :].view(rows, width)
    assert torch.equal(_all_rows(x), x.all(dim=1))
    if rows and width >= 8:  # what _all_rows runs from SMALL worlds on
        assert np.array_equal(_all_words(x.numpy()), x.all(dim=1).numpy())
    mask = torch.rand(rows, generator=g) < density
    assert _none(mask) == (not bool(mask.any()))
    assert torch.equal(true_rows(mask), torch.nonzero(mask).flatten())
    codes = torch.randint(0, 13, (rows,), generator=g)
    assert present(codes) == set(codes.unique().tolist())
    dst, src = torch.zeros(rows, 3, dtype=torch.int64), torch.ones(int(mask.sum()), 3).long()
    want = dst.clone().index_copy_(0, true_rows(mask), src)
    copy_rows(dst, true_rows(mask), src)
    assert torch.equal(dst, want)
