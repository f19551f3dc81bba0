"""ReproducibilityCheck's churn verdict: its false FAIL rate, power and rerun stability.

The simulations are those of ``benchmarks/verdicts_reproducibility.py`` with the same
settings (its numbers are quoted in docs/checks/reproducibility.md): reruns of two
`TrainingRun` objects of 10,000 synthetic predictions whose true churn is 0.2%, 1% (the
default ``max_churn``) or 3%, judged by the whole check, and many more reruns at 1% judged
by the check's decision function for an exact bound on the false FAIL rate.
"""

from __future__ import annotations

import numpy as np
import pytest
from _benchmarks import load_benchmark

from mlchecks import ReproducibilityCheck, Status, TrainingRun
from mlchecks.checks._repro_tasks import rate_status

sim = load_benchmark("verdicts_reproducibility")


def upper(k: int, n: int) -> float:
    """The upper end of the exact two-sided 95% binomial CI of ``k / n``."""
    return float(sim.clopper_pearson(k, n)[1])


def lower(k: int, n: int) -> float:
    """The lower end of the exact two-sided 95% binomial CI of ``k / n``."""
    return float(sim.clopper_pearson(k, n)[0])


@pytest.fixture(scope="module")
def at_limit() -> list[Status]:
    """300 reruns of the whole check whose true churn equals the limit (1%)."""
    return list(sim.simulate_check(sim.LIMIT, sim.CHECK_REPS[sim.LIMIT]))


def test_settings_match_the_docs() -> None:
    """The docs quote n = 10,000, max_churn 0.01, alpha 0.05 and these repetitions."""
    assert (10_000, 0.01, 0.05) == (sim.N, sim.LIMIT, sim.ALPHA)
    assert {0.01: 300, 0.002: 150, 0.03: 150} == sim.CHECK_REPS
    assert 100_000 == sim.KERNEL_REPS


@pytest.mark.slow
def test_true_churn_at_the_limit_is_mostly_inconclusive(at_limit: list[Status]) -> None:
    """At true churn = limit no PASS/FAIL flip between consecutive reruns (<= 5% promised).

    Measured: PASS 18, WARN 270, FAIL 12 of 300; 0 flips in 299 consecutive pairs.
    """
    counts = {s: sim.rate(at_limit, s)[0] for s in (Status.PASS, Status.WARN, Status.FAIL)}
    assert {Status.PASS: 18, Status.WARN: 270, Status.FAIL: 12} == counts
    k, n = sim.flips(at_limit)
    assert (0, 299) == (k, n)
    assert upper(k, n) <= 0.05
    assert round(upper(k, n), 3) == 0.012
    # The point-estimate verdict of 0.1 FAILed 41-47% here; now FAIL is at most alpha.
    assert upper(counts[Status.FAIL], 300) <= 0.07


@pytest.mark.slow
def test_low_churn_passes_and_high_churn_fails() -> None:
    """True churn 0.2% PASSes in 150 of 150 reruns, 3% FAILs in 150 of 150 (CI lower >= 0.97)."""
    low = sim.simulate_check(0.002, sim.CHECK_REPS[0.002])
    high = sim.simulate_check(0.03, sim.CHECK_REPS[0.03])
    assert (150, 150) == sim.rate(low, Status.PASS)
    assert (150, 150) == sim.rate(high, Status.FAIL)
    assert lower(150, 150) >= 0.97


def test_false_fail_rate_at_the_limit_is_at_most_alpha() -> None:
    """The decision function at true churn = limit: false FAIL 4,175 of 100,000 (<= alpha).

    True churn at the limit is the worst case of "true churn <= limit": the exact binomial
    upper bound of the false FAIL rate, 0.0430, is below alpha = 0.05. PASS/FAIL flips
    between consecutive reruns: 405 of 99,999.
    """
    statuses = sim.simulate_decisions(sim.LIMIT, sim.KERNEL_REPS)
    k, n = sim.rate(statuses, Status.FAIL)
    assert (4175, 100_000) == (k, n)
    assert upper(k, n) <= sim.ALPHA
    assert (0.04175, 0.0405, 0.043) == (k / n, round(lower(k, n), 4), round(upper(k, n), 4))
    flipped, pairs = sim.flips(statuses)
    assert (405, 99_999) == (flipped, pairs)
    assert upper(flipped, pairs) <= 0.05
    # Below the limit the false FAIL rate only drops.
    half = sim.simulate_decisions(sim.LIMIT / 2, 20_000)
    assert 0 == sim.rate(half, Status.FAIL)[0]


def test_decision_function_is_what_the_check_uses() -> None:
    """The whole check and the decision function agree on the same churn counts."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=sim.N)
    for count in (0, 83, 84, 117, 118, 300):
        moved = probs.copy()
        moved[:count] = np.roll(probs[:count], 1, axis=1)
        runs = [TrainingRun(predictions=probs, name="a"), TrainingRun(predictions=moved, name="b")]
        check = ReproducibilityCheck(runs, max_churn=sim.LIMIT, alpha=sim.ALPHA, metrics=())
        found = check.run().finding("churn").status
        assert rate_status(count, sim.N, sim.LIMIT, sim.ALPHA) is found, count


def test_examples_needed_to_pass_without_churn() -> None:
    """With no churn (not bit-identical runs), PASS needs at least 299 examples at 0.01."""
    assert Status.WARN is rate_status(0, 298, sim.LIMIT, sim.ALPHA)
    assert Status.PASS is rate_status(0, 299, sim.LIMIT, sim.ALPHA)
    # 0% and 15% churn on 2,000 examples: bounds far from the limit on either side.
    assert Status.PASS is rate_status(0, 2_000, sim.LIMIT, sim.ALPHA)
    assert Status.FAIL is rate_status(300, 2_000, sim.LIMIT, sim.ALPHA)
