"""What `SingleBatchCheck` collects: batch slicing, per-tensor statistics and the probe run.

`collect` runs one training step on a batch (and, on a fresh trainer, on one example) and
records every ``state()`` entry before and after, the predictions, the gradients and the
activations; `tensor_row` and `array_stats` turn arrays into the JSON-safe rows of the
result's ``details``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from mlchecks._validate import describe
from mlchecks.checks._state import TrainerSource, compare_states, snapshot, to_numpy
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer

__all__ = [
    "Probe",
    "array_stats",
    "collect",
    "is_float",
    "n_rows",
    "nonfinite",
    "rows",
    "tensor_row",
]


# --------------------------------------------------------------------------- batch slicing


def _is_structure(value: Any, *, lists: bool) -> bool:
    return isinstance(value, tuple | Mapping) or (lists and isinstance(value, list))


def rows(value: Any, start: int, stop: int, *, lists: bool) -> Any:
    """Rows ``start:stop`` of every array in ``value`` (tuples and mappings are structures)."""
    if isinstance(value, Mapping):
        return {k: rows(v, start, stop, lists=lists) for k, v in value.items()}
    if _is_structure(value, lists=lists):
        return type(value)(rows(v, start, stop, lists=lists) for v in value)
    return value[start:stop]


def n_rows(value: Any, *, lists: bool, name: str) -> int:
    """The number of examples in ``value``: the length of its first array."""
    if isinstance(value, Mapping):
        if not value:
            raise InvalidInput(f"'{name}' must not be an empty mapping")
        return n_rows(next(iter(value.values())), lists=lists, name=name)
    if _is_structure(value, lists=lists):
        if not value:
            raise InvalidInput(f"'{name}' must not be empty (got {describe(value)})")
        return n_rows(value[0], lists=lists, name=name)
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(value)
    except TypeError:
        raise InvalidInput(
            f"'{name}' must hold arrays with a leading example axis (got {describe(value)})"
        ) from None


# --------------------------------------------------------------------------- tensor stats


def is_float(array: np.ndarray) -> bool:
    """True for floating and complex arrays."""
    return array.dtype.kind in "fc"


def _norm(array: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(
            np.linalg.norm(
                array.astype(np.complex128 if array.dtype.kind == "c" else np.float64).reshape(-1)
            )
        )


def nonfinite(array: np.ndarray) -> int:
    """How many NaN or infinite values ``array`` holds (0 for non-floating arrays)."""
    return int((~np.isfinite(array)).sum()) if is_float(array) else 0


def tensor_row(
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
        row["finite"] = after is not None and nonfinite(after) == 0
        row["nonfinite"] = 0 if after is None else nonfinite(after)
        row["norm"] = None if after is None or not is_float(after) else _norm(after)
        return row
    diff = compare_states({name: before}, {name: after})
    n_changed = diff[0].n_different if diff else 0
    row["changed"] = n_changed > 0
    row["n_changed"] = n_changed
    row["size"] = int(after.size)
    row["nonfinite"] = nonfinite(after)
    row["finite"] = row["nonfinite"] == 0
    if is_float(after) or after.dtype.kind in "iub":
        with np.errstate(all="ignore"):
            delta = (
                after.astype(np.float64) - before.astype(np.float64)
                if not is_float(after)
                else after - before
            )
            row["max_abs_delta"] = float(np.max(np.abs(delta))) if delta.size else 0.0
            if is_float(after):
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


def array_stats(name: str, value: Any) -> dict[str, Any]:
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


def _gradients(trainer: Trainer) -> tuple[dict[str, np.ndarray] | None, tuple[str, ...]]:
    """``trainer.gradients()`` split into the arrays and the names reported with None (the
    parameters that take no gradient: frozen ones); ``(None, ())`` without the method."""
    fn = getattr(trainer, "gradients", None)
    if not callable(fn):
        return None, ()
    values = fn()
    if not isinstance(values, Mapping):
        raise InvalidInput(
            f"gradients() must return a mapping of name to array (got {describe(values)})"
        )
    arrays = {str(k): to_numpy(v) for k, v in values.items() if v is not None}
    return arrays, tuple(str(k) for k, v in values.items() if v is None)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- the probe


@attrs.frozen
class Probe:
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
    no_gradient: tuple[str, ...] = ()


def _predict(trainer: Trainer, inputs: Any) -> np.ndarray:
    return to_numpy(trainer.predict(inputs))


def collect(
    source: TrainerSource,
    *,
    batch: Any,
    inputs: Any,
    example: Any | None,
    n_compare: int,
) -> Probe:
    """Predict, train one step on ``batch`` and record everything; ``example`` (a one-example
    batch, or None to skip) is trained on a second fresh trainer."""
    trainer = source.fresh()
    before = snapshot(trainer.state())
    outputs_before = _predict(trainer, inputs)
    n = min(n_compare, n_rows(inputs, lists=False, name="inputs"))
    singles: list[tuple[int, np.ndarray | None, str | None]] = []
    for i in range(n):
        try:
            singles.append((i, _predict(trainer, rows(inputs, i, i + 1, lists=False)), None))
        except Exception as exc:
            singles.append((i, None, _error_text(exc)))
    after_predict = snapshot(trainer.state())

    loss = float(trainer.train_step(batch))
    after = snapshot(trainer.state())
    gradients, no_gradient = _gradients(trainer)
    activations = _optional_arrays(trainer, "trace", inputs)
    try:
        outputs_after: np.ndarray | None = _predict(trainer, inputs)
        outputs_after_error = None
    except Exception as exc:
        outputs_after, outputs_after_error = None, _error_text(exc)

    return Probe(
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
        example=None if example is None else _example_step(source, example),
        no_gradient=no_gradient,
    )


def _example_step(source: TrainerSource, example: Any) -> dict[str, Any]:
    trainer = source.fresh()
    before = snapshot(trainer.state())
    try:
        loss = float(trainer.train_step(example))
    except Exception as exc:
        return {"error": _error_text(exc)}
    after = snapshot(trainer.state())
    out: dict[str, Any] = {"loss": loss, "before": before, "after": after}
    gradients, _ = _gradients(trainer)
    if gradients is not None:
        out["gradients"] = gradients
    return out
