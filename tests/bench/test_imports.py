"""Imports run one way: CLI -> planning/executors -> unit -> cell -> training/graphs/architectures/tasks,
and reports read run records, never the runner."""
import ast
from pathlib import Path

from bench import defaults

BENCH = defaults.PROJECT_ROOT / "bench"
RUNNER = {"bench.grid", "bench.executors", "bench.unit", "bench.cell", "bench.tracking", "bench.claims"}


def _module(path: Path) -> str:
    parts = path.relative_to(defaults.PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every bench module ``path`` imports, at any depth (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("bench"))
    return names


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in BENCH.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_reports_never_import_the_runner():
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith("bench.report") and name != "bench.report.cli":
            assert not deps & RUNNER, f"{name} imports {sorted(deps & RUNNER)}: reports read records only"
    for name in ("bench.records", "bench.records.store", "bench.records.recordset", "bench.records.build",
                 "bench.cells", "bench.fingerprint"):
        assert not graph[name] & RUNNER, name


def test_no_import_cycle_through_the_grid_its_executors_and_the_reports():
    graph = _graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for dep in graph.get(node, ()):
                if dep == goal:
                    return True
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return False

    for name in ("bench.grid", "bench.executors", "bench.unit", "bench.cell", "bench.cells", "bench.report.runs"):
        assert not reaches(name, name), f"{name} imports itself through other modules"
    assert not reaches("bench.executors", "bench.grid") and not reaches("bench.unit", "bench.executors")
