"""User code as a type checker sees it: `mypy` (strict) checks this file in CI.

Every limit takes a plain number or a condition, every range a pair or `Between`, without a
cast or a `type: ignore`; pytest imports the module (doctest collection), so every check here
also constructs at run time.
"""

from __future__ import annotations

import numpy as np

from mlchecks import (
    AtLeast,
    AtMost,
    Between,
    CanaryCheck,
    CheckpointRestoreCheck,
    LossDecreasesCheck,
    NoWorseThan,
    PipelineCheck,
    QualityCheck,
    ReproducibilityCheck,
    RollbackCheck,
    SingleBatchCheck,
)
from mlchecks.checks.pipeline import Pipeline, Stage
from mlchecks.demo.suite import demo_trainer, demo_training_run
from mlchecks.serving import InProcessServer

server = InProcessServer(loader=lambda version: lambda inputs: inputs)
labels = np.array([0, 1, 1, 0])
batches = [(np.ones((4, 3)), labels)] * 40

checks = [
    ReproducibilityCheck(make_run=demo_training_run, max_churn=0.02, prediction_atol=1e-4),
    ReproducibilityCheck(
        make_run=demo_training_run, max_churn=AtMost(0.02, severity="warn"), n_top=3, alpha=0.01
    ),
    LossDecreasesCheck(make_trainer=demo_trainer, batches=batches, min_relative_drop=0.1),
    LossDecreasesCheck(make_trainer=demo_trainer, batches=batches, min_relative_drop=AtLeast(0.1)),
    CheckpointRestoreCheck(make_trainer=demo_trainer, batches=batches, state_atol=1e-6),
    SingleBatchCheck(make_trainer=demo_trainer, batch=batches[0], update_ratio_range=(1e-8, 1.0)),
    SingleBatchCheck(make_trainer=demo_trainer, batch=batches[0], update_ratio_range=Between(0, 1)),
    PipelineCheck(Pipeline([Stage("source", lambda: [1])]), max_prediction_mismatch=0.01),
    QualityCheck(
        labels=labels,
        predictions=labels,
        baseline_predictions=labels,
        metric_limits={"accuracy": 0.7, "log_loss": AtMost(0.5)},
        max_regression={"accuracy": NoWorseThan(abs=0.01)},
        alpha=0.05,
    ),
    CanaryCheck(server, "2", probe_inputs=[1.0], max_latency_ratio=1.5, min_agreement=0.9),
    CanaryCheck(server, "2", probe_inputs=[1.0], max_psi=AtMost(0.2, severity="warn")),
    RollbackCheck(server, server, "2", probe_inputs=[1.0], max_rollback_s=0.5, n_repeats=2),
]
