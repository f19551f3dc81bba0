"""Fuzz the statistics kernels and the array-taking checks with bad input (issue 16).

Every public array-taking function of `mlchecks.stats`, and `QualityCheck`,
`ReproducibilityCheck` and `TrainingRun`, is called with inputs built over three axes, one
argument at a time (the other arguments valid, with as many rows):

- dtype: bool, int64, uint8, float64, float32, Python objects, strings, bytes, complex,
  datetime64, timedelta64;
- shape: 0-d, empty, (n,), (n, 1), (n, 2), (n, 3), (n, 0), (n, 2, 2), a ragged list;
- values: probabilities, 0/1 labels, class indices 0..6, negative integers, huge
  (1e300), one NaN, one infinity, all zeros, non-integer fractions.

Each call ends in one of: a **clear error** (`InvalidInput` whose message quotes an
argument's name), a **valid answer** (no NaN in it; for a check, a `Result`), an
**obscure crash** (any other exception, a warning under ``-W error``, an `InvalidInput`
naming no argument, or a NaN answer to valid input), a **hang** (over ``TIME_LIMIT_S``),
or a **silent pass** (an answer to input that is invalid by construction: not numbers
where numbers are needed, an (n, 0), ragged or 3-D array, NaN or infinity where values
must be finite, labels outside the classes, negative or all-zero counts; for a check, a
PASS, WARN or SKIP). tests/fuzz/test_fuzz_report.py runs `run` and asserts the table in
docs/robustness.md is its output; tests/fuzz/test_kernels.py draws the same inputs with
hypothesis. Run: ``python benchmarks/fuzz_kernels.py``.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlchecks import stats
from mlchecks.checks.quality import QualityCheck
from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Result, Status
from mlchecks.stats import intervals, paired, trend

SEED = 16
#: Inputs per target in `run` (the docs' table).
PER_TARGET = 100
#: Rows of every array (a loss curve needs 6 for the trend test at alpha 0.01).
N_ROWS = 8
#: A call running longer than this is a hang.
TIME_LIMIT_S = 5.0

DTYPES = (
    "bool",
    "int64",
    "uint8",
    "float64",
    "float32",
    "object",
    "str",
    "bytes",
    "complex",
    "datetime",
    "timedelta",
)
SHAPES = ("scalar", "empty", "vector", "column", "matrix", "wide", "no_columns", "cube", "ragged")
VALUES = (
    "probabilities",
    "labels",
    "classes",
    "negative",
    "huge",
    "nan",
    "inf",
    "zeros",
    "fractions",
)
OUTCOMES = ("clear error", "valid answer", "obscure crash", "hang", "silent pass")

#: Dtypes that are never numbers (strings may be class names where a target says so).
_NOT_NUMBERS = {"str", "bytes", "complex", "datetime", "timedelta"}
_SHAPE_OF = {
    "scalar": (),
    "empty": (0,),
    "vector": (N_ROWS,),
    "column": (N_ROWS, 1),
    "matrix": (N_ROWS, 2),
    "wide": (N_ROWS, 3),
    "no_columns": (N_ROWS, 0),
    "cube": (N_ROWS, 2, 2),
}


@dataclass(frozen=True)
class Bad:
    """One fuzzed argument: how it was built and the value itself."""

    dtype: str
    shape: str
    values: str
    value: Any = field(compare=False)

    @classmethod
    def of(cls, value: Any) -> Bad:
        """A `Bad` for any array (e.g. drawn by hypothesis), tagged from its dtype and shape."""
        array = np.asarray(value)
        kinds = {"b": "bool", "i": "int64", "u": "uint8", "O": "object", "U": "str"}
        kinds.update({"S": "bytes", "c": "complex", "M": "datetime", "m": "timedelta"})
        kinds["f"] = "float32" if array.dtype.itemsize == 4 else "float64"
        dtype = kinds.get(array.dtype.kind, "object")
        shape = {0: "scalar", 1: "vector"}.get(array.ndim, "cube")
        if array.ndim == 2:
            shape = {1: "column", 2: "matrix"}.get(array.shape[1], "wide")
        if array.ndim >= 1 and array.shape[0] == 0:
            shape = "empty"
        elif array.ndim >= 2 and 0 in array.shape[1:]:
            shape = "no_columns"
        return cls(dtype, shape, "drawn", value)

    @property
    def rows(self) -> int:
        """How many rows the other arguments get."""
        if isinstance(self.value, np.ndarray) and self.value.ndim >= 1:
            return len(self.value)
        return N_ROWS

    def numbers(self) -> np.ndarray | None:
        """The value as a numeric array, or None when it is not one."""
        if self.dtype in _NOT_NUMBERS or self.shape == "ragged":
            return None
        array = np.asarray(self.value)
        if array.dtype == object:
            try:
                array = array.astype(np.float64)
            except (TypeError, ValueError):
                return None
        return array


def _base(values: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if values == "probabilities":
        out = rng.random(shape)
        if len(shape) == 2 and shape[1] > 0:
            out /= out.sum(axis=1, keepdims=True)
        return out
    if values == "labels":
        out = rng.integers(0, 2, shape).astype(np.float64)
        if out.ndim >= 1 and len(out) >= 2:
            out[0], out[1] = 0, 1  # both classes present
        return out
    if values == "classes":
        return rng.integers(0, 7, shape).astype(np.float64)
    if values == "negative":
        return rng.integers(-3, 3, shape).astype(np.float64)
    if values == "huge":
        return rng.choice([1e300, -1e300, 1e308, 3.0], shape)
    if values in ("nan", "inf"):
        out = rng.random(shape)
        if out.size:
            out.reshape(-1)[rng.integers(0, out.size)] = np.nan if values == "nan" else np.inf
        return out
    if values == "zeros":
        return np.zeros(shape)
    return rng.random(shape) * 10.0 + 0.25  # fractions


def build(dtype: str, shape: str, values: str, seed: int) -> Bad:
    """The fuzzed argument of one (dtype, shape, values) cell, from ``seed``."""
    rng = np.random.default_rng(seed)
    if shape == "ragged":
        rows: list[Any] = [[0.1, 0.9], [0.5]] * (N_ROWS // 2)
        return Bad(dtype, shape, values, rows)
    base = np.asarray(_base(values, _SHAPE_OF[shape], rng), dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = np.round(np.nan_to_num(base, nan=0.0, posinf=9e18, neginf=-9e18))
        whole = np.clip(whole, -9e18, 9e18)
        casts: dict[str, Callable[[], np.ndarray]] = {
            "bool": lambda: base > 0.5,
            "int64": lambda: whole.astype(np.int64),
            "uint8": lambda: whole.astype(np.int64).astype(np.uint8),
            "float64": lambda: base,
            "float32": lambda: base.astype(np.float32),
            "object": lambda: base.astype(object),
            "str": lambda: base.astype(str),
            "bytes": lambda: base.astype("S"),
            "complex": lambda: base + 1j,
            "datetime": lambda: whole.astype(np.int64).astype("datetime64[s]"),
            "timedelta": lambda: whole.astype(np.int64).astype("timedelta64[s]"),
        }
        array = casts[dtype]()
    value = array[()] if shape == "scalar" else array
    return Bad(dtype, shape, values, value)


# ------------------------------------------------------------------------------- targets


def _labels(n: int) -> np.ndarray:
    return np.arange(n) % 2


def _probs(n: int) -> np.ndarray:
    return np.linspace(0.1, 0.9, n)


def _probs2(n: int) -> np.ndarray:
    p = _probs(n)
    return np.column_stack([1.0 - p, p])


def _multi(n: int) -> np.ndarray:
    return np.column_stack([_labels(n), 1 - _labels(n)])


def _labels_bad(bad: Bad, n_classes: int = 2) -> bool:
    """Invalid as class labels: negative, non-integer, or not below ``n_classes``."""
    array = bad.numbers()
    if array is None or array.size == 0 or array.dtype.kind not in "biuf":
        return False
    if array.dtype.kind == "b":
        return False
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size == 0:
        return False
    return bool(
        (finite < 0).any() or (finite >= n_classes).any() or (finite != np.round(finite)).any()
    )


def _counts_bad(bad: Bad) -> bool:
    """Invalid as a histogram: negative counts or no count at all."""
    array = bad.numbers()
    if array is None or array.size == 0 or array.dtype.kind not in "biuf":
        return False
    return bool((array < 0).any() or not (array != 0).any())


@dataclass(frozen=True)
class Target:
    """One function with one argument fuzzed.

    ``call(x, n)`` runs it with ``x`` in the fuzzed argument and valid arrays of ``n``
    rows in the others; ``names`` are the arguments an error may name; ``ndims`` the
    dimensions the argument takes; ``finite`` whether NaN and infinity are invalid;
    ``text_ok`` whether strings are valid (class names or slice labels); ``invalid`` a
    domain rule on top of the universal ones; ``nan_ok`` whether a NaN answer is valid.
    """

    name: str
    call: Callable[[Any, int], Any]
    names: tuple[str, ...]
    ndims: tuple[int, ...] = (1,)
    finite: bool = True
    text_ok: bool = False
    invalid: Callable[[Bad], bool] | None = None
    nan_ok: bool = False
    is_check: bool = False

    def is_invalid(self, bad: Bad) -> bool:
        """Whether ``bad`` is invalid for this argument by construction."""
        if bad.shape in ("ragged", "no_columns"):
            return True
        if bad.dtype in _NOT_NUMBERS and not (self.text_ok and bad.dtype in ("str", "bytes")):
            return True
        ndim = len(_SHAPE_OF[bad.shape])
        if ndim not in self.ndims and ndim != 0 and bad.shape != "empty":
            return True
        array = bad.numbers()
        finite_kind = array is not None and array.dtype.kind == "f"
        if self.finite and finite_kind and not np.isfinite(array).all():
            return True
        return self.invalid is not None and self.invalid(bad)


def _metric_targets() -> Iterator[Target]:
    classify = ("accuracy", "error_rate", "precision", "recall", "f1")
    for name in classify:
        fn = getattr(stats.metrics, name)
        yield Target(
            f"{name}(y_true)",
            lambda x, n, fn=fn: fn(x, _probs2(n)),
            ("y_true",),
            invalid=_labels_bad,
        )
        yield Target(f"{name}(y_pred)", lambda x, n, fn=fn: fn(_labels(n), x), ("y_pred",), (1, 2))
    for name in ("log_loss", "brier", "roc_auc"):
        fn = getattr(stats.metrics, name)
        yield Target(
            f"{name}(y_true)",
            lambda x, n, fn=fn: fn(x, _probs(n)),
            ("y_true",),
            invalid=_labels_bad,
        )
        yield Target(f"{name}(y_pred)", lambda x, n, fn=fn: fn(_labels(n), x), ("y_pred",), (1, 2))
    for name in ("mse", "mae", "rmse", "r2"):
        fn = getattr(stats.metrics, name)
        yield Target(f"{name}(y_true)", lambda x, n, fn=fn: fn(x, _probs(n)), ("y_true",))
        yield Target(f"{name}(y_pred)", lambda x, n, fn=fn: fn(_probs(n), x), ("y_pred",))
    for name in ("hamming_loss", "subset_accuracy", "per_label_accuracy"):
        fn = getattr(stats.metrics, name)
        yield Target(f"{name}(y_true)", lambda x, n, fn=fn: fn(x, _multi(n)), ("y_true",), (2,))
        yield Target(f"{name}(y_pred)", lambda x, n, fn=fn: fn(_multi(n), x), ("y_pred",), (2,))
    yield Target(
        "predicted_labels", lambda x, n: stats.metrics.predicted_labels(x), ("y_pred",), (1, 2)
    )


def _compare_targets() -> Iterator[Target]:
    def both(x: Any, n: int) -> Any:
        return stats.compare_predictions(x, np.copy(x) if isinstance(x, np.ndarray) else x)

    yield Target("compare_predictions(a, b)", both, ("a", "b"), (1, 2), finite=False)
    yield Target(
        "compare_predictions(labels)",
        lambda x, n: stats.compare_predictions(_probs2(n), _probs2(n)[::-1], labels=x),
        ("labels",),
        invalid=_labels_bad,
    )
    yield Target(
        "loss_divergence",
        lambda x, n: stats.loss_divergence(x, _probs(n)),
        ("a", "b"),
        finite=False,
        nan_ok=True,
    )


def _sliced_targets() -> Iterator[Target]:
    codes = lambda n: np.arange(n) % 2  # noqa: E731
    yield Target(
        "sliced_sum(codes)",
        lambda x, n: stats.sliced_sum(x, 3),
        ("codes",),
        invalid=lambda b: _labels_bad(b, 3),
    )
    yield Target(
        "sliced_sum(values)", lambda x, n: stats.sliced_sum(codes(n), 2, x), ("values", "codes")
    )
    yield Target(
        "sliced_accuracy(correct)",
        lambda x, n: stats.sliced_accuracy(codes(n), 2, x),
        ("correct", "codes"),
        nan_ok=True,
    )
    yield Target(
        "sliced_confusion(y_true)",
        lambda x, n: stats.sliced_confusion(codes(n), 2, x, _labels(n), 2),
        ("y_true", "codes"),
        invalid=_labels_bad,
    )
    yield Target(
        "sliced_metric(y_pred)",
        lambda x, n: stats.sliced.sliced_metric("accuracy", codes(n), 2, _labels(n), x),
        ("y_pred", "y_true", "codes"),
        (1, 2),
        nan_ok=True,
    )
    yield Target(
        "slice_groups(codes)",
        lambda x, n: stats.sliced.slice_groups(x, 3),
        ("codes",),
        invalid=lambda b: _labels_bad(b, 3),
    )
    yield Target("encode_slices", lambda x, n: stats.encode_slices(x), ("slices",), text_ok=True)


def _interval_targets() -> Iterator[Target]:
    def share(table: np.ndarray) -> np.ndarray:
        flat = table.reshape(len(table), -1)
        return np.asarray(flat[:, 0] / flat.sum(axis=1))

    yield Target(
        "bootstrap_counts(counts)",
        lambda x, n: stats.bootstrap_counts(x, share, n_resamples=50, rng=0),
        ("counts",),
        (1, 2, 3),
        invalid=_counts_bad,
        nan_ok=True,
    )
    yield Target(
        "bootstrap_rows(arrays)",
        lambda x, n: stats.bootstrap_rows(np.max, x, n_resamples=50, rng=0),
        ("arrays[0]",),
        (1, 2, 3),
    )
    yield Target(
        "clopper_pearson(successes)",
        lambda x, n: intervals.clopper_pearson(x, np.full(n, 10)),
        ("successes", "n"),
        (0, 1, 2, 3),
        invalid=lambda b: _outside(b, 0.0, 10.0),
    )
    yield Target(
        "wilson_interval(successes)",
        lambda x, n: stats.wilson_interval(x, 10),
        ("successes",),
        (0,),
        invalid=lambda b: _labels_bad(b, 11),
    )
    for name in ("mcnemar_exact", "paired_accuracy_difference"):
        fn = getattr(stats, name)
        yield Target(
            f"{name}(correct_a)",
            lambda x, n, fn=fn: fn(x, _labels(n).astype(bool)),
            ("correct_a", "correct_b"),
            invalid=_labels_bad,
        )
    yield Target(
        "tost_paired_accuracy(correct_b)",
        lambda x, n: stats.tost_paired_accuracy(_labels(n), x, margin=0.1),
        ("correct_a", "correct_b"),
        invalid=_labels_bad,
    )
    yield Target(
        "paired_correctness(table)",
        lambda x, n: stats.paired_correctness(x),
        ("table",),
        (2,),
        invalid=_counts_bad,
    )
    yield Target(
        "metric_estimate(y_true)",
        lambda x, n: stats.metric_estimate("accuracy", x, _probs2(n), n_resamples=100, rng=0),
        ("y_true",),
        invalid=_labels_bad,
    )
    yield Target(
        "metric_estimate(y_pred)",
        lambda x, n: stats.metric_estimate("log_loss", _labels(n), x, n_resamples=100, rng=0),
        ("y_pred", "y_true"),
        (1, 2),
    )
    yield Target(
        "paired_difference(candidate)",
        lambda x, n: stats.paired_difference(
            "brier", _labels(n), x, _probs(n), n_resamples=100, rng=0
        ),
        ("candidate", "baseline", "y_pred", "y_true"),
        (1, 2),
    )
    yield Target("mean_standard_error", lambda x, n: paired.mean_standard_error(x), ("values",))


def _auc_targets() -> Iterator[Target]:
    yield Target(
        "roc_auc_midrank(y_true)",
        lambda x, n: stats.roc_auc_midrank(x, _probs(n)),
        ("y_true",),
        invalid=_labels_bad,
    )
    yield Target(
        "roc_auc_midrank(scores)",
        lambda x, n: stats.roc_auc_midrank(_labels(n), x),
        ("scores",),
        (1, 2),
    )
    yield Target(
        "delong(scores_a)",
        lambda x, n: stats.delong(_labels(n), x, _probs(n)),
        ("scores_a", "scores_b"),
        (1, 2),
    )
    yield Target(
        "delong_ci(y_true)",
        lambda x, n: stats.delong_ci(x, _probs(n)),
        ("y_true",),
        invalid=_labels_bad,
    )


def _sequential_targets() -> Iterator[Target]:
    counts = lambda n: np.arange(1, n + 1)  # noqa: E731
    for name in ("js_divergence", "psi"):
        fn = getattr(stats, name)
        yield Target(
            f"{name}(counts_a)",
            lambda x, n, fn=fn: fn(x, counts(n)),
            ("counts_a", "counts_b"),
            invalid=_counts_bad,
        )
    yield Target(
        "betting_confidence_sequence(x)",
        lambda x, n: stats.betting_confidence_sequence(x, low=0.0, high=1.0),
        ("x",),
        invalid=lambda b: _outside(b, 0.0, 1.0),
    )
    yield Target(
        "betting_log_evalues(x)",
        lambda x, n: stats.sequential.betting_log_evalues(x, 0.5, low=0.0, high=1.0),
        ("x",),
        invalid=lambda b: _outside(b, 0.0, 1.0),
    )
    yield Target(
        "rate_log_evalues(hits)",
        lambda x, n: stats.sequential.rate_log_evalues(x, 0.1),
        ("hits",),
        (1, 2, 3),
        invalid=_labels_bad,
    )
    yield Target(
        "share_log_evalues(hits)",
        lambda x, n: stats.sequential.share_log_evalues(x, 0.5),
        ("hits",),
        invalid=_labels_bad,
    )
    yield Target(
        "categorical_share_log_evalues(categories)",
        lambda x, n: stats.sequential.categorical_share_log_evalues(
            x, _labels(n).astype(bool), 0.5
        ),
        ("categories", "hits"),
        invalid=_fractional,
    )
    yield Target(
        "rate_log_evalue(k)",
        lambda x, n: stats.sequential.rate_log_evalue(x, np.full(n, 10), 0.1),
        ("k", "n"),
        (0, 1, 2),
        invalid=lambda b: _outside(b, 0.0, 10.0),
    )


def _fractional(bad: Bad) -> bool:
    """Invalid as integer ids: non-integer numbers."""
    array = bad.numbers()
    if array is None or array.dtype.kind != "f":
        return False
    finite = array[np.isfinite(array)]
    return bool((finite != np.round(finite)).any())


def _outside(bad: Bad, low: float, high: float) -> bool:
    array = bad.numbers()
    if array is None or array.size == 0 or array.dtype.kind not in "biuf":
        return False
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    return bool(finite.size and ((finite < low).any() or (finite > high).any()))


def _trend_targets() -> Iterator[Target]:
    yield Target("loss_trend(losses)", lambda x, n: stats.loss_trend(x), ("losses",))
    for name in ("lag1_autocorrelation", "slope_test", "kendall_pvalue_less"):
        fn = getattr(trend, name)
        yield Target(f"{name}", lambda x, n, fn=fn: fn(x), ("losses", "means"), (1, 2), nan_ok=True)
    for name in ("holm", "benjamini_hochberg"):
        fn = getattr(stats, name)
        yield Target(
            f"{name}(pvalues)",
            lambda x, n, fn=fn: fn(x),
            ("pvalues",),
            invalid=lambda b: _outside(b, 0.0, 1.0),
        )


def _quality(**kwargs: Any) -> Result:
    return QualityCheck(metric_limits={"accuracy": 0.0}, **kwargs).run()


def _check_targets() -> Iterator[Target]:
    yield Target(
        "QualityCheck(labels)",
        lambda x, n: _quality(labels=x, predictions=_probs2(n)),
        ("labels",),
        text_ok=True,
        invalid=_labels_bad,
        is_check=True,
    )
    yield Target(
        "QualityCheck(predictions)",
        lambda x, n: _quality(labels=_labels(n), predictions=x),
        ("predictions", "labels"),
        (1, 2),
        is_check=True,
    )
    yield Target(
        "QualityCheck(baseline_predictions)",
        lambda x, n: QualityCheck(
            labels=_labels(n),
            predictions=_probs2(n),
            baseline_predictions=x,
            max_regression={"accuracy": 1.0},
        ).run(),
        ("baseline_predictions", "labels"),
        (1, 2),
        is_check=True,
    )

    def runs(**kwargs: Any) -> Result:
        a = TrainingRun(name="a", **kwargs)
        b = TrainingRun(name="b", **kwargs)
        return ReproducibilityCheck([a, b]).run()

    yield Target(
        "ReproducibilityCheck(predictions)",
        lambda x, n: runs(predictions=x, labels=_labels(n)),
        ("predictions", "labels"),
        (1, 2),
        is_check=True,
    )
    yield Target(
        "ReproducibilityCheck(labels)",
        lambda x, n: runs(predictions=_probs2(n), labels=x),
        ("labels",),
        (1, 2),
        text_ok=True,
        invalid=_labels_bad,
        is_check=True,
    )
    yield Target(
        "ReproducibilityCheck(losses)",
        lambda x, n: runs(losses=x),
        ("losses",),
        finite=False,
        is_check=True,
    )


def targets() -> tuple[Target, ...]:
    """Every fuzzed (function, argument), in a fixed order."""
    groups = (
        _metric_targets,
        _compare_targets,
        _sliced_targets,
        _interval_targets,
        _auc_targets,
        _sequential_targets,
        _trend_targets,
        _check_targets,
    )
    return tuple(t for group in groups for t in group())


TARGETS = targets()


# ------------------------------------------------------------------------------- judging


#: An argument named in a message: ``'y_true'``, ``'arrays[0]'`` or ``average='binary'``.
_NAMED = re.compile(r"'[A-Za-z_][\w\[\]'\"]*'|\b[a-z_]+=")


class _Hang(BaseException):
    """Raised by the alarm when a call runs past `TIME_LIMIT_S`."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    if not hasattr(signal, "setitimer"):
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _has_nan(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f" and bool(np.isnan(value).any())
    if isinstance(value, tuple | list):
        return any(_has_nan(v) for v in value)
    if hasattr(value, "__attrs_attrs__") or hasattr(value, "__dataclass_fields__"):
        return (
            any(_has_nan(v) for v in vars(value).values()) if hasattr(value, "__dict__") else False
        )
    return False


def judge(target: Target, bad: Bad) -> tuple[str, str]:
    """The outcome of calling ``target`` with ``bad``, and what happened (for failures)."""
    invalid = target.is_invalid(bad)
    try:
        with _deadline(TIME_LIMIT_S), warnings.catch_warnings():
            warnings.simplefilter("error")
            answer = target.call(bad.value, bad.rows)
    except _Hang:
        return "hang", f"ran over {TIME_LIMIT_S:g} s"
    except InvalidInput as exc:
        message = str(exc)
        if _NAMED.search(message):
            return "clear error", message
        return "obscure crash", f"InvalidInput naming no argument: {message}"
    except Exception as exc:
        return "obscure crash", f"{type(exc).__name__}: {exc}"
    if isinstance(answer, Result):
        if invalid and answer.status in (Status.PASS, Status.WARN, Status.SKIP):
            return "silent pass", f"{answer.status.label}: {answer.summary}"
        return ("clear error" if invalid else "valid answer"), answer.summary
    if invalid:
        return "silent pass", f"answered {answer!r:.200}"
    if _has_nan(answer) and not target.nan_ok:
        return "obscure crash", f"NaN in the answer {answer!r:.200}"
    return "valid answer", ""


def cells(seed: int = SEED, per_target: int = PER_TARGET) -> Iterator[tuple[Target, Bad]]:
    """The deterministic inputs of `run`: ``per_target`` (dtype, shape, values) per target."""
    rng = np.random.default_rng(seed)
    for target in TARGETS:
        for _ in range(per_target):
            dtype = DTYPES[rng.integers(len(DTYPES))]
            shape = SHAPES[rng.integers(len(SHAPES))]
            values = VALUES[rng.integers(len(VALUES))]
            yield target, build(dtype, shape, values, int(rng.integers(2**31)))


def run(seed: int = SEED, per_target: int = PER_TARGET) -> dict[str, Any]:
    """Fuzz every target; the outcome counts and the failures (target, input, what)."""
    counts: Counter[str] = Counter()
    failures: list[tuple[str, Bad, str]] = []
    for target, bad in cells(seed, per_target):
        outcome, what = judge(target, bad)
        counts[outcome] += 1
        if outcome not in ("clear error", "valid answer"):
            failures.append((target.name, bad, what))
    return {"counts": counts, "failures": failures, "n_targets": len(TARGETS)}


def table(report: dict[str, Any]) -> str:
    """The Markdown table docs/robustness.md quotes."""
    counts = report["counts"]
    total = sum(counts.values())
    lines = [
        "| inputs tried | clear errors | valid answers | obscure crashes | hangs | silent passes |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {total:,} | {counts['clear error']:,} | {counts['valid answer']:,} | "
        f"{counts['obscure crash']:,} | {counts['hang']:,} | {counts['silent pass']:,} |",
    ]
    return "\n".join(lines)


def main() -> None:
    report = run()
    print(
        f"{report['n_targets']} functions and checks (one argument fuzzed), "
        f"{PER_TARGET} inputs each, seed {SEED}"
    )
    print()
    print(table(report))
    for name, bad, what in report["failures"][:40]:
        print(f"- {name} [{bad.dtype}, {bad.shape}, {bad.values}]: {what[:300]}")


if __name__ == "__main__":
    main()
