"""The phone family's validity rule: what ``envgym validate`` checks of a scenario file.

A file is valid when it loads (the DSL's field and reference checks), compiles, the oracle
solves all of 8 seeded episodes within ``constraints.max_turns``, and random actions on every
path run without an engine error (docs/reliability.md, "Validate runs what the engine runs").
"""

from __future__ import annotations

from pathlib import Path

from envgym.dsl.errors import Problem, ScenarioError


def validate_scenario_file(path: Path) -> tuple[bool, str]:
    """Load, check and compile one phone scenario file.

    Returns:
        ``(ok, message)``: ``OK  path  (name: title)`` or the error naming file, field path
        and problem.
    """
    from envgym.phone.compiler import compile_scenarios
    from envgym.phone.engine import oracle_success_rate, random_action_smoke
    from envgym.phone.scenarios import load_scenario_file

    try:
        sc = load_scenario_file(path)
        try:
            compiled = compile_scenarios([sc])
            rate = oracle_success_rate(compiled, seeds=8)[0]
            if rate < 1.0:
                raise ScenarioError(
                    str(path),
                    [
                        Problem(
                            "constraints.max_turns",
                            f"the oracle solved only {rate:.0%} of 8 seeded episodes within "
                            f"max_turns={sc.constraints.max_turns} (holds and transfers take "
                            "turns); raise max_turns or shorten the path",
                        )
                    ],
                )
            # What the engine runs beyond the oracle's path: random actions on every path.
            random_action_smoke(compiled)
        except ScenarioError as e:
            # The compiler names the scenario; name the file instead.
            raise ScenarioError(str(path), e.problems) from None
    except ScenarioError as e:
        return False, f"FAIL  {path}\n{e}"
    except Exception as e:  # a compiler or engine bug, not the author's fault: a verdict still
        return (
            False,
            f"FAIL  {path}\ninternal error while compiling: {type(e).__name__}: {e!s:.300}",
        )
    return True, f"OK  {path}  ({sc.name}: {sc.title})"
