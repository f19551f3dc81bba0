"""The serving half of `PipelineCheck`: deploy, load, one request per held-out row, compare.

`Serving` carries the held-out rows and both feature paths; `serve` publishes the trained
model, loads it through one `Session` (retries, timeouts, restore), sends every row and
judges the answers against the offline predictions of the same model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlchecks._deadline import Deadline
from mlchecks._fields import held
from mlchecks._text import fmt
from mlchecks._validate import describe
from mlchecks.checks._pipeline_stages import jsonable_record
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._session import Session
from mlchecks.checks._traffic import (
    as_rows,
    error_class,
    json_outputs,
    latency_quantiles,
)
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Status

if TYPE_CHECKING:
    from mlchecks.checks.pipeline import PipelineCheck

__all__ = ["RAISES", "Serving", "note_raised", "serve"]

Outputs = Mapping[str, Any]
#: The limit text of a finding about a callable that must not raise.
RAISES = "runs without raising"


@attrs.define
class Serving:
    """The serving half's working set: the held-out rows, both feature paths, the steps."""

    b: ResultBuilder
    outputs: Outputs
    records: list[Any]
    train_x: np.ndarray
    serve_x: np.ndarray | None = None
    steps: list[dict[str, Any]] = attrs.Factory(list)

    def step(self, name: str, duration_s: float, rows_in: int | None, rows_out: int | None) -> None:
        """Record one step of the serving half (shown in ``details["serving_steps"]``)."""
        self.steps.append(
            {"step": name, "duration_s": duration_s, "rows_in": rows_in, "rows_out": rows_out}
        )

    def raised(self, name: str, what: str, exc: BaseException) -> None:
        """A FAIL finding for a callable that raised."""
        note_raised(self.b, name, what, exc)


def note_raised(b: ResultBuilder, name: str, what: str, exc: BaseException) -> None:
    """Record a FAIL finding ``name``: ``what`` raised ``exc``."""
    b.note(name, Status.FAIL, f"{what} raised {type(exc).__name__}: {exc}", limit=RAISES)


def serve(check: PipelineCheck, s: Serving, deadline: Deadline) -> None:
    """Deploy, load (when ``check.load``), send every held-out row, compare; then restore."""
    assert check.deploy is not None
    t = time.perf_counter()
    try:
        version = check.deploy(s.outputs)
    except Exception as exc:
        s.raised("serving.deploy", "deploy(outputs)", exc)
        return
    if not isinstance(version, str) or not version:
        s.b.note(
            "serving.deploy",
            Status.FAIL,
            f"deploy(outputs) must return the version to serve (got {describe(version)})",
        )
        return
    s.step("deploy", time.perf_counter() - t, None, None)
    s.b.detail("version", version)
    with Session(
        check.server, request_timeout_s=check.request_timeout_s, deadline=deadline
    ) as session:
        try:
            if check.load:
                loaded = session.load(
                    version, timeout_s=check.load_timeout_s, retries=check.n_load_retries
                )
                s.step("load", loaded.elapsed_s, None, None)
                s.b.metric("load.duration_s", loaded.elapsed_s)
                s.b.detail("load_attempts", list(loaded.attempts))
                unloadable = not callable(getattr(check.server, "load", None))
                hint = "; pass load=False when deploy() makes it servable" if unloadable else ""
                s.b.note(
                    "serving.load",
                    loaded.status,
                    loaded.message + hint,
                    observed=loaded.elapsed_s,
                    limit=f"<= {fmt(check.load_timeout_s)} s",
                )
                if not loaded.ok:
                    return
            _requests(check, s, session, version)
        finally:
            s.b.details.update(session.restore(unload=check.unload))


def _requests(check: PipelineCheck, s: Serving, session: Session, version: str) -> None:
    assert check.predict is not None
    n = len(s.records)
    served: list[Any] = [None] * n
    errors: dict[str, int] = {}
    first_error: dict[str, str] = {}
    wrong_version = 0
    latencies: list[float] = []
    t = time.perf_counter()
    for i, record in enumerate(s.records):
        features = None if s.serve_x is None else s.serve_x[i]
        response = session.send(record if check.send == "raw" else features, version)
        if not response.ok:
            kind = error_class(response)
            errors[kind] = errors.get(kind, 0) + 1
            first_error.setdefault(kind, f"row {i}: {response.error}")
            continue
        latencies.append(response.latency_s)
        if response.version is not None and response.version != version:
            wrong_version += 1
        served[i] = response.outputs
    n_errors = sum(errors.values())
    s.step("requests", time.perf_counter() - t, n, n - n_errors)
    b = s.b
    b.update_metrics({"n_requests": n, "n_errors": n_errors, "error_rate": n_errors / n})
    b.update_metrics({f"latency.{k}": v for k, v in latency_quantiles(latencies).items()})
    b.detail(
        "serving_errors", {k: {"count": v, "first": first_error[k]} for k, v in errors.items()}
    )
    limit = held(check.max_serving_errors)
    if n_errors:
        by_class = ", ".join(f"{v} {k}" for k, v in sorted(errors.items()))
        verdict = "within" if limit.holds(n_errors) else "more than"
        message = (
            f"{n_errors} of {n} requests to version {version!r} failed ({by_class}), "
            f"{verdict} max_serving_errors {fmt(limit.value)}; "
            f"first: {next(iter(first_error.values()))}"
        )
    else:
        message = f"all {n} requests to version {version!r} succeeded"
    b.judge("serving.errors", limit, n_errors, message=message)
    b.metric("n_wrong_version", wrong_version)
    if wrong_version:
        b.note(
            "serving.version",
            Status.FAIL,
            f"{wrong_version} of {n} responses came from another version than {version!r}",
            observed=wrong_version,
            limit="== 0",
        )
    try:
        offline = check.predict(s.outputs, s.train_x)
        offline_rows = as_rows(offline, n)
        if offline_rows is None:
            raise InvalidInput(
                "'predict' must return numeric predictions, one per row "
                f"({n}); got {describe(offline)}"
            )
    except Exception as exc:
        s.raised("served_vs_offline", "predict(outputs, features)", exc)
        return
    _compare(check, s, served, offline_rows, version)


def _compare(
    check: PipelineCheck, s: Serving, served: list[Any], offline: np.ndarray, version: str
) -> None:
    rows = [i for i, value in enumerate(served) if value is not None]
    mismatched: list[int] = []
    class_flips = 0
    max_diff = 0.0
    examples: list[dict[str, Any]] = []
    for i in rows:
        # Both sides through the one normalisation: a (1, k) answer to a one-row request
        # and the offline (k,) row are the same prediction.
        got = as_rows(served[i], 1)
        want = offline[i : i + 1]
        if got is None or got.shape != want.shape:
            mismatched.append(i)
            if len(examples) < check.n_examples:
                examples.append(
                    {
                        "row": i,
                        "served": json_outputs(served[i], 1),
                        "offline": json_outputs(want, 1),
                        "reason": f"served {describe(served[i])}, offline {want.shape[1]} "
                        "values per row",
                    }
                )
            continue
        diff = np.abs(got - want)
        worst = float(np.max(diff)) if diff.size else 0.0
        max_diff = max(max_diff, worst if math.isfinite(worst) else math.inf)
        if not np.allclose(got, want, atol=check.prediction_atol, rtol=check.prediction_rtol):
            mismatched.append(i)
            if got.size > 1 and int(np.argmax(got)) != int(np.argmax(want)):
                class_flips += 1
            if len(examples) < check.n_examples:
                examples.append(
                    {
                        "row": i,
                        "served": json_outputs(got, 1),
                        "offline": json_outputs(want, 1),
                        "raw": jsonable_record(s.records[i]),
                    }
                )
    compared = len(rows)
    fraction = len(mismatched) / compared if compared else 0.0
    b = s.b
    b.metric("prediction.mismatch_fraction", fraction)
    b.metric("prediction.max_abs_diff", max_diff)
    b.metric("prediction.n_class_flips", class_flips)
    b.detail("prediction_mismatches", examples)
    limit = held(check.max_prediction_mismatch)
    if not compared:
        b.note(
            "served_vs_offline",
            Status.FAIL,
            f"no request to version {version!r} succeeded, so no served prediction could be "
            "compared with the offline ones",
            limit=limit.describe(),
        )
        return
    if limit.holds(fraction):
        message = (
            f"served predictions of version {version!r} match the offline predictions on "
            f"{compared - len(mismatched)} of {compared} rows (max abs diff "
            f"{fmt(max_diff, 3)})"
        )
    else:
        first = examples[0]["row"] if examples else mismatched[0]
        message = (
            f"served predictions of version {version!r} differ from the offline predictions "
            f"of the same model on {len(mismatched)} of {compared} rows (fraction "
            f"{fmt(fraction)} > max_prediction_mismatch {fmt(limit.value)}, {class_flips} "
            f"change class, max abs diff {fmt(max_diff)}; first at row {first})"
        )
    b.judge("served_vs_offline", limit, fraction, message=message)
