"""Tests for mlchecks.demo.features: `FeaturePipeline` batch and serving paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlchecks.demo.data import make_table, rows, split_table
from mlchecks.demo.faults import SkewedPipeline
from mlchecks.demo.features import FeaturePipeline
from mlchecks.exceptions import InvalidInput


@pytest.fixture(scope="module")
def parts() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    splits = split_table(make_table(4000, seed=0))
    return splits.train, splits.valid


@pytest.fixture(scope="module")
def pipeline(parts: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]) -> FeaturePipeline:
    return FeaturePipeline().fit(parts[0])


def row_matrix(pipeline: FeaturePipeline, table: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([pipeline.transform_row(row) for row in rows(table)])


class TestFeaturePipeline:
    def test_feature_names(self, pipeline: FeaturePipeline) -> None:
        """Numeric columns first, then one indicator per sorted category of each column."""
        names = pipeline.feature_names
        assert ["age", "income", "tenure_months", "plan=basic", "plan=plus", "plan=pro"] == names[
            :6
        ]
        assert ["channel=partner", "channel=phone", "channel=store", "channel=web"] == names[6:10]
        assert 18 == pipeline.n_features == len(names)
        assert "region=east" in names

    def test_training_features_are_standardized(
        self, pipeline: FeaturePipeline, parts: tuple[dict[str, np.ndarray], ...]
    ) -> None:
        """On the training table the numeric features have mean 0 and standard deviation 1."""
        X = pipeline.transform(parts[0])
        np.testing.assert_allclose(X[:, :3].mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(X[:, :3].std(axis=0), 1.0, rtol=1e-12)

    def test_one_hot_blocks_sum_to_one(
        self, pipeline: FeaturePipeline, parts: tuple[dict[str, np.ndarray], ...]
    ) -> None:
        """Each categorical block has exactly one 1 per row for known categories."""
        X = pipeline.transform(parts[1])
        assert np.array_equal(np.ones(len(X)), X[:, 3:6].sum(axis=1))
        assert np.array_equal(np.ones(len(X)), X[:, 10:18].sum(axis=1))

    def test_row_path_agrees_with_batch_path(
        self, pipeline: FeaturePipeline, parts: tuple[dict[str, np.ndarray], ...]
    ) -> None:
        """transform_row over every validation row matches transform to 1e-12."""
        batch = pipeline.transform(parts[1])
        served = row_matrix(pipeline, parts[1])
        assert batch.shape == served.shape
        np.testing.assert_allclose(served, batch, rtol=0, atol=1e-12)

    def test_unknown_category_maps_to_zero_block(self, pipeline: FeaturePipeline) -> None:
        """A category not seen by fit gives an all-zero one-hot block in both paths."""
        row = {**rows(make_table(1, seed=0))[0], "plan": "enterprise"}
        served = pipeline.transform_row(row)
        batch = pipeline.transform({k: np.array([v]) for k, v in row.items()})[0]
        assert np.array_equal(np.zeros(3), served[3:6])
        np.testing.assert_allclose(served, batch, rtol=0, atol=1e-12)

    def test_missing_column_is_named(self, pipeline: FeaturePipeline) -> None:
        """A row or table without a needed column raises InvalidInput naming it."""
        row = rows(make_table(1, seed=0))[0]
        del row["tenure_months"]
        with pytest.raises(InvalidInput, match="lacks column 'tenure_months'"):
            pipeline.transform_row(row)
        with pytest.raises(InvalidInput, match="lacks column 'tenure_months'"):
            pipeline.transform({k: np.array([v]) for k, v in row.items()})

    def test_ragged_table_is_rejected(self, pipeline: FeaturePipeline) -> None:
        """Columns of different lengths are rejected, naming the column."""
        table = {k: np.array([v]) for k, v in rows(make_table(1, seed=0))[0].items()}
        table["income"] = np.array([1.0, 2.0])
        with pytest.raises(InvalidInput, match="column 'income' has 2 rows, expected 1"):
            pipeline.transform(table)

    def test_non_positive_log_column_is_rejected(self, pipeline: FeaturePipeline) -> None:
        """Income must be positive to take its log, in both paths."""
        row = {**rows(make_table(1, seed=0))[0], "income": 0.0}
        with pytest.raises(InvalidInput, match="'income' must be > 0"):
            pipeline.transform_row(row)
        with pytest.raises(InvalidInput, match="'income' must be > 0"):
            pipeline.transform({k: np.array([v]) for k, v in row.items()})

    def test_non_finite_value_is_rejected(self, pipeline: FeaturePipeline) -> None:
        """NaN in a numeric column is rejected with the column named."""
        row = {**rows(make_table(1, seed=0))[0], "age": float("nan")}
        with pytest.raises(InvalidInput, match="'age' must be finite"):
            pipeline.transform_row(row)

    def test_unfitted_pipeline_raises(self) -> None:
        """Using a pipeline before fit says to call fit."""
        with pytest.raises(InvalidInput, match="not fitted"):
            FeaturePipeline().transform_row({})

    def test_constructor_validation(self) -> None:
        """A log column that is not numeric is rejected."""
        with pytest.raises(InvalidInput, match="'log' must name numeric columns"):
            FeaturePipeline(log=("plan",))

    def test_constant_column_gets_unit_std(self) -> None:
        """A constant numeric column is centred and left unscaled (std 1)."""
        table = {"x": np.full(4, 3.0), "c": np.array(["a", "b", "a", "b"])}
        pipeline = FeaturePipeline(["x"], ["c"], log=()).fit(table)
        assert 1.0 == pipeline.stds["x"]
        assert np.array_equal(np.zeros(4), pipeline.transform(table)[:, 0])

    def test_dict_round_trip_through_json(
        self, pipeline: FeaturePipeline, parts: tuple[dict[str, np.ndarray], ...]
    ) -> None:
        """to_dict survives JSON and from_dict rebuilds a pipeline with identical output."""
        rebuilt = FeaturePipeline.from_dict(json.loads(json.dumps(pipeline.to_dict())))
        assert np.array_equal(pipeline.transform(parts[1]), rebuilt.transform(parts[1]))

    def test_from_dict_rejects_garbage(self) -> None:
        """A dict that is not to_dict output is rejected."""
        with pytest.raises(InvalidInput, match="to_dict"):
            FeaturePipeline.from_dict({"numeric": ["a"]})


class TestSkewedPipeline:
    def test_serving_path_disagrees_only_on_income(
        self, parts: tuple[dict[str, np.ndarray], ...]
    ) -> None:
        """Under training_serving_skew the row path differs from the batch path in 'income'."""
        skewed = SkewedPipeline().fit(parts[0])
        batch = skewed.transform(parts[1])
        served = row_matrix(skewed, parts[1])
        differs = np.abs(served - batch).max(axis=0) > 1e-9
        assert ["income"] == [n for n, d in zip(skewed.feature_names, differs, strict=True) if d]
        assert float(np.abs(served - batch).max()) > 1.0

    def test_batch_path_is_healthy(
        self, pipeline: FeaturePipeline, parts: tuple[dict[str, np.ndarray], ...]
    ) -> None:
        """The training features of the skewed pipeline equal the healthy pipeline's."""
        skewed = SkewedPipeline().fit(parts[0])
        assert np.array_equal(pipeline.transform(parts[1]), skewed.transform(parts[1]))
