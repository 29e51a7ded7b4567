"""Success-gated curricula any training loop can call.

:class:`SuccessGatedCurriculum` keeps a window of recent episode outcomes per level and a
*frontier*: the hardest level unlocked. When the frontier level's success rate over its last
``window`` episodes reaches ``threshold``, the next level unlocks. Each world that ends an
episode is then assigned a level: the frontier, or (with probability ``review``) an easier
unlocked level, so earlier skills keep being practised.

It works on plain tensors (``done`` and ``success`` of a step, the level each world played), so
it serves any env; :meth:`SuccessGatedCurriculum.step` is the one-liner for an envgym vector env
with ``levels=`` (the phone family: ``PhoneVectorEnv(levels=[0, 0.5, 1, 2])``), calling its
``set_difficulty``.

Example:
    >>> envs = PhoneVectorEnv(256, levels=[0, 0.5, 1, 2])
    >>> cur = SuccessGatedCurriculum(num_levels=4)
    >>> obs, info = envs.reset(seed=0)
    >>> for _ in range(1000):
    ...     obs, rew, term, trunc, info = envs.step(policy(obs))
    ...     cur.step(envs, term | trunc, info["success"])
"""

from __future__ import annotations

from typing import Any

import torch


class SuccessGatedCurriculum:
    """Unlock the next level once the current frontier is solved often enough.

    Args:
        num_levels: how many levels (indices ``0 .. num_levels - 1``, easiest first).
        threshold: success rate over the window that unlocks the next level.
        window: episodes per level the rate is measured over (and the least needed).
        review: probability that an ended world is sent to an easier unlocked level.
        seed: seed of the review draws.
    """

    def __init__(
        self,
        num_levels: int,
        *,
        threshold: float = 0.8,
        window: int = 256,
        review: float = 0.0,
        seed: int = 0,
    ) -> None:
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if window < 1 or not 0.0 <= review <= 1.0:
            raise ValueError("window must be >= 1 and review in [0, 1]")
        self.num_levels = num_levels
        self.threshold = threshold
        self.window = window
        self.review = review
        self.frontier = 0
        """The hardest unlocked level."""
        self.history: list[tuple[int, int]] = []
        """(episodes seen in all, new frontier) at each promotion."""
        self._outcomes = torch.zeros(num_levels, window, dtype=torch.bool)
        self._count = torch.zeros(num_levels, dtype=torch.int64)
        self._episodes = 0
        self._gen = torch.Generator().manual_seed(seed)

    def success_rate(self, level: int) -> float:
        """Success over the level's last ``window`` episodes (nan before any)."""
        n = int(min(self._count[level], self.window))
        if n == 0:
            return float("nan")
        return float(self._outcomes[level, :n].float().mean())

    def record(self, levels: torch.Tensor, success: torch.Tensor) -> bool:
        """Record ended episodes (the level each was played on, and whether it succeeded);
        return whether the frontier moved."""
        levels = levels.detach().cpu().to(torch.int64).reshape(-1)
        success = success.detach().cpu().to(torch.bool).reshape(-1)
        for lv in torch.unique(levels).tolist():
            s = success[levels == lv][-self.window :]
            c = int(self._count[lv])
            pos = (c + torch.arange(s.shape[0])) % self.window
            self._outcomes[lv, pos] = s
            self._count[lv] = c + s.shape[0]
        self._episodes += int(levels.shape[0])
        moved = False
        while (
            self.frontier < self.num_levels - 1
            and int(self._count[self.frontier]) >= self.window
            and self.success_rate(self.frontier) >= self.threshold
        ):
            self.frontier += 1
            self.history.append((self._episodes, self.frontier))
            moved = True
        return moved

    def assign(self, n: int) -> torch.Tensor:
        """Levels for ``n`` worlds: the frontier, or an easier unlocked level with
        probability ``review``."""
        levels = torch.full((n,), self.frontier, dtype=torch.int64)
        if self.review > 0 and self.frontier > 0:
            easier = torch.rand(n, generator=self._gen) < self.review
            draw = torch.randint(0, self.frontier, (n,), generator=self._gen)
            levels = torch.where(easier, draw, levels)
        return levels

    def step(self, envs: Any, done: torch.Tensor, success: torch.Tensor) -> bool:
        """One call per env step: record the ended worlds' outcomes on the levels they played
        (``envs.ended_difficulty``) and give those worlds their next level
        (``envs.set_difficulty``; the SAME_STEP auto-reset already started an episode on the
        old level, so the new one applies from the episode after). Returns whether the
        frontier moved."""
        done = done.detach().to(torch.bool).reshape(-1)
        if not bool(done.any()):
            return False
        worlds = torch.nonzero(done.cpu()).flatten()
        played = envs.ended_difficulty.cpu()[worlds]
        moved = self.record(played, success.detach().cpu()[worlds])
        envs.set_difficulty(worlds, self.assign(int(worlds.shape[0])))
        return moved
