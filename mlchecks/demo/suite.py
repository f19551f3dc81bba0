"""The suite `mlchecks demo` runs: every built-in check wired to the embedded demo system.

>>> suite = build_suite(fault=None, seed=0)
>>> [check.name for check in suite.checks][:2]
['reproducibility', 'quality']
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlchecks.check import Check
from mlchecks.conditions import AtLeast, NoWorseThan
from mlchecks.demo.system import DemoSystem
from mlchecks.suite import Suite

if TYPE_CHECKING:
    from mlchecks.checks.reproducibility import TrainingRun

__all__ = ["build_suite", "demo_training_run"]


def demo_training_run(seed: int, *, data_seed: int = 0, fault: str | None = None) -> TrainingRun:
    """Train one demo model with ``seed`` and return it as a `TrainingRun`.

    A module-level function (not a closure) so a process pool or a Dask cluster can run it.
    """
    from mlchecks.checks.reproducibility import TrainingRun

    system = DemoSystem(seed=data_seed, fault=fault)
    return TrainingRun(**system.train(seed).run_fields())


def _reproducibility(system: DemoSystem) -> Check:
    from mlchecks.checks.reproducibility import ReproducibilityCheck

    train = functools.partial(demo_training_run, data_seed=system.seed, fault=system.fault_name)
    return ReproducibilityCheck(train=train, seeds=(system.seed, system.seed))


def _quality(system: DemoSystem) -> Check:
    from mlchecks.checks.quality import QualityCheck

    baseline, candidate = system.baseline(), system.candidate()
    return QualityCheck(
        labels=system.y_valid,
        predictions=candidate.predictions,
        baseline_predictions=baseline.predictions,
        slices={"region": candidate.slice_labels()},
        thresholds={"accuracy": AtLeast(0.7)},
        max_regression={"accuracy": NoWorseThan(abs=0.03)},
    )


# In rubric order; each builder takes the (possibly faulty) system and returns a check.
_BUILDERS: tuple[Callable[[DemoSystem], Check], ...] = (_reproducibility, _quality)


def build_suite(fault: str | None = None, seed: int = 0) -> Suite:
    """Every built-in check, wired to a `DemoSystem` with ``fault`` planted (or healthy).

    Args:
        fault: a name from `mlchecks.demo.FAULTS`, or None for the healthy system.
        seed: the demo system's seed.

    Raises:
        InvalidInput: ``fault`` is not a known fault name (the message lists them).
    """
    system = DemoSystem(seed=seed, fault=fault)
    title = "demo" if fault is None else f"demo with fault {fault!r}"
    return Suite([build(system) for build in _BUILDERS], name=title)
