"""Input validation and per-example values behind `mlchecks.stats.metrics`.

`predicted_labels` is public (re-exported by `mlchecks.stats.metrics`); the per-example
functions are the terms whose mean is a metric (`Metric.per_example`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlchecks._validate import as_array, as_labels, check_same_length
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._rows import argmax_rows, log_loss_terms, scan_rows

__all__ = ["class_count", "classification_inputs", "multilabel_inputs", "predicted_labels"]

#: Row sums of class probabilities may differ from 1 by this much (float32 softmax rounding).
_SUM_TOLERANCE = 1e-3


# --------------------------------------------------------------------------- input helpers


def predicted_labels(y_pred: Any, *, name: str = "y_pred") -> np.ndarray:
    """The predicted class of each example.

    2-D (n, C) probabilities or scores give the argmax of each row (the first maximum on
    ties). 1-D floats are probabilities of class 1 and give 1 where ``p > 0.5`` (so 0.5
    gives class 0, as the argmax of ``[0.5, 0.5]`` does); they must lie in [0, 1]. 1-D
    integers or booleans are already labels and come back as int64.

    Args:
        y_pred: (n, C) probabilities, (n,) probabilities of class 1, or (n,) labels.
        name: the argument name used in error messages.

    Returns:
        An (n,) int64 array of class indices.

    Raises:
        InvalidInput: for NaN, empty input, negative labels or 1-D floats outside [0, 1].

    >>> predicted_labels([[0.2, 0.8], [0.5, 0.5]])
    array([1, 0])
    >>> predicted_labels([0.2, 0.5, 0.9])
    array([0, 0, 1])
    """
    array = as_array(y_pred, name, ndim=(1, 2))
    if array.ndim == 2:
        return argmax_rows(array, finite=True, dtype=np.int64)
    if array.dtype.kind in "biu":
        return as_labels(array, name)
    if array.dtype.kind != "f":
        raise InvalidInput(f"'{name}' must be numeric (got {array.dtype})")
    _check_unit_interval(array, name)
    return (array > 0.5).astype(np.int64)


def _check_unit_interval(array: np.ndarray, name: str) -> None:
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise InvalidInput(
            f"'{name}' must be probabilities in [0, 1] (got values from {low:.6g} to {high:.6g}); "
            "pass (n, C) probabilities, or class labels as integers"
        )


def class_count(y_pred: np.ndarray) -> int | None:
    """How many classes predictions imply: C for (n, C) scores, 2 for (n,) probabilities of
    class 1, None for (n,) class labels (any label may be a class)."""
    if y_pred.ndim == 2:
        return int(y_pred.shape[1])
    return 2 if y_pred.dtype.kind == "f" else None


def classification_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted class indices, checked: each label a class the predictions have.

    >>> classification_inputs([1, 0], [[0.2, 0.8], [0.6, 0.4]])
    (array([1, 0]), array([1, 0]))
    """
    predicted = predicted_labels(y_pred)
    labels = as_labels(y_true, "y_true", n_classes=class_count(np.asarray(y_pred)))
    check_same_length(y_true=labels, y_pred=predicted)
    return labels, predicted


def _probability_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, probabilities and each example's probability of its label, validated:
    (n, C) rows summing to 1, or (n,) in [0, 1].

    One blocked pass (`scan_rows`) checks the probabilities and picks the label's
    probability; errors come in the order of the checks: probabilities (finite, in
    [0, 1]), labels, lengths, row sums.
    """
    probs = as_array(y_pred, "y_pred", ndim=(1, 2), finite=False)
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float64)
    n_classes = probs.shape[1] if probs.ndim == 2 else 2
    labels: np.ndarray | None = None
    label_error: Exception | None = None
    try:
        labels = as_labels(y_true, "y_true", n_classes=n_classes)
    except Exception as exc:  # raised below, after the checks of the probabilities
        label_error = exc
    same = labels is not None and len(labels) == len(probs)
    tolerance = _SUM_TOLERANCE if probs.ndim == 2 else None
    scan = scan_rows(probs, tolerance=tolerance, labels=labels if same else None, check_finite=True)
    if not scan.finite:
        as_array(probs, "y_pred")  # raises, naming the first NaN or infinity
    if scan.low < 0.0 or scan.high > 1.0:
        _check_unit_interval(probs, "y_pred")  # raises, with numpy's min and max
    if label_error is not None:
        raise label_error
    assert labels is not None
    check_same_length(y_true=labels, y_pred=probs)
    if scan.sums_ok is False:  # some row near or beyond the tolerance: numpy's exact test
        sums = probs.sum(axis=1, dtype=np.float64)
        worst = int(np.argmax(np.abs(sums - 1.0)))
        if abs(sums[worst] - 1.0) > _SUM_TOLERANCE:
            raise InvalidInput(
                f"'y_pred' rows must be probabilities summing to 1 (row {worst} sums to "
                f"{sums[worst]:.6g}); apply a softmax to scores first"
            )
    assert scan.picked is not None
    return labels, probs, scan.picked


#: Regression targets and predictions beyond this size are rejected: their squared errors
#: would overflow float64 to infinity.
MAX_REGRESSION_VALUE = 1e150


def _regression_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    target = as_array(y_true, "y_true", ndim=1, dtype=np.float64)
    predicted = as_array(y_pred, "y_pred", ndim=1, dtype=np.float64)
    check_same_length(y_true=target, y_pred=predicted)
    for name, array in (("y_true", target), ("y_pred", predicted)):
        largest = float(np.abs(array).max())
        if largest > MAX_REGRESSION_VALUE:
            raise InvalidInput(
                f"'{name}' must be at most {MAX_REGRESSION_VALUE:g} in size (got {largest:g}): "
                "squared errors would overflow float64"
            )
    return target, predicted


# --------------------------------------------------------------------------- per-example values


def _correct(y_true: Any, y_pred: Any) -> np.ndarray:
    labels, predicted = classification_inputs(y_true, y_pred)
    correct: np.ndarray = (labels == predicted).astype(np.float64)
    return correct


def _wrong(y_true: Any, y_pred: Any) -> np.ndarray:
    wrong: np.ndarray = 1.0 - _correct(y_true, y_pred)
    return wrong


def _log_loss_terms(y_true: Any, y_pred: Any) -> np.ndarray:
    """``-log(clip(p_y, eps, 1))`` with eps the machine epsilon of the probabilities' dtype."""
    _, probs, picked = _probability_inputs(y_true, y_pred)
    return log_loss_terms(picked, float(np.finfo(probs.dtype).eps))


def _brier_terms(y_true: Any, y_pred: Any) -> np.ndarray:
    labels, probs, picked = _probability_inputs(y_true, y_pred)
    terms: np.ndarray
    if probs.ndim == 1:
        terms = (probs.astype(np.float64) - labels) ** 2
    else:
        # sum_c (p_c - [c == y])^2 = sum_c p_c^2 - 2 p_y + 1, without a one-hot matrix.
        squares = np.einsum("ij,ij->i", probs, probs, dtype=np.float64)
        terms = squares - 2.0 * picked + 1.0
    return terms


def _squared_errors(y_true: Any, y_pred: Any) -> np.ndarray:
    target, predicted = _regression_inputs(y_true, y_pred)
    terms: np.ndarray = (target - predicted) ** 2
    return terms


def _absolute_errors(y_true: Any, y_pred: Any) -> np.ndarray:
    target, predicted = _regression_inputs(y_true, y_pred)
    terms: np.ndarray = np.abs(target - predicted)
    return terms


# --------------------------------------------------------------------------- multi-label


def _label_matrix(value: Any, name: str) -> np.ndarray:
    """(n, L) 0/1 indicators: integers and booleans as they are, probabilities at > 0.5."""
    array = as_array(value, name, ndim=2)
    if array.dtype.kind == "f" and not np.all(array == np.round(array)):
        _check_unit_interval(array, name)
        return (array > 0.5).astype(np.int64)
    if not np.isin(array, (0, 1)).all():
        raise InvalidInput(
            f"'{name}' must be (n, L) 0/1 label indicators or probabilities (got values "
            f"from {array.min()} to {array.max()})"
        )
    return array.astype(np.int64)


def multilabel_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """(n, L) true and predicted 0/1 indicator matrices of a multi-label task.

    >>> multilabel_inputs([[0, 1]], [[0.2, 0.7]])[1]
    array([[0, 1]])
    """
    truth = _label_matrix(y_true, "y_true")
    guess = _label_matrix(y_pred, "y_pred")
    check_same_length(y_true=truth, y_pred=guess)
    if truth.shape != guess.shape:
        raise InvalidInput(
            f"'y_true' and 'y_pred' must have the same labels (got shapes {truth.shape} and "
            f"{guess.shape})"
        )
    return truth, guess


def _hamming_terms(y_true: Any, y_pred: Any) -> np.ndarray:
    truth, guess = multilabel_inputs(y_true, y_pred)
    terms: np.ndarray = (truth != guess).mean(axis=1)
    return terms


def _subset_terms(y_true: Any, y_pred: Any) -> np.ndarray:
    truth, guess = multilabel_inputs(y_true, y_pred)
    terms: np.ndarray = (truth == guess).all(axis=1).astype(np.float64)
    return terms
