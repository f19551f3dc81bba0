"""What a check returns: `Status`, `Finding`, `ErrorInfo` and `Result`."""

from __future__ import annotations

import enum
import functools
import traceback as _traceback
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

from mlchecks._json import decode_float, encode_float, jsonable, to_float
from mlchecks._text import redact
from mlchecks.exceptions import CheckFailed

__all__ = ["ErrorInfo", "Finding", "Result", "Status"]

T = TypeVar("T")


def find_named(items: Iterable[T], name: str, attribute: str, kind: str, where: str) -> T:
    """The first of ``items`` whose ``attribute`` is ``name``.

    Raises:
        KeyError: ``"no {kind} 'x' in {where} ({kind}s: 'a', 'b')"``, naming what there is.
    """
    seen = list(items)
    for item in seen:
        if getattr(item, attribute) == name:
            return item
    names = ", ".join(repr(getattr(item, attribute)) for item in seen) or "none"
    raise KeyError(f"no {kind} {name!r} in {where} ({kind}s: {names})")


@functools.total_ordering
class Status(enum.Enum):
    """The verdict of a finding, a check or a suite, ordered by severity.

    ``PASS < SKIP < WARN < FAIL < ERROR``. ERROR means the check itself could not run.

    >>> Status.worst([Status.PASS, Status.WARN, Status.SKIP])
    <Status.WARN: 'warn'>
    >>> Status.FAIL > Status.WARN
    True
    >>> Status("fail")
    <Status.FAIL: 'fail'>
    """

    PASS = "pass"
    SKIP = "skip"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def severity(self) -> int:
        """The rank of this status, 0 for PASS up to 4 for ERROR."""
        return _SEVERITY[self]

    @property
    def passed(self) -> bool:
        """True for PASS, SKIP and WARN: nothing in the system is known to be broken."""
        return self.severity <= _SEVERITY[Status.WARN]

    @property
    def label(self) -> str:
        """The upper-case word reports print (``"PASS"``)."""
        return self.name

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self.severity < other.severity

    @classmethod
    def worst(cls, statuses: Iterable[Status], default: Status | None = None) -> Status:
        """The most severe of ``statuses``; ``default`` (PASS) when there are none."""
        return max(statuses, default=default if default is not None else cls.PASS)


_SEVERITY = {s: i for i, s in enumerate(Status)}


def _to_status(value: Status | str) -> Status:
    if isinstance(value, Status):
        return value
    try:
        return Status(str(value).lower())
    except ValueError:
        names = ", ".join(s.value for s in Status)
        raise ValueError(f"'status' must be one of {names} (got {value!r})") from None


def _text(value: Any) -> str:
    """Text entering a result: a string, with every URL password hidden."""
    return redact(str(value))


def _optional_float(value: Any) -> float | None:
    return None if value is None else to_float(value)


def _metrics(value: Mapping[str, Any] | None) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"'metrics' must be a mapping of str to float (got {type(value)!r})")
    return {str(k): to_float(v) for k, v in value.items()}


def _details(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"'details' must be a mapping (got {type(value)!r})")
    converted: dict[str, Any] = jsonable(value)
    return converted


@attrs.frozen
class Finding:
    """One judged condition inside a check.

    Args:
        name: what was judged, stable snake_case (``"churn"``, ``"slice_3.accuracy"``).
        status: the verdict on this one condition.
        observed: the measured value, or None when the condition is not numeric.
        limit: the threshold in words, such as ``"<= 0.01"``.
        message: one sentence naming the value, the limit and what it means.

    >>> f = Finding("churn", Status.FAIL, 0.157, "<= 0.01", "churn 0.157 exceeds 0.01")
    >>> f.passed
    False
    """

    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    status: Status = attrs.field(converter=_to_status)
    observed: float | None = attrs.field(default=None, converter=_optional_float)
    limit: str = attrs.field(default="", converter=_text)
    message: str = attrs.field(default="", converter=_text)

    @property
    def passed(self) -> bool:
        """True when this finding's status is PASS, SKIP or WARN."""
        return self.status.passed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; `Finding.from_dict` inverts it exactly."""
        return {
            "name": self.name,
            "status": self.status.value,
            "observed": None if self.observed is None else encode_float(self.observed),
            "limit": self.limit,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Rebuild a finding from `Finding.to_dict` output."""
        observed = data.get("observed")
        if observed is not None:
            observed = decode_float(observed)
        limit, message = data.get("limit", ""), data.get("message", "")
        return cls(data["name"], data["status"], observed, limit, message)


@attrs.frozen
class ErrorInfo:
    """Why a check could not run: the exception's type, message and formatted traceback.

    A URL password in any of them is hidden (``http://user:***@host``): errors are where
    credentials leak first (a connection error names the URL it could not reach).

    >>> try:
    ...     1 / 0
    ... except ZeroDivisionError as exc:
    ...     info = ErrorInfo.from_exception(exc)
    >>> info.type, info.message
    ('ZeroDivisionError', 'division by zero')
    >>> ErrorInfo("OSError", "cannot reach postgresql://ml:s3cret@db").message
    'cannot reach postgresql://ml:***@db'
    """

    type: str = attrs.field(converter=_text)
    message: str = attrs.field(converter=_text)
    traceback: str = attrs.field(default="", converter=_text)

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Capture ``exc`` with its traceback as text."""
        text = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            message = str(exc)
        except Exception:  # an exception whose __str__ fails still becomes an error
            message = f"<{type(exc).__name__} whose str() raised>"
        return cls(type=type(exc).__name__, message=message, traceback=text)

    def to_dict(self) -> dict[str, str]:
        """A JSON-safe dict."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorInfo:
        """Rebuild from `ErrorInfo.to_dict` output."""
        return cls(data["type"], data.get("message", ""), data.get("traceback", ""))


def _findings(value: Iterable[Finding]) -> tuple[Finding, ...]:
    items = tuple(value)
    for item in items:
        if not isinstance(item, Finding):
            raise TypeError(f"'findings' must contain Finding objects (got {item!r})")
    return items


def _rubric(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 7:
        raise ValueError(f"'rubric' must be an int in 1..7 or None (got {value!r})")
    return value


@attrs.frozen(eq=False)
class Result:
    """The outcome of running one check.

    Args:
        check: the check's name.
        status: the verdict, usually the worst of the findings'.
        summary: one line for humans. A URL password in it (as in every text a result
            holds: finding messages and limits, errors, details) is hidden as ``***``.
        findings: each judged condition.
        metrics: every measured figure, as Python floats.
        details: drill-down tables; converted to JSON-safe values on construction.
        rubric: the ML Test Score infrastructure test (1..7) this check automates.
        duration_s: wall time of the run.
        error: for ERROR results, the exception that stopped the check.
        kind: what produced the result: the check class's qualified name
            (``"mlchecks.checks.quality.QualityCheck"``), set by `run_check`. Reports pick
            figures by it, never by the user-chosen ``check`` name.

    A custom check builds its result in one line:

    >>> r = Result(check="my_check", status=Status.PASS, summary="all good")
    >>> r.passed
    True
    >>> Result.from_dict(r.to_dict()) == r
    True
    """

    check: str = attrs.field(validator=attrs.validators.instance_of(str))
    status: Status = attrs.field(converter=_to_status)
    summary: str = attrs.field(default="", converter=_text)
    findings: tuple[Finding, ...] = attrs.field(default=(), converter=_findings)
    metrics: Mapping[str, float] = attrs.field(factory=dict, converter=_metrics)
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=_details)
    rubric: int | None = attrs.field(default=None, converter=_rubric)
    duration_s: float = attrs.field(default=0.0, converter=to_float)
    error: ErrorInfo | None = attrs.field(default=None)
    kind: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )

    @classmethod
    def from_findings(
        cls,
        check: str,
        findings: Iterable[Finding],
        *,
        summary: str | None = None,
        pass_summary: str | None = None,
        **kwargs: Any,
    ) -> Result:
        """Build a result whose status is the worst finding's (PASS when there are none).

        Without a ``summary`` the worst finding's message is used; when every finding
        passed, ``pass_summary`` (what was shown to hold, in one line) or a count.

        >>> f = Finding("loss_finite", Status.PASS, message="every loss is finite")
        >>> Result.from_findings("loss", [f]).summary
        'PASS: 1 of 1 conditions passed'
        """
        items = tuple(findings)
        status = Status.worst(f.status for f in items)
        if summary is None:
            bad = [f for f in items if f.status.severity >= Status.WARN.severity]
            ok = sum(f.status is Status.PASS for f in items)
            if bad:
                worst = max(bad, key=lambda f: f.status)
                summary = worst.message or f"{worst.name}: {worst.status.label}"
            elif pass_summary is not None:
                summary = pass_summary
            else:
                summary = f"{status.label}: {ok} of {len(items)} conditions passed"
        return cls(check=check, status=status, summary=summary, findings=items, **kwargs)

    @classmethod
    def from_exception(
        cls, check: str, exc: BaseException, *, rubric: int | None = None, duration_s: float = 0.0
    ) -> Result:
        """An ERROR result for a check that raised ``exc``; the traceback is kept."""
        info = ErrorInfo.from_exception(exc)
        return cls(
            check=check,
            status=Status.ERROR,
            summary=f"check could not run: {info.type}: {info.message}",
            rubric=rubric,
            duration_s=duration_s,
            error=info,
        )

    @property
    def passed(self) -> bool:
        """True when the status is PASS, WARN or SKIP."""
        return self.status.passed

    def raise_for_status(self) -> Result:
        """Raise `CheckFailed` (carrying this result) unless it passed; else return self."""
        if not self.passed:
            raise CheckFailed(self)
        return self

    def finding(self, name: str) -> Finding:
        """The finding called ``name``; `KeyError` lists the names when there is none."""
        return find_named(self.findings, name, "name", "finding", f"result {self.check!r}")

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON-safe dict; `Result.from_dict` rebuilds an equal result."""
        return {
            "check": self.check,
            "status": self.status.value,
            "summary": self.summary,
            "rubric": self.rubric,
            "duration_s": encode_float(self.duration_s),
            "findings": [f.to_dict() for f in self.findings],
            "metrics": {k: encode_float(v) for k, v in self.metrics.items()},
            "details": dict(self.details),
            "error": None if self.error is None else self.error.to_dict(),
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """Rebuild a result from `Result.to_dict` output (or its JSON)."""
        error = data.get("error")
        return cls(
            check=data["check"],
            status=data["status"],
            summary=data.get("summary", ""),
            findings=[Finding.from_dict(f) for f in data.get("findings", ())],
            metrics={k: decode_float(v) for k, v in data.get("metrics", {}).items()},
            details=data.get("details", {}),
            rubric=data.get("rubric"),
            duration_s=decode_float(data.get("duration_s", 0.0)),
            error=None if error is None else ErrorInfo.from_dict(error),
            kind=data.get("kind"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        from mlchecks.report.text import result_to_text

        return result_to_text(self)

    def _repr_html_(self) -> str:
        from mlchecks.report.html import result_to_html

        return result_to_html(self)
