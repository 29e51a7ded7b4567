"""Find and load robot scenes: shipped names, YAML paths or already-built models."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from envgym.dsl import ScenarioError, load_model
from envgym.dsl.errors import Problem
from envgym.robot.models import RobotScene, check_references

SceneSpec = str | Path | RobotScene


def scene_dir() -> Path:
    """The folder of shipped robot scenes (package data ``envgym/scenarios/robot``)."""
    return Path(str(resources.files("envgym.scenarios") / "robot"))


def asset_dir() -> Path:
    """The folder of shipped robot assets (MJCF files)."""
    return scene_dir() / "assets"


def shipped_names() -> list[str]:
    """Names of the shipped robot scenes, sorted."""
    return sorted(p.stem for p in scene_dir().glob("*.yaml"))


def check_scene(sc: RobotScene, source: str) -> RobotScene:
    """Raise a ``ScenarioError`` naming ``source`` if the scene's cross-references fail."""
    problems = check_references(sc)
    if not (asset_dir() / sc.robot.asset).is_file():
        problems.append(
            Problem("robot.asset", f"no file {sc.robot.asset!r} in {asset_dir()} (shipped assets)")
        )
    if problems:
        raise ScenarioError(source, problems)
    return sc


def load_scene_file(path: str | Path) -> RobotScene:
    """Load and check one YAML scene; errors name the file and the field path."""
    sc = load_model(RobotScene, path)
    if sc.name != Path(path).stem:
        raise ScenarioError(
            str(path), [Problem("name", f"must equal the file name's stem {Path(path).stem!r}")]
        )
    return check_scene(sc, str(path))


def load_scene(ref: SceneSpec) -> RobotScene:
    """A scene from a shipped name, a YAML path or a model."""
    if isinstance(ref, RobotScene):
        return check_scene(ref, f"<scene {ref.name}>")
    s = str(ref)
    if s.endswith((".yaml", ".yml")) or "/" in s:
        return load_scene_file(s)
    path = scene_dir() / f"{s}.yaml"
    if not path.is_file():
        raise ScenarioError(
            s, [Problem("", f"no shipped robot scene named {s!r}; shipped: {shipped_names()}")]
        )
    return load_scene_file(path)
