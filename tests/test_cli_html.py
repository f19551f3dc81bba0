"""Tests for the HTML report written by the command line: a warning when figures are missing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlchecks.cli import main

WARNING = 'mlchecks: warning: figures need matplotlib: pip install "mlchecks-infra[plot]"'

#: A target with one check that has built-in figures, and one without figure data.
TARGETS = """
from mlchecks import Status, Suite
from mlchecks.demo.suite import build_suite
from mlchecks.testing import StaticCheck

loss = Suite([c for c in build_suite(None, 0).checks if c.name == "loss_decreases"], name="loss")
plain = Suite([StaticCheck("plain", Status.PASS)], name="plain")
"""

#: Runs the command line with matplotlib unimportable, as on an install without the extra.
NO_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None; from mlchecks.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory holding ``plot_targets.py``; the working directory for the test."""
    (tmp_path / "plot_targets.py").write_text(TARGETS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("plot_targets", None)  # imported by the in-process run


def without_matplotlib(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mlchecks ARGS`` in a fresh interpreter where ``import matplotlib`` fails."""
    return subprocess.run(
        [sys.executable, "-c", NO_MATPLOTLIB, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class TestFiguresWarning:
    def test_run_without_matplotlib_warns_once(self, targets: Path) -> None:
        """`mlchecks run --html` says on one stderr line that figures need matplotlib."""
        done = without_matplotlib(
            "run", "plot_targets.py:loss", "--html", "report.html", "--no-progress", cwd=targets
        )
        assert 0 == done.returncode, done.stderr
        assert [WARNING, "wrote report.html"] == done.stderr.splitlines()
        page = (targets / "report.html").read_text(encoding="utf-8")
        assert "install <code>mlchecks-infra[plot]</code>" in page
        assert "<svg" not in page

    def test_demo_without_matplotlib_warns(self, tmp_path: Path) -> None:
        """`mlchecks demo --html` warns too, also with --quiet (the page lacks its figures)."""
        done = without_matplotlib(
            "demo", "--html", str(tmp_path / "demo.html"), "--quiet", cwd=tmp_path
        )
        assert 0 == done.returncode, done.stderr
        assert [WARNING] == done.stderr.splitlines()

    def test_other_reports_do_not_warn(self, targets: Path) -> None:
        """Without --html nothing is said about figures."""
        done = without_matplotlib(
            "run", "plot_targets.py:loss", "--json", "-", "--no-progress", cwd=targets
        )
        assert 0 == done.returncode, done.stderr
        assert "" == done.stderr

    def test_no_warning_when_nothing_needs_a_figure(self, targets: Path) -> None:
        """A suite whose checks have no figures gets no warning, matplotlib or not."""
        done = without_matplotlib(
            "run", "plot_targets.py:plain", "--html", "-", "--no-progress", cwd=targets
        )
        assert 0 == done.returncode, done.stderr
        assert "" == done.stderr
        assert done.stdout.startswith("<!doctype html>")

    def test_no_warning_with_matplotlib(
        self, targets: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With matplotlib installed the report has its figures and stderr no warning."""
        pytest.importorskip("matplotlib")
        assert 0 == main(["run", "plot_targets.py:loss", "--html", "report.html", "--quiet"])
        assert "" == capsys.readouterr().err
        assert "<svg" in (targets / "report.html").read_text(encoding="utf-8")
