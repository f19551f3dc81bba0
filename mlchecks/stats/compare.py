"""Example-by-example comparison of two runs' predictions, in bounded memory.

`compare_predictions` reads two prediction arrays (class probabilities or scores) in chunks
and reports how far apart they are: top-1 churn, correctness churn, the largest and mean
absolute differences, the fraction of examples beyond a tolerance, the most different
examples, and a rank correlation.

Two runs of a reproducible system give (nearly) identical arrays, so the kernel compares
values elementwise first, in blocks that stay in a core's L2 cache, and computes the other
statistics only for the rows that differ. For those it works column by column (a running
`np.maximum` for the largest difference of a row, comparisons of columns for its argmax)
instead of with numpy's reductions along a short class axis, which cost many times a plain
elementwise pass (DESIGN §6). Temporaries are bounded by ``chunk_size`` values (and reused
from block to block), so 1e7 x C float32 inputs never allocate a full-size copy.

>>> import numpy as np
>>> a = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
>>> b = np.array([[0.7, 0.3], [0.6, 0.4], [0.5, 0.5]])
>>> c = compare_predictions(a, b, labels=[0, 1, 0])
>>> c.churn, c.correctness_churn, round(c.max_abs_diff, 6), c.top_indices
(0.3333333333333333, 0.3333333333333333, 0.2, (1,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks.exceptions import InvalidInput
from mlchecks._validate import as_array, as_labels, check_int, check_number, describe

__all__ = [
    "RANK_SAMPLE",
    "LossDivergence",
    "PredictionComparison",
    "compare_predictions",
    "first_mismatch",
    "loss_divergence",
]

#: The rank correlation uses at most this many evenly spaced examples (every k-th row), so
#: its sort stays small (tens of MB, a fraction of a second) on 1e7-row inputs; the sampling
#: standard error of the correlation is then at most about 0.002.
RANK_SAMPLE = 262_144


@attrs.frozen
class PredictionComparison:
    """How two runs' predictions on the same examples differ.

    An example *differs* when any of its values differs; it is *beyond tolerance* when any
    value satisfies ``|a - b| > atol + rtol * max(|a|, |b|)`` (symmetric in the two runs).

    Attributes:
        n: number of examples.
        churn: fraction of examples whose predicted class differs (argmax of each row for
            (n, C) input; ``score > threshold`` for (n,) float scores; the values themselves
            for (n,) integer labels). ``churn_count`` is the count.
        correctness_churn: fraction of examples correct in one run and wrong in the other
            (None without labels); ``correctness_churn_count`` is the count.
        max_abs_diff: largest absolute difference of any value.
        mean_abs_diff: mean absolute difference over all n x C values.
        fraction_beyond_tolerance: fraction of examples beyond tolerance;
            ``count_beyond_tolerance`` is the count.
        differing_count: number of examples with any difference at all.
        first_diff_index: index of the first example that differs (None when identical).
        top_indices: the (at most ``top_k``) most different examples, largest difference
            first (ties by index); only examples that differ are listed.
        top_diffs: their largest absolute difference, same order.
        rank_correlation: Spearman correlation of the two runs' scores for (n,) input, of
            each example's top-1 probability for (n, C) input (on every k-th example when
            n > `RANK_SAMPLE`); None when undefined (n < 2 or a constant vector) or not
            computed.
        identical: True when every value is exactly equal.
    """

    n: int
    churn: float
    churn_count: int
    correctness_churn: float | None
    correctness_churn_count: int | None
    max_abs_diff: float
    mean_abs_diff: float
    fraction_beyond_tolerance: float
    count_beyond_tolerance: int
    differing_count: int
    first_diff_index: int | None
    top_indices: tuple[int, ...]
    top_diffs: tuple[float, ...]
    rank_correlation: float | None
    identical: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        data = attrs.asdict(self)
        data["top_indices"] = list(self.top_indices)
        data["top_diffs"] = list(self.top_diffs)
        return data


def _predictions(value: Any, name: str) -> np.ndarray:
    array = as_array(value, name, ndim=(1, 2), finite=False)
    if array.dtype.kind == "b":
        array = array.astype(np.int8)
    elif array.dtype.kind not in "iuf":
        raise InvalidInput(f"'{name}' must be numeric (got {describe(array)})")
    return array


def _check_finite(chunk: np.ndarray, name: str, start: int) -> None:
    if chunk.dtype.kind == "f" and not np.isfinite(chunk).all():
        bad = np.flatnonzero(~np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1))
        raise InvalidInput(
            f"'{name}' must be finite (got NaN or infinity, first in row {start + int(bad[0])})"
        )


def _raise_non_finite(a2: np.ndarray, b2: np.ndarray, rows_per_chunk: int) -> None:
    """Raise the error for the first chunk (of ``chunk_size`` values) with NaN or infinity.

    The kernel only detects that a value is not finite; this scan, in the chunks of the
    ``chunk_size`` option, names the array and the row. It returns when every value is
    finite (a false alarm: a difference of two huge float64 values overflowed).
    """
    for start in range(0, len(a2), rows_per_chunk):
        _check_finite(a2[start : start + rows_per_chunk], "a", start)
        _check_finite(b2[start : start + rows_per_chunk], "b", start)


def _top_k(values: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest values (ties broken by smaller index), sorted; deterministic."""
    if values.size > k:
        kth = np.partition(values, values.size - k)[values.size - k]
        above = np.flatnonzero(values > kth)
        tied = np.flatnonzero(values == kth)
        tied = tied[np.argsort(indices[tied], kind="stable")][: k - above.size]
        keep = np.concatenate([above, tied])
        values, indices = values[keep], indices[keep]
    order = np.lexsort((indices, -values))
    return values[order], indices[order]


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their mean rank (``scipy.stats.rankdata``'s default).

    Midranks are exact (whole or half numbers), so they equal scipy's bit for bit; the
    sort is numpy's default (vectorized) one, several times faster than scipy's stable
    sort, and ties cost in proportion to their number.
    """
    order = np.argsort(x)
    ordered = x[order]
    in_sorted_order = np.arange(1, x.size + 1, dtype=np.float64)
    tied = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1  # equal to the value before
    if tied.size:
        # Runs of consecutive tied positions: the group of run k spans sorted positions
        # starts[k] .. ends[k] (the run and the value just before it).
        breaks = np.flatnonzero(np.diff(tied) != 1) + 1
        starts = tied[np.concatenate(([0], breaks))] - 1
        ends = tied[np.concatenate((breaks - 1, [tied.size - 1]))]
        # Ranks starts + 1 .. ends + 1 share their mean.
        sizes = ends - starts + 1
        mean = (starts + ends + 2) * 0.5
        group = np.repeat(np.arange(starts.size), sizes)
        positions = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(group.size)
        in_sorted_order[positions] = mean[group]
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = in_sorted_order
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 2 or x.min() == x.max() or y.min() == y.max():
        return None
    rx = _midranks(x)
    ry = _midranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    value = float(np.dot(rx, ry) / math.sqrt(float(np.dot(rx, rx)) * float(np.dot(ry, ry))))
    return max(-1.0, min(1.0, value))


def _confidence(array: np.ndarray, step: int) -> np.ndarray:
    """Each sampled example's top-1 score (the score itself for 1-D input)."""
    sample = array[::step]
    if sample.ndim == 1:
        return sample
    if sample.shape[1] > _COLUMNWISE_MAX:
        top: np.ndarray = sample.max(axis=1)
        return top
    if sample.shape[1] == 1:
        return sample[:, 0]
    top = np.maximum(sample[:, 0], sample[:, 1])  # one strided pass for two columns
    for j in range(2, sample.shape[1]):
        np.maximum(top, sample[:, j], out=top)
    return top


def _varies(sample: np.ndarray) -> bool:
    """Whether the top-1 scores of some examples differ (their ranks are not all tied).

    Read in pieces, so that it usually stops after the first one.
    """
    low = high = None
    for start in range(0, len(sample), _VARIES_ROWS):
        top = _confidence(sample[start : start + _VARIES_ROWS], 1)
        low = top.min() if low is None else min(low, top.min())
        high = top.max() if high is None else max(high, top.max())
        if low != high:
            return True
    return False


#: Examples per piece read by `_varies`.
_VARIES_ROWS = 4096
#: Values per block: each input's block and the comparison mask stay in a core's L2 cache.
_BLOCK_VALUES = 1 << 17
#: Values per sub-block of rows that differ: the float64 work arrays stay in L2.
_DENSE_VALUES = 1 << 15
#: Rows per sub-block at least, so that many columns do not make numpy calls tiny.
_MIN_SUB_ROWS = 1024
#: Up to this many columns, row maxima and argmaxes are column-wise passes (a running
#: `np.maximum`, comparisons of columns); above it, numpy's reductions along the rows.
_COLUMNWISE_MAX = 24
#: A block whose differing values are at most this fraction of its values gathers its
#: differing rows; a denser one is computed whole.
_SPARSE_FRACTION = 1 / 8


def _work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype of the column copies: float64 for floats (exact), the input's for others."""
    return np.dtype(np.float64) if dtype.kind == "f" and dtype.itemsize <= 8 else dtype


class _Comparison:
    """The running totals of `compare_predictions` over blocks of rows, and their kernels.

    Each block of rows is compared elementwise first; an equal block costs that one pass
    (and a finiteness check). The rows that differ (all rows of a dense block, or the
    gathered differing rows of a sparse one) are then processed in sub-blocks, column by
    column on (C, rows) float64 copies for C <= `_COLUMNWISE_MAX`: a difference, a running
    maximum and a comparison per column replace numpy's reductions along a short last
    axis, which cost many times a pass. Per-row results go to block buffers and are
    counted once per block. Every buffer is allocated once.
    """

    def __init__(
        self,
        a2: np.ndarray,
        b2: np.ndarray,
        truth: np.ndarray | None,
        *,
        atol: float,
        rtol: float,
        threshold: float,
        top_k: int,
        block_rows: int,
        rows_per_chunk: int,
    ) -> None:
        self.a2, self.b2, self.truth = a2, b2, truth
        self.atol, self.rtol, self.threshold, self.top_k = atol, rtol, threshold, top_k
        self.rows_per_chunk = rows_per_chunk
        self.n_classes = c = a2.shape[1]
        self.floats = a2.dtype.kind == "f" or b2.dtype.kind == "f"
        self.same_dtype = a2.dtype == b2.dtype
        self.columnwise = c <= _COLUMNWISE_MAX
        self.sub_rows = min(block_rows, max(_DENSE_VALUES // c, _MIN_SUB_ROWS))
        self.unequal = np.empty(block_rows * c, dtype=np.bool_)
        self.both_floats = a2.dtype.kind == "f" and b2.dtype.kind == "f"
        # One entry per row of a block.
        self.row_max = np.empty(block_rows, dtype=np.float64)
        self.beyond_flags = np.empty(block_rows, dtype=np.bool_)
        self.labels_a = np.empty(block_rows, dtype=self._label_dtype(a2.dtype))
        self.labels_b = np.empty(block_rows, dtype=self._label_dtype(b2.dtype))
        if self.columnwise:  # one entry per value, or per row, of a sub-block
            size = self.sub_rows
            self.work_a = np.empty(c * size, dtype=_work_dtype(a2.dtype))
            self.work_b = np.empty(c * size, dtype=_work_dtype(b2.dtype))
            self.diff = np.empty(c * size, dtype=np.float64)
            self.best_a = np.empty(size, dtype=self.work_a.dtype)
            self.best_b = np.empty(size, dtype=self.work_b.dtype)
            self.scale = np.empty(size, dtype=np.float64)
            self.flags = np.empty(size, dtype=np.bool_)
            self.jumps = np.empty(size, dtype=np.int8)
        # Totals.
        self.churn = 0
        self.correctness = 0
        self.differing = 0
        self.beyond = 0
        self.abs_sum = 0.0
        self.max_diff = 0.0
        self.first_diff: int | None = None
        self.top_values = np.empty(0, dtype=np.float64)
        self.top_index = np.empty(0, dtype=np.int64)
        # Differing rows of sparse blocks waiting to be processed: (a, b, indices).
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending_rows = 0

    def _label_dtype(self, dtype: np.dtype[Any]) -> np.dtype[Any]:
        """Predicted classes: booleans for one score or two columns, else class indices."""
        c = self.n_classes
        if c == 1:
            return np.dtype(np.bool_) if dtype.kind == "f" else _work_dtype(dtype)
        if c == 2:
            return np.dtype(np.bool_)
        return np.dtype(np.int8 if self.columnwise else np.intp)

    def fail(self) -> None:
        """A value is NaN or infinite: raise the error that names it (or return if not)."""
        _raise_non_finite(self.a2, self.b2, self.rows_per_chunk)

    # ---------------------------------------------------------------- blocks

    def block(self, start: int, stop: int) -> None:
        """Compare rows ``start:stop`` (at most ``block_rows``) and add to the totals.

        The differing rows of sparse blocks are gathered and processed together once
        there are enough of them (or before the next dense block, or at the end: call
        `flush`), so that few differing rows do not cost a kernel call per block.
        """
        a, b = self.a2[start:stop], self.b2[start:stop]
        m, c = stop - start, self.n_classes
        unequal = self.unequal[: m * c].reshape(m, c)
        np.not_equal(a, b, out=unequal)
        count = int(np.count_nonzero(unequal)) if unequal.any() else 0
        sparse = count <= m * c * _SPARSE_FRACTION
        if sparse and self.both_floats and not self._no_infinity(a):
            self.fail()
        if count == 0:
            return
        if sparse:
            rows = self._differing_rows(unequal)
            if self.pending_rows + rows.size > len(self.row_max):
                self.flush()
            self.pending.append((np.take(a, rows, axis=0), np.take(b, rows, axis=0), start + rows))
            self.pending_rows += rows.size
            if self.pending_rows >= self.sub_rows:
                self.flush()
            return
        self.flush()  # rows in index order
        self._process(a, b, start, None if count == m * c else unequal)

    def flush(self) -> None:
        """Process the gathered differing rows of sparse blocks."""
        if not self.pending:
            return
        parts, self.pending, self.pending_rows = self.pending, [], 0
        if len(parts) == 1:
            a, b, where = parts[0]
        else:
            a, b, where = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
        self._process(a, b, where, None)

    def _process(
        self, a: np.ndarray, b: np.ndarray, where: int | np.ndarray, unequal: np.ndarray | None
    ) -> None:
        """Run the kernel on rows ``a``, ``b`` in sub-blocks, then add them to the totals."""
        total = 0.0
        kernel = self._columns if self.columnwise else self._by_rows
        for first in range(0, len(a), self.sub_rows):
            last = first + self.sub_rows
            total += kernel(a[first:last], b[first:last], first)
        self._finish(len(a), where, unequal, total)

    @staticmethod
    def _no_infinity(a: np.ndarray) -> bool:
        """Whether a block of floats is finite where the two runs agree.

        Rows that differ are checked by their difference (see _finish): a NaN or an
        infinity there makes it NaN or infinite. Where the runs agree, b's values are a's,
        and NaN never equals itself: only an infinity in a can hide there, and it shows as
        a's minimum or maximum (a NaN elsewhere in a shows too; fail() then names it). A
        block processed whole needs no check: inf - inf is NaN.
        """
        return bool(np.isfinite(a.min()) and np.isfinite(a.max()))

    @staticmethod
    def _differing_rows(unequal: np.ndarray) -> np.ndarray:
        """The (sorted) indices of the rows with any unequal value."""
        c = unequal.shape[1]
        if c == 1:
            return np.flatnonzero(unequal)
        if c in (2, 4, 8):
            # The row's flags read as one integer are nonzero where any is set.
            return np.flatnonzero(unequal.view(f"u{c}")[:, 0] != 0)
        rows: np.ndarray = np.flatnonzero(unequal.reshape(-1)) // c
        keep = np.empty(rows.size, dtype=np.bool_)
        keep[0] = True
        np.not_equal(rows[1:], rows[:-1], out=keep[1:])
        unique: np.ndarray = rows[keep]
        return unique

    def _finish(
        self, r: int, where: int | np.ndarray, unequal: np.ndarray | None, total: float
    ) -> None:
        """Add the block buffers' first ``r`` rows to the totals.

        ``where`` is the index of the first row (consecutive rows) or every row's index
        (gathered rows, which all differ). ``unequal`` is the (r, C) comparison of
        consecutive rows of which only some differ, or None when all of them differ.
        """
        if not math.isfinite(total):
            # NaN or infinity in a differing row (or an overflow: then fail() returns).
            self.fail()
        row_max = self.row_max[:r]
        differs: np.ndarray | None = None
        count = r
        if unequal is not None:
            differs = self._row_differs(unequal, row_max)
            count = int(np.count_nonzero(differs))
            if count == 0:
                return
        self.differing += count
        if self.first_diff is None:
            if isinstance(where, int):
                self.first_diff = where + (0 if differs is None else int(np.argmax(differs)))
            else:
                self.first_diff = int(where[0])
        # Rows that do not differ add nothing to the sums and maxima and are not beyond
        # the tolerance (their differences are 0). Their classes agree too, unless the
        # runs' dtypes differ (integer labels against float scores, or float32 against
        # float64 scores at the threshold): then they are left out of the class counts.
        self.abs_sum += total
        self.max_diff = max(self.max_diff, float(row_max.max()))
        self.beyond += int(np.count_nonzero(self.beyond_flags[:r]))
        labels_a, labels_b = self.labels_a[:r], self.labels_b[:r]
        mask = None if self.same_dtype else differs
        changed = labels_a != labels_b
        if mask is not None:
            changed &= mask
        self.churn += int(np.count_nonzero(changed))
        if self.truth is not None:
            y = self.truth[where : where + r] if isinstance(where, int) else self.truth[where]
            moved = np.equal(labels_a, y)
            np.not_equal(moved, np.equal(labels_b, y), out=moved)
            if mask is not None:
                moved &= mask
            self.correctness += int(np.count_nonzero(moved))
        if self.top_k:
            self._top(row_max, where, differs)

    def _row_differs(self, unequal: np.ndarray, row_max: np.ndarray) -> np.ndarray:
        """Which of some consecutive rows differ anywhere."""
        differs: np.ndarray
        c = unequal.shape[1]
        if self.floats:
            # A difference of finite numbers, taken in float64, is 0 only where they are equal.
            differs = np.greater(row_max, 0.0)
        elif c == 1:
            differs = unequal[:, 0]
        elif c in (2, 4, 8) and unequal.flags.c_contiguous:
            # The row's flags read as one integer are nonzero where any is set.
            differs = np.not_equal(unequal.view(f"u{c}")[:, 0], 0)
        else:
            differs = np.any(unequal, axis=1)
        return differs

    def _top(
        self, row_max: np.ndarray, where: int | np.ndarray, differs: np.ndarray | None
    ) -> None:
        """Merge the rows that may enter the top k into it.

        Rows come in increasing index order, so once k rows are held, a row enters only
        with a difference above the k-th (a tie loses to the held row's smaller index); a
        row above it (>= 0) differs.
        """
        if self.top_values.size == self.top_k:
            picked: np.ndarray | None = np.flatnonzero(row_max > self.top_values[-1])
        else:
            picked = None if differs is None else np.flatnonzero(differs)
        if picked is None:
            values, local = row_max, np.arange(len(row_max))
        elif picked.size:
            values, local = row_max[picked], picked
        else:
            return
        index = where + local if isinstance(where, int) else where[local]
        self.top_values, self.top_index = _top_k(
            np.concatenate([self.top_values, values]),
            np.concatenate([self.top_index, index]),
            self.top_k,
        )

    # ---------------------------------------------------------------- sub-blocks

    def _columns(self, a: np.ndarray, b: np.ndarray, offset: int) -> float:
        """Row statistics of (r, C) rows into the block buffers at ``offset``, column-wise.

        Returns:
            The sum of the absolute differences.
        """
        r, c = a.shape
        rows = slice(offset, offset + r)
        work_a = self.work_a[: c * r].reshape(c, r)
        work_b = self.work_b[: c * r].reshape(c, r)
        np.copyto(work_a, a.T)
        np.copyto(work_b, b.T)
        row_max = self.row_max[rows]
        # One column: its difference is the row maximum.
        diff = row_max.reshape(1, r) if c == 1 else self.diff[: c * r].reshape(c, r)
        np.subtract(work_a, work_b, out=diff, dtype=np.float64)
        np.abs(diff, out=diff)
        if c > 1:
            np.maximum.reduce(diff, axis=0, out=row_max)
        beyond = self.beyond_flags[rows]
        if self.rtol == 0.0:
            np.greater(row_max, self.atol, out=beyond)
        else:
            # |a - b| > atol + rtol * max(|a|, |b|), in float64, as on whole rows.
            scale, flags = self.scale[:r], self.flags[:r]
            beyond[:] = False
            for j in range(c):
                np.maximum(np.abs(work_a[j]), np.abs(work_b[j]), out=scale, dtype=np.float64)
                np.multiply(scale, self.rtol, out=scale)
                np.add(scale, self.atol, out=scale)
                np.greater(diff[j], scale, out=flags)
                np.logical_or(beyond, flags, out=beyond)
        self._argmax(work_a, self.a2.dtype, self.best_a[:r], self.labels_a[rows])
        self._argmax(work_b, self.b2.dtype, self.best_b[:r], self.labels_b[rows])
        return float(np.add.reduce(diff, axis=None))

    def _argmax(
        self, columns: np.ndarray, dtype: np.dtype[Any], best: np.ndarray, out: np.ndarray
    ) -> None:
        """The predicted class of each row into ``out``: the first largest column (as
        `np.argmax`); for one column, the column itself (labels) or ``score > threshold``.

        ``columns`` are (C, r) copies of rows of ``dtype``; ``best`` is a scratch buffer.
        """
        c = columns.shape[0]
        if c == 1:
            if dtype.kind == "f":
                # Compared in the input's dtype, as numpy compares an array with a float.
                np.greater(columns[0], float(dtype.type(self.threshold)), out=out)
            else:
                np.copyto(out, columns[0])
        elif c == 2:
            np.greater(columns[1], columns[0], out=out)
        else:
            r = columns.shape[1]
            flags, jumps = self.flags[:r], self.jumps[:r]
            np.copyto(best, columns[0])
            out[:] = 0
            for j in range(1, c):
                # The class is the last column that beat all before it: a strictly larger
                # value, so ties keep the first. Classes only grow, so a maximum sets them.
                np.greater(columns[j], best, out=flags)
                np.multiply(flags.view(np.int8), j, out=jumps)
                np.maximum(out, jumps, out=out)
                np.maximum(best, columns[j], out=best)

    def _by_rows(self, a: np.ndarray, b: np.ndarray, offset: int) -> float:
        """Row statistics of (r, C) rows into the block buffers, reducing along the rows."""
        rows = slice(offset, offset + len(a))
        diff = np.subtract(a, b, dtype=np.float64)
        np.abs(diff, out=diff)
        row_max = diff.max(axis=1, out=self.row_max[rows])
        if self.rtol == 0.0:
            np.greater(row_max, self.atol, out=self.beyond_flags[rows])
        else:
            scale = np.maximum(np.abs(a), np.abs(b), dtype=np.float64)
            limit = scale * self.rtol
            limit += self.atol
            np.any(diff > limit, axis=1, out=self.beyond_flags[rows])
        a.argmax(axis=1, out=self.labels_a[rows])
        b.argmax(axis=1, out=self.labels_b[rows])
        return float(np.add.reduce(diff, axis=None))


def compare_predictions(
    a: Any,
    b: Any,
    *,
    labels: Any = None,
    atol: float = 0.0,
    rtol: float = 0.0,
    top_k: int = 10,
    threshold: float = 0.5,
    rank_correlation: bool = True,
    chunk_size: int = 1_000_000,
) -> PredictionComparison:
    """Compare two runs' predictions on the same examples, example by example.

    Args:
        a: run A's predictions: (n, C) probabilities or scores, (n,) scores, or (n,)
            integer labels.
        b: run B's predictions, the same shape.
        labels: optional (n,) true labels, for correctness churn.
        atol: absolute tolerance per value (>= 0).
        rtol: relative tolerance per value (>= 0), times ``max(|a|, |b|)``.
        top_k: how many of the most different examples to return (>= 0).
        threshold: for (n,) float scores, the class is 1 where ``score > threshold``.
        rank_correlation: compute the Spearman correlation. It needs a sort, the costliest
            step on large inputs, so above `RANK_SAMPLE` examples it uses every k-th
            example (at most `RANK_SAMPLE` of them); identical runs give 1.0 without one.
        chunk_size: at most how many values (rows x C) are processed at a time; bounds
            the size of every temporary array. (Blocks are smaller still, about 131,072
            values, so that they stay in the cache.) The result does not depend on it, up
            to the rounding of the sum behind ``mean_abs_diff``.

    Returns:
        A `PredictionComparison`.

    Raises:
        InvalidInput: for shapes that differ, empty input, NaN or infinite values (naming
            the first bad row), labels of the wrong length or out of range, or bad options.

    >>> import numpy as np
    >>> a = np.array([0.2, 0.6, 0.9, 0.4])
    >>> b = np.array([0.2, 0.4, 0.9, 0.45])
    >>> c = compare_predictions(a, b, atol=0.01)
    >>> c.churn, c.fraction_beyond_tolerance, c.first_diff_index, c.top_indices
    (0.25, 0.5, 1, (1, 3))
    """
    first = _predictions(a, "a")
    second = _predictions(b, "b")
    if first.shape != second.shape:
        raise InvalidInput(
            f"'a' and 'b' must have the same shape (got {first.shape} and {second.shape})"
        )
    atol = check_number(atol, "atol", low=0.0)
    rtol = check_number(rtol, "rtol", low=0.0)
    threshold = check_number(threshold, "threshold")
    top_k = check_int(top_k, "top_k")
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    n = len(first)
    n_classes = first.shape[1] if first.ndim == 2 else 1
    truth: np.ndarray | None = None
    if labels is not None:
        truth = as_labels(labels, "labels", n_classes=n_classes if n_classes > 1 else None)
        if len(truth) != n:
            raise InvalidInput(
                f"'labels' must have one label per example (got {len(truth)} for {n} examples)"
            )

    a2 = first.reshape(n, n_classes)
    b2 = second.reshape(n, n_classes)
    rows_per_chunk = max(1, chunk_size // n_classes)
    block_rows = max(1, min(rows_per_chunk, _BLOCK_VALUES // n_classes))
    totals = _Comparison(
        a2,
        b2,
        truth,
        atol=atol,
        rtol=rtol,
        threshold=threshold,
        top_k=top_k,
        block_rows=block_rows,
        rows_per_chunk=rows_per_chunk,
    )
    with np.errstate(invalid="ignore"):  # inf - inf: reported as non-finite input instead
        for start in range(0, n, block_rows):
            totals.block(start, min(start + block_rows, n))
        totals.flush()
    differing = totals.differing
    identical = differing == 0
    correlation: float | None = None
    if rank_correlation:
        step = -(-n // RANK_SAMPLE)
        if not identical:
            correlation = _spearman(_confidence(first, step), _confidence(second, step))
        elif _varies(first[::step]):
            correlation = 1.0
    return PredictionComparison(
        n=n,
        churn=totals.churn / n,
        churn_count=totals.churn,
        correctness_churn=None if truth is None else totals.correctness / n,
        correctness_churn_count=None if truth is None else totals.correctness,
        max_abs_diff=totals.max_diff,
        mean_abs_diff=totals.abs_sum / (n * n_classes),
        fraction_beyond_tolerance=totals.beyond / n,
        count_beyond_tolerance=totals.beyond,
        differing_count=differing,
        first_diff_index=totals.first_diff,
        top_indices=tuple(int(i) for i in totals.top_index),
        top_diffs=tuple(float(v) for v in totals.top_values),
        rank_correlation=correlation,
        identical=identical,
    )


@attrs.frozen
class LossDivergence:
    """Where two runs' per-step losses first part.

    Attributes:
        steps: the number of steps compared (the shorter run's length).
        first_step: the first step whose losses differ at all (NaN equals NaN), or the
            shorter run's length when one run stops early; None when they never differ.
        first_step_beyond: the first step where ``|a - b| > tolerance`` (a NaN against a
            number counts as beyond, as does a missing step); None when never.
        tolerance: the absolute tolerance used.
        loss_a: run A's loss at ``first_step_beyond`` (None when that step is missing).
        loss_b: run B's loss there.
    """

    steps: int
    first_step: int | None
    first_step_beyond: int | None
    tolerance: float
    loss_a: float | None
    loss_b: float | None

    @property
    def diverged(self) -> bool:
        """True when the losses differ beyond the tolerance somewhere."""
        return self.first_step_beyond is not None


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def loss_divergence(a: Any, b: Any, *, tolerance: float = 0.0) -> LossDivergence:
    """Find the first training step where two runs' losses differ, exactly and beyond a tolerance.

    Args:
        a: run A's loss at every step (1-D; NaN and infinity allowed: a run may blow up).
        b: run B's losses.
        tolerance: absolute tolerance for "beyond" (>= 0).

    Returns:
        A `LossDivergence`.

    Raises:
        InvalidInput: for non-numeric, empty or 2-D input, or a negative tolerance.

    >>> d = loss_divergence([2.0, 1.5, 1.2000001, 1.1], [2.0, 1.5, 1.2, 1.0], tolerance=1e-3)
    >>> d.first_step, d.first_step_beyond, d.loss_a, d.loss_b
    (2, 3, 1.1, 1.0)
    """
    first = as_array(a, "a", ndim=1, dtype=np.float64, finite=False)
    second = as_array(b, "b", ndim=1, dtype=np.float64, finite=False)
    tolerance = check_number(tolerance, "tolerance", low=0.0)
    steps = min(len(first), len(second))
    x, y = first[:steps], second[:steps]
    both_nan = np.isnan(x) & np.isnan(y)
    differ = (x != y) & ~both_nan
    with np.errstate(invalid="ignore"):
        close = np.abs(x - y) <= tolerance
    beyond = differ & ~close
    exact_step = _first(differ)
    beyond_step = _first(beyond)
    if len(first) != len(second):
        exact_step = steps if exact_step is None else exact_step
        beyond_step = steps if beyond_step is None else beyond_step
    loss_a = loss_b = None
    if beyond_step is not None and beyond_step < steps:
        loss_a, loss_b = float(x[beyond_step]), float(y[beyond_step])
    return LossDivergence(steps, exact_step, beyond_step, tolerance, loss_a, loss_b)


def first_mismatch(a: Sequence[Any], b: Sequence[Any]) -> int | None:
    """The first index where two sequences (per-step parameter hashes) differ.

    A sequence that ends early differs at its length; None when they are equal.

    >>> first_mismatch(["3fa2", "91c0", "77aa"], ["3fa2", "91c1", "77aa"])
    1
    >>> first_mismatch(["3fa2"], ["3fa2", "91c0"]), first_mismatch(["x"], ["x"])
    (1, None)
    """
    for step, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return step
    return None if len(a) == len(b) else min(len(a), len(b))
