"""Token-level episodes of the phone text face for LLM trainers, with the env's token spans.

An LLM agent's episode is one token sequence: the prompt (system prompt and the user's request,
rendered by the tokenizer's chat template), then turn after turn the model's tokens (its action
text) and the **environment's tokens** (what was heard in answer, rendered as the next chat
message plus the template's opening of the next assistant turn). :func:`play_episode` plays one
episode through a served env (:class:`envgym.remote.AsyncRemoteEnv`) and returns an
:class:`EpisodeTokens` holding:

- ``completion_ids`` and ``env_mask``: 1 for the model's tokens, 0 for the env's: TRL's
  ``env_mask`` convention (the policy loss is taken on 1s);
- ``env_spans``: ``[start, end)`` into ``completion_ids`` of each step's env tokens, and
  ``env_texts``, the text they encode (``tokenizer.decode(completion_ids[start:end])``); a
  world-model loss on predicting the env's answer is next-token prediction on these spans;
- ``next_obs_targets``: each step's ``info["next_obs_target"]`` (the phone engine's own token ids
  of the same answer, in its vocabulary), ``rewards``, ``success`` and the episode's end.

:func:`trl_rollout_func` wraps this as the ``rollout_func`` of TRL's :class:`GRPOTrainer`:
every prompt of a batch is one episode (TRL repeats each prompt ``num_generations`` times, so
each group shares one start state: the same scenario and seed), all played concurrently as
sessions of one server. ``baselines/trl_grpo_phone.py`` is the worked example.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from envgym.phone.chat import heard_text, intro_message, system_message
from envgym.remote import AsyncRemoteEnv

Policy = Callable[[AsyncRemoteEnv, list[int]], Awaitable[tuple[list[int], list[float]]]]
"""``await policy(env, context_ids) -> (new_token_ids, their_logprobs)``: the model's turn."""


@dataclass
class EpisodeTokens:
    """One episode as the token sequence an LLM trainer trains on (see the module docstring)."""

    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    env_spans: list[tuple[int, int]] = field(default_factory=list)
    env_texts: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    next_obs_targets: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    success: bool = False
    terminated: bool = False
    truncated: bool = False

    @property
    def episode_return(self) -> float:
        """The sum of the episode's rewards."""
        return float(sum(self.rewards))


class ChatTokens:
    """Renders a conversation with a tokenizer's chat template and tokenizes its turns.

    Args:
        tokenizer: a Hugging Face tokenizer with a ``chat_template``.
    """

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer needs a chat_template to render the conversation")
        self.tokenizer = tokenizer

    def render(self, messages: Sequence[dict[str, Any]], generation_prompt: bool) -> str:
        """The conversation as text."""
        return self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=generation_prompt
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, special tokens dropped."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def env_turn(self, messages: list[dict[str, Any]], heard: str) -> tuple[str, list[int]]:
        """The env's answer after the last assistant message: its text as the template renders
        it (the message and the opening of the next assistant turn) and its token ids."""
        before = self.render(messages, generation_prompt=False)
        after = self.render([*messages, {"role": "user", "content": heard}], True)
        if not after.startswith(before):
            raise ValueError("the chat template does not render conversations prefix-stably")
        text = after[len(before) :]
        return text, self.encode(text)


async def play_episode(
    env: AsyncRemoteEnv,
    policy: Policy,
    chat: ChatTokens,
    *,
    seed: int | None = None,
    max_turns: int = 16,
) -> EpisodeTokens:
    """Play one episode of the phone text face on a served env, token by token.

    Each turn the policy continues the token context; its decoded text is the action (free
    text or a JSON tool call, as the text face reads them) and the env's answer is appended as a
    ``user`` message. The episode stops when the env ends it or after ``max_turns`` turns
    (``truncated`` is then set).
    """
    obs, _ = await env.reset(seed=seed)
    messages = [system_message(), intro_message(obs)]
    ep = EpisodeTokens(prompt_ids=chat.encode(chat.render(messages, generation_prompt=True)))
    for _ in range(max_turns):
        ids, logps = await policy(env, ep.prompt_ids + ep.completion_ids)
        action = chat.decode(ids)
        obs, reward, terminated, truncated, info = await env.step(action)
        ep.completion_ids += list(ids)
        ep.env_mask += [1] * len(ids)
        ep.logprobs += list(logps)
        messages.append({"role": "assistant", "content": action})
        heard = heard_text(obs, info)
        text, env_ids = chat.env_turn(messages, heard)
        messages.append({"role": "user", "content": heard})
        start = len(ep.completion_ids)
        ep.completion_ids += env_ids
        ep.env_mask += [0] * len(env_ids)
        ep.logprobs += [0.0] * len(env_ids)
        ep.env_spans.append((start, len(ep.completion_ids)))
        ep.env_texts.append(text)
        ep.actions.append(action)
        ep.next_obs_targets.append(info.get("next_obs_target"))
        ep.rewards.append(float(reward))
        ep.success = bool(info.get("success", False))
        ep.terminated, ep.truncated = bool(terminated), bool(truncated)
        if terminated or truncated:
            break
    else:
        ep.truncated = True
    return ep


def oracle_policy(chat: ChatTokens) -> Policy:
    """A scripted policy that says the env's oracle action (the env needs ``oracle=True``):
    shows successful episodes through the same token path as a model."""

    async def policy(env: AsyncRemoteEnv, context_ids: list[int]) -> tuple[list[int], list[float]]:
        action = env.oracle_action()
        text = action if isinstance(action, str) else json.dumps(action)
        ids = chat.encode(text)
        return ids, [0.0] * len(ids)

    return policy


def model_policy(model: Any, tokenizer: Any, *, max_new_tokens: int = 24) -> Policy:
    """Sample the model's next turn (``model.generate``) with the logprobs of its tokens.

    Generation stops at the tokenizer's EOS token or after ``max_new_tokens``.
    """
    import torch

    async def policy(env: AsyncRemoteEnv, context_ids: list[int]) -> tuple[list[int], list[float]]:
        device = next(model.parameters()).device
        inputs = torch.tensor([context_ids], device=device)
        with torch.no_grad():
            out = model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=max_new_tokens,
                do_sample=True,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new = out.sequences[0, inputs.shape[1] :]
        logps = [
            torch.log_softmax(score[0].float(), dim=-1)[tok].item()
            for score, tok in zip(out.scores, new, strict=False)
        ]
        return new.tolist(), logps

    return policy


def trl_rollout_func(
    url: str,
    env_id: str,
    tokenizer: Any,
    seed_of_prompt: Callable[[Any], int],
    *,
    max_turns: int = 4,
    max_new_tokens: int = 24,
    policy: Policy | None = None,
    oracle: bool = False,
    on_episodes: Callable[[list[EpisodeTokens]], None] | None = None,
    **env_kwargs: Any,
) -> Callable[[list[Any], Any], dict[str, list[Any]]]:
    """A ``rollout_func`` for TRL's ``GRPOTrainer`` playing each prompt as a served episode.

    Args:
        url: the envgym server (``envgym serve ID``).
        env_id: the id it serves.
        tokenizer: the trainer's tokenizer (``processing_class``), with a chat template.
        seed_of_prompt: maps a dataset prompt to the episode's seed (the dataset's prompts are
            the episodes' first observations, so the trainer logs what the model saw).
        max_turns: model turns per episode.
        max_new_tokens: tokens per model turn.
        policy: the policy to play (default: the trainer's model, sampled).
        oracle: open the sessions with ``oracle=True`` (for :func:`oracle_policy`).
        on_episodes: called with each batch's episodes (logging, tests).
        env_kwargs: ``gym.make`` kwargs of every session (e.g. ``scenario=``).

    Returns:
        ``rollout_func(prompts, trainer)`` returning ``prompt_ids``, ``completion_ids``,
        ``logprobs``, ``env_mask`` (TRL masks the env's tokens out of the policy loss) and, for
        the reward functions, ``env_return``, ``env_success`` and ``env_spans``.
    """
    chat = ChatTokens(tokenizer)

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        play = policy
        if play is None:
            model = trainer.accelerator.unwrap_model(trainer.model)
            play = model_policy(model, tokenizer, max_new_tokens=max_new_tokens)

        async def one(prompt: Any) -> EpisodeTokens:
            env = AsyncRemoteEnv(url, env_id, oracle=oracle, **env_kwargs)
            try:
                return await play_episode(
                    env, play, chat, seed=seed_of_prompt(prompt), max_turns=max_turns
                )
            finally:
                await env.close()

        async def batch() -> list[EpisodeTokens]:
            return list(await asyncio.gather(*(one(p) for p in prompts)))

        episodes = asyncio.run(batch())
        if on_episodes is not None:
            on_episodes(episodes)
        return {
            "prompt_ids": [ep.prompt_ids for ep in episodes],
            "completion_ids": [ep.completion_ids for ep in episodes],
            "logprobs": [ep.logprobs for ep in episodes],
            "env_mask": [ep.env_mask for ep in episodes],
            "env_return": [ep.episode_return for ep in episodes],
            "env_success": [ep.success for ep in episodes],
            "env_spans": [ep.env_spans for ep in episodes],
        }

    return rollout_func


def env_return_reward(completions: list[Any], env_return: list[float], **_: Any) -> list[float]:
    """The reward function of :func:`trl_rollout_func`: each episode's return."""
    return [float(r) for r in env_return]
