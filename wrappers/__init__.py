"""Wrappers for envgym envs (importable as ``envgym.wrappers``)."""

from envgym.wrappers.transitions import TransitionRecorder

__all__ = ["TransitionRecorder"]
