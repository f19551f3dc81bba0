"""Tests for mlchecks.demo.model: `MLPTrainer`, `make_batches` and the inference helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks.demo.model import (
    PARAM_NAMES,
    MLPTrainer,
    make_batches,
    param_fingerprint,
    predict_proba,
)
from mlchecks.demo.system import DemoSystem
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer

Batches = list[tuple[np.ndarray, np.ndarray]]


@pytest.fixture(scope="module")
def system() -> DemoSystem:
    return DemoSystem(seed=0)


@pytest.fixture(scope="module")
def batches(system: DemoSystem) -> Batches:
    return system.batches(0)


def train(trainer: MLPTrainer, batches: Batches) -> list[float]:
    return [trainer.train_step(batch) for batch in batches]


def differing(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    return sorted(k for k in a if not np.array_equal(a[k], b[k]))


def cross_entropy(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    probs = predict_proba(params, X)
    return float(-np.mean(np.log(probs[np.arange(len(y)), y])))


class TestMLPTrainer:
    def test_is_a_trainer(self) -> None:
        """MLPTrainer satisfies the Trainer protocol."""
        assert isinstance(MLPTrainer(3, 2), Trainer)

    def test_loss_decreases(self, system: DemoSystem, batches: Batches) -> None:
        """The mean loss of the last 50 steps is well below that of the first 50."""
        losses = train(system.make_trainer(0), batches)
        assert np.mean(losses[-50:]) < 0.8 * np.mean(losses[:50])

    def test_same_seed_trains_bitwise_identically(
        self, system: DemoSystem, batches: Batches
    ) -> None:
        """Two trainers with the same seed and batches end with identical state and losses."""
        a, b = system.make_trainer(3), system.make_trainer(3)
        assert train(a, batches[:50]) == train(b, batches[:50])
        assert [] == differing(a.state(), b.state())

    def test_different_seeds_start_differently(self) -> None:
        """The seed sets the initial weights."""
        assert MLPTrainer(4, 3, seed=0).fingerprint() != MLPTrainer(4, 3, seed=1).fingerprint()

    def test_state_names_and_types(self) -> None:
        """state() names every parameter, both Adam moments, the counters and the RNG."""
        state = MLPTrainer(4, 3, hidden=5).state()
        expected = {f"param/{n}" for n in PARAM_NAMES}
        expected |= {f"adam/{m}/{n}" for m in "mv" for n in PARAM_NAMES}
        expected |= {"adam/t", "rng/state", "step"}
        assert expected == set(state)
        assert (4, 5) == state["param/W1"].shape
        assert np.uint64 == state["rng/state"].dtype
        assert () == state["step"].shape

    def test_state_returns_copies(self) -> None:
        """Mutating the arrays state() returned leaves the trainer unchanged."""
        trainer = MLPTrainer(4, 3)
        before = trainer.fingerprint()
        trainer.state()["param/W1"][:] = 0.0
        assert before == trainer.fingerprint()

    def test_step_counts_train_steps(self, batches: Batches) -> None:
        """step and adam/t advance by one per train_step."""
        trainer = MLPTrainer(18, 3)
        train(trainer, batches[:3])
        assert 3 == trainer.step == int(trainer.state()["adam/t"])

    def test_save_load_round_trip_is_bitwise(
        self, system: DemoSystem, batches: Batches, tmp_path: Path
    ) -> None:
        """Loading a checkpoint into a fresh trainer restores every state entry exactly."""
        trainer = system.make_trainer(0)
        train(trainer, batches[:40])
        trainer.save(tmp_path / "ckpt.npz")
        restored = system.make_trainer(0)
        restored.load(tmp_path / "ckpt.npz")
        assert [] == differing(trainer.state(), restored.state())

    def test_resumed_training_equals_uninterrupted(
        self, system: DemoSystem, batches: Batches, tmp_path: Path
    ) -> None:
        """Train, checkpoint, restore into a new trainer, continue: bitwise the straight run."""
        full = system.make_trainer(0)
        full_losses = train(full, batches)
        first = system.make_trainer(0)
        head = train(first, batches[:150])
        first.save(tmp_path / "mid")
        resumed = system.make_trainer(0)
        resumed.load(tmp_path / "mid")
        tail = train(resumed, batches[150:])
        assert full_losses == head + tail
        assert [] == differing(full.state(), resumed.state())

    def test_save_writes_exactly_the_given_path(self, tmp_path: Path) -> None:
        """save() adds no suffix and leaves no partial file behind."""
        MLPTrainer(3, 2).save(tmp_path / "checkpoint")
        assert ["checkpoint"] == sorted(p.name for p in tmp_path.iterdir())

    def test_load_rejects_a_foreign_checkpoint(self, tmp_path: Path) -> None:
        """A checkpoint of a different architecture or with missing entries is rejected."""
        MLPTrainer(3, 2, hidden=4).save(tmp_path / "small")
        with pytest.raises(InvalidInput, match="'param/W1' has shape"):
            MLPTrainer(3, 2, hidden=8).load(tmp_path / "small")
        with open(tmp_path / "partial.npz", "wb") as handle:
            np.savez(handle, step=np.array(1))
        with pytest.raises(InvalidInput, match=r"missing \['adam/m/W1'"):
            MLPTrainer(3, 2).load(tmp_path / "partial.npz")

    def test_dropout_draws_from_the_trainer_rng(self, batches: Batches) -> None:
        """Training advances the RNG state, so the state must be checkpointed to resume."""
        trainer = MLPTrainer(18, 3)
        before = trainer.state()["rng/state"]
        trainer.train_step(batches[0])
        assert not np.array_equal(before, trainer.state()["rng/state"])

    def test_gradients_match_finite_differences(self) -> None:
        """Without dropout, gradients() equals central finite differences of the loss."""
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(16, 5)), rng.integers(0, 3, 16)
        trainer = MLPTrainer(5, 3, hidden=4, dropout=0.0, seed=2)
        params = trainer.params()
        trainer.train_step((X, y))
        grads = trainer.gradients()
        for name in PARAM_NAMES:
            numeric = np.zeros_like(params[name])
            for index in np.ndindex(params[name].shape):
                up = {k: v.copy() for k, v in params.items()}
                down = {k: v.copy() for k, v in params.items()}
                up[name][index] += 1e-6
                down[name][index] -= 1e-6
                numeric[index] = (cross_entropy(up, X, y) - cross_entropy(down, X, y)) / 2e-6
            np.testing.assert_allclose(grads[f"param/{name}"], numeric, rtol=1e-5, atol=1e-8)

    def test_gradients_are_finite_and_named_like_parameters(self, batches: Batches) -> None:
        """After a step, gradients() holds one finite array per parameter, with its shape."""
        trainer = MLPTrainer(18, 3)
        assert {} == trainer.gradients()
        trainer.train_step(batches[0])
        grads = trainer.gradients()
        state = trainer.state()
        assert {f"param/{n}" for n in PARAM_NAMES} == set(grads)
        for name, grad in grads.items():
            assert state[name].shape == grad.shape
            assert np.isfinite(grad).all()

    def test_trace_names_and_consistency(self, system: DemoSystem) -> None:
        """trace() gives hidden_pre, hidden, logits, probs; probs equal predict()."""
        trainer = system.make_trainer(0)
        X = system.X_valid[:7]
        trace = trainer.trace(X)
        assert ["hidden_pre", "hidden", "logits", "probs"] == list(trace)
        assert (7, 16) == trace["hidden"].shape
        assert np.array_equal(np.maximum(trace["hidden_pre"], 0.0), trace["hidden"])
        assert np.array_equal(trainer.predict(X), trace["probs"])

    def test_predict_gives_probabilities(self, system: DemoSystem) -> None:
        """predict() returns rows of non-negative numbers summing to one."""
        probs = system.make_trainer(0).predict(system.X_valid)
        assert (3000, 3) == probs.shape
        assert (probs >= 0).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)

    def test_predict_does_not_touch_the_rng(self, system: DemoSystem) -> None:
        """Inference uses no dropout and leaves the RNG state alone."""
        trainer = system.make_trainer(0)
        before = trainer.state()
        trainer.predict(system.X_valid)
        trainer.trace(system.X_valid)
        assert [] == differing(before, trainer.state())

    def test_softmax_is_stable_for_huge_logits(self) -> None:
        """Logits of 1e4 give finite probabilities and a finite loss."""
        trainer = MLPTrainer(2, 2, hidden=2, dropout=0.0)
        state = trainer.state()
        state["param/W1"] = np.eye(2) * 100.0
        state["param/W2"] = np.array([[100.0, -100.0], [-100.0, 100.0]])
        trainer.load_state(state)
        X = np.array([[1.0, 0.0]])
        assert np.isfinite(trainer.predict(X)).all()
        assert np.isfinite(trainer.train_step((X, np.array([1]))))

    @pytest.mark.parametrize(
        ("batch", "message"),
        [
            ((np.zeros((4, 2)), np.zeros(4)), "must have 3 columns"),
            ((np.zeros((4, 3)), np.zeros(3)), "same number of rows"),
            ((np.zeros((4, 3)), np.full(4, 5)), r"class indices in \[0, 2\)"),
            ((np.full((4, 3), np.nan), np.zeros(4)), "must be finite"),
            (np.zeros((4, 3)), "must be a pair"),
        ],
    )
    def test_rejects_bad_batches(self, batch: Any, message: str) -> None:
        """A malformed batch raises InvalidInput saying what is wrong."""
        with pytest.raises(InvalidInput, match=message):
            MLPTrainer(3, 2).train_step(batch)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"hidden": 0}, "'hidden' must be an integer > 0"),
            ({"lr": -1.0}, "'lr' must be a number > 0"),
            ({"dropout": 1.0}, r"'dropout' must be a number in \[0, 1\)"),
            ({"seed": -2}, "'seed' must be a non-negative integer"),
            ({"weight_decay": -0.1}, "'weight_decay' must be a number >= 0"),
        ],
    )
    def test_rejects_bad_hyperparameters(self, kwargs: dict[str, Any], message: str) -> None:
        """Out-of-range hyperparameters are rejected, naming the argument."""
        with pytest.raises(InvalidInput, match=message):
            MLPTrainer(3, 2, **kwargs)


class TestMakeBatches:
    def test_deterministic_for_a_seed(self, system: DemoSystem) -> None:
        """The same seed gives the same batches; a different seed a different order."""
        a = make_batches(system.X_train, system.y_train, 5, 8, seed=1)
        b = make_batches(system.X_train, system.y_train, 5, 8, seed=1)
        c = make_batches(system.X_train, system.y_train, 5, 8, seed=2)
        assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
        assert not np.array_equal(a[0][0], c[0][0])

    def test_unseeded_batches_differ(self, system: DemoSystem) -> None:
        """seed=None shuffles from OS entropy: two calls give different orders."""
        a = make_batches(system.X_train, system.y_train, 1, 64, seed=None)
        b = make_batches(system.X_train, system.y_train, 1, 64, seed=None)
        assert not np.array_equal(a[0][1], b[0][1]) or not np.array_equal(a[0][0], b[0][0])

    def test_each_epoch_visits_every_row_once(self) -> None:
        """Over one epoch every row appears exactly once."""
        X = np.arange(12.0).reshape(12, 1)
        batches = make_batches(X, np.arange(12), n_steps=3, batch_size=4, seed=0)
        seen = np.concatenate([b[1] for b in batches])
        assert list(range(12)) == sorted(seen.tolist())

    def test_rejects_oversized_batches(self) -> None:
        """A batch larger than the data is rejected."""
        with pytest.raises(InvalidInput, match="'batch_size' must be <= the 3 rows"):
            make_batches(np.zeros((3, 1)), np.zeros(3), 1, 4, seed=0)


class TestHelpers:
    def test_fingerprint_tracks_bytes(self) -> None:
        """Equal arrays have equal fingerprints; a one-ulp change alters it."""
        a = np.array([1.0, 2.0])
        assert param_fingerprint([a]) == param_fingerprint([a.copy()])
        assert param_fingerprint([a]) != param_fingerprint([np.nextafter(a, 3.0)])
        assert 16 == len(param_fingerprint([a]))

    def test_nan_parameters_give_nan_outputs_without_warnings(self) -> None:
        """predict_proba propagates NaN parameters silently (no RuntimeWarning)."""
        params = MLPTrainer(2, 2).params()
        params["W2"][:] = np.inf
        assert np.isnan(predict_proba(params, np.ones((1, 2)))).all()
