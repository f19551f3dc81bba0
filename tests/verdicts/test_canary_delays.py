"""The canary's detection delays that docs/checks/canary.md quotes (issue 13, item 7).

The simulations are those of ``benchmarks/verdicts_canary_delays.py`` (same functions,
settings and seeds): the check's own `CanaryMonitor`, built from the policy `CanaryCheck`
builds at its defaults, fed one request (or mirrored pair) at a time. The docs must quote
exactly the sentences the script renders from these measurements, so a change of the policy
(another test sharing ``alpha``, another gate level) fails here until the docs are
regenerated (``python benchmarks/verdicts_canary_delays.py`` prints them). Power is judged
on the exact (Clopper-Pearson) lower 95% bound of the share caught within the budget.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import pytest
from _benchmarks import load_benchmark

from mlchecks.checks.canary import CanaryCheck
from mlchecks.serving import InProcessServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "checks" / "canary.md"


sim = load_benchmark("verdicts_canary_delays")


@functools.cache
def measured() -> dict[str, Any]:
    result: dict[str, Any] = sim.measure()
    return result


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("mode", ["split", "shadow"])
def test_policy_is_the_checks_own(mode: Literal["split", "shadow"]) -> None:
    """The simulated policy is CanaryCheck's at its defaults: stage 1's tests share what is
    left of alpha after stage 0's probe-error test (one more Bonferroni share)."""
    policy = sim.policy(mode)
    check = CanaryCheck(
        InProcessServer(loader=lambda version: None),
        "candidate",
        probe_inputs=[0.0],
        traffic=[],
        mode=mode,
    )
    assert policy.mode == mode
    assert policy.traffic_fraction == check.traffic_fraction == 0.05
    assert policy.alpha_per_test == pytest.approx(check.alpha / (policy.n_tests + 1))
    assert policy.max_latency_ratio == 1.2
    assert policy.max_psi == 0.1
    assert policy.max_disagreement == 0.1


def test_a_gross_disagreement_is_caught_within_a_few_dozen_pairs() -> None:
    """The cheapest scenario, as a quick check of the harness: half the pairs disagree."""
    result = sim.disagreement(0.5)
    assert result.caught == result.n == sim.REPS["disagree_0.5"]
    assert result.median <= 20
    assert result.longest <= 60
    assert set(result.reasons) == {"disagreement"}


@pytest.mark.slow
def test_docs_quote_the_measured_delays() -> None:
    """docs/checks/canary.md contains every sentence the script renders, verbatim (up to
    line wrapping)."""
    doc = _flat(DOCS.read_text(encoding="utf-8"))
    rendered = sim.sentences(measured())
    missing = {key: text for key, text in rendered.items() if _flat(text) not in doc}
    assert not missing, (
        "docs/checks/canary.md does not quote these measurements; regenerate with "
        f"`python benchmarks/verdicts_canary_delays.py`: {missing}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "low", "reasons"),
    [
        ("errors", 0.85, {"errors"}),  # measured 79/80 within 2,000 (lower bound 93.2%)
        ("latency", 0.9, {"latency", "tail"}),  # 80/80 (95.5%)
        ("shift", 0.6, {"shift"}),  # 12/12 within 1,000 (73.5%)
        ("disagree_0.5", 0.95, {"disagreement"}),  # 200/200 within 500 (98.2%)
        ("disagree_0.2", 0.9, {"disagreement"}),  # 80/80 within 1,000 (95.5%)
        ("disagree_0.15", 0.85, {"disagreement"}),  # 50/50 within 2,000 (92.9%)
    ],
)
def test_power_within_the_budget(scenario: str, low: float, reasons: set[str]) -> None:
    """Each planted regression is caught within its budget, for the right reason, in at
    least ``low`` of canaries (exact lower 95% bound)."""
    result = measured()[scenario]
    assert result.interval[0] >= low, result.summary()
    assert set(result.reasons) <= reasons, result.summary()
    assert result.median <= result.budget / 2, result.summary()


@pytest.mark.slow
def test_at_the_disagreement_limit_the_verdict_holds_its_level() -> None:
    """At a disagreement rate equal to max_disagreement the shadow verdict FAILs no more
    often than the data allow at its level: the exact lower 95% bound of the FAIL rate is
    below the disagreement test's share of alpha (measured 0 of 80)."""
    result = measured()["level_0.1"]
    assert result.interval[0] <= sim.policy("shadow").alpha_per_test, result.summary()
