"""Bad input on the phone family, the vector base and the scenario DSL (issue 13).

Each example the outside fuzzer found is a regression test here; the fuzz properties live in
``tests/test_fuzz_phone.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envgym  # noqa: F401  (registers the ids)
from envgym.core.errors import InvalidActionError, InvalidResetError, InvalidStateError
from envgym.dsl import ScenarioError
from envgym.phone.compiler import compile_scenarios, plan_scenario
from envgym.phone.models import PhoneScenario
from envgym.phone.scenarios import load_scenario_file, scenario_dir
from tests.helpers import make_vec

BAD_TEXT = [
    "dial ²",
    "dial ٣",
    "press ²",
    '{"tool_calls": [5]}',
    '{"tool_calls": ["wait"]}',
    '{"tool_calls": [{"function": 3}]}',
    '{"name": "dial", "arguments": "' + "[" * 40 + "]" * 40 + '"}',
    '{"name": "provide", "arguments": {"fact": "zip", "value": {"a": [1]}}}',
    "[" * 1500 + "]" * 1500,
    "{" + '"a":[' * 1900,
    "my" + " " * 5000 + "x",
    "my" + " " * 1200 + "x",
    "my " + "is " * 1300,
    "x" * 100_000,
    "\ud800",
    b"dial 0",
    None,
    3.5,
    [1, 2],
]


@pytest.mark.parametrize("face", ["turn", "realtime"])
def test_malformed_text_actions_are_not_understood_in_band(face: str) -> None:
    rt = {"realtime": True, "obs_mode": "text"} if face == "realtime" else {}
    env = gym.make("envgym/Phone-v0", scenario="mock", **rt)
    env.reset(seed=0)
    for action in BAD_TEXT:
        t0 = time.perf_counter()
        _obs, _r, term, trunc, info = env.step(action)
        assert time.perf_counter() - t0 < 3.0, f"{action!r:.40} took too long"
        assert info["action_error"].startswith("not_understood"), (action, info["action_error"])
        if term or trunc:
            env.reset(seed=0)
    # ...and the env still works: a well-formed action is carried out.
    _obs, _r, _t, _tr, info = env.step("dial 0")
    assert not info["action_error"].startswith("not_understood")


def test_the_rep_answers_not_understood_with_the_invalid_action_penalty() -> None:
    env = gym.make("envgym/Phone-v0", scenario="mock")
    env.reset(seed=0)
    env.step("dial 0")
    _o, r, _t, _tr, info = env.step('{"tool_calls": [5]}')
    assert info["action_name"] == "garbled"
    assert info["reward_terms"]["invalid_action"] < 0


def test_vector_reset_rejects_bad_masks_and_seeds_without_changing_worlds() -> None:
    envs = make_vec(64, scenario="all")
    envs.reset(seed=0)
    before = envs.get_state()
    for kwargs in (
        {"options": {"reset_mask": [True] * 3}},
        {"options": {"reset_mask": np.ones(64, dtype=np.int64)}},
        {"options": {"reset_mask": torch.ones(8, 8, dtype=torch.bool)}},
        {"options": {"reset_mask": "yes"}},
        {"seed": 2**70},
        {"seed": -1},
        {"seed": 2**64 - 10},
        {"seed": [1] * 3},
        {"seed": [2**64] * 64},
        {"seed": "7"},
        {"seed": 1.5},
    ):
        with pytest.raises(InvalidResetError):
            envs.reset(**kwargs)
        after = envs.get_state()
        assert all(torch.equal(before[k], after[k]) for k in before), kwargs
    envs.reset(seed=2**64 - 64)  # the top of the documented range works (unsigned 64-bit)
    envs.step(envs.oracle_action())


@pytest.mark.parametrize(
    "actions",
    [
        np.zeros((8, 8), dtype=np.int64),
        np.zeros(64, dtype=np.complex64),
        np.zeros(64, dtype=bool),
        np.zeros(64, dtype=np.float32),
        torch.zeros(64, dtype=torch.complex64),
        np.zeros(63, dtype=np.int64),
        np.full(64, 2**64 - 1, dtype=np.uint64),
        ["dial"] * 64,
        [[1], [2, 3]],
        np.array(5),
    ],
    ids=lambda a: f"{type(a).__name__}-{getattr(a, 'dtype', '')}-{getattr(a, 'shape', '')}",
)
def test_vector_step_rejects_bad_action_tensors_with_one_error_type(actions: object) -> None:
    envs = make_vec(64, scenario="all")
    envs.reset(seed=0)
    before = envs.get_state()
    with pytest.raises(InvalidActionError):
        envs.step(actions)
    after = envs.get_state()
    assert all(torch.equal(before[k], after[k]) for k in before)
    envs.step(np.zeros((64, 1), dtype=np.int32))  # [B, 1] integers are accepted


def test_single_token_face_raises_the_same_error_type() -> None:
    env = gym.make("envgym/Phone-v0", scenario="mock", obs_mode="tokens")
    env.reset(seed=0)
    for bad in (np.zeros(2, dtype=np.int64), 1.0, True, 1 + 2j, 10**6):
        with pytest.raises(InvalidActionError):
            env.step(bad)
    env.step(0)


def test_set_state_is_atomic() -> None:
    envs = make_vec(64, scenario="all")
    envs.reset(seed=0)
    for _ in range(3):
        envs.step(envs.oracle_action())
    before = envs.get_state()
    keys = list(before)
    bad_cases = []
    # One malformed field *after* valid ones: nothing may be written.
    for mutate in (
        lambda t: t.float() if not t.is_floating_point() else t.to(torch.int64),
        lambda t: t[:-1],
        lambda t: t.numpy(),
    ):
        snap = {k: v.clone() + (1 if v.dtype == torch.int64 else 0) for k, v in before.items()}
        snap[keys[-1]] = mutate(snap[keys[-1]])
        bad_cases.append((snap, None))
    missing = dict(before)
    missing.pop(keys[0])
    bad_cases.append((missing, None))
    bad_cases.append(({**before, "extra": before[keys[0]]}, None))
    part = envs.get_state(worlds=[0, 1])
    for worlds in ([0, 64], [-1, 0], [0, 0], [0.5, 1], [[0, 1]]):
        bad_cases.append((part, worlds))
    bad_cases.append(("state", None))
    for snap, worlds in bad_cases:
        with pytest.raises(InvalidStateError):
            envs.set_state(snap, worlds)
        after = envs.get_state()
        assert all(torch.equal(before[k], after[k]) for k in before)
    envs.set_state(part, [5, 6])
    assert torch.equal(envs.get_state(worlds=[5])["phase"], part["phase"][:1])
    envs.step(envs.oracle_action())


# --------------------------------------------------------------------------- scenario DSL
def _shipped(name: str = "ivr_charge_dispute") -> dict:
    return yaml.safe_load((scenario_dir() / f"{name}.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: object, name: str = "ivr_charge_dispute") -> Path:
    p = tmp_path / f"{name}.yaml"
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return p


def _problems(path: Path) -> str:
    with pytest.raises(ScenarioError) as e:
        load_scenario_file(path)
    assert str(path) in str(e.value)
    return str(e.value)


@pytest.mark.parametrize(
    "template",
    [
        "{company.__class__.__mro__}",
        "{company[0]}",
        "{x!z}",
        "{company!r}",
        "Hello {",
        "Hello }",
        "Hi {company:.>20000000}",
        "{}",
        "{0}",
    ],
)
def test_templates_only_substitute_named_placeholders(tmp_path: Path, template: str) -> None:
    d = _shipped()
    d["phrasing"] = {"greeting": [template]}
    msg = _problems(_write(tmp_path, d))
    assert "phrasing.greeting[0]" in msg


def test_literal_braces_and_placeholders_still_fill(tmp_path: Path) -> None:
    d = _shipped()
    d["phrasing"] = {"greeting": ["{{{company}}} {rep} here."]}
    sc = load_scenario_file(_write(tmp_path, d))
    texts = [v for vs in compile_scenarios([sc]).book.texts for v in vs]
    assert any(t.startswith("{" + sc.company.name + "} ") for t in texts)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["policies"]["services"][0].__setitem__("fee", 10**30), "fee"),
        (lambda d: d["goal"].__setitem__("max_fees", 10**30), "goal.max_fees"),
        (lambda d: d["rewards"].__setitem__("goal", float("nan")), "rewards.goal"),
        (lambda d: d["rewards"].__setitem__("turn_cost", float("inf")), "rewards.turn_cost"),
        (lambda d: d.__setitem__("title", "x" * 5000), "title"),
        (lambda d: d.__setitem__("title", "bad \ud800 title"), "title"),
        (lambda d: d.__setitem__("tags", ["t"] * 500), "tags"),
    ],
)
def test_out_of_bounds_values_name_the_field(tmp_path: Path, edit: object, field: str) -> None:
    d = _shipped()
    d.setdefault("rewards", {})
    edit(d)  # type: ignore[operator]
    text = yaml.safe_dump(d, allow_unicode=False)
    msg = _problems(_write(tmp_path, text))
    assert field in msg


def test_duplicate_keys_are_rejected_with_the_key_named(tmp_path: Path) -> None:
    text = (scenario_dir() / "ivr_charge_dispute.yaml").read_text(encoding="utf-8")
    msg = _problems(_write(tmp_path, text + "\ntitle: again\n"))
    assert "duplicate key 'title'" in msg


@pytest.mark.parametrize(
    "raw",
    [
        b"name: ivr_charge_dispute\ntitle: \xff\xfe\n",
        ("a: " + "[" * 20_000 + "]" * 20_000).encode(),
        ("a:\n" + "- " * 20_000 + "x\n").encode(),
        b'title: "\\ud800"\n',
        b"a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b]\n",
    ],
    ids=["utf8", "flow-depth", "block-depth", "surrogate", "aliases"],
)
def test_unreadable_documents_are_dsl_errors(tmp_path: Path, raw: bytes) -> None:
    _problems(_write(tmp_path, raw))


def test_validate_prints_a_verdict_for_a_lone_surrogate(tmp_path: Path, capsys) -> None:
    from envgym.cli import main

    d = _shipped()
    d["title"] = "\ud800"
    path = _write(tmp_path, yaml.safe_dump(d, allow_unicode=False))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "title" in out and "1 failed" in out


def _big_ivr(nodes: int) -> dict:
    d = _shipped()
    dept = d["company"]["departments"][0]["id"]
    ivr = [
        {"id": f"n{i}", "prompt": f"Menu {i}.", "options": {"1": {"node": f"n{i + 1}"}}}
        for i in range(nodes - 1)
    ]
    ivr.append({"id": f"n{nodes - 1}", "prompt": "Last.", "options": {"1": {"department": dept}}})
    d["company"]["ivr"] = ivr
    d["company"]["numbers"][0]["routes_to"] = {"node": "n0"}
    return d


def test_ivr_compile_time_is_linear(tmp_path: Path) -> None:
    # Deterministic proxy of linear time: 4x the nodes may cost at most ~4x (+ slack).
    def compile_s(n: int) -> float:
        sc = PhoneScenario.model_validate(_big_ivr(n))
        t0 = time.perf_counter()
        compile_scenarios([sc])
        return time.perf_counter() - t0

    compile_s(200)
    small, big = compile_s(500), compile_s(2000)
    assert big < 8 * small + 0.5, (small, big)


def test_planner_with_the_most_services_is_fast() -> None:
    d = _shipped()
    svc = d["policies"]["services"][0]
    services = [{**svc, "id": f"s{i}", "fee": 10**6} for i in range(64)]
    d["policies"]["services"] = services
    sc = PhoneScenario.model_validate(d)
    t0 = time.perf_counter()
    assert plan_scenario(sc) is None  # every option over the fee budget: the full search
    assert time.perf_counter() - t0 < 10


def test_more_services_than_the_bound_are_rejected(tmp_path: Path) -> None:
    d = _shipped()
    svc = d["policies"]["services"][0]
    d["policies"]["services"] = [{**svc, "id": f"s{i}"} for i in range(600)]
    assert "policies.services" in _problems(_write(tmp_path, d))


def test_three_party_faces_use_the_same_action_rule() -> None:
    import envgym.phone as phone
    from envgym.phone.multiagent import PhoneParallelVectorEnv

    env = phone.parallel_env("mock")
    env.reset(seed=0)
    good = {a: 0 for a in env.agents}
    for bad in (1.7, True, 1 + 2j, [0, 1], "0", 10**6):
        with pytest.raises(InvalidActionError):
            env.step({**good, env.agents[0]: bad})
    with pytest.raises(InvalidActionError):
        env.step([0, 0, 0])
    env.step(good)
    vec = PhoneParallelVectorEnv(4, "mock", ("assistant", "rep"))
    vec.reset(seed=0)
    with pytest.raises(InvalidActionError):
        vec.step({"assistant": np.zeros(4, dtype=np.int64)})  # the rep's actions missing
    with pytest.raises(InvalidActionError):
        vec.step({"assistant": np.zeros((2, 2), dtype=np.int64), "rep": np.zeros(4, np.int64)})
    vec.step(vec.oracle_actions())


def test_chat_adapter_answers_malformed_replies_in_band() -> None:
    from envgym.phone.chat import ChatAdapter

    deep: object = "x"
    for _ in range(5000):
        deep = {"a": deep}
    chat = ChatAdapter(gym.make("envgym/Phone-v0", scenario="mock"))
    chat.reset(seed=0)
    for reply in (
        {"tool_calls": [5]},
        {"tool_calls": ["wait"]},
        {"tool_calls": [{"function": 3}]},
        {"tool_calls": 7},
        {"tool_calls": [{"function": {"name": "dial", "arguments": deep}}]},
        {"content": deep},
        "my" + " " * 5000 + "x",
    ):
        new, _r, term, trunc, _info = chat.step(reply)
        assert "not_understood" in new[-1]["content"], (str(reply)[:40], new[-1])
        if term or trunc:
            chat.reset(seed=0)
