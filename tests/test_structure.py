"""The import graph runs down the layers and has no cycles between packages; the package's
functions are at most MAX_FUNCTION_LINES long (LONG_FUNCTIONS_ALLOWED names the exceptions).

Every module of the package (``envgym/`` and ``wrappers/``, installed as ``envgym.wrappers``) is
parsed (no import is executed) and each ``import`` / ``from ... import`` in it, at module level,
inside a function (lazy imports) or under ``TYPE_CHECKING``, becomes an edge between the *units*
it joins: ``envgym.core``, each family package, and each top-level module or package
(``envgym.demo``, ``envgym.distributed``, ...). :data:`LAYERS` places every unit in a layer
(docs/architecture.md, "Layers"); an edge may only point to the same layer or a lower one, and
the unit graph must be acyclic. A new top-level module fails the test until it is given a layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "envgym"
WRAPPERS = REPO / "wrappers"  # package-dir: installed as envgym.wrappers

LAYERS: dict[str, int] = {
    "core": 0,
    "dsl": 1,
    **dict.fromkeys(("phone", "robot", "browser"), 2),
    **dict.fromkeys(("testing", "wrappers", "curriculum", "datasets", "registration"), 3),
    **dict.fromkeys(("distributed", "serve", "remote", "llm"), 4),
    **dict.fromkeys(("cli", "bench", "demo", "envgym"), 5),
}
"""unit -> layer: core <- dsl <- the families <- adapters, datasets and registration <- the
scale-out layers <- the command line and its drivers (``envgym`` is the root package)."""


def module_name(path: Path) -> str:
    """``envgym/phone/faces.py`` -> ``envgym.phone.faces``, ``wrappers/sb3.py`` ->
    ``envgym.wrappers.sb3``; a package's ``__init__`` is the package itself."""
    if path.is_relative_to(WRAPPERS):
        parts = ["envgym", "wrappers", *path.relative_to(WRAPPERS).with_suffix("").parts]
    else:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import statement in ``path``, however deeply nested."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # ``from envgym import demo`` imports envgym.demo
                yield node.lineno, f"{base}.{alias.name}"


def unit(module: str) -> str | None:
    """The unit of an envgym module (``envgym.phone.faces`` -> ``phone``), ``None`` outside
    envgym or for a name that is not a module of it (``from envgym.core import keys`` also
    yields ``envgym.core.keys.<name>`` candidates, which map to the same unit anyway)."""
    parts = module.split(".")
    if parts[0] != "envgym":
        return None
    if len(parts) == 1:
        return "envgym"
    if parts[1] == "wrappers":
        return "wrappers"
    if not ((ROOT / parts[1]).is_dir() or (ROOT / f"{parts[1]}.py").is_file()):
        return None  # a name imported from the root package, e.g. ``__version__``
    return parts[1]


def layer(u: str) -> int:
    """The layer of a unit (see :data:`LAYERS`)."""
    return LAYERS[u]


def sources() -> list[Path]:
    """Every module of the package."""
    return sorted([*ROOT.rglob("*.py"), *WRAPPERS.rglob("*.py")])


def edges() -> dict[tuple[str, str], list[str]]:
    """(from unit, to unit) -> the ``file:line`` sites of that edge (self edges left out)."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sources():
        src = unit(module_name(path))
        assert src is not None
        for line, target in imported_modules(path):
            dst = unit(target)
            if dst is None or dst == src:
                continue
            site = f"{path.relative_to(REPO)}:{line}"
            sites = out.setdefault((src, dst), [])
            if site not in sites:
                sites.append(site)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def package_graph(e: dict[tuple[str, str], list[str]]) -> dict[str, set[str]]:
    """Unit -> the units it imports. The root package ``envgym`` is left out: every module
    imports it implicitly (Python runs a parent package's ``__init__`` first), so an explicit
    ``import envgym`` adds no dependency of its own; its own imports are checked as edges."""
    graph: dict[str, set[str]] = {}
    for src, dst in e:
        if "envgym" not in (src, dst):
            graph.setdefault(src, set()).add(dst)
    return graph


def test_every_unit_has_a_layer() -> None:
    units = {unit(module_name(p)) for p in sources()}
    missing = sorted(u for u in units if u not in LAYERS)
    assert not missing, f"give these units a layer in LAYERS (and docs/architecture.md): {missing}"


def test_no_upward_imports() -> None:
    """No edge runs up a layer. ``import envgym`` (the root package, to register the ids) is
    allowed anywhere: Python has already run the root's ``__init__`` before any module of it."""
    upward = [
        f"{src} (layer {layer(src)}) -> {dst} (layer {layer(dst)}) at {', '.join(sites)}"
        for (src, dst), sites in sorted(edges().items())
        if layer(dst) > layer(src) and dst != "envgym"
    ]
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_cycles_between_packages() -> None:
    e = edges()
    found = cycles(package_graph(e))
    detail = [
        f"{' <-> '.join(c)}: "
        + "; ".join(f"{a}->{b} at {e[a, b][0]}" for a in c for b in c if (a, b) in e)
        for c in found
    ]
    assert not found, "import cycles between packages:\n" + "\n".join(detail)


def test_the_parser_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The scan reaches imports inside functions and under TYPE_CHECKING, and resolves
    relative imports against the module's package."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from envgym.demo import X\n"
        "def f():\n    from ..bench import y\n    import envgym.serve\n"
        "from . import faces\n"
    )
    path = ROOT / "phone" / "_structure_probe.py"
    try:
        path.write_text(src)
        found = {m for _, m in imported_modules(path)}
    finally:
        path.unlink()
    assert {"envgym.demo", "envgym.bench", "envgym.serve", "envgym.phone.faces"} <= found
    assert "envgym.bench.y" in found


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected


MAX_FUNCTION_LINES = 80
"""Functions stay small enough to read whole (issue 16 for the phone family)."""


def long_functions(root: Path, limit: int) -> list[str]:
    """``path:line name (N lines)`` for every function under ``root`` longer than ``limit``
    lines (decorators excluded, docstring included)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit:
                    out.append(f"{path}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_phone_functions_are_short() -> None:
    assert long_functions(ROOT / "phone", MAX_FUNCTION_LINES) == []


# Functions let past the package-wide limit ("path:" prefixes): none today.
LONG_FUNCTIONS_ALLOWED: tuple[str, ...] = ()


def test_functions_are_short() -> None:
    """The same limit outside the phone family (the testing checkers, datasets, benchmarks,
    the robot compiler, ...) and in ``envgym.wrappers``."""
    found = [
        f
        for root in (ROOT, WRAPPERS)
        for f in long_functions(root, MAX_FUNCTION_LINES)
        if not any(f"{REPO}/{allowed}" in f for allowed in LONG_FUNCTIONS_ALLOWED)
    ]
    assert found == []


def test_long_function_finder(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    found = long_functions(tmp_path, MAX_FUNCTION_LINES)
    assert len(found) == 1 and " long (81 lines)" in found[0]
