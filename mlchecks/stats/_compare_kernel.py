"""The blockwise kernel behind `mlchecks.stats.compare.compare_predictions`.

`_Comparison` keeps the running totals of one comparison and the kernels that fill them:
each block of rows is compared elementwise first (an equal block costs that one pass), and
only the rows that differ are processed further, column by column, in sub-blocks whose
work arrays stay in a core's L2 cache (DESIGN §6). Every buffer is allocated once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlchecks.exceptions import InvalidInput

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


def _raise_non_finite(
    a2: np.ndarray, b2: np.ndarray, where: int | np.ndarray, rows_per_chunk: int
) -> None:
    """Raise the error for the first chunk (of ``chunk_size`` values) with NaN or infinity.

    The kernel only detects that a value is not finite; this scan, in the chunks of the
    ``chunk_size`` option, names the array and the row (``where``: the index of the first
    row, or of every row). It returns when every value is finite (a false alarm: a
    difference of two huge float64 values overflowed).
    """
    for start in range(0, len(a2), rows_per_chunk):
        stop = start + rows_per_chunk
        for name, rows in (("a", a2[start:stop]), ("b", b2[start:stop])):
            if rows.dtype.kind == "f" and not np.isfinite(rows).all():
                bad = int(np.flatnonzero(~np.isfinite(rows).reshape(len(rows), -1).all(axis=1))[0])
                row = where + start + bad if isinstance(where, int) else int(where[start + bad])
                raise InvalidInput(
                    f"'{name}' must be finite (got NaN or infinity, first in row {row})"
                )


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


def _work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype of the column copies: float64 for floats (exact), the input's for others."""
    return np.dtype(np.float64) if dtype.kind == "f" and dtype.itemsize <= 8 else dtype


class _Comparison:
    """The running totals of `compare_predictions` over blocks of rows, and their kernels.

    Blocks of rows are handed in (`block`) in increasing row order, with their labels and
    the index of their first row; the totals of comparisons of disjoint row ranges merge
    (`merge`), so blocks may also be compared apart (on Dask workers) and combined.

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
        n_classes: int,
        dtype_a: np.dtype[Any],
        dtype_b: np.dtype[Any],
        *,
        atol: float,
        rtol: float,
        threshold: float,
        top_k: int,
        block_rows: int,
        rows_per_chunk: int,
    ) -> None:
        self.dtype_a, self.dtype_b = dtype_a, dtype_b
        self.atol, self.rtol, self.threshold, self.top_k = atol, rtol, threshold, top_k
        self.rows_per_chunk = rows_per_chunk
        self.n_classes = c = n_classes
        self.block_rows = block_rows
        self.floats = dtype_a.kind == "f" or dtype_b.kind == "f"
        self.same_dtype = dtype_a == dtype_b
        self.columnwise = c <= _COLUMNWISE_MAX
        self.sub_rows = min(block_rows, max(_DENSE_VALUES // c, _MIN_SUB_ROWS))
        self.unequal = np.empty(block_rows * c, dtype=np.bool_)
        self.both_floats = dtype_a.kind == "f" and dtype_b.kind == "f"
        # One entry per row of a block.
        self.row_max = np.empty(block_rows, dtype=np.float64)
        self.beyond_flags = np.empty(block_rows, dtype=np.bool_)
        self.labels_a = np.empty(block_rows, dtype=self._label_dtype(dtype_a))
        self.labels_b = np.empty(block_rows, dtype=self._label_dtype(dtype_b))
        if self.columnwise:  # one entry per value, or per row, of a sub-block
            size = self.sub_rows
            self.work_a = np.empty(c * size, dtype=_work_dtype(dtype_a))
            self.work_b = np.empty(c * size, dtype=_work_dtype(dtype_b))
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
        #: The whole (n, C) arrays, when the blocks are rows of arrays at hand (for errors).
        self.whole: tuple[np.ndarray, np.ndarray] | None = None
        # Differing rows of sparse blocks waiting to be processed: (a, b, indices, truth).
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
        self.pending_rows = 0

    def totals(self) -> dict[str, Any]:
        """The totals (after `flush`), as plain values that pickle and `merge`."""
        return {
            "churn": self.churn,
            "correctness": self.correctness,
            "differing": self.differing,
            "beyond": self.beyond,
            "abs_sum": self.abs_sum,
            "max_diff": self.max_diff,
            "first_diff": self.first_diff,
            "top_values": self.top_values,
            "top_index": self.top_index,
        }

    def merge(self, other: dict[str, Any]) -> None:
        """Add the `totals` of a comparison of other rows to these (both flushed)."""
        for key in ("churn", "correctness", "differing", "beyond", "abs_sum"):
            setattr(self, key, getattr(self, key) + other[key])
        self.max_diff = max(self.max_diff, other["max_diff"])
        firsts = [f for f in (self.first_diff, other["first_diff"]) if f is not None]
        self.first_diff = min(firsts) if firsts else None
        if self.top_k:
            self.top_values, self.top_index = _top_k(
                np.concatenate([self.top_values, other["top_values"]]),
                np.concatenate([self.top_index, other["top_index"]]),
                self.top_k,
            )

    def _label_dtype(self, dtype: np.dtype[Any]) -> np.dtype[Any]:
        """Predicted classes: booleans for one score or two columns, else class indices."""
        c = self.n_classes
        if c == 1:
            return np.dtype(np.bool_) if dtype.kind == "f" else _work_dtype(dtype)
        if c == 2:
            return np.dtype(np.bool_)
        return np.dtype(np.int8 if self.columnwise else np.intp)

    def fail(self, a: np.ndarray, b: np.ndarray, where: int | np.ndarray) -> None:
        """A value of rows ``a``, ``b`` is NaN or infinite: raise the error that names the
        first such row (or return if none is: an overflow).

        With the whole arrays known (``whole``), they are scanned from the start, so the
        first chunk with a bad value is named, a before b. Otherwise rows still pending come
        before ``a`` and are processed (and checked) first.
        """
        if self.whole is not None:
            _raise_non_finite(*self.whole, 0, self.rows_per_chunk)
            return
        if self.pending:
            self.flush()
        _raise_non_finite(a, b, where, self.rows_per_chunk)

    # ---------------------------------------------------------------- blocks

    def block(self, a: np.ndarray, b: np.ndarray, truth: np.ndarray | None, start: int) -> None:
        """Compare the (m, C) rows ``a``, ``b`` (m <= ``block_rows``), whose first row is
        row ``start`` and whose true labels are ``truth``, and add them to the totals.

        The differing rows of sparse blocks are gathered and processed together once
        there are enough of them (or before the next dense block, or at the end: call
        `flush`), so that few differing rows do not cost a kernel call per block.
        """
        m, c = a.shape
        unequal = self.unequal[: m * c].reshape(m, c)
        np.not_equal(a, b, out=unequal)
        count = int(np.count_nonzero(unequal)) if unequal.any() else 0
        sparse = count <= m * c * _SPARSE_FRACTION
        if sparse and self.both_floats and not self._no_infinity(a):
            self.fail(a, b, start)
        if count == 0:
            return
        if sparse:
            rows = self._differing_rows(unequal)
            if self.pending_rows + rows.size > len(self.row_max):
                self.flush()
            self.pending.append(
                (
                    np.take(a, rows, axis=0),
                    np.take(b, rows, axis=0),
                    start + rows,
                    None if truth is None else np.take(truth, rows),
                )
            )
            self.pending_rows += rows.size
            if self.pending_rows >= self.sub_rows:
                self.flush()
            return
        self.flush()  # rows in index order
        self._process(a, b, start, truth, None if count == m * c else unequal)

    def flush(self) -> None:
        """Process the gathered differing rows of sparse blocks."""
        if not self.pending:
            return
        parts, self.pending, self.pending_rows = self.pending, [], 0
        if len(parts) == 1:
            a, b, where, truth = parts[0]
        else:
            a, b, where = (np.concatenate(arrays) for arrays in list(zip(*parts, strict=True))[:3])
            truth = None if parts[0][3] is None else np.concatenate([p[3] for p in parts])
        self._process(a, b, where, truth, None)

    def _process(
        self,
        a: np.ndarray,
        b: np.ndarray,
        where: int | np.ndarray,
        truth: np.ndarray | None,
        unequal: np.ndarray | None,
    ) -> None:
        """Run the kernel on rows ``a``, ``b`` in sub-blocks, then add them to the totals."""
        total = 0.0
        kernel = self._columns if self.columnwise else self._by_rows
        for first in range(0, len(a), self.sub_rows):
            last = first + self.sub_rows
            total += kernel(a[first:last], b[first:last], first)
        if not math.isfinite(total):
            # NaN or infinity in a differing row (or an overflow: then fail() returns).
            self.fail(a, b, where)
        self._finish(len(a), where, truth, unequal, total)

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
        self,
        r: int,
        where: int | np.ndarray,
        truth: np.ndarray | None,
        unequal: np.ndarray | None,
        total: float,
    ) -> None:
        """Add the block buffers' first ``r`` rows to the totals.

        ``where`` is the index of the first row (consecutive rows) or every row's index
        (gathered rows, which all differ); ``truth`` their labels. ``unequal`` is the (r, C)
        comparison of consecutive rows of which only some differ, or None when all of them
        differ.
        """
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
        if truth is not None:
            moved = np.equal(labels_a, truth)
            np.not_equal(moved, np.equal(labels_b, truth), out=moved)
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
        self._argmax(work_a, self.dtype_a, self.best_a[:r], self.labels_a[rows])
        self._argmax(work_b, self.dtype_b, self.best_b[:r], self.labels_b[rows])
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
