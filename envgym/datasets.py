"""Record Minari datasets from the batched engine (``envgym record``), resumably.

A dataset holds whole episodes rebuilt per world from a native vector env (SAME_STEP
auto-reset): episode ``k`` of world ``w`` is the steps between two of that world's episode
ends, and its last observation is ``info["final_obs"]`` of the step that ended it, never the
reset observation the env returned there. Each step keeps the observation the action was taken
in, the action, reward, terminated, truncated and, in ``infos``, every per-world info the env
gives: ``next_obs_target``, ``reward_terms`` (a group per term), ``success``,
``action_error``, ``action_mask`` where the env has one, and family extras such as the robot's
``unstable``. Bookkeeping keys (``final_obs``, the episode statistics, ``_``-prefixed masks)
are left out: they are rebuilt by the episode structure itself.

Storage is Minari's own HDF5 layout under ``$MINARI_DATASETS_PATH/NAME/data`` (default
``~/.minari/datasets``), so ``minari.load_dataset(NAME)`` reads it back. Episodes are written
in a fixed order (by the step that ended them, then by world index), which makes a recording a
deterministic function of ``(id, env kwargs, policy, num_envs, seed)``; resuming replays the
simulation up to the episodes already stored without writing them, so an interrupted and
resumed recording equals an uninterrupted one, episode for episode. See ``docs/datasets.md``.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envgym.core import keys
from envgym.core.machine import timestamp

_INSTALL_HINT = "install the datasets extra: pip install -e '.[datasets]'"

# Info keys the episode structure already encodes: the true last observation (it becomes the
# episode's final observation), the episode statistics (sums of the stored rewards) and
# Gymnasium's per-key "_name" masks.
_BOOKKEEPING_KEYS = frozenset({keys.FINAL_OBS, keys.EPISODE})

# Families whose single env needs a keyword to show the batched engine's spaces, so that
# `MinariDataset.recover_environment()` gives an env whose spaces match the dataset.
_SINGLE_ENV_KWARGS: dict[str, dict[str, Any]] = {"phone": {"obs_mode": "tokens"}}

BatchPolicy = Callable[[Any, gym.vector.VectorEnv], Any]
"""A batched policy: ``policy(obs, envs) -> actions`` (one action per world)."""


def _minari() -> Any:
    try:
        import minari
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise RuntimeError(f"recording datasets needs Minari ({e}); {_INSTALL_HINT}") from e
    return minari


# --------------------------------------------------------------------------- policies


def _oracle(obs: Any, envs: Any) -> Any:
    return envs.unwrapped.oracle_action()


def _random(obs: Any, envs: Any) -> Any:
    # Seeded with the recording's seed by `rollout_episodes` (envs.action_space.seed).
    return envs.action_space.sample()


def _mixed(p_random: float, seed: int) -> BatchPolicy:
    rng = np.random.default_rng(seed)

    def policy(obs: Any, envs: Any) -> Any:
        oracle = envs.unwrapped.oracle_action()
        rand = envs.action_space.sample()
        pick = rng.random(envs.num_envs) < p_random
        oracle_np = oracle.cpu().numpy() if torch.is_tensor(oracle) else np.asarray(oracle)
        rand_np = np.asarray(rand, dtype=oracle_np.dtype)
        shape = (envs.num_envs,) + (1,) * (oracle_np.ndim - 1)
        return np.where(pick.reshape(shape), rand_np, oracle_np)

    return policy


def load_policy(spec: str, seed: int = 0) -> BatchPolicy:
    """Resolve ``envgym record``'s ``--policy`` argument into a batched policy.

    Args:
        spec: ``oracle`` (the env's scripted solver), ``random`` (uniform over the batched
            action space, seeded), ``mixed`` or ``mixed:P`` (each world, each step: a random
            action with probability ``P``, default 0.5, else the oracle's), or a path to a
            callable: ``package.module:name`` or ``path/to/file.py:name``. The callable is
            ``name(obs, envs) -> actions``: it gets the batched observation as the vector env
            returns it (torch tensors on the env's device) and the vector env, and returns
            ``num_envs`` actions (a tensor or an array). To record a trained Stable-Baselines3
            model, wrap ``model.predict`` in such a function (``docs/datasets.md``).
        seed: seeds the random parts of ``random`` and ``mixed``.

    Returns:
        The policy.
    """
    if spec == "oracle":
        return _oracle
    if spec == "random":
        return _random
    if spec == "mixed" or spec.startswith("mixed:"):
        _, _, p = spec.partition(":")
        try:
            prob = float(p) if p else 0.5
        except ValueError:
            raise ValueError(f"mixed:P needs a probability, got {spec!r}") from None
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"mixed:P needs 0 <= P <= 1, got {prob}")
        return _mixed(prob, seed)
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ValueError(
            f"--policy must be oracle, random, mixed[:P] or module:callable / file.py:callable, "
            f"got {spec!r}"
        )
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"policy file {target!r} does not exist")
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert mod_spec is not None and mod_spec.loader is not None
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ValueError(f"cannot import policy module {target!r}: {e}") from e
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"{target!r} has no callable {name!r}")
    return fn


# --------------------------------------------------------------------------- DataCollector


class StepDataCallback:
    """A Minari ``step_data_callback`` for envgym single envs whose infos hold lists.

    ``minari.DataCollector(env, record_infos=True)`` works on every envgym single env as it is
    (reset and step infos have the same keys and structure, see :mod:`envgym.core.info`), with
    one exception: the phone text face's ``info["messages"]`` is a list of chat messages whose
    length changes from step to step, and Minari can only stack infos of one fixed structure.
    This callback stores every list- or tuple-valued info entry as its JSON text (a string per
    step; ``json.loads`` gives the list back) and passes everything else through::

        env = minari.DataCollector(gym.make("envgym/Phone-v0"), record_infos=True,
                                   step_data_callback=envgym.datasets.StepDataCallback)

    It has the call signature of ``minari.StepDataCallback`` (Minari instantiates the class
    and calls it on every reset and step).
    """

    def __call__(
        self,
        env: gym.Env,
        obs: Any,
        info: dict[str, Any],
        action: Any = None,
        rew: Any = None,
        terminated: Any = None,
        truncated: Any = None,
    ) -> dict[str, Any]:
        return {
            "action": action,
            "observation": obs,
            "reward": rew,
            "terminated": terminated,
            "truncated": truncated,
            "info": _json_lists(info),
        }


def _json_lists(info: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, Mapping):
            out[k] = _json_lists(v)
        elif isinstance(v, list | tuple):
            out[k] = json.dumps(list(v))
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------- per-step rows


def _to_numpy(x: Any) -> Any:
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    if isinstance(x, Mapping):
        return {k: _to_numpy(v) for k, v in x.items()}
    return np.asarray(x)


def _batched_infos(info: Mapping[str, Any], num_envs: int) -> dict[str, Any]:
    """Every per-world entry of a vector info dict as NumPy ``[B, ...]`` (nested dicts kept).

    Forwarded generically: any tensor, array or length-B sequence of strings whose leading
    dimension is the number of worlds, so keys an env adds (``action_mask``, ``unstable``,
    ``truncation_reason``) land in the dataset without this module knowing them.
    """
    out: dict[str, Any] = {}
    for k, v in info.items():
        if k.startswith("_") or k in _BOOKKEEPING_KEYS:
            continue
        if isinstance(v, Mapping):
            sub = _batched_infos(v, num_envs)
            if sub:
                out[k] = sub
        elif torch.is_tensor(v) or isinstance(v, np.ndarray):
            if v.ndim >= 1 and v.shape[0] == num_envs:
                out[k] = _to_numpy(v)
        elif (
            isinstance(v, list | tuple)
            and len(v) == num_envs
            and all(isinstance(s, str) for s in v)
        ):
            out[k] = np.asarray(v, dtype=object)
    return out


def _row(tree: Any, w: int) -> Any:
    if isinstance(tree, dict):
        return {k: _row(v, w) for k, v in tree.items()}
    return tree[w]


def _stack(rows: list[Any]) -> Any:
    """Stack per-step rows of one world into ``[T, ...]`` arrays (lists of str for text)."""
    first = rows[0]
    if isinstance(first, dict):
        return {k: _stack([r[k] for r in rows]) for k in first}
    if isinstance(first, str):
        return [str(r) for r in rows]
    arr = np.stack([np.asarray(r) for r in rows])
    if arr.dtype == object:
        return [str(r) for r in rows]
    return arr


def _space_rows(space: gym.Space, rows: list[Any]) -> Any:
    """Stack observations (or actions) so Minari's storage reads them back as the space."""
    if isinstance(space, gym.spaces.Dict):
        return {k: _space_rows(sub, [r[k] for r in rows]) for k, sub in space.spaces.items()}
    if isinstance(space, gym.spaces.Text):
        return [str(r) for r in rows]
    return np.stack([np.asarray(r, dtype=space.dtype) for r in rows])


# --------------------------------------------------------------------------- episodes


@dataclass
class Episode:
    """One finished episode of one world, as NumPy.

    Attributes:
        world: the world index in the vector env.
        observations: ``T + 1`` observations (the last one is the true final observation).
        actions: ``T`` actions.
        rewards: float ``[T]``.
        terminations: bool ``[T]``.
        truncations: bool ``[T]``.
        infos: per-step infos, each ``[T, ...]`` (nested dicts kept).
    """

    world: int
    observations: Any
    actions: Any
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rewards)


def rollout_episodes(
    envs: gym.vector.VectorEnv, policy: BatchPolicy, seed: int
) -> Iterator[list[Episode]]:
    """Step a native (SAME_STEP) vector env forever, yielding the episodes each step ended.

    World ``w``'s episode runs from the step after its previous end to the step that ended
    it; its observations are the ones each action was taken in plus ``final_obs`` of the
    ending step. Episodes of one step come in world order.

    Args:
        envs: a native envgym vector env (``vectorization_mode="vector_entry_point"``).
        policy: ``policy(obs, envs) -> actions``.
        seed: reset seed (world ``i`` gets ``seed + i``); also seeds the action space.

    Yields:
        After every step, the list (possibly empty) of episodes it ended.
    """
    from gymnasium.vector import AutoresetMode

    mode = envs.metadata.get("autoreset_mode")
    if mode != AutoresetMode.SAME_STEP:
        raise ValueError(
            f"recording needs a SAME_STEP vector env (envgym's native one), got {mode!r}"
        )
    B = envs.num_envs
    obs_space = envs.single_observation_space
    act_space = envs.single_action_space
    envs.action_space.seed(seed)
    obs, _ = envs.reset(seed=seed)
    obs_np = _to_numpy(obs)
    # One entry per step: (obs before the step, actions, rewards, term, trunc, infos), all
    # batched; world w's open episode starts at step `start[w]`.
    history: deque[tuple[Any, ...]] = deque()
    first_step = 0  # the global step index of history[0]
    start = np.zeros(B, dtype=np.int64)
    t = 0
    while True:
        actions = policy(obs, envs)
        next_obs, rew, term, trunc, info = envs.step(actions)
        act_np = _to_numpy(actions)
        term_np, trunc_np = _to_numpy(term).astype(bool), _to_numpy(trunc).astype(bool)
        history.append(
            (
                obs_np,
                act_np.reshape(B, *act_space.shape) if act_space.shape else act_np.reshape(B),
                _to_numpy(rew),
                term_np,
                trunc_np,
                _batched_infos(info, B),
            )
        )
        done = np.flatnonzero(term_np | trunc_np)
        finished: list[Episode] = []
        if done.size:
            final = _to_numpy(info[keys.FINAL_OBS])
            for w in done.tolist():
                steps = [history[i - first_step] for i in range(int(start[w]), t + 1)]
                obs_rows = [_row(s[0], w) for s in steps] + [_row(final, w)]
                finished.append(
                    Episode(
                        world=w,
                        observations=_space_rows(obs_space, obs_rows),
                        actions=_space_rows(act_space, [s[1][w] for s in steps]),
                        rewards=np.asarray([s[2][w] for s in steps]),
                        terminations=np.asarray([s[3][w] for s in steps]),
                        truncations=np.asarray([s[4][w] for s in steps]),
                        infos=_stack([_row(s[5], w) for s in steps]) if steps[0][5] else {},
                    )
                )
                start[w] = t + 1
        t += 1
        while history and first_step < int(start.min()):
            history.popleft()
            first_step += 1
        obs, obs_np = next_obs, _to_numpy(next_obs)
        yield finished


# --------------------------------------------------------------------------- writing


@dataclass
class RecordReport:
    """What one ``record`` call did.

    Attributes:
        path: the dataset's ``data`` directory.
        episodes: episodes in the dataset now.
        written: episodes this call wrote.
        steps_written: env-steps (transitions) this call wrote.
        env_steps: batched steps this call took, times ``num_envs`` (including replay).
        seconds: wall time of the recording loop.
        cpu_seconds: CPU time of this process in that loop (robust to a shared machine).
        interrupted: whether SIGINT stopped it before ``episodes`` were reached.
        resumed_from: episodes already in the dataset when this call started.
    """

    path: Path
    episodes: int
    written: int
    steps_written: int
    env_steps: int
    seconds: float
    cpu_seconds: float
    interrupted: bool
    resumed_from: int


def dataset_path(name: str) -> Path:
    """Where Minari keeps the dataset ``name``: ``$MINARI_DATASETS_PATH/name`` (default
    ``~/.minari/datasets/name``), the directory ``minari.load_dataset(name)`` reads."""
    from minari.storage.datasets_root_dir import get_dataset_path

    _minari()
    return Path(get_dataset_path(name))


def _single_env_spec(env_id: str, env_kwargs: Mapping[str, Any]) -> gym.envs.registration.EnvSpec:
    from envgym.registration import entries

    spec = copy.deepcopy(gym.spec(env_id))
    family = next((e.family for e in entries() if e.id == env_id), None)
    kwargs = {**spec.kwargs, **_SINGLE_ENV_KWARGS.get(family or "", {}), **env_kwargs}
    kwargs.pop("num_threads", None)  # a vector-engine option the single env doesn't take
    spec.kwargs = kwargs
    return spec


def _episode_buffer(ep: Episode, episode_id: int) -> Any:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    return EpisodeBuffer(
        id=episode_id,
        observations=ep.observations,
        actions=ep.actions,
        rewards=list(ep.rewards),
        terminations=list(ep.terminations),
        truncations=list(ep.truncations),
        infos=ep.infos or None,
    )


@contextmanager
def _sigint_flag() -> Iterator[dict[str, bool]]:
    """Turn SIGINT into a flag checked between steps, so no write is ever cut in half."""
    flag = {"stop": False}
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread: no handler to install
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        flag["stop"] = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class _Recording:
    """The arguments of one :func:`record` call that its steps share."""

    env_id: str
    name: str
    policy: str
    episodes: int
    num_envs: int
    seed: int
    device: str
    env_kwargs: dict[str, Any]

    def settings(self) -> dict[str, Any]:
        """What makes the recording deterministic; stored in the metadata, and a resumed
        recording must match it."""
        return {
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "policy": self.policy,
            "num_envs": int(self.num_envs),
            "seed": int(self.seed),
        }


@dataclass
class _Tally:
    """What a recording has done so far (see :class:`RecordReport`)."""

    done: int
    written: int = 0
    steps_written: int = 0
    env_steps: int = 0
    interrupted: bool = False


def _native_vec(
    env_id: str, num_envs: int, env_kwargs: Mapping[str, Any], **options: Any
) -> gym.vector.VectorEnv:
    """The id's native batched (SAME_STEP) env, the one recordings step."""
    return gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **options, **env_kwargs
    )


def _resume_storage(rec: _Recording, data_path: Path) -> tuple[Any, int]:
    """The stored dataset and how many episodes it holds; its settings must be ``rec``'s."""
    from minari.dataset.minari_storage import MinariStorage

    storage = MinariStorage.read(data_path)
    stored = storage.metadata.get("envgym_recording")
    settings = rec.settings()
    if stored != json.loads(json.dumps(settings)):
        raise ValueError(
            f"dataset {rec.name!r} at {data_path} was recorded with {stored}, not {settings}; "
            "resume with the same settings or choose another --out"
        )
    return storage, int(storage.total_episodes)


def _new_storage(rec: _Recording, data_path: Path) -> Any:
    """A new, empty dataset at ``data_path`` with the spaces of ``rec``'s env (probed with one
    world), the single env's spec and the recording's metadata."""
    from minari.dataset.minari_storage import MinariStorage

    spec = _single_env_spec(rec.env_id, rec.env_kwargs)
    data_path.mkdir(parents=True, exist_ok=True)
    envs_probe = _native_vec(rec.env_id, 1, rec.env_kwargs)
    try:
        storage = MinariStorage.new(
            data_path,
            observation_space=envs_probe.single_observation_space,
            action_space=envs_probe.single_action_space,
            env_spec=spec,
            data_format="hdf5",
        )
        target_space = repr(envs_probe.unwrapped.single_target_space)
    finally:
        envs_probe.close()
    storage.update_metadata(_recording_metadata(rec, target_space))
    return storage


def _recording_metadata(rec: _Recording, target_space: str) -> dict[str, Any]:
    """The dataset metadata a new recording writes: Minari's fields and envgym's own."""
    return {
        "dataset_id": rec.name,
        "minari_version": str(_minari().__version__),
        "algorithm_name": f"envgym record --policy {rec.policy}",
        "author": {"envgym"},
        "description": (
            f"{rec.env_id} with policy {rec.policy!r}, recorded by `envgym record` from the "
            f"batched engine ({rec.num_envs} worlds, seed {rec.seed}); infos hold "
            "next_obs_target, reward_terms, success, action_error and the env's other "
            "per-world infos (docs/datasets.md)."
        ),
        "envgym_recording": rec.settings(),
        "envgym_target_space": target_space,
        "envgym_created": timestamp(),
    }


@dataclass
class _EpisodeOrder:
    """Where a rollout is in the dataset's fixed episode order: episodes produced so far
    (``seen``) and episodes each world finished (``per_world``)."""

    seen: int
    per_world: np.ndarray

    def fresh(self, finished: list[Episode], done: int, episodes: int) -> list[tuple[Episode, int]]:
        """The episodes of one step that a dataset holding ``done`` of ``episodes`` still
        lacks (those before ``done`` are replayed, not rewritten), each with its index among
        its world's episodes."""
        out: list[tuple[Episode, int]] = []
        for ep in finished:
            if self.seen >= done and done + len(out) < episodes:
                out.append((ep, int(self.per_world[ep.world])))
            self.per_world[ep.world] += 1
            self.seen += 1
        return out


def _write_episodes(storage: Any, fresh: list[tuple[Episode, int]], tally: _Tally) -> None:
    """Append ``fresh`` episodes after the ``tally.done`` stored ones, and count them."""
    ids = [tally.done + i for i in range(len(fresh))]
    storage.update_episodes([_episode_buffer(ep, i) for (ep, _), i in zip(fresh, ids, strict=True)])
    # Which world, and which of its episodes: the key to a direct rollout.
    storage.update_episode_metadata(
        [{"envgym_world": ep.world, "envgym_world_episode": k} for ep, k in fresh], ids
    )
    tally.done += len(fresh)
    tally.written += len(fresh)
    tally.steps_written += sum(len(ep) for ep, _ in fresh)


def _record_episodes(
    rec: _Recording, storage: Any, tally: _Tally, progress: Callable[[int, int], None] | None
) -> None:
    """Roll ``rec``'s env out from its seed until the dataset holds ``rec.episodes`` episodes
    or SIGINT comes, writing each step's episodes the dataset lacks."""
    envs = _native_vec(rec.env_id, rec.num_envs, rec.env_kwargs, device=rec.device)
    try:
        order = _EpisodeOrder(seen=0, per_world=np.zeros(rec.num_envs, dtype=np.int64))
        with _sigint_flag() as flag:
            for finished in rollout_episodes(envs, load_policy(rec.policy, rec.seed), rec.seed):
                tally.env_steps += envs.num_envs
                fresh = order.fresh(finished, tally.done, rec.episodes)
                if fresh:
                    _write_episodes(storage, fresh, tally)
                    if progress is not None:
                        progress(tally.done, rec.episodes)
                if tally.done >= rec.episodes:
                    break
                if flag["stop"]:
                    tally.interrupted = True
                    break
    finally:
        envs.close()


def record(
    env_id: str,
    name: str,
    *,
    policy: str = "oracle",
    episodes: int = 100,
    num_envs: int = 16,
    seed: int = 0,
    device: str = "cpu",
    env_kwargs: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RecordReport:
    """Record (or continue recording) ``episodes`` episodes of ``env_id`` into Minari dataset
    ``name``.

    The first call creates the dataset; a later call with the same ``name`` checks that the
    recording settings match and continues to ``episodes`` (replaying the simulation up to the
    episodes stored, which are not rewritten). SIGINT stops it after the current step, with
    every finished episode written.

    Args:
        env_id: a registered envgym id.
        name: Minari dataset id, e.g. ``envgym/phone-oracle-v0``.
        policy: see :func:`load_policy`.
        episodes: the total episodes the dataset should hold.
        num_envs: worlds stepped together.
        seed: reset seed (world ``i`` gets ``seed + i``) and seed of the random policies.
        device: torch device of the engine.
        env_kwargs: further ``gym.make_vec`` keyword arguments (scenario, backend, ...).
        progress: called as ``progress(episodes_in_dataset, episodes)`` after each write.

    Returns:
        A :class:`RecordReport`.
    """
    _minari()
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    rec = _Recording(env_id, name, policy, episodes, num_envs, seed, device, dict(env_kwargs or {}))
    data_path = dataset_path(name) / "data"
    if (data_path / "metadata.json").exists():
        storage, done = _resume_storage(rec, data_path)
    else:
        storage, done = _new_storage(rec, data_path), 0
    tally = _Tally(done=done)
    t0, c0 = time.perf_counter(), time.process_time()
    if done < episodes:
        _record_episodes(rec, storage, tally, progress)
    return RecordReport(
        path=data_path,
        episodes=tally.done,
        written=tally.written,
        steps_written=tally.steps_written,
        env_steps=tally.env_steps,
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
        interrupted=tally.interrupted,
        resumed_from=done,
    )


def time_rollout(
    env_id: str,
    *,
    policy: str,
    batched_steps: int,
    num_envs: int,
    seed: int = 0,
    device: str = "cpu",
    env_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Time the same policy's rollout without recording: ``batched_steps`` steps of the same
    vector env, policy and seed, nothing converted or written.

    Returns:
        ``{"env_steps", "seconds", "cpu_seconds", "env_steps_per_s", "env_steps_per_cpu_s"}``
        (CPU time of this process: robust to a shared machine).
    """
    envs = _native_vec(env_id, num_envs, dict(env_kwargs or {}), device=device)
    try:
        act = load_policy(policy, seed)
        envs.action_space.seed(seed)
        obs, _ = envs.reset(seed=seed)
        if envs.device.type == "cuda":
            torch.cuda.synchronize(envs.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(batched_steps):
            obs, *_ = envs.step(act(obs, envs))
        if envs.device.type == "cuda":
            torch.cuda.synchronize(envs.device)
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - c0
    finally:
        envs.close()
    n = batched_steps * num_envs
    return {
        "env_steps": float(n),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "env_steps_per_s": n / seconds,
        "env_steps_per_cpu_s": n / cpu_seconds,
    }
