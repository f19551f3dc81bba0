"""Share tests for traffic a platform routes: the candidate's share of it is not known.

`ShareTest` and `CategoricalShareTest` compare which version an event came from with the
routing fraction; they need that fraction exactly. A platform (KServe
``canaryTrafficPercent``, Istio weights, Argo Rollouts' steps, Flagger's ``stepWeight``)
routes at a fraction that changes during the rollout and that replica-based splits only
approximate, and a test against a wrong fraction raises false alarms on long logs.

The tests here condition on the routing instead. The stream is cut into *blocks* of one
candidate request and the ``m`` baseline requests nearest it (`Blocks`; ``m`` follows the
running ratio of baseline to candidate requests, so it depends on the routing only). When
both versions behave alike, the requests of a block are exchangeable, so given what the
block holds, the candidate's request is any one of its ``m + 1`` with equal chance:

- `RoutedRateTest`: of a block's ``S`` events (errors, slow requests, wrong predictions),
  the candidate's request is one with probability ``S / (m + 1)``; under "the candidate's
  odds of an event are at most ``odds_ratio`` times the baseline's", at most
  ``rho S / (rho S + m + 1 - S)`` (Fisher's noncentral hypergeometric with one request on
  the candidate's side). The e-value averages likelihood ratios against alternatives
  ``rho * g`` for a grid of ``g > 1``.
- `RoutedCategoryTest`: the candidate's class is drawn from the block's classes in
  proportion to their counts; the likelihood ratio against a tilt of those proportions by
  the class ratios estimated from earlier blocks is a martingale under the null.

Both are exact, whatever the routing fraction and however it changes, as long as the
router does not look at the requests' outcomes.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Generic, TypeVar

from mlchecks._text import fmt
from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._evalue import OnlineTest

__all__ = ["Blocks", "RoutedCategoryTest", "RoutedRateTest"]

T = TypeVar("T")

#: The alternatives' odds ratios of `RoutedRateTest`, as multiples of the null's.
ODDS_GRID = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
#: The tilts of `RoutedCategoryTest`: powers of the estimated class ratios.
TILTS = (0.25, 0.5, 1.0)


class Blocks(Generic[T]):
    """Groups a stream of requests into blocks of one candidate and ``m`` baseline requests.

    A candidate request opens a block; ``m`` is the ratio of baseline to candidate requests
    among the last ``window`` requests, rounded, between 1 and ``max_baseline`` (recent, so
    that it follows a rollout's steps). Baseline requests fill the oldest
    open block; one arriving while no block is open waits (the most recent
    ``max_baseline`` wait) for the next candidate request. Which requests form a block
    depends only on which version served them and when, not on their outcomes.

    >>> blocks = Blocks()
    >>> [blocks.add(arm, value) for arm, value in [(False, "b1"), (True, "c1"), (False, "b2")]]
    [[], [('c1', ['b1'])], []]
    """

    def __init__(self, max_baseline: int = 50, *, window: int = 1000) -> None:
        if isinstance(max_baseline, bool) or not isinstance(max_baseline, int) or max_baseline < 1:
            raise InvalidInput(
                f"'max_baseline' must be a whole number >= 1 (got {describe(max_baseline)})"
            )
        self.max_baseline = max_baseline
        self.n_candidate = 0
        self.n_baseline = 0
        self._recent: deque[bool] = deque(maxlen=window)  # the arms of the latest requests
        self._recent_candidate = 0
        self._open: deque[tuple[T, int, list[T]]] = deque()
        self._spare: deque[T] = deque(maxlen=max_baseline)

    def size(self) -> int:
        """The ``m`` of the next block: baseline requests per candidate request so far."""
        ratio = (len(self._recent) - self._recent_candidate) / max(self._recent_candidate, 1)
        return min(self.max_baseline, max(1, round(ratio)))

    def add(self, candidate: bool, value: T) -> list[tuple[T, list[T]]]:
        """Add one request; return the blocks it closed, ``(candidate value, baseline values)``."""
        recent = self._recent
        if len(recent) == recent.maxlen:
            self._recent_candidate -= recent[0]
        recent.append(candidate)
        self._recent_candidate += candidate
        if candidate:
            self.n_candidate += 1
            m = self.size()
            taken = [self._spare.pop() for _ in range(min(m, len(self._spare)))]
            if len(taken) == m:
                return [(value, taken)]
            self._open.append((value, m, taken))
            return []
        self.n_baseline += 1
        if not self._open:
            self._spare.append(value)
            return []
        head, m, members = self._open[0]
        members.append(value)
        if len(members) < m:
            return []
        self._open.popleft()
        return [(head, members)]

    @property
    def pending(self) -> int:
        """Candidate requests whose block is still open."""
        return len(self._open)


def _positive(value: Any, name: str) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number <= 0:
        raise InvalidInput(f"'{name}' must be a positive number (got {describe(value)})")
    return float(number)


class RoutedRateTest(OnlineTest):
    """Is the candidate's rate of an event above ``odds_ratio`` times the baseline's?

    Fed every request (``observe(candidate, event)``), not only the events; see the
    module's text for the blocks and the conditional null. ``n_events`` counts each
    version's events so far.

    Args:
        odds_ratio: the null's largest ratio of the candidate's odds of an event to the
            baseline's (1: "not more often").
        max_baseline: the most baseline requests in a block.

    >>> test = RoutedRateTest()
    >>> for i in range(2000):  # the candidate serves one request in 10 and fails 1 in 5
    ...     _ = test.observe(i % 10 == 0, i % 50 == 0 or i % 97 == 0)
    >>> test.rejects(alpha=0.01), test.n_events
    (True, (42, 18))
    """

    __slots__ = ("_blocks", "_log_wealth", "log_evalue", "n_blocks", "n_events", "odds_ratio")

    def __init__(self, odds_ratio: float = 1.0, *, max_baseline: int = 50) -> None:
        self.odds_ratio = _positive(odds_ratio, "odds_ratio")
        self._blocks: Blocks[bool] = Blocks(max_baseline)
        self._log_wealth = [0.0] * len(ODDS_GRID)
        self.log_evalue = 0.0
        self.n_blocks = 0  # blocks with information: some but not all of their requests events
        self.n_events = (0, 0)  # (candidate, baseline)

    def observe(self, candidate: bool, event: bool) -> float:
        """Add one request (which version served it, whether the event happened); ``log E``."""
        if event:
            c, b = self.n_events
            self.n_events = (c + 1, b) if candidate else (c, b + 1)
        for head, members in self._blocks.add(bool(candidate), bool(event)):
            self._update(head, sum(members), len(members) + 1)
        return self.log_evalue

    def _update(self, hit: bool, baseline_events: int, size: int) -> None:
        s = baseline_events + hit
        if s == 0 or s == size:
            return
        rho = self.odds_ratio
        null = rho * s / (rho * s + size - s)
        for j, g in enumerate(ODDS_GRID):
            alt = rho * g * s / (rho * g * s + size - s)
            self._log_wealth[j] += (
                math.log(alt / null) if hit else math.log((1.0 - alt) / (1.0 - null))
            )
        self.n_blocks += 1
        top = max(self._log_wealth)
        total = sum(math.exp(w - top) for w in self._log_wealth)
        self.log_evalue = top + math.log(total / len(ODDS_GRID))

    @property
    def pending(self) -> int:
        """Candidate requests whose block is still open (not yet in the e-value)."""
        return self._blocks.pending

    def __repr__(self) -> str:
        return (
            f"RoutedRateTest(odds_ratio={fmt(self.odds_ratio)}, events={self.n_events}, "
            f"evalue={fmt(self.evalue)})"
        )


class RoutedCategoryTest(OnlineTest):
    """Does the candidate's class distribution differ from the baseline's?

    Fed the class of every request that has one (``update(category, candidate)``, the
    argument order of `CategoricalShareTest.update`). Within a block, under the null, the
    candidate's class is drawn from the block's classes in proportion to their counts
    ``n_j / (m + 1)``; the e-value bets that it is drawn in proportion to ``n_j w_j``
    instead, ``w_j`` the candidate's over the baseline's class frequencies in the blocks
    before (smoothed), raised to each power in `TILTS` and averaged.

    >>> test = RoutedCategoryTest()
    >>> for i in range(3000):  # the candidate predicts class 1 twice as often
    ...     candidate = i % 5 == 0
    ...     _ = test.update(int((i * 7919) % 10 < (6 if candidate else 3)), candidate)
    >>> test.rejects(alpha=0.01)
    True
    """

    __slots__ = ("_blocks", "_counts", "_log_wealth", "log_evalue", "n")

    def __init__(self, *, max_baseline: int = 50) -> None:
        self._blocks: Blocks[int] = Blocks(max_baseline)
        self._counts: dict[int, list[int]] = {}  # class -> [candidate, baseline] in closed blocks
        self._log_wealth = [0.0] * len(TILTS)
        self.log_evalue = 0.0
        self.n = 0

    def update(self, category: int, hit: bool) -> float:
        """Add the class of one request, ``hit`` when the candidate served it; ``log E``."""
        self.n += 1
        for head, members in self._blocks.add(bool(hit), int(category)):
            self._update(head, members)
        return self.log_evalue

    def _ratios(self, classes: set[int]) -> dict[int, float]:
        seen = set(self._counts) | classes
        n_c = sum(c for c, _ in self._counts.values())
        n_b = sum(b for _, b in self._counts.values())
        k = len(seen)
        out = {}
        for cls in classes:
            c, b = self._counts.get(cls, (0, 0))
            out[cls] = ((c + 0.5) / (n_c + 0.5 * k)) / ((b + 0.5) / (n_b + 0.5 * k))
        return out

    def _update(self, head: int, members: list[int]) -> None:
        block: dict[int, int] = {}
        for cls in (head, *members):
            block[cls] = block.get(cls, 0) + 1
        if len(block) > 1:
            ratios = self._ratios(set(block))
            size = len(members) + 1
            for j, power in enumerate(TILTS):
                mean = sum(n * ratios[cls] ** power for cls, n in block.items()) / size
                self._log_wealth[j] += power * math.log(ratios[head]) - math.log(mean)
            top = max(self._log_wealth)
            total = sum(math.exp(w - top) for w in self._log_wealth)
            self.log_evalue = top + math.log(total / len(TILTS))
        self._counts.setdefault(head, [0, 0])[0] += 1
        for cls in members:
            self._counts.setdefault(cls, [0, 0])[1] += 1

    def __repr__(self) -> str:
        return f"RoutedCategoryTest(n={self.n}, evalue={fmt(self.evalue)})"
