"""Tests for mlchecks.integrations.torch, and the three training checks on torch models."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from mlchecks import Status, run_check  # noqa: E402
from mlchecks.checks._state import compare_states, snapshot  # noqa: E402
from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun  # noqa: E402
from mlchecks.checks.single_batch import SingleBatchCheck  # noqa: E402
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.exceptions import InvalidInput  # noqa: E402
from mlchecks.integrations.torch import TorchTrainer, record_run  # noqa: E402

pytestmark = pytest.mark.integration

_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(256, 6)).astype(np.float32)
Y = np.argmax(X @ _RNG.normal(size=(6, 3)), axis=1).astype(np.int64)
BATCHES = [
    (torch.from_numpy(X[i : i + 32]), torch.from_numpy(Y[i : i + 32])) for i in range(0, 256, 32)
]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Torch on one thread: fast on a shared 2-core machine and bitwise reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(6, 16)
        self.dropout = nn.Dropout(0.1)
        self.out = nn.Linear(16, 3)

    def forward(self, x: Any) -> Any:
        return self.out(self.dropout(torch.relu(self.hidden(x))))


# Module-level factories, so crash_mode="process" can pickle them into a spawned child.


def make_torch_trainer(seed: int) -> TorchTrainer:
    """A small MLP with dropout and Adam."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = MLP()
    return TorchTrainer(model, torch.optim.Adam(model.parameters(), lr=0.01), nn.CrossEntropyLoss())


def softmax_trainer(seed: int) -> TorchTrainer:
    """The same MLP predicting class probabilities (what ReproducibilityCheck compares)."""
    torch.manual_seed(seed)
    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), output="softmax")


class ForgetsOptimizer(TorchTrainer):
    """The checkpoint keeps the model but not the optimizer state (a classic resume bug)."""

    def _checkpoint(self) -> dict[str, Any]:
        checkpoint = super()._checkpoint()
        del checkpoint["optimizer"]
        return checkpoint

    def _restore(self, checkpoint: Mapping[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        self._step = int(checkpoint["step"])


def make_forgetful_trainer(seed: int) -> TorchTrainer:
    torch.manual_seed(seed)
    model = MLP()
    return ForgetsOptimizer(
        model, torch.optim.Adam(model.parameters(), lr=0.01), nn.CrossEntropyLoss()
    )


class SequenceNet(nn.Module):
    """Batch norm over (N, C, L) sequences, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.head = nn.Linear(20, 3)

    def forward(self, x: Any) -> Any:
        return self.head(self.norm(x).flatten(1))


class StuckInTrainMode(SequenceNet):
    """Overrides train() without passing the mode on: eval() leaves the batch norm training."""

    def train(self, mode: bool = True) -> StuckInTrainMode:
        self.training = mode
        return self


SEQ_X = torch.from_numpy(_RNG.normal(size=(32, 4, 5)).astype(np.float32))
SEQ_Y = torch.from_numpy(_RNG.integers(0, 3, size=32))


def sequence_trainer(cls: type[nn.Module]) -> TorchTrainer:
    torch.manual_seed(0)
    model = cls()
    return TorchTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())


def states_equal(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    return not compare_states(a, b)


class TestTorchTrainer:
    def test_state_names(self) -> None:
        """state() holds parameters, buffers, optimizer slots and groups, the RNG and the step."""
        trainer = sequence_trainer(SequenceNet)
        trainer.train_step((SEQ_X, SEQ_Y))
        state = trainer.state()
        for name in (
            "param/norm.weight",
            "buffer/norm.running_mean",
            "buffer/norm.num_batches_tracked",
            "optim/group0/lr",
            "rng/torch",
            "step",
        ):
            assert name in state
        assert 1 == int(state["step"])
        assert all(isinstance(v, np.ndarray) for v in state.values())

    def test_optimizer_slots_are_named_by_parameter(self) -> None:
        """Adam's moments appear under the parameter's name."""
        trainer = make_torch_trainer(0)
        trainer.train_step(BATCHES[0])
        state = trainer.state()
        assert {"exp_avg", "exp_avg_sq", "step"} == {
            k.rsplit("/", 1)[1] for k in state if k.startswith("optim/hidden.weight/")
        }

    def test_save_load_restores_everything(self, tmp_path: Path) -> None:
        """A fresh trainer loading a checkpoint has the saved state bitwise, RNG included."""
        trainer = make_torch_trainer(0)
        for batch in BATCHES[:3]:
            trainer.train_step(batch)
        trainer.save(tmp_path / "ckpt.pt")
        saved = snapshot(trainer.state())
        fresh = make_torch_trainer(1)
        torch.manual_seed(12345)
        fresh.load(tmp_path / "ckpt.pt")
        assert states_equal(saved, snapshot(fresh.state()))
        resumed = fresh.train_step(BATCHES[3])
        torch.set_rng_state(torch.from_numpy(saved["rng/torch"]))  # dropout uses the global RNG
        assert trainer.train_step(BATCHES[3]) == resumed

    def test_scheduler_is_part_of_the_state(self, tmp_path: Path) -> None:
        """A learning-rate scheduler's state is in state() and in the checkpoint."""
        torch.manual_seed(0)
        model = MLP()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        trainer = TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler)
        for batch in BATCHES[:3]:
            trainer.train_step(batch)
        assert 0.05 == pytest.approx(float(trainer.state()["optim/group0/lr"]))
        assert 3 == int(trainer.state()["sched/last_epoch"])

    def test_gradients(self) -> None:
        """gradients() lists every parameter, keyed like state(): an unused trainable one
        shows zeros, a frozen one None."""

        class WithUnused(MLP):
            def __init__(self) -> None:
                super().__init__()
                self.unused = nn.Linear(2, 2)

        torch.manual_seed(0)
        model = WithUnused()
        model.hidden.bias.requires_grad_(False)
        trainer = TorchTrainer(
            model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
        )
        before = trainer.gradients()
        assert {f"param/{n}" for n, _ in model.named_parameters()} == set(before)
        assert all(g is None or not g.any() for g in before.values())
        trainer.train_step(BATCHES[0])
        grads = trainer.gradients()
        assert grads["param/hidden.bias"] is None
        assert 0.0 == float(np.abs(grads["param/unused.weight"]).sum())
        assert float(np.abs(grads["param/hidden.weight"]).sum()) > 0
        assert set(grads) <= set(trainer.state())

    def test_trace_uses_hooks_and_removes_them(self) -> None:
        """trace() records each leaf module's output and leaves no hook behind."""
        trainer = make_torch_trainer(0)
        acts = trainer.trace(BATCHES[0][0])
        assert {"hidden", "dropout", "out"} == set(acts)
        assert (32, 16) == acts["hidden"].shape
        assert all(not m._forward_hooks for m in trainer.model.modules())

    def test_trace_named_modules(self) -> None:
        """trace_modules picks the modules to record; unknown names are rejected."""
        torch.manual_seed(0)
        model = MLP()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), trace_modules=["out"])
        assert ["out"] == list(trainer.trace(X[:4]))
        with pytest.raises(InvalidInput, match="'trace_modules' names modules"):
            TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), trace_modules=["missing"])

    def test_predict_returns_numpy_and_keeps_the_mode(self) -> None:
        """predict() gives numpy in eval mode and restores the model's training flag."""
        trainer = make_torch_trainer(0)
        trainer.model.train()
        out = trainer.predict(X[:5])
        assert isinstance(out, np.ndarray)
        assert (5, 3) == out.shape
        assert trainer.model.training
        np.testing.assert_array_equal(out, trainer.predict(X[:5]))

    def test_softmax_output(self) -> None:
        """output='softmax' returns class probabilities."""
        torch.manual_seed(0)
        model = MLP()
        trainer = TorchTrainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            nn.CrossEntropyLoss(),
            output="softmax",
        )
        probs = trainer.predict(X[:4].astype(np.float64))
        np.testing.assert_allclose(np.ones(4), probs.sum(axis=1), rtol=1e-5)

    def test_numpy_batches(self) -> None:
        """numpy float64 batches are converted to the model's dtype."""
        trainer = make_torch_trainer(0)
        loss = trainer.train_step((X[:8].astype(np.float64), Y[:8]))
        assert np.isfinite(loss)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("not a module", None, None), "'model' must be a torch.nn.Module"),
            ((nn.Linear(2, 2), "sgd", None), "'optimizer' must be a torch.optim.Optimizer"),
        ],
    )
    def test_rejects_bad_arguments(self, args: tuple[Any, ...], message: str) -> None:
        """Arguments of the wrong type raise InvalidInput naming them."""
        with pytest.raises(InvalidInput, match=message):
            TorchTrainer(*args)

    def test_rejects_bad_loss_output_and_batch(self) -> None:
        """A non-callable loss, an unknown output and a batch that is not a pair are rejected."""
        model = nn.Linear(6, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with pytest.raises(InvalidInput, match="'loss_fn' must be callable"):
            TorchTrainer(model, optimizer, 3)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="'output' must be one of"):
            TorchTrainer(model, optimizer, nn.MSELoss(), output="probs")  # type: ignore[arg-type]
        trainer = TorchTrainer(model, optimizer, nn.CrossEntropyLoss())
        with pytest.raises(InvalidInput, match="'batch' must be a pair"):
            trainer.train_step(X)


class TestRecordRun:
    def test_records_a_reproducible_run(self) -> None:
        """Two runs from one seed give identical losses and step hashes and pass reproducibility."""
        runs = [
            record_run(softmax_trainer(0), BATCHES, X, Y, slices=Y % 2, name=name)
            for name in ("a", "b")
        ]
        a, b = runs
        assert isinstance(a, TrainingRun)
        assert len(BATCHES) == len(a.losses)
        assert a.step_hashes == b.step_hashes
        assert len(set(a.step_hashes)) == len(BATCHES)
        assert {"accuracy", "final_loss"} == set(a.metrics)
        assert Status.PASS == run_check(ReproducibilityCheck(runs=runs)).status

    def test_different_seeds_differ(self) -> None:
        """Runs from different seeds have different fingerprints."""
        a = record_run(make_torch_trainer(0), BATCHES[:2], X, Y)
        b = record_run(make_torch_trainer(1), BATCHES[:2], X, Y)
        assert a.step_hashes != b.step_hashes

    def test_needs_batches(self) -> None:
        """An empty batch sequence is rejected."""
        with pytest.raises(InvalidInput, match="at least one batch"):
            record_run(make_torch_trainer(0), [], X, Y)


class TestChecksOnTorch:
    def test_loss_decreases(self) -> None:
        """A small torch MLP passes LossDecreasesCheck, starting near ln 3."""
        check = LossDecreasesCheck(
            make_trainer=make_torch_trainer, batches=BATCHES, n_steps=60, n_classes=3
        )
        result = run_check(check)
        assert Status.PASS == result.status, str(result)

    def test_checkpoint_restore_inprocess(self) -> None:
        """A small torch MLP restores bitwise from its checkpoint in-process."""
        check = CheckpointRestoreCheck(make_trainer=make_torch_trainer, batches=BATCHES, n_steps=12)
        result = run_check(check)
        assert Status.PASS == result.status, str(result)

    def test_checkpoint_restore_with_a_real_crash(self) -> None:
        """A small torch MLP restores bitwise after its training process is SIGKILLed."""
        check = CheckpointRestoreCheck(
            make_trainer=make_torch_trainer, batches=BATCHES, n_steps=8, crash_mode="process"
        )
        result = run_check(check)
        assert Status.PASS == result.status, str(result)

    def test_checkpoint_without_optimizer_state_fails(self) -> None:
        """The same model whose checkpoint omits the optimizer state FAILS, naming the slots."""
        check = CheckpointRestoreCheck(
            make_trainer=make_forgetful_trainer, batches=BATCHES, n_steps=12
        )
        result = run_check(check)
        assert Status.FAIL == result.status
        message = result.finding("restored_state").message
        assert "'optim/hidden.weight/exp_avg'" in message
        assert Status.FAIL == result.finding("final_state").status

    def test_single_batch(self) -> None:
        """A small torch MLP passes SingleBatchCheck and its state is untouched afterwards."""
        trainer = make_torch_trainer(0)
        trainer.train_step(BATCHES[0])
        before = snapshot(trainer.state())
        result = run_check(SingleBatchCheck(trainer=trainer, batch=BATCHES[1]))
        assert Status.PASS == result.status, str(result)
        assert "the names gradients() reports" == result.details["trainable_from"]
        assert states_equal(before, snapshot(trainer.state()))

    def test_single_batch_with_frozen_layer(self) -> None:
        """A parameter with requires_grad=False declared frozen passes frozen_unchanged."""
        trainer = make_torch_trainer(0)
        trainer.model.hidden.weight.requires_grad_(False)
        result = run_check(
            SingleBatchCheck(trainer=trainer, batch=BATCHES[1], frozen=["param/hidden.weight"])
        )
        assert Status.PASS == result.status, str(result)

    def test_healthy_batch_norm_passes_single_vs_batch(self) -> None:
        """Batch norm switched to eval mode for prediction gives batch-independent outputs."""
        check = SingleBatchCheck(trainer=sequence_trainer(SequenceNet), batch=(SEQ_X, SEQ_Y))
        result = run_check(check)
        assert Status.PASS == result.status, str(result)

    def test_batch_norm_left_in_train_mode_fails(self) -> None:
        """Batch norm left in train mode FAILS the single-example-vs-batch comparison."""
        check = SingleBatchCheck(trainer=sequence_trainer(StuckInTrainMode), batch=(SEQ_X, SEQ_Y))
        result = run_check(check)
        assert Status.FAIL == result.status
        finding = result.finding("single_vs_batch")
        assert Status.FAIL == finding.status
        assert "batch norm in train mode" in finding.message
        stateless = result.finding("predict_stateless")
        assert Status.FAIL == stateless.status
        assert "'buffer/norm.running_mean'" in stateless.message


def clipped_step(model: Any, optimizer: Any, batch: Any) -> Any:
    """A user's training step with gradient clipping."""
    inputs, targets = batch
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
    optimizer.step()
    return loss


def zero_grad_after_step(model: Any, optimizer: Any, batch: Any) -> float:
    """A step that clears the gradients after the update, as some loops do."""
    inputs, targets = batch
    loss = nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


class TestOwnStep:
    def test_step_fn_is_used_and_gradients_are_the_applied_ones(self) -> None:
        """step_fn runs the user's step; gradients() holds the clipped gradients."""
        torch.manual_seed(0)
        model = MLP()
        trainer = TorchTrainer(
            model, torch.optim.SGD(model.parameters(), lr=0.1), step_fn=clipped_step
        )
        loss = trainer.train_step(BATCHES[0])
        assert isinstance(loss, float)
        assert 1 == trainer.step
        grads = trainer.gradients()
        norm = float(np.sqrt(sum(float((g**2).sum()) for g in grads.values() if g is not None)))
        assert norm <= 0.1 + 1e-5

    def test_gradients_recorded_when_the_step_clears_them(self) -> None:
        """Gradients are recorded when the optimizer steps, even if .grad is cleared after."""
        torch.manual_seed(0)
        model = MLP()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = TorchTrainer(model, optimizer, step_fn=zero_grad_after_step)
        trainer.train_step(BATCHES[0])
        assert all(p.grad is None for p in model.parameters())
        assert float(np.abs(trainer.gradients()["param/hidden.weight"]).sum()) > 0

    def test_needs_a_loss_or_a_step(self) -> None:
        """Neither loss_fn nor step_fn, or a lone save_fn, is rejected by name."""
        model = MLP()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with pytest.raises(InvalidInput, match="'loss_fn' or 'step_fn'"):
            TorchTrainer(model, optimizer)
        with pytest.raises(InvalidInput, match="'step_fn' must be callable"):
            TorchTrainer(model, optimizer, step_fn=3)
        with pytest.raises(InvalidInput, match="'save_fn' and 'load_fn' go together"):
            TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), save_fn=lambda t, p: None)

    def test_own_checkpoint_functions(self, tmp_path: Path) -> None:
        """save_fn/load_fn are the checkpoint; state() lists no step counter then."""
        calls: list[str] = []

        def save(trainer: TorchTrainer, path: Path) -> None:
            calls.append("save")
            torch.save({"model": trainer.model.state_dict()}, path)

        def load(trainer: TorchTrainer, path: Path) -> None:
            calls.append("load")
            trainer.model.load_state_dict(torch.load(path, weights_only=True)["model"])

        torch.manual_seed(0)
        model = MLP()
        trainer = TorchTrainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            nn.CrossEntropyLoss(),
            save_fn=save,
            load_fn=load,
        )
        trainer.save(tmp_path / "c.pt")
        trainer.train_step(BATCHES[0])
        trainer.load(tmp_path / "c.pt")
        assert ["save", "load"] == calls
        assert "step" not in trainer.state()

    def test_deep_copy_with_scheduler_does_not_warn(self) -> None:
        """A deep copy of a trainer with a scheduler steps without torch's order warning."""
        import copy

        torch.manual_seed(0)
        model = MLP()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        trainer = TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), scheduler=scheduler)
        clone = copy.deepcopy(trainer)
        clone.train_step(BATCHES[0])  # filterwarnings=error turns a warning into a failure
        assert clone.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


class TestFrozenParameters:
    def test_frozen_by_mistake_fails_by_name(self) -> None:
        """requires_grad=False without frozen= FAILS frozen_parameters naming the tensor."""
        trainer = make_torch_trainer(0)
        trainer.model.hidden.weight.requires_grad_(False)
        result = run_check(SingleBatchCheck(trainer=trainer, batch=BATCHES[1]))
        finding = result.finding("frozen_parameters")
        assert Status.FAIL == finding.status
        assert "'param/hidden.weight'" in finding.message
        row = {r["name"]: r for r in result.details["tensors"]}["param/hidden.weight"]
        assert "frozen" == row["role"]

    def test_healthy_counts_every_parameter(self) -> None:
        """The summary of a healthy model counts all of its parameter tensors."""
        result = run_check(SingleBatchCheck(make_trainer=make_torch_trainer, batch=BATCHES[1]))
        assert Status.PASS == result.finding("frozen_parameters").status
        assert "4 trainable tensors updated" in result.summary
