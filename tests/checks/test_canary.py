"""Tests for mlchecks.checks.canary: `CanaryCheck`."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import pytest

from mlchecks import Check, Context, Result, Status, run_check
from mlchecks.checks._canary_policy import CanaryMonitor
from mlchecks.checks._canary_report import Trickle, report_trickle
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks.canary import RENAMED, CanaryCheck
from mlchecks.conditions import AtLeast, AtMost
from mlchecks.demo import BASELINE_VERSION, CANDIDATE_VERSION, DemoSystem
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import ModelServer, Response
from mlchecks.serving import InProcessServer

# ------------------------------------------------------------------------------ fakes


@attrs.define
class Behaviour:
    """How a fake version answers: class probabilities, an error rate, a simulated latency.

    ``roll`` rotates the class scores by that many places (with balanced ``classes`` the
    same class mix, but another class for every request: a model trained on permuted
    labels); ``batch_axis`` answers shape ``(1, k)``, as V2 servers do for one row.
    """

    classes: Sequence[float] = (0.5, 0.3, 0.2)
    error_rate: float = 0.0
    latency_s: float = 0.01
    hang: bool = False
    roll: int = 0
    batch_axis: bool = False


BALANCED = (1 / 3, 1 / 3, 1 / 3)


class FakeServer:
    """A `ModelServer` whose versions answer from simulated distributions, without sleeping.

    Requests are integers; a version's class probabilities are drawn from a generator
    seeded by the request, so versions with the same `Behaviour` answer a request alike.
    Latencies are drawn log-normally around each version's ``latency_s`` and reported in
    the `Response`, so latency regressions are simulated, not waited for.
    """

    def __init__(
        self, behaviours: dict[str, Behaviour], *, live: str = "1", loaded: Sequence[str] = ("1",)
    ) -> None:
        self.behaviours = behaviours
        self.live = live
        self.loaded = list(loaded)
        self.rng = np.random.default_rng(0)
        self.load_failures = 0
        self.release = threading.Event()

    def load(self, version: str) -> None:
        if self.load_failures:
            self.load_failures -= 1
            raise ConnectionError("model store unavailable")
        if version not in self.behaviours:
            raise KeyError(version)
        if version not in self.loaded:
            self.loaded.append(version)

    def unload(self, version: str) -> None:
        self.loaded.remove(version)

    def versions(self) -> tuple[str, ...]:
        return tuple(self.loaded)

    def live_version(self) -> str:
        return self.live

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        version = version or self.live
        if version not in self.loaded:
            return Response(error=f"404 version {version} not loaded", error_kind="client")
        b = self.behaviours[version]
        if b.hang:
            self.release.wait(2.0)
        if self.rng.random() < b.error_rate:
            return Response(version=version, error="500 internal error", error_kind="server")
        latency = b.latency_s * float(np.exp(self.rng.normal(0.0, 0.3)))
        return Response(outputs=self.outputs(version, inputs), version=version, latency_s=latency)

    def outputs(self, version: str, inputs: Any) -> np.ndarray:
        """What ``version`` answers to request ``inputs`` (the offline prediction)."""
        b = self.behaviours[version]
        probs = np.random.default_rng(int(inputs)).dirichlet(np.asarray(b.classes) * 50)
        probs = np.roll(probs, b.roll)
        return probs[None, :] if b.batch_axis else probs


def fake_check(server: FakeServer, **overrides: Any) -> CanaryCheck:
    """A canary of version "2" against "1" on a fake server, stage 1 over 8000 requests."""
    settings: dict[str, Any] = {
        "probe_inputs": list(range(50)),
        "traffic": lambda: iter(range(8000)),
        "traffic_fraction": 0.2,
        "n_candidate_requests": 400,
        "max_psi": 0.05,
    }
    settings.update(overrides)
    return CanaryCheck(server, "2", **settings)


def healthy() -> FakeServer:
    return FakeServer({"1": Behaviour(), "2": Behaviour()})


# ----------------------------------------------------------------------- demo system


class Rolled:
    """A served demo model whose class outputs are rotated: trained on permuted labels."""

    def __init__(self, model: Callable[[Any], np.ndarray]) -> None:
        self.model = model

    def __call__(self, inputs: Any) -> np.ndarray:
        return np.roll(self.model(inputs), 1, axis=-1)


def demo_check(fault: str | None = None, *, flipped: bool = False, **overrides: Any) -> CanaryCheck:
    """A canary of the demo's candidate "2" in its production server, baseline "1" live.

    ``flipped`` serves a candidate whose class outputs are rotated (`Rolled`): it computes
    the same offline, so stage 0 passes, but it predicts another class for every request.
    """
    system = DemoSystem(seed=0, fault=fault, n_rows=4000, n_steps=100)
    rows = system.production_rows()
    if flipped:

        def loader(version: str) -> Callable[[Any], np.ndarray]:
            model = system.served_model(version)
            return Rolled(model) if version == CANDIDATE_VERSION else model

        server = InProcessServer(loader=loader, name="demo", seed=0)
        server.load(BASELINE_VERSION)
        server.set_live(BASELINE_VERSION)
    else:
        server = system.build_server(load_candidate=False)

    def offline(probes: list[Any]) -> np.ndarray:
        predictions = system.offline_predictions(CANDIDATE_VERSION, probes)
        return np.roll(predictions, 1, axis=-1) if flipped else predictions

    def traffic() -> Iterator[Any]:
        return itertools.islice(itertools.cycle(rows), 6000)

    settings: dict[str, Any] = {
        "probe_inputs": rows[:100],
        "offline_predictions": offline,
        "traffic": traffic,
        "traffic_fraction": 0.2,
        "n_candidate_requests": 200,
    }
    settings.update(overrides)
    return CanaryCheck(server, CANDIDATE_VERSION, **settings)


class TestCanaryCheckOnTheDemo:
    def test_passes_on_the_healthy_demo(self) -> None:
        """The healthy candidate loads, agrees with its offline predictions and passes stage 1."""
        result = run_check(demo_check())
        assert Status.PASS == result.status, str(result)
        assert Status.PASS == result.finding("trickle").status
        assert 200.0 == result.metrics["trickle.candidate.n_requests"]
        assert 1.0 == result.metrics["probe.agreement"]
        assert 6 == result.rubric

    def test_fails_on_canary_errors_naming_the_error_class(self) -> None:
        """A candidate crashing on ~5% of requests fails stage 0 with the server errors."""
        result = run_check(demo_check("canary_errors"))
        assert Status.FAIL == result.status
        finding = result.finding("probe.errors")
        assert Status.FAIL == finding.status
        assert "server errors" in finding.message
        assert "KeyError: 'phone'" in finding.message
        assert Status.SKIP == result.finding("trickle").status

    def test_stage_one_catches_canary_errors_that_stage_zero_lets_through(self) -> None:
        """With probe errors tolerated, the sequential error test fails the trickle."""
        result = run_check(
            demo_check("canary_errors", max_probe_errors=100, n_candidate_requests=400)
        )
        finding = result.finding("trickle.errors")
        assert Status.FAIL == finding.status
        assert "fails more often than the baseline" in finding.message
        assert "server" in finding.message

    def test_fails_on_canary_slow_naming_the_latency_ratio(self) -> None:
        """A candidate with a blocking lookup fails the latency test with its ratio."""
        result = run_check(demo_check("canary_slow"))
        assert Status.FAIL == result.status
        finding = result.finding("trickle.latency")
        assert Status.FAIL == finding.status
        assert "latency ratio" in finding.message
        assert "max_latency_ratio 1.2" in finding.message
        assert finding.observed is not None
        assert finding.observed > 1.2

    def test_fails_on_version_skew(self) -> None:
        """A server parsing requests with the old schema disagrees with the offline predictions."""
        result = run_check(demo_check("version_skew"))
        assert Status.FAIL == result.status
        finding = result.finding("probe.agreement")
        assert Status.FAIL == finding.status
        assert "offline predictions" in finding.message
        assert result.metrics["probe.agreement"] < 0.5

    def test_result_round_trips_through_json(self) -> None:
        """Evidence and metrics are JSON-safe."""
        result = run_check(demo_check("canary_slow"))
        assert result == Result.from_dict(json.loads(json.dumps(result.to_dict())))

    def test_label_flipped_candidate_fails_in_shadow_mode(self) -> None:
        """A candidate predicting another class for every request fails the disagreement test.

        It serves what it computes offline, so stage 0 passes; the paired disagreement rate
        names the rate, the limit and the number of paired requests.
        """
        result = run_check(demo_check(flipped=True, mode="shadow"))
        assert Status.PASS == result.finding("probe.agreement").status
        assert Status.FAIL == result.status
        finding = result.finding("trickle.disagreement")
        assert Status.FAIL == finding.status, str(result)
        assert "<= 0.1" == finding.limit
        assert "max_disagreement 0.1" in finding.message
        pairs = int(result.metrics["trickle.disagreement.n_pairs"])
        assert f"{pairs} of {pairs} paired requests (disagreement rate 1" in finding.message
        assert pairs < 20
        assert 1.0 == result.metrics["trickle.disagreement.rate"]
        assert result.metrics["trickle.disagreement.rate_low"] > 0.1
        assert "disagreement" in result.details["trickle"]["reasons"]
        example = result.details["disagreement_examples"][0]
        assert example["candidate"]["class"] != example["baseline"]["class"]

    def test_healthy_candidate_passes_in_shadow_mode(self) -> None:
        """The retrained demo candidate disagrees on a few percent of requests and passes."""
        result = run_check(demo_check(mode="shadow"))
        assert Status.PASS == result.status, str(result)
        finding = result.finding("trickle.disagreement")
        assert Status.PASS == finding.status
        assert 200.0 == result.metrics["trickle.disagreement.n_pairs"]
        low, high = result.details["trickle"]["disagreement_interval"]
        assert low <= result.metrics["trickle.disagreement.rate"] <= high
        assert result.metrics["trickle.disagreement.rate"] < 0.1
        assert (low, high) == (
            result.metrics["trickle.disagreement.rate_low"],
            result.metrics["trickle.disagreement.rate_high"],
        )


class TestStageZero:
    def test_load_is_retried_after_errors(self) -> None:
        """Loading that fails twice and then succeeds passes, reporting the failed attempts."""
        server = healthy()
        server.load_failures = 2
        result = run_check(fake_check(server, traffic=None))
        assert Status.PASS == result.finding("load").status
        assert "after 2 failed attempts" in result.finding("load").message

    def test_load_that_keeps_failing_fails(self) -> None:
        """After the retries are used up the load fails with the last error."""
        server = healthy()
        server.load_failures = 5
        result = run_check(fake_check(server, traffic=None, n_load_retries=1))
        finding = result.finding("load")
        assert Status.FAIL == finding.status
        assert "ConnectionError: model store unavailable" in finding.message

    def test_timeouts_are_an_error_class(self) -> None:
        """A request slower than request_timeout_s counts as a timeout error."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour(hang=True)})
        try:
            result = run_check(
                fake_check(server, traffic=None, probe_inputs=[0], request_timeout_s=0.05)
            )
        finally:
            server.release.set()
        finding = result.finding("probe.errors")
        assert Status.FAIL == finding.status
        assert "1 timeout" in finding.message

    def test_disagreement_with_offline_predictions_fails(self) -> None:
        """Served outputs unlike the offline predictions fail the agreement finding."""
        offline = np.tile([0.0, 0.0, 1.0], (50, 1))
        result = run_check(fake_check(healthy(), traffic=None, offline_predictions=offline))
        assert Status.FAIL == result.finding("probe.agreement").status

    def test_output_shape_differing_from_offline_fails(self) -> None:
        """Outputs of another shape than the offline predictions are malformed."""
        offline = np.zeros((50, 4))
        result = run_check(fake_check(healthy(), traffic=None, offline_predictions=offline))
        assert "shape" in result.finding("probe.outputs").message
        assert Status.FAIL == result.finding("probe.outputs").status

    def test_metadata_skew_fails_naming_the_component(self) -> None:
        """A server running other library versions than training used fails per component."""
        result = run_check(
            fake_check(
                healthy(),
                traffic=None,
                trained_with={"numpy": "2.4.1", "schema": "7"},
                serving_with=lambda: {"numpy": "2.4.1", "schema": "6"},
            )
        )
        finding = result.finding("metadata.skew")
        assert Status.FAIL == finding.status
        assert "schema '7'" in finding.message
        assert "'6'" in finding.message
        assert ["schema"] == result.details["metadata"]["skewed"]

    def test_metadata_missing_on_the_server_warns(self) -> None:
        """A component the server does not report warns; the name stays out of finding names."""
        result = run_check(
            fake_check(
                healthy(),
                traffic=None,
                trained_with={"numpy": "2.4.1", "schema": "7"},
                serving_with={"numpy": "2.4.1"},
            )
        )
        assert Status.WARN == result.status
        assert "'schema'" in result.finding("metadata.missing").message

    def test_unloads_the_candidate_afterwards(self) -> None:
        """The server is left with the versions it had."""
        server = healthy()
        run_check(fake_check(server, traffic=None))
        assert ("1",) == server.versions()

    def test_an_exception_from_infer_is_a_connection_error(self) -> None:
        """A request whose infer() raises is a connection error naming the exception."""

        class Raising(FakeServer):
            def infer(self, inputs: Any, version: str | None = None) -> Response:
                if version == "2":
                    raise RuntimeError("socket closed")
                return super().infer(inputs, version)

        result = run_check(fake_check(Raising({"1": Behaviour(), "2": Behaviour()}), traffic=None))
        finding = result.finding("probe.errors")
        assert Status.FAIL == finding.status
        assert "connection errors" in finding.message
        assert "infer() raised RuntimeError: socket closed" in finding.message

    def test_a_load_that_leaves_the_candidate_unlisted_fails_and_is_cleaned_up(self) -> None:
        """load() returning without the version listed fails the load finding."""

        class Forgetful(FakeServer):
            def load(self, version: str) -> None:
                pass

            def unload(self, version: str) -> None:
                raise KeyError(version)

        result = run_check(fake_check(Forgetful({"1": Behaviour(), "2": Behaviour()})))
        finding = result.finding("load")
        assert Status.FAIL == finding.status
        assert "does not list the version" in finding.message
        assert Status.FAIL == result.status

    def test_without_traffic_stage_zero_alone_passes(self) -> None:
        """With no traffic the check is stage 0 only."""
        result = run_check(fake_check(healthy(), traffic=None))
        assert Status.PASS == result.status
        assert "trickle" not in {f.name for f in result.findings}


class SharedErrors(FakeServer):
    """Both versions fail the requests in ``failing`` (a flaky backend); the candidate "2"
    also fails those in ``candidate_failing``."""

    def __init__(
        self, failing: set[int], candidate_failing: set[int] = frozenset(), **kwargs: Any
    ) -> None:
        super().__init__({"1": Behaviour(), "2": Behaviour()}, **kwargs)
        self.failing, self.candidate_failing = failing, candidate_failing

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        if int(inputs) in self.failing or (
            version == "2" and int(inputs) in self.candidate_failing
        ):
            return Response(version=version, error="503 backend unavailable", error_kind="server")
        return super().infer(inputs, version)


class TestProbeErrorsAgainstTheBaseline:
    def test_errors_both_versions_make_pass(self) -> None:
        """Probes both versions fail are no evidence against the candidate."""
        server = SharedErrors({3, 17, 40})
        result = run_check(fake_check(server, traffic=None, probe_inputs=list(range(100))))
        finding = result.finding("probe.errors")
        assert Status.PASS == finding.status, finding.message
        assert (3.0, 0.0, 0.0) == tuple(
            result.metrics[k]
            for k in (
                "probe.baseline.n_errors",
                "probe.errors.candidate_only",
                "probe.errors.baseline_only",
            )
        )

    def test_candidate_only_errors_fail(self) -> None:
        """Eight candidate-only errors of 100 paired probes: p = 0.0039, a FAIL."""
        server = SharedErrors({3}, set(range(10, 90, 10)))
        result = run_check(fake_check(server, traffic=None, probe_inputs=list(range(100))))
        finding = result.finding("probe.errors")
        assert Status.FAIL == finding.status
        assert "8 failed on the candidate only" in finding.message
        assert result.metrics["probe.errors.p_value"] == pytest.approx(0.5**8)

    def test_a_few_candidate_only_errors_are_not_evidence(self) -> None:
        """Two candidate-only errors (p = 0.25) pass: no evidence the candidate is worse."""
        server = SharedErrors(set(), {10, 20})
        result = run_check(fake_check(server, traffic=None, probe_inputs=list(range(100))))
        assert Status.PASS == result.finding("probe.errors").status
        assert "no evidence" in result.finding("probe.errors").message

    def test_without_a_baseline_the_limit_is_judged_on_a_bound(self) -> None:
        """No baseline (the live version is the candidate): FAIL above the exact bound,
        WARN when only the count is above max_probe_errors, PASS at or below it."""
        probes = list(range(100))

        def run(failing: set[int], limit: int) -> Result:
            server = SharedErrors(failing, live="2", loaded=("1", "2"))
            return run_check(
                fake_check(server, traffic=None, probe_inputs=probes, max_probe_errors=limit)
            )

        assert Status.FAIL == run({1}, 0).finding("probe.errors").status
        warn = run({1, 2, 3, 4}, 2).finding("probe.errors")
        assert Status.WARN == warn.status
        assert "inconclusive" in warn.message
        assert Status.FAIL == run(set(range(12)), 2).finding("probe.errors").status
        assert Status.PASS == run({1, 2}, 2).finding("probe.errors").status

    def test_a_baseline_failing_most_probes_is_no_yardstick(self) -> None:
        """A broken baseline cannot excuse the candidate's errors."""
        server = SharedErrors(set(range(60)), {70})
        finding = run_check(
            fake_check(server, traffic=None, probe_inputs=list(range(100)))
        ).finding("probe.errors")
        assert Status.FAIL == finding.status  # it fails most probes too
        assert "no yardstick" in finding.message


class TestStageOne:
    def test_identical_versions_pass(self) -> None:
        """A candidate behaving like the baseline passes once it served the planned requests."""
        result = run_check(fake_check(healthy()))
        assert Status.PASS == result.status, str(result)
        assert 400.0 == result.metrics["trickle.candidate.n_requests"]

    def test_more_errors_fail_the_error_test(self) -> None:
        """Twenty times the baseline's error rate fails on errors."""
        server = FakeServer({"1": Behaviour(error_rate=0.005), "2": Behaviour(error_rate=0.1)})
        result = run_check(fake_check(server, max_probe_errors=50))
        assert Status.FAIL == result.finding("trickle.errors").status
        assert "trickle" == result.findings[-1].name

    def test_slower_candidate_fails_the_latency_test(self) -> None:
        """A candidate twice as slow fails the latency test, reporting the ratio."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour(latency_s=0.02)})
        result = run_check(fake_check(server))
        finding = result.finding("trickle.latency")
        assert Status.FAIL == finding.status
        assert finding.observed == pytest.approx(2.0, rel=0.2)

    def test_shifted_predictions_fail_the_shift_test(self) -> None:
        """A candidate predicting another class mix fails the shift test with PSI reported."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour(classes=(0.2, 0.3, 0.5))})
        result = run_check(fake_check(server))
        finding = result.finding("trickle.shift")
        assert Status.FAIL == finding.status
        assert "PSI" in finding.message

    @pytest.mark.parametrize(("max_psi", "status"), [(0.05, Status.WARN), (0.2, Status.PASS)])
    def test_a_detected_shift_near_the_limit_is_inconclusive(
        self, max_psi: float, status: Status
    ) -> None:
        """A detected shift of true PSI 0.04 is tolerated; its finding WARNs while the
        interval of the PSI holds max_psi (0.05), and PASSes when it is below (0.2)."""
        check = fake_check(healthy(), max_psi=max_psi, n_candidate_requests=3000)
        monitor = CanaryMonitor(check._policy())
        rng = np.random.default_rng(0)
        while monitor.decision == "continue":
            arm = bool(rng.random() < 0.2)
            label = int(rng.random() < (0.6 if arm else 0.5))
            monitor.observe(candidate=arm, error=False, latency_s=0.01, label=label)
        b = ResultBuilder.of(check)
        report_trickle(check, monitor, Trickle("1"), b)
        finding = next(f for f in b.findings if f.name == "trickle.shift")
        assert ("pass", True) == (monitor.decision, monitor.shift_tolerated)
        assert status == finding.status, finding.message
        low, high = (b.metrics[f"trickle.shift.psi_{k}"] for k in ("low", "high"))
        assert low < 0.0405 < high

    def test_short_traffic_is_inconclusive(self) -> None:
        """Traffic that ends before the planned candidate requests gives WARN with evidence."""
        result = run_check(fake_check(healthy(), traffic=list(range(300))))
        assert Status.WARN == result.status
        assert "inconclusive after 300 requests" in result.finding("trickle").message

    def test_budget_requests_bounds_the_trickle(self) -> None:
        """Stage 1 consumes at most budget_requests requests."""
        result = run_check(fake_check(healthy(), budget_requests=250))
        assert 250.0 == result.metrics["trickle.n_requests"]
        assert Status.WARN == result.status

    def test_shadow_mode_compares_pairs(self) -> None:
        """In shadow mode mirrored requests go to both versions and a slow candidate fails."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour(latency_s=0.03)})
        result = run_check(fake_check(server, mode="shadow"))
        assert Status.FAIL == result.finding("trickle.latency").status
        assert "shadow" == result.details["trickle"]["mode"]

    def test_shadow_mode_passes_identical_versions(self) -> None:
        """Identical versions pass in shadow mode."""
        result = run_check(fake_check(healthy(), mode="shadow"))
        assert Status.PASS == result.status, str(result)

    def test_split_mode_passes_a_permuted_candidate_and_says_why(self) -> None:
        """With balanced classes, permuted predictions keep the class mix: split mode cannot
        see them, and its summary and details say so and suggest shadow mode."""
        server = FakeServer({"1": Behaviour(classes=BALANCED), "2": Behaviour(BALANCED, roll=1)})
        result = run_check(fake_check(server))
        assert Status.PASS == result.status, str(result)
        assert "split mode compares class mixes" in result.summary
        assert "mode='shadow' compares predictions" in result.summary
        assert "not individual predictions" in result.details["trickle"]["note"]
        assert "trickle.disagreement" not in {f.name for f in result.findings}

    def test_shadow_mode_fails_a_permuted_candidate(self) -> None:
        """The same permuted candidate fails the paired disagreement test in shadow mode."""
        server = FakeServer({"1": Behaviour(classes=BALANCED), "2": Behaviour(BALANCED, roll=1)})
        result = run_check(fake_check(server, mode="shadow"))
        assert Status.FAIL == result.finding("trickle.disagreement").status
        assert ("disagreement",) == tuple(result.details["trickle"]["reasons"])
        assert 0.1 == result.details["trickle"]["max_disagreement"]
        assert "note" not in result.details["trickle"]

    def test_without_max_disagreement_the_rate_is_only_reported(self) -> None:
        """max_disagreement=None reports the rate and its interval without judging it."""
        server = FakeServer({"1": Behaviour(classes=BALANCED), "2": Behaviour(BALANCED, roll=1)})
        result = run_check(fake_check(server, mode="shadow", max_disagreement=None))
        finding = result.finding("trickle.disagreement")
        assert (Status.PASS, "reported only") == (finding.status, finding.limit)
        assert "not judged" in finding.message
        assert 1.0 == result.metrics["trickle.disagreement.rate"]
        assert "trickle.disagreement.evalue" not in result.metrics
        assert 4 == result.details["trickle"]["tests"]  # errors, latency, tail, shift

    def test_shadow_mode_splits_alpha_six_ways(self) -> None:
        """With the disagreement test stage 1's five tests and stage 0's probe-error test
        each get alpha / 6 (Bonferroni); in split mode alpha / 5."""
        shadow = run_check(fake_check(healthy(), mode="shadow", alpha=0.05))
        split = run_check(fake_check(healthy(), alpha=0.04))
        got = tuple(
            shadow.details["trickle"][k] for k in ("tests", "alpha_per_test", "evalue_threshold")
        )
        assert (5, 0.05 / 6, 120.0) == pytest.approx(got)
        assert (4, 0.008) == pytest.approx(
            (split.details["trickle"]["tests"], split.details["trickle"]["alpha_per_test"])
        )
        assert "e-value < 120" == shadow.finding("trickle.errors").limit
        assert "p > 0.00833" in shadow.finding("probe.errors").limit

    def test_unclassifiable_outputs_leave_the_disagreement_unmeasured(self) -> None:
        """Pairs whose outputs have no class or score give a WARN naming classify=."""
        result = run_check(
            fake_check(healthy(), mode="shadow", classify=lambda outputs: None, traffic=range(3000))
        )
        finding = result.finding("trickle.disagreement")
        assert Status.WARN == finding.status
        assert "classify=" in finding.message

    def test_routing_is_reproducible_from_the_context_seed(self) -> None:
        """The same seed routes the same requests to the candidate."""
        first = run_check(fake_check(healthy()), Context(seed=3))
        second = run_check(fake_check(healthy()), Context(seed=3))
        assert first.metrics["trickle.n_requests"] == second.metrics["trickle.n_requests"]

    def test_needs_a_baseline(self) -> None:
        """Without a live version or a baseline, stage 1 fails saying what is missing."""

        class NoLive(FakeServer):
            def live_version(self) -> Any:
                return None

        server = NoLive({"1": Behaviour(), "2": Behaviour()})
        result = run_check(fake_check(server))
        assert "needs a baseline" in result.finding("trickle").message


class TestConstruction:
    def test_is_a_check(self) -> None:
        """CanaryCheck satisfies the Check protocol; the fake satisfies ModelServer."""
        server = healthy()
        assert isinstance(server, ModelServer)
        check = fake_check(server)
        assert isinstance(check, Check)
        assert ("canary", 6) == (check.name, check.rubric)

    @pytest.mark.parametrize(
        ("overrides", "match"),
        [
            ({"probe_inputs": []}, "'probe_inputs' must not be empty"),
            ({"traffic_fraction": 0.0}, "'traffic_fraction'"),
            ({"traffic_fraction": 1.0}, "'traffic_fraction'"),
            ({"alpha": 0.5}, "'alpha'"),
            ({"mode": "mirror"}, "'mode' must be one of"),
            ({"max_latency_ratio": 0.9}, "'max_latency_ratio'"),
            ({"clip_ratio": 1.1}, "'clip_ratio' must exceed"),
            ({"n_candidate_requests": 0}, "'n_candidate_requests'"),
            ({"traffic": 5}, "'traffic'"),
            ({"offline_predictions": np.zeros(3)}, "one per probe input"),
            ({"trained_with": ["numpy"]}, "'trained_with'"),
            ({"score_bins": (0.5, 0.2)}, "'score_bins'"),
            ({"max_disagreement": 0.0}, "'max_disagreement'"),
            ({"max_disagreement": 1.5}, "'max_disagreement'"),
            ({"score_atol": -0.1}, "'score_atol'"),
            ({"max_probe_errors": 0.5}, "'max_probe_errors' must be a whole number"),
            ({"min_agreement": 1.5}, "'min_agreement'"),
            ({"budget_s": 0}, "'budget_s'"),
        ],
    )
    def test_rejects_bad_fields(self, overrides: dict[str, Any], match: str) -> None:
        """Each field is validated with a message naming it."""
        with pytest.raises(InvalidInput, match=match):
            fake_check(healthy(), **overrides)

    def test_refuses_a_remote_server(self) -> None:
        """Load goes to 127.0.0.1 only unless allow_remote=True."""

        class Remote(FakeServer):
            url = "http://203.0.113.9:8080"

        server = Remote({"1": Behaviour(), "2": Behaviour()})
        with pytest.raises(InvalidInput, match="allow_remote"):
            fake_check(server)
        assert fake_check(server, allow_remote=True).allow_remote

    def test_server_must_be_an_endpoint(self) -> None:
        """A server without infer() is rejected."""
        with pytest.raises(InvalidInput, match="'server'"):
            CanaryCheck(object(), "2", probe_inputs=[1])  # type: ignore[arg-type]


class TestOutputShapes:
    def test_label_default_classifies_vectors_and_scores(self) -> None:
        """Vectors give their argmax, scalar scores their bin, other outputs no class."""
        label: Callable[[Any], int | None] = fake_check(healthy())._reader().label
        assert 2 == label(np.array([0.1, 0.2, 0.7]))
        assert 9 == label(0.95)
        assert 0 == label(0.05)
        assert 3 == label(np.int64(3))
        assert 0 == label("text")  # a text label, coded in the order first seen

    def test_label_accepts_a_single_row_batch_axis(self) -> None:
        """(k,) and (1, k) are one example's class scores; (1,) and (1, 1) one score."""
        label: Callable[[Any], int | None] = fake_check(healthy())._reader().label
        assert 2 == label(np.array([[0.1, 0.2, 0.7]]))
        assert 9 == label(np.array([0.95]))
        assert 9 == label(np.array([[0.95]]))
        assert 1 == label(np.array([[1]]))
        assert label(np.zeros((2, 3))) is None  # two examples: no single class

    @pytest.mark.parametrize(
        ("candidate", "baseline", "expected"),
        [
            ([0.1, 0.9], [0.2, 0.8], False),
            ([0.9, 0.1], [0.2, 0.8], True),
            ([[0.9, 0.1]], [0.2, 0.8], True),
            ([[0.1, 0.9]], [[0.3, 0.7]], False),
            (0.50, 0.55, False),
            ([0.50], [[0.65]], True),
            (2, 2, False),
            (np.int64(1), np.int64(2), True),
            (float("nan"), 0.5, True),
            ([0.2, 0.3, 0.5], [0.5, 0.5], True),
            (np.zeros((2, 3)), np.zeros((2, 3)), None),
            ("text", 0.5, True),
        ],
    )
    def test_disagreement_of_two_outputs(
        self, candidate: Any, baseline: Any, expected: Any
    ) -> None:
        """Class vectors differ in their argmax, scores beyond score_atol, shapes always."""
        check = fake_check(healthy(), score_atol=0.1)
        assert expected == check._reader().disagree(np.asarray(candidate), np.asarray(baseline))

    def test_disagreement_follows_classify_when_given(self) -> None:
        """A user's classify decides both the class and whether two outputs differ."""
        check = fake_check(healthy(), classify=lambda outputs: int(np.asarray(outputs).sum() > 1))
        assert check._reader().disagree(np.array([0.9, 0.9]), np.array([0.1, 0.1]))
        assert not check._reader().disagree(np.array([0.9, 0.0]), np.array([0.1, 0.0]))

    @pytest.mark.parametrize(
        ("served", "offline"),
        [("(1, k)", "(n, k)"), ("(k,)", "(n, 1, k)"), ("(1, k)", "(n, 1, k)")],
    )
    def test_stage_zero_accepts_a_single_row_batch_axis(self, served: str, offline: str) -> None:
        """Served (1, k) outputs match offline (n, k) predictions, and (k,) match (n, 1, k)."""
        batch_axis = served == "(1, k)"
        server = FakeServer({"1": Behaviour(), "2": Behaviour(batch_axis=batch_axis)})
        predictions = np.stack([server.outputs("2", i).reshape(-1) for i in range(50)])
        if offline == "(n, 1, k)":
            predictions = predictions[:, None, :]
        result = run_check(fake_check(server, traffic=None, offline_predictions=predictions))
        assert Status.PASS == result.status, str(result)
        assert 1.0 == result.metrics["probe.agreement"]
        assert 1.0 == result.metrics["probe.class_agreement"]

    def test_stage_one_classifies_single_row_batch_outputs(self) -> None:
        """(1, k) answers get classes and are compared in shadow mode without classify=."""
        server = FakeServer(
            {
                "1": Behaviour(BALANCED, batch_axis=True),
                "2": Behaviour(BALANCED, roll=1, batch_axis=True),
            }
        )
        result = run_check(fake_check(server, mode="shadow"))
        assert Status.FAIL == result.finding("trickle.disagreement").status
        assert 3 == len(result.details["trickle"]["classes"])


KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class TestGlossary:
    @pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
    def test_old_keywords_name_their_new_name(self, old: str, new: str) -> None:
        """A 0.1 keyword raises TypeError naming the keyword that replaced it."""
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to '{new}'"):
            fake_check(healthy(), **{old: 1})

    def test_only_server_and_candidate_are_positional(self) -> None:
        """Everything after the system under test is keyword-only."""
        with pytest.raises(TypeError):
            CanaryCheck(healthy(), "2", [1, 2])  # type: ignore[arg-type,call-arg]

    def test_limits_hold_conditions(self) -> None:
        """A number becomes the limit's condition; a condition is kept with its severity."""
        check = fake_check(healthy(), max_latency_ratio=1.5, min_agreement=AtLeast(0.9, "warn"))
        assert AtMost(1.5) == check.max_latency_ratio
        assert AtLeast(0.9, severity=Status.WARN) == check.min_agreement
        assert AtMost(0.0) == check.max_probe_errors
        assert check.max_probe_latency_s is None

    def test_metric_keys_and_finding_names_follow_the_scheme(self) -> None:
        """Keys are dot-separated snake_case, with no version name in them."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour()})
        result = run_check(
            fake_check(
                server,
                mode="shadow",
                trained_with={"numpy": "2"},
                serving_with={"numpy": "2"},
                max_probe_latency_s=1.0,
            )
        )
        names = [*result.metrics, *(f.name for f in result.findings)]
        assert all(KEY.match(name) for name in names), names
        assert not [name for name in names if {"1", "2", "numpy"} & set(name.split("."))]
        assert {
            "load.duration_s",
            "probe.n_requests",
            "probe.n_errors",
            "probe.latency.p50_s",
            "probe.latency.p99_s",
            "trickle.n_requests",
            "trickle.candidate.n_requests",
            "trickle.candidate.error_rate",
            "trickle.baseline.latency.p50_s",
            "trickle.latency.ratio",
            "trickle.shift.psi",
            "trickle.disagreement.rate",
        } <= set(result.metrics)
        assert ("2", "1") == (result.details["candidate"], result.details["baseline"])


class TestSeverity:
    """A limit given as a number FAILs when crossed; as a condition with severity="warn" it
    WARNs, and a stage-0 warning does not stop stage 1."""

    def test_latency_ratio(self) -> None:
        """A twice-as-slow candidate against a warning latency limit warns."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour(latency_s=0.02)})
        number = run_check(fake_check(server, max_latency_ratio=1.2))
        server = FakeServer({"1": Behaviour(), "2": Behaviour(latency_s=0.02)})
        warn = run_check(fake_check(server, max_latency_ratio=AtMost(1.2, severity="warn")))
        assert Status.FAIL == number.finding("trickle.latency").status
        assert (Status.WARN, Status.WARN) == (
            warn.finding("trickle.latency").status,
            warn.finding("trickle").status,
        )
        assert Status.WARN == warn.status
        assert "slower than max_latency_ratio 1.2" in warn.summary

    def test_probe_errors(self) -> None:
        """Probe errors beyond a warning limit warn, and the trickle still runs."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour(error_rate=0.3)})
        number = run_check(fake_check(server, traffic=range(300), max_probe_errors=0))
        warn = run_check(
            fake_check(server, traffic=range(300), max_probe_errors=AtMost(0, severity="warn"))
        )
        assert Status.FAIL == number.finding("probe.errors").status
        assert Status.SKIP == number.finding("trickle").status
        assert Status.WARN == warn.finding("probe.errors").status
        assert Status.SKIP != warn.finding("trickle").status

    def test_agreement(self) -> None:
        """Disagreeing with the offline predictions against a warning floor warns."""
        offline = np.tile([0.0, 0.0, 1.0], (50, 1))
        number = fake_check(healthy(), traffic=None, offline_predictions=offline)
        warn = attrs.evolve(number, min_agreement=AtLeast(0.99, severity="warn"))
        assert Status.FAIL == run_check(number).status
        result = run_check(warn)
        assert (Status.WARN, Status.WARN) == (
            result.status,
            result.finding("probe.agreement").status,
        )

    def test_disagreement(self) -> None:
        """A permuted candidate in shadow mode against a warning disagreement limit warns."""
        server = FakeServer({"1": Behaviour(classes=BALANCED), "2": Behaviour(BALANCED, roll=1)})
        limit = AtMost(0.1, severity="warn")
        result = run_check(fake_check(server, mode="shadow", max_disagreement=limit))
        assert Status.WARN == result.finding("trickle.disagreement").status
        assert Status.WARN == result.status

    def test_shift(self) -> None:
        """A shifted class mix against a warning PSI limit warns."""
        server = FakeServer({"1": Behaviour(), "2": Behaviour(classes=(0.2, 0.3, 0.5))})
        result = run_check(fake_check(server, max_psi=AtMost(0.05, severity="warn")))
        assert Status.WARN == result.finding("trickle.shift").status
        assert Status.WARN == result.status

    def test_a_disagreement_limit_of_one_is_never_exceeded(self) -> None:
        """max_disagreement=1 is accepted; no rate exceeds it, so the test does not run."""
        server = FakeServer({"1": Behaviour(classes=BALANCED), "2": Behaviour(BALANCED, roll=1)})
        result = run_check(fake_check(server, mode="shadow", max_disagreement=1.0))
        finding = result.finding("trickle.disagreement")
        assert (Status.PASS, "<= 1") == (finding.status, finding.limit)
        assert 4 == result.details["trickle"]["tests"]


def test_several_named_outputs_ask_for_output() -> None:
    """A model answering two named tensors (probabilities and a label) cannot be judged as
    one output: stage 0 FAILs saying which tensors came back and how to pick one."""

    def loader(version: str) -> Any:
        return lambda x: {"proba": np.array([0.7, 0.3]), "label": np.array(0)}

    server = InProcessServer(loader=loader)
    server.load("1")
    server.set_live("1")
    result = run_check(CanaryCheck(server, "2", probe_inputs=[[0.0]] * 5))
    finding = result.finding("probe.outputs")
    assert Status.FAIL == finding.status
    assert "several named tensors (proba, label)" in finding.message
    assert "output='proba'" in finding.message
