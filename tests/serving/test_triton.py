"""The serving checks against a real NVIDIA Triton Inference Server, with no adapter.

Triton (the ``tritonserver`` of the nvidia-pytriton wheel, see tests/serving/_triton.py)
serves model ``clf`` from a repository in explicit model-control mode: versions 1 and 2
are healthy retrains, version 3 learned inverted labels; each is a Python-backend
``model.py`` with two outputs, ``proba`` and ``label``. The checks drive it through
`V2Endpoint` and `V2Deployment` only, as docs/servers/triton.md shows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from _pages import run_server_blocks
from _triton import MODEL, TritonServer

from mlchecks.checks import CanaryCheck, RollbackCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.result import Status
from mlchecks.serving import V2Deployment, V2Endpoint

pytestmark = pytest.mark.integration

N_PROBES = 40


def deployment(triton: TritonServer, live: str = "1", **kwargs: Any) -> V2Deployment:
    """The live pointer in front of ``clf``, answering the ``proba`` output."""
    return V2Deployment(triton.endpoint(output="proba", **kwargs), live=live)


def probes(triton: TritonServer) -> list[np.ndarray]:
    """One-row requests, shape (1, 30): Triton's batching models take a batch axis."""
    return [triton.inputs[i : i + 1] for i in range(N_PROBES)]


def traffic(triton: TritonServer, rows_per_request: int, n: int = 1200) -> list[np.ndarray]:
    """Live requests of ``rows_per_request`` rows drawn from the data."""
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(triton.inputs), size=(n, rows_per_request))
    return [triton.inputs[p] for p in picks]


def canary(
    triton: TritonServer, candidate: str, *, rows_per_request: int = 1, **overrides: Any
) -> CanaryCheck:
    items = traffic(triton, rows_per_request)
    settings: dict[str, Any] = {
        "probe_inputs": probes(triton),
        "offline_predictions": triton.offline(candidate)[:N_PROBES, None, :],
        "traffic": lambda: iter(items),
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150,
        "budget_requests": 1200,
        "alpha": 0.01,
        "max_latency_ratio": 3.0,
        "max_tail_ratio": None,
    }
    settings.update(overrides)
    return CanaryCheck(deployment(triton), candidate, **settings)


class TestV2EndpointOnTriton:
    def test_inputs_named_and_typed_from_metadata(self, triton: TritonServer) -> None:
        """With input_name=None the endpoint sends Triton's declared input ("features",
        FP64), casting float32 rows, and the two outputs come back by name."""
        endpoint = triton.endpoint()
        assert {"features": "FP64"} == endpoint.declared_inputs()
        response = endpoint.infer(triton.inputs[:8].astype(np.float32), version="2")
        assert (None, "2") == (response.error, response.version)
        assert {"proba", "label"} == set(response.outputs)
        assert (8, 1) == response.outputs["label"].shape
        np.testing.assert_allclose(
            triton.offline("2")[:8], response.outputs["proba"], rtol=1e-5, atol=1e-6
        )

    def test_one_row_gets_the_declared_batch_axis(self, triton: TritonServer) -> None:
        """Triton's batching model declares [-1, 30] and refuses a bare row (HTTP 400):
        a (30,) row is sent as (1, 30), batches as they are."""
        endpoint = triton.endpoint(output="proba")
        assert [1, 30] == endpoint.encode(triton.inputs[5])["inputs"][0]["shape"]
        assert [8, 30] == endpoint.encode(triton.inputs[:8])["inputs"][0]["shape"]
        response = endpoint.infer(triton.inputs[5], version="1")
        assert None is response.error
        np.testing.assert_allclose(triton.offline("1")[5:6], response.outputs, rtol=1e-12)

    def test_output_picks_one_of_two(self, triton: TritonServer) -> None:
        """output="proba" returns that tensor; a name the model lacks is an error naming
        the outputs it has."""
        response = triton.endpoint(output="proba").infer(triton.inputs[:8], version="1")
        np.testing.assert_allclose(triton.offline("1")[:8], response.outputs, rtol=1e-12)
        wrong = triton.endpoint(output="score").infer(triton.inputs[:1])
        assert "server" == wrong.error_kind
        assert "no output tensor named 'score' (got proba, label)" in str(wrong.error)

    def test_deployment_routes_to_the_live_version(self, triton: TritonServer) -> None:
        """V2Deployment: every version is listed; unversioned requests go to the live
        version, while Triton itself would answer with the highest (3)."""
        live = deployment(triton, live="1")
        assert ("1", "2", "3") == live.versions()
        assert "1" == live.infer(triton.inputs[:1]).version
        assert "3" == triton.endpoint().infer(triton.inputs[:1]).version
        with pytest.raises(InvalidInput, match="it is the live version"):
            live.unload("1")

    def test_load_waits_and_follows_the_version_policy(self, triton: TritonServer) -> None:
        """A model put into the repository loads through the repository API, which answers
        only once Triton has loaded it (seconds: a Python stub starts): set_live waits
        load_timeout_s while inference keeps timeout_s=1. Left at Triton's default version
        policy (latest 1) only the highest version loads, and set_live of another says so."""
        name = triton.stage_model("clf_latest", ("1", "2"), policy=False)
        live = V2Deployment(V2Endpoint(triton.url, name, timeout_s=1.0, load_timeout_s=60.0))
        try:
            start = time.monotonic()
            live.set_live("2")
            loaded_s = time.monotonic() - start
            response = live.infer(triton.inputs[:8])
            assert (None, "2") == (response.error, response.version), loaded_s
            np.testing.assert_allclose(triton.offline("2")[:8], response.outputs["proba"])
            with pytest.raises(InvalidInput, match=r"ready versions: '2'.*version_policy"):
                live.set_live("1")
            assert "2" == live.live_version()
        finally:
            live.endpoint.unload_all()


class TestCanaryOnTriton:
    def test_healthy_candidate_passes(self, triton: TritonServer) -> None:
        """The healthy retrain (2) passes both stages against live version 1."""
        result = canary(triton, "2").run()
        assert Status.PASS == result.status, str(result)

    @pytest.mark.parametrize("mode", ["split", "shadow"])
    @pytest.mark.parametrize("rows_per_request", [1, 8])
    def test_inverted_labels_fail(
        self, triton: TritonServer, mode: str, rows_per_request: int
    ) -> None:
        """The inverted-labels version answers its own offline predictions (stage 0
        passes) and fails the trickle, one row or eight rows per request.

        Split mode sees only the class mix (63/37 turned 37/63: PSI about 0.28 against
        max_psi 0.1) and takes one row of each request (a request's rows share its route),
        which takes 400-500 candidate requests to show (482 here); shadow mode sees every
        disagreement at once."""
        n = 600 if mode == "split" else 150
        check = canary(
            triton,
            "3",
            mode=mode,
            rows_per_request=rows_per_request,
            n_candidate_requests=n,
            budget_requests=4 * n,
        )
        result = check.run()
        assert Status.PASS == result.finding("probe.agreement").status
        assert Status.FAIL == result.status, str(result)
        assert Status.FAIL == result.finding("trickle").status, str(result)

    def test_healthy_candidate_passes_batched_shadow(self, triton: TritonServer) -> None:
        """Batched traffic does not fail a healthy candidate either (shadow mode)."""
        result = canary(triton, "2", mode="shadow", rows_per_request=8).run()
        assert Status.PASS == result.status, str(result)


class TestRollbackOnTriton:
    def check(self, triton: TritonServer, live: V2Deployment, endpoint: Any) -> RollbackCheck:
        return RollbackCheck(
            live,
            endpoint,
            "3",
            probe_inputs=probes(triton)[:20],
            n_repeats=2,
            request_rate=200.0,
            n_settle_requests=30,
            budget_s=3.0,
        )

    def test_rollback_passes(self, triton: TritonServer) -> None:
        """Deploy 3, roll back to 1 under load: no request lost, version 1's predictions."""
        live = deployment(triton)
        result = self.check(triton, live, live).run()
        assert Status.PASS == result.status, str(result)
        assert "1" == live.live_version()

    def test_stale_pointer_fails(self, triton: TritonServer) -> None:
        """The pointer moves back to 1 but clients call Triton without a version: with
        every version loaded Triton answers with the highest, the candidate 3, so the
        rollback never takes effect and the check FAILs."""
        live = deployment(triton)
        clients = V2Endpoint(triton.url, MODEL, output="proba")  # unversioned requests
        result = self.check(triton, live, clients).run()
        assert Status.FAIL == result.status, str(result)
        assert Status.FAIL == result.finding("predictions_after_rollback").status
        assert Status.FAIL == result.finding("rollback_time").status
        assert "carry the outputs of the candidate '3'" in str(
            result.finding("predictions_after_rollback").message
        )


class TestDocsPage:
    def test_page_runs_against_triton(self, triton: TritonServer) -> None:
        """docs/servers/triton.md's check code gives the verdicts it prints."""
        scope = run_server_blocks(
            "docs/servers/triton.md",
            {"http://127.0.0.1:8000": triton.url, '"models/': f'"{triton.repository}/'},
        )
        assert ("1", "2", "3") == scope["deployment"].versions()
        assert {"2": "PASS", "3": "FAIL"} == scope["verdicts"]
        assert Status.PASS == scope["result"].status, str(scope["result"])
        stale = scope["stale_result"]
        assert Status.FAIL == stale.finding("predictions_after_rollback").status, str(stale)
        assert "1" == scope["deployment"].live_version()
