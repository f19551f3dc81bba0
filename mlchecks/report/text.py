"""Plain-text reports: what ``str(result)`` and ``str(suite_result)`` print.

The text reads in a terminal without colour; lines stay within 100 characters where the
content allows. ``color=True`` adds ANSI colours to the status words, for a terminal only.

Text from checks cannot fake a verdict: each renderer first passes the result through
`mlchecks.report._format.scrubbed_result` (or ``scrubbed_suite``), which removes escape
sequences and control characters, keeps names on one line, replaces text UTF-8 cannot
encode and hides URL passwords.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlchecks.report._format import (
    counts_phrase,
    finding_line,
    fmt_duration,
    fmt_number,
    notable_findings,
    rubric_label,
    scrubbed_result,
    scrubbed_suite,
    traceback_tail,
)
from mlchecks.result import Result, Status

if TYPE_CHECKING:
    from mlchecks.suite import SuiteResult

__all__ = ["result_to_text", "suite_to_text"]

_WIDTH = 100
_MAX_METRICS = 12
_MAX_FINDINGS_RESULT = 20
_MAX_FINDINGS_SUITE = 5
_TRACEBACK_LINES = 6
_NAME_WIDTH = (8, 24)

_ANSI: Mapping[Status, str] = {
    Status.PASS: "\033[32m",
    Status.SKIP: "\033[36m",
    Status.WARN: "\033[33m",
    Status.FAIL: "\033[31m",
    Status.ERROR: "\033[1;35m",
}
_RESET = "\033[0m"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    """``text`` wrapped to `_WIDTH`, the first line after ``first``, the others after ``rest``."""
    lines = textwrap.wrap(
        text,
        _WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [first.rstrip()]


def _colored(line: str, status: Status, color: bool, start: int = 0) -> str:
    """Colour the status word found at or after ``start`` in ``line`` (after wrapping)."""
    at = line.find(status.label, start)
    if not color or at < 0:
        return line
    end = at + len(status.label)
    return f"{line[:at]}{_ANSI[status]}{status.label}{_RESET}{line[end:]}"


def _finding_lines(result: Result, indent: str, limit: int, *, notable_only: bool) -> list[str]:
    findings = notable_findings(result) if notable_only else list(result.findings)
    lines: list[str] = []
    for f in findings[:limit]:
        lines.extend(_wrap(finding_line(f), indent + "- ", indent + "    "))
    if len(findings) > limit:
        lines.append(f"{indent}... and {len(findings) - limit} more findings")
    return lines


def _metric_lines(result: Result, indent: str) -> list[str]:
    if not result.metrics:
        return []
    items = list(result.metrics.items())
    text = ", ".join(f"{k}={fmt_number(v)}" for k, v in items[:_MAX_METRICS])
    if len(items) > _MAX_METRICS:
        text += f", ... ({len(items) - _MAX_METRICS} more in result.metrics)"
    return _wrap(f"metrics: {text}", indent, indent + "  ")


def result_to_text(result: Result, color: bool = False, *, traceback: bool = True) -> str:
    """A readable report of one check: status, summary, findings, key metrics, traceback.

    Args:
        result: the check's result.
        color: colour the status word with ANSI codes (only for a terminal).
        traceback: include the traceback of an ERROR result.

    Returns:
        Text without a trailing newline.

    >>> from mlchecks import AtLeast
    >>> finding = AtLeast(0.9).judge("accuracy", 0.81)
    >>> result = Result.from_findings("quality", [finding], rubric=4, metrics={"accuracy": 0.81})
    >>> print(result_to_text(result))
    FAIL quality (rubric 4) in 0.00s
      accuracy 0.81 is below the minimum 0.9
      - FAIL accuracy: observed 0.81, limit >= 0.9: accuracy 0.81 is below the minimum 0.9
      metrics: accuracy=0.81
    """
    result = scrubbed_result(result, terminal=True)
    where = rubric_label(result)
    head = f"{result.status.label} {result.check}"
    head += f" ({where})" if where else ""
    lines = [_colored(f"{head} in {fmt_duration(result.duration_s)}", result.status, color)]
    if result.summary:
        lines.extend(_wrap(result.summary, "  ", "  "))
    lines.extend(_finding_lines(result, "  ", _MAX_FINDINGS_RESULT, notable_only=False))
    lines.extend(_metric_lines(result, "  "))
    if result.details:
        lines.extend(_wrap("details: " + ", ".join(result.details), "  ", "    "))
    if traceback and result.error is not None and result.error.traceback:
        lines.extend("  " + line for line in result.error.traceback.rstrip().splitlines())
    return "\n".join(lines)


def _name_width(results: tuple[Result, ...]) -> int:
    low, high = _NAME_WIDTH
    longest = max((len(r.check) for r in results), default=low)
    return min(max(longest, low), high)


def suite_to_text(sr: SuiteResult, color: bool = False) -> str:
    """A readable report of a suite run: one line per check, details of what went wrong.

    Non-passing and warning checks list their non-PASS findings; errors show the end of
    their traceback. The last line is the ML Test Score with the paper's reading.

    Args:
        sr: the suite's result.
        color: colour the status words with ANSI codes (only for a terminal).

    Returns:
        Text without a trailing newline.

    >>> from mlchecks import Suite
    >>> from mlchecks.testing import StaticCheck
    >>> sr = Suite([StaticCheck("repro", Status.PASS, rubric=1, summary="churn 0")], name="demo")
    >>> print(suite_to_text(sr.run(progress=False)))  # doctest: +ELLIPSIS
    mlchecks suite 'demo': PASS (1 check: 1 passed) in ...s
      PASS   repro    rubric 1  churn 0
    ML Test Score (infrastructure): 1 / 7 rubric tests. Not totally untested, but it is worth
    considering the possibility of serious holes in reliability.
    """
    sr = scrubbed_suite(sr, terminal=True)
    results = sr.results
    title = f"mlchecks suite {sr.name!r}: "
    head = (
        f"{title}{sr.status.label} "
        f"({counts_phrase(r.status for r in results)}) in {fmt_duration(sr.duration_s)}"
    )
    lines = [_colored(head, sr.status, color, start=len(title))]
    name_width = _name_width(results)
    has_rubric = any(r.rubric is not None for r in results)
    rubric_width = len("rubric 7") + 2 if has_rubric else 0
    indent = " " * 9
    summary_indent = " " * (2 + 7 + name_width + 1 + rubric_width)
    for r in results:
        prefix = f"  {r.status.label:<7}{r.check:<{name_width}} {rubric_label(r):<{rubric_width}}"
        row = _wrap(r.summary, prefix, summary_indent)
        lines.append(_colored(row[0], r.status, color))
        lines.extend(row[1:])
        if r.status >= Status.WARN:
            lines.extend(_finding_lines(r, indent, _MAX_FINDINGS_SUITE, notable_only=True))
        if r.error is not None and r.error.traceback:
            tail = traceback_tail(r.error.traceback, _TRACEBACK_LINES)
            lines.append(f"{indent}Traceback (most recent call last): ... (last lines)")
            lines.extend(indent + line for line in tail)
    lines.extend(_wrap(str(sr.score), "", ""))
    if sr.manual:
        done = "; ".join(f"test {k}: {note}" for k, note in sorted(sr.manual.items()))
        lines.extend(_wrap(f"Done by hand: {done}", "", "  "))
    return "\n".join(lines)
