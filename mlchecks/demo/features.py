"""The demo system's feature pipeline: standardized numeric columns and one-hot categories.

`FeaturePipeline` has two code paths over the same learned constants, as real systems do:
`FeaturePipeline.transform` is vectorized numpy over a whole column table (training and
offline evaluation), `FeaturePipeline.transform_row` is plain Python over one row dict
(the serving path). On healthy code they agree to about 1e-15; training/serving skew is
when they do not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlchecks._validate import describe
from mlchecks.demo.data import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS
from mlchecks.exceptions import InvalidInput

__all__ = ["FeaturePipeline"]


def _names(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput(f"'{name}' must be a sequence of column names (got {describe(value)})")
    names = tuple(value)
    if not all(isinstance(v, str) and v for v in names):
        raise InvalidInput(f"'{name}' must hold non-empty strings (got {names!r})")
    return names


class FeaturePipeline:
    """Standardize numeric columns (optionally after a log) and one-hot encode categories.

    Feature order: the numeric columns in the order given, then for each categorical column
    one indicator per category of its vocabulary (the sorted distinct values seen by `fit`).
    Names read ``"age"``, ``"income"``, ``"plan=basic"``.

    Standardization uses the training mean and population standard deviation (a constant
    column gets standard deviation 1). A category not seen by `fit` maps to an all-zero
    one-hot block. Log columns must be positive.

    Args:
        numeric: numeric input columns.
        categorical: categorical (string) input columns.
        log: numeric columns that are log-transformed before standardizing.

    Raises:
        InvalidInput: a column list is malformed, or ``log`` names a non-numeric column.

    >>> from mlchecks.demo.data import make_table, rows
    >>> table = make_table(200, seed=0)
    >>> pipeline = FeaturePipeline().fit(table)
    >>> pipeline.feature_names[:5]
    ['age', 'income', 'tenure_months', 'plan=basic', 'plan=plus']
    >>> X = pipeline.transform(table)
    >>> X.shape
    (200, 18)
    >>> bool(np.allclose(pipeline.transform_row(rows(table)[0]), X[0], rtol=0, atol=1e-12))
    True
    """

    def __init__(
        self,
        numeric: Sequence[str] = NUMERIC_COLUMNS,
        categorical: Sequence[str] = CATEGORICAL_COLUMNS,
        *,
        log: Sequence[str] = ("income",),
    ) -> None:
        self.numeric = _names(numeric, "numeric")
        self.categorical = _names(categorical, "categorical")
        self.log = _names(log, "log")
        if not self.numeric and not self.categorical:
            raise InvalidInput("'numeric' and 'categorical' must not both be empty")
        overlap = set(self.numeric) & set(self.categorical)
        if overlap:
            raise InvalidInput(f"columns {sorted(overlap)} are both numeric and categorical")
        stray = [c for c in self.log if c not in self.numeric]
        if stray:
            raise InvalidInput(
                f"'log' must name numeric columns {list(self.numeric)} (got {stray})"
            )
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}
        self.vocabulary: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------------ description

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The raw columns the pipeline reads, numeric first."""
        return (*self.numeric, *self.categorical)

    @property
    def is_fitted(self) -> bool:
        """True once `fit` (or `from_dict`) has set the constants."""
        return bool(self.means or self.vocabulary)

    @property
    def feature_names(self) -> list[str]:
        """One name per output feature, in output order."""
        self._require_fitted()
        names = list(self.numeric)
        for column in self.categorical:
            names.extend(f"{column}={value}" for value in self.vocabulary[column])
        return names

    @property
    def n_features(self) -> int:
        """The width of the feature matrix."""
        return len(self.feature_names)

    def __repr__(self) -> str:
        width = f", n_features={self.n_features}" if self.is_fitted else ", unfitted"
        return (
            f"{type(self).__name__}(numeric={list(self.numeric)}, "
            f"categorical={list(self.categorical)}, log={list(self.log)}{width})"
        )

    # ---------------------------------------------------------------------- fitting

    def fit(self, table: Mapping[str, Any]) -> FeaturePipeline:
        """Learn means, standard deviations and vocabularies from ``table``; returns self.

        Raises:
            InvalidInput: a column is missing, empty, not finite, or a log column is not
                positive.
        """
        means: dict[str, float] = {}
        stds: dict[str, float] = {}
        for column in self.numeric:
            values = self._numeric_column(table, column)
            means[column] = float(values.mean())
            std = float(values.std())
            stds[column] = std if std > 0.0 else 1.0
        vocabulary: dict[str, tuple[str, ...]] = {}
        for column in self.categorical:
            values = self._column(table, column)
            vocabulary[column] = tuple(sorted({str(v) for v in values.tolist()}))
        self.means, self.stds, self.vocabulary = means, stds, vocabulary
        return self

    # ------------------------------------------------------------ batch path (numpy)

    def transform(self, table: Mapping[str, Any]) -> np.ndarray:
        """Features of a whole column table: a float64 array of shape (n_rows, n_features).

        Raises:
            InvalidInput: the pipeline is not fitted, or a column is missing or invalid.
        """
        self._require_fitted()
        n = len(self._column(table, self.input_columns[0]))
        out = np.zeros((n, self.n_features))
        for j, column in enumerate(self.numeric):
            values = self._numeric_column(table, column)
            if len(values) != n:
                raise InvalidInput(f"column {column!r} has {len(values)} rows, expected {n}")
            out[:, j] = (values - self.means[column]) / self.stds[column]
        offset = len(self.numeric)
        for column in self.categorical:
            vocab = np.asarray(self.vocabulary[column])
            values = self._column(table, column).astype(str)
            if len(values) != n:
                raise InvalidInput(f"column {column!r} has {len(values)} rows, expected {n}")
            position = np.searchsorted(vocab, values)
            clipped = np.minimum(position, len(vocab) - 1)
            known = vocab[clipped] == values  # unknown categories keep an all-zero block
            out[np.flatnonzero(known), offset + clipped[known]] = 1.0
            offset += len(vocab)
        return out

    def _column(self, table: Mapping[str, Any], column: str) -> np.ndarray:
        if not isinstance(table, Mapping):
            raise InvalidInput(f"'table' must be a dict of columns (got {describe(table)})")
        if column not in table:
            raise InvalidInput(f"'table' lacks column {column!r} (has {sorted(table)})")
        values = np.asarray(table[column])
        if values.ndim != 1 or values.size == 0:
            raise InvalidInput(
                f"column {column!r} must be a non-empty 1-D array ({describe(values)})"
            )
        return values

    def _numeric_column(self, table: Mapping[str, Any], column: str) -> np.ndarray:
        raw = self._column(table, column)
        try:
            values = raw.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(f"column {column!r} must be numeric (got {describe(raw)})") from None
        if not np.isfinite(values).all():
            raise InvalidInput(f"column {column!r} must be finite (got NaN or infinity)")
        if column in self.log:
            if (values <= 0).any():
                raise InvalidInput(
                    f"column {column!r} must be > 0 to take its log (got {values.min()!r})"
                )
            values = np.log(values)
        return values

    # -------------------------------------------------------- row path (plain Python)

    def transform_row(self, row: Mapping[str, Any]) -> np.ndarray:
        """Features of one raw row dict, computed in plain Python: shape (n_features,).

        This is the serving path; it shares only the learned constants with `transform`.

        Raises:
            InvalidInput: the pipeline is not fitted, or the row lacks a column or has an
                invalid value.
        """
        self._require_fitted()
        if not isinstance(row, Mapping):
            raise InvalidInput(f"'row' must be a dict of column -> value (got {describe(row)})")
        features: list[float] = []
        constants = self._serving_constants()
        for column in self.numeric:
            value = self._row_number(row, column)
            mean, std = constants[column]
            features.append((value - mean) / std)
        for column in self.categorical:
            if column not in row:
                raise InvalidInput(f"'row' lacks column {column!r} (has {sorted(row)})")
            category = str(row[column])
            features.extend(1.0 if category == v else 0.0 for v in self.vocabulary[column])
        return np.array(features, dtype=np.float64)

    def _serving_constants(self) -> dict[str, tuple[float, float]]:
        """The (mean, std) pair the serving path uses for each numeric column."""
        return {column: (self.means[column], self.stds[column]) for column in self.numeric}

    def _row_number(self, row: Mapping[str, Any], column: str) -> float:
        if column not in row:
            raise InvalidInput(f"'row' lacks column {column!r} (has {sorted(row)})")
        try:
            value = float(row[column])
        except (TypeError, ValueError):
            raise InvalidInput(
                f"column {column!r} must be a number (got {row[column]!r})"
            ) from None
        if not math.isfinite(value):
            raise InvalidInput(f"column {column!r} must be finite (got {value!r})")
        if column in self.log:
            if value <= 0.0:
                raise InvalidInput(f"column {column!r} must be > 0 to take its log (got {value!r})")
            value = math.log(value)
        return value

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """The configuration and learned constants as JSON-safe Python objects.

        >>> from mlchecks.demo.data import make_table
        >>> p = FeaturePipeline().fit(make_table(50, seed=0))
        >>> FeaturePipeline.from_dict(p.to_dict()).to_dict() == p.to_dict()
        True
        """
        self._require_fitted()
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "log": list(self.log),
            "means": dict(self.means),
            "stds": dict(self.stds),
            "vocabulary": {column: list(values) for column, values in self.vocabulary.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeaturePipeline:
        """Rebuild a fitted pipeline from `to_dict` output.

        Raises:
            InvalidInput: a key is missing or the constants do not match the columns.
        """
        try:
            pipeline = cls(data["numeric"], data["categorical"], log=data["log"])
            means = {str(k): float(v) for k, v in data["means"].items()}
            stds = {str(k): float(v) for k, v in data["stds"].items()}
            vocabulary = {str(k): tuple(map(str, v)) for k, v in data["vocabulary"].items()}
        except (KeyError, AttributeError, TypeError) as exc:
            raise InvalidInput(
                f"'data' is not a FeaturePipeline.to_dict() output: {exc!r}"
            ) from None
        if set(means) != set(pipeline.numeric) or set(stds) != set(pipeline.numeric):
            raise InvalidInput(f"'data' means/stds must cover exactly {list(pipeline.numeric)}")
        if set(vocabulary) != set(pipeline.categorical):
            raise InvalidInput(f"'data' vocabulary must cover exactly {list(pipeline.categorical)}")
        if any(v != tuple(sorted(v)) for v in vocabulary.values()):
            raise InvalidInput("'data' vocabularies must be sorted")
        pipeline.means, pipeline.stds, pipeline.vocabulary = means, stds, vocabulary
        return pipeline

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise InvalidInput(f"{type(self).__name__} is not fitted: call fit(table) first")
