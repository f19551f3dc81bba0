"""XGBoostTrainer: boosting rounds as steps, a bitwise state, checkpoints through save_model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")

from sklearn.datasets import load_breast_cancer  # noqa: E402

from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.exceptions import InvalidInput  # noqa: E402
from mlchecks.integrations.xgboost import XGBoostTrainer  # noqa: E402
from mlchecks.protocols import Trainer  # noqa: E402

X, y = load_breast_cancer(return_X_y=True)
PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "eta": 0.3,
    "max_depth": 3,
    "nthread": 1,
    "seed": 0,
}


def make_trainer(seed: int, **kwargs: Any) -> XGBoostTrainer:
    return XGBoostTrainer({**PARAMS, "seed": seed}, **kwargs)


class TestXGBoostTrainer:
    def test_is_a_trainer(self) -> None:
        """The adapter satisfies the Trainer protocol."""
        assert isinstance(make_trainer(0), Trainer)

    def test_step_adds_rounds_and_returns_the_eval_loss(self) -> None:
        """Each step adds rounds_per_step rounds; the loss is the last 'train' logloss."""
        trainer = make_trainer(0, rounds_per_step=3)
        loss = trainer.train_step((X, y))
        assert (1, 3) == (trainer.step, trainer.booster.num_boosted_rounds())
        assert trainer.history["train"]["logloss"][-1] == pytest.approx(loss)
        trainer.train_step(xgb.DMatrix(X, label=y))
        assert 6 == trainer.booster.num_boosted_rounds()
        assert trainer.history["train"]["logloss"][-1] < loss

    def test_state_changes_every_step(self) -> None:
        """The model bytes, round count and step change with every step."""
        trainer = make_trainer(0)
        trainer.train_step((X, y))
        before = trainer.state()
        trainer.train_step((X, y))
        after = trainer.state()
        assert {"model", "num_boosted_rounds", "step", "best_iteration"} <= set(after)
        assert not np.array_equal(before["model"], after["model"])
        assert 2 == int(after["num_boosted_rounds"])

    def test_save_load_round_trip_is_bitwise(self, tmp_path: Path) -> None:
        """A trainer loaded from a checkpoint has the same state and predictions."""
        es = xgb.callback.EarlyStopping(rounds=5, data_name="valid")
        dvalid = xgb.DMatrix(X[400:], label=y[400:])
        trainer = make_trainer(0, evals=[(dvalid, "valid")], callbacks=[es])
        for _ in range(3):
            trainer.train_step((X[:400], y[:400]))
        trainer.save(tmp_path / "ckpt")
        fresh = make_trainer(0, evals=[(dvalid, "valid")], callbacks=[])
        fresh.load(tmp_path / "ckpt")
        expected, got = trainer.state(), fresh.state()
        assert sorted(expected) == sorted(got)
        for key in expected:
            np.testing.assert_array_equal(expected[key], got[key], err_msg=key)
        np.testing.assert_array_equal(trainer.predict(X), fresh.predict(X))

    def test_user_save_and_load_callables_are_used(self, tmp_path: Path) -> None:
        """save(booster, file) and load(file) -> Booster replace the defaults."""
        calls: list[str] = []

        def save(booster: Any, file: str) -> None:
            calls.append("save")
            booster.save_model(file)

        def load(file: str) -> Any:
            calls.append("load")
            return xgb.Booster(model_file=file)

        trainer = make_trainer(0, save=save, load=load)
        trainer.train_step((X, y))
        trainer.save(tmp_path / "ckpt")
        fresh = make_trainer(0, save=save, load=load)
        fresh.load(tmp_path / "ckpt")
        assert ["save", "load"] == calls
        assert 1 == fresh.step

    def test_errors_name_the_problem(self) -> None:
        """Bad arguments and batches raise InvalidInput naming the field."""
        with pytest.raises(InvalidInput, match="'rounds_per_step'"):
            XGBoostTrainer(PARAMS, rounds_per_step=0)
        with pytest.raises(InvalidInput, match="'params'"):
            XGBoostTrainer([("eta", 0.1)])  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="'batch'"):
            make_trainer(0).train_step(X)
        with pytest.raises(InvalidInput, match="not been trained"):
            make_trainer(0).predict(X)
        with pytest.raises(InvalidInput, match="'loss_metric'"):
            make_trainer(0, loss_metric="auc").train_step((X, y))


class TestTrainingChecks:
    def test_healthy_training_passes(self) -> None:
        """LossDecreasesCheck and CheckpointRestoreCheck pass a healthy booster."""
        batches = [(X[:400], y[:400])] * 12
        loss = LossDecreasesCheck(make_trainer=make_trainer, batches=batches).run()
        restore = CheckpointRestoreCheck(make_trainer=make_trainer, batches=batches).run()
        assert ("pass", "pass") == (loss.status.value, restore.status.value)

    def test_forgotten_early_stopping_state_fails(self) -> None:
        """A checkpoint of the booster alone loses the EarlyStopping callback's state."""
        dvalid = xgb.DMatrix(X[400:], label=y[400:])

        def user_trainer(seed: int) -> XGBoostTrainer:
            return make_trainer(
                seed,
                evals=[(dvalid, "valid")],
                callbacks=[xgb.callback.EarlyStopping(rounds=5, data_name="valid")],
                save=lambda booster, file: booster.save_model(file),
                load=lambda file: xgb.Booster(model_file=file),
            )

        result = CheckpointRestoreCheck(
            make_trainer=user_trainer, batches=[(X[:400], y[:400])] * 10
        ).run()
        finding = result.finding("restored_state")
        assert ("fail", "fail") == (result.status.value, finding.status.value)
        assert "callbacks/0/best_scores/valid/logloss" in finding.message


def test_missing_xgboost_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without XGBoost, building the trainer raises ImportError with the install command."""
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(ImportError, match=r'pip install "mlchecks-infra\[xgboost\]"'):
        XGBoostTrainer(PARAMS)


class TestScikitLearnAPI:
    def estimator_trainer(self, seed: int, **kwargs: Any) -> XGBoostTrainer:
        clf = xgb.XGBClassifier(
            max_depth=2,
            learning_rate=0.3,
            n_jobs=1,
            random_state=seed,
            eval_metric="logloss",
            callbacks=[xgb.callback.EarlyStopping(rounds=5, data_name="validation_1")],
        )
        return XGBoostTrainer(
            clf, rounds_per_step=2, evals=[((X[400:], y[400:]), "valid")], **kwargs
        )

    def test_fit_continues_the_booster(self) -> None:
        """Each step fits n_estimators=rounds_per_step more rounds onto the booster."""
        trainer = self.estimator_trainer(0)
        first = trainer.train_step((X[:400], y[:400]))
        assert trainer.train_step((X[:400], y[:400])) < first
        assert 4 == trainer.booster.num_boosted_rounds()
        assert (len(X), 2) == trainer.predict(X).shape
        assert {"train", "valid"} == set(trainer.history)

    def test_save_load_round_trip_is_bitwise(self, tmp_path: Path) -> None:
        """estimator.save_model / load_model plus the callbacks restore the state exactly."""
        trainer = self.estimator_trainer(0)
        for _ in range(3):
            trainer.train_step((X[:400], y[:400]))
        trainer.save(tmp_path / "ckpt")
        fresh = self.estimator_trainer(0)
        fresh.load(tmp_path / "ckpt")
        expected, got = trainer.state(), fresh.state()
        assert sorted(expected) == sorted(got)
        for key in expected:
            np.testing.assert_array_equal(expected[key], got[key], err_msg=key)

    def test_callbacks_belong_to_the_estimator(self) -> None:
        """With an estimator, callbacks= on the trainer is rejected with the right place."""
        with pytest.raises(InvalidInput, match="'callbacks' go into the estimator"):
            XGBoostTrainer(xgb.XGBClassifier(), callbacks=[xgb.callback.EarlyStopping(rounds=2)])

    def test_checkpoint_restore_passes(self) -> None:
        """CheckpointRestoreCheck passes the estimator trained step by step."""
        result = CheckpointRestoreCheck(
            make_trainer=self.estimator_trainer, batches=[(X[:400], y[:400])] * 6
        ).run()
        assert "pass" == result.status.value
