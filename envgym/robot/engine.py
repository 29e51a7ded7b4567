"""The batched robot engine: resets, actions, observations, rewards and the oracle.

One implementation for every batch size and backend: the physics backend steps B worlds and
exposes ``qpos``/``qvel`` as torch tensors; everything else here is array code over the world
dimension, so the single env (B=1) and the vector env cannot drift apart.

The task's rules (:meth:`RobotEngine.place_point`, :meth:`RobotEngine.success_and_terms`) are
written once for torch tensors and NumPy arrays alike. On the CPU backend (with a CPU
``device``) a whole step runs as one NumPy pass over the physics' own float64 state array
(:meth:`RobotEngine._step_np`: controls, rollout, stability, forward kinematics, rules, reward,
flags, observation), because torch's per-op dispatch cost more than the rollout itself at
small batch sizes; the results are handed out as torch tensors without a copy. Other
configurations (MuJoCo Warp) run the same rules in torch (:meth:`RobotEngine._step_torch`).
Resets run on the host in NumPy for every backend (:meth:`RobotEngine.reset`): they touch a
few worlds at a time, where torch's per-op cost was most of a reset's.

Randomness is counter-based (:mod:`envgym.core.rng`): world ``i`` draws from
``(seed_i, episode_i, stream)`` alone, whatever the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from envgym.core import rng
from envgym.robot.compiler import CompiledScene
from envgym.robot.kinematics import ArmKinematics, down_orientation, ik_step
from envgym.robot.models import Range

F64 = torch.float64

# rng stream ids (fixed: changing them changes every episode). All of a reset's draws are
# hashed in one vectorised call over these streams.
_S_HOME = 0  # + joint (< 16)
_S_SCALE = 16  # + 4 * object + quantity (objects < 8)
_S_OBJ = 64  # + 50 * object + 3 * candidate (+1 for y; 49: yaw)
_S_TGT = 464  # + 4 * candidate + coordinate
_CANDIDATES = 16
_TORQUE_KP = 120.0  # oracle's joint stiffness in joint_torque mode (N m / rad)


@dataclass
class ObsLayout:
    """Where each quantity sits in the flat observation vector (see docs/robot.md)."""

    names: list[tuple[str, int, int]]
    """(name, start, end) of each segment."""
    size: int
    target_size: int
    """The first ``target_size`` entries form ``next_obs_target`` (the physical state)."""


@dataclass
class _ResetTable:
    """Every uniform draw of a reset as one table, built once per engine: draw ``j`` of a
    world is ``low[j] + u * span[j]``, with ``u`` the world's uniform of rng stream
    ``streams[j]`` (the same float64 arithmetic as one draw at a time); ``cols`` names the
    draws' column ranges (``home``, ``scales``, ``x<k>``/``y<k>``/``yaw<k>`` per object,
    ``goal_x``/``goal_y``/``goal_z`` for the target's candidates)."""

    streams: rng.FixedKey
    """The draws' rng streams, int64 ``[1, K]``, hashed once."""
    low: np.ndarray
    span: np.ndarray
    cols: dict[str, slice]

    @staticmethod
    def build(eng: RobotEngine) -> _ResetTable:
        c, sc = eng.c, eng.c.scene
        draws: list[tuple[Range, int]] = []
        cols: dict[str, slice] = {}

        def add(name: str, more: list[tuple[Range, int]]) -> None:
            cols[name] = slice(len(draws), len(draws) + len(more))
            draws.extend(more)

        noise = sc.robot.home_noise
        add("home", [(Range(low=-noise, high=noise), _S_HOME + j) for j in range(c.n_arm)])
        add("scales", [
            (rr, _S_SCALE + 4 * k + a)
            for k, o in enumerate(sc.objects)
            for a, rr in enumerate((o.randomize.mass_scale, o.randomize.friction_scale,
                                    o.randomize.size_scale))
        ])  # fmt: skip
        for k, o in enumerate(sc.objects):
            pl = o.placement
            # The task object of a stack is redrawn until far enough from its support.
            cands = _CANDIDATES if (eng.task.kind == "stack" and k == eng.k_obj) else 1
            add(f"x{k}", [(pl.x, _S_OBJ + 50 * k + 3 * i) for i in range(cands)])
            add(f"y{k}", [(pl.y, _S_OBJ + 50 * k + 3 * i + 1) for i in range(cands)])
            add(f"yaw{k}", [(pl.yaw, _S_OBJ + 50 * k + 49)])
        if eng.k_tgt >= 0:
            pl = sc.targets[eng.k_tgt].placement
            for a, r in enumerate((pl.x, pl.y, pl.z)):
                if r is not None:
                    add(f"goal_{'xyz'[a]}", [(r, _S_TGT + 4 * i + a) for i in range(_CANDIDATES)])
        return _ResetTable(
            streams=rng.FixedKey(np.array([[s for _, s in draws]], dtype=np.int64)),
            low=np.array([r.low for r, _ in draws]),
            span=np.array([r.high - r.low for r, _ in draws]),
            cols=cols,
        )

    def draw(self, seed: np.ndarray, episode: np.ndarray) -> np.ndarray:
        """Every draw of the worlds with these seeds and episodes (int64 ``[n]``): float64
        ``[n, K]``."""
        u = rng.uniform(seed[:, None], episode[:, None], self.streams)
        return self.low + u.astype(np.float64) * self.span


def quat_yaw(q: torch.Tensor) -> torch.Tensor:
    """Yaw (rotation about world z) of quaternions ``[..., 4]`` (w, x, y, z)."""
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _wrap(a: torch.Tensor, period: float) -> torch.Tensor:
    """``a`` wrapped into ``[-period/2, period/2)``."""
    return torch.remainder(a + period / 2, period) - period / 2


def _clip_norm(v: torch.Tensor, max_norm: float | torch.Tensor) -> torch.Tensor:
    n = v.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return v * torch.clamp(max_norm / n, max=1.0)


class RobotEngine:
    """B worlds of one compiled scene on a physics backend.

    Args:
        c: the compiled scene.
        num_worlds: B.
        device: where observations, rewards and flags live.
        backend: ``"cpu"`` (mujoco.rollout thread pool) or ``"warp"`` (MuJoCo Warp).
        num_threads: CPU backend pool size (default: the CPUs this process may use).
        warp_device: Warp backend device (default: ``"cuda:N"`` for a CUDA ``device``, else
            ``"cpu"``).
    """

    def __init__(
        self,
        c: CompiledScene,
        num_worlds: int,
        device: torch.device,
        backend: str = "cpu",
        num_threads: int | None = None,
        warp_device: str | None = None,
    ) -> None:
        self.c = c
        self.B = num_worlds
        self.device = device
        sc = c.scene
        if backend == "cpu":
            from envgym.robot.physics import CpuPhysics

            self.physics: Any = CpuPhysics(c, num_worlds, num_threads)
        elif backend == "warp":
            from envgym.robot.warp_physics import WarpPhysics

            self.physics = WarpPhysics(c, num_worlds, device, warp_device)
        else:
            raise ValueError(f"backend must be 'cpu' or 'warp', got {backend!r}")
        self.backend = backend
        # The CPU backend's float64 state array (small-batch math in NumPy reads it directly).
        self._np_state = getattr(self.physics, "state", None) if backend == "cpu" else None
        self._reward_w: torch.Tensor | None = None
        # Kinematics on the physics' device (float64), results moved to `device`.
        self.pdev = self.physics.qpos.device
        self.kin = ArmKinematics(c, self.pdev)
        self.task = sc.task
        self.obj_index = {o.name: i for i, o in enumerate(sc.objects)}
        self.tgt_index = {t.name: i for i, t in enumerate(sc.targets)}
        self.k_obj = self.obj_index.get(sc.task.object or "", -1)
        self.k_sup = self.obj_index.get(sc.task.support or "", -1)
        self.k_tgt = self.tgt_index.get(sc.task.target or "", -1)
        self.act_dim = c.n_arm + 1
        lo = torch.as_tensor(c.arm_range[:, 0], dtype=F64, device=self.pdev)
        hi = torch.as_tensor(c.arm_range[:, 1], dtype=F64, device=self.pdev)
        self.arm_lo, self.arm_hi = lo, hi
        self.fin_lo, self.fin_hi = float(c.finger_range[0]), float(c.finger_range[1])
        self.home = torch.as_tensor(sc.robot.home, dtype=F64, device=self.pdev)
        # Per-object constants as Python floats (they combine with tensors and arrays alike).
        self.half_h = [float(h) for h in c.object_half_height]
        self.radius = [float(r) for r in c.object_radius]
        self.layout = self._layout()
        self._qspec = self._quantity_spec()
        self._np = _NumpyPlan.build(self) if self._np_state is not None else None
        self._reset_table = _ResetTable.build(self)
        q0 = torch.zeros(1, c.model.nq, dtype=F64, device=self.pdev)
        q0[0, c.arm_qpos] = self.home
        self.home_grip = self.kin.forward(q0)[0][0]
        self._home, self._home_grip = self.home.cpu().numpy(), self.home_grip.cpu().numpy()

    # ------------------------------------------------------------------ state
    def empty_state(self) -> dict[str, torch.Tensor]:
        """The engine's explicit state (leading dim B); the backend's tensors are views."""
        B, dev, n_obj = self.B, self.device, self.c.n_obj
        st = dict(self.physics.state_tensors())
        st["goal"] = torch.zeros(B, 3, dtype=F64, device=self.pdev)
        st["scales"] = torch.ones(B, max(n_obj, 1), 3, dtype=F64, device=self.pdev)
        st["seed"] = torch.zeros(B, dtype=torch.int64, device=dev)
        st["episode"] = torch.zeros(B, dtype=torch.int64, device=dev)
        st["t"] = torch.zeros(B, dtype=torch.int64, device=dev)
        return st

    def _layout(self) -> ObsLayout:
        c = self.c
        segs: list[tuple[str, int]] = [
            ("arm_qpos", c.n_arm),
            ("arm_qvel", c.n_arm),
            ("finger_qpos", 2),
            ("grip_pos", 3),
        ]
        for o in c.scene.objects:
            segs += [(f"{o.name}_pos", 3), (f"{o.name}_quat", 4), (f"{o.name}_linvel", 3)]
        target_size = sum(n for _, n in segs)
        if self.k_tgt >= 0:
            segs.append(("goal_pos", 3))
        names, at = [], 0
        for name, n in segs:
            names.append((name, at, at + n))
            at += n
        return ObsLayout(names, at, target_size)

    # ------------------------------------------------------------------ reset
    def reset(self, st: dict[str, torch.Tensor], mask: torch.Tensor, seeds: Any) -> None:
        """New episodes in the masked worlds (fresh seeds, or each world's next episode).

        The new episodes are computed on the host in NumPy whatever the backend (a reset
        touches a few worlds at a time, where a NumPy call costs a fraction of a torch op),
        with torch's own ``cos``, ``sin``, ``hypot`` and norm, whose bits the episodes were
        first drawn with (NumPy's differ in the last bit for ~0.1% of inputs)."""
        mask = mask.to(self.device)
        if not bool(mask.any()):
            return
        if seeds is not None:
            st["seed"][mask] = seeds.to(self.device)[mask]
            st["episode"][mask] = 0
        else:
            st["episode"][mask] += 1
        st["t"][mask] = 0
        idx = torch.nonzero(mask).flatten()
        draws = self._reset_table.draw(
            st["seed"][idx].cpu().numpy(), st["episode"][idx].cpu().numpy()
        )
        qpos, scales, pos = self._reset_bodies(draws)
        goal = self._reset_goal(draws, pos)
        pidx = idx.to(self.pdev)
        scales_t = torch.from_numpy(scales).to(self.pdev)
        self.physics.set_object_params(pidx, scales_t)
        self.physics.write(pidx, qpos)
        st["goal"][pidx] = torch.from_numpy(goal).to(self.pdev)
        st["scales"][pidx] = scales_t

    def _reset_bodies(self, draws: np.ndarray) -> tuple[np.ndarray, ...]:
        """The new episodes' joint positions ``[n, nq]``, object scales ``[n, n_obj, 3]``
        (mass, friction, size) and object positions ``[n, n_obj, 3]`` from their draws."""
        c, cols = self.c, self._reset_table.cols
        n, n_obj = draws.shape[0], max(self.c.n_obj, 1)
        qpos = np.zeros((n, c.model.nq))
        qpos[:, c.arm_qpos] = self._home + draws[:, cols["home"]]
        qpos[:, c.finger_qpos] = self.fin_hi * 0.9
        # Object scales first: sizes set resting heights.
        scales = np.ones((n, n_obj, 3))
        scales[:, : c.n_obj] = draws[:, cols["scales"]].reshape(n, c.n_obj, 3)
        pos = np.zeros((n, n_obj, 3))
        for k in range(c.n_obj):
            xs, ys = draws[:, cols[f"x{k}"]], draws[:, cols[f"y{k}"]]
            if xs.shape[1] > 1:  # the first candidate far enough from the support (so far)
                sup = pos[:, self.k_sup, :2]
                d = _torch_op(torch.hypot, xs - sup[:, :1], ys - sup[:, 1:])
                pick = _first_true(d >= self.task.min_start_distance)[:, None]
                xs, ys = np.take_along_axis(xs, pick, 1), np.take_along_axis(ys, pick, 1)
            pos[:, k, 0], pos[:, k, 1] = xs[:, 0], ys[:, 0]
            pos[:, k, 2] = self.half_h[k] * scales[:, k, 2]
            half_yaw = draws[:, cols[f"yaw{k}"].start] / 2
            a = int(c.object_qpos[k])
            qpos[:, a : a + 3] = pos[:, k]
            qpos[:, a + 3] = _torch_op(torch.cos, half_yaw)
            qpos[:, a + 6] = _torch_op(torch.sin, half_yaw)
        return qpos, scales, pos

    def _reset_goal(self, draws: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """The new episodes' goals ``[n, 3]``: the first of the target's candidates far enough
        from the task object (or, for reach, the home grip), the object's height unless the
        target draws one."""
        n, cols = draws.shape[0], self._reset_table.cols
        if self.k_tgt < 0:
            return np.zeros((n, 3))
        ref = pos[:, self.k_obj] if self.k_obj >= 0 else np.broadcast_to(self._home_grip, (n, 3))
        xs, ys = draws[:, cols["goal_x"]], draws[:, cols["goal_y"]]
        if "goal_z" in cols:
            zs = draws[:, cols["goal_z"]]
        elif self.k_obj >= 0:
            zs = np.broadcast_to(pos[:, self.k_obj, 2:], (n, _CANDIDATES))
        else:
            zs = np.zeros_like(xs)
        cands = np.stack((xs, ys, zs), -1)  # [n, C, 3]
        # reach: the whole distance to the home grip; else the distance on the table
        apart = cands - ref[:, None] if self.k_obj < 0 else cands[..., :2] - ref[:, None, :2]
        d = _torch_op(partial(torch.linalg.vector_norm, dim=-1), apart)
        pick = _first_true(d >= self.task.min_start_distance)
        return cands[np.arange(n), pick]

    # ------------------------------------------------------------------ quantities
    def quantities(self, st: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named float64 quantities of every world (on the physics device)."""
        qpos, qvel = self.physics.qpos.to(F64), self.physics.qvel.to(F64)
        if self._np_state is not None:
            # CPU backend: the state is a NumPy array; FK in NumPy (zero-copy views back).
            g, r = self.kin.forward_np(self._np_state[:, self.physics.qpos_slice])
            grip, R = torch.from_numpy(g), torch.from_numpy(r)
        else:
            grip, R, _ = self.kin.forward(qpos)
        return self._named(qpos, qvel, grip, R, st["goal"])

    def _quantity_spec(self) -> dict[str, tuple[bool, slice | list[int]]]:
        """Each quantity read straight off the physical state: (is a velocity, its index)."""
        c = self.c
        spec: dict[str, tuple[bool, slice | list[int]]] = {
            "arm_qpos": (False, _index(c.arm_qpos)),
            "arm_qvel": (True, _index(c.arm_dof)),
            "finger_qpos": (False, _index(c.finger_qpos)),
        }
        for k, o in enumerate(c.scene.objects):
            a, v = int(c.object_qpos[k]), int(c.object_dof[k])
            spec[f"{o.name}_pos"] = (False, slice(a, a + 3))
            spec[f"{o.name}_quat"] = (False, slice(a + 3, a + 7))
            spec[f"{o.name}_linvel"] = (True, slice(v, v + 3))
        return spec

    def _named(self, qpos: Any, qvel: Any, grip: Any, R: Any, goal: Any) -> dict[str, Any]:
        """The named quantities as views of ``qpos``/``qvel`` (torch tensors or NumPy arrays)."""
        q = {name: (qvel if vel else qpos)[:, i] for name, (vel, i) in self._qspec.items()}
        q.update(grip_pos=grip, hand_rot=R, goal=goal, goal_pos=goal)
        return q

    def observe(
        self, st: dict[str, torch.Tensor], q: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``[B, obs_size]`` float32 observations on ``device`` (new tensors)."""
        plan = self._np
        if q is None and plan is not None and self.device.type == "cpu":
            # The CPU backend: the NumPy step's own observation (after a reset, a snapshot).
            S = self.physics.state
            grip, _ = self.kin.forward_np(S[:, self.physics.qpos_slice])
            return torch.from_numpy(plan.observation(S, grip, plan.arrays(st)["goal"]))
        if q is None:
            q = self.quantities(st)
        parts = [q[name] for name, _, _ in self.layout.names]
        return torch.cat(parts, dim=-1).to(device=self.device, dtype=torch.float32)

    def place_point(self, st: dict[str, Any], q: dict[str, Any]) -> Any:
        """Where the task wants the object (or, for reach, the grip) to be (torch or NumPy)."""
        if self.task.kind == "stack":
            sc = st["scales"]
            sup = self.c.scene.objects[self.k_sup].name
            h = self.half_h[self.k_obj] * sc[:, self.k_obj, 2]
            hs = self.half_h[self.k_sup] * sc[:, self.k_sup, 2]
            out = _copy(q[f"{sup}_pos"])
            out[:, 2] = out[:, 2] + h + hs
            return out
        return st["goal"]

    def success_and_terms(
        self, st: dict[str, Any], q: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Success ``[B]`` and the unweighted reward terms of the current state.

        The task's rules, one home for both array kinds: ``st`` and ``q`` hold torch tensors
        (any device) or NumPy arrays, and so do the results.
        """
        kind, tol = self.task.kind, self.task.tolerance
        grip = q["grip_pos"]
        terms: dict[str, Any] = {"joint_velocity": -(q["arm_qvel"] ** 2).sum(-1)}
        place = self.place_point(st, q)
        if kind == "reach":
            d = _norm(grip - place)
            terms["grip_to_target"] = -d
            success = d < tol
        else:
            obj = q[f"{self.c.scene.objects[self.k_obj].name}_pos"]
            terms["grip_to_object"] = -_norm(grip - obj)
            if kind == "push":
                d = _norm(obj[:, :2] - place[:, :2])
                success = d < tol
            elif kind == "pick_place":
                d = _norm(obj - place)
                success = d < tol
            else:  # stack: on the support, released
                d = _norm(obj - place)
                dxy = _norm(obj[:, :2] - place[:, :2])
                dz = abs(obj[:, 2] - place[:, 2])
                w = self.radius[self.k_obj] * st["scales"][:, self.k_obj, 2]
                released = q["finger_qpos"].mean(-1) > w + 0.004
                success = (dxy < tol) & (dz < 0.01) & released
            terms["object_to_target"] = -d
        return success, terms

    # ------------------------------------------------------------------ actions
    def controls(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions ``[B, n_arm + 1]`` in [-1, 1] -> MuJoCo controls ``[B, nu]`` (float64)."""
        if self._np is not None and actions.device.type == "cpu":
            ctrl = np.empty((actions.shape[0], 1, self.c.model.nu))
            self._controls_np(actions.detach().numpy(), ctrl)
            return torch.from_numpy(ctrl[:, 0])
        r = self.c.scene.robot
        a = actions.to(device=self.pdev, dtype=F64).clamp(-1.0, 1.0)
        if r.control == "joint_position":
            arm = self.arm_lo + (a[:, :-1] + 1) * 0.5 * (self.arm_hi - self.arm_lo)
        else:
            arm = a[:, :-1] * r.torque_limit
        fin = self.fin_lo + (a[:, -1:] + 1) * 0.5 * (self.fin_hi - self.fin_lo)
        return torch.cat([arm, fin, fin], dim=-1)

    def _controls_np(self, actions: np.ndarray, out: np.ndarray) -> None:
        """:meth:`controls` in NumPy, written into ``out`` ``[B, k, nu]`` (the same controls
        in each of the ``k`` rows: the physics' per-substep buffer): the same elementwise
        float64 operations (bit-identical results, far fewer dispatch costs at small batch
        sizes)."""
        plan = self._np
        assert plan is not None
        # Every control is lo + (a + 1) / 2 * span of its action column (the gripper's drives
        # both fingers; halving is exact, so (a + 1) * (span / 2) rounds alike); in torque
        # mode the arm's are a * torque_limit instead.
        x = actions[:, plan.ctrl_cols].astype(np.float64)
        np.minimum(np.maximum(x, -1.0, out=x), 1.0, out=x)
        if plan.torque_limit is None:
            x += 1
            x *= plan.ctrl_half_span
            np.add(x[:, None], plan.ctrl_lo, out=out)
            return
        fin = slice(self.c.n_arm, None)
        x[:, fin] += 1
        x[:, fin] *= plan.ctrl_half_span[fin]
        x[:, fin] += plan.ctrl_lo[fin]
        x[:, : self.c.n_arm] *= plan.torque_limit
        out[:] = x[:, None]

    # ------------------------------------------------------------------ step
    def step(self, st: dict[str, torch.Tensor], actions: torch.Tensor) -> dict[str, Any]:
        """One transition of every world (no auto-reset).

        Returns ``reward`` (float32 ``[B]``, the sum of ``reward_terms``), ``reward_terms``
        (weighted, float32), ``success``, ``terminated``, ``truncated``, ``unstable`` (bool),
        ``obs`` (float32 ``[B, obs_size]``) and ``target`` (its first ``target_size``
        columns, a view), all new tensors on ``device``.
        """
        if self._np is not None and self.device.type == "cpu" and actions.is_cpu:
            return self._step_np(st, actions.detach().numpy())
        return self._step_torch(st, actions)

    def _step_np(self, st: dict[str, torch.Tensor], actions: np.ndarray) -> dict[str, Any]:
        """The CPU backend's step as one NumPy pass (see the module docstring)."""
        ph, plan, task = self.physics, self._np, self.task
        assert plan is not None
        self._controls_np(actions, ph.ctrl)
        unstable, any_unstable = ph.step_np()
        S = ph.state
        grip, R = self.kin.forward_np(S[:, ph.qpos_slice])
        arrays = plan.arrays(st)
        goal = arrays["goal"]
        q = _StateView(S, plan.state_cols, grip_pos=grip, hand_rot=R, goal=goal, goal_pos=goal)
        success, terms = self.success_and_terms(arrays, q)
        if any_unstable:
            success = success & ~unstable
        terms["success"] = success
        # The reward (row 0) and every weighted term (rows 1..T) in one [1 + T, B] float32
        # array: one float64 multiply written as float32, one sum, one tensor handed out.
        rows = plan.terms
        for i, k in enumerate(task.reward):
            rows[i] = terms[k]
        returns = np.empty((1 + rows.shape[0], rows.shape[1]), np.float32)
        weighted = np.multiply(rows, plan.weights, out=returns[1:])
        if any_unstable:  # a rolled-back world earns nothing for the failed step
            weighted[:, unstable] = 0.0
        np.sum(weighted, axis=0, out=returns[0])
        t = arrays["t"]
        t += 1
        terminated = success & task.terminate_on_success
        # truncated = (t >= episode_length) & ~terminated, as one comparison of bools
        truncated = np.greater(t >= plan.episode_length, terminated)
        if any_unstable:
            truncated |= unstable
        obs = plan.observation(S, grip, goal)
        return self._np_outputs(returns, success, terminated, truncated, unstable, obs)

    def _np_outputs(
        self,
        returns: np.ndarray,
        success: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        unstable: np.ndarray,
        obs: np.ndarray,
    ) -> dict[str, Any]:
        """The NumPy step's results as :meth:`step` returns them (tensors sharing the arrays'
        memory): ``returns`` is the float32 ``[1 + T, B]`` reward and weighted terms."""
        done = terminated | truncated
        tensor = torch.from_numpy
        returns_t = tensor(returns)
        reward, *weighted_t = returns_t.unbind(0)
        return {
            "reward": reward,
            "reward_terms": dict(zip(self.task.reward, weighted_t, strict=True)),
            "returns": returns_t,
            "success": tensor(success),
            "terminated": tensor(terminated),
            "truncated": tensor(truncated),
            "done": tensor(done),
            "any_done": bool(done.any()),
            "unstable": tensor(unstable),
            "obs": tensor(obs),
            "target": tensor(obs[:, : self.layout.target_size]),
        }

    def _step_torch(self, st: dict[str, torch.Tensor], actions: torch.Tensor) -> dict[str, Any]:
        """The step in torch (MuJoCo Warp, or results on a CUDA ``device``)."""
        unstable = self.physics.step(self.controls(actions)).to(self.device)
        any_unstable = bool(unstable.any())
        q = self.quantities(st)
        success, terms = self.success_and_terms(st, q)
        success = success.to(self.device)
        if any_unstable:
            success = success & ~unstable
        terms["success"] = success.to(F64)
        weights = self.task.reward
        if self._reward_w is None:
            self._reward_w = torch.tensor(list(weights.values()), dtype=F64, device=self.pdev)
        stacked = torch.stack([terms[k] for k in weights])
        weighted = (self._reward_w[:, None] * stacked).to(self.device, torch.float32)
        if any_unstable:  # a rolled-back world earns nothing for the failed step
            weighted = torch.where(unstable, 0.0, weighted)
        st["t"] += 1
        terminated = success & self.task.terminate_on_success
        truncated = ((st["t"] >= self.c.scene.episode_length) & ~terminated) | unstable
        obs = self.observe(st, q)
        return {
            "reward": weighted.sum(0),
            "reward_terms": dict(zip(weights, weighted.unbind(0), strict=True)),
            "success": success,
            "terminated": terminated,
            "truncated": truncated,
            "unstable": unstable,
            "obs": obs,
            "target": obs[:, : self.layout.target_size],
        }

    # ------------------------------------------------------------------ oracle
    def oracle(self, st: dict[str, torch.Tensor]) -> torch.Tensor:
        """A scripted controller: task logic picks a grip waypoint, hand yaw and gripper
        command; damped-least-squares IK turns them into joint targets. ``[B, n_arm+1]``
        float32 actions on ``device``."""
        q = self.quantities(st)
        grip = q["grip_pos"]
        B = grip.shape[0]
        kind = self.task.kind
        zeros = torch.zeros(B, dtype=F64, device=self.pdev)
        close = torch.ones(B, dtype=torch.bool, device=self.pdev)
        max_step = torch.full((B,), 0.03, dtype=F64, device=self.pdev)
        yaw = zeros.clone()
        if kind == "reach":
            target = st["goal"].clone()
        else:
            name = self.c.scene.objects[self.k_obj].name
            obj = q[f"{name}_pos"]
            oyaw = quat_yaw(q[f"{name}_quat"])
            sc = st["scales"][:, self.k_obj, 2]
            w = self.radius[self.k_obj] * sc
            place = self.place_point(st, q)
            if kind == "push":
                target, yaw, max_step = self._push_plan(grip, obj, place, w)
            else:
                target, yaw, close = self._carry_plan(grip, obj, oyaw, place, w, q, kind)
        cmd = grip + _clip_norm(target - grip, max_step[:, None])
        q_cmd = ik_step(
            self.kin, self.physics.qpos.to(F64), cmd, down_orientation(yaw), iterations=2
        )
        r = self.c.scene.robot
        if r.control == "joint_position":
            arm = 2 * (q_cmd - self.arm_lo) / (self.arm_hi - self.arm_lo) - 1
        else:
            # A torque held for a whole control period (tens of ms) destabilises any stiff PD
            # on the light wrist links: a soft P term, with the joints' own (implicitly
            # integrated) damping doing the damping, and gravcomp carrying the weight.
            tau = _TORQUE_KP * (q_cmd - q["arm_qpos"])
            arm = tau / r.torque_limit
        grip_cmd = torch.where(close, -1.0, 1.0).to(F64)[:, None]
        act = torch.cat([arm, grip_cmd], dim=-1).clamp(-1, 1)
        return act.to(device=self.device, dtype=torch.float32)

    def _carry_plan(
        self,
        grip: torch.Tensor,
        obj: torch.Tensor,
        oyaw: torch.Tensor,
        place: torch.Tensor,
        w: torch.Tensor,
        q: dict[str, torch.Tensor],
        kind: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pick-and-place (and stack) waypoints: hover, descend, close, carry, (release)."""
        grasp_pt = obj.clone()
        grasp_pt[:, 2] += 0.004
        d_grasp = (grip - grasp_pt).norm(dim=-1)
        d_xy = (grip[:, :2] - obj[:, :2]).norm(dim=-1)
        fingers = q["finger_qpos"].mean(-1)
        near = d_grasp < 0.012
        held = ((grip - obj).norm(dim=-1) < 0.025) & (fingers < w + 0.006)
        hover = grasp_pt.clone()
        hover[:, 2] += 0.08
        approach = torch.where((d_xy > 0.015)[:, None], hover, grasp_pt)
        carry = place.clone()
        carry[:, 2] += grip[:, 2] - obj[:, 2]  # keep the object's offset in the hand
        if kind == "stack":
            carry[:, 2] += 0.003
        target = torch.where(held[:, None], carry, approach)
        close = near | held
        if kind == "stack":
            placed = held & ((obj[:, :2] - place[:, :2]).norm(dim=-1) < 0.01)
            placed &= (obj[:, 2] - place[:, 2]).abs() < 0.015
            close = close & ~placed
            target = torch.where(placed[:, None], grip, target)
        yaw = _wrap(oyaw, math.pi / 2)
        return target, yaw, close

    def _push_plan(
        self, grip: torch.Tensor, obj: torch.Tensor, goal: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pushing waypoints: go behind the object (high), descend, push through it."""
        B = grip.shape[0]
        delta = goal[:, :2] - obj[:, :2]
        d = delta / delta.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        rel = grip[:, :2] - obj[:, :2]
        along = (rel * d).sum(-1)
        perp = (rel[:, 0] * d[:, 1] - rel[:, 1] * d[:, 0]).abs()
        push_z, travel_z = 0.03, 0.08
        behind = obj[:, :2] - d * (w + 0.03)[:, None]
        aligned = (along < -(w + 0.004)) & (perp < 0.012) & (grip[:, 2] < 0.045)
        at_behind = (grip[:, :2] - behind).norm(dim=-1) < 0.012
        low = grip[:, 2] < 0.05
        t = torch.zeros(B, 3, dtype=F64, device=self.pdev)
        push_xy = obj[:, :2] + d * 0.02
        t_push = torch.cat([push_xy, torch.full((B, 1), push_z, dtype=F64, device=self.pdev)], 1)
        t_desc = torch.cat([behind, torch.full((B, 1), push_z, dtype=F64, device=self.pdev)], 1)
        t_travel = torch.cat([behind, torch.full((B, 1), travel_z, dtype=F64, device=self.pdev)], 1)
        t_lift = torch.cat(
            [grip[:, :2], torch.full((B, 1), travel_z, dtype=F64, device=self.pdev)], 1
        )
        t = torch.where(
            aligned[:, None],
            t_push,
            torch.where(at_behind[:, None], t_desc, torch.where(low[:, None], t_lift, t_travel)),
        )
        max_step = torch.where(aligned, 0.018, 0.03).to(F64)
        # The closed fingers form a square block: a fixed yaw avoids sweeping the object.
        yaw = torch.zeros(B, dtype=F64, device=self.pdev)
        return t, yaw, max_step


def _index(idx: Any) -> slice | list[int]:
    """A contiguous index list as a slice (a view, no gather), else the list."""
    ids = [int(i) for i in idx]
    if ids and ids == list(range(ids[0], ids[0] + len(ids))):
        return slice(ids[0], ids[0] + len(ids))
    return ids


@dataclass
class _NumpyPlan:
    """Index tables and scratch of the CPU backend's NumPy step, built once per engine."""

    ctrl_cols: np.ndarray
    """The action column behind each control ``[nu]`` (the gripper's drives both fingers)."""
    ctrl_lo: np.ndarray
    ctrl_half_span: np.ndarray
    torque_limit: float | None
    """The arm's torque scale in ``joint_torque`` mode (``None``: position targets)."""
    episode_length: int
    state_cols: dict[str, slice | np.ndarray]
    """Each state-derived quantity's columns in the physics state array."""
    obs_cols: np.ndarray
    """The observation's columns in ``[state | grip_pos | goal]`` (``[B, nstate + 6]``)."""
    weights: np.ndarray
    """Reward weights ``[T, 1]`` in the scene's term order."""
    terms: np.ndarray
    """Scratch ``[T, B]`` float64 for the unweighted terms."""
    _arrays: dict[str, np.ndarray] = field(default_factory=dict)
    _arrays_of: tuple[torch.Tensor, ...] = ()

    def arrays(self, st: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """NumPy views of the engine state's ``goal``, ``scales`` and ``t`` (CPU tensors),
        made again only when the state holds other tensors than last time."""
        goal, scales, t = st["goal"], st["scales"], st["t"]
        was = self._arrays_of
        if not was or goal is not was[0] or scales is not was[1] or t is not was[2]:
            self._arrays = {"goal": goal.numpy(), "scales": scales.numpy(), "t": t.numpy()}
            self._arrays_of = (goal, scales, t)
        return self._arrays

    def observation(self, state: np.ndarray, grip: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The float32 observations ``[B, obs_size]`` of the physics state, grip positions and
        goals (a new array)."""
        return np.concatenate((state, grip, goal), axis=1, dtype=np.float32)[:, self.obs_cols]

    @staticmethod
    def build(eng: RobotEngine) -> _NumpyPlan:
        ph, c = eng.physics, eng.c
        n_arm, robot = c.n_arm, c.scene.robot
        lo, span = eng.arm_lo.cpu().numpy(), (eng.arm_hi - eng.arm_lo).cpu().numpy()
        fin_span = eng.fin_hi - eng.fin_lo
        base = {False: ph.qpos_slice.start, True: ph.qvel_slice.start}
        state_cols: dict[str, slice | np.ndarray] = {}
        for name, (vel, i) in eng._qspec.items():
            cols = np.arange(ph.nstate)[base[vel] :][i]
            state_cols[name] = _index(cols)
        extra = {"grip_pos": ph.nstate + np.arange(3), "goal_pos": ph.nstate + 3 + np.arange(3)}
        obs = [
            np.arange(ph.nstate)[state_cols[n]] if n in state_cols else extra[n]
            for n, _, _ in eng.layout.names
        ]
        weights = np.array(list(eng.task.reward.values()), dtype=np.float64)
        return _NumpyPlan(
            ctrl_cols=np.array([*range(n_arm), n_arm, n_arm]),
            ctrl_lo=np.concatenate([lo, [eng.fin_lo, eng.fin_lo]]),
            ctrl_half_span=0.5 * np.concatenate([span, [fin_span, fin_span]]),
            torque_limit=None if robot.control == "joint_position" else robot.torque_limit,
            episode_length=c.scene.episode_length,
            state_cols=state_cols,
            obs_cols=np.concatenate(obs),
            weights=weights[:, None],
            terms=np.zeros((len(weights), eng.B)),
        )


class _StateView(dict):
    """Named quantities of the NumPy step: views of the state array's columns, sliced on
    first use (the rules read only a few), plus the given computed ones."""

    def __init__(self, state: np.ndarray, cols: dict[str, Any], **computed: np.ndarray) -> None:
        super().__init__(computed)
        self._state, self._cols = state, cols

    def __missing__(self, name: str) -> np.ndarray:
        v = self[name] = self._state[:, self._cols[name]]
        return v


def _norm(v: Any) -> Any:
    """Euclidean norm over the last dimension (torch tensor or NumPy array)."""
    return (v * v).sum(-1) ** 0.5


def _copy(x: Any) -> Any:
    """A copy of a torch tensor or NumPy array."""
    return x.clone() if isinstance(x, torch.Tensor) else x.copy()


def _torch_op(fn: Callable[..., torch.Tensor], *arrays: np.ndarray) -> np.ndarray:
    """``fn`` (a torch function) of NumPy arrays, as a NumPy array: its bits, not NumPy's."""
    return fn(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)).numpy()


def _first_true(ok: np.ndarray) -> np.ndarray:
    """Index of the first True per row of a bool ``[n, C]`` array (the last index when none
    is)."""
    n = ok.shape[1]
    return np.where(ok, np.arange(n), n - 1 + n).min(axis=1).clip(max=n - 1)
