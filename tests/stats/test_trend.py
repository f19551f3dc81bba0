"""Tests for mlchecks.stats.trend: Kendall's tau on block means for loss curves."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats

from mlchecks import stats
from mlchecks.checks.training import LossTrend as TrainingLossTrend
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.trend import (
    LossTrend,
    block_steps,
    kendall_pvalue_less,
    lag1_autocorrelation,
    loss_trend,
    min_blocks,
    slope_test,
)


def ar1(rng: np.random.Generator, n: int, phi: float, size: int | None = None) -> np.ndarray:
    """Stationary AR(1) noise with unit innovations; shape (size, n) when size is given."""
    shape = (n + 200,) if size is None else (size, n + 200)
    noise = rng.normal(size=shape)
    return scipy.signal.lfilter([1.0], [1.0, -phi], noise, axis=-1)[..., 200:]


def brute_force_tau(means: np.ndarray) -> tuple[float, float]:
    """Kendall's tau of index vs ``means`` and its exact one-sided p-value, by enumeration.

    The p-value is the fraction of the b! orderings whose tau is at most the observed one
    (no ties): the permutation distribution the exact test uses.
    """
    b = len(means)

    def tau(values: tuple[float, ...] | np.ndarray) -> float:
        signs = [np.sign(values[j] - values[i]) for i in range(b) for j in range(i + 1, b)]
        return float(sum(signs)) / (b * (b - 1) / 2)

    observed = tau(means)
    taus = [tau(p) for p in itertools.permutations(range(b))]
    return observed, sum(t <= observed + 1e-12 for t in taus) / math.factorial(b)


# --------------------------------------------------------------------------- loss_trend


class TestMinBlocks:
    def test_values(self) -> None:
        """The floor allows one out-of-order pair of blocks to be significant at alpha."""
        assert (5, 6, 8) == (min_blocks(0.05), min_blocks(0.01), min_blocks(0.001))

    def test_one_inversion_reaches_alpha(self) -> None:
        """With min_blocks(alpha) blocks, a curve with one adjacent swap has p <= alpha."""
        for alpha in (0.05, 0.01, 0.001):
            b = min_blocks(alpha)
            means = np.arange(b, 0, -1, dtype=float)
            means[[0, 1]] = means[[1, 0]]
            p = scipy.stats.kendalltau(np.arange(b), means, alternative="less").pvalue
            assert p <= alpha


class TestLossTrend:
    def test_strictly_decreasing(self) -> None:
        """A strictly decreasing curve gives tau -1 and a tiny p-value on 10 blocks."""
        trend = loss_trend(np.linspace(2.0, 0.5, 200))
        assert 10 == trend.n_blocks
        assert -1.0 == pytest.approx(trend.statistic)
        assert trend.pvalue < 1e-6
        assert trend.decreasing(0.01)

    def test_matches_scipy_on_block_means(self) -> None:
        """The p-value is scipy's one-sided Kendall's tau on np.array_split block means."""
        rng = np.random.default_rng(3)
        losses = 1.0 - np.linspace(0, 0.1, 203) + rng.normal(scale=0.05, size=203)
        trend = loss_trend(losses, n_blocks=10)
        means = [chunk.mean() for chunk in np.array_split(losses, trend.n_blocks)]
        reference = scipy.stats.kendalltau(np.arange(trend.n_blocks), means, alternative="less")
        assert reference.pvalue == pytest.approx(trend.pvalue)
        assert reference.statistic == pytest.approx(trend.statistic)
        assert pytest.approx(means) == list(trend.block_means)

    def test_constant_curve(self) -> None:
        """A constant curve has no trend (p = 1) and raises no warning."""
        trend = loss_trend(np.full(50, 0.7))
        assert (0.0, 1.0, 0.0) == (trend.statistic, trend.pvalue, trend.relative_drop)

    def test_increasing_curve(self) -> None:
        """An increasing loss is not a decrease and its relative drop is negative."""
        trend = loss_trend(np.linspace(1.0, 2.0, 100))
        assert not trend.decreasing(0.05)
        assert trend.relative_drop == pytest.approx(-0.9, abs=0.05)

    def test_relative_drop(self) -> None:
        """The relative drop compares the first and last block means."""
        trend = loss_trend(np.linspace(2.0, 1.0, 100))
        first, last = trend.block_means[0], trend.block_means[-1]
        assert (first - last) / first == pytest.approx(trend.relative_drop)
        assert (1.955, 1.045) == pytest.approx((first, last), abs=1e-3)

    def test_few_steps_use_the_floor(self) -> None:
        """With exactly min_blocks(alpha) losses, each block is one step."""
        trend = loss_trend([5.0, 4.0, 3.0, 2.0, 1.0, 0.5], alpha=0.01)
        assert (6, 1.0) == (trend.n_blocks, trend.block_size)

    def test_autocorrelated_noise_gets_fewer_blocks(self) -> None:
        """Strongly autocorrelated noise makes blocks longer than its correlation time."""
        rng = np.random.default_rng(0)
        trend = loss_trend(ar1(rng, 300, 0.95), n_blocks=10, alpha=0.01)
        assert trend.lag1_autocorrelation > 0.8
        assert trend.n_blocks < 10
        assert trend.block_size >= 4 * trend.correlation_steps or trend.n_blocks == 6

    @pytest.mark.parametrize("phi", [0.0, 0.8, 0.9])
    def test_false_alarm_rate_on_flat_autocorrelated_curves(self, phi: float) -> None:
        """On flat AR(1) curves the test declares a decrease at about rate alpha, not more."""
        rng = np.random.default_rng(2024)
        alpha, repetitions = 0.05, 300
        curves = 1.0 + 0.1 * ar1(rng, 200, phi, size=repetitions)
        alarms = sum(loss_trend(c, alpha=alpha).decreasing(alpha) for c in curves)
        margin = 3 * np.sqrt(alpha * (1 - alpha) / repetitions)
        assert alarms / repetitions <= alpha + margin

    def test_raw_kendall_would_not_hold_alpha(self) -> None:
        """Kendall's test on raw steps of the same curves raises far more false alarms."""
        rng = np.random.default_rng(2024)
        curves = 1.0 + 0.1 * ar1(rng, 200, 0.9, size=200)
        steps = np.arange(200)
        raw = sum(
            scipy.stats.kendalltau(steps, c, alternative="less").pvalue <= 0.05 for c in curves
        )
        assert raw / 200 > 0.2

    def test_real_gpu_training_curve_decreases(self, gpu_arrays: dict[str, np.ndarray]) -> None:
        """The losses of a real recorded PyTorch run show a decrease at alpha 0.01."""
        trend = loss_trend(gpu_arrays["gpu_det_seed0_a__losses"], alpha=0.01)
        assert trend.decreasing(0.01)
        assert trend.relative_drop > 0.05

    def test_noisy_decreasing_curve_decreases(self) -> None:
        """A decaying curve with autocorrelated noise is detected reliably."""
        rng = np.random.default_rng(7)
        t = np.arange(200)
        hits = sum(
            loss_trend(0.5 + 1.5 * np.exp(-t / 60) + 0.1 * ar1(rng, 200, 0.5)).decreasing(0.01)
            for _ in range(50)
        )
        assert 50 == hits

    def test_rejects_nan(self) -> None:
        """NaN losses are rejected, naming the argument."""
        with pytest.raises(InvalidInput, match="'losses' must be finite"):
            loss_trend([1.0, np.nan, 0.5, 0.4, 0.3, 0.2, 0.1])

    def test_rejects_too_few_values(self) -> None:
        """Fewer losses than the fewest blocks are rejected."""
        with pytest.raises(InvalidInput, match="at least 6 values"):
            loss_trend([3.0, 2.0, 1.0], alpha=0.01)

    def test_rejects_unreachable_alpha(self) -> None:
        """n_blocks whose smallest p-value exceeds alpha is rejected."""
        with pytest.raises(InvalidInput, match="cannot reach alpha"):
            loss_trend(np.linspace(1, 0, 50), n_blocks=4, alpha=0.01)

    def test_rejects_bad_alpha(self) -> None:
        """alpha outside (0, 1) is rejected."""
        with pytest.raises(InvalidInput, match=r"'alpha' must be in \(0, 1\)"):
            loss_trend(np.linspace(1, 0, 50), alpha=1.5)


class TestKernelPieces:
    @pytest.mark.parametrize("b", [3, 5, 6, 8, 10])
    def test_exact_pvalue_matches_scipy(self, b: int) -> None:
        """kendall_pvalue_less equals scipy's exact one-sided p-value, row by row."""
        rng = np.random.default_rng(b)
        rows = rng.normal(size=(30, b)) - np.linspace(0, 1, b) * rng.uniform(0, 2, (30, 1))
        ours = kendall_pvalue_less(rows)
        for row, p in zip(rows, ours, strict=True):
            ref = scipy.stats.kendalltau(np.arange(b), row, alternative="less", method="exact")
            assert ref.pvalue == pytest.approx(p, rel=1e-12)

    def test_exact_levels(self) -> None:
        """Kendall's exact level for 10 blocks: 0.0083 at alpha 0.01, 0.036 at 0.05."""
        values = np.array(list(itertools.permutations(range(6))), dtype=float)
        p = kendall_pvalue_less(values)
        assert 6 / 720 == pytest.approx(float(np.mean(p <= 0.01)))
        # Monotone in the number of increasing pairs; a strictly decreasing row is 1 / b!.
        assert 1 / 720 == pytest.approx(kendall_pvalue_less(np.arange(6.0)[::-1]))

    def test_block_steps(self) -> None:
        """Five correlation times, rounded up: 5 for white noise, 95 at 0.9."""
        assert (5, 15, 45, 95, 195) == tuple(block_steps(r) for r in (0.0, 0.5, 0.8, 0.9, 0.95))

    def test_autocorrelation_vectorised(self) -> None:
        """The 2-D form gives the 1-D form's value for every row."""
        rng = np.random.default_rng(5)
        rows = ar1(rng, 80, 0.7, size=12)
        assert pytest.approx(lag1_autocorrelation(rows)) == [lag1_autocorrelation(r) for r in rows]

    def test_short_smooth_curve_is_judged_by_the_slope_test(self) -> None:
        """Too few steps for the estimated autocorrelation: not judgeable by blocks
        (steps_needed is min_blocks blocks of block_steps steps; a smooth curve the cubic
        cannot follow reads as correlated noise over a short window), so the slope test
        decides, and a smooth decline is far beyond its random-walk bound."""
        curve = 0.01 + 0.43 * np.exp(-np.arange(40) / 6)
        trend = loss_trend(curve, alpha=0.01)
        assert not trend.judgeable
        assert 6 * block_steps(trend.lag1_autocorrelation) == trend.steps_needed
        assert trend.steps_needed > 40
        assert ("slope", True) == (trend.test, trend.decreasing(0.01))
        assert trend.slope_pvalue == trend.decision_pvalue < 1e-6

    def test_short_wandering_curve_is_not_decreasing(self) -> None:
        """A flat random walk of 40 steps that happens to drift down: its block means may
        fall in order, but the slope test sees steps as large as the drift."""
        rng = np.random.default_rng(3)
        walks = 1.0 + np.cumsum(rng.normal(scale=0.05, size=(200, 40)), axis=1)
        falling = [w for w in walks if w[-8:].mean() < w[:8].mean() - 0.1]
        assert len(falling) > 20
        trends = [loss_trend(w, alpha=0.01) for w in falling]
        assert all(not t.judgeable for t in trends)
        assert sum(t.decreasing(0.01) for t in trends) <= 0.05 * len(trends)

    def test_slope_test_against_brute_force(self) -> None:
        """z is minus the least-squares slope over the random-walk spread of the slope
        computed from the second differences (of the whole curve, and of its later half);
        the p-value the smaller t tail with (m - 2) / 3 df for m values, doubled."""
        rng = np.random.default_rng(8)
        curve = np.cumsum(rng.normal(size=25)) - 0.3 * np.arange(25)
        n = len(curve)
        slope = scipy.stats.linregress(np.arange(n), curve).slope
        t = np.arange(n) - (n - 1) / 2
        w = t / (t @ t)
        # Var(slope) of a random walk: sum over increments of (sum of later weights)^2.
        walk = sum(w[k:].sum() ** 2 for k in range(1, n))
        best = (np.inf, 1.0)
        for part in (curve, curve[n // 2 :]):
            s2 = np.mean(np.diff(part, 2) ** 2) / 2
            z_part = -slope / np.sqrt(s2 * walk)
            p_part = scipy.stats.t.sf(z_part, (len(part) - 2) / 3)
            best = min(best, (p_part, z_part))
        z, p = slope_test(curve)
        assert pytest.approx(best[1], rel=1e-10) == z
        assert pytest.approx(2 * best[0], rel=1e-10) == p
        rows = np.stack([curve, curve[::-1], np.ones(n)])
        zs, ps = slope_test(rows)
        assert pytest.approx(z) == zs[0]
        assert zs[1] < 0
        assert 0.0 == zs[2]
        assert 1.0 == ps[2]

    def test_slope_test_edges(self) -> None:
        """A straight falling line has no noise: z is infinite and p 0; fewer than 4
        losses are refused."""
        assert (np.inf, 0.0) == slope_test(np.arange(10.0, 0.0, -1.0))
        assert (-np.inf, 1.0) == slope_test(np.arange(10.0))
        with pytest.raises(InvalidInput, match="at least 4"):
            slope_test([1.0, 0.5, 0.2])

    def test_white_noise_needs_30_steps_at_alpha_001(self) -> None:
        """A noise-free straight line is judged by blocks from 30 steps at alpha 0.01 (25 at
        0.05); shorter, the slope test decides."""
        assert not loss_trend(np.linspace(1, 0, 29), alpha=0.01).judgeable
        assert loss_trend(np.linspace(1, 0, 29), alpha=0.01).decreasing(0.01)
        assert loss_trend(np.linspace(1, 0, 30), alpha=0.01).judgeable
        assert loss_trend(np.linspace(1, 0, 30), alpha=0.01).decreasing(0.01)
        assert loss_trend(np.linspace(1, 0, 25), alpha=0.05).judgeable


class TestAgainstReferences:
    @pytest.mark.parametrize("seed", range(6))
    def test_matches_brute_force_enumeration(self, seed: int) -> None:
        """tau and the exact p-value equal a brute-force count over all orderings."""
        rng = np.random.default_rng(seed)
        losses = 1.0 - np.linspace(0, 0.05, 40) + rng.normal(scale=0.02, size=40)
        trend = loss_trend(losses, n_blocks=7, alpha=0.01)
        means = np.array([chunk.mean() for chunk in np.array_split(losses, trend.n_blocks)])
        assert trend.n_blocks in (6, 7)
        assert pytest.approx(means) == list(trend.block_means)
        tau, pvalue = brute_force_tau(means)
        assert tau == pytest.approx(trend.statistic)
        assert pvalue == pytest.approx(trend.pvalue)

    def test_result_holds_python_floats(self) -> None:
        """statistic, pvalue and the block means are Python floats, not numpy scalars."""
        trend = loss_trend(np.linspace(2.0, 0.5, 60))
        values = [trend.statistic, trend.pvalue, trend.relative_drop, *trend.block_means]
        assert all(type(v) is float for v in values)
        assert type(trend.n_blocks) is int

    def test_public_paths(self) -> None:
        """LossTrend is one class, reachable from stats and from checks.training."""
        assert LossTrend is stats.LossTrend is TrainingLossTrend
        assert loss_trend is stats.loss_trend
        assert min_blocks is stats.min_blocks
