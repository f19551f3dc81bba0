from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings

from mlchecks.exceptions import InvalidInput
from mlchecks.stats import sliced as sliced_module
from mlchecks.stats.sliced import (
    SliceCodes,
    encode_slices,
    encode_slicings,
    slice_groups,
    sliced_accuracy,
    sliced_confusion,
    sliced_metric,
    sliced_sum,
)


class TestEncodeSlices:
    def test_dense_integer_ids_are_codes(self) -> None:
        """Ids 0..k-1 are used as they are, named by their number, gaps kept as empty slices."""
        s = encode_slices(np.array([3, 0, 3, 1]))
        assert ("0", "1", "2", "3") == s.names
        assert [3, 0, 3, 1] == s.codes.tolist()
        assert [1, 1, 0, 2] == s.counts().tolist()

    def test_strings_encoded_once_sorted(self) -> None:
        """String labels get codes in sorted order of the names."""
        s = encode_slices(["us", "eu", "us"])
        assert (("eu", "us"), [1, 0, 1]) == (s.names, s.codes.tolist())

    def test_sparse_and_negative_ids_are_compacted(self) -> None:
        """Ids far beyond n (user ids) or negative get compact codes, named by the id."""
        s = encode_slices([10**9, -1, 10**9])
        assert (("-1", "1000000000"), [1, 0, 1]) == (s.names, s.codes.tolist())

    def test_whole_floats_accepted(self) -> None:
        """Float ids that are whole numbers are integer ids."""
        assert [1, 0] == encode_slices([1.0, 0.0]).codes.tolist()

    def test_object_labels(self) -> None:
        """An object array of strings encodes like a string array."""
        s = encode_slices(np.array(["b", "a"], dtype=object))
        assert ("a", "b") == s.names

    def test_slice_codes_pass_through(self) -> None:
        """An already encoded slicing is returned unchanged."""
        s = SliceCodes(np.array([0, 1]), ("x", "y"))
        assert s is encode_slices(s, n=2)

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            (np.array([True, False]), "not a boolean mask"),
            ([0.5, 1.0], "integer slice ids"),
            ([0.0, float("nan")], "must be finite"),
            ([], "at least 1 rows"),
            (np.zeros((2, 2), dtype=int), "must be 1-D"),
            (np.array([], dtype=str), "at least 1 rows"),
            (np.array(["a", 1], dtype=object), "must be sortable"),
        ],
    )
    def test_bad_input_rejected(self, value: object, match: str) -> None:
        """Masks, fractional or NaN ids, empty and 2-D input raise clear errors."""
        with pytest.raises(InvalidInput, match=match):
            encode_slices(value)

    def test_length_checked(self) -> None:
        """A slicing must have one id per example."""
        with pytest.raises(InvalidInput, match=r"'region' must have one slice id per example"):
            encode_slices([0, 1], n=3, name="region")

    def test_codes_out_of_range_rejected(self) -> None:
        """SliceCodes validates that every code has a name."""
        with pytest.raises(InvalidInput, match=r"'codes' must lie in \[0, 1\)"):
            SliceCodes(np.array([0, 1]), ("only",))


class TestEncodeSlicings:
    def test_array_becomes_one_slicing(self) -> None:
        """A bare array is the slicing named 'slice'."""
        assert ["slice"] == list(encode_slicings([0, 1]))

    def test_mapping_keeps_names_and_checks_lengths(self) -> None:
        """Each slicing of a mapping is encoded and length-checked."""
        out = encode_slicings({"region": [0, 1, 1], "os": ["ios", "web", "ios"]}, n=3)
        assert ("ios", "web") == out["os"].names
        with pytest.raises(InvalidInput, match=r"'slices\['os'\]' must have one slice id"):
            encode_slicings({"os": ["ios"]}, n=3)

    def test_empty_mapping_and_bad_keys_rejected(self) -> None:
        """An empty mapping or a non-string key is an error."""
        with pytest.raises(InvalidInput, match="at least one slicing"):
            encode_slicings({})
        with pytest.raises(InvalidInput, match="keys must be non-empty strings"):
            encode_slicings({1: [0]})


class TestSlicedSum:
    @given(st.lists(st.tuples(st.integers(0, 4), st.floats(-10, 10)), min_size=1, max_size=50))
    @settings(max_examples=30, deadline=None)
    def test_matches_brute_force(self, rows: list[tuple[int, float]]) -> None:
        """Counts and sums equal a Python loop over the examples."""
        codes = np.array([r[0] for r in rows])
        values = np.array([r[1] for r in rows])
        expected = [sum(v for c, v in rows if c == s) for s in range(6)]
        assert expected == pytest.approx(sliced_sum(codes, 6, values).tolist())
        assert [sum(c == s for c, _ in rows) for s in range(6)] == sliced_sum(codes, 6).tolist()

    def test_code_beyond_n_slices_rejected(self) -> None:
        """A code >= n_slices is named."""
        with pytest.raises(InvalidInput, match="must be < n_slices=2 \\(got 2\\)"):
            sliced_sum([0, 2], 2)

    def test_negative_code_rejected(self) -> None:
        """Negative codes are rejected."""
        with pytest.raises(InvalidInput, match="'codes' must be >= 0"):
            sliced_sum([0, -1], 2)

    def test_values_length_checked(self) -> None:
        """Values must match the codes."""
        with pytest.raises(InvalidInput, match="'values' and 'codes' must have the same length"):
            sliced_sum([0, 1], 2, [1.0])

    def test_float_codes_rejected(self) -> None:
        """Codes must be integers (encode first)."""
        with pytest.raises(InvalidInput, match="1-D integer array"):
            sliced_sum([0.0, 1.0], 2)


class TestSlicedAccuracy:
    def test_matches_per_slice_loop(self) -> None:
        """Per-slice accuracy equals a boolean-mask loop, NaN for an empty slice."""
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 4, size=500)
        correct = rng.random(500) < 0.7
        counts, acc = sliced_accuracy(codes, 5, correct)
        for s in range(4):
            assert (codes == s).sum() == counts[s]
            assert correct[codes == s].mean() == pytest.approx(acc[s])
        assert (0, True) == (counts[4], bool(np.isnan(acc[4])))

    def test_requires_booleans(self) -> None:
        """Correctness must be boolean, not 0/1 floats."""
        with pytest.raises(InvalidInput, match="'correct' must be a boolean array"):
            sliced_accuracy([0, 1], 2, [1.0, 0.0])


class TestSlicedConfusion:
    def test_matches_sklearn_per_slice(self) -> None:
        """Each slice's block equals sklearn's confusion matrix on that slice."""
        rng = np.random.default_rng(1)
        codes = rng.integers(0, 3, size=400)
        y = rng.integers(0, 4, size=400)
        pred = rng.integers(0, 4, size=400)
        cube = sliced_confusion(codes, 3, y, pred, 4)
        for s in range(3):
            mask = codes == s
            expected = skm.confusion_matrix(y[mask], pred[mask], labels=range(4))
            np.testing.assert_array_equal(expected, cube[s])

    def test_labels_out_of_range_rejected(self) -> None:
        """A class index >= n_classes is named."""
        with pytest.raises(InvalidInput, match="'y_pred' must be class indices"):
            sliced_confusion([0], 1, [0], [3], 2)

    def test_lengths_checked(self) -> None:
        """All three arrays must align."""
        with pytest.raises(InvalidInput, match="must have the same length"):
            sliced_confusion([0, 0], 1, [0], [1], 2)


class TestSliceGroups:
    def test_groups_in_index_order(self) -> None:
        """Every slice's indices come back in increasing order."""
        codes = np.array([2, 0, 2, 1, 0])
        order, offsets = slice_groups(codes, 4)
        groups = [order[offsets[s] : offsets[s + 1]].tolist() for s in range(4)]
        assert [[1, 4], [3], [0, 2], []] == groups


class TestSlicedMetric:
    def test_per_example_metric_matches_loop(self) -> None:
        """Log loss per slice (bincount path) equals sklearn on each slice."""
        rng = np.random.default_rng(2)
        codes = rng.integers(0, 3, size=300)
        y = rng.integers(0, 3, size=300)
        p = rng.dirichlet(np.ones(3), size=300)
        values = sliced_metric("log_loss", codes, 3, y, p)
        for s in range(3):
            mask = codes == s
            assert skm.log_loss(y[mask], p[mask], labels=range(3)) == pytest.approx(values[s])

    def test_group_metric_matches_loop_and_nan_where_undefined(self) -> None:
        """ROC AUC per slice matches sklearn; a single-class slice and an empty one give NaN."""
        rng = np.random.default_rng(3)
        codes = np.repeat([0, 1, 2], 50)
        y = rng.integers(0, 2, size=150)
        y[100:] = 1
        scores = rng.random(150)
        values = sliced_metric("roc_auc", codes, 4, y, scores)
        for s in range(2):
            mask = codes == s
            assert skm.roc_auc_score(y[mask], scores[mask]) == pytest.approx(values[s])
        assert np.isnan(values[2:]).all()

    def test_lengths_checked(self) -> None:
        """Codes and labels must align."""
        with pytest.raises(InvalidInput, match="same length"):
            sliced_metric("accuracy", [0, 1, 1], 2, [0, 1], [0, 1])
        with pytest.raises(InvalidInput, match="same length"):
            sliced_metric("f1", [0, 1, 1], 2, [0, 1], [0, 1])


# ------------------------------------------------------------ chunked kernels vs whole arrays


@pytest.fixture(params=["default", "tiny"])
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kernels' own block size, or blocks of 7 rows (whatever the table size), so that
    n is not a multiple of it and out-of-range values sit in a later block."""
    if request.param == "tiny":
        monkeypatch.setattr(sliced_module, "_BLOCK_ROWS", 7)
        monkeypatch.setattr(sliced_module, "_ROWS_PER_CELL", 0)
    return str(request.param)


def labelled(n: int, k: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slice codes in [0, k), true labels and predictions in [0, c), right about 70%."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, k, size=n)
    y = rng.integers(0, c, size=n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, c, size=n))
    return codes, y, pred


def whole_array_accuracy(codes: np.ndarray, k: int, right: np.ndarray) -> np.ndarray:
    """Per-slice mean of 0/1 floats with two whole-array bincounts (the reference)."""
    counts = np.bincount(codes, minlength=k)
    sums = np.bincount(codes, weights=right.astype(np.float64), minlength=k)
    out = np.full(k, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


LABEL_DTYPES = ["int64", "int32", "int8", "uint8", "uint64", "bool"]


class TestChunkedCounts:
    @pytest.mark.parametrize("n", [1, 7, 50, 1001])
    @pytest.mark.parametrize("dtype", LABEL_DTYPES)
    def test_accuracy_and_error_rate_match_whole_arrays(
        self, blocks: str, n: int, dtype: str
    ) -> None:
        """sliced_metric's chunked accuracy and error rate equal the per-example means bit
        for bit, for every integer dtype; an empty slice is NaN."""
        codes, y, pred = labelled(n, 4, 2 if dtype == "bool" else 5)
        y, pred = y.astype(dtype), pred.astype(dtype)
        right = y == pred
        expected = whole_array_accuracy(codes, 5, right)
        np.testing.assert_array_equal(expected, sliced_metric("accuracy", codes, 5, y, pred))
        np.testing.assert_array_equal(
            whole_array_accuracy(codes, 5, ~right), sliced_metric("error_rate", codes, 5, y, pred)
        )
        counts, accuracy = sliced_accuracy(codes, 5, right)
        assert np.bincount(codes, minlength=5).tolist() == counts.tolist()
        np.testing.assert_array_equal(expected, accuracy)
        assert np.isnan(accuracy[4])

    @pytest.mark.parametrize("n", [1, 7, 50, 1001])
    @pytest.mark.parametrize("dtype", LABEL_DTYPES)
    def test_confusion_matches_whole_arrays(self, blocks: str, n: int, dtype: str) -> None:
        """Chunked confusion counts equal one whole-array bincount of the fused key."""
        c = 2 if dtype == "bool" else 4
        codes, y, pred = labelled(n, 3, c, seed=1)
        cube = sliced_confusion(codes, 3, y.astype(dtype), pred.astype(dtype), c)
        expected = np.bincount((codes * c + y) * c + pred, minlength=3 * c * c)
        assert expected.reshape(3, c, c).tolist() == cube.tolist()
        assert np.dtype(np.intp) == cube.dtype

    def test_lists_and_mixed_dtypes(self, blocks: str) -> None:
        """Lists and labels of two different integer dtypes give the same counts."""
        codes, y, pred = labelled(30, 2, 3, seed=2)
        expected = sliced_confusion(codes, 2, y, pred, 3)
        mixed = sliced_confusion(codes.tolist(), 2, y.astype(np.int16), pred.tolist(), 3)
        assert expected.tolist() == mixed.tolist()
        np.testing.assert_array_equal(
            sliced_metric("accuracy", codes, 2, y, pred),
            sliced_metric("accuracy", codes.astype(np.int32), 2, y.tolist(), pred.astype(np.uint8)),
        )

    def test_float_labels_and_probabilities_take_the_general_path(self, blocks: str) -> None:
        """Whole-number floats and (n, C) probabilities are converted as before."""
        codes, y, pred = labelled(40, 3, 3, seed=3)
        expected = sliced_metric("accuracy", codes, 3, y, pred)
        np.testing.assert_array_equal(
            expected, sliced_metric("accuracy", codes, 3, y.astype(float), pred)
        )
        probs = np.eye(3)[pred] * 0.8 + 0.2 / 3
        np.testing.assert_array_equal(expected, sliced_metric("accuracy", codes, 3, y, probs))
        assert sliced_confusion(codes, 3, y, pred, 3).tolist() == (
            sliced_confusion(codes, 3, y.astype(float), pred, 3).tolist()
        )

    @pytest.mark.parametrize(
        ("change", "match"),
        [
            ({"y": -1}, r"'y_true' must be class indices in \[0, 3\) \(got values from -1 to 2\)"),
            ({"pred": 3}, r"'y_pred' must be class indices in \[0, 3\) \(got values from 0 to 3\)"),
            # The codes are checked in the fused key, which the message names.
            ({"codes": 2}, r"'codes' must be < n_slices=18 \(got 2\d\)"),
            ({"codes": -1}, r"'codes' must be >= 0 \(got -\d\)"),
        ],
    )
    def test_out_of_range_in_a_later_block_rejected_as_before(
        self, blocks: str, change: dict[str, int], match: str
    ) -> None:
        """A bad label or code far into the data raises the whole-array path's message."""
        codes, y, pred = labelled(40, 2, 3, seed=4)
        arrays = {"codes": codes, "y": y, "pred": pred}
        for name, value in change.items():
            arrays[name][33] = value
        with pytest.raises(InvalidInput, match=match):
            sliced_confusion(arrays["codes"], 2, arrays["y"], arrays["pred"], 3)

    @pytest.mark.parametrize(
        ("change", "match"),
        [
            ({"y": -1}, r"'y_true' must be class indices in >= 0 \(got values from -1 to 2\)"),
            ({"pred": -2}, r"'y_pred' must be class indices in >= 0 \(got values from -2 to 2\)"),
            ({"codes": 2}, r"'codes' must be < n_slices=2 \(got 2\)"),
        ],
    )
    def test_accuracy_out_of_range_rejected_as_before(
        self, blocks: str, change: dict[str, int], match: str
    ) -> None:
        """Negative labels and codes beyond n_slices raise the per-example path's message."""
        codes, y, pred = labelled(40, 2, 3, seed=5)
        arrays = {"codes": codes, "y": y, "pred": pred}
        for name, value in change.items():
            arrays[name][33] = value
        with pytest.raises(InvalidInput, match=match):
            sliced_metric("accuracy", arrays["codes"], 2, arrays["y"], arrays["pred"])

    @pytest.mark.parametrize("n_classes", [127, 128, 129, 300])
    def test_negative_small_integers_with_many_classes(self, blocks: str, n_classes: int) -> None:
        """A negative int8 label is rejected however many classes there are."""
        y = np.array([0, 1, 2, -1, 1], dtype=np.int8)
        with pytest.raises(InvalidInput, match="'y_true' must be class indices"):
            sliced_confusion(np.zeros(5, dtype=int), 1, y, np.ones(5, dtype=np.int8), n_classes)

    def test_uint64_beyond_int64_rejected(self, blocks: str) -> None:
        """uint64 labels of 2**63 or more are rejected, as their int64 conversion is negative."""
        y = np.array([0, 2**63, 1], dtype=np.uint64)
        with pytest.raises(InvalidInput, match="'y_true' must be (integer )?class indices"):
            sliced_metric("accuracy", [0, 0, 1], 2, y, np.array([0, 1, 1], dtype=np.uint64))

    def test_large_tables_take_the_whole_array_path(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A table with more cells than examples is counted on whole arrays, same result."""
        codes, y, pred = labelled(20, 3, 4, seed=6)
        expected = sliced_confusion(codes, 3, y, pred, 4)
        monkeypatch.setattr(sliced_module, "_MAX_FAST_CELLS", 4)
        assert expected.tolist() == sliced_confusion(codes, 3, y, pred, 4).tolist()

    def test_huge_class_count_rejects_bad_labels_before_allocating(self) -> None:
        """A table too large to allocate raises InvalidInput naming n_classes, not MemoryError."""
        with pytest.raises(InvalidInput, match="'n_classes' 100,000 with 'n_slices' 1"):
            sliced_confusion([0, 0], 1, [0, -1], [0, 1], 100_000)

    def test_sliced_sum_values_checked_in_blocks(self, blocks: str) -> None:
        """Weighted sums reject NaN with the whole-array message, and equal one bincount."""
        codes, _, _ = labelled(40, 3, 2, seed=7)
        values = np.random.default_rng(7).random(40)
        expected = np.bincount(codes, weights=values, minlength=3)
        np.testing.assert_array_equal(expected, sliced_sum(codes, 3, values))
        values[30] = np.nan
        with pytest.raises(InvalidInput, match=r"'values' must be finite .* first at index 30"):
            sliced_sum(codes, 3, values)

    def test_accuracy_code_out_of_range_rejected(self, blocks: str) -> None:
        """sliced_accuracy names a code beyond n_slices, as the whole-array path does."""
        codes = np.zeros(20, dtype=int)
        codes[15] = 3
        with pytest.raises(InvalidInput, match=r"'codes' must be < n_slices=2 \(got 3\)"):
            sliced_accuracy(codes, 2, np.ones(20, dtype=bool))

    def test_unusual_inputs_take_the_general_path(self, blocks: str) -> None:
        """Big-endian labels, integer weights and a ragged list are handled as before."""
        codes, y, pred = labelled(30, 2, 3, seed=8)
        expected = sliced_metric("accuracy", codes, 2, y, pred)
        swapped = sliced_metric("accuracy", codes, 2, y.astype(">i8"), pred.astype(">i4"))
        np.testing.assert_array_equal(expected, swapped)
        assert [2.0, 1.0] == sliced_sum([0, 1, 0], 2, [1, 1, 1]).tolist()
        with pytest.raises(InvalidInput, match="'y_pred' must be array-like"):
            sliced_metric("accuracy", [0, 1], 2, [0, 1], [[0], [0, 1]])


@pytest.mark.parametrize("k", [1, 3, 300, 70_000])
def test_slice_groups_is_the_stable_argsort(k: int) -> None:
    """slice_groups gives numpy's stable argsort of the codes, whatever their dtype."""
    rng = np.random.default_rng(k)
    codes = rng.integers(0, k, 80_000)
    order, offsets = slice_groups(codes, k)
    np.testing.assert_array_equal(np.argsort(codes, kind="stable"), order)
    np.testing.assert_array_equal(np.bincount(codes, minlength=k).cumsum(), offsets[1:])


class TestJointCounts:
    """The blocked joint counts equal a bincount of the predicted labels."""

    @pytest.mark.parametrize("c", [2, 3, 10])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_joint_counts_match_predicted_labels(self, c: int, dtype: type) -> None:
        """Tables per slicing (and the correctness counts) equal np.add.at on argmax labels."""
        from mlchecks.stats._joint import joint_counts
        from mlchecks.stats.metrics import predicted_labels

        rng = np.random.default_rng(c)
        n, k = 150_000, 7
        y = rng.integers(0, c, n)
        cand = rng.random((n, c)).astype(dtype)
        cand[::5, 0] = cand[::5, -1]  # ties: the first maximum wins
        base = np.asfortranarray(rng.random((n, c)).astype(dtype))[::1]
        codes = rng.integers(0, k, n)
        pc, pb = predicted_labels(cand), predicted_labels(base)
        expected = np.zeros((k, c, c, c), dtype=np.int64)
        np.add.at(expected, (codes, y, pc, pb), 1)
        tables = joint_counts([codes, None], [k, 1], y, cand, base, c)
        assert tables is not None
        np.testing.assert_array_equal(expected, tables[0])
        np.testing.assert_array_equal(expected.sum(axis=0), tables[1][0])
        right = joint_counts([codes], [k], y, cand, base, c, joint=False)
        assert right is not None
        want = np.zeros((k, 2, 2), dtype=np.int64)
        np.add.at(want, (codes, (pc == y).astype(int), (pb == y).astype(int)), 1)
        np.testing.assert_array_equal(want, right[0])

    def test_joint_counts_take_labels_and_probabilities_of_class_one(self) -> None:
        """1-D probabilities (p > 0.5) and 1-D labels are predicted classes as they are."""
        from mlchecks.stats._joint import joint_counts

        y = np.array([0, 1, 1, 0, 1])
        prob = np.array([0.2, 0.5, 0.9, 0.7, 0.6])
        labels = np.array([0, 1, 0, 0, True]).astype(bool)
        table = joint_counts([None], [1], y, prob, labels, 2)
        assert table is not None
        expected = np.zeros((2, 2, 2), dtype=np.int64)
        np.add.at(expected, (y, (prob > 0.5).astype(int), labels.astype(int)), 1)
        np.testing.assert_array_equal(expected, table[0][0])

    def test_joint_counts_decline_what_they_do_not_take(self) -> None:
        """Out-of-range labels or probabilities, or too large a table, give None."""
        from mlchecks.stats._joint import joint_counts

        y = np.array([0, 1])
        assert joint_counts([None], [1], y, np.array([0.2, 1.5]), np.array([0, 1]), 2) is None
        assert joint_counts([None], [1], np.array([0, 2]), np.array([0, 1]), y, 2) is None
        assert joint_counts([None], [1], y, np.array([0, 3]), y, 2) is None
        assert joint_counts([np.zeros(2, dtype=int)], [10_000], y, y, y, 100) is None


def test_mean_terms_equal_whole_array_moments() -> None:
    """Blocked, merged moments equal whole-array sums and squared deviations to rounding."""
    from mlchecks.stats._joint import mean_terms

    rng = np.random.default_rng(0)
    n, k = 300_000, 13
    a, b = rng.exponential(size=n), rng.exponential(size=n)
    codes = rng.integers(0, k, n)
    overall, sliced = mean_terms(lambda r: (a[r], b[r]), n, [codes], [k])
    d = a - b
    assert overall[0][0] == n
    np.testing.assert_allclose(overall[1][0], a.sum(), rtol=1e-12)
    np.testing.assert_allclose(overall[4][0], np.square(a - a.mean()).sum(), rtol=1e-12)
    np.testing.assert_allclose(overall[6][0], np.square(d - d.mean()).sum(), rtol=1e-12)
    for s in (0, 5, 12):
        part = d[codes == s]
        np.testing.assert_allclose(sliced[5][s], part.mean(), rtol=1e-12)
        np.testing.assert_allclose(sliced[6][s], np.square(part - part.mean()).sum(), rtol=1e-12)
