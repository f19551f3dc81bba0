"""Betting tests: the mean of bounded observations, and a rate, anytime-valid.

`betting_log_evalues` / `BettingTest` test the mean of observations in ``[low, high]`` by
betting (Waudby-Smith & Ramdas, 2023); `betting_confidence_sequence` inverts them into a
confidence sequence (Howard et al., 2021). `rate_log_evalue`, `rate_log_evalues`,
`RateTest` and `rate_confidence_sequence` are the same test for 0/1 outcomes, in closed
form from the counts. Public through `mlchecks.stats.sequential`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import logsumexp

from mlchecks._text import fmt
from mlchecks._validate import as_array, as_counts, check_int, check_open_unit, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._evalue import (
    Sided,
    WealthTest,
    check_alternative,
    log_mean_exp,
)
from mlchecks.stats.intervals import ConfidenceInterval

__all__ = [
    "BettingTest",
    "RateTest",
    "betting_confidence_sequence",
    "betting_log_evalues",
    "rate_confidence_sequence",
    "rate_log_evalue",
    "rate_log_evalues",
]

#: The largest bet of `betting_log_evalues`, as a fraction of the bet that could lose
#: everything on one observation.
_MAX_BET = 0.9


def _bets(null_mean: float, low: float, high: float, alternative: str, n_bets: int) -> np.ndarray:
    if not low < null_mean < high:
        raise InvalidInput(
            f"'null_mean' must lie strictly inside ({fmt(low)}, {fmt(high)}) (got {null_mean!r})"
        )
    reach = null_mean - low if alternative == "greater" else high - null_mean
    return (_MAX_BET / reach) * 0.5 ** np.arange(n_bets)


def _check_bounds(low: float, high: float) -> tuple[float, float]:
    lo, hi = float(low), float(high)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InvalidInput(f"'low' and 'high' must be finite with low < high (got {low}, {high})")
    return lo, hi


def _n_bets(value: Any) -> int:
    return check_int(value, "n_bets", minimum=1)


def betting_log_evalues(
    x: Any,
    null_mean: float,
    *,
    low: float,
    high: float,
    alternative: Sided = "greater",
    n_bets: int = 8,
) -> np.ndarray:
    """Log e-values for the mean of bounded observations, by betting.

    Tests ``H0: mean <= null_mean`` (``alternative="greater"``) or ``H0: mean >= null_mean``
    (``"less"``) for independent observations in ``[low, high]`` with a common mean (no
    other assumption on their distribution). The wealth of a gambler who bets a constant
    fraction ``lam`` against the null, ``prod_i (1 + lam * (x_i - null_mean))``, has
    expectation at most 1 under the null; the e-value averages that wealth over
    ``n_bets`` bets ``lam = 0.9 / (null_mean - low) * 2**-j``, ``j = 0 .. n_bets - 1`` (the
    largest bet a single observation at the bound cannot wipe out, then halvings), so it
    adapts to the effect size (Waudby-Smith & Ramdas, 2023).

    Args:
        x: 1-D observations, each in ``[low, high]``.
        null_mean: the boundary of the null, strictly inside ``(low, high)``.
        low, high: the bounds of the observations.
        alternative: ``"greater"`` or ``"less"``.
        n_bets: how many bets the e-value averages.

    Returns:
        ``log E`` after each observation.

    Raises:
        InvalidInput: an observation outside ``[low, high]``, a NaN, or ``null_mean`` not
            inside the bounds.

    >>> x = [0.5] * 20  # every observation far above the null mean 0
    >>> bool(betting_log_evalues(x, 0.0, low=-1, high=1)[-1] > np.log(20))
    True
    """
    lo, hi = _check_bounds(low, high)
    side = check_alternative(alternative, ("greater", "less"))
    obs = as_array(x, "x", ndim=1, dtype=np.float64, min_size=0)
    if obs.size and (obs.min() < lo or obs.max() > hi):
        raise InvalidInput(
            f"'x' must lie in [{fmt(lo)}, {fmt(hi)}] (got values from {fmt(obs.min())} "
            f"to {fmt(obs.max())})"
        )
    m = float(null_mean)
    bets = _bets(m, lo, hi, side, _n_bets(n_bets))
    if obs.size == 0:
        return np.zeros(0)
    excess = obs - m if side == "greater" else m - obs
    wealth = np.cumsum(np.log1p(excess[:, None] * bets[None, :]), axis=0)
    return np.asarray(logsumexp(wealth, axis=1) - math.log(bets.size), dtype=np.float64)


class BettingTest(WealthTest):
    """Online `betting_log_evalues`.

    `update` adds an observation and returns ``log E``; `push` only adds it (8 logarithms),
    and ``log_evalue`` is computed when read (see `WealthTest`): the canary pushes three
    of these per request and reads an e-value only when its bound is at the threshold.

    >>> test = BettingTest(0.0, low=-1.0, high=1.0)
    >>> for _ in range(20):
    ...     _ = test.update(0.5)
    >>> test.rejects(alpha=0.05)
    True
    """

    __slots__ = ("_bet_list", "_greater", "alternative", "bets", "high", "low", "n", "null_mean")

    def __init__(
        self,
        null_mean: float,
        *,
        low: float,
        high: float,
        alternative: Sided = "greater",
        n_bets: int = 8,
    ) -> None:
        self.low, self.high = _check_bounds(low, high)
        self.alternative: Sided = check_alternative(alternative, ("greater", "less"))  # type: ignore[assignment]
        self._greater = self.alternative == "greater"
        self.null_mean = float(null_mean)
        self.bets = _bets(self.null_mean, self.low, self.high, self.alternative, _n_bets(n_bets))
        self._bet_list = self.bets.tolist()  # floats: one observation costs a few µs
        self._start(self.bets.size)
        self.n = 0

    def update(self, x: float) -> float:
        """Add one observation in ``[low, high]``; return ``log E``."""
        self.push(x)
        return self.log_evalue

    def push(self, x: float) -> None:
        """Add one observation in ``[low, high]`` (``log_evalue`` is computed when read).

        >>> test = BettingTest(0.0, low=-1.0, high=1.0)
        >>> test.push(0.5)
        >>> round(test.log_evalue, 4), round(test.log_evalue_bound, 4)
        (0.1062, 0.3716)
        """
        value = float(x)
        if not self.low <= value <= self.high:
            raise InvalidInput(f"'x' must lie in [{fmt(self.low)}, {fmt(self.high)}] (got {x!r})")
        excess = value - self.null_mean if self._greater else self.null_mean - value
        log1p = math.log1p
        wealth = self._log_wealth
        if len(wealth) == 8:  # unrolled: half the time of the loop
            w0, w1, w2, w3, w4, w5, w6, w7 = wealth
            b0, b1, b2, b3, b4, b5, b6, b7 = self._bet_list
            wealth = [
                w0 + log1p(excess * b0),
                w1 + log1p(excess * b1),
                w2 + log1p(excess * b2),
                w3 + log1p(excess * b3),
                w4 + log1p(excess * b4),
                w5 + log1p(excess * b5),
                w6 + log1p(excess * b6),
                w7 + log1p(excess * b7),
            ]
        else:
            wealth = [
                w + log1p(excess * lam) for w, lam in zip(wealth, self._bet_list, strict=True)
            ]
        self._log_wealth = wealth
        self.log_evalue_bound = max(wealth)
        self._stale = True
        self.n += 1

    def __repr__(self) -> str:
        return (
            f"BettingTest(null_mean={fmt(self.null_mean)}, alternative={self.alternative!r}, "
            f"n={self.n}, evalue={fmt(self.evalue)})"
        )


def betting_confidence_sequence(
    x: Any, *, low: float, high: float, alpha: float = 0.05, n_bets: int = 8
) -> ConfidenceInterval:
    """The confidence sequence for the mean of bounded observations, at the latest time.

    Inverts `betting_log_evalues`: the interval holds every mean ``m`` that neither
    one-sided test rejects at ``alpha / 2``. Over the whole stream the intervals cover the
    true mean *simultaneously* with probability at least ``1 - alpha`` (a confidence
    sequence, Howard et al., 2021), so they may be read after every observation. Each
    one-sided e-value is monotone in ``m``, so the bounds are found by bisection.

    Args:
        x: 1-D observations in ``[low, high]``.
        low, high: the bounds of the observations.
        alpha: one minus the coverage.
        n_bets: as in `betting_log_evalues`.

    Returns:
        A `ConfidenceInterval`; ``(low, high)`` when ``x`` is empty.

    >>> ci = betting_confidence_sequence([0.1, -0.1] * 200, low=-1, high=1)
    >>> bool(ci.low < 0 < ci.high), bool(ci.high - ci.low < 0.2)
    (True, True)
    """
    lo, hi = _check_bounds(low, high)
    a = check_open_unit(alpha, "alpha")
    obs = as_array(x, "x", ndim=1, dtype=np.float64, min_size=0)
    bets_n = _n_bets(n_bets)
    if obs.size == 0:
        return ConfidenceInterval(lo, hi)

    if obs.min() < lo or obs.max() > hi:
        betting_log_evalues(obs, 0.5 * (lo + hi), low=lo, high=hi)  # raises, naming the values
    ladder = _MAX_BET * 0.5 ** np.arange(bets_n)

    def log_evalue(m: float, side: Sided) -> float:
        return final_log_evalue(obs, m, lo, hi, side, ladder)

    return _invert(log_evalue, a, lo, hi)


def final_log_evalue(
    obs: np.ndarray, mean: float, low: float, high: float, side: str, ladder: np.ndarray
) -> float:
    """``betting_log_evalues(obs, mean, ...)[-1]`` without the path: the wealth of each bet
    summed (pairwise), then averaged. ``ladder`` is the bets times their reach,
    ``0.9 * 2**-j``; the observations are checked by the caller."""
    if side == "greater":
        excess, reach = obs - mean, mean - low
    else:
        excess, reach = mean - obs, high - mean
    wealth = np.log1p(excess[:, None] * (ladder / reach)[None, :]).sum(axis=0)
    return log_mean_exp(wealth.tolist())


def _invert(
    log_evalue: Callable[[float, Sided], float], alpha: float, lo: float, hi: float
) -> ConfidenceInterval:
    """The means in ``[lo, hi]`` that neither one-sided test rejects at ``alpha / 2``."""
    threshold = math.log(2.0 / alpha)

    def rejects(m: float, side: Sided) -> bool:
        return log_evalue(m, side) >= threshold

    return ConfidenceInterval(
        _bisect_bound(rejects, "greater", lo, hi), _bisect_bound(rejects, "less", lo, hi)
    )


def _bisect_bound(
    rejects: Callable[[float, Sided], bool], side: Sided, lo: float, hi: float
) -> float:
    """One end of a confidence sequence: the boundary of the means ``side``'s test rejects.

    ``"greater"`` rejects every mean below the lower bound, ``"less"`` every mean above the
    upper one; each one-sided e-value is monotone in the mean, so bisection finds the edge.
    """
    span = hi - lo
    eps = span * 1e-9
    inner, outer = (hi - eps, lo + eps) if side == "greater" else (lo + eps, hi - eps)
    if not rejects(outer, side):
        return lo if side == "greater" else hi
    if rejects(inner, side):
        return inner
    for _ in range(60):
        mid = 0.5 * (inner + outer)
        if rejects(mid, side):
            outer = mid
        else:
            inner = mid
        if abs(inner - outer) < span * 1e-7:
            break
    return outer


# ------------------------------------------------------------ rate (Bernoulli mean) test


def _counts(k: Any, n: Any) -> tuple[np.ndarray, np.ndarray]:
    return as_counts(k, n)


def _rate_factors(null_rate: float, side: str, n_bets: int) -> tuple[np.ndarray, np.ndarray]:
    """Each bet's log wealth factor on a hit and on a miss (`betting_log_evalues` on 0/1)."""
    bets = _bets(null_rate, 0.0, 1.0, side, n_bets)
    if side == "greater":
        return np.log1p(bets * (1.0 - null_rate)), np.log1p(-bets * null_rate)
    return np.log1p(-bets * (1.0 - null_rate)), np.log1p(bets * null_rate)


def rate_log_evalue(
    k: Any,
    n: Any,
    null_rate: float,
    *,
    alternative: Sided = "greater",
    n_bets: int = 8,
) -> np.ndarray:
    """Log e-value of the betting test for a rate, after ``k`` hits in ``n`` trials.

    Tests ``H0: rate <= null_rate`` (``alternative="greater"``) or ``H0: rate >=
    null_rate`` (``"less"``), where a trial is a hit with probability at most (at least)
    ``null_rate`` given everything before it; nothing else is assumed. It is
    `betting_log_evalues` on 0/1 observations with ``low=0, high=1``: a constant bet
    ``lam`` ends with wealth ``(1 + lam (1 - p))^k (1 - lam p)^(n - k)`` (``p`` the null
    rate) whatever the order of the trials, so the e-value, the average over the bets, is
    a closed form in the counts. Its expectation is at most 1 under the null at every
    stopping time, so it reaches ``1 / alpha`` with probability at most ``alpha``.

    Args:
        k: hit counts (array-like, broadcast with ``n``).
        n: trial counts, each ``>= k``.
        null_rate: the boundary of the null, in (0, 1).
        alternative: ``"greater"`` or ``"less"``.
        n_bets: how many bets the e-value averages (as in `betting_log_evalues`).

    Returns:
        The natural log of the e-value, float64, shaped like ``k`` and ``n`` broadcast.

    Raises:
        InvalidInput: ``null_rate`` outside (0, 1), negative counts or ``k > n``.

    >>> round(float(rate_log_evalue(4, 4, 0.1)), 3)  # four hits in a row against <= 10%
    6.859
    >>> float(rate_log_evalue(0, 0, 0.1))
    0.0
    """
    p = check_open_unit(null_rate, "null_rate")
    side = check_alternative(alternative, ("greater", "less"))
    hit, miss = _rate_factors(p, side, _n_bets(n_bets))
    k_arr, n_arr = _counts(k, n)
    wealth = k_arr[..., None] * hit + (n_arr - k_arr)[..., None] * miss
    return np.asarray(logsumexp(wealth, axis=-1) - math.log(hit.size), dtype=np.float64)


def rate_log_evalues(
    hits: Any, null_rate: float, *, alternative: Sided = "greater", n_bets: int = 8
) -> np.ndarray:
    """The path of `rate_log_evalue` over streams of 0/1 outcomes, along the last axis.

    Leading axes are independent streams, so many simulated canaries run in one call.

    Args:
        hits: booleans (or 0/1), at least 1-D; the last axis is time.
        null_rate, alternative, n_bets: as in `rate_log_evalue`.

    Returns:
        ``log E`` after each outcome, the shape of ``hits``.

    >>> rate_log_evalues([[1, 1, 1], [0, 0, 0]], 0.1).round(2)
    array([[ 1.1 ,  2.77,  4.75],
           [-0.25, -0.38, -0.46]])
    """
    h = as_array(hits, "hits", min_size=0)
    if h.ndim == 0:
        raise InvalidInput(f"'hits' must be at least 1-D (got {describe(h)})")
    if h.dtype.kind != "b":
        if not (h.dtype.kind in "iuf" and np.isin(h, (0, 1)).all()):
            raise InvalidInput(f"'hits' must be booleans (got {describe(h)})")
        h = h.astype(bool)
    k = np.cumsum(h, axis=-1)
    n = np.arange(1, h.shape[-1] + 1)
    return rate_log_evalue(k, n, null_rate, alternative=alternative, n_bets=n_bets)


def rate_confidence_sequence(
    k: float, n: int, *, alpha: float = 0.05, n_bets: int = 8
) -> ConfidenceInterval:
    """The confidence sequence for a rate after ``k`` hits in ``n`` trials.

    Inverts `rate_log_evalue` as `betting_confidence_sequence` inverts the betting test
    (it is that interval for 0/1 observations, from the counts alone): every rate neither
    one-sided test rejects at ``alpha / 2``. The intervals cover the true rate at every
    ``n`` simultaneously with probability at least ``1 - alpha``.

    Args:
        k: the hits so far; a float for the sum of outcomes in [0, 1] that `RateTest`
            takes as fractions (the interval then inverts its e-value).
        n: the trials so far (``>= k``).
        alpha: one minus the coverage.
        n_bets: as in `rate_log_evalue`.

    Returns:
        A `ConfidenceInterval` within [0, 1]; ``(0, 1)`` when ``n == 0``.

    Raises:
        InvalidInput: counts that are not integers with ``0 <= k <= n``, or ``alpha``
            outside (0, 1).

    >>> ci = rate_confidence_sequence(50, 1000)
    >>> bool(ci.low < 0.05 < ci.high), bool(ci.high < 0.1)
    (True, True)
    """
    trials = check_int(n, "n")
    hits = k if isinstance(k, float) else check_int(k, "k")
    if not 0.0 <= hits <= trials:
        raise InvalidInput(f"'k' must be in [0, n] (got k={k!r}, n={n!r})")
    a = check_open_unit(alpha, "alpha")
    bets_n = _n_bets(n_bets)
    if trials == 0:
        return ConfidenceInterval(0.0, 1.0)

    misses = trials - hits
    ladder = [_MAX_BET * 0.5**j for j in range(bets_n)]
    log1p = math.log1p

    def log_evalue(m: float, side: Sided) -> float:
        # `rate_log_evalue` for one count, with floats: the bisection calls it ~120 times
        if side == "greater":
            up, down = 1.0 - m, -m  # a hit's and a miss's excess over the null rate
            reach = m
        else:
            up, down = -(1.0 - m), m
            reach = 1.0 - m
        wealth = []
        for step in ladder:
            lam = step / reach
            wealth.append(hits * log1p(lam * up) + misses * log1p(lam * down))
        return log_mean_exp(wealth)

    return _invert(log_evalue, a, 0.0, 1.0)


class RateTest(WealthTest):
    """Online `rate_log_evalues`: feed 0/1 outcomes one at a time with `update`.

    `push` and `push_fraction` add an outcome without computing ``log E``, which is
    computed when read (see `WealthTest`).

    Args:
        null_rate: the boundary of the null, in (0, 1).
        alternative: ``"greater"`` (``H0: rate <= null_rate``) or ``"less"``.
        n_bets: as in `rate_log_evalue`.

    >>> test = RateTest(0.1)
    >>> for hit in [True, True, False, True, True]:
    ...     _ = test.update(hit)
    >>> test.n, test.hits, test.rate, test.rejects(alpha=0.05)
    (5, 4, 0.8, True)
    """

    __slots__ = ("_hit", "_miss", "alternative", "hits", "n", "null_rate")

    def __init__(
        self, null_rate: float, *, alternative: Sided = "greater", n_bets: int = 8
    ) -> None:
        self.alternative: Any = check_alternative(alternative, ("greater", "less"))
        self.n = 0
        self.hits: float = 0
        self.null_rate = check_open_unit(null_rate, "null_rate")
        hit, miss = _rate_factors(self.null_rate, self.alternative, _n_bets(n_bets))
        self._hit, self._miss = hit.tolist(), miss.tolist()  # floats: a few µs an outcome
        self._start(hit.size)

    def update(self, hit: bool) -> float:
        """Add one outcome (True for a hit); return ``log E``."""
        self.push(hit)
        return self.log_evalue

    def push(self, hit: bool) -> None:
        """Add one outcome (True for a hit); ``log_evalue`` is computed when read.

        >>> test = RateTest(0.1)
        >>> test.push(True)
        >>> round(test.log_evalue, 3), test.n
        (1.104, 1)
        """
        self.n += 1
        self.hits += bool(hit)
        step = self._hit if hit else self._miss
        wealth = self._log_wealth
        if len(wealth) == 8:  # unrolled: half the time of the loop
            w0, w1, w2, w3, w4, w5, w6, w7 = wealth
            s0, s1, s2, s3, s4, s5, s6, s7 = step
            wealth = [w0 + s0, w1 + s1, w2 + s2, w3 + s3, w4 + s4, w5 + s5, w6 + s6, w7 + s7]
        else:
            wealth = [w + f for w, f in zip(wealth, step, strict=True)]
        self._log_wealth = wealth
        self.log_evalue_bound = max(wealth)
        self._stale = True

    def update_fraction(self, fraction: float) -> float:
        """Add one outcome in [0, 1], such as the share of a batch's rows that are hits;
        return ``log E``.

        A bet's wealth grows by ``(1 + lam (1 - p))^x (1 - lam p)^(1 - x)`` for outcome
        ``x``: at most ``1 + lam (x - p)`` (weighted AM-GM), whose expectation is at most 1
        when the expected outcome is at most the null rate. So the e-value stays valid for
        fractions (conservatively) and is unchanged for 0/1 outcomes; `hits` sums them.

        >>> test = RateTest(0.1)
        >>> round(test.update_fraction(0.75), 3), test.hits
        (0.58, 0.75)
        """
        self.push_fraction(fraction)
        return self.log_evalue

    def push_fraction(self, fraction: float) -> None:
        """`update_fraction` without computing ``log E`` (computed when read).

        >>> test = RateTest(0.1)
        >>> test.push_fraction(0.75)
        >>> round(test.log_evalue, 3)
        0.58
        """
        x = float(fraction)
        if not 0.0 <= x <= 1.0:
            raise InvalidInput(f"'fraction' must be in [0, 1] (got {fraction!r})")
        self.n += 1
        self.hits += x
        self._log_wealth = wealth = [
            w + (x * h + (1.0 - x) * m)
            for w, h, m in zip(self._log_wealth, self._hit, self._miss, strict=True)
        ]
        self.log_evalue_bound = max(wealth)
        self._stale = True

    def __repr__(self) -> str:
        return (
            f"RateTest(null_rate={fmt(self.null_rate)}, alternative={self.alternative!r}, "
            f"n={self.n}, hits={self.hits}, evalue={fmt(self.evalue)})"
        )

    @property
    def rate(self) -> float:
        """The observed rate ``hits / n`` (NaN before the first outcome)."""
        return self.hits / self.n if self.n else math.nan

    def interval(self, alpha: float = 0.05) -> ConfidenceInterval:
        """`rate_confidence_sequence` of the outcomes so far."""
        return rate_confidence_sequence(
            self.hits, self.n, alpha=alpha, n_bets=len(self._log_wealth)
        )
