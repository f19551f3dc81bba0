"""Anytime-valid sequential tests: e-values and confidence sequences.

A canary is looked at after every request. A fixed-sample test repeated after every
request raises false alarms far more often than its nominal level; the tests here stay
valid however often they are looked at and whenever monitoring stops. Each statistic is an
*e-process*: a nonnegative process whose expected value is at most 1 under the null
hypothesis at every stopping time, so by Ville's inequality the chance that it *ever*
reaches ``1 / alpha`` is at most ``alpha``. Values are returned as natural logarithms
(e-values grow exponentially under the alternative).

- `beta_binomial_log_evalue`, `share_log_evalues`, `ShareTest`: is the candidate's share of
  some event (errors) larger than its share of traffic? A Beta mixture of binomial
  likelihood ratios on which arm each event came from, conditioned on the routing
  fraction (Lindon & Malek, 2022).
- `categorical_share_log_evalues`, `CategoricalShareTest`: does that share depend on a
  category (the predicted class)? Tests whether the candidate's class distribution equals
  the baseline's.
- `betting_log_evalues`, `BettingTest`, `betting_confidence_sequence`: the mean of bounded
  observations (clipped log-latency differences) by betting (Waudby-Smith & Ramdas, 2023);
  inverted, a confidence sequence (Howard et al., 2021).
- `rate_log_evalue`, `rate_log_evalues`, `RateTest`, `rate_confidence_sequence`: the same
  betting test for a rate (the mean of 0/1 outcomes: how often a candidate's prediction
  differs from the baseline's), in closed form from the counts and vectorized over streams.
- `RoutedRateTest`, `RoutedCategoryTest`: the same two questions when a platform routes
  the traffic at a share not known here: each candidate request is compared with the
  baseline requests nearest it (conditioning on the routing), not with a fraction.
- `psi`, `js_divergence`: effect sizes of a shift between two count vectors.

These are kernels: the canary's decision policy (modes, limits, the report) lives with
`mlchecks.checks.canary.CanaryCheck`.

>>> import numpy as np
>>> hits = np.ones(6, dtype=bool)  # six errors, every one from a candidate with 5% of traffic
>>> bool(share_log_evalues(hits, 0.05)[-1] > np.log(1 / 0.05))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlchecks._validate import as_array
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._betting import (
    BettingTest,
    RateTest,
    betting_confidence_sequence,
    betting_log_evalues,
    rate_confidence_sequence,
    rate_log_evalue,
    rate_log_evalues,
)
from mlchecks.stats._evalue import Alternative, Sided, positive
from mlchecks.stats._routed import RoutedCategoryTest, RoutedRateTest
from mlchecks.stats._share import (
    CategoricalShareTest,
    ShareTest,
    beta_binomial_log_evalue,
    categorical_share_log_evalues,
    share_log_evalues,
)

__all__ = [
    "Alternative",
    "BettingTest",
    "CategoricalShareTest",
    "RateTest",
    "RoutedCategoryTest",
    "RoutedRateTest",
    "ShareTest",
    "Sided",
    "beta_binomial_log_evalue",
    "betting_confidence_sequence",
    "betting_log_evalues",
    "categorical_share_log_evalues",
    "js_divergence",
    "psi",
    "rate_confidence_sequence",
    "rate_log_evalue",
    "rate_log_evalues",
    "share_log_evalues",
]

#: Additive smoothing (pseudo-count per class) of `psi`.
PSI_SMOOTHING = 0.5


def _count_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    ca = as_array(a, "counts_a", ndim=1, dtype=np.float64)
    cb = as_array(b, "counts_b", ndim=1, dtype=np.float64)
    if ca.size != cb.size:
        raise InvalidInput(
            f"'counts_a' and 'counts_b' must have the same length (got {ca.size} and {cb.size})"
        )
    for name, counts in (("counts_a", ca), ("counts_b", cb)):
        if (counts < 0).any():
            first = int(np.argmax(counts < 0))
            raise InvalidInput(
                f"'{name}' must be non-negative counts (got {counts[first]:g} at index {first})"
            )
        if not counts.sum() > 0:
            raise InvalidInput(
                f"'{name}' must hold at least one count (got {counts.size} zeros): a histogram "
                "with no observations has no distribution to compare"
            )
    return ca, cb


def psi(counts_a: Any, counts_b: Any, *, smoothing: float = PSI_SMOOTHING) -> float:
    """Population stability index between two count vectors over the same categories.

    ``PSI = sum_c (p_c - q_c) * ln(p_c / q_c)`` with ``p`` and ``q`` the proportions after
    adding ``smoothing`` to every count (so a category seen on one side only stays finite).
    It is the symmetrised Kullback-Leibler divergence; the usual reading is < 0.1 no
    significant shift, 0.1 to 0.25 moderate, > 0.25 major.

    Args:
        counts_a, counts_b: 1-D non-negative counts, same length.
        smoothing: pseudo-count added to each category (> 0).

    Returns:
        The PSI, a float >= 0.

    Raises:
        InvalidInput: for negative counts, different lengths, or a histogram of zeros.

    >>> round(psi([50, 30, 20], [30, 30, 40], smoothing=1e-12), 4)
    0.2408
    """
    ca, cb = _count_pair(counts_a, counts_b)
    s = positive(smoothing, "smoothing")
    p = (ca + s) / (ca.sum() + s * ca.size)
    q = (cb + s) / (cb.sum() + s * cb.size)
    return float(np.sum((p - q) * np.log(p / q)))


def js_divergence(counts_a: Any, counts_b: Any) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) between two count vectors.

    Computed on the raw proportions (``0 * log 0 = 0``); equals the square of
    `scipy.spatial.distance.jensenshannon` with ``base=2``.

    Raises:
        InvalidInput: for negative counts, different lengths, or a histogram of zeros.

    >>> js_divergence([1, 0], [0, 1])
    1.0
    >>> js_divergence([0, 0, 0], [10, 20, 30])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'counts_a' must hold at least one count (got 3 zeros): ...
    """
    ca, cb = _count_pair(counts_a, counts_b)
    p = ca / ca.sum()
    q = cb / cb.sum()
    mid = 0.5 * (p + q)

    def kl(u: np.ndarray) -> float:
        mask = u > 0
        return float(np.sum(u[mask] * np.log2(u[mask] / mid[mask])))

    return min(1.0, max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))
