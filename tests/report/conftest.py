"""A suite result with every status, shared by the report tests."""

from __future__ import annotations

import attrs
import pytest

from mlchecks import AtLeast, AtMost, ErrorInfo, Finding, Result, Status, Suite, SuiteResult
from mlchecks.check import Context
from mlchecks.testing import StaticCheck

#: The status each check of `mixed_result` ends in.
EXPECTED: dict[str, Status] = {
    "reproducibility": Status.PASS,
    "quality": Status.FAIL,
    "crashes": Status.ERROR,
    "canary": Status.SKIP,
    "latency": Status.WARN,
}

XSS_NAME = "<script>alert(1)</script>"
XSS_MESSAGE = "<img src=x onerror=alert(1)>"


@attrs.frozen
class AccuracyCheck:
    """Judges a fixed accuracy against a floor, with metrics and drill-down details."""

    name: str
    accuracy: float
    floor: AtLeast
    rubric: int | None = None
    slices: int = 60

    def run(self, context: Context | None = None) -> Result:
        findings = [
            self.floor.judge("accuracy", self.accuracy),
            AtMost(0.01).judge("churn", 0.0),
        ]
        per_slice = [
            {"slice": i, "accuracy": self.accuracy - i / 1000, "n": 100} for i in range(self.slices)
        ]
        return Result.from_findings(
            self.name,
            findings,
            rubric=self.rubric,
            metrics={"accuracy": self.accuracy, "n_examples": 6000.0, "auc": float("nan")},
            details={
                "per_slice": per_slice,
                "latency_quantiles": {"p50": 0.012, "p99": 0.25},
                "top_examples": [3, 17, 42],
                "nested": {"runs": [{"seed": 0, "hashes": ["a1", "b2"]}], "note": None},
                "device": "cpu",
            },
        )


def load_model() -> None:
    """Stands in for user code that fails deep inside a check."""
    raise RuntimeError("boom: the checkpoint file is truncated")


@attrs.frozen
class CrashingCheck:
    """A check whose run raises, so its result carries a real traceback."""

    name: str = "crashes"
    rubric: int | None = None

    def run(self, context: Context | None = None) -> Result:
        load_model()
        raise AssertionError("unreachable")


@attrs.frozen
class SkippedCheck:
    """A check that cannot run here and says why."""

    name: str = "canary"
    rubric: int | None = 6

    def run(self, context: Context | None = None) -> Result:
        return Result(self.name, Status.SKIP, "skipped: no serving endpoint is configured")


@pytest.fixture
def expected() -> dict[str, Status]:
    """The status each check of `mixed_result` ends in."""
    return dict(EXPECTED)


@pytest.fixture
def mixed_result() -> SuiteResult:
    """PASS, FAIL, ERROR, SKIP and WARN checks, run through a real Suite."""
    suite = Suite(
        [
            StaticCheck("reproducibility", Status.PASS, rubric=1, summary="churn 0 is within 0.01"),
            AccuracyCheck("quality", 0.81, AtLeast(0.9), rubric=4),
            CrashingCheck(),
            SkippedCheck(),
            AccuracyCheck("latency", 0.85, AtLeast(0.9, severity="warn"), rubric=7),
        ],
        name="demo",
        manual={3: "pipeline runbook: https://example.com/runbook"},
    )
    return suite.run(progress=False)


@pytest.fixture
def hostile_result() -> SuiteResult:
    """Names and messages full of markup, pipes, newlines and control characters."""
    finding = Finding(
        "x|y", Status.FAIL, 1.0, "<= 0 | & \"'", f"{XSS_MESSAGE} | two\nlines \x00\x07\x1b"
    )
    bad = Result(
        XSS_NAME,
        Status.FAIL,
        f"summary with | a pipe\nand {XSS_MESSAGE} \x0b`code`",
        findings=[finding],
        details={XSS_NAME: [{"<k>": XSS_MESSAGE}], "nested": {"a": [XSS_MESSAGE]}},
        metrics={"<m>": 1.0},
    )
    crashed = Result(
        "crash\x01ed",
        Status.ERROR,
        f"check could not run: {XSS_MESSAGE}",
        error=ErrorInfo(
            "Bad<Error>",
            f"msg \x00 {XSS_MESSAGE}",
            f"Traceback (most recent call last):\n  {XSS_NAME}\x07\nBad<Error>: msg ```",
        ),
    )
    return SuiteResult(results=[bad, crashed], name=f"suite {XSS_NAME}")
