"""The phone learnability aids' cost, measured interleaved: two vector envs at the same batch
size, one with the aids off (``action_mask=False, reward_mode="costs"``) and one with them on
(``action_mask=True, reward_mode="shaped"``), stepped alternately with the same random actions,
so that load changes on a shared machine hit both alike. Writes one JSON object.

    python docs/bench/aids_interleaved.py OUT.json [num_envs] [steps]
"""

from __future__ import annotations

import json
import sys
import time

import torch

from envgym.core.machine import provenance
from envgym.phone.faces import PhoneVectorEnv


def main(out: str, num_envs: int = 16384, steps: int = 20, warmup: int = 3) -> None:
    torch.set_num_threads(1)
    arms = {
        "off": PhoneVectorEnv(num_envs, scenario="all", action_mask=False, reward_mode="costs"),
        "on": PhoneVectorEnv(num_envs, scenario="all", action_mask=True, reward_mode="shaped"),
    }
    n = arms["off"].single_action_space.n
    gen = torch.Generator().manual_seed(0)
    acts = torch.randint(0, n, (warmup + steps, num_envs), generator=gen)
    for env in arms.values():
        env.reset(seed=0)
    spent = {k: 0.0 for k in arms}
    for t in range(warmup + steps):
        order = list(arms) if t % 2 == 0 else list(reversed(arms))
        for k in order:
            t0 = time.perf_counter()
            arms[k].step(acts[t])
            if t >= warmup:
                spent[k] += time.perf_counter() - t0
    sps = {k: num_envs * steps / v for k, v in spent.items()}
    row = {
        "num_envs": num_envs,
        "steps": steps,
        "warmup": warmup,
        "scenario": "all",
        "env_steps_per_s": sps,
        "on_over_off": sps["on"] / sps["off"],
        **provenance(" ".join(["python", *sys.argv])),
    }
    with open(out, "w") as fh:
        json.dump(row, fh, indent=1)
    print(json.dumps(row))


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
