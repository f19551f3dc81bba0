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
midranks' differences (`mlchecks.stats._auc_tables.rank_tables`, which also gives them per
slice without sorting again): O(N log N) time and O(N) memory instead of the O(m * n)
pairwise comparison. The AUC is the exact Mann-Whitney ``U`` over ``m * n``, rounded once
(the value of `mlchecks.stats.metrics.roc_auc`, bit for bit); the variances are sums of
squared deviations of exact integers, equal to the components' to rounding.

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
from mlchecks.stats._auc_tables import RankTable, rank_tables
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
    # (the same order as their exact float64 values), anything else as float64. Column 1
    # of (n, 2) probabilities stays a view (the sort reads it block by block).
    scores = as_array(value, name, ndim=(1, 2))
    if scores.dtype not in (np.float32, np.float64):
        scores = as_array(scores, name, dtype=np.float64)
    if scores.ndim == 2:
        if scores.shape[1] != 2:
            raise InvalidInput(
                f"'{name}' must be (n,) scores or (n, 2) probabilities (got {scores.shape[1]} "
                "columns); ROC AUC here is binary"
            )
        scores = scores[:, 1]
    return scores


def _class_counts_error(m: int, n: int, minimum: int) -> InvalidInput:
    what = "DeLong's variance" if minimum > 1 else "ROC AUC"
    return InvalidInput(
        f"'y_true' must contain at least {minimum} positive and {minimum} negative "
        f"example{'s' if minimum > 1 else ''} for {what} (got {m} positives and "
        f"{n} negatives)"
    )


def _table(y_true: Any, a: np.ndarray, b: np.ndarray | None, minimum: int) -> RankTable:
    """The midrank table of all examples, after checking the labels and class counts."""
    labels = as_labels(y_true, "y_true", n_classes=2)
    check_same_length(y_true=labels, scores=a)
    m = int(np.count_nonzero(labels))
    n = labels.size - m
    if m < minimum or n < minimum:
        raise _class_counts_error(m, n, minimum)
    tables = rank_tables(labels, a, b, [(None, 1)])
    assert tables is not None  # the labels are 0 and 1
    return tables[0]


def _counts(table: RankTable, code: int) -> tuple[int, int]:
    return int(table.positive[0][code]), int(table.negative[0][code])


def table_auc(table: RankTable, code: int = 0) -> tuple[float, float | None]:
    """The AUC of model a (and of model b) in slice ``code`` of a `rank_tables` table.

    ``U / (m * n)`` with the Mann-Whitney ``U`` exact, rounded once: the value of
    `mlchecks.stats.metrics.roc_auc`, bit for bit.

    >>> from mlchecks.stats._auc_tables import rank_tables
    >>> y, s = np.array([0, 1, 1, 0]), np.array([0.5, 0.5, 0.2, 0.9])
    >>> table_auc(rank_tables(y, s, None, [(None, 1)])[0])
    (0.125, None)
    """
    m, n = _counts(table, code)
    auc_a = (int(table.u_a[code]) / 2.0) / (m * n)
    if table.u_b is None:
        return auc_a, None
    return auc_a, (int(table.u_b[code]) / 2.0) / (m * n)


def _variance(table: RankTable, code: int) -> float:
    """``var(V10) / m + var(V01) / n`` of the table's kept values (twice the components'
    numerators: ``V10 = below / n``, ``V01 = 1 - below / m``)."""
    m, n = _counts(table, code)
    m2_pos, m2_neg = float(table.positive[2][code]), float(table.negative[2][code])
    return (m2_pos / (4.0 * n * n)) / (m - 1) / m + (m2_neg / (4.0 * m * m)) / (n - 1) / n


def table_delong(table: RankTable, code: int = 0, confidence: float = 0.95) -> DeLongResult:
    """`delong` in slice ``code`` of a two-model `rank_tables` table.

    Raises:
        InvalidInput: for fewer than 2 positives or negatives in the slice.

    >>> from mlchecks.stats._auc_tables import rank_tables
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> a, b = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]), np.array([0.3, 0.1, 0.2, 0.6, 0.5, 0.4])
    >>> round(table_delong(rank_tables(y, a, b, [(None, 1)])[0]).difference, 4)
    0.2222
    """
    m, n = _counts(table, code)
    if m < 2 or n < 2:
        raise _class_counts_error(m, n, 2)
    auc_a, auc_b = table_auc(table, code)
    assert auc_b is not None
    difference = auc_a - auc_b
    se = math.sqrt(_variance(table, code))
    if se > 0.0:
        statistic = difference / se
    else:
        statistic = 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    pvalue = normal_pvalue(difference, se, 0.0, alternative="two-sided")
    half = z_value(confidence) * se
    ci = ConfidenceInterval(max(-1.0, difference - half), min(1.0, difference + half))
    return DeLongResult(auc_a, auc_b, difference, se, statistic, pvalue, ci)


def table_delong_ci(
    table: RankTable, code: int = 0, confidence: float = 0.95
) -> ConfidenceInterval:
    """`delong_ci` in slice ``code`` of a one-model `rank_tables` table.

    Raises:
        InvalidInput: for fewer than 2 positives or negatives in the slice.

    >>> from mlchecks.stats._auc_tables import rank_tables
    >>> y, s = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])
    >>> table_delong_ci(rank_tables(y, s, None, [(None, 1)])[0])
    ConfidenceInterval(low=1.0, high=1.0)
    """
    m, n = _counts(table, code)
    if m < 2 or n < 2:
        raise _class_counts_error(m, n, 2)
    auc = table_auc(table, code)[0]
    half = z_value(confidence) * math.sqrt(_variance(table, code))
    return ConfidenceInterval(max(0.0, auc - half), min(1.0, auc + half))


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
    return table_auc(_table(y_true, _scores(scores, "scores"), None, 1))[0]


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
    return table_delong_ci(_table(y_true, _scores(scores, "scores"), None, 2), 0, level)


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
    return table_delong(_table(y_true, a, b, 2), 0, level)
