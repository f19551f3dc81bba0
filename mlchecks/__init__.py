"""mlchecks: composable checks for the infrastructure tests of the ML Test Score rubric.

The core types load eagerly (they need only numpy and attrs); the checks, statistics,
serving adapters and reports load on first use, so ``import mlchecks`` stays light.

>>> import mlchecks
>>> mlchecks.Status.worst([mlchecks.Status.PASS, mlchecks.Status.FAIL])
<Status.FAIL: 'fail'>
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from mlchecks._lazy import LazyNames
from mlchecks.check import Check, Context, run_check
from mlchecks.conditions import AtLeast, AtMost, Between, NoWorseThan
from mlchecks.exceptions import CheckFailed, InvalidInput, MissingDependency, MLChecksError
from mlchecks.protocols import Deployment, Endpoint, ModelServer, Response, Trainer
from mlchecks.result import ErrorInfo, Finding, Result, Status
from mlchecks.suite import MLTestScore, Suite, SuiteResult

if TYPE_CHECKING:
    from mlchecks import demo, report, serving, stats, testing  # noqa: F401
    from mlchecks.checks.canary import CanaryCheck
    from mlchecks.checks.pipeline import Pipeline, PipelineCheck, Stage
    from mlchecks.checks.quality import GoldenSet, QualityCheck
    from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
    from mlchecks.checks.rollback import RollbackCheck
    from mlchecks.checks.single_batch import SingleBatchCheck
    from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck

try:
    __version__ = version("mlchecks")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

# Public names that live in heavier modules, imported on first attribute access.
_LAZY: dict[str, str] = {
    "CheckpointRestoreCheck": "mlchecks.checks.training",
    "LossDecreasesCheck": "mlchecks.checks.training",
    "SingleBatchCheck": "mlchecks.checks.single_batch",
    "CanaryCheck": "mlchecks.checks.canary",
    "Pipeline": "mlchecks.checks.pipeline",
    "PipelineCheck": "mlchecks.checks.pipeline",
    "RollbackCheck": "mlchecks.checks.rollback",
    "Stage": "mlchecks.checks.pipeline",
    "GoldenSet": "mlchecks.checks.quality",
    "QualityCheck": "mlchecks.checks.quality",
    "ReproducibilityCheck": "mlchecks.checks.reproducibility",
    "TrainingRun": "mlchecks.checks.reproducibility",
}

_SUBMODULES = frozenset({"checks", "demo", "integrations", "report", "serving", "stats", "testing"})

__all__ = [
    "__version__",
    "AtLeast",
    "AtMost",
    "Between",
    "CanaryCheck",
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
    "SingleBatchCheck",
    "Stage",
    "Status",
    "Suite",
    "SuiteResult",
    "Trainer",
    "TrainingRun",
    "run_check",
]


_loader = LazyNames(__name__, _LAZY, _SUBMODULES)


def __getattr__(name: str) -> Any:
    return _loader.load(name)


def __dir__() -> list[str]:
    return _loader.dir(__all__)
