"""Stage 0 of the canary, row by row: the probes' outputs and their offline agreement.

A probe is one request of one row or of many (`request_rows`); its outputs hold one answer
per row (`row_outputs`). `judge_outputs` checks every answer is numbers or text labels of
one shape, finite; `judge_agreement` compares each row's answer with the candidate's
offline prediction for that row (`offline_rows`): scores within the tolerance, labels
equal.

>>> offline_rows([[0.2, 0.8], [0.9, 0.1]], [1, 1]).tolist()
[[0.2, 0.8], [0.9, 0.1]]
>>> offline_rows(np.zeros((3, 8, 2)), [8, 8, 8]).shape
(24, 2)
>>> offline_rows(["yes", b"no"], [1, 1]).tolist()
['yes', 'no']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._fields import held
from mlchecks._text import fmt
from mlchecks._validate import describe
from mlchecks.checks._canary_outputs import label_array, one_example, row_outputs
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._traffic import as_rows, json_outputs, request_rows
from mlchecks.protocols import Response
from mlchecks.result import Status

if TYPE_CHECKING:
    from mlchecks.checks.canary import CanaryCheck

__all__ = ["judge_agreement", "judge_outputs", "offline_input", "offline_rows"]

_OUTPUTS_LIMIT = "numbers or labels, one shape, finite"


def offline_rows(values: Any, rows: Sequence[int]) -> np.ndarray | None:
    """Offline predictions as one entry per probe row (None when they do not fit).

    ``rows`` is each probe's row count. The predictions may be one per row (``(R, k)``,
    ``(R,)`` labels), one array per probe (``(n_probes, m, k)`` for equal batches, or a
    list of ``(m_i, k)`` arrays), or single-row answers with their batch axis
    (``(n, 1, k)``). Numbers come back as ``(R, k)`` float64 rows, text labels as an
    ``(R,)`` array of ``str``.
    """
    total, n = sum(rows), len(rows)
    if total > n and isinstance(values, list | tuple) and len(values) == n:
        parts = [label_array(v) for v in values]
        fitted = [
            p.reshape(m, -1)
            for p, m in zip(parts, rows, strict=True)
            if p is not None and p.ndim and len(p) == m
        ]
        if len(fitted) == n:
            values = np.concatenate(fitted)
    array = label_array(values)
    if array is None or array.ndim == 0:
        return None
    if total > n and len(set(rows)) == 1 and array.shape[:2] == (n, rows[0]):
        array = array.reshape(total, *array.shape[2:])  # one (m, ...) batch per probe
    if array.dtype.kind == "U":
        flat = array.reshape(len(array), -1)
        return flat[:total, 0] if flat.shape[1] == 1 and len(flat) >= total else None
    return as_rows(array[:total], total) if len(array) >= total else None


def offline_input(probes: Sequence[Any]) -> Any:
    """What a callable ``offline_predictions`` is given: the rows of all probes stacked
    into one array when every probe is an array of rows (a batch, or one row with its
    batch axis, ``(1, n_features)``; DataFrames stay DataFrames), else the probes as they
    are (feature vectors, records, scalars).

    >>> offline_input([np.zeros((1, 3)), np.ones((2, 3))]).shape
    (3, 3)
    >>> offline_input([[0.0, 1.0], [2.0, 3.0]])
    [[0.0, 1.0], [2.0, 3.0]]
    """
    if not probes or any(getattr(p, "ndim", 0) < 2 for p in probes):
        return probes
    if all(hasattr(p, "iloc") for p in probes):  # pandas DataFrames keep their columns
        import pandas as pd

        return pd.concat(probes, ignore_index=True)
    try:
        return np.concatenate([np.asarray(p).reshape(len(p), -1) for p in probes])
    except (TypeError, ValueError):
        return probes


def _offline(check: CanaryCheck, probes: list[Any]) -> np.ndarray | str | None:
    """The offline predictions, one per probe row, or why they could not be had."""
    source = check.offline_predictions
    if source is None:
        return None
    rows = [request_rows(p) for p in probes]
    try:
        values = source(offline_input(probes)) if callable(source) else source
        per_row = offline_rows(values, rows)
    except Exception as exc:
        return f"computing the offline predictions raised {type(exc).__name__}: {exc}"
    if per_row is None:
        return (
            f"the offline predictions must be numbers or labels, one per probe row "
            f"({sum(rows)} rows in {len(probes)} probes) (got {describe(values)})"
        )
    return per_row


def judge_outputs(
    check: CanaryCheck,
    probes: list[Any],
    responses: list[Response],
    ok: list[int],
    b: ResultBuilder,
) -> None:
    """The ``probe.outputs`` finding and (with offline predictions) ``probe.agreement``."""
    counts = {i: request_rows(probes[i]) for i in ok}
    batched = any(n > 1 for n in counts.values())
    answers: dict[tuple[int, int], np.ndarray | None] = {}
    unsplit = []
    for i in ok:
        rows = row_outputs(responses[i].outputs, counts[i])
        if rows is None:
            unsplit.append(i)
            continue
        for j, row in enumerate(rows):
            array = label_array(row)
            answers[i, j] = None if array is None else (one_example(array) if batched else array)
    bad = [key for key, a in answers.items() if a is None]
    shapes = {a.shape for a in answers.values() if a is not None}
    dtypes = {str(a.dtype) for a in answers.values() if a is not None}
    nonfinite = [
        key
        for key, a in answers.items()
        if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all()
    ]
    b.detail("probe_outputs", {"shapes": sorted(str(s) for s in shapes), "dtypes": sorted(dtypes)})
    problems = []
    if unsplit:
        i = unsplit[0]
        problems.append(
            f"{len(unsplit)} outputs do not hold one answer per row (probe {i} has "
            f"{counts[i]} rows; got {describe(responses[i].outputs)})"
        )
    if bad:
        first = responses[bad[0][0]].outputs
        if isinstance(first, Mapping) and len(first) > 1:
            problems.append(
                f"{len(bad)} outputs are several named tensors "
                f"({', '.join(str(k) for k in first)}): pick the one to judge with the "
                f"endpoint's output= (V2Endpoint(..., output={next(iter(first))!r}))"
            )
        else:
            problems.append(
                f"{len(bad)} outputs are neither numbers nor labels (e.g. {describe(first)})"
            )
    if len(shapes) > 1:
        problems.append(f"outputs have {len(shapes)} different shapes {sorted(shapes)}")
    if nonfinite:
        problems.append(
            f"{len(nonfinite)} outputs contain NaN or infinity (first at probe {nonfinite[0][0]})"
        )
    offline = _offline(check, probes)
    if isinstance(offline, str):
        b.note("probe.agreement", Status.FAIL, offline)
        offline = None
    if offline is not None and len(shapes) == 1:
        sample = next(a for a in answers.values() if a is not None)
        if not _comparable(sample, offline):
            (got,) = shapes
            want = "labels" if offline.ndim == 1 else f"{offline.shape[1]} values per row"
            problems.append(f"outputs have shape {got}; the offline predictions have {want}")
    if problems:
        message = f"the candidate's probe outputs are malformed: {'; '.join(problems)}"
        b.note("probe.outputs", Status.FAIL, message, limit=_OUTPUTS_LIMIT)
    else:
        shape = next(iter(shapes)) if shapes else ()
        kind = "finite" if all(a is None or a.dtype.kind != "U" for a in answers.values()) else ""
        what = f"{kind} {', '.join(sorted(dtypes))}".strip()
        if batched:
            message = (
                f"all {len(answers)} answers in {len(ok)} probe outputs are {what} arrays of "
                f"shape {shape}, one per row"
            )
        else:
            message = f"all {len(ok)} probe outputs are {what} arrays of shape {shape}"
        b.note("probe.outputs", Status.PASS, message, limit=_OUTPUTS_LIMIT)
    if offline is not None and not unsplit:
        first_row = np.cumsum([0] + [request_rows(p) for p in probes])[:-1].tolist()
        judge_agreement(check, offline, first_row, answers, b)


def _comparable(served: np.ndarray, offline: np.ndarray) -> bool:
    if offline.ndim == 1:  # text labels
        return served.dtype.kind == "U" and served.size == 1
    row = as_rows(served, 1)
    return row is not None and row.shape[1] == offline.shape[1]


def judge_agreement(
    check: CanaryCheck,
    offline: np.ndarray,
    first_row: Sequence[int],
    answers: Mapping[tuple[int, int], np.ndarray | None],
    b: ResultBuilder,
) -> None:
    """``probe.agreement``: the share of probe rows whose answer matches the offline one.

    ``first_row[i]`` is probe ``i``'s first row among the offline rows; ``answers`` holds
    each answered row's output by ``(probe, row)``.
    """
    agree = class_agree = classed = 0
    worst = 0.0
    examples: list[dict[str, Any]] = []
    batched = any(j > 0 for _, j in answers)
    for (i, j), raw in answers.items():
        r = first_row[i] + j
        where = {"probe": i, "row": j} if batched else {"probe": i}
        want = offline[r : r + 1]
        if offline.ndim == 1:
            close = (
                raw is not None
                and raw.dtype.kind == "U"
                and raw.reshape(-1).tolist() == [str(want[0])]
            )
            agree += close
            if not close and len(examples) < 5:
                served = None if raw is None else raw.reshape(-1).tolist()
                examples.append({**where, "served": served, "offline": want.tolist()})
            continue
        served = None if raw is None else as_rows(raw, 1)
        if served is None or served.shape != want.shape:
            if len(examples) < 5:
                examples.append(
                    {
                        **where,
                        "reason": "shape or type differs",
                        "served": None if raw is None else json_outputs(raw, 1),
                        "offline": json_outputs(want, 1),
                    }
                )
            continue
        diff = np.abs(served - want)
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
        close = bool(
            np.allclose(served, want, atol=check.prediction_atol, rtol=check.prediction_rtol)
        )
        agree += close
        if served.size > 1:
            classed += 1
            class_agree += int(np.argmax(served) == np.argmax(want))
        if not close and len(examples) < 5:
            examples.append(
                {**where, "served": json_outputs(served, 1), "offline": json_outputs(want, 1)}
            )
    compared = len(answers)
    fraction = agree / compared if compared else 0.0
    b.metric("probe.agreement", fraction)
    b.metric("probe.prediction.max_abs_diff", worst)
    if classed:
        b.metric("probe.class_agreement", class_agree / classed)
    b.detail("probe_disagreements", examples)
    limit = held(check.min_agreement)
    unit = "rows" if batched else "outputs"
    if limit.holds(fraction):
        message = (
            f"{agree} of {compared} served {unit} match the candidate's offline predictions "
            f"(agreement {fmt(fraction)} >= {fmt(limit.value)}, max abs diff {fmt(worst, 3)})"
        )
    else:
        classes = f"; {class_agree} of {classed} predict the same class" if classed else ""
        message = (
            f"only {agree} of {compared} {unit} served for version {check.candidate!r} match "
            f"its offline predictions (agreement {fmt(fraction)} < min_agreement "
            f"{fmt(limit.value)}, max abs diff {fmt(worst)}{classes}): the serving stack does "
            "not compute what the training code computes (feature handling or schema skew)"
        )
    b.judge("probe.agreement", limit, fraction, message=message)
