"""mlchecks inside an ordinary PyTorch training script.

A plain training script (model, optimizer, scheduler, a loop, its own checkpoint code) with
the ML Test Score's checks added where they pay off:

- before the long run, a preflight suite on a few batches: `SingleBatchCheck` (one example
  and one batch go through training and prediction; every tensor stays finite and every
  parameter moves), `LossDecreasesCheck` (the loss goes down) and `CheckpointRestoreCheck`
  (training resumed from *this script's* checkpoint code continues exactly as if it had
  never stopped). A failure stops the script before it wastes the compute;
- after training, before export, `QualityCheck` against the model in production: paired
  on the same validation rows, overall and per customer segment. The model is written
  only when it passes.

Run it (needs torch; the data is synthetic and made here, a few seconds on a CPU)::

    python examples/pytorch_training_script.py                 # exit 0: writes model.pt
    python examples/pytorch_training_script.py --plant-fault   # exit 1: trains nothing

``--plant-fault`` plants a classic resume bug: the checkpoint forgets the optimizer state.
Resuming from it would silently restart AdamW's moments; `CheckpointRestoreCheck` names
every entry the checkpoint lost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlchecks import AtLeast, NoWorseThan, Suite
from mlchecks.checks.quality import QualityCheck
from mlchecks.checks.single_batch import SingleBatchCheck
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck
from mlchecks.integrations.torch import TorchTrainer

N_FEATURES, N_CLASSES, BATCH_SIZE = 16, 4, 64
PLANTED_FAULT = False  # set by --plant-fault

# --------------------------------------------------------------------------- the data


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` customers: features, one of 4 plans to recommend, and a segment id (0..3)."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, N_FEATURES, generator=generator)
    mixing = torch.randn(N_FEATURES, N_CLASSES, generator=torch.Generator().manual_seed(99))
    noise = 0.7 * torch.randn(n, N_CLASSES, generator=generator)
    labels = (features @ mixing + noise).argmax(dim=1)
    segment = (features[:, 0] > 0).long() * 2 + (features[:, 1] > 0).long()
    return features, labels, segment


def batches_of(features: torch.Tensor, labels: torch.Tensor, seed: int) -> list[Any]:
    """One epoch of shuffled mini-batches, the order fixed by ``seed``."""
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    starts = range(0, len(order) - BATCH_SIZE + 1, BATCH_SIZE)  # full batches only
    return [
        (features[order[i : i + BATCH_SIZE]], labels[order[i : i + BATCH_SIZE]]) for i in starts
    ]


X_TRAIN, Y_TRAIN, _ = make_data(4096, seed=0)
X_VALID, Y_VALID, SEGMENT_VALID = make_data(4000, seed=1)

# --------------------------------------------------------------------------- the model


class Recommender(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(N_FEATURES, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64), nn.ReLU()
        )
        self.head = nn.Linear(64, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.body(x))
        return logits


def build(seed: int) -> tuple[nn.Module, Any, Any]:
    """Everything the script builds before its loop: model, optimizer, scheduler."""
    torch.manual_seed(seed)
    model = Recommender()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=200, gamma=0.5)
    return model, optimizer, scheduler


# --------------------------------------------------------------------------- checkpoints


def checkpoint_state(model: nn.Module, optimizer: Any, scheduler: Any, step: int) -> dict[str, Any]:
    """What this script's checkpoints hold: all it needs to resume training."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),  # the dropout masks after a resume
        "step": step,
    }
    if PLANTED_FAULT:
        del state["optimizer"]  # the bug: resuming starts AdamW from scratch
    return state


def restore_state(
    checkpoint: dict[str, Any], model: nn.Module, optimizer: Any, scheduler: Any
) -> int:
    """Load a checkpoint written by `checkpoint_state`; return the step to resume from."""
    model.load_state_dict(checkpoint["model"])
    if "optimizer" in checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"])
    return int(checkpoint["step"])


def save_for_checks(trainer: TorchTrainer, path: Path) -> None:
    """This script's checkpoint code, as `TorchTrainer(save_fn=...)` calls it, so the
    checkpoint check tests the functions the training loop really uses."""
    state = checkpoint_state(trainer.model, trainer.optimizer, trainer.scheduler, trainer.step)
    torch.save(state, path)


def load_for_checks(trainer: TorchTrainer, path: Path) -> None:
    """This script's restore code, as `TorchTrainer(load_fn=...)` calls it."""
    saved = torch.load(path, weights_only=True)
    restore_state(saved, trainer.model, trainer.optimizer, trainer.scheduler)


def make_trainer(seed: int) -> TorchTrainer:
    """A fresh trainer, built exactly as the training loop builds its model."""
    model, optimizer, scheduler = build(seed)
    return TorchTrainer(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        scheduler=scheduler,
        save_fn=save_for_checks,
        load_fn=load_for_checks,
    )


# --------------------------------------------------------------------------- the script


def preflight(seed: int) -> Suite:
    """The checks that run on a few batches before the real training."""
    batches = batches_of(X_TRAIN, Y_TRAIN, seed)
    return Suite(
        [
            SingleBatchCheck(make_trainer=make_trainer, batch=batches[0], seed=seed),
            LossDecreasesCheck(
                make_trainer=make_trainer, batches=batches[:60], seed=seed, n_classes=N_CLASSES
            ),
            # crash_mode="process" would SIGKILL a training process after its checkpoint;
            # in-process is enough for a bug in what the checkpoint holds.
            CheckpointRestoreCheck(make_trainer=make_trainer, batches=batches[:20], seed=seed),
        ],
        name="preflight",
    )


def train(seed: int, epochs: int, rows: slice, checkpoint: Path | None = None) -> nn.Module:
    """The training loop, as it was before mlchecks: epochs of AdamW, a checkpoint after
    each, and a resume from the checkpoint when one is there (after a crash)."""
    model, optimizer, scheduler = build(seed)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=True)
        step = restore_state(saved, model, optimizer, scheduler)
        print(f"resumed from {checkpoint} at step {step}", file=sys.stderr)
    steps_per_epoch = len(X_TRAIN[rows]) // BATCH_SIZE
    for epoch in range(step // steps_per_epoch, epochs):
        model.train()
        for inputs, targets in batches_of(X_TRAIN[rows], Y_TRAIN[rows], seed + epoch):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
        if checkpoint is not None:
            torch.save(checkpoint_state(model, optimizer, scheduler, step), checkpoint)
        print(f"epoch {epoch}: loss {loss.item():.4f}", file=sys.stderr)
    return model.eval()


def probabilities(model: nn.Module, features: torch.Tensor) -> Any:
    """Class probabilities as numpy, in eval mode."""
    with torch.no_grad():
        return torch.softmax(model(features), dim=1).numpy()


def production_model() -> nn.Module:
    """The model serving today. Here: last release, trained on half the data for 3 epochs
    (a real script would load it from the model registry)."""
    return train(seed=100, epochs=3, rows=slice(0, 2048))


def main(argv: list[str] | None = None) -> int:
    """Preflight, train, gate, export; the exit code (0 exported, 1 stopped by a check)."""
    global PLANTED_FAULT
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plant-fault", action="store_true", help="checkpoints forget AdamW")
    parser.add_argument("--out", default="model.pt", help="where to export the model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    PLANTED_FAULT = args.plant_fault
    torch.set_num_threads(1)  # a model this small trains fastest on one CPU thread

    checks = preflight(args.seed).run(progress=False)
    print(checks)
    if not checks.passed:
        print("preflight failed: not training", file=sys.stderr)
        return 1

    checkpoint = Path("checkpoint.pt")
    model = train(args.seed, epochs=8, rows=slice(None), checkpoint=checkpoint)

    gate = Suite(
        [
            QualityCheck(
                labels=Y_VALID.numpy(),
                predictions=probabilities(model, X_VALID),
                baseline_predictions=probabilities(production_model(), X_VALID),
                slices={"segment": SEGMENT_VALID.numpy()},
                metric_limits={"accuracy": AtLeast(0.7)},
                max_regression={
                    "accuracy": NoWorseThan(abs=0.01),
                    "log_loss": NoWorseThan(rel=0.05),
                },
            )
        ],
        name="before export",
    ).run(progress=False)
    print(gate)
    if not gate.passed:
        print("quality gate failed: not exporting", file=sys.stderr)
        return 1
    torch.save(model.state_dict(), args.out)
    checkpoint.unlink()  # the run is complete: nothing left to resume
    print(f"exported {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
