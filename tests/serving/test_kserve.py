"""The serving checks against a real KServe 0.21 ``ModelServer``, as KServe users run it.

The user side is docs/servers/kserve.md's own ``train.py`` and ``serve.py`` (a
``kserve.Model`` subclass per model name: ``clf-1`` live, ``clf-2`` a healthy retrain,
``clf-3`` trained on inverted labels), run from KServe's own environment
(``$MLCHECKS_KSERVE``) on a free port of 127.0.0.1. The mlchecks side is public API only:
a `V2Endpoint` per model name and a `V2ModelsDeployment` holding the live pointer.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _kserve import NAMES, KServeModels, KServeProcess, kserve_python, train
from _pages import run_server_blocks

from mlchecks import CanaryCheck, RollbackCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, ModelServer
from mlchecks.result import Status
from mlchecks.serving import V2Endpoint, V2Error, V2ModelsDeployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KServeModels]:
    """The docs page's server for the session, stopped (terminate, then kill) at the end."""
    python = kserve_python()
    if python is None:
        pytest.skip(
            "KServe not found: install kserve==0.21.*, scikit-learn and joblib into a "
            "separate virtual environment and set MLCHECKS_KSERVE to its bin/python"
        )
    root = tmp_path_factory.mktemp("kserve")
    models = train(python, root)
    process = KServeProcess(python, root).start()
    try:
        yield KServeModels(process, models)
    finally:
        process.stop()


def deployment(kserve: KServeModels, live: str | None = "1") -> V2ModelsDeployment:
    """The live pointer over one `V2Endpoint` per model name, as the docs page builds it."""
    endpoints = {v: V2Endpoint(kserve.url, name, input_name=None) for v, name in NAMES.items()}
    return V2ModelsDeployment(endpoints, live=live)


def requests(inputs: np.ndarray, rows: np.ndarray, batch: int) -> list[np.ndarray]:
    """``inputs[rows]`` as requests of ``batch`` rows each."""
    return [inputs[rows[i : i + batch]] for i in range(0, len(rows) - batch + 1, batch)]


def canary(kserve: KServeModels, candidate: str, *, batch: int = 1, **overrides: Any) -> Any:
    """A CanaryCheck of ``candidate`` against live version 1, requests of ``batch`` rows."""
    rng = np.random.default_rng(7)
    probe_rows = np.arange(48)
    offline = kserve.offline(candidate)
    probes = requests(kserve.inputs, probe_rows, batch)
    traffic = requests(kserve.inputs, rng.integers(len(kserve.inputs), size=3000 * batch), batch)
    settings: dict[str, Any] = {
        "probe_inputs": probes,
        # One (batch, 2) answer per probe, as the server answers it.
        "offline_predictions": offline[probe_rows].reshape(len(probes), batch, -1),
        "traffic": lambda: iter(traffic),
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150,
        "budget_requests": 3000,
        "alpha": 0.01,
        "max_latency_ratio": 3.0,
        "load": False,
    }
    settings.update(overrides)
    return CanaryCheck(deployment(kserve), candidate, **settings).run()


class TestKServeServer:
    def test_listens_on_loopback_only(self, kserve: KServeModels) -> None:
        """The page's start command binds the REST port on 127.0.0.1 and nothing else."""
        assert [f"127.0.0.1:{kserve.process.http_port}"] == kserve.process.listening()

    def test_versions_are_model_names_found_by_readiness(self, kserve: KServeModels) -> None:
        """KServe has no repository index and answers versioned paths with 501; the
        deployment lists versions by each model name's readiness and routes by name."""
        live = deployment(kserve)
        assert isinstance(live, ModelServer)
        assert isinstance(live, Deployment)
        assert ("1", "2", "3") == live.versions()
        clf1 = live.endpoints["1"]
        with pytest.raises(V2Error):
            clf1.repository_versions()
        versioned = clf1.infer(kserve.inputs[:1], version="1")
        assert ("server", "HTTP 501") == (versioned.error_kind, (versioned.error or "")[:8])
        answer = live.infer(kserve.inputs[:8])
        assert (None, "1", (8, 2)) == (answer.error, answer.version, answer.outputs.shape)
        np.testing.assert_allclose(kserve.offline("1")[:8], answer.outputs, rtol=1e-12)
        other = live.infer(kserve.inputs[:8], version="3")
        np.testing.assert_allclose(kserve.offline("3")[:8], other.outputs, rtol=1e-12)
        missing = V2ModelsDeployment({"9": V2Endpoint(kserve.url, "clf-9")})
        assert () == missing.versions()

    def test_the_model_echoing_the_request_id_answers(self, kserve: KServeModels) -> None:
        """The model echoes the request ``id``: KServe answers 500 to a request without one,
        and every V2Endpoint request carries one, echoed back."""
        endpoint = V2Endpoint(kserve.url, "clf-1")
        body = endpoint.encode(kserve.inputs[:1])
        for sent in (body, {"id": "abc-123", **body}):
            connection = http.client.HTTPConnection("127.0.0.1", kserve.process.http_port, 5)
            try:
                headers = {"Content-Type": "application/json"}
                connection.request("POST", "/v2/models/clf-1/infer", json.dumps(sent), headers)
                answer = connection.getresponse()
                status, data = answer.status, json.loads(answer.read())
            finally:
                connection.close()
            if "id" in sent:
                assert (200, "abc-123") == (status, data["id"])
            else:
                assert 500 == status, data
                assert "id" in data["error"]
        response = endpoint.infer(kserve.inputs[:1])
        assert response.ok, response.error
        assert 32 == len(response.request_id or "")

    def test_a_load_kserve_cannot_do_fails_clearly(self, kserve: KServeModels) -> None:
        """A model name the server was not started with cannot be loaded: set_live, load
        and a canary with load=True say so and what to do instead."""
        unknown = V2ModelsDeployment(
            {"1": V2Endpoint(kserve.url, "clf-1"), "9": V2Endpoint(kserve.url, "clf-9")}, live="1"
        )
        with pytest.raises(V2Error, match="start 'clf-9' the way the platform does"):
            unknown.set_live("9")
        assert "1" == unknown.live_version()
        strict = V2ModelsDeployment(unknown.endpoints, live="1", load_missing=False)
        with pytest.raises(InvalidInput, match="load_missing is false"):
            strict.set_live("9")
        result = CanaryCheck(unknown, "9", probe_inputs=[kserve.inputs[:1]], n_load_retries=0).run()
        assert Status.FAIL == result.finding("load").status
        assert "start 'clf-9' the way" in result.finding("load").message
        result = CanaryCheck(unknown, "9", probe_inputs=[kserve.inputs[:1]], load=False).run()
        assert Status.FAIL == result.finding("load").status
        assert "version '9' is not loaded in the server" in result.finding("load").message

    def test_a_served_model_loads_as_a_no_op(self, kserve: KServeModels) -> None:
        """KServe's load of a model it serves answers at once; the canary's default load
        neither fails nor unloads the model afterwards."""
        live = deployment(kserve)
        live.load("2")
        result = canary(kserve, "2", load=True, traffic=None)
        assert Status.PASS == result.status, str(result)
        assert ("1", "2", "3") == live.versions()


class TestCanaryOnKServe:
    def test_healthy_retrain_passes(self, kserve: KServeModels) -> None:
        """The healthy retrain passes both stages (split mode, one row per request)."""
        result = canary(kserve, "2")
        assert Status.PASS == result.status, str(result)

    def test_healthy_retrain_passes_batched_shadow(self, kserve: KServeModels) -> None:
        """Eight rows per request, mirrored: the healthy retrain passes too."""
        result = canary(kserve, "2", mode="shadow", batch=8)
        assert Status.PASS == result.status, str(result)

    @pytest.mark.parametrize("batch", [1, 8], ids=["one_row", "batch_of_8"])
    @pytest.mark.parametrize("mode", ["split", "shadow"])
    def test_inverted_labels_fail(self, kserve: KServeModels, mode: str, batch: int) -> None:
        """The inverted-labels model serves its offline predictions (stage 0 passes) and
        fails the trickle, however the traffic is batched."""
        # Split mode compares class mixes only: the mix shifts by ~26 points, which shows
        # beyond max_psi after about 500 candidate requests (1000 caps them).
        n = 1000 if mode == "split" else 150
        result = canary(kserve, "3", mode=mode, batch=batch, n_candidate_requests=n)
        assert Status.PASS == result.finding("probe.agreement").status
        assert Status.FAIL == result.status, str(result)
        failed = {f.name for f in result.findings if f.status == Status.FAIL}
        expected = "trickle.disagreement" if mode == "shadow" else "trickle.shift"
        assert expected in failed, str(result)


class TestRollbackOnKServe:
    def test_rollback_passes(self, kserve: KServeModels) -> None:
        """Deploy version 2, roll back to 1 under load: no request lost, 1's answers after."""
        live = deployment(kserve)
        result = RollbackCheck(
            live,
            live,
            "2",
            probe_inputs=[kserve.inputs[i : i + 1] for i in range(20)],
            n_repeats=2,
            request_rate=200.0,
            n_settle_requests=30,
        ).run()
        assert Status.PASS == result.status, str(result)
        assert "1" == live.live_version()

    def test_stale_pointer_fails(self, kserve: KServeModels) -> None:
        """The pointer the rollback moves goes back to 1, but the traffic takes a second
        route (another router's setting) that still sends it to the candidate: FAIL."""
        pointer = deployment(kserve)
        traffic_route = deployment(kserve, live="3")  # never updated by the rollback
        result = RollbackCheck(
            pointer,
            traffic_route,
            "3",
            known_good="1",
            probe_inputs=[kserve.inputs[i : i + 1] for i in range(20)],
            n_repeats=1,
            request_rate=200.0,
            n_settle_requests=30,
            budget_s=2.0,
        ).run()
        assert Status.FAIL == result.status, str(result)
        failed = {f.name for f in result.findings if f.status == Status.FAIL}
        assert {"rollback_time", "predictions_after_rollback"} <= failed, str(result)
        assert "1" == pointer.live_version()


def test_docs_page_runs_against_the_server(kserve: KServeModels) -> None:
    """docs/servers/kserve.md's check code gives the verdicts the page states."""
    scope = run_server_blocks(
        "docs/servers/kserve.md",
        {
            "http://127.0.0.1:8080": kserve.url,
            '"models/': f'"{kserve.models}/',
            'f"models/': f'f"{kserve.models}/',
        },
    )
    assert ("1", "2", "3") == scope["deployment"].versions()
    assert {"2": "PASS", "3": "FAIL"} == scope["verdicts"]
    assert Status.PASS == scope["result"].status, str(scope["result"])
