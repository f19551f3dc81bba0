"""Tests of the pytest integration: mlchecks/testing.py under pytest and mlchecks/pytest_plugin.py.

Each test writes a small test module and runs pytest on it in-process with ``pytester``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlchecks import __version__
from mlchecks.result import Finding, Result, Status
from mlchecks_pytest import pytest_assertrepr_compare

SUITE_MODULE = """
from mlchecks import Finding, Result, Status, Suite
from mlchecks.testing import StaticCheck, assert_passes, parametrize_with_checks


class Drifting:
    name = "bad_check"
    rubric = 4

    def run(self, context=None):
        finding = Finding(
            "accuracy", Status.FAIL, 0.71, ">= 0.9", "accuracy 0.71 is below the floor 0.9"
        )
        return Result.from_findings(self.name, [finding], rubric=self.rubric)


SUITE = Suite([StaticCheck("good_check", Status.PASS, rubric=1), Drifting()], name="system")
"""


def _write_tests(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_ml_system_under_check=SUITE_MODULE + body)


class TestParametrizeWithChecks:
    """One pytest test per check, with the check's name as the id."""

    def test_one_test_per_check_with_name_ids(self, pytester: pytest.Pytester) -> None:
        """A passing and a failing check give 1 passed and 1 failed test, ids from names."""
        _write_tests(
            pytester,
            """
@parametrize_with_checks(SUITE)
def test_ml_system(check):
    assert_passes(check)
""",
        )
        result = pytester.runpytest("-v")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*test_ml_system?good_check? PASSED*",
                "*test_ml_system?bad_check? FAILED*",
            ]
        )

    def test_k_selects_by_name(self, pytester: pytest.Pytester) -> None:
        """``-k good_check`` runs only that check."""
        _write_tests(
            pytester,
            """
@parametrize_with_checks(SUITE)
def test_ml_system(check):
    assert_passes(check)
""",
        )
        result = pytester.runpytest("-k", "good_check")
        result.assert_outcomes(passed=1, deselected=1)

    def test_expected_failed_is_xfail(self, pytester: pytest.Pytester) -> None:
        """A failing check named in expected_failed is an xfail with its reason."""
        _write_tests(
            pytester,
            """
@parametrize_with_checks(SUITE, expected_failed={"bad_check": "known drift, issue #7"})
def test_ml_system(check):
    assert_passes(check)
""",
        )
        result = pytester.runpytest("-rx")
        result.assert_outcomes(passed=1, xfailed=1)
        result.stdout.fnmatch_lines(["*XFAIL*bad_check*known drift, issue #7*"])

    def test_expected_failed_is_strict(self, pytester: pytest.Pytester) -> None:
        """A check named in expected_failed that passes fails the run (strict xfail)."""
        _write_tests(
            pytester,
            """
@parametrize_with_checks(SUITE, expected_failed={"good_check": "was broken"})
def test_ml_system(check):
    assert_passes(check)
""",
        )
        result = pytester.runpytest()
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(["*XPASS(strict)*was broken*"])

    def test_unknown_expected_failed_name_errors(self, pytester: pytest.Pytester) -> None:
        """A name in expected_failed that is not a check is a collection error."""
        _write_tests(
            pytester,
            """
@parametrize_with_checks(SUITE, expected_failed={"bad_chek": "typo"})
def test_ml_system(check):
    assert_passes(check)
""",
        )
        result = pytester.runpytest()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*'expected_failed' names checks that are not in the suite: ??bad_chek??*"]
        )


class TestAssertPassesUnderPytest:
    """assert_passes() failures read as the text report."""

    def test_failure_output_has_name_and_finding(self, pytester: pytest.Pytester) -> None:
        """The failure shows the check name and the finding message."""
        _write_tests(
            pytester,
            """
def test_quality():
    assert_passes(Drifting())
""",
        )
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*CheckFailed*bad_check*", "*accuracy 0.71 is below the floor 0.9*"]
        )


class TestAssertreprCompare:
    """The plugin explains failed comparisons of statuses and results."""

    def test_status_comparison_shows_the_report(self, pytester: pytest.Pytester) -> None:
        """``assert result.status == Status.PASS`` shows the result's text report."""
        _write_tests(
            pytester,
            """
def test_quality():
    result = Drifting().run()
    assert result.status == Status.PASS
""",
        )
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "E       assert Status.FAIL == Status.PASS",
                "E         *bad_check*",
                "E         *accuracy 0.71 is below the floor 0.9*",
            ]
        )

    def test_suite_status_comparison_shows_the_report(self, pytester: pytest.Pytester) -> None:
        """``assert suite_result.status == Status.PASS`` shows the suite report."""
        _write_tests(
            pytester,
            """
def test_system():
    assert SUITE.run(progress=False).status == Status.PASS
""",
        )
        result = pytester.runpytest()
        result.stdout.fnmatch_lines(["E  *system*FAIL*", "E  *bad_check*"])

    def test_statuses_alone_are_explained(self, pytester: pytest.Pytester) -> None:
        """Without a result in scope, the statuses' meanings are shown."""
        _write_tests(
            pytester,
            """
def test_statuses():
    assert Status.ERROR == Status.PASS
""",
        )
        result = pytester.runpytest()
        result.stdout.fnmatch_lines(
            ["E         ERROR: the check itself could not run*", "E         PASS: every*"]
        )

    def test_unrelated_assertions_unchanged(self, pytester: pytest.Pytester) -> None:
        """Other comparisons keep pytest's own explanation."""
        pytester.makepyfile("def test_numbers():\n    assert [1, 2] == [1, 3]\n")
        result = pytester.runpytest()
        result.stdout.fnmatch_lines(["E         At index 1 diff: 2 != 3"])


class TestAssertreprCompareHook:
    """pytest_assertrepr_compare called directly."""

    @pytest.mark.parametrize(("left", "right"), [(1, 2), ("a", "b"), ([1], None)])
    def test_returns_none_for_unrelated_values(
        self, pytestconfig: pytest.Config, left: object, right: object
    ) -> None:
        """Values that are not statuses or results get no explanation."""
        assert pytest_assertrepr_compare(pytestconfig, "==", left, right) is None

    def test_status_and_string(self, pytestconfig: pytest.Config) -> None:
        """Comparing a Status with a string points to the Status member."""
        lines = pytest_assertrepr_compare(pytestconfig, "==", Status.FAIL, "pass")
        assert lines is not None
        assert "compare with Status.PASS" in lines[1]

    def test_two_results_list_differences(self, pytestconfig: pytest.Config) -> None:
        """Two results show the fields that differ, then their reports."""
        finding = Finding("churn", Status.FAIL, 0.2, "<= 0.01", "churn 0.2 exceeds 0.01")
        left = Result.from_findings("repro", [finding])
        right = Result("repro", Status.PASS)
        lines = pytest_assertrepr_compare(pytestconfig, "==", left, right)
        assert lines is not None
        assert "Result('repro', FAIL) == Result('repro', PASS)" == lines[0]
        assert "  status: 'fail' != 'pass'" in lines
        assert any("churn 0.2 exceeds 0.01" in line for line in lines)


class TestPluginExtras:
    """The seed line at the end of a run and the mlchecks_context fixture."""

    def test_the_seed_is_reported_when_given(self, pytester: pytest.Pytester) -> None:
        """With --mlchecks-seed the end of the run names the mlchecks version and the seed."""
        pytester.makepyfile("def test_nothing():\n    pass\n")
        result = pytester.runpytest("--mlchecks-seed", "11")
        result.stdout.fnmatch_lines(
            [f"mlchecks {__version__}: --mlchecks-seed=11 (0 tests used mlchecks_context)"]
        )

    def test_the_seed_is_reported_when_the_fixture_is_used(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile("def test_context(mlchecks_context):\n    pass\n")
        result = pytester.runpytest()
        result.stdout.fnmatch_lines(
            [f"mlchecks {__version__}: --mlchecks-seed=0 (1 test used mlchecks_context)"]
        )

    def test_context_fixture(self, pytester: pytest.Pytester) -> None:
        """mlchecks_context has the option's seed and the test's tmp_path as workdir."""
        pytester.makepyfile(
            """
def test_context(mlchecks_context, tmp_path):
    assert 5 == mlchecks_context.seed
    assert tmp_path == mlchecks_context.workdir
"""
        )
        result = pytester.runpytest("--mlchecks-seed", "5")
        result.assert_outcomes(passed=1)

    def test_context_fixture_default_seed(self, pytester: pytest.Pytester) -> None:
        """Without the option the seed is 0."""
        pytester.makepyfile(
            "def test_context(mlchecks_context):\n    assert 0 == mlchecks_context.seed\n"
        )
        pytester.runpytest().assert_outcomes(passed=1)


class TestImportCost:
    """Importing mlchecks does not import pytest; an unrelated pytest session costs nothing."""

    def test_a_session_that_uses_no_mlchecks_feature_loads_nothing_of_it(
        self, pytester: pytest.Pytester
    ) -> None:
        """The plugin is loaded, yet mlchecks and numpy are not, and nothing is printed."""
        pytester.makepyfile(
            """
import sys

def test_unrelated():
    assert [1, 2] == [1, 2]

def test_nothing_of_mlchecks_was_imported():
    loaded = [m for m in ("mlchecks", "numpy", "scipy", "attrs") if m in sys.modules]
    assert loaded == []
"""
        )
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["plugins:*mlchecks-*"])  # the plugin was loaded
        assert [line for line in result.outlines if line.startswith("mlchecks ")] == []

    def test_import_mlchecks_does_not_import_pytest(self) -> None:
        """A fresh interpreter that imports mlchecks has no pytest module loaded."""
        code = "import mlchecks, mlchecks.testing, sys; print('pytest' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert "False" == out.stdout.strip()
