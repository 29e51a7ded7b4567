"""SB3VecEnv: the Stable-Baselines3 VecEnv over an envgym vector env."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from envgym.core import keys
from envgym.wrappers import SB3VecEnv
from tests.helpers import make_vec

sb3 = pytest.importorskip("stable_baselines3", reason="needs the baselines extra")


def _oracle_actions(venv) -> np.ndarray:
    return venv.env.unwrapped.oracle_action().cpu().numpy()


def test_is_an_sb3_vec_env_with_numpy_observations_in_the_space() -> None:
    from stable_baselines3.common.vec_env import VecEnv

    venv = SB3VecEnv(make_vec(4, scenario="isp_bill_discount"), seed=0)
    assert isinstance(venv, VecEnv) and isinstance(venv, SB3VecEnv)
    assert venv.num_envs == 4
    obs = venv.reset()
    assert isinstance(obs, dict)
    for k, space in venv.observation_space.spaces.items():
        assert isinstance(obs[k], np.ndarray), k
        assert obs[k].shape == (4, *space.shape), k
        for i in range(4):
            assert space.contains(obs[k][i]), (k, i)
    obs, rew, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
    assert rew.dtype == np.float32 and rew.shape == (4,)
    assert dones.dtype == bool and dones.shape == (4,)
    assert len(infos) == 4
    assert all(set(d) >= {keys.NEXT_OBS_TARGET, keys.SUCCESS, keys.REWARD_TERMS} for d in infos)
    assert isinstance(infos[0][keys.NEXT_OBS_TARGET], np.ndarray)


def test_seed_gives_envgym_world_seeds_and_same_trajectory() -> None:
    a = SB3VecEnv(make_vec(3, scenario="all"), seed=7)
    b = make_vec(3, scenario="all")
    obs_a = a.reset()
    obs_b, _ = b.reset(seed=7)
    np.testing.assert_array_equal(obs_a["tokens"], obs_b["tokens"].numpy())
    # VecEnv.seed(s) before reset does the same as the constructor's seed.
    c = SB3VecEnv(make_vec(3, scenario="all"))
    c.seed(7)
    np.testing.assert_array_equal(c.reset()["tokens"], obs_a["tokens"])
    rng = np.random.default_rng(0)
    for _ in range(30):
        act = rng.integers(0, a.action_space.n, 3)
        oa, ra, da, _ = a.step(act)
        ob, rb, tb, ub, _ = b.step(torch.as_tensor(act))
        np.testing.assert_array_equal(oa["tokens"], ob["tokens"].numpy())
        np.testing.assert_array_equal(ra, rb.numpy())
        np.testing.assert_array_equal(da, (tb | ub).numpy())


def test_episode_end_follows_sb3_autoreset_convention() -> None:
    """On the ending step: obs is the next episode's first obs, infos carry the true last obs as
    terminal_observation, the episode stats and TimeLimit.truncated."""
    venv = SB3VecEnv(make_vec(4, scenario="isp_bill_discount"), seed=3)
    twin = make_vec(4, scenario="isp_bill_discount")
    venv.reset()
    twin.reset(seed=3)
    ended = 0
    for _ in range(40):
        act = _oracle_actions(venv)
        obs, rew, dones, infos = venv.step(act)
        t_obs, t_rew, t_term, t_trunc, t_info = twin.step(torch.as_tensor(act))
        for i in np.flatnonzero(dones):
            ended += 1
            d = infos[i]
            final = {k: v[i].numpy() for k, v in t_info[keys.FINAL_OBS].items()}
            for k in final:
                np.testing.assert_array_equal(d["terminal_observation"][k], final[k])
            # The target encodes the true last observation, not the reset one.
            np.testing.assert_array_equal(d[keys.NEXT_OBS_TARGET], final["tokens"])
            assert not np.array_equal(obs["tokens"][i], final["tokens"])
            assert d["TimeLimit.truncated"] == bool(t_trunc[i] and not t_term[i])
            assert d["success"] is True  # the oracle reaches the goal
            assert d["episode"]["l"] == int(t_info[keys.EPISODE]["l"][i])
            assert d["episode"]["r"] == pytest.approx(float(t_info[keys.EPISODE]["r"][i]))
        for i in np.flatnonzero(~dones):
            assert "terminal_observation" not in infos[i]
    assert ended >= 4


def test_truncation_is_reported_as_time_limit() -> None:
    venv = SB3VecEnv(make_vec(2, scenario="isp_bill_discount"), seed=0)
    venv.reset()
    wait = venv.env.unwrapped.action_names.index("wait")
    for _ in range(200):
        _, _, dones, infos = venv.step(np.full(2, wait))
        if dones.any():
            assert all(infos[i]["TimeLimit.truncated"] for i in np.flatnonzero(dones))
            return
    pytest.fail("waiting forever never truncated the episode")


def test_attribute_access_and_wrappers() -> None:
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    venv = SB3VecEnv(make_vec(2, scenario="mock"), seed=0)
    assert venv.get_attr("action_names", [0]) == [venv.env.unwrapped.action_names]
    assert venv.env_is_wrapped(VecMonitor) == [False, False]
    assert len(venv.env_method("oracle_action")) == 2
    wrapped = VecNormalize(VecMonitor(venv), norm_obs=False)
    wrapped.reset()
    obs, rew, dones, infos = wrapped.step(np.zeros(2, dtype=np.int64))
    assert obs["tokens"].shape[0] == 2 and rew.shape == (2,)
    with pytest.raises(RuntimeError, match="step_async"):
        venv.step_wait()


def test_ppo_learns_for_a_few_steps() -> None:
    from stable_baselines3 import PPO

    venv = SB3VecEnv(make_vec(8, scenario="mock"), seed=0)
    model = PPO("MultiInputPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0)
    model.learn(256)
    assert model.num_timesteps >= 256
    act, _ = model.predict(venv.reset(), deterministic=True)
    assert act.shape == (8,)


def test_missing_sb3_gives_an_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "stable_baselines3",
        "stable_baselines3.common",
        "stable_baselines3.common.vec_env",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import` raise ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[baselines\]'"):
        SB3VecEnv(make_vec(2, scenario="mock"))


def test_importing_the_wrappers_does_not_import_sb3() -> None:
    code = "import envgym.wrappers, sys; print('stable_baselines3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
