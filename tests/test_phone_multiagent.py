"""The three-party phone env: assistant, rep and user on one engine, any subset learned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

import envgym.phone as phone
from envgym.phone.compiler import compile_scenarios
from envgym.phone.faces import PhoneVectorEnv
from envgym.phone.multiagent import PhoneParallelVectorEnv
from envgym.phone.names import R_GRANT, R_REFUSE
from envgym.phone.policy import true_value
from envgym.phone.scenarios import load_scenario, resolve_scenarios

PARTIES = ("assistant", "rep", "user")
Policy = Callable[[PhoneParallelVectorEnv, torch.Generator], dict[str, torch.Tensor]]


SHIPPED = len(resolve_scenarios("all", 1, 0, 0))


def pinned(learners: Any, seeds: int = 3, **kw: Any) -> Any:
    """A batched three-party env over every shipped scenario: world b runs scenario b % K in
    its first episode."""
    env = PhoneParallelVectorEnv(SHIPPED * seeds, "all", learners, **kw)
    env.reset(seed=11)
    st = env.core.state
    st["scenario"] = torch.arange(env.num_envs) % env.compiled.dims["K"]
    env.engine.reset_scenario_fields(st)
    env.core.state_changed()
    return env


def first_episodes(
    env: PhoneParallelVectorEnv, policy: Policy, seed: int = 0, careless: bool = False
) -> dict[str, Any]:
    """Run every world's first episode; per agent: success at its end and summed terms.
    ``careless``: a third of the assistant's statements are false."""
    gen = torch.Generator().manual_seed(seed)
    B = env.num_envs
    done = torch.zeros(B, dtype=torch.bool)
    succ = {a: torch.zeros(B, dtype=torch.bool) for a in env.learners}
    terms: dict[str, dict[str, torch.Tensor]] = {
        a: {k: torch.zeros(B) for k in env.reward_term_names[a]} for a in env.learners
    }
    rep_moves: list[torch.Tensor] = []
    for _ in range(400):
        act = policy(env, gen)
        on_turn = env.core.state["floor"] == 1
        if "rep" in act:
            rep_moves.append(torch.where(on_turn & ~done, act["rep"], -1))
        lie = torch.rand(B, generator=gen) < 1 / 3 if careless else None
        said = None if lie is None else stated_values(env, act["assistant"], lie)
        _, _, term, trunc, info = env.step(act, stated_value=said)
        a0 = env.learners[0]
        end = (term[a0] | trunc[a0]) & ~done
        for a in env.learners:
            for k, v in info[a]["reward_terms"].items():
                terms[a][k] += torch.where(done, 0.0, v)
            succ[a] |= end & info[a]["success"]
        done |= end
        if bool(done.all()):
            break
    assert bool(done.all()), "some first episodes did not end"
    return {
        "success": succ,
        "terms": terms,
        "rep_moves": torch.stack(rep_moves) if rep_moves else None,
    }


def stated_values(env: PhoneParallelVectorEnv, a: torch.Tensor, lie: torch.Tensor) -> torch.Tensor:
    """The value ids an assistant taking actions ``a`` states for their facts: the user's true
    value, or (``lie``) a value no fact has; the engine decides which are right."""
    e, c = env.engine, env.compiled
    true = torch.tensor(
        [
            [-2 if (v := true_value(sc, f)) is None else e.value_id(v) for f in c.facts]
            for sc in c.scenarios
        ]
    )
    f = e.act_arg[a].clamp(max=len(c.facts) - 1)
    return torch.where(lie, -2, true[env.core.state["scenario"], f])


def oracle(env: PhoneParallelVectorEnv, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return env.oracle_actions()


def uniform(env: PhoneParallelVectorEnv, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        a: torch.randint(0, int(env.single_action_spaces[a].n), (env.num_envs,), generator=gen)
        for a in env.learners
    }


# --------------------------------------------------------------------------- PettingZoo API
@pytest.mark.parametrize("learners", [PARTIES, ("rep",), ("assistant", "user")])
def test_parallel_api_and_seed_tests_pass(learners: tuple[str, ...]) -> None:
    parallel_api_test(phone.parallel_env("isp_bill_discount", learners), num_cycles=200)
    parallel_seed_test(lambda: phone.parallel_env("mock", learners), num_cycles=100)


def test_aec_env_and_module_idiom() -> None:
    from pettingzoo.test import api_test

    api_test(phone.env(scenario="mock"), num_cycles=100)
    assert phone.aec_env("mock", ("rep",)).possible_agents == ["rep"]


def test_observations_and_targets_lie_in_their_spaces() -> None:
    env = phone.parallel_env("all")
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(60):
        for a in env.agents:
            assert env.observation_space(a).contains(obs[a]), a
        acts = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        if rng.random() < 0.7:
            acts.update(env.oracle_actions())
        obs, _, _, _, info = env.step(acts)
        for a, i in info.items():
            assert env.target_space(a).contains(i["next_obs_target"]), a
        if not env.agents:
            obs, _ = env.reset()


def test_bad_learners_and_actions_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="learners must be"):
        phone.parallel_env("mock", ("caller",))
    env = phone.parallel_env("mock", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing actions"):
        env.step({"assistant": torch.zeros(2, dtype=torch.int64)})
    bad = {a: torch.zeros(2, dtype=torch.int64) for a in PARTIES}
    bad["rep"] = torch.tensor([0, 999])
    with pytest.raises(ValueError, match="rep actions out of"):
        env.step(bad)


# --------------------------------------------------------------------------- each party learns
def test_assistant_as_sole_learner_is_the_single_agent_env() -> None:
    """Scripted rep and user behave as before: same tokens, rewards and flags as PhoneVectorEnv."""
    multi = PhoneParallelVectorEnv(12, "all", ("assistant",))
    single = PhoneVectorEnv(12, "all")
    mo, _ = multi.reset(seed=5)
    so, _ = single.reset(seed=5)
    gen = torch.Generator().manual_seed(1)
    for _ in range(90):
        assert torch.equal(mo["assistant"]["tokens"], so["tokens"])
        rand = torch.randint(0, single.single_action_space.n, (12,), generator=gen)
        act = torch.where(torch.rand(12, generator=gen) < 0.8, single.oracle_action(), rand)
        mo, mr, mt, mtr, mi = multi.step({"assistant": act})
        so, sr, st, strunc, si = single.step(act)
        assert torch.equal(mr["assistant"], sr) and torch.equal(mt["assistant"], st)
        assert torch.equal(mtr["assistant"], strunc)
        assert torch.equal(mi["assistant"]["next_obs_target"], si["next_obs_target"])
        assert bool(mo["assistant"]["my_turn"].all())


@pytest.mark.parametrize("learner", PARTIES)
def test_each_party_as_sole_learner_driven_by_its_oracle_succeeds(learner: str) -> None:
    env = pinned((learner,))
    res = first_episodes(env, oracle)
    assert bool(res["success"][learner].all()), res["success"][learner]


def test_all_three_learned_with_their_oracles_succeed_and_follow_policy() -> None:
    env = pinned(PARTIES)
    res = first_episodes(env, oracle)
    for a in PARTIES:
        assert bool(res["success"][a].all()), a
    rep = res["terms"]["rep"]
    assert float(rep["forbidden_grant"].abs().sum()) == 0.0
    assert float(rep["false_verification"].abs().sum()) == 0.0


def test_a_learned_rep_takes_turns() -> None:
    """With the rep learned its moves are separate steps: the assistant waits for them."""
    env = PhoneParallelVectorEnv(1, "mock", ("assistant", "rep"))
    obs, _ = env.reset(seed=0)
    seen_rep_turn = False
    for _ in range(40):
        mine = {a: bool(obs[a]["my_turn"][0]) for a in env.learners}
        assert mine["assistant"] != mine["rep"]
        seen_rep_turn |= mine["rep"]
        obs, _, term, trunc, info = env.step(env.oracle_actions())
        if bool(term["rep"][0] | trunc["rep"][0]):
            assert bool(info["rep"]["success"][0])
            break
    assert seen_rep_turn


# --------------------------------------------------------------------------- the rep's policy
def provide_pending(env: PhoneParallelVectorEnv, a: torch.Tensor) -> torch.Tensor:
    """``a``, except where the rep waits for a fact: state it."""
    names = env.action_names["assistant"]
    st = env.core.state
    provide = torch.tensor([names.index(f"provide:{f}") for f in env.compiled.facts])
    pf = env.engine.pending_fact(st)
    working = (st["phase"] == 3) & (st["service"] >= 0) & (pf >= 0)
    return torch.where(working, provide[pf.clamp(min=0)], a)


def epsilon_oracle(eps: float) -> Policy:
    """The rep plays its oracle; the assistant is careless: it mixes its oracle with random
    actions and, half the time, states what the rep asks for (see ``first_episodes``: a
    third of its statements are false)."""

    def pol(env: PhoneParallelVectorEnv, gen: torch.Generator) -> dict[str, torch.Tensor]:
        act = env.oracle_actions()
        n = int(env.single_action_spaces["assistant"].n)
        rand = torch.randint(0, n, (env.num_envs,), generator=gen)
        pick = torch.rand(env.num_envs, generator=gen) < eps
        a = torch.where(pick, rand, act["assistant"])
        blurt = torch.rand(env.num_envs, generator=gen) < 0.5
        act["assistant"] = torch.where(blurt, provide_pending(env, a), a)
        return act

    return pol


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rep_oracle_never_grants_what_policy_forbids(seed: int) -> None:
    """Over every shipped scenario, against a careless caller (random actions, invented
    values for facts it doesn't know): no forbidden grant, no false statement accepted."""
    env = pinned(("assistant", "rep"), seeds=4)
    res = first_episodes(env, epsilon_oracle(0.4), seed=seed, careless=True)
    rep = res["terms"]["rep"]
    assert float(rep["forbidden_grant"].abs().sum()) == 0.0
    assert float(rep["false_verification"].abs().sum()) == 0.0
    moves = res["rep_moves"]
    names = env.action_names["rep"]
    assert bool((moves == names.index("reject")).any()), "the careless caller was never rejected"
    assert bool((moves == R_GRANT).any())


def _non_veteran_env(learners: tuple[str, ...]) -> PhoneParallelVectorEnv:
    """Skyline with a user who is a teacher (the Heroes discount is for veterans and doctors);
    the goal is the autopay discount so the scenario stays solvable."""
    sc = load_scenario("isp_bill_discount")
    facts = [
        f.model_copy(update={"value": "teacher"}) if f.id == "occupation" else f
        for f in sc.user.facts
    ]
    facts = [
        f.model_copy(update={"known_to_assistant": True}) if f.id == "card_last4" else f
        for f in facts
    ]
    goal = sc.goal.model_copy(
        update={"records": {"discount": "autopay_5", "autopay": "on", "monthly_price": "84.99"}}
    )
    sc = sc.model_copy(update={"user": sc.user.model_copy(update={"facts": facts}), "goal": goal})
    return PhoneParallelVectorEnv(4, compiled=compile_scenarios([sc]), learners=learners)


def _ask_for_heroes(env: PhoneParallelVectorEnv, rep_moves: Callable[..., torch.Tensor]) -> Any:
    """The assistant insists on the Heroes discount; the rep's moves come from ``rep_moves``."""
    names = env.action_names["assistant"]
    request_heroes = names.index("request:heroes_discount")
    env.reset(seed=4)
    total = {k: torch.zeros(env.num_envs) for k in env.reward_term_names["rep"]}
    moves = []
    for _ in range(40):
        st = env.core.state
        a = env.engine.oracle(st)
        a = torch.where(a == names.index("request:autopay_discount"), request_heroes, a)
        a = provide_pending(env, a)
        r = rep_moves(env)
        moves.append(torch.where(st["floor"] == 1, r, -1))
        _, _, term, trunc, info = env.step({"assistant": a, "rep": r})
        for k, v in info["rep"]["reward_terms"].items():
            total[k] += v
        if bool((term["rep"] | trunc["rep"]).any()):
            break
    return torch.stack(moves), total


def test_a_non_veteran_asking_for_the_veterans_discount_is_refused() -> None:
    env = _non_veteran_env(("assistant", "rep"))
    moves, total = _ask_for_heroes(env, lambda e: e.oracle_actions()["rep"])
    assert bool((moves == R_REFUSE).any(dim=0).all()), "the rep oracle did not refuse"
    assert not bool((moves == R_GRANT).any()), "the rep oracle granted the Heroes discount"
    assert float(total["forbidden_grant"].abs().sum()) == 0.0


def grant_everything(env: PhoneParallelVectorEnv, *_: Any) -> dict[str, torch.Tensor]:
    """A rep that grants every request it holds at once (and otherwise acts as the oracle)."""
    act = env.oracle_actions()
    holds = env.core.state["service"] >= 0
    act["rep"] = torch.where(holds, torch.full_like(act["rep"], R_GRANT), act["rep"])
    return act


def test_a_rep_that_grants_everything_is_penalised() -> None:
    env = _non_veteran_env(("assistant", "rep"))
    _, total = _ask_for_heroes(env, lambda e: grant_everything(e)["rep"])
    assert bool((total["forbidden_grant"] < 0).all())
    # Over every shipped scenario too (each needs verification), against the oracle caller.
    env = pinned(("rep",), seeds=2)
    res = first_episodes(env, grant_everything)
    assert bool((res["terms"]["rep"]["forbidden_grant"] < 0).all())
    assert not bool(res["success"]["rep"].any())


# --------------------------------------------------------------------------- random learners
@pytest.mark.parametrize("learner", ["assistant", "rep"])
def test_random_learner_does_not_succeed(learner: str) -> None:
    env = pinned((learner,), seeds=4)
    res = first_episodes(env, uniform)
    assert not bool(res["success"][learner].any())


def test_random_user_succeeds_far_less_than_the_oracle_user() -> None:
    """A user who answers at random (answer / don't know / refuse) makes the scripted
    assistant give up whenever it won't share a needed fact."""
    env = pinned(("user",), seeds=4)
    rand = first_episodes(env, uniform)["success"]["user"].float().mean()
    orc = first_episodes(pinned(("user",), seeds=4), oracle)["success"]["user"].float().mean()
    assert float(orc) == 1.0
    assert float(rand) < 0.5


# --------------------------------------------------------------------------- batched face
def test_batched_face_world_i_is_single_world_seeded_s_plus_i() -> None:
    vec = phone.parallel_env("all", num_envs=4)
    obs_v, _ = vec.reset(seed=20)
    par = [phone.parallel_env("all") for _ in range(4)]
    obs_s = [p.reset(seed=20 + i)[0] for i, p in enumerate(par)]
    gen = torch.Generator().manual_seed(2)
    for _ in range(40):
        for i in range(4):
            for a in PARTIES:
                for k, v in obs_v[a].items():
                    np.testing.assert_array_equal(v[i].numpy(), np.asarray(obs_s[i][a][k]))
        act = uniform(vec, gen)
        orc = vec.oracle_actions()
        act = {a: torch.where(torch.rand(4, generator=gen) < 0.7, orc[a], act[a]) for a in act}
        obs_v, rew, term, trunc, info = vec.step(act)
        for i, p in enumerate(par):
            if not p.agents:
                obs_s[i], _ = p.reset()
                # the batched face auto-reset this world in the same step
                continue
            o, r, _, _, inf = p.step({a: int(act[a][i]) for a in PARTIES})
            obs_s[i] = o
            for a in PARTIES:
                assert r[a] == pytest.approx(float(rew[a][i]))
                np.testing.assert_array_equal(
                    inf[a]["next_obs_target"], info[a]["next_obs_target"][i].numpy()
                )
            if not p.agents:
                obs_s[i], _ = p.reset()


def test_targets_are_the_true_next_observation_at_episode_ends() -> None:
    env = phone.parallel_env("all", num_envs=8)
    env.reset(seed=1)
    ended = 0
    for _ in range(150):
        obs, _, term, trunc, info = env.step(env.oracle_actions())
        done = term["rep"] | trunc["rep"]
        for a in PARTIES:
            want = torch.where(
                done[:, None],
                env.core.party_target(a, info[a]["final_obs"]),
                env.core.party_target(a, obs[a]),
            )
            assert torch.equal(info[a]["next_obs_target"], want)
        ended += int(done.sum())
    assert ended > 0


# --------------------------------------------------------------------------- bench
def test_bench_three_party_option(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from envgym.cli import main

    out = tmp_path / "b.json"
    args = ["bench", "envgym/Phone-v0", "--num-envs", "4", "--steps", "3", "--warmup", "1"]
    rc = main([*args, "--policy", "oracle", "--three-party", "rep,user", "--json", str(out)])
    assert rc == 0
    row = json.loads(out.read_text())
    assert row["three_party_learners"] == ["rep", "user"]
    assert row["three_party_steps_per_s"] > 0 and row["env_steps_per_s"] > 0
    assert row["ratio_three_party_vs_single"] > 0
    assert "three parties:" in capsys.readouterr().out
    assert main([*args, "--three-party", "caller"]) == 2
    assert "learners must be" in capsys.readouterr().err


def test_snapshots_branch_three_party_rollouts() -> None:
    env = phone.parallel_env("all", num_envs=4)
    env.reset(seed=9)
    for _ in range(7):
        env.step(env.oracle_actions())
    snap = env.get_state()
    gen = torch.Generator().manual_seed(3)
    plan = [uniform(env, gen) for _ in range(12)]

    def roll() -> list[torch.Tensor]:
        out = []
        for act in plan:
            obs, rew, _, _, info = env.step(act)
            out += [obs["rep"]["stimulus"], rew["rep"], info["user"]["next_obs_target"]]
        return out

    first = roll()
    env.set_state(snap)
    second = roll()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.gpu
def test_three_party_cuda_matches_cpu() -> None:
    envs = {d: phone.parallel_env("all", num_envs=64, device=d) for d in ("cpu", "cuda")}
    for e in envs.values():
        e.reset(seed=5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        act = uniform(envs["cpu"], gen)
        orc = envs["cpu"].oracle_actions()
        act = {a: torch.where(torch.rand(64, generator=gen) < 0.7, orc[a], act[a]) for a in act}
        res = {d: e.step({a: v.to(d) for a, v in act.items()}) for d, e in envs.items()}
        for a in PARTIES:
            for k, v in res["cpu"][0][a].items():
                assert torch.equal(v, res["cuda"][0][a][k].cpu()), (a, k)
            assert torch.equal(res["cpu"][1][a], res["cuda"][1][a].cpu())
            assert torch.equal(
                res["cpu"][4][a]["next_obs_target"], res["cuda"][4][a]["next_obs_target"].cpu()
            )
