"""`RestEndpoint.mlflow` against MLflow's real scoring server (``mlflow models serve``).

A registry on a sqlite file holds ``clf`` (``predict``: class labels) and ``clf_proba``
(logged with ``pyfunc_predict_fn="predict_proba"``), versions "1" (healthy), "2" (healthy
retrain) and "3" (inverted labels). Servers started as users start them:
``mlflow models serve -m models:/clf_proba/<v> --env-manager local -h 127.0.0.1 -p PORT``
for the canary (one server per version behind an `EndpointsDeployment`), and
``-m models:/clf@champion`` for the rollback: the server loads what the alias points to
when it starts, so the platform restarts it when the alias moves
(``MLflowDeployment(on_set_live=...)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _pages import run_server_blocks
from _rest_services import MLflowModels, ScoringServer, data, mlflow_executable, rows

from mlchecks.result import Status
from mlchecks.serving import EndpointsDeployment, MLflowDeployment

VERSIONS = ("1", "2", "3")

# Warnings MLflow 3.17 raises (as in test_mlflow.py): its SQL store triggers a SQLAlchemy
# 2.1 deprecation warning, mlflow.pyfunc a UserWarning about its own type hints.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
    ),
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]


class Scoring:
    """The registry, the per-version servers of ``clf_proba`` and the ``clf@champion`` one."""

    def __init__(self, executable: str, root: Path) -> None:
        self.registry = MLflowModels(root)
        self.x, _ = data()
        uri = self.registry.tracking_uri
        self.proba = {
            v: ScoringServer(executable, f"models:/clf_proba/{v}", uri, root) for v in VERSIONS
        }
        self.champion = ScoringServer(executable, "models:/clf@champion", uri, root)

    def servers(self) -> list[ScoringServer]:
        return [*self.proba.values(), self.champion]

    def deployment(self, live: str = "1") -> EndpointsDeployment:
        return EndpointsDeployment({v: s.endpoint() for v, s in self.proba.items()}, live=live)

    def alias(self, **kwargs: Any) -> MLflowDeployment:
        return MLflowDeployment(
            "clf", "champion", tracking_uri=self.registry.tracking_uri, **kwargs
        )


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scoring]:
    executable = mlflow_executable()
    if executable is None:
        pytest.skip("mlflow not found: install mlflow and set MLCHECKS_MLFLOW to its bin/mlflow")
    made = Scoring(executable, tmp_path_factory.mktemp("scoring"))
    try:
        for server in made.servers():
            server.start()
        for server in made.servers():
            server.wait_ready()
        yield made
    finally:
        for server in made.servers():
            server.stop()


def canary(scoring: Scoring, candidate: str, size: int, **overrides: Any) -> Any:
    from mlchecks.checks.canary import CanaryCheck

    x = scoring.x
    traffic = rows(x[np.random.default_rng(7).permutation(len(x))], size) * 16
    settings: dict[str, Any] = {
        "offline_predictions": scoring.registry.proba(candidate, x[:40]),
        "traffic": lambda: iter(traffic),
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150 if size == 1 else 40,
        "budget_requests": 4000,
        "alpha": 0.01,
        "max_latency_ratio": 3.0,
    }
    settings.update(overrides)
    return CanaryCheck(scoring.deployment(), candidate, probe_inputs=rows(x[:40], size), **settings)


@pytest.mark.integration
class TestOnSetLive:
    def test_called_after_the_alias_moved(self, mlflow_registry: Any) -> None:
        """on_set_live(version) runs after the alias points at the version; an exception
        it raises propagates; a non-callable is refused."""
        from mlchecks.exceptions import InvalidInput

        seen: list[tuple[str, str | None]] = []
        deployment = MLflowDeployment(
            mlflow_registry.name,
            "on-set-live",
            tracking_uri=mlflow_registry.tracking_uri,
            on_set_live=lambda v: seen.append((v, deployment.live_version())),
        )
        deployment.set_live("2")
        assert [("2", "2")] == seen

        def broken(version: str) -> None:
            raise RuntimeError("restart failed")

        failing = MLflowDeployment(
            mlflow_registry.name,
            "on-set-live",
            tracking_uri=mlflow_registry.tracking_uri,
            on_set_live=broken,
        )
        with pytest.raises(RuntimeError, match="restart failed"):
            failing.set_live("1")
        assert "1" == failing.live_version()
        with pytest.raises(InvalidInput, match="'on_set_live' must be callable"):
            MLflowDeployment("clf", on_set_live="restart")  # type: ignore[arg-type]


@pytest.mark.integration
class TestScoringServer:
    def test_labels_and_probabilities_equal_the_offline_predictions(self, scoring: Scoring) -> None:
        """/invocations answers predict's labels (clf) and predict_proba (clf_proba), bitwise
        equal to the models' offline outputs, one row and a batch; no version is reported."""
        labels = scoring.champion.endpoint()
        proba = scoring.proba["1"].endpoint()
        for inputs in (scoring.x[:1], scoring.x[:8]):
            response = labels.infer(inputs)
            assert (None, None) == (response.error, response.version)
            expected = scoring.registry.predict("1", inputs)
            assert (expected.dtype, expected.tobytes()) == (
                response.outputs.dtype,
                response.outputs.tobytes(),
            )
            answered = proba.infer(inputs).outputs
            assert scoring.registry.proba("1", inputs).tobytes() == answered.tobytes()

    def test_dataframe_split_with_columns(self, scoring: Scoring) -> None:
        """With column names the rows go as dataframe_split; the answer is the same."""
        columns = [f"f{i}" for i in range(scoring.x.shape[1])]
        endpoint = scoring.proba["2"].endpoint(columns=columns)
        response = endpoint.infer(scoring.x[:4])
        assert response.ok, response.error
        np.testing.assert_allclose(scoring.registry.proba("2", scoring.x[:4]), response.outputs)

    def test_errors_and_readiness(self, scoring: Scoring) -> None:
        """A body the server cannot read is the client's error with MLflow's message; a
        named version is refused; /ping says ready."""
        endpoint = scoring.proba["1"].endpoint()
        assert endpoint.ready()
        bad = endpoint.infer({"nope": [1]})
        assert "client" == bad.error_kind, bad
        assert bad.error.startswith("HTTP 400:")
        assert "client" == endpoint.infer(scoring.x[:1], version="1").error_kind


@pytest.mark.integration
class TestCanaryOnScoringServers:
    @pytest.mark.parametrize("size", [1, 8])
    def test_healthy_candidate_passes(self, scoring: Scoring, size: int) -> None:
        """One scoring server per version behind EndpointsDeployment: the retrain passes."""
        result = canary(scoring, "2", size).run()
        assert Status.PASS == result.status, str(result)

    @pytest.mark.parametrize("size", [1, 8])
    @pytest.mark.parametrize("mode", ["split", "shadow"])
    def test_inverted_candidate_fails(self, scoring: Scoring, size: int, mode: str) -> None:
        """The inverted-labels model serves its offline predictions and fails the trickle."""
        n = (150 if mode == "shadow" else 1000) // (1 if size == 1 else 4)
        result = canary(scoring, "3", size, mode=mode, n_candidate_requests=n).run()
        assert Status.FAIL == result.status, str(result)
        assert Status.PASS == result.finding("probe.agreement").status


def rollback(scoring: Scoring, deployment: MLflowDeployment, **overrides: Any) -> Any:
    from mlchecks.checks.rollback import RollbackCheck

    settings: dict[str, Any] = {
        "known_good_predictions": lambda probe: scoring.registry.predict("1", probe),
        "n_repeats": 1,
        "request_rate": 20.0,
        "n_warmup_requests": 5,
        "n_settle_requests": 20,
        "budget_requests": 3000,
        "budget_s": 90.0,
        "deploy_timeout_s": 30.0,
        # a restart drops the requests sent while the server is down: allow them
        "max_failed_requests": 2000,
        "max_rollback_s": 90.0,
    }
    settings.update(overrides)
    endpoint = scoring.champion.endpoint()
    return RollbackCheck(deployment, endpoint, "3", probe_inputs=rows(scoring.x[:20]), **settings)


@pytest.mark.integration
class TestRollbackOnTheScoringServer:
    """The healthy rollback (the server restarted when the alias moves) is the docs page's
    (`test_docs_page_runs`); a restart costs ~30 s here, so it runs once."""

    def test_stale_server_fails(self, scoring: Scoring) -> None:
        """The alias moved back but the server was not restarted: it still serves the
        candidate, and RollbackCheck FAILs on the predictions."""
        server = scoring.champion

        def restart_on_deploy_only(version: str) -> None:
            if version != "1":
                server.restart()

        deployment = scoring.alias(on_set_live=restart_on_deploy_only)
        try:
            result = rollback(scoring, deployment, budget_s=4.0).run()
        finally:
            scoring.alias().set_live("1")
            server.restart()
        assert Status.FAIL == result.status
        after = result.finding("predictions_after_rollback")
        assert Status.FAIL == after.status
        assert "carry the outputs of the candidate '3'" in after.message
        assert Status.FAIL == result.finding("rollback_time").status


@pytest.mark.integration
def test_docs_page_runs(scoring: Scoring, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/servers/mlflow.md: its check code, pointed at the servers, gives the verdicts."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", scoring.registry.tracking_uri)
    replacements = {f"http://127.0.0.1:500{v}": s.url for v, s in scoring.proba.items()}
    replacements["http://127.0.0.1:5000"] = scoring.champion.url
    server = scoring.champion
    scope = run_server_blocks(
        "docs/servers/mlflow.md",
        replacements,
        {"restart_scoring_server": lambda version: server.restart()},
    )
    assert Status.PASS == scope["healthy"].status, str(scope["healthy"])
    assert Status.FAIL == scope["inverted"].status, str(scope["inverted"])
    # The healthy rollback: the alias moved to "3" and back, the server restarted each
    # time, every answer equals version 1's offline labels again; the restarts' dropped
    # requests are counted.
    rollback = scope["rollback"]
    assert Status.PASS == rollback.status, str(rollback)
    assert Status.PASS == rollback.finding("predictions_after_rollback").status
    assert "1" == scoring.alias().live_version()
    assert 2 <= server.restarts
