"""Conversion of measured values to JSON-safe Python objects (the boundary of every result)."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlchecks._text import redact

__all__ = ["decode_float", "encode_float", "jsonable", "loads", "to_float"]

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
    output is strict JSON and survives a round trip unchanged. Every string (keys too) has
    its URL passwords hidden (`mlchecks._text.redact`): a result never carries a credential.

    >>> import numpy as np
    >>> jsonable({"a": np.float32(0.5), 1: (np.int64(2), float("nan"), np.float64("inf"))})
    {'a': 0.5, '1': [2, 'NaN', 'Infinity']}
    >>> jsonable({"uri": "postgresql://ml:pw@db/runs"})
    {'uri': 'postgresql://ml:***@db/runs'}
    """
    if isinstance(value, np.generic):  # before float/int: np.float64 subclasses float
        return jsonable(value.item())
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {redact(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return redact(str(value))


def loads(data: bytes | str, what: str = "the text") -> Any:
    """``json.loads(data)``, with JSON nested too deeply for Python a `ValueError` too.

    `json.loads` meets ``[[[[...`` (100,000 levels) with `RecursionError`, which no
    ``except ValueError`` around a parse expects; here every undecodable input is a
    `ValueError` naming ``what`` was read.

    >>> loads('{"a": [1]}')
    {'a': [1]}
    >>> loads("[" * 100_000, "the answer")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: the answer is not valid JSON: nested deeper than ... levels
    """
    import json  # on first use, not with `import mlchecks`

    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(
            f"{what} is not valid JSON: nested deeper than {sys.getrecursionlimit():,} levels"
        ) from None
