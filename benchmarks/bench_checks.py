"""Whole checks end to end against their read floors and their peers, all in one process.

For every size (``--rows``, a list, e.g. ``1e6 1e7 3e7``) and number of classes
(``--classes``, default 2 and 10) a fresh interpreter runs every job of that size (the
script re-runs itself with ``--worker``), so the jobs share one process, one copy of the
inputs and the machine's state at that moment, as A/B comparisons should. The jobs and
their data are in ``_checks_jobs.py`` (ReproducibilityCheck, QualityCheck and their numpy,
pandas and scikit-learn peers on 100 slices) and ``_checks_records.py`` (PipelineCheck,
CanaryJudge and LossDecreasesCheck, which work per record in Python and are capped).

In the worker, each job is set up (untimed; inputs shared), called once (the warm-up:
page faults, lazy imports; its time is "first"), called once more under `tracemalloc`
(untimed: the traced peak of Python and numpy allocations above what was allocated
before the call, reported in MiB and in bytes per row), then all jobs are timed
``--repeats`` times, interleaved (A, B, C, A, B, C, ...), and the median is reported:

- **wall** and **cpu** (`time.process_time`, all threads of the process);
- **x floor**: wall over the wall of the group's floor (`read_once` of the check's inputs;
  for the per-record checks a Python loop over the records); **x floor (cpu)**: the same
  ratio of CPU times, steadier when other processes load the machine;
- **x mlchecks**: for a peer, its wall over the group's mlchecks check (above 1: slower);
- **extra MiB**, **B/row**: the traced peak (above); **+RSS MiB**: the process's peak
  resident memory during a timed call above its resident memory before it (the peak is
  reset before every call by writing 5 to ``/proc/self/clear_refs``; the ``ru_maxrss``
  of `resource.getrusage` follows it), median over the repeats.

The script prints the machine (CPU model, cores, memory, library versions, git commit,
load average), then one table per size in Markdown; ``--json FILE`` writes everything and
``--report FILE`` prints the tables of such a file again.

Run: ``python benchmarks/bench_checks.py --rows 1e6 1e7 3e7 --classes 2 10 --repeats 3``
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _harness import MARKER, Job, _fmt_ratio, _fmt_time, _load, _plain, describe_machine
from _harness import summarize as harness_summarize

ROOT = Path(__file__).resolve().parents[1]


def _rows(text: str) -> int:
    """``1e6``, ``1000000`` or ``1_000_000`` as an int."""
    value = float(text.replace("_", ""))
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"rows must be a positive integer (got {text!r})")
    return int(value)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=_rows, nargs="+", default=[1_000_000], help="sizes")
    parser.add_argument("--classes", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per job")
    parser.add_argument("--only", nargs="*", help="groups to run (e.g. 'repro jitter' canary)")
    parser.add_argument(
        "--python-rows-cap",
        type=_rows,
        default=1_000_000,
        help="records of CanaryJudge and steps of LossDecreasesCheck at most",
    )
    parser.add_argument(
        "--pipeline-rows-cap", type=_rows, default=100_000, help="rows of PipelineCheck at most"
    )
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc call")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds per size")
    parser.add_argument("--list", action="store_true", help="list the jobs and exit")
    parser.add_argument(
        "--report", type=Path, help="print the tables of a JSON file written by --json, and exit"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _params(args: argparse.Namespace, rows: int, classes: int) -> dict[str, Any]:
    return {
        "rows": rows,
        "classes": classes,
        "python_rows_cap": args.python_rows_cap,
        "pipeline_rows_cap": args.pipeline_rows_cap,
    }


def _selected(jobs: list[Job], only: list[str] | None) -> list[Job]:
    """The jobs of the groups named by ``--only`` (a group name or its start: ``quality``)."""
    return [j for j in jobs if not only or any(j.extra["group"].startswith(o) for o in only)]


# --------------------------------------------------------------------------- memory


def _rss_kib() -> float:
    """Resident memory now, KiB (/proc/self/status VmRSS; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return math.nan


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux >= 4.0); False when it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _maxrss_kib() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# --------------------------------------------------------------------------- worker


def run_size(params: dict[str, Any], jobs: list[Job], repeats: int, trace: bool) -> dict[str, Any]:
    """Set up, warm up, trace and time ``jobs`` interleaved in this process."""
    states: dict[Any, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    for job in jobs:
        start = time.perf_counter()
        if job.setup not in states:
            states[job.setup] = job.setup(params)
        rows[job.name] = {"setup": time.perf_counter() - start}
    for job in jobs:
        print(f"  warm-up {job.name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        rows[job.name]["check"] = _plain(job.run(states[job.setup]))
        rows[job.name]["first"] = time.perf_counter() - start
    if trace:
        for job in jobs:
            print(f"  traced {job.name} ...", file=sys.stderr, flush=True)
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            job.run(states[job.setup])
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            rows[job.name]["traced_peak_bytes"] = peak
    resettable = _reset_peak()
    walls: dict[str, list[float]] = {job.name: [] for job in jobs}
    cpus: dict[str, list[float]] = {job.name: [] for job in jobs}
    rss: dict[str, list[float]] = {job.name: [] for job in jobs}
    process_peak = _maxrss_kib()
    for repeat in range(repeats):
        print(f"  timed round {repeat + 1} of {repeats} ...", file=sys.stderr, flush=True)
        for job in jobs:
            state = states[job.setup]
            gc.collect()
            before = _rss_kib()
            if resettable:
                _reset_peak()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            job.run(state)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            rss_peak = _maxrss_kib()
            process_peak = max(process_peak, rss_peak)
            walls[job.name].append(wall)
            cpus[job.name].append(cpu)
            rss[job.name].append((rss_peak - before) / 1024 if resettable else math.nan)
    out = []
    for job in jobs:
        row = {
            "name": job.name,
            "group": job.extra["group"],
            "rows": job.extra["rows"],
            "role": job.role,
            "reference": job.reference,
            "versus": job.versus,
            "description": job.description,
            "times": walls[job.name],
            "cpu_times": cpus[job.name],
            "median": statistics.median(walls[job.name]),
            "min": min(walls[job.name]),
            "cpu_median": statistics.median(cpus[job.name]),
            "extra_rss_mib": statistics.median(rss[job.name]),
            **rows[job.name],
        }
        traced = row.get("traced_peak_bytes")
        row["traced_mib"] = math.nan if traced is None else traced / 2**20
        row["bytes_per_row"] = math.nan if traced is None else traced / max(row["rows"], 1)
        out.append(row)
    return {
        "params": params,
        "jobs": out,
        "process_peak_rss_mib": process_peak / 1024,
        "rss_reset": resettable,
    }


def summarize(rows: list[dict[str, Any]]) -> None:
    """``x_floor`` and ``x_ref`` per group (the harness's ratios, within each group)."""
    for group in dict.fromkeys(r["group"] for r in rows):
        members = [r for r in rows if r["group"] == group and "median" in r]
        harness_summarize(members)
        floor = next((r["cpu_median"] for r in members if r["role"] == "floor"), math.nan)
        for r in members:
            r["x_floor_cpu"] = r["cpu_median"] / floor if floor > 0 else math.nan


# --------------------------------------------------------------------------- parent


def _mib(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{round(value) or 0:,}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """One size's rows as a Markdown table."""
    lines = [
        "| job | what | rows | wall | cpu | x floor | x floor (cpu) | x mlchecks | extra MiB "
        "| B/row | +RSS MiB | check |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error']} | | | | | | | | | | |")
            continue
        x_ml = "" if r["reference"] or r["role"] == "floor" else _fmt_ratio(r["x_ref"])
        bpr = r["bytes_per_row"]
        check = "" if r["role"] == "floor" else r["check"]
        lines.append(
            f"| {r['name']} | {r['description']} | {r['rows']:,} | {_fmt_time(r['median'])} | "
            f"{_fmt_time(r['cpu_median'])} | {_fmt_ratio(r['x_floor'])} | "
            f"{_fmt_ratio(r['x_floor_cpu'])} | {x_ml} | "
            f"{_mib(r['traced_mib'])} | {'-' if not math.isfinite(bpr) else f'{bpr:.1f}'} | "
            f"{_mib(r['extra_rss_mib'])} | {check} |"
        )
    return "\n".join(lines)


def _mlchecks_source() -> str:
    """The git commit of the mlchecks that the jobs import, or where it is imported from."""
    spec = importlib.util.find_spec("mlchecks")
    origin = None if spec is None or spec.origin is None else Path(spec.origin).parents[1]
    if origin is not None and origin.resolve() != ROOT:
        return f"imported from {origin}"
    return _git_commit()


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "-"
    changes = " with local changes" if dirty.stdout.strip() else ""
    return f"commit {done.stdout.strip()}{changes}"


def machine_line(machine: dict[str, Any], load: Sequence[float]) -> str:
    v = machine["versions"]
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['os']}, Python {machine['python']}, numpy {v['numpy']}, scipy {v['scipy']}, "
        f"pandas {v['pandas']}, scikit-learn {v['scikit-learn']}, mlchecks {v['mlchecks']} "
        f"({machine['commit']}); load average {', '.join(f'{x:.2f}' for x in load)}"
    )


def print_size(result: dict[str, Any], header: bool = True) -> None:
    """One size's table, peak RSS, load average and notes."""
    params = result["params"]
    if header:
        print(f"\n== rows {params['rows']:,}, classes {params['classes']} ==")
    if "error" in result:
        print(f"ERROR: {result['error']}")
        return
    if "x_floor_cpu" not in result["jobs"][0]:
        summarize(result["jobs"])
    print(markdown(result["jobs"]))
    print(
        f"\nprocess peak RSS {result['process_peak_rss_mib']:,.0f} MiB; load average before "
        f"{', '.join(f'{x:.2f}' for x in result['load_before'])}, after "
        f"{', '.join(f'{x:.2f}' for x in result['load_after'])}"
    )
    for note in result.get("notes", []):
        print(f"note: {note}")


def _run_worker(args: argparse.Namespace, rows: int, classes: int) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--rows",
        str(rows),
        "--classes",
        str(classes),
        "--repeats",
        str(args.repeats),
        "--python-rows-cap",
        str(args.python_rows_cap),
        "--pipeline-rows-cap",
        str(args.pipeline_rows_cap),
    ]
    if args.only:
        command += ["--only", *args.only]
    if args.no_trace:
        command.append("--no-trace")
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=args.timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:g} s"}
    payloads = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not payloads:
        return {"error": f"the worker exited with code {done.returncode} and no result"}
    result: dict[str, Any] = json.loads(payloads[-1][len(MARKER) :])
    return result


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run every size in its own process and print the tables; return the per-size results."""
    args = parse(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _checks_jobs import Inputs, all_jobs, notes

    if args.worker:
        params = _params(args, args.rows[0], args.classes[0])
        jobs = _selected(all_jobs(params, Inputs(params)), args.only)
        result = run_size(params, jobs, args.repeats, trace=not args.no_trace)
        groups = {job.extra["group"] for job in jobs}
        result["notes"] = [
            note
            for note in notes(params)
            if groups & {"pipeline", "canary", "loss"} or not note.startswith("per-record")
        ]
        print(MARKER + json.dumps(result, default=_plain), flush=True)
        return [result]
    if args.list:
        for classes in args.classes:
            params = _params(args, args.rows[0], classes)
            print(f"\nrows {args.rows[0]:,}, classes {classes}:")
            for job in _selected(all_jobs(params, Inputs(params)), args.only):
                print(f"  {job.name:<40} {job.role:<8} {job.description}")
        return []
    if args.report is not None:
        document = json.loads(args.report.read_text())
        print(f"machine: {document['machine_line']}")
        for size in document["sizes"]:
            print_size(size)
        return list(document["sizes"])
    machine = describe_machine()
    machine["commit"] = _mlchecks_source()
    load_before = _load()
    print(f"machine: {machine_line(machine, load_before)}", flush=True)
    results = []
    started = time.time()
    for rows in args.rows:
        for classes in args.classes:
            print(f"\n== rows {rows:,}, classes {classes} ==", flush=True)
            print(f"  running {rows:,} rows, {classes} classes ...", file=sys.stderr, flush=True)
            load = _load()
            result = _run_worker(args, rows, classes)
            result.setdefault("params", _params(args, rows, classes))
            result["load_before"], result["load_after"] = load, _load()
            if "jobs" in result:
                summarize(result["jobs"])
            print_size(result, header=False)
            results.append(result)
    if args.json is not None:
        document = {
            "title": "Whole checks end to end (bench_checks.py)",
            "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
            "repeats": args.repeats,
            "machine": machine,
            "machine_line": machine_line(machine, load_before),
            "load_before": load_before,
            "load_after": _load(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "wall_seconds": time.time() - started,
            "sizes": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2, default=_plain) + "\n")
        print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
