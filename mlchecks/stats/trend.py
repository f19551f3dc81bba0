"""A trend test for training-loss curves: Kendall's tau on block means.

`loss_trend` cuts a loss curve into consecutive blocks, replaces each block by its mean and
tests block index against block mean with Kendall's tau, one-sided (a downward trend). The
number of blocks adapts to the noise's autocorrelation, so a flat but wandering curve does
not look like a trend. `min_blocks` is the fewest blocks with which a curve that has one
pair of blocks out of order can still be significant.

>>> trend = loss_trend(np.linspace(2.0, 0.5, 200))
>>> round(trend.statistic, 6), trend.pvalue < 1e-6, trend.n_blocks
(-1.0, True, 10)
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from mlchecks._validate import as_array, check_int, check_open_unit
from mlchecks.exceptions import InvalidInput

__all__ = [
    "CORRELATION_TIMES_PER_BLOCK",
    "LossTrend",
    "check_reachable",
    "loss_trend",
    "min_blocks",
]

#: Blocks are made at least this many noise correlation times long (see `loss_trend`).
CORRELATION_TIMES_PER_BLOCK = 4.0


def min_blocks(alpha: float) -> int:
    """The fewest blocks for which a trend with one pair of blocks out of order is significant.

    That is the smallest ``b >= 5`` with ``1 / (b - 1)! <= alpha``: Kendall's one-sided
    p-value of ``b`` points with one adjacent pair swapped.

    >>> min_blocks(0.05), min_blocks(0.01), min_blocks(0.001)
    (5, 6, 8)
    """
    blocks = 5
    while 1.0 / math.factorial(blocks - 1) > alpha:
        blocks += 1
    return blocks


def check_reachable(n_blocks: int, alpha: float) -> None:
    """Raise unless Kendall's tau on ``n_blocks`` points can reach ``p <= alpha``.

    Raises:
        InvalidInput: the smallest one-sided p-value, ``1 / n_blocks!``, exceeds ``alpha``.
    """
    smallest_p = 1.0 / math.factorial(int(n_blocks))
    if smallest_p > alpha:
        raise InvalidInput(
            f"'n_blocks' {n_blocks} cannot reach alpha {alpha}: the smallest one-sided p-value "
            f"of Kendall's tau on {n_blocks} points is {smallest_p:.3g}"
        )


def _lag1_autocorrelation(losses: np.ndarray) -> float:
    """Lag-1 autocorrelation of the residuals about a cubic trend, clipped to [0, 0.99].

    A global cubic follows smooth loss curves closely while leaving the step-to-step noise
    in the residuals; where it cannot follow the curve the misfit looks like correlated
    noise, which only makes the blocks longer (fewer, so the test is conservative).
    """
    n = len(losses)
    if n < 8:
        return 0.0
    t = np.linspace(-1.0, 1.0, n)
    poly = np.polynomial.polynomial
    residuals = losses - poly.polyval(t, poly.polyfit(t, losses, 3))
    denominator = float(np.dot(residuals, residuals))
    centered = losses - losses.mean()
    total = float(np.dot(centered, centered))
    # A curve the trend explains to rounding error has no noise to be correlated.
    if not math.isfinite(denominator) or denominator <= 1e-12 * total or denominator == 0.0:
        return 0.0
    rho = float(np.dot(residuals[:-1], residuals[1:])) / denominator
    return min(max(rho, 0.0), 0.99)


@attrs.frozen
class LossTrend:
    """The result of `loss_trend` (Python floats throughout).

    Attributes:
        statistic: Kendall's tau between block index and block mean (-1: strictly
            decreasing), as `scipy.stats.kendalltau` reports it.
        pvalue: one-sided p-value for a downward trend (``alternative="less"``).
        n_blocks: how many blocks were used.
        block_size: mean steps per block.
        block_means: the mean loss of each block, in order.
        relative_drop: ``(first block mean - last block mean) / |first block mean|``.
        lag1_autocorrelation: the estimated lag-1 autocorrelation of the loss noise.
        correlation_steps: the noise's integrated correlation time, ``(1 + r) / (1 - r)``.
    """

    statistic: float
    pvalue: float
    n_blocks: int
    block_size: float
    block_means: tuple[float, ...]
    relative_drop: float
    lag1_autocorrelation: float
    correlation_steps: float

    def decreasing(self, alpha: float) -> bool:
        """True when the trend test shows a decrease at level ``alpha``."""
        return self.pvalue <= alpha


def _relative_drop(first: float, last: float) -> float:
    if first == 0.0:
        return 0.0 if last == 0.0 else math.copysign(math.inf, first - last)
    return (first - last) / abs(first)


def loss_trend(losses: Any, *, n_blocks: int = 10, alpha: float = 0.01) -> LossTrend:
    """Test a loss curve for a downward trend with Kendall's tau on block means.

    The curve is cut into consecutive blocks (`numpy.array_split`) and each block is
    replaced by its mean; the p-value is that of Kendall's tau between block index and
    block mean, one-sided (`scipy.stats.kendalltau` with ``alternative="less"``, exact for
    small counts).

    Step-to-step losses are autocorrelated (momentum, learning-rate schedules, data
    order), and Kendall's test assumes independent points: on raw steps it would find
    "trends" in flat but wandering curves far more often than ``alpha``. Block means of
    blocks much longer than the noise's correlation time are nearly independent, so the
    number of blocks adapts: the lag-1 autocorrelation ``r`` of the residuals about a cubic
    trend gives the correlation time ``(1 + r) / (1 - r)``, and blocks are made at least
    `CORRELATION_TIMES_PER_BLOCK` times that long, with ``n_blocks`` blocks at most and
    ``min_blocks(alpha)`` at least.

    Args:
        losses: the loss of every step, finite, 1-D.
        n_blocks: the largest number of blocks.
        alpha: the level of the test (decides the fewest blocks), in (0, 1).

    Returns:
        A `LossTrend`.

    Raises:
        InvalidInput: ``losses`` is not finite and 1-D, has fewer values than the fewest
            blocks, or ``n_blocks`` cannot reach ``alpha``.

    >>> rng = np.random.default_rng(0)
    >>> curve = 0.5 + 2.0 * np.exp(-np.arange(100) / 30) + rng.normal(scale=0.05, size=100)
    >>> trend = loss_trend(curve)
    >>> trend.n_blocks, round(trend.statistic, 3), trend.pvalue < 1e-6
    (10, -1.0, True)
    >>> round(trend.relative_drop, 2)
    0.74
    >>> loss_trend(np.ones(100)).pvalue
    1.0
    """
    values = as_array(losses, "losses", ndim=1, dtype=np.float64)
    alpha = check_open_unit(alpha, "alpha")
    n_blocks = check_int(n_blocks, "n_blocks", minimum=3)
    check_reachable(n_blocks, alpha)
    floor = min(n_blocks, min_blocks(alpha))
    if len(values) < floor:
        raise InvalidInput(
            f"'losses' must have at least {floor} values for the trend test (got {len(values)})"
        )
    rho = _lag1_autocorrelation(values)
    correlation_steps = (1.0 + rho) / (1.0 - rho)
    fitting = int(len(values) // (CORRELATION_TIMES_PER_BLOCK * correlation_steps))
    blocks = min(n_blocks, max(floor, fitting), len(values))
    means = np.array([chunk.mean() for chunk in np.array_split(values, blocks)])
    import scipy.stats  # here, not at import: child processes of the checks stay light

    if np.ptp(means) == 0.0:
        statistic, pvalue = 0.0, 1.0
    else:
        test = scipy.stats.kendalltau(np.arange(blocks), means, alternative="less")
        statistic, pvalue = float(test.statistic), float(test.pvalue)
    return LossTrend(
        statistic=statistic,
        pvalue=pvalue,
        n_blocks=int(blocks),
        block_size=len(values) / blocks,
        block_means=tuple(float(m) for m in means),
        relative_drop=_relative_drop(float(means[0]), float(means[-1])),
        lag1_autocorrelation=rho,
        correlation_steps=correlation_steps,
    )
