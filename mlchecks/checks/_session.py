"""What the serving checks (pipeline, canary, rollback) do to a model server, written once.

- `Session`: one check's session with a server. `Session.load` loads a version with
  retries within its own ``timeout_s``; `Session.send` sends inputs and always returns a
  `Response` (an exception, a timeout or a wrong return value becomes a failed one);
  `Session.set_live` moves a deployment's live pointer; `Session.restore` unloads what the
  session loaded and puts the live pointer back where it found it.
- `infer`: ``endpoint.infer`` that never raises, for callers with their own thread and
  deadline (the load generator of `mlchecks.checks._traffic`).
- `TimedCaller`: calls a function on a daemon worker thread and gives up after a timeout,
  so one hung request cannot hang a check.
- `probe_inputs` (an attrs converter), `server_versions`, and `ensure_local`: the checks
  talk only to the loopback interface unless the user opts in (``allow_remote=True``).
"""

from __future__ import annotations

import functools
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import attrs

from mlchecks._text import fmt, plural
from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
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
    "probe_inputs",
    "server_versions",
]

#: Host names that reach the loopback interface.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


# ------------------------------------------------------------------------------- inputs


def probe_inputs(value: Any) -> tuple[Any, ...]:
    """attrs converter: a non-empty sequence of request inputs, as a tuple."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
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


# ----------------------------------------------------------------------- timed calls


@attrs.frozen
class Call:
    """The outcome of `TimedCaller.call`: a value, an exception, or a timeout."""

    value: Any = None
    exception: BaseException | None = None
    timed_out: bool = False
    elapsed_s: float = 0.0


class _Worker:
    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[Any]] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._loop, name="mlchecks-call", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fn, out = job
            try:
                out.put((True, fn()))
            except BaseException as exc:  # handed back to the caller
                out.put((False, exc))


class TimedCaller:
    """Call functions on a daemon worker thread, waiting at most ``timeout_s`` each.

    A call that times out leaves its worker behind (Python cannot stop a thread); the next
    call gets a fresh worker. After ``max_stuck`` abandoned workers every call times out at
    once, so a server that hangs every request cannot pile up threads.

    >>> caller = TimedCaller()
    >>> caller.call(lambda: 6 * 7, timeout_s=5.0).value
    42
    >>> caller.close()
    """

    def __init__(self, max_stuck: int = 4) -> None:
        self.max_stuck = max_stuck
        self.stuck = 0
        self._worker: _Worker | None = None

    def call(self, fn: Callable[[], Any], timeout_s: float) -> Call:
        """Run ``fn()`` and return its value or exception, or a timeout after ``timeout_s``."""
        start = time.perf_counter()
        if self.stuck >= self.max_stuck:
            return Call(timed_out=True)
        if self._worker is None:
            self._worker = _Worker()
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker.jobs.put((fn, out))
        try:
            ok, value = out.get(timeout=timeout_s)
        except queue.Empty:
            self.stuck += 1
            self._worker = None  # abandoned; it exits after its call returns, if ever
            return Call(timed_out=True, elapsed_s=time.perf_counter() - start)
        elapsed = time.perf_counter() - start
        if ok:
            return Call(value=value, elapsed_s=elapsed)
        return Call(exception=value, elapsed_s=elapsed)

    def close(self) -> None:
        """Let the current worker exit."""
        if self._worker is not None:
            self._worker.jobs.put(None)
            self._worker = None


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


# ------------------------------------------------------------------------------ session


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
        self, server: Any, *, request_timeout_s: float | None = None, deployment: Any = None
    ) -> None:
        self.server = server
        self.deployment = deployment if deployment is not None else server
        self.request_timeout_s = request_timeout_s
        self.before: tuple[str, ...] | None = None  # listed before the first load
        self.loaded: list[str] = []
        self._listed = False
        self.original_live: tuple[str | None] | None = None
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
        deadline = start + timeout_s
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
        """One request to ``version`` (None: the live one); never raises.

        A request slower than ``request_timeout_s`` is a ``"timeout"`` failure, an exception
        a ``"connection"`` one, a return value that is not a `Response` a ``"server"`` one.
        """
        if self.request_timeout_s is None:
            return infer(self.server, inputs, version)
        timeout_s = self.request_timeout_s
        call = self._caller.call(
            functools.partial(_call_infer, self.server, inputs, version), timeout_s
        )
        if call.timed_out:
            return Response(
                version=version,
                latency_s=timeout_s,
                error=f"no answer within request_timeout_s={fmt(timeout_s)} s",
                error_kind="timeout",
            )
        if call.exception is not None:
            return _raised(call.exception)
        return _answer(call.value, call.elapsed_s)

    def set_live(self, version: str) -> float:
        """Make ``version`` live on the deployment; the seconds ``set_live`` took.

        The first call remembers the live version, which `restore` puts back.

        Raises:
            Exception: whatever ``set_live`` raised.
        """
        if self.original_live is None:
            self.original_live = (self.deployment.live_version(),)
        start = time.perf_counter()
        self.deployment.set_live(version)
        return time.perf_counter() - start

    def restore(self, *, unload: bool = True) -> dict[str, str]:
        """Put the server back as the session found it; what was done, for ``details``.

        The live pointer goes back to the version live before the first `set_live`. With
        ``unload``, versions the session loaded are unloaded unless the server listed them
        before (or cannot list its versions) or they are live. Never raises: a step that
        fails is reported as ``"restore_error"`` (live pointer) or ``"unload_error"``.
        """
        done: dict[str, str] = {}
        if self.original_live is not None and self.original_live[0] is not None:
            original = self.original_live[0]
            try:
                if self.deployment.live_version() != original:
                    self.deployment.set_live(original)
                    done["restored_live_version"] = original
            except Exception as exc:
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
                self.server.unload(version)
                done["unloaded"] = version
            except Exception as exc:
                done["unload_error"] = f"{type(exc).__name__}: {exc}"
        return done
