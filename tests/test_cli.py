"""Tests of the ``mlchecks`` command line (mlchecks/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from mlchecks import cli
from mlchecks.cli import main
from mlchecks.result import Status
from mlchecks.suite import Suite, SuiteResult
from mlchecks.testing import StaticCheck

USER_CHECKS = """
from mlchecks import Finding, Result, Status, Suite


class Passing:
    name = "passing_check"
    rubric = 1

    def run(self, context=None):
        return Result(check=self.name, status=Status.PASS, summary="all good")


class Failing:
    name = "failing_check"
    rubric = 4

    def run(self, context=None):
        finding = Finding(
            "accuracy", Status.FAIL, 0.5, ">= 0.9", "accuracy 0.5 is below the floor 0.9"
        )
        return Result.from_findings(self.name, [finding])


class Crashing:
    name = "crashing_check"
    rubric = None

    def run(self, context=None):
        raise RuntimeError("disk full")


class SeedEcho:
    name = "seed_echo"
    rubric = None

    def run(self, context=None):
        return Result(check=self.name, status=Status.PASS, summary=f"seed={context.seed}")


passing = Passing()
failing = Failing()
crashing = Crashing()
suite = Suite([passing, failing, crashing], name="three_checks")
not_a_check = 42


def make_suite():
    return Suite([passing], name="from_factory")


def needs_arguments(x):
    return x


def raises():
    raise ValueError("bad configuration")


class Namespace:
    inner = Suite([passing], name="nested")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory holding the user's check file; the working directory for the test."""
    (tmp_path / "user_checks.py").write_text(USER_CHECKS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("user_checks", None)  # imported by module-path targets


def _stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert 1 == len(lines), err
    return lines[0]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlchecks", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestRunExitCodes:
    """`mlchecks run` exits 0 on pass, 1 on fail or error, 2 on a usage or import error."""

    def test_suite_with_failing_and_crashing_checks_exits_1(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A suite holding a FAIL and an ERROR exits 1 and prints the report to stdout."""
        assert 1 == main(["run", "user_checks.py:suite", "--no-progress"])
        out = capsys.readouterr().out
        for name in ("passing_check", "failing_check", "crashing_check"):
            assert name in out
        assert "accuracy 0.5 is below the floor 0.9" in out

    def test_passing_check_alone_exits_0(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A single passing check is wrapped in a suite and exits 0."""
        assert 0 == main(["run", "user_checks.py:passing"])
        assert "passing_check" in capsys.readouterr().out

    def test_factory_function_is_called(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A zero-argument callable is called and its Suite is run."""
        assert 0 == main(["run", "user_checks.py:make_suite"])
        assert "from_factory" in capsys.readouterr().out

    def test_check_class_is_instantiated(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A check class whose constructor takes no arguments is instantiated and run."""
        assert 1 == main(["run", "user_checks.py:Failing"])
        assert "failing_check" in capsys.readouterr().out

    def test_dotted_attribute_path(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``name`` may be a dotted attribute path."""
        assert 0 == main(["run", "user_checks.py:Namespace.inner"])
        assert "nested" in capsys.readouterr().out

    def test_module_path_target(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``package.module:name`` imports the module from the working directory."""
        assert 1 == main(["run", "user_checks:suite"])
        assert "three_checks" in capsys.readouterr().out

    def test_installed_module_target(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A module path resolves through the normal import system."""
        assert 2 == main(["run", "mlchecks.testing:StaticCheck"])
        assert "takes arguments" in _stderr_line(capsys)

    def test_target_without_colon_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A TARGET without ``:name`` is a usage error naming the expected forms."""
        assert 2 == main(["run", "x"])
        assert (
            "mlchecks: error: TARGET must look like path/to/file.py:name or "
            "package.module:name (got 'x')"
        ) == _stderr_line(capsys)

    def test_missing_file_exits_2(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that does not exist is one line naming it."""
        assert 2 == main(["run", "nonexistent.py:x"])
        assert "mlchecks: error: file 'nonexistent.py' not found" == _stderr_line(capsys)

    def test_missing_module_exits_2(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A module that does not exist is one line naming it."""
        assert 2 == main(["run", "no_such_package.checks:suite"])
        assert "no module named 'no_such_package'" in _stderr_line(capsys)

    def test_import_error_inside_user_module_is_one_line(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An ImportError raised by the user's module shows its message, not a traceback."""
        (project / "broken.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
        assert 2 == main(["run", "broken.py:suite"])
        line = _stderr_line(capsys)
        assert "importing 'broken.py' raised ModuleNotFoundError" in line
        assert "no_such_dependency_xyz" in line
        assert "--traceback" in line

    def test_traceback_flag_prints_the_traceback(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--traceback`` adds the traceback of an import error."""
        (project / "broken.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
        assert 2 == main(["run", "broken.py:suite", "--traceback"])
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err
        assert err.strip().splitlines()[-1].startswith("mlchecks: error: importing 'broken.py'")

    def test_syntax_error_in_user_module_exits_2(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A syntax error in the user's file is a one-line import error."""
        (project / "syntax.py").write_text("def f(:\n", encoding="utf-8")
        assert 2 == main(["run", "syntax.py:suite"])
        assert "SyntaxError" in _stderr_line(capsys)

    def test_missing_attribute_lists_candidates(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing attribute is named, with the Suites and Checks the module does define."""
        assert 2 == main(["run", "user_checks.py:siute"])
        assert (
            "mlchecks: error: 'user_checks.py' has no attribute 'siute' "
            "(Suites and Checks there: crashing, failing, passing, suite)"
        ) == _stderr_line(capsys)

    def test_missing_nested_attribute(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing part of a dotted path is named with its owner."""
        assert 2 == main(["run", "user_checks.py:Namespace.outer"])
        assert "user_checks.py:Namespace has no attribute 'outer'" in _stderr_line(capsys)

    def test_not_a_check_exits_2(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An object that is neither a Suite nor a Check is a usage error."""
        assert 2 == main(["run", "user_checks.py:not_a_check"])
        assert "is not a Suite or a Check (got 42 that is a int)" in _stderr_line(capsys)

    def test_factory_needing_arguments_exits_2(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A callable that needs arguments is rejected before it is called."""
        assert 2 == main(["run", "user_checks.py:needs_arguments"])
        assert "takes arguments" in _stderr_line(capsys)

    def test_factory_that_raises_exits_2(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An exception raised by the factory is a one-line error."""
        assert 2 == main(["run", "user_checks.py:raises"])
        assert (
            "calling 'user_checks.py:raises' raised ValueError: bad configuration"
            in _stderr_line(capsys)
        )

    def test_missing_target_argument_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Leaving out TARGET is a one-line usage error."""
        assert 2 == main(["run"])
        assert "required: TARGET" in _stderr_line(capsys)

    def test_invalid_workers_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``--workers 0`` is rejected."""
        assert 2 == main(["run", "user_checks.py:suite", "--workers", "0"])
        assert "must be >= 1 (got 0)" in _stderr_line(capsys)


class TestRunOptions:
    """The run options: seed, workers, fail-fast, quiet, sibling imports."""

    def test_seed_reaches_the_context(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--seed`` is the seed of the Context the checks receive."""
        assert 0 == main(["run", "user_checks.py:SeedEcho", "--seed", "17"])
        assert "seed=17" in capsys.readouterr().out

    def test_workers_run_every_check(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With a thread pool the suite still reports every check in order."""
        assert 1 == main(["run", "user_checks.py:suite", "--workers", "3", "--json", "r.json"])
        result = SuiteResult.from_json((project / "r.json").read_text(encoding="utf-8"))
        assert ["passing_check", "failing_check", "crashing_check"] == [r.check for r in result]

    def test_fail_fast_skips_the_rest(self, project: Path) -> None:
        """``--fail-fast`` stops at the failing check; the crashing one is SKIP."""
        assert 1 == main(["run", "user_checks.py:suite", "--fail-fast", "--json", "r.json"])
        result = SuiteResult.from_json((project / "r.json").read_text(encoding="utf-8"))
        assert Status.SKIP == result["crashing_check"].status

    def test_quiet_prints_one_line(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``--quiet`` prints only the report's summary line."""
        assert 1 == main(["run", "user_checks.py:suite", "--quiet", "--json", "r.json"])
        captured = capsys.readouterr()
        assert 1 == len(captured.out.strip().splitlines())
        assert "three_checks" in captured.out
        assert "" == captured.err

    def test_sibling_modules_import(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file in another directory can import the modules next to it."""
        package = project / "checks_dir"
        package.mkdir()
        (package / "helper_for_cli_test.py").write_text(
            "from mlchecks.testing import StaticCheck\nCHECK = StaticCheck('from_sibling')\n",
            encoding="utf-8",
        )
        (package / "entry.py").write_text(
            "from helper_for_cli_test import CHECK\n", encoding="utf-8"
        )
        before = list(sys.path)
        try:
            assert 0 == main(["run", "checks_dir/entry.py:CHECK"])
        finally:
            sys.modules.pop("helper_for_cli_test", None)
        assert "from_sibling" in capsys.readouterr().out
        assert before == sys.path


class TestReportFiles:
    """``--json/--junit/--html/--markdown`` write the reports through SuiteResult."""

    def test_all_reports_written_and_parsable(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each requested file is written, parses, and is announced on stderr."""
        args = ["--json", "out/r.json", "--junit", "out/r.xml"]
        args += ["--html", "out/r.html", "--markdown", "out/r.md"]
        assert 1 == main(["run", "user_checks.py:suite", *args])
        err = capsys.readouterr().err
        for name in ("r.json", "r.xml", "r.html", "r.md"):
            assert f"wrote out/{name}" in err
        data = json.loads((project / "out/r.json").read_text(encoding="utf-8"))
        assert "three_checks" == data["name"]
        root = ET.fromstring((project / "out/r.xml").read_text(encoding="utf-8"))
        cases = [case.get("name") for case in root.iter("testcase")]
        assert ["passing_check", "failing_check", "crashing_check"] == cases
        for name in ("r.html", "r.md"):
            assert "failing_check" in (project / "out" / name).read_text(encoding="utf-8")

    def test_json_to_stdout(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``--json -`` prints the JSON instead of the text report."""
        assert 1 == main(["run", "user_checks.py:suite", "--json", "-"])
        data = json.loads(capsys.readouterr().out)
        assert "error" == data["status"]

    def test_unwritable_report_exits_2(
        self, project: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A report path that cannot be written is a one-line error."""
        (project / "taken").write_text("a file, not a directory", encoding="utf-8")
        assert 2 == main(["run", "user_checks.py:passing", "--quiet", "--json", "taken/r.json"])
        captured = capsys.readouterr()
        assert "cannot write the json report to 'taken/r.json'" in captured.err


class TestScore:
    """`mlchecks score` prints the ML Test Score of a JSON report."""

    def test_score_of_a_run(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The table names each rubric test, its points and how it earned them, then the total."""
        main(["run", "user_checks.py:suite", "--quiet", "--json", "r.json"])
        capsys.readouterr()
        assert 0 == main(["score", "r.json"])
        out = capsys.readouterr().out
        assert "1  Training is reproducible" in out
        assert "1.0  automated: passing_check (PASS)" in out
        assert "0.0  automated: failing_check (FAIL)" in out
        assert "not covered" in out
        assert out.strip().splitlines()[-1].startswith("Total: 1 / 7 rubric tests. ")

    def test_score_as_json(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``--json`` prints MLTestScore.to_dict() as JSON."""
        main(["run", "user_checks.py:suite", "--quiet", "--json", "r.json"])
        capsys.readouterr()
        assert 0 == main(["score", "r.json", "--json"])
        data = json.loads(capsys.readouterr().out)
        assert 1.0 == data["total"]
        assert 1.0 == data["points"]["1"]

    def test_manual_tests_are_noted(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A rubric test declared manual earns 0.5 and shows its note."""
        suite = Suite([StaticCheck("repro", rubric=1)], name="m", manual={7: "runbook"})
        path = tmp_path / "r.json"
        path.write_text(suite.run(progress=False).to_json(), encoding="utf-8")
        assert 0 == main(["score", str(path)])
        out = capsys.readouterr().out
        assert "0.5  done by hand: runbook" in out
        assert "Total: 1.5 / 7 rubric tests." in out

    def test_missing_file_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that cannot be read is one line."""
        assert 2 == main(["score", str(tmp_path / "missing.json")])
        assert "cannot read" in _stderr_line(capsys)

    def test_not_a_report_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that is not a mlchecks JSON report is one line."""
        path = tmp_path / "r.json"
        path.write_text("{not json", encoding="utf-8")
        assert 2 == main(["score", str(path)])
        assert "is not a mlchecks JSON report" in _stderr_line(capsys)


class TestHelpAndVersion:
    """``--help`` works for every command and ``--version`` prints the version."""

    @pytest.mark.parametrize("command", [[], ["run"], ["demo"], ["score"]])
    def test_help_exits_0(self, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """``--help`` prints usage to stdout and exits 0."""
        assert 0 == main([*command, "--help"])
        assert "usage: mlchecks" in capsys.readouterr().out

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``--version`` prints the installed version."""
        from mlchecks import __version__

        assert 0 == main(["--version"])
        assert f"mlchecks {__version__}" == capsys.readouterr().out.strip()

    def test_no_command_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No subcommand is a usage error."""
        assert 2 == main([])
        assert "required: COMMAND" in _stderr_line(capsys)


class TestSubprocess:
    """``python -m mlchecks`` gives the real exit codes and clean stderr."""

    def test_exit_codes(self, project: Path) -> None:
        """Suite -> 1, passing check -> 0, missing file -> 2 with one line and no traceback."""
        failed = _cli("run", "user_checks.py:suite", cwd=project)
        assert 1 == failed.returncode, failed.stderr
        assert "failing_check" in failed.stdout
        assert "" == failed.stderr  # stderr is not a terminal: no progress

        passed = _cli("run", "user_checks.py:passing", cwd=project)
        assert 0 == passed.returncode, passed.stderr

        missing = _cli("run", "nonexistent.py:x", cwd=project)
        assert 2 == missing.returncode
        assert "" == missing.stdout
        assert ["mlchecks: error: file 'nonexistent.py' not found"] == (
            missing.stderr.strip().splitlines()
        )
        assert "Traceback" not in missing.stderr

    def test_typo_in_target_has_no_traceback(self, project: Path) -> None:
        """A typo in the attribute name is one line, without a traceback."""
        typo = _cli("run", "user_checks.py:siute", cwd=project)
        assert 2 == typo.returncode
        assert 1 == len(typo.stderr.strip().splitlines())
        assert "Traceback" not in typo.stderr


@attrs.frozen
class FakeFault:
    """A stand-in for mlchecks.demo.Fault."""

    name: str
    description: str
    check: str
    rubric: int | None = None


class FakeDemo:
    """A stand-in for the demo's build_suite that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, int]] = []

    def __call__(self, fault: str | None, seed: int) -> Suite:
        self.calls.append((fault, seed))
        status = Status.FAIL if fault == "nondeterministic_init" else Status.PASS
        return Suite(
            [StaticCheck("reproducibility", status, rubric=1), StaticCheck("rollback", rubric=7)],
            name="demo",
        )


FAULTS = {
    "nondeterministic_init": FakeFault(
        "nondeterministic_init", "weights initialised without the seed", "reproducibility", 1
    ),
    "slow_rollback": FakeFault("slow_rollback", "old version takes 5 s to load", "rollback", 7),
}


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> FakeDemo:
    """Replace the demo seam with a fake suite builder and fault table."""
    fake = FakeDemo()
    loader: Callable[[], tuple[Any, Any]] = lambda: (fake, FAULTS)  # noqa: E731
    monkeypatch.setattr(cli, "_load_demo", loader)
    return fake


class TestDemo:
    """`mlchecks demo` runs the embedded system, optionally with an injected fault."""

    def test_runs_without_fault(self, demo: FakeDemo, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --fault the builder gets None and the seed; report and score print."""
        assert 0 == main(["demo", "--seed", "3"])
        assert [(None, 3)] == demo.calls
        out = capsys.readouterr().out
        assert "reproducibility" in out
        assert "Total: 2 / 7 rubric tests." in out

    def test_fault_is_passed_to_build_suite(
        self, demo: FakeDemo, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--fault reaches build_suite; the check that catches it fails the run."""
        assert 1 == main(["demo", "--fault", "nondeterministic_init"])
        assert [("nondeterministic_init", 0)] == demo.calls
        out = capsys.readouterr().out
        assert "Fault 'nondeterministic_init' was caught: 'reproducibility' returned FAIL." in out

    def test_uncaught_fault_is_reported(
        self, demo: FakeDemo, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A fault the matching check misses is said to be NOT caught."""
        assert 0 == main(["demo", "--fault", "slow_rollback"])
        assert "was NOT caught" in capsys.readouterr().out

    def test_list_faults(self, demo: FakeDemo, capsys: pytest.CaptureFixture[str]) -> None:
        """--list-faults prints name, target check and description, one fault a line."""
        assert 0 == main(["demo", "--list-faults"])
        lines = capsys.readouterr().out.strip().splitlines()
        assert [
            "nondeterministic_init  reproducibility  weights initialised without the seed",
            "slow_rollback          rollback         old version takes 5 s to load",
        ] == lines
        assert [] == demo.calls

    def test_unknown_fault_exits_2(
        self, demo: FakeDemo, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown fault is a one-line usage error listing the known ones."""
        assert 2 == main(["demo", "--fault", "cosmic_rays"])
        assert (
            "mlchecks: error: unknown fault 'cosmic_rays' "
            "(known faults: nondeterministic_init, slow_rollback)"
        ) == _stderr_line(capsys)
        assert [] == demo.calls

    def test_demo_writes_reports(
        self, demo: FakeDemo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo writes report files like `run`."""
        path = tmp_path / "demo.json"
        assert 0 == main(["demo", "--json", str(path)])
        assert "demo" == json.loads(path.read_text(encoding="utf-8"))["name"]


class TestSplitTarget:
    """split_target() separates the module or file from the attribute path."""

    @pytest.mark.parametrize(
        ("target", "expected"),
        [
            ("a.py:s", ("a.py", "s")),
            ("pkg.mod:make.suite", ("pkg.mod", "make.suite")),
            ("C:/x/a.py:s", ("C:/x/a.py", "s")),
        ],
    )
    def test_valid(self, target: str, expected: tuple[str, str]) -> None:
        """The last colon separates the two parts."""
        assert expected == cli.split_target(target)

    @pytest.mark.parametrize("target", ["x", "a.py:", ":s", "a.py:my-suite", "a.py:s."])
    def test_invalid(self, target: str) -> None:
        """A missing or malformed side is a UsageError quoting the target."""
        with pytest.raises(cli.UsageError, match=r"TARGET must look like"):
            cli.split_target(target)
