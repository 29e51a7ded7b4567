"""Gymnasium faces of the robot engine: the vector env (B worlds) and the single env (B=1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from envgym.core import StepOutput, TorchVectorEnv
from envgym.core.errors import InvalidActionError, InvalidStateError
from envgym.core.single import SingleEnv
from envgym.core.vector import ActionRule, world_names
from envgym.robot.compiler import CompiledScene, compile_scene
from envgym.robot.engine import RobotEngine
from envgym.robot.scenes import SceneSpec, load_scene

_COMPILED: dict[str, CompiledScene] = {}


def compiled_scene(scene: SceneSpec) -> CompiledScene:
    """Compile a scene (shipped names are compiled once per process)."""
    if isinstance(scene, str) and scene in _COMPILED:
        return _COMPILED[scene]
    c = compile_scene(load_scene(scene))
    if isinstance(scene, str):
        _COMPILED[scene] = c
    return c


_NP_FLOATS = (torch.float32, torch.float64)

MAX_STATE_ABS = 1e9
"""The largest magnitude a snapshot's float may have (MuJoCo itself calls a state past 1e10
unstable; a goal or return near the float64 limit would overflow the float32 observation)."""


def action_tensor(
    actions: Any,
    num_envs: int,
    act_dim: int,
    device: torch.device,
    single: bool = False,
    worlds: Sequence[int] | np.ndarray | None = None,
) -> torch.Tensor:
    """Validate a batch of Box actions and return it as float32 ``[num_envs, act_dim]``.

    The bad-input rule of the robot family, one function for both faces: real numbers only
    (any float or integer dtype; bool, complex, strings and objects raise), exactly the shape
    ``[num_envs, act_dim]`` (``[act_dim]`` for the single env, or for a vector env of one
    world), every entry finite (NaN/inf raise, naming the worlds); finite values outside
    ``[-1, 1]`` are clipped, in the input's own precision, so ``1e300`` is ``1.0``, not an
    overflow to ``inf``. Errors are :class:`InvalidActionError` and nothing has stepped; the
    worlds they name are rows, or ``worlds[row]`` (:func:`~envgym.core.vector.world_names`).
    """
    want = (act_dim,) if single else (num_envs, act_dim)
    fast = _in_range_actions(actions, want)
    if fast is not None:
        if single:
            fast = fast.reshape(1, act_dim)
        return fast if device.type == "cpu" else fast.to(device)

    def check_shape(shape: tuple[int, ...]) -> None:
        if shape != want and not (num_envs == 1 and shape == (act_dim,)):
            raise InvalidActionError(f"expected actions of shape {want}, got {shape}")

    def non_finite(bad_rows: Any) -> InvalidActionError:
        idx = world_names(np.asarray(bad_rows), worlds)
        return InvalidActionError(f"non-finite actions (NaN or inf) in worlds {idx}")

    if torch.is_tensor(actions) and actions.device.type == "cpu" and actions.dtype in _NP_FLOATS:
        actions = actions.detach().numpy()  # the same checks in NumPy: far cheaper per call
    if torch.is_tensor(actions):
        t = actions.detach()
        if t.dtype == torch.bool or t.dtype.is_complex:
            raise InvalidActionError(f"actions must be real numbers, got dtype {t.dtype}")
        check_shape(tuple(t.shape))
        t = t.reshape(num_envs, act_dim)
        if t.dtype.is_floating_point:
            finite = torch.isfinite(t).all(dim=1)
            if not bool(finite.all()):
                raise non_finite((~finite).cpu().numpy())
        else:
            t = t.to(torch.float64)
        return t.clamp(-1.0, 1.0).to(device=device, dtype=torch.float32)
    try:
        arr = np.asarray(actions)
    except (ValueError, TypeError) as e:  # ragged nesting and the like
        raise InvalidActionError(f"actions must be an array of numbers: {e}") from None
    if arr.dtype.kind not in "fiu":
        raise InvalidActionError(f"actions must be real numbers, got dtype {arr.dtype}")
    check_shape(arr.shape)
    arr = arr.reshape(num_envs, act_dim)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            raise non_finite(~finite)
        # Clipped in the input's own precision (max/min: cheaper calls than np.clip).
        clipped = np.minimum(np.maximum(arr, -1.0), 1.0).astype(np.float32)
    else:
        clipped = np.clip(arr, -1, 1).astype(np.float32)
    return torch.from_numpy(clipped).to(device)


def _in_range_actions(actions: Any, shape: tuple[int, ...]) -> torch.Tensor | None:
    """The common case of :func:`action_tensor` in a few cheap calls: a CPU float tensor or
    (C-contiguous) array of exactly ``shape`` whose entries all lie in ``[-1, 1]`` (so all
    finite: NaN fails both comparisons), as float32 (a float32 tensor is not copied; an array
    always is, so the result never shares a caller's read-only buffer). ``None`` for anything
    else, which the full checks then handle."""
    tensor: torch.Tensor | None = None
    if isinstance(actions, torch.Tensor):
        if actions.device.type != "cpu" or actions.dtype not in _NP_FLOATS:
            return None
        tensor = actions.detach()
        arr = tensor.numpy()
    elif isinstance(actions, np.ndarray) and actions.dtype.kind == "f":
        if not actions.flags.c_contiguous:
            return None
        arr = actions
    else:
        return None
    if arr.shape != shape or not (arr.min() >= -1.0 and arr.max() <= 1.0):
        return None
    if tensor is not None and arr.dtype == np.float32:
        return tensor
    return torch.from_numpy(arr.astype(np.float32))


class RobotVectorEnv(TorchVectorEnv):
    """B worlds of a MuJoCo arm scene stepped together (MuJoCo thread pool or MuJoCo Warp).

    ## Description
    A 6-DoF arm with a two-finger gripper on a table (``scenarios/robot/assets/arm6.xml``)
    solves the scene's task: ``reach`` (grip site to a goal point), ``push`` (a cube's x-y onto
    a goal, fingers closed), ``pick_place`` (a cube to a goal in the air) or ``stack`` (a cube
    released on top of another). Scenes are YAML (``scenarios/robot/*.yaml``).

    ## Observation
    ``Box(-inf, inf, (D,), float32)``, segments in ``envs.obs_layout`` (name, start, end):
    ``arm_qpos`` [6], ``arm_qvel`` [6], ``finger_qpos`` [2], ``grip_pos`` [3], per object
    ``<name>_pos`` [3], ``<name>_quat`` [4] (w, x, y, z), ``<name>_linvel`` [3], then
    ``goal_pos`` [3] when the task has a target.

    ## Action
    ``Box(-1, 1, (7,), float32)``: six arm joints then the gripper (-1 closed, +1 open). With
    ``control: joint_position`` an arm action maps linearly onto the joint's range as a
    position target; with ``joint_torque`` it scales the torque limit. Finite out-of-range
    values are clipped (in the input's precision: ``1e300`` is ``1.0``); NaN/inf, bool,
    complex or non-numeric dtypes and wrong shapes raise :class:`InvalidActionError` (a
    ``ValueError``) before any world steps, on the single env alike (:func:`action_tensor`).

    ## Reward (per term, in ``info["reward_terms"]``, weights per scene)
    ``grip_to_target`` (reach: -distance grip to goal), ``grip_to_object`` (-distance grip to
    object), ``object_to_target`` (-distance object to goal; push: in x-y; stack: to the spot
    on the support), ``success`` (+1 while the goal holds), ``joint_velocity`` (-|arm qvel|^2).

    ## Target
    ``info["next_obs_target"]``: the first ``target_size`` entries of the next observation
    (the physical state: everything but the goal), before any auto-reset.

    ## Starting state
    The arm at its home pose plus uniform noise, fingers open; objects, goal and object
    mass/friction/size drawn per world from the scene's ranges (counter-based: world ``i``
    seeded ``s+i`` matches a single env seeded ``s+i``).

    ## Episode end
    Terminated when the goal holds (``task.terminate_on_success``); truncated after
    ``episode_length`` steps, or at once when the world's physics goes unstable (NaN or a
    velocity above ``physics.unstable_velocity``): that world's state is rolled back to before
    the step (so ``final_obs`` and the target are its last good observation), it gets reward 0,
    ``info["unstable"]`` flags it, and it is reset; the other worlds are untouched.

    ## Arguments
    ``num_envs``, ``scene`` (shipped name, YAML path or a ``RobotScene``), ``backend``
    (``"cpu"`` or ``"warp"``), ``device``, ``num_threads`` (CPU backend pool), ``warp_device``
    (``"cpu"`` or ``"cuda:N"``), ``obs_mode`` (``"state"``, or ``"pixels"``: a ``Dict`` of
    ``state`` and ``pixels``, uint8 ``[image_size, image_size, 3]`` from ``camera``, rendered
    per world; the target stays the physical state), ``episode_length`` (override).

    ## Version history
    - v0: initial release.
    """

    metadata: dict[str, Any] = {**TorchVectorEnv.metadata, "render_modes": ["rgb_array"]}

    def __init__(
        self,
        num_envs: int = 1,
        scene: SceneSpec = "reach",
        *,
        backend: str = "cpu",
        device: str | torch.device | None = "cpu",
        num_threads: int | None = None,
        warp_device: str | None = None,
        obs_mode: str = "state",
        render_mode: str | None = None,
        episode_length: int | None = None,
        image_size: int = 64,
        camera: str | int = 0,
    ) -> None:
        super().__init__(num_envs, device)
        if obs_mode not in ("state", "pixels"):
            raise ValueError(f"obs_mode must be 'state' or 'pixels', got {obs_mode!r}")
        self.obs_mode = obs_mode
        self._pixel_args = (camera, int(image_size), int(image_size))
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.compiled = compiled_scene(scene)
        if episode_length is not None:
            # Same model, shorter (or longer) episodes: the scene is data.
            sc = self.compiled.scene.model_copy(update={"episode_length": int(episode_length)})
            self.compiled = replace(self.compiled, scene=sc)
        self.engine = RobotEngine(
            self.compiled, self.num_envs, self.device, backend, num_threads, warp_device
        )
        self.backend = backend
        lay = self.engine.layout
        self.obs_layout = lay.names
        self.target_size = lay.target_size
        state_space = spaces.Box(-np.inf, np.inf, (lay.size,), np.float32)
        self.single_observation_space: spaces.Space = state_space
        if obs_mode == "pixels":
            px = spaces.Box(0, 255, (int(image_size), int(image_size), 3), np.uint8)
            self.single_observation_space = spaces.Dict({"state": state_space, "pixels": px})
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.engine.act_dim,), np.float32)
        self.single_target_space = spaces.Box(-np.inf, np.inf, (lay.target_size,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.target_space = batch_space(self.single_target_space, self.num_envs)
        self.reward_term_names = tuple(self.compiled.scene.task.reward)
        self.state = self.engine.empty_state()
        self._obs: Any = None
        self._renderer: Any = None
        self._final_frame_args: tuple[Any, int, int] | None = None
        self._final_frame: np.ndarray | None = None

    # ------------------------------------------------------------------ engine hooks
    def _reset_worlds(self, mask: torch.Tensor, seeds: torch.Tensor | None) -> None:
        self.engine.reset(self.state, mask, seeds)
        self._obs = None

    def _convert_actions(self, actions: Any) -> torch.Tensor:
        return action_tensor(actions, self.num_envs, self.engine.act_dim, self.device)

    def action_rule(self) -> ActionRule:
        """:func:`action_tensor` for this scene's action size (see
        :meth:`TorchVectorEnv.action_rule`)."""
        return partial(action_tensor, act_dim=self.engine.act_dim, device=torch.device("cpu"))

    def _step_worlds(self, actions: torch.Tensor) -> StepOutput:
        out = self.engine.step(self.state, actions)
        self._obs = self._with_pixels(out["obs"])
        if self._final_frame_args is not None and bool((out["terminated"] | out["truncated"])[0]):
            # World 0's last frame of an episode, before the auto-reset replaces it.
            self._final_frame = self.render(0, *self._final_frame_args)
        return StepOutput(
            reward=out["reward"],
            terminated=out["terminated"],
            truncated=out["truncated"],
            next_obs_target=out["target"],
            reward_terms=out["reward_terms"],
            success=out["success"],
            action_error=self._no_action_errors(),
            extra={"unstable": out["unstable"]},
            returns=out.get("returns"),
            done=out.get("done"),
            any_done=out.get("any_done"),
        )

    def _no_action_errors(self) -> torch.Tensor:
        """``action_error`` of a step: zeros (every finite action is carried out)."""
        if self.device.type == "cpu":  # NumPy's allocation is the cheaper call
            return torch.from_numpy(np.zeros(self.num_envs, dtype=np.int64))
        return torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def _observe(self) -> Any:
        if self._obs is None:
            self._obs = self._with_pixels(self.engine.observe(self.state))
        return self._obs

    def _with_pixels(self, state_obs: torch.Tensor) -> Any:
        if self.obs_mode == "state":
            return state_obs
        frames = np.stack([self.render(w, *self._pixel_args) for w in range(self.num_envs)])
        return {"state": state_obs, "pixels": torch.from_numpy(frames).to(self.device)}

    def target_from_obs(self, obs: Any) -> torch.Tensor:
        """The target is the physical-state prefix of the (state) observation."""
        if isinstance(obs, dict):
            obs = obs["state"]
        return obs[..., : self.target_size]

    # ------------------------------------------------------------------ snapshots
    def set_state(
        self, state: Mapping[str, torch.Tensor], worlds: Sequence[int] | torch.Tensor | None = None
    ) -> None:
        """Write a snapshot back (see :meth:`TorchVectorEnv.set_state`), then re-apply the
        per-world model parameters (masses, friction, sizes) that the snapshot's ``scales``
        imply to the physics backend.

        Everything is checked before anything is written (a refused snapshot leaves every
        world as it was): the vector base checks the keys, each value's dtype and shape and
        ``worlds``; :meth:`_check_state_values` adds the robot's value rules (every float
        finite and within ``±MAX_STATE_ABS``, ``scales`` within ``[1e-3, 1e3]``, counters
        non-negative). Refusals raise :class:`~envgym.core.errors.InvalidStateError`, a
        ``ValueError``.
        """
        super().set_state(state, worlds)
        all_worlds = torch.arange(self.num_envs)
        self.engine.physics.set_object_params(all_worlds, self.state["scales"])
        self.engine.physics.after_set_state()
        self._obs = None

    def _check_state_values(
        self, state: dict[str, torch.Tensor], worlds: torch.Tensor | None
    ) -> None:
        for k, v in state.items():
            if v.dtype.is_floating_point and not bool((v.abs() <= MAX_STATE_ABS).all()):
                raise InvalidStateError(
                    f"state[{k!r}] holds NaN, inf or a value beyond ±{MAX_STATE_ABS:g}"
                )
            if k in ("t", "episode", "__episode_length") and bool((v < 0).any()):
                raise InvalidStateError(f"state[{k!r}] must be non-negative")
        sc = state["scales"]
        if bool(((sc < 1e-3) | (sc > 1e3)).any()):
            raise InvalidStateError("state['scales'] must lie in [1e-3, 1e3]")

    # ------------------------------------------------------------------ extras
    def oracle_action(self) -> torch.Tensor:
        """One action per world from the scripted controller (IK plus grasp logic)."""
        return self.engine.oracle(self.state)

    def raw_step_seconds(self, actions: Any) -> float:
        """The raw baseline of ``envgym bench`` for one step: seconds of the bare physics
        (``mujoco.rollout``, or ``mujoco_warp.step`` on the Warp backend) doing the physics
        of ``env.step(actions)`` from the current state, the state left as it is. Timed
        before each timed step, so the baseline does the work the env does under any policy
        (a policy that grasps makes contacts, which cost more than random flailing)."""
        return self.engine.physics.raw_step_seconds(
            self.engine.controls(self._convert_actions(actions))
        )

    def raw_baseline_name(self) -> str:
        """What :meth:`raw_step_seconds` times, in words (``envgym bench``'s row says it)."""
        ph = self.engine.physics
        if self.backend == "cpu":
            return (
                f"raw mujoco.rollout of each step's own physics (its state and controls), "
                f"same models, {ph.num_threads} threads, {ph.substeps} physics steps per env step"
            )
        return (
            f"raw mujoco_warp.step x{ph.substeps} of each step's own physics, same model and device"
        )

    def record_final_frames(self, camera: str | int, width: int, height: int) -> None:
        """From now on, render world 0's last state of every episode that ends (before the
        auto-reset replaces it) with ``camera`` at ``width`` x ``height``: :attr:`final_frame`.
        The single env's ``render()`` shows it once its episode has ended."""
        self._final_frame_args = (camera, int(width), int(height))

    @property
    def final_frame(self) -> np.ndarray | None:
        """World 0's frame of the last episode that ended (:meth:`record_final_frames`), or
        ``None`` before one ended while recording."""
        return self._final_frame

    def render(self, world: int = 0, camera: str | int = 0, width: int = 512, height: int = 384):
        """An RGB frame ``[H, W, 3]`` uint8 of world ``world`` from a scene camera."""
        from envgym.robot.render import render_world

        return render_world(self, world, camera, width, height)

    def close(self, **kwargs: Any) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.engine.physics.close()


class RobotEnv(SingleEnv):
    """One world of a robot scene: the batched engine at B=1.

    Observation, action and target spaces are those of :class:`RobotVectorEnv` for one world,
    as NumPy arrays. ``info`` has ``next_obs_target``, ``reward_terms``, ``success``,
    ``action_error`` (always ``""``: every finite action can be carried out) and
    ``unstable``. ``render_mode="rgb_array"`` renders the scene's first camera.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        scene: SceneSpec = "reach",
        *,
        backend: str = "cpu",
        device: str | torch.device | None = "cpu",
        warp_device: str | None = None,
        render_mode: str | None = None,
        obs_mode: str = "state",
        camera: str | int = 0,
        width: int = 512,
        height: int = 384,
        episode_length: int | None = None,
        image_size: int = 64,
    ) -> None:
        vec = RobotVectorEnv(
            1,
            scene,
            backend=backend,
            device=device,
            num_threads=1,
            warp_device=warp_device,
            obs_mode=obs_mode,
            render_mode=render_mode,
            episode_length=episode_length,
            image_size=image_size,
            camera=camera,
        )
        super().__init__(vec, render_mode)
        self.vec: RobotVectorEnv = vec
        self.obs_layout = self.vec.obs_layout
        self.compiled = self.vec.compiled
        self.metadata = {
            **self.metadata,
            "render_fps": round(
                1.0 / (self.compiled.scene.physics.timestep * self.compiled.scene.physics.substeps)
            ),
        }
        self._camera, self._size = camera, (width, height)
        if render_mode == "rgb_array":
            self.vec.record_final_frames(camera, width, height)

    # ------------------------------------------------------------------ SingleEnv hooks
    def _to_vector_action(self, action: Any) -> torch.Tensor:
        return action_tensor(action, 1, self.vec.engine.act_dim, self.vec.device, single=True)

    def _reset_extra(self, obs: Any) -> dict[str, Any]:
        return {"unstable": False}

    def _step_extra(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"unstable": bool(info["unstable"][0])}

    def oracle_action(self) -> np.ndarray:
        """The scripted controller's action for the current state."""
        return self.vec.oracle_action()[0].cpu().numpy()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        final = self.vec.final_frame
        if self._ended and final is not None:
            return final  # the episode's last state (the world has reset)
        return self.vec.render(0, self._camera, *self._size)
