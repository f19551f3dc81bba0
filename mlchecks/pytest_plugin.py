"""How the mlchecks pytest plugin (`mlchecks_pytest`) explains failed assertions.

The plugin loads this module only when a failed assertion compares mlchecks objects:

- A failed ``assert result.status == Status.PASS`` shows the text report of ``result``
  (found among the asserting function's local values) instead of two enum reprs.
- Its lines are stripped of escape sequences and control characters, and URL passwords
  are hidden, whatever the checks' names and messages hold.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from mlchecks._text import printable, redact

if TYPE_CHECKING:
    from mlchecks.result import Result, Status
    from mlchecks.suite import SuiteResult

__all__ = ["explain_comparison"]

# Frames of these packages sit between the failing assert and the hook.
_MACHINERY = ("_pytest.", "pluggy.", "pytest.", "mlchecks_pytest", __name__)
_MAX_FRAMES = 40

_MEANING = {
    "pass": "every condition the check judged passed",
    "skip": "the check did not run (its summary says why)",
    "warn": "a condition crossed a warning threshold; the result still passes",
    "fail": "a condition failed: the system has the problem the check looks for",
    "error": "the check itself could not run (an exception in the check or in user code)",
}


def explain_comparison(op: str, left: object, right: object) -> list[str] | None:
    """Readable lines for failed comparisons of `Status`, `Result` and `SuiteResult`.

    Returns None (pytest's own explanation) for anything else.

    >>> from mlchecks import Status
    >>> print(explain_comparison("==", Status.FAIL, "pass")[1].split(": ")[1])
    compare with Status.PASS, or compare status.value with the string
    >>> explain_comparison("==", 1, 2) is None
    True
    """
    result_module = sys.modules.get("mlchecks.result")
    if result_module is None:
        return None
    suite_module = sys.modules.get("mlchecks.suite")
    status_type: type[Status] = result_module.Status
    reportable: tuple[type, ...] = (result_module.Result,)
    if suite_module is not None:
        reportable += (suite_module.SuiteResult,)
    if not isinstance(left, (status_type, *reportable)) and not isinstance(
        right, (status_type, *reportable)
    ):
        return None
    try:
        lines = _explain(op, _scrubbed(left), _scrubbed(right), status_type, reportable)
    except Exception:  # an explanation must never turn a failure into an error
        return None
    if lines is None:
        return None
    return [printable(redact(line)) for line in lines]


def _scrubbed(value: object) -> object:
    """The one place results enter the plugin's text: a result or suite result with its
    escape sequences, control characters and URL passwords removed (anything else as is)."""
    from mlchecks.report._format import scrubbed_result, scrubbed_suite

    result_module = sys.modules["mlchecks.result"]
    if isinstance(value, result_module.Result):
        return scrubbed_result(value, terminal=True)
    suite_module = sys.modules.get("mlchecks.suite")
    if suite_module is not None and isinstance(value, suite_module.SuiteResult):
        return scrubbed_suite(value, terminal=True)
    return value


def _explain(
    op: str, left: object, right: object, status_type: type[Status], reportable: tuple[type, ...]
) -> list[str] | None:
    if isinstance(left, status_type) and isinstance(right, status_type):
        return _explain_statuses(op, left, right, reportable)
    if isinstance(left, (status_type, str)) and isinstance(right, (status_type, str)):
        text = left if isinstance(left, str) else right
        try:
            advice = f"compare with Status.{status_type(str(text).lower()).name}"
        except ValueError:
            advice = f"compare with a Status member ({', '.join(s.name for s in status_type)})"
        return [
            f"{left!r} {op} {right!r}",
            f"a Status never equals a string: {advice}, or compare status.value with the string",
        ]
    subjects: list[Any] = [x for x in (left, right) if isinstance(x, reportable)]
    if not subjects:
        return None
    lines = [f"{_label(left, reportable)} {op} {_label(right, reportable)}"]
    if len(subjects) == 2 and type(left) is type(right):
        lines.extend(_differences(left, right))
    for subject in subjects:
        lines.append("")
        lines.extend(_report(subject))
    return lines


def _explain_statuses(
    op: str, left: Status, right: Status, reportable: tuple[type, ...]
) -> list[str]:
    lines = [f"Status.{left.name} {op} Status.{right.name}"]
    subject = _asserted_result((left, right), reportable)
    if subject is not None:
        lines.append("")
        lines.extend(_report(subject))
    else:
        lines.extend(f"{s.label}: {_MEANING[s.value]}" for s in dict.fromkeys((left, right)))
    return lines


def _asserted_result(statuses: tuple[Status, Status], reportable: tuple[type, ...]) -> Any:
    """The one result in the asserting function whose status was compared, else None.

    pytest hands the hook only the two statuses, so this looks at the local values of the
    function that made the assertion (the first frame outside pytest and this plugin): a
    single `Result` or `SuiteResult` there with one of the statuses is the one asserted on.
    With several candidates it prefers the single one that did not pass, else gives up.
    """
    frame = sys._getframe(1)
    try:
        for _ in range(_MAX_FRAMES):
            module = frame.f_globals.get("__name__", "")
            if not (isinstance(module, str) and module.startswith(_MACHINERY)):
                break
            if frame.f_back is None:
                return None
            frame = frame.f_back
        else:
            return None
        found: dict[int, Any] = {
            id(v): v for v in frame.f_locals.values() if isinstance(v, reportable)
        }
    finally:
        del frame
    candidates = [v for v in found.values() if v.status in statuses]
    if len(candidates) > 1:
        candidates = [v for v in candidates if not v.passed]
    return candidates[0] if len(candidates) == 1 else None


def _label(value: object, reportable: tuple[type, ...]) -> str:
    if isinstance(value, reportable):
        kind = type(value).__name__
        name = getattr(value, "check", None) or getattr(value, "name", "")
        return f"{kind}({name!r}, {value.status.label})"  # type: ignore[attr-defined]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _differences(left: Any, right: Any) -> list[str]:
    a, b = left.to_dict(), right.to_dict()
    lines = ["differing fields:"]
    for key in a:
        if a[key] != b.get(key):
            lines.append(f"  {key}: {_short(a[key])} != {_short(b.get(key))}")
    return lines if len(lines) > 1 else []


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _report(subject: Result | SuiteResult) -> list[str]:
    return str(subject).splitlines()
