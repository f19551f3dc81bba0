"""Row kernels along a short class axis: argmax, finiteness, row sums, log-loss terms.

Internal (numpy only). On an (n, C) array with a short class axis, numpy's reductions
along the rows (``np.argmax(p, axis=1)``, ``p.sum(axis=1)``) call an inner loop per row
and cost 10 to 60 times a read of the array. These kernels walk the rows in blocks of
up to 65,536 rows (`BLOCK_VALUES` values at most), so that a block's work arrays stay in
or near a core's L2 cache and numpy's per-call overhead stays small, and

- `argmax_rows` works column by column for a short class axis (a comparison and a
  running maximum per column, on a transposed copy of the block when its columns are not
  contiguous; two C-ordered columns as one flat comparison) and falls back to
  ``np.argmax`` on each block for wider arrays;
- `all_finite` takes each block's minimum and maximum (a NaN propagates into both, an
  infinity is one of them): two vectorized reductions and no boolean array;
- `row_sums` adds two columns, or multiplies more by a vector of ones (BLAS);
- `scan_rows` validates class probabilities in one pass (finite, smallest and largest
  value, rows summing to 1) and picks each row's true-class probability on the way.

Nothing copies the whole input: read-only arrays, memory maps and strided views are read
block by block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "block_classes",
    "BLOCK_VALUES",
    "COLUMNWISE_MAX",
    "RowScan",
    "all_finite",
    "argmax_rows",
    "log_loss_terms",
    "non_finite",
    "row_blocks",
    "row_sums",
    "scan_rows",
]

#: Rows per block: long enough that numpy's per-call overhead (about a microsecond, a
#: few dozen calls per block) is small beside the block's data, at most `BLOCK_VALUES`
#: values (1 MiB of float32: a block and its transposed copy stay in L2 or nearby) and at
#: least `_MIN_ROWS` rows.
_BLOCK_ROWS = 1 << 16
BLOCK_VALUES = 1 << 18
_MIN_ROWS = 1024
#: Rows per matrix-vector product (BLAS is slower on longer ones here, threading).
_MATVEC_ROWS = 1 << 14
#: Up to this many columns, argmax may be computed column by column: always when the
#: columns are contiguous (F order), else when a row holds at most `_COLUMNWISE_BYTES`
#: (24 float32 or 12 float64 values; beyond, the transposed copy costs more than
#: ``np.argmax`` saves, as measured here).
COLUMNWISE_MAX = 32
_COLUMNWISE_BYTES = 96


def _rows_per_block(array: np.ndarray) -> int:
    per_row = max(1, array.size // max(1, len(array))) if array.ndim else 1
    return max(_MIN_ROWS, min(_BLOCK_ROWS, BLOCK_VALUES // per_row))


def row_blocks(array: np.ndarray, rows: int | None = None) -> Iterator[tuple[int, int]]:
    """The ``(start, stop)`` row ranges the kernels walk ``array`` in (``rows`` per block).

    >>> list(row_blocks(np.zeros((3, 2)))), list(row_blocks(np.zeros(5), rows=2))
    ([(0, 3)], [(0, 2), (2, 4), (4, 5)])
    """
    n = len(array)
    step = rows or _rows_per_block(array)
    for start in range(0, n, step):
        yield start, min(start + step, n)


def _min_max(block: np.ndarray) -> tuple[float, float]:
    """The smallest and largest value of a non-empty block (NaN when it holds a NaN)."""
    return float(np.min(block)), float(np.max(block))


# --------------------------------------------------------------------------- finiteness


def _block_finite(block: np.ndarray) -> bool:
    if block.dtype.kind == "f":  # NaN propagates into the minimum; infinity is an extreme
        low, high = _min_max(block)
        return math.isfinite(low) and math.isfinite(high)
    return bool(np.isfinite(block).all())


def all_finite(a: Any) -> bool:
    """True when ``a`` holds no NaN or infinity; ``np.isfinite(a).all()`` without an
    (n, C) boolean array.

    Each block of rows takes two vectorized reductions, its minimum and maximum: a NaN
    propagates into both, an infinity is one of them. Integer and boolean arrays are finite.

    >>> all_finite(np.array([[0.5, 0.5], [1.0, np.inf]])), all_finite(np.zeros((0, 3)))
    (False, True)
    """
    array = np.asarray(a)
    if array.dtype.kind not in "fc":
        return True
    if array.ndim == 0:
        return bool(np.isfinite(array))
    return all(_block_finite(array[start:stop]) for start, stop in row_blocks(array))


def non_finite(a: Any) -> tuple[int, int, int]:
    """(values, rows, first): how many values and rows of ``a`` are NaN or infinite, and the
    flat C-order index of the first (-1 when none). Blocked; for error messages.

    >>> non_finite(np.array([[0.5, np.nan], [np.inf, -np.inf], [1.0, 0.0]]))
    (3, 2, 1)
    """
    array = np.asarray(a)
    if array.dtype.kind not in "fc":
        return 0, 0, -1
    if array.ndim == 0:
        bad = 0 if np.isfinite(array) else 1
        return bad, bad, bad - 1
    values = rows = 0
    first = -1
    width = array.size // len(array) if len(array) else 0
    for start, stop in row_blocks(array):
        block = array[start:stop]
        if _block_finite(block):
            continue
        bad = ~np.isfinite(block).reshape(stop - start, -1)
        count = int(np.count_nonzero(bad))
        if count and first < 0:
            first = start * width + int(np.flatnonzero(bad.reshape(-1))[0])
        values += count
        rows += int(np.count_nonzero(bad.any(axis=1)))
    return values, rows, first


# --------------------------------------------------------------------------- argmax


class _Argmax:
    """The work arrays of `argmax_rows` (one block's worth, allocated once) and its passes.

    Every pass lets a later column win only when it is strictly greater, so ties give the
    first maximum, as in ``np.argmax``. Each returns False when a row of the block may
    hold NaN (the caller then asks ``np.argmax``, whose NaN rules differ).
    """

    def __init__(self, array: np.ndarray, rows: int, finite: bool) -> None:
        c = array.shape[1]
        self.floats = array.dtype.kind == "f" and not finite
        self.flags = np.empty(rows * (2 if c == 2 else 1), dtype=np.bool_)
        self.index = np.empty(rows, dtype=np.uint8)
        self.step = np.empty(rows, dtype=np.uint8)
        self.best = np.empty(rows, dtype=array.dtype)
        # Columns of an F-ordered block are contiguous; a C-ordered block of two columns
        # is compared as one flat array; other blocks are transposed into ``cols`` first.
        self.flat = (
            c == 2 and array.strides == (2 * array.itemsize, array.itemsize) and np.little_endian
        )
        strided = array.strides[0] != array.itemsize and not self.flat
        # Rows of the copy are padded by 64 bytes: 2**k apart, they would share cache sets.
        pad = 64 // array.itemsize if array.itemsize <= 64 else 1
        self.cols = np.empty((c, rows + pad), dtype=array.dtype) if strided else None

    def block(self, block: np.ndarray, out: np.ndarray) -> bool:
        """Write the argmax of ``block``'s rows to ``out``; False if it may hold NaN."""
        m = len(block)
        if self.flat:  # row i is flat[2i], flat[2i + 1]: one contiguous comparison
            flat, flags = block.reshape(-1), self.flags[: 2 * m]
            np.greater(flat[1:], flat[:-1], out=flags[:-1])
            # flags[2i] is the low byte of the i-th 16-bit word (little-endian machines):
            # reading it that way is faster than a strided copy of flags[::2].
            np.bitwise_and(flags.view(np.uint16), 1, out=out, casting="unsafe")
            return not (self.floats and math.isnan(float(np.min(block))))
        if self.cols is None:
            columns = list(block.T)
        else:
            np.copyto(self.cols[:, :m], block.T)
            columns = list(self.cols[:, :m])
        flags, index, step, best = self.flags[:m], self.index[:m], self.step[:m], self.best[:m]
        np.greater(columns[1], columns[0], out=flags)
        if len(columns) == 2:
            out[:] = flags
            return not (self.floats and math.isnan(float(np.min(block))))
        np.copyto(index, flags.view(np.uint8))
        np.maximum(columns[0], columns[1], out=best)  # NaN propagates into the maximum
        for j, column in enumerate(columns[2:], start=2):
            np.greater(column, best, out=flags)
            np.maximum(best, column, out=best)
            # The index only grows: max(index, j * flag) moves it to j where column wins.
            np.multiply(flags.view(np.uint8), j, out=step)
            np.maximum(index, step, out=index)
        out[:] = index
        if not self.floats:
            return True
        with np.errstate(all="ignore"):  # +inf and -inf maxima give NaN: numpy decides
            return not math.isnan(float(np.add.reduce(best)))


def argmax_rows(p: Any, *, finite: bool = False, dtype: Any = np.intp) -> np.ndarray:
    """``np.argmax(p, axis=1)``, blocked and column by column for a short class axis.

    The same answer as numpy for every real dtype and layout: ties give the first
    maximum; a row holding NaN gives its first NaN (blocks that may hold NaN are handed
    to ``np.argmax``). Each block is walked column by column (a comparison and a running
    maximum per column, on a transposed copy of the block when its columns are not
    contiguous) up to `COLUMNWISE_MAX` contiguous columns or 96 bytes per row (24
    float32, 12 float64 values); wider arrays use ``np.argmax`` per block.

    Args:
        p: (n, C) array-like of reals (C-, F-ordered or strided, read-only or memory-mapped).
        finite: the caller guarantees ``p`` has no NaN, so the NaN test is skipped.
        dtype: the integer dtype of the result (``np.uint8`` is enough for C <= 256 and
            writes an eighth of the memory).

    Returns:
        (n,) class indices.

    Raises:
        ValueError: for an array that is not 2-D, or has no columns and some rows.

    >>> argmax_rows(np.array([[0.2, 0.8], [0.5, 0.5], [0.1, np.nan]]))
    array([1, 0, 1])
    """
    array = np.asarray(p)
    if array.ndim != 2:
        raise ValueError(f"argmax_rows needs a 2-D array (got shape {array.shape})")
    n, c = array.shape
    out = np.empty(n, dtype=dtype)
    if n == 0:
        return out
    if c == 0:
        raise ValueError("attempt to get argmax of an empty sequence")
    if c == 1:
        out.fill(0)
        return out
    contiguous_columns = array.strides[0] == array.itemsize
    if c > COLUMNWISE_MAX or not (contiguous_columns or c * array.itemsize <= _COLUMNWISE_BYTES):
        for start, stop in row_blocks(array):
            out[start:stop] = np.argmax(array[start:stop], axis=1)
        return out
    kernel = _Argmax(array, min(n, _rows_per_block(array)), finite)
    for start, stop in row_blocks(array):
        block = array[start:stop]
        if not kernel.block(block, out[start:stop]):
            out[start:stop] = np.argmax(block, axis=1)
    return out


# --------------------------------------------------------------------------- row sums


def _sum_block(block: np.ndarray, out: np.ndarray) -> None:
    """Row sums of a block into ``out`` (same dtype as the block for float32/64, else
    float64): a column add for two columns, matrix-vector products for more."""
    c = block.shape[1]
    if out.dtype != block.dtype or c == 1:
        np.sum(block, axis=1, dtype=out.dtype, out=out)
    elif c == 2:
        np.add(block[:, 0], block[:, 1], out=out)
    else:
        ones = np.ones(c, dtype=block.dtype)
        for start, stop in row_blocks(block, _MATVEC_ROWS):
            np.matmul(block[start:stop], ones, out=out[start:stop])


def _sum_dtype(array: np.ndarray) -> np.dtype[Any]:
    """float32/float64 rows are summed in their own precision, anything else in float64."""
    return array.dtype if array.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def row_sums(p: Any) -> np.ndarray:
    """``p.sum(axis=1)`` as float64, blocked: column adds or BLAS matrix-vector products.

    float32 and float64 rows are summed in their own precision (float32 rows therefore to
    float32 rounding, which differs from a float64 sum by at most about ``C * 6e-8`` for
    probabilities) in an order that may differ from numpy's; other dtypes in float64.

    >>> row_sums(np.array([[0.25, 0.75], [1.0, 2.0]], dtype=np.float32))
    array([1., 3.])
    """
    array = np.asarray(p)
    if array.ndim != 2:
        raise ValueError(f"row_sums needs a 2-D array (got shape {array.shape})")
    out = np.empty(len(array), dtype=np.float64)
    work = _sum_dtype(array)
    buffer = None if work == out.dtype else np.empty(_rows_per_block(array), dtype=work)
    with np.errstate(all="ignore"):
        for start, stop in row_blocks(array):
            part = out[start:stop] if buffer is None else buffer[: stop - start]
            _sum_block(array[start:stop], part)
            if buffer is not None:
                out[start:stop] = part
    return out


# --------------------------------------------------------------------------- probabilities


class RowScan(NamedTuple):
    """What one pass of `scan_rows` found.

    Attributes:
        finite: no NaN or infinity (True when the scan was told not to look).
        low, high: the smallest and largest value (NaN when not ``finite``).
        sums_ok: every row sums to 1 within the tolerance, judged as a float64 sum per
            row would judge it; False also when a row is too close to call (the caller
            then decides with numpy's float64 sums). None for 1-D input or no tolerance.
        picked: (n,) float64 probability of each row's label (``p[i, y_i]``; for 1-D
            ``p`` the probability of class ``y_i``), or None without labels.
    """

    finite: bool
    low: float
    high: float
    sums_ok: bool | None
    picked: np.ndarray | None


def _pick(
    block: np.ndarray, labels: np.ndarray, flat_base: np.ndarray | None, out: np.ndarray
) -> None:
    """``out[i] = block[i, labels[i]]`` as float64 (1-D: ``p`` for label 1, else ``1 - p``)."""
    if block.ndim == 1:
        out[:] = np.where(labels == 1, block, 1.0 - block.astype(np.float64))
    elif flat_base is not None:  # a C-contiguous block: one flat gather
        out[:] = np.take(block.reshape(-1), flat_base[: len(block)] + labels)
    else:
        out[:] = np.take_along_axis(block, labels[:, None], axis=1)[:, 0]


def scan_rows(
    p: np.ndarray,
    *,
    tolerance: float | None = None,
    labels: np.ndarray | None = None,
    check_finite: bool = True,
) -> RowScan:
    """One blocked pass over floating probabilities: finiteness, range, row sums, labels.

    Args:
        p: (n,) or (n, C) floating array.
        tolerance: for 2-D ``p``, how far a row sum may be from 1.
        labels: (n,) int64 class indices already checked to lie in [0, C) (0/1 for 1-D).
        check_finite: False when ``p`` is known to be finite.

    >>> scan = scan_rows(np.array([[0.2, 0.8], [0.6, 0.4]]), tolerance=1e-3,
    ...                  labels=np.array([1, 1]))
    >>> scan.finite, scan.low, scan.high, scan.sums_ok, scan.picked.tolist()
    (True, 0.2, 0.8, True, [0.8, 0.4])
    """
    n = len(p)
    two_d = p.ndim == 2
    picked = None if labels is None else np.empty(n, dtype=np.float64)
    flat_base = None
    if labels is not None and two_d and p.flags.c_contiguous:
        flat_base = np.arange(min(n, _rows_per_block(p)), dtype=np.int64) * p.shape[1]
    sums = None
    if two_d and tolerance is not None and n:
        sums = np.empty(min(n, _rows_per_block(p)), dtype=_sum_dtype(p))
    low, high, worst = math.inf, -math.inf, 0.0
    with np.errstate(all="ignore"):
        for start, stop in row_blocks(p):
            block = p[start:stop]
            block_low, block_high = _min_max(block)
            if check_finite and not (math.isfinite(block_low) and math.isfinite(block_high)):
                return RowScan(False, math.nan, math.nan, None, None)
            low, high = min(low, block_low), max(high, block_high)
            if sums is not None:
                part = sums[: stop - start]
                _sum_block(block, part)
                above, below = float(np.max(part)) - 1.0, 1.0 - float(np.min(part))
                finite_sums = math.isfinite(above) and math.isfinite(below)
                worst = max(worst, above, below) if finite_sums else math.inf
            if picked is not None and labels is not None:
                _pick(block, labels[start:stop], flat_base, picked[start:stop])
    sums_ok = None
    if two_d and tolerance is not None:
        sums_ok = sums is None or worst <= tolerance - _sum_margin(
            sums.dtype, p.shape[1], low, high, worst
        )
    return RowScan(True, low, high, sums_ok, picked)


def _sum_margin(dtype: np.dtype[Any], c: int, low: float, high: float, worst: float) -> float:
    """How far our row sums may be from numpy's float64 ones: a rounding error bound.

    Summing C values in any order errs by at most ``(C - 1) * eps / 2 * sum(|p|)``; with
    no negative value and sums near 1, ``sum(|p|)`` is at most 2, else ``C * max(|p|)``.
    Twice ``C * eps * sum(|p|)`` leaves room for numpy's own float64 rounding.
    """
    mass = 2.0 if low >= 0.0 and worst < 1.0 else c * max(1.0, abs(low), abs(high))
    return 2.0 * c * float(np.finfo(dtype).eps) * mass


def log_loss_terms(picked: np.ndarray, eps: float) -> np.ndarray:
    """``-log(clip(picked, eps, 1))`` in place, block by block (the caller's float64 array).

    >>> log_loss_terms(np.array([1.0, 0.5, 0.0]), 1e-15).round(4).tolist()
    [-0.0, 0.6931, 34.5388]
    """
    for start, stop in row_blocks(picked):
        part = picked[start:stop]
        np.clip(part, eps, 1.0, out=part)
        np.log(part, out=part)
        np.negative(part, out=part)
    return picked


# --------------------------------------------------------------------------- memo


def block_classes(block: np.ndarray, *, finite: bool = False) -> np.ndarray:
    """The predicted class of each row of a block, as `predicted_labels` gives it, unvalidated.

    (m, C) scores: the first maximum of each row (`argmax_rows`; ``finite``: the caller
    knows there is no NaN). (m,) floats: 1 where ``p > 0.5``. (m,) booleans or integers:
    the labels. Classes come as small integers (uint8 where they fit), not int64.

    >>> block_classes(np.array([[0.2, 0.8], [0.5, 0.5]])).tolist()
    [1, 0]
    >>> block_classes(np.array([0.7, 0.5])).tolist()
    [1, 0]
    """
    if block.ndim == 2:
        dtype = np.uint8 if block.shape[1] <= 256 else np.intp
        return argmax_rows(block, finite=finite, dtype=dtype)
    if block.dtype.kind == "f":
        return (block > 0.5).view(np.uint8)
    if block.dtype.kind == "b":
        return block.view(np.uint8)
    return block
