"""How `SingleBatchCheck` judges what `collect` observed: one function per finding.

Each function records its finding (and the metrics and details it measured) on the
`ResultBuilder`; messages name the tensors, examples or entries at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlchecks._text import fmt, plural
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._single_batch_probe import Probe, nonfinite
from mlchecks.checks._state import clauses, compare_states, summarize_diffs
from mlchecks.conditions import Between
from mlchecks.result import Status

__all__ = [
    "LEADS",
    "judge_example",
    "judge_finite_table",
    "judge_frozen",
    "judge_frozen_parameters",
    "judge_loss",
    "judge_outputs_finite",
    "judge_prediction_changed",
    "judge_single_examples",
    "judge_state_finite",
    "judge_stateless",
    "judge_trainable",
    "judge_update_ratio",
]

# What each failing finding means, in plain words; its message with the figures follows.
LEADS = {
    "loss_finite": "Training on one batch gave a loss that is not a number",
    "state_finite": "Training on one batch filled the model with values that are not numbers",
    "gradients_finite": "Training on one batch gave gradients that are not numbers",
    "activations_finite": "The model computes values that are not numbers on one batch",
    "outputs_finite": "The model predicts values that are not numbers",
    "trainable_changed": "A part of the model that should learn did not change in training",
    "frozen_unchanged": "A part of the model that should stay fixed changed in training",
    "frozen_parameters": "Part of the model gets no gradient but is not declared frozen",
    "update_ratio": "One training step changed some weights by too little or too much",
    "prediction_changed": "One training step did not change the model's predictions",
    "predict_stateless": "Predicting changed the model",
    "single_example": "The model cannot predict a single example",
    "single_vs_batch": "An example predicted alone gets another answer than inside a batch",
    "example_step": "Training on a single example broke the model",
    "trainer_restored": "The check could not put your trainer back as it was",
}

Rows = Mapping[str, dict[str, Any]]


def _short(value: float) -> str:
    return fmt(value, 3)


def _bad_tensors(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows holding NaN or infinity, and one ``'name' (k of n)`` clause for each."""
    bad = [r for r in rows if r.get("nonfinite")]
    parts = [f"{r['name']!r} ({r['nonfinite']} of {int(np.prod(r['shape']))})" for r in bad]
    return bad, parts


def judge_loss(b: ResultBuilder, probe: Probe) -> None:
    """``loss_finite``: the loss of one step on the batch is finite."""
    if math.isfinite(probe.loss):
        message = f"the loss of one training step on the batch is finite ({_short(probe.loss)})"
        b.note("loss_finite", Status.PASS, message, observed=probe.loss, limit="finite")
        return
    b.note(
        "loss_finite",
        Status.FAIL,
        f"the loss of one training step on the batch is {probe.loss}: the forward pass "
        "is numerically unstable at the initial state",
        observed=probe.loss,
        limit="finite",
    )


def judge_state_finite(b: ResultBuilder, probe: Probe, rows: Sequence[dict[str, Any]]) -> None:
    """``state_finite``: no state entry holds NaN or infinity after the step."""
    limit = "== 0 entries"
    bad, parts = _bad_tensors(rows)
    if not bad:
        message = f"all {len(rows)} state entries are finite after one training step"
        b.note("state_finite", Status.PASS, message, observed=0.0, limit=limit)
        return
    bad_before = {n for n, v in probe.before.items() if nonfinite(v)}
    when = (
        "already before training"
        if bad_before >= {r["name"] for r in bad}
        else "after one training step on the batch"
    )
    b.note(
        "state_finite",
        Status.FAIL,
        f"{plural(len(bad), 'state entry', 'state entries')} hold NaN or infinite values "
        f"{when}: {clauses(parts)}",
        observed=len(bad),
        limit=limit,
    )


def judge_finite_table(
    b: ResultBuilder, name: str, what: str, rows: Sequence[dict[str, Any]]
) -> None:
    """``gradients_finite`` / ``activations_finite``: every tensor of the table is finite."""
    bad, parts = _bad_tensors(rows)
    if not bad:
        message = f"all {len(rows)} {what} are finite"
        b.note(name, Status.PASS, message, observed=0.0, limit="== 0 tensors")
        return
    b.note(
        name,
        Status.FAIL,
        f"{len(bad)} of {len(rows)} {what} hold NaN or infinite values after one training "
        f"step: {clauses(parts)}",
        observed=len(bad),
        limit="== 0 tensors",
    )


def judge_outputs_finite(b: ResultBuilder, probe: Probe) -> None:
    """``outputs_finite``: predictions are finite before and after the step."""
    problems = []
    n_before = nonfinite(probe.outputs_before)
    if n_before:
        problems.append(f"{n_before} of {probe.outputs_before.size} before training")
    if probe.outputs_after_error is not None:
        problems.append(f"predict raised {probe.outputs_after_error} after the step")
    elif probe.outputs_after is not None and nonfinite(probe.outputs_after):
        n_after = nonfinite(probe.outputs_after)
        problems.append(f"{n_after} of {probe.outputs_after.size} after one training step")
    if not problems:
        message = "predictions are finite before and after one training step"
        b.note("outputs_finite", Status.PASS, message, limit="finite")
        return
    message = "predictions on the inputs are not finite: " + "; ".join(problems)
    b.note("outputs_finite", Status.FAIL, message, limit="finite")


def judge_trainable(b: ResultBuilder, trainable: Sequence[str], source: str, rows: Rows) -> None:
    """``trainable_changed``: every trainable entry changed in one step."""
    if not trainable:
        b.note(
            "trainable_changed",
            Status.FAIL,
            f"no state entry is trainable by {source}: nothing can be seen to train "
            "(pass trainable=[...] to name the parameters)",
            observed=0.0,
            limit=">= 1 trainable entry",
        )
        return
    dead = [n for n in trainable if not rows[n]["changed"]]
    b.metric("n_unchanged_trainable", len(dead))
    limit = "== 0 unchanged"
    if not dead:
        message = f"all {len(trainable)} trainable entries changed in one training step"
        b.note("trainable_changed", Status.PASS, message, observed=0.0, limit=limit)
        return
    parts = []
    for n in dead:
        grad = rows[n].get("grad_norm")
        if grad is None:
            parts.append(repr(n))
        elif grad == 0.0:
            parts.append(f"{n!r} (its gradient is zero: no loss signal reaches it)")
        else:
            parts.append(
                f"{n!r} (gradient norm {_short(grad)}: the gradient reaches it but the "
                "update does not)"
            )
    b.note(
        "trainable_changed",
        Status.FAIL,
        f"{len(dead)} of {len(trainable)} trainable entries did not change in one training "
        f"step on the batch: {clauses(parts)}",
        observed=len(dead),
        limit=limit,
    )


def judge_frozen(
    b: ResultBuilder, frozen: Sequence[str], patterns: Sequence[str], rows: Rows
) -> None:
    """``frozen_unchanged``: entries matching the ``frozen`` patterns did not change."""
    if not frozen:
        message = f"no state entry matches the frozen patterns {list(patterns)}"
        b.note("frozen_unchanged", Status.FAIL, message, limit="matches >= 1 entry")
        return
    moved = [n for n in frozen if rows[n]["changed"]]
    limit = "== 0 changed"
    if not moved:
        message = f"all {len(frozen)} frozen entries are unchanged after one training step"
        b.note("frozen_unchanged", Status.PASS, message, observed=0.0, limit=limit)
        return
    parts = [
        f"{n!r} (max |delta| {_short(rows[n]['max_abs_delta'])})"
        if rows[n].get("max_abs_delta") is not None
        else repr(n)
        for n in moved
    ]
    b.note(
        "frozen_unchanged",
        Status.FAIL,
        f"{len(moved)} of {len(frozen)} frozen entries changed in one training step: "
        f"{clauses(parts)}",
        observed=len(moved),
        limit=limit,
    )


def judge_frozen_parameters(
    b: ResultBuilder, no_gradient: Sequence[str], undeclared: Sequence[str], rows: Rows
) -> None:
    """``frozen_parameters``: each parameter that takes no gradient is declared ``frozen``."""
    limit = "== 0 undeclared"
    b.metric("n_undeclared_frozen", len(undeclared))
    if not undeclared:
        message = (
            f"all {len(no_gradient)} parameters that take no gradient are declared in 'frozen'"
            if no_gradient
            else "every parameter takes a gradient (none is frozen)"
        )
        b.note("frozen_parameters", Status.PASS, message, observed=0.0, limit=limit)
        return
    parts = [
        f"{n!r} ({'changed' if rows[n]['changed'] else 'unchanged'})" if n in rows else repr(n)
        for n in undeclared
    ]
    b.note(
        "frozen_parameters",
        Status.FAIL,
        f"{len(undeclared)} of {len(no_gradient)} parameters that take no gradient "
        f"(gradients() reports None: requires_grad=False) are not declared in 'frozen': "
        f"{clauses(parts)}; a layer frozen by mistake never trains (declare it with "
        "frozen=[...] if it is frozen on purpose)",
        observed=len(undeclared),
        limit=limit,
    )


def judge_update_ratio(
    b: ResultBuilder, band: Between, trainable: Sequence[str], rows: Rows
) -> None:
    """``update_ratio``: each trainable entry's ``||delta|| / ||w||`` lies in ``band``.

    Outside the band the finding takes the band's severity (WARN by default).
    """
    limit = band.describe()
    span = f"[{_short(band.low)}, {_short(band.high)}]"
    ratios = {
        n: rows[n]["update_ratio"]
        for n in trainable
        if rows[n].get("update_ratio") is not None and rows[n]["update_ratio"] > 0
    }
    if not ratios:
        b.note(
            "update_ratio",
            Status.PASS,
            "no trainable entry has a measurable update ratio (zero norm before the step, "
            "no change, or non-finite values)",
            limit=limit,
        )
        return
    low, high = min(ratios.values()), max(ratios.values())
    b.metric("update_ratio.min", low)
    b.metric("update_ratio.max", high)
    outside = {n: r for n, r in ratios.items() if not band.holds(r)}
    if not outside:
        b.note(
            "update_ratio",
            Status.PASS,
            f"update ratios ||delta||/||w|| of {len(ratios)} trainable entries (those with a "
            f"nonzero norm before the step) are in {span} (from {_short(low)} to "
            f"{_short(high)})",
            observed=high,
            limit=limit,
        )
        return
    worst = max(outside, key=lambda n: abs(math.log10(outside[n])))
    parts = [f"{n!r} {_short(r)}" for n, r in outside.items()]
    b.note(
        "update_ratio",
        band.severity,
        f"update ratio ||delta||/||w|| of {len(outside)} trainable entries is outside "
        f"{span} after one step: {clauses(parts)} (too small: the update is lost; too "
        "large: the step overwhelms the weights)",
        observed=outside[worst],
        limit=limit,
    )


def judge_prediction_changed(b: ResultBuilder, probe: Probe) -> None:
    """``prediction_changed``: one step changes the predictions (the update reaches them)."""
    limit = "differs after a step"
    after = probe.outputs_after
    if after is None:
        message = f"predict raised {probe.outputs_after_error} after one training step"
        b.note("prediction_changed", Status.FAIL, message, limit=limit)
        return
    same = after.shape == probe.outputs_before.shape and not compare_states(
        {"outputs": probe.outputs_before}, {"outputs": after}
    )
    if same:
        b.note(
            "prediction_changed",
            Status.FAIL,
            "predictions on the inputs are bitwise identical before and after one "
            "training step: the update does not reach predict() (stale weights or a "
            "cached model)",
            observed=0.0,
            limit=limit,
        )
        return
    diff = math.nan
    if after.shape == probe.outputs_before.shape and after.size:
        with np.errstate(all="ignore"):
            change = np.abs(after.astype(np.float64) - probe.outputs_before.astype(np.float64))
        change = np.where(np.isnan(change), math.inf, change)
        diff = float(change.max())
    message = f"one training step changed the predictions (max |change| {_short(diff)})"
    b.note("prediction_changed", Status.PASS, message, observed=diff, limit=limit)


def judge_stateless(b: ResultBuilder, probe: Probe) -> None:
    """``predict_stateless``: ``predict`` changed no state entry."""
    limit = "== 0 entries changed"
    diffs = compare_states(probe.before, probe.after_predict)
    if not diffs:
        message = "predict() changed no state entry"
        b.note("predict_stateless", Status.PASS, message, observed=0.0, limit=limit)
        return
    b.note(
        "predict_stateless",
        Status.FAIL,
        f"predict() changed {plural(len(diffs), 'state entry', 'state entries')}: "
        f"{summarize_diffs(diffs)} (a layer left in training mode, such as batch norm "
        "updating its statistics or dropout drawing random numbers)",
        observed=len(diffs),
        limit=limit,
    )


def judge_single_examples(b: ResultBuilder, probe: Probe, atol: float, rtol: float) -> None:
    """``single_example`` and ``single_vs_batch``: one example alone, against the batch."""
    batch_out = probe.outputs_before
    expected_shape = (1, *batch_out.shape[1:]) if batch_out.ndim else None
    errors = [(i, e) for i, _, e in probe.singles if e is not None]
    shapes = [
        (i, out.shape)
        for i, out, _ in probe.singles
        if out is not None and out.shape != expected_shape
    ]
    table: list[dict[str, Any]] = []
    worst = 0.0
    mismatched: list[str] = []
    for i, out, _ in probe.singles:
        if out is None or batch_out.ndim == 0 or out.size != batch_out[i].size:
            continue
        single = out.reshape(batch_out[i].shape).astype(np.float64)
        batched = batch_out[i].astype(np.float64)
        with np.errstate(all="ignore"):
            diff = np.abs(single - batched)
            bad = diff > atol + rtol * np.abs(batched)
            bad |= np.isnan(single) != np.isnan(batched)
        top = float(np.nanmax(diff)) if diff.size and not np.all(np.isnan(diff)) else 0.0
        table.append({"index": i, "max_abs_diff": top, "n_beyond_tolerance": int(bad.sum())})
        worst = max(worst, top)
        if bad.any():
            mismatched.append(f"example {i} (max |diff| {_short(top)})")
    b.detail("single_vs_batch", table)
    b.metric("single_vs_batch.max_abs_diff", worst)

    if errors:
        i, text = errors[0]
        b.note(
            "single_example",
            Status.FAIL,
            f"predict() on one example raised {text} (example {i}; "
            f"{len(errors)} of {len(probe.singles)} examples failed)",
            observed=len(errors),
            limit="predict works on 1 example",
        )
    elif shapes:
        i, shape = shapes[0]
        b.note(
            "single_example",
            Status.FAIL,
            f"predict() on one example returned shape {shape}, expected {expected_shape} "
            f"(the batch's outputs have shape {batch_out.shape}; example {i})",
            observed=len(shapes),
            limit=f"shape {expected_shape}",
        )
    else:
        b.note(
            "single_example",
            Status.PASS,
            f"predict() on one example works and returns shape {expected_shape} "
            f"({len(probe.singles)} examples tried)",
            observed=0.0,
            limit=f"shape {expected_shape}",
        )
    limit = f"|single - batch| <= {atol:g} + {rtol:g} * |batch|"
    if not table:
        message = "no single-example prediction could be compared with the batch's"
        b.note("single_vs_batch", Status.FAIL, message, limit=limit)
    elif mismatched:
        b.note(
            "single_vs_batch",
            Status.FAIL,
            f"{len(mismatched)} of {len(table)} examples predicted alone differ from "
            f"their prediction inside the batch: {clauses(mismatched)} (outputs depend "
            "on the other examples in the batch: batch norm in train mode, padding, or "
            "batch statistics)",
            observed=worst,
            limit=limit,
        )
    else:
        b.note(
            "single_vs_batch",
            Status.PASS,
            f"{len(table)} examples predicted alone equal their predictions inside the "
            f"batch (max |diff| {_short(worst)})",
            observed=worst,
            limit=limit,
        )


def judge_example(b: ResultBuilder, example: dict[str, Any]) -> None:
    """``example_step``: one training step on a single example runs and stays finite."""
    if "error" in example:
        b.detail("example_step", {"error": example["error"]})
        b.note(
            "example_step",
            Status.FAIL,
            f"train_step on a one-example batch raised {example['error']} (if the model "
            "cannot train on one example by design, such as with batch norm, pass "
            "train_example=False)",
            limit="trains on 1 example",
        )
        return
    loss = example["loss"]
    b.metric("loss.example", loss)
    after: dict[str, np.ndarray] = example["after"]
    bad_state = [f"{n!r} ({nonfinite(v)} of {v.size})" for n, v in after.items() if nonfinite(v)]
    grads: dict[str, np.ndarray] = example.get("gradients") or {}
    bad_grads = [f"{n!r} ({nonfinite(v)} of {v.size})" for n, v in grads.items() if nonfinite(v)]
    n_changed = len(compare_states(example["before"], after))
    b.detail(
        "example_step",
        {
            "loss": loss,
            "entries_changed": n_changed,
            "nonfinite_entries": bad_state,
            "nonfinite_gradients": bad_grads,
        },
    )
    problems = []
    if not math.isfinite(loss):
        problems.append(f"the loss is {loss}")
    if bad_state:
        problems.append(f"state entries hold NaN or infinity: {clauses(bad_state)}")
    if bad_grads:
        problems.append(f"gradients hold NaN or infinity: {clauses(bad_grads)}")
    if n_changed == 0:
        problems.append("no state entry changed")
    limit = "finite and changes state"
    if problems:
        message = "one training step on a single example went wrong: " + "; ".join(problems)
        b.note("example_step", Status.FAIL, message, observed=loss, limit=limit)
        return
    b.note(
        "example_step",
        Status.PASS,
        f"one training step on a single example ran (loss {_short(loss)}) and changed "
        f"{plural(n_changed, 'state entry', 'state entries')}, all finite",
        observed=loss,
        limit=limit,
    )
