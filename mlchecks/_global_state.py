"""Process-global state that training code touches, and the locks that keep it apart.

Training code draws from process-wide generators (``random``, numpy's legacy global, torch's
default generator), so two trainings on two threads of one process interleave their draws
and neither is reproducible. A check, an adapter or a submitted callable declares what it
touches in an optional ``global_state`` attribute (names such as ``"rng"``); work that
declares a name runs holding that name's process-wide re-entrant lock, so declared work never
interleaves with other work declaring the same name in the same process. Locks are taken in
the process that runs the work: a process pool (one task per process) never waits on them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from mlchecks.result import Result

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = [
    "RNG",
    "TRAINING",
    "Exclusive",
    "delegated",
    "declared",
    "exclusive",
    "held_counts",
    "holds",
    "note",
    "shares_process",
    "with_note",
]

T = TypeVar("T")

RNG = "rng"
"""The process-global random generators: ``random``, ``numpy.random``, torch's default one."""

TRAINING: tuple[str, ...] = (RNG,)
"""What user training code may touch: the global generators (dropout, shuffling, init)."""

_WHAT = {RNG: "process-global RNG state"}

_registry = threading.Lock()
_locks: dict[str, threading.RLock] = {}
_held = threading.local()


def _after_fork_in_child() -> None:
    # A forked child has only the forking thread: locks held by other threads of the parent
    # would never be released there, so the child starts with fresh ones.
    global _registry, _held
    _registry = threading.Lock()
    _locks.clear()
    _held = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _names(value: object) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value} if value else set()
    try:
        return {str(v) for v in value if v}  # type: ignore[attr-defined]
    except TypeError:
        return set()


def declared(obj: object) -> tuple[str, ...]:
    """The global state ``obj`` declares (its ``global_state``, and its ``trainer``'s), sorted.

    >>> class Trains:
    ...     global_state = ("rng",)
    >>> declared(Trains()), declared(print)
    (('rng',), ())
    """
    names = _names(_attribute(obj, "global_state"))
    trainer = _attribute(obj, "trainer")
    if trainer is not None:
        names |= _names(_attribute(trainer, "global_state"))
    return tuple(sorted(names))


def _attribute(obj: object, name: str) -> object:
    try:
        return getattr(obj, name, None)
    except Exception:  # a property that raises declares nothing; the check reports its error
        return None


def _lock(name: str) -> threading.RLock:
    with _registry:
        lock = _locks.get(name)
        if lock is None:
            lock = _locks[name] = threading.RLock()
        return lock


def _counts() -> dict[str, int]:
    counts: dict[str, int] | None = getattr(_held, "counts", None)
    if counts is None:
        counts = _held.counts = {}
    return counts


def holds(names: Iterable[str]) -> bool:
    """True when the calling thread holds the lock of any of ``names``.

    >>> with exclusive(["rng"]):
    ...     holds(["rng"])
    True
    >>> holds(["rng"])
    False
    """
    counts = _counts()
    lent = _lent()
    return any(counts.get(name, 0) > 0 or name in lent for name in names)


def _lent() -> frozenset[str]:
    lent: frozenset[str] = getattr(_held, "lent", frozenset())
    return lent


def held_counts() -> dict[str, int]:
    """The names whose locks the calling thread holds (or acts for), with their counts."""
    counts = {name: n for name, n in _counts().items() if n > 0}
    counts.update({name: 1 for name in _lent() if name not in counts})
    return counts


@contextlib.contextmanager
def delegated(held: dict[str, int]) -> Iterator[None]:
    """Act for a thread that holds ``held``: `exclusive` takes none of those locks here.

    A check's worker thread runs user code on behalf of the check's thread, which may hold
    the lock of a state (a `Suite` on threads holds ``"rng"`` around a training check);
    taking it again from the worker would wait for ever.
    """
    before = _lent()
    _held.lent = before | {name for name, n in held.items() if n > 0}
    try:
        yield
    finally:
        _held.lent = before


@contextlib.contextmanager
def exclusive(names: Iterable[str]) -> Iterator[None]:
    """Hold the process-wide lock of each of ``names`` (re-entrant, taken in sorted order)."""
    ordered = sorted(set(names) - _lent())
    counts = _counts()
    taken: list[tuple[str, threading.RLock]] = []
    try:
        for name in ordered:
            lock = _lock(name)
            lock.acquire()
            taken.append((name, lock))
            counts[name] = counts.get(name, 0) + 1
        yield
    finally:
        for name, lock in reversed(taken):
            counts[name] -= 1
            lock.release()


@attrs.frozen
class Exclusive(Generic[T]):
    """``fn`` run holding the locks of ``names`` in whichever process runs it; pickles with fn."""

    fn: Callable[..., T]
    names: tuple[str, ...]

    @property
    def global_state(self) -> tuple[str, ...]:
        """What the call declares (so nested submissions see it)."""
        return self.names

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        with exclusive(self.names):
            return self.fn(*args, **kwargs)


def shares_process(executor: Executor | None) -> bool:
    """True when the executor's workers are threads of this process (so share its globals).

    Thread pools and executors of unknown kind count as sharing; process pools (including
    loky's) and Dask's executors (workers are other processes) do not.

    >>> from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    >>> shares_process(ThreadPoolExecutor(1)), shares_process(None)
    (True, False)
    """
    if executor is None:
        return False
    # imported here: concurrent.futures.process (multiprocessing) costs 10 ms to import
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if isinstance(executor, ThreadPoolExecutor):
        return True
    if isinstance(executor, ProcessPoolExecutor):
        return False
    module = type(executor).__module__.split(".")[0]
    return module not in {"distributed", "dask", "loky", "joblib", "mpi4py"}


def note(names: Iterable[str]) -> str:
    """The report's line for work that ran one at a time because threads share ``names``.

    >>> note(["rng"])
    'ran one at a time: uses process-global RNG state on a thread pool'
    """
    what = " and ".join(_WHAT.get(n, f"process-global {n!r} state") for n in sorted(set(names)))
    return f"ran one at a time: uses {what} on a thread pool"


def with_note(result: Result, executor: Executor | None, names: Iterable[str]) -> Result:
    """``result`` with the one-at-a-time note (a ``details`` entry and a summary tail).

    Unchanged when nothing is declared or the executor does not share this process.
    """
    names = tuple(names)
    if not names or not shares_process(executor):
        return result
    text = note(names)
    summary = f"{result.summary} ({text})" if result.summary else text
    details = {**result.details, "ran_one_at_a_time": text}
    return attrs.evolve(result, summary=summary, details=details)
