"""The gRPC transport of the serving clients: the channel, TLS, metadata, deadlines, retries.

`GrpcTransport` is the gRPC counterpart of `mlchecks.serving._http.HttpTransport`: it
calls one method of the Open Inference Protocol's service and returns the answer and how
many times the call was retried. One channel (HTTP/2, many calls at once) serves every
thread; it opens at the first call and reopens after `close`. A call answered UNAVAILABLE
(the server is unreachable, restarting or overloaded) is retried ``n_retries`` times with
exponential backoff while time remains; every other failure, and the last UNAVAILABLE,
raises `Failure` with the kind the serving clients report.

``timeout_s`` is the gRPC deadline of the whole call, retries and their backoff included
(each try gets what is left), and `GrpcTransport.bounded` makes several calls share one
deadline. An answer larger than ``max_response_bytes`` is refused by gRPC itself
(``grpc.max_receive_message_length``) and reported naming the cap. Credentials in the
URL (``grpc://user:password@host:port``) are sent as ``authorization: Basic ...`` metadata
(unless the headers set ``authorization``) and never shown.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from mlchecks._deadline import Deadline, Deadlines
from mlchecks._text import redact
from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._grpc_wire import protocol, require_grpc
from mlchecks.serving._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Headers,
    _path_or_none,
    basic_auth,
    check_max_bytes,
    check_seconds,
)
from mlchecks.serving._v2_codec import Failure

__all__ = ["GrpcTransport"]

# gRPC status code name -> the failure's kind (anything else is "server").
_KINDS = {
    "DEADLINE_EXCEEDED": "timeout",
    "UNAVAILABLE": "connection",
    "UNIMPLEMENTED": "unsupported",
    "CANCELLED": "client",
    "INVALID_ARGUMENT": "client",
    "NOT_FOUND": "client",
    "ALREADY_EXISTS": "client",
    "PERMISSION_DENIED": "client",
    "UNAUTHENTICATED": "client",
    "FAILED_PRECONDITION": "client",
    "OUT_OF_RANGE": "client",
}
# Channel settings: no limit on what is sent (a batch of inputs can pass 4 MB; what is
# received is capped by max_response_bytes), and a reconnect backoff short enough for the
# retries to ride out a server restart.
CHANNEL_OPTIONS = {
    "grpc.max_send_message_length": -1,
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
}


def parse_url(url: Any) -> tuple[str, str, bool]:
    """(normalised URL, target ``host:port``, TLS?) of ``grpc[s]://host:port`` or ``host:port``."""
    if not isinstance(url, str):
        raise InvalidInput(f"'url' must be a string (got {describe(url)})")
    parts = _split(url)
    shown = redact(url if "://" in url else f"grpc://{url}")
    expected = f"'url' must look like grpc://host:port, grpcs://host or host:port (got {shown!r})"
    if parts.scheme not in ("grpc", "grpcs") or not parts.hostname:
        raise InvalidInput(expected)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput(f"{expected}: gRPC has no path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"'url' has an invalid port (got {shown!r})") from None
    tls = parts.scheme == "grpcs"
    if port is None:
        if not tls:
            raise InvalidInput(f"{expected}: give the port (Triton 8001, MLServer 8081)")
        port = 443
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}", f"{host}:{port}", tls


def _split(url: str) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(url if "://" in url else f"grpc://{url}")


def _read(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


class GrpcTransport:
    """Calls the protocol's methods on one server (see the module docstring).

    Args:
        url: ``grpc://[user:password@]host:port``, ``grpcs://host[:port]`` or ``host:port``.
        timeout_s: the deadline of a call, retries included, seconds (a per-call one for
            slow calls).
        headers: gRPC metadata, or a callable returning it, called before every call; keys
            are sent in lower case, as gRPC requires.
        ca_file: a PEM bundle of the certificate authorities to trust; implies TLS.
        cert_file, key_file: a client certificate (PEM) and its key, for mutual TLS.
        n_retries: how many times a call answered UNAVAILABLE is retried.
        retry_backoff_s: the first wait before a retry; each next wait doubles.
        channel_options: gRPC channel arguments, over `CHANNEL_OPTIONS`.
        max_response_bytes: the largest answer received (None: no cap).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        headers: Headers | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        n_retries: int = 2,
        retry_backoff_s: float = 0.1,
        channel_options: Mapping[str, Any] | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.url, self.target, tls = parse_url(url)
        self._authorization = basic_auth(_split(url))
        self.ca_file = _path_or_none(ca_file, "ca_file")
        self.cert_file = _path_or_none(cert_file, "cert_file")
        self.key_file = _path_or_none(key_file, "key_file")
        if self.key_file is not None and self.cert_file is None:
            raise InvalidInput("'key_file' needs 'cert_file' (the client certificate)")
        tls_files = self.ca_file is not None or self.cert_file is not None
        if tls_files and url.startswith("grpc://"):
            raise InvalidInput(
                f"TLS settings (ca_file, cert_file) need a grpcs:// URL (got {redact(url)!r})"
            )
        self.tls = tls or tls_files
        if self.tls:
            self.url = "grpcs://" + self.url.split("://", 1)[1]
        if headers is not None and not (isinstance(headers, Mapping) or callable(headers)):
            raise InvalidInput(
                f"'headers' must be a mapping, a callable returning one, or None "
                f"(got {describe(headers)})"
            )
        if isinstance(n_retries, bool) or not isinstance(n_retries, int) or n_retries < 0:
            raise InvalidInput(f"'n_retries' must be an integer >= 0 (got {describe(n_retries)})")
        if channel_options is not None and not isinstance(channel_options, Mapping):
            raise InvalidInput(
                f"'channel_options' must be a mapping or None (got {describe(channel_options)})"
            )
        require_grpc("the Open Inference Protocol over gRPC")
        self.timeout_s = check_seconds(timeout_s, "timeout_s")
        self.headers = headers
        self.n_retries = n_retries
        self.retry_backoff_s = check_seconds(retry_backoff_s, "retry_backoff_s", zero=True)
        self.max_response_bytes = check_max_bytes(max_response_bytes)
        receive = -1 if self.max_response_bytes is None else self.max_response_bytes
        self.channel_options = {
            **CHANNEL_OPTIONS,
            "grpc.max_receive_message_length": receive,
            **dict(channel_options or {}),
        }
        self._setup()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stubs: dict[str, Any] = {}
        self._deadlines = Deadlines()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_channel", "_stubs", "_deadlines"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def close(self) -> None:
        """Close the channel; a later call opens a new one."""
        with self._lock:
            channel, self._channel, self._stubs = self._channel, None, {}
        if channel is not None:
            channel.close()

    def bounded(self, seconds: float, name: str = "timeout_s") -> AbstractContextManager[Deadline]:
        """A block whose calls (of this thread) all end within ``seconds`` from now."""
        return self._deadlines.bounded(seconds, name)

    def _stub(self, method: str) -> Any:
        with self._lock:
            if self._channel is None:
                import grpc

                options = list(self.channel_options.items())
                if self.tls:
                    credentials = grpc.ssl_channel_credentials(
                        root_certificates=_read(self.ca_file),
                        private_key=_read(self.key_file or self.cert_file),
                        certificate_chain=_read(self.cert_file),
                    )
                    self._channel = grpc.secure_channel(self.target, credentials, options)
                else:
                    self._channel = grpc.insecure_channel(self.target, options)
                self._stubs = protocol().stubs(self._channel)
            return self._stubs[method]

    def _metadata(self) -> list[tuple[str, str]]:
        given = self.headers() if callable(self.headers) else self.headers
        if given is not None and not isinstance(given, Mapping):
            raise Failure(
                "client", f"the headers callable returned {describe(given)}, not a mapping"
            )
        metadata = [(str(k).lower(), str(v)) for k, v in (given or {}).items()]
        if self._authorization is not None and all(k != "authorization" for k, _ in metadata):
            metadata.append(("authorization", self._authorization))
        return metadata

    def call(
        self,
        method: str,
        request: Any,
        *,
        timeout_s: float | None = None,
        timeout_name: str = "timeout_s",
    ) -> tuple[Any, int]:
        """Call ``method`` with ``request``; (its answer, retries), or `Failure`.

        The call, retries included, ends within ``timeout_s`` (default: the transport's;
        ``timeout_name`` in messages), or by an enclosing `bounded` block's deadline.
        The failure's kind: ``"timeout"`` (DEADLINE_EXCEEDED), ``"connection"``
        (UNAVAILABLE after the last retry), ``"unsupported"`` (UNIMPLEMENTED), ``"client"``
        (INVALID_ARGUMENT, NOT_FOUND and the other caller errors), else ``"server"``
        (an answer over ``max_response_bytes`` too).
        """
        import grpc

        metadata = self._metadata()
        stub = self._stub(method)
        deadline = self._deadlines.current(
            self.timeout_s if timeout_s is None else timeout_s, timeout_name
        )
        retries = 0
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise self._failure(method, "DEADLINE_EXCEEDED", None, deadline, retries)
            try:
                return stub(request, timeout=remaining, metadata=metadata), retries
            except grpc.RpcError as exc:
                code = exc.code() if callable(getattr(exc, "code", None)) else None
                name = getattr(code, "name", "UNKNOWN")
                wait = self.retry_backoff_s * 2**retries
                retry = name == "UNAVAILABLE" and retries < self.n_retries
                if not retry or not deadline.allows(wait):
                    raise self._failure(method, name, exc, deadline, retries) from None
            time.sleep(wait)
            retries += 1

    def _failure(
        self, method: str, name: str, exc: Any, deadline: Deadline, retries: int
    ) -> Failure:
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
        details = redact(str(details))
        kind = _KINDS.get(name, "server")
        if kind == "timeout":
            message = f"no answer from {self.url} within {deadline.text} ({method})"
        elif name == "RESOURCE_EXHAUSTED" and "larger than max" in details:
            cap = self.max_response_bytes
            message = (
                f"the answer from {self.url} is larger than max_response_bytes="
                f"{'None' if cap is None else format(cap, ',')} ({method}): gRPC {name}: "
                f"{details}"
            )
        elif kind == "connection":
            message = f"cannot reach {self.url} ({method}): gRPC {name}: {details}"
        else:
            message = f"gRPC {name}: {details}"
        return Failure(kind, message, n_retries=retries)
