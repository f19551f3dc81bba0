from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from mlchecks.exceptions import InvalidInput
from mlchecks.stats.inference import (
    discordant_counts,
    mcnemar_exact,
    mcnemar_exact_counts,
    normal_pvalue,
    paired_accuracy_difference,
    paired_accuracy_difference_counts,
    tost_paired_accuracy,
    tost_paired_accuracy_counts,
)

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "gpu_training_runs.npz"


@pytest.fixture(scope="module")
def gpu_correctness() -> tuple[np.ndarray, np.ndarray]:
    """Per-example correctness of the two nondeterministic GPU runs on the test set."""
    with np.load(FIXTURE) as data:
        labels = data["y_test"]
        a = data["gpu_nondet_seed0_a__probs"].argmax(axis=1) == labels
        b = data["gpu_nondet_seed0_b__probs"].argmax(axis=1) == labels
    return a, b


def random_pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.random(n) < 0.8
    flip = rng.random(n) < 0.15
    return a, np.where(flip, ~a, a)


class TestMcNemarExact:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_matches_scipy_binomtest_on_brute_force_counts(self, seed: int) -> None:
        """p is binomtest(b, b + c, 0.5) with b, c counted example by example."""
        a, b = random_pair(300, seed)
        only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
        only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
        expected = scipy.stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
        result = mcnemar_exact(a, b)
        assert (only_a, only_b, 300) == (result.b, result.c, result.n)
        assert expected == pytest.approx(result.pvalue, rel=1e-12)
        assert float(min(only_a, only_b)) == result.statistic

    @pytest.mark.parametrize("alternative", ["greater", "less"])
    def test_one_sided_alternatives(self, alternative: str) -> None:
        """'greater' (a more accurate) and 'less' use the matching binomtest tail."""
        expected = scipy.stats.binomtest(12, 20, 0.5, alternative=alternative).pvalue
        assert expected == mcnemar_exact_counts(12, 8, 100, alternative=alternative).pvalue  # type: ignore[arg-type]

    def test_no_discordant_examples_gives_p_one(self) -> None:
        """Identical correctness: nothing distinguishes the models."""
        same = np.array([1, 0, 1, 1], dtype=bool)
        assert (1.0, 0, 0) == mcnemar_exact(same, same)[1:4]

    def test_a_single_example(self) -> None:
        """n = 1 with one discordant pair gives p = 1 (one coin flip proves nothing)."""
        assert 1.0 == mcnemar_exact([1], [0]).pvalue

    def test_gpu_fixture(self, gpu_correctness: tuple[np.ndarray, np.ndarray]) -> None:
        """Two nondeterministic GPU runs differ in accuracy by 0.0058, exact p about 0.033."""
        result = mcnemar_exact(*gpu_correctness)
        assert (388, 330, 10_000) == (result.b, result.c, result.n)
        assert 0.0333 == pytest.approx(result.pvalue, abs=1e-4)

    def test_nan_is_rejected(self) -> None:
        """NaN correctness is an error naming the argument."""
        with pytest.raises(InvalidInput, match="'correct_b' must be finite"):
            mcnemar_exact([1.0, 0.0], [1.0, float("nan")])

    def test_values_other_than_zero_and_one_are_rejected(self) -> None:
        """Correctness is boolean; a probability by mistake is caught."""
        with pytest.raises(InvalidInput, match="'correct_a' must be booleans or 0/1"):
            mcnemar_exact([0.7, 1.0], [1, 1])

    def test_different_lengths_are_rejected(self) -> None:
        """Both models must be scored on the same examples."""
        with pytest.raises(InvalidInput, match="'correct_a' and 'correct_b' must have the same"):
            mcnemar_exact([1, 0, 1], [1, 0])

    def test_empty_input_is_rejected(self) -> None:
        """At least one example is needed."""
        with pytest.raises(InvalidInput, match="'correct_a' must have at least 1 rows"):
            mcnemar_exact([], [])

    def test_counts_beyond_n_are_rejected(self) -> None:
        """b + c cannot exceed n."""
        with pytest.raises(InvalidInput, match="'b' \\+ 'c' must be <= n=5"):
            mcnemar_exact_counts(4, 3, 5)

    def test_unknown_alternative_is_rejected(self) -> None:
        """The error lists the alternatives."""
        with pytest.raises(InvalidInput, match="'alternative' must be one of 'two-sided'"):
            mcnemar_exact_counts(1, 2, alternative="bigger")  # type: ignore[arg-type]


class TestPairedAccuracyDifference:
    @pytest.mark.parametrize("seed", [0, 1])
    def test_standard_error_is_that_of_the_mean_per_example_difference(self, seed: int) -> None:
        """se**2 equals the population variance of a_i - b_i over n (the brute-force form)."""
        a, b = random_pair(500, seed)
        d = a.astype(float) - b.astype(float)
        result = paired_accuracy_difference(a, b, confidence=0.9)
        expected_se = math.sqrt(np.var(d) / d.size)
        z = scipy.stats.norm.ppf(0.95)
        assert d.mean() == pytest.approx(result.difference)
        assert expected_se == pytest.approx(result.standard_error, rel=1e-12)
        assert d.mean() - z * expected_se == pytest.approx(result.ci.low)
        assert d.mean() + z * expected_se == pytest.approx(result.ci.high)

    def test_gpu_fixture(self, gpu_correctness: tuple[np.ndarray, np.ndarray]) -> None:
        """The difference is 0.0058 with 90% CI about [0.0014, 0.0102]."""
        result = paired_accuracy_difference(*gpu_correctness, confidence=0.90)
        assert 0.0058 == pytest.approx(result.difference, abs=1e-12)
        assert 0.0014 == pytest.approx(result.ci.low, abs=5e-5)
        assert 0.0102 == pytest.approx(result.ci.high, abs=5e-5)

    def test_identical_models_give_a_zero_width_interval(self) -> None:
        """Constant input (same correctness): difference 0, se 0, CI [0, 0]."""
        same = np.ones(10, dtype=bool)
        result = paired_accuracy_difference(same, same)
        assert (0.0, (0.0, 0.0), 0.0, 10) == result

    def test_a_single_example(self) -> None:
        """n = 1: the difference is exact (+1), the se is 0."""
        assert (1.0, 0.0) == paired_accuracy_difference([1], [0])[::2]

    def test_counts_and_arrays_agree(self) -> None:
        """The counts form gives the same answer as the per-example form."""
        a, b = random_pair(200, 5)
        assert paired_accuracy_difference_counts(
            *discordant_counts(a, b)
        ) == paired_accuracy_difference(a, b)

    def test_zero_n_is_rejected(self) -> None:
        """n must be at least 1."""
        with pytest.raises(InvalidInput, match="'n' must be an integer >= 1"):
            paired_accuracy_difference_counts(0, 0, 0)


class TestTostPairedAccuracy:
    def test_gpu_fixture_is_not_equivalent_within_one_point(
        self, gpu_correctness: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """The 90% CI [0.0014, 0.0102] pokes out of ±0.01, so equivalence is not shown."""
        result = tost_paired_accuracy(*gpu_correctness, margin=0.01, alpha=0.05)
        assert not result.equivalent
        assert result.pvalue > 0.05
        assert 0.0102 == pytest.approx(result.ci.high, abs=5e-5)

    @pytest.mark.parametrize(
        ("b", "c", "margin"), [(40, 35, 0.02), (40, 35, 0.004), (90, 10, 0.05)]
    )
    def test_pvalue_is_the_larger_one_sided_z_test(self, b: int, c: int, margin: float) -> None:
        """p = max(P(Z > (d + m)/se), P(Z < (d - m)/se)), and equivalent iff p < alpha."""
        n = 1000
        d = (b - c) / n
        se = math.sqrt((b + c) / n**2 - (b - c) ** 2 / n**3)
        expected = max(
            scipy.stats.norm.sf((d + margin) / se), scipy.stats.norm.cdf((d - margin) / se)
        )
        result = tost_paired_accuracy_counts(b, c, n, margin=margin, alpha=0.05)
        assert expected == pytest.approx(result.pvalue, rel=1e-9)
        assert (expected < 0.05) == result.equivalent

    def test_identical_models_are_equivalent(self) -> None:
        """Constant input: difference 0 with se 0 is inside any positive margin."""
        same = np.ones(5, dtype=bool)
        result = tost_paired_accuracy(same, same, margin=0.01)
        assert (True, 0.0) == (result.equivalent, result.pvalue)

    @pytest.mark.parametrize(
        ("margin", "match"),
        [
            (0.0, "'margin' must be a finite number > 0"),
            (-0.1, "'margin' must be a finite number > 0"),
            (float("inf"), "'margin' must be a finite number > 0"),
            (True, "'margin' must be a number > 0 \\(got True that is a bool\\)"),
        ],
    )
    def test_margin_must_be_positive_and_finite(self, margin: float, match: str) -> None:
        """A margin of 0, negative, infinite or a bool is rejected."""
        with pytest.raises(InvalidInput, match=match):
            tost_paired_accuracy_counts(1, 1, 10, margin=margin)

    def test_alpha_must_be_below_one_half(self) -> None:
        """alpha in (0, 0.5) so that the 1 - 2 alpha interval exists."""
        with pytest.raises(InvalidInput, match="'alpha' must be in \\(0, 0.5\\)"):
            tost_paired_accuracy_counts(1, 1, 10, margin=0.1, alpha=0.5)


class TestNormalPvalue:
    @pytest.mark.parametrize("estimate", [-0.03, 0.0, 0.012, 0.05])
    def test_matches_scipy_norm(self, estimate: float) -> None:
        """The three alternatives match the normal tails."""
        z = (estimate - 0.01) / 0.008
        assert scipy.stats.norm.sf(z) == pytest.approx(
            normal_pvalue(estimate, 0.008, 0.01, alternative="greater")
        )
        assert scipy.stats.norm.cdf(z) == pytest.approx(
            normal_pvalue(estimate, 0.008, 0.01, alternative="less")
        )
        assert 2 * scipy.stats.norm.sf(abs(z)) == pytest.approx(
            normal_pvalue(estimate, 0.008, 0.01)
        )

    def test_zero_standard_error_treats_the_estimate_as_exact(self) -> None:
        """With se = 0 the p-value is 0 beyond the null and 1 otherwise."""
        assert 0.0 == normal_pvalue(0.2, 0.0, 0.1, alternative="greater")
        assert 1.0 == normal_pvalue(0.1, 0.0, 0.1, alternative="greater")

    def test_nan_estimate_is_rejected(self) -> None:
        """A NaN estimate is an error."""
        with pytest.raises(InvalidInput, match="must be finite"):
            normal_pvalue(float("nan"), 0.1)
