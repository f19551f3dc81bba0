"""QualityCheck's verdicts hold their stated rates (issue 13, item 6).

The numbers are those of ``benchmarks/verdicts_quality.py`` (same functions, same settings,
same seeds), which docs/checks/quality.md quotes. Rates are judged on their exact
(Clopper-Pearson) binomial bounds.
"""

from __future__ import annotations

import functools

import attrs
import numpy as np
import pytest
from _benchmarks import load_benchmark

from mlchecks import NoWorseThan, Status
from mlchecks.checks.quality import QualityCheck

bench = load_benchmark("verdicts_quality")
HALF_ALPHA = bench.ALPHA / 2


@functools.cache
def floor_rates() -> dict[int, dict[str, float]]:
    """The benchmark's floor simulation (run once)."""
    result: dict[int, dict[str, float]] = bench.floor_pass_rates()
    return result


@functools.cache
def slice_coverage() -> list[dict[str, float]]:
    """The benchmark's slice-coverage simulation (run once)."""
    result: list[dict[str, float]] = bench.slice_coverage()
    return result


class TestFloors:
    @pytest.mark.parametrize("n", [30, 50, 100, 1000])
    def test_a_model_at_the_floor_passes_at_most_half_alpha(self, n: int) -> None:
        """Simulated at floor 0.9: the pass rate's exact upper bound is <= alpha / 2."""
        r = floor_rates()[n]
        assert bench.upper(r["cp_passes"], r["reps"]) <= HALF_ALPHA

    @pytest.mark.parametrize("n", [30, 50, 100, 1000])
    def test_the_worst_floor_is_within_half_alpha_exactly(self, n: int) -> None:
        """Over floors 0.5-0.995 the exact pass rate (binomial sums) is <= alpha / 2,
        where Wilson's exceeded it (0.0337 at n = 50)."""
        rates = floor_rates()
        assert rates[n]["cp_worst"] <= HALF_ALPHA + 1e-12
        assert rates[n]["wilson_worst"] > HALF_ALPHA
        assert rates[50]["wilson_worst"] == pytest.approx(0.0337, abs=5e-4)

    def test_the_check_judges_the_floor_on_the_exact_bound(self) -> None:
        """92 of 100 right neither shows accuracy >= 0.9 nor < 0.9; 80 of 100 shows < 0.9."""
        y = np.zeros(100, dtype=int)
        check = QualityCheck(
            labels=y,
            predictions=(np.arange(100) >= 92).astype(int),
            metric_limits={"accuracy": 0.9},
        )
        finding = check.run().finding("limit.accuracy")
        assert Status.WARN == finding.status
        assert "clopper-pearson" in finding.message
        worse = attrs.evolve(check, predictions=(np.arange(100) >= 80).astype(int))
        assert Status.FAIL == worse.run().finding("limit.accuracy").status


class TestSliceIntervals:
    def test_covers_at_few_and_many_disagreements(self) -> None:
        """Coverage >= 1 - alpha (its exact lower bound) in every case, ~3 disagreements too."""
        coverage = slice_coverage()
        assert coverage[0]["mean_disagreements"] == pytest.approx(3.0, abs=0.1)
        for case in coverage:
            assert 1.0 - bench.upper(case["exact_misses"], case["reps"]) >= 1 - bench.ALPHA

    def test_the_wald_interval_did_not(self) -> None:
        """The interval used before covered about 86% at ~3 disagreements."""
        first = slice_coverage()[0]
        assert first["wald_misses"] / first["reps"] > 0.1


class TestOverallTest:
    def test_a_same_quality_candidate_rarely_fails(self) -> None:
        """Default test, n = 2,000, margin 0.01: false FAIL's exact upper bound <= alpha."""
        counts = bench.overall_verdicts(bench.SAME_QUALITY)
        assert bench.upper(counts["fail"], counts["reps"]) <= bench.ALPHA
        assert counts["pass"] > 0
        assert counts["warn"] > 0

    def test_a_five_point_regression_is_caught(self) -> None:
        """Power to FAIL a 5-point regression at n = 2,000: lower bound >= 0.99."""
        counts = bench.overall_verdicts(bench.REGRESSION)
        assert bench.lower(counts["fail"], counts["reps"]) >= 0.99

    def test_the_whole_check_agrees(self) -> None:
        """40 whole QualityCheck runs of each: no same-quality FAIL, every regression FAILs."""
        rng = np.random.default_rng(bench.SEED)
        n = bench.OVERALL_N
        verdicts: dict[str, list[Status]] = {"same": [], "worse": []}
        for key, (cand_only, base_only) in (
            ("same", bench.SAME_QUALITY),
            ("worse", bench.REGRESSION),
        ):
            for _ in range(40):
                y = rng.integers(0, 2, n)
                u = rng.random(n)
                base_ok = (u >= cand_only) & (u < 0.9 + cand_only)
                cand_ok = (u < cand_only) | ((u >= cand_only + base_only) & (u < 0.9 + cand_only))
                check = QualityCheck(
                    labels=y,
                    predictions=np.where(cand_ok, y, 1 - y),
                    baseline_predictions=np.where(base_ok, y, 1 - y),
                    max_regression={"accuracy": NoWorseThan(abs=bench.OVERALL_MARGIN)},
                )
                verdicts[key].append(check.run().finding("regression.accuracy").status)
        assert Status.FAIL not in verdicts["same"]
        assert all(s is Status.FAIL for s in verdicts["worse"])

    def test_a_zero_margin_is_refused(self) -> None:
        """The old trap (abs=0 under non-inferiority fails 97-99% of same-quality runs)."""
        from mlchecks.exceptions import InvalidInput

        with pytest.raises(InvalidInput, match="never pass"):
            QualityCheck(
                labels=[0, 1],
                predictions=[0, 1],
                baseline_predictions=[0, 1],
                max_regression={"accuracy": NoWorseThan(abs=0)},
            )


class TestDocumentedNumbers:
    """docs/checks/quality.md quotes these numbers; they are the benchmark's, re-measured."""

    def test_floor_numbers(self) -> None:
        """Wilson's worst pass rates and the simulated Clopper-Pearson rates at floor 0.9."""
        rates = floor_rates()
        wilson = {30: 0.0363, 50: 0.0337, 100: 0.0305, 1000: 0.0268}
        simulated = {30: 0.0, 50: 0.0055, 100: 0.0236, 1000: 0.0232}
        for n in bench.FLOOR_NS:
            assert rates[n]["wilson_worst"] == pytest.approx(wilson[n], abs=5e-5)
            assert rates[n]["cp_passes"] / rates[n]["reps"] == pytest.approx(simulated[n], abs=5e-5)

    def test_slice_coverage_numbers(self) -> None:
        """The coverage table of the exact conditional and the Wald interval."""
        exact = [1.0, 0.9997, 0.9952, 0.9957, 0.9939]
        wald = [0.8593, 0.9681, 0.9528, 0.9469, 0.9492]
        for case, e, w in zip(slice_coverage(), exact, wald, strict=True):
            assert 1 - case["exact_misses"] / case["reps"] == pytest.approx(e, abs=5e-5)
            assert 1 - case["wald_misses"] / case["reps"] == pytest.approx(w, abs=5e-5)

    def test_overall_numbers(self) -> None:
        """Same quality: 0 FAIL, 29.4% PASS; 5-point regression: every run FAILs."""
        same = bench.overall_verdicts(bench.SAME_QUALITY)
        worse = bench.overall_verdicts(bench.REGRESSION)
        assert (same["fail"], same["reps"]) == (0, 2000)
        assert same["pass"] / same["reps"] == pytest.approx(0.2935, abs=5e-5)
        assert worse["fail"] == worse["reps"]
