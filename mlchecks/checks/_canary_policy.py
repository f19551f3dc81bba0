"""The canary's stage-1 decision policy: which tests run, at which level, and when to stop.

`CanaryPolicy` holds the numbers the decision depends on (the routing mode and fraction,
``alpha``, the limits' values); `CanaryMonitor` feeds every request of the live trickle to
the anytime-valid kernels of `mlchecks.stats.sequential` and decides after each one. The
severity of each limit (FAIL or WARN) is the report's business
(`mlchecks.checks._canary_report`); the monitor only says which tests detected a
regression.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Literal, TypeAlias

import numpy as np

from mlchecks.checks._canary_settings import (
    MIN_LATENCY_S,
    SHIFT_GATE_LOOKS,
    CanaryPolicy,
    log_ratio,
    pair_code,
)
from mlchecks.checks._canary_shift import (
    JS_SCALE,
    ClassCounts,
    psi_exceeds,
    shift_exceeds,
    shift_interval,
)
from mlchecks.checks._canary_tail import TailTest
from mlchecks.stats._running_cs import RunningConfidenceSequence
from mlchecks.stats.intervals import ConfidenceInterval
from mlchecks.stats.sequential import (
    BettingTest,
    CategoricalShareTest,
    RateTest,
    RoutedCategoryTest,
    RoutedRateTest,
    ShareTest,
    js_divergence,
    psi,
    rate_confidence_sequence,
)

__all__ = [
    "JS_SCALE",
    "MIN_LATENCY_S",
    "SHIFT_GATE_LOOKS",
    "TESTS",
    "CanaryMonitor",
    "CanaryPolicy",
    "Decision",
    "log_ratio",
    "pair_code",
    "shift_exceeds",
    "shift_interval",
]

Decision: TypeAlias = Literal["continue", "fail", "pass", "insufficient"]
#: The tests of stage 1, in report order (``tail`` unless ``max_tail_ratio`` is None,
#: ``disagreement`` in shadow mode only, ``accuracy`` when ``max_accuracy_drop`` is set).
TESTS = ("errors", "latency", "tail", "shift", "disagreement", "accuracy")


class CanaryMonitor:
    """The stage-1 verdict of a canary, updated after every request.

    Up to five anytime-valid tests run side by side, each at ``alpha / n_tests``
    (Bonferroni), so the chance of a false FAIL for a candidate identical to the baseline is
    at most ``alpha`` however long the canary runs and whenever it stops:

    - **errors**: is the candidate's share of errors larger than its share of traffic
      (split mode), or are candidate-only errors more common than baseline-only errors
      among paired requests (shadow mode)? A one-sided `ShareTest`.
    - **latency**: is the mean clipped log-latency ratio of the candidate over the
      baseline above ``log(max_latency_ratio)``? A one-sided `BettingTest` on pairs: in
      split mode each successful candidate request is paired with the latest successful
      baseline request not yet paired (if any); in shadow mode with its mirror.
    - **tail** (unless ``max_tail_ratio`` is None): is the candidate slow (beyond the
      pooled running ``latency_quantile`` of the latencies before it) more than
      ``max_tail_ratio`` times as often as the baseline? A one-sided share test on which
      version each slow request came from (`mlchecks.checks._canary_tail.TailTest`): it
      sees a candidate whose median is the baseline's but whose slowest requests are
      slower, which the mean log ratio does not.
    - **shift**: does the predicted-class distribution differ? A `CategoricalShareTest`
      on the routing of each labelled response (split mode), or on the direction of each
      disagreeing pair of labels (shadow mode). A rejection is a regression only while
      the effect size is above ``max_psi`` (or ``max_js``); rejections of smaller shifts
      are reported but tolerated.
    - **disagreement** (shadow mode only): is the fraction of mirrored requests on which
      the two versions' predictions differ above ``max_disagreement``? A one-sided
      `RateTest`. The shift test compares distributions, so it cannot see a candidate that
      predicts another class for most requests while keeping the overall mix (a model
      trained on inverted labels of balanced classes); this test can.

    The decision is ``"fail"`` as soon as a test detects a regression, ``"pass"`` once the
    candidate has served ``n_candidate_requests`` requests without one, and ``"continue"``
    before; ``"insufficient"`` instead of ``"pass"`` when every one of those requests failed
    (and the baseline's as often, or the error test would have failed): the tests saw no
    difference, but nothing the candidate served was judged.

    >>> monitor = CanaryMonitor(CanaryPolicy(traffic_fraction=0.5, n_candidate_requests=3))
    >>> for arm in [True, False, True, False, True]:
    ...     _ = monitor.observe(candidate=arm, error=False, latency_s=0.01, label=0)
    >>> monitor.decision, monitor.n_candidate
    ('pass', 3)
    """

    def __init__(self, policy: CanaryPolicy | None = None) -> None:
        self.config = cfg = policy if policy is not None else CanaryPolicy()
        null = math.log(cfg.max_latency_ratio)
        self.errors: ShareTest | RoutedRateTest
        self.shift: CategoricalShareTest | RoutedCategoryTest
        if cfg.share is None:  # the platform routes: compare with the nearest baseline requests
            self.errors, self.shift = RoutedRateTest(), RoutedCategoryTest()
        else:
            # sparse: also bet on a few errors nearly all from the candidate (Kayenta's case
            # of a baseline with no errors at all beside a candidate with a handful).
            self.errors = ShareTest(cfg.share, alternative="greater", sparse=True)
            self.shift = CategoricalShareTest(cfg.share)
        self.latency = BettingTest(null, low=-cfg.bound, high=cfg.bound, alternative="greater")
        self.latency_within = BettingTest(null, low=-cfg.bound, high=cfg.bound, alternative="less")
        drop = cfg.max_accuracy_drop
        self.accuracy = (
            None if drop is None else BettingTest(drop, low=-1.0, high=1.0, alternative="greater")
        )
        self.labelled = [0, 0]  # labelled requests (candidate, baseline)
        self.wrong = [0.0, 0.0]  # of those, wrong predictions (or summed losses in [0, 1])
        # The intervals are kept up to date as pairs come (O(1) each, not O(pairs) a look);
        # each keeps its pairs (8 bytes each: a long record stays small).
        self._accuracy_cs = RunningConfidenceSequence(
            low=-1.0, high=1.0, alpha=2.0 * cfg.alpha_per_test
        )
        self._latency_cs = RunningConfidenceSequence(
            low=-cfg.bound, high=cfg.bound, alpha=cfg.alpha_per_test
        )
        # candidate minus baseline, per pair
        self.accuracy_differences: array[float] = self._accuracy_cs.values
        self._unpaired: tuple[list[float], list[float]] = ([], [])
        self.tail = (
            TailTest(
                cfg.share,
                quantile=cfg.latency_quantile,
                max_ratio=cfg.max_tail_ratio,
                window=cfg.tail_window,
            )
            if cfg.max_tail_ratio is not None
            else None
        )
        limit = cfg.max_disagreement
        self.disagreement = RateTest(limit) if cfg.tests_disagreement and limit else None
        self.n_compared = 0  # mirrored pairs whose predictions were compared
        self.n_disagreed: float = 0  # of those, pairs whose predictions differ (shares of rows)
        self.n_requests = 0
        self.n_candidate = 0
        self.candidate_errors = 0
        self.baseline_errors = 0
        self.differences: array[float] = self._latency_cs.values  # clipped log-latency ratios
        self._bound = cfg.bound
        self.classes = ClassCounts()  # each version's predicted classes
        self._n_labelled = 0  # label counts changes; the size gate judged them at _gate_at
        self._gate_at = -1
        self._gate_level = cfg.shift_gate_alpha
        self.decision: Decision = "continue"
        self._log_threshold = math.log(cfg.evalue_threshold)  # every test fails at this
        self.reasons: tuple[str, ...] = ()
        self.shift_tolerated = False  # a significant shift not shown above the thresholds
        self.shift_crossed: tuple[str, ...] = ()  # the limits a shift was shown to exceed
        self._last_baseline: float | None = None

    def observe(
        self, *, candidate: bool, error: bool, latency_s: float | None, label: int | None
    ) -> Decision:
        """Record one split-mode request (served by the candidate or by the baseline).

        Args:
            candidate: True when the request was routed to the candidate.
            error: True when it failed (then ``latency_s`` and ``label`` are ignored).
            latency_s: its latency.
            label: its predicted class, or None when the output has none.

        Returns:
            The decision after this request.
        """
        if self.decision != "continue":
            return self.decision
        self.n_requests += 1
        self.n_candidate += bool(candidate)
        if isinstance(self.errors, RoutedRateTest):
            self.errors.observe(bool(candidate), bool(error))
        elif error:
            self.errors.update(bool(candidate))
        if error:
            if candidate:
                self.candidate_errors += 1
            else:
                self.baseline_errors += 1
            return self._decide()
        if latency_s is not None:
            if self.tail is not None:
                self.tail.observe(float(latency_s), candidate=bool(candidate))
            if not candidate:
                self._last_baseline = float(latency_s)
            elif self._last_baseline is not None:
                self._add_difference(latency_s, self._last_baseline)
                self._last_baseline = None
        if label is not None:
            self.classes.add(int(label), 0 if candidate else 1)
            self._n_labelled += 1
            self.shift.update(int(label), bool(candidate))
        return self._decide()

    def observe_pair(
        self,
        *,
        candidate_error: bool,
        baseline_error: bool,
        candidate_latency_s: float | None,
        baseline_latency_s: float | None,
        candidate_label: int | None,
        baseline_label: int | None,
        disagree: bool | float | None = None,
    ) -> Decision:
        """Record one shadow-mode request, sent to both the candidate and the baseline.

        Args:
            candidate_error, baseline_error: whether each version failed the request.
            candidate_latency_s, baseline_latency_s: their latencies.
            candidate_label, baseline_label: their predicted classes (None: no class).
            disagree: whether the two predictions differ, or for a request of many rows
                the share of its rows whose predictions differ; None: they differ when both
                labels are known and unequal. Ignored unless both versions succeeded.

        Returns:
            The decision after this request.
        """
        if self.decision != "continue":
            return self.decision
        self.n_requests += 1
        self.n_candidate += 1
        self.candidate_errors += bool(candidate_error)
        self.baseline_errors += bool(baseline_error)
        if bool(candidate_error) != bool(baseline_error):
            assert isinstance(self.errors, ShareTest)  # pairs have a known share, 1/2
            self.errors.update(bool(candidate_error))
        if candidate_error or baseline_error:
            return self._decide()
        if candidate_latency_s is not None and baseline_latency_s is not None:
            self._add_difference(candidate_latency_s, baseline_latency_s)
            if self.tail is not None:
                self.tail.observe_pair(float(candidate_latency_s), float(baseline_latency_s))
        if candidate_label is not None and baseline_label is not None:
            c, b = int(candidate_label), int(baseline_label)
            self.classes.add(c, 0)
            self.classes.add(b, 1)
            self._n_labelled += 1
            if c != b:
                self.shift.update(pair_code(c, b), c < b)
            if disagree is None:
                disagree = c != b
        if disagree is not None:
            self.n_compared += 1
            if isinstance(disagree, bool):
                self.n_disagreed += disagree
                if self.disagreement is not None:
                    self.disagreement.push(disagree)
            else:
                self.n_disagreed += float(disagree)
                if self.disagreement is not None:
                    self.disagreement.push_fraction(float(disagree))
        return self._decide()

    def observe_outcome(self, *, candidate: bool, wrong: float) -> Decision:
        """Record whether one labelled request's prediction was wrong (split mode).

        Each candidate outcome is paired with the latest unpaired baseline outcome, and the
        accuracy test bets on their difference, as the latency test does; the pairs do not
        depend on the routing share.

        Args:
            candidate: True when the candidate served the request.
            wrong: 1 when its prediction was wrong, 0 when right (a loss in [0, 1] too).
        """
        arm = 0 if candidate else 1
        self.labelled[arm] += 1
        self.wrong[arm] += wrong
        mine, other = self._unpaired[arm], self._unpaired[1 - arm]
        if other:
            last = other.pop()
            self._add_outcomes(wrong, last) if candidate else self._add_outcomes(last, wrong)
        else:
            mine.append(wrong)
            del mine[:-64]  # only recent outcomes wait for a partner
        return self._decide_outcome()

    def observe_outcome_pair(self, *, candidate_wrong: float, baseline_wrong: float) -> Decision:
        """Record both versions' outcomes on one labelled mirrored request (shadow mode)."""
        labelled, wrong = self.labelled, self.wrong
        labelled[0] += 1
        labelled[1] += 1
        wrong[0] += candidate_wrong
        wrong[1] += baseline_wrong
        self._add_outcomes(candidate_wrong, baseline_wrong)
        return self._decide_outcome()

    def _decide_outcome(self) -> Decision:
        """`_decide` after an outcome: only the accuracy test and the labelled count moved
        since the last decision (every other change decides at once), so while the
        accuracy test's bound is below the threshold and no PASS is due, nothing changes."""
        if self.decision != "continue":
            return self.decision
        cfg, test = self.config, self.accuracy
        if (test is None or test.log_evalue_bound < self._log_threshold) and (
            self.n_candidate < cfg.n_candidate_requests or self.labelled[0] < cfg.n_candidate_labels
        ):
            return self.decision
        return self._decide()

    def _add_outcomes(self, candidate_wrong: float, baseline_wrong: float) -> None:
        difference = float(candidate_wrong) - float(baseline_wrong)
        self._accuracy_cs.add(difference)
        if self.accuracy is not None:
            self.accuracy.push(difference)

    def _add_difference(self, candidate_s: float, baseline_s: float) -> None:
        value = log_ratio(candidate_s, baseline_s, self._bound)
        self._latency_cs.add(value)
        self.latency.push(value)
        self.latency_within.push(value)

    def _shift_gate(self) -> tuple[str, ...]:
        """The limits the shift is shown to exceed (`CanaryPolicy.shift_limits_crossed`)."""
        cfg, counts = self.config, self.classes
        if cfg.max_psi is None or cfg.max_js is not None:
            return cfg.shift_limits_crossed(*counts.counts)
        cand, base = counts.counts
        crossed = psi_exceeds(cand, base, counts.totals, cfg.max_psi, self._gate_level)
        return ("max_psi",) if crossed else ()

    def _decide(self) -> Decision:
        cfg = self.config
        threshold = self._log_threshold
        reasons = []
        if self.errors.log_evalue >= threshold:
            reasons.append("errors")
        # the betting tests' e-values are computed only when their bound is at the threshold
        latency = self.latency
        if latency.log_evalue_bound >= threshold <= latency.log_evalue:
            reasons.append("latency")
        if self.tail is not None and self.tail.test.log_evalue >= threshold:
            reasons.append("tail")
        if self.shift.log_evalue >= threshold:
            if self._gate_at != self._n_labelled:  # the gate depends on the counts only
                self._gate_at = self._n_labelled
                self.shift_crossed = self._shift_gate()
            if self.shift_crossed:
                reasons.append("shift")
            else:
                self.shift_tolerated = True
        rate = self.disagreement
        if rate is not None and rate.log_evalue_bound >= threshold <= rate.log_evalue:
            reasons.append("disagreement")
        accuracy = self.accuracy
        if accuracy is not None and accuracy.log_evalue_bound >= threshold <= accuracy.log_evalue:
            reasons.append("accuracy")
        if reasons:
            self.decision, self.reasons = "fail", tuple(reasons)
        elif (
            self.n_candidate >= cfg.n_candidate_requests
            and self.labelled[0] >= cfg.n_candidate_labels
        ):
            served = self.n_candidate > self.candidate_errors
            self.decision = "pass" if served else "insufficient"
        return self.decision

    def log_evalues(self) -> tuple[float, ...]:
        """Each test's log e-value now, in `TESTS` order (NaN for a test that does not run)."""
        disagreement = math.nan if self.disagreement is None else self.disagreement.log_evalue
        return (
            self.errors.log_evalue,
            self.latency.log_evalue,
            math.nan if self.tail is None else self.tail.log_evalue,
            self.shift.log_evalue,
            disagreement,
            math.nan if self.accuracy is None else self.accuracy.log_evalue,
        )

    @property
    def candidate_labels(self) -> dict[int, int]:
        """The candidate's count of each class it predicted."""
        return self.classes.as_dict(0)

    @property
    def baseline_labels(self) -> dict[int, int]:
        """The baseline's count of each class it predicted."""
        return self.classes.as_dict(1)

    def label_counts(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The classes seen so far and each version's counts of them."""
        counts = self.classes
        cand, base = (np.array(c, dtype=np.float64) for c in counts.counts)
        return list(counts.classes), cand, base

    @property
    def psi(self) -> float:
        """PSI between the candidate's and the baseline's predicted classes so far."""
        _, cand, base = self.label_counts()
        return psi(cand, base) if cand.sum() > 0 and base.sum() > 0 else 0.0

    @property
    def js(self) -> float:
        """Jensen-Shannon divergence (base 2) between the two class distributions so far."""
        _, cand, base = self.label_counts()
        return js_divergence(cand, base) if cand.sum() > 0 and base.sum() > 0 else 0.0

    @property
    def latency_ratio(self) -> float:
        """The candidate's latency over the baseline's: ``exp`` of the mean clipped log ratio.

        NaN before the first pair.
        """
        if not self.differences:
            return math.nan
        return math.exp(self._latency_cs.mean)

    def latency_ratio_interval(self) -> ConfidenceInterval:
        """The confidence sequence for the latency ratio at level ``alpha_per_test``.

        `betting_confidence_sequence` of the pairs' clipped log ratios, kept up to date
        pair by pair (`mlchecks.stats._running_cs`): O(1) a look, not O(pairs).
        """
        cs = self._latency_cs.interval()
        return ConfidenceInterval(math.exp(cs.low), math.exp(cs.high))

    @property
    def disagreement_rate(self) -> float:
        """The fraction of compared mirrored pairs whose predictions differ (NaN before one)."""
        return self.n_disagreed / self.n_compared if self.n_compared else math.nan

    def disagreement_interval(self) -> ConfidenceInterval:
        """The confidence sequence for the disagreement rate.

        Each end inverts a one-sided test at ``alpha_per_test`` (together a ``1 - 2 *
        alpha_per_test`` confidence sequence), so the lower end is above
        ``max_disagreement`` exactly when the disagreement test rejects.
        """
        return rate_confidence_sequence(
            self.n_disagreed, self.n_compared, alpha=2.0 * self.config.alpha_per_test
        )

    def evidence(self) -> dict[str, Any]:
        """Everything the verdict rests on, as JSON-safe Python values."""
        cfg = self.config
        keys, cand, base = self.label_counts()
        interval = self.latency_ratio_interval()
        evidence: dict[str, Any] = {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "mode": cfg.mode,
            "alpha": cfg.alpha,
            "tests": cfg.n_tests,
            "alpha_per_test": cfg.alpha_per_test,
            "evalue_threshold": cfg.evalue_threshold,
            "requests": self.n_requests,
            "candidate_requests": self.n_candidate,
            "candidate_errors": self.candidate_errors,
            "baseline_errors": self.baseline_errors,
            "errors_evalue": self.errors.evalue,
            "latency_pairs": len(self.differences),
            "latency_ratio": self.latency_ratio,
            "latency_ratio_interval": [interval.low, interval.high],
            "latency_evalue": self.latency.evalue,
            "latency_within_evalue": self.latency_within.evalue,
            "max_latency_ratio": cfg.max_latency_ratio,
            **self._tail_evidence(),
            "shift_evalue": self.shift.evalue,
            "shift_tolerated": self.shift_tolerated,
            "psi": self.psi,
            "js": self.js,
            "classes": {str(k): [int(c), int(b)] for k, c, b in zip(keys, cand, base, strict=True)},
        }
        if self.accuracy is not None:
            evidence.update(self.accuracy_evidence())
        if cfg.mode == "shadow":
            low, high = self.disagreement_interval()
            evidence.update(
                {
                    "max_disagreement": cfg.max_disagreement,
                    "disagreement_pairs": self.n_compared,
                    "disagreements": self.n_disagreed,
                    "disagreement_rate": self.disagreement_rate,
                    "disagreement_interval": [low, high],
                    "disagreement_evalue": (
                        None if self.disagreement is None else self.disagreement.evalue
                    ),
                }
            )
        return evidence

    def accuracy_drop_interval(self) -> ConfidenceInterval:
        """The confidence sequence for the accuracy drop (the candidate's error rate minus
        the baseline's on paired labelled requests).

        Each end inverts a one-sided test at ``alpha_per_test`` (together ``1 - 2 *
        alpha_per_test``), so the lower end is above ``max_accuracy_drop`` only when the
        accuracy test rejects (and whenever it does, up to 2,048 pairs). Kept up to date pair
        by pair (`mlchecks.stats._running_cs`): beyond 2,048 pairs an end may be a grid step
        wider than the batch computation's.
        """
        return self._accuracy_cs.interval()

    def accuracy_evidence(self) -> dict[str, Any]:
        """The accuracy test's evidence: labelled requests, accuracies, the drop."""
        assert self.accuracy is not None
        pairs = self.accuracy_differences
        return {
            "max_accuracy_drop": self.config.max_accuracy_drop,
            "labelled": list(self.labelled),
            "accuracy": [
                1.0 - w / n if n else math.nan
                for w, n in zip(self.wrong, self.labelled, strict=True)
            ],
            "accuracy_pairs": len(pairs),
            "accuracy_drop": self._accuracy_cs.mean,
            "accuracy_drop_interval": list(self.accuracy_drop_interval()),
            "accuracy_evalue": self.accuracy.evalue,
        }

    def _tail_evidence(self) -> dict[str, Any]:
        cfg, tail = self.config, self.tail
        if tail is None:
            return {"max_tail_ratio": None}
        return {
            "max_tail_ratio": cfg.max_tail_ratio,
            "latency_quantile": cfg.latency_quantile,
            "tail_threshold_s": tail.threshold_s,
            "tail_judged": list(tail.n_judged),
            "tail_slow": list(tail.n_slow),
            "tail_ratio": tail.ratio,
            "tail_evalue": tail.evalue,
        }

    def __repr__(self) -> str:
        return (
            f"CanaryMonitor(decision={self.decision!r}, requests={self.n_requests}, "
            f"candidate={self.n_candidate})"
        )
