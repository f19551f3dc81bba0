"""Multiple-testing corrections across slices: Holm and Benjamini-Hochberg.

Both take raw p-values (one per slice, in any order) and return adjusted p-values in the
same order; reject the hypotheses whose adjusted p-value is at most the level ``alpha``.

- `holm` controls the family-wise error rate (the chance of naming even one healthy slice)
  under any dependence between the tests.
- `benjamini_hochberg` controls the false discovery rate (the expected fraction of named
  slices that are healthy), assuming independent or positively dependent tests; it names
  more slices than Holm when many are affected.

>>> adjust([0.01, 0.04, 0.03], "holm")
array([0.03, 0.06, 0.06])
>>> adjust([0.01, 0.04, 0.03], "bh")
array([0.03, 0.04, 0.04])
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy as np

from mlchecks._validate import as_array, check_choice
from mlchecks.exceptions import InvalidInput

__all__ = ["CORRECTIONS", "Correction", "adjust", "benjamini_hochberg", "holm"]

Correction: TypeAlias = Literal["holm", "bh", "none"]

#: The accepted names of `adjust`'s ``method``.
CORRECTIONS: tuple[str, ...] = ("holm", "bh", "none")


def _pvalues(pvalues: Any) -> np.ndarray:
    array = as_array(pvalues, "pvalues", ndim=1, dtype=np.float64, min_size=0)
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise InvalidInput(
            f"'pvalues' must lie in [0, 1] (got values from {array.min():.4g} to {array.max():.4g})"
        )
    return array


def holm(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate control).

    With the m p-values sorted ascending, the i-th smallest (i = 1..m) is adjusted to
    ``max over j <= i of min(1, (m - j + 1) * p_(j))``; the result is returned in the
    input's order. Rejecting where the adjusted value is <= alpha is Holm's procedure at
    level alpha.

    Args:
        pvalues: 1-D array-like of p-values in [0, 1]; may be empty.

    Returns:
        A float64 array of adjusted p-values, same shape and order as the input.

    Raises:
        InvalidInput: when a p-value is NaN, infinite or outside [0, 1], or the input is
            not 1-D.

    >>> holm([0.01, 0.02, 0.5])
    array([0.03, 0.04, 0.5 ])
    """
    p = _pvalues(pvalues)
    m = p.size
    if m == 0:
        return np.array(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * np.arange(m, 0, -1, dtype=np.float64))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def benjamini_hochberg(pvalues: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate control).

    Computed by `scipy.stats.false_discovery_control` with ``method="bh"``: the i-th
    smallest of m p-values becomes ``min over j >= i of min(1, m * p_(j) / j)``.

    Args:
        pvalues: 1-D array-like of p-values in [0, 1]; may be empty.

    Returns:
        A float64 array of adjusted p-values, same shape and order as the input.

    Raises:
        InvalidInput: when a p-value is NaN, infinite or outside [0, 1].

    >>> benjamini_hochberg([0.01, 0.02, 0.5])
    array([0.03, 0.03, 0.5 ])
    """
    p = _pvalues(pvalues)
    if p.size == 0:
        return np.array(p, dtype=np.float64)
    from scipy.stats import false_discovery_control

    return np.asarray(false_discovery_control(p, method="bh"), dtype=np.float64)


def adjust(pvalues: Any, method: Correction = "holm") -> np.ndarray:
    """Adjust ``pvalues`` for multiple testing with ``method`` ("holm", "bh" or "none").

    Args:
        pvalues: 1-D array-like of p-values in [0, 1].
        method: ``"holm"`` (`holm`), ``"bh"`` (`benjamini_hochberg`) or ``"none"``
            (the p-values unchanged, as a new float64 array).

    Returns:
        The adjusted p-values in the input's order.

    Raises:
        InvalidInput: for an unknown method or invalid p-values.

    >>> adjust([0.2, 0.01], "none")
    array([0.2 , 0.01])
    """
    check_choice(method, "method", CORRECTIONS)
    if method == "holm":
        return holm(pvalues)
    if method == "bh":
        return benjamini_hochberg(pvalues)
    return np.array(_pvalues(pvalues), dtype=np.float64)
