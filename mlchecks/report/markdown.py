"""Markdown reports sized for a CI job summary (GitHub's ``$GITHUB_STEP_SUMMARY``).

A heading with the overall status, one table row per check, the ML Test Score with the
paper's reading, then a section for each check that failed, errored or warned. Statuses are
words (an emoji goes with them, never instead of them). Every user-provided string is
escaped, so a message cannot break the table or inject HTML; escape sequences and control
characters are removed and URL passwords hidden first (`scrubbed_suite`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mlchecks.report._format import (
    clean,
    counts_phrase,
    fmt_duration,
    fmt_number,
    notable_findings,
    scrubbed_suite,
)
from mlchecks.result import Result, Status
from mlchecks.score import score_rows

if TYPE_CHECKING:
    from mlchecks.suite import SuiteResult

__all__ = ["suite_to_markdown"]

_EMOJI: Mapping[Status, str] = {
    Status.PASS: "\u2705",  # white heavy check mark
    Status.SKIP: "\u23ed\ufe0f",  # next track
    Status.WARN: "\u26a0\ufe0f",  # warning sign
    Status.FAIL: "\u274c",  # cross mark
    Status.ERROR: "\U0001f4a5",  # collision
}
_MAX_FINDINGS = 50
_SPECIAL = re.compile(r"([\\`*_\[\]|])")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_BACKTICKS = re.compile(r"`+")


def _status(status: Status) -> str:
    return f"{_EMOJI[status]} {status.label}"


def _text(value: object) -> str:
    """Inline Markdown showing ``value`` literally: HTML, emphasis, links and pipes escaped."""
    escaped = html.escape(clean(value), quote=False)
    return _NEWLINES.sub("<br>", _SPECIAL.sub(r"\\\1", escaped))


def _code(value: object, *, in_table: bool = True) -> str:
    """``value`` as a code span (literal by nature), safe inside a table cell."""
    text = _NEWLINES.sub(" ", clean(value))
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`") or not text.strip():
        text = f" {text} "
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def _fenced(text: str, info: str = "text") -> list[str]:
    """A fenced code block that the content cannot close early."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", clean(text).rstrip("\n"), fence]


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_row(*header), _row(*align), *(_row(*r) for r in rows)]


def _check_section(result: Result) -> list[str]:
    lines = [f"### {_status(result.status)}: {_code(result.check, in_table=False)}", ""]
    if result.summary:
        lines += [f"**Summary:** {_text(result.summary)}", ""]
    findings = notable_findings(result)
    if findings:
        rows = [
            (
                _status(f.status),
                _code(f.name),
                fmt_number(f.observed),
                _text(f.limit),
                _text(f.message),
            )
            for f in findings[:_MAX_FINDINGS]
        ]
        header = ("Status", "Finding", "Observed", "Limit", "Message")
        lines += _table(header, (":--", ":--", "--:", ":--", ":--"), rows)
        lines.append("")
        if len(findings) > _MAX_FINDINGS:
            lines += [f"... and {len(findings) - _MAX_FINDINGS} more findings.", ""]
    passing = len(result.findings) - len(findings)
    if passing:
        lines += [f"{passing} of {len(result.findings)} conditions passed.", ""]
    if result.error is not None:
        lines += ["<details><summary>Traceback</summary>", ""]
        lines += _fenced(result.error.traceback or f"{result.error.type}: {result.error.message}")
        lines += ["", "</details>", ""]
    return lines


def _checks_table(sr: SuiteResult) -> list[str]:
    if not sr.results:
        return []
    rows = [
        (
            _status(r.status),
            _code(r.check),
            "" if r.rubric is None else str(r.rubric),
            _text(r.summary),
            fmt_duration(r.duration_s),
        )
        for r in sr.results
    ]
    header = ("Status", "Check", "Rubric", "Summary", "Duration")
    return [*_table(header, (":--", ":--", ":-:", ":--", "--:"), rows), ""]


def _score_lines(sr: SuiteResult) -> list[str]:
    score = sr.score
    rows = [
        (str(test), _text(title), f"{points:g}", _text(note))
        for test, title, points, note in score_rows(sr.results, score)
    ]
    return [
        f"**ML Test Score (infrastructure): {score.total:g} / {score.maximum:g}.** "
        f"{_text(score.reading)}",
        "",
        "<details><summary>Points per rubric test</summary>",
        "",
        *_table(("Test", "Description", "Points", "How"), (":-:", ":--", "--:", ":--"), rows),
        "",
        "</details>",
        "",
    ]


def suite_to_markdown(sr: SuiteResult) -> str:
    """The suite run as Markdown for a CI job summary or a pull-request comment.

    Args:
        sr: the suite's result.

    Returns:
        GitHub-flavoured Markdown ending with a newline.

    >>> from mlchecks import Suite
    >>> from mlchecks.testing import StaticCheck
    >>> sr = Suite([StaticCheck("quality", Status.FAIL, rubric=4)], name="demo").run(progress=False)
    >>> print(suite_to_markdown(sr).splitlines()[0])
    ## ❌ FAIL: mlchecks suite `demo`
    """
    sr = scrubbed_suite(sr, terminal=True)
    lines = [
        f"## {_status(sr.status)}: mlchecks suite {_code(sr.name, in_table=False)}",
        "",
        f"{counts_phrase(r.status for r in sr.results)} in {fmt_duration(sr.duration_s)}",
        "",
        *_checks_table(sr),
        *_score_lines(sr),
    ]
    for result in sr.results:
        if result.status >= Status.WARN:
            lines += _check_section(result)
    return "\n".join(lines).rstrip("\n") + "\n"
