"""QualityCheck's ROC AUC from one sort per model equals the per-slice DeLong test."""

from __future__ import annotations

import numpy as np
import pytest

from mlchecks.checks import QualityCheck
from mlchecks.checks._quality_eval import Evaluation
from mlchecks.exceptions import InvalidInput
from mlchecks.stats.paired import metric_estimate, paired_difference
from mlchecks.stats.sliced import encode_slicings


def evaluation(
    dtype: type, n: int = 3_000, seed: int = 0
) -> tuple[Evaluation, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p_cand: np.ndarray = np.clip(np.round(0.5 * y + rng.random(n) * 0.6, 2), 0, 1).astype(dtype)
    p_base: np.ndarray = np.clip(np.round(0.4 * y + rng.random(n) * 0.6, 1), 0, 1).astype(dtype)
    cand, base = np.column_stack([1 - p_cand, p_cand]), np.column_stack([1 - p_base, p_base])
    region = rng.choice(np.array(["east", "west", "north", "tiny", "pure"]), n)
    region[region == "tiny"] = "east"
    region[:2], y[:2] = "tiny", [0, 1]  # tiny: one example of each class
    y[region == "pure"] = 1  # pure: positives only
    slicings = encode_slicings({"region": region}, n)
    ev = Evaluation(y, cand, base, slicings, "classification", ["roc_auc"], 200, rng)
    return ev, y, cand, base, slicings["region"].codes


class TestRocAucPass:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_every_slice_equals_paired_difference(self, dtype: type) -> None:
        """AUCs bit for bit, standard errors and p-values to rounding, errors word for word."""
        ev, y, cand, base, codes = evaluation(dtype)
        errors = 0
        for code in range(int(codes.max()) + 1):
            rows = np.flatnonzero(codes == code)
            if min(y[rows].sum(), (1 - y[rows]).sum()) < 2:
                with pytest.raises(InvalidInput) as want:
                    paired_difference("roc_auc", y[rows], cand[rows, 1], base[rows, 1])
                with pytest.raises(InvalidInput) as raised:
                    ev.in_slice("roc_auc", "region", code)
                assert str(want.value) == str(raised.value)
                errors += 1
                continue
            expected = paired_difference("roc_auc", y[rows], cand[rows, 1], base[rows, 1])
            got = ev.in_slice("roc_auc", "region", code)
            assert (expected.candidate, expected.baseline) == (got.candidate, got.baseline)
            assert (expected.n, expected.method, expected.bounds) == (got.n, got.method, got.bounds)
            assert expected.standard_error == pytest.approx(got.standard_error, rel=1e-12)
            assert expected.pvalue == pytest.approx(got.pvalue, rel=1e-9, abs=1e-300)
        assert 2 == errors  # "tiny" and "pure"
        expected = paired_difference("roc_auc", y, cand, base)
        got = ev.overall("roc_auc")
        assert expected.statistic == got.statistic
        assert expected.standard_error == pytest.approx(got.standard_error, rel=1e-12)

    def test_estimate_equals_metric_estimate(self) -> None:
        """The candidate's AUC and DeLong interval, as `metric_estimate` gives them."""
        ev, y, cand, _, _ = evaluation(np.float32)
        expected = metric_estimate("roc_auc", y, cand)
        got = ev.estimate("roc_auc", 0.95)
        assert (expected.statistic, expected.n, expected.method) == (
            got.statistic,
            got.n,
            got.method,
        )
        assert expected.confidence_interval == pytest.approx(got.confidence_interval, rel=1e-12)

    def test_check_fails_a_planted_regression_in_one_slice(self) -> None:
        """A candidate that ranks one region at random FAILs there and names it."""
        rng = np.random.default_rng(3)
        n = 20_000
        y = rng.integers(0, 2, n)
        region = rng.choice(np.array(["a", "b", "c"]), n)
        base = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
        cand = np.where(region == "c", rng.random(n), base)
        result = QualityCheck(
            labels=y,
            predictions=cand,
            baseline_predictions=base,
            slices={"region": region},
            max_regression={"roc_auc": 0.01},
        ).run()
        assert "FAIL" == result.status.label
        assert "region=c" in str(result)
