from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

from mlchecks import Check, Context, Finding, Result, Status, Suite, run_check
from mlchecks.testing import StaticCheck


@attrs.frozen
class Raises:
    name: str = "raises"
    rubric: int | None = 2

    def run(self, context: Context | None = None) -> Result:
        raise RuntimeError("user code exploded")


@attrs.frozen
class ReturnsNone:
    name: str = "returns_none"
    rubric: int | None = None

    def run(self, context: Context | None = None) -> Result:
        return None  # type: ignore[return-value]


class TestCheckProtocol:
    def test_structural(self) -> None:
        """Any object with name, rubric and run() is a Check; others are not."""
        assert isinstance(StaticCheck("x"), Check)
        assert not isinstance(object(), Check)


class TestRunCheck:
    def test_adds_duration_and_rubric(self) -> None:
        """run_check times the run and fills in the check's rubric."""

        @attrs.frozen
        class Plain:
            name: str = "plain"
            rubric: int | None = 4

            def run(self, context: Context | None = None) -> Result:
                return Result(self.name, Status.PASS, "ok")

        result = run_check(Plain())
        assert 4 == result.rubric
        assert result.duration_s > 0

    def test_exception_becomes_error_with_traceback(self) -> None:
        """An exception in the check is an ERROR result, traceback kept, rubric kept."""
        result = run_check(Raises())
        assert Status.ERROR == result.status
        assert 2 == result.rubric
        assert result.error is not None
        assert "user code exploded" in result.error.traceback
        assert "in run" in result.error.traceback

    def test_non_result_return_is_an_error(self) -> None:
        """A run() that returns something else is reported, not propagated."""
        result = run_check(ReturnsNone())
        assert Status.ERROR == result.status
        assert "must return a mlchecks.Result (got NoneType)" in result.summary

    def test_keyboard_interrupt_propagates(self) -> None:
        """Ctrl-C is not swallowed."""

        @attrs.frozen
        class Interrupted:
            name: str = "i"
            rubric: int | None = None

            def run(self, context: Context | None = None) -> Result:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_check(Interrupted())

    def test_skip_without_reason_gets_one(self) -> None:
        """A SKIP with an empty summary is given a placeholder reason."""
        result = run_check(StaticCheck("s", Status.SKIP, summary=""))
        assert result.summary


class TestContext:
    def test_submit_inline_captures_exceptions(self) -> None:
        """Without an executor, submit runs now and hands exceptions to the future."""
        future = Context().submit(int, "not a number")
        with pytest.raises(ValueError, match="invalid literal"):
            future.result()

    def test_submit_on_executor(self) -> None:
        """With an executor, work runs there."""
        with ThreadPoolExecutor(2) as pool:
            assert 6 == Context(executor=pool).submit(sum, [1, 2, 3]).result()

    def test_identical_calls_each_run(self) -> None:
        """An executor that caches identical tasks still runs every submitted call."""

        class CachingExecutor(ThreadPoolExecutor):
            def __init__(self) -> None:
                super().__init__(1)
                self.cache: dict[object, Future[object]] = {}

            def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
                key = (fn, repr(args), repr(kwargs))
                if key not in self.cache:
                    self.cache[key] = super().submit(fn, *args, **kwargs)
                return self.cache[key]

        calls: list[int] = []
        with CachingExecutor() as pool:
            context = Context(executor=pool)
            context.submit(calls.append, 1).result()
            context.submit(calls.append, 1).result()
        assert [1, 1] == calls

    def test_keyword_arguments_reach_the_function(self) -> None:
        """Keyword arguments go to the function, not to the executor."""
        with ThreadPoolExecutor(1) as pool:
            assert 8 == Context(executor=pool).submit(pow, 2, exp=3).result()

    def test_a_call_that_cannot_be_sent_fails_its_future(self) -> None:
        """An executor that rejects the call at submit time fails the future, not the caller."""

        class Rejecting(ThreadPoolExecutor):
            def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
                raise TypeError("cannot pickle '_thread.lock' object")

        with Rejecting(1) as pool:
            future = Context(executor=pool).submit(sum, [1])
        with pytest.raises(TypeError, match="cannot pickle"):
            future.result()

    def test_rejects_non_executor(self) -> None:
        """A value without submit() is not an executor."""
        with pytest.raises(TypeError, match="'executor' must be a concurrent.futures.Executor"):
            Context(executor="threads")  # type: ignore[arg-type]

    def test_rng_streams_are_reproducible_and_independent(self) -> None:
        """The same seed and stream give the same numbers; other streams differ."""
        a = Context(seed=3).rng("x").random(4)
        b = Context(seed=3).rng("x").random(4)
        c = Context(seed=3).rng("y").random(4)
        d = Context(seed=4).rng("x").random(4)
        assert a.tolist() == b.tolist()
        assert a.tolist() != c.tolist()
        assert a.tolist() != d.tolist()

    def test_rng_streams_with_a_common_prefix_differ(self) -> None:
        """Stream names are hashed whole, so 'bootstrap_a' and 'bootstrap_b' are independent."""
        a = Context().rng("bootstrap_a").random(4)
        b = Context().rng("bootstrap_b").random(4)
        assert a.tolist() != b.tolist()

    def test_tempdir_under_workdir_is_removed(self, tmp_path: Path) -> None:
        """tempdir() creates a folder under workdir and removes it afterwards."""
        with Context(workdir=tmp_path / "w").tempdir() as path:
            assert tmp_path / "w" == path.parent
            (path / "f").write_text("x")
        assert not path.exists()

    def test_report_calls_progress(self) -> None:
        """report() forwards lines to the progress callback."""
        lines: list[str] = []
        Context(progress=lines.append).report("step 1")
        assert ["step 1"] == lines

    def test_without_executor_is_picklable(self) -> None:
        """The context sent to workers drops the executor and callback."""
        import pickle

        with ThreadPoolExecutor(1) as pool:
            ctx = Context(executor=pool, progress=print, seed=5).without_executor()
        assert 5 == pickle.loads(pickle.dumps(ctx)).seed


class Trains:
    """A user's training function that declares the process-global state it draws from."""

    global_state = ("rng",)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def __call__(self, seed: int) -> str:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        return threading.current_thread().name


class TestContextGlobalState:
    def test_declared_work_never_overlaps_on_threads(self) -> None:
        """Calls declaring global_state, submitted to a thread pool, run one at a time."""
        train = Trains()
        with ThreadPoolExecutor(4) as pool:
            context = Context(executor=pool)
            futures = [context.submit(train, seed) for seed in range(4)]
            assert 4 == len([f.result() for f in futures])
        assert 1 == train.most_at_once

    def test_undeclared_work_runs_in_parallel(self) -> None:
        """Work that declares nothing keeps the pool's parallelism."""
        train = Trains()

        def plain(seed: int) -> str:  # the same work, without the declaration
            return train(seed)

        with ThreadPoolExecutor(4) as pool:
            context = Context(executor=pool)
            for future in [context.submit(plain, seed) for seed in range(4)]:
                future.result()
        assert train.most_at_once > 1

    def test_holder_of_the_lock_runs_declared_work_inline(self) -> None:
        """A declaring check on a thread pool that submits declared work runs it inline."""

        @attrs.frozen
        class TrainsTwice:
            name: str = "trains_twice"
            rubric: int | None = None
            global_state: tuple[str, ...] = ("rng",)

            def run(self, context: Context | None = None) -> Result:
                with ThreadPoolExecutor(1) as inner:
                    ran_on = Context(executor=inner).submit(Trains(), 0).result(timeout=10)
                here = threading.current_thread().name
                return Result(self.name, Status.PASS if ran_on == here else Status.FAIL, "")

        with ThreadPoolExecutor(2) as pool:
            result = Suite([TrainsTwice()]).run(executor=pool, progress=False)
        assert Status.PASS == result["trains_twice"].status


def test_finding_default_limit_and_message() -> None:
    """A bare finding has empty limit and message."""
    assert ("", "") == (Finding("x", Status.PASS).limit, Finding("x", Status.PASS).message)
