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

from typing import Any

from mlchecks._lazy import LazyNames
from mlchecks.serving.inprocess import InProcessServer

# Public name -> the submodule that defines it, imported on first attribute access.
_LAZY: dict[str, str] = {
    "EndpointsDeployment": "mlchecks.serving.endpoints",
    "MLflowDeployment": "mlchecks.serving.mlflow",
    "MLflowEndpoint": "mlchecks.serving.mlflow",
    "RestEndpoint": "mlchecks.serving.rest",
    "V2Deployment": "mlchecks.serving.v2",
    "V2Endpoint": "mlchecks.serving.v2",
    "V2Error": "mlchecks.serving.v2",
    "V2GrpcEndpoint": "mlchecks.serving.grpc",
    "V2ModelsDeployment": "mlchecks.serving.v2",
}

__all__ = ["InProcessServer", *sorted(_LAZY)]


_loader = LazyNames(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    return _loader.load(name)


def __dir__() -> list[str]:
    return _loader.dir(__all__)
