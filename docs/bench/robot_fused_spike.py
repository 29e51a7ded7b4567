"""An experiment, not envgym code: the robot CPU step's bookkeeping as one compiled call.

Issue 16 asks for robot overhead ≤ 20% against raw MuJoCo at 16 worlds; the NumPy pass
(``RobotEngine._step_np``) leaves ~40%, and the benchmarks page names a compiled pass over
the rollout's output as the lever left. This script measures that lever before anyone builds
it: for ``envgym/Robot-PickPlace-v0`` it replaces ``_step_np`` by a variant whose work after
the rollout (forward kinematics, the pick-and-place rules, the weighted reward terms, the
episode flags and the observation) is one Numba kernel, and steps the real vector env with
each in turn (blocks of ``STEPS // 10`` steps, alternating), random actions, one torch
thread. Per step it records the whole ``envs.step`` and the engine's time after the rollout
returned (``after_rollout``), medians per variant, and over the first steps how far the two
variants' outputs lie apart (max absolute difference of reward and observation; the kernel's
matrix products run in another order than NumPy's, so bits may differ).

Needs Numba, which envgym does not depend on (``pip install numba``). Usage::

    python docs/bench/robot_fused_spike.py OUT.json [N] [STEPS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numba import njit

import envgym  # noqa: F401  (registers the ids)
from envgym.core.machine import provenance

TERMS = ("joint_velocity", "grip_to_object", "object_to_target", "success")


@njit(cache=True)
def _bookkeeping(
    S: np.ndarray,  # [B, nstate] float64: the state after the rollout
    q0: int,  # S's first qpos column
    link_q: np.ndarray,  # [L] int64: each link's qpos column
    coef: np.ndarray,  # [L, 3, 16] float64: each link's 4x4 from (sin, cos, 1)
    qvel_cols: np.ndarray,  # [n_arm] int64: the arm's joint velocity columns of S
    obj0: int,  # S's column of the object's x
    goal: np.ndarray,  # [B, 3] float64
    t: np.ndarray,  # [B] int64, advanced here
    tol: float,
    weights: np.ndarray,  # [T] float64, in the task's reward order
    term_of: np.ndarray,  # [T] int64: index into TERMS of each reward term
    episode_length: int,
    terminate_on_success: bool,
    obs_cols: np.ndarray,  # [n_obs] int64 into [state | grip | goal]
    nstate: int,
    returns: np.ndarray,  # out [1 + T, B] float32
    obs: np.ndarray,  # out [B, n_obs] float32
    success: np.ndarray,  # out [B] bool
    terminated: np.ndarray,  # out [B] bool
    truncated: np.ndarray,  # out [B] bool
) -> None:
    B, L = S.shape[0], link_q.shape[0]
    M = np.empty((4, 4))
    N = np.empty((4, 4))
    Tl = np.empty(16)
    vals = np.empty(4)
    for b in range(B):
        for i in range(4):
            for j in range(4):
                M[i, j] = 1.0 if i == j else 0.0
        for k in range(L):
            a = S[b, q0 + link_q[k]]
            s, c = np.sin(a), np.cos(a)
            for e in range(16):
                Tl[e] = s * coef[k, 0, e] + c * coef[k, 1, e] + coef[k, 2, e]
            for i in range(4):
                for j in range(4):
                    acc = 0.0
                    for m in range(4):
                        acc += M[i, m] * Tl[m * 4 + j]
                    N[i, j] = acc
            M[:, :] = N
        gx, gy, gz = M[0, 3], M[1, 3], M[2, 3]
        jv = 0.0
        for i in qvel_cols:
            jv += S[b, i] * S[b, i]
        ox, oy, oz = S[b, obj0], S[b, obj0 + 1], S[b, obj0 + 2]
        d_go = ((gx - ox) ** 2 + (gy - oy) ** 2 + (gz - oz) ** 2) ** 0.5
        d = ((ox - goal[b, 0]) ** 2 + (oy - goal[b, 1]) ** 2 + (oz - goal[b, 2]) ** 2) ** 0.5
        ok = d < tol
        vals[0], vals[1], vals[2], vals[3] = -jv, -d_go, -d, 1.0 if ok else 0.0
        total = np.float32(0.0)
        for r in range(term_of.shape[0]):
            w = np.float32(weights[r] * vals[term_of[r]])
            returns[1 + r, b] = w
            total += w
        returns[0, b] = total
        t[b] += 1
        success[b] = ok
        terminated[b] = ok and terminate_on_success
        truncated[b] = t[b] >= episode_length and not terminated[b]
        for i in range(obs_cols.shape[0]):
            col = obs_cols[i]
            if col < nstate:
                obs[b, i] = S[b, col]
            elif col < nstate + 3:
                obs[b, i] = M[col - nstate, 3]
            else:
                obs[b, i] = goal[b, col - nstate - 3]


def fused_step(eng: Any) -> Any:
    """A ``_step_np`` for ``eng`` (pick and place) whose work after the rollout is one call of
    :func:`_bookkeeping`; a step with an unstable world raises (the experiment covers stable
    steps only)."""
    ph, plan, task = eng.physics, eng._np, eng.task
    assert task.kind == "pick_place"
    coef, link_q = eng.kin._np_T
    qvel_cols = np.arange(ph.nstate)[plan.state_cols["arm_qvel"]]
    obj0 = plan.state_cols[f"{eng.c.scene.objects[eng.k_obj].name}_pos"].start
    weights = plan.weights[:, 0]  # [T], the task's reward order
    term_of = np.array([TERMS.index(k) for k in task.reward], dtype=np.int64)
    B, T = eng.B, len(task.reward)

    def step(st: dict[str, torch.Tensor], actions: np.ndarray) -> dict[str, Any]:
        eng._controls_np(actions, ph.ctrl)
        unstable, any_unstable = ph.step_np()
        if any_unstable:
            raise RuntimeError("an unstable world: the experiment covers stable steps only")
        arrays = plan.arrays(st)
        returns = np.empty((1 + T, B), np.float32)
        obs = np.empty((B, len(plan.obs_cols)), np.float32)
        success, terminated, truncated = (np.empty(B, bool) for _ in range(3))
        _bookkeeping(
            ph.state, ph.qpos_slice.start, link_q, coef, qvel_cols, obj0, arrays["goal"],
            arrays["t"], task.tolerance, weights, term_of, plan.episode_length,
            task.terminate_on_success, plan.obs_cols, ph.nstate, returns, obs, success,
            terminated, truncated,
        )  # fmt: skip
        return eng._np_outputs(returns, success, terminated, truncated, unstable, obs)

    return step


def main() -> None:
    out_path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    torch.set_num_threads(1)
    make = {"num_envs": n, "vectorization_mode": "vector_entry_point"}
    pair = [gym.make_vec("envgym/Robot-PickPlace-v0", **make) for _ in range(2)]
    engines = [e.unwrapped.engine for e in pair]
    engines[1]._step_np = fused_step(engines[1])
    gen = torch.Generator().manual_seed(0)
    acts = [torch.rand(n, engines[0].act_dim, generator=gen) * 2 - 1 for _ in range(200)]
    for e in pair:
        e.reset(seed=0)
    # The same actions from the same state: how far apart the outputs are.
    apart = {"reward": 0.0, "obs": 0.0}
    for a in acts[:50]:
        (o0, r0, *_), (o1, r1, *_) = (e.step(a) for e in pair)
        apart["reward"] = max(apart["reward"], float((r0 - r1).abs().max()))
        apart["obs"] = max(apart["obs"], float((o0 - o1).abs().max()))

    # Time the engine after the rollout: wrap each variant's physics step to note its end.
    ends: list[int] = []
    for eng in engines:
        inner = eng.physics.step_np

        def noted(_inner: Any = inner) -> Any:
            out = _inner()
            ends.append(time.perf_counter_ns())
            return out

        eng.physics.step_np = noted
        inner_step = eng._step_np

        def timed(st: Any, a: Any, _inner: Any = inner_step, _eng: Any = eng) -> Any:
            out = _inner(st, a)
            _eng._after.append(time.perf_counter_ns() - ends[-1])
            return out

        eng._after = []
        eng._step_np = timed
    whole: list[list[int]] = [[], []]
    block = max(steps // 10, 1)
    for i in range(steps):
        k = (i // block) % 2
        a = acts[i % len(acts)]
        t0 = time.perf_counter_ns()
        pair[k].step(a)
        whole[k].append(time.perf_counter_ns() - t0)

    def med_us(xs: list[int]) -> float:
        return round(statistics.median(xs) / 1e3, 1)

    row = {
        "num_envs": n,
        "steps_timed": steps,
        "step_us": {"numpy": med_us(whole[0]), "kernel": med_us(whole[1])},
        "after_rollout_us": {
            "numpy": med_us(engines[0]._after),
            "kernel": med_us(engines[1]._after),
        },
        "max_abs_difference": apart,
    }
    print(json.dumps(row))
    with open(out_path, "w") as f:
        json.dump({"rows": [row], **provenance(" ".join(["python", *sys.argv]))}, f, indent=1)
    for e in pair:
        e.close()


if __name__ == "__main__":
    main()
