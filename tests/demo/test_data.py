"""Tests for mlchecks.demo.data: the synthetic table, rows, splits and slice codes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlchecks.demo.data import (
    CHANNELS,
    COLUMNS,
    PLANS,
    REGIONS,
    from_rows,
    make_table,
    region_codes,
    rows,
    split_table,
    take,
)
from mlchecks.exceptions import InvalidInput


@pytest.fixture(scope="module")
def table() -> dict[str, np.ndarray]:
    return make_table(8000, seed=0)


class TestMakeTable:
    def test_same_seed_gives_bitwise_identical_table(self, table: dict[str, np.ndarray]) -> None:
        """Two tables drawn with the same seed are identical, column by column and bit by bit."""
        again = make_table(8000, seed=0)
        assert list(table) == list(again)
        for column in table:
            assert table[column].dtype == again[column].dtype
            assert table[column].tobytes() == again[column].tobytes()

    def test_different_seeds_give_different_tables(self, table: dict[str, np.ndarray]) -> None:
        """A different seed draws different values."""
        other = make_table(8000, seed=1)
        assert not np.array_equal(table["income"], other["income"])

    def test_columns_and_dtypes(self, table: dict[str, np.ndarray]) -> None:
        """Documented columns: numeric float64, categorical strings, int64 labels."""
        assert list(COLUMNS) == list(table)
        for column in ("age", "income", "tenure_months"):
            assert np.float64 == table[column].dtype
        for column in ("plan", "channel", "region"):
            assert "U" == table[column].dtype.kind
        assert np.int64 == table["label"].dtype
        assert {8000} == {len(v) for v in table.values()}

    def test_value_domains(self, table: dict[str, np.ndarray]) -> None:
        """Categories come from the documented sets and numbers are in plausible ranges."""
        assert set(PLANS) == set(table["plan"].tolist())
        assert set(CHANNELS) == set(table["channel"].tolist())
        assert set(REGIONS) == set(table["region"].tolist())
        assert {0, 1, 2} == set(table["label"].tolist())
        assert table["age"].min() >= 18
        assert table["age"].max() <= 85
        assert (table["income"] > 0).all()
        assert table["tenure_months"].min() >= 1

    def test_east_is_the_smallest_region(self, table: dict[str, np.ndarray]) -> None:
        """Region 'east' holds about 4 % of rows, the fewest of any region."""
        counts = np.bincount(region_codes(table["region"]), minlength=len(REGIONS))
        assert "east" == REGIONS[int(np.argmin(counts))]
        assert 0.03 < counts[REGIONS.index("east")] / len(table["region"]) < 0.05

    def test_phone_channel_is_rare(self, table: dict[str, np.ndarray]) -> None:
        """About 5 % of rows come through the 'phone' channel."""
        assert 0.03 < float(np.mean(table["channel"] == "phone")) < 0.07

    def test_no_class_dominates(self, table: dict[str, np.ndarray]) -> None:
        """Every class holds between 15 % and 50 % of labels, so accuracy is informative."""
        shares = np.bincount(table["label"]) / len(table["label"])
        assert (shares > 0.15).all()
        assert (shares < 0.5).all()

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"n_rows": 0}, "'n_rows' must be an integer >= 1"),
            ({"n_rows": 2.5}, "'n_rows' must be an integer >= 1"),
            ({"n_rows": 10, "seed": -1}, "'seed' must be a non-negative integer"),
            ({"n_rows": 10, "seed": True}, "'seed' must be a non-negative integer"),
        ],
    )
    def test_rejects_bad_arguments(self, kwargs: dict[str, Any], message: str) -> None:
        """Invalid sizes and seeds raise InvalidInput naming the argument."""
        with pytest.raises(InvalidInput, match=message):
            make_table(**kwargs)


class TestRows:
    def test_rows_hold_python_scalars(self) -> None:
        """Each row is a dict of Python float, str and int values."""
        row = rows(make_table(3, seed=0))[0]
        assert list(COLUMNS) == list(row)
        assert isinstance(row["age"], float)
        assert isinstance(row["plan"], str)
        assert isinstance(row["label"], int)

    def test_from_rows_inverts_rows(self, table: dict[str, np.ndarray]) -> None:
        """from_rows(rows(t)) equals t column by column."""
        part = take(table, slice(0, 50))
        back = from_rows(rows(part))
        for column in part:
            assert np.array_equal(part[column], back[column])

    def test_rejects_ragged_table(self) -> None:
        """Columns of different lengths are rejected."""
        with pytest.raises(InvalidInput, match="equal lengths"):
            rows({"a": np.zeros(2), "b": np.zeros(3)})

    @pytest.mark.parametrize("records", [[], {"a": 1}, [{"a": 1}, {"b": 2}]])
    def test_from_rows_rejects_bad_records(self, records: Any) -> None:
        """Empty input, a single dict, or rows with different columns are rejected."""
        with pytest.raises(InvalidInput, match="'records'"):
            from_rows(records)


class TestSplitTable:
    def test_default_split_sizes_and_order(self, table: dict[str, np.ndarray]) -> None:
        """The default split is 62.5 / 25 / 12.5 % of rows, contiguous and in order."""
        parts = split_table(table)
        assert [5000, 2000, 1000] == [len(p["label"]) for p in parts]
        joined = np.concatenate([p["income"] for p in parts])
        assert np.array_equal(table["income"], joined)

    @pytest.mark.parametrize(("valid", "holdout"), [(0.0, 0.1), (0.5, 1.0), (0.6, 0.5)])
    def test_rejects_bad_fractions(
        self, table: dict[str, np.ndarray], valid: float, holdout: float
    ) -> None:
        """Fractions outside (0, 1), or leaving no training rows, are rejected."""
        with pytest.raises(InvalidInput):
            split_table(table, valid=valid, holdout=holdout)


class TestRegionCodes:
    def test_codes_are_positions_in_regions(self) -> None:
        """Each region name maps to its index in REGIONS."""
        assert [0, 2, 7] == region_codes(np.array(["north", "east", "islands"])).tolist()

    def test_unknown_region_is_rejected(self) -> None:
        """A name outside REGIONS raises InvalidInput naming it."""
        with pytest.raises(InvalidInput, match="got 'atlantis'"):
            region_codes(["north", "atlantis"])
