"""Helpers for running checks under pytest.

Nothing here imports pytest at module level: `parametrize_with_checks` imports it when
called, so ``import mlchecks`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from mlchecks.check import Check, Context, run_check
from mlchecks.exceptions import CheckFailed
from mlchecks.result import Finding, Result, Status
from mlchecks.suite import Suite, SuiteResult

__all__ = ["StaticCheck", "assert_passes", "parametrize_with_checks"]

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class StaticCheck:
    """A check that always returns ``status``: for examples, tests and placeholders.

    >>> StaticCheck("always_fails", Status.FAIL).run().status
    <Status.FAIL: 'fail'>
    """

    name: str
    status: Status = attrs.field(default=Status.PASS, converter=Status)
    rubric: int | None = None
    summary: str = ""

    def run(self, context: Context | None = None) -> Result:
        """Return a result with the fixed status and one finding saying so."""
        text = self.summary or f"{self.name} is a static check that returns {self.status.label}"
        finding = Finding(self.name, self.status, None, "", text)
        return Result(self.name, self.status, text, findings=(finding,), rubric=self.rubric)


def assert_passes(
    subject: Check | Suite | Result | SuiteResult, context: Context | None = None
) -> Result | SuiteResult:
    """Run ``subject`` if needed and raise `CheckFailed` with the readable report unless it passed.

    `CheckFailed` is an `AssertionError`, so under pytest the failure shows as a test
    failure whose message is the text report (``str(result)``): every finding, its value
    and its limit.

    Args:
        subject: a check or suite to run, or a result to judge as is.
        context: the run's shared settings (seed, workdir) when ``subject`` is run.

    Returns:
        The result, when it passed (PASS, WARN or SKIP).

    Raises:
        CheckFailed: the result is FAIL or ERROR; ``.result`` carries it.
        TypeError: ``subject`` is none of the accepted types.

    >>> assert_passes(StaticCheck("fine", Status.PASS)).status
    <Status.PASS: 'pass'>
    >>> assert_passes(StaticCheck("broken", Status.FAIL))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.CheckFailed: ...broken...
    """
    if isinstance(subject, type):
        raise TypeError(
            "assert_passes() takes a Check, Suite, Result or SuiteResult instance "
            f"(got the class {subject.__name__}; create the check first)"
        )
    if isinstance(subject, Result | SuiteResult):
        result: Result | SuiteResult = subject
    elif isinstance(subject, Suite):
        result = subject.run(context, progress=False)
    elif isinstance(subject, Check):
        result = run_check(subject, context)
    else:
        raise TypeError(
            "assert_passes() takes a Check, Suite, Result or SuiteResult "
            f"(got {subject!r} that is a {type(subject).__name__})"
        )
    if not result.passed:
        raise CheckFailed(result)
    return result


def parametrize_with_checks(
    checks: Suite | Iterable[Check],
    *,
    expected_failed: Mapping[str, str] | None = None,
) -> Callable[[F], F]:
    """A pytest decorator giving one test per check, with the check's name as the id.

    The decorated test takes one argument, ``check``; call `assert_passes` on it. Checks
    named in ``expected_failed`` (name -> reason) are marked ``xfail(strict=True)``; an
    unknown name there raises `ValueError` so the mapping cannot rot.

    Args:
        checks: a suite or any iterable of checks (nested suites flatten).
        expected_failed: check name -> the reason it is known to fail.

    Returns:
        A ``pytest.mark.parametrize`` decorator over the argument ``check``.

    Raises:
        ValueError: ``expected_failed`` names a check that is not in ``checks``.

    Example, in a test module::

        @parametrize_with_checks(my_suite)
        def test_ml_system(check):
            assert_passes(check)

    ``pytest -k reproducibility`` then runs only that check.

    >>> mark = parametrize_with_checks([StaticCheck("a"), StaticCheck("b")])
    >>> [p.id for p in mark.args[1]]
    ['a', 'b']
    """
    import pytest

    items = tuple(checks.checks if isinstance(checks, Suite) else Suite(checks).checks)
    names = [c.name for c in items]
    expected = dict(expected_failed or {})
    unknown = sorted(set(expected) - set(names))
    if unknown:
        raise ValueError(
            f"'expected_failed' names checks that are not in the suite: {unknown} (checks: {names})"
        )
    params = [
        pytest.param(
            c,
            id=c.name,
            marks=[pytest.mark.xfail(reason=expected[c.name], strict=True)]
            if c.name in expected
            else [],
        )
        for c in items
    ]
    return pytest.mark.parametrize("check", params)
