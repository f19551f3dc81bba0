"""Share tests: is the candidate's share of some events larger than its share of traffic?

A Beta mixture of binomial likelihood ratios on which arm each event came from,
conditioned on the routing fraction (Lindon & Malek, 2022): `beta_binomial_log_evalue`
(closed form), `share_log_evalues` (a stream), `ShareTest` (online); and per category
(`categorical_share_log_evalues`, `CategoricalShareTest`: does the share depend on the
predicted class?). Public through `mlchecks.stats.sequential`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import betainc, betaincc, betaln

from mlchecks._text import fmt
from mlchecks._validate import as_array, check_open_unit, check_same_length, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._evalue import (
    Alternative,
    CountTest,
    OnlineTest,
    bool_array,
    check_alternative,
    positive,
)

__all__ = [
    "CategoricalShareTest",
    "ShareTest",
    "beta_binomial_log_evalue",
    "categorical_share_log_evalues",
    "share_log_evalues",
]


def _prior(share: float, a: float | None, b: float | None) -> tuple[float, float]:
    """The Beta prior of the share tests: ``Beta(1, (1 - share) / share)`` by default.

    Its mean is the null share, and its spread is about the null share itself, so the
    mixture has power against the candidate's rate being a small multiple of the baseline's.
    """
    a_ = 1.0 if a is None else positive(a, "a")
    b_ = (1.0 - share) / share if b is None else positive(b, "b")
    return a_, b_


def beta_binomial_log_evalue(
    k: Any,
    n: Any,
    share: float,
    *,
    alternative: Alternative = "greater",
    a: float | None = None,
    b: float | None = None,
    sparse: bool = False,
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
        sparse: average the e-value with that of a uniform prior, ``Beta(1, 1)`` (an
            average of e-values is one): the default prior bets on the candidate's share
            being a small multiple of ``share``, the uniform one on it being far larger,
            which is what a few events, nearly all from the candidate, look like (a
            candidate failing 0.5% of requests beside a baseline that never fails). It
            costs at most ``log 2`` of evidence against small multiples.

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
    >>> round(float(np.exp(beta_binomial_log_evalue(3, 3, 0.05, sparse=True))), 1)
    1059.4
    """
    if sparse:
        one = beta_binomial_log_evalue(k, n, share, alternative=alternative, a=a, b=b)
        flat = beta_binomial_log_evalue(k, n, share, alternative=alternative, a=1.0, b=1.0)
        return np.asarray(np.logaddexp(one, flat) - math.log(2.0), dtype=np.float64)
    p0 = check_open_unit(share, "share")
    side = check_alternative(alternative)
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
    sparse: bool = False,
) -> np.ndarray:
    """The path of `beta_binomial_log_evalue` over a stream of events.

    Args:
        hits: 1-D booleans, one per event in arrival order: True when the event came from
            the candidate.
        share: the null probability of a hit (the candidate's share of traffic).
        alternative, a, b, sparse: as in `beta_binomial_log_evalue`.

    Returns:
        ``log E`` after each event (float64, same length as ``hits``).

    >>> share_log_evalues([True, False], 0.5, alternative="two-sided").round(4)
    array([ 0.    , -0.4055])
    """
    h = bool_array(hits, "hits")
    n = np.arange(1, h.size + 1)
    return beta_binomial_log_evalue(
        np.cumsum(h), n, share, alternative=alternative, a=a, b=b, sparse=sparse
    )


def _log(x: float) -> float:
    """``np.log`` of one float with `math`: ``-inf`` at 0, NaN below."""
    return math.log(x) if x > 0.0 else -math.inf if x == 0.0 else math.nan


def _logaddexp(x: float, y: float) -> float:
    """``np.logaddexp`` of two floats with `math`, in numpy's steps (``npy_logaddexp``)."""
    if x == y:  # infinities of the same sign included
        return x + math.log(2.0)
    tmp = x - y
    if tmp > 0:
        return x + math.log1p(math.exp(-tmp))
    if tmp <= 0:
        return y + math.log1p(math.exp(tmp))
    return tmp  # NaN


class _Mixture:
    """`beta_binomial_log_evalue` of one prior for one count, with floats.

    The terms that do not depend on the counts are computed once; the others are the
    same `scipy.special` functions on the same floats (a scalar call costs a µs, an array
    call with its checks a hundred), so the online test's log e-value is the array
    version's to the last bit of a `math.log`.
    """

    __slots__ = ("a", "b", "base", "greater", "less", "log_p", "log_q", "share", "tail")

    def __init__(self, share: float, side: str, a: float, b: float) -> None:
        self.share, self.a, self.b = share, a, b
        self.greater, self.less = side == "greater", side == "less"
        self.log_p, self.log_q = math.log(share), math.log1p(-share)
        self.base = float(betaln(a, b))
        self.tail = 0.0
        if self.greater:
            self.tail = math.log(float(betaincc(a, b, share)))
        elif self.less:
            self.tail = math.log(float(betainc(a, b, share)))

    def log_evalue(self, k: float, n: float) -> float:
        a_k, b_k = self.a + k, self.b + n - k
        log_e = float(betaln(a_k, b_k)) - self.base - k * self.log_p - (n - k) * self.log_q
        if self.greater:
            log_e += _log(float(betaincc(a_k, b_k, self.share))) - self.tail
        elif self.less:
            log_e += _log(float(betainc(a_k, b_k, self.share))) - self.tail
        return log_e


class ShareTest(CountTest):
    """Online `share_log_evalues`: feed events one at a time with `update`.

    Each event costs a few scalar `scipy.special` calls (`betaln` and the incomplete
    beta, twice with ``sparse``): `beta_binomial_log_evalue` of the counts, to the last
    bit of a logarithm.

    Args:
        share: the null probability that an event is a hit.
        alternative, a, b, sparse: as in `beta_binomial_log_evalue`.

    >>> test = ShareTest(0.05)
    >>> for _ in range(6):
    ...     _ = test.update(True)
    >>> test.n, test.hits, test.rejects(alpha=0.05)
    (6, 6, True)
    """

    __slots__ = ("_mixtures", "a", "b", "share", "sparse")

    def __init__(
        self,
        share: float,
        *,
        alternative: Alternative = "greater",
        a: float | None = None,
        b: float | None = None,
        sparse: bool = False,
    ) -> None:
        super().__init__(check_alternative(alternative))
        self.share = check_open_unit(share, "share")
        self.a, self.b = _prior(self.share, a, b)
        self.sparse = bool(sparse)
        self._mixtures = [_Mixture(self.share, self.alternative, self.a, self.b)]
        if self.sparse:  # and the uniform prior's, averaged
            self._mixtures.append(_Mixture(self.share, self.alternative, 1.0, 1.0))

    def _next_log_evalue(self, hit: bool) -> float:
        k, n = float(self.hits), float(self.n)
        if not self.sparse:
            return self._mixtures[0].log_evalue(k, n)
        one, flat = (m.log_evalue(k, n) for m in self._mixtures)
        return _logaddexp(one, flat) - math.log(2.0)

    def _settings(self) -> str:
        return f"share={self.share}" + (", sparse=True" if self.sparse else "")


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
    h = bool_array(hits, "hits")
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


class CategoricalShareTest(OnlineTest):
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

    def __repr__(self) -> str:
        return f"CategoricalShareTest(share={self.share}, n={self.n}, evalue={fmt(self.evalue)})"
