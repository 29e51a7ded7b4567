"""Real-time (tick-based, full-duplex) phone calls: contracts, oracle, timing behaviour."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.core import keys
from envgym.phone.realtime import (
    CH_BACKCHANNEL,
    CH_MUSIC,
    CH_OTHER,
    RT_BARGE_IN,
    RT_FIRST_PREPARE,
    RT_SILENT,
    RT_SPEAK,
)
from envgym.phone.scenarios import load_scenario, shipped_names
from envgym.testing import check_single_env, check_vector_env

ID = "envgym/Phone-v0"


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Any:
    """These batches are tiny: one thread is much faster than many on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_rt(num_envs: int, scenario: Any = "mock", **kwargs: Any) -> Any:
    return gym.make_vec(
        ID, num_envs=num_envs, vectorization_mode="vector_entry_point", realtime=True,
        scenario=scenario, **kwargs,
    )  # fmt: skip


def mock_with(**realtime: Any) -> Any:
    """The mock scenario with some ``realtime:`` fields changed."""
    sc = load_scenario("mock")
    return sc.model_copy(update={"realtime": sc.realtime.model_copy(update=realtime)})


def run_episode(
    envs: Any, policy: Any, seed: int = 0, limit: int = 3000, reset: bool = True
) -> dict[str, Any]:
    """Step until every world ended once; per world: success, return, interaction metrics."""
    B = envs.num_envs
    if reset:
        envs.reset(seed=seed)
    done = torch.zeros(B, dtype=torch.bool)
    succ = torch.zeros(B, dtype=torch.bool)
    ret = torch.zeros(B)
    metrics: dict[str, torch.Tensor] = {}
    for _ in range(limit):
        _, _, term, trunc, info = envs.step(policy(envs))
        end = (term | trunc) & ~done
        succ |= end & info["success"]
        ret = torch.where(end, info[keys.EPISODE]["r"], ret)
        for k, v in info["interaction"].items():
            metrics[k] = torch.where(end, v.to(metrics.get(k, v).dtype), metrics.get(k, v * 0))
        assert info["_interaction"].equal(term | trunc)
        done |= end
        if bool(done.all()):
            break
    assert bool(done.all()), "episodes did not end"
    return {"success": succ, "return": ret, **metrics}


def oracle(envs: Any) -> torch.Tensor:
    return envs.unwrapped.oracle_action()


def think_after_silence(envs: Any) -> torch.Tensor:
    return envs.unwrapped.oracle_action(prepare_while_listening=False)


# ------------------------------------------------------------------ contracts
# Two time limits, so worlds end (and auto-reset) on different ticks.
STAGGERED = [
    mock_with(max_seconds=2.6).model_copy(update={"name": "mock_short"}),
    mock_with(max_seconds=4.2).model_copy(update={"name": "mock_longer"}),
]


@pytest.mark.parametrize("scenario", [STAGGERED, "all"], ids=["mock-staggered", "all"])
def test_realtime_vector_env_conformance(scenario: Any) -> None:
    envs = make_rt(4, scenario)
    check_vector_env(
        envs,
        single_env_fn=lambda: gym.make(ID, realtime=True, scenario=scenario),
        steps=60,
    )


def test_realtime_single_env_conformance() -> None:
    env = gym.make(ID, realtime=True, scenario=mock_with(max_seconds=3.0))
    assert env.unwrapped.oracle_action() in range(env.action_space.n)
    check_single_env(env, steps=40)
    # The target is the heard part of the true next observation, also on the last tick.
    env.reset(seed=0)
    ends = 0
    for _ in range(40):
        obs, _, term, trunc, info = env.step(env.unwrapped.oracle_action())
        assert (info["next_obs_target"] == obs["heard"]).all()
        if term or trunc:
            ends += 1
            assert "interaction" in info
            fresh, _ = env.reset()
            assert int(fresh["tick"][0]) == 0
    assert ends >= 2


def test_targets_at_episode_ends_are_the_true_last_observation() -> None:
    envs = make_rt(6, "mock")
    envs.reset(seed=1)
    ends = 0
    for _ in range(200):
        obs, _, term, trunc, info = envs.step(oracle(envs))
        done = term | trunc
        tgt = info["next_obs_target"]
        assert torch.equal(tgt, info["final_obs"]["heard"])
        if done.any():
            ends += int(done.sum())
            # The final tick carries the start of the report confirmation, not the next intro.
            assert envs.unwrapped.decode(tgt[done][0]) == "system :"
            assert not torch.equal(obs["heard"][done], tgt[done])
            assert bool((obs["tick"][done] == 0).all())
    assert ends >= 6


# ------------------------------------------------------------------ oracle and baselines
def test_oracle_succeeds_everywhere_and_preparing_while_listening_answers_sooner() -> None:
    """Every shipped scenario, 2 seeds, two policies in one batch: the oracle (thinks while
    it listens) and the same oracle that waits for silence before it starts thinking."""
    names = shipped_names()
    K, seeds = len(names), 2
    envs = make_rt(2 * K * seeds, names)
    B = envs.num_envs
    lazy_worlds = torch.arange(B) >= B // 2
    envs.reset(seed=0)
    envs.unwrapped.pin_scenarios(torch.arange(B) % K)

    def mixed(e: Any) -> torch.Tensor:
        return torch.where(lazy_worlds, think_after_silence(e), oracle(e))

    res = run_episode(envs, mixed, reset=False)
    sc = torch.arange(B) % K
    assert bool(res["success"].all()), f"failed: {[names[k] for k in sc[~res['success']]]}"
    eager, lazy = ~lazy_worlds, lazy_worlds
    assert bool((res["interruptions"][eager] == 0).all())
    assert bool((res["overlap_s"][eager] == 0).all())
    assert bool((res["responses"] > 0).all())
    for k, name in enumerate(names):
        e, z = eager & (sc == k), lazy & (sc == k)
        # Same calls, the env's own metric: thinking only once it is quiet answers later.
        lat_e = float(res["mean_response_latency_s"][e].mean())
        lat_z = float(res["mean_response_latency_s"][z].mean())
        assert lat_e < lat_z, f"{name}: {lat_e} !< {lat_z}"
        assert lat_z >= 0.2 * 3 - 1e-6  # think_ticks ticks of 200 ms
        assert float(res["return"][e].mean()) > float(res["return"][z].mean()), name


def test_oracle_succeeds_on_a_heterogeneous_and_a_generated_batch() -> None:
    assert bool(run_episode(make_rt(12, "all"), oracle)["success"].all())
    gen = make_rt(8, "generated", difficulty=4, num_generated=4)
    assert bool(run_episode(gen, oracle)["success"].all())


def test_do_nothing_and_random_do_not_succeed() -> None:
    envs = make_rt(16, "mock")
    silent = run_episode(envs, lambda e: torch.full((e.num_envs,), RT_SILENT))
    assert not bool(silent["success"].any())
    assert bool((silent["call_s"] >= 12 * 10.0 - 1e-3).all())  # truncated at the time limit
    gen = torch.Generator().manual_seed(0)
    n = envs.single_action_space.n
    rnd = run_episode(envs, lambda e: torch.randint(0, n, (e.num_envs,), generator=gen))
    assert not bool(rnd["success"].any())


# ------------------------------------------------------------------ timing behaviour
def _say(envs: Any, action_name: str, barge: bool = False, max_ticks: int = 60) -> list[Any]:
    """Prepare one catalogue action for world 0 and say it; the ticks' (obs, info)."""
    u = envs.unwrapped
    prep = u.action_names.index(f"prepare:{action_name}")
    out = []
    for _ in range(u.think_ticks):
        out.append(envs.step(torch.tensor([prep])))
    for _ in range(max_ticks):
        obs, r, te, tr, info = envs.step(torch.tensor([RT_BARGE_IN if barge else RT_SPEAK]))
        out.append((obs, r, te, tr, info))
        if int(obs["prepared"][0]) == 0:
            break
    return out


def _until_rep_talks(envs: Any) -> None:
    for _ in range(200):
        obs, *_ = envs.step(torch.tensor([RT_SILENT]))
        if bool((obs["heard_from"][0] == CH_OTHER).any()):
            return
    raise AssertionError("the rep never talked")


def _dial_and_hear_greeting_start(envs: Any) -> None:
    envs.reset(seed=0)
    _say(envs, "dial:0")
    _until_rep_talks(envs)


def test_barge_in_rep_yields_and_understands() -> None:
    envs = make_rt(1, mock_with(on_interrupt="yield"))
    _dial_and_hear_greeting_start(envs)
    turn0 = int(envs.unwrapped.state["turn"][0])
    ticks = _say(envs, "request:reset_password", barge=True)
    info = ticks[-1][4]
    assert info["interaction"]["interruptions"][0] == 1
    assert float(info["interaction"]["overlap_s"][0]) > 0
    assert any(float(t[4]["reward_terms"]["talk_over"][0]) < 0 for t in ticks)
    # The rep stopped: nothing more of the greeting, and the request went through.
    assert int(envs.unwrapped.state["turn"][0]) == turn0 + 1
    assert info["action_error"][0] == 0
    heard = envs.unwrapped.decode(torch.cat([t[0]["heard"][0] for t in ticks[-2:]]))
    assert "how" not in heard
    assert int(envs.unwrapped.state["service"][0]) >= 0  # the rep took the request


def test_barge_in_rep_talks_on_and_does_not_understand() -> None:
    envs = make_rt(1, mock_with(on_interrupt="talk_on"))
    _dial_and_hear_greeting_start(envs)
    ticks = _say(envs, "request:reset_password", barge=True)
    info = ticks[-1][4]
    assert info["interaction"]["interruptions"][0] == 1
    # Talked over: the utterance is lost ("sorry, I didn't catch that").
    assert envs.unwrapped.action_error_names[int(info["action_error"][0])] == "not_understood"
    assert int(envs.unwrapped.state["service"][0]) == -1
    # ... while speaking politely (speak waits for a free line) works.
    envs2 = make_rt(1, mock_with(on_interrupt="talk_on"))
    _dial_and_hear_greeting_start(envs2)
    ticks2 = _say(envs2, "request:reset_password")
    assert ticks2[-1][4]["interaction"]["interruptions"][0] == 0
    assert int(envs2.unwrapped.state["service"][0]) >= 0


def test_backchannel_is_not_a_turn() -> None:
    envs = make_rt(1, mock_with(backchannel=True))
    envs.reset(seed=0)
    _say(envs, "dial:0")
    for _ in range(100):  # let the greeting finish
        obs, *_ = envs.step(torch.tensor([RT_SILENT]))
        if int(envs.unwrapped.state["rt_pos"][0]) >= int(envs.unwrapped.state["rt_len"][0]):
            break
    turn0 = int(envs.unwrapped.state["turn"][0])
    ticks = _say(envs, "request:reset_password")
    chans = [int(c) for t in ticks for c in t[0]["heard_from"][0]]
    bc_tick = next(i for i, t in enumerate(ticks) if CH_BACKCHANNEL in t[0]["heard_from"][0])
    assert CH_BACKCHANNEL in chans
    # The mm-hm neither ended the utterance nor took a turn; the request was answered once.
    assert int(ticks[bc_tick][0]["prepared"][0]) != 0
    assert int(envs.unwrapped.state["turn"][0]) == turn0 + 1
    assert int(ticks[-1][4]["interaction"]["responses"][0]) == 1
    no_bc = make_rt(1, mock_with(backchannel=False))
    no_bc.reset(seed=0)
    _say(no_bc, "dial:0")
    for _ in range(100):
        no_bc.step(torch.tensor([RT_SILENT]))
    chans = [int(c) for t in _say(no_bc, "request:reset_password") for c in t[0]["heard_from"][0]]
    assert CH_BACKCHANNEL not in chans


def test_hold_music_takes_time() -> None:
    envs = make_rt(1, "isp_bill_discount")
    u = envs.unwrapped
    envs.reset(seed=0)
    music = hold_turns = 0
    for _ in range(400):
        st = u.state
        on_hold = int(st["phase"][0]) == 2
        turn = int(st["turn"][0])
        obs, _, te, tr, _ = envs.step(u.oracle_action())
        music += int(on_hold and CH_MUSIC in obs["heard_from"][0])
        hold_turns += int(on_hold and int(u.state["turn"][0]) > turn)
        if int(obs["phase"][0]) == 3:
            break
    assert hold_turns >= 1
    # Each hold turn is hold_turn_s (2 s = 10 ticks) of call time, mostly music.
    assert music >= hold_turns * 8


def test_dead_air_costs_and_the_rep_checks_in() -> None:
    envs = make_rt(1, mock_with(patience_s=1.0))
    u = envs.unwrapped
    _dial_and_hear_greeting_start(envs)
    turn0 = int(u.state["turn"][0])
    dead = 0.0
    for _ in range(40):
        _, _, _, _, info = envs.step(torch.tensor([RT_SILENT]))
        dead += float(info["reward_terms"]["dead_air"][0])
        if int(u.state["turn"][0]) > turn0:
            break
    assert dead < 0
    assert int(u.state["turn"][0]) == turn0 + 1  # the engine's wait turn: "are you there?"
    assert float(info["interaction"]["dead_air_s"][0]) >= 1.0 - 1e-6
    heard = ""
    for _ in range(10):
        obs, *_ = envs.step(torch.tensor([RT_SILENT]))
        heard += " " + u.decode(obs["heard"][0])
    assert "there" in heard or "line" in heard


def test_speaking_with_nothing_prepared_is_an_action_error() -> None:
    envs = make_rt(2, "mock")
    envs.reset(seed=0)
    _, r, _, _, info = envs.step(torch.tensor([RT_SPEAK, RT_SILENT]))
    names = envs.unwrapped.action_error_names
    assert names[int(info["action_error"][0])] == "nothing_prepared"
    assert int(info["action_error"][1]) == 0
    assert float(info["reward_terms"]["invalid_action"][0]) < 0
    assert RT_FIRST_PREPARE == 3


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="obs_mode='tokens'"):
        make_rt(2, obs_mode="text")
    with pytest.raises(ValueError, match="obs_mode must be"):
        gym.make(ID, realtime=True, obs_mode="pixels")
    with pytest.raises(ValueError, match="tokens_per_tick"):
        make_rt(2, tokens_per_tick=0)
    with pytest.raises(ValueError, match="cuda_graph"):
        make_rt(2, cuda_graph=True)


def test_play_realtime_mock_to_success(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from envgym.cli import main

    lines = ["help", "hint", "dial 0", "+40", "request a password reset", "+60"]
    lines += ["!gibberish words", "my account number is 12345", "+30", "report", "+5"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    rc = main(["play", "envgym/Phone-v0", "--realtime", "--scenario", "mock", "--seed", "0"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "each Enter advances one tick" in out
    assert "hint: prepare:dial:0" in out
    assert "(thinking)" in out and "you:  (dials)" in out
    assert "them: rep :" in out and "mm-hm" in out
    assert "not understood" in out
    assert "you:  12345 ." in out
    assert "episode terminated" in out and "success: True" in out
    assert "mean_response_latency_s" in out.splitlines()[-1]


def test_play_passes_the_stated_value_to_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    """A value typed in the real-time UI is what the rep checks: a wrong one is a mismatch,
    the true one verifies (the assistant knows the mock's account number either way)."""
    from envgym.phone.play import RealtimePlay

    def mismatches_after(value: str) -> int:
        ui = RealtimePlay("envgym/Phone-v0", {"scenario": "mock"}, seed=0)
        for line, ticks in [("dial 0", 40), ("request a password reset", 60)]:
            assert ui.command(line) == 1
            for _ in range(ticks):
                assert not ui.tick()
        assert ui.command(f"my account number is {value}") == 1
        for _ in range(30):
            ui.tick()
        return int(ui.env.state["mismatches"][0])

    assert mismatches_after("99999") == 1
    assert mismatches_after("12345") == 0
    capsys.readouterr()


def test_bench_times_the_realtime_engine_in_the_same_run(tmp_path: Any) -> None:
    import json

    from envgym.cli import main

    out = tmp_path / "bench.json"
    args = ["bench", ID, "--scenario", "mock", "--num-envs", "4", "--steps", "3"]
    args += ["--warmup", "1", "--policy", "oracle", "--realtime", "--json", str(out)]
    assert main(args) == 0
    rows = json.loads(out.read_text())
    assert [r["env_kwargs"].get("realtime") for r in rows] == [None, "True"]
    assert all(r["env_steps_per_s"] > 0 and r["raw_steps_per_s"] > 0 for r in rows)
    assert main([*args[:-2], "--env-kwarg", "tokens_per_tick"]) == 2  # not KEY=VALUE


@pytest.mark.gpu
def test_realtime_cuda_matches_cpu_bit_for_bit() -> None:
    cpu, gpu = make_rt(32, "all"), make_rt(32, "all", device="cuda")
    cpu.reset(seed=4)
    gpu.reset(seed=4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(120):
        a = torch.randint(0, cpu.single_action_space.n, (32,), generator=gen)
        a = torch.where(torch.rand(32, generator=gen) < 0.8, oracle(cpu), a)
        rc, rg = cpu.step(a), gpu.step(a.cuda())
        assert rg[0]["heard"].device.type == "cuda"
        assert all(torch.equal(rc[0][k], rg[0][k].cpu()) for k in rc[0])
        for x, y in zip(rc[1:4], rg[1:4], strict=True):
            assert torch.equal(x, y.cpu())
        assert torch.equal(rc[4]["next_obs_target"], rg[4]["next_obs_target"].cpu())


# ------------------------------------------------------------------ text face
def test_text_face_conformance_and_oracle() -> None:
    check_single_env(gym.make(ID, realtime=True, obs_mode="text", scenario=STAGGERED), steps=40)
    env = gym.make(ID, realtime=True, obs_mode="text", scenario="mock")
    tokens = gym.make(ID, realtime=True, scenario="mock")
    obs, _ = env.reset(seed=2)
    tobs, _ = tokens.reset(seed=2)
    assert obs == env.unwrapped.vec.decode(tobs["heard"])
    for _ in range(300):
        act = env.unwrapped.oracle_action()
        assert isinstance(act, str)
        obs, _, term, trunc, info = env.step(act)
        tobs, _, *_ = tokens.step(tokens.unwrapped.oracle_action())
        # The text face is the tokens face, read out.
        assert obs == env.unwrapped.vec.decode(tobs["heard"])
        assert info["action_error"] == ""
        if term or trunc:
            break
    assert term and info["success"] and info["interaction"]["interruptions"] == 0


def test_text_face_checks_stated_values_and_reports_unparseable_text() -> None:
    env = gym.make(ID, realtime=True, obs_mode="text", scenario="mock")
    env.reset(seed=0)
    _, _, _, _, info = env.step("sing a song")
    assert info["action_error"].startswith("not_understood")
    assert info["reward_terms"]["invalid_action"] == 0  # nothing was said
    u = env.unwrapped
    for _ in range(300):  # the oracle up to the rep's question, then a wrong number
        if int(u.vec.state["pc"][0]) == 0 and int(u.vec.state["service"][0]) >= 0:
            break
        env.step(u.oracle_action())
    mismatches = int(u.vec.state["mismatches"][0])
    for text in ["prepare my account number is 99999"] * 3 + ["speak"] * 40:
        env.step(text)
        if int(u.vec.state["mismatches"][0]) > mismatches:
            break
    assert int(u.vec.state["mismatches"][0]) == mismatches + 1


def test_single_env_reset_can_pin_the_scenario() -> None:
    env = gym.make(ID, realtime=True, scenario="all")
    names = [sc.name for sc in env.unwrapped.compiled.scenarios]
    for j in (0, len(names) - 1):
        _, info = env.reset(seed=5, options={"scenario_index": j})
        assert info["scenario"] == names[j] and env.unwrapped.scenario_index == j
    with pytest.raises(ValueError, match="scenario"):
        env.reset(seed=5, options={"scenario_index": len(names)})
