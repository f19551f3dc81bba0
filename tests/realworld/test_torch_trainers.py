"""Real-world torch training code, written the way torch users write it, under the checks.

A small CNN (BatchNorm2d, Dropout, AdamW, a StepLR scheduler) on tiny synthetic 8x8 images,
trained by the user's own step function and saved by the user's own checkpoint dict
functions; mlchecks is used from its public docs only (no underscore names). Each case
states its expected verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from mlchecks import Status  # noqa: E402
from mlchecks.checks.single_batch import SingleBatchCheck  # noqa: E402
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.integrations import FunctionTrainer  # noqa: E402
from mlchecks.integrations.torch import TorchTrainer  # noqa: E402

pytestmark = pytest.mark.integration

N_CLASSES = 4


def make_images(n: int, seed: int) -> tuple[Any, Any]:
    """``n`` 1x8x8 images whose class is a bright quadrant, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, size=n)
    images = rng.normal(0.0, 1.0, size=(n, 1, 8, 8)).astype(np.float32)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[i, 0, row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] += 0.6
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


_IMAGES, _LABELS = make_images(256, seed=0)
BATCHES = [(_IMAGES[i : i + 32], _LABELS[i : i + 32]) for i in range(0, 256, 32)]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Torch on one thread: fast on a shared machine and bitwise reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SmallCNN(nn.Module):
    """12 parameter tensors: two conv layers, two batch norms and two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(32, N_CLASSES),
        )

    def forward(self, x: Any) -> Any:
        return self.classifier(self.features(x))


# ----------------------------------------------------------------- the user's training code


def train_one_step(model: Any, optimizer: Any, batch: Any) -> Any:
    """One step of a plain training loop."""
    images, labels = batch
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def train_one_step_clipped(model: Any, optimizer: Any, batch: Any) -> Any:
    """One step with gradient clipping, as in most transformer recipes."""
    images, labels = batch
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    optimizer.step()
    return loss.item()


def train_one_step_autocast(model: Any, optimizer: Any, batch: Any) -> Any:
    """One mixed-precision step on the CPU (bfloat16 autocast)."""
    images, labels = batch
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss


def train_one_step_masked(model: Any, optimizer: Any, batch: Any) -> Any:
    """A masked loss whose mask (labels marked as padding: -1) is empty: 0 / 0 is NaN."""
    images, labels = batch
    optimizer.zero_grad()
    per_example = F.cross_entropy(model(images), labels.clamp(min=0), reduction="none")
    mask = (labels == -1).float()
    loss = (per_example * mask).sum() / mask.sum()
    loss.backward()
    optimizer.step()
    return loss


def save_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    """Everything training depends on, in one dict."""
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        },
        path,
    )


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"])


def save_without_scheduler(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
        },
        path,
    )


def load_without_scheduler(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["rng"])


def save_weights_only(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    torch.save(
        {
            "model": model.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        },
        path,
    )


def load_weights_only(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"])


def save_without_rng(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        },
        path,
    )


def load_without_rng(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])


# ----------------------------------------------------------------- wrapping it for mlchecks

Checkpoint = Callable[[Path, Any, Any, Any], None]


def wrap(
    seed: int,
    *,
    step: Callable[[Any, Any, Any], Any] = train_one_step,
    save: Checkpoint = save_checkpoint,
    load: Checkpoint = load_checkpoint,
    lr: float = 1e-2,
    freeze_first_conv: bool = False,
    wrong_optimizer: bool = False,
) -> TorchTrainer:
    """The user's model, optimizer, scheduler, step and checkpoint code as a TorchTrainer."""
    torch.manual_seed(seed)
    model = SmallCNN()
    if freeze_first_conv:  # the bug: meant to freeze a pretrained backbone of another model
        for param in model.features[0].parameters():
            param.requires_grad = False
    params = SmallCNN().parameters() if wrong_optimizer else model.parameters()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=25, gamma=0.5)
    return TorchTrainer(
        model,
        optimizer,
        step_fn=step,
        scheduler=scheduler,
        output="softmax",
        save_fn=lambda trainer, path: save(
            path, trainer.model, trainer.optimizer, trainer.scheduler
        ),
        load_fn=lambda trainer, path: load(
            path, trainer.model, trainer.optimizer, trainer.scheduler
        ),
    )


def make_trainer(seed: int) -> TorchTrainer:
    return wrap(seed)


def single_batch(make: Callable[[int], Any], **kwargs: Any) -> Any:
    return SingleBatchCheck(make_trainer=make, batch=BATCHES[0], **kwargs).run()


def checkpoint_restore(make: Callable[[int], Any]) -> Any:
    return CheckpointRestoreCheck(make_trainer=make, batches=BATCHES, n_steps=12).run()


class TestHealthyCNN:
    def test_single_batch_passes_and_counts_every_tensor(self) -> None:
        """The healthy CNN passes SingleBatchCheck with all 12 parameter tensors updated."""
        result = single_batch(make_trainer)
        assert Status.PASS == result.status, str(result)
        assert 12 == result.metrics["n_trainable"]
        assert "12 trainable tensors updated" in result.summary

    def test_loss_decreases(self) -> None:
        """Training on the batches for 60 steps decreases the loss."""
        result = LossDecreasesCheck(make_trainer=make_trainer, batches=BATCHES, n_steps=60).run()
        assert Status.PASS == result.status, str(result)

    def test_complete_checkpoint_restores_training(self) -> None:
        """A checkpoint dict with model, optimizer, scheduler and RNG resumes exactly."""
        result = checkpoint_restore(make_trainer)
        assert Status.PASS == result.status, str(result)

    def test_trainer_given_directly_is_left_as_it_was(self) -> None:
        """The user's own trainer object (not a factory) passes and is left untouched."""
        trainer = make_trainer(0)
        before = trainer.state()
        result = SingleBatchCheck(trainer=trainer, batch=BATCHES[0]).run()
        assert Status.PASS == result.status, str(result)
        after = trainer.state()
        assert all(np.array_equal(before[k], after[k]) for k in before)


class TestFrozenLayers:
    def test_frozen_by_mistake_fails_by_name(self) -> None:
        """A conv layer frozen by mistake FAILS frozen_parameters naming its tensors."""
        result = single_batch(lambda seed: wrap(seed, freeze_first_conv=True))
        finding = result.finding("frozen_parameters")
        assert Status.FAIL == finding.status
        assert "'param/features.0.weight'" in finding.message
        assert "'param/features.0.bias'" in finding.message
        assert Status.FAIL == result.status

    def test_frozen_on_purpose_passes_when_declared(self) -> None:
        """The same layer declared in frozen= passes, and the summary counts it."""
        result = single_batch(
            lambda seed: wrap(seed, freeze_first_conv=True), frozen=["param/features.0.*"]
        )
        assert Status.PASS == result.status, str(result)
        assert "10 trainable tensors updated" in result.summary
        assert "2 frozen unchanged" in result.summary


class TestForgottenCheckpointState:
    def test_forgotten_scheduler_fails(self) -> None:
        """A checkpoint without the scheduler's state FAILS naming the scheduler entries."""
        result = checkpoint_restore(
            lambda seed: wrap(seed, save=save_without_scheduler, load=load_without_scheduler)
        )
        assert Status.FAIL == result.status
        assert "sched/" in result.finding("restored_state").message

    def test_forgotten_optimizer_fails(self) -> None:
        """A weights-only checkpoint FAILS naming the optimizer's moments."""
        result = checkpoint_restore(
            lambda seed: wrap(seed, save=save_weights_only, load=load_weights_only)
        )
        assert Status.FAIL == result.status
        assert "exp_avg" in result.finding("restored_state").message

    def test_forgotten_rng_fails_with_dropout(self) -> None:
        """Without the generator's state, dropout draws other masks after the restore."""
        result = checkpoint_restore(
            lambda seed: wrap(seed, save=save_without_rng, load=load_without_rng)
        )
        assert Status.FAIL == result.status
        assert "rng/torch" in result.finding("restored_state").message
        assert Status.FAIL == result.finding("losses_after_restore").status


class TestUserSteps:
    def test_nan_loss_fails(self) -> None:
        """A masked loss over an empty mask is NaN: both checks FAIL on loss_finite."""
        make = lambda seed: wrap(seed, step=train_one_step_masked)  # noqa: E731
        assert Status.FAIL == single_batch(make).finding("loss_finite").status
        result = LossDecreasesCheck(make_trainer=make, batches=BATCHES, n_steps=20).run()
        assert Status.FAIL == result.finding("loss_finite").status

    def test_gradient_clipping_step_passes(self) -> None:
        """A clipped step keeps its clipping; gradients() reports what the optimizer applied."""
        make = lambda seed: wrap(seed, step=train_one_step_clipped)  # noqa: E731
        result = single_batch(make)
        assert Status.PASS == result.status, str(result)
        trainer = make(0)
        trainer.train_step(BATCHES[0])
        grads = trainer.gradients()
        total = float(np.sqrt(sum(float(np.sum(g**2)) for g in grads.values() if g is not None)))
        assert total <= 0.5 + 1e-4
        loss = LossDecreasesCheck(make_trainer=make, batches=BATCHES, n_steps=60).run()
        assert Status.PASS == loss.status, str(loss)

    def test_cpu_autocast_step_passes(self) -> None:
        """A bfloat16 autocast step passes the single-batch and loss checks."""
        make = lambda seed: wrap(seed, step=train_one_step_autocast)  # noqa: E731
        result = single_batch(make, prediction_atol=1e-5)
        assert Status.PASS == result.status, str(result)
        loss = LossDecreasesCheck(make_trainer=make, batches=BATCHES, n_steps=60).run()
        assert Status.PASS == loss.status, str(loss)


class TestOverfitOneBatch:
    @pytest.mark.parametrize("n_steps", [20, 30, 60, 100, 200])
    def test_healthy_cnn_passes_for_every_n_steps(self, n_steps: int) -> None:
        """The loss of one batch collapses then plateaus: PASS whatever n_steps is."""
        result = LossDecreasesCheck(
            make_trainer=make_trainer, batches=BATCHES[:1], overfit_one_batch=True, n_steps=n_steps
        ).run()
        assert Status.PASS == result.status, str(result)
        assert Status.PASS == result.finding("overfit").status

    @pytest.mark.parametrize(
        "broken",
        [{"lr": 0.0}, {"wrong_optimizer": True}],
        ids=["zero_learning_rate", "optimizer_over_another_model"],
    )
    def test_model_that_cannot_learn_fails(self, broken: dict[str, Any]) -> None:
        """A model whose update never happens FAILS overfit."""
        result = LossDecreasesCheck(
            make_trainer=lambda seed: wrap(seed, **broken),
            batches=BATCHES[:1],
            overfit_one_batch=True,
            n_steps=30,
        ).run()
        assert Status.FAIL == result.finding("overfit").status


class TestFunctionTrainer:
    def test_own_loop_wrapped_with_callables(self) -> None:
        """A training loop wrapped as FunctionTrainer passes the checkpoint and loss checks."""

        def make(seed: int) -> FunctionTrainer:
            torch.manual_seed(seed)
            model = SmallCNN()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=25, gamma=0.5)

            def step(batch: Any) -> float:
                model.train()
                loss = train_one_step(model, optimizer, batch)
                scheduler.step()
                return float(loss.item())

            def predict(images: Any) -> Any:
                model.eval()
                with torch.no_grad():
                    return torch.softmax(model(images), dim=1).numpy()

            def state() -> dict[str, Any]:
                out = {f"param/{k}": v.numpy().copy() for k, v in model.state_dict().items()}
                out["sched/last_epoch"] = np.array(scheduler.last_epoch)
                out["rng/torch"] = torch.get_rng_state().numpy().copy()
                return out

            return FunctionTrainer(
                step=step,
                predict=predict,
                state=state,
                save=lambda path: save_checkpoint(path, model, optimizer, scheduler),
                load=lambda path: load_checkpoint(path, model, optimizer, scheduler),
            )

        assert Status.PASS == checkpoint_restore(make).status
        loss = LossDecreasesCheck(make_trainer=make, batches=BATCHES, n_steps=60).run()
        assert Status.PASS == loss.status, str(loss)
