"""Anytime-valid sequential tests for canaries: e-values and confidence sequences.

A canary is looked at after every request. A fixed-sample test repeated after every
request raises false alarms far more often than its nominal level; the tests here stay
valid however often they are looked at and whenever monitoring stops. Each statistic is an
*e-process*: a nonnegative process whose expected value is at most 1 under the null
hypothesis at every stopping time, so by Ville's inequality the chance that it *ever*
reaches ``1 / alpha`` is at most ``alpha``. Values are returned as natural logarithms
(e-values grow exponentially under the alternative).

- `beta_binomial_log_evalue`, `share_log_evalues`, `ShareTest`: is the candidate's share of
  some event (errors) larger than its share of traffic? A Beta mixture of binomial
  likelihood ratios on which arm each event came from, conditioned on the routing
  fraction (Lindon & Malek, 2022).
- `categorical_share_log_evalues`, `CategoricalShareTest`: does that share depend on a
  category (the predicted class)? Tests whether the candidate's class distribution equals
  the baseline's.
- `betting_log_evalues`, `BettingTest`, `betting_confidence_sequence`: the mean of bounded
  observations (clipped log-latency differences) by betting (Waudby-Smith & Ramdas, 2023);
  inverted, a confidence sequence (Howard et al., 2021).
- `rate_log_evalue`, `rate_log_evalues`, `RateTest`, `rate_confidence_sequence`: the same
  betting test for a rate (the mean of 0/1 outcomes: how often a candidate's prediction
  differs from the baseline's), in closed form from the counts and vectorized over streams.
- `psi`, `js_divergence`: effect sizes of a shift between two count vectors.
- `CanaryMonitor`, `split_decision`, `shadow_decision`: the stage-1 verdict of
  `mlchecks.checks.canary.CanaryCheck`, online (one observation at a time) and vectorized
  over a whole stream (for simulations); both give the same decision.

>>> import numpy as np
>>> hits = np.ones(6, dtype=bool)  # six errors, every one from a candidate with 5% of traffic
>>> bool(share_log_evalues(hits, 0.05)[-1] > np.log(1 / 0.05))
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, TypeAlias

import attrs
import numpy as np
from scipy.special import betainc, betaincc, betaln, logsumexp

from mlchecks.exceptions import InvalidInput
from mlchecks._validate import (
    as_array,
    check_choice,
    check_int,
    check_number,
    check_open_unit,
    check_same_length,
    describe,
)
from mlchecks.stats.intervals import ConfidenceInterval

__all__ = [
    "BettingTest",
    "CanaryMonitor",
    "CategoricalShareTest",
    "RateTest",
    "ShareTest",
    "StreamDecision",
    "beta_binomial_log_evalue",
    "betting_confidence_sequence",
    "betting_log_evalues",
    "categorical_share_log_evalues",
    "js_divergence",
    "psi",
    "rate_confidence_sequence",
    "rate_log_evalue",
    "rate_log_evalues",
    "shadow_decision",
    "share_log_evalues",
    "split_decision",
]

Alternative: TypeAlias = Literal["greater", "less", "two-sided"]
Sided: TypeAlias = Literal["greater", "less"]

_ALTERNATIVES = ("greater", "less", "two-sided")
#: The largest bet of `betting_log_evalues`, as a fraction of the bet that could lose
#: everything on one observation.
_MAX_BET = 0.9
#: Additive smoothing (pseudo-count per class) of `psi`.
_PSI_SMOOTHING = 0.5
#: Latencies are floored here (seconds) before taking logs, so a clock reading 0 is finite.
_MIN_LATENCY_S = 1e-9


# ----------------------------------------------------------------------------- validation


def _positive(value: Any, name: str) -> float:
    return check_number(value, name, low=0.0, low_open=True)


def _alternative(value: Any, allowed: Sequence[str] = _ALTERNATIVES) -> str:
    return check_choice(value, "alternative", allowed)


def _prior(share: float, a: float | None, b: float | None) -> tuple[float, float]:
    """The Beta prior of the share tests: ``Beta(1, (1 - share) / share)`` by default.

    Its mean is the null share, and its spread is about the null share itself, so the
    mixture has power against the candidate's rate being a small multiple of the baseline's.
    """
    a_ = 1.0 if a is None else _positive(a, "a")
    b_ = (1.0 - share) / share if b is None else _positive(b, "b")
    return a_, b_


def _bool_array(value: Any, name: str) -> np.ndarray:
    array = as_array(value, name, ndim=1, min_size=0)
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iuf" and np.isin(array, (0, 1)).all():
        return array.astype(bool)
    raise InvalidInput(f"'{name}' must be booleans (got {describe(array)})")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# ------------------------------------------------------------------------ online tests


def _exp(log_value: float) -> float:
    return math.inf if log_value > 709.0 else math.exp(log_value)


class _OnlineTest:
    """What the online tests share: the e-value from ``log_evalue``, and the decision."""

    __slots__ = ()
    log_evalue: float

    @property
    def evalue(self) -> float:
        """The e-value itself (``inf`` when it overflows)."""
        return _exp(self.log_evalue)

    def rejects(self, alpha: float) -> bool:
        """True when the e-value has reached ``1 / alpha``."""
        return self.log_evalue >= -math.log(check_open_unit(alpha, "alpha"))


# ------------------------------------------------------------------- share (binomial) test


def beta_binomial_log_evalue(
    k: Any,
    n: Any,
    share: float,
    *,
    alternative: Alternative = "greater",
    a: float | None = None,
    b: float | None = None,
) -> np.ndarray:
    """Log e-value of a Beta mixture of binomial likelihood ratios, in closed form.

    Among ``n`` events, ``k`` were "hits" (came from the candidate). Under the null each
    event is a hit with probability ``share``, independently of the past (the candidate's
    share of traffic when errors are equally likely on both arms). The e-value is the
    likelihood ratio of the hits averaged over a ``Beta(a, b)`` prior on the hit
    probability ``theta``::

        E = integral theta^k (1 - theta)^(n - k) prior(theta) d theta
            / (share^k (1 - share)^(n - k))

    For ``alternative="greater"`` the prior is truncated to ``theta >= share`` (power
    only against a higher share; the process is then a supermartingale for every
    ``theta <= share``), for ``"less"`` to ``theta <= share``, and ``"two-sided"`` keeps the
    whole prior. Being a mixture of likelihood ratios, ``E`` is a nonnegative martingale
    in ``n`` with expectation 1 under the null (Lindon & Malek, 2022).

    Args:
        k: hit counts (array-like of non-negative integers, broadcast with ``n``).
        n: event counts, each ``>= k``.
        share: the null probability of a hit, in (0, 1).
        alternative: ``"greater"``, ``"less"`` or ``"two-sided"``.
        a, b: the Beta prior's parameters; default ``a = 1``, ``b = (1 - share) / share``
            (prior mean ``share``).

    Returns:
        The natural log of the e-value, a float64 array shaped like ``k`` and ``n``
        broadcast (``-inf`` where the e-value underflows to 0).

    Raises:
        InvalidInput: ``share`` outside (0, 1), negative counts, ``k > n``, or an unknown
            ``alternative``.

    >>> round(float(beta_binomial_log_evalue(5, 5, 0.05)), 3)
    5.295
    >>> float(beta_binomial_log_evalue(0, 0, 0.05))
    0.0
    """
    p0 = check_open_unit(share, "share")
    side = _alternative(alternative)
    a_, b_ = _prior(p0, a, b)
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if (k_arr < 0).any() or (n_arr < k_arr).any() or not np.isfinite(n_arr).all():
        raise InvalidInput("'k' and 'n' must be finite counts with 0 <= k <= n")
    with np.errstate(divide="ignore"):
        log_e = (
            betaln(a_ + k_arr, b_ + n_arr - k_arr)
            - betaln(a_, b_)
            - k_arr * math.log(p0)
            - (n_arr - k_arr) * math.log1p(-p0)
        )
        if side == "greater":
            log_e += np.log(betaincc(a_ + k_arr, b_ + n_arr - k_arr, p0)) - math.log(
                float(betaincc(a_, b_, p0))
            )
        elif side == "less":
            log_e += np.log(betainc(a_ + k_arr, b_ + n_arr - k_arr, p0)) - math.log(
                float(betainc(a_, b_, p0))
            )
    return np.asarray(log_e, dtype=np.float64)


def share_log_evalues(
    hits: Any,
    share: float,
    *,
    alternative: Alternative = "greater",
    a: float | None = None,
    b: float | None = None,
) -> np.ndarray:
    """The path of `beta_binomial_log_evalue` over a stream of events.

    Args:
        hits: 1-D booleans, one per event in arrival order: True when the event came from
            the candidate.
        share: the null probability of a hit (the candidate's share of traffic).
        alternative, a, b: as in `beta_binomial_log_evalue`.

    Returns:
        ``log E`` after each event (float64, same length as ``hits``).

    >>> share_log_evalues([True, False], 0.5, alternative="two-sided").round(4)
    array([ 0.    , -0.4055])
    """
    h = _bool_array(hits, "hits")
    n = np.arange(1, h.size + 1)
    return beta_binomial_log_evalue(np.cumsum(h), n, share, alternative=alternative, a=a, b=b)


class ShareTest(_OnlineTest):
    """Online `share_log_evalues`: feed events one at a time with `update`.

    Args:
        share: the null probability that an event is a hit.
        alternative, a, b: as in `beta_binomial_log_evalue`.

    >>> test = ShareTest(0.05)
    >>> for _ in range(6):
    ...     _ = test.update(True)
    >>> test.n, test.hits, test.rejects(alpha=0.05)
    (6, 6, True)
    """

    __slots__ = ("a", "alternative", "b", "hits", "log_evalue", "n", "share")

    def __init__(
        self,
        share: float,
        *,
        alternative: Alternative = "greater",
        a: float | None = None,
        b: float | None = None,
    ) -> None:
        self.share = check_open_unit(share, "share")
        self.alternative: Alternative = _alternative(alternative)  # type: ignore[assignment]
        self.a, self.b = _prior(self.share, a, b)
        self.n = 0
        self.hits = 0
        self.log_evalue = 0.0

    def update(self, hit: bool) -> float:
        """Add one event (``hit`` True when it came from the candidate); return ``log E``."""
        self.n += 1
        self.hits += bool(hit)
        self.log_evalue = float(
            beta_binomial_log_evalue(
                self.hits, self.n, self.share, alternative=self.alternative, a=self.a, b=self.b
            )
        )
        return self.log_evalue

    def __repr__(self) -> str:
        return (
            f"ShareTest(share={self.share}, alternative={self.alternative!r}, n={self.n}, "
            f"hits={self.hits}, evalue={_fmt(self.evalue)})"
        )


# ----------------------------------------------------------------- categorical share test


def categorical_share_log_evalues(
    categories: Any,
    hits: Any,
    share: float,
    *,
    a: float | None = None,
    b: float | None = None,
) -> np.ndarray:
    """Log e-values testing that whether an event is a hit does not depend on its category.

    Under the null every event is a hit with probability ``share`` whatever its category:
    with random routing, the candidate's predicted-class distribution equals the
    baseline's exactly when each class's requests come from the candidate at the routing
    fraction. For each category a two-sided `beta_binomial_log_evalue` runs on that
    category's events; the product over categories, built one event at a time from the
    Beta predictive probabilities, is a nonnegative martingale under the null.

    Args:
        categories: 1-D integer category of each event, in arrival order.
        hits: 1-D booleans, True when the event came from the candidate.
        share: the null hit probability.
        a, b: the per-category Beta prior, as in `beta_binomial_log_evalue`.

    Returns:
        ``log E`` after each event.

    >>> codes = [0, 1, 0, 1, 0, 1]
    >>> categorical_share_log_evalues(codes, [1, 0, 1, 0, 1, 0], 0.5).round(3)[-1]
    np.float64(1.386)
    """
    p0 = check_open_unit(share, "share")
    a_, b_ = _prior(p0, a, b)
    codes = as_array(categories, "categories", ndim=1, min_size=0)
    h = _bool_array(hits, "hits")
    check_same_length(categories=codes, hits=h)
    if codes.size == 0:
        return np.zeros(0)
    if codes.dtype.kind not in "iu":
        raise InvalidInput(f"'categories' must be integers (got {describe(codes)})")
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, codes.size]))
    position = np.arange(codes.size)
    n_before = np.empty(codes.size, dtype=np.float64)
    n_before[order] = position - group_start
    sorted_hits = h[order].astype(np.float64)
    hit_cumsum = np.cumsum(sorted_hits)
    start_cumsum = np.r_[0.0, hit_cumsum][group_start]
    k_before = np.empty(codes.size, dtype=np.float64)
    k_before[order] = hit_cumsum - sorted_hits - start_cumsum
    q = (a_ + k_before) / (a_ + b_ + n_before)
    step = np.where(h, np.log(q) - math.log(p0), np.log1p(-q) - math.log1p(-p0))
    return np.cumsum(step)


class CategoricalShareTest:
    """Online `categorical_share_log_evalues`.

    >>> test = CategoricalShareTest(0.5)
    >>> for code, hit in [(0, 1), (1, 0), (0, 1), (1, 0), (0, 1), (1, 0)]:
    ...     _ = test.update(code, hit)
    >>> round(test.log_evalue, 3)
    1.386
    """

    __slots__ = ("_counts", "a", "b", "log_evalue", "n", "share")

    def __init__(self, share: float, *, a: float | None = None, b: float | None = None) -> None:
        self.share = check_open_unit(share, "share")
        self.a, self.b = _prior(self.share, a, b)
        self._counts: dict[int, list[int]] = {}  # category -> [events, hits]
        self.n = 0
        self.log_evalue = 0.0

    def update(self, category: int, hit: bool) -> float:
        """Add one event of ``category``; return ``log E``."""
        counts = self._counts.setdefault(int(category), [0, 0])
        q = (self.a + counts[1]) / (self.a + self.b + counts[0])
        if hit:
            self.log_evalue += math.log(q) - math.log(self.share)
        else:
            self.log_evalue += math.log1p(-q) - math.log1p(-self.share)
        counts[0] += 1
        counts[1] += bool(hit)
        self.n += 1
        return self.log_evalue

    @property
    def evalue(self) -> float:
        """The e-value itself."""
        return _exp(self.log_evalue)

    def __repr__(self) -> str:
        return f"CategoricalShareTest(share={self.share}, n={self.n}, evalue={_fmt(self.evalue)})"


# -------------------------------------------------------------------------- betting test


def _bets(null_mean: float, low: float, high: float, alternative: str, n_bets: int) -> np.ndarray:
    if not low < null_mean < high:
        raise InvalidInput(
            f"'null_mean' must lie strictly inside ({_fmt(low)}, {_fmt(high)}) (got {null_mean!r})"
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
    side = _alternative(alternative, ("greater", "less"))
    obs = as_array(x, "x", ndim=1, dtype=np.float64, min_size=0)
    if obs.size and (obs.min() < lo or obs.max() > hi):
        raise InvalidInput(
            f"'x' must lie in [{_fmt(lo)}, {_fmt(hi)}] (got values from {_fmt(obs.min())} "
            f"to {_fmt(obs.max())})"
        )
    m = float(null_mean)
    bets = _bets(m, lo, hi, side, _n_bets(n_bets))
    if obs.size == 0:
        return np.zeros(0)
    excess = obs - m if side == "greater" else m - obs
    wealth = np.cumsum(np.log1p(excess[:, None] * bets[None, :]), axis=0)
    return np.asarray(logsumexp(wealth, axis=1) - math.log(bets.size), dtype=np.float64)


class BettingTest(_OnlineTest):
    """Online `betting_log_evalues`.

    >>> test = BettingTest(0.0, low=-1.0, high=1.0)
    >>> for _ in range(20):
    ...     _ = test.update(0.5)
    >>> test.rejects(alpha=0.05)
    True
    """

    __slots__ = (
        "_log_wealth",
        "alternative",
        "bets",
        "high",
        "log_evalue",
        "low",
        "n",
        "null_mean",
    )

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
        self.alternative: Sided = _alternative(alternative, ("greater", "less"))  # type: ignore[assignment]
        self.null_mean = float(null_mean)
        self.bets = _bets(self.null_mean, self.low, self.high, self.alternative, _n_bets(n_bets))
        self._log_wealth = np.zeros(self.bets.size)
        self.n = 0
        self.log_evalue = 0.0

    def update(self, x: float) -> float:
        """Add one observation in ``[low, high]``; return ``log E``."""
        value = float(x)
        if not self.low <= value <= self.high:
            raise InvalidInput(f"'x' must lie in [{_fmt(self.low)}, {_fmt(self.high)}] (got {x!r})")
        excess = value - self.null_mean if self.alternative == "greater" else self.null_mean - value
        self._log_wealth += np.log1p(excess * self.bets)
        self.n += 1
        self.log_evalue = float(logsumexp(self._log_wealth)) - math.log(self.bets.size)
        return self.log_evalue

    def __repr__(self) -> str:
        return (
            f"BettingTest(null_mean={_fmt(self.null_mean)}, alternative={self.alternative!r}, "
            f"n={self.n}, evalue={_fmt(self.evalue)})"
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

    def log_evalue(m: float, side: Sided) -> float:
        return float(
            betting_log_evalues(obs, m, low=lo, high=hi, alternative=side, n_bets=bets_n)[-1]
        )

    return _invert(log_evalue, a, lo, hi)


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
    k_arr, n_arr = np.broadcast_arrays(
        np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    )
    if not (np.isfinite(n_arr).all() and (k_arr >= 0).all() and (n_arr >= k_arr).all()):
        raise InvalidInput("'k' and 'n' must be finite counts with 0 <= k <= n")
    return k_arr, n_arr


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
    side = _alternative(alternative, ("greater", "less"))
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
    k: int, n: int, *, alpha: float = 0.05, n_bets: int = 8
) -> ConfidenceInterval:
    """The confidence sequence for a rate after ``k`` hits in ``n`` trials.

    Inverts `rate_log_evalue` as `betting_confidence_sequence` inverts the betting test
    (it is that interval for 0/1 observations, from the counts alone): every rate neither
    one-sided test rejects at ``alpha / 2``. The intervals cover the true rate at every
    ``n`` simultaneously with probability at least ``1 - alpha``.

    Args:
        k: the hits so far.
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
    hits, trials = check_int(k, "k"), check_int(n, "n")
    if hits > trials:
        raise InvalidInput(f"'k' must not exceed 'n' (got k={k!r}, n={n!r})")
    a = check_open_unit(alpha, "alpha")
    bets_n = _n_bets(n_bets)
    if trials == 0:
        return ConfidenceInterval(0.0, 1.0)

    def log_evalue(m: float, side: Sided) -> float:
        return float(rate_log_evalue(hits, trials, m, alternative=side, n_bets=bets_n))

    return _invert(log_evalue, a, 0.0, 1.0)


class RateTest(_OnlineTest):
    """Online `rate_log_evalues`: feed 0/1 outcomes one at a time with `update`.

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

    __slots__ = (
        "_hit",
        "_log_wealth",
        "_miss",
        "alternative",
        "hits",
        "log_evalue",
        "n",
        "null_rate",
    )

    def __init__(
        self, null_rate: float, *, alternative: Sided = "greater", n_bets: int = 8
    ) -> None:
        self.null_rate = check_open_unit(null_rate, "null_rate")
        self.alternative: Sided = _alternative(alternative, ("greater", "less"))  # type: ignore[assignment]
        self._hit, self._miss = _rate_factors(self.null_rate, self.alternative, _n_bets(n_bets))
        self._log_wealth = np.zeros(self._hit.size)
        self.n = 0
        self.hits = 0
        self.log_evalue = 0.0

    def update(self, hit: bool) -> float:
        """Add one outcome (True for a hit); return ``log E``."""
        self.n += 1
        self.hits += bool(hit)
        self._log_wealth += self._hit if hit else self._miss
        self.log_evalue = float(logsumexp(self._log_wealth)) - math.log(self._log_wealth.size)
        return self.log_evalue

    @property
    def rate(self) -> float:
        """The observed rate ``hits / n`` (NaN before the first outcome)."""
        return self.hits / self.n if self.n else math.nan

    def interval(self, alpha: float = 0.05) -> ConfidenceInterval:
        """`rate_confidence_sequence` of the outcomes so far."""
        return rate_confidence_sequence(
            self.hits, self.n, alpha=alpha, n_bets=self._log_wealth.size
        )

    def __repr__(self) -> str:
        return (
            f"RateTest(null_rate={_fmt(self.null_rate)}, alternative={self.alternative!r}, "
            f"n={self.n}, hits={self.hits}, evalue={_fmt(self.evalue)})"
        )


# ---------------------------------------------------------------------------- effect sizes


def _count_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    ca = as_array(a, "counts_a", ndim=1, dtype=np.float64)
    cb = as_array(b, "counts_b", ndim=1, dtype=np.float64)
    if ca.size != cb.size:
        raise InvalidInput(
            f"'counts_a' and 'counts_b' must have the same length (got {ca.size} and {cb.size})"
        )
    if (ca < 0).any() or (cb < 0).any():
        raise InvalidInput("'counts_a' and 'counts_b' must be non-negative counts")
    return ca, cb


def psi(counts_a: Any, counts_b: Any, *, smoothing: float = _PSI_SMOOTHING) -> float:
    """Population stability index between two count vectors over the same categories.

    ``PSI = sum_c (p_c - q_c) * ln(p_c / q_c)`` with ``p`` and ``q`` the proportions after
    adding ``smoothing`` to every count (so a category seen on one side only stays finite).
    It is the symmetrised Kullback-Leibler divergence; the usual reading is < 0.1 no
    significant shift, 0.1 to 0.25 moderate, > 0.25 major.

    Args:
        counts_a, counts_b: 1-D non-negative counts, same length.
        smoothing: pseudo-count added to each category (> 0).

    Returns:
        The PSI, a float >= 0 (0.0 when both vectors are empty of counts).

    >>> round(psi([50, 30, 20], [30, 30, 40], smoothing=1e-12), 4)
    0.2408
    """
    ca, cb = _count_pair(counts_a, counts_b)
    s = _positive(smoothing, "smoothing")
    if ca.sum() == 0 and cb.sum() == 0:
        return 0.0
    p = (ca + s) / (ca.sum() + s * ca.size)
    q = (cb + s) / (cb.sum() + s * cb.size)
    return float(np.sum((p - q) * np.log(p / q)))


def js_divergence(counts_a: Any, counts_b: Any) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) between two count vectors.

    Computed on the raw proportions (``0 * log 0 = 0``); equals the square of
    `scipy.spatial.distance.jensenshannon` with ``base=2``.

    >>> js_divergence([1, 0], [0, 1])
    1.0
    """
    ca, cb = _count_pair(counts_a, counts_b)
    if ca.sum() == 0 or cb.sum() == 0:
        return 0.0
    p = ca / ca.sum()
    q = cb / cb.sum()
    mid = 0.5 * (p + q)

    def kl(u: np.ndarray) -> float:
        mask = u > 0
        return float(np.sum(u[mask] * np.log2(u[mask] / mid[mask])))

    return min(1.0, max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


def _psi_rows(cand: np.ndarray, base: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Row-wise `psi` over the categories seen so far (rows: times, columns: categories)."""
    s = _PSI_SMOOTHING
    n_seen = seen.sum(axis=1, keepdims=True)
    p = np.where(seen, (cand + s) / (cand.sum(axis=1, keepdims=True) + s * n_seen), 1.0)
    q = np.where(seen, (base + s) / (base.sum(axis=1, keepdims=True) + s * n_seen), 1.0)
    return np.asarray(np.sum((p - q) * np.log(p / q), axis=1), dtype=np.float64)


def _js_rows(cand: np.ndarray, base: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        p = cand / cand.sum(axis=1, keepdims=True)
        q = base / base.sum(axis=1, keepdims=True)
        mid = 0.5 * (p + q)
        kp = np.where(p > 0, p * np.log2(p / mid), 0.0).sum(axis=1)
        kq = np.where(q > 0, q * np.log2(q / mid), 0.0).sum(axis=1)
    out = np.clip(0.5 * kp + 0.5 * kq, 0.0, 1.0)
    empty = (cand.sum(axis=1) == 0) | (base.sum(axis=1) == 0)
    return np.asarray(np.where(empty, 0.0, out), dtype=np.float64)


# ------------------------------------------------------------------------- stage-1 verdict

Decision: TypeAlias = Literal["continue", "fail", "pass"]


class StreamDecision(NamedTuple):
    """The stage-1 verdict on a stream.

    Attributes:
        decision: ``"fail"`` (a regression was detected), ``"pass"`` (the candidate served
            the planned number of requests with none detected) or ``"inconclusive"`` (the
            stream ended first).
        reasons: the tests that detected a regression: ``"errors"``, ``"latency"``,
            ``"shift"``, ``"disagreement"`` (shadow mode).
        n_requests: observations consumed when the decision was made.
        n_candidate: of those, how many the candidate served.
    """

    decision: str
    reasons: tuple[str, ...]
    n_requests: int
    n_candidate: int


@attrs.frozen
class _Config:
    """Validated settings shared by `CanaryMonitor` and the vectorized decisions."""

    fraction: float
    mode: str
    alpha: float
    max_latency_ratio: float
    clip_ratio: float
    max_psi: float | None
    max_js: float | None
    candidate_requests: int
    max_disagreement: float | None

    @classmethod
    def build(
        cls,
        *,
        fraction: Any,
        mode: Any,
        alpha: Any,
        max_latency_ratio: Any,
        clip_ratio: Any,
        max_psi: Any,
        max_js: Any,
        candidate_requests: Any,
        max_disagreement: Any,
    ) -> _Config:
        frac = check_open_unit(fraction, "fraction")
        check_choice(mode, "mode", ("split", "shadow"))
        ratio = _positive(max_latency_ratio, "max_latency_ratio")
        clip = _positive(clip_ratio, "clip_ratio")
        if ratio < 1.0:
            raise InvalidInput(f"'max_latency_ratio' must be >= 1 (got {max_latency_ratio!r})")
        if not clip > ratio:
            raise InvalidInput(
                f"'clip_ratio' must exceed 'max_latency_ratio' (got {clip_ratio!r} and "
                f"{max_latency_ratio!r})"
            )
        for name, value in (("max_psi", max_psi), ("max_js", max_js)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0
            ):
                raise InvalidInput(f"'{name}' must be a number >= 0 or None (got {value!r})")
        requests = check_int(candidate_requests, "candidate_requests", minimum=1)
        disagreement = (
            None
            if max_disagreement is None
            else check_open_unit(max_disagreement, "max_disagreement")
        )
        return cls(
            frac,
            mode,
            check_open_unit(alpha, "alpha"),
            ratio,
            clip,
            None if max_psi is None else float(max_psi),
            None if max_js is None else float(max_js),
            requests,
            disagreement,
        )

    @property
    def share(self) -> float:
        """The null share of the error test: the routing fraction, or 1/2 for pairs."""
        return self.fraction if self.mode == "split" else 0.5

    @property
    def tests_disagreement(self) -> bool:
        """True when the disagreement rate is judged (shadow mode with a limit)."""
        return self.mode == "shadow" and self.max_disagreement is not None

    @property
    def n_tests(self) -> int:
        """How many tests share ``alpha``: 3, or 4 with the disagreement test."""
        return 4 if self.tests_disagreement else 3

    @property
    def alpha_per_test(self) -> float:
        """Each test's share of ``alpha`` (Bonferroni)."""
        return self.alpha / self.n_tests

    @property
    def log_threshold(self) -> float:
        """``log(n_tests / alpha)``: each test fails at e-value ``1 / alpha_per_test``."""
        return math.log(self.n_tests / self.alpha)

    @property
    def bound(self) -> float:
        """Log-latency differences are clipped to ``[-bound, bound]``."""
        return math.log(self.clip_ratio)

    @property
    def null_log_ratio(self) -> float:
        return math.log(self.max_latency_ratio)

    def shifted(self, psi_value: float, js_value: float) -> bool:
        """True when the effect size clears the thresholds that make a shift a failure."""
        if self.max_psi is None and self.max_js is None:
            return True
        by_psi = self.max_psi is not None and psi_value > self.max_psi
        by_js = self.max_js is not None and js_value > self.max_js
        return by_psi or by_js


def _log_ratio(candidate_s: float, baseline_s: float, bound: float) -> float:
    diff = math.log(max(candidate_s, _MIN_LATENCY_S)) - math.log(max(baseline_s, _MIN_LATENCY_S))
    return min(bound, max(-bound, diff))


class CanaryMonitor:
    """The stage-1 verdict of a canary, updated after every request.

    Three anytime-valid tests run side by side (four in shadow mode), each at ``alpha / 3``
    (``alpha / 4``; Bonferroni), so the chance of a false FAIL for a candidate identical to
    the baseline is at most ``alpha`` however long the canary runs and whenever it stops:

    - **errors**: is the candidate's share of errors larger than its share of traffic
      (split mode), or are candidate-only errors more common than baseline-only errors
      among paired requests (shadow mode)? A one-sided `ShareTest`.
    - **latency**: is the mean clipped log-latency ratio of the candidate over the
      baseline above ``log(max_latency_ratio)``? A one-sided `BettingTest` on pairs: in
      split mode each successful candidate request is paired with the latest successful
      baseline request not yet paired (if any); in shadow mode with its mirror.
    - **shift**: does the predicted-class distribution differ? A `CategoricalShareTest`
      on the routing of each labelled response (split mode), or on the direction of each
      disagreeing pair of labels (shadow mode). A rejection is a failure only while the
      effect size is above ``max_psi`` (or ``max_js``); rejections of smaller shifts are
      reported but tolerated.
    - **disagreement** (shadow mode only): is the fraction of mirrored requests on which
      the two versions' predictions differ above ``max_disagreement``? A one-sided
      `RateTest`. The shift test compares distributions, so it cannot see a candidate that
      predicts another class for most requests while keeping the overall mix (a model
      trained on inverted labels of balanced classes); this test can. Split mode sends
      each request to one version only and cannot compare individual predictions.

    The decision is ``"fail"`` as soon as a test fails, ``"pass"`` once the candidate has
    served ``candidate_requests`` requests without one, and ``"continue"`` before.

    Args:
        fraction: the candidate's share of traffic (split) or of mirrored requests (shadow).
        mode: ``"split"`` or ``"shadow"``.
        alpha: the false-FAIL rate bound of the whole verdict.
        max_latency_ratio: the candidate may be this many times slower (>= 1).
        clip_ratio: log-latency ratios are clipped to ``±log(clip_ratio)``.
        max_psi, max_js: effect-size thresholds for a prediction shift (None: not used;
            both None: any significant shift fails).
        candidate_requests: how many candidate requests make a PASS.
        max_disagreement: the highest tolerated rate of differing predictions between the
            versions on mirrored requests, in (0, 1) (shadow mode; None: reported only).

    >>> monitor = CanaryMonitor(fraction=0.5, candidate_requests=3)
    >>> for arm in [True, False, True, False, True]:
    ...     _ = monitor.observe(candidate=arm, error=False, latency_s=0.01, label=0)
    >>> monitor.decision, monitor.n_candidate
    ('pass', 3)
    """

    def __init__(
        self,
        *,
        fraction: float = 0.05,
        mode: str = "split",
        alpha: float = 0.05,
        max_latency_ratio: float = 1.2,
        clip_ratio: float = 10.0,
        max_psi: float | None = 0.1,
        max_js: float | None = None,
        candidate_requests: int = 500,
        max_disagreement: float | None = 0.1,
    ) -> None:
        self.config = _Config.build(
            fraction=fraction,
            mode=mode,
            alpha=alpha,
            max_latency_ratio=max_latency_ratio,
            clip_ratio=clip_ratio,
            max_psi=max_psi,
            max_js=max_js,
            candidate_requests=candidate_requests,
            max_disagreement=max_disagreement,
        )
        cfg = self.config
        self.errors = ShareTest(cfg.share, alternative="greater")
        self.latency = BettingTest(
            cfg.null_log_ratio, low=-cfg.bound, high=cfg.bound, alternative="greater"
        )
        self.latency_within = BettingTest(
            cfg.null_log_ratio, low=-cfg.bound, high=cfg.bound, alternative="less"
        )
        self.shift = CategoricalShareTest(cfg.share)
        self.disagreement = (
            RateTest(cfg.max_disagreement)
            if cfg.tests_disagreement and cfg.max_disagreement is not None
            else None
        )
        self.n_compared = 0  # mirrored pairs whose predictions were compared
        self.n_disagreed = 0  # of those, pairs whose predictions differ
        self.n_requests = 0
        self.n_candidate = 0
        self.candidate_errors = 0
        self.baseline_errors = 0
        self.differences: list[float] = []  # clipped log-latency ratios of the pairs
        self.candidate_labels: dict[int, int] = {}
        self.baseline_labels: dict[int, int] = {}
        self.decision: Decision = "continue"
        self.reasons: tuple[str, ...] = ()
        self.shift_tolerated = False  # a significant shift smaller than the thresholds
        self._last_baseline: float | None = None

    # ------------------------------------------------------------------ observations

    def observe(
        self, *, candidate: bool, error: bool, latency_s: float | None, label: int | None
    ) -> Decision:
        """Record one split-mode request (served by the candidate or by the baseline).

        Args:
            candidate: True when the request was routed to the candidate.
            error: True when it failed (then ``latency_s`` and ``label`` are ignored).
            latency_s: its latency.
            label: its predicted class, or None when the output has none.

        Returns:
            The decision after this request.
        """
        if self.config.mode != "split":
            raise InvalidInput("observe() is for mode='split'; use observe_pair() in shadow mode")
        if self.decision != "continue":
            return self.decision
        self.n_requests += 1
        self.n_candidate += bool(candidate)
        if error:
            if candidate:
                self.candidate_errors += 1
            else:
                self.baseline_errors += 1
            self.errors.update(bool(candidate))
        else:
            if latency_s is not None:
                if candidate:
                    if self._last_baseline is not None:
                        self._add_difference(
                            _log_ratio(latency_s, self._last_baseline, self.config.bound)
                        )
                        self._last_baseline = None
                else:
                    self._last_baseline = float(latency_s)
            if label is not None:
                counts = self.candidate_labels if candidate else self.baseline_labels
                counts[int(label)] = counts.get(int(label), 0) + 1
                self.shift.update(int(label), bool(candidate))
        return self._decide()

    def observe_pair(
        self,
        *,
        candidate_error: bool,
        baseline_error: bool,
        candidate_latency_s: float | None,
        baseline_latency_s: float | None,
        candidate_label: int | None,
        baseline_label: int | None,
        disagree: bool | None = None,
    ) -> Decision:
        """Record one shadow-mode request, sent to both the candidate and the baseline.

        Args:
            candidate_error, baseline_error: whether each version failed the request.
            candidate_latency_s, baseline_latency_s: their latencies.
            candidate_label, baseline_label: their predicted classes (None: no class).
            disagree: whether the two predictions differ; None: they differ when both
                labels are known and unequal (pass it to compare outputs otherwise, e.g.
                scalar scores within a tolerance). Ignored unless both versions succeeded.

        Returns:
            The decision after this request.
        """
        if self.config.mode != "shadow":
            raise InvalidInput("observe_pair() is for mode='shadow'; use observe() in split mode")
        if self.decision != "continue":
            return self.decision
        self.n_requests += 1
        self.n_candidate += 1
        self.candidate_errors += bool(candidate_error)
        self.baseline_errors += bool(baseline_error)
        if bool(candidate_error) != bool(baseline_error):
            self.errors.update(bool(candidate_error))
        if not candidate_error and not baseline_error:
            if candidate_latency_s is not None and baseline_latency_s is not None:
                self._add_difference(
                    _log_ratio(candidate_latency_s, baseline_latency_s, self.config.bound)
                )
            if candidate_label is not None and baseline_label is not None:
                c, b = int(candidate_label), int(baseline_label)
                self.candidate_labels[c] = self.candidate_labels.get(c, 0) + 1
                self.baseline_labels[b] = self.baseline_labels.get(b, 0) + 1
                if c != b:
                    self.shift.update(_pair_code(c, b), c < b)
                if disagree is None:
                    disagree = c != b
            if disagree is not None:
                self.n_compared += 1
                self.n_disagreed += bool(disagree)
                if self.disagreement is not None:
                    self.disagreement.update(bool(disagree))
        return self._decide()

    def _add_difference(self, value: float) -> None:
        self.differences.append(value)
        self.latency.update(value)
        self.latency_within.update(value)

    # ---------------------------------------------------------------------- verdict

    def _decide(self) -> Decision:
        threshold = self.config.log_threshold
        reasons = []
        if self.errors.log_evalue >= threshold:
            reasons.append("errors")
        if self.latency.log_evalue >= threshold:
            reasons.append("latency")
        if self.shift.log_evalue >= threshold:
            if self.config.shifted(self.psi, self.js):
                reasons.append("shift")
            else:
                self.shift_tolerated = True
        if self.disagreement is not None and self.disagreement.log_evalue >= threshold:
            reasons.append("disagreement")
        if reasons:
            self.decision, self.reasons = "fail", tuple(reasons)
        elif self.n_candidate >= self.config.candidate_requests:
            self.decision = "pass"
        return self.decision

    def _label_counts(self) -> tuple[np.ndarray, np.ndarray]:
        keys = sorted(set(self.candidate_labels) | set(self.baseline_labels))
        cand = np.array([self.candidate_labels.get(k, 0) for k in keys], dtype=np.float64)
        base = np.array([self.baseline_labels.get(k, 0) for k in keys], dtype=np.float64)
        return cand, base

    @property
    def psi(self) -> float:
        """PSI between the candidate's and the baseline's predicted classes so far."""
        cand, base = self._label_counts()
        return psi(cand, base) if cand.size else 0.0

    @property
    def js(self) -> float:
        """Jensen-Shannon divergence (base 2) between the two class distributions so far."""
        cand, base = self._label_counts()
        return js_divergence(cand, base) if cand.size else 0.0

    @property
    def latency_ratio(self) -> float:
        """The candidate's latency over the baseline's: ``exp`` of the mean clipped log ratio.

        NaN before the first pair.
        """
        if not self.differences:
            return math.nan
        return math.exp(math.fsum(self.differences) / len(self.differences))

    def latency_ratio_interval(self) -> ConfidenceInterval:
        """The confidence sequence for the latency ratio at level ``alpha_per_test``."""
        bound = self.config.bound
        cs = betting_confidence_sequence(
            self.differences, low=-bound, high=bound, alpha=self.config.alpha_per_test
        )
        return ConfidenceInterval(math.exp(cs.low), math.exp(cs.high))

    @property
    def disagreement_rate(self) -> float:
        """The fraction of compared mirrored pairs whose predictions differ (NaN before one)."""
        return self.n_disagreed / self.n_compared if self.n_compared else math.nan

    def disagreement_interval(self) -> ConfidenceInterval:
        """The confidence sequence for the disagreement rate.

        Each end inverts a one-sided test at ``alpha_per_test`` (together a ``1 - 2 *
        alpha_per_test`` confidence sequence), so the lower end is above
        ``max_disagreement`` exactly when the disagreement test rejects.
        """
        return rate_confidence_sequence(
            self.n_disagreed, self.n_compared, alpha=2.0 * self.config.alpha_per_test
        )

    def evidence(self) -> dict[str, Any]:
        """Everything the verdict rests on, as JSON-safe Python values."""
        cfg = self.config
        cand, base = self._label_counts()
        keys = sorted(set(self.candidate_labels) | set(self.baseline_labels))
        interval = self.latency_ratio_interval()
        evidence: dict[str, Any] = {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "mode": cfg.mode,
            "alpha": cfg.alpha,
            "tests": cfg.n_tests,
            "alpha_per_test": cfg.alpha_per_test,
            "evalue_threshold": cfg.n_tests / cfg.alpha,
            "requests": self.n_requests,
            "candidate_requests": self.n_candidate,
            "candidate_errors": self.candidate_errors,
            "baseline_errors": self.baseline_errors,
            "errors_evalue": self.errors.evalue,
            "latency_pairs": len(self.differences),
            "latency_ratio": self.latency_ratio,
            "latency_ratio_interval": [interval.low, interval.high],
            "latency_evalue": self.latency.evalue,
            "latency_within_evalue": self.latency_within.evalue,
            "max_latency_ratio": cfg.max_latency_ratio,
            "shift_evalue": self.shift.evalue,
            "shift_tolerated": self.shift_tolerated,
            "psi": self.psi,
            "js": self.js,
            "classes": {str(k): [int(c), int(b)] for k, c, b in zip(keys, cand, base, strict=True)},
        }
        if cfg.mode == "shadow":
            low, high = self.disagreement_interval()
            evidence.update(
                {
                    "max_disagreement": cfg.max_disagreement,
                    "disagreement_pairs": self.n_compared,
                    "disagreements": self.n_disagreed,
                    "disagreement_rate": self.disagreement_rate,
                    "disagreement_interval": [low, high],
                    "disagreement_evalue": (
                        None if self.disagreement is None else self.disagreement.evalue
                    ),
                }
            )
        return evidence

    def __repr__(self) -> str:
        return (
            f"CanaryMonitor(decision={self.decision!r}, requests={self.n_requests}, "
            f"candidate={self.n_candidate})"
        )


def _pair_code(a: int, b: int) -> int:
    """One integer per unordered pair of non-negative labels (Cantor pairing)."""
    low, high = (a, b) if a < b else (b, a)
    return (low + high) * (low + high + 1) // 2 + high


# -------------------------------------------------------------------- vectorized verdicts


def _at_times(event_times: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Spread per-event values over ``n`` request times (0 before the first event)."""
    counts = np.zeros(n, dtype=np.intp)
    np.add.at(counts, event_times, 1)
    index = np.cumsum(counts)
    return np.asarray(np.r_[0.0, values][index], dtype=np.float64)


def _labels(value: Any, name: str, n: int) -> np.ndarray:
    array = as_array(value, name, ndim=1, min_size=0)
    if array.dtype.kind not in "iu":
        raise InvalidInput(f"'{name}' must be integers, -1 for none (got {describe(array)})")
    if array.size != n:
        raise InvalidInput(f"'{name}' must have {n} entries (got {array.size})")
    return array.astype(np.int64)


def _latencies(value: Any, name: str, n: int) -> np.ndarray:
    array = as_array(value, name, ndim=1, dtype=np.float64, finite=False, min_size=0)
    if array.size != n:
        raise InvalidInput(f"'{name}' must have {n} entries (got {array.size})")
    return np.asarray(np.log(np.maximum(array, _MIN_LATENCY_S)), dtype=np.float64)


def _shift_effects(
    times: np.ndarray, cand_labels: np.ndarray, base_labels: np.ndarray, n: int, cfg: _Config
) -> np.ndarray:
    """Whether the effect-size gate is open at each request time.

    ``cand_labels`` / ``base_labels`` hold, per labelled event at ``times``, the class that
    event adds to each side (-1 for none).
    """
    if not times.size:
        return np.zeros(n, dtype=bool)
    present = np.r_[cand_labels[cand_labels >= 0], base_labels[base_labels >= 0]]
    classes = np.unique(present)
    width = classes.size

    def onehot(labels: np.ndarray) -> np.ndarray:
        out = np.zeros((labels.size, width))
        rows = np.flatnonzero(labels >= 0)
        out[rows, np.searchsorted(classes, labels[rows])] = 1.0
        return out

    cand = np.cumsum(onehot(cand_labels), axis=0)
    base = np.cumsum(onehot(base_labels), axis=0)
    seen = (cand + base) > 0
    psi_values = _psi_rows(cand, base, seen)
    js_values = _js_rows(cand, base)
    if cfg.max_psi is None and cfg.max_js is None:
        gate = np.ones(times.size, dtype=bool)
    else:
        gate = np.zeros(times.size, dtype=bool)
        if cfg.max_psi is not None:
            gate |= psi_values > cfg.max_psi
        if cfg.max_js is not None:
            gate |= js_values > cfg.max_js
    # The gate changes only at labelled events; between them it keeps its last value.
    return _at_times(times, gate.astype(np.float64), n) > 0.5


def _decide_stream(
    log_errors: np.ndarray,
    log_latency: np.ndarray,
    log_shift: np.ndarray,
    gate: np.ndarray,
    log_disagreement: np.ndarray,
    n_candidate: np.ndarray,
    cfg: _Config,
) -> StreamDecision:
    threshold = cfg.log_threshold
    fails = np.stack(
        [
            log_errors >= threshold,
            log_latency >= threshold,
            (log_shift >= threshold) & gate,
            log_disagreement >= threshold,
        ]
    )
    any_fail = fails.any(axis=0)
    n = any_fail.size
    first_fail = int(np.argmax(any_fail)) if any_fail.any() else n
    reached = n_candidate >= cfg.candidate_requests
    first_pass = int(np.argmax(reached)) if reached.any() else n
    if first_fail < n and first_fail <= first_pass:
        names = ("errors", "latency", "shift", "disagreement")
        reasons = tuple(name for name, hit in zip(names, fails[:, first_fail], strict=True) if hit)
        return StreamDecision("fail", reasons, first_fail + 1, int(n_candidate[first_fail]))
    if first_pass < n:
        return StreamDecision("pass", (), first_pass + 1, int(n_candidate[first_pass]))
    return StreamDecision("inconclusive", (), n, int(n_candidate[-1]) if n else 0)


def split_decision(
    candidate: Any,
    error: Any,
    latency_s: Any,
    label: Any,
    **settings: Any,
) -> StreamDecision:
    """The `CanaryMonitor` verdict on a whole split-mode stream, vectorized.

    Gives the decision `CanaryMonitor.observe` reaches when fed the same requests one at
    a time, in a handful of numpy passes: for simulations over many streams.

    Args:
        candidate: 1-D booleans, True for requests routed to the candidate.
        error: 1-D booleans, True for failed requests.
        latency_s: 1-D latencies (ignored where ``error``; may be NaN there).
        label: 1-D integer predicted classes, -1 where there is none.
        **settings: `CanaryMonitor`'s keyword arguments (``mode`` must be ``"split"``).

    Returns:
        A `StreamDecision`.

    >>> import numpy as np
    >>> arm = np.arange(40) % 2 == 0
    >>> split_decision(arm, arm, np.ones(40), np.zeros(40, int), fraction=0.5).decision
    'fail'
    """
    cfg = _Config.build(**{**_DEFAULTS, **settings})
    if cfg.mode != "split":
        raise InvalidInput("split_decision() needs mode='split'")
    arm = _bool_array(candidate, "candidate")
    n = arm.size
    err = _bool_array(error, "error")
    check_same_length(candidate=arm, error=err)
    log_lat = _latencies(latency_s, "latency_s", n)
    labels = _labels(label, "label", n)
    n_candidate = np.cumsum(arm)

    # errors: the source of each error
    err_times = np.flatnonzero(err)
    log_errors = _at_times(
        err_times, share_log_evalues(arm[err_times], cfg.share, alternative="greater"), n
    )

    # latency: each successful candidate request with the latest unpaired baseline success
    ok = ~err
    cand_ok = np.flatnonzero(arm & ok)
    base_ok = np.flatnonzero(~arm & ok)
    prev = np.searchsorted(base_ok, cand_ok) - 1
    paired = prev >= 0
    paired[1:] &= prev[1:] != prev[:-1]
    pair_times = cand_ok[paired]
    diffs = np.clip(log_lat[pair_times] - log_lat[base_ok[prev[paired]]], -cfg.bound, cfg.bound)
    log_latency = _at_times(
        pair_times,
        betting_log_evalues(
            diffs, cfg.null_log_ratio, low=-cfg.bound, high=cfg.bound, alternative="greater"
        ),
        n,
    )

    # shift: the routing of each labelled success
    label_times = np.flatnonzero(ok & (labels >= 0))
    codes = labels[label_times]
    hits = arm[label_times]
    log_shift = _at_times(label_times, categorical_share_log_evalues(codes, hits, cfg.share), n)
    gate = _shift_effects(label_times, np.where(hits, codes, -1), np.where(hits, -1, codes), n, cfg)
    no_test = np.zeros(n)
    return _decide_stream(log_errors, log_latency, log_shift, gate, no_test, n_candidate, cfg)


def shadow_decision(
    candidate_error: Any,
    baseline_error: Any,
    candidate_latency_s: Any,
    baseline_latency_s: Any,
    candidate_label: Any,
    baseline_label: Any,
    disagree: Any = None,
    **settings: Any,
) -> StreamDecision:
    """The `CanaryMonitor` verdict on a whole shadow-mode stream (one row per mirrored request).

    Args:
        candidate_error, baseline_error: 1-D booleans per mirrored request.
        candidate_latency_s, baseline_latency_s: 1-D latencies.
        candidate_label, baseline_label: 1-D integer classes, -1 where there is none.
        disagree: whether the two predictions differ, as `CanaryMonitor.observe_pair`
            takes it: 1-D integers per request, 1 where they differ, 0 where they agree,
            -1 where it is not given (booleans: given everywhere); where it is not given,
            and when ``disagree`` is None, the labels decide (they differ where both are
            known and unequal).
        **settings: `CanaryMonitor`'s keyword arguments (``mode`` defaults to ``"shadow"``).

    Returns:
        A `StreamDecision`.

    >>> import numpy as np
    >>> ok, lat, lab = np.zeros(30, bool), np.ones(30), np.zeros(30, int)
    >>> shadow_decision(ok, ok, lat, lat, lab, lab, candidate_requests=30).decision
    'pass'
    """
    cfg = _Config.build(**{**_DEFAULTS, "mode": "shadow", **settings})
    if cfg.mode != "shadow":
        raise InvalidInput("shadow_decision() needs mode='shadow'")
    c_err = _bool_array(candidate_error, "candidate_error")
    n = c_err.size
    b_err = _bool_array(baseline_error, "baseline_error")
    check_same_length(candidate_error=c_err, baseline_error=b_err)
    c_lat = _latencies(candidate_latency_s, "candidate_latency_s", n)
    b_lat = _latencies(baseline_latency_s, "baseline_latency_s", n)
    c_lab = _labels(candidate_label, "candidate_label", n)
    b_lab = _labels(baseline_label, "baseline_label", n)
    n_candidate = np.arange(1, n + 1)

    disc = np.flatnonzero(c_err != b_err)
    log_errors = _at_times(disc, share_log_evalues(c_err[disc], 0.5, alternative="greater"), n)

    both_ok = ~c_err & ~b_err
    pair_times = np.flatnonzero(both_ok)
    diffs = np.clip(c_lat[pair_times] - b_lat[pair_times], -cfg.bound, cfg.bound)
    log_latency = _at_times(
        pair_times,
        betting_log_evalues(
            diffs, cfg.null_log_ratio, low=-cfg.bound, high=cfg.bound, alternative="greater"
        ),
        n,
    )

    labelled = np.flatnonzero(both_ok & (c_lab >= 0) & (b_lab >= 0))
    unequal = labelled[c_lab[labelled] != b_lab[labelled]]
    low = np.minimum(c_lab[unequal], b_lab[unequal])
    high = np.maximum(c_lab[unequal], b_lab[unequal])
    codes = (low + high) * (low + high + 1) // 2 + high
    log_shift = _at_times(
        unequal,
        categorical_share_log_evalues(codes, c_lab[unequal] < b_lab[unequal], 0.5),
        n,
    )
    gate = _shift_effects(labelled, c_lab[labelled], b_lab[labelled], n, cfg)

    flags = np.full(n, -1) if disagree is None else _flags(disagree, "disagree", n)
    given = flags >= 0
    compared = np.flatnonzero(both_ok & (given | ((c_lab >= 0) & (b_lab >= 0))))
    differ = np.where(given[compared], flags[compared] == 1, c_lab[compared] != b_lab[compared])
    log_disagreement = (
        _at_times(compared, rate_log_evalues(differ, cfg.max_disagreement), n)
        if cfg.tests_disagreement and cfg.max_disagreement is not None
        else np.zeros(n)
    )
    return _decide_stream(
        log_errors, log_latency, log_shift, gate, log_disagreement, n_candidate, cfg
    )


def _flags(value: Any, name: str, n: int) -> np.ndarray:
    array = as_array(value, name, ndim=1, min_size=0)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu" or not np.isin(array, (-1, 0, 1)).all():
        raise InvalidInput(f"'{name}' must be booleans or -1/0/1 (got {describe(array)})")
    if array.size != n:
        raise InvalidInput(f"'{name}' must have {n} entries (got {array.size})")
    return array.astype(np.int64)


_DEFAULTS: dict[str, Any] = {
    "fraction": 0.05,
    "mode": "split",
    "alpha": 0.05,
    "max_latency_ratio": 1.2,
    "clip_ratio": 10.0,
    "max_psi": 0.1,
    "max_js": None,
    "candidate_requests": 500,
    "max_disagreement": 0.1,
}
