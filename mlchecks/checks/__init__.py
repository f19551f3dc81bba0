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
    from mlchecks.checks.canary_judge import CanaryJudge, CanaryWatch
    from mlchecks.checks.pipeline import Pipeline, PipelineCheck, Stage
    from mlchecks.checks.quality import GoldenSet, QualityCheck
    from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
    from mlchecks.checks.rollback import RollbackCheck
    from mlchecks.checks.rollback_record import RollbackRecordCheck
    from mlchecks.checks.single_batch import SingleBatchCheck
    from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck

_LAZY: dict[str, str] = {
    "CheckpointRestoreCheck": "training",
    "LossDecreasesCheck": "training",
    "SingleBatchCheck": "single_batch",
    "CanaryCheck": "canary",
    "CanaryJudge": "canary_judge",
    "CanaryWatch": "canary_judge",
    "Pipeline": "pipeline",
    "PipelineCheck": "pipeline",
    "RollbackCheck": "rollback",
    "RollbackRecordCheck": "rollback_record",
    "Stage": "pipeline",
    "GoldenSet": "quality",
    "QualityCheck": "quality",
    "ReproducibilityCheck": "reproducibility",
    "TrainingRun": "reproducibility",
}

__all__ = [
    "CanaryCheck",
    "CanaryJudge",
    "CanaryWatch",
    "CheckpointRestoreCheck",
    "GoldenSet",
    "LossDecreasesCheck",
    "Pipeline",
    "PipelineCheck",
    "QualityCheck",
    "ReproducibilityCheck",
    "RollbackCheck",
    "RollbackRecordCheck",
    "SingleBatchCheck",
    "Stage",
    "TrainingRun",
]

__getattr__, __dir__ = LazyNames(__name__, _LAZY).hooks(__all__)
