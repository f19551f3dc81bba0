"""Rubric test 2: the model specification trains, and it survives a crash.

"Useful assertions include testing that training results in decreased loss and that a model
can restore from a checkpoint after a mid-training job crash" (Breck et al., ML Test Score).

- `LossDecreasesCheck` runs your ``train_step`` for ``n_steps`` and judges the loss curve
  with a robust trend test (`loss_trend`: Kendall's tau on block means, in
  `mlchecks.stats.trend`) plus a minimum relative drop; a non-finite loss fails naming the
  step. With ``overfit_one_batch=True`` it repeats one batch and demands the loss fall to a
  small fraction of its start.
- `CheckpointRestoreCheck` trains an uninterrupted reference run, then a run that writes
  checkpoints with your ``save(path)`` and crashes (optionally a real ``SIGKILL`` of a child
  process), restores a fresh trainer with your ``load(path)`` after re-seeding the global
  generators, continues, and compares the final ``state()`` entry by entry, the losses after
  the restore and the step counter with the reference.

Both checks leave your objects as they were: they train copies or fresh trainers from your
``make_trainer(seed)``, and they restore the process-wide random generators they touch.

>>> from mlchecks.checks.training import LossDecreasesCheck, CheckpointRestoreCheck
>>> LossDecreasesCheck.__module__
'mlchecks.checks._loss'
"""

from __future__ import annotations

from mlchecks.checks._checkpoint import CheckpointRestoreCheck
from mlchecks.checks._loss import LossDecreasesCheck
from mlchecks.stats.trend import LossTrend, loss_trend, min_blocks

__all__ = [
    "CheckpointRestoreCheck",
    "LossDecreasesCheck",
    "LossTrend",
    "loss_trend",
    "min_blocks",
]
