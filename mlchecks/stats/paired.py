"""A metric of one model with its interval, and of two models compared on the same examples.

- `metric_estimate`: one model's metric with a confidence interval.
- `paired_difference`: candidate minus baseline for one metric, both models scored on the
  same examples (a paired comparison), with its standard error, a two-sided p-value of "no
  difference", `PairedResult.confidence_interval` and `PairedResult.margin_pvalue` for
  one-sided non-inferiority and regression tests against a margin.
- `paired_correctness`: the same for accuracy or the error rate from the 2x2 table of
  per-example correctness, so per-slice tables from one `np.bincount` need no rows.

Which method each metric gets (one model's interval; the paired difference):

- accuracy, error rate: Clopper-Pearson (exact); paired proportions (Wald) with exact
  McNemar p-values, or with ``exact=True`` the exact conditional interval of
  `discordant_interval` (for slices, where the models disagree on a handful of examples);
- roc_auc: DeLong's interval; DeLong's test for two correlated AUCs;
- precision, recall, F1 (and ``_macro``): a bootstrap of the confusion counts; the
  delta-method standard error of the joint (true, candidate, baseline) counts (the limit of
  their count bootstrap, in O(cells));
- means of per-example values (log loss, Brier, MSE, MAE): the exact bootstrap standard
  error of a mean; the same, of the paired per-example differences;
- anything else: a percentile row bootstrap; the standard error of a paired row bootstrap.

Bootstrapped differences use a normal interval and p-value from the bootstrap standard
error, so interval and test agree and p-values are not limited to ``1 / n_resamples``.

>>> y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
>>> res = paired_difference("accuracy", y, np.array([0, 1, 1, 0, 1, 0, 0, 1]), 1 - y)
>>> res.statistic, res.pvalue, res.discordant
(0.875, 0.015625, (7, 0))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks._validate import as_array, as_labels, check_choice, check_int, to_array
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._discordant import _discordant_bounds as _discordant_bounds
from mlchecks.stats._discordant import discordant_interval, discordant_pvalue, mcnemar_two_sided
from mlchecks.stats._metric_inputs import classification_inputs
from mlchecks.stats.auc import DeLongResult, delong, delong_ci
from mlchecks.stats.inference import (
    mcnemar_exact_counts,
    normal_pvalue,
    paired_accuracy_difference_counts,
)
from mlchecks.stats.intervals import (
    ConfidenceInterval,
    bootstrap_counts,
    bootstrap_rows,
    check_confidence,
    clopper_pearson_interval,
    normal_interval,
    std,
)
from mlchecks.stats.metrics import CORRECTNESS_METRICS, Metric, get_metric, predicted_labels
from mlchecks.stats.sliced import sliced_confusion

__all__ = [
    "CONFUSION_METRICS",
    "MARGIN_TESTS",
    "MarginTest",
    "MetricEstimate",
    "PairedResult",
    "confusion_estimate",
    "confusion_statistic",
    "correctness_estimate",
    "discordant_interval",
    "discordant_pvalue",
    "mean_standard_error",
    "metric_estimate",
    "paired_confusion",
    "paired_correctness",
    "paired_difference",
]

#: ``"noninferiority"`` shows the candidate is worse by less than a margin;
#: ``"regression"`` shows it is worse by more.
MarginTest = Literal["noninferiority", "regression"]
MARGIN_TESTS: tuple[MarginTest, ...] = ("noninferiority", "regression")

#: Metrics of the confusion counts alone, bootstrapped by resampling the counts.
CONFUSION_METRICS = ("precision", "recall", "f1", "precision_macro", "recall_macro", "f1_macro")

_NAN_CI = ConfidenceInterval(math.nan, math.nan)
_UNBOUNDED = (-math.inf, math.inf)


@attrs.frozen
class MetricEstimate:
    """One model's metric with its confidence interval (Python floats).

    Args:
        statistic: the metric's value.
        confidence_interval: its two-sided interval at the requested level.
        n: the number of examples.
        method: how the interval was computed (``"clopper-pearson"``, ``"delong"``, ...).
    """

    statistic: float = attrs.field(converter=float)
    confidence_interval: ConfidenceInterval
    n: int
    method: str


@attrs.frozen
class PairedResult:
    """Candidate minus baseline for one metric on the same examples (Python floats).

    Args:
        statistic: ``candidate - baseline``.
        pvalue: the two-sided p-value of "no difference" (exact McNemar for accuracy and
            the error rate; NaN when the standard error is undefined).
        standard_error: the standard error of ``statistic`` (NaN when undefined).
        candidate: the candidate's metric.
        baseline: the baseline's metric.
        n: the number of examples.
        method: how the standard error was computed.
        discordant: for accuracy and the error rate, ``(b, c)`` with
            ``statistic == (b - c) / n``: the examples where only the model that raises the
            metric was right, and those where only the other one was. None otherwise.
        bounds: the range the difference can take (the interval is clipped to it).
        exact: with ``discordant``, use `discordant_interval` and `discordant_pvalue`
            (exact conditional bounds) instead of the normal approximation.
    """

    statistic: float = attrs.field(converter=float)
    pvalue: float = attrs.field(converter=float)
    standard_error: float = attrs.field(converter=float)
    candidate: float = attrs.field(converter=float)
    baseline: float = attrs.field(converter=float)
    n: int
    method: str
    discordant: tuple[int, int] | None = None
    bounds: tuple[float, float] = attrs.field(default=_UNBOUNDED, repr=False)
    exact: bool = False

    @classmethod
    def of_delong(cls, res: DeLongResult, n: int) -> PairedResult:
        """The paired ROC AUC difference of a `delong` (or per-slice) result on ``n`` rows.

        >>> from mlchecks.stats.auc import delong
        >>> y = np.array([0, 0, 1, 1, 0, 1])
        >>> r = PairedResult.of_delong(delong(y, y * 0.6 + 0.2, 1.0 - y * 0.5), 6)
        >>> r.method, r.candidate, r.baseline
        ('delong', 1.0, 0.0)
        """
        return cls(
            res.difference,
            res.pvalue,
            res.standard_error,
            res.auc_a,
            res.auc_b,
            n,
            "delong",
            bounds=(-1.0, 1.0),
        )

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """The two-sided normal interval ``statistic ± z * standard_error``.

        With ``exact`` (and ``discordant``) the exact conditional `discordant_interval`.
        NaN at both ends when the standard error is undefined.
        """
        level = check_confidence(confidence_level, "confidence_level")
        if self.exact and self.discordant is not None:
            return discordant_interval(*self.discordant, self.n, level)
        if not math.isfinite(self.standard_error):
            return _NAN_CI
        low, high = normal_interval(self.statistic, self.standard_error, level)
        return ConfidenceInterval(max(self.bounds[0], low), min(self.bounds[1], high))

    def margin_pvalue(self, margin: float, *, higher_is_better: bool, test: MarginTest) -> float:
        """One-sided p-value on the worsening ``w`` (how much worse the candidate is).

        ``w`` is ``-statistic`` when ``higher_is_better``, else ``statistic``.
        ``test="regression"`` tests ``w > margin`` (exact McNemar when the margin is 0 and
        the discordant counts are known); ``"noninferiority"`` tests ``w < margin``. A zero
        standard error makes the estimate exact: p is 0 when it shows the alternative
        (``w <= margin`` counts as non-inferior) and 1 otherwise.

        Raises:
            InvalidInput: for an unknown test, or when the standard error is undefined.
        """
        kind = check_choice(test, "test", MARGIN_TESTS)
        worsening = -self.statistic if higher_is_better else self.statistic
        regression = kind == "regression"
        if self.exact and self.discordant is not None and not (regression and margin == 0.0):
            # the difference d = statistic; w > m is d < -m (higher is better) or d > m
            limit = -margin if higher_is_better else margin
            below = regression == higher_is_better  # the alternative is d < limit
            return discordant_pvalue(*self.discordant, self.n, limit, below=below)
        if self.standard_error == 0.0 and not self.exact:
            shown = worsening > margin if regression else worsening <= margin
            return 0.0 if shown else 1.0
        if regression and margin == 0.0 and self.discordant is not None:
            b, c = self.discordant if higher_is_better else self.discordant[::-1]
            return mcnemar_exact_counts(b, c, self.n, alternative="less").pvalue
        side: Literal["greater", "less"] = "greater" if regression else "less"
        return normal_pvalue(worsening, self.standard_error, margin, alternative=side)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def confusion_statistic(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorized precision/recall/F1 from (r, C, C) [true, predicted] confusion tables.

    Mirrors `mlchecks.stats.metrics`: zero division counts 0; ``binary`` scores class 1;
    ``macro`` averages the classes that occur as a true or a predicted label.

    >>> confusion_statistic("recall")(np.array([[[3, 1], [2, 4]]])).tolist()
    [0.6666666666666666]
    """
    base, _, average = name.partition("_")

    def statistic(tables: np.ndarray) -> np.ndarray:
        hits = np.diagonal(tables, axis1=-2, axis2=-1)
        predicted = tables.sum(axis=-2)
        actual = tables.sum(axis=-1)
        per_class = _per_class(base, hits, predicted, actual)
        if average != "macro":
            if per_class.shape[-1] < 2:
                return np.zeros(per_class.shape[:-1])
            result: np.ndarray = per_class[..., 1]
            return result
        support = (predicted + actual) > 0
        return _ratio((per_class * support).sum(axis=-1), support.sum(axis=-1))

    return statistic


def _per_class(
    base: str, hits: np.ndarray, predicted: np.ndarray, actual: np.ndarray
) -> np.ndarray:
    """Per-class precision, recall or F1 (``base``) from the counts of each class."""
    if base == "precision":
        return _ratio(hits, predicted)
    if base == "recall":
        return _ratio(hits, actual)
    return _ratio(2 * hits, predicted + actual)


def _extent(table: np.ndarray) -> int:
    """1 + the largest class index with a count in any axis of a square count table."""
    used = np.zeros(table.shape[0], dtype=np.bool_)
    for axis in range(table.ndim):
        others = tuple(a for a in range(table.ndim) if a != axis)
        used |= table.sum(axis=others) > 0
    return int(np.flatnonzero(used)[-1]) + 1 if used.any() else 1


def _confusion_value(name: str, table: np.ndarray) -> float:
    """``metrics.<name>(y_true, y_pred)`` from the [true, predicted] counts, bit for bit.

    Raises the metric's own `InvalidInput` for classes above 1 with a binary average.
    """
    base, _, average = name.partition("_")
    size = _extent(table)
    if average != "macro" and size > 2:
        raise InvalidInput(
            f"average='binary' needs labels 0 and 1 (got class {size - 1}); "
            "use average='macro' for more classes"
        )
    table = table[:size, :size]
    hits = np.diagonal(table).astype(np.int64)
    predicted, actual = table.sum(axis=0), table.sum(axis=1)
    per_class = _per_class(base, hits, predicted, actual)
    if average != "macro":
        return float(per_class[1]) if per_class.size > 1 else 0.0
    return float(per_class[(predicted + actual) > 0].mean())


def correctness_estimate(
    name: str, correct: int, n: int, *, confidence_level: float = 0.95
) -> MetricEstimate:
    """`metric_estimate` of accuracy or the error rate from ``correct`` of ``n`` examples.

    >>> est = correctness_estimate("error_rate", 3, 4)
    >>> est.statistic, est.method
    (0.25, 'clopper-pearson')
    """
    found = check_choice(name, "metric", CORRECTNESS_METRICS)
    level = check_confidence(confidence_level, "confidence_level")
    hits = correct if found == "accuracy" else n - correct
    ci = clopper_pearson_interval(hits, n, level)
    return MetricEstimate(hits / n, ci, n, "clopper-pearson")


def confusion_estimate(
    name: str,
    table: Any,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 1000,
    rng: Any = None,
) -> MetricEstimate:
    """`metric_estimate` of a confusion metric from its [true, predicted] counts.

    The same value, interval and random draws as `metric_estimate` on the examples the
    counts come from (trailing all-zero classes are ignored), without the examples.

    >>> est = confusion_estimate("recall", [[5, 1], [2, 6]], rng=0)
    >>> est.statistic, est.method
    (0.75, 'count bootstrap')
    """
    found = check_choice(name, "metric", CONFUSION_METRICS)
    level = check_confidence(confidence_level, "confidence_level")
    counts = as_array(table, "table", ndim=2).astype(np.int64, copy=False)
    value = _confusion_value(found, counts)
    size = _extent(counts)
    boot = bootstrap_counts(
        counts[:size, :size],
        confusion_statistic(found),
        n_resamples=n_resamples,
        confidence=level,
        rng=rng,
    )
    return MetricEstimate(value, boot.ci, int(counts.sum()), "count bootstrap")


def paired_confusion(
    name: str, joint: Any, *, n_resamples: int = 1000, rng: Any = None
) -> PairedResult:
    """`paired_difference` of a confusion metric from the joint (true, candidate, baseline)
    counts: the same result, without the examples.

    The standard error is the delta method's (`DELTA_METHOD`): deterministic, so
    ``n_resamples`` and ``rng`` are unused (kept for callers that pass them).

    >>> joint = np.zeros((2, 2, 2), dtype=int)
    >>> joint[1, 1, 0], joint[0, 0, 0], joint[1, 1, 1] = 3, 5, 4
    >>> res = paired_confusion("recall", joint, rng=0)
    >>> res.candidate, res.baseline, round(res.statistic, 4)
    (1.0, 0.5714285714285714, 0.4286)
    """
    found = check_choice(name, "metric", CONFUSION_METRICS)
    counts = as_array(joint, "joint", ndim=3).astype(np.int64, copy=False)
    value_cand = _confusion_value(found, counts.sum(axis=2))
    value_base = _confusion_value(found, counts.sum(axis=1))
    size = _extent(counts)
    se = _joint_standard_error(found, counts[:size, :size, :size])
    return _paired_result(value_cand, value_base, se, int(counts.sum()), DELTA_METHOD)


#: The method of `paired_confusion` (and `paired_difference` of a confusion metric).
DELTA_METHOD = "delta method (counts)"


def _influence(name: str, table: np.ndarray) -> np.ndarray:
    """``d statistic / d table[t, p]`` of a confusion metric at the [true, predicted] counts.

    Per class ``k``, precision is ``h_k / p_k``, recall ``h_k / a_k`` and F1
    ``2 h_k / (p_k + a_k)`` (hits, predicted and actual counts); a cell ``(t, p)`` adds one to
    ``a_t`` and ``p_p``, and to ``h_t`` when ``t == p``. Classes with a zero denominator
    contribute nothing (their value is 0 in every resample: no row of theirs exists).
    """
    base, _, average = name.partition("_")
    c = table.shape[0]
    hits = np.diagonal(table).astype(np.float64)
    predicted, actual = table.sum(axis=0), table.sum(axis=1)
    denominator = {"precision": predicted, "recall": actual}.get(base, predicted + actual)
    scale = 2.0 if base == "f1" else 1.0
    d_hit = _ratio(np.full(c, scale), denominator)
    d_denominator = -_ratio(scale * hits, denominator.astype(np.float64) ** 2)
    d_pred = d_denominator if base != "recall" else np.zeros(c)
    d_act = d_denominator if base != "precision" else np.zeros(c)
    keep = np.zeros(c)
    if average == "macro":
        support = (predicted + actual) > 0
        keep[support] = 1.0 / max(int(support.sum()), 1)
    elif c > 1:
        keep[1] = 1.0
    out: np.ndarray = (keep * d_act)[:, None] + (keep * d_pred)[None, :]
    out[np.diag_indices(c)] += keep * d_hit
    return out


def _joint_standard_error(name: str, joint: np.ndarray) -> float:
    """The delta-method standard error of ``stat(candidate) - stat(baseline)`` from the
    joint [true, candidate, baseline] counts.

    With ``psi`` the derivative of the difference with respect to each cell, a row bootstrap
    draws the cells from a multinomial, and the variance of the linearized statistic is
    ``sum(n_i psi_i**2) - sum(n_i psi_i)**2 / n``: the limit of the count bootstrap's standard
    error as the resamples grow, computed in O(C**3) instead of resamples times cells.
    """
    counts = joint.astype(np.float64)
    psi = (
        _influence(name, joint.sum(axis=2))[:, :, None]
        - _influence(name, joint.sum(axis=1))[:, None, :]
    )
    total = float(counts.sum())
    first = float((counts * psi).sum())
    variance = float((counts * psi * psi).sum()) - first * first / total
    return math.sqrt(max(variance, 0.0))


def _paired_result(cand: float, base: float, se: float, n: int, method: str) -> PairedResult:
    difference = cand - base
    if not math.isfinite(se):
        pvalue = math.nan
    else:
        pvalue = normal_pvalue(difference, se, 0.0, alternative="two-sided")
    return PairedResult(difference, pvalue, se, cand, base, n, method)


def mean_standard_error(values: np.ndarray) -> float:
    """The bootstrap standard error of a mean, exactly: ``sqrt(sum((x - mean)**2)) / n``.

    This is the limit of the resampling estimate as the number of resamples grows (Efron and
    Tibshirani, 1993, section 5.2), so metrics that are means of per-example values get their
    bootstrap interval in one O(n) pass instead of ``n_resamples`` passes.

    >>> mean_standard_error(np.array([0.0, 2.0, 4.0, 6.0]))
    1.118033988749895
    """
    array = as_array(values, "values", ndim=1, dtype=np.float64)
    return std(array) / math.sqrt(array.size)


def metric_estimate(
    metric: str | Metric | Callable[[Any, Any], float],
    y_true: Any,
    y_pred: Any,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 1000,
    rng: Any = None,
) -> MetricEstimate:
    """One model's metric with a confidence interval (method by metric, see the module).

    Args:
        metric: a metric name, a `Metric` or a callable (see `get_metric`).
        y_true: (n,) labels or targets.
        y_pred: the model's predictions, as the metric takes them.
        confidence_level: the two-sided coverage, in (0, 1).
        n_resamples: bootstrap resamples where a bootstrap is used.
        rng: None, an int seed or a `numpy.random.Generator` for the bootstraps.

    Raises:
        InvalidInput: for inputs the metric rejects.

    >>> est = metric_estimate("accuracy", [0, 1, 1, 1], [0, 1, 1, 0])
    >>> est.statistic, est.method, round(est.confidence_interval.low, 4)
    (0.75, 'clopper-pearson', 0.1941)
    """
    found = get_metric(metric)
    level = check_confidence(confidence_level, "confidence_level")
    y = to_array(y_true, "y_true")
    n = len(y) if y.ndim else 0
    if found.name in CORRECTNESS_METRICS and get_metric(found.name) is found:
        truth, guess = classification_inputs(y, y_pred)
        correct = int(np.count_nonzero(guess == truth))
        return correctness_estimate(found.name, correct, n, confidence_level=level)
    if found.name == "roc_auc":
        return MetricEstimate(found(y, y_pred), delong_ci(y, y_pred, confidence=level), n, "delong")
    if found.count_based and found.name in CONFUSION_METRICS:
        truth, guess = as_labels(y, "labels"), predicted_labels(y_pred)
        size = int(max(truth.max(), guess.max())) + 1
        value = found(y, y_pred)  # first: it rejects inputs the metric does not accept
        table = sliced_confusion(np.zeros(len(truth), dtype=np.intp), 1, truth, guess, size)[0]
        boot = bootstrap_counts(
            table,
            confusion_statistic(found.name),
            n_resamples=n_resamples,
            confidence=level,
            rng=rng,
        )
        return MetricEstimate(value, boot.ci, n, "count bootstrap")
    if found.per_example is not None:
        values = np.asarray(found.per_example(y, y_pred), dtype=np.float64)
        mean = float(values.mean())
        ci = normal_interval(mean, mean_standard_error(values), level)
        return MetricEstimate(mean, ci, n, "mean with its exact bootstrap se")
    boot_rows = bootstrap_rows(found, y, y_pred, n_resamples=n_resamples, confidence=level, rng=rng)
    return MetricEstimate(boot_rows.estimate, boot_rows.ci, n, "row bootstrap")


def paired_correctness(
    table: Any, *, metric: str = "accuracy", exact: bool = False
) -> PairedResult:
    """Paired accuracy (or error rate) from the 2x2 correctness counts of two models.

    Args:
        table: ``table[i][j]`` counts examples with candidate right == i and baseline
            right == j (``[[neither, baseline only], [candidate only, both]]``).
        metric: ``"accuracy"`` or ``"error_rate"`` (the mirror image: 1 - accuracy).
        exact: use the exact conditional interval and tests of `discordant_interval` (for
            few disagreements) instead of the normal approximation.

    Returns:
        A `PairedResult` with the Wald standard error of paired proportions and the exact
        two-sided McNemar p-value.

    Raises:
        InvalidInput: for negative or non-integer counts, an empty table or another metric.

    >>> res = paired_correctness([[900, 40], [60, 9000]])
    >>> round(res.statistic, 4), round(res.pvalue, 4)
    (0.002, 0.0569)
    """
    name = check_choice(metric, "metric", CORRECTNESS_METRICS)
    counts = to_array(table, "table")
    if counts.shape != (2, 2):
        raise InvalidInput(f"'table' must be 2x2 correctness counts (got shape {counts.shape})")
    (neither, base_only), (cand_only, both) = (
        [check_int(v, "table") for v in row] for row in counts.tolist()
    )
    n = check_int(both + cand_only + base_only + neither, "n", minimum=1)
    paired = paired_accuracy_difference_counts(cand_only, base_only, n)
    cand, base = (both + cand_only) / n, (both + base_only) / n
    b, c = cand_only, base_only
    if name == "error_rate":  # the error rate is 1 - accuracy: mirror everything
        cand, base, b, c = 1.0 - cand, 1.0 - base, base_only, cand_only
    statistic = paired.difference if name == "accuracy" else -paired.difference
    pvalue = mcnemar_two_sided(b, c)
    method = "exact conditional (discordant pairs)" if exact else "paired proportions"
    return PairedResult(
        statistic, pvalue, paired.standard_error, cand, base, n, method, (b, c), exact=exact
    )


def paired_difference(
    metric: str | Metric | Callable[[Any, Any], float],
    y_true: Any,
    candidate: Any,
    baseline: Any,
    *,
    n_resamples: int = 1000,
    rng: Any = None,
) -> PairedResult:
    """Candidate minus baseline for one metric, both models scored on the same examples.

    Args:
        metric: a metric name, a `Metric` or a callable (see `get_metric`).
        y_true: (n,) labels or targets.
        candidate: the candidate's predictions on the examples.
        baseline: the baseline's predictions on the same examples, in the same order.
        n_resamples: bootstrap resamples where a bootstrap is used.
        rng: None, an int seed or a `numpy.random.Generator` for the bootstraps.

    Returns:
        A `PairedResult` (method by metric, see the module).

    Raises:
        InvalidInput: for inputs the metric rejects (e.g. ROC AUC with one class).

    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=2_000)
    >>> a, b = y + rng.normal(0, 1.0, 2_000), y + rng.normal(0, 1.2, 2_000)
    >>> res = paired_difference("mse", y, a, b)
    >>> round(res.statistic, 3), res.pvalue < 1e-6, res.method
    (-0.419, True, 'paired mean with its exact bootstrap se')
    """
    found = get_metric(metric)
    y = to_array(y_true, "y_true")
    cand, base = to_array(candidate, "candidate"), to_array(baseline, "baseline")
    n = len(y) if y.ndim else 0
    if found.name in CORRECTNESS_METRICS and get_metric(found.name) is found:
        truth, guess_cand = classification_inputs(y, cand)
        _, guess_base = classification_inputs(y, base)
        table = sliced_confusion(
            np.zeros(n, dtype=np.intp), 1, guess_cand == truth, guess_base == truth, 2
        )[0]
        return paired_correctness(table, metric=found.name)
    if found.name == "roc_auc":
        return PairedResult.of_delong(delong(y, cand, base), n)
    value_cand, value_base = found(y, cand), found(y, base)
    if found.count_based and found.name in CONFUSION_METRICS:
        truth = as_labels(y, "labels")
        lc, lb = predicted_labels(cand), predicted_labels(base)
        size = int(max(truth.max(), lc.max(), lb.max())) + 1
        # table[true, candidate, baseline] (the candidate-vs-baseline confusion within each
        # true class): each model's own confusion matrix is a margin of it.
        joint = sliced_confusion(truth, size, lc, lb, size)
        se = _joint_standard_error(found.name, joint)
        method = DELTA_METHOD
    elif found.per_example is not None:
        per_example = found.per_example
        delta = np.asarray(per_example(y, cand), dtype=np.float64) - per_example(y, base)
        se = mean_standard_error(delta)
        method = "paired mean with its exact bootstrap se"
    else:

        def gain(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
            return found(t, a) - found(t, b)

        se = bootstrap_rows(gain, y, cand, base, n_resamples=n_resamples, rng=rng).standard_error
        method = "row bootstrap"
    return _paired_result(value_cand, value_base, se, n, method)
