from __future__ import annotations

import torch

from envgym.wrappers import TransitionRecorder
from tests.helpers import make_vec


def test_recorder_pairs_each_obs_with_the_target_of_its_action() -> None:
    envs = TransitionRecorder(make_vec(8, scenario="mock"), capacity=16)
    obs, _ = envs.reset(seed=0)
    seen = []
    for _ in range(20):
        before = obs["tokens"].clone()
        act = envs.unwrapped.oracle_action()
        obs, _, term, trunc, info = envs.step(act)
        seen.append((before, act.clone(), info["next_obs_target"].clone(), (term | trunc).clone()))
    assert envs.size == 16
    # The newest record (slot 3 after wrapping 20 steps into 16) is the last step.
    last = (envs._pos - 1) % 16
    b, a, tgt, done = seen[-1]
    assert torch.equal(envs._buf["obs"]["tokens"][last], b)
    assert torch.equal(envs._buf["action"][last], a)
    assert torch.equal(envs._buf["target"][last], tgt)
    assert torch.equal(envs._buf["done"][last], done)
    batch = envs.sample(32, generator=torch.Generator().manual_seed(0))
    assert batch["obs"]["tokens"].shape == (32, envs.unwrapped.compiled.max_tokens)
    assert batch["target"].shape == batch["obs"]["tokens"].shape
