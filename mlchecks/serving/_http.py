"""The HTTP transport of the serving clients: connections, TLS, headers, retries.

`HttpTransport` sends one request and returns the status, the body and how many times it
was retried. It keeps one HTTP/1.1 keep-alive connection per thread (a connection that
failed is dropped and the next request opens a new one; a request that finds its
kept-alive connection closed by the server is sent once more on a new connection, which is
not counted as a retry). Transient failures, an HTTP 503 answer or a connection reset while
the request was in flight, are retried ``n_retries`` times with exponential backoff
(``retry_backoff_s``, doubling), and the retries are counted apart from failures.

Every request is bounded as a whole: ``timeout_s`` (a per-call ``timeout_s`` for slow
calls, such as loading a model) bounds connecting, sending, reading the status, headers
and every byte of the body, and the retries with their backoff (a retry is tried only
while time remains); a server that trickles its answer a byte at a time cannot stretch
it. `HttpTransport.bounded` makes several requests share one deadline. An answer longer
than ``max_response_bytes`` is refused without reading it all (by its Content-Length, or
while reading a chunked or unbounded body), and its connection closed.

Credentials in the URL (``http://user:password@host``) are sent as HTTP Basic
authentication (unless the headers set ``Authorization``) and never shown: ``url`` and
every message hold the URL with the password replaced by ``***``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import math
import os
import socket
import ssl
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mlchecks._deadline import Deadline, Deadlines
from mlchecks._text import redact
from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._v2_codec import Failure

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Answer", "HttpTransport", "check_seconds"]

#: The default cap on an answer's size: 64 MiB.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_READ_SIZE = 65536

# Errors that mean the server closed a kept-alive connection while it was idle.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
#: HTTP statuses that mean "try again shortly" (the server is overloaded or restarting).
RETRY_STATUSES = frozenset({503})

Headers = Mapping[str, str] | Callable[[], Mapping[str, str]]


def check_seconds(value: Any, name: str, *, zero: bool = False) -> float:
    """``value`` as a float number of seconds, positive (or also 0 with ``zero``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        kind = "non-negative" if zero else "positive"
        raise InvalidInput(f"'{name}' must be a {kind} number of seconds (got {describe(value)})")
    return float(value)


def check_max_bytes(value: Any, name: str = "max_response_bytes") -> int | None:
    """``value`` as a positive whole number of bytes, or None (no cap)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(
            f"'{name}' must be a positive number of bytes or None (got {describe(value)})"
        )
    return value


def basic_auth(parts: urllib.parse.SplitResult) -> str | None:
    """The ``Authorization`` header for the credentials in a URL (None: it has none)."""
    if parts.username is None and parts.password is None:
        return None
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class _DeadlineIO(io.RawIOBase):
    """A socket's reads, each waiting at most until the deadline (``at``, monotonic)."""

    def __init__(self, sock: socket.socket, at: float, keep: Any) -> None:
        super().__init__()
        self._sock = sock
        self._at = at
        self._keep = keep  # the socket's own file: it keeps the socket open until we close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._at - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._keep.close()
        super().close()


class _Response(http.client.HTTPResponse):
    """An answer whose every read (status line, headers, body) ends by a deadline."""

    def __init__(self, sock: socket.socket, at: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineIO(sock, at, self.fp), _READ_SIZE)


class _Connection(http.client.HTTPConnection):
    #: When the answer being read must be complete (``time.monotonic()``).
    deadline_at = math.inf

    def response_class(self, sock: Any, *args: Any, **kwargs: Any) -> _Response:  # type: ignore[override]
        return _Response(sock, self.deadline_at, *args, **kwargs)


class _TLSConnection(http.client.HTTPSConnection):
    deadline_at = math.inf

    def response_class(self, sock: Any, *args: Any, **kwargs: Any) -> _Response:  # type: ignore[override]
        return _Response(sock, self.deadline_at, *args, **kwargs)


class _TooLarge(Exception):
    def __init__(self, size: int, announced: bool) -> None:
        super().__init__(size)
        self.size = size
        self.announced = announced


def _close_all(connections: dict[int, http.client.HTTPConnection], lock: threading.Lock) -> None:
    with lock:
        items = list(connections.values())
        connections.clear()
    for connection in items:
        connection.close()


class Answer(NamedTuple):
    """An HTTP answer: its status, its body and how many transient failures were retried."""

    status: int
    data: bytes
    n_retries: int = 0


def _path_or_none(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise InvalidInput(f"'{name}' must be a file path or None (got {describe(value)})")
    path = Path(value)
    if not path.is_file():
        raise InvalidInput(f"'{name}' is not a file (got {str(path)!r})")
    return str(path)


class HttpTransport:
    """Sends requests to one server (see the module docstring).

    Args:
        url: ``http(s)://[user:password@]host[:port][/prefix]``.
        timeout_s: the most seconds one request takes: connecting, sending, reading the
            whole answer, and its retries.
        headers: extra HTTP headers, or a callable returning them, called before every
            request (to refresh a short-lived token).
        ssl_context: the `ssl.SSLContext` for ``https`` (custom trust, client
            certificates, pinned ciphers); it makes the transport unpicklable.
        ca_file: a PEM bundle of the certificate authorities to trust for ``https``.
        cert_file, key_file: a client certificate (PEM) and its key, for mutual TLS.
        n_retries: how many times a transient failure (HTTP 503, a reset connection) is
            retried.
        retry_backoff_s: the first wait before a retry; each next wait doubles.
        max_response_bytes: the longest answer body read (None: no cap).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        headers: Headers | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        n_retries: int = 2,
        retry_backoff_s: float = 0.1,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if not isinstance(url, str):
            raise InvalidInput(f"'url' must be a string (got {describe(url)})")
        parts = urllib.parse.urlsplit(url)
        shown = redact(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                f"'url' must look like http://host:port or https://host/prefix (got {shown!r})"
                + ("; for gRPC use V2GrpcEndpoint" if parts.scheme.startswith("grpc") else "")
            )
        try:
            port = parts.port
        except ValueError:
            raise InvalidInput(f"'url' has an invalid port (got {shown!r})") from None
        if parts.query or parts.fragment:
            raise InvalidInput(f"'url' must not have a query or fragment (got {shown!r})")
        if headers is not None and not (isinstance(headers, Mapping) or callable(headers)):
            raise InvalidInput(
                f"'headers' must be a mapping, a callable returning one, or None "
                f"(got {describe(headers)})"
            )
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise InvalidInput(
                f"'ssl_context' must be an ssl.SSLContext or None (got {describe(ssl_context)})"
            )
        if isinstance(n_retries, bool) or not isinstance(n_retries, int) or n_retries < 0:
            raise InvalidInput(f"'n_retries' must be an integer >= 0 (got {describe(n_retries)})")
        self.url = shown.rstrip("/")
        self.timeout_s = check_seconds(timeout_s, "timeout_s")
        self.max_response_bytes = check_max_bytes(max_response_bytes)
        self.headers = headers
        self._authorization = basic_auth(parts)
        self.ssl_context = ssl_context
        self.ca_file = _path_or_none(ca_file, "ca_file")
        self.cert_file = _path_or_none(cert_file, "cert_file")
        self.key_file = _path_or_none(key_file, "key_file")
        if self.key_file is not None and self.cert_file is None:
            raise InvalidInput("'key_file' needs 'cert_file' (the client certificate)")
        tls = (ssl_context, self.ca_file, self.cert_file)
        if parts.scheme != "https" and any(v is not None for v in tls):
            raise InvalidInput(
                f"TLS settings (ssl_context, ca_file, cert_file) need an https URL (got {shown!r})"
            )
        self.n_retries = n_retries
        self.retry_backoff_s = check_seconds(retry_backoff_s, "retry_backoff_s", zero=True)
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = port
        self.prefix = parts.path.rstrip("/")
        self._setup()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _setup(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._deadlines = Deadlines()
        # thread id -> that thread's connection; closed when the transport is collected
        self._open: dict[int, http.client.HTTPConnection] = {}
        self._context: ssl.SSLContext | None = None
        weakref.finalize(self, _close_all, self._open, self._lock)

    def __getstate__(self) -> dict[str, Any]:
        if self.ssl_context is not None:
            raise TypeError(
                "an endpoint with an ssl.SSLContext cannot be pickled: give ca_file= "
                "(and cert_file=, key_file=) instead to use it in another process"
            )
        state = self.__dict__.copy()
        for name in ("_local", "_lock", "_open", "_context", "_deadlines"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def close(self) -> None:
        """Close every kept-alive connection (of all threads); later requests reconnect."""
        _close_all(self._open, self._lock)

    def bounded(
        self, seconds: float, name: str = "timeout_s"
    ) -> contextlib.AbstractContextManager[Deadline]:
        """A block whose requests (of this thread) all end within ``seconds`` from now."""
        return self._deadlines.bounded(seconds, name)

    def _tls(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            return self.ssl_context
        if self._context is None:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file is not None:
                context.load_cert_chain(self.cert_file, self.key_file)
            self._context = context
        return self._context

    def _connection(self, deadline: Deadline) -> _Connection | _TLSConnection:
        timeout_s = max(deadline.remaining(), 1e-3)
        ident = threading.get_ident()
        connection: _Connection | _TLSConnection | None = getattr(self._local, "connection", None)
        if connection is not None and self._open.get(ident) is connection:
            connection.timeout = timeout_s
            connection.deadline_at = deadline.at
            if connection.sock is not None:
                connection.sock.settimeout(timeout_s)
            return connection
        # First request of this thread, or `close()` took its connection: open a new one.
        if self.https:
            connection = _TLSConnection(
                self.host, self.port, timeout=timeout_s, context=self._tls()
            )
        else:
            connection = _Connection(self.host, self.port, timeout=timeout_s)
        connection.deadline_at = deadline.at
        self._local.connection = connection
        alive = {thread.ident for thread in threading.enumerate()}
        with self._lock:
            stale = [t for t in self._open if t not in alive or t == ident]
            closing = [self._open.pop(t) for t in stale]
            self._open[ident] = connection
        for old in closing:  # connections of threads that ended
            old.close()
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None
        with self._lock:
            if self._open.get(threading.get_ident()) is connection:
                del self._open[threading.get_ident()]

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        given = self.headers() if callable(self.headers) else self.headers
        if given is not None:
            if not isinstance(given, Mapping):
                raise Failure(
                    "client", f"the headers callable returned {describe(given)}, not a mapping"
                )
            headers.update({str(k): str(v) for k, v in given.items()})
        if extra:
            headers.update(extra)
        if self._authorization is not None and not any(
            k.lower() == "authorization" for k in headers
        ):
            headers["Authorization"] = self._authorization
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        timeout_s: float | None = None,
        timeout_name: str = "timeout_s",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; its `Answer`, or `Failure` when no answer came.

        The whole request, retries included, ends within ``timeout_s`` (default: the
        transport's; named ``timeout_name`` in messages), or by the deadline of an
        enclosing `bounded` block when that is earlier. HTTP 503 answers and connections
        reset in flight are retried ``n_retries`` times after ``retry_backoff_s``,
        ``2 * retry_backoff_s``, ... seconds, while time remains; the last 503 is returned
        as an answer, the last reset raises `Failure`.
        """
        seconds = self.timeout_s if timeout_s is None else timeout_s
        deadline = self._deadlines.current(seconds, timeout_name)
        target = f"{self.prefix}{path}"
        sent = self._headers(headers)
        retries = 0
        while True:
            wait = self.retry_backoff_s * 2**retries
            try:
                answer = self._send(method, target, body, sent, deadline)
            except Failure as failure:
                retry = failure.kind == "reset" and retries < self.n_retries
                if not retry or not deadline.allows(wait):
                    kind = "connection" if failure.kind == "reset" else failure.kind
                    raise Failure(kind, failure.message, n_retries=retries) from None
            else:
                retry = answer.status in RETRY_STATUSES and retries < self.n_retries
                if not retry or not deadline.allows(wait):
                    return Answer(answer.status, answer.data, retries)
            time.sleep(wait)
            retries += 1

    def _timeout(self, deadline: Deadline, method: str, target: str) -> Failure:
        return Failure(
            "timeout",
            f"no complete answer from {self.url} within {deadline.text} ({method} {target})",
        )

    def _send(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        deadline: Deadline,
    ) -> Answer:
        for attempt in (0, 1):
            if deadline.remaining() <= 0:
                raise self._timeout(deadline, method, target)
            connection = self._connection(deadline)
            reused = connection.sock is not None
            try:
                connection.request(method, target, body=body, headers=headers)
                answer = connection.getresponse()
                data = self._read(answer)
            except TimeoutError:
                self._drop(connection)
                raise self._timeout(deadline, method, target) from None
            except _TooLarge as exc:
                self._drop(connection)
                size = f"{exc.size:,} bytes" + (" announced" if exc.announced else " read so far")
                raise Failure(
                    "server",
                    f"the answer from {self.url} is larger than max_response_bytes="
                    f"{self.max_response_bytes:,} ({size}; {method} {target}); it was not read",
                ) from None
            except ssl.SSLError as exc:
                self._drop(connection)
                raise Failure(
                    "connection", f"TLS with {self.url} failed: {type(exc).__name__}: {exc}"
                ) from None
            except _STALE as exc:
                self._drop(connection)
                if reused and attempt == 0:
                    continue  # the server closed the idle connection: resend on a new one
                raise Failure(
                    "reset", f"connection to {self.url} failed: {type(exc).__name__}: {exc}"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(connection)
                raise Failure(
                    "connection",
                    f"cannot reach {self.url} ({method} {target}): {type(exc).__name__}: {exc}",
                ) from None
            if answer.will_close:
                self._drop(connection)
            return Answer(answer.status, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, answer: http.client.HTTPResponse) -> bytes:
        """The whole body of ``answer``; `_TooLarge` past ``max_response_bytes``."""
        limit = self.max_response_bytes
        if limit is not None and answer.length is not None and answer.length > limit:
            raise _TooLarge(answer.length, announced=True)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = answer.read1(_READ_SIZE)
            if not chunk:
                data = b"".join(chunks)
                if answer.length:  # the connection ended before the announced length
                    raise http.client.IncompleteRead(data, answer.length)
                answer.close()  # the body is complete: the connection can serve the next
                return data
            size += len(chunk)
            if limit is not None and size > limit:
                raise _TooLarge(size, announced=False)
            chunks.append(chunk)
