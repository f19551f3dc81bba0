"""Confidence intervals: Clopper-Pearson and Wilson for a proportion, normal, two bootstraps.

- `clopper_pearson_interval`: the exact interval of a binomial proportion (each one-sided
  bound keeps its level at every n); `clopper_pearson` is its vectorized kernel.
- `wilson_interval`: a binomial proportion (accuracy, error rate) from its counts.
- `normal_interval`: ``estimate ± z * standard_error``.
- `bootstrap_counts`: for statistics that depend only on cell counts (accuracy, churn, a
  paired accuracy difference, any confusion-matrix metric). Resampling n rows with
  replacement and counting them is the same as drawing the counts from a multinomial with
  the observed cell frequencies, so each resample costs O(cells), not O(rows).
- `bootstrap_rows`: any statistic of rows, resampled in chunks so memory stays bounded.

Both bootstraps give percentile intervals and keep the resampled statistics for p-values.

>>> low, high = wilson_interval(90, 100)
>>> round(low, 4), round(high, 4)
(0.8256, 0.9448)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import attrs
import numpy as np

from mlchecks._validate import as_array, as_counts, as_int64, check_int, check_open_unit, describe
from mlchecks.exceptions import InvalidInput

__all__ = [
    "BootstrapResult",
    "ConfidenceInterval",
    "bootstrap_counts",
    "bootstrap_rows",
    "clopper_pearson",
    "clopper_pearson_interval",
    "normal_interval",
    "std",
    "wilson_interval",
]

#: Default number of elements (rows times resamples, or cells times resamples) that one
#: chunk of bootstrap resamples may hold in memory.
DEFAULT_CHUNK_SIZE = 1_000_000


class ConfidenceInterval(NamedTuple):
    """A two-sided confidence interval ``[low, high]``.

    >>> low, high = ConfidenceInterval(0.1, 0.3)
    >>> high
    0.3
    """

    low: float
    high: float


def check_confidence(confidence: Any, name: str = "confidence") -> float:
    """``confidence`` as a float in (0, 1), or `InvalidInput` naming ``name``.

    >>> check_confidence(0.9)
    0.9
    """
    return check_open_unit(confidence, name)


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile for ``confidence`` (1.96 for 0.95).

    >>> round(z_value(0.95), 4)
    1.96
    """
    from scipy.special import ndtri

    return float(ndtri(0.5 + check_confidence(confidence) / 2.0))


def normal_interval(
    estimate: float, standard_error: float, confidence: float = 0.95
) -> ConfidenceInterval:
    """The normal-approximation interval ``estimate ± z * standard_error``.

    Args:
        estimate: the point estimate.
        standard_error: its standard error, finite and >= 0.
        confidence: the two-sided coverage, in (0, 1).

    Returns:
        A `ConfidenceInterval` of Python floats.

    Raises:
        InvalidInput: for a non-finite estimate, a negative or non-finite standard error, or
            a confidence outside (0, 1).

    >>> [round(x, 4) for x in normal_interval(0.5, 0.1, 0.95)]
    [0.304, 0.696]
    """
    if not math.isfinite(estimate):
        raise InvalidInput(f"'estimate' must be finite (got {estimate!r})")
    if not (math.isfinite(standard_error) and standard_error >= 0.0):
        raise InvalidInput(f"'standard_error' must be finite and >= 0 (got {standard_error!r})")
    half = z_value(confidence) * float(standard_error)
    return ConfidenceInterval(float(estimate) - half, float(estimate) + half)


def _binomial_args(successes: Any, n: Any, confidence: float) -> tuple[int, int, float]:
    """``(successes, n, confidence)`` checked: counts with 0 <= successes <= n, n >= 1."""
    n = check_int(n, "n", minimum=1)
    successes = check_int(successes, "successes")
    if successes > n:
        raise InvalidInput(f"'successes' must be <= n={n} (got {successes})")
    return successes, n, check_confidence(confidence)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> ConfidenceInterval:
    """The Wilson score interval for a binomial proportion ``successes / n``.

    Computed by ``scipy.stats.binomtest(successes, n).proportion_ci(confidence,
    method="wilson")`` (without continuity correction). Unlike the Wald interval it stays
    inside [0, 1] and keeps its coverage near 0 and 1, e.g. for an accuracy of 1.0.

    Args:
        successes: the number of successes (correct predictions), in [0, n].
        n: the number of trials, >= 1.
        confidence: the two-sided coverage, in (0, 1).

    Returns:
        A `ConfidenceInterval` of Python floats.

    Raises:
        InvalidInput: for non-integer counts, ``n < 1``, ``successes`` outside [0, n], or a
            confidence outside (0, 1).

    >>> [round(x, 4) for x in wilson_interval(10, 10, 0.95)]
    [0.7225, 1.0]
    """
    successes, n, level = _binomial_args(successes, n, confidence)
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return ConfidenceInterval(float(ci.low), float(ci.high))


def clopper_pearson(
    successes: Any, n: Any, confidence: float = 0.95, *, upper_tail: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The exact (Clopper-Pearson) bounds, vectorized over arrays of counts.

    ``low = Beta(a; k, n - k + 1)`` and ``high = Beta(1 - b; k + 1, n - k)`` quantiles (0 at
    k = 0, 1 at k = n). By default ``a = b = (1 - confidence) / 2``, the two-sided interval;
    with ``upper_tail`` the bounds are one-sided: the lower at level ``confidence``
    (``a = 1 - confidence``) and the upper at level ``1 - upper_tail``. Each bound holds with
    probability at least its level at every n and every true proportion, which the Wilson
    interval does not promise. Counts are checked (finite, ``0 <= successes <= n``, shapes
    that broadcast); `clopper_pearson_interval` takes one pair of integers.

    >>> low, high = clopper_pearson(np.array([0, 5]), np.array([10, 10]))
    >>> np.round(low, 4).tolist(), np.round(high, 4).tolist()
    ([0.0, 0.1871], [0.3085, 0.8129])
    >>> [round(float(b), 4) for b in clopper_pearson(100, 10_000, 0.95, upper_tail=0.05)]
    [0.0084, 0.0118]
    """
    from scipy.special import betaincinv

    k, size = as_counts(successes, n, "successes", "n")
    if upper_tail is None:
        low_tail = high_tail = (1.0 - confidence) / 2.0
    else:
        low_tail, high_tail = 1.0 - confidence, upper_tail
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, betaincinv(k, size - k + 1.0, low_tail), 0.0)
        high = np.where(k < size, betaincinv(k + 1.0, size - k, 1.0 - high_tail), 1.0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def clopper_pearson_interval(
    successes: int, n: int, confidence: float = 0.95
) -> ConfidenceInterval:
    """The exact (Clopper-Pearson) interval for a binomial proportion ``successes / n``.

    Equal to ``scipy.stats.binomtest(successes, n).proportion_ci(confidence,
    method="exact")``. A floor judged on its lower bound passes a model whose true
    proportion is at the floor with probability at most ``(1 - confidence) / 2`` at every n.

    Args:
        successes: the number of successes (correct predictions), in [0, n].
        n: the number of trials, >= 1.
        confidence: the two-sided coverage, in (0, 1).

    Returns:
        A `ConfidenceInterval` of Python floats.

    Raises:
        InvalidInput: for non-integer counts, ``n < 1``, ``successes`` outside [0, n], or a
            confidence outside (0, 1).

    >>> [round(x, 4) for x in clopper_pearson_interval(90, 100)]
    [0.8238, 0.951]
    """
    successes, n, level = _binomial_args(successes, n, confidence)
    low, high = clopper_pearson(successes, n, level)
    return ConfidenceInterval(float(low), float(high))


@attrs.frozen
class BootstrapResult:
    """A bootstrap estimate with its percentile interval and the resampled statistics.

    Args:
        estimate: the statistic on the original data.
        ci: the percentile confidence interval.
        standard_error: the standard deviation of the resampled statistics.
        n_resamples: how many resamples gave a finite statistic.
        distribution: the finite resampled statistics (not shown in the repr).
    """

    estimate: float
    ci: ConfidenceInterval
    standard_error: float
    n_resamples: int
    distribution: np.ndarray = attrs.field(repr=False, eq=False)

    def pvalue(self, null: float, alternative: Literal["greater", "less"] = "greater") -> float:
        """The one-sided bootstrap p-value against ``statistic == null``.

        For ``alternative="greater"`` (the statistic exceeds ``null``) this is the fraction
        of resampled statistics at or below ``null``, the smallest level at which the
        percentile lower bound exceeds ``null``; ``"less"`` mirrors it. One is added to
        numerator and denominator so the p-value is never 0 from a finite number of
        resamples. NaN when no resample was finite.

        >>> rng = np.random.default_rng(0)
        >>> res = bootstrap_rows(np.mean, rng.normal(1.0, 1.0, 400), n_resamples=500, rng=1)
        >>> res.pvalue(0.0) < 0.01, res.pvalue(2.0) > 0.99
        (True, True)
        """
        if alternative not in ("greater", "less"):
            raise InvalidInput(f"'alternative' must be 'greater' or 'less' (got {alternative!r})")
        if self.n_resamples == 0:
            return math.nan
        if alternative == "greater":
            extreme = int(np.count_nonzero(self.distribution <= null))
        else:
            extreme = int(np.count_nonzero(self.distribution >= null))
        return (extreme + 1.0) / (self.n_resamples + 1.0)


def _generator(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise InvalidInput(
        f"'rng' must be None, an int seed or a numpy Generator (got {describe(rng)})"
    )


def std(values: np.ndarray, ddof: int = 0) -> float:
    """``np.std`` that does not overflow: values beyond 1e150 are scaled before squaring.

    >>> std(np.array([1e300, -1e300]))
    1e+300
    """
    scale = float(np.abs(values).max()) if values.size else 0.0
    if scale <= 1e150:
        return float(np.std(values, ddof=ddof))
    return scale * float(np.std(values / scale, ddof=ddof))


def _summarize(estimate: float, stats: np.ndarray, confidence: float) -> BootstrapResult:
    finite = stats[np.isfinite(stats)]
    if finite.size == 0:
        ci = ConfidenceInterval(math.nan, math.nan)
        return BootstrapResult(float(estimate), ci, math.nan, 0, finite)
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    se = std(finite, ddof=1) if finite.size > 1 else 0.0
    return BootstrapResult(
        float(estimate), ConfidenceInterval(float(low), float(high)), se, int(finite.size), finite
    )


def _checked_output(value: Any, rows: int) -> np.ndarray:
    out = np.asarray(value, dtype=np.float64)
    if out.shape != (rows,):
        raise InvalidInput(
            f"'statistic' must return one value per resample, shape ({rows},) (got {describe(out)})"
        )
    return out


def bootstrap_counts(
    counts: Any,
    statistic: Callable[[np.ndarray], Any],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    rng: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> BootstrapResult:
    """Bootstrap a statistic of cell counts by drawing the counts from a multinomial.

    A row bootstrap of n rows that fall into k cells (correct/incorrect, confusion-matrix
    cells, the 4 cells of two models' correctness) changes only how many rows land in each
    cell, and those counts are multinomial(n, observed frequencies). So one resample is one
    ``Generator.multinomial`` draw of k numbers, whatever n is.

    Args:
        counts: non-negative integer cell counts of any shape (a vector, a confusion matrix),
            with a positive total.
        statistic: vectorized; takes an integer array of shape ``(r, *counts.shape)`` (r
            resampled tables) and returns r values. It is also called once with the
            observed table (r = 1) for the estimate. NaN results (say, a precision with no
            predicted positives) are left out of the interval.
        n_resamples: the number of resamples, >= 1.
        confidence: the two-sided coverage of the percentile interval, in (0, 1).
        rng: None, an int seed, or a `numpy.random.Generator`.
        chunk_size: at most this many cells (resamples times cells) are drawn at a time.

    Returns:
        A `BootstrapResult`.

    Raises:
        InvalidInput: for negative, non-integer or all-zero counts, a statistic of the wrong
            output shape, or bad settings.

    Accuracy from 870 correct and 130 wrong predictions:

    >>> res = bootstrap_counts([870, 130], lambda t: t[:, 0] / t.sum(axis=1), rng=0)
    >>> res.estimate, round(res.ci.low, 2), round(res.ci.high, 2)
    (0.87, 0.85, 0.89)
    """
    table = as_array(counts, "counts")
    if table.dtype.kind == "b":
        raise InvalidInput(f"'counts' must be integer cell counts (got {describe(table)})")
    table = as_int64(table, "counts", "whole numbers")
    if table.min() < 0:
        raise InvalidInput(f"'counts' must be >= 0 (got a minimum of {table.min()})")
    if float(table.sum(dtype=np.float64)) >= 2.0**62:
        raise InvalidInput(f"'counts' must total less than 2**62 (got {describe(table)})")
    total = int(table.sum())
    if total < 1:
        raise InvalidInput("'counts' must have a positive total (got 0)")
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    level = check_confidence(confidence)
    generator = _generator(rng)

    flat = table.reshape(-1).astype(np.float64)
    pvals = flat / total
    estimate = _checked_output(statistic(table[np.newaxis]), 1)[0]
    stats = np.empty(n_resamples, dtype=np.float64)
    per_chunk = max(1, chunk_size // flat.size)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        draws = generator.multinomial(total, pvals, size=stop - start)
        stats[start:stop] = _checked_output(
            statistic(draws.reshape((stop - start, *table.shape))), stop - start
        )
    return _summarize(float(estimate), stats, level)


def bootstrap_rows(
    statistic: Callable[..., Any],
    *arrays: Any,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    rng: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    vectorized: bool = False,
) -> BootstrapResult:
    """Bootstrap any statistic of rows, resampling the rows of every array together.

    Resample indices are drawn for a chunk of resamples at a time, so memory stays near
    ``chunk_size`` indices (plus, when vectorized, the resampled arrays of one chunk)
    however many resamples there are.

    Args:
        statistic: ``statistic(*arrays) -> float``. With ``vectorized=True`` it gets arrays
            with an extra leading resample axis, shape ``(r, n, ...)``, and returns r values.
        *arrays: one or more arrays with the same number of rows n >= 1 (finite values);
            row i of every array is kept together (paired data stays paired).
        n_resamples: the number of resamples, >= 1.
        confidence: the two-sided coverage of the percentile interval, in (0, 1).
        rng: None, an int seed, or a `numpy.random.Generator`.
        chunk_size: at most this many resampled row indices are held at a time.
        vectorized: whether ``statistic`` takes a leading resample axis.

    Returns:
        A `BootstrapResult`.

    Raises:
        InvalidInput: for no arrays, arrays of different lengths, NaN or infinite values,
            a statistic of the wrong output shape, or bad settings.

    A paired difference of mean squared errors:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=500)
    >>> a, b = y + rng.normal(0, 0.5, 500), y + rng.normal(0, 1.0, 500)
    >>> def mse_gain(y, a, b):
    ...     return np.mean((y - b) ** 2) - np.mean((y - a) ** 2)
    >>> res = bootstrap_rows(mse_gain, y, a, b, n_resamples=500, rng=0)
    >>> bool(res.ci.low > 0)
    True
    """
    if not arrays:
        raise InvalidInput("bootstrap_rows needs at least one array (got none)")
    data = [as_array(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    lengths = {len(a) if a.ndim else 1 for a in data}
    if any(a.ndim == 0 for a in data):
        raise InvalidInput("'arrays' must be arrays with rows (got a scalar)")
    if len(lengths) != 1:
        raise InvalidInput(
            f"'arrays' must have the same number of rows (got {[len(a) for a in data]})"
        )
    n = len(data[0])
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    level = check_confidence(confidence)
    generator = _generator(rng)

    if vectorized:
        estimate = _checked_output(statistic(*[a[np.newaxis] for a in data]), 1)[0]
    else:
        estimate = float(statistic(*data))
    stats = np.empty(n_resamples, dtype=np.float64)
    per_chunk = max(1, chunk_size // n)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        index = generator.integers(0, n, size=(stop - start, n))
        if vectorized:
            stats[start:stop] = _checked_output(statistic(*[a[index] for a in data]), stop - start)
        else:
            for offset, rows in enumerate(index):
                stats[start + offset] = float(statistic(*[a[rows] for a in data]))
    return _summarize(float(estimate), stats, level)
