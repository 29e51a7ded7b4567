"""envgym driven by RL clients nobody here wrote: Gymnasium's vector wrappers, async
vectorization, Stable-Baselines3, TorchRL (docs/integrations.md).

Exclusions are limitations of the client, each commented where it applies.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import vector as gv

import envgym  # noqa: F401  (registers the ids)
from envgym.core import keys
from envgym.wrappers import NormalizeObservation, NumpyVector, TransformObservation

torch.set_num_threads(1)

PHONE = "envgym/Phone-Mock-v0"
ROBOT = "envgym/Robot-Reach-v0"
BROWSER = "envgym/Browser-ClickButton-v0"


def native(env_id: str, n: int, **kwargs: Any) -> Any:
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)


def drive(envs: Any, steps: int) -> list[tuple]:
    """Step ``envs`` (a NumPy face) ``steps`` times with the native oracle's actions."""
    return [envs.step(envs.unwrapped.oracle_action()) for _ in range(steps)]


# --------------------------------------------------------------------------- vector wrappers
@pytest.mark.parametrize("env_id", [PHONE, ROBOT])
def test_autoreset_mode_declared_like_gymnasium(env_id: str) -> None:
    envs = native(env_id, 2)
    assert envs.metadata["autoreset_mode"] is gym.vector.AutoresetMode.SAME_STEP
    assert envs.unwrapped.autoreset_mode is gym.vector.AutoresetMode.SAME_STEP
    assert NumpyVector(envs).metadata["autoreset_mode"] is gym.vector.AutoresetMode.SAME_STEP


@pytest.mark.parametrize("env_id", [PHONE, ROBOT])
def test_record_episode_statistics_matches_native_stats(env_id: str) -> None:
    envs = gv.RecordEpisodeStatistics(NumpyVector(native(env_id, 3)))
    obs, _ = envs.reset(seed=0)
    ended = 0
    for _obs, reward, term, trunc, info in drive(envs, 120 if env_id == ROBOT else 40):
        assert isinstance(reward, np.ndarray) and reward.dtype == np.float32
        assert isinstance(term, np.ndarray) and term.dtype == np.bool_
        done = term | trunc
        if done.any():
            ended += int(done.sum())
            # Gymnasium's statistics (its own "episode" key) equal envgym's own, computed in
            # the engine under keys.EPISODE.
            np.testing.assert_array_equal(info["_episode"], done)
            np.testing.assert_allclose(
                info["episode"]["r"][done], info[keys.EPISODE]["r"][done], rtol=1e-5
            )
            np.testing.assert_array_equal(info["episode"]["l"][done], info[keys.EPISODE]["l"][done])
            assert isinstance(info[keys.NEXT_OBS_TARGET], np.ndarray)
    assert ended > 0 and len(envs.return_queue) == ended


@pytest.mark.parametrize("env_id", [PHONE, ROBOT])
def test_normalize_reward_scales_by_return_std(env_id: str) -> None:
    raw = NumpyVector(native(env_id, 4))
    norm = gv.NormalizeReward(NumpyVector(native(env_id, 4)), gamma=0.9)
    raw.reset(seed=1)
    norm.reset(seed=1)
    for _ in range(30):
        act = raw.oracle_action()
        _, r_raw, *_ = raw.step(act)
        _, r_norm, *_ = norm.step(act)
        scale = np.sqrt(norm.return_rms.var + norm.epsilon)
        np.testing.assert_allclose(r_norm, r_raw / scale, rtol=1e-5, atol=1e-7)
    assert norm.return_rms.count > 30


def test_normalize_observation_same_step_normalizes_final_obs() -> None:
    envs = NormalizeObservation(NumpyVector(native(ROBOT, 4)))
    raw = NumpyVector(native(ROBOT, 4))  # the same worlds, unnormalised
    obs, _ = envs.reset(seed=0)
    raw_obs, _ = raw.reset(seed=0)
    seen_final = False
    for _ in range(120):
        act = raw.oracle_action()
        obs, _, term, trunc, info = envs.step(act)
        raw_obs, *_, raw_info = raw.step(act)
        assert obs.dtype == np.float32 and envs.observation_space.contains(obs)
        scale = np.sqrt(envs.obs_rms.var + envs.epsilon)
        np.testing.assert_allclose(obs, (raw_obs - envs.obs_rms.mean) / scale, rtol=1e-4, atol=1e-4)
        done = term | trunc
        if done.any():
            seen_final = True
            # final_obs went through the same statistics as the observations.
            want = (raw_info[keys.FINAL_OBS][done] - envs.obs_rms.mean) / scale
            np.testing.assert_allclose(info[keys.FINAL_OBS][done], want, rtol=1e-4, atol=1e-4)
    assert seen_final
    assert envs.obs_rms.count > 4 * 120
    # Gymnasium's own wrapper refuses SAME_STEP envs; ours refuses token ids (categorical).
    with pytest.raises(ValueError, match="NEXT_STEP"):
        gv.NormalizeObservation(NumpyVector(native(ROBOT, 2)))
    with pytest.raises(TypeError, match="Box"):
        NormalizeObservation(NumpyVector(native(PHONE, 2)))


def test_clip_and_rescale_action_on_robot() -> None:
    # ClipAction / RescaleAction need a Box action space: only the robot family has one (phone
    # actions are Discrete catalogue indices, browser actions are strings).
    envs = gv.ClipAction(NumpyVector(native(ROBOT, 2)))
    envs.reset(seed=0)
    _, r, *_ = envs.step(np.full((2, 7), 5.0, dtype=np.float32))  # out of [-1, 1]: clipped
    assert r.shape == (2,)
    scaled = gv.RescaleAction(NumpyVector(native(ROBOT, 2)), min_action=0.0, max_action=2.0)
    plain = NumpyVector(native(ROBOT, 2))
    scaled.reset(seed=0)
    plain.reset(seed=0)
    a = np.random.default_rng(0).uniform(-1, 1, (2, 7)).astype(np.float32)
    o1, *_ = scaled.step(a + 1.0)  # [0, 2] maps onto the native [-1, 1]
    o2, *_ = plain.step(a)
    np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("env_id", [PHONE, ROBOT])
def test_transform_observation(env_id: str) -> None:
    base = NumpyVector(native(env_id, 2))
    if env_id == PHONE:
        space = base.single_observation_space["tokens"]
        envs = TransformObservation(base, lambda o: o["tokens"], None, space)
    else:
        envs = TransformObservation(base, lambda o: o * 2.0)
    obs, _ = envs.reset(seed=0)
    ref = NumpyVector(native(env_id, 2))
    ref_obs, _ = ref.reset(seed=0)
    want = ref_obs["tokens"] if env_id == PHONE else ref_obs * 2.0
    np.testing.assert_array_equal(obs, want)
    for _ in range(40):
        act = ref.oracle_action()
        obs, _, term, trunc, info = envs.step(act)
        ref_obs, *_, ref_info = ref.step(act)
        want = ref_obs["tokens"] if env_id == PHONE else ref_obs * 2.0
        np.testing.assert_array_equal(obs, want)
        fin = ref_info[keys.FINAL_OBS]
        np.testing.assert_array_equal(
            info[keys.FINAL_OBS], fin["tokens"] if env_id == PHONE else fin * 2.0
        )
    # Gymnasium's own TransformObservation refuses SAME_STEP envs (final_obs would be left raw).
    with pytest.raises(ValueError, match="SAME_STEP"):
        gv.TransformObservation(base, lambda o: o, base.observation_space)


@pytest.mark.browser
def test_browser_native_vector_under_gymnasium_wrappers() -> None:
    # Browser actions are strings and observations mix Text and token ids: RecordEpisodeStatistics,
    # NormalizeReward and TransformObservation apply; the Box-only wrappers do not.
    envs = native(BROWSER, 2)
    try:
        w = gv.NormalizeReward(gv.RecordEpisodeStatistics(NumpyVector(envs)))
        w = TransformObservation(w, lambda o: o["tree"])
        obs, _ = w.reset(seed=0)
        assert obs.dtype == object and isinstance(obs[0], str)
        ended = 0
        for _ in range(6):
            obs, r, term, trunc, info = w.step(envs.oracle_action())
            assert isinstance(r, np.ndarray) and isinstance(obs[0], str)
            done = term | trunc
            if done.any():
                ended += int(done.sum())
                np.testing.assert_array_equal(
                    info["episode"]["l"][done], info[keys.EPISODE]["l"][done]
                )
        assert ended > 0
    finally:
        envs.close()


# ------------------------------------------------------------------ async / multiprocessing
ASYNC = """
import sys, gymnasium as gym, numpy as np, envgym
env_id = sys.argv[1]
envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="async")  # default start method
obs, info = envs.reset(seed=0)
envs.action_space.seed(0)
for _ in range(3):
    obs, reward, term, trunc, info = envs.step(envs.action_space.sample())
assert reward.shape == (2,) and "next_obs_target" in info, info.keys()
envs.close()
print("ASYNC_OK")
"""

MULTIPROCESSING = """
import multiprocessing as mp, sys, gymnasium as gym, envgym

def run(env_id, q):
    env = gym.make(env_id)
    env.reset(seed=1)
    env.action_space.seed(1)
    *_, info = env.step(env.action_space.sample())
    q.put(sorted(info))

if __name__ == "__main__":
    env_id = sys.argv[1]
    parent = gym.make(env_id)  # the parent runs torch ops before it starts the workers
    parent.reset(seed=0)
    parent.step(parent.action_space.sample())
    q = mp.Queue()
    procs = [mp.Process(target=run, args=(env_id, q)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0, p.exitcode
    assert all("next_obs_target" in keys for keys in got), got
    print("MP_OK")
"""


def run_script(code: str, env_id: str, token: str, timeout: float = 150) -> None:
    """Run ``code`` in a fresh interpreter; a hang fails the test at ``timeout`` instead of
    blocking the run."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "2"}  # >1: the torch thread pool that broke forks
    res = subprocess.run(
        [sys.executable, "-c", code, env_id],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert res.returncode == 0 and token in res.stdout, res.stderr[-3000:]


@pytest.mark.parametrize("env_id", [PHONE, ROBOT])
def test_async_vector_env_under_default_start_method(env_id: str) -> None:
    run_script(ASYNC, env_id, "ASYNC_OK")


@pytest.mark.parametrize("env_id", [PHONE, ROBOT])
def test_multiprocessing_workers_of_single_env(env_id: str) -> None:
    run_script(MULTIPROCESSING, env_id, "MP_OK")


@pytest.mark.browser
@pytest.mark.parametrize("script,token", [(ASYNC, "ASYNC_OK"), (MULTIPROCESSING, "MP_OK")])
def test_browser_async_and_multiprocessing(script: str, token: str) -> None:
    run_script(script, BROWSER, token)


def _world(x: Any, i: int) -> Any:
    """World ``i`` of a batched value (a dict of arrays or an array)."""
    return {k: _world(v, i) for k, v in x.items()} if isinstance(x, dict) else x[i]


def _assert_same_transition(got: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            _assert_same_transition(got[k], want[k])
    elif np.asarray(want).dtype.kind in "UO":  # text (the browser's page)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def check_sync_equals_singles(env_id: str, kwargs: dict, steps: int, oracle: bool = False) -> None:
    """Gymnasium's SyncVectorEnv over an id steps exactly like the id's single envs stepped side
    by side (Gymnasium's NEXT_STEP autoreset: the step after an episode end is a reset).
    Actions are random, or with ``oracle`` each world's ``oracle_action()``."""
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync", **kwargs)
    singles = [gym.make(env_id, **kwargs) for _ in range(2)]
    try:
        obs, info = envs.reset(seed=0)
        firsts = [e.reset(seed=i) for i, e in enumerate(singles)]  # Gymnasium seeds seed + i
        for i, (o, inf) in enumerate(firsts):
            _assert_same_transition(_world(obs, i), o)
            _assert_same_transition(info[keys.NEXT_OBS_TARGET][i], inf[keys.NEXT_OBS_TARGET])
        envs.action_space.seed(0)
        ended, pending = 0, [False, False]
        for _ in range(steps):
            action = tuple(envs.call("oracle_action")) if oracle else envs.action_space.sample()
            obs, reward, term, trunc, info = envs.step(action)
            for i, e in enumerate(singles):
                if pending[i]:  # Gymnasium's reset step: reward 0, the action ignored
                    o, inf = e.reset()
                    r, te, tr = 0.0, False, False
                else:
                    o, r, te, tr, inf = e.step(_world(action, i))
                _assert_same_transition(_world(obs, i), o)
                assert (reward[i], term[i], trunc[i]) == pytest.approx((r, te, tr))
                _assert_same_transition(info[keys.NEXT_OBS_TARGET][i], inf[keys.NEXT_OBS_TARGET])
                for name, value in inf[keys.REWARD_TERMS].items():
                    assert info[keys.REWARD_TERMS][name][i] == pytest.approx(value)
                pending[i] = bool(te or tr)
                ended += pending[i]
        assert ended > 0, "no episode ended: the autoreset was not exercised"
    finally:
        envs.close()
        for e in singles:
            e.close()


@pytest.mark.parametrize(
    "env_id,kwargs,steps",
    [(PHONE, {"obs_mode": "tokens"}, 40), (ROBOT, {}, 120)],
    ids=["phone", "robot"],
)
def test_sync_vector_env_equals_its_single_envs(env_id: str, kwargs: dict, steps: int) -> None:
    check_sync_equals_singles(env_id, kwargs, steps)


@pytest.mark.browser
def test_browser_sync_vector_env_equals_its_single_envs() -> None:
    # Oracle actions: random strings would never end an episode.
    check_sync_equals_singles(BROWSER, {}, 8, oracle=True)


# --------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("obs_mode", ["text", "tokens"])
def test_phone_renders_rgb_array_and_ansi(obs_mode: str) -> None:
    env = gym.wrappers.RenderCollection(
        gym.make("envgym/Phone-IspBillDiscount-v0", obs_mode=obs_mode, render_mode="rgb_array")
    )
    env.reset(seed=0)
    for _ in range(3):
        env.step(
            env.unwrapped.oracle_action()
            if obs_mode == "text"
            else env.unwrapped.vec.oracle_action()[0].item()
        )
    frames = env.render()
    assert len(frames) == 4 and all(
        f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames
    )
    assert not np.array_equal(frames[0], frames[-1])  # the transcript grew on the picture
    ansi = gym.make("envgym/Phone-IspBillDiscount-v0", obs_mode=obs_mode, render_mode="ansi")
    ansi.reset(seed=0)
    ansi.step(ansi.unwrapped.oracle_action() if obs_mode == "text" else 0)
    assert "\nassistant: " in ansi.render()


@pytest.mark.browser
def test_browser_renders_page_screenshot() -> None:
    env = gym.make(BROWSER, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.shape == (600, 800, 3)
        assert frame.std() > 0  # a real page, not the blank frame
    finally:
        env.close()


@pytest.mark.parametrize(
    "env_id,kwargs",
    [
        (PHONE, {"obs_mode": "tokens"}),
        (ROBOT, {}),
        pytest.param(BROWSER, {}, marks=pytest.mark.browser),
    ],
    ids=["phone", "robot", "browser"],
)
def test_record_video(env_id: str, kwargs: dict, tmp_path: Any) -> None:
    pytest.importorskip("moviepy")
    env = gym.wrappers.RecordVideo(
        gym.make(env_id, render_mode="rgb_array", **kwargs), str(tmp_path), video_length=6
    )
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(6):
        *_, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    # One video per recorded episode (a browser episode can end within the six steps).
    assert videos and all(v.stat().st_size > 1000 for v in videos)


# --------------------------------------------------------------------------- Stable-Baselines3
@pytest.mark.parametrize(
    "env_id,kwargs", [(PHONE, {"obs_mode": "tokens"}), (ROBOT, {})], ids=["phone", "robot"]
)
def test_sb3_make_vec_env_and_ppo(env_id: str, kwargs: dict) -> None:
    # SB3's own helper: it asks for render_mode="rgb_array" and wraps each env in a Monitor.
    # (Phone's text face and the browser family have Text spaces, which SB3 cannot handle:
    # use obs_mode="tokens" / envgym.wrappers.BrowserSlotActions.)
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=kwargs)
    try:
        policy = "MultiInputPolicy" if env_id == PHONE else "MlpPolicy"
        model = PPO(policy, venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
        model.learn(64)
        assert model.num_timesteps >= 64
        assert venv.get_images()[0].shape[-1] == 3  # render_mode="rgb_array" frames
    finally:
        venv.close()


# --------------------------------------------------------------------------- TorchRL
# TorchRL's specs are tensors: the browser family's string observations are out of its reach.
TORCHRL_IDS = [(PHONE, {"obs_mode": "tokens"}), (ROBOT, {})]


@pytest.mark.parametrize("env_id,kwargs", TORCHRL_IDS, ids=["phone", "robot"])
def test_torchrl_gym_env_single_with_targets(env_id: str, kwargs: dict) -> None:
    pytest.importorskip("torchrl")
    from torchrl.envs import GymEnv
    from torchrl.envs.utils import check_env_specs

    from envgym.wrappers import target_info_reader

    env = GymEnv(env_id, **kwargs)
    space = env._env.unwrapped.single_target_space
    env = env.auto_register_info_dict(info_dict_reader=target_info_reader(space))
    check_env_specs(env)
    td = env.rollout(8, break_when_any_done=False)
    assert td["next", keys.NEXT_OBS_TARGET].shape == (8, *space.shape)
    assert td["next", keys.NEXT_OBS_TARGET].abs().sum() > 0


@pytest.mark.parametrize("env_id", [PHONE, ROBOT])
def test_torchrl_env_over_native_engine(env_id: str) -> None:
    pytest.importorskip("torchrl")
    from torchrl.envs.utils import check_env_specs

    from envgym.wrappers import TorchRLEnv

    envs = native(env_id, 3)
    env = TorchRLEnv(envs)
    env.set_seed(0)
    check_env_specs(env)
    td = env.rollout(80, break_when_any_done=False)  # TorchRL resets ended worlds itself
    assert td.batch_size == (3, 80)
    nxt = td["next"]
    assert bool(nxt["done"].any()), "no episode ended: auto-reset not exercised"
    # Every target is the engine's encoding of the reported next observation, at episode ends
    # too: the next observation of an ending step is the true last one (final_obs), not the
    # reset one, and the reset one appears as the following step's observation.
    flat = nxt.reshape(-1)
    obs = (
        {k: flat[k] for k in envs.single_observation_space}
        if env_id == PHONE
        else flat["observation"]
    )
    torch.testing.assert_close(envs.target_from_obs(obs), flat[keys.NEXT_OBS_TARGET])
    ends = nxt["done"].squeeze(-1)
    w, t = torch.nonzero(ends[:, :-1], as_tuple=True)
    key = "turn" if env_id == PHONE else "observation"
    assert not torch.equal(td[key][w, t + 1], nxt[key][w, t])  # a new episode began
    terms = sum(nxt[keys.REWARD_TERMS][k] for k in envs.reward_term_names)
    torch.testing.assert_close(terms, nxt["reward"].squeeze(-1), rtol=1e-4, atol=1e-5)
    env.close()


def _torchrl_worker_env(env_id: str, kwargs: dict) -> Any:
    """One worker's env of TorchRL's ``ParallelEnv``. Module level: TorchRL spawns its workers,
    which unpickle this and so import this module, whose ``import envgym`` registers the ids."""
    from torchrl.envs import GymEnv

    from envgym.wrappers import target_info_reader

    env = GymEnv(env_id, **kwargs)
    space = env._env.unwrapped.single_target_space
    return env.auto_register_info_dict(info_dict_reader=target_info_reader(space))


@pytest.mark.parametrize("env_id,kwargs", TORCHRL_IDS, ids=["phone", "robot"])
def test_torchrl_parallel_env_of_gym_envs_with_targets(env_id: str, kwargs: dict) -> None:
    # TorchRL's own batching of single GymEnvs over worker processes: each worker resets its
    # env when TorchRL asks, so every transition, episode ends included, is the env's own.
    pytest.importorskip("torchrl")
    from torchrl.envs import ParallelEnv
    from torchrl.envs.utils import check_env_specs

    envs = ParallelEnv(2, partial(_torchrl_worker_env, env_id, kwargs))
    try:
        check_env_specs(envs)
        envs.set_seed(0)
        td = envs.rollout(80, break_when_any_done=False)
    finally:
        envs.close()
    ref = native(env_id, 1)
    assert td.batch_size == (2, 80)
    nxt = td["next"]
    assert bool(nxt["done"].any()), "no episode ended: TorchRL's resets not exercised"
    flat = nxt.reshape(-1)
    obs = (
        {k: flat[k] for k in ref.single_observation_space}
        if env_id == PHONE
        else flat["observation"]
    )
    # Every target is the encoding of the reported next observation, at episode ends too.
    torch.testing.assert_close(ref.target_from_obs(obs), flat[keys.NEXT_OBS_TARGET])
    assert flat[keys.NEXT_OBS_TARGET].abs().sum() > 0


def test_torchrl_gym_env_num_envs_limitations() -> None:
    """``torchrl.envs.GymEnv(id, num_envs=N)``: two limitations of TorchRL (0.14, with
    Gymnasium >= 1.1), pinned here so that a TorchRL that lifts them fails this test and
    docs/integrations.md gets revisited."""
    pytest.importorskip("torchrl")
    from torchrl.envs import GymEnv

    # 1. On any env (CartPole here): TorchRL builds Gymnasium's AsyncVectorEnv in its default
    # NEXT_STEP autoreset mode but reads the ended worlds' last observations from
    # info["final_obs"] (SAME_STEP). Each episode end then reports zeros as the next
    # observation, and the following transition is Gymnasium's reset step (reward 0, the
    # action ignored, starting from the lost last observation).
    env = GymEnv("CartPole-v1", num_envs=2)
    try:
        assert env.base_env._env.autoreset_mode is gym.vector.AutoresetMode.NEXT_STEP
        env.set_seed(0)
        td = env.rollout(80, break_when_any_done=False)
    finally:
        env.close()
    nxt = td["next"]
    w, t = torch.nonzero(nxt["done"].squeeze(-1)[:, :-1], as_tuple=True)
    assert len(w) > 0
    assert bool((nxt["observation"][w, t] == 0).all())
    assert bool((nxt["reward"][w, t + 1] == 0).all())  # CartPole rewards 1 on every real step
    assert bool((td["observation"][w, t + 1].abs().sum(-1) > 0).all())

    # 2. On envgym ids it stops earlier: its info reader guesses the info specs from a dummy
    # rollout and can't take a nested info dict (reward_terms, which Gymnasium batches with
    # "_name" masks inside). The "envgym:" prefix (Gymnasium's module:id form) makes the
    # spawned workers import envgym.
    for env_id, kwargs in TORCHRL_IDS:
        with pytest.raises(RuntimeError) as err:
            GymEnv(f"envgym:{env_id}", num_envs=2, **kwargs)
        assert "The keys of the specs and data do not match" in str(err.value.__context__)
        assert "reward_terms" in str(err.value.__context__)
