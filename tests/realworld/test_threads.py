"""Training checks on thread and process pools, on a PyTorch model written the usual way.

The model, the seed function and the training data are what a torch user writes; the checks
are used as their docs show. Threads of one process share torch's global generator (dropout
masks, initialisation), so the checks that train must not interleave there: the Suite runs
them one at a time and says so, and the verdicts are the serial ones.
"""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from mlchecks import Context, Status, Suite  # noqa: E402
from mlchecks.checks.reproducibility import ReproducibilityCheck  # noqa: E402
from mlchecks.checks.single_batch import SingleBatchCheck  # noqa: E402
from mlchecks.checks.training import CheckpointRestoreCheck, LossDecreasesCheck  # noqa: E402
from mlchecks.integrations.torch import TorchTrainer, record_run  # noqa: E402

pytestmark = pytest.mark.integration

ONE_AT_A_TIME = "ran one at a time"
TRAINING_CHECKS = ("single_batch", "checkpoint_restore", "reproducibility", "loss_decreases")

# --------------------------------------------------------------------------- the user's code


def seed_everything(seed: int) -> None:
    """The seed function of a typical training script."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global, as scripts seed it
    torch.manual_seed(seed)


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(10, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(32, 3),
    )


def make_trainer(seed: int) -> TorchTrainer:
    """Everything the script builds before its training loop."""
    torch.set_num_threads(1)
    seed_everything(seed)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    return TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), output="softmax")


def make_stale_trainer(seed: int) -> TorchTrainer:
    """The planted fault: the model is rebuilt after the optimizer was made for the old one."""
    torch.set_num_threads(1)
    seed_everything(seed)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    model = build_model()  # e.g. "reset the model" after the optimizer already exists
    return TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), output="softmax")


_generator = torch.Generator().manual_seed(0)
FEATURES = torch.randn(1024, 10, generator=_generator)
LABELS = (FEATURES[:, :3] + 0.3 * torch.randn(1024, 3, generator=_generator)).argmax(dim=1)
BATCHES = [(FEATURES[i : i + 64], LABELS[i : i + 64]) for i in range(0, 768, 64)] * 4
# Copies: torch moves a tensor's storage to shared memory when it is sent to a process pool,
# which would leave a numpy view of it (``tensor.numpy()``) pointing at freed memory.
EVAL_X, EVAL_Y = FEATURES[768:].numpy().copy(), LABELS[768:].numpy().copy()


def train_run(seed: int):  # type: ignore[no-untyped-def]
    """The script's training run, recorded for ReproducibilityCheck."""
    return record_run(make_trainer(seed), BATCHES[:24], EVAL_X, EVAL_Y)


def train_run_unseeded(seed: int):  # type: ignore[no-untyped-def]
    """The planted fault: the script forgets to seed (the seed argument is ignored)."""
    torch.set_num_threads(1)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    trainer = TorchTrainer(model, optimizer, nn.CrossEntropyLoss(), output="softmax")
    return record_run(trainer, BATCHES[:24], EVAL_X, EVAL_Y)


def training_suite(factory=make_trainer, run=train_run) -> Suite:  # type: ignore[no-untyped-def]
    return Suite(
        [
            SingleBatchCheck(make_trainer=factory, batch=BATCHES[0], train_example=False),
            CheckpointRestoreCheck(
                make_trainer=factory, batches=BATCHES[:12], crash_mode="inprocess"
            ),
            ReproducibilityCheck(make_run=run),
            LossDecreasesCheck(make_trainer=factory, batches=BATCHES, n_classes=3),
        ],
        name="preflight",
    )


# --------------------------------------------------------------------------- the cases


class TestThreadPool:
    @pytest.mark.parametrize("attempt", [1, 2, 3])
    def test_healthy_model_passes(self, attempt: int) -> None:
        """A healthy torch model passes every training check on a 2-thread pool, every time."""
        with ThreadPoolExecutor(2) as pool:
            report = training_suite().run(executor=pool, progress=False)
        assert Status.PASS == report.status, str(report)
        for name in TRAINING_CHECKS:
            assert ONE_AT_A_TIME in report[name].summary
            assert ONE_AT_A_TIME in str(report[name].details["ran_one_at_a_time"])

    def test_optimizer_of_a_rebuilt_model_fails(self) -> None:
        """A model rebuilt after its optimizer (it never learns) still FAILs on threads."""
        with ThreadPoolExecutor(2) as pool:
            report = training_suite(factory=make_stale_trainer).run(executor=pool, progress=False)
        assert Status.FAIL == report["loss_decreases"].status
        assert Status.FAIL == report["loss_decreases"].finding("loss_trend").status
        assert Status.FAIL == report["single_batch"].status
        assert Status.PASS == report["reproducibility"].status

    def test_unseeded_training_fails(self) -> None:
        """A script that ignores its seed FAILs reproducibility on threads, by churn."""
        with ThreadPoolExecutor(2) as pool:
            report = training_suite(run=train_run_unseeded).run(executor=pool, progress=False)
        assert Status.FAIL == report["reproducibility"].status
        assert Status.FAIL == report["reproducibility"].finding("churn").status
        assert Status.PASS == report["checkpoint_restore"].status

    def test_seeded_runs_submitted_to_threads_agree(self) -> None:
        """Two seeded runs that ReproducibilityCheck submits to a thread pool are identical."""
        with ThreadPoolExecutor(2) as pool:
            result = ReproducibilityCheck(make_run=train_run).run(Context(executor=pool))
        assert Status.PASS == result.status, str(result)
        assert 0.0 == result.metrics["churn"]
        assert ONE_AT_A_TIME in result.summary


class TestProcessPool:
    def test_healthy_model_passes(self) -> None:
        """On a process pool the same suite passes, and nothing needed to wait."""
        with ProcessPoolExecutor(2) as pool:
            report = training_suite().run(executor=pool, progress=False)
        assert Status.PASS == report.status, str(report)
        for result in report:
            assert "ran_one_at_a_time" not in result.details

    def test_seeded_runs_submitted_to_processes_agree(self) -> None:
        """Two seeded runs submitted to a process pool are identical, with no note."""
        with ProcessPoolExecutor(2) as pool:
            result = ReproducibilityCheck(make_run=train_run).run(Context(executor=pool))
        assert Status.PASS == result.status, str(result)
        assert "ran_one_at_a_time" not in result.details

    def test_optimizer_of_a_rebuilt_model_fails(self) -> None:
        """The model rebuilt after its optimizer FAILs on a process pool too."""
        with ProcessPoolExecutor(2) as pool:
            report = training_suite(factory=make_stale_trainer).run(executor=pool, progress=False)
        assert Status.FAIL == report["loss_decreases"].finding("loss_trend").status
        assert Status.PASS == report["checkpoint_restore"].status


class TestInline:
    def test_healthy_model_passes_without_a_note(self) -> None:
        """Run in order without an executor, the suite passes and adds no note."""
        report = training_suite().run(progress=False)
        assert Status.PASS == report.status, str(report)
        assert all("ran_one_at_a_time" not in r.details for r in report)


class TestDask:
    def test_healthy_model_passes_on_threaded_workers(self) -> None:
        """On a Dask worker with two threads the training checks still never interleave."""
        distributed = pytest.importorskip("distributed")
        with (
            distributed.LocalCluster(
                n_workers=1,
                threads_per_worker=2,
                processes=False,  # in this process: its threads share torch's generator
                dashboard_address="127.0.0.1:0",
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            report = training_suite().run(executor=client.get_executor(), progress=False)
        assert Status.PASS == report.status, str(report)
