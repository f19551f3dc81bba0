"""What the serving checks (pipeline, canary, rollback) do to a model server, written once.

- `Session`: one check's session with a server. `Session.load` loads a version with
  retries within its own ``timeout_s``; `Session.send` sends inputs and always returns a
  `Response` (an exception, a timeout or a wrong return value becomes a failed one);
  `Session.set_live` moves a deployment's live pointer; `Session.restore` unloads what the
  session loaded and puts the live pointer back where it found it.
- `infer`: ``endpoint.infer`` that never raises, for callers with their own thread and
  deadline (the load generator of `mlchecks.checks._traffic`).
- `TimedCaller` (from `mlchecks._deadline`): calls a function on a worker thread and gives
  up after a timeout, so one hung request cannot hang a check.
- `probe_inputs` (an attrs converter), `server_versions`, and `ensure_local`: the checks
  talk only to the loopback interface unless the user opts in (``allow_remote=True``).
"""

from __future__ import annotations

import functools
import math
import time
import urllib.parse
from collections.abc import Callable
from types import TracebackType
from typing import Any

import attrs

from mlchecks._deadline import Call, Deadline, TimedCaller
from mlchecks._text import fmt, plural
from mlchecks._validate import describe, is_collection
from mlchecks.exceptions import CheckTimeout, InvalidInput
from mlchecks.protocols import Response
from mlchecks.result import Status

__all__ = [
    "LOCAL_HOSTS",
    "Call",
    "Loaded",
    "Session",
    "TimedCaller",
    "ensure_local",
    "infer",
    "infer_within",
    "probe_inputs",
    "server_versions",
    "timed_out",
]

#: Host names that reach the loopback interface.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


# ------------------------------------------------------------------------------- inputs


def probe_inputs(value: Any) -> tuple[Any, ...]:
    """attrs converter: a non-empty sequence of request inputs, as a tuple."""
    if not is_collection(value):
        raise InvalidInput(
            f"'probe_inputs' must be a sequence of request inputs (got {describe(value)})"
        )
    probes = tuple(value)
    if not probes:
        raise InvalidInput("'probe_inputs' must not be empty")
    return probes


def server_versions(server: Any) -> tuple[str, ...] | None:
    """The versions a server lists (``versions()``), or None when it cannot say."""
    versions = getattr(server, "versions", None)
    if not callable(versions):
        return None
    try:
        return tuple(versions())
    except Exception:
        return None


# ------------------------------------------------------------------------------- locality


def _host_of(target: Any) -> str | None:
    """The host a serving client talks to, if it says (``url``, ``base_url`` or ``host``)."""
    for name in ("url", "base_url", "uri"):
        value = getattr(target, name, None)
        if isinstance(value, str) and "://" in value:
            return urllib.parse.urlsplit(value).hostname or ""
    host = getattr(target, "host", None)
    return host if isinstance(host, str) else None


def ensure_local(target: Any, name: str, *, allow_remote: bool) -> None:
    """Refuse to send load to anything but 127.0.0.1 unless ``allow_remote``.

    A target that names no host (an in-process server) is local.

    Raises:
        InvalidInput: ``target`` points at a remote host and ``allow_remote`` is False.

    >>> class Client:
    ...     url = "http://10.0.0.7:8080"
    >>> ensure_local(Client(), "endpoint", allow_remote=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'endpoint' points at host '10.0.0.7'; ...
    """
    if allow_remote:
        return
    host = _host_of(target)
    if host is None or host.lower() in LOCAL_HOSTS:
        return
    raise InvalidInput(
        f"'{name}' points at host {host!r}; the load generators send traffic only to "
        "127.0.0.1 unless allow_remote=True"
    )


# ------------------------------------------------------------------------------ requests


def _call_infer(endpoint: Any, inputs: Any, version: str | None) -> Any:
    return endpoint.infer(inputs) if version is None else endpoint.infer(inputs, version=version)


def _raised(exc: BaseException) -> Response:
    return Response(error=f"infer() raised {type(exc).__name__}: {exc}", error_kind="connection")


def _answer(value: Any, elapsed_s: float) -> Response:
    if not isinstance(value, Response):
        return Response(
            error=f"infer() returned {describe(value)}, not a Response", error_kind="server"
        )
    if value.ok and value.latency_s <= 0.0:
        return attrs.evolve(value, latency_s=elapsed_s)
    return value


def infer(endpoint: Any, inputs: Any, version: str | None = None) -> Response:
    """``endpoint.infer(inputs, version=...)`` that never raises.

    An exception becomes a failed `Response` (``error_kind="connection"``), a return value
    that is not a `Response` a ``"server"`` failure; a successful response without a
    latency gets the measured one.

    >>> class Broken:
    ...     def infer(self, inputs, version=None):
    ...         raise ConnectionRefusedError("port 9")
    >>> infer(Broken(), [1.0]).error
    'infer() raised ConnectionRefusedError: port 9'
    """
    start = time.perf_counter()
    try:
        value = _call_infer(endpoint, inputs, version)
    except Exception as exc:
        return _raised(exc)
    return _answer(value, time.perf_counter() - start)


def infer_within(
    caller: TimedCaller, endpoint: Any, inputs: Any, version: str | None, timeout_s: float
) -> Response | None:
    """`infer` on ``caller``'s worker thread: its `Response`, or None after ``timeout_s``."""
    call = caller.call(functools.partial(_call_infer, endpoint, inputs, version), timeout_s)
    if call.timed_out:
        return None
    if call.exception is not None:
        return _raised(call.exception)
    return _answer(call.value, call.elapsed_s)


def timed_out(timeout_s: float, version: str | None = None) -> Response:
    """The failed `Response` of a request abandoned after ``timeout_s``."""
    return Response(
        version=version,
        latency_s=timeout_s,
        error=f"no answer within request_timeout_s={fmt(timeout_s)} s",
        error_kind="timeout",
    )


# ------------------------------------------------------------------------------ session


def _split(deployment: Any) -> dict[str, float] | None:
    """The deployment's weighted split over two or more versions, if it has one."""
    weights = getattr(deployment, "weights", None)
    if not callable(weights) or not callable(getattr(deployment, "set_weights", None)):
        return None
    try:
        split = dict(weights())
    except Exception:
        return None
    return split if sum(1 for w in split.values() if w > 0) > 1 else None


@attrs.frozen
class Loaded:
    """How `Session.load` went: ``ok``, the wall time, the failed attempts, and why not."""

    version: str
    ok: bool
    elapsed_s: float
    attempts: tuple[str, ...] = ()
    reason: str = ""

    @property
    def status(self) -> Status:
        """PASS when the version loaded, else FAIL."""
        return Status.PASS if self.ok else Status.FAIL

    @property
    def message(self) -> str:
        """One sentence for the load finding."""
        if not self.ok:
            return self.reason
        failed = len(self.attempts)
        retried = f" after {plural(failed, 'failed attempt')}" if failed else ""
        return f"version {self.version!r} loaded in {fmt(self.elapsed_s, 3)} s{retried}"


class Session:
    """One check's session with a model server: load, send, restore.

    Args:
        server: the `ModelServer` or `Endpoint` requests go to.
        request_timeout_s: the longest one request may take (None: no timeout).
        deployment: the `Deployment` whose live pointer `set_live` moves (default: the
            server, when it has ``set_live``).
        deadline: the check's `Deadline`: every request and load is cut to the time left,
            and one cut short by it (or started after it) raises `CheckTimeout`.

    Use it as a context manager, or call `close` (after `restore`) yourself.

    >>> from mlchecks.serving import InProcessServer
    >>> server = InProcessServer(loader=lambda version: abs)
    >>> with Session(server, request_timeout_s=5.0) as session:
    ...     session.load("1", timeout_s=5.0).ok, session.send(-2, version="1").outputs
    (True, 2)
    >>> session.restore(), server.versions()
    ({'unloaded': '1'}, ())
    """

    def __init__(
        self,
        server: Any,
        *,
        request_timeout_s: float | None = None,
        deployment: Any = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.server = server
        self.deadline = deadline if deadline is not None else Deadline(None)
        self.deployment = deployment if deployment is not None else server
        self.request_timeout_s = request_timeout_s
        self.before: tuple[str, ...] | None = None  # listed before the first load
        self.loaded: list[str] = []
        self._listed = False
        self.original_live: tuple[str | None] | None = None
        self.original_weights: dict[str, float] | None = None
        self._caller = TimedCaller()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Let the worker thread exit."""
        self._caller.close()

    def load(self, version: str, *, timeout_s: float, retries: int = 0) -> Loaded:
        """``server.load(version)``, retried when it raises, all within ``timeout_s``.

        Waits 0.05 s, 0.1 s, 0.2 s... between attempts. A load that returns but leaves the
        version unlisted (when the server lists its versions) has failed.
        """
        start = time.perf_counter()
        if not callable(getattr(self.server, "load", None)):
            why = f"version {version!r} could not be loaded: the server has no load() method"
            return Loaded(version, False, 0.0, reason=why)
        if not self._listed:
            self.before, self._listed = server_versions(self.server), True
        limit = self.deadline.bound(timeout_s)
        assert limit is not None
        cut = limit < timeout_s  # the check's deadline comes first
        self.deadline.check(f"loading version {version!r}")
        deadline = start + limit
        errors: list[str] = []
        ok = False
        for attempt in range(retries + 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                errors.append("no time left for another attempt")
                break
            call = self._caller.call(functools.partial(self.server.load, version), remaining)
            if call.timed_out:
                errors.append(f"attempt {attempt + 1} did not finish in time")
                break
            if call.exception is None:
                ok = True
                break
            exc = call.exception
            errors.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
            if attempt < retries:
                time.sleep(min(0.05 * 2**attempt, max(0.0, deadline - time.perf_counter())))
        elapsed = time.perf_counter() - start
        if not ok and cut and self.deadline.expired:
            raise CheckTimeout(self.deadline.message(f"loading version {version!r}"))
        if not ok:
            why = (
                f"version {version!r} could not be loaded within load_timeout_s="
                f"{fmt(timeout_s)} s and {plural(retries, 'retry', 'retries')}: "
                f"{'; '.join(errors)}"
            )
            return Loaded(version, False, elapsed, tuple(errors), why)
        if version not in self.loaded:
            self.loaded.append(version)
        listed = server_versions(self.server)
        if listed is not None and version not in listed:
            why = (
                f"load({version!r}) returned but the server does not list the version "
                f"(loaded: {list(listed)})"
            )
            return Loaded(version, False, elapsed, tuple(errors), why)
        return Loaded(version, True, elapsed, tuple(errors))

    def send(self, inputs: Any, version: str | None = None) -> Response:
        """One request to ``version`` (None: the live one).

        A request slower than ``request_timeout_s`` is a ``"timeout"`` failure, an exception
        a ``"connection"`` one, a return value that is not a `Response` a ``"server"`` one.

        Raises:
            CheckTimeout: the check's deadline passed before or during the request.
        """
        doing = "waiting for an answer" + ("" if version is None else f" from {version!r}")
        self.deadline.check(doing)
        timeout_s = self.deadline.bound(self.request_timeout_s)
        if timeout_s is None:
            return infer(self.server, inputs, version)
        response = infer_within(self._caller, self.server, inputs, version, timeout_s)
        if response is not None:
            return response
        if self.request_timeout_s is None or timeout_s < self.request_timeout_s:
            raise CheckTimeout(self.deadline.message(doing))
        return timed_out(timeout_s, version)

    def _bounded(self, fn: Callable[[], Any], doing: str, timeout_s: float | None) -> Any:
        """``fn()`` on the worker within ``timeout_s``; its exception, or CheckTimeout."""
        if timeout_s is None:
            return fn()
        return self._caller.run(fn, timeout_s, lambda: self.deadline.message(doing))

    def set_live(self, version: str) -> float:
        """Make ``version`` live on the deployment; the seconds ``set_live`` took.

        The first call remembers the live version, and the weighted split when the
        deployment has one (``weights()``), which `restore` puts back.

        Raises:
            CheckTimeout: the check's deadline passed.
            Exception: whatever ``set_live`` raised.
        """
        doing = f"set_live({version!r})"
        self.deadline.check(doing)
        if self.original_live is None:
            live = self._bounded(self.deployment.live_version, doing, self.deadline.bound(None))
            self.original_live = (live,)
            self.original_weights = _split(self.deployment)
        start = time.perf_counter()
        self._bounded(
            functools.partial(self.deployment.set_live, version), doing, self.deadline.bound(None)
        )
        return time.perf_counter() - start

    def restore(self, *, unload: bool = True) -> dict[str, str]:
        """Put the server back as the session found it; what was done, for ``details``.

        The live pointer goes back to the version live before the first `set_live` (and a
        weighted split active then is set again). With ``unload``, versions the session
        loaded are unloaded unless the server listed them before (or cannot list its
        versions) or they are live. Never raises: a step that fails is reported as
        ``"restore_error"`` (live pointer) or ``"unload_error"``. Each step may take
        ``request_timeout_s``, and at least 1 s even when the check's deadline has passed.
        """
        done: dict[str, str] = {}
        left = max(1.0, self.deadline.remaining())
        if self.request_timeout_s is not None:
            left = min(left, self.request_timeout_s)
        grace = None if math.isinf(left) else left
        if self.original_live is not None and self.original_live[0] is not None:
            original = self.original_live[0]
            split = self.original_weights
            doing = f"restoring the live version {original!r}"
            try:
                live = self._bounded(self.deployment.live_version, doing, grace)
                if live != original or (split is not None and _split(self.deployment) != split):
                    self._bounded(
                        functools.partial(self.deployment.set_live, original), doing, grace
                    )
                    if split is not None:
                        setter = functools.partial(self.deployment.set_weights, split)
                        self._bounded(setter, doing, grace)
                    done["restored_live_version"] = original
            except (Exception, CheckTimeout) as exc:
                done["restore_error"] = (
                    f"could not restore the live version {original!r}: {type(exc).__name__}: {exc}"
                )
        if not unload or self.before is None:
            return done
        live = getattr(self.server, "live_version", None)
        for version in self.loaded:
            if version in self.before:
                continue
            try:
                if callable(live) and live() == version:
                    continue
                unload_it = functools.partial(self.server.unload, version)
                self._bounded(unload_it, f"unloading version {version!r}", grace)
                done["unloaded"] = version
            except (Exception, CheckTimeout) as exc:
                done["unload_error"] = f"{type(exc).__name__}: {exc}"
        return done
