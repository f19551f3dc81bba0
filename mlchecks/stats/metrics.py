"""Aggregate metrics: classification, probabilistic and regression, plus your own callables.

Every metric is a function ``f(y_true, y_pred) -> float``. ``y_pred`` is what a model
outputs: (n, C) class probabilities, (n,) probabilities of class 1 for a binary model,
(n,) integer class labels, or (n,) regression values, as fits the metric:

- classification metrics (`accuracy`, `error_rate`, `precision`, `recall`, `f1`) take any of
  the classification outputs and reduce them with `predicted_labels`;
- probabilistic metrics (`log_loss`, `brier`) need probabilities, `roc_auc` needs binary
  scores (any real numbers: only their order matters);
- regression metrics (`mse`, `mae`, `rmse`, `r2`) take real-valued targets and predictions;
- multi-label metrics (`hamming_loss`, `subset_accuracy`, and `per_label_accuracy`, which
  returns one value per label) take (n, L) 0/1 indicators and (n, L) indicators or
  probabilities (thresholded at 0.5).

Inputs are validated: NaN, infinity, empty arrays and mismatched lengths raise
`mlchecks.exceptions.InvalidInput` naming the argument. A metric that is undefined for its
input (ROC AUC with a single class, R² of one example) raises too, rather than returning NaN.

`METRICS` maps names to `Metric` objects; `get_metric` accepts a name, a `Metric` or any
callable ``f(y_true, y_pred) -> float``:

>>> import numpy as np
>>> y = np.array([0, 1, 1, 0])
>>> p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
>>> accuracy(y, p)
0.75
>>> round(get_metric("log_loss")(y, p), 4)
0.4004
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks._validate import as_array, as_labels, callable_field, check_same_length, optional
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._metric_inputs import (
    _absolute_errors,
    _brier_terms,
    _correct,
    _hamming_terms,
    _log_loss_terms,
    _regression_inputs,
    _squared_errors,
    _subset_terms,
    _wrong,
    classification_inputs,
    multilabel_inputs,
    predicted_labels,
)

__all__ = [
    "CORRECTNESS_METRICS",
    "METRICS",
    "Metric",
    "MetricKind",
    "accuracy",
    "brier",
    "custom_metric",
    "error_rate",
    "f1",
    "get_metric",
    "hamming_loss",
    "log_loss",
    "mae",
    "mse",
    "per_label_accuracy",
    "precision",
    "predicted_labels",
    "r2",
    "recall",
    "rmse",
    "roc_auc",
    "subset_accuracy",
]

MetricKind = Literal["classification", "probabilistic", "regression", "multilabel"]
Average = Literal["binary", "macro"]

#: The metrics that depend only on which examples each model got right (per-example
#: correctness): sliced, paired and bootstrapped from 2x2 correctness counts.
CORRECTNESS_METRICS = ("accuracy", "error_rate")


# --------------------------------------------------------------------------- metrics


def accuracy(y_true: Any, y_pred: Any) -> float:
    """The fraction of examples whose predicted class is the true class.

    Args:
        y_true: (n,) integer class labels.
        y_pred: (n, C) probabilities, (n,) probabilities of class 1, or (n,) labels.

    Returns:
        Accuracy in [0, 1].

    Raises:
        InvalidInput: for NaN, empty or mismatched inputs.

    >>> accuracy([0, 1, 2], [0, 1, 1])
    0.6666666666666666
    """
    return float(np.mean(_correct(y_true, y_pred)))


def error_rate(y_true: Any, y_pred: Any) -> float:
    """``1 - accuracy``: the fraction of misclassified examples.

    >>> error_rate([0, 1, 2, 2], [0, 1, 1, 2])
    0.25
    """
    return float(np.mean(_wrong(y_true, y_pred)))


def log_loss(y_true: Any, y_pred: Any) -> float:
    """Mean negative log-probability of the true class (cross-entropy, natural log).

    Probabilities are clipped below at the machine epsilon of their dtype, so a confident
    wrong prediction costs a large but finite amount (as scikit-learn does).

    Args:
        y_true: (n,) labels in [0, C) (0/1 for 1-D input).
        y_pred: (n, C) probabilities with rows summing to 1, or (n,) probabilities of class 1.

    Returns:
        The mean log loss, >= 0.

    Raises:
        InvalidInput: for probabilities outside [0, 1], rows not summing to 1 (within 1e-3),
            labels out of range, NaN, empty or mismatched inputs.

    >>> round(log_loss([1, 0], [0.9, 0.2]), 6)
    0.164252
    """
    return float(np.mean(_log_loss_terms(y_true, y_pred)))


def brier(y_true: Any, y_pred: Any) -> float:
    """The Brier score: mean squared distance between probabilities and the outcome.

    For (n,) probabilities of class 1 it is ``mean((p - y)**2)`` in [0, 1], as
    ``sklearn.metrics.brier_score_loss``. For (n, C) probabilities it is Brier's original
    multi-class score ``mean(sum_c (p_c - [c == y])**2)`` in [0, 2]; for C = 2 that is twice
    the 1-D value.

    >>> brier([1, 0], [0.9, 0.2])
    0.025
    >>> round(brier([1, 0], [[0.1, 0.9], [0.8, 0.2]]), 6)
    0.05
    """
    return float(np.mean(_brier_terms(y_true, y_pred)))


def roc_auc(y_true: Any, y_pred: Any) -> float:
    """Binary ROC AUC from midranks (the Mann-Whitney U statistic over n1 * n0).

    Ties between a positive and a negative count one half.

    Args:
        y_true: (n,) labels, 0 or 1.
        y_pred: (n,) scores for class 1 (any real numbers), or (n, 2) probabilities
            (column 1 is used).

    Returns:
        AUC in [0, 1].

    Raises:
        InvalidInput: when only one class is present (AUC is undefined), for labels other
            than 0/1, more than 2 columns, NaN, empty or mismatched inputs.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    from scipy.stats import rankdata

    scores = as_array(y_pred, "y_pred", ndim=(1, 2))
    if scores.ndim == 2:
        if scores.shape[1] != 2:
            raise InvalidInput(
                f"'y_pred' for roc_auc must be (n,) scores or (n, 2) probabilities "
                f"(got {scores.shape[1]} columns); ROC AUC here is binary"
            )
        scores = scores[:, 1]
    labels = as_labels(y_true, "y_true", n_classes=2)
    n = check_same_length(y_true=labels, y_pred=scores)
    n_pos = int(np.count_nonzero(labels))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        present = 1 if n_pos else 0
        raise InvalidInput(
            f"'y_true' must contain both classes for roc_auc (got only class {present} "
            f"in {n} examples): ROC AUC is undefined"
        )
    ranks = rankdata(scores)
    rank_sum = float(ranks[labels == 1].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _confusion_counts(
    y_true: Any, y_pred: Any, average: Average
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted counts and true counts per class."""
    if average not in ("binary", "macro"):
        raise InvalidInput(f"'average' must be 'binary' or 'macro' (got {average!r})")
    labels, predicted = classification_inputs(y_true, y_pred)
    if average == "binary":
        high = max(int(labels.max()), int(predicted.max()))
        if high > 1:
            raise InvalidInput(
                f"average='binary' needs labels 0 and 1 (got class {high}); "
                "use average='macro' for more classes"
            )
    size = max(int(labels.max()), int(predicted.max())) + 1
    hits = np.bincount(labels[labels == predicted], minlength=size)
    return hits, np.bincount(predicted, minlength=size), np.bincount(labels, minlength=size)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio with 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _average(per_class: np.ndarray, support: np.ndarray, average: Average) -> float:
    if average == "binary":
        return float(per_class[1]) if per_class.size > 1 else 0.0
    return float(per_class[support > 0].mean())


def precision(y_true: Any, y_pred: Any, *, average: Average = "binary") -> float:
    """Precision: of the examples predicted as a class, the fraction that belong to it.

    ``average="binary"`` scores class 1; ``"macro"`` averages over the classes present in
    ``y_true`` or predicted. An undefined ratio (nothing predicted as the class) counts 0,
    scikit-learn's ``zero_division=0``.

    Args:
        y_true: (n,) integer labels.
        y_pred: (n, C) probabilities, (n,) probabilities of class 1, or (n,) labels.
        average: ``"binary"`` or ``"macro"``.

    Returns:
        Precision in [0, 1].

    Raises:
        InvalidInput: for classes above 1 with ``average="binary"``, NaN, empty or
            mismatched inputs, or an unknown ``average``.

    >>> precision([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    >>> round(precision([0, 1, 2, 2], [0, 2, 2, 2], average="macro"), 4)
    0.5556
    """
    hits, predicted, actual = _confusion_counts(y_true, y_pred, average)
    return _average(_ratio(hits, predicted), predicted + actual, average)


def recall(y_true: Any, y_pred: Any, *, average: Average = "binary") -> float:
    """Recall: of the examples of a class, the fraction predicted as that class.

    Averaging and zero division follow `precision`.

    >>> recall([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    """
    hits, predicted, actual = _confusion_counts(y_true, y_pred, average)
    return _average(_ratio(hits, actual), predicted + actual, average)


def f1(y_true: Any, y_pred: Any, *, average: Average = "binary") -> float:
    """F1: the harmonic mean of precision and recall, ``2 tp / (2 tp + fp + fn)`` per class.

    Macro F1 averages the per-class F1 scores (not the F1 of averaged precision and recall),
    as scikit-learn does. A class with no true and no predicted examples counts 0.

    >>> round(f1([0, 1, 1, 0], [1, 1, 0, 0]), 4)
    0.5
    >>> round(f1([0, 1, 2, 2], [0, 2, 2, 2], average="macro"), 4)
    0.6
    """
    hits, predicted, actual = _confusion_counts(y_true, y_pred, average)
    return _average(_ratio(2.0 * hits, predicted + actual), predicted + actual, average)


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error.

    >>> mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    1.3333333333333333
    """
    return float(np.mean(_squared_errors(y_true, y_pred)))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error.

    >>> mae([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    0.6666666666666666
    """
    return float(np.mean(_absolute_errors(y_true, y_pred)))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error.

    >>> rmse([0.0, 0.0], [3.0, 4.0])
    3.5355339059327378
    """
    return math.sqrt(mse(y_true, y_pred))


def r2(y_true: Any, y_pred: Any) -> float:
    """The coefficient of determination ``1 - SS_res / SS_tot``.

    With a constant ``y_true`` (SS_tot = 0) the result is 1.0 for a perfect prediction and
    0.0 otherwise, as ``sklearn.metrics.r2_score`` does by default.

    Raises:
        InvalidInput: for fewer than 2 examples (R² is undefined), NaN, empty or
            mismatched inputs.

    >>> r2([1.0, 2.0, 3.0], [1.0, 2.0, 3.5])
    0.875
    """
    target, predicted = _regression_inputs(y_true, y_pred)
    if target.size < 2:
        raise InvalidInput(f"'y_true' must have at least 2 examples for r2 (got {target.size})")
    ss_res = float(np.sum((target - predicted) ** 2))
    ss_tot = float(np.sum((target - target.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def hamming_loss(y_true: Any, y_pred: Any) -> float:
    """Multi-label: the fraction of (example, label) pairs predicted wrong.

    Args:
        y_true: (n, L) 0/1 label indicators.
        y_pred: (n, L) 0/1 indicators, or probabilities (a label is on above 0.5).

    >>> hamming_loss([[0, 1], [1, 1]], [[0, 1], [0, 1]])
    0.25
    """
    return float(np.mean(_hamming_terms(y_true, y_pred)))


def subset_accuracy(y_true: Any, y_pred: Any) -> float:
    """Multi-label: the fraction of examples whose every label is right (exact match).

    >>> subset_accuracy([[0, 1], [1, 1]], [[0, 1], [0, 1]])
    0.5
    """
    return float(np.mean(_subset_terms(y_true, y_pred)))


def per_label_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Multi-label: the accuracy of each label, an (L,) array.

    >>> per_label_accuracy([[0, 1], [1, 1]], [[0, 1], [0, 1]])
    array([0.5, 1. ])
    """
    truth, guess = multilabel_inputs(y_true, y_pred)
    accuracies: np.ndarray = (truth == guess).mean(axis=0)
    return accuracies


# --------------------------------------------------------------------------- Metric objects

PerExample = Callable[[Any, Any], np.ndarray]


@attrs.frozen
class Metric:
    """A named metric with what a check needs to know about it.

    Args:
        name: the name reports use (``"accuracy"``).
        fn: ``fn(y_true, y_pred) -> float``.
        higher_is_better: True for scores (accuracy, AUC), False for losses and errors.
        kind: ``"classification"`` (takes labels or anything `predicted_labels` reduces),
            ``"probabilistic"`` (takes the model's probabilities or scores as they are),
            ``"regression"`` (real-valued targets and predictions) or ``"multilabel"``
            ((n, L) indicators).
        count_based: True when the value depends only on the confusion counts, so a
            bootstrap may resample counts instead of rows.
        per_example: for metrics that are the mean of a per-example value (accuracy, log
            loss, Brier, MSE, MAE), ``per_example(y_true, y_pred) -> (n,) float array``
            whose mean is ``fn``; None otherwise. Checks use it for per-slice sums with one
            ``np.bincount`` and for paired tests.

    Calling a `Metric` calls ``fn`` and returns a Python float:

    >>> METRICS["error_rate"]([0, 1], [1, 1])
    0.5
    >>> METRICS["log_loss"].higher_is_better
    False
    """

    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    fn: Callable[[Any, Any], float] = attrs.field(validator=callable_field)
    higher_is_better: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    kind: MetricKind = attrs.field(
        default="classification",
        validator=attrs.validators.in_(
            ("classification", "probabilistic", "regression", "multilabel")
        ),
    )
    count_based: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    per_example: PerExample | None = attrs.field(default=None, validator=optional(callable_field))

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        """``fn(y_true, y_pred)`` as a Python float."""
        value = self.fn(y_true, y_pred)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"metric {self.name!r} must return a number (got {value!r} that is a "
                f"{type(value).__name__})"
            ) from None


def _macro(fn: Callable[..., float]) -> Callable[[Any, Any], float]:
    def macro(y_true: Any, y_pred: Any) -> float:
        return fn(y_true, y_pred, average="macro")

    macro.__name__ = f"{fn.__name__}_macro"
    macro.__doc__ = f"Macro-averaged {fn.__name__} (see `{fn.__name__}`)."
    return macro


def _table() -> dict[str, Metric]:
    classification: MetricKind = "classification"
    entries = [
        Metric("accuracy", accuracy, True, classification, True, _correct),
        Metric("error_rate", error_rate, False, classification, True, _wrong),
        Metric("log_loss", log_loss, False, "probabilistic", False, _log_loss_terms),
        Metric("brier", brier, False, "probabilistic", False, _brier_terms),
        Metric("roc_auc", roc_auc, True, "probabilistic", False),
        Metric("precision", precision, True, classification, True),
        Metric("recall", recall, True, classification, True),
        Metric("f1", f1, True, classification, True),
        Metric("precision_macro", _macro(precision), True, classification, True),
        Metric("recall_macro", _macro(recall), True, classification, True),
        Metric("f1_macro", _macro(f1), True, classification, True),
        Metric("mse", mse, False, "regression", False, _squared_errors),
        Metric("mae", mae, False, "regression", False, _absolute_errors),
        Metric("rmse", rmse, False, "regression", False),
        Metric("r2", r2, True, "regression", False),
        Metric("hamming_loss", hamming_loss, False, "multilabel", False, _hamming_terms),
        Metric("subset_accuracy", subset_accuracy, True, "multilabel", False, _subset_terms),
    ]
    return {m.name: m for m in entries}


#: The built-in metrics by name (read-only).
METRICS: Mapping[str, Metric] = types.MappingProxyType(_table())


def custom_metric(
    fn: Callable[[Any, Any], float],
    name: str | None = None,
    *,
    higher_is_better: bool = True,
    kind: MetricKind = "probabilistic",
    per_example: PerExample | None = None,
) -> Metric:
    """Wrap your own ``fn(y_true, y_pred) -> float`` as a `Metric`.

    Args:
        fn: the metric; it receives the labels and the model's predictions as they are.
        name: the name in reports (default: ``fn.__name__``).
        higher_is_better: whether larger values are better.
        kind: how the metric reads predictions (see `Metric`); the default
            ``"probabilistic"`` means "passed through unchanged".
        per_example: optional per-example values whose mean is ``fn`` (see `Metric`).

    Returns:
        A `Metric` that is not count-based.

    Raises:
        InvalidInput: when ``fn`` is not callable or no name can be found.

    >>> top2 = custom_metric(lambda y, p: 1.0, name="top2_accuracy")
    >>> top2.name, top2([0], [[1.0]])
    ('top2_accuracy', 1.0)
    """
    if not callable(fn):
        raise InvalidInput(f"'fn' must be callable (got {fn!r})")
    if name is None:
        name = getattr(fn, "__name__", None)
        if not name or name == "<lambda>":
            raise InvalidInput(f"'name' is needed for a metric without a __name__ (got {fn!r})")
    return Metric(name, fn, higher_is_better, kind, False, per_example)


def get_metric(metric: str | Metric | Callable[[Any, Any], float]) -> Metric:
    """The `Metric` for a name, a `Metric`, or a callable ``f(y_true, y_pred) -> float``.

    A plain callable becomes a metric named after it with ``higher_is_better=True``; use
    `custom_metric` to say otherwise.

    Raises:
        InvalidInput: for an unknown name (the message lists the known ones) or anything
            that is neither a name nor callable.

    >>> get_metric("f1_macro").count_based
    True
    >>> get_metric("auc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: unknown metric 'auc'; known metrics: accuracy, ...
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        try:
            return METRICS[metric]
        except KeyError:
            known = ", ".join(METRICS)
            raise InvalidInput(f"unknown metric {metric!r}; known metrics: {known}") from None
    if callable(metric):
        return custom_metric(metric)
    raise InvalidInput(
        f"'metric' must be a metric name, a Metric or a callable (got {metric!r} "
        f"that is a {type(metric).__name__})"
    )
