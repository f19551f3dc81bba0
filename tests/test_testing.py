"""Tests of the pytest helpers in mlchecks/testing.py (without running pytest inside pytest)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from mlchecks.check import Context
from mlchecks.exceptions import CheckFailed
from mlchecks.result import Finding, Result, Status
from mlchecks.suite import Suite, SuiteResult
from mlchecks.testing import StaticCheck, assert_passes, parametrize_with_checks


@attrs.frozen
class SeedCheck:
    """Passes and reports the seed of the context it ran with."""

    name: str = "seed_check"
    rubric: int | None = None

    def run(self, context: Context | None = None) -> Result:
        seed = None if context is None else context.seed
        return Result(check=self.name, status=Status.PASS, summary=f"seed={seed}")


def _failing_result() -> Result:
    finding = Finding("churn", Status.FAIL, 0.157, "<= 0.01", "churn 0.157 exceeds max_churn 0.01")
    return Result.from_findings("reproducibility", [finding], rubric=1)


class TestStaticCheck:
    """StaticCheck always returns its status."""

    @pytest.mark.parametrize("status", list(Status))
    def test_returns_its_status(self, status: Status) -> None:
        """The result and its single finding carry the fixed status."""
        result = StaticCheck("static", status).run()
        assert status == result.status
        assert [status] == [f.status for f in result.findings]

    def test_defaults(self) -> None:
        """It passes by default, has no rubric, and says what it is."""
        result = StaticCheck("placeholder").run()
        assert Status.PASS == result.status
        assert result.rubric is None
        assert "placeholder is a static check that returns PASS" == result.summary

    def test_summary_and_rubric(self) -> None:
        """A given summary and rubric reach the result."""
        result = StaticCheck("canary", "fail", rubric=6, summary="error rate 3%").run()
        assert (Status.FAIL, 6, "error rate 3%") == (result.status, result.rubric, result.summary)

    def test_status_from_string(self) -> None:
        """A status given as its value is converted."""
        assert Status.WARN == StaticCheck("x", "warn").status  # type: ignore[arg-type]

    def test_invalid_status(self) -> None:
        """An unknown status is rejected at construction."""
        with pytest.raises(ValueError, match="nope"):
            StaticCheck("x", "nope")  # type: ignore[arg-type]

    def test_is_frozen(self) -> None:
        """Checks are immutable."""
        check = StaticCheck("x")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            check.name = "y"  # type: ignore[misc]


class TestAssertPasses:
    """assert_passes() runs what it is given and raises CheckFailed with the report."""

    def test_passing_check_returns_result(self) -> None:
        """A passing check's result is returned."""
        result = assert_passes(StaticCheck("fine"))
        assert isinstance(result, Result)
        assert "fine" == result.check

    @pytest.mark.parametrize("status", [Status.WARN, Status.SKIP])
    def test_warn_and_skip_pass(self, status: Status) -> None:
        """WARN and SKIP do not fail the assertion."""
        assert status == assert_passes(StaticCheck("x", status)).status

    @pytest.mark.parametrize("status", [Status.FAIL, Status.ERROR])
    def test_failing_check_raises(self, status: Status) -> None:
        """FAIL and ERROR raise CheckFailed carrying the result."""
        with pytest.raises(CheckFailed) as info:
            assert_passes(StaticCheck("broken", status))
        assert isinstance(info.value.result, Result)
        assert status == info.value.result.status

    def test_message_is_the_text_report(self) -> None:
        """The failure message is str(result): the check name and the finding message."""
        result = _failing_result()
        with pytest.raises(CheckFailed) as info:
            assert_passes(result)
        assert str(result) == str(info.value)
        assert "reproducibility" in str(info.value)
        assert "churn 0.157 exceeds max_churn 0.01" in str(info.value)

    def test_is_an_assertion_error(self) -> None:
        """pytest reports the failure as a test failure."""
        with pytest.raises(AssertionError):
            assert_passes(_failing_result())

    def test_result_is_not_rerun(self) -> None:
        """A passing Result is returned as is."""
        result = Result(check="done", status=Status.PASS)
        assert result is assert_passes(result)

    def test_suite_is_run(self) -> None:
        """A Suite is run and its SuiteResult returned."""
        suite = Suite([StaticCheck("a"), StaticCheck("b", Status.WARN)])
        result = assert_passes(suite)
        assert isinstance(result, SuiteResult)
        assert ["a", "b"] == [r.check for r in result]

    def test_failing_suite_message_names_the_failing_check(self) -> None:
        """A failing suite's message is its text report."""
        suite = Suite([StaticCheck("good"), StaticCheck("bad_check", Status.FAIL)], name="s")
        with pytest.raises(CheckFailed) as info:
            assert_passes(suite)
        assert isinstance(info.value.result, SuiteResult)
        assert str(info.value.result) == str(info.value)
        assert "bad_check" in str(info.value)

    def test_suite_result_is_judged(self) -> None:
        """A failing SuiteResult raises without running anything."""
        result = SuiteResult([_failing_result()])
        with pytest.raises(CheckFailed) as info:
            assert_passes(result)
        assert result is info.value.result

    def test_context_reaches_the_check(self) -> None:
        """The given context is passed to the check and to each check of a suite."""
        check_result = assert_passes(SeedCheck(), Context(seed=5))
        suite_result = assert_passes(Suite([SeedCheck()]), Context(seed=6))
        assert "seed=5" == check_result.summary
        assert isinstance(suite_result, SuiteResult)
        assert "seed=6" == suite_result["seed_check"].summary

    def test_crashing_check_is_an_error_result(self) -> None:
        """An exception in the check becomes an ERROR result, reported as a failure."""

        class Crashing:
            name = "crashing"
            rubric = None

            def run(self, context: Context | None = None) -> Result:
                raise RuntimeError("disk full")

        with pytest.raises(CheckFailed, match="disk full") as info:
            assert_passes(Crashing())
        assert Status.ERROR == info.value.result.status

    @pytest.mark.parametrize("bad", [None, 3, "a check", [StaticCheck("x")]])
    def test_bad_type(self, bad: Any) -> None:
        """Anything else is a TypeError naming the value and its type."""
        with pytest.raises(TypeError, match=r"takes a Check, Suite, Result or SuiteResult"):
            assert_passes(bad)

    def test_check_class_instead_of_instance(self) -> None:
        """Passing the class instead of an instance says so."""
        with pytest.raises(TypeError, match=r"got the class SeedCheck"):
            assert_passes(SeedCheck)  # type: ignore[arg-type]


class TestParametrizeWithChecks:
    """parametrize_with_checks() builds one pytest param per check, ids from names."""

    def _params(self, mark: Any) -> list[Any]:
        assert "check" == mark.args[0]
        return list(mark.args[1])

    def test_ids_from_names(self) -> None:
        """Each param has the check as its value and the name as its id."""
        checks = [StaticCheck("reproducibility"), StaticCheck("rollback")]
        params = self._params(parametrize_with_checks(Suite(checks)))
        assert ["reproducibility", "rollback"] == [p.id for p in params]
        assert checks == [p.values[0] for p in params]

    def test_iterable_and_nested_suites(self) -> None:
        """An iterable of checks and suites is flattened in order."""
        mark = parametrize_with_checks([StaticCheck("a"), Suite([StaticCheck("b")])])
        assert ["a", "b"] == [p.id for p in self._params(mark)]

    def test_expected_failed_is_strict_xfail(self) -> None:
        """A name in expected_failed gets xfail(strict=True) with the reason."""
        mark = parametrize_with_checks(
            [StaticCheck("a"), StaticCheck("b", Status.FAIL)],
            expected_failed={"b": "known bug #12"},
        )
        params = {p.id: p for p in self._params(mark)}
        assert () == tuple(params["a"].marks)
        (xfail,) = params["b"].marks
        assert "xfail" == xfail.name
        assert {"reason": "known bug #12", "strict": True} == xfail.kwargs

    def test_unknown_expected_failed_name(self) -> None:
        """A name that is not a check in the suite is a ValueError listing both."""
        with pytest.raises(ValueError, match=r"\['typo'\].*\['a'\]"):
            parametrize_with_checks([StaticCheck("a")], expected_failed={"typo": "x"})

    def test_not_checks(self) -> None:
        """Items that are not checks are rejected."""
        with pytest.raises(TypeError, match="'checks' must contain Check objects"):
            parametrize_with_checks([3])  # type: ignore[list-item]
