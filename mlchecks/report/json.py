"""Lossless JSON for results and suite results.

The JSON is strict (no ``NaN`` or ``Infinity`` tokens, which most parsers outside Python
reject): non-finite floats are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``,
and reading the JSON back gives an equal object.

No text makes the JSON fail: every string is UTF-8-encodable (a lone surrogate becomes
U+FFFD) and URL passwords are hidden (``postgresql://ml:***@db``) before it is written.
Every control character is a ``\\u`` escape, so printing the file cannot drive a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mlchecks.exceptions import InvalidInput
from mlchecks.report._format import scrub
from mlchecks.result import Result

if TYPE_CHECKING:
    from mlchecks.suite import SuiteResult

__all__ = ["result_from_json", "result_to_json", "suite_from_json", "suite_to_json"]

T = TypeVar("T")

# DEL and the C1 controls (0x9b starts an escape sequence on many terminals): `json.dumps`
# leaves them raw with ensure_ascii=False; as \u escapes the file is safe to `cat`.
_RAW_CONTROLS = re.compile("[\x7f-\x9f]")


def _dumps(data: Any, indent: int | None) -> str:
    """The one place this renderer turns data into text: every string scrubbed first."""
    text = json.dumps(scrub(data), indent=indent, ensure_ascii=False, allow_nan=False)
    return _RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _loads(text: str | bytes, kind: str, build: Callable[[dict[str, Any]], T]) -> T:
    if not isinstance(text, str | bytes | bytearray):
        raise InvalidInput(
            f"'text' must be a JSON string (got {text!r} that is a {type(text).__name__})"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"'text' is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"'text' must hold a JSON object describing {kind} (got a JSON {type(data).__name__})"
        )
    try:
        return build(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InvalidInput(f"'text' does not describe {kind}: {detail}") from None


def result_to_json(result: Result, indent: int | None = 2) -> str:
    """One check's result as strict JSON; `result_from_json` reads it back.

    Args:
        result: the result to write.
        indent: spaces per nesting level, or None for one compact line.

    Returns:
        The JSON text (UTF-8 characters are kept, not escaped).

    >>> from mlchecks import Status
    >>> text = result_to_json(Result("quality", Status.PASS, metrics={"x": float("nan")}), None)
    >>> '"x": "NaN"' in text
    True
    >>> result_from_json(text).metrics["x"]
    nan
    """
    return _dumps(result.to_dict(), indent)


def result_from_json(text: str | bytes) -> Result:
    """Read a result from `result_to_json` output (or from ``Result.to_dict()`` as JSON).

    Raises:
        InvalidInput: ``text`` is not JSON or does not describe a result.

    >>> result_from_json('{"check": "quality", "status": "fail"}').status
    <Status.FAIL: 'fail'>
    """
    return _loads(text, "an mlchecks result", Result.from_dict)


def suite_to_json(sr: SuiteResult, indent: int | None = 2) -> str:
    """A suite run as strict JSON, the score included; `suite_from_json` reads it back.

    Args:
        sr: the suite's result.
        indent: spaces per nesting level, or None for one compact line.

    Returns:
        The JSON text of ``sr.to_dict()``.

    >>> from mlchecks import Status, Suite
    >>> from mlchecks.testing import StaticCheck
    >>> sr = Suite([StaticCheck("repro", Status.PASS, rubric=1)]).run(progress=False)
    >>> suite_from_json(suite_to_json(sr)) == sr
    True
    """
    return _dumps(sr.to_dict(), indent)


def suite_from_json(text: str | bytes) -> SuiteResult:
    """Read a suite result from `suite_to_json` output; the status and score are recomputed.

    Raises:
        InvalidInput: ``text`` is not JSON or does not describe a suite result.

    >>> suite_from_json('{"name": "empty", "results": []}').status
    <Status.PASS: 'pass'>
    """
    # Imported here, not at the top: the report modules never import `mlchecks.suite` on
    # their own (it imports them), only this function builds a SuiteResult.
    from mlchecks.suite import SuiteResult

    return _loads(text, "an mlchecks suite result", SuiteResult.from_dict)
