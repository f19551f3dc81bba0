"""One deadline per check: user code, requests and loads bounded; SystemExit is an ERROR."""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import mlchecks
from mlchecks import _global_state
from mlchecks._deadline import Deadline, TimedCaller, bounded_iter
from mlchecks.checks import (
    CanaryCheck,
    CanaryJudge,
    CheckpointRestoreCheck,
    LossDecreasesCheck,
    QualityCheck,
    ReproducibilityCheck,
    RollbackCheck,
    RollbackRecordCheck,
    SingleBatchCheck,
)
from mlchecks.checks._session import Session
from mlchecks.cli import main
from mlchecks.demo import DemoSystem, make_trainer
from mlchecks.demo.suite import demo_training_run
from mlchecks.exceptions import CheckTimeout
from mlchecks.protocols import Response
from mlchecks.result import Status
from mlchecks.serving import InProcessServer, Record, read_records


def _threads(prefix: str = "mlchecks-", since: set[threading.Thread] | None = None) -> list[str]:
    old = since or set()
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix) and t not in old]


def _wait_until_gone(
    prefix: str = "mlchecks-", timeout_s: float = 5.0, since: set[threading.Thread] | None = None
) -> list[str]:
    """The threads named ``prefix*`` (started after ``since``) still alive after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while _threads(prefix, since) and time.monotonic() < end:
        time.sleep(0.02)
    return _threads(prefix, since)


class _SlowTrainer:
    """The demo trainer whose train_step sleeps first (a hung data loader, a slow GPU)."""

    def __init__(self, seed: int, sleep_s: float) -> None:
        self.inner = make_trainer(seed)
        self.sleep_s = sleep_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def train_step(self, batch: Any) -> float:
        time.sleep(self.sleep_s)
        return float(self.inner.train_step(batch))


class TestTimedCaller:
    """`TimedCaller` gives up after its timeout and its abandoned worker ends."""

    def test_abandoned_worker_exits_after_its_call_returns(self) -> None:
        """A timed-out call's worker thread ends once the call returns, leaking nothing."""
        caller = TimedCaller()
        before = set(threading.enumerate())
        for _ in range(3):
            assert caller.call(lambda: time.sleep(0.3), timeout_s=0.01).timed_out
        caller.close()
        assert [] == _wait_until_gone("mlchecks-call", 2.0, since=before)

    def test_a_worker_acts_for_a_caller_holding_global_state(self) -> None:
        """User code on the worker may take a lock its caller holds, without deadlock."""
        caller = TimedCaller()
        work = _global_state.Exclusive(lambda: "ran", ("rng",))
        with _global_state.exclusive(["rng"]):
            call = caller.call(work, timeout_s=2.0)
        caller.close()
        assert ("ran", False) == (call.value, call.timed_out)


class TestDeadline:
    """`Deadline` bounds calls and names what ran over."""

    def test_call_raises_check_timeout_naming_what_ran(self) -> None:
        """A call still running at the deadline raises CheckTimeout with its description."""
        deadline = Deadline(0.2, "my_check")
        start = time.perf_counter()
        with pytest.raises(
            CheckTimeout, match=r"my_check ran past its check_timeout_s=0.2 s while sleep"
        ):
            deadline.call(time.sleep, 5.0, doing="sleep")
        assert time.perf_counter() - start < 1.0

    def test_call_reraises_the_functions_exception(self) -> None:
        """What the function raises comes back unchanged."""
        with pytest.raises(ZeroDivisionError), Deadline(5.0) as deadline:
            deadline.call(lambda: 1 / 0, doing="dividing")

    def test_no_deadline_runs_in_the_calling_thread(self) -> None:
        """Without a deadline the call runs here (no worker thread)."""
        assert threading.current_thread() is Deadline(None).call(
            threading.current_thread, doing="x"
        )

    def test_bounded_iter_stops_a_blocking_generator(self) -> None:
        """A traffic generator that blocks is abandoned at the deadline."""

        def traffic() -> Iterator[int]:
            yield 1
            time.sleep(5)
            yield 2

        got: list[int] = []
        with pytest.raises(CheckTimeout, match="reading"):
            got.extend(bounded_iter(traffic(), Deadline(0.3), "reading"))
        assert [1] == got


class TestSystemExit:
    """User code that calls sys.exit is an ERROR, never a pass, and never ends a run."""

    def test_run_check_turns_system_exit_into_error(self) -> None:
        """sys.exit(0) inside run() gives an ERROR result naming the call."""

        class Exits:
            name = "exits"
            rubric = None

            def run(self, context: Any = None) -> Any:
                sys.exit(0)

        result = mlchecks.run_check(Exits())
        assert Status.ERROR == result.status
        assert "sys.exit(0)" in result.summary

    def test_keyboard_interrupt_still_stops_the_run(self) -> None:
        """Ctrl-C is not swallowed."""

        class Interrupted:
            name = "interrupted"
            rubric = None

            def run(self, context: Any = None) -> Any:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            mlchecks.run_check(Interrupted())

    def test_exiting_train_step_is_an_error(self) -> None:
        """A train_step that calls sys.exit(0) makes the training check ERROR."""

        class Exiting(_SlowTrainer):
            def train_step(self, batch: Any) -> float:
                sys.exit(0)

        batches = DemoSystem(seed=0).batches(0)[:30]
        check = LossDecreasesCheck(make_trainer=lambda seed: Exiting(seed, 0.0), batches=batches)
        assert Status.ERROR == mlchecks.run_check(check).status

    def test_cli_run_exits_1_and_writes_the_report(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`mlchecks run` with a check that exits 0 and one that fails exits 1, report written."""
        (tmp_path / "exiting_checks.py").write_text(
            "import sys\n"
            "from mlchecks import Result, Status, Suite\n"
            "class Exits:\n"
            "    name = 'exits'\n"
            "    rubric = None\n"
            "    def run(self, context=None):\n"
            "        sys.exit(0)\n"
            "class Fails:\n"
            "    name = 'fails'\n"
            "    rubric = None\n"
            "    def run(self, context=None):\n"
            "        return Result(check='fails', status=Status.FAIL, summary='bad')\n"
            "suite = Suite([Fails(), Exits()], name='exits')\n",
            encoding="utf-8",
        )
        monkeypatch.chdir(tmp_path)
        report = tmp_path / "report.json"
        try:
            code = main(["run", "exiting_checks.py:suite", "--no-progress", "--json", str(report)])
        finally:
            sys.modules.pop("exiting_checks", None)
        assert 1 == code
        assert report.stat().st_size > 0


class TestTrainingDeadline:
    """Training checks end at their check_timeout_s even when user code does not return."""

    def test_sleeping_train_step_ends_in_error_naming_the_step(self) -> None:
        """A train_step that sleeps 15 s with check_timeout_s=1 ends in ERROR after about 1 s."""
        batches = DemoSystem(seed=0).batches(0)[:30]
        check = LossDecreasesCheck(
            make_trainer=lambda seed: _SlowTrainer(seed, 15.0), batches=batches, check_timeout_s=1.0
        )
        start = time.perf_counter()
        result = mlchecks.run_check(check)
        assert time.perf_counter() - start < 2.0
        assert Status.ERROR == result.status
        assert "check_timeout_s=1 s while train_step at step 0 of 30" in result.summary

    def test_a_slow_but_finishing_training_still_passes(self) -> None:
        """The deadline changes nothing for training that ends in time."""
        batches = DemoSystem(seed=0).batches(0)[:60]
        check = LossDecreasesCheck(make_trainer=make_trainer, batches=batches, check_timeout_s=60.0)
        assert Status.PASS == mlchecks.run_check(check).status

    def test_single_batch_check_is_bounded(self) -> None:
        """SingleBatchCheck with a train_step that hangs ends in ERROR at its check_timeout_s."""
        batch = DemoSystem(seed=0).batches(0)[0]
        check = SingleBatchCheck(
            make_trainer=lambda seed: _SlowTrainer(seed, 15.0), batch=batch, check_timeout_s=0.5
        )
        start = time.perf_counter()
        result = mlchecks.run_check(check)
        assert time.perf_counter() - start < 1.5
        assert Status.ERROR == result.status


class _Stalling:
    """An in-process endpoint whose answers for ``slow`` take ``delay_s``."""

    def __init__(self, server: InProcessServer, slow: str, delay_s: float) -> None:
        self.server, self.slow, self.delay_s = server, slow, delay_s

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        if (version or self.server.live_version()) == self.slow:
            time.sleep(self.delay_s)
        return self.server.infer(inputs, version)

    def live_version(self) -> str | None:
        return self.server.live_version()

    def set_live(self, version: str) -> None:
        self.server.set_live(version)


def _server() -> InProcessServer:
    server = InProcessServer().add("1", lambda x: [v * 1.0 for v in x])
    server = server.add("2", lambda x: [v * 2.0 for v in x])
    server.set_live("1")
    return server


class TestServingDeadline:
    """Serving checks end within check_timeout_s + 1 s against a server that stalls."""

    def test_rollback_against_a_stalling_candidate_ends_on_time(self) -> None:
        """RollbackCheck with check_timeout_s=3 ends within 4 s and restores the live version."""
        server = _server()
        endpoint = _Stalling(server, slow="2", delay_s=2.0)
        check = RollbackCheck(
            endpoint,
            endpoint,
            "2",
            probe_inputs=[[1.0], [2.0]],
            budget_s=3.0,
            deploy_timeout_s=2.0,
            request_timeout_s=1.0,
            check_timeout_s=3.0,
        )
        before = set(threading.enumerate())
        start = time.perf_counter()
        result = mlchecks.run_check(check)
        elapsed = time.perf_counter() - start
        assert elapsed < 4.0, elapsed
        assert Status.PASS != result.status
        assert "1" == server.live_version()
        assert [] == _wait_until_gone(timeout_s=3.0, since=before)

    def test_rollback_keeps_a_weighted_split(self) -> None:
        """A weighted split active before the check is active again after it."""
        server = _server()
        server.set_weights({"1": 0.9, "2": 0.1})
        check = RollbackCheck(server, server, "2", probe_inputs=[[1.0], [2.0]], known_good="1")
        mlchecks.run_check(check)
        assert {"1": 0.9, "2": 0.1} == server.weights()

    def test_session_send_past_the_deadline_raises(self) -> None:
        """A request cut short by the check's deadline is a CheckTimeout, not a failed request."""
        endpoint = _Stalling(_server(), slow="1", delay_s=2.0)
        with (
            Deadline(0.3, "canary") as deadline,
            Session(endpoint, request_timeout_s=5.0, deadline=deadline) as session,
            pytest.raises(CheckTimeout, match="canary ran past"),
        ):
            session.send([1.0])

    def test_canary_with_blocking_traffic_ends_on_time(self) -> None:
        """CanaryCheck whose live traffic blocks ends in ERROR at its check_timeout_s."""
        server = _server()

        def traffic() -> Iterator[list[float]]:
            yield [1.0]
            time.sleep(30)
            yield [2.0]

        check = CanaryCheck(
            server,
            "2",
            probe_inputs=[[1.0], [2.0]],
            load=False,
            traffic=traffic,
            offline_predictions=[[2.0], [4.0]],
            check_timeout_s=1.0,
        )
        start = time.perf_counter()
        result = mlchecks.run_check(check)
        assert time.perf_counter() - start < 2.0
        assert Status.ERROR == result.status
        assert "reading the next traffic request" in result.summary

    def test_canaries_against_a_slow_candidate_leave_no_thread(self) -> None:
        """Five canaries whose requests time out leave no worker thread behind."""
        server = _server()
        endpoint = _Stalling(server, slow="2", delay_s=0.5)
        before = set(threading.enumerate())
        for _ in range(5):
            check = CanaryCheck(
                endpoint,
                "2",
                probe_inputs=[[1.0], [2.0]],
                load=False,
                baseline="1",
                request_timeout_s=0.1,
            )
            assert Status.FAIL == mlchecks.run_check(check).status
        assert [] == _wait_until_gone(timeout_s=2.0, since=before)


def _slow_run(seed: int) -> Any:
    time.sleep(15)
    return demo_training_run(seed, data_seed=0)


class TestUserCodeDeadline:
    """predict, make_run and checkpointed training are bounded by check_timeout_s too."""

    def test_quality_check_with_a_hanging_predict(self) -> None:
        """A predict that hangs ends QualityCheck in ERROR at its check_timeout_s."""

        def predict(inputs: Any) -> Any:
            time.sleep(15)
            return inputs

        check = QualityCheck(
            labels=[0, 1] * 50,
            inputs=[0, 1] * 50,
            predict=predict,
            metric_limits={"accuracy": 0.5},
            check_timeout_s=0.5,
        )
        start = time.perf_counter()
        result = mlchecks.run_check(check)
        assert time.perf_counter() - start < 1.5
        assert Status.ERROR == result.status
        assert "while predict(inputs)" in result.summary

    @pytest.mark.parametrize("workers", [None, 2])
    def test_reproducibility_with_a_hanging_make_run(self, workers: int | None) -> None:
        """make_run that hangs ends the check in ERROR, inline or on an executor."""
        check = ReproducibilityCheck(make_run=_slow_run, seeds=(0, 0), check_timeout_s=0.5)
        executor = None if workers is None else ThreadPoolExecutor(workers)
        start = time.perf_counter()
        try:
            result = mlchecks.run_check(check, mlchecks.Context(executor=executor))
        finally:
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        assert time.perf_counter() - start < 1.5
        assert Status.ERROR == result.status
        assert "while make_run(0)" in result.summary

    @pytest.mark.slow
    def test_a_suite_on_threads_does_not_deadlock(self) -> None:
        """A training check in a Suite on threads (holding the RNG lock) runs its user code
        on the deadline's worker without waiting for that lock."""
        system = DemoSystem(seed=0)
        checks = [
            ReproducibilityCheck(
                make_run=functools.partial(demo_training_run, data_seed=0),
                seeds=(0, 0),
                check_timeout_s=120.0,
            ),
            LossDecreasesCheck(
                make_trainer=make_trainer, batches=system.batches(0)[:40], check_timeout_s=120.0
            ),
        ]
        with ThreadPoolExecutor(2) as executor:
            result = mlchecks.Suite(checks).run(executor=executor, progress=False)
        assert [Status.PASS, Status.PASS] == [r.status for r in result.results]

    def test_checkpoint_restore_in_process_is_bounded(self) -> None:
        """CheckpointRestoreCheck whose train_step hangs ends in ERROR at check_timeout_s."""
        batches = DemoSystem(seed=0).batches(0)[:20]
        check = CheckpointRestoreCheck(
            make_trainer=lambda seed: _SlowTrainer(seed, 15.0),
            batches=batches,
            check_timeout_s=0.5,
        )
        start = time.perf_counter()
        result = mlchecks.run_check(check)
        assert time.perf_counter() - start < 1.5
        assert Status.ERROR == result.status


class TestRecordDeadline:
    """The checks that read a traffic record stop at check_timeout_s, and so does the reader."""

    def test_judge_on_a_followed_log_that_never_grows(self, tmp_path: Path) -> None:
        """CanaryJudge following a silent log ends in ERROR at its deadline and stops the reader."""
        path = tmp_path / "requests.jsonl"
        path.write_text('{"version": "1", "latency_s": 0.01}\n', encoding="utf-8")
        log = read_records(path, follow=True, poll_s=0.02)
        judge = CanaryJudge(baseline="1", candidate="2", records=log, check_timeout_s=0.5)
        start = time.perf_counter()
        result = mlchecks.run_check(judge)
        assert time.perf_counter() - start < 1.5
        assert Status.ERROR == result.status
        assert "reading the records" in result.summary
        assert log.stopped

    def test_rollback_record_on_a_blocking_source(self) -> None:
        """RollbackRecordCheck whose record source blocks ends in ERROR at its deadline."""

        def records() -> Iterator[Record]:
            yield Record(version="1", time=0.0)
            time.sleep(15)

        check = RollbackRecordCheck(
            records, known_good="1", rolled_back_at=0.0, check_timeout_s=0.5
        )
        start = time.perf_counter()
        result = mlchecks.run_check(check)
        assert time.perf_counter() - start < 1.5
        assert Status.ERROR == result.status
