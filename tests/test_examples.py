"""The scripts and the notebook in examples/ run as a user would run them, and gate correctly.

Each script runs in a subprocess (in a scratch directory, with a timeout) and must exit with
0 when its checks pass and 1 when a planted fault makes one fail. The notebook is executed
with nbclient; its report cell must render the suite as HTML.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(
    name: str, *args: str, cwd: Path, timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` with this interpreter in ``cwd``; its output as text."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})},
        check=False,
    )


def explain(done: subprocess.CompletedProcess[str]) -> str:
    """The output of a finished example, for assertion messages."""
    return f"exit code {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def requires(module: str, why: str) -> pytest.MarkDecorator:
    """Skip unless ``module`` can be imported (without importing it here)."""
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=why)


def mlserver_executable() -> str | None:
    """``$MLCHECKS_MLSERVER`` or ``mlserver`` on PATH, as the MLServer example looks it up."""
    configured = os.environ.get("MLCHECKS_MLSERVER")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("mlserver")


def test_every_example_is_tested() -> None:
    """Each file in examples/ has a test here, so a new example cannot go untested."""
    tested = {
        "custom_check.py",
        "mlserver_canary_rollback.py",
        "pytorch_training_script.py",
        "quickstart.ipynb",
        "sklearn_quality_gate.py",
    }
    assert tested == {p.name for p in EXAMPLES.iterdir() if p.suffix in {".py", ".ipynb"}}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_scripts_say_what_they_show_and_how_to_run_them(path: Path) -> None:
    """Every script starts with a docstring that has a command line to run it."""
    import ast

    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring is not None
    assert f"python examples/{path.name}" in docstring


@requires("sklearn", "scikit-learn is not installed (pip install scikit-learn)")
class TestSklearnQualityGate:
    def test_healthy_candidate_passes_the_gate(self, tmp_path: Path) -> None:
        """A retrained model as good as production passes; the JUnit and Markdown say so."""
        summary = tmp_path / "step_summary.md"
        done = run_example(
            "sklearn_quality_gate.py",
            "--junit",
            "reports/junit.xml",
            "--markdown",
            "reports/summary.md",
            cwd=tmp_path,
            env={"GITHUB_STEP_SUMMARY": str(summary)},
        )
        assert 0 == done.returncode, explain(done)
        assert "PASS" in done.stdout.splitlines()[0]
        suite = ET.parse(tmp_path / "reports" / "junit.xml").getroot().find("testsuite")
        assert suite is not None
        assert ("1", "0", "0") == (suite.get("tests"), suite.get("failures"), suite.get("errors"))
        markdown = (tmp_path / "reports" / "summary.md").read_text(encoding="utf-8")
        assert "PASS" in markdown
        assert markdown == summary.read_text(encoding="utf-8")

    def test_planted_regression_fails_the_gate(self, tmp_path: Path) -> None:
        """The broken join in region 'east' fails the gate with exit code 1 and a JUnit failure."""
        done = run_example(
            "sklearn_quality_gate.py", "--plant-regression", "--junit", "junit.xml", cwd=tmp_path
        )
        assert 1 == done.returncode, explain(done)
        assert "region=east" in done.stdout
        failure = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite/testcase/failure")
        assert failure is not None
        assert "region=east" in (failure.text or "")


class TestCustomCheck:
    def test_healthy_model_passes(self, tmp_path: Path) -> None:
        """The user's calibration check runs in a suite with the built-in checks and passes."""
        done = run_example("custom_check.py", cwd=tmp_path)
        assert 0 == done.returncode, explain(done)
        assert "PASS" in done.stdout.splitlines()[0]
        assert "calibration" in done.stdout
        assert "ML Test Score (infrastructure): 2 / 7" in done.stdout

    def test_overconfident_model_fails_only_the_custom_check(self, tmp_path: Path) -> None:
        """A wrong serving temperature keeps accuracy and fails only the calibration check."""
        done = run_example("custom_check.py", "--plant-fault", cwd=tmp_path)
        assert 1 == done.returncode, explain(done)
        rows = {
            words[1]: words[0]
            for words in map(str.split, done.stdout.splitlines()[1:])
            if words and words[0] in {"PASS", "FAIL"}
        }
        assert {"reproducibility": "PASS", "quality": "PASS", "calibration": "FAIL"} == rows


@pytest.mark.integration
@pytest.mark.skipif(
    mlserver_executable() is None,
    reason="MLServer not found: install mlserver and mlserver-sklearn into a separate virtual "
    "environment and set MLCHECKS_MLSERVER to its bin/mlserver",
)
class TestMLServerCanaryRollback:
    def test_drill_passes(self, tmp_path: Path) -> None:
        """Against a real MLServer the healthy candidate passes the canary and rolls back."""
        done = run_example("mlserver_canary_rollback.py", cwd=tmp_path, timeout=240)
        assert 0 == done.returncode, explain(done)
        assert "PASS (2 checks: 2 passed)" in done.stdout.splitlines()[0]
        assert "Rolled back to version '1' 3 times" in done.stdout

    @pytest.mark.slow
    def test_skewed_candidate_fails_the_canary(self, tmp_path: Path) -> None:
        """A candidate that disagrees with the live version request by request fails the trickle."""
        done = run_example(
            "mlserver_canary_rollback.py", "--plant-fault", cwd=tmp_path, timeout=240
        )
        assert 1 == done.returncode, explain(done)
        assert "FAIL   canary" in done.stdout
        assert "trickle.disagreement" in done.stdout


@pytest.mark.integration
@requires("torch", "torch is not installed (pip install 'mlchecks-infra[torch]')")
class TestPyTorchTrainingScript:
    def test_training_script_passes_its_checks(self, tmp_path: Path) -> None:
        """The preflight checks pass, the model trains, and the quality gate lets it export."""
        done = run_example("pytorch_training_script.py", cwd=tmp_path, timeout=240)
        assert 0 == done.returncode, explain(done)
        assert (tmp_path / "model.pt").is_file()

    def test_planted_bug_stops_the_script(self, tmp_path: Path) -> None:
        """A checkpoint that forgets the optimizer stops the script before training."""
        done = run_example("pytorch_training_script.py", "--plant-fault", cwd=tmp_path, timeout=240)
        assert 1 == done.returncode, explain(done)
        assert not (tmp_path / "model.pt").exists()


@pytest.mark.integration
@requires("nbclient", "nbclient is not installed (pip install nbclient nbformat ipykernel)")
@requires("ipykernel", "ipykernel is not installed (pip install nbclient nbformat ipykernel)")
@requires("sklearn", "scikit-learn is not installed (pip install scikit-learn)")
class TestQuickstartNotebook:
    def test_notebook_renders_the_report(self, tmp_path: Path) -> None:
        """Every cell runs, and the report cell shows the suite as HTML with the score."""
        import nbformat
        from nbclient import NotebookClient

        notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)  # type: ignore[no-untyped-call]
        assert all(not cell.get("outputs") for cell in notebook.cells)  # stored without outputs
        client = NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
        (report,) = [c for c in notebook.cells if "report" in c.metadata.get("tags", [])]
        (shown,) = [o for o in report.outputs if o.output_type == "execute_result"]
        html = shown.data["text/html"]
        assert "ML Test Score" in html
        assert "PASS" in html
        assert "reproducibility" in html
        assert "quality" in html
