"""`MLflowDeployment` and `MLflowEndpoint`: an MLflow model registry as a serving system.

In the MLflow model registry a *registered model alias* (``champion``, ``production``) is a
named pointer to one version of a registered model; serving infrastructure loads
``models:/{name}@{alias}``. That pointer is the live version:

- `MLflowDeployment` is a `Deployment`: `live_version` reads the alias, `set_live` moves it
  (``MlflowClient.set_registered_model_alias``). Deploying and rolling back both move it.
- `MLflowEndpoint` is a `ModelServer` that serves what the alias points to, the way a
  model server that follows the alias does: each request resolves the alias (or reuses
  the resolution for ``alias_ttl_s`` seconds) and predicts with that version's model,
  loaded once through ``mlflow.pyfunc`` and kept in a small cache keyed by version. After
  the alias moves, the next resolution serves the new version, and `Response.version`
  names the version that answered.

mlflow is an optional dependency, imported when one of these classes is constructed.

A tracking or registry URI with a password (``postgresql://ml:secret@db/mlflow``,
``http://user:secret@mlflow:5000``) is used as given, but shown everywhere (the
``tracking_uri`` attribute, reprs, errors) with the password as ``***``.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from mlchecks._text import redact
from mlchecks._validate import check_int, check_non_empty_string, check_number, describe
from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.protocols import Response

__all__ = ["MLflowDeployment", "MLflowEndpoint"]

_INSTALL = 'pip install "mlchecks-infra[mlflow]"'


def _require_mlflow(who: str) -> None:
    """Import mlflow, or raise `MissingDependency` with the install command."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(f"{who} needs mlflow ({exc}); install it with {_INSTALL}") from exc


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


def _check_uri(value: Any, name: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidInput(f"'{name}' must be a non-empty string or None (got {describe(value)})")
    return value


def _shown(uri: str | None) -> str | None:
    return None if uri is None else redact(uri)


def _version_key(version: str) -> tuple[int, int, str]:
    try:
        return (0, int(version), "")
    except ValueError:
        return (1, 0, version)


def _pyfunc_load(uri: str) -> Any:
    """``mlflow.pyfunc.load_model(uri)``, importing mlflow.pyfunc on first use."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri)


class _Registry:
    """The registry calls both classes make, with mlflow's errors turned into ours."""

    def __init__(
        self, model_name: Any, alias: Any, tracking_uri: Any, registry_uri: Any, who: str
    ) -> None:
        self.model_name = check_non_empty_string(model_name, "model_name")
        self.alias = check_non_empty_string(alias, "alias")
        self.tracking_uri = _check_uri(tracking_uri, "tracking_uri")
        self.registry_uri = _check_uri(registry_uri, "registry_uri")
        _require_mlflow(who)
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The ``MlflowClient``, created on first use (that opens the tracking store)."""
        if self._client is None:
            from mlflow import MlflowClient

            with self._lock:
                if self._client is None:
                    self._client = MlflowClient(
                        tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
                    )
        return self._client

    def aliased(self) -> str | None:
        """The version the alias points to, None when the alias is not set."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except Exception as exc:
            if _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                where = self.registry_uri or self.tracking_uri or "the configured registry"
                raise InvalidInput(
                    f"registered model {self.model_name!r} does not exist in {redact(where)}"
                ) from None
            raise
        version = dict(model.aliases or {}).get(self.alias)
        return None if version is None else str(version)

    def versions(self) -> tuple[str, ...]:
        escaped = self.model_name.replace("'", "\\'")
        found = self.client.search_model_versions(filter_string=f"name = '{escaped}'")
        return tuple(sorted({str(v.version) for v in found}, key=_version_key))

    def require(self, version: Any, action: str) -> str:
        """``version`` as a string, checked to exist in the registry."""
        version = check_non_empty_string(version, "version")
        try:
            self.client.get_model_version(self.model_name, version)
        except Exception as exc:
            if _error_code(exc) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            try:
                listing = ", ".join(repr(v) for v in self.versions()) or "none"
            except Exception:
                listing = "unknown"
            raise InvalidInput(
                f"cannot {action} version {version!r}: registered model {self.model_name!r} "
                f"has no such version (versions: {listing})"
            ) from None
        return version  # type: ignore[no-any-return]


class MLflowDeployment:
    """A registered model alias as the live pointer: a `Deployment`.

    Args:
        model_name: the registered model's name.
        alias: the alias that names the live version.
        tracking_uri: the tracking server or store (``sqlite:///mlflow.db``,
            ``http://mlflow:5000``); None uses MLflow's configuration
            (``MLFLOW_TRACKING_URI``).
        registry_uri: the registry, when it differs from the tracking URI.
        on_set_live: ``on_set_live(version)``, called after `set_live` moved the alias:
            what your platform does when the alias moves. A server that loads
            ``models:/{name}@{alias}`` once at start (``mlflow models serve``) keeps
            serving the old version until it is restarted; give the restart here (it
            should return once the server serves again), and `set_live` returns when
            it has. An exception it raises propagates from `set_live`.

    Raises:
        MissingDependency: mlflow is not installed.
        InvalidInput: a name or URI is not a non-empty string, or ``on_set_live`` is not
            callable.

    The registry is only contacted by the methods. With a remote tracking server, MLflow
    retries failed calls for minutes by default; set ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``
    and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` to fail faster.

    >>> import tempfile, pathlib
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "mlflow.db"
    >>> deployment = MLflowDeployment("fraud", tracking_uri=f"sqlite:///{store}")
    >>> deployment  # doctest: +ELLIPSIS
    MLflowDeployment('fraud', alias='champion', tracking_uri='sqlite:///...mlflow.db')
    """

    def __init__(
        self,
        model_name: str,
        alias: str = "champion",
        *,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        on_set_live: Callable[[str], Any] | None = None,
    ) -> None:
        if on_set_live is not None and not callable(on_set_live):
            raise InvalidInput(
                f"'on_set_live' must be callable or None (got {describe(on_set_live)})"
            )
        self._registry = _Registry(
            model_name, alias, tracking_uri, registry_uri, type(self).__name__
        )
        self.on_set_live = on_set_live
        self.model_name = self._registry.model_name
        self.alias = self._registry.alias
        # shown (password hidden); the registry keeps the URIs as given
        self.tracking_uri = _shown(self._registry.tracking_uri)
        self.registry_uri = _shown(self._registry.registry_uri)

    def __repr__(self) -> str:
        text = f"{type(self).__name__}({self.model_name!r}, alias={self.alias!r}"
        if self.tracking_uri is not None:
            text += f", tracking_uri={self.tracking_uri!r}"
        if self.registry_uri is not None:
            text += f", registry_uri={self.registry_uri!r}"
        return text + ")"

    @property
    def client(self) -> Any:
        """The ``mlflow.MlflowClient`` this deployment uses (created on first use)."""
        return self._registry.client

    def live_version(self) -> str | None:
        """The version the alias points to now, or None when the alias is not set.

        Raises:
            InvalidInput: the registered model does not exist.
        """
        return self._registry.aliased()

    def set_live(self, version: str) -> None:
        """Point the alias at ``version`` (deploy or roll back), then call ``on_set_live``.

        Raises:
            InvalidInput: ``version`` is not a version of the registered model (the
                message lists the versions).
        """
        version = self._registry.require(version, "set live")
        self.client.set_registered_model_alias(self.model_name, self.alias, version)
        if self.on_set_live is not None:
            self.on_set_live(version)

    def versions(self) -> tuple[str, ...]:
        """Every version of the registered model, in version order."""
        return self._registry.versions()

    def endpoint(self, **kwargs: Any) -> MLflowEndpoint:
        """An `MLflowEndpoint` serving this deployment's alias (same model and URIs).

        Keyword arguments go to `MLflowEndpoint` (``method``, ``loader``,
        ``alias_ttl_s``, ``cache_size``).
        """
        return MLflowEndpoint(
            self.model_name,
            self.alias,
            tracking_uri=self._registry.tracking_uri,
            registry_uri=self._registry.registry_uri,
            **kwargs,
        )


class MLflowEndpoint:
    """Serve the registered model version an alias points to: a `ModelServer`.

    Each unversioned request resolves the alias (at most every ``alias_ttl_s`` seconds)
    and predicts with that version; a named version is served directly. A version's
    model is loaded on first use with ``loader(uri)`` from the version's artifact URI
    (``MlflowClient.get_model_version_download_uri``) and cached (least recently used
    first out, ``cache_size`` versions). `load` warms the cache, `unload` evicts,
    `versions` lists what is cached.

    `infer` never raises: a failure is a `Response` with ``error_kind`` ``"server"`` (the
    alias is not set, a model failed to load, or the model raised), ``"client"`` (a
    version that does not exist) or ``"connection"`` (the registry could not be asked).
    ``latency_s`` is the wall time of the whole request, including resolving the alias
    and, on a cold cache, loading the model.

    Args:
        model_name: the registered model's name.
        alias: the alias that names the live version.
        tracking_uri: see `MLflowDeployment`.
        registry_uri: see `MLflowDeployment`.
        method: the model's method to call with the inputs (``"predict"``; with
            ``loader=mlflow.sklearn.load_model``, ``"predict_proba"``).
        loader: ``loader(artifact_uri) -> model``; None uses ``mlflow.pyfunc.load_model``
            (imported on first use).
        alias_ttl_s: reuse an alias resolution for this many seconds (0: ask the
            registry on every request). A rollback takes effect within this time.
        cache_size: how many versions' models to keep loaded.

    Raises:
        MissingDependency: mlflow is not installed.
        InvalidInput: an argument has the wrong type or value.

    Nothing is contacted or loaded until the first request:

    >>> endpoint = MLflowEndpoint("fraud", tracking_uri="sqlite:///mlflow.db", alias_ttl_s=1.0)
    >>> endpoint
    MLflowEndpoint('fraud', alias='champion', cached=[])
    """

    def __init__(
        self,
        model_name: str,
        alias: str = "champion",
        *,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        method: str = "predict",
        loader: Callable[[str], Any] | None = None,
        alias_ttl_s: float = 0.0,
        cache_size: int = 4,
    ) -> None:
        self.method = check_non_empty_string(method, "method")
        if loader is not None and not callable(loader):
            raise InvalidInput(f"'loader' must be callable or None (got {describe(loader)})")
        ttl_s = check_number(alias_ttl_s, "alias_ttl_s", low=0.0)
        cache_size = check_int(cache_size, "cache_size", minimum=1)
        self._registry = _Registry(
            model_name, alias, tracking_uri, registry_uri, type(self).__name__
        )
        self.model_name = self._registry.model_name
        self.alias = self._registry.alias
        self.alias_ttl_s = ttl_s
        self.cache_size = cache_size
        self.loader: Callable[[str], Any] = loader if loader is not None else _pyfunc_load
        self._models: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()  # guards the cache and the alias resolution
        self._load_lock = threading.Lock()  # one model load at a time
        self._resolved: tuple[str | None, float] = (None, -math.inf)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.model_name!r}, alias={self.alias!r}, "
            f"cached={list(self._models)!r})"
        )

    def resolve(self) -> str | None:
        """The version the alias points to (cached for ``alias_ttl_s``), None when unset."""
        with self._lock:
            version, at = self._resolved
            if self.alias_ttl_s > 0 and time.monotonic() - at < self.alias_ttl_s:
                return version
        version = self._registry.aliased()
        with self._lock:
            self._resolved = (version, time.monotonic())
        return version

    def _model(self, version: str) -> Any:
        with self._lock:
            model = self._models.get(version)
            if model is not None:
                self._models.move_to_end(version)
                return model
        with self._load_lock:
            with self._lock:
                model = self._models.get(version)
            if model is None:
                self._registry.require(version, "load")
                uri = self._registry.client.get_model_version_download_uri(self.model_name, version)
                model = self.loader(uri)
                if not callable(getattr(model, self.method, None)):
                    raise InvalidInput(
                        f"the model of version {version!r} has no method {self.method!r} "
                        f"(loaded {describe(model)}); pass method= or loader="
                    )
            with self._lock:
                self._models[version] = model
                self._models.move_to_end(version)
                while len(self._models) > self.cache_size:
                    self._models.popitem(last=False)
        return model

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Predict with ``version``, or with the version the alias points to; never raises.

        Returns:
            A `Response` with the model's outputs as it returned them, the version that
            served and the request's wall time; on failure ``error`` and ``error_kind``.
        """
        start = time.perf_counter()
        if version is None:
            try:
                chosen = self.resolve()
            except InvalidInput as exc:
                return Response(
                    latency_s=time.perf_counter() - start,
                    error=redact(str(exc)),
                    error_kind="client",
                )
            except Exception as exc:
                return Response(
                    latency_s=time.perf_counter() - start,
                    error=redact(
                        f"cannot resolve alias {self.alias!r}: {type(exc).__name__}: {exc}"
                    ),
                    error_kind="connection",
                )
            if chosen is None:
                return Response(
                    latency_s=time.perf_counter() - start,
                    error=f"alias {self.alias!r} of registered model {self.model_name!r} "
                    "is not set: nothing is live",
                    error_kind="server",
                )
        elif not isinstance(version, str) or not version:
            return Response(
                error=f"'version' must be a non-empty string or None (got {describe(version)})",
                error_kind="client",
            )
        else:
            chosen = version
        try:
            model = self._model(chosen)
        except InvalidInput as exc:
            return Response(
                version=chosen,
                latency_s=time.perf_counter() - start,
                error=redact(str(exc)),
                error_kind="client",
            )
        except Exception as exc:
            return Response(
                version=chosen,
                latency_s=time.perf_counter() - start,
                error=redact(f"loading version {chosen!r} failed: {type(exc).__name__}: {exc}"),
                error_kind="server",
            )
        try:
            outputs = getattr(model, self.method)(inputs)
        except Exception as exc:
            return Response(
                version=chosen,
                latency_s=time.perf_counter() - start,
                error=redact(f"{type(exc).__name__}: {exc}"),
                error_kind="server",
            )
        return Response(outputs=outputs, version=chosen, latency_s=time.perf_counter() - start)

    def load(self, version: str) -> None:
        """Load ``version``'s model into the cache (no-op when it is cached).

        Raises:
            InvalidInput: ``version`` is not a version of the registered model.
        """
        self._model(check_non_empty_string(version, "version"))

    def unload(self, version: str) -> None:
        """Drop ``version``'s model from the cache (it is loaded again if requested).

        Raises:
            InvalidInput: ``version`` is not cached.
        """
        version = check_non_empty_string(version, "version")
        with self._lock:
            if version not in self._models:
                listing = ", ".join(repr(v) for v in self._models) or "none"
                raise InvalidInput(
                    f"cannot unload version {version!r}: it is not loaded (loaded: {listing})"
                )
            del self._models[version]

    def versions(self) -> tuple[str, ...]:
        """The versions whose models are cached, least recently used first."""
        with self._lock:
            return tuple(self._models)
