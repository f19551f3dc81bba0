"""Tests for mlchecks.demo.system: `DemoSystem`, `TrainedModel` and `make_trainer`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mlchecks.demo
from mlchecks.demo import (
    BASELINE_VERSION,
    CANDIDATE_VERSION,
    DemoService,
    DemoSystem,
    MLPTrainer,
    TrainedModel,
    make_trainer,
)
from mlchecks.exceptions import InvalidInput


@pytest.fixture(scope="module")
def system() -> DemoSystem:
    return DemoSystem(seed=0)


class TestDemoSystem:
    def test_same_seed_gives_bitwise_identical_runs(self, system: DemoSystem) -> None:
        """Two systems with seed 0 train runs with identical losses, hashes and predictions."""
        a = system.train(0)
        b = DemoSystem(seed=0).train(0)
        assert a.losses.tobytes() == b.losses.tobytes()
        assert a.step_hashes == b.step_hashes
        assert a.predictions.tobytes() == b.predictions.tobytes()
        assert a.params["W1"].tobytes() == b.params["W1"].tobytes()

    def test_training_seed_changes_the_run(self, system: DemoSystem) -> None:
        """Different training seeds give different parameter trajectories from step 0."""
        a, b = system.train(0), system.train(1)
        assert a.step_hashes[0] != b.step_hashes[0]

    def test_trained_model_is_clearly_better_than_chance(self, system: DemoSystem) -> None:
        """A healthy run reaches validation accuracy between 0.75 and 0.9 (chance is ~0.42)."""
        run = system.train(0)
        assert 0.75 < run.metrics["accuracy"] < 0.9
        assert run.metrics["log_loss"] < 0.6
        assert run.metrics["final_loss"] < run.losses[:10].mean()

    def test_trained_model_fields(self, system: DemoSystem) -> None:
        """A run records one loss and one 16-hex-digit hash per step and validation outputs."""
        run = system.train(0)
        assert (300,) == run.losses.shape
        assert 300 == len(run.step_hashes)
        assert all(len(h) == 16 and int(h, 16) >= 0 for h in run.step_hashes)
        assert (3000, 3) == run.predictions.shape
        assert np.array_equal(system.y_valid, run.labels)
        assert np.array_equal(system.valid_slices, run.slices)
        assert 8 == len(run.slice_names)
        fields = run.run_fields()
        assert np.array_equal(np.asarray(run.slice_names)[run.slices], fields["slices"]["region"])
        assert "east" in set(fields["slices"]["region"].tolist())
        assert {
            "metrics",
            "predictions",
            "labels",
            "slices",
            "losses",
            "step_hashes",
            "name",
        } == set(fields)

    def test_slice_accuracy_matches_a_direct_count(self, system: DemoSystem) -> None:
        """slice_accuracy() agrees with counting correct predictions per region by hand."""
        run = system.train(0)
        east = run.slice_names.index("east")
        mask = run.slices == east
        direct = np.mean(run.predictions[mask].argmax(axis=1) == run.labels[mask])
        assert direct == pytest.approx(run.slice_accuracy()["east"], abs=1e-15)

    def test_baseline_and_candidate_are_cached_versions(self, system: DemoSystem) -> None:
        """baseline() and candidate() are trained once, with seeds seed and seed + 1."""
        assert system.baseline() is system.model(BASELINE_VERSION)
        assert system.candidate() is system.model(CANDIDATE_VERSION)
        assert (0, 1) == (system.baseline().seed, system.candidate().seed)
        assert system.baseline().step_hashes == system.train(0).step_hashes

    def test_healthy_candidate_matches_baseline_quality(self, system: DemoSystem) -> None:
        """Without a fault the candidate's accuracy is within 2 points of the baseline's."""
        gap = system.baseline().metrics["accuracy"] - system.candidate().metrics["accuracy"]
        assert abs(gap) < 0.02

    def test_unknown_version_is_rejected(self, system: DemoSystem) -> None:
        """Only the demo versions '1' and '2' exist."""
        with pytest.raises(InvalidInput, match="'version' must be '1'"):
            system.model("3")

    def test_build_server(self, system: DemoSystem) -> None:
        """The server has both versions loaded and the baseline live, and can reload by name."""
        server = system.build_server()
        assert ("1", "2") == server.versions()
        assert "1" == server.live_version()
        assert ("1",) == system.build_server(load_candidate=False).versions()
        server.unload("2")
        server.load("2")
        assert "2" == server.infer(system.production_rows()[0], version="2").version

    def test_served_predictions_match_offline(self, system: DemoSystem) -> None:
        """Every production row served by the server matches the offline predictions."""
        server = system.build_server()
        records = system.production_rows()[:100]
        served = np.stack([server.infer(row, version="2").outputs for row in records])
        offline = system.offline_predictions("2")[:100]
        np.testing.assert_allclose(served, offline, rtol=0, atol=1e-12)

    def test_production_rows_have_no_label(self, system: DemoSystem) -> None:
        """Production requests carry the input columns only."""
        records = system.production_rows()
        assert 1500 == len(records)
        assert "label" not in records[0]
        assert {"age", "income", "tenure_months", "plan", "channel", "region"} == set(records[0])

    def test_service_is_healthy_by_default(self, system: DemoSystem) -> None:
        """Without a fault the service is a plain DemoService over a fresh server."""
        assert DemoService is type(system.service())

    def test_make_trainer_uses_current_code(self, system: DemoSystem) -> None:
        """The factory gives fresh trainers of the pipeline's width, seeded as asked."""
        trainer = system.make_trainer(5)
        assert MLPTrainer is type(trainer)
        assert (18, 16) == trainer.state()["param/W1"].shape
        assert 5 == trainer.seed

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"seed": -1}, "'seed' must be a non-negative integer"),
            ({"n_rows": 10}, "'n_rows' must be an integer >= 1000"),
            ({"n_steps": 0}, "'n_steps' must be an integer >= 1"),
            ({"lr": 0.0}, "'lr' must be a number > 0"),
            ({"fault": "typo"}, "'fault' must be one of nondeterministic_training, "),
        ],
    )
    def test_rejects_bad_arguments(self, kwargs: dict[str, Any], message: str) -> None:
        """Invalid arguments raise InvalidInput naming the argument (and the known faults)."""
        with pytest.raises(InvalidInput, match=message):
            DemoSystem(**kwargs)

    def test_repr_names_seed_and_fault(self) -> None:
        """The repr shows the seed and the planted fault."""
        assert "fault='dead_parameter'" in repr(DemoSystem(seed=2, fault="dead_parameter"))


class TestMakeTrainer:
    def test_demo_width(self, system: DemoSystem) -> None:
        """The module-level factory builds a healthy trainer of the demo data's width."""
        trainer = make_trainer(3)
        assert system.pipeline.n_features == trainer.n_features
        assert system.make_trainer(3).fingerprint() == trainer.fingerprint()


class TestPackage:
    def test_all_is_sorted_and_importable(self) -> None:
        """mlchecks.demo.__all__ is sorted and every name in it resolves."""
        assert sorted(mlchecks.demo.__all__) == mlchecks.demo.__all__
        for name in mlchecks.demo.__all__:
            assert getattr(mlchecks.demo, name) is not None
        assert isinstance(mlchecks.demo.TrainedModel.__doc__, str)
        assert TrainedModel is mlchecks.demo.TrainedModel
