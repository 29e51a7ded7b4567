"""Conformance checks for envgym vector envs, shipped so scenario authors can run them too.

``check_vector_env`` asserts the contracts of ARCHITECTURE §2-3 on a vector env:
spaces and device, the info keys, reward = sum of terms, seed determinism, SAME_STEP
auto-reset with targets from the true last observation, snapshot/restore, clear errors on
out-of-space actions and, given a single-env factory, batch-vs-single equivalence.
Contract violations raise ``AssertionError`` with a message saying which world, which step
and what differed; suspicious-but-legal choices only warn.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from envgym.core import keys

Obs = Any


def _np(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _mask(info: dict[str, Any]) -> Any:
    """The info's action mask as NumPy, or None when the env publishes none."""
    m = info.get(keys.ACTION_MASK)
    return None if m is None else _np(m)


def _row(x: Any, i: int) -> Any:
    if isinstance(x, dict):
        return {k: _row(v, i) for k, v in x.items()}
    return x[i]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(np.array_equal(_np(a), _np(b)))


def _diff(a: Any, b: Any) -> str:
    if isinstance(a, dict):
        bad = [k for k in a if not _equal(a[k], b.get(k))]
        return f"keys {bad} differ"
    return f"{_np(a)!r} != {_np(b)!r}"


def _devices(x: Any) -> set[torch.device]:
    if isinstance(x, dict):
        out: set[torch.device] = set()
        for v in x.values():
            out |= _devices(v)
        return out
    if torch.is_tensor(x):
        return {x.device}
    return set()


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def _same_rows(a: torch.Tensor, b: torch.Tensor, num_envs: int) -> torch.Tensor:
    """Per world: whether ``a`` and ``b`` (``[num_envs, ...]``) are equal throughout."""
    return (a == b).reshape(num_envs, -1).all(dim=1)


def _first_worlds(flags: torch.Tensor) -> list[int]:
    """The first (at most 8) worlds where ``flags`` is set, for error messages."""
    return torch.nonzero(flags).flatten().tolist()[:8]


def sample_actions(envs: Any, gen: torch.Generator) -> Any:
    """Random actions from a CPU generator: a tensor for a Discrete or bounded Box single action
    space; for any other space (e.g. text), a list of ``single_action_space.sample()`` draws
    seeded from ``gen``."""
    space = envs.single_action_space
    if isinstance(space, spaces.Box):
        low = torch.as_tensor(space.low, dtype=torch.float32)
        high = torch.as_tensor(space.high, dtype=torch.float32)
        u = torch.rand((envs.num_envs, *space.shape), generator=gen)
        return low + u * (high - low)
    if not isinstance(space, spaces.Discrete):
        draw = copy.deepcopy(space)
        draw.seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        return [draw.sample() for _ in range(envs.num_envs)]
    return torch.randint(0, int(space.n), (envs.num_envs,), generator=gen) + int(space.start)


def _mix(act: Any, rnd: Any, mask: torch.Tensor) -> Any:
    """``rnd`` where ``mask`` (one flag per world), else ``act`` (tensors or per-world lists)."""
    if torch.is_tensor(act):
        mask = mask.reshape(-1, *([1] * (act.dim() - 1)))
        return torch.where(mask.to(act.device), rnd.to(act.device), act)
    return [r if bool(m) else a for a, r, m in zip(act, rnd, mask, strict=True)]


def _single_action(space: gym.Space, action: Any) -> Any:
    """One world's action as a single env takes it."""
    if isinstance(space, spaces.Discrete):
        return int(action)
    if isinstance(space, spaces.Box):
        return np.asarray(action, dtype=space.dtype)
    return action.item() if isinstance(action, np.generic) else action


def _expect_value_error(envs: Any, action: Any, what: str, mentions: str | None = None) -> None:
    """``envs.step(action)`` must raise ``ValueError`` (whose message names ``mentions``)."""
    try:
        envs.step(action)
    except ValueError as e:
        if mentions is not None:
            assert mentions in str(e).lower(), f"the error for {what} should say so: {e}"
    else:
        raise AssertionError(f"{what} must raise ValueError")


def _rollout(
    envs: Any, seed: int, steps: int, action_seed: int, policy: str = "random"
) -> list[tuple[Any, ...]]:
    """Reset with ``seed`` and step; return (obs, reward, term, trunc, target, actions, mask)
    rows (mask: the info's action mask, or None); the first row is (obs, mask)."""
    gen = torch.Generator().manual_seed(action_seed)
    obs, info = envs.reset(seed=seed)
    rows: list[tuple[Any, ...]] = [(_np(obs), _mask(info))]
    for _ in range(steps):
        if policy == "oracle" and hasattr(envs, "oracle_action"):
            act = envs.oracle_action()
            rnd = sample_actions(envs, gen)
            # Mix in random actions so off-plan states are covered too.
            mask = torch.rand(envs.num_envs, generator=gen) < 0.25
            act = _mix(act, rnd, mask)
        else:
            act = sample_actions(envs, gen)
        obs, rew, term, trunc, info = envs.step(act)
        rows.append(
            (
                _np(obs),
                _np(rew),
                _np(term),
                _np(trunc),
                _np(info[keys.NEXT_OBS_TARGET]),
                _np(act),
                _mask(info),
            )
        )
    return rows


def check_vector_env(
    envs: Any,
    *,
    single_env_fn: Callable[[], gym.Env] | None = None,
    steps: int = 60,
    seed: int = 123,
    worlds_vs_single: int = 3,
) -> None:
    """Assert the envgym vector-env contract.

    Args:
        envs: the vector env (a :class:`envgym.core.TorchVectorEnv` or compatible).
        single_env_fn: makes the matching single env (tokens face, same scenarios); when
            given, world ``i`` of ``envs`` seeded ``s`` must equal a single env seeded ``s+i``.
        steps: steps per rollout.
        seed: base seed.
        worlds_vs_single: how many worlds to compare with single envs.
    """
    B = envs.num_envs
    dev = torch.device(envs.device)
    _check_spaces(envs)
    _check_reset(envs, seed, dev)
    _check_random_steps(envs, steps, seed, dev)
    _check_bad_actions(envs)
    _check_determinism(envs, steps, seed)
    # An env whose worlds cannot be copied (e.g. live browser pages) declares
    # supports_state_snapshots = False.
    if hasattr(envs, "get_state") and getattr(envs, "supports_state_snapshots", True):
        _check_snapshots(envs, seed)
    check_action_mask(envs, steps=steps, seed=seed)
    if single_env_fn is not None:
        check_batch_vs_single(
            envs, single_env_fn, steps=steps, seed=seed, worlds=min(worlds_vs_single, B)
        )


def _check_spaces(envs: Any) -> None:
    """The SAME_STEP auto-reset declaration and the single and batched spaces."""
    assert envs.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP, (
        "vector envs must declare metadata['autoreset_mode'] = AutoresetMode.SAME_STEP"
    )
    for name in (
        "single_observation_space",
        "single_action_space",
        "observation_space",
        "action_space",
        "single_target_space",
    ):
        assert getattr(envs, name, None) is not None, f"vector env lacks {name}"


def _check_reset(envs: Any, seed: int, dev: torch.device) -> None:
    """``reset`` returns an info dict and observations on ``dev``, in the observation space."""
    obs, info = envs.reset(seed=seed)
    assert isinstance(info, dict), "reset() must return an info dict"
    devs = _devices(obs)
    assert devs and all(_same_device(d, dev) for d in devs), (
        f"reset observations live on {devs}, expected {dev}"
    )
    assert envs.observation_space.contains(_np(obs)), (
        "reset observation is not in observation_space"
    )


def _check_random_steps(envs: Any, steps: int, seed: int, dev: torch.device) -> None:
    """One pass of random steps (NumPy and torch actions in turn) checking every step's
    outputs and targets; warns when no episode ended, so auto-reset went unchecked."""
    gen = torch.Generator().manual_seed(seed)
    ended_seen = 0
    for t in range(steps):
        act = sample_actions(envs, gen)
        if torch.is_tensor(act):
            act = act.numpy() if t % 2 else act.to(dev)  # NumPy and torch actions both work
        obs, rew, term, trunc, info = envs.step(act)
        where = f"step {t}"
        _check_step_outputs(envs, dev, where, obs, rew, term, trunc, info)
        ended_seen += _check_targets(envs, where, obs, term | trunc, info)
    if ended_seen == 0:
        warnings.warn(  # stacklevel 3: the caller of check_vector_env
            f"no episode ended in {steps} random steps; auto-reset was not exercised", stacklevel=3
        )


def _check_step_outputs(
    envs: Any,
    dev: torch.device,
    where: str,
    obs: Obs,
    rew: Any,
    term: Any,
    trunc: Any,
    info: dict[str, Any],
) -> None:
    """Types, shapes and devices (``dev``) of one step's outputs, the required info keys, the
    spaces of observation and target, reward = sum of its terms."""
    B = envs.num_envs
    for name, x in (("reward", rew), ("terminated", term), ("truncated", trunc)):
        assert torch.is_tensor(x) and _same_device(x.device, dev), (
            f"{where}: {name} must be a tensor on {dev}"
        )
        assert tuple(x.shape) == (B,), f"{where}: {name} has shape {tuple(x.shape)}"
    assert rew.dtype == torch.float32, f"{where}: reward dtype {rew.dtype}"
    assert term.dtype == torch.bool and trunc.dtype == torch.bool, f"{where}: flags not bool"
    for k in keys.REQUIRED_INFO_KEYS:
        assert k in info, f"{where}: info lacks {k!r}"
    tgt = info[keys.NEXT_OBS_TARGET]
    assert _same_device(tgt.device, dev), f"{where}: target on {tgt.device}"
    assert envs.target_space.contains(_np(tgt)), f"{where}: next_obs_target not in target_space"
    assert envs.observation_space.contains(_np(obs)), f"{where}: obs not in observation_space"
    total = sum(info[keys.REWARD_TERMS].values())
    assert torch.allclose(total, rew, atol=1e-5), (
        f"{where}: reward != sum of reward_terms (max diff {float((total - rew).abs().max())})"
    )
    succ = info[keys.SUCCESS]
    assert succ.dtype == torch.bool and tuple(succ.shape) == (B,), f"{where}: success shape"


def _check_targets(
    envs: Any, where: str, obs: Obs, done: torch.Tensor, info: dict[str, Any]
) -> int:
    """``next_obs_target`` is the target of the true next observation (``final_obs``), not of
    the auto-reset one; returns how many episodes ended (0 when targets cannot be checked)."""
    final = info.get(keys.FINAL_OBS)
    assert final is not None, f"{where}: info lacks final_obs"
    try:
        expected = envs.target_from_obs(final)
    except NotImplementedError:
        # stacklevel 4 here and below: the caller of check_vector_env
        warnings.warn("env has no target_from_obs(); target checks skipped", stacklevel=4)
        expected = None
    if expected is None:
        return 0
    tgt = info[keys.NEXT_OBS_TARGET]
    same = _same_rows(expected, tgt, envs.num_envs)
    assert bool(same.all()), (
        f"{where}: next_obs_target differs from the target of the true next observation "
        f"in worlds {_first_worlds(~same)}"
    )
    if not bool(done.any()):
        return 0
    differs = ~_same_rows(envs.target_from_obs(obs), tgt, envs.num_envs)
    if not bool(differs[done].any()):
        warnings.warn(
            f"{where}: targets of ended worlds equal their reset observation; "
            "is the target computed after the auto-reset?",
            stacklevel=4,
        )
    return int(done.sum())


def _check_bad_actions(envs: Any) -> None:
    """Out-of-space actions give a clear error; so does a wrong number of actions."""
    B, space = envs.num_envs, envs.single_action_space
    if isinstance(space, spaces.Discrete):
        bad = torch.full((B,), int(space.start + space.n), dtype=torch.int64)
        _expect_value_error(envs, bad, "an out-of-space action", mentions="action")
        too_many: Any = torch.zeros(B + 1, dtype=torch.int64)
    elif isinstance(space, spaces.Box):
        bad = torch.full((B, *space.shape), float("nan"))
        _expect_value_error(envs, bad, "a non-finite Box action", mentions="action")
        too_many = torch.zeros((B + 1, *space.shape))
    else:
        too_many = [*sample_actions(envs, torch.Generator().manual_seed(0)), None]
    _expect_value_error(envs, too_many, "a wrong number of actions")


def _check_determinism(envs: Any, steps: int, seed: int) -> None:
    """The same seed and actions give the same trajectory."""
    a = _rollout(envs, seed, steps, action_seed=7, policy="oracle")
    b = _rollout(envs, seed, steps, action_seed=7, policy="oracle")
    for t, (ra, rb) in enumerate(zip(a, b, strict=True)):
        for j, name in enumerate(("obs", "reward", "terminated", "truncated", "target", "action")):
            if j < len(ra):
                assert _equal(ra[j], rb[j]), (
                    f"same seed, different trajectory at step {t} in {name}: {_diff(ra[j], rb[j])}"
                )


def _check_snapshots(envs: Any, seed: int) -> None:
    """Restoring a state reproduces the same future, and a state can be branched."""
    envs.reset(seed=seed + 1)
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        envs.step(sample_actions(envs, gen))
    snap = envs.get_state()
    acts = [sample_actions(envs, gen) for _ in range(10)]
    first = _future(envs, acts)
    envs.set_state(snap)
    second = _future(envs, acts)
    for t, (x, y) in enumerate(zip(first, second, strict=True)):
        assert all(_equal(p, q) for p, q in zip(x, y, strict=True)), (
            f"set_state(get_state()) did not reproduce step {t} of the future"
        )
    _check_branching(envs, snap, acts[0])


def _future(envs: Any, acts: list[Any]) -> list[tuple[Any, ...]]:
    """(obs, reward, terminated, truncated, target) of each step taking ``acts`` in turn."""
    out = []
    for act in acts:
        o, r, te, tr, inf = envs.step(act)
        out.append((_np(o), _np(r), _np(te), _np(tr), _np(inf[keys.NEXT_OBS_TARGET])))
    return out


def _check_branching(envs: Any, snap: Any, act: Any) -> None:
    """World 0's state of ``snap`` copied into every world evolves identically under world 0's
    action of ``act``."""
    B = envs.num_envs
    envs.set_state(snap)
    envs.set_state(envs.get_state(worlds=[0] * B))
    if torch.is_tensor(act):
        first = act[:1]
        same_act = first.repeat(B, *([1] * (first.dim() - 1)))
    else:
        same_act = [act[0]] * B
    o, *_ = envs.step(same_act)
    o = _np(o)
    for i in range(1, B):
        assert _equal(_row(o, i), _row(o, 0)), f"branched world {i} differs from world 0"


def check_action_mask(envs: Any, *, steps: int = 60, seed: int = 123) -> None:
    """The mask contract, for envs whose reset info carries ``keys.ACTION_MASK``: a bool
    ``[B, A]`` mask at reset and on every step; the oracle's action (if the env has one) is
    always admissible; an admissible action never yields an ``action_error``."""
    _, info = envs.reset(seed=seed)
    if keys.ACTION_MASK not in info:
        return
    B, n = envs.num_envs, int(envs.single_action_space.n)
    gen = torch.Generator().manual_seed(seed + 17)
    rows = torch.arange(B)
    mask = info[keys.ACTION_MASK]
    for t in range(steps):
        where = f"step {t}"
        assert mask.dtype == torch.bool and tuple(mask.shape) == (B, n), (
            f"{where}: action_mask must be bool [{B}, {n}], got {mask.dtype} {tuple(mask.shape)}"
        )
        m = mask.cpu()
        assert bool(m.any(dim=1).all()), f"{where}: a world has no admissible action"
        rand = torch.multinomial(m.float(), 1, generator=gen).squeeze(1)
        act = rand
        if hasattr(envs, "oracle_action"):
            oracle = envs.oracle_action().cpu()
            bad = ~m[rows, oracle]
            assert not bool(bad.any()), (
                f"{where}: the oracle's action is not admissible in worlds {_first_worlds(bad)}"
            )
            act = torch.where(torch.rand(B, generator=gen) < 0.5, oracle, rand)
        _, _, _, _, info = envs.step(act)
        err = info[keys.ACTION_ERROR].cpu()
        bad = err != 0
        assert not bool(bad.any()), (
            f"{where}: admissible actions gave action_error in worlds {_first_worlds(bad)}"
        )
        assert keys.ACTION_MASK in info, f"{where}: info lacks {keys.ACTION_MASK!r}"
        mask = info[keys.ACTION_MASK]


def check_batch_vs_single(
    envs: Any,
    single_env_fn: Callable[[], gym.Env],
    *,
    steps: int = 60,
    seed: int = 123,
    worlds: int = 3,
) -> None:
    """World ``i`` of ``envs`` seeded ``seed`` equals a single env seeded ``seed + i``, step
    for step (obs, reward, flags, target), across auto-resets."""
    rows = _rollout(envs, seed, steps, action_seed=11, policy="oracle")
    for i in range(worlds):
        env = single_env_fn()
        try:
            obs, sinfo = env.reset(seed=seed + i)
            assert _equal(_row(rows[0][0], i), obs), (
                f"world {i}: reset obs differs from single env seeded {seed + i}: "
                f"{_diff(_row(rows[0][0], i), obs)}"
            )
            if rows[0][1] is not None:
                assert _equal(sinfo.get(keys.ACTION_MASK), rows[0][1][i]), (
                    f"world {i}: reset action_mask differs from the single env's"
                )
            for t in range(1, len(rows)):
                vobs, vrew, vterm, vtrunc, vtgt, vact, vmask = rows[t]
                obs, rew, term, trunc, info = env.step(_single_action(env.action_space, vact[i]))
                where = f"world {i}, step {t - 1}"
                assert np.isclose(rew, vrew[i]), f"{where}: reward {rew} != {vrew[i]}"
                assert term == bool(vterm[i]) and trunc == bool(vtrunc[i]), f"{where}: flags differ"
                assert _equal(info[keys.NEXT_OBS_TARGET], vtgt[i]), f"{where}: target differs"
                if vmask is not None:
                    assert _equal(info.get(keys.ACTION_MASK), vmask[i]), (
                        f"{where}: action_mask differs from the single env's"
                    )
                if term or trunc:
                    obs, _ = env.reset()
                assert _equal(obs, _row(vobs, i)), (
                    f"{where}: obs differs: {_diff(obs, _row(vobs, i))}"
                )
        finally:
            env.close()


def check_single_env(env: gym.Env, *, steps: int = 40, seed: int = 5) -> None:
    """envgym's own contract on a single env, on top of Gymnasium's ``check_env``: info keys
    (the reset info has the step info's keys and reward terms, :mod:`envgym.core.info`),
    reward = sum of terms, targets in ``target_space``, seed determinism."""
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)

    def run() -> list[Any]:
        env.action_space.seed(seed)
        obs, reset_info = env.reset(seed=seed)
        out = [obs]
        for t in range(steps):
            act = env.action_space.sample()
            obs, rew, term, trunc, info = env.step(act)
            for k in keys.REQUIRED_INFO_KEYS:
                assert k in info, f"step {t}: info lacks {k!r}"
            # One info structure from reset on, so consumers can stack infos over an episode
            # (Minari's DataCollector with record_infos=True).
            assert set(info) == set(reset_info), (
                f"step {t}: info keys {sorted(info)} differ from the reset info's "
                f"{sorted(reset_info)}"
            )
            assert set(info[keys.REWARD_TERMS]) == set(reset_info[keys.REWARD_TERMS]), (
                f"step {t}: reward terms differ from the reset info's"
            )
            total = sum(info[keys.REWARD_TERMS].values())
            assert abs(total - rew) < 1e-5, f"step {t}: reward {rew} != sum of terms {total}"
            tgt = info[keys.NEXT_OBS_TARGET]
            space = env.unwrapped.target_space
            assert space.contains(np.asarray(tgt)), f"step {t}: target not in target_space"
            out.append((obs, rew, term, trunc, np.asarray(tgt)))
            if term or trunc:
                obs, reset_info = env.reset()
                out.append(obs)
        return out

    a, b = run(), run()
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        assert _equal(x, y) if isinstance(x, dict) else repr(x) == repr(y), (
            f"same seed, different trajectory at record {t}"
        )
