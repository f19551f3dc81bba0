"""The gRPC transport of the serving clients: the channel, TLS, metadata, deadlines, retries.

`GrpcTransport` is the gRPC counterpart of `mlchecks.serving._http.HttpTransport`: it
calls one method of the Open Inference Protocol's service and returns the answer and how
many times the call was retried. One channel (HTTP/2, many calls at once) serves every
thread; it opens at the first call and reopens after `close`. A call answered UNAVAILABLE
(the server is unreachable, restarting or overloaded) is retried ``n_retries`` times with
exponential backoff; every other failure, and the last UNAVAILABLE, raises `Failure` with
the kind the serving clients report.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._grpc_wire import protocol, require_grpc
from mlchecks.serving._http import Headers, _path_or_none, check_seconds
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
# Channel settings: no message size limit (a batch of outputs can pass 4 MB), and a
# reconnect backoff short enough for the retries to ride out a server restart.
CHANNEL_OPTIONS = {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
}


def parse_url(url: Any) -> tuple[str, str, bool]:
    """(normalised URL, target ``host:port``, TLS?) of ``grpc[s]://host:port`` or ``host:port``."""
    if not isinstance(url, str):
        raise InvalidInput(f"'url' must be a string (got {describe(url)})")
    parts = urllib.parse.urlsplit(url if "://" in url else f"grpc://{url}")
    expected = f"'url' must look like grpc://host:port, grpcs://host or host:port (got {url!r})"
    if parts.scheme not in ("grpc", "grpcs") or not parts.hostname:
        raise InvalidInput(expected)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput(f"{expected}: gRPC has no path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"'url' has an invalid port (got {url!r})") from None
    tls = parts.scheme == "grpcs"
    if port is None:
        if not tls:
            raise InvalidInput(f"{expected}: give the port (Triton 8001, MLServer 8081)")
        port = 443
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}", f"{host}:{port}", tls


def _read(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


class GrpcTransport:
    """Calls the protocol's methods on one server (see the module docstring).

    Args:
        url: ``grpc://host:port``, ``grpcs://host[:port]`` or ``host:port``.
        timeout_s: the deadline of a call, seconds (a per-call one for slow calls).
        headers: gRPC metadata, or a callable returning it, called before every call; keys
            are sent in lower case, as gRPC requires.
        ca_file: a PEM bundle of the certificate authorities to trust; implies TLS.
        cert_file, key_file: a client certificate (PEM) and its key, for mutual TLS.
        n_retries: how many times a call answered UNAVAILABLE is retried.
        retry_backoff_s: the first wait before a retry; each next wait doubles.
        channel_options: gRPC channel arguments, over `CHANNEL_OPTIONS`.
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
    ) -> None:
        self.url, self.target, tls = parse_url(url)
        self.ca_file = _path_or_none(ca_file, "ca_file")
        self.cert_file = _path_or_none(cert_file, "cert_file")
        self.key_file = _path_or_none(key_file, "key_file")
        if self.key_file is not None and self.cert_file is None:
            raise InvalidInput("'key_file' needs 'cert_file' (the client certificate)")
        tls_files = self.ca_file is not None or self.cert_file is not None
        if tls_files and url.startswith("grpc://"):
            raise InvalidInput(
                f"TLS settings (ca_file, cert_file) need a grpcs:// URL (got {url!r})"
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
        self.channel_options = {**CHANNEL_OPTIONS, **dict(channel_options or {})}
        self._setup()

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stubs: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_channel", "_stubs"):
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
        if given is None:
            return []
        if not isinstance(given, Mapping):
            raise Failure(
                "client", f"the headers callable returned {describe(given)}, not a mapping"
            )
        return [(str(k).lower(), str(v)) for k, v in given.items()]

    def call(self, method: str, request: Any, *, timeout_s: float | None = None) -> tuple[Any, int]:
        """Call ``method`` with ``request``; (its answer, retries), or `Failure`.

        The failure's kind: ``"timeout"`` (DEADLINE_EXCEEDED), ``"connection"``
        (UNAVAILABLE after the last retry), ``"unsupported"`` (UNIMPLEMENTED), ``"client"``
        (INVALID_ARGUMENT, NOT_FOUND and the other caller errors), else ``"server"``.
        """
        import grpc

        timeout = self.timeout_s if timeout_s is None else timeout_s
        metadata = self._metadata()
        stub = self._stub(method)
        retries = 0
        while True:
            try:
                return stub(request, timeout=timeout, metadata=metadata), retries
            except grpc.RpcError as exc:
                code = exc.code() if callable(getattr(exc, "code", None)) else None
                name = getattr(code, "name", "UNKNOWN")
                if name != "UNAVAILABLE" or retries >= self.n_retries:
                    raise self._failure(method, name, exc, timeout, retries) from None
            time.sleep(self.retry_backoff_s * 2**retries)
            retries += 1

    def _failure(self, method: str, name: str, exc: Any, timeout: float, retries: int) -> Failure:
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
        kind = _KINDS.get(name, "server")
        if kind == "timeout":
            message = f"no answer from {self.url} within timeout_s={timeout:g} s ({method})"
        elif kind == "connection":
            message = f"cannot reach {self.url} ({method}): gRPC {name}: {details}"
        else:
            message = f"gRPC {name}: {details}"
        return Failure(kind, message, n_retries=retries)
