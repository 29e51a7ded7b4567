"""Conformance checkers users can run on their own envs and scenarios."""

from envgym.testing.vector_checks import (
    check_action_mask,
    check_batch_vs_single,
    check_single_env,
    check_vector_env,
    sample_actions,
)

__all__ = [
    "check_action_mask",
    "check_batch_vs_single",
    "check_single_env",
    "check_vector_env",
    "sample_actions",
]
