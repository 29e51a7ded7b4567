"""The phone env as an OpenAI-style chat: messages in, tool calls out.

:class:`ChatAdapter` wraps the text face of a phone env (``gym.make("envgym/Phone-v0")``) so
that any OpenAI-compatible chat client drives it with a few lines::

    chat = ChatAdapter(gym.make("envgym/Phone-v0"))
    chat.reset(seed=0)
    while not chat.done:
        resp = client.chat.completions.create(model=MODEL, messages=chat.messages, tools=chat.tools)
        chat.step(resp.choices[0].message)

The conversation is a plain list of JSON-ready dicts: a ``system`` prompt, the user's request as
a ``user`` message, then each ``assistant`` message with its ``tool_calls`` followed by one
``tool`` message per call (what the assistant heard in answer: IVR, rep, user and system lines).
:class:`ChatAgent` is the same protocol as an agent for ``envgym eval``;
:class:`ScriptedChatClient` mimics a client's response shape for tests and offline demos.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

SYSTEM_PROMPT = """\
You are a phone assistant. Your user asked you to call a company's customer service for them.
Act only through the tools, one tool call per turn. After each call you hear what happened:
IVR menus, hold music, the rep, your user, or system notes.

- The user's request, the numbers you may dial and the facts you already know come first.
- dial a number; press keys in IVR menus; wait on hold until a rep answers.
- With a rep: request the service the user needs, answer the rep's questions with provide
  (state only true values you know), and say_yes / say_no to fees and offers as the user wants.
- Facts you don't know can only come from the user: ask_user. Never invent a value: wrong values
  fail verification and reps hang up after repeated failures.
- Don't volunteer sensitive facts nobody asked for. Stay within the user's call budget and fees.
- When the request is done (or can't be done), call report. It ends the task."""


_MAX_DEPTH = 32


def _plain(obj: Any, depth: int = 0) -> Any:
    """An SDK object (pydantic model, namespace) or dict as plain JSON-ready data; structure
    nested deeper than 32 levels becomes the text ``"<too deep>"`` (never a RecursionError)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if depth >= _MAX_DEPTH:
        return "<too deep>"
    if isinstance(obj, dict):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj]
    if hasattr(obj, "model_dump"):  # openai-python's pydantic models
        return _plain(obj.model_dump(exclude_none=True), depth + 1)
    if hasattr(obj, "__dict__"):
        return {k: _plain(v, depth + 1) for k, v in vars(obj).items() if not k.startswith("_")}
    return str(obj)


def assistant_message(message: Any) -> dict[str, Any]:
    """Normalise a model's reply to an OpenAI chat ``assistant`` message dict.

    Accepts ``response.choices[0].message`` of openai-python (a pydantic model), any object or
    dict of the same shape, or a bare string (a reply without tool calls).
    """
    if isinstance(message, str):
        return {"role": "assistant", "content": message}
    msg = _plain(message)
    if not isinstance(msg, dict):
        raise TypeError(f"expected a chat message, got {type(message).__name__}")
    content = msg.get("content")
    out: dict[str, Any] = {
        "role": "assistant",
        "content": content if content is None or isinstance(content, str) else str(content),
    }
    calls = []
    raw_calls = msg.get("tool_calls") or []
    for i, call in enumerate(raw_calls if isinstance(raw_calls, list) else [raw_calls]):
        # A malformed call still becomes a call: the env answers it "not_understood".
        call = call if isinstance(call, dict) else {}
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        args = fn.get("arguments", "{}")
        calls.append(
            {
                "id": str(call.get("id") or f"call_{i}"),
                "type": "function",
                "function": {
                    "name": str(fn.get("name", "")),
                    "arguments": args if isinstance(args, str) else json.dumps(args, default=str),
                },
            }
        )
    if calls:
        out["tool_calls"] = calls
    return out


def tool_call_action(call: dict[str, Any]) -> str:
    """One ``tool_calls`` entry as the JSON action string the phone env's text face parses."""
    fn = call["function"]
    return json.dumps({"name": fn["name"], "arguments": fn["arguments"]})


def heard_text(obs: str, info: dict[str, Any]) -> str:
    """What the assistant heard after an action, with the action error (if any) appended."""
    text = obs or "(silence)"
    if info.get("action_error"):
        text += f"\n(action_error: {info['action_error']})"
    return text


def system_message(notes: str | None = None, prompt: str = SYSTEM_PROMPT) -> dict[str, str]:
    """The system message; ``notes`` (e.g. a notebook from earlier calls) are appended."""
    content = prompt if not notes else f"{prompt}\n\nYour notes from earlier calls:\n{notes}"
    return {"role": "system", "content": content}


def intro_message(obs: str) -> dict[str, str]:
    """The episode's first observation (the user's request) as a ``user`` message."""
    lines = [
        line.partition(": ")[2] if line.startswith("user: ") else line for line in obs.split("\n")
    ]
    return {"role": "user", "content": "\n".join(lines)}


class ChatAdapter:
    """A phone env (text face) as an OpenAI-style chat with tools.

    Args:
        env: a phone env made with ``obs_mode="text"`` (the default), wrapped or not.
        notes: text appended to the system prompt (e.g. what earlier calls taught).
        system_prompt: replaces :data:`SYSTEM_PROMPT`.

    Attributes:
        messages: the whole conversation so far, as JSON-ready dicts; send it as ``messages=``.
        tools: the assistant's tools (``env.unwrapped.tool_schemas()``); send it as ``tools=``.
        done: whether the episode has ended (terminated or truncated).
    """

    def __init__(self, env: Any, notes: str | None = None, system_prompt: str = SYSTEM_PROMPT):
        if getattr(env.unwrapped, "obs_mode", "text") != "text":
            raise ValueError("ChatAdapter needs the text face: gym.make(..., obs_mode='text')")
        self.env = env
        self.notes = notes
        self.system_prompt = system_prompt
        self.tools: list[dict[str, Any]] = env.unwrapped.tool_schemas()
        self.messages: list[dict[str, Any]] = []
        self.done = False
        self.episode_return = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Start an episode; returns ``(messages, info)`` with the system and user messages."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.messages = [system_message(self.notes, self.system_prompt), intro_message(obs)]
        self.done = False
        self.episode_return = 0.0
        return list(self.messages), info

    def step(self, message: Any) -> tuple[list[dict[str, Any]], float, bool, bool, dict[str, Any]]:
        """Carry out the model's reply.

        Each tool call is one env step, answered by a ``tool`` message with its
        ``tool_call_id``. Calls left after the episode ends are answered "not executed". A reply
        without tool calls is taken as free text (``"dial 800-555-0100"``) and answered by a
        ``user`` message.

        Returns:
            ``(new_messages, reward, terminated, truncated, info)``: the messages appended this
            step, the summed reward of its env steps and the last step's ``info`` (with
            ``info["env_steps"]``, the number of env steps taken).
        """
        if self.done:
            raise RuntimeError("the episode has ended; call reset()")
        msg = assistant_message(message)
        new: list[dict[str, Any]] = [msg]
        reward, term, trunc, info = 0.0, False, False, {}
        steps = 0
        calls = msg.get("tool_calls", [])
        actions: list[tuple[str | None, str]] = [(c["id"], tool_call_action(c)) for c in calls]
        if not actions:
            actions = [(None, msg.get("content") or "")]
        for call_id, action in actions:
            if term or trunc:
                new.append(
                    {
                        "role": "tool",
                        "tool_call_id": call_id,
                        "content": "not executed: the task is over.",
                    }
                )
                continue
            obs, r, term, trunc, info = self.env.step(action)
            reward += float(r)
            steps += 1
            content = heard_text(obs, info)
            if call_id is None:
                new.append({"role": "user", "content": content})
            else:
                new.append({"role": "tool", "tool_call_id": call_id, "content": content})
        self.messages.extend(new)
        self.done = bool(term or trunc)
        self.episode_return += reward
        info = dict(info, env_steps=steps)
        return new, reward, bool(term), bool(trunc), info


def chat_response(action: Any, call_id: str = "call_0") -> SimpleNamespace:
    """A chat-completions response (openai-python's attribute shape) whose message makes one
    tool call; ``action`` is a ``{"name", "arguments"}`` dict or its JSON string. Any other
    string becomes a plain text reply (``content``, no tool calls)."""
    if isinstance(action, str) and not action.lstrip().startswith("{"):
        message = SimpleNamespace(role="assistant", content=action, tool_calls=None)
        return SimpleNamespace(
            choices=[SimpleNamespace(index=0, message=message, finish_reason="stop")]
        )
    if isinstance(action, str):
        action = json.loads(action)
    call = SimpleNamespace(
        id=call_id,
        type="function",
        function=SimpleNamespace(
            name=action["name"], arguments=json.dumps(action.get("arguments", {}))
        ),
    )
    message = SimpleNamespace(role="assistant", content=None, tool_calls=[call])
    return SimpleNamespace(
        choices=[SimpleNamespace(index=0, message=message, finish_reason="tool_calls")]
    )


class ScriptedChatClient:
    """Mimics ``openai.OpenAI()`` for the chat loop without a network: ``client.chat.
    completions.create(model=..., messages=..., tools=...)`` returns a response whose message
    makes the tool call ``script(messages, tools)`` decides (a ``{"name", "arguments"}`` dict;
    a plain string is a text reply).

    Every request is recorded in ``requests`` (for tests that check what a model would see).
    """

    def __init__(self, script: Callable[[list[dict[str, Any]], list[dict[str, Any]]], Any]):
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def _create(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> SimpleNamespace:
        json.dumps(messages)  # what a real client sends must be JSON-serialisable
        self.requests.append({"model": model, "messages": list(messages), "tools": tools, **kwargs})
        return chat_response(self.script(messages, tools or []), f"call_{len(self.requests)}")


class ChatAgent:
    """An agent for ``envgym eval`` that asks a chat model for each action.

    It keeps the same conversation :class:`ChatAdapter` builds (system, user request,
    assistant tool calls, tool results) and executes the first tool call of each reply.

    Args:
        client: an OpenAI-compatible client (``openai.OpenAI(base_url=..., api_key=...)``).
        model: the model name passed to ``client.chat.completions.create``.
        notes: text appended to the system prompt.
        create_kwargs: extra arguments for ``create`` (``temperature=0``, ...).
    """

    def __init__(
        self, client: Any, model: str, notes: str | None = None, **create_kwargs: Any
    ) -> None:
        self.client = client
        self.model = model
        self.notes = notes
        self.create_kwargs = create_kwargs
        self.messages: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []
        self._pending: str | None = None

    def reset(self, env: Any, obs: str, info: dict[str, Any]) -> None:
        """Start a conversation for a new episode."""
        self.tools = env.unwrapped.tool_schemas()
        self.messages = [system_message(self.notes), intro_message(obs)]
        self._pending = None

    def act(self, obs: str, info: dict[str, Any]) -> str:
        """Report what was heard to the model and return its next action (a JSON tool call)."""
        if self._pending is not None:
            self.messages.append(
                {"role": "tool", "tool_call_id": self._pending, "content": heard_text(obs, info)}
            )
        elif len(self.messages) > 2:
            self.messages.append({"role": "user", "content": heard_text(obs, info)})
        resp = self.client.chat.completions.create(
            model=self.model, messages=self.messages, tools=self.tools, **self.create_kwargs
        )
        msg = assistant_message(resp.choices[0].message)
        calls = msg.get("tool_calls", [])[:1]  # one env step per turn
        if calls:
            msg["tool_calls"] = calls
            self._pending = calls[0]["id"]
            self.messages.append(msg)
            return tool_call_action(calls[0])
        self._pending = None
        self.messages.append(msg)
        return msg.get("content") or ""

    def end(self, info: dict[str, Any]) -> None:
        """The episode ended: answer the last tool call with what was heard, so
        ``self.messages`` is a complete conversation (e.g. to ask the model for a note)."""
        heard = "\n".join(f"{m['name']}: {m['content']}" for m in info.get("messages", []))
        if self._pending is not None:
            self.messages.append(
                {"role": "tool", "tool_call_id": self._pending, "content": heard_text(heard, info)}
            )
            self._pending = None


def script_from_agent(agent: Any) -> Callable[[list[dict[str, Any]], list[dict[str, Any]]], Any]:
    """A :class:`ScriptedChatClient` script that runs a text-face agent on the conversation
    alone (the last message is what was heard), e.g. ``ExplorerAgent``: an offline stand-in for
    a model that sees exactly what a model sees. The agent must answer JSON tool calls or
    ``"wait"``."""
    tools_env = SimpleNamespace()

    def script(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        tools_env.unwrapped = SimpleNamespace(tool_schemas=lambda: tools)
        obs = str(messages[-1].get("content") or "").split("\n(action_error")[0]
        if len(messages) == 2:  # system + the user's request: a new episode
            agent.reset(tools_env, obs, {})
        action = agent.act(obs, {})
        if isinstance(action, str) and not action.lstrip().startswith("{"):
            return {"name": action.strip(), "arguments": {}}
        return json.loads(action) if isinstance(action, str) else action

    return script
