"""The phone family's learnability aids (issue 11): admissible-action masks, reward modes,
structured observation fields, paired-task switches, curricula and per-term episode stats."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import envgym  # noqa: F401
from envgym.core import keys
from envgym.curriculum import SuccessGatedCurriculum
from envgym.phone.engine import oracle_success_rate
from envgym.phone.faces import PhoneEnv, PhoneVectorEnv
from envgym.phone.names import ALL_REWARD_TERMS, REWARD_TERMS, SHAPED_TERMS, SUBGOAL_SHARE
from envgym.testing import check_action_mask


def _oracle_mix(envs: PhoneVectorEnv, gen: torch.Generator, p: float = 0.3) -> torch.Tensor:
    """The oracle's action, or with probability ``p`` a random admissible one."""
    mask = envs.action_masks()
    rand = torch.multinomial(mask.float(), 1, generator=gen).squeeze(1)
    pick = torch.rand(envs.num_envs, generator=gen) < p
    return torch.where(pick, rand, envs.oracle_action())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scenario": "all"},
        {"scenario": "generated", "difficulty": 4, "num_generated": 8},
        {"scenario": "generated", "difficulty": 0.5, "num_generated": 8},
    ],
)
def test_mask_contract(kwargs: dict) -> None:
    envs = PhoneVectorEnv(24, **kwargs)
    check_action_mask(envs, steps=60, seed=3)
    # The mask is tight: random actions are mostly inadmissible, admissible ones are few.
    _, info = envs.reset(seed=0)
    frac = info[keys.ACTION_MASK].float().mean()
    assert float(frac) < 0.35


def test_inadmissible_actions_do_fail() -> None:
    """The mask is not trivially permissive: an action it rules out that has an error code
    (dial off-list, press off an IVR, speak on hold...) does yield one."""
    envs = PhoneVectorEnv(32, scenario="all")
    gen = torch.Generator().manual_seed(0)
    envs.reset(seed=1)
    errors = 0
    for _ in range(30):
        mask = envs.action_masks()
        rand = torch.multinomial((~mask).float(), 1, generator=gen).squeeze(1)
        _, _, _, _, info = envs.step(rand)
        errors += int((info[keys.ACTION_ERROR] != 0).sum())
    assert errors > 0.5 * 30 * 32


# What the task's progress is made of: what the assistant knows and has proven, the account's
# records and fees, where the call stands (phase, menu node, department, number, call counts),
# the sub-goals reached.
_PROGRESS = (
    *("known", "num_known", "verified", "user_refused", "mismatches", "records", "fees"),
    *("service", "phase", "node", "dept", "number", "calls", "total_calls"),
    *("sg_dept", "sg_service", "sg_verified", "sg_fact", "sg_records"),
)


@pytest.mark.parametrize("scenario", ["all", "generated"])
def test_inadmissible_actions_never_move_the_task(scenario: str) -> None:
    """The mask is tight: an action it rules out that is carried out (no ``action_error``:
    a key the menu lacks, a service the scenario doesn't offer, a fact already known or not
    asked for) leaves the task's progress as it was, or as waiting would have left it (a hold
    queue or a menu's timeout moves on either way). Each is tried on a copy of the state,
    beside ``wait`` on another."""
    envs = PhoneVectorEnv(256, scenario=scenario)
    eng, B, A = envs.engine, envs.num_envs, int(envs.single_action_space.n)
    wait = torch.full((B,), envs.action_names.index("wait"))
    gen = torch.Generator().manual_seed(0)
    _, info = envs.reset(seed=1)
    tried = 0
    for t in range(40):
        before = envs.state
        cand = torch.randint(0, A, (B,), generator=gen)
        ruled_out = ~info[keys.ACTION_MASK][torch.arange(B), cand]
        after = {k: v.clone() for k, v in before.items()}
        carried = ruled_out & (eng.step(after, cand)["action_error"] == 0)
        waited = {k: v.clone() for k, v in before.items()}
        eng.step(waited, wait)
        still = torch.ones(B, dtype=torch.bool)
        as_wait = torch.ones(B, dtype=torch.bool)
        for k in _PROGRESS:
            still &= (after[k] == before[k]).reshape(B, -1).all(1)
            as_wait &= (after[k] == waited[k]).reshape(B, -1).all(1)
        moved = carried & ~still & ~as_wait
        assert not bool(moved.any()), (
            f"step {t}: ruled-out actions {cand[moved][:4].tolist()} moved the task "
            f"in worlds {moved.nonzero().flatten()[:4].tolist()}"
        )
        tried += int(carried.sum())
        mix = torch.rand(B, generator=gen) < 0.6
        _, _, _, _, info = envs.step(torch.where(mix, envs.oracle_action(), cand))
    assert tried > 0.2 * 40 * B  # a third to a half of the random actions: ruled out, carried out


def test_single_env_mask_and_show_admissible() -> None:
    env = PhoneEnv("isp_bill_discount", obs_mode="text", show_admissible=True)
    obs, info = env.reset(seed=0)
    mask = info[keys.ACTION_MASK]
    assert mask.dtype == np.bool_ and mask.shape == (len(env.action_names),)
    names = [n for n, ok in zip(env.action_names, mask, strict=True) if ok]
    assert obs.splitlines()[-1] == "system: admissible: " + ", ".join(names)
    assert "dial:0" in names and "press:1" not in names
    obs, _, _, _, info = env.step(env.oracle_action())
    assert info[keys.ACTION_ERROR] == ""
    assert "admissible:" in obs.splitlines()[-1]


def test_reward_modes() -> None:
    runs = {}
    for mode in ("sparse", "costs", "shaped"):
        envs = PhoneVectorEnv(16, scenario="all", reward_mode=mode)
        gen = torch.Generator().manual_seed(5)
        envs.reset(seed=11)
        rows = []
        for _ in range(50):
            _, rew, term, trunc, info = envs.step(_oracle_mix(envs, gen))
            terms = info[keys.REWARD_TERMS]
            assert tuple(terms) == ALL_REWARD_TERMS
            assert torch.allclose(sum(terms.values()), rew, atol=1e-5)
            ep = info[keys.EPISODE]
            done = term | trunc
            # per-term episode returns add up to the episode return
            total = sum(ep["terms"].values())
            assert torch.allclose(total[done], ep["r"][done], atol=1e-4)
            rows.append((rew, {k: v.clone() for k, v in terms.items()}, ep, done))
        runs[mode] = rows
    for (_, t_s, _, _), (r_c, t_c, _, _), (r_h, t_h, ep_h, done) in zip(
        runs["sparse"], runs["costs"], runs["shaped"], strict=True
    ):
        # same trajectories (the mix draws from the mask and the oracle, not the reward)
        assert torch.equal(t_s["goal"], t_c["goal"]) and torch.equal(t_c["goal"], t_h["goal"])
        for k in REWARD_TERMS[1:]:
            assert not bool(t_s[k].any())
            assert torch.equal(t_c[k], t_h[k])
        for k in SHAPED_TERMS:
            assert not bool(t_s[k].any()) and not bool(t_c[k].any())
            assert bool((t_h[k] >= 0).all())
        assert torch.allclose(r_h - r_c, sum(t_h[k] for k in SHAPED_TERMS), atol=1e-5)
        if bool(done.any()):
            # each group pays at most its share of the goal weight per episode
            for k in SHAPED_TERMS:
                assert bool((ep_h["terms"][k][done] <= SUBGOAL_SHARE * 1.0 + 1e-5).all())
    paid = sum(float(t[k].sum()) for _, t, _, _ in runs["shaped"] for k in SHAPED_TERMS)
    assert paid > 0


def test_oracle_reaches_every_subgoal() -> None:
    envs = PhoneVectorEnv(14, scenario="all", reward_mode="shaped")
    envs.reset(seed=0)
    seen = 0
    for _ in range(80):
        _, _, term, trunc, info = envs.step(envs.oracle_action())
        done = term | trunc
        if bool(done.any()):
            ep = info[keys.EPISODE]
            assert bool(info[keys.SUCCESS][done].all())
            for name, reached in ep["subgoals"].items():
                assert bool(reached[done].all()), name
            shaped = sum(ep["terms"][k] for k in SHAPED_TERMS)
            goal_w = envs.compiled.tables["w"][envs.state["scenario"], 0]
            assert bool((shaped[done] <= goal_w[done] + 1e-5).all())
            seen += int(done.sum())
    assert seen >= 14


def test_structured_fields() -> None:
    envs = PhoneVectorEnv(16, scenario="all", structured_obs=True)
    obs, _ = envs.reset(seed=2)
    assert envs.observation_space.contains({k: v.numpy() for k, v in obs.items()})
    provide = torch.tensor([n.startswith("provide:") for n in envs.action_names])
    base = envs.action_names.index(next(n for n in envs.action_names if n.startswith("provide")))
    checked = 0
    for _ in range(60):
        a = envs.oracle_action()
        is_provide = provide[a]
        # when the oracle states a fact, it is the one the structured field says is pending
        pend = obs["pending_fact"]
        assert bool((pend[is_provide] - 1 == a[is_provide] - base).all())
        checked += int(is_provide.sum())
        yes_no = torch.tensor([envs.action_names[i] in ("say_yes", "say_no") for i in a])
        assert bool(obs["offer_pending"][yes_no].any(dim=1).all())
        obs, *_ = envs.step(a)
    assert checked > 0
    plain = PhoneVectorEnv(2, scenario="all")
    assert "pending_fact" not in plain.single_observation_space.spaces


def test_reveal_hidden_twin() -> None:
    hidden = PhoneVectorEnv(8, scenario="isp_bill_discount")
    revealed = PhoneVectorEnv(8, scenario="isp_bill_discount", reveal_hidden=True)
    oh, _ = hidden.reset(seed=0)
    orv, _ = revealed.reset(seed=0)
    assert int(orv["known_facts"].sum()) > int(oh["known_facts"].sum())
    ask = [i for i, n in enumerate(revealed.action_names) if n.startswith("ask_user:")]
    for _ in range(40):
        a = revealed.oracle_action()
        assert not any(int(x) in ask for x in a)
        _, _, term, trunc, info = revealed.step(a)
        assert not bool(info[keys.ACTION_MASK][:, ask].any())
    assert oracle_success_rate(revealed.compiled) == [1.0]


def test_variation_off_and_target_mask() -> None:
    def stream(seed: int, variation: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        envs = PhoneVectorEnv(
            4, scenario="isp_bill_discount", variation=variation, target_mask=True
        )
        envs.reset(seed=seed)
        tgts, masks = [], []
        for _ in range(12):
            _, _, _, _, info = envs.step(envs.oracle_action())
            tgts.append(info[keys.NEXT_OBS_TARGET])
            masks.append(info[keys.TARGET_MASK])
        return tgts, masks

    on_a, mask_on = stream(0, "on")
    on_b, _ = stream(100, "on")
    off_a, mask_off = stream(0, "off")
    off_b, _ = stream(100, "off")
    assert any(not torch.equal(x, y) for x, y in zip(on_a, on_b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(off_a, off_b, strict=True))
    assert not any(bool(m.any()) for m in mask_off)
    assert any(bool(m.any()) for m in mask_on)
    # noise is marked only on real tokens, and wherever seeded streams differ
    for x, y, m in zip(on_a, on_b, mask_on, strict=True):
        assert not bool((m & (x == 0)).any())
        same_len = (x != 0).sum(1) == (y != 0).sum(1)
        differs = (x != y) & same_len[:, None]
        assert bool(m[differs].all())


def test_half_level_is_solvable_and_between() -> None:
    from envgym.phone.generator import generate_scenario

    scs = [generate_scenario(seed, 0.5) for seed in range(20)]
    assert all(s.name == f"generated_d0_5_s{i}" for i, s in enumerate(scs))
    assert all(len(s.company.ivr) == 1 for s in scs)
    assert generate_scenario(3, 0.5) == generate_scenario(3, 0.5)
    with pytest.raises(ValueError):
        generate_scenario(0, 0.7)
    envs = gym.make_vec(
        "envgym/Phone-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        scenario="generated",
        difficulty=0.5,
        num_generated=20,
    )
    assert oracle_success_rate(envs.unwrapped.compiled, seeds=2) == [1.0] * 20


def test_curriculum_levels_and_promotion() -> None:
    envs = PhoneVectorEnv(32, levels=[0, 0.5, 1], num_generated=4)
    envs.reset(seed=0)
    assert bool((envs.difficulty == 0).all())
    envs.set_difficulty(torch.arange(16), 2)
    envs.reset(seed=0, options={"reset_mask": torch.arange(32) < 16})
    assert bool((envs.difficulty[:16] == 2).all()) and bool((envs.difficulty[16:] == 0).all())
    names = [envs.compiled.scenarios[int(s)].name for s in envs.state["scenario"]]
    assert all(n.startswith("generated_d1_") for n in names[:16])
    assert all(n.startswith("generated_d0_s") for n in names[16:])
    envs.reset(seed=0, options={"difficulty": 1})
    assert bool((envs.difficulty == 1).all())
    with pytest.raises(ValueError):
        envs.set_difficulty([0], 3)

    envs.reset(seed=0, options={"difficulty": 0})
    cur = SuccessGatedCurriculum(3, threshold=0.8, window=8, review=0.25, seed=1)
    for _ in range(120):
        _, _, term, trunc, info = envs.step(envs.oracle_action())
        cur.step(envs, term | trunc, info[keys.SUCCESS])
    assert cur.frontier == 2
    assert [f for _, f in cur.history] == [1, 2]
    assert cur.success_rate(0) >= 0.8
    lv = cur.assign(4000)
    assert 0.15 < float((lv < 2).float().mean()) < 0.35


def test_curriculum_does_not_promote_failures() -> None:
    cur = SuccessGatedCurriculum(3, threshold=0.8, window=10)
    zeros = torch.zeros(50, dtype=torch.int64)
    assert not cur.record(zeros, torch.zeros(50, dtype=torch.bool))
    assert cur.frontier == 0 and cur.success_rate(0) == 0.0
    # 7 of the last 10 succeeded: 0.7 < 0.8, no promotion; the 8th makes it 0.8
    assert not cur.record(zeros[:7], torch.ones(7, dtype=torch.bool))
    assert cur.record(zeros[:1], torch.ones(1, dtype=torch.bool))
    assert cur.frontier == 1 and cur.history == [(58, 1)]
    assert np.isnan(cur.success_rate(1))


def test_maskable_ppo_trains_on_the_mask() -> None:
    """sb3-contrib's MaskablePPO, unchanged, through SB3VecEnv: it reads the engine's masks,
    so every action it takes is admissible (no action_error in any step)."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback

    from envgym.wrappers import SB3VecEnv

    envs = gym.make_vec(
        "envgym/Phone-v0", num_envs=16, vectorization_mode="vector_entry_point", scenario="mock"
    )
    venv = SB3VecEnv(envs, seed=0)

    class Errors(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.steps = self.errors = 0

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                self.steps += 1
                self.errors += int(info[keys.ACTION_ERROR] != 0)
            return True

    cb = Errors()
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0)
    model.learn(512, callback=cb)
    assert cb.steps >= 512 and cb.errors == 0
    assert venv.action_masks().shape == (16, envs.single_action_space.n)
    assert np.stack(venv.env_method("action_masks")).shape == (16, envs.single_action_space.n)


def test_bench_aids_rows(tmp_path: Path) -> None:
    """``envgym bench --aids`` times the aids off and on in the same run, row after row."""
    import json

    from envgym.cli import main

    out = tmp_path / "aids.json"
    args = ["bench", "envgym/Phone-v0", "--scenario", "mock", "--num-envs", "4"]
    assert main([*args, "--steps", "2", "--warmup", "0", "--aids", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["env_kwargs"]["action_mask"] for r in rows] == ["False", "True"]
    assert [r["env_kwargs"]["reward_mode"] for r in rows] == ["costs", "shaped"]
    assert all(r["env_steps_per_s"] > 0 for r in rows)
