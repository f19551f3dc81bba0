"""Rubric test 4: model quality is validated before the model is served.

`QualityCheck` judges a candidate model on evaluation data in three ways:

- **Golden examples** (`GoldenSet`): known inputs with known-correct outputs, run through
  the model's ``predict``; every mismatch is listed with its index, expected and actual
  output.
- **Floors**: ``thresholds={"accuracy": AtLeast(0.9)}`` is judged on the confidence bound,
  not the point estimate: the lower end of the metric's confidence interval for `AtLeast`,
  the upper end for `AtMost`, both for `Between`. A model at 0.91 on 300 examples has not
  shown that it is above 0.9.
- **Versus the previous model** (``baseline_predictions`` on the same examples):
  ``max_regression={"accuracy": NoWorseThan(abs=0.005)}`` compares the two with a paired
  test, overall and in every slice, with multiple-testing control across slices; an
  improvement beyond ``suspicious_improvement`` warns (a jump that large is more often a
  leak or an evaluation bug than a better model).

How the versus-baseline verdicts are decided
--------------------------------------------

Call the *worsening* ``w`` the amount by which the candidate is worse than the baseline
(``baseline - candidate`` for accuracy, ``candidate - baseline`` for a loss) and ``m`` the
allowed margin from `NoWorseThan`. Two one-sided tests are possible:

- ``"noninferiority"`` (strict; the default for the aggregate): PASS only when the data
  show ``w < m``, i.e. the upper confidence bound of ``w`` is within the margin. An
  inconclusive comparison (too few examples, or too much churn between the models, for
  the margin) FAILS. This is the right default for the one number that decides a release:
  "not shown to be worse" is not evidence of "no worse".
- ``"regression"`` (lenient; the default for slices): FAIL only when the data show
  ``w > m``, i.e. the lower confidence bound of ``w`` is beyond the margin. Per-slice
  p-values of this test are adjusted across all slices of the run (Holm by default, or
  Benjamini-Hochberg), so a FAIL names exactly the slices where a regression beyond the
  margin is statistically shown. A strict test per slice would fail every small slice,
  whose confidence intervals are always wider than a margin chosen for the aggregate.

Both are configurable (``overall_test=``, ``slice_test=``). One-sided tests run at level
``(1 - confidence) / 2``, so an unadjusted verdict agrees with the two-sided interval at
``confidence`` shown in the report. Per-slice non-inferiority needs no multiplicity
correction (every slice must pass: an intersection-union test), so ``correction`` applies to
regression tests only.

Which test each metric gets: accuracy and error rate use the paired difference of
proportions (Wald interval from the discordant counts; the exact McNemar test when the
margin is 0); ROC AUC uses DeLong's test; confusion-matrix metrics (precision, recall, F1)
a bootstrap of the paired cell counts; means of per-example values (log loss, Brier, MSE,
MAE) the exact bootstrap standard error of the mean paired difference (no resampling
needed); everything else a paired row bootstrap. Bootstrapped comparisons use a normal
interval and p-value from the bootstrap standard error, so verdict and interval agree and
p-values are not limited to ``1 / n_resamples`` (which a correction across many slices
would need).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks.check import Context
from mlchecks.conditions import AtLeast, AtMost, Between, NoWorseThan
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Finding, Result, Status
from mlchecks._validate import (
    as_array,
    as_labels,
    callable_field,
    check_int,
    check_number,
    check_same_length,
    describe,
    number_in,
    one_of,
    optional,
)
from mlchecks.stats.auc import delong, delong_ci
from mlchecks.stats.inference import (
    mcnemar_exact_counts,
    normal_pvalue,
    paired_accuracy_difference_counts,
)
from mlchecks.stats.intervals import (
    BootstrapResult,
    ConfidenceInterval,
    bootstrap_counts,
    bootstrap_rows,
    check_confidence,
    normal_interval,
    wilson_interval,
)
from mlchecks.stats.metrics import METRICS, Metric, get_metric, predicted_labels
from mlchecks.stats.multiple import CORRECTIONS, Correction, adjust
from mlchecks.stats.sliced import (
    SliceCodes,
    encode_slicings,
    slice_groups,
    sliced_confusion,
    sliced_sum,
)

__all__ = ["GoldenSet", "QualityCheck"]

Floor = AtLeast | AtMost | Between
TestKind = Literal["noninferiority", "regression"]
_TESTS = ("noninferiority", "regression")
_ACCURACY_LIKE = ("accuracy", "error_rate")
_CONFUSION_METRICS = (
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def _pct(confidence: float) -> str:
    return f"{100 * confidence:g}%"


def _ci_text(ci: ConfidenceInterval) -> str:
    return f"[{_fmt(ci.low)}, {_fmt(ci.high)}]"


# --------------------------------------------------------------------------- golden examples


def _expected(value: Any) -> np.ndarray:
    return as_array(value, "expected", ndim=(1, 2))


@attrs.frozen(eq=False)
class GoldenSet:
    """Known inputs with known-correct outputs, run through the model's ``predict``.

    Args:
        inputs: whatever ``predict`` takes (an array, a table, a list of rows).
        expected: (n,) or (n, k) expected outputs. When the model returns (n, C)
            probabilities and ``expected`` holds integer labels, the predicted class
            (argmax) is compared.
        atol: absolute tolerance, as in `numpy.isclose`.
        rtol: relative tolerance, as in `numpy.isclose`.

    Raises:
        InvalidInput: for NaN expected outputs, negative tolerances, or ``inputs`` whose
            length differs from ``expected``'s.

    >>> golden = GoldenSet(np.array([[0.0], [1.0]]), expected=[0, 1])
    >>> golden.mismatches(np.array([0, 0]))
    [{'index': 1, 'expected': 1, 'got': 0}]
    """

    inputs: Any
    expected: np.ndarray = attrs.field(converter=_expected)
    atol: float = attrs.field(default=0.0, converter=float, validator=number_in(0.0))
    rtol: float = attrs.field(default=0.0, converter=float, validator=number_in(0.0))

    def __attrs_post_init__(self) -> None:
        try:
            n_inputs = len(self.inputs)
        except TypeError:
            return
        if n_inputs != len(self.expected):
            raise InvalidInput(
                f"'inputs' and 'expected' must have the same number of examples "
                f"(got {n_inputs} and {len(self.expected)})"
            )

    def __len__(self) -> int:
        return len(self.expected)

    def mismatches(self, outputs: Any) -> list[dict[str, Any]]:
        """Every example whose output differs from the expected one beyond the tolerance.

        Args:
            outputs: what ``predict(inputs)`` returned.

        Returns:
            One ``{"index", "expected", "got"}`` dict per mismatch, in index order; values
            are Python scalars or lists. NaN outputs always mismatch.

        Raises:
            InvalidInput: when the outputs' shape cannot be compared with ``expected``.
        """
        got = np.asarray(outputs)
        expected = self.expected
        if got.ndim == 2 and expected.ndim == 1 and expected.dtype.kind in "iub":
            return self._class_mismatches(got)
        if got.shape != expected.shape:
            raise InvalidInput(
                f"golden outputs have shape {got.shape} but 'expected' has shape {expected.shape}"
            )
        if got.dtype.kind not in "biuf" or expected.dtype.kind not in "biuf":
            differ = got != expected
        else:
            differ = ~np.isclose(got, expected, rtol=self.rtol, atol=self.atol)
        if differ.ndim == 2:
            differ = differ.any(axis=1)
        return [
            {"index": int(i), "expected": expected[i].tolist(), "got": got[i].tolist()}
            for i in np.flatnonzero(differ)
        ]

    def _class_mismatches(self, scores: np.ndarray) -> list[dict[str, Any]]:
        """Mismatches of the argmax class of (n, C) scores; rows with NaN always mismatch."""
        if len(scores) != len(self.expected):
            raise InvalidInput(
                f"golden outputs have {len(scores)} rows but 'expected' has {len(self.expected)}"
            )
        finite = np.isfinite(scores).all(axis=1) if scores.dtype.kind == "f" else None
        classes = np.argmax(
            scores if finite is None else np.where(finite[:, None], scores, 0), axis=1
        )
        differ = classes != self.expected
        if finite is not None:
            differ |= ~finite
        return [
            {
                "index": int(i),
                "expected": self.expected[i].item(),
                "got": classes[i].item() if finite is None or finite[i] else scores[i].tolist(),
            }
            for i in np.flatnonzero(differ)
        ]


# --------------------------------------------------------------------------- statistics


@attrs.frozen(eq=False)
class _Paired:
    """A candidate-vs-baseline comparison of one metric on one set of examples."""

    candidate: float = attrs.field(converter=float)
    baseline: float = attrs.field(converter=float)
    difference: float = attrs.field(converter=float)  # candidate - baseline
    ci: ConfidenceInterval  # of the difference
    standard_error: float = attrs.field(converter=float)
    n: int
    method: str
    discordant: tuple[int, int] | None = None  # (candidate only right, baseline only right)

    def pvalue(self, sign: float, margin: float, test: TestKind) -> float:
        """One-sided p-value on the worsening ``w = sign * difference`` against ``margin``.

        ``"regression"`` tests ``w > margin``; ``"noninferiority"`` tests ``w < margin``.
        """
        worsening = sign * self.difference
        if self.standard_error == 0.0:
            # The estimate is exact (the models agree on every resample or example).
            shown = worsening > margin if test == "regression" else worsening <= margin
            return 0.0 if shown else 1.0
        if test == "regression" and margin == 0.0 and self.discordant is not None:
            right_only, wrong_only = self.discordant
            return mcnemar_exact_counts(right_only, wrong_only, self.n, alternative="less").pvalue
        side: Literal["greater", "less"] = "greater" if test == "regression" else "less"
        return normal_pvalue(worsening, self.standard_error, margin, alternative=side)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _confusion_statistic(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorized precision/recall/F1 from (r, C, C) [true, predicted] confusion tables.

    Mirrors `mlchecks.stats.metrics`: zero division counts 0; ``binary`` scores class 1;
    ``macro`` averages the classes that occur as a true or a predicted label.
    """
    base, _, average = name.partition("_")

    def statistic(tables: np.ndarray) -> np.ndarray:
        hits = np.diagonal(tables, axis1=-2, axis2=-1)
        predicted = tables.sum(axis=-2)
        actual = tables.sum(axis=-1)
        if base == "precision":
            per_class = _ratio(hits, predicted)
        elif base == "recall":
            per_class = _ratio(hits, actual)
        else:
            per_class = _ratio(2 * hits, predicted + actual)
        if average != "macro":
            if per_class.shape[-1] < 2:
                return np.zeros(per_class.shape[:-1])
            result: np.ndarray = per_class[..., 1]
            return result
        support = (predicted + actual) > 0
        return _ratio((per_class * support).sum(axis=-1), support.sum(axis=-1))

    return statistic


@attrs.frozen
class _Settings:
    """What every interval of one run shares: the confidence and the bootstrap's settings."""

    confidence: float
    n_resamples: int
    rng: np.random.Generator

    def counts(self, table: np.ndarray, statistic: Callable[[np.ndarray], Any]) -> BootstrapResult:
        return bootstrap_counts(
            table, statistic, n_resamples=self.n_resamples, confidence=self.confidence, rng=self.rng
        )

    def rows(self, statistic: Callable[..., Any], *arrays: np.ndarray) -> BootstrapResult:
        return bootstrap_rows(
            statistic,
            *arrays,
            n_resamples=self.n_resamples,
            confidence=self.confidence,
            rng=self.rng,
        )


def _mean_standard_error(values: np.ndarray) -> float:
    """The bootstrap standard error of a mean, exactly: ``sqrt(sum((x - mean)**2)) / n``.

    This is the limit of the resampling estimate as the number of resamples grows (Efron and
    Tibshirani, 1993, section 5.2), so metrics that are means of per-example values (log loss,
    Brier, MSE, MAE) get their bootstrap interval in one O(n) pass instead of
    ``n_resamples`` passes.
    """
    return float(np.std(values) / math.sqrt(values.size))


def _estimate(
    metric: Metric, y: np.ndarray, pred: np.ndarray, s: _Settings
) -> tuple[float, ConfidenceInterval, str]:
    """The metric on the candidate with a confidence interval, and the method's name."""
    if metric.name in _ACCURACY_LIKE:
        correct = int(np.count_nonzero(predicted_labels(pred) == as_labels(y, "labels")))
        hits = correct if metric.name == "accuracy" else len(y) - correct
        return hits / len(y), wilson_interval(hits, len(y), s.confidence), "wilson"
    if metric.name == "roc_auc":
        return metric(y, pred), delong_ci(y, pred, confidence=s.confidence), "delong"
    if metric.count_based and metric.name in _CONFUSION_METRICS:
        truth, guess = as_labels(y, "labels"), predicted_labels(pred)
        size = int(max(truth.max(), guess.max())) + 1
        value = metric(y, pred)  # first: it rejects inputs the metric does not accept
        table = sliced_confusion(np.zeros(len(truth), dtype=np.intp), 1, truth, guess, size)[0]
        return value, s.counts(table, _confusion_statistic(metric.name)).ci, "count bootstrap"
    if metric.per_example is not None:
        values = np.asarray(metric.per_example(y, pred), dtype=np.float64)
        mean = float(values.mean())
        ci = normal_interval(mean, _mean_standard_error(values), s.confidence)
        return mean, ci, "mean with its exact bootstrap se"
    boot = s.rows(metric, y, pred)
    return boot.estimate, boot.ci, "row bootstrap"


_NAN_CI = ConfidenceInterval(math.nan, math.nan)


def _accuracy_paired(name: str, table: np.ndarray, confidence: float) -> _Paired:
    """Paired accuracy (or error rate) from 2x2 counts ``[candidate right, baseline right]``."""
    (neither, base_only), (cand_only, both) = table.tolist()
    n = both + cand_only + base_only + neither
    paired = paired_accuracy_difference_counts(cand_only, base_only, n, confidence=confidence)
    cand_acc, base_acc = (both + cand_only) / n, (both + base_only) / n
    ci, difference = paired.ci, paired.difference
    if name == "error_rate":  # the error rate is 1 - accuracy: mirror everything
        cand_acc, base_acc, difference = 1.0 - cand_acc, 1.0 - base_acc, -difference
        ci = ConfidenceInterval(-ci.high, -ci.low)
    return _Paired(
        cand_acc,
        base_acc,
        difference,
        ci,
        paired.standard_error,
        n,
        "paired proportions",
        (cand_only, base_only),
    )


def _compare(
    metric: Metric, y: np.ndarray, cand: np.ndarray, base: np.ndarray, s: _Settings
) -> _Paired:
    """Candidate vs baseline for one metric on one set of rows (not accuracy-like)."""
    n = len(y)
    if metric.name == "roc_auc":
        res = delong(y, cand, base, confidence=s.confidence)
        return _Paired(
            res.auc_a, res.auc_b, res.difference, res.ci, res.standard_error, n, "delong"
        )
    candidate, baseline = metric(y, cand), metric(y, base)
    if metric.count_based and metric.name in _CONFUSION_METRICS:
        truth = as_labels(y, "labels")
        lc, lb = predicted_labels(cand), predicted_labels(base)
        size = int(max(truth.max(), lc.max(), lb.max())) + 1
        # table[true, candidate, baseline] (the candidate-vs-baseline confusion within each
        # true class): each model's own confusion matrix is a margin of it.
        table = sliced_confusion(truth, size, lc, lb, size)
        stat = _confusion_statistic(metric.name)
        se = s.counts(table, lambda t: stat(t.sum(axis=-1)) - stat(t.sum(axis=-2))).standard_error
        method = "count bootstrap"
    elif metric.per_example is not None:
        per_example = metric.per_example
        delta = np.asarray(per_example(y, cand), dtype=np.float64) - per_example(y, base)
        se = _mean_standard_error(delta)
        method = "paired mean with its exact bootstrap se"
    else:
        se = s.rows(lambda t, a, b: metric(t, a) - metric(t, b), y, cand, base).standard_error
        method = "row bootstrap"
    # A normal interval with the bootstrap standard error keeps the verdict (the matching
    # normal p-value) and the interval shown in the report in agreement, and p-values are
    # not limited to 1 / n_resamples, which a correction across many slices would need.
    difference = candidate - baseline
    ci = normal_interval(difference, se, s.confidence) if math.isfinite(se) else _NAN_CI
    return _Paired(candidate, baseline, difference, ci, se, n, method)


def _margin(condition: NoWorseThan, baseline: float) -> float:
    """The allowed worsening in the metric's units: the tighter of ``abs`` and ``rel``."""
    limits = []
    if condition.abs is not None:
        limits.append(condition.abs)
    if condition.rel is not None:
        limits.append(condition.rel * abs(baseline))
    return min(limits)


# --------------------------------------------------------------------------- field helpers


def _metric_name(value: Any, field: str) -> Metric:
    if not isinstance(value, str) or value not in METRICS:
        known = ", ".join(METRICS)
        raise InvalidInput(
            f"'{field}' keys must be known metric names (got {value!r}); known: {known}"
        )
    return get_metric(value)


def _metric_items(value: Any, field: str, what: str) -> Iterator[tuple[str, Metric, Any]]:
    """The (name, metric, item) entries of a mapping keyed by metric name (None: none)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"'{field}' must be a mapping of metric name to {what} (got {describe(value)})"
        )
    for name, item in value.items():
        yield name, _metric_name(name, field), item


def _thresholds(value: Any) -> dict[str, Floor]:
    out: dict[str, Floor] = {}
    for name, _, condition in _metric_items(value, "thresholds", "condition"):
        if not isinstance(condition, AtLeast | AtMost | Between):
            hint = (
                "; use max_regression for NoWorseThan" if isinstance(condition, NoWorseThan) else ""
            )
            raise InvalidInput(
                f"'thresholds[{name!r}]' must be AtLeast, AtMost or Between "
                f"(got {condition!r}){hint}"
            )
        out[name] = condition
    return out


def _max_regression(value: Any) -> dict[str, NoWorseThan]:
    out: dict[str, NoWorseThan] = {}
    for name, metric, condition in _metric_items(value, "max_regression", "NoWorseThan"):
        if not isinstance(condition, NoWorseThan):
            raise InvalidInput(
                f"'max_regression[{name!r}]' must be NoWorseThan (got {condition!r})"
            )
        # The direction of "worse" is the metric's own.
        out[name] = attrs.evolve(condition, higher_is_better=metric.higher_is_better)
    return out


def _suspicious(value: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, _, bound in _metric_items(value, "suspicious_improvement", "a bound"):
        out[name] = check_number(bound, f"suspicious_improvement[{name!r}]", low=0.0, low_open=True)
    return out


def _predictions(value: Any) -> np.ndarray | None:
    return None if value is None else as_array(value, "predictions", ndim=(1, 2), finite=False)


def _baseline(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return as_array(value, "baseline_predictions", ndim=(1, 2), finite=False)


def _labels(value: Any) -> np.ndarray | None:
    return None if value is None else as_array(value, "labels", ndim=1)


def _min_slice_size(value: Any) -> int:
    return check_int(value, "min_slice_size", minimum=1)


def _n_resamples(value: Any) -> int:
    return check_int(value, "n_resamples", minimum=100)


# --------------------------------------------------------------------------- the check


@attrs.frozen(kw_only=True, eq=False)
class QualityCheck:
    """Validate model quality before serving: golden examples, floors, and no regression.

    Args:
        labels: (n,) true labels or targets of the evaluation examples.
        predictions: the candidate's (n, ...) predictions on them: (n, C) probabilities,
            (n,) scores or labels, or regression values, as the metrics need.
        predict: instead of ``predictions``, the candidate's predict function; it is called
            with ``inputs`` (and with the golden inputs).
        inputs: what ``predict`` takes for the evaluation examples.
        slices: (n,) slice ids or labels, or a mapping of slicing name to such arrays
            (``{"region": regions}``); regression is tested in every slice.
        baseline_predictions: the previous model version's predictions on the same examples.
        golden: a `GoldenSet` run through ``predict``.
        thresholds: metric name -> `AtLeast` / `AtMost` / `Between`, judged on the
            confidence bound.
        max_regression: metric name -> `NoWorseThan`, the allowed worsening versus the
            baseline (its ``higher_is_better`` is set from the metric).
        suspicious_improvement: metric name -> the improvement over the baseline beyond
            which the check warns (judged on the point estimate).
        confidence: two-sided confidence of the intervals; one-sided tests run at
            ``(1 - confidence) / 2``.
        correction: ``"holm"`` (family-wise), ``"bh"`` (false discovery rate) or ``"none"``,
            across the slice regression tests of the run.
        min_slice_size: slices with fewer examples are listed but not tested.
        overall_test: ``"noninferiority"`` (strict: PASS needs proof the aggregate is within
            the margin) or ``"regression"`` (FAIL needs proof it is beyond).
        slice_test: the same choice for slices (default ``"regression"``).
        n_resamples: bootstrap resamples where a bootstrap is used (>= 100).
        name: the check's name in reports.
        rubric: the rubric test (4).

    Raises:
        InvalidInput: for inconsistent or invalid fields (the message names the field).

    A candidate that keeps accuracy overall but loses it in one region:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 20_000)
    >>> region = np.where(np.arange(20_000) < 1_000, "east", "rest")
    >>> base = np.where(rng.random(20_000) < 0.9, y, 1 - y)
    >>> cand = np.where((region == "east") & (rng.random(20_000) < 0.3), 1 - y, base)
    >>> check = QualityCheck(
    ...     labels=y, predictions=cand, baseline_predictions=base,
    ...     slices={"region": region},
    ...     max_regression={"accuracy": NoWorseThan(abs=0.02)},
    ... )
    >>> result = check.run()
    >>> result.status.label, result.finding("regression.accuracy").status.label
    ('FAIL', 'PASS')
    >>> result.finding("regression.accuracy.slice.region=east").status.label
    'FAIL'
    """

    labels: np.ndarray | None = attrs.field(default=None, converter=_labels)
    predictions: np.ndarray | None = attrs.field(default=None, converter=_predictions)
    predict: Callable[[Any], Any] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    inputs: Any = None
    slices: Any = None
    baseline_predictions: np.ndarray | None = attrs.field(default=None, converter=_baseline)
    golden: GoldenSet | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(GoldenSet))
    )
    thresholds: Mapping[str, Floor] = attrs.field(factory=dict, converter=_thresholds)
    max_regression: Mapping[str, NoWorseThan] = attrs.field(factory=dict, converter=_max_regression)
    suspicious_improvement: Mapping[str, float] = attrs.field(factory=dict, converter=_suspicious)
    confidence: float = attrs.field(default=0.95, converter=check_confidence)
    correction: Correction = attrs.field(default="holm", validator=one_of(*CORRECTIONS))
    min_slice_size: int = attrs.field(default=100, converter=_min_slice_size)
    overall_test: TestKind = attrs.field(default="noninferiority", validator=one_of(*_TESTS))
    slice_test: TestKind = attrs.field(default="regression", validator=one_of(*_TESTS))
    n_resamples: int = attrs.field(default=1000, converter=_n_resamples)
    name: str = attrs.field(default="quality", validator=attrs.validators.instance_of(str))
    rubric: int | None = 4
    _slicings: dict[str, SliceCodes] = attrs.field(init=False, repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.inputs is not None and self.predict is None:
            raise InvalidInput("'inputs' need 'predict' (the candidate's predict function)")
        if self.predictions is not None and self.inputs is not None:
            raise InvalidInput("give either 'predictions' or 'predict' with 'inputs', not both")
        if self.golden is not None and self.predict is None:
            raise InvalidInput("'golden' needs 'predict' to run the golden inputs through")
        compared = {**self.max_regression, **self.suspicious_improvement}
        if not (self.thresholds or compared or self.golden is not None):
            raise InvalidInput(
                "nothing to check: give 'thresholds', 'max_regression' (with "
                "'baseline_predictions') or 'golden'"
            )
        evaluating = self.labels is not None or self.thresholds or compared
        if evaluating and self.predictions is None and self.inputs is None:
            raise InvalidInput(
                "'predictions' or both 'predict' and 'inputs' are required to evaluate the "
                "candidate on the labelled examples"
            )
        if (self.thresholds or compared) and self.labels is None:
            raise InvalidInput("'labels' are required to judge 'thresholds' and 'max_regression'")
        if compared and self.baseline_predictions is None:
            raise InvalidInput(
                "'max_regression' and 'suspicious_improvement' need 'baseline_predictions' "
                "(the previous model's predictions on the same examples)"
            )
        if self.baseline_predictions is not None and not compared:
            raise InvalidInput(
                "'baseline_predictions' given but 'max_regression' is empty: say which "
                "metrics must not regress, e.g. {'accuracy': NoWorseThan(abs=0.005)}"
            )
        n = None if self.labels is None else len(self.labels)
        check_same_length(
            labels=self.labels,
            predictions=self.predictions,
            baseline_predictions=self.baseline_predictions,
        )
        if self.slices is not None:
            if n is None:
                raise InvalidInput("'slices' need 'labels' (slices are of the evaluation examples)")
            object.__setattr__(self, "_slicings", encode_slicings(self.slices, n))

    # ----------------------------------------------------------------------- run

    def run(self, context: Context | None = None) -> Result:
        """Judge the golden set, floors and regression tests; a bad model fails, never raises."""
        ctx = context if context is not None else Context()
        findings: list[Finding] = []
        rows: list[dict[str, Any]] = []
        metrics: dict[str, float] = {}
        details: dict[str, Any] = {
            "confidence": self.confidence,
            "alpha": self._alpha,
            "correction": self.correction,
            "overall_test": self.overall_test,
            "slice_test": self.slice_test,
            "min_slice_size": self.min_slice_size,
        }
        if self.golden is not None:
            findings.append(self._judge_golden(details, metrics))
        if self.labels is not None:
            predictions = self._candidate_predictions()
            problem = self._prediction_problem(predictions, "predictions")
            if problem is None and self.baseline_predictions is not None:
                problem = self._prediction_problem(
                    self.baseline_predictions, "baseline_predictions"
                )
            if problem is not None:
                findings.append(problem)
            else:
                settings = _Settings(self.confidence, self.n_resamples, ctx.rng("quality"))
                findings += self._judge_floors(predictions, settings, rows, metrics)
                if self.baseline_predictions is not None:
                    findings += self._judge_baseline(
                        predictions, self.baseline_predictions, settings, rows, metrics
                    )
        details["table"] = rows
        return Result.from_findings(
            self.name,
            findings,
            summary=self._summary(findings),
            metrics=metrics,
            details=details,
            rubric=self.rubric,
        )

    @property
    def _alpha(self) -> float:
        return (1.0 - self.confidence) / 2.0

    def _candidate_predictions(self) -> np.ndarray:
        if self.predictions is not None:
            return self.predictions
        assert self.predict is not None  # guaranteed by __attrs_post_init__
        return np.asarray(self.predict(self.inputs))

    def _prediction_problem(self, predictions: np.ndarray, what: str) -> Finding | None:
        assert self.labels is not None
        n = len(self.labels)
        if predictions.ndim not in (1, 2) or len(predictions) != n:
            return Finding(
                what,
                Status.FAIL,
                None,
                f"{n} rows",
                f"{what} have shape {predictions.shape} but there are {n:,} labels: the "
                "model must return one prediction per evaluation example",
            )
        if predictions.dtype.kind == "f":
            bad = int(np.count_nonzero(~np.isfinite(predictions).reshape(n, -1).all(axis=1)))
            if bad:
                return Finding(
                    what,
                    Status.FAIL,
                    float(bad),
                    "0 non-finite rows",
                    f"{bad:,} of {n:,} {what} rows contain NaN or infinity: the model "
                    "produces invalid outputs, so no metric can be judged",
                )
        return None

    def _judge_golden(self, details: dict[str, Any], metrics: dict[str, float]) -> Finding:
        golden = self.golden
        assert golden is not None
        assert self.predict is not None
        outputs = self.predict(golden.inputs)
        n = len(golden)
        try:
            mismatches = golden.mismatches(outputs)
        except InvalidInput as exc:
            details["golden_mismatches"] = []
            return Finding(
                "golden",
                Status.FAIL,
                None,
                "0 mismatches",
                f"{exc}: the model's output format changed",
            )
        details["golden_mismatches"] = mismatches
        metrics["golden.mismatches"] = float(len(mismatches))
        tolerance = f"atol {golden.atol:g}, rtol {golden.rtol:g}"
        if not mismatches:
            message = f"all {n:,} golden examples match their expected outputs ({tolerance})"
            return Finding("golden", Status.PASS, 0.0, "0 mismatches", message)
        first = mismatches[0]
        message = (
            f"{len(mismatches):,} of {n:,} golden examples differ from their expected outputs "
            f"({tolerance}); first at index {first['index']}: expected {first['expected']}, "
            f"got {first['got']}"
        )
        return Finding("golden", Status.FAIL, float(len(mismatches)), "0 mismatches", message)

    # ----------------------------------------------------------------------- floors

    def _judge_floors(
        self,
        predictions: np.ndarray,
        s: _Settings,
        rows: list[dict[str, Any]],
        metrics: dict[str, float],
    ) -> list[Finding]:
        assert self.labels is not None
        findings = []
        for name, condition in self.thresholds.items():
            metric = get_metric(name)
            value, ci, method = _estimate(metric, self.labels, predictions, s)
            metrics[name] = value
            metrics[f"{name}.ci_low"], metrics[f"{name}.ci_high"] = ci
            finding = self._floor_finding(name, condition, value, ci, len(self.labels), method)
            findings.append(finding)
            rows.append(
                _row(
                    "floor",
                    name,
                    "all",
                    len(self.labels),
                    "confidence bound",
                    finding.status,
                    candidate=value,
                    ci=ci,
                )
            )
        return findings

    def _floor_finding(
        self, name: str, condition: Floor, value: float, ci: ConfidenceInterval, n: int, method: str
    ) -> Finding:
        pct = _pct(self.confidence)
        context = f" (point estimate {_fmt(value)}, {pct} CI {_ci_text(ci)} by {method}, n = {n:,})"
        if isinstance(condition, AtLeast):
            judged = condition.judge(
                f"{name} lower {pct} confidence bound", ci.low, context=context
            )
        elif isinstance(condition, AtMost):
            judged = condition.judge(
                f"{name} upper {pct} confidence bound", ci.high, context=context
            )
        else:
            ok = condition.low <= ci.low and ci.high <= condition.high
            where = "inside" if ok else "not inside"
            judged = Finding(
                name,
                Status.PASS if ok else condition.severity,
                value,
                condition.describe(),
                f"{name} {pct} CI {_ci_text(ci)} is {where} the range "
                f"[{_fmt(condition.low)}, {_fmt(condition.high)}]{context}",
            )
        return attrs.evolve(judged, name=f"floor.{name}")

    # ----------------------------------------------------------------------- vs baseline

    def _judge_baseline(
        self,
        cand: np.ndarray,
        base: np.ndarray,
        s: _Settings,
        rows: list[dict[str, Any]],
        metrics: dict[str, float],
    ) -> list[Finding]:
        y = self.labels
        assert y is not None
        names = list(dict.fromkeys([*self.max_regression, *self.suspicious_improvement]))
        correct: tuple[np.ndarray, np.ndarray] | None = None
        if any(name in _ACCURACY_LIKE for name in names):
            truth = as_labels(y, "labels")
            correct = (predicted_labels(cand) == truth, predicted_labels(base) == truth)
        overall: dict[str, _Paired] = {}
        for name in names:
            if correct is not None and name in _ACCURACY_LIKE:
                table = sliced_confusion(np.zeros(len(y), dtype=np.intp), 1, *correct, 2)[0]
                paired = _accuracy_paired(name, table, s.confidence)
            else:
                paired = _compare(get_metric(name), y, cand, base, s)
            overall[name] = paired
            metrics.setdefault(name, paired.candidate)
            metrics[f"baseline.{name}"] = paired.baseline
            metrics[f"{name}.difference"] = paired.difference
            metrics[f"{name}.difference_ci_low"], metrics[f"{name}.difference_ci_high"] = paired.ci

        tests = [
            self._test(name, condition, "", overall[name], self.overall_test)
            for name, condition in self.max_regression.items()
        ]
        slice_tests = self._slice_tests(cand, base, correct, s)
        tested = [t for t in slice_tests if t.paired is not None]
        raw = np.array([t.pvalue for t in tested], dtype=np.float64)
        # Every slice must pass a non-inferiority test (an intersection-union test), which
        # needs no multiplicity correction; regression tests are corrected across slices.
        method: Correction = self.correction if self.slice_test == "regression" else "none"
        for test, adjusted in zip(tested, adjust(raw, method).tolist(), strict=True):
            test.adjusted = adjusted
        findings = [self._judge_test(test, rows) for test in [*tests, *slice_tests]]
        judged = [f for f in findings if f is not None]
        for name, bound in self.suspicious_improvement.items():
            judged.append(self._improvement(name, bound, overall[name], rows))
        return judged

    def _test(
        self, name: str, condition: NoWorseThan, label: str, paired: _Paired, kind: TestKind
    ) -> _Test:
        margin = _margin(condition, paired.baseline)
        pvalue = paired.pvalue(_sign(name), margin, kind)
        return _Test(name, condition, label, paired.n, kind, paired, margin, pvalue, pvalue)

    def _slice_tests(
        self,
        cand: np.ndarray,
        base: np.ndarray,
        correct: tuple[np.ndarray, np.ndarray] | None,
        s: _Settings,
    ) -> list[_Test]:
        y = self.labels
        assert y is not None
        tests: list[_Test] = []
        for slicing, codes in self._slicings.items():
            k = codes.n_slices
            counts = sliced_sum(codes.codes, k)
            tables = None if correct is None else sliced_confusion(codes.codes, k, *correct, 2)
            by_rows = tables is None or any(n not in _ACCURACY_LIKE for n in self.max_regression)
            groups = slice_groups(codes.codes, k) if by_rows else None
            for name, condition in self.max_regression.items():
                for code in np.flatnonzero(counts).tolist():
                    label = f"{slicing}={codes.names[code]}"
                    n_slice = int(counts[code])
                    if n_slice < self.min_slice_size:
                        reason = f"fewer than min_slice_size={self.min_slice_size} examples"
                        tests.append(
                            _Test(name, condition, label, n_slice, self.slice_test, reason=reason)
                        )
                        continue
                    try:
                        if tables is not None and name in _ACCURACY_LIKE:
                            paired = _accuracy_paired(name, tables[code], s.confidence)
                        else:
                            assert groups is not None
                            order, offsets = groups
                            rows = order[offsets[code] : offsets[code + 1]]
                            paired = _compare(get_metric(name), y[rows], cand[rows], base[rows], s)
                        test = self._test(name, condition, label, paired, self.slice_test)
                    except InvalidInput as exc:  # the metric is undefined on this slice
                        test = _Test(
                            name, condition, label, n_slice, self.slice_test, reason=str(exc)
                        )
                    tests.append(test)
        return tests

    def _judge_test(self, test: _Test, rows: list[dict[str, Any]]) -> Finding | None:
        """The finding and the report row of one overall or per-slice regression test."""
        label = test.label or "all"
        paired = test.paired
        if paired is None:
            rows.append(
                _row(
                    "regression",
                    test.metric,
                    label,
                    test.n,
                    test.kind,
                    "skipped",
                    reason=test.reason,
                )
            )
            return None
        alpha = self._alpha
        if test.kind == "regression":
            ok = test.adjusted > alpha
            shown_worse = not ok
        else:
            ok = test.adjusted <= alpha
            regression_p = paired.pvalue(_sign(test.metric), test.margin, "regression")
            shown_worse = regression_p <= alpha
        status = Status.PASS if ok else test.condition.severity
        rows.append(
            _row(
                "regression",
                test.metric,
                label,
                test.n,
                test.kind,
                status,
                paired,
                pvalue=test.pvalue,
                adjusted=test.adjusted,
                limit=_sign(test.metric) * test.margin,
            )
        )
        name = f"regression.{test.metric}" + (f".slice.{test.label}" if test.label else "")
        message = self._regression_message(test, ok, shown_worse)
        return Finding(name, status, paired.difference, test.condition.describe(), message)

    def _regression_message(self, test: _Test, ok: bool, shown_worse: bool) -> str:
        paired = test.paired
        assert paired is not None
        where = f" in slice {test.label}" if test.label else ""
        word = "drop" if test.condition.higher_is_better else "rise"
        head = (
            f"{test.metric}{where} changed from {_fmt(paired.baseline)} (baseline) to "
            f"{_fmt(paired.candidate)} ({paired.difference:+.4g}, {_pct(self.confidence)} CI "
            f"{_ci_text(paired.ci)}, n = {paired.n:,}, {paired.method})"
        )
        kind = "non-inferiority" if test.kind == "noninferiority" else "regression"
        if test.label and test.kind == "regression" and self.correction != "none":
            method = "BH" if self.correction == "bh" else "Holm"
            p_text = f"{method}-adjusted {kind} p = {test.adjusted:.3g}"
        else:
            p_text = f"{kind} p = {test.pvalue:.3g}"
        allowed = f"the allowed {word} of {_fmt(test.margin)}"
        if shown_worse:
            return f"{head}: a {word} beyond {allowed} is statistically shown ({p_text})"
        if ok and test.kind == "noninferiority":
            return f"{head}: the {word} is shown to be within {allowed} ({p_text})"
        if ok:
            return f"{head}: no {word} beyond {allowed} is shown ({p_text})"
        return (
            f"{head}: a {word} beyond {allowed} cannot be ruled out ({p_text}); the comparison "
            "is inconclusive, so more evaluation examples or a wider margin are needed"
        )

    def _improvement(
        self, name: str, bound: float, paired: _Paired, rows: list[dict[str, Any]]
    ) -> Finding:
        improvement = -_sign(name) * paired.difference
        ok = not improvement > bound
        status = Status.PASS if ok else Status.WARN
        change = (
            f"{name} changed by {paired.difference:+.4g} from the baseline "
            f"({_fmt(paired.baseline)} to {_fmt(paired.candidate)})"
        )
        if ok:
            message = (
                f"{change}, no improvement beyond the suspicious_improvement bound {_fmt(bound)}"
            )
        else:
            message = (
                f"{change}, an improvement beyond the suspicious_improvement bound {_fmt(bound)}: "
                "a jump this large is more often label leakage or an evaluation bug than a "
                "better model"
            )
        rows.append(_row("improvement", name, "all", paired.n, "point estimate", status, paired))
        return Finding(f"improvement.{name}", status, improvement, f"<= {_fmt(bound)}", message)

    def _summary(self, findings: list[Finding]) -> str | None:
        bad = [f for f in findings if f.status.severity >= Status.WARN.severity]
        if not bad:
            kinds = sorted({f.name.split(".", 1)[0] for f in findings})
            slices = sum(".slice." in f.name for f in findings)
            held = {
                "golden": "golden examples match",
                "floor": "metric floors hold on their confidence bounds",
                "regression": "no regression beyond the allowed margin versus the baseline"
                + (f" (overall and in {slices} slice tests)" if slices else ""),
                "improvement": "no suspicious improvement",
            }
            parts = [held[k] for k in kinds if k in held]
            return "; ".join(parts) if parts else None
        worst = max(bad, key=lambda f: f.status)
        others = [f.name for f in bad if f is not worst]
        if not others:
            return worst.message
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return f"{worst.message} (and {len(others)} more: {shown})"


def _sign(name: str) -> float:
    """+1 when a larger value of the metric is worse (a loss), -1 when it is better."""
    return -1.0 if get_metric(name).higher_is_better else 1.0


@attrs.define
class _Test:
    """One regression test: overall (``label == ""``) or in one slice."""

    metric: str
    condition: NoWorseThan
    label: str
    n: int
    kind: TestKind
    paired: _Paired | None = None
    margin: float = math.nan
    pvalue: float = math.nan
    adjusted: float = math.nan
    reason: str = ""


def _row(
    kind: str,
    metric: str,
    slice_label: str,
    n: int,
    test: str,
    verdict: Status | str,
    paired: _Paired | None = None,
    *,
    candidate: float | None = None,
    ci: ConfidenceInterval | None = None,
    pvalue: float | None = None,
    adjusted: float | None = None,
    limit: float | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """One row of the report table; a comparison fills its columns from ``paired``.

    ``limit`` is the difference (candidate - baseline) beyond which a regression test
    judges the candidate worse: ``-margin`` for a metric where higher is better.
    """
    if paired is not None:
        candidate, ci = paired.candidate, paired.ci
    row: dict[str, Any] = {
        "kind": kind,
        "metric": metric,
        "slice": slice_label,
        "n": n,
        "candidate": candidate,
        "baseline": None if paired is None else paired.baseline,
        "difference": None if paired is None else paired.difference,
        "ci_low": None if ci is None else ci.low,
        "ci_high": None if ci is None else ci.high,
        "difference_limit": limit,
        "pvalue": pvalue,
        "adjusted_pvalue": adjusted,
        "test": test,
        "verdict": verdict.value if isinstance(verdict, Status) else verdict,
    }
    if reason:
        row["reason"] = reason
    return row
