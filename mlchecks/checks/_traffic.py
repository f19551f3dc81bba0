"""Live traffic and what came back: the load generator and response arithmetic.

- `LoadGenerator`: a background thread sending requests to an endpoint at a bounded rate,
  bounded in requests and time, that stops by itself and records every response
  (each request through `mlchecks.checks._session.infer`, so it never raises).
- `error_class`: the class of a failed response (timeout, client, server, connection).
- `request_rows`: how many rows (examples) one request carries.
- `as_rows`: the one normalisation of outputs before any served-vs-offline comparison
  (PipelineCheck, CanaryCheck, RollbackCheck), and `outputs_equal` built on it.
- Latency quantiles.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks._deadline import Deadline, TimedCaller
from mlchecks.checks._session import infer, infer_within, timed_out
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Endpoint, Response

__all__ = [
    "LoadGenerator",
    "Record",
    "as_output_array",
    "as_rows",
    "error_class",
    "json_outputs",
    "latency_quantiles",
    "outputs_equal",
    "request_rows",
]


# ------------------------------------------------------------------------------ responses


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


def request_rows(inputs: Any) -> int:
    """How many rows (examples) one request carries.

    An array of two or more dimensions (numpy, a DataFrame, a tensor: anything with a
    ``shape``) or nested lists of that shape is a batch of ``shape[0]`` rows; a list of
    records (mappings) one row per record; named inputs (a mapping of arrays, as V2
    requests with several inputs) have the rows of their first input; anything else
    (a feature vector, a scalar, a string) is one row.

    >>> request_rows([0.1, 0.2, 0.3]), request_rows(np.zeros((8, 30))), request_rows([[1, 2]])
    (1, 8, 1)
    >>> request_rows({"age": np.arange(4)[:, None], "zip": np.zeros((4, 1))})
    4
    """
    if isinstance(inputs, Mapping):
        first = next(iter(inputs.values()), None)
        return 1 if first is None or isinstance(first, Mapping) else request_rows(first)
    shape = getattr(inputs, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        return shape[0] if len(shape) >= 2 else 1
    if isinstance(inputs, list | tuple) and inputs:
        if all(isinstance(item, Mapping) for item in inputs):
            return len(inputs)
        try:
            array = np.asarray(inputs)
        except (TypeError, ValueError):
            return 1
        if array.dtype.kind != "O" and array.ndim >= 2:
            return int(array.shape[0])
    return 1


def as_output_array(outputs: Any) -> np.ndarray | None:
    """Outputs as a numeric numpy array, or None when they are not numeric."""
    try:
        array = np.asarray(outputs)
    except (TypeError, ValueError):
        return None
    if array.dtype.kind not in "biuf":
        return None
    return array


def _row_view(array: np.ndarray, n_rows: int | None) -> np.ndarray | None:
    """``array`` reshaped to ``(n_rows, k)`` in its own dtype, or None when it cannot be."""
    shape = array.shape
    if n_rows is None:  # one response, row count unknown: a vector is one example's
        while len(shape) > 1 and shape[0] == 1:
            shape = shape[1:]
        n_rows = 1 if len(shape) <= 1 else shape[0]
    if n_rows == 1:
        return array.reshape(1, -1)
    while len(shape) > 1 and shape[0] == 1:  # a leading batch axis of one request
        shape = shape[1:]
    if not shape or shape[0] != n_rows:
        return None
    return array.reshape(n_rows, -1)


def as_rows(outputs: Any, n_rows: int | None = None) -> np.ndarray | None:
    """Outputs for ``n_rows`` rows as one 2-D float64 array of shape ``(n_rows, k)``.

    Every served-versus-offline comparison reads both sides through this function, so
    formats that mean the same predictions compare equal: a leading batch axis of one
    request is dropped (``(1, n, k) -> (n, k)``), one value per row becomes a column
    (``(n,) -> (n, 1)``), one row's outputs of any shape become one row (``(k,)``,
    ``(1, k)`` and ``(1, 1, k)`` -> ``(1, k)``; a scalar -> ``(1, 1)``), and lists become
    arrays. ``n_rows=None`` reads one response whose row count is unknown: a vector is one
    example's outputs, a matrix one row per leading index.

    Returns:
        The ``(n_rows, k)`` float64 array, or None when the outputs are not numeric or
        cannot hold ``n_rows`` rows.

    >>> as_rows([[0.2, 0.8]], 1).tolist()
    [[0.2, 0.8]]
    >>> as_rows(np.array([0.2, 0.8]), 1).tolist()
    [[0.2, 0.8]]
    >>> as_rows([1.5, 2.5, 3.5], 3).shape
    (3, 1)
    >>> as_rows(["a"], 1) is None, as_rows([1.0, 2.0], 3) is None
    (True, True)
    """
    array = as_output_array(outputs)
    if array is None:
        return None
    rows = _row_view(array, n_rows)
    return None if rows is None else rows.astype(np.float64, copy=False)


def json_outputs(outputs: Any, n_rows: int | None = None) -> Any:
    """Outputs as JSON numbers for a report: the `as_rows` rows as nested lists (None when
    the outputs are not numeric; NaN and infinity as their names, as JSON cannot hold them).

    >>> json_outputs(np.array([[0.25, 0.75]]), 1)
    [[0.25, 0.75]]
    >>> json_outputs("oops") is None
    True
    """
    rows = as_rows(outputs, n_rows)
    if rows is None:
        return None
    return [[v if math.isfinite(v) else str(v) for v in row] for row in rows.tolist()]


def outputs_equal(a: Any, b: Any, *, exact: bool, atol: float = 0.0, rtol: float = 0.0) -> bool:
    """True when two outputs are the same once both are read through `as_rows`: bitwise
    (same dtype and bytes) or within tolerance.

    >>> outputs_equal(np.float32(0.1), np.float64(0.1), exact=True)
    False
    >>> outputs_equal(np.float32(0.1), np.float64(0.1), exact=False, atol=1e-6)
    True
    >>> outputs_equal(np.array([[0.1, 0.9]]), np.array([0.1, 0.9]), exact=True)
    True
    """
    x, y = as_output_array(a), as_output_array(b)
    if x is None or y is None:
        return bool(a == b) if x is None and y is None else False
    if x.shape != y.shape:
        x_rows, y_rows = _row_view(x, None), _row_view(y, None)
        if x_rows is None or y_rows is None or x_rows.shape != y_rows.shape:
            return False
        x, y = x_rows, y_rows
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
    thread stops by itself after ``budget_requests`` requests or ``budget_s`` seconds,
    whichever comes first, at the ``deadline``, or when `stop` is called. A request that
    raises is recorded as a failed response (``error_kind="connection"``), one slower than
    ``request_timeout_s`` as a ``"timeout"`` (it is abandoned, so a hung endpoint cannot
    keep the generator past its budget).

    Args:
        endpoint: where requests go (``infer(inputs)``, unversioned: live traffic).
        inputs: the request inputs, cycled.
        rate_per_s: the most requests per second.
        budget_requests: the most requests in total.
        budget_s: the longest the generator runs.
        request_timeout_s: the longest one request may take (None: no bound).
        deadline: the check's `Deadline`; the generator stops there too.

    >>> from mlchecks.serving import InProcessServer
    >>> server = InProcessServer().add("1", abs)
    >>> server.set_live("1")
    >>> gen = LoadGenerator(server, [-1, -2], rate_per_s=1000, budget_requests=10, budget_s=5)
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
        budget_requests: int,
        budget_s: float,
        request_timeout_s: float | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        if not inputs:
            raise InvalidInput("'inputs' must not be empty")
        self.endpoint = endpoint
        self.inputs = list(inputs)
        self.interval_s = 1.0 / rate_per_s
        self.budget_requests = budget_requests
        self.budget_s = budget_s
        self.request_timeout_s = request_timeout_s
        self.deadline = deadline if deadline is not None else Deadline(None)
        self._caller = TimedCaller()
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
        try:
            self._send_all()
        finally:
            self._caller.close()

    def _send(self, inputs: Any) -> Response:
        timeout_s = self.deadline.bound(self.request_timeout_s)
        if timeout_s is None:
            return infer(self.endpoint, inputs)
        response = infer_within(self._caller, self.endpoint, inputs, None, timeout_s)
        return response if response is not None else timed_out(timeout_s)

    def _send_all(self) -> None:
        deadline = min(self.started + self.budget_s, self.started + self.deadline.remaining())
        next_send = self.started
        for count in range(self.budget_requests):
            if self._stop.is_set():
                return
            now = time.perf_counter()
            if now >= deadline:
                return
            if next_send > now and self._stop.wait(min(next_send, deadline) - now):
                return
            index = count % len(self.inputs)
            sent = time.perf_counter()
            response = self._send(self.inputs[index])
            done = time.perf_counter()
            self.records.append(Record(sent, done, index, response))
            next_send = sent + self.interval_s

    def count(self) -> int:
        """Responses recorded so far."""
        return len(self.records)

    def wait_for(self, predicate: Callable[[list[Record]], bool], timeout_s: float) -> bool:
        """Poll until ``predicate(records)`` holds, the thread ends, or ``timeout_s`` passes."""
        deadline = time.perf_counter() + min(timeout_s, self.deadline.remaining())
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
