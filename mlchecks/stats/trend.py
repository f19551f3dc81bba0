"""A trend test for training-loss curves: Kendall's tau on block means.

`loss_trend` cuts a loss curve into consecutive blocks, replaces each block by its mean and
tests block index against block mean with Kendall's tau, one-sided (a downward trend). The
block size adapts to the noise's autocorrelation, so a flat but wandering curve does not
look like a trend, and a curve too short for its autocorrelation is not judged (its result
says how many steps it needs). `min_blocks` is the fewest blocks with which a curve that has
one pair of blocks out of order can still be significant.

>>> trend = loss_trend(np.linspace(2.0, 0.5, 200))
>>> round(trend.statistic, 6), trend.pvalue < 1e-6, trend.n_blocks
(-1.0, True, 10)
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from mlchecks._validate import as_array, check_int, check_open_unit, describe
from mlchecks.exceptions import InvalidInput

__all__ = [
    "CORRELATION_TIMES_PER_BLOCK",
    "MAX_BLOCKS",
    "LossTrend",
    "block_steps",
    "check_reachable",
    "kendall_pvalue_less",
    "lag1_autocorrelation",
    "loss_trend",
    "min_blocks",
    "slope_test",
]

#: Blocks are made at least this many noise correlation times long (see `loss_trend`).
CORRELATION_TIMES_PER_BLOCK = 5.0


#: The most blocks the exact Kendall test takes (its distribution costs O(b**4) to build:
#: 0.06 s for 200 blocks, 2 s for 500).
MAX_BLOCKS = 200


def min_blocks(alpha: float) -> int:
    """The fewest blocks for which a trend with one pair of blocks out of order is significant.

    That is the smallest ``b >= 5`` with ``1 / (b - 1)! <= alpha``: Kendall's one-sided
    p-value of ``b`` points with one adjacent pair swapped.

    >>> min_blocks(0.05), min_blocks(0.01), min_blocks(0.001)
    (5, 6, 8)
    """
    alpha = check_open_unit(alpha, "alpha")
    blocks = 5
    while _above(blocks - 1, alpha):
        blocks += 1
    return blocks


def _above(n: int, alpha: float) -> bool:
    """``1 / n! > alpha`` in constant time for any ``n``: exact up to 170, where ``n!``
    is still a float, then with ``lgamma`` (``n=10**18`` must not build a huge integer)."""
    if n <= 170:
        return 1.0 / math.factorial(n) > alpha
    return -math.lgamma(n + 1.0) > math.log(alpha)


def check_reachable(n_blocks: int, alpha: float) -> None:
    """Raise unless Kendall's tau on ``n_blocks`` points can reach ``p <= alpha``.

    Raises:
        InvalidInput: the smallest one-sided p-value, ``1 / n_blocks!``, exceeds ``alpha``,
            or ``n_blocks`` is above `MAX_BLOCKS`.
    """
    n_blocks = check_int(n_blocks, "n_blocks", minimum=1)
    alpha = check_open_unit(alpha, "alpha")
    if n_blocks > MAX_BLOCKS:
        raise InvalidInput(
            f"'n_blocks' must be at most {MAX_BLOCKS} (got {n_blocks:,}): the exact Kendall "
            "test on more block means takes too long and gains nothing"
        )
    if _above(n_blocks, alpha):
        smallest_p = math.exp(-math.lgamma(n_blocks + 1.0))
        raise InvalidInput(
            f"'n_blocks' {n_blocks} cannot reach alpha {alpha}: the smallest one-sided p-value "
            f"of Kendall's tau on {n_blocks} points is {smallest_p:.3g}"
        )


def lag1_autocorrelation(losses: Any) -> Any:
    """Lag-1 autocorrelation of the residuals about a cubic trend, clipped to [0, 0.99].

    ``losses`` is one curve (1-D: returns a float) or one curve per row (2-D: returns an
    array, for simulations). A global cubic follows smooth loss curves closely while leaving
    the step-to-step noise in the residuals; where it cannot follow the curve the misfit
    looks like correlated noise, which only makes the blocks longer (the test is then
    conservative, or asks for more steps).

    >>> lag1_autocorrelation(np.linspace(2.0, 0.5, 50))
    0.0
    """
    values = as_array(losses, "losses", ndim=(1, 2), dtype=np.float64)
    rows = np.atleast_2d(values)
    n = rows.shape[1]
    if n < 8:
        out = np.zeros(rows.shape[0])
    else:
        t = np.linspace(-1.0, 1.0, n)
        design = np.vander(t, 4)
        coef = np.linalg.lstsq(design, rows.T, rcond=None)[0]
        residuals = rows - (design @ coef).T
        denominator = np.einsum("ij,ij->i", residuals, residuals)
        centered = rows - rows.mean(axis=1, keepdims=True)
        total = np.einsum("ij,ij->i", centered, centered)
        numerator = np.einsum("ij,ij->i", residuals[:, :-1], residuals[:, 1:])
        # A curve the trend explains to rounding error has no noise to be correlated.
        noisy = np.isfinite(denominator) & (denominator > 1e-12 * total) & (denominator > 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(noisy, numerator / np.where(noisy, denominator, 1.0), 0.0)
        out = np.clip(rho, 0.0, 0.99)
    return float(out[0]) if values.ndim == 1 else out


def block_steps(rho: Any) -> Any:
    """The fewest steps per block for noise with lag-1 autocorrelation ``rho``.

    ``ceil(CORRELATION_TIMES_PER_BLOCK * (1 + rho) / (1 - rho))``: block means that far
    apart are nearly independent, so Kendall's exact test on them keeps its level. ``rho``
    is a float (returns an int) or an array (returns an integer array, for simulations).

    >>> block_steps(0.0), block_steps(0.5), block_steps(0.9)
    (5, 15, 95)
    """
    rhos = as_array(rho, "rho", dtype=np.float64, min_size=0)
    if rhos.size and not ((rhos > -1.0).all() and (rhos < 1.0).all()):
        raise InvalidInput(f"'rho' must be in (-1, 1) (got {describe(rhos)})")
    steps = np.ceil(CORRELATION_TIMES_PER_BLOCK * (1.0 + rhos) / (1.0 - rhos) - 1e-9)
    return int(steps) if steps.ndim == 0 else steps.astype(np.int64)


def kendall_pvalue_less(means: Any) -> Any:
    """Exact one-sided p-value of Kendall's tau (index vs ``means``) for a downward trend.

    The probability, over the ``b!`` equally likely orderings, of at most as many increasing
    pairs as observed (the Mahonian distribution); equal to `scipy.stats.kendalltau` with
    ``alternative="less", method="exact"`` when there are no ties. ``means`` is one row of
    ``b`` values or a 2-D array of rows (vectorised, for simulations).

    >>> kendall_pvalue_less([5.0, 4.0, 3.0, 2.0, 1.0])
    0.008333333333333333
    """
    values = as_array(means, "means", ndim=(1, 2), dtype=np.float64)
    rows = np.atleast_2d(values)
    b = rows.shape[1]
    if b > MAX_BLOCKS:
        raise InvalidInput(f"'means' must hold at most {MAX_BLOCKS} blocks (got {b})")
    i, j = np.triu_indices(b, 1)
    increasing = (rows[:, j] > rows[:, i]).sum(axis=1)
    pmf = np.array([1.0])  # the Mahonian distribution as probabilities: b! would overflow
    for k in range(1, b):
        pmf = np.convolve(pmf, np.full(k + 1, 1.0 / (k + 1)))
    cdf = np.minimum(np.cumsum(pmf), 1.0)
    pvalues = cdf[increasing]
    return float(pvalues[0]) if values.ndim == 1 else pvalues


def slope_test(losses: Any) -> tuple[Any, Any]:
    """A test for a downward slope that holds under any AR(1) noise, even a random walk.

    The least-squares slope of the curve is compared with the largest spread it can have
    when the loss does not trend but wanders: a random walk whose steps are as large as the
    curve's. Two facts make that a bound for stationary AR(1) noise of any lag-1
    correlation ``r`` in [0, 1) with innovations of variance ``s**2``: the variance of a
    contrast (weights summing to zero, like the slope) is at most the random walk's with
    the same innovations, and half the mean square of the second differences is at least
    ``s**2`` (``(3 - r) / (1 + r)`` times it). So the statistic ``z = -slope / sd`` uses
    ``sd`` computed under the random walk from the second differences, and its one-sided
    p-value is a Student t tail with ``(m - 2) / 3`` degrees of freedom for ``m`` values
    (the squared second differences are correlated). The noise is measured on the whole
    curve and, from 12 values, also on its later half (under the null any half will do,
    while a healthy curve's fast early fall would read as a burst of noise); the smaller
    p-value counts, doubled (Bonferroni). A smooth or settled curve is barely penalised
    while a curve that only wanders cannot reach a small p-value: this judges short curves
    (boosting rounds, a fast fall to a plateau) on which the block test cannot keep its
    level.

    ``losses`` is one curve (1-D: returns floats) or one per row (2-D: arrays, for
    simulations); at least 4 values.

    Returns:
        ``(z, pvalue)``: ``z`` > 0 for a falling curve; the p-value of a downward slope.

    >>> z, p = slope_test(np.exp(-np.arange(12) / 4.0))
    >>> z > 10, p < 1e-3
    (True, True)
    >>> slope_test(np.ones(12))
    (0.0, 1.0)
    """
    values = as_array(losses, "losses", ndim=(1, 2), dtype=np.float64)
    rows = np.atleast_2d(values)
    n = rows.shape[1]
    if n < 4:
        raise InvalidInput(f"'losses' must hold at least 4 values for the slope test (got {n})")
    t = np.arange(n, dtype=np.float64)
    weights = (t - t.mean()) / float(np.dot(t - t.mean(), t - t.mean()))
    tails = np.cumsum(weights[::-1])[::-1][1:]  # each step's weight in the slope
    slope = rows @ weights
    # Rounding leaves a flat curve's slope at about 1e-17 of its level: count that as 0.
    level = np.max(np.abs(rows), axis=1)
    slope = np.where(np.abs(slope) * n <= 1e-12 * level, 0.0, slope)
    import scipy.stats  # here, not at import: child processes of the checks stay light

    # The step-to-step noise is measured twice: on the whole curve, and on its later half
    # (under the null, no trend and stationary noise, any half is as good as the whole,
    # while a healthy curve's fast early fall would read as a burst of noise). The smaller
    # p-value counts, doubled (Bonferroni), so the level holds for the pair.
    halves = [rows, rows[:, n // 2 :]] if n >= 12 else [rows]
    candidates = []
    for part in halves:
        scale = np.sqrt(np.mean(np.diff(part, 2, axis=1) ** 2, axis=1) / 2.0)
        spread = scale * math.sqrt(float(np.dot(tails, tails)))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(spread > 0.0, -slope / np.where(spread > 0.0, spread, 1.0), 0.0)
        # No step-to-step noise at all: a straight line, judged by its slope alone.
        straight = (spread == 0.0) & (slope != 0.0)
        z = np.where(straight, np.where(slope < 0.0, np.inf, -np.inf), z)
        dof = max((part.shape[1] - 2) / 3.0, 1.0)
        candidates.append((z, np.where(z == 0.0, 1.0, scipy.stats.t.sf(z, dof))))
    best = np.argmin(np.stack([p for _, p in candidates]), axis=0)
    z = np.choose(best, [z for z, _ in candidates])
    pvalue = np.minimum(np.choose(best, [p for _, p in candidates]) * len(candidates), 1.0)
    if values.ndim == 1:
        return float(z[0]), float(pvalue[0])
    return z, pvalue


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
        n_steps: how many losses the curve has.
        steps_needed: the fewest steps with which the block test keeps its level at this
            autocorrelation: ``min_blocks(alpha)`` blocks of `block_steps` steps each.
        slope_statistic: `slope_test`'s ``z`` (the decision on curves too short for the
            block test).
        slope_pvalue: `slope_test`'s p-value.
    """

    statistic: float
    pvalue: float
    n_blocks: int
    block_size: float
    block_means: tuple[float, ...]
    relative_drop: float
    lag1_autocorrelation: float
    correlation_steps: float
    n_steps: int = 0
    steps_needed: int = 0
    slope_statistic: float = 0.0
    slope_pvalue: float = 1.0

    @property
    def judgeable(self) -> bool:
        """True when the curve has the steps the block test needs at its autocorrelation."""
        return self.n_steps >= self.steps_needed

    @property
    def test(self) -> str:
        """The test that decides: ``"kendall"`` on block means, or ``"slope"`` (too short)."""
        return "kendall" if self.judgeable else "slope"

    @property
    def decision_pvalue(self) -> float:
        """The p-value of the test that decides (`test`)."""
        return self.pvalue if self.judgeable else self.slope_pvalue

    def decreasing(self, alpha: float) -> bool:
        """True when the deciding test (`test`) shows a decrease at level ``alpha``."""
        return self.decision_pvalue <= alpha


def _relative_drop(first: float, last: float) -> float:
    if first == 0.0:
        return 0.0 if last == 0.0 else math.copysign(math.inf, first - last)
    return (first - last) / abs(first)


def loss_trend(losses: Any, *, n_blocks: int = 10, alpha: float = 0.01) -> LossTrend:
    """Test a loss curve for a downward trend with Kendall's tau on block means.

    The curve is cut into consecutive blocks (`numpy.array_split`) and each block is
    replaced by its mean; the p-value is that of Kendall's tau between block index and
    block mean, one-sided and exact (`kendall_pvalue_less`, the same as
    `scipy.stats.kendalltau` with ``alternative="less", method="exact"``).

    Step-to-step losses are autocorrelated (momentum, learning-rate schedules, data
    order), and Kendall's test assumes independent points: on raw steps it would find
    "trends" in flat but wandering curves far more often than ``alpha``. Block means of
    blocks much longer than the noise's correlation time are nearly independent, so the
    block size adapts: the lag-1 autocorrelation ``r`` of the residuals about a cubic trend
    (`lag1_autocorrelation`) gives the correlation time ``(1 + r) / (1 - r)``, and blocks
    are made at least `CORRELATION_TIMES_PER_BLOCK` times that long (`block_steps`), with
    ``n_blocks`` blocks at most. When fewer than ``min_blocks(alpha)`` such blocks fit,
    the block test cannot keep its level: the result is not `judgeable`, ``steps_needed``
    says how many steps the block test needs (its statistic and p-value are still computed,
    on ``min_blocks(alpha)`` blocks, for information only), and the decision is
    `slope_test`'s, which keeps its level under any AR(1) noise but needs a decline well
    beyond the curve's step-to-step noise (a smooth curve, or a long one).

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
    >>> round(trend.relative_drop, 2), trend.judgeable
    (0.74, True)
    >>> loss_trend(np.ones(100)).pvalue
    1.0
    >>> short = loss_trend(0.5 + 2.0 * np.exp(-np.arange(12) / 4.0))
    >>> short.judgeable, short.test, short.decreasing(0.01)
    (False, 'slope', True)
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
    rho = float(lag1_autocorrelation(values))
    correlation_steps = (1.0 + rho) / (1.0 - rho)
    steps = int(block_steps(rho))
    fitting = len(values) // steps
    blocks = min(n_blocks, max(floor, fitting), len(values))
    means = np.array([chunk.mean() for chunk in np.array_split(values, blocks)])
    import scipy.stats  # here, not at import: child processes of the checks stay light

    if np.ptp(means) == 0.0:
        statistic, pvalue = 0.0, 1.0
    elif len(np.unique(means)) < blocks:  # ties: scipy's normal approximation with ties
        test = scipy.stats.kendalltau(np.arange(blocks), means, alternative="less")
        statistic, pvalue = float(test.statistic), float(test.pvalue)
    else:
        statistic = float(scipy.stats.kendalltau(np.arange(blocks), means).statistic)
        pvalue = float(kendall_pvalue_less(means))
    slope_z, slope_p = slope_test(values)
    return LossTrend(
        statistic=statistic,
        pvalue=pvalue,
        n_blocks=int(blocks),
        block_size=len(values) / blocks,
        block_means=tuple(float(m) for m in means),
        relative_drop=_relative_drop(float(means[0]), float(means[-1])),
        lag1_autocorrelation=rho,
        correlation_steps=correlation_steps,
        n_steps=len(values),
        steps_needed=floor * steps,
        slope_statistic=slope_z,
        slope_pvalue=slope_p,
    )
