"""Serving systems the checks drive: implementations of `ModelServer` and `Deployment`.

`InProcessServer` (standard library, numpy and attrs only) loads eagerly. Adapters that
talk to external systems load on first attribute access, so importing this package never
pulls in an HTTP stack or a model registry client.

>>> from mlchecks.serving import InProcessServer
>>> server = InProcessServer().add("1", len)
>>> server.set_live("1")
>>> server.infer([1, 2, 3]).outputs
3
"""

from __future__ import annotations

import importlib
from typing import Any

from mlchecks.serving.inprocess import InProcessServer

# Public name -> the submodule that defines it, imported on first attribute access.
_LAZY: dict[str, str] = {
    "MLflowDeployment": "mlchecks.serving.mlflow",
    "MLflowEndpoint": "mlchecks.serving.mlflow",
    "V2Deployment": "mlchecks.serving.v2",
    "V2Endpoint": "mlchecks.serving.v2",
    "V2Error": "mlchecks.serving.v2",
}

__all__ = ["InProcessServer", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlchecks.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
