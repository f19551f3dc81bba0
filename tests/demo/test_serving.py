"""Tests for mlchecks.demo.serving: `ServedModel`, `register` and `DemoService`."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from mlchecks.demo.serving import DemoService, ServedModel, register
from mlchecks.demo.system import DemoSystem
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, Endpoint, Response
from mlchecks.serving import InProcessServer


@pytest.fixture(scope="module")
def system() -> DemoSystem:
    return DemoSystem(seed=0)


@pytest.fixture(scope="module")
def requests(system: DemoSystem) -> list[dict[str, Any]]:
    return system.production_rows()[:40]


def under_load(
    service: DemoService, requests: list[dict[str, Any]], action: Any
) -> tuple[list[Response], list[Response]]:
    """Run ``action()`` while another thread sends live requests.

    Returns the background thread's responses and those of 20 requests sent after the action.
    """
    responses: list[Response] = []
    stop = threading.Event()
    started = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            responses.append(service.infer(requests[i % len(requests)]))
            i += 1
            if i == 20:
                started.set()

    thread = threading.Thread(target=load)
    thread.start()
    try:
        started.wait(timeout=10)
        action()
        after = [service.infer(requests[i]) for i in range(20)]
    finally:
        stop.set()
        thread.join()
    return responses, after


class TestServedModel:
    def test_one_row_and_a_list_of_rows(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """A row dict gives shape (3,); a list of rows gives (n, 3) with the same values."""
        model = system.served_model("1")
        single = model(requests[0])
        batch = model(requests[:5])
        assert (3,) == single.shape
        assert (5, 3) == batch.shape
        np.testing.assert_allclose(batch[0], single, rtol=0, atol=1e-15)

    def test_served_equals_offline_on_healthy_code(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """The serving path reproduces the offline (batch path) predictions to 1e-12."""
        served = system.served_model("2")(requests)
        np.testing.assert_allclose(
            served, system.offline_predictions("2", requests), rtol=0, atol=1e-12
        )

    def test_snapshot_is_independent_of_later_training(self, system: DemoSystem) -> None:
        """A served model keeps the parameters it was built with."""
        trainer = system.make_trainer(0)
        model = ServedModel.from_trainer(trainer, system.pipeline, version="x")
        row = system.production_rows()[0]
        before = model(row)
        trainer.train_step(system.batches(0)[0])
        assert np.array_equal(before, model(row))

    @pytest.mark.parametrize("inputs", [[], "north", 3, [{"a": 1}, 2]])
    def test_rejects_bad_inputs(self, system: DemoSystem, inputs: Any) -> None:
        """Anything but a row dict or a non-empty list of them is rejected."""
        with pytest.raises(InvalidInput, match="'inputs' must be a row dict"):
            system.served_model("1")(inputs)

    def test_register_adds_a_version(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """register() puts a trainer's snapshot into a server under the given version."""
        server = InProcessServer()
        register(server, "7", system.baseline().trainer, system.pipeline)
        response = server.infer(requests[0], version="7")
        assert response.ok
        assert "7" == response.version
        np.testing.assert_allclose(
            response.outputs, system.served_model("1")(requests[0]), rtol=0, atol=0
        )


class TestDemoService:
    def test_implements_endpoint_and_deployment(self, system: DemoSystem) -> None:
        """The service is both an Endpoint and a Deployment."""
        service = system.service()
        assert isinstance(service, Endpoint)
        assert isinstance(service, Deployment)

    def test_repeated_live_requests_hit_the_cache(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """The second identical live request is a cache hit with the same outputs and version."""
        service = system.service()
        first = service.infer(requests[0])
        second = service.infer(requests[0])
        assert {"hits": 1, "misses": 1, "size": 1} == service.cache_info()
        assert first.version == second.version == "1"
        assert np.array_equal(first.outputs, second.outputs)

    def test_versioned_and_split_traffic_bypass_the_cache(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """Requests naming a version, and traffic split by weights, are never cached."""
        service = system.service()
        service.infer(requests[0], version="2")
        service.server.set_weights({"1": 0.5, "2": 0.5})
        service.infer(requests[0])
        assert 0 == service.cache_info()["size"]

    def test_cache_size_bounds_the_cache(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """The cache keeps at most cache_size responses; 0 disables it."""
        service = system.service(cache_size=3)
        for row in requests[:10]:
            service.infer(row)
        assert 3 == service.cache_info()["size"]
        off = system.service(cache_size=0)
        off.infer(requests[0])
        assert 0 == off.cache_info()["size"]
        with pytest.raises(InvalidInput, match="'cache_size' must be an integer >= 0"):
            system.service(cache_size=-1)

    def test_deploy_and_rollback_are_recorded(self, system: DemoSystem) -> None:
        """set_live moves the live version and history() lists every live version in order."""
        service = system.service()
        service.set_live("2")
        assert "2" == service.live_version()
        service.set_live("2")  # already live: nothing happens
        service.set_live("1")
        assert ("1", "2", "1") == service.history()

    def test_set_live_rejects_unloaded_version(self, system: DemoSystem) -> None:
        """Switching to a version the server has not loaded raises, listing the loaded ones."""
        with pytest.raises(InvalidInput, match=r"'9': it is not loaded \(loaded: \['1', '2'\]\)"):
            system.service().set_live("9")

    def test_healthy_rollback_loses_no_request(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """Rolling back under concurrent live traffic fails no request (an atomic switch)."""
        service = system.service()
        service.set_live("2")
        during, after = under_load(service, requests, lambda: service.set_live("1"))
        assert [] == [r.error for r in during + after if not r.ok]
        assert {"1"} == {r.version for r in after}

    def test_healthy_rollback_serves_the_baseline_again(
        self, system: DemoSystem, requests: list[dict[str, Any]]
    ) -> None:
        """After a rollback, cached or not, responses come from the baseline with its outputs."""
        service = system.service()
        baseline = [service.infer(row).outputs for row in requests]
        service.set_live("2")
        for row in requests:
            assert "2" == service.infer(row).version
        service.set_live("1")
        after = [service.infer(row) for row in requests]
        assert {"1"} == {r.version for r in after}
        for expected, response in zip(baseline, after, strict=True):
            assert np.array_equal(expected, response.outputs)
