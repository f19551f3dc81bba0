"""CanaryJudge's verdicts on simulated traffic records hold their stated rates (issue 15).

The simulations are those of ``benchmarks/verdicts_canary_judge.py`` (same functions,
settings and seeds); docs/canary_platforms.md quotes the table it prints, which this test
re-computes and finds there verbatim. Logs of 20,000 requests whose routing share steps
from 5% to 50%, unknown to the judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _benchmarks import load_benchmark

pytestmark = pytest.mark.slow  # the simulation takes minutes on 2 cores

sim = load_benchmark("verdicts_canary_judge")
DOC = (Path(__file__).parents[2] / "docs" / "canary_platforms.md").read_text()


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in sim.run_all()}


def test_the_docs_quote_the_measured_table(results: dict[str, dict[str, Any]]) -> None:
    assert sim.table(list(results.values())) in DOC


def test_an_aa_log_does_not_fail(results: dict[str, dict[str, Any]]) -> None:
    """No FAIL in at least 95% of A/A logs of 20,000 requests."""
    _, rate, low, _ = sim.rate(results["A/A"])
    assert rate <= 0.05
    assert low < 0.05


@pytest.mark.parametrize(
    ("name", "least"),
    [
        ("errors 1% -> 2%", 0.6),
        ("errors 2% -> 4%", 0.85),
        ("latency 1.3x", 1.0),
        ("class shift", 1.0),
        ("inverted labels", 1.0),
    ],
)
def test_faults_fail_naming_the_finding(
    results: dict[str, dict[str, Any]], name: str, least: float
) -> None:
    _, rate, _, _ = sim.rate(results[name])
    assert rate >= least


def test_an_all_errored_log_never_passes(results: dict[str, dict[str, Any]]) -> None:
    result = results["all errors"]
    assert result["verdicts"] == {"insufficient data": result["reps"]}
