"""The phone engine's plumbing: obs_mode="ids" and its gather table, the token packing, the
typed tables, the ceiling baseline."""

from __future__ import annotations

import pytest
import torch

from envgym.phone.ceiling import ceiling_steps_per_s
from envgym.phone.faces import PhoneVectorEnv
from envgym.phone.names import MSG_SLOTS
from envgym.phone.tables import PhoneTables


def _mixed_actions(envs: PhoneVectorEnv, gen: torch.Generator) -> torch.Tensor:
    rand = torch.randint(0, envs.single_action_space.n, (envs.num_envs,), generator=gen)
    pick = torch.rand(envs.num_envs, generator=gen) < 0.7
    return torch.where(pick, envs.oracle_action(), rand)


def test_ids_gathered_through_the_table_equal_the_token_observation_and_target() -> None:
    tok = PhoneVectorEnv(24, "all")
    ids = PhoneVectorEnv(24, "all", obs_mode="ids")
    assert "msg_ids" in ids.single_observation_space.spaces
    assert ids.single_target_space.shape == (MSG_SLOTS,)
    ot, _ = tok.reset(seed=5)
    oi, _ = ids.reset(seed=5)
    assert torch.equal(ids.tokens_from_ids(oi["msg_ids"]), ot["tokens"])
    gen, seen_multi, ends = torch.Generator().manual_seed(3), 0, 0
    for _ in range(60):
        a = _mixed_actions(tok, gen)
        ot, rt, *_, it = tok.step(a)
        oi, ri, *_, ii = ids.step(a)
        assert torch.equal(rt, ri)
        assert ids.single_observation_space.contains({k: v[0].numpy() for k, v in oi.items()})
        assert torch.equal(ids.tokens_from_ids(oi["msg_ids"]), ot["tokens"])
        assert torch.equal(ids.tokens_from_ids(ii["next_obs_target"]), it["next_obs_target"])
        fin = ii["final_obs"]["msg_ids"]
        assert torch.equal(ids.tokens_from_ids(fin), it["final_obs"]["tokens"])
        seen_multi += int(((oi["msg_ids"] > 0).sum(dim=1) > 1).sum())
        ends += int(ii["_final_obs"].sum())
    assert seen_multi > 0 and ends > 0  # both packing paths and auto-resets were exercised


def test_ids_batched_equal_single_worlds() -> None:
    batch = PhoneVectorEnv(3, "all", obs_mode="ids")
    ob, _ = batch.reset(seed=40)
    singles = [PhoneVectorEnv(1, "all", obs_mode="ids") for _ in range(3)]
    os_ = [s.reset(seed=40 + i)[0] for i, s in enumerate(singles)]
    for _ in range(25):
        a = batch.oracle_action()
        ob, *_ = batch.step(a)
        os_ = [s.step(a[i : i + 1])[0] for i, s in enumerate(singles)]
        for i in range(3):
            assert torch.equal(ob["msg_ids"][i], os_[i]["msg_ids"][0])


def test_the_gather_table_is_documented_shape_and_row_zero_is_padding() -> None:
    envs = PhoneVectorEnv(2, "mock", obs_mode="ids")
    table = envs.message_tokens
    assert table.dtype == torch.int32 and table.dim() == 2
    assert int(table[0].abs().sum()) == 0
    assert envs.single_observation_space["msg_ids"].high.max() == table.shape[0] - 1


def test_general_packing_equals_the_fast_path() -> None:
    envs = PhoneVectorEnv(32, "all")
    envs.reset(seed=1)
    gen = torch.Generator().manual_seed(0)
    packer = envs.engine.packer
    for _ in range(30):
        envs.step(_mixed_actions(envs, gen))
        ids = envs.engine.message_ids(envs.state)
        assert torch.equal(packer.pack(ids), packer.pack(ids, sync_free=True))


def test_tables_reject_missing_and_unknown_names() -> None:
    tables = dict(PhoneVectorEnv(1, "mock").compiled.tables)
    typed = PhoneTables.from_dict(tables)
    assert torch.equal(typed.max_turns, tables["max_turns"]) and typed["w"] is tables["w"]
    assert set(typed.names()) == set(tables)
    with pytest.raises(ValueError, match="missing \\['m_intro'\\]"):
        PhoneTables.from_dict({k: v for k, v in tables.items() if k != "m_intro"})
    with pytest.raises(ValueError, match="unknown \\['m_intor'\\]"):
        PhoneTables.from_dict({**tables, "m_intor": tables["m_intro"]})
    with pytest.raises(KeyError):
        typed["m_intor"]


def test_ceiling_runs_both_modes() -> None:
    for ids_only in (False, True):
        sps, secs = ceiling_steps_per_s(64, 10, 32, steps=3, warmup=1, ids_only=ids_only)
        assert sps > 0 and secs > 0


def test_bench_reports_env_over_ceiling() -> None:
    from envgym.bench import bench_env

    row = bench_env("envgym/Phone-v0", 8, steps=3, warmup=1, env_kwargs={"scenario": "mock"})
    assert row["raw_baseline"].startswith("phone ceiling")
    assert row["ratio"] == pytest.approx(row["env_steps_per_s"] / row["raw_steps_per_s"])


def test_the_engine_decides_whether_a_stated_value_is_true() -> None:
    from envgym.phone.engine import PhoneActions

    envs = PhoneVectorEnv(2, "isp_bill_discount")
    envs.reset(seed=[3, 3])
    provide = [i for i, n in enumerate(envs.action_names) if n.startswith("provide:")]
    for _ in range(30):
        a = envs.oracle_action()
        if int(a[0]) in provide:
            break
        envs.step(a)
    assert int(a[0]) in provide and torch.equal(a[0], a[1])
    fact = envs.action_names[int(a[0])].split(":", 1)[1]
    sc = envs.compiled.scenarios[int(envs.state["scenario"][0])]
    truth = next(f.value for f in sc.user.facts if f.id == fact)
    said = [envs.engine.value_id(f"  {truth.upper()} "), envs.engine.value_id("no-such-value")]
    assert said[1] == -2
    envs.step(PhoneActions(a, stated_value=torch.tensor(said)))
    assert envs.state["mismatches"].tolist() == [0, 1]
    assert bool(envs.state["verified"][0].any()) and not bool(envs.state["verified"][1].any())
