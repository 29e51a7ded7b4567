"""Physics backends of the robot engine: B worlds of one compiled MuJoCo model.

- :class:`CpuPhysics` steps every world with ``mujoco.rollout`` on MuJoCo's own persistent
  thread pool (the GIL is released while it runs). The physics state lives in one NumPy
  ``[B, nstate]`` array (``mjSTATE_FULLPHYSICS`` layout) that torch reads without a copy.
- :class:`WarpPhysics` (``envgym.robot.warp_physics``) steps them with MuJoCo Warp.

Both expose the same small interface to the engine: ``qpos``/``qvel`` (torch views), ``step``,
``write`` (per-world reset of the physical state) and ``set_object_params``.
"""

from __future__ import annotations

import math
import os
import time

import mujoco
import mujoco.rollout
import numpy as np
import torch

from envgym.robot.compiler import CompiledScene, apply_object_params


def default_threads() -> int:
    """Threads available to this process (its CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class CpuPhysics:
    """B worlds stepped by ``mujoco.rollout`` on a persistent MuJoCo thread pool.

    Args:
        c: the compiled scene.
        num_worlds: B.
        num_threads: pool threads (``None``: the CPUs this process may use, at most B; one
            world runs on the calling thread).
    """

    name = "cpu"

    def __init__(self, c: CompiledScene, num_worlds: int, num_threads: int | None = None) -> None:
        self.c = c
        self.B = num_worlds
        m = c.model
        n = default_threads() if num_threads is None else int(num_threads)
        self.num_threads = max(1, min(n, num_worlds))
        pool_threads = self.num_threads if self.num_threads > 1 else 0
        self.pool = mujoco.rollout.Rollout(nthread=pool_threads)
        self.datas = [mujoco.MjData(m) for _ in range(max(1, pool_threads))]
        # One model per world when objects' mass/friction/size vary per world; else shared.
        if c.randomizes_model:
            self.models = [_copy_model(m) for _ in range(num_worlds)]
        else:
            self.models = [m] * num_worlds
        self.substeps = c.scene.physics.substeps
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS.value
        self.nstate = mujoco.mj_stateSize(m, spec)
        self.state = np.zeros((num_worlds, self.nstate))
        self._out = np.zeros((num_worlds, self.substeps, self.nstate))
        self.ctrl = np.zeros((num_worlds, self.substeps, m.nu))
        """The controls of the next step ``[B, substeps, nu]`` (held over its substeps)."""
        self._warm = np.zeros((num_worlds, m.nv))
        self._sens = np.zeros((num_worlds, self.substeps, m.nsensordata)) if m.nsensordata else None
        # raw_step_seconds' buffers: state, rollout output, controls, sensor data
        self._scratch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None = None
        # FULLPHYSICS layout: time, qpos, qvel, act, ...
        self.qpos_slice = slice(1, 1 + m.nq)
        self.qvel_slice = slice(1 + m.nq, 1 + m.nq + m.nv)
        self.physics = torch.from_numpy(self.state)  # zero-copy view of the state array
        d = mujoco.MjData(m)
        mujoco.mj_getState(m, d, self.state[0], spec)
        self.state[:] = self.state[0]
        self.unstable_velocity = c.scene.physics.unstable_velocity

    # ------------------------------------------------------------------ views
    @property
    def qpos(self) -> torch.Tensor:
        """``[B, nq]`` float64 view of the joint positions."""
        return self.physics[:, self.qpos_slice]

    @property
    def qvel(self) -> torch.Tensor:
        """``[B, nv]`` float64 view of the joint velocities."""
        return self.physics[:, self.qvel_slice]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The backend's part of the engine state (tensors that snapshots copy)."""
        return {"physics": self.physics}

    # ------------------------------------------------------------------ stepping
    def step(self, ctrl: torch.Tensor) -> torch.Tensor:
        """Advance every world ``substeps`` physics steps under ``ctrl`` ``[B, nu]``.

        Returns:
            bool ``[B]``: worlds whose new state was unstable (NaN or a velocity above the
            scene's limit); their state is left at its value before the step.
        """
        self.ctrl[:] = ctrl.detach().cpu().numpy()[:, None, :]
        return torch.from_numpy(self.step_np()[0])

    def step_np(self) -> tuple[np.ndarray, bool]:
        """:meth:`step` under the controls already in :attr:`ctrl` (no torch calls).

        Returns the new bool ``[B]`` unstable mask and whether any world is unstable.
        """
        self.pool.rollout(
            self.models,
            self.datas,
            self.state,
            self.ctrl,
            control_spec=mujoco.mjtState.mjSTATE_CTRL.value,
            skip_checks=True,
            nstep=self.substeps,
            initial_warmstart=self._warm,
            state=self._out,
            sensordata=self._sens,
        )
        new = self._out[:, -1]
        vel = new[:, self.qvel_slice]
        # The common case in two whole-array reductions: a finite sum means every entry is
        # finite (an inf or NaN anywhere makes it inf or NaN; a finite sum that overflowed
        # only sends us down the exact per-world test below).
        if math.isfinite(new.sum()) and np.abs(vel).max() < self.unstable_velocity:
            np.copyto(self.state, new)
            return np.zeros(self.B, dtype=bool), False
        stable = np.isfinite(new).all(axis=1) & (np.abs(vel).max(axis=1) < self.unstable_velocity)
        np.copyto(self.state, new, where=stable[:, None])
        return ~stable, not stable.all()

    def write(self, worlds: torch.Tensor, qpos: np.ndarray) -> None:
        """Set the physical state of the worlds ``worlds`` (int64 ``[n]``, distinct): time 0,
        the given float64 ``qpos`` ``[n, nq]``, at rest, no activations."""
        rows = worlds.cpu().numpy()
        self.state[rows] = 0.0
        self.state[rows, self.qpos_slice] = qpos

    def set_object_params(self, worlds: torch.Tensor, scales: torch.Tensor) -> None:
        """Write per-world object (mass, friction, size) multipliers ``[n, n_obj, 3]``."""
        if not self.c.randomizes_model:
            return
        sc = scales.detach().cpu().numpy()
        for k, w in enumerate(worlds.cpu().tolist()):
            apply_object_params(self.models[w], self.c, sc[k])

    def raw_step_seconds(self, ctrl: torch.Tensor) -> float:
        """Seconds of bare ``mujoco.rollout`` doing one env step's physics: every world's
        ``substeps`` from its current state under ``ctrl`` ``[B, nu]``, on this backend's
        pool, models and warm start, into scratch buffers (the state is left as it is). The
        robot's raw baseline: ``envgym bench`` times it before each timed step."""
        if self._scratch is None:
            sens = None if self._sens is None else np.zeros_like(self._sens)
            like = np.empty_like
            self._scratch = (like(self.state), like(self._out), like(self.ctrl), sens)
        state, out, c, sens = self._scratch
        np.copyto(state, self.state)
        c[:] = ctrl.detach().cpu().numpy()[:, None, :]
        t = time.perf_counter()
        self.pool.rollout(
            self.models,
            self.datas,
            state,
            c,
            control_spec=mujoco.mjtState.mjSTATE_CTRL.value,
            skip_checks=True,
            nstep=self.substeps,
            initial_warmstart=self._warm,
            state=out,
            sensordata=sens,
        )
        return time.perf_counter() - t

    def after_set_state(self) -> None:
        """Nothing to do: the state array is the physics state."""

    def close(self) -> None:
        """Stop the thread pool."""
        self.pool.close()


def _copy_model(m: mujoco.MjModel) -> mujoco.MjModel:
    import copy

    return copy.copy(m)
