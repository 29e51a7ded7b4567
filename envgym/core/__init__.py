"""Contracts shared by every envgym family: vector env base, transition keys, seeding."""

from envgym.core import keys
from envgym.core.info import reset_info
from envgym.core.vector import StepOutput, TorchVectorEnv, resolve_device

__all__ = ["StepOutput", "TorchVectorEnv", "keys", "reset_info", "resolve_device"]
