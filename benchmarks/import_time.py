"""How much ``import mlchecks`` costs, against ``import numpy`` alone.

Each measurement runs in a fresh interpreter (``python -X importtime`` for the self time of
each module, wall time over repeats for the total), so nothing is cached in the process.

Run: ``python benchmarks/import_time.py [--repeats 15]``
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import time

HEAVY = ("scipy", "pandas", "pytest", "matplotlib", "torch", "sklearn", "distributed")


def wall(statement: str, repeats: int) -> float:
    """Median wall time of a fresh interpreter running ``statement``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def importtime(module: str) -> tuple[float, list[tuple[float, str]]]:
    """Cumulative import time of ``module`` in seconds and the five costliest modules."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    rows = []
    total = 0.0
    for line in err.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        rows.append((int(self_us) / 1e6, name))
        if name == module and len(indent) == 1:
            total = int(cumulative_us) / 1e6
    rows.sort(reverse=True)
    return total, rows[:5]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    baseline = wall("pass", args.repeats)
    numpy_s = wall("import numpy", args.repeats)
    mlchecks_s = wall("import mlchecks", args.repeats)
    print(f"interpreter start          {baseline * 1e3:7.1f} ms")
    print(f"import numpy               {(numpy_s - baseline) * 1e3:7.1f} ms (above start)")
    print(f"import mlchecks            {(mlchecks_s - baseline) * 1e3:7.1f} ms (above start)")
    print(f"ratio mlchecks / numpy     {(mlchecks_s - baseline) / (numpy_s - baseline):7.2f}x")
    total, top = importtime("mlchecks")
    print(f"-X importtime cumulative   {total * 1e3:7.1f} ms; costliest modules (self time):")
    for seconds, name in top:
        print(f"    {seconds * 1e3:6.1f} ms  {name}")
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, mlchecks; print([m for m in {HEAVY!r} if m in sys.modules])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"heavy modules loaded by import mlchecks: {loaded}")


if __name__ == "__main__":
    main()
