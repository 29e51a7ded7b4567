"""``envgym play``: the phone family's terminal UIs, turn-based and real-time.

:func:`play` is the hook the CLI calls; it reads actions from ``stdin`` (echoed when it is not a
terminal, so piped sessions read like transcripts) and prints what the assistant hears.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import gymnasium as gym
import torch

from envgym.phone.actions import ActionParser
from envgym.phone.engine import PhoneActions
from envgym.phone.realtime import (
    CH_BACKCHANNEL,
    CH_MUSIC,
    CH_OTHER,
    RT_BARGE_IN,
    RT_FIRST_PREPARE,
    RT_SILENT,
    RT_SPEAK,
)
from envgym.phone.text import tokenize

REALTIME_PLAY_HELP = """Real-time call: each Enter advances one tick (200 ms of call time).
  <text>      say this (free text or a JSON tool call, as in turn-based play): you think
              for a few ticks, then it is spoken chunk by chunk as the line is free
  !<text>     the same, but barge in: speak even while the other side talks
  (empty)     one tick: go on thinking / speaking, or stay silent and listen
  +N          N ticks the same way (stops at the end of the episode)
  hint        the oracle's action for this tick (takes no tick)
  help, quit"""


def play(
    env_id: str,
    *,
    scenario: str | None = None,
    difficulty: int | None = None,
    seed: int | None = None,
    realtime: bool = False,
    stdin: TextIO | None = None,
) -> int:
    """Play ``env_id`` as the assistant in the terminal; returns the exit code (0)."""
    kwargs: dict[str, Any] = {}
    if scenario is not None:
        kwargs["scenario"] = scenario
    if difficulty is not None:
        kwargs["difficulty"] = difficulty
    stdin = sys.stdin if stdin is None else stdin
    if realtime:
        return RealtimePlay(env_id, kwargs, seed).run(stdin)
    return play_turns(env_id, kwargs, seed, stdin)


def tool_help(schemas: list[dict[str, Any]]) -> str:
    """The tools and the free-text forms the text face accepts, for ``help``."""
    lines = ['Tools (send as JSON: {"name": ..., "arguments": {...}}):']
    for s in schemas:
        fn = s.get("function", s)
        props = fn.get("parameters", {}).get("properties", {})
        parts = []
        for name, spec in props.items():
            desc = f"{name}: {spec.get('type', 'any')}"
            if "enum" in spec:
                desc += " in {" + ", ".join(map(str, spec["enum"])) + "}"
            parts.append(desc)
        lines.append(f"  {fn['name']}({', '.join(parts)})  {fn.get('description', '')}")
    lines += [
        "Free text also works, e.g.:",
        "  dial 800-555-0100   (or: dial 0, the directory index)",
        "  press 1             wait               hang up",
        "  request <service>   ask about <service>",
        "  my <fact> is <value>   (or: provide <fact> <value>)",
        "  ask user <fact>     yes                no",
        "  report              (ends the task)",
        '  {"name": "press", "arguments": {"key": "2"}}',
        "Commands: help (this), hint (the oracle's suggestion, takes no step), quit.",
    ]
    return "\n".join(lines)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines()) if text else prefix + "(silence)"


def _read_command(stdin: TextIO, echo: bool) -> str | None:
    """The next input line, stripped (echoed when piped); ``None`` at end of input."""
    print("> ", end="", flush=True)
    line = stdin.readline()
    if not line:
        print()
        print("(end of input)")
        return None
    text = line.strip()
    if echo:
        print(text)
    return text


def _step_status(reward: float, info: dict[str, Any]) -> str:
    """``[reward ..., its nonzero terms, action_error, success]`` after a turn."""
    terms = {k: round(v, 4) for k, v in info["reward_terms"].items() if v != 0}
    status = f"  [reward {reward:+.3f}"
    if terms:
        status += "  " + ", ".join(f"{k} {v:+g}" for k, v in terms.items())
    if info.get("action_error"):
        status += f"  action_error: {info['action_error']}"
    return status + f"  success: {info['success']}]"


def play_turns(env_id: str, kwargs: dict[str, Any], seed: int | None, stdin: TextIO) -> int:
    """The turn-based UI: one action per line on the text face."""
    env = gym.make(env_id, obs_mode="text", **kwargs)
    try:
        base = env.unwrapped
        obs, info = env.reset(seed=seed)
        sc = base.compiled.scenarios[base.scenario_index]
        print(f"== {env_id}  scenario: {sc.name}: {sc.title}")
        print("You are the assistant. Type an action, or 'help', 'hint', 'quit'.")
        print(_indent(obs))
        echo = not stdin.isatty()
        ret, turns = 0.0, 0
        while (text := _read_command(stdin, echo)) is not None:
            cmd = text.lower()
            if not text:
                continue
            if cmd in ("quit", "exit", "q"):
                break
            if cmd in ("help", "?"):
                print(tool_help(base.tool_schemas()))
                continue
            if cmd == "hint":
                print(f"hint: {base.oracle_action()}")
                continue
            obs, reward, term, trunc, info = env.step(text)
            turns += 1
            ret += reward
            print(_indent(obs))
            print(_step_status(reward, info))
            if term or trunc:
                how = "terminated" if term else "truncated (turn limit)"
                print(
                    f"== episode {how} after {turns} turns: return {ret:+.3f}, "
                    f"success: {info['success']}"
                )
                return 0
        print(f"== stopped after {turns} turns: return so far {ret:+.3f}")
        return 0
    finally:
        env.close()


class RealtimePlay:
    """The real-time UI: each Enter advances one 200 ms tick of the real-time vector env at
    B=1; a typed line becomes the utterance being prepared and then spoken."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], seed: int | None) -> None:
        self.env_id = env_id
        self.envs = gym.make_vec(
            env_id, num_envs=1, vectorization_mode="vector_entry_point", realtime=True, **kwargs
        )
        self.env = self.envs.unwrapped
        self.parser = ActionParser(self.env.compiled, self.env.engine.garbled_action)
        self.obs, _ = self.envs.reset(seed=seed)
        self.k = int(self.env.state["scenario"][0])
        # What the player asked to say (a catalogue action, its stated value's id), until said.
        self.plan: dict[str, Any] = {"action": 0, "barge": False, "said": None}
        self.ret, self.ticks = 0.0, 0

    def run(self, stdin: TextIO) -> int:
        """Read commands until the episode ends, ``quit`` or end of input."""
        try:
            sc = self.env.compiled.scenarios[self.k]
            print(f"== {self.env_id} (real time)  scenario: {sc.name}: {sc.title}")
            print(REALTIME_PLAY_HELP)
            self.show(self.obs, "")
            echo = not stdin.isatty()
            while (text := _read_command(stdin, echo)) is not None:
                n = self.command(text)
                if n is None:
                    break
                for _ in range(n):
                    if self.tick():
                        return 0
            print(f"== stopped after {self.ticks} ticks: return so far {self.ret:+.3f}")
            return 0
        finally:
            self.envs.close()

    def command(self, text: str) -> int | None:
        """Handle one input line: the number of ticks to advance, ``None`` to quit."""
        env, cmd = self.env, text.lower()
        if cmd in ("quit", "exit", "q"):
            return None
        if cmd in ("help", "?"):
            print(REALTIME_PLAY_HELP)
            return 0
        if cmd == "hint":
            print(f"hint: {env.action_names[int(env.oracle_action()[0])]}")
            return 0
        if cmd.startswith("+") and cmd[1:].isdigit():
            return int(cmd[1:])
        if text:
            barge = text.startswith("!")
            parsed = self.parser.parse(text.lstrip("!").strip(), self.k)
            if parsed.action >= len(env.compiled.catalogue):
                print(f"  (not understood: {parsed.error}; nothing said)")
                return 0
            said = None if parsed.value is None else env.engine.value_id(parsed.value)
            self.plan.update(action=parsed.action, barge=barge, said=said)
        return 1

    def show(self, o: dict[str, torch.Tensor], said: str) -> None:
        """Print what was heard this tick (and what the assistant said)."""
        env = self.env
        t = int(o["tick"][0]) * env.tick_s
        tok, ch = o["heard"][0], o["heard_from"][0]
        words = env.decode(tok)
        if bool((ch == CH_MUSIC).any()):
            words = "(hold music)"
        elif bool((ch == CH_BACKCHANNEL).any()):
            words = "mm-hm"
        who = "them" if bool((ch == CH_OTHER).any()) else "line"
        if words:
            print(f"  {t:6.1f}s  {who}: {words}")
        if said:
            print(f"  {t:6.1f}s  you:  {said}")

    def _tick_action(self) -> tuple[int, str]:
        """This tick's action from the plan (think, then speak chunk by chunk) and its text."""
        env, cat = self.env, int(self.plan["action"])
        if cat <= 0:
            return RT_SILENT, ""
        st = env.state
        if int(st["rt_prep"][0]) != cat or int(st["rt_thought"][0]) < env.think_ticks:
            return cat - 1 + RT_FIRST_PREPARE, "(thinking)"
        a = RT_BARGE_IN if self.plan["barge"] else RT_SPEAK
        said = env.utterances[self.k][cat]
        if int(env.utterance_ticks[self.k, cat]) > 1:  # spoken chunk by chunk
            words = tokenize(said)
            i = int(st["rt_said"][0]) * env.C
            said = " ".join(words[i : i + env.C])
        return a, said

    def tick(self) -> bool:
        """Advance one tick; True when the episode ended (its summary printed)."""
        env = self.env
        a, said = self._tick_action()
        said_before = int(env.state["rt_said"][0])
        act, said_id = torch.tensor([a]), self.plan["said"]
        # The stated value goes with the prepare ticks; the engine checks it when it is said.
        step_in = act if said_id is None else PhoneActions(act, torch.tensor([said_id]))
        self.obs, r, term, trunc, info = self.envs.step(step_in)
        obs = self.obs
        finished = a in (RT_SPEAK, RT_BARGE_IN) and int(obs["prepared"][0]) == 0
        if a == RT_SPEAK and not finished and int(obs["progress"][0, 1]) == said_before:
            said = ""  # the line was busy: the chunk waits
        if finished:
            self.plan.update(action=0, said=None)  # said in full
        self.ticks += 1
        self.ret += float(r[0])
        ended = bool(term[0] or trunc[0])
        self.show(info["final_obs"] if ended else obs, said)
        err = env.action_error_names[int(info["action_error"][0])]
        if err:
            print(f"  [action_error: {err}]")
        if ended:
            how = "terminated" if bool(term[0]) else "truncated (time limit)"
            m = {key: round(float(v[0]), 2) for key, v in info["interaction"].items()}
            print(
                f"== episode {how} after {self.ticks} ticks: return {self.ret:+.3f}, "
                f"success: {bool(info['success'][0])}"
            )
            print(f"== interaction: {m}")
        return ended
