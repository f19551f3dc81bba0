"""`V2Endpoint` and `V2Deployment`: the Open Inference Protocol (V2) over HTTP.

The Open Inference Protocol (also called the KServe V2 protocol) is what MLServer, KServe
and NVIDIA Triton speak. This module talks to it with the standard library only
(``http.client`` and ``json``), so it adds no dependency:

- `V2Endpoint` is a `ModelServer` for one model on one server: ``infer`` sends numpy arrays
  as typed tensors and returns numpy arrays, with the version that answered; ``load``,
  ``unload`` and ``versions`` use the protocol's model repository extension.
- `V2Deployment` adds a `Deployment` (a live pointer) in front of it: the version that
  unversioned requests go to, as a router or gateway in front of the server would hold it.
- `V2ModelsDeployment` is the same pointer for servers that serve each version as its own
  model name or URL (KServe InferenceServices, PyTriton).

Wire format (the protocol's JSON/REST binding). A request is
``{"inputs": [{"name", "shape", "datatype", "data"}], "outputs": [{"name"}], "parameters"}``
with ``data`` flattened in row-major order; a response is ``{"model_name", "model_version",
"outputs": [{"name", "shape", "datatype", "data"}]}``; an error is ``{"error": "message"}``
with a 4xx or 5xx status.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving._v2_codec import (
    V2Error,
    datatype_of,
    decode_tensor,
    encode_tensor,
)
from mlchecks.serving._v2_endpoint import V2Endpoint
from mlchecks.serving.endpoints import EndpointsDeployment
from mlchecks.serving.grpc import V2GrpcEndpoint

__all__ = [
    "V2Deployment",
    "V2Endpoint",
    "V2ModelsDeployment",
    "V2Error",
    "datatype_of",
    "decode_tensor",
    "encode_tensor",
]


# -------------------------------------------------------------------------- deployment


class V2Deployment:
    """A live pointer in front of a `V2Endpoint`: a `ModelServer` and a `Deployment`.

    V2 servers have no live pointer of their own: a request names a version, or the
    server picks one (MLServer: the highest loaded version). In production the pointer
    lives in front of the server, in the router, gateway or client configuration that
    decides which version requests go to. `V2Deployment` is that pointer: keep every
    version you may roll back to loaded on the server, and unversioned requests go to
    the live version, named explicitly in the request path.

    - `set_live` checks that the version is ready on the server (loading the model from
      the repository first when it is not and ``load_missing`` is true) and then switches
      the pointer atomically: requests already sent finish on the old version, every
      later one goes to the new version. Deploying and rolling back are both `set_live`.
    - `infer` with ``version=None`` sends the request to the live version (to the server's
      own choice while nothing is live); a named version goes to that version.
    - `load`, `versions` delegate to the endpoint; `unload` refuses the live version.

    Args:
        endpoint: the model on the server.
        live: the initially live version (not checked until the first request), or None.
        load_missing: let `set_live` load a version that is not ready.

    Raises:
        InvalidInput: ``endpoint`` is not a `V2Endpoint` (or `V2GrpcEndpoint`) or ``live`` is
            not a string.

    >>> deployment = V2Deployment(V2Endpoint("http://127.0.0.1:9", "iris"), live="1")
    >>> deployment.live_version()
    '1'
    >>> deployment
    V2Deployment(V2Endpoint('http://127.0.0.1:9', 'iris'), live='1')
    """

    def __init__(
        self,
        endpoint: V2Endpoint | V2GrpcEndpoint,
        live: str | None = None,
        *,
        load_missing: bool = True,
    ) -> None:
        if not isinstance(endpoint, V2Endpoint | V2GrpcEndpoint):
            raise InvalidInput(
                f"'endpoint' must be a V2Endpoint or V2GrpcEndpoint (got {describe(endpoint)})"
            )
        if live is not None:
            live = check_non_empty_string(live, "live")
        self.endpoint = endpoint
        self.load_missing = bool(load_missing)
        self._live = live
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r}, live={self._live!r})"

    @property
    def url(self) -> str:
        """The server's base URL (the endpoint's)."""
        return self.endpoint.url

    def live_version(self) -> str | None:
        """The version unversioned requests go to (None: the server chooses)."""
        return self._live

    def set_live(self, version: str) -> None:
        """Make ``version`` live: check it is ready (load it if needed), then switch.

        Raises:
            InvalidInput: ``version`` is not a non-empty string, or is not ready and cannot
                be loaded (not in the server's repository, or ``load_missing`` is false).
            V2Error: loading failed or the server could not be reached.
        """
        version = check_non_empty_string(version, "version")
        with self._lock:
            if not self.endpoint.ready(version):
                if not self.load_missing:
                    raise InvalidInput(
                        f"cannot set live version {version!r}: it is not ready on "
                        f"{self.endpoint.url} (model {self.endpoint.model!r}) and "
                        "load_missing is false"
                    )
                self.endpoint.load(version)
            self._live = version

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Send a request to ``version``, or to the live version when it is None."""
        return self.endpoint.infer(inputs, self._live if version is None else version)

    def load(self, version: str) -> None:
        """Load ``version`` on the server (see `V2Endpoint.load`)."""
        self.endpoint.load(version)

    def unload(self, version: str) -> None:
        """Unload ``version`` on the server (see `V2Endpoint.unload`); never the live one.

        Raises:
            InvalidInput: ``version`` is the live version or is not loaded.
            V2Error: see `V2Endpoint.unload`.
        """
        version = check_non_empty_string(version, "version")
        if version == self._live:
            raise InvalidInput(
                f"cannot unload version {version!r}: it is the live version; "
                "set_live() another version first"
            )
        self.endpoint.unload(version)

    def versions(self) -> tuple[str, ...]:
        """The loaded and ready versions (see `V2Endpoint.versions`)."""
        return self.endpoint.versions()


class V2ModelsDeployment(EndpointsDeployment):
    """Versions served as separate models, each under its own name or URL, with a live pointer.

    KServe serves each model version as its own InferenceService (one model name, or one
    URL, per version) and answers versioned paths with HTTP 501; PyTriton serves one
    version per model name. `V2ModelsDeployment` maps each version to the `V2Endpoint` that
    serves it and holds the live pointer in front of them: a `ModelServer` and a
    `Deployment`, like `V2Deployment`, without the repository index.

    - `infer` with ``version=None`` goes to the live version's endpoint (a version must be
      live first), a named version to its endpoint; ``Response.version`` is the version the
      answer came from (its endpoint's key), whatever the server put in ``model_version``.
    - `versions` asks each endpoint's readiness (``GET /v2/models/{name}/ready``).
    - `load` loads that version's model through the repository extension (when the server
      has one) and waits for it to be ready; `unload` unloads it, never the live version.
    - `set_live` checks the version is ready (loading it first when ``load_missing``) and
      switches the pointer atomically.

    Args:
        endpoints: version -> the `V2Endpoint` serving it.
        live: the initially live version, or None.
        load_missing: let `set_live` load a version that is not ready.

    Raises:
        InvalidInput: ``endpoints`` is empty or not a mapping of version strings to
            `V2Endpoint` objects, or ``live`` is not one of its versions.

    >>> deployment = V2ModelsDeployment(
    ...     {"1": V2Endpoint("http://127.0.0.1:9", "clf-v1"),
    ...      "2": V2Endpoint("http://127.0.0.1:9", "clf-v2")},
    ...     live="1",
    ... )
    >>> deployment.live_version(), deployment.versions()
    ('1', ())
    """

    _kind = (V2Endpoint, V2GrpcEndpoint)
    _kind_name = "V2Endpoint or V2GrpcEndpoint objects"

    def __init__(
        self,
        endpoints: Mapping[str, V2Endpoint | V2GrpcEndpoint],
        live: str | None = None,
        *,
        load_missing: bool = True,
    ) -> None:
        super().__init__(endpoints, live)
        self.load_missing = bool(load_missing)

    def _make_ready(self, version: str, endpoint: Any) -> None:
        """Load ``version`` when it is not ready (unless ``load_missing`` is false)."""
        if endpoint.ready():
            return
        if not self.load_missing:
            raise InvalidInput(
                f"cannot set live version {version!r}: model {endpoint.model!r} at "
                f"{endpoint.url} is not ready and load_missing is false"
            )
        self.load(version)

    def load(self, version: str) -> None:
        """Load ``version``'s model (repository extension) and check it is ready.

        KServe's ``ModelServer`` answers the load of a model it serves at once, without
        loading anything, and refuses any other model name (HTTP 503 "not ready").

        Raises:
            InvalidInput: ``version`` is unknown, or its model is not ready after loading.
            V2Error: the server refused the load (no repository extension, or a server
                that loads only the models it started with: start the model the way the
                platform does, e.g. apply its InferenceService) or could not be reached.
        """
        endpoint = self._known(check_non_empty_string(version, "version"))
        try:
            endpoint.load_model()
        except V2Error as exc:
            if exc.status is None:  # no answer: the message says why
                raise
            raise V2Error(
                f"{str(exc).rstrip('.')}; a server that serves each version as its own "
                "model name may load "
                "only the models it was started with (KServe's ModelServer: models it was "
                f"not started with are never ready): start {endpoint.model!r} the way the "
                "platform does (an InferenceService per version) and pass load=False to "
                "the checks",
                kind=exc.kind,
                status=exc.status,
            ) from exc

    def unload(self, version: str) -> None:
        """Unload ``version``'s model; never the live version.

        On KServe's ``ModelServer`` this removes the model until the server restarts (its
        load cannot bring it back).

        Raises:
            InvalidInput: ``version`` is unknown or live.
            V2Error: the server refused the unload or could not be reached.
        """
        super().unload(version)

    def _release(self, endpoint: Any) -> None:
        endpoint.unload_all()
