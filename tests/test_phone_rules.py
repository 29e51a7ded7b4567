"""The rules of a call, driven through the text face as an LLM agent would."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import envgym
from envgym.phone.models import PhoneScenario
from envgym.phone.scenarios import load_scenario


def text_env(scenario: object = "isp_bill_discount") -> gym.Env:
    return gym.make("envgym/Phone-v0", scenario=scenario, obs_mode="text")


def call(name: str, **args: object) -> str:
    return json.dumps({"name": name, "arguments": args})


def reach_rep(env: gym.Env) -> str:
    """Dial Skyline, press 1 for billing, wait out the hold; return what the rep said."""
    obs, _ = env.reset(seed=0)
    assert "skyline" in obs.lower()
    obs, *_ = env.step("dial 800-555-0100")
    assert "press 1" in obs.lower()
    obs, *_ = env.step("press 1")
    for _ in range(10):
        if obs.startswith("rep:") or "\nrep:" in obs:
            return obs
        obs, *_ = env.step("wait")
    raise AssertionError("no rep picked up")


def test_seed_example_without_the_card_digits_fails_verification() -> None:
    env = text_env()
    reach_rep(env)
    obs, *_ = env.step(call("request", service="heroes_discount"))
    assert "account number" in obs.lower()
    obs, *_ = env.step("my account number is 4417229016")
    assert "last four digits" in obs.lower()
    # The assistant doesn't know the card digits and invents some: that fails verification.
    obs, r, term, trunc, info = env.step(call("provide", fact="card_last4", value="1234"))
    assert "doesn't match" in obs.lower() or "not what i have" in obs.lower()
    assert not info["success"]
    obs, r, term, trunc, info = env.step(call("provide", fact="card_last4", value="9999"))
    # The second mismatch ends the call for security (max_verification_failures: 2).
    assert "hung up" in obs.lower()
    assert not term


def test_seed_example_asking_the_user_first_succeeds() -> None:
    env = text_env()
    env.reset(seed=0)
    obs, *_ = env.step(call("ask_user", fact="card_last4"))
    assert "6631" in obs
    obs, *_ = env.step(call("dial", number="800-555-0100"))
    obs, *_ = env.step(call("press", key="1"))
    while "rep:" not in obs:
        obs, *_ = env.step(call("wait"))
    env.step(call("request", service="heroes_discount"))
    env.step(call("provide", fact="account_number", value="4417229016"))
    obs, *_ = env.step(call("provide", fact="card_last4", value="6631"))
    assert "occupation" in obs.lower() or "veteran" in obs.lower()
    obs, r, term, trunc, info = env.step(call("provide", fact="occupation", value="veteran"))
    assert info["success"]
    obs, r, term, trunc, info = env.step(call("report", summary="Discount applied."))
    assert term and info["success"] and info["reward_terms"]["goal"] == pytest.approx(1.0)


def test_eligibility_rule_refuses_the_ineligible() -> None:
    base = load_scenario("isp_bill_discount")
    facts = [
        f.model_copy(update={"value": "teacher"}) if f.id == "occupation" else f
        for f in base.user.facts
    ]
    # The goal is then unreachable, and compiling says so with the field path.
    sc = base.model_copy(update={"user": base.user.model_copy(update={"facts": facts})})
    with pytest.raises(envgym.dsl.ScenarioError, match=r"goal\.records"):
        gym.make("envgym/Phone-v0", scenario=sc)
    # With a reachable goal, asking for the discount anyway gets the refusal.
    goal = base.goal.model_copy(update={"records": {"paper_statements": "off"}})
    sc2 = sc.model_copy(update={"goal": goal})
    env = text_env(sc2)
    env.reset(seed=0)
    env.step(call("ask_user", fact="card_last4"))
    obs, *_ = env.step("dial 800-555-0100")
    obs, *_ = env.step("press 1")
    while "rep:" not in obs:
        obs, *_ = env.step("wait")
    env.step(call("request", service="heroes_discount"))
    env.step(call("provide", fact="account_number", value="4417229016"))
    env.step(call("provide", fact="card_last4", value="6631"))
    obs, r, term, trunc, info = env.step(call("provide", fact="occupation", value="teacher"))
    assert "veteran" in obs.lower() or "qualify" in obs.lower() or "sorry" in obs.lower()
    assert not info["success"]


def test_volunteering_a_sensitive_fact_is_a_privacy_violation() -> None:
    env = text_env()
    reach_rep(env)
    obs, r, *_, info = env.step("my account number is 4417229016")
    assert info["reward_terms"]["privacy_violation"] < 0
    assert "didn't ask" in obs.lower() or "don't need" in obs.lower()


def test_unparseable_text_gets_sorry_and_penalty() -> None:
    env = text_env()
    reach_rep(env)
    obs, r, term, trunc, info = env.step("flibbertigibbet the modem")
    assert info["action_error"].startswith("not_understood")
    assert info["reward_terms"]["invalid_action"] < 0
    assert "catch that" in obs.lower() or "say that again" in obs.lower()


def test_invalid_actions_are_reported_not_raised() -> None:
    env = text_env()
    env.reset(seed=0)
    obs, r, term, trunc, info = env.step("press 1")
    assert info["action_error"] == "not_on_call"
    assert info["reward_terms"]["invalid_action"] < 0
    obs, r, term, trunc, info = env.step("dial 555-000-0000")
    assert info["action_error"].startswith("not_understood")


def _budget_scenario() -> PhoneScenario:
    sc = load_scenario("mock")
    pol = sc.policies.model_copy(update={"max_calls_per_number": 2})
    return sc.model_copy(update={"policies": pol})


def test_call_limit_and_call_budget() -> None:
    env = text_env(_budget_scenario())
    env.reset(seed=0)
    obs, r, term, trunc, info = env.step("dial 0")
    assert "1st call" in obs
    assert info["reward_terms"]["over_call_budget"] == 0
    env.step("hang up")
    obs, r, term, trunc, info = env.step("dial 0")
    assert "2nd call" in obs
    assert info["reward_terms"]["over_call_budget"] < 0  # budget is 1 call
    env.step("hang up")
    obs, r, term, trunc, info = env.step("dial 0")
    assert "at most 2 calls" in obs and "not connected" in obs


def test_text_and_tokens_faces_agree() -> None:
    tok = gym.make("envgym/Phone-v0", scenario="isp_bill_discount", obs_mode="tokens")
    txt = text_env()
    tok.reset(seed=4)
    txt.reset(seed=4)
    for _ in range(30):
        a = tok.unwrapped.oracle_action()
        as_text = txt.unwrapped.oracle_action()
        o1, r1, te1, tr1, i1 = tok.step(a)
        o2, r2, te2, tr2, i2 = txt.step(as_text)
        assert r1 == pytest.approx(r2) and te1 == te2 and tr1 == tr2
        assert np.array_equal(i1["next_obs_target"], i2["next_obs_target"])
        if not (te1 or tr1):  # at an end the text is the final message, tokens the reset
            assert "".join(tok.unwrapped.vec.decode(o1["tokens"]).split()) == "".join(
                envgym.phone.text.tokenize(o2)
            )
        if te1 or tr1:
            break
    assert i1["success"]


def test_tool_schemas_are_openai_style() -> None:
    env = text_env()
    schemas = env.unwrapped.tool_schemas()
    names = {s["function"]["name"] for s in schemas}
    assert {"dial", "press", "wait", "hang_up", "request", "provide", "ask_user", "report"} <= names
    for s in schemas:
        assert s["type"] == "function"
        assert s["function"]["parameters"]["type"] == "object"


def test_free_text_and_json_forms_parse_to_the_same_action() -> None:
    env = text_env()
    parser = env.unwrapped.parser
    same = [
        ("dial 800-555-0100", call("dial", number="800-555-0100")),
        (
            "press 1",
            {"type": "function", "function": {"name": "press", "arguments": '{"key": "1"}'}},
        ),
        ("ask user card_last4", call("ask_user", fact="last four digits of the card")),
        ("request heroes_discount", call("request", service="heroes_discount")),
        ("my card_last4 is 6631", call("provide", fact="card_last4", value="6631")),
        ("yes", call("say_yes")),
        ("hang up", call("hang_up")),
    ]
    for free, js in same:
        a, b = parser.parse(free, 0), parser.parse(js, 0)
        assert a.action == b.action and not a.error and not b.error, (free, a, b)
    assert parser.parse("{not json", 0).error
    assert parser.parse(call("press", key="x"), 0).error


def test_hints_can_be_switched_off_for_an_ablation() -> None:
    on = gym.make("envgym/Phone-v0", scenario="mock", obs_mode="text")
    off = gym.make("envgym/Phone-v0", scenario="mock", obs_mode="text", hints=False)
    on.reset(seed=0)
    off.reset(seed=0)
    assert "1st call" in on.step("dial 0")[0]
    assert "call to this number" not in off.step("dial 0")[0]


def test_importing_envgym_loads_no_backend() -> None:
    import subprocess
    import sys

    code = (
        "import sys, envgym; "
        "bad = [m for m in ('mujoco', 'playwright', 'warp', 'envgym.phone.engine') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
