"""The ``envgym`` command line: list ids, validate scenarios, export schemas, play, bench, demo,
serve, record datasets.

Run ``envgym --help`` or ``envgym COMMAND --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envgym.dsl.errors import ScenarioError

# --------------------------------------------------------------------------- helpers


def _err(msg: str) -> None:
    print(f"envgym: error: {msg}", file=sys.stderr)


def _write_json(path: str, data: Any) -> None:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer or a comma list of integers, got {text!r}"
        ) from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {v}")
        return v

    return parse


_positive = _int_at_least(1, "positive")
_non_negative = _int_at_least(0, "non-negative")


# --------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> int:
    """Print every registered id with its family and description."""
    from envgym.registration import entries

    rows = [(e.id, e.family, e.description) for e in entries()]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for env_id, family, desc in rows:
        print(f"{env_id:<{w0}}  {family:<{w1}}  {desc}")
    return 0


# --------------------------------------------------------------------------- validate


def _scenario_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Expand directories into their ``*.yaml``/``*.yml`` files; also return problems."""
    files: list[Path] = []
    problems: list[str] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                problems.append(f"{p}: no *.yaml files in this directory")
            files.extend(found)
        else:
            files.append(p)
    return files, problems


def validate_file(path: Path) -> tuple[bool, str]:
    """``(ok, message)`` for one phone scenario file: the phone family's validity rule,
    :func:`envgym.phone.validity.validate_scenario_file`."""
    from envgym.phone.validity import validate_scenario_file

    return validate_scenario_file(path)


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate phone scenario YAML files (and directories of them)."""
    files, problems = _scenario_files(args.files)
    failed = len(problems)
    for msg in problems:
        print(f"FAIL  {msg}")
    from envgym.robot.validity import is_robot_scene, validate_scene_file

    for f in files:
        ok, msg = validate_scene_file(f) if is_robot_scene(f) else validate_file(f)
        # A verdict always prints, whatever text the file or error holds.
        print(msg.encode("utf-8", "backslashreplace").decode("utf-8"))
        failed += not ok
    n = len(files)
    print(
        f"{n} file{'s' if n != 1 else ''} checked, {failed} failed"
        if failed
        else f"{n} file{'s' if n != 1 else ''} checked, all valid"
    )
    return 1 if failed else 0


# --------------------------------------------------------------------------- schema


def _phone_model() -> Any:
    from envgym.phone.models import PhoneScenario

    return PhoneScenario


def _robot_model() -> Any:
    from envgym.robot.models import RobotScene

    return RobotScene


SCHEMA_MODELS: dict[str, Callable[[], Any]] = {"phone": _phone_model, "robot": _robot_model}
"""family -> function returning the pydantic model of its scenario files."""


def cmd_schema(args: argparse.Namespace) -> int:
    """Print or write the JSON Schema of a family's scenario files."""
    from envgym.dsl import json_schema

    text = json_schema(SCHEMA_MODELS[args.family]())
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


# --------------------------------------------------------------------------- play


def cmd_play(args: argparse.Namespace) -> int:
    """Play a phone env as the assistant (the phone family's UI, :mod:`envgym.phone.play`)."""
    from envgym.phone.play import play

    return play(
        args.id,
        scenario=args.scenario,
        difficulty=args.difficulty,
        seed=args.seed,
        realtime=getattr(args, "realtime", False),
    )


# --------------------------------------------------------------------------- bench


def _env_kwarg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value), the value read as int, float, bool or string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    value: Any = raw
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        for conv in (int, float):
            try:
                value = conv(raw)
                break
            except ValueError:
                pass
    return key, value


def _write_bench_rows(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    """Write the bench rows to ``--json`` (one object for one row, else a list)."""
    if args.json:
        _write_json(args.json, rows if len(rows) > 1 else rows[0])
        print(f"wrote {args.json}")
    return 0


def cmd_bench(args: argparse.Namespace, command: str) -> int:
    """Benchmark env.step against the family's raw backend baseline."""
    import torch

    from envgym.bench import bench_env, format_row
    from envgym.core.allocator import reuse_freed_memory

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.reuse_freed_memory and not reuse_freed_memory():
        print("--reuse-freed-memory: this C library has no mallopt (not glibc); unchanged")
    if args.three_party is not None:
        return _bench_three_party(args, command)
    if args.served:
        return _bench_served(args, command)
    env_kwargs: dict[str, Any] = dict(getattr(args, "env_kwarg", None) or [])
    if args.scenario is not None:
        env_kwargs["scenario"] = args.scenario
    for key in ("backend", "num_threads"):
        if getattr(args, key, None) is not None:
            env_kwargs[key] = getattr(args, key)
    if args.distributed is not None:
        return _bench_distributed(args, command, env_kwargs)
    # --realtime: the real-time engine too, row after row in the same run.
    variants = [env_kwargs] + ([{**env_kwargs, "realtime": True}] if args.realtime else [])
    if getattr(args, "aids", False):
        # --aids: the phone learnability aids off, then on (mask + shaped terms), same run.
        variants = [
            {**kw, **aids}
            for kw in variants
            for aids in (
                {"action_mask": False, "reward_mode": "costs"},
                {"action_mask": True, "reward_mode": "shaped"},
            )
        ]
    rows = []
    for n in args.num_envs:
        for kwargs in variants:
            row = bench_env(
                args.id,
                n,
                device=args.device,
                steps=args.steps,
                warmup=args.warmup,
                policy=args.policy,
                seed=args.seed,
                env_kwargs=kwargs,
                command=command,
            )
            print(format_row(row), flush=True)
            rows.append(row)
    return _write_bench_rows(args, rows)


def _bench_served(args: argparse.Namespace, command: str) -> int:
    """``--served``: the env through an ``envgym serve`` server against in process."""
    from envgym.bench import bench_served

    env_kwargs: dict[str, Any] = dict(getattr(args, "env_kwarg", None) or [])
    if args.scenario is not None:
        env_kwargs["scenario"] = args.scenario
    rows = bench_served(
        args.id, args.num_envs, steps=args.steps, seed=args.seed, env_kwargs=env_kwargs,
        command=command,
    )  # fmt: skip
    for row in rows:
        print(
            f"{row['id']}  sessions={row['sessions']}  steps/session={row['steps_per_session']}\n"
            f"  in process: {row['in_process_steps_per_s']:,.0f} steps/s  "
            f"{row['in_process_episodes_per_s']:,.2f} episodes/s\n"
            f"  served:     {row['served_steps_per_s']:,.0f} steps/s  "
            f"{row['served_episodes_per_s']:,.2f} episodes/s  (ratio {row['ratio']:.2f}, "
            f"overhead {row['overhead_ms_per_step']:.2f} ms/step, "
            f"latency {row['served_step_latency_ms']:.2f} ms/step)",
            flush=True,
        )
    return _write_bench_rows(args, rows)


def _bench_distributed(args: argparse.Namespace, command: str, env_kwargs: dict[str, Any]) -> int:
    """``envgym bench ID --distributed 1,2``: the local vector env against RayVectorEnv with
    each worker count, interleaved in the same run."""
    from envgym.distributed.bench import bench_distributed, format_distributed_row

    rows = []
    for n in args.num_envs:
        row = bench_distributed(
            args.id,
            n,
            args.distributed,
            steps=args.steps,
            warmup=args.warmup,
            rounds=args.rounds,
            policy=args.policy,
            seed=args.seed,
            env_kwargs=env_kwargs,
            address=args.ray_address,
            command=command,
        )
        print(format_distributed_row(row), flush=True)
        rows.append(row)
    return _write_bench_rows(args, rows)


def _bench_three_party(args: argparse.Namespace, command: str) -> int:
    """``envgym bench envgym/Phone-v0 --three-party assistant,rep,user``: the batched
    three-party engine, timed in the same run as the single-agent phone env."""
    from envgym.bench import bench_three_party, format_three_party_row
    from envgym.phone.multiagent import check_learners

    if args.id != "envgym/Phone-v0":
        print("error: --three-party times envgym/Phone-v0", file=sys.stderr)
        return 2
    try:
        learners = check_learners(tuple(p for p in args.three_party.split(",") if p))
    except ValueError as e:
        print(f"error: --three-party: {e}", file=sys.stderr)
        return 2
    rows = []
    for n in args.num_envs:
        row = bench_three_party(
            n,
            learners,
            device=args.device,
            steps=args.steps,
            warmup=args.warmup,
            policy=args.policy,
            seed=args.seed,
            scenario=args.scenario,
            command=command,
        )
        print(format_three_party_row(row), flush=True)
        rows.append(row)
    return _write_bench_rows(args, rows)


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace, command: str) -> int:
    """Oracle vs random policy on every installed family's scenarios."""
    import torch

    from envgym.core.machine import timestamp
    from envgym.demo import format_table, installed_families, rows_to_json, run_demo, summarize

    threads = args.threads
    if threads is None and torch.device(args.device).type == "cpu":
        threads = 1
    if threads is not None:
        torch.set_num_threads(threads)
    fams = installed_families()
    print(
        f"families: {', '.join(fams)}; num_envs={args.num_envs}, steps={args.steps} per "
        f"policy, device={args.device}",
        flush=True,
    )
    scenarios = [s for s in args.scenarios.split(",") if s] if args.scenarios else None
    rows = run_demo(
        num_envs=args.num_envs,
        steps=args.steps,
        device=args.device,
        seed=args.seed,
        scenarios=scenarios,
        progress=not args.no_progress,
    )
    if not rows:
        _err("no demo tasks matched")
        return 1
    print(format_table(rows))
    if args.json:
        _write_json(
            args.json,
            {
                "rows": rows_to_json(rows),
                "summary": summarize(rows),
                "num_envs": args.num_envs,
                "steps": args.steps,
                "device": args.device,
                "seed": args.seed,
                "torch_threads": torch.get_num_threads(),
                "date": timestamp(),
                "command": command,
            },
        )
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace, command: str) -> int:
    """Evaluate a text-face policy: success and pass^k per scenario, or a continual run."""
    from envgym.core.machine import timestamp

    stamp = {
        "command": command,
        "date": timestamp(),
    }
    if args.continual:
        from envgym.phone.continual import evaluate_continual

        report = evaluate_continual(
            args.policy,
            companies=args.companies,
            length=args.length,
            difficulty=2 if args.difficulty is None else args.difficulty,
            seed=args.seed,
        )
        print(f"{'company':<32} {'first success':>13} {'success':>8} {'after 1st':>9}")
        for r in report["rows"]:
            first = r["episodes_to_first_success"]
            print(
                f"{r['company'][:32]:<32} {first if first else '-':>13} "
                f"{r['success_rate']:8.2f} {r['success_after_first']:9.2f}"
            )
        o = report["overall"]
        print(
            f"{'mean':<32} {o['mean_episodes_to_first_success']:13.2f} "
            f"{o['success_rate']:8.2f} {o['success_after_first']:9.2f}"
        )
    else:
        from envgym.phone.evaluate import evaluate, format_report

        if args.id is None:
            _err("eval needs an env id (or --continual)")
            return 2
        env_kwargs: dict[str, Any] = {}
        if args.scenario is not None:
            env_kwargs["scenario"] = args.scenario
        if args.difficulty is not None:
            env_kwargs["difficulty"] = args.difficulty
        if args.num_generated is not None:
            env_kwargs["num_generated"] = args.num_generated
        report = evaluate(
            args.id,
            args.policy,
            trials=args.trials,
            ks=args.k,
            seed=args.seed,
            env_kwargs=env_kwargs,
        )
        print(format_report(report))
    if args.json:
        _write_json(args.json, {**report, **stamp})
        print(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------- render


def cmd_render(args: argparse.Namespace) -> int:
    """Write a video of the oracle (or a random policy) on a robot env."""
    from envgym.robot.render import render_video

    kwargs: dict[str, Any] = {}
    if args.backend is not None:
        kwargs["backend"] = args.backend
    camera: str | int = int(args.camera) if args.camera.isdigit() else args.camera
    info = render_video(
        args.id,
        args.out,
        seed=args.seed,
        steps=args.steps,
        episodes=args.episodes,
        camera=camera,
        width=args.width,
        height=args.height,
        policy=args.policy,
        **kwargs,
    )
    print(
        f"wrote {info['path']}: {info['frames']} frames at {info['fps']} fps, "
        f"{info['successes']}/{info['episodes']} episodes successful"
    )
    return 0


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve an env id over OpenEnv's protocol until interrupted."""
    try:
        from envgym.serve import serve
    except ImportError as e:
        _err(str(e))
        return 1
    env_kwargs: dict[str, Any] = dict(args.env_kwarg or [])
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"envgym: serving on {args.host}: reachable beyond this machine", file=sys.stderr)
    serve(
        args.id,
        env_kwargs,
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        idle_timeout_s=args.idle_timeout,
        step_timeout_s=args.step_timeout,
        max_message_bytes=args.max_message_bytes,
    )
    return 0


# --------------------------------------------------------------------------- record


def cmd_record(args: argparse.Namespace, command: str) -> int:
    """Record a Minari dataset from the batched engine (resumable; Ctrl-C keeps every
    finished episode)."""
    import torch

    from envgym.datasets import dataset_path, record

    torch.set_num_threads(args.threads)
    env_kwargs: dict[str, Any] = dict(args.env_kwarg or [])
    if args.scenario is not None:
        env_kwargs["scenario"] = args.scenario
    if args.backend is not None:
        env_kwargs["backend"] = args.backend
    if args.bench and (dataset_path(args.out) / "data").exists():
        _err(f"--bench needs a new dataset; {args.out!r} exists (choose another --out)")
        return 2

    show = not args.no_progress and sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            print(f"\r{done}/{total} episodes", end="", file=sys.stderr, flush=True)

    report = record(
        args.id,
        args.out,
        policy=args.policy,
        episodes=args.episodes,
        num_envs=args.num_envs,
        seed=args.seed,
        device=args.device,
        env_kwargs=env_kwargs,
        progress=progress,
    )
    if show:
        print(file=sys.stderr)
    rate = report.steps_written / report.seconds if report.seconds > 0 else 0.0
    resumed = f" (resumed at {report.resumed_from})" if report.resumed_from else ""
    print(
        f"{report.path}: {report.episodes}/{args.episodes} episodes{resumed}; wrote "
        f"{report.written} episodes, {report.steps_written} env-steps in {report.seconds:.1f} s "
        f"({rate:,.0f} env-steps/s written)"
    )
    if report.interrupted:
        print(
            f"interrupted: the {report.episodes} finished episodes are saved; rerun the same "
            "command to continue",
            file=sys.stderr,
        )
        return 130
    if args.bench:
        _record_bench(args, command, report, env_kwargs)
    return 0


def _record_bench(
    args: argparse.Namespace, command: str, report: Any, env_kwargs: dict[str, Any]
) -> None:
    """``envgym record --bench``: time the same policy's rollout without recording and write
    both rates (and the machine) as JSON."""
    import torch

    from envgym.core.machine import device_name, provenance
    from envgym.datasets import time_rollout

    rate = report.steps_written / report.seconds if report.seconds > 0 else 0.0
    plain = time_rollout(
        args.id,
        policy=args.policy,
        batched_steps=report.env_steps // args.num_envs,
        num_envs=args.num_envs,
        seed=args.seed,
        device=args.device,
        env_kwargs=env_kwargs,
    )
    row = {
        "id": args.id,
        "policy": args.policy,
        "num_envs": args.num_envs,
        "device": args.device,
        "episodes": report.written,
        "env_steps": report.env_steps,
        "steps_written": report.steps_written,
        "record_seconds": report.seconds,
        "record_env_steps_per_s": report.env_steps / report.seconds,
        "written_env_steps_per_s": rate,
        "rollout_env_steps_per_s": plain["env_steps_per_s"],
        "ratio_record_vs_rollout": (report.env_steps / report.seconds) / plain["env_steps_per_s"],
        "record_cpu_seconds": report.cpu_seconds,
        "record_env_steps_per_cpu_s": report.env_steps / report.cpu_seconds,
        "rollout_env_steps_per_cpu_s": plain["env_steps_per_cpu_s"],
        "ratio_record_vs_rollout_cpu": (report.env_steps / report.cpu_seconds)
        / plain["env_steps_per_cpu_s"],
        "dataset_mb": sum(f.stat().st_size for f in report.path.rglob("*")) / 1e6,
        "machine": device_name(torch.device(args.device)),
        **provenance(command, packages=("envgym", "torch", "minari", "h5py")),
    }
    print(
        f"rollout without recording: {plain['env_steps_per_s']:,.0f} env-steps/s; "
        f"recording: {row['record_env_steps_per_s']:,.0f} env-steps/s "
        f"({row['ratio_record_vs_rollout']:.2f}x; per CPU-second "
        f"{row['ratio_record_vs_rollout_cpu']:.2f}x)"
    )
    _write_json(args.bench, row)
    print(f"wrote {args.bench}")


# --------------------------------------------------------------------------- parser


def _add_list(sub: Any) -> None:
    """``envgym list``: list registered ids."""
    sub.add_parser("list", help="list registered env ids")


def _add_validate(sub: Any) -> None:
    """``envgym validate``: check scenario and scene files."""
    v = sub.add_parser(
        "validate",
        help="check phone scenario and robot scene YAML files",
        description="Load, check and compile phone scenario files. A directory "
        "validates every *.yaml in it. Exit code 1 if any file fails.",
    )
    v.add_argument("files", nargs="+", metavar="FILE", help="YAML file or directory")


def _add_schema(sub: Any) -> None:
    """``envgym schema``: a family's JSON Schema."""
    s = sub.add_parser("schema", help="JSON Schema of a family's scenario files")
    s.add_argument("family", choices=sorted(SCHEMA_MODELS))
    s.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def _add_play(sub: Any) -> None:
    """``envgym play``: play a phone env in the terminal."""
    pl = sub.add_parser(
        "play",
        help="play a phone env as the assistant in the terminal",
        description="Play a phone env (text face). Type actions as free text or "
        "JSON tool calls; 'help' lists the tools, 'hint' asks the oracle, "
        "'quit' or end of input stops.",
    )
    pl.add_argument("id", metavar="ID", help="env id, e.g. envgym/Phone-v0")
    pl.add_argument("--scenario", help="scenario name, YAML path, 'all' or 'generated'")
    pl.add_argument("--seed", type=int, default=None, help="reset seed")
    pl.add_argument(
        "--difficulty",
        type=int,
        default=None,
        help="generator difficulty (with --scenario generated)",
    )
    pl.add_argument(
        "--realtime",
        action="store_true",
        help="real-time call: each Enter advances a 200 ms tick; typed text is spoken "
        "chunk by chunk ('help' inside lists the commands)",
    )


def _add_bench(sub: Any) -> None:
    """``envgym bench``: time env.step against a raw baseline."""
    b = sub.add_parser("bench", help="time env.step against a raw backend baseline")
    b.add_argument("id", metavar="ID", help="env id, e.g. envgym/Phone-v0")
    b.add_argument(
        "--num-envs",
        type=_int_list,
        default=[256],
        metavar="N[,N...]",
        help="batch size, or a comma list (one row each), e.g. 1,64,4096",
    )
    b.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    b.add_argument("--steps", type=_positive, default=200, help="timed steps (default 200)")
    b.add_argument("--warmup", type=_non_negative, default=20, help="untimed steps (default 20)")
    b.add_argument(
        "--reuse-freed-memory",
        action="store_true",
        help="first have glibc reuse freed big blocks instead of unmapping them "
        "(envgym.core.allocator; the rows record it): every fresh big tensor stops page-faulting",
    )
    b.add_argument(
        "--policy",
        choices=("random", "oracle", "fill", "navigate"),
        default="random",
        help="random/oracle; browser ids also: fill, navigate (workloads with a raw baseline)",
    )
    b.add_argument("--scenario", help="scenario argument passed to the env")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="torch intra-op threads (default: torch's own choice)",
    )
    b.add_argument(
        "--realtime",
        action="store_true",
        help="also time the real-time (tick) mode, realtime=True, in the same run: one more "
        "row per batch size (its env-steps are 200 ms ticks)",
    )
    b.add_argument(
        "--aids",
        action="store_true",
        help="phone: time each row with the learnability aids off (action_mask=false, "
        "reward_mode=costs) and on (action_mask=true, reward_mode=shaped), in the same run",
    )
    b.add_argument(
        "--env-kwarg",
        type=_env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="extra keyword argument for gym.make_vec (repeatable); VALUE is read as an "
        "int, float, true/false or else a string; it goes to every row, e.g. hints=false",
    )
    _add_bench_comparisons(b)


def _add_bench_comparisons(b: argparse.ArgumentParser) -> None:
    """``envgym bench``'s same-run comparisons (served, distributed, three-party) and the
    robot backend options."""
    b.add_argument(
        "--served",
        action="store_true",
        help="time the single env through an envgym serve server (its own process; "
        "--num-envs = concurrent sessions) against the same env in process, same run",
    )
    b.add_argument(
        "--distributed",
        type=_int_list,
        default=None,
        metavar="W[,W...]",
        help="compare the local vector env with RayVectorEnv on W workers (each list entry), "
        "interleaved in the same run (needs the distributed extra)",
    )
    b.add_argument("--rounds", type=_positive, default=3, help="--distributed: interleaved rounds")
    b.add_argument(
        "--ray-address", default=None, help="--distributed: Ray cluster address (default local)"
    )
    b.add_argument("--json", metavar="OUT", help="write the result row(s) as JSON")
    b.add_argument(
        "--three-party",
        metavar="LEARNERS",
        default=None,
        help="phone only: also time the batched three-party env with these learners "
        "(comma list of assistant,rep,user) in the same run",
    )
    b.add_argument("--backend", choices=("cpu", "warp"), help="robot envs: physics backend")
    b.add_argument(
        "--num-threads",
        type=_positive,
        default=None,
        help="robot envs, cpu backend: MuJoCo thread-pool size (default: the CPUs available)",
    )


def _add_demo(sub: Any) -> None:
    """``envgym demo``: oracle vs random on every task."""
    d = sub.add_parser("demo", help="oracle vs random policy on every installed scenario")
    d.add_argument("--num-envs", type=_positive, default=256, help="worlds per env (default 256)")
    d.add_argument(
        "--steps", type=_positive, default=300, help="steps per policy per scenario (default 300)"
    )
    d.add_argument("--device", default="cpu")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--scenarios", metavar="A,B", help="only scenarios whose name starts with these")
    d.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="torch intra-op threads (default: 1 on cpu, where the engine's small "
        "tensors gain nothing from more and stall when cores are shared)",
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.add_argument("--json", metavar="OUT", help="write the rows as JSON")


def _add_eval(sub: Any) -> None:
    """``envgym eval``: success and pass^k of a policy."""
    ev = sub.add_parser(
        "eval",
        help="success and pass^k of a text-face policy per scenario (or --continual)",
        description="Run a policy on every scenario of an env id, --trials times each (trial "
        "seeds derive from --seed, scenario and trial, so runs reproduce), and report success "
        "and pass^k per scenario. With --continual: sequences of episodes over one company "
        "each (episodes-to-first-success, success over the sequence).",
    )
    ev.add_argument("id", metavar="ID", nargs="?", help="env id, e.g. envgym/Phone-v0")
    ev.add_argument(
        "--policy",
        default="oracle",
        help="oracle, random, noop, explorer, notebook, or module:callable (a function with no "
        "arguments returning an agent with reset/act, or a function (obs, info) -> action)",
    )
    ev.add_argument("--trials", type=_positive, default=4, help="trials per scenario (default 4)")
    ev.add_argument(
        "--k",
        type=_int_list,
        default=None,
        metavar="K[,K...]",
        help="pass^k to report (default 1..trials); k < trials uses the unbiased estimator",
    )
    ev.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    ev.add_argument("--scenario", help="scenario argument passed to the env")
    ev.add_argument("--difficulty", type=_non_negative, default=None, help="generator difficulty")
    ev.add_argument("--num-generated", type=_positive, default=None, help="with generated sets")
    ev.add_argument("--continual", action="store_true", help="continual-learning protocol")
    ev.add_argument("--companies", type=_positive, default=4, help="--continual: sequences")
    ev.add_argument("--length", type=_positive, default=8, help="--continual: episodes each")
    ev.add_argument("--json", metavar="OUT", help="write the report as JSON")


def _add_serve(sub: Any) -> None:
    """``envgym serve``: serve an id over OpenEnv's protocol."""
    sv = sub.add_parser(
        "serve",
        help="serve an env id over OpenEnv's WebSocket protocol (many sessions)",
        description="Serve ID to OpenEnv clients (envgym.remote.RemoteEnv): one session per "
        "WebSocket connection, each with its own env, seed and state. Needs envgym[serve].",
    )
    sv.add_argument("id", metavar="ID", help="env id, e.g. envgym/Phone-v0")
    sv.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    sv.add_argument("--port", type=_non_negative, default=8000, help="port (default 8000)")
    sv.add_argument("--max-sessions", type=_positive, default=64, help="concurrent sessions")
    sv.add_argument(
        "--idle-timeout", type=float, default=300.0, help="close sessions idle this long (s)"
    )
    sv.add_argument("--step-timeout", type=float, default=60.0, help="per-step deadline (s)")
    sv.add_argument(
        "--max-message-bytes", type=_positive, default=1 << 20, help="largest request (bytes)"
    )
    sv.add_argument(
        "--env-kwarg",
        type=_env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="keyword argument for gym.make of every session (repeatable), e.g. scenario=all",
    )


def _add_record(sub: Any) -> None:
    """``envgym record``: record a Minari dataset."""
    rec = sub.add_parser(
        "record",
        help="record a Minari dataset from the batched engine",
        description="Record episodes of a policy on the batched engine into the Minari dataset "
        "NAME (under $MINARI_DATASETS_PATH, default ~/.minari/datasets), readable with "
        "minari.load_dataset(NAME). Rerunning the same command continues to --episodes; "
        "Ctrl-C stops after the current step with every finished episode saved. "
        "See docs/datasets.md.",
    )
    rec.add_argument("id", metavar="ID", help="env id, e.g. envgym/Phone-v0")
    rec.add_argument(
        "--policy",
        default="oracle",
        help="oracle, random, mixed or mixed:P (random action with probability P, default "
        "0.5, else the oracle's), or module:callable / file.py:callable, a function "
        "(obs, envs) -> one action per world",
    )
    rec.add_argument("--episodes", type=_positive, required=True, help="episodes in the dataset")
    rec.add_argument("--out", required=True, metavar="NAME", help="Minari dataset id")
    rec.add_argument("--num-envs", type=_positive, default=16, help="worlds (default 16)")
    rec.add_argument("--seed", type=int, default=0, help="seed (world i gets seed + i)")
    rec.add_argument("--device", default="cpu", help="torch device of the engine")
    rec.add_argument("--scenario", help="scenario argument passed to the env")
    rec.add_argument("--backend", choices=("cpu", "warp"), help="robot envs: physics backend")
    rec.add_argument(
        "--env-kwarg",
        type=_env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="extra keyword argument for gym.make_vec (repeatable)",
    )
    rec.add_argument("--threads", type=_positive, default=1, help="torch threads (default 1)")
    rec.add_argument(
        "--bench",
        metavar="OUT",
        help="also time the same policy's rollout without recording, in the same run, and "
        "write both rates (env-steps/s) as JSON to OUT; needs a new dataset",
    )
    rec.add_argument("--no-progress", action="store_true", help="no progress line")


def _add_render(sub: Any) -> None:
    """``envgym render``: a video of a robot env's oracle."""
    r = sub.add_parser(
        "render",
        help="write a video of a robot env's oracle",
        description="Render a robot env headless (MUJOCO_GL=egl by default) and write an MP4 "
        "(or a GIF, by the file extension).",
    )
    r.add_argument("id", metavar="ID", help="env id, e.g. envgym/Robot-PickPlace-v0")
    r.add_argument("--out", required=True, metavar="FILE", help="video file (.mp4 or .gif)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--episodes", type=_positive, default=1, help="episodes to record")
    r.add_argument("--steps", type=_positive, default=None, help="record exactly this many steps")
    r.add_argument("--camera", default="0", help="scene camera name or index (default 0)")
    r.add_argument("--width", type=_positive, default=512)
    r.add_argument("--height", type=_positive, default=384)
    r.add_argument("--policy", choices=("oracle", "random"), default="oracle")
    r.add_argument("--backend", choices=("cpu", "warp"), default=None)


SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    _add_list,
    _add_validate,
    _add_schema,
    _add_play,
    _add_bench,
    _add_demo,
    _add_eval,
    _add_serve,
    _add_record,
    _add_render,
)
"""Each subcommand's parser builder, in ``envgym --help`` order."""


def build_parser() -> argparse.ArgumentParser:
    """The ``envgym`` argument parser."""
    p = argparse.ArgumentParser(
        prog="envgym", description="envgym: phone, browser and robot worlds for agents."
    )
    p.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an error instead of a one-line message",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return p


COMMANDS: dict[str, Callable[[argparse.Namespace, str], int]] = {
    "list": lambda args, command: cmd_list(args),
    "validate": lambda args, command: cmd_validate(args),
    "schema": lambda args, command: cmd_schema(args),
    "play": lambda args, command: cmd_play(args),
    "bench": cmd_bench,
    "demo": cmd_demo,
    "eval": cmd_eval,
    "render": lambda args, command: cmd_render(args),
    "serve": lambda args, command: cmd_serve(args),
    "record": cmd_record,
}
"""Subcommand -> its handler, called with the parsed arguments and the command line."""


def main(argv: list[str] | None = None) -> int:
    """Run the ``envgym`` command line.

    Args:
        argv: arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 on success, 1 when a command failed (e.g. an invalid scenario), 2 on
        bad usage.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["envgym", *args_list])
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    import gymnasium as gym

    try:
        return COMMANDS[args.command](args, command)
    except ScenarioError as e:
        _err(str(e))
        return 1
    except BrokenPipeError:  # e.g. `envgym schema phone | head`
        return 0
    except (gym.error.Error, ValueError, RuntimeError, NotImplementedError) as e:
        if args.traceback:
            raise
        _err(f"{type(e).__name__}: {e}  (run with --traceback for details)")
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
