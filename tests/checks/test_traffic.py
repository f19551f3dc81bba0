"""Tests for the output normalisation in mlchecks.checks._traffic: `as_rows` and friends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlchecks.checks._traffic import as_rows, json_outputs, outputs_equal


class TestAsRows:
    @pytest.mark.parametrize(
        ("outputs", "n_rows", "expected"),
        [
            ([[0.2, 0.8]], 1, [[0.2, 0.8]]),
            (np.array([0.2, 0.8]), 1, [[0.2, 0.8]]),
            (np.array([[[0.2, 0.8]]]), 1, [[0.2, 0.8]]),
            (np.float32(0.5), 1, [[0.5]]),
            ([0.5], 1, [[0.5]]),
            ([1.0, 2.0, 3.0], 3, [[1.0], [2.0], [3.0]]),
            ([[1.0, 2.0, 3.0]], 3, [[1.0], [2.0], [3.0]]),
            (np.array([[[1.0], [2.0]]]), 2, [[1.0], [2.0]]),
            ([[1, 2], [3, 4]], 2, [[1.0, 2.0], [3.0, 4.0]]),
        ],
    )
    def test_maps_every_format_to_n_by_k_floats(
        self, outputs: Any, n_rows: int, expected: list[list[float]]
    ) -> None:
        """Batch axes of one request drop, (n,) becomes (n, 1), lists become float arrays."""
        rows = as_rows(outputs, n_rows)
        assert rows is not None
        assert np.float64 == rows.dtype
        assert expected == rows.tolist()

    @pytest.mark.parametrize(
        ("outputs", "n_rows"), [(["a", "b"], 2), ([1.0, 2.0], 3), ({"x": 1}, 1)]
    )
    def test_is_none_when_the_rows_cannot_be_had(self, outputs: Any, n_rows: int) -> None:
        """Non-numeric outputs, or a row count that does not fit, give None."""
        assert as_rows(outputs, n_rows) is None

    def test_served_and_offline_sides_agree(self) -> None:
        """A one-row answer and the offline batch row normalise to the same array."""
        offline = as_rows(np.array([[0.1, 0.9], [0.7, 0.3]]), 2)
        assert offline is not None
        served = as_rows(np.array([[0.7, 0.3]]), 1)
        assert served is not None
        assert np.array_equal(offline[1:2], served)


class TestJsonOutputs:
    def test_numbers_as_nested_lists(self) -> None:
        """Outputs become nested lists of Python floats; NaN becomes its name."""
        assert [[0.5, "nan"]] == json_outputs(np.array([0.5, np.nan]), 1)

    def test_non_numeric_is_none(self) -> None:
        """Outputs that are not numbers are not shown as a repr string."""
        assert json_outputs(np.array(["x"]), 1) is None


class TestOutputsEqual:
    def test_a_batch_axis_of_one_is_not_a_difference(self) -> None:
        """(1, k) and (k,) with the same bytes are equal, bitwise."""
        assert outputs_equal(np.array([[0.1, 0.9]]), np.array([0.1, 0.9]), exact=True)

    def test_different_values_differ(self) -> None:
        """Different values differ however they are shaped."""
        assert not outputs_equal(np.array([[0.1, 0.9]]), np.array([0.2, 0.8]), exact=True)

    def test_different_dtypes_differ_bitwise(self) -> None:
        """Bitwise means the same dtype too."""
        a = np.array([0.5], dtype=np.float32)
        assert not outputs_equal(a, a.astype(np.float64), exact=True)
        assert outputs_equal(a, a.astype(np.float64), exact=False)
