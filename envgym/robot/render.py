"""Offscreen rendering of robot worlds (``render_mode="rgb_array"``, ``envgym render``).

Headless machines need an offscreen OpenGL: ``MUJOCO_GL=egl`` (default here when no display is
set; needs ``libegl1`` and Mesa's ``libegl-mesa0``/``libgl1-mesa-dri``) or ``MUJOCO_GL=osmesa``.
The goal marker is a mocap body placed at the task's target for the rendered frame only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def _ensure_gl() -> None:
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"


def _world_data(vec: Any, world: int) -> tuple[Any, Any]:
    """A MuJoCo (model, data) pair holding world ``world``'s current state."""
    import mujoco

    eng = vec.engine
    ph = eng.physics
    c = vec.compiled
    if eng.backend == "cpu":
        model = ph.models[world]
        data = mujoco.MjData(model)
        mujoco.mj_setState(model, data, ph.state[world], mujoco.mjtState.mjSTATE_FULLPHYSICS.value)
    else:
        model = c.model
        data = mujoco.MjData(model)
        data.qpos[:] = ph.qpos[world].double().cpu().numpy()
        data.qvel[:] = ph.qvel[world].double().cpu().numpy()
    if eng.k_tgt >= 0 or eng.task.kind == "stack":
        q = eng.quantities(vec.state)
        place = eng.place_point(vec.state, q)[world].cpu().numpy()
        for mocap in c.target_mocap:
            data.mocap_pos[mocap] = place
    mujoco.mj_forward(model, data)
    return model, data


def render_world(
    vec: Any, world: int = 0, camera: str | int = 0, width: int = 512, height: int = 384
) -> np.ndarray:
    """An RGB frame ``[height, width, 3]`` uint8 of one world of a :class:`RobotVectorEnv`."""
    _ensure_gl()
    import mujoco

    model, data = _world_data(vec, world)
    key = (width, height)
    r = vec._renderer
    if r is None or getattr(vec, "_renderer_key", None) != key:
        if r is not None:
            r.close()
        r = mujoco.Renderer(vec.compiled.model, height=height, width=width)
        vec._renderer, vec._renderer_key = r, key
    cam: str | int = camera
    if isinstance(camera, int) and vec.compiled.model.ncam == 0:
        cam = -1  # the free camera
    r.update_scene(data, camera=cam)
    return r.render().copy()


def render_video(
    env_id: str,
    out: str | Path,
    *,
    seed: int = 0,
    steps: int | None = None,
    episodes: int = 1,
    camera: str | int = 0,
    width: int = 512,
    height: int = 384,
    policy: str = "oracle",
    **env_kwargs: Any,
) -> dict[str, Any]:
    """Write an MP4 (or GIF, by extension) of the oracle (or a random policy) on ``env_id``.

    Returns:
        ``{"path", "frames", "episodes", "successes", "fps"}``.
    """
    _ensure_gl()
    import gymnasium as gym
    import imageio.v2 as imageio

    import envgym  # noqa: F401  (registers the ids)

    env = gym.make(
        env_id, render_mode="rgb_array", camera=camera, width=width, height=height, **env_kwargs
    )
    base = env.unwrapped
    fps = int(base.metadata.get("render_fps", 50))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = 0
    successes = done_eps = 0
    rng = np.random.default_rng(seed)
    writer = imageio.get_writer(str(out), fps=fps) if out.suffix != ".gif" else None
    gif_frames: list[np.ndarray] = []

    def emit(frame: np.ndarray) -> None:
        nonlocal frames
        frames += 1
        if writer is not None:
            writer.append_data(frame)
        else:
            gif_frames.append(frame)

    try:
        env.reset(seed=seed)
        emit(env.render())
        limit = steps if steps is not None else 10_000
        for _ in range(limit):
            if policy == "oracle":
                act = base.oracle_action()
            else:
                act = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            _, _, term, trunc, info = env.step(act)
            if term or trunc:
                done_eps += 1
                successes += int(info["success"])
                if done_eps >= episodes and steps is None:
                    break
                env.reset()
            emit(env.render())
    finally:
        if writer is not None:
            writer.close()
        env.close()
    if writer is None:
        imageio.mimsave(str(out), gif_frames, duration=1000 / fps)
    return {
        "path": str(out),
        "frames": frames,
        "episodes": done_eps,
        "successes": successes,
        "fps": fps,
    }
