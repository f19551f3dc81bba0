"""`LightningTrainer`: a LightningModule and its Trainer under the training checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")
nn = torch.nn

from mlchecks.checks.single_batch import SingleBatchCheck  # noqa: E402
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.exceptions import InvalidInput  # noqa: E402
from mlchecks.integrations.lightning import LightningTrainer, take_batches  # noqa: E402
from mlchecks.protocols import Trainer  # noqa: E402

pytestmark = pytest.mark.integration


class Classifier(L.LightningModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))

    def forward(self, x: Any) -> Any:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.7)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class SeenCounter(L.Callback):
    """Counts training batches, and forgets to save the count (no state_dict)."""

    def __init__(self) -> None:
        self.seen = 0

    def on_train_batch_end(self, *args: Any) -> None:
        self.seen += 1


class SavedSeenCounter(SeenCounter):
    """The same counter, saved in the checkpoint."""

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seen = state_dict["seen"]


def data(n: int = 128, seed: int = 0) -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=generator)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, y


X, Y = data()
BATCHES = [(X[i : i + 16], Y[i : i + 16]) for i in range(0, 128, 16)]


def lightning_trainer(callbacks: list[Any] | None = None) -> Any:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=callbacks or [],
    )


def make_trainer(seed: int, callback: type | None = None) -> LightningTrainer:
    L.seed_everything(seed, verbose=False)
    callbacks = [callback()] if callback is not None else []
    return LightningTrainer(Classifier(), lightning_trainer(callbacks), output="softmax")


class TestLightningTrainer:
    def test_is_a_trainer_and_steps(self) -> None:
        """It implements the protocol; a step is one optimizer step of the Trainer."""
        trainer = make_trainer(0)
        assert isinstance(trainer, Trainer)
        losses = [trainer.train_step(batch) for batch in BATCHES[:3]]
        assert 3 == trainer.step
        assert all(np.isfinite(losses))
        assert (4, 3) == trainer.predict(X[:4]).shape
        assert np.allclose(trainer.predict(X[:4]).sum(axis=1), 1.0)

    def test_state_names_the_parts_of_a_checkpoint(self) -> None:
        """state() holds parameters, optimizer slots, scheduler, callback state, RNG, step."""
        trainer = make_trainer(0, SavedSeenCounter)
        trainer.train_step(BATCHES[0])
        state = trainer.state()
        assert {"param/net.0.weight", "optim/net.0.weight/exp_avg", "sched/last_epoch"} <= set(
            state
        )
        assert {"callback/SavedSeenCounter/seen", "rng/torch", "step"} <= set(state)
        assert 1 == int(state["step"])

    def test_gradients_cover_every_parameter(self) -> None:
        """gradients() reports each parameter; a frozen one with None."""
        trainer = make_trainer(0)
        assert {} == trainer.gradients()
        trainer.module.net[0].bias.requires_grad_(False)
        trainer.train_step(BATCHES[0])
        grads = trainer.gradients()
        assert grads["param/net.0.bias"] is None
        assert grads["param/net.0.weight"] is not None
        assert np.any(grads["param/net.0.weight"] != 0)

    def test_save_and_load_resume_exactly(self, tmp_path: Path) -> None:
        """A checkpoint written with trainer.save_checkpoint resumes the same losses."""
        a = make_trainer(0)
        for batch in BATCHES[:2]:
            a.train_step(batch)
        a.save(tmp_path / "model.ckpt")
        expected = [a.train_step(batch) for batch in BATCHES[2:4]]
        b = make_trainer(1)
        b.load(tmp_path / "model.ckpt")
        assert 2 == b.step
        assert expected == [b.train_step(batch) for batch in BATCHES[2:4]]

    def test_rejects_wrong_types(self) -> None:
        """The module and trainer must be Lightning objects."""
        with pytest.raises(InvalidInput, match="'module' must be a LightningModule"):
            LightningTrainer(nn.Linear(2, 2), lightning_trainer())
        with pytest.raises(InvalidInput, match="'trainer' must be a lightning Trainer"):
            LightningTrainer(Classifier(), object())

    def test_take_batches_reads_a_loader(self) -> None:
        """take_batches reads the first n batches of a DataLoader."""
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=32)
        batches = take_batches(loader, n=2)
        assert 2 == len(batches)
        assert (32, 4) == tuple(batches[0][0].shape)


class TestChecks:
    def test_loss_decreases_passes(self) -> None:
        """A healthy module's loss falls over five epochs of batches."""
        result = LossDecreasesCheck(make_trainer=make_trainer, batches=BATCHES * 5).run()
        assert "pass" == result.status.value, str(result)

    def test_checkpoint_restore_passes(self) -> None:
        """Trainer checkpoints restore module, optimizer, scheduler and callback state."""
        result = CheckpointRestoreCheck(
            make_trainer=lambda seed: make_trainer(seed, SavedSeenCounter),
            batches=BATCHES,
            crash_mode="inprocess",
        ).run()
        assert "pass" == result.status.value, str(result)

    def test_callback_without_state_dict_fails_checkpoint_restore(self) -> None:
        """A callback whose state is not in the checkpoint FAILS, named."""
        result = CheckpointRestoreCheck(
            make_trainer=lambda seed: make_trainer(seed, SeenCounter),
            batches=BATCHES,
            crash_mode="inprocess",
        ).run()
        finding = result.finding("restored_state")
        assert ("fail", "fail") == (result.status.value, finding.status.value)
        assert "'callback/SeenCounter/seen'" in finding.message

    def test_single_batch_passes(self) -> None:
        """One batch and one example go through the Trainer and the module."""
        result = SingleBatchCheck(make_trainer=make_trainer, batch=BATCHES[0]).run()
        assert "pass" == result.status.value, str(result)

    def test_frozen_layer_fails_single_batch(self) -> None:
        """A layer frozen by mistake FAILS frozen_parameters, named."""

        def frozen(seed: int) -> LightningTrainer:
            trainer = make_trainer(seed)
            trainer.module.net[0].requires_grad_(False)
            return trainer

        result = SingleBatchCheck(make_trainer=frozen, batch=BATCHES[0]).run()
        finding = result.finding("frozen_parameters")
        assert ("fail", "fail") == (result.status.value, finding.status.value)
        assert "'param/net.0.weight'" in finding.message
