"""SklearnTrainer never leaves the user's estimator changed or swapped (issue 16, item 8)."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlchecks import Status, run_check
from mlchecks.checks.single_batch import SingleBatchCheck
from mlchecks.checks.training import LossDecreasesCheck
from mlchecks.integrations.sklearn import SklearnTrainer

pytestmark = pytest.mark.integration

_RNG = np.random.default_rng(7)
X = _RNG.normal(size=(1280, 4))
Y = (X @ np.array([1.0, -0.5, 0.25, 0.0]) > 0).astype(np.int64)
BATCHES = [(X[i : i + 64], Y[i : i + 64]) for i in range(0, 1280, 64)]


def content(value: Any) -> Any:
    """What ``value`` holds, to compare content rather than identity (objects by their
    attributes, arrays by their bytes, other leaves by their pickle)."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, list | tuple | np.ndarray):
        return [content(v) for v in value]
    if isinstance(value, dict):
        return {k: content(v) for k, v in value.items()}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return (type(value).__qualname__, content(vars(value)))
    return pickle.dumps(value)


def fitted_attributes(estimator: Any) -> dict[str, Any]:
    """The content of every attribute of ``estimator``."""
    return {key: content(value) for key, value in vars(estimator).items()}


def sgd_trainer() -> SklearnTrainer:
    """An SGDClassifier trained for one step: the state the user hands to a check."""
    trainer = SklearnTrainer(SGDClassifier(loss="log_loss", random_state=0), classes=[0, 1])
    trainer.train_step(BATCHES[0])
    return trainer


class TestCheckpointIsolation:
    def test_loss_check_leaves_the_users_sgd_classifier_as_it_was(self) -> None:
        """After LossDecreasesCheck with isolation='checkpoint', trainer.estimator is the
        user's SGDClassifier and its coef_, intercept_ and t_ are what they were."""
        trainer = sgd_trainer()
        original = trainer.estimator
        coef, intercept, t = original.coef_.copy(), original.intercept_.copy(), original.t_
        result = run_check(
            LossDecreasesCheck(trainer=trainer, batches=BATCHES, isolation="checkpoint")
        )
        assert Status.PASS == result.finding("trainer_restored").status, str(result)
        assert trainer.estimator is original
        np.testing.assert_array_equal(coef, original.coef_)
        np.testing.assert_array_equal(intercept, original.intercept_)
        assert t == original.t_
        assert 1 == trainer.step

    def test_single_batch_check_leaves_every_attribute_as_it_was(self) -> None:
        """After SingleBatchCheck with isolation='checkpoint', every attribute of the user's
        estimator has its content from before, and the estimator is the same object."""
        trainer = sgd_trainer()
        original = trainer.estimator
        before = fitted_attributes(original)
        check = SingleBatchCheck(
            trainer=trainer,
            batch=BATCHES[1],
            trainable=["coef_", "intercept_"],
            update_ratio_range=(1e-7, 10.0),
            isolation="checkpoint",
        )
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
        assert trainer.estimator is original
        assert before == fitted_attributes(original)

    def test_a_refit_forest_keeps_its_identity_and_state(self) -> None:
        """A refit RandomForestClassifier stays trainer.estimator, unchanged, after a check."""
        trainer = SklearnTrainer(RandomForestClassifier(n_estimators=3, random_state=0))
        trainer.train_step(BATCHES[0])
        original = trainer.estimator
        before = fitted_attributes(original)
        result = run_check(
            LossDecreasesCheck(trainer=trainer, batches=BATCHES, isolation="checkpoint")
        )
        assert Status.PASS == result.finding("trainer_restored").status, str(result)
        assert trainer.estimator is original
        assert before == fitted_attributes(original)

    def test_pipeline_steps_are_restored_in_place(self) -> None:
        """A Pipeline's step objects stay the user's, each with its state from before."""
        pipe = make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0))
        scaler, model = pipe.steps[0][1], pipe.steps[1][1]
        trainer = SklearnTrainer(pipe, classes=[0, 1])
        trainer.train_step(BATCHES[0])
        before = (fitted_attributes(scaler), fitted_attributes(model))
        run_check(LossDecreasesCheck(trainer=trainer, batches=BATCHES, isolation="checkpoint"))
        assert trainer.estimator is pipe
        assert pipe.steps[0][1] is scaler
        assert pipe.steps[1][1] is model
        assert before == (fitted_attributes(scaler), fitted_attributes(model))


class TestInPlaceRestore:
    def test_load_restores_into_the_same_estimator(self, tmp_path: Path) -> None:
        """load() puts the saved coefficients back into the estimator object it holds."""
        trainer = sgd_trainer()
        original = trainer.estimator
        trainer.save(tmp_path / "ckpt.pkl")
        saved = original.coef_.copy()
        trainer.train_step(BATCHES[1])
        assert not np.array_equal(saved, original.coef_)
        trainer.load(tmp_path / "ckpt.pkl")
        assert trainer.estimator is original
        np.testing.assert_array_equal(saved, original.coef_)

    def test_a_random_state_parameter_is_restored_in_place(self, tmp_path: Path) -> None:
        """A RandomState passed as random_state is the same generator after load(), with the
        state it had at save()."""
        generator = np.random.RandomState(3)
        trainer = SklearnTrainer(SGDClassifier(random_state=generator), classes=[0, 1])
        trainer.save(tmp_path / "ckpt.pkl")
        expected = copy.deepcopy(generator)
        trainer.train_step(BATCHES[0])
        trainer.load(tmp_path / "ckpt.pkl")
        assert trainer.estimator.random_state is generator
        assert expected.random_sample() == generator.random_sample()

    def test_refit_trains_the_users_estimator_object(self) -> None:
        """In refit mode a step fits a clone and hands its fitted state to the same object."""
        forest = RandomForestClassifier(n_estimators=3, random_state=0)
        trainer = SklearnTrainer(forest)
        trainer.train_step(BATCHES[0])
        trainer.train_step(BATCHES[1])
        assert trainer.estimator is forest
        assert 3 == len(forest.estimators_)
