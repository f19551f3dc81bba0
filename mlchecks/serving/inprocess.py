"""`InProcessServer`: a thread-safe, versioned model server living in the caller's process.

It is the embedded default behind the canary and rollback checks, and a test double for
your own serving system: it implements both `ModelServer` (``infer``, ``load``,
``unload``, ``versions``) and `Deployment` (``live_version``, ``set_live``).

Concurrency model: everything a request needs to be routed (the loaded models, the live
version, the weighted split) lives in one immutable snapshot. Writers build a new snapshot
under a lock and publish it with a single reference assignment; a request takes a reference
to the current snapshot without locking and is served entirely from it. A switch is
therefore atomic: every request is served by a version that was live (or routed to) at some
instant while the request was running, and unloading or switching never breaks a request
already in flight.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response

__all__ = ["InProcessServer"]


def _as_predict(model: Any) -> Callable[[Any], Any] | None:
    """The function that serves ``model``: its ``predict`` method, or the model itself."""
    predict = getattr(model, "predict", None)
    if callable(predict):
        return predict  # type: ignore[no-any-return]
    if callable(model):
        return model  # type: ignore[no-any-return]
    return None


def _listing(versions: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in versions) if versions else "none"


@attrs.frozen
class _Snapshot:
    """Everything routing needs, never mutated after publication."""

    models: Mapping[str, Callable[[Any], Any]]  # version -> the function that serves it
    order: tuple[str, ...]  # loaded versions, in load order
    live: str | None
    split: tuple[tuple[str, float], ...] | None  # explicit weighted routing, normalized
    routes: tuple[str, ...]  # where unversioned requests go ...
    cumulative: tuple[float, ...]  # ... with these cumulative shares (last is 1.0)
    generation: int

    @classmethod
    def build(
        cls,
        models: Mapping[str, Callable[[Any], Any]],
        order: tuple[str, ...],
        live: str | None,
        split: tuple[tuple[str, float], ...] | None,
        generation: int,
    ) -> _Snapshot:
        if split is not None:
            routes = tuple(v for v, _ in split)
            cumulative = tuple(_cumulative([w for _, w in split]))
        elif live is not None:
            routes, cumulative = (live,), (1.0,)
        else:
            routes, cumulative = (), ()
        return cls(dict(models), order, live, split, routes, cumulative, generation)

    def route(self, rng: random.Random) -> str | None:
        if len(self.routes) == 1:
            return self.routes[0]
        if not self.routes:
            return None
        index = bisect.bisect_right(self.cumulative, rng.random())
        return self.routes[min(index, len(self.routes) - 1)]

    def require(self, version: str, action: str) -> None:
        """Raise `InvalidInput` unless ``version`` is loaded; ``action`` says what failed."""
        if version not in self.models:
            raise InvalidInput(
                f"cannot {action} version {version!r}: it is not loaded "
                f"(loaded: {_listing(self.order)})"
            )

    def weight(self, version: str) -> float:
        if self.split is None:
            return 1.0 if version == self.live else 0.0
        return dict(self.split).get(version, 0.0)


def _cumulative(weights: list[float]) -> list[float]:
    total = math.fsum(weights)
    out, running = [], 0.0
    for w in weights:
        running += w
        out.append(running / total)
    out[-1] = 1.0
    return out


class InProcessServer:
    """A thread-safe model server hosting several versions in this process.

    A *model* is any callable ``model(inputs) -> outputs`` or any object with a
    ``predict(inputs)`` method (``predict`` is preferred when both exist). Versions are
    strings. Register models with `add` (a built object) or `load` (through ``loader``),
    choose the live version with `set_live`, optionally split unversioned traffic with
    `set_weights`, and send requests with `infer`.

    `infer` never raises because of the model: exceptions become error responses
    (``error_kind="server"``), unknown versions become ``error_kind="client"`` responses.
    Every `Response` names the version that served it and the model call's latency.

    Args:
        loader: ``loader(version) -> model``, called by `load` (your model registry or
            checkpoint code). None when models are only registered with `add`.
        name: a label for reports and the repr.
        seed: seeds the generator that draws weighted routes, so a split is reproducible
            for a given sequence of requests. None draws fresh entropy.

    Raises:
        InvalidInput: ``loader`` is not callable, or ``seed`` is not an integer.

    >>> import numpy as np
    >>> server = InProcessServer(seed=0)
    >>> server.add("1", lambda x: np.zeros(len(x))).add("2", lambda x: np.ones(len(x)))
    InProcessServer(name='inprocess', live=None, versions=['1', '2'])
    >>> server.set_live("1")
    >>> response = server.infer([[0.5, 1.5]])
    >>> response.version, response.outputs, response.ok
    ('1', array([0.]), True)
    >>> server.infer([[0.5, 1.5]], version="2").outputs
    array([1.])
    """

    __slots__ = ("_counts", "_lock", "_rng", "_state", "_stats_lock", "loader", "name")

    def __init__(
        self,
        loader: Callable[[str], Any] | None = None,
        *,
        name: str = "inprocess",
        seed: int | None = None,
    ) -> None:
        if loader is not None and not callable(loader):
            raise InvalidInput(f"'loader' must be callable or None (got {describe(loader)})")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidInput(f"'seed' must be an integer or None (got {describe(seed)})")
        self.loader = loader
        self.name = str(name)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # serializes writers; readers never take it
        self._stats_lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}  # version -> [requests, errors]
        self._state = _Snapshot.build({}, (), None, None, 0)

    # ----------------------------------------------------------------- reading state

    @property
    def generation(self) -> int:
        """How many times the routing state has changed (every write adds one).

        A request is served by exactly one snapshot; read ``generation`` before and after
        a request to bracket the snapshot that served it.

        >>> server = InProcessServer().add("1", abs)
        >>> server.generation
        1
        """
        return self._state.generation

    def versions(self) -> tuple[str, ...]:
        """The loaded versions, in the order they were loaded.

        >>> InProcessServer().add("b", abs).add("a", abs).versions()
        ('b', 'a')
        """
        return self._state.order

    def live_version(self) -> str | None:
        """The live version (None before the first `set_live`).

        While a weighted split is active, the live version is the one `set_live` last
        named; unversioned traffic follows `weights`.
        """
        return self._state.live

    def weights(self) -> dict[str, float]:
        """Where unversioned requests go now: version -> share of traffic (summing to 1).

        Without a split this is ``{live: 1.0}`` (empty when nothing is live).

        >>> server = InProcessServer().add("1", abs).add("2", abs)
        >>> server.set_weights({"1": 3, "2": 1})
        >>> server.weights()
        {'1': 0.75, '2': 0.25}
        >>> server.set_live("2")
        >>> server.weights()
        {'2': 1.0}
        """
        state = self._state
        if state.split is None:
            return {} if state.live is None else {state.live: 1.0}
        return dict(state.split)

    def route(self) -> str | None:
        """Draw the version an unversioned request would be sent to now (None if nowhere).

        Draws from the same seeded generator `infer` uses.

        >>> server = InProcessServer(seed=1).add("1", abs)
        >>> server.set_live("1")
        >>> server.route()
        '1'
        """
        return self._state.route(self._rng)

    def stats(self) -> dict[str, dict[str, int]]:
        """Requests and errors counted per version that served at least one request.

        Versions stay listed after they are unloaded. Requests for versions that are not
        loaded, and unversioned requests while nothing is live, are not counted.

        >>> server = InProcessServer().add("1", abs)
        >>> server.set_live("1")
        >>> _ = server.infer(-2), server.infer("not a number")
        >>> server.stats()
        {'1': {'requests': 2, 'errors': 1}}
        """
        with self._stats_lock:
            items = [(v, list(c)) for v, c in self._counts.items()]
        return {v: {"requests": c[0], "errors": c[1]} for v, c in items}

    def __repr__(self) -> str:
        state = self._state
        text = (
            f"{type(self).__name__}(name={self.name!r}, live={state.live!r}, "
            f"versions={list(state.order)!r}"
        )
        if state.split is not None:
            text += f", weights={dict(state.split)!r}"
        return text + ")"

    # ---------------------------------------------------------------------- serving

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Serve one request (one example or a batch) and return the response.

        Args:
            inputs: passed unchanged to the model.
            version: the version to use; None routes by `weights` (the live version
                unless a split is set).

        Returns:
            A `Response` with the outputs exactly as the model produced them, the version
            that served the request and ``latency_s``, the model call's wall time
            (``time.perf_counter``). On failure ``outputs`` is None and ``error`` says why:
            ``error_kind="client"`` for a version that is not loaded, ``"server"`` when
            nothing is live or the model raised (``error`` is ``"ExcType: message"``).

        >>> server = InProcessServer().add("1", lambda x: 1 / x)
        >>> server.infer(4.0, version="1").outputs
        0.25
        >>> server.infer(4.0).error
        "no live version: call set_live() first (loaded: '1')"
        >>> server.infer(4.0, version="7").error
        "version '7' is not loaded (loaded: '1')"
        >>> r = server.infer(0, version="1")
        >>> r.error, r.error_kind, r.version
        ('ZeroDivisionError: division by zero', 'server', '1')
        """
        state = self._state  # one consistent snapshot serves the whole request
        if version is None:
            chosen = state.route(self._rng)
            if chosen is None:
                return Response(
                    error=f"no live version: call set_live() first "
                    f"(loaded: {_listing(state.order)})",
                    error_kind="server",
                )
        else:
            chosen = version
        model = state.models.get(chosen) if isinstance(chosen, str) else None
        if model is None:
            return Response(
                error=f"version {chosen!r} is not loaded (loaded: {_listing(state.order)})",
                error_kind="client",
            )
        start = time.perf_counter()
        try:
            outputs = model(inputs)
        except Exception as exc:
            latency = time.perf_counter() - start
            self._count(chosen, error=True)
            return Response(
                version=chosen,
                latency_s=latency,
                error=f"{type(exc).__name__}: {exc}",
                error_kind="server",
            )
        latency = time.perf_counter() - start
        self._count(chosen, error=False)
        return Response(outputs=outputs, version=chosen, latency_s=latency)

    def _count(self, version: str, *, error: bool) -> None:
        with self._stats_lock:
            counts = self._counts.get(version)
            if counts is None:
                counts = self._counts[version] = [0, 0]
            counts[0] += 1
            counts[1] += error

    # ------------------------------------------------------------------ changing state

    def add(self, version: str, model: Any) -> InProcessServer:
        """Register an already-built ``model`` as ``version``; returns the server (chainable).

        Adding a version that is already loaded replaces its model atomically: requests
        in flight finish on the old model, later ones use the new one. Wrap a model in
        any callable to instrument it (count calls, inject latency or faults).

        Args:
            version: a non-empty string.
            model: a callable ``model(inputs)`` or an object with ``predict(inputs)``.

        Raises:
            InvalidInput: ``version`` is not a non-empty string, or ``model`` is neither
                callable nor has a ``predict`` method.
        """
        version = check_non_empty_string(version, "version")
        predict = _as_predict(model)
        if predict is None:
            raise InvalidInput(
                f"'model' must be callable or have a predict() method (got {describe(model)})"
            )
        self._install(version, predict)
        return self

    def load(self, version: str) -> None:
        """Load ``version`` through the loader and make it available to serve.

        The loader runs outside the server's lock, so serving continues while a model
        loads. Loading a version that is already loaded loads it again and replaces the
        model atomically (see `add`). Exceptions raised by the loader propagate.

        Raises:
            InvalidInput: the server has no loader, ``version`` is not a non-empty string,
                or the loader returned something that cannot serve.

        >>> server = InProcessServer(loader=lambda v: (lambda x: f"model {v} saw {x}"))
        >>> server.load("3")
        >>> server.infer("hello", version="3").outputs
        'model 3 saw hello'
        """
        version = check_non_empty_string(version, "version")
        if self.loader is None:
            raise InvalidInput(
                f"cannot load version {version!r}: this server has no loader; pass "
                "InProcessServer(loader=...) or register a built model with add()"
            )
        model = self.loader(version)
        predict = _as_predict(model)
        if predict is None:
            raise InvalidInput(
                f"'loader' returned {describe(model)} for version {version!r}; it must return "
                "a callable or an object with a predict() method"
            )
        self._install(version, predict)

    def _install(self, version: str, predict: Callable[[Any], Any]) -> None:
        with self._lock:
            old = self._state
            models = {**old.models, version: predict}
            order = old.order if version in old.models else (*old.order, version)
            self._state = _Snapshot.build(models, order, old.live, old.split, old.generation + 1)

    def unload(self, version: str) -> None:
        """Stop serving ``version`` and drop the server's reference to its model.

        Requests already routed to it finish normally.

        Raises:
            InvalidInput: ``version`` is not loaded, is the live version, or still
                receives a share of traffic through `set_weights`.

        >>> server = InProcessServer().add("1", abs).add("2", abs)
        >>> server.set_live("2")
        >>> server.unload("1")
        >>> server.unload("2")
        Traceback (most recent call last):
        ...
        mlchecks.exceptions.InvalidInput: cannot unload version '2': it is the live version; ...
        """
        version = check_non_empty_string(version, "version")
        with self._lock:
            old = self._state
            old.require(version, "unload")
            if version == old.live:
                raise InvalidInput(
                    f"cannot unload version {version!r}: it is the live version; "
                    "set_live() another version first"
                )
            if old.weight(version) > 0:
                raise InvalidInput(
                    f"cannot unload version {version!r}: it receives "
                    f"{old.weight(version):.4g} of traffic; set_weights() without it first"
                )
            models = {v: m for v, m in old.models.items() if v != version}
            order = tuple(v for v in old.order if v != version)
            split = old.split
            if split is not None:
                split = tuple((v, w) for v, w in split if v != version)
            self._state = _Snapshot.build(models, order, old.live, split, old.generation + 1)

    def set_live(self, version: str) -> None:
        """Atomically make ``version`` the live one and send it all unversioned traffic.

        This is deploy and rollback: requests in flight finish on the version they were
        routed to, every later request goes to ``version``. Any weighted split is cleared.

        Raises:
            InvalidInput: ``version`` is not loaded (the message lists the loaded ones).
        """
        version = check_non_empty_string(version, "version")
        with self._lock:
            old = self._state
            old.require(version, "set live")
            self._state = _Snapshot.build(old.models, old.order, version, None, old.generation + 1)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Split unversioned traffic between loaded versions (a canary).

        Weights are relative (normalized to sum to 1); versions not named get none. The
        live version does not change; `set_live` ends the split.

        Args:
            weights: version -> weight, each finite and >= 0, with a positive sum.

        Raises:
            InvalidInput: ``weights`` is not a mapping, is empty, names a version that is
                not loaded, has a negative or non-finite weight, or sums to zero.

        >>> server = InProcessServer(seed=0).add("1", abs).add("2", abs)
        >>> server.set_weights({"1": 0.95, "2": 0.05})
        >>> sorted({server.route() for _ in range(200)})
        ['1', '2']
        """
        if not isinstance(weights, Mapping):
            raise InvalidInput(
                f"'weights' must be a mapping of version -> weight (got {describe(weights)})"
            )
        if not weights:
            raise InvalidInput("'weights' must name at least one version (got {})")
        parsed: list[tuple[str, float]] = []
        for version, weight in weights.items():
            if not isinstance(version, str) or not version:
                raise InvalidInput(
                    f"'weights' keys must be non-empty version strings (got {describe(version)})"
                )
            try:
                value = float(weight)
            except (TypeError, ValueError):
                value = math.nan
            if isinstance(weight, bool) or not (math.isfinite(value) and value >= 0):
                raise InvalidInput(
                    f"'weights' must be finite numbers >= 0 (got {weight!r} for version "
                    f"{version!r})"
                )
            parsed.append((version, value))
        total = math.fsum(w for _, w in parsed)
        if total <= 0:
            raise InvalidInput(f"'weights' must have a positive sum (got {total})")
        with self._lock:
            old = self._state
            for version, _ in parsed:
                if version not in old.models:
                    raise InvalidInput(
                        f"'weights' names version {version!r} that is not loaded "
                        f"(loaded: {_listing(old.order)})"
                    )
            split = tuple((v, w / total) for v, w in parsed if w > 0)
            self._state = _Snapshot.build(
                old.models, old.order, old.live, split, old.generation + 1
            )
