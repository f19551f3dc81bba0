"""Lightning and Keras systems written the way their users write them, with expected verdicts.

Lightning: ``LightningModule`` classes with ``configure_optimizers`` returning an optimizer
and a scheduler, a ``LightningDataModule`` over scikit-learn's iris data, user callbacks, a
CPU ``Trainer``. Keras 3 (torch backend): ``Sequential`` models with Dense, Dropout and
BatchNormalization, compiled with Adam and ``sparse_categorical_crossentropy``, on
scikit-learn's breast cancer and iris data. mlchecks is used from its public docs only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported: no TensorFlow
torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")
keras = pytest.importorskip("keras")
nn = torch.nn

from sklearn.datasets import load_breast_cancer, load_iris  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from mlchecks.checks.single_batch import SingleBatchCheck  # noqa: E402
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.integrations.keras import KerasTrainer  # noqa: E402
from mlchecks.integrations.lightning import LightningTrainer, take_batches  # noqa: E402

pytestmark = pytest.mark.integration


def scaled(loader: Any) -> tuple[np.ndarray, np.ndarray]:
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X).astype("float32"), y.astype("int64")


IRIS = scaled(load_iris)
CANCER = scaled(load_breast_cancer)


# ------------------------------------------------------------------------------- Lightning


class IrisDataModule(L.LightningDataModule):
    def __init__(self, batch_size: int = 16) -> None:
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str) -> None:
        X, y = IRIS
        self.train = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))

    def train_dataloader(self) -> Any:
        generator = torch.Generator().manual_seed(0)
        return torch.utils.data.DataLoader(
            self.train, batch_size=self.batch_size, shuffle=True, generator=generator
        )


class IrisClassifier(L.LightningModule):
    def __init__(self, hidden: int = 32, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(hidden, 3)

    def forward(self, x: Any) -> Any:
        return self.head(self.encoder(x))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.8)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler}}


class FineTuner(IrisClassifier):
    """Fine-tunes the head only: the encoder is frozen on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder.requires_grad_(False)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.head.parameters(), lr=0.1, momentum=0.9)


class ForgottenUnfreeze(IrisClassifier):
    """Meant to train everything, but the freeze line copied from the fine-tuner stayed."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder.requires_grad_(False)


class LinearWarmup(L.Callback):
    """Warms the learning rate up over the first steps, keeping its own step count."""

    def __init__(self, warmup_steps: int = 20) -> None:
        self.warmup_steps = warmup_steps
        self.steps_done = 0

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
        scale = min(1.0, (self.steps_done + 1) / self.warmup_steps)
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = pl_module.hparams.lr * scale
        self.steps_done += 1


class SavedLinearWarmup(LinearWarmup):
    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps_done = state_dict["steps_done"]


def fit_trainer(callbacks: list[Any]) -> Any:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


IRIS_BATCHES = take_batches(IrisDataModule(), n=8)


def iris_lightning(seed: int, module: type = IrisClassifier, callbacks: Any = ()) -> Any:
    L.seed_everything(seed, verbose=False)
    return LightningTrainer(module(), fit_trainer([c() for c in callbacks]), output="softmax")


def test_lightning_iris_loss_decreases() -> None:
    """A DataModule-fed classifier with AdamW and StepLR: the loss falls (PASS)."""
    result = LossDecreasesCheck(make_trainer=iris_lightning, batches=IRIS_BATCHES * 20).run()
    assert "pass" == result.status.value, str(result)


def test_lightning_warmup_callback_with_state_dict_restores() -> None:
    """A warmup callback saved in the checkpoint: the resumed run is exact (PASS)."""
    result = CheckpointRestoreCheck(
        make_trainer=lambda seed: iris_lightning(seed, callbacks=[SavedLinearWarmup]),
        batches=IRIS_BATCHES,
    ).run()
    assert "pass" == result.status.value, str(result)


def test_lightning_warmup_callback_without_state_dict_fails() -> None:
    """The warmup callback keeps its step count outside the checkpoint: after a resume it
    warms up again from zero (FAIL, naming the callback's counter)."""
    result = CheckpointRestoreCheck(
        make_trainer=lambda seed: iris_lightning(seed, callbacks=[LinearWarmup]),
        batches=IRIS_BATCHES,
    ).run()
    assert "fail" == result.status.value
    assert "callback/LinearWarmup/steps_done" in result.finding("restored_state").message
    assert "fail" == result.finding("losses_after_restore").status.value


def test_lightning_fine_tuning_declared_frozen_passes() -> None:
    """An encoder frozen on purpose and declared frozen: the head trains (PASS)."""
    result = SingleBatchCheck(
        make_trainer=lambda seed: iris_lightning(seed, FineTuner),
        batch=IRIS_BATCHES[0],
        frozen=["param/encoder.*"],
    ).run()
    assert "pass" == result.status.value, str(result)


def test_lightning_encoder_frozen_by_mistake_fails() -> None:
    """The freeze line left in a module meant to train everything (FAIL, named)."""
    result = SingleBatchCheck(
        make_trainer=lambda seed: iris_lightning(seed, ForgottenUnfreeze),
        batch=IRIS_BATCHES[0],
    ).run()
    finding = result.finding("frozen_parameters")
    assert ("fail", "fail") == (result.status.value, finding.status.value)
    assert "param/encoder.0.weight" in finding.message


# ------------------------------------------------------------------------------- Keras


def cancer_model(seed: int, *, freeze_first: bool = False) -> Any:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(30,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    if freeze_first:
        model.layers[0].trainable = False  # left over from a transfer-learning experiment
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


X_CANCER, Y_CANCER = CANCER
CANCER_BATCHES = [(X_CANCER[i : i + 32], Y_CANCER[i : i + 32]) for i in range(0, 320, 32)]


def test_keras_breast_cancer_loss_decreases() -> None:
    """A Sequential Dense/BatchNormalization/Dropout model with Adam: the loss falls (PASS)."""
    result = LossDecreasesCheck(
        make_trainer=lambda seed: KerasTrainer(cancer_model(seed)), batches=CANCER_BATCHES * 4
    ).run()
    assert "pass" == result.status.value, str(result)


def test_keras_model_save_restores() -> None:
    """model.save / keras.models.load_model resume training exactly (PASS)."""
    result = CheckpointRestoreCheck(
        make_trainer=lambda seed: KerasTrainer(cancer_model(seed)), batches=CANCER_BATCHES
    ).run()
    assert "pass" == result.status.value, str(result)


def keep_weights(model: Any, path: Path) -> None:
    """The user's checkpoint: the weights as a list of arrays (model.get_weights())."""
    with open(path, "wb") as handle:
        np.savez(handle, *model.get_weights())


def restore_weights(model: Any, path: Path) -> None:
    with np.load(path) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])


def test_keras_weights_only_checkpoint_fails() -> None:
    """get_weights/set_weights checkpoints lose Adam's moments and iteration count (FAIL,
    naming the optimizer variables)."""
    result = CheckpointRestoreCheck(
        make_trainer=lambda seed: KerasTrainer(
            cancer_model(seed), save=keep_weights, load=restore_weights
        ),
        batches=CANCER_BATCHES,
    ).run()
    message = result.finding("restored_state").message
    assert "fail" == result.status.value
    assert "'optim/layer0.Dense/kernel/momentum'" in message or "'optim/iteration'" in message


def test_keras_layer_frozen_by_mistake_fails() -> None:
    """layer.trainable = False left in: its weights never train (FAIL, named)."""
    result = SingleBatchCheck(
        make_trainer=lambda seed: KerasTrainer(cancer_model(seed, freeze_first=True)),
        batch=CANCER_BATCHES[0],
        train_example=False,
    ).run()
    finding = result.finding("frozen_parameters")
    assert ("fail", "fail") == (result.status.value, finding.status.value)
    assert "'param/layer0.Dense/kernel'" in finding.message


def iris_keras(seed: int) -> KerasTrainer:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
    )
    return KerasTrainer(model)


def test_keras_iris_single_batch_passes() -> None:
    """Three classes, one batch and one example through train_on_batch and predict (PASS)."""
    X, y = IRIS
    result = SingleBatchCheck(make_trainer=iris_keras, batch=(X[::10], y[::10])).run()
    assert "pass" == result.status.value, str(result)
