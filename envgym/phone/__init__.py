"""The phone family: an assistant phones a company's customer service for its user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pettingzoo import AECEnv

    from envgym.core.family import DemoTask
    from envgym.phone.faces import PhoneEnv, PhoneVectorEnv
    from envgym.phone.multiagent import PhoneParallelEnv, PhoneParallelVectorEnv

__all__ = [
    "ParallelVectorEnv",
    "PhoneEnv",
    "PhoneParallelEnv",
    "PhoneParallelVectorEnv",
    "PhoneVectorEnv",
    "aec_env",
    "demo_tasks",
    "env",
    "make_single",
    "make_vector",
    "parallel_env",
]

_PARTIES = ("assistant", "rep", "user")


def make_single(**kwargs: Any) -> PhoneEnv:
    """Entry point of ``gym.make('envgym/Phone-v0', ...)``; ``realtime=True`` gives the
    real-time (tick-based, full-duplex) env of :mod:`envgym.phone.realtime`."""
    if kwargs.pop("realtime", False):
        from envgym.phone.realtime import PhoneRealtimeEnv

        return PhoneRealtimeEnv(**kwargs)  # type: ignore[return-value]
    from envgym.phone.faces import PhoneEnv

    return PhoneEnv(**kwargs)


def make_vector(num_envs: int = 1, **kwargs: Any) -> PhoneVectorEnv:
    """Entry point of ``gym.make_vec('envgym/Phone-v0', ...)`` (``vector_entry_point`` mode);
    ``realtime=True`` gives the real-time vector env."""
    from envgym.phone.faces import PhoneVectorEnv

    kwargs.pop("render_mode", None)
    if kwargs.pop("realtime", False):
        from envgym.phone.realtime import PhoneRealtimeVectorEnv

        return PhoneRealtimeVectorEnv(num_envs=num_envs, **kwargs)  # type: ignore[return-value]
    return PhoneVectorEnv(num_envs=num_envs, **kwargs)


def parallel_env(
    scenario: Any = "isp_bill_discount",
    learners: Sequence[str] | str = _PARTIES,
    *,
    num_envs: int | None = None,
    **kwargs: Any,
) -> Any:
    """The three-party call (assistant, rep, user) with ``learners`` learned, the others
    scripted: a PettingZoo ``ParallelEnv`` (one world), or with ``num_envs=N`` the batched
    :class:`PhoneParallelVectorEnv` (dicts of ``[N, ...]`` tensors) on the same engine."""
    from envgym.phone.multiagent import PhoneParallelEnv, PhoneParallelVectorEnv

    if num_envs is not None:
        return PhoneParallelVectorEnv(num_envs, scenario, learners, **kwargs)
    return PhoneParallelEnv(scenario, learners, **kwargs)


def aec_env(
    scenario: Any = "isp_bill_discount", learners: Sequence[str] | str = _PARTIES, **kwargs: Any
) -> AECEnv:
    """The three-party call as a PettingZoo AEC env (``parallel_to_aec`` of
    :func:`parallel_env`: the floor holder's action is the one that counts, so collecting the
    agents' actions in turn and stepping once loses nothing). Also ``envgym.phone.env(...)``."""
    from pettingzoo.utils import parallel_to_aec

    return parallel_to_aec(parallel_env(scenario, learners, **kwargs))


def env(
    scenario: Any = "isp_bill_discount", learners: Sequence[str] | str = _PARTIES, **kwargs: Any
) -> AECEnv:
    """PettingZoo's module idiom for the AEC env: the same as :func:`aec_env`."""
    return aec_env(scenario, learners, **kwargs)


def demo_tasks() -> list[DemoTask]:
    """The phone rows of ``envgym demo``: every shipped scenario, plus a generated set at
    difficulty 2 when the generator is installed."""
    import importlib.util

    from envgym.core.family import DemoTask
    from envgym.phone.scenarios import shipped_names

    tasks = [
        DemoTask("phone", name, "envgym/Phone-v0", {"scenario": name}) for name in shipped_names()
    ]
    if importlib.util.find_spec("envgym.phone.generator") is not None:
        tasks.append(
            DemoTask(
                "phone",
                "generated (difficulty 2)",
                "envgym/Phone-v0",
                {"scenario": "generated", "difficulty": 2},
            )
        )
    return tasks


def __getattr__(name: str) -> Any:
    if name in ("PhoneEnv", "PhoneVectorEnv"):
        from envgym.phone import faces

        return getattr(faces, name)
    if name in ("PhoneParallelEnv", "PhoneParallelVectorEnv", "ParallelVectorEnv"):
        from envgym.phone import multiagent

        return getattr(
            multiagent, "PhoneParallelVectorEnv" if name == "ParallelVectorEnv" else name
        )
    raise AttributeError(name)
