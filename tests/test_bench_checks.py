"""``benchmarks/bench_checks.py`` runs end to end at a tiny size and reports what it promises.

No timing is asserted (timings live in docs/benchmarks.md): only that every job ran, that
the competitors of a group computed the same answer, and the shape of the table and JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _benchmarks import ROOT

SCRIPT = ROOT / "benchmarks" / "bench_checks.py"
COMMAND = [
    "--rows",
    "2000",
    "--classes",
    "2",
    "10",
    "--repeats",
    "1",
    "--python-rows-cap",
    "1000",
    "--pipeline-rows-cap",
    "200",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The script's stdout and JSON at 2,000 rows, 2 and 10 classes, one repeat."""
    out = tmp_path_factory.mktemp("bench") / "checks.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *COMMAND, "--json", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    document: dict[str, Any] = json.loads(Path(out).read_text())
    return done.stdout, document


def _groups(jobs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        groups.setdefault(job["group"], []).append(job)
    return groups


@pytest.mark.slow
class TestBenchChecks:
    def test_one_size_per_rows_and_classes(self, run: tuple[str, dict[str, Any]]) -> None:
        """Each (rows, classes) pair is one size, run without an error."""
        _, document = run
        assert [(2000, 2), (2000, 10)] == [
            (s["params"]["rows"], s["params"]["classes"]) for s in document["sizes"]
        ]
        assert all("error" not in s for s in document["sizes"])

    def test_groups(self, run: tuple[str, dict[str, Any]]) -> None:
        """Every check's group is there; the per-record checks at C = 2 only."""
        _, document = run
        two, ten = (set(_groups(s["jobs"])) for s in document["sizes"])
        array = {"repro jitter", "repro identical", "quality default"}
        assert array | {"quality 4 metrics", "pipeline", "canary", "loss"} == two
        assert array | {"quality 3 metrics"} == ten

    def test_one_floor_and_one_reference_per_group(self, run: tuple[str, dict[str, Any]]) -> None:
        """A group has one floor (x floor 1) and one mlchecks check; peers compare to it."""
        _, document = run
        for size in document["sizes"]:
            for name, jobs in _groups(size["jobs"]).items():
                floors = [j for j in jobs if j["role"] == "floor"]
                refs = [j for j in jobs if j["reference"]]
                assert (1, 1) == (len(floors), len(refs)), name
                assert 1.0 == floors[0]["x_floor"]
                assert "mlchecks" == refs[0]["role"]
                for peer in jobs:
                    if peer["role"] not in ("floor", "mlchecks"):
                        assert refs[0]["name"] == peer["versus"]

    def test_measurements(self, run: tuple[str, dict[str, Any]]) -> None:
        """Every job has wall and CPU times, ratios, traced memory per row and RSS."""
        _, document = run
        for size in document["sizes"]:
            for job in size["jobs"]:
                assert 1 == len(job["times"]) == len(job["cpu_times"]), job["name"]
                assert job["median"] > 0
                assert job["cpu_median"] >= 0
                assert job["x_floor"] > 0
                assert job["x_floor_cpu"] >= 0
                assert job["traced_peak_bytes"] >= 0
                assert job["bytes_per_row"] >= 0
                assert "extra_rss_mib" in job
            assert size["process_peak_rss_mib"] > 0

    def test_peers_agree_with_mlchecks(self, run: tuple[str, dict[str, Any]]) -> None:
        """The peers compute the churn and accuracies that mlchecks reports."""
        _, document = run
        for size in document["sizes"]:
            for name, jobs in _groups(size["jobs"]).items():
                if not name.startswith(("repro", "quality")):
                    continue
                ref = next(j["check"] for j in jobs if j["reference"])
                for peer in (j for j in jobs if j["role"] not in ("floor", "mlchecks")):
                    churn, *accuracy = peer["check"]
                    if name.startswith("repro"):
                        assert ["PASS", churn] == ref, peer["name"]
                    else:
                        assert ref[1:] == pytest.approx(accuracy), peer["name"]

    def test_machine_and_tables_printed(self, run: tuple[str, dict[str, Any]]) -> None:
        """stdout has the machine line, one Markdown table per size and the notes."""
        stdout, document = run
        assert stdout.startswith("machine: ")
        assert document["machine"]["commit"] in stdout
        assert 2 == stdout.count("| job | what | rows | wall | cpu | x floor | x floor (cpu) |")
        assert "note: not timed per row: CheckpointRestoreCheck" in stdout
        assert "CanaryJudge 1,000 records" in stdout
