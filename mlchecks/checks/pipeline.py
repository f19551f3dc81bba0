"""Rubric test 3: integration test of the full ML pipeline, end to end.

"A good integration test runs all the way from original data sources, through feature
creation, to training, and to serving" (Breck et al., ML Test Score).

- `Stage`: one named step of your pipeline (a function of earlier outputs) with an
  optional output contract: columns, shape, dtype, non-empty, finite, rows dropped or
  added versus its input.
- `Pipeline`: the stages in order, from the data source to the trained model.
  `Pipeline.run` runs them and reports per stage: wall time, rows in and out, rows
  dropped, contract violations, the exception if one raised.
- `PipelineCheck`: runs the pipeline, then the serving half of the system on held-out raw
  rows: the trained model is published (``deploy``) and loaded into your `ModelServer`,
  each held-out raw row goes one by one through the *serving* feature path and the
  server, and two comparisons must agree within tolerance:

  * **training/serving skew**: serving-path features versus training-path (batch)
    features of the same raw rows, per feature (rows differing, max abs diff, example
    rows). A FAIL names the feature.
  * **served versus offline predictions**: what the server answers versus the trained
    model's predictions on the training-path features of the same rows.

The stages are plain functions of earlier outputs, and the serving half is five
callables of the pipeline's ``outputs`` (a mapping stage name -> output), so the check
drives any system: pandas or numpy, an in-process server or an HTTP one.

>>> import numpy as np
>>> pipe = Pipeline([
...     Stage("source", lambda: {"x": np.arange(10.0)}, columns=("x",)),
...     Stage("features", lambda t: t["x"][:, None] / 10, shape=(None, 1), finite=True),
... ])
>>> run = pipe.run()
>>> [(r.name, r.rows_in, r.rows_out, r.ok) for r in run.reports]
[('source', None, 10, True), ('features', 10, 10, True)]
"""

# ruff: noqa: RUF009 (the glossary field factories of mlchecks._fields are attrs fields)
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks._deadline import Deadline
from mlchecks._fields import (
    MaxLimit,
    choice,
    count,
    flag,
    held,
    instance,
    limit,
    name_field,
    renamed,
    rubric,
    seconds,
    tolerance,
)
from mlchecks._text import fmt, listing, plural
from mlchecks._validate import callable_field, describe, optional
from mlchecks.check import Context
from mlchecks.checks._pipeline_serving import RAISES, Serving, note_raised, serve
from mlchecks.checks._pipeline_stages import (
    Pipeline,
    PipelineRun,
    Stage,
    StageReport,
    count_rows,
    feature_matrix,
    jsonable_record,
    row_records,
    take_rows,
)
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._session import ensure_local
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Endpoint
from mlchecks.result import Result, Status

__all__ = ["Pipeline", "PipelineCheck", "PipelineRun", "Stage", "StageReport", "count_rows"]

Outputs = Mapping[str, Any]


def _server(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Endpoint):
        raise InvalidInput(
            f"'server' must be a ModelServer or an Endpoint with infer() (got {describe(value)})"
        )


def _feature_names(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or callable(value):
        return
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput(
            f"'feature_names' must be a sequence of names or a callable (got {describe(value)})"
        )


def _callable() -> Any:
    """An optional keyword-only callable field."""
    return attrs.field(default=None, validator=optional(callable_field), kw_only=True)


def _flag(default: bool) -> Any:
    """A keyword-only boolean field."""
    return flag(default)


# What each failing finding means, in plain words; its message with the figures follows.
_LEADS = {
    "stage.errors": "A stage of the pipeline crashed",
    "stage.contracts": "A stage of the pipeline produced output that breaks its contract",
    "end_to_end": "The held-out rows could not be prepared for serving",
    "serving_features": "The serving feature code failed on some rows",
    "training_serving_skew": "Serving computes different features from training",
    "serving.deploy": "Deploying the trained model failed",
    "serving.load": "The server did not load the trained model",
    "serving.errors": "Requests to the served model failed",
    "serving.version": "The server answered from another version than the one deployed",
    "served_vs_offline": ("The served model predicts differently from the same model run offline"),
}


@renamed({"examples": "n_examples"})
@attrs.frozen
class PipelineCheck:
    """Run the pipeline end to end and compare the serving path with the training path.

    The check runs every `Stage` of ``pipeline`` (timing each, counting rows, judging its
    contract), then the serving half on up to ``n_rows`` held-out raw rows:

    1. ``training_features(outputs, rows)`` — the batch feature path on the held-out table;
    2. ``serving_features(outputs, row)`` for each raw row — the serving feature path;
       every feature is compared between the two paths;
    3. ``deploy(outputs)`` publishes the trained model and returns its version, which is
       loaded with ``server.load(version)`` within ``load_timeout_s``, retried
       ``n_load_retries`` times (when ``load``);
    4. each row is sent to the server, one request per row (``send="raw"``: the raw row,
       for servers that compute features; ``"features"``: its serving-path features);
    5. the answers are compared with ``predict(outputs, training_features)``, the trained
       model's offline predictions.

    ``outputs`` is the mapping from stage name to that stage's output. Every limit
    (``max_*``) takes a number or `AtMost` (``severity="warn"`` makes it a warning).

    Args:
        pipeline: the stages from the data source to the trained model.
        holdout: ``holdout(outputs) -> rows``, held-out raw rows (a column mapping, a data
            frame, a list of records or an array) not used in training.
        training_features: ``(outputs, rows) -> 2-D features``, the batch path.
        serving_features: ``(outputs, row) -> 1-D features``, the serving path for one raw
            row. None skips the feature comparison (then ``send`` must be ``"raw"``).
        server: the `ModelServer` (or any `Endpoint`) the model is served from. None skips
            steps 3 to 5.
        deploy: ``deploy(outputs) -> version``: publish the trained model where the server
            loads it from (your registry or model store); required with ``server``.
        predict: ``(outputs, features) -> predictions``, offline; required with ``server``.
        send: what a request carries: ``"raw"`` rows or serving-path ``"features"``.
        feature_names: names of the feature columns, or ``(outputs) -> names``.
        n_rows: held-out rows to send (the first ones).
        feature_atol, feature_rtol: a feature differs when
            ``|serving - training| > atol + rtol * |training|``.
        prediction_atol, prediction_rtol: the same for served versus offline predictions.
        max_skewed_fraction: the largest fraction of rows on which one feature may differ.
        max_prediction_mismatch: the largest fraction of rows whose served prediction may
            differ from the offline one.
        max_serving_errors: failed requests allowed.
        load: call ``server.load(version)`` after ``deploy`` (False when ``deploy`` makes
            the version servable itself).
        load_timeout_s: the longest loading may take, over all attempts.
        n_load_retries: further attempts when loading raises.
        request_timeout_s: the longest one request may take.
        check_timeout_s: the longest the whole check may take, your stages, loads and requests
            included (your code runs on a worker thread); past it the check ends in ERROR
            naming the stage or step that ran over. None: no limit.
        unload: unload the version afterwards when the check loaded it (leaves the server
            as it was).
        allow_remote: allow a server that is not on 127.0.0.1.
        n_examples: how many example rows each finding and the details show.
        name: the check's name.
        rubric: the ML Test Score test number.

    Raises:
        InvalidInput: a field has the wrong type or value, or a needed callable is missing.
        TypeError: a keyword renamed in 0.2.0 (``examples``) was passed.

    A pipeline that scales one column, and a serving path that scales it the same way:

    >>> import numpy as np
    >>> pipe = Pipeline([Stage("source", lambda: {"x": np.arange(100.0)}, columns=("x",))])
    >>> check = PipelineCheck(
    ...     pipe,
    ...     holdout=lambda out: {"x": np.arange(90.0, 100.0)},
    ...     training_features=lambda out, rows: rows["x"][:, None] / 100,
    ...     serving_features=lambda out, row: [row["x"] * 0.01],
    ... )
    >>> result = check.run()
    >>> result.status, result.finding("training_serving_skew").observed
    (<Status.PASS: 'pass'>, 0.0)
    """

    pipeline: Pipeline = instance(Pipeline, "a Pipeline", kw_only=False)
    holdout: Callable[[Outputs], Any] | None = _callable()
    training_features: Callable[[Outputs, Any], Any] | None = _callable()
    serving_features: Callable[[Outputs, Any], Any] | None = _callable()
    server: Endpoint | None = attrs.field(default=None, validator=_server, kw_only=True)
    deploy: Callable[[Outputs], str] | None = _callable()
    predict: Callable[[Outputs, Any], Any] | None = _callable()
    send: Literal["raw", "features"] = choice("raw", "raw", "features")
    feature_names: Sequence[str] | Callable[[Outputs], Sequence[str]] | None = attrs.field(
        default=None, validator=_feature_names, kw_only=True
    )
    n_rows: int = count(200, minimum=1)
    feature_atol: float = tolerance(1e-6)
    feature_rtol: float = tolerance(1e-6)
    prediction_atol: float = tolerance(1e-6)
    prediction_rtol: float = tolerance(1e-5)
    max_skewed_fraction: MaxLimit = limit("max", 0.0, high=1.0)
    max_prediction_mismatch: MaxLimit = limit("max", 0.0, high=1.0)
    max_serving_errors: MaxLimit = limit("max", 0, integer=True)
    load: bool = _flag(True)
    load_timeout_s: float = seconds(60.0)
    n_load_retries: int = count(2, maximum=100)
    request_timeout_s: float = seconds(10.0)
    check_timeout_s: float | None = seconds(3600.0, optional=True)
    unload: bool = _flag(True)
    allow_remote: bool = _flag(False)
    n_examples: int = count(5, minimum=1)
    name: str = name_field("pipeline")
    rubric: int | None = rubric(3)

    def __attrs_post_init__(self) -> None:
        if self.serving_features is not None and (
            self.holdout is None or self.training_features is None
        ):
            raise InvalidInput(
                "'serving_features' needs 'holdout' and 'training_features' (the skew check "
                "compares the two feature paths on the same held-out rows)"
            )
        if self.server is not None:
            missing = [
                n
                for n in ("deploy", "holdout", "training_features", "predict")
                if getattr(self, n) is None
            ]
            if self.send == "features" and self.serving_features is None:
                missing.append("serving_features")
            if missing:
                raise InvalidInput(
                    f"'server' needs {', '.join(repr(m) for m in missing)} to serve the "
                    "held-out rows and compare with offline predictions"
                )
            ensure_local(self.server, "server", allow_remote=self.allow_remote)
        elif self.send == "features" and self.serving_features is None:
            raise InvalidInput("send='features' needs 'serving_features'")

    # ------------------------------------------------------------------------- run

    def run(self, context: Context | None = None) -> Result:
        """Run the pipeline and the serving comparisons; a broken system fails, never raises."""
        ctx = context if context is not None else Context()
        with Deadline(self.check_timeout_s, self.name) as deadline:
            return deadline.call(self._run, ctx, deadline, doing="running the pipeline")

    def _run(self, ctx: Context, deadline: Deadline) -> Result:
        start = time.perf_counter()
        b = ResultBuilder.of(self)

        def progress(line: str) -> None:
            deadline.check(line.removeprefix("pipeline: "))
            ctx.report(line)

        run = self.pipeline.run(progress=progress)
        _judge_stages(b, run.reports)
        if self.holdout is not None:
            if not run.completed:
                failed = next(r.name for r in run.reports if r.status == "failed")
                b.note(
                    "end_to_end",
                    Status.SKIP,
                    f"the serving half did not run because stage {failed!r} raised",
                )
            else:
                progress("pipeline: serving the held-out rows")
                self._end_to_end(b, run.outputs, deadline)
        b.metric("duration_s", time.perf_counter() - start)
        for name, sentence in _LEADS.items():
            b.lead(name, sentence)
        bad = [f for f in b.findings if f.status >= Status.FAIL]
        served = " and the serving path agrees with training" if self.holdout else ""
        return b.result(
            summary=f"{bad[0].message} (and {plural(len(bad) - 1, 'more problem')})"
            if bad[1:]
            else None,
            pass_summary=f"All {len(run.reports)} stages ran and met their contracts{served}.",
        )

    # ------------------------------------------------------------------ end to end

    def _end_to_end(self, b: ResultBuilder, outputs: Outputs, deadline: Deadline) -> None:
        assert self.holdout is not None
        assert self.training_features is not None
        try:
            table = self.holdout(outputs)
            total = count_rows(table)
            if total is None:
                raise InvalidInput(f"'holdout' must return rows (got {describe(table)})")
            n = min(total, self.n_rows)
            if n == 0:
                raise InvalidInput("'holdout' returned no rows")
            sample = take_rows(table, n)
            records = row_records(sample, n)
            t = time.perf_counter()
            features = self.training_features(outputs, sample)
            train_x = feature_matrix(features, "training_features", n)
            duration_s = time.perf_counter() - t
            names = self._names(outputs, train_x.shape[1])
        except Exception as exc:
            note_raised(b, "end_to_end", "preparing the held-out rows", exc)
            return
        s = Serving(b, outputs, records, train_x)
        s.step("training_features", duration_s, n, n)
        b.detail("serving_steps", s.steps)
        b.metric("n_holdout_rows", n)
        if self.serving_features is not None:
            self._serving_path(s)
            if s.serve_x is not None:
                self._skew(s, names)
        if self.server is not None:
            serve(self, s, deadline)

    def _names(self, outputs: Outputs, width: int) -> list[str]:
        names: Any = self.feature_names
        if callable(names):
            names = names(outputs)
        if names is None:
            return [f"feature {j}" for j in range(width)]
        names = [str(n) for n in names]
        if len(names) != width:
            raise InvalidInput(
                f"'feature_names' has {len(names)} names but the features have {width} columns"
            )
        return list(names)

    def _serving_path(self, s: Serving) -> None:
        assert self.serving_features is not None
        width = s.train_x.shape[1]
        out = np.full_like(s.train_x, np.nan)
        failures: list[str] = []
        t = time.perf_counter()
        for i, record in enumerate(s.records):
            try:
                row = np.asarray(self.serving_features(s.outputs, record), dtype=np.float64)
                if row.size != width:
                    raise InvalidInput(
                        f"returned {row.size} features; the training path has {width}"
                    )
                out[i] = row.reshape(-1)
            except Exception as exc:
                failures.append(f"row {i}: {type(exc).__name__}: {exc}")
        n = len(s.records)
        s.step("serving_features", time.perf_counter() - t, n, n - len(failures))
        s.serve_x = out if len(failures) < n else None
        if failures:
            s.b.note(
                "serving_features",
                Status.FAIL,
                f"the serving feature path failed on {len(failures)} of {n} rows; "
                f"first: {failures[0]}",
                observed=len(failures),
                limit="== 0",
            )

    def _skew(self, s: Serving, names: list[str]) -> None:
        assert s.serve_x is not None
        serve_x, train_x = s.serve_x, s.train_x
        n = train_x.shape[0]
        valid = ~np.isnan(serve_x).all(axis=1)  # rows where the serving path failed
        with np.errstate(invalid="ignore"):
            diff = np.abs(serve_x - train_x)
            differs = ~(diff <= self.feature_atol + self.feature_rtol * np.abs(train_x))
        differs &= valid[:, None]
        counts = differs.sum(axis=0)
        max_diff = np.where(
            differs.any(axis=0), np.nanmax(np.where(differs, diff, 0.0), axis=0), 0.0
        )
        fractions = counts / max(1, int(valid.sum()))
        rows: list[dict[str, Any]] = []
        for j, feature in enumerate(names):
            examples = [
                {
                    "row": int(i),
                    "training": float(train_x[i, j]),
                    "serving": float(serve_x[i, j]),
                    "raw": jsonable_record(s.records[i]),
                }
                for i in np.flatnonzero(differs[:, j])[: self.n_examples]
            ]
            rows.append(
                {
                    "feature": feature,
                    "rows_differing": int(counts[j]),
                    "fraction_differing": float(fractions[j]),
                    "max_abs_diff": float(max_diff[j]),
                    "examples": examples,
                }
            )
        rows.sort(key=lambda r: -r["rows_differing"])
        s.b.detail("feature_skew", rows)
        worst = float(fractions.max()) if fractions.size else 0.0
        largest = float(max_diff.max()) if max_diff.size else 0.0
        skewed = [r for r in rows if r["rows_differing"]]
        s.b.metric("skew.n_features", len(skewed))
        s.b.metric("skew.fraction", worst)
        s.b.metric("skew.max_abs_diff", largest)
        limit = held(self.max_skewed_fraction)
        over = [r for r in skewed if not limit.holds(r["fraction_differing"])]
        if over:
            top = over[0]
            shown = "; ".join(
                f"row {e['row']}: training {fmt(e['training'], 6)}, serving {fmt(e['serving'], 6)}"
                for e in top["examples"][:3]
            )
            others = [r["feature"] for r in over[1:]]
            more = f"; also beyond the limit: {listing(others)}" if others else ""
            message = (
                f"feature {top['feature']!r} differs between the training and serving paths on "
                f"{top['rows_differing']} of {n} rows (fraction {fmt(top['fraction_differing'])} "
                f"> max_skewed_fraction {fmt(limit.value)}, max abs diff "
                f"{fmt(top['max_abs_diff'])}), e.g. {shown}{more}"
            )
        elif skewed:
            message = (
                f"{plural(len(skewed), 'feature')} of {len(names)} differ between the training "
                f"and serving paths on at most {fmt(worst)} of {n} held-out rows, within "
                f"max_skewed_fraction {fmt(limit.value)} (max abs diff {fmt(largest, 3)})"
            )
        else:
            message = (
                f"the serving feature path matches the training path on all {len(names)} "
                f"features of {n} held-out rows (max abs diff {fmt(largest, 3)})"
            )
        s.b.judge("training_serving_skew", limit, worst, message=message)


def _judge_stages(b: ResultBuilder, reports: Sequence[StageReport]) -> None:
    """Findings ``stage.errors`` and ``stage.contracts``; per-stage rows in the details."""
    b.detail("stages", [r.to_dict() for r in reports])
    raised = [r for r in reports if r.status == "failed"]
    broken = [r for r in reports if r.status == "violated"]
    warned = [r for r in reports if r.warnings and r.status == "ok"]
    ran = [r for r in reports if r.status in ("ok", "violated")]
    total_s = sum(r.duration_s for r in reports)
    b.update_metrics(
        {
            "n_stages": len(reports),
            "n_stages_raised": len(raised),
            "n_stages_violated": len(broken),
            "stages.duration_s": total_s,
        }
    )
    if raised:
        first = raised[0]
        assert first.error is not None
        skipped = sum(r.status == "skipped" for r in reports)
        later = f"; {plural(skipped, 'later stage')} did not run" if skipped else ""
        message = f"stage {first.name!r} raised {first.error.type}: {first.error.message}{later}"
        b.note("stage.errors", Status.FAIL, message, observed=len(raised), limit=RAISES)
    else:
        message = f"all {len(reports)} stages ran without raising in {fmt(total_s, 3)} s"
        b.note("stage.errors", Status.PASS, message, observed=0, limit=RAISES)
    if not ran:
        return
    shown = broken or warned
    if not shown:
        message = f"all {len(ran)} stages that ran met their contracts"
        b.note("stage.contracts", Status.PASS, message, observed=0, limit="no contract violations")
        return
    problems = "; ".join(
        f"stage {r.name!r}: {'; '.join(r.violations or r.warnings)}" for r in shown[:3]
    )
    more = f" (and {plural(len(shown) - 3, 'more stage')})" if len(shown) > 3 else ""
    b.note(
        "stage.contracts",
        Status.FAIL if broken else Status.WARN,
        f"{plural(len(shown), 'stage')} broke {'its' if len(shown) == 1 else 'their'} "
        f"contract: {problems}{more}",
        observed=len(shown),
        limit="no contract violations",
    )
