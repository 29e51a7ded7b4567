"""Regression: the robot vector env's trajectories are bit-identical to the recorded ones.

The digests in ``tests/data/robot_golden.json`` were recorded on the CPU backend with the
engine as it was before the per-step bookkeeping moved into one NumPy pass (branch ``robot``,
from main at c1f3da9). Every scene runs worlds 0-2 on the oracle and worlds 3-5 on a 50/50
mix of oracle and random actions with a short episode length, and one world is driven
unstable, so successes, terminations, truncations, a roll-back and auto-resets all occur;
each step's observation, reward, flags, target, reward terms, ``final_obs`` and episode
statistics are hashed. Recorded with MuJoCo 4.0.0 on this project's x86-64 machine (MuJoCo's
float64 results can differ in the last bits on another CPU or MuJoCo version). Regenerate only
for an intended behaviour change (and bump the env ids):
``python tests/test_robot_golden.py --write``.

The ``resets/<scene>`` digests pin the resets alone over thousands of draws (every world of a
1,024-world batch reset 16 times, recorded at ddf93bf, before the resets moved to NumPy):
enough worlds that a last-bit change in the reset's trigonometry shows (NumPy's ``cos`` or
``sin`` in place of torch's, which differ for ~0.1% of inputs, fails it). The candidates'
distances only meet a threshold, so a last-bit change there would show only for a distance
within a rounding of it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

GOLDEN = Path(__file__).parent / "data" / "robot_golden.json"
SCENES = ("reach", "push", "pick_place", "stack")
NUM_ENVS, STEPS, EPISODE_LENGTH = 6, 150, 70
UNSTABLE_AT = (10, 4)  # (step, world): a runaway velocity injected there
RESET_WORLDS, RESET_ROUNDS = 1024, 16


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _first_difference(got: list[str], want: list[str]) -> int:
    """The first index where two digest lists of one length differ (-1: none)."""
    assert len(got) == len(want)
    return next((i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b), -1)


def trajectory(scene: str) -> list[str]:
    """Per-step digests of a seeded run of ``scene`` (see the module docstring)."""
    from envgym.core import keys
    from envgym.robot.env import RobotVectorEnv

    envs = RobotVectorEnv(NUM_ENVS, scene, num_threads=1, episode_length=EPISODE_LENGTH)
    gen = torch.Generator().manual_seed(11)
    obs, _ = envs.reset(seed=321)
    out = [_digest(obs)]
    oracle_only = torch.arange(NUM_ENVS)[:, None] < 3
    for i in range(STEPS):
        if i == UNSTABLE_AT[0]:
            envs.engine.physics.qvel[UNSTABLE_AT[1], 0] = 1e6
        rand = torch.rand(NUM_ENVS, envs.engine.act_dim, generator=gen) * 2 - 1
        pick = (torch.rand(NUM_ENVS, 1, generator=gen) < 0.5) | oracle_only
        act = torch.where(pick, envs.oracle_action(), rand)
        obs, rew, term, trunc, info = envs.step(act)
        ep = info[keys.EPISODE]
        out.append(
            _digest(
                obs,
                rew,
                term,
                trunc,
                info["next_obs_target"],
                info["success"],
                info["unstable"],
                info["final_obs"],
                *(info["reward_terms"][k] for k in envs.reward_term_names),
                ep["r"],
                ep["l"],
                *(ep["terms"][k] for k in envs.reward_term_names),
            )
        )
    envs.close()
    return out


def test_robot_trajectories_match_the_recorded_ones() -> None:
    golden = json.loads(GOLDEN.read_text())
    for scene in SCENES:
        got, want = trajectory(scene), golden[scene]
        first_bad = _first_difference(got, want)
        assert first_bad < 0, f"scene {scene!r} diverges from the recording at step {first_bad}"


def reset_digests(scene: str) -> list[str]:
    """Digests of the joint positions, goals and scales after each of ``RESET_ROUNDS`` resets
    of every world of a ``RESET_WORLDS`` batch."""
    from envgym.robot.env import RobotVectorEnv

    envs = RobotVectorEnv(RESET_WORLDS, scene, num_threads=1)
    envs.reset(seed=2024)
    every = torch.ones(RESET_WORLDS, dtype=torch.bool)
    out = []
    for _ in range(RESET_ROUNDS):
        st = envs.state
        out.append(_digest(envs.engine.physics.qpos, st["goal"], st["scales"]))
        envs._reset_worlds(every, None)
    envs.close()
    return out


def test_robot_resets_match_the_recorded_ones() -> None:
    golden = json.loads(GOLDEN.read_text())
    for scene in SCENES:
        got, want = reset_digests(scene), golden[f"resets/{scene}"]
        first_bad = _first_difference(got, want)
        assert first_bad < 0, f"scene {scene!r}: reset {first_bad} differs from the recording"


if __name__ == "__main__" and "--write" in sys.argv:
    digests = {s: trajectory(s) for s in SCENES}
    digests.update({f"resets/{s}": reset_digests(s) for s in SCENES})
    GOLDEN.write_text(json.dumps(digests, indent=0) + "\n")
