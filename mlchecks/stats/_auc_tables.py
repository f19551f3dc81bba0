"""Midranks of one or two models' scores, overall and per slice, from one sort per model.

`rank_tables` gives what ROC AUC and DeLong's variance need (`mlchecks.stats.auc`) for
every slice of every slicing at once. For a positive, ``below`` is the number of negatives
that score lower plus half of those tied with it (``T - Tx`` of Sun and Xu, 2014); for a
negative, the same count of positives. The AUC of a slice is the sum of its positives'
``below`` over ``m * n`` (the Mann-Whitney U), and DeLong's structural components are
``below / n`` (positives) and ``1 - below / m`` (negatives).

Each model's scores are sorted once: float32 scores as one 64-bit key per row (the
order-preserving bits of the score above the row's index), sorted by `numpy.sort`; other
scores by `numpy.argsort`. The sorted order is then read in blocks that end at a change
of score. Overall, ``below`` follows from running counts of each class along the order.
For a slicing, a block's rows are grouped by slice with a stable counting sort (which
keeps the score order within each slice), so each slice's counts run along its own rows in
score order, carried from block to block: no slice is gathered or sorted again.

``2 * below`` is an integer, kept per row (int32 below 2**29 rows): the first model's,
then the difference of the two models' in its place. Sums over positives, and the
per-slice count, sum and sum of squares of the per-row values, all exact integers, are
what the AUCs and variances need; so the tables do not depend on how ties were sorted, on
the blocks or on the slicing: float32 scores and their float64 copies, or a slice's rows
taken alone, give the same floats bit for bit. Extra memory: 8 bytes per row for the sort
(float32 scores; 16 for others), 4 per row for all examples and 4 per row and slicing for
the kept values, and the temporaries of one block.

>>> y = np.array([0, 0, 1, 1, 0, 1])
>>> s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9], dtype=np.float32)
>>> table = rank_tables(y, s, None, [(None, 1)])[0]
>>> int(table.u_a[0]) / 2 / (3 * 3)  # the AUC
0.8888888888888888
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["RankTable", "rank_tables"]

#: Rows per block of the sorted order (a block ends at a change of score, so it may be
#: longer): small, so that the block's temporaries (~160 bytes a row) stay in the cache and
#: add little to the 16 bytes a row of the sort and the kept values.
_BLOCK = 1 << 14
_LOW32 = np.uint64(0xFFFFFFFF)

#: The count, mean and sum of squared deviations of the kept values, per slice.
Moments = tuple[np.ndarray, np.ndarray, np.ndarray]


class RankTable(NamedTuple):
    """One slicing's midrank sums, per slice (arrays of length ``k``).

    ``u_a`` and ``u_b`` are twice each model's Mann-Whitney U (int64; ``u_b`` None for one
    model). ``positive`` and ``negative`` hold the `Moments` of ``2 * below`` over the
    positives and the negatives of each slice: of model a's, or with two models of
    ``2 * (below_a - below_b)``. The counts give each slice's ``m`` and ``n``.
    """

    u_a: np.ndarray
    u_b: np.ndarray | None
    positive: Moments
    negative: Moments


class _Order:
    """The rows of ``scores`` in ascending order, read block by block."""

    def __init__(self, scores: np.ndarray) -> None:
        self.n = n = len(scores)
        self._packed: np.ndarray | None = None
        if scores.dtype == np.float32 and n <= 1 << 32:
            packed = np.empty(n, dtype=np.uint64)
            for lo in range(0, n, _BLOCK):
                hi = min(n, lo + _BLOCK)
                bits = (scores[lo:hi] + np.float32(0.0)).view(np.uint32)  # -0.0 is +0.0
                key = np.where(bits >= 0x80000000, ~bits, bits | 0x80000000)
                out = packed[lo:hi]
                np.left_shift(key.astype(np.uint64), np.uint64(32), out=out)
                out |= np.arange(lo, hi, dtype=np.uint64)
            packed.sort()
            self._packed = packed
        else:
            self._values = scores
            self._order = np.argsort(scores)

    def block(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """The row indices and sort keys of sorted positions ``[lo, hi)``."""
        if self._packed is not None:
            part = self._packed[lo:hi]
            return (part & _LOW32).astype(np.intp), part >> np.uint64(32)
        index = self._order[lo:hi]
        return index, self._values[index]

    def group_end(self, stop: int) -> int:
        """The first sorted position at or after ``stop`` whose key differs from the one
        just before it (``stop`` itself unless a tie runs across it)."""
        if stop >= self.n:
            return self.n
        if self._packed is not None:
            key = int(self._packed[stop - 1]) >> 32
            if key == 0xFFFFFFFF:
                return self.n
            return int(np.searchsorted(self._packed, np.uint64((key + 1) << 32)))
        order, values = self._order, self._values
        value = values[order[stop - 1]]
        lo, hi = stop, self.n
        while lo < hi:  # values along the order are sorted: bisect for the end of the tie
            mid = (lo + hi) // 2
            if values[order[mid]] == value:
                lo = mid + 1
            else:
                hi = mid
        return lo


def _twice_below(
    keys: np.ndarray,
    positive: np.ndarray,
    codes: np.ndarray | None,
    carry: np.ndarray,
) -> np.ndarray:
    """``2 * below`` of each row of a block in score order (grouped by slice when ``codes``).

    ``carry[:, s]`` holds slice ``s``'s negatives and positives in earlier blocks (updated).
    A row in tie group ``[g, h)`` of its slice's run has ``2 * below = N(g) + N(h)`` (N:
    negatives before a position; for a negative, the same with positives); most rows are
    alone in their group (``h = g + 1``), so that case is computed for every row and the
    tied rows are corrected.
    """
    size = len(keys)
    below = np.empty(size + 1, dtype=np.int64)  # negatives before each position
    below[0] = 0
    np.cumsum(~positive, out=below[1:])
    edge = np.empty(size + 1, dtype=np.bool_)  # a group starts here (and the end)
    edge[0] = edge[size] = True
    np.not_equal(keys[1:], keys[:-1], out=edge[1:size])
    offset_neg: np.ndarray | int
    offset_pos: np.ndarray | int
    if codes is None:
        offset_neg, offset_pos = 2 * int(carry[0, 0]), 2 * int(carry[1, 0])
        total = int(below[size])
        carry[0, 0] += total
        carry[1, 0] += size - total
    else:
        split = np.empty(size + 1, dtype=np.bool_)
        split[0] = split[size] = True
        np.not_equal(codes[1:], codes[:-1], out=split[1:size])
        edge |= split
        runs = np.flatnonzero(split)  # each slice's rows in the block, and the end
        start, lengths = runs[:-1], np.diff(runs)
        slices = codes[start]
        negatives = below[runs[1:]] - below[start]
        offset_neg = np.repeat(2 * (carry[0][slices] - below[start]), lengths)
        offset_pos = np.repeat(2 * (carry[1][slices] - (start - below[start])), lengths)
        carry[0][slices] += negatives
        carry[1][slices] += lengths - negatives
    count = below[:-1] + below[1:]  # N(g) + N(h)
    ends = 2 * np.arange(size, dtype=np.int64) + 1  # g + h
    alone = edge[:-1] & edge[1:]
    if not alone.all():
        tied = np.flatnonzero(~alone)
        bounds = np.flatnonzero(edge)
        group = np.searchsorted(bounds, tied, side="right") - 1
        low, high = bounds[group], bounds[group + 1]
        count[tied] = below[low] + below[high]
        ends[tied] = low + high
    ends -= count  # P(g) + P(h): positives before each end
    twice: np.ndarray = np.where(positive, count + offset_neg, ends + offset_pos)
    return twice


def _small_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """Codes in the narrowest unsigned type, so a stable argsort is a counting sort."""
    if k <= 1 << 8:
        return codes.astype(np.uint8)
    if k <= 1 << 16:
        return codes.astype(np.uint16)
    return codes


def _sorted_pass(
    scores: np.ndarray,
    labels: np.ndarray,
    slicings: Sequence[tuple[np.ndarray | None, int]],
    kept: list[np.ndarray],
    first: bool,
) -> list[np.ndarray] | None:
    """One model: keep ``2 * below`` per row (or subtract it from the kept values), and
    return twice its U per slice of each slicing; None for labels other than 0/1."""
    order = _Order(scores)
    sums = [np.zeros(k, dtype=np.int64) for _, k in slicings]
    carries = [np.zeros((2, k), dtype=np.int64) for _, k in slicings]
    lo = 0
    while lo < order.n:
        hi = order.group_end(min(lo + _BLOCK, order.n))
        index, keys = order.block(lo, hi)
        truth = labels[index]
        if truth.min() < 0 or truth.max() > 1:
            return None
        positive = truth.astype(np.bool_)
        for (codes, k), values, total, carry in zip(slicings, kept, sums, carries, strict=True):
            if codes is None or k == 1:
                rows, twice = index, _twice_below(keys, positive, None, carry)
                total[0] += int(twice[positive].sum())
            else:
                part = codes[index]
                perm = np.argsort(_small_codes(part, k), kind="stable")
                grouped, hits = part[perm], positive[perm]
                rows = index[perm]
                twice = _twice_below(keys[perm], hits, grouped, carry)
                total += np.bincount(grouped[hits], weights=twice[hits], minlength=k).astype(
                    np.int64
                )
            if first:
                values[rows] = twice
            else:
                values[rows] = values[rows] - twice
        lo = hi
    return sums


def _moments(
    values: np.ndarray, labels: np.ndarray, codes: np.ndarray | None, k: int
) -> tuple[Moments, Moments]:
    """Per slice, the `Moments` of the kept values of positives and of negatives, exactly.

    The sums of the values and of their squares are exact integers (the squares from the
    values' 16-bit halves, each summed exactly in float64 within a block), so the sum of
    squared deviations ``(count * S2 - S1**2) / count`` is rounded once: the same float
    whatever the blocks, the slicing or the order of the rows.
    """
    cells = 2 * k
    wide = values.dtype == np.int64  # beyond 2**29 rows: Python integers for the totals
    sums = np.zeros((4, cells), dtype=object if wide else np.int64)  # S1, h*h, h*l, l*l
    count = np.zeros(cells, dtype=np.int64)
    n = len(values)
    for lo in range(0, n, _BLOCK):
        hi = min(n, lo + _BLOCK)
        cell = labels[lo:hi].astype(np.intp)
        if codes is not None and k > 1:
            cell += 2 * codes[lo:hi]
        block = values[lo:hi].astype(np.int64)
        high = (block >> 16).astype(np.float64)
        low = (block & 0xFFFF).astype(np.float64)
        count += np.bincount(cell, minlength=cells)
        for row, weights in enumerate((block, high * high, high * low, low * low)):
            part = np.bincount(cell, weights=weights, minlength=cells).astype(np.int64)
            sums[row] += part.astype(object) if wide else part
    mean = np.zeros(cells, dtype=np.float64)
    m2 = np.zeros(cells, dtype=np.float64)
    for i in np.flatnonzero(count).tolist():
        c, s1 = int(count[i]), int(sums[0, i])
        s2 = (int(sums[1, i]) << 32) + (int(sums[2, i]) << 17) + int(sums[3, i])
        mean[i], m2[i] = s1 / c, (c * s2 - s1 * s1) / c
    return (count[1::2], mean[1::2], m2[1::2]), (count[0::2], mean[0::2], m2[0::2])


def rank_tables(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray | None,
    slicings: Sequence[tuple[np.ndarray | None, int]],
) -> list[RankTable] | None:
    """Midrank sums of one or two models, per slice of each slicing (module docstring).

    Args:
        labels: (n,) labels; anything but 0 and 1 returns None.
        scores_a: (n,) finite float32 or float64 scores of model a (any strides).
        scores_b: the same for model b, or None.
        slicings: ``(codes, k)`` per slicing: (n,) integer codes in ``[0, k)``, or
            ``(None, 1)`` for all rows as one slice.

    Returns:
        One `RankTable` per slicing, or None.
    """
    n = len(labels)
    dtype = np.int32 if n < 1 << 29 else np.int64
    kept = [np.empty(n, dtype=dtype) for _ in slicings]
    u_a = _sorted_pass(scores_a, labels, slicings, kept, True)
    if u_a is None:
        return None
    u_b = None if scores_b is None else _sorted_pass(scores_b, labels, slicings, kept, False)
    tables = []
    for i, ((codes, k), values) in enumerate(zip(slicings, kept, strict=True)):
        positive, negative = _moments(values, labels, codes, k)
        tables.append(RankTable(u_a[i], None if u_b is None else u_b[i], positive, negative))
    return tables
