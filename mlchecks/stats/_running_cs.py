"""`betting_confidence_sequence`, kept up to date in O(1) per observation.

`betting_confidence_sequence` recomputes both one-sided betting tests from every
observation so far, at each of the ~120 means its bisections try: O(n) per call, seconds
at 1e5 observations. A canary reads its intervals after every so many requests (a
progress line, a ``/status`` request), so `RunningConfidenceSequence` keeps the tests'
state instead, at a few candidate means per side:

- Each side holds the log wealth of every bet at ``points`` candidate means, between the
  ends of the interval and its middle. Observations are folded in by blocks of `BLOCK`
  (one vectorized pass), so an observation costs ``2 * points * n_bets`` logarithms.
- After each block, a mean a side's test rejects moves that end of the interval to it.
  The e-values are monotone in the mean, so a rejected mean rejects every mean beyond it:
  the end is a mean the batch computation rejects too, and the interval holds the batch
  one of that moment. Ends never move back: the interval is the running intersection of
  the confidence sequence over the blocks, which covers the mean at every time
  simultaneously with the same probability (Howard et al., 2021, Lemma 1).
- When half of a side's candidate means are behind its end, the side is laid out afresh
  over the new interval, and their wealth computed from all the observations (kept, 8
  bytes each). The interval shrinks like ``1 / sqrt(n)``, so this happens each time the
  count roughly quadruples: O(1) per observation amortized.
- `interval` reads the state and folds in the observations since the last block (at most
  `BLOCK`); up to `EXACT_BELOW` observations it also bisects each end to the batch
  computation's tolerance, so small samples get the exact interval. Beyond that an end is
  the nearest candidate mean the test rejects: the interval is at most one spacing (a
  sixteenth to an eighth of its width per side at the defaults) wider than the exact one at that
  time, never narrower except by the intersection.
- The intersection assumes a common mean; where the observations drift it can exclude the
  current mean, or cross. The interval is then widened to the mean of the observations so
  far, which the current confidence sequence always holds: wider is still valid.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from mlchecks._text import fmt
from mlchecks._validate import check_int, check_open_unit
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._betting import (
    _MAX_BET,
    _bisect_bound,
    _check_bounds,
    final_log_evalue,
)
from mlchecks.stats.intervals import ConfidenceInterval

__all__ = ["BLOCK", "EXACT_BELOW", "RunningConfidenceSequence"]

#: Observations are folded into the tests' state this many at a time.
BLOCK = 256
#: Up to this many observations, `RunningConfidenceSequence.interval` bisects each end
#: exactly (as `betting_confidence_sequence` does).
EXACT_BELOW = 2048
#: Observations per vectorized pass when a side is laid out afresh (bounds its memory).
_CHUNK = 4096


class _Side:
    """One one-sided test's log wealth at a few candidate means."""

    __slots__ = ("at", "greater", "means", "scale", "wealth")

    def __init__(self, greater: bool) -> None:
        self.greater = greater
        self.means: np.ndarray = np.zeros(0)
        # per (mean, bet), C-contiguous: the mean, and the bet signed so that the log
        # wealth gained from x is log1p((mean - x) * scale)
        self.at = np.zeros((0, 0))
        self.scale = np.zeros((0, 0))
        self.wealth = np.zeros((0, 0))

    def gains(self, values: np.ndarray) -> np.ndarray:
        """The log wealth ``values`` add to each bet at each mean, ``(means, bets)``."""
        terms = self.at.reshape(-1, 1) - values[None, :]
        terms *= self.scale.reshape(-1, 1)
        np.log1p(terms, out=terms)
        gained: np.ndarray = terms.sum(axis=1).reshape(self.at.shape)  # pairwise, by row
        return gained

    def rejected(self, wealth: np.ndarray, threshold: float) -> np.ndarray:
        """Which candidate means the test rejects with this wealth."""
        if not self.means.size:
            return np.zeros(0, dtype=bool)
        top = wealth.max(axis=1)
        mean_exp = np.exp(wealth - top[:, None]).sum(axis=1) / wealth.shape[1]
        return np.asarray(top + np.log(mean_exp) >= threshold)

    def end(self, rejected: np.ndarray, current: float) -> float:
        """The interval's end once the rejected means are excluded."""
        if not rejected.any():
            return current
        if self.greater:
            return max(current, float(self.means[rejected].max()))
        return min(current, float(self.means[rejected].min()))

    def keep(self, low: float, high: float) -> int:
        """Drop the candidate means outside ``(low, high)``; how many are left."""
        inside = (self.means > low) & (self.means < high)
        if not inside.all():
            self.means, self.at = self.means[inside], self.at[inside]
            self.scale, self.wealth = self.scale[inside], self.wealth[inside]
        return int(self.means.size)

    def lay_out(
        self, low: float, high: float, bounds: tuple[float, float], ladder: np.ndarray, n: int
    ) -> None:
        """``n`` candidate means from this side's end of ``(low, high)`` to its middle."""
        step = 0.5 * (high - low) / n
        offsets = step * np.arange(1, n + 1)
        self.means = low + offsets if self.greater else high - offsets
        reach = self.means - bounds[0] if self.greater else bounds[1] - self.means
        bets = ladder[None, :] / reach[:, None]
        self.scale = -bets if self.greater else bets
        self.at = np.repeat(self.means[:, None], ladder.size, axis=1)
        self.wealth = np.zeros(bets.shape)


class RunningConfidenceSequence:
    """The betting confidence sequence for a bounded mean, updated one observation at a time.

    The interval `betting_confidence_sequence` computes from all the observations, kept up
    to date in O(1) per observation (see the module's text for how, and for how it may
    differ from the batch computation: never narrower except by intersecting over time).
    ``mean`` is the exact (correctly rounded) mean of the observations so far.

    Args:
        low, high: the bounds of the observations.
        alpha: one minus the coverage (each end at ``alpha / 2``).
        n_bets: as in `betting_log_evalues`.
        points: candidate means per side.

    >>> cs = RunningConfidenceSequence(low=-1.0, high=1.0)
    >>> for i in range(5000):
    ...     cs.add(0.1 if i % 2 else -0.1)
    >>> ci = cs.interval()
    >>> bool(ci.low < 0.0 < ci.high), bool(ci.high - ci.low < 0.05), len(cs)
    (True, True, 5000)
    """

    def __init__(
        self,
        *,
        low: float,
        high: float,
        alpha: float = 0.05,
        n_bets: int = 8,
        points: int = 16,
    ) -> None:
        self.low, self.high = _check_bounds(low, high)
        self.alpha = check_open_unit(alpha, "alpha")
        self._ladder = _MAX_BET * 0.5 ** np.arange(check_int(n_bets, "n_bets", minimum=1))
        self._points = check_int(points, "points", minimum=2)
        self._threshold = math.log(2.0 / self.alpha)
        self._tiny = (self.high - self.low) * 1e-9
        self.values = array("d")  # every observation (a side laid out afresh needs them)
        self._partials: list[float] = []  # exact partial sums of the folded observations
        self._folded = 0
        self._ends = (self.low, self.high)
        self._sides = (_Side(True), _Side(False))
        self._lay_out()

    def __len__(self) -> int:
        return len(self.values)

    def add(self, x: float) -> None:
        """Add one observation in ``[low, high]``."""
        value = float(x)
        if not self.low <= value <= self.high:
            raise InvalidInput(f"'x' must lie in [{fmt(self.low)}, {fmt(self.high)}] (got {x!r})")
        self.values.append(value)
        if len(self.values) - self._folded >= BLOCK:
            self._fold()

    @property
    def mean(self) -> float:
        """The mean of the observations so far, correctly rounded (NaN before one)."""
        n = len(self.values)
        if not n:
            return math.nan
        pending = self.values[self._folded :]
        return math.fsum([*self._partials, *pending]) / n

    def interval(self) -> ConfidenceInterval:
        """The ``1 - alpha`` confidence sequence after the observations so far.

        ``(low, high)`` before the first one.
        """
        n = len(self.values)
        if not n:
            return ConfidenceInterval(self.low, self.high)
        pending = np.array(self.values[self._folded :])  # a copy: `values` stays growable
        low, high = self._ends
        greater, less = self._sides
        looked = []
        for side in self._sides:
            wealth = side.wealth + side.gains(pending) if pending.size else side.wealth
            looked.append(side.rejected(wealth, self._threshold))
        low = greater.end(looked[0], low)
        high = less.end(looked[1], high)
        if n <= EXACT_BELOW:
            low, high = self._exact(low, high, looked)
        mean = self.mean
        return ConfidenceInterval(min(low, mean), max(high, mean))

    # ------------------------------------------------------------------ internals

    def _lay_out(self, only: _Side | None = None) -> None:
        """Candidate means across the current interval, their wealth from every observation."""
        low, high = self._ends
        folded = np.array(self.values[: self._folded])
        for side in self._sides if only is None else (only,):
            if high - low <= self._tiny:  # an end reached the other: nothing left to find
                side.means = np.zeros(0)
                side.at = side.scale = side.wealth = np.zeros((0, self._ladder.size))
                continue
            side.lay_out(low, high, (self.low, self.high), self._ladder, self._points)
            for start in range(0, folded.size, _CHUNK):
                side.wealth += side.gains(folded[start : start + _CHUNK])

    def _fold(self) -> None:
        """Fold the observations since the last block into the state; move the ends."""
        block = np.array(self.values[self._folded :])
        for side in self._sides:
            if side.means.size:
                side.wealth += side.gains(block)
        self._partials = _add_exact(self._partials, _exact_parts(block.tolist()))
        self._folded = len(self.values)
        for _ in range(4):  # a side laid out afresh may reject some of its new means at once
            low, high = self._ends
            greater, less = self._sides
            low = greater.end(greater.rejected(greater.wealth, self._threshold), low)
            high = less.end(less.rejected(less.wealth, self._threshold), high)
            self._ends = (low, high)
            sparse = [s for s in self._sides if s.keep(low, high) < self._points // 2]
            sparse = [s for s in sparse if high - low > self._tiny or s.means.size]
            if not sparse:
                break
            for side in sparse:
                self._lay_out(side)

    def _exact(self, low: float, high: float, looked: list[np.ndarray]) -> tuple[float, float]:
        """Both ends bisected to the batch tolerance within the cell that holds each."""
        obs = np.array(self.values)
        bounds, ladder = (self.low, self.high), self._ladder

        def rejects(m: float, side: str) -> bool:
            return final_log_evalue(obs, m, *bounds, side, ladder) >= self._threshold

        greater, less = self._sides
        free = greater.means[~looked[0] & (greater.means > low) & (greater.means < high)]
        cell_high = float(free.min()) if free.size else high
        new_low = _bisect_bound(rejects, "greater", low, cell_high) if cell_high > low else low
        free = less.means[~looked[1] & (less.means > new_low) & (less.means < high)]
        cell_low = float(free.max()) if free.size else new_low
        new_high = _bisect_bound(rejects, "less", cell_low, high) if high > cell_low else high
        return new_low, new_high

    def __repr__(self) -> str:
        low, high = self.interval()
        return (
            f"RunningConfidenceSequence(n={len(self)}, alpha={fmt(self.alpha)}, "
            f"interval=[{fmt(low)}, {fmt(high)}])"
        )


def _exact_parts(values: list[float]) -> list[float]:
    """A few floats whose exact sum is the exact sum of ``values`` (by `math.fsum`, in C).

    Each step adds the correctly rounded remainder; it is 0 only when nothing remains.

    >>> _exact_parts([1e16, 1.0, 1.0])
    [1.0000000000000002e+16]
    >>> _exact_parts([0.1, 0.2])
    [0.30000000000000004, -2.7755575615628914e-17]
    """
    parts: list[float] = []
    while True:
        rest = math.fsum([*values, *(-p for p in parts)])
        if not rest:
            return parts
        parts.append(rest)


def _add_exact(partials: list[float], values: list[float]) -> list[float]:
    """Shewchuk's exact partial sums of ``partials`` and ``values`` (what `math.fsum` keeps),
    so ``math.fsum(partials)`` is the correctly rounded sum of everything added.

    >>> math.fsum(_add_exact([], [1e16, 1.0, -1e16]))
    1.0
    """
    for x in values:
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]
    return partials
