"""Regression, string-labelled and multi-label scikit-learn systems, written as users write them.

Each case trains scikit-learn estimators on a dataset that ships with scikit-learn
(diabetes: regression with an MSE near 3,000; iris and wine with their class *names* as
labels; a synthetic ``make_multilabel_classification`` problem) and asserts the verdict a
careful reviewer would give: PASS for the healthy system, FAIL naming the finding for the
fault (an unseeded forest, a model that predicts one class), and a clear error for labels
outside the class list. Only public mlchecks names are used, with their documented
defaults: the task is inferred from the labels and predictions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris, load_wine, make_multilabel_classification
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlchecks
from mlchecks import GoldenSet, QualityCheck, ReproducibilityCheck, Status, TrainingRun

# ----------------------------------------------------------------------------- regression


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, ...]:
    X, y = load_diabetes(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.25, random_state=0))


def forest_run(data: tuple[np.ndarray, ...], *, seeded: bool) -> Callable[[int], TrainingRun]:
    X_train, X_test, y_train, y_test = data

    def train(seed: int) -> TrainingRun:
        model = RandomForestRegressor(n_estimators=40, random_state=seed if seeded else None)
        model.fit(X_train, y_train)
        return TrainingRun(predictions=model.predict(X_test), labels=y_test)

    return train


def boosting_run(data: tuple[np.ndarray, ...], *, seeded: bool) -> Callable[[int], TrainingRun]:
    X_train, X_test, y_train, y_test = data

    def train(seed: int) -> TrainingRun:
        model = GradientBoostingRegressor(
            n_estimators=60, subsample=0.7, random_state=seed if seeded else None
        )
        model.fit(X_train, y_train)
        return TrainingRun(predictions=model.predict(X_test), labels=y_test)

    return train


@pytest.mark.parametrize("make", [forest_run, boosting_run], ids=["forest", "boosting"])
def test_seeded_regression_passes(
    diabetes: tuple[np.ndarray, ...], make: Callable[..., Callable[[int], TrainingRun]]
) -> None:
    """Two seeded fits on load_diabetes agree: PASS, compared by MSE, MAE and R²."""
    result = ReproducibilityCheck(make_run=make(diabetes, seeded=True)).run()
    assert Status.PASS == result.status, str(result)
    assert "regression" == result.details["task"]
    assert {"metric.mse", "metric.mae", "metric.r2", "prediction.fraction_beyond_tol"} <= {
        f.name for f in result.findings
    }
    assert 0.0 == result.metrics["prediction.max_abs_diff"]


@pytest.mark.parametrize("make", [forest_run, boosting_run], ids=["forest", "boosting"])
def test_unseeded_regression_fails(
    diabetes: tuple[np.ndarray, ...], make: Callable[..., Callable[[int], TrainingRun]]
) -> None:
    """Unseeded forests or subsampled boosting differ example by example: FAIL, not WARN."""
    result = ReproducibilityCheck(make_run=make(diabetes, seeded=False)).run()
    assert Status.FAIL == result.status, str(result)
    assert Status.FAIL == result.finding("prediction.fraction_beyond_tol").status
    assert result.metrics["prediction.max_abs_diff"] > 1.0


def test_regression_quality_limits_on_diabetes(diabetes: tuple[np.ndarray, ...]) -> None:
    """A boosted regressor meets an MAE ceiling; a mean-only model does not."""
    X_train, X_test, y_train, y_test = diabetes
    model = GradientBoostingRegressor(random_state=0).fit(X_train, y_train)
    limits = {"mae": 60.0}
    good = QualityCheck(
        labels=y_test, predict=model.predict, inputs=X_test, metric_limits=limits
    ).run()
    assert Status.PASS == good.status, str(good)
    assert "regression" == good.details["task"]
    mean_only = np.full(len(y_test), float(np.mean(y_train)) + 60.0)
    bad = QualityCheck(labels=y_test, predictions=mean_only, metric_limits=limits).run()
    assert Status.FAIL == bad.finding("limit.mae").status


# ----------------------------------------------------------------------------- string labels


def named(loader: Callable[..., object]) -> tuple[np.ndarray, ...]:
    data = loader()
    names = np.asarray(data.target_names)[data.target]  # type: ignore[attr-defined]
    return tuple(
        train_test_split(
            data.data,  # type: ignore[attr-defined]
            names,
            test_size=0.4,
            random_state=0,
            stratify=names,
        )
    )


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, ...]:
    return named(load_iris)


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, ...]:
    return named(load_wine)


def logistic(data: tuple[np.ndarray, ...]) -> object:
    X_train, _, y_train, _ = data
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)


@pytest.mark.parametrize("dataset", ["iris", "wine"])
def test_string_labelled_quality_passes(dataset: str, request: pytest.FixtureRequest) -> None:
    """Class names as labels, probabilities from predict_proba, a golden set of names: PASS."""
    data = request.getfixturevalue(dataset)
    X_train, X_test, y_train, y_test = data
    model = logistic(data)
    check = QualityCheck(
        labels=y_test,
        predict=model.predict_proba,  # type: ignore[attr-defined]
        inputs=X_test,
        metric_limits={"accuracy": 0.8, "log_loss": 0.5},
        golden=GoldenSet(X_train[:12], y_train[:12]),  # clear cases the model has learnt
    )
    result = check.run()
    assert Status.PASS == result.status, str(result)
    assert list(model.classes_) == result.details["classes"]  # type: ignore[attr-defined]


def test_string_labelled_wrong_model_fails(iris: tuple[np.ndarray, ...]) -> None:
    """A model that always predicts the most frequent name misses the golden names: FAIL."""
    X_train, X_test, y_train, y_test = iris
    model = DummyClassifier(strategy="most_frequent").fit(X_train, y_train)
    result = QualityCheck(
        labels=y_test,
        predict=model.predict_proba,
        inputs=X_test,
        metric_limits={"accuracy": 0.8},
        golden=GoldenSet(X_test[:12], y_test[:12], classes=model.classes_),
    ).run()
    assert Status.FAIL == result.finding("golden").status
    assert Status.FAIL == result.finding("limit.accuracy").status
    first = result.details["golden_mismatches"][0]
    assert isinstance(first["expected"], str)
    assert isinstance(first["got"], str)


def test_string_predictions_against_string_labels(wine: tuple[np.ndarray, ...]) -> None:
    """``model.predict`` returning class names is judged like probabilities: PASS."""
    _, X_test, _, y_test = wine
    model = logistic(wine)
    result = QualityCheck(
        labels=y_test,
        predictions=model.predict(X_test),  # type: ignore[attr-defined]
        metric_limits={"accuracy": 0.8},
    ).run()
    assert Status.PASS == result.status, str(result)


def test_string_labelled_reproducibility(iris: tuple[np.ndarray, ...]) -> None:
    """Seeded forests on class names: PASS with accuracy and log loss compared (no WARN)."""
    X_train, X_test, y_train, y_test = iris

    def train(seed: int) -> TrainingRun:
        model = RandomForestClassifier(n_estimators=30, random_state=seed).fit(X_train, y_train)
        return TrainingRun(
            predictions=model.predict_proba(X_test), labels=y_test, classes=model.classes_
        )

    result = ReproducibilityCheck(make_run=train).run()
    assert Status.PASS == result.status, str(result)
    assert {"churn", "metric.accuracy", "metric.log_loss"} <= {f.name for f in result.findings}


def test_labels_outside_classes_are_a_clear_error(iris: tuple[np.ndarray, ...]) -> None:
    """A label that is not in ``classes`` raises InvalidInput naming it."""
    _, X_test, _, y_test = iris
    model = logistic(iris)
    check = QualityCheck(
        labels=y_test,
        predictions=model.predict_proba(X_test),  # type: ignore[attr-defined]
        metric_limits={"accuracy": 0.8},
        classes=["setosa", "versicolor"],
    )
    with pytest.raises(mlchecks.InvalidInput, match="not in classes.*'virginica'"):
        check.run()


# ----------------------------------------------------------------------------- multi-label


@pytest.fixture(scope="module")
def multilabel() -> tuple[np.ndarray, ...]:
    X, Y = make_multilabel_classification(n_samples=800, n_classes=5, random_state=0)
    return tuple(train_test_split(X, Y, test_size=0.3, random_state=0))


def multilabel_run(data: tuple[np.ndarray, ...], *, seeded: bool) -> Callable[[int], TrainingRun]:
    X_train, X_test, Y_train, Y_test = data

    def train(seed: int) -> TrainingRun:
        forest = RandomForestClassifier(n_estimators=30, random_state=seed if seeded else None)
        model = MultiOutputClassifier(forest).fit(X_train, Y_train)
        return TrainingRun(predictions=model.predict(X_test), labels=Y_test)

    return train


def test_seeded_multilabel_passes(multilabel: tuple[np.ndarray, ...]) -> None:
    """Seeded MultiOutputClassifier forests: no label churns, PASS."""
    result = ReproducibilityCheck(make_run=multilabel_run(multilabel, seeded=True)).run()
    assert Status.PASS == result.status, str(result)
    assert "multilabel" == result.details["task"]
    assert {"churn", "metric.hamming_loss", "metric.subset_accuracy"} <= {
        f.name for f in result.findings
    }
    assert 5 == len(result.details["runs"][0]["per_label_accuracy"])


def test_unseeded_multilabel_fails(multilabel: tuple[np.ndarray, ...]) -> None:
    """Unseeded forests flip labels: churn per label beyond max_churn, FAIL."""
    result = ReproducibilityCheck(make_run=multilabel_run(multilabel, seeded=False)).run()
    assert Status.FAIL == result.finding("churn").status
    assert 5 == len(result.details["pairs"][0]["per_label_churn"])


def test_multilabel_quality(multilabel: tuple[np.ndarray, ...]) -> None:
    """Hamming loss of a fitted multi-label forest is judged on its confidence bound."""
    X_train, X_test, Y_train, Y_test = multilabel
    forest = RandomForestClassifier(n_estimators=50, random_state=0)
    model = MultiOutputClassifier(forest).fit(X_train, Y_train)
    limits = {"hamming_loss": 0.25}
    good = QualityCheck(labels=Y_test, predictions=model.predict(X_test), metric_limits=limits)
    assert Status.PASS == good.run().status
    nothing = np.zeros_like(Y_test)
    bad = QualityCheck(labels=Y_test, predictions=nothing, metric_limits=limits).run()
    assert Status.FAIL == bad.finding("limit.hamming_loss").status
