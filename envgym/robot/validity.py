"""The robot family's validity rule: what ``envgym validate`` checks of a scene file."""

from __future__ import annotations

from pathlib import Path

from envgym.dsl.errors import ScenarioError


def is_robot_scene(path: Path) -> bool:
    """A robot scene lives under a ``robot`` folder or has a ``task`` with a ``kind``."""
    if path.parent.name == "robot":
        return True
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # unreadable: let the phone validator report it
        return False
    return isinstance(data, dict) and isinstance(data.get("task"), dict) and "kind" in data["task"]


def validate_scene_file(path: Path) -> tuple[bool, str]:
    """Load, check and compile one robot scene file (MuJoCo needed for the compile step)."""
    from envgym.robot.scenes import load_scene_file

    try:
        sc = load_scene_file(path)
        try:
            from envgym.robot.compiler import compile_scene

            compile_scene(sc)
        except ImportError:
            pass  # without MuJoCo the DSL checks above are all that can run
    except ScenarioError as e:
        return False, f"FAIL  {path}\n{e}"
    except Exception as e:  # MuJoCo rejected the composed model: still no traceback
        return False, f"FAIL  {path}\ncannot compile the scene: {type(e).__name__}: {e}"
    return True, f"OK  {path}  (robot scene {sc.name}: {sc.task.kind})"
