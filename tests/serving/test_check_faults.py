"""Every serving check ends within its check_timeout_s + 1 s against a hostile server.

The server (`_faulty.FaultyServer`, a raw-socket Open Inference Protocol server) answers the
baseline normally and trickles, stalls, drops, floods or nests the candidate's answers. The
checks talk to it through the real `V2Endpoint`, as a user's would; after each run no
thread the check started and no socket it opened is left.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from _faulty import FaultyServer

import mlchecks
from mlchecks.checks import CanaryCheck, Pipeline, PipelineCheck, RollbackCheck, Stage
from mlchecks.result import Result, Status
from mlchecks.serving import V2Deployment, V2Endpoint

CHECK_TIMEOUT_S = 3.0
FAULTS: dict[str, dict[str, Any]] = {
    "trickle": {"s_per_byte": 0.05},
    "stall": {"headers": True},
    "stall-silent": {"headers": False},
    "drop": {},
    "flood": {"framing": "length"},
    "flood-chunked": {"framing": "chunked"},
    "nested": {"depth": 100_000},
}
PROBES = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    with FaultyServer(versions=("1", "2"), models=("m",)) as faulty:
        yield faulty


def _endpoint(server: FaultyServer) -> V2Endpoint:
    return V2Endpoint(server.url, "m", timeout_s=1.0)


def _canary(server: FaultyServer) -> Any:
    return CanaryCheck(
        _endpoint(server),
        "2",
        probe_inputs=PROBES,
        baseline="1",
        traffic=lambda: iter(PROBES * 100),
        traffic_fraction=0.5,
        n_candidate_requests=20,
        load=False,  # the fault server serves any version
        request_timeout_s=1.0,
        check_timeout_s=CHECK_TIMEOUT_S,
    )


def _rollback(server: FaultyServer) -> Any:
    deployment = V2Deployment(_endpoint(server), live="1")
    return RollbackCheck(
        deployment,
        deployment,
        "2",
        probe_inputs=PROBES,
        budget_s=2.0,
        deploy_timeout_s=2.0,
        request_timeout_s=1.0,
        check_timeout_s=CHECK_TIMEOUT_S,
    )


def _pipeline(server: FaultyServer) -> Any:
    pipe = Pipeline([Stage("source", lambda: {"x": np.arange(20.0)}, columns=("x",))])
    return PipelineCheck(
        pipe,
        holdout=lambda out: {"x": np.arange(10.0, 20.0)},
        training_features=lambda out, rows: np.column_stack([rows["x"], rows["x"]]),
        serving_features=lambda out, row: [row["x"], row["x"]],
        server=_endpoint(server),
        deploy=lambda out: "2",
        predict=lambda out, features: features,
        send="features",
        load=False,
        request_timeout_s=1.0,
        check_timeout_s=CHECK_TIMEOUT_S,
    )


CHECKS: dict[str, Callable[[FaultyServer], Any]] = {
    "canary": _canary,
    "rollback": _rollback,
    "pipeline": _pipeline,
}


def _close(check: Any) -> None:
    for name in ("server", "endpoint", "deployment"):
        target = getattr(check, name, None)
        target = getattr(target, "endpoint", target)  # a V2Deployment's endpoint
        close = getattr(target, "close", None)
        if callable(close):
            close()


def _run(check: Any) -> tuple[Result, float]:
    start = time.perf_counter()
    result = mlchecks.run_check(check)
    return result, time.perf_counter() - start


def _wait_for_threads(before: set[threading.Thread], timeout_s: float) -> list[str]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return []
        time.sleep(0.05)
    return [t.name for t in threading.enumerate() if t not in before and t.is_alive()]


class TestChecksAgainstAFaultyServer:
    """A hostile candidate never holds a check past its deadline, nor leaves anything behind."""

    @pytest.mark.parametrize("check_name", sorted(CHECKS))
    def test_a_healthy_server_passes(self, server: FaultyServer, check_name: str) -> None:
        """Without a fault each check passes against the same server (the setup is sound)."""
        check = CHECKS[check_name](server)
        result, _ = _run(check)
        _close(check)
        assert Status.PASS == result.status, result.summary

    @pytest.mark.parametrize("fault", sorted(FAULTS))
    @pytest.mark.parametrize("check_name", sorted(CHECKS))
    def test_ends_on_time_without_leaks(self, check_name: str, fault: str) -> None:
        """The check ends within check_timeout_s + 1 s, does not pass, and leaks nothing."""
        threads, fds = set(threading.enumerate()), _open_fds()
        with FaultyServer(versions=("1", "2"), models=("m",)) as server:
            mode = fault.split("-")[0]
            server.fault(mode, model="m", version="2", on=("infer",), **FAULTS[fault])
            check = CHECKS[check_name](server)
            result, elapsed = _run(check)
            _close(check)
        assert elapsed <= CHECK_TIMEOUT_S + 1.0, (elapsed, result.summary)
        assert Status.PASS != result.status, result.summary
        assert [] == _wait_for_threads(threads, 2.0)
        assert fds == _open_fds()
