"""LossDecreasesCheck's trend verdict holds its level (issue 13, item 5).

The numbers are those of ``benchmarks/verdicts_loss_trend.py`` (same functions, same
settings, same seeds), which docs/checks/loss_decreases.md and docs/stats.md quote. The
simulation runs the kernel the check calls, vectorised; a few whole curves and whole checks
confirm that the vectorised decision is the one `loss_trend` and `LossDecreasesCheck` make.
False-alarm rates are judged on their exact (Clopper-Pearson) upper 95% bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _benchmarks import load_benchmark
from _curves import CurveTrainer

from mlchecks import Status
from mlchecks.checks.training import LossDecreasesCheck
from mlchecks.stats.trend import block_steps, loss_trend

ROOT = Path(__file__).resolve().parents[2]


bench = load_benchmark("verdicts_loss_trend")


@pytest.fixture(scope="module")
def alarms() -> dict[tuple[float, int, float], dict[str, Any]]:
    """The benchmark's false-alarm simulation (flat curves plus AR(1) noise)."""
    result: dict[tuple[float, int, float], dict[str, Any]] = bench.false_alarms()
    return result


@pytest.fixture(scope="module")
def power() -> dict[tuple[float, int, float], dict[str, float]]:
    """The benchmark's power simulation (a 2.0 -> 0.5 decay plus AR(1) noise)."""
    result: dict[tuple[float, int, float], dict[str, float]] = bench.power()
    return result


@pytest.mark.slow
class TestFalseAlarms:
    @pytest.mark.parametrize("alpha", bench.ALPHAS)
    @pytest.mark.parametrize("n", bench.WINDOWS)
    def test_level_holds_for_every_rho(
        self, alarms: dict[tuple[float, int, float], dict[str, Any]], n: int, alpha: float
    ) -> None:
        """Flat curves are declared decreasing at most alpha of the time, rho 0 to 0.95:
        the exact upper 95% bound of the rate is within 1.2 alpha."""
        for rho in bench.RHOS:
            cell = alarms[(alpha, n, rho)]
            assert bench.REPS == cell["reps"]
            assert cell["high"] <= 1.2 * alpha, (n, rho, cell)

    def test_numbers_quoted_in_the_docs(
        self, alarms: dict[tuple[float, int, float], dict[str, Any]]
    ) -> None:
        """docs/checks/loss_decreases.md shows the benchmark's alpha 0.01 table verbatim,
        and the worst upper bounds over every window and autocorrelation."""
        doc = (ROOT / "docs" / "checks" / "loss_decreases.md").read_text()
        assert bench.alarm_table(alarms) in doc
        worst = bench.worst_bounds(alarms)
        assert (0.0442, 0.0112) == (round(worst[0.05], 4), round(worst[0.01], 4))
        assert "at most 0.0112 at alpha 0.01 and 0.0442 at alpha 0.05" in " ".join(doc.split())
        stats = " ".join((ROOT / "docs" / "stats.md").read_text().split())
        assert "0.0112" in stats

    def test_white_noise_is_judged_by_blocks_from_60_steps(
        self, alarms: dict[tuple[float, int, float], dict[str, Any]]
    ) -> None:
        """The block test refuses only what it must: white noise is judged by blocks at 60
        steps and more, strongly autocorrelated noise mostly goes to the slope test."""
        for alpha in bench.ALPHAS:
            for n in (60, 100, 200, 500):
                assert alarms[(alpha, n, 0.0)]["judged"] >= 0.99
            assert alarms[(alpha, 60, 0.95)]["judged"] <= 0.02


@pytest.mark.slow
class TestPower:
    def test_white_noise_decay_is_found_from_60_steps(
        self, power: dict[tuple[float, int, float], dict[str, float]]
    ) -> None:
        """2.0 -> 0.5 decay plus white noise (sd 0.15): found at least 99.5% of the time from
        60 steps at alpha 0.01 (and 0.05)."""
        for alpha in bench.ALPHAS:
            for n in (60, 100, 200, 500):
                assert power[(alpha, n, 0.0)]["power"] >= 0.995, (alpha, n)

    def test_autocorrelated_decay_is_found_with_enough_steps(
        self, power: dict[tuple[float, int, float], dict[str, float]]
    ) -> None:
        """With lag-1 correlation 0.5 the decay is found >= 99% of the time from 200 steps,
        with 0.8 from 500 steps; a strongly correlated short decay (smooth, like boosting
        rounds) is found by the slope test."""
        for alpha in bench.ALPHAS:
            assert power[(alpha, 200, 0.5)]["power"] >= 0.99
            assert power[(alpha, 500, 0.8)]["power"] >= 0.99
        assert power[(0.01, 12, 0.9)]["power"] >= 0.45
        assert power[(0.01, 12, 0.9)]["judged"] == 0.0

    def test_power_table_in_the_docs(
        self, power: dict[tuple[float, int, float], dict[str, float]]
    ) -> None:
        """docs/checks/loss_decreases.md shows the benchmark's alpha 0.01 power table."""
        doc = (ROOT / "docs" / "checks" / "loss_decreases.md").read_text()
        assert bench.power_table(power) in doc


class TestKernelIsTheCheck:
    @pytest.mark.parametrize(("n", "rho"), [(60, 0.0), (60, 0.5), (100, 0.8), (200, 0.9)])
    def test_vectorised_decision_equals_loss_trend(self, n: int, rho: float) -> None:
        """`bench.decide` on a batch of curves equals `loss_trend` curve by curve."""
        rng = np.random.default_rng([7, n])
        curves = 1.0 + bench.ar1(rng, n, rho, 40)
        curves[:20] += np.linspace(0.5, 0.0, n)  # half of them fall
        for alpha in bench.ALPHAS:
            decreasing, judged = bench.decide(curves, alpha)
            for row, curve in enumerate(curves):
                trend = loss_trend(curve, alpha=alpha)
                assert (bool(decreasing[row]), bool(judged[row])) == (
                    trend.decreasing(alpha),
                    trend.judgeable,
                )

    def test_block_steps_vectorised_equals_scalar(self) -> None:
        """The array form of `block_steps` gives the scalar form's values."""
        rhos = np.linspace(0.0, 0.99, 100)
        assert [block_steps(float(r)) for r in rhos] == list(block_steps(rhos))

    def test_whole_check_on_flat_and_falling_curves(self) -> None:
        """The check PASSES the trend only where the kernel declares a decrease, FAILS where
        the block means do not go down at all, and WARNS (inconclusive) otherwise."""
        rng = np.random.default_rng(11)
        cases = [
            (1.0 + bench.ar1(rng, 60, 0.0, 1)[0], 0.01),
            (1.0 + bench.ar1(rng, 60, 0.95, 1)[0], 0.01),
            (bench.falling_curves(rng, 200, 0.5, 1)[0], 0.01),
            (bench.falling_curves(rng, 60, 0.9, 1)[0], 0.05),
            (bench.falling_curves(rng, 12, 0.9, 1)[0], 0.01),  # short and smooth: slope
            (1.0 - 0.005 * np.arange(20) + 0.2 * (-1.0) ** np.arange(20), 0.01),  # noisy
        ]
        seen = set()
        for curve, alpha in cases:
            check = LossDecreasesCheck(
                trainer=CurveTrainer(curve), batches=[None], n_steps=len(curve), alpha=alpha
            )
            finding = check.run().finding("loss_trend")
            decreasing, _ = bench.decide(curve[None, :], alpha)
            if decreasing[0]:
                expected = Status.PASS
            elif loss_trend(curve, alpha=alpha).statistic >= 0:
                expected = Status.FAIL
            else:
                expected = Status.WARN
                assert "inconclusive" in finding.message.lower()
            assert expected == finding.status, finding.message
            seen.add(expected)
        assert {Status.PASS, Status.FAIL, Status.WARN} == seen
