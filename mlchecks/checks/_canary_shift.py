"""The canary's size gate: is a prediction shift shown larger than ``max_psi``/``max_js``?

A new model *should* predict a little differently, and with enough traffic any difference
is significant; the gate asks whether the effect size itself is shown above a limit. The
plug-in PSI of small samples is biased upward (about ``(k - 1) / n_eff``), so the gate is a
test on the true effect size: ``n_eff * PSI`` is close to a noncentral chi-square with
``k - 1`` degrees of freedom and noncentrality ``n_eff`` times the true PSI.
"""

from __future__ import annotations

import bisect
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize
from scipy.stats import chi2, ncx2

from mlchecks.stats.sequential import PSI_SMOOTHING

__all__ = ["JS_SCALE", "ClassCounts", "psi_exceeds", "shift_exceeds", "shift_interval"]


#: ``n_eff * JS_SCALE * JS`` (base 2) is on the scale of ``n_eff * PSI``: both are close to
#: the chi-square divergence, PSI to it and JS (in nats) to an eighth of it.
JS_SCALE = 8.0 * math.log(2.0)


def _shift_statistic(
    candidate: Any, baseline: Any, measure: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n_eff * effect, degrees of freedom, n_eff)`` of count rows (vectorized over rows).

    ``n_eff = n_c n_b / (n_c + n_b)``; the degrees of freedom are the classes seen in either
    arm, minus one. For two samples from the same distribution ``n_eff * PSI`` is close to
    chi-square with those degrees of freedom (the upward bias of the plug-in PSI is their
    number over ``n_eff``), and for a true PSI ``d`` it is close to noncentral chi-square
    with noncentrality ``n_eff * d``.
    """
    c = np.atleast_2d(np.asarray(candidate, dtype=np.float64))
    b = np.atleast_2d(np.asarray(baseline, dtype=np.float64))
    n_c, n_b = c.sum(axis=-1), b.sum(axis=-1)
    seen = (c + b) > 0
    k = seen.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where((n_c > 0) & (n_b > 0), n_c * n_b / (n_c + n_b), 0.0)
        if measure == "psi":
            s = PSI_SMOOTHING
            p = np.where(seen, (c + s) / (n_c + s * k)[..., None], 1.0)
            q = np.where(seen, (b + s) / (n_b + s * k)[..., None], 1.0)
            effect = np.sum((p - q) * np.log(p / q), axis=-1)
        else:
            p, q = c / n_c[..., None], b / n_b[..., None]
            m = 0.5 * (p + q)
            kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
            kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1)
            effect = JS_SCALE * np.clip(0.5 * (kl_p + kl_q) / math.log(2.0), 0.0, 1.0)
    stat = np.nan_to_num(n_eff * effect)
    return stat, np.maximum(k - 1, 0).astype(np.float64), n_eff


def _sum(values: list[float]) -> float:
    """``np.sum`` of a few floats in numpy's order (sequential below 8, pairwise blocks of 8)."""
    if len(values) < 8:
        return sum(values)
    r = values[:8]
    cut = len(values) - len(values) % 8
    for i in range(8, cut, 8):
        r = [a + b for a, b in zip(r, values[i : i + 8], strict=True)]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for v in values[cut:]:
        total += v
    return total


def _floats(counts: Any) -> list[float] | None:
    """``counts`` as a list of floats when it is one vector of numbers, else None."""
    if isinstance(counts, np.ndarray):
        return counts.astype(np.float64).tolist() if counts.ndim == 1 else None
    if not isinstance(counts, list | tuple):
        return None
    try:
        return [float(c) for c in counts]
    except TypeError:  # rows of counts
        return None


def _shift_statistic_1d(
    candidate: list[float], baseline: list[float], measure: str
) -> tuple[float, float, float]:
    """`_shift_statistic` of one pair of count vectors, with floats.

    The canary looks at the size gate after every request once the shift test has
    rejected: a dozen numpy calls on three classes cost ~30 µs, these loops a few.
    """
    n_c, n_b = _sum(candidate), _sum(baseline)
    seen = [c + b > 0 for c, b in zip(candidate, baseline, strict=True)]
    k = sum(seen)
    df = float(max(k - 1, 0))
    if not (n_c > 0 and n_b > 0):
        return 0.0, df, 0.0
    n_eff = n_c * n_b / (n_c + n_b)
    log = math.log
    if measure == "psi":
        s = PSI_SMOOTHING
        den_c, den_b = n_c + s * k, n_b + s * k
        terms = []
        for c, b, on in zip(candidate, baseline, seen, strict=True):
            p, q = ((c + s) / den_c, (b + s) / den_b) if on else (1.0, 1.0)
            terms.append((p - q) * log(p / q))
        effect = _sum(terms)
    else:
        kl_p, kl_q = [], []
        for c, b in zip(candidate, baseline, strict=True):
            p, q = c / n_c, b / n_b
            m = 0.5 * (p + q)
            kl_p.append(p * log(p / m) if p > 0 else 0.0)
            kl_q.append(q * log(q / m) if q > 0 else 0.0)
        js = 0.5 * (_sum(kl_p) + _sum(kl_q)) / math.log(2.0)
        effect = JS_SCALE * min(1.0, max(0.0, js))
    stat = n_eff * effect
    return (0.0 if math.isnan(stat) else min(stat, sys.float_info.max)), df, n_eff


def psi_exceeds(
    candidate: list[float],
    baseline: list[float],
    totals: Sequence[float],
    limit: float,
    alpha: float,
) -> bool:
    """`shift_exceeds` for the PSI of one pair of count vectors whose classes were all seen.

    The canary's size gate after every request once the shift test has rejected: the same
    floating-point steps as `shift_exceeds`, without its conversions, given each vector's
    total (``_sum`` of integer counts, which is exact).

    >>> psi_exceeds([1500.0, 1000.0], [1000.0, 1500.0], (2500.0, 2500.0), 0.1, 0.01)
    True
    """
    n_c, n_b = totals
    k = len(candidate)
    df = float(max(k - 1, 0))
    stat = n_eff = 0.0
    if n_c > 0 and n_b > 0:
        n_eff = n_c * n_b / (n_c + n_b)
        s = PSI_SMOOTHING
        den_c, den_b = n_c + s * k, n_b + s * k
        log = math.log
        terms = []
        for c, b in zip(candidate, baseline, strict=True):
            p, q = (c + s) / den_c, (b + s) / den_b
            terms.append((p - q) * log(p / q))
        stat = n_eff * _sum(terms)
        stat = 0.0 if math.isnan(stat) else min(stat, sys.float_info.max)
    null = max(n_eff * limit, 1e-12)
    # At or below its mean a noncentral chi-square's tail is above 1/4: no test needed.
    if not (df > 0 and (stat > df + null or alpha >= 0.25)):
        return False
    return bool(float(ncx2.sf(stat, df, null)) <= alpha)


class ClassCounts:
    """Each version's counts of predicted classes, as float vectors in class order.

    What the size gate reads after every request, kept up to date one label at a time (a
    new class, rare, is inserted in order).

    >>> counts = ClassCounts()
    >>> counts.add(2, 0); counts.add(0, 1); counts.add(2, 1)
    >>> counts.classes, counts.counts, counts.totals
    ([0, 2], ([0.0, 1.0], [1.0, 1.0]), [1.0, 2.0])
    """

    __slots__ = ("_index", "classes", "counts", "totals")

    def __init__(self) -> None:
        self.classes: list[int] = []
        self.counts: tuple[list[float], list[float]] = ([], [])  # (candidate, baseline)
        self.totals = [0.0, 0.0]
        self._index: dict[int, int] = {}

    def add(self, label: int, arm: int) -> None:
        """Count one ``label`` of ``arm`` (0: the candidate, 1: the baseline)."""
        i = self._index.get(label)
        if i is None:
            i = self._insert(label)
        self.counts[arm][i] += 1.0
        self.totals[arm] += 1.0

    def _insert(self, label: int) -> int:
        i = bisect.bisect(self.classes, label)
        self.classes.insert(i, label)
        for counts in self.counts:
            counts.insert(i, 0.0)
        self._index = {c: j for j, c in enumerate(self.classes)}
        return i

    def as_dict(self, arm: int) -> dict[int, int]:
        """One version's counts by class (the classes it predicted)."""
        return {c: int(n) for c, n in zip(self.classes, self.counts[arm], strict=True) if n}


def shift_exceeds(
    candidate: Any, baseline: Any, limit: float, alpha: float, *, measure: str = "psi"
) -> Any:
    """Whether the counts show the true PSI (or JS) above ``limit``, at level ``alpha``.

    Rejects "effect <= limit" when ``P(X >= n_eff * estimate) <= alpha`` for ``X``
    noncentral chi-square with noncentrality ``n_eff * limit`` (``limit * JS_SCALE`` for
    JS): a one-sided test on the effect size itself, so the plug-in estimate's upward bias
    at small samples (about ``(k - 1) / n_eff``) is accounted for.

    Args:
        candidate, baseline: class counts (1-D, or rows of counts: vectorized).
        limit: the effect-size limit (``max_psi`` or ``max_js``).
        alpha: the level.
        measure: ``"psi"`` or ``"js"``.

    Returns:
        A bool (1-D input) or an array of bools, one per row.

    >>> bool(shift_exceeds([300, 200], [200, 300], 0.1, 0.01))  # PSI 0.16 on 500 a side
    False
    >>> bool(shift_exceeds([1500, 1000], [1000, 1500], 0.1, 0.01))
    True
    """
    scale = JS_SCALE if measure == "js" else 1.0
    pair = _floats(candidate), _floats(baseline)
    if pair[0] is not None and pair[1] is not None:  # one pair of vectors: floats, no arrays
        stat_1, df_1, n_eff_1 = _shift_statistic_1d(pair[0], pair[1], measure)
        null_1 = max(n_eff_1 * limit * scale, 1e-12)
        # At or below its mean a noncentral chi-square's tail is above 1/4: no test needed.
        if not (df_1 > 0 and (stat_1 > df_1 + null_1 or alpha >= 0.25)):
            return False
        return bool(float(ncx2.sf(stat_1, df_1, null_1)) <= alpha)
    stat, df, n_eff = _shift_statistic(candidate, baseline, measure)
    null = np.maximum(n_eff * limit * scale, 1e-12)
    # At or below its mean a noncentral chi-square's tail is above 1/4: no test needed.
    out = (df > 0) & (stat > df + null) if alpha < 0.25 else df > 0
    if out.any():
        tail = ncx2.sf(stat[out], df[out], null[out])
        out[out] = tail <= alpha
    return bool(out[0]) if np.ndim(candidate) == 1 else out


def shift_interval(
    candidate: Any, baseline: Any, alpha: float, *, measure: str = "psi"
) -> tuple[float, float, float]:
    """``(bias-corrected estimate, low, high)`` of the true PSI (or JS) between two counts.

    The estimate is ``max(0, stat - df) / n_eff`` (the plug-in minus its bias under no
    shift); ``low``/``high`` invert `shift_exceeds`'s noncentral chi-square at ``alpha``
    each side (together a ``1 - 2 alpha`` interval). NaNs when either arm has no counts.

    >>> est, low, high = shift_interval([300, 200], [200, 300], 0.01)
    >>> round(est, 3), low < est < high
    (0.158, True)
    """
    stat_a, df_a, n_eff_a = _shift_statistic(candidate, baseline, measure)
    stat, df, n_eff = float(stat_a[0]), float(df_a[0]), float(n_eff_a[0])
    scale = JS_SCALE if measure == "js" else 1.0
    if n_eff <= 0.0:
        return math.nan, math.nan, math.nan
    if df <= 0.0:
        return 0.0, 0.0, 0.0
    estimate = max(0.0, stat - df) / n_eff / scale

    def noncentrality(target: float) -> float:
        # the lambda with P(X >= stat | lambda) == target; P increases with lambda
        if float(chi2.sf(stat, df)) >= target:
            return 0.0
        high = max(4.0 * stat, 10.0)
        while float(ncx2.sf(stat, df, high)) < target:
            high *= 2.0
        return float(
            optimize.brentq(lambda lam: float(ncx2.sf(stat, df, lam)) - target, 1e-12, high)
        )

    low = noncentrality(alpha) / n_eff / scale
    high = noncentrality(1.0 - alpha) / n_eff / scale
    return estimate, low, high
