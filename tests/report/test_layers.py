"""The report layer depends on results, never on suites: no import cycle in the core."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlchecks

PACKAGE = Path(mlchecks.__file__).parent
CORE = ("mlchecks.result", "mlchecks.suite", "mlchecks.score", "mlchecks.report")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
REPORT_MODULES = sorted(m for m in MODULES if m.startswith("mlchecks.report"))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run on import (``if TYPE_CHECKING:`` blocks left out)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node):
                out += _top_level(node.body) + _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            out += _top_level(node.body) + _top_level(node.orelse) + _top_level(node.finalbody)
            for handler in node.handlers:
                out += _top_level(handler.body)
        else:
            out.append(node)
    return out


def imports(module: str) -> set[str]:
    """The mlchecks modules ``module`` imports at module level (what runs on import)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _top_level(tree.body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES and m != module}


def cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph = {m: imports(m) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


class TestLayers:
    def test_report_modules_do_not_import_suite(self) -> None:
        """Importing every report module (in a fresh process) leaves mlchecks.suite unloaded."""
        code = (
            "import importlib, json, sys\n"
            f"for name in {REPORT_MODULES!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mlchecks'))))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        )
        loaded = json.loads(done.stdout)
        assert set(REPORT_MODULES) <= set(loaded)
        assert "mlchecks.suite" not in loaded

    @pytest.mark.parametrize("module", REPORT_MODULES)
    def test_no_module_level_import_of_suite(self, module: str) -> None:
        """No report module imports mlchecks.suite at module level (only under TYPE_CHECKING)."""
        assert "mlchecks.suite" not in imports(module)

    def test_no_cycle_among_result_suite_and_report(self) -> None:
        """The module-level imports of result, score, suite and report form no cycle."""
        core = [c for c in cycles() if any(m.startswith(CORE) for m in c)]
        assert [] == core
