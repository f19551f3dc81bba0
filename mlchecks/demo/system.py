"""`DemoSystem`: the embedded ML system the demo and the tests run the checks against.

It wires the parts together: a synthetic table (`make_table`) split into train,
validation and holdout ("production") rows; a `FeaturePipeline` fitted on the train rows;
`MLPTrainer` training runs that leave a `TrainedModel`; a *baseline* (the previous,
known-good version ``"1"``) and a *candidate* (version ``"2"``, trained by the current
code); and a serving stack: an `mlchecks.serving.InProcessServer` hosting both versions
and a `DemoService` (response cache, deploy and rollback) in front.

``DemoSystem(fault=NAME)`` plants one of the named faults of `mlchecks.demo.FAULTS`.
The baseline is always trained by healthy code: it was trained before the bug arrived.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlchecks._validate import check_int, describe
from mlchecks.demo.data import (
    CHANNELS,
    CLASSES,
    LABEL_COLUMN,
    NUMERIC_COLUMNS,
    PLANS,
    REGIONS,
    SLICE_COLUMN,
    Table,
    from_rows,
    make_table,
    region_codes,
    rows,
    split_table,
)
from mlchecks.demo.faults import Components, Fault, components, get_fault
from mlchecks.demo.features import FeaturePipeline
from mlchecks.demo.model import Batch, MLPTrainer, make_batches, predict_proba
from mlchecks.demo.serving import DemoService, ServedModel
from mlchecks.exceptions import InvalidInput

if TYPE_CHECKING:
    from mlchecks.serving import InProcessServer

__all__ = [
    "BASELINE_VERSION",
    "CANDIDATE_VERSION",
    "DEMO_N_FEATURES",
    "DemoSystem",
    "TrainedModel",
    "make_trainer",
]

BASELINE_VERSION = "1"
CANDIDATE_VERSION = "2"
DEMO_N_FEATURES = len(NUMERIC_COLUMNS) + len(PLANS) + len(CHANNELS) + len(REGIONS)
"""The feature width of the demo data (every category present)."""

_DEFAULTS: dict[str, Any] = {"hidden": 16, "lr": 0.05}


def make_trainer(seed: int = 0) -> MLPTrainer:
    """A fresh healthy trainer for the demo data's features (the default hyperparameters).

    >>> make_trainer(0).n_features
    18
    """
    return MLPTrainer(DEMO_N_FEATURES, len(CLASSES), seed=seed, **_DEFAULTS)


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def _log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        picked = np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1.0)
        return float(-np.mean(np.log(picked)))


@attrs.frozen(eq=False)
class TrainedModel:
    """What one training run leaves behind, evaluated on the validation rows.

    The fields ``metrics``, ``predictions``, ``labels``, ``losses``, ``step_hashes`` and
    ``name`` are those of a reproducibility ``TrainingRun``; `run_fields` returns them
    with the slices as ``{"region": slice_labels()}``.

    Args:
        name: a label (``"baseline"``, ``"candidate"``, ``"seed 0"``).
        seed: the training seed.
        trainer: the trainer after its last step.
        pipeline: the feature pipeline it was trained with.
        params: a snapshot of the final parameters (what serving loads).
        predictions: validation class probabilities, shape (n_valid, 3).
        labels: validation labels.
        slices: validation region codes (positions in ``slice_names``).
        slice_names: the region names.
        losses: the training loss of every step.
        step_hashes: the parameter fingerprint after every step (16 hex digits).
        metrics: ``accuracy`` and ``log_loss`` on the validation rows, ``final_loss``
            (the mean loss of the last 10 steps).

    >>> run = DemoSystem(seed=0, n_steps=20).train(seed=0)
    >>> sorted(run.metrics), len(run.step_hashes), run.slice_labels()[:2]
    (['accuracy', 'final_loss', 'log_loss'], 20, array(['west', 'west'], dtype='<U8'))
    """

    name: str
    seed: int
    trainer: MLPTrainer = attrs.field(repr=False)
    pipeline: FeaturePipeline = attrs.field(repr=False)
    params: Mapping[str, np.ndarray] = attrs.field(repr=False)
    predictions: np.ndarray = attrs.field(repr=False)
    labels: np.ndarray = attrs.field(repr=False)
    slices: np.ndarray = attrs.field(repr=False)
    slice_names: tuple[str, ...] = attrs.field(repr=False)
    losses: np.ndarray = attrs.field(repr=False)
    step_hashes: tuple[str, ...] = attrs.field(repr=False)
    metrics: Mapping[str, float] = attrs.field(factory=dict)

    def predict_table(self, table: Mapping[str, Any]) -> np.ndarray:
        """Offline predictions for a column table (the batch feature path)."""
        return predict_proba(self.params, self.pipeline.transform(table))

    def predict_rows(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Offline predictions for row dicts (the batch feature path), shape (n, 3)."""
        return self.predict_table(from_rows(records))

    def slice_accuracy(self) -> dict[str, float]:
        """Validation accuracy per region (regions with no rows are left out)."""
        correct = np.argmax(self.predictions, axis=1) == self.labels
        hits = np.bincount(self.slices, weights=correct, minlength=len(self.slice_names))
        counts = np.bincount(self.slices, minlength=len(self.slice_names))
        return {
            name: float(hits[i] / counts[i]) for i, name in enumerate(self.slice_names) if counts[i]
        }

    def slice_labels(self) -> np.ndarray:
        """The region name of every validation example (a string array)."""
        labels: np.ndarray = np.asarray(self.slice_names)[self.slices]
        return labels

    def run_fields(self) -> dict[str, Any]:
        """The fields of a reproducibility ``TrainingRun``, as keyword arguments.

        ``slices`` is ``{"region": slice_labels()}`` so reports name the regions.
        """
        return {
            "metrics": dict(self.metrics),
            "predictions": self.predictions,
            "labels": self.labels,
            "slices": {"region": self.slice_labels()},
            "losses": self.losses,
            "step_hashes": self.step_hashes,
            "name": self.name,
        }


class DemoSystem:
    """The embedded demo ML system, deterministic from ``seed``, optionally with a fault.

    Args:
        seed: seeds the data; the baseline trains with ``seed`` and the candidate with
            ``seed + 1``.
        fault: the name of a fault in `mlchecks.demo.FAULTS` to plant, or None.
        n_rows: rows in the table: 62.5 % train, 25 % validation, 12.5 % holdout.
        n_steps: training steps per run.
        batch_size: rows per training batch.
        hidden: hidden units of the MLP.
        lr: base learning rate.

    Raises:
        InvalidInput: an argument is out of range, or ``fault`` is not a known name (the
            message lists the known ones).

    >>> system = DemoSystem(seed=0)
    >>> run = system.train(seed=0)
    >>> len(run.losses), len(run.step_hashes), run.predictions.shape
    (300, 300, (3000, 3))
    >>> run.metrics["accuracy"] > 0.75
    True
    >>> service = system.service()
    >>> service.live_version(), service.infer(system.production_rows()[0]).version
    ('1', '1')
    """

    def __init__(
        self,
        seed: int = 0,
        fault: str | Fault | None = None,
        *,
        n_rows: int = 12_000,
        n_steps: int = 300,
        batch_size: int = 64,
        hidden: int = 16,
        lr: float = 0.05,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidInput(f"'seed' must be a non-negative integer (got {describe(seed)})")
        self.seed = int(seed)
        self.fault: Fault | None = get_fault(fault)
        self.components: Components = components(self.fault)
        self.n_rows = check_int(n_rows, "n_rows", minimum=1000)
        self.n_steps = check_int(n_steps, "n_steps", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.hidden = check_int(hidden, "hidden", minimum=1)
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
            raise InvalidInput(f"'lr' must be a number > 0 (got {describe(lr)})")
        self.lr = float(lr)

        splits = split_table(make_table(self.n_rows, self.seed))
        self.train_table: Table = splits.train
        self.valid_table: Table = splits.valid
        self.holdout_table: Table = splits.holdout
        # The released feature code serves production; a pipeline fault lives in the next
        # release of the feature code (``components.pipeline``), which the pipeline
        # integration test builds and exercises before it ships.
        self.pipeline: FeaturePipeline = FeaturePipeline().fit(self.train_table)
        self.X_train = self.pipeline.transform(self.train_table)
        self.y_train = self.train_table[LABEL_COLUMN]
        self.X_valid = self.pipeline.transform(self.valid_table)
        self.y_valid = self.valid_table[LABEL_COLUMN]
        self.valid_slices = region_codes(self.valid_table[SLICE_COLUMN])
        self.slice_names: tuple[str, ...] = REGIONS
        self._lock = threading.Lock()
        self._versions: dict[str, TrainedModel] = {}

    def __repr__(self) -> str:
        fault = self.fault.name if self.fault else None
        return f"DemoSystem(seed={self.seed}, fault={fault!r}, n_rows={self.n_rows})"

    @property
    def fault_name(self) -> str | None:
        """The planted fault's name, or None."""
        return None if self.fault is None else self.fault.name

    # ------------------------------------------------------------------ training

    def make_trainer(self, seed: int = 0) -> MLPTrainer:
        """A fresh trainer of the current training code (the fault's, if it is a trainer bug).

        This is the ``make_trainer(seed)`` factory the training checks take.
        """
        return self.components.trainer(
            self.pipeline.n_features, len(CLASSES), hidden=self.hidden, lr=self.lr, seed=seed
        )

    def batches(self, seed: int = 0, *, labels: np.ndarray | None = None) -> list[Batch]:
        """The ``n_steps`` training batches of a run with ``seed`` (the current data loader).

        Args:
            seed: the training seed (ignored by the loader under ``nondeterministic_training``).
            labels: training labels to use instead of the table's.
        """
        seed = check_int(seed, "seed")
        shuffle_seed = seed if self.components.seeded_shuffle else None
        y = self.y_train if labels is None else labels
        return make_batches(self.X_train, y, self.n_steps, self.batch_size, shuffle_seed)

    def train(self, seed: int = 0, *, name: str | None = None) -> TrainedModel:
        """Train one model with the current code and evaluate it on the validation rows.

        This is the ``train(seed)`` callable the reproducibility check takes.
        """
        return self._train(
            seed,
            name=f"seed {seed}" if name is None else name,
            trainer=self.make_trainer(seed),
            batches=self.batches(seed),
        )

    def _train(
        self, seed: int, *, name: str, trainer: MLPTrainer, batches: list[Batch]
    ) -> TrainedModel:
        losses = np.empty(len(batches))
        hashes: list[str] = []
        for i, batch in enumerate(batches):
            losses[i] = trainer.train_step(batch)
            hashes.append(trainer.fingerprint())
        params = trainer.params()
        probs = predict_proba(params, self.X_valid)
        metrics = {
            "accuracy": _accuracy(probs, self.y_valid),
            "log_loss": _log_loss(probs, self.y_valid),
            "final_loss": float(np.mean(losses[-10:])),
        }
        return TrainedModel(
            name=name,
            seed=seed,
            trainer=trainer,
            pipeline=self.pipeline,
            params=params,
            predictions=probs,
            labels=self.y_valid,
            slices=self.valid_slices,
            slice_names=self.slice_names,
            losses=losses,
            step_hashes=tuple(hashes),
            metrics=metrics,
        )

    def baseline(self) -> TrainedModel:
        """The previous, known-good model version ``"1"`` (healthy code, seed ``seed``).

        Trained on first use and cached.
        """
        with self._lock:
            model = self._versions.get(BASELINE_VERSION)
            if model is None:
                trainer = MLPTrainer(
                    self.pipeline.n_features,
                    len(CLASSES),
                    hidden=self.hidden,
                    lr=self.lr,
                    seed=self.seed,
                )
                batches = make_batches(
                    self.X_train, self.y_train, self.n_steps, self.batch_size, self.seed
                )
                model = self._train(self.seed, name="baseline", trainer=trainer, batches=batches)
                self._versions[BASELINE_VERSION] = model
            return model

    def candidate(self) -> TrainedModel:
        """The new model version ``"2"``: current code and data, seed ``seed + 1``.

        Under ``slice_regression`` its training labels are corrupted in one region.
        Trained on first use and cached.
        """
        with self._lock:
            model = self._versions.get(CANDIDATE_VERSION)
            if model is None:
                seed = self.seed + 1
                model = self._train(
                    seed,
                    name="candidate",
                    trainer=self.make_trainer(seed),
                    batches=self.batches(seed, labels=self.candidate_labels()),
                )
                self._versions[CANDIDATE_VERSION] = model
            return model

    def candidate_labels(self) -> np.ndarray:
        """The training labels the candidate is trained on (a copy)."""
        labels: np.ndarray = self.y_train.copy()
        region = self.components.corrupt_slice
        if region is not None:
            rng = np.random.default_rng([self.seed, 0xEA57])
            in_region = np.flatnonzero(self.train_table[SLICE_COLUMN] == region)
            hit = in_region[rng.random(len(in_region)) < self.components.corrupt_fraction]
            labels[hit] = 0
        return labels

    def model(self, version: str) -> TrainedModel:
        """The trained model of ``version`` (``"1"`` baseline, ``"2"`` candidate).

        Raises:
            InvalidInput: ``version`` is not a demo version.
        """
        if version == BASELINE_VERSION:
            return self.baseline()
        if version == CANDIDATE_VERSION:
            return self.candidate()
        raise InvalidInput(
            f"'version' must be {BASELINE_VERSION!r} (baseline) or {CANDIDATE_VERSION!r} "
            f"(candidate) (got {version!r})"
        )

    # ------------------------------------------------------------------ serving

    def production_rows(self) -> list[dict[str, Any]]:
        """The holdout rows as serving requests: row dicts without the label."""
        table = {k: v for k, v in self.holdout_table.items() if k != LABEL_COLUMN}
        return rows(table)

    def offline_predictions(
        self, version: str, records: Sequence[Mapping[str, Any]] | None = None
    ) -> np.ndarray:
        """``version``'s offline predictions (batch path) for ``records`` (default: holdout)."""
        if records is None:
            return self.model(version).predict_table(self.holdout_table)
        return self.model(version).predict_rows(records)

    def served_model(self, version: str) -> ServedModel:
        """``version`` as the serving binary runs it (the server's loader).

        Raises:
            InvalidInput: ``version`` is not a demo version.
        """
        trained = self.model(version)
        cls = self.components.candidate_model if version == CANDIDATE_VERSION else ServedModel
        return cls(trained.params, self.pipeline, version=version)

    def build_server(self, *, load_candidate: bool = True) -> InProcessServer:
        """A fresh `InProcessServer` with the baseline live and the candidate loaded.

        Its loader is `served_model`, so ``server.load("2")`` (re)loads the candidate.
        """
        from mlchecks.serving import InProcessServer

        server = InProcessServer(loader=self.served_model, name="demo", seed=self.seed)
        server.load(BASELINE_VERSION)
        server.set_live(BASELINE_VERSION)
        if load_candidate:
            server.load(CANDIDATE_VERSION)
        return server

    def service(
        self, server: InProcessServer | None = None, *, cache_size: int = 10_000
    ) -> DemoService:
        """The service in front of ``server`` (default: a fresh `build_server`).

        It is both the `Endpoint` (live traffic, through its response cache) and the
        `Deployment` (``set_live`` deploys and rolls back) the rollback check drives.
        """
        if server is None:
            server = self.build_server()
        return self.components.service(server, cache_size=cache_size)
