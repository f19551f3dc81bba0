"""The built-in checks, one module per rubric test (loaded on first use).

>>> from mlchecks.checks import ReproducibilityCheck
>>> ReproducibilityCheck.__module__
'mlchecks.checks.reproducibility'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlchecks._lazy import LazyNames

if TYPE_CHECKING:
    from mlchecks.checks.canary import CanaryCheck
    from mlchecks.checks.pipeline import Pipeline, PipelineCheck, Stage
    from mlchecks.checks.quality import GoldenSet, QualityCheck
    from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
    from mlchecks.checks.rollback import RollbackCheck
    from mlchecks.checks.single_batch import SingleBatchCheck
    from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck

_LAZY: dict[str, str] = {
    "CheckpointRestoreCheck": "training",
    "LossDecreasesCheck": "training",
    "SingleBatchCheck": "single_batch",
    "CanaryCheck": "canary",
    "Pipeline": "pipeline",
    "PipelineCheck": "pipeline",
    "RollbackCheck": "rollback",
    "Stage": "pipeline",
    "GoldenSet": "quality",
    "QualityCheck": "quality",
    "ReproducibilityCheck": "reproducibility",
    "TrainingRun": "reproducibility",
}

__all__ = [
    "CanaryCheck",
    "CheckpointRestoreCheck",
    "GoldenSet",
    "LossDecreasesCheck",
    "Pipeline",
    "PipelineCheck",
    "QualityCheck",
    "ReproducibilityCheck",
    "RollbackCheck",
    "SingleBatchCheck",
    "Stage",
    "TrainingRun",
]

__getattr__, __dir__ = LazyNames(__name__, _LAZY).hooks(__all__)
