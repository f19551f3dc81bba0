"""The glossary in code: one field factory per kind of check setting.

Every built-in check declares its settings with these factories, so the same concept has
the same name pattern, type, range and error message everywhere (docs/concepts.md,
"Glossary"; ``tests/test_glossary.py`` walks every check against it):

- `limit` — ``max_<what>`` / ``min_<what>``: a judged limit. A number or a condition
  (`AtMost` for ``max_``, `AtLeast` for ``min_``); the field holds the condition, whose
  ``severity`` (FAIL or WARN) the user picks.
- `band` — ``<what>_range``: a two-sided judged limit, a ``(low, high)`` pair or `Between`.
- `tolerance` — ``<what>_atol`` / ``<what>_rtol``: how far two values may differ and
  still count as equal (``|a - b| <= atol + rtol * |b|``), a finite number >= 0.
- `alpha` — the significance level of a check's statistical tests, in (0, 0.5).
- `count` — ``n_<what>``: an integer count.
- `seconds` — ``<what>_s`` (``*_timeout_s``, ``budget_s``): a duration in seconds.
- `seed` — an ``int`` or None for `Context.seed`.

`renamed` makes an old keyword fail with a `TypeError` that names its new name.

Type checkers see what a user may pass: a ``max_*`` field is annotated `MaxLimit`
(``float | AtMost``), a ``min_*`` field `MinLimit`, a ``*_range`` field `Range`. At run time the
field always holds the condition; check code reads it through `held`, which narrows the type.

>>> import attrs
>>> @attrs.frozen
... class Example:
...     max_churn: object = limit("max", 0.01, high=1.0)
>>> Example().max_churn
AtMost(value=0.01, severity=<Status.FAIL: 'fail'>)
>>> Example(max_churn=AtMost(0.02, severity="warn")).max_churn.severity
<Status.WARN: 'warn'>
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias, TypeVar, Union

import attrs

from mlchecks._constraints import (
    BOOLEAN,
    CALLABLE,
    COUNT_MAX,
    NONE,
    RUBRIC,
    TEXT,
    Constraint,
    InstanceOf,
    Interval,
    Options,
    check,
    reject,
    valid,
)
from mlchecks._constraints import describe as _describe
from mlchecks._constraints import is_int as _is_int
from mlchecks.conditions import AtLeast, AtMost, Between, NoWorseThan
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Status

__all__ = [
    "ALPHA_RANGE",
    "BOOLEAN",
    "CALLABLE",
    "COUNT_MAX",
    "NONE",
    "RUBRIC",
    "SECONDS_MAX",
    "SEED_MAX",
    "TEXT",
    "Constraint",
    "InstanceOf",
    "Interval",
    "MaxLimit",
    "MinLimit",
    "Options",
    "Range",
    "alpha",
    "band",
    "check",
    "choice",
    "count",
    "flag",
    "function",
    "held",
    "held_or_none",
    "held_range",
    "instance",
    "limit",
    "limit_value",
    "name_field",
    "number",
    "reject",
    "renamed",
    "resolve_seed",
    "rubric",
    "seconds",
    "seed",
    "tolerance",
    "valid",
]

#: The one range of every ``alpha``: open at both ends.
ALPHA_RANGE = (0.0, 0.5)

#: ``attrs.Attribute.metadata["mlchecks"]`` says which glossary kind a field is.
KIND = "mlchecks"

#: The largest seed: any int64 consumer (numpy, torch) takes it.
SEED_MAX = 2**63 - 1
#: The longest duration a ``*_s`` field takes: a year. Longer is a typo, and the standard
#: library's waits overflow near 3e2 years (``threading.TIMEOUT_MAX``).
SECONDS_MAX = 365 * 24 * 3600.0

_C = TypeVar("_C", bound=type)
_Cond = TypeVar("_Cond", AtMost, AtLeast, Between)

#: What a ``max_*`` field accepts: a number or `AtMost` (it holds the `AtMost`).
MaxLimit: TypeAlias = Union[float, AtMost]  # noqa: UP007
#: What a ``min_*`` field accepts: a number or `AtLeast` (it holds the `AtLeast`).
MinLimit: TypeAlias = Union[float, AtLeast]  # noqa: UP007
#: What a ``*_range`` field accepts: a ``(low, high)`` pair or `Between` (it holds `Between`).
Range: TypeAlias = Union[tuple[float, float], Between]  # noqa: UP007


def held(value: float | _Cond) -> _Cond:
    """The condition a limit field holds: its converter turned any number into one.

    >>> held(AtMost(0.01)).value
    0.01
    """
    if not isinstance(value, (AtMost, AtLeast, Between)):
        raise TypeError(f"a limit field holds a condition (got {_describe(value)})")
    return value


def held_or_none(value: float | _Cond | None) -> _Cond | None:
    """`held` for a limit that can be switched off (None)."""
    return None if value is None else held(value)


def held_range(value: tuple[float, float] | Between) -> Between:
    """The `Between` a ``*_range`` field holds."""
    if not isinstance(value, Between):
        raise TypeError(f"a range field holds a Between (got {_describe(value)})")
    return value


def _real(value: Any, name: str) -> float:
    return float(check(value, name, Interval()))


def _in_range(number: float, name: str, low: float | None, high: float | None) -> None:
    if (low is not None and number < low) or (high is not None and number > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise InvalidInput(f"'{name}' must be in [{lo}, {hi}] (got {number:g})")


def _limit_converter(
    kind: Literal["max", "min"],
    low: float | None,
    high: float | None,
    integer: bool,
    optional: bool,
    severity: Status,
) -> Callable[[Any, attrs.Attribute[Any]], AtMost | AtLeast | None]:
    cls = AtMost if kind == "max" else AtLeast
    example = f"{cls.__name__}(...)"

    def convert(value: Any, field: attrs.Attribute[Any]) -> AtMost | AtLeast | None:
        name = field.name
        if value is None:
            if optional:
                return None
            raise InvalidInput(f"'{name}' must be a number or {example} (got None)")
        if isinstance(value, (AtMost, AtLeast, Between, NoWorseThan)):
            if not isinstance(value, cls):
                raise InvalidInput(
                    f"'{name}' must be a number or {example} (got {value!r}; "
                    f"a {'max' if kind == 'max' else 'min'}imum is {cls.__name__})"
                )
            _in_range(value.value, name, low, high)
            if integer and value.value != int(value.value):
                raise InvalidInput(f"'{name}' must be a whole number (got {value.value:g})")
            return value
        off = " or None" if optional else ""
        number = float(check(value, name, _LimitNumber(f"a number or {example}{off}")))
        _in_range(number, name, low, high)
        if integer and number != int(number):
            raise InvalidInput(f"'{name}' must be a whole number (got {number:g})")
        return cls(number, severity=severity)

    return convert


class _LimitNumber(Interval):
    """A limit's plain number: finite (a limit that can be switched off takes None)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def bounds(self, value: Any) -> str:
        return "a finite number"


def limit(
    kind: Literal["max", "min"],
    default: Any,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    integer: bool = False,
    optional: bool = False,
    severity: Status | str = Status.FAIL,
) -> Any:
    """A ``max_*``/``min_*`` field: a number or a condition, stored as the condition.

    Args:
        kind: ``"max"`` (numbers become `AtMost`) or ``"min"`` (`AtLeast`).
        default: the default number (or condition, or None when ``optional``).
        low, high: the range the limit's value must lie in (inclusive; None = unbounded).
        integer: the limit counts things, so it must be a whole number.
        optional: None switches the limit off.
        severity: the severity a plain number gets (a condition keeps its own).
    """
    convert = _limit_converter(kind, low, high, integer, optional, Status(severity))
    converter = attrs.Converter(convert, takes_field=True)
    meta = {KIND: "limit", "limit": kind, "low": low, "high": high, "integer": integer}
    return attrs.field(default=default, converter=converter, kw_only=True, metadata=meta)


def limit_value(condition: AtMost | AtLeast | None) -> float | None:
    """The number a `limit` field holds (None when it is switched off)."""
    return None if condition is None else condition.value


def band(default: tuple[float, float] | Between, *, low: float | None = None) -> Any:
    """A ``*_range`` field: a ``(low, high)`` pair or `Between`, stored as `Between`."""

    def convert(value: Any, field: attrs.Attribute[Any]) -> Between:
        if isinstance(value, Between):
            bound = value
        else:
            try:
                lo, hi = value
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"'{field.name}' must be a (low, high) pair or Between(low, high) "
                    f"(got {_describe(value)})"
                ) from None
            lo_f, hi_f = _real(lo, field.name), _real(hi, field.name)
            if lo_f > hi_f:
                raise InvalidInput(
                    f"'{field.name}' must have low <= high (got ({lo_f:g}, {hi_f:g}))"
                )
            bound = Between(lo_f, hi_f)
        if low is not None and bound.low < low:
            raise InvalidInput(f"'{field.name}' must start at >= {low:g} (got {bound.low:g})")
        return bound

    converter = attrs.Converter(convert, takes_field=True)
    return attrs.field(default=default, converter=converter, kw_only=True, metadata={KIND: "band"})


def _number_converter(
    kind: str, low: float, high: float | None, low_open: bool, high_open: bool, optional: bool
) -> Callable[[Any, attrs.Attribute[Any]], float | None]:
    closed: dict[tuple[bool, bool], Literal["both", "left", "right", "neither"]] = {
        (False, False): "both",
        (False, True): "left",
        (True, False): "right",
        (True, True): "neither",
    }
    guard = kind == "seconds"  # SECONDS_MAX only catches typos
    interval = Interval(low, high, closed=closed[low_open, high_open], guard=guard)

    def convert(value: Any, field: attrs.Attribute[Any]) -> float | None:
        if value is None and optional:
            return None
        allowed = (interval, NONE) if optional else (interval,)
        return float(check(value, field.name, *allowed))

    return convert


def number(
    default: float,
    *,
    low: float = 0.0,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A setting that is a finite number in a range (held as a float), e.g. a quantile."""
    convert = _number_converter("number", low, high, low_open, high_open, False)
    converter = attrs.Converter(convert, takes_field=True)
    return attrs.field(default=default, converter=converter, kw_only=True)


def tolerance(default: float) -> Any:
    """A ``*_atol``/``*_rtol`` field: a finite number >= 0."""
    convert = _number_converter("tolerance", 0.0, None, False, False, False)
    converter = attrs.Converter(convert, takes_field=True)
    return attrs.field(
        default=default, converter=converter, kw_only=True, metadata={KIND: "tolerance"}
    )


def alpha(default: float) -> Any:
    """The ``alpha`` field: a significance level in (0, 0.5)."""
    convert = _number_converter("alpha", ALPHA_RANGE[0], ALPHA_RANGE[1], True, True, False)
    converter = attrs.Converter(convert, takes_field=True)
    return attrs.field(default=default, converter=converter, kw_only=True, metadata={KIND: "alpha"})


def seconds(default: float | None, *, optional: bool = False) -> Any:
    """A ``*_s`` field: a duration in seconds in (0, `SECONDS_MAX`] (None if ``optional``)."""
    convert = _number_converter("seconds", 0.0, SECONDS_MAX, True, False, optional)
    converter = attrs.Converter(convert, takes_field=True)
    return attrs.field(
        default=default, converter=converter, kw_only=True, metadata={KIND: "seconds"}
    )


def count(
    default: int | None,
    *,
    minimum: int = 0,
    maximum: int = COUNT_MAX,
    optional: bool = False,
    kw_only: bool = True,
) -> Any:
    """An ``n_*`` field: an ``int`` in [``minimum``, ``maximum``] (None allowed if ``optional``).

    The upper bound keeps a typo (``10**12`` for ``10**2``) from allocating or looping for
    hours; a count that sizes a computation declares a tighter one.
    """
    allowed = (Interval(minimum, maximum, integer=True), *((NONE,) if optional else ()))
    meta = {KIND: "count", "minimum": minimum, "maximum": maximum}
    return attrs.field(
        default=default,
        converter=_as_int,
        validator=valid(*allowed),
        kw_only=kw_only,
        metadata=meta,
    )


def _as_int(value: Any) -> Any:
    """A numpy integer as a Python int (reprs and JSON stay clean); anything else unchanged."""
    return int(value) if _is_int(value) else value


def seed() -> Any:
    """The ``seed`` field: an ``int`` >= 0, or None (the default) for `Context.seed`."""
    return count(None, minimum=0, maximum=SEED_MAX, optional=True)


def flag(default: bool, *, kw_only: bool = True) -> Any:
    """A switch: True or False (not 0, 1 or ``"yes"``)."""
    return attrs.field(
        default=default, validator=valid(BOOLEAN), kw_only=kw_only, metadata={KIND: "flag"}
    )


def name_field(default: Any = attrs.NOTHING, *, kw_only: bool = True) -> Any:
    """A ``name`` field: a non-empty printable string (a report line, a pytest id)."""
    return attrs.field(
        default=default, validator=valid(TEXT), kw_only=kw_only, metadata={KIND: "name"}
    )


def rubric(default: int | None, *, kw_only: bool = True) -> Any:
    """The ``rubric`` field: the ML Test Score test the check automates, 1..7, or None."""
    return attrs.field(
        default=default,
        converter=_as_int,
        validator=valid(RUBRIC, NONE),
        kw_only=kw_only,
        metadata={KIND: "rubric"},
    )


def choice(default: str, *options: str, kw_only: bool = True) -> Any:
    """A field that takes one of the strings ``options``."""
    return attrs.field(
        default=default,
        validator=valid(Options(*options)),
        kw_only=kw_only,
        metadata={KIND: "choice", "options": options},
    )


def instance(
    kinds: type | tuple[type, ...],
    text: str,
    *,
    default: Any = attrs.NOTHING,
    optional: bool = False,
    kw_only: bool = True,
) -> Any:
    """A field that holds an instance of ``kinds`` (``text`` names it in the message).

    An ``optional`` field also takes None, its default unless ``default`` is given.
    """
    allowed = (InstanceOf(kinds, text), *((NONE,) if optional else ()))
    if optional and default is attrs.NOTHING:
        default = None
    return attrs.field(default=default, validator=valid(*allowed), kw_only=kw_only)


def function(*, optional: bool = True, kw_only: bool = True) -> Any:
    """A callable field (None by default when ``optional``)."""
    allowed = (CALLABLE, NONE) if optional else (CALLABLE,)
    default = None if optional else attrs.NOTHING
    return attrs.field(default=default, validator=valid(*allowed), kw_only=kw_only)


def resolve_seed(value: int | None, context: Any) -> int:
    """``value``, or the context's seed when it is None (0 without a context)."""
    if value is not None:
        return value
    return int(getattr(context, "seed", 0) or 0)


def renamed(old_to_new: Mapping[str, str]) -> Callable[[_C], _C]:
    """A class decorator: passing an old keyword raises `TypeError` naming its new name.

    No silent aliases: the old name fails, and the message says what to write instead.
    The mapping is kept as ``cls.__mlchecks_renamed__`` (the CHANGELOG lists it).

    >>> @renamed({"top_k": "n_top"})
    ... @attrs.frozen
    ... class Example:
    ...     n_top: int = 10
    >>> Example(top_k=3)
    Traceback (most recent call last):
    ...
    TypeError: Example() got the keyword 'top_k', which was renamed to 'n_top' in mlchecks 0.2.0
    """

    def decorate(cls: _C) -> _C:
        init = cls.__init__  # type: ignore[misc]

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            for old in sorted(kwargs.keys() & old_to_new.keys()):
                new = old_to_new[old]
                shown = repr(new) if new.isidentifier() else new
                raise TypeError(
                    f"{cls.__name__}() got the keyword {old!r}, which was renamed to "
                    f"{shown} in mlchecks 0.2.0"
                )
            init(self, *args, **kwargs)

        cls.__init__ = __init__  # type: ignore[misc]
        cls.__mlchecks_renamed__ = dict(old_to_new)  # type: ignore[attr-defined]
        return cls

    return decorate
