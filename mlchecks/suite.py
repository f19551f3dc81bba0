"""`Suite` composes checks; `SuiteResult` reports on them (scored by `MLTestScore`).

`MLTestScore` and `RUBRIC_TESTS` live in `mlchecks.score` and are re-exported here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import attrs

from mlchecks import _fields, _global_state
from mlchecks._json import decode_float, encode_float
from mlchecks._text import printable
from mlchecks._validate import is_collection
from mlchecks.check import Check, Context, _check_name, run_check, submit_each
from mlchecks.exceptions import CheckFailed
from mlchecks.result import Result, Status, find_named
from mlchecks.score import RUBRIC_TESTS, MLTestScore, manual_tests

__all__ = ["RUBRIC_TESTS", "MLTestScore", "Suite", "SuiteResult"]


def _items(checks: Any) -> list[Check | Suite]:
    wanted = "an iterable of Check objects or Suites"
    if not is_collection(checks):
        raise TypeError(_fields.reject("checks", wanted, checks))
    try:
        return list(checks)
    except TypeError:  # a 0-d array is Iterable but cannot be iterated
        raise TypeError(_fields.reject("checks", wanted, checks)) from None


def _rubric(check: Check) -> int | None:
    """The check's rubric test when it is one (1..7): a user check may declare anything."""
    rubric = getattr(check, "rubric", None)
    return rubric if _fields.RUBRIC.accepts(rubric) else None


def _flatten(checks: Iterable[Check | Suite]) -> tuple[Check, ...]:
    flat: list[Check] = []
    for item in checks:
        if isinstance(item, Suite):
            flat.extend(item.checks)
        elif isinstance(item, Check):
            flat.append(item)
        else:
            raise TypeError(
                "'checks' must contain Check objects (with name, rubric and run()) or "
                f"Suites (got {item!r} that is a {type(item).__name__})"
            )
    return tuple(flat)


def _merged_manual(
    checks: Iterable[Check | Suite], own: Mapping[int, str] | None
) -> dict[int, str]:
    merged: dict[int, str] = {}
    for item in checks:
        if isinstance(item, Suite):
            merged.update(item.manual)
    merged.update(manual_tests(own))
    return merged


ProgressFn = Callable[[int, int, Result], None]


def _progress_printer(total: int, enabled: bool) -> tuple[ProgressFn, Callable[[], None]]:
    """A per-result progress callback: tqdm when installed, else a line per check."""
    if not enabled or total == 0:
        return (lambda done, n, result: None), (lambda: None)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        width = len(str(total))

        def line(done: int, n: int, result: Result) -> None:
            print(
                f"[{done:>{width}}/{n}] {result.status.label:<5} {printable(result.check)} "
                f"({result.duration_s:.2f}s)",
                file=sys.stderr,
                flush=True,
            )

        return line, (lambda: None)
    bar = tqdm(total=total, desc="mlchecks", unit="check", leave=False, file=sys.stderr)

    def update(done: int, n: int, result: Result) -> None:
        bar.set_postfix_str(f"{printable(result.check)}: {result.status.label}", refresh=False)
        bar.update(1)

    return update, bar.close


@attrs.frozen(init=False)
class Suite:
    """An ordered collection of checks, run together and scored.

    Args:
        checks: checks and suites; nested suites are flattened, order kept.
        name: the suite's name in reports.
        manual: rubric tests (1..7) done by hand, each with a note such as a runbook link;
            they earn 0.5 points in the score.

    >>> from mlchecks.testing import StaticCheck
    >>> suite = Suite([StaticCheck("a", Status.PASS), Suite([StaticCheck("b", Status.WARN)])])
    >>> [c.name for c in suite.checks]
    ['a', 'b']
    >>> result = suite.run(progress=False)
    >>> result.status, result.passed
    (<Status.WARN: 'warn'>, True)
    """

    checks: tuple[Check, ...]
    name: str
    manual: Mapping[int, str]

    def __init__(
        self,
        checks: Iterable[Check | Suite] = (),
        name: str = "mlchecks",
        manual: Mapping[int, str] | None = None,
    ) -> None:
        items = _items(checks)
        name = _fields.check(name, "name", _fields.TEXT)
        self.__attrs_init__(_flatten(items), name, _merged_manual(items, manual))

    def __len__(self) -> int:
        return len(self.checks)

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def run(
        self,
        context: Context | None = None,
        *,
        executor: Executor | None = None,
        fail_fast: bool = False,
        progress: bool | ProgressFn = True,
    ) -> SuiteResult:
        """Run every check and return a `SuiteResult`. Never raises for a failing check.

        Args:
            context: shared settings (seed, workdir, progress callback, executor).
            executor: run the checks concurrently on this executor (threads, processes, a
                Dask client's ``get_executor()``). Checks sent to another process must
                pickle. Defaults to ``context.executor`` when given, else runs in order here.
                Checks that declare process-global state (``global_state``, e.g. training
                code and its global RNG) run one at a time on threads, and their results
                say so.
            fail_fast: stop at the first FAIL or ERROR; the checks not run are SKIP.
            progress: a line (or a tqdm bar) per finished check on stderr; or a callable
                ``(done, total, result)``.
        """
        context = context if context is not None else Context()
        executor = executor if executor is not None else context.executor
        total = len(self.checks)
        if callable(progress):
            notify: ProgressFn = progress
            close: Callable[[], None] = lambda: None  # noqa: E731
        else:
            notify, close = _progress_printer(total, bool(progress))
        start = time.perf_counter()
        try:
            if executor is None:
                results = self._run_inline(context, fail_fast, notify)
            else:
                results = self._run_on(executor, context, fail_fast, notify)
        finally:
            close()
        return SuiteResult(
            results=tuple(results),
            name=self.name,
            manual=self.manual,
            duration_s=time.perf_counter() - start,
        )

    def _skipped(self, check: Check, cause: Result) -> Result:
        return Result(
            check=_check_name(check),
            status=Status.SKIP,
            summary=f"not run: fail_fast stopped the suite after {cause.check!r} "
            f"returned {cause.status.label}",
            rubric=_rubric(check),
        )

    def _run_inline(self, context: Context, fail_fast: bool, notify: ProgressFn) -> list[Result]:
        results: list[Result] = []
        stop: Result | None = None
        for check in self.checks:
            result = self._skipped(check, stop) if stop is not None else run_check(check, context)
            results.append(result)
            notify(len(results), len(self.checks), result)
            if fail_fast and stop is None and not result.passed:
                stop = result
        return results

    def _run_on(
        self, executor: Executor, context: Context, fail_fast: bool, notify: ProgressFn
    ) -> list[Result]:
        # Checks run on the executor with a context that can travel to another process;
        # the executor itself stays here (a check's own sub-work runs inline on the worker).
        # A check that declares process-global state (``global_state``) runs holding that
        # state's lock in the worker's process, so such checks never interleave on threads.
        remote = context.without_executor()
        declared = [_global_state.declared(check) for check in self.checks]
        futures: list[Future[Result]] = [
            submit_each(executor, _global_state.Exclusive(run_check, names), check, remote)
            if names
            else submit_each(executor, run_check, check, remote)
            for check, names in zip(self.checks, declared, strict=True)
        ]
        index = {id(f): i for i, f in enumerate(futures)}
        results: list[Result | None] = [None] * len(futures)
        stop: Result | None = None
        done = 0
        broken: dict[int, BrokenExecutor] = {}  # checks lost when a worker process died

        def record(i: int, result: Result) -> None:
            nonlocal done, stop
            results[i] = result
            done += 1
            notify(done, len(futures), result)
            if fail_fast and stop is None and not result.passed:
                stop = result
                for other in futures:
                    other.cancel()

        try:
            for future in as_completed(futures):
                i = index[id(future)]
                if future.cancelled():
                    continue
                try:
                    result = future.result()
                except BrokenExecutor as exc:  # a worker died: which check killed it is unknown
                    broken[i] = exc
                    continue
                except Exception as exc:  # the check could not travel (pickling)
                    result = _unsent(self.checks[i], exc)
                else:
                    result = _global_state.with_note(result, executor, declared[i])
                record(i, result)
            for i, lost in sorted(broken.items()):
                if stop is None:
                    record(i, _rerun_alone(executor, self.checks[i], remote, declared[i], lost))
        finally:
            for other in futures:
                other.cancel()
        out: list[Result] = []
        for i, maybe in enumerate(results):
            if maybe is None:
                assert stop is not None
                maybe = self._skipped(self.checks[i], stop)
            out.append(maybe)
        return out


def _unsent(check: Check, exc: BaseException) -> Result:
    """ERROR: the check (or its result) could not travel to or from the executor."""
    error = Result.from_exception(_check_name(check), exc, rubric=_rubric(check))
    return attrs.evolve(
        error,
        summary=f"check could not be sent to the executor: {error.summary}; run it without an "
        "executor or make it picklable (no lambdas, locks or open connections in its fields)",
    )


def _rerun_alone(
    executor: Executor, check: Check, context: Context, names: tuple[str, ...], exc: BaseException
) -> Result:
    """A check lost when a worker process died, run again alone on a fresh one-worker pool.

    A process pool breaks as a whole: every check running or queued on it fails with
    `BrokenProcessPool`, and nothing says whose worker died. Run alone, the check that ends
    its process kills its fresh worker again and is reported as such; the others complete.
    """
    name, rubric = _check_name(check), _rubric(check)
    cause = f"{type(exc).__name__}: a worker process of the executor died"
    if not isinstance(executor, ProcessPoolExecutor):
        error = Result.from_exception(name, exc, rubric=rubric)
        return attrs.evolve(
            error,
            summary=f"not run to the end: {cause} while this check was running or queued, and "
            "the executor cannot be restarted here; run the suite without an executor or on a "
            "ProcessPoolExecutor to find the check that ends its process",
        )
    fn: Callable[..., Result] = _global_state.Exclusive(run_check, names) if names else run_check
    with ProcessPoolExecutor(
        max_workers=1,
        mp_context=getattr(executor, "_mp_context", None),
        initializer=getattr(executor, "_initializer", None),
        initargs=getattr(executor, "_initargs", ()),
    ) as fresh:
        try:
            result = submit_each(fresh, fn, check, context).result()
        except BrokenExecutor as again:
            error = Result.from_exception(name, again, rubric=rubric)
            return attrs.evolve(
                error,
                summary=f"the check's worker process died ({type(again).__name__}), also when "
                "the check ran again alone on a fresh worker: it ends or crashes its process "
                "(os._exit, a signal, running out of memory, a crash in native code)",
            )
        except Exception as unsent:
            return _unsent(check, unsent)
    note = f"ran again alone on a fresh worker process after {cause}"
    summary = f"{result.summary} ({note})" if result.summary else note
    return attrs.evolve(result, summary=summary, details={**result.details, "rerun": note})


def _results(value: Iterable[Result]) -> tuple[Result, ...]:
    return tuple(value)


@attrs.frozen(eq=False)
class SuiteResult:
    """The results of a suite run, in the suite's order.

    >>> from mlchecks.testing import StaticCheck
    >>> result = Suite([StaticCheck("ok", Status.PASS, rubric=1)]).run(progress=False)
    >>> result.score.total
    1.0
    >>> SuiteResult.from_dict(result.to_dict()) == result
    True
    """

    results: tuple[Result, ...] = attrs.field(converter=_results)
    name: str = "mlchecks"
    manual: Mapping[int, str] = attrs.field(factory=dict, converter=manual_tests)
    duration_s: float = 0.0

    @property
    def status(self) -> Status:
        """The worst status of the checks (PASS for an empty suite)."""
        return Status.worst(r.status for r in self.results)

    @property
    def passed(self) -> bool:
        """True when no check FAILED or ERRORED."""
        return self.status.passed

    @property
    def score(self) -> MLTestScore:
        """The ML Test Score of this run."""
        return MLTestScore.from_results(self.results, self.manual)

    def __getitem__(self, name: str) -> Result:
        return find_named(self.results, name, "check", "check", "this suite")

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def counts(self) -> dict[Status, int]:
        """How many checks ended in each status."""
        out = dict.fromkeys(Status, 0)
        for r in self.results:
            out[r.status] += 1
        return out

    def raise_for_status(self) -> SuiteResult:
        """Raise `CheckFailed` carrying this result unless the suite passed."""
        if not self.passed:
            raise CheckFailed(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON-safe dict; `SuiteResult.from_dict` rebuilds an equal result."""
        return {
            "name": self.name,
            "status": self.status.value,
            "duration_s": encode_float(self.duration_s),
            "results": [r.to_dict() for r in self.results],
            "manual": {str(k): v for k, v in sorted(self.manual.items())},
            "score": self.score.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteResult:
        """Rebuild from `SuiteResult.to_dict` output (``status`` and ``score`` are derived)."""
        return cls(
            results=[Result.from_dict(r) for r in data.get("results", ())],
            name=data.get("name", "mlchecks"),
            manual={int(k): v for k, v in data.get("manual", {}).items()},
            duration_s=decode_float(data.get("duration_s", 0.0)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SuiteResult):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (no NaN tokens); `SuiteResult.from_json` inverts it."""
        from mlchecks.report.json import suite_to_json

        return suite_to_json(self, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> SuiteResult:
        """Parse `SuiteResult.to_json` output."""
        from mlchecks.report.json import suite_from_json

        return suite_from_json(text)

    def to_junit_xml(self) -> str:
        """JUnit XML: one testsuite, one testcase per check."""
        from mlchecks.report.junit import suite_to_junit_xml

        return suite_to_junit_xml(self)

    def to_markdown(self) -> str:
        """Markdown that fits a CI job summary."""
        from mlchecks.report.markdown import suite_to_markdown

        return suite_to_markdown(self)

    def to_html(self, *, full_page: bool = True) -> str:
        """Static, self-contained HTML (no JavaScript)."""
        from mlchecks.report.html import suite_to_html

        return suite_to_html(self, full_page=full_page)

    def save(self, path: str | Path) -> Path:
        """Write the report; the format follows the suffix (.json, .xml, .md, .html, .txt)."""
        from mlchecks.report import save

        return save(self, path)

    def _repr_html_(self) -> str:
        return self.to_html(full_page=False)

    def __str__(self) -> str:
        from mlchecks.report.text import suite_to_text

        return suite_to_text(self)
