"""Every check's summary opens with a plain sentence a newcomer reads without statistics.

The demo runs healthy and with each planted fault, as ``mlchecks demo`` does; the first
sentence of each summary (up to the first ". ", ": ", ";" or " (") must name no
statistical term, and the statistics still follow it.
"""

from __future__ import annotations

import re

import pytest

from mlchecks import Result, Status
from mlchecks.demo import FAULTS
from mlchecks.demo.suite import build_suite

STATISTICAL_TERMS = (
    "p =",
    "p-value",
    "tau",
    "Kendall",
    "CI",
    "confidence",
    "interval",
    "e-value",
    "Holm",
    "TOST",
    "McNemar",
    "DeLong",
    "bootstrap",
    "significan",
    "alpha",
    "sequence",
    "test statistic",
    "z =",
    "t =",
    "sigma",
    "variance",
    "standard error",
    "Bonferroni",
    "BH",
)

_END = re.compile(r"\. |: |;| \(")


def first_sentence(text: str) -> str:
    """``text`` up to its first ". ", ": ", ";" or " (" (all of it when there is none)."""
    match = _END.search(text)
    return text if match is None else text[: match.start()]


def statistical_terms(sentence: str) -> list[str]:
    """The terms of `STATISTICAL_TERMS` in ``sentence`` (case-sensitive for the short ones)."""
    found = []
    for term in STATISTICAL_TERMS:
        if len(term) <= 4 and term.isupper():
            hit = re.search(rf"\b{re.escape(term)}\b", sentence) is not None
        else:
            hit = term.lower() in sentence.lower()
        if hit:
            found.append(term)
    return found


def _problems(result: Result) -> list[str]:
    """Each summary or shown finding message of ``result`` whose first sentence is not plain."""
    texts = [("summary", result.summary)]
    texts += [
        (f"finding {f.name}", f.message)
        for f in result.findings
        if f.status in (Status.WARN, Status.FAIL) and result.summary.startswith(f.message)
    ]
    out = []
    for where, text in texts:
        terms = statistical_terms(first_sentence(text))
        if terms:
            out.append(f"{result.check} {where}: {terms} in {first_sentence(text)!r}")
    return out


@pytest.fixture(scope="module")
def healthy() -> list[Result]:
    return list(build_suite(fault=None, seed=0).run(progress=False))


class TestFirstSentence:
    def test_splits_at_the_first_break(self) -> None:
        """The first sentence ends at ". ", ": ", ";" or " (", whichever comes first."""
        assert "The loss went down" == first_sentence("The loss went down (41%). Kendall tau")
        assert "a" == first_sentence("a: b. c")
        assert "no break" == first_sentence("no break")

    def test_finds_terms_as_words(self) -> None:
        """Short upper-case terms match whole words only; the others match anywhere."""
        assert ["CI", "Holm"] == statistical_terms("95% CI, Holm-adjusted")
        assert [] == statistical_terms("CIRCLE and BHUTAN")
        assert ["significan"] == statistical_terms("a significant drop")


class TestPlainSummaries:
    def test_healthy_demo(self, healthy: list[Result]) -> None:
        """Every check of the healthy demo opens its summary with a plain sentence."""
        assert len(healthy) == 8
        assert [] == [p for r in healthy for p in _problems(r)]

    def test_healthy_demo_keeps_its_statistics(self, healthy: list[Result]) -> None:
        """The statistics still follow the plain sentence."""
        summaries = {r.check: r.summary for r in healthy}
        assert "Kendall tau" in summaries["loss_decreases"]
        assert "p = " in summaries["loss_decreases"]

    @pytest.mark.parametrize("fault", sorted(FAULTS))
    def test_faulty_demo(self, fault: str) -> None:
        """The check a planted fault fails opens its summary and finding with a plain sentence."""
        suite = build_suite(fault=fault, seed=0)
        target = FAULTS[fault].check
        (check,) = [c for c in suite.checks if c.name == target]
        result = check.run()
        assert Status.FAIL == result.status, result.summary
        assert [] == _problems(result)
        assert result.summary[:1].isupper(), result.summary
