from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import attrs
import pytest

import mlchecks
import mlchecks.score
import mlchecks.suite
from mlchecks import MLTestScore, Result, Status, Suite, SuiteResult
from mlchecks.check import Context
from mlchecks.score import ScoreRow, score_rows
from mlchecks.suite import RUBRIC_TESTS
from mlchecks.testing import StaticCheck


@attrs.frozen
class Crashes:
    name: str = "crashes"
    rubric: int | None = 5

    def run(self, context: Context | None = None) -> Result:
        raise RuntimeError("boom")


@attrs.frozen
class ReportsPid:
    """Records which process ran it, to prove work left this one."""

    name: str
    rubric: int | None = None

    def run(self, context: Context | None = None) -> Result:
        return Result(self.name, Status.PASS, "ran", metrics={"pid": float(os.getpid())})


@attrs.frozen
class Sleeps:
    name: str
    seconds: float = 0.2
    rubric: int | None = None

    def run(self, context: Context | None = None) -> Result:
        time.sleep(self.seconds)
        return Result(self.name, Status.PASS, "slept")


@attrs.frozen
class DrawsFromGlobalRandom:
    """A user's check whose code seeds and draws from ``random``'s process-global generator."""

    name: str
    declared: bool = True
    rubric: int | None = None

    @property
    def global_state(self) -> tuple[str, ...]:
        return ("rng",) if self.declared else ()

    def run(self, context: Context | None = None) -> Result:
        random.seed(0)
        draws = []
        for _ in range(30):
            draws.append(random.random())
            time.sleep(0.0005)  # let another thread run in between, as real training does
        expected = random.Random(0)
        same = draws == [expected.random() for _ in range(30)]
        return Result(self.name, Status.PASS if same else Status.FAIL, "draws reproduced")


def mixed_suite() -> Suite:
    return Suite(
        [
            StaticCheck("passes", Status.PASS, rubric=1),
            StaticCheck("fails", Status.FAIL, rubric=4),
            Crashes(),
        ],
        name="mixed",
    )


class TestSuiteComposition:
    def test_nested_suites_flatten_in_order(self) -> None:
        """Checks of nested suites are spliced in place."""
        inner = Suite([StaticCheck("b"), StaticCheck("c")], manual={3: "runbook"})
        suite = Suite([StaticCheck("a"), inner, StaticCheck("d")])
        assert ["a", "b", "c", "d"] == [c.name for c in suite.checks]
        assert {3: "runbook"} == suite.manual

    def test_rejects_non_checks(self) -> None:
        """Something that is not a Check is named in the error."""
        with pytest.raises(
            TypeError, match=r"'checks' must contain Check objects .* \(got 42 that is a int\)"
        ):
            Suite([42])  # type: ignore[list-item]

    def test_manual_note_required(self) -> None:
        """A manual declaration needs a note."""
        with pytest.raises(ValueError, match=r"'manual\[3\]' must say how"):
            Suite([], manual={3: " "})

    def test_manual_key_range(self) -> None:
        """Manual keys are rubric tests 1..7."""
        with pytest.raises(ValueError, match="'manual' keys must be rubric tests 1..7"):
            Suite([], manual={9: "x"})


class TestSuiteRun:
    def test_sequential_statuses(self) -> None:
        """A failing and a crashing check fail the suite; order is kept."""
        result = mixed_suite().run(progress=False)
        assert [Status.PASS, Status.FAIL, Status.ERROR] == [r.status for r in result]
        assert Status.ERROR == result.status
        assert not result.passed
        assert "boom" in result["crashes"].error.traceback  # type: ignore[union-attr]

    def test_error_alone_fails_the_suite(self) -> None:
        """ERROR always fails a suite."""
        result = Suite([StaticCheck("ok"), Crashes()]).run(progress=False)
        assert not result.passed

    def test_fail_fast_skips_the_rest(self) -> None:
        """After the first FAIL the remaining checks are SKIP with a reason."""
        result = mixed_suite().run(fail_fast=True, progress=False)
        assert [Status.PASS, Status.FAIL, Status.SKIP] == [r.status for r in result]
        assert "fail_fast" in result["crashes"].summary

    def test_thread_pool_keeps_order(self) -> None:
        """On threads the results come back in suite order."""
        suite = Suite([Sleeps("slow", 0.3), Sleeps("fast", 0.0), StaticCheck("x", Status.FAIL)])
        with ThreadPoolExecutor(3) as pool:
            result = suite.run(executor=pool, progress=False)
        assert ["slow", "fast", "x"] == [r.check for r in result]
        assert Status.FAIL == result.status

    def test_thread_pool_runs_concurrently(self) -> None:
        """Two sleeping checks on two threads overlap."""
        suite = Suite([Sleeps("a", 0.5), Sleeps("b", 0.5)])
        with ThreadPoolExecutor(2) as pool:
            start = time.perf_counter()
            suite.run(executor=pool, progress=False)
            elapsed = time.perf_counter() - start
        assert elapsed < 0.95

    def test_process_pool(self) -> None:
        """Checks run in worker processes; statuses and tracebacks come back."""
        suite = Suite([ReportsPid("pid"), *mixed_suite().checks])
        with ProcessPoolExecutor(2) as pool:
            result = suite.run(executor=pool, progress=False)
        assert [Status.PASS, Status.PASS, Status.FAIL, Status.ERROR] == [r.status for r in result]
        assert os.getpid() != int(result["pid"].metrics["pid"])
        assert "boom" in result["crashes"].error.traceback  # type: ignore[union-attr]

    def test_unpicklable_check_becomes_error(self) -> None:
        """A check that cannot travel to a process is an ERROR, not a crash."""
        local = StaticCheck("local", summary="x")
        unpicklable = attrs.evolve(local, summary="y")
        object.__setattr__(unpicklable, "summary", lambda: None)  # lambdas do not pickle
        with ProcessPoolExecutor(1) as pool:
            result = Suite([unpicklable]).run(executor=pool, progress=False)
        assert Status.ERROR == result.status

    def test_executor_from_context(self) -> None:
        """Context.executor is used when no executor argument is given."""
        with ThreadPoolExecutor(2) as pool:
            result = Suite([ReportsPid("p")]).run(Context(executor=pool), progress=False)
        assert result.passed

    def test_progress_callable(self) -> None:
        """A callable progress receives (done, total, result) per check."""
        seen: list[tuple[int, int, str]] = []
        mixed_suite().run(progress=lambda d, n, r: seen.append((d, n, r.check)))
        assert [(1, 3, "passes"), (2, 3, "fails"), (3, 3, "crashes")] == seen

    def test_progress_lines_without_tqdm(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without tqdm, a line per check goes to stderr."""
        import builtins

        real_import = builtins.__import__

        def no_tqdm(name: str, *args: object, **kwargs: object) -> object:
            if name.startswith("tqdm"):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(builtins, "__import__", no_tqdm)
        mixed_suite().run(progress=True)
        err = capsys.readouterr().err
        assert "[1/3] PASS  passes" in err
        assert "[3/3] ERROR crashes" in err

    def test_progress_with_tqdm(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With tqdm installed, a bar is drawn on stderr and closed."""
        pytest.importorskip("tqdm")
        mixed_suite().run(progress=True)
        assert "mlchecks" in capsys.readouterr().err

    def test_empty_suite_passes(self) -> None:
        """No checks means nothing failed."""
        result = Suite([]).run(progress=False)
        assert (Status.PASS, 0) == (result.status, len(result))


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A real Dask cluster of two worker processes on 127.0.0.1, shared by the Dask tests."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.integration
class TestDask:
    def test_local_cluster_executor(self, dask_client: Any) -> None:
        """A real Dask LocalCluster (processes) runs the suite through get_executor()."""
        suite = Suite([ReportsPid("pid"), *mixed_suite().checks])
        result = suite.run(executor=dask_client.get_executor(), progress=False)
        assert [Status.PASS, Status.PASS, Status.FAIL, Status.ERROR] == [r.status for r in result]
        assert os.getpid() != int(result["pid"].metrics["pid"])

    def test_identical_calls_are_not_merged(self, dask_client: Any) -> None:
        """With Dask's default (pure) executor, two identical submissions still run twice."""
        context = Context(executor=dask_client.get_executor())
        first = context.submit(time.perf_counter_ns).result()
        second = context.submit(time.perf_counter_ns).result()
        assert first != second


class TestProcessGlobalState:
    def test_declaring_checks_pass_on_threads(self) -> None:
        """Checks declaring global_state run one at a time on threads, so each reproduces."""
        suite = Suite([DrawsFromGlobalRandom(f"draws_{i}") for i in range(4)])
        with ThreadPoolExecutor(4) as pool:
            result = suite.run(executor=pool, progress=False)
        assert [Status.PASS] * 4 == [r.status for r in result]

    def test_results_say_they_ran_one_at_a_time(self) -> None:
        """On threads, a declaring check's summary and details say it ran one at a time."""
        with ThreadPoolExecutor(2) as pool:
            result = Suite([DrawsFromGlobalRandom("draws")]).run(executor=pool, progress=False)
        note = "ran one at a time: uses process-global RNG state on a thread pool"
        assert note == result["draws"].details["ran_one_at_a_time"]
        assert f"draws reproduced ({note})" == result["draws"].summary
        assert "ran one at a time" in str(result)

    def test_undeclared_checks_are_left_alone(self) -> None:
        """A check that declares nothing runs as before and gets no note."""
        suite = Suite([DrawsFromGlobalRandom("plain", declared=False), StaticCheck("s")])
        with ThreadPoolExecutor(2) as pool:
            result = suite.run(executor=pool, progress=False)
        assert all("ran_one_at_a_time" not in r.details for r in result)

    def test_inline_and_process_pool_get_no_note(self) -> None:
        """Inline and on a process pool nothing is shared, so nothing is noted."""
        suite = Suite([DrawsFromGlobalRandom("draws")])
        inline = suite.run(progress=False)
        with ProcessPoolExecutor(1) as pool:
            processes = suite.run(executor=pool, progress=False)
        for result in (inline, processes):
            assert Status.PASS == result["draws"].status
            assert "ran_one_at_a_time" not in result["draws"].details

    def test_trainer_declaration_counts(self) -> None:
        """A check's ``trainer`` that declares global_state makes the check declare it."""

        class Trainer:
            global_state = ("rng",)

        @attrs.frozen
        class UsesTrainer:
            trainer: Any
            name: str = "uses_trainer"
            rubric: int | None = None

            def run(self, context: Context | None = None) -> Result:
                return Result(self.name, Status.PASS, "ok")

        with ThreadPoolExecutor(1) as pool:
            result = Suite([UsesTrainer(Trainer())]).run(executor=pool, progress=False)
        assert "ran_one_at_a_time" in result["uses_trainer"].details


class TestScore:
    def test_points(self) -> None:
        """1 for automated and passed, 0.5 for manual, 0 for failed or missing."""
        score = MLTestScore.from_results(
            [
                Result("a", Status.PASS, rubric=1),
                Result("b", Status.WARN, rubric=2),
                Result("c", Status.PASS, rubric=4),
                Result("d", Status.FAIL, rubric=4),
                Result("e", Status.SKIP, rubric=5),
            ],
            manual={3: "runbook", 4: "manual review"},
        )
        assert {1: 1.0, 2: 1.0, 3: 0.5, 4: 0.5, 5: 0.0, 6: 0.0, 7: 0.0} == dict(score.points)
        assert 3.0 == score.total

    @pytest.mark.parametrize(
        ("total", "start"),
        [
            (0.0, "More of a research project"),
            (0.5, "Not totally untested"),
            (1.0, "Not totally untested"),
            (2.0, "There's been a first pass"),
            (3.0, "Reasonably tested"),
            (5.0, "Strong levels"),
            (5.5, "Exceptional levels"),
            (7.0, "Exceptional levels"),
        ],
    )
    def test_reading(self, total: float, start: str) -> None:
        """The reading follows the paper's bands."""
        points = dict.fromkeys(RUBRIC_TESTS, 0.0)
        remaining = total
        for test in points:
            take = min(1.0, remaining)
            points[test] = take
            remaining -= take
        assert MLTestScore(points=points).reading.startswith(start)

    def test_round_trip(self) -> None:
        """The score survives to_dict/from_dict."""
        score = MLTestScore.from_results([Result("a", Status.PASS, rubric=7)], {2: "x"})
        assert score == MLTestScore.from_dict(score.to_dict())

    def test_lives_in_mlchecks_score(self) -> None:
        """MLTestScore and RUBRIC_TESTS come from mlchecks.score, re-exported where they were."""
        assert mlchecks.score.MLTestScore is mlchecks.suite.MLTestScore is mlchecks.MLTestScore
        assert mlchecks.score.RUBRIC_TESTS is mlchecks.suite.RUBRIC_TESTS


class TestScoreRows:
    """`score_rows` is the one score table: the CLI and every report print its rows."""

    def test_how_each_test_earned_its_points(self) -> None:
        """Automated checks with their statuses, the manual note, both, or 'not covered'."""
        results = [
            Result("repro", Status.PASS, rubric=1),
            Result("quality", Status.FAIL, rubric=4),
            Result("canary", Status.SKIP, rubric=6),
        ]
        rows = score_rows(results, MLTestScore.from_results(results, {4: "review", 7: "runbook"}))
        assert 7 == len(rows)
        assert ScoreRow(1, RUBRIC_TESTS[1], 1.0, "automated: repro (PASS)") == rows[0]
        assert "not covered" == rows[1].how
        assert (0.5, "automated: quality (FAIL); done by hand: review") == rows[3][2:]
        assert (0.0, "automated: canary (SKIP)") == rows[5][2:]
        assert (0.5, "done by hand: runbook") == rows[6][2:]

    def test_cli_and_reports_print_the_same_rows(self) -> None:
        """The CLI's score table and the Markdown and HTML reports show the same words."""
        from mlchecks.cli import score_table

        suite = Suite([StaticCheck("repro", Status.PASS, rubric=1)], manual={7: "runbook"})
        result = suite.run(progress=False)
        table, markdown, page = score_table(result), result.to_markdown(), result.to_html()
        for row in score_rows(result.results, result.score):
            assert row.how in table
            assert f"| {row.test} | {row.title} | {row.points:g} | {row.how} |" in markdown
            assert f"<td>{row.how}</td>" in page


class TestSuiteResult:
    def test_round_trip(self) -> None:
        """to_dict/from_dict is lossless, including the manual notes and the score."""
        suite = Suite(mixed_suite().checks, name="n", manual={6: "canary runbook"})
        result = suite.run(progress=False)
        back = SuiteResult.from_dict(result.to_dict())
        assert result == back
        assert 0.5 == back.score.points[6]

    def test_getitem_names_checks(self) -> None:
        """Looking up an unknown check lists the known ones."""
        result = mixed_suite().run(progress=False)
        with pytest.raises(KeyError, match="'passes'"):
            result["nope"]

    def test_counts(self) -> None:
        """counts() tallies statuses."""
        counts = mixed_suite().run(progress=False).counts()
        assert (1, 1, 1, 0) == (
            counts[Status.PASS],
            counts[Status.FAIL],
            counts[Status.ERROR],
            counts[Status.SKIP],
        )


@attrs.frozen
class OddRubric:
    """A user's check that declares a rubric outside 1..7 and fails."""

    name: str = "odd"
    rubric: Any = 9

    def run(self, context: Context | None = None) -> Result:
        return Result(self.name, Status.FAIL, "failed")


@attrs.frozen
class EndsItsProcess:
    """A user's check that ends its worker process (``os._exit``), as a crash would."""

    name: str = "ends_its_process"
    rubric: int | None = None

    def run(self, context: Context | None = None) -> Result:
        time.sleep(0.2)  # the other checks are queued or running when the worker dies
        os._exit(3)


class TestSuiteHolds:
    @pytest.mark.parametrize("bad", [3, "", "   ", "a\nb", "\x1b[32mALL PASSED", "\ud800", None])
    def test_name_is_printable_text(self, bad: Any) -> None:
        """Suite(name=3) or a name with control characters is refused, naming 'name'."""
        with pytest.raises(mlchecks.exceptions.InvalidInput, match="'name' must be a non-empty"):
            Suite([], name=bad)

    @pytest.mark.parametrize("bad", [3, "checks", None])
    def test_checks_must_be_an_iterable_of_checks(self, bad: Any) -> None:
        """Suite(3) is a TypeError naming 'checks', not "'int' object is not iterable"."""
        with pytest.raises(TypeError, match="'checks' must be an iterable of Check objects"):
            Suite(bad)

    @pytest.mark.parametrize("bad", [{"x": "runbook"}, {1.5: "runbook"}, {True: "r"}, [3]])
    def test_manual_keys_are_rubric_tests(self, bad: Any) -> None:
        """manual= with keys that are not rubric tests 1..7 is an InvalidInput naming 'manual'."""
        with pytest.raises(mlchecks.exceptions.InvalidInput, match="'manual'"):
            Suite([], manual=bad)

    @pytest.mark.parametrize("executor", [None, "threads"])
    def test_fail_fast_with_an_odd_rubric(self, executor: str | None) -> None:
        """fail_fast after a user check with rubric=9 skips the rest instead of crashing."""
        suite = Suite([OddRubric(), StaticCheck("later", Status.PASS, rubric=2)])
        if executor is None:
            result = suite.run(fail_fast=True, progress=False)
        else:
            with ThreadPoolExecutor(1) as pool:
                result = suite.run(executor=pool, fail_fast=True, progress=False)
        assert [Status.FAIL, Status.SKIP] == [r.status for r in result.results]
        assert [None, 2] == [r.rubric for r in result.results]

    def test_a_dead_worker_is_reported_as_such(self) -> None:
        """A check that kills its process-pool worker is reported as the one whose worker died;
        the checks the broken pool took down with it run again on a fresh worker and pass."""
        checks: list[Any] = [EndsItsProcess(), Sleeps("a", 1.0), ReportsPid("b"), StaticCheck("c")]
        with ProcessPoolExecutor(2) as pool:
            result = Suite(checks).run(executor=pool, progress=False)
        dead, *others = result.results
        assert Status.ERROR == dead.status
        assert dead.error is not None
        assert "BrokenProcessPool" == dead.error.type
        assert "worker process died" in dead.summary
        assert "could not be sent" not in dead.summary
        assert [Status.PASS] * 3 == [r.status for r in others]
        for other in others:
            assert "ran again alone on a fresh worker process" in other.summary

    def test_fail_fast_after_a_dead_worker(self) -> None:
        """With fail_fast, the dead worker's check is an ERROR and the lost checks are SKIP."""
        checks: list[Any] = [EndsItsProcess(), Sleeps("a", seconds=1.0)]
        with ProcessPoolExecutor(2) as pool:
            result = Suite(checks).run(executor=pool, fail_fast=True, progress=False)
        assert Status.ERROR == result.results[0].status
        assert result.results[1].status in (Status.SKIP, Status.PASS)


def test_the_score_reading_never_praises_a_failing_system() -> None:
    """6 / 7 with a failing check reads as a failure to fix, not 'exceptional'."""
    results = [Result(f"c{t}", Status.PASS, rubric=t) for t in range(1, 8)]
    passing = MLTestScore.from_results(results)
    assert passing.reading.startswith("Exceptional")
    assert str(passing).startswith("ML Test Score (infrastructure): 7 / 7 rubric tests.")
    results[3] = Result("quality", Status.FAIL, rubric=4)
    results.append(Result("canary_2", Status.ERROR, rubric=6))
    failing = MLTestScore.from_results(results)
    assert failing.total == 5.0
    assert failing.failing == (4, 6)
    assert failing.reading.startswith("Rubric tests 4, 6 failed: fix them first")
    assert MLTestScore.from_dict(failing.to_dict()) == failing
