"""Compile a :class:`RobotScene` into a MuJoCo model with ``mujoco.MjSpec``.

The arm comes from its MJCF asset; the compiler adds the table, the objects (free bodies), the
target markers (mocap bodies: visual only, never colliding), the cameras, the lights, the
actuators for the chosen control mode and the physics options. It also extracts everything the
batched engine needs as plain arrays: qpos/qvel addresses, actuator layout, and the kinematic
chain of the grip site (for forward kinematics and IK in torch, on any backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from envgym.robot.models import Camera, Physics, Robot, RobotScene, SceneObject, Table, Target
from envgym.robot.scenes import asset_dir


@dataclass
class ChainLink:
    """One body of the grip site's kinematic chain (world to hand)."""

    pos: np.ndarray
    """Body position in its parent's frame."""
    quat: np.ndarray
    """Body orientation in its parent's frame (w, x, y, z)."""
    joint_qpos: int
    """qpos address of the body's hinge joint, or -1 for a rigid link."""
    axis: np.ndarray
    """Hinge axis in the body frame."""
    anchor: np.ndarray
    """Hinge anchor in the body frame."""


@dataclass
class CompiledScene:
    """A scene compiled for the engine: the model plus the layout of its arrays."""

    scene: RobotScene
    model: mujoco.MjModel
    xml: str
    arm_qpos: np.ndarray
    arm_dof: np.ndarray
    finger_qpos: np.ndarray
    finger_dof: np.ndarray
    arm_range: np.ndarray
    """``[n_arm, 2]`` joint limits."""
    finger_range: np.ndarray
    """``[2]`` finger opening limits (low, high)."""
    object_qpos: np.ndarray
    """``[n_obj]`` qpos address of each object's free joint."""
    object_dof: np.ndarray
    object_body: np.ndarray
    object_geom: np.ndarray
    object_half_height: np.ndarray
    """``[n_obj]`` half height of each object at size scale 1."""
    object_radius: np.ndarray
    """``[n_obj]`` horizontal half extent at size scale 1."""
    target_mocap: np.ndarray
    """``[n_targets]`` mocap index of each target marker."""
    chain: list[ChainLink]
    grip_offset: np.ndarray
    """Grip site position in the hand (last chain body) frame."""
    nu: int
    base_mass: np.ndarray = field(default_factory=lambda: np.zeros(0))
    base_inertia: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    base_friction: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    base_size: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    base_rbound: np.ndarray = field(default_factory=lambda: np.zeros(0))
    base_aabb: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))

    @property
    def n_arm(self) -> int:
        """Arm joints (action dimensions before the gripper's)."""
        return len(self.arm_qpos)

    @property
    def n_obj(self) -> int:
        """Free objects in the scene."""
        return len(self.object_qpos)

    @property
    def randomizes_model(self) -> bool:
        """Whether any object's mass, friction or size varies per world."""
        for o in self.scene.objects:
            r = o.randomize
            for rng in (r.mass_scale, r.friction_scale, r.size_scale):
                if rng.low != 1.0 or rng.high != 1.0:
                    return True
        return False


_SHAPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
}


def _look_at_quat(pos: tuple[float, ...], target: tuple[float, ...]) -> list[float]:
    """Camera orientation (w, x, y, z) looking from ``pos`` at ``target`` with world z up.

    MuJoCo cameras look along their -z axis with +y up.
    """
    fwd = np.asarray(target, float) - np.asarray(pos, float)
    fwd /= np.linalg.norm(fwd)
    z = -fwd
    x = np.cross([0.0, 0.0, 1.0], z)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.stack([x, y, z], axis=1).reshape(-1))
    return quat.tolist()


def half_extents(o: SceneObject) -> tuple[float, float]:
    """(horizontal half extent, half height) of an object at size scale 1."""
    if o.shape == "box":
        return max(o.size[0], o.size[1]), o.size[2]
    if o.shape == "cylinder":
        return o.size[0], o.size[1]
    return o.size[0], o.size[0]


def build_spec(sc: RobotScene) -> mujoco.MjSpec:
    """The scene as an ``MjSpec`` (arm asset + table + objects + targets + cameras)."""
    spec = mujoco.MjSpec.from_file(str(asset_dir() / sc.robot.asset))
    spec.modelname = f"envgym_{sc.name}"
    _set_options(spec, sc.physics)
    world = spec.worldbody
    _add_stage(world, sc.table)
    _add_objects(world, sc.objects)
    _add_targets(world, sc.targets)
    _add_cameras(world, sc.cameras)
    _add_actuators(spec, sc.robot)
    return spec


def _set_options(spec: mujoco.MjSpec, physics: Physics) -> None:
    """The physics options (timestep, solver settings) and the offscreen render size."""
    opt = spec.option
    opt.timestep = physics.timestep
    opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = 10.0
    # MuJoCo's own auto-reset would silently put a diverged world back at qpos0; the engine
    # detects divergence itself and starts a proper new episode (flagged in info["unstable"]).
    opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
    spec.visual.global_.offwidth = 640
    spec.visual.global_.offheight = 480


def _add_stage(world: mujoco.MjsBody, t: Table) -> None:
    """Two lights, a floor that nothing collides with, and the table top (its surface at z=0)."""
    world.add_light(pos=[0.3, -0.4, 1.5], dir=[0.0, 0.3, -1.0], castshadow=False)
    world.add_light(pos=[0.6, 0.6, 1.2], dir=[-0.2, -0.3, -1.0], castshadow=False)
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[2.0, 2.0, 0.05],
        pos=[0.0, 0.0, -0.75],
        rgba=[0.35, 0.38, 0.42, 1.0],
        contype=0,
        conaffinity=0,
    )
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[t.size[0], t.size[1], t.thickness],
        pos=[t.center[0], t.center[1], -t.thickness],
        friction=[t.friction, 0.005, 0.0001],
        rgba=list(t.rgba),
    )


def _add_objects(world: mujoco.MjsBody, objects: list[SceneObject]) -> None:
    """Each object as a free body with one geom, named after the object (body, joint, geom);
    the engine places it at reset."""
    for o in objects:
        _, half_h = half_extents(o)
        body = world.add_body(name=o.name, pos=[0.4, 0.0, half_h])
        body.add_freejoint(name=o.name)
        size = list(o.size) + [0.0] * (3 - len(o.size))
        body.add_geom(
            name=o.name,
            type=_SHAPES[o.shape],
            size=size,
            mass=o.mass,
            friction=[o.friction, 0.01, 0.0001],
            condim=4,
            rgba=list(o.rgba),
        )


def _add_targets(world: mujoco.MjsBody, targets: list[Target]) -> None:
    """Each target as a mocap body ``target_<name>`` with a sphere that never collides."""
    for tg in targets:
        body = world.add_body(name=f"target_{tg.name}", mocap=True, pos=[0.4, 0.0, 0.1])
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[tg.radius, 0.0, 0.0],
            rgba=list(tg.rgba),
            contype=0,
            conaffinity=0,
            group=2,
        )


def _add_cameras(world: mujoco.MjsBody, cameras: list[Camera]) -> None:
    """Each fixed camera, oriented to look at its point."""
    for cam in cameras:
        world.add_camera(
            name=cam.name,
            pos=list(cam.pos),
            quat=_look_at_quat(cam.pos, cam.look_at),
            fovy=cam.fovy,
        )


def _add_actuators(spec: mujoco.MjSpec, r: Robot) -> None:
    """One actuator ``act_<joint>`` per arm joint (a position servo or a torque motor, by the
    control mode), then one position servo per finger joint."""
    for j in r.arm_joints:
        act = spec.add_actuator(name=f"act_{j}", target=j, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        if r.control == "joint_position":
            act.set_to_position(kp=r.kp, dampratio=1.0, inheritrange=True)
            act.forcelimited = True
            act.forcerange = [-r.torque_limit, r.torque_limit]
        else:
            act.set_to_motor()
            act.ctrlrange = [-r.torque_limit, r.torque_limit]
            act.ctrllimited = True
    for j in r.finger_joints:
        act = spec.add_actuator(name=f"act_{j}", target=j, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=r.finger_kp, dampratio=1.0, inheritrange=True)
        act.forcelimited = True
        act.forcerange = [-15.0, 15.0]


def compile_scene(sc: RobotScene) -> CompiledScene:
    """Compile a checked scene (see :func:`envgym.robot.scenes.load_scene`)."""
    spec = build_spec(sc)
    model = spec.compile()
    xml = spec.to_xml()
    r = sc.robot

    def jid(name: str) -> int:
        return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)

    arm_j = [jid(j) for j in r.arm_joints]
    fin_j = [jid(j) for j in r.finger_joints]
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, r.grip_site)
    # The grip site's chain: walk from its body up to the world.
    bodies = []
    b = int(model.site_bodyid[site])
    while b != 0:
        bodies.append(b)
        b = int(model.body_parentid[b])
    bodies.reverse()
    chain = []
    for b in bodies:
        if model.body_jntnum[b] > 1:
            raise ValueError(f"body {model.body(b).name!r} of the arm has more than one joint")
        j = int(model.body_jntadr[b]) if model.body_jntnum[b] == 1 else -1
        if j >= 0 and model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
            raise ValueError(f"arm joint {model.joint(j).name!r} is not a hinge")
        chain.append(
            ChainLink(
                pos=model.body_pos[b].copy(),
                quat=model.body_quat[b].copy(),
                joint_qpos=int(model.jnt_qposadr[j]) if j >= 0 else -1,
                axis=model.jnt_axis[j].copy() if j >= 0 else np.zeros(3),
                anchor=model.jnt_pos[j].copy() if j >= 0 else np.zeros(3),
            )
        )
    obj_body = np.array(
        [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, o.name) for o in sc.objects], int
    )
    obj_geom = np.array(
        [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, o.name) for o in sc.objects], int
    )
    obj_joint = [jid(o.name) for o in sc.objects]
    target_body = [
        mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"target_{t.name}") for t in sc.targets
    ]
    ext = [half_extents(o) for o in sc.objects]
    return CompiledScene(
        scene=sc,
        model=model,
        xml=xml,
        arm_qpos=model.jnt_qposadr[arm_j].astype(int),
        arm_dof=model.jnt_dofadr[arm_j].astype(int),
        finger_qpos=model.jnt_qposadr[fin_j].astype(int),
        finger_dof=model.jnt_dofadr[fin_j].astype(int),
        arm_range=model.jnt_range[arm_j].copy(),
        finger_range=model.jnt_range[fin_j[0]].copy(),
        object_qpos=model.jnt_qposadr[obj_joint].astype(int) if obj_joint else np.zeros(0, int),
        object_dof=model.jnt_dofadr[obj_joint].astype(int) if obj_joint else np.zeros(0, int),
        object_body=obj_body,
        object_geom=obj_geom,
        object_half_height=np.array([e[1] for e in ext]),
        object_radius=np.array([e[0] for e in ext]),
        target_mocap=np.array([model.body_mocapid[b] for b in target_body], int),
        chain=chain,
        grip_offset=model.site_pos[site].copy(),
        nu=model.nu,
        base_mass=model.body_mass[obj_body].copy(),
        base_inertia=model.body_inertia[obj_body].copy(),
        base_friction=model.geom_friction[obj_geom].copy(),
        base_size=model.geom_size[obj_geom].copy(),
        base_rbound=model.geom_rbound[obj_geom].copy(),
        base_aabb=model.geom_aabb[obj_geom].copy(),
    )


def apply_object_params(model: mujoco.MjModel, c: CompiledScene, scales: np.ndarray) -> None:
    """Write per-world object parameters into ``model``.

    Args:
        model: the world's own model copy.
        c: the compiled scene.
        scales: ``[n_obj, 3]`` (mass, friction, size) multipliers.
    """
    for k in range(c.n_obj):
        m_s, f_s, s_s = (float(x) for x in scales[k])
        b, g = c.object_body[k], c.object_geom[k]
        model.body_mass[b] = c.base_mass[k] * m_s
        # Inertia scales with mass and with size squared.
        model.body_inertia[b] = c.base_inertia[k] * m_s * s_s * s_s
        model.geom_friction[g] = c.base_friction[k] * np.array([f_s, 1.0, 1.0])
        model.geom_size[g] = c.base_size[k] * s_s
        model.geom_rbound[g] = c.base_rbound[k] * s_s
        model.geom_aabb[g] = c.base_aabb[k] * s_s
