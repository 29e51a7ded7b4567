"""Compile and cache MuJoCo Warp's kernels once: ``python -m envgym.robot.warm_warp``.

The first ``mujoco_warp.step`` compiles every kernel (about 40 s on CUDA, minutes on a busy CPU);
Warp caches them under ``WARP_CACHE_PATH`` (default ``.cache/warp`` in the working directory), so
later processes (the tests, the benchmark) start in seconds. CI runs this before the tests.
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> int:
    """Step every shipped robot scene once on the Warp backend."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--warp-device", default="cpu", help="Warp device: cpu or cuda:N")
    args = p.parse_args(argv)
    import torch

    from envgym.robot.env import RobotVectorEnv
    from envgym.robot.ids import TASKS

    t0 = time.perf_counter()
    for _, scene, _ in TASKS:
        envs = RobotVectorEnv(2, scene, backend="warp", warp_device=args.warp_device)
        envs.reset(seed=0)
        envs.step(torch.zeros(2, envs.engine.act_dim))
        envs.close()
    print(f"MuJoCo Warp kernels ready on {args.warp_device} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
