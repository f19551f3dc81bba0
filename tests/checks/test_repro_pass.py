"""The one-pass table behind ReproducibilityCheck: sums and moments against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlchecks.checks import ReproducibilityCheck, TrainingRun, _repro_pass
from mlchecks.checks._repro_eval import Evaluation
from mlchecks.checks._repro_pass import Summary, Table, _merge_moments


def _moments(values: np.ndarray) -> tuple[int, float, float]:
    mean = float(values.mean())
    return values.size, mean, float(((values - mean) ** 2).sum())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60),
    st.integers(1, 59),
)
def test_merged_moments_equal_the_moments_of_the_whole(values: list[float], cut: int) -> None:
    x = np.asarray(values)
    cut = min(cut, x.size)
    table, other = Table(), Table()
    table.add_moments(("m", 0, 1), x[:cut])
    other.add_moments(("m", 0, 1), x[cut:])
    n, mean, m2 = table.merge(other).moments[("m", 0, 1)]
    n_ref, mean_ref, m2_ref = _moments(x)
    assert n == n_ref
    assert mean == pytest.approx(mean_ref, rel=1e-12, abs=1e-9)
    assert m2 == pytest.approx(m2_ref, rel=1e-9, abs=1e-6)


def test_moments_of_an_empty_part_change_nothing() -> None:
    assert _merge_moments((0, 0.0, 0.0), (3, 1.0, 2.0)) == (3, 1.0, 2.0)
    assert _merge_moments((3, 1.0, 2.0), (0, 0.0, 0.0)) == (3, 1.0, 2.0)
    table = Table()
    table.add_moments(("m",), np.empty(0))
    assert table.moments == {}


def test_merge_adds_sums_and_keeps_keys_of_either_table() -> None:
    a, b = Table(), Table()
    a.n, b.n = 3, 4
    a.add(("count", "s"), np.array([1, 2]))
    b.add(("count", "s"), np.array([3, 1]))
    b.add(("correct", 1), 4)
    merged = a.merge(b)
    assert merged.n == 7
    np.testing.assert_array_equal(merged.get("count", "s"), [4, 3])
    assert merged.total("correct", 1) == 4.0
    merged.add(("count", "s"), np.array([1, 1]))  # the inputs are not aliased
    np.testing.assert_array_equal(a.get("count", "s"), [1, 2])


def test_forget_drops_a_runs_metric_and_its_pairs() -> None:
    t = Table()
    t.add(("terms", 0, "log_loss"), 1.0)
    t.add(("terms", 0, "log_loss", "s"), np.ones(2))
    t.add(("terms", 1, "log_loss"), 2.0)
    t.add(("terms", 0, "brier"), 2.0)
    t.add(("squares", 0, 1, "log_loss", "s"), np.ones(2))
    t.add_moments(("log_loss", 0, 1), np.ones(2))
    t.add_moments(("log_loss", 1, 2), np.ones(2))
    t.forget(0, "log_loss")
    assert sorted(t.sums) == [("terms", 0, "brier"), ("terms", 1, "log_loss")]
    assert list(t.moments) == [("log_loss", 1, 2)]


def _runs(n: int, c: int, seed: int, *, k: int = 7) -> list[TrainingRun]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    s = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(c), n)
    q = p.copy()
    moved = rng.random(n) < 0.3
    q[moved] = rng.dirichlet(np.ones(c), int(moved.sum()))
    return [
        TrainingRun(predictions=p, labels=y, slices=s, name="a"),
        TrainingRun(predictions=q, labels=y, slices=s, name="b"),
    ]


def _brute_force(runs: list[TrainingRun]) -> dict[str, object]:
    """The table's numbers, computed on whole arrays."""
    a, b = runs
    assert a.predictions is not None
    assert b.predictions is not None
    assert a.labels is not None
    y = a.labels
    codes = next(iter(a.slices.values())).codes  # type: ignore[union-attr]
    right_a = a.predictions.argmax(axis=1) == y
    right_b = b.predictions.argmax(axis=1) == y
    loss_a = -np.log(np.clip(a.predictions[np.arange(y.size), y], 1e-300, 1))
    loss_b = -np.log(np.clip(b.predictions[np.arange(y.size), y], 1e-300, 1))
    d = loss_a - loss_b
    k = int(codes.max()) + 1
    return {
        "correct": [int(right_a.sum()), int(right_b.sum())],
        "only": [int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())],
        "sliced_only": np.stack(
            [
                np.bincount(codes[right_a & ~right_b], minlength=k),
                np.bincount(codes[right_b & ~right_a], minlength=k),
            ]
        ),
        "sliced_correct": np.bincount(codes[right_a], minlength=k),
        "terms": float(loss_a.sum()),
        "moments": _moments(d),
        "squares": np.bincount(codes, d * d, k),
    }


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(("n", "c"), [(1, 2), (4095, 3), (4097, 2), (20_000, 10)])
def test_the_table_of_blocks_equals_brute_force(
    monkeypatch: pytest.MonkeyPatch, n: int, c: int, fused: bool
) -> None:
    """Counts are exact and sums agree to rounding, whatever the block size and whether
    the counts come from one fused bincount or one per count."""
    if not fused:
        monkeypatch.setattr(_repro_pass, "_FUSED_BINS_PER_ROW", 0.0)
    monkeypatch.setattr(_repro_pass, "_BLOCK_VALUES", 1 << 12)
    runs = _runs(n, c, seed=n)
    tables: list[Table] = []
    original = Evaluation.use

    def spy(self: Evaluation, summary: Summary) -> None:
        tables.append(summary.table)
        original(self, summary)

    monkeypatch.setattr(Evaluation, "use", spy)
    result = ReproducibilityCheck(runs=runs).run()
    assert result.error is None, result.error
    (table,) = tables
    ref = _brute_force(runs)
    assert table.n == n
    assert [table.total("correct", r) for r in (0, 1)] == ref["correct"]
    assert table.get("only", 0, 1).tolist() == ref["only"]
    np.testing.assert_array_equal(table.get("only", 0, 1, "slice"), ref["sliced_only"])
    np.testing.assert_array_equal(table.get("correct", 0, "slice"), ref["sliced_correct"])
    assert table.total("terms", 0, "log_loss") == pytest.approx(ref["terms"], rel=1e-12)
    n_d, mean, m2 = table.moments[("log_loss", 0, 1)]
    n_ref, mean_ref, m2_ref = ref["moments"]  # type: ignore[misc]
    assert n_d == n_ref
    assert mean == pytest.approx(mean_ref, rel=1e-9, abs=1e-15)
    assert m2 == pytest.approx(m2_ref, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(
        table.get("squares", 0, 1, "log_loss", "slice"), ref["squares"], rtol=1e-12
    )


def test_the_verdict_does_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _runs(30_000, 4, seed=3)
    whole = ReproducibilityCheck(runs=runs).run()
    monkeypatch.setattr(_repro_pass, "_BLOCK_VALUES", 1 << 10)
    monkeypatch.setattr(_repro_pass, "_MIN_BLOCK_ROWS", 97)
    blocked = ReproducibilityCheck(runs=runs).run()
    assert [(f.name, f.status) for f in blocked.findings] == [
        (f.name, f.status) for f in whole.findings
    ]
    for key, value in whole.metrics.items():
        assert blocked.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_a_bad_row_late_in_the_data_is_named_by_its_row_in_the_evaluation_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A block's error would name the row within the block; the message names row 9,000."""
    monkeypatch.setattr(_repro_pass, "_BLOCK_VALUES", 1 << 12)
    runs = _runs(10_000, 2, seed=5)
    bad = runs[1].predictions.copy()  # type: ignore[union-attr]
    bad[9_000] = [0.7, 0.7]
    runs[1] = TrainingRun(predictions=bad, labels=runs[1].labels, name="b")
    result = ReproducibilityCheck(runs=runs[:1] + runs[1:], metrics=["log_loss"]).run()
    skipped = result.details["skipped"]
    assert "row 9000" in skipped["log_loss"], skipped
    assert math.isfinite(result.metrics["prediction.max_abs_diff"])
