"""The canary's tail-latency test (`mlchecks.checks._canary_tail`) and its wiring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from mlchecks import Status
from mlchecks.checks._canary_policy import CanaryMonitor, CanaryPolicy
from mlchecks.checks._canary_tail import TailTest, slow_flags, tail_share, warmup
from mlchecks.checks.canary import CanaryCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.serving import InProcessServer


def online_flags(latencies: np.ndarray, arms: np.ndarray, quantile: float) -> list[int]:
    """`TailTest.observe`'s verdicts one request at a time: -1 warm-up, 1 slow, 0 not."""
    test = TailTest(0.3, quantile=quantile, max_ratio=2.0)
    out = []
    for x, arm in zip(latencies.tolist(), arms.tolist(), strict=True):
        judged = sum(test.n_judged)
        slow = test.observe(x, candidate=arm)
        out.append(-1 if sum(test.n_judged) == judged else int(slow))
    return out


class TestKernel:
    def test_null_share(self) -> None:
        """share * r / (share * r + 1 - share): the routing share when r = 1."""
        assert 0.05 == tail_share(0.05, 1.0)
        assert pytest.approx(0.1 / 1.05) == tail_share(0.05, 2.0)
        assert pytest.approx(2.0 / 3.0) == TailTest(0.5, quantile=0.9, max_ratio=2.0).test.share

    def test_warmup_is_ten_expected_slow_requests(self) -> None:
        """The threshold judges from 10 / (1 - quantile) earlier latencies."""
        assert (200, 1000, 20) == (warmup(0.95), warmup(0.99), warmup(0.5))
        test = TailTest(0.5, quantile=0.5, max_ratio=2.0)
        for i in range(20):
            assert math.isnan(test.threshold_s)
            test.observe(float(i), candidate=bool(i % 2))
        assert [0, 0] == test.n_judged
        assert 10.0 == test.threshold_s  # the median of 0..19 (upper)

    @pytest.mark.parametrize("decimals", [2, 12])
    def test_vectorised_flags_equal_the_online_test(self, decimals: int) -> None:
        """`slow_flags` gives `TailTest.observe`'s verdicts, ties included (rounded clocks)."""
        rng = np.random.default_rng(decimals)
        latencies = np.round(rng.lognormal(-4.0, 0.5, 3000) * 1e3, decimals)
        arms = rng.random(3000) < 0.3
        assert online_flags(latencies, arms, 0.95) == slow_flags(latencies, 0.95).tolist()

    def test_ratio(self) -> None:
        """NaN before anything is judged, inf when only the candidate was slow."""
        test = TailTest(0.5, quantile=0.5, max_ratio=2.0)
        assert math.isnan(test.ratio)
        for i in range(10):
            test.observe_pair(1.0 + i, 1.0 + i)
        for _ in range(5):
            test.observe_pair(100.0, 0.0)
        assert (5, 0) == test.n_slow
        assert math.inf == test.ratio

    def test_level_in_shadow_mode(self) -> None:
        """A/A mirrored pairs with correlated heavy-tailed latencies: over 300 streams of 600
        pairs watched after every pair, the test at alpha 0.05 fires at most 5% of the time
        (exact upper bound)."""
        rng = np.random.default_rng(1)
        fired = 0
        for _ in range(300):
            shared = rng.pareto(1.5, 600)
            test = TailTest(0.5, quantile=0.95, max_ratio=1.0)
            for s, c, b in zip(shared, rng.pareto(1.5, 600), rng.pareto(1.5, 600), strict=True):
                test.observe_pair(float(s + c), float(s + b))
                if test.rejects(alpha=0.05):
                    fired += 1
                    break
        high = scipy.stats.binomtest(fired, 300).proportion_ci(0.95).high
        assert high <= 0.05, fired


class TestWiring:
    def test_policy_counts_the_tail_test(self) -> None:
        """The tail test takes one share of alpha; max_tail_ratio=None switches it off."""
        assert 4 == CanaryPolicy().n_tests
        assert 3 == CanaryPolicy(max_tail_ratio=None).n_tests
        assert CanaryMonitor(CanaryPolicy(max_tail_ratio=None)).tail is None
        evidence = CanaryMonitor(CanaryPolicy()).evidence()
        assert (2.0, 0.95) == (evidence["max_tail_ratio"], evidence["latency_quantile"])

    def test_check_validates_the_fields(self) -> None:
        """latency_quantile lies in (0.5, 1); max_tail_ratio is at least 1 (or None)."""
        server = InProcessServer(loader=lambda v: lambda x: x)
        for value in (0.5, 1.0, 1.5):
            with pytest.raises(InvalidInput, match="'latency_quantile'"):
                CanaryCheck(server, "2", probe_inputs=[0], latency_quantile=value)
        with pytest.raises(InvalidInput, match="'max_tail_ratio'"):
            CanaryCheck(server, "2", probe_inputs=[0], max_tail_ratio=0.5)
        check = CanaryCheck(server, "2", probe_inputs=[0], max_tail_ratio=None)
        assert check.max_tail_ratio is None

    def test_without_max_tail_ratio_there_is_no_tail_finding(self) -> None:
        """max_tail_ratio=None: stage 1 runs three tests and reports no trickle.tail."""
        server = InProcessServer(loader=lambda v: lambda x: np.array([0.7, 0.3]))
        server.load("1")
        server.set_live("1")
        rows = np.random.default_rng(0).random((400, 1))
        check = CanaryCheck(
            server,
            "2",
            probe_inputs=rows[:5],
            traffic=rows,
            traffic_fraction=0.5,
            n_candidate_requests=100,
            max_tail_ratio=None,
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert "trickle.tail" not in {f.name for f in result.findings}
        assert 3 == result.details["trickle"]["tests"]


def test_retries_are_counted_apart_from_errors() -> None:
    """Answers that needed retries (a 503 while the server restarted) count as answers;
    each arm's retries are kept apart (details and trickle.<role>.n_retries)."""
    from mlchecks.checks._canary_report import Trickle
    from mlchecks.protocols import Response

    trickle = Trickle(baseline="1")
    assert trickle.tally("candidate", Response(outputs=[1.0], version="2", n_retries=2), "2")
    assert not trickle.tally("candidate", Response(error="HTTP 503", n_retries=1), "2")
    assert trickle.tally("baseline", Response(outputs=[1.0], version="1"), "1")
    assert (3, 0) == (trickle.arms["candidate"]["retries"], trickle.arms["baseline"]["retries"])
    assert {"server": 1} == trickle.arms["candidate"]["errors"]
