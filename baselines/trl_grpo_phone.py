"""GRPO with TRL on served phone episodes: group rollouts through ``envgym serve``, offline.

TRL's ``GRPOTrainer`` plays each prompt of a batch as a multi-turn phone episode on an envgym
server (``envgym.llm.trl_rollout_func``): every group of ``num_generations`` completions shares
one start state (scenario and seed), the episode's return is the reward, and the env's tokens
are masked out of the policy loss with TRL's ``env_mask``. Everything is built locally: a
byte-level BPE tokenizer trained on the scenario's own text and a tiny Llama from a config (no
hub downloads), so the run shows the plumbing, not learning. For a real model, pass
``--model NAME`` (any causal LM with a chat template) and a larger ``--max-steps``.

    python baselines/trl_grpo_phone.py --max-steps 2 --num-generations 2
    python baselines/trl_grpo_phone.py --url http://127.0.0.1:8000   # a running envgym serve

Needs ``pip install 'envgym[trl]'``.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

ENV_ID = "envgym/Phone-v0"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]


@dataclass
class Args:
    scenario: str = "isp_bill_discount"
    """phone scenario of every episode"""
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    """episode seeds: one dataset prompt each"""
    num_generations: int = 2
    """GRPO group size: episodes per prompt, all from the same start state"""
    max_steps: int = 2
    """optimizer steps"""
    max_turns: int = 3
    """model turns per episode"""
    max_new_tokens: int = 12
    """tokens per model turn"""
    learning_rate: float = 1e-4
    policy: str = "model"
    """who plays: "model" (sampled from the trained model) or "oracle" (a scripted policy that
    says the env's oracle action through the same token path: successful episodes)"""
    model: str | None = None
    """a local causal LM with a chat template (default: a tiny Llama built from a config)"""
    url: str | None = None
    """an envgym server serving envgym/Phone-v0 (default: start one on a free loopback port)"""
    output_dir: str = "runs/trl_grpo_phone"
    seed: int = 0


def parse_args(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in asdict(Args()).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, list):
            p.add_argument(flag, type=int, nargs="+", default=default)
        elif default is None:
            p.add_argument(flag, default=None)
        else:
            p.add_argument(flag, type=type(default), default=default)
    return Args(**vars(p.parse_args(argv)))


# --------------------------------------------------------------------------- plumbing


def first_observations(args: Args) -> dict[str, int]:
    """Each seed's first observation (the user's request, as the model sees it) -> seed."""
    import gymnasium as gym

    import envgym  # noqa: F401
    from envgym.phone.chat import intro_message

    env = gym.make(ENV_ID, scenario=args.scenario)
    out = {intro_message(env.reset(seed=s)[0])["content"]: s for s in args.seeds}
    env.close()
    return out


def build_tokenizer(corpus: list[str]) -> Any:
    """A byte-level BPE tokenizer trained on ``corpus`` (lossless on any text), with a chat
    template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<|end|>", padding_side="left"
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def training_corpus(args: Args) -> list[str]:
    """Text the phone env produces on this scenario (the oracle's episodes), for the tokenizer."""
    import gymnasium as gym

    import envgym  # noqa: F401
    from envgym.phone.chat import SYSTEM_PROMPT

    env = gym.make(ENV_ID, scenario=args.scenario)
    corpus = [SYSTEM_PROMPT]
    for s in args.seeds:
        obs, _ = env.reset(seed=s)
        corpus.append(obs)
        for _ in range(40):
            action = env.unwrapped.oracle_action()
            obs, _, term, trunc, _ = env.step(action)
            corpus += [str(action), obs]
            if term or trunc:
                break
    env.close()
    return corpus


def build_model(args: Args, tokenizer: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if args.model:
        return AutoModelForCausalLM.from_pretrained(args.model)
    torch.manual_seed(args.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config)


# --------------------------------------------------------------------------- the run


def main(args: Args) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from envgym.llm import ChatTokens, env_return_reward, oracle_policy, trl_rollout_func
    from envgym.serve import EnvServer

    torch.set_num_threads(1)
    intros = first_observations(args)
    if args.model:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left")
    else:
        tokenizer = build_tokenizer(training_corpus(args))
    model = build_model(args, tokenizer)

    server = None
    url = args.url
    if url is None:
        server = EnvServer(ENV_ID, {"scenario": args.scenario}, max_sessions=64).start()
        url = server.url
    if args.policy not in ("model", "oracle"):
        raise ValueError(f"--policy must be model or oracle, got {args.policy!r}")
    scripted = oracle_policy(ChatTokens(tokenizer)) if args.policy == "oracle" else None
    episodes: list[Any] = []
    rollout = trl_rollout_func(
        url,
        ENV_ID,
        tokenizer,
        seed_of_prompt=lambda prompt: intros[prompt[-1]["content"]],
        max_turns=args.max_turns,
        max_new_tokens=args.max_new_tokens,
        policy=scripted,
        oracle=scripted is not None,
        on_episodes=episodes.extend,
        scenario=args.scenario,
    )
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": t}] for t in intros]})
    config = GRPOConfig(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.num_generations,
        num_generations=args.num_generations,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=args.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=env_return_reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        rollout_func=rollout,
    )
    try:
        trainer.train()
    finally:
        if server is not None:
            server.stop()
    summary = {
        "episodes": len(episodes),
        "mean_return": sum(e.episode_return for e in episodes) / max(len(episodes), 1),
        "success_rate": sum(e.success for e in episodes) / max(len(episodes), 1),
        "env_tokens": sum(m == 0 for e in episodes for m in e.env_mask),
        "model_tokens": sum(m == 1 for e in episodes for m in e.env_mask),
        "log_history": trainer.state.log_history,
    }
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    summary["episode_tokens"] = episodes
    summary["tokenizer"] = tokenizer
    summary["model"] = trainer.model
    return summary


if __name__ == "__main__":
    result = main(parse_args())
    print(json.dumps({k: v for k, v in result.items() if k in ("episodes", "mean_return",
                                                              "success_rate", "env_tokens",
                                                              "model_tokens")}))  # fmt: skip
