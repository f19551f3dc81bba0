"""XGBoost and LightGBM systems written the way their users write them, with expected verdicts.

Each case trains on a dataset that ships with scikit-learn (breast cancer: binary; wine:
three classes; diabetes: regression), in a few rounds on one thread, and asserts the verdict
a careful reviewer would give: PASS for the healthy system, FAIL naming the finding for the
planted fault. Seeds matter here in a way users often get wrong: both libraries seed their
row and column subsampling with a fixed default (``seed=0`` in XGBoost, ``bagging_seed=3``
in LightGBM), so subsampling "without a seed" is still reproducible; an unseeded
``numpy.random.RandomState()`` passed as ``random_state`` is not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun  # noqa: E402
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.integrations.lightgbm import LightGBMTrainer  # noqa: E402
from mlchecks.integrations.xgboost import XGBoostTrainer  # noqa: E402


def split(loader: Any) -> tuple[Any, Any, Any, Any]:
    X, y = loader(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.25, random_state=42))  # type: ignore[return-value]


CANCER = split(load_breast_cancer)
WINE = split(load_wine)
DIABETES = split(load_diabetes)


# ------------------------------------------------------------------------- XGBoost, native API


def xgb_cancer(seed: int, **overrides: Any) -> XGBoostTrainer:
    _, X_test, _, y_test = CANCER
    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "eta": 0.3,
        "max_depth": 3,
        "nthread": 1,
        "seed": seed,
        **overrides,
    }
    return XGBoostTrainer(params, evals=[(xgb.DMatrix(X_test, label=y_test), "test")])


def test_xgboost_binary_loss_decreases() -> None:
    """A healthy binary booster: the training logloss falls round after round (PASS)."""
    X_train, _, y_train, _ = CANCER
    batches = [xgb.DMatrix(X_train, label=y_train)] * 12
    result = LossDecreasesCheck(make_trainer=xgb_cancer, batches=batches).run()
    assert "pass" == result.status.value


def test_xgboost_learning_rate_zero_fails_loss_decreases() -> None:
    """eta=0 (a typo for 0.05 in a config file): the trees add nothing, the loss is flat."""
    X_train, _, y_train, _ = CANCER
    result = LossDecreasesCheck(
        make_trainer=lambda seed: xgb_cancer(seed, eta=0.0),
        batches=[xgb.DMatrix(X_train, label=y_train)] * 12,
    ).run()
    assert ("fail", "fail") == (result.status.value, result.finding("loss_trend").status.value)


def xgb_wine(seed: int, *, seed_per_iteration: bool = True, **kwargs: Any) -> XGBoostTrainer:
    _, X_test, _, y_test = WINE
    params = {
        "seed_per_iteration": seed_per_iteration,
        "objective": "multi:softprob",
        "num_class": 3,
        "eval_metric": "mlogloss",
        "eta": 0.3,
        "max_depth": 2,
        "subsample": 0.8,
        "nthread": 1,
        "seed": seed,
    }
    early_stop = xgb.callback.EarlyStopping(rounds=5, data_name="valid", save_best=False)
    return XGBoostTrainer(
        params,
        evals=[(xgb.DMatrix(X_test, label=y_test), "valid")],
        callbacks=[early_stop],
        **kwargs,
    )


def test_xgboost_multiclass_checkpoint_restores() -> None:
    """The default checkpoint (save_model + the early-stopping callback) restores (PASS)."""
    X_train, _, y_train, _ = WINE
    result = CheckpointRestoreCheck(
        make_trainer=xgb_wine, batches=[(X_train, y_train)] * 8, crash_mode="inprocess"
    ).run()
    assert "pass" == result.status.value


def test_xgboost_subsampling_resumed_without_seed_per_iteration_fails() -> None:
    """subsample<1 draws rows from a generator in the process, not in the saved model.

    A booster restored from its checkpoint samples different rows than the uninterrupted
    run; ``seed_per_iteration=True`` (used in the healthy case above) derives each round's
    sample from the seed and the round number, so training resumes exactly.
    """
    X_train, _, y_train, _ = WINE
    result = CheckpointRestoreCheck(
        make_trainer=lambda seed: xgb_wine(seed, seed_per_iteration=False),
        batches=[(X_train, y_train)] * 8,
    ).run()
    assert "fail" == result.status.value
    assert "fail" == result.finding("losses_after_restore").status.value


def test_xgboost_checkpoint_without_early_stopping_state_fails() -> None:
    """Saving only the booster forgets EarlyStopping's best score and patience counter."""
    X_train, _, y_train, _ = WINE

    def save(booster: Any, file: str) -> None:
        booster.save_model(file)

    def load(file: str) -> Any:
        booster = xgb.Booster()
        booster.load_model(file)
        return booster

    result = CheckpointRestoreCheck(
        make_trainer=lambda seed: xgb_wine(seed, save=save, load=load),
        batches=[(X_train, y_train)] * 8,
    ).run()
    finding = result.finding("restored_state")
    assert ("fail", "fail") == (result.status.value, finding.status.value)
    assert "callbacks/0/best_scores/valid/mlogloss" in finding.message


def test_xgboost_checkpoint_of_the_best_model_only_fails() -> None:
    """Checkpointing ``booster[: best_iteration + 1]``: a sliced booster has no best iteration.

    Slicing keeps the trees up to the best round but drops the ``best_iteration`` and
    ``best_score`` attributes that early stopping set, and the callback's state is not saved.
    """
    X_train, _, y_train, _ = CANCER

    def save_best(booster: Any, file: str) -> None:
        best = booster.best_iteration if booster.attr("best_iteration") else None
        (booster if best is None else booster[: best + 1]).save_model(file)

    def make_trainer(seed: int) -> XGBoostTrainer:
        _, X_test, _, y_test = CANCER
        params = {"objective": "binary:logistic", "eta": 0.5, "nthread": 1, "seed": seed}
        return XGBoostTrainer(
            params,
            rounds_per_step=4,
            evals=[(xgb.DMatrix(X_test, label=y_test), "test")],
            callbacks=[xgb.callback.EarlyStopping(rounds=50, data_name="test")],
            save=save_best,
        )

    result = CheckpointRestoreCheck(
        make_trainer=make_trainer, batches=[(X_train, y_train)] * 6
    ).run()
    finding = result.finding("restored_state")
    assert ("fail", "fail") == (result.status.value, finding.status.value)
    differing = [row["name"] for row in result.details["restored_state_diffs"]]
    assert {"best_iteration", "best_score"} <= set(differing)


def test_xgboost_regression_seeded_runs_reproduce() -> None:
    """Two xgboost.train runs on diabetes with subsample and a seed agree exactly (PASS)."""
    X_train, X_test, y_train, y_test = DIABETES

    def make_run(seed: int) -> TrainingRun:
        dtrain = xgb.DMatrix(X_train, label=y_train)
        history: dict[str, Any] = {}
        params = {
            "objective": "reg:squarederror",
            "eta": 0.1,
            "max_depth": 3,
            "subsample": 0.7,
            "colsample_bytree": 0.7,
            "nthread": 1,
            "seed": seed,
        }
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=20,
            evals=[(dtrain, "train")],
            evals_result=history,
            verbose_eval=False,
        )
        return TrainingRun(
            predictions=booster.predict(xgb.DMatrix(X_test)),
            labels=y_test,
            losses=history["train"]["rmse"],
        )

    result = ReproducibilityCheck(make_run=make_run, metrics=("mse", "mae")).run()
    assert "pass" == result.status.value


# ------------------------------------------------------------- XGBoost, scikit-learn API


def sklearn_run(model: Any, data: tuple[Any, Any, Any, Any]) -> TrainingRun:
    X_train, X_test, y_train, y_test = data
    model.fit(X_train, y_train)
    return TrainingRun(predictions=model.predict_proba(X_test), labels=y_test)


def test_xgbclassifier_subsample_with_default_seed_reproduces() -> None:
    """XGBClassifier(subsample=0.8) with no random_state uses XGBoost's fixed seed (PASS)."""
    result = ReproducibilityCheck(
        make_run=lambda seed: sklearn_run(
            xgb.XGBClassifier(n_estimators=15, max_depth=2, subsample=0.8, n_jobs=1), WINE
        )
    ).run()
    assert "pass" == result.status.value


def test_xgbclassifier_unseeded_random_state_fails() -> None:
    """random_state=np.random.RandomState() draws a new seed every run: predictions churn."""
    result = ReproducibilityCheck(
        make_run=lambda seed: sklearn_run(
            xgb.XGBClassifier(
                n_estimators=15,
                max_depth=2,
                subsample=0.5,
                colsample_bytree=0.5,
                n_jobs=1,
                random_state=np.random.RandomState(),
            ),
            CANCER,
        )
    ).run()
    assert "fail" == result.status.value


# ------------------------------------------------------------------------ LightGBM, native API

LGB_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 7,
    "num_threads": 1,
    "deterministic": True,
    "verbose": -1,
}


class DecayLearningRate:
    """A user's callback: shrink the learning rate by ``decay`` after every round."""

    def __init__(self, learning_rate: float, decay: float) -> None:
        self.learning_rate = learning_rate
        self.decay = decay

    def __call__(self, env: Any) -> None:
        self.learning_rate *= self.decay
        env.model.reset_parameter({"learning_rate": self.learning_rate})


def lgb_cancer(seed: int, **kwargs: Any) -> LightGBMTrainer:
    _, X_test, _, y_test = CANCER
    return LightGBMTrainer(
        {**LGB_PARAMS, "seed": seed},
        rounds_per_step=2,
        valid_sets=[(X_test, y_test)],
        valid_names=["valid"],
        callbacks=[DecayLearningRate(0.3, 0.95)],
        **kwargs,
    )


def test_lightgbm_binary_with_lr_decay_trains_and_restores() -> None:
    """A healthy booster with a decaying learning rate: loss falls, checkpoint restores."""
    X_train, _, y_train, _ = CANCER
    batches = [(X_train, y_train)] * 10
    loss = LossDecreasesCheck(make_trainer=lgb_cancer, batches=batches).run()
    restore = CheckpointRestoreCheck(make_trainer=lgb_cancer, batches=batches).run()
    assert ("pass", "pass") == (loss.status.value, restore.status.value)


def test_lightgbm_checkpoint_without_callback_state_fails() -> None:
    """Saving only the booster restarts the learning-rate decay from its first value."""
    X_train, _, y_train, _ = CANCER
    result = CheckpointRestoreCheck(
        make_trainer=lambda seed: lgb_cancer(
            seed,
            save=lambda booster, file: booster.save_model(file),
            load=lambda file: lgb.Booster(model_file=file),
        ),
        batches=[(X_train, y_train)] * 10,
    ).run()
    finding = result.finding("restored_state")
    assert ("fail", "fail") == (result.status.value, finding.status.value)
    assert "'callbacks/0/learning_rate'" in finding.message
    assert "fail" == result.finding("losses_after_restore").status.value


def test_lightgbm_save_model_drops_best_iteration() -> None:
    """lgb.Booster(model_file=...) comes back without the best iteration early stopping set."""
    X_train, X_test, y_train, y_test = WINE

    def make_trainer(seed: int) -> LightGBMTrainer:
        params = {
            **LGB_PARAMS,
            "objective": "multiclass",
            "num_class": 3,
            "learning_rate": 0.5,
            "min_data_in_leaf": 5,
            "seed": seed,
        }
        return LightGBMTrainer(
            params,
            rounds_per_step=10,
            valid_sets=[(X_test, y_test)],
            valid_names=["valid"],
            callbacks=[lgb.early_stopping(2, verbose=False)],
            save=lambda booster, file: booster.save_model(file),
            load=lambda file: lgb.Booster(model_file=file),
        )

    result = CheckpointRestoreCheck(
        make_trainer=make_trainer, batches=[(X_train, y_train)] * 4
    ).run()
    finding = result.finding("restored_state")
    assert ("fail", "fail") == (result.status.value, finding.status.value)
    assert "'best_iteration' is 0, expected" in finding.message


def test_lightgbm_min_data_in_leaf_too_large_fails_loss_decreases() -> None:
    """min_data_in_leaf above the training rows: no tree can split, the loss never moves."""
    X_train, _, y_train, _ = CANCER
    result = LossDecreasesCheck(
        make_trainer=lambda seed: LightGBMTrainer(
            {**LGB_PARAMS, "seed": seed, "min_data_in_leaf": 1000}
        ),
        batches=[(X_train, y_train)] * 12,
    ).run()
    assert ("fail", "fail") == (result.status.value, result.finding("loss_trend").status.value)


def test_lightgbm_regression_bagging_without_seed_reproduces() -> None:
    """bagging_fraction<1 with no seed uses LightGBM's fixed default seeds: runs agree (PASS)."""
    X_train, X_test, y_train, y_test = DIABETES

    def make_run(seed: int) -> TrainingRun:
        params = {
            "objective": "regression",
            "learning_rate": 0.1,
            "num_leaves": 7,
            "bagging_fraction": 0.7,
            "bagging_freq": 1,
            "feature_fraction": 0.7,
            "num_threads": 1,
            "verbose": -1,
        }
        history: dict[str, Any] = {}
        train_set = lgb.Dataset(X_train, y_train)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=20,
            valid_sets=[train_set],
            valid_names=["train"],
            callbacks=[lgb.record_evaluation(history)],
        )
        return TrainingRun(
            predictions=booster.predict(X_test), labels=y_test, losses=history["train"]["l2"]
        )

    result = ReproducibilityCheck(make_run=make_run, metrics=("mse", "mae")).run()
    assert "pass" == result.status.value


def test_lgbmclassifier_unseeded_random_state_fails() -> None:
    """LGBMClassifier(random_state=np.random.RandomState()) bags differently every run."""
    result = ReproducibilityCheck(
        make_run=lambda seed: sklearn_run(
            lgb.LGBMClassifier(
                n_estimators=15,
                num_leaves=7,
                subsample=0.5,
                subsample_freq=1,
                colsample_bytree=0.5,
                n_jobs=1,
                verbose=-1,
                random_state=np.random.RandomState(),
            ),
            WINE,
        )
    ).run()
    assert "fail" == result.status.value


# ------------------------------------------------- scikit-learn API, trained step by step


def test_xgbregressor_on_diabetes_trains_and_restores() -> None:
    """XGBRegressor continued with fit(xgb_model=...) and its save_model/load_model (PASS)."""
    X_train, X_test, y_train, y_test = DIABETES

    def make_trainer(seed: int) -> XGBoostTrainer:
        model = xgb.XGBRegressor(
            max_depth=3, learning_rate=0.1, subsample=0.8, n_jobs=1, random_state=seed
        )
        model.set_params(seed_per_iteration=True)  # resumable subsampling
        return XGBoostTrainer(model, rounds_per_step=2, evals=[((X_test, y_test), "test")])

    batches = [(X_train, y_train)] * 10
    loss = LossDecreasesCheck(make_trainer=make_trainer, batches=batches).run()
    restore = CheckpointRestoreCheck(make_trainer=make_trainer, batches=batches).run()
    assert ("pass", "pass") == (loss.status.value, restore.status.value)


def test_lgbmregressor_checkpointed_with_joblib_restores() -> None:
    """LGBMRegressor continued with fit(init_model=...), checkpointed with joblib (PASS)."""
    import joblib

    X_train, X_test, y_train, y_test = DIABETES

    def make_trainer(seed: int) -> LightGBMTrainer:
        model = lgb.LGBMRegressor(
            num_leaves=7,
            learning_rate=0.1,
            subsample=0.8,
            subsample_freq=1,
            n_jobs=1,
            random_state=seed,
            verbose=-1,
        )
        return LightGBMTrainer(
            model,
            rounds_per_step=2,
            valid_sets=[(X_test, y_test)],
            valid_names=["test"],
            save=joblib.dump,
            load=joblib.load,
        )

    batches = [(X_train, y_train)] * 10
    loss = LossDecreasesCheck(make_trainer=make_trainer, batches=batches).run()
    restore = CheckpointRestoreCheck(make_trainer=make_trainer, batches=batches).run()
    assert ("pass", "pass") == (loss.status.value, restore.status.value)
