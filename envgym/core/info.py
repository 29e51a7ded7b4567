"""The info dict a single env returns from ``reset()`` (ARCHITECTURE §2).

A single env's reset info holds the same keys, nested the same way and of the same types, as
its step info, so consumers that stack infos over an episode (Minari's ``DataCollector(...,
record_infos=True)``, loggers, replay buffers) see one fixed structure from the first
observation on. The reset values, the same in every family:

- ``next_obs_target``: the target encoding of the first observation (what the world showed
  as the episode began), in ``target_space`` like every step's target;
- ``reward_terms``: every term at ``0.0`` (no action has been rewarded yet);
- ``success``: ``False`` (success is judged after an action);
- ``action_error``: ``""`` (no action was taken, so none failed);
- a family's extra keys with the values its docs give (e.g. the robot's ``unstable``:
  ``False``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from envgym.core import keys


def reset_info(
    target: np.ndarray, reward_term_names: Iterable[str], **extra: Any
) -> dict[str, Any]:
    """The reset info of a single env: the step info's keys with their reset values.

    Args:
        target: ``next_obs_target`` of the first observation (NumPy, in ``target_space``).
        reward_term_names: the names of the env's reward terms, in the step info's order.
        **extra: the family's further info keys at their reset values.

    Returns:
        The info dict.
    """
    return {
        keys.NEXT_OBS_TARGET: target,
        keys.REWARD_TERMS: {name: 0.0 for name in reward_term_names},
        keys.SUCCESS: False,
        keys.ACTION_ERROR: "",
        **extra,
    }
