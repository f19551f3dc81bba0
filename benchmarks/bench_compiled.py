"""The optional compiled kernels (``mlchecks-infra[fast]``, numba) against the numpy path.

One process builds the inputs of ``bench_checks.py`` (labels, 100 slices, (n, C) float32
probabilities) and times, interleaved and on the same arrays, the read floor and
ReproducibilityCheck with ``MLCHECKS_COMPILED=0`` (numpy) and ``=1`` (the kernels), for
two runs that differ in every value (``jitter``) and for identical runs (``same``). It
also times what bounds the compiled path: ``np.log`` of the 2 n label probabilities
(numpy's vectorized logarithm, which the kernels leave to numpy) and the check's work
outside the pass. Then, in fresh interpreters, the first call's cost: ``import numba``
and loading (or compiling) the kernels, with numba's cache cold and warm.

    python benchmarks/bench_compiled.py --rows 1e7 --classes 2 10 --repeats 5
    python benchmarks/bench_compiled.py --first-call   # compile and load times only
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _checks_jobs import make_arrays, mlchecks_reproducibility
from _harness import read_once

_FIRST_CALL = """
import os, sys, time
t0 = time.perf_counter()
import numpy as np
from mlchecks.checks import ReproducibilityCheck, TrainingRun
rng = np.random.default_rng(0)
p = rng.random((20_000, 2)).astype(np.float32)
p /= p.sum(axis=1, keepdims=True)
y = rng.integers(0, 2, 20_000)
runs = [TrainingRun(predictions=p, labels=y, slices={"s": y}, name=n) for n in "ab"]
t1 = time.perf_counter()
ReproducibilityCheck(runs).run()
t2 = time.perf_counter()
ReproducibilityCheck(runs).run()
t3 = time.perf_counter()
print(t2 - t1, t3 - t2)
"""


def _timed(f: Callable[[], Any], times: list[float]) -> None:
    start = time.perf_counter()
    f()
    times.append(time.perf_counter() - start)


def checks(n: int, c: int, repeats: int) -> None:
    """The interleaved A/B table of one size."""
    data = make_arrays(n, c)
    y, s, a = data["y"], data["s"], data["a"]
    log_input = np.random.default_rng(0).random(2 * n) + 1e-3
    log_out = np.empty(1 << 16)

    def logs() -> None:  # as the kernels' callers do: in place, block by block
        for start in range(0, 2 * n, 1 << 16):
            part = log_input[start : start + (1 << 16)]
            np.log(part, out=log_out[: len(part)])

    jobs: dict[str, tuple[str, Callable[[], Any]]] = {
        "read floor (jitter)": ("0", lambda: read_once(y, s, a, data["jitter"])),
        "repro jitter, numpy": ("0", lambda: mlchecks_reproducibility(y, s, a, data["jitter"])),
        "repro jitter, compiled": (
            "1",
            lambda: mlchecks_reproducibility(y, s, a, data["jitter"]),
        ),
        "read floor (same)": ("0", lambda: read_once(y, s, a, data["same"])),
        "repro same, numpy": ("0", lambda: mlchecks_reproducibility(y, s, a, data["same"])),
        "repro same, compiled": ("1", lambda: mlchecks_reproducibility(y, s, a, data["same"])),
        "np.log of 2n float64": ("0", logs),
    }
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for flag, f in jobs.values():  # warm-up (and the kernels' first call)
        os.environ["MLCHECKS_COMPILED"] = flag
        f()
    for _ in range(repeats):
        for name, (flag, f) in jobs.items():
            os.environ["MLCHECKS_COMPILED"] = flag
            _timed(f, times[name])
    load = os.getloadavg()
    print(f"\n### {n:,} rows, {c} classes (load average {load[0]:.2f} {load[1]:.2f})\n")
    print("| job | median | fastest | x floor |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in times.items():
        floor_name = "read floor (same)" if "same" in name else "read floor (jitter)"
        floor = statistics.median(times[floor_name])
        median = statistics.median(values)
        print(
            f"| {name} | {median * 1e3:.1f} ms | {min(values) * 1e3:.1f} ms "
            f"| {median / floor:.1f}x |"
        )


def first_call() -> None:
    """Fresh interpreters: the first and second check at 2e4 rows, numpy and compiled,
    numba's cache cold (a new cache directory) and warm (the same one again)."""
    print("\n### First call in a fresh process (2e4 rows, 2 classes)\n")
    print("| path | first check | second check |")
    print("| --- | ---: | ---: |")
    with tempfile.TemporaryDirectory() as cache:
        cases = [("numpy", "0"), ("compiled, cold cache", "1"), ("compiled, warm cache", "1")]
        for label, flag in cases:
            # NUMBA_CACHE_DIR replaces the kernels' __pycache__: empty at first, then warm.
            env = {**os.environ, "MLCHECKS_COMPILED": flag, "NUMBA_CACHE_DIR": cache}
            out = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True
            )
            if out.returncode:
                print(f"| {label} | failed: {out.stderr.strip()[-200:]} | |")
                continue
            first, second = (float(x) for x in out.stdout.split())
            print(f"| {label} | {first * 1e3:.0f} ms | {second * 1e3:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, nargs="+", default=[1e7])
    parser.add_argument("--classes", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--first-call", action="store_true", help="only the first-call table")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}")
    try:
        import numba

        print(f"numba {numba.__version__}")
    except ImportError:
        print("numba is not installed: the compiled rows time the numpy path")
    first_call()
    if args.first_call:
        return
    for rows in args.rows:
        for c in args.classes:
            checks(int(rows), c, args.repeats)


if __name__ == "__main__":
    main()
