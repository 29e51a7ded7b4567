"""Success rate of a policy over many seeds: ``python -m envgym.robot.evaluate``.

World ``i`` of one vector env is seeded ``seed + i``, and only the first episode of each world
is counted, so ``--episodes 100`` is exactly the 100 episodes of seeds ``seed .. seed+99``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import gymnasium as gym
import torch

from envgym.robot.ids import TASKS


def evaluate(
    env_id: str,
    policy: str = "oracle",
    episodes: int = 100,
    seed: int = 0,
    backend: str = "cpu",
    **kwargs: Any,
) -> dict[str, Any]:
    """Run ``policy`` (``oracle``, ``random`` or ``zero``) for one episode per seed.

    Returns:
        ``{"id", "policy", "episodes", "successes", "success_rate", "mean_return"}``.
    """
    import envgym  # noqa: F401  (registers the ids)

    envs = gym.make_vec(
        env_id,
        num_envs=episodes,
        vectorization_mode="vector_entry_point",
        backend=backend,
        **kwargs,
    )
    try:
        base = envs.unwrapped
        base.reset(seed=seed)
        gen = torch.Generator().manual_seed(seed)
        done = torch.zeros(episodes, dtype=torch.bool)
        success = torch.zeros(episodes, dtype=torch.bool)
        returns = torch.zeros(episodes)
        dim = base.single_action_space.shape[0]
        while not bool(done.all()):
            if policy == "oracle":
                act = base.oracle_action()
            elif policy == "random":
                act = torch.rand(episodes, dim, generator=gen) * 2 - 1
            elif policy == "zero":
                act = torch.zeros(episodes, dim)
            else:
                raise ValueError(f"policy must be oracle, random or zero, got {policy!r}")
            _, rew, term, trunc, info = base.step(act)
            live = ~done
            returns += torch.where(live, rew.cpu(), 0.0)
            ended = (term | trunc).cpu() & live
            success |= ended & info["success"].cpu()
            done |= ended
        return {
            "id": env_id,
            "policy": policy,
            "backend": backend,
            "episodes": episodes,
            "successes": int(success.sum()),
            "success_rate": float(success.float().mean()),
            "mean_return": float(returns.mean()),
        }
    finally:
        envs.close()


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per (task, policy)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ids", default=",".join(t[0] for t in TASKS), help="comma list of env ids")
    p.add_argument("--policies", default="oracle,random")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for env_id in args.ids.split(","):
        for policy in args.policies.split(","):
            row = evaluate(env_id, policy, args.episodes, args.seed, args.backend)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
