"""PPO + world model on envgym's batched robot engine (Robot-Reach), in one file (CleanRL style).

A shared encoder (an MLP over the normalised observation) feeds three heads: a Gaussian policy
over the 7 joint/gripper targets, the value, and a **world model** that predicts the
transition's ``info["next_obs_target"]`` (the next physical state: arm joints and velocities,
fingers, grip position) from ``(features, action)``. The world model regresses the *normalised
change* of the physical state, ``(next_obs_target - obs[:17] - mean) / std`` with running
statistics, so "copy the last observation" is the prediction 0 and its loss is the baseline the
world model has to beat. The world-model loss is an auxiliary objective on the encoder
(``--wm-coef 0`` turns it off: plain PPO with the same network and the same env steps);
``--wm-pretrain-steps N`` adds a reward-free pre-training phase on the initial policy's rollouts
whose env steps count toward ``--total-timesteps``; ``--curiosity-coef c`` adds the world
model's surprise on each transition to the reward.

Run (one command; CUDA when present, the physics always on CPU threads):

    python baselines/ppo_world_model_robot.py --total-timesteps 1000000

TensorBoard scalars and the checkpoint go under ``--out-dir/<exp_name>_s<seed>``; ``--csv``
writes one row per PPO iteration (success rate of the episodes that ended, world-model loss
against the copy-the-last-observation loss, env-steps/s).
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
from torch import nn

from envgym.core import keys


@dataclass
class Args:
    exp_name: str = "ppo_world_model_robot"
    """name of this experiment (the run directory is ``<out_dir>/<exp_name>_s<seed>``)"""
    seed: int = 1
    """seed of the torch RNG and of the envs (world i is seeded ``seed * 100_000 + i``)"""
    device: str = "auto"
    """torch device of the networks and the env's tensors: ``auto`` (CUDA when present),
    ``cpu``, ``cuda`` (the MuJoCo CPU backend steps the physics on CPU threads either way)"""
    threads: int = 1
    """CPU threads torch may use (``torch.set_num_threads``); 0 keeps torch's default"""
    physics_threads: int = 1
    """MuJoCo threads of the CPU backend's rollout pool (0: every CPU this process may use)"""
    out_dir: str = "runs"
    """where TensorBoard logs and checkpoints go"""
    csv: str = ""
    """if set, write one CSV row per iteration to this path"""
    progress: bool = True
    """show a progress bar with env-steps/s"""

    # env
    env_id: str = "envgym/Robot-Reach-v0"
    """robot task id (the world model's target is the first ``target_size`` obs entries)"""
    num_envs: int = 64
    """number of worlds stepped together by the batched engine"""

    # algorithm
    total_timesteps: int = 1_000_000
    """env steps in all (the world-model pre-training phase included)"""
    num_steps: int = 32
    """rollout length per world between updates"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over the run"""
    gamma: float = 0.97
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation"""
    num_minibatches: int = 4
    """minibatches per epoch"""
    update_epochs: int = 5
    """epochs over each rollout"""
    clip_coef: float = 0.2
    """PPO's surrogate clipping coefficient"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """gradient clipping norm"""
    hidden_dim: int = 256
    """width of the shared encoder and of the world model's hidden layer"""
    init_log_std: float = -0.5
    """initial log standard deviation of the Gaussian policy (state-independent, learned)"""
    norm_obs: bool = True
    """normalise observations with running mean/std (clipped to +-10)"""
    norm_reward: bool = True
    """scale rewards by the running std of the discounted return (as Gymnasium's
    ``NormalizeReward``)"""

    # world model
    wm_coef: float = 1.0
    """weight of the world-model loss in the PPO update (0 turns the world model off)"""
    wm_pretrain_steps: int = 0
    """env steps of reward-free world-model pre-training on the initial policy's rollouts"""
    wm_detach: bool = False
    """stop the world-model gradient at the encoder (the world model then only reads the
    policy's features; an ablation of the auxiliary objective)"""
    curiosity_coef: float = 0.0
    """weight of an intrinsic reward per step: the world model's error on the transition over
    its running mean (~1 on average); 0 turns it off; needs ``wm_coef > 0``"""

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
def make_env(args: Args, device: torch.device) -> Any:
    """The batched robot engine (MuJoCo on CPU threads), tensors on ``device``."""
    import envgym  # noqa: F401  (registers the envgym/... ids)

    return gym.make_vec(
        args.env_id,
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        backend="cpu",
        device=str(device),
        num_threads=args.physics_threads or None,
    )


class RunningMeanStd(nn.Module):
    """Running mean and variance over batches (Chan et al.'s parallel update), kept as buffers
    so they are saved in the checkpoint with the weights."""

    def __init__(self, shape: tuple[int, ...], device: torch.device) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, device=device))
        self.register_buffer("var", torch.ones(shape, device=device))
        self.register_buffer("count", torch.tensor(1e-4, device=device))

    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).double()
        b_mean, b_var, b_count = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean += (delta * b_count / total).float()
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var.copy_((m2 / total).float())
        self.count.fill_(float(total))

    def normalize(self, x: torch.Tensor, clip: float = 10.0) -> torch.Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + 1e-8)).clamp(-clip, clip)


# ======================================================================== algorithm: networks
class Agent(nn.Module):
    """Shared encoder; Gaussian policy, value and world-model heads.

    The world model maps ``(features, action)`` to the normalised change of the physical state
    (the ``target_dim`` entries of ``next_obs_target``).
    """

    def __init__(
        self, obs_dim: int, act_dim: int, target_dim: int, hidden_dim: int, init_log_std: float
    ) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            _layer(obs_dim, hidden_dim), nn.Tanh(), _layer(hidden_dim, hidden_dim), nn.Tanh()
        )
        self.policy_mean = _layer(hidden_dim, act_dim, std=0.01)
        self.policy_log_std = nn.Parameter(torch.full((act_dim,), init_log_std))
        self.value = _layer(hidden_dim, 1, std=1.0)
        self.wm = nn.Sequential(
            _layer(hidden_dim + act_dim, hidden_dim), nn.ELU(), _layer(hidden_dim, target_dim)
        )

    def features(self, obs_norm: torch.Tensor) -> torch.Tensor:
        return self.encoder(obs_norm)

    def policy_value(self, h: torch.Tensor) -> tuple[torch.distributions.Normal, torch.Tensor]:
        mean = self.policy_mean(h)
        dist = torch.distributions.Normal(mean, self.policy_log_std.exp().expand_as(mean))
        return dist, self.value(h).squeeze(-1)

    def predict_delta(self, h: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The world model: predicted normalised ``next_obs_target - obs[:target_dim]``."""
        return self.wm(torch.cat([h, action.clamp(-1.0, 1.0)], dim=-1))


def _layer(n_in: int, n_out: int, std: float = float(np.sqrt(2))) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


# ======================================================================== algorithm: training
_CHART_KEYS = ("success_rate", "episode_return", "episode_length", "episodes", "sps")
CSV_FIELDS = (
    "iteration", "global_step", "episodes", "success_rate", "episode_return", "episode_length",
    "sps", "pg_loss", "v_loss", "entropy", "approx_kl", "wm_loss", "copy_last_loss",
)  # fmt: skip
"""Columns of ``--csv`` (pre-training rows leave the PPO ones empty). ``wm_loss`` and
``copy_last_loss`` are mean squared errors on the normalised change of the physical state,
measured on each rollout *before* training on it."""


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
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    target_dim = envs.unwrapped.single_target_space.shape[0]
    agent = Agent(obs_dim, act_dim, target_dim, args.hidden_dim, args.init_log_std).to(device)
    obs_rms = RunningMeanStd((obs_dim,), device)
    delta_rms = RunningMeanStd((target_dim,), device)
    return_rms = RunningMeanStd((), device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    use_wm = args.wm_coef > 0
    curious = use_wm and args.curiosity_coef > 0

    B, T = args.num_envs, args.num_steps
    batch_size = B * T
    minibatch = batch_size // args.num_minibatches
    num_iterations = max(1, (args.total_timesteps - args.wm_pretrain_steps) // batch_size)
    obs, _ = envs.reset(seed=args.seed * 100_000)
    disc_return = torch.zeros(B, device=device)
    surprise_mean = torch.ones((), device=device)
    global_step = 0
    rows: list[dict[str, float]] = []
    csv_file = open(args.csv, "w", newline="") if args.csv else None  # noqa: SIM115
    csv_writer: Any = None
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(total=args.total_timesteps, unit="step", unit_scale=True, dynamic_ncols=True)
    start = time.time()

    def norm_obs(x: torch.Tensor) -> torch.Tensor:
        return obs_rms.normalize(x) if args.norm_obs else x

    def norm_delta(obs_raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The world model's regression target: the normalised change of the physical state."""
        return delta_rms.normalize(target - obs_raw[..., :target_dim], clip=20.0)

    def rollout(num: int) -> dict[str, Any]:
        """``num`` steps of every world with the current policy (no gradients)."""
        nonlocal obs, global_step, surprise_mean, disc_return
        buf: dict[str, list[torch.Tensor]] = {k: [] for k in (
            "obs", "obs_raw", "action", "logp", "value", "reward", "done", "target")}  # fmt: skip
        ended: dict[str, list[torch.Tensor]] = {"success": [], "return": [], "length": []}
        with torch.no_grad():
            for _ in range(num):
                if args.norm_obs:
                    obs_rms.update(obs)
                x = norm_obs(obs)
                h = agent.features(x)
                dist, value = agent.policy_value(h)
                action = dist.sample()
                next_obs, reward, term, trunc, info = envs.step(action.clamp(-1.0, 1.0))
                reward = reward.float()
                target = info["next_obs_target"]
                done = term | trunc
                if curious:
                    err = (agent.predict_delta(h, action) - norm_delta(obs, target)) ** 2
                    err = err.mean(-1)
                    surprise_mean = 0.99 * surprise_mean + 0.01 * err.mean()
                    reward = reward + args.curiosity_coef * err / surprise_mean.clamp(min=1e-6)
                if args.norm_reward:
                    disc_return = disc_return * args.gamma + reward
                    return_rms.update(disc_return)
                    reward = reward / torch.sqrt(return_rms.var + 1e-8)
                    disc_return = disc_return.masked_fill(done, 0.0)
                # A time-limit cut is not a terminal state: bootstrap from the value of the
                # true last observation (final_obs), as SB3 does with TimeLimit.truncated.
                cut = trunc & ~term
                if bool(cut.any()):
                    h_final = agent.features(norm_obs(info["final_obs"][cut]))
                    reward[cut] += args.gamma * agent.policy_value(h_final)[1]
                buf["obs"].append(x)
                buf["obs_raw"].append(obs)
                buf["action"].append(action)
                buf["logp"].append(dist.log_prob(action).sum(-1))
                buf["value"].append(value)
                buf["reward"].append(reward)
                buf["done"].append(done.float())
                buf["target"].append(target)
                ended["success"].append(info["success"][done].float())
                ended["return"].append(info[keys.EPISODE]["r"][done])
                ended["length"].append(info[keys.EPISODE]["l"][done].float())
                obs = next_obs
                global_step += B
        data: dict[str, Any] = {k: torch.stack(v) for k, v in buf.items()}
        data |= {k: torch.cat(v) for k, v in ended.items()}
        delta_rms.update(data["target"] - data["obs_raw"][..., :target_dim])
        data["delta"] = norm_delta(data["obs_raw"], data["target"])
        return data

    def held_out_wm_losses(data: dict[str, Any]) -> dict[str, float]:
        """World-model and copy-last losses on a rollout not trained on yet."""
        with torch.no_grad():
            n = min(batch_size, 4096)
            x, a = data["obs"].reshape(batch_size, -1)[:n], data["action"].reshape(batch_size, -1)
            delta = data["delta"].reshape(batch_size, -1)[:n]
            pred = agent.predict_delta(agent.features(x), a[:n])
            return {
                "wm_loss": float(((pred - delta) ** 2).mean()),
                "copy_last_loss": float((delta**2).mean()),
            }

    def log_row(it: int, data: dict[str, Any], stats: dict[str, float]) -> None:
        nonlocal csv_writer
        sps = global_step / max(time.time() - start, 1e-9)
        n_ended = int(data["success"].numel())
        row = {
            "iteration": it,
            "global_step": global_step,
            "episodes": n_ended,
            "success_rate": float(data["success"].mean()) if n_ended else float("nan"),
            "episode_return": float(data["return"].mean()) if n_ended else float("nan"),
            "episode_length": float(data["length"].mean()) if n_ended else float("nan"),
            "sps": sps,
            **stats,
        }
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
        stats = held_out_wm_losses(data)
        x = data["obs"].reshape(batch_size, -1)
        act, delta = data["action"].reshape(batch_size, -1), data["delta"].reshape(batch_size, -1)
        for _ in range(args.update_epochs):
            for idx in torch.randperm(batch_size, device=device).split(minibatch):
                loss = (agent.predict_delta(agent.features(x[idx]), act[idx]) - delta[idx]) ** 2
                optimizer.zero_grad()
                loss.mean().backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
        log_row(-pre_iters + it, data, stats)

    # ---------------------------------------------------------------- PPO (+ world model)
    for it in range(num_iterations):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - it / num_iterations)
        data = rollout(T)
        wm_stats = held_out_wm_losses(data) if use_wm else {}
        with torch.no_grad():
            next_value = agent.policy_value(agent.features(norm_obs(obs)))[1]
            adv = torch.zeros_like(data["reward"])
            last = torch.zeros(B, device=device)
            for t in reversed(range(T)):
                nv = next_value if t == T - 1 else data["value"][t + 1]
                nonterminal = 1.0 - data["done"][t]
                delta = data["reward"][t] + args.gamma * nv * nonterminal - data["value"][t]
                last = delta + args.gamma * args.gae_lambda * nonterminal * last
                adv[t] = last
            returns = adv + data["value"]
        b_obs = data["obs"].reshape(batch_size, -1)
        b_act, b_logp = data["action"].reshape(batch_size, -1), data["logp"].reshape(-1)
        b_adv, b_ret = adv.reshape(-1), returns.reshape(-1)
        b_delta = data["delta"].reshape(batch_size, -1)
        stats: dict[str, list[float]] = {k: [] for k in ("pg_loss", "v_loss", "entropy",
                                          "approx_kl")}  # fmt: skip
        for _epoch in range(args.update_epochs):
            for idx in torch.randperm(batch_size, device=device).split(minibatch):
                h = agent.features(b_obs[idx])
                dist, value = agent.policy_value(h)
                logp = dist.log_prob(b_act[idx]).sum(-1)
                ratio = (logp - b_logp[idx]).exp()
                mb_adv = b_adv[idx]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio, -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)
                ).mean()
                v_loss = 0.5 * ((value - b_ret[idx]) ** 2).mean()
                entropy = dist.entropy().sum(-1).mean()
                loss = pg_loss + args.vf_coef * v_loss - args.ent_coef * entropy
                if use_wm:
                    h_wm = h.detach() if args.wm_detach else h
                    pred = agent.predict_delta(h_wm, b_act[idx])
                    loss = loss + args.wm_coef * ((pred - b_delta[idx]) ** 2).mean()
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
        log_row(it, data, summary | wm_stats)
        if args.checkpoint_every and (it + 1) % args.checkpoint_every == 0:
            save_checkpoint(run_dir, agent, obs_rms, optimizer, args, global_step)

    # ---------------------------------------------------------------- wrap up
    if bar is not None:
        bar.close()
    path = save_checkpoint(run_dir, agent, obs_rms, optimizer, args, global_step)
    if csv_file is not None:
        csv_file.close()
    writer.close()
    envs.close()
    tail = [r for r in rows[-5:] if np.isfinite(r["success_rate"])]
    wm_tail = [r["wm_loss"] for r in rows[-5:] if "wm_loss" in r]
    result = {
        "args": dataclasses.asdict(args),
        "global_step": global_step,
        "wall_s": time.time() - start,
        "final_success_rate": float(np.mean([r["success_rate"] for r in tail])) if tail else None,
        "final_wm_loss": float(np.mean(wm_tail)) if wm_tail else None,
        "final_copy_last_loss": (
            float(np.mean([r["copy_last_loss"] for r in rows[-5:] if "copy_last_loss" in r]))
            if wm_tail
            else None
        ),
        "checkpoint": str(path),
    }
    (run_dir / "summary.json").write_text(json.dumps(result, indent=1))
    return result


def save_checkpoint(
    run_dir: Path, agent: Agent, obs_rms: RunningMeanStd, optimizer: Any, args: Args, step: int
) -> Path:
    """Weights, observation statistics, optimizer state and args: enough to resume or to run
    the policy (``agent.policy_value(agent.features(obs_rms.normalize(obs)))``)."""
    path = run_dir / "checkpoint.pt"
    torch.save(
        {"agent": agent.state_dict(), "obs_rms": obs_rms.state_dict(),
         "optimizer": optimizer.state_dict(), "args": dataclasses.asdict(args),
         "global_step": step},
        path,
    )  # fmt: skip
    return path


# ======================================================================== target quality
def target_quality(
    env_id: str = "envgym/Robot-Reach-v0",
    num_envs: int = 64,
    train_steps: int = 1200,
    eval_steps: int = 50,
    seed: int = 0,
    oracle_fraction: float = 0.75,
    oracle_noise: float = 0.05,
    hidden_dim: int = 256,
    device: str = "cpu",
) -> dict[str, Any]:
    """The world-model target-quality check for a robot task.

    A predictor (an MLP over the normalised ``(obs, action)``, regressing the normalised change
    of the physical state) is trained on ``train_steps`` batched steps, then scored on held-out
    worlds (other seeds) against copying the last observation. The first ``oracle_fraction``
    of the worlds follow the oracle plus Gaussian noise (std ``oracle_noise``): their arm moves
    purposefully and, in push/pick-and-place/stack, moves the objects; the others act uniformly
    at random (the arm swings anywhere). The score is the mean squared error on
    ``next_obs_target`` in its own units, over all its entries, and per segment.
    """
    torch.manual_seed(seed)
    dev = torch.device(device)
    envs = make_env(Args(env_id=env_id, num_envs=num_envs), dev)
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    target_dim = envs.unwrapped.single_target_space.shape[0]
    layout = envs.unwrapped.obs_layout
    gen = torch.Generator(device=dev).manual_seed(seed)
    by_oracle = (torch.arange(num_envs, device=dev) < round(oracle_fraction * num_envs))[:, None]

    def collect(reset_seed: int, steps: int) -> tuple[torch.Tensor, ...]:
        obs, _ = envs.reset(seed=reset_seed)
        xs, acts, tgts = [], [], []
        for _ in range(steps):
            oracle = torch.as_tensor(envs.unwrapped.oracle_action(), device=dev)
            oracle = oracle + oracle_noise * torch.randn(oracle.shape, device=dev, generator=gen)
            rand = torch.rand(num_envs, act_dim, device=dev, generator=gen) * 2 - 1
            act = torch.where(by_oracle, oracle.clamp(-1.0, 1.0), rand)
            nxt, _, _, _, info = envs.step(act)
            xs.append(obs)
            acts.append(act)
            tgts.append(info["next_obs_target"])
            obs = nxt
        return torch.cat(xs), torch.cat(acts), torch.cat(tgts)

    x_tr, a_tr, y_tr = collect(seed, train_steps)
    x_te, a_te, y_te = collect(seed + 10_000_000, eval_steps)
    envs.close()
    x_mean, x_std = x_tr.mean(0), x_tr.std(0) + 1e-6
    d_tr = y_tr - x_tr[:, :target_dim]
    d_mean, d_std = d_tr.mean(0), d_tr.std(0) + 1e-6
    net = nn.Sequential(
        nn.Linear(obs_dim + act_dim, hidden_dim), nn.ELU(),
        nn.Linear(hidden_dim, hidden_dim), nn.ELU(), nn.Linear(hidden_dim, target_dim),
    ).to(dev)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    inputs = torch.cat([(x_tr - x_mean) / x_std, a_tr], -1)
    labels = (d_tr - d_mean) / d_std
    epochs = 30
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        for idx in torch.randperm(len(inputs), device=dev, generator=gen).split(256):
            loss = ((net(inputs[idx]) - labels[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    with torch.no_grad():
        pred_delta = net(torch.cat([(x_te - x_mean) / x_std, a_te], -1)) * d_std + d_mean
        pred = x_te[:, :target_dim] + pred_delta
        copy = x_te[:, :target_dim]
        wm_err, copy_err = (pred - y_te) ** 2, (copy - y_te) ** 2
    segments = {}
    for name, (lo, hi) in _segments(layout, target_dim).items():
        segments[name] = {
            "world_model_mse": float(wm_err[:, lo:hi].mean()),
            "copy_last_mse": float(copy_err[:, lo:hi].mean()),
        }
    wm_mse, copy_mse = float(wm_err.mean()), float(copy_err.mean())
    return {
        "env_id": env_id,
        "oracle_fraction": oracle_fraction,
        "oracle_noise": oracle_noise,
        "train_transitions": len(x_tr),
        "eval_transitions": len(x_te),
        "world_model_mse": wm_mse,
        "copy_last_mse": copy_mse,
        "ratio": wm_mse / copy_mse,
        "segments": segments,
    }


def _segments(layout: list[tuple[str, int, int]], target_dim: int) -> dict[str, tuple[int, int]]:
    """Name -> (start, stop) of the observation segments (``obs_layout``) inside the target."""
    return {name: (lo, hi) for name, lo, hi in layout if hi <= target_dim}


if __name__ == "__main__":
    print(json.dumps(train(parse_args()), indent=1))
