"""Formatting shared by the report serializers: numbers, durations, counts and findings."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mlchecks._text import printable, redact
from mlchecks.result import Finding, Result, Status

if TYPE_CHECKING:
    from mlchecks.suite import SuiteResult

__all__ = [
    "STATUS_ORDER",
    "clean",
    "encodable",
    "counts_phrase",
    "finding_line",
    "fmt_duration",
    "fmt_number",
    "fmt_value",
    "is_scalar",
    "is_suite_result",
    "notable_findings",
    "rubric_label",
    "scrub",
    "scrubbed_result",
    "scrubbed_suite",
    "traceback_tail",
]

#: The order in which reports count statuses: good news first.
STATUS_ORDER: tuple[Status, ...] = (
    Status.PASS,
    Status.WARN,
    Status.FAIL,
    Status.ERROR,
    Status.SKIP,
)

_COUNT_WORDS: Mapping[Status, tuple[str, str]] = {
    Status.PASS: ("passed", "passed"),
    Status.WARN: ("warning", "warnings"),
    Status.FAIL: ("failed", "failed"),
    Status.ERROR: ("error", "errors"),
    Status.SKIP: ("skipped", "skipped"),
}

# Characters XML 1.0 forbids (C0 controls other than tab, newline and carriage return,
# lone surrogates, U+FFFE and U+FFFF). HTML tolerates them but they are noise there too.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Fields a text report prints inside one line (a newline or tab in them would fake a line),
# and everything under them (a suite's manual notes).
_ONE_LINE_KEYS = frozenset({"check", "name", "limit", "type", "kind", "manual"})
_LINE_BREAKS = re.compile(r"[\n\t]+")

_T = TypeVar("_T")


def encodable(text: str) -> str:
    r"""``text`` that UTF-8 can encode: each lone surrogate becomes U+FFFD.

    A surrogate pair left as two code points (as some decoders leave it) becomes the one
    character it stands for.

    >>> ascii(encodable("a\ud800 b\ud83d\ude00"))
    "'a\\ufffd b\\U0001f600'"
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _scrub_text(text: str, terminal: bool, one_line: bool) -> str:
    cleaned = encodable(redact(text))
    if terminal:
        cleaned = printable(cleaned)
        if one_line:
            cleaned = _LINE_BREAKS.sub(" ", cleaned)
        if not cleaned.strip() and text.strip():  # nothing but control characters
            cleaned = ascii(redact(text))[1:-1]  # shown as escapes, never empty
    return cleaned


def scrub(value: _T, *, terminal: bool = False) -> _T:
    r"""A copy of JSON-like ``value`` whose every string (keys too) is safe to show.

    URL passwords are hidden (`mlchecks._text.redact`) and lone surrogates replaced, so
    UTF-8 can encode the result; with ``terminal``, escape sequences and control characters
    are removed too (`mlchecks._text.printable`), and names (``check``, ``name``,
    ``limit``, ``type``, ``manual`` notes, and mapping keys) are kept on one line.

    >>> scrub({"check": "a\nb", "summary": "\x1b[32mok http://u:pw@host"}, terminal=True)
    {'check': 'a b', 'summary': 'ok http://u:***@host'}
    """

    def walk(item: Any, one_line: bool) -> Any:
        if isinstance(item, str):
            return _scrub_text(item, terminal, one_line)
        if isinstance(item, Mapping):
            return {
                _scrub_text(str(k), terminal, True): walk(v, one_line or k in _ONE_LINE_KEYS)
                for k, v in item.items()
            }
        if isinstance(item, list | tuple):
            return [walk(v, one_line) for v in item]
        return item

    scrubbed: _T = walk(value, False)
    return scrubbed


def scrubbed_result(result: Result, *, terminal: bool) -> Result:
    r"""``result`` with every string passed through `scrub`: what a renderer may show.

    >>> r = Result("quality", Status.ERROR, "cannot reach http://ml:pw@db \x1b[32mPASS")
    >>> scrubbed_result(r, terminal=True).summary
    'cannot reach http://ml:***@db PASS'
    """
    return Result.from_dict(scrub(result.to_dict(), terminal=terminal))


def scrubbed_suite(sr: SuiteResult, *, terminal: bool) -> SuiteResult:
    """``sr`` with every string of its results, name and notes passed through `scrub`."""
    return type(sr).from_dict(scrub(sr.to_dict(), terminal=terminal))


def clean(text: object) -> str:
    r"""``text`` as a string without the control characters XML 1.0 forbids.

    >>> clean("bell\x07 and tab\t")
    'bell and tab\t'
    """
    return _ILLEGAL.sub("", str(text))


def fmt_number(value: float | None) -> str:
    """A number with 4 significant digits (``"nan"``, ``"inf"`` for non-finite values).

    >>> fmt_number(0.123456), fmt_number(1570.0), fmt_number(float("nan")), fmt_number(None)
    ('0.1235', '1570', 'nan', '')
    """
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def fmt_value(value: Any) -> str:
    """A scalar from ``details`` as short text (floats with 4 significant digits).

    >>> fmt_value(0.333333), fmt_value(None), fmt_value(True), fmt_value("x")
    ('0.3333', '', 'true', 'x')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


def is_scalar(value: Any) -> bool:
    """True for the leaf values of JSON: None, bool, int, float and str."""
    return value is None or isinstance(value, str | int | float)


def is_suite_result(value: object) -> bool:
    """True when ``value`` is a `mlchecks.suite.SuiteResult`, without importing that module.

    The report modules never import `mlchecks.suite` (it imports them): when it is not
    loaded yet, no `SuiteResult` can exist.

    >>> is_suite_result("a report")
    False
    """
    suite = sys.modules.get("mlchecks.suite")
    return suite is not None and isinstance(value, suite.SuiteResult)


def fmt_duration(seconds: float) -> str:
    """A duration for humans: ``"0.42s"``, ``"12.3s"``, ``"2m 05s"``.

    >>> fmt_duration(0.4213), fmt_duration(12.34), fmt_duration(125.0)
    ('0.42s', '12.3s', '2m 05s')
    """
    if not math.isfinite(seconds):
        return f"{seconds}s"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def counts_phrase(statuses: Iterable[Status]) -> str:
    """How many checks ran and how many ended in each status, in words.

    >>> counts_phrase([Status.PASS, Status.FAIL, Status.ERROR, Status.ERROR])
    '4 checks: 1 passed, 1 failed, 2 errors'
    >>> counts_phrase([Status.PASS])
    '1 check: 1 passed'
    >>> counts_phrase([])
    'no checks'
    """
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for status in statuses:
        counts[status] += 1
    total = sum(counts.values())
    parts = []
    for status, n in counts.items():
        if n:
            one, many = _COUNT_WORDS[status]
            parts.append(f"{n} {one if n == 1 else many}")
    return f"{total} check{'s' if total > 1 else ''}: {', '.join(parts)}" if parts else "no checks"


def rubric_label(result: Result) -> str:
    """``"rubric 4"``, or an empty string for a check outside the rubric."""
    return "" if result.rubric is None else f"rubric {result.rubric}"


def notable_findings(result: Result) -> list[Finding]:
    """The findings worth a reader's attention: every one whose status is not PASS."""
    return [f for f in result.findings if f.status is not Status.PASS]


def finding_line(finding: Finding) -> str:
    """One finding on one line: status, name, observed value, limit and message.

    >>> f = Finding("accuracy", Status.FAIL, 0.81, ">= 0.9", "accuracy 0.81 is below 0.9")
    >>> finding_line(f)
    'FAIL accuracy: observed 0.81, limit >= 0.9: accuracy 0.81 is below 0.9'
    """
    facts = []
    if finding.observed is not None:
        facts.append(f"observed {fmt_number(finding.observed)}")
    if finding.limit:
        facts.append(f"limit {finding.limit}")
    line = f"{finding.status.label} {finding.name}"
    if facts:
        line += ": " + ", ".join(facts)
    if finding.message:
        line += ": " + finding.message
    return line


_MARKERS = re.compile(r"^[\s^~]*$")


def traceback_tail(text: str, lines: int) -> list[str]:
    r"""The end of a traceback: the innermost frame and the exception, at most ``lines`` lines.

    Blank lines and the ``^^^^`` position markers of Python 3.11+ are left out.

    >>> text = 'Traceback ...\n  File "a.py", line 1\n    g()\n  File "b.py", line 9\n'
    >>> traceback_tail(text + "    raise ValueError\n    ^^^^^^^^^^\nValueError: bad\n", 6)
    ['  File "b.py", line 9', '    raise ValueError', 'ValueError: bad']
    """
    kept = [line for line in text.splitlines() if not _MARKERS.match(line)]
    frames = [i for i, line in enumerate(kept) if line.lstrip().startswith('File "')]
    tail = kept[frames[-1] :] if frames else kept
    return tail[-lines:] if lines > 0 else []
