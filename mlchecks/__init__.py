"""mlchecks: composable checks for the infrastructure tests of the ML Test Score rubric.

The core types load eagerly (they need only numpy and attrs); the conditions, the score,
`Suite`, the checks, statistics, serving adapters and reports load on first use, so
``import mlchecks`` stays light and the reports of a `Result` never load the suite.

>>> import mlchecks
>>> mlchecks.Status.worst([mlchecks.Status.PASS, mlchecks.Status.FAIL])
<Status.FAIL: 'fail'>
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlchecks._lazy import LazyNames
from mlchecks.check import Check, Context, run_check
from mlchecks.exceptions import CheckFailed, InvalidInput, MissingDependency, MLChecksError
from mlchecks.protocols import Deployment, Endpoint, ModelServer, Response, Trainer
from mlchecks.result import ErrorInfo, Finding, Result, Status

if TYPE_CHECKING:
    from mlchecks import demo, report, serving, stats, testing  # noqa: F401
    from mlchecks.checks.canary import CanaryCheck
    from mlchecks.checks.canary_judge import CanaryJudge
    from mlchecks.checks.pipeline import Pipeline, PipelineCheck, Stage
    from mlchecks.checks.quality import GoldenSet, QualityCheck
    from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
    from mlchecks.checks.rollback import RollbackCheck
    from mlchecks.checks.rollback_record import RollbackRecordCheck
    from mlchecks.checks.single_batch import SingleBatchCheck
    from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck
    from mlchecks.conditions import AtLeast, AtMost, Between, NoWorseThan
    from mlchecks.score import MLTestScore
    from mlchecks.suite import Suite, SuiteResult

# Public names that live in heavier modules, imported on first attribute access.
_LAZY: dict[str, str] = {
    "__version__": "mlchecks._version",  # importlib.metadata is slow to import
    # The conditions and the score load with the first check, or when named.
    "AtLeast": "mlchecks.conditions",
    "AtMost": "mlchecks.conditions",
    "Between": "mlchecks.conditions",
    "NoWorseThan": "mlchecks.conditions",
    "MLTestScore": "mlchecks.score",
    "CheckpointRestoreCheck": "mlchecks.checks.training",
    "LossDecreasesCheck": "mlchecks.checks.training",
    "SingleBatchCheck": "mlchecks.checks.single_batch",
    "CanaryCheck": "mlchecks.checks.canary",
    "CanaryJudge": "mlchecks.checks.canary_judge",
    "Pipeline": "mlchecks.checks.pipeline",
    "PipelineCheck": "mlchecks.checks.pipeline",
    "RollbackCheck": "mlchecks.checks.rollback",
    "RollbackRecordCheck": "mlchecks.checks.rollback_record",
    "Stage": "mlchecks.checks.pipeline",
    "GoldenSet": "mlchecks.checks.quality",
    "QualityCheck": "mlchecks.checks.quality",
    "ReproducibilityCheck": "mlchecks.checks.reproducibility",
    "TrainingRun": "mlchecks.checks.reproducibility",
    # The suite loads on first use too, so the report modules can be imported without it.
    "Suite": "mlchecks.suite",
    "SuiteResult": "mlchecks.suite",
}

_SUBMODULES = frozenset({"checks", "demo", "integrations", "report", "serving", "stats", "testing"})

__all__ = [
    "__version__",
    "AtLeast",
    "AtMost",
    "Between",
    "CanaryCheck",
    "CanaryJudge",
    "Check",
    "CheckFailed",
    "CheckpointRestoreCheck",
    "Context",
    "Deployment",
    "Endpoint",
    "ErrorInfo",
    "Finding",
    "GoldenSet",
    "InvalidInput",
    "LossDecreasesCheck",
    "MLChecksError",
    "MLTestScore",
    "MissingDependency",
    "ModelServer",
    "NoWorseThan",
    "Pipeline",
    "PipelineCheck",
    "QualityCheck",
    "ReproducibilityCheck",
    "Response",
    "Result",
    "RollbackCheck",
    "RollbackRecordCheck",
    "SingleBatchCheck",
    "Stage",
    "Status",
    "Suite",
    "SuiteResult",
    "Trainer",
    "TrainingRun",
    "run_check",
]

__getattr__, __dir__ = LazyNames(__name__, _LAZY, _SUBMODULES).hooks(__all__)
