"""One validator for every field: constraints declared beside a field, one message format.

After scikit-learn's ``utils/_param_validation.py``: a field says what it accepts as
constraints (`Interval`, `Options`, `InstanceOf`, `BOOLEAN`, `CALLABLE`, `TEXT`, `RUBRIC`,
`NONE`), and `check` words every refusal the same way, as an `InvalidInput` naming the
field, what it accepts and the value: ``'<field>' must be <what> (got <value>)``, with the
value's type when the type is wrong. `mlchecks._fields` builds the glossary's field
factories on it.

>>> check(0.2, "alpha", Interval(0, 0.5, closed="neither"))
0.2
>>> check(True, "n_top", Interval(0, 100, integer=True))
Traceback (most recent call last):
...
mlchecks.exceptions.InvalidInput: 'n_top' must be an integer (got True that is a bool)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks._validate import describe, shown
from mlchecks.exceptions import InvalidInput

__all__ = [
    "BOOLEAN",
    "CALLABLE",
    "COUNT_MAX",
    "NONE",
    "RUBRIC",
    "TEXT",
    "Constraint",
    "InstanceOf",
    "Interval",
    "Options",
    "check",
    "describe",
    "is_int",
    "reject",
    "valid",
]

#: The largest count a ``n_*`` field takes unless it declares its own bound (a billion).
COUNT_MAX = 10**9


class Constraint:
    """One kind of value a field accepts.

    ``text`` names it in the message for a value of the wrong type; `bounds` names the range
    or the options for a value of the right type that is still refused.
    """

    text = ""

    def typed(self, value: Any) -> bool:
        """``value`` has the type this constraint is about (its range may still be wrong)."""
        return self.accepts(value)

    def accepts(self, value: Any) -> bool:
        """``value`` meets the constraint."""
        raise NotImplementedError

    def bounds(self, value: Any) -> str:
        """What a value of the right type must be (the range, the options)."""
        return self.text


class _NoneConstraint(Constraint):
    text = "None"

    def accepts(self, value: Any) -> bool:
        return value is None


#: None is allowed (a switched-off setting, a default taken from elsewhere).
NONE: Constraint = _NoneConstraint()


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class Interval(Constraint):
    """An integer (``integer=True``) or a finite real number from ``low`` to ``high``.

    A message for a value of the right type names the side it failed (``>= 1``, ``<= 100``
    for integers; the range for numbers). A ``guard`` upper bound only catches typos (a
    year of seconds), so a value below the range is told the range without it. ``words``
    replaces the wording of the range.

    >>> Interval(1, 7, integer=True).bounds(9), Interval(0, 0.5, closed="neither").bounds(0.9)
    ('<= 7', 'in (0, 0.5)')
    >>> Interval(1, COUNT_MAX, integer=True).bounds(0), Interval(3, 100, integer=True).bounds(200)
    ('>= 1', '<= 100')
    """

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        *,
        integer: bool = False,
        closed: Literal["both", "left", "right", "neither"] = "both",
        guard: bool = False,
        words: str | None = None,
    ) -> None:
        self.low, self.high, self.integer = low, high, integer
        self.low_open = closed in ("right", "neither")
        self.high_open = closed in ("left", "neither")
        self.guard, self.words = guard, words
        self.range = self._range(high)
        self.text = "an integer" if integer else "a number"  # a value of the wrong type
        if words is not None:
            self.text = words

    def _range(self, high: float | None) -> str:
        low = self.low
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        if low is not None and high is not None:
            return f"in {left}{_g(low)}, {_g(high)}{right}"
        if low is not None:
            return f"in {left}{_g(low)}, inf)"
        if high is not None:
            return f"in (-inf, {_g(high)}{right}"
        return "a finite number"

    def _below(self) -> str:
        if self.low is None:
            return ""
        return f"{'>' if self.low_open else '>='} {_g(self.low)}"

    def typed(self, value: Any) -> bool:
        return is_int(value) if self.integer else _is_real(value)

    def accepts(self, value: Any) -> bool:
        if not self.typed(value):
            return False
        number = value if self.integer else float(value)
        if not self.integer and not math.isfinite(number):
            return False
        return not (self._too_low(number) or self._too_high(number))

    def _too_low(self, number: float) -> bool:
        low = self.low
        return low is not None and (number <= low if self.low_open else number < low)

    def _too_high(self, number: float) -> bool:
        high = self.high
        return high is not None and (number >= high if self.high_open else number > high)

    def bounds(self, value: Any) -> str:
        if self.words is not None:
            return self.words
        number = value if self.integer else float(value)
        if self.integer:
            if self._too_low(number) or self.high is None:
                return self._below()
            return f"{'<' if self.high_open else '<='} {_g(self.high)}"
        if self.guard and not (math.isfinite(number) and self._too_high(number)):
            return self._range(None)
        return self.range


def _g(number: float) -> str:
    return f"{number:,}" if isinstance(number, int) and abs(number) >= 10**6 else f"{number:g}"


class Options(Constraint):
    """One of the strings ``options``.

    >>> Options("holm", "bh").text
    "one of 'holm', 'bh'"
    """

    def __init__(self, *options: str) -> None:
        self.options = options
        self.text = "one of " + ", ".join(repr(o) for o in options)

    def typed(self, value: Any) -> bool:
        return isinstance(value, str)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options


class InstanceOf(Constraint):
    """An instance of ``kinds`` (a class or a runtime-checkable protocol); ``text`` names it."""

    def __init__(self, kinds: type | tuple[type, ...], text: str) -> None:
        self.kinds, self.text = kinds, text

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.kinds)


class _Boolean(Constraint):
    text = "True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


#: True or False (not 0, 1 or a numpy bool: a setting is a Python bool).
BOOLEAN: Constraint = _Boolean()


class _Callable(Constraint):
    text = "callable"

    def accepts(self, value: Any) -> bool:
        return callable(value)


#: Anything callable.
CALLABLE: Constraint = _Callable()


class _Text(Constraint):
    text = "a non-empty string of printable characters"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip()) and value.isprintable()


#: A name shown in reports and used as a pytest id: a non-empty string with no control
#: characters, newlines or lone surrogates (``str.isprintable``), not only blanks.
TEXT: Constraint = _Text()

#: An ML Test Score infrastructure test number.
RUBRIC: Constraint = Interval(1, 7, integer=True, words="an int in 1..7")


def check(value: Any, name: str, *constraints: Constraint) -> Any:
    """``value`` when it meets one of ``constraints``; else `InvalidInput` naming ``name``.

    This one function words every message of a field validator: the field, what it
    accepts, and the value (with its type when the type is wrong).

    >>> check(3, "rubric", RUBRIC, NONE)
    3
    >>> check(9, "rubric", RUBRIC, NONE)
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'rubric' must be an int in 1..7 or None (got 9)
    >>> check("3", "n_top", Interval(1, 10, integer=True))
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'n_top' must be an integer (got '3' that is a str)
    """
    if any(c.accepts(value) for c in constraints):
        return value
    typed = [c for c in constraints if c.typed(value)]
    if typed:
        texts = [c.bounds(value) for c in typed] + (["None"] if NONE in constraints else [])
        raise InvalidInput(reject(name, _wanted(texts), value, typed=True))
    raise InvalidInput(reject(name, _wanted([c.text for c in constraints]), value))


def _wanted(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


def reject(name: str, wanted: str, value: Any, *, typed: bool = False) -> str:
    """The message: ``'<name>' must be <wanted> (got <value>)``; the type shown unless ``typed``."""
    return f"'{name}' must be {wanted} (got {shown(value) if typed else describe(value)})"


def valid(*constraints: Constraint) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: the value meets one of ``constraints`` (see `check`)."""

    def validate(instance: Any, field: attrs.Attribute[Any], value: Any) -> None:
        check(value, field.alias or field.name, *constraints)

    return validate
