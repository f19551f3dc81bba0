"""Tests for mlchecks.stats.sequential: e-values, confidence sequences, effect sizes."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.spatial.distance import jensenshannon

from mlchecks.exceptions import InvalidInput
from mlchecks.stats.sequential import (
    BettingTest,
    CategoricalShareTest,
    RateTest,
    ShareTest,
    beta_binomial_log_evalue,
    betting_confidence_sequence,
    betting_log_evalues,
    categorical_share_log_evalues,
    js_divergence,
    psi,
    rate_confidence_sequence,
    rate_log_evalue,
    rate_log_evalues,
    share_log_evalues,
)


def integrated_evalue(k: int, n: int, share: float, alternative: str) -> float:
    """The Beta-mixture e-value by numerical integration (the brute-force reference)."""
    a, b = 1.0, (1.0 - share) / share
    low, high = {"greater": (share, 1.0), "less": (0.0, share), "two-sided": (0.0, 1.0)}[
        alternative
    ]
    prior = stats.beta(a, b)
    mass = prior.cdf(high) - prior.cdf(low)

    def integrand(theta: float) -> float:
        return float(theta**k * (1 - theta) ** (n - k) * prior.pdf(theta) / mass)

    value, _ = integrate.quad(integrand, low, high, points=[share], limit=200)
    return float(value) / (share**k * (1 - share) ** (n - k))


class TestBetaBinomialLogEvalue:
    @pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
    @pytest.mark.parametrize(("k", "n", "share"), [(0, 5, 0.2), (3, 5, 0.2), (7, 30, 0.05)])
    def test_matches_numerical_integration(
        self, alternative: Any, k: int, n: int, share: float
    ) -> None:
        """The closed form equals the mixture integral computed by quadrature."""
        expected = integrated_evalue(k, n, share, alternative)
        got = math.exp(float(beta_binomial_log_evalue(k, n, share, alternative=alternative)))
        assert expected == pytest.approx(got, rel=1e-6)

    @pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
    @pytest.mark.parametrize("n", [1, 2, 7, 20])
    def test_expectation_under_the_null_is_one(self, alternative: Any, n: int) -> None:
        """Averaged over the binomial null distribution the e-value is exactly 1."""
        share = 0.3
        k = np.arange(n + 1)
        evalues = np.exp(beta_binomial_log_evalue(k, n, share, alternative=alternative))
        assert 1.0 == pytest.approx(float(np.sum(stats.binom.pmf(k, n, share) * evalues)))

    def test_no_events_is_one(self) -> None:
        """Before any event the e-value is 1."""
        assert 0.0 == float(beta_binomial_log_evalue(0, 0, 0.05))

    def test_broadcasts(self) -> None:
        """Arrays of counts give an array of e-values."""
        assert (3,) == beta_binomial_log_evalue([0, 1, 2], [2, 2, 2], 0.5).shape

    def test_one_sided_is_below_one_when_hits_are_rare(self) -> None:
        """No hits among many events is evidence for, not against, the one-sided null."""
        assert float(beta_binomial_log_evalue(0, 100, 0.05)) < 0.0

    @pytest.mark.parametrize("share", [0.0, 1.0, -0.1, float("nan"), True])
    def test_rejects_a_share_outside_the_open_unit_interval(self, share: Any) -> None:
        """The null share must lie in (0, 1)."""
        with pytest.raises(InvalidInput, match="'share'"):
            beta_binomial_log_evalue(1, 2, share)

    def test_rejects_more_hits_than_events(self) -> None:
        """k > n is not a count."""
        with pytest.raises(InvalidInput, match="0 <= k <= n"):
            beta_binomial_log_evalue(3, 2, 0.5)

    def test_rejects_an_unknown_alternative(self) -> None:
        """The alternative is one of three names."""
        with pytest.raises(InvalidInput, match="'alternative'"):
            beta_binomial_log_evalue(1, 2, 0.5, alternative="bigger")  # type: ignore[arg-type]


class TestShareLogEvalues:
    def test_path_is_the_closed_form_at_every_step(self) -> None:
        """Each entry of the path is the closed form for the counts so far."""
        hits = np.array([True, False, False, True, True, False])
        expected = [
            float(beta_binomial_log_evalue(hits[: i + 1].sum(), i + 1, 0.2))
            for i in range(hits.size)
        ]
        np.testing.assert_allclose(expected, share_log_evalues(hits, 0.2))

    def test_online_test_matches_the_path(self) -> None:
        """`ShareTest.update` gives the same log e-values as the vectorized path."""
        hits = np.random.default_rng(0).random(50) < 0.3
        test = ShareTest(0.2, alternative="two-sided")
        online = [test.update(bool(h)) for h in hits]
        np.testing.assert_allclose(
            share_log_evalues(hits, 0.2, alternative="two-sided"), online, rtol=1e-12
        )
        assert (50, int(hits.sum())) == (test.n, test.hits)

    def test_empty_stream(self) -> None:
        """No events give an empty path."""
        assert (0,) == share_log_evalues([], 0.5).shape

    def test_rejects_non_boolean_hits(self) -> None:
        """Hits are booleans (or 0/1)."""
        with pytest.raises(InvalidInput, match="'hits' must be booleans"):
            share_log_evalues([0, 2], 0.5)

    def test_rejects_nan(self) -> None:
        """NaN is not a hit indicator."""
        with pytest.raises(InvalidInput, match="'hits' must be finite"):
            share_log_evalues([1.0, float("nan")], 0.5)

    def test_false_alarm_rate_under_continuous_monitoring(self) -> None:
        """Under the null the path reaches 1/alpha in at most alpha of 400 streams."""
        rng = np.random.default_rng(1)
        hits = rng.random((400, 500)) < 0.1
        ever = [np.max(share_log_evalues(row, 0.1)) >= math.log(20) for row in hits]
        assert np.mean(ever) <= 0.05


class TestCategoricalShare:
    def test_final_value_is_the_product_of_per_category_mixtures(self) -> None:
        """Chained predictive probabilities equal the per-category closed forms multiplied."""
        rng = np.random.default_rng(2)
        codes = rng.integers(0, 4, 200)
        hits = rng.random(200) < 0.3
        expected = sum(
            float(
                beta_binomial_log_evalue(
                    hits[codes == c].sum(), (codes == c).sum(), 0.25, alternative="two-sided"
                )
            )
            for c in range(4)
        )
        assert expected == pytest.approx(categorical_share_log_evalues(codes, hits, 0.25)[-1])

    def test_online_test_matches_the_path(self) -> None:
        """`CategoricalShareTest.update` reproduces the vectorized path."""
        rng = np.random.default_rng(3)
        codes = rng.integers(0, 5, 100)
        hits = rng.random(100) < 0.2
        test = CategoricalShareTest(0.2)
        online = [test.update(int(c), bool(h)) for c, h in zip(codes, hits, strict=True)]
        np.testing.assert_allclose(categorical_share_log_evalues(codes, hits, 0.2), online)

    def test_single_category_is_the_two_sided_share_test(self) -> None:
        """With one category the test is the two-sided share test."""
        hits = np.array([True, False, True, True])
        np.testing.assert_allclose(
            share_log_evalues(hits, 0.5, alternative="two-sided"),
            categorical_share_log_evalues(np.zeros(4, dtype=int), hits, 0.5),
        )

    def test_expectation_under_the_null_is_one(self) -> None:
        """Enumerating every hit sequence for fixed categories, the mean e-value is 1."""
        codes = np.array([0, 1, 0, 2, 1, 0])
        share = 0.3
        total = 0.0
        for bits in itertools.product([False, True], repeat=codes.size):
            hits = np.array(bits)
            prob = np.prod(np.where(hits, share, 1 - share))
            total += prob * math.exp(categorical_share_log_evalues(codes, hits, share)[-1])
        assert 1.0 == pytest.approx(total)

    def test_empty_stream(self) -> None:
        """No events give an empty path."""
        assert (0,) == categorical_share_log_evalues([], [], 0.5).shape

    def test_rejects_non_integer_categories(self) -> None:
        """Categories are integer codes."""
        with pytest.raises(InvalidInput, match="'categories' must be integers"):
            categorical_share_log_evalues([0.5, 1.5], [True, False], 0.5)

    def test_rejects_mismatched_lengths(self) -> None:
        """Categories and hits pair up one to one."""
        with pytest.raises(InvalidInput, match="same number of rows"):
            categorical_share_log_evalues([0, 1], [True], 0.5)


def brute_force_betting(x: np.ndarray, m: float, low: float, high: float, side: str) -> float:
    """The mixture of constant-bet wealth processes, with an explicit loop."""
    reach = m - low if side == "greater" else high - m
    bets = [0.9 / reach * 0.5**j for j in range(8)]
    wealth = []
    for lam in bets:
        w = 1.0
        for value in x:
            w *= 1 + lam * ((value - m) if side == "greater" else (m - value))
        wealth.append(w)
    return math.log(sum(wealth) / len(wealth))


class TestBettingLogEvalues:
    @pytest.mark.parametrize("side", ["greater", "less"])
    def test_matches_a_loop(self, side: Any) -> None:
        """The vectorized path equals the wealth computed by an explicit loop."""
        x = np.random.default_rng(4).uniform(-1, 1, 30)
        path = betting_log_evalues(x, 0.1, low=-1, high=1, alternative=side)
        assert brute_force_betting(x, 0.1, -1, 1, side) == pytest.approx(path[-1])
        assert brute_force_betting(x[:7], 0.1, -1, 1, side) == pytest.approx(path[6])

    def test_expectation_at_the_null_mean_is_one(self) -> None:
        """For a two-point distribution with mean m the e-value averages exactly 1."""
        values, probs = np.array([-1.0, 1.0]), np.array([0.4, 0.6])  # mean 0.2
        total = 0.0
        for seq in itertools.product([0, 1], repeat=8):
            x = values[list(seq)]
            weight = float(np.prod(probs[list(seq)]))
            total += weight * math.exp(betting_log_evalues(x, 0.2, low=-1, high=1)[-1])
        assert 1.0 == pytest.approx(total)

    def test_online_test_matches_the_path(self) -> None:
        """`BettingTest.update` reproduces the vectorized path."""
        x = np.random.default_rng(5).uniform(0, 1, 40)
        test = BettingTest(0.4, low=0.0, high=1.0, alternative="greater")
        online = [test.update(v) for v in x]
        np.testing.assert_allclose(betting_log_evalues(x, 0.4, low=0, high=1), online)

    def test_constant_observations_at_the_null_mean_stay_at_one(self) -> None:
        """Observations equal to the null mean win nothing."""
        assert 0.0 == pytest.approx(betting_log_evalues(np.zeros(10), 0.0, low=-1, high=1)[-1])

    def test_rejects_observations_outside_the_bounds(self) -> None:
        """Bounded means bounded."""
        with pytest.raises(InvalidInput, match=r"'x' must lie in \[-1, 1\]"):
            betting_log_evalues([0.5, 2.0], 0.0, low=-1, high=1)

    def test_rejects_a_null_mean_on_the_bound(self) -> None:
        """The null mean must be strictly inside the bounds."""
        with pytest.raises(InvalidInput, match="'null_mean'"):
            betting_log_evalues([0.5], 1.0, low=-1, high=1)

    def test_rejects_nan(self) -> None:
        """NaN observations are rejected."""
        with pytest.raises(InvalidInput, match="'x' must be finite"):
            betting_log_evalues([float("nan")], 0.0, low=-1, high=1)

    def test_online_rejects_out_of_bounds(self) -> None:
        """The online test checks each observation too."""
        with pytest.raises(InvalidInput, match="'x' must lie in"):
            BettingTest(0.0, low=-1, high=1).update(3.0)


class TestBettingConfidenceSequence:
    def test_covers_the_mean_and_narrows(self) -> None:
        """The interval contains the true mean and shrinks as data accumulate."""
        x = np.random.default_rng(6).uniform(-0.5, 0.7, 2000)  # mean 0.1
        short = betting_confidence_sequence(x[:100], low=-1, high=1)
        long = betting_confidence_sequence(x, low=-1, high=1)
        assert short.low < 0.1 < short.high
        assert long.low < 0.1 < long.high
        assert long.high - long.low < short.high - short.low

    def test_time_uniform_coverage(self) -> None:
        """The interval excludes the true mean at some time in at most alpha of 300 runs.

        The interval at time t excludes m exactly when one of the one-sided e-values at m
        reaches 2 / alpha, so the whole path of both e-values is checked at once.
        """
        rng = np.random.default_rng(7)
        misses = 0
        for _ in range(300):
            x = rng.uniform(-1, 1, 400) ** 3  # mean 0, skewed toward 0, bounded
            up = betting_log_evalues(x, 0.0, low=-1, high=1, alternative="greater")
            down = betting_log_evalues(x, 0.0, low=-1, high=1, alternative="less")
            misses += bool(max(up.max(), down.max()) >= math.log(2 / 0.1))
        assert misses / 300 <= 0.1
        ci = betting_confidence_sequence(x, low=-1, high=1, alpha=0.1)
        assert ci.low < 0.0 < ci.high

    def test_empty_input_is_the_whole_range(self) -> None:
        """With no data every mean in the bounds is plausible."""
        assert (-1.0, 1.0) == tuple(betting_confidence_sequence([], low=-1, high=1))

    def test_constant_input(self) -> None:
        """Constant data give a tight interval around the constant."""
        ci = betting_confidence_sequence(np.full(500, 0.3), low=-1, high=1)
        assert ci.low < 0.3 < ci.high
        assert ci.high - ci.low < 0.2

    def test_single_observation(self) -> None:
        """One observation cannot exclude much of the range."""
        ci = betting_confidence_sequence([0.0], low=-1, high=1)
        assert ci.low < -0.9
        assert ci.high > 0.9


class TestRateLogEvalue:
    @pytest.mark.parametrize("side", ["greater", "less"])
    def test_equals_the_betting_test_on_zero_one_observations(self, side: Any) -> None:
        """The closed form in the counts is `betting_log_evalues` on the 0/1 outcomes."""
        x = (np.random.default_rng(11).random(200) < 0.25).astype(float)
        expected = betting_log_evalues(x, 0.2, low=0.0, high=1.0, alternative=side)
        np.testing.assert_allclose(expected, rate_log_evalues(x, 0.2, alternative=side))

    def test_matches_a_loop(self) -> None:
        """The e-value equals the mixture of constant-bet wealths computed by a loop."""
        x = np.array([1.0, 0, 0, 1, 1, 0, 1])
        expected = brute_force_betting(x, 0.3, 0.0, 1.0, "greater")
        assert expected == pytest.approx(float(rate_log_evalue(4, 7, 0.3)))

    @pytest.mark.parametrize("side", ["greater", "less"])
    @pytest.mark.parametrize("n", [1, 5, 20])
    def test_expectation_at_the_null_rate_is_one(self, side: Any, n: int) -> None:
        """Averaged over the binomial distribution at the null rate the e-value is exactly 1."""
        k = np.arange(n + 1)
        evalues = np.exp(rate_log_evalue(k, n, 0.1, alternative=side))
        assert 1.0 == pytest.approx(float(np.sum(stats.binom.pmf(k, n, 0.1) * evalues)))

    def test_expectation_inside_the_null_is_below_one(self) -> None:
        """A rate below the null boundary makes the e-value a supermartingale."""
        k = np.arange(31)
        evalues = np.exp(rate_log_evalue(k, 30, 0.1))
        assert float(np.sum(stats.binom.pmf(k, 30, 0.05) * evalues)) < 1.0

    def test_no_trials_is_one_and_counts_broadcast(self) -> None:
        """Before any trial the e-value is 1; arrays of counts give an array."""
        assert 0.0 == float(rate_log_evalue(0, 0, 0.1))
        assert (2, 3) == rate_log_evalue([[0], [1]], [1, 2, 3], 0.1).shape

    @pytest.mark.parametrize("rate", [0.0, 1.0, float("nan"), True])
    def test_rejects_a_null_rate_outside_the_open_unit_interval(self, rate: Any) -> None:
        """The null rate must lie in (0, 1)."""
        with pytest.raises(InvalidInput, match="'null_rate'"):
            rate_log_evalue(1, 2, rate)

    def test_rejects_more_hits_than_trials(self) -> None:
        """k > n is not a count."""
        with pytest.raises(InvalidInput, match="0 <= k <= n"):
            rate_log_evalue(3, 2, 0.1)


class TestRateLogEvalues:
    def test_rows_are_independent_streams(self) -> None:
        """A 2-D input gives each row's own path."""
        hits = np.random.default_rng(12).random((3, 40)) < 0.3
        paths = rate_log_evalues(hits, 0.2)
        for row, path in zip(hits, paths, strict=True):
            np.testing.assert_allclose(rate_log_evalues(row, 0.2), path)

    def test_empty_stream(self) -> None:
        """No outcomes give an empty path."""
        assert (0,) == rate_log_evalues([], 0.1).shape

    @pytest.mark.parametrize(
        ("hits", "match"),
        [([0, 2], "must be booleans"), ([1.0, float("nan")], "must be finite"), (1, "1-D")],
    )
    def test_rejects_non_boolean_outcomes(self, hits: Any, match: str) -> None:
        """Outcomes are booleans or 0/1 along at least one axis."""
        with pytest.raises(InvalidInput, match=match):
            rate_log_evalues(hits, 0.1)


class TestRateConfidenceSequence:
    @pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (40, 500)])
    def test_equals_the_betting_confidence_sequence_of_the_outcomes(self, k: int, n: int) -> None:
        """From the counts alone it is the betting interval of the 0/1 outcomes."""
        x = np.r_[np.ones(k), np.zeros(n - k)]
        expected = betting_confidence_sequence(x, low=0.0, high=1.0, alpha=0.1)
        np.testing.assert_allclose(expected, rate_confidence_sequence(k, n, alpha=0.1), atol=1e-6)

    def test_edges(self) -> None:
        """No trials give [0, 1]; all misses a lower end of 0; all hits an upper end of 1."""
        assert (0.0, 1.0) == tuple(rate_confidence_sequence(0, 0))
        assert 0.0 == rate_confidence_sequence(0, 50).low
        assert 1.0 == rate_confidence_sequence(50, 50).high

    @pytest.mark.parametrize(("k", "n"), [(3, 3), (4, 4), (10, 40), (13, 60), (30, 200)])
    def test_lower_end_clears_the_null_exactly_when_the_test_rejects(self, k: int, n: int) -> None:
        """Each end inverts the one-sided test at alpha / 2."""
        rejects = float(rate_log_evalue(k, n, 0.1)) >= math.log(1 / 0.0125)
        assert rejects == (rate_confidence_sequence(k, n, alpha=0.025).low > 0.1)

    @pytest.mark.parametrize(
        ("k", "n", "match"),
        [(3, 2, "in \\[0, n\\]"), (2.5, 2, "in \\[0, n\\]"), (-0.5, 2, "'k'"), ("1", 2, "'k'")],
    )
    def test_rejects_bad_counts(self, k: Any, n: Any, match: str) -> None:
        """Hits are a whole count or a float sum of fractions, with 0 <= k <= n."""
        with pytest.raises(InvalidInput, match=match):
            rate_confidence_sequence(k, n)


class TestRateTest:
    def test_online_test_matches_the_path(self) -> None:
        """`RateTest.update` gives the same log e-values as the vectorized path."""
        hits = np.random.default_rng(13).random(60) < 0.2
        test = RateTest(0.15)
        online = [test.update(bool(h)) for h in hits]
        np.testing.assert_allclose(rate_log_evalues(hits, 0.15), online)
        assert (60, int(hits.sum())) == (test.n, test.hits)
        assert hits.mean() == pytest.approx(test.rate)

    def test_interval_and_rate_before_any_outcome(self) -> None:
        """Before any outcome the rate is NaN and the interval the whole unit interval."""
        test = RateTest(0.1)
        assert math.isnan(test.rate)
        assert (0.0, 1.0) == tuple(test.interval())
        assert "RateTest(null_rate=0.1, alternative='greater', n=0, hits=0" in repr(test)

    def test_share_and_rate_tests_count_outcomes_alike(self) -> None:
        """`ShareTest` and `RateTest` keep the same bookkeeping: outcomes, hits, a repr."""
        share, rate = ShareTest(0.2), RateTest(0.2)
        for hit in [True, False, True]:
            share.update(hit)
            rate.update(hit)
        assert (3, 2) == (share.n, share.hits) == (rate.n, rate.hits)
        assert repr(share).startswith("ShareTest(share=0.2, alternative='greater', n=3, hits=2")


class TestEffectSizes:
    def test_psi_matches_the_formula(self) -> None:
        """PSI is sum (p - q) ln(p / q) of the smoothed proportions."""
        a, b = np.array([50.0, 30, 20]), np.array([30.0, 30, 40])
        p, q = (a + 0.5) / (a.sum() + 1.5), (b + 0.5) / (b.sum() + 1.5)
        assert float(np.sum((p - q) * np.log(p / q))) == pytest.approx(psi(a, b))

    def test_psi_is_zero_for_identical_distributions(self) -> None:
        """Equal counts have no shift; proportional counts almost none (smoothing)."""
        assert 0.0 == psi([10, 20, 30], [10, 20, 30])
        assert psi([10, 20, 30], [20, 40, 60]) < 1e-4

    def test_psi_stays_finite_with_an_empty_category(self) -> None:
        """Smoothing keeps a category seen on one side only finite."""
        assert math.isfinite(psi([10, 0], [5, 5]))

    def test_js_matches_scipy(self) -> None:
        """JS divergence is scipy's Jensen-Shannon distance squared (base 2)."""
        a, b = [50, 30, 20, 0], [30, 30, 35, 5]
        expected = float(jensenshannon(a, b, base=2) ** 2)
        assert expected == pytest.approx(js_divergence(a, b))

    def test_js_of_disjoint_supports_is_one(self) -> None:
        """Distributions with no common category are maximally different."""
        assert 1.0 == js_divergence([3, 0], [0, 4])

    def test_rejects_mismatched_lengths(self) -> None:
        """The count vectors cover the same categories."""
        with pytest.raises(InvalidInput, match="same length"):
            psi([1, 2], [1, 2, 3])

    def test_rejects_negative_counts(self) -> None:
        """Counts are non-negative."""
        with pytest.raises(InvalidInput, match="non-negative"):
            js_divergence([1, -2], [1, 2])


# ---------------------------------------------------------------- online bookkeeping (O(1))


class TestLogMeanExp:
    @pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 16, 20])
    def test_equals_scipy_on_random_inputs(self, size: int) -> None:
        """``log_mean_exp`` is scipy's ``logsumexp - log n`` to 1e-12, whatever the scale."""
        from scipy.special import logsumexp

        from mlchecks.stats._betting import log_mean_exp

        rng = np.random.default_rng(size)
        for scale in (1e-3, 1.0, 50.0, 1e4, 1e8):
            for _ in range(200):
                values = rng.normal(rng.normal(0, scale), scale, size)
                if size > 1 and rng.random() < 0.3:
                    values[rng.integers(size, size=rng.integers(1, size))] = -np.inf
                expected = float(logsumexp(values)) - math.log(size)
                got = log_mean_exp(values.tolist())
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)

    def test_infinities_and_nan_as_scipy(self) -> None:
        """All ``-inf`` gives ``-inf``; ``inf`` gives ``inf``; a NaN gives NaN."""
        from mlchecks.stats._betting import log_mean_exp

        assert -math.inf == log_mean_exp([-math.inf] * 8)
        assert math.inf == log_mean_exp([math.inf, 0.0])
        assert math.isnan(log_mean_exp([1.0, math.nan]))
        assert math.isnan(log_mean_exp([math.nan, 1.0]))


class TestOnlineTestsMatchTheirPaths:
    @pytest.mark.parametrize("side", ["greater", "less"])
    def test_betting_test_on_a_long_stream(self, side: Any) -> None:
        """`BettingTest`'s float bookkeeping equals the vectorized path to 1e-12."""
        rng = np.random.default_rng(5)
        x = np.clip(rng.normal(0.05, 0.5, 20_000), -2.0, 2.0)
        test = BettingTest(0.0, low=-2.0, high=2.0, alternative=side)
        online = [test.update(v) for v in x]
        path = betting_log_evalues(x, 0.0, low=-2.0, high=2.0, alternative=side)
        np.testing.assert_allclose(online, path, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("side", ["greater", "less"])
    def test_rate_test_outcomes_and_fractions(self, side: Any) -> None:
        """`RateTest` equals `rate_log_evalue` of its counts, fed outcomes or 0/1 fractions."""
        rng = np.random.default_rng(6)
        hits = rng.random(5000) < 0.12
        test, fractions = RateTest(0.1, alternative=side), RateTest(0.1, alternative=side)
        for hit in hits:
            test.update(bool(hit))
            fractions.update_fraction(float(hit))
        expected = float(rate_log_evalue(int(hits.sum()), hits.size, 0.1, alternative=side))
        assert test.log_evalue == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert fractions.log_evalue == pytest.approx(expected, rel=1e-12, abs=1e-12)

    @pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 10), (50, 1000), (999, 1000), (7.5, 40)])
    def test_rate_confidence_sequence_inverts_rate_log_evalue(self, k: float, n: int) -> None:
        """The interval's float e-values invert `rate_log_evalue` as the array version did."""
        from mlchecks.stats._betting import _invert

        def log_evalue(m: float, side: Any) -> float:
            return float(rate_log_evalue(k, n, m, alternative=side))

        expected = _invert(log_evalue, 0.05, 0.0, 1.0)
        got = rate_confidence_sequence(k, n, alpha=0.05)
        assert got.low == pytest.approx(expected.low, abs=1e-9)
        assert got.high == pytest.approx(expected.high, abs=1e-9)


class TestRunningConfidenceSequence:
    BOUND = math.log(10.0)

    def running(self, **kwargs: Any) -> Any:
        from mlchecks.stats._running_cs import RunningConfidenceSequence

        return RunningConfidenceSequence(low=-self.BOUND, high=self.BOUND, **kwargs)

    def test_empty_and_one_observation(self) -> None:
        """No observation: the bounds; one: the batch interval."""
        cs = self.running(alpha=0.01)
        assert (-self.BOUND, self.BOUND) == tuple(cs.interval())
        assert math.isnan(cs.mean)
        cs.add(0.3)
        batch = betting_confidence_sequence([0.3], low=-self.BOUND, high=self.BOUND, alpha=0.01)
        np.testing.assert_allclose(tuple(cs.interval()), tuple(batch), atol=1e-6)
        assert 0.3 == cs.mean

    def test_agrees_with_the_batch_interval(self) -> None:
        """Never narrower than the batch intervals' running intersection; exact up to
        `EXACT_BELOW` observations, then within a grid step."""
        from mlchecks.stats._running_cs import BLOCK, EXACT_BELOW

        rng = np.random.default_rng(11)
        x = np.clip(rng.normal(0.05, 0.42, 6000), -self.BOUND, self.BOUND)
        cs = self.running(alpha=0.01)
        tol = 1e-6 * 2 * self.BOUND
        best_low, best_high = -self.BOUND, self.BOUND  # the batch intervals' intersection
        for n, value in enumerate(x, start=1):
            cs.add(value)
            looked = n % BLOCK == 0 or n in (1, 2, 10, 100, 2047, 2048, 2049, 3001, 6000)
            if not looked:
                continue
            batch = betting_confidence_sequence(x[:n], low=-self.BOUND, high=self.BOUND, alpha=0.01)
            best_low, best_high = max(best_low, batch.low), min(best_high, batch.high)
            got = cs.interval()
            assert best_low + tol >= got.low, n
            assert got.high >= best_high - tol, n
            slack = tol if n <= EXACT_BELOW else (batch.high - batch.low) / 4
            assert got.low >= batch.low - slack, n
            assert got.high <= batch.high + slack, n
            assert got.low <= cs.mean <= got.high
        assert math.fsum(x) / x.size == cs.mean  # the mean is exact

    def test_time_uniform_coverage(self) -> None:
        """Over 300 streams of 5,000 observations, the intervals (after every block, and
        at the end) exclude the true mean in at most alpha + 3 standard errors of them."""
        rng = np.random.default_rng(12)
        alpha, streams = 0.1, 300
        truth = 2.0 / 7.0 * 2.0 - 1.0  # 2 Beta(2, 5) - 1 lies in [-1, 1]
        missed = 0
        for _ in range(streams):
            cs = self.running(alpha=alpha)
            ever = False
            for value in (2.0 * rng.beta(2.0, 5.0, 5000) - 1.0).tolist():
                cs.add(value)
                low, high = cs._ends
                ever = ever or not low < truth < high
            low, high = cs.interval()
            missed += ever or not low <= truth <= high
        assert missed / streams <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / streams)

    def test_drift_keeps_the_current_mean_inside(self) -> None:
        """When the mean moves, the intersection is widened to the current mean."""
        cs = self.running(alpha=0.05)
        for value in [1.0] * 3000 + [-1.0] * 9000:
            cs.add(value)
        low, high = cs.interval()
        assert low <= cs.mean <= high
        assert -0.5 == cs.mean

    def test_grows_after_a_look(self) -> None:
        """Reading the interval never pins the observations' buffer."""
        cs = self.running()
        for i in range(600):
            cs.add(0.01 * (i % 7))
            if i % 50 == 0:
                cs.interval()
        assert 600 == len(cs)

    def test_rejects_observations_outside_the_bounds(self) -> None:
        """An observation outside [low, high] (or NaN) is refused, naming the bounds."""
        cs = self.running()
        with pytest.raises(InvalidInput, match="'x' must lie in"):
            cs.add(3.0)
        with pytest.raises(InvalidInput, match="'x' must lie in"):
            cs.add(math.nan)
