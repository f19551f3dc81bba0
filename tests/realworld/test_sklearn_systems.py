"""scikit-learn systems written the way their users write them, under the training, reproducibility
and pipeline checks.

Every case trains real estimators on a dataset that ships with scikit-learn (breast cancer, iris,
wine, diabetes: no downloads) and asserts the verdict a careful reviewer would give: PASS for the
healthy system and FAIL, naming the finding, for the planted fault (an unseeded forest, a
checkpoint that forgets the fitted scaler, a serving path that skips it). Estimators without
``partial_fit`` train through `SklearnTrainer` by refits on growing data or ``warm_start``
growth; only public mlchecks names are used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import shuffle

from mlchecks import (
    CheckpointRestoreCheck,
    LossDecreasesCheck,
    Pipeline,
    PipelineCheck,
    ReproducibilityCheck,
    Result,
    Stage,
    Status,
    TrainingRun,
)
from mlchecks.integrations.sklearn import SklearnTrainer
from mlchecks.serving import InProcessServer

Batches = list[tuple[np.ndarray, np.ndarray]]


def batches(load: Callable[..., Any], size: int) -> Batches:
    """The dataset shuffled once and cut into batches of ``size`` rows."""
    X, y = load(return_X_y=True)
    X, y = shuffle(X, y, random_state=0)
    return [(X[i : i + size], y[i : i + size]) for i in range(0, len(y) - size + 1, size)]


def assert_too_short_for_the_trend(result: Result) -> None:
    """24 refits on batches of 8 give a noisy loss that falls within a few steps: too few
    steps for the block test (it needs 30 or more) and too noisy for the slope test, so the
    trend is inconclusive (WARN, saying how many steps the block test needs), the drop
    PASSES and nothing FAILS. (Longer, the curve is a plateau after its first few steps and
    the trend test, rightly, sees no trend: the loss stopped falling.)"""
    trend = result.finding("loss_trend")
    assert (Status.WARN, Status.WARN) == (result.status, trend.status), str(result)
    assert "needs at least" in trend.message
    assert Status.PASS == result.finding("relative_drop").status


def logistic_pipeline(seed: int) -> SklearnTrainer:
    """Standardised logistic regression, refit on the data seen so far at every step."""
    return SklearnTrainer(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))


# ------------------------------------------------------------------ logistic pipeline


class TestLogisticPipeline:
    def test_loss_decreases_as_data_grows(self) -> None:
        """Refits on growing breast-cancer data: the held-out loss of each step falls."""
        check = LossDecreasesCheck(
            make_trainer=logistic_pipeline, batches=batches(load_breast_cancer, 8), n_steps=24
        )
        result = check.run()
        assert_too_short_for_the_trend(result)
        assert 0.6931 == pytest.approx(result.metrics["loss.first"], abs=1e-4)

    def test_checkpoint_restores_the_pipeline(self) -> None:
        """A pickled Pipeline (scaler and classifier) plus the data seen restores exactly."""
        check = CheckpointRestoreCheck(
            make_trainer=logistic_pipeline, batches=batches(load_breast_cancer, 16), n_steps=10
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)

    def test_a_checkpoint_that_forgets_the_fitted_scaler_fails(self) -> None:
        """Saving only the classifier and rebuilding the pipeline around it loses the scaler."""

        class ClassifierOnlyCheckpoint(SklearnTrainer):
            def save(self, path: str | Path) -> None:
                fitted = self.estimator
                self.estimator = make_pipeline(StandardScaler(), fitted[-1])
                try:
                    super().save(path)
                finally:
                    self.estimator = fitted

        def make_trainer(seed: int) -> SklearnTrainer:
            pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            return ClassifierOnlyCheckpoint(pipe)

        check = CheckpointRestoreCheck(
            make_trainer=make_trainer, batches=batches(load_breast_cancer, 16), n_steps=10
        )
        result = check.run()
        assert Status.FAIL == result.status
        failed = [f for f in result.findings if f.status is Status.FAIL]
        assert any("standardscaler" in f.message for f in failed), str(result)


# ---------------------------------------------------------------------- random forests


def forest_run(*, seeded: bool) -> Callable[[int], TrainingRun]:
    """A forest on breast cancer, evaluated on a held-out quarter."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

    def train(seed: int) -> TrainingRun:
        forest = RandomForestClassifier(n_estimators=50, random_state=seed if seeded else None)
        forest.fit(X_train, y_train)
        return TrainingRun(predictions=forest.predict_proba(X_test), labels=y_test)

    return train


class TestRandomForest:
    def test_seeded_forest_is_reproducible(self) -> None:
        """Two fits with random_state=seed give the same predictions: PASS."""
        result = ReproducibilityCheck(make_run=forest_run(seeded=True), seeds=(0, 0)).run()
        assert Status.PASS == result.status, str(result)

    def test_unseeded_forest_is_not_reproducible(self) -> None:
        """random_state=None: the two fits disagree, and the check FAILs on the predictions."""
        result = ReproducibilityCheck(make_run=forest_run(seeded=False), seeds=(0, 0)).run()
        assert Status.FAIL == result.status
        failed = {f.name for f in result.findings if f.status is Status.FAIL}
        assert failed & {"churn", "metric.log_loss", "metric.accuracy"}, str(result)

    def test_multiclass_forest_loss_decreases_as_data_grows(self) -> None:
        """Iris, three classes, refit on growing data: the loss falls from ln 3."""
        check = LossDecreasesCheck(
            make_trainer=lambda seed: SklearnTrainer(
                RandomForestClassifier(n_estimators=20, random_state=seed)
            ),
            batches=batches(load_iris, 5),
            n_steps=24,
        )
        result = check.run()
        assert_too_short_for_the_trend(result)
        assert 1.0986 == pytest.approx(result.metrics["loss.first"], abs=1e-4)

    def test_warm_start_forest_checkpoint_restores(self) -> None:
        """A forest grown 5 trees per step restores bitwise from its pickle (trees hashed)."""

        def make_trainer(seed: int) -> SklearnTrainer:
            forest = RandomForestClassifier(random_state=seed)
            return SklearnTrainer(forest, steps="warm_start", n_estimators_per_step=5)

        check = CheckpointRestoreCheck(
            make_trainer=make_trainer, batches=batches(load_breast_cancer, 32), n_steps=8
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)


# ---------------------------------------------------------------------------- boosting


class TestBoosting:
    def test_gradient_boosting_regressor_checkpoint_restores(self) -> None:
        """Diabetes regression, refit per step with a seeded subsample: restores exactly."""

        def make_trainer(seed: int) -> SklearnTrainer:
            model = GradientBoostingRegressor(n_estimators=40, subsample=0.8, random_state=seed)
            return SklearnTrainer(model)

        check = CheckpointRestoreCheck(
            make_trainer=make_trainer, batches=batches(load_diabetes, 32), n_steps=8
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)

    def test_unseeded_boosting_restores_its_own_generator(self) -> None:
        """random_state=None with subsampling still restores: the pickle keeps the generator."""

        def make_trainer(seed: int) -> SklearnTrainer:
            model = GradientBoostingRegressor(subsample=0.8, random_state=None)
            return SklearnTrainer(model, steps="warm_start", n_estimators_per_step=5)

        check = CheckpointRestoreCheck(
            make_trainer=make_trainer, batches=batches(load_diabetes, 32), n_steps=8
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)

    def test_hist_gradient_boosting_grows_and_restores(self) -> None:
        """HistGradientBoostingClassifier grown 2 iterations per step: loss falls, restores."""

        def make_trainer(seed: int) -> SklearnTrainer:
            model = HistGradientBoostingClassifier(random_state=seed)
            return SklearnTrainer(model, steps="warm_start", n_estimators_per_step=2)

        data = batches(load_breast_cancer, 8)
        loss = LossDecreasesCheck(make_trainer=make_trainer, batches=data, n_steps=24).run()
        assert_too_short_for_the_trend(loss)
        restore = CheckpointRestoreCheck(make_trainer=make_trainer, batches=data, n_steps=8)
        result = restore.run()
        assert Status.PASS == result.status, str(result)

    def test_gradient_boosting_classifier_warm_start_loss_decreases(self) -> None:
        """GradientBoostingClassifier with warm_start=True is grown automatically."""

        def make_trainer(seed: int) -> SklearnTrainer:
            model = GradientBoostingClassifier(warm_start=True, random_state=seed)
            return SklearnTrainer(model, n_estimators_per_step=2)

        assert "warm_start" == make_trainer(0).mode
        check = LossDecreasesCheck(
            make_trainer=make_trainer, batches=batches(load_breast_cancer, 8), n_steps=24
        )
        result = check.run()
        assert_too_short_for_the_trend(result)


# -------------------------------------------------------------------------- partial_fit


class TestSGD:
    @staticmethod
    def wine_batches() -> Batches:
        X, y = load_wine(return_X_y=True)
        X, y = shuffle(X, y, random_state=0)
        X = StandardScaler().fit_transform(X)
        return [(X[i : i + 16], y[i : i + 16]) for i in range(0, 160, 16)]

    @staticmethod
    def make_trainer(seed: int) -> SklearnTrainer:
        model = SGDClassifier(
            loss="log_loss", learning_rate="constant", eta0=0.003, random_state=seed
        )
        return SklearnTrainer(model, classes=[0, 1, 2])

    def test_multiclass_sgd_loss_decreases(self) -> None:
        """partial_fit over passes of wine's batches: the loss falls."""
        check = LossDecreasesCheck(
            make_trainer=self.make_trainer, batches=self.wine_batches(), n_steps=40
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert "partial_fit" == self.make_trainer(0).mode

    def test_sgd_checkpoint_restores(self) -> None:
        """partial_fit training restores exactly from its pickle."""
        check = CheckpointRestoreCheck(
            make_trainer=self.make_trainer, batches=self.wine_batches(), n_steps=10
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)


# ------------------------------------------------------------------------------ serving


def serving_check(
    make_model: Callable[[], Any], load: Callable[..., Any], answer: Callable[[Any, Any], Any]
) -> PipelineCheck:
    """Train offline, serve one raw row per request from an InProcessServer."""
    models: dict[str, Callable[[Any], Any]] = {}
    server = InProcessServer(loader=models.__getitem__)

    def split() -> Any:
        X, y = load(return_X_y=True)
        return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

    def train(parts: Any) -> Any:
        X_train, _, y_train, _ = parts
        return make_model().fit(X_train, y_train)

    def deploy(outputs: Any) -> str:
        model = outputs["train"]
        models["v1"] = lambda row: answer(model, row)
        return "v1"

    return PipelineCheck(
        Pipeline([Stage("split", split), Stage("train", train)]),
        holdout=lambda outputs: outputs["split"][1],
        training_features=lambda outputs, rows: np.asarray(rows),
        server=server,
        deploy=deploy,
        predict=lambda outputs, features: outputs["train"].predict_proba(features),
        n_rows=50,
    )


def one_row(model: Any, row: Any) -> Any:
    """What a serving handler does with one request: a batch of one row."""
    return model.predict_proba(np.asarray(row).reshape(1, -1))


class TestServing:
    def test_pipeline_served_one_row_at_a_time_passes(self) -> None:
        """The (1, 3) answer per iris row matches the offline predict_proba rows: PASS."""
        check = serving_check(
            lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            load_iris,
            one_row,
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert result.metrics["prediction.max_abs_diff"] < 1e-12

    def test_forest_served_one_row_at_a_time_passes(self) -> None:
        """A wine forest served row by row answers what it predicts offline: PASS."""
        check = serving_check(
            lambda: RandomForestClassifier(n_estimators=30, random_state=0), load_wine, one_row
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)

    def test_a_serving_path_without_the_scaler_fails(self) -> None:
        """The handler calls the classifier on raw features, skipping the fitted scaler."""

        def unscaled(model: Any, row: Any) -> Any:
            return model[-1].predict_proba(np.asarray(row).reshape(1, -1))

        check = serving_check(
            lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            load_breast_cancer,
            unscaled,
        )
        result = check.run()
        finding = result.finding("served_vs_offline")
        assert Status.FAIL == finding.status
        mismatch = result.details["prediction_mismatches"][0]
        assert isinstance(mismatch["served"], list)
