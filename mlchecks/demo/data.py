"""The demo system's raw data: a synthetic customer table with a known ground truth.

A *table* is a plain ``dict`` mapping a column name to a 1-D numpy array, all of one
length. `make_table` draws one deterministically from a seed:

- numeric columns ``age`` (years), ``income`` (log-normal, currency units) and
  ``tenure_months``;
- categorical string columns ``plan`` (``basic``, ``plus``, ``pro``), ``channel`` (``web``,
  ``store``, ``partner``, ``phone``) and ``region``, the slice column (8 regions of unequal
  size; ``east`` is the smallest, about 4 % of rows);
- the integer label ``label`` in ``{0, 1, 2}`` (``stay``, ``upgrade``, ``churn``), drawn from
  a fixed rule over the other columns plus Gumbel noise, so the best possible accuracy is
  about 0.83 and a small model reaches about 0.8.

`rows` turns a table into the list of per-row dicts the serving path receives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from mlchecks._validate import check_int, describe
from mlchecks.exceptions import InvalidInput

__all__ = [
    "CATEGORICAL_COLUMNS",
    "CHANNELS",
    "CLASSES",
    "COLUMNS",
    "LABEL_COLUMN",
    "NUMERIC_COLUMNS",
    "PLANS",
    "REGIONS",
    "SLICE_COLUMN",
    "Splits",
    "from_rows",
    "make_table",
    "region_codes",
    "rows",
    "split_table",
    "take",
]

Table = dict[str, np.ndarray]

NUMERIC_COLUMNS: tuple[str, ...] = ("age", "income", "tenure_months")
CATEGORICAL_COLUMNS: tuple[str, ...] = ("plan", "channel", "region")
SLICE_COLUMN = "region"
LABEL_COLUMN = "label"
COLUMNS: tuple[str, ...] = (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS, LABEL_COLUMN)

REGIONS: tuple[str, ...] = (
    "north",
    "south",
    "east",
    "west",
    "central",
    "coast",
    "mountain",
    "islands",
)
PLANS: tuple[str, ...] = ("basic", "plus", "pro")
CHANNELS: tuple[str, ...] = ("web", "store", "partner", "phone")
CLASSES: tuple[str, ...] = ("stay", "upgrade", "churn")

_REGION_SHARE = np.array([0.18, 0.16, 0.04, 0.15, 0.14, 0.12, 0.11, 0.10])
_PLAN_SHARE = np.array([0.50, 0.32, 0.18])
_CHANNEL_SHARE = np.array([0.45, 0.30, 0.20, 0.05])
# Ground-truth effects of each region on the "upgrade" and "churn" scores.
_REGION_UPGRADE = np.array([0.3, -0.2, 0.4, 0.0, -0.3, 0.2, -0.4, 0.1])
_REGION_CHURN = np.array([-0.2, 0.3, 0.2, 0.0, 0.1, -0.3, 0.4, -0.1])
_SIGNAL = 3.0  # scale of the scores against unit Gumbel noise: sets the best accuracy


def _check_seed(value: Any, name: str = "seed") -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidInput(f"'{name}' must be a non-negative integer (got {describe(value)})")
    return int(value)


def make_table(n_rows: int, seed: int = 0) -> Table:
    """Draw a synthetic customer table; the same ``seed`` gives a bitwise identical table.

    Args:
        n_rows: number of rows (>= 1).
        seed: non-negative integer seed.

    Returns:
        A dict of equal-length 1-D arrays: float64 ``age``, ``income``, ``tenure_months``;
        unicode ``plan``, ``channel``, ``region``; int64 ``label``.

    Raises:
        InvalidInput: ``n_rows`` or ``seed`` is not a valid integer.

    >>> table = make_table(5, seed=0)
    >>> list(table)
    ['age', 'income', 'tenure_months', 'plan', 'channel', 'region', 'label']
    >>> table["label"].dtype, len(table["region"])
    (dtype('int64'), 5)
    """
    n = check_int(n_rows, "n_rows", minimum=1)
    rng = np.random.default_rng(_check_seed(seed))
    region = rng.choice(len(REGIONS), size=n, p=_REGION_SHARE)
    plan = rng.choice(len(PLANS), size=n, p=_PLAN_SHARE)
    channel = rng.choice(len(CHANNELS), size=n, p=_CHANNEL_SHARE)
    age = np.clip(rng.normal(41.0, 12.0, n), 18.0, 85.0).round()
    log_income = rng.normal(10.6 + 0.15 * plan, 0.45)
    income = np.exp(log_income).round(2)
    tenure = np.minimum(1.0 + np.floor(rng.exponential(30.0, n)), 240.0)

    # The ground truth: per-class scores from the raw columns, then noisy argmax.
    a = (age - 41.0) / 12.0
    li = (np.log(income) - 10.7) / 0.45
    t = (tenure - 30.0) / 30.0
    scores = np.zeros((n, len(CLASSES)))
    scores[:, 1] = (
        1.2 * li
        + 0.5 * a
        - 1.2 * (plan == 2)
        + 0.4 * (plan == 1)
        + 0.4 * (channel == 0)
        + _REGION_UPGRADE[region]
        + 0.1
    )
    scores[:, 2] = (
        -1.3 * t
        + 0.9 * (plan == 0)
        + 0.6 * (channel == 2)
        - 0.4 * (channel == 1)
        + 0.5 * a**2
        + _REGION_CHURN[region]
        - 1.0
    )
    label = np.argmax(_SIGNAL * scores + rng.gumbel(size=scores.shape), axis=1)

    return {
        "age": age,
        "income": income,
        "tenure_months": tenure,
        "plan": np.asarray(PLANS)[plan],
        "channel": np.asarray(CHANNELS)[channel],
        "region": np.asarray(REGIONS)[region],
        "label": label.astype(np.int64),
    }


def _length(table: Mapping[str, Any], name: str = "table") -> int:
    if not isinstance(table, Mapping) or not table:
        raise InvalidInput(f"'{name}' must be a non-empty dict of columns (got {describe(table)})")
    lengths = {column: len(values) for column, values in table.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidInput(f"'{name}' columns must have equal lengths (got {lengths})")
    return next(iter(lengths.values()))


def rows(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table as a list of per-row dicts of Python scalars (what serving receives).

    Args:
        table: a column table (as from `make_table`).

    Returns:
        One dict per row, column name -> ``float``, ``str`` or ``int``.

    Raises:
        InvalidInput: ``table`` is empty or its columns differ in length.

    >>> rows(make_table(1, seed=3))[0]["plan"]
    'basic'
    """
    _length(table)
    columns = {name: np.asarray(values).tolist() for name, values in table.items()}
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def from_rows(records: Sequence[Mapping[str, Any]]) -> Table:
    """Invert `rows`: a column table from a non-empty list of row dicts with the same keys.

    Raises:
        InvalidInput: ``records`` is empty or the rows do not share the same columns.

    >>> table = make_table(4, seed=1)
    >>> back = from_rows(rows(table))
    >>> all(np.array_equal(back[c], table[c]) for c in table)
    True
    """
    if isinstance(records, Mapping) or not isinstance(records, Sequence) or not records:
        raise InvalidInput(f"'records' must be a non-empty list of dicts (got {describe(records)})")
    names = list(records[0])
    for i, record in enumerate(records):
        if not isinstance(record, Mapping) or list(record) != names:
            raise InvalidInput(
                f"'records' must share the columns of row 0 {names} (row {i} is {describe(record)})"
            )
    return {name: np.asarray([record[name] for record in records]) for name in names}


def take(table: Mapping[str, np.ndarray], index: Any) -> Table:
    """The rows of ``table`` selected by ``index`` (a slice, integer array or boolean mask).

    >>> len(take(make_table(10, seed=0), slice(0, 4))["age"])
    4
    """
    _length(table)
    return {name: np.asarray(values)[index] for name, values in table.items()}


def region_codes(values: Any) -> np.ndarray:
    """Integer slice codes (positions in `REGIONS`) for an array of region names.

    Raises:
        InvalidInput: a value is not one of `REGIONS`.

    >>> region_codes(np.array(["east", "north"]))
    array([2, 0])
    """
    names = np.asarray(values)
    lookup = {name: code for code, name in enumerate(REGIONS)}
    codes = np.fromiter((lookup.get(str(v), -1) for v in names.tolist()), np.int64, names.size)
    if (codes < 0).any():
        bad = str(names.reshape(-1)[int(np.argmax(codes < 0))])
        raise InvalidInput(f"'region' must be one of {list(REGIONS)} (got {bad!r})")
    return codes


class Splits(NamedTuple):
    """Disjoint train, validation and holdout tables (see `split_table`).

    >>> Splits._fields
    ('train', 'valid', 'holdout')
    """

    train: Table
    valid: Table
    holdout: Table


def split_table(
    table: Mapping[str, np.ndarray], valid: float = 0.25, holdout: float = 0.125
) -> Splits:
    """Split ``table`` into contiguous train / validation / holdout parts (rows are i.i.d.).

    Args:
        table: a column table.
        valid: fraction of rows for validation, in (0, 1).
        holdout: fraction of rows held out (production traffic in the demo), in (0, 1).

    Returns:
        `Splits` with the first ``1 - valid - holdout`` of rows as ``train``, then
        ``valid``, then ``holdout``; every part has at least one row.

    Raises:
        InvalidInput: a fraction is out of range or a part would be empty.

    >>> parts = split_table(make_table(8, seed=0), valid=0.25, holdout=0.25)
    >>> [len(part["label"]) for part in parts]
    [4, 2, 2]
    """
    n = _length(table)
    for name, value in (("valid", valid), ("holdout", holdout)):
        if not (isinstance(value, int | float) and 0.0 < value < 1.0):
            raise InvalidInput(f"'{name}' must be a fraction in (0, 1) (got {value!r})")
    n_valid = math.floor(n * valid)
    n_holdout = math.floor(n * holdout)
    n_train = n - n_valid - n_holdout
    if min(n_train, n_valid, n_holdout) < 1:
        raise InvalidInput(
            f"cannot split {n} rows into train/valid/holdout of {n_train}/{n_valid}/{n_holdout}: "
            "every part needs at least one row"
        )
    return Splits(
        take(table, slice(0, n_train)),
        take(table, slice(n_train, n_train + n_valid)),
        take(table, slice(n_train + n_valid, n)),
    )
