"""The delta-method standard error of paired confusion metrics (`paired_confusion`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mlchecks.stats.intervals import bootstrap_counts
from mlchecks.stats.paired import DELTA_METHOD, confusion_statistic, paired_confusion

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import verdicts_confusion_se as verdicts


def joint_table(classes: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    cand = np.where(rng.random(n) < 0.7, y, rng.integers(0, classes, n))
    base = np.where(rng.random(n) < 0.6, cand, np.where(rng.random(n) < 0.7, y, cand))
    joint = np.zeros((classes, classes, classes), dtype=np.int64)
    np.add.at(joint, (y, cand, base), 1)
    return joint


class TestDeltaMethod:
    @pytest.mark.parametrize(
        ("name", "classes", "n"),
        [
            ("f1", 2, 200),
            ("precision", 2, 2_000),
            ("recall", 2, 300),
            ("f1_macro", 3, 300),
            ("precision_macro", 5, 3_000),
            ("recall_macro", 4, 1_000),
        ],
    )
    def test_equals_the_count_bootstraps_limit(self, name: str, classes: int, n: int) -> None:
        """The standard error is the count bootstrap's to within its Monte Carlo error."""
        joint = joint_table(classes, n, seed=classes)
        stat = confusion_statistic(name)
        boot = bootstrap_counts(
            joint,
            lambda t: stat(t.sum(axis=-1)) - stat(t.sum(axis=-2)),
            n_resamples=8_000,
            rng=0,
        )
        res = paired_confusion(name, joint)
        assert DELTA_METHOD == res.method
        # 8,000 resamples estimate a standard error to about 0.8% (1 sigma).
        assert boot.standard_error == pytest.approx(res.standard_error, rel=0.04)

    def test_identical_models_and_one_class_have_zero_standard_error(self) -> None:
        """No disagreement, or a binary metric with class 1 absent: nothing can vary."""
        same = np.zeros((2, 2, 2), dtype=np.int64)
        same[0, 0, 0], same[1, 1, 1], same[1, 0, 0] = 30, 20, 5
        assert paired_confusion("f1", same).standard_error == 0.0
        only_zero = np.zeros((1, 1, 1), dtype=np.int64)
        only_zero[0, 0, 0] = 9
        res = paired_confusion("f1", only_zero)
        assert (0.0, 0.0) == (res.statistic, res.standard_error)

    def test_draws_nothing_from_the_generator(self) -> None:
        """Deterministic: the generator passed in is left as it was."""
        rng = np.random.default_rng(5)
        paired_confusion("f1_macro", joint_table(4, 500, 1), rng=rng)
        assert np.random.default_rng(5).random() == rng.random()


class TestVerdicts:
    """The rates of benchmarks/verdicts_confusion_se.py (delta method), same seeds."""

    @pytest.mark.parametrize("setting", range(len(verdicts.SETTINGS)))
    def test_false_alarms_and_coverage(self, setting: int) -> None:
        """Same-quality models: about 5% false alarms; a worse candidate: about 95% coverage."""
        name, classes, rows = verdicts.SETTINGS[setting]
        reps = 1_000
        same = verdicts.rates(
            name, classes, rows, verdicts.SAME, reps, verdicts.SEED + setting, bootstrap=False
        )
        worse = verdicts.rates(
            name,
            classes,
            rows,
            verdicts.WORSE,
            reps,
            verdicts.SEED + 100 + setting,
            bootstrap=False,
        )
        # 1,000 repetitions: a rate of 0.05 has a standard error of about 0.007 (3 sigma).
        assert 0.025 <= same["delta_reject"] <= 0.08
        assert 0.925 <= worse["delta_cover"] <= 0.975
