"""`V2Endpoint`: one model on a server that speaks the Open Inference Protocol over HTTP.

Inference, readiness and the model repository extension. The transport (keep-alive
connections, TLS, headers, retries) is `mlchecks.serving._http.HttpTransport`, the wire
format `mlchecks.serving._v2_codec`; the public names are re-exported by
`mlchecks.serving.v2`.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Answer,
    Headers,
    HttpTransport,
    check_seconds,
)
from mlchecks.serving._v2_codec import (
    Failure,
    V2Error,
    decode_tensor,
    encode_tensor,
    error_text,
    failed_response,
    http_error,
    parse_json,
    status_response,
)
from mlchecks.serving._v2_model import DEFAULT_INPUT_NAME, V2Model

__all__ = ["DEFAULT_INPUT_NAME", "V2Endpoint"]

_T = TypeVar("_T")


# ---------------------------------------------------------------------------- endpoint


class V2Endpoint(V2Model):
    """One model on a server that speaks the Open Inference Protocol (V2) over HTTP.

    It is a `ModelServer`: ``infer`` for predictions, ``load`` / ``unload`` / ``versions``
    through the protocol's model repository extension, plus readiness (`ready`,
    `wait_ready`) and `metadata`. Works with MLServer, KServe and Triton.

    Requests. ``inputs`` is an array-like (sent as one tensor named ``input_name``) or a
    mapping name -> array-like (one tensor each). The numpy dtype picks the datatype:
    float32 -> FP32, float64 -> FP64, int64 -> INT64, int32 -> INT32, bool -> BOOL,
    str/bytes -> BYTES (and the other integer and float widths the protocol has). Without
    ``input_name`` the model's metadata decides: the endpoint asks for it once, and when
    the model declares its inputs (Triton always does) a single array is sent under the
    declared name, numeric arrays are cast to the declared datatype (float64 features
    to a model that declares FP32), and one row without the batch axis the model declares
    gets it (``(30,)`` is sent as ``(1, 30)`` to a Triton model declaring ``[-1, 30]``);
    a model that declares none gets ``"input-0"``.

    Answers. ``Response.outputs`` is the output tensor as a numpy array with its shape and
    dtype when the model answers one tensor (or when ``output`` names one), else a dict
    name -> array. ``Response.version`` is the ``model_version`` the server reported
    (None if it reported none); ``latency_s`` is the wall time from sending the request
    to reading the whole answer.

    Failures. ``infer`` never raises for a failed request; it returns a `Response` with
    ``error`` (``"HTTP 404: Model iris not found"``) and ``error_kind``: ``"client"``
    for 4xx answers and inputs that cannot be encoded, ``"server"`` for 5xx answers and
    malformed answers and answers longer than ``max_response_bytes``, ``"timeout"`` when
    no complete answer came within ``timeout_s`` (and for HTTP 408 and 504),
    ``"connection"`` when the server could not be reached.

    Deadlines. ``timeout_s`` bounds each call as a whole: the metadata lookup of a first
    ``infer``, connecting, sending, reading every byte of the answer, and the retries with
    their backoff (a retry is tried only while time remains); a server that trickles its
    answer cannot stretch a call past it. ``load`` and ``unload`` (with their readiness
    checks) are bounded by ``load_timeout_s`` the same way.

    Credentials. A URL with credentials (``http://user:password@host:8080``) sends them as
    HTTP Basic authentication, unless ``headers`` set ``Authorization``; ``url``, the
    repr and every message show the password as ``***``.

    Every inference request carries an ``id`` (a fresh UUID, echoed by V2 servers and in
    ``Response.request_id``), so server logs can be matched with the check's requests.

    Connections. Each thread keeps one HTTP/1.1 keep-alive connection; a connection that
    failed is dropped and the next request opens a new one. A request that finds its
    kept-alive connection closed by the server (servers close idle connections) is sent
    once more on a new connection. Transient failures, an HTTP 503 answer or a connection
    reset while the request was in flight, are retried ``n_retries`` times with exponential
    backoff; ``Response.n_retries`` counts them, and the checks report them apart from
    failures. The endpoint is safe to share between threads and can be pickled (the copy
    opens its own connections; not with an ``ssl_context``, give ``ca_file`` instead).

    Args:
        url: the server's base URL, ``http://host:port`` (``https`` works too) with an
            optional path prefix (``http://gateway/ml``) and optional credentials
            (``http://user:password@host:port``, sent as Basic authentication).
        model: the model's name on the server.
        timeout_s: the most seconds an inference, readiness or metadata call takes, from
            connecting to the last byte of the answer, retries included.
        load_timeout_s: the same for the model repository's ``load`` and ``unload``, which
            answer only once the model is (un)loaded (Triton takes seconds).
        input_name: the tensor name for a single-array ``inputs``; None: the one input the
            model's metadata declares (and its datatype), else ``"input-0"``.
        outputs: names of the output tensors to ask for (MLServer's scikit-learn runtime:
            ``("predict_proba",)``); None lets the model choose.
        output: the name of the output tensor to return as ``Response.outputs``.
        parameters: request-level ``parameters`` sent with every inference request.
        headers: extra HTTP headers (authentication, a ``Host`` for an ingress), or a
            callable returning them, called before every request (a token that expires).
        ssl_context: an `ssl.SSLContext` for ``https`` URLs (custom trust, client
            certificates); or give ``ca_file`` (the CA bundle to trust) and, for mutual TLS,
            ``cert_file`` and ``key_file`` (the client certificate and its key, PEM).
        ca_file, cert_file, key_file: see ``ssl_context``.
        n_retries: how many times an HTTP 503 or a connection reset is retried.
        retry_backoff_s: the first wait before a retry (doubling after each).
        max_response_bytes: the longest answer read, in bytes (64 MiB); a longer one is a
            ``"server"`` failure naming its size, refused without reading it all. None: no
            cap.

    Raises:
        InvalidInput: the URL is not ``http(s)://host[:port][/prefix]``, ``model`` is empty,
            ``timeout_s`` is not positive, a TLS file does not exist or TLS settings come
            with an ``http`` URL, or another argument has the wrong type.

    >>> import numpy as np
    >>> endpoint = V2Endpoint("http://127.0.0.1:9", "iris", timeout_s=2.0)
    >>> endpoint
    V2Endpoint('http://127.0.0.1:9', 'iris')
    >>> response = endpoint.infer(np.zeros((1, 4), dtype=np.float32))
    >>> response.ok, response.error_kind
    (False, 'connection')
    """

    _transport: HttpTransport

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout_s: float = 10.0,
        load_timeout_s: float = 120.0,
        input_name: str | None = None,
        outputs: Sequence[str] | None = None,
        output: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        headers: Headers | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        n_retries: int = 2,
        retry_backoff_s: float = 0.1,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        transport = HttpTransport(
            url,
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
        self._init_model(
            transport,
            model,
            load_timeout_s=load_timeout_s,
            input_name=input_name,
            outputs=outputs,
            output=output,
            parameters=parameters,
        )
        self._quoted_model = urllib.parse.quote(model, safe="")

    @property
    def max_response_bytes(self) -> int | None:
        """The longest answer read, in bytes (None: no cap)."""
        return self._transport.max_response_bytes

    # ------------------------------------------------------------------ transport

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        timeout_s: float | None = None,
        timeout_name: str = "timeout_s",
    ) -> Answer:
        """Send one request; its `Answer` or `Failure` (see `HttpTransport.request`)."""
        return self._transport.request(
            method, path, body, timeout_s=timeout_s, timeout_name=timeout_name
        )

    def _call(
        self, method: str, path: str, payload: Any = None, *, timeout_s: float | None = None
    ) -> tuple[int, bytes]:
        """A management call: (status, body) for any HTTP answer; `V2Error` without one.
        A ``timeout_s`` of its own is the ``load_timeout_s`` of a repository call."""
        body = None if payload is None else json.dumps(payload).encode()
        name = "timeout_s" if timeout_s is None else "load_timeout_s"
        try:
            answer = self._request(method, path, body, timeout_s=timeout_s, timeout_name=name)
            return answer.status, answer.data
        except Failure as failure:
            raise V2Error(failure.message, kind=failure.kind) from None

    def _parse(self, data: bytes, what: str, expected: type[_T]) -> _T:
        """The JSON answer ``data``, which must decode to an ``expected``; else `V2Error`."""
        try:
            answer = parse_json(data)
        except ValueError as exc:
            raise V2Error(f"malformed {what} from {self.url}: {exc}", kind="server") from None
        if not isinstance(answer, expected):
            shown = repr(answer)
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            raise V2Error(f"malformed {what} from {self.url}: {shown}", kind="server")
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
        tensors = [encode_tensor(name, value) for name, value in self.named_inputs(inputs).items()]
        request: dict[str, Any] = {"inputs": tensors}
        if self.outputs is not None:
            request["outputs"] = [{"name": name} for name in self.outputs]
        if self.parameters is not None:
            request["parameters"] = self.parameters
        return request

    def declared_inputs(self) -> dict[str, str | None]:
        """The inputs the model's metadata declares, name -> V2 datatype, in order.

        Asked once (``GET /v2/models/{model}``) and remembered; empty when the model
        declares none or the server has no metadata for it. An unreachable server is asked
        again on the next request.

        >>> V2Endpoint("http://127.0.0.1:9", "iris").declared_inputs()
        {}
        """
        if self._declared is not None:
            return self._declared
        try:
            status, data, _ = self._request("GET", self._model_path(None))
        except Failure:
            return {}
        items: Any = []
        if status == 200:
            try:
                items = parse_json(data).get("inputs") or []
            except (ValueError, AttributeError):
                items = []
        return self._remember_inputs(items)

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
        request_id = uuid.uuid4().hex
        # one deadline for the whole call: the metadata lookup of the first call included
        with self._bounded(self.timeout_s, "timeout_s"):
            try:
                body = json.dumps({"id": request_id, **self.encode(inputs)}).encode()
            except InvalidInput as exc:
                return Response(error=str(exc), error_kind="client")
            path = self._model_path(version) + "/infer"
            start = time.perf_counter()
            try:
                status, data, retries = self._request("POST", path, body)
            except Failure as failure:
                return failed_response(failure, time.perf_counter() - start, request_id)
        latency = time.perf_counter() - start
        if not 200 <= status < 300:
            return status_response(
                status, data, latency_s=latency, n_retries=retries, request_id=request_id
            )
        try:
            answer = parse_json(data)
            served = answer.get("model_version")
            outputs = self._decode_outputs(answer["outputs"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Response(
                latency_s=latency,
                error=f"malformed answer from {self.url}: {type(exc).__name__}: {exc}",
                error_kind="server",
                n_retries=retries,
                request_id=request_id,
            )
        return Response(
            outputs=outputs,
            version=None if served is None else str(served),
            latency_s=latency,
            n_retries=retries,
            request_id=request_id,
        )

    def _decode_outputs(self, tensors: Any) -> Any:
        if not isinstance(tensors, list) or not tensors:
            raise ValueError("the answer has no output tensors")
        return self.pick_output({str(t["name"]): decode_tensor(t) for t in tensors})

    # ------------------------------------------------------------------- readiness

    def ready(self, version: str | None = None) -> bool:
        """True when the model (or that ``version`` of it) is ready to serve; never raises.

        >>> V2Endpoint("http://127.0.0.1:9", "iris").ready()
        False
        """
        try:
            answer = self._request("GET", self._model_path(version) + "/ready")
        except Failure:
            return False
        return answer.status == 200

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
        timeout_s = check_seconds(timeout_s, "timeout_s")
        interval_s = check_seconds(interval_s, "interval_s")
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
                status, data, _ = self._request("GET", path)
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
