"""Offline world-model pre-training from a Minari dataset recorded by ``envgym record``.

Reward-free: the model learns ``(obs, action) -> next_obs_target`` from the dataset's stored
transitions and never sees a reward (the "Early Experience" setting: learn the world from logged
interaction before any reinforcement). It is scored on **held-out episodes** (the last
``--holdout`` share of the dataset's episodes, other seeds than the training ones) against two
baselines that need no model:

- **copy last**: predict the target encoding of the current observation
  (``envs.target_from_obs(obs)``: what the world showed before the action);
- **marginal**: phone, the most frequent token per target position in the training targets;
  robot, the mean training target.

Phone targets are token ids: the score is token accuracy on the positions the true target fills
(nonzero), the metric of ``docs/results.md``. Robot targets are physical states: the score is MSE
in the target's own units. The model type follows the target's dtype (integers: tokens).

The phone model is a position-wise decoder: the current observation's tokens (embedded), their
mean, the action (embedded) and the observation's other fields go through an MLP into one
context vector; each target position reads that vector, its position embedding and the current
token at that position. The robot model is an MLP over the normalised ``(obs, action)`` that
regresses the normalised change from copy-last. Both are small and train in minutes on a CPU.

Run (records the dataset first when it is missing; one command per family):

    python baselines/offline_world_model.py --dataset envgym/phone-mixed-v0 \\
        --record-id envgym/Phone-v0 --record-policy mixed --record-episodes 1000 --epochs 4 \\
        --json baselines/results/offline_world_model/phone.json
    python baselines/offline_world_model.py --dataset envgym/robot-reach-mixed-v0 \\
        --record-id envgym/Robot-Reach-v0 --record-policy mixed --record-episodes 400 --epochs 8 \\
        --json baselines/results/offline_world_model/robot.json

(figures: docs/results.md, "Offline world model from a recorded dataset")
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import shlex
import sys
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
    dataset: str = "envgym/phone-mixed-v0"
    """Minari dataset id (under $MINARI_DATASETS_PATH, default ~/.minari/datasets)"""
    record_id: str = ""
    """if set and the dataset is missing or short: record it first from this env id"""
    record_policy: str = "mixed"
    """policy of that recording (oracle, random, mixed[:P], module:callable)"""
    record_episodes: int = 2000
    """episodes of that recording"""
    record_num_envs: int = 32
    """worlds of that recording"""
    record_seed: int = 0
    """seed of that recording"""
    holdout: float = 0.2
    """share of the episodes (the last ones) held out for scoring"""
    epochs: int = 8
    """passes over the training transitions"""
    batch_size: int = 256
    """transitions per gradient step"""
    lr: float = 1e-3
    """Adam learning rate"""
    hidden: int = 256
    """width of the MLPs"""
    embed: int = 64
    """token and action embedding width (phone)"""
    pad_weight: float = 0.05
    """weight of padding positions in the phone token loss"""
    seed: int = 0
    """torch seed"""
    threads: int = 1
    """torch threads"""
    json: str = ""
    """write the report here as JSON"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Command-line flags from the ``Args`` fields (``--epochs 4``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        kind = {"int": int, "float": float, "str": str}[str(f.type)]
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)
    return Args(**vars(parser.parse_args(argv)))


# ======================================================================== plumbing: the data
def load_transitions(args: Args) -> tuple[dict[str, Any], Any]:
    """The dataset's transitions as tensors, split by episode into train and held-out."""
    import minari

    import envgym  # noqa: F401  (registers the ids)
    from envgym.datasets import dataset_path, record

    have = (dataset_path(args.dataset) / "data" / "metadata.json").exists()
    if args.record_id and (
        not have or minari.load_dataset(args.dataset).total_episodes < args.record_episodes
    ):
        record(
            args.record_id,
            args.dataset,
            policy=args.record_policy,
            episodes=args.record_episodes,
            num_envs=args.record_num_envs,
            seed=args.record_seed,
        )
    ds = minari.load_dataset(args.dataset)
    settings = ds.storage.metadata["envgym_recording"]
    envs = gym.make_vec(
        settings["env_id"], num_envs=1, vectorization_mode="vector_entry_point",
        **settings["env_kwargs"],
    )  # fmt: skip
    episodes = list(ds.iterate_episodes())
    n_hold = max(1, round(len(episodes) * args.holdout))
    if len(episodes) - n_hold < 1:
        raise ValueError(f"{len(episodes)} episodes are too few to hold {n_hold} out")

    def gather(eps: list[Any]) -> dict[str, Any]:
        def obs_rows(o: Any) -> Any:  # the T observations each action was taken in
            return {k: v[:-1] for k, v in o.items()} if isinstance(o, dict) else o[:-1]

        obs = [obs_rows(e.observations) for e in eps]
        if isinstance(obs[0], dict):
            cat: Any = {k: torch.as_tensor(np.concatenate([o[k] for o in obs])) for k in obs[0]}
        else:
            cat = torch.as_tensor(np.concatenate(obs))
        return {
            "obs": cat,
            "action": torch.as_tensor(np.concatenate([e.actions for e in eps])),
            "target": torch.as_tensor(np.concatenate([e.infos["next_obs_target"] for e in eps])),
            # copy last: the target encoding of the observation the action was taken in
            "copy": envs.unwrapped.target_from_obs(cat).cpu(),
        }

    data = {
        "train": gather(episodes[:-n_hold]),
        "test": gather(episodes[-n_hold:]),
        "episodes": (len(episodes) - n_hold, n_hold),
        "env_id": settings["env_id"],
        "policy": settings["policy"],
    }
    return data, envs


def flat_features(obs: Any, skip: str | None = None) -> torch.Tensor:
    """Every observation field as float features (``skip``: one left out, e.g. tokens)."""
    if isinstance(obs, dict):
        parts = [obs[k].reshape(len(obs[k]), -1).float() for k in sorted(obs) if k != skip]
        return torch.cat(parts, dim=1) if parts else torch.zeros(len(next(iter(obs.values()))), 0)
    return obs.reshape(len(obs), -1).float()


def action_features(action: torch.Tensor, space: gym.Space) -> torch.Tensor:
    if isinstance(space, gym.spaces.Discrete):
        return F.one_hot(action.long().reshape(-1), int(space.n)).float()
    return action.reshape(len(action), -1).float()


# ======================================================================== the models
class TokenWorldModel(nn.Module):
    """Per target position: logits over the vocabulary from one context vector, the position
    and the current token there."""

    def __init__(self, vocab: int, length: int, n_actions: int, n_feat: int, a: Args) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, a.embed)
        self.act = nn.Embedding(n_actions, a.embed)
        self.pos = nn.Parameter(torch.randn(length, a.embed) * 0.02)
        self.ctx = nn.Sequential(
            nn.Linear(2 * a.embed + n_feat, a.hidden), nn.GELU(),
            nn.Linear(a.hidden, a.embed),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Linear(3 * a.embed, a.hidden), nn.GELU(), nn.Linear(a.hidden, vocab)
        )

    def forward(self, cur: torch.Tensor, action: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        e = self.tok(cur.long())  # [N, L, d]
        ctx = self.ctx(torch.cat([e.mean(1), self.act(action.long().reshape(-1)), feat], dim=1))
        n, length, d = e.shape
        h = torch.cat([ctx[:, None].expand(n, length, d), self.pos[None].expand(n, -1, -1), e], 2)
        return self.head(h)  # [N, L, vocab]


class StateWorldModel(nn.Module):
    """An MLP from normalised (obs, action) to the normalised change from copy-last."""

    def __init__(self, n_in: int, n_out: int, a: Args) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, a.hidden), nn.GELU(),
            nn.Linear(a.hidden, a.hidden), nn.GELU(),
            nn.Linear(a.hidden, n_out),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ======================================================================== training + scoring
def run(args: Args) -> dict[str, Any]:
    """Train on the training episodes, score on the held-out ones; returns the report."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data, envs = load_transitions(args)
    tr, te = data["train"], data["test"]
    space = envs.single_action_space
    tokens = not tr["target"].dtype.is_floating_point
    n = len(tr["target"])
    if tokens:
        vocab = int(np.max(envs.unwrapped.single_target_space.high)) + 1
        length = tr["target"].shape[1]
        skip = "tokens" if isinstance(tr["obs"], dict) else None
        feat_tr, feat_te = flat_features(tr["obs"], skip), flat_features(te["obs"], skip)
        mu, sd = feat_tr.mean(0), feat_tr.std(0) + 1e-3
        feat_tr, feat_te = (feat_tr - mu) / sd, (feat_te - mu) / sd
        model: nn.Module = TokenWorldModel(vocab, length, int(space.n), feat_tr.shape[1], args)
    else:
        x_tr = torch.cat([flat_features(tr["obs"]), action_features(tr["action"], space)], 1)
        x_te = torch.cat([flat_features(te["obs"]), action_features(te["action"], space)], 1)
        x_mu, x_sd = x_tr.mean(0), x_tr.std(0) + 1e-6
        d_tr = tr["target"] - tr["copy"]
        d_mu, d_sd = d_tr.mean(0), d_tr.std(0) + 1e-6
        model = StateWorldModel(x_tr.shape[1], d_tr.shape[1], args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    losses = []
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, args.batch_size):
            b = perm[i : i + args.batch_size]
            if tokens:
                logits = model(tr["copy"][b], tr["action"][b], feat_tr[b])
                y = tr["target"][b].long()
                ce = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # [N, L]
                # Padding (token 0) fills most positions; down-weight it so the model learns
                # the words rather than the length alone.
                w = torch.where(y != 0, 1.0, args.pad_weight)
                loss = (ce * w).sum() / w.sum()
            else:
                pred = model((x_tr[b] - x_mu) / x_sd)
                loss = F.mse_loss(pred, (d_tr[b] - d_mu) / d_sd)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())

    # ---- scoring on held-out episodes
    model.eval()
    with torch.no_grad():
        y = te["target"]
        if tokens:
            preds = []
            for i in range(0, len(y), 512):
                s = slice(i, i + 512)
                preds.append(model(te["copy"][s], te["action"][s], feat_te[s]).argmax(-1))
            pred = torch.cat(preds)
            marginal = torch.mode(tr["target"], dim=0).values  # most frequent token per position
            filled = y != 0

            def acc(p: torch.Tensor) -> float:
                return float(((p == y) & filled).sum() / filled.sum())

            scores = {
                "metric": "token accuracy on the positions the true target fills",
                "world_model": acc(pred),
                "copy_last": acc(te["copy"].to(y.dtype)),
                "marginal": acc(marginal[None].expand_as(y)),
                "changed_share": float((y != te["copy"]).any(1).float().mean()),
            }
        else:
            pred = te["copy"] + model((x_te - x_mu) / x_sd) * d_sd + d_mu

            def mse(p: torch.Tensor) -> float:
                return float(((p - y) ** 2).mean())

            scores = {
                "metric": "MSE of next_obs_target in its own units",
                "world_model": mse(pred),
                "copy_last": mse(te["copy"]),
                "marginal": mse(tr["target"].mean(0)[None].expand_as(y)),
                "changed_share": float((y != te["copy"]).any(1).float().mean()),
            }
    envs.close()
    return {
        "dataset": args.dataset,
        "env_id": data["env_id"],
        "policy": data["policy"],
        "train_episodes": data["episodes"][0],
        "holdout_episodes": data["episodes"][1],
        "train_transitions": n,
        "holdout_transitions": len(te["target"]),
        **scores,
        "final_train_loss": float(np.mean(losses[-20:])) if losses else float("nan"),
        "gradient_steps": len(losses),
        "seconds": time.perf_counter() - t0,
        "args": dataclasses.asdict(args),
        "command": shlex.join(["python", "baselines/offline_world_model.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, torch threads {args.threads}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    report = run(args)
    print(
        f"{report['env_id']} ({report['policy']}), {report['train_transitions']} train / "
        f"{report['holdout_transitions']} held-out transitions; {report['metric']}: world model "
        f"{report['world_model']:.4g}, copy last {report['copy_last']:.4g}, marginal "
        f"{report['marginal']:.4g}"
    )
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
