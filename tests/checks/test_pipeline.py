"""Tests for mlchecks.checks.pipeline: `Stage`, `Pipeline` and `PipelineCheck`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest

from mlchecks import AtMost, Check, Result, Status, run_check
from mlchecks.checks.pipeline import Pipeline, PipelineCheck, Stage, StageReport, count_rows
from mlchecks.demo import (
    CLASSES,
    MLPTrainer,
    ServedModel,
    make_batches,
    make_table,
    predict_proba,
    split_table,
)
from mlchecks.demo.data import COLUMNS
from mlchecks.demo.faults import components
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving import InProcessServer


def demo_check(fault: str | None = None, **overrides: Any) -> PipelineCheck:
    """The demo system's pipeline: table -> split -> fitted features -> MLP -> served model.

    The serving half publishes the trained model to a registry the `InProcessServer`
    loads from; the served model computes its features with the serving path
    (``transform_row``), so ``training_serving_skew`` shows up in both comparisons.
    """
    feature_pipeline = components(fault).pipeline
    registry: dict[str, ServedModel] = {}
    server = InProcessServer(loader=registry.__getitem__)

    def train(features: np.ndarray, splits: Any) -> MLPTrainer:
        trainer = MLPTrainer(features.shape[1], len(CLASSES), seed=0, hidden=16, lr=0.05)
        for batch in make_batches(features, splits.train["label"], 60, 64, 0):
            trainer.train_step(batch)
        return trainer

    def deploy(outputs: Any) -> str:
        registry["p1"] = ServedModel.from_trainer(outputs["train"], outputs["fit"], version="p1")
        return "p1"

    pipeline = Pipeline(
        [
            Stage("source", lambda: make_table(2000, seed=0), columns=COLUMNS),
            Stage("split", split_table),
            Stage("fit", lambda splits: feature_pipeline().fit(splits.train)),
            Stage(
                "features",
                lambda fitted, splits: fitted.transform(splits.train),
                inputs=("fit", "split"),
                shape=(None, 18),
                dtype=np.floating,
                finite=True,
            ),
            Stage("train", train, inputs=("features", "split")),
        ]
    )
    settings: dict[str, Any] = {
        "holdout": lambda out: out["split"].holdout,
        "training_features": lambda out, rows: out["fit"].transform(rows),
        "serving_features": lambda out, row: out["fit"].transform_row(row),
        "feature_names": lambda out: out["fit"].feature_names,
        "server": server,
        "deploy": deploy,
        "predict": lambda out, features: predict_proba(out["train"].params(), features),
        "n_rows": 100,
    }
    settings.update(overrides)
    return PipelineCheck(pipeline, **settings)


class TestCountRows:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (np.zeros((5, 2)), 5),
            ({"a": [1, 2], "b": [3, 4]}, 2),
            ({}, 0),
            ([{"a": 1}, {"a": 2}, {"a": 3}], 3),
            ((np.zeros((4, 2)), np.zeros(4)), 4),
            ((np.zeros(4), np.zeros(3)), None),
            (np.float64(1.0), None),
            ({"lr": 0.1}, None),
            (None, None),
        ],
    )
    def test_counts_rows_of_tabular_values(self, value: Any, expected: int | None) -> None:
        """Arrays, column mappings, records and (X, y) tuples have rows; scalars do not."""
        assert expected == count_rows(value)

    def test_counts_data_frame_rows(self) -> None:
        """A pandas data frame counts its rows."""
        pd = pytest.importorskip("pandas")
        assert 3 == count_rows(pd.DataFrame({"a": [1, 2, 3]}))


class TestStage:
    def test_contract_holds_for_a_good_output(self) -> None:
        """An output meeting every clause has no violations."""
        stage = Stage(
            "f", abs, columns=("a",), shape=(None, 1), dtype=np.floating, finite=True, max_dropped=0
        )
        assert () == stage.check_output({"a": np.array([1.0, 2.0])}, rows_in=2)

    @pytest.mark.parametrize(
        ("stage", "output", "rows_in", "expected"),
        [
            (Stage("s", abs), np.zeros((0, 3)), None, "empty"),
            (Stage("s", abs, columns=("a", "b")), {"a": [1]}, None, "missing columns ['b']"),
            (Stage("s", abs, columns=("a",)), np.zeros(3), None, "no named columns"),
            (Stage("s", abs, shape=(None, 4)), np.zeros((3, 5)), None, "shape (3, 5)"),
            (Stage("s", abs, dtype=np.floating), {"a": np.arange(3)}, None, "dtype is not"),
            (Stage("s", abs, finite=True), np.array([1.0, np.nan]), None, "1 NaN or infinite"),
            (Stage("s", abs, max_dropped=0.1), np.zeros(5), 10, "dropped 5 of 10"),
            (Stage("s", abs, max_added=0.0), np.zeros(12), 10, "added 2 rows"),
            (Stage("s", abs, max_dropped=0.0), np.zeros(3), None, "cannot compare rows"),
            (Stage("s", abs), None, None, "returned None"),
        ],
    )
    def test_each_clause_reports_its_violation(
        self, stage: Stage, output: Any, rows_in: int | None, expected: str
    ) -> None:
        """Each contract clause names what is wrong."""
        (problem,) = stage.check_output(output, rows_in)
        assert expected in problem

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"name": ""}, "'name'"),
            ({"fn": 3}, "'fn' must be callable"),
            ({"shape": (None, -1)}, "'shape'"),
            ({"dtype": "not a dtype"}, "'dtype'"),
            ({"max_dropped": -0.5}, "'max_dropped'"),
            ({"columns": "abc"}, "'columns' must be a sequence of names"),
        ],
    )
    def test_rejects_bad_fields(self, kwargs: dict[str, Any], match: str) -> None:
        """Fields are validated at construction with the field named."""
        fields: dict[str, Any] = {"name": "s", "fn": abs, **kwargs}
        with pytest.raises(InvalidInput, match=match):
            Stage(**fields)

    def test_only_name_and_fn_are_positional(self) -> None:
        """The contract clauses are keyword-only."""
        with pytest.raises(TypeError):
            Stage("s", abs, *[("a",)])

    def test_row_limits_take_a_condition(self) -> None:
        """max_dropped is a limit: a number becomes AtMost, None switches it off."""
        assert AtMost(0.1) == Stage("s", abs, max_dropped=0.1).max_dropped
        assert Stage("s", abs).max_dropped is None
        with pytest.raises(InvalidInput, match="'max_dropped' must be in"):
            Stage("s", abs, max_dropped=1.5)

    def test_report_seconds_was_renamed(self) -> None:
        """StageReport's seconds is now duration_s."""
        with pytest.raises(TypeError, match="renamed to 'duration_s'"):
            StageReport("s", "ok", seconds=1.0)


class TestPipeline:
    def test_runs_stages_in_order_with_named_inputs(self) -> None:
        """Stages get the previous output, or the named earlier outputs in order."""
        pipe = Pipeline(
            [
                Stage("a", lambda: [1, 2, 3]),
                Stage("b", lambda xs: [x * 10 for x in xs]),
                Stage("c", lambda a, b: list(zip(a, b, strict=True)), inputs=("a", "b")),
            ]
        )
        run = pipe.run()
        assert [(1, 10), (2, 20), (3, 30)] == run.outputs["c"]
        assert [None, 3, 3] == [r.rows_in for r in run.reports]
        assert run.ok

    def test_a_raising_stage_stops_the_run(self) -> None:
        """Later stages are skipped and the error is kept."""

        def broken(_: Any) -> Any:
            raise KeyError("label")

        run = Pipeline([Stage("a", lambda: [1]), Stage("b", broken), Stage("c", len)]).run()
        assert ["ok", "failed", "skipped"] == [r.status for r in run.reports]
        assert "KeyError" == run.reports[1].error.type  # type: ignore[union-attr]
        assert not run.completed

    def test_reports_dropped_rows(self) -> None:
        """A filtering stage reports how many rows it dropped."""
        run = Pipeline([Stage("a", lambda: list(range(10))), Stage("b", lambda r: r[:7])]).run()
        assert 3 == run.reports[1].dropped

    @pytest.mark.parametrize(
        ("stages", "match"),
        [
            ([], "must not be empty"),
            ([Stage("a", abs), Stage("a", abs)], "unique"),
            ([Stage("a", abs, inputs=("x",))], "takes no inputs"),
            ([Stage("a", abs), Stage("b", abs, inputs=("c",))], "not an earlier stage"),
            (["not a stage"], "Stage objects"),
        ],
    )
    def test_rejects_malformed_stage_lists(self, stages: list[Any], match: str) -> None:
        """Stage lists are validated at construction."""
        with pytest.raises(InvalidInput, match=match):
            Pipeline(stages)


class TestPipelineCheckOnTheDemo:
    def test_passes_on_the_healthy_demo(self) -> None:
        """The healthy demo pipeline runs, meets its contracts and serves what it trained."""
        result = run_check(demo_check())
        assert Status.PASS == result.status, str(result)
        assert 0.0 == result.metrics["skew.n_features"]
        assert 0.0 == result.metrics["prediction.mismatch_fraction"]
        assert 5.0 == result.metrics["n_stages"]
        assert {"source", "split", "fit", "features", "train"} <= {
            s["stage"] for s in result.details["stages"]
        }
        assert 3 == result.rubric

    def test_fails_on_training_serving_skew_naming_the_feature(self) -> None:
        """The planted skew fails, naming 'income' and showing example rows."""
        result = run_check(demo_check("training_serving_skew"))
        assert Status.FAIL == result.status
        finding = result.finding("training_serving_skew")
        assert Status.FAIL == finding.status
        assert "feature 'income'" in finding.message
        assert "row 0: training" in finding.message
        assert "also beyond the limit" not in finding.message
        assert 1.0 == finding.observed
        assert Status.FAIL == result.finding("served_vs_offline").status
        top = result.details["feature_skew"][0]
        assert ("income", 100) == (top["feature"], top["rows_differing"])
        assert 1.0 == result.metrics["skew.n_features"]
        assert "income" in top["examples"][0]["raw"]

    def test_leaves_the_server_as_it_was(self) -> None:
        """The version the check loaded is unloaded afterwards."""
        check = demo_check()
        run_check(check)
        assert () == check.server.versions()  # type: ignore[union-attr]

    def test_result_round_trips_through_json(self) -> None:
        """Details and metrics are JSON-safe."""
        result = run_check(demo_check("training_serving_skew"))
        assert result == Result.from_dict(json.loads(json.dumps(result.to_dict())))

    def test_is_a_check(self) -> None:
        """PipelineCheck satisfies the Check protocol with its stable name."""
        check = demo_check()
        assert isinstance(check, Check)
        assert "pipeline" == check.name


def simple_check(**overrides: Any) -> PipelineCheck:
    """A tiny numeric system: scale a column, predict its double, serve from a dict."""
    models: dict[str, Callable[[Any], Any]] = {}
    server = InProcessServer(loader=models.__getitem__)

    def deploy(out: Any) -> str:
        models["v"] = lambda features: np.asarray(features) * 2.0
        return "v"

    settings: dict[str, Any] = {
        "holdout": lambda out: {"x": np.arange(5.0)},
        "training_features": lambda out, rows: np.asarray(rows["x"])[:, None] / 10,
        "serving_features": lambda out, row: np.array([row["x"] / 10]),
        "server": server,
        "deploy": deploy,
        "predict": lambda out, features: features * 2.0,
        "send": "features",
    }
    settings.update(overrides)
    pipe = Pipeline([Stage("source", lambda: {"x": np.arange(20.0)})])
    return PipelineCheck(pipe, **settings)


class TestPipelineCheck:
    def test_passes_on_a_consistent_system(self) -> None:
        """Identical feature paths and a faithful server pass."""
        assert Status.PASS == run_check(simple_check()).status

    def test_a_failing_stage_fails_and_skips_serving(self) -> None:
        """A stage that raises is a FAIL finding; the serving half is skipped."""

        def broken() -> Any:
            raise OSError("table not found")

        check = PipelineCheck(
            Pipeline([Stage("source", broken)]),
            holdout=lambda out: out["source"],
            training_features=lambda out, rows: rows,
        )
        result = run_check(check)
        assert Status.FAIL == result.status
        assert "stage 'source' raised OSError: table not found" in (
            result.finding("stage.errors").message
        )
        assert Status.SKIP == result.finding("end_to_end").status

    def test_a_contract_violation_fails_the_stage(self) -> None:
        """Broken contracts fail their stage with the violation in the message."""
        pipe = Pipeline([Stage("source", lambda: np.array([1.0, np.inf]), finite=True)])
        result = run_check(PipelineCheck(pipe))
        finding = result.finding("stage.contracts")
        assert "stage 'source'" in finding.message
        assert "NaN or infinite" in finding.message
        assert Status.FAIL == result.status

    def test_server_errors_fail_with_their_class(self) -> None:
        """Failed requests are counted by error class."""

        class Failing:
            def infer(self, inputs: Any, version: str | None = None) -> Response:
                return Response(error="500 model crashed", error_kind="server")

        result = run_check(simple_check(server=Failing(), load=False))
        finding = result.finding("serving.errors")
        assert Status.FAIL == finding.status
        assert "5 server" in finding.message

    def test_a_load_that_raises_fails(self) -> None:
        """A model that cannot be loaded fails the load step."""
        result = run_check(simple_check(deploy=lambda out: "missing"))
        assert Status.FAIL == result.finding("serving.load").status
        assert "KeyError" in result.finding("serving.load").message

    def test_served_predictions_that_differ_fail(self) -> None:
        """A server computing something else than the offline model fails the comparison."""
        result = run_check(simple_check(predict=lambda out, features: features * 3.0))
        finding = result.finding("served_vs_offline")
        assert Status.FAIL == finding.status
        assert "differ from the offline predictions" in finding.message

    def test_serving_path_exceptions_fail(self) -> None:
        """A serving feature path that raises on a row fails with the row named."""

        def serving(out: Any, row: Any) -> Any:
            if row["x"] == 3.0:
                raise ValueError("unknown category")
            return np.array([row["x"] / 10])

        result = run_check(simple_check(serving_features=serving))
        assert "row 3: ValueError" in result.finding("serving_features").message

    def test_tolerance_allows_small_differences(self) -> None:
        """Feature differences within atol + rtol * |training| pass."""
        result = run_check(
            simple_check(
                serving_features=lambda out, row: np.array([row["x"] / 10 + 1e-9]),
                send="raw",
                server=None,
                deploy=None,
                predict=None,
            )
        )
        assert Status.PASS == result.finding("training_serving_skew").status

    @pytest.mark.parametrize(
        ("overrides", "match"),
        [
            ({"deploy": None}, "'server' needs 'deploy'"),
            ({"training_features": None}, "needs 'holdout' and 'training_features'"),
            ({"n_rows": 0}, "'n_rows'"),
            ({"feature_atol": -1.0}, "'feature_atol'"),
            ({"max_prediction_mismatch": 1.5}, "'max_prediction_mismatch'"),
            ({"send": "bytes"}, "'send'"),
        ],
    )
    def test_rejects_bad_configuration(self, overrides: dict[str, Any], match: str) -> None:
        """Missing callables and out-of-range thresholds are reported at construction."""
        with pytest.raises((InvalidInput, ValueError), match=match):
            simple_check(**overrides)

    def test_refuses_a_remote_server(self) -> None:
        """A server on another host needs allow_remote=True."""

        class Remote:
            url = "http://192.0.2.1:8080"

            def infer(self, inputs: Any, version: str | None = None) -> Response:
                raise AssertionError("never called")

        with pytest.raises(InvalidInput, match="allow_remote"):
            simple_check(server=Remote())


class TestSession:
    def test_a_flaky_load_is_retried(self) -> None:
        """A load that raises once succeeds on the retry, and the finding says so."""
        failures = ["registry busy"]

        def loader(version: str) -> Any:
            if failures:
                raise OSError(failures.pop())
            return lambda features: np.asarray(features) * 2.0

        result = run_check(simple_check(server=InProcessServer(loader=loader)))
        finding = result.finding("serving.load")
        assert Status.PASS == finding.status, str(result)
        assert "after 1 failed attempt" in finding.message
        assert ["attempt 1: OSError: registry busy"] == result.details["load_attempts"]

    def test_no_retries_when_n_load_retries_is_0(self) -> None:
        """With n_load_retries=0 a load that raises fails at once."""
        result = run_check(simple_check(deploy=lambda out: "missing", n_load_retries=0))
        finding = result.finding("serving.load")
        assert Status.FAIL == finding.status
        assert "and 0 retries: attempt 1: KeyError" in finding.message

    def test_a_hung_request_times_out(self) -> None:
        """A request slower than request_timeout_s is a timeout error, not a hang."""

        class Slow:
            def infer(self, inputs: Any, version: str | None = None) -> Response:
                time.sleep(0.5)
                return Response(outputs=0.0)

        check = simple_check(server=Slow(), load=False, n_rows=2, request_timeout_s=0.05)
        result = run_check(check)
        assert "2 timeout" in result.finding("serving.errors").message
        assert 2.0 == result.metrics["n_errors"]

    def test_an_exception_in_infer_is_a_failed_request(self) -> None:
        """infer() raising is a connection error with the exception in the message."""

        class Raising:
            def infer(self, inputs: Any, version: str | None = None) -> Response:
                raise ConnectionResetError("peer gone")

        result = run_check(simple_check(server=Raising(), load=False))
        message = result.finding("serving.errors").message
        assert "5 connection" in message
        assert "infer() raised ConnectionResetError: peer gone" in message


class TestGlossary:
    def test_only_the_pipeline_is_positional(self) -> None:
        """Everything after the pipeline is keyword-only."""
        pipe = Pipeline([Stage("source", lambda: [1.0])])
        with pytest.raises(TypeError):
            PipelineCheck(pipe, *[lambda out: out])

    def test_old_keyword_names_its_new_name(self) -> None:
        """examples was renamed to n_examples; the old keyword says so."""
        pipe = Pipeline([Stage("source", lambda: [1.0])])
        with pytest.raises(TypeError, match="'examples', which was renamed to 'n_examples'"):
            PipelineCheck(pipe, examples=3)

    def test_limits_hold_their_condition(self) -> None:
        """A number becomes AtMost; a condition keeps its severity."""
        check = simple_check(max_serving_errors=2, max_skewed_fraction=AtMost(0.1, "warn"))
        assert AtMost(2.0) == check.max_serving_errors
        assert Status.WARN == check.max_skewed_fraction.severity
        with pytest.raises(InvalidInput, match="'max_serving_errors' must be a whole number"):
            simple_check(max_serving_errors=1.5)

    def test_a_warn_limit_warns_instead_of_failing(self) -> None:
        """Serving errors beyond a WARN-severity limit give WARN; as a number they FAIL."""

        class Failing:
            def infer(self, inputs: Any, version: str | None = None) -> Response:
                return Response(error="500 model crashed", error_kind="server")

        settings: dict[str, Any] = {"server": Failing(), "load": False}
        failed = run_check(simple_check(max_serving_errors=0, **settings))
        assert Status.FAIL == failed.finding("serving.errors").status
        warned = run_check(simple_check(max_serving_errors=AtMost(0, "warn"), **settings))
        assert Status.WARN == warned.finding("serving.errors").status

    def test_a_warn_skew_limit_warns(self) -> None:
        """A skewed feature beyond a WARN-severity max_skewed_fraction is a warning."""
        skewed = {"serving_features": lambda out, row: np.array([row["x"] / 10 + 1.0])}
        check = simple_check(
            **skewed,
            send="raw",
            server=None,
            deploy=None,
            predict=None,
            max_skewed_fraction=AtMost(0.0, severity="warn"),
        )
        result = run_check(check)
        assert Status.WARN == result.status
        assert Status.WARN == result.finding("training_serving_skew").status
        assert "feature 'feature 0'" in result.summary

    def test_a_warn_stage_limit_warns(self) -> None:
        """A stage dropping rows beyond a WARN-severity max_dropped warns, with the stage named."""
        pipe = Pipeline(
            [
                Stage("source", lambda: list(range(10))),
                Stage("clean", lambda rows: rows[:8], max_dropped=AtMost(0.1, severity="warn")),
            ]
        )
        result = run_check(PipelineCheck(pipe))
        finding = result.finding("stage.contracts")
        assert Status.WARN == finding.status
        assert "stage 'clean': dropped 2 of 10 input rows (0.2)" in finding.message
        assert ["dropped 2 of 10 input rows (0.2), more than max_dropped 0.1"] == (
            result.details["stages"][1]["warnings"]
        )
        fails = run_check(
            PipelineCheck(Pipeline([pipe.stages[0], attrs.evolve(pipe.stages[1], max_dropped=0.1)]))
        )
        assert Status.FAIL == fails.finding("stage.contracts").status

    def test_metric_keys_hold_no_stage_names(self) -> None:
        """Per-stage timings are in the details; the metric keys are fixed."""
        result = run_check(simple_check())
        assert not [k for k in result.metrics if "source" in k]
        assert ["source"] == [row["stage"] for row in result.details["stages"]]
        assert {"duration_s", "n_stages", "stages.duration_s", "latency.p99_s"} <= set(
            result.metrics
        )


class TestDataFrames:
    def test_contracts_read_data_frame_columns(self) -> None:
        """Columns, dtypes and finiteness are read from a pandas data frame."""
        pd = pytest.importorskip("pandas")
        frame = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]})
        stage = Stage("s", abs, columns=("a", "c"), dtype=np.number, finite=True)
        problems = stage.check_output(frame, rows_in=2)
        assert 3 == len(problems)
        assert "missing columns ['c']" in problems[0]
        assert "b (object)" in problems[1]
        assert "a has 1 NaN" in problems[2]

    def test_a_data_frame_holdout_is_sent_row_by_row(self) -> None:
        """A data frame of held-out rows is sliced, batched and sent as row dicts."""
        pd = pytest.importorskip("pandas")
        check = simple_check(
            holdout=lambda out: pd.DataFrame({"x": np.arange(8.0), "y": list("abcdefgh")}),
            training_features=lambda out, frame: frame[["x"]].to_numpy() / 10,
            n_rows=6,
        )
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
        assert 6.0 == result.metrics["n_holdout_rows"]


def sklearn_check(serve_model: Callable[[Any, Any], Any] | None = None) -> PipelineCheck:
    """Iris through a scaler + logistic regression, served one raw row per request.

    The served model answers a one-row request the way scikit-learn does: a ``(1, k)``
    array of class probabilities, against the offline ``(k,)`` row of the batch call.
    """
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models: dict[str, Callable[[Any], Any]] = {}
    server = InProcessServer(loader=models.__getitem__)

    def split() -> Any:
        X, y = load_iris(return_X_y=True)
        return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

    def train(parts: Any) -> Any:
        X_train, _, y_train, _ = parts
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
            X_train, y_train
        )

    def served(model: Any, row: Any) -> Any:
        return model.predict_proba(np.asarray(row).reshape(1, -1))

    answer = serve_model or served

    def deploy(out: Any) -> str:
        models["iris-1"] = lambda row: answer(out["train"], row)
        return "iris-1"

    pipe = Pipeline([Stage("split", split), Stage("train", train)])
    return PipelineCheck(
        pipe,
        holdout=lambda out: out["split"][1],
        training_features=lambda out, rows: np.asarray(rows),
        server=server,
        deploy=deploy,
        predict=lambda out, features: out["train"].predict_proba(features),
        n_rows=45,
    )


class TestServedOutputShapes:
    def test_a_sklearn_model_served_one_row_at_a_time_passes(self) -> None:
        """A served (1, k) answer matches the offline (k,) row: no mismatch at difference 0."""
        result = run_check(sklearn_check())
        assert Status.PASS == result.status, str(result)
        assert 0.0 == result.metrics["prediction.mismatch_fraction"]
        assert [] == result.details["prediction_mismatches"]

    def test_a_serving_path_that_computes_something_else_fails(self) -> None:
        """A server that skips the fitted scaler answers other probabilities and fails."""

        def unscaled(model: Any, row: Any) -> Any:
            classifier = model[-1]
            return classifier.predict_proba(np.asarray(row).reshape(1, -1))

        result = run_check(sklearn_check(unscaled))
        finding = result.finding("served_vs_offline")
        assert Status.FAIL == finding.status
        assert "differ from the offline predictions" in finding.message

    def test_mismatch_details_hold_numbers_not_reprs(self) -> None:
        """Served and offline outputs in the details are JSON lists of numbers."""

        def shifted(model: Any, row: Any) -> Any:
            return model.predict_proba(np.asarray(row).reshape(1, -1)) + 0.5

        result = run_check(sklearn_check(shifted))
        example = result.details["prediction_mismatches"][0]
        assert isinstance(example["served"], list)
        assert all(isinstance(v, float) for v in example["served"][0])
        assert 3 == len(example["offline"][0])
        json.dumps(result.to_dict())

    def test_a_wrong_output_shape_is_a_mismatch_with_a_reason(self) -> None:
        """A served answer that cannot be the offline row's is a mismatch, shown as numbers."""

        def first_two(model: Any, row: Any) -> Any:
            return model.predict_proba(np.asarray(row).reshape(1, -1))[:, :2]

        result = run_check(sklearn_check(first_two))
        assert Status.FAIL == result.finding("served_vs_offline").status
        example = result.details["prediction_mismatches"][0]
        assert 2 == len(example["served"][0])
        assert "reason" in example
