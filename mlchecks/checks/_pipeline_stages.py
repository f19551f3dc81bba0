"""The pipeline half of rubric test 3: `Stage`, `Pipeline`, `PipelineRun`, `StageReport`.

Also the table helpers the check uses on held-out rows: `count_rows` and friends read
arrays, data frames (duck-typed), column mappings, records and ``(X, y)`` tuples.
Public names are re-exported by `mlchecks.checks.pipeline`.

>>> run = Pipeline([Stage("rows", lambda: [3, 1, 2]), Stage("sorted", sorted)]).run()
>>> run.outputs["sorted"], [r.duration_s >= 0 for r in run.reports]
([1, 2, 3], [True, True])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from mlchecks import _fields
from mlchecks._fields import MaxLimit, held_or_none, limit, renamed
from mlchecks._text import fmt
from mlchecks._validate import callable_field, check_tuple_of, describe
from mlchecks.checks._traffic import as_output_array
from mlchecks.exceptions import InvalidInput
from mlchecks.result import ErrorInfo, Status

__all__ = [
    "Pipeline",
    "PipelineRun",
    "Stage",
    "StageReport",
    "count_rows",
    "feature_matrix",
    "jsonable_record",
    "row_records",
    "take_rows",
]


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
    _fields.check(value, attribute.name, _fields.TEXT)
    if value != value.strip():
        raise InvalidInput(
            _fields.reject(attribute.name, "a name without surrounding blanks", value, typed=True)
        )


def _names_or_none(value: Any, field: attrs.Attribute[Any]) -> tuple[str, ...] | None:
    return None if value is None else check_tuple_of(value, field.name, str, what="names")


def _names_field() -> Any:
    """An optional keyword-only field of names (a converter that names its field)."""
    converter = attrs.Converter(_names_or_none, takes_field=True)
    return attrs.field(default=None, converter=converter, kw_only=True)


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
    except Exception:  # numpy raises TypeError, ValueError, UnicodeEncodeError, ...
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
        max_dropped: the largest fraction of input rows the stage may drop (0: none), a
            number or `AtMost` (``severity="warn"`` makes it a warning); None: not judged.
        max_added: the largest number of rows the stage may add, as a fraction of its
            input rows (0: none; catches a join that fans out); None: not judged.

    Raises:
        InvalidInput: a field has the wrong type or value.

    >>> Stage("clean", lambda t: t, max_dropped=0.01).check_output([1, 2], rows_in=3)
    ('dropped 1 of 3 input rows (0.3333), more than max_dropped 0.01',)
    """

    name: str = attrs.field(validator=_name)
    fn: Callable[..., Any] = attrs.field(validator=callable_field)
    inputs: tuple[str, ...] | None = _names_field()
    columns: tuple[str, ...] | None = _names_field()
    shape: tuple[int | None, ...] | None = attrs.field(
        default=None, converter=_shape_spec, kw_only=True
    )
    dtype: Any = attrs.field(default=None, validator=_dtype_spec, kw_only=True)
    non_empty: bool = _fields.flag(True)
    finite: bool = _fields.flag(False)
    max_dropped: MaxLimit | None = limit("max", None, high=1.0, optional=True)
    max_added: MaxLimit | None = limit("max", None, optional=True)

    def check_output(self, output: Any, rows_in: int | None = None) -> tuple[str, ...]:
        """The contract violations of ``output`` (empty when it holds), one sentence each.

        Args:
            output: what the stage returned.
            rows_in: the rows of the stage's input, when countable.
        """
        return tuple(message for _, message in self.judge_output(output, rows_in))

    def judge_output(
        self, output: Any, rows_in: int | None = None
    ) -> tuple[tuple[Status, str], ...]:
        """Like `check_output`, each violation with its severity (FAIL, or a limit's WARN)."""
        if output is None:
            return ((Status.FAIL, "the stage returned None"),) if self._has_contract() else ()
        problems = [(Status.FAIL, p) for p in self._clause_problems(output)]
        return (*problems, *self._row_problems(rows_in, count_rows(output)))

    def _clause_problems(self, output: Any) -> list[str]:
        problems: list[str] = []
        rows_out = count_rows(output)
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
        return problems

    def _has_contract(self) -> bool:
        return (
            self.non_empty
            or self.columns is not None
            or self.shape is not None
            or self.dtype is not None
            or self.finite
            or held_or_none(self.max_dropped) is not None
            or held_or_none(self.max_added) is not None
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

    def _row_problems(self, rows_in: int | None, rows_out: int | None) -> list[tuple[Status, str]]:
        limits = [c for c in (held_or_none(self.max_dropped), held_or_none(self.max_added)) if c]
        if not limits:
            return []
        if rows_in is None or rows_out is None:
            severity = Status.worst(c.severity for c in limits)
            return [
                (
                    severity,
                    f"cannot compare rows in and out (rows in: {rows_in}, rows out: "
                    f"{rows_out}); max_dropped and max_added need tabular input and output",
                )
            ]
        problems = []
        dropped, added = held_or_none(self.max_dropped), held_or_none(self.max_added)
        if rows_in and dropped is not None and rows_out < rows_in:
            share = (rows_in - rows_out) / rows_in
            if not dropped.holds(share):
                problems.append(
                    (
                        dropped.severity,
                        f"dropped {rows_in - rows_out} of {rows_in} input rows ({fmt(share)}), "
                        f"more than max_dropped {fmt(dropped.value)}",
                    )
                )
        if added is not None and rows_out > rows_in:
            share = (rows_out - rows_in) / rows_in if rows_in else math.inf
            if not added.holds(share):
                problems.append(
                    (
                        added.severity,
                        f"added {rows_out - rows_in} rows to {rows_in} input rows ({fmt(share)}), "
                        f"more than max_added {fmt(added.value)}",
                    )
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


@renamed({"seconds": "duration_s"})
@attrs.frozen
class StageReport:
    """What one stage did: time, rows, contract violations, and its error if it raised.

    ``status`` is ``"ok"`` (ran and met its contract; ``warnings`` may list violations of
    WARN-severity limits), ``"violated"`` (ran but broke its contract), ``"failed"``
    (raised) or ``"skipped"`` (an earlier stage raised).
    """

    name: str
    status: str
    duration_s: float = 0.0
    rows_in: int | None = None
    rows_out: int | None = None
    violations: tuple[str, ...] = ()
    error: ErrorInfo | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the stage ran and met its contract (warnings allowed)."""
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
            "duration_s": self.duration_s,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": self.dropped,
            "violations": list(self.violations),
            "warnings": list(self.warnings),
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
    stages: tuple[Stage, ...] = check_tuple_of(value, "stages", Stage, what="Stage objects")
    if not stages:
        raise InvalidInput("'stages' must not be empty")
    seen: set[str] = set()
    for i, stage in enumerate(stages):
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
            duration_s = time.perf_counter() - start
            outputs[stage.name] = output
            judged = stage.judge_output(output, rows_in)
            violations = tuple(m for status, m in judged if status is Status.FAIL)
            reports.append(
                StageReport(
                    stage.name,
                    "violated" if violations else "ok",
                    duration_s,
                    rows_in,
                    count_rows(output),
                    violations,
                    warnings=tuple(m for status, m in judged if status is not Status.FAIL),
                )
            )
            previous = stage.name
        return PipelineRun(outputs, tuple(reports))


# ------------------------------------------------------------------------ held-out rows


def take_rows(rows: Any, n: int) -> Any:
    """The first ``n`` rows of a table in its own type."""
    if _is_frame(rows):
        return rows.iloc[:n]
    if isinstance(rows, Mapping):
        return {k: v[:n] for k, v in rows.items()}
    return rows[:n]


def row_records(rows: Any, n: int) -> list[Any]:
    """The rows one by one: dicts of Python scalars for tables, elements otherwise."""
    if _is_frame(rows):
        return [dict(r) for r in rows.to_dict("records")]
    if isinstance(rows, Mapping):
        columns = {k: np.asarray(v).tolist() for k, v in rows.items()}
        return [{k: columns[k][i] for k in columns} for i in range(n)]
    if isinstance(rows, np.ndarray) and rows.dtype.names:
        return [{name: row[name].item() for name in rows.dtype.names} for row in rows]
    return [rows[i] for i in range(n)]


def feature_matrix(value: Any, name: str, n: int) -> np.ndarray:
    """``value`` (what the callable ``name`` returned) as an ``n``-row float64 matrix."""
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


def jsonable_record(record: Any) -> Any:
    """A raw row as JSON-safe data for ``details`` (long values cut short)."""
    if isinstance(record, Mapping):
        return {
            str(k): (v if isinstance(v, str | int | float | bool) or v is None else repr(v))
            for k, v in record.items()
        }
    array = as_output_array(record)
    if array is not None and array.size <= 64:
        return array.tolist()
    return repr(record)[:200]
