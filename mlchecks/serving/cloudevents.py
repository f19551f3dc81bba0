"""CloudEvents payload logs (KServe's inference logger, MLServer), paired into `Record`s.

KServe's logger (``spec.predictor.logger``) sends two CloudEvents per request to a sink:
type ``org.kubeflow.serving.inference.request`` with the request's body, then
``org.kubeflow.serving.inference.response`` with the answer. Both carry the request id as
their ``id`` and the extension attributes ``inferenceservicename``, ``namespace``,
``component`` and ``endpoint``; the logger sends the response event only for HTTP 200
answers, so a failed request shows up as a request that never gets a response. MLServer
and Seldon send the same pair with types ``io.seldon.serving.inference.request`` and
``.response`` and the attributes ``modelid``, ``inferenceservicename``, ``endpoint`` and
``requestid``.

`CloudEventPairer` joins the two events of each request into one `Record`:

- **version**: the first of ``version_from`` (attribute names, or a callable given each
  event) the event has, not empty; by default ``endpoint`` (KServe's ``default`` /
  ``canary``, MLServer's model name), else ``modelid`` (MLServer, Seldon: ``iris_1``),
  else ``revision``, else ``inferenceservicename`` (versions deployed as separate
  InferenceServices). ``revision`` is an attribute of that name or else the Knative
  revision in ``source``: KServe's logger sends the pod's name as the source
  (``iris-predictor-00002-deployment-6d4f9-x2x7k``), so the two revisions that
  ``canaryTrafficPercent`` splits between are told apart (``iris-predictor-00002``);
- **latency**: the response event's ``time`` minus the request event's (the logger stamps
  each event as it sends it, so this is the latency as the logger saw it);
- **outputs**: the response's V2 ``outputs`` (the first output's ``data`` reshaped by its
  ``shape``), V1 ``predictions``, or Seldon's ``data.ndarray`` / ``data.tensor``;
- **failures**: a request without a response within ``pair_timeout_s`` of log time (the
  latest event time seen) is a failed record, ``"no response logged"``; a response
  event's ``statuscode`` attribute and a body ``{"error": ...}`` are kept too.

Events may arrive in any order: a response before its request waits for it the same way.
A sink receiving events over HTTP turns each into an event with `event_from_http` and
feeds the same pairer.

>>> pairer = CloudEventPairer()
>>> base = {"specversion": "1.0", "id": "r1", "source": "http://localhost:9081/",
...         "endpoint": "canary", "inferenceservicename": "iris"}
>>> pairer.add({**base, "type": "org.kubeflow.serving.inference.request",
...             "time": "2024-05-01T12:00:00Z", "data": {"instances": [[6.8, 2.8]]}})
[]
>>> [record] = pairer.add({**base, "type": "org.kubeflow.serving.inference.response",
...                        "time": "2024-05-01T12:00:00.025Z", "data": {"predictions": [1]}})
>>> record.version, round(record.latency_s, 3), record.outputs
('canary', 0.025, [1])
"""

from __future__ import annotations

import base64
import binascii
import collections
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks._json import loads
from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._http import check_seconds
from mlchecks.serving._v2_codec import decode_tensor
from mlchecks.serving.records import Record, parse_time

__all__ = [
    "DEFAULT_VERSION_FROM",
    "NO_RESPONSE",
    "CloudEventPairer",
    "event_from_http",
    "event_kind",
]

#: The attributes the version is read from, first present and not empty wins.
DEFAULT_VERSION_FROM = ("endpoint", "modelid", "revision", "inferenceservicename")
#: The failure of a request whose response was never logged.
NO_RESPONSE = "no response logged"

# CloudEvents 0.1 attribute names (KFServing's first logger) -> the 1.0 names.
_LEGACY = {
    "cloudeventsversion": "specversion",
    "eventtype": "type",
    "eventid": "id",
    "eventtime": "time",
    "contenttype": "datacontenttype",
}

VersionFrom = str | Sequence[str] | Callable[[Mapping[str, Any]], Any]

# A Knative pod's name starts with its revision's: <service>-<5-digit generation>-deployment-.
_REVISION = re.compile(r"([a-z0-9][-a-z0-9.]*-\d{5})-deployment-")


def _attribute(event: Mapping[str, Any], name: str) -> Any:
    """The event's attribute ``name``; ``revision`` falls back on the revision in ``source``."""
    value = event.get(name)
    if name == "revision" and (value is None or value == ""):
        source = event.get("source")
        match = _REVISION.search(source) if isinstance(source, str) else None
        value = None if match is None else match.group(1)
    return value


def event_kind(event: Mapping[str, Any]) -> str | None:
    """``"request"`` or ``"response"`` for an inference payload event, else None.

    >>> event_kind({"type": "io.seldon.serving.inference.response"})
    'response'
    >>> event_kind({"type": "io.seldon.serving.inference.outlier"}) is None
    True
    """
    kind = event.get("type", event.get("eventtype"))
    if isinstance(kind, str):
        for suffix in ("request", "response"):
            if kind.endswith(f"inference.{suffix}"):
                return suffix
    return None


def _decode_body(body: bytes) -> dict[str, Any]:
    """The event members carrying ``body``: ``data`` (JSON, or text) or ``data_base64``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"data_base64": base64.b64encode(body).decode("ascii")}
    try:
        return {"data": loads(text)}
    except ValueError:
        return {"data": text}


def event_from_http(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    """The CloudEvent an HTTP request carries, as its structured JSON form (a dict).

    Binary mode (``ce-*`` headers, the payload as the body) and structured mode
    (``Content-Type: application/cloudevents+json``, the whole event as the body) are
    both read; header names are case-insensitive and values percent-decoded. ``headers``
    is a mapping, pairs, or the ``http.client.HTTPMessage`` of ``http.server``.

    Raises:
        InvalidInput: the request carries no CloudEvent (no ``ce-type`` header and no
            structured body), or a structured body is not a JSON object.

    >>> event = event_from_http(
    ...     {"Ce-Specversion": "1.0", "Ce-Type": "org.kubeflow.serving.inference.response",
    ...      "Ce-Id": "r1", "Ce-Endpoint": "canary", "Content-Type": "application/json"},
    ...     b'{"predictions": [1]}')
    >>> event["type"], event["id"], event["endpoint"], event["data"]
    ('org.kubeflow.serving.inference.response', 'r1', 'canary', {'predictions': [1]})
    """
    # a Mapping or http.client.HTTPMessage (not a Mapping, but with items()), else pairs
    pairs: Iterable[Any] = headers.items() if hasattr(headers, "items") else headers
    lowered = [(str(name).lower(), str(value)) for name, value in pairs]
    content_type = next((v for n, v in lowered if n == "content-type"), "")
    if content_type.split(";")[0].strip().lower() == "application/cloudevents+json":
        try:
            event = loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the structured CloudEvent body is not JSON ({exc})") from None
        if not isinstance(event, dict):
            raise InvalidInput(f"a CloudEvent must be a JSON object (got {describe(event)})")
        return event
    event = {n[3:]: urllib.parse.unquote(v) for n, v in lowered if n.startswith("ce-")}
    if "type" not in event and "eventtype" not in event:
        raise InvalidInput(
            "not a CloudEvent: no 'ce-type' header and the content type is not "
            f"application/cloudevents+json (got {content_type or 'none'!r})"
        )
    if content_type:
        event["datacontenttype"] = content_type
    if body:
        event.update(_decode_body(body))
    return event


def _payload(event: Mapping[str, Any]) -> Any:
    """The event's data: JSON decoded where it is JSON text or base64 of JSON."""
    if "data_base64" in event:
        try:
            raw = base64.b64decode(event["data_base64"], validate=True)
            return loads(raw)
        except (binascii.Error, TypeError, ValueError):
            return None
    data = event.get("data")
    if isinstance(data, str):
        try:
            return loads(data)
        except ValueError:
            return data
    return data


def _outputs(body: Any) -> Any:
    """The prediction in a response body: V2, V1 or Seldon; None when it has none."""
    if not isinstance(body, Mapping):
        return None
    outputs = body.get("outputs")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], Mapping):
        try:
            return decode_tensor(outputs[0])
        except ValueError:
            return outputs[0].get("data")
    if "predictions" in body:
        return body["predictions"]
    seldon = body.get("data")
    if isinstance(seldon, Mapping):
        if "ndarray" in seldon:
            return seldon["ndarray"]
        tensor = seldon.get("tensor")
        if isinstance(tensor, Mapping):
            try:
                return np.asarray(tensor["values"]).reshape(tensor["shape"])
            except (KeyError, TypeError, ValueError):
                return tensor.get("values")
    return None


class _Half:
    """One event waiting for its other half: a request's version, or a response's record."""

    __slots__ = ("record", "request_id", "time", "version")

    def __init__(self, request_id: str, time: float | None, version: str) -> None:
        self.request_id = request_id
        self.time = time
        self.version = version
        self.record: Record | None = None


def _response_record(event: Mapping[str, Any], half: _Half) -> Record:
    """The record a response event describes, without latency."""
    body = _payload(event)
    error = body.get("error") if isinstance(body, Mapping) else None
    status = event.get("statuscode")
    if isinstance(status, str) and status.strip().isdigit():
        status = int(status)
    return Record(
        version=half.version,
        error=error if isinstance(error, str) and error else None,
        status=status,
        outputs=_outputs(body),
        request_id=half.request_id,
        time=half.time,
    )


class CloudEventPairer:
    """Join the request and response CloudEvents of each request into one `Record`.

    Args:
        version_from: where the version is read: an attribute name, names tried in order
            (default `DEFAULT_VERSION_FROM`), or a callable given each event (a dict)
            returning the version.
        pair_timeout_s: how long, in log time, a request waits for its response before it
            becomes a failed record (and a response for its request, before it becomes a
            record without latency); the other half arriving later is counted ``late``
            and dropped, so no request counts twice.
        n_pending: the most events kept waiting; beyond it the oldest is given up.

    `add` returns the records each event completes (its own, and those whose wait ran
    out), `flush` ends every wait (at the end of a log), `expire` ends the waits older
    than a given time (a live sink calls it with the clock). Not thread-safe: lock it.

    >>> pairer = CloudEventPairer(version_from="modelid")
    >>> pairer.add({"type": "io.seldon.serving.inference.request", "id": "a",
    ...             "modelid": "iris_2", "time": 100.0})
    []
    >>> [failed] = pairer.flush()
    >>> failed.version, failed.failure
    ('iris_2', 'no response logged')
    """

    def __init__(
        self,
        *,
        version_from: VersionFrom = DEFAULT_VERSION_FROM,
        pair_timeout_s: float = 30.0,
        n_pending: int = 100_000,
    ) -> None:
        if isinstance(version_from, str):
            version_from = (version_from,)
        if not callable(version_from) and (
            not version_from or not all(isinstance(n, str) and n for n in version_from)
        ):
            raise InvalidInput(
                "'version_from' must be an attribute name, a sequence of them or a callable "
                f"(got {describe(version_from)})"
            )
        if isinstance(n_pending, bool) or not isinstance(n_pending, int) or n_pending < 1:
            raise InvalidInput(f"'n_pending' must be an integer >= 1 (got {n_pending!r})")
        self.version_from = version_from
        self.pair_timeout_s = check_seconds(pair_timeout_s, "pair_timeout_s")
        self.n_pending = n_pending
        self.clock: float | None = None
        self.counts = dict.fromkeys(
            ("events", "paired", "unanswered", "unrequested", "late", "duplicates", "ignored"), 0
        )
        self._given_up: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._waiting: dict[str, collections.OrderedDict[tuple[str, str], _Half]] = {
            "request": collections.OrderedDict(),
            "response": collections.OrderedDict(),
        }

    @property
    def pending(self) -> int:
        """How many events wait for their other half."""
        return sum(len(waiting) for waiting in self._waiting.values())

    def _version(self, event: Mapping[str, Any]) -> str:
        if callable(self.version_from):
            value = self.version_from(event)
            if value is None or value == "":
                raise InvalidInput(f"'version_from' returned no version for event {_id(event)!r}")
            return str(value)
        for name in self.version_from:
            value = _attribute(event, name)
            if value is not None and value != "":
                return str(value)
        tried = ", ".join(repr(n) for n in self.version_from)
        raise InvalidInput(
            f"event {_id(event)!r} has none of the version attributes {tried}; "
            "say which attribute names the version (version_from=)"
        )

    def add(self, event: Mapping[str, Any]) -> list[Record]:
        """Take one event; returns the records it completes (often none, or one).

        Events of other types (outlier, drift, custom) are counted as ``ignored``.

        Raises:
            InvalidInput: the event is not a mapping, has no ``id``, a malformed
                ``time`` or ``statuscode``, or no version; it is not kept.
        """
        if not isinstance(event, Mapping):
            raise InvalidInput(f"a CloudEvent must be a JSON object (got {describe(event)})")
        event = {_LEGACY.get(key, key): value for key, value in event.items()}
        self.counts["events"] += 1
        kind = event_kind(event)
        if kind is None:
            self.counts["ignored"] += 1
            return []
        request_id = _id(event)
        key = (request_id, str(event.get("component") or ""))
        time = None if event.get("time") is None else parse_time(event["time"], "time")
        half = _Half(request_id, time, self._version(event))
        if kind == "response":
            half.record = _response_record(event, half)
        records: list[Record] = []
        other = self._waiting["response" if kind == "request" else "request"].pop(key, None)
        if other is not None:
            request, response = (half, other) if kind == "request" else (other, half)
            records.append(self._paired(request, response))
        elif key in self._given_up:  # its other half was given up: not counted twice
            del self._given_up[key]
            self.counts["late"] += 1
        elif key in self._waiting[kind]:
            self.counts["duplicates"] += 1
        else:
            self._waiting[kind][key] = half
        if time is not None and (self.clock is None or time > self.clock):
            self.clock = time
        if self.clock is not None:
            records += self.expire(self.clock)
        records += self._give_up(lambda: self.pending > self.n_pending)
        return records

    def expire(self, now: float) -> list[Record]:
        """End the waits of events logged ``pair_timeout_s`` or more before ``now``.

        Waits end in arrival order; an event without a ``time`` waits for `flush`.
        """
        cutoff = now - self.pair_timeout_s
        return self._give_up(lambda: False, cutoff)

    def flush(self) -> list[Record]:
        """End every wait: requests become failed records, responses records without latency."""
        return self._give_up(lambda: self.pending > 0)

    def _give_up(self, more: Callable[[], bool], cutoff: float | None = None) -> list[Record]:
        records: list[Record] = []
        for waiting in self._waiting.values():
            while waiting:
                half = next(iter(waiting.values()))
                expired = cutoff is not None and half.time is not None and half.time <= cutoff
                if not (expired or more()):
                    break
                key, _ = waiting.popitem(last=False)
                records.append(self._alone(half))
                self._given_up[key] = None
                if len(self._given_up) > self.n_pending:
                    self._given_up.popitem(last=False)
        return records

    def _alone(self, half: _Half) -> Record:
        if half.record is not None:
            self.counts["unrequested"] += 1
            return half.record
        self.counts["unanswered"] += 1
        return Record(
            version=half.version, error=NO_RESPONSE, request_id=half.request_id, time=half.time
        )

    def _paired(self, request: _Half, response: _Half) -> Record:
        assert response.record is not None
        self.counts["paired"] += 1
        latency = None
        if request.time is not None and response.time is not None:
            latency = response.time - request.time
        if latency is None or latency < 0:
            return response.record
        return attrs.evolve(response.record, latency_s=latency)


def _id(event: Mapping[str, Any]) -> str:
    """The request id of an event: MLServer's ``requestid``, else the event ``id``."""
    value = event.get("requestid") or event.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise InvalidInput(f"a CloudEvent must have an 'id' (got {describe(value)})")
    return str(value)
