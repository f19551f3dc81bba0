"""Input validation shared by the statistics kernels, the checks and the servers.

Every error is an `InvalidInput` (a `ValueError`) naming the argument and what was wrong.

- ``check_*`` functions take a value and its argument name and return the checked value;
- `int_at_least`, `number_in`, `one_of`, `callable_field`, `non_empty_string` and
  `optional` are attrs field validators built on them (the field's name is the argument's).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlchecks.exceptions import InvalidInput
from mlchecks.stats._rows import all_finite, non_finite

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "is_collection",
    "shown",
    "as_counts",
    "TASKS",
    "Validator",
    "as_array",
    "as_int64",
    "as_labels",
    "as_probabilities",
    "as_scores",
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
    "int_at_least",
    "is_numeric",
    "non_empty_string",
    "number_in",
    "one_of",
    "optional",
    "raw_labels",
    "to_array",
]

#: The tasks a check can be told (``task=``) or infer (``"auto"``).
TASKS = ("auto", "classification", "regression", "multilabel")

#: An attrs field validator: ``validator(instance, attribute, value)`` raises or returns None.
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def shown(value: Any) -> str:
    """``value`` as messages show it: its repr cut to 120 characters (an array by its shape
    and dtype).

    >>> shown(np.zeros((2, 0))), shown("x" * 500)[-6:]
    ('array of shape (2, 0) and dtype float64', 'xxx...')
    """
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 120 else text[:117] + "..."


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages: `shown` and its type.

    >>> describe(np.zeros((2, 0))), describe("x" * 500)[-24:]
    ('array of shape (2, 0) and dtype float64', 'xxxxxxx... that is a str')
    """
    if isinstance(value, np.ndarray):
        return shown(value)
    return f"{shown(value)} that is a {type(value).__name__}"


#: What each non-numeric dtype kind holds, for messages.
_NOT_NUMBERS = {
    "c": "complex numbers (the imaginary part would be lost)",
    "U": "strings",
    "S": "bytes",
    "O": "Python objects",
    "M": "datetimes",
    "m": "timedeltas",
    "V": "structured records",
}


def to_array(value: Any, name: str) -> np.ndarray:
    """``np.asarray(value)`` of any dtype; a ragged list is an `InvalidInput` naming ``name``.

    >>> to_array([[1, 2], [3]], "slices")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'slices' must be array-like (got [[1, 2], [3]] that ...
    """
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"'{name}' must be array-like (got {describe(value)}): {exc}") from None


def _numbers(value: Any, name: str) -> np.ndarray:
    """``value`` as an array of booleans, integers or floats; anything else is rejected.

    Strings are never parsed as numbers ('10' < '9' as text), complex numbers never lose
    their imaginary part, and ragged nested lists are rejected.
    """
    array = to_array(value, name)
    kind = array.dtype.kind
    if kind not in "biuf":
        got = describe(value) if array.ndim == 0 else describe(array)
        what = _NOT_NUMBERS.get(kind, "non-numbers")
        raise InvalidInput(f"'{name}' must be numeric (got {got}: {what})")
    return array


def as_array(
    value: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype: npt.DTypeLike | None = None,
    finite: bool = True,
    min_size: int = 1,
) -> np.ndarray:
    """``value`` as a numpy array of numbers, checked; no copy when it already fits.

    The one gate every kernel's array passes: booleans, integers and floats only (strings,
    complex numbers, datetimes and Python objects are rejected, never converted), the
    allowed dimensions, no empty trailing dimension (an ``(n, 0)`` array), at least
    ``min_size`` rows, and (with ``finite``) no NaN or infinity.

    Args:
        value: array-like input.
        name: the argument name used in error messages.
        ndim: allowed number(s) of dimensions.
        dtype: convert to this dtype (e.g. ``np.float64``); None keeps the input's.
        finite: reject NaN and infinity (for floating inputs).
        min_size: the fewest elements (rows for 2-D) allowed.

    Raises:
        InvalidInput: naming ``name`` and what is wrong with the value.

    >>> as_array([1.0, float("nan")], "predictions")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'predictions' must be finite (got 1 NaN ... first at index 1)
    >>> as_array(["9", "10"], "scores")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'scores' must be numeric (got array ... <U2: strings)
    """
    array = _numbers(value, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if array.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise InvalidInput(f"'{name}' must be {want} (got {describe(array)})")
    count = array.shape[0] if array.ndim else array.size
    if count < min_size:
        raise InvalidInput(f"'{name}' must have at least {min_size} rows (got {describe(array)})")
    if array.ndim > 1 and 0 in array.shape[1:]:
        raise InvalidInput(f"'{name}' must have at least 1 column (got {describe(array)})")
    if dtype is not None:
        target = np.dtype(dtype)
        if finite and target.kind == "f" and target.itemsize >= array.dtype.itemsize >= 4:
            _check_finite(array, name)  # a wider float is finite where the input is
            finite = False
        array = array.astype(target, copy=False)
    if finite:
        _check_finite(array, name)
    return array


def _check_finite(array: np.ndarray, name: str) -> None:
    """Raise unless ``array`` is finite, naming the first value that is not."""
    if array.dtype.kind != "f" or all_finite(array):
        return
    n_bad, _, first = non_finite(array)
    where = np.unravel_index(first, array.shape) if array.ndim > 1 else first
    got = f"{n_bad} NaN or infinite values of {array.size}, first at index {where}"
    raise InvalidInput(f"'{name}' must be finite (got {got})")


def as_scores(value: Any, name: str, *, ndim: int | tuple[int, ...] = 1) -> np.ndarray:
    """Scores, probabilities or values as a finite float64 array (booleans count as 0/1).

    >>> as_scores([True, False], "scores")
    array([1., 0.])
    """
    return as_array(value, name, ndim=ndim, dtype=np.float64)


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
        if array.size and float(np.abs(array).max()) >= 2.0**63:
            raise InvalidInput(f"'{name}' must be {what} (got {float(np.abs(array).max()):g})")
        return array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise InvalidInput(f"'{name}' must be {hint or what} (got {describe(array)})")
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise InvalidInput(f"'{name}' must be {what} (got {int(array.max())})")
    return array.astype(np.int64, copy=False)


def as_labels(value: Any, name: str = "labels", *, n_classes: int | None = None) -> np.ndarray:
    """Integer class labels as a 1-D int64 array (floats allowed only when whole numbers).

    Booleans are the classes 0 and 1. With ``n_classes`` (the number of probability
    columns, or of classes in a class list) every label must be below it.

    >>> as_labels([0, 2, 1.0])
    array([0, 2, 1])
    >>> as_labels([0, 3, 1], n_classes=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'labels' must be ... [0, 3) ...: 3 at index 1 is outside
    """
    array = as_array(value, name, ndim=1)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    else:
        array = as_int64(array, name, "integer class indices")
    low, high = int(array.min()), int(array.max())
    if low < 0 or (n_classes is not None and high >= n_classes):
        bound = f"[0, {n_classes})" if n_classes is not None else ">= 0"
        bad = array < 0 if low < 0 else array >= (n_classes or 0)
        first = int(np.argmax(bad))
        count = int(np.count_nonzero(bad))
        raise InvalidInput(
            f"'{name}' must be class indices in {bound} (got values from {low} to {high}): "
            f"{int(array[first])} at index {first} is outside"
            + (f", and {count - 1:,} more" if count > 1 else "")
        )
    return array


def _hashable_names(array: np.ndarray, name: str) -> np.ndarray:
    """An object array of labels: all numbers become a numeric array; other items must be
    hashable class names (None and NaN are missing labels, rejected)."""
    items = array.reshape(-1).tolist()
    if all(isinstance(x, numbers.Real) for x in items):
        numeric = np.asarray(items)
        if numeric.dtype.kind in "biuf":
            return numeric.reshape(array.shape)
    for index, item in enumerate(items):
        missing = item is None or (isinstance(item, float) and math.isnan(item))
        try:
            hash(item)
        except TypeError:
            missing = True
        if missing:
            raise InvalidInput(
                f"'{name}' must be hashable class names or numbers (got {describe(item)} at "
                f"flat index {index})"
            )
    return array


def raw_labels(value: Any, name: str = "labels") -> np.ndarray:
    """Labels as given, checked for shape only: (n,) of any dtype, or (n, L) multi-label.

    Strings and other hashable class names are kept; `encode_labels` turns them into
    integer codes. Complex numbers, datetimes and unhashable items are rejected, an object
    array of plain numbers becomes numeric.

    >>> raw_labels(["cat", "dog"]).tolist()
    ['cat', 'dog']
    """
    array = to_array(value, name)
    if array.ndim not in (1, 2):
        raise InvalidInput(f"'{name}' must be 1-D or 2-D (got {describe(array)})")
    if len(array) == 0 or array.size == 0:
        raise InvalidInput(f"'{name}' must have at least 1 rows (got {describe(array)})")
    kind = array.dtype.kind
    if kind in "cmMV":
        what = _NOT_NUMBERS[kind]
        raise InvalidInput(f"'{name}' must be class labels (got {describe(array)}: {what})")
    if kind == "O":
        array = _hashable_names(array, name)
    if array.dtype.kind == "f" and not all_finite(array):
        bad = non_finite(array)[0]
        raise InvalidInput(f"'{name}' must be finite (got {bad} NaN or infinite values)")
    return array


def is_numeric(array: np.ndarray) -> bool:
    """True for boolean, integer and floating arrays (not strings or objects)."""
    return array.dtype.kind in "biuf"


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


def as_counts(
    k: Any, n: Any, k_name: str = "k", n_name: str = "n"
) -> tuple[np.ndarray, np.ndarray]:
    """Event counts ``k`` out of ``n`` as float64 arrays broadcast together.

    >>> [a.tolist() for a in as_counts([1, 2], 10)]
    [[1.0, 2.0], [10.0, 10.0]]
    """
    k_arr = as_array(k, k_name, dtype=np.float64, min_size=0)
    n_arr = as_array(n, n_name, dtype=np.float64, min_size=0)
    try:
        k_arr, n_arr = np.broadcast_arrays(k_arr, n_arr)
    except ValueError:
        raise InvalidInput(
            f"'{k_name}' and '{n_name}' must have shapes that broadcast "
            f"(got {k_arr.shape} and {n_arr.shape})"
        ) from None
    if not (np.isfinite(n_arr).all() and (k_arr >= 0).all() and (n_arr >= k_arr).all()):
        raise InvalidInput(
            f"'{k_name}' and '{n_name}' must be finite counts with 0 <= {k_name} <= {n_name}"
        )
    return k_arr, n_arr


def is_collection(value: Any) -> bool:
    """True for an iterable of items: not a str, bytes or mapping, nor a 0-d array (which
    claims to be iterable and cannot be iterated).

    >>> is_collection([1]), is_collection(np.zeros(2)), is_collection(np.array(0.0))
    (True, True, False)
    >>> is_collection("ab"), is_collection({"a": 1}), is_collection(3)
    (False, False, False)
    """
    return (
        isinstance(value, Iterable)
        and not isinstance(value, str | bytes | Mapping)
        and getattr(value, "ndim", 1) != 0
    )


def check_int(value: Any, name: str, *, minimum: int = 0) -> int:
    """``value`` as a Python int >= ``minimum`` (numpy integers accepted, bools and floats not).

    >>> check_int(np.int64(3), "n_bets", minimum=1)
    3
    >>> check_int(0, "n_bets", minimum=1)
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'n_bets' must be an integer >= 1 (got 0)
    """
    if isinstance(value, bool | np.bool_ | np.timedelta64) or not isinstance(
        value, numbers.Integral
    ):
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
    if isinstance(value, bool | np.timedelta64) or not isinstance(value, numbers.Real):
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
    try:
        items = tuple(value)
    except TypeError:  # a 0-d array is Iterable but cannot be iterated
        raise InvalidInput(
            f"'{name}' must be a sequence of {what} (got {describe(value)})"
        ) from None
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
