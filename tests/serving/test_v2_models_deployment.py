"""`V2ModelsDeployment` on a real MLServer that serves each version as its own model name.

This is how KServe (one InferenceService per version) and PyTriton (one version per name)
lay versions out: models ``clf-1``, ``clf-4`` and ``clf-5``, unversioned, on one MLServer.
The checks run on it with the same code as on a versioned server; only the deployment
object differs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _mlserver_models import MODEL, MLServerProcess, model_dir

from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, ModelServer
from mlchecks.result import Status
from mlchecks.serving import V2Endpoint, V2ModelsDeployment

VERSIONS = ("1", "4", "5")  # healthy, skewed (trained on a wrong label), healthy


class NamedModels:
    """A running MLServer with one unversioned model per version, named ``clf-<version>``."""

    def __init__(self, process: MLServerProcess, staging: Path) -> None:
        self.process = process
        self.staging = staging
        self.inputs = np.random.default_rng(12345).normal(size=(200, 4))

    def deployment(self, live: str | None = "1") -> V2ModelsDeployment:
        endpoints = {v: V2Endpoint(self.process.url, f"{MODEL}-{v}") for v in VERSIONS}
        return V2ModelsDeployment(endpoints, live=live)

    def offline(self, version: str) -> np.ndarray:
        return np.load(model_dir(self.staging, MODEL, version) / "offline_proba.npy")


@pytest.fixture(scope="module")
def named(
    mlserver_exe: str, model_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NamedModels]:
    root = tmp_path_factory.mktemp("named") / "models"
    for version in VERSIONS:
        target = root / f"{MODEL}-{version}"
        shutil.copytree(model_dir(model_store, MODEL, version), target)
        settings = json.loads((target / "model-settings.json").read_text())
        settings["name"] = f"{MODEL}-{version}"
        del settings["parameters"]["version"]
        (target / "model-settings.json").write_text(json.dumps(settings))
    process = MLServerProcess(mlserver_exe, root).start(ready_model=f"{MODEL}-1")
    try:
        yield NamedModels(process, model_store)
    finally:
        process.stop()


def rows(inputs: np.ndarray) -> list[np.ndarray]:
    return [inputs[i : i + 1] for i in range(len(inputs))]


def canary(named: NamedModels, candidate: str, **overrides: Any) -> Any:
    from mlchecks.checks.canary import CanaryCheck

    traffic = rows(np.random.default_rng(7).normal(size=(1500, 4)))
    settings: dict[str, Any] = {
        "offline_predictions": named.offline(candidate)[:50, None, :],
        "traffic": lambda: iter(traffic),
        "traffic_fraction": 0.5,
        "n_candidate_requests": 400,
        "budget_requests": 1500,
        "alpha": 0.01,
        "classify": lambda outputs: int(np.argmax(outputs)),
        "max_latency_ratio": 3.0,
    }
    settings.update(overrides)
    probes = rows(named.inputs[:50])
    return CanaryCheck(named.deployment(), candidate, probe_inputs=probes, **settings)


@pytest.mark.integration
class TestV2ModelsDeploymentOnMLServer:
    def test_routes_by_version_and_says_which_answered(self, named: NamedModels) -> None:
        """A ModelServer and a Deployment: the live version answers unversioned requests,
        a named version its own; Response.version is the version, and the outputs are
        that model's offline predictions."""
        deployment = named.deployment()
        assert isinstance(deployment, ModelServer)
        assert isinstance(deployment, Deployment)
        assert VERSIONS == deployment.versions()
        live = deployment.infer(named.inputs)
        assert (None, "1") == (live.error, live.version)
        np.testing.assert_allclose(named.offline("1"), live.outputs, rtol=1e-12)
        other = deployment.infer(named.inputs, version="4")
        np.testing.assert_allclose(named.offline("4"), other.outputs, rtol=1e-12)
        assert "4" == other.version

    def test_pointer_rules(self, named: NamedModels) -> None:
        """Unknown versions are refused naming the known ones; the live one is not unloaded;
        with nothing live an unversioned request fails as the client's error."""
        deployment = named.deployment()
        with pytest.raises(InvalidInput, match="'version' '9' is not one of the versions"):
            deployment.set_live("9")
        with pytest.raises(InvalidInput, match="it is the live version"):
            deployment.unload("1")
        assert "client" == named.deployment(live=None).infer(named.inputs).error_kind
        deployment.set_live("5")
        assert "5" == deployment.infer(named.inputs[:1]).version

    def test_healthy_candidate_passes_the_canary(self, named: NamedModels) -> None:
        """CanaryCheck, unchanged: the healthy retrained model passes both stages."""
        result = canary(named, "5", unload=False).run()
        assert Status.PASS == result.status, str(result)

    def test_skewed_candidate_fails_the_canary(self, named: NamedModels) -> None:
        """The model trained on a wrong label matches its offline predictions (stage 0
        passes) and fails the trickle on its shifted classes."""
        result = canary(named, "4", unload=False).run()
        assert Status.PASS == result.finding("probe.agreement").status
        assert Status.FAIL == result.finding("trickle").status, str(result)

    def test_rollback_passes(self, named: NamedModels) -> None:
        """RollbackCheck, unchanged: deploy "4", roll back to "1", no request lost."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment = named.deployment()
        check = RollbackCheck(
            deployment,
            deployment,
            "4",
            probe_inputs=rows(named.inputs[:20]),
            n_repeats=2,
            request_rate=300.0,
            n_settle_requests=30,
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert "1" == deployment.live_version()
