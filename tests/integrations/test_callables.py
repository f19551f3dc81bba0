"""Tests for mlchecks.integrations.callables: a Trainer from your own callables."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks import Status
from mlchecks.checks.single_batch import SingleBatchCheck
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.integrations import FunctionTrainer
from mlchecks.protocols import Trainer

_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(64, 3))
BATCHES = [(X[i : i + 16], X[i : i + 16] @ np.array([1.0, -2.0, 0.5])) for i in range(0, 64, 16)]


class LinearModel:
    """A user's own tiny training code: least squares with momentum, no framework."""

    def __init__(self, seed: int, *, save_velocity: bool = True) -> None:
        rng = np.random.default_rng(seed)
        self.w = rng.normal(size=3)
        self.velocity = np.zeros(3)
        self.save_velocity = save_velocity
        self.grad = np.zeros(3)

    def step(self, batch: Any) -> float:
        inputs, targets = batch
        error = inputs @ self.w - targets
        self.grad = inputs.T @ error / len(targets)
        self.velocity = 0.9 * self.velocity + self.grad
        self.w = self.w - 0.05 * self.velocity
        return float(np.mean(error**2))

    def save(self, path: Path) -> None:
        arrays = {"w": self.w, "velocity": self.velocity if self.save_velocity else np.zeros(3)}
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def load(self, path: Path) -> None:
        with np.load(path) as data:
            self.w, self.velocity = data["w"].copy(), data["velocity"].copy()


def wrap(model: LinearModel, *, with_gradients: bool = True) -> FunctionTrainer:
    return FunctionTrainer(
        step=model.step,
        predict=lambda inputs: np.asarray(inputs) @ model.w,
        state=lambda: {"param/w": model.w.copy(), "optim/velocity": model.velocity.copy()},
        save=model.save,
        load=model.load,
        gradients=(lambda: {"param/w": model.grad.copy()}) if with_gradients else None,
    )


def make_trainer(seed: int) -> FunctionTrainer:
    return wrap(LinearModel(seed))


def make_forgetful(seed: int) -> FunctionTrainer:
    return wrap(LinearModel(seed, save_velocity=False))


class TestFunctionTrainer:
    def test_is_a_trainer(self) -> None:
        """It satisfies the Trainer protocol and delegates to the callables."""
        trainer = make_trainer(0)
        assert isinstance(trainer, Trainer)
        assert isinstance(trainer.train_step(BATCHES[0]), float)
        assert (16,) == np.shape(trainer.predict(BATCHES[0][0]))
        assert {"param/w", "optim/velocity"} == set(trainer.state())

    def test_optional_methods_exist_only_when_given(self) -> None:
        """gradients() and trace() are attributes only when their callables are given."""
        assert hasattr(make_trainer(0), "gradients")
        bare = wrap(LinearModel(0), with_gradients=False)
        assert not hasattr(bare, "gradients")
        assert not hasattr(bare, "trace")

    def test_rejects_what_is_not_callable(self) -> None:
        """A missing or non-callable function is rejected, naming it."""
        model = LinearModel(0)
        with pytest.raises(InvalidInput, match="'predict' must be callable"):
            FunctionTrainer(
                step=model.step, predict=3, state=dict, save=model.save, load=model.load
            )  # type: ignore[arg-type]

    def test_cannot_be_deep_copied(self) -> None:
        """A deep copy would share the user's objects, so it raises TypeError."""
        with pytest.raises(TypeError, match="cannot be deep-copied"):
            copy.deepcopy(make_trainer(0))

    def test_given_trainer_is_checked_in_place_and_restored(self) -> None:
        """A trainer passed directly is trained in place and restored with its own load()."""
        trainer = make_trainer(0)
        before = trainer.state()
        result = SingleBatchCheck(trainer=trainer, batch=BATCHES[0], train_example=False).run()
        assert Status.PASS == result.status, str(result)
        assert "checkpoint" == result.details["isolation"]
        assert all(np.array_equal(before[k], v) for k, v in trainer.state().items())


class TestChecksOnFunctionTrainer:
    def test_loss_decreases(self) -> None:
        """The user's loop passes LossDecreasesCheck."""
        result = LossDecreasesCheck(make_trainer=make_trainer, batches=BATCHES, n_steps=40).run()
        assert Status.PASS == result.status, str(result)

    def test_complete_checkpoint_passes(self) -> None:
        """A checkpoint with the weights and the velocity resumes exactly."""
        result = CheckpointRestoreCheck(make_trainer=make_trainer, batches=BATCHES, n_steps=8).run()
        assert Status.PASS == result.status, str(result)

    def test_forgotten_velocity_fails(self) -> None:
        """A checkpoint that forgets the momentum FAILS restored_state naming it."""
        result = CheckpointRestoreCheck(
            make_trainer=make_forgetful, batches=BATCHES, n_steps=8
        ).run()
        assert Status.FAIL == result.status
        assert "optim/velocity" in result.finding("restored_state").message
