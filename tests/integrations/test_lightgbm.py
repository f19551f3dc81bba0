"""LightGBMTrainer: boosting rounds as steps, a bitwise state, checkpoints through save_model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from sklearn.datasets import load_breast_cancer  # noqa: E402

from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.exceptions import InvalidInput  # noqa: E402
from mlchecks.integrations.lightgbm import LightGBMTrainer  # noqa: E402
from mlchecks.protocols import Trainer  # noqa: E402

X, y = load_breast_cancer(return_X_y=True)
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 7,
    "num_threads": 1,
    "deterministic": True,
    "seed": 0,
    "verbose": -1,
}
TRAIN, VALID = (X[:400], y[:400]), (X[400:], y[400:])


def make_trainer(seed: int, **kwargs: Any) -> LightGBMTrainer:
    return LightGBMTrainer({**PARAMS, "seed": seed}, **kwargs)


def early_stopped(seed: int, **kwargs: Any) -> LightGBMTrainer:
    """Steps of 10 rounds at a high learning rate: early stopping fires inside a step."""
    return LightGBMTrainer(
        {**PARAMS, "learning_rate": 0.5, "seed": seed},
        rounds_per_step=10,
        valid_sets=[VALID],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(2, verbose=False)],
        **kwargs,
    )


class TestLightGBMTrainer:
    def test_is_a_trainer(self) -> None:
        """The adapter satisfies the Trainer protocol."""
        assert isinstance(make_trainer(0), Trainer)

    def test_step_adds_rounds_and_returns_the_eval_loss(self) -> None:
        """Each step adds rounds_per_step rounds; the loss is the last 'train' logloss."""
        trainer = make_trainer(0, rounds_per_step=3)
        loss = trainer.train_step(TRAIN)
        assert (1, 3) == (trainer.step, trainer.booster.current_iteration())
        assert trainer.history["train"]["binary_logloss"][-1] == pytest.approx(loss)
        assert trainer.train_step(TRAIN) < loss
        assert 6 == trainer.booster.current_iteration()

    def test_state_changes_every_step(self) -> None:
        """The model text, iteration and step change with every step."""
        trainer = make_trainer(0)
        trainer.train_step(TRAIN)
        before = trainer.state()
        trainer.train_step(TRAIN)
        after = trainer.state()
        assert {"model", "current_iteration", "best_iteration", "step"} <= set(after)
        assert not np.array_equal(before["model"], after["model"])

    def test_save_load_round_trip_is_bitwise(self, tmp_path: Path) -> None:
        """The default checkpoint keeps every tree, the best iteration and the callbacks."""
        trainer = early_stopped(0)
        for _ in range(3):
            trainer.train_step(TRAIN)
        assert trainer.booster.best_iteration > 0
        trainer.save(tmp_path / "ckpt")
        fresh = early_stopped(0)
        fresh.load(tmp_path / "ckpt")
        expected, got = trainer.state(), fresh.state()
        assert sorted(expected) == sorted(got)
        for key in expected:
            np.testing.assert_array_equal(expected[key], got[key], err_msg=key)
        np.testing.assert_array_equal(trainer.predict(X), fresh.predict(X))

    def test_errors_name_the_problem(self) -> None:
        """Bad arguments and batches raise InvalidInput naming the field."""
        with pytest.raises(InvalidInput, match="'rounds_per_step'"):
            LightGBMTrainer(PARAMS, rounds_per_step=1.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="'valid_names'"):
            LightGBMTrainer(PARAMS, valid_sets=[VALID], valid_names=["a", "b"])
        with pytest.raises(InvalidInput, match="'batch'"):
            make_trainer(0).train_step(X)
        with pytest.raises(InvalidInput, match="not been trained"):
            make_trainer(0).save("unused")
        with pytest.raises(InvalidInput, match="'loss_data'"):
            make_trainer(0, loss_data="valid").train_step(TRAIN)


class TestTrainingChecks:
    def test_healthy_training_passes(self) -> None:
        """LossDecreasesCheck and CheckpointRestoreCheck pass a healthy booster."""
        batches = [TRAIN] * 12
        loss = LossDecreasesCheck(make_trainer=make_trainer, batches=batches).run()
        restore = CheckpointRestoreCheck(make_trainer=early_stopped, batches=batches[:6]).run()
        assert ("pass", "pass") == (loss.status.value, restore.status.value)

    def test_booster_saved_without_best_iteration_fails(self) -> None:
        """LightGBM's own save_model/Booster(model_file=) round trip drops best_iteration."""

        def user_trainer(seed: int) -> LightGBMTrainer:
            return early_stopped(
                seed,
                save=lambda booster, file: booster.save_model(file),
                load=lambda file: lgb.Booster(model_file=file),
            )

        result = CheckpointRestoreCheck(make_trainer=user_trainer, batches=[TRAIN] * 6).run()
        finding = result.finding("restored_state")
        assert ("fail", "fail") == (result.status.value, finding.status.value)
        assert "'best_iteration' is 0, expected" in finding.message

    def test_no_possible_split_fails_loss_decreases(self) -> None:
        """min_data_in_leaf above the row count leaves every tree a stump: the loss is flat."""
        result = LossDecreasesCheck(
            make_trainer=lambda seed: make_trainer(seed, rounds_per_step=1),
            batches=[(X[:400], y[:400])] * 12,
        ).run()
        assert "pass" == result.status.value
        flat = LossDecreasesCheck(
            make_trainer=lambda seed: LightGBMTrainer({**PARAMS, "min_data_in_leaf": 1000}),
            batches=[TRAIN] * 12,
        ).run()
        assert ("fail", "fail") == (flat.status.value, flat.finding("loss_trend").status.value)


def test_missing_lightgbm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without LightGBM, building the trainer raises ImportError with the install command."""
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(ImportError, match=r'pip install "mlchecks-infra\[lightgbm\]"'):
        LightGBMTrainer(PARAMS)


class TestScikitLearnAPI:
    def estimator_trainer(self, seed: int, **kwargs: Any) -> LightGBMTrainer:
        clf = lgb.LGBMClassifier(
            num_leaves=7, learning_rate=0.2, n_jobs=1, random_state=seed, verbose=-1
        )
        return LightGBMTrainer(
            clf, rounds_per_step=2, valid_sets=[VALID], valid_names=["valid"], **kwargs
        )

    def test_fit_continues_the_booster(self) -> None:
        """Each step fits n_estimators=rounds_per_step more rounds onto the booster."""
        trainer = self.estimator_trainer(0)
        first = trainer.train_step(TRAIN)
        assert trainer.train_step(TRAIN) < first
        assert 4 == trainer.booster.current_iteration()
        assert (len(X), 2) == trainer.predict(X).shape
        assert {"train", "valid"} == set(trainer.history)

    def test_save_load_round_trip_is_bitwise(self, tmp_path: Path) -> None:
        """The pickled estimator restores the state exactly."""
        trainer = self.estimator_trainer(0)
        for _ in range(3):
            trainer.train_step(TRAIN)
        trainer.save(tmp_path / "ckpt")
        fresh = self.estimator_trainer(0)
        fresh.load(tmp_path / "ckpt")
        expected, got = trainer.state(), fresh.state()
        assert sorted(expected) == sorted(got)
        for key in expected:
            np.testing.assert_array_equal(expected[key], got[key], err_msg=key)

    def test_checkpoint_restore_passes(self) -> None:
        """CheckpointRestoreCheck passes the estimator trained step by step."""
        result = CheckpointRestoreCheck(
            make_trainer=self.estimator_trainer, batches=[TRAIN] * 6
        ).run()
        assert "pass" == result.status.value
