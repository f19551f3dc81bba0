"""Serving systems the checks drive, and the record of the traffic they served.

Implementations of `ModelServer` and `Deployment`; `Record`/`Label` and their readers
(`read_records`: JSON Lines request logs and CloudEvents payload logs); `JudgeService`,
the canary judge for deployment controllers.

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
    "CloudEventPairer": "mlchecks.serving.cloudevents",
    "Label": "mlchecks.serving.records",
    "ReadStats": "mlchecks.serving.record_log",
    "Record": "mlchecks.serving.records",
    "RecordLog": "mlchecks.serving.record_log",
    "event_from_http": "mlchecks.serving.cloudevents",
    "parse_line": "mlchecks.serving.records",
    "read_records": "mlchecks.serving.record_log",
    "EndpointsDeployment": "mlchecks.serving.endpoints",
    "JudgeService": "mlchecks.serving.judge_service",
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
