"""Per-slice aggregation with `np.bincount` on integer slice codes.

A *slicing* assigns each example to one slice (a region, a device type, a language). It is
encoded once into integer codes 0..k-1 with `encode_slices`; after that every per-slice
count, sum, accuracy or confusion matrix is one `np.bincount` pass: no per-example Python,
no `np.unique` and no pandas groupby on the hot path.

>>> import numpy as np
>>> s = encode_slices(np.array(["eu", "us", "eu", "ap"]))
>>> s.names, s.codes
(('ap', 'eu', 'us'), array([1, 2, 1, 0]))
>>> counts, acc = sliced_accuracy(s.codes, s.n_slices, np.array([True, False, False, True]))
>>> counts, acc
(array([1, 2, 1]), array([1. , 0.5, 0. ]))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from mlchecks.exceptions import InvalidInput
from mlchecks.stats._validate import as_array, as_labels, describe
from mlchecks.stats.metrics import Metric, get_metric

__all__ = [
    "SliceCodes",
    "encode_slices",
    "encode_slicings",
    "slice_groups",
    "sliced_accuracy",
    "sliced_confusion",
    "sliced_metric",
    "sliced_sum",
]


def _codes(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InvalidInput(f"'codes' must be a 1-D integer array (got {describe(array)})")
    return array.astype(np.intp, copy=False)


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in value)


@attrs.frozen(eq=False)
class SliceCodes:
    """One slicing, encoded: an integer code per example and a name per code.

    Args:
        codes: (n,) integer codes in ``0 .. len(names) - 1``.
        names: the name of each slice, indexed by code.

    >>> SliceCodes(np.array([0, 1, 1]), ("small", "large")).n_slices
    2
    """

    codes: np.ndarray = attrs.field(converter=_codes)
    names: tuple[str, ...] = attrs.field(converter=_names)

    def __attrs_post_init__(self) -> None:
        if self.codes.size and (self.codes.min() < 0 or self.codes.max() >= len(self.names)):
            raise InvalidInput(
                f"'codes' must lie in [0, {len(self.names)}) for {len(self.names)} names "
                f"(got values from {self.codes.min()} to {self.codes.max()})"
            )

    @property
    def n_slices(self) -> int:
        """The number of slices (some may be empty)."""
        return len(self.names)

    def counts(self) -> np.ndarray:
        """The number of examples in each slice."""
        return sliced_sum(self.codes, self.n_slices)


def encode_slices(slices: Any, n: int | None = None, name: str = "slices") -> SliceCodes:
    """Encode one slicing into integer codes, once.

    - Integer ids ``0..k-1`` with ``k <= n`` are used as codes directly; slice ``i`` is named
      ``str(i)`` (ids that never occur give empty slices).
    - Strings, and sparse or negative integer ids, are encoded with
      ``np.unique(..., return_inverse=True)``; names are the sorted distinct values.
    - Floats must be whole numbers (NaN rejected). Boolean masks are rejected: a mask is
      one slice, pass ``mask.astype(int)`` for the two-slice split.
    - A `SliceCodes` passes through (its length is still checked).

    Args:
        slices: (n,) slice ids or labels, or a `SliceCodes`.
        n: the expected number of examples, or None.
        name: the argument name used in error messages.

    Returns:
        A `SliceCodes`.

    Raises:
        InvalidInput: for a wrong length, 2-D or empty input, booleans, NaN or non-integer
            floats, or labels that cannot be sorted.

    >>> encode_slices([2, 0, 2]).names
    ('0', '1', '2')
    >>> encode_slices([1000, 7, 1000]).names
    ('7', '1000')
    """
    if isinstance(slices, SliceCodes):
        result = slices
    else:
        result = _encode(slices, name)
    if n is not None and len(result.codes) != n:
        raise InvalidInput(
            f"'{name}' must have one slice id per example (got {len(result.codes)} for "
            f"{n} examples)"
        )
    return result


def _encode(slices: Any, name: str) -> SliceCodes:
    raw = np.asarray(slices)
    if raw.dtype.kind == "b":
        raise InvalidInput(
            f"'{name}' must be slice ids or labels, not a boolean mask (got {describe(raw)}); "
            "pass mask.astype(int) for a two-slice split"
        )
    if raw.dtype.kind in "USO":
        if raw.ndim != 1 or raw.size == 0:
            raise InvalidInput(f"'{name}' must be a non-empty 1-D array (got {describe(raw)})")
        try:
            uniques, inverse = np.unique(raw, return_inverse=True)
        except TypeError as exc:
            raise InvalidInput(
                f"'{name}' labels must be sortable (got mixed types: {exc})"
            ) from None
        return SliceCodes(inverse.reshape(-1), tuple(str(u) for u in uniques))
    array = as_array(raw, name, ndim=1)
    if array.dtype.kind == "f":
        if not np.all(array == np.round(array)):
            raise InvalidInput(f"'{name}' must be integer slice ids (got non-integer floats)")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise InvalidInput(f"'{name}' must be integer ids or string labels (got {describe(array)})")
    low, high = int(array.min()), int(array.max())
    if low >= 0 and high < len(array):
        return SliceCodes(array, tuple(str(i) for i in range(high + 1)))
    uniques, inverse = np.unique(array, return_inverse=True)
    return SliceCodes(inverse.reshape(-1), tuple(str(u) for u in uniques))


def encode_slicings(slices: Any, n: int | None = None) -> dict[str, SliceCodes]:
    """Encode one slicing or several: an array gives ``{"slice": ...}``; a mapping keeps names.

    >>> sorted(encode_slicings({"region": [0, 1], "device": ["ios", "web"]}))
    ['device', 'region']
    >>> list(encode_slicings([0, 1, 0]))
    ['slice']
    """
    if isinstance(slices, Mapping):
        if not slices:
            raise InvalidInput("'slices' must name at least one slicing (got an empty mapping)")
        out: dict[str, SliceCodes] = {}
        for key, value in slices.items():
            if not isinstance(key, str) or not key:
                raise InvalidInput(f"'slices' keys must be non-empty strings (got {key!r})")
            out[key] = encode_slices(value, n, name=f"slices[{key!r}]")
        return out
    return {"slice": encode_slices(slices, n)}


def sliced_sum(codes: Any, n_slices: int, values: Any = None) -> np.ndarray:
    """Per-slice counts (``values=None``) or sums of ``values``, in one `np.bincount`.

    Args:
        codes: (n,) integer slice codes in ``0 .. n_slices - 1``.
        n_slices: the number of slices (the output length).
        values: optional (n,) weights to sum (booleans count as 0/1).

    Returns:
        (n_slices,) int64 counts, or float64 sums.

    Raises:
        InvalidInput: for codes outside ``0 .. n_slices - 1`` or values of another length.

    >>> sliced_sum([0, 2, 2], 3), sliced_sum([0, 2, 2], 3, [1.5, 2.0, 0.5])
    (array([1, 0, 2]), array([1.5, 0. , 2.5]))
    """
    codes = _codes(codes)
    weights = None
    if values is not None:
        weights = as_array(values, "values", ndim=1, min_size=0)
        if len(weights) != len(codes):
            raise InvalidInput(
                f"'values' and 'codes' must have the same length (got {len(weights)} and "
                f"{len(codes)})"
            )
    try:
        out = np.bincount(codes, weights=weights, minlength=n_slices)
    except ValueError:
        raise InvalidInput(f"'codes' must be >= 0 (got {int(codes.min())})") from None
    if len(out) > n_slices:
        raise InvalidInput(f"'codes' must be < n_slices={n_slices} (got {len(out) - 1})")
    return out


def sliced_accuracy(codes: Any, n_slices: int, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice example counts and accuracies (NaN for an empty slice).

    >>> sliced_accuracy([0, 0, 1], 3, [True, False, True])
    (array([2, 1, 0]), array([0.5, 1. , nan]))
    """
    codes = _codes(codes)
    hits = np.asarray(correct)
    if hits.dtype.kind != "b":
        raise InvalidInput(f"'correct' must be a boolean array (got {describe(hits)})")
    if hits.shape != codes.shape:
        raise InvalidInput(
            f"'correct' and 'codes' must have the same length (got {hits.shape} and {codes.shape})"
        )
    counts = sliced_sum(codes, n_slices)
    right = sliced_sum(codes[hits], n_slices)
    return counts, _ratio(right, counts)


def _ratio(numerator: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.full(len(counts), np.nan)
    np.divide(numerator, counts, out=out, where=counts > 0)
    return out


def sliced_confusion(
    codes: Any, n_slices: int, y_true: Any, y_pred: Any, n_classes: int
) -> np.ndarray:
    """Per-slice confusion counts from one `np.bincount` over a fused (slice, true, pred) key.

    Returns:
        (n_slices, n_classes, n_classes) int64 counts; ``[s, i, j]`` counts the examples of
        slice ``s`` with true class ``i`` predicted as ``j``.

    >>> sliced_confusion([0, 0, 1], 2, [0, 1, 1], [0, 0, 1], 2)[0]
    array([[1, 0],
           [1, 0]])
    """
    codes = _codes(codes)
    truth = as_labels(y_true, "y_true", n_classes=n_classes)
    predicted = as_labels(y_pred, "y_pred", n_classes=n_classes)
    if not len(codes) == len(truth) == len(predicted):
        raise InvalidInput(
            "'codes', 'y_true' and 'y_pred' must have the same length "
            f"(got {len(codes)}, {len(truth)} and {len(predicted)})"
        )
    cells = n_classes * n_classes
    key = codes.astype(np.int64) * cells
    key += truth * n_classes
    key += predicted
    return sliced_sum(key, n_slices * cells).reshape(n_slices, n_classes, n_classes)


def slice_groups(codes: Any, n_slices: int) -> tuple[np.ndarray, np.ndarray]:
    """The example indices of every slice, from one stable sort.

    Returns:
        ``(order, offsets)``: slice ``s`` holds ``order[offsets[s]:offsets[s + 1]]``, in
        increasing index order.

    >>> order, offsets = slice_groups([1, 0, 1], 2)
    >>> order[offsets[1] : offsets[2]]
    array([0, 2])
    """
    codes = _codes(codes)
    counts = sliced_sum(codes, n_slices)
    offsets = np.zeros(n_slices + 1, dtype=np.intp)
    np.cumsum(counts, out=offsets[1:])
    return np.argsort(codes, kind="stable"), offsets


def sliced_metric(
    metric: str | Metric | Any,
    codes: Any,
    n_slices: int,
    y_true: Any,
    y_pred: Any,
) -> np.ndarray:
    """A metric's value in every slice; NaN for empty slices and where it is undefined.

    Metrics that are means of per-example values (accuracy, log loss, Brier, MSE, MAE) take
    one `np.bincount`; the others are computed on each slice's rows from `slice_groups`.
    A metric undefined on a slice (ROC AUC of a single-class slice, R² of one example)
    gives NaN there rather than an error.

    Args:
        metric: a metric name, a `Metric`, or a callable (see `get_metric`).
        codes: (n,) slice codes.
        n_slices: the number of slices.
        y_true: (n,) labels or targets.
        y_pred: (n, ...) predictions.

    Returns:
        (n_slices,) float64 values.

    >>> sliced_metric("accuracy", [0, 0, 1, 1], 3, [0, 1, 1, 1], [0, 0, 1, 1])
    array([0.5, 1. , nan])
    """
    found = get_metric(metric)
    codes = _codes(codes)
    if found.per_example is not None:
        values = found.per_example(y_true, y_pred)
        if len(values) != len(codes):
            raise InvalidInput(
                f"'codes' and 'y_true' must have the same length (got {len(codes)} and "
                f"{len(values)})"
            )
        return _ratio(sliced_sum(codes, n_slices, values), sliced_sum(codes, n_slices))
    truth = np.asarray(y_true)
    predicted = np.asarray(y_pred)
    if not len(codes) == len(truth) == len(predicted):
        raise InvalidInput(
            "'codes', 'y_true' and 'y_pred' must have the same length "
            f"(got {len(codes)}, {len(truth)} and {len(predicted)})"
        )
    order, offsets = slice_groups(codes, n_slices)
    out = np.full(n_slices, np.nan)
    for s in range(n_slices):
        rows = order[offsets[s] : offsets[s + 1]]
        if rows.size:
            try:
                out[s] = found(truth[rows], predicted[rows])
            except InvalidInput:
                continue
    return out
