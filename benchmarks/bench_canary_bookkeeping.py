"""The canary's bookkeeping per request: the stage-1 monitor fed synthetic requests (no HTTP).

`CanaryCheck`'s trickle and `CanaryJudge` both hand every request to a `CanaryMonitor`
(`mlchecks.checks._canary_policy`), which updates the anytime-valid tests and decides. This
script feeds one monitor ``N`` synthetic requests in each mode and times every call:

- **split**: `CanaryCheck`'s split mode (5% of requests to the candidate);
- **routed**: `CanaryJudge`'s split mode (routing share not known, 10% to the candidate,
  the tail threshold over a window of 20,000 latencies);
- **shadow**: mirrored pairs (both versions answer every request).

Each request has a label (the accuracy test runs: ``max_accuracy_drop=0.05``), so a
request's cost is ``observe`` (``observe_pair``) plus ``observe_outcome``
(``observe_outcome_pair``). The traffic is healthy except for a small shift of the
candidate's classes (PSI about 0.03, below ``max_psi`` 0.1): the shift test soon rejects
and the size gate is then looked at after every request, which is the expensive path of a
real canary whose model predicts a little differently. 1% of requests fail.
``n_candidate_requests`` is above ``N`` so the monitor judges every request.

Printed per mode and ``N``: the per-request cost (mean, median, 99th percentile, in µs:
the mean is what a long record costs, amortized work included), the cost of a *floor*
(calling a no-op function with the same arguments: the Python call itself), the cost of
``monitor.evidence()`` at every ``--every`` requests (what a progress line or a ``/status``
request pays: mean and largest) and at the end, and the end's intervals one by one.

With ``--baseline REV`` the same requests also go to the monitor of git revision ``REV``
(its ``mlchecks`` copied under another name into a temporary directory and imported
beside the current one), the two interleaved in one process (baseline first in odd
repeats, current first in even ones); the table then has a row per version.

Run: ``python benchmarks/bench_canary_bookkeeping.py [--requests 20000 100000]
[--modes split routed shadow] [--every 1000] [--repeats 3] [--baseline REV]``
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks.checks._canary_policy import CanaryMonitor, CanaryPolicy

MODES = ("split", "routed", "shadow")
ROOT = Path(__file__).resolve().parents[1]


def policy(mode: str, n: int, policy_class: Any = CanaryPolicy) -> Any:
    """The monitor's settings in ``mode`` (the checks' defaults, labels tested)."""
    common: dict[str, Any] = {"n_candidate_requests": n + 1, "max_accuracy_drop": 0.05}
    if mode == "split":
        return policy_class(traffic_fraction=0.05, **common)
    if mode == "routed":
        return policy_class(traffic_fraction=None, tail_window=20_000, **common)
    return policy_class(traffic_fraction=0.5, mode="shadow", **common)


def baseline_classes(rev: str, into: str) -> tuple[Any, Any]:
    """`CanaryMonitor` and `CanaryPolicy` of git revision ``rev``: its ``mlchecks`` package
    extracted into ``into`` as ``mlchecks_baseline`` (imports rewritten) and imported."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "mlchecks"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = Path(into) / "mlchecks_baseline"
    (Path(into) / "mlchecks").rename(package)
    pattern = re.compile(r"\bmlchecks\b")
    for path in package.rglob("*.py"):
        path.write_text(pattern.sub("mlchecks_baseline", path.read_text()))
    sys.path.insert(0, into)
    module = importlib.import_module("mlchecks_baseline.checks._canary_policy")
    return module.CanaryMonitor, module.CanaryPolicy


def requests(mode: str, n: int, seed: int = 0) -> list[tuple[Any, ...]]:
    """``n`` synthetic requests as tuples of Python scalars (built before timing)."""
    rng = np.random.default_rng(seed)
    share = 0.05 if mode == "split" else 0.1
    candidate = rng.random(n) < share
    b_label = rng.choice(3, size=n, p=[0.47, 0.32, 0.21])
    # the candidate predicts another class for some requests: PSI about 0.03 (split) and
    # 0.01 (shadow, where the pairs' directions show it at once), below max_psi
    moved = rng.random(n) < (0.1 if mode == "shadow" else 0.2)
    c_label = np.where(moved, rng.choice(3, size=n, p=[0.0, 0.6, 0.4]), b_label)
    error = rng.random((n, 2)) < 0.01
    latency = 0.01 * np.exp(rng.normal(0.0, 0.3, (n, 2)))
    wrong = (rng.random((n, 2)) < 0.1).astype(np.float64)  # 90% accurate, both versions
    if mode == "shadow":
        return [
            (bool(error[i, 0]), bool(error[i, 1]), float(latency[i, 0]), float(latency[i, 1]),
             int(c_label[i]), int(b_label[i]), float(wrong[i, 0]), float(wrong[i, 1]))
            for i in range(n)
        ]  # fmt: skip
    labels = np.where(candidate, c_label, b_label)
    return [
        (bool(candidate[i]), bool(error[i, 0]), float(latency[i, 0]), int(labels[i]),
         float(wrong[i, 0]))
        for i in range(n)
    ]  # fmt: skip


def feeder(mode: str, monitor: Any) -> Callable[[tuple[Any, ...]], Any]:
    """The calls one request makes on ``monitor`` (a request and its label)."""
    if mode == "shadow":

        def pair(r: tuple[Any, ...]) -> Any:
            monitor.observe_pair(
                candidate_error=r[0],
                baseline_error=r[1],
                candidate_latency_s=None if r[0] else r[2],
                baseline_latency_s=None if r[1] else r[3],
                candidate_label=None if r[0] else r[4],
                baseline_label=None if r[1] else r[5],
            )
            if not (r[0] or r[1]):
                monitor.observe_outcome_pair(candidate_wrong=r[6], baseline_wrong=r[7])

        return pair

    def one(r: tuple[Any, ...]) -> Any:
        monitor.observe(
            candidate=r[0], error=r[1], latency_s=None if r[1] else r[2],
            label=None if r[1] else r[3],
        )  # fmt: skip
        if not r[1]:
            monitor.observe_outcome(candidate=r[0], wrong=r[4])

    return one


def noop(**kwargs: Any) -> int:
    """The floor's callee."""
    return 0


def floor_feeder(mode: str) -> Callable[[tuple[Any, ...]], Any]:
    """The same calls on a no-op: what passing a request's fields costs."""
    if mode == "shadow":
        return lambda r: (
            noop(candidate_error=r[0], baseline_error=r[1], candidate_latency_s=r[2],
                 baseline_latency_s=r[3], candidate_label=r[4], baseline_label=r[5]),
            noop(candidate_wrong=r[6], baseline_wrong=r[7]),
        )  # fmt: skip
    return lambda r: (
        noop(candidate=r[0], error=r[1], latency_s=r[2], label=r[3]),
        noop(candidate=r[0], wrong=r[4]),
    )


def run(mode: str, n: int, every: int, classes: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """One pass: per-request times, evidence times every ``every`` requests and at the end.

    ``classes``: the `CanaryMonitor` and `CanaryPolicy` to time (default: the current ones).
    """
    items = requests(mode, n)
    monitor_class, policy_class = classes or (CanaryMonitor, CanaryPolicy)
    monitor = monitor_class(policy(mode, n, policy_class))
    feed, floor = feeder(mode, monitor), floor_feeder(mode)
    clock = time.perf_counter_ns
    per_request = np.empty(n)
    per_floor = np.empty(n)
    looks = []
    for i, item in enumerate(items):
        t0 = clock()
        floor(item)
        t1 = clock()
        feed(item)
        t2 = clock()
        per_floor[i], per_request[i] = t1 - t0, t2 - t1
        if every and (i + 1) % every == 0:
            t3 = clock()
            monitor.evidence()
            looks.append(clock() - t3)
    assert monitor.decision == "continue", (monitor.decision, monitor.reasons)
    ends: dict[str, Any] = {}
    for name, call in (
        ("evidence", monitor.evidence),
        ("latency_ratio_interval", monitor.latency_ratio_interval),
        ("accuracy_drop_interval", monitor.accuracy_drop_interval),
        ("disagreement_interval", monitor.disagreement_interval),
    ):
        t0 = clock()
        value = call()
        ends[name] = (clock() - t0) / 1e3
        if name != "evidence":
            ends[name + "_value"] = tuple(round(float(v), 6) for v in value)
    return {
        "mean": per_request.mean() / 1e3,
        "median": float(np.median(per_request)) / 1e3,
        "p99": float(np.quantile(per_request, 0.99)) / 1e3,
        "floor": float(np.median(per_floor)) / 1e3,
        "look_mean": float(np.mean(looks)) / 1e3 if looks else float("nan"),
        "look_max": float(np.max(looks)) / 1e3 if looks else float("nan"),
        "shift_rejected": monitor.shift_tolerated,
        **ends,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="also time the monitor of this git revision")
    args = parser.parse_args()
    versions: dict[str, tuple[Any, Any] | None] = {"current": None}
    if args.baseline:
        scratch = tempfile.mkdtemp(prefix="canary-baseline-")
        versions = {args.baseline: baseline_classes(args.baseline, scratch), "current": None}
    print(
        f"{platform.python_implementation()} {platform.python_version()}, numpy "
        f"{np.__version__}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}"
    )
    print(
        "| mode | version | requests | per request mean | median | p99 | floor (call) | "
        f"evidence every {args.every:,} (mean / max) | evidence at end | "
        "latency interval at end |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.requests:
        for mode in args.modes:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
            for repeat in range(args.repeats):
                names = list(versions) if repeat % 2 == 0 else list(versions)[::-1]
                for name in names:
                    runs[name].append(run(mode, n, args.every, versions[name]))
            for name, done in runs.items():

                def med(key: str, done: list[dict[str, Any]] = done) -> float:
                    return float(statistics.median(r[key] for r in done))

                print(
                    f"| {mode} | {name} | {n:,} | {med('mean'):.1f} µs | "
                    f"{med('median'):.1f} µs | {med('p99'):.1f} µs | {med('floor'):.2f} µs | "
                    f"{med('look_mean') / 1e3:.2f} / {med('look_max') / 1e3:.1f} ms | "
                    f"{med('evidence') / 1e3:.1f} ms | "
                    f"{med('latency_ratio_interval') / 1e3:.1f} ms |",
                    flush=True,
                )
            last = runs["current"][-1]
            same = all(
                r[key] == last[key]
                for done in runs.values()
                for r in done
                for key in last
                if key.endswith("_value") or key == "shift_rejected"
            )
            print(
                f"|   |   | intervals at end: latency {last['latency_ratio_interval_value']}, "
                f"accuracy drop {last['accuracy_drop_interval_value']}, disagreement "
                f"{last['disagreement_interval_value']}; shift tolerated "
                f"{last['shift_rejected']}; the same in every run and version: {same}; "
                f"load {os.getloadavg()[0]:.2f} | | | | | | | |",
                flush=True,
            )


if __name__ == "__main__":
    main()
