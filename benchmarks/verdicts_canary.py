"""CanaryCheck's verdicts, simulated: stage 0's probe-error test and stage 1's size gate.

Scenarios, all at `CanaryCheck`'s defaults (100 probes, ``max_probe_errors=0``, split mode,
``traffic_fraction=0.05``, ``n_candidate_requests=500``, ``alpha=0.05``, ``max_psi=0.1``):
``alpha`` is split five ways in split mode (stage 0's probe-error test and stage 1's errors,
latency, tail-latency and shift tests, ``alpha / 5 = 0.01`` each).

- **A/A**: both versions fail each request independently with probability 1% (or 0.1%),
  latencies log-normal alike, classes (0.5, 0.3, 0.2) alike. A stream is one whole canary:
  100 paired probes (stage 0) then the live trickle until the candidate served 500 requests
  (stage 1). A false FAIL is a FAIL of either stage. The old stage-0 rule (FAIL on any
  probe error) is reported beside it.
- **stage-0 power**: the candidate fails 5% of requests, the baseline 1%.
- **tail latency** (Kayenta's blind spot): the candidate's median latency equals the
  baseline's but its spread is larger, so its p99 is 2x or 5x the baseline's; and A/A with
  heavy-tailed (Pareto) latencies for the tail test's level.
- **sparse errors** (Kayenta's case): the baseline never fails, the candidate fails 0.5% or
  1% of requests.
- **size gate**: the candidate's classes shifted (mass moved from class 0 to class 2) to a
  true PSI of 0.041, 0.063 (below ``max_psi``: tolerated), 0.1 (at it) or 0.3 (above it:
  must FAIL).

Stage 0 is `probe_error_decision` and stage 1 the kernels `CanaryMonitor` runs
(`share_log_evalues`, `betting_log_evalues`, `slow_flags` with `tail_share`,
`categorical_share_log_evalues` and the size gate `shift_exceeds`), vectorized over each
stream: the decision `CanaryMonitor` takes request by request
(tests/checks/test_canary_policy.py checks the two agree).
tests/verdicts/test_canary.py runs these functions with the same settings and asserts the
numbers; it also runs the whole check on an `InProcessServer` for a few A/A canaries.

Run: ``python benchmarks/verdicts_canary.py`` (prints the table rows; about a minute).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import beta

from mlchecks.checks._canary_policy import SHIFT_GATE_LOOKS, shift_exceeds
from mlchecks.checks._canary_probe import FAIL_CODE, probe_error_decision
from mlchecks.checks._canary_tail import slow_flags, tail_share
from mlchecks.stats.sequential import (
    betting_log_evalues,
    categorical_share_log_evalues,
    share_log_evalues,
)

ALPHA = 0.05
N_TESTS = 5  # stage 0's probe-error test + stage 1's errors, latency, tail, shift (split)
SHARE = ALPHA / N_TESTS
N_PROBES = 100
FRACTION = 0.05
N_CANDIDATE = 500
MAX_PSI = 0.1
MAX_LATENCY_RATIO = 1.2
MAX_TAIL_RATIO = 2.0
LATENCY_QUANTILE = 0.95
LATENCY_SIGMA = 0.3  # the baseline's log-normal latency spread
CLIP = math.log(10.0)
BASELINE_CLASSES = np.array([0.5, 0.3, 0.2])
SEED = 20261207


def shifted_classes(target_psi: float) -> np.ndarray:
    """The baseline's classes with mass moved from class 0 to class 2: true PSI ``target``."""
    if target_psi <= 0.0:
        return BASELINE_CLASSES.copy()
    base = BASELINE_CLASSES

    def excess(t: float) -> float:
        c = np.array([base[0] - t, base[1], base[2] + t])
        return float(np.sum((c - base) * np.log(c / base))) - target_psi

    t = brentq(excess, 0.0, base[0] - 1e-9)
    return np.array([base[0] - t, base[1], base[2] + t])


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact two-sided binomial interval of ``k`` successes in ``n``."""
    tail = (1.0 - level) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


def stage0_codes(
    candidate_rate: float, baseline_rate: float, reps: int, rng: np.random.Generator
) -> np.ndarray:
    """Stage 0's probe-error verdicts on ``reps`` canaries of `N_PROBES` paired probes."""
    cand = rng.random((reps, N_PROBES)) < candidate_rate
    base = rng.random((reps, N_PROBES)) < baseline_rate
    codes: np.ndarray = probe_error_decision(
        N_PROBES,
        cand.sum(axis=1),
        (cand & ~base).sum(axis=1),
        (base & ~cand).sum(axis=1),
        max_errors=0,
        alpha=SHARE,
        paired=True,
    )
    return codes


def stage1_fails(
    rng: np.random.Generator,
    *,
    error_rate: float,
    candidate_classes: np.ndarray,
    candidate_error_rate: float | None = None,
    candidate_sigma: float = LATENCY_SIGMA,
    pareto: bool = False,
) -> str | None:
    """Which stage-1 test FAILs one split-mode trickle first (None: it PASSes).

    The tests are checked in turn on the whole stream, so with several regressions the
    name is the first in report order that fired, not the earliest in time.
    """
    n = int(N_CANDIDATE / FRACTION * 1.5)
    arm = rng.random(n) < FRACTION
    stop = int(np.searchsorted(np.cumsum(arm), N_CANDIDATE)) + 1  # the PASS request
    arm = arm[:stop]
    c_rate = error_rate if candidate_error_rate is None else candidate_error_rate
    err = rng.random(stop) < np.where(arm, c_rate, error_rate)
    if pareto:  # heavy tails alike: Pareto (shape 1.5) latencies on both arms
        log_lat = math.log(0.01) + np.log1p(rng.pareto(1.5, stop))
    else:
        sigma = np.where(arm, candidate_sigma, LATENCY_SIGMA)
        log_lat = math.log(0.01) + rng.normal(0.0, 1.0, stop) * sigma
    u = rng.random(stop)[:, None]
    labels = np.where(
        arm,
        (u > np.cumsum(candidate_classes)[:-1]).sum(axis=1),
        (u > np.cumsum(BASELINE_CLASSES)[:-1]).sum(axis=1),
    )
    threshold = math.log(1.0 / SHARE)
    # errors: the candidate's share of errors
    err_arm = arm[err]
    if err_arm.size and share_log_evalues(err_arm, FRACTION, sparse=True).max() >= threshold:
        return "errors"
    # latency: each successful candidate request with the latest unpaired baseline success
    ok = ~err
    cand_ok, base_ok = np.flatnonzero(arm & ok), np.flatnonzero(~arm & ok)
    prev = np.searchsorted(base_ok, cand_ok) - 1
    paired = prev >= 0
    paired[1:] &= prev[1:] != prev[:-1]
    diffs = np.clip(log_lat[cand_ok[paired]] - log_lat[base_ok[prev[paired]]], -CLIP, CLIP)
    if diffs.size:
        log_e = betting_log_evalues(
            diffs, math.log(MAX_LATENCY_RATIO), low=-CLIP, high=CLIP, alternative="greater"
        )
        if log_e.max() >= threshold:
            return "latency"
    # tail: which version each slow request (beyond the pooled running quantile) came from
    flags = slow_flags(log_lat[ok], LATENCY_QUANTILE)  # log is monotone: same order
    slow_arm = arm[ok][flags == 1]
    null = tail_share(FRACTION, MAX_TAIL_RATIO)
    if slow_arm.size and share_log_evalues(slow_arm, null).max() >= threshold:
        return "tail"
    # shift: the class test, then the size gate where it rejects
    codes, hits = labels[ok], arm[ok]
    log_shift = categorical_share_log_evalues(codes, hits, FRACTION)
    times = np.flatnonzero(log_shift >= threshold)
    if not times.size:
        return None
    onehot = np.eye(BASELINE_CLASSES.size)[codes]
    cand = np.cumsum(onehot * hits[:, None], axis=0)[times]
    base = np.cumsum(onehot * ~hits[:, None], axis=0)[times]
    crossed = np.any(shift_exceeds(cand, base, MAX_PSI, SHARE / SHIFT_GATE_LOOKS))
    return "shift" if crossed else None


def rate(k: int, n: int) -> dict[str, Any]:
    low, high = clopper_pearson(k, n)
    return {"k": k, "n": n, "rate": k / n, "low": low, "high": high}


def whole_canary(error_rate: float, reps: int, seed: int = SEED) -> dict[str, Any]:
    """A/A canaries, both stages: the false FAIL rate, and the old stage-0 rule's."""
    rng = np.random.default_rng(seed)
    stage0 = stage0_codes(error_rate, error_rate, reps, rng) == FAIL_CODE
    classes = BASELINE_CLASSES
    stage1 = np.array(
        [
            stage1_fails(rng, error_rate=error_rate, candidate_classes=classes) is not None
            for _ in range(reps)
        ]
    )
    old = 1.0 - (1.0 - error_rate) ** N_PROBES  # any probe error failed the old rule
    return {
        "whole": rate(int((stage0 | stage1).sum()), reps),
        "stage0": rate(int(stage0.sum()), reps),
        "stage1": rate(int(stage1.sum()), reps),
        "old_stage0": old,
    }


def stage0_rates(reps: int = 200_000, seed: int = SEED + 1) -> dict[str, dict[str, Any]]:
    """Stage 0 alone, many canaries: false FAIL at 1% and 0.1% shared errors; power."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (c, b) in {
        "aa_1pct": (0.01, 0.01),
        "aa_0.1pct": (0.001, 0.001),
        "power_5_vs_1": (0.05, 0.01),
        "power_10_vs_1": (0.10, 0.01),
    }.items():
        out[name] = rate(int((stage0_codes(c, b, reps, rng) == FAIL_CODE).sum()), reps)
    return out


def size_gate(target_psi: float, reps: int, seed: int = SEED + 2) -> dict[str, Any]:
    """Stage 1 with the candidate's classes shifted to a true PSI of ``target_psi``."""
    rng = np.random.default_rng(seed + int(target_psi * 1000))
    classes = shifted_classes(target_psi)
    fails = sum(
        stage1_fails(rng, error_rate=0.01, candidate_classes=classes) is not None
        for _ in range(reps)
    )
    return rate(int(fails), reps)


def p99_sigma(p99_ratio: float) -> float:
    """The log-normal spread whose p99 is ``p99_ratio`` times the baseline's (same median)."""
    z99 = 2.3263478740408408
    return (math.log(p99_ratio) + z99 * LATENCY_SIGMA) / z99


def stage1_scenario(name: str, reps: int, seed: int = SEED + 3) -> dict[str, Any]:
    """Stage 1 on a Kayenta case: ``{"fail": rate, "by": {test: count}}``.

    ``name``: ``"tail_2x"``/``"tail_5x"`` (p99 2x/5x, median unchanged), ``"tail_aa_pareto"``
    (A/A, heavy-tailed latencies, shared 1% errors), ``"sparse_0.5pct"``/``"sparse_1pct"``
    (the baseline never fails, the candidate fails 0.5%/1% of requests).
    """
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    settings: dict[str, Any] = {
        "tail_2x": {"error_rate": 0.01, "candidate_sigma": p99_sigma(2.0)},
        "tail_5x": {"error_rate": 0.01, "candidate_sigma": p99_sigma(5.0)},
        "tail_aa_pareto": {"error_rate": 0.01, "pareto": True},
        "sparse_0.5pct": {"error_rate": 0.0, "candidate_error_rate": 0.005},
        "sparse_1pct": {"error_rate": 0.0, "candidate_error_rate": 0.01},
    }[name]
    by: dict[str, int] = {}
    for _ in range(reps):
        test = stage1_fails(rng, candidate_classes=BASELINE_CLASSES, **settings)
        if test is not None:
            by[test] = by.get(test, 0) + 1
    return {"fail": rate(sum(by.values()), reps), "by": by}


#: The settings the test asserts: canaries per scenario.
REPS = {
    "whole_1pct": 600,
    "whole_0.1pct": 300,
    "gate_below": 300,
    "gate_above": 200,
    "kayenta": 200,
}
#: The Kayenta cases, in the order the docs show them.
KAYENTA = ("tail_2x", "tail_5x", "tail_aa_pareto", "sparse_0.5pct", "sparse_1pct")
#: Size-gate scenarios: true PSI -> the REPS entry.
GATE = {0.041: "gate_below", 0.063: "gate_below", 0.1: "gate_below", 0.3: "gate_above"}


def cell(r: dict[str, Any]) -> str:
    """A rate and its exact 95% interval as docs/checks/canary.md shows it (an en dash
    between the bounds): ``1.67 % (0.543`` en dash ``3.85 %)``."""

    def pct(x: float) -> str:
        return f"{100 * x:.3g}"

    return f"{pct(r['rate'])} % ({pct(r['low'])}\N{EN DASH}{pct(r['high'])} %)"


def percent(r: dict[str, Any]) -> str:
    return f"{r['rate']:.2%} ({r['k']}/{r['n']}; 95% CI {r['low']:.2%}-{r['high']:.2%})"


def main() -> None:
    print(
        f"alpha {ALPHA}, {N_TESTS} tests at {SHARE:g} each; gate level {SHARE / SHIFT_GATE_LOOKS:g}"
    )
    for error_rate, key in ((0.01, "whole_1pct"), (0.001, "whole_0.1pct")):
        r = whole_canary(error_rate, REPS[key])
        print(
            f"A/A {error_rate:.1%} shared errors, whole canary false FAIL {percent(r['whole'])}"
            f" [stage 0 {percent(r['stage0'])}, stage 1 {percent(r['stage1'])};"
            f" the old stage 0 rule: {r['old_stage0']:.1%}]"
        )
    for name, r in stage0_rates().items():
        print(f"stage 0 {name}: FAIL {percent(r)}")
    for target, key in GATE.items():
        print(f"size gate, true PSI {target}: FAIL {percent(size_gate(target, REPS[key]))}")
    for name in KAYENTA:
        r = stage1_scenario(name, REPS["kayenta"])
        print(f"stage 1, {name}: FAIL {percent(r['fail'])} by {r['by']}")


if __name__ == "__main__":
    main()
