"""The error types every envgym env raises for bad tensor input (docs/reliability.md).

One rule for every family: a malformed batched input (wrong shape, wrong dtype, out of the
space, a malformed snapshot, reset mask or seed) raises one of these, *before* anything in the
env changed, so the env keeps working and no world is affected. They subclass ``ValueError``
(and :class:`InvalidActionError` also ``TypeError``, the type earlier releases raised for a
wrong dtype), so existing ``except ValueError`` code keeps catching them.
"""

from __future__ import annotations


class EnvInputError(ValueError):
    """Base class: an input to an env's ``step``/``reset``/``set_state`` was rejected."""


class InvalidActionError(EnvInputError, TypeError):
    """A batch of actions has the wrong shape or dtype, or holds out-of-space values."""


class InvalidResetError(EnvInputError):
    """``reset``'s ``seed`` or ``options`` (e.g. ``reset_mask``) are malformed."""


class InvalidStateError(EnvInputError):
    """A snapshot given to ``set_state`` (or its ``worlds``) doesn't fit this env."""


SEED_MAX = 2**64 - 1
"""Seeds are unsigned 64-bit integers, the range Gymnasium and NumPy seed with (Minari's
``DataCollector`` draws from all of it): world ``i`` of ``num_envs`` uses ``seed + i``, so a
base seed must satisfy ``0 <= seed`` and ``seed + num_envs - 1 <= SEED_MAX``. Engines keep
seeds in int64 tensors holding the same 64 bits (two's complement), see
:func:`envgym.core.vector.world_seeds`."""
