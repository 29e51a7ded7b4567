"""Forward kinematics and damped-least-squares IK of the arm's grip site, batched in torch.

Both backends hand the engine joint positions; computing the grip site's pose here (rather than
reading MuJoCo's ``site_xpos``) keeps observations a pure function of ``qpos`` on every backend
and at reset time, and gives the oracle its Jacobian for free.
"""

from __future__ import annotations

import numpy as np
import torch

from envgym.robot.compiler import CompiledScene


def quat_to_mat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[..., 3, 3]`` of unit quaternions ``[..., 4]`` (w, x, y, z)."""
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def _mv(R: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Batched matrix-vector product; ``v`` is ``[3]`` or ``[B, 3]``."""
    return (R @ v.unsqueeze(-1)).squeeze(-1)


def _mv_np(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """NumPy :func:`_mv`; ``v`` is ``[3]`` or ``[B, 3]``."""
    return R @ v if v.ndim == 1 else (R @ v[..., None])[..., 0]


class ArmKinematics:
    """The grip site's kinematic chain as torch constants on ``device`` (float64)."""

    def __init__(self, c: CompiledScene, device: torch.device) -> None:
        dt = torch.float64
        self.links = [
            (
                torch.as_tensor(link.pos, dtype=dt, device=device),
                quat_to_mat(torch.as_tensor(link.quat, dtype=dt, device=device)),
                link.joint_qpos,
                torch.as_tensor(link.axis, dtype=dt, device=device),
                torch.as_tensor(link.anchor, dtype=dt, device=device),
            )
            for link in c.chain
        ]
        self.grip_offset = torch.as_tensor(c.grip_offset, dtype=dt, device=device)
        self._eye = torch.eye(3, dtype=dt, device=device)
        Ks = []
        for _, _, jq, axis, _ in self.links:
            if jq >= 0:
                x, y, z = axis.tolist()
                Ks.append([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
        self._K = torch.tensor(Ks, dtype=dt, device=device).reshape(-1, 3, 3)
        self._K2 = self._K @ self._K
        self._joint_qpos = [link[2] for link in self.links if link[2] >= 0]
        self._identity_rot = [bool(torch.equal(link[1], self._eye)) for link in self.links]
        self._has_anchor = [bool(link[4].abs().max() > 0) for link in self.links]
        self.arm_qpos = [int(a) for a in c.arm_qpos]
        self._np_T = _homogeneous_terms(c)
        self._np_trig: dict[int, np.ndarray] = {}

    def forward_np(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`forward` without the Jacobian, in NumPy (float64): grip position ``[B, 3]``
        and hand orientation ``[B, 3, 3]`` (views of one result array).

        The same chain as the torch version, as a product of per-link 4x4 transforms (results
        agree to float64 rounding, ~1e-16). Each link's transform is affine in the sine and
        cosine of its joint angle (Rodrigues), so all of them come out of one batched product
        ``[sin, cos, 1] @ coefficients``, then are multiplied pairwise in a tree (the link
        count padded to a power of two): seven NumPy calls whatever the chain length, which
        matters at small batch sizes (this runs on every CPU-backend step). The arrays are
        link-major (``[L, B, ...]``): the first product is then ``L`` matrix products of
        ``[B, 3] @ [3, 16]`` (not ``B * L`` of ``[1, 3] @ [3, 16]``, ~15x slower at 128 worlds)
        and the tree's halves are contiguous blocks; the arithmetic, and so every bit of the
        result, is the same.
        """
        coef, cols = self._np_T
        B, L = qpos.shape[0], cols.shape[0]
        trig = self._np_trig.get(B)
        if trig is None:  # [L, B, (sin, cos, 1)], kept per batch size
            trig = self._np_trig[B] = np.ones((L, B, 3))
        q = qpos[:, cols].T
        np.sin(q, out=trig[:, :, 0])
        np.cos(q, out=trig[:, :, 1])
        T = (trig @ coef).reshape(L, B, 4, 4)  # every link's transform in one product
        while T.shape[0] > 1:  # T0 T1 T2 ... in order, neighbours two at a time
            T = T[0::2] @ T[1::2]
        return T[0, :, :3, 3], T[0, :, :3, :3]

    def forward(
        self, qpos: torch.Tensor, with_jacobian: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Grip position ``[B, 3]``, hand orientation ``[B, 3, 3]`` and, optionally, the
        geometric Jacobian ``[B, 6, n_arm]`` (linear rows first) with respect to the arm joints.

        Args:
            qpos: ``[B, nq]`` joint positions (float64).
            with_jacobian: also compute the Jacobian.
        """
        B = qpos.shape[0]
        R: torch.Tensor | None = None  # None: identity (saves ops at the base)
        p = torch.zeros(B, 3, dtype=qpos.dtype, device=qpos.device)
        axes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        # Every joint's rotation at once (Rodrigues: I + sin(q) K + (1 - cos(q)) K^2).
        q = qpos[:, self._joint_qpos, None, None]
        rots = self._eye + torch.sin(q) * self._K + (1 - torch.cos(q)) * self._K2
        j = 0
        for (pos, rot, jq, axis, anchor), identity, has_anchor in zip(
            self.links, self._identity_rot, self._has_anchor, strict=True
        ):
            p = p + (pos if R is None else _mv(R, pos))
            if not identity:
                R = rot.expand(B, 3, 3) if R is None else R @ rot
            if jq >= 0:
                if R is None:
                    R = self._eye.expand(B, 3, 3)
                if with_jacobian:
                    axes[jq] = (_mv(R, axis), p + _mv(R, anchor))
                Rj = rots[:, j]
                j += 1
                if has_anchor:  # rotation about the anchor: p' = p + R (anchor - Rj anchor)
                    p = p + _mv(R, anchor - _mv(Rj, anchor))
                R = R @ Rj
        assert R is not None
        grip = p + _mv(R, self.grip_offset)
        J = None
        if with_jacobian:
            cols = []
            for jq in self.arm_qpos:
                a_world, c_world = axes[jq]
                lin = torch.linalg.cross(a_world, grip - c_world)
                cols.append(torch.cat([lin, a_world], dim=-1))
            J = torch.stack(cols, dim=-1)
        return grip, R, J


def _homogeneous_terms(c: CompiledScene) -> tuple[np.ndarray, ...]:
    """Each chain link's 4x4 transform as ``T_k(q) = C_k + K_k + sin(q) S_k - cos(q) K_k``.

    A link moves by its offset ``pos`` and fixed rotation ``rot``, then turns by its joint
    (``Rj = I + sin(q) K + (1 - cos(q)) K^2`` about the axis through ``anchor``), so its
    rotation is ``rot Rj`` and its translation ``pos + rot (anchor - Rj anchor)``: ``C_k`` is
    ``[rot, pos]``, ``S_k`` and ``K_k`` the parts that go with ``sin(q)`` and ``1 - cos(q)``
    (zero for links without a joint). The grip offset is folded into the last link, and
    identity links pad the chain to a power of two. Returns the coefficients of
    ``(sin(q), cos(q), 1)``, that is ``(S, -K, C + K)``, as ``[L, 3, 16]`` (the flattened
    4x4s), and each link's qpos column ``[L]`` (0 without a joint: its angle meets only
    zeros).
    """
    n = len(c.chain)
    L = 1 << max(n - 1, 0).bit_length()
    const, by_sin, by_cos = np.zeros((3, L, 4, 4))
    const[:] = np.eye(4)
    cols = np.zeros(L, dtype=np.int64)
    for k, link in enumerate(c.chain):
        rot = _quat_to_mat_np(np.asarray(link.quat, dtype=np.float64))
        const[k, :3, :3], const[k, :3, 3] = rot, link.pos
        if link.joint_qpos < 0:
            continue
        x, y, z = (float(v) for v in link.axis)
        K = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
        anchor = np.asarray(link.anchor, dtype=np.float64)
        for out, M in ((by_sin, rot @ K), (by_cos, rot @ K @ K)):
            out[k, :3, :3], out[k, :3, 3] = M, -(M @ anchor)
        cols[k] = link.joint_qpos
    grip = np.eye(4)
    grip[:3, 3] = c.grip_offset
    for terms in (const, by_sin, by_cos):
        terms[n - 1] = terms[n - 1] @ grip
    coef = np.stack([by_sin, -by_cos, const + by_cos], axis=1).reshape(L, 3, 16)
    return coef, cols


def _quat_to_mat_np(q: np.ndarray) -> np.ndarray:
    """NumPy :func:`quat_to_mat` of one quaternion."""
    return quat_to_mat(torch.from_numpy(q)).numpy()


def down_orientation(yaw: torch.Tensor) -> torch.Tensor:
    """Hand orientations ``[B, 3, 3]`` pointing the fingers down (tool z = world -z), turned
    by ``yaw`` about world z (the fingers close along the rotated world y)."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    z0 = torch.zeros_like(yaw)
    # Rz(yaw) @ Ry(pi): columns x = (-c, -s, 0), y = (-s, c, 0), z = (0, 0, -1).
    return (
        torch.stack([-c, -s, z0, -s, c, z0, z0, z0, -torch.ones_like(yaw)], -1)
        .reshape(-1, 3, 3)
        .transpose(1, 2)
    )


def ik_step(
    kin: ArmKinematics,
    qpos: torch.Tensor,
    grip_target: torch.Tensor,
    rot_target: torch.Tensor,
    iterations: int = 3,
    damping: float = 0.05,
    rot_weight: float = 0.5,
) -> torch.Tensor:
    """Arm joint angles ``[B, n_arm]`` that bring the grip site to ``grip_target`` with hand
    orientation ``rot_target`` (a few damped-least-squares iterations from ``qpos``)."""
    q = qpos.clone()
    idx = kin.arm_qpos
    eye = torch.eye(6, dtype=q.dtype, device=q.device)
    w = torch.tensor([1.0, 1.0, 1.0, rot_weight, rot_weight, rot_weight], dtype=q.dtype)
    w = w.to(q.device)
    for _ in range(iterations):
        grip, R, J = kin.forward(q, with_jacobian=True)
        assert J is not None
        e_pos = grip_target - grip
        e_rot = 0.5 * sum(torch.linalg.cross(R[:, :, i], rot_target[:, :, i]) for i in range(3))
        err = torch.cat([e_pos, e_rot], dim=-1) * w
        Jw = J * w[None, :, None]
        A = Jw @ Jw.transpose(1, 2) + (damping**2) * eye
        dq = (Jw.transpose(1, 2) @ torch.linalg.solve(A, err.unsqueeze(-1))).squeeze(-1)
        q[:, idx] = q[:, idx] + dq
    return q[:, idx]
