"""The package builds, and the wheel installed in a fresh environment runs the demo."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


@pytest.mark.integration
class TestPackaging:
    def test_wheel_holds_the_package_and_its_marker(self, dist: Path) -> None:
        """The wheel ships every module, py.typed and the console script and pytest plugin."""
        (wheel,) = dist.glob("mlchecks_infra-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            entry_points = next(n for n in names if n.endswith("entry_points.txt"))
            text = archive.read(entry_points).decode()
        assert "mlchecks/py.typed" in names
        assert "mlchecks/checks/canary.py" in names
        assert not [n for n in names if n.startswith("tests/")]
        assert "mlchecks = mlchecks.cli:main" in text
        assert "mlchecks = mlchecks_pytest" in text
        assert "mlchecks_pytest/__init__.py" in names

    def test_sdist_holds_tests_docs_and_examples(self, dist: Path) -> None:
        """The sdist is enough to run the tests and read the docs."""
        (sdist,) = dist.glob("mlchecks_infra-*.tar.gz")
        with tarfile.open(sdist) as archive:
            names = archive.getnames()
        for part in ("tests/test_suite.py", "docs/index.md", "examples/custom_check.py"):
            assert any(n.endswith(part) for n in names), part

    def test_the_distribution_name_installs_this_project(self, dist: Path, tmp_path: Path) -> None:
        """In a fresh virtual environment, the docs' install line (the distribution name with
        an extra, found among the built wheels) installs this project: it runs the demo."""
        env = tmp_path / "venv"
        venv.create(env, with_pip=True)
        python = env / "bin" / "python"
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--find-links",
                str(dist),
                "mlchecks-infra[progress]",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        demo = subprocess.run(
            [str(env / "bin" / "mlchecks"), "demo", "--no-progress"],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert 0 == demo.returncode, demo.stdout + demo.stderr
        assert "ML Test Score (infrastructure): 7 / 7" in demo.stdout
