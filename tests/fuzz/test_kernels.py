"""Fuzzing the kernels and the array-taking checks with hypothesis (issue 16, item 5).

Every public array-taking function of `mlchecks.stats`, and `QualityCheck`,
`ReproducibilityCheck` and `TrainingRun`, is called with one argument drawn over dtype,
shape and values (the others valid). The property: a valid answer (no NaN; for a check, a
`Result` that does not pass invalid input) or an `InvalidInput` naming an argument; never
another exception, a warning, a hang or a PASS on invalid input. The targets, the input
builder and the judge are those of ``benchmarks/fuzz_kernels.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _benchmarks import load_benchmark
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

bench = load_benchmark("fuzz_kernels")
KERNELS = [t for t in bench.TARGETS if not t.is_check]
CHECKS = [t for t in bench.TARGETS if t.is_check]
GOOD = ("clear error", "valid answer")


def fast(max_examples: int) -> settings:
    """Deterministic, bounded settings: ``max_examples`` draws, no deadline, no database."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )


DTYPES = st.sampled_from(
    [
        np.dtype(np.bool_),
        np.dtype(np.int64),
        np.dtype(np.uint8),
        np.dtype(np.float64),
        np.dtype(np.float32),
        np.dtype("U3"),
        np.dtype("S3"),
        np.dtype(np.complex128),
        np.dtype("datetime64[s]"),
        np.dtype("timedelta64[s]"),
    ]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
OBJECTS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3), st.just([1, 2])
)


@st.composite
def arrays(draw: st.DrawFn) -> Any:
    """Any array hypothesis can draw (NaN, infinity, huge and subnormal values included),
    object arrays of mixed items, or a ragged list."""
    which = draw(st.sampled_from(["typed", "typed", "typed", "object", "ragged"]))
    if which == "typed":
        return draw(hnp.arrays(DTYPES, SHAPES))
    if which == "object":
        return draw(hnp.arrays(object, SHAPES, elements=OBJECTS))
    rows = draw(st.lists(st.lists(st.floats(), min_size=1, max_size=3), min_size=1, max_size=3))
    return [[0.5], [0.5, 0.5], *rows]  # rows of different lengths


def _check(target: Any, value: Any) -> None:
    bad = (
        bench.Bad.of(value)
        if isinstance(value, np.ndarray)
        else bench.Bad("float64", "ragged", "drawn", value)
    )
    outcome, what = bench.judge(target, bad)
    assert outcome in GOOD, f"{target.name} on {bad.dtype} {bad.shape}: {outcome}: {what}"


class TestKernels:
    @pytest.mark.parametrize("target", KERNELS, ids=lambda t: t.name)
    @fast(40)
    @given(value=arrays())
    def test_drawn_arrays_answer_or_raise_clearly(self, target: Any, value: Any) -> None:
        """A drawn array gets a valid answer or an InvalidInput naming an argument, never
        another exception, a warning, a hang or an answer to invalid input."""
        _check(target, value)

    @fast(400)
    @given(
        target=st.sampled_from(KERNELS),
        dtype=st.sampled_from(bench.DTYPES),
        shape=st.sampled_from(bench.SHAPES),
        values=st.sampled_from(bench.VALUES),
        seed=st.integers(0, 2**31 - 1),
    )
    def test_benchmark_cells_answer_or_raise_clearly(
        self, target: Any, dtype: str, shape: str, values: str, seed: int
    ) -> None:
        """The benchmark's (dtype, shape, values) cells, drawn by hypothesis, hold too."""
        outcome, what = bench.judge(target, bench.build(dtype, shape, values, seed))
        assert outcome in GOOD, f"{target.name} [{dtype}, {shape}, {values}]: {what}"


class TestChecks:
    @pytest.mark.parametrize("target", CHECKS, ids=lambda t: t.name)
    @fast(80)
    @given(value=arrays())
    def test_checks_never_pass_invalid_arrays(self, target: Any, value: Any) -> None:
        """QualityCheck and ReproducibilityCheck raise InvalidInput or judge: no PASS on an
        invalid array, no other exception."""
        _check(target, value)

    @fast(80)
    @given(
        target=st.sampled_from(CHECKS),
        dtype=st.sampled_from(bench.DTYPES),
        shape=st.sampled_from(bench.SHAPES),
        values=st.sampled_from(bench.VALUES),
        seed=st.integers(0, 2**31 - 1),
    )
    def test_benchmark_cells_never_pass_invalid_input(
        self, target: Any, dtype: str, shape: str, values: str, seed: int
    ) -> None:
        """The benchmark's cells on the checks: a clear error or a judged result."""
        outcome, what = bench.judge(target, bench.build(dtype, shape, values, seed))
        assert outcome in GOOD, f"{target.name} [{dtype}, {shape}, {values}]: {what}"
