"""The demo system's serving stack: model versions as served, and the service in front.

- `ServedModel` is one model version as the serving binary runs it: it takes raw row
  dicts, computes features with the *serving* path (`FeaturePipeline.transform_row`) and
  applies a frozen copy of the trained parameters. Register it in an
  `mlchecks.serving.InProcessServer` with `register`.
- `DemoService` is the production front door over that server: an `Endpoint` with a
  response cache for live traffic, and a `Deployment` whose ``set_live`` deploys and
  rolls back (both atomic switches on healthy code).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._validate import check_int, describe
from mlchecks.demo.features import FeaturePipeline
from mlchecks.demo.model import PARAM_NAMES, MLPTrainer, predict_proba
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response

if TYPE_CHECKING:
    from mlchecks.serving import InProcessServer

__all__ = ["DemoService", "ServedModel", "register"]


class ServedModel:
    """One model version as served: raw row dict(s) in, class probabilities out.

    Calling it with one row dict returns shape (n_classes,); with a list of row dicts,
    shape (n, n_classes). Features come from the pipeline's serving path
    (`FeaturePipeline.transform_row`), so a difference from the offline predictions
    (batch path) is training/serving skew.

    Args:
        params: the model parameters, keyed by `PARAM_NAMES` (copied).
        pipeline: the fitted feature pipeline.
        version: the version label.

    Raises:
        InvalidInput: a parameter is missing or the pipeline is not fitted.

    >>> from mlchecks.demo.data import make_table, rows
    >>> table = make_table(300, seed=0)
    >>> pipeline = FeaturePipeline().fit(table)
    >>> model = ServedModel.from_trainer(MLPTrainer(pipeline.n_features, 3), pipeline, version="1")
    >>> model(rows(table)[0]).shape, model(rows(table)[:4]).shape
    ((3,), (4, 3))
    """

    def __init__(
        self, params: Mapping[str, np.ndarray], pipeline: FeaturePipeline, *, version: str
    ) -> None:
        missing = [name for name in PARAM_NAMES if name not in params]
        if missing:
            raise InvalidInput(f"'params' lacks {missing} (has {sorted(params)})")
        if not pipeline.is_fitted:
            raise InvalidInput("'pipeline' must be fitted")
        self._params = {name: np.array(params[name], dtype=np.float64) for name in PARAM_NAMES}
        self.pipeline = pipeline
        self.version = str(version)

    @classmethod
    def from_trainer(
        cls, trainer: MLPTrainer, pipeline: FeaturePipeline, *, version: str
    ) -> ServedModel:
        """Serve a snapshot of ``trainer``'s current parameters."""
        return cls(trainer.params(), pipeline, version=version)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r})"

    def __call__(self, inputs: Any) -> np.ndarray:
        """Class probabilities for one row dict, or for a list of row dicts.

        Raises:
            InvalidInput: ``inputs`` is neither a row dict nor a non-empty list of them,
                or a row lacks a column or has an invalid value.
        """
        if isinstance(inputs, Mapping):
            return np.asarray(self._predict([inputs])[0])
        if (
            isinstance(inputs, Sequence)
            and not isinstance(inputs, str)
            and inputs
            and all(isinstance(row, Mapping) for row in inputs)
        ):
            return self._predict(inputs)
        raise InvalidInput(
            f"'inputs' must be a row dict or a non-empty list of row dicts (got {describe(inputs)})"
        )

    def _predict(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        X = np.stack([self.pipeline.transform_row(self._parse(row)) for row in rows])
        return predict_proba(self._params, X)

    def _parse(self, row: Mapping[str, Any]) -> Mapping[str, Any]:
        """Turn a request row into the pipeline's input row (the request schema)."""
        return row


def register(
    server: InProcessServer, version: str, trainer: MLPTrainer, pipeline: FeaturePipeline
) -> ServedModel:
    """Add ``trainer``'s current parameters to ``server`` as ``version``; returns the model.

    >>> from mlchecks.demo.data import make_table, rows
    >>> from mlchecks.serving import InProcessServer
    >>> table = make_table(300, seed=0)
    >>> pipeline = FeaturePipeline().fit(table)
    >>> server = InProcessServer()
    >>> _ = register(server, "1", MLPTrainer(pipeline.n_features, 3), pipeline)
    >>> server.infer(rows(table)[0], version="1").outputs.shape
    (3,)
    """
    model = ServedModel.from_trainer(trainer, pipeline, version=version)
    server.add(version, model)
    return model


def _content_key(inputs: Any) -> Hashable | None:
    """A hashable key for a request's content, or None when it cannot be cached."""
    if isinstance(inputs, Mapping):
        key: Hashable = ("row", tuple(sorted((str(k), v) for k, v in inputs.items())))
    elif (
        isinstance(inputs, Sequence)
        and not isinstance(inputs, str)
        and all(isinstance(row, Mapping) for row in inputs)
    ):
        key = ("rows", tuple(tuple(sorted((str(k), v) for k, v in row.items())) for row in inputs))
    else:
        return None
    try:
        hash(key)
    except TypeError:
        return None
    return key


class DemoService:
    """The demo's production front door over an `InProcessServer`: Endpoint and Deployment.

    ``infer(inputs)`` (live traffic) goes through a response cache keyed by the version
    that served and the request content; requests naming a version, and traffic while the
    server splits it between versions (`InProcessServer.set_weights`), bypass the cache.
    ``set_live(version)`` deploys a new version or rolls back to one that was live before;
    on healthy code both are the server's atomic switch.

    Args:
        server: the model server (it must have the versions loaded).
        cache_size: the most responses the cache keeps (oldest evicted first); 0 disables it.

    Raises:
        InvalidInput: ``cache_size`` is not an integer >= 0.

    >>> from mlchecks.serving import InProcessServer
    >>> server = InProcessServer().add("1", lambda row: 1.0).add("2", lambda row: 2.0)
    >>> service = DemoService(server)
    >>> service.set_live("1")
    >>> service.set_live("2")  # deploy
    >>> service.set_live("1")  # roll back
    >>> service.infer({"x": 1}).outputs, service.history()
    (1.0, ('1', '2', '1'))
    """

    def __init__(self, server: InProcessServer, *, cache_size: int = 10_000) -> None:
        self.cache_size = check_int(cache_size, "cache_size")
        self._server = server
        self._cache: OrderedDict[Hashable, Response] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._history: list[str] = []
        live = server.live_version()
        if live is not None:
            self._history.append(live)
        self._hits = 0
        self._misses = 0

    @property
    def server(self) -> InProcessServer:
        """The model server behind the service."""
        return self._server

    def __repr__(self) -> str:
        return f"{type(self).__name__}(live={self.live_version()!r}, server={self._server!r})"

    # ------------------------------------------------------------------ Endpoint

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Serve one request; live traffic is answered from the cache when possible.

        Returns:
            The server's `Response`, or for a cache hit a copy of the cached one (same
            outputs and version, ``latency_s`` the lookup time).
        """
        if version is not None or self.cache_size == 0 or len(self._server.weights()) != 1:
            return self._server.infer(inputs, version)
        content = _content_key(inputs)
        if content is None:
            return self._server.infer(inputs)
        start = time.perf_counter()
        key = self._cache_key(self._server.live_version(), content)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._hits += 1
            else:
                self._misses += 1
        if cached is not None:
            outputs = cached.outputs
            return Response(
                outputs=outputs.copy() if isinstance(outputs, np.ndarray) else outputs,
                version=cached.version,
                latency_s=time.perf_counter() - start,
            )
        response = self._server.infer(inputs)
        if response.ok:
            # Stored under the version that actually answered, never the one we expected.
            store = self._cache_key(response.version, content)
            with self._cache_lock:
                self._cache[store] = response
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return response

    def _cache_key(self, version: str | None, content: Hashable) -> Hashable:
        return (version, content)

    def cache_info(self) -> dict[str, int]:
        """Cache ``hits``, ``misses`` and current ``size``."""
        with self._cache_lock:
            return {"hits": self._hits, "misses": self._misses, "size": len(self._cache)}

    def clear_cache(self) -> None:
        """Drop every cached response."""
        with self._cache_lock:
            self._cache.clear()

    # ---------------------------------------------------------------- Deployment

    def live_version(self) -> str | None:
        """The version serving live traffic now."""
        return self._server.live_version()

    def set_live(self, version: str) -> None:
        """Deploy ``version``, or roll back to it when it was live before.

        Raises:
            InvalidInput: ``version`` is not loaded in the server.
        """
        if version not in self._server.versions():
            raise InvalidInput(
                f"cannot set live version {version!r}: it is not loaded "
                f"(loaded: {list(self._server.versions())})"
            )
        with self._switch_lock:
            current = self._server.live_version()
            if version == current:
                return
            if version in self._history:
                self._rollback(version)
            else:
                self._deploy(version)
            self._history.append(version)

    def history(self) -> tuple[str, ...]:
        """The versions that have been live, oldest first (repeats kept)."""
        with self._switch_lock:
            return tuple(self._history)

    def _deploy(self, version: str) -> None:
        self._server.set_live(version)

    def _rollback(self, version: str) -> None:
        self._server.set_live(version)
