"""The online tests' fast paths equal their array definitions (issue 17: canary bookkeeping).

`BettingTest` and `RateTest` compute their e-value when it is read, with a bound that is
never below it; `ShareTest` evaluates the Beta-binomial closed form with scalar
`scipy.special` calls; the canary's size gate has a float path for the PSI
(`psi_exceeds`). Each must give what the array code gives.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mlchecks.checks._canary_shift import ClassCounts, psi_exceeds, shift_exceeds
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.sequential import (
    BettingTest,
    RateTest,
    ShareTest,
    beta_binomial_log_evalue,
    betting_log_evalues,
    rate_log_evalues,
)


def close(got: list[float], want: Any) -> None:
    """Equal to 1e-12 relative (absolute near 0), infinities equal."""
    want_list = np.asarray(want, dtype=np.float64).tolist()
    assert len(got) == len(want_list)
    for g, w in zip(got, want_list, strict=True):
        assert g == w or math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12), (g, w)


class TestBettingTest:
    @pytest.mark.parametrize("alternative", ["greater", "less"])
    @pytest.mark.parametrize("n_bets", [8, 3, 1])
    def test_online_equals_the_array_function(self, alternative: Any, n_bets: int) -> None:
        rng = np.random.default_rng(n_bets)
        x = np.clip(rng.normal(0.1, 0.6, 800), -1.0, 1.0)
        test = BettingTest(0.05, low=-1.0, high=1.0, alternative=alternative, n_bets=n_bets)
        got = []
        for i, value in enumerate(x.tolist()):
            if i % 3:
                test.push(value)  # read later, or never
                assert test.log_evalue_bound >= test.log_evalue
            else:
                got_now = test.update(value)
                assert got_now == test.log_evalue
            got.append(test.log_evalue)
        want = betting_log_evalues(
            x, 0.05, low=-1.0, high=1.0, alternative=alternative, n_bets=n_bets
        )
        close(got, want)
        assert test.n == 800

    def test_push_checks_the_bounds(self) -> None:
        test = BettingTest(0.0, low=-1.0, high=1.0)
        with pytest.raises(InvalidInput, match="must lie in"):
            test.push(1.5)
        assert test.n == 0
        assert test.log_evalue == 0.0

    def test_log_evalue_can_be_set(self) -> None:
        """A setter, for a test restored from saved numbers: the value read is the value set."""
        test = BettingTest(0.0, low=-1.0, high=1.0)
        test.push(0.5)
        test.log_evalue = 2.5
        assert test.log_evalue == 2.5
        test.push(0.5)  # the next observation recomputes from the wealth
        assert test.log_evalue != 2.5


class TestRateTest:
    @pytest.mark.parametrize("alternative", ["greater", "less"])
    def test_online_equals_the_array_function(self, alternative: Any) -> None:
        hits = np.random.default_rng(5).random(1000) < 0.15
        test = RateTest(0.1, alternative=alternative)
        got = []
        for i, hit in enumerate(hits.tolist()):
            test.push(hit) if i % 2 else test.update(hit)
            assert test.log_evalue_bound >= test.log_evalue
            got.append(test.log_evalue)
        close(got, rate_log_evalues(hits, 0.1, alternative=alternative))
        assert (test.n, test.hits) == (1000, int(hits.sum()))

    def test_fractions_push_and_update_alike(self) -> None:
        a, b = RateTest(0.1), RateTest(0.1)
        for x in [0.0, 0.25, 1.0, 0.5]:
            a.push_fraction(x)
            b.update_fraction(x)
        assert a.log_evalue == b.log_evalue
        assert a.hits == b.hits == 1.75
        with pytest.raises(InvalidInput, match="'fraction'"):
            a.push_fraction(1.5)
        assert repr(a).startswith("RateTest(null_rate=0.1, alternative='greater', n=4")


class TestShareTest:
    @pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
    @pytest.mark.parametrize("sparse", [False, True])
    @pytest.mark.parametrize(("share", "rate"), [(0.05, 0.3), (0.5, 0.5), (0.9, 0.2)])
    def test_online_equals_the_closed_form(
        self, alternative: Any, sparse: bool, share: float, rate: float
    ) -> None:
        hits = np.random.default_rng(7).random(600) < rate
        test = ShareTest(share, alternative=alternative, sparse=sparse)
        got = [test.update(hit) for hit in hits.tolist()]
        k, n = np.cumsum(hits), np.arange(1, hits.size + 1)
        close(got, beta_binomial_log_evalue(k, n, share, alternative=alternative, sparse=sparse))

    def test_underflow_is_minus_infinity_as_in_the_array_version(self) -> None:
        """Far into the null the incomplete beta underflows: ``log 0 = -inf`` on both paths."""
        test = ShareTest(0.9, alternative="greater")
        got = [test.update(False) for _ in range(2000)]
        want = beta_binomial_log_evalue(0, np.arange(1, 2001), 0.9)
        assert np.isneginf(want).any()
        close(got, want)

    def test_a_given_prior(self) -> None:
        hits = [True, False, True, True, False] * 20
        test = ShareTest(0.3, a=2.0, b=5.0)
        got = [test.update(h) for h in hits]
        close(got, beta_binomial_log_evalue(np.cumsum(hits), np.arange(1, 101), 0.3, a=2, b=5))


class TestSizeGate:
    def test_psi_path_equals_shift_exceeds(self) -> None:
        """Every class seen, random counts and levels: the same decision as the general path."""
        rng = np.random.default_rng(11)
        decisions = set()
        for trial in range(4000):
            k = int(rng.integers(1, 12))
            scale = int(rng.choice([5, 60, 4000]))
            c = rng.integers(0, scale, k).astype(float)
            b = rng.integers(0, scale, k).astype(float)
            if trial % 7 == 0:
                c[rng.integers(0, k)] += scale * 3  # a real shift
            if trial % 50 == 0:
                c[:] = 0.0  # one version without labels yet
            seen = (c + b) > 0
            c, b = c[seen].tolist(), b[seen].tolist()
            limit = float(rng.choice([0.01, 0.1, 0.3]))
            alpha = float(rng.choice([0.001, 0.01, 0.3]))
            want = bool(shift_exceeds(c, b, limit, alpha))
            got = psi_exceeds(c, b, [sum(c), sum(b)], limit, alpha)
            assert got == want, (c, b, limit, alpha)
            decisions.add(got)
        assert decisions == {True, False}

    def test_class_counts_follow_the_labels(self) -> None:
        rng = np.random.default_rng(2)
        counts = ClassCounts()
        reference: tuple[dict[int, int], dict[int, int]] = ({}, {})
        labels, arms = rng.integers(0, 40, 3000).tolist(), rng.integers(0, 2, 3000).tolist()
        for label, arm in zip(labels, arms, strict=True):
            counts.add(label, arm)
            reference[arm][label] = reference[arm].get(label, 0) + 1
        classes = sorted(reference[0].keys() | reference[1].keys())
        assert counts.classes == classes
        for arm in (0, 1):
            assert counts.counts[arm] == [float(reference[arm].get(c, 0)) for c in classes]
            assert counts.totals[arm] == sum(reference[arm].values())
            assert counts.as_dict(arm) == dict(sorted(reference[arm].items()))
