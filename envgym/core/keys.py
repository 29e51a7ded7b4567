"""Names of the keys every envgym transition carries in ``info`` (ARCHITECTURE §2)."""

from __future__ import annotations

NEXT_OBS_TARGET = "next_obs_target"
"""Fixed-shape encoding of what the world returned in answer to the action, from the true o(t+1)."""

REWARD_TERMS = "reward_terms"
"""Dict of named reward components; they sum to the reward."""

SUCCESS = "success"
"""Whether the task's goal holds, judged from the world's state."""

ACTION_ERROR = "action_error"
"""Why an action could not be carried out (empty string / False when it could)."""

FINAL_OBS = "final_obs"
"""Vector envs, SAME_STEP auto-reset: the true last observation of worlds that just ended."""

EPISODE = "episode_stats"
"""Vector envs: episode return ``r`` and length ``l`` of worlds that just ended."""

ACTION_MASK = "action_mask"
"""Discrete-action envs that publish one: bool ``[B, A]`` (``[A]`` single) of the actions
admissible in the current observation's state (at reset too, in the reset info)."""

TARGET_MASK = "target_mask"
"""Envs that publish one: bool, shaped like ``next_obs_target``: True where the target token is
seeded noise (a phrasing variant, a rep name) that no model of the world can predict."""

REQUIRED_INFO_KEYS = (NEXT_OBS_TARGET, REWARD_TERMS, SUCCESS, ACTION_ERROR)

TRUNCATION_REASON = "truncation_reason"
"""Why a world's episode was truncated (``""`` if it was not): the browser's ``time_limit`` and
faults, ``"worker_lost"`` from ``envgym.distributed.RayVectorEnv``."""
