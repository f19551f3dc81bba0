"""`RestEndpoint` and `EndpointsDeployment` against a real FastAPI service (uvicorn).

Three services run the user's own FastAPI app (tests/serving/_rest_services.py), one per
model version: "1" healthy, "2" a healthy retrain, "3" trained on inverted labels. The
checks run on them with the same code as on a V2 server; only the deployment differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _pages import run_server_blocks
from _rest_services import KINDS, FastAPIService, data, rows, train

from mlchecks.protocols import Deployment, ModelServer
from mlchecks.result import Status
from mlchecks.serving import EndpointsDeployment, RestEndpoint

pytest.importorskip("fastapi", reason="the FastAPI tests need fastapi and uvicorn")
pytest.importorskip("uvicorn", reason="the FastAPI tests need fastapi and uvicorn")


class Services:
    """The running services and the models they serve (for offline predictions)."""

    def __init__(self, root: Path) -> None:
        self.models = {v: train(kind, seed=int(v)) for v, kind in KINDS.items()}
        self.services = {v: FastAPIService(root, v, m) for v, m in self.models.items()}
        x, _ = data()
        self.x = x

    def deployment(self, live: str = "1") -> EndpointsDeployment:
        endpoints = {v: s.endpoint() for v, s in self.services.items()}
        return EndpointsDeployment(endpoints, live=live)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    made = Services(tmp_path_factory.mktemp("fastapi"))
    try:
        for service in made.services.values():
            service.start()
        for service in made.services.values():
            service.wait_ready()
        yield made
    finally:
        for service in made.services.values():
            service.stop()


def canary(services: Services, candidate: str, size: int, **overrides: Any) -> Any:
    from mlchecks.checks.canary import CanaryCheck

    x = services.x
    traffic = rows(x[np.random.default_rng(7).permutation(len(x))], size) * 16
    settings: dict[str, Any] = {
        "offline_predictions": services.models[candidate].predict_proba(x[:40]),
        "traffic": lambda: iter(traffic),
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150 if size == 1 else 40,
        "budget_requests": 4000,
        "alpha": 0.01,
        "max_latency_ratio": 3.0,
    }
    settings.update(overrides)
    probes = rows(x[:40], size)
    return CanaryCheck(services.deployment(), candidate, probe_inputs=probes, **settings)


@pytest.mark.integration
class TestRestEndpointOnFastAPI:
    def test_one_row_and_a_batch_give_the_offline_predictions(self, services: Services) -> None:
        """The answer's predictions, bitwise equal to predict_proba where it was trained;
        the version from model_version; a request id sent; nothing retried."""
        endpoint = services.services["1"].endpoint()
        for inputs in (services.x[:1], services.x[:8]):
            response = endpoint.infer(inputs)
            assert (None, "1", 0) == (response.error, response.version, response.n_retries)
            expected = services.models["1"].predict_proba(inputs)
            assert expected.tobytes() == response.outputs.tobytes()
            assert response.request_id is not None
            assert 32 == len(response.request_id)

    def test_errors_map_to_kinds(self, services: Services) -> None:
        """A body FastAPI rejects is the client's (422, with its detail); a route that does
        not exist too (404); an answer decode cannot read is the server's, and so is a model
        that raises (500); a named version is refused before sending."""
        service = services.services["1"]
        bad = service.endpoint().infer(np.array([["a", "b"]]))
        assert ("client", True) == (bad.error_kind, bad.error.startswith("HTTP 422:"))
        missing = RestEndpoint(f"{service.url}/nope").infer(services.x[:1])
        assert ("client", "HTTP 404: Not Found") == (missing.error_kind, missing.error)
        unread = RestEndpoint(f"{service.url}/predict", decode=lambda answer: answer["nope"])
        wrong = unread.infer(services.x[:1])
        assert "client" == wrong.error_kind  # default body {"inputs": ...} is refused: 422
        unread = service.endpoint(decode=lambda answer: answer["nope"])
        broken = unread.infer(services.x[:1])
        assert "server" == broken.error_kind
        assert "malformed answer" in broken.error
        crashed = service.endpoint().infer(services.x[:1, :3])  # the model raises: HTTP 500
        assert ("server", "HTTP 500: Internal Server Error") == (crashed.error_kind, crashed.error)
        named = service.endpoint().infer(services.x[:1], version="1")
        assert "client" == named.error_kind
        assert "cannot answer version '1'" in named.error

    def test_headers_callable_and_readiness(self, services: Services) -> None:
        """A header callable is called before every request; ready() polls /health."""
        calls: list[int] = []

        def token() -> dict[str, str]:
            calls.append(1)
            return {"Authorization": f"Bearer t{len(calls)}"}

        endpoint = services.services["2"].endpoint(headers=token)
        assert endpoint.ready()
        assert endpoint.infer(services.x[:2]).ok
        assert endpoint.infer(services.x[:2]).ok
        assert len(calls) >= 2
        assert 0.0 <= endpoint.wait_ready(5.0)


@pytest.mark.integration
class TestChecksOnFastAPI:
    def test_deployment_routes_by_version(self, services: Services) -> None:
        """EndpointsDeployment: a ModelServer and a Deployment over the three services."""
        deployment = services.deployment()
        assert isinstance(deployment, ModelServer)
        assert isinstance(deployment, Deployment)
        assert ("1", "2", "3") == deployment.versions()
        assert "3" == deployment.infer(services.x[:1], version="3").version

    @pytest.mark.parametrize("size", [1, 8])
    def test_healthy_candidate_passes_the_canary(self, services: Services, size: int) -> None:
        """The healthy retrain passes both stages, one row or eight per request."""
        result = canary(services, "2", size).run()
        assert Status.PASS == result.status, str(result)

    @pytest.mark.parametrize("size", [1, 8])
    @pytest.mark.parametrize("mode", ["split", "shadow"])
    def test_inverted_candidate_fails_the_canary(
        self, services: Services, size: int, mode: str
    ) -> None:
        """The inverted-labels model matches its offline predictions (stage 0) and fails
        the trickle, in split and shadow mode, however the traffic is batched."""
        # split mode sees only the class mix: it needs more requests than shadow mode
        n = (150 if mode == "shadow" else 1000) // (1 if size == 1 else 4)
        result = canary(services, "3", size, mode=mode, n_candidate_requests=n).run()
        assert Status.FAIL == result.status, str(result)
        assert Status.PASS == result.finding("probe.agreement").status

    def test_rollback_passes(self, services: Services) -> None:
        """RollbackCheck: deploy "3", roll back to "1" behind the router, nothing lost."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment = services.deployment()
        check = RollbackCheck(
            deployment,
            deployment,
            "3",
            probe_inputs=rows(services.x[:20]),
            n_repeats=2,
            request_rate=300.0,
            n_settle_requests=30,
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert "1" == deployment.live_version()


@pytest.mark.integration
def test_docs_page_runs(services: Services) -> None:
    """docs/servers/rest.md: its check code, pointed at the services, prints the verdicts."""
    replacements = {
        f"http://127.0.0.1:800{v}": service.url for v, service in services.services.items()
    }
    scope = run_server_blocks("docs/servers/rest.md", replacements, {"models": services.models})
    assert Status.PASS == scope["healthy"].status, str(scope["healthy"])
    assert Status.FAIL == scope["inverted"].status, str(scope["inverted"])
    assert Status.PASS == scope["rollback"].status, str(scope["rollback"])


class TestRestEndpointOffline:
    """What needs no service: arguments, encoding, pickling, the loopback guard."""

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"url": "ftp://host/predict"}, "'url' must look like"),
            ({"url": "http://host/predict?x=1"}, "must not have a query"),
            ({"encode": 3}, "'encode' must be callable"),
            ({"ready_path": "ping"}, "must be a path starting with '/'"),
            ({"timeout_s": 0}, "'timeout_s' must be a positive number"),
        ],
    )
    def test_rejects_bad_arguments(self, kwargs: dict[str, Any], match: str) -> None:
        from mlchecks.exceptions import InvalidInput

        url = kwargs.pop("url", "http://127.0.0.1:9/predict")
        with pytest.raises(InvalidInput, match=match):
            RestEndpoint(url, **kwargs)

    def test_mlflow_bodies(self) -> None:
        """Rows as {"inputs"}; with columns, or a DataFrame, as dataframe_split; params too."""
        import pandas as pd

        endpoint = RestEndpoint.mlflow("http://127.0.0.1:9/", params={"k": np.int64(2)})
        assert {"inputs": [[1.0, 2.0]], "params": {"k": 2}} == endpoint.encode(
            np.array([[1.0, 2.0]])
        )
        frame = pd.DataFrame({"a": [1.0], "b": [2.0]})
        assert {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}} == (
            RestEndpoint.mlflow("http://127.0.0.1:9").encode(frame)
        )
        assert "http://127.0.0.1:9/invocations" == endpoint.url

    def test_pickles_and_an_unencodable_input_is_the_clients_error(self) -> None:
        """A copy works in another process; inputs JSON cannot carry fail before sending."""
        import pickle

        endpoint = RestEndpoint("http://127.0.0.1:9/predict", version_key="v")
        copy = pickle.loads(pickle.dumps(endpoint))
        assert ("http://127.0.0.1:9/predict", "v") == (copy.url, copy.version_key)
        scoring = pickle.loads(
            pickle.dumps(RestEndpoint.mlflow("http://127.0.0.1:9", columns=["a"]))
        )
        assert {"dataframe_split": {"columns": ["a"], "data": [[1]]}} == scoring.encode([[1]])
        response = endpoint.infer({"x": object()})
        assert "client" == response.error_kind
        assert "cannot encode the inputs as JSON" in response.error

    def test_no_answer_within_timeout_s_is_a_timeout(self) -> None:
        """A server that accepts the connection but never answers: error_kind "timeout"."""
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(4)
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/predict"
            response = RestEndpoint(url, timeout_s=0.2, n_retries=0).infer([[1.0]])
        assert "timeout" == response.error_kind
        assert "within timeout_s=0.2 s" in response.error

    def test_checks_refuse_a_remote_service(self) -> None:
        """ensure_local reads the endpoint's URL, and a deployment's remote endpoint."""
        from mlchecks.checks.rollback import RollbackCheck
        from mlchecks.exceptions import InvalidInput

        remote = RestEndpoint("http://10.0.0.7:8000/predict")
        deployment = EndpointsDeployment(
            {"1": RestEndpoint("http://127.0.0.1:9/predict"), "2": remote}, live="1"
        )
        with pytest.raises(InvalidInput, match="points at host '10.0.0.7'"):
            RollbackCheck(deployment, deployment, "2", probe_inputs=[[0.0]])
        with pytest.raises(InvalidInput, match="points at host '10.0.0.7'"):
            RollbackCheck(deployment, remote, "2", probe_inputs=[[0.0]])
