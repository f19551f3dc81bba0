"""Units read from key names, for the HTML report's tables and the figures' captions.

A key that ends in ``_s`` holds seconds (``duration_s``, ``latency.p99_s``, ``t_s``: the
glossary's convention, ``docs/concepts.md``), one that ends in ``_ms`` milliseconds. Their
values are shown with a unit scaled to their size (``"6.69 ms"``, ``"21.5 µs"``); every
other number keeps 4 significant digits and no unit.
"""

from __future__ import annotations

import math
from typing import Any

from mlchecks.report._format import fmt_value

__all__ = ["fmt_seconds", "fmt_with_unit", "seconds_scale"]

_SCALES = ((1.0, "s"), (1e-3, "ms"), (1e-6, "\u00b5s"), (1e-9, "ns"))
_FACTOR = {"s": 1.0, "ms": 1e-3}


def seconds_scale(key: str) -> float | None:
    """How many seconds one unit of ``key``'s values is (None: not a duration).

    >>> seconds_scale("duration_s"), seconds_scale("latency.p50_ms"), seconds_scale("loss")
    (1.0, 0.001, None)
    """
    for suffix, factor in _FACTOR.items():
        if key.endswith(f"_{suffix}") or key == suffix:
            return factor
    return None


def fmt_seconds(seconds: float) -> str:
    """A duration in seconds with 3 significant digits and the unit that suits its size.

    >>> fmt_seconds(0.00669), fmt_seconds(2.15e-05), fmt_seconds(12.0), fmt_seconds(0.0)
    ('6.69 ms', '21.5 µs', '12 s', '0 s')
    >>> fmt_seconds(float("inf"))
    'inf s'
    """
    size = abs(seconds)
    if not math.isfinite(seconds) or size == 0 or size >= 1:
        return f"{seconds:.3g} s"
    for scale, unit in _SCALES:
        if size >= scale * 0.9995:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_with_unit(key: str, value: Any) -> str:
    """A scalar under ``key`` as text: durations with their unit, others by `fmt_value`.

    >>> fmt_with_unit("duration_s", 0.0188), fmt_with_unit("n_rows", 100)
    ('18.8 ms', '100')
    >>> fmt_with_unit("t_s", None)
    ''
    >>> fmt_with_unit("latency.p99_ms", 250.0), fmt_with_unit("flag_s", True)
    ('250 ms', 'true')
    """
    scale = seconds_scale(key)
    if scale is None or isinstance(value, bool) or not isinstance(value, int | float):
        return fmt_value(value)
    return fmt_seconds(value * scale)
