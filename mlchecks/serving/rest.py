"""`RestEndpoint`: a model behind a plain JSON REST route (a FastAPI ``/predict``, MLflow).

Many model services speak no standard protocol: a route takes a JSON body and answers a
JSON body (a FastAPI or Flask ``POST /predict``, BentoML, MLflow's scoring server's
``POST /invocations``). `RestEndpoint` is an `Endpoint` for such a route: you say how the
inputs become the request body (``encode``) and how the answer becomes the outputs
(``decode``), and it brings the transport of the V2 client (keep-alive connections,
timeouts, TLS, headers or a header callable, retries of HTTP 503 and reset connections
counted in `Response.n_retries`, a request id header) and never raises from ``infer``.

`RestEndpoint.mlflow` configures one for MLflow's scoring server (``mlflow models
serve``): ``POST /invocations`` with ``{"inputs": ...}`` (or ``{"dataframe_split": ...}``
with column names), ``{"predictions": ...}`` back, readiness from ``GET /ping``.

A service like these serves one model and has no route per version, so it answers no
named version: ``infer(inputs, version="2")`` is a client error. To run the serving checks
on such services: `mlchecks.serving.EndpointsDeployment` maps version -> endpoint (one
service per version) for `CanaryCheck`, and `RollbackCheck` takes the known-good
version's predictions computed offline (``known_good_predictions=``).
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlchecks._text import redact
from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Headers,
    HttpTransport,
    check_seconds,
)
from mlchecks.serving._v2_codec import Failure, failed_response, parse_json, status_response

__all__ = ["MLflowBody", "RestEndpoint", "default_decode", "default_encode", "to_json"]


def to_json(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python scalars.

    Mappings and sequences are converted item by item; a pandas DataFrame becomes its
    rows (``df.to_numpy().tolist()``).

    >>> import numpy as np
    >>> to_json({"x": np.array([[1.0, 2.0]]), "n": np.int64(3)})
    {'x': [[1.0, 2.0]], 'n': 3}
    """
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    to_numpy = getattr(value, "to_numpy", None)
    if callable(to_numpy):  # a pandas DataFrame or Series
        return to_json(to_numpy())
    return value


def default_encode(inputs: Any) -> dict[str, Any]:
    """The default request body: ``{"inputs": inputs}`` with arrays as nested lists.

    >>> import numpy as np
    >>> default_encode(np.array([[0.5, 1.0]]))
    {'inputs': [[0.5, 1.0]]}
    """
    return {"inputs": to_json(inputs)}


def default_decode(answer: Any) -> Any:
    """The default outputs of an answer: its ``"predictions"`` as a numpy array.

    An answer that is a JSON list is taken whole. Anything else raises `ValueError`
    naming the keys it has (then pass ``decode=``).

    >>> default_decode({"predictions": [[0.25, 0.75]]})
    array([[0.25, 0.75]])
    >>> default_decode([0, 1])
    array([0, 1])
    """
    if isinstance(answer, Mapping) and "predictions" in answer:
        return np.asarray(answer["predictions"])
    if isinstance(answer, list):
        return np.asarray(answer)
    keys = ", ".join(repr(k) for k in answer) if isinstance(answer, Mapping) else None
    got = f"an object with keys {keys}" if keys is not None else describe(answer)
    raise ValueError(f"the answer has no 'predictions' key (got {got}); pass decode=")


class MLflowBody:
    """The request body of MLflow's scoring server for some inputs (picklable).

    >>> MLflowBody(None, {"k": 1})([[1.0, 2.0]])
    {'inputs': [[1.0, 2.0]], 'params': {'k': 1}}
    """

    def __init__(self, columns: list[str] | None, params: dict[str, Any] | None) -> None:
        self.columns = columns
        self.params = params

    def __call__(self, inputs: Any) -> dict[str, Any]:
        names = getattr(inputs, "columns", None)
        if names is not None and callable(getattr(inputs, "to_numpy", None)):
            split = {"columns": to_json(list(names)), "data": to_json(inputs)}
            body: dict[str, Any] = {"dataframe_split": split}
        elif self.columns is not None:
            body = {"dataframe_split": {"columns": self.columns, "data": to_json(inputs)}}
        else:
            body = {"inputs": to_json(inputs)}
        if self.params is not None:
            body["params"] = self.params
        return body


def _callable_or_none(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise InvalidInput(f"'{name}' must be callable or None (got {describe(value)})")
    return value


def _path(value: Any, name: str) -> str | None:
    if value is None:
        return None
    path = check_non_empty_string(value, name)
    if not path.startswith("/"):
        raise InvalidInput(f"'{name}' must be a path starting with '/' (got {path!r})")
    return path


class RestEndpoint:
    """A model behind one JSON REST route: an `Endpoint` (see the module docstring).

    Requests. ``infer(inputs)`` sends ``POST url`` with the JSON body ``encode(inputs)``
    (default: ``{"inputs": inputs}``, numpy arrays as nested lists) and a fresh request
    id in the ``request_id_header`` (``X-Request-ID``; echoed in ``Response.request_id``,
    so server logs can be matched with the check's requests).

    Answers. ``Response.outputs`` is ``decode(answer)``, the answer's JSON decoded
    (default: its ``"predictions"`` as a numpy array, or the whole answer when it is a
    list). ``Response.version`` is the version the service reports in the answer's
    ``version_key`` field (``{"predictions": [...], "model_version": "3"}``), else None:
    the checks then tell versions apart by their outputs. ``latency_s`` is the wall time
    from sending the request to reading the whole answer.

    Versions. The service serves one model and has no route per version: ``infer`` with
    ``version=None`` asks whatever it serves; a named version is refused as a client
    error (`EndpointsDeployment` maps versions to services; `RollbackCheck` takes the
    known-good predictions computed offline).

    Failures. ``infer`` never raises: a failed request is a `Response` with ``error`` and
    ``error_kind``: ``"client"`` for 4xx answers and inputs ``encode`` cannot turn into
    JSON, ``"server"`` for 5xx answers, answers ``decode`` cannot read and answers longer
    than ``max_response_bytes``, ``"timeout"`` when no complete answer came within
    ``timeout_s`` (and HTTP 408 and 504), ``"connection"`` when the service could not be
    reached. An HTTP 503 or a connection reset is retried ``n_retries`` times with
    exponential backoff while time remains, counted in ``Response.n_retries``;
    ``timeout_s`` bounds the whole call, retries included, however slowly the service
    sends its answer.

    Credentials in the URL (``http://user:password@host/predict``) are sent as HTTP Basic
    authentication, unless ``headers`` set ``Authorization``; ``url``, the repr and every
    message show the password as ``***``.

    Connections are kept alive per thread; the endpoint is safe to share between threads
    and pickles (the copy opens its own connections; not with an ``ssl_context``).

    Args:
        url: the route, ``http(s)://[user:password@]host[:port]/path``
            (``http://127.0.0.1:8000/predict``).
        encode: ``encode(inputs) -> body``, any JSON-serializable value (numpy arrays and
            scalars inside it are converted with `to_json`); None: `default_encode`.
        decode: ``decode(answer) -> outputs`` from the answer's decoded JSON; raising
            marks the response as a server error; None: `default_decode`.
        version_key: the top-level field of the answer that names the version which
            served it (None: the service does not say).
        ready_path: a path on the same host answering 200 when the service is ready
            (``"/ping"``, ``"/health"``), for `ready` and `wait_ready`; None: the
            service is ready when it accepts connections.
        method: the HTTP method of inference requests.
        request_id_header: the header carrying the request id (None: send none).
        timeout_s: the most seconds one call takes, from connecting to the last byte of
            the answer, retries included.
        headers: extra HTTP headers (authentication), or a callable returning them,
            called before every request (a token that expires).
        ssl_context, ca_file, cert_file, key_file: TLS for ``https`` URLs (see
            `mlchecks.serving.V2Endpoint`).
        n_retries: how many times an HTTP 503 or a connection reset is retried.
        retry_backoff_s: the first wait before a retry (doubling after each).
        max_response_bytes: the longest answer read, in bytes (64 MiB); a longer one is a
            ``"server"`` failure, refused without reading it all. None: no cap.

    Raises:
        InvalidInput: the URL is not ``http(s)://host[:port]/path``, a callable is not
            callable, or another argument has the wrong type or value.

    >>> import numpy as np
    >>> endpoint = RestEndpoint("http://127.0.0.1:9/predict", timeout_s=2.0)
    >>> endpoint
    RestEndpoint('http://127.0.0.1:9/predict')
    >>> response = endpoint.infer(np.zeros((1, 4)))
    >>> response.ok, response.error_kind
    (False, 'connection')
    >>> endpoint.infer(np.zeros((1, 4)), version="2").error  # doctest: +ELLIPSIS
    "RestEndpoint('http://127.0.0.1:9/predict') serves one model and cannot answer version '2'..."
    """

    def __init__(
        self,
        url: str,
        *,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
        version_key: str | None = None,
        ready_path: str | None = None,
        method: str = "POST",
        request_id_header: str | None = "X-Request-ID",
        timeout_s: float = 10.0,
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
        self._transport = HttpTransport(
            f"{parts.scheme}://{parts.netloc}" if parts.netloc else url,
            timeout_s=timeout_s,
            headers=headers,
            ssl_context=ssl_context,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            n_retries=n_retries,
            retry_backoff_s=retry_backoff_s,
            max_response_bytes=max_response_bytes,
        )
        if parts.query or parts.fragment:
            raise InvalidInput(f"'url' must not have a query or fragment (got {redact(url)!r})")
        self.url = redact(url)
        self.route = parts.path or "/"
        self.encode = _callable_or_none(encode, "encode") or default_encode
        self.decode = _callable_or_none(decode, "decode") or default_decode
        self.version_key = (
            None if version_key is None else check_non_empty_string(version_key, "version_key")
        )
        self.ready_path = _path(ready_path, "ready_path")
        self.method = check_non_empty_string(method, "method").upper()
        self.request_id_header = (
            None
            if request_id_header is None
            else check_non_empty_string(request_id_header, "request_id_header")
        )
        self.timeout_s = self._transport.timeout_s
        self.max_response_bytes = self._transport.max_response_bytes

    @classmethod
    def mlflow(
        cls,
        url: str,
        *,
        columns: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RestEndpoint:
        """An endpoint for MLflow's scoring server (``mlflow models serve``) at ``url``.

        Requests go to ``POST {url}/invocations`` as ``{"inputs": rows}`` (the tensor
        input a model trained on arrays takes), or with ``columns`` as ``{"dataframe_split":
        {"columns": columns, "data": rows}}`` (a model trained on a DataFrame); a pandas
        DataFrame given as inputs is sent as ``dataframe_split`` with its own columns.
        ``params`` go along as the request's ``"params"`` (models logged with a params
        schema). Outputs are the answer's ``"predictions"`` as a numpy array: class
        labels from a classifier's ``predict``, probabilities from one logged with
        ``pyfunc_predict_fn="predict_proba"``. Readiness is ``GET {url}/ping``. The scoring
        server does not say which model version answered (``Response.version`` is None).

        Args:
            url: the server's base URL (``http://127.0.0.1:5000``).
            columns: the model's input column names, for ``dataframe_split``.
            params: inference parameters sent with every request.
            kwargs: any other `RestEndpoint` argument (``timeout_s``, ``headers``, TLS...).

        >>> endpoint = RestEndpoint.mlflow("http://127.0.0.1:5000")
        >>> endpoint, endpoint.ready_path
        (RestEndpoint('http://127.0.0.1:5000/invocations'), '/ping')
        >>> RestEndpoint.mlflow("http://127.0.0.1:5000", columns=["a", "b"]).encode([[1, 2]])
        {'dataframe_split': {'columns': ['a', 'b'], 'data': [[1, 2]]}}
        """
        if not isinstance(url, str):
            raise InvalidInput(f"'url' must be a string (got {describe(url)})")
        if columns is not None:
            if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
                raise InvalidInput(
                    f"'columns' must be a sequence of column names or None (got {columns!r})"
                )
            columns = list(columns)
        if params is not None and not isinstance(params, Mapping):
            raise InvalidInput(f"'params' must be a mapping or None (got {describe(params)})")
        extra = None if params is None else to_json(dict(params))
        kwargs.setdefault("ready_path", "/ping")
        encode = MLflowBody(columns, extra)
        return cls(url.rstrip("/") + "/invocations", encode=encode, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __enter__(self) -> RestEndpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every kept-alive connection (of all threads); later requests reconnect."""
        self._transport.close()

    @property
    def headers(self) -> Headers | None:
        """The extra HTTP headers sent with every request (or the callable making them)."""
        return self._transport.headers

    # ------------------------------------------------------------------- inference

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Send one request and return the decoded response; never raises.

        Args:
            inputs: whatever ``encode`` takes (by default an array-like, one row or a batch).
            version: must be None: the service serves one model (a named version is a
                ``"client"`` error naming the alternatives).

        Returns:
            A `Response`: on success ``outputs`` (``decode``'s result), ``version`` (from
            ``version_key``, else None) and ``latency_s``; on failure ``error`` and
            ``error_kind``.
        """
        if version is not None:
            return Response(
                error=f"{self!r} serves one model and cannot answer version {version!r}: "
                "map versions to endpoints with EndpointsDeployment, or give RollbackCheck "
                "known_good_predictions=",
                error_kind="client",
            )
        try:
            body = json.dumps(to_json(self.encode(inputs))).encode()
        except Exception as exc:
            return Response(
                error=f"cannot encode the inputs as JSON: {type(exc).__name__}: {exc}",
                error_kind="client",
            )
        request_id = uuid.uuid4().hex
        extra = None if self.request_id_header is None else {self.request_id_header: request_id}
        sent_id = None if extra is None else request_id
        start = time.perf_counter()
        try:
            status, data, retries = self._transport.request(
                self.method, self.route, body, headers=extra
            )
        except Failure as failure:
            return failed_response(failure, time.perf_counter() - start, sent_id)
        latency = time.perf_counter() - start
        if not 200 <= status < 300:
            return status_response(
                status, data, latency_s=latency, n_retries=retries, request_id=sent_id
            )
        try:
            answer = parse_json(data)
            served = self._served(answer)
            outputs = self.decode(answer)
        except Exception as exc:
            return Response(
                latency_s=latency,
                error=f"malformed answer from {self.url}: {type(exc).__name__}: {exc}",
                error_kind="server",
                n_retries=retries,
                request_id=sent_id,
            )
        return Response(
            outputs=outputs,
            version=served,
            latency_s=latency,
            n_retries=retries,
            request_id=sent_id,
        )

    def _served(self, answer: Any) -> str | None:
        if self.version_key is None:
            return None
        if not isinstance(answer, Mapping) or answer.get(self.version_key) is None:
            raise ValueError(f"the answer has no {self.version_key!r} field (version_key)")
        return str(answer[self.version_key])

    # ------------------------------------------------------------------- readiness

    def ready(self) -> bool:
        """True when the service answers ``GET ready_path`` with 200 (without a
        ``ready_path``: when it accepts a connection); never raises.

        >>> RestEndpoint("http://127.0.0.1:9/predict", ready_path="/health").ready()
        False
        """
        path = self.ready_path if self.ready_path is not None else "/"
        try:
            status, _, _ = self._transport.request("GET", path)
        except Failure:
            return False
        return self.ready_path is None or status == 200

    def wait_ready(self, timeout_s: float = 60.0, *, interval_s: float = 0.1) -> float:
        """Wait until `ready`; the seconds waited.

        Polls every ``interval_s`` (doubling up to 1 s).

        Raises:
            TimeoutError: not ready within ``timeout_s``.
            InvalidInput: ``timeout_s`` or ``interval_s`` is not positive.
        """
        timeout_s = check_seconds(timeout_s, "timeout_s")
        interval_s = check_seconds(interval_s, "interval_s")
        start = time.monotonic()
        while not self.ready():
            waited = time.monotonic() - start
            if waited >= timeout_s:
                what = f"GET {self.ready_path}" if self.ready_path else "a connection"
                raise TimeoutError(
                    f"{self!r} was not ready after {waited:.1f} s (timeout_s={timeout_s:g}; "
                    f"waited for {what})"
                )
            time.sleep(min(interval_s, max(timeout_s - waited, 0.0)))
            interval_s = min(interval_s * 2, 1.0)
        return time.monotonic() - start
