"""Tests for mlchecks.demo.faults: the registry and the system-level effect of every fault.

Each fault gets a test showing the demo system misbehaving the way its description says,
next to the same measurement on the healthy system.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks.demo import FAULTS, DemoSystem, Fault, get_fault, list_faults
from mlchecks.demo.faults import Components, components
from mlchecks.protocols import Response

CHECKS = {
    "reproducibility": 1,
    "checkpoint_restore": 2,
    "pipeline": 3,
    "quality": 4,
    "single_batch": 5,
    "canary": 6,
    "rollback": 7,
}


@pytest.fixture(scope="module")
def healthy() -> DemoSystem:
    return DemoSystem(seed=0)


def differing(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    return sorted(k for k in a if not np.array_equal(a[k], b[k]))


def resume_experiment(system: DemoSystem, tmp_path: Path) -> tuple[list[str], list[str]]:
    """Train 300 steps straight, and 150 + checkpoint + restore + 150; compare the states.

    Returns the state entries that differ right after the restore, and at the end.
    """
    batches = system.batches(0)
    full = system.make_trainer(0)
    for batch in batches:
        full.train_step(batch)
    first = system.make_trainer(0)
    for batch in batches[:150]:
        first.train_step(batch)
    first.save(tmp_path / "mid.npz")
    resumed = system.make_trainer(0)
    resumed.load(tmp_path / "mid.npz")
    after_load = differing(first.state(), resumed.state())
    for batch in batches[150:]:
        resumed.train_step(batch)
    return after_load, differing(full.state(), resumed.state())


def one_step(system: DemoSystem) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Any]:
    """State before and after one training step on the first batch, and the trainer."""
    trainer = system.make_trainer(0)
    before = trainer.state()
    trainer.train_step(system.batches(0)[0])
    return before, trainer.state(), trainer


def rollback_under_load(system: DemoSystem) -> tuple[list[Response], list[Response]]:
    """Deploy the candidate, then roll back while another thread sends live requests.

    Returns the background thread's responses and those of 10 requests sent afterwards.
    """
    service = system.service()
    requests = system.production_rows()[:30]
    service.set_live("2")
    responses: list[Response] = []
    stop, started = threading.Event(), threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            responses.append(service.infer(requests[i % len(requests)]))
            i += 1
            if i == 50:
                started.set()

    thread = threading.Thread(target=load)
    thread.start()
    try:
        started.wait(timeout=10)
        service.set_live("1")
        after = [service.infer(row) for row in requests[:10]]
    finally:
        stop.set()
        thread.join()
    return responses, after


class TestRegistry:
    def test_twelve_faults_with_consistent_fields(self) -> None:
        """Every fault names a known check and that check's rubric test."""
        assert 12 == len(FAULTS)
        for name, fault in FAULTS.items():
            assert name == fault.name
            assert CHECKS[fault.check] == fault.rubric
            assert "\n" not in fault.description
            assert fault.description

    def test_list_faults_is_ordered_by_rubric(self) -> None:
        """list_faults() returns the registry's faults in rubric order."""
        faults = list_faults()
        assert list(FAULTS.values()) == list(faults)
        assert sorted(f.rubric for f in faults) == [f.rubric for f in faults]

    def test_registry_is_read_only(self) -> None:
        """FAULTS cannot be modified in place."""
        with pytest.raises(TypeError):
            FAULTS["new"] = FAULTS["dead_parameter"]  # type: ignore[index]

    def test_get_fault(self) -> None:
        """Names resolve to faults, None stays None, unknown names list the known ones."""
        assert FAULTS["canary_slow"] is get_fault("canary_slow")
        assert get_fault(None) is None
        assert FAULTS["canary_slow"] is get_fault(FAULTS["canary_slow"])
        with pytest.raises(ValueError, match="stale_rollback or None \\(got 'stale'\\)"):
            get_fault("stale")
        with pytest.raises(ValueError, match="not one of the registered faults"):
            get_fault(Fault("x", "y", "canary", 6))

    def test_every_fault_swaps_something(self) -> None:
        """Each fault changes at least one component; no fault leaves the system healthy."""
        for name in FAULTS:
            assert Components() != components(name), name

    def test_system_accepts_a_fault_object(self) -> None:
        """DemoSystem takes a Fault as well as its name."""
        assert "dead_parameter" == DemoSystem(fault=FAULTS["dead_parameter"]).fault_name


class TestNondeterministicTraining:
    def test_same_seed_runs_differ(self) -> None:
        """Two trainings with the same seed diverge from the first step."""
        system = DemoSystem(fault="nondeterministic_training")
        a, b = system.train(0), system.train(0)
        assert a.step_hashes[0] != b.step_hashes[0]
        assert not np.array_equal(a.predictions, b.predictions)

    def test_healthy_runs_are_identical(self, healthy: DemoSystem) -> None:
        """On healthy code the two runs match step by step."""
        assert healthy.train(0).step_hashes == healthy.train(0).step_hashes


class TestCheckpointFaults:
    def test_healthy_resume_is_exact(self, healthy: DemoSystem, tmp_path: Path) -> None:
        """Healthy checkpoints restore everything and resumed training is bitwise identical."""
        assert ([], []) == resume_experiment(healthy, tmp_path)

    def test_forgets_optimizer_state(self, tmp_path: Path) -> None:
        """The restore zeroes the Adam moments and counter; the resumed run then diverges."""
        system = DemoSystem(fault="checkpoint_forgets_optimizer_state")
        after_load, at_end = resume_experiment(system, tmp_path)
        moments = sorted(f"adam/{m}/{p}" for m in "mv" for p in ("W1", "b1", "W2", "b2"))
        assert sorted([*moments, "adam/t"]) == after_load
        assert {"param/W1", "param/b1", "param/W2", "param/b2"} <= set(at_end)

    def test_forgets_optimizer_state_writes_no_moments(self, tmp_path: Path) -> None:
        """The checkpoint file itself lacks the adam/* entries."""
        trainer = DemoSystem(fault="checkpoint_forgets_optimizer_state").make_trainer(0)
        trainer.save(tmp_path / "c.npz")
        with np.load(tmp_path / "c.npz") as data:
            assert not [name for name in data.files if name.startswith("adam/")]

    def test_forgets_rng(self, tmp_path: Path) -> None:
        """The restore keeps the fresh RNG; different dropout masks then change training."""
        system = DemoSystem(fault="checkpoint_forgets_rng")
        after_load, at_end = resume_experiment(system, tmp_path)
        assert ["rng/state"] == after_load
        assert {"param/W1", "param/b1", "param/W2", "param/b2", "rng/state"} <= set(at_end)


class TestTrainingServingSkew:
    def test_serving_features_differ_in_income(self) -> None:
        """The serving path's features differ from the batch path's in the 'income' column only."""
        system = DemoSystem(fault="training_serving_skew")
        pipeline = system.components.pipeline().fit(system.train_table)
        records = system.production_rows()[:200]
        served = np.stack([pipeline.transform_row(r) for r in records])
        batch = pipeline.transform(system.holdout_table)[:200]
        bad = np.abs(served - batch).max(axis=0) > 1e-9
        assert ["income"] == [n for n, b in zip(pipeline.feature_names, bad, strict=True) if b]

    def test_production_serving_keeps_the_released_feature_code(self) -> None:
        """The fault is in the feature code under test; production serving is untouched."""
        system = DemoSystem(fault="training_serving_skew")
        served = system.served_model("1")(system.production_rows())
        offline = system.offline_predictions("1")
        assert np.allclose(served, offline)


class TestSliceRegression:
    def test_slice_drops_while_aggregate_holds(self) -> None:
        """The candidate loses > 15 points on 'east' while aggregate accuracy moves < 3 points."""
        system = DemoSystem(fault="slice_regression")
        baseline, candidate = system.baseline(), system.candidate()
        aggregate = baseline.metrics["accuracy"] - candidate.metrics["accuracy"]
        east = baseline.slice_accuracy()["east"] - candidate.slice_accuracy()["east"]
        assert abs(aggregate) < 0.03
        assert east > 0.15
        others = [
            baseline.slice_accuracy()[r] - candidate.slice_accuracy()[r]
            for r in baseline.slice_names
            if r != "east"
        ]
        assert max(others) < 0.06

    def test_healthy_candidate_keeps_every_slice(self, healthy: DemoSystem) -> None:
        """Without the fault no slice loses more than 5 points."""
        base, cand = healthy.baseline().slice_accuracy(), healthy.candidate().slice_accuracy()
        assert max(base[r] - cand[r] for r in base) < 0.05

    def test_only_candidate_labels_are_corrupted(self) -> None:
        """About 60 % of the east training labels become 0; other regions are untouched."""
        system = DemoSystem(fault="slice_regression")
        labels = system.candidate_labels()
        changed = labels != system.y_train
        east = system.train_table["region"] == "east"
        assert not changed[~east].any()
        assert (labels[changed] == 0).all()
        replaced = np.mean(labels[east] == 0) - np.mean(system.y_train[east] == 0)
        assert 0.4 < replaced < 0.7


class TestDeadParameter:
    def test_b1_never_changes(self) -> None:
        """b1 stays at its initial value through training although its gradient is non-zero."""
        system = DemoSystem(fault="dead_parameter")
        before, after, trainer = one_step(system)
        assert ["param/b1"] == [
            k for k in before if k.startswith("param/") and np.array_equal(before[k], after[k])
        ]
        assert np.abs(trainer.gradients()["param/b1"]).max() > 0
        for batch in system.batches(0)[1:20]:
            trainer.train_step(batch)
        assert np.array_equal(before["param/b1"], trainer.state()["param/b1"])

    def test_healthy_step_changes_every_parameter(self, healthy: DemoSystem) -> None:
        """On healthy code one step changes all four parameter tensors."""
        before, after, _ = one_step(healthy)
        params = [k for k in before if k.startswith("param/")]
        assert params == [k for k in params if not np.array_equal(before[k], after[k])]


class TestExplodingLearningRate:
    def test_one_example_step_makes_parameters_non_finite(self) -> None:
        """A step on a single example leaves inf or NaN in every parameter and the outputs."""
        system = DemoSystem(fault="exploding_learning_rate")
        trainer = system.make_trainer(0)
        X, y = system.batches(0)[0]
        trainer.train_step((X[:1], y[:1]))
        after = trainer.state()
        for name in ("param/W1", "param/b1", "param/W2", "param/b2"):
            assert not np.isfinite(after[name]).all(), name
        assert not np.isfinite(trainer.predict(system.X_valid[:5])).all()
        assert not np.isfinite(trainer.train_step(system.batches(0)[1]))

    def test_batched_training_still_looks_healthy(self) -> None:
        """On ordinary batches the off-by-one scale is about 1: the bug hides from training."""
        system = DemoSystem(fault="exploding_learning_rate")
        run = system.train(0)
        assert np.isfinite(run.losses).all()
        assert run.metrics["accuracy"] > 0.75

    def test_healthy_step_stays_finite(self, healthy: DemoSystem) -> None:
        """On healthy code the parameters and outputs stay finite after a step."""
        _, after, trainer = one_step(healthy)
        assert all(np.isfinite(after[k]).all() for k in after if k.startswith("param/"))
        assert np.isfinite(trainer.predict(healthy.X_valid)).all()


class TestCanaryErrors:
    def test_about_five_percent_of_requests_fail(self) -> None:
        """Over 2,000 production requests the candidate fails 3-8 %, the baseline none."""
        system = DemoSystem(fault="canary_errors")
        server = system.build_server()
        records = system.production_rows()
        requests = [records[i % len(records)] for i in range(2000)]
        candidate = [server.infer(r, version="2") for r in requests]
        failed = [r for r in candidate if not r.ok]
        assert 0.03 < len(failed) / len(candidate) < 0.08
        assert {"server"} == {r.error_kind for r in failed}
        assert "KeyError: 'phone'" == failed[0].error
        assert all(server.infer(r, version="1").ok for r in requests[:500])

    def test_failures_are_deterministic_by_content(self) -> None:
        """The same request fails every time; exactly the 'phone' requests fail."""
        system = DemoSystem(fault="canary_errors")
        model = system.served_model("2")
        for row in system.production_rows()[:200]:
            if row["channel"] == "phone":
                with pytest.raises(KeyError):
                    model(row)
            else:
                model(row)

    def test_healthy_candidate_never_fails(self, healthy: DemoSystem) -> None:
        """Without the fault every production request succeeds."""
        server = healthy.build_server()
        assert all(server.infer(r, version="2").ok for r in healthy.production_rows())


class TestCanarySlow:
    def test_candidate_sleeps_on_every_request(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The candidate blocks 1 ms per request; the baseline does not block."""
        system = DemoSystem(fault="canary_slow")
        server = system.build_server()
        sleeps: list[float] = []
        real_sleep = time.sleep

        def recording_sleep(seconds: float) -> None:
            sleeps.append(seconds)
            real_sleep(seconds)

        monkeypatch.setattr(time, "sleep", recording_sleep)
        records = system.production_rows()[:10]
        for row in records:
            server.infer(row, version="1")
        assert [] == sleeps
        responses = [server.infer(row, version="2") for row in records]
        assert [0.001] * 10 == sleeps
        assert all(r.ok and r.latency_s >= 0.001 for r in responses)

    def test_slow_candidate_answers_correctly(self) -> None:
        """Slowness is the only symptom: the answers match the offline predictions."""
        system = DemoSystem(fault="canary_slow")
        records = system.production_rows()[:20]
        np.testing.assert_allclose(
            system.served_model("2")(records),
            system.offline_predictions("2", records),
            rtol=0,
            atol=1e-12,
        )


class TestVersionSkew:
    def test_served_candidate_disagrees_with_offline(self) -> None:
        """The served candidate differs from its offline predictions on many rows."""
        system = DemoSystem(fault="version_skew")
        server = system.build_server()
        records = system.production_rows()[:300]
        served = np.stack([server.infer(r, version="2").outputs for r in records])
        offline = system.offline_predictions("2", records)
        assert np.mean(served.argmax(axis=1) != offline.argmax(axis=1)) > 0.1

    def test_tenure_is_served_as_zero(self) -> None:
        """The candidate's served features equal those of the row with tenure_months = 0."""
        system = DemoSystem(fault="version_skew")
        row = system.production_rows()[0]
        expected = system.served_model("1")({**row, "tenure_months": 0.0})
        served = system.served_model("2")(row)
        baseline = system.offline_predictions("1", [{**row, "tenure_months": 0.0}])[0]
        np.testing.assert_allclose(expected, baseline, rtol=0, atol=1e-12)
        candidate = system.offline_predictions("2", [{**row, "tenure_months": 0.0}])[0]
        np.testing.assert_allclose(served, candidate, rtol=0, atol=1e-12)

    def test_baseline_is_served_correctly(self) -> None:
        """Only the candidate is affected: the baseline's served outputs match offline."""
        system = DemoSystem(fault="version_skew")
        records = system.production_rows()[:100]
        np.testing.assert_allclose(
            system.served_model("1")(records),
            system.offline_predictions("1", records),
            rtol=0,
            atol=1e-12,
        )


class TestLossyRollback:
    def test_requests_fail_during_rollback_under_load(self) -> None:
        """Rolling back under concurrent traffic fails requests with 503 while restarting."""
        during, after = rollback_under_load(DemoSystem(fault="lossy_rollback"))
        failed = [r for r in during if not r.ok]
        assert failed
        assert failed[0].error is not None
        assert failed[0].error.startswith("503")
        assert all(r.ok for r in after)
        assert {"1"} == {r.version for r in after}

    def test_a_request_during_the_restart_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Deterministically: a request arriving mid-restart gets an error, not an answer."""
        system = DemoSystem(fault="lossy_rollback")
        service = system.service()
        row = system.production_rows()[0]
        service.set_live("2")
        during: list[Response] = []
        monkeypatch.setattr(time, "sleep", lambda seconds: during.append(service.infer(row)))
        service.set_live("1")
        assert 1 == len(during)
        assert not during[0].ok
        assert "server" == during[0].error_kind
        assert service.infer(row).ok

    def test_deploy_is_still_atomic(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Only the rollback path restarts: deploying the candidate never sleeps."""
        service = DemoSystem(fault="lossy_rollback").service()
        monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail("deploy restarted"))
        service.set_live("2")
        assert "2" == service.live_version()

    def test_healthy_rollback_fails_nothing(self, healthy: DemoSystem) -> None:
        """Without the fault no request fails during the rollback."""
        during, after = rollback_under_load(healthy)
        assert all(r.ok for r in during + after)
        assert {"1"} == {r.version for r in after}


class TestStaleRollback:
    def run(self, system: DemoSystem) -> tuple[list[Response], list[np.ndarray], list[np.ndarray]]:
        """Deploy, serve, roll back, serve again; return post-rollback responses and references."""
        service = system.service()
        records = system.production_rows()[:50]
        service.set_live("2")
        for row in records:
            service.infer(row)
        service.set_live("1")
        after = [service.infer(row) for row in records]
        baseline = [system.served_model("1")(row) for row in records]
        candidate = [system.served_model("2")(row) for row in records]
        return after, baseline, candidate

    def test_cache_keeps_serving_the_candidate(self) -> None:
        """After the rollback, responses are the candidate's outputs, labelled version '2'."""
        after, baseline, candidate = self.run(DemoSystem(fault="stale_rollback"))
        assert {"2"} == {r.version for r in after}
        assert all(np.array_equal(c, r.outputs) for c, r in zip(candidate, after, strict=True))
        assert not all(np.array_equal(b, r.outputs) for b, r in zip(baseline, after, strict=True))

    def test_healthy_cache_serves_the_baseline(self, healthy: DemoSystem) -> None:
        """Without the fault the same sequence serves the baseline's outputs after rollback."""
        after, baseline, _ = self.run(healthy)
        assert {"1"} == {r.version for r in after}
        assert all(np.array_equal(b, r.outputs) for b, r in zip(baseline, after, strict=True))
