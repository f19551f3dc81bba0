from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from mlchecks.exceptions import InvalidInput
from mlchecks.stats.auc import delong, delong_ci
from mlchecks.stats.inference import paired_accuracy_difference
from mlchecks.stats.intervals import ConfidenceInterval, bootstrap_rows
from mlchecks.stats.metrics import f1, log_loss
from mlchecks.stats.paired import (
    MetricEstimate,
    PairedResult,
    confusion_estimate,
    confusion_statistic,
    correctness_estimate,
    discordant_interval,
    discordant_pvalue,
    mean_standard_error,
    metric_estimate,
    paired_confusion,
    paired_correctness,
    paired_difference,
)

Z95 = scipy.stats.norm.ppf(0.975)


def labels_and_models(
    n: int = 5_000, seed: int = 0, worse: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three-class labels and two classifiers at accuracy ~0.85 and ~0.85 - worse."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    right_a = rng.random(n) < 0.85
    right_b = np.where(rng.random(n) < 0.3, rng.random(n) < 0.85 - worse, right_a)
    wrong = (y + rng.integers(1, 3, n)) % 3
    return y, np.where(right_b, y, wrong), np.where(right_a, y, wrong)


def regression_data(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + rng.normal(0, 1.2, n), y + rng.normal(0, 1.0, n)


class TestPairedCorrectness:
    def test_matches_the_brute_force_difference_and_exact_mcnemar(self) -> None:
        """Statistic, Wald interval and two-sided McNemar p agree with counts from the rows."""
        y, cand, base = labels_and_models(worse=0.02)
        right_c, right_b = cand == y, base == y
        b = int(np.sum(right_c & ~right_b))
        c = int(np.sum(~right_c & right_b))
        res = paired_difference("accuracy", y, cand, base)
        assert right_c.mean() - right_b.mean() == pytest.approx(res.statistic)
        assert (right_c.mean(), right_b.mean()) == pytest.approx((res.candidate, res.baseline))
        assert scipy.stats.binomtest(b, b + c).pvalue == pytest.approx(res.pvalue)
        kernel = paired_accuracy_difference(right_c, right_b)
        assert kernel.ci == pytest.approx(res.confidence_interval())
        assert (b, c) == res.discordant

    def test_error_rate_mirrors_accuracy(self) -> None:
        """The error rate's difference and interval are minus the accuracy's."""
        y, cand, base = labels_and_models(worse=0.02)
        acc = paired_difference("accuracy", y, cand, base)
        err = paired_difference("error_rate", y, cand, base)
        assert -acc.statistic == pytest.approx(err.statistic)
        low, high = acc.confidence_interval(0.9)
        assert (-high, -low) == pytest.approx(err.confidence_interval(0.9))
        assert acc.pvalue == pytest.approx(err.pvalue)
        assert acc.discordant == err.discordant[::-1]  # type: ignore[index]

    @pytest.mark.parametrize("metric", ["accuracy", "error_rate"])
    def test_zero_margin_regression_is_the_one_sided_exact_mcnemar(self, metric: str) -> None:
        """A regression test against margin 0 is binomtest(b, b + c, alternative='less')."""
        y, cand, base = labels_and_models(n=800, worse=0.05)
        right_c, right_b = cand == y, base == y
        b = int(np.sum(right_c & ~right_b))
        c = int(np.sum(~right_c & right_b))
        expected = scipy.stats.binomtest(b, b + c, 0.5, alternative="less").pvalue
        res = paired_difference(metric, y, cand, base)
        p = res.margin_pvalue(0.0, higher_is_better=metric == "accuracy", test="regression")
        assert expected == pytest.approx(p)

    @pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 1), (7, 0), (12, 30), (30, 30), (388, 330)])
    def test_two_sided_pvalue_is_scipys_binomtest(self, b: int, c: int) -> None:
        """The two-sided p-value from counts is binomtest(b, b + c, 0.5).pvalue."""
        table = [[100, c], [b, 1_000]]
        expected = scipy.stats.binomtest(b, b + c).pvalue if b + c else 1.0
        assert expected == pytest.approx(paired_correctness(table).pvalue, rel=1e-9)

    def test_table_is_validated(self) -> None:
        """Only a 2x2 table of counts of accuracy or the error rate is accepted."""
        with pytest.raises(InvalidInput, match="2x2"):
            paired_correctness([1, 2, 3, 4])
        with pytest.raises(InvalidInput, match="'metric' must be one of"):
            paired_correctness([[1, 2], [3, 4]], metric="f1")


class TestMarginPvalue:
    def test_normal_one_sided_tests_against_the_margin(self) -> None:
        """Non-inferiority and regression p-values are the normal tail beyond the margin."""
        y, cand, base = regression_data()
        res = paired_difference("mse", y, cand, base)
        worsening, se, margin = res.statistic, res.standard_error, 0.3
        regression = res.margin_pvalue(margin, higher_is_better=False, test="regression")
        noninferior = res.margin_pvalue(margin, higher_is_better=False, test="noninferiority")
        assert scipy.stats.norm.sf((worsening - margin) / se) == pytest.approx(regression)
        assert scipy.stats.norm.cdf((worsening - margin) / se) == pytest.approx(noninferior)

    def test_identical_models_are_exact(self) -> None:
        """Zero standard error: no difference, p = 1, and non-inferior even at margin 0."""
        y, cand, _ = labels_and_models(n=500)
        res = paired_difference("accuracy", y, cand, cand)
        assert (0.0, 1.0, 0.0) == (res.statistic, res.pvalue, res.standard_error)
        assert ConfidenceInterval(0.0, 0.0) == res.confidence_interval()
        assert 0.0 == res.margin_pvalue(0.0, higher_is_better=True, test="noninferiority")
        assert 1.0 == res.margin_pvalue(0.0, higher_is_better=True, test="regression")

    def test_undefined_standard_error_gives_nan_interval_and_refuses_tests(self) -> None:
        """A NaN standard error has a NaN interval and no margin test."""
        res = PairedResult(0.1, math.nan, math.nan, 0.6, 0.5, 10, "row bootstrap")
        assert all(math.isnan(x) for x in res.confidence_interval())
        with pytest.raises(InvalidInput, match="standard_error"):
            res.margin_pvalue(0.0, higher_is_better=True, test="regression")

    def test_unknown_test_is_rejected(self) -> None:
        """The test is 'noninferiority' or 'regression'."""
        res = PairedResult(0.1, 0.5, 0.05, 0.6, 0.5, 10, "x")
        with pytest.raises(InvalidInput, match="'test' must be one of"):
            res.margin_pvalue(0.0, higher_is_better=True, test="equivalence")  # type: ignore[arg-type]


class TestPairedDifference:
    def test_auc_is_delong(self) -> None:
        """ROC AUC comparisons are DeLong's test, interval clipped to [-1, 1]."""
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 2_000)
        a, b = y + rng.normal(0, 1.0, 2_000), y + rng.normal(0, 1.5, 2_000)
        res = paired_difference("roc_auc", y, a, b)
        expected = delong(y, a, b, confidence=0.9)
        assert expected.difference == pytest.approx(res.statistic)
        assert expected.pvalue == pytest.approx(res.pvalue)
        assert expected.ci == pytest.approx(res.confidence_interval(0.9))
        assert "delong" == res.method

    def test_mean_metric_uses_the_exact_bootstrap_standard_error(self) -> None:
        """For MSE the se is sd(d, ddof=0)/sqrt(n), the limit that resampling converges to."""
        y, cand, base = regression_data(seed=1)
        d = (cand - y) ** 2 - (base - y) ** 2
        res = paired_difference("mse", y, cand, base)
        assert d.mean() == pytest.approx(res.statistic)
        assert d.std() / math.sqrt(d.size) == pytest.approx(res.standard_error, rel=1e-12)
        two_sided = 2 * scipy.stats.norm.sf(abs(d.mean()) / res.standard_error)
        assert two_sided == pytest.approx(res.pvalue)
        resampled = bootstrap_rows(np.mean, d, n_resamples=2000, rng=0)
        # 2000 resamples estimate the same standard error to within about 3% (2 sigma).
        assert resampled.standard_error == pytest.approx(res.standard_error, rel=0.05)

    def test_count_bootstrap_agrees_with_the_row_bootstrap(self) -> None:
        """The delta method on the paired confusion counts gives the row bootstrap's
        standard error."""
        y, cand, base = labels_and_models(n=3_000)
        res = paired_difference("f1_macro", y, cand, base, n_resamples=1000, rng=0)
        expected = f1(y, cand, average="macro") - f1(y, base, average="macro")
        by_rows = bootstrap_rows(
            lambda t, a, b: f1(t, a, average="macro") - f1(t, b, average="macro"),
            y,
            cand,
            base,
            n_resamples=1000,
            rng=1,
        )
        assert expected == pytest.approx(res.statistic)
        assert "delta method (counts)" == res.method
        # The row bootstrap's standard error has about 2% Monte Carlo error at 1000 resamples.
        assert by_rows.standard_error == pytest.approx(res.standard_error, rel=0.1)

    def test_other_metrics_use_the_paired_row_bootstrap(self) -> None:
        """RMSE's difference has a row-bootstrap standard error from the given generator."""
        y, cand, base = regression_data(n=500)
        first = paired_difference("rmse", y, cand, base, n_resamples=200, rng=3)
        again = paired_difference("rmse", y, cand, base, n_resamples=200, rng=3)
        assert "row bootstrap" == first.method
        assert first == again
        low, high = first.confidence_interval()
        assert low < first.statistic < high

    def test_results_are_python_floats(self) -> None:
        """Every number of a result is a Python float, so reprs and JSON stay clean."""
        y, cand, base = labels_and_models(n=300)
        for res in (
            paired_difference("accuracy", y, cand, base),
            paired_difference("f1", y % 2, cand % 2, base % 2, n_resamples=100, rng=0),
        ):
            values = [res.statistic, res.pvalue, res.standard_error, res.candidate, res.baseline]
            assert all(type(v) is float for v in values)
            assert all(type(v) is float for v in res.confidence_interval())

    def test_undefined_metric_raises(self) -> None:
        """ROC AUC with one class is undefined: the kernel raises InvalidInput."""
        with pytest.raises(InvalidInput):
            paired_difference("roc_auc", np.zeros(10, dtype=int), np.ones(10), np.ones(10))


class TestMetricEstimate:
    def test_accuracy_is_clopper_pearson(self) -> None:
        """Accuracy's interval is scipy's exact (Clopper-Pearson) interval."""
        y = np.zeros(400, dtype=int)
        pred = np.where(np.arange(400) < 368, 0, 1)
        est = metric_estimate("accuracy", y, pred)
        ci = scipy.stats.binomtest(368, 400).proportion_ci(0.95, method="exact")
        assert isinstance(est, MetricEstimate)
        assert (0.92, "clopper-pearson", 400) == (est.statistic, est.method, est.n)
        assert (ci.low, ci.high) == pytest.approx(est.confidence_interval)

    def test_error_rate_counts_the_misses(self) -> None:
        """The error rate's exact interval is of the wrong predictions."""
        y = np.zeros(400, dtype=int)
        pred = np.where(np.arange(400) < 368, 0, 1)
        est = metric_estimate("error_rate", y, pred, confidence_level=0.9)
        ci = scipy.stats.binomtest(32, 400).proportion_ci(0.9, method="exact")
        assert 0.08 == pytest.approx(est.statistic)
        assert (ci.low, ci.high) == pytest.approx(est.confidence_interval)

    def test_auc_is_delongs_interval(self) -> None:
        """ROC AUC's interval is DeLong's."""
        rng = np.random.default_rng(2)
        y = rng.integers(0, 2, 1_000)
        scores = y + rng.normal(0, 1, 1_000)
        est = metric_estimate("roc_auc", y, scores)
        assert delong_ci(y, scores) == pytest.approx(est.confidence_interval)

    def test_mean_metric_is_mean_plus_minus_z_se(self) -> None:
        """Log loss's interval is the mean ± z * sd / sqrt(n) of the per-example losses."""
        rng = np.random.default_rng(3)
        y = rng.integers(0, 2, 2_000)
        p = np.clip(0.5 + (y - 0.5) * rng.random(2_000), 0.01, 0.99)
        terms = -np.log(np.where(y == 1, p, 1 - p))
        est = metric_estimate("log_loss", y, p)
        half = Z95 * terms.std() / math.sqrt(terms.size)
        assert log_loss(y, p) == pytest.approx(est.statistic)
        expected = (terms.mean() - half, terms.mean() + half)
        assert expected == pytest.approx(est.confidence_interval)

    def test_confusion_metric_brackets_its_value(self) -> None:
        """Macro F1's count-bootstrap interval brackets the metric."""
        y, cand, _ = labels_and_models(n=3_000)
        est = metric_estimate("f1_macro", y, cand, n_resamples=400, rng=0)
        value = f1(y, cand, average="macro")
        assert value == pytest.approx(est.statistic)
        assert est.confidence_interval.low < value < est.confidence_interval.high
        assert "count bootstrap" == est.method


def test_confusion_statistic_matches_the_metrics() -> None:
    """The vectorized statistic on a confusion table equals the metric on the rows."""
    y, cand, _ = labels_and_models(n=1_000)
    for average in ("binary", "macro"):
        name = "f1" if average == "binary" else "f1_macro"
        truth, pred = (y % 2, cand % 2) if average == "binary" else (y, cand)
        confusion = np.zeros((2, 2) if average == "binary" else (3, 3), dtype=np.int64)
        np.add.at(confusion, (truth, pred), 1)
        expected = f1(truth, pred, average=average)
        assert expected == pytest.approx(confusion_statistic(name)(confusion[None])[0])


def test_mean_standard_error_is_the_population_sd_over_root_n() -> None:
    """sqrt(sum((x - mean)^2)) / n."""
    x = np.array([1.0, 2.0, 4.0, 7.0])
    assert math.sqrt(np.sum((x - x.mean()) ** 2)) / 4 == pytest.approx(mean_standard_error(x))


class TestDiscordantInterval:
    def test_no_disagreement_is_not_certainty(self) -> None:
        """b = c = 0 gives an interval around 0 as wide as the disagreement rate's bound."""
        low, high = discordant_interval(0, 0, 100)
        assert low == pytest.approx(-high)
        upper = scipy.stats.binomtest(0, 100).proportion_ci(1 - 0.05 / 4, method="exact").high
        assert high == pytest.approx(upper)

    @pytest.mark.parametrize(("b", "c", "n"), [(3, 0, 100), (1, 2, 100), (10, 30, 400), (0, 9, 50)])
    def test_one_sided_pvalue_agrees_with_the_interval(self, b: int, c: int, n: int) -> None:
        """p <= alpha/2 exactly when the two-sided 1 - alpha interval excludes the limit."""
        low, high = discordant_interval(b, c, n, 0.95)
        for limit in (-0.05, -0.01, 0.0, 0.02):
            p_below = discordant_pvalue(b, c, n, limit, below=True)
            p_above = discordant_pvalue(b, c, n, limit, below=False)
            if abs(high - limit) > 1e-6:
                assert (p_below <= 0.025) == (high < limit)
            if abs(low - limit) > 1e-6:
                assert (p_above <= 0.025) == (low > limit)

    def test_contains_the_wald_center_and_is_wider(self) -> None:
        """The exact interval contains the estimate and is wider than Wald's at few pairs."""
        res = paired_correctness([[90, 1], [2, 7]])
        exact = paired_correctness([[90, 1], [2, 7]], exact=True)
        low, high = exact.confidence_interval(0.95)
        wald = res.confidence_interval(0.95)
        assert low < exact.statistic < high
        assert high - low > wald.high - wald.low
        assert (low, high) == pytest.approx(tuple(discordant_interval(2, 1, 100)))
        assert exact.method == "exact conditional (discordant pairs)"

    def test_exact_mode_keeps_mcnemar_at_margin_zero(self) -> None:
        """With exact=True the zero-margin regression p is still exact McNemar's."""
        exact = paired_correctness([[80, 12], [3, 105]], exact=True)
        expected = scipy.stats.binomtest(3, 15, 0.5, alternative="less").pvalue
        pvalue = exact.margin_pvalue(0.0, higher_is_better=True, test="regression")
        assert pvalue == pytest.approx(expected)

    def test_exact_mode_does_not_trust_a_zero_standard_error(self) -> None:
        """No disagreements: Wald calls the difference exact, the exact mode does not."""
        table = [[10, 0], [0, 40]]
        wald = paired_correctness(table).margin_pvalue(
            0.01, higher_is_better=True, test="noninferiority"
        )
        exact = paired_correctness(table, exact=True).margin_pvalue(
            0.01, higher_is_better=True, test="noninferiority"
        )
        assert wald == 0.0
        assert exact > 0.025

    def test_invalid_counts_are_rejected(self) -> None:
        """More disagreements than examples is an error naming the counts."""
        with pytest.raises(InvalidInput, match="'b \\+ c' must be <= n=5"):
            discordant_interval(4, 3, 5)


class TestFromCounts:
    """The count-based estimates equal the per-example ones, draws included."""

    @pytest.mark.parametrize("name", ["precision", "recall", "f1", "f1_macro", "recall_macro"])
    def test_paired_confusion_equals_paired_difference(self, name: str) -> None:
        """paired_confusion on the joint counts gives paired_difference's result bit for bit."""
        y, cand, base = labels_and_models(n=3_000, seed=4)
        if not name.endswith("macro"):
            y, cand, base = y % 2, cand % 2, base % 2
        joint = np.zeros((3, 3, 3), dtype=np.int64)
        np.add.at(joint, (y, cand, base), 1)
        expected = paired_difference(name, y, cand, base, n_resamples=200, rng=1)
        got = paired_confusion(name, joint, n_resamples=200, rng=1)
        assert expected == got

    def test_paired_confusion_rejects_classes_above_one_for_binary(self) -> None:
        """A binary F1 on three classes raises the metric's own message."""
        y, cand, base = labels_and_models(n=300)
        joint = np.zeros((3, 3, 3), dtype=np.int64)
        np.add.at(joint, (y, cand, base), 1)
        with pytest.raises(InvalidInput) as expected:
            paired_difference("f1", y, cand, base)
        with pytest.raises(InvalidInput) as got:
            paired_confusion("f1", joint)
        assert str(expected.value) == str(got.value)

    @pytest.mark.parametrize("name", ["precision", "f1", "precision_macro"])
    def test_confusion_estimate_equals_metric_estimate(self, name: str) -> None:
        """confusion_estimate on [true, predicted] counts equals metric_estimate."""
        y, cand, _ = labels_and_models(n=2_000, seed=7)
        if not name.endswith("macro"):
            y, cand = y % 2, cand % 2
        table = np.zeros((4, 4), dtype=np.int64)  # a trailing empty class is ignored
        np.add.at(table, (y, cand), 1)
        expected = metric_estimate(name, y, cand, confidence_level=0.9, n_resamples=150, rng=3)
        got = confusion_estimate(name, table, confidence_level=0.9, n_resamples=150, rng=3)
        assert expected == got

    def test_correctness_estimate_equals_metric_estimate(self) -> None:
        """correctness_estimate equals metric_estimate for accuracy and the error rate."""
        y, cand, _ = labels_and_models(n=500)
        for name in ("accuracy", "error_rate"):
            expected = metric_estimate(name, y, cand)
            got = correctness_estimate(name, int(np.count_nonzero(y == cand)), len(y))
            assert expected == got
