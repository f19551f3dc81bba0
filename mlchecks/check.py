"""The `Check` protocol, the shared run `Context`, and `run_check()`."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import numpy as np
from typing_extensions import ParamSpec, Protocol, runtime_checkable

from mlchecks import _global_state
from mlchecks.result import Result, Status

if TYPE_CHECKING:  # imported where used: together 20 ms of `import mlchecks`
    from concurrent.futures import Executor, Future
    from pathlib import Path

__all__ = ["Check", "Context", "run_check", "submit_each"]

P = ParamSpec("P")
T = TypeVar("T")


@runtime_checkable
class Check(Protocol):
    """Anything with a ``name``, a ``rubric`` and a ``run(context)`` returning a `Result`.

    Built-in checks are frozen attrs classes whose fields are their inputs and thresholds.
    Your own check needs no base class:

    >>> import attrs
    >>> @attrs.frozen
    ... class AlwaysPasses:
    ...     name: str = "always_passes"
    ...     rubric: int | None = None
    ...     def run(self, context=None):
    ...         return Result(check=self.name, status=Status.PASS, summary="nothing to see")
    >>> isinstance(AlwaysPasses(), Check)
    True
    >>> run_check(AlwaysPasses()).status
    <Status.PASS: 'pass'>

    Optional: ``global_state``, the names of the process-global state the check's work
    touches, e.g. ``("rng",)`` for training code that draws from the global random
    generators (``random``, ``numpy.random``, torch's default generator). A `Suite` on an
    executor whose workers are threads of one process runs such checks one at a time (and
    says so in their results); `Context.submit` does the same for a callable that declares
    it. The built-in training checks declare ``("rng",)``; so do trainers (the check's
    ``trainer``) such as `mlchecks.integrations.torch.TorchTrainer`.

    >>> @attrs.frozen
    ... class TrainsTwice(AlwaysPasses):
    ...     global_state = ("rng",)
    >>> TrainsTwice().global_state
    ('rng',)
    """

    @property
    def name(self) -> str:
        """Stable snake_case name; used as the pytest id and in every report."""
        ...

    @property
    def rubric(self) -> int | None:
        """The ML Test Score infrastructure test (1..7) the check automates, or None."""
        ...

    def run(self, context: Context | None = None) -> Result:
        """Run the check. Failures are FAIL findings, never exceptions."""
        ...


def _path_or_none(value: Any) -> Path | None:
    from pathlib import Path

    return None if value is None else Path(value)


def _executor_or_none(value: object) -> Executor | None:
    if value is not None and not callable(getattr(value, "submit", None)):
        raise TypeError(f"'executor' must be a concurrent.futures.Executor (got {value!r})")
    return value  # type: ignore[return-value]


@attrs.frozen
class Context:
    """What the checks of one run share.

    Args:
        executor: where independent work goes (two training runs, repeated rollbacks):
            any `concurrent.futures.Executor`, including a Dask client's
            ``get_executor()``. None runs the work inline.
        seed: the root seed; `Context.rng` derives independent streams from it.
        progress: called with one line of text for each step of long work.
        workdir: where checks put temporary files (a fresh temp dir when None).

    >>> ctx = Context(seed=7)
    >>> ctx.submit(sum, [1, 2, 3]).result()
    6
    >>> float(ctx.rng("bootstrap").random()) == float(Context(seed=7).rng("bootstrap").random())
    True
    """

    executor: Executor | None = attrs.field(default=None, converter=_executor_or_none)
    seed: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))
    progress: Callable[[str], None] | None = attrs.field(default=None)
    workdir: Path | None = attrs.field(default=None, converter=_path_or_none)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the executor, or now when there is none.

        Every call runs, even when two calls look identical: executors that deduplicate
        identical tasks (a Dask client's executor does by default) would otherwise hand
        back one result for two training runs with the same seed. An error raised while
        sending the work (a function that does not pickle) is set on the returned future.

        A ``fn`` that declares process-global state (a ``global_state`` attribute, see
        `Check`) runs holding that state's process-wide lock, so two submitted training runs
        never interleave on the threads of one process; a caller that already holds the
        lock runs ``fn`` inline (waiting on a worker would deadlock).
        """
        names = _global_state.declared(fn)
        if self.executor is not None and not _global_state.holds(names):
            if names and not isinstance(fn, _global_state.Exclusive):
                fn = _global_state.Exclusive(fn, names)  # holds its locks where it runs
            return submit_each(self.executor, fn, *args, **kwargs)
        from concurrent.futures import Future

        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def report(self, message: str) -> None:
        """Send one line of progress to the progress callback, if any."""
        if self.progress is not None:
            self.progress(message)

    def rng(self, stream: str | int = 0) -> np.random.Generator:
        """An independent, reproducible random generator for ``stream``."""
        if isinstance(stream, int):
            key = stream
        else:  # the whole name: streams that share a prefix stay independent
            import hashlib  # on first use: 5 ms at import

            key = int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(np.random.SeedSequence([self.seed, key]))

    @contextlib.contextmanager
    def tempdir(self, prefix: str = "mlchecks-") -> Iterator[Path]:
        """A temporary directory under ``workdir``, removed afterwards."""
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory(prefix=prefix, dir=self.workdir) as path:
            yield Path(path)

    def without_executor(self) -> Context:
        """A copy that can be pickled and sent to a worker (no executor, no callback)."""
        return attrs.evolve(self, executor=None, progress=None)


_calls = itertools.count()


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], token: str) -> T:
    """Run ``fn``; ``token`` only makes each submitted task distinct."""
    return fn(*args, **kwargs)


def submit_each(
    executor: Executor, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> Future[T]:
    """``executor.submit(fn, *args, **kwargs)``, never merged with an identical earlier call.

    The call travels as ``(fn, args, kwargs)`` with a unique token, so keyword arguments reach
    ``fn`` (not the executor, which a Dask executor would take them for) and executors that
    cache pure tasks by their arguments still run each call. A failure to send the call
    (pickling) comes back on the future instead of raising here.
    """
    token = f"{os.getpid()}-{next(_calls)}-{uuid.uuid4().hex}"
    try:
        return executor.submit(_call, fn, args, kwargs, token)
    except Exception as exc:  # e.g. a Dask client pickles at submit time
        from concurrent.futures import Future

        failed: Future[T] = Future()
        failed.set_exception(exc)
        return failed


def _check_name(check: object) -> str:
    name = getattr(check, "name", None)
    return name if isinstance(name, str) else type(check).__name__


def _exited(exc: SystemExit) -> RuntimeError:
    error = RuntimeError(
        f"the check's code called sys.exit({exc.code!r}); a check that exits has not passed"
    )
    error.__cause__ = exc
    error.__traceback__ = exc.__traceback__
    return error


def run_check(check: Check, context: Context | None = None) -> Result:
    """Run ``check`` and return its result, never raising for the check's own errors.

    The result gets the wall time and the check's rubric number. An exception raised by
    the check (or by user code it calls) becomes an ERROR result with the traceback kept;
    so does a ``run()`` that returns something other than a `Result`, user code that calls
    ``sys.exit()`` (whatever the code: a check that exits has not passed), and a check that
    ran past its ``check_timeout_s`` (`mlchecks.exceptions.CheckTimeout`). `KeyboardInterrupt`
    propagates, so Ctrl-C stops a run.

    >>> class Broken:
    ...     name = "broken"
    ...     rubric = None
    ...     def run(self, context=None):
    ...         raise RuntimeError("disk full")
    >>> result = run_check(Broken())
    >>> result.status, result.error.message
    (<Status.ERROR: 'error'>, 'disk full')
    """
    name = _check_name(check)
    kind = f"{type(check).__module__}.{type(check).__qualname__}"
    rubric = getattr(check, "rubric", None)
    rubric = rubric if isinstance(rubric, int) and 1 <= rubric <= 7 else None
    start = time.perf_counter()
    try:
        result: Any = check.run(context)
        if not isinstance(result, Result):
            raise TypeError(
                f"{type(check).__name__}.run() must return a mlchecks.Result "
                f"(got {type(result).__name__})"
            )
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from user code too: an ERROR, never a pass
        if isinstance(exc, SystemExit):
            exc = _exited(exc)
        elapsed = time.perf_counter() - start
        error = Result.from_exception(name, exc, rubric=rubric, duration_s=elapsed)
        return attrs.evolve(error, kind=kind)
    elapsed = time.perf_counter() - start
    changes: dict[str, Any] = {}
    if result.duration_s == 0.0:
        changes["duration_s"] = elapsed
    if result.rubric is None and rubric is not None:
        changes["rubric"] = rubric
    if result.kind is None:
        changes["kind"] = kind
    if result.status is Status.SKIP and not result.summary:
        changes["summary"] = "skipped (no reason given)"
    return attrs.evolve(result, **changes) if changes else result
