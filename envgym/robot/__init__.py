"""The robot family: a MuJoCo arm on a table (reach, push, pick-and-place, stack).

Importing this package loads no backend: MuJoCo (and MuJoCo Warp) load when an env is made.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

# MuJoCo picks its OpenGL backend when it is first imported: on a machine without a display
# default to headless EGL so that rendering works whichever module imports MuJoCo first.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

if TYPE_CHECKING:
    from envgym.core.family import DemoTask
    from envgym.robot.env import RobotEnv, RobotVectorEnv

__all__ = ["RobotEnv", "RobotVectorEnv", "demo_tasks", "make_single", "make_vector"]

INSTALL_HINT = "the robot family needs MuJoCo: pip install -e '.[robot]'"


def require_mujoco() -> None:
    """Raise ``ImportError`` naming the install command when MuJoCo is missing."""
    if importlib.util.find_spec("mujoco") is None:
        raise ImportError(INSTALL_HINT)


def make_single(**kwargs: Any) -> RobotEnv:
    """Entry point of ``gym.make('envgym/Robot-Reach-v0', ...)``."""
    require_mujoco()
    from envgym.robot.env import RobotEnv

    return RobotEnv(**kwargs)


def make_vector(num_envs: int = 1, **kwargs: Any) -> RobotVectorEnv:
    """Entry point of ``gym.make_vec(..., vectorization_mode='vector_entry_point')``."""
    require_mujoco()
    from envgym.robot.env import RobotVectorEnv

    kwargs.pop("render_mode", None)
    return RobotVectorEnv(num_envs=num_envs, **kwargs)


def demo_tasks() -> list[DemoTask]:
    """The robot rows of ``envgym demo`` (skipped when MuJoCo is not installed)."""
    from envgym.core.family import DemoTask
    from envgym.robot.ids import TASKS

    if importlib.util.find_spec("mujoco") is None:
        return []
    # Physics-heavy on a CPU: a few worlds for a couple of episodes keep the demo short.
    return [
        DemoTask("robot", scene, env_id, {}, max_envs=32, max_steps=160)
        for env_id, scene, _ in TASKS
    ]


def __getattr__(name: str) -> Any:
    if name in ("RobotEnv", "RobotVectorEnv"):
        require_mujoco()
        from envgym.robot import env

        return getattr(env, name)
    raise AttributeError(name)
