"""Tests for mlchecks.serving.mlflow: `MLflowDeployment` and `MLflowEndpoint`.

They run against a real MLflow registry on a sqlite file in a temporary directory (the
session fixture ``mlflow_registry``). Each test uses an alias of its own.
"""

from __future__ import annotations

import itertools
import sys
import threading
from typing import Any

import numpy as np
import pytest

from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.protocols import Deployment, Endpoint, ModelServer
from mlchecks.result import Status
from mlchecks.serving.mlflow import MLflowDeployment, MLflowEndpoint

# Warnings MLflow 3.17 raises when its modules are imported: its SQL store triggers a
# SQLAlchemy 2.1 deprecation warning, mlflow.pyfunc a UserWarning about its own type hints.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
    ),
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]
_aliases = itertools.count()


@pytest.fixture
def alias() -> str:
    """An alias no other test uses (the registry is shared by the session)."""
    return f"live_{next(_aliases)}"


@pytest.fixture
def deployment(mlflow_registry: Any, alias: str) -> MLflowDeployment:
    return MLflowDeployment(mlflow_registry.name, alias, tracking_uri=mlflow_registry.tracking_uri)


class TestConstruction:
    @pytest.mark.parametrize(
        ("args", "kwargs", "match"),
        [
            (("",), {}, "'model_name' must be a non-empty string"),
            (("m", ""), {}, "'alias' must be a non-empty string"),
            (("m",), {"tracking_uri": 3}, "'tracking_uri' must be a non-empty string or None"),
            (("m",), {"registry_uri": ""}, "'registry_uri' must be a non-empty string or None"),
        ],
    )
    def test_rejects_bad_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], match: str
    ) -> None:
        """Names and URIs are validated, the message naming the argument."""
        with pytest.raises(InvalidInput, match=match):
            MLflowDeployment(*args, **kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"alias_ttl_s": -1.0}, "'alias_ttl_s' must be a finite number >= 0"),
            ({"cache_size": 0}, "'cache_size' must be an integer >= 1"),
            ({"loader": "mlflow"}, "'loader' must be callable"),
            ({"method": ""}, "'method' must be a non-empty string"),
        ],
    )
    def test_endpoint_rejects_bad_arguments(self, kwargs: dict[str, Any], match: str) -> None:
        """The endpoint's own settings are validated too."""
        with pytest.raises(InvalidInput, match=match):
            MLflowEndpoint("m", **kwargs)

    def test_missing_mlflow_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without mlflow the error is an ImportError giving the install command."""
        monkeypatch.setitem(sys.modules, "mlflow", None)
        with pytest.raises(MissingDependency, match=r'pip install "mlchecks-infra\[mlflow\]"'):
            MLflowDeployment("m")
        with pytest.raises(ImportError, match="MLflowEndpoint needs mlflow"):
            MLflowEndpoint("m")


@pytest.mark.integration
class TestMLflowDeployment:
    def test_is_a_deployment(self, deployment: MLflowDeployment) -> None:
        """MLflowDeployment satisfies the Deployment protocol."""
        assert isinstance(deployment, Deployment)

    def test_alias_is_the_live_pointer(self, deployment: MLflowDeployment) -> None:
        """set_live moves the alias; live_version reads it back; unset is None."""
        assert deployment.live_version() is None
        deployment.set_live("2")
        assert "2" == deployment.live_version()
        deployment.set_live("1")  # roll back
        assert "1" == deployment.live_version()
        version = deployment.client.get_model_version_by_alias(
            deployment.model_name, deployment.alias
        )
        assert "1" == str(version.version)

    def test_lists_the_registered_versions(self, deployment: MLflowDeployment) -> None:
        """versions() lists every registered version in order."""
        assert ("1", "2", "3") == deployment.versions()

    @pytest.mark.parametrize("version", ["9", "abc"])
    def test_set_live_refuses_unknown_versions(
        self, deployment: MLflowDeployment, version: str
    ) -> None:
        """A version that is not registered is refused, listing the versions; nothing moves."""
        deployment.set_live("1")
        with pytest.raises(InvalidInput, match=r"has no such version \(versions: '1', '2', '3'\)"):
            deployment.set_live(version)
        assert "1" == deployment.live_version()

    def test_unknown_model_is_invalid_input(self, mlflow_registry: Any) -> None:
        """Reading the alias of a model that is not registered names the model."""
        deployment = MLflowDeployment("nope", tracking_uri=mlflow_registry.tracking_uri)
        with pytest.raises(InvalidInput, match="registered model 'nope' does not exist"):
            deployment.live_version()


@pytest.mark.integration
class TestMLflowEndpoint:
    def test_is_a_model_server(self, deployment: MLflowDeployment) -> None:
        """MLflowEndpoint satisfies ModelServer (and Endpoint)."""
        endpoint = deployment.endpoint()
        assert isinstance(endpoint, ModelServer)
        assert isinstance(endpoint, Endpoint)

    def test_serves_the_aliased_version(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """Unversioned requests are predicted by the version the alias points to."""
        deployment.set_live("1")
        response = deployment.endpoint().infer(mlflow_registry.inputs)
        assert (None, "1") == (response.error, response.version)
        np.testing.assert_array_equal(mlflow_registry.expected("1"), response.outputs)

    def test_follows_the_alias_when_it_moves(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """After the alias moves, the next request is served by the new version."""
        endpoint = deployment.endpoint()
        deployment.set_live("3")
        assert "3" == endpoint.infer(mlflow_registry.inputs).version
        deployment.set_live("1")
        response = endpoint.infer(mlflow_registry.inputs)
        assert "1" == response.version
        np.testing.assert_array_equal(mlflow_registry.expected("1"), response.outputs)

    def test_alias_ttl_reuses_the_resolution(self, deployment: MLflowDeployment) -> None:
        """With alias_ttl_s the alias is not asked again within the TTL."""
        endpoint = deployment.endpoint(alias_ttl_s=3600.0)
        deployment.set_live("1")
        assert "1" == endpoint.resolve()
        deployment.set_live("2")
        assert "1" == endpoint.resolve()
        assert "2" == deployment.endpoint().resolve()

    def test_unset_alias_is_a_server_error(self, deployment: MLflowDeployment) -> None:
        """With no live version, requests fail as server errors saying so."""
        response = deployment.endpoint().infer(np.zeros((1, 4)))
        assert "server" == response.error_kind
        assert "is not set: nothing is live" in response.error

    def test_named_versions_and_failures(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """A named version is served; unknown versions are client errors; bad inputs server."""
        endpoint = deployment.endpoint()
        assert "2" == endpoint.infer(mlflow_registry.inputs, version="2").version
        unknown = endpoint.infer(mlflow_registry.inputs, version="9")
        assert ("client", "9") == (unknown.error_kind, unknown.version)
        assert "has no such version" in unknown.error
        bad = endpoint.infer(np.zeros((2, 3)), version="2")
        assert "server" == bad.error_kind
        assert bad.error.startswith("ValueError: X has 3 features")

    def test_predict_proba_through_the_native_flavor(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """loader=mlflow.sklearn.load_model and method='predict_proba' give probabilities."""
        import mlflow.sklearn

        endpoint = deployment.endpoint(loader=mlflow.sklearn.load_model, method="predict_proba")
        response = endpoint.infer(mlflow_registry.inputs, version="1")
        expected = mlflow_registry.models["1"].predict_proba(mlflow_registry.inputs)
        np.testing.assert_allclose(expected, response.outputs, rtol=1e-12)

    def test_a_model_without_the_method_is_a_client_error(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """A method the loaded model lacks is reported, naming it."""
        response = deployment.endpoint(method="predict_proba").infer(np.zeros((1, 4)), "1")
        assert "client" == response.error_kind
        assert "has no method 'predict_proba'" in response.error

    def test_cache_load_unload(self, deployment: MLflowDeployment) -> None:
        """load warms the cache, the least recently used version goes first, unload evicts."""
        endpoint = deployment.endpoint(cache_size=2)
        endpoint.load("1")
        endpoint.load("2")
        assert ("1", "2") == endpoint.versions()
        endpoint.load("1")  # used again: now most recent
        endpoint.load("3")
        assert ("1", "3") == endpoint.versions()
        endpoint.unload("1")
        assert ("3",) == endpoint.versions()
        with pytest.raises(InvalidInput, match=r"not loaded \(loaded: '3'\)"):
            endpoint.unload("1")
        with pytest.raises(InvalidInput, match="has no such version"):
            endpoint.load("9")

    def test_threads_while_the_alias_flips(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """Four threads' requests all succeed while another thread moves the alias."""
        endpoint = deployment.endpoint()
        deployment.set_live("1")
        endpoint.load("1")
        endpoint.load("2")
        seen: list[str | None] = []
        failed: list[str | None] = []

        def send() -> None:
            for _ in range(15):
                response = endpoint.infer(mlflow_registry.inputs[:5])
                (seen if response.ok else failed).append(response.version or response.error)

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for version in ("2", "1") * 5:
            deployment.set_live(version)
        for thread in threads:
            thread.join()
        assert [] == failed
        assert {"1", "2"} >= set(seen)
        assert 60 == len(seen)


@pytest.mark.integration
class TestRollbackCheckOnMLflow:
    def test_moving_the_alias_back_passes(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """Deploying the flipped version and moving the alias back loses no request."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment.set_live("1")
        probes = [mlflow_registry.inputs[i : i + 1] for i in range(20)]
        check = RollbackCheck(
            deployment,
            deployment.endpoint(),
            "3",
            probe_inputs=probes,
            n_repeats=3,
            request_rate=200.0,
            n_settle_requests=30,
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert 0.0 == result.metrics["n_failed_requests_total"]
        assert "1" == deployment.live_version()

    def test_alias_cached_longer_than_the_limit_fails(
        self, mlflow_registry: Any, deployment: MLflowDeployment
    ) -> None:
        """An endpoint that re-reads the alias every 1.5 s cannot roll back within 0.25 s."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment.set_live("1")
        probes = [mlflow_registry.inputs[i : i + 1] for i in range(20)]
        check = RollbackCheck(
            deployment,
            deployment.endpoint(alias_ttl_s=1.5),
            "3",
            probe_inputs=probes,
            n_repeats=1,
            max_rollback_s=0.25,
            request_rate=200.0,
            n_settle_requests=30,
            budget_s=5.0,
        )
        result = check.run()
        finding = result.finding("rollback_time")
        assert (Status.FAIL, Status.FAIL) == (result.status, finding.status)
        assert finding.observed > 0.25
        assert "1" == deployment.live_version()
