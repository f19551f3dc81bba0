"""Tests for mlchecks.checks._canary_policy: the stage-1 verdict of `CanaryCheck`.

The online `CanaryMonitor` is checked against a vectorized reference of the same decision
(`split_decision`, `shadow_decision`, below: a handful of numpy passes over a whole stream
built from the kernels of `mlchecks.stats.sequential`), which the simulations use to judge
thousands of streams quickly.
"""

from __future__ import annotations

import bisect
import json
import math
from typing import Any, NamedTuple

import numpy as np
import pytest
from scipy import stats

from mlchecks._validate import as_array, check_same_length, describe
from mlchecks.checks._canary_policy import (
    MIN_LATENCY_S,
    SHIFT_GATE_LOOKS,
    CanaryMonitor,
    CanaryPolicy,
    shift_exceeds,
    shift_interval,
)
from mlchecks.exceptions import InvalidInput
from mlchecks.stats._evalue import bool_array
from mlchecks.stats.sequential import (
    betting_log_evalues,
    categorical_share_log_evalues,
    psi,
    rate_log_evalues,
    share_log_evalues,
)

# ---------------------------------------------------------------- the vectorized reference


class StreamDecision(NamedTuple):
    """The stage-1 verdict on a stream: ``"fail"``, ``"pass"`` or ``"inconclusive"``."""

    decision: str
    reasons: tuple[str, ...]
    n_requests: int
    n_candidate: int


def _at_times(event_times: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Spread per-event values over ``n`` request times (0 before the first event)."""
    counts = np.zeros(n, dtype=np.intp)
    np.add.at(counts, event_times, 1)
    index = np.cumsum(counts)
    return np.asarray(np.r_[0.0, values][index], dtype=np.float64)


def _labels(value: Any, name: str, n: int) -> np.ndarray:
    array = as_array(value, name, ndim=1, min_size=0)
    if array.dtype.kind not in "iu":
        raise InvalidInput(f"'{name}' must be integers, -1 for none (got {describe(array)})")
    if array.size != n:
        raise InvalidInput(f"'{name}' must have {n} entries (got {array.size})")
    return array.astype(np.int64)


def _latencies(value: Any, name: str, n: int) -> np.ndarray:
    array = as_array(value, name, ndim=1, dtype=np.float64, finite=False, min_size=0)
    if array.size != n:
        raise InvalidInput(f"'{name}' must have {n} entries (got {array.size})")
    return np.asarray(np.log(np.maximum(array, MIN_LATENCY_S)), dtype=np.float64)


def _shift_effects(
    times: np.ndarray, cand_labels: np.ndarray, base_labels: np.ndarray, n: int, cfg: CanaryPolicy
) -> np.ndarray:
    """Whether the effect-size gate is open at each request time.

    ``cand_labels`` / ``base_labels`` hold, per labelled event at ``times``, the class that
    event adds to each side (-1 for none).
    """
    if not times.size:
        return np.zeros(n, dtype=bool)
    present = np.r_[cand_labels[cand_labels >= 0], base_labels[base_labels >= 0]]
    classes = np.unique(present)
    width = classes.size

    def onehot(labels: np.ndarray) -> np.ndarray:
        out = np.zeros((labels.size, width))
        rows = np.flatnonzero(labels >= 0)
        out[rows, np.searchsorted(classes, labels[rows])] = 1.0
        return out

    cand = np.cumsum(onehot(cand_labels), axis=0)
    base = np.cumsum(onehot(base_labels), axis=0)
    level = cfg.alpha_per_test / SHIFT_GATE_LOOKS
    if cfg.max_psi is None and cfg.max_js is None:
        gate = np.ones(times.size, dtype=bool)
    else:
        gate = np.zeros(times.size, dtype=bool)
        if cfg.max_psi is not None:
            gate |= shift_exceeds(cand, base, cfg.max_psi, level, measure="psi")
        if cfg.max_js is not None:
            gate |= shift_exceeds(cand, base, cfg.max_js, level, measure="js")
    # The gate changes only at labelled events; between them it keeps its last value.
    return _at_times(times, gate.astype(np.float64), n) > 0.5


def _tail_slow(latencies: np.ndarray, quantile: float, group: int) -> np.ndarray:
    """For each of ``len // group`` rows of ``group`` latencies (one request, or one mirrored
    pair), which were slow: above the ``quantile`` of all earlier rows' latencies, once
    ``10 / (1 - quantile)`` of them were seen; -1 before. A sorted list grown row by row."""
    rows = latencies.reshape(-1, group)
    out = np.full(rows.shape, -1)
    first = math.ceil(10.0 / (1.0 - quantile) - 1e-9)
    earlier: list[float] = []
    for t, row in enumerate(rows.tolist()):
        if len(earlier) >= first:
            threshold = earlier[min(len(earlier) - 1, int(quantile * len(earlier)))]
            out[t] = [x > threshold for x in row]
        for x in row:
            bisect.insort(earlier, x)
    return out


def _tail_log_evalues(
    times: np.ndarray, slow: np.ndarray, hits_of_slow: np.ndarray, null: float, n: int
) -> np.ndarray:
    """The tail test's log e-value after each request: a share test on the slow events."""
    return _at_times(times[slow], share_log_evalues(hits_of_slow, null, alternative="greater"), n)


def _decide_stream(
    log_errors: np.ndarray,
    log_latency: np.ndarray,
    log_tail: np.ndarray,
    log_shift: np.ndarray,
    gate: np.ndarray,
    log_disagreement: np.ndarray,
    n_candidate: np.ndarray,
    cfg: CanaryPolicy,
) -> StreamDecision:
    threshold = math.log(cfg.evalue_threshold)
    fails = np.stack(
        [
            log_errors >= threshold,
            log_latency >= threshold,
            log_tail >= threshold,
            (log_shift >= threshold) & gate,
            log_disagreement >= threshold,
        ]
    )
    any_fail = fails.any(axis=0)
    n = any_fail.size
    first_fail = int(np.argmax(any_fail)) if any_fail.any() else n
    reached = n_candidate >= cfg.n_candidate_requests
    first_pass = int(np.argmax(reached)) if reached.any() else n
    if first_fail < n and first_fail <= first_pass:
        names = ("errors", "latency", "tail", "shift", "disagreement")
        reasons = tuple(name for name, hit in zip(names, fails[:, first_fail], strict=True) if hit)
        return StreamDecision("fail", reasons, first_fail + 1, int(n_candidate[first_fail]))
    if first_pass < n:
        return StreamDecision("pass", (), first_pass + 1, int(n_candidate[first_pass]))
    return StreamDecision("inconclusive", (), n, int(n_candidate[-1]) if n else 0)


def split_decision(
    candidate: Any,
    error: Any,
    latency_s: Any,
    label: Any,
    **settings: Any,
) -> StreamDecision:
    """The `CanaryMonitor` verdict on a whole split-mode stream, vectorized.

    Gives the decision `CanaryMonitor.observe` reaches when fed the same requests one at
    a time, in a handful of numpy passes: for simulations over many streams.

    Args:
        candidate: 1-D booleans, True for requests routed to the candidate.
        error: 1-D booleans, True for failed requests.
        latency_s: 1-D latencies (ignored where ``error``; may be NaN there).
        label: 1-D integer predicted classes, -1 where there is none.
        **settings: `CanaryPolicy`'s fields (``mode`` must be ``"split"``).

    Returns:
        A `StreamDecision`.
    """
    cfg = CanaryPolicy(**settings)
    arm = bool_array(candidate, "candidate")
    n = arm.size
    err = bool_array(error, "error")
    check_same_length(candidate=arm, error=err)
    log_lat = _latencies(latency_s, "latency_s", n)
    labels = _labels(label, "label", n)
    n_candidate = np.cumsum(arm)

    # errors: the source of each error
    err_times = np.flatnonzero(err)
    log_errors = _at_times(
        err_times,
        share_log_evalues(arm[err_times], cfg.share, alternative="greater", sparse=True),
        n,
    )

    # latency: each successful candidate request with the latest unpaired baseline success
    ok = ~err
    cand_ok = np.flatnonzero(arm & ok)
    base_ok = np.flatnonzero(~arm & ok)
    prev = np.searchsorted(base_ok, cand_ok) - 1
    paired = prev >= 0
    paired[1:] &= prev[1:] != prev[:-1]
    pair_times = cand_ok[paired]
    diffs = np.clip(log_lat[pair_times] - log_lat[base_ok[prev[paired]]], -cfg.bound, cfg.bound)
    log_latency = _at_times(
        pair_times,
        betting_log_evalues(
            diffs,
            math.log(cfg.max_latency_ratio),
            low=-cfg.bound,
            high=cfg.bound,
            alternative="greater",
        ),
        n,
    )

    # shift: the routing of each labelled success
    label_times = np.flatnonzero(ok & (labels >= 0))
    codes = labels[label_times]
    hits = arm[label_times]
    log_shift = _at_times(label_times, categorical_share_log_evalues(codes, hits, cfg.share), n)
    gate = _shift_effects(label_times, np.where(hits, codes, -1), np.where(hits, -1, codes), n, cfg)
    # tail: which arm each slow success came from
    log_tail = np.zeros(n)
    if cfg.max_tail_ratio is not None:
        ok_times = np.flatnonzero(ok)
        slow = _tail_slow(log_lat[ok_times], cfg.latency_quantile, 1)[:, 0] == 1
        null = cfg.share * cfg.max_tail_ratio / (cfg.share * cfg.max_tail_ratio + 1 - cfg.share)
        log_tail = _tail_log_evalues(ok_times, slow, arm[ok_times][slow], null, n)
    no_test = np.zeros(n)
    return _decide_stream(
        log_errors, log_latency, log_tail, log_shift, gate, no_test, n_candidate, cfg
    )


def shadow_decision(
    candidate_error: Any,
    baseline_error: Any,
    candidate_latency_s: Any,
    baseline_latency_s: Any,
    candidate_label: Any,
    baseline_label: Any,
    disagree: Any = None,
    **settings: Any,
) -> StreamDecision:
    """The `CanaryMonitor` verdict on a whole shadow-mode stream (one row per mirrored request).

    Args:
        candidate_error, baseline_error: 1-D booleans per mirrored request.
        candidate_latency_s, baseline_latency_s: 1-D latencies.
        candidate_label, baseline_label: 1-D integer classes, -1 where there is none.
        disagree: whether the two predictions differ, as `CanaryMonitor.observe_pair`
            takes it: 1-D integers per request, 1 where they differ, 0 where they agree,
            -1 where it is not given (booleans: given everywhere); where it is not given,
            and when ``disagree`` is None, the labels decide (they differ where both are
            known and unequal).
        **settings: `CanaryPolicy`'s fields (``mode`` defaults to ``"shadow"``).

    Returns:
        A `StreamDecision`.
    """
    cfg = CanaryPolicy(**{"mode": "shadow", **settings})
    c_err = bool_array(candidate_error, "candidate_error")
    n = c_err.size
    b_err = bool_array(baseline_error, "baseline_error")
    check_same_length(candidate_error=c_err, baseline_error=b_err)
    c_lat = _latencies(candidate_latency_s, "candidate_latency_s", n)
    b_lat = _latencies(baseline_latency_s, "baseline_latency_s", n)
    c_lab = _labels(candidate_label, "candidate_label", n)
    b_lab = _labels(baseline_label, "baseline_label", n)
    n_candidate = np.arange(1, n + 1)

    disc = np.flatnonzero(c_err != b_err)
    log_errors = _at_times(
        disc, share_log_evalues(c_err[disc], 0.5, alternative="greater", sparse=True), n
    )

    both_ok = ~c_err & ~b_err
    pair_times = np.flatnonzero(both_ok)
    diffs = np.clip(c_lat[pair_times] - b_lat[pair_times], -cfg.bound, cfg.bound)
    log_latency = _at_times(
        pair_times,
        betting_log_evalues(
            diffs,
            math.log(cfg.max_latency_ratio),
            low=-cfg.bound,
            high=cfg.bound,
            alternative="greater",
        ),
        n,
    )

    labelled = np.flatnonzero(both_ok & (c_lab >= 0) & (b_lab >= 0))
    unequal = labelled[c_lab[labelled] != b_lab[labelled]]
    low = np.minimum(c_lab[unequal], b_lab[unequal])
    high = np.maximum(c_lab[unequal], b_lab[unequal])
    codes = (low + high) * (low + high + 1) // 2 + high
    log_shift = _at_times(
        unequal,
        categorical_share_log_evalues(codes, c_lab[unequal] < b_lab[unequal], 0.5),
        n,
    )
    gate = _shift_effects(labelled, c_lab[labelled], b_lab[labelled], n, cfg)

    flags = np.full(n, -1) if disagree is None else _flags(disagree, "disagree", n)
    given = flags >= 0
    compared = np.flatnonzero(both_ok & (given | ((c_lab >= 0) & (b_lab >= 0))))
    differ = np.where(given[compared], flags[compared] == 1, c_lab[compared] != b_lab[compared])
    log_disagreement = (
        _at_times(compared, rate_log_evalues(differ, cfg.max_disagreement), n)
        if cfg.tests_disagreement and cfg.max_disagreement is not None
        else np.zeros(n)
    )
    log_tail = np.zeros(n)
    if cfg.max_tail_ratio is not None:
        pairs = np.stack([c_lat[pair_times], b_lat[pair_times]], axis=1).ravel()
        slow = _tail_slow(pairs, cfg.latency_quantile, 2)
        decisive = (slow[:, 0] == 1) != (slow[:, 1] == 1)
        null = cfg.max_tail_ratio / (1.0 + cfg.max_tail_ratio)
        log_tail = _tail_log_evalues(pair_times, decisive, slow[decisive, 0] == 1, null, n)
    return _decide_stream(
        log_errors, log_latency, log_tail, log_shift, gate, log_disagreement, n_candidate, cfg
    )


def _flags(value: Any, name: str, n: int) -> np.ndarray:
    array = as_array(value, name, ndim=1, min_size=0)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu" or not np.isin(array, (-1, 0, 1)).all():
        raise InvalidInput(f"'{name}' must be booleans or -1/0/1 (got {describe(array)})")
    if array.size != n:
        raise InvalidInput(f"'{name}' must have {n} entries (got {array.size})")
    return array.astype(np.int64)


# ------------------------------------------------------------------------ the monitor


def split_stream(
    rng: np.random.Generator,
    n: int,
    fraction: float,
    *,
    error_rate: float = 0.01,
    candidate_error_rate: float | None = None,
    latency_ratio: float = 1.0,
    classes: tuple[float, ...] = (0.5, 0.3, 0.2),
    candidate_classes: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic split-mode stream: routing, errors, log-normal latencies, classes."""
    arm = rng.random(n) < fraction
    cand_err = error_rate if candidate_error_rate is None else candidate_error_rate
    error = rng.random(n) < np.where(arm, cand_err, error_rate)
    latency = np.exp(rng.normal(np.log(0.01), 0.3, n)) * np.where(arm, latency_ratio, 1.0)
    base_labels = rng.choice(len(classes), n, p=classes)
    cand_labels = rng.choice(len(classes), n, p=candidate_classes or classes)
    return arm, error, latency, np.where(arm, cand_labels, base_labels)


def online_split(stream: tuple[np.ndarray, ...], **settings: Any) -> CanaryMonitor:
    """Feed a split stream to a `CanaryMonitor` one request at a time."""
    monitor = CanaryMonitor(CanaryPolicy(**settings))
    for arm, err, lat, lab in zip(*stream, strict=True):
        monitor.observe(candidate=bool(arm), error=bool(err), latency_s=float(lat), label=int(lab))
        if monitor.decision != "continue":
            break
    return monitor


#: Tests sharing alpha in the check's shadow mode at the defaults: stage 0's probe-error
#: test and stage 1's errors, latency, tail, shift and disagreement tests.
SHADOW_TESTS = 6


class TestCanaryMonitor:
    @pytest.mark.parametrize(
        ("seed", "fault"),
        [
            (0, {}),
            (1, {"candidate_error_rate": 0.2}),
            (2, {"latency_ratio": 2.0}),
            (3, {"candidate_classes": (0.2, 0.3, 0.5)}),
        ],
    )
    def test_online_and_vectorized_verdicts_agree(self, seed: int, fault: Any) -> None:
        """`observe` request by request reaches the decision `split_decision` computes."""
        stream = split_stream(np.random.default_rng(seed), 3000, 0.2, **fault)
        settings = {"traffic_fraction": 0.2, "n_candidate_requests": 400}
        monitor = online_split(stream, **settings)
        vectorized = split_decision(*stream, **settings)
        expected = monitor.decision if monitor.decision != "continue" else "inconclusive"
        assert expected == vectorized.decision
        assert monitor.reasons == vectorized.reasons
        assert monitor.n_requests == vectorized.n_requests

    @pytest.mark.parametrize("seed", [0, 1])
    def test_shadow_online_and_vectorized_verdicts_agree(self, seed: int) -> None:
        """`observe_pair` reaches the decision `shadow_decision` computes."""
        rng = np.random.default_rng(seed)
        n = 600
        c_err, b_err = rng.random(n) < 0.05 * (1 + seed), rng.random(n) < 0.05
        c_lat, b_lat = np.exp(rng.normal(0, 0.3, (2, n)))
        b_lab = rng.integers(0, 3, n)
        c_lab = np.where(rng.random(n) < 0.1 * (1 + 3 * seed), rng.integers(0, 3, n), b_lab)
        monitor = CanaryMonitor(
            CanaryPolicy(traffic_fraction=0.5, mode="shadow", n_candidate_requests=500)
        )
        for row in zip(c_err, b_err, c_lat, b_lat, c_lab, b_lab, strict=True):
            monitor.observe_pair(
                candidate_error=bool(row[0]),
                baseline_error=bool(row[1]),
                candidate_latency_s=float(row[2]),
                baseline_latency_s=float(row[3]),
                candidate_label=int(row[4]),
                baseline_label=int(row[5]),
            )
        vectorized = shadow_decision(
            c_err, b_err, c_lat, b_lat, c_lab, b_lab, traffic_fraction=0.5, n_candidate_requests=500
        )
        expected = monitor.decision if monitor.decision != "continue" else "inconclusive"
        assert (expected, monitor.reasons) == (vectorized.decision, vectorized.reasons)
        assert monitor.n_requests == vectorized.n_requests

    def test_shadow_disagreement_flags_online_and_vectorized_agree(self) -> None:
        """Explicit disagreement flags (-1: the labels decide) give the same verdict both ways."""
        rng = np.random.default_rng(14)
        n = 400
        ok, lat = np.zeros(n, bool), np.ones(n)
        labels = np.where(rng.random(n) < 0.2, -1, rng.integers(0, 3, n))  # -1: no class
        flags = np.where(rng.random(n) < 0.3, -1, (rng.random(n) < 0.25).astype(int))
        monitor = CanaryMonitor(CanaryPolicy(mode="shadow", n_candidate_requests=n))
        for label, flag in zip(labels, flags, strict=True):
            monitor.observe_pair(
                candidate_error=False,
                baseline_error=False,
                candidate_latency_s=1.0,
                baseline_latency_s=1.0,
                candidate_label=None if label < 0 else int(label),
                baseline_label=None if label < 0 else int(label),
                disagree=None if flag < 0 else bool(flag),
            )
        vectorized = shadow_decision(
            ok, ok, lat, lat, labels, labels, flags, n_candidate_requests=n
        )
        assert ("fail", ("disagreement",)) == (monitor.decision, monitor.reasons)
        assert (monitor.decision, monitor.reasons) == (vectorized.decision, vectorized.reasons)
        assert monitor.n_requests == vectorized.n_requests
        assert monitor.n_compared < monitor.n_requests  # no flag and no label: not compared

    def test_disagreement_is_judged_only_in_shadow_mode_with_a_limit(self) -> None:
        """Without max_disagreement the rate is counted but never fails the canary."""
        monitor = CanaryMonitor(
            CanaryPolicy(mode="shadow", n_candidate_requests=50, max_disagreement=None)
        )
        for i in range(50):
            monitor.observe_pair(
                candidate_error=False,
                baseline_error=False,
                candidate_latency_s=1.0,
                baseline_latency_s=1.0,
                candidate_label=i % 2,  # always another class, with the same class mix
                baseline_label=1 - i % 2,
            )
        assert ("pass", 1.0) == (monitor.decision, monitor.disagreement_rate)
        assert 4 == monitor.config.n_tests  # errors, latency, tail, shift
        assert 5 == CanaryMonitor(CanaryPolicy(mode="shadow")).config.n_tests
        assert 4 == CanaryMonitor(CanaryPolicy(mode="split")).config.n_tests
        assert 3 == CanaryPolicy(mode="split", max_tail_ratio=None).n_tests

    def test_shadow_evidence_reports_the_disagreement_rate(self) -> None:
        """The evidence has the rate, its confidence sequence and the alpha split."""
        monitor = CanaryMonitor(CanaryPolicy(mode="shadow", alpha=0.04, n_candidate_requests=100))
        for i in range(100):
            monitor.observe_pair(
                candidate_error=False,
                baseline_error=False,
                candidate_latency_s=1.0,
                baseline_latency_s=1.0,
                candidate_label=int(i % 20 == 0),
                baseline_label=0,
            )
        evidence = monitor.evidence()
        json.dumps(evidence)
        assert (100, 5, 0.05) == (
            evidence["disagreement_pairs"],
            evidence["disagreements"],
            evidence["disagreement_rate"],
        )
        low, high = evidence["disagreement_interval"]
        assert low < 0.05 < high
        assert (5, 0.008, 125.0) == (
            evidence["tests"],
            evidence["alpha_per_test"],
            evidence["evalue_threshold"],
        )

    def test_passes_once_the_candidate_served_the_planned_requests(self) -> None:
        """With nothing wrong the decision is PASS at the planned candidate sample."""
        monitor = online_split(
            split_stream(np.random.default_rng(8), 5000, 0.1),
            traffic_fraction=0.1,
            n_candidate_requests=200,
        )
        assert ("pass", 200) == (monitor.decision, monitor.n_candidate)

    def test_fails_on_candidate_only_errors_with_the_reason(self) -> None:
        """A candidate failing where the baseline never does fails on errors."""
        monitor = CanaryMonitor(CanaryPolicy(traffic_fraction=0.05))
        for _ in range(6):
            monitor.observe(candidate=True, error=True, latency_s=None, label=None)
        assert ("fail", ("errors",)) == (monitor.decision, monitor.reasons)

    def test_a_small_significant_shift_is_tolerated(self) -> None:
        """A detected shift whose PSI is below max_psi does not fail the canary."""
        rng = np.random.default_rng(9)
        stream = split_stream(
            rng, 6000, 0.5, error_rate=0.0, classes=(0.5, 0.5), candidate_classes=(0.4, 0.6)
        )
        monitor = online_split(stream, traffic_fraction=0.5, n_candidate_requests=2500, max_psi=0.1)
        assert "pass" == monitor.decision
        assert monitor.shift_tolerated
        strict = split_decision(
            *stream, traffic_fraction=0.5, n_candidate_requests=2500, max_psi=None
        )
        assert ("fail", ("shift",)) == (strict.decision, strict.reasons)

    def test_evidence_is_json_safe(self) -> None:
        """The evidence dict serializes to JSON and reports the latency interval."""
        monitor = online_split(
            split_stream(np.random.default_rng(10), 2000, 0.2),
            traffic_fraction=0.2,
            n_candidate_requests=100,
        )
        evidence = monitor.evidence()
        json.dumps(evidence)
        low, high = evidence["latency_ratio_interval"]
        assert low < evidence["latency_ratio"] < high


def naive_false_alarm(stream: tuple[np.ndarray, ...], level: float) -> bool:
    """Repeat three fixed-sample tests after every request; True if any ever rejects."""
    arm, error, latency, label = stream
    ok = ~error
    n_c, n_b = np.cumsum(arm), np.cumsum(~arm)
    e_c, e_b = np.cumsum(arm & error), np.cumsum(~arm & error)
    ready = (n_c >= 20) & (n_b >= 20)
    # errors: one-sided two-proportion z-test
    pooled = (e_c + e_b) / np.maximum(n_c + n_b, 1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(n_c, 1) + 1 / np.maximum(n_b, 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z_err = (e_c / np.maximum(n_c, 1) - e_b / np.maximum(n_b, 1)) / se
    # latency: one-sided Welch z-test on log-latency
    logl = np.log(latency)
    sc, sb = np.cumsum(np.where(arm & ok, logl, 0)), np.cumsum(np.where(~arm & ok, logl, 0))
    qc, qb = np.cumsum(np.where(arm & ok, logl**2, 0)), np.cumsum(np.where(~arm & ok, logl**2, 0))
    mc, mb = np.cumsum(arm & ok), np.cumsum(~arm & ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_c, mean_b = sc / mc, sb / mb
        var_c, var_b = qc / mc - mean_c**2, qb / mb - mean_b**2
        z_lat = (mean_c - mean_b) / np.sqrt(var_c / mc + var_b / mb)
    # classes: chi-square test of the 2 x C table
    onehot = np.eye(3)[label] * ok[:, None]
    tab_c, tab_b = np.cumsum(onehot * arm[:, None], 0), np.cumsum(onehot * ~arm[:, None], 0)
    total = tab_c + tab_b
    with np.errstate(invalid="ignore", divide="ignore"):
        exp_c = total * (tab_c.sum(1) / total.sum(1))[:, None]
        exp_b = total - exp_c
        chi2 = np.nansum((tab_c - exp_c) ** 2 / exp_c + (tab_b - exp_b) ** 2 / exp_b, axis=1)
    p = np.stack([stats.norm.sf(z_err), stats.norm.sf(z_lat), stats.chi2.sf(chi2, df=2)])
    return bool(np.any((np.nan_to_num(p, nan=1.0) < level / 3) & ready))


class TestStageOneSimulation:
    """The stage-1 verdict checked after every request, on simulated streams."""

    def test_false_alarm_rate_is_at_most_alpha_and_naive_peeking_is_not(self) -> None:
        """Over 200 identical-arm streams the verdict fails at most alpha of the time (3 of
        200; its exact upper bound too), naive peeking 103 of 200.

        The same streams judged by fixed-sample tests repeated after every request fail far
        more often than alpha.
        """
        rng = np.random.default_rng(2024)
        settings = {
            "traffic_fraction": 0.1,
            "alpha": 0.05,
            "n_candidate_requests": 1000,
            "max_latency_ratio": 1.0,  # the null on the boundary: the hardest case
            "max_psi": None,  # every significant shift fails
        }
        fails = naive = 0
        runs = 200
        for _ in range(runs):
            stream = split_stream(rng, 10000, 0.1)
            fails += split_decision(*stream, **settings).decision == "fail"
            naive += naive_false_alarm(stream, 0.05)
        assert stats.binomtest(fails, runs).proportion_ci(0.95).high <= 0.05
        assert naive / runs > 0.1
        # docs/checks/canary.md, "Why sequential tests", quotes these counts.
        assert (3, 103) == (fails, naive)

    @pytest.mark.parametrize(
        ("fault", "reason", "n", "settings"),
        [
            (
                {"error_rate": 0.02, "candidate_error_rate": 0.04},
                "errors",
                20000,
                {"n_candidate_requests": 2000},
            ),
            # A whole distribution 30% slower is also slow beyond the p95 more often: the
            # tail test names it first, or the latency-ratio test.
            ({"latency_ratio": 1.3}, "latency|tail", 10000, {"n_candidate_requests": 1000}),
            (
                {"candidate_classes": (0.3, 0.3, 0.4)},
                "shift",
                10000,
                {"n_candidate_requests": 1000},
            ),
        ],
        ids=["twice_the_error_rate", "latency_plus_30_percent", "shifted_classes"],
    )
    def test_power(self, fault: Any, reason: str, n: int, settings: Any) -> None:
        """Against each planted regression the verdict fails, naming it, in >= 80% of runs."""
        rng = np.random.default_rng(7)
        runs = 60
        caught = 0
        for _ in range(runs):
            decision = split_decision(
                *split_stream(rng, n, 0.1, **fault), traffic_fraction=0.1, **settings
            )
            named = set(reason.split("|")) & set(decision.reasons)
            caught += decision.decision == "fail" and bool(named)
        assert caught / runs >= 0.8

    @pytest.mark.parametrize("rate", [0.1, 0.05])
    def test_disagreement_false_alarms_at_most_its_share_of_alpha(self, rate: float) -> None:
        """At or below max_disagreement the disagreement test ever rejects in at most its
        share of alpha, alpha / 6 (the check's shadow mode at the defaults: stage 0 and five
        stage-1 tests), of 1,000 streams watched after every one of 500 pairs."""
        outcomes = np.random.default_rng(15).random((1000, 500)) < rate
        paths = rate_log_evalues(outcomes, 0.1)
        ever = (paths >= math.log(SHADOW_TESTS / 0.05)).any(axis=1)
        assert ever.mean() <= 0.05 / SHADOW_TESTS

    def test_shadow_verdict_false_alarms_at_most_alpha_at_the_disagreement_limit(self) -> None:
        """Over 200 shadow streams disagreeing on exactly max_disagreement of the pairs (and
        otherwise identical) the whole verdict fails at most alpha of the time."""
        rng = np.random.default_rng(16)
        n, runs = 2000, 200
        fails = 0
        for _ in range(runs):
            c_err, b_err = rng.random((2, n)) < 0.01
            c_lat, b_lat = np.exp(rng.normal(np.log(0.01), 0.3, (2, n)))
            b_lab = rng.integers(0, 3, n)
            other = (b_lab + rng.integers(1, 3, n)) % 3  # a uniformly chosen other class
            c_lab = np.where(rng.random(n) < 0.1, other, b_lab)
            decision = shadow_decision(
                c_err, b_err, c_lat, b_lat, c_lab, b_lab, n_candidate_requests=n
            )
            fails += decision.decision == "fail"
        assert fails / runs <= 0.05

    def test_disagreement_power_against_half_the_pairs(self) -> None:
        """A candidate disagreeing on half the pairs is caught in every one of 400 streams,
        after a median of at most 20 pairs and always within 100."""
        outcomes = np.random.default_rng(17).random((400, 100)) < 0.5
        hit = rate_log_evalues(outcomes, 0.1) >= math.log(SHADOW_TESTS / 0.05)
        assert hit.any(axis=1).all()
        first = hit.argmax(axis=1) + 1
        assert np.median(first) <= 20


class TestSizeGate:
    def test_at_the_limit_it_rejects_at_its_level(self) -> None:
        """One look at a true PSI equal to max_psi: rejected in about alpha of samples,
        where the plug-in PSI (biased upward) exceeds the limit in most of them."""
        rng = np.random.default_rng(3)
        base = np.array([0.5, 0.3, 0.2])
        cand = np.array([0.373, 0.3, 0.327])  # true PSI 0.1
        true_psi = float(np.sum((cand - base) * np.log(cand / base)))
        c = rng.multinomial(100, cand, size=20_000)
        b = rng.multinomial(1900, base, size=20_000)
        rejected = shift_exceeds(c, b, true_psi, 0.0125)
        assert 0.008 <= rejected.mean() <= 0.017
        plug_in = np.array([psi(x, y) for x, y in zip(c[:2000], b[:2000], strict=True)])
        assert (plug_in > true_psi).mean() > 0.5

    def test_the_interval_inverts_the_gate(self) -> None:
        """The interval's lower end is above a limit exactly when the gate rejects it."""
        for cand, base in [([300, 200], [200, 300]), ([60, 25, 15], [500, 300, 200])]:
            _, low, high = shift_interval(cand, base, 0.01)
            assert low < high
            for limit in (0.5 * low, 0.99 * low, 1.01 * low, 0.5 * (low + high)):
                assert shift_exceeds(cand, base, limit, 0.01) == (low > limit)

    def test_js_is_gated_on_its_own_scale(self) -> None:
        """A shift far above a JS limit is shown above it; one far below is not."""
        assert shift_exceeds([900, 100], [100, 900], 0.1, 0.01, measure="js")
        assert not shift_exceeds([510, 490], [490, 510], 0.1, 0.01, measure="js")
