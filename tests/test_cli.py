"""The ``envgym`` command line: list, validate, schema, play, bench, demo."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from envgym.cli import build_parser, main
from envgym.phone.scenarios import scenario_dir

MOCK = scenario_dir() / "mock.yaml"


def test_list_shows_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "envgym/Phone-v0" in out
    assert "envgym/Phone-Mock-v0" in out
    first = next(line for line in out.splitlines() if line.startswith("envgym/Phone-v0 "))
    assert "phone" in first.split()


def test_console_module_list() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "envgym.cli", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "envgym/Phone-v0" in res.stdout


def test_bad_usage_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["bench", "envgym/Phone-v0", "--num-envs", "0"]) == 2
    capsys.readouterr()


# ------------------------------------------------------------------ validate


def test_validate_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in scenario_dir().glob("*.yaml"))
    assert files
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count("OK  ") == len(files)
    assert "(mock: MockCo" in out


def test_validate_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(scenario_dir())]) == 0
    assert "all valid" in capsys.readouterr().out


def test_validate_unknown_department(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = MOCK.read_text()
    bad = text.replace("routes_to: {department: support}", "routes_to: {department: billing}")
    assert bad != text
    path = tmp_path / "mock.yaml"
    path.write_text(bad)
    assert main(["validate", str(MOCK), str(path)]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert f"OK  {MOCK}" in out.out
    assert str(path) in out.out
    assert "company.numbers[0].routes_to.department" in out.out
    assert "billing" in out.out


def test_validate_ivr_option_unknown_department(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = MOCK.read_text()
    bad = text.replace(
        "      routes_to: {department: support}\n",
        "      routes_to: {node: main}\n"
        "  ivr:\n"
        "    - id: main\n"
        "      prompt: For support press 1.\n"
        "      options:\n"
        "        '1': {department: nowhere}\n",
    )
    path = tmp_path / "mock.yaml"
    path.write_text(bad)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert str(path) in out
    assert "company.ivr[0].options.1.department" in out
    assert "nowhere" in out


def test_validate_yaml_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ncompany: [a, b\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert str(path) in out.out
    assert "YAML syntax error" in out.out
    assert "line " in out.out


def test_validate_unreachable_goal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Loads and cross-references fine; only the compiler sees that no service reaches the goal.
    text = MOCK.read_text()
    head, _, tail = text.partition("goal:")
    path = tmp_path / "mock.yaml"
    path.write_text(head + "goal:" + tail.replace("password: reset", "password: changed", 1))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert str(path) in out
    assert "goal.records" in out
    assert "unreachable" in out


def test_validate_empty_dir_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
    out = capsys.readouterr().out
    assert "no *.yaml" in out
    assert "file not found" in out


# ------------------------------------------------------------------ schema


def test_schema_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "phone"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "properties" in schema
    assert "company" in schema["properties"]


def test_schema_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "phone.schema.json"
    assert main(["schema", "phone", "--out", str(out)]) == 0
    assert "properties" in json.loads(out.read_text())
    capsys.readouterr()


# ------------------------------------------------------------------ play


def _play(monkeypatch: pytest.MonkeyPatch, lines: list[str], *args: str) -> int:
    """``envgym play ARGS`` with ``lines`` as piped stdin."""
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{x}\n" for x in lines)))
    return main(["play", *args])


def test_play_mock_to_success(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    actions = [
        "help",
        "hint",
        "dial 800-555-0000",
        "request a password reset",
        "my account number is 12345",
        "report",
    ]
    rc = _play(monkeypatch, actions, "envgym/Phone-v0", "--scenario", "mock", "--seed", "3")
    out = capsys.readouterr().out
    assert rc == 0
    assert "Please call MockCo" in out
    # help lists the tools and free-text examples without taking a step
    assert "provide(fact: string in {account_number}, value: string)" in out
    assert "my <fact> is <value>" in out
    # hint gives the oracle's JSON tool call
    assert 'hint: {"name": "dial"' in out
    assert "rep: " in out
    assert "action_error" not in out
    assert "goal +1" in out
    assert "episode terminated after 4 turns" in out
    assert "success: True" in out.splitlines()[-1]


def test_play_reports_errors_and_eof(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _play(monkeypatch, ["press 1", "gibberish words"], "envgym/Phone-Mock-v0")
    out = capsys.readouterr().out
    assert rc == 0
    assert "action_error: not_on_call" in out
    assert "invalid_action" in out
    assert "not_understood" in out
    assert "(end of input)" in out
    assert "stopped after 2 turns" in out


def test_play_quit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _play(monkeypatch, ["wait", "quit", "report"], "envgym/Phone-Mock-v0")
    assert rc == 0
    assert "stopped after 1 turns" in capsys.readouterr().out


def test_play_unknown_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _play(monkeypatch, [], "envgym/NoSuchEnv-v0")
    assert rc == 1
    err = capsys.readouterr().err
    assert "NoSuchEnv" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------ bench


def test_bench_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "envgym/Phone-Mock-v0",
            "--num-envs",
            "4",
            "--device",
            "cpu",
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
    assert isinstance(row, dict)
    for key in ("env_steps_per_s", "raw_steps_per_s", "ratio"):
        assert row[key] > 0
    assert row["id"] == "envgym/Phone-Mock-v0"
    assert row["num_envs"] == 4 and row["steps"] == 5 and row["policy"] == "random"
    for key in (
        "device",
        "device_name",
        "torch_threads",
        "allocator",
        "date",
        "python",
        "torch",
        "command",
    ):
        assert row[key]
    assert "bench" in row["command"]
    assert row["cpu"]["cpus"] >= 1 and len(row["load_average"]) == 3
    assert "env-steps/s" in capsys.readouterr().out


def test_bench_oracle_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "envgym/Phone-v0",
            "--num-envs",
            "1,3",
            "--policy",
            "oracle",
            "--scenario",
            "mock",
            "--steps",
            "4",
            "--warmup",
            "0",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["num_envs"] for r in rows] == [1, 3]
    for r in rows:
        assert r["policy"] == "oracle"
        assert r["oracle_time_s"] > 0
        assert r["ratio"] > 0
    assert "oracle policy" in capsys.readouterr().out


def test_bench_raw_baseline_function() -> None:
    from envgym.bench import raw_tabular_steps_per_s

    sps, secs = raw_tabular_steps_per_s(16, 10, "cpu", steps=5, warmup=1)
    assert sps > 0 and secs > 0


# ------------------------------------------------------------------ demo


def test_demo_oracle_beats_random(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.json"
    rc = main(
        [
            "demo",
            "--num-envs",
            "8",
            "--steps",
            "40",
            "--scenarios",
            "mock,generated",
            "--no-progress",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "success" in text and "mock" in text
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert {(r["scenario"].split()[0], r["policy"]) for r in rows} >= {
        ("mock", "oracle"),
        ("mock", "random"),
    }
    summary = data["summary"]
    assert summary["oracle"]["episodes"] > 0 and summary["random"]["episodes"] > 0
    assert summary["oracle"]["success_rate"] > summary["random"]["success_rate"]
    for r in rows:
        assert r["env_steps_per_s"] > 0


def test_demo_task_list() -> None:
    from envgym.demo import demo_tasks, installed_families
    from envgym.phone.scenarios import shipped_names

    assert "phone" in installed_families()
    labels = [t.label for t in demo_tasks(["phone"])]
    assert set(shipped_names()) <= set(labels)
    with pytest.raises(ValueError, match="unknown family"):
        demo_tasks(["nope"])


ROOT = Path(__file__).resolve().parent.parent
_COMMANDS = ("list", "validate", "schema", "play", "bench", "demo", "eval", "serve", "record")
_COMMANDS += ("render",)


def _doc_commands() -> list[tuple[str, str]]:
    """Every ``envgym`` command line the README and the docs spell out in full: the lines of
    their shell blocks, and inline code spans that give the subcommand an argument (a span
    that only names a subcommand or one of its flags is prose, not a command, and one with
    ``...`` elides what it needs)."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                m = re.search(r"(?:^|&&|;)\s*(?:[A-Z_]+=\S+\s+)*envgym\s+([^&|;#>]*)", line)
                if m and not line.lstrip().startswith("#"):
                    found.append((path.name, m.group(1)))
        for span in re.findall(r"`envgym ([^`]+)`", text):
            words = span.split()
            if len(words) > 1 and not words[1].startswith("-") and "..." not in words:
                found.append((path.name, " ".join(words)))
    return [(where, cmd) for where, cmd in found if cmd.split()[0] in _COMMANDS]


def test_every_command_in_the_docs_parses() -> None:
    """A flag renamed or dropped from the CLI shows up here, not in a reader's terminal."""
    commands = _doc_commands()
    assert len(commands) > 40
    parser, bad = build_parser(), []
    for where, cmd in commands:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(shlex.split(cmd))
        except SystemExit as e:
            if e.code:
                bad.append(f"{where}: envgym {cmd}: {err.getvalue().strip().splitlines()[-1]}")
    assert not bad, "\n".join(bad)
