"""Paired tests on two models' per-example correctness: McNemar, a paired CI, TOST.

Model a and model b predict the same n examples; ``correct_a[i]`` says whether a got
example i right. Only the discordant examples carry information about which model is more
accurate: b = #(a right, b wrong) and c = #(a wrong, b right), and the accuracy difference
is ``(b - c) / n``.

- `mcnemar_exact`: is one model more accurate? (exact binomial test on the discordant pairs)
- `paired_accuracy_difference`: how much? (the difference with a confidence interval)
- `tost_paired_accuracy`: are they equivalent within a margin? (two one-sided tests)
- `normal_pvalue`: the p-value of a z-test against a margin, for one-sided
  non-inferiority and regression tests.

Each has a ``*_counts`` twin taking (b, c, n) for pre-aggregated tables (per-slice counts).

>>> a = np.array([1, 1, 1, 0, 1, 1, 0, 1], dtype=bool)
>>> b = np.array([1, 0, 1, 0, 0, 1, 1, 0], dtype=bool)
>>> mcnemar_exact(a, b)
McNemarResult(statistic=1.0, pvalue=0.625, b=3, c=1, n=8)
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np

from mlchecks._validate import (
    as_array,
    check_choice,
    check_int,
    check_number,
    check_same_length,
)
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.intervals import (
    ConfidenceInterval,
    normal_interval,
)

__all__ = [
    "EquivalenceResult",
    "McNemarResult",
    "PairedDifference",
    "discordant_counts",
    "mcnemar_exact",
    "mcnemar_exact_counts",
    "normal_pvalue",
    "paired_accuracy_difference",
    "paired_accuracy_difference_counts",
    "tost_paired_accuracy",
    "tost_paired_accuracy_counts",
]

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")


class McNemarResult(NamedTuple):
    """The exact McNemar test.

    ``statistic`` is ``min(b, c)`` (the exact test's conventional statistic), ``b`` counts
    examples only model a got right, ``c`` those only model b got right, ``n`` all examples.
    """

    statistic: float
    pvalue: float
    b: int
    c: int
    n: int


class PairedDifference(NamedTuple):
    """``accuracy_a - accuracy_b`` with its confidence interval and standard error."""

    difference: float
    ci: ConfidenceInterval
    standard_error: float
    n: int


class EquivalenceResult(NamedTuple):
    """A TOST equivalence test: ``equivalent`` when the (1 - 2 alpha) CI is inside ±margin."""

    difference: float
    ci: ConfidenceInterval
    pvalue: float
    equivalent: bool
    margin: float


def _correctness(value: Any, name: str) -> np.ndarray:
    array = as_array(value, name, ndim=1)
    if array.dtype.kind == "b":
        return array
    if not np.all((array == 0) | (array == 1)):
        raise InvalidInput(
            f"'{name}' must be booleans or 0/1 (got values such as "
            f"{array[(array != 0) & (array != 1)][0]!r})"
        )
    return array.astype(bool)


def discordant_counts(correct_a: Any, correct_b: Any) -> tuple[int, int, int]:
    """``(b, c, n)``: examples only a got right, only b got right, and all examples.

    Args:
        correct_a: per-example correctness of model a (bool or 0/1), 1-D, finite.
        correct_b: the same for model b, on the same examples.

    Raises:
        InvalidInput: for NaN, values other than 0/1, empty input or different lengths.

    >>> discordant_counts([1, 1, 0, 0], [1, 0, 1, 0])
    (1, 1, 4)
    """
    a = _correctness(correct_a, "correct_a")
    b = _correctness(correct_b, "correct_b")
    n = check_same_length(correct_a=a, correct_b=b)
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(~a & b))
    return only_a, only_b, n


def _check_counts(b: Any, c: Any, n: Any) -> tuple[int, int, int]:
    b = check_int(b, "b")
    c = check_int(c, "c")
    n = check_int(n, "n", minimum=1)
    if b + c > n:
        raise InvalidInput(f"'b' + 'c' must be <= n={n} (got {b} + {c} = {b + c})")
    return b, c, n


def _alternative(value: Any) -> Alternative:
    return check_choice(value, "alternative", _ALTERNATIVES)  # type: ignore[return-value]


def mcnemar_exact_counts(
    b: int, c: int, n: int | None = None, *, alternative: Alternative = "two-sided"
) -> McNemarResult:
    """The exact McNemar test from the discordant counts.

    Under the null hypothesis (equal accuracies) each discordant example is equally likely
    to favour either model, so b ~ Binomial(b + c, 1/2): the p-value is
    ``scipy.stats.binomtest(b, b + c, 0.5, alternative=...)``, and 1.0 when there are no
    discordant examples.

    Args:
        b: examples model a got right and model b wrong.
        c: examples model a got wrong and model b right.
        n: all examples (defaults to b + c; only reported).
        alternative: ``"two-sided"``, ``"greater"`` (a is more accurate) or ``"less"``.

    Raises:
        InvalidInput: for negative or non-integer counts or an unknown alternative.

    >>> mcnemar_exact_counts(388, 330, 10_000).pvalue  # doctest: +ELLIPSIS
    0.0333...
    """
    b = check_int(b, "b")
    c = check_int(c, "c")
    n = b + c if n is None else check_int(n, "n")
    if b + c > n:
        raise InvalidInput(f"'b' + 'c' must be <= n={n} (got {b} + {c} = {b + c})")
    side = _alternative(alternative)
    if b + c == 0:
        return McNemarResult(0.0, 1.0, b, c, n)
    from scipy.stats import binomtest

    pvalue = float(binomtest(b, b + c, 0.5, alternative=side).pvalue)
    return McNemarResult(float(min(b, c)), min(1.0, pvalue), b, c, n)


def mcnemar_exact(
    correct_a: Any, correct_b: Any, *, alternative: Alternative = "two-sided"
) -> McNemarResult:
    """The exact McNemar test of equal accuracy for two models on the same examples.

    Args:
        correct_a: per-example correctness of model a (bool or 0/1), 1-D.
        correct_b: the same for model b.
        alternative: ``"two-sided"``, ``"greater"`` (a is more accurate) or ``"less"``.

    Returns:
        A `McNemarResult`; see `mcnemar_exact_counts` for the test.

    Raises:
        InvalidInput: for NaN, non-0/1 values, empty input or different lengths.

    >>> mcnemar_exact([1, 1, 1, 1, 1], [0, 0, 0, 0, 0]).pvalue
    0.0625
    """
    b, c, n = discordant_counts(correct_a, correct_b)
    return mcnemar_exact_counts(b, c, n, alternative=alternative)


def _paired_standard_error(b: int, c: int, n: int) -> float:
    variance = (b + c) / n**2 - (b - c) ** 2 / n**3
    return math.sqrt(max(variance, 0.0))


def paired_accuracy_difference_counts(
    b: int, c: int, n: int, *, confidence: float = 0.95
) -> PairedDifference:
    """The accuracy difference ``(b - c) / n`` with a Wald interval, from counts.

    The standard error of a difference of paired proportions is
    ``sqrt((b + c) / n**2 - (b - c)**2 / n**3)``. The interval is
    ``difference ± z * se``; it is reliable when the discordant counts are not tiny (say
    b + c >= 20), and it is zero-width when the models agree on every example.

    Args:
        b: examples model a got right and model b wrong.
        c: examples model a got wrong and model b right.
        n: all examples, >= 1 and >= b + c.
        confidence: the two-sided coverage, in (0, 1).

    Raises:
        InvalidInput: for invalid counts or confidence.

    >>> res = paired_accuracy_difference_counts(388, 330, 10_000, confidence=0.90)
    >>> round(res.difference, 4), [round(x, 4) for x in res.ci]
    (0.0058, [0.0014, 0.0102])
    """
    b, c, n = _check_counts(b, c, n)
    difference = (b - c) / n
    se = _paired_standard_error(b, c, n)
    return PairedDifference(difference, normal_interval(difference, se, confidence), se, n)


def paired_accuracy_difference(
    correct_a: Any, correct_b: Any, *, confidence: float = 0.95
) -> PairedDifference:
    """``accuracy_a - accuracy_b`` on the same examples, with a paired Wald interval.

    Args:
        correct_a: per-example correctness of model a (bool or 0/1), 1-D.
        correct_b: the same for model b.
        confidence: the two-sided coverage, in (0, 1).

    Returns:
        A `PairedDifference`; see `paired_accuracy_difference_counts` for the interval.

    Raises:
        InvalidInput: for NaN, non-0/1 values, empty input or different lengths.

    >>> paired_accuracy_difference([1, 1, 0, 1], [1, 0, 0, 1]).difference
    0.25
    """
    b, c, n = discordant_counts(correct_a, correct_b)
    return paired_accuracy_difference_counts(b, c, n, confidence=confidence)


def normal_pvalue(
    estimate: float,
    standard_error: float,
    null: float = 0.0,
    *,
    alternative: Alternative = "two-sided",
) -> float:
    """The p-value of a z-test of ``estimate`` against ``null`` with ``standard_error``.

    ``"greater"`` tests whether the true value exceeds ``null``, ``"less"`` whether it is
    below it. With a zero standard error the estimate is taken as exact: the p-value is 0
    when it lies strictly on the alternative's side of ``null`` and 1 otherwise.

    Args:
        estimate: the point estimate (finite).
        standard_error: its standard error (finite, >= 0).
        null: the value under the null hypothesis (a margin for non-inferiority tests).
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.

    Raises:
        InvalidInput: for non-finite inputs, a negative standard error or an unknown
            alternative.

    >>> round(normal_pvalue(0.03, 0.01, 0.01, alternative="greater"), 4)
    0.0228
    """
    side = _alternative(alternative)
    if not (math.isfinite(estimate) and math.isfinite(null)):
        raise InvalidInput(f"'estimate' and 'null' must be finite (got {estimate!r}, {null!r})")
    if not (math.isfinite(standard_error) and standard_error >= 0.0):
        raise InvalidInput(f"'standard_error' must be finite and >= 0 (got {standard_error!r})")
    from scipy.special import ndtr

    delta = estimate - null
    if standard_error == 0.0:
        beyond = {"greater": delta > 0, "less": delta < 0, "two-sided": delta != 0}[side]
        return 0.0 if beyond else 1.0
    z = delta / standard_error
    if side == "greater":
        return float(ndtr(-z))
    if side == "less":
        return float(ndtr(z))
    return float(min(1.0, 2.0 * ndtr(-abs(z))))


def tost_paired_accuracy_counts(
    b: int, c: int, n: int, *, margin: float, alpha: float = 0.05
) -> EquivalenceResult:
    """Two one-sided tests (TOST) that two paired accuracies are equivalent, from counts.

    The null hypothesis is ``|accuracy_a - accuracy_b| >= margin``. Each side is a
    one-sided z-test at level alpha with the paired standard error (see
    `paired_accuracy_difference_counts`); the TOST p-value is the larger of the two, and
    the models are equivalent exactly when the (1 - 2 alpha) interval lies strictly inside
    ``(-margin, margin)``.

    Args:
        b: examples model a got right and model b wrong.
        c: examples model a got wrong and model b right.
        n: all examples.
        margin: the equivalence margin, > 0, in accuracy units.
        alpha: the level of each one-sided test, in (0, 0.5).

    Raises:
        InvalidInput: for invalid counts, a margin <= 0 or alpha outside (0, 0.5).

    >>> tost_paired_accuracy_counts(388, 330, 10_000, margin=0.01).equivalent
    False
    """
    margin = check_number(margin, "margin", low=0.0, low_open=True)
    alpha = check_number(alpha, "alpha", low=0.0, high=0.5, low_open=True, high_open=True)
    paired = paired_accuracy_difference_counts(b, c, n, confidence=1.0 - 2.0 * alpha)
    d, se = paired.difference, paired.standard_error
    p_low = normal_pvalue(d, se, -margin, alternative="greater")
    p_high = normal_pvalue(d, se, margin, alternative="less")
    equivalent = -margin < paired.ci.low and paired.ci.high < margin
    return EquivalenceResult(d, paired.ci, max(p_low, p_high), equivalent, margin)


def tost_paired_accuracy(
    correct_a: Any, correct_b: Any, *, margin: float, alpha: float = 0.05
) -> EquivalenceResult:
    """TOST equivalence of two models' accuracies on the same examples.

    Args:
        correct_a: per-example correctness of model a (bool or 0/1), 1-D.
        correct_b: the same for model b.
        margin: the equivalence margin, > 0, in accuracy units.
        alpha: the level of each one-sided test, in (0, 0.5).

    Returns:
        An `EquivalenceResult`; see `tost_paired_accuracy_counts`.

    Raises:
        InvalidInput: for invalid inputs.

    >>> rng = np.random.default_rng(0)
    >>> a = rng.random(5000) < 0.9
    >>> tost_paired_accuracy(a, a, margin=0.01).equivalent
    True
    """
    b, c, n = discordant_counts(correct_a, correct_b)
    return tost_paired_accuracy_counts(b, c, n, margin=margin, alpha=alpha)
