"""Wrappers for envgym envs (importable as ``envgym.wrappers``)."""

from envgym.wrappers.browser import BrowserSlotActions
from envgym.wrappers.numpy_vector import NormalizeObservation, NumpyVector, TransformObservation
from envgym.wrappers.sb3 import SB3VecEnv
from envgym.wrappers.transitions import TransitionRecorder

__all__ = [
    "BrowserSlotActions",
    "NormalizeObservation",
    "NumpyVector",
    "SB3VecEnv",
    "TransformObservation",
    "TransitionRecorder",
]
