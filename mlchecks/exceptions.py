"""Exceptions raised by mlchecks.

Every exception subclasses a built-in so callers can catch it the way they already do:
`InvalidInput` is a `ValueError`, `MissingDependency` is an `ImportError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlchecks.result import Result
    from mlchecks.suite import SuiteResult

__all__ = ["CheckFailed", "CheckTimeout", "InvalidInput", "MLChecksError", "MissingDependency"]


class MLChecksError(Exception):
    """Base class of every exception mlchecks raises on purpose."""


class InvalidInput(MLChecksError, ValueError):
    """An argument has the wrong type, shape or value; the message names it and the value."""


class MissingDependency(MLChecksError, ImportError):
    """An optional extra is needed; the message gives the install command."""


class CheckTimeout(BaseException):
    """A check ran past its ``check_timeout_s``; the message names what it was doing.

    `mlchecks.run_check` (and so a `Suite`, the CLI and the pytest plugin) turns it into an
    ERROR result. Like `asyncio.CancelledError` it is not an `Exception`, so an
    ``except Exception`` around user code (the check's or yours) does not swallow it.
    """


class CheckFailed(MLChecksError, AssertionError):
    """A check or suite did not pass; ``result`` carries the full result.

    Raised by `Result.raise_for_status()` and `SuiteResult.raise_for_status()`. It subclasses
    `AssertionError` so pytest reports it as a test failure, not an error.
    """

    def __init__(self, result: Result | SuiteResult) -> None:
        self.result = result
        super().__init__(str(result))
