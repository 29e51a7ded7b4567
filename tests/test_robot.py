"""The robot family: conformance on both backends, oracle vs random, DSL errors, stability."""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import envgym  # noqa: F401  (registers the ids)
from envgym.robot.ids import TASKS

pytestmark = [
    pytest.mark.mujoco,
    pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs MuJoCo"),
]

IDS = [t[0] for t in TASKS]


def make_vec(env_id: str, n: int, **kw):
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kw)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The engine's tensors are small; more threads only contend on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("env_id", IDS)
def test_vector_env_conformance(env_id: str) -> None:
    from envgym.testing import check_vector_env

    # Short episodes so that auto-reset and final_obs are exercised within the rollouts.
    envs = make_vec(env_id, 3, episode_length=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "auto-reset was not exercised" fails the test
        check_vector_env(
            envs,
            single_env_fn=lambda: gym.make(env_id, episode_length=12),
            steps=30,
            worlds_vs_single=2,
        )
    envs.close()


@pytest.mark.parametrize("env_id", IDS)
def test_single_env_conformance(env_id: str) -> None:
    from envgym.testing import check_single_env

    env = gym.make(env_id, episode_length=10)
    check_single_env(env, steps=25)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_oracle_succeeds_random_does_not(env_id: str) -> None:
    from envgym.robot.evaluate import evaluate

    oracle = evaluate(env_id, "oracle", episodes=12, seed=1000)
    assert oracle["success_rate"] >= 0.9, oracle
    rnd = evaluate(env_id, "random", episodes=12, seed=1000)
    assert rnd["success_rate"] <= 0.1, rnd
    assert oracle["mean_return"] > rnd["mean_return"]


def test_unstable_world_is_reset_and_flagged() -> None:
    envs = make_vec("envgym/Robot-PickPlace-v0", 4).unwrapped
    obs0, _ = envs.reset(seed=3)
    # Inject a runaway velocity into world 1 only (the physics state is a zero-copy view).
    envs.engine.physics.qvel[1, 0] = 1e6
    act = torch.zeros(4, 7)
    obs, rew, term, trunc, info = envs.step(act)
    assert info["unstable"].tolist() == [False, True, False, False]
    assert trunc.tolist() == [False, True, False, False]
    assert not bool(info["success"][1]) and float(rew[1]) == 0.0
    assert torch.isfinite(obs).all() and torch.isfinite(info["final_obs"]).all()
    # The unstable world's last observation is its state before the bad step (the injected
    # velocity included); the next observation is a fresh episode at rest.
    assert torch.equal(info["final_obs"][1, :6], obs0[1, :6])
    assert float(info["final_obs"][1, 6]) == 1e6
    assert float(obs[1, 6:12].abs().max()) == 0.0
    # The other worlds stepped normally, and world 1 runs on after its reset.
    for _ in range(5):
        obs, rew, term, trunc, info = envs.step(envs.oracle_action())
        assert not bool(info["unstable"].any())
    assert torch.isfinite(obs).all()
    envs.close()


@pytest.mark.parametrize("scene", ["reach", "push", "pick_place", "stack"])
@pytest.mark.parametrize("control", ["joint_position", "joint_torque"])
def test_numpy_step_matches_the_torch_step(scene: str, control: str) -> None:
    """The CPU backend's NumPy step and the torch step (the Warp backend's) apply the same
    rules: from the same state under the same actions they give the same transition."""
    from envgym.robot.env import RobotVectorEnv
    from envgym.robot.scenes import load_scene

    sc = load_scene(scene)
    robot = sc.robot.model_copy(update={"control": control})
    sc = sc.model_copy(update={"name": f"{scene}_{control}", "robot": robot})
    a, b = (RobotVectorEnv(5, sc, num_threads=1, episode_length=30) for _ in range(2))
    b.engine.step = b.engine._step_torch  # the torch path on the same CPU physics
    for e in (a, b):
        e.reset(seed=77)
    gen = torch.Generator().manual_seed(5)
    ended = torch.zeros(5, dtype=torch.long)
    for i in range(45):
        if i == 7:  # one world blows up: the roll-back and zero reward on both paths
            for e in (a, b):
                e.engine.physics.qvel[3, 0] = 1e6
        act = torch.where(
            torch.rand(5, 1, generator=gen) < 0.6,
            a.oracle_action(),
            torch.rand(5, 7, generator=gen) * 2 - 1,
        )
        oa, ra, ta, ua, ia = a.step(act)
        ob, rb, tb, ub, ib = b.step(act)
        torch.testing.assert_close(oa, ob, rtol=0, atol=1e-6)
        torch.testing.assert_close(ra, rb, rtol=0, atol=1e-6)
        for k, v in ia["reward_terms"].items():
            torch.testing.assert_close(v, ib["reward_terms"][k], rtol=0, atol=1e-6)
        for k in ("success", "unstable"):
            assert torch.equal(ia[k], ib[k]), (i, k)
        assert torch.equal(ta, tb) and torch.equal(ua, ub), i
        assert oa.dtype == ra.dtype == torch.float32 and ta.dtype == ua.dtype == torch.bool
        assert bool(ia["unstable"][3]) == (i == 7), i  # only the injected blow-up
        if i == 7:
            assert float(ra[3]) == 0.0
        ended += ta | ua
    assert int(ended.sum()) >= 5  # resets happened (time limit, the unstable world, success)
    a.close()
    b.close()


@pytest.mark.parametrize("scene", ["reach", "stack"])
def test_cpu_observation_after_a_reset_is_the_named_quantities(scene: str) -> None:
    """After a reset of some worlds the CPU backend builds the observation with the NumPy
    step's own builder; the generic path, which concatenates the named quantities, gives the
    same bits, and the worlds not reset keep theirs."""
    from envgym.robot.env import RobotVectorEnv

    env = RobotVectorEnv(5, scene, num_threads=1)
    env.reset(seed=3)
    for _ in range(4):
        env.step(env.oracle_action())
    eng, before = env.engine, env.engine.observe(env.state)
    mask = torch.tensor([True, False, True, False, True])
    env._reset_worlds(mask, None)
    obs = eng.observe(env.state)
    assert torch.equal(obs, eng.observe(env.state, eng.quantities(env.state)))
    assert torch.equal(obs[~mask], before[~mask]) and not torch.equal(obs[mask], before[mask])
    assert obs.dtype == torch.float32 and obs.shape == (5, eng.layout.size)
    env.close()


def test_numpy_forward_kinematics_matches_torch() -> None:
    from envgym.robot.env import compiled_scene
    from envgym.robot.kinematics import ArmKinematics

    c = compiled_scene("pick_place")
    kin = ArmKinematics(c, torch.device("cpu"))
    q = torch.rand(257, c.model.nq, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grip, R, _ = kin.forward(q * 6 - 3)
    grip_np, R_np = kin.forward_np((q * 6 - 3).numpy())
    np.testing.assert_allclose(grip_np, grip.numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(R_np, R.numpy(), rtol=0, atol=1e-14)


def test_bad_scene_names_file_and_field(tmp_path) -> None:
    from envgym.dsl import ScenarioError
    from envgym.robot.scenes import load_scene

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "objects:\n"
        "  - {name: cube, size: [0.02, 0.02], placement: {x: {low: 0.3, high: 0.4},"
        " y: {low: 0, high: 0.1}}}\n"
        "task: {kind: push, object: cube, target: nowhere, reward: {success: 1.0}}\n"
    )
    with pytest.raises(ScenarioError) as e:
        load_scene(bad)
    assert "bad.yaml" in str(e.value) and "objects[0]" in str(e.value)
    bad.write_text(
        "name: bad\ntask: {kind: push, object: cube, target: goal, reward: {speed: 1.0}}\n"
    )
    with pytest.raises(ScenarioError) as e:
        load_scene(bad)
    msg = str(e.value)
    assert "task.object" in msg and "task.target" in msg and "task.reward.speed" in msg


def test_object_randomisation_varies_per_world() -> None:
    envs = make_vec("envgym/Robot-Push-v0", 3).unwrapped
    envs.reset(seed=0)
    masses = [
        envs.engine.physics.models[i].body_mass[envs.compiled.object_body[0]] for i in range(3)
    ]
    assert len({float(m) for m in masses}) == 3
    scales = envs.state["scales"][:, 0, 0]
    base = envs.compiled.base_mass[0]
    assert np.allclose(np.asarray(masses).ravel(), base * scales.numpy())
    envs.close()


def test_missing_extra_names_install_command(monkeypatch) -> None:
    import envgym.robot as robot

    monkeypatch.setattr(robot.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[robot\]'"):
        robot.make_single()


# ---------------------------------------------------------------- MuJoCo Warp backend

needs_warp = pytest.mark.skipif(
    importlib.util.find_spec("mujoco_warp") is None, reason="needs mujoco_warp (extra 'gpu')"
)

# Documented tolerance (docs/robot.md): MuJoCo Warp computes in float32, the CPU backend in
# float64; over 20 oracle steps of the same actions the grip site agrees within 5 mm and the
# arm joints within 0.01 rad.
GRIP_TOL_M = 5e-3
JOINT_TOL_RAD = 1e-2


@needs_warp
def test_warp_backend_conformance_on_warp_cpu() -> None:
    from envgym.testing import check_single_env, check_vector_env

    env_id = "envgym/Robot-PickPlace-v0"
    kw = {"backend": "warp", "warp_device": "cpu", "episode_length": 8}
    envs = make_vec(env_id, 3, **kw)
    check_vector_env(
        envs, single_env_fn=lambda: gym.make(env_id, **kw), steps=16, worlds_vs_single=2
    )
    envs.close()
    check_single_env(gym.make(env_id, **kw), steps=12)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("warp", marks=needs_warp)])
def test_raw_step_leaves_the_env_as_it_was(backend: str) -> None:
    """``envgym bench``'s robot baseline (``raw_step_seconds``, timed before each step) changes
    nothing: an env that runs it before every step follows its twin's trajectory bit for bit."""
    from envgym.robot.env import RobotVectorEnv

    kw = {"backend": "warp", "warp_device": "cpu"} if backend == "warp" else {}
    paired, twin = (RobotVectorEnv(3, "pick_place", episode_length=3, **kw) for _ in range(2))
    paired.reset(seed=5)
    twin.reset(seed=5)
    for _ in range(5):  # an episode end and its reset among them
        a = twin.oracle_action()
        assert paired.raw_step_seconds(a) > 0
        for x, y in zip(paired.step(a)[:4], twin.step(a)[:4], strict=True):
            assert torch.equal(x, y)
    paired.close()
    twin.close()


def test_raw_step_is_the_steps_own_physics() -> None:
    """The CPU baseline integrates what the step integrates: from the same state, under the
    step's controls, to the same new state (the physics of a step with no episode end)."""
    from envgym.robot.env import RobotVectorEnv

    env = RobotVectorEnv(4, "pick_place")
    env.reset(seed=2)
    ph = env.engine.physics
    for _ in range(3):
        a = env.oracle_action()
        env.raw_step_seconds(a)
        raw_new = ph._scratch[1][:, -1].copy()
        _, _, term, trunc, _ = env.step(a)
        assert not bool((term | trunc).any())
        np.testing.assert_array_equal(raw_new, ph.state)
    env.close()


@needs_warp
@pytest.mark.parametrize("scene", ["reach", "pick_place"])
def test_warp_trajectory_agrees_with_cpu(scene: str) -> None:
    from envgym.robot.env import RobotVectorEnv

    cpu = RobotVectorEnv(2, scene)
    warp = RobotVectorEnv(2, scene, backend="warp", warp_device="cpu")
    oc, _ = cpu.reset(seed=11)
    ow, _ = warp.reset(seed=11)
    lay = {name: slice(a, b) for name, a, b in cpu.obs_layout}
    assert torch.allclose(oc, ow, atol=1e-6)
    for _ in range(20):
        act = cpu.oracle_action()
        oc, rc, *_ = cpu.step(act)
        ow, rw, *_ = warp.step(act)
        grip = (oc[:, lay["grip_pos"]] - ow[:, lay["grip_pos"]]).abs().max()
        joints = (oc[:, lay["arm_qpos"]] - ow[:, lay["arm_qpos"]]).abs().max()
        assert float(grip) < GRIP_TOL_M and float(joints) < JOINT_TOL_RAD, (grip, joints)
    cpu.close()
    warp.close()


@needs_warp
def test_warp_oracle_reaches_on_warp_cpu() -> None:
    from envgym.robot.evaluate import evaluate

    # Warp on a CPU is slow (GPU kernels): reach episodes are short enough to check here.
    row = evaluate("envgym/Robot-Reach-v0", "oracle", episodes=4, seed=7, backend="warp")
    assert row["success_rate"] == 1.0, row


@pytest.mark.gpu
@needs_warp
def test_warp_cuda_graph_conformance_and_oracle() -> None:
    from envgym.robot.evaluate import evaluate
    from envgym.testing import check_vector_env

    env_id = "envgym/Robot-PickPlace-v0"
    envs = make_vec(env_id, 8, backend="warp", device="cuda", episode_length=12)
    assert envs.unwrapped.observation_space is not None
    check_vector_env(
        envs,
        single_env_fn=lambda: gym.make(env_id, backend="warp", device="cuda", episode_length=12),
        steps=30,
    )
    envs.close()
    row = evaluate(env_id, "oracle", episodes=64, backend="warp", device="cuda")
    assert row["success_rate"] >= 0.9, row


# ---------------------------------------------------------------- rendering and CLI


def _gl_or_skip() -> None:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    import mujoco

    try:
        m = mujoco.MjModel.from_xml_string("<mujoco><worldbody/></mujoco>")
        mujoco.Renderer(m, 8, 8).close()
    except Exception as e:  # no offscreen OpenGL on this machine (.ci/run installs Mesa EGL)
        pytest.skip(f"offscreen OpenGL unavailable: {e}")


def test_rgb_array_render_and_video(tmp_path) -> None:
    _gl_or_skip()
    from envgym.cli import main

    env = gym.make("envgym/Robot-Reach-v0", render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.step(env.unwrapped.oracle_action())
    assert not np.array_equal(env.render(), frame)  # the arm moved
    env.close()
    out = tmp_path / "reach.mp4"
    rc = main(
        ["render", "envgym/Robot-Reach-v0", "--out", str(out), "--width", "64", "--height", "48"]
    )
    assert rc == 0 and out.stat().st_size > 1000


def test_render_after_an_episode_ends_shows_its_last_state() -> None:
    _gl_or_skip()
    env = gym.make(
        "envgym/Robot-Reach-v0", render_mode="rgb_array", width=64, height=48, episode_length=3
    )
    vec = env.unwrapped.vec
    env.reset(seed=0)
    assert vec.final_frame is None
    for _ in range(3):
        _, _, term, trunc, _ = env.step(env.unwrapped.oracle_action())
        if term or trunc:
            break
    assert term or trunc
    last = env.render()
    assert last is vec.final_frame and last.shape == (48, 64, 3)
    # The world has reset already: its current frame is the next episode's first.
    assert not np.array_equal(last, vec.render(0, 0, 64, 48))
    env.close()


def test_schema_and_bench_cli(tmp_path, capsys) -> None:
    import json

    from envgym.cli import main

    assert main(["schema", "robot", "--out", str(tmp_path / "s.json")]) == 0
    schema = json.loads((tmp_path / "s.json").read_text())
    assert "task" in schema["properties"]
    out = tmp_path / "b.json"
    rc = main(
        [
            "bench",
            "envgym/Robot-Reach-v0",
            "--num-envs",
            "4",
            "--steps",
            "5",
            "--warmup",
            "1",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    row = json.loads(out.read_text())
    assert row["raw_steps_per_s"] > 0 and row["env_steps_per_s"] > 0
    assert "mujoco.rollout" in row["raw_baseline"]


def test_bench_times_the_raw_physics_of_the_oracles_own_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under the oracle the raw baseline does the oracle's steps' physics (paired, step by
    step: right before each step, from the state that step starts in, under its actions), so
    the ratio compares the same work; its time is the timed steps' raw seconds."""
    from envgym.bench import bench_env
    from envgym.robot.env import RobotVectorEnv

    calls: list[tuple[str, np.ndarray, np.ndarray, float]] = []
    raw_step, step = RobotVectorEnv.raw_step_seconds, RobotVectorEnv.step

    def record(kind: str, env: RobotVectorEnv, actions: torch.Tensor, seconds: float) -> None:
        state = env.engine.physics.state.copy()
        calls.append((kind, state, np.asarray(actions).copy(), seconds))

    def raw_spy(self: RobotVectorEnv, actions: torch.Tensor) -> float:
        seconds = raw_step(self, actions)
        record("raw", self, actions, seconds)
        return seconds

    def step_spy(self: RobotVectorEnv, actions: torch.Tensor) -> Any:
        record("step", self, actions, 0.0)  # before the step: the state it starts in
        return step(self, actions)

    monkeypatch.setattr(RobotVectorEnv, "raw_step_seconds", raw_spy)
    monkeypatch.setattr(RobotVectorEnv, "step", step_spy)
    warmup, steps = 2, 6
    row = bench_env("envgym/Robot-PickPlace-v0", 4, steps=steps, warmup=warmup, policy="oracle")
    assert [c[0] for c in calls] == ["raw", "step"] * (warmup + steps)
    for raw, stepped in zip(calls[::2], calls[1::2], strict=True):
        np.testing.assert_array_equal(raw[1], stepped[1])  # the same start state
        np.testing.assert_array_equal(raw[2], stepped[2])  # the same actions
    assert "each step's own physics" in row["raw_baseline"]
    assert row["raw_time_s"] == pytest.approx(sum(c[3] for c in calls[::2][warmup:]))
    assert row["oracle_time_s"] > 0
    assert row["ratio"] == pytest.approx(row["env_steps_per_s"] / row["raw_steps_per_s"])


def test_pixel_observations_batched() -> None:
    _gl_or_skip()
    from envgym.testing import check_single_env, check_vector_env

    env_id = "envgym/Robot-Stack-v0"
    kw = {"obs_mode": "pixels", "image_size": 24, "episode_length": 8}
    envs = make_vec(env_id, 3, **kw)
    obs, _ = envs.reset(seed=0)
    assert obs["pixels"].shape == (3, 24, 24, 3) and obs["pixels"].dtype == torch.uint8
    # Different worlds, different scenes: the cubes are placed per world.
    assert not torch.equal(obs["pixels"][0], obs["pixels"][1])
    check_vector_env(envs, single_env_fn=lambda: gym.make(env_id, **kw), steps=12)
    envs.close()
    check_single_env(gym.make(env_id, **kw), steps=10)


def test_joint_torque_control_mode() -> None:
    from envgym.robot.env import RobotVectorEnv
    from envgym.robot.scenes import load_scene

    sc = load_scene("pick_place")
    robot = sc.robot.model_copy(update={"control": "joint_torque"})
    sc = sc.model_copy(update={"name": "pick_place_torque", "robot": robot})
    envs = RobotVectorEnv(6, sc)
    m = envs.compiled.model
    assert (m.actuator_biastype[:6] == 0).all()  # motors, not position servos
    envs.reset(seed=3)
    done = torch.zeros(6, dtype=torch.bool)
    success = torch.zeros(6, dtype=torch.bool)
    while not bool(done.all()):
        _, _, term, trunc, info = envs.step(envs.oracle_action())
        ended = (term | trunc) & ~done
        success |= ended & info["success"]
        done |= ended
    assert int(success.sum()) >= 5
    envs.close()


def test_validate_cli_checks_robot_scenes(tmp_path, capsys) -> None:
    from envgym.cli import main

    assert main(["validate", "scenarios/robot/"]) == 0
    assert "robot scene stack: stack" in capsys.readouterr().out
    bad = tmp_path / "robot" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text("name: bad\ntask: {kind: reach, target: goal, reward: {success: 1}}\n")
    assert main(["validate", str(bad)]) == 1
    assert "task.target" in capsys.readouterr().out


def test_in_range_actions_take_the_short_check_with_the_full_checks_results() -> None:
    """The action check's fast path (CPU floats of the right shape, all in [-1, 1]) gives the
    float32 values the full check gives; a float32 tensor passes uncopied, an array is always
    copied; anything out of range, non-finite or odd goes through the full rule."""
    from envgym.core.errors import InvalidActionError
    from envgym.robot.env import action_tensor

    cpu = torch.device("cpu")
    rng = np.random.default_rng(3)
    inside = rng.uniform(-1, 1, (4, 7))
    for a in (torch.from_numpy(inside), torch.from_numpy(inside).float(), inside):
        t = action_tensor(a, 4, 7, cpu)
        assert t.dtype == torch.float32 and t.shape == (4, 7)
        assert torch.equal(t, torch.from_numpy(inside.astype(np.float32)))
    t32 = torch.from_numpy(inside).float()
    assert action_tensor(t32, 4, 7, cpu).data_ptr() == t32.data_ptr()
    frozen = inside.astype(np.float32)
    frozen.setflags(write=False)
    assert not np.shares_memory(action_tensor(frozen, 4, 7, cpu).numpy(), frozen)
    single = action_tensor(inside[0].astype(np.float32), 1, 7, cpu, single=True)
    assert single.shape == (1, 7) and torch.equal(single[0], t32[0])
    big = inside * 1e300
    assert torch.equal(action_tensor(big, 4, 7, cpu), torch.from_numpy(np.sign(big)).float())
    for bad in (np.full((4, 7), np.nan), np.full((4, 7), np.inf), inside[:3]):
        with pytest.raises(InvalidActionError):
            action_tensor(bad, 4, 7, cpu)
