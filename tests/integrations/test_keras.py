"""`KerasTrainer`: a compiled Keras 3 model (torch backend) under the training checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported: no TensorFlow
keras = pytest.importorskip("keras")

from mlchecks.checks.single_batch import SingleBatchCheck  # noqa: E402
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.exceptions import InvalidInput  # noqa: E402
from mlchecks.integrations.keras import KerasTrainer  # noqa: E402
from mlchecks.protocols import Trainer  # noqa: E402

pytestmark = pytest.mark.integration

RNG = np.random.default_rng(0)
X = RNG.normal(size=(128, 6)).astype("float32")
Y = ((X[:, 0] > 0).astype("int64") + (X[:, 1] > 0.5).astype("int64")).astype("int64")
BATCHES = [(X[i : i + 16], Y[i : i + 16]) for i in range(0, 128, 16)]


def build_model(seed: int) -> Any:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy"
    )
    return model


def make_trainer(seed: int) -> KerasTrainer:
    return KerasTrainer(build_model(seed))


def save_weights_only(model: Any, path: Path) -> None:
    """User checkpoint code that keeps the weights only (the optimizer state is lost)."""
    with open(path, "wb") as handle:
        np.savez(handle, *model.get_weights())


def load_weights_only(model: Any, path: Path) -> None:
    with np.load(path) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])


class TestKerasTrainer:
    def test_is_a_trainer_and_steps(self) -> None:
        """It implements the protocol; a step is one train_on_batch."""
        trainer = make_trainer(0)
        assert isinstance(trainer, Trainer)
        losses = [trainer.train_step(batch) for batch in BATCHES[:3]]
        assert 3 == trainer.step
        assert all(np.isfinite(losses))
        assert (4, 3) == trainer.predict(X[:4]).shape

    def test_state_names_are_structural(self) -> None:
        """Two models built alike have the same state names, whatever Keras numbered them."""
        a, b = make_trainer(0), make_trainer(0)
        a.train_step(BATCHES[0])
        b.train_step(BATCHES[0])
        assert sorted(a.state()) == sorted(b.state())
        names = set(a.state())
        assert {
            "param/layer0.Dense/kernel",
            "buffer/layer1.BatchNormalization/moving_mean",
            "optim/layer0.Dense/kernel/momentum",
            "optim/iteration",
            "rng/torch",
            "step",
        } <= names

    def test_gradients_mark_frozen_layers(self) -> None:
        """gradients() reports every parameter; a frozen layer's weights with None."""
        model = build_model(0)
        model.layers[0].trainable = False
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        trainer = KerasTrainer(model)
        assert {} == trainer.gradients()
        trainer.train_step(BATCHES[0])
        grads = trainer.gradients()
        assert grads["param/layer0.Dense/kernel"] is None
        assert grads["param/layer3.Dense/kernel"] is not None

    @pytest.mark.parametrize("checkpoint", ["model", "weights"])
    def test_save_and_load_resume_exactly(self, tmp_path: Path, checkpoint: Any) -> None:
        """model.save / load_model and save_weights / load_weights both resume exactly."""
        a = KerasTrainer(build_model(0), checkpoint=checkpoint)
        for batch in BATCHES[:2]:
            a.train_step(batch)
        a.save(tmp_path / "checkpoint")
        expected = [a.train_step(batch) for batch in BATCHES[2:4]]
        b = KerasTrainer(build_model(1), checkpoint=checkpoint)
        b.load(tmp_path / "checkpoint")
        assert 2 == b.step
        assert expected == [b.train_step(batch) for batch in BATCHES[2:4]]

    def test_rejects_an_uncompiled_model(self) -> None:
        """The model must be compiled: train_on_batch needs its optimizer and loss."""
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        with pytest.raises(InvalidInput, match="must be compiled"):
            KerasTrainer(model)
        with pytest.raises(InvalidInput, match="'model' must be a keras.Model"):
            KerasTrainer(object())


class TestChecks:
    def test_loss_decreases_passes(self) -> None:
        """A healthy model's loss falls over eight epochs of batches."""
        result = LossDecreasesCheck(make_trainer=make_trainer, batches=BATCHES * 8).run()
        assert "pass" == result.status.value, str(result)

    def test_checkpoint_restore_passes(self) -> None:
        """model.save / load_model restores weights, optimizer and generators."""
        result = CheckpointRestoreCheck(
            make_trainer=make_trainer, batches=BATCHES, crash_mode="inprocess"
        ).run()
        assert "pass" == result.status.value, str(result)

    def test_weights_only_checkpoint_fails_naming_optimizer_variables(self) -> None:
        """A checkpoint of the weights only loses the optimizer's variables: FAIL, named."""

        def weights_only(seed: int) -> KerasTrainer:
            return KerasTrainer(build_model(seed), save=save_weights_only, load=load_weights_only)

        result = CheckpointRestoreCheck(
            make_trainer=weights_only, batches=BATCHES, crash_mode="inprocess"
        ).run()
        finding = result.finding("restored_state")
        assert ("fail", "fail") == (result.status.value, finding.status.value)
        assert "'optim/" in finding.message

    def test_single_batch_passes(self) -> None:
        """One batch goes through train_on_batch and predict (no single-example step: batch
        norm needs a batch)."""
        result = SingleBatchCheck(
            make_trainer=make_trainer, batch=BATCHES[0], train_example=False
        ).run()
        assert "pass" == result.status.value, str(result)

    def test_frozen_layer_fails_single_batch(self) -> None:
        """layer.trainable = False by mistake FAILS frozen_parameters, naming the weights."""

        def frozen(seed: int) -> KerasTrainer:
            model = build_model(seed)
            model.layers[0].trainable = False
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            return KerasTrainer(model)

        result = SingleBatchCheck(make_trainer=frozen, batch=BATCHES[0], train_example=False).run()
        finding = result.finding("frozen_parameters")
        assert ("fail", "fail") == (result.status.value, finding.status.value)
        assert "'param/layer0.Dense/kernel'" in finding.message
