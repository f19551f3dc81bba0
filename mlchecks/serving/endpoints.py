"""`EndpointsDeployment`: one endpoint per version, with a live pointer in front of them.

A service that serves one model (MLflow's scoring server, a FastAPI ``/predict``) cannot
answer named versions; a platform runs one service per version and routes traffic to the
live one (a load balancer, an ingress, a gateway's weights). `EndpointsDeployment` is that
router: it maps each version to the `Endpoint` serving it and holds the live pointer, so
it is a `ModelServer` and a `Deployment` for any endpoints (a `RestEndpoint`, a
`V2Endpoint`, your own).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Endpoint, Response
from mlchecks.serving._v2_codec import version_sort_key

__all__ = ["EndpointsDeployment"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _is_ready(endpoint: Any) -> bool:
    ready = getattr(endpoint, "ready", None)
    return bool(ready()) if callable(ready) else True


class EndpointsDeployment:
    """Versions served by separate endpoints, with a live pointer: a `ModelServer` and a
    `Deployment`.

    - `infer` with ``version=None`` goes to the live version's endpoint, a named version
      to its endpoint (each endpoint is asked unversioned); ``Response.version`` is the
      version the answer came from (its key), whatever the endpoint reported.
    - `versions` lists the versions whose endpoint is ready (an endpoint with a
      ``ready()`` method is asked; one without counts as ready).
    - `load` checks that the version's endpoint is ready: the services are yours to start
      (the deployment does not run them); `unload` refuses the live version and otherwise
      does nothing (stop the service the way your platform does).
    - `set_live` checks the version's endpoint is ready and switches the pointer
      atomically: requests already sent finish where they went, every later one goes to
      the new version.

    Args:
        endpoints: version -> the `Endpoint` serving it.
        live: the initially live version, or None.

    Raises:
        InvalidInput: ``endpoints`` is empty or not a mapping of version strings to
            endpoints, or ``live`` is not one of its versions.

    >>> from mlchecks.serving import RestEndpoint
    >>> deployment = EndpointsDeployment(
    ...     {"1": RestEndpoint.mlflow("http://127.0.0.1:9"),
    ...      "2": RestEndpoint.mlflow("http://127.0.0.1:10")},
    ...     live="1",
    ... )
    >>> deployment, deployment.url
    (EndpointsDeployment(['1', '2'], live='1'), 'http://127.0.0.1:9/invocations')
    >>> deployment.versions()  # nothing listens there
    ()
    >>> deployment.infer([[0.0]], version="3").error
    "unknown version '3' (versions: '1', '2')"
    """

    #: What ``endpoints`` must hold (subclasses narrow it), and its name for messages.
    _kind: Any = Endpoint
    _kind_name = "endpoints with infer()"

    def __init__(self, endpoints: Mapping[str, Endpoint], live: str | None = None) -> None:
        if not isinstance(endpoints, Mapping) or not endpoints:
            raise InvalidInput(
                f"'endpoints' must be a non-empty mapping version -> Endpoint "
                f"(got {describe(endpoints)})"
            )
        for version, endpoint in endpoints.items():
            check_non_empty_string(version, "endpoints' version")
            if not isinstance(endpoint, self._kind):
                raise InvalidInput(
                    f"'endpoints' must map versions to {self._kind_name} (got "
                    f"{describe(endpoint)} for version {version!r})"
                )
        self.endpoints: dict[str, Any] = dict(endpoints)
        if live is not None:
            self._known(check_non_empty_string(live, "live"), "live")
        self._live = live
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        listed = sorted(self.endpoints, key=version_sort_key)
        return f"{type(self).__name__}({listed!r}, live={self._live!r})"

    @property
    def url(self) -> str | None:
        """An endpoint's URL, a remote one first (the checks send load only to 127.0.0.1
        unless told otherwise, and read the host from here); None when none has one."""
        given = [getattr(e, "url", None) for e in self.endpoints.values()]
        urls: list[str] = [u for u in given if isinstance(u, str) and "://" in u]
        remote = [u for u in urls if str(urllib.parse.urlsplit(u).hostname) not in _LOOPBACK]
        found = remote or urls
        return found[0] if found else None

    def _listing(self) -> str:
        return ", ".join(repr(v) for v in sorted(self.endpoints, key=version_sort_key))

    def _known(self, version: str, name: str = "version") -> Any:
        if version not in self.endpoints:
            raise InvalidInput(
                f"'{name}' {version!r} is not one of the versions ({self._listing()})"
            )
        return self.endpoints[version]

    def live_version(self) -> str | None:
        """The version unversioned requests go to (None: none yet)."""
        return self._live

    def set_live(self, version: str) -> None:
        """Make ``version`` live: check its endpoint is ready, then switch.

        Raises:
            InvalidInput: ``version`` is unknown or its endpoint is not ready.
        """
        endpoint = self._known(check_non_empty_string(version, "version"))
        with self._lock:
            self._make_ready(version, endpoint)
            self._live = version

    def _make_ready(self, version: str, endpoint: Any) -> None:
        """Before ``version`` goes live: check its endpoint is ready (see `load`)."""
        del endpoint
        self.load(version)

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Send a request to ``version``'s endpoint, or to the live version's."""
        target = self._live if version is None else version
        if target is None:
            return Response(
                error="no version is live: set_live() one first, or name the version",
                error_kind="client",
            )
        endpoint = self.endpoints.get(target)
        if endpoint is None:
            return Response(
                error=f"unknown version {target!r} (versions: {self._listing()})",
                error_kind="client",
            )
        response: Response = endpoint.infer(inputs)
        return attrs.evolve(response, version=target) if response.ok else response

    def load(self, version: str) -> None:
        """Check that ``version``'s endpoint is ready (the service is yours to start).

        Raises:
            InvalidInput: ``version`` is unknown or its endpoint is not ready.
        """
        endpoint = self._known(check_non_empty_string(version, "version"))
        if not _is_ready(endpoint):
            raise InvalidInput(
                f"version {version!r} is not ready: {endpoint!r} did not answer its "
                "readiness check; start its service first"
            )

    def unload(self, version: str) -> None:
        """Nothing to free (the services are yours); refuses the live version.

        Raises:
            InvalidInput: ``version`` is unknown or live.
        """
        endpoint = self._known(check_non_empty_string(version, "version"))
        if version == self._live:
            raise InvalidInput(
                f"cannot unload version {version!r}: it is the live version; "
                "set_live() another version first"
            )
        self._release(endpoint)

    def _release(self, endpoint: Any) -> None:
        """Free what serving a version holds (nothing: its service is yours to stop)."""

    def versions(self) -> tuple[str, ...]:
        """The versions whose endpoint is ready, in version order."""
        ready = [v for v, endpoint in self.endpoints.items() if _is_ready(endpoint)]
        return tuple(sorted(ready, key=version_sort_key))
