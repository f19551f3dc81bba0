"""Each piece of logic lives in its layer, and no module grows past what a reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlchecks"
MAX_LINES = 600
MODULES = sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every mlchecks module ``path`` imports, at any depth (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mlchecks"))
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlchecks")
        ):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_module_over_600_lines(path: Path) -> None:
    """Every module of the package has at most 600 lines."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines"


@pytest.mark.parametrize("path", sorted((PACKAGE / "stats").glob("*.py")), ids=_rel)
def test_stats_holds_kernels_only(path: Path) -> None:
    """stats/ imports no check, server, report or demo code: it holds kernels only."""
    layers = (
        "mlchecks.checks",
        "mlchecks.serving",
        "mlchecks.report",
        "mlchecks.demo",
        "mlchecks.suite",
    )
    bad = sorted(m for m in _imports(path) if m.startswith(layers))
    assert [] == bad


def test_validation_lives_at_the_package_root() -> None:
    """Validation is the whole package's, not a statistics module's."""
    assert (PACKAGE / "_validate.py").exists()
    assert not (PACKAGE / "stats" / "_validate.py").exists()
    users = [p for p in MODULES if "mlchecks.stats._validate" in _imports(p)]
    assert [] == users
