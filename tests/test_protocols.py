"""Tests for mlchecks.protocols: the structural interfaces and `Response`."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlchecks.protocols import Deployment, Endpoint, ModelServer, Response, Trainer
from mlchecks.serving import InProcessServer


class _InferOnly:
    def infer(self, inputs: Any, version: str | None = None) -> Response:
        return Response(outputs=inputs, version="1", latency_s=0.0)


class _MinimalTrainer:
    def train_step(self, batch: Any) -> float:
        return 0.0

    def predict(self, inputs: Any) -> Any:
        return inputs

    def state(self) -> dict[str, Any]:
        return {}

    def save(self, path: Any) -> None:
        pass

    def load(self, path: Any) -> None:
        pass


class TestProtocols:
    def test_inprocess_server_is_a_model_server(self) -> None:
        """InProcessServer satisfies ModelServer and, through it, Endpoint."""
        server = InProcessServer()
        assert isinstance(server, ModelServer)
        assert isinstance(server, Endpoint)

    def test_inprocess_server_is_a_deployment(self) -> None:
        """InProcessServer satisfies Deployment (live_version and set_live)."""
        assert isinstance(InProcessServer(), Deployment)

    def test_class_with_only_infer_is_an_endpoint(self) -> None:
        """A user class with just infer() is an Endpoint, but not a ModelServer or Deployment."""
        endpoint = _InferOnly()
        assert isinstance(endpoint, Endpoint)
        assert not isinstance(endpoint, ModelServer)
        assert not isinstance(endpoint, Deployment)

    def test_minimal_trainer_is_a_trainer(self) -> None:
        """A class with the five required methods is a Trainer; a bare object is not."""
        assert isinstance(_MinimalTrainer(), Trainer)
        assert not isinstance(object(), Trainer)


class TestResponse:
    def test_ok_without_error(self) -> None:
        """A response without an error is ok."""
        assert Response(outputs=[0.2, 0.8], version="2", latency_s=0.01).ok

    def test_not_ok_with_error(self) -> None:
        """A response carrying an error is not ok."""
        response = Response(error="ValueError: bad input", error_kind="server")
        assert not response.ok
        assert response.outputs is None

    def test_latency_becomes_a_python_float(self) -> None:
        """A numpy latency is converted to a plain Python float."""
        response = Response(latency_s=np.float32(0.5))
        assert type(response.latency_s) is float
        assert 0.5 == response.latency_s

    def test_defaults(self) -> None:
        """Every field has a default, so Response() is an empty successful response."""
        assert Response(None, None, 0.0, None, None) == Response()
