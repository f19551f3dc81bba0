"""The canary's tail-latency test: is the candidate slow more often than the baseline?

A latency regression need not move the typical request: a candidate whose median equals the
baseline's but whose slowest requests take twice or five times as long (a cold cache, a lock
held now and then, garbage-collection pauses) passes any test of the mean or median ratio.
`TailTest` counts *slow* requests instead: a request is slow when its latency exceeds the
``quantile`` (0.95 by default) of every latency observed before it, pooled over both
versions. The threshold depends only on the past, so under the null, "the candidate is slow
at most ``max_ratio`` times as often as the baseline", a slow request came from the
candidate with probability at most

    share' = share * max_ratio / (share * max_ratio + 1 - share)

given everything before it (``share`` is the candidate's routing fraction; in shadow mode,
where both versions answer every request, the slow one of a pair where exactly one is slow
is the candidate's with probability at most ``max_ratio / (1 + max_ratio)``). The one-sided
`ShareTest` on which version each slow request came from is then an anytime-valid test of
that null (the Beta-binomial mixture of `mlchecks.stats.sequential`), with no assumption on
the latency distribution: heavy tails, multimodal latencies and clock granularity included.
When a platform routes at a share not known here, `RoutedRateTest` takes every judged
request instead, at the odds ratio of `tail_odds_ratio`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any

import numpy as np

from mlchecks.stats.sequential import RoutedRateTest, ShareTest

__all__ = ["RunningQuantile", "TailTest", "slow_flags", "tail_odds_ratio", "tail_share", "warmup"]

#: The pooled threshold is used once this many latencies lie beyond the quantile on
#: average (10 slow requests): before that the quantile is too coarse to count on.
WARMUP_TAIL_COUNT = 10.0


def warmup(quantile: float) -> int:
    """How many latencies the pooled threshold needs before it judges a request.

    >>> warmup(0.95), warmup(0.99)
    (200, 1000)
    """
    return math.ceil(WARMUP_TAIL_COUNT / (1.0 - quantile) - 1e-9)


def slow_flags(latencies: Any, quantile: float, *, chunk: int = 256) -> np.ndarray:
    """`TailTest.observe`'s verdict on every request of a split-mode stream, vectorised.

    For simulations: ``-1`` while the threshold warms up, ``1`` for a slow request (its
    latency above the ``quantile`` of all earlier latencies), ``0`` otherwise. Request ``t``
    is slow exactly when at least ``k + 1`` earlier latencies are smaller than it, with
    ``k = min(t - 1, int(quantile * t))`` the index of the threshold in the sorted earlier
    latencies; the counts come from a sorted array of earlier chunks and a pairwise
    comparison within the chunk.

    >>> slow_flags([1.0, 2.0, 3.0, 0.5], 0.5, chunk=2).tolist()[:1]
    [-1]
    """
    values = np.asarray(latencies, dtype=np.float64)
    n = values.size
    flags = np.full(n, -1, dtype=np.int8)
    first = warmup(quantile)
    earlier = np.empty(0)
    for start in range(0, n, chunk):
        block = values[start : start + chunk]
        less = np.searchsorted(earlier, block, side="left")
        less += np.tril(block[None, :] < block[:, None], k=-1).sum(axis=1)
        t = np.arange(start, start + block.size)
        k = np.minimum(t - 1, (quantile * t).astype(np.int64))
        judged = t >= first
        flags[start : start + block.size] = np.where(judged, less >= k + 1, -1)
        ordered = np.sort(block)
        earlier = np.insert(earlier, np.searchsorted(earlier, ordered), ordered)
    return flags


def tail_share(share: float, max_ratio: float) -> float:
    """The null share of slow requests that come from the candidate.

    >>> tail_share(0.05, 1.0), round(tail_share(0.05, 2.0), 4), tail_share(0.5, 3.0)
    (0.05, 0.0952, 0.75)
    """
    return share * max_ratio / (share * max_ratio + 1.0 - share)


def tail_odds_ratio(quantile: float, max_ratio: float) -> float:
    """The null odds ratio of a slow request, candidate over baseline, for `RoutedRateTest`.

    A candidate slow ``max_ratio`` times as often as a baseline slow at rate ``q = 1 -
    quantile`` has odds ``r q / (1 - r q)`` against the baseline's ``q / (1 - q)``.

    >>> round(tail_odds_ratio(0.95, 2.0), 4)
    2.1111
    """
    q = 1.0 - quantile
    return math.inf if max_ratio * q >= 1.0 else max_ratio * (1.0 - q) / (1.0 - max_ratio * q)


class RunningQuantile:
    """The running ``quantile`` of a stream (of its latest ``window`` values), O(log n) a value.

    `value` is what ``sorted(values)[min(n - 1, int(quantile * n))]`` would be, kept by two
    heaps: the ``rank + 1`` smallest values in a max-heap, the others in a min-heap, so a
    value costs a push and at most two moves between them (a sorted list costs a copy of
    the whole list per insert). Values leaving the window are deleted lazily: counted,
    and dropped when they surface at a heap's top (or when a heap is half dead).

    >>> q = RunningQuantile(0.5, window=3)
    >>> [(q.add(x), q.value)[1] for x in [5.0, 1.0, 3.0, 4.0, 2.0]]
    [5.0, 5.0, 3.0, 3.0, 3.0]
    """

    __slots__ = ("_dead", "_heaps", "_live", "_order", "quantile", "window")

    def __init__(self, quantile: float, *, window: int | None = None) -> None:
        self.quantile = float(quantile)
        self.window = window
        self._order: deque[float] | None = None if window is None else deque()
        self._heaps: tuple[list[float], list[float]] = ([], [])  # (-low values, high values)
        self._live = [0, 0]  # values in each heap that are still in the window
        self._dead: tuple[dict[float, int], dict[float, int]] = ({}, {})  # (value: count)

    def __len__(self) -> int:
        return self._live[0] + self._live[1]

    @property
    def value(self) -> float:
        """The quantile now (NaN before the first value)."""
        return -self._heaps[0][0] if self._live[0] else math.nan

    def add(self, x: float) -> None:
        """Add one value (and drop the oldest beyond ``window``)."""
        low, high = self._heaps
        live = self._live
        if live[0] and x <= -low[0]:
            heapq.heappush(low, -x)
            live[0] += 1
        else:
            heapq.heappush(high, x)
            live[1] += 1
        order = self._order
        if order is not None:
            order.append(x)
            if self.window is not None and len(order) > self.window:
                self._remove(order.popleft())
        # one value in: at most one top moves (no loop, no pruning without a window)
        n = live[0] + live[1]
        target = min(n - 1, int(self.quantile * n)) + 1
        if live[0] != target or self._dead[0] or self._dead[1]:
            self._balance()

    def _remove(self, x: float) -> None:
        """Delete one copy of ``x`` (lazily) from the heap that holds it."""
        # Every low value is <= every high one, so x <= the low top means a copy is low.
        side = 0 if self._live[0] and x <= -self._heaps[0][0] else 1
        dead = self._dead[side]
        dead[x] = dead.get(x, 0) + 1
        self._live[side] -= 1
        self._prune(side)
        heap = self._heaps[side]
        if len(heap) > 2 * self._live[side] + 64:  # mostly dead: rebuild from the live
            sign = -1.0 if side == 0 else 1.0
            kept = []
            for entry in heap:
                v = sign * entry
                if dead.get(v):
                    dead[v] -= 1
                else:
                    kept.append(entry)
            dead.clear()
            heapq.heapify(kept)
            heap[:] = kept

    def _prune(self, side: int) -> None:
        """Pop dead values off the top of one heap."""
        heap, dead = self._heaps[side], self._dead[side]
        sign = -1.0 if side == 0 else 1.0
        while heap and dead:
            v = sign * heap[0]
            count = dead.get(v)
            if not count:
                return
            if count == 1:
                del dead[v]
            else:
                dead[v] = count - 1
            heapq.heappop(heap)

    def _balance(self) -> None:
        """Move tops between the heaps until the low one holds ``rank + 1`` values."""
        n = self._live[0] + self._live[1]
        target = min(n - 1, int(self.quantile * n)) + 1 if n else 0
        low, high = self._heaps
        live = self._live
        while live[0] > target:
            self._prune(0)
            heapq.heappush(high, -heapq.heappop(low))
            live[0] -= 1
            live[1] += 1
        while live[0] < target:
            self._prune(1)
            heapq.heappush(low, -heapq.heappop(high))
            live[0] += 1
            live[1] -= 1
        self._prune(0)
        self._prune(1)


class TailTest:
    """Counts slow requests per version and tests whether the candidate's rate is too high.

    Args:
        share: the candidate's routing fraction (split mode), or 0.5 for mirrored pairs
            (`CanaryPolicy.share`); None when the platform routes at a share not known here.
        window: the threshold is the quantile of the latest ``window`` latencies (None:
            of all earlier ones). Any threshold set by the past keeps the test valid; a
            window keeps each request O(window) on long records (`CanaryJudge`).
        quantile: a request is slow when its latency exceeds this quantile of all the
            latencies observed before it (both versions pooled), in (0, 1).
        max_ratio: the candidate may be slow this many times as often as the baseline.

    >>> test = TailTest(0.5, quantile=0.9, max_ratio=1.5)
    >>> for i in range(300):
    ...     _ = test.observe_pair(1.0 + (i % 7), 1.0 + (i % 5) / 2)
    >>> test.n_slow, test.rejects(alpha=0.05)
    ((35, 0), True)
    """

    def __init__(
        self,
        share: float | None,
        *,
        quantile: float,
        max_ratio: float,
        window: int | None = None,
    ) -> None:
        self.quantile = float(quantile)
        self.max_ratio = float(max_ratio)
        self.test: ShareTest | RoutedRateTest
        if share is None:
            self.test = RoutedRateTest(tail_odds_ratio(self.quantile, self.max_ratio))
        else:
            # Mirrored pairs: of a pair with exactly one slow request, the candidate's is
            # slow with probability share * r / (share * r + 1 - share); at share 1/2,
            # r / (1 + r).
            self.test = ShareTest(tail_share(share, max_ratio), alternative="greater")
        self.warmup = warmup(self.quantile)
        self._pooled = RunningQuantile(self.quantile, window=window)
        self.window = window
        self.n_judged = [0, 0]  # requests (candidate, baseline) compared with a threshold
        self.n_slow = (0, 0)  # of those, how many were slow

    @property
    def threshold_s(self) -> float:
        """The current threshold (NaN during the warm-up)."""
        if len(self._pooled) < self.warmup:
            return math.nan
        return self._pooled.value

    def observe(self, latency_s: float, *, candidate: bool) -> bool:
        """Record one split-mode request's latency; True when it was slow."""
        pooled = self._pooled
        slow = False
        if len(pooled) >= self.warmup:  # `threshold_s` is not NaN
            slow = latency_s > pooled.value
            self.n_judged[0 if candidate else 1] += 1
            if slow:
                c, b = self.n_slow
                self.n_slow = (c + 1, b) if candidate else (c, b + 1)
            if isinstance(self.test, RoutedRateTest):
                self.test.observe(bool(candidate), slow)
            elif slow:
                self.test.update(bool(candidate))
        pooled.add(float(latency_s))
        return slow

    def observe_pair(self, candidate_s: float, baseline_s: float) -> bool:
        """Record one mirrored pair's latencies; True when exactly one of them was slow."""
        pooled = self._pooled
        decisive = False
        if len(pooled) >= self.warmup:  # `threshold_s` is not NaN
            threshold = pooled.value
            c_slow, b_slow = candidate_s > threshold, baseline_s > threshold
            judged = self.n_judged
            judged[0] += 1
            judged[1] += 1
            if c_slow or b_slow:
                c, b = self.n_slow
                self.n_slow = (c + c_slow, b + b_slow)
                if c_slow != b_slow:
                    decisive = True
                    assert isinstance(self.test, ShareTest)  # pairs have a known share, 1/2
                    self.test.update(bool(c_slow))
        pooled.add(float(candidate_s))
        pooled.add(float(baseline_s))
        return decisive

    @property
    def log_evalue(self) -> float:
        """The test's log e-value now."""
        return self.test.log_evalue

    @property
    def evalue(self) -> float:
        """The test's e-value now."""
        return self.test.evalue

    def rejects(self, alpha: float) -> bool:
        """True when the candidate is shown slow too often at level ``alpha``."""
        return self.test.rejects(alpha=alpha)

    @property
    def ratio(self) -> float:
        """How many times as often as the baseline the candidate was slow (NaN: no data).

        The ratio of the two versions' rates of slow requests among the requests judged;
        infinite when only the candidate was slow.
        """
        (c, b), (n_c, n_b) = self.n_slow, self.n_judged
        if not n_c or not n_b or (c == 0 and b == 0):
            return math.nan
        if b == 0:
            return math.inf
        return (c / n_c) / (b / n_b)
