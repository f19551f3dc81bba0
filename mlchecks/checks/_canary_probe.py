"""Stage 0 of the canary, judged: the probes' errors, versions, latency, outputs, agreement.

`judge_probes` turns the candidate's answers to the probe inputs into findings, metrics and
details on a `ResultBuilder`; `judge_metadata` compares the library versions the model was
trained with and those the server runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mlchecks._fields import held, held_or_none
from mlchecks._text import fmt, plural
from mlchecks._validate import describe
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._traffic import (
    as_output_array,
    as_rows,
    error_class,
    json_outputs,
    latency_quantiles,
)
from mlchecks.protocols import Response
from mlchecks.result import Status

if TYPE_CHECKING:
    from mlchecks.checks.canary import CanaryCheck

__all__ = ["judge_metadata", "judge_probes"]

_OUTPUTS_LIMIT = "numeric, one shape, finite"


def judge_probes(
    check: CanaryCheck, probes: list[Any], responses: list[Response], b: ResultBuilder
) -> None:
    """Errors by class, which version answered, latency, output shape and offline agreement."""
    n = len(probes)
    errors: dict[str, list[int]] = {}
    for i, r in enumerate(responses):
        if not r.ok:
            errors.setdefault(error_class(r), []).append(i)
    n_errors = sum(len(v) for v in errors.values())
    b.update_metrics(
        {"probe.n_requests": n, "probe.n_errors": n_errors, "probe.error_rate": n_errors / n}
    )
    b.detail(
        "probe_errors",
        {
            kind: {"count": len(rows), "first_row": rows[0], "first": responses[rows[0]].error}
            for kind, rows in errors.items()
        },
    )
    limit = held(check.max_probe_errors)
    if limit.holds(n_errors):
        message = f"{n - n_errors} of {n} probe requests to version {check.candidate!r} succeeded"
    else:
        by_class = ", ".join(f"{len(v)} {k}" for k, v in sorted(errors.items()))
        first = responses[errors[max(errors, key=lambda k: len(errors[k]))][0]].error
        message = (
            f"{n_errors} of {n} probe requests to version {check.candidate!r} failed "
            f"({by_class} errors), more than max_probe_errors {fmt(limit.value)}; e.g. {first}"
        )
    b.judge("probe.errors", limit, float(n_errors), message=message)
    ok = [i for i, r in enumerate(responses) if r.ok]
    wrong = [
        responses[i].version for i in ok if responses[i].version not in (None, check.candidate)
    ]
    if wrong:
        b.note(
            "probe.version",
            Status.FAIL,
            f"{len(wrong)} of {len(ok)} probe responses came from version {wrong[0]!r}, "
            f"not the candidate {check.candidate!r}",
            observed=float(len(wrong)),
            limit="== 0",
        )
    latencies = [responses[i].latency_s for i in ok]
    quantiles = latency_quantiles(latencies)
    b.update_metrics({f"probe.latency.{k}": v for k, v in quantiles.items()})
    if latencies:
        b.judge(
            "probe.latency.p99_s",
            held_or_none(check.max_probe_latency_s),
            quantiles["p99_s"],
            context=f" (p99 latency of the candidate's {len(ok)} probe responses, s)",
        )
    if ok:
        _judge_outputs(check, probes, responses, ok, b)


def _judge_outputs(
    check: CanaryCheck,
    probes: list[Any],
    responses: list[Response],
    ok: list[int],
    b: ResultBuilder,
) -> None:
    arrays = {i: as_output_array(responses[i].outputs) for i in ok}
    not_numeric = [i for i, a in arrays.items() if a is None]
    shapes = {a.shape for a in arrays.values() if a is not None}
    dtypes = {str(a.dtype) for a in arrays.values() if a is not None}
    nonfinite = [
        i
        for i, a in arrays.items()
        if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all()
    ]
    b.detail("probe_outputs", {"shapes": sorted(str(s) for s in shapes), "dtypes": sorted(dtypes)})
    problems = []
    if not_numeric:
        problems.append(
            f"{len(not_numeric)} outputs are not numeric "
            f"(e.g. {describe(responses[not_numeric[0]].outputs)})"
        )
    if len(shapes) > 1:
        problems.append(f"outputs have {len(shapes)} different shapes {sorted(shapes)}")
    if nonfinite:
        problems.append(
            f"{len(nonfinite)} outputs contain NaN or infinity (first at probe {nonfinite[0]})"
        )
    offline = _offline(check, probes)
    if isinstance(offline, str):
        b.note("probe.agreement", Status.FAIL, offline)
        offline = None
    if offline is not None and len(shapes) == 1:
        (got,) = shapes
        sample = next(a for a in arrays.values() if a is not None)
        served_row = as_rows(sample, 1)
        if served_row is None or served_row.shape[1] != offline.shape[1]:
            problems.append(
                f"outputs have shape {got}; the offline predictions have "
                f"{offline.shape[1]} values per input"
            )
    if problems:
        message = f"the candidate's probe outputs are malformed: {'; '.join(problems)}"
        b.note("probe.outputs", Status.FAIL, message, limit=_OUTPUTS_LIMIT)
    else:
        shape = next(iter(shapes)) if shapes else ()
        message = (
            f"all {len(ok)} probe outputs are finite {', '.join(sorted(dtypes))} arrays of "
            f"shape {shape}"
        )
        b.note("probe.outputs", Status.PASS, message, limit=_OUTPUTS_LIMIT)
    if offline is not None:
        _judge_agreement(check, offline, arrays, b)


def _offline(check: CanaryCheck, probes: list[Any]) -> np.ndarray | str | None:
    """The offline predictions for ``probes`` as `as_rows` rows, or why they could not be had."""
    source = check.offline_predictions
    if source is None:
        return None
    try:
        values = np.asarray(source(probes) if callable(source) else source)
    except Exception as exc:
        return f"computing the offline predictions raised {type(exc).__name__}: {exc}"
    rows = None
    if values.dtype.kind in "biuf" and values.ndim > 0 and len(values) >= len(probes):
        rows = as_rows(values[: len(probes)], len(probes))
    if rows is None:
        return (
            f"the offline predictions must be numeric, one per probe ({len(probes)}) "
            f"(got {describe(values)})"
        )
    return rows


def _judge_agreement(
    check: CanaryCheck,
    offline: np.ndarray,
    arrays: Mapping[int, np.ndarray | None],
    b: ResultBuilder,
) -> None:
    agree = class_agree = classed = 0
    worst = 0.0
    examples: list[dict[str, Any]] = []
    for i, raw in arrays.items():
        # Both sides through the one normalisation (a (1, k) answer is the (k,) row).
        want = offline[i : i + 1]
        served = None if raw is None else as_rows(raw, 1)
        if served is None or served.shape != want.shape:
            if len(examples) < 5:
                examples.append(
                    {
                        "probe": i,
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
                {"probe": i, "served": json_outputs(served, 1), "offline": json_outputs(want, 1)}
            )
    compared = len(arrays)
    fraction = agree / compared if compared else 0.0
    b.metric("probe.agreement", fraction)
    b.metric("probe.prediction.max_abs_diff", worst)
    if classed:
        b.metric("probe.class_agreement", class_agree / classed)
    b.detail("probe_disagreements", examples)
    limit = held(check.min_agreement)
    if limit.holds(fraction):
        message = (
            f"{agree} of {compared} served outputs match the candidate's offline predictions "
            f"(agreement {fmt(fraction)} >= {fmt(limit.value)}, max abs diff {fmt(worst, 3)})"
        )
    else:
        classes = f"; {class_agree} of {classed} predict the same class" if classed else ""
        message = (
            f"only {agree} of {compared} outputs served for version {check.candidate!r} match "
            f"its offline predictions (agreement {fmt(fraction)} < min_agreement "
            f"{fmt(limit.value)}, max abs diff {fmt(worst)}{classes}): the serving stack does "
            "not compute what the training code computes (feature handling or schema skew)"
        )
    b.judge("probe.agreement", limit, fraction, message=message)


def judge_metadata(check: CanaryCheck, b: ResultBuilder) -> None:
    """Every component in both ``trained_with`` and ``serving_with`` must match exactly.

    Component names are the user's, so they go in the messages and ``details["metadata"]``,
    never in finding names: ``metadata.skew`` (FAIL), ``metadata.missing`` (WARN: the
    server does not report a component) or ``metadata`` (PASS, or FAIL when reading
    ``serving_with`` raised).
    """
    trained_with = check.trained_with
    if trained_with is None or check.serving_with is None:
        return
    try:
        source = check.serving_with
        serving = dict(source() if callable(source) else source)
    except Exception as exc:
        message = f"reading serving_with raised {type(exc).__name__}: {exc}"
        b.note("metadata", Status.FAIL, message)
        return
    missing = [key for key in trained_with if key not in serving]
    skewed = [
        key
        for key in trained_with
        if key in serving and str(serving[key]) != str(trained_with[key])
    ]
    b.detail(
        "metadata",
        {
            "trained_with": {str(k): str(v) for k, v in trained_with.items()},
            "serving_with": {str(k): str(v) for k, v in serving.items()},
            "skewed": skewed,
            "missing": missing,
        },
    )
    if skewed:
        pairs = "; ".join(
            f"{key} {trained_with[key]!r} in training but {serving[key]!r} on the server"
            for key in skewed
        )
        message = f"version skew in {plural(len(skewed), 'component')}: {pairs}"
        b.note("metadata.skew", Status.FAIL, message, observed=float(len(skewed)), limit="== 0")
    if missing:
        names = ", ".join(f"{key!r} (trained with {trained_with[key]!r})" for key in missing)
        message = f"the server does not report its version of {names}"
        b.note("metadata.missing", Status.WARN, message, observed=float(len(missing)), limit="== 0")
    if not skewed and not missing:
        versions = ", ".join(f"{k} {v}" for k, v in trained_with.items())
        message = f"the server runs the versions the model was trained with ({versions})"
        b.note("metadata", Status.PASS, message, limit="all equal")
