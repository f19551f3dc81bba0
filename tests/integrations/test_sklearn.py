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
        """A non-estimator, a bad loss, bad classes and bad batches are errors."""
        with pytest.raises(InvalidInput, match="must be a scikit-learn estimator"):
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
        assert Status.PASS == result.finding("trainer_restored").status, str(result)
        assert Status.FAIL != result.status, str(result)
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


def make_forest(seed: int) -> SklearnTrainer:
    """A random forest refit on the batches seen so far."""
    from sklearn.ensemble import RandomForestClassifier

    return SklearnTrainer(RandomForestClassifier(n_estimators=5, random_state=seed))


class TestStepModes:
    def test_auto_picks_the_mode_from_the_estimator(self) -> None:
        """partial_fit when present, warm_start when switched on, else refit."""
        from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        assert "partial_fit" == make_sgd(0).mode
        assert "refit" == SklearnTrainer(RandomForestClassifier()).mode
        assert "warm_start" == SklearnTrainer(GradientBoostingClassifier(warm_start=True)).mode
        pipe = make_pipeline(StandardScaler(), SGDClassifier())
        assert "refit" == SklearnTrainer(pipe).mode
        assert "refit" == SklearnTrainer(SGDClassifier(), steps="refit").mode

    def test_rejects_a_mode_the_estimator_cannot_do(self) -> None:
        """partial_fit needs the method, warm_start the parameters; unknown modes are errors."""
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        with pytest.raises(InvalidInput, match="needs an estimator with a partial_fit"):
            SklearnTrainer(RandomForestClassifier(), steps="partial_fit")
        pipe = make_pipeline(StandardScaler(), RandomForestClassifier())
        with pytest.raises(InvalidInput, match="warm_start and n_estimators"):
            SklearnTrainer(pipe, steps="warm_start")
        with pytest.raises(InvalidInput, match="'steps' must be one of"):
            SklearnTrainer(RandomForestClassifier(), steps="grow")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="'n_estimators_per_step' must be an integer"):
            SklearnTrainer(RandomForestClassifier(), n_estimators_per_step=0)

    def test_refit_fits_on_the_batches_seen_so_far(self) -> None:
        """Step k fits on the first k batches; the first loss is the untrained ln 2."""
        trainer = make_forest(0)
        first = trainer.train_step(BATCHES[0])
        trainer.train_step(BATCHES[1])
        assert np.log(2) == pytest.approx(first)
        assert 128 == int(trainer.state()["data/n_rows"])
        assert 2 == trainer.step

    def test_warm_start_grows_the_ensemble(self) -> None:
        """Each step adds n_estimators_per_step trees."""
        from sklearn.ensemble import GradientBoostingRegressor

        trainer = SklearnTrainer(
            GradientBoostingRegressor(random_state=0), steps="warm_start", n_estimators_per_step=3
        )
        for batch in BATCHES[:4]:
            trainer.train_step((batch[0], batch[1].astype(float)))
        assert 12 == len(trainer.estimator.estimators_)

    def test_untrained_losses(self) -> None:
        """Before the first fit: hinge 1 without predict_proba, the mean squared label for
        regressors."""
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.svm import LinearSVC

        assert 1.0 == SklearnTrainer(LinearSVC()).train_step(BATCHES[0])
        y = BATCHES[0][1].astype(float) + 1.0
        loss = SklearnTrainer(RandomForestRegressor(n_estimators=3)).train_step((X[:64], y))
        assert float(np.mean(y**2)) == pytest.approx(loss)

    def test_a_batch_missing_a_class_still_scores(self) -> None:
        """Probabilities are aligned to the full class list when a refit saw fewer classes."""
        from sklearn.linear_model import LogisticRegression

        trainer = SklearnTrainer(LogisticRegression(), classes=[0, 1, 2])
        y0 = np.where(BATCHES[0][1] > 0, 1, 0)
        trainer.train_step((BATCHES[0][0], y0))
        y1 = y0.copy()
        y1[:5] = 2
        assert np.isfinite(trainer.train_step((BATCHES[1][0], y1)))

    def test_string_classes_in_any_order(self) -> None:
        """Class names listed out of sorted order score like the sorted list."""
        from sklearn.linear_model import LogisticRegression

        names = np.array(["yes", "no"])
        batches = [(x, names[y]) for x, y in BATCHES[:3]]
        losses = []
        for classes in (["yes", "no"], ["no", "yes"]):
            trainer = SklearnTrainer(LogisticRegression(), classes=classes)
            losses.append([trainer.train_step(batch) for batch in batches])
        assert losses[0] == losses[1]

    def test_state_fingerprints_trees_and_pipeline_steps(self) -> None:
        """Fitted trees appear as content hashes, pipeline steps under steps/<name>/."""
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3))
        trainer = SklearnTrainer(pipe)
        trainer.train_step(BATCHES[0])
        trainer.train_step(BATCHES[1])
        state = trainer.state()
        assert {
            "steps/standardscaler/mean_",
            "steps/randomforestclassifier/estimators_#sha256",
            "data#sha256",
        } <= set(state)
        assert (32,) == state["data#sha256"].shape

    def test_refit_save_load_roundtrip(self, tmp_path: Path) -> None:
        """load() restores the estimator, the step and the data seen, bitwise."""
        trainer = make_forest(0)
        for batch in BATCHES[:3]:
            trainer.train_step(batch)
        trainer.save(tmp_path / "forest.pkl")
        fresh = make_forest(1)
        fresh.load(tmp_path / "forest.pkl")
        assert [] == compare_states(snapshot(trainer.state()), snapshot(fresh.state()))
        assert trainer.train_step(BATCHES[3]) == fresh.train_step(BATCHES[3])

    @pytest.mark.parametrize("steps", ["refit", "warm_start"])
    def test_checkpoint_restore_passes_on_a_forest(self, steps: Any) -> None:
        """CheckpointRestoreCheck PASSes a seeded forest in both modes."""
        from sklearn.ensemble import RandomForestClassifier

        def make(seed: int) -> SklearnTrainer:
            forest = RandomForestClassifier(n_estimators=5, random_state=seed)
            return SklearnTrainer(forest, steps=steps, n_estimators_per_step=5)

        check = CheckpointRestoreCheck(make_trainer=make, batches=BATCHES[:8], n_steps=8)
        result = run_check(check)
        assert Status.PASS == result.status, str(result)

    def test_a_checkpoint_without_the_data_seen_fails(self, tmp_path: Path) -> None:
        """A refit trainer restored without the batches it saw FAILs the restore check."""

        class ModelOnly(SklearnTrainer):
            def save(self, path: str | Path) -> None:
                import joblib

                joblib.dump(self.estimator, path)

            def load(self, path: str | Path) -> None:
                import joblib

                self.estimator = joblib.load(path)

        def make(seed: int) -> SklearnTrainer:
            from sklearn.ensemble import RandomForestClassifier

            return ModelOnly(RandomForestClassifier(n_estimators=5, random_state=seed))

        check = CheckpointRestoreCheck(make_trainer=make, batches=BATCHES[:8], n_steps=8)
        result = run_check(check)
        assert Status.FAIL == result.finding("restored_state").status, str(result)
