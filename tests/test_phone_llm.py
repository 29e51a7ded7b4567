"""LLM readiness: the chat adapter loop (scripted client, no network) and ``envgym eval``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.cli import main
from envgym.phone.agents import ExplorerAgent, NoopAgent, make_agent
from envgym.phone.chat import (
    SYSTEM_PROMPT,
    ChatAdapter,
    ChatAgent,
    ScriptedChatClient,
    assistant_message,
    script_from_agent,
)
from envgym.phone.evaluate import evaluate, pass_hat_k, trial_seed


def oracle_script(env: Any) -> Any:
    """A scripted 'model' that answers with the env's oracle tool call."""
    return lambda messages, tools: json.loads(env.unwrapped.oracle_action())


def run_chat_loop(client: Any, env: Any, seed: int) -> tuple[ChatAdapter, dict[str, Any]]:
    """The loop of docs/llm_agents.md, verbatim apart from the client."""
    chat = ChatAdapter(env)
    messages, info = chat.reset(seed=seed)
    while not chat.done:
        response = client.chat.completions.create(
            model="any-model", messages=chat.messages, tools=chat.tools
        )
        new, reward, terminated, truncated, info = chat.step(response.choices[0].message)
    return chat, info


@pytest.mark.parametrize("scenario", ["isp_bill_discount", "ivr_charge_dispute"])
def test_chat_loop_with_scripted_oracle_client_succeeds(scenario: str) -> None:
    env = gym.make("envgym/Phone-v0", scenario=scenario)
    client = ScriptedChatClient(oracle_script(env))
    chat, info = run_chat_loop(client, env, seed=3)
    assert info["success"] is True
    msgs = chat.messages
    assert msgs[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert msgs[1]["role"] == "user" and "Numbers:" in msgs[1]["content"]
    # Every assistant tool call is answered by one tool message with its id, in order.
    for a, t in zip(msgs[2::2], msgs[3::2], strict=True):
        assert a["role"] == "assistant" and len(a["tool_calls"]) == 1
        assert t == {
            "role": "tool",
            "tool_call_id": a["tool_calls"][0]["id"],
            "content": t["content"],
        }
    json.dumps(msgs)
    # The model saw the tool schemas and, each turn, the whole conversation so far.
    assert client.requests[0]["tools"] == env.unwrapped.tool_schemas()
    assert [len(r["messages"]) for r in client.requests] == list(range(2, len(msgs), 2))
    assert "rep:" in "\n".join(m["content"] for m in msgs if m["role"] == "tool")


def test_chat_loop_matches_plain_env_and_reward_sums() -> None:
    env = gym.make("envgym/Phone-v0", scenario="isp_bill_discount")
    chat = ChatAdapter(env)
    chat.reset(seed=5)
    total, texts = 0.0, []
    while not chat.done:
        new, reward, *_ = chat.step(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": json.loads(env.unwrapped.oracle_action()),
                    }
                ],
            }
        )
        total += reward
        texts.append(new[-1]["content"])
    ref = gym.make("envgym/Phone-v0", scenario="isp_bill_discount")
    ref.reset(seed=5)
    ref_total, ref_texts, done = 0.0, [], False
    while not done:
        obs, r, term, trunc, _ = ref.step(ref.unwrapped.oracle_action())
        ref_total += r
        ref_texts.append(obs)
        done = term or trunc
    assert texts == ref_texts
    assert total == pytest.approx(ref_total) == pytest.approx(chat.episode_return)


def test_chat_step_shapes_free_text_several_calls_and_errors() -> None:
    env = gym.make("envgym/Phone-v0", scenario="mock")
    chat = ChatAdapter(env)
    chat.reset(seed=0)
    new, *_ = chat.step("dial 0")  # a bare string is free text, answered by a user message
    assert new[0] == {"role": "assistant", "content": "dial 0"}
    assert new[1]["role"] == "user" and new[1]["content"]
    # A reply with a bad call then a report: both answered; the error is shown to the model.
    new, _, term, _, info = chat.step(
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "a", "function": {"name": "fly", "arguments": "{}"}},
                {"id": "b", "function": {"name": "report", "arguments": {"summary": "x"}}},
                {"id": "c", "function": {"name": "wait", "arguments": "{}"}},
            ],
        }
    )
    assert [m.get("tool_call_id") for m in new] == [None, "a", "b", "c"]
    assert "action_error: not_understood" in new[1]["content"]
    assert new[3]["content"] == "not executed: the task is over."
    assert term and info["env_steps"] == 2 and chat.done
    with pytest.raises(RuntimeError, match="reset"):
        chat.step("wait")
    with pytest.raises(ValueError, match="text face"):
        ChatAdapter(gym.make("envgym/Phone-v0", obs_mode="tokens"))
    with pytest.raises(TypeError):
        assistant_message(42)


def test_chat_agent_with_message_only_script_equals_the_agent_itself() -> None:
    # The explorer driven through the chat protocol sees only the messages, and acts exactly
    # as when it reads the env's text observations directly.
    env_id = "envgym/Phone-Mock-v0"

    def chat_agent(seed: int) -> ChatAgent:
        return ChatAgent(ScriptedChatClient(script_from_agent(ExplorerAgent())), "m")

    via_chat = evaluate(env_id, chat_agent, trials=3, seed=1)
    direct = evaluate(env_id, "explorer", trials=3, seed=1)
    assert via_chat["scenarios"] == direct["scenarios"]
    assert direct["overall"]["success_rate"] == 1.0


def test_pass_hat_k_estimator() -> None:
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(5, 3, 2) == pytest.approx(3 / 10)  # C(3,2)/C(5,2)
    assert pass_hat_k(5, 3, 1) == pytest.approx(0.6)
    with pytest.raises(ValueError):
        pass_hat_k(3, 1, 4)


def test_trial_seeds_reproduce_and_differ() -> None:
    seeds = {trial_seed(0, task, trial) for task in range(5) for trial in range(5)}
    assert len(seeds) == 25
    assert trial_seed(7, 2, 3) == trial_seed(7, 2, 3) != trial_seed(8, 2, 3)


def test_eval_oracle_passes_every_k_random_and_noop_fail() -> None:
    oracle = evaluate("envgym/Phone-v0", "oracle", trials=3, env_kwargs={"scenario": "all"})
    assert len(oracle["scenarios"]) == 6
    assert all(r["pass_k"] == {"1": 1.0, "2": 1.0, "3": 1.0} for r in oracle["scenarios"])
    rand = evaluate("envgym/Phone-v0", "random", trials=1, env_kwargs={"scenario": "all"})
    assert rand["overall"]["success_rate"] == rand["overall"]["pass_k"]["1"] <= 1 / 6
    noop = evaluate("envgym/Phone-Mock-v0", "noop", trials=2)
    assert noop["overall"]["success_rate"] == 0.0


def test_eval_same_seed_same_report_and_estimator_with_more_trials() -> None:
    a = evaluate("envgym/Phone-Mock-v0", "random", trials=3, ks=[2], seed=3)
    b = evaluate("envgym/Phone-Mock-v0", "random", trials=3, ks=[2], seed=3)
    assert a == b
    c = evaluate("envgym/Phone-Mock-v0", "random", trials=3, ks=[2], seed=4)
    assert c["scenarios"][0]["seeds"] != a["scenarios"][0]["seeds"]
    # Mixed outcomes: a policy that succeeds on some seeds only.
    flaky = evaluate(
        "envgym/Phone-Mock-v0",
        lambda s: make_agent("oracle") if s % 2 else NoopAgent(),
        trials=6,
        ks=[1, 3],
    )
    row = flaky["scenarios"][0]
    n, c_ok = 6, row["successes"]
    assert row["success"].count(True) == c_ok == sum(s % 2 for s in row["seeds"])
    assert row["pass_k"]["3"] == pytest.approx(pass_hat_k(n, c_ok, 3))
    with pytest.raises(ValueError, match="k must be"):
        evaluate("envgym/Phone-v0", "noop", trials=2, ks=[3])


def make_noop_agent() -> NoopAgent:
    """A user policy for the ``module:callable`` test."""
    return NoopAgent()


def always_wait(obs: str, info: dict[str, Any]) -> str:
    return "wait"


def make_wait_function() -> Any:
    return always_wait


def test_cli_eval_json_and_user_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    args = ["eval", "envgym/Phone-Mock-v0", "--policy", "oracle", "--trials", "2"]
    assert main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["scenarios"][0]["pass_k"] == {"1": 1.0, "2": 1.0}
    assert report["command"].startswith("envgym eval")
    assert "pass^2" in capsys.readouterr().out
    for spec in ("tests.test_phone_llm:make_noop_agent", "tests.test_phone_llm:make_wait_function"):
        assert main(["eval", "envgym/Phone-Mock-v0", "--policy", spec, "--trials", "1"]) == 0
        assert "mock                           0.00" in capsys.readouterr().out
    assert main(["eval", "envgym/Phone-Mock-v0", "--policy", "nope"]) == 1
    assert "unknown policy" in capsys.readouterr().err
    assert main(["eval", "envgym/Phone-Mock-v0", "--policy", "no_such_mod:f"]) == 1


def _python_blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]


DOCS = Path(__file__).parent.parent / "docs"


def test_docs_chat_loop_runs_offline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    loop = _python_blocks(DOCS / "llm_agents.md")[0]
    assert "client.chat.completions.create(" in loop
    scope: dict[str, Any] = {}
    exec(compile(loop, "llm_agents.md", "exec"), scope)
    assert scope["info"]["success"] is True
    assert "success: True" in capsys.readouterr().out


def test_docs_notebook_chat_agent_runs_a_sequence() -> None:
    from envgym.phone.continual import CompanySequence, run_sequence

    block = next(b for b in _python_blocks(DOCS / "llm_agents.md") if "NotebookChatAgent" in b)
    scope: dict[str, Any] = {}
    exec(compile(block, "llm_agents.md", "exec"), scope)
    explorer = script_from_agent(ExplorerAgent())

    def script(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        if messages[-1]["content"].startswith("The call is over"):
            return f"note {sum(m['role'] == 'tool' for m in messages)}"
        return explorer(messages, tools)

    client = ScriptedChatClient(script)
    agent = scope["NotebookChatAgent"](client, "scripted")
    seq = CompanySequence(2, length=2, difficulty=1)
    report = run_sequence(agent, seq, seed=0)
    assert len(report["success"]) == 2
    assert agent.notes.count("- note ") == 2  # one note per call, carried into the next prompt
    assert client.requests[-1]["messages"][-1]["content"].startswith("The call is over")
    # The second episode's system prompt carried the first note.
    second = [r for r in client.requests if len(r["messages"]) == 2][1]
    assert "Your notes from earlier calls:\n- note " in second["messages"][0]["content"]


def test_reset_can_pin_the_scenario() -> None:
    env = gym.make("envgym/Phone-v0", scenario="all")
    names = [sc.name for sc in env.unwrapped.compiled.scenarios]
    for j in (0, 3, 5):
        obs, info = env.reset(seed=11, options={"scenario_index": j})
        assert info["scenario"] == names[j] and env.unwrapped.scenario_index == j
        again, _ = env.reset(seed=11, options={"scenario_index": j})
        assert again == obs
    for bad in (len(names), -1, "0", True):
        with pytest.raises(ValueError, match="scenario_index"):
            env.reset(seed=0, options={"scenario_index": bad})
