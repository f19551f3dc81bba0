"""`V2GrpcEndpoint`: one model on a server that speaks the Open Inference Protocol over gRPC.

gRPC is the default transport of Triton, MLServer and KServe. `V2GrpcEndpoint` has the
constructor, methods and semantics of `mlchecks.serving.V2Endpoint` (the HTTP client), so
either works wherever the other does: in `V2Deployment`, `V2ModelsDeployment`,
`CanaryCheck` and `RollbackCheck`. It needs the ``grpc`` extra
(``pip install "mlchecks-infra[grpc]"``: grpcio and grpcio-tools); importing
`mlchecks.serving` does not import them.

The messages come from ``proto/open_inference.proto`` (written from the public
specification), compiled at first use (see `mlchecks.serving._grpc_wire`).
"""

from __future__ import annotations

import os
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving._grpc_transport import GrpcTransport
from mlchecks.serving._grpc_wire import (
    add_input,
    decode_outputs,
    needs_raw,
    protocol,
    set_parameter,
)
from mlchecks.serving._http import DEFAULT_MAX_RESPONSE_BYTES, Headers, check_seconds
from mlchecks.serving._v2_codec import Failure, V2Error
from mlchecks.serving._v2_model import V2Model

__all__ = ["V2GrpcEndpoint"]


class V2GrpcEndpoint(V2Model):
    """One model on a server that speaks the Open Inference Protocol (V2) over gRPC.

    The gRPC twin of `mlchecks.serving.V2Endpoint`, with the same arguments, methods and
    answers: a `ModelServer` (``infer``, ``load``, ``unload``, ``versions`` through the
    protocol's model repository extension) with readiness (`ready`, `wait_ready`) and
    `metadata`. Works with Triton (port 8001), MLServer (8081) and KServe (8081). Pass it
    wherever a `V2Endpoint` goes: `V2Deployment`, `V2ModelsDeployment`, the checks.

    Requests. ``inputs`` is an array-like (one tensor named ``input_name``) or a mapping
    name -> array-like; the numpy dtype picks the datatype (float64 -> FP64, int64 ->
    INT64, str/bytes -> BYTES, ...). Without ``input_name`` the model's metadata decides
    the name, numeric arrays are cast to the declared datatype and one row without the
    batch axis the model declares gets it, as with `V2Endpoint`.
    Tensors travel as ``raw_input_contents`` (``raw_inputs=True``, what Triton's own
    client sends) or as typed ``contents``; FP16 always travels raw. Every request carries
    an ``id`` (a fresh UUID, in ``Response.request_id``).

    Answers. ``Response.outputs`` is the output tensor as a numpy array (the one named
    ``output``, or the only one), else a dict name -> array, decoded from
    ``raw_output_contents`` (Triton answers so) or from typed contents (MLServer answers a
    typed request so). ``Response.version`` is the ``model_version`` the server reported.

    Failures. ``infer`` never raises; a failed call is a `Response` with ``error``
    (``"gRPC NOT_FOUND: Model iris not found"``) and ``error_kind``: ``"client"`` for
    INVALID_ARGUMENT, NOT_FOUND and the other caller errors and for inputs that cannot be
    encoded, ``"timeout"`` for DEADLINE_EXCEEDED (no answer within ``timeout_s``),
    ``"connection"`` for UNAVAILABLE, ``"server"`` for INTERNAL, UNKNOWN, an answer larger
    than ``max_response_bytes`` and the rest. A call answered UNAVAILABLE (the server is
    unreachable, restarting or overloaded) is retried ``n_retries`` times with exponential
    backoff while time remains; ``Response.n_retries`` counts the retries, and the checks
    report them apart from failures. ``timeout_s`` bounds each call as a whole (the
    metadata lookup of a first ``infer`` and the retries included), ``load_timeout_s``
    each ``load`` and ``unload`` with its readiness checks. The management calls raise
    `V2Error` (``kind="unsupported"`` for UNIMPLEMENTED).

    Connection. One gRPC channel (HTTP/2, many calls at once) shared by every thread,
    opened at the first call; `close` closes it (a later call opens a new one). The
    endpoint can be pickled (the copy opens its own channel).

    Args:
        url: ``grpc://host:port`` (plaintext), ``grpcs://host[:port]`` (TLS, port 443 by
            default) or gRPC's own ``host:port``.
        model: the model's name on the server.
        timeout_s: the deadline of each inference, readiness and metadata call, seconds,
            retries included.
        load_timeout_s: the deadline of the repository's load and unload calls, which
            answer once the model is (un)loaded.
        input_name: the tensor name for a single-array ``inputs``; None: the one input the
            model's metadata declares, else ``"input-0"``.
        outputs: names of the output tensors to ask for; None lets the model choose.
        output: the name of the output tensor to return as ``Response.outputs``.
        parameters: request-level parameters sent with every inference request (bool, int,
            float or str values).
        headers: gRPC metadata sent with every call (authentication: ``{"authorization":
            "Bearer ..."}``), or a callable returning it, called before every call (a token
            that expires). Keys are sent in lower case, as gRPC requires.
        ca_file: a PEM bundle of the certificate authorities to trust (TLS; without it,
            the system's); implies TLS for a ``host:port`` URL.
        cert_file, key_file: a client certificate (PEM) and its key, for mutual TLS.
        n_retries: how many times a call answered UNAVAILABLE is retried.
        retry_backoff_s: the first wait before a retry (doubling after each).
        raw_inputs: send tensors as ``raw_input_contents`` (True) or typed contents.
        channel_options: extra gRPC channel arguments, name -> value
            (``{"grpc.ssl_target_name_override": "model.example.com"}``).
        max_response_bytes: the largest answer received, in bytes (64 MiB; gRPC's
            ``grpc.max_receive_message_length``); None: no cap.

    Raises:
        InvalidInput: the URL is malformed, ``model`` is empty, ``timeout_s`` is not
            positive, a TLS file does not exist or comes with a ``grpc://`` URL, or another
            argument has the wrong type.
        MissingDependency: grpcio or grpcio-tools is not installed.

    >>> import numpy as np
    >>> endpoint = V2GrpcEndpoint("grpc://127.0.0.1:9", "iris", timeout_s=2.0)
    >>> endpoint
    V2GrpcEndpoint('grpc://127.0.0.1:9', 'iris')
    >>> response = endpoint.infer(np.zeros((1, 4), dtype=np.float32))
    >>> response.ok, response.error_kind, response.n_retries
    (False, 'connection', 2)
    """

    _transport: GrpcTransport

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
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        n_retries: int = 2,
        retry_backoff_s: float = 0.1,
        raw_inputs: bool = True,
        channel_options: Mapping[str, Any] | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        transport = GrpcTransport(
            url,
            timeout_s=timeout_s,
            headers=headers,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            n_retries=n_retries,
            retry_backoff_s=retry_backoff_s,
            channel_options=channel_options,
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
        if self.parameters:  # fail now, not on every request
            checked = protocol().messages["ModelInferRequest"]().parameters
            for key, value in self.parameters.items():
                set_parameter(checked, str(key), value)
        self.raw_inputs = bool(raw_inputs)
        self._quoted_model = urllib.parse.quote(model, safe="")

    # ------------------------------------------------------------------ transport

    def _manage(
        self, method: str, what: str, *, timeout_s: float | None = None, **fields: Any
    ) -> Any:
        """A management call's answer; `V2Error` naming ``what`` when it failed."""
        request = protocol().messages[method + "Request"](**fields)
        name = "timeout_s" if timeout_s is None else "load_timeout_s"
        try:
            return self._transport.call(method, request, timeout_s=timeout_s, timeout_name=name)[0]
        except Failure as failure:
            raise V2Error(f"{what}: {failure.message}", kind=failure.kind) from None

    # ------------------------------------------------------------------- inference

    def declared_inputs(self) -> dict[str, str | None]:
        """The inputs the model's metadata declares, name -> V2 datatype, in order.

        Asked once (``ModelMetadata``) and remembered; empty when the model declares none
        or the server has no metadata for it. An unreachable server is asked again on the
        next request.
        """
        if self._declared is not None:
            return self._declared
        try:
            answer = self.metadata()
        except V2Error as error:
            if error.kind in ("connection", "timeout"):
                return {}
            answer = {}
        return self._remember_inputs(answer.get("inputs", []))

    def encode(self, inputs: Any, version: str | None = None) -> Any:
        """The ``ModelInferRequest`` message ``infer`` sends for ``inputs`` (without ``id``).

        Raises:
            InvalidInput: an input cannot be encoded.
        """
        named = self.named_inputs(inputs)
        request = protocol().messages["ModelInferRequest"](
            model_name=self.model, model_version=version or ""
        )
        raw = self.raw_inputs or any(needs_raw(value) for value in named.values())
        contents = [add_input(request, name, value, raw=raw) for name, value in named.items()]
        if raw:
            request.raw_input_contents.extend(contents)
        for name in self.outputs or ():
            request.outputs.add(name=name)
        for key, value in (self.parameters or {}).items():
            set_parameter(request.parameters, str(key), value)
        return request

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Send one inference request (``ModelInfer``) and return the decoded answer; never
        raises.

        Args:
            inputs: an array-like (one tensor) or a mapping name -> array-like.
            version: the model version to ask for; None lets the server choose.

        Returns:
            A `Response`: ``outputs``, ``version``, ``latency_s``, ``n_retries`` and
            ``request_id``; on failure ``error`` and ``error_kind``.
        """
        if version is not None and (not isinstance(version, str) or not version):
            return Response(
                error=f"'version' must be a non-empty string or None (got {describe(version)})",
                error_kind="client",
            )
        request_id = uuid.uuid4().hex
        protocol()  # compiled at first use, before the call's deadline starts
        with self._bounded(self.timeout_s, "timeout_s"):
            try:
                request = self.encode(inputs, version)
            except InvalidInput as exc:
                return Response(error=str(exc), error_kind="client")
            request.id = request_id
            start = time.perf_counter()
            try:
                answer, retries = self._transport.call("ModelInfer", request)
            except Failure as failure:
                kind = "server" if failure.kind == "unsupported" else failure.kind
                return Response(
                    latency_s=time.perf_counter() - start,
                    error=failure.message,
                    error_kind=kind,
                    n_retries=failure.n_retries,
                    request_id=request_id,
                )
        latency = time.perf_counter() - start
        try:
            outputs = self.pick_output(decode_outputs(answer))
        except ValueError as exc:
            return Response(
                latency_s=latency,
                error=f"malformed answer from {self.url}: {exc}",
                error_kind="server",
                n_retries=retries,
                request_id=request_id,
            )
        return Response(
            outputs=outputs,
            version=answer.model_version or None,
            latency_s=latency,
            n_retries=retries,
            request_id=request_id,
        )

    # ------------------------------------------------------------------- readiness

    def ready(self, version: str | None = None) -> bool:
        """True when the model (or that ``version`` of it) is ready to serve; never raises.

        >>> V2GrpcEndpoint("grpc://127.0.0.1:9", "iris", n_retries=0).ready()
        False
        """
        try:
            answer = self._manage("ModelReady", "", name=self.model, version=version or "")
        except V2Error:
            return False
        return bool(answer.ready)

    def wait_ready(
        self, timeout_s: float = 60.0, *, version: str | None = None, interval_s: float = 0.1
    ) -> float:
        """Wait until the server and the model (or ``version``) are ready; the seconds waited.

        Polls ``ServerReady`` and ``ModelReady`` until both answer ready, sleeping
        ``interval_s`` (doubling up to 1 s) between tries.

        Raises:
            TimeoutError: not ready within ``timeout_s``; the message says what was last seen.
            InvalidInput: ``timeout_s`` or ``interval_s`` is not positive.
        """
        timeout_s = check_seconds(timeout_s, "timeout_s")
        interval_s = check_seconds(interval_s, "interval_s")
        if version is not None:
            version = check_non_empty_string(version, "version")
        start = time.monotonic()
        while True:
            last = self._readiness(version)
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

    def _readiness(self, version: str | None) -> str:
        """Empty when server and model are ready, else what is not."""
        what = f"model {self.model!r}" + (f" version {version!r}" if version else "")
        try:
            if not self._manage("ServerReady", "server readiness").ready:
                return "server not ready"
            answer = self._manage(
                "ModelReady", f"{what} readiness", name=self.model, version=version or ""
            )
            if not answer.ready:
                return f"{what} not ready"
        except V2Error as error:
            return str(error)
        return ""

    def metadata(self, version: str | None = None) -> dict[str, Any]:
        """The model's metadata (``ModelMetadata``) as a dict, keyed as in the JSON binding.

        ``{"name", "versions", "platform", "inputs": [{"name", "datatype", "shape"}],
        "outputs": [...]}``.

        Raises:
            V2Error: the server answered an error or could not be reached.
        """
        if version is not None:
            version = check_non_empty_string(version, "version")
        answer = self._manage(
            "ModelMetadata",
            f"metadata of model {self.model!r}",
            name=self.model,
            version=version or "",
        )

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [
                {"name": t.name, "datatype": t.datatype, "shape": [int(s) for s in t.shape]}
                for t in items
            ]

        return {
            "name": answer.name,
            "versions": list(answer.versions),
            "platform": answer.platform,
            "inputs": tensors(answer.inputs),
            "outputs": tensors(answer.outputs),
        }

    # ----------------------------------------------------- model repository extension

    def _index(self) -> list[dict[str, Any]]:
        answer = self._manage("RepositoryIndex", f"repository index of {self.url}")
        return [
            {"name": m.name, "version": m.version, "state": m.state, "reason": m.reason}
            for m in answer.models
        ]

    def _load(self, what: str) -> None:
        self._manage(
            "RepositoryModelLoad", what, timeout_s=self.load_timeout_s, model_name=self.model
        )

    def load(self, version: str) -> None:
        """Load the model from the server's repository (``RepositoryModelLoad``) and check
        that ``version`` is ready.

        The repository extension loads models, not versions (see `V2Endpoint.load`): the
        server (re)reads the model and serves the versions its repository holds.

        Raises:
            InvalidInput: ``version`` is not ready after the load (it is not in the
                server's repository).
            V2Error: the server refused the load or could not be reached.
        """
        version = check_non_empty_string(version, "version")
        with self._bounded(self.load_timeout_s, "load_timeout_s"):
            self._load(
                f"loading model {self.model!r} (for version {version!r}) at {self.url} failed"
            )
            if self.ready(version):
                return
            ready = self.versions()
        listing = ", ".join(repr(v) for v in ready) if ready else "none"
        raise InvalidInput(
            f"version {version!r} of model {self.model!r} is not ready after loading the "
            f"model at {self.url} (ready versions: {listing}); is it in the server's "
            "model repository?"
        )

    def load_model(self) -> None:
        """Load the model (``RepositoryModelLoad``) and check it is ready.

        Raises:
            InvalidInput: the model is not ready after the load.
            V2Error: the server refused the load or could not be reached.
        """
        with self._bounded(self.load_timeout_s, "load_timeout_s"):
            self._load(f"loading model {self.model!r} at {self.url} failed")
            ready = self.ready()
        if not ready:
            raise InvalidInput(
                f"model {self.model!r} is not ready after loading it at {self.url}; is it in "
                "the server's model repository?"
            )

    def unload_all(self) -> None:
        """Unload every version of the model (``RepositoryModelUnload``).

        Raises:
            V2Error: the server refused the unload or could not be reached.
        """
        with self._bounded(self.load_timeout_s, "load_timeout_s"):
            self._manage(
                "RepositoryModelUnload",
                f"unloading model {self.model!r} at {self.url} failed",
                timeout_s=self.load_timeout_s,
                model_name=self.model,
            )
