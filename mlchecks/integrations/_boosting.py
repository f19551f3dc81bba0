"""Pieces shared by the XGBoost and LightGBM adapters: callback state and checkpoint files.

A checkpoint is a directory: the booster written by the framework's own ``save_model`` (or
your ``save`` callable) in ``model.<ext>``, the adapter's step counter and booster metadata
in ``trainer.json``, and (with the default save only) the callback objects, pickled, in
``callbacks.pkl``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput
from mlchecks.integrations._leaves import flatten


def callback_state(callbacks: Sequence[Any]) -> dict[str, np.ndarray]:
    """The numeric attributes of each callback object, as ``callbacks/<i>/<attribute>``."""
    out: dict[str, np.ndarray] = {}
    for i, callback in enumerate(callbacks):
        flatten(f"callbacks/{i}", callback, out, strip_underscore=True)
    return out


def estimator_or_params(params: Any, estimator: type, what: str) -> tuple[Any, dict[str, Any]]:
    """``(model, params)`` from a trainer's ``params``: a scikit-learn-API estimator of
    type ``estimator`` (returned as the model, with no params) or a mapping of params.

    Raises:
        InvalidInput: ``params`` is neither (``what`` names the estimator kind).
    """
    if isinstance(params, estimator):
        return params, {}
    if not isinstance(params, Mapping):
        raise InvalidInput(f"'params' must be a mapping or {what} (got {describe(params)})")
    return None, dict(params)


def check_rounds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"'rounds_per_step' must be an int >= 1 (got {describe(value)})")
    return value


def check_callable(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise InvalidInput(f"'{name}' must be callable or None (got {describe(value)})")
    return value


def check_pair(batch: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise InvalidInput(f"'batch' must be {what} (got {describe(batch)})")
    return batch[0], batch[1]


def last_loss(
    history: Mapping[str, Mapping[str, Sequence[Any]]], data: str, metric: str | None
) -> float:
    """The last recorded value of ``metric`` (None: the last metric listed) on ``data``."""
    if data not in history:
        raise InvalidInput(
            f"'loss_data' {data!r} is not an evaluated data set (got {sorted(history)})"
        )
    metrics = history[data]
    name = list(metrics)[-1] if metric is None and metrics else metric
    if name is None or name not in metrics:
        raise InvalidInput(f"'loss_metric' {name!r} was not evaluated (got {sorted(metrics)})")
    values = metrics[name]
    value = values[-1]
    return float(value[0] if isinstance(value, tuple) else value)


def write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    (directory / "trainer.json").write_text(json.dumps(dict(meta), sort_keys=True))


def read_meta(directory: Path) -> dict[str, Any]:
    data = json.loads((directory / "trainer.json").read_text())
    if not isinstance(data, dict):  # pragma: no cover - written by write_meta
        raise InvalidInput(f"{directory / 'trainer.json'} does not hold a mapping")
    return data


def write_callbacks(directory: Path, callbacks: Sequence[Any]) -> None:
    with open(directory / "callbacks.pkl", "wb") as handle:
        pickle.dump(list(callbacks), handle, protocol=pickle.HIGHEST_PROTOCOL)


def read_callbacks(directory: Path) -> list[Any] | None:
    file = directory / "callbacks.pkl"
    if not file.exists():
        return None
    with open(file, "rb") as handle:
        return list(pickle.load(handle))  # documented: trusted checkpoints only


def write_pickle(file: Path, value: Any) -> None:
    with open(file, "wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)


def read_pickle(file: Path) -> Any:
    with open(file, "rb") as handle:
        return pickle.load(handle)  # documented: trusted checkpoints only


Save = Callable[[Any, str], None]
Load = Callable[[str], Any]
