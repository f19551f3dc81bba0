from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

from mlchecks import AtLeast, AtMost, Context, Result, Status, SuiteResult, run_check
from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
from mlchecks.cli import main
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.metrics import custom_metric

# --------------------------------------------------------------------------- helpers

_DATA = np.random.default_rng(1234)
FEATURES = _DATA.normal(size=(400, 5))
LABELS = _DATA.integers(0, 3, size=400)
REGIONS = np.repeat(np.arange(4), 100)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fit(rng: np.random.Generator, name: str = "run") -> TrainingRun:
    """A tiny numpy 'training': random weights, 20 noisy 'steps', predictions on fixed data."""
    weights = rng.normal(size=(5, 3))
    losses = 2.0 - np.linspace(0, 1, 20) + rng.normal(scale=1e-3, size=20)
    hashes = [f"{h:016x}" for h in rng.integers(0, 2**62, size=20)]
    return TrainingRun(
        predictions=softmax(FEATURES @ weights),
        labels=LABELS,
        slices={"region": REGIONS},
        losses=losses,
        step_hashes=hashes,
        name=name,
    )


def seeded_train(seed: int) -> TrainingRun:
    """Reproducible: every random draw comes from the seed."""
    return fit(np.random.default_rng(seed))


def unseeded_train(seed: int) -> TrainingRun:
    """The planted fault: the seed is ignored and the generator seeds itself from the OS."""
    return fit(np.random.default_rng())


def run_pair(probs_a: np.ndarray, probs_b: np.ndarray, **kwargs: Any) -> tuple[TrainingRun, ...]:
    a = TrainingRun(predictions=probs_a, labels=LABELS, name="a", **kwargs)
    b = TrainingRun(predictions=probs_b, labels=LABELS, name="b", **kwargs)
    return a, b


def flip(probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The same probabilities with the top class of ``rows`` moved to the next class."""
    out = probs.copy()
    out[rows] = np.roll(out[rows], 1, axis=1)
    return out


@pytest.fixture
def probs() -> np.ndarray:
    return softmax(FEATURES @ np.random.default_rng(0).normal(size=(5, 3)))


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that records which threads ran the submitted work."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        def wrapped() -> Any:
            with self.lock:
                self.threads.add(threading.current_thread().name)
            return fn(*args, **kwargs)

        self.submitted += 1
        return super().submit(wrapped)


# --------------------------------------------------------------------------- TrainingRun


class TestTrainingRun:
    def test_lengths_validated(self) -> None:
        """Predictions, labels and slices must have one row per example."""
        with pytest.raises(InvalidInput, match=r"'predictions' and 'labels' .* \(got 2 and 3\)"):
            TrainingRun(predictions=[0.1, 0.2], labels=[0, 1, 1])
        with pytest.raises(InvalidInput, match=r"'predictions' and 'slices\['region'\]'"):
            TrainingRun(predictions=[0.1, 0.2], slices={"region": [0, 1, 1]})

    def test_nan_predictions_rejected(self) -> None:
        """NaN predictions are an input error, named with where they are."""
        with pytest.raises(InvalidInput, match="'predictions' must be finite"):
            TrainingRun(predictions=[[0.5, float("nan")]])

    def test_losses_may_hold_nan(self) -> None:
        """A run that blew up keeps its NaN losses."""
        run = TrainingRun(losses=[1.0, float("nan")])
        assert run.losses is not None
        assert np.isnan(run.losses[1])

    def test_slices_stored_encoded(self) -> None:
        """A bare slice array becomes the slicing 'slice'; string labels are encoded."""
        run = TrainingRun(labels=[0, 1, 0], slices=["eu", "us", "eu"])
        assert run.slices is not None
        assert ("eu", "us") == run.slices["slice"].names

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"step_hashes": "abc"}, "'step_hashes' must be a sequence of str"),
            ({"step_hashes": [1, 2]}, "'step_hashes' must contain str"),
            ({"step_hashes": []}, "must not be empty"),
            ({"metrics": {"accuracy": "high"}}, r"'metrics\['accuracy'\]' must be a number"),
            ({"metrics": [0.9]}, "'metrics' must be a mapping"),
            ({"name": ""}, "'name' must be a non-empty string"),
            ({"predictions": [["a"]]}, "must be numeric"),
            ({"predictions": np.zeros((2, 2, 2))}, "must be 1-D or 2-D"),
        ],
    )
    def test_bad_fields_rejected(self, kwargs: dict[str, Any], match: str) -> None:
        """Every field is validated with a message naming it."""
        with pytest.raises(InvalidInput, match=match):
            TrainingRun(**kwargs)

    def test_n_examples(self) -> None:
        """n_examples comes from predictions, labels or slices, else None."""
        assert 3 == TrainingRun(labels=[0, 1, 1]).n_examples
        assert TrainingRun(metrics={"accuracy": 0.9}).n_examples is None


# --------------------------------------------------------------------------- fields


class TestReproducibilityCheckFields:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_churn": 1.5}, r"'max_churn' must be in \[0, 1\] \(got 1.5\)"),
            ({"max_churn": "low"}, "'max_churn' must be a number"),
            ({"max_correctness_churn": -0.1}, "'max_correctness_churn' must be in"),
            ({"max_churn": AtLeast(0.5)}, "'max_churn' must be a number or AtMost"),
            ({"max_fraction_beyond_tol": 2}, "'max_fraction_beyond_tol' must be in"),
            ({"prediction_atol": -1e-6}, r"'prediction_atol' must be in \[0, inf\)"),
            ({"prediction_rtol": float("inf")}, r"'prediction_rtol' must be in \[0, inf\)"),
            ({"slice_metric_atol": -0.02}, r"'slice_metric_atol' must be in \[0, inf\)"),
            ({"loss_atol": True}, "'loss_atol' must be a number"),
            ({"alpha": 0.5}, r"'alpha' must be in \(0, 0.5\) \(got 0.5\)"),
            ({"metric_atol": -0.01}, "'metric_atol' must be a finite number >= 0"),
            ({"metric_atol": {"accuracy": -1}}, r"'metric_atol\['accuracy'\]'"),
            ({"metric_atol": "tight"}, "'metric_atol' must be a number >= 0 or a map"),
            ({"metrics": ("auc",)}, "unknown metric 'auc'"),
            ({"metrics": ("accuracy", "accuracy")}, "must not repeat a name"),
            ({"n_top": -1}, r"'n_top' must be >= 0 \(got -1\)"),
            ({"exact": "yes"}, "'exact' must be True or False"),
            ({"seeds": (0,)}, "'seeds' must hold at least 2 seeds"),
            ({"seeds": (0, 1.5)}, "'seeds' must contain ints"),
            ({"rubric": 8}, r"'rubric' must be an int in 1..7 or None \(got 8\)"),
        ],
    )
    def test_bad_thresholds_rejected(self, kwargs: dict[str, Any], match: str) -> None:
        """Each threshold is validated at construction with a message naming it and the value."""
        with pytest.raises(InvalidInput, match=match):
            ReproducibilityCheck(make_run=seeded_train, **kwargs)

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("train", "make_run"),
            ("metric_tolerance", "metric_atol"),
            ("max_fraction_beyond_tolerance", "max_fraction_beyond_tol"),
            ("slice_tolerance", "slice_metric_atol"),
            ("loss_tolerance", "loss_atol"),
            ("top_k", "n_top"),
        ],
    )
    def test_old_keyword_names_the_new_one(self, old: str, new: str) -> None:
        """A 0.1 keyword raises TypeError naming the keyword that replaced it."""
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to '{new}'"):
            ReproducibilityCheck(make_run=seeded_train, **{old: 1})

    def test_only_runs_is_positional(self) -> None:
        """Every field after runs is keyword-only."""
        run = TrainingRun(metrics={"accuracy": 0.9})
        with pytest.raises(TypeError):
            ReproducibilityCheck([run, run], None)  # type: ignore[arg-type]

    def test_limits_hold_conditions(self) -> None:
        """A number becomes AtMost with FAIL severity; a condition is kept as given."""
        check = ReproducibilityCheck(make_run=seeded_train, max_churn=0.02)
        assert AtMost(0.02) == check.max_churn
        assert check.max_correctness_churn is None
        assert check.max_fraction_beyond_tol is None
        warn = AtMost(0.02, severity="warn")
        assert warn == ReproducibilityCheck(make_run=seeded_train, max_churn=warn).max_churn

    def test_runs_or_make_run_required(self) -> None:
        """Exactly one of runs and make_run must be given."""
        with pytest.raises(InvalidInput, match=r"give either 'runs' or 'make_run' \(got neither\)"):
            ReproducibilityCheck()
        run = TrainingRun(metrics={"accuracy": 0.9})
        with pytest.raises(InvalidInput, match=r"\(got both\)"):
            ReproducibilityCheck([run, run], make_run=seeded_train)

    def test_runs_validated(self) -> None:
        """At least two TrainingRun objects, predicting on the same examples."""
        with pytest.raises(InvalidInput, match="at least 2 runs"):
            ReproducibilityCheck([TrainingRun()])
        with pytest.raises(InvalidInput, match="must contain TrainingRun objects"):
            ReproducibilityCheck([TrainingRun(), {"accuracy": 0.9}])  # type: ignore[list-item]
        a = TrainingRun(predictions=[0.1, 0.2], name="a")
        b = TrainingRun(predictions=[0.1, 0.2, 0.3], name="b")
        with pytest.raises(InvalidInput, match="run 'b' has predictions of shape"):
            ReproducibilityCheck([a, b])

    def test_make_run_must_be_callable(self) -> None:
        """A non-callable make_run is named."""
        with pytest.raises(InvalidInput, match="'make_run' must be callable"):
            ReproducibilityCheck(make_run=3)  # type: ignore[arg-type]

    def test_metric_atol_mapping(self) -> None:
        """A mapping sets per-metric margins; other metrics keep 0.01; exact mode gives 0."""
        check = ReproducibilityCheck(make_run=seeded_train, metric_atol={"log_loss": 0.05})
        assert (0.05, 0.01) == (
            check.metric_atol_for("log_loss"),
            check.metric_atol_for("accuracy"),
        )
        exact = ReproducibilityCheck(make_run=seeded_train, exact=True)
        assert 0.0 == exact.metric_atol_for("accuracy")


# --------------------------------------------------------------------------- recorded GPU runs


class TestRecordedGpuRuns:
    def test_deterministic_runs_pass_in_exact_mode(self, gpu_runs: dict[str, TrainingRun]) -> None:
        """Deterministic GPU kernels give bit-identical runs: exact mode passes everything."""
        runs = [gpu_runs["gpu_det_seed0_a"], gpu_runs["gpu_det_seed0_b"]]
        result = ReproducibilityCheck(runs, exact=True).run()
        assert Status.PASS == result.status, str(result)
        names = {f.name for f in result.findings}
        expected = {
            "churn",
            "correctness_churn",
            "prediction.max_abs_diff",
            "metric.accuracy",
            "metric.log_loss",
            "slices.accuracy",
            "slices.log_loss",
            "first_divergence",
        }
        assert expected == names
        assert "identical over all 1,884 steps" in result.finding("first_divergence").message

    def test_nondeterministic_runs_fail_on_churn(self, gpu_runs: dict[str, TrainingRun]) -> None:
        """GPU atomics alone change 15.65% of predicted classes: the default check fails."""
        runs = [gpu_runs["gpu_nondet_seed0_a"], gpu_runs["gpu_nondet_seed0_b"]]
        result = ReproducibilityCheck(runs).run()
        assert Status.FAIL == result.status
        churn = result.finding("churn")
        assert (Status.FAIL, 0.1565) == (churn.status, churn.observed)
        assert (
            "Runs 'gpu_nondet_seed0_a' and 'gpu_nondet_seed0_b' predict different classes for "
            "15.7% of examples: "
            "churn 0.1565 exceeds the maximum 0.01 (90% CI 0.1505 to 0.1626): 1,565 of 10,000 "
            "predictions changed class "
            "between run 'gpu_nondet_seed0_a' and run 'gpu_nondet_seed0_b'"
        ) == churn.message
        assert result.summary.startswith(
            "Runs 'gpu_nondet_seed0_a' and 'gpu_nondet_seed0_b' predict different classes for "
            "15.7% of examples: churn 0.1565 exceeds the maximum 0.01"
        )
        assert 0.0718 == result.metrics["correctness_churn"]
        assert Status.FAIL == result.finding("correctness_churn").status

    def test_nondeterministic_accuracy_reported_honestly(
        self, gpu_runs: dict[str, TrainingRun]
    ) -> None:
        """Accuracy differs by 0.0058 (McNemar p 0.033, 90% CI [0.0014, 0.0102]): not equivalent."""
        runs = [gpu_runs["gpu_nondet_seed0_a"], gpu_runs["gpu_nondet_seed0_b"]]
        result = ReproducibilityCheck(runs).run()
        finding = result.finding("metric.accuracy")
        assert Status.FAIL == finding.status
        assert 0.0058 == pytest.approx(finding.observed)
        row = result.details["pairs"][0]["metrics"]["accuracy"]
        assert "tost_paired_accuracy" == row["test"]
        assert 0.033 == pytest.approx(row["mcnemar_pvalue"], abs=5e-4)
        assert [0.0014, 0.0102] == pytest.approx(row["ci"], abs=5e-5)
        assert row["equivalent"] is False
        assert "not shown equivalent within ±0.01 at alpha 0.05" in finding.message
        assert "exact McNemar p = 0.033" in finding.message

    def test_nondeterministic_divergence_steps(self, gpu_runs: dict[str, TrainingRun]) -> None:
        """Parameter hashes differ from step 0; losses part by more than 1e-6 at step 160."""
        runs = [gpu_runs["gpu_nondet_seed0_a"], gpu_runs["gpu_nondet_seed0_b"]]
        result = ReproducibilityCheck(runs, loss_atol=1e-6).run()
        assert 0.0 == result.metrics["first_hash_difference_step"]
        assert 160.0 == result.metrics["first_divergence_step"]
        finding = result.finding("first_divergence")
        assert (Status.WARN, 160.0) == (finding.status, finding.observed)
        assert finding.message.startswith(
            "runs 'gpu_nondet_seed0_a' and 'gpu_nondet_seed0_b' diverge at step 160 "
            "(loss 1.744403 vs 1.744405, beyond 1e-06)"
        )
        assert "parameter hashes differ from step 0" in finding.message

    def test_nondeterministic_runs_fail_exact_mode_where_they_first_differ(
        self, gpu_runs: dict[str, TrainingRun]
    ) -> None:
        """Exact mode names the first differing step and example."""
        runs = [gpu_runs["gpu_nondet_seed0_a"], gpu_runs["gpu_nondet_seed0_b"]]
        result = ReproducibilityCheck(runs, exact=True).run()
        divergence = result.finding("first_divergence")
        assert (Status.FAIL, 0.0) == (divergence.status, divergence.observed)
        assert divergence.message.startswith(
            "Runs 'gpu_nondet_seed0_a' and 'gpu_nondet_seed0_b' have different training losses: "
            "runs 'gpu_nondet_seed0_a' and 'gpu_nondet_seed0_b' first differ at step 0: "
            "parameter hashes differ from step 0"
        )
        assert "losses first differ at step 18 (loss 1.9988232 vs 1.998823)" in divergence.message
        predictions = result.finding("prediction.max_abs_diff")
        assert Status.FAIL == predictions.status
        assert (
            "Runs 'gpu_nondet_seed0_a' and 'gpu_nondet_seed0_b' make different predictions: "
            "predictions differ on 10,000 of 10,000 examples between run 'gpu_nondet_seed0_a' and "
            "run 'gpu_nondet_seed0_b', first at example 0; the largest difference is 0.4297 at "
            "example 2648"
        ) == predictions.message

    def test_seed_change_fails(self, gpu_runs: dict[str, TrainingRun]) -> None:
        """A different seed fails: churn ~0.33, divergence from step 0."""
        runs = [gpu_runs["gpu_det_seed0_a"], gpu_runs["gpu_det_seed1"]]
        result = ReproducibilityCheck(runs).run()
        assert Status.FAIL == result.status
        assert 0.329 == result.finding("churn").observed
        assert 0.0 == result.finding("first_divergence").observed

    def test_three_runs_spread(self, gpu_runs: dict[str, TrainingRun]) -> None:
        """Three runs give a pairwise churn matrix and the std of each metric."""
        names = ["gpu_det_seed0_a", "gpu_det_seed0_b", "gpu_nondet_seed0_a"]
        result = ReproducibilityCheck([gpu_runs[n] for n in names]).run()
        matrix = np.array(result.details["churn_matrix"])
        assert [0.0, 0.0] == [matrix[0, 1], matrix[1, 0]]
        assert 0.1528 == matrix[0, 2] == matrix[2, 1]
        accuracies = [0.335, 0.335, 0.3326]
        assert np.std(accuracies, ddof=1) == pytest.approx(result.metrics["metric.accuracy.std"])
        assert 3 == len(result.details["pairs"])
        assert 0.1528 == result.finding("churn").observed

    def test_result_round_trips_through_json(self, gpu_runs: dict[str, TrainingRun]) -> None:
        """Metrics and details are JSON-safe: the result survives json.dumps and from_dict."""
        runs = [gpu_runs["gpu_nondet_seed0_a"], gpu_runs["gpu_nondet_seed0_b"]]
        result = ReproducibilityCheck(runs).run()
        assert result == Result.from_dict(json.loads(json.dumps(result.to_dict())))
        top = result.details["pairs"][0]["predictions"]["top_examples"][0]
        assert {"index", "abs_diff", "class_a", "class_b", "label"} == set(top)


# --------------------------------------------------------------------------- train callable


class TestTrainCallable:
    def test_seeded_training_passes_in_parallel(self) -> None:
        """A seeded train function reproduces exactly; both runs go through the executor."""
        with CountingExecutor() as executor:
            result = ReproducibilityCheck(make_run=seeded_train, exact=True).run(
                Context(executor=executor)
            )
        assert Status.PASS == result.status, str(result)
        assert 2 == executor.submitted
        assert ["seed 0, run 1", "seed 0, run 2"] == [r["name"] for r in result.details["runs"]]
        assert [0, 0] == [r["seed"] for r in result.details["runs"]]

    def test_seeds_default_to_the_context_seed(self) -> None:
        """Without seeds, make_run is called twice with Context.seed (mlchecks run --seed)."""
        seen: list[int] = []

        def make_run(seed: int) -> TrainingRun:
            seen.append(seed)
            return seeded_train(seed)

        check = ReproducibilityCheck(make_run=make_run)
        assert check.seeds is None
        result = check.run(Context(seed=7))
        assert [7, 7] == seen
        assert [7, 7] == [r["seed"] for r in result.details["runs"]]
        assert ["seed 7, run 1", "seed 7, run 2"] == [r["name"] for r in result.details["runs"]]
        assert (0, 0) == check.resolved_seeds(Context())
        assert (3, 4) == ReproducibilityCheck(make_run=make_run, seeds=(3, 4)).resolved_seeds(
            Context(seed=7)
        )

    def test_cli_seed_reaches_make_run(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``mlchecks run --seed 5`` trains both runs with seed 5."""
        (tmp_path / "repro_suite.py").write_text(
            "from mlchecks import ReproducibilityCheck, TrainingRun\n"
            "def make_run(seed):\n"
            "    return TrainingRun(metrics={'accuracy': 0.9})\n"
            "check = ReproducibilityCheck(make_run=make_run)\n",
            encoding="utf-8",
        )
        monkeypatch.chdir(tmp_path)
        assert 0 == main(["run", "repro_suite.py:check", "--seed", "5", "--json", "r.json"])
        result = SuiteResult.from_json((tmp_path / "r.json").read_text(encoding="utf-8"))
        assert [5, 5] == [r["seed"] for r in result["reproducibility"].details["runs"]]

    def test_unseeded_generator_fails(self) -> None:
        """The planted fault (an unseeded generator) fails on churn and divergence."""
        with ThreadPoolExecutor(2) as executor:
            result = ReproducibilityCheck(make_run=unseeded_train).run(Context(executor=executor))
        assert Status.FAIL == result.status
        assert Status.FAIL == result.finding("churn").status
        assert 0.0 == result.finding("first_divergence").observed

    def test_different_seeds_named_by_seed(self) -> None:
        """Distinct seeds name the runs 'seed 0' and 'seed 1' (and they differ)."""
        result = ReproducibilityCheck(make_run=seeded_train, seeds=(0, 1)).run()
        assert ["seed 0", "seed 1"] == [r["name"] for r in result.details["runs"]]
        assert Status.FAIL == result.status

    def test_train_returning_something_else_is_an_error(self) -> None:
        """A train function that returns a dict gives an ERROR result naming the type."""
        check = ReproducibilityCheck(make_run=lambda seed: {"accuracy": 0.9})  # type: ignore[arg-type,return-value]
        result = run_check(check)
        assert Status.ERROR == result.status
        assert result.error is not None
        assert "'make_run' must return a TrainingRun (got dict for seed 0)" == result.error.message


# --------------------------------------------------------------------------- tolerance mode


class TestToleranceMode:
    def test_churn_is_judged_with_confidence_bounds(self, probs: np.ndarray) -> None:
        """Of 400 examples: 0 flipped PASS max_churn 0.01, 2 (0.5%) are inconclusive, 16 FAIL.

        PASS needs the upper confidence bound at or below the limit, FAIL the lower bound
        above it; in between the finding is a WARN with the interval in the message.
        """
        same = ReproducibilityCheck(run_pair(probs, probs.copy())).run()
        small = ReproducibilityCheck(run_pair(probs, flip(probs, np.arange(2)))).run()
        large = ReproducibilityCheck(run_pair(probs, flip(probs, np.arange(16)))).run()
        assert Status.PASS == same.finding("churn").status
        assert (Status.WARN, 0.005) == (small.finding("churn").status, small.metrics["churn"])
        assert (Status.FAIL, 0.04) == (large.finding("churn").status, large.metrics["churn"])
        assert small.finding("churn").message.startswith(
            "churn 0.005 is inconclusive against the maximum 0.01 (90% CI 0.0008891 to 0.01566, "
            "which includes the limit): 2 of 400 predictions changed class"
        ), small.finding("churn").message
        interval = small.details["intervals"]["churn"]
        assert interval["low"] < 0.01 < interval["high"]
        assert 0.01 < large.details["intervals"]["churn"]["low"]

    def test_zero_limit_is_a_hard_rule(self, probs: np.ndarray) -> None:
        """max_churn=0: one changed class FAILs, with no interval to hide behind."""
        result = ReproducibilityCheck(
            run_pair(probs, flip(probs, np.arange(1))), max_churn=0.0
        ).run()
        finding = result.finding("churn")
        assert (Status.FAIL, 0.0025) == (finding.status, finding.observed)
        assert "(any difference fails)" in finding.message

    def test_churn_limit_severity_is_the_users(self, probs: np.ndarray) -> None:
        """max_churn=0.01 FAILs on 4% churn; AtMost(0.01, severity="warn") WARNs instead."""
        runs = run_pair(probs, flip(probs, np.arange(16)))
        plain = ReproducibilityCheck(runs, max_churn=0.01, metric_atol=1.0).run()
        warn = ReproducibilityCheck(
            runs, max_churn=AtMost(0.01, severity="warn"), metric_atol=1.0
        ).run()
        assert (Status.FAIL, Status.FAIL) == (plain.finding("churn").status, plain.status)
        assert Status.WARN == warn.finding("churn").status
        assert "churn 0.04 exceeds the maximum 0.01" in warn.finding("churn").message
        # Correctness churn follows max_churn (and its severity) unless given its own limit.
        assert Status.WARN == warn.finding("correctness_churn").status
        assert Status.WARN == warn.status

    def test_max_correctness_churn_separate_limit(self, probs: np.ndarray) -> None:
        """max_correctness_churn overrides max_churn for correctness churn only."""
        runs = run_pair(probs, flip(probs, np.arange(40)))
        result = ReproducibilityCheck(runs, max_churn=1.0, max_correctness_churn=0.0).run()
        assert Status.PASS == result.finding("churn").status
        assert Status.FAIL == result.finding("correctness_churn").status

    def test_numeric_noise_passes_by_default(self, probs: np.ndarray) -> None:
        """Tiny value noise that changes no class passes; the fraction beyond atol is reported."""
        noisy = probs * (1 + 1e-4)
        result = ReproducibilityCheck(run_pair(probs, noisy)).run()
        assert Status.PASS == result.status, str(result)
        assert 0.0 < result.metrics["prediction.fraction_beyond_tol"]
        names = {f.name for f in result.findings}
        assert "prediction.fraction_beyond_tol" not in names
        assert "prediction.max_abs_diff" not in names

    def test_fraction_beyond_tol_judged_when_set(self, probs: np.ndarray) -> None:
        """Setting max_fraction_beyond_tol turns the value tolerance into a finding."""
        noisy = probs.copy()
        noisy[:20] *= 1 + 1e-3
        runs = run_pair(probs, noisy)
        lenient = ReproducibilityCheck(runs, max_fraction_beyond_tol=0.1).run()
        strict = ReproducibilityCheck(runs, max_fraction_beyond_tol=0.01).run()
        assert Status.PASS == lenient.finding("prediction.fraction_beyond_tol").status
        finding = strict.finding("prediction.fraction_beyond_tol")
        assert (Status.FAIL, 0.05) == (finding.status, finding.observed)
        assert "20 of 400 examples differ by more than 1e-06" in finding.message
        relaxed = ReproducibilityCheck(
            runs, max_fraction_beyond_tol=0.01, prediction_atol=0.01
        ).run()
        assert Status.PASS == relaxed.finding("prediction.fraction_beyond_tol").status
        warned = ReproducibilityCheck(
            runs, max_fraction_beyond_tol=AtMost(0.01, severity="warn")
        ).run()
        assert Status.WARN == warned.finding("prediction.fraction_beyond_tol").status

    def test_log_loss_tost_matches_scipy_paired_t(self, probs: np.ndarray) -> None:
        """The log-loss TOST interval is scipy's paired-t 90% interval of per-example losses."""
        other = softmax(
            np.log(probs) + np.random.default_rng(3).normal(scale=0.1, size=probs.shape)
        )
        result = ReproducibilityCheck(run_pair(probs, other)).run()
        row = result.details["pairs"][0]["metrics"]["log_loss"]
        loss_a = -np.log(probs[np.arange(400), LABELS])
        loss_b = -np.log(other[np.arange(400), LABELS])
        reference = scipy.stats.ttest_rel(loss_a, loss_b).confidence_interval(0.90)
        assert [reference.low, reference.high] == pytest.approx(row["ci"])
        upper = scipy.stats.ttest_rel(loss_a, loss_b + 0.01, alternative="less").pvalue
        lower = scipy.stats.ttest_rel(loss_a, loss_b - 0.01, alternative="greater").pvalue
        assert max(upper, lower) == pytest.approx(row["pvalue"])

    def test_metric_atol_per_metric(self, probs: np.ndarray) -> None:
        """A mapping of tolerances loosens one metric and keeps the default for others."""
        other = flip(probs, np.arange(30))
        strict = ReproducibilityCheck(run_pair(probs, other), max_churn=1.0).run()
        loose = ReproducibilityCheck(
            run_pair(probs, other), max_churn=1.0, metric_atol={"accuracy": 0.5, "log_loss": 5}
        ).run()
        assert Status.FAIL == strict.finding("metric.accuracy").status
        assert Status.PASS == loose.finding("metric.accuracy").status

    def test_reported_metrics_only(self) -> None:
        """Runs with only aggregate metrics are compared on the values, without a test."""
        a = TrainingRun(metrics={"val_loss": 0.5, "auc": 0.91}, name="a")
        b = TrainingRun(metrics={"val_loss": 0.505, "auc": 0.85}, name="b")
        result = ReproducibilityCheck([a, b]).run()
        val_loss, auc = (f for f in result.findings if f.name == "metric.custom")
        assert Status.PASS == val_loss.status
        assert val_loss.message.startswith("val_loss of run 'a' and run 'b'")
        assert Status.FAIL == auc.status
        assert "auc of run 'a' and run 'b' (0.91 vs 0.85) differs by +0.06, beyond" in auc.message
        assert {"val_loss": 0.5, "auc": 0.91} == result.details["runs"][0]["metrics"]
        assert "metric.custom.difference" not in result.metrics
        assert 0.06 == pytest.approx(result.details["pairs"][0]["metrics"]["auc"]["difference"])

    def test_reported_metric_wins_but_predictions_still_tested(self, probs: np.ndarray) -> None:
        """A run's own accuracy is shown; the paired test and the slices still use predictions."""
        other = flip(probs, np.arange(30))
        runs = [
            TrainingRun({"accuracy": 0.5}, probs, LABELS, slices=REGIONS, name="a"),
            TrainingRun({"accuracy": 0.5}, other, LABELS, slices=REGIONS, name="b"),
        ]
        result = ReproducibilityCheck(runs, max_churn=1.0).run()
        assert Status.PASS == result.finding("slices.accuracy").status
        assert 0.5 == result.details["runs"][0]["metrics"]["accuracy"]
        assert not any("." in key and key.split(".")[0] in ("a", "b") for key in result.metrics)
        row = result.details["pairs"][0]["metrics"]["accuracy"]
        assert "tost_paired_accuracy" == row["test"]
        expected = np.mean(probs.argmax(1) == LABELS) - np.mean(other.argmax(1) == LABELS)
        assert expected == pytest.approx(row["difference"])

    def test_metric_missing_from_a_run_warns(self) -> None:
        """A metric only one run reports is a WARN, not a comparison."""
        a = TrainingRun(metrics={"val_loss": 0.5, "auc": 0.9}, name="a")
        b = TrainingRun(metrics={"val_loss": 0.5}, name="b")
        result = ReproducibilityCheck([a, b]).run()
        (finding,) = (f for f in result.findings if f.status is Status.WARN)
        assert "metric.custom" == finding.name
        assert (Status.WARN, "auc is missing from run(s) 'b', so it is not compared") == (
            finding.status,
            finding.message,
        )

    def test_regression_outputs(self) -> None:
        """Regression predictions compare by values and MSE; churn is skipped with a reason."""
        rng = np.random.default_rng(5)
        target = rng.normal(size=400) * 3
        prediction = target + rng.normal(size=400)
        runs = [
            TrainingRun(predictions=prediction, labels=target, name="a"),
            TrainingRun(predictions=prediction + 1e-3, labels=target, name="b"),
        ]
        moved = ReproducibilityCheck(runs, metrics=("mse", "mae")).run()
        assert Status.FAIL == moved.finding("prediction.fraction_beyond_tol").status
        result = ReproducibilityCheck(runs, metrics=("mse", "mae"), prediction_atol=0.01).run()
        assert Status.PASS == result.status, str(result)
        assert "regression" == result.details["task"]
        assert "churn" in result.details["skipped"]
        assert "tost_paired_mean" == result.details["pairs"][0]["metrics"]["mse"]["test"]
        assert 1e-3 == pytest.approx(result.metrics["prediction.max_abs_diff"])

    def test_custom_and_non_decomposable_metrics(self, probs: np.ndarray) -> None:
        """Macro F1 and a custom callable are compared without a test, on the values."""
        top = custom_metric(lambda y, p: float(np.mean(p.max(axis=1))), name="confidence")
        result = ReproducibilityCheck(
            run_pair(probs, probs.copy()), metrics=("f1_macro", top)
        ).run()
        assert Status.PASS == result.status
        assert "none" == result.details["pairs"][0]["metrics"]["confidence"]["test"]

    def test_uncomputable_metric_warns(self, probs: np.ndarray) -> None:
        """ROC AUC on 3 classes cannot be computed: a WARN naming the reason."""
        result = ReproducibilityCheck(run_pair(probs, probs.copy()), metrics=("roc_auc",)).run()
        finding = result.finding("metric.roc_auc")
        assert Status.WARN == finding.status
        assert "got 3 columns" in finding.message
        assert Status.WARN == result.status

    def test_nothing_to_compare_skips(self) -> None:
        """Runs without metrics, predictions, losses or hashes give a SKIP with the reason."""
        result = ReproducibilityCheck([TrainingRun(name="a"), TrainingRun(name="b")]).run()
        assert Status.SKIP == result.status
        assert "share nothing to compare" in result.summary

    def test_different_labels_fail(self, probs: np.ndarray) -> None:
        """Runs evaluated with different labels fail 'same_labels' and say where."""
        other = LABELS.copy()
        other[7] = (other[7] + 1) % 3
        a = TrainingRun(predictions=probs, labels=LABELS, name="a")
        b = TrainingRun(predictions=probs, labels=other, name="b")
        finding = ReproducibilityCheck([a, b]).run().finding("same_labels")
        assert Status.FAIL == finding.status
        assert "1 of 400 differ (first at example 7)" in finding.message

    def test_different_slices_fail(self, probs: np.ndarray) -> None:
        """Runs that slice the examples differently fail 'same_slices'."""
        a = TrainingRun(predictions=probs, labels=LABELS, slices=REGIONS, name="a")
        b = TrainingRun(predictions=probs, labels=LABELS, slices=REGIONS[::-1], name="b")
        assert Status.FAIL == ReproducibilityCheck([a, b]).run().finding("same_slices").status


class TestSlices:
    def test_planted_slice_fault_is_flagged(self, probs: np.ndarray) -> None:
        """Breaking half of one region's predictions flags that slice, and only that one."""
        region = np.flatnonzero(REGIONS == 2)
        wrong = probs.copy()
        right_rows = region[(probs[region].argmax(axis=1) == LABELS[region])]
        wrong = flip(wrong, right_rows)
        runs = [
            TrainingRun(predictions=probs, labels=LABELS, slices={"region": REGIONS}, name="a"),
            TrainingRun(predictions=wrong, labels=LABELS, slices={"region": REGIONS}, name="b"),
        ]
        result = ReproducibilityCheck(runs, max_churn=1.0, metric_atol=1.0).run()
        summary = result.finding("slices.accuracy")
        assert (Status.FAIL, 1.0) == (summary.status, summary.observed)
        assert summary.message.startswith(
            "Runs 'a' and 'b' give different results in some slices: "
            "1 of 4 region slices differ in accuracy beyond 0.02"
        )
        slice_finding = result.finding("slice.accuracy")
        assert Status.FAIL == slice_finding.status
        assert slice_finding.message.startswith(
            "Runs 'a' and 'b' give different results in some slices: "
            "accuracy in region slice '2' is "
        )
        assert "beyond the slice tolerance 0.02 (Holm-adjusted p" in slice_finding.message
        flagged = {
            r["slice"]
            for r in result.details["slice_tests"]
            if r["flagged"] and r["metric"] == "accuracy"
        }
        assert {"2"} == flagged

    def test_holm_adjustment_applied(self, probs: np.ndarray) -> None:
        """Adjusted p-values are Holm's over every slice test of the check."""
        other = flip(probs, np.arange(0, 400, 9))
        result = ReproducibilityCheck(run_pair(probs, other, slices=REGIONS)).run()
        tests = [r for r in result.details["slice_tests"] if r["pvalue"] is not None]
        raw = np.array([r["pvalue"] for r in tests])
        order = np.argsort(raw, kind="stable")
        expected = np.maximum.accumulate(np.minimum(1, raw[order] * np.arange(len(raw), 0, -1)))
        got = np.array([r["adjusted_pvalue"] for r in tests])[order]
        assert expected == pytest.approx(got)

    def test_slice_values_match_brute_force(self, probs: np.ndarray) -> None:
        """Per-slice accuracy in details equals a boolean-mask loop."""
        other = flip(probs, np.arange(0, 400, 7))
        result = ReproducibilityCheck(run_pair(probs, other, slices=REGIONS)).run()
        table = result.details["slices"]["slice"]["metrics"]["accuracy"]["b"]
        expected = [
            float(np.mean(other[REGIONS == s].argmax(1) == LABELS[REGIONS == s])) for s in range(4)
        ]
        assert expected == pytest.approx(table)

    def test_identical_runs_flag_no_slice(self, probs: np.ndarray) -> None:
        """Identical runs pass every slice test."""
        result = ReproducibilityCheck(run_pair(probs, probs.copy(), slices=REGIONS)).run()
        assert Status.PASS == result.finding("slices.accuracy").status
        assert Status.PASS == result.finding("slices.log_loss").status
        assert 0.02 == result.details["slice_metric_atol"]


class TestTrajectories:
    def test_hashes_differ_losses_within_tolerance_pass(self) -> None:
        """Equal-within-tolerance losses pass in tolerance mode even when hashes differ."""
        a = TrainingRun(losses=[1.0, 0.9, 0.8], step_hashes=["x", "y", "z"], name="a")
        b = TrainingRun(losses=[1.0, 0.9, 0.8 + 1e-9], step_hashes=["x", "q", "r"], name="b")
        finding = ReproducibilityCheck([a, b]).run().finding("first_divergence")
        assert Status.PASS == finding.status
        assert (
            "losses of runs 'a' and 'b' stay within 1e-06 over 3 steps, but parameter hashes "
            "differ from step 1 (y vs q); losses differ within tolerance from step 2"
        ) == finding.message
        exact = ReproducibilityCheck([a, b], exact=True).run().finding("first_divergence")
        assert (Status.FAIL, 1.0) == (exact.status, exact.observed)

    def test_run_that_stops_early(self) -> None:
        """A shorter loss curve diverges where it ends."""
        a = TrainingRun(losses=[1.0, 0.9, 0.8], name="a")
        b = TrainingRun(losses=[1.0, 0.9], name="b")
        finding = ReproducibilityCheck([a, b]).run().finding("first_divergence")
        assert (Status.WARN, 2.0) == (finding.status, finding.observed)
        assert "one run stops after 2 steps" in finding.message

    def test_hashes_only(self) -> None:
        """Runs with only step hashes compare them."""
        a = TrainingRun(step_hashes=["a1", "a2"], name="a")
        b = TrainingRun(step_hashes=["a1", "a2"], name="b")
        finding = ReproducibilityCheck([a, b], exact=True).run().finding("first_divergence")
        assert (
            "parameter hashes of runs 'a' and 'b' are identical over all 2 steps" == finding.message
        )


class TestTasks:
    """task= and classes=: the task's metrics and findings, class labels of any dtype."""

    @staticmethod
    def regression_runs(shift: float) -> list[TrainingRun]:
        rng = np.random.default_rng(11)
        target = np.round(rng.uniform(25, 346, size=300))  # whole numbers, as load_diabetes
        prediction = target + rng.normal(scale=55, size=300)
        return [
            TrainingRun(predictions=prediction, labels=target, name="a"),
            TrainingRun(predictions=prediction + shift, labels=target, name="b"),
        ]

    def test_regression_is_inferred_with_its_metrics(self) -> None:
        """Float predictions on whole-number targets: regression, MSE/MAE/R², no WARN."""
        result = ReproducibilityCheck(self.regression_runs(0.0)).run()
        assert Status.PASS == result.status, str(result)
        assert "regression" == result.details["task"]
        names = {f.name for f in result.findings}
        assert {"metric.mse", "metric.mae", "metric.r2", "prediction.fraction_beyond_tol"} == names

    def test_regression_value_differences_fail(self) -> None:
        """Predictions that moved by 0.5 on values near 200 FAIL by default (against max_churn)."""
        result = ReproducibilityCheck(self.regression_runs(0.5)).run()
        finding = result.finding("prediction.fraction_beyond_tol")
        assert (Status.FAIL, 1.0) == (finding.status, finding.observed)
        loose = ReproducibilityCheck(self.regression_runs(0.5), prediction_atol=1.0).run()
        assert Status.PASS == loose.finding("prediction.fraction_beyond_tol").status

    def test_mse_margin_is_relative(self) -> None:
        """At an MSE near 3,000 the margin is 1% of it, not 0.01."""
        check = ReproducibilityCheck(self.regression_runs(0.0))
        assert 30.01 == pytest.approx(check.metric_margin("mse", 3000.0))
        assert 0.01 == check.metric_margin("accuracy", 0.9)
        strict = ReproducibilityCheck(self.regression_runs(0.0), metric_rtol={"mse": 0.0})
        assert 0.01 == strict.metric_margin("mse", 3000.0)
        assert 0.0 == ReproducibilityCheck(make_run=print, exact=True).metric_rtol_for("mse")

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"metric_rtol": -1}, r"'metric_rtol' must be in \[0, inf\)|'metric_rtol' must be"),
            ({"metric_rtol": {"mse": -1}}, r"'metric_rtol\['mse'\]'"),
            ({"task": "ranking"}, "'task' must be one of"),
            ({"classes": ["a", "a"]}, "must not repeat a class"),
        ],
    )
    def test_bad_task_fields(self, kwargs: dict[str, Any], match: str) -> None:
        """The new fields are validated with messages naming them."""
        with pytest.raises(InvalidInput, match=match):
            ReproducibilityCheck(make_run=print, **kwargs)

    def test_declared_task_wins(self) -> None:
        """task='regression' on integer predictions compares values, not classes."""
        runs = [TrainingRun(predictions=[3, 5, 7, 9], labels=[3, 5, 8, 9], name=n) for n in "ab"]
        result = ReproducibilityCheck(runs, task="regression").run()
        assert "regression" == result.details["task"]
        assert "churn" not in result.metrics

    def test_string_labels_and_predicted_names(self) -> None:
        """Class names as labels and predictions: churn and accuracy, no log-loss WARN."""
        labels = np.array(["cat", "dog", "cow"] * 100)
        a = labels.copy()
        b = labels.copy()
        b[:30] = "dog"
        runs = [TrainingRun(predictions=p, labels=labels, name=n) for p, n in ((a, "a"), (b, "b"))]
        result = ReproducibilityCheck(runs).run()
        assert ["cat", "cow", "dog"] == result.details["classes"]
        assert {"churn", "correctness_churn", "metric.accuracy"} <= {
            f.name for f in result.findings
        }
        assert Status.FAIL == result.finding("churn").status
        assert pytest.approx(0.0667, abs=1e-3) == result.metrics["churn"]
        assert "cat" == result.details["pairs"][0]["predictions"]["top_examples"][0]["label"]

    def test_string_labels_with_probabilities_use_run_classes(self, probs: np.ndarray) -> None:
        """Probability columns follow the run's classes (the estimator's classes_)."""
        names = np.array(["c0", "c1", "c2"])
        runs = run_pair(probs, probs.copy())
        named = [
            TrainingRun(predictions=r.predictions, labels=names[LABELS], name=r.name, classes=names)
            for r in runs
        ]
        result = ReproducibilityCheck(named).run()
        plain = ReproducibilityCheck(list(runs)).run()
        assert Status.PASS == result.status, str(result)
        assert plain.metrics == result.metrics

    def test_labels_outside_classes_raise(self) -> None:
        """A label missing from classes= is an error naming it."""
        runs = [TrainingRun(predictions=["a", "b"], labels=["a", "z"], name=n) for n in "xy"]
        with pytest.raises(InvalidInput, match="'labels' has 1 label not in classes.*'z'"):
            ReproducibilityCheck(runs, classes=["a", "b"]).run()

    def test_multilabel_churn_per_label(self) -> None:
        """2-D 0/1 labels: multi-label, churn judged per label, Hamming loss compared."""
        rng = np.random.default_rng(3)
        labels = rng.integers(0, 2, size=(400, 4))
        a = np.where(rng.random((400, 4)) < 0.9, labels, 1 - labels)
        b = a.copy()
        b[:40, 2] = 1 - b[:40, 2]
        same = ReproducibilityCheck(
            [TrainingRun(predictions=a, labels=labels, name=n) for n in "xy"]
        ).run()
        assert Status.PASS == same.status, str(same)
        assert "multilabel" == same.details["task"]
        moved = ReproducibilityCheck(
            [TrainingRun(predictions=a, labels=labels), TrainingRun(predictions=b, labels=labels)]
        ).run()
        churn = moved.finding("churn")
        assert (Status.FAIL, 0.1) == (churn.status, churn.observed)
        assert "label 2" in churn.message
        assert [0.0, 0.0, 0.1, 0.0] == moved.details["pairs"][0]["per_label_churn"]

    def test_integer_classes_that_are_not_indices(self, probs: np.ndarray) -> None:
        """Labels 3, 5, 7 with classes=[3, 5, 7]: coded to columns 0, 1, 2."""
        values = np.array([3, 5, 7])
        runs = [
            TrainingRun(predictions=probs, labels=values[LABELS], name="a"),
            TrainingRun(predictions=probs.copy(), labels=values[LABELS], name="b"),
        ]
        result = ReproducibilityCheck(runs, classes=values).run()
        plain = ReproducibilityCheck(run_pair(probs, probs.copy())).run()
        assert Status.PASS == result.status, str(result)
        assert plain.metrics == result.metrics
        assert [3, 5, 7] == result.details["classes"]
