"""Input validation shared by the statistics kernels, the checks and the servers.

Every error is an `InvalidInput` (a `ValueError`) naming the argument and what was wrong.

- ``check_*`` functions take a value and its argument name and return the checked value;
- `int_at_least`, `number_in`, `one_of`, `callable_field`, `non_empty_string` and
  `optional` are attrs field validators built on them (the field's name is the argument's).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from mlchecks.exceptions import InvalidInput

__all__ = [
    "TASKS",
    "Validator",
    "as_array",
    "as_int64",
    "as_labels",
    "as_probabilities",
    "callable_field",
    "check_choice",
    "check_int",
    "check_non_empty_string",
    "check_pair",
    "check_number",
    "check_open_unit",
    "check_same_length",
    "check_tuple_of",
    "describe",
    "encode_labels",
    "estimator_classes",
    "infer_task",
    "int_at_least",
    "is_numeric",
    "non_empty_string",
    "number_in",
    "one_of",
    "optional",
    "raw_labels",
]

#: The tasks a check can be told (``task=``) or infer (``"auto"``).
TASKS = ("auto", "classification", "regression", "multilabel")

#: An attrs field validator: ``validator(instance, attribute, value)`` raises or returns None.
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


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


def check_pair(value: Any, name: str, parts: str) -> tuple[Any, Any]:
    """``value`` as a pair (a 2-tuple or 2-list); ``parts`` names its halves in the message.

    >>> check_pair([1, 2], "batch", "(X, y)")
    (1, 2)
    >>> check_pair(3, "batch", "(X, y)")
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'batch' must be a pair (X, y) (got 3 that is a int)
    """
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise InvalidInput(f"'{name}' must be a pair {parts} (got {describe(value)})")
    return value[0], value[1]


def as_int64(array: np.ndarray, name: str, what: str, hint: str | None = None) -> np.ndarray:
    """An integer or whole-float array as int64; anything else is an `InvalidInput`.

    ``what`` names the expected values in the message (``"integer slice ids"``); ``hint``
    replaces it for a dtype that is neither integer nor floating.

    >>> as_int64(np.array([1.0, 2.0]), "ids", "integer ids")
    array([1, 2])
    """
    if array.dtype.kind == "f":
        if not np.all(array == np.round(array)):
            raise InvalidInput(f"'{name}' must be {what} (got non-integer floats)")
        return array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise InvalidInput(f"'{name}' must be {hint or what} (got {describe(array)})")
    return array.astype(np.int64, copy=False)


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
    else:
        array = as_int64(array, name, "integer class indices")
    low, high = int(array.min()), int(array.max())
    if low < 0 or (n_classes is not None and high >= n_classes):
        bound = f"[0, {n_classes})" if n_classes is not None else ">= 0"
        raise InvalidInput(
            f"'{name}' must be class indices in {bound} (got values from {low} to {high})"
        )
    return array


def raw_labels(value: Any, name: str = "labels") -> np.ndarray:
    """Labels as given, checked for shape only: (n,) of any dtype, or (n, L) multi-label.

    Strings and other hashable class names are kept; `encode_labels` turns them into
    integer codes.

    >>> raw_labels(["cat", "dog"]).tolist()
    ['cat', 'dog']
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"'{name}' must be array-like (got {describe(value)}): {exc}") from None
    if array.ndim not in (1, 2):
        raise InvalidInput(f"'{name}' must be 1-D or 2-D (got {describe(array)})")
    if len(array) == 0:
        raise InvalidInput(f"'{name}' must have at least 1 rows (got {describe(array)})")
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise InvalidInput(f"'{name}' must be finite (got {bad} NaN or infinite values)")
    return array


def is_numeric(array: np.ndarray) -> bool:
    """True for boolean, integer and floating arrays (not strings or objects)."""
    return array.dtype.kind in "biuf"


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
        classes = np.unique(array)
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
    if y is not None and y.dtype.kind == "f" and not np.all(y == np.round(y)):
        return "regression"
    outside = p.size > 0 and (float(p.min()) < 0.0 or float(p.max()) > 1.0)
    if outside and not np.all(p == np.round(p)):
        return "regression"
    return "classification"


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


# ------------------------------------------------------------------------------- scalars


def check_int(value: Any, name: str, *, minimum: int = 0) -> int:
    """``value`` as a Python int >= ``minimum`` (numpy integers accepted, bools and floats not).

    >>> check_int(np.int64(3), "n_bets", minimum=1)
    3
    >>> check_int(0, "n_bets", minimum=1)
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'n_bets' must be an integer >= 1 (got 0)
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise InvalidInput(f"'{name}' must be an integer >= {minimum} (got {describe(value)})")
    number = int(value)
    if number < minimum:
        raise InvalidInput(f"'{name}' must be an integer >= {minimum} (got {number})")
    return number


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> tuple[str, str]:
    """How a range reads in the two messages: (for a value of the wrong type, out of range)."""
    if math.isinf(high):
        if math.isinf(low):
            return "a number", "a finite number"
        bound = f"{'>' if low_open else '>='} {low:g}"
        return f"a number {bound}", f"a finite number {bound}"
    where = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return f"a number {where}", where


def check_number(
    value: Any,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float in the range from ``low`` to ``high`` (ends open or closed).

    Args:
        value: a real number (numpy scalars accepted, bools not).
        name: the argument name used in error messages.
        low, high: the ends of the range; an infinite end is no bound.
        low_open, high_open: exclude that end.

    Raises:
        InvalidInput: ``value`` is not a real number, not finite, or out of range.

    >>> check_number(0.5, "alpha", low=0, high=1, low_open=True, high_open=True)
    0.5
    >>> check_number(-1, "atol", low=0)
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'atol' must be a finite number >= 0 (got -1)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        wanted, _ = _interval(low, high, low_open, high_open)
        raise InvalidInput(f"'{name}' must be {wanted} (got {describe(value)})")
    number = float(value)
    ok = math.isfinite(number)
    ok = ok and (number > low if low_open else number >= low)
    ok = ok and (number < high if high_open else number <= high)
    if not ok:
        _, where = _interval(low, high, low_open, high_open)
        raise InvalidInput(f"'{name}' must be {where} (got {value!r})")
    return number


def check_open_unit(value: Any, name: str) -> float:
    """``value`` as a float in the open interval (0, 1) (a probability, a share, an alpha).

    >>> check_open_unit(1.0, "alpha")
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'alpha' must be in (0, 1) (got 1.0)
    """
    return check_number(value, name, low=0.0, high=1.0, low_open=True, high_open=True)


def check_choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    """``value``, which must be one of the strings ``allowed``.

    >>> check_choice("bonferroni", "correction", ("holm", "bh"))
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'correction' must be one of 'holm', 'bh' (got 'bonferroni')
    """
    if value not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise InvalidInput(f"'{name}' must be one of {names} (got {value!r})")
    return str(value)


def check_non_empty_string(value: Any, name: str) -> str:
    """``value``, which must be a non-empty string.

    >>> check_non_empty_string("", "version")
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'version' must be a non-empty string (got '' that is a str)
    """
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"'{name}' must be a non-empty string (got {describe(value)})")
    return value


# ------------------------------------------------------------------------ field validators


def check_tuple_of(
    value: Any, name: str, kind: type | tuple[type, ...], *, what: str
) -> tuple[Any, ...]:
    """``value``, a sequence (not a string, not a lone ``kind``), as a tuple of ``kind`` items.

    Raises:
        InvalidInput: ``value`` is not such a sequence, or an item is not a ``kind``; the
            message names ``name`` and says ``what`` the items should be.

    >>> check_tuple_of(["a", "b"], "columns", str, what="names")
    ('a', 'b')
    >>> check_tuple_of("ab", "columns", str, what="names")
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'columns' must be a sequence of names (got 'ab' that is a str)
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, (str, bytes, *kinds)) or not isinstance(value, Iterable):
        raise InvalidInput(f"'{name}' must be a sequence of {what} (got {describe(value)})")
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise InvalidInput(f"'{name}' must contain only {what} (got {describe(item)})")
    return items


def int_at_least(minimum: int) -> Validator:
    """An attrs validator: an integer (not a bool) >= ``minimum`` (see `check_int`)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_int(value, attribute.name, minimum=minimum)

    return validate


def number_in(
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Validator:
    """An attrs validator: a finite real number in the range (see `check_number`)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_number(
            value, attribute.name, low=low, high=high, low_open=low_open, high_open=high_open
        )

    return validate


def one_of(*allowed: str) -> Validator:
    """An attrs validator: one of the strings ``allowed`` (see `check_choice`)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_choice(value, attribute.name, allowed)

    return validate


def optional(validator: Validator) -> Validator:
    """An attrs validator that lets None through and checks anything else."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return validate


def callable_field(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: the value is callable."""
    if not callable(value):
        raise InvalidInput(f"'{attribute.name}' must be callable (got {describe(value)})")


def non_empty_string(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: a non-empty string (see `check_non_empty_string`)."""
    check_non_empty_string(value, attribute.name)
