"""The vector base's episode statistics: returns, lengths and per-term returns.

The sums live in one ``[1 + T, B]`` tensor (``TorchVectorEnv._accumulate_returns``); these
tests hold it to the plain definition (each world's sum of every step's reward and terms
since its episode began) when the reported terms change order, go missing or appear late,
and check that resets and snapshots read and write the same sums, with and without the
engine's precomputed ``StepOutput.returns`` / ``done`` (one ``[1 + T, B]`` tensor, the flags).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from envgym.core import StepOutput, TorchVectorEnv, keys
from envgym.core.vector import SMALL


class _Scripted(TorchVectorEnv):
    """Worlds whose step outputs (reward terms, episode ends) a test lists in advance for two
    worlds; with ``pairs`` > 1 the batch is that many copies of the pair (even worlds follow
    world 0, odd ones world 1)."""

    def __init__(
        self,
        script: list[tuple[dict[str, list[float]], list[bool]]],
        precomputed: bool = False,
        pairs: int = 1,
    ) -> None:
        super().__init__(2 * pairs)
        self.precomputed, self.pairs = precomputed, pairs
        self.single_action_space = spaces.Discrete(2)
        self.single_observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.script = list(script)

    def _reset_worlds(self, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        pass

    def _observe(self) -> torch.Tensor:
        return torch.zeros(self.num_envs, 1)

    def _step_worlds(self, actions: torch.Tensor) -> StepOutput:
        values, ended = self.script.pop(0)
        B, n = self.num_envs, self.pairs
        terms = {k: torch.tensor(v, dtype=torch.float32).repeat(n) for k, v in values.items()}
        reward = torch.stack(list(terms.values())).sum(0) if terms else torch.zeros(B)
        out = StepOutput(
            reward=reward,
            terminated=torch.tensor(ended).repeat(n),
            truncated=torch.zeros(B, dtype=torch.bool),
            next_obs_target=torch.zeros(B, 1),
            reward_terms=terms,
            success=torch.zeros(B, dtype=torch.bool),
            action_error=torch.zeros(B, dtype=torch.int64),
        )
        if self.precomputed:  # as the robot's NumPy step hands them out: rows of one tensor
            out.returns = torch.stack([reward, *terms.values()])
            out.reward, *rows = out.returns.unbind(0)
            out.reward_terms = dict(zip(terms, rows, strict=True))
            out.done, out.any_done = out.terminated.clone(), any(ended)
        return out


SCRIPT = [
    ({"a": [1.0, 2.0], "b": [10.0, 20.0]}, [False, False]),
    ({"b": [1.0, 1.0], "a": [0.5, 0.25]}, [False, False]),  # another order
    ({"a": [1.0, 1.0]}, [True, False]),  # "b" missing; world 0 ends
    ({"a": [2.0, 2.0], "b": [3.0, 3.0], "c": [4.0, 5.0]}, [False, True]),  # "c" appears
    ({"a": [1.0, 1.0], "b": [1.0, 1.0], "c": [1.0, 1.0]}, [False, False]),
]


def _expected() -> list[tuple[list[float], list[int], dict[str, list[float]]]]:
    """Per step: each world's return, length and per-term returns, by the definition."""
    out = []
    ret, length = np.zeros(2), np.zeros(2, dtype=int)
    sums: dict[str, np.ndarray] = {}
    for values, ended in SCRIPT:
        for k, v in values.items():
            sums[k] = sums.get(k, np.zeros(2)) + np.array(v)
            ret = ret + np.array(v)
        length = length + 1
        out.append((ret.tolist(), length.tolist(), {k: sums[k].tolist() for k in values}))
        done = np.array(ended)
        ret[done], length[done] = 0.0, 0
        for v in sums.values():
            v[done] = 0.0
    return out


@pytest.mark.parametrize("precomputed", [False, True])
@pytest.mark.parametrize("pairs", [1, SMALL // 2 + 1])  # the large batch sums row by row
def test_episode_sums_follow_the_definition_when_terms_change(
    precomputed: bool, pairs: int
) -> None:
    envs = _Scripted(SCRIPT, precomputed, pairs)
    envs.reset(seed=0)
    for (ret, length, terms), (_, ended) in zip(_expected(), SCRIPT, strict=True):
        _, _, term, _, info = envs.step(np.zeros(envs.num_envs, dtype=np.int64))
        ep = info[keys.EPISODE]
        assert ep["r"].tolist() == ret * pairs
        assert ep["l"].tolist() == length * pairs
        assert set(ep["terms"]) == set(terms)
        for k, v in terms.items():
            assert ep["terms"][k].tolist() == v * pairs, k
        assert info["_" + keys.EPISODE].tolist() == ended * pairs == term.tolist()


@pytest.mark.parametrize("precomputed", [False, True])
def test_handed_out_sums_are_copies_and_snapshots_read_the_sums(precomputed: bool) -> None:
    script = [*SCRIPT[:2], ({"a": [1.0, 1.0], "b": [0.0, 0.0]}, [False, False])]
    envs = _Scripted(script, precomputed)
    envs.reset(seed=0)
    _, _, _, _, info = envs.step(np.zeros(2, dtype=np.int64))
    info[keys.EPISODE]["r"].fill_(99.0)  # a caller's edit must not reach the env
    info[keys.EPISODE]["terms"]["a"].fill_(99.0)
    _, _, _, _, info = envs.step(np.zeros(2, dtype=np.int64))
    assert info[keys.EPISODE]["r"].tolist() == [12.5, 23.25]
    assert info[keys.EPISODE]["terms"]["a"].tolist() == [1.5, 2.25]
    snap = envs.get_state()
    assert snap["__episode_return"].tolist() == [12.5, 23.25]
    snap["__episode_return"] = torch.tensor([1.0, 2.0])
    envs.set_state(snap)
    _, _, _, _, info = envs.step(np.zeros(2, dtype=np.int64))
    assert info[keys.EPISODE]["r"].tolist() == [2.0, 3.0]
    envs.reset(seed=0, options={"reset_mask": np.array([True, False])})
    assert envs.get_state()["__episode_return"].tolist() == [0.0, 3.0]
