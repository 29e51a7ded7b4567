"""Regression: the single-agent phone engine's trajectories are bit-identical to the recorded ones.

The digests in ``tests/data/phone_golden.json`` were recorded with the engine as it was before
the three-party refactor (commit bc476d8; main at c9ef2d9 gives the same digests). This test
proves that the refactor (scripted rep and user as decision functions the engine applies)
changed no transition of the single-agent env.
Regenerate only for an intended behaviour change: ``python tests/test_phone_golden.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

GOLDEN = Path(__file__).parent / "data" / "phone_golden.json"
RUNS: dict[str, dict[str, Any]] = {
    "shipped": {"scenario": "all", "num_envs": 48, "steps": 160},
    "generated": {"scenario": "generated", "num_envs": 32, "steps": 120, "difficulty": 3},
}


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def trajectory(name: str) -> list[str]:
    """Per-step digests of a run mixing oracle (70%) and random actions, seeded."""
    from envgym.phone.faces import PhoneVectorEnv
    from envgym.phone.names import REWARD_TERMS

    cfg = dict(RUNS[name])
    steps = cfg.pop("steps")
    envs = PhoneVectorEnv(**cfg)
    gen = torch.Generator().manual_seed(7)
    obs, _ = envs.reset(seed=123)
    out = [_digest(*obs.values())]
    n = envs.single_action_space.n
    for _ in range(steps):
        rand = torch.randint(0, n, (envs.num_envs,), generator=gen)
        pick = torch.rand(envs.num_envs, generator=gen) < 0.7
        act = torch.where(pick, envs.oracle_action(), rand)
        obs, rew, term, trunc, info = envs.step(act)
        # The recorded terms (the sub-goal terms added later are 0 in the default mode).
        terms = torch.stack([info["reward_terms"][k] for k in sorted(REWARD_TERMS)])
        out.append(
            _digest(
                *obs.values(),
                rew,
                term,
                trunc,
                info["next_obs_target"],
                info["success"],
                info["action_error"],
                terms,
                *info["final_obs"].values(),
            )
        )
    return out


def test_single_agent_trajectories_match_the_recorded_ones() -> None:
    golden = json.loads(GOLDEN.read_text())
    for name in RUNS:
        got = trajectory(name)
        want = golden[name]
        assert len(got) == len(want)
        first_bad = next((i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b), -1)
        assert first_bad < 0, f"run {name!r} diverges from the recording at step {first_bad}"


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.write_text(json.dumps({n: trajectory(n) for n in RUNS}, indent=0) + "\n")
