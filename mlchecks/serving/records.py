"""The traffic's record: one `Record` per request a platform routed, and readers for logs.

A platform that splits traffic itself (KServe ``canaryTrafficPercent``, Istio, Argo
Rollouts, Flagger) leaves a record of what each version answered: request logs and payload
loggers. `Record` is one request of that record; `mlchecks.checks.CanaryJudge` judges a
stream of them with the tests `CanaryCheck` runs on traffic it sends itself.

>>> Record(version="v2", latency_s=0.012, outputs=[0.1, 0.9]).ok
True
>>> Record(version="v2", status=503).ok
False

A log of requests is one JSON object per line (JSON Lines); `parse_line` reads one line of
the schema below, `mlchecks.serving.read_records` reads or tails a whole file (and
CloudEvents payload logs, see `mlchecks.serving.CloudEventPairer`).

==================  ==========================================================================
key                 meaning
==================  ==========================================================================
``version``         required: the version that answered (text or integer)
``latency_s``       latency in seconds (or ``latency_ms`` in milliseconds; not both)
``error``           ``true``/``false``, a message, or ``null``: the request failed
``status``          the HTTP status code (400 and above is a failure)
``prediction``      the prediction or the model's outputs (or ``outputs``; not both)
``request_id``      the request's id (or ``id``): joins late labels and mirrored requests
``time``            when it was answered: epoch seconds, or ISO-8601 text (UTC if no zone)
``label``           the true label, when already known
==================  ==========================================================================

Unknown keys are ignored. A line with ``request_id`` and ``label`` but no ``version`` is a
`Label` that arrived later.

>>> record = parse_line('{"version": "v2", "latency_ms": 12, "status": 200, "prediction": 1}')
>>> record.version, record.latency_s, record.status, record.outputs
('v2', 0.012, 200, 1)
>>> parse_line('{"id": "r-7", "label": 0, "time": "2024-05-01T12:00:00Z"}')
Label(request_id='r-7', label=0, time=1714564800.0)
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from mlchecks._json import loads
from mlchecks._validate import describe, is_collection
from mlchecks.exceptions import InvalidInput

__all__ = ["Label", "Record", "from_json", "parse_line", "parse_time"]


def _version(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise InvalidInput(f"'version' must be a non-empty string (got {describe(value)})")
    return str(value)


def _latency(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"'latency_s' must be a number of seconds (got {describe(value)})")
    latency = float(value)
    if not math.isfinite(latency) or latency < 0.0:
        raise InvalidInput(f"'latency_s' must be finite and >= 0 (got {value!r})")
    return latency


def _status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise InvalidInput(f"'status' must be an HTTP status code 100-599 (got {describe(value)})")
    return int(value)


def _error(value: Any) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return "error"
    if isinstance(value, str):
        return value or None
    raise InvalidInput(f"'error' must be a message, a bool or None (got {describe(value)})")


def records_source(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: ``value`` is an iterable of records or a callable returning one
    (None too, for a field whose default is None)."""
    if value is None and attribute.default is None:
        return
    if callable(value):
        return
    if not is_collection(value):
        raise InvalidInput(
            f"'{attribute.name}' must be an iterable of Record (and Label) items or a "
            f"callable returning one (got {describe(value)}); read a log with "
            "mlchecks.serving.read_records(path)"
        )


@attrs.frozen(kw_only=True)
class Record:
    """One request as the platform's record shows it.

    Args:
        version: the model version that answered (the log's ``version``, KServe's
            ``predictor``/``canary`` revision, Argo's ``canary``/``stable``).
        latency_s: its latency in seconds (None: not logged).
        error: a message when the request failed (``True`` is taken as ``"error"``).
        status: the HTTP status, when logged; 400 and above is a failure.
        outputs: the prediction or the model's outputs (None when not logged).
        request_id: the request's id (pairs mirrored requests and late labels).
        time: when it was answered, in seconds since the epoch (None: not logged).
        label: the true label when the record already carries it.

    >>> Record(version="v1", error=True).error
    'error'
    """

    version: str = attrs.field(converter=_version)
    latency_s: float | None = attrs.field(default=None, converter=_latency)
    error: str | None = attrs.field(default=None, converter=_error)
    status: int | None = attrs.field(default=None, converter=_status)
    outputs: Any = None
    request_id: str | None = None
    time: float | None = None
    label: Any = None

    @property
    def ok(self) -> bool:
        """True when the request succeeded: no error and no HTTP status of 400 or above."""
        return self.error is None and (self.status is None or self.status < 400)

    @property
    def failure(self) -> str | None:
        """Why the request failed (the error, else ``"HTTP <status>"``); None when it did not."""
        if self.error is not None:
            return self.error
        if self.status is not None and self.status >= 400:
            return f"HTTP {self.status}"
        return None


def _request_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise InvalidInput(f"'request_id' must be a non-empty string (got {describe(value)})")
    return str(value)


def _optional_time(value: Any) -> float | None:
    return None if value is None else parse_time(value)


@attrs.frozen
class Label:
    """A ground-truth label that arrived after its request, joined to it by request id.

    Args:
        request_id: the id of the request it labels (`Record.request_id`).
        label: the true label (a class index or name, or a number).
        time: when it became known, in seconds since the epoch (None: not logged).

    >>> Label("r-1", 2)
    Label(request_id='r-1', label=2, time=None)
    """

    request_id: str = attrs.field(converter=_request_id)
    label: Any = attrs.field()
    time: float | None = attrs.field(default=None, converter=_optional_time)

    @label.validator
    def _check_label(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            raise InvalidInput("'label' must not be None (a Label carries the true label)")


_ISO_8601 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?"
    r"\s*(Z|z|[+-]\d\d(?::?\d\d)?)?"
)


def parse_time(value: Any, name: str = "time") -> float:
    """A time as seconds since the epoch: a number, or ISO-8601 text (UTC when it has no zone).

    Fractions of a second may have any number of digits (Go and KServe write nanoseconds).

    Raises:
        InvalidInput: ``value`` is neither, or is negative or not finite.

    >>> parse_time("2024-05-01T12:00:00.250000000Z")
    1714564800.25
    >>> parse_time("2024-05-01 14:00:00+02:00"), parse_time(1714564800)
    (1714564800.0, 1714564800.0)
    """
    if isinstance(value, str):
        match = _ISO_8601.fullmatch(value.strip())
        if match is None:
            try:
                value = float(value)
            except ValueError:
                raise InvalidInput(
                    f"'{name}' must be epoch seconds or ISO-8601 text such as "
                    f"'2024-05-01T12:00:00Z' (got {value!r})"
                ) from None
        else:
            return _iso_seconds(match, value, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"'{name}' must be epoch seconds or ISO-8601 text (got {describe(value)})"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"'{name}' must be finite and >= 0 (got {value!r})")
    return seconds


def _iso_seconds(match: re.Match[str], text: str, name: str) -> float:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = dt.timedelta(0)
    if zone is not None and zone not in "Zz":
        digits = zone[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
        offset = dt.timedelta(minutes=minutes if zone[0] == "+" else -minutes)
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
            tzinfo=dt.timezone(offset),
        )  # fmt: skip
    except ValueError as exc:
        raise InvalidInput(f"'{name}' is not a valid date and time ({exc}; got {text!r})") from None
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def _pick(obj: Mapping[str, Any], first: str, second: str) -> tuple[str, Any]:
    """The key and value of whichever of two aliases ``obj`` has (None, None when neither)."""
    if first in obj and second in obj:
        raise InvalidInput(f"give one of '{first}' and '{second}', not both")
    key = first if first in obj else second
    return key, obj.get(key)


def _latency_field(obj: Mapping[str, Any]) -> float | None:
    key, value = _pick(obj, "latency_s", "latency_ms")
    if value is None or key == "latency_s":
        return _latency(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"'latency_ms' must be a number of milliseconds (got {describe(value)})")
    return _latency(value / 1000.0)


def _status_field(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def from_json(obj: Any) -> Record | Label:
    """The `Record` (or late `Label`) one decoded log line describes (see the module docs).

    Raises:
        InvalidInput: ``obj`` is not an object, lacks ``version``, or a value is malformed.

    >>> from_json({"version": 3, "error": "timeout", "id": 17}).failure
    'timeout'
    """
    if not isinstance(obj, Mapping):
        raise InvalidInput(f"a log line must be a JSON object (got {describe(obj)})")
    _, request_id = _pick(obj, "request_id", "id")
    if "version" not in obj:
        if request_id is not None and obj.get("label") is not None:
            return Label(request_id, obj["label"], time=obj.get("time"))
        raise InvalidInput(
            "no 'version': a request needs the version that answered it, "
            "a late label needs 'request_id' and 'label'"
        )
    _, outputs = _pick(obj, "prediction", "outputs")
    return Record(
        version=obj["version"],
        latency_s=_latency_field(obj),
        error=obj.get("error"),
        status=_status_field(obj.get("status")),
        outputs=outputs,
        request_id=None if request_id is None else _request_id(request_id),
        time=_optional_time(obj.get("time")),
        label=obj.get("label"),
    )


def parse_line(text: str | bytes) -> Record | Label:
    """The `Record` or late `Label` on one line of a JSON Lines request log.

    Raises:
        InvalidInput: the line is not JSON, or `from_json` rejects it; the message says why.

    >>> parse_line('{"version": "v1", "latency_s": 0.02, "error": null}').ok
    True
    >>> parse_line('{"latency_s": 0.02}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: no 'version': a request needs the version that answered...
    """
    try:
        obj = loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not JSON ({exc})") from None
    return from_json(obj)
