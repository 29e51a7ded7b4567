"""Benchmark rows: what ``envgym bench --served`` measures and writes (``envgym.bench``). The
figures themselves are never asserted (speed is measured, not tested); the rows' fields and the
relations between them are."""

from __future__ import annotations

import pytest

from envgym.bench import bench_served, format_row

SERVED_KEYS = [
    "id",
    "family",
    "env_kwargs",
    "sessions",
    "steps_per_session",
    "repeats",
    "in_process_times_s",
    "served_times_s",
    "policy",
    "in_process_time_s",
    "in_process_steps_per_s",
    "in_process_episodes_per_s",
    "served_time_s",
    "served_steps_per_s",
    "served_episodes_per_s",
    "ratio",
    "overhead_ms_per_step",
    "served_step_latency_ms",
    "transport",
    "date",
    "python",
    "platform",
    "cpu",
    "load_average",
    "torch_threads",
    "command",
    "envgym",
    "torch",
    "gymnasium",
]


def test_served_rows_compare_the_server_with_the_env_in_process() -> None:
    rows = bench_served(
        "envgym/Phone-v0",
        sessions=(1, 2),
        steps=4,
        repeats=3,
        env_kwargs={"scenario": "mock"},
        command="bench served test",
    )
    assert [r["sessions"] for r in rows] == [1, 2]
    for r in rows:
        assert list(r) == SERVED_KEYS
        assert r["id"] == "envgym/Phone-v0" and r["family"] == "phone"
        assert r["env_kwargs"] == {"scenario": "mock"} and r["command"] == "bench served test"
        assert r["steps_per_session"] == 4 and r["repeats"] == 3 and r["policy"] == "oracle"
        # each figure is the median of the runs of its side, which alternated
        assert len(r["in_process_times_s"]) == len(r["served_times_s"]) == 3
        assert r["in_process_time_s"] == sorted(r["in_process_times_s"])[1]
        assert r["served_time_s"] == sorted(r["served_times_s"])[1]
        total = r["sessions"] * 4
        local, served = r["in_process_steps_per_s"], r["served_steps_per_s"]
        assert local == pytest.approx(total / r["in_process_time_s"])
        assert served == pytest.approx(total / r["served_time_s"])
        assert r["ratio"] == pytest.approx(served / local)
        assert r["overhead_ms_per_step"] == pytest.approx(1000 * (1 / served - 1 / local))
        assert r["served_step_latency_ms"] > 0


@pytest.mark.parametrize(
    ("ratio", "said"), [(0.86, "1.2x faster"), (0.5, "2.0x faster"), (1 / 157.3, "157x faster")]
)
def test_a_row_says_how_much_faster_the_raw_loop_is(ratio: float, said: str) -> None:
    row = {
        "id": "envgym/Robot-PickPlace-v0",
        "num_envs": 16,
        "device": "cpu",
        "device_name": "cpu",
        "torch_threads": 1,
        "policy": "random",
        "steps": 10,
        "env_steps_per_s": 1000.0,
        "env_time_s": 0.16,
        "raw_steps_per_s": 1000.0 / ratio,
        "raw_baseline": "raw mujoco.rollout",
        "ratio": ratio,
    }
    assert f"(the raw loop is {said})" in format_row(row)
