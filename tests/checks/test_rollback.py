"""Tests for mlchecks.checks.rollback: `RollbackCheck`."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from mlchecks import AtMost, Check, Result, Status, run_check
from mlchecks.checks.rollback import RollbackCheck
from mlchecks.demo import CANDIDATE_VERSION, DemoSystem
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, Endpoint, Response
from mlchecks.serving import InProcessServer


def demo_check(fault: str | None = None, **overrides: Any) -> tuple[RollbackCheck, Any]:
    """A rollback of the demo service from candidate "2" to the live baseline "1"."""
    system = DemoSystem(seed=0, fault=fault, n_rows=4000, n_steps=100)
    service = system.service()
    settings: dict[str, Any] = {"n_repeats": 3, "budget_s": 1.0}
    settings.update(overrides)
    probes = system.production_rows()[:40]
    check = RollbackCheck(service, service, CANDIDATE_VERSION, probe_inputs=probes, **settings)
    return check, service


class TestRollbackCheckOnTheDemo:
    def test_passes_on_the_healthy_demo_with_zero_failed_requests(self) -> None:
        """An atomic in-process switch rolls back with no failed request, bitwise identical."""
        check, service = demo_check()
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
        assert 0.0 == result.metrics["n_failed_requests"]
        assert 0.0 == result.metrics["n_failed_requests_total"]
        assert 3 == len(result.details["repeats"])
        assert Status.PASS == result.finding("predictions_after_rollback").status
        assert "1" == service.live_version()
        assert 7 == result.rubric

    def test_a_candidate_that_fails_some_requests_does_not_fail_the_rollback(self) -> None:
        """Errors the candidate itself answers are not rollback failures (no cross-talk)."""
        check, service = demo_check("canary_errors")
        result = run_check(check)
        assert Status.PASS == result.status, str(result)
        assert 0.0 == result.metrics["n_failed_requests_total"]
        assert "1" == service.live_version()

    def test_fails_on_lossy_rollback_with_the_failed_request_count(self) -> None:
        """A rollback that restarts the service fails the requests sent meanwhile."""
        check, _ = demo_check("lossy_rollback")
        result = run_check(check)
        assert Status.FAIL == result.status
        finding = result.finding("failed_requests")
        assert Status.FAIL == finding.status
        assert finding.observed is not None
        assert finding.observed > 0
        assert "requests failed during a rollback" in finding.message
        assert "503" in finding.message
        assert finding.observed == result.metrics["n_failed_requests"]

    def test_fails_on_stale_rollback_naming_the_versions(self) -> None:
        """A cache that keeps serving the candidate's outputs fails after the rollback."""
        check, service = demo_check("stale_rollback", budget_s=0.3)
        result = run_check(check)
        assert Status.FAIL == result.status
        after = result.finding("predictions_after_rollback")
        assert Status.FAIL == after.status
        assert "version '1'" in after.message
        assert "candidate '2'" in after.message
        assert Status.FAIL == result.finding("rollback_time").status
        assert "stopped_early" in result.details
        assert "1" == service.live_version()

    def test_result_round_trips_through_json(self) -> None:
        """Infinite times in the details survive JSON."""
        check, _ = demo_check("stale_rollback", budget_s=0.2, n_repeats=1)
        result = run_check(check)
        assert result == Result.from_dict(json.loads(json.dumps(result.to_dict())))


class Switch:
    """A Deployment and Endpoint over an `InProcessServer`, with plantable faults.

    Args:
        propagation_s: after ``set_live``, unversioned traffic keeps going to the previous
            version for this long (a slow config push).
        noise: answers get this much random noise (nondeterministic serving).
        deploy_works: False makes ``set_live`` of the candidate a no-op.
        rollback_error: ``set_live`` back to "1" raises this.
    """

    def __init__(
        self,
        *,
        propagation_s: float = 0.0,
        noise: float = 0.0,
        deploy_works: bool = True,
        rollback_error: Exception | None = None,
    ) -> None:
        rng = np.random.default_rng(0)

        def model(weight: float) -> Any:
            def predict(x: Any) -> np.ndarray:
                out = np.asarray(x, dtype=np.float64) * weight
                return out + noise * rng.standard_normal(out.shape) if noise else out

            return predict

        self.server = InProcessServer().add("1", model(1.0)).add("2", model(2.0))
        self.server.set_live("1")
        self.propagation_s = propagation_s
        self.deploy_works = deploy_works
        self.rollback_error = rollback_error
        self.previous = "1"
        self.switched = -np.inf

    def live_version(self) -> str | None:
        return self.server.live_version()

    def set_live(self, version: str) -> None:
        if version == "2" and not self.deploy_works:
            return
        if version == "1" and self.rollback_error is not None:
            raise self.rollback_error
        self.previous = self.server.live_version() or version
        self.switched = time.perf_counter()
        self.server.set_live(version)

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        if version is None and time.perf_counter() - self.switched < self.propagation_s:
            version = self.previous
        return self.server.infer(inputs, version)


def switch_check(switch: Switch, **overrides: Any) -> RollbackCheck:
    """A rollback check on a `Switch`, 2 repeats, short bounds."""
    settings: dict[str, Any] = {"n_repeats": 2, "budget_s": 1.0, "n_settle_requests": 20}
    settings.update(overrides)
    probes = [[1.0, 2.0], [3.0], [4.0, 5.0, 6.0]]
    return RollbackCheck(switch, switch, "2", probe_inputs=probes, **settings)


class TestRollbackCheck:
    def test_passes_on_an_atomic_switch(self) -> None:
        """An atomic switch passes and reports p50 and p99 over the repeats."""
        result = run_check(switch_check(Switch()))
        assert Status.PASS == result.status, str(result)
        assert {"rollback.p50_s", "rollback.p99_s", "first_response.p50_s"} <= set(result.metrics)
        assert 2.0 == result.metrics["n_repeats"]

    def test_slow_propagation_fails_max_rollback_s(self) -> None:
        """Traffic that reaches the old version only after 0.1 s fails a 0.02 s limit."""
        result = run_check(switch_check(Switch(propagation_s=0.1), max_rollback_s=0.02))
        finding = result.finding("rollback_time")
        assert Status.FAIL == finding.status
        assert finding.observed is not None
        assert finding.observed > 0.02

    def test_slow_propagation_passes_a_generous_limit(self) -> None:
        """The same propagation delay is within a 1 s limit."""
        result = run_check(switch_check(Switch(propagation_s=0.1), max_rollback_s=1.0))
        assert Status.PASS == result.finding("rollback_time").status

    def test_nondeterministic_outputs_fail_bitwise_and_pass_with_tolerance(self) -> None:
        """Bitwise comparison is the default; exact=False compares within prediction_atol."""
        strict = run_check(switch_check(Switch(noise=1e-12), budget_s=0.2, n_repeats=1))
        assert Status.FAIL == strict.finding("predictions_after_rollback").status
        assert "(bitwise)" in strict.finding("predictions_after_rollback").message
        tolerant = run_check(switch_check(Switch(noise=1e-12), exact=False, prediction_atol=1e-9))
        assert Status.PASS == tolerant.status, str(tolerant)

    def test_a_candidate_that_never_goes_live_fails(self) -> None:
        """A deploy that does not take effect fails before any rollback."""
        result = run_check(switch_check(Switch(deploy_works=False), deploy_timeout_s=0.05))
        finding = result.finding("deploy")
        assert Status.FAIL == finding.status
        assert "was not serving live traffic" in finding.message

    def test_a_rollback_command_that_raises_fails(self) -> None:
        """set_live raising on the rollback is a FAIL naming the error."""
        switch = Switch(rollback_error=RuntimeError("registry locked"))
        result = run_check(switch_check(switch))
        finding = result.finding("rollback")
        assert "RuntimeError: registry locked" in finding.message
        assert Status.FAIL == result.status

    def test_restores_the_original_live_version(self) -> None:
        """When known_good differs from the live version, the live version is restored."""
        switch = Switch()
        switch.server.add("3", lambda x: np.asarray(x) * 3.0)
        switch.server.set_live("3")
        result = run_check(switch_check(switch, known_good="1", n_repeats=1))
        assert Status.PASS == result.status, str(result)
        assert "3" == switch.live_version()

    def test_nothing_live_and_no_known_good_fails(self) -> None:
        """With nothing live there is nothing to roll back to."""

        class Empty(Switch):
            def live_version(self) -> str | None:
                return None

        result = run_check(switch_check(Empty()))
        assert Status.FAIL == result.status
        assert "nothing to roll back to" in result.summary

    def test_candidate_already_live_fails(self) -> None:
        """Rolling back from the live version to itself is a configuration error."""
        switch = Switch()
        switch.server.set_live("2")
        result = run_check(switch_check(switch))
        assert "already live" in result.finding("known_good").message

    def test_max_gap_s_is_judged_when_given(self) -> None:
        """The longest gap without a successful response is a finding when limited."""
        result = run_check(switch_check(Switch(), max_gap_s=5.0))
        assert Status.PASS == result.finding("longest_gap_s").status


class TestConstruction:
    def test_is_a_check_and_the_fakes_are_protocols(self) -> None:
        """RollbackCheck satisfies Check; the fake is a Deployment and an Endpoint."""
        switch = Switch()
        assert isinstance(switch, Deployment)
        assert isinstance(switch, Endpoint)
        check = switch_check(switch)
        assert isinstance(check, Check)
        assert ("rollback", 7) == (check.name, check.rubric)

    @pytest.mark.parametrize(
        ("overrides", "match"),
        [
            ({"n_repeats": 0}, "'n_repeats'"),
            ({"max_rollback_s": -1.0}, "'max_rollback_s'"),
            ({"max_failed_requests": -1}, "'max_failed_requests'"),
            ({"max_failed_requests": 0.5}, "'max_failed_requests' must be a whole number"),
            ({"request_rate": -5.0}, "'request_rate'"),
            ({"known_good": "2"}, "must differ"),
            ({"budget_requests": 10}, "'budget_requests'"),
            ({"budget_s": 0.0}, "'budget_s'"),
            ({"probe_inputs": []}, "'probe_inputs' must not be empty"),
        ],
    )
    def test_rejects_bad_fields(self, overrides: dict[str, Any], match: str) -> None:
        """Fields are validated at construction, naming the field."""
        switch = Switch()
        settings: dict[str, Any] = {"probe_inputs": [[1.0]], **overrides}
        with pytest.raises(InvalidInput, match=match):
            RollbackCheck(switch, switch, "2", **settings)

    def test_refuses_a_remote_endpoint(self) -> None:
        """Load goes to 127.0.0.1 only unless allow_remote=True."""

        class Remote(Switch):
            url = "https://models.example.com"

        with pytest.raises(InvalidInput, match="allow_remote"):
            switch_check(Remote())

    def test_rejects_non_protocol_objects(self) -> None:
        """The deployment and endpoint must implement their protocols."""
        with pytest.raises(InvalidInput, match="'deployment'"):
            RollbackCheck(object(), Switch(), "2", probe_inputs=[[1.0]])  # type: ignore[arg-type]


class TestGlossary:
    def test_probe_inputs_are_keyword_only(self) -> None:
        """Only the deployment, the endpoint and the candidate are positional."""
        switch = Switch()
        with pytest.raises(TypeError):
            RollbackCheck(switch, switch, "2", *[[[1.0]]])

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("repeats", "n_repeats"),
            ("warmup_requests", "n_warmup_requests"),
            ("settle_requests", "n_settle_requests"),
            ("max_requests", "budget_requests"),
            ("max_duration_s", "budget_s"),
            ("atol", "prediction_atol"),
            ("rtol", "prediction_rtol"),
            ("rate_per_s", "request_rate"),
        ],
    )
    def test_old_keywords_name_their_new_name(self, old: str, new: str) -> None:
        """Each 0.1 keyword raises TypeError naming the keyword that replaced it."""
        switch = Switch()
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to '{new}'"):
            RollbackCheck(switch, switch, "2", probe_inputs=[[1.0]], **{old: 1})

    def test_limits_hold_their_condition(self) -> None:
        """Numbers become AtMost; a condition keeps its severity; max_gap_s may be off."""
        check = switch_check(Switch(), max_rollback_s=0.5, max_gap_s=AtMost(1.0, "warn"))
        assert AtMost(0.5) == check.max_rollback_s
        assert Status.WARN == check.max_gap_s.severity  # type: ignore[union-attr]
        assert switch_check(Switch()).max_gap_s is None

    def test_a_warn_limit_warns_instead_of_failing(self) -> None:
        """A slow propagation beyond a WARN-severity max_rollback_s gives WARN, not FAIL."""
        slow = Switch(propagation_s=0.1)
        result = run_check(switch_check(slow, max_rollback_s=AtMost(0.02, severity="warn")))
        assert Status.WARN == result.finding("rollback_time").status
        assert Status.WARN == result.status, str(result)
        assert "exceeding max_rollback_s 0.02 s" in result.summary

    def test_lossy_rollback_warns_with_a_warn_limit(self) -> None:
        """Failed requests beyond a WARN-severity max_failed_requests give WARN."""
        check, _ = demo_check("lossy_rollback", max_failed_requests=AtMost(0, severity="warn"))
        result = run_check(check)
        assert Status.WARN == result.finding("failed_requests").status
        assert Status.WARN == result.status, str(result)

    def test_metric_keys(self) -> None:
        """The metric keys follow the glossary's scheme."""
        result = run_check(switch_check(Switch(), n_repeats=1))
        assert {
            "rollback.p50_s",
            "rollback.p99_s",
            "first_response.p50_s",
            "first_response.p99_s",
            "command.p50_s",
            "command.p99_s",
            "n_failed_requests",
            "n_failed_requests_total",
            "longest_gap_s",
            "n_requests",
            "n_repeats",
        } == set(result.metrics)
