"""Tests for mlchecks.integrations.sklearn, and the training checks on scikit-learn estimators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier

from mlchecks import Status, run_check
from mlchecks.checks._state import compare_states, snapshot
from mlchecks.checks.single_batch import SingleBatchCheck
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.integrations.sklearn import SklearnTrainer

pytestmark = pytest.mark.integration

_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(4000, 5))
Y = (X @ _RNG.normal(size=5) + 0.5 * _RNG.normal(size=4000) > 0).astype(np.int64)
BATCHES = [(X[i : i + 64], Y[i : i + 64]) for i in range(0, 3968, 64)]


def make_sgd(seed: int) -> SklearnTrainer:
    """Logistic regression by SGD, one partial_fit per batch."""
    return SklearnTrainer(SGDClassifier(loss="log_loss", random_state=seed), classes=[0, 1])


def make_mlp(seed: int) -> SklearnTrainer:
    """A small MLP trained with Adam through partial_fit."""
    estimator = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=seed)
    return SklearnTrainer(estimator, classes=[0, 1])


class TestSklearnTrainer:
    def test_state_holds_fitted_attributes(self) -> None:
        """state() holds the learned coefficients and the step, not the hyperparameters."""
        trainer = make_sgd(0)
        trainer.train_step(BATCHES[0])
        state = trainer.state()
        assert {"coef_", "intercept_", "t_", "step"} <= set(state)
        assert "alpha" not in state
        assert (1, 5) == state["coef_"].shape

    def test_nested_optimizer_state_is_flattened(self) -> None:
        """MLPClassifier's Adam moments and random generator appear as named entries."""
        trainer = make_mlp(0)
        trainer.train_step(BATCHES[0])
        state = trainer.state()
        assert "coefs_/0" in state
        assert "_optimizer/ms/0" in state
        assert "_random_state/key" in state

    def test_save_load_roundtrip(self, tmp_path: Path) -> None:
        """load() of a pickled checkpoint gives back the saved state bitwise."""
        trainer = make_mlp(0)
        for batch in BATCHES[:3]:
            trainer.train_step(batch)
        trainer.save(tmp_path / "ckpt.pkl")
        fresh = make_mlp(1)
        fresh.load(tmp_path / "ckpt.pkl")
        assert [] == compare_states(snapshot(trainer.state()), snapshot(fresh.state()))
        assert 3 == fresh.step

    def test_losses(self) -> None:
        """The loss is log loss with predict_proba, hinge loss without, MSE for regressors."""
        log = make_sgd(0)
        hinge = SklearnTrainer(SGDClassifier(random_state=0), classes=[0, 1])
        regression = SklearnTrainer(SGDRegressor(random_state=0))
        for trainer in (log, hinge, regression):
            assert np.isfinite(trainer.train_step(BATCHES[0]))
        assert (64, 2) == log.predict(X[:64]).shape
        assert (64,) == hinge.predict(X[:64]).shape

    def test_custom_loss(self) -> None:
        """A custom loss callable is what train_step reports."""
        trainer = SklearnTrainer(
            SGDClassifier(random_state=0), classes=[0, 1], loss=lambda est, x, y: 0.25
        )
        assert 0.25 == trainer.train_step(BATCHES[0])

    def test_rejects_bad_arguments(self) -> None:
        """An estimator without partial_fit, a bad loss, bad classes and bad batches are errors."""
        with pytest.raises(InvalidInput, match="must have a partial_fit method"):
            SklearnTrainer(object())
        with pytest.raises(InvalidInput, match="'loss' must be callable"):
            SklearnTrainer(SGDClassifier(), loss=3)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="'classes' must be 1-D"):
            SklearnTrainer(SGDClassifier(), classes=[[0, 1]])
        with pytest.raises(InvalidInput, match="'batch' must be a pair"):
            make_sgd(0).train_step(X)


class TestChecksOnSklearn:
    def test_sgd_classifier_loss_decreases(self) -> None:
        """An SGDClassifier trained batch by batch passes LossDecreasesCheck."""
        result = run_check(LossDecreasesCheck(make_trainer=make_sgd, batches=BATCHES))
        assert Status.PASS == result.status, str(result)

    def test_users_estimator_is_untouched(self) -> None:
        """Checking a fitted trainer leaves its estimator's state bitwise as it was."""
        trainer = make_sgd(0)
        trainer.train_step(BATCHES[0])
        before = snapshot(trainer.state())
        result = run_check(LossDecreasesCheck(trainer=trainer, batches=BATCHES))
        assert Status.PASS == result.status, str(result)
        assert [] == compare_states(before, snapshot(trainer.state()))

    @pytest.mark.parametrize("factory", [make_sgd, make_mlp])
    def test_checkpoint_restore(self, factory: Any) -> None:
        """Pickled checkpoints restore partial_fit training exactly."""
        check = CheckpointRestoreCheck(make_trainer=factory, batches=BATCHES, n_steps=10)
        result = run_check(check)
        assert Status.PASS == result.status, str(result)

    def test_single_batch(self) -> None:
        """A partly trained SGDClassifier passes SingleBatchCheck on its coefficients."""
        trainer = make_sgd(0)
        trainer.train_step(BATCHES[0])
        check = SingleBatchCheck(
            trainer=trainer,
            batch=BATCHES[1],
            trainable=["coef_", "intercept_"],
            update_ratio_range=(1e-7, 10.0),
        )
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
