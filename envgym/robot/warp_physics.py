"""The MuJoCo Warp backend: B worlds in one ``mujoco_warp.Data`` on a Warp device.

On CUDA the ``substeps`` physics steps of one env step are captured once as a CUDA graph and
replayed. ``qpos``/``qvel``/``ctrl`` are torch views of Warp's arrays (zero-copy through
``wp.to_torch``), on CUDA and on Warp's CPU device alike. MuJoCo Warp computes in float32; the
engine's kinematics read the positions in float64.

Kernels compile on first use (about 40 s on CUDA, minutes on a busy CPU); they are cached in
``WARP_CACHE_PATH`` (default here: ``.cache/warp`` in the working directory).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch

from envgym.robot.compiler import CompiledScene

INSTALL_HINT = "the warp backend needs MuJoCo Warp: pip install -e '.[robot,gpu]'"

_RANDOMISED_FIELDS = (
    "body_mass",
    "body_inertia",
    "geom_friction",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
)


def _import_warp() -> tuple[Any, Any]:
    if "WARP_CACHE_PATH" not in os.environ:
        os.environ["WARP_CACHE_PATH"] = str(Path.cwd() / ".cache" / "warp")
    try:
        import warp as wp

        wp.config.log_level = wp.LOG_WARNING  # no banner or per-module load lines
        import mujoco_warp as mjw
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError(f"{INSTALL_HINT} ({e})") from None
    wp.init()
    return wp, mjw


class WarpPhysics:
    """B worlds stepped by ``mujoco_warp.step``.

    Args:
        c: the compiled scene.
        num_worlds: B.
        device: the engine's torch device.
        warp_device: Warp device (default: the CUDA device of ``device``, else ``"cpu"``).
    """

    name = "warp"

    def __init__(
        self,
        c: CompiledScene,
        num_worlds: int,
        device: torch.device,
        warp_device: str | None = None,
    ) -> None:
        wp, mjw = _import_warp()
        self.wp, self.mjw = wp, mjw
        self.c = c
        self.B = num_worlds
        if warp_device is None:
            warp_device = f"cuda:{device.index or 0}" if device.type == "cuda" else "cpu"
        self.wdev = wp.get_device(warp_device)
        model = copy.copy(c.model)
        # MuJoCo Warp has no auto-reset (and rejects the flag); the engine detects divergence.
        model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_AUTORESET)
        self.num_threads = 1
        self.substeps = c.scene.physics.substeps
        self.unstable_velocity = c.scene.physics.unstable_velocity
        with wp.ScopedDevice(self.wdev):
            self.m = mjw.put_model(model)
            self.d = mjw.make_data(model, nworld=num_worlds)
            self.fields: dict[str, torch.Tensor] = {}
            if c.randomizes_model:
                for f in _RANDOMISED_FIELDS:
                    a = getattr(self.m, f)
                    rep = np.repeat(a.numpy(), num_worlds, axis=0)
                    setattr(self.m, f, wp.array(rep, dtype=a.dtype))
                    self.fields[f] = wp.to_torch(getattr(self.m, f))
        self._qpos = wp.to_torch(self.d.qpos)
        self._qvel = wp.to_torch(self.d.qvel)
        self._ctrl = wp.to_torch(self.d.ctrl)
        self._time = wp.to_torch(self.d.time)
        self._warm = wp.to_torch(self.d.qacc_warmstart)
        self._graph: Any = None

    # ------------------------------------------------------------------ views
    @property
    def qpos(self) -> torch.Tensor:
        """``[B, nq]`` float32 view of Warp's joint positions."""
        return self._qpos

    @property
    def qvel(self) -> torch.Tensor:
        """``[B, nv]`` float32 view of Warp's joint velocities."""
        return self._qvel

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The backend's part of the engine state (views; snapshots copy them)."""
        return {"qpos": self._qpos, "qvel": self._qvel, "time": self._time}

    # ------------------------------------------------------------------ stepping
    def _substeps(self) -> None:
        for _ in range(self.substeps):
            self.mjw.step(self.m, self.d)

    def _run(self) -> None:
        wp = self.wp
        with wp.ScopedDevice(self.wdev):
            if not self.wdev.is_cuda:
                self._substeps()
                return
            # torch wrote ctrl/qpos on its own stream and Warp runs on Warp's: order them
            # (host syncs: simple and safe; torch's default stream cannot be captured).
            torch.cuda.current_stream(self._qpos.device).synchronize()
            if self._graph is None:
                self._substeps()  # load kernels before capturing
                with wp.ScopedCapture() as cap:
                    self._substeps()
                self._graph = cap.graph
            else:
                wp.capture_launch(self._graph)
            wp.synchronize_device(self.wdev)

    def step(self, ctrl: torch.Tensor) -> torch.Tensor:
        """Advance every world ``substeps`` physics steps under ``ctrl`` ``[B, nu]``.

        Returns bool ``[B]`` (on the Warp device): worlds whose new state was unstable; their
        state is rolled back to before the step.
        """
        old_q, old_v, old_t = self._qpos.clone(), self._qvel.clone(), self._time.clone()
        self._ctrl.copy_(ctrl.to(self._ctrl.device, torch.float32))
        # No warm start carried between env steps (as the CPU backend): snapshots then hold
        # the whole state.
        self._warm.zero_()
        self._run()
        q, v = self._qpos, self._qvel
        bad = ~(torch.isfinite(q).all(1) & torch.isfinite(v).all(1))
        bad |= v.abs().amax(1).nan_to_num(float("inf")) >= self.unstable_velocity
        if bool(bad.any()):
            self._qpos[bad] = old_q[bad]
            self._qvel[bad] = old_v[bad]
            self._time[bad] = old_t[bad]
        return bad

    def write(self, worlds: torch.Tensor, qpos: np.ndarray) -> None:
        """Set the physical state of the worlds ``worlds`` (int64 ``[n]``, distinct): time 0,
        the given float64 ``qpos`` ``[n, nq]``, at rest."""
        w = worlds.to(self._qpos.device)
        self._qpos[w] = torch.from_numpy(qpos).to(self._qpos.device, torch.float32)
        self._qvel[w] = 0.0
        self._time[w] = 0.0

    def set_object_params(self, worlds: torch.Tensor, scales: torch.Tensor) -> None:
        """Per-world object (mass, friction, size) multipliers ``[n, n_obj, 3]``."""
        if not self.fields:
            return
        c, f = self.c, self.fields
        dev = f["body_mass"].device
        w = worlds.to(dev)
        s = scales.to(dev, torch.float32)
        for k in range(c.n_obj):
            b, g = int(c.object_body[k]), int(c.object_geom[k])
            ms, fs, ss = s[:, k, 0], s[:, k, 1], s[:, k, 2]

            def base(x: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(x, dtype=torch.float32, device=dev)

            f["body_mass"][w, b] = base(c.base_mass[k]) * ms
            f["body_inertia"][w, b] = base(c.base_inertia[k]) * (ms * ss * ss)[:, None]
            fr = base(c.base_friction[k]).expand(len(w), 3).clone()
            fr[:, 0] = fr[:, 0] * fs
            f["geom_friction"][w, g] = fr
            f["geom_size"][w, g] = base(c.base_size[k]) * ss[:, None]
            f["geom_rbound"][w, g] = base(c.base_rbound[k]) * ss
            f["geom_aabb"][w, g] = base(c.base_aabb[k]).reshape(2, 3) * ss[:, None, None]

    def raw_step_seconds(self, ctrl: torch.Tensor) -> float:
        """Seconds of bare ``mujoco_warp.step`` x substeps (graph-replayed on CUDA) doing one
        env step's physics: every world from its current state under ``ctrl`` ``[B, nu]``, on
        the same model and data, with no warm start (as :meth:`step`); the state is restored
        afterwards. The robot's raw baseline: ``envgym bench`` times it before each step."""
        saved = {k: v.clone() for k, v in self.state_tensors().items()}
        self._ctrl.copy_(ctrl.to(self._ctrl.device, torch.float32))
        self._warm.zero_()
        self.wp.synchronize_device(self.wdev)
        t = time.perf_counter()
        self._run()
        self.wp.synchronize_device(self.wdev)
        dt = time.perf_counter() - t
        for k, v in self.state_tensors().items():
            v.copy_(saved[k])
        return dt

    def after_set_state(self) -> None:
        """Nothing to do: the views are the physics state."""

    def close(self) -> None:
        """Drop the captured graph."""
        self._graph = None
