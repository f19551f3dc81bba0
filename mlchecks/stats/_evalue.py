"""What the anytime-valid tests of `mlchecks.stats.sequential` share.

The online tests keep ``log_evalue``, the natural log of their e-value after the
observations so far; `OnlineTest` turns it into the e-value and the decision, and
`CountTest` is the bookkeeping of the tests fed one 0/1 outcome at a time (`ShareTest`,
`RateTest`): ``n`` outcomes, ``hits`` of them hits. `WealthTest` is what the betting tests
(`BettingTest`, `RateTest`) share: the log wealth of a few bets, averaged into the e-value
(`log_mean_exp`) only when it is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np

from mlchecks._text import fmt
from mlchecks._validate import as_array, check_choice, check_number, check_open_unit, describe
from mlchecks.exceptions import InvalidInput

__all__ = [
    "ALTERNATIVES",
    "Alternative",
    "CountTest",
    "OnlineTest",
    "Sided",
    "WealthTest",
    "bool_array",
    "check_alternative",
    "exp_capped",
    "log_mean_exp",
    "positive",
]

Alternative: TypeAlias = Literal["greater", "less", "two-sided"]
Sided: TypeAlias = Literal["greater", "less"]

ALTERNATIVES = ("greater", "less", "two-sided")


def positive(value: Any, name: str) -> float:
    """``value`` as a number > 0, or `InvalidInput` naming ``name``."""
    return check_number(value, name, low=0.0, low_open=True)


def check_alternative(value: Any, allowed: Sequence[str] = ALTERNATIVES) -> str:
    """``value`` if it is one of ``allowed`` alternatives."""
    return check_choice(value, "alternative", allowed)


def bool_array(value: Any, name: str) -> np.ndarray:
    """A 1-D boolean array from booleans or 0/1 numbers."""
    array = as_array(value, name, ndim=1, min_size=0)
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iuf" and np.isin(array, (0, 1)).all():
        return array.astype(bool)
    raise InvalidInput(f"'{name}' must be booleans (got {describe(array)})")


def log_mean_exp(values: list[float]) -> float:
    """``log(mean(exp(values)))`` of a few floats, with `math` (no array, no scipy).

    The online tests call it on their handful of bets, where `scipy.special.logsumexp`
    costs a hundred times more than the arithmetic. Eight values are summed in numpy's
    pairwise order, so the result is the array version's up to the last bit of each `exp`.

    >>> round(log_mean_exp([0.0, math.log(3.0)]), 12) == round(math.log(2.0), 12)
    True
    >>> log_mean_exp([-math.inf, -math.inf])
    -inf
    """
    top = max(values)
    if top - top:  # inf or NaN (-inf: every wealth is 0), as scipy's
        return top if not math.isnan(top) else math.nan
    exp = math.exp
    terms = [exp(v - top) for v in values]
    if len(terms) == 8:
        a, b, c, d, e, f, g, h = terms
        total = ((a + b) + (c + d)) + ((e + f) + (g + h))
    else:
        total = sum(terms)
    return top + math.log(total / len(terms))


def exp_capped(log_value: float) -> float:
    """``exp(log_value)``, ``inf`` where it would overflow."""
    return math.inf if log_value > 709.0 else math.exp(log_value)


class OnlineTest:
    """What the online tests share: the e-value from ``log_evalue``, and the decision."""

    __slots__ = ()
    log_evalue: float

    @property
    def evalue(self) -> float:
        """The e-value itself (``inf`` when it overflows)."""
        return exp_capped(self.log_evalue)

    def rejects(self, alpha: float) -> bool:
        """True when the e-value has reached ``1 / alpha``."""
        return self.log_evalue >= -math.log(check_open_unit(alpha, "alpha"))


class CountTest(OnlineTest):
    """An online test fed one 0/1 outcome at a time: ``n`` outcomes, ``hits`` of them hits.

    Subclasses say how the log e-value follows from one more outcome (`_next_log_evalue`)
    and which settings their repr shows (`_settings`).
    """

    __slots__ = ("alternative", "hits", "log_evalue", "n")

    def __init__(self, alternative: str) -> None:
        self.alternative: Any = alternative
        self.n = 0
        self.hits: float = 0
        self.log_evalue = 0.0

    def _next_log_evalue(self, hit: bool) -> float:
        raise NotImplementedError

    def _settings(self) -> str:
        raise NotImplementedError

    def update(self, hit: bool) -> float:
        """Add one outcome (True for a hit); return ``log E``."""
        self.n += 1
        self.hits += bool(hit)
        self.log_evalue = self._next_log_evalue(bool(hit))
        return self.log_evalue

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._settings()}, alternative={self.alternative!r}, "
            f"n={self.n}, hits={self.hits}, evalue={fmt(self.evalue)})"
        )


class WealthTest(OnlineTest):
    """A betting test's e-value: the mean wealth of a few bets, computed when it is read.

    Subclasses keep ``_log_wealth`` (each bet's log wealth) up to date and set ``_stale``
    after an observation; ``log_evalue`` is then `log_mean_exp` of the wealth, computed
    once on the next read (8 exponentials and a log), and ``log_evalue_bound``, the
    largest log wealth, is never below it (a mean is at most the largest value). A caller
    that only asks "has the test rejected?" after every observation reads the bound first
    and the e-value only when the bound is at the threshold.

    >>> from mlchecks.stats.sequential import RateTest
    >>> test = RateTest(0.1)
    >>> for hit in [True, True, False]:
    ...     test.push(hit)  # no e-value computed yet
    >>> test.log_evalue <= test.log_evalue_bound
    True
    """

    __slots__ = ("_log_evalue", "_log_wealth", "_stale", "log_evalue_bound")

    def _start(self, n_bets: int) -> None:
        self._log_wealth = [0.0] * n_bets
        self._log_evalue = 0.0
        self._stale = False
        self.log_evalue_bound = 0.0

    @property
    def log_evalue(self) -> float:
        """The natural log of the e-value after the observations so far."""
        if self._stale:
            self._log_evalue = log_mean_exp(self._log_wealth)
            self._stale = False
        return self._log_evalue

    @log_evalue.setter
    def log_evalue(self, value: float) -> None:
        self._log_evalue, self._stale = float(value), False
