"""Bounded series for a check's ``details``: what report figures draw, downsampled.

A check may see thousands of training steps or requests; its result keeps at most
`MAX_POINTS` of them, so results, JSON and HTML reports stay small whatever the run's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "MAX_POINTS",
    "even_indices",
    "priority_indices",
    "quantile_sample",
    "significant",
]

#: The most points a series in ``details`` holds.
MAX_POINTS = 500


def even_indices(n: int, limit: int = MAX_POINTS, keep: Iterable[int] = ()) -> np.ndarray:
    """At most ``limit`` sorted indices into ``range(n)``: evenly spaced, ends and ``keep`` kept.

    ``keep`` (indices outside ``range(n)`` are ignored) always survives, so a marked step
    such as the first divergence sits on the downsampled curve.

    >>> even_indices(5).tolist()
    [0, 1, 2, 3, 4]
    >>> even_indices(101, limit=5).tolist()
    [0, 25, 50, 75, 100]
    >>> even_indices(101, limit=5, keep=[40]).tolist()
    [0, 33, 40, 67, 100]
    """
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    kept = np.unique([int(k) for k in keep if 0 <= k < n]).astype(np.int64)
    if kept.size > limit // 2:
        kept = kept[np.round(np.linspace(0, kept.size - 1, limit // 2)).astype(np.int64)]
    base = np.round(np.linspace(0, n - 1, max(2, limit - kept.size))).astype(np.int64)
    return np.union1d(base, kept)


def priority_indices(important: Sequence[bool] | np.ndarray, limit: int = MAX_POINTS) -> np.ndarray:
    """At most ``limit`` sorted indices, the ``important`` ones first, the rest evenly spaced.

    Up to half of ``limit`` goes to important entries (evenly thinned when there are more);
    the remaining room is filled evenly from the others.

    >>> flags = [False] * 100
    >>> flags[42] = True
    >>> idx = priority_indices(flags, limit=4)
    >>> 42 in idx.tolist(), len(idx)
    (True, 4)
    """
    flags = np.asarray(important, dtype=bool)
    n = flags.size
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    marked = np.flatnonzero(flags)
    if marked.size > limit // 2:
        marked = marked[even_indices(marked.size, limit // 2)]
    others = np.flatnonzero(~flags)
    if others.size:
        others = others[even_indices(others.size, limit - marked.size)]
    return np.union1d(marked, others).astype(np.int64)


def quantile_sample(
    values: Sequence[float] | np.ndarray, limit: int = MAX_POINTS, digits: int = 4
) -> list[float]:
    """The sorted values, or ``limit`` evenly spaced quantiles of them when there are more.

    Either way the list draws the sample's empirical distribution (its ECDF). Values keep
    ``digits`` significant digits.

    >>> quantile_sample([3.0, 1.0, 2.0])
    [1.0, 2.0, 3.0]
    >>> quantile_sample(range(101), limit=3)
    [0.0, 50.0, 100.0]
    """
    array = np.sort(np.asarray(values, dtype=np.float64))
    if array.size > limit:
        array = np.quantile(array, np.linspace(0.0, 1.0, limit))
    return significant(array, digits)


def significant(values: Iterable[float], digits: int = 4) -> list[float]:
    """``values`` as Python floats with ``digits`` significant digits (non-finite kept).

    >>> significant([0.00123456, 98765.4, float("inf")])
    [0.001235, 98770.0, inf]
    """
    return [float(f"{float(v):.{digits}g}") for v in values]
