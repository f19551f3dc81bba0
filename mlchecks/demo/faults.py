"""Named faults the demo system can plant: small, realistic bugs, one per check to catch.

Each fault is a `Fault` in `FAULTS` (name, a one-line description, the check expected to
catch it, the rubric test number). Its behaviour lives here as the smallest change to a
healthy component (a subclass overriding one hook, or a data-handling setting);
`components` says which components a fault swaps in, and `mlchecks.demo.DemoSystem`
assembles the system from them.

>>> sorted(FAULTS)[:3]
['canary_errors', 'canary_slow', 'checkpoint_forgets_optimizer_state']
>>> FAULTS["dead_parameter"].check, FAULTS["dead_parameter"].rubric
('single_batch', 5)
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Hashable, Mapping
from typing import Any

import attrs
import numpy as np

from mlchecks.demo.features import FeaturePipeline
from mlchecks.demo.model import Batch, MLPTrainer
from mlchecks.demo.serving import DemoService, ServedModel
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response

__all__ = ["FAULTS", "Components", "Fault", "components", "get_fault", "list_faults"]


@attrs.frozen
class Fault:
    """A named bug the demo system can plant.

    Args:
        name: stable snake_case name (``--fault NAME``).
        description: one line saying what is broken.
        check: the snake_case name of the check expected to catch it.
        rubric: the ML Test Score infrastructure test (1..7) that check automates.

    >>> FAULTS["canary_slow"].rubric
    6
    """

    name: str
    description: str
    check: str
    rubric: int


_FAULT_LIST = (
    Fault(
        "nondeterministic_training",
        "the training data loader shuffles batches from OS entropy instead of the seed, so two "
        "trainings with the same seed differ",
        "reproducibility",
        1,
    ),
    Fault(
        "checkpoint_forgets_optimizer_state",
        "checkpoints omit the Adam moments and step count, and loading starts a fresh optimizer",
        "checkpoint_restore",
        2,
    ),
    Fault(
        "checkpoint_forgets_rng",
        "checkpoints omit the random generator state, so dropout masks after a restore differ",
        "checkpoint_restore",
        2,
    ),
    Fault(
        "training_serving_skew",
        "the serving feature path standardizes 'income' with the mean and std of 'age' "
        "(a copy-paste bug)",
        "pipeline",
        3,
    ),
    Fault(
        "slice_regression",
        "a broken join back-fills 60% of region 'east' training labels with class 0, so the "
        "candidate is much worse on that slice while aggregate accuracy barely moves",
        "quality",
        4,
    ),
    Fault(
        "dead_parameter",
        "the optimizer's no-weight-decay group omits 'b1', so that bias is never updated",
        "single_batch",
        5,
    ),
    Fault(
        "exploding_learning_rate",
        "the step is scaled by sqrt(64 / (batch_size - 1)), an off-by-one that is harmless on "
        "batches but divides by zero on a single example: the update and parameters become inf",
        "single_batch",
        5,
    ),
    Fault(
        "canary_errors",
        "the candidate's request logging maps channels to ids with a table that lacks 'phone', "
        "so it raises KeyError on about 5% of requests",
        "canary",
        6,
    ),
    Fault(
        "canary_slow",
        "the candidate makes a blocking 1 ms feature lookup on every request",
        "canary",
        6,
    ),
    Fault(
        "version_skew",
        "the server parses the candidate's requests with the previous schema, which lacks "
        "'tenure_months', so that feature is served as 0",
        "canary",
        6,
    ),
    Fault(
        "lossy_rollback",
        "rolling back restarts the service and reloads the previous version, so requests during "
        "the restart fail",
        "rollback",
        7,
    ),
    Fault(
        "stale_rollback",
        "the response cache keys responses by request only, so after a rollback it keeps "
        "serving the candidate's outputs",
        "rollback",
        7,
    ),
)

FAULTS: Mapping[str, Fault] = types.MappingProxyType({f.name: f for f in _FAULT_LIST})
"""Every fault by name, ordered by rubric test."""


def list_faults() -> tuple[Fault, ...]:
    """All faults, ordered by rubric test (what ``--list-faults`` prints).

    >>> [f.name for f in list_faults()][:2]
    ['nondeterministic_training', 'checkpoint_forgets_optimizer_state']
    """
    return _FAULT_LIST


def get_fault(name: str | Fault | None) -> Fault | None:
    """The `Fault` called ``name`` (None stays None; a `Fault` is returned as is).

    Raises:
        InvalidInput: ``name`` is not a known fault; the message lists the known names.

    >>> get_fault("dead_parameter").check
    'single_batch'
    >>> get_fault("typo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlchecks.exceptions.InvalidInput: 'fault' must be one of ... (got 'typo')
    """
    if name is None:
        return None
    if isinstance(name, Fault):
        if FAULTS.get(name.name) != name:
            raise InvalidInput(f"'fault' is not one of the registered faults (got {name!r})")
        return name
    fault = FAULTS.get(name) if isinstance(name, str) else None
    if fault is None:
        raise InvalidInput(f"'fault' must be one of {', '.join(FAULTS)} or None (got {name!r})")
    return fault


# --------------------------------------------------------------------------- training


class DeadParameterTrainer(MLPTrainer):
    """``dead_parameter``: the no-weight-decay parameter group was written without ``b1``."""

    _no_decay_group = ("b2",)


class ExplodingLearningRateTrainer(MLPTrainer):
    """``exploding_learning_rate``: the batch-size scaling of the step is off by one.

    The step is scaled by ``sqrt(reference / (n - 1))``, an ``n - 1`` copied from an
    unbiased-variance formula. On ordinary batches the scale is about 1 and training looks
    healthy; a one-example batch divides by zero and the first update is infinite.
    """

    reference_batch = 64

    def train_step(self, batch: Batch) -> float:
        self._batch_rows = len(batch[1])
        return super().train_step(batch)

    def _learning_rate(self, t: int) -> Any:
        with np.errstate(divide="ignore"):
            scale = np.sqrt(np.float64(self.reference_batch) / np.float64(self._batch_rows - 1))
        return super()._learning_rate(t) * scale


class ForgetsOptimizerTrainer(MLPTrainer):
    """``checkpoint_forgets_optimizer_state``: save drops ``adam/*``; load resets the optimizer."""

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.state().items() if not k.startswith("adam/")}

    def _restore(self, arrays: dict[str, np.ndarray], *, source: str) -> None:
        self._set_params(arrays)
        self._reset_optimizer()
        self._set_rng(arrays["rng/state"])
        self._step = int(arrays["step"])


class ForgetsRngTrainer(MLPTrainer):
    """``checkpoint_forgets_rng``: save drops ``rng/state``; load keeps the generator as is."""

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.state().items() if k != "rng/state"}

    def _restore(self, arrays: dict[str, np.ndarray], *, source: str) -> None:
        self._set_params(arrays)
        self._set_optimizer(arrays)
        self._step = int(arrays["step"])


# --------------------------------------------------------------------------- features


class SkewedPipeline(FeaturePipeline):
    """``training_serving_skew``: the serving path uses the constants of 'age' for 'income'."""

    def _serving_constants(self) -> dict[str, tuple[float, float]]:
        constants = super()._serving_constants()
        constants["income"] = constants["age"]  # copy-paste bug in the hand-written serving path
        return constants


# --------------------------------------------------------------------------- serving


class RareChannelCrashModel(ServedModel):
    """``canary_errors``: the candidate's channel-id table lacks the rare value 'phone'."""

    _channel_ids = types.MappingProxyType({"web": 0, "store": 1, "partner": 2})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.channel_counts = [0, 0, 0]

    def _parse(self, row: Mapping[str, Any]) -> Mapping[str, Any]:
        channel = self._channel_ids[str(row.get("channel"))]  # KeyError: 'phone'
        with self._lock:
            self.channel_counts[channel] += 1
        return row


class SlowLookupModel(ServedModel):
    """``canary_slow``: a blocking feature lookup on every request."""

    lookup_s = 0.001

    def __call__(self, inputs: Any) -> np.ndarray:
        time.sleep(self.lookup_s)
        return super().__call__(inputs)


class OldSchemaModel(ServedModel):
    """``version_skew``: requests are parsed with the previous schema, lacking 'tenure_months'."""

    _schema_defaults = types.MappingProxyType({"tenure_months": 0.0})

    def _parse(self, row: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**row, **self._schema_defaults}


class RestartingRollbackService(DemoService):
    """``lossy_rollback``: rolling back restarts the service instead of switching atomically."""

    restart_s = 0.02

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._restarting = threading.Event()

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        if self._restarting.is_set():
            return Response(
                error="503 Service Unavailable: the server is restarting for a rollback",
                error_kind="server",
            )
        return super().infer(inputs, version)

    def _rollback(self, version: str) -> None:
        self._restarting.set()
        try:
            time.sleep(self.restart_s)  # the serving process restarts ...
            if self.server.loader is not None:
                self.server.load(version)  # ... reloads the previous version ...
            self.server.set_live(version)  # ... and takes traffic again
            self.clear_cache()
        finally:
            self._restarting.clear()


class StaleCacheService(DemoService):
    """``stale_rollback``: the cache key leaves out the version that answered."""

    def _cache_key(self, version: str | None, content: Hashable) -> Hashable:
        return content


# --------------------------------------------------------------------------- assembly


@attrs.frozen
class Components:
    """The components a demo system is built from; a fault swaps in one of them.

    Args:
        trainer: the trainer class the current training code uses.
        pipeline: the feature pipeline class of the next release of the feature code, the
            one the pipeline integration test exercises (production serves the released one).
        candidate_model: the class serving the candidate version.
        service: the class of the service in front of the server.
        seeded_shuffle: whether the batch shuffling uses the training seed.
        corrupt_slice: the region whose candidate training labels are corrupted, if any.
        corrupt_fraction: the fraction of that region's labels replaced by class 0.

    >>> components("canary_slow").candidate_model.__name__
    'SlowLookupModel'
    """

    trainer: type[MLPTrainer] = MLPTrainer
    pipeline: type[FeaturePipeline] = FeaturePipeline
    candidate_model: type[ServedModel] = ServedModel
    service: type[DemoService] = DemoService
    seeded_shuffle: bool = True
    corrupt_slice: str | None = None
    corrupt_fraction: float = 0.0


_COMPONENTS: Mapping[str, Components] = types.MappingProxyType(
    {
        "nondeterministic_training": Components(seeded_shuffle=False),
        "checkpoint_forgets_optimizer_state": Components(trainer=ForgetsOptimizerTrainer),
        "checkpoint_forgets_rng": Components(trainer=ForgetsRngTrainer),
        "training_serving_skew": Components(pipeline=SkewedPipeline),
        "slice_regression": Components(corrupt_slice="east", corrupt_fraction=0.6),
        "dead_parameter": Components(trainer=DeadParameterTrainer),
        "exploding_learning_rate": Components(trainer=ExplodingLearningRateTrainer),
        "canary_errors": Components(candidate_model=RareChannelCrashModel),
        "canary_slow": Components(candidate_model=SlowLookupModel),
        "version_skew": Components(candidate_model=OldSchemaModel),
        "lossy_rollback": Components(service=RestartingRollbackService),
        "stale_rollback": Components(service=StaleCacheService),
    }
)


def components(fault: str | Fault | None) -> Components:
    """The components of a system with ``fault`` planted (None: all healthy).

    Raises:
        InvalidInput: ``fault`` is not a known fault name.

    >>> components(None) == Components()
    True
    """
    resolved = get_fault(fault)
    return Components() if resolved is None else _COMPONENTS[resolved.name]
