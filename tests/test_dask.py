"""Checks and suites on a real Dask cluster: a `distributed.LocalCluster` of worker processes.

`Context(executor=client.get_executor(pure=False))` sends a check's independent work (the
training runs of `ReproducibilityCheck`) to the workers; `Suite.run` on that context sends
whole checks. The verdicts must be the ones an inline run gives. ``pure=False`` matters:
with Dask's default (``pure=True``), ``submit(train, 0)`` twice gives one task key, so the
training runs once and both "runs" are the same result.

The workers run with ``distributed.worker.daemon`` off: `CheckpointRestoreCheck` with
``crash_mode="process"`` starts (and kills) training processes of its own, and a daemonic
worker may not have children.

Of the demo suite's checks, ``pipeline``, ``single_batch``, ``canary`` and ``rollback``
cannot travel to a worker process: they hold objects with `threading.Lock` fields (the
demo's `InProcessServer` and `DemoService`, or the `DemoSystem` through a bound method or a
closure), which neither pickle nor cloudpickle can serialize. The other four can.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from _dask_cluster import local_client

from mlchecks import Context, Status, Suite
from mlchecks.checks.reproducibility import ReproducibilityCheck, TrainingRun
from mlchecks.demo.suite import build_suite, demo_training_run

pytestmark = pytest.mark.integration

# The demo checks whose objects pickle (see the module docstring for the others).
SHIPPABLE = ("reproducibility", "loss_decreases", "checkpoint_restore", "quality")


def train_reporting_pid(seed: int, fault: str | None = None) -> TrainingRun:
    """Train one demo model and name the run after the process that trained it."""
    run = demo_training_run(seed, fault=fault)
    return attrs.evolve(run, name=f"pid {os.getpid()}")


def trained_in(result: Any) -> set[int]:
    """The process ids that trained the runs of a reproducibility result."""
    names = [run["name"].split(",")[0] for run in result.details["runs"]]  # "pid 7, run 2"
    return {int(name.removeprefix("pid ")) for name in names}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of a two-process Dask cluster on 127.0.0.1 whose workers may start processes."""
    with local_client(None, daemon=False) as client:
        yield client


class TestReproducibilityOnDask:
    def test_training_runs_in_worker_processes(self, client: Any) -> None:
        """The `make_run` callable runs on the workers, not in the process that runs the check."""
        context = Context(executor=client.get_executor(pure=False))
        result = ReproducibilityCheck(make_run=train_reporting_pid).run(context)
        pids = trained_in(result)
        assert os.getpid() not in pids
        assert pids <= set(client.run(os.getpid).values())

    def test_verdict_matches_the_inline_run(self, client: Any) -> None:
        """Seeded demo training is reproducible on the cluster exactly as it is inline."""
        check = ReproducibilityCheck(make_run=demo_training_run, seeds=(0, 0))
        on_cluster = check.run(Context(executor=client.get_executor(pure=False)))
        inline = check.run(Context())
        assert Status.PASS == inline.status
        assert inline.status == on_cluster.status
        assert inline.metrics == on_cluster.metrics

    def test_planted_fault_fails_on_the_cluster(self, client: Any) -> None:
        """Training that shuffles its data from OS entropy fails on the cluster too: each
        seed is trained by its own task, even when the seeds are equal."""
        train = functools.partial(train_reporting_pid, fault="nondeterministic_training")
        result = ReproducibilityCheck(make_run=train).run(
            Context(executor=client.get_executor(pure=False))
        )
        assert Status.FAIL == result.status
        assert Status.FAIL == result.finding("churn").status
        assert os.getpid() not in trained_in(result)


class TestDemoSuiteOnDask:
    def test_shippable_demo_checks_pass_on_the_workers(self, client: Any) -> None:
        """The demo checks that pickle run on the workers, the checkpoint check with its
        SIGKILLed training process included, and pass as they do inline."""
        suite = Suite([c for c in build_suite(seed=0) if c.name in SHIPPABLE], name="demo")
        report = suite.run(Context(executor=client.get_executor(pure=False)), progress=False)
        assert list(SHIPPABLE) == [r.check for r in report]
        assert [Status.PASS] * len(SHIPPABLE) == [r.status for r in report], str(report)
        assert 3.0 == report.score.total  # rubric tests 1, 2 and 4
