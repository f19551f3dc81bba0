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

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks.check import Context
from mlchecks.checks._load import (
    TimedCaller,
    as_output_array,
    ensure_local,
    error_class,
    latency_quantiles,
    server_versions,
)
from mlchecks.conditions import AtMost
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Endpoint, Response
from mlchecks.result import ErrorInfo, Finding, Result, Status
from mlchecks._validate import (
    callable_field,
    describe,
    int_at_least,
    number_in,
    one_of,
    optional,
)

__all__ = ["Pipeline", "PipelineCheck", "PipelineRun", "Stage", "StageReport"]

Outputs = Mapping[str, Any]


# ------------------------------------------------------------------------ data inspection


def _is_frame(value: Any) -> bool:
    """A pandas-like data frame (duck-typed: ``columns``, ``shape`` and ``iloc``)."""
    return hasattr(value, "columns") and hasattr(value, "iloc") and hasattr(value, "shape")


def _column_table(value: Any) -> bool:
    """A mapping of equally long columns."""
    if not isinstance(value, Mapping) or not value:
        return False
    try:
        lengths = {len(v) for v in value.values()}
    except TypeError:
        return False
    return len(lengths) == 1 and all(not isinstance(v, str) for v in value.values())


def count_rows(value: Any) -> int | None:
    """How many rows ``value`` holds, or None when it is not tabular.

    Arrays count their first axis, data frames their rows, mappings of equally long
    columns their column length, lists of records their length, tuples of equally long
    arrays (``(X, y)``) that length.

    >>> count_rows({"a": [1, 2, 3], "b": [4, 5, 6]}), count_rows((np.zeros((4, 2)), [0] * 4))
    (3, 4)
    >>> count_rows("text") is None, count_rows(object()) is None
    (True, True)
    """
    if value is None or isinstance(value, str | bytes):
        return None
    if _is_frame(value):
        return int(value.shape[0])
    if isinstance(value, np.ndarray):
        return int(value.shape[0]) if value.ndim else None
    if isinstance(value, Mapping):
        if not value:
            return 0
        return len(next(iter(value.values()))) if _column_table(value) else None
    if isinstance(value, tuple) and value and not hasattr(value, "_fields"):
        counts = {count_rows(v) for v in value}
        return counts.pop() if len(counts) == 1 else None
    if isinstance(value, list):
        return len(value)
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape:
        return int(shape[0])
    return None


def _columns(value: Any) -> list[str] | None:
    if _is_frame(value):
        return [str(c) for c in value.columns]
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    if isinstance(value, np.ndarray) and value.dtype.names:
        return list(value.dtype.names)
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return [str(k) for k in value[0]]
    return None


def _named_arrays(value: Any) -> list[tuple[str, np.ndarray]] | None:
    """The data of ``value`` as (name, array) pairs for dtype and finiteness checks."""
    if _is_frame(value):
        return [(str(c), np.asarray(value[c])) for c in value.columns]
    if isinstance(value, Mapping):
        try:
            return [(str(k), np.asarray(v)) for k, v in value.items()]
        except (TypeError, ValueError):
            return None
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            return [(n, value[n]) for n in value.dtype.names]
        return [("output", value)]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        pairs: list[tuple[str, np.ndarray]] = []
        for i, item in enumerate(value):
            inner = _named_arrays(item)
            if inner is None:
                return None
            pairs.extend((f"[{i}]" if n == "output" else f"[{i}].{n}", a) for n, a in inner)
        return pairs
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            return [("output", np.asarray(value))]
        except (TypeError, ValueError):
            return None
    return None


def _shape(value: Any) -> tuple[int, ...] | None:
    if _is_frame(value):
        return tuple(int(s) for s in value.shape)
    if _column_table(value):
        return (count_rows(value) or 0, len(value))
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return tuple(int(s) for s in shape)
    return None


def _dtype_ok(actual: np.dtype[Any], expected: Any) -> bool:
    try:
        return bool(np.issubdtype(actual, expected))
    except TypeError:
        return False


# ----------------------------------------------------------------------------- stages


def _name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidInput(f"'{attribute.name}' must be a non-empty string (got {value!r})")


def _names_or_none(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(f"expected a sequence of names (got {describe(value)})")
    names = tuple(value)
    for item in names:
        if not isinstance(item, str):
            raise InvalidInput(f"names must be strings (got {item!r} in {names!r})")
    return names


def _shape_spec(value: Any) -> tuple[int | None, ...] | None:
    if value is None:
        return None
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidInput(f"'shape' must be a tuple of ints or None (got {describe(value)})")
    spec = tuple(value)
    for item in spec:
        if item is not None and (
            isinstance(item, bool) or not isinstance(item, int | np.integer) or item < 0
        ):
            raise InvalidInput(f"'shape' entries must be ints >= 0 or None (got {spec!r})")
    return tuple(None if s is None else int(s) for s in spec)


def _dtype_spec(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    try:
        np.issubdtype(np.float64, value)
    except TypeError:
        raise InvalidInput(
            f"'dtype' must be a numpy dtype or an abstract type such as np.floating (got {value!r})"
        ) from None


@attrs.frozen
class Stage:
    """One named step of a pipeline, with an optional contract on its output.

    The first stage of a `Pipeline` is called with no arguments (it reads the data
    source). A later stage is called with the previous stage's output, or, when
    ``inputs`` names earlier stages, with their outputs as positional arguments in that
    order.

    Args:
        name: a unique name within the pipeline (``"features"``); used in reports.
        fn: the stage's function.
        inputs: names of earlier stages whose outputs ``fn`` takes (default: the previous).
        columns: columns the output must have (data frames, column mappings, records).
        shape: the output's shape, with None for any size (``(None, 18)``).
        dtype: every column's (or the array's) dtype must be a subtype of this
            (``np.float64``, or abstract: ``np.floating``, ``np.number``).
        non_empty: the output must have at least one row (on by default).
        finite: numeric values must be finite (no NaN or infinity).
        max_dropped: the largest fraction of input rows the stage may drop (0: none).
        max_added: the largest number of rows the stage may add, as a fraction of its
            input rows (0: none; catches a join that fans out).

    Raises:
        InvalidInput: a field has the wrong type or value.

    >>> Stage("clean", lambda t: t, max_dropped=0.01).check_output([1, 2], rows_in=3)
    ('dropped 1 of 3 input rows (0.3333), more than max_dropped 0.01',)
    """

    name: str = attrs.field(validator=_name)
    fn: Callable[..., Any] = attrs.field(validator=callable_field)
    inputs: tuple[str, ...] | None = attrs.field(default=None, converter=_names_or_none)
    columns: tuple[str, ...] | None = attrs.field(default=None, converter=_names_or_none)
    shape: tuple[int | None, ...] | None = attrs.field(default=None, converter=_shape_spec)
    dtype: Any = attrs.field(default=None, validator=_dtype_spec)
    non_empty: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    finite: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    max_dropped: float | None = attrs.field(default=None, validator=optional(number_in(0.0)))
    max_added: float | None = attrs.field(default=None, validator=optional(number_in(0.0)))

    def check_output(self, output: Any, rows_in: int | None = None) -> tuple[str, ...]:
        """The contract violations of ``output`` (empty when it holds), one sentence each.

        Args:
            output: what the stage returned.
            rows_in: the rows of the stage's input, when countable.
        """
        problems: list[str] = []
        rows_out = count_rows(output)
        if output is None:
            return ("the stage returned None",) if self._has_contract() else ()
        if self.non_empty:
            size = getattr(output, "size", None)
            if rows_out == 0 or (isinstance(size, int) and size == 0):
                problems.append("the output is empty (0 rows)")
        if self.columns is not None:
            have = _columns(output)
            if have is None:
                problems.append(f"the output has no named columns (got {describe(output)})")
            else:
                missing = [c for c in self.columns if c not in have]
                if missing:
                    problems.append(f"missing columns {missing} (has {have})")
        if self.shape is not None:
            problems.extend(self._shape_problems(output))
        arrays = _named_arrays(output) if (self.dtype is not None or self.finite) else None
        if self.dtype is not None:
            if arrays is None:
                problems.append(f"cannot read a dtype from {describe(output)}")
            else:
                wrong = [
                    f"{n} ({a.dtype})" for n, a in arrays if not _dtype_ok(a.dtype, self.dtype)
                ]
                if wrong:
                    problems.append(
                        f"dtype is not {_dtype_text(self.dtype)}: {', '.join(wrong[:6])}"
                    )
        if self.finite:
            if arrays is None:
                problems.append(f"cannot check finiteness of {describe(output)}")
            else:
                problems.extend(_finiteness(arrays))
        problems.extend(self._row_problems(rows_in, rows_out))
        return tuple(problems)

    def _has_contract(self) -> bool:
        return (
            self.non_empty
            or self.columns is not None
            or self.shape is not None
            or self.dtype is not None
            or self.finite
            or self.max_dropped is not None
            or self.max_added is not None
        )

    def _shape_problems(self, output: Any) -> list[str]:
        assert self.shape is not None
        shape = _shape(output)
        if shape is None:
            return [f"the output has no shape (got {describe(output)})"]
        want = "(" + ", ".join("*" if s is None else str(s) for s in self.shape) + ")"
        if len(shape) != len(self.shape) or any(
            w is not None and w != s for w, s in zip(self.shape, shape, strict=True)
        ):
            return [f"shape {shape} does not match {want}"]
        return []

    def _row_problems(self, rows_in: int | None, rows_out: int | None) -> list[str]:
        if self.max_dropped is None and self.max_added is None:
            return []
        if rows_in is None or rows_out is None:
            return [
                f"cannot compare rows in and out (rows in: {rows_in}, rows out: {rows_out}); "
                "max_dropped and max_added need tabular input and output"
            ]
        problems = []
        if rows_in and self.max_dropped is not None and rows_out < rows_in:
            share = (rows_in - rows_out) / rows_in
            if share > self.max_dropped:
                problems.append(
                    f"dropped {rows_in - rows_out} of {rows_in} input rows ({share:.4g}), "
                    f"more than max_dropped {self.max_dropped:g}"
                )
        if self.max_added is not None and rows_out > rows_in:
            share = (rows_out - rows_in) / rows_in if rows_in else math.inf
            if share > self.max_added:
                problems.append(
                    f"added {rows_out - rows_in} rows to {rows_in} input rows ({share:.4g}), "
                    f"more than max_added {self.max_added:g}"
                )
        return problems


def _dtype_text(dtype: Any) -> str:
    return getattr(dtype, "__name__", None) or str(np.dtype(dtype))


def _finiteness(arrays: Sequence[tuple[str, np.ndarray]]) -> list[str]:
    bad = []
    for name, array in arrays:
        if array.dtype.kind not in "fc":
            continue
        n_bad = int(np.count_nonzero(~np.isfinite(array)))
        if n_bad:
            first = int(np.flatnonzero(~np.isfinite(array.reshape(-1)))[0])
            bad.append(f"{name} has {n_bad} NaN or infinite values (first at flat index {first})")
    return bad


@attrs.frozen
class StageReport:
    """What one stage did: time, rows, contract violations, and its error if it raised.

    ``status`` is ``"ok"``, ``"violated"`` (ran but broke its contract), ``"failed"``
    (raised) or ``"skipped"`` (an earlier stage raised).
    """

    name: str
    status: str
    seconds: float = 0.0
    rows_in: int | None = None
    rows_out: int | None = None
    violations: tuple[str, ...] = ()
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        """True when the stage ran and met its contract."""
        return self.status == "ok"

    @property
    def dropped(self) -> int | None:
        """Input rows the stage dropped (None when rows are not countable)."""
        if self.rows_in is None or self.rows_out is None:
            return None
        return max(0, self.rows_in - self.rows_out)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe row for reports."""
        return {
            "stage": self.name,
            "status": self.status,
            "seconds": self.seconds,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": self.dropped,
            "violations": list(self.violations),
            "error": None if self.error is None else f"{self.error.type}: {self.error.message}",
        }


@attrs.frozen
class PipelineRun:
    """The outcome of `Pipeline.run`: every stage's output (by name) and report."""

    outputs: Mapping[str, Any]
    reports: tuple[StageReport, ...]

    @property
    def completed(self) -> bool:
        """True when every stage ran (contract violations allowed)."""
        return all(r.status in ("ok", "violated") for r in self.reports)

    @property
    def ok(self) -> bool:
        """True when every stage ran and met its contract."""
        return all(r.ok for r in self.reports)


def _stages(value: Any) -> tuple[Stage, ...]:
    if isinstance(value, Stage) or not isinstance(value, Iterable):
        raise InvalidInput(f"'stages' must be a sequence of Stage objects (got {describe(value)})")
    stages = tuple(value)
    if not stages:
        raise InvalidInput("'stages' must not be empty")
    seen: set[str] = set()
    for i, stage in enumerate(stages):
        if not isinstance(stage, Stage):
            raise InvalidInput(f"'stages' must contain Stage objects (got {describe(stage)})")
        if stage.name in seen:
            raise InvalidInput(f"stage names must be unique (got {stage.name!r} twice)")
        if i == 0 and stage.inputs:
            raise InvalidInput(
                f"the first stage {stage.name!r} reads the data source and takes no inputs "
                f"(got inputs={list(stage.inputs)})"
            )
        for name in stage.inputs or ():
            if name not in seen:
                raise InvalidInput(
                    f"stage {stage.name!r} takes input {name!r}, which is not an earlier stage "
                    f"(earlier: {sorted(seen)})"
                )
        seen.add(stage.name)
    return stages


@attrs.frozen
class Pipeline:
    """Named stages run in order, from the original data source to the trained model.

    Args:
        stages: the `Stage` objects; names unique, ``inputs`` naming earlier stages only.

    Raises:
        InvalidInput: the stages are empty, not `Stage` objects, have duplicate names, or
            name an input that is not an earlier stage.

    >>> Pipeline([Stage("a", lambda: [1]), Stage("b", len, inputs=("a",))]).names
    ('a', 'b')
    """

    stages: tuple[Stage, ...] = attrs.field(converter=_stages)

    @property
    def names(self) -> tuple[str, ...]:
        """The stage names in order."""
        return tuple(s.name for s in self.stages)

    def run(self, progress: Callable[[str], None] | None = None) -> PipelineRun:
        """Run every stage in order; a stage that raises stops the run (later ones skip).

        Returns:
            A `PipelineRun` with the outputs of the stages that ran and a report per stage.
        """
        outputs: dict[str, Any] = {}
        reports: list[StageReport] = []
        previous: str | None = None
        failed = False
        for stage in self.stages:
            if failed:
                reports.append(StageReport(stage.name, "skipped"))
                continue
            if progress is not None:
                progress(f"pipeline: running stage {stage.name!r}")
            if stage.inputs is not None:
                args = [outputs[name] for name in stage.inputs]
            else:
                args = [] if previous is None else [outputs[previous]]
            rows_in = count_rows(args[0]) if args else None
            start = time.perf_counter()
            try:
                output = stage.fn(*args)
            except Exception as exc:
                reports.append(
                    StageReport(
                        stage.name,
                        "failed",
                        time.perf_counter() - start,
                        rows_in,
                        error=ErrorInfo.from_exception(exc),
                    )
                )
                failed = True
                continue
            seconds = time.perf_counter() - start
            outputs[stage.name] = output
            violations = stage.check_output(output, rows_in)
            reports.append(
                StageReport(
                    stage.name,
                    "violated" if violations else "ok",
                    seconds,
                    rows_in,
                    count_rows(output),
                    violations,
                )
            )
            previous = stage.name
        return PipelineRun(outputs, tuple(reports))


# ------------------------------------------------------------------------------ rows


def _take(rows: Any, n: int) -> Any:
    """The first ``n`` rows of a table in its own type."""
    if _is_frame(rows):
        return rows.iloc[:n]
    if isinstance(rows, Mapping):
        return {k: v[:n] for k, v in rows.items()}
    return rows[:n]


def _records(rows: Any, n: int) -> list[Any]:
    """The rows one by one: dicts of Python scalars for tables, elements otherwise."""
    if _is_frame(rows):
        return [dict(r) for r in rows.to_dict("records")]
    if isinstance(rows, Mapping):
        columns = {k: np.asarray(v).tolist() for k, v in rows.items()}
        return [{k: columns[k][i] for k in columns} for i in range(n)]
    if isinstance(rows, np.ndarray) and rows.dtype.names:
        return [{name: row[name].item() for name in rows.dtype.names} for row in rows]
    return [rows[i] for i in range(n)]


def _matrix(value: Any, name: str, n: int) -> np.ndarray:
    array = np.asarray(value.to_numpy() if _is_frame(value) else value)
    if array.dtype.kind not in "biuf":
        raise InvalidInput(f"'{name}' must return numbers (got {describe(array)})")
    if array.ndim == 1 and n > 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != n:
        raise InvalidInput(
            f"'{name}' must return a 2-D array with {n} rows (got {describe(array)})"
        )
    return array.astype(np.float64, copy=False)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


# ------------------------------------------------------------------------------ check


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


@attrs.frozen
class PipelineCheck:
    """Run the pipeline end to end and compare the serving path with the training path.

    The check runs every `Stage` of ``pipeline`` (timing each, counting rows, judging its
    contract), then the serving half on up to ``n_rows`` held-out raw rows:

    1. ``training_features(outputs, rows)`` — the batch feature path on the held-out table;
    2. ``serving_features(outputs, row)`` for each raw row — the serving feature path;
       every feature is compared between the two paths;
    3. ``deploy(outputs)`` publishes the trained model and returns its version, which is
       loaded with ``server.load(version)`` within ``load_timeout_s`` (when ``load``);
    4. each row is sent to the server, one request per row (``send="raw"``: the raw row,
       for servers that compute features; ``"features"``: its serving-path features);
    5. the answers are compared with ``predict(outputs, training_features)``, the trained
       model's offline predictions.

    ``outputs`` is the mapping from stage name to that stage's output.

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
        load_timeout_s: the longest loading may take.
        request_timeout_s: the longest one request may take.
        unload: unload the version afterwards when the check loaded it (leaves the server
            as it was).
        allow_remote: allow a server that is not on 127.0.0.1.
        examples: how many example rows each finding and the details show.
        name: the check's name.
        rubric: the ML Test Score test number.

    Raises:
        InvalidInput: a field has the wrong type or value, or a needed callable is missing.

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

    pipeline: Pipeline = attrs.field(validator=attrs.validators.instance_of(Pipeline))
    holdout: Callable[[Outputs], Any] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    training_features: Callable[[Outputs, Any], Any] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    serving_features: Callable[[Outputs, Any], Any] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    server: Endpoint | None = attrs.field(default=None, validator=_server)
    deploy: Callable[[Outputs], str] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    predict: Callable[[Outputs, Any], Any] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    send: Literal["raw", "features"] = attrs.field(
        default="raw", validator=one_of("raw", "features")
    )
    feature_names: Sequence[str] | Callable[[Outputs], Sequence[str]] | None = attrs.field(
        default=None, validator=_feature_names
    )
    n_rows: int = attrs.field(default=200, validator=int_at_least(1))
    feature_atol: float = attrs.field(default=1e-6, validator=number_in(0.0))
    feature_rtol: float = attrs.field(default=1e-6, validator=number_in(0.0))
    prediction_atol: float = attrs.field(default=1e-6, validator=number_in(0.0))
    prediction_rtol: float = attrs.field(default=1e-5, validator=number_in(0.0))
    max_skewed_fraction: float = attrs.field(default=0.0, validator=number_in(0.0, 1.0))
    max_prediction_mismatch: float = attrs.field(default=0.0, validator=number_in(0.0, 1.0))
    max_serving_errors: int = attrs.field(default=0, validator=int_at_least(0))
    load: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    load_timeout_s: float = attrs.field(default=60.0, validator=number_in(0.0, low_open=True))
    request_timeout_s: float = attrs.field(default=10.0, validator=number_in(0.0, low_open=True))
    unload: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    allow_remote: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    examples: int = attrs.field(default=5, validator=int_at_least(1))
    name: str = attrs.field(default="pipeline", validator=_name)
    rubric: int | None = 3

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
        start = time.perf_counter()
        run = self.pipeline.run(progress=ctx.progress)
        findings = [self._stage_finding(r) for r in run.reports]
        metrics: dict[str, float] = {}
        for r in run.reports:
            metrics[f"stage.{r.name}.seconds"] = r.seconds
            if r.rows_out is not None:
                metrics[f"stage.{r.name}.rows_out"] = float(r.rows_out)
            if r.dropped is not None:
                metrics[f"stage.{r.name}.rows_dropped"] = float(r.dropped)
        details: dict[str, Any] = {"stages": [r.to_dict() for r in run.reports]}

        if self.holdout is not None:
            if not run.completed:
                failed = next(r.name for r in run.reports if r.status == "failed")
                findings.append(
                    Finding(
                        "end_to_end",
                        Status.SKIP,
                        message=f"the serving half did not run because stage {failed!r} raised",
                    )
                )
            else:
                ctx.report("pipeline: serving the held-out rows")
                findings += self._end_to_end(run.outputs, metrics, details)
        metrics["seconds"] = time.perf_counter() - start
        bad = [f for f in findings if f.status >= Status.FAIL]
        summary = None
        if not bad:
            n_stages = len(run.reports)
            served = " and the serving path agrees with training" if self.holdout else ""
            summary = f"all {n_stages} stages ran and met their contracts{served}"
        elif len(bad) > 1:
            summary = f"{bad[0].message} (and {len(bad) - 1} more problems)"
        return Result.from_findings(
            self.name,
            findings,
            summary=summary,
            metrics=metrics,
            details=details,
            rubric=self.rubric,
        )

    @staticmethod
    def _stage_finding(report: StageReport) -> Finding:
        name = f"stage.{report.name}"
        rows = "" if report.rows_out is None else f", {report.rows_out} rows out"
        if report.status == "ok":
            return Finding(
                name,
                Status.PASS,
                0.0,
                "no contract violations",
                f"stage {report.name!r} ran in {report.seconds:.3g} s{rows} and met its contract",
            )
        if report.status == "skipped":
            return Finding(name, Status.SKIP, None, "", f"stage {report.name!r} did not run")
        if report.status == "failed":
            assert report.error is not None
            return Finding(
                name,
                Status.FAIL,
                None,
                "runs without raising",
                f"stage {report.name!r} raised {report.error.type}: {report.error.message}",
            )
        return Finding(
            name,
            Status.FAIL,
            float(len(report.violations)),
            "no contract violations",
            f"stage {report.name!r} broke its contract: {'; '.join(report.violations)}",
        )

    # ------------------------------------------------------------------ end to end

    def _end_to_end(
        self, outputs: Outputs, metrics: dict[str, float], details: dict[str, Any]
    ) -> list[Finding]:
        assert self.holdout is not None
        assert self.training_features is not None
        findings: list[Finding] = []
        steps: list[dict[str, Any]] = []
        details["serving_steps"] = steps
        try:
            table = self.holdout(outputs)
            total = count_rows(table)
            if total is None:
                raise InvalidInput(f"'holdout' must return rows (got {describe(table)})")
            n = min(total, self.n_rows)
            if n == 0:
                raise InvalidInput("'holdout' returned no rows")
            sample = _take(table, n)
            records = _records(sample, n)
            t = time.perf_counter()
            train_x = _matrix(self.training_features(outputs, sample), "training_features", n)
            steps.append(_step("training_features", time.perf_counter() - t, n, n))
            names = self._names(outputs, train_x.shape[1])
        except Exception as exc:
            return [_raised("end_to_end", "preparing the held-out rows", exc)]
        metrics["holdout_rows"] = float(n)

        serve_x: np.ndarray | None = None
        if self.serving_features is not None:
            serve_x, finding = self._serving_path(outputs, records, train_x, steps)
            if finding is not None:
                findings.append(finding)
            if serve_x is not None:
                findings += self._skew(serve_x, train_x, names, records, metrics, details)
        if self.server is not None:
            findings += self._serve(outputs, records, serve_x, train_x, metrics, details, steps)
        return findings

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

    def _serving_path(
        self,
        outputs: Outputs,
        records: list[Any],
        train_x: np.ndarray,
        steps: list[dict[str, Any]],
    ) -> tuple[np.ndarray | None, Finding | None]:
        assert self.serving_features is not None
        width = train_x.shape[1]
        out = np.full_like(train_x, np.nan)
        failures: list[str] = []
        t = time.perf_counter()
        for i, record in enumerate(records):
            try:
                row = np.asarray(self.serving_features(outputs, record), dtype=np.float64)
                if row.size != width:
                    raise InvalidInput(
                        f"returned {row.size} features; the training path has {width}"
                    )
                out[i] = row.reshape(-1)
            except Exception as exc:
                failures.append(f"row {i}: {type(exc).__name__}: {exc}")
        steps.append(
            _step(
                "serving_features",
                time.perf_counter() - t,
                len(records),
                len(records) - len(failures),
            )
        )
        if failures:
            finding = Finding(
                "serving_features",
                Status.FAIL,
                float(len(failures)),
                "== 0",
                f"the serving feature path failed on {len(failures)} of {len(records)} rows; "
                f"first: {failures[0]}",
            )
            return (out if len(failures) < len(records) else None), finding
        return out, None

    def _skew(
        self,
        serve_x: np.ndarray,
        train_x: np.ndarray,
        names: list[str],
        records: list[Any],
        metrics: dict[str, float],
        details: dict[str, Any],
    ) -> list[Finding]:
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
        per_feature = []
        findings = []
        limit = AtMost(self.max_skewed_fraction)
        for j, feature in enumerate(names):
            fraction = float(counts[j] / max(1, valid.sum()))
            rows = np.flatnonzero(differs[:, j])[: self.examples]
            row_examples = [
                {
                    "row": int(i),
                    "training": float(train_x[i, j]),
                    "serving": float(serve_x[i, j]),
                    "raw": _jsonable_record(records[i]),
                }
                for i in rows
            ]
            per_feature.append(
                {
                    "feature": feature,
                    "rows_differing": int(counts[j]),
                    "fraction_differing": fraction,
                    "max_abs_diff": float(max_diff[j]),
                    "examples": row_examples,
                }
            )
            if counts[j] and not limit.holds(fraction):
                shown = "; ".join(
                    f"row {e['row']}: training {_short(e['training'])}, serving "
                    f"{_short(e['serving'])}"
                    for e in row_examples[:3]
                )
                findings.append(
                    Finding(
                        f"skew.{feature}",
                        Status.FAIL,
                        fraction,
                        limit.describe(),
                        f"feature {feature!r} differs between the training and serving paths "
                        f"on {int(counts[j])} of {n} rows (fraction {fraction:.4g} > "
                        f"max_skewed_fraction {self.max_skewed_fraction:g}, max abs diff "
                        f"{max_diff[j]:.4g}), e.g. {shown}",
                    )
                )
        details["feature_skew"] = sorted(per_feature, key=lambda r: -r["rows_differing"])
        skewed = sum(1 for r in per_feature if r["rows_differing"])
        metrics["skewed_features"] = float(skewed)
        metrics["max_feature_abs_diff"] = float(max_diff.max()) if max_diff.size else 0.0
        if not findings:
            findings.append(
                Finding(
                    "training_serving_skew",
                    Status.PASS,
                    float(skewed),
                    f"each feature differs on <= {self.max_skewed_fraction:g} of rows",
                    f"the serving feature path matches the training path on all "
                    f"{len(names)} features of {n} held-out rows (max abs diff "
                    f"{metrics['max_feature_abs_diff']:.3g})",
                )
            )
        return findings

    def _serve(
        self,
        outputs: Outputs,
        records: list[Any],
        serve_x: np.ndarray | None,
        train_x: np.ndarray,
        metrics: dict[str, float],
        details: dict[str, Any],
        steps: list[dict[str, Any]],
    ) -> list[Finding]:
        assert self.server is not None
        assert self.deploy is not None
        assert self.predict is not None
        server: Any = self.server
        findings: list[Finding] = []
        caller = TimedCaller()
        before = server_versions(server)
        t = time.perf_counter()
        try:
            deployed = self.deploy(outputs)
        except Exception as exc:
            return [_raised("serving.deploy", "deploy(outputs)", exc)]
        if not isinstance(deployed, str) or not deployed:
            return [
                Finding(
                    "serving.deploy",
                    Status.FAIL,
                    message=f"deploy(outputs) must return the version to serve (got "
                    f"{describe(deployed)})",
                )
            ]
        version: str = deployed
        try:
            steps.append(_step("deploy", time.perf_counter() - t, None, None))
            details["version"] = version
            if self.load:
                load = callable(getattr(server, "load", None))
                if not load:
                    return [
                        Finding(
                            "serving.load",
                            Status.FAIL,
                            message="the server has no load() method; pass load=False when "
                            "deploy() makes the version servable",
                        )
                    ]
                call = caller.call(lambda: server.load(version), self.load_timeout_s)
                steps.append(_step("load", call.elapsed_s, None, None))
                metrics["load_seconds"] = call.elapsed_s
                if call.timed_out or call.exception is not None:
                    why = (
                        f"did not finish within load_timeout_s={self.load_timeout_s:g} s"
                        if call.timed_out
                        else f"raised {type(call.exception).__name__}: {call.exception}"
                    )
                    return [
                        Finding(
                            "serving.load",
                            Status.FAIL,
                            call.elapsed_s,
                            f"<= {self.load_timeout_s:g} s",
                            f"loading version {version!r} into the server {why}",
                        )
                    ]
                findings.append(
                    Finding(
                        "serving.load",
                        Status.PASS,
                        call.elapsed_s,
                        f"<= {self.load_timeout_s:g} s",
                        f"version {version!r} loaded into the server in {call.elapsed_s:.3g} s",
                    )
                )
            findings += self._requests(
                caller,
                server,
                version,
                outputs,
                records,
                serve_x,
                train_x,
                metrics,
                details,
                steps,
            )
        finally:
            caller.close()
            self._restore(server, version, before, details)
        return findings

    def _requests(
        self,
        caller: TimedCaller,
        server: Any,
        version: str,
        outputs: Outputs,
        records: list[Any],
        serve_x: np.ndarray | None,
        train_x: np.ndarray,
        metrics: dict[str, float],
        details: dict[str, Any],
        steps: list[dict[str, Any]],
    ) -> list[Finding]:
        assert self.predict is not None
        n = len(records)
        served: list[Any] = [None] * n
        errors: dict[str, int] = {}
        first_error: dict[str, str] = {}
        wrong_version = 0
        latencies: list[float] = []
        t = time.perf_counter()
        for i, record in enumerate(records):
            payload = (
                record if self.send == "raw" else (serve_x[i] if serve_x is not None else None)
            )
            call = caller.call(
                functools.partial(server.infer, payload, version=version), self.request_timeout_s
            )
            if call.timed_out:
                response = Response(error="request timed out", error_kind="timeout")
            elif call.exception is not None:
                exc = call.exception
                response = Response(error=f"{type(exc).__name__}: {exc}", error_kind="connection")
            else:
                response = call.value
            if not isinstance(response, Response) or not response.ok:
                kind = error_class(response) if isinstance(response, Response) else "server"
                errors[kind] = errors.get(kind, 0) + 1
                first_error.setdefault(kind, f"row {i}: {getattr(response, 'error', response)}")
                continue
            latencies.append(response.latency_s or call.elapsed_s)
            if response.version is not None and response.version != version:
                wrong_version += 1
            served[i] = response.outputs
        n_errors = sum(errors.values())
        steps.append(_step("requests", time.perf_counter() - t, n, n - n_errors))
        metrics["serving_errors"] = float(n_errors)
        metrics.update({f"latency_{k}": v for k, v in latency_quantiles(latencies).items()})
        details["serving_errors"] = {
            k: {"count": v, "first": first_error[k]} for k, v in errors.items()
        }

        findings: list[Finding] = []
        if n_errors > self.max_serving_errors:
            by_class = ", ".join(f"{v} {k}" for k, v in sorted(errors.items()))
            first = next(iter(first_error.values()))
            findings.append(
                Finding(
                    "serving.errors",
                    Status.FAIL,
                    float(n_errors),
                    f"<= {self.max_serving_errors}",
                    f"{n_errors} of {n} requests to version {version!r} failed ({by_class}), "
                    f"more than max_serving_errors {self.max_serving_errors}; first: {first}",
                )
            )
        if wrong_version:
            findings.append(
                Finding(
                    "serving.version",
                    Status.FAIL,
                    float(wrong_version),
                    "== 0",
                    f"{wrong_version} of {n} responses came from another version than {version!r}",
                )
            )
        try:
            offline = np.asarray(self.predict(outputs, train_x))
            if offline.shape[:1] != (n,):
                raise InvalidInput(
                    f"'predict' must return one prediction per row ({n}); got {describe(offline)}"
                )
        except Exception as exc:
            findings.append(_raised("served_vs_offline", "predict(outputs, features)", exc))
            return findings
        findings.append(self._compare(served, offline, records, metrics, details, version))
        return findings

    def _compare(
        self,
        served: list[Any],
        offline: np.ndarray,
        records: list[Any],
        metrics: dict[str, float],
        details: dict[str, Any],
        version: str,
    ) -> Finding:
        rows = [i for i, s in enumerate(served) if s is not None]
        mismatched: list[int] = []
        class_flips = 0
        max_diff = 0.0
        examples: list[dict[str, Any]] = []
        for i in rows:
            got = as_output_array(served[i])
            want = offline[i]
            if got is None or got.shape != want.shape:
                mismatched.append(i)
                if len(examples) < self.examples:
                    examples.append({"row": i, "served": repr(served[i]), "offline": want.tolist()})
                continue
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            worst = float(np.max(diff)) if diff.size else 0.0
            max_diff = max(max_diff, worst if math.isfinite(worst) else math.inf)
            if not np.allclose(got, want, atol=self.prediction_atol, rtol=self.prediction_rtol):
                mismatched.append(i)
                if got.ndim == 1 and got.size > 1 and int(np.argmax(got)) != int(np.argmax(want)):
                    class_flips += 1
                if len(examples) < self.examples:
                    examples.append(
                        {
                            "row": i,
                            "served": got.tolist(),
                            "offline": want.tolist(),
                            "raw": _jsonable_record(records[i]),
                        }
                    )
        compared = len(rows)
        fraction = len(mismatched) / compared if compared else 0.0
        metrics["prediction_mismatch"] = fraction
        metrics["prediction_max_abs_diff"] = max_diff
        metrics["prediction_class_flips"] = float(class_flips)
        details["prediction_mismatches"] = examples
        limit = AtMost(self.max_prediction_mismatch)
        if not compared:
            return Finding(
                "served_vs_offline",
                Status.FAIL,
                None,
                limit.describe(),
                f"no request to version {version!r} succeeded, so no served prediction could be "
                "compared with the offline ones",
            )
        if limit.holds(fraction):
            return Finding(
                "served_vs_offline",
                Status.PASS,
                fraction,
                limit.describe(),
                f"served predictions of version {version!r} match the offline predictions on "
                f"{compared - len(mismatched)} of {compared} rows (max abs diff {max_diff:.3g})",
            )
        first = examples[0]["row"] if examples else mismatched[0]
        return Finding(
            "served_vs_offline",
            Status.FAIL,
            fraction,
            limit.describe(),
            f"served predictions of version {version!r} differ from the offline predictions "
            f"of the same model on {len(mismatched)} of {compared} rows (fraction "
            f"{fraction:.4g} > max_prediction_mismatch {self.max_prediction_mismatch:g}, "
            f"{class_flips} change class, max abs diff {max_diff:.4g}; first at row {first})",
        )

    def _restore(
        self, server: Any, version: str, before: tuple[str, ...] | None, details: dict[str, Any]
    ) -> None:
        if not (self.unload and self.load):
            return
        if before is None or version in before:
            return
        live = getattr(server, "live_version", None)
        try:
            if callable(live) and live() == version:
                return
            server.unload(version)
            details["unloaded"] = version
        except Exception as exc:
            details["unload_error"] = f"{type(exc).__name__}: {exc}"


def _step(name: str, seconds: float, rows_in: int | None, rows_out: int | None) -> dict[str, Any]:
    return {"step": name, "seconds": seconds, "rows_in": rows_in, "rows_out": rows_out}


def _raised(name: str, what: str, exc: BaseException) -> Finding:
    return Finding(
        name,
        Status.FAIL,
        None,
        "runs without raising",
        f"{what} raised {type(exc).__name__}: {exc}",
    )


def _jsonable_record(record: Any) -> Any:
    if isinstance(record, Mapping):
        return {
            str(k): (v if isinstance(v, str | int | float | bool) or v is None else repr(v))
            for k, v in record.items()
        }
    array = as_output_array(record)
    if array is not None and array.size <= 64:
        return array.tolist()
    return repr(record)[:200]
