"""The phone family: an assistant phones a company's customer service for its user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envgym.phone.env import PhoneEnv, PhoneVectorEnv

__all__ = ["PhoneEnv", "PhoneVectorEnv", "make_single", "make_vector"]


def make_single(**kwargs: Any) -> PhoneEnv:
    """Entry point of ``gym.make('envgym/Phone-v0', ...)``; ``realtime=True`` gives the
    real-time (tick-based, full-duplex) env of :mod:`envgym.phone.realtime`."""
    if kwargs.pop("realtime", False):
        from envgym.phone.realtime import PhoneRealtimeEnv

        return PhoneRealtimeEnv(**kwargs)  # type: ignore[return-value]
    from envgym.phone.env import PhoneEnv

    return PhoneEnv(**kwargs)


def make_vector(num_envs: int = 1, **kwargs: Any) -> PhoneVectorEnv:
    """Entry point of ``gym.make_vec('envgym/Phone-v0', ...)`` (``vector_entry_point`` mode);
    ``realtime=True`` gives the real-time vector env."""
    from envgym.phone.env import PhoneVectorEnv

    kwargs.pop("render_mode", None)
    if kwargs.pop("realtime", False):
        from envgym.phone.realtime import PhoneRealtimeVectorEnv

        return PhoneRealtimeVectorEnv(num_envs=num_envs, **kwargs)  # type: ignore[return-value]
    return PhoneVectorEnv(num_envs=num_envs, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("PhoneEnv", "PhoneVectorEnv"):
        from envgym.phone import env

        return getattr(env, name)
    raise AttributeError(name)
