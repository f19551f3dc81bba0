"""Input validation shared by the statistics kernels and the checks.

Every error is an `InvalidInput` (a `ValueError`) naming the argument and what was wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlchecks.exceptions import InvalidInput

__all__ = [
    "as_array",
    "as_labels",
    "as_probabilities",
    "check_same_length",
    "describe",
]


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages (shape and dtype for arrays)."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{value!r} that is a {type(value).__name__}"


def as_array(
    value: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype: npt.DTypeLike | None = None,
    finite: bool = True,
    min_size: int = 1,
) -> np.ndarray:
    """``value`` as a numpy array, checked; no copy when it already fits.

    Args:
        value: array-like input.
        name: the argument name used in error messages.
        ndim: allowed number(s) of dimensions.
        dtype: convert to this dtype (e.g. ``np.float64``); None keeps the input's.
        finite: reject NaN and infinity (for floating inputs).
        min_size: the fewest elements (rows for 2-D) allowed.

    >>> as_array([1.0, float("nan")], "predictions")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'predictions' must be finite (got 1 NaN ... first at index 1)
    """
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"'{name}' must be array-like (got {describe(value)}): {exc}") from None
    if array.dtype == object:
        raise InvalidInput(f"'{name}' must be numeric (got {describe(array)})")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if array.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise InvalidInput(f"'{name}' must be {want} (got {describe(array)})")
    count = array.shape[0] if array.ndim else array.size
    if count < min_size:
        raise InvalidInput(f"'{name}' must have at least {min_size} rows (got {describe(array)})")
    if finite and np.issubdtype(array.dtype, np.inexact):
        bad = ~np.isfinite(array)
        if bad.any():
            n_bad = int(bad.sum())
            first = int(np.flatnonzero(bad.reshape(-1))[0])
            where = np.unravel_index(first, array.shape) if array.ndim > 1 else first
            raise InvalidInput(
                f"'{name}' must be finite (got {n_bad} NaN or infinite values of {array.size}, "
                f"first at index {where})"
            )
    return array


def as_labels(value: Any, name: str = "labels", *, n_classes: int | None = None) -> np.ndarray:
    """Integer class labels as a 1-D int64 array (floats allowed only when whole numbers).

    >>> as_labels([0, 2, 1.0])
    array([0, 2, 1])
    >>> as_labels([0, 3], n_classes=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'labels' must be class indices in [0, 3) (got values ...)
    """
    array = as_array(value, name, ndim=1)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    elif array.dtype.kind == "f":
        if not np.all(array == np.round(array)):
            raise InvalidInput(f"'{name}' must be integer class indices (got non-integer floats)")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise InvalidInput(f"'{name}' must be integer class indices (got {describe(array)})")
    else:
        array = array.astype(np.int64, copy=False)
    low, high = int(array.min()), int(array.max())
    if low < 0 or (n_classes is not None and high >= n_classes):
        bound = f"[0, {n_classes})" if n_classes is not None else ">= 0"
        raise InvalidInput(
            f"'{name}' must be class indices in {bound} (got values from {low} to {high})"
        )
    return array


def as_probabilities(value: Any, name: str = "predictions") -> np.ndarray:
    """Class probabilities or scores: 1-D (binary score) or 2-D (n, C), finite, any float."""
    array = as_array(value, name, ndim=(1, 2))
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def check_same_length(**arrays: Any) -> int:
    """Raise unless every array has the same number of rows; return that number.

    >>> check_same_length(predictions=np.zeros(3), labels=np.zeros(4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'predictions' and 'labels' must have ... (got 3 and 4)
    """
    items = [(k, len(v)) for k, v in arrays.items() if v is not None]
    if not items:
        return 0
    first_name, first_len = items[0]
    for other_name, other_len in items[1:]:
        if other_len != first_len:
            raise InvalidInput(
                f"'{first_name}' and '{other_name}' must have the same number of rows "
                f"(got {first_len} and {other_len})"
            )
    return first_len
