"""The suite `mlchecks demo` runs: every built-in check wired to the embedded demo system.

>>> suite = build_suite(fault=None, seed=0)
>>> [check.name for check in suite.checks][:2]
['reproducibility', 'loss_decreases']
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks.check import Check
from mlchecks.conditions import AtLeast, NoWorseThan
from mlchecks.demo.data import CLASSES, COLUMNS, make_table, split_table
from mlchecks.demo.model import MLPTrainer, make_batches, predict_proba
from mlchecks.demo.serving import ServedModel
from mlchecks.demo.system import CANDIDATE_VERSION, DemoSystem
from mlchecks.suite import Suite

if TYPE_CHECKING:
    from mlchecks.checks.reproducibility import TrainingRun

__all__ = ["build_suite", "demo_trainer", "demo_training_run"]


def demo_training_run(seed: int, *, data_seed: int = 0, fault: str | None = None) -> TrainingRun:
    """Train one demo model with ``seed`` and return it as a `TrainingRun`.

    A module-level function (not a closure) so a process pool or a Dask cluster can run it.
    """
    from mlchecks.checks.reproducibility import TrainingRun

    return TrainingRun(**_system(data_seed, fault, None).train(seed).run_fields())


def demo_trainer(
    seed: int, *, data_seed: int = 0, fault: str | None = None, lr: float | None = None
) -> MLPTrainer:
    """A fresh demo trainer (with the fault's training code): a picklable ``make_trainer``.

    The checkpoint check restarts training in fresh processes, so its factory must be a
    module-level function rather than a bound method of a `DemoSystem`. ``lr`` overrides
    the system's learning rate.
    """
    return _system(data_seed, fault, lr).make_trainer(seed)


@functools.lru_cache(maxsize=4)
def _system(data_seed: int, fault: str | None, lr: float | None) -> DemoSystem:
    """The demo system a worker trains on, built once per process (data and features).

    Training and ``make_trainer`` read it without changing it, so the factories above can
    share one per (seed, fault, lr) instead of regenerating the data on every call.
    """
    if lr is None:
        return DemoSystem(seed=data_seed, fault=fault)
    return DemoSystem(seed=data_seed, fault=fault, lr=lr)


def _factory(system: DemoSystem, **overrides: Any) -> Callable[[int], MLPTrainer]:
    return functools.partial(
        demo_trainer, data_seed=system.seed, fault=system.fault_name, **overrides
    )


def _loss_decreases(system: DemoSystem) -> Check:
    """100 steps at learning rate 0.02.

    At the demo's default 0.05 the loss falls within ~40 steps and then wanders on a plateau,
    so whether a trend test over a longer window passes depends on the batch order (a few
    percent of random orders fail); at 0.02 it keeps falling through the window for every
    batch order we tried (100 of 100), so only a real fault fails it.
    """
    from mlchecks.checks.training import LossDecreasesCheck

    return LossDecreasesCheck(
        make_trainer=_factory(system, lr=0.02),
        batches=system.batches(system.seed)[:100],
        seed=system.seed,
        n_classes=len(CLASSES),
    )


def _checkpoint_restore(system: DemoSystem) -> Check:
    """Train 40 steps, SIGKILL the training process after a checkpoint, restore, compare."""
    from mlchecks.checks.training import CheckpointRestoreCheck

    return CheckpointRestoreCheck(
        make_trainer=_factory(system),
        batches=system.batches(system.seed)[:40],
        seed=system.seed,
        crash_mode="process",
    )


def _single_batch(system: DemoSystem) -> Check:
    from mlchecks.checks.single_batch import SingleBatchCheck

    batch = system.batches(system.seed)[0]
    return SingleBatchCheck(
        batch=batch, make_trainer=system.make_trainer, seed=system.seed, inputs=batch[0]
    )


def _reproducibility(system: DemoSystem) -> Check:
    from mlchecks.checks.reproducibility import ReproducibilityCheck

    make_run = functools.partial(demo_training_run, data_seed=system.seed, fault=system.fault_name)
    return ReproducibilityCheck(make_run=make_run, seeds=(system.seed, system.seed))


def _quality(system: DemoSystem) -> Check:
    from mlchecks.checks.quality import QualityCheck

    baseline, candidate = system.baseline(), system.candidate()
    return QualityCheck(
        labels=system.y_valid,
        predictions=candidate.predictions,
        baseline_predictions=baseline.predictions,
        slices={"region": candidate.slice_labels()},
        metric_limits={"accuracy": AtLeast(0.7)},
        max_regression={"accuracy": NoWorseThan(abs=0.03)},
    )


def _pipeline(system: DemoSystem) -> Check:
    """Raw table -> split -> fitted features -> MLP -> a served model, on a 2,000-row sample."""
    from mlchecks.checks.pipeline import Pipeline, PipelineCheck, Stage
    from mlchecks.serving import InProcessServer

    feature_pipeline = system.components.pipeline
    registry: dict[str, ServedModel] = {}

    def train(features: np.ndarray, splits: Any) -> MLPTrainer:
        trainer = MLPTrainer(features.shape[1], len(CLASSES), seed=system.seed, hidden=16, lr=0.05)
        for batch in make_batches(features, splits.train["label"], 60, 64, system.seed):
            trainer.train_step(batch)
        return trainer

    def deploy(outputs: Any) -> str:
        registry["pipeline"] = ServedModel.from_trainer(
            outputs["train"], outputs["fit"], version="pipeline"
        )
        return "pipeline"

    pipeline = Pipeline(
        [
            Stage("source", lambda: make_table(2000, seed=system.seed), columns=COLUMNS),
            Stage("split", split_table),
            Stage("fit", lambda splits: feature_pipeline().fit(splits.train)),
            Stage(
                "features",
                lambda fitted, splits: fitted.transform(splits.train),
                inputs=("fit", "split"),
                dtype=np.floating,
                finite=True,
            ),
            Stage("train", train, inputs=("features", "split")),
        ]
    )
    return PipelineCheck(
        pipeline,
        holdout=lambda out: out["split"].holdout,
        training_features=lambda out, rows: out["fit"].transform(rows),
        serving_features=lambda out, row: out["fit"].transform_row(row),
        feature_names=lambda out: out["fit"].feature_names,
        server=InProcessServer(loader=registry.__getitem__),
        deploy=deploy,
        predict=lambda out, features: predict_proba(out["train"].params(), features),
        n_rows=100,
    )


def _canary(system: DemoSystem) -> Check:
    """Candidate "2" into the production server (baseline "1" live), probes then a trickle."""
    from mlchecks.checks.canary import CanaryCheck

    server = system.build_server(load_candidate=False)
    rows = system.production_rows()

    def traffic() -> Iterator[Any]:
        return itertools.islice(itertools.cycle(rows), 6000)

    return CanaryCheck(
        server,
        CANDIDATE_VERSION,
        probe_inputs=rows[:100],
        offline_predictions=lambda probes: system.offline_predictions(CANDIDATE_VERSION, probes),
        traffic=traffic,
        traffic_fraction=0.2,
        n_candidate_requests=200,
    )


def _rollback(system: DemoSystem) -> Check:
    """Deploy candidate "2" on the demo service, then roll back to "1" under load."""
    from mlchecks.checks.rollback import RollbackCheck

    service = system.service()
    probes = system.production_rows()[:40]
    return RollbackCheck(
        service, service, CANDIDATE_VERSION, probe_inputs=probes, n_repeats=3, budget_s=2.0
    )


# In rubric order; each builder takes the (possibly faulty) system and returns a check.
_BUILDERS: tuple[Callable[[DemoSystem], Check], ...] = (
    _reproducibility,
    _loss_decreases,
    _checkpoint_restore,
    _pipeline,
    _quality,
    _single_batch,
    _canary,
    _rollback,
)


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
