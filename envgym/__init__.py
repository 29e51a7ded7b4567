"""envgym: worlds for agents that learn a policy and a world model together.

Importing envgym registers its ids with Gymnasium (``envgym/Phone-v0`` and one id per shipped
scenario). It imports no heavy backend: each family loads its own when one of its envs is made.
"""

from __future__ import annotations

from envgym.registration import register_envs

__version__ = "0.1.0"
__all__ = ["__version__", "register_envs"]

register_envs()
