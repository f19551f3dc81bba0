"""``mlchecks canary watch``: exit codes, reports and progress on generated request logs."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks import Status, SuiteResult
from mlchecks.cli import main

T0 = 1_714_564_800.0


def request_lines(
    seed: int, n: int, *, candidate_error: float = 0.02, share: float = 0.2
) -> list[str]:
    """``n`` request-log lines: v1 and v2 (a ``share`` of the traffic) alike but for errors."""
    rng = np.random.default_rng(seed)
    is_candidate = rng.random(n) < share
    error_rate = np.where(is_candidate, candidate_error, 0.02)
    errors = rng.random(n) < error_rate
    latency_ms = rng.lognormal(3.0, 0.3, n)
    classes = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    return [
        json.dumps(
            {
                "version": "v2" if is_candidate[i] else "v1",
                "latency_ms": round(float(latency_ms[i]), 3),
                "error": "HTTP 500" if errors[i] else None,
                "prediction": int(classes[i]),
                "request_id": f"r{i}",
                "time": T0 + i * 0.01,
            }
        )
        + "\n"
        for i in range(n)
    ]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines))
    return path


def watch(log: Path | str, *options: str) -> list[str]:
    return ["canary", "watch", str(log), "--baseline", "v1", "--candidate", "v2", *options]


@pytest.fixture
def healthy(tmp_path: Path) -> Path:
    return write(tmp_path / "healthy.jsonl", request_lines(0, 4000))


class TestExitCodes:
    def test_healthy_candidate_passes(
        self, healthy: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An A/A log passes: exit 0, the report on stdout, what was read on stderr."""
        assert 0 == main(watch(healthy, "--n-candidate-requests", "300"))
        out, err = capsys.readouterr()
        assert out.startswith("PASS canary-judge (rubric 6)")
        assert "ML Test Score" not in out  # one check: no score
        assert "read " in err
        assert "0 bad lines" in err

    def test_candidate_erring_three_times_as_often_fails(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A candidate with 3x the baseline's error rate fails: exit 1, errors named."""
        log = write(tmp_path / "bad.jsonl", request_lines(1, 8000, candidate_error=0.06))
        assert 1 == main(watch(log))
        out, _ = capsys.readouterr()
        assert "FAIL trickle.errors" in out

    def test_too_short_log_is_no_verdict(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A log that ends before enough candidate requests: exit 3, inconclusive."""
        log = write(tmp_path / "short.jsonl", request_lines(2, 200))
        assert 3 == main(watch(log))
        assert "inconclusive after 200 requests" in capsys.readouterr().out

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (watch("missing.jsonl"), "LOG 'missing.jsonl' not found"),
            (watch("."), "is not a file"),
            (["canary", "watch", "log.jsonl", "--candidate", "v2"], "--baseline"),
            (watch("HEALTHY", "--n-candidate-requests", "0"), "must be > 0"),
            (watch("HEALTHY", "--alpha", "0.9"), "'alpha'"),
            (watch("HEALTHY", "--format", "csv"), "invalid choice"),
            (["canary", "watch", "HEALTHY", "--baseline", "v", "--candidate", "v"], "different"),
            (["canary"], "required"),
        ],
    )
    def test_usage_errors(
        self,
        healthy: Path,
        argv: list[str],
        message: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Bad arguments and missing files: exit 2 and one line on stderr naming the problem."""
        argv = [str(healthy) if a == "HEALTHY" else a for a in argv]
        assert 2 == main(argv)
        err = capsys.readouterr().err
        assert err.startswith("mlchecks: error:")
        assert message in err


class TestReports:
    def test_report_files(
        self, healthy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json, --junit and --html write the suite reports of `mlchecks run`."""
        paths = {option: tmp_path / "out" / f"canary.{option}" for option in ("json", "junit")}
        paths["html"] = tmp_path / "canary.html"
        options = [item for option, path in paths.items() for item in (f"--{option}", str(path))]
        assert 0 == main(watch(healthy, "--n-candidate-requests", "300", *options))
        suite = SuiteResult.from_json(paths["json"].read_text())
        assert (Status.PASS, "canary-judge") == (suite.status, suite.results[0].check)
        assert "record.n_records" in suite.results[0].metrics
        assert "<testcase" in paths["junit"].read_text()
        assert "<html" in paths["html"].read_text().lower()
        assert f"wrote {paths['json']}" in capsys.readouterr().err

    def test_json_to_stdout_and_quiet(
        self, healthy: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json - prints the JSON report alone; -q prints one line and no reading summary."""
        assert 0 == main(watch(healthy, "--n-candidate-requests", "300", "--json", "-", "-q"))
        out, err = capsys.readouterr()
        assert "pass" == json.loads(out)["status"]
        assert "" == err

    def test_bad_lines_are_reported(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad lines are counted on stderr and in the report, with their line numbers."""
        lines = request_lines(0, 4000)
        lines[2] = "{oops\n"
        lines[5] = json.dumps({"latency_ms": 3}) + "\n"
        log = write(tmp_path / "log.jsonl", lines)
        assert 0 == main(watch(log, "--n-candidate-requests", "300", "-q"))
        main(watch(log, "--n-candidate-requests", "300"))
        out, err = capsys.readouterr()
        assert "2 bad lines (line 3: not JSON" in err
        assert "line 6: no 'version'" in err
        assert "2 lines could not be read" in out


class TestCloudEvents:
    def test_kserve_payload_log(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """KServe's logger events, the revisions told apart by pod name, give a verdict."""
        rng = np.random.default_rng(3)
        events = []
        for i in range(3000):
            revision = "iris-predictor-0000" + ("2" if rng.random() < 0.2 else "1")
            pod = {"source": f"{revision}-deployment-5d8f-x{i % 7}", "endpoint": ""}
            base = {"specversion": "1.0", "id": f"r{i}", "inferenceservicename": "iris", **pod}
            sent = T0 + i * 0.05
            events.append({**base, "type": "org.kubeflow.serving.inference.request", "time": sent})
            answer = {"predictions": [int(rng.integers(0, 3))]}
            done = sent + float(rng.lognormal(-3.5, 0.3))
            if rng.random() > 0.01:  # KServe logs no response for a failed request
                events.append(
                    {**base, "type": "org.kubeflow.serving.inference.response", "time": done}
                    | {"data": answer}
                )
        log = write(tmp_path / "events.jsonl", [json.dumps(e) + "\n" for e in events])
        argv = ["canary", "watch", str(log), "--n-candidate-requests", "300"]
        argv += ["--baseline", "iris-predictor-00001", "--candidate", "iris-predictor-00002"]
        assert 0 == main(argv)
        out, err = capsys.readouterr()
        assert "PASS" in out
        assert "(cloudevents)" in err


class SlowWriter(threading.Thread):
    """Appends lines to a log in small batches, as a server writes its request log."""

    def __init__(self, path: Path, lines: list[str], batch: int, pause_s: float) -> None:
        super().__init__(daemon=True)
        self.path, self.lines, self.batch, self.pause_s = path, lines, batch, pause_s
        self.done = threading.Event()
        self.written = 0

    def run(self) -> None:
        with self.path.open("a") as file:
            for start in range(0, len(self.lines), self.batch):
                if self.done.is_set():
                    return
                file.write("".join(self.lines[start : start + self.batch]))
                file.flush()
                self.written = start + self.batch
                time.sleep(self.pause_s)
        self.done.set()


@pytest.fixture
def writers() -> Iterator[list[SlowWriter]]:
    started: list[SlowWriter] = []
    yield started
    for writer in started:
        writer.done.set()
        writer.join(timeout=10)
        assert not writer.is_alive()


class TestFollow:
    def test_verdict_while_the_log_is_written(
        self, tmp_path: Path, writers: list[SlowWriter], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--follow judges a growing log and stops at the verdict, before the writer is done."""
        log = tmp_path / "live.jsonl"
        log.write_text("")
        writer = SlowWriter(log, request_lines(4, 20_000, candidate_error=0.08), 100, 0.02)
        writers.append(writer)
        writer.start()
        code = main(watch(log, "--follow", "--idle-timeout", "5"))
        assert (1, False) == (code, writer.done.is_set())
        assert writer.written < 20_000
        assert "FAIL trickle.errors" in capsys.readouterr().out

    def test_idle_log_ends_without_a_verdict(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A followed log that stops growing ends after --idle-timeout: exit 3."""
        log = write(tmp_path / "idle.jsonl", request_lines(5, 300))
        started = time.monotonic()
        assert 3 == main(watch(log, "--follow", "--idle-timeout", "0.3"))
        assert time.monotonic() - started < 10
        assert "inconclusive" in capsys.readouterr().out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal(healthy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, stderr shows a line updated in place: records, e-values, bad lines."""
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert 0 == main(watch(healthy, "--n-candidate-requests", "300"))
    text = terminal.getvalue()
    assert "\r\x1b[K" in text
    assert "inconclusive | 1 records, 0 bad lines | v2 0/300 | e-values errors 1 " in text
    assert "pass | 1,464 records, 0 bad lines | v2 300/300 | e-val" in text


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[Any]) -> None:
    """--help lists the exit codes, 3 included."""
    assert 0 == main(["canary", "watch", "--help"])
    assert "3 no verdict yet" in capsys.readouterr().out
