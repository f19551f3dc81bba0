"""Class labels of any dtype turned into integer codes, and the task they imply.

`encode_labels` is the one place where checks turn class names into codes; `infer_task`
decides classification, regression or multi-label from labels and predictions (for
``task="auto"``); `estimator_classes` reads a fitted estimator's ``classes_``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlchecks._validate import as_labels, describe, is_numeric, raw_labels
from mlchecks.exceptions import InvalidInput

__all__ = [
    "check_label_range",
    "encode_labels",
    "estimator_classes",
    "infer_task",
    "unique_classes",
]


def estimator_classes(predict: Any) -> np.ndarray | None:
    """The ``classes_`` of the fitted estimator a bound ``predict`` method belongs to.

    >>> class Model:
    ...     classes_ = np.array(["a", "b"])
    ...     def predict(self, x): return x
    >>> estimator_classes(Model().predict).tolist()
    ['a', 'b']
    >>> estimator_classes(print) is None
    True
    """
    owner = getattr(predict, "__self__", None)
    classes = getattr(owner, "classes_", None)
    if classes is None:
        return None
    array = np.asarray(classes)
    return array if array.ndim == 1 and len(array) else None


def encode_labels(labels: Any, classes: Any = None, *, name: str = "labels") -> np.ndarray:
    """Class labels of any dtype as int64 codes: each label's index in ``classes``.

    ``classes`` is the class list (strings, numbers, any hashable): the order of the
    columns of the model's probabilities, e.g. a fitted estimator's ``classes_``. Without
    it, integer labels are taken as class indices already (checked >= 0) and other labels
    are mapped through their sorted unique values; integer labels with a list of class
    names are indices into it. This is the one place where checks turn class names into
    codes.

    Args:
        labels: (n,) class labels.
        classes: the class list, or None.
        name: the argument name used in error messages.

    Returns:
        An (n,) int64 array of indices into ``classes``.

    Raises:
        InvalidInput: naming the labels that are not in ``classes``.

    >>> encode_labels(["dog", "cat", "dog"], ["cat", "dog"])
    array([1, 0, 1])
    >>> encode_labels(["dog", "cow"], ["cat", "dog"])
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'labels' has 1 label not in classes ['cat', 'dog']: 'cow'
    """
    array = raw_labels(labels, name)
    if array.ndim != 1:
        raise InvalidInput(f"'{name}' must be 1-D class labels (got {describe(array)})")
    if classes is None:
        if array.dtype.kind in "biuf":
            return as_labels(array, name)
        classes = unique_classes(array, name)
    known = np.asarray(classes)
    if known.ndim != 1 or len(known) == 0:
        raise InvalidInput(f"'classes' must be a non-empty 1-D list (got {describe(known)})")
    if array.dtype.kind in "biuf" and known.dtype.kind not in "biuf":
        return as_labels(array, name, n_classes=len(known))  # indices into a list of names
    items = known.tolist()
    if len(set(items)) != len(items):
        raise InvalidInput(f"'classes' must not repeat a class (got {items})")
    index = {c: i for i, c in enumerate(items)}
    values = array.tolist()
    codes = [index.get(v, -1) for v in values]
    missing = list(dict.fromkeys(v for v, c in zip(values, codes, strict=True) if c < 0))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        word = "label" if len(missing) == 1 else "labels"
        raise InvalidInput(f"'{name}' has {len(missing)} {word} not in classes {items}: {shown}")
    return np.asarray(codes, dtype=np.int64)


def infer_task(labels: Any, predictions: Any) -> str:
    """``"regression"``, ``"multilabel"`` or ``"classification"`` from labels and predictions.

    2-D binary labels are multi-label; 1-D float predictions with non-integer labels, or
    with non-integer values outside [0, 1], are regression; anything else is
    classification.

    >>> infer_task([1.5, 2.0], [1.4, 2.2]), infer_task([0, 1], [0.2, 0.9])
    ('regression', 'classification')
    >>> infer_task([[0, 1], [1, 1]], [[0, 1], [1, 0]])
    'multilabel'
    """
    y = None if labels is None else np.asarray(labels)
    p = None if predictions is None else np.asarray(predictions)
    if y is not None and y.ndim == 2 and is_numeric(y) and np.isin(y, (0, 1)).all():
        return "multilabel"
    if p is None or p.ndim != 1 or p.dtype.kind != "f":
        return "classification"
    outside = p.size > 0 and (float(p.min()) < 0.0 or float(p.max()) > 1.0)
    return scores_task(
        labels_fractional=y is not None and y.dtype.kind == "f" and not np.all(y == np.round(y)),
        outside=outside,
        fractional=outside and not np.all(p == np.round(p)),
    )


def scores_task(*, labels_fractional: bool, outside: bool, fractional: bool) -> str:
    """The task of 1-D float predictions: regression when the labels have fractions, or
    the predictions leave [0, 1] and have fractions; classification otherwise.

    >>> scores_task(labels_fractional=False, outside=True, fractional=False)
    'classification'
    """
    if labels_fractional or (outside and fractional):
        return "regression"
    return "classification"


def check_label_range(
    codes: np.ndarray, predictions: Mapping[str, np.ndarray | None], classes: Any = None
) -> None:
    """Raise unless every class index in ``codes`` is a class the predictions can express.

    The classes are the C columns of (n, C) probabilities, the two of (n,) probabilities
    of class 1 (floats in [0, 1]), or ``len(classes)``; (n,) predicted classes bound
    nothing. Labels outside them would be scored as always wrong (or, versus a baseline,
    as equally wrong): a silent verdict on a label-encoding bug.

    Raises:
        InvalidInput: naming ``'labels'``, the first label outside and the class count;
            or for (n, C) probabilities whose C differs from ``len(classes)``.

    >>> check_label_range(np.array([0, 5]), {"predictions": np.full((2, 2), 0.5)})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'labels' must be class ... [0, 2) ...; there are 2 classes
    """
    widths = set()
    for key, values in predictions.items():
        if values is None or values.dtype.kind != "f":
            continue
        if values.ndim == 2:
            if classes is not None and values.shape[1] != len(classes):
                raise InvalidInput(
                    f"'{key}' have {values.shape[1]} probability columns but 'classes' lists "
                    f"{len(classes)} classes"
                )
            widths.add(values.shape[1])
        elif values.size and float(values.min()) >= 0.0 and float(values.max()) <= 1.0:
            widths.add(2)
    if classes is not None:
        widths.add(len(classes))
    if codes.ndim != 1:
        raise InvalidInput(
            f"'labels' must be 1-D class labels for classification (got {describe(codes)}); "
            "(n, L) labels are multi-label 0/1 indicators (task='multilabel')"
        )
    if widths:
        width = min(widths)
        try:
            as_labels(codes, "labels", n_classes=width)
        except InvalidInput as exc:
            raise InvalidInput(f"{exc}; there are {width} classes") from None


def unique_classes(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """The sorted distinct class names in ``labels``; names that cannot be ordered
    (mixed types such as ``''`` and ``False``) are an `InvalidInput` naming ``name``.

    >>> unique_classes(np.array(["b", "a", "b"])).tolist()
    ['a', 'b']
    """
    try:
        return np.unique(labels)
    except TypeError as exc:
        raise InvalidInput(
            f"'{name}' must be class names of one type that can be sorted (got mixed types: {exc})"
        ) from None
