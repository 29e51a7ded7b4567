"""The robot scene DSL: pydantic models for an arm, a table, objects, targets, cameras and a task.

A scene is one YAML document under ``scenarios/robot/``. Every model forbids unknown fields and
documents each field (``envgym schema robot`` exports the JSON Schema). Cross-references (the
task naming its objects and target, reward terms the task can compute) are checked by
:func:`check_references`, which reports each problem with its field path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from envgym.dsl.errors import Problem

Ident = Annotated[
    str,
    Field(pattern=r"^[a-z][a-z0-9_]*$", description="identifier: lowercase, digits, underscores"),
]
Vec3 = tuple[float, float, float]
RGBA = tuple[float, float, float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """A closed interval ``[low, high]`` sampled uniformly per world on every reset."""

    low: float = Field(description="lower bound")
    high: float = Field(description="upper bound (equal to low for a fixed value)")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


def fixed(x: float) -> Range:
    """A degenerate range (a constant)."""
    return Range(low=x, high=x)


class Placement(_Model):
    """Where something starts, per world: x/y on the table (metres, world frame), height of
    its centre above the table top (``z``; omit it to rest on the table) and yaw (radians)."""

    x: Range = Field(description="x range of the centre (metres, world frame)")
    y: Range = Field(description="y range of the centre (metres, world frame)")
    z: Range | None = Field(
        None, description="height of the centre above the table top; omitted: resting on it"
    )
    yaw: Range = Field(default_factory=lambda: fixed(0.0), description="yaw range (radians)")


class Robot(_Model):
    """The arm: an MJCF asset, its joints and how actions drive them."""

    asset: str = Field(
        "arm6.xml", description="MJCF file under scenarios/robot/assets/ defining the arm"
    )
    arm_joints: list[Ident] = Field(
        default_factory=lambda: ["j1", "j2", "j3", "j4", "j5", "j6"],
        description="hinge joints of the arm, base to tool (one action dimension each)",
    )
    finger_joints: list[Ident] = Field(
        default_factory=lambda: ["finger_left", "finger_right"],
        description="slide joints of the gripper fingers (driven together by the last action)",
    )
    grip_site: Ident = Field("grip", description="site between the finger pads")
    control: Literal["joint_position", "joint_torque"] = Field(
        "joint_position",
        description="joint_position: actions in [-1, 1] map to joint position targets over "
        "each joint's range; joint_torque: actions in [-1, 1] scale each joint's torque limit",
    )
    kp: float = Field(300.0, gt=0, description="position servo stiffness (N m / rad)")
    torque_limit: float = Field(60.0, gt=0, description="joint torque limit (N m)")
    finger_kp: float = Field(300.0, gt=0, description="finger position servo stiffness (N / m)")
    home: list[float] = Field(
        default_factory=lambda: [0.0, 0.35, 1.6, 0.0, 1.2, 0.0],
        description="arm joint angles at the start of an episode (radians)",
    )
    home_noise: float = Field(
        0.05, ge=0, description="uniform noise (radians) added to each home angle per world"
    )


class Table(_Model):
    """A box table whose top surface is the plane z = 0."""

    center: tuple[float, float] = Field((0.4, 0.0), description="x, y of the table centre")
    size: tuple[float, float] = Field((0.5, 0.6), description="half extents in x and y")
    thickness: float = Field(0.03, gt=0, description="half thickness of the top")
    friction: float = Field(1.0, gt=0, description="sliding friction coefficient")
    rgba: RGBA = Field((0.55, 0.42, 0.3, 1.0), description="colour")


class Randomization(_Model):
    """Per-world physical randomisation of an object, drawn on every reset."""

    mass_scale: Range = Field(default_factory=lambda: fixed(1.0), description="mass multiplier")
    friction_scale: Range = Field(
        default_factory=lambda: fixed(1.0), description="sliding friction multiplier"
    )
    size_scale: Range = Field(
        default_factory=lambda: fixed(1.0), description="size multiplier (all extents)"
    )


class SceneObject(_Model):
    """A free rigid object on the table."""

    name: Ident = Field(description="identifier (body and geom name)")
    shape: Literal["box", "cylinder", "sphere"] = Field("box", description="primitive shape")
    size: list[float] = Field(
        description="MuJoCo size: box half extents [x, y, z]; cylinder [radius, half height]; "
        "sphere [radius]"
    )
    mass: float = Field(0.1, gt=0, description="mass (kg)")
    friction: float = Field(1.0, gt=0, description="sliding friction coefficient")
    rgba: RGBA = Field((0.85, 0.2, 0.2, 1.0), description="colour")
    placement: Placement = Field(description="initial pose range")
    randomize: Randomization = Field(
        default_factory=Randomization, description="per-world mass/friction/size ranges"
    )

    @model_validator(mode="after")
    def _size_len(self) -> SceneObject:
        want = {"box": 3, "cylinder": 2, "sphere": 1}[self.shape]
        if len(self.size) != want:
            raise ValueError(f"a {self.shape} needs {want} size values, got {len(self.size)}")
        if any(s <= 0 for s in self.size):
            raise ValueError("sizes must be positive")
        return self


class Target(_Model):
    """A goal marker (visual only: it never collides)."""

    name: Ident = Field(description="identifier")
    placement: Placement = Field(description="where the goal is drawn per world")
    radius: float = Field(0.02, gt=0, description="marker radius (visual only)")
    rgba: RGBA = Field((0.2, 0.8, 0.3, 0.5), description="colour")


class Camera(_Model):
    """A fixed camera for rendering and pixel observations."""

    name: Ident = Field(description="identifier")
    pos: Vec3 = Field(description="position (metres, world frame)")
    look_at: Vec3 = Field(description="the point the camera looks at")
    fovy: float = Field(45.0, gt=0, lt=180, description="vertical field of view (degrees)")


TaskKind = Literal["reach", "push", "pick_place", "stack"]

TERMS_BY_TASK: dict[str, tuple[str, ...]] = {
    "reach": ("grip_to_target", "success", "joint_velocity"),
    "push": ("grip_to_object", "object_to_target", "success", "joint_velocity"),
    "pick_place": ("grip_to_object", "object_to_target", "success", "joint_velocity"),
    "stack": ("grip_to_object", "object_to_target", "success", "joint_velocity"),
}
"""The reward terms each task can compute (see docs/robot.md for their definitions)."""


class Task(_Model):
    """What counts as success and how it is rewarded."""

    kind: TaskKind = Field(
        description="reach: grip site to target; push: object's x-y to the target on the "
        "table; pick_place: object to a target above the table; stack: object on top of "
        "`support`, released"
    )
    object: Ident | None = Field(None, description="the object to move (not for reach)")
    support: Ident | None = Field(None, description="stack: the object to stack on")
    target: Ident | None = Field(None, description="the target (not for stack)")
    tolerance: float = Field(0.03, gt=0, description="success distance (metres)")
    min_start_distance: float = Field(
        0.1,
        ge=0,
        description="the target (stack: the object) is redrawn per world, up to 16 candidates, "
        "until its start is at least this far (x-y) from the object (reach: the grip's home)",
    )
    terminate_on_success: bool = Field(
        True, description="end the episode (terminated) on the step success first holds"
    )
    reward: dict[str, float] = Field(
        description="reward term name -> weight; the reward is the sum of weight * term"
    )


class Physics(_Model):
    """Simulation settings."""

    timestep: float = Field(0.004, gt=0, le=0.02, description="physics timestep (s)")
    substeps: int = Field(5, ge=1, le=50, description="physics steps per env step")
    unstable_velocity: float = Field(
        50.0, gt=0, description="a world with any |qvel| above this (or NaN) is reset"
    )


class RobotScene(_Model):
    """A robot scene: the arm, the table, objects, targets, cameras and the task."""

    name: Ident = Field(description="identifier; equals the file name's stem")
    description: str = Field("", description="what the scene is about")
    robot: Robot = Field(default_factory=Robot, description="the arm")
    table: Table = Field(default_factory=Table, description="the table")
    objects: list[SceneObject] = Field(
        default_factory=list, max_length=8, description="free objects (at most 8)"
    )
    targets: list[Target] = Field(default_factory=list, description="goal markers")
    cameras: list[Camera] = Field(default_factory=list, description="fixed cameras")
    task: Task = Field(description="the task")
    episode_length: int = Field(100, ge=1, le=10_000, description="steps before truncation")
    physics: Physics = Field(default_factory=Physics, description="simulation settings")


def check_references(sc: RobotScene) -> list[Problem]:
    """Cross-field checks: names exist and are unique, the task has what it needs."""
    problems: list[Problem] = []
    obj_names = [o.name for o in sc.objects]
    tgt_names = [t.name for t in sc.targets]
    for kind, names in (("objects", obj_names), ("targets", tgt_names)):
        seen: set[str] = set()
        for i, n in enumerate(names):
            if n in seen:
                problems.append(Problem(f"{kind}[{i}].name", f"duplicate name {n!r}"))
            seen.add(n)
    t = sc.task
    needs_object = t.kind != "reach"
    needs_target = t.kind != "stack"
    if needs_object and t.object not in obj_names:
        problems.append(
            Problem("task.object", f"a {t.kind} task names one of the objects {obj_names}")
        )
    if not needs_object and t.object is not None:
        problems.append(Problem("task.object", "a reach task has no object"))
    if needs_target and t.target not in tgt_names:
        problems.append(
            Problem("task.target", f"a {t.kind} task names one of the targets {tgt_names}")
        )
    if t.kind == "stack":
        if t.support not in obj_names:
            problems.append(Problem("task.support", f"a stack task names one of {obj_names}"))
        elif t.support == t.object:
            problems.append(Problem("task.support", "must differ from task.object"))
    elif t.support is not None:
        problems.append(Problem("task.support", "only a stack task has a support"))
    allowed = TERMS_BY_TASK[t.kind]
    for term in t.reward:
        if term not in allowed:
            problems.append(
                Problem(f"task.reward.{term}", f"unknown term for {t.kind}; one of {allowed}")
            )
    r = sc.robot
    if len(r.home) != len(r.arm_joints):
        problems.append(
            Problem("robot.home", f"needs {len(r.arm_joints)} angles (one per arm joint)")
        )
    if len(r.finger_joints) != 2:
        problems.append(Problem("robot.finger_joints", "a two-finger gripper needs 2 joints"))
    for i, o in enumerate(sc.objects):
        if o.placement.z is not None:
            problems.append(Problem(f"objects[{i}].placement.z", "objects start on the table"))
    return problems
