"""Checks never give a silent verdict on bad input (issue 16, item 5)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mlchecks import Status
from mlchecks.checks.quality import QualityCheck
from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
from mlchecks.checks.training import CheckpointRestoreCheck
from mlchecks.demo import DemoSystem, MLPTrainer, make_trainer
from mlchecks.exceptions import InvalidInput

BATCHES = DemoSystem(seed=0).batches(0)[:40]
PROBS = np.tile([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]], (50, 1))


class DivergesAt25(MLPTrainer):
    """The demo trainer whose loss is NaN from optimizer step 25 on (restores included)."""

    def train_step(self, batch: Any) -> float:
        loss = super().train_step(batch)
        return math.nan if self._t > 25 else loss


def diverges_at_25(seed: int) -> MLPTrainer:
    """A fresh `DivergesAt25` like the demo's `make_trainer`."""
    base = make_trainer(seed)
    trainer = DivergesAt25.__new__(DivergesAt25)
    trainer.__dict__.update(base.__dict__)
    return trainer


class TestQualityCheckInput:
    def test_labels_outside_the_classes_are_an_error(self) -> None:
        """Labels 5 and 7 against 2 probability columns passed accuracy; now an error
        naming 'labels', the value and its index."""
        labels = np.tile([0, 1, 5, 7], 50)
        check = QualityCheck(labels=labels, predictions=PROBS, metric_limits={"accuracy": 0.0})
        with pytest.raises(InvalidInput, match=r"'labels' .*\[0, 2\).*: 5 at index 2"):
            check.run()

    def test_labels_outside_the_classes_versus_a_baseline(self) -> None:
        """Versus a baseline, labels both models miss are an error, not 'no regression'."""
        labels = np.tile([0, 1, 5, 7], 50)
        check = QualityCheck(
            labels=labels,
            predictions=PROBS,
            baseline_predictions=PROBS,
            max_regression={"accuracy": 0.01},
        )
        with pytest.raises(InvalidInput, match="'labels' must be class indices"):
            check.run()

    def test_string_scores_are_an_error(self) -> None:
        """String scores were coded as class names in text order (roc_auc judged on them);
        next to numeric labels they are now an error."""
        scores = np.tile(["9", "10", "2", "3"], 30)
        check = QualityCheck(
            labels=np.tile([0, 0, 1, 1], 30), predictions=scores, metric_limits={"roc_auc": 0.1}
        )
        with pytest.raises(InvalidInput, match="'predictions' hold class names"):
            check.run()

    def test_complex_predictions_are_an_error(self) -> None:
        """Complex predictions are rejected at construction, naming the field."""
        with pytest.raises(InvalidInput, match="'predictions' must be numeric .*complex"):
            QualityCheck(
                labels=[0, 1], predictions=[0.2 + 1j, 0.9], metric_limits={"accuracy": 0.5}
            )

    def test_empty_columns_from_predict_are_an_error(self) -> None:
        """A predict returning (n, 0) is an error naming 'predictions'."""
        check = QualityCheck(
            labels=[0, 1],
            predict=lambda x: np.zeros((len(x), 0)),
            inputs=[[0.0], [1.0]],
            metric_limits={"accuracy": 0.5},
        )
        with pytest.raises(InvalidInput, match="'predictions' must have at least 1 column"):
            check.run()


class TestReproducibilityCheckInput:
    @pytest.mark.parametrize("missing", ["predictions", "labels", "losses", "step_hashes"])
    def test_a_run_missing_what_another_has_fails(self, missing: str) -> None:
        """A run without the other's predictions, labels, losses or hashes was skipped and
        the check PASSED; now 'same_data' FAILS naming both runs."""
        full: dict[str, Any] = {
            "predictions": PROBS,
            "labels": np.tile([0, 1, 1, 1], 50),
            "losses": [1.0, 0.5, 0.25],
            "step_hashes": ["a", "b", "c"],
        }
        partial = {k: v for k, v in full.items() if k != missing}
        result = ReproducibilityCheck(
            [TrainingRun(name="a", **full), TrainingRun(name="b", **partial)]
        ).run()
        assert Status.FAIL == result.status
        finding = result.finding("same_data")
        assert Status.FAIL == finding.status
        assert f"run 'b' has no {missing.replace('_', ' ')} but run 'a' has them" in (
            finding.message
        )

    def test_runs_recording_the_same_data_pass_same_data(self) -> None:
        """Identical runs with the same records have no 'same_data' finding."""
        run = {"predictions": PROBS, "labels": np.tile([0, 1, 1, 1], 50)}
        result = ReproducibilityCheck(
            [TrainingRun(name="a", **run), TrainingRun(name="b", **run)]
        ).run()
        assert Status.PASS == result.status
        assert "same_data" not in {f.name for f in result.findings}

    def test_labels_outside_the_classes_are_an_error(self) -> None:
        """Labels beyond the probability columns are an error, not skipped metrics."""
        runs = [
            TrainingRun(predictions=PROBS, labels=np.tile([0, 1, 5, 7], 50), name=n) for n in "ab"
        ]
        with pytest.raises(InvalidInput, match=r"'labels' .*\[0, 2\)"):
            ReproducibilityCheck(runs).run()

    def test_predicted_names_with_numeric_labels_are_an_error(self) -> None:
        """Predicted class names next to numeric labels (no class list) are an error."""
        names = np.tile(["0.1", "0.9"], 4)
        runs = [TrainingRun(predictions=names, labels=np.tile([0, 1], 4), name=n) for n in "ab"]
        with pytest.raises(InvalidInput, match="hold class names but 'labels' are numbers"):
            ReproducibilityCheck(runs).run()


class TestCheckpointRestoreCheckInput:
    def test_nan_losses_fail_naming_the_step(self) -> None:
        """A loss that is NaN from step 25 on (in every run) PASSED; now 'loss_finite'
        FAILS naming step 25."""
        result = CheckpointRestoreCheck(make_trainer=diverges_at_25, batches=BATCHES).run()
        assert Status.FAIL == result.status
        finding = result.finding("loss_finite")
        assert Status.FAIL == finding.status
        assert 25 == finding.observed
        assert "at step 25" in finding.message
        assert 25 == result.metrics["loss.first_nonfinite_step"]


class TestZeroDimensionalArrays:
    """A 0-d array claims to be iterable; every sequence field refuses it by name."""

    @pytest.mark.parametrize("field", ["probe_inputs", "known_good_predictions"])
    def test_rollback_sequence_fields(self, field: str) -> None:
        """RollbackCheck names the field given a 0-d array (it raised numpy's TypeError)."""
        from mlchecks.checks import RollbackCheck
        from mlchecks.serving import InProcessServer

        server = InProcessServer().add("1", abs).add("2", abs)
        fields: dict[str, Any] = {"probe_inputs": [[1.0]], field: np.array(0.0)}
        with pytest.raises(InvalidInput, match=f"'{field}'"):
            RollbackCheck(server, server, "2", **fields)

    def test_training_batches(self) -> None:
        """A 0-d array or a mapping of batches is not a sequence of batches."""
        from mlchecks.checks import LossDecreasesCheck

        for batches in (np.array(0.0), {"a": 1}):
            with pytest.raises(InvalidInput, match="'batches'"):
                LossDecreasesCheck(make_trainer=make_trainer, batches=batches)
