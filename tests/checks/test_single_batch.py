"""Tests for mlchecks.checks.single_batch: `SingleBatchCheck`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from mlchecks import Between, Result, Status, run_check
from mlchecks.checks._state import snapshot
from mlchecks.checks.single_batch import SingleBatchCheck
from mlchecks.demo import DemoSystem, MLPTrainer, make_trainer
from mlchecks.demo.system import DEMO_N_FEATURES
from mlchecks.exceptions import InvalidInput

BATCH = DemoSystem(seed=0, n_rows=1000).batches(0)[0]
X, Y = BATCH


def demo(cls: type[MLPTrainer], **kwargs: Any) -> Any:
    return lambda seed: cls(DEMO_N_FEATURES, 3, hidden=16, lr=0.05, seed=seed, **kwargs)


def roundtrips(result: Result) -> bool:
    return Result.from_dict(result.to_dict()) == result


class BatchNormalizedOutputs(MLPTrainer):
    """predict() standardizes the logits with the batch's statistics (a batch-dependent bug)."""

    def predict(self, inputs: Any) -> np.ndarray:
        logits = self.trace(inputs)["logits"]
        if len(logits) > 1:
            logits = (logits - logits.mean(axis=0)) / (logits.std(axis=0) + 1e-5)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class SqueezesSingleExamples(MLPTrainer):
    """predict() drops the example axis when given one example."""

    def predict(self, inputs: Any) -> np.ndarray:
        out = super().predict(inputs)
        return out[0] if len(out) == 1 else out


class StalePredict(MLPTrainer):
    """predict() serves the weights as they were at construction (a stale cached copy)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._served = self.params()

    def predict(self, inputs: Any) -> np.ndarray:
        from mlchecks.demo import predict_proba

        return predict_proba(self._served, np.asarray(inputs, dtype=float))


class PredictAdvancesRng(MLPTrainer):
    """predict() applies dropout, drawing from the trainer's generator (train mode left on)."""

    def predict(self, inputs: Any) -> np.ndarray:
        self._rng.random(4)
        return super().predict(inputs)


class RejectsOneExample(MLPTrainer):
    """train_step() cannot handle a batch of one (like batch norm in train mode)."""

    def train_step(self, batch: Any) -> float:
        if len(batch[1]) < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        return super().train_step(batch)


class Minimal:
    """A trainer with only the required methods: no gradients(), no trace()."""

    def __init__(self, seed: int = 0) -> None:
        self.w = np.random.default_rng(seed).normal(size=(DEMO_N_FEATURES, 3))
        self.frozen_scale = np.ones(3)

    def train_step(self, batch: Any) -> float:
        x, y = batch
        logits = x @ self.w
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y])))
        p[np.arange(len(y)), y] -= 1
        self.w -= 0.01 * x.T @ p / len(y)
        return loss

    def predict(self, inputs: Any) -> np.ndarray:
        return np.asarray(inputs) @ self.w * self.frozen_scale

    def state(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy(), "frozen_scale": self.frozen_scale.copy()}

    def save(self, path: str | Path) -> None:
        np.savez(Path(path), **self.state())

    def load(self, path: str | Path) -> None:
        with np.load(Path(path)) as data:
            self.w, self.frozen_scale = data["w"], data["frozen_scale"]


class FrozenBias(Minimal):
    """gradients() reports a parameter that takes no gradient with None (a frozen bias)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.grad = np.zeros_like(self.w)

    def train_step(self, batch: Any) -> float:
        before = self.w.copy()
        loss = super().train_step(batch)
        self.grad = (before - self.w) / 0.01
        return loss

    def gradients(self) -> dict[str, np.ndarray | None]:
        return {"w": self.grad.copy(), "frozen_scale": None}


class TestSingleBatchCheck:
    def test_passes_on_healthy_demo(self) -> None:
        """The healthy demo trainer passes every finding, with a per-tensor table."""
        result = run_check(SingleBatchCheck(make_trainer=make_trainer, batch=BATCH))
        assert Status.PASS == result.status, str(result)
        assert 5 == result.rubric
        rows = {row["name"]: row for row in result.details["tensors"]}
        assert "trainable" == rows["param/W1"]["role"]
        assert rows["param/W1"]["changed"]
        assert 0 < rows["param/W1"]["update_ratio"] < 1
        assert {"hidden_pre", "hidden", "logits", "probs"} == {
            row["name"] for row in result.details["activations"]
        }
        assert 8 == len(result.details["single_vs_batch"])
        assert roundtrips(result)

    def test_undeclared_frozen_parameter_fails_by_name(self) -> None:
        """A parameter gradients() reports with None, not declared frozen, FAILS by name."""
        result = SingleBatchCheck(make_trainer=FrozenBias, batch=BATCH).run()
        finding = result.finding("frozen_parameters")
        assert Status.FAIL == finding.status
        assert "'frozen_scale'" in finding.message
        assert Status.FAIL == result.status
        rows = {row["name"]: row for row in result.details["tensors"]}
        assert "frozen" == rows["frozen_scale"]["role"]
        assert 1 == result.metrics["n_undeclared_frozen"]

    def test_declared_frozen_parameter_passes(self) -> None:
        """The same parameter declared in frozen= PASSES and is counted in the summary."""
        result = SingleBatchCheck(
            make_trainer=FrozenBias, batch=BATCH, frozen=["frozen_scale"]
        ).run()
        assert Status.PASS == result.status, str(result)
        assert "1 trainable tensor updated" in result.summary
        assert "1 frozen unchanged" in result.summary

    def test_leaves_the_users_trainer_unchanged(self) -> None:
        """After the check the user's trainer state() is bitwise what it was."""
        trainer = make_trainer(3)
        trainer.train_step(BATCH)
        before = snapshot(trainer.state())
        result = SingleBatchCheck(trainer=trainer, batch=BATCH).run()
        assert Status.PASS == result.status, str(result)
        after = snapshot(trainer.state())
        assert all(np.array_equal(before[k], after[k]) for k in before)

    def test_checkpoint_isolation(self) -> None:
        """isolation='checkpoint' probes the trainer itself and restores it afterwards."""
        trainer = make_trainer(3)
        fingerprint = trainer.fingerprint()
        result = SingleBatchCheck(trainer=trainer, batch=BATCH, isolation="checkpoint").run()
        assert ("checkpoint", Status.PASS) == (result.details["isolation"], result.status)
        assert (fingerprint, 0) == (trainer.fingerprint(), trainer.step)

    def test_dead_parameter_fails_naming_the_tensor(self) -> None:
        """The dead_parameter fault FAILS trainable_changed naming 'param/b1'."""
        system = DemoSystem(seed=0, fault="dead_parameter", n_rows=1000)
        result = SingleBatchCheck(make_trainer=system.make_trainer, batch=BATCH).run()
        finding = result.finding("trainable_changed")
        assert Status.FAIL == finding.status
        assert 1.0 == finding.observed
        assert "'param/b1'" in finding.message
        assert "the gradient reaches it but the update does not" in finding.message
        assert "'param/b1'" in result.summary

    def test_exploding_learning_rate_fails_naming_the_tensors(self) -> None:
        """The exploding_learning_rate fault FAILS example_step naming the parameters."""
        system = DemoSystem(seed=0, fault="exploding_learning_rate", n_rows=1000)
        result = SingleBatchCheck(make_trainer=system.make_trainer, batch=BATCH).run()
        assert Status.FAIL == result.status
        finding = result.finding("example_step")
        assert Status.FAIL == finding.status
        assert "'param/W1'" in finding.message
        assert "single example" in finding.message
        assert "NaN or infinity" in finding.message

    def test_frozen_entries_must_not_change(self) -> None:
        """An entry declared frozen that trains FAILS frozen_unchanged naming it."""
        result = SingleBatchCheck(make_trainer=make_trainer, batch=BATCH, frozen=["param/b2"]).run()
        finding = result.finding("frozen_unchanged")
        assert Status.FAIL == finding.status
        assert "'param/b2'" in finding.message
        rows = {row["name"]: row["role"] for row in result.details["tensors"]}
        assert "frozen" == rows["param/b2"]

    def test_frozen_pattern_matching_nothing_fails(self) -> None:
        """A frozen pattern that matches no entry is reported rather than silently passing."""
        result = SingleBatchCheck(make_trainer=make_trainer, batch=BATCH, frozen="emb/*").run()
        assert Status.FAIL == result.finding("frozen_unchanged").status

    def test_frozen_entries_unchanged_pass(self) -> None:
        """An entry that really is frozen passes frozen_unchanged."""
        result = SingleBatchCheck(
            trainer=Minimal(), batch=BATCH, frozen=["frozen_scale"], train_example=True
        ).run()
        assert Status.PASS == result.finding("frozen_unchanged").status
        assert Status.PASS == result.status, str(result)

    def test_batch_dependent_predictions_fail(self) -> None:
        """Outputs normalized with batch statistics FAIL single_vs_batch naming examples."""
        result = SingleBatchCheck(make_trainer=demo(BatchNormalizedOutputs), batch=BATCH).run()
        finding = result.finding("single_vs_batch")
        assert Status.FAIL == finding.status
        assert "example 0" in finding.message
        assert finding.observed is not None
        assert finding.observed > 1e-3

    def test_squeezed_single_output_fails(self) -> None:
        """A single-example prediction without the example axis FAILS single_example."""
        result = SingleBatchCheck(make_trainer=demo(SqueezesSingleExamples), batch=BATCH).run()
        finding = result.finding("single_example")
        assert Status.FAIL == finding.status
        assert "shape (3,), expected (1, 3)" in finding.message

    def test_stale_predictions_fail(self) -> None:
        """A predict() that never sees the updated weights FAILS prediction_changed."""
        result = SingleBatchCheck(make_trainer=demo(StalePredict), batch=BATCH).run()
        assert Status.FAIL == result.finding("prediction_changed").status
        assert Status.PASS == result.finding("trainable_changed").status

    def test_predict_changing_state_fails(self) -> None:
        """A predict() that consumes the dropout generator FAILS predict_stateless."""
        result = SingleBatchCheck(make_trainer=demo(PredictAdvancesRng), batch=BATCH).run()
        finding = result.finding("predict_stateless")
        assert Status.FAIL == finding.status
        assert "'rng/state'" in finding.message

    def test_one_example_training_error_fails(self) -> None:
        """A train_step that cannot take one example FAILS example_step with the error."""
        result = SingleBatchCheck(make_trainer=demo(RejectsOneExample), batch=BATCH).run()
        finding = result.finding("example_step")
        assert Status.FAIL == finding.status
        assert "ValueError: Expected more than 1 value per channel" in finding.message
        assert "train_example=False" in finding.message

    def test_train_example_false_skips_the_example_step(self) -> None:
        """train_example=False leaves out the one-example training step."""
        check = SingleBatchCheck(
            make_trainer=demo(RejectsOneExample), batch=BATCH, train_example=False
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert "example_step" not in {f.name for f in result.findings}

    def test_update_ratio_default_range_warns(self) -> None:
        """Outside the default range (severity WARN) the update ratio WARNS."""
        check = SingleBatchCheck(make_trainer=make_trainer, batch=BATCH)
        assert Between(1e-7, 1.0, severity="warn") == check.update_ratio_range
        result = attrs.evolve(check, update_ratio_range=Between(1e-4, 1e-2, severity="warn")).run()
        finding = result.finding("update_ratio")
        assert Status.WARN == finding.status
        assert "'param/W1'" in finding.message
        assert Status.WARN == result.status

    def test_update_ratio_pair_fails(self) -> None:
        """A plain (low, high) pair is a FAIL limit, like every plain number."""
        result = SingleBatchCheck(
            make_trainer=make_trainer, batch=BATCH, update_ratio_range=(1e-4, 1e-2)
        ).run()
        finding = result.finding("update_ratio")
        assert Status.FAIL == finding.status
        assert "in [0.0001, 0.01]" == finding.limit
        assert Status.FAIL == result.status

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("update_ratio", "update_ratio_range"),
            ("atol", "prediction_atol"),
            ("rtol", "prediction_rtol"),
        ],
    )
    def test_old_keywords_name_the_new_one(self, old: str, new: str) -> None:
        """A 0.1 keyword raises TypeError naming its 0.2 name."""
        with pytest.raises(TypeError, match=f"'{old}', which was renamed to '{new}'"):
            SingleBatchCheck(make_trainer=make_trainer, batch=BATCH, **{old: 1})

    def test_metric_keys(self) -> None:
        """Metrics use the dotted keys of the docs page; tensor names stay out of them."""
        result = SingleBatchCheck(make_trainer=make_trainer, batch=BATCH).run()
        assert {
            "loss.batch",
            "loss.example",
            "n_state_entries",
            "n_trainable",
            "n_frozen",
            "n_undeclared_frozen",
            "n_unchanged_trainable",
            "update_ratio.min",
            "update_ratio.max",
            "single_vs_batch.max_abs_diff",
        } == set(result.metrics)

    def test_trainer_without_extras(self) -> None:
        """A trainer without gradients() or trace() is judged on its floating-point entries."""
        result = SingleBatchCheck(trainer=Minimal(), batch=BATCH, trainable=["w"]).run()
        names = {f.name for f in result.findings}
        assert not {"gradients_finite", "activations_finite"} & names
        assert "the 'trainable' patterns" == result.details["trainable_from"]
        assert Status.PASS == result.status, str(result)

    def test_default_trainable_without_gradients_is_every_float_entry(self) -> None:
        """Without gradients() or patterns every floating entry must train."""
        result = SingleBatchCheck(trainer=Minimal(), batch=BATCH).run()
        finding = result.finding("trainable_changed")
        assert Status.FAIL == finding.status
        assert "'frozen_scale'" in finding.message

    def test_explicit_inputs_and_example(self) -> None:
        """inputs and example can be given explicitly."""
        check = SingleBatchCheck(
            make_trainer=make_trainer,
            batch=BATCH,
            inputs=X[:5],
            example=(X[3:4], Y[3:4]),
            n_compare=3,
        )
        result = check.run()
        assert Status.PASS == result.status, str(result)
        assert 3 == len(result.details["single_vs_batch"])

    def test_mapping_batches_need_inputs(self) -> None:
        """A mapping batch is sliced key by key; inputs must then be given."""
        with pytest.raises(InvalidInput, match="'inputs' is required"):
            SingleBatchCheck(make_trainer=make_trainer, batch={"x": X, "y": Y})

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"batch": (X[:1], Y[:1])}, "'batch' must hold at least 2 examples"),
            ({"inputs": X[:1]}, "'inputs' must hold at least 2 examples"),
            ({"update_ratio_range": (1.0, 0.1)}, "'update_ratio_range' must have low <= high"),
            ({"update_ratio_range": (-1.0, 0.1)}, "'update_ratio_range' must start at >= 0"),
            ({"update_ratio_range": 3}, "'update_ratio_range' must be a \\(low, high\\) pair"),
            ({"n_compare": 0}, "'n_compare' must be >= 1"),
            ({"prediction_rtol": -1}, r"'prediction_rtol' must be in \[0, inf\)"),
            ({"frozen": [3]}, "'frozen' must contain strings"),
            ({"isolation": "fork"}, "'isolation' must be one of"),
            ({"seed": -1}, "'seed' must be >= 0"),
        ],
    )
    def test_validates_fields(self, kwargs: dict[str, Any], message: str) -> None:
        """Bad fields raise InvalidInput naming the field and the value."""
        fields: dict[str, Any] = {"make_trainer": make_trainer, "batch": BATCH}
        fields.update(kwargs)
        with pytest.raises(InvalidInput, match=message):
            SingleBatchCheck(**fields)

    def test_requires_exactly_one_trainer_source(self) -> None:
        """Passing both or neither of trainer and make_trainer is an error."""
        with pytest.raises(InvalidInput, match="exactly one of 'trainer'"):
            SingleBatchCheck(batch=BATCH)
