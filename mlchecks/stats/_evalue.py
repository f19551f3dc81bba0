"""What the anytime-valid tests of `mlchecks.stats.sequential` share.

The online tests keep ``log_evalue``, the natural log of their e-value after the
observations so far; `OnlineTest` turns it into the e-value and the decision, and
`CountTest` is the bookkeeping of the tests fed one 0/1 outcome at a time (`ShareTest`,
`RateTest`): ``n`` outcomes, ``hits`` of them hits.
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
    "bool_array",
    "check_alternative",
    "exp_capped",
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
