"""The package's layering, as pyproject.toml declares it (import-linter contracts) and docs/architecture.md draws it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_declared_import_contracts_hold():
    """`lint-imports` checks every import, a function's lazy ones included: no layer imports one above it."""
    script = Path(sys.executable).parent / "lint-imports"  # import-linter's command, installed beside python
    run = subprocess.run([str(script), "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"Contracts: (\d+) kept, 0 broken", run.stdout), run.stdout[-2000:]


def import_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(imports.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return cycles


@pytest.mark.parametrize("imports, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d2"}, "d2": {"d"}}, [["a", "b", "c"], ["d", "d2"]]),
])
def test_the_cycle_finder_finds_cycles(imports, expected):
    assert sorted(import_cycles(imports)) == expected


def test_no_module_of_bench_takes_part_in_an_import_cycle():
    graph = grimp.build_graph("bench")
    imports = {module: {other for other in graph.find_modules_directly_imported_by(module) if other.startswith("bench")}
               for module in graph.modules}
    assert import_cycles(imports) == []


def test_the_top_level_is_a_handful_of_packages():
    """The tree shows the architecture: the layers are packages; only the entry points are modules."""
    package = ROOT / "bench"
    modules = sorted(path.name for path in package.glob("*.py"))
    packages = sorted(path.name for path in package.iterdir() if (path / "__init__.py").is_file())
    assert modules == ["__init__.py", "__main__.py", "cli.py"]
    assert packages == ["config", "data", "evaluation", "models", "perf", "report", "reproduce", "run", "sweep",
                        "training"]
