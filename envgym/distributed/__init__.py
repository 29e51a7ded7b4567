"""envgym worlds on Ray: :class:`RayVectorEnv` (``pip install -e '.[distributed]'``).

Importing this package imports Ray lazily: only when a :class:`RayVectorEnv` is made.
See ``docs/distributed.md``.
"""

from __future__ import annotations

from envgym.distributed.ray_env import (
    TRUNCATION_REASON,
    WORKER_LOST,
    RayVectorEnv,
    WorkerLostError,
)

__all__ = ["TRUNCATION_REASON", "WORKER_LOST", "RayVectorEnv", "WorkerLostError"]
