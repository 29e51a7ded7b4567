"""Learning across calls: company sequences, the off-call user rule, notebook vs no notebook."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.cli import main
from envgym.phone.agents import ExplorerAgent, OracleAgent
from envgym.phone.continual import CompanySequence, evaluate_continual, run_sequence
from envgym.phone.scenarios import load_scenario

COMPANIES = (0, 1, 2)


@pytest.fixture(scope="module")
def sequences() -> list[CompanySequence]:
    return [CompanySequence(c, length=4, difficulty=2, seed=0) for c in COMPANIES]


def test_company_persists_and_requests_vary(sequences: list[CompanySequence]) -> None:
    for seq in sequences:
        scs = seq.scenarios
        assert len(scs) == 4 and len({sc.name for sc in scs}) == 4
        # The company and its hidden requirements are the same in every episode ...
        assert all(sc.company == scs[0].company for sc in scs)
        for sc in scs:
            assert all(s.verify == seq.requirements for s in sc.policies.services)
            assert sc.constraints.user_reachable == "off_call"
            assert sc.policies.max_calls_per_number == 1
            only_user = {f.id for f in sc.user.facts if not f.known_to_assistant}
            assert set(seq.requirements[1:]) <= only_user and seq.requirements[1:]
        # ... the request changes from one episode to the next, and so do the user's digits.
        assert all(a != b for a, b in zip(seq.services, seq.services[1:], strict=False))
        assert len({sc.user.request for sc in scs}) > 1
        fid = seq.requirements[1]
        values = [next(f.value for f in sc.user.facts if f.id == fid) for sc in scs]
        assert len(set(values)) > 1


def test_oracle_solves_every_episode(sequences: list[CompanySequence]) -> None:
    for seq in sequences:
        report = run_sequence(OracleAgent(), seq, seed=0)
        assert report["success"] == [True] * seq.length
        assert report["episodes_to_first_success"] == 1


def test_user_reachable_off_call_rule() -> None:
    sc = load_scenario("isp_bill_discount")
    away = sc.model_copy(
        update={"constraints": sc.constraints.model_copy(update={"user_reachable": "off_call"})}
    )
    env = gym.make("envgym/Phone-v0", scenario=away)
    env.reset(seed=0)
    env.step('{"name": "dial", "arguments": {"number": "0"}}')
    obs, _, _, _, info = env.step('{"name": "ask_user", "arguments": {"fact": "card_last4"}}')
    assert obs == "system: The user can't be reached during a call; ask between calls."
    assert info["action_error"] == ""
    env.step("hang up")
    obs, *_ = env.step('{"name": "ask_user", "arguments": {"fact": "card_last4"}}')
    assert obs.startswith("user:") and "6631" in obs
    # The default ("always") keeps the user beside the assistant during the call.
    env = gym.make("envgym/Phone-v0", scenario="isp_bill_discount")
    env.reset(seed=0)
    env.step("dial 0")
    obs, *_ = env.step("ask user card_last4")
    assert "6631" in obs
    # Tokens face and oracle: the oracle asks before dialling, so it still always succeeds.
    env = gym.make("envgym/Phone-v0", scenario=away, obs_mode="tokens")
    for seed in range(3):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, term, trunc, info = env.step(env.unwrapped.oracle_action())
            done = term or trunc
        assert info["success"]


def test_notebook_beats_the_same_policy_without_one(sequences: list[CompanySequence]) -> None:
    plain = [run_sequence(ExplorerAgent(), seq, seed=0) for seq in sequences]
    notebook_agents = [ExplorerAgent(notebook=True) for _ in sequences]
    noted = [
        run_sequence(a, seq, seed=0) for a, seq in zip(notebook_agents, sequences, strict=True)
    ]
    rate = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    assert rate(noted, "success_rate") >= rate(plain, "success_rate") + 0.4
    assert rate(noted, "success_after_first") >= 0.6
    first_noted = [r["episodes_to_first_success"] or 5 for r in noted]
    first_plain = [r["episodes_to_first_success"] or 5 for r in plain]
    assert sum(first_noted) < sum(first_plain)
    # The first call to each company teaches the same to both: neither knows it yet.
    assert [r["success"][0] for r in noted] == [r["success"][0] for r in plain]
    # What the notebook holds was heard from reps: the labels of the facts they asked for.
    for agent, seq in zip(notebook_agents, sequences, strict=True):
        labels = {f.label.lower() for f in seq.scenarios[0].user.facts if f.id in seq.requirements}
        assert agent.notebook.keys() == {seq.company}
        assert agent.notebook[seq.company] and agent.notebook[seq.company] <= labels


def test_without_the_constraint_memory_is_not_needed(sequences: list[CompanySequence]) -> None:
    # Same companies with the user beside the assistant: the plain explorer asks mid-call and
    # succeeds, so its failures above come from what it didn't know, not from its navigation.
    easy = CompanySequence(COMPANIES[0], length=4, difficulty=2, seed=0, user_reachable="always")
    assert easy.services == sequences[0].services
    assert run_sequence(ExplorerAgent(), easy, seed=0)["success_rate"] >= 0.5


def test_continual_report_reproduces_and_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = evaluate_continual("notebook", companies=1, length=3, difficulty=1, seed=5)
    b = evaluate_continual("notebook", companies=1, length=3, difficulty=1, seed=5)
    assert a == b
    out = tmp_path / "c.json"
    args = ["eval", "--continual", "--policy", "oracle", "--companies", "1", "--length", "2"]
    assert main([*args, "--difficulty", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["overall"]["success_rate"] == 1.0
    assert report["rows"][0]["episodes_to_first_success"] == 1
    assert "first success" in capsys.readouterr().out
    with pytest.raises(ValueError, match="length"):
        CompanySequence(0, length=0)
    with pytest.raises(ValueError, match="user_reachable"):
        CompanySequence(0, user_reachable="sometimes")


def test_off_call_rule_batched_equals_single(sequences: list[CompanySequence]) -> None:
    from envgym.testing import check_batch_vs_single

    scenarios = sequences[0].scenarios
    envs = gym.make_vec(
        "envgym/Phone-v0", num_envs=4, vectorization_mode="vector_entry_point", scenario=scenarios
    )
    check_batch_vs_single(
        envs,
        lambda: gym.make("envgym/Phone-v0", scenario=scenarios, obs_mode="tokens"),
        steps=60,
    )
    # On the tokens face too, asking during a call teaches nothing; between calls it does.
    env = gym.make("envgym/Phone-v0", scenario=scenarios[:1], obs_mode="tokens")
    names = env.unwrapped.action_names
    fid = sequences[0].requirements[1]
    col = env.unwrapped.compiled.facts.index(fid)
    obs, _ = env.reset(seed=0)
    assert obs["known_facts"][col] == 0
    env.step(names.index("dial:0"))
    obs, *_ = env.step(names.index(f"ask_user:{fid}"))
    assert obs["known_facts"][col] == 0
    env.step(names.index("hang_up"))
    obs, *_ = env.step(names.index(f"ask_user:{fid}"))
    assert obs["known_facts"][col] == 1
