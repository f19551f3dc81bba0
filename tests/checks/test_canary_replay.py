"""The canary's numbers on a recorded replay equal those of the code before it was made faster.

``tests/data/canary_replay.json.gz`` was written by ``tests/checks/_canary_replay.py`` with
the per-request bookkeeping as it was before issue 17's speed-ups (betting wealth folded in
one loop, the share test's log-gamma ratios, the lazy size gate): every log e-value,
decision, confidence sequence and evidence entry must still be the same, to 1e-12 relative.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest
from _canary_replay import judge, kernels, replay

FIXTURE = Path(__file__).parents[1] / "data" / "canary_replay.json.gz"
REL = 1e-12


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def mismatches(got: Any, want: Any, where: str = "") -> list[str]:
    """Where ``got`` differs from ``want``: floats beyond `REL`, anything else at all."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [f"{where}: keys {sorted(got) if isinstance(got, dict) else got!r}"]
        return [m for k in want for m in mismatches(got[k], want[k], f"{where}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: {got!r} != {want!r}"]
        return [m for i, w in enumerate(want) for m in mismatches(got[i], w, f"{where}[{i}]")]
    if isinstance(want, float) and not isinstance(got, bool) and isinstance(got, int | float):
        if math.isnan(want):
            return [] if math.isnan(got) else [f"{where}: {got!r} != nan"]
        if got == want or math.isclose(got, want, rel_tol=REL, abs_tol=REL):
            return []
        return [f"{where}: {got!r} != {want!r}"]
    if isinstance(want, str) and isinstance(got, str) and where.endswith(".message"):
        # A failing or warning finding's message now opens with a plain sentence (issue
        # 18); the recorded message, with every number, must follow it unchanged.
        return [] if got == want or got.endswith(f": {want}") else [f"{where}: {got!r}"]
    return [] if got == want and type(got) is type(want) else [f"{where}: {got!r} != {want!r}"]


def test_every_monitor_reports_the_recorded_numbers(expected: dict[str, Any]) -> None:
    """Five scenarios in three modes and four settings: log e-values every 50 requests,
    every request's decision, the evidence and intervals every 1,000 requests."""
    for key, want in expected["monitors"].items():
        scenario, mode, variant = key.split("-")
        got = replay(scenario, mode, variant)
        assert got["decisions"] == want["decisions"], key
        assert mismatches(got, want, key) == []


def test_the_online_tests_report_the_recorded_log_evalues(expected: dict[str, Any]) -> None:
    """Share tests of every alternative, betting, rate, categorical and routed tests, and
    the running confidence sequence, fed streams one observation at a time."""
    assert mismatches(kernels(), expected["kernels"], "kernels") == []


def test_canary_judge_results_are_unchanged(expected: dict[str, Any]) -> None:
    """A split and a shadow record judged end to end: findings, details and metrics."""
    assert mismatches(judge(), expected["judge"], "judge") == []


def test_the_comparison_sees_a_difference() -> None:
    """The tolerance is not vacuous: a relative change of 1e-10 is reported."""
    assert mismatches([1.0, "a"], [1.0 + 1e-10, "a"]) != []
    assert mismatches({"x": math.nan}, {"x": math.nan}) == []
