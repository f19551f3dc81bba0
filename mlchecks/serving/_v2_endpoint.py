"""`V2Endpoint`: one model on a server that speaks the Open Inference Protocol over HTTP.

The transport (one keep-alive connection per thread, a retry on a connection the server
closed while idle), inference, readiness and the model repository extension. The wire
format is in `mlchecks.serving._v2_codec`; the public names are re-exported by
`mlchecks.serving.v2`.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
import urllib.parse
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving._v2_codec import (
    Failure,
    V2Error,
    decode_tensor,
    encode_tensor,
    error_text,
    http_error,
    status_kind,
    version_sort_key,
)

__all__ = ["V2Endpoint"]

# Errors that mean the server closed a kept-alive connection while it was idle.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
_T = TypeVar("_T")


def _check_positive(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInput(f"'{name}' must be a positive number of seconds (got {describe(value)})")
    return float(value)


def _close_all(connections: dict[int, http.client.HTTPConnection], lock: threading.Lock) -> None:
    with lock:
        items = list(connections.values())
        connections.clear()
    for connection in items:
        connection.close()


# ---------------------------------------------------------------------------- endpoint


class V2Endpoint:
    """One model on a server that speaks the Open Inference Protocol (V2) over HTTP.

    It is a `ModelServer`: ``infer`` for predictions, ``load`` / ``unload`` / ``versions``
    through the protocol's model repository extension, plus readiness (`ready`,
    `wait_ready`) and `metadata`. Works with MLServer, KServe and Triton.

    Requests. ``inputs`` is an array-like (sent as one tensor named ``input_name``) or a
    mapping name -> array-like (one tensor each). The numpy dtype picks the datatype:
    float32 -> FP32, float64 -> FP64, int64 -> INT64, int32 -> INT32, bool -> BOOL,
    str/bytes -> BYTES (and the other integer and float widths the protocol has). Cast
    your array to the dtype the model expects (``x.astype(np.float32)``).

    Answers. ``Response.outputs`` is the output tensor as a numpy array with its shape and
    dtype when the model answers one tensor (or when ``output`` names one), else a dict
    name -> array. ``Response.version`` is the ``model_version`` the server reported
    (None if it reported none); ``latency_s`` is the wall time from sending the request
    to reading the whole answer.

    Failures. ``infer`` never raises for a failed request; it returns a `Response` with
    ``error`` (``"HTTP 404: Model iris not found"``) and ``error_kind``: ``"client"``
    for 4xx answers and inputs that cannot be encoded, ``"server"`` for 5xx answers and
    malformed answers, ``"timeout"`` when no answer came within ``timeout_s`` (and for
    HTTP 408 and 504), ``"connection"`` when the server could not be reached.

    Connections. Each thread keeps one HTTP/1.1 keep-alive connection; a connection that
    failed is dropped and the next request opens a new one. A request that finds its
    kept-alive connection closed by the server (servers close idle connections) is sent
    once more on a new connection. The endpoint is safe to share between threads and can
    be pickled (the copy opens its own connections).

    Args:
        url: the server's base URL, ``http://host:port`` (``https`` works too) with an
            optional path prefix (``http://gateway/ml``).
        model: the model's name on the server.
        timeout_s: seconds to wait to connect and for each read of an answer.
        input_name: the tensor name for a single-array ``inputs``.
        outputs: names of the output tensors to ask for (MLServer's scikit-learn runtime:
            ``("predict_proba",)``); None lets the model choose.
        output: the name of the output tensor to return as ``Response.outputs``.
        parameters: request-level ``parameters`` sent with every inference request.
        headers: extra HTTP headers (authentication, a ``Host`` for an ingress).

    Raises:
        InvalidInput: the URL is not ``http(s)://host[:port][/prefix]``, ``model`` is empty,
            ``timeout_s`` is not positive, or another argument has the wrong type.

    >>> import numpy as np
    >>> endpoint = V2Endpoint("http://127.0.0.1:9", "iris", timeout_s=2.0)
    >>> endpoint
    V2Endpoint('http://127.0.0.1:9', 'iris')
    >>> response = endpoint.infer(np.zeros((1, 4), dtype=np.float32))
    >>> response.ok, response.error_kind
    (False, 'connection')
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout_s: float = 10.0,
        input_name: str = "input-0",
        outputs: Sequence[str] | None = None,
        output: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise InvalidInput(f"'url' must be a string (got {describe(url)})")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                f"'url' must look like http://host:port or https://host/prefix (got {url!r})"
            )
        try:
            port = parts.port
        except ValueError:
            raise InvalidInput(f"'url' has an invalid port (got {url!r})") from None
        if parts.query or parts.fragment:
            raise InvalidInput(f"'url' must not have a query or fragment (got {url!r})")
        check_non_empty_string(model, "model")
        check_non_empty_string(input_name, "input_name")
        if outputs is not None:
            if isinstance(outputs, str) or not all(isinstance(o, str) and o for o in outputs):
                raise InvalidInput(
                    f"'outputs' must be a sequence of output names or None (got {outputs!r})"
                )
            outputs = tuple(outputs)
        if output is not None and (not isinstance(output, str) or not output):
            raise InvalidInput(f"'output' must be a non-empty string or None (got {output!r})")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise InvalidInput(
                f"'parameters' must be a mapping or None (got {describe(parameters)})"
            )
        if headers is not None and not isinstance(headers, Mapping):
            raise InvalidInput(f"'headers' must be a mapping or None (got {describe(headers)})")
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = _check_positive(timeout_s, "timeout_s")
        self.input_name = input_name
        self.outputs: tuple[str, ...] | None = outputs
        self.output = output
        self.parameters: dict[str, Any] | None = None if parameters is None else dict(parameters)
        self.headers = {"Content-Type": "application/json", **dict(headers or {})}
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._prefix = parts.path.rstrip("/")
        self._quoted_model = urllib.parse.quote(model, safe="")
        self._setup_connections()

    def _setup_connections(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        # thread id -> that thread's connection; closed when the endpoint is collected
        self._open: dict[int, http.client.HTTPConnection] = {}
        weakref.finalize(self, _close_all, self._open, self._lock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, {self.model!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_local", "_lock", "_open"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup_connections()

    def __enter__(self) -> V2Endpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every kept-alive connection (of all threads); later requests reconnect.

        Connections are also closed when the endpoint is garbage collected, and a
        thread's connection when a new connection is opened after that thread ended.
        """
        _close_all(self._open, self._lock)

    # ------------------------------------------------------------------ transport

    def _connection(self) -> http.client.HTTPConnection:
        ident = threading.get_ident()
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and self._open.get(ident) is connection:
            return connection
        # First request of this thread, or `close()` took its connection: open a new one.
        factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = factory(self._host, self._port, timeout=self.timeout_s)
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

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request on this thread's connection; (status, body) or `Failure`."""
        target = f"{self._prefix}{path}"
        for attempt in (0, 1):
            connection = self._connection()
            reused = connection.sock is not None
            try:
                connection.request(method, target, body=body, headers=self.headers)
                answer = connection.getresponse()
                data = answer.read()
            except TimeoutError:
                self._drop(connection)
                raise Failure(
                    "timeout",
                    f"no answer from {self.url} within timeout_s={self.timeout_s:g} s "
                    f"({method} {target})",
                ) from None
            except _STALE as exc:
                self._drop(connection)
                if reused and attempt == 0:
                    continue  # the server closed the idle connection: retry on a new one
                raise Failure(
                    "connection", f"connection to {self.url} failed: {type(exc).__name__}: {exc}"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(connection)
                raise Failure(
                    "connection",
                    f"cannot reach {self.url} ({method} {target}): {type(exc).__name__}: {exc}",
                ) from None
            if answer.will_close:
                self._drop(connection)
            return answer.status, data
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, method: str, path: str, payload: Any = None) -> tuple[int, bytes]:
        """A management call: (status, body) for any HTTP answer; `V2Error` without one."""
        body = None if payload is None else json.dumps(payload).encode()
        try:
            return self._request(method, path, body)
        except Failure as failure:
            raise V2Error(failure.message, kind=failure.kind) from None

    def _parse(self, data: bytes, what: str, expected: type[_T]) -> _T:
        """The JSON answer ``data``, which must decode to an ``expected``; else `V2Error`."""
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise V2Error(f"malformed {what} from {self.url}: {exc}", kind="server") from None
        if not isinstance(answer, expected):
            raise V2Error(f"malformed {what} from {self.url}: {answer!r}", kind="server")
        return answer

    def _model_path(self, version: str | None) -> str:
        path = f"/v2/models/{self._quoted_model}"
        if version is not None:
            path += f"/versions/{urllib.parse.quote(version, safe='')}"
        return path

    # ------------------------------------------------------------------- inference

    def encode(self, inputs: Any) -> dict[str, Any]:
        """The JSON request body ``infer`` sends for ``inputs`` (a dict, before encoding).

        Raises:
            InvalidInput: an input cannot be encoded (see `encode_tensor`).

        >>> import numpy as np
        >>> V2Endpoint("http://localhost:8080", "m", outputs=["predict_proba"]).encode(
        ...     np.array([[0.5, 1.0]])
        ... )  # doctest: +NORMALIZE_WHITESPACE
        {'inputs': [{'name': 'input-0', 'shape': [1, 2], 'datatype': 'FP64',
          'data': [0.5, 1.0]}], 'outputs': [{'name': 'predict_proba'}]}
        """
        if isinstance(inputs, Mapping):
            if not inputs:
                raise InvalidInput("'inputs' must name at least one tensor (got {})")
            tensors = [encode_tensor(str(name), value) for name, value in inputs.items()]
        else:
            tensors = [encode_tensor(self.input_name, inputs)]
        request: dict[str, Any] = {"inputs": tensors}
        if self.outputs is not None:
            request["outputs"] = [{"name": name} for name in self.outputs]
        if self.parameters is not None:
            request["parameters"] = self.parameters
        return request

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Send one inference request and return the decoded response; never raises.

        Args:
            inputs: an array-like (one tensor named ``input_name``) or a mapping name ->
                array-like.
            version: the model version to ask for; None lets the server choose (MLServer
                serves the highest loaded version).

        Returns:
            A `Response`: on success ``outputs`` (numpy array, or dict of arrays when the
            model answered several tensors), ``version`` (the server's ``model_version``)
            and ``latency_s``; on failure ``error`` and ``error_kind``.

        >>> import numpy as np
        >>> endpoint = V2Endpoint("http://127.0.0.1:9", "iris")
        >>> endpoint.infer(np.zeros(2, dtype=np.complex64)).error_kind
        'client'
        """
        if version is not None and (not isinstance(version, str) or not version):
            return Response(
                error=f"'version' must be a non-empty string or None (got {describe(version)})",
                error_kind="client",
            )
        try:
            body = json.dumps(self.encode(inputs)).encode()
        except InvalidInput as exc:
            return Response(error=str(exc), error_kind="client")
        path = self._model_path(version) + "/infer"
        start = time.perf_counter()
        try:
            status, data = self._request("POST", path, body)
        except Failure as failure:
            latency = time.perf_counter() - start
            return Response(latency_s=latency, error=failure.message, error_kind=failure.kind)
        latency = time.perf_counter() - start
        if not 200 <= status < 300:
            return Response(
                latency_s=latency,
                error=f"HTTP {status}: {error_text(data)}",
                error_kind=status_kind(status),
            )
        try:
            answer = json.loads(data)
            served = answer.get("model_version")
            outputs = self._decode_outputs(answer["outputs"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Response(
                latency_s=latency,
                error=f"malformed answer from {self.url}: {type(exc).__name__}: {exc}",
                error_kind="server",
            )
        return Response(
            outputs=outputs,
            version=None if served is None else str(served),
            latency_s=latency,
        )

    def _decode_outputs(self, tensors: Any) -> Any:
        if not isinstance(tensors, list) or not tensors:
            raise ValueError("the answer has no output tensors")
        decoded = {str(t["name"]): decode_tensor(t) for t in tensors}
        if self.output is not None:
            if self.output not in decoded:
                raise ValueError(
                    f"no output tensor named {self.output!r} (got {', '.join(decoded)})"
                )
            return decoded[self.output]
        if len(decoded) == 1:
            return next(iter(decoded.values()))
        return decoded

    # ------------------------------------------------------------------- readiness

    def ready(self, version: str | None = None) -> bool:
        """True when the model (or that ``version`` of it) is ready to serve; never raises.

        >>> V2Endpoint("http://127.0.0.1:9", "iris").ready()
        False
        """
        try:
            status, _ = self._request("GET", self._model_path(version) + "/ready")
        except Failure:
            return False
        return status == 200

    def wait_ready(
        self, timeout_s: float = 60.0, *, version: str | None = None, interval_s: float = 0.1
    ) -> float:
        """Wait until the server and the model (or ``version``) are ready; the seconds waited.

        Polls ``GET /v2/health/ready`` and then ``GET /v2/models/{model}[/versions/{v}]/ready``
        until both answer 200, sleeping ``interval_s`` (doubling up to 1 s) between tries.

        Raises:
            TimeoutError: not ready within ``timeout_s``; the message says what was last seen.
            InvalidInput: ``timeout_s`` or ``interval_s`` is not positive.
        """
        timeout_s = _check_positive(timeout_s, "timeout_s")
        interval_s = _check_positive(interval_s, "interval_s")
        if version is not None:
            version = check_non_empty_string(version, "version")
        start = time.monotonic()
        last = "no answer yet"
        while True:
            last = self._readiness()
            if version is not None and not last:
                last = "" if self.ready(version) else f"version {version!r} is not ready"
            if not last:
                return time.monotonic() - start
            waited = time.monotonic() - start
            if waited >= timeout_s:
                raise TimeoutError(
                    f"model {self.model!r} at {self.url} was not ready after {waited:.1f} s "
                    f"(timeout_s={timeout_s:g}); last seen: {last}"
                )
            time.sleep(min(interval_s, max(timeout_s - waited, 0.0)))
            interval_s = min(interval_s * 2, 1.0)

    def _readiness(self) -> str:
        """Empty when server and model are ready, else what is not."""
        for path, what in (
            ("/v2/health/ready", "server"),
            (self._model_path(None) + "/ready", f"model {self.model!r}"),
        ):
            try:
                status, data = self._request("GET", path)
            except Failure as failure:
                return failure.message
            if status != 200:
                return f"{what} not ready (GET {path}: HTTP {status} {error_text(data)})"
        return ""

    def metadata(self, version: str | None = None) -> dict[str, Any]:
        """The model's metadata (``GET /v2/models/{model}[/versions/{v}]``) as a dict.

        Raises:
            V2Error: the server answered an error or could not be reached.
        """
        if version is not None:
            version = check_non_empty_string(version, "version")
        path = self._model_path(version)
        status, data = self._call("GET", path)
        if status != 200:
            raise http_error(f"metadata of model {self.model!r}", status, data)
        return self._parse(data, "metadata", dict)

    # ------------------------------------------------------------ model repository

    def _index(self) -> list[dict[str, Any]]:
        status, data = self._call("POST", "/v2/repository/index", {})
        if status != 200:
            raise http_error(f"repository index of {self.url}", status, data)
        items = self._parse(data, "repository index", list)
        return [item for item in items if isinstance(item, dict)]

    def repository_versions(self) -> tuple[str, ...]:
        """Every version of the model in the server's repository, loaded or not.

        Raises:
            V2Error: the server has no repository extension or could not be reached.
        """
        found = {
            str(item["version"])
            for item in self._index()
            if item.get("name") == self.model and item.get("version") not in (None, "")
        }
        return tuple(sorted(found, key=version_sort_key))

    def versions(self) -> tuple[str, ...]:
        """The versions of the model that are loaded and ready, in version order.

        Lists the repository index (``POST /v2/repository/index``) and asks each version's
        readiness (``GET .../versions/{v}/ready``); an unversioned model has no versions.

        Raises:
            V2Error: the server has no repository extension or could not be reached.
        """
        return tuple(v for v in self.repository_versions() if self.ready(v))

    def load(self, version: str) -> None:
        """Load the model from the server's repository and check that ``version`` is ready.

        The V2 repository API loads models, not versions:
        ``POST /v2/repository/models/{model}/load`` makes the server (re)read the model from
        its repository. MLServer then loads every version found there (reloading the ones
        already loaded, each new copy ready before the old one goes, so serving goes on)
        and unloads the versions no longer there. To add a version, put it into the
        repository (a folder with its ``model-settings.json`` for MLServer) and call this.

        Raises:
            InvalidInput: ``version`` is not a non-empty string, or it is not ready after
                the load (it is not in the server's repository).
            V2Error: the server refused the load or could not be reached.
        """
        version = check_non_empty_string(version, "version")
        path = f"/v2/repository/models/{self._quoted_model}/load"
        status, data = self._call("POST", path)
        if not 200 <= status < 300:
            raise http_error(
                f"loading model {self.model!r} (for version {version!r}) at {self.url} failed",
                status,
                data,
            )
        if not self.ready(version):
            ready = self.versions()
            listing = ", ".join(repr(v) for v in ready) if ready else "none"
            raise InvalidInput(
                f"version {version!r} of model {self.model!r} is not ready after loading the "
                f"model at {self.url} (ready versions: {listing}); is it in the server's "
                "model repository?"
            )

    def unload(self, version: str) -> None:
        """Unload ``version``, which must be the only loaded version of the model.

        The V2 repository API unloads models, not versions
        (``POST /v2/repository/models/{model}/unload`` unloads every version), so this
        refuses while other versions are loaded rather than unloading them too. To drop
        one version of several from MLServer, remove it from the repository and call
        `load` (MLServer unloads versions no longer there); to unload all, `unload_all`.

        Raises:
            InvalidInput: ``version`` is not loaded.
            V2Error: other versions are loaded (``kind="unsupported"``), the server refused
                the unload, or it could not be reached.
        """
        version = check_non_empty_string(version, "version")
        loaded = self.versions()
        if version not in loaded:
            listing = ", ".join(repr(v) for v in loaded) if loaded else "none"
            raise InvalidInput(
                f"cannot unload version {version!r} of model {self.model!r}: it is not loaded "
                f"(loaded: {listing})"
            )
        others = [v for v in loaded if v != version]
        if others:
            listing = ", ".join(repr(v) for v in others)
            raise V2Error(
                f"cannot unload only version {version!r} of model {self.model!r}: the V2 "
                f"repository API unloads every version, and {listing} would go too; remove "
                "it from the server's repository and call load(), or call unload_all()",
                kind="unsupported",
            )
        self.unload_all()

    def unload_all(self) -> None:
        """Unload every version of the model (``POST /v2/repository/models/{model}/unload``).

        Raises:
            V2Error: the server refused the unload or could not be reached.
        """
        path = f"/v2/repository/models/{self._quoted_model}/unload"
        status, data = self._call("POST", path)
        if not 200 <= status < 300:
            raise http_error(f"unloading model {self.model!r} at {self.url} failed", status, data)
