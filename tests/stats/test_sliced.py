from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings

from mlchecks.exceptions import InvalidInput
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
            (np.array([], dtype=str), "non-empty 1-D"),
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
