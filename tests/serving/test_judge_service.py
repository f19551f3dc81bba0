"""`JudgeService` against the contracts of the controllers that call it.

The requests are shaped as the controllers' own documentation shows them: Argo Rollouts'
Web metric provider (GET with headers, or POST with a ``jsonBody``), whose JSON is judged
by its ``successCondition``/``failureCondition`` (evaluated here by a tiny stand-in of
Argo's expression language and of its measurement rules); every type of Flagger webhook
with the payload Flagger posts; Prometheus' text format 0.0.4 read by a strict parser;
KServe's payload-logger CloudEvents in binary mode. Each test stops what it starts.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlchecks.checks import CanaryJudge
from mlchecks.exceptions import InvalidInput
from mlchecks.serving.judge_service import HOOKS, JudgeService
from mlchecks.serving.record_log import read_records
from mlchecks.serving.records import Record

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- streams


def stream(
    n: int, *, candidate_errors: float, baseline_errors: float = 0.05, seed: int = 0
) -> list[Record]:
    """Records of a 20 % split: latencies alike, predictions alike, error rates as given."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        version = "v2" if rng.random() < 0.2 else "v1"
        rate = candidate_errors if version == "v2" else baseline_errors
        out.append(
            Record(
                version=version,
                latency_s=rng.lognormvariate(-4.0, 0.3),
                error=rng.random() < rate,
                outputs=rng.choice([0, 1, 1]),
                request_id=f"r{i}",
            )
        )
    return out


def healthy(n: int = 4000) -> list[Record]:
    return stream(n, candidate_errors=0.05)


def failing(n: int = 4000) -> list[Record]:
    """The candidate fails three times as often as the baseline."""
    return stream(n, candidate_errors=0.15)


def judge(**settings: Any) -> CanaryJudge:
    return CanaryJudge(baseline="v1", candidate="v2", n_candidate_requests=500, **settings)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start services on records; every one is stopped (and checked closed) afterwards."""
    started: list[JudgeService] = []

    def start(records: Any = None, **options: Any) -> JudgeService:
        service = JudgeService(judge(), records=records, **options).start()
        started.append(service)
        assert service.wait_records(30.0)
        return service

    yield start
    for service in started:
        service.stop()
        assert not service.running


def call(
    service: JudgeService,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; the status, the headers (lower-case names) and the body."""
    parts = service.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(parts[0], int(parts[1]), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        data = answer.read()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, data
    finally:
        connection.close()


# --------------------------------------------------------------------------- Argo Rollouts

_PATH = re.compile(r"\{\$((?:\.\w+)*)\}\Z")
_CONDITION = re.compile(r'result((?:\.\w+)*) == (?:"([^"]*)"|(true|false))\Z')


def json_path(document: Any, path: str) -> Any:
    """Argo's ``jsonPath`` for the forms its docs use: ``{$}`` and ``{$.a.b}``."""
    match = _PATH.match(path)
    assert match, path
    for key in filter(None, match.group(1).split(".")):
        document = document[key]
    return document


def condition(result: Any, text: str) -> bool:
    """A tiny stand-in of Argo's expression language: ``result[.field...] == "x"|true``."""
    match = _CONDITION.match(text)
    assert match, text
    for key in filter(None, match.group(1).split(".")):
        result = result[key]
    expected = match.group(2) if match.group(3) is None else match.group(3) == "true"
    return bool(result == expected)


def argo_phase(result: Any, success: str = "", failure: str = "") -> str:
    """A measurement's phase from the two conditions, by Argo's rules."""
    if not success and not failure:
        return "Successful"
    ok = condition(result, success) if success else False
    bad = condition(result, failure) if failure else False
    if success and not failure:
        bad = not ok
    if failure and not success:
        ok = not bad
    if bad:
        return "Failed"
    return "Successful" if ok else "Inconclusive"


def measure(service: JudgeService, *, method: str = "GET", json_body: Any = None) -> str:
    """One Web-provider measurement with the conditions of the docs page."""
    headers = {"Authorization": "Bearer token"}
    body = None
    if json_body is not None:  # Argo sets the Content-Type itself with jsonBody
        body = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    status, _, data = call(service, method, "/verdict", body, headers)
    if not 200 <= status < 300:
        return "Error"  # what Argo makes of a non-2xx answer
    result = json_path(json.loads(data), "{$}")
    return argo_phase(result, 'result.verdict == "pass"', 'result.verdict == "fail"')


class TestArgoWebProvider:
    def test_a_healthy_stream_is_a_successful_measurement(self, serve: Any) -> None:
        """A healthy candidate passes: the measurement is Successful, GET and POST alike."""
        service = serve(healthy())
        assert "Successful" == measure(service)
        assert "Successful" == measure(service, method="POST", json_body={"key1": "value_1"})
        assert "Successful" == measure(service, method="PUT", json_body={"a": {"b": 1}})

    def test_a_failing_candidate_is_a_failed_measurement_not_an_error(self, serve: Any) -> None:
        """A candidate failing 3x as often: HTTP 200 with verdict fail, so Argo sees Failed."""
        service = serve(failing())
        assert "Failed" == measure(service)
        status, _, data = call(service, "GET", "/verdict")
        document = json.loads(data)
        assert (200, "fail", True, False) == (
            status,
            document["verdict"],
            document["fail"],
            document["pass"],
        )
        assert "errors" in document["reasons"]
        assert document["tests"]["errors"]["rejected"] is True

    def test_a_running_canary_is_inconclusive(self, serve: Any) -> None:
        """Too few candidate requests yet: neither condition holds."""
        service = serve(healthy(200))
        assert "Inconclusive" == measure(service)
        document = json.loads(call(service, "GET", "/")[2])
        assert document["verdict"] in ("inconclusive", "insufficient data")
        assert (False, False) == (document["pass"], document["fail"])

    def test_json_path_to_the_verdict_alone(self, serve: Any) -> None:
        """``jsonPath: "{$.verdict}"`` with ``successCondition: result == "pass"`` works too."""
        service = serve(healthy())
        result = json_path(json.loads(call(service, "GET", "/verdict")[2]), "{$.verdict}")
        assert "Successful" == argo_phase(result, 'result == "pass"', 'result == "fail"')

    @pytest.mark.parametrize("path", ["/verdict", "/evidence"])
    def test_strict_json_without_nan(self, serve: Any, path: str) -> None:
        """Before any record every figure is unknown: null, never NaN (Go refuses NaN)."""

        def refuse(constant: str) -> None:
            raise AssertionError(f"{constant} in {path}")

        status, headers, data = call(serve(), "GET", path)
        assert (200, "application/json") == (status, headers["content-type"])
        document = json.loads(data, parse_constant=refuse)
        assert "inconclusive" == document["verdict"]

    def test_the_document_has_the_documented_keys(self, serve: Any) -> None:
        """The keys the docs promise, each test with its figures."""
        document = json.loads(call(serve(healthy()), "GET", "/verdict")[2])
        keys = {"verdict", "decision", "pass", "fail", "reasons", "records", "candidate_requests"}
        assert keys <= set(document)
        assert document["records"] == 4000
        for row in document["tests"].values():
            assert {"evalue", "threshold", "rejected", "estimate", "interval", "limit"} == set(row)
        assert document["tests"]["latency"]["limit"] == 1.2
        low, high = document["tests"]["latency"]["interval"]
        assert low <= document["tests"]["latency"]["estimate"] <= high


# --------------------------------------------------------------------------- Flagger

PAYLOAD = {
    "name": "podinfo",
    "namespace": "test",
    "phase": "Progressing",
    "checksum": "85d557f47b",
    "metadata": {"test": "all", "token": "16688eb5e9f289f1991c"},
}
EVENT_PAYLOAD = {
    "name": "podinfo",
    "namespace": "test",
    "phase": "Progressing",
    "checksum": "85d557f47b",
    "metadata": {
        "eventMessage": "Advance podinfo.test canary weight 10",
        "eventType": "Normal",
        "timestamp": "1620000000000",
    },
}
# hook -> the status expected for a passed, a running and a failed canary.
EXPECTED = {
    "confirm-rollout": (200, 200, 412),
    "pre-rollout": (200, 200, 412),
    "rollout": (200, 200, 412),
    "confirm-traffic-increase": (200, 200, 412),
    "confirm-promotion": (200, 412, 412),
    "post-rollout": (200, 200, 200),
    "rollback": (412, 412, 200),
    "event": (200, 200, 200),
}


def hook(service: JudgeService, name: str, payload: Any = PAYLOAD) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    status, _, data = call(service, "POST", f"/flagger/{name}", body, headers)
    return status, json.loads(data)


@pytest.fixture(scope="module")
def three() -> Iterator[dict[str, JudgeService]]:
    """A passed, a running and a failed canary, served for the whole module."""
    services = {
        "pass": JudgeService(judge(), records=healthy()),
        "running": JudgeService(judge(), records=healthy(200)),
        "fail": JudgeService(judge(), records=failing()),
    }
    try:
        for service in services.values():
            service.start().wait_records(30.0)
        yield services
    finally:
        for service in services.values():
            service.stop()


class TestFlaggerWebhooks:
    def test_every_hook_type_is_known(self) -> None:
        """The service knows all of Flagger's webhook types."""
        assert set(EXPECTED) == set(HOOKS)

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_status_by_hook_and_verdict(self, three: dict[str, JudgeService], name: str) -> None:
        """2xx lets Flagger go on; rollback's 2xx means roll back now."""
        payload = EVENT_PAYLOAD if name == "event" else PAYLOAD
        got = tuple(hook(three[k], name, payload)[0] for k in ("pass", "running", "fail"))
        assert EXPECTED[name] == got

    def test_the_answer_says_why(self, three: dict[str, JudgeService]) -> None:
        """The body is a short JSON reason naming the failed test."""
        status, body = hook(three["fail"], "rollback")
        assert (200, "rollback", "fail") == (status, body["hook"], body["verdict"])
        assert body["reason"].startswith("roll back: candidate 'v2' failed errors")

    @pytest.mark.parametrize(
        ("payload", "words"),
        [
            ({**PAYLOAD, "name": ""}, "'name'"),
            ({k: v for k, v in PAYLOAD.items() if k != "namespace"}, "'namespace'"),
            ({k: v for k, v in PAYLOAD.items() if k != "phase"}, "'phase' is missing"),
            ({**PAYLOAD, "phase": 3}, "'phase' must be a string"),
            ({**PAYLOAD, "metadata": {"retries": 3}}, "'metadata'"),
            ([PAYLOAD], "JSON object"),
            (b"{not json", "not a Flagger webhook payload"),
        ],
    )
    def test_a_bad_payload_is_400_with_a_reason(
        self, three: dict[str, JudgeService], payload: Any, words: str
    ) -> None:
        """A payload of another shape is refused, saying what is wrong."""
        status, body = hook(three["pass"], "rollout", payload)
        assert 400 == status
        assert words in body["error"]

    def test_a_payload_without_metadata_or_checksum_is_fine(
        self, three: dict[str, JudgeService]
    ) -> None:
        """``metadata`` is omitted when empty and ``checksum`` is optional."""
        payload = {"name": "podinfo", "namespace": "test", "phase": "Initializing"}
        assert 200 == hook(three["pass"], "confirm-rollout", payload)[0]

    def test_an_unknown_hook_is_404(self, three: dict[str, JudgeService]) -> None:
        status, body = hook(three["pass"], "pre-promotion")
        assert 404 == status
        assert "confirm-promotion" in body["error"]

    def test_a_hook_naming_another_candidate_is_409(self, three: dict[str, JudgeService]) -> None:
        """``metadata.candidate`` must be the judge's candidate."""
        payload = {**PAYLOAD, "metadata": {"candidate": "v3"}}
        status, body = hook(three["fail"], "rollback", payload)
        assert (409, "this judge's candidate is 'v2', not 'v3'") == (status, body["error"])
        assert (
            200 == hook(three["fail"], "rollback", {**PAYLOAD, "metadata": {"candidate": "v2"}})[0]
        )


# --------------------------------------------------------------------------- Prometheus

_METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"({_METRIC})(?:\{{(.*)\}})? (\S+)(?: (-?\d+))?\Z")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\Z)')


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A strict reader of Prometheus text format 0.0.4: gauges only, as /metrics serves."""
    assert text.endswith("\n")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    typed: dict[str, str] = {}
    helped: set[str] = set()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped, f"two HELP lines: {line}"
            assert name not in samples, f"HELP after samples: {line}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in typed, f"two TYPE lines: {line}"
            assert name not in samples, f"TYPE after samples: {line}"
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            typed[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels_text, value = match.group(1), match.group(2) or "", match.group(3)
            assert typed.get(name) == "gauge", f"no TYPE gauge before {name}"
            labels, rest = {}, labels_text
            while rest:
                label = _LABEL.match(rest)
                assert label, f"bad labels in {line!r}"
                raw = label.group(2)
                labels[label.group(1)] = re.sub(
                    r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), raw
                )
                rest = rest[label.end() :]
            number = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(value)
            samples.setdefault(name, []).append(
                (labels, float(value) if number is None else number)
            )
    return samples


def gauge(page: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    [value] = [v for got, v in page[name] if labels.items() <= got.items()]
    return value


class TestPrometheusMetrics:
    def test_the_page_is_text_format_0_0_4(self, three: dict[str, JudgeService]) -> None:
        """Content type, HELP and TYPE lines, labelled gauges: a strict parser reads it."""
        status, headers, data = call(three["fail"], "GET", "/metrics")
        assert 200 == status
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        page = parse_exposition(data.decode())
        for labels, _ in [row for rows in page.values() for row in rows]:
            assert ("v1", "v2") == (labels["baseline"], labels["candidate"])
        assert 1.0 == gauge(page, "mlchecks_canary_verdict", verdict="fail")
        assert 1.0 == sum(v for _, v in page["mlchecks_canary_verdict"])
        assert 1.0 == gauge(page, "mlchecks_canary_rejected", test="errors")
        assert gauge(page, "mlchecks_canary_evalue", test="errors") >= gauge(
            page, "mlchecks_canary_threshold", test="errors"
        )
        assert 4000.0 == gauge(page, "mlchecks_canary_records")

    def test_effect_sizes_and_limits(self, three: dict[str, JudgeService]) -> None:
        """Latency ratio and interval, error rates per version, PSI, the limits."""
        page = parse_exposition(three["pass"].metrics())
        low = gauge(page, "mlchecks_canary_latency_ratio_low")
        assert low <= gauge(page, "mlchecks_canary_latency_ratio")
        assert gauge(page, "mlchecks_canary_latency_ratio") <= gauge(
            page, "mlchecks_canary_latency_ratio_high"
        )
        assert 0.0 <= gauge(page, "mlchecks_canary_error_rate", version="v2") < 0.1
        assert 0.0 <= gauge(page, "mlchecks_canary_psi")
        assert 1.2 == gauge(page, "mlchecks_canary_limit", limit="max_latency_ratio")
        assert 1.0 == gauge(page, "mlchecks_canary_verdict", verdict="pass")

    def test_label_values_are_escaped(self, serve: Any) -> None:
        """Quotes, backslashes and newlines in a version name survive the round trip."""
        odd = 'v"2\\beta\n'
        service = JudgeService(CanaryJudge(baseline="v1", candidate=odd)).start()
        try:
            page = parse_exposition(service.metrics())
        finally:
            service.stop()
        [(labels, _)] = page["mlchecks_canary_records"]
        assert odd == labels["candidate"]


# --------------------------------------------------------------------------- records


class TestPostedRecords:
    def test_json_lines_and_arrays(self, serve: Any) -> None:
        """Records arrive as JSON Lines or as a JSON array; bad lines are counted."""
        service = serve()
        lines = b'{"version": "v1", "latency_ms": 8}\n{"version": "v2", "latency_s": 0.01}\nnope\n'
        status, _, data = call(service, "POST", "/records", lines)
        assert (200, 2, 1) == (status, json.loads(data)["accepted"], json.loads(data)["bad_lines"])
        array = json.dumps([{"version": "v1", "error": True}, {"id": "r1", "label": 1}]).encode()
        assert 2 == json.loads(call(service, "POST", "/records", array)[2])["accepted"]
        document = json.loads(call(service, "GET", "/verdict")[2])
        assert (3, 1) == (document["records"], document["bad_lines"])

    def test_nothing_readable_is_400(self, serve: Any) -> None:
        status, _, data = call(serve(), "POST", "/records", b"not json\n")
        assert (400, 0) == (status, json.loads(data)["accepted"])

    def test_a_posted_failing_stream_fails(self, serve: Any) -> None:
        """The judge reaches the same verdict from records POSTed in batches."""
        service = serve()
        rows = [
            {"version": r.version, "latency_s": r.latency_s, "error": r.error} for r in failing()
        ]
        for start in range(0, len(rows), 500):
            body = "\n".join(json.dumps(row) for row in rows[start : start + 500]).encode()
            assert 200 == call(service, "POST", "/records", body)[0]
        assert "fail" == json.loads(call(service, "GET", "/verdict")[2])["verdict"]

    def test_body_limits(self, serve: Any) -> None:
        """No length is 411, too long is 413; the service answers on."""
        service = serve(max_body_bytes=64)
        assert 413 == call(service, "POST", "/records", b"x" * 65)[0]
        host, port = service.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(b"POST /records HTTP/1.0\r\nHost: judge\r\n\r\n")
            assert raw.recv(64).startswith(b"HTTP/1.0 411 ")
        assert 200 == call(service, "GET", "/healthz")[0]

    def test_unknown_routes_and_methods(self, serve: Any) -> None:
        service = serve()
        assert 404 == call(service, "GET", "/nope")[0]
        status, headers, _ = call(service, "GET", "/records")
        assert (405, "POST") == (status, headers["allow"])
        assert 405 == call(service, "POST", "/metrics", b"{}")[0]


def kserve_event(kind: str, request_id: str, endpoint: str, at: str, body: Any) -> dict[str, str]:
    """The binary-mode headers KServe's logger sends with one payload."""
    return {
        "Ce-Specversion": "1.0",
        "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
        "Ce-Id": request_id,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Time": at,
        "Ce-Inferenceservicename": "iris",
        "Ce-Namespace": "default",
        "Ce-Component": "predictor",
        "Ce-Endpoint": endpoint,
        "Content-Type": "application/json",
    }


class TestKServeEvents:
    def test_request_and_response_events_make_a_record(self, serve: Any) -> None:
        """A request event and its response event are one record of their version."""
        service = JudgeService(CanaryJudge(baseline="default", candidate="canary")).start()
        try:
            request = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode()
            answer = json.dumps({"predictions": [1]}).encode()
            for i, endpoint in enumerate(["default", "canary", "default"]):
                rid = f"req-{i}"
                head = kserve_event("request", rid, endpoint, "2024-05-01T12:00:00Z", None)
                assert 200 == call(service, "POST", "/events", request, head)[0]
                head = kserve_event("response", rid, endpoint, "2024-05-01T12:00:00.02Z", None)
                status, _, data = call(service, "POST", "/events", answer, head)
                assert (200, 1) == (status, json.loads(data)["accepted"])
            document = service.verdict()
        finally:
            service.stop()
        assert (3, 1) == (document["records"], document["candidate_requests"])

    def test_a_request_that_is_no_cloudevent_is_400(self, serve: Any) -> None:
        status, _, data = call(serve(), "POST", "/events", b"{}", {"Content-Type": "text/plain"})
        assert 400 == status
        assert "CloudEvent" in json.loads(data)["error"]


# --------------------------------------------------------------------------- life cycle


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


class TestLifeCycle:
    def test_stop_joins_the_threads_and_closes_the_port(self) -> None:
        """After stop, no thread of the service runs and the port refuses connections."""
        service = JudgeService(judge(), records=healthy(500)).start()
        url = service.url
        assert 200 == call(service, "GET", "/healthz")[0]
        service.stop()
        assert not service.running
        assert [] == service._threads
        assert refused(url)

    def test_a_followed_log_is_read_as_it_grows_and_stopped(self, tmp_path: Path) -> None:
        """A tailed log feeds the judge live; stop ends the tail promptly."""
        log = tmp_path / "requests.jsonl"
        log.write_text("")
        service = JudgeService(judge(), records=read_records(log, follow=True, poll_s=0.02))
        with service:
            with log.open("a") as file:
                for record in failing():
                    row = {"version": record.version, "latency_s": record.latency_s}
                    file.write(json.dumps({**row, "error": record.error}) + "\n")
            deadline = time.monotonic() + 30
            while service.verdict()["verdict"] != "fail" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "fail" == service.verdict()["verdict"]
            health = service.health()
            assert ("ok", "reading") == (health["status"], health["source"])
            began = time.monotonic()
        assert time.monotonic() - began < 3.0
        assert [] == service._threads

    def test_a_failed_source_makes_healthz_503(self, serve: Any, tmp_path: Path) -> None:
        service = serve(read_records(tmp_path / "missing.jsonl"))
        status, _, data = call(service, "GET", "/healthz")
        assert 503 == status
        assert json.loads(data)["source"].startswith("failed: FileNotFoundError")

    def test_only_loopback_without_allow_remote(self) -> None:
        with pytest.raises(InvalidInput, match="allow_remote=True"):
            JudgeService(judge(), host="0.0.0.0")
        with pytest.raises(InvalidInput, match="'port' must be in"):
            JudgeService(judge(), port=70000)

    def test_start_twice_and_restart_are_errors(self) -> None:
        service = JudgeService(judge()).start()
        try:
            with pytest.raises(RuntimeError, match="already running"):
                service.start()
        finally:
            service.stop()
        with pytest.raises(RuntimeError, match="cannot start again"):
            service.start()

    def test_a_slow_client_is_cut_off(self, serve: Any) -> None:
        """A client that sends half a request is dropped after timeout_s; others are served."""
        service = serve(timeout_s=0.3)
        host, port = service.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as slow:
            slow.sendall(b"GET /verdict HTTP/1.1\r\n")
            assert 200 == call(service, "GET", "/healthz")[0]
            began = time.monotonic()
            assert b"" == slow.recv(1024)  # the service hung up
            assert time.monotonic() - began < 3.0


# --------------------------------------------------------------------------- the command


def test_the_command_serves_until_sigterm(tmp_path: Path) -> None:
    """``mlchecks judge serve`` prints its URL, answers /verdict and stops on SIGTERM."""
    log = tmp_path / "requests.jsonl"
    rows = [{"version": r.version, "latency_s": r.latency_s, "error": r.error} for r in failing()]
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    command = [sys.executable, "-m", "mlchecks", "judge", "serve", str(log)]
    command += ["--baseline", "v1", "--candidate", "v2", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = re.search(r"http://\S+", line)
            assert url, line
            deadline = time.monotonic() + 30
            verdict = ""
            while verdict != "fail" and time.monotonic() < deadline:
                with urllib.request.urlopen(url.group(0) + "/verdict", timeout=5) as answer:
                    verdict = json.load(answer)["verdict"]
                time.sleep(0.05)
            assert "fail" == verdict
            process.send_signal(signal.SIGTERM)
            assert 0 == process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
    assert refused(url.group(0))


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["-", "--host", "0.0.0.0"], "--allow-remote"),
        (["missing.jsonl"], "is not a file"),
        (["-", "--port", "70000"], "must be in [0, 65535]"),
    ],
)
def test_the_command_refuses_bad_usage(
    arguments: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors exit 2 with one line saying why."""
    from mlchecks.cli import main

    code = main(["judge", "serve", *arguments, "--baseline", "v1", "--candidate", "v2"])
    assert 2 == code
    assert words in capsys.readouterr().err


def test_urllib_reads_the_verdict(serve: Any) -> None:
    """The docs' way: urllib against ``service.url``."""
    service = serve(healthy())
    with urllib.request.urlopen(service.url + "/verdict", timeout=5) as answer:
        assert "pass" == json.load(answer)["verdict"]
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(service.url + "/nope", timeout=5)
    caught.value.close()
    assert 404 == caught.value.code
