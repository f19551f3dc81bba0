from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from mlchecks.exceptions import InvalidInput
from mlchecks.stats.intervals import (
    ConfidenceInterval,
    bootstrap_counts,
    bootstrap_rows,
    clopper_pearson,
    clopper_pearson_interval,
    normal_interval,
    wilson_interval,
)


def wilson_closed_form(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval from its textbook formula."""
    z = scipy.stats.norm.ppf(0.5 + confidence / 2)
    p = k / n
    center = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return center - half, center + half


def accuracy_of_counts(table: np.ndarray) -> np.ndarray:
    """Accuracy from (r, 2) tables of (correct, wrong) counts."""
    return table[:, 0] / table.sum(axis=1)


class TestWilsonInterval:
    @pytest.mark.parametrize(
        ("k", "n", "confidence"),
        [(90, 100, 0.95), (3, 7, 0.9), (0, 20, 0.95), (20, 20, 0.99), (1, 1, 0.95), (0, 1, 0.8)],
    )
    def test_matches_the_closed_form(self, k: int, n: int, confidence: float) -> None:
        """The interval equals the Wilson formula, including k = 0, k = n and n = 1."""
        low, high = wilson_interval(k, n, confidence)
        expected_low, expected_high = wilson_closed_form(k, n, confidence)
        assert expected_low == pytest.approx(low, abs=1e-12)
        assert expected_high == pytest.approx(high, abs=1e-12)

    def test_returns_python_floats_in_a_named_tuple(self) -> None:
        """The result unpacks and holds plain floats."""
        ci = wilson_interval(5, 10)
        assert isinstance(ci, ConfidenceInterval)
        assert (float, float) == (type(ci.low), type(ci.high))

    def test_numpy_integers_are_accepted(self) -> None:
        """Counts from np.count_nonzero work as they are."""
        assert wilson_interval(5, 10) == wilson_interval(np.int64(5), np.int64(10))

    def test_zero_trials_is_rejected(self) -> None:
        """n must be at least 1."""
        with pytest.raises(InvalidInput, match="'n' must be an integer >= 1 \\(got 0\\)"):
            wilson_interval(0, 0)

    def test_more_successes_than_trials_is_rejected(self) -> None:
        """successes > n is an error naming both."""
        with pytest.raises(InvalidInput, match="'successes' must be <= n=3 \\(got 4\\)"):
            wilson_interval(4, 3)

    def test_float_count_is_rejected(self) -> None:
        """Counts must be integers."""
        with pytest.raises(InvalidInput, match="'successes' must be an int"):
            wilson_interval(2.5, 3)  # type: ignore[arg-type]

    @pytest.mark.parametrize("confidence", [0.0, 1.0, float("nan"), True])
    def test_confidence_outside_the_open_unit_interval_is_rejected(self, confidence: float) -> None:
        """Confidence must be in (0, 1)."""
        with pytest.raises(InvalidInput, match="'confidence' must be"):
            wilson_interval(1, 2, confidence)


class TestClopperPearsonInterval:
    @pytest.mark.parametrize(
        ("k", "n", "confidence"),
        [
            (0, 1, 0.95),
            (1, 1, 0.95),
            (0, 30, 0.95),
            (30, 30, 0.9),
            (27, 30, 0.95),
            (45, 50, 0.95),
            (90, 100, 0.99),
            (912, 1000, 0.95),
            (3, 7, 0.5),
        ],
    )
    def test_matches_scipy_exact(self, k: int, n: int, confidence: float) -> None:
        """The interval equals scipy's binomtest(...).proportion_ci(method='exact')."""
        ci = scipy.stats.binomtest(k, n).proportion_ci(confidence, method="exact")
        low, high = clopper_pearson_interval(k, n, confidence)
        assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)
        assert isinstance(low, float)
        assert isinstance(high, float)

    def test_kernel_is_vectorized(self) -> None:
        """The kernel takes arrays of counts and agrees with the scalar function."""
        k = np.array([0, 5, 10, 44])
        n = np.array([10, 10, 10, 50])
        low, high = clopper_pearson(k, n, 0.95)
        for i in range(4):
            assert (low[i], high[i]) == pytest.approx(
                tuple(clopper_pearson_interval(int(k[i]), int(n[i])))
            )

    @pytest.mark.parametrize("n", [30, 50, 100])
    def test_lower_bound_exceeds_the_truth_at_most_half_alpha(self, n: int) -> None:
        """P(lower bound >= p) <= alpha/2 exactly (binomial sum) at the worst p on a grid."""
        k = np.arange(n + 1)
        low, _ = clopper_pearson(k, np.full(n + 1, n), 0.95)
        worst = max(
            float(scipy.stats.binom.pmf(k, n, p)[low >= p].sum())
            for p in np.linspace(0.5, 0.99, 200)
        )
        assert worst <= 0.025

    def test_invalid_counts_are_rejected(self) -> None:
        """Counts are validated like the Wilson interval's."""
        with pytest.raises(InvalidInput, match="'successes' must be <= n"):
            clopper_pearson_interval(4, 3)
        with pytest.raises(InvalidInput, match="'confidence' must be"):
            clopper_pearson_interval(1, 2, 1.0)


class TestNormalInterval:
    def test_is_estimate_plus_minus_z_se(self) -> None:
        """The interval is estimate ± z * se with the normal quantile."""
        z = scipy.stats.norm.ppf(0.975)
        low, high = normal_interval(1.0, 0.5, 0.95)
        assert (1.0 - z * 0.5) == pytest.approx(low)
        assert (1.0 + z * 0.5) == pytest.approx(high)

    def test_negative_standard_error_is_rejected(self) -> None:
        """A negative standard error is an error."""
        with pytest.raises(InvalidInput, match="'standard_error' must be finite and >= 0"):
            normal_interval(0.0, -1.0)


class TestBootstrapCounts:
    def test_agrees_with_a_row_bootstrap_within_monte_carlo_error(self) -> None:
        """Resampling counts and resampling rows give the same accuracy interval."""
        rng = np.random.default_rng(0)
        correct = rng.random(2000) < 0.8
        counts = [int(correct.sum()), int((~correct).sum())]
        by_counts = bootstrap_counts(counts, accuracy_of_counts, n_resamples=4000, rng=1)
        by_rows = scipy.stats.bootstrap(
            (correct.astype(float),),
            np.mean,
            n_resamples=4000,
            method="percentile",
            rng=np.random.default_rng(2),
        )
        # Each endpoint's Monte Carlo error is about 0.001 here; the interval half-width ~0.018.
        assert by_rows.confidence_interval.low == pytest.approx(by_counts.ci.low, abs=0.003)
        assert by_rows.confidence_interval.high == pytest.approx(by_counts.ci.high, abs=0.003)
        assert by_rows.standard_error == pytest.approx(by_counts.standard_error, rel=0.1)

    def test_agrees_with_the_wilson_interval_for_a_proportion(self) -> None:
        """For accuracy at n = 2000 the bootstrap and Wilson intervals nearly coincide."""
        result = bootstrap_counts([1600, 400], accuracy_of_counts, n_resamples=4000, rng=0)
        wilson = wilson_interval(1600, 2000)
        assert wilson.low == pytest.approx(result.ci.low, abs=0.003)
        assert wilson.high == pytest.approx(result.ci.high, abs=0.003)

    def test_estimate_is_the_statistic_of_the_observed_counts(self) -> None:
        """The point estimate is computed on the counts as given."""
        assert 0.75 == bootstrap_counts([3, 1], accuracy_of_counts, n_resamples=10, rng=0).estimate

    def test_constant_input_gives_a_zero_width_interval(self) -> None:
        """All predictions correct: every resample has accuracy 1."""
        result = bootstrap_counts([50, 0], accuracy_of_counts, n_resamples=100, rng=0)
        assert (ConfidenceInterval(1.0, 1.0), 0.0) == (result.ci, result.standard_error)

    def test_a_single_row(self) -> None:
        """n = 1 is allowed: the only resample is the row itself."""
        result = bootstrap_counts([0, 1], accuracy_of_counts, n_resamples=20, rng=0)
        assert ConfidenceInterval(0.0, 0.0) == result.ci

    def test_table_shape_reaches_the_statistic(self) -> None:
        """A 2x2 table arrives as (r, 2, 2): here the paired accuracy difference."""
        table = np.array([[700, 60], [40, 200]])  # rows: a right/wrong, cols: b right/wrong

        def difference(t: np.ndarray) -> np.ndarray:
            return (t[:, 0, 1] - t[:, 1, 0]) / t.sum(axis=(1, 2))

        result = bootstrap_counts(table, difference, n_resamples=4000, rng=0)
        expected_se = math.sqrt((60 + 40) / 1000**2 - (60 - 40) ** 2 / 1000**3)
        assert 0.02 == pytest.approx(result.estimate)
        assert expected_se == pytest.approx(result.standard_error, rel=0.05)

    def test_chunking_does_not_change_the_result(self) -> None:
        """The same seed gives the same resamples whatever the chunk size."""
        whole = bootstrap_counts([30, 10], accuracy_of_counts, n_resamples=50, rng=4)
        chunked = bootstrap_counts(
            [30, 10], accuracy_of_counts, n_resamples=50, rng=4, chunk_size=6
        )
        np.testing.assert_array_equal(whole.distribution, chunked.distribution)

    def test_same_seed_same_result(self) -> None:
        """A seed makes the bootstrap reproducible."""
        first = bootstrap_counts([30, 10], accuracy_of_counts, n_resamples=50, rng=7)
        assert first == bootstrap_counts([30, 10], accuracy_of_counts, n_resamples=50, rng=7)

    def test_nan_statistics_are_left_out(self) -> None:
        """Resamples where the statistic is undefined do not enter the interval."""

        def precision(t: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore", divide="ignore"):
                return t[:, 0] / (t[:, 0] + t[:, 1])

        result = bootstrap_counts([1, 0, 8], precision, n_resamples=500, rng=0)
        assert 0 < result.n_resamples < 500
        assert ConfidenceInterval(1.0, 1.0) == result.ci

    def test_counts_with_nan_are_rejected(self) -> None:
        """NaN counts are an error naming the argument."""
        with pytest.raises(InvalidInput, match="'counts' must be finite"):
            bootstrap_counts([1.0, float("nan")], accuracy_of_counts)

    def test_negative_counts_are_rejected(self) -> None:
        """Counts are non-negative."""
        with pytest.raises(InvalidInput, match="'counts' must be >= 0"):
            bootstrap_counts([3, -1], accuracy_of_counts)

    def test_zero_total_is_rejected(self) -> None:
        """There must be at least one row."""
        with pytest.raises(InvalidInput, match="'counts' must have a positive total"):
            bootstrap_counts([0, 0], accuracy_of_counts)

    def test_statistic_of_the_wrong_shape_is_rejected(self) -> None:
        """A statistic that is not vectorized over resamples is reported clearly."""
        with pytest.raises(InvalidInput, match="'statistic' must return one value per resample"):
            bootstrap_counts([3, 1], lambda t: 0.5)


class TestBootstrapRows:
    def test_agrees_with_scipy_bootstrap_within_monte_carlo_error(self) -> None:
        """The percentile interval of a mean matches scipy.stats.bootstrap's."""
        x = np.random.default_rng(0).exponential(size=400)
        ours = bootstrap_rows(np.mean, x, n_resamples=4000, rng=1)
        theirs = scipy.stats.bootstrap(
            (x,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(2)
        )
        # Endpoint Monte Carlo error is about 0.003 here; the half-width is about 0.1.
        assert theirs.confidence_interval.low == pytest.approx(ours.ci.low, abs=0.01)
        assert theirs.confidence_interval.high == pytest.approx(ours.ci.high, abs=0.01)

    def test_vectorized_and_looped_statistics_give_the_same_resamples(self) -> None:
        """With a seed, vectorized=True reproduces the per-resample loop exactly."""
        x = np.random.default_rng(0).normal(size=(50, 2))
        looped = bootstrap_rows(lambda a: a[:, 0].mean(), x, n_resamples=30, rng=3)
        vectorized = bootstrap_rows(
            lambda a: a[..., 0].mean(axis=-1), x, n_resamples=30, rng=3, vectorized=True
        )
        np.testing.assert_allclose(looped.distribution, vectorized.distribution)

    def test_chunking_does_not_change_the_result(self) -> None:
        """A small chunk size changes the memory used, not the answer."""
        x = np.arange(40.0)
        whole = bootstrap_rows(np.mean, x, n_resamples=25, rng=5)
        chunked = bootstrap_rows(np.mean, x, n_resamples=25, rng=5, chunk_size=90)
        np.testing.assert_array_equal(whole.distribution, chunked.distribution)

    def test_rows_of_paired_arrays_stay_together(self) -> None:
        """Resampling keeps row i of every array together, so identical arrays stay equal."""
        x = np.random.default_rng(0).normal(size=100)
        result = bootstrap_rows(lambda a, b: np.mean(a - b), x, x.copy(), n_resamples=50, rng=0)
        assert ConfidenceInterval(0.0, 0.0) == result.ci

    def test_a_single_row(self) -> None:
        """n = 1: every resample is the same row."""
        result = bootstrap_rows(np.mean, [2.5], n_resamples=10, rng=0)
        assert (2.5, ConfidenceInterval(2.5, 2.5)) == (result.estimate, result.ci)

    def test_pvalue_counts_resamples_on_the_null_side(self) -> None:
        """The one-sided p-value is (1 + #resamples on the null side) / (1 + resamples)."""
        result = bootstrap_rows(np.mean, np.arange(10.0), n_resamples=99, rng=0)
        below = int(np.sum(result.distribution <= 4.0))
        assert (below + 1) / 100 == result.pvalue(4.0, "greater")
        assert (int(np.sum(result.distribution >= 4.0)) + 1) / 100 == result.pvalue(4.0, "less")

    def test_nan_rows_are_rejected(self) -> None:
        """NaN in the data is an error naming which array."""
        with pytest.raises(InvalidInput, match=r"'arrays\[1\]' must be finite"):
            bootstrap_rows(np.mean, [1.0, 2.0], [1.0, float("nan")])

    def test_arrays_of_different_lengths_are_rejected(self) -> None:
        """Paired arrays must have the same rows."""
        with pytest.raises(InvalidInput, match="same number of rows"):
            bootstrap_rows(np.mean, [1.0, 2.0], [1.0])

    def test_no_arrays_is_rejected(self) -> None:
        """There must be data to resample."""
        with pytest.raises(InvalidInput, match="at least one array"):
            bootstrap_rows(np.mean)

    def test_bad_rng_is_rejected(self) -> None:
        """rng must be a seed or a Generator."""
        with pytest.raises(InvalidInput, match="'rng' must be None, an int seed"):
            bootstrap_rows(np.mean, [1.0], rng="seed")

    def test_zero_resamples_is_rejected(self) -> None:
        """At least one resample is needed."""
        with pytest.raises(InvalidInput, match="'n_resamples' must be an integer >= 1"):
            bootstrap_rows(np.mean, [1.0], n_resamples=0)
