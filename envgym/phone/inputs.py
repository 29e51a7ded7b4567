"""The phone token faces' bad-input rule for a step's actions (``docs/reliability.md``).

A step takes catalogue ids (the vector base's ``Discrete`` rule) or a
:class:`~envgym.phone.engine.PhoneActions` record. A record is checked whole, every field,
before any world changes: ``assistant`` ids in the catalogue or the engine's
``garbled_action``; ``stated_value`` integers (any value id: one no fact has is never true);
a learned ``rep``'s moves in its catalogue; a learned ``user``'s moves among
:data:`~envgym.phone.names.USER_ACTIONS`. Each is ``[B]`` or ``[B, 1]`` of an integer dtype,
else :class:`~envgym.core.errors.InvalidActionError` naming the field (and the worlds, for
values out of range).

The real-time face (``realtime=True``) takes records of tick actions with their stated values;
it has the scripted rep and user, so a record's ``rep`` and ``user`` must be ``None`` there.

``PhoneVectorEnv._convert_actions`` (and the real-time face's) calls :func:`phone_actions` and
``action_rule()`` returns it, so a driver of several envs (``RayVectorEnv``) refuses a bad
record with the same error before any of them steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from envgym.core.errors import InvalidActionError
from envgym.core.vector import discrete_actions, integer_actions
from envgym.phone.engine import PhoneActions
from envgym.phone.names import USER_ACTIONS


def phone_actions(
    actions: Any,
    num_envs: int,
    space: spaces.Discrete,
    garbled_action: int | None,
    rep_actions: int | None,
    worlds: Sequence[int] | np.ndarray | None = None,
) -> torch.Tensor | PhoneActions:
    """A step's actions checked: catalogue ids (``space``) as zero-based int64 ``[num_envs]``,
    or a :class:`PhoneActions` record with every field as int64 ``[num_envs]`` (on the
    input's device; ``None`` fields stay ``None``). ``garbled_action`` is the engine's id of
    unparseable text (a record may carry it; None: ``space`` alone), ``rep_actions`` the size
    of the rep's catalogue (None: a face with the scripted rep and user, whose records carry
    neither); bad rows are named ``worlds[row]`` when ``worlds`` is given."""
    if not isinstance(actions, PhoneActions):
        return discrete_actions(actions, num_envs, space, worlds)
    if rep_actions is None and (actions.rep is not None or actions.user is not None):
        raise InvalidActionError(
            "this face has the scripted rep and user: a record's rep and user must be None"
        )
    n_assistant = int(space.n) if garbled_action is None else garbled_action + 1
    sizes = {"assistant": n_assistant, "rep": rep_actions or 0, "user": len(USER_ACTIONS)}
    checked = {
        name: _field(name, getattr(actions, name), num_envs, n, worlds) for name, n in sizes.items()
    }
    stated = actions.stated_value
    if stated is not None:
        try:
            stated = integer_actions(stated, num_envs)
        except InvalidActionError as e:
            raise InvalidActionError(f"stated_value: {e}") from None
    return PhoneActions(checked["assistant"], stated, checked["rep"], checked["user"])


def _field(
    name: str,
    value: Any,
    num_envs: int,
    n: int,
    worlds: Sequence[int] | np.ndarray | None,
) -> torch.Tensor | None:
    """One id field of a record checked against ``Discrete(n)`` (``None`` stays ``None``;
    the assistant's ids are required)."""
    if value is None:
        if name == "assistant":
            raise InvalidActionError("a PhoneActions record needs assistant actions")
        return None
    try:
        return discrete_actions(value, num_envs, spaces.Discrete(n), worlds)
    except InvalidActionError as e:
        raise InvalidActionError(f"{name} actions: {e}") from None
