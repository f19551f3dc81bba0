from __future__ import annotations

import json
import re
from typing import Any, cast

import numpy as np
import pytest
import scipy.stats

from mlchecks import AtLeast, AtMost, Between, NoWorseThan, Status
from mlchecks.check import Context, run_check
from mlchecks.checks.quality import GoldenSet, QualityCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Result
from mlchecks.stats.auc import delong
from mlchecks.stats.metrics import METRICS, f1

REGIONS = np.array(["east", "north", "south", "west", "centre", "coast", "hills", "plains"])


def wrong_labels(y: np.ndarray, ok: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``y`` where ``ok``, else one of the two other classes of three."""
    return np.where(ok, y, (y + rng.integers(1, 3, len(y))) % 3)


def probabilities(labels: np.ndarray) -> np.ndarray:
    """(n, 3) probabilities putting 0.7 on ``labels``."""
    probs = np.full((len(labels), 3), 0.15)
    probs[np.arange(len(labels)), labels] = 0.7
    return probs


def scenario(
    *,
    n: int = 20_000,
    east: int = 500,
    drop: float = 0.0,
    improve: float = 0.0,
    churn: float = 0.3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A baseline at accuracy 0.85 and a retrained candidate on the same examples.

    The candidate redraws the correctness of a ``churn`` fraction of examples (what a new
    seed does), at accuracy ``0.85 + improve``; in the ``east`` slice it additionally gets
    a ``drop`` fraction of examples wrong (the slice_regression fault).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    region = REGIONS[np.concatenate([np.zeros(east, dtype=int), rng.integers(1, 8, n - east)])]
    base_ok = rng.random(n) < 0.85
    redraw = rng.random(n) < churn
    cand_ok = np.where(redraw, rng.random(n) < 0.85 + improve, base_ok)
    cand_ok &= ~((region == "east") & (rng.random(n) < drop / 0.85))
    base = wrong_labels(y, base_ok, rng)
    cand = wrong_labels(y, cand_ok, rng)
    return {"labels": y, "region": region, "baseline": base, "candidate": cand}


def versus_baseline(data: dict[str, np.ndarray], **kwargs: Any) -> QualityCheck:
    settings: dict[str, Any] = {
        "labels": data["labels"],
        "predictions": data["candidate"],
        "baseline_predictions": data["baseline"],
        "slices": {"region": data["region"]},
        "max_regression": {"accuracy": NoWorseThan(abs=0.02)},
    }
    settings.update(kwargs)
    return QualityCheck(**settings)


def row(result: Result, kind: str, metric: str, slice_label: str = "all") -> dict[str, Any]:
    rows = [
        r
        for r in result.details["table"]
        if (r["kind"], r["metric"], r["slice"]) == (kind, metric, slice_label)
    ]
    assert 1 == len(rows)
    return rows[0]


class TestQualityCheckHealthy:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_healthy_retrain_passes(self, seed: int) -> None:
        """A retrain that changes 30% of predictions at the same accuracy passes every test."""
        data = scenario(seed=seed)
        result = versus_baseline(data, metric_limits={"accuracy": AtLeast(0.8)}).run()
        assert Status.PASS == result.status, result.summary
        names = {f.name for f in result.findings}
        assert {"limit.accuracy", "regression.accuracy"} <= names
        assert "slice.regression.accuracy" in names

    def test_report_shows_every_column_for_every_slice(self) -> None:
        """Each slice row has candidate, baseline, difference, CI, p-values and a verdict."""
        result = versus_baseline(scenario()).run()
        east = row(result, "regression", "accuracy", "region=east")
        assert {
            "metric",
            "slice",
            "candidate",
            "baseline",
            "difference",
            "ci_low",
            "ci_high",
            "pvalue",
            "adjusted_pvalue",
            "verdict",
        } <= set(east)
        assert east["ci_low"] <= east["difference"] <= east["ci_high"]
        assert east["pvalue"] <= east["adjusted_pvalue"] <= 1.0
        assert 9 == sum(r["kind"] == "regression" for r in result.details["table"])

    def test_result_is_json_safe_and_round_trips(self) -> None:
        """Metrics and details are plain JSON; the result survives to_dict/from_dict."""
        result = versus_baseline(scenario(), metric_limits={"accuracy": AtLeast(0.8)}).run()
        json.dumps(result.to_dict(), allow_nan=False)
        assert result == Result.from_dict(json.loads(json.dumps(result.to_dict())))
        table = result.details["table"]
        assert all(type(v) in (str, int, float, type(None)) for r in table for v in r.values())

    def test_runs_under_run_check_with_its_rubric(self) -> None:
        """The check is a Check: name 'quality', rubric 4."""
        result = run_check(versus_baseline(scenario()))
        assert ("quality", 4) == (result.check, result.rubric)

    def test_same_context_seed_same_result(self) -> None:
        """Bootstrap paths draw from the context's seed, so runs are reproducible."""
        data = regression_data(seed=0, noise=1.0, n=300)
        check = QualityCheck(
            labels=data["y"],
            predictions=data["cand"],
            metric_limits={"rmse": AtMost(2.0)},
            n_resamples=100,
        )
        assert check.run(Context(seed=3)).metrics == check.run(Context(seed=3)).metrics


class TestQualityCheckFloors:
    def test_a_floor_no_model_can_pass_says_how_many_examples_it_needs(self) -> None:
        """Accuracy 0.9 on 30 examples: 30 of 30 right is inconclusive (bound 0.884)."""
        y = np.zeros(30, dtype=int)
        finding = (
            QualityCheck(labels=y, predictions=y, metric_limits={"accuracy": 0.9})
            .run()
            .finding("limit.accuracy")
        )
        assert Status.WARN == finding.status
        assert "no model can pass this floor on 30 examples" in finding.message
        assert "it needs at least 36" in finding.message

    def test_point_estimate_above_the_floor_but_bound_below_is_inconclusive(self) -> None:
        """Accuracy 0.92 on 400 examples has not shown accuracy >= 0.9 either way: WARN."""
        y = np.zeros(400, dtype=int)
        predictions = np.where(np.arange(400) < 368, 0, 1)
        result = QualityCheck(
            labels=y, predictions=predictions, metric_limits={"accuracy": AtLeast(0.9)}
        ).run()
        finding = result.finding("limit.accuracy")
        low = scipy.stats.binomtest(368, 400).proportion_ci(0.95, method="exact").low
        assert Status.WARN == result.status
        assert "inconclusive" in finding.message
        assert low == pytest.approx(finding.observed)
        assert 0.92 == result.metrics["accuracy"]
        assert low == pytest.approx(result.metrics["accuracy.ci_low"])
        assert "point estimate 0.92" in finding.message
        assert "warn" == row(result, "limit", "accuracy")["verdict"]

    def test_enough_examples_pass_the_same_floor(self) -> None:
        """The same accuracy on 10,000 examples has a lower bound above 0.9."""
        y = np.zeros(10_000, dtype=int)
        predictions = np.where(np.arange(10_000) < 9_200, 0, 1)
        check = QualityCheck(
            labels=y, predictions=predictions, metric_limits={"accuracy": AtLeast(0.9)}
        )
        assert Status.PASS == check.run().status

    def test_at_most_uses_the_upper_bound(self) -> None:
        """A loss ceiling is judged on the upper confidence bound of the loss."""
        data = scenario(n=2_000)
        probs = probabilities(data["candidate"])
        result = QualityCheck(
            labels=data["labels"],
            predictions=probs,
            metric_limits={"log_loss": AtMost(10.0)},
            n_resamples=200,
        ).run()
        finding = result.finding("limit.log_loss")
        assert result.metrics["log_loss.ci_high"] == finding.observed
        assert result.metrics["log_loss.ci_low"] < result.metrics["log_loss"] < finding.observed
        assert METRICS["log_loss"](data["labels"], probs) == pytest.approx(
            result.metrics["log_loss"]
        )

    def test_between_needs_the_whole_interval_inside(self) -> None:
        """Between passes when the interval is inside, warns when it straddles, fails outside."""
        y = np.zeros(400, dtype=int)
        predictions = np.where(np.arange(400) < 368, 0, 1)
        inside = QualityCheck(
            labels=y, predictions=predictions, metric_limits={"accuracy": Between(0.85, 0.95)}
        )
        straddling = QualityCheck(
            labels=y, predictions=predictions, metric_limits={"accuracy": Between(0.9, 1.0)}
        )
        outside = QualityCheck(
            labels=y, predictions=predictions, metric_limits={"accuracy": Between(0.95, 1.0)}
        )
        statuses = (inside.run().status, straddling.run().status, outside.run().status)
        assert (Status.PASS, Status.WARN, Status.FAIL) == statuses

    def test_warn_severity_is_kept(self) -> None:
        """A floor with severity WARN warns instead of failing."""
        y = np.zeros(400, dtype=int)
        predictions = np.where(np.arange(400) < 368, 0, 1)
        check = QualityCheck(
            labels=y,
            predictions=predictions,
            metric_limits={"accuracy": AtLeast(0.9, severity="warn")},
        )
        assert Status.WARN == check.run().status

    def test_confusion_metric_uses_the_count_bootstrap(self) -> None:
        """Macro F1's interval comes from resampled confusion counts and brackets the value."""
        data = scenario(n=3_000)
        result = QualityCheck(
            labels=data["labels"],
            predictions=data["candidate"],
            metric_limits={"f1_macro": AtLeast(0.5)},
            n_resamples=400,
        ).run()
        value = f1(data["labels"], data["candidate"], average="macro")
        assert value == pytest.approx(result.metrics["f1_macro"])
        assert result.metrics["f1_macro.ci_low"] < value < result.metrics["f1_macro.ci_high"]
        assert "count bootstrap" in result.finding("limit.f1_macro").message


class TestQualityCheckRegression:
    def test_slice_regression_fails_naming_the_slice_while_the_aggregate_passes(self) -> None:
        """A 20-point drop in a 500-example slice fails there; the aggregate finding passes."""
        data = scenario(drop=0.2)
        result = versus_baseline(data).run()
        assert Status.FAIL == result.status
        assert Status.PASS == result.finding("regression.accuracy").status
        east = result.finding("slice.regression.accuracy")
        assert Status.FAIL == east.status
        assert east.observed < -0.15
        assert "region=east" in result.summary
        failing = [f.name for f in result.findings if f.status is Status.FAIL]
        assert ["slice.regression.accuracy"] == failing
        assert abs(result.metrics["accuracy.difference"]) < 0.03

    def test_benjamini_hochberg_names_the_same_slice(self) -> None:
        """correction='bh' also finds the regressed slice and nothing else."""
        result = versus_baseline(scenario(drop=0.2), correction="bh").run()
        failing = [f.name for f in result.findings if f.status is Status.FAIL]
        assert ["slice.regression.accuracy"] == failing
        assert "BH-adjusted" in result.finding("slice.regression.accuracy").message

    def test_holm_adjusts_the_slice_pvalues(self) -> None:
        """Adjusted p-values are Holm's over the 8 slice tests."""
        from mlchecks.stats.multiple import holm

        result = versus_baseline(scenario(drop=0.2)).run()
        rows = [r for r in result.details["table"] if r["slice"] != "all"]
        raw = [r["pvalue"] for r in rows]
        assert holm(raw).tolist() == pytest.approx([r["adjusted_pvalue"] for r in rows])

    def test_overall_noninferiority_warns_when_inconclusive(self) -> None:
        """With 300 examples the interval is wider than the margin: inconclusive, a WARN."""
        data = scenario(n=300, east=0)
        strict = versus_baseline(
            data, slices=None, max_regression={"accuracy": NoWorseThan(abs=0.01)}
        )
        result = strict.run()
        finding = result.finding("regression.accuracy")
        assert Status.WARN == finding.status
        assert "cannot be ruled out" in finding.message
        assert "inconclusive" in finding.message

    def test_overall_regression_test_passes_when_inconclusive(self) -> None:
        """overall_test='regression' fails only on a shown regression."""
        data = scenario(n=300, east=0)
        lenient = versus_baseline(
            data,
            slices=None,
            max_regression={"accuracy": NoWorseThan(abs=0.01)},
            overall_test="regression",
        )
        assert Status.PASS == lenient.run().status

    def test_noninferiority_in_slices_warns_on_small_slices(self) -> None:
        """slice_test='noninferiority' warns (inconclusive) on healthy slices whose intervals
        are wider than the margin; it fails none of them."""
        data = scenario()
        strict = versus_baseline(data, slice_test="noninferiority").run()
        assert not [f for f in strict.findings if f.status is Status.FAIL]
        warning = [f for f in strict.findings if f.status is Status.WARN]
        assert ["slice.regression.accuracy"] == [f.name for f in warning]
        assert "cannot be ruled out (non-inferiority p" in warning[0].message
        rows = [r for r in strict.details["table"] if r["slice"] != "all"]
        assert any(r["verdict"] == "warn" for r in rows)
        assert Status.PASS == versus_baseline(data).run().status

    def test_small_slices_are_listed_but_not_tested(self) -> None:
        """A slice under slice_min_size gets a 'skipped' row and no finding."""
        result = versus_baseline(scenario(east=50, drop=0.5)).run()
        east = row(result, "regression", "accuracy", "region=east")
        assert ("skipped", None) == (east["verdict"], east["pvalue"])
        assert "slice_min_size=100" in east["reason"]
        assert all("east" not in f.name for f in result.findings)

    def test_a_shown_regression_of_the_aggregate_fails(self) -> None:
        """A candidate 5 points worse everywhere fails the aggregate and is 'shown'."""
        data = scenario(churn=1.0, improve=-0.05)
        finding = versus_baseline(data, slices=None).run().finding("regression.accuracy")
        assert Status.FAIL == finding.status
        assert "statistically shown" in finding.message

    def test_paired_interval_matches_the_kernel(self) -> None:
        """The aggregate row is the paired accuracy difference of the inference kernel."""
        from mlchecks.stats.inference import paired_accuracy_difference

        data = scenario()
        result = versus_baseline(data, slices=None).run()
        expected = paired_accuracy_difference(
            data["candidate"] == data["labels"], data["baseline"] == data["labels"]
        )
        aggregate = row(result, "regression", "accuracy")
        assert expected.difference == pytest.approx(aggregate["difference"])
        assert expected.ci == pytest.approx((aggregate["ci_low"], aggregate["ci_high"]))

    def test_error_rate_mirrors_accuracy(self) -> None:
        """The error rate's difference is minus the accuracy's; a worse model still fails."""
        data = scenario(churn=1.0, improve=-0.05)
        result = versus_baseline(
            data, slices=None, max_regression={"error_rate": NoWorseThan(abs=0.02)}
        ).run()
        aggregate = row(result, "regression", "error_rate")
        assert aggregate["difference"] > 0
        assert aggregate["ci_low"] <= aggregate["difference"] <= aggregate["ci_high"]
        assert Status.FAIL == result.status

    def test_relative_margin_scales_with_the_baseline(self) -> None:
        """NoWorseThan(rel=0.05) on accuracy 0.85 allows a drop of about 0.0425."""
        data = scenario(churn=1.0, improve=-0.02)
        check = versus_baseline(
            data, slices=None, max_regression={"accuracy": NoWorseThan(rel=0.05)}
        )
        finding = check.run().finding("regression.accuracy")
        assert Status.PASS == finding.status
        assert "allowed drop of 0.042" in finding.message

    def test_zero_margin_uses_the_exact_mcnemar_test(self) -> None:
        """With abs=0 a slice's regression p-value is the one-sided exact McNemar p."""
        data = scenario(drop=0.2)
        result = versus_baseline(
            data,
            max_regression={"accuracy": NoWorseThan(abs=0.0)},
            correction="none",
            overall_test="regression",
        ).run()
        east = data["region"] == "east"
        cand_ok = data["candidate"][east] == data["labels"][east]
        base_ok = data["baseline"][east] == data["labels"][east]
        b, c = int(np.sum(cand_ok & ~base_ok)), int(np.sum(~cand_ok & base_ok))
        expected = scipy.stats.binomtest(b, b + c, 0.5, alternative="less").pvalue
        assert expected == pytest.approx(
            row(result, "regression", "accuracy", "region=east")["pvalue"]
        )

    @pytest.mark.parametrize("field", ["overall_test", "slice_test"])
    def test_a_zero_margin_under_noninferiority_is_rejected(self, field: str) -> None:
        """NoWorseThan(abs=0) under a non-inferiority test can never pass a same-quality
        candidate: rejected at construction, naming the field, the value and the fix."""
        data = scenario()
        tests = {"overall_test": "regression", "slice_test": "regression", field: "noninferiority"}
        with pytest.raises(InvalidInput) as info:
            versus_baseline(data, max_regression={"accuracy": NoWorseThan(abs=0)}, **tests)
        message = str(info.value)
        assert f"{field}='noninferiority'" in message
        assert "'max_regression' 'accuracy': drop <= 0" in message
        assert "never pass a candidate of the same quality" in message
        assert "NoWorseThan(abs=0.005)" in message
        assert f"{field}='regression'" in message

    def test_a_zero_relative_margin_is_rejected_too(self) -> None:
        """rel=0 makes the margin 0 whatever the baseline."""
        with pytest.raises(InvalidInput, match="never pass"):
            versus_baseline(
                scenario(), slices=None, max_regression={"accuracy": NoWorseThan(rel=0.0)}
            )

    def test_slices_get_the_exact_conditional_interval(self) -> None:
        """Slice rows carry the exact conditional interval of the discordant pairs."""
        from mlchecks.stats.paired import discordant_interval

        data = scenario(drop=0.2)
        result = versus_baseline(data, correction="none").run()
        east = data["region"] == "east"
        cand_ok = data["candidate"][east] == data["labels"][east]
        base_ok = data["baseline"][east] == data["labels"][east]
        b, c = int(np.sum(cand_ok & ~base_ok)), int(np.sum(~cand_ok & base_ok))
        ci = discordant_interval(b, c, int(east.sum()), 0.95)
        found = row(result, "regression", "accuracy", "region=east")
        assert (found["ci_low"], found["ci_high"]) == pytest.approx(tuple(ci))
        assert "exact conditional" in result.finding("slice.regression.accuracy").message

    def test_loss_metrics_worsen_upwards(self) -> None:
        """NoWorseThan on log_loss takes its direction from the metric: a rise is worse."""
        data = scenario(n=4_000, east=0, churn=1.0, improve=-0.1)
        check = versus_baseline(
            data,
            slices=None,
            predictions=probabilities(data["candidate"]),
            baseline_predictions=probabilities(data["baseline"]),
            max_regression={"log_loss": NoWorseThan(abs=0.01)},
            n_resamples=300,
        )
        assert check.max_regression["log_loss"].higher_is_better is False
        finding = check.run().finding("regression.log_loss")
        assert Status.FAIL == finding.status
        assert finding.observed > 0
        assert "rise" in finding.message


def binary_scores(seed: int, n: int = 2_000, noise_b: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return {
        "y": y,
        "base": y + rng.normal(0, 1.0, n),
        "cand": y + rng.normal(0, noise_b, n),
        "region": REGIONS[rng.integers(0, 4, n)],
    }


class TestQualityCheckAuc:
    def test_auc_comparison_is_delong(self) -> None:
        """ROC AUC rows come from DeLong's test on the same examples."""
        data = binary_scores(0)
        result = QualityCheck(
            labels=data["y"],
            predictions=data["cand"],
            baseline_predictions=data["base"],
            max_regression={"roc_auc": NoWorseThan(abs=0.05)},
        ).run()
        expected = delong(data["y"], data["cand"], data["base"])
        aggregate = row(result, "regression", "roc_auc")
        assert expected.difference == pytest.approx(aggregate["difference"])
        assert expected.ci == pytest.approx((aggregate["ci_low"], aggregate["ci_high"]))
        assert Status.PASS == result.status
        assert "delong" in result.finding("regression.roc_auc").message

    def test_a_much_worse_scorer_fails_in_every_slice(self) -> None:
        """Scores with three times the noise lose AUC everywhere."""
        data = binary_scores(1, noise_b=3.0)
        result = QualityCheck(
            labels=data["y"],
            predictions=data["cand"],
            baseline_predictions=data["base"],
            slices={"region": data["region"]},
            max_regression={"roc_auc": NoWorseThan(abs=0.02)},
        ).run()
        failing = {f.name for f in result.findings if f.status is Status.FAIL}
        assert "regression.roc_auc" in failing
        assert "slice.regression.roc_auc" in failing
        rows = [r for r in result.details["table"] if r["slice"] != "all"]
        assert 4 == sum(r["verdict"] == "fail" for r in rows)
        assert "4 of 4 slices" in result.finding("slice.regression.roc_auc").message

    def test_auc_floor_uses_the_delong_interval(self) -> None:
        """An AUC floor is judged on DeLong's lower bound."""
        data = binary_scores(2)
        result = QualityCheck(
            labels=data["y"], predictions=data["cand"], metric_limits={"roc_auc": AtLeast(0.7)}
        ).run()
        assert Status.PASS == result.status
        assert "delong" in result.finding("limit.roc_auc").message

    def test_single_class_slice_is_skipped_with_the_reason(self) -> None:
        """A slice where DeLong's variance is undefined is skipped, not an error."""
        data = binary_scores(3)
        region = data["region"].copy()
        region[data["y"] == 1] = np.where(
            region[data["y"] == 1] == "east", "north", region[data["y"] == 1]
        )
        result = QualityCheck(
            labels=data["y"],
            predictions=data["cand"],
            baseline_predictions=data["base"],
            slices={"region": region},
            max_regression={"roc_auc": NoWorseThan(abs=0.05)},
        ).run()
        east = row(result, "regression", "roc_auc", "region=east")
        assert "skipped" == east["verdict"]
        assert "at least 2 positive" in east["reason"]


def regression_data(seed: int, noise: float, n: int = 5_000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return {"y": y, "base": y + rng.normal(0, 1.0, n), "cand": y + rng.normal(0, noise, n)}


class TestQualityCheckBootstrap:
    def test_mse_comparison_passes_for_an_equally_good_model(self) -> None:
        """Two models with the same noise have an MSE difference within 0.1."""
        data = regression_data(0, noise=1.0)
        result = QualityCheck(
            labels=data["y"],
            predictions=data["cand"],
            baseline_predictions=data["base"],
            max_regression={"mse": NoWorseThan(abs=0.1)},
            n_resamples=300,
        ).run()
        assert Status.PASS == result.status, result.summary
        assert "exact bootstrap se" in result.finding("regression.mse").message

    def test_a_noisier_model_fails_on_mse(self) -> None:
        """Noise sd 1.5 instead of 1 raises the MSE by about 1.25: a shown regression."""
        data = regression_data(2, noise=1.5)
        finding = (
            QualityCheck(
                labels=data["y"],
                predictions=data["cand"],
                baseline_predictions=data["base"],
                max_regression={"mse": NoWorseThan(abs=0.1)},
                n_resamples=200,
            )
            .run()
            .finding("regression.mse")
        )
        assert Status.FAIL == finding.status
        assert "statistically shown" in finding.message

    def test_metric_without_per_example_values_uses_the_row_bootstrap(self) -> None:
        """RMSE (not a mean of per-example values) is bootstrapped by rows."""
        data = regression_data(3, noise=1.0, n=500)
        result = QualityCheck(
            labels=data["y"],
            predictions=data["cand"],
            baseline_predictions=data["base"],
            max_regression={"rmse": NoWorseThan(abs=0.5)},
            metric_limits={"rmse": AtMost(1.5)},
            n_resamples=100,
        ).run()
        assert Status.PASS == result.status, result.summary
        aggregate = row(result, "regression", "rmse")
        assert aggregate["ci_low"] < aggregate["difference"] < aggregate["ci_high"]

    def test_paired_f1_uses_paired_confusion_counts(self) -> None:
        """The paired macro-F1 difference is that of the metric, and a worse model fails."""
        data = scenario(n=4_000, east=0, churn=1.0, improve=-0.1)
        result = versus_baseline(
            data, slices=None, max_regression={"f1_macro": NoWorseThan(abs=0.02)}, n_resamples=300
        ).run()
        expected = f1(data["labels"], data["candidate"], average="macro") - f1(
            data["labels"], data["baseline"], average="macro"
        )
        aggregate = row(result, "regression", "f1_macro")
        assert expected == pytest.approx(aggregate["difference"])
        assert Status.FAIL == result.status


class TestQualityCheckImprovement:
    def test_max_improvement_warns(self) -> None:
        """A 10-point jump beyond a 5-point bound warns and names the likely causes."""
        data = scenario(churn=1.0, improve=0.1)
        result = versus_baseline(data, slices=None, max_improvement={"accuracy": 0.05}).run()
        finding = result.finding("improvement.accuracy")
        assert (Status.WARN, Status.WARN) == (result.status, finding.status)
        assert finding.observed == pytest.approx(0.1, abs=0.01)
        assert "leakage" in finding.message
        assert result.passed

    def test_ordinary_improvement_passes(self) -> None:
        """A healthy retrain is not a suspicious improvement."""
        result = versus_baseline(scenario(), max_improvement={"accuracy": 0.05}).run()
        assert Status.PASS == result.finding("improvement.accuracy").status

    def test_improvement_alone_needs_no_max_regression(self) -> None:
        """max_improvement works with a baseline and no regression limits."""
        data = scenario(churn=1.0, improve=0.1)
        check = QualityCheck(
            labels=data["labels"],
            predictions=data["candidate"],
            baseline_predictions=data["baseline"],
            max_improvement={"accuracy": 0.05},
        )
        assert Status.WARN == check.run().status


def linear_predict(inputs: np.ndarray) -> np.ndarray:
    """A tiny regression model: the sum of the features."""
    return np.asarray(inputs, dtype=float).sum(axis=1)


class TestGoldenSet:
    def test_every_mismatch_is_listed(self) -> None:
        """Mismatches give index, expected and got, for every differing example."""
        inputs = np.arange(10.0).reshape(5, 2)
        expected = linear_predict(inputs)
        expected[[1, 3]] += 1.0
        result = QualityCheck(predict=linear_predict, golden=GoldenSet(inputs, expected)).run()
        assert Status.FAIL == result.status
        assert [
            {"index": 1, "expected": 6.0, "got": 5.0},
            {"index": 3, "expected": 14.0, "got": 13.0},
        ] == result.details["golden_mismatches"]
        assert "2 of 5 golden examples differ" in result.finding("golden").message

    def test_matching_outputs_pass(self) -> None:
        """Outputs within the tolerance pass."""
        inputs = np.arange(10.0).reshape(5, 2)
        golden = GoldenSet(inputs, linear_predict(inputs) + 1e-7, prediction_atol=1e-6)
        result = QualityCheck(predict=linear_predict, golden=golden).run()
        assert (Status.PASS, []) == (result.status, result.details["golden_mismatches"])

    def test_integer_expectations_compare_predicted_classes(self) -> None:
        """Expected labels against (n, C) probabilities compare the argmax."""
        golden = GoldenSet(np.array([0, 1, 2]), expected=[0, 1, 1])
        result = QualityCheck(predict=probabilities, golden=golden).run()
        assert [{"index": 2, "expected": 1, "got": 2}] == result.details["golden_mismatches"]

    def test_nan_probabilities_mismatch_and_show_the_row(self) -> None:
        """A row of NaN probabilities never matches a label; the mismatch shows the raw row."""
        probs = probabilities(np.array([0, 1]))
        probs[1] = np.nan
        golden = GoldenSet(np.zeros((2, 1)), expected=[0, 1])
        result = QualityCheck(predict=lambda x: probs, golden=golden).run()
        mismatches = result.details["golden_mismatches"]
        assert [1] == [m["index"] for m in mismatches]
        assert ["NaN", "NaN", "NaN"] == mismatches[0]["got"]

    def test_rows_of_two_dimensional_outputs_compare_as_a_whole(self) -> None:
        """For (n, k) expected outputs, a row mismatches when any element does."""
        expected = np.array([[0.1, 0.9], [0.5, 0.5]])
        got = np.array([[0.1, 0.9], [0.5, 0.6]])
        assert [1] == [m["index"] for m in GoldenSet(None, expected).mismatches(got)]

    def test_nan_outputs_mismatch(self) -> None:
        """A NaN output never matches."""
        golden = GoldenSet(np.zeros((2, 1)), expected=[0.0, 0.0])
        result = QualityCheck(predict=lambda x: np.array([0.0, np.nan]), golden=golden).run()
        assert [1] == [m["index"] for m in result.details["golden_mismatches"]]

    def test_wrong_output_shape_fails(self) -> None:
        """Outputs of another shape fail the golden finding instead of raising."""
        golden = GoldenSet(np.zeros((2, 1)), expected=[0.0, 0.0])
        result = QualityCheck(predict=lambda x: np.zeros(3), golden=golden).run()
        assert Status.FAIL == result.finding("golden").status
        assert "shape (3,)" in result.finding("golden").message

    def test_golden_with_evaluation_in_predict_mode(self) -> None:
        """predict + inputs evaluates the candidate and runs the golden set through it."""
        rng = np.random.default_rng(0)
        inputs = rng.normal(size=(1_000, 2))
        labels = linear_predict(inputs) + rng.normal(0, 0.1, 1_000)
        calls: list[int] = []

        def predict(x: np.ndarray) -> np.ndarray:
            calls.append(len(x))
            return linear_predict(x)

        result = QualityCheck(
            labels=labels,
            predict=predict,
            inputs=inputs,
            golden=GoldenSet(inputs[:5], linear_predict(inputs[:5])),
            metric_limits={"mse": AtMost(0.02)},
            n_resamples=100,
        ).run()
        assert Status.PASS == result.status, result.summary
        assert [5, 1_000] == calls
        assert ((labels - linear_predict(inputs)) ** 2).mean() == pytest.approx(
            result.metrics["mse"]
        )

    def test_negative_tolerance_is_rejected(self) -> None:
        """Tolerances are >= 0."""
        with pytest.raises(InvalidInput, match=r"'prediction_atol' must be in \[0, inf\)"):
            GoldenSet([1], [1.0], prediction_atol=-1.0)

    def test_inputs_and_expected_must_match_in_length(self) -> None:
        """One expected output per golden input."""
        with pytest.raises(InvalidInput, match="'inputs' and 'expected' must have the same"):
            GoldenSet([1, 2], [1.0])


class TestQualityCheckBadModel:
    def test_nan_predictions_fail_instead_of_raising(self) -> None:
        """A model that outputs NaN fails the check with the count of bad rows."""
        probs = probabilities(np.zeros(100, dtype=int))
        probs[3] = np.nan
        result = QualityCheck(
            labels=np.zeros(100, dtype=int),
            predictions=probs,
            metric_limits={"accuracy": AtLeast(0.5)},
        ).run()
        finding = result.finding("predictions")
        assert (Status.FAIL, 1.0) == (finding.status, finding.observed)

    def test_predict_returning_the_wrong_length_fails(self) -> None:
        """predict(inputs) must return one prediction per label."""
        result = QualityCheck(
            labels=np.zeros(10, dtype=int),
            predict=lambda x: np.zeros(9, dtype=int),
            inputs=np.zeros((10, 1)),
            metric_limits={"accuracy": AtLeast(0.5)},
        ).run()
        assert Status.FAIL == result.finding("predictions").status


class TestQualityCheckValidation:
    y = np.zeros(10, dtype=int)

    def test_unknown_metric_lists_the_known_ones(self) -> None:
        """A misspelt metric name is rejected with the list of names."""
        with pytest.raises(
            InvalidInput,
            match="'metric_limits' keys must be known metric names.*accuracy, error_rate",
        ):
            QualityCheck(labels=self.y, predictions=self.y, metric_limits={"acc": AtLeast(0.9)})

    def test_no_worse_than_belongs_in_max_regression(self) -> None:
        """metric_limits take numbers and absolute conditions only."""
        with pytest.raises(InvalidInput, match="use max_regression for NoWorseThan"):
            QualityCheck(
                labels=self.y, predictions=self.y, metric_limits={"accuracy": NoWorseThan(abs=0.1)}
            )

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("alpha", 0.5, "'alpha' must be in \\(0, 0.5\\)"),
            ("slice_min_size", 0, "'slice_min_size' must be >= 1"),
            ("correction", "bonferroni", "'correction' must be one of 'holm', 'bh', 'none'"),
            (
                "overall_test",
                "strict",
                "'overall_test' must be one of 'noninferiority', 'regression'",
            ),
            ("n_resamples", 10, "'n_resamples' must be >= 100"),
        ],
    )
    def test_settings_are_validated(self, field: str, value: object, message: str) -> None:
        """Each setting names itself and the bad value."""
        with pytest.raises(InvalidInput, match=message):
            QualityCheck(
                labels=self.y,
                predictions=self.y,
                metric_limits={"accuracy": AtLeast(0.5)},
                **{field: value},
            )

    def test_max_improvement_bound_must_be_positive(self) -> None:
        """The improvement bound is a positive number, named in the error."""
        with pytest.raises(InvalidInput, match="'max_improvement\\['accuracy'\\]' must be"):
            QualityCheck(
                labels=self.y,
                predictions=self.y,
                baseline_predictions=self.y,
                max_improvement={"accuracy": -0.1},
            )

    def test_metric_limits_must_be_a_mapping(self) -> None:
        """A list of conditions is not a mapping of metric names."""
        with pytest.raises(InvalidInput, match="'metric_limits' must be a mapping"):
            QualityCheck(labels=self.y, predictions=self.y, metric_limits=[AtLeast(0.5)])  # type: ignore[arg-type]

    def test_predictions_or_predict_and_inputs_are_required(self) -> None:
        """Without predictions there is nothing to evaluate."""
        with pytest.raises(InvalidInput, match="'predictions' or both 'predict' and 'inputs'"):
            QualityCheck(labels=self.y, metric_limits={"accuracy": AtLeast(0.5)})

    def test_predictions_and_inputs_together_are_rejected(self) -> None:
        """Two sources of candidate predictions are ambiguous."""
        with pytest.raises(InvalidInput, match="either 'predictions' or 'predict' with 'inputs'"):
            QualityCheck(
                labels=self.y,
                predictions=self.y,
                predict=linear_predict,
                inputs=np.zeros((10, 1)),
                metric_limits={"accuracy": AtLeast(0.5)},
            )

    def test_golden_needs_predict(self) -> None:
        """Golden inputs must be run through the model."""
        with pytest.raises(InvalidInput, match="'golden' needs 'predict'"):
            QualityCheck(labels=self.y, predictions=self.y, golden=GoldenSet([1], [1]))

    def test_max_regression_needs_a_baseline(self) -> None:
        """A regression limit without the previous model's predictions is an error."""
        with pytest.raises(InvalidInput, match="need 'baseline_predictions'"):
            QualityCheck(
                labels=self.y, predictions=self.y, max_regression={"accuracy": NoWorseThan(abs=0.1)}
            )

    def test_baseline_needs_max_regression(self) -> None:
        """A baseline without limits would be silently ignored: it is an error."""
        with pytest.raises(InvalidInput, match="'max_regression' is empty"):
            QualityCheck(
                labels=self.y,
                predictions=self.y,
                baseline_predictions=self.y,
                metric_limits={"accuracy": AtLeast(0.5)},
            )

    def test_nothing_to_check_is_rejected(self) -> None:
        """A check with no condition is a mistake."""
        with pytest.raises(InvalidInput, match="nothing to check"):
            QualityCheck(labels=self.y, predictions=self.y)

    def test_lengths_must_agree(self) -> None:
        """Predictions and labels describe the same examples."""
        with pytest.raises(InvalidInput, match="'labels' and 'predictions' must have the same"):
            QualityCheck(
                labels=self.y, predictions=self.y[:9], metric_limits={"accuracy": AtLeast(0.5)}
            )

    def test_slices_must_have_one_id_per_example(self) -> None:
        """A slice array of the wrong length is rejected at construction."""
        with pytest.raises(InvalidInput, match="one slice id per example"):
            QualityCheck(
                labels=self.y,
                predictions=self.y,
                slices={"region": np.zeros(9, dtype=int)},
                metric_limits={"accuracy": AtLeast(0.5)},
            )

    def test_nan_labels_are_rejected(self) -> None:
        """Labels are data, not model output: NaN there is invalid input."""
        with pytest.raises(InvalidInput, match="'labels' must be finite"):
            QualityCheck(
                labels=[0.0, np.nan], predictions=[0, 0], metric_limits={"accuracy": AtLeast(0.5)}
            )


KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class TestQualityCheckGlossary:
    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("confidence", "'alpha' (alpha = 1 - confidence)"),
            ("thresholds", "'metric_limits'"),
            ("suspicious_improvement", "'max_improvement'"),
            ("min_slice_size", "'slice_min_size'"),
        ],
    )
    def test_old_keyword_names_the_new_one(self, old: str, new: str) -> None:
        """A 0.1 keyword raises TypeError naming the keyword that replaced it."""
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to {re.escape(new)}"):
            QualityCheck(**cast(dict[str, Any], {old: 1}))

    @pytest.mark.parametrize(
        ("old", "new"), [("atol", "prediction_atol"), ("rtol", "prediction_rtol")]
    )
    def test_golden_set_tolerances_were_renamed(self, old: str, new: str) -> None:
        """GoldenSet's bare atol/rtol name their prediction_* replacements."""
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to '{new}'"):
            GoldenSet([1], [1.0], **{old: 0.1})

    def test_fields_are_keyword_only_and_golden_inputs_positional(self) -> None:
        """QualityCheck takes keywords only; GoldenSet takes inputs and expected by position."""
        with pytest.raises(TypeError):
            QualityCheck(np.zeros(3))  # type: ignore[call-arg]
        golden = GoldenSet([[0.0], [1.0]], [0, 1], prediction_atol=0.5)
        assert (0.5, 0.0) == (golden.prediction_atol, golden.prediction_rtol)

    def test_metric_limit_number_is_a_floor_or_a_ceiling_by_direction(self) -> None:
        """A number is AtLeast for a score and AtMost for a loss."""
        y = np.zeros(400, dtype=int)
        check = QualityCheck(
            labels=y,
            predictions=probabilities(y)[:, :2] / 0.85,
            metric_limits={"accuracy": 0.7, "log_loss": 1.0},
        )
        assert AtLeast(0.7) == check.metric_limits["accuracy"]
        assert AtMost(1.0) == check.metric_limits["log_loss"]
        assert Status.PASS == check.run().status

    def test_metric_limit_number_judges_like_the_condition(self) -> None:
        """metric_limits={'accuracy': 0.9} gives the verdict of AtLeast(0.9)."""
        y = np.zeros(400, dtype=int)
        predictions = np.where(np.arange(400) < 368, 0, 1)
        number = QualityCheck(labels=y, predictions=predictions, metric_limits={"accuracy": 0.9})
        condition = QualityCheck(
            labels=y, predictions=predictions, metric_limits={"accuracy": AtLeast(0.9)}
        )
        assert Status.WARN == number.run().status
        assert number.run().findings == condition.run().findings

    def test_max_regression_number_is_an_absolute_margin(self) -> None:
        """max_regression={'log_loss': 0.01} is NoWorseThan(abs=0.01) with the loss's direction."""
        y = np.zeros(10, dtype=int)
        check = QualityCheck(
            labels=y,
            predictions=y,
            baseline_predictions=y,
            max_regression={"accuracy": 0.01, "log_loss": 0.02},
        )
        assert NoWorseThan(abs=0.01) == check.max_regression["accuracy"]
        assert NoWorseThan(abs=0.02, higher_is_better=False) == check.max_regression["log_loss"]

    def test_max_regression_number_judges_like_the_condition(self) -> None:
        """A number and NoWorseThan(abs=...) give the same findings."""
        data = scenario(drop=0.2)
        number = versus_baseline(data, max_regression={"accuracy": 0.02}).run()
        condition = versus_baseline(data).run()
        assert Status.FAIL == number.status
        assert number.findings == condition.findings

    def test_max_improvement_number_warns_and_a_condition_may_fail(self) -> None:
        """A number warns by default; AtMost(..., severity='fail') fails."""
        data = scenario(churn=1.0, improve=0.1)
        warn = versus_baseline(data, slices=None, max_improvement={"accuracy": 0.05})
        fail = versus_baseline(
            data, slices=None, max_improvement={"accuracy": AtMost(0.05, severity="fail")}
        )
        assert AtMost(0.05, severity="warn") == warn.max_improvement["accuracy"]
        assert Status.WARN == warn.run().finding("improvement.accuracy").status
        assert Status.FAIL == fail.run().finding("improvement.accuracy").status

    def test_warn_severity_regression_limit_warns(self) -> None:
        """NoWorseThan(severity='warn') turns the regression findings into warnings."""
        data = scenario(drop=0.2)
        condition = NoWorseThan(abs=0.02, severity="warn")
        result = versus_baseline(data, max_regression={"accuracy": condition}).run()
        assert Status.WARN == result.status
        assert Status.WARN == result.finding("slice.regression.accuracy").status
        assert result.passed

    def test_warn_severity_metric_limit_given_as_a_ceiling_warns(self) -> None:
        """AtMost(severity='warn') on a loss warns when the upper bound crosses it."""
        y = np.zeros(400, dtype=int)
        probs = probabilities(y)[:, :2] / 0.85
        limit = AtMost(0.01, severity="warn")
        result = QualityCheck(labels=y, predictions=probs, metric_limits={"log_loss": limit}).run()
        assert Status.WARN == result.finding("limit.log_loss").status

    def test_alpha_sets_the_interval_level(self) -> None:
        """alpha=0.1 gives 90% intervals, narrower than the default 95%."""
        data = scenario()
        wide = versus_baseline(data, slices=None).run()
        narrow = versus_baseline(data, slices=None, alpha=0.1).run()
        high, low = "accuracy.difference_ci_high", "accuracy.difference_ci_low"
        assert narrow.metrics[high] - narrow.metrics[low] < wide.metrics[high] - wide.metrics[low]
        assert 0.1 == narrow.details["alpha"]
        assert 0.9 == pytest.approx(narrow.details["confidence"])
        assert 0.05 == narrow.details["one_sided_alpha"]
        assert "90% CI" in narrow.finding("regression.accuracy").message

    def test_keys_follow_the_scheme_without_slice_names(self) -> None:
        """Metric keys and finding names are dot-separated snake_case with no slice value."""
        inputs = np.arange(10.0).reshape(5, 2)
        data = scenario(drop=0.2)
        result = versus_baseline(
            data,
            metric_limits={"accuracy": 0.8},
            max_improvement={"accuracy": 0.05},
        ).run()
        golden = QualityCheck(
            predict=linear_predict, golden=GoldenSet(inputs, linear_predict(inputs))
        ).run()
        keys = [*result.metrics, *(f.name for f in result.findings), *golden.metrics]
        assert all(KEY.match(key) for key in keys), keys
        assert not any(region in key for key in keys for region in REGIONS)
        assert {
            "accuracy",
            "accuracy.ci_low",
            "accuracy.ci_high",
            "accuracy.baseline",
            "accuracy.difference",
            "accuracy.difference_ci_low",
            "accuracy.difference_ci_high",
        } == set(result.metrics)
        assert [
            "limit.accuracy",
            "regression.accuracy",
            "slice.regression.accuracy",
            "improvement.accuracy",
        ] == [f.name for f in result.findings]
        assert {"golden.n_mismatches": 0.0} == dict(golden.metrics)


class _NamedModel:
    """A fitted estimator as scikit-learn shapes one: classes_ and predict_proba."""

    classes_ = np.array(["cat", "cow", "dog"])

    def __init__(self, wrong: bool = False) -> None:
        self.wrong = wrong

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        codes = np.asarray(x, dtype=int).ravel()
        if self.wrong:
            codes = (codes + 1) % 3
        return np.eye(3)[codes] * 0.8 + 0.2 / 3


class TestTasksAndClasses:
    """task= and classes=: class labels of any dtype, regression and multi-label inputs."""

    NAMES = np.array(["cat", "cow", "dog"])

    def test_golden_names_with_predict_proba(self) -> None:
        """Golden class names against predict_proba: the estimator's classes_ map columns."""
        inputs = np.array([[0], [1], [2], [2]])
        golden = GoldenSet(inputs, self.NAMES[inputs.ravel()])
        good = QualityCheck(predict=_NamedModel().predict_proba, golden=golden).run()
        assert Status.PASS == good.status, str(good)
        bad = QualityCheck(predict=_NamedModel(wrong=True).predict_proba, golden=golden).run()
        assert Status.FAIL == bad.finding("golden").status
        assert {"index": 0, "expected": "cat", "got": "cow"} == bad.details["golden_mismatches"][0]

    def test_golden_names_need_a_class_list(self) -> None:
        """A plain function gives no classes_: the FAIL says to give classes."""
        golden = GoldenSet(np.array([[0], [1]]), ["cat", "cow"])
        result = QualityCheck(predict=lambda x: np.eye(3)[x.ravel()], golden=golden).run()
        assert Status.FAIL == result.status
        assert "classes=model.classes_" in result.finding("golden").message
        named = QualityCheck(
            predict=lambda x: np.eye(3)[x.ravel()], golden=golden, classes=self.NAMES
        ).run()
        assert Status.PASS == named.status

    def test_string_labels_with_probabilities(self) -> None:
        """String labels are coded through the estimator's classes_ once, for every metric."""
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 3, size=600)
        model = _NamedModel()
        result = QualityCheck(
            labels=self.NAMES[codes],
            predict=model.predict_proba,
            inputs=codes,
            metric_limits={"accuracy": 0.9, "log_loss": 0.5},
        ).run()
        assert Status.PASS == result.status, str(result)
        assert ["cat", "cow", "dog"] == result.details["classes"]
        assert "classification" == result.details["task"]

    def test_string_predictions_and_baseline(self) -> None:
        """Predicted names for candidate and baseline: regression test on accuracy."""
        rng = np.random.default_rng(1)
        labels = self.NAMES[rng.integers(0, 3, size=2000)]
        base = np.where(rng.random(2000) < 0.9, labels, "cow")
        result = QualityCheck(
            labels=labels,
            predictions=base,
            baseline_predictions=base.copy(),
            max_regression={"accuracy": 0.02},
        ).run()
        assert Status.PASS == result.status, str(result)

    def test_labels_outside_classes_raise(self) -> None:
        """A label missing from classes= names itself."""
        check = QualityCheck(
            labels=["cat", "emu"],
            predictions=[[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]],
            metric_limits={"accuracy": 0.5},
            classes=self.NAMES,
        )
        with pytest.raises(InvalidInput, match=r"1 label not in classes.*'emu'"):
            check.run()

    def test_regression_and_multilabel_are_inferred(self) -> None:
        """Float targets and predictions: regression; (n, L) 0/1 labels: multi-label."""
        rng = np.random.default_rng(2)
        y = np.round(rng.uniform(25, 346, 500))
        reg = QualityCheck(
            labels=y, predictions=y + rng.normal(scale=5, size=500), metric_limits={"mae": 6.0}
        ).run()
        assert ("regression", Status.PASS) == (reg.details["task"], reg.status)
        labels = rng.integers(0, 2, size=(500, 4))
        multi = QualityCheck(
            labels=labels, predictions=labels.copy(), metric_limits={"hamming_loss": 0.05}
        ).run()
        assert ("multilabel", Status.PASS) == (multi.details["task"], multi.status)

    def test_bad_task(self) -> None:
        """An unknown task names the choices."""
        with pytest.raises(InvalidInput, match="'task' must be one of"):
            QualityCheck(labels=[0], predictions=[0], metric_limits={"accuracy": 0.5}, task="x")


def probability_models(
    n: int, seed: int, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary labels, 9 slices of uneven size, and two models' (n, 2) probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    codes = np.minimum(rng.geometric(0.25, n) - 1, 8)
    logit = (2 * y - 1) * 1.5 + rng.normal(0, 1, n)
    models = []
    for noise in (0.0, 0.3):
        p1 = 1 / (1 + np.exp(-(logit + rng.normal(0, noise + 1e-9, n))))
        models.append(np.stack([1 - p1, p1], axis=1).astype(dtype))
    return y, codes, models[0], models[1]


class TestQualityCheckOnePass:
    """The check's one pass over the rows gives the per-example statistics of every slice."""

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_slice_rows_equal_the_per_example_statistics(self, dtype: type) -> None:
        """Accuracy and ROC AUC rows equal paired_difference on the slice's rows bit for bit,
        log loss to the rounding of its sums."""
        from mlchecks.stats.paired import paired_difference

        y, codes, cand, base = probability_models(20_000, 5, dtype)
        names = {"accuracy": 0.01, "roc_auc": 0.01, "log_loss": 0.02, "brier": 0.02}
        result = QualityCheck(
            labels=y,
            predictions=cand,
            baseline_predictions=base,
            slices=codes,
            max_regression=names,
            slice_min_size=10,
        ).run()
        checked = 0
        for row in result.details["table"]:
            if row["verdict"] == "skipped":
                continue
            rows = slice(None) if row["slice"] == "all" else codes == int(row["slice"][6:])
            ref = paired_difference(row["metric"], y[rows], cand[rows], base[rows])
            got = (row["candidate"], row["baseline"], row["difference"])
            want = (ref.candidate, ref.baseline, ref.statistic)
            if row["metric"] in ("accuracy", "roc_auc"):
                assert want == got
            else:
                np.testing.assert_allclose(got, want, rtol=1e-11)
            if row["metric"] == "roc_auc":
                assert tuple(ref.confidence_interval(0.95)) == (row["ci_low"], row["ci_high"])
            checked += 1
        assert checked == 4 * 10

    def test_an_out_of_range_probability_raises_as_before(self) -> None:
        """Probabilities outside [0, 1] take the per-example path and raise its error."""
        y, codes, cand, base = probability_models(2_000, 1)
        cand = cand.astype(np.float64)
        cand[3] = [-0.5, 1.5]
        with pytest.raises(InvalidInput, match="probabilities in \\[0, 1\\]"):
            QualityCheck(
                labels=y,
                predictions=cand,
                baseline_predictions=base,
                slices=codes,
                max_regression={"log_loss": 0.01},
            ).run()

    def test_read_only_memory_mapped_inputs(self, tmp_path: Any) -> None:
        """Read-only memory-mapped predictions give the same table as in-memory ones."""
        y, codes, cand, base = probability_models(5_000, 2)
        path = tmp_path / "cand.npy"
        np.save(path, cand)
        mapped = np.load(path, mmap_mode="r")
        settings: dict[str, Any] = {
            "labels": y,
            "baseline_predictions": base,
            "slices": codes,
            "metric_limits": {"accuracy": 0.5, "f1": 0.5, "log_loss": 1.0},
            "max_regression": {"accuracy": 0.01, "f1": 0.01, "log_loss": 0.01},
        }
        one = QualityCheck(predictions=cand, **settings).run(Context(seed=3))
        two = QualityCheck(predictions=mapped, **settings).run(Context(seed=3))
        assert one.details["table"] == two.details["table"]
