"""One deadline per check run, bounding every call the check makes.

A check creates a `Deadline` from its ``check_timeout_s`` when ``run()`` starts and hands it to
whatever it calls: a `Session` bounds each request and load by the time left, the load
generator stops at it, and user code (``train_step``, ``make_run``, ``predict``) runs through
`Deadline.call`, on a worker thread that the check stops waiting for when the time is up.
Past the deadline the check raises `CheckTimeout`, which `mlchecks.run_check` turns into an
ERROR result naming what ran over.

- `Deadline`: the end time, the time left, ``bound`` (a per-call timeout cut to the time
  left), ``check`` (raise when the time is up) and ``call`` (run user code within it).
- `Deadlines`: the deadline of the call in progress, per thread, for the serving
  transports: a request made inside `Deadlines.bounded` (the metadata lookup of an
  ``infer``, the readiness checks of a ``load``) ends by the earlier of its own deadline and
  the enclosing one, so one public call never takes longer than its own timeout.
- `TimedCaller`: calls a function on a daemon worker thread and gives up after a timeout;
  an abandoned worker exits as soon as its call returns.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import attrs

from mlchecks import _global_state
from mlchecks._text import fmt
from mlchecks.exceptions import CheckTimeout

__all__ = ["Call", "Deadline", "Deadlines", "TimedCaller", "bounded_iter", "stopping"]

T = TypeVar("T")


# ----------------------------------------------------------------------- timed calls


@attrs.frozen
class Call:
    """The outcome of `TimedCaller.call`: a value, an exception, or a timeout."""

    value: Any = None
    exception: BaseException | None = None
    timed_out: bool = False
    elapsed_s: float = 0.0


_Job = tuple[Callable[[], Any], "queue.SimpleQueue[Any]", dict[str, int]]


class _Worker:
    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="mlchecks-call", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fn, out, held = job
            try:
                with _global_state.delegated(held):
                    out.put((True, fn()))
            except BaseException as exc:  # handed back to the caller
                out.put((False, exc))


class TimedCaller:
    """Call functions on a daemon worker thread, waiting at most ``timeout_s`` each.

    A call that times out leaves its worker behind (Python cannot stop a thread), told to
    exit as soon as that call returns; the next call gets a fresh worker. After
    ``max_stuck`` abandoned workers every call times out at once, so a server that hangs
    every request cannot pile up threads. The worker acts for the calling thread: locks of
    process-global state the caller holds (see `mlchecks.Check`) count as held there too.

    >>> caller = TimedCaller()
    >>> caller.call(lambda: 6 * 7, timeout_s=5.0).value
    42
    >>> caller.close()
    """

    def __init__(self, max_stuck: int = 4) -> None:
        self.max_stuck = max_stuck
        self.stuck = 0
        self._worker: _Worker | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The current worker thread, if one runs."""
        return None if self._worker is None else self._worker.thread

    def call(self, fn: Callable[[], Any], timeout_s: float) -> Call:
        """Run ``fn()`` and return its value or exception, or a timeout after ``timeout_s``."""
        start = time.perf_counter()
        if self.stuck >= self.max_stuck or timeout_s <= 0:
            return Call(timed_out=True)
        if self._worker is None:
            self._worker = _Worker()
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker.jobs.put((fn, out, _global_state.held_counts()))
        try:
            ok, value = out.get(timeout=timeout_s)
        except queue.Empty:
            self.stuck += 1
            self.close()  # the abandoned worker exits when its call returns
            return Call(timed_out=True, elapsed_s=time.perf_counter() - start)
        elapsed = time.perf_counter() - start
        if ok:
            return Call(value=value, elapsed_s=elapsed)
        return Call(exception=value, elapsed_s=elapsed)

    def run(self, fn: Callable[[], T], timeout_s: float, timeout: Callable[[], str]) -> T:
        """``fn()``'s value, or what it raised; `CheckTimeout` with the message ``timeout()``
        gives when it takes longer than ``timeout_s``."""
        result = self.call(fn, timeout_s)
        if result.timed_out:
            raise CheckTimeout(timeout())
        if result.exception is not None:
            raise result.exception
        return result.value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Let the current worker exit (after the call it runs, if any)."""
        if self._worker is not None:
            self._worker.jobs.put(None)
            self._worker = None


# ------------------------------------------------------------------------- deadline


class Deadline:
    """The time by which a check (or one call) must end, the setting that set it, and what
    it was doing.

    Args:
        timeout_s: seconds from now; None: no deadline.
        owner: who the deadline belongs to, for messages (``"rollback"``).
        setting: the name of the setting ``timeout_s`` came from, for messages.

    >>> deadline = Deadline(60.0, "my_check")
    >>> 59.0 < deadline.remaining() <= 60.0, deadline.bound(5.0)
    (True, 5.0)
    >>> deadline.call(sum, [1, 2, 3], doing="sum")
    6
    >>> Deadline(None).bound(None), Deadline(None).expired
    (None, False)
    >>> call = Deadline(2.0, setting="timeout_s")
    >>> call.text, call.allows(1.0), call.allows(5.0)
    ('timeout_s=2 s', True, False)
    >>> late = Deadline(1e-9, "my_check")
    >>> late.check("training")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.CheckTimeout: my_check ran past its check_timeout_s=1e-09 s while training
    """

    def __init__(
        self, timeout_s: float | None, owner: str = "the check", setting: str = "check_timeout_s"
    ) -> None:
        self.timeout_s = timeout_s
        self.owner = owner
        self.setting = setting
        self.end = math.inf if timeout_s is None else time.monotonic() + timeout_s
        self.doing = ""
        self._caller: TimedCaller | None = None

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def at(self) -> float:
        """When the deadline passes, on the ``time.monotonic()`` clock (``inf``: never)."""
        return self.end

    @property
    def text(self) -> str:
        """``"timeout_s=2 s"``: the setting that bounds the work, for messages."""
        return f"{self.setting}={fmt(self.timeout_s)} s"

    def allows(self, wait_s: float) -> bool:
        """True when more than ``wait_s`` seconds are left (time for a wait and a try)."""
        return self.remaining() > wait_s

    def remaining(self) -> float:
        """Seconds left (``inf`` without a deadline, never negative)."""
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.end

    def bound(self, seconds: float | None) -> float | None:
        """``seconds`` cut to the time left (None: no bound at all)."""
        left = self.remaining()
        if seconds is None:
            return None if math.isinf(left) else left
        return min(seconds, left)

    def message(self, doing: str | None = None) -> str:
        """The sentence of a `CheckTimeout`: who ran over, the limit, and while doing what."""
        what = doing if doing is not None else self.doing
        tail = f" while {what}" if what else ""
        return f"{self.owner} ran past its {self.text}{tail}"

    def check(self, doing: str) -> None:
        """Note what the check does next; raise `CheckTimeout` if the time is up."""
        self.doing = doing
        if self.expired:
            raise CheckTimeout(self.message(doing))

    def call(self, fn: Callable[..., T], /, *args: Any, doing: str, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, abandoned with `CheckTimeout` when the deadline passes.

        Without a deadline (or already on this deadline's worker) the call runs here; with
        one it runs on a worker thread, so user code that never returns cannot hold the
        check past its deadline. Whatever ``fn`` raises is raised here.
        """
        self.check(doing)
        if math.isinf(self.end) or self._on_worker():
            return fn(*args, **kwargs)
        if self._caller is None:
            self._caller = TimedCaller(max_stuck=1)
        # on a timeout, the message says what the worker said it was doing last
        return self._caller.run(lambda: fn(*args, **kwargs), self.remaining(), self.message)

    def _on_worker(self) -> bool:
        worker = None if self._caller is None else self._caller.thread
        return worker is threading.current_thread()

    def close(self) -> None:
        """Let the worker thread exit."""
        if self._caller is not None:
            self._caller.close()


class Deadlines:
    """The deadline of the call in progress, per thread (see the module docstring).

    >>> deadlines = Deadlines()
    >>> with deadlines.bounded(60.0, "load_timeout_s"):
    ...     deadlines.current(10.0, "timeout_s").setting
    'timeout_s'
    >>> with deadlines.bounded(0.5, "timeout_s"):
    ...     inner = deadlines.current(10.0, "load_timeout_s")
    >>> inner.text, inner.remaining() <= 0.5
    ('timeout_s=0.5 s', True)
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def enclosing(self) -> Deadline | None:
        """The deadline of the enclosing `bounded` block of this thread, if any."""
        deadline: Deadline | None = getattr(self._local, "deadline", None)
        return deadline

    def current(self, seconds: float, name: str) -> Deadline:
        """The deadline of a call allowed ``seconds`` (the setting ``name``) that starts
        now: the earlier of its own and the enclosing one."""
        own = Deadline(seconds, setting=name)
        outer = self.enclosing()
        return own if outer is None or own.at < outer.at else outer

    @contextlib.contextmanager
    def bounded(self, seconds: float, name: str) -> Iterator[Deadline]:
        """Every call of this thread inside the block ends within ``seconds`` from now
        (or by the enclosing block's deadline, when that is earlier)."""
        outer = self.enclosing()
        deadline = self.current(seconds, name)
        self._local.deadline = deadline
        try:
            yield deadline
        finally:
            self._local.deadline = outer


def bounded_iter(items: Iterable[T], deadline: Deadline, doing: str) -> Iterator[T]:
    """``items`` item by item, each wait for the next one bounded by ``deadline``.

    A sequence (or array) cannot block, so it is read here; any other iterable (a
    generator, a queue reader) is advanced through `Deadline.call`.

    >>> list(bounded_iter(iter([1, 2]), Deadline(5.0), "reading"))
    [1, 2]
    """
    if isinstance(items, Sequence) or hasattr(items, "__array__") or math.isinf(deadline.end):
        for item in items:
            deadline.check(doing)
            yield item
        return
    iterator = iter(items)
    done = object()
    while True:
        item = deadline.call(next, iterator, done, doing=doing)
        if item is done:
            return
        yield item


@contextlib.contextmanager
def stopping(source: object) -> Iterator[None]:
    """Call ``source.stop()`` (a followed log, `mlchecks.serving.RecordLog`) when the block
    ends in `CheckTimeout`, so a reader left on a worker thread ends too.

    >>> with stopping([1, 2]):  # a source without stop() is left alone
    ...     pass
    """
    try:
        yield
    except CheckTimeout:
        stop = getattr(source, "stop", None)
        if callable(stop):
            stop()
        raise
