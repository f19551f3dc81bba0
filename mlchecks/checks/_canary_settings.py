"""The numbers a canary's stage 1 decides by (`CanaryPolicy`) and the per-request values.

`mlchecks.checks._canary_policy.CanaryMonitor` runs the tests; this module holds what they
are run with: the routing mode and share, ``alpha`` and its split, the limits, and the size
gate on a prediction shift.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from mlchecks.checks._canary_shift import shift_exceeds

__all__ = [
    "MIN_LATENCY_S",
    "SHIFT_GATE_LOOKS",
    "CanaryPolicy",
    "log_ratio",
    "pair_code",
]

#: The size gate's per-look level is ``alpha_per_test`` over this (see `shift_limits_crossed`).
SHIFT_GATE_LOOKS = 10.0
#: Latencies are floored here (seconds) before taking logs, so a clock reading 0 is finite.
MIN_LATENCY_S = 1e-9


@attrs.frozen(kw_only=True)
class CanaryPolicy:
    """The settings stage 1 decides by (the values of `CanaryCheck`'s fields).

    Attributes:
        traffic_fraction: the candidate's share of live requests (split) or of mirrored
            requests (shadow); None when a platform routes at a share not known here
            (split mode: the error, tail and shift tests then condition on the routing,
            `mlchecks.stats.sequential.RoutedRateTest`).
        mode: ``"split"`` or ``"shadow"``.
        alpha: the false-FAIL rate bound of the whole verdict.
        max_latency_ratio: the candidate may be this many times slower (>= 1).
        clip_ratio: log-latency ratios are clipped to ``±log(clip_ratio)``.
        max_tail_ratio: the candidate may be slow (beyond the pooled running
            ``latency_quantile``) this many times as often as the baseline (None: the tail
            test does not run).
        latency_quantile: the quantile that defines a slow request.
        max_psi, max_js: effect-size thresholds for a prediction shift (None: not used;
            both None: any significant shift fails).
        n_candidate_requests: how many candidate requests make a PASS.
        max_disagreement: the highest tolerated rate of differing predictions on mirrored
            requests (shadow mode; None, or 1 and above: not tested).
        max_accuracy_drop: the candidate's accuracy on labelled requests may be this much
            below the baseline's (None: not tested; labels arrive with the record or later).
        n_candidate_labels: a PASS also needs this many labelled candidate requests.
        tail_window: the tail test's threshold is read from the latest this many latencies
            (None: from all of them).
    """

    traffic_fraction: float | None = 0.05
    mode: str = "split"
    alpha: float = 0.05
    max_latency_ratio: float = 1.2
    clip_ratio: float = 10.0
    max_tail_ratio: float | None = 2.0
    latency_quantile: float = 0.95
    max_psi: float | None = 0.1
    max_js: float | None = None
    n_candidate_requests: int = 500
    max_disagreement: float | None = 0.1
    max_accuracy_drop: float | None = None
    n_candidate_labels: int = 0
    tail_window: int | None = None

    @property
    def share(self) -> float | None:
        """The null share of the error test: the routing fraction (None: not known), or 1/2
        for pairs."""
        return self.traffic_fraction if self.mode == "split" else 0.5

    @property
    def routed(self) -> bool:
        """True when a platform routes at a share not known here (split mode)."""
        return self.share is None

    @property
    def tests_accuracy(self) -> bool:
        """True when the candidate's accuracy on labelled requests is tested."""
        return self.max_accuracy_drop is not None

    @property
    def tests_disagreement(self) -> bool:
        """True when the disagreement rate is tested (shadow mode with a limit below 1)."""
        limit = self.max_disagreement
        return self.mode == "shadow" and limit is not None and 0.0 < limit < 1.0

    @property
    def tests_tail(self) -> bool:
        """True when the tail-latency test runs (``max_tail_ratio`` is set)."""
        return self.max_tail_ratio is not None

    @property
    def n_tests(self) -> int:
        """How many tests share ``alpha``: errors, latency and shift, plus tail latency,
        (shadow mode) disagreement and accuracy when they run."""
        return 3 + self.tests_tail + self.tests_disagreement + self.tests_accuracy

    @property
    def alpha_per_test(self) -> float:
        """Each test's share of ``alpha`` (Bonferroni)."""
        return self.alpha / self.n_tests

    @property
    def evalue_threshold(self) -> float:
        """``n_tests / alpha``: each test fails at e-value ``1 / alpha_per_test``."""
        return self.n_tests / self.alpha

    @property
    def bound(self) -> float:
        """Log-latency differences are clipped to ``[-bound, bound]``."""
        return math.log(self.clip_ratio)

    @property
    def shift_gate_alpha(self) -> float:
        """The size gate's level: ``alpha_per_test / SHIFT_GATE_LOOKS``.

        The gate opens when the lower end of the effect size's interval at this level
        (`shift_interval`) is above the limit; the report shows that same interval.
        """
        return self.alpha_per_test / SHIFT_GATE_LOOKS

    def shift_limits_crossed(self, candidate: Any, baseline: Any) -> tuple[str, ...]:
        """The effect-size limits a shift is shown to exceed (``("any",)`` when none is set).

        A limit is crossed only when the data show it: `shift_exceeds` rejects "the true
        PSI (JS) is at most the limit" at `shift_gate_alpha`, so a shift
        smaller than the limit is tolerated although the plug-in estimate, biased upward at
        small samples, lands above it. The level is divided because the gate is looked at
        after every request once the shift test has rejected; at the defaults a shift equal
        to the limit then FAILs in 8 of 300 canaries (``benchmarks/verdicts_canary.py``).

        Args:
            candidate, baseline: the two versions' class counts over the same classes.
        """
        if self.max_psi is None and self.max_js is None:
            return ("any",)
        crossed = []
        level = self.shift_gate_alpha
        if self.max_psi is not None and shift_exceeds(
            candidate, baseline, self.max_psi, level, measure="psi"
        ):
            crossed.append("max_psi")
        if self.max_js is not None and shift_exceeds(
            candidate, baseline, self.max_js, level, measure="js"
        ):
            crossed.append("max_js")
        return tuple(crossed)


def log_ratio(candidate_s: float, baseline_s: float, bound: float) -> float:
    """The log of one latency ratio, clipped to ``[-bound, bound]``."""
    diff = math.log(max(candidate_s, MIN_LATENCY_S)) - math.log(max(baseline_s, MIN_LATENCY_S))
    return min(bound, max(-bound, diff))


def pair_code(a: int, b: int) -> int:
    """One integer per unordered pair of non-negative labels (Cantor pairing)."""
    low, high = (a, b) if a < b else (b, a)
    return (low + high) * (low + high + 1) // 2 + high
