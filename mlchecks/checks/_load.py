"""Private helpers of the serving checks (pipeline, canary, rollback).

- `probe_inputs` (an attrs converter) and `server_versions`.
- `ensure_local`: the checks' load generators talk only to the loopback interface unless
  the user opts in (``allow_remote=True``).
- `TimedCaller`: calls a function on a daemon worker thread and gives up after a timeout,
  so one hung request cannot hang a check.
- `LoadGenerator`: a background thread sending requests to an endpoint at a bounded rate,
  bounded in requests and time, that stops by itself and records every response.
- Output comparison (bitwise or within tolerance) and latency quantiles.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Endpoint, Response
from mlchecks._validate import describe

__all__ = [
    "LOCAL_HOSTS",
    "Call",
    "LoadGenerator",
    "Record",
    "TimedCaller",
    "as_output_array",
    "ensure_local",
    "error_class",
    "latency_quantiles",
    "outputs_equal",
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


def error_class(response: Response) -> str:
    """The class of a failed response: ``timeout``, ``client``, ``server`` or ``connection``.

    Uses ``error_kind`` when set, else reads the message for an HTTP status.

    >>> error_class(Response(error="boom", error_kind="server"))
    'server'
    >>> error_class(Response(error="HTTP 404: no such model"))
    'client'
    """
    kind = response.error_kind
    if kind in ("timeout", "client", "server", "connection"):
        return str(kind)
    text = str(response.error or "").lower()
    if "timeout" in text or "timed out" in text:
        return "timeout"
    for token in text.replace(":", " ").split():
        if token.isdigit() and len(token) == 3:
            if token.startswith("4"):
                return "client"
            if token.startswith("5"):
                return "server"
    return "server" if kind is None else str(kind)


# ---------------------------------------------------------------------- output handling


def as_output_array(outputs: Any) -> np.ndarray | None:
    """Outputs as a numeric numpy array, or None when they are not numeric."""
    try:
        array = np.asarray(outputs)
    except (TypeError, ValueError):
        return None
    if array.dtype.kind not in "biuf":
        return None
    return array


def outputs_equal(a: Any, b: Any, *, exact: bool, atol: float = 0.0, rtol: float = 0.0) -> bool:
    """True when two outputs are the same: bitwise (same shape, dtype and bytes) or close.

    >>> outputs_equal(np.float32(0.1), np.float64(0.1), exact=True)
    False
    >>> outputs_equal(np.float32(0.1), np.float64(0.1), exact=False, atol=1e-6)
    True
    """
    x, y = as_output_array(a), as_output_array(b)
    if x is None or y is None:
        return bool(a == b) if x is None and y is None else False
    if x.shape != y.shape:
        return False
    if exact:
        return x.dtype == y.dtype and x.tobytes() == y.tobytes()
    return bool(np.allclose(x, y, atol=atol, rtol=rtol, equal_nan=True))


def latency_quantiles(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of latencies in seconds (empty: NaN).

    >>> latency_quantiles([0.1, 0.2, 0.3])["p50_s"]
    0.2
    """
    if not latencies:
        return {"p50_s": math.nan, "p90_s": math.nan, "p99_s": math.nan, "max_s": math.nan}
    values = np.asarray(latencies, dtype=np.float64)
    p50, p90, p99 = np.quantile(values, [0.5, 0.9, 0.99])
    return {
        "p50_s": float(p50),
        "p90_s": float(p90),
        "p99_s": float(p99),
        "max_s": float(values.max()),
    }


# --------------------------------------------------------------------------- load generator


@attrs.frozen
class Record:
    """One request the load generator sent and what came back.

    ``sent`` and ``done`` are `time.perf_counter` readings; ``index`` is the position of
    the request's input in the generator's inputs.
    """

    sent: float
    done: float
    index: int
    response: Response


class LoadGenerator:
    """Send requests to an endpoint from a background thread, bounded and self-stopping.

    Requests cycle through ``inputs`` and are paced at ``rate_per_s`` (each request is
    sent when the previous one has returned and the pacing interval has passed). The
    thread stops by itself after ``max_requests`` requests or ``max_duration_s`` seconds,
    whichever comes first, or when `stop` is called. A request that raises is recorded
    as a failed response (``error_kind="connection"``).

    Args:
        endpoint: where requests go (``infer(inputs)``, unversioned: live traffic).
        inputs: the request inputs, cycled.
        rate_per_s: the most requests per second.
        max_requests: the most requests in total.
        max_duration_s: the longest the generator runs.

    >>> from mlchecks.serving import InProcessServer
    >>> server = InProcessServer().add("1", abs)
    >>> server.set_live("1")
    >>> gen = LoadGenerator(server, [-1, -2], rate_per_s=1000, max_requests=10, max_duration_s=5)
    >>> records = gen.start().join(timeout_s=5)
    >>> len(records), records[1].response.outputs
    (10, 2)
    """

    def __init__(
        self,
        endpoint: Endpoint,
        inputs: Sequence[Any],
        *,
        rate_per_s: float,
        max_requests: int,
        max_duration_s: float,
    ) -> None:
        if not inputs:
            raise InvalidInput("'inputs' must not be empty")
        self.endpoint = endpoint
        self.inputs = list(inputs)
        self.interval_s = 1.0 / rate_per_s
        self.max_requests = max_requests
        self.max_duration_s = max_duration_s
        self.records: list[Record] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlchecks-load", daemon=True)
        self.started = math.nan

    def start(self) -> LoadGenerator:
        """Start the background thread; returns self."""
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def _loop(self) -> None:
        deadline = self.started + self.max_duration_s
        next_send = self.started
        for count in range(self.max_requests):
            if self._stop.is_set():
                return
            now = time.perf_counter()
            if now >= deadline:
                return
            if next_send > now and self._stop.wait(min(next_send, deadline) - now):
                return
            index = count % len(self.inputs)
            sent = time.perf_counter()
            try:
                response = self.endpoint.infer(self.inputs[index])
            except Exception as exc:
                response = Response(error=f"{type(exc).__name__}: {exc}", error_kind="connection")
            done = time.perf_counter()
            self.records.append(Record(sent, done, index, response))
            next_send = sent + self.interval_s

    def count(self) -> int:
        """Responses recorded so far."""
        return len(self.records)

    def wait_for(self, predicate: Callable[[list[Record]], bool], timeout_s: float) -> bool:
        """Poll until ``predicate(records)`` holds, the thread ends, or ``timeout_s`` passes."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if predicate(self.records):
                return True
            if not self._thread.is_alive():
                return predicate(self.records)
            time.sleep(0.001)
        return predicate(self.records)

    def stop(self) -> None:
        """Ask the thread to stop after the request in flight."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def join(self, timeout_s: float) -> list[Record]:
        """Wait up to ``timeout_s`` for the thread to end and return the records so far."""
        self._thread.join(timeout_s)
        return list(self.records)
