"""Find, load and resolve phone scenarios: shipped names, YAML paths, lists, generated sets."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from envgym.dsl import ScenarioError, load_model
from envgym.dsl.errors import Problem
from envgym.phone.models import PhoneScenario, check_references

ScenarioSpec = str | Path | PhoneScenario | Sequence[str | Path | PhoneScenario]


def scenario_dir() -> Path:
    """The folder of shipped phone scenarios (package data ``envgym/scenarios/phone``)."""
    return Path(str(resources.files("envgym.scenarios") / "phone"))


def shipped_names() -> list[str]:
    """Names of the shipped phone scenarios, sorted."""
    return sorted(p.stem for p in scenario_dir().glob("*.yaml"))


def load_scenario_file(path: str | Path) -> PhoneScenario:
    """Load and check one YAML scenario; errors name the file and the field path."""
    sc = load_model(PhoneScenario, path)
    problems = check_references(sc)
    if sc.name != Path(path).stem:
        problems.append(Problem("name", f"must equal the file name's stem {Path(path).stem!r}"))
    if problems:
        raise ScenarioError(str(path), problems)
    return sc


def load_scenario(ref: str | Path | PhoneScenario) -> PhoneScenario:
    """A scenario from a shipped name, a YAML path or an already-built model."""
    if isinstance(ref, PhoneScenario):
        return ref
    s = str(ref)
    if s.endswith((".yaml", ".yml")) or "/" in s or Path(s).is_file():
        return load_scenario_file(s)
    path = scenario_dir() / f"{s}.yaml"
    if not path.is_file():
        raise ScenarioError(
            s,
            [
                Problem(
                    "",
                    f"no shipped phone scenario named {s!r}; shipped: {shipped_names()} "
                    "(or give a path to a .yaml file, or 'generated')",
                )
            ],
        )
    return load_scenario_file(path)


def resolve_scenarios(
    scenario: ScenarioSpec = "isp_bill_discount",
    difficulty: int = 1,
    num_generated: int = 32,
    generator_seed: int = 0,
) -> list[PhoneScenario]:
    """Turn the ``scenario=`` argument of the phone envs into a list of scenarios.

    Args:
        scenario: a shipped name, a YAML path, a model, a list of those, ``"all"`` (every
            shipped scenario but ``mock``) or ``"generated"``.
        difficulty: for ``"generated"``: the generator's difficulty dial (0-4).
        num_generated: for ``"generated"``: how many scenarios to generate.
        generator_seed: for ``"generated"``: seed of the first generated scenario.
    """
    if isinstance(scenario, str) and scenario == "generated":
        from envgym.phone.generator import generate_scenario

        if num_generated < 1:
            raise ValueError(f"num_generated must be >= 1, got {num_generated}")
        return [generate_scenario(generator_seed + i, difficulty) for i in range(num_generated)]
    if isinstance(scenario, str) and scenario == "all":
        return [load_scenario(n) for n in shipped_names() if n != "mock"]
    if isinstance(scenario, str | Path | PhoneScenario):
        return [load_scenario(scenario)]
    items = list(scenario)
    if not items:
        raise ValueError("scenario list is empty")
    return [load_scenario(x) for x in items]
