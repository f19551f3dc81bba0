"""ReproducibilityCheck on Dask arrays larger than the workers' memory.

Starts a `distributed.LocalCluster` on 127.0.0.1 whose workers together have less memory
than the data, has the workers generate two runs' predictions (binary probabilities, the
second run jittered by about 1e-6), labels and 100 slice ids, and runs the check on them:
the pass runs on the workers and only tables travel. It then checks the verdict against a
subsample computed both ways (in memory on the client and on Dask) and prints a Markdown
table: rows, data size, worker memory, wall time, rows per second, the client's peak
resident memory, the verdicts.

    python benchmarks/bench_dask_repro.py --rows 1e8 --subsample 1e7
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import subprocess
import time
from typing import Any

import numpy as np

BYTES_PER_ROW = 2 * 2 * 4 + 8 + 8  # two runs of 2 float32 columns, int64 labels and slices


def generated(n: int, rows: int, seed: int) -> list[Any]:
    """Two runs whose data the workers generate chunk by chunk."""
    import dask.array as da

    from mlchecks.checks import TrainingRun

    rs = da.random.RandomState(seed)
    raw = rs.random_sample((n, 2), chunks=(rows, 2)).astype(np.float32)
    p = raw / raw.sum(axis=1, keepdims=True)
    noise = rs.normal(scale=1e-6, size=(n, 2), chunks=(rows, 2)).astype(np.float32)
    jittered = p * (1 + noise)
    q = jittered / jittered.sum(axis=1, keepdims=True)
    y = rs.randint(0, 2, size=n, chunks=rows)
    slices = rs.randint(0, 100, size=n, chunks=rows)
    return [
        TrainingRun(predictions=p, labels=y, slices=slices, name="a"),
        TrainingRun(predictions=q, labels=y, slices=slices, name="b"),
    ]


def local(x: Any) -> np.ndarray:
    """A Dask array's values on the client, chunk by chunk."""
    import dask

    return np.concatenate([np.asarray(part) for part in dask.compute(*x.to_delayed().ravel())])


def both_ways(runs: list[Any], rows: int) -> tuple[Any, Any]:
    """The check on the first ``rows`` rows of Dask runs: on Dask, and in memory."""
    from mlchecks.checks import ReproducibilityCheck, TrainingRun

    head = [
        TrainingRun(
            predictions=r.predictions[:rows],
            labels=r.labels[:rows],
            slices=r.slices["slice"].codes[:rows],
            name=r.name,
        )
        for r in runs
    ]
    lazy = ReproducibilityCheck(runs=head).run()
    memory = ReproducibilityCheck(
        runs=[
            TrainingRun(
                predictions=local(r.predictions),
                labels=local(r.labels),
                slices=local(r.slices["slice"].codes),
                name=r.name,
            )
            for r in head
        ]
    ).run()
    return lazy, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e8)
    parser.add_argument("--chunk", type=float, default=1e6)
    parser.add_argument("--subsample", type=float, default=1e7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory", default="1GB", help="memory limit per worker")
    args = parser.parse_args()
    import distributed

    from mlchecks.checks import ReproducibilityCheck

    n, rows, sub = int(args.rows), int(args.chunk), int(args.subsample)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"commit {commit}; load average {os.getloadavg()[0]:.1f}"
    )
    with (
        distributed.LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            memory_limit=args.memory,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster),
    ):
        runs = generated(n, rows, seed=5)
        start = time.perf_counter()
        full = ReproducibilityCheck(runs=runs).run()
        elapsed = time.perf_counter() - start
        lazy, memory = both_ways(runs, sub)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    same = [(f.name, f.status) for f in lazy.findings] == [
        (f.name, f.status) for f in memory.findings
    ]
    print()
    print(
        "| rows | data | workers | wall time | rows/s | client peak RSS | verdict | "
        f"{sub:.0e}-row subsample: Dask / in memory |"
    )
    print("| ---: | ---: | --- | ---: | ---: | ---: | --- | --- |")
    print(
        f"| {n:.0e} | {n * BYTES_PER_ROW / 1e9:.1f} GB | {args.workers} x {args.memory} | "
        f"{elapsed:.1f} s | {n / elapsed / 1e6:.2f} M | {peak:.0f} MiB | {full.status.name} | "
        f"{lazy.status.name} / {memory.status.name} (findings equal: {same}) |"
    )
    print()
    print(full.summary)


if __name__ == "__main__":
    main()
