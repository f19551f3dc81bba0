"""Rubric test 5: a single example or training batch can be sent to the model.

"Test that a single example or training batch can be sent to the model, and changes to
internal state can be observed from training through to prediction. Observing internal
state on small amounts of data is a useful debugging strategy for issues like numerical
instability" (Breck et al., ML Test Score).

`SingleBatchCheck` sends one batch and one example through ``train_step`` and ``predict``
on copies of your trainer (or fresh ones from ``make_trainer``), records every ``state()``
entry before and after (changed or not, max |delta|, update ratio ``||delta|| / ||w||``,
finite, norm), the gradients when the trainer offers ``gradients()`` and named
activations when it offers ``trace(inputs)``, and judges them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks.check import Context
from mlchecks.checks._state import (
    ISOLATIONS,
    EntryDiff,
    Isolation,
    TrainerSource,
    compare_states,
    matches,
    one_source,
    preserve_global_rngs,
    restored_finding,
    snapshot,
    summarize_diffs,
    to_numpy,
    trainer_or_none,
    validate_patterns,
)
from mlchecks.conditions import Between
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer
from mlchecks.result import Finding, Result, Status
from mlchecks._validate import (
    callable_field,
    describe,
    int_at_least,
    number_in,
    one_of,
    optional,
)

__all__ = ["SingleBatchCheck"]

_LIMIT = 6  # tensors spelled out in one message


# --------------------------------------------------------------------------- batch slicing


def _is_structure(value: Any, *, lists: bool) -> bool:
    return isinstance(value, tuple | Mapping) or (lists and isinstance(value, list))


def _rows(value: Any, start: int, stop: int, *, lists: bool) -> Any:
    """Rows ``start:stop`` of every array in ``value`` (tuples and mappings are structures)."""
    if isinstance(value, Mapping):
        return {k: _rows(v, start, stop, lists=lists) for k, v in value.items()}
    if _is_structure(value, lists=lists):
        return type(value)(_rows(v, start, stop, lists=lists) for v in value)
    return value[start:stop]


def _n_rows(value: Any, *, lists: bool, name: str) -> int:
    """The number of examples in ``value``: the length of its first array."""
    if isinstance(value, Mapping):
        if not value:
            raise InvalidInput(f"'{name}' must not be an empty mapping")
        return _n_rows(next(iter(value.values())), lists=lists, name=name)
    if _is_structure(value, lists=lists):
        if not value:
            raise InvalidInput(f"'{name}' must not be empty (got {describe(value)})")
        return _n_rows(value[0], lists=lists, name=name)
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(value)
    except TypeError:
        raise InvalidInput(
            f"'{name}' must hold arrays with a leading example axis (got {describe(value)})"
        ) from None


# --------------------------------------------------------------------------- validators


def _trainable(value: Any) -> tuple[str, ...] | None:
    return None if value is None else validate_patterns(value, "trainable")


def _frozen(value: Any) -> tuple[str, ...]:
    return validate_patterns(value, "frozen")


def _band(value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"'update_ratio' must be a pair (low, high) of numbers (got {describe(value)})"
        ) from None
    if not (0.0 <= low < high and math.isfinite(high)):
        raise InvalidInput(
            f"'update_ratio' must satisfy 0 <= low < high < inf (got ({low}, {high}))"
        )
    return low, high


# --------------------------------------------------------------------------- tensor stats


def _is_float(array: np.ndarray) -> bool:
    return array.dtype.kind in "fc"


def _norm(array: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(
            np.linalg.norm(
                array.astype(np.complex128 if array.dtype.kind == "c" else np.float64).reshape(-1)
            )
        )


def _nonfinite(array: np.ndarray) -> int:
    return int((~np.isfinite(array)).sum()) if _is_float(array) else 0


def _tensor_row(
    name: str, role: str, before: np.ndarray | None, after: np.ndarray | None
) -> dict[str, Any]:
    """One row of the per-tensor table."""
    row: dict[str, Any] = {"name": name, "role": role}
    ref = after if after is not None else before
    assert ref is not None
    row["shape"] = list(ref.shape)
    row["dtype"] = str(ref.dtype)
    if (
        before is None
        or after is None
        or before.shape != after.shape
        or before.dtype != after.dtype
    ):
        row.update(changed=True, n_changed=None, max_abs_delta=None, update_ratio=None)
        row["finite"] = after is not None and _nonfinite(after) == 0
        row["nonfinite"] = 0 if after is None else _nonfinite(after)
        row["norm"] = None if after is None or not _is_float(after) else _norm(after)
        return row
    diff = compare_states({name: before}, {name: after})
    n_changed = diff[0].n_different if diff else 0
    row["changed"] = n_changed > 0
    row["n_changed"] = n_changed
    row["size"] = int(after.size)
    row["nonfinite"] = _nonfinite(after)
    row["finite"] = row["nonfinite"] == 0
    if _is_float(after) or after.dtype.kind in "iub":
        with np.errstate(all="ignore"):
            delta = (
                after.astype(np.float64) - before.astype(np.float64)
                if not _is_float(after)
                else after - before
            )
            row["max_abs_delta"] = float(np.max(np.abs(delta))) if delta.size else 0.0
            if _is_float(after):
                norm_before = _norm(before)
                delta_norm = _norm(delta)
                row["norm_before"] = norm_before
                row["norm"] = _norm(after)
                row["delta_norm"] = delta_norm
                ok = norm_before > 0 and math.isfinite(norm_before) and math.isfinite(delta_norm)
                row["update_ratio"] = delta_norm / norm_before if ok else None
            else:
                row["norm"] = None
                row["update_ratio"] = None
    else:
        row.update(max_abs_delta=None, norm=None, update_ratio=None)
    return row


def _array_stats(name: str, value: Any) -> dict[str, Any]:
    """min/max/mean/std over finite values, fraction zero, non-finite count, norm."""
    array = to_numpy(value)
    row: dict[str, Any] = {"name": name, "shape": list(array.shape), "dtype": str(array.dtype)}
    if array.dtype.kind not in "biufc":
        row["nonfinite"] = 0
        return row
    values = array.astype(np.float64) if array.dtype.kind != "c" else np.abs(array)
    finite = np.isfinite(values)
    good = values[finite]
    row["nonfinite"] = int(values.size - good.size)
    row["fraction_zero"] = float(np.mean(values == 0.0)) if values.size else 0.0
    if good.size:
        row.update(
            min=float(good.min()),
            max=float(good.max()),
            mean=float(good.mean()),
            std=float(good.std()),
            norm=float(np.linalg.norm(good)),
        )
    return row


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _listing(items: Sequence[str]) -> str:
    shown = list(items[:_LIMIT])
    if len(items) > _LIMIT:
        shown.append(f"and {len(items) - _LIMIT} more")
    return "; ".join(shown)


def _optional_arrays(trainer: Trainer, method: str, *args: Any) -> dict[str, np.ndarray] | None:
    """``trainer.<method>(*args)`` as name -> numpy array, or None when it has no such method."""
    fn = getattr(trainer, method, None)
    if not callable(fn):
        return None
    values = fn(*args)
    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"{method}() must return a mapping of name to array (got {describe(values)})"
        )
    return {str(k): to_numpy(v) for k, v in values.items()}


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- the check


@attrs.frozen
class _Probe:
    """What the run collected; judged afterwards."""

    before: dict[str, np.ndarray]
    after_predict: dict[str, np.ndarray]
    after: dict[str, np.ndarray]
    loss: float
    outputs_before: np.ndarray
    outputs_after: np.ndarray | None
    outputs_after_error: str | None
    singles: list[tuple[int, np.ndarray | None, str | None]]
    gradients: dict[str, np.ndarray] | None
    activations: dict[str, np.ndarray] | None
    example: dict[str, Any] | None


@attrs.frozen(kw_only=True, eq=False)
class SingleBatchCheck:
    """One example and one batch go through training and prediction; internal state is sane.

    On copies of ``trainer`` (or fresh ``make_trainer(seed)`` trainers; your trainer is
    left bitwise as it was) the check:

    1. predicts ``inputs`` as a batch, then each of the first ``n_compare`` examples alone;
    2. runs ``train_step(batch)`` and records every ``state()`` entry before and after,
       the ``gradients()`` and the ``trace(inputs)`` activations when the trainer has them,
       and the predictions after the step;
    3. runs ``train_step(example)`` on a fresh copy (skipped with ``train_example=False``,
       for models that cannot train on one example, such as those with batch norm).

    Findings (each names the tensors, examples or entries at fault):

    - ``loss_finite``, ``state_finite``, ``gradients_finite``, ``activations_finite``,
      ``outputs_finite``: no NaN or infinity anywhere after one step;
    - ``trainable_changed``: every trainable entry changed (``trainable`` patterns; by
      default the names ``gradients()`` reports, else every floating-point entry not
      ``frozen``); a dead parameter FAILS here;
    - ``frozen_unchanged``: entries matching ``frozen`` did not change;
    - ``update_ratio`` (WARN): ``||delta|| / ||w||`` of each trainable entry is inside the
      ``update_ratio`` band (about 1e-3 is typical for one step; far below means the
      update is lost, far above means the step size overwhelms the weights);
    - ``prediction_changed``: the predictions after the step differ from before (the
      update reaches prediction);
    - ``predict_stateless``: ``predict`` changed no state entry (batch-norm statistics
      updated in train mode, a generator consumed by dropout left on);
    - ``single_example``: ``predict`` on one example works and returns shape
      ``(1, *batch_outputs.shape[1:])``;
    - ``single_vs_batch``: each example's prediction alone equals its prediction inside
      the batch within ``atol + rtol * |batch value|`` (batch norm in train mode, padding
      and other batch-dependent bugs FAIL here);
    - ``example_step``: one training step on a single example runs and stays finite;
    - ``trainer_restored``: your trainer's ``state()`` is bitwise what it was.

    Batches: a tuple, list or mapping ``batch`` is a structure of parallel arrays (such as
    ``(inputs, targets)``) and one example is row 0 of each; for ``inputs`` only tuples and
    mappings are structures (a list is a list of examples). Pass ``example`` and ``inputs``
    yourself for other layouts.

    Args:
        batch: a training batch of at least 2 examples, as ``train_step`` takes it.
        trainer: a `Trainer` to copy (exactly one of ``trainer`` and ``make_trainer``).
        make_trainer: a factory ``seed -> Trainer``.
        seed: the seed for ``make_trainer`` (None: the context's seed).
        inputs: prediction inputs of at least 2 examples (None: ``batch[0]``).
        example: a one-example training batch (None: row 0 of ``batch``).
        train_example: also train on one example.
        trainable: state names or `fnmatch` patterns that must change in one step.
        frozen: state names or patterns that must not change.
        update_ratio: the (low, high) band for update ratios (WARN outside).
        n_compare: how many examples are predicted alone and compared.
        atol, rtol: tolerance of the single-vs-batch comparison.
        isolation: ``"copy"``, ``"checkpoint"`` or ``"auto"`` (see `LossDecreasesCheck`).

    Raises:
        InvalidInput: a field is out of range, not exactly one trainer source is given,
            or ``inputs`` is None and ``batch`` is not a tuple or list.

    >>> from mlchecks.demo import DemoSystem, make_trainer
    >>> batch = DemoSystem(seed=0).batches(0)[0]
    >>> result = SingleBatchCheck(make_trainer=make_trainer, batch=batch).run()
    >>> result.status, len(result.details["tensors"])
    (<Status.PASS: 'pass'>, 15)
    """

    batch: Any = attrs.field(repr=False)
    trainer: Trainer | None = attrs.field(default=None, validator=trainer_or_none)
    make_trainer: Callable[[int], Trainer] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    seed: int | None = attrs.field(default=None, validator=optional(int_at_least(0)))
    inputs: Any = attrs.field(default=None, repr=False)
    example: Any = attrs.field(default=None, repr=False)
    train_example: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    trainable: tuple[str, ...] | None = attrs.field(default=None, converter=_trainable)
    frozen: tuple[str, ...] = attrs.field(default=(), converter=_frozen)
    update_ratio: tuple[float, float] = attrs.field(default=(1e-7, 1.0), converter=_band)
    n_compare: int = attrs.field(default=8, validator=int_at_least(1))
    atol: float = attrs.field(default=1e-6, validator=number_in(0.0))
    rtol: float = attrs.field(default=1e-5, validator=number_in(0.0))
    isolation: Isolation = attrs.field(default="auto", validator=one_of(*ISOLATIONS))
    name: str = "single_batch"
    rubric: int | None = 5

    def __attrs_post_init__(self) -> None:
        one_source(self.trainer, self.make_trainer)
        n_batch = _n_rows(self.batch, lists=True, name="batch")
        if n_batch < 2:
            raise InvalidInput(f"'batch' must hold at least 2 examples (got {n_batch})")
        if self.inputs is None and not isinstance(self.batch, tuple | list):
            raise InvalidInput(
                "'inputs' is required when 'batch' is not a tuple or list whose first item is "
                f"the inputs (got batch {describe(self.batch)})"
            )
        n_inputs = _n_rows(self.prediction_inputs, lists=False, name="inputs")
        if n_inputs < 2:
            raise InvalidInput(f"'inputs' must hold at least 2 examples (got {n_inputs})")

    @property
    def prediction_inputs(self) -> Any:
        """The inputs predicted as a batch and example by example."""
        return self.inputs if self.inputs is not None else self.batch[0]

    @property
    def one_example(self) -> Any:
        """The one-example training batch."""
        return self.example if self.example is not None else _rows(self.batch, 0, 1, lists=True)

    def run(self, context: Context | None = None) -> Result:
        """Probe the trainer and judge what was observed; see the class docstring."""
        ctx = context if context is not None else Context()
        seed = self.seed if self.seed is not None else ctx.seed
        with ctx.tempdir() as workdir:
            with preserve_global_rngs():
                source = TrainerSource(
                    trainer=self.trainer,
                    make_trainer=self.make_trainer,
                    seed=seed,
                    isolation=self.isolation,
                    workdir=workdir,
                )
                try:
                    ctx.report(f"{self.name}: one training step on a batch")
                    probe = self._probe(source)
                finally:
                    source.restore()
            changed = source.changes()
        return self._judge(probe, changed, source.mode)

    # ------------------------------------------------------------------ collecting

    def _predict(self, trainer: Trainer, inputs: Any) -> np.ndarray:
        return to_numpy(trainer.predict(inputs))

    def _probe(self, source: TrainerSource) -> _Probe:
        inputs = self.prediction_inputs
        trainer = source.fresh()
        before = snapshot(trainer.state())
        outputs_before = self._predict(trainer, inputs)
        n = min(self.n_compare, _n_rows(inputs, lists=False, name="inputs"))
        singles: list[tuple[int, np.ndarray | None, str | None]] = []
        for i in range(n):
            try:
                singles.append(
                    (i, self._predict(trainer, _rows(inputs, i, i + 1, lists=False)), None)
                )
            except Exception as exc:
                singles.append((i, None, _error_text(exc)))
        after_predict = snapshot(trainer.state())

        loss = float(trainer.train_step(self.batch))
        after = snapshot(trainer.state())
        gradients = _optional_arrays(trainer, "gradients")
        activations = _optional_arrays(trainer, "trace", inputs)
        try:
            outputs_after: np.ndarray | None = self._predict(trainer, inputs)
            outputs_after_error = None
        except Exception as exc:
            outputs_after, outputs_after_error = None, _error_text(exc)

        example = self._example_step(source) if self.train_example else None
        return _Probe(
            before=before,
            after_predict=after_predict,
            after=after,
            loss=loss,
            outputs_before=outputs_before,
            outputs_after=outputs_after,
            outputs_after_error=outputs_after_error,
            singles=singles,
            gradients=gradients,
            activations=activations,
            example=example,
        )

    def _example_step(self, source: TrainerSource) -> dict[str, Any]:
        trainer = source.fresh()
        before = snapshot(trainer.state())
        try:
            loss = float(trainer.train_step(self.one_example))
        except Exception as exc:
            return {"error": _error_text(exc)}
        after = snapshot(trainer.state())
        out: dict[str, Any] = {"loss": loss, "before": before, "after": after}
        gradients = _optional_arrays(trainer, "gradients")
        if gradients is not None:
            out["gradients"] = gradients
        return out

    # ------------------------------------------------------------------ judging

    def _trainable_names(self, probe: _Probe) -> tuple[list[str], str]:
        state = probe.before
        if self.trainable is not None:
            names = [n for n in state if matches(n, self.trainable)]
            source = "the 'trainable' patterns"
        elif probe.gradients and set(probe.gradients) & set(state):
            names = [n for n in state if n in probe.gradients]
            source = "the names gradients() reports"
        else:
            names = [n for n in state if _is_float(state[n])]
            source = "every floating-point state entry"
        return [n for n in names if not matches(n, self.frozen)], source

    def _judge(self, probe: _Probe, changed: list[EntryDiff], mode: str) -> Result:
        trainable, trainable_source = self._trainable_names(probe)
        frozen = [n for n in probe.before if matches(n, self.frozen)]
        roles = dict.fromkeys(trainable, "trainable") | dict.fromkeys(frozen, "frozen")
        names = sorted(set(probe.before) | set(probe.after))
        rows = [
            _tensor_row(n, roles.get(n, "other"), probe.before.get(n), probe.after.get(n))
            for n in names
        ]
        by_name = {row["name"]: row for row in rows}
        grad_rows = [_array_stats(k, v) for k, v in sorted((probe.gradients or {}).items())]
        for row in grad_rows:
            if row["name"] in by_name:
                by_name[row["name"]]["grad_norm"] = row.get("norm")
                by_name[row["name"]]["grad_finite"] = row["nonfinite"] == 0
        act_rows = [_array_stats(k, v) for k, v in (probe.activations or {}).items()]

        findings: list[Finding] = []
        metrics: dict[str, float] = {
            "batch_loss": probe.loss,
            "n_entries": float(len(rows)),
            "n_trainable": float(len(trainable)),
        }
        details: dict[str, Any] = {
            "isolation": mode,
            "trainable_from": trainable_source,
            "tensors": rows,
            "gradients": grad_rows,
            "activations": act_rows,
            "update_ratio_band": list(self.update_ratio),
        }

        findings.append(self._loss_finding(probe))
        findings.append(self._state_finite_finding(probe, rows))
        if probe.gradients is not None:
            findings.append(_finite_table_finding("gradients_finite", "gradients()", grad_rows))
        if probe.activations is not None:
            findings.append(
                _finite_table_finding("activations_finite", "trace(inputs) activations", act_rows)
            )
        findings.append(self._outputs_finite_finding(probe))
        findings.append(self._trainable_finding(trainable, trainable_source, by_name, metrics))
        if self.frozen:
            findings.append(self._frozen_finding(frozen, by_name))
        findings.append(self._ratio_finding(trainable, by_name, metrics))
        findings.append(self._prediction_changed_finding(probe))
        findings.append(self._stateless_finding(probe))
        findings.extend(self._single_findings(probe, metrics, details))
        if probe.example is not None:
            findings.append(self._example_finding(probe.example, metrics, details))
        findings.append(restored_finding(changed))
        ratios = ""
        if "min_update_ratio" in metrics and "max_update_ratio" in metrics:
            ratios = (
                f" (update ratios {metrics['min_update_ratio']:.2g} to "
                f"{metrics['max_update_ratio']:.2g})"
            )
        return Result.from_findings(
            self.name,
            findings,
            pass_summary=(
                f"one batch and one example went through training and prediction: "
                f"{int(metrics.get('n_trainable', 0))} trainable tensors updated{ratios}; "
                "state, gradients, activations and outputs finite; each example predicted "
                "alone equals its prediction in the batch"
            ),
            metrics=metrics,
            details=details,
            rubric=self.rubric,
        )

    def _loss_finding(self, probe: _Probe) -> Finding:
        if math.isfinite(probe.loss):
            return Finding(
                "loss_finite",
                Status.PASS,
                probe.loss,
                "finite",
                f"the loss of one training step on the batch is finite ({_fmt(probe.loss)})",
            )
        return Finding(
            "loss_finite",
            Status.FAIL,
            probe.loss,
            "finite",
            f"the loss of one training step on the batch is {probe.loss}: the forward pass "
            "is numerically unstable at the initial state",
        )

    def _state_finite_finding(self, probe: _Probe, rows: list[dict[str, Any]]) -> Finding:
        bad_before = [n for n, v in probe.before.items() if _nonfinite(v)]
        bad = [r for r in rows if r.get("nonfinite")]
        if not bad:
            return Finding(
                "state_finite",
                Status.PASS,
                0.0,
                "== 0 entries",
                f"all {len(rows)} state entries are finite after one training step",
            )
        parts = [f"{r['name']!r} ({r['nonfinite']} of {int(np.prod(r['shape']))})" for r in bad]
        when = (
            "already before training"
            if set(bad_before) >= {r["name"] for r in bad}
            else "after one training step on the batch"
        )
        return Finding(
            "state_finite",
            Status.FAIL,
            len(bad),
            "== 0 entries",
            f"{_plural(len(bad), 'state entry', 'state entries')} hold NaN or infinite values "
            f"{when}: {_listing(parts)}",
        )

    def _outputs_finite_finding(self, probe: _Probe) -> Finding:
        problems = []
        n_before = _nonfinite(probe.outputs_before)
        if n_before:
            problems.append(f"{n_before} of {probe.outputs_before.size} before training")
        if probe.outputs_after_error is not None:
            problems.append(f"predict raised {probe.outputs_after_error} after the step")
        elif probe.outputs_after is not None and _nonfinite(probe.outputs_after):
            n_after = _nonfinite(probe.outputs_after)
            problems.append(f"{n_after} of {probe.outputs_after.size} after one training step")
        if not problems:
            return Finding(
                "outputs_finite",
                Status.PASS,
                None,
                "finite",
                "predictions are finite before and after one training step",
            )
        return Finding(
            "outputs_finite",
            Status.FAIL,
            None,
            "finite",
            "predictions on the inputs are not finite: " + "; ".join(problems),
        )

    def _trainable_finding(
        self,
        trainable: list[str],
        source: str,
        rows: Mapping[str, dict[str, Any]],
        metrics: dict[str, float],
    ) -> Finding:
        if not trainable:
            return Finding(
                "trainable_changed",
                Status.FAIL,
                0.0,
                ">= 1 trainable entry",
                f"no state entry is trainable by {source}: nothing can be seen to train "
                "(pass trainable=[...] to name the parameters)",
            )
        dead = [n for n in trainable if not rows[n]["changed"]]
        metrics["n_unchanged_trainable"] = float(len(dead))
        if not dead:
            return Finding(
                "trainable_changed",
                Status.PASS,
                0.0,
                "== 0 unchanged",
                f"all {len(trainable)} trainable entries changed in one training step",
            )
        parts = []
        for n in dead:
            grad = rows[n].get("grad_norm")
            if grad is None:
                parts.append(repr(n))
            elif grad == 0.0:
                parts.append(f"{n!r} (its gradient is zero: no loss signal reaches it)")
            else:
                parts.append(
                    f"{n!r} (gradient norm {_fmt(grad)}: the gradient reaches it but the "
                    "update does not)"
                )
        return Finding(
            "trainable_changed",
            Status.FAIL,
            len(dead),
            "== 0 unchanged",
            f"{len(dead)} of {len(trainable)} trainable entries did not change in one training "
            f"step on the batch: {_listing(parts)}",
        )

    def _frozen_finding(self, frozen: list[str], rows: Mapping[str, dict[str, Any]]) -> Finding:
        moved = [n for n in frozen if rows[n]["changed"]]
        if not frozen:
            return Finding(
                "frozen_unchanged",
                Status.FAIL,
                None,
                "matches >= 1 entry",
                f"no state entry matches the frozen patterns {list(self.frozen)}",
            )
        if not moved:
            return Finding(
                "frozen_unchanged",
                Status.PASS,
                0.0,
                "== 0 changed",
                f"all {len(frozen)} frozen entries are unchanged after one training step",
            )
        parts = [
            f"{n!r} (max |delta| {_fmt(rows[n]['max_abs_delta'])})"
            if rows[n].get("max_abs_delta") is not None
            else repr(n)
            for n in moved
        ]
        return Finding(
            "frozen_unchanged",
            Status.FAIL,
            len(moved),
            "== 0 changed",
            f"{len(moved)} of {len(frozen)} frozen entries changed in one training step: "
            f"{_listing(parts)}",
        )

    def _ratio_finding(
        self, trainable: list[str], rows: Mapping[str, dict[str, Any]], metrics: dict[str, float]
    ) -> Finding:
        low, high = self.update_ratio
        condition = Between(low, high, severity=Status.WARN)
        ratios = {
            n: rows[n]["update_ratio"]
            for n in trainable
            if rows[n].get("update_ratio") is not None and rows[n]["update_ratio"] > 0
        }
        if not ratios:
            return Finding(
                "update_ratio",
                Status.PASS,
                None,
                condition.describe(),
                "no trainable entry has a measurable update ratio (zero norm before the step, "
                "no change, or non-finite values)",
            )
        metrics["min_update_ratio"] = min(ratios.values())
        metrics["max_update_ratio"] = max(ratios.values())
        outside = {n: r for n, r in ratios.items() if not condition.holds(r)}
        if not outside:
            return Finding(
                "update_ratio",
                Status.PASS,
                metrics["max_update_ratio"],
                condition.describe(),
                f"update ratios ||delta||/||w|| of {len(ratios)} trainable entries (those with a "
                f"nonzero norm before the step) are in "
                f"[{_fmt(low)}, {_fmt(high)}] (from {_fmt(metrics['min_update_ratio'])} to "
                f"{_fmt(metrics['max_update_ratio'])})",
            )
        worst = max(outside, key=lambda n: abs(math.log10(outside[n])))
        parts = [f"{n!r} {_fmt(r)}" for n, r in outside.items()]
        return Finding(
            "update_ratio",
            Status.WARN,
            outside[worst],
            condition.describe(),
            f"update ratio ||delta||/||w|| of {len(outside)} trainable entries is outside "
            f"[{_fmt(low)}, {_fmt(high)}] after one step: {_listing(parts)} (too small: the "
            "update is lost; too large: the step overwhelms the weights)",
        )

    def _prediction_changed_finding(self, probe: _Probe) -> Finding:
        after = probe.outputs_after
        if after is None:
            return Finding(
                "prediction_changed",
                Status.FAIL,
                None,
                "differs after a step",
                f"predict raised {probe.outputs_after_error} after one training step",
            )
        same = after.shape == probe.outputs_before.shape and not compare_states(
            {"outputs": probe.outputs_before}, {"outputs": after}
        )
        if same:
            return Finding(
                "prediction_changed",
                Status.FAIL,
                0.0,
                "differs after a step",
                "predictions on the inputs are bitwise identical before and after one "
                "training step: the update does not reach predict() (stale weights or a "
                "cached model)",
            )
        diff = math.nan
        if after.shape == probe.outputs_before.shape and after.size:
            with np.errstate(all="ignore"):
                change = np.abs(after.astype(np.float64) - probe.outputs_before.astype(np.float64))
            change = np.where(np.isnan(change), math.inf, change)
            diff = float(change.max())
        return Finding(
            "prediction_changed",
            Status.PASS,
            diff,
            "differs after a step",
            f"one training step changed the predictions (max |change| {_fmt(diff)})",
        )

    def _stateless_finding(self, probe: _Probe) -> Finding:
        diffs = compare_states(probe.before, probe.after_predict)
        if not diffs:
            return Finding(
                "predict_stateless",
                Status.PASS,
                0.0,
                "== 0 entries changed",
                "predict() changed no state entry",
            )
        return Finding(
            "predict_stateless",
            Status.FAIL,
            len(diffs),
            "== 0 entries changed",
            f"predict() changed {_plural(len(diffs), 'state entry', 'state entries')}: "
            f"{summarize_diffs(diffs)} (a layer left in training mode, such as batch norm "
            "updating its statistics or dropout drawing random numbers)",
        )

    def _single_findings(
        self, probe: _Probe, metrics: dict[str, float], details: dict[str, Any]
    ) -> list[Finding]:
        batch_out = probe.outputs_before
        expected_shape = (1, *batch_out.shape[1:]) if batch_out.ndim else None
        errors = [(i, e) for i, _, e in probe.singles if e is not None]
        shapes = [
            (i, out.shape)
            for i, out, _ in probe.singles
            if out is not None and out.shape != expected_shape
        ]
        rows: list[dict[str, Any]] = []
        worst: tuple[float, int] = (0.0, -1)
        mismatched: list[str] = []
        for i, out, _ in probe.singles:
            if out is None or batch_out.ndim == 0 or out.size != batch_out[i].size:
                continue
            single = out.reshape(batch_out[i].shape).astype(np.float64)
            batched = batch_out[i].astype(np.float64)
            with np.errstate(all="ignore"):
                diff = np.abs(single - batched)
                bad = diff > self.atol + self.rtol * np.abs(batched)
                bad |= np.isnan(single) != np.isnan(batched)
            top = float(np.nanmax(diff)) if diff.size and not np.all(np.isnan(diff)) else 0.0
            rows.append({"index": i, "max_abs_diff": top, "n_beyond_tolerance": int(bad.sum())})
            if top > worst[0]:
                worst = (top, i)
            if bad.any():
                mismatched.append(f"example {i} (max |diff| {_fmt(top)})")
        details["single_vs_batch"] = rows
        metrics["single_vs_batch_max_abs_diff"] = worst[0]

        findings: list[Finding] = []
        if errors:
            i, text = errors[0]
            findings.append(
                Finding(
                    "single_example",
                    Status.FAIL,
                    len(errors),
                    "predict works on 1 example",
                    f"predict() on one example raised {text} (example {i}; "
                    f"{len(errors)} of {len(probe.singles)} examples failed)",
                )
            )
        elif shapes:
            i, shape = shapes[0]
            findings.append(
                Finding(
                    "single_example",
                    Status.FAIL,
                    len(shapes),
                    f"shape {expected_shape}",
                    f"predict() on one example returned shape {shape}, expected "
                    f"{expected_shape} (the batch's outputs have shape {batch_out.shape}; "
                    f"example {i})",
                )
            )
        else:
            findings.append(
                Finding(
                    "single_example",
                    Status.PASS,
                    0.0,
                    f"shape {expected_shape}",
                    f"predict() on one example works and returns shape {expected_shape} "
                    f"({len(probe.singles)} examples tried)",
                )
            )
        limit = f"|single - batch| <= {self.atol:g} + {self.rtol:g} * |batch|"
        if not rows:
            findings.append(
                Finding(
                    "single_vs_batch",
                    Status.FAIL,
                    None,
                    limit,
                    "no single-example prediction could be compared with the batch's",
                )
            )
        elif mismatched:
            findings.append(
                Finding(
                    "single_vs_batch",
                    Status.FAIL,
                    worst[0],
                    limit,
                    f"{len(mismatched)} of {len(rows)} examples predicted alone differ from "
                    f"their prediction inside the batch: {_listing(mismatched)} (outputs depend "
                    "on the other examples in the batch: batch norm in train mode, padding, or "
                    "batch statistics)",
                )
            )
        else:
            findings.append(
                Finding(
                    "single_vs_batch",
                    Status.PASS,
                    worst[0],
                    limit,
                    f"{len(rows)} examples predicted alone equal their predictions inside the "
                    f"batch (max |diff| {_fmt(worst[0])})",
                )
            )
        return findings

    def _example_finding(
        self, example: dict[str, Any], metrics: dict[str, float], details: dict[str, Any]
    ) -> Finding:
        if "error" in example:
            details["example_step"] = {"error": example["error"]}
            return Finding(
                "example_step",
                Status.FAIL,
                None,
                "trains on 1 example",
                f"train_step on a one-example batch raised {example['error']} (if the model "
                "cannot train on one example by design, such as with batch norm, pass "
                "train_example=False)",
            )
        loss = example["loss"]
        metrics["example_loss"] = loss
        after: dict[str, np.ndarray] = example["after"]
        nonfinite = [
            f"{n!r} ({_nonfinite(v)} of {v.size})" for n, v in after.items() if _nonfinite(v)
        ]
        grads: dict[str, np.ndarray] = example.get("gradients") or {}
        bad_grads = [
            f"{n!r} ({_nonfinite(v)} of {v.size})" for n, v in grads.items() if _nonfinite(v)
        ]
        n_changed = len(compare_states(example["before"], after))
        details["example_step"] = {
            "loss": loss,
            "entries_changed": n_changed,
            "nonfinite_entries": nonfinite,
            "nonfinite_gradients": bad_grads,
        }
        problems = []
        if not math.isfinite(loss):
            problems.append(f"the loss is {loss}")
        if nonfinite:
            problems.append(f"state entries hold NaN or infinity: {_listing(nonfinite)}")
        if bad_grads:
            problems.append(f"gradients hold NaN or infinity: {_listing(bad_grads)}")
        if n_changed == 0:
            problems.append("no state entry changed")
        if problems:
            return Finding(
                "example_step",
                Status.FAIL,
                loss,
                "finite and changes state",
                "one training step on a single example went wrong: " + "; ".join(problems),
            )
        return Finding(
            "example_step",
            Status.PASS,
            loss,
            "finite and changes state",
            f"one training step on a single example ran (loss {_fmt(loss)}) and changed "
            f"{_plural(n_changed, 'state entry', 'state entries')}, all finite",
        )


def _finite_table_finding(name: str, what: str, rows: list[dict[str, Any]]) -> Finding:
    bad = [r for r in rows if r.get("nonfinite")]
    if not bad:
        return Finding(name, Status.PASS, 0.0, "== 0 tensors", f"all {len(rows)} {what} are finite")
    parts = [f"{r['name']!r} ({r['nonfinite']} of {int(np.prod(r['shape']))})" for r in bad]
    return Finding(
        name,
        Status.FAIL,
        len(bad),
        "== 0 tensors",
        f"{len(bad)} of {len(rows)} {what} hold NaN or infinite values after one training "
        f"step: {_listing(parts)}",
    )
