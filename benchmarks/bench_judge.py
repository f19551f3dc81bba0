"""Throughput of the canary judge on a request log: reading it, and judging it.

A JSON Lines request log of ``--rows`` requests (10% to the candidate, 1% errors,
log-normal latencies, a predicted class, a request id and a time per line, and a late label
per request) is written to a temporary file, then timed in this process, each job
``--repeats`` times after one untimed run (median and fastest):

- **floor**: ``json.loads`` of every line (reading the input once, as text to objects);
- **read**: ``list(read_records(path))``, the `Record` and `Label` items;
- **read + judge**: ``CanaryJudge(records=read_records(path)).run()``, judging the whole
  log (``n_candidate_requests`` above its length);
- **judge**: the same, on the items already in memory (the judge's own cost);
- **pandas**: ``pandas.read_json(path, lines=True)``, when pandas is installed: what a
  hand-written analysis starts with.

Run: ``python benchmarks/bench_judge.py [--rows 200000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks.checks import CanaryJudge
from mlchecks.serving import read_records


def write_log(path: Path, rows: int, seed: int = 0) -> None:
    """A request log of ``rows`` requests and their late labels."""
    rng = np.random.default_rng(seed)
    candidate = rng.random(rows) < 0.1
    failed = rng.random(rows) < 0.01
    latency_ms = 10.0 * np.exp(rng.normal(0.0, 0.3, rows))
    truth = rng.integers(0, 3, rows)
    predicted = np.where(rng.random(rows) < 0.9, truth, (truth + 1) % 3)
    with path.open("w") as log:
        for i in range(rows):
            line: dict[str, Any] = {
                "version": "v2" if candidate[i] else "v1",
                "request_id": f"r{i}",
                "time": 1_760_000_000.0 + i / 100,
            }
            if failed[i]:
                line["status"] = 503
            else:
                line.update(latency_ms=round(float(latency_ms[i]), 3), prediction=int(predicted[i]))
            log.write(json.dumps(line) + "\n")
            if i >= 100 and not failed[i - 100]:
                log.write(
                    json.dumps({"request_id": f"r{i - 100}", "label": int(truth[i - 100])}) + "\n"
                )


def timed(job: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median and fastest wall time of ``job`` after one untimed run."""
    job()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.jsonl"
        write_log(path, args.rows)
        lines = sum(1 for _ in path.open())
        items = list(read_records(path))
        judge = CanaryJudge("v1", "v2", n_candidate_requests=args.rows + 1)

        def floor() -> None:
            with path.open() as log:
                for line in log:
                    json.loads(line)

        def judge_items() -> None:
            watch = judge.start()
            for item in items:
                watch.observe(item)
            watch.result()

        jobs: dict[str, Callable[[], Any]] = {
            "floor (json.loads per line)": floor,
            "read (read_records)": lambda: list(read_records(path)),
            "read + judge (CanaryJudge.run)": lambda: CanaryJudge(
                "v1", "v2", records=read_records(path), n_candidate_requests=args.rows + 1
            ).run(),
            "judge (items in memory)": judge_items,
        }
        try:
            import pandas as pd

            jobs["pandas.read_json(lines=True)"] = lambda: pd.read_json(path, lines=True)
        except ImportError:
            pass
        print(
            f"{args.rows:,} requests, {lines:,} lines ({path.stat().st_size / 1e6:.1f} MB); "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"load {os.getloadavg()[0]:.2f}"
        )
        print("| job | median | fastest | per line | x floor |")
        print("| --- | ---: | ---: | ---: | ---: |")
        base = None
        for name, job in jobs.items():
            median, fastest = timed(job, args.repeats)
            base = median if base is None else base
            print(
                f"| {name} | {median:.2f} s | {fastest:.2f} s | "
                f"{median / lines * 1e6:.1f} us | {median / base:.1f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
