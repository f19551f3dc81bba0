"""`RollbackCheck` on servers of one model: known-good predictions given, attribution by outputs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mlchecks import Status
from mlchecks.checks.rollback import RollbackCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response

MODELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "1": lambda x: np.round(x.sum(axis=1, keepdims=True) * 0.5, 6),
    "2": lambda x: np.round(x.sum(axis=1, keepdims=True) * 0.75, 6),  # differs on every probe
    "3": lambda x: np.round(x.sum(axis=1, keepdims=True) * 0.5, 6) * (x[:, :1] > 0),
}
PROBES = [np.array([[float(i), 1.0]]) for i in range(-5, 5)]


class OneModelServer:
    """An `Endpoint` serving one model, with no version label (like `mlflow models serve`)."""

    def __init__(self, serving: str) -> None:
        self.serving = serving
        self.lock = threading.Lock()

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        if version is not None:
            return Response(error="one model: no named versions", error_kind="client")
        with self.lock:
            model = MODELS[self.serving]
        return Response(outputs=model(np.asarray(inputs)))


class AliasDeployment:
    """A live pointer; moving it restarts the server onto the version (unless ``stale``)."""

    def __init__(self, server: OneModelServer, *, stale: bool = False) -> None:
        self.server = server
        self.live = server.serving
        self.stale = stale
        self.calls: list[str] = []

    def live_version(self) -> str | None:
        return self.live

    def set_live(self, version: str) -> None:
        self.calls.append(version)
        moving_back = version == "1" and self.live != "1"
        self.live = version
        if not (self.stale and moving_back):
            with self.server.lock:
                self.server.serving = version


def check(deployment: AliasDeployment, candidate: str = "2", **overrides: Any) -> RollbackCheck:
    settings: dict[str, Any] = {
        "known_good_predictions": MODELS["1"],
        "n_repeats": 2,
        "budget_s": 0.5,
        "n_settle_requests": 20,
        "request_rate": 2000.0,
    }
    settings.update(overrides)
    return RollbackCheck(deployment, deployment.server, candidate, probe_inputs=PROBES, **settings)


class TestKnownGoodPredictions:
    def test_passes_when_the_rollback_reaches_the_server(self) -> None:
        """Known-good outputs computed offline stand in for asking version "1" by name; the
        candidate's are learnt from live traffic; the rollback PASSes."""
        deployment = AliasDeployment(OneModelServer("1"))
        result = check(deployment).run()
        assert Status.PASS == result.status, str(result)
        assert "1" == deployment.live_version()
        assert Status.PASS == result.finding("predictions_after_rollback").status

    def test_an_array_one_per_probe_works_like_the_callable(self) -> None:
        """An array whose first axis runs over the probes is the same as the callable."""
        offline = np.stack([MODELS["1"](p)[0] for p in PROBES])
        deployment = AliasDeployment(OneModelServer("1"))
        result = check(deployment, known_good_predictions=offline).run()
        assert Status.PASS == result.status, str(result)

    def test_stale_server_fails_on_the_predictions(self) -> None:
        """The pointer moved back but the server kept the candidate: FAIL, and the served
        outputs are named as the candidate's (learnt from live traffic)."""
        deployment = AliasDeployment(OneModelServer("1"), stale=True)
        result = check(deployment, n_repeats=1, budget_s=0.3).run()
        assert Status.FAIL == result.status
        after = result.finding("predictions_after_rollback")
        assert Status.FAIL == after.status
        assert "carry the outputs of the candidate '2'" in after.message
        assert Status.FAIL == result.finding("rollback_time").status

    def test_given_candidate_predictions_are_used(self) -> None:
        """candidate_predictions name the candidate's outputs without learning them."""
        deployment = AliasDeployment(OneModelServer("1"), stale=True)
        result = check(
            deployment, candidate_predictions=MODELS["2"], n_repeats=1, budget_s=0.3
        ).run()
        assert "carry the outputs" in result.finding("predictions_after_rollback").message

    def test_probes_both_versions_answer_alike_are_left_out(self) -> None:
        """Candidate "3" agrees with "1" on half the probes: the rest tell them apart."""
        deployment = AliasDeployment(OneModelServer("1"))
        result = check(deployment, "3").run()
        assert Status.PASS == result.status, str(result)

    def test_a_candidate_indistinguishable_on_every_probe_fails_attribution(self) -> None:
        """Without labels, a candidate that answers exactly like the known-good version on
        every probe cannot be told apart: the finding says to pick other probes."""
        deployment = AliasDeployment(OneModelServer("1"))
        positive = [p for p in PROBES if p[0, 0] > 0]
        result = RollbackCheck(
            deployment,
            deployment.server,
            "3",
            probe_inputs=positive,
            known_good_predictions=MODELS["1"],
            candidate_predictions=MODELS["3"],
            n_repeats=1,
        ).run()
        finding = result.finding("attribution")
        assert Status.FAIL == finding.status
        assert "choose probe inputs" in finding.message

    def test_wrong_known_good_predictions_fail_before_deploying(self) -> None:
        """Offline predictions the live version does not answer stop the check early."""
        deployment = AliasDeployment(OneModelServer("1"))
        result = check(deployment, known_good_predictions=MODELS["2"]).run()
        finding = result.finding("references")
        assert Status.FAIL == finding.status
        assert "does not answer known_good_predictions on probe 0" in finding.message
        assert [] == deployment.calls

    def test_a_raising_callable_is_a_references_failure(self) -> None:
        """An exception in the offline code is reported with the probe it failed on."""

        def broken(probe: Any) -> Any:
            raise RuntimeError("no model file")

        result = check(AliasDeployment(OneModelServer("1")), known_good_predictions=broken).run()
        assert "RuntimeError on probe 0: no model file" in result.finding("references").message

    def test_without_known_good_predictions_a_one_model_server_cannot_be_asked(self) -> None:
        """The old way (ask the known-good version by name) fails with the server's error."""
        deployment = AliasDeployment(OneModelServer("1"))
        result = check(deployment, known_good_predictions=None).run()
        assert "one model: no named versions" in result.finding("references").message


class TestFields:
    @pytest.mark.parametrize(
        ("value", "match"),
        [
            ("abc", "'known_good_predictions' must be outputs one per probe input"),
            ({"1": 1}, "one per probe input"),
            (np.zeros((3, 1)), r"one entry per probe input \(10\) \(got 3\)"),
        ],
    )
    def test_rejects_bad_predictions(self, value: Any, match: str) -> None:
        with pytest.raises(InvalidInput, match=match):
            check(AliasDeployment(OneModelServer("1")), known_good_predictions=value)

    def test_keyword_only_and_kept(self) -> None:
        """The fields are keyword-only; arrays are held as one entry per probe."""
        made = check(AliasDeployment(OneModelServer("1")), candidate_predictions=np.zeros(10))
        assert 10 == len(made.candidate_predictions)
        assert callable(made.known_good_predictions)
