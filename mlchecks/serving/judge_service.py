"""`JudgeService`: the canary judge over HTTP, for the controllers that move the traffic.

Argo Rollouts, Flagger and KServe split the traffic between two versions themselves; they
ask something outside whether the candidate is healthy. `JudgeService` is that something:
it holds the live state of a `mlchecks.checks.CanaryJudge` (a ``CanaryWatch``), feeds it
the platform's record (a record source read on a background thread, records POSTed to it,
KServe payload-logger CloudEvents), and answers in each controller's own terms:

- ``GET /verdict`` (also ``GET /``, and ``POST``/``PUT /verdict`` with any body) answers
  JSON for Argo Rollouts' Web metric provider, always with HTTP 200 (Argo counts any other
  status as a measurement *Error*, not a failure): ``verdict`` is ``"pass"``, ``"fail"``,
  ``"inconclusive"`` (still watching) or ``"insufficient data"``, so
  ``successCondition: result.verdict == "pass"`` and
  ``failureCondition: result.verdict == "fail"`` leave a running canary Argo-inconclusive;
  ``pass`` and ``fail`` are the same as booleans, ``tests`` holds each test's e-value,
  threshold, estimate, interval and limit. ``GET /evidence`` answers everything the
  verdict rests on.
- ``POST /flagger/<hook>`` answers Flagger's webhooks (the payload Flagger posts:
  ``name``, ``namespace``, ``phase``, ``checksum``, ``metadata``). A 2xx lets Flagger go
  on; 412 holds it. ``confirm-rollout``, ``pre-rollout``, ``rollout`` and
  ``confirm-traffic-increase`` answer 200 while the verdict is ``"pass"`` or
  ``"inconclusive"`` (not on ``"fail"`` or ``"insufficient data"``);
  ``confirm-promotion`` answers 200 only on ``"pass"``; ``rollback`` answers 200 (roll
  back now) only on ``"fail"``; ``post-rollout`` and ``event`` are acknowledged with 200.
  A payload of another shape is a 400 naming what is wrong.
- ``GET /metrics`` answers the Prometheus text format 0.0.4: the verdict as a labelled
  gauge, each test's e-value, threshold and rejection, the effect sizes and the limits.
- ``POST /records`` takes records (JSON Lines, or a JSON array, of objects shaped like the
  JSONL log's lines); ``POST /events`` takes KServe's CloudEvents. ``GET /healthz``.

Every request is answered in bounded time (``timeout_s`` per socket read and write; one
lock around the watch); the server binds 127.0.0.1 unless ``allow_remote=True``.

>>> from mlchecks.checks import CanaryJudge
>>> from mlchecks.serving.records import Record
>>> judge = CanaryJudge(baseline="v1", candidate="v2")
>>> with JudgeService(judge, records=[Record(version="v1", latency_s=0.01)]) as service:
...     service.wait_records(5.0)
...     service.verdict()["verdict"]
True
'inconclusive'
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlchecks._json import loads
from mlchecks._validate import check_int, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._http import check_seconds
from mlchecks.serving._judge_answers import (
    HOOKS,
    VERDICTS,
    Snapshot,
    Watch,
    check_flagger_payload,
    flagger_answer,
    json_safe,
    prometheus_text,
)

__all__ = ["HOOKS", "VERDICTS", "JudgeService"]

_log = logging.getLogger(__name__)
_JSON = "application/json"
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


# --------------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handlers (each bounded by timeout_s)
    block_on_close = True

    def __init__(
        self, service: JudgeService, address: tuple[str, int], family: socket.AddressFamily
    ) -> None:
        self.address_family = family
        self.service = service
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles after it
    server_version = "mlchecks-judge"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.service.timeout_s)  # every read and write

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document: Any, **headers: str) -> None:
        body = json.dumps(json_safe(document), allow_nan=False).encode() + b"\n"
        self._send(status, body, _JSON, **headers)

    def _error(self, status: int, message: str, **headers: str) -> None:
        self._json(status, {"error": message}, **headers)

    def _body(self, *, required: bool) -> bytes | None:
        """The request body (None after answering 411 or 413)."""
        length = self.headers.get("Content-Length")
        if length is None:
            if required or self.headers.get("Transfer-Encoding"):
                self._error(411, "send the body with a Content-Length")
                return None
            return b""
        limit = self.server.service.max_body_bytes
        if not length.isdigit() or int(length) > limit:
            self._error(413, f"the body must be at most {limit} bytes (got {length})")
            return None
        return self.rfile.read(int(length))

    def _route(self) -> str:
        path = self.path.split("?", 1)[0].rstrip("/")
        return path or "/verdict"

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_HEAD(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def do_PUT(self) -> None:
        self._guarded(self._post)

    def _guarded(self, handle: Callable[[str], None]) -> None:
        try:
            handle(self._route())
        except Exception as exc:  # answer 500 rather than drop the connection
            _log.exception("the judge service failed on %s %s", self.command, self.path)
            with contextlib.suppress(OSError):
                self._error(500, f"{type(exc).__name__}: {exc}")

    def _get(self, route: str) -> None:
        service = self.server.service
        if route == "/verdict":
            self._json(200, service.verdict())
        elif route == "/evidence":
            self._json(200, service.evidence())
        elif route == "/metrics":
            self._send(200, service.metrics().encode(), _PROMETHEUS)
        elif route == "/healthz":
            health = service.health()
            self._json(200 if health["status"] == "ok" else 503, health)
        elif route in ("/records", "/events") or route.startswith("/flagger/"):
            self._error(405, f"{route} takes POST", Allow="POST")
        else:
            self._error(404, f"no route {route!r}; see /verdict, /metrics, /healthz")

    def _post(self, route: str) -> None:
        service = self.server.service
        if route == "/verdict":  # Argo's Web provider with method POST/PUT and a body
            if self._body(required=False) is not None:
                self._json(200, service.verdict())
            return
        if route not in ("/records", "/events") and not route.startswith("/flagger/"):
            if route in ("/evidence", "/metrics", "/healthz"):
                self._error(405, f"{route} takes GET", Allow="GET")
            else:
                self._error(404, f"no route {route!r}; see /verdict, /records, /flagger/<hook>")
            return
        body = self._body(required=True)
        if body is None:
            return
        if route == "/records":
            status, document = service.post_records(body)
        elif route == "/events":
            status, document = service.post_event(dict(self.headers.items()), body)
        else:
            status, document = service.flagger(route.removeprefix("/flagger/"), body)
        self._json(status, document)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _items(body: bytes) -> tuple[list[Any], list[str]]:
    """The records (and labels) of a ``POST /records`` body, and why the others are not."""
    from mlchecks.serving.records import from_json, parse_line

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [f"the body is not UTF-8 ({exc.reason})"]
    if text.lstrip().startswith("["):
        try:
            rows = loads(text)
        except ValueError as exc:
            return [], [f"the body is not a JSON array ({exc})"]
        read: Callable[[Any], Any] = from_json
    else:
        rows = [line for line in text.splitlines() if line.strip()]
        read = parse_line
    items, errors = [], []
    for number, row in enumerate(rows, start=1):
        try:
            items.append(read(row))
        except (InvalidInput, ValueError, TypeError) as exc:
            errors.append(f"record {number}: {exc}")
    return items, errors


class JudgeService:
    """A `mlchecks.checks.CanaryJudge` served over HTTP (see the module docstring).

    Args:
        judge: the judge (its ``baseline``, ``candidate`` and limits); the service runs
            ``judge.start()`` and keeps the live state.
        records: a record source read on a background thread: an iterable of `Record`
            and `Label` items (such as ``read_records("requests.jsonl", follow=True)``),
            or a callable returning one. None: the judge's own ``records``; when that is
            None too, records only arrive over HTTP. A source with a ``stop()`` method is
            stopped by `stop`; its ``stats.bad_lines`` count in `bad_lines`.
        pairer: the `mlchecks.serving.cloudevents.CloudEventPairer` that joins the
            CloudEvents POSTed to ``/events`` (None: one with the default settings).
        host: the address to bind; only a loopback address unless ``allow_remote``.
        port: the port; 0 picks a free one (read `url` after `start`).
        timeout_s: bound on every socket read and write of a request, and on `stop`.
        max_body_bytes: the largest request body accepted (HTTP 413 beyond).
        allow_remote: allow binding an address other machines can reach.

    Raises:
        InvalidInput: on a non-loopback ``host`` without ``allow_remote``, or bad numbers.

    >>> from mlchecks.checks import CanaryJudge
    >>> service = JudgeService(CanaryJudge(baseline="v1", candidate="v2")).start()
    >>> service.url.startswith("http://127.0.0.1:")
    True
    >>> service.stop()
    """

    def __init__(
        self,
        judge: Any,
        *,
        records: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
        pairer: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_s: float = 5.0,
        max_body_bytes: int = 16 * 2**20,
        allow_remote: bool = False,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise InvalidInput(f"'host' must be a host name or address (got {describe(host)})")
        if not allow_remote and not _loopback(host):
            raise InvalidInput(
                f"'host' must be a loopback address such as 127.0.0.1 (got {host!r}); "
                "pass allow_remote=True to serve other machines"
            )
        self.host = host
        self.port = check_int(port, "port")
        if self.port > 65535:
            raise InvalidInput(f"'port' must be in [0, 65535] (got {port!r})")
        self.timeout_s = check_seconds(timeout_s, "timeout_s")
        self.max_body_bytes = check_int(max_body_bytes, "max_body_bytes", minimum=1)
        self.judge = judge
        self.baseline: str = judge.baseline
        self.candidate: str = judge.candidate
        self._records = getattr(judge, "records", None) if records is None else records
        self._pairer = pairer
        self._watch: Watch = judge.start()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._fed = threading.Event()
        self._bad = 0
        self._source: Any = None
        self._source_error: str | None = None
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- life cycle

    @property
    def url(self) -> str:
        """``http://host:port`` of the running service."""
        if self._server is None:
            raise RuntimeError("the judge service is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._server.server_address[1]}"

    @property
    def running(self) -> bool:
        """True between `start` and `stop`."""
        return self._server is not None

    def start(self) -> JudgeService:
        """Bind the port, serve on a background thread and start reading the records."""
        if self._server is not None:
            raise RuntimeError("the judge service is already running")
        if self._stopped.is_set():
            raise RuntimeError("a stopped judge service cannot start again; make a new one")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server(self, (self.host, self.port), family)
        self._spawn("mlchecks-judge-http", self._server.serve_forever, 0.05)
        if self._records is None:
            self._fed.set()
        else:
            self._spawn("mlchecks-judge-records", self._feed)
        return self

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop serving, close the port, stop the record source and join the threads.

        Each join waits at most ``timeout_s``: a source without ``stop()`` that never
        yields again is left to end with the process (its thread is a daemon).
        """
        self._stopped.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        stop = getattr(self._source, "stop", None)
        if callable(stop):
            stop()
        for thread in self._threads:
            thread.join(self.timeout_s)
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def __enter__(self) -> JudgeService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _feed(self) -> None:
        try:
            source = self._records() if callable(self._records) else self._records
            self._source = source
            if self._stopped.is_set():  # stop() ran before the source existed
                getattr(source, "stop", lambda: None)()
            for item in source or ():
                if self._stopped.is_set():
                    break
                self.observe(item)
        except Exception as exc:
            self._source_error = f"{type(exc).__name__}: {exc}"
            _log.error("the judge's record source failed: %s", self._source_error)
        finally:
            self._fed.set()

    def wait_records(self, timeout_s: float = 10.0) -> bool:
        """Wait until the record source is exhausted; True when it is (or there is none)."""
        return self._fed.wait(timeout_s)

    # ----------------------------------------------------------------- the judge's state

    @property
    def bad_lines(self) -> int:
        """Records that could not be read (by the source or over HTTP) or were refused."""
        stats = getattr(self._source, "stats", None)
        return self._bad + int(getattr(stats, "bad_lines", 0) or 0)

    def _observe(self, item: Any) -> None:
        """Feed one item to the watch; call it with the lock held."""
        try:
            self._watch.observe(item)
        except InvalidInput as exc:
            self._bad += 1
            _log.warning("the judge refused a record: %s", exc)

    def observe(self, item: Any) -> str:
        """Feed one `Record` or `Label` to the judge; returns its decision.

        A record the judge refuses (`InvalidInput`) is counted in `bad_lines`.
        """
        with self._lock:
            self._observe(item)
            return self._watch.decision

    def snapshot(self) -> Snapshot:
        """One consistent reading of the judge's state (what every answer is made from)."""
        with self._lock:
            return Snapshot.of(
                self._watch,
                baseline=self.baseline,
                candidate=self.candidate,
                bad_lines=self.bad_lines,
                n_candidate_requests=getattr(self.judge, "n_candidate_requests", None),
            )

    def verdict(self) -> dict[str, Any]:
        """What ``GET /verdict`` answers (see the module docstring)."""
        return self.snapshot().document()

    def evidence(self) -> dict[str, Any]:
        """What ``GET /evidence`` answers: the judge's evidence, the verdict and counts."""
        snap = self.snapshot()
        return {**snap.evidence, **snap.document()}

    def metrics(self) -> str:
        """What ``GET /metrics`` answers: Prometheus text format 0.0.4."""
        return prometheus_text(self.snapshot())

    def health(self) -> dict[str, Any]:
        """What ``GET /healthz`` answers; ``status`` is ``"ok"`` unless the source failed."""
        if self._source_error is not None:
            source = f"failed: {self._source_error}"
        elif self._records is None:
            source = "none"
        else:
            source = "done" if self._fed.is_set() else "reading"
        with self._lock:
            n_records = int(self._watch.n_records)
        status = "ok" if self._source_error is None else "source failed"
        return {"status": status, "records": n_records, "source": source}

    # ----------------------------------------------------------------- POST handlers

    def post_records(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /records``: feed the records of ``body``; the status and the answer."""
        items, errors = _items(body)
        with self._lock:
            for item in items:
                self._observe(item)
            self._bad += len(errors)
            verdict = self._watch.verdict
        document = {
            "accepted": len(items),
            "bad_lines": len(errors),
            "errors": errors[:5],
            "verdict": verdict,
        }
        return (400 if errors and not items else 200), document

    def post_event(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /events``: one KServe payload-logger CloudEvent (binary or structured)."""
        from mlchecks.serving.cloudevents import CloudEventPairer, event_from_http

        with self._lock:
            try:
                if self._pairer is None:
                    self._pairer = CloudEventPairer()
                records = self._pairer.add(event_from_http(headers, body))
            except InvalidInput as exc:
                self._bad += 1
                return 400, {"error": f"not an inference CloudEvent: {exc}"}
            for record in records:
                self._observe(record)
            verdict = self._watch.verdict
        return 200, {"accepted": len(records), "verdict": verdict}

    def flagger(self, hook: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /flagger/<hook>``: Flagger's webhook; the status and the answer."""
        if hook not in HOOKS:
            return 404, {"error": f"unknown Flagger hook {hook!r}; one of {', '.join(HOOKS)}"}
        try:
            payload = check_flagger_payload(loads(body))
        except (InvalidInput, ValueError) as exc:
            return 400, {"error": f"not a Flagger webhook payload: {exc}"}
        metadata = payload.get("metadata") or {}
        for role, ours in (("baseline", self.baseline), ("candidate", self.candidate)):
            named = metadata.get(role)
            if named is not None and named != ours:
                return 409, {"error": f"this judge's {role} is {ours!r}, not {named!r}"}
        snap = self.snapshot()
        return flagger_answer(hook, snap.verdict, snap.message())
