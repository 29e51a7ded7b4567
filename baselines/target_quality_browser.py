"""World-model target-quality check for the browser family: are ``next_obs_target`` tokens
predictable from ``(obs, action)``, and not trivially constant?

Transitions come from browser skill tasks in real Chromium, acting with the task's oracle
(probability ``--oracle-prob``, as a slot of ``envgym.wrappers.BrowserSlotActions``) or a
uniformly random slot (any interactive element, or an out-of-range slot whose command the env
refuses). Each transition is ``(obs tokens, the command sent, next_obs_target tokens)``. A small
token predictor is trained on transitions of training seeds and scored on transitions of
held-out seeds against **copy the last observation** (predict ``obs tokens`` for the target), by
token accuracy over the positions the true target fills. To show the targets are not constant,
the report also has the share of transitions whose target differs from the observation, the
number of distinct targets, and a per-position most-frequent-token baseline fitted on the
training targets.

The predictor (``TokenPredictor``) is a small pointer-generator: per position, the token's
embedding plus what the action says about the page (its op; the role of the element it names, or
that it names none; a mask over that element's tree line and a flag for the positions after that
line's start) go through a stack of dilated 1-D convolutions with one prefix-sum layer (so a
position knows what happened to its left, e.g. an inserted ``[checked]`` that shifts the rest of
the tree); each position then mixes copying an observation token from a window around it with
generating one from the vocabulary. It starts as copy-the-last-observation and learns the edits.
It sees what a world model would see, the observation's tokens and the action, and nothing of
the task's hidden state.

Run (one command):

    python baselines/target_quality_browser.py --out baselines/results/browser_target_quality
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class Args:
    tasks: str = "ClickButton,Checkboxes"
    """comma-separated browser skill tasks to collect transitions from"""
    difficulty: int = 1
    """task difficulty (0..4)"""
    num_envs: int = 8
    """Chromium pages stepped together while collecting"""
    max_tokens: int = 768
    """token length of observations and targets (the env's ``max_tokens``)"""
    max_slots: int = 16
    """slots of the random policy (``BrowserSlotActions``)"""
    oracle_prob: float = 0.5
    """probability that a world takes the oracle's action (else a random slot)"""
    train_steps: int = 150
    """batched steps collected per task on the training seeds"""
    eval_steps: int = 50
    """batched steps collected per task on the held-out seeds"""
    seed: int = 0
    """seed of the training worlds, the policy's coin flips and the predictor"""
    eval_seed: int = 10_000_000
    """base seed of the held-out worlds"""
    iterations: int = 400
    """predictor training iterations"""
    batch_size: int = 16
    """transitions per training iteration"""
    learning_rate: float = 2e-3
    """Adam learning rate"""
    channels: int = 48
    """width of the convolution stack"""
    copy_window: int = 40
    """the predictor copies observation tokens from up to this many positions either side"""
    threads: int = 1
    """CPU threads torch may use; 0 keeps torch's default"""
    out: str = ""
    """folder for ``target_quality.json`` (nothing is written when empty)"""
    data_cache: str = ""
    """if set, load the collected transitions from this ``.pt`` file when it exists, else
    collect them and save them there (to re-train the predictor without the browser)"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Command-line flags from the ``Args`` fields (``--train-steps 100``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        kind = {"int": int, "float": float, "str": str}[str(f.type)]
        parser.add_argument(flag, type=kind, default=f.default)
    return Args(**vars(parser.parse_args(argv)))


# ======================================================================== plumbing: the env
def make_env(args: Args, task: str) -> Any:
    """The browser vector env of ``task`` with slot actions (for the random policy)."""
    import envgym  # noqa: F401  (registers the envgym/... ids)
    from envgym.browser.ids import browser_id
    from envgym.wrappers import BrowserSlotActions

    envs = gym.make_vec(
        browser_id(task),
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        difficulty=args.difficulty,
        max_tokens=args.max_tokens,
        device="cpu",
    )
    return BrowserSlotActions(envs, max_slots=args.max_slots)


def collect(args: Args, task: str, steps: int, seed: int) -> dict[str, Any]:
    """``steps`` batched steps of the oracle/random mix: obs tokens, commands, targets and
    whether each action came from the oracle."""
    envs = make_env(args, task)
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    obs_tok, targets, commands, from_oracle = [], [], [], []
    try:
        for _ in range(steps):
            assert envs.raw_obs is not None
            tokens = envs.raw_obs["tokens"].clone()
            oracle = envs.oracle_action().numpy()  # the oracle's slot, -1 if it has none
            random_slots = rng.integers(0, args.max_slots, size=args.num_envs)
            use_oracle = (rng.random(args.num_envs) < args.oracle_prob) & (oracle >= 0)
            _, _, _, _, info = envs.step(np.where(use_oracle, oracle, random_slots))
            cmds = list(info["command"])
            obs_tok.append(tokens)
            targets.append(info["next_obs_target"].clone())
            commands.extend(str(c) if isinstance(c, str) else json.dumps(c) for c in cmds)
            from_oracle.extend(bool(u) for u in use_oracle)
    finally:
        envs.close()
    return {
        "obs": torch.cat(obs_tok),
        "target": torch.cat(targets),
        "command": commands,
        "oracle": torch.tensor(from_oracle),
        "task": [task] * len(commands),
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate collections of several tasks."""
    out: dict[str, Any] = {}
    for k in parts[0]:
        if torch.is_tensor(parts[0][k]):
            out[k] = torch.cat([p[k] for p in parts])
        else:
            out[k] = [x for p in parts for x in p[k]]
    return out


# ======================================================================== the action's inputs
OPS = ("click", "check", "uncheck", "fill", "select", "other")
ROLE_GROUPS = ("button", "link", "tab", "toggle", "text", "choice", "other", "none")
_ROLE_OF = {
    "button": "button", "link": "link", "tab": "tab", "checkbox": "toggle", "radio": "toggle",
    "switch": "toggle", "textbox": "text", "searchbox": "text", "spinbutton": "text",
    "combobox": "choice", "listbox": "choice",
}  # fmt: skip
NUM_GLOBAL = len(OPS) + len(ROLE_GROUPS)
NUM_LOCAL = 2  # the acted line's mask, positions from that line's start on


def action_inputs(obs_tokens: torch.Tensor, command: str) -> tuple[np.ndarray, np.ndarray]:
    """What the predictor is told about one action on one page: global features (op one-hot,
    role group of the element the command names, or ``none``) and per-position features (the
    mask of that element's tree line, and the flag of positions from that line's start on)."""
    arr = obs_tokens.cpu().numpy()
    text = bytes((arr[arr > 0] - 1).astype(np.uint8).tolist()).decode("ascii", "replace")
    op = command.split(" ", 1)[0].strip('{"')
    m = re.match(r"^\w+ (e\d+)", command) or re.search(r'"ref": "(e\d+)"', command)
    ref = m.group(1) if m else None
    glob = np.zeros(NUM_GLOBAL, dtype=np.float32)
    glob[OPS.index(op) if op in OPS else OPS.index("other")] = 1.0
    local = np.zeros((NUM_LOCAL, arr.shape[0]), dtype=np.float32)
    role = "none"
    if ref is not None:
        hit = re.search(rf"^[ ]*- (\w+)[^\n]*\[ref={ref}\][^\n]*$", text, flags=re.MULTILINE)
        if hit:
            role = _ROLE_OF.get(hit.group(1), "other")
            start, end = hit.start(), min(hit.end(), arr.shape[0])
            local[0, start:end] = 1.0
            local[1, start:] = 1.0
    glob[len(OPS) + ROLE_GROUPS.index(role)] = 1.0
    return glob, local


def featurize(data: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Action inputs of every transition: ``[n, NUM_GLOBAL]`` and ``[n, NUM_LOCAL, L]``."""
    pairs = [action_inputs(o, c) for o, c in zip(data["obs"], data["command"], strict=True)]
    return (
        torch.from_numpy(np.stack([g for g, _ in pairs])),
        torch.from_numpy(np.stack([loc for _, loc in pairs])),
    )


# ======================================================================== the predictor
class TokenPredictor(nn.Module):
    """``(obs tokens, action inputs) -> log-probabilities [B, L, vocab]`` of the next target's
    tokens: a pointer-generator over a dilated-convolution encoder.

    At each position the model mixes two distributions with a learned gate: *copy* (attention
    over the observation's tokens within ``copy_window`` positions either side, content plus a
    learned bias per offset, so "the token 19 to my left" is one offset to learn) and
    *generate* (a softmax over the vocabulary, for text the page did not show before). The
    encoder is a stack of dilated 1-D convolutions, conditioned on the action's global inputs,
    with one prefix-sum layer so that a position knows what happened to its left.
    """

    def __init__(
        self, vocab: int = 257, channels: int = 64, embed: int = 32, copy_window: int = 40,
        key_dim: int = 16,
    ) -> None:  # fmt: skip
        super().__init__()
        self.vocab, self.window, self.key_dim = vocab, copy_window, key_dim
        self.embed = nn.Embedding(vocab, embed)
        self.inp = nn.Conv1d(embed + NUM_LOCAL, channels, 1)
        self.glob = nn.Linear(NUM_GLOBAL, channels)
        self.dilations = (1, 2, 4, 8, 16, 32, 64)
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, 3, padding=d, dilation=d) for d in self.dilations
        )
        self.film = nn.ModuleList(nn.Linear(NUM_GLOBAL, channels) for _ in self.dilations)
        self.prefix_in = nn.Conv1d(channels, channels, 1)
        self.prefix_out = nn.Conv1d(channels, channels, 1)
        self.generate = nn.Conv1d(channels, vocab, 1)
        self.query = nn.Conv1d(channels, key_dim, 1)
        self.key = nn.Conv1d(channels, key_dim, 1)
        # Start as copy-the-last-observation (offset 0, gate towards copying) and learn edits.
        bias = torch.zeros(2 * copy_window + 1)
        bias[copy_window] = 3.0
        self.offset_bias = nn.Parameter(bias)
        self.gate = nn.Conv1d(channels, 1, 1)
        nn.init.constant_(self.gate.bias, 2.0)

    def forward(
        self, tokens: torch.Tensor, glob: torch.Tensor, local: torch.Tensor
    ) -> torch.Tensor:
        tokens = tokens.long()
        x = torch.cat([self.embed(tokens).transpose(1, 2), local], dim=1)
        h = self.inp(x) + self.glob(glob)[:, :, None]
        for i, (conv, film) in enumerate(zip(self.convs, self.film, strict=True)):
            h = h + F.gelu(conv(h) + film(glob)[:, :, None])
            if i == len(self.convs) // 2:
                # Prefix sum: every position learns what happened anywhere to its left.
                events = torch.sigmoid(self.prefix_in(h))
                h = h + self.prefix_out(torch.tanh(events.cumsum(-1) / 8.0))
        w, length = self.window, tokens.shape[1]
        # Copy: attention over the observation's tokens at offsets -w..w of each position.
        keys = F.pad(self.key(h), (w, w)).unfold(2, 2 * w + 1, 1)  # [B, d, L, 2w+1]
        scores = (self.query(h)[..., None] * keys).sum(1) / self.key_dim**0.5  # [B, L, 2w+1]
        ids = F.pad(tokens, (w, w), value=-1).unfold(1, 2 * w + 1, 1)  # [B, L, 2w+1]
        scores = (scores + self.offset_bias).masked_fill(ids < 0, float("-inf"))
        attn = scores.softmax(-1)
        copy = torch.zeros(tokens.shape[0], length, self.vocab, device=tokens.device)
        copy.scatter_add_(2, ids.clamp(min=0), attn)
        gate = torch.sigmoid(self.gate(h)).transpose(1, 2)  # [B, L, 1]: share of copying
        gen = self.generate(h).transpose(1, 2).softmax(-1)
        return torch.log(gate * copy + (1 - gate) * gen + 1e-9)


def train_predictor(
    args: Args, train: dict[str, Any], glob: torch.Tensor, local: torch.Tensor
) -> TokenPredictor:
    """Cross-entropy on every position that the observation or the target fills."""
    torch.manual_seed(args.seed)
    model = TokenPredictor(channels=args.channels, copy_window=args.copy_window)
    opt = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iterations)
    gen = torch.Generator().manual_seed(args.seed)
    n = train["obs"].shape[0]
    for it in range(args.iterations):
        idx = torch.randint(0, n, (args.batch_size,), generator=gen)
        length = _used_length(train["obs"][idx], train["target"][idx])
        obs, tgt = train["obs"][idx, :length], train["target"][idx, :length].long()
        logp = model(obs, glob[idx], local[idx, :, :length])
        mask = ((tgt != 0) | (obs != 0)).float()
        ce = F.nll_loss(logp.reshape(-1, logp.shape[-1]), tgt.reshape(-1), reduction="none")
        loss = (ce * mask.reshape(-1)).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 50 == 0 or it == args.iterations - 1:
            print(f"iteration {it}: loss {loss.item():.4f}", flush=True)
    return model


def _used_length(*tokens: torch.Tensor) -> int:
    """Positions up to the last filled one of any row, rounded up to 64: the rest is padding
    in both the input and the target, so the convolutions skip it."""
    filled = torch.zeros(tokens[0].shape[1], dtype=torch.bool)
    for t in tokens:
        filled |= (t != 0).any(0)
    last = int(torch.nonzero(filled).max()) + 1 if bool(filled.any()) else 1
    return min(tokens[0].shape[1], -(-last // 64) * 64)


# ======================================================================== scoring
def token_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Share of the target's filled positions where ``pred`` has the target's token."""
    filled = target != 0
    return float(((pred == target) & filled).sum()) / max(int(filled.sum()), 1)


def score(
    model: TokenPredictor, test: dict[str, Any], glob: torch.Tensor, local: torch.Tensor,
    mode: torch.Tensor,
) -> dict[str, Any]:  # fmt: skip
    """Accuracies of the predictor, copy-last and the per-position mode, overall and by
    subset (task, oracle/random action, transitions whose target differs from the obs)."""
    tgt, obs = test["target"].long(), test["obs"].long()
    pred = torch.zeros_like(tgt)
    with torch.no_grad():
        for i in range(0, obs.shape[0], 64):
            j = slice(i, i + 64)
            length = _used_length(obs[j], tgt[j])
            logits = model(obs[j, :length], glob[j], local[j, :, :length])
            pred[j, :length] = logits.argmax(-1)
    changed = (tgt != obs).any(dim=1)
    tasks = np.array(test["task"])
    subsets: dict[str, torch.Tensor] = {"all": torch.ones_like(changed)}
    for t in sorted(set(test["task"])):
        subsets[f"task={t}"] = torch.from_numpy(tasks == t)
    subsets["action=oracle"] = test["oracle"]
    subsets["action=random"] = ~test["oracle"]
    subsets["target!=obs"] = changed
    out: dict[str, Any] = {}
    for name, sel in subsets.items():
        out[name] = {
            "transitions": int(sel.sum()),
            "predictor_token_acc": token_accuracy(pred[sel], tgt[sel]),
            "copy_last_token_acc": token_accuracy(obs[sel], tgt[sel]),
            "position_mode_token_acc": token_accuracy(mode.expand_as(tgt)[sel], tgt[sel]),
            "predictor_exact": float((pred[sel] == tgt[sel]).all(dim=1).float().mean()),
            "copy_last_exact": float((obs[sel] == tgt[sel]).all(dim=1).float().mean()),
        }
    return out


def run(args: Args) -> dict[str, Any]:
    """Collect, train, score; write ``target_quality.json`` to ``args.out`` when set."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.time()
    tasks = [t for t in args.tasks.split(",") if t]
    if args.data_cache and Path(args.data_cache).exists():
        train, test = torch.load(args.data_cache)
    else:
        train = merge([collect(args, t, args.train_steps, args.seed) for t in tasks])
        test = merge([collect(args, t, args.eval_steps, args.eval_seed) for t in tasks])
        if args.data_cache:
            torch.save((train, test), args.data_cache)
    collect_s = time.time() - start
    g_train, l_train = featurize(train)
    g_test, l_test = featurize(test)
    model = train_predictor(args, train, g_train, l_train)
    # The per-position most frequent target token of the training split.
    onehot = F.one_hot(train["target"].long(), 257).sum(0)
    mode = onehot.argmax(-1)[None, :]
    scores = score(model, test, g_test, l_test, mode)
    tgt = test["target"]
    result = {
        "args": dataclasses.asdict(args),
        "train_transitions": int(train["obs"].shape[0]),
        "test_transitions": int(tgt.shape[0]),
        "test_distinct_targets": len({bytes(t.numpy().tobytes()) for t in tgt}),
        "test_share_target_differs_from_obs": float((tgt != test["obs"]).any(dim=1).float().mean()),
        "collect_s": collect_s,
        "total_s": time.time() - start,
        "scores": scores,
        "world_model_token_acc": scores["all"]["predictor_token_acc"],
        "copy_last_token_acc": scores["all"]["copy_last_token_acc"],
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "target_quality.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    print(json.dumps(run(parse_args()), indent=1))
