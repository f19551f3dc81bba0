"""The rank correlation of two runs' predictions, for `compare_predictions`.

Spearman's correlation on midranks (equal to ``scipy.stats.rankdata``'s, bit for bit), of
each example's top-1 score.
"""

from __future__ import annotations

import math

import numpy as np

from mlchecks.stats._compare_kernel import _COLUMNWISE_MAX


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
