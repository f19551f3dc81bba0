"""Number and list formatting shared by findings, summaries and reports.

>>> fmt(0.123456), fmt(None), fmt(float("nan")), signed(0.5)
('0.1235', 'n/a', 'nan', '+0.5')
>>> plural(1, "step"), plural(3, "entry", "entries"), listing(["a", "b", "c"])
('1 step', '3 entries', "'a', 'b' and 'c'")
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["fmt", "listing", "pct", "plural", "signed"]


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
