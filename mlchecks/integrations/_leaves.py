"""The numeric leaves of a Python object, as named arrays: what adapters put in ``state()``.

>>> out = {}
>>> flatten("cb", {"best": [0.5, 0.25], "_round": 3, "name": "valid"}, out)
>>> sorted(out), out["cb/best"].tolist()
(['cb/_round', 'cb/best'], [0.5, 0.25])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["flatten"]


def flatten(
    prefix: str,
    value: Any,
    out: dict[str, np.ndarray],
    depth: int = 0,
    *,
    max_depth: int = 6,
    strip_underscore: bool = False,
) -> None:
    """Numeric leaves of ``value`` into ``out`` under ``prefix/...``.

    Objects (their ``__dict__``), mappings and sequences are walked down to ``max_depth``;
    numbers, numeric and string arrays and random generators (their state) become entries;
    strings, classes and objects without attributes are skipped. ``strip_underscore`` names
    a private attribute ``_x`` as ``x``.
    """

    def walk(name: str, item: Any, level: int) -> None:
        flatten(name, item, out, level, max_depth=max_depth, strip_underscore=strip_underscore)

    if value is None or isinstance(value, str | bytes | type):
        return
    if isinstance(value, np.random.RandomState):
        _, key, pos, has_gauss, cached = value.get_state(legacy=True)
        out[f"{prefix}/key"] = np.array(key, copy=True)
        out[f"{prefix}/pos"] = np.array([pos, has_gauss], dtype=np.int64)
        out[f"{prefix}/gauss"] = np.array(cached, dtype=np.float64)
        return
    if isinstance(value, np.random.Generator):
        walk(prefix, value.bit_generator.state, depth)
        return
    if isinstance(value, bool | int | float | complex | np.generic):
        array = np.array(value)
        if array.dtype.kind in "biufc":
            out[prefix] = array
        return
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufcUS":
            out[prefix] = np.array(value, copy=True)
        return
    if depth >= max_depth:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            walk(f"{prefix}/{key}", item, depth + 1)
        return
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, int | float | np.number) for v in value):
            out[prefix] = np.array(value)
            return
        for i, item in enumerate(value):
            walk(f"{prefix}/{i}", item, depth + 1)
        return
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        for key, item in attributes.items():
            walk(f"{prefix}/{key.lstrip('_') if strip_underscore else key}", item, depth + 1)
