"""PPO + world model on envgym's batched phone engine, in one file (CleanRL style).

A shared encoder feeds three heads: the policy, the value, and a **world model** that predicts
the transition's ``info["next_obs_target"]`` (the token ids of the world's answer) from
``(obs, action)``. The world-model loss is an auxiliary objective on the encoder
(``--wm-coef 0`` turns it off: plain PPO with the same network and the same env steps), and
``--wm-pretrain-steps N`` adds a reward-free pre-training phase on the agent's own rollouts
(as in "early experience") whose env steps count toward ``--total-timesteps``.
``--curiosity-coef c`` also pays the world model's surprise on each transition as an intrinsic
reward, and ``--wm-detach`` stops the world-model gradient at the encoder (ablations).

Run (one command; GPU when present):

    python baselines/ppo_world_model.py --scenario isp_bill_discount --total-timesteps 2000000

TensorBoard scalars and a checkpoint go under ``--out-dir/<run name>``; ``--csv`` writes one
row per PPO iteration (success rate of the episodes that ended, world-model token accuracy
against a copy-the-last-observation baseline, env-steps/s).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from envgym.core import keys


@dataclass
class Args:
    exp_name: str = "ppo_world_model"
    """name of this experiment (the run directory is ``<out_dir>/<exp_name>_s<seed>``)"""
    seed: int = 1
    """seed of the torch RNG and of the envs (world i is seeded ``seed * 100_000 + i``)"""
    device: str = "auto"
    """torch device of the envs and the networks: ``auto`` (CUDA when present), ``cpu``, ``cuda``"""
    threads: int = 1
    """CPU threads torch may use (``torch.set_num_threads``); 0 keeps torch's default"""
    out_dir: str = "runs"
    """where TensorBoard logs and checkpoints go"""
    csv: str = ""
    """if set, write one CSV row per iteration to this path"""
    progress: bool = True
    """show a progress bar with env-steps/s"""

    # env
    scenario: str = "isp_bill_discount"
    """phone scenario: a shipped name, a YAML path, ``all`` or ``generated``"""
    difficulty: float = 1
    """difficulty of generated scenarios (a level of ``envgym.phone.generator.LEVELS``)"""
    num_generated: int = 8
    """how many scenarios to generate for ``--scenario generated``"""
    generator_seed: int = 0
    """first generator seed of ``--scenario generated`` (held-out sets use other seeds)"""
    reward_mode: str = "costs"
    """the env's ``reward_mode``: ``sparse``, ``costs`` or ``shaped`` (sub-goal terms)"""
    reveal_hidden: bool = False
    """the revealed twin: the user-only facts are known to the assistant from the start"""
    variation: str = "on"
    """the env's ``variation`` (``off``: one phrasing, one rep, fixed holds)"""
    structured_obs: bool = False
    """feed the env's structured fields (pending fact, department, verification, offers)"""
    mask: bool = False
    """sample only admissible actions (the engine's ``info["action_mask"]``), in the rollout
    and in the update"""
    num_envs: int = 256
    """number of worlds stepped together by the batched engine"""

    # algorithm
    total_timesteps: int = 1_000_000
    """env steps in all (the world-model pre-training phase included)"""
    num_steps: int = 32
    """rollout length per world between updates"""
    learning_rate: float = 5e-4
    """Adam learning rate"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over the run"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation"""
    num_minibatches: int = 4
    """minibatches per epoch"""
    update_epochs: int = 2
    """epochs over each rollout"""
    clip_coef: float = 0.2
    """PPO's surrogate clipping coefficient"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """gradient clipping norm"""
    embed_dim: int = 32
    """token embedding size"""
    hidden_dim: int = 256
    """width of the shared encoder"""

    # world model
    wm_coef: float = 1.0
    """weight of the world-model loss in the PPO update (0 turns the world model off)"""
    wm_batch: int = 128
    """transitions per minibatch the world-model loss is computed on (a random subset)"""
    wm_pretrain_steps: int = 0
    """env steps of reward-free world-model pre-training on the initial policy's rollouts"""
    wm_detach: bool = False
    """stop the world-model gradient at the encoder (the world model then only reads the
    policy's features; an ablation of the auxiliary objective)"""
    curiosity_coef: float = 0.0
    """weight of an intrinsic reward per step: the world model's surprise (its cross-entropy on
    the transition's target over its running mean, ~1 on average); 0 turns it off; needs
    ``wm_coef > 0``"""
    curiosity_target_mask: bool = False
    """score the surprise only on target tokens that are not seeded noise
    (``info["target_mask"]``: phrasing variants, rep names, holds)"""
    aux_target: str = "next"
    """what the auxiliary head predicts: ``next`` (``info["next_obs_target"]``, the world model)
    or ``current`` (the current observation's tokens: the same-size reconstruction control)"""
    novelty_coef: float = 0.0
    """weight of a count-based novelty bonus ``1/sqrt(n(s))`` per step (``s``: a hash of the
    observation; a control for curiosity); 0 turns it off"""
    stop_success: float = 0.0
    """stop early once 3 consecutive iterations reach this success rate (0: never)"""
    eval_episodes: int = 0
    """after training, play this many episodes (sampled policy) on a held-out generated set
    (``generator_seed + 1000``, compiled with the training set) and on the training set"""

    checkpoint_every: int = 0
    """save a checkpoint every N iterations (0: only at the end)"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Command-line flags from the ``Args`` fields (``--total-timesteps 1000``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(flag, type=kind, default=f.default)
    return Args(**vars(parser.parse_args(argv)))


# ======================================================================== plumbing: the env
HELD_OUT_SEED_OFFSET = 1000
"""A held-out generated set starts at ``generator_seed + HELD_OUT_SEED_OFFSET``."""


def make_env(args: Args, device: torch.device, split: str = "train") -> Any:
    """The batched phone engine, tokens face, on ``device``.

    With ``--scenario generated`` and ``--eval-episodes``, the training set and a held-out set
    (``generator_seed + HELD_OUT_SEED_OFFSET``, same level) are compiled together, so both
    share one vocabulary and action list and one network plays both; ``split`` (``train`` or
    ``held_out``) picks the block of scenarios the worlds draw from."""
    import envgym  # noqa: F401  (registers the envgym/... ids)

    kwargs: dict[str, Any] = {"scenario": args.scenario}
    held_out = args.scenario == "generated" and args.eval_episodes > 0
    if args.scenario == "generated":
        d = float(args.difficulty)
        kwargs |= {
            "difficulty": int(d) if d.is_integer() else d,
            "num_generated": args.num_generated,
            "generator_seed": args.generator_seed,
        }
        if held_out:
            kwargs["compiled"] = _train_and_held_out(kwargs["difficulty"], args)
    envs = gym.make_vec(
        "envgym/Phone-v0",
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        device=str(device),
        reward_mode=args.reward_mode,
        reveal_hidden=args.reveal_hidden,
        variation=args.variation,
        structured_obs=args.structured_obs,
        target_mask=args.curiosity_target_mask,
        **kwargs,
    )
    if held_out:
        n = args.num_generated
        lo = torch.tensor([0 if split == "train" else n], dtype=torch.int64)
        envs.unwrapped.engine.set_level_blocks(lo, torch.tensor([n], dtype=torch.int64))
    return envs


def _train_and_held_out(difficulty: float, args: Args) -> Any:
    """One compiled set: the training scenarios, then as many held-out ones."""
    from envgym.phone.compiler import compile_scenarios
    from envgym.phone.scenarios import resolve_scenarios

    seeds = (args.generator_seed, args.generator_seed + HELD_OUT_SEED_OFFSET)
    sets = [resolve_scenarios("generated", difficulty, args.num_generated, s) for s in seeds]
    return compile_scenarios(sets[0] + sets[1])


STRUCTURED_KEYS = ("pending_fact", "department", "verification", "offer_pending")
"""The env's ``structured_obs`` entries the agent reads when ``--structured-obs`` is on."""


class History:
    """The agent's input: this step's observation plus the previous step's heard tokens and
    action (the phone observation holds only what was heard this step; one step of memory
    lets the policy answer a question the rep asked before the user's reply came in)."""

    def __init__(self, num_envs: int, max_tokens: int, num_actions: int, device: torch.device):
        self.prev_tokens = torch.zeros(num_envs, max_tokens, dtype=torch.int32, device=device)
        self.prev_action = torch.full((num_envs,), num_actions, dtype=torch.int64, device=device)
        self.none_action = num_actions

    def inputs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = {
            "tokens": obs["tokens"],
            "prev_tokens": self.prev_tokens.clone(),
            "prev_action": self.prev_action.clone(),
            "phase": obs["phase"].long(),
            "known_facts": obs["known_facts"].float(),
            "calls": obs["calls"].float(),
            "turn": obs["turn"].float(),
        }
        for key in STRUCTURED_KEYS:
            if key in obs:
                x[key] = obs[key].long()
        return x

    def update(self, obs_before: dict[str, torch.Tensor], action: torch.Tensor, done: torch.Tensor):
        """After a step: remember what was heard and done; a world that ended starts empty."""
        self.prev_tokens = torch.where(done[:, None], 0, obs_before["tokens"])
        self.prev_action = torch.where(done, self.none_action, action)


# ======================================================================== algorithm: networks
class Agent(nn.Module):
    """Shared encoder; policy, value and world-model heads.

    The encoder reads the heard tokens as bags of words (this step's and the previous step's),
    the phase, known facts, call counts, turn and previous action. The world model maps
    (features, action) to per-position logits over the vocabulary, ``[B, L, V]``, through a
    small latent per position.
    """

    def __init__(self, vocab: int, max_tokens: int, num_facts: int, num_numbers: int,
                 num_actions: int, embed_dim: int, hidden_dim: int,
                 num_departments: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.vocab, self.max_tokens, self.num_actions = vocab, max_tokens, num_actions
        self.num_facts, self.num_departments = num_facts, num_departments
        self.prev_action_embed = nn.Embedding(num_actions + 1, embed_dim)
        in_dim = 2 * vocab + 4 + num_facts + num_numbers + 1 + embed_dim
        if num_departments:  # the structured fields, one-hot / binary
            in_dim += (num_facts + 1) + (num_departments + 1) + num_facts + 2
        self.encoder = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, hidden_dim), nn.Tanh()
        )
        self.policy = nn.Linear(hidden_dim, num_actions)
        self.value = nn.Linear(hidden_dim, 1)
        nn.init.orthogonal_(self.policy.weight, 0.01)
        nn.init.zeros_(self.policy.bias)
        # World model: (features, action) -> a latent per target position -> vocabulary logits.
        wm_dim = 64
        self.wm_action = nn.Embedding(num_actions, hidden_dim)
        self.wm_trunk = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU())
        self.wm_pos = nn.Parameter(torch.randn(max_tokens, wm_dim) * 0.5)
        self.wm_in = nn.Linear(hidden_dim, wm_dim)
        self.wm_mix = nn.Linear(wm_dim, wm_dim)
        self.wm_out = nn.Linear(wm_dim, vocab)

    def _bag(self, tokens: torch.Tensor) -> torch.Tensor:
        """Normalised bag of words over the vocabulary (padding id 0 dropped): cheap on CPU,
        and enough to tell which question the rep asked or what the user answered."""
        tok = tokens.long()
        counts = torch.zeros(tok.shape[0], self.vocab, device=tok.device)
        counts.scatter_add_(1, tok, torch.ones_like(tok, dtype=counts.dtype))
        counts[:, 0] = 0.0
        return counts / counts.sum(1, keepdim=True).clamp(min=1.0)

    def _bag_times(self, tokens: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``_bag(tokens) @ weight.T`` without the dense ``[B, V]`` bag: a weighted
        ``embedding_bag`` over the tokens (each non-padding token weighs 1/count), so the
        encoder's first layer costs O(L) per row instead of O(V)."""
        tok = tokens.long()
        filled = tok != 0
        if bool(filled.any()):  # drop the all-padding tail columns (most of a short message)
            tok = tok[:, : int(filled.any(0).nonzero().max()) + 1].contiguous()
        w = (tok != 0).float()
        w = w / w.sum(1, keepdim=True).clamp(min=1.0)
        return F.embedding_bag(tok, weight.t().contiguous(), per_sample_weights=w, mode="sum")

    def features(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """The encoder on ``[bag(tokens), bag(prev_tokens), rest]`` (the two bags through
        :meth:`_bag_times`: the same product as the dense input, far cheaper on CPU)."""
        rest = [
            F.one_hot(x["phase"], 4).float(),
            x["known_facts"],
            torch.log1p(x["calls"]),
            x["turn"] / 32.0,
            self.prev_action_embed(x["prev_action"]),
        ]
        if self.num_departments:
            rest += [
                F.one_hot(x["pending_fact"], self.num_facts + 1).float(),
                F.one_hot(x["department"], self.num_departments + 1).float(),
                x["verification"].float(),
                x["offer_pending"].float(),
            ]
        first, V = self.encoder[0], self.vocab
        pre = (
            self._bag_times(x["tokens"], first.weight[:, :V])
            + self._bag_times(x["prev_tokens"], first.weight[:, V : 2 * V])
            + F.linear(torch.cat(rest, dim=-1), first.weight[:, 2 * V :], first.bias)
        )
        return self.encoder[1:](pre)

    def policy_value(
        self, h: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.distributions.Categorical, torch.Tensor]:
        """The policy (restricted to ``mask``'s admissible actions when given) and the value."""
        logits = self.policy(h)
        if mask is not None:
            logits = logits.masked_fill(~mask, -1e9)
        return torch.distributions.Categorical(logits=logits), self.value(h).squeeze(-1)

    def world_model_logits(
        self, h: torch.Tensor, action: torch.Tensor, length: int | None = None
    ) -> torch.Tensor:
        """Logits ``[B, length, V]`` of the target's first ``length`` tokens (default: all)."""
        z = self.wm_in(self.wm_trunk(h + self.wm_action(action)))  # [B, E]
        pos = self.wm_pos[: length or self.max_tokens]
        per_pos = torch.relu(self.wm_mix(torch.relu(z[:, None, :] + pos[None])))
        return self.wm_out(per_pos)  # [B, length, V]


def wm_loss_and_accuracy(
    agent: Agent, h: torch.Tensor, action: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the predicted target tokens, and the token accuracy on the positions
    the true target fills (padding positions are not scored: the metric and the loss are
    about the words of the answer)."""
    tgt = target.long()
    filled = tgt != 0
    used = int(filled.any(0).nonzero().max()) + 1 if bool(filled.any()) else 1
    tgt, filled = tgt[:, :used], filled[:, :used].float()
    logits = agent.world_model_logits(h, action, length=used)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none")
    weight = filled.reshape(-1)
    loss = (ce * weight).sum() / weight.sum().clamp(min=1.0)
    acc = ((logits.argmax(-1) == tgt).float() * filled).sum() / filled.sum().clamp(min=1.0)
    return loss, acc.detach()


def copy_last_accuracy(tokens: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The baseline predictor: the next target equals the current observation's tokens."""
    filled = (target != 0).float()
    return ((tokens == target).float() * filled).sum() / filled.sum().clamp(min=1.0)


# ======================================================================== algorithm: training
_CHART_KEYS = ("success_rate", "episode_return", "episode_length", "episodes", "sps")
CSV_FIELDS = (
    "iteration", "global_step", "episodes", "success_rate", "episode_return", "episode_length",
    "sps", "pg_loss", "v_loss", "entropy", "approx_kl", "wm_loss", "wm_token_acc",
    "copy_last_token_acc", "sg_right_department", "sg_right_service", "sg_verification",
    "sg_user_fact", "sg_goal_records",
)  # fmt: skip
"""Columns of ``--csv`` (pre-training rows leave the PPO ones empty)."""


def make_agent(args: Args, envs: Any) -> Agent:
    """The network for ``envs`` (reads the structured fields when the env has them)."""
    c = envs.unwrapped.compiled
    space = envs.single_observation_space
    departments = space["department"].n - 1 if "department" in space.spaces else 0
    return Agent(c.vocab_size, c.max_tokens, c.dims["F"], c.dims["N"], c.num_actions,
                 args.embed_dim, args.hidden_dim, departments)  # fmt: skip


class NoveltyCounts:
    """A count-based novelty bonus ``1/sqrt(n(s))``: ``s`` hashes the observation (tokens,
    phase, known facts, structured fields) into a table of visit counts (collisions are rare
    at 2**22 buckets and only make the bonus smaller)."""

    def __init__(self, device: torch.device, buckets: int = 1 << 22) -> None:
        self.counts = torch.zeros(buckets, dtype=torch.float32, device=device)
        self.buckets = buckets
        self.weights: dict[str, torch.Tensor] = {}
        self.gen = torch.Generator(device="cpu").manual_seed(0)

    def _key(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        key = torch.zeros(next(iter(obs.values())).shape[0], dtype=torch.int64)
        key = key.to(self.counts.device)
        for name in sorted(obs):
            v = obs[name].reshape(obs[name].shape[0], -1).long()
            if name not in self.weights:
                w = torch.randint(1, 1 << 30, (v.shape[1],), generator=self.gen)
                self.weights[name] = w.to(self.counts.device)
            key = key + (v * self.weights[name]).sum(1)
        return key % self.buckets

    def bonus(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Count this step's observations, and return their bonus ``[B]``."""
        key = self._key(obs)
        self.counts.index_add_(0, key, torch.ones_like(key, dtype=torch.float32))
        return self.counts[key].rsqrt()


def _reached(rows: list[dict[str, float]], level: float, k: int) -> bool:
    """The last ``k`` iterations all reached success ``level``."""
    tail = [r["success_rate"] for r in rows[-k:]]
    return len(tail) == k and all(np.isfinite(v) and v >= level for v in tail)


def evaluate(agent: Agent, args: Args, device: torch.device, split: str) -> dict[str, Any]:
    """Success of the sampled policy over ``args.eval_episodes`` episodes of fresh worlds on
    ``split`` (``train`` or ``held_out``, see :func:`make_env`; a shipped scenario has only its
    own)."""
    envs = make_env(args, device, split)
    obs, info = envs.reset(seed=10_000_000 + args.seed)
    hist = History(args.num_envs, envs.unwrapped.compiled.max_tokens,
                   envs.unwrapped.compiled.num_actions, device)  # fmt: skip
    success: list[torch.Tensor] = []
    with torch.no_grad():
        while sum(int(t.numel()) for t in success) < args.eval_episodes:
            x = hist.inputs(obs)
            mask = info["action_mask"] if args.mask else None
            action = agent.policy_value(agent.features(x), mask)[0].sample()
            nxt, _, term, trunc, info = envs.step(action)
            done = term | trunc
            success.append(info["success"][done].float())
            hist.update(obs, action, done)
            obs = nxt
    envs.close()
    s = torch.cat(success)[: args.eval_episodes]
    seed = args.generator_seed + (HELD_OUT_SEED_OFFSET if split == "held_out" else 0)
    return {"generator_seed": seed, "episodes": int(s.numel()), "success_rate": float(s.mean())}


def train(args: Args) -> dict[str, Any]:
    """Run PPO (+ world model) and return a summary (also written next to the checkpoint)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    run_dir = Path(args.out_dir) / f"{args.exp_name}_s{args.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    writer.add_text("args", json.dumps(dataclasses.asdict(args), indent=1))

    envs = make_env(args, device)
    engine = envs.unwrapped
    c = engine.compiled
    n_act, seq_len = c.num_actions, c.max_tokens
    agent = make_agent(args, envs).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    use_wm = args.wm_coef > 0

    B, T = args.num_envs, args.num_steps
    batch_size = B * T
    minibatch = batch_size // args.num_minibatches
    num_iterations = max(1, (args.total_timesteps - args.wm_pretrain_steps) // batch_size)
    obs, info = envs.reset(seed=args.seed * 100_000)
    hist = History(B, seq_len, n_act, device)
    novelty = NoveltyCounts(device) if args.novelty_coef > 0 else None
    global_step = 0
    rows: list[dict[str, float]] = []
    csv_file = open(args.csv, "w", newline="") if args.csv else None  # noqa: SIM115
    csv_writer: Any = None
    total = args.total_timesteps
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="step", unit_scale=True, dynamic_ncols=True)
    start = time.time()

    curious = use_wm and args.curiosity_coef > 0
    surprise_scale = {"mean": 1.0}

    def surprise(
        h: torch.Tensor, action: torch.Tensor, target: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """Per-world world-model cross-entropy on the filled target positions (less the seeded
        ``noise`` ones when given), divided by its running mean: about 1 per step on average,
        larger for answers the world model has not learned yet, fading as it learns them."""
        tgt = target.long()
        filled = tgt != 0
        if noise is not None:
            filled = filled & ~noise.bool()
        used = int(filled.any(0).nonzero().max()) + 1 if bool(filled.any()) else 1
        tgt, mask = tgt[:, :used], filled[:, :used].float()
        logits = agent.world_model_logits(h, action, length=used)
        ce = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")
        s = (ce * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        surprise_scale["mean"] = 0.99 * surprise_scale["mean"] + 0.01 * float(s.mean())
        return s / max(surprise_scale["mean"], 1e-6)

    def rollout(num: int) -> dict[str, Any]:
        """``num`` steps of every world with the current policy (no gradients)."""
        nonlocal obs, info, global_step
        buf: dict[str, Any] = {"x": [], "action": [], "logp": [], "value": [], "reward": [],
                               "done": [], "target": []}  # fmt: skip
        ended_success: list[torch.Tensor] = []
        ended_return: list[torch.Tensor] = []
        ended_len: list[torch.Tensor] = []
        ended_subgoals: dict[str, list[torch.Tensor]] = {}
        with torch.no_grad():
            for _ in range(num):
                x = hist.inputs(obs)
                if args.mask:
                    x["action_mask"] = info["action_mask"]
                dist, value = agent.policy_value(agent.features(x), x.get("action_mask"))
                action = dist.sample()
                next_obs, reward, term, trunc, info = envs.step(action)
                done = term | trunc
                if curious:
                    reward = reward + args.curiosity_coef * surprise(
                        agent.features(x), action, info["next_obs_target"],
                        info.get("target_mask"),
                    )  # fmt: skip
                if novelty is not None:
                    reward = reward + args.novelty_coef * novelty.bonus(next_obs)
                for name, reached in info[keys.EPISODE].get("subgoals", {}).items():
                    ended_subgoals.setdefault(name, []).append(reached[done].float())
                hist.update(obs, action, done)
                buf["x"].append(x)
                buf["action"].append(action)
                buf["logp"].append(dist.log_prob(action))
                buf["value"].append(value)
                buf["reward"].append(reward.float())
                # Truncation is rare and bootstrapping it would need the final obs' value:
                # treat episode ends as terminal (as CleanRL's PPO does).
                buf["done"].append(done.float())
                aux = x["tokens"] if args.aux_target == "current" else info["next_obs_target"]
                buf["target"].append(aux)
                ended_success.append(info["success"][done])
                ended_return.append(info[keys.EPISODE]["r"][done])
                ended_len.append(info[keys.EPISODE]["l"][done].float())
                obs = next_obs
                global_step += B
        stacked = {k: torch.stack(v) for k, v in buf.items() if k != "x"}
        stacked["x"] = {k: torch.stack([d[k] for d in buf["x"]]) for k in buf["x"][0]}
        stacked["success"] = torch.cat(ended_success).float()
        stacked["ep_return"] = torch.cat(ended_return)
        stacked["ep_len"] = torch.cat(ended_len)
        stacked["subgoals"] = {k: torch.cat(v) for k, v in ended_subgoals.items()}
        return stacked

    def flat(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.reshape(batch_size, *v.shape[2:]) for k, v in x.items()}

    def log_row(it: int, data: dict[str, Any], stats: dict[str, float]) -> None:
        nonlocal csv_writer
        sps = global_step / max(time.time() - start, 1e-9)
        n_ended = int(data["success"].numel())
        row = {
            "iteration": it,
            "global_step": global_step,
            "episodes": n_ended,
            "success_rate": float(data["success"].mean()) if n_ended else float("nan"),
            "episode_return": float(data["ep_return"].mean()) if n_ended else float("nan"),
            "episode_length": float(data["ep_len"].mean()) if n_ended else float("nan"),
            "sps": sps,
            **{f"sg_{k}": float(v.mean()) if n_ended else float("nan")
               for k, v in data["subgoals"].items()},
            **stats,
        }  # fmt: skip
        rows.append(row)
        for k, v in row.items():
            if k not in ("iteration", "global_step") and np.isfinite(v):
                group = "charts" if k in _CHART_KEYS else "losses"
                writer.add_scalar(f"{group}/{k}", v, global_step)
        if csv_file is not None:
            if csv_writer is None:
                csv_writer = csv.DictWriter(csv_file, fieldnames=CSV_FIELDS, restval="")
                csv_writer.writeheader()
            csv_writer.writerow(row)
            csv_file.flush()
        if bar is not None:
            bar.update(global_step - bar.n)
            bar.set_postfix(sps=f"{sps:,.0f}", success=f"{row['success_rate']:.2f}")

    # ---------------------------------------------------------------- world-model pre-training
    pre_iters = args.wm_pretrain_steps // batch_size if use_wm else 0
    for it in range(pre_iters):
        data = rollout(T)
        x, act, tgt = (
            flat(data["x"]),
            data["action"].reshape(-1),
            data["target"].reshape(batch_size, -1),
        )
        accs, losses = [], []
        for _ in range(args.update_epochs):
            for idx in torch.randperm(batch_size, device=device).split(minibatch):
                sub = idx[: args.wm_batch]
                h = agent.features({k: v[sub] for k, v in x.items()})
                loss, acc = wm_loss_and_accuracy(agent, h, act[sub], tgt[sub])
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
                losses.append(loss.item())
                accs.append(acc.item())
        copy_acc = float(copy_last_accuracy(x["tokens"], tgt))
        log_row(-pre_iters + it, data, {"wm_loss": float(np.mean(losses)),
                "wm_token_acc": accs[0], "copy_last_token_acc": copy_acc})  # fmt: skip

    # ---------------------------------------------------------------- PPO (+ world model)
    for it in range(num_iterations):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - it / num_iterations)
        data = rollout(T)
        with torch.no_grad():
            next_value = agent.value(agent.features(hist.inputs(obs))).squeeze(-1)
            adv = torch.zeros_like(data["reward"])
            last = torch.zeros(B, device=device)
            for t in reversed(range(T)):
                nv = next_value if t == T - 1 else data["value"][t + 1]
                nonterminal = 1.0 - data["done"][t]
                delta = data["reward"][t] + args.gamma * nv * nonterminal - data["value"][t]
                last = delta + args.gamma * args.gae_lambda * nonterminal * last
                adv[t] = last
            returns = adv + data["value"]
        x = flat(data["x"])
        b_act, b_logp = data["action"].reshape(-1), data["logp"].reshape(-1)
        b_adv, b_ret = adv.reshape(-1), returns.reshape(-1)
        b_tgt = data["target"].reshape(batch_size, -1)
        stats: dict[str, list[float]] = {k: [] for k in ("pg_loss", "v_loss", "entropy",
                                          "approx_kl", "wm_loss", "wm_token_acc")}  # fmt: skip
        for epoch in range(args.update_epochs):
            for idx in torch.randperm(batch_size, device=device).split(minibatch):
                h = agent.features({k: v[idx] for k, v in x.items()})
                dist, value = agent.policy_value(h, x["action_mask"][idx] if args.mask else None)
                logp = dist.log_prob(b_act[idx])
                ratio = (logp - b_logp[idx]).exp()
                mb_adv = b_adv[idx]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio, -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)
                ).mean()
                v_loss = 0.5 * ((value - b_ret[idx]) ** 2).mean()
                entropy = dist.entropy().mean()
                loss = pg_loss + args.vf_coef * v_loss - args.ent_coef * entropy
                if use_wm:
                    sub = slice(0, args.wm_batch)  # idx is already a random permutation
                    h_wm = h[sub].detach() if args.wm_detach else h[sub]
                    wm_loss, wm_acc = wm_loss_and_accuracy(
                        agent, h_wm, b_act[idx][sub], b_tgt[idx][sub]
                    )
                    loss = loss + args.wm_coef * wm_loss
                    stats["wm_loss"].append(wm_loss.item())
                    if epoch == 0 and not stats["wm_token_acc"]:
                        # First minibatch of the first epoch: not trained on yet (held out).
                        stats["wm_token_acc"].append(wm_acc.item())
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
                with torch.no_grad():
                    stats["approx_kl"].append(((ratio - 1) - (logp - b_logp[idx])).mean().item())
                stats["pg_loss"].append(pg_loss.item())
                stats["v_loss"].append(v_loss.item())
                stats["entropy"].append(entropy.item())
        summary = {k: float(np.mean(v)) for k, v in stats.items() if v}
        summary["copy_last_token_acc"] = float(copy_last_accuracy(x["tokens"], b_tgt))
        log_row(it, data, summary)
        if args.stop_success and _reached(rows, args.stop_success, 3):
            break
        if args.checkpoint_every and (it + 1) % args.checkpoint_every == 0:
            save_checkpoint(run_dir, agent, optimizer, args, global_step)

    # ---------------------------------------------------------------- wrap up
    if bar is not None:
        bar.close()
    path = save_checkpoint(run_dir, agent, optimizer, args, global_step)
    if csv_file is not None:
        csv_file.close()
    writer.close()
    envs.close()
    tail = [r for r in rows[-5:] if np.isfinite(r["success_rate"])]
    result = {
        "args": dataclasses.asdict(args),
        "global_step": global_step,
        "wall_s": time.time() - start,
        "final_success_rate": float(np.mean([r["success_rate"] for r in tail])) if tail else None,
        "checkpoint": str(path),
    }
    if args.eval_episodes:
        result["eval"] = {
            "train_set": evaluate(agent, args, device, "train"),
            "held_out": evaluate(agent, args, device, "held_out"),
        }
    (run_dir / "summary.json").write_text(json.dumps(result, indent=1))
    return result


def target_quality(
    scenario: str = "isp_bill_discount",
    num_envs: int = 256,
    train_steps: int = 400,
    seed: int = 0,
    eval_steps: int = 50,
    device: str = "cpu",
    **env_kwargs: Any,
) -> dict[str, float]:
    """The world-model target-quality check: train the world model (encoder + head, no policy
    loss) on transitions of a policy that mixes the oracle and random actions (so every phase
    of a call is visited), then compare its token accuracy on ``next_obs_target`` with the
    copy-the-last-observation baseline on held-out worlds (other seeds)."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    args = Args(scenario=scenario, num_envs=num_envs, **env_kwargs)
    envs = make_env(args, dev)
    c = envs.unwrapped.compiled
    agent = Agent(c.vocab_size, c.max_tokens, c.dims["F"], c.dims["N"], c.num_actions,
                  args.embed_dim, args.hidden_dim).to(dev)  # fmt: skip
    opt = torch.optim.Adam(agent.parameters(), lr=1e-3)
    gen = torch.Generator(device=dev).manual_seed(seed)

    def batch(obs: Any, hist: History) -> tuple[Any, dict[str, torch.Tensor], torch.Tensor, Any]:
        x = hist.inputs(obs)
        oracle = envs.unwrapped.oracle_action()
        rand = torch.randint(0, c.num_actions, (num_envs,), device=dev, generator=gen)
        act = torch.where(torch.rand(num_envs, device=dev, generator=gen) < 0.5, oracle, rand)
        nxt, _, term, trunc, info = envs.step(act)
        hist.update(obs, act, term | trunc)
        return nxt, x, act, info["next_obs_target"]

    hist = History(num_envs, c.max_tokens, c.num_actions, dev)
    obs, _ = envs.reset(seed=seed)
    for _ in range(train_steps):
        obs, x, act, tgt = batch(obs, hist)
        loss, _ = wm_loss_and_accuracy(agent, agent.features(x), act, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Held out: other worlds (seeds far from the training ones).
    hist = History(num_envs, c.max_tokens, c.num_actions, dev)
    obs, _ = envs.reset(seed=seed + 10_000_000)
    wm_hits = copy_hits = filled_total = 0.0
    with torch.no_grad():
        for _ in range(eval_steps):
            obs, x, act, tgt = batch(obs, hist)
            logits = agent.world_model_logits(agent.features(x), act)
            filled = (tgt != 0).float()
            wm_hits += float(((logits.argmax(-1) == tgt.long()).float() * filled).sum())
            copy_hits += float(((x["tokens"] == tgt).float() * filled).sum())
            filled_total += float(filled.sum())
    envs.close()
    return {
        "scenario": scenario,
        "train_transitions": train_steps * num_envs,
        "world_model_token_acc": wm_hits / filled_total,
        "copy_last_token_acc": copy_hits / filled_total,
    }


def save_checkpoint(run_dir: Path, agent: Agent, optimizer: Any, args: Args, step: int) -> Path:
    """Weights, optimizer state and args, enough to resume or evaluate."""
    path = run_dir / "checkpoint.pt"
    torch.save(
        {"agent": agent.state_dict(), "optimizer": optimizer.state_dict(),
         "args": dataclasses.asdict(args), "global_step": step},
        path,
    )  # fmt: skip
    return path


if __name__ == "__main__":
    print(json.dumps(train(parse_args()), indent=1))
