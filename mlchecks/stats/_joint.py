"""One blocked pass: per-slice joint (true, candidate, baseline) class counts and mean terms.

`QualityCheck` judges count-based metrics (accuracy, the error rate, precision, recall,
F1) of two models on the same examples, overall and in every slice. All of them follow
from one table per slicing, ``table[s, t, c, b]``: the examples of slice ``s`` with true
class ``t`` that the candidate predicts as ``c`` and the baseline as ``b``. `joint_counts`
builds it in one pass over the rows, in blocks that stay in a core's cache: the predicted
class of each model (the first maximum of a row of scores, ``p > 0.5`` for probabilities
of class 1, or the labels themselves) is computed block by block, column by column, and
one `np.bincount` over the fused key counts the block (DESIGN §6). No per-example array
outlives its block.

`mean_terms` does the same for metrics that are means of per-example values (log loss,
Brier): per slice the sums of each model's terms and the count, mean and sum of squared
deviations of the paired differences, merged across blocks with Chan et al.'s update, so
the results equal those of whole-array sums up to the rounding of the sums.

>>> y = np.array([0, 1, 1, 0])
>>> cand = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], dtype=np.float32)
>>> base = np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.9, 0.1]])
>>> table = joint_counts([np.array([0, 0, 1, 1])], [2], y, cand, base, 2)[0]
>>> int(table[1, 1, 0, 1]), int(table.sum())  # slice 1, true 1, candidate 0, baseline 1
(1, 4)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlchecks.stats._rows import block_classes

__all__ = [
    "MAX_JOINT_CELLS",
    "Moments",
    "joint_counts",
    "mean_terms",
    "merge_moments",
    "merge_terms",
    "predicted_block",
]

#: Joint tables up to this many cells (slices times classes cubed) take the blocked pass.
MAX_JOINT_CELLS = 1 << 22
#: Rows per block: a block's keys and predicted classes stay in a core's L2 cache.
_BLOCK_ROWS = 1 << 16


def predicted_block(block: np.ndarray, n_classes: int) -> np.ndarray | None:
    """The predicted class of each row of a block, as `predicted_labels` gives it.

    (m, C) finite scores: the first maximum of each row (`argmax_rows`, column by
    column). (m,) floats: 1 where ``p > 0.5``; they must lie in [0, 1]. (m,) integers or
    booleans: the labels. None when a value is outside what ``n_classes`` classes allow
    (the caller then takes its general path, which raises the documented error).
    """
    if block.ndim == 2:
        return block_classes(block, finite=True) if block.shape[1] <= n_classes else None
    if n_classes < 2:
        return None
    if block.dtype.kind == "f":
        inside = float(block.min()) >= 0.0 and float(block.max()) <= 1.0
        return block_classes(block) if inside else None
    if block.dtype.kind in "iu":
        low, high = int(block.min()), int(block.max())
        if low < 0 or high >= n_classes:
            return None
    return block_classes(block)


def _block_key(
    truth: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    n_classes: int,
    joint: bool,
    out: np.ndarray,
) -> bool:
    """The key of each row of a block: ``(t * C + c) * C + b``, or with ``joint=False``
    ``2 * (c == t) + (b == t)``; False when a value is out of range."""
    pc = predicted_block(candidate, n_classes)
    pb = predicted_block(baseline, n_classes)
    if pc is None or pb is None or int(truth.min()) < 0 or int(truth.max()) >= n_classes:
        return False
    if joint:
        np.multiply(truth, n_classes, out=out)
        out += pc
        out *= n_classes
        out += pb
    else:
        np.multiply(pc == truth, 2, out=out)
        out += pb == truth
    return True


def joint_counts(
    slicings: Sequence[np.ndarray | None],
    n_slices: Sequence[int],
    labels: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    n_classes: int,
    *,
    joint: bool = True,
) -> list[np.ndarray] | None:
    """Per-slice joint (true, candidate, baseline) class counts, one table per slicing.

    Args:
        slicings: (n,) integer slice codes in ``[0, k)`` per slicing (None: one slice).
        n_slices: ``k`` of each slicing.
        labels: (n,) integer true classes in ``[0, n_classes)``.
        candidate: (n, C) finite scores, (n,) probabilities of class 1, or (n,) labels.
        baseline: the same for the baseline.
        n_classes: ``C``: labels and predicted classes lie below it.
        joint: False for the (k, 2, 2) correctness counts only, ``[s, candidate right,
            baseline right]`` (what accuracy and the error rate need).

    Returns:
        One (k, C, C, C) (or (k, 2, 2)) int64 table per slicing, or None when the table is
        too large or a value is outside what `predicted_labels` accepts for ``n_classes``
        classes.
    """
    n, c = len(labels), n_classes
    cells = c * c * c if joint else 4
    sizes = [1 if codes is None else int(k) for codes, k in zip(slicings, n_slices, strict=True)]
    if n == 0 or max(sizes) * cells > MAX_JOINT_CELLS:
        return None
    tables = [np.zeros(k * cells, dtype=np.int64) for k in sizes]
    step = max(_BLOCK_ROWS, 8 * max(sizes) * cells)  # rows per bincount
    key = np.empty(min(step, n), dtype=np.intp)
    fused = np.empty(min(step, n), dtype=np.intp)
    for start in range(0, n, step):
        stop = min(start + step, n)
        for inner in range(start, stop, _BLOCK_ROWS):  # blocks that stay in the cache
            end = min(inner + _BLOCK_ROWS, stop)
            rows = slice(inner, end)
            part = key[inner - start : end - start]
            if not _block_key(labels[rows], candidate[rows], baseline[rows], c, joint, part):
                return None
        block = key[: stop - start]
        for codes, table, k in zip(slicings, tables, sizes, strict=True):
            if codes is None:
                table += np.bincount(block, minlength=cells)
                continue
            out = fused[: stop - start]
            np.multiply(codes[start:stop], cells, out=out)
            out += block
            table += np.bincount(out, minlength=k * cells)
    shape = (c, c, c) if joint else (2, 2)
    return [t.reshape(k, *shape) for t, k in zip(tables, sizes, strict=True)]


#: Per slice: the count, the sums of the candidate's and the baseline's terms, and the mean
#: and sum of squared deviations of the candidate's terms and of the paired differences
#: (candidate - baseline).
Moments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def merge_moments(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    """Chan et al.'s update: the count, mean and sum of squared deviations from the mean of
    two disjoint parts, from those of each part (numbers, or arrays of them per slice).

    >>> merge_moments((2, 1.0, 0.5), (1, 4.0, 0.0))
    (3, np.float64(2.0), np.float64(6.5))
    """
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    share = np.divide(n_b, n, out=np.zeros(np.shape(n), dtype=np.float64), where=np.greater(n, 0))
    delta = np.subtract(mean_b, mean_a)
    return n, mean_a + delta * share, m2_a + m2_b + delta * delta * n_a * share


def merge_terms(total: Moments, block: Moments) -> Moments:
    """Per-slice `Moments` (of `mean_terms`) merged with those of the rows that follow."""
    n, mean_c, m2_c = merge_moments((total[0], total[3], total[4]), (block[0], block[3], block[4]))
    _, mean_d, m2_d = merge_moments((total[0], total[5], total[6]), (block[0], block[5], block[6]))
    return (n, total[1] + block[1], total[2] + block[2], mean_c, m2_c, mean_d, m2_d)


def _block_moments(
    codes: np.ndarray | None, k: int, tc: np.ndarray, tb: np.ndarray, diff: np.ndarray
) -> Moments:
    """The moments of one block (two passes over the block, which is in the cache)."""
    if codes is None:
        count = np.array([len(tc)], dtype=np.int64)
        out: list[np.ndarray] = [count, np.array([tc.sum()]), np.array([tb.sum()])]
        for values in (tc, diff):
            mean = values.mean()
            out += [np.array([mean]), np.array([np.square(values - mean).sum()])]
        return (out[0], out[1], out[2], out[3], out[4], out[5], out[6])
    count = np.bincount(codes, minlength=k)
    sum_c = np.bincount(codes, weights=tc, minlength=k)
    out = [count, sum_c, np.bincount(codes, weights=tb, minlength=k)]
    for values, total in ((tc, sum_c), (diff, np.bincount(codes, weights=diff, minlength=k))):
        mean = np.divide(total, count, out=np.zeros(k, dtype=np.float64), where=count > 0)
        deviation = values - mean[codes]
        out += [mean, np.bincount(codes, weights=np.square(deviation), minlength=k)]
    return (out[0], out[1], out[2], out[3], out[4], out[5], out[6])


def mean_terms(
    terms: Callable[[slice], tuple[np.ndarray, np.ndarray]],
    n: int,
    slicings: Sequence[np.ndarray],
    n_slices: Sequence[int],
) -> list[Moments]:
    """Moments of two models' per-example terms: over all examples, and per slice.

    Args:
        terms: ``terms(rows)`` returns the (m,) float64 terms of the candidate and of the
            baseline for the rows of the slice object ``rows`` (a block).
        n: the number of examples.
        slicings: (n,) slice codes in ``[0, k)`` per slicing.
        n_slices: ``k`` of each slicing.

    Returns:
        One `Moments` (arrays of length 1) for all examples, then one (arrays of length
        ``k``) per slicing. Sums of squared deviations are from the mean.

    >>> y = np.arange(6, dtype=np.float64)
    >>> moments = mean_terms(lambda r: (y[r], y[r] / 2), 6, [np.array([0, 0, 0, 1, 1, 1])], [2])
    >>> moments[0][1].tolist(), moments[1][3].tolist(), moments[1][4].tolist()
    ([15.0], [1.0, 4.0], [2.0, 2.0])
    """
    sizes = [1, *(int(k) for k in n_slices)]
    totals: list[Moments] = []
    for k in sizes:
        zero = np.zeros(k, dtype=np.float64)
        totals.append((np.zeros(k, dtype=np.int64), zero, zero, zero, zero, zero, zero))
    step = max(_BLOCK_ROWS, 8 * max(sizes))
    for start in range(0, n, step):
        stop = min(start + step, n)
        tc, tb = terms(slice(start, stop))
        diff = tc - tb
        for i, k in enumerate(sizes):
            codes = None if i == 0 else slicings[i - 1][start:stop]
            totals[i] = merge_terms(totals[i], _block_moments(codes, k, tc, tb, diff))
    return totals
