"""Tests for the canary's per-request bookkeeping: O(1) structures that keep old answers."""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Any

import numpy as np
import pytest

from mlchecks.checks._canary_policy import CanaryMonitor, CanaryPolicy
from mlchecks.checks._canary_shift import _shift_statistic, _shift_statistic_1d, shift_exceeds
from mlchecks.checks._canary_tail import RunningQuantile, TailTest, slow_flags
from mlchecks.stats.sequential import betting_confidence_sequence


def sorted_quantiles(values: list[float], quantile: float, window: int | None) -> list[float]:
    """The reference: a sorted list, the oldest value deleted beyond ``window``."""
    pool: list[float] = []
    order: deque[float] = deque()
    out = []
    for x in values:
        bisect.insort(pool, x)
        order.append(x)
        if window is not None and len(order) > window:
            del pool[bisect.bisect_left(pool, order.popleft())]
        out.append(pool[min(len(pool) - 1, int(quantile * len(pool)))])
    return out


class TestRunningQuantile:
    @pytest.mark.parametrize("window", [None, 1, 7, 50])
    @pytest.mark.parametrize("quantile", [0.1, 0.5, 0.95, 0.99])
    def test_equals_a_sorted_list(self, window: int | None, quantile: float) -> None:
        """The value after every insert is the sorted list's, ties and windows included."""
        rng = np.random.default_rng(int(quantile * 100) + (window or 0))
        for values in (rng.lognormal(0, 1, 700), rng.integers(0, 6, 700).astype(float)):
            q = RunningQuantile(quantile, window=window)
            got = []
            for x in values.tolist():
                q.add(x)
                got.append(q.value)
            assert sorted_quantiles(values.tolist(), quantile, window) == got
            assert len(q) == (len(values) if window is None else min(window, len(values)))

    def test_dead_values_do_not_pile_up(self) -> None:
        """Values leaving the window are dropped from the heaps, not only counted."""
        q = RunningQuantile(0.95, window=100)
        for i in range(20_000):
            q.add(float(i))  # increasing: the oldest are the smallest, deep in a heap
        assert len(q._heaps[0]) + len(q._heaps[1]) <= 2 * 100 + 200

    def test_nan_before_the_first_value(self) -> None:
        """An empty quantile is NaN."""
        assert math.isnan(RunningQuantile(0.5).value)


class TestTailTestThreshold:
    def test_flags_equal_the_vectorized_reference(self) -> None:
        """`TailTest.observe` counts the same slow requests as `slow_flags`."""
        rng = np.random.default_rng(3)
        latencies = rng.lognormal(-4.0, 0.5, 3000)
        arms = rng.random(3000) < 0.3
        test = TailTest(0.3, quantile=0.95, max_ratio=2.0)
        online = [test.observe(x, candidate=bool(a)) for x, a in zip(latencies, arms, strict=True)]
        flags = slow_flags(latencies, 0.95)
        assert (flags == 1).tolist() == online


class TestShiftStatistic:
    def test_one_pair_equals_the_rows_kernel(self) -> None:
        """The float path gives the array kernel's statistic (to 1e-12) and decision."""
        rng = np.random.default_rng(4)
        for trial in range(3000):
            k = int(rng.integers(1, 13))
            c = rng.integers(0, int(rng.choice([3, 40, 5000])), k).astype(float)
            b = rng.integers(0, int(rng.choice([3, 40, 5000])), k).astype(float)
            if trial % 9 == 0:
                c[:] = 0.0
            for measure in ("psi", "js"):
                one = _shift_statistic_1d(c.tolist(), b.tolist(), measure)
                rows = [float(v[0]) for v in _shift_statistic(c, b, measure)]
                np.testing.assert_allclose(one, rows, rtol=1e-12, atol=1e-12)
                for limit, alpha in ((0.01, 0.001), (0.1, 0.01), (0.3, 0.3)):
                    expected = bool(
                        shift_exceeds(c[None], b[None], limit, alpha, measure=measure)[0]
                    )
                    assert expected == shift_exceeds(c, b, limit, alpha, measure=measure)
                    assert expected == shift_exceeds(
                        c.tolist(), b.tolist(), limit, alpha, measure=measure
                    )


def split_stream(rng: np.random.Generator, n: int) -> list[tuple[Any, ...]]:
    """Split-mode requests whose candidate predicts class 1 more often (a small shift)."""
    arms = rng.random(n) < 0.3
    labels = np.where(
        arms, rng.choice(3, n, p=[0.4, 0.4, 0.2]), rng.choice(3, n, p=[0.5, 0.3, 0.2])
    )
    latencies = rng.lognormal(-4.0, 0.3, n)
    return [(bool(a), float(x), int(y)) for a, x, y in zip(arms, latencies, labels, strict=True)]


class TestCanaryMonitorBookkeeping:
    def test_the_size_gate_is_looked_at_when_the_counts_change(self) -> None:
        """Reusing the gate's answer while the counts stand gives every request's decision."""
        policy = CanaryPolicy(traffic_fraction=0.3, n_candidate_requests=10**6, max_psi=0.05)
        stream = split_stream(np.random.default_rng(5), 4000)
        cached, fresh = CanaryMonitor(policy), CanaryMonitor(policy)
        for arm, latency, label in stream:
            for monitor in (cached, fresh):
                fresh._gate_at = -1  # forget: look at the gate on every call
                monitor.observe(candidate=arm, error=False, latency_s=latency, label=label)
                monitor.observe_outcome(candidate=arm, wrong=float(label != 0))
            assert (cached.decision, cached.shift_crossed, cached.shift_tolerated) == (
                fresh.decision,
                fresh.shift_crossed,
                fresh.shift_tolerated,
            )
        assert cached.shift_tolerated or cached.decision == "fail"

    @pytest.mark.parametrize("mode", ["split", "shadow"])
    def test_intervals_and_means_match_the_batch_computation(self, mode: str) -> None:
        """The latency ratio is the exact geometric mean; the intervals are the batch ones
        (a few hundred pairs: within the bisection's tolerance, or narrower by intersecting)."""
        rng = np.random.default_rng(6)
        policy = CanaryPolicy(
            traffic_fraction=0.5, mode=mode, n_candidate_requests=10**6, max_accuracy_drop=0.1
        )
        monitor = CanaryMonitor(policy)
        for i in range(900):
            c, b = rng.lognormal(-4.0, 0.3, 2).tolist()
            if mode == "split":
                monitor.observe(candidate=i % 2 == 0, error=False, latency_s=c, label=0)
                monitor.observe_outcome(candidate=i % 2 == 0, wrong=float(rng.random() < 0.1))
            else:
                monitor.observe_pair(
                    candidate_error=False, baseline_error=False, candidate_latency_s=c,
                    baseline_latency_s=b, candidate_label=0, baseline_label=0,
                )  # fmt: skip
                monitor.observe_outcome_pair(
                    candidate_wrong=float(rng.random() < 0.1),
                    baseline_wrong=float(rng.random() < 0.1),
                )
        diffs = np.asarray(monitor.differences)
        assert math.exp(math.fsum(diffs) / diffs.size) == monitor.latency_ratio
        bound, level = policy.bound, policy.alpha_per_test
        batch = betting_confidence_sequence(diffs, low=-bound, high=bound, alpha=level)
        low, high = monitor.latency_ratio_interval()
        assert math.exp(batch.low) * (1 - 1e-5) <= low
        assert high <= math.exp(batch.high) * (1 + 1e-5)
        acc = np.asarray(monitor.accuracy_differences)
        batch = betting_confidence_sequence(acc, low=-1.0, high=1.0, alpha=2 * level)
        low, high = monitor.accuracy_drop_interval()
        assert batch.low - 1e-5 <= low
        assert high <= batch.high + 1e-5
        evidence = monitor.evidence()
        assert math.fsum(acc) / acc.size == evidence["accuracy_drop"]
        assert [low, high] == evidence["accuracy_drop_interval"]
