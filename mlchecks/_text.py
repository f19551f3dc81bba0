"""Number and list formatting shared by findings, summaries and reports.

>>> fmt(0.123456), fmt(None), fmt(float("nan")), signed(0.5)
('0.1235', 'n/a', 'nan', '+0.5')
>>> plural(1, "step"), plural(3, "entry", "entries"), listing(["a", "b", "c"])
('1 step', '3 entries', "'a', 'b' and 'c'")
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

__all__ = ["fmt", "listing", "pct", "plural", "printable", "redact", "signed"]

# userinfo of a URL: scheme://user:password@host -> the password (or a lone token) hidden;
# the scheme is bounded (and not anchored to a word start, so "\x1b[0mhttp://" matches) to
# keep the search linear on long runs such as base64 or "a.a.a..." text
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]{0,39}://)(?P<user>[^\s/@:]*)(?::[^\s/@]*)?@"
)
# ANSI/VT escape sequences (CSI, OSC, two-byte ESC) and every other control character but
# newline and tab; lone surrogates (not encodable) are replaced too
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def fmt(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits; ``"n/a"`` for None."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def signed(value: float, digits: int = 4) -> str:
    """``value`` with an explicit sign."""
    return f"{value:+.{digits}g}"


def pct(fraction: float) -> str:
    """A fraction as a percentage: ``pct(0.95) == '95%'``."""
    return f"{100 * fraction:g}%"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 step"``, ``"3 steps"``; ``many`` for irregular plurals."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def listing(items: Sequence[str], limit: int = 5) -> str:
    """Quoted names joined in English, at most ``limit`` of them then ``"and N more"``."""
    quoted = [repr(str(item)) for item in items]
    if len(quoted) > limit:
        return ", ".join(quoted[:limit]) + f" and {len(quoted) - limit} more"
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + f" and {quoted[-1]}"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``.

    A URL's user name stays (it helps to tell accounts apart); a password, or a user part
    that is a bare token, never reaches a message, a summary or a report.

    >>> redact("cannot reach postgresql://ml:s3cret@db:5432/runs")
    'cannot reach postgresql://ml:***@db:5432/runs'
    >>> redact("http://token@host/v2")
    'http://***@host/v2'
    """
    if "@" not in text:
        return text

    def hide(match: re.Match[str]) -> str:
        user = match.group("user")
        if match.group(0).count(":") > match.group("scheme").count(":"):
            return f"{match.group('scheme')}{user}:***@"
        return f"{match.group('scheme')}***@"

    return _USERINFO.sub(hide, text)


def printable(text: str) -> str:
    r"""``text`` safe to print on a terminal: escape sequences and control characters removed.

    Newlines and tabs stay; a lone surrogate (which no encoder accepts) becomes U+FFFD.

    >>> printable("\x1b[32mALL PASSED\x1b[0m\rx\ty")
    'ALL PASSEDx\ty'
    """
    if text.isprintable():
        return text
    text = _ESCAPES.sub("", text)
    return _CONTROLS.sub(lambda m: "\ufffd" if "\ud800" <= m.group(0) <= "\udfff" else "", text)
