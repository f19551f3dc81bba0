"""The embedded demo ML system the checks run against, with named faults to plant.

A small but complete ML system in numpy, deterministic from a seed: synthetic tabular data
with a slice column (`make_table`), a feature pipeline with separate batch and serving
paths (`FeaturePipeline`), an MLP trainer with Adam, dropout and real checkpoints
(`MLPTrainer`), and a serving stack (`ServedModel` versions in an
`mlchecks.serving.InProcessServer`, a `DemoService` in front). `DemoSystem` wires it all
together; ``DemoSystem(fault=NAME)`` plants one of the bugs in `FAULTS`.

>>> from mlchecks.demo import DemoSystem, FAULTS
>>> system = DemoSystem(seed=0, fault="dead_parameter")
>>> system.fault.check
'single_batch'
>>> len(FAULTS)
12
"""

from __future__ import annotations

from mlchecks.demo.data import (
    CHANNELS,
    CLASSES,
    PLANS,
    REGIONS,
    from_rows,
    make_table,
    region_codes,
    rows,
    split_table,
)
from mlchecks.demo.faults import FAULTS, Fault, get_fault, list_faults
from mlchecks.demo.features import FeaturePipeline
from mlchecks.demo.model import MLPTrainer, make_batches, param_fingerprint, predict_proba
from mlchecks.demo.serving import DemoService, ServedModel, register
from mlchecks.demo.system import (
    BASELINE_VERSION,
    CANDIDATE_VERSION,
    DemoSystem,
    TrainedModel,
    make_trainer,
)

__all__ = [
    "BASELINE_VERSION",
    "CANDIDATE_VERSION",
    "CHANNELS",
    "CLASSES",
    "DemoService",
    "DemoSystem",
    "FAULTS",
    "Fault",
    "FeaturePipeline",
    "MLPTrainer",
    "PLANS",
    "REGIONS",
    "ServedModel",
    "TrainedModel",
    "from_rows",
    "get_fault",
    "list_faults",
    "make_batches",
    "make_table",
    "make_trainer",
    "param_fingerprint",
    "predict_proba",
    "region_codes",
    "register",
    "rows",
    "split_table",
]
