"""The canary's size gate: is a prediction shift shown larger than ``max_psi``/``max_js``?

A new model *should* predict a little differently, and with enough traffic any difference
is significant; the gate asks whether the effect size itself is shown above a limit. The
plug-in PSI of small samples is biased upward (about ``(k - 1) / n_eff``), so the gate is a
test on the true effect size: ``n_eff * PSI`` is close to a noncentral chi-square with
``k - 1`` degrees of freedom and noncentrality ``n_eff`` times the true PSI.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize
from scipy.stats import chi2, ncx2

from mlchecks.stats.sequential import PSI_SMOOTHING

__all__ = ["JS_SCALE", "shift_exceeds", "shift_interval"]


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
    stat, df, n_eff = _shift_statistic(candidate, baseline, measure)
    scale = JS_SCALE if measure == "js" else 1.0
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
