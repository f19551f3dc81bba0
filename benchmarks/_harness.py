"""Shared timing for the benchmarks in this folder.

A benchmark script defines its jobs (`Job`: a setup that builds the data, untimed, and a
call that is timed) and hands them to `main`. Each job then runs in a fresh interpreter
(the script re-runs itself with ``--worker JOB``), so no job inherits another's caches,
allocator state or imports, and one job's peak memory is its own. Inside that process the
job is set up, called once untimed (the warm-up: first-touch page faults, lazy imports
such as scipy inside a kernel), then timed ``--repeats`` times; the median is reported.
With ``--rounds R`` the whole list of jobs runs R times, one job after the other, and each
job's timed runs are pooled: a burst of load from other processes on a shared machine then
hits every job a little instead of one job a lot.

The parent prints a table with the median, the fastest run, the cold first call, the
peak resident memory of the process and two ratios: to the job marked ``role="floor"``
(the memory-bandwidth floor, see `read_once`) and to the job marked ``reference=True``
(the mlchecks call the others are compared with). ``--json FILE`` writes everything,
with the machine description and the load average before and after.

Every job returns a small *check value* (a float or a tuple of floats) from its first call;
the table prints it, so one can see that the competitors computed the same answer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Job", "describe_machine", "main", "markdown_table", "read_once", "versions"]

#: Prefixes the worker's result line (jobs may print to stdout themselves).
MARKER = "@@benchmark-result@@ "

ROLES = ("floor", "numpy", "mlchecks", "pandas", "scipy", "sklearn", "peer", "other")


@dataclass(frozen=True)
class Job:
    """One timed job.

    Attributes:
        name: short unique name (the ``--only`` filter and the table row).
        role: who computes it: ``floor``, ``numpy``, ``mlchecks``, ``pandas``, ``scipy``,
            ``sklearn``, ``peer`` or ``other``.
        setup: ``setup(params) -> state``, untimed; ``params`` is the dict of the script's
            command-line options.
        run: ``run(state) -> check value``, the timed call.
        description: one line for the table and the docs.
        reference: the ratio column "x ref" divides by this job's median (one per script).
        repeats: an upper bound on the repeats for a slow job (None: ``--repeats``).
        python: the interpreter to run this job with (None: the one running the script).
        versus: the name of the job that "x ref" divides by for this row, when it is not
            the reference job (a peer against its mlchecks equivalent).
        extra: more fields for the JSON output.
    """

    name: str
    role: str
    setup: Callable[[dict[str, Any]], Any]
    run: Callable[[Any], Any]
    description: str = ""
    reference: bool = False
    repeats: int | None = None
    python: str | None = None
    versus: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"'role' must be one of {ROLES} (got {self.role!r})")


def read_once(*arrays: np.ndarray) -> int:
    """Read every byte of every array once: the memory-bandwidth floor of a one-pass kernel.

    Each array is viewed as unsigned 64-bit words (or bytes when its size is not a multiple
    of 8) and OR-reduced: a vectorized reduction with no arithmetic corner cases (no
    denormals, no NaN), no output array and no conversion, so its time is the time to
    stream the bytes from memory. Any kernel that looks at all of its inputs costs at least
    this much.
    """
    acc = 0
    for array in arrays:
        flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        words = flat.view(np.uint64) if flat.size % 8 == 0 else flat
        acc |= int(np.bitwise_or.reduce(words))
    return acc


def versions(*names: str) -> dict[str, str]:
    """Installed versions of the given distributions ("-" when missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and the core library versions of this interpreter."""
    cpu = platform.processor() or platform.machine()
    memory_gib = math.nan
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal"):
                    memory_gib = int(line.split()[1]) / 2**20
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions("numpy", "scipy", "pandas", "scikit-learn", "mlchecks"),
    }


def _load() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)


def _plain(value: Any) -> Any:
    """A JSON-friendly, short form of a job's check value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return repr(value)[:60]


# --------------------------------------------------------------------------- worker side


def _worker(job: Job, params: dict[str, Any], repeats: int) -> dict[str, Any]:
    start = time.perf_counter()
    state = job.setup(params)
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    check = job.run(state)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        job.run(state)
        times.append(time.perf_counter() - start)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "times": times,
        "first": first,
        "setup": setup_s,
        "peak_rss_mib": peak_kib / 1024,
        "check": _plain(check),
    }


# --------------------------------------------------------------------------- parent side


def _run_job(
    script: str, job: Job, params: dict[str, Any], repeats: int, timeout: float
) -> dict[str, Any]:
    n = repeats if job.repeats is None else min(repeats, job.repeats)
    command = [
        job.python or sys.executable,
        script,
        "--worker",
        job.name,
        "--worker-params",
        json.dumps(params),
        "--repeats",
        str(n),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"exit code {done.returncode}"}
    payloads = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if not payloads:
        return {"error": "the worker printed no result"}
    result: dict[str, Any] = json.loads(payloads[-1][len(MARKER) :])
    return result


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One job's results over several rounds: all timed runs pooled, the median first call."""
    errors = [r for r in runs if "error" in r]
    if errors:
        return errors[0]
    return {
        "times": [t for r in runs for t in r["times"]],
        "first": statistics.median(r["first"] for r in runs),
        "setup": statistics.median(r["setup"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "check": runs[0]["check"],
        "rounds": len(runs),
    }


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _fmt_ratio(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "-"
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


def summarize(rows: list[dict[str, Any]]) -> None:
    """Add ``x_floor`` and ``x_ref`` (the ratios of the medians) to each row (in place)."""
    medians = {r["name"]: r["median"] for r in rows if "median" in r}
    floor = next((medians.get(r["name"]) for r in rows if r["role"] == "floor"), None)
    ref = next((medians.get(r["name"]) for r in rows if r["reference"]), None)
    for row in rows:
        median = row.get("median", math.nan)
        versus = medians.get(row["versus"]) if row.get("versus") else ref
        row["x_floor"] = median / floor if floor else math.nan
        row["x_ref"] = median / versus if versus else math.nan


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print the result rows as a fixed-width table."""
    print(f"\n{title}")
    header = (
        f"{'job':<32} {'role':<8} {'median':>9} {'min':>9} {'first':>9} "
        f"{'x floor':>8} {'x ref':>8} {'peak MiB':>9}  check"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<32} {row['role']:<8} ERROR: {row['error']}")
            continue
        print(
            f"{row['name']:<32} {row['role']:<8} {_fmt_time(row['median']):>9} "
            f"{_fmt_time(row['min']):>9} {_fmt_time(row['first']):>9} "
            f"{_fmt_ratio(row['x_floor']):>8} {_fmt_ratio(row['x_ref']):>8} "
            f"{row['peak_rss_mib']:>9.0f}  {row['check']}"
        )


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The result rows as a Markdown table (for docs/benchmarks.md)."""
    lines = [
        "| job | what | median | min | x floor | x ref | peak MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "error" in row:
            lines.append(
                f"| {row['name']} | {row['description']} | error: {row['error']} | | | | |"
            )
            continue
        lines.append(
            f"| {row['name']} | {row['description']} | {_fmt_time(row['median'])} | "
            f"{_fmt_time(row['min'])} | {_fmt_ratio(row['x_floor'])} | "
            f"{_fmt_ratio(row['x_ref'])} | {row['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def main(
    title: str,
    jobs: Sequence[Job] | Callable[[dict[str, Any]], Sequence[Job]],
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    default_repeats: int = 7,
    argv: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Run a benchmark script: every job in its own process, then print the table.

    Args:
        title: the table's title.
        jobs: the jobs, or a function of the parsed options returning them (for jobs whose
            interpreter is an option).
        add_arguments: adds the script's own options (sizes, seeds) to the parser; they
            are passed to every job's ``setup`` as a dict.
        default_repeats: timed repeats per job unless ``--repeats`` says otherwise.
        argv: the command line (default ``sys.argv[1:]``).

    Returns:
        The result rows (empty in a worker process).
    """
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--repeats", type=int, default=default_repeats, help="timed runs per job")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the whole list of jobs this many times, one after the other, and pool the "
        "timed runs (spreads changes in the machine's load evenly over the jobs)",
    )
    parser.add_argument("--only", nargs="*", help="run only these jobs (by name)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per job process")
    parser.add_argument("--list", action="store_true", help="list the jobs and exit")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-params", help=argparse.SUPPRESS)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    reserved = {
        "rounds",
        "repeats",
        "only",
        "json",
        "timeout",
        "list",
        "markdown",
        "worker",
        "worker_params",
    }

    if args.worker is not None:
        params = json.loads(args.worker_params)
        all_jobs = jobs(params) if callable(jobs) else jobs
        job = next(j for j in all_jobs if j.name == args.worker)
        print(MARKER + json.dumps(_worker(job, params, args.repeats)), flush=True)
        return []

    params = {k: v for k, v in vars(args).items() if k not in reserved}
    all_jobs = list(jobs(params) if callable(jobs) else jobs)
    if args.list:
        for job in all_jobs:
            print(f"{job.name:<32} {job.role:<8} {job.description}")
        return []
    selected = [j for j in all_jobs if not args.only or j.name in args.only]
    script = str(Path(sys.argv[0]).resolve())
    load_before = _load()
    started = time.time()
    results: dict[str, list[dict[str, Any]]] = {job.name: [] for job in selected}
    for round_ in range(args.rounds):
        for job in selected:
            note = f" (round {round_ + 1} of {args.rounds})" if args.rounds > 1 else ""
            print(f"  running {job.name}{note} ...", file=sys.stderr, flush=True)
            results[job.name].append(_run_job(script, job, params, args.repeats, args.timeout))
    rows: list[dict[str, Any]] = []
    for job in selected:
        row: dict[str, Any] = {
            "name": job.name,
            "role": job.role,
            "reference": job.reference,
            "versus": job.versus,
            "python": job.python or sys.executable,
            "description": job.description,
            **job.extra,
            **_merge(results[job.name]),
        }
        if "times" in row:
            row["median"] = statistics.median(row["times"])
            row["min"] = min(row["times"])
        rows.append(row)
    summarize(rows)
    load_after = _load()
    print_table(title, rows)
    if args.markdown:
        print()
        print(markdown_table(rows))
    print(f"\nparams: {params}")
    print(
        f"load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after: {', '.join(f'{x:.2f}' for x in load_after)}"
    )
    if args.json is not None:
        document = {
            "title": title,
            "params": params,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "machine": describe_machine(),
            "load_before": load_before,
            "load_after": load_after,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "wall_seconds": time.time() - started,
            "jobs": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2, default=_plain) + "\n")
        print(f"wrote {args.json}")
    return rows
