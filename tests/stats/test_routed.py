"""The share tests for platform-routed traffic: blocks, exact conditional nulls, validity, power."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import nchypergeom_fisher

from mlchecks.exceptions import InvalidInput
from mlchecks.stats._routed import ODDS_GRID, TILTS, Blocks
from mlchecks.stats.intervals import clopper_pearson
from mlchecks.stats.sequential import RoutedCategoryTest, RoutedRateTest


class TestBlocks:
    def test_one_candidate_and_the_baseline_requests_nearest_it(self) -> None:
        blocks: Blocks[str] = Blocks()
        arms = [False, False, False, True, False, False, False, True]
        closed = [blocks.add(arm, f"{'c' if arm else 'b'}{i}") for i, arm in enumerate(arms)]
        # the first candidate sees 3 baseline requests per candidate: it takes all three
        assert closed[3] == [("c3", ["b2", "b1", "b0"])]
        # the second: 6 baseline requests for 2 candidates -> m = 3, the three before it
        assert closed[7] == [("c7", ["b6", "b5", "b4"])]

    def test_a_block_waits_for_baseline_requests_after_its_candidate(self) -> None:
        blocks: Blocks[int] = Blocks()
        for i in range(9):
            blocks.add(False, i)
        blocks.add(True, 100)  # takes the latest 9 (m = 9)
        assert blocks.add(True, 101) == []  # m = round(9 / 2) = 4, nothing spare: it waits
        assert blocks.pending == 1
        out = [blocks.add(False, 10 + i) for i in range(5)]
        assert out[3] == [(101, [10, 11, 12, 13])]
        assert blocks.pending == 0
        assert out[4] == []  # spare, for the next candidate request

    def test_m_follows_a_rollouts_steps(self) -> None:
        """The ratio is taken over the recent window, so m drops when the weight rises."""
        blocks: Blocks[int] = Blocks(window=100)
        for i in range(2000):
            blocks.add(i % 20 == 0, i)
        assert blocks.size() == 19
        for i in range(200):
            blocks.add(i % 2 == 0, i)
        assert blocks.size() == 1

    def test_m_is_bounded(self) -> None:
        blocks: Blocks[int] = Blocks(max_baseline=5)
        for i in range(1000):
            blocks.add(False, i)
        assert blocks.size() == 5
        assert blocks.add(True, -1) == [(-1, [999, 998, 997, 996, 995])]

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
    def test_bad_max_baseline(self, bad: object) -> None:
        with pytest.raises(InvalidInput, match="'max_baseline' must be a whole number"):
            Blocks(bad)  # type: ignore[arg-type]


def brute_rate_log_evalue(blocks: list[tuple[bool, int, int]], rho: float) -> float:
    """The e-value from its definition: the grid's average of products of likelihood ratios
    of Fisher's noncentral hypergeometric (one request on the candidate's side)."""
    total = 0.0
    for g in ODDS_GRID:
        product = 1.0
        for hit, baseline_events, m in blocks:
            s = baseline_events + hit
            if s in (0, m + 1):
                continue
            null = nchypergeom_fisher.pmf(int(hit), m + 1, 1, s, rho)
            alt = nchypergeom_fisher.pmf(int(hit), m + 1, 1, s, rho * g)
            product *= alt / null
        total += product
    return math.log(total / len(ODDS_GRID))


class TestRoutedRateTest:
    @pytest.mark.parametrize("rho", [1.0, 2.1])
    def test_matches_the_definition(self, rho: float) -> None:
        rng = np.random.default_rng(3)
        test = RoutedRateTest(rho, max_baseline=4)
        blocks = []
        for _ in range(40):  # one candidate then four baseline requests: one block of m = 4
            hit = bool(rng.random() < 0.3)
            events = [bool(rng.random() < 0.2) for _ in range(4)]
            for event in events:
                test.observe(False, event)
            test.observe(True, hit)
            blocks.append((hit, sum(events), 4))
        assert test.log_evalue == pytest.approx(brute_rate_log_evalue(blocks, rho), rel=1e-9)

    @pytest.mark.parametrize(
        ("m", "s", "rho"), [(1, 1, 1.0), (19, 1, 1.0), (19, 3, 2.0), (5, 5, 1.0)]
    )
    def test_each_block_is_fair_under_the_null(self, m: int, s: int, rho: float) -> None:
        """E[factor | block] = 1 at the null's odds ratio: a martingale, not only a bound."""
        # the block's events are given: s of m + 1, the candidate's among them or not; the
        # candidate's request closes the block at once with the m spare baseline requests
        p_hit = nchypergeom_fisher.pmf(1, m + 1, 1, s, rho)
        test_factors = []
        for hit in (False, True):
            test = RoutedRateTest(rho, max_baseline=m)
            for j in range(m):
                test.observe(False, j < s - hit)
            test.observe(True, hit)
            test_factors.append(math.exp(test.log_evalue))
        assert (1 - p_hit) * test_factors[0] + p_hit * test_factors[1] == pytest.approx(1.0)

    def test_blocks_with_no_or_only_events_carry_no_information(self) -> None:
        test = RoutedRateTest()
        for i in range(1000):
            test.observe(i % 10 == 0, True)  # everything failed
        assert (test.log_evalue, test.n_blocks) == (0.0, 0)
        assert test.n_events == (100, 900)

    def test_false_alarms_when_the_share_drifts(self) -> None:
        """A/A: the routing share steps 5% -> 50%; the test at 0.05 rejects at most 5% of
        streams (anytime: the largest e-value over the stream counts)."""
        rng = np.random.default_rng(11)
        rejected = 0
        runs = 600
        for _ in range(runs):
            share = np.repeat([0.05, 0.1, 0.25, 0.5], 1000)
            arms = rng.random(share.size) < share
            events = rng.random(share.size) < 0.03
            test = RoutedRateTest()
            peak = max(
                test.observe(a, e) for a, e in zip(arms.tolist(), events.tolist(), strict=True)
            )
            rejected += peak >= math.log(20)
        assert clopper_pearson(rejected, runs)[1] < 0.05

    def test_power_on_twice_the_error_rate(self) -> None:
        rng = np.random.default_rng(12)
        caught = 0
        for _ in range(50):
            arms = rng.random(10_000) < 0.2
            events = rng.random(10_000) < np.where(arms, 0.04, 0.02)
            test = RoutedRateTest()
            for a, e in zip(arms.tolist(), events.tolist(), strict=True):
                test.observe(a, e)
            caught += test.rejects(alpha=0.01)
        assert caught >= 40

    def test_bad_odds_ratio(self) -> None:
        with pytest.raises(InvalidInput, match="'odds_ratio' must be a positive number"):
            RoutedRateTest(0.0)


class TestRoutedCategoryTest:
    @pytest.mark.parametrize("block", [(0, 1, 1, 2), (0, 0, 1), (2, 2, 2, 1, 0, 0)])
    def test_each_block_is_fair_under_the_null(self, block: tuple[int, ...]) -> None:
        """Whichever of a block's requests the candidate's is (each equally likely given the
        block), the e-value's expected factor is 1, after any history."""
        factors = []
        for position in range(len(block)):
            test = RoutedCategoryTest(max_baseline=len(block) - 1)
            test._counts = {0: [3, 5], 1: [1, 4], 2: [2, 1]}  # earlier blocks' classes
            before = test.log_evalue
            members = [c for j, c in enumerate(block) if j != position]
            for cls in members:
                test.update(cls, False)
            test.update(block[position], True)
            factors.append(math.exp(test.log_evalue - before))
        assert float(np.mean(factors)) == pytest.approx(1.0, rel=1e-12)
        assert max(factors) > 1.0  # and it does bet

    def test_a_block_of_one_class_carries_no_information(self) -> None:
        test = RoutedCategoryTest()
        for i in range(500):
            test.update(1, i % 5 == 0)
        assert (test.log_evalue, test.n) == (0.0, 500)

    def test_false_alarms(self) -> None:
        rng = np.random.default_rng(13)
        rejected = 0
        runs = 500
        for _ in range(runs):
            share = np.repeat([0.05, 0.1, 0.25, 0.5], 750)
            arms = rng.random(share.size) < share
            classes = rng.choice(3, size=share.size, p=[0.5, 0.3, 0.2])
            test = RoutedCategoryTest()
            peak = max(
                test.update(c, a) for c, a in zip(classes.tolist(), arms.tolist(), strict=True)
            )
            rejected += peak >= math.log(20)
        assert clopper_pearson(rejected, runs)[1] < 0.05

    def test_power_on_a_class_shift(self) -> None:
        rng = np.random.default_rng(14)
        caught = 0
        for _ in range(30):
            arms = rng.random(6000) < 0.2
            base = rng.choice(3, size=6000, p=[0.5, 0.3, 0.2])
            cand = rng.choice(3, size=6000, p=[0.3, 0.3, 0.4])
            test = RoutedCategoryTest()
            for a, c, b in zip(arms.tolist(), cand.tolist(), base.tolist(), strict=True):
                test.update(c if a else b, a)
            caught += test.rejects(alpha=0.01)
        assert caught >= 27


def test_tilts_include_the_plain_estimate() -> None:
    assert 1.0 in TILTS
    assert all(0 < t <= 1 for t in TILTS)
    assert list(itertools.accumulate(ODDS_GRID, max)) == list(ODDS_GRID)  # increasing
