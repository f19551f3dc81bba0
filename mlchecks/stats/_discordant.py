"""Exact conditional bounds of a paired accuracy difference from its discordant counts.

`discordant_interval` and `discordant_pvalue` are public through `mlchecks.stats.paired`;
`mcnemar_two_sided` is the O(1) two-sided exact McNemar p-value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlchecks._validate import check_int
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.intervals import ConfidenceInterval, check_confidence, clopper_pearson

__all__ = ["discordant_interval", "discordant_pvalue", "mcnemar_two_sided"]


def mcnemar_two_sided(b: int, c: int) -> float:
    """``scipy.stats.binomtest(b, b + c).pvalue`` in O(1): the binomial at 1/2 is symmetric.

    The two-sided p-value is ``2 * P(X <= min(b, c))`` (capped at 1), which needs one call to
    the regularized incomplete beta function instead of binomtest's search over the pmf.
    """
    if b + c == 0:
        return 1.0
    from scipy.special import bdtr

    return min(1.0, 2.0 * float(bdtr(min(b, c), b + c, 0.5)))


def _discordant_bounds(b: Any, c: Any, n: Any, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of ``(pi_b - pi_c)``, each failing with probability <= level.

    ``pi_b - pi_c = pi_d * (2 p - 1)`` with ``pi_d`` the disagreement rate and ``p`` the
    share of disagreements won by the model that raises the metric. ``p`` gets an exact
    Clopper-Pearson bound given the ``b + c`` disagreements (tail ``level / 2``) and
    ``pi_d`` a two-sided Clopper-Pearson interval (tails ``level / 4``): by the union bound
    each end of the product holds with probability >= ``1 - level``. Vectorized.
    """
    b, c = np.asarray(b, dtype=np.float64), np.asarray(c, dtype=np.float64)
    p_low, p_high = clopper_pearson(b, b + c, 1.0 - level)
    d_low, d_high = clopper_pearson(b + c, n, 1.0 - level / 2.0)
    low_share, high_share = 2.0 * p_low - 1.0, 2.0 * p_high - 1.0
    low = np.minimum(d_low * low_share, d_high * low_share)
    high = np.maximum(d_low * high_share, d_high * high_share)
    return low, high


def discordant_interval(b: int, c: int, n: int, confidence: float = 0.95) -> ConfidenceInterval:
    """An exact conditional interval of a paired accuracy difference ``(b - c) / n``.

    ``b`` counts the examples only the first model gets right, ``c`` those only the second
    gets right, ``n`` all examples. Unlike the Wald interval of paired proportions, which
    covers about 87% at n = 100 when the models disagree on 3 examples, each end holds
    with probability at least ``(1 + confidence) / 2`` at every n and every number of
    disagreements (it is conservative: see `_discordant_bounds`).

    Raises:
        InvalidInput: for negative or non-integer counts, ``b + c > n`` or a confidence
            outside (0, 1).

    >>> [round(x, 4) for x in discordant_interval(3, 0, 100)]
    [-0.0551, 0.1028]
    """
    n = check_int(n, "n", minimum=1)
    b, c = check_int(b, "b"), check_int(c, "c")
    if b + c > n:
        raise InvalidInput(f"'b + c' must be <= n={n} (got {b + c})")
    level = check_confidence(confidence)
    low, high = _discordant_bounds(b, c, n, (1.0 - level) / 2.0)
    return ConfidenceInterval(float(low), float(high))


def discordant_pvalue(b: int, c: int, n: int, limit: float, *, below: bool) -> float:
    """One-sided p-value that ``(pi_b - pi_c)`` is below (or above) ``limit``, exactly.

    The smallest level at which the one-sided bound of `discordant_interval`'s method
    excludes ``limit`` (found by bisection), so a test at ``alpha / 2`` agrees with the
    two-sided ``1 - alpha`` interval.

    >>> round(discordant_pvalue(0, 10, 200, -0.01, below=True), 4)
    0.0725
    """

    def shown(level: float) -> bool:
        low, high = _discordant_bounds(b, c, n, level)
        return bool(high < limit) if below else bool(low > limit)

    if not shown(1.0):
        return 1.0
    lo, hi = 0.0, 1.0  # not shown at lo, shown at hi
    for _ in range(50):
        mid = (lo + hi) / 2.0
        if shown(mid):
            hi = mid
        else:
            lo = mid
    return hi
