"""envgym: worlds for agents that learn a policy and a world model together.

Importing envgym registers its ids with Gymnasium (``envgym/Phone-v0`` and one id per shipped
scenario) and makes forked child processes fork-safe for torch (``envgym.core.fork``). It
imports no heavy backend: each family loads its own when one of its envs is made.
"""

from __future__ import annotations

from envgym.core import fork
from envgym.registration import register_envs

__version__ = "0.1.0"
__all__ = ["__version__", "register_envs"]

fork.install()  # forked workers (async vector envs, multiprocessing) use one torch thread
register_envs()
