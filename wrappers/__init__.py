"""Wrappers for envgym envs (importable as ``envgym.wrappers``)."""

from envgym.wrappers.browser import BrowserSlotActions
from envgym.wrappers.numpy_vector import NormalizeObservation, NumpyVector, TransformObservation
from envgym.wrappers.sb3 import SB3VecEnv
from envgym.wrappers.transitions import TransitionRecorder


def __getattr__(name: str) -> object:
    # TorchRL is optional: its adapter is imported on first use only.
    if name in ("TorchRLEnv", "target_info_reader"):
        from envgym.wrappers import torchrl_env

        return getattr(torchrl_env, name)
    raise AttributeError(f"module 'envgym.wrappers' has no attribute {name!r}")


__all__ = [
    "BrowserSlotActions",
    "NormalizeObservation",
    "NumpyVector",
    "SB3VecEnv",
    "TransformObservation",
    "TransitionRecorder",
]
