"""Conversion of measured values to JSON-safe Python objects (the boundary of every result)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["decode_float", "encode_float", "jsonable", "to_float"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    """Return ``value`` unchanged when finite, else the string JSON tools agree on."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: float | int | str) -> float:
    """Invert `encode_float`."""
    if isinstance(value, str):
        try:
            return _NONFINITE[value]
        except KeyError:
            raise ValueError(f"not a JSON float: {value!r}") from None
    return float(value)


def to_float(value: Any) -> float:
    """Convert a number (Python or numpy scalar, 0-d array) to a Python float."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise TypeError(f"expected a scalar, got an array of shape {value.shape}")
        value = value.item()
    return float(value)


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON-safe Python objects.

    numpy scalars become Python numbers, arrays and tuples become lists, mapping keys become
    strings, and non-finite floats become ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` so the
    output is strict JSON and survives a round trip unchanged.

    >>> import numpy as np
    >>> jsonable({"a": np.float32(0.5), 1: (np.int64(2), float("nan"), np.float64("inf"))})
    {'a': 0.5, '1': [2, 'NaN', 'Infinity']}
    """
    if isinstance(value, np.generic):  # before float/int: np.float64 subclasses float
        return jsonable(value.item())
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)
