"""ROC AUC from midranks, and DeLong's variance for one AUC or two correlated AUCs.

DeLong, DeLong and Clarke-Pearson (1988) write the AUC of m positives and n negatives as
the mean of per-example "structural components": for positive i, ``V10[i]`` is the fraction
of negatives it outscores (ties count one half); for negative j, ``V01[j]`` is the fraction
of positives that outscore it. The AUC's variance is ``var(V10) / m + var(V01) / n``, and
for two models scored on the same examples the covariance comes the same way, so their
AUC difference gets a paired test.

The components come from midranks (Sun and Xu, 2014): with ``T`` the midrank of a score
among all examples and ``Tx``/``Ty`` its midrank among positives/negatives only,
``V10 = (T - Tx) / n`` and ``V01 = 1 - (T - Ty) / m``. One sort per model gives all three
midranks' differences: O(N log N) time and O(N) memory instead of the O(m * n) pairwise
comparison.

>>> y = [0, 0, 1, 1, 0, 1]
>>> roc_auc_midrank(y, [0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
0.8888888888888888
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from mlchecks._validate import as_array, as_labels, check_same_length
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.inference import normal_pvalue
from mlchecks.stats.intervals import ConfidenceInterval, check_confidence, z_value

__all__ = ["DeLongResult", "delong", "delong_ci", "roc_auc_midrank"]


class DeLongResult(NamedTuple):
    """DeLong's test of two correlated AUCs (``difference = auc_a - auc_b``).

    ``statistic`` is the z-score ``difference / standard_error``, ``pvalue`` its
    two-sided p-value, and ``ci`` the confidence interval of the difference.
    """

    auc_a: float
    auc_b: float
    difference: float
    standard_error: float
    statistic: float
    pvalue: float
    ci: ConfidenceInterval


def _scores(value: Any, name: str) -> np.ndarray:
    # Only the order of the scores matters: float32 and float64 are sorted as they are
    # (the same order as their exact float64 values), anything else as float64.
    scores = as_array(value, name, ndim=(1, 2))
    if scores.dtype not in (np.float32, np.float64):
        scores = as_array(scores, name, dtype=np.float64)
    if scores.ndim == 2:
        if scores.shape[1] != 2:
            raise InvalidInput(
                f"'{name}' must be (n,) scores or (n, 2) probabilities (got {scores.shape[1]} "
                "columns); ROC AUC here is binary"
            )
        scores = np.ascontiguousarray(scores[:, 1])
    return scores


def _split(y_true: Any, scores: np.ndarray, minimum: int) -> tuple[np.ndarray, int, int]:
    labels = as_labels(y_true, "y_true", n_classes=2)
    check_same_length(y_true=labels, scores=scores)
    positive = labels == 1
    m = int(np.count_nonzero(positive))
    n = labels.size - m
    if m < minimum or n < minimum:
        what = "DeLong's variance" if minimum > 1 else "ROC AUC"
        raise InvalidInput(
            f"'y_true' must contain at least {minimum} positive and {minimum} negative "
            f"example{'s' if minimum > 1 else ''} for {what} (got {m} positives and "
            f"{n} negatives)"
        )
    return positive, m, n


def _components(
    scores: np.ndarray, positive: np.ndarray, m: int, n: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """The AUC and DeLong's structural components V10 (per positive) and V01 (per negative).

    One sort gives every midrank difference the components need: for a positive,
    ``T - Tx`` is the number of negatives below it plus half of those tied with it; for a
    negative, ``T - Ty`` the same count of positives. These are exact half-integers, so
    the components equal those from three `scipy.stats.rankdata` calls bit for bit.
    """
    order = np.argsort(scores)
    ordered = scores[order]
    size = len(scores)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], size)
    negatives = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(~positive[order], out=negatives[1:])
    neg_before, neg_tied = negatives[starts], negatives[ends] - negatives[starts]
    pos_before, pos_tied = starts - neg_before, (ends - starts) - neg_tied
    # Per tie group: a positive's count of negatives below (ties half), and a negative's
    # count of positives below (ties half); then back to the examples' order.
    group = np.repeat(np.arange(len(starts)), ends - starts)
    below = np.empty(size, dtype=np.float64)
    below[order] = np.where(
        positive[order],
        (neg_before + neg_tied / 2.0)[group],
        (pos_before + pos_tied / 2.0)[group],
    )
    v10 = below[positive] / n
    v01 = 1.0 - below[~positive] / m
    auc = float(np.clip(v10.mean(), 0.0, 1.0))
    return auc, v10, v01


def _variance(v10: np.ndarray, v01: np.ndarray) -> float:
    return float(np.var(v10, ddof=1) / v10.size + np.var(v01, ddof=1) / v01.size)


def roc_auc_midrank(y_true: Any, scores: Any) -> float:
    """Binary ROC AUC as the Mann-Whitney statistic from midranks (ties count one half).

    Args:
        y_true: (n,) labels, 0 or 1 (booleans accepted), with both classes present.
        scores: (n,) real scores for class 1, or (n, 2) probabilities (column 1 is used).

    Returns:
        The AUC in [0, 1], a Python float.

    Raises:
        InvalidInput: for a single class, labels other than 0/1, NaN, empty or mismatched
            inputs.

    >>> roc_auc_midrank([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])
    0.875
    """
    values = _scores(scores, "scores")
    positive, m, n = _split(y_true, values, 1)
    return _components(values, positive, m, n)[0]


def delong_ci(y_true: Any, scores: Any, *, confidence: float = 0.95) -> ConfidenceInterval:
    """A confidence interval for one ROC AUC from DeLong's variance.

    The interval is ``auc ± z * sqrt(var(V10)/m + var(V01)/n)``, clipped to [0, 1].

    Args:
        y_true: (n,) labels, 0 or 1, with at least 2 examples of each class.
        scores: (n,) scores for class 1, or (n, 2) probabilities.
        confidence: the two-sided coverage, in (0, 1).

    Returns:
        A `ConfidenceInterval` of Python floats.

    Raises:
        InvalidInput: for fewer than 2 positives or negatives, NaN, or mismatched inputs.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> low, high = delong_ci(y, y + rng.normal(0, 1, 1000))
    >>> round(low, 3), round(high, 3)
    (0.762, 0.818)
    """
    level = check_confidence(confidence)
    values = _scores(scores, "scores")
    positive, m, n = _split(y_true, values, 2)
    auc, v10, v01 = _components(values, positive, m, n)
    half = z_value(level) * math.sqrt(_variance(v10, v01))
    return ConfidenceInterval(max(0.0, auc - half), min(1.0, auc + half))


def delong(y_true: Any, scores_a: Any, scores_b: Any, *, confidence: float = 0.95) -> DeLongResult:
    """DeLong's test and confidence interval for the difference of two correlated AUCs.

    Both models score the same examples. The variance of ``auc_a - auc_b`` is
    ``var(V10_a - V10_b) / m + var(V01_a - V01_b) / n``; the test is the z-test of a zero
    difference. With a zero standard error (identical rankings, or two perfect
    separators) the difference is taken as exact: p = 1 when it is 0, else 0.

    Args:
        y_true: (n,) labels, 0 or 1, with at least 2 examples of each class.
        scores_a: (n,) scores of model a for class 1, or (n, 2) probabilities.
        scores_b: the same for model b.
        confidence: the two-sided coverage of the interval of the difference.

    Returns:
        A `DeLongResult` of Python floats.

    Raises:
        InvalidInput: for fewer than 2 positives or negatives, NaN, mismatched lengths.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> res = delong(y, y + rng.normal(0, 1, 1000), y + rng.normal(0, 2, 1000))
    >>> round(res.difference, 3), res.pvalue < 0.001
    (0.131, True)
    """
    level = check_confidence(confidence)
    a = _scores(scores_a, "scores_a")
    b = _scores(scores_b, "scores_b")
    check_same_length(scores_a=a, scores_b=b)
    positive, m, n = _split(y_true, a, 2)
    auc_a, v10_a, v01_a = _components(a, positive, m, n)
    auc_b, v10_b, v01_b = _components(b, positive, m, n)
    difference = auc_a - auc_b
    se = math.sqrt(_variance(v10_a - v10_b, v01_a - v01_b))
    if se > 0.0:
        statistic = difference / se
    else:
        statistic = 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    pvalue = normal_pvalue(difference, se, 0.0, alternative="two-sided")
    half = z_value(level) * se
    ci = ConfidenceInterval(max(-1.0, difference - half), min(1.0, difference + half))
    return DeLongResult(auc_a, auc_b, difference, se, statistic, pvalue, ci)
