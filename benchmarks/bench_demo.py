"""Wall time of ``mlchecks demo``: the healthy system and every planted fault.

Each run is a fresh ``python -m mlchecks demo`` process (import, data, training, serving,
all checks, report), so the figure is what a user waits for. Budget: under 60 s healthy.

Run: ``python benchmarks/bench_demo.py [--repeats 5] [--faults]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time


def wall(args: list[str], repeats: int) -> tuple[float, float, int]:
    """Median and max wall time of ``python -m mlchecks demo ARGS``, and its exit code."""
    times = []
    code = 0
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mlchecks", "demo", "--no-progress", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
        code = proc.returncode
    return statistics.median(times), max(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--faults", action="store_true", help="also time every fault")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {load:.2f}")
    median, worst, code = wall([], args.repeats)
    print(f"{'healthy':<36} median {median:6.2f} s  max {worst:6.2f} s  exit {code}")
    if args.faults:
        from mlchecks.demo import FAULTS

        for name in FAULTS:
            median, worst, code = wall(["--fault", name], args.repeats)
            print(f"{name:<36} median {median:6.2f} s  max {worst:6.2f} s  exit {code}")


if __name__ == "__main__":
    main()
