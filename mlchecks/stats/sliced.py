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

from mlchecks._dask import is_dask, lazy_array
from mlchecks._validate import as_array, as_int64, as_labels, check_int, describe, raw_labels
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._rows import all_finite
from mlchecks.stats.metrics import CORRECTNESS_METRICS, METRICS, Metric, get_metric

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
    if is_dask(value):  # kept lazy; ranges are checked as the blocks are read
        lazy: np.ndarray = lazy_array(value, "codes", ndim=(1,))
        if lazy.dtype.kind not in "iu":
            raise InvalidInput(f"'codes' must be a 1-D integer array (got {lazy.dtype})")
        return lazy
    array = as_array(value, "codes", min_size=0)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InvalidInput(f"'codes' must be a 1-D integer array (got {describe(array)})")
    return array.astype(np.intp, copy=False)


#: Count tables of up to this many slices are allowed for any number of examples (empty
#: slices are fine); beyond it, at most one slice per example: ``n_slices=10**12`` is an
#: error, not a 7 TiB allocation.
MAX_EMPTY_SLICES = 1 << 16
#: A (n_slices, n_classes, n_classes) confusion table may have this many cells, or up to
#: eight per example.
MAX_CONFUSION_CELLS = 1 << 22


def _table(value: Any, n_slices: Any) -> tuple[np.ndarray, int]:
    """Checked ``codes`` and ``n_slices``: an integer >= 0 and at most
    ``max(len(codes), MAX_EMPTY_SLICES)``."""
    codes = _codes(value)
    count = check_int(n_slices, "n_slices", minimum=0)
    limit = max(len(codes), MAX_EMPTY_SLICES)
    if count > limit:
        raise InvalidInput(
            f"'n_slices' must be at most {limit:,} (the larger of the number of examples, "
            f"{len(codes):,}, and {MAX_EMPTY_SLICES:,}) (got {count:,})"
        )
    return codes, count


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in value)


# ------------------------------------------------------------------ chunked count kernels
#
# The counting kernels build their fused bincount key block by block, in buffers that are
# allocated once and stay in a core's L2 cache, instead of in full-size temporaries that
# are allocated, faulted in, written and read again (DESIGN §6, docs/benchmarks.md). The
# inputs are validated in the same pass (the minimum or maximum of each block). On any
# input they do not handle (floats, lists of mixed types, wrong lengths, out-of-range
# values) they return None and the caller takes its whole-array path, which converts the
# input or raises the documented error: the fast path never changes a result or a message.

#: Rows per block: a block's int64 key (512 KiB) and its slices of the inputs stay in L2.
_BLOCK_ROWS = 1 << 16
#: And at least this many rows per cell of the count table.
_ROWS_PER_CELL = 8


def _block_rows(bins: int) -> int:
    """Rows per block for a count table of ``bins`` cells.

    Every block's `np.bincount` allocates and zeroes a table of ``bins`` counts that is
    then added to the total, so a block needs many more rows than the table has cells.
    """
    return max(_BLOCK_ROWS, _ROWS_PER_CELL * bins)


#: Count tables up to this many cells (or up to one per example) take the fast path, which
#: allocates its table before it has seen every label; larger ones take the whole-array
#: path, which rejects bad labels first.
_MAX_FAST_CELLS = 1 << 20


def _table_size(n_slices: Any) -> int | None:
    """``n_slices`` for a proper non-negative integer, else None (for the general path)."""
    if isinstance(n_slices, bool | np.bool_) or not isinstance(n_slices, int | np.integer):
        return None
    return int(n_slices) if n_slices >= 0 else None


def _fast_table(cells: int, n: int) -> bool:
    """Whether a count table of ``cells`` for ``n`` examples takes the chunked path."""
    return cells <= max(n, _MAX_FAST_CELLS)


def _index_array(value: Any, n: int) -> np.ndarray | None:
    """``value`` as a 1-D integer array of length ``n`` > 0 for a fast path, or None.

    Booleans are viewed as uint8 and uint64 as int64 (so that values of 2**63 and more
    read as negative and are rejected, as `as_labels` rejects them); no data is copied.
    """
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            return None
    kind = array.dtype.kind
    if array.ndim != 1 or len(array) != n or n == 0 or kind not in "biu":
        return None
    if not array.dtype.isnative:
        return None
    if kind == "b":
        return array.view(np.uint8)
    if kind == "u" and array.dtype.itemsize == 8:
        return array.view(np.int64)
    return array


def _in_range(block: np.ndarray, n_classes: int) -> bool:
    """Whether every label of an integer block lies in ``[0, n_classes)``, in one pass.

    Read as unsigned, a negative label is at least ``2**(bits - 1)``: one maximum checks
    both ends unless ``n_classes`` is beyond that, where only the sign is left to check.
    """
    bits = 8 * block.dtype.itemsize
    if block.dtype.kind == "i" and n_classes > 2 ** (bits - 1):
        return bool(block.min() >= 0)
    return bool(block.view(f"u{block.dtype.itemsize}").max() < n_classes)


def _hit_table(
    codes: np.ndarray,
    n_slices: int,
    hits: np.ndarray | None,
    labels: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray | None:
    """(n_slices, 2) counts of [wrong, right] examples per slice, chunked.

    An example is right where ``hits`` (booleans) is True, or where its two ``labels``
    (arrays from `_index_array`, which must be >= 0) are equal. Its key is
    ``2 * code + right``.

    Returns:
        The counts, or None when a code or a label is out of range.
    """
    n = len(codes)
    bins = 2 * n_slices
    step = _block_rows(bins)
    table = np.zeros(bins, dtype=np.intp)
    key = np.empty(min(step, n), dtype=np.intp)
    right = np.empty(min(step, n), dtype=np.bool_)
    # Only signed labels can be negative; unsigned ones need no check.
    signed = [a for a in labels or () if a.dtype.kind == "i"]
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = key[: stop - start]
        np.left_shift(codes[start:stop], 1, out=block)
        if labels is not None:
            hit = right[: stop - start]
            np.equal(labels[0][start:stop], labels[1][start:stop], out=hit)
            # Checked after the comparison has brought the labels into the cache.
            if any(a[start:stop].min() < 0 for a in signed):
                return None
        else:
            assert hits is not None
            hit = hits[start:stop]
        np.add(block, hit, out=block)
        if not _add_counts(table, block):
            return None
    return table.reshape(n_slices, 2)


def _add_counts(table: np.ndarray, key: np.ndarray) -> bool:
    """Add the bincount of ``key`` to ``table``; False when a key is outside the table."""
    try:
        counts = np.bincount(key, minlength=len(table))
    except ValueError:  # a negative key: a negative code (or an overflow)
        return False
    if len(counts) > len(table):
        return False
    table += counts
    return True


def _confusion_table(
    codes: np.ndarray,
    n_slices: int,
    truth: np.ndarray,
    predicted: np.ndarray,
    n_classes: int,
) -> np.ndarray | None:
    """Flat per-slice confusion counts, chunked; None when a code or a label is out of range.

    The key of an example is ``(code * C + true) * C + predicted``.
    """
    n = len(codes)
    bins = n_slices * n_classes * n_classes
    step = _block_rows(bins)
    table = np.zeros(bins, dtype=np.intp)
    key = np.empty(min(step, n), dtype=np.intp)
    for start in range(0, n, step):
        stop = min(start + step, n)
        y, p = truth[start:stop], predicted[start:stop]
        block = key[: stop - start]
        np.multiply(codes[start:stop], n_classes, out=block)
        np.add(block, y, out=block)
        # Each label block is checked right after its first use, while it is in the cache.
        if not _in_range(y, n_classes):
            return None
        np.multiply(block, n_classes, out=block)
        np.add(block, p, out=block)
        if not _in_range(p, n_classes):
            return None
        if not _add_counts(table, block):
            return None
    return table


def _confusion_by_slice(
    codes: np.ndarray, n_slices: Any, y_true: Any, y_pred: Any, n_classes: Any
) -> np.ndarray | None:
    """`sliced_confusion` in one chunked pass for integer labels, or None (see above)."""
    classes, slices = _table_size(n_classes), _table_size(n_slices)
    if not classes or slices is None or not _fast_table(slices * classes**2, len(codes)):
        return None
    truth, predicted = _index_array(y_true, len(codes)), _index_array(y_pred, len(codes))
    if truth is None or predicted is None:
        return None
    table = _confusion_table(codes, slices, truth, predicted, classes)
    return None if table is None else table.reshape(slices, classes, classes)


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
        if is_dask(self.codes):
            return
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
    raw = raw_labels(slices, name)  # object arrays of numbers become numeric; NaN rejected
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
    array = as_int64(
        as_array(raw, name, ndim=1), name, "integer slice ids", "integer ids or string labels"
    )
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
    codes, n_slices = _table(codes, n_slices)
    return _sum(codes, n_slices, values)


def _sum(codes: np.ndarray, n_slices: int, values: Any = None) -> np.ndarray:
    weights = None
    if values is not None:
        weights = as_array(values, "values", ndim=1, min_size=0, finite=False)
        if not all_finite(weights):
            as_array(values, "values", ndim=1, min_size=0)  # raises, naming the first one
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
    codes, n_slices = _table(codes, n_slices)
    hits = as_array(correct, "correct", min_size=0)
    if hits.dtype.kind != "b":
        raise InvalidInput(f"'correct' must be a boolean array (got {describe(hits)})")
    if hits.shape != codes.shape:
        raise InvalidInput(
            f"'correct' and 'codes' must have the same length (got {hits.shape} and {codes.shape})"
        )
    slices = _table_size(n_slices)
    if slices is not None and _fast_table(2 * slices, len(codes)):
        table = _hit_table(codes, slices, hits)
        if table is not None:
            counts = table.sum(axis=1)
            return counts, _ratio(table[:, 1], counts)
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
    codes, n_slices = _table(codes, n_slices)
    n_classes = check_int(n_classes, "n_classes", minimum=1)
    cells = n_slices * n_classes * n_classes
    if cells > max(8 * len(codes), MAX_CONFUSION_CELLS):
        raise InvalidInput(
            f"'n_classes' {n_classes:,} with 'n_slices' {n_slices:,} needs a confusion table of "
            f"{cells:,} cells, more than {max(8 * len(codes), MAX_CONFUSION_CELLS):,} (eight "
            f"per example, or {MAX_CONFUSION_CELLS:,})"
        )
    fast = _confusion_by_slice(codes, n_slices, y_true, y_pred, n_classes)
    if fast is not None:
        return fast
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
    return _sum(key, n_slices * cells).reshape(n_slices, n_classes, n_classes)


def slice_groups(codes: Any, n_slices: int) -> tuple[np.ndarray, np.ndarray]:
    """The example indices of every slice, from one stable sort.

    Returns:
        ``(order, offsets)``: slice ``s`` holds ``order[offsets[s]:offsets[s + 1]]``, in
        increasing index order.

    >>> order, offsets = slice_groups([1, 0, 1], 2)
    >>> order[offsets[1] : offsets[2]]
    array([0, 2])
    """
    codes, n_slices = _table(codes, n_slices)
    counts = _sum(codes, n_slices)
    offsets = np.zeros(n_slices + 1, dtype=np.intp)
    np.cumsum(counts, out=offsets[1:])
    # A stable sort has one answer; on 8- or 16-bit keys numpy's is a radix sort, O(n).
    if n_slices <= 1 << 16:
        codes = codes.astype(np.uint8 if n_slices <= 1 << 8 else np.uint16)
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
    codes, n_slices = _table(codes, n_slices)
    if found.name in CORRECTNESS_METRICS and METRICS[found.name] is found:
        fast = _correctness_by_slice(found.name == "error_rate", codes, n_slices, y_true, y_pred)
        if fast is not None:
            return fast
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


def _correctness_by_slice(
    errors: bool, codes: np.ndarray, n_slices: Any, y_true: Any, y_pred: Any
) -> np.ndarray | None:
    """Accuracy (or error rate) per slice from integer labels in one chunked pass, or None.

    The same numbers as the mean of the per-example 0/1 values: their per-slice sums are
    exact integers, so the ratios are bitwise equal. None for anything but 1-D integer or
    boolean labels of the right length, or for out-of-range values (the caller's general
    path then raises the documented error).
    """
    n, slices = len(codes), _table_size(n_slices)
    if slices is None or not _fast_table(2 * slices, n):
        return None
    truth, predicted = _index_array(y_true, n), _index_array(y_pred, n)
    if truth is None or predicted is None:
        return None
    table = _hit_table(codes, slices, None, (truth, predicted))
    if table is None:
        return None
    counts = table.sum(axis=1)
    return _ratio(table[:, 0] if errors else table[:, 1], counts)
