"""Thresholds as data: `AtLeast`, `AtMost`, `Between` and `NoWorseThan`.

Conditions are frozen attrs objects, not closures, so they print, compare, pickle and
serialize. Each one judges an observed value into a `Finding`:

>>> AtMost(0.01).judge("churn", 0.157).status
<Status.FAIL: 'fail'>
>>> AtLeast(0.9, severity="warn").judge("accuracy", 0.85).message
'accuracy 0.85 is below the minimum 0.9'
>>> condition_from_dict(Between(0, 1).to_dict()) == Between(0, 1)
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar, TypeAlias, Union

import attrs

from mlchecks._constraints import BOOLEAN, NONE, Interval, check, reject
from mlchecks._json import decode_float
from mlchecks._text import fmt
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Finding, Status

__all__ = [
    "AtLeast",
    "AtMost",
    "Between",
    "Condition",
    "NoWorseThan",
    "condition_from_dict",
    "relative_change",
]


def _severity(value: Status | str) -> Status:
    status = value if isinstance(value, Status) else None
    if isinstance(value, str) and value.lower() in ("fail", "warn"):
        status = Status(value.lower())
    if status not in (Status.FAIL, Status.WARN):
        wanted = "Status.FAIL or Status.WARN (or 'fail', 'warn')"
        raise InvalidInput(reject("severity", wanted, value, typed=isinstance(value, Status)))
    return status


def _as_float(value: Any) -> Any:
    """A real number as a float; anything else unchanged, for the validator to name."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return float(value) if real else value


def _finite(instance: object, field: attrs.Attribute[Any], value: Any) -> None:
    """A finite real number (not a bool, not a numeric string)."""
    check(value, field.name, Interval())


def _flag(instance: object, field: attrs.Attribute[Any], value: Any) -> None:
    check(value, field.name, BOOLEAN)


def _is_nan(value: float | None) -> bool:
    return value is None or math.isnan(value)


@attrs.frozen
class _OneSided:
    """A one-sided limit on an observed value: `AtLeast` or `AtMost`."""

    value: float = attrs.field(converter=_as_float, validator=_finite)
    severity: Status = attrs.field(default=Status.FAIL, converter=_severity)

    _symbol: ClassVar[str] = ""
    _bound: ClassVar[str] = ""
    _verbs: ClassVar[tuple[str, str]] = ("", "")  # (holds, does not hold)

    def _within(self, observed: float) -> bool:
        raise NotImplementedError

    def holds(self, observed: float) -> bool:
        """True when ``observed`` is on the allowed side of ``value`` (NaN never holds)."""
        return not _is_nan(observed) and self._within(observed)

    def describe(self) -> str:
        """The limit in words, as reports print it."""
        return f"{self._symbol} {fmt(self.value)}"

    def judge(self, name: str, observed: float, *, context: str = "", unit: str = "") -> Finding:
        """A `Finding` for ``observed``: PASS, or this condition's severity; ``unit`` (such
        as ``"s"``) follows the numbers in its limit and message."""
        ok = self.holds(observed)
        verb = self._verbs[0] if ok else self._verbs[1]
        u = f" {unit}" if unit else ""
        message = (
            f"{name} {fmt(observed)}{u} {verb} the {self._bound} {fmt(self.value)}{u}{context}"
        )
        status = Status.PASS if ok else self.severity
        return Finding(name, status, observed, self.describe() + u, message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; `condition_from_dict` inverts it."""
        return {"type": type(self).__name__, "value": self.value, "severity": self.severity.value}


@attrs.frozen
class AtLeast(_OneSided):
    """The observed value must be at least ``value``.

    >>> AtLeast(0.9).holds(0.95), AtLeast(0.9).describe()
    (True, '>= 0.9')
    """

    _symbol: ClassVar[str] = ">="
    _bound: ClassVar[str] = "minimum"
    _verbs: ClassVar[tuple[str, str]] = ("meets", "is below")

    def _within(self, observed: float) -> bool:
        return observed >= self.value


@attrs.frozen
class AtMost(_OneSided):
    """The observed value must be at most ``value``.

    >>> AtMost(0.01).holds(0.157), AtMost(0.01).describe()
    (False, '<= 0.01')
    """

    _symbol: ClassVar[str] = "<="
    _bound: ClassVar[str] = "maximum"
    _verbs: ClassVar[tuple[str, str]] = ("is within", "exceeds")

    def _within(self, observed: float) -> bool:
        return observed <= self.value


@attrs.frozen
class Between:
    """The observed value must lie in ``[low, high]`` (both ends included).

    >>> Between(0, 1).holds(1.0), Between(0, 1).describe()
    (True, 'in [0, 1]')
    """

    low: float = attrs.field(converter=_as_float, validator=_finite)
    high: float = attrs.field(converter=_as_float, validator=_finite)
    severity: Status = attrs.field(default=Status.FAIL, converter=_severity)

    def __attrs_post_init__(self) -> None:
        if self.low > self.high:
            raise InvalidInput(f"'low' must be <= 'high' (got low={self.low}, high={self.high})")

    def holds(self, observed: float) -> bool:
        """True when ``low <= observed <= high``."""
        return not _is_nan(observed) and self.low <= observed <= self.high

    def describe(self) -> str:
        """The limit in words."""
        return f"in [{fmt(self.low)}, {fmt(self.high)}]"

    def judge(self, name: str, observed: float, *, context: str = "", unit: str = "") -> Finding:
        """A `Finding` for ``observed``; ``unit`` follows the numbers, as in `AtMost.judge`."""
        ok = self.holds(observed)
        where = "inside" if ok else "outside"
        u = f" {unit}" if unit else ""
        message = (
            f"{name} {fmt(observed)}{u} is {where} the range {self.describe()[3:]}{u}{context}"
        )
        status = Status.PASS if ok else self.severity
        return Finding(name, status, observed, self.describe() + u, message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "type": "Between",
            "low": self.low,
            "high": self.high,
            "severity": self.severity.value,
        }


def relative_change(candidate: float, baseline: float) -> float:
    """``(candidate - baseline) / |baseline|``, with a rule for a zero baseline.

    With a zero baseline the relative change is 0 when the candidate is 0 too, and
    ``±inf`` (the sign of the candidate) otherwise: any change from zero is infinitely large
    in relative terms, so only an absolute limit can allow it.

    >>> relative_change(0.9, 1.0)
    -0.09999999999999998
    >>> relative_change(-1.1, -1.0)
    -0.10000000000000009
    >>> relative_change(0.5, 0.0), relative_change(0.0, 0.0)
    (inf, 0.0)
    """
    diff = candidate - baseline
    if baseline == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / abs(baseline)


def _optional_limit(instance: object, field: attrs.Attribute[Any], value: Any) -> None:
    check(value, field.name, Interval(0.0, words="a finite number >= 0"), NONE)


@attrs.frozen
class NoWorseThan:
    """The candidate may be worse than the baseline by at most ``abs`` and/or ``rel``.

    "Worse" is lower when ``higher_is_better`` (accuracy, AUC) and higher otherwise (loss,
    latency). The relative change is `relative_change`; when both limits are given, both
    must hold. Improvements always hold.

    >>> c = NoWorseThan(abs=0.005)
    >>> c.holds(candidate=0.912, baseline=0.915), c.holds(candidate=0.905, baseline=0.915)
    (True, False)
    >>> NoWorseThan(rel=0.1, higher_is_better=False).holds(candidate=1.05, baseline=1.0)
    True
    """

    abs: float | None = attrs.field(default=None, converter=_as_float, validator=_optional_limit)
    rel: float | None = attrs.field(default=None, converter=_as_float, validator=_optional_limit)
    higher_is_better: bool = attrs.field(default=True, validator=_flag)
    severity: Status = attrs.field(default=Status.FAIL, converter=_severity)

    def __attrs_post_init__(self) -> None:
        if self.abs is None and self.rel is None:
            raise InvalidInput("NoWorseThan needs 'abs', 'rel' or both (got neither)")

    def worsening(self, candidate: float, baseline: float) -> tuple[float, float]:
        """How much worse the candidate is, absolute and relative (negative = better)."""
        sign = -1.0 if self.higher_is_better else 1.0
        return sign * (candidate - baseline), sign * relative_change(candidate, baseline)

    def holds(self, candidate: float, baseline: float) -> bool:
        """True when the candidate is within both limits of the baseline (or better)."""
        if _is_nan(candidate) or _is_nan(baseline):
            return False
        worse_abs, worse_rel = self.worsening(candidate, baseline)
        if self.abs is not None and worse_abs > self.abs:
            return False
        return not (self.rel is not None and worse_rel > self.rel)

    def describe(self) -> str:
        """The limit in words, e.g. ``"drop <= 0.005"``."""
        word = "drop" if self.higher_is_better else "rise"
        parts = []
        if self.abs is not None:
            parts.append(f"{word} <= {fmt(self.abs)}")
        if self.rel is not None:
            parts.append(f"relative {word} <= {self.rel:.3g}")
        return " and ".join(parts)

    def judge(self, name: str, candidate: float, baseline: float, *, context: str = "") -> Finding:
        """A `Finding` whose ``observed`` is the signed change ``candidate - baseline``."""
        ok = self.holds(candidate, baseline)
        diff = candidate - baseline
        verdict = "within" if ok else "beyond"
        message = (
            f"{name} changed from {fmt(baseline)} to {fmt(candidate)} "
            f"({diff:+.4g}), {verdict} the allowed {self.describe()}{context}"
        )
        return Finding(name, Status.PASS if ok else self.severity, diff, self.describe(), message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "type": "NoWorseThan",
            "abs": self.abs,
            "rel": self.rel,
            "higher_is_better": self.higher_is_better,
            "severity": self.severity.value,
        }


Condition: TypeAlias = Union[AtLeast, AtMost, Between, NoWorseThan]  # noqa: UP007
_TYPES: dict[str, type[Condition]] = {
    "AtLeast": AtLeast,
    "AtMost": AtMost,
    "Between": Between,
    "NoWorseThan": NoWorseThan,
}


def condition_from_dict(data: Mapping[str, Any]) -> Condition:
    """Rebuild a condition from its ``to_dict()`` output."""
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise InvalidInput(f"'type' must be one of {sorted(_TYPES)} (got {kind!r})")
    fields = {k: v for k, v in data.items() if k != "type"}
    for key in ("value", "low", "high"):
        if key in fields:
            fields[key] = decode_float(fields[key])
    return _TYPES[kind](**fields)
