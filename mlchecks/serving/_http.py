"""The HTTP transport of the serving clients: connections, TLS, headers, retries.

`HttpTransport` sends one request and returns the status, the body and how many times it
was retried. It keeps one HTTP/1.1 keep-alive connection per thread (a connection that
failed is dropped and the next request opens a new one; a request that finds its
kept-alive connection closed by the server is sent once more on a new connection, which is
not counted as a retry). Transient failures, an HTTP 503 answer or a connection reset while
the request was in flight, are retried ``n_retries`` times with exponential backoff
(``retry_backoff_s``, doubling), and the retries are counted apart from failures. Every
request is bounded: ``timeout_s`` to connect and for each read (a per-call ``timeout_s``
for slow calls, such as loading a model), and the backoff sleeps are bounded by the
retries.
"""

from __future__ import annotations

import http.client
import math
import os
import ssl
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._v2_codec import Failure

__all__ = ["Answer", "HttpTransport", "check_seconds"]

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
        url: ``http(s)://host[:port][/prefix]``.
        timeout_s: seconds to wait to connect and for each read of an answer.
        headers: extra HTTP headers, or a callable returning them, called before every
            request (to refresh a short-lived token).
        ssl_context: the `ssl.SSLContext` for ``https`` (custom trust, client
            certificates, pinned ciphers); it makes the transport unpicklable.
        ca_file: a PEM bundle of the certificate authorities to trust for ``https``.
        cert_file, key_file: a client certificate (PEM) and its key, for mutual TLS.
        n_retries: how many times a transient failure (HTTP 503, a reset connection) is
            retried.
        retry_backoff_s: the first wait before a retry; each next wait doubles.
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
    ) -> None:
        if not isinstance(url, str):
            raise InvalidInput(f"'url' must be a string (got {describe(url)})")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                f"'url' must look like http://host:port or https://host/prefix (got {url!r})"
                + ("; for gRPC use V2GrpcEndpoint" if parts.scheme.startswith("grpc") else "")
            )
        try:
            port = parts.port
        except ValueError:
            raise InvalidInput(f"'url' has an invalid port (got {url!r})") from None
        if parts.query or parts.fragment:
            raise InvalidInput(f"'url' must not have a query or fragment (got {url!r})")
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
        self.url = url.rstrip("/")
        self.timeout_s = check_seconds(timeout_s, "timeout_s")
        self.headers = headers
        self.ssl_context = ssl_context
        self.ca_file = _path_or_none(ca_file, "ca_file")
        self.cert_file = _path_or_none(cert_file, "cert_file")
        self.key_file = _path_or_none(key_file, "key_file")
        if self.key_file is not None and self.cert_file is None:
            raise InvalidInput("'key_file' needs 'cert_file' (the client certificate)")
        tls = (ssl_context, self.ca_file, self.cert_file)
        if parts.scheme != "https" and any(v is not None for v in tls):
            raise InvalidInput(
                f"TLS settings (ssl_context, ca_file, cert_file) need an https URL (got {url!r})"
            )
        self.n_retries = n_retries
        self.retry_backoff_s = check_seconds(retry_backoff_s, "retry_backoff_s", zero=True)
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = port
        self.prefix = parts.path.rstrip("/")
        self._setup()

    def _setup(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
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
        for name in ("_local", "_lock", "_open", "_context"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def close(self) -> None:
        """Close every kept-alive connection (of all threads); later requests reconnect."""
        _close_all(self._open, self._lock)

    def _tls(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            return self.ssl_context
        if self._context is None:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file is not None:
                context.load_cert_chain(self.cert_file, self.key_file)
            self._context = context
        return self._context

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        ident = threading.get_ident()
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and self._open.get(ident) is connection:
            connection.timeout = timeout_s
            if connection.sock is not None:
                connection.sock.settimeout(timeout_s)
            return connection
        # First request of this thread, or `close()` took its connection: open a new one.
        if self.https:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout_s, context=self._tls()
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
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
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; its `Answer`, or `Failure` when no answer came.

        HTTP 503 answers and connections reset in flight are retried ``n_retries`` times
        after ``retry_backoff_s``, ``2 * retry_backoff_s``, ... seconds; the last 503 is
        returned as an answer, the last reset raises `Failure`.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        target = f"{self.prefix}{path}"
        sent = self._headers(headers)
        retries = 0
        while True:
            try:
                answer = self._send(method, target, body, sent, timeout)
            except Failure as failure:
                if failure.kind != "reset" or retries >= self.n_retries:
                    kind = "connection" if failure.kind == "reset" else failure.kind
                    raise Failure(kind, failure.message, n_retries=retries) from None
            else:
                if answer.status not in RETRY_STATUSES or retries >= self.n_retries:
                    return Answer(answer.status, answer.data, retries)
            time.sleep(self.retry_backoff_s * 2**retries)
            retries += 1

    def _send(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Answer:
        for attempt in (0, 1):
            connection = self._connection(timeout)
            reused = connection.sock is not None
            try:
                connection.request(method, target, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except TimeoutError:
                self._drop(connection)
                raise Failure(
                    "timeout",
                    f"no answer from {self.url} within timeout_s={timeout:g} s ({method} {target})",
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
