"""Readers of the traffic's record: JSON Lines request logs and CloudEvents payload logs."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlchecks.exceptions import InvalidInput
from mlchecks.serving import (
    CloudEventPairer,
    Label,
    Record,
    RecordLog,
    event_from_http,
    parse_line,
    read_records,
)
from mlchecks.serving.records import from_json, parse_time

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z
KSERVE = "org.kubeflow.serving.inference"
SELDON = "io.seldon.serving.inference"


def line(**fields: Any) -> str:
    return json.dumps(fields) + "\n"


def kserve_event(kind: str, rid: str, at: float, data: Any = None, **ext: Any) -> dict[str, Any]:
    """A structured-mode CloudEvent as KServe's logger sends it (time as ISO text)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e9):09d}Z"
    event = {
        "specversion": "1.0",
        "type": f"{KSERVE}.{kind}",
        "source": "http://localhost:9081/",
        "id": rid,
        "time": stamp,
        "datacontenttype": "application/json",
        "inferenceservicename": "iris",
        "namespace": "default",
        "component": "predictor",
        "endpoint": "default",
        **ext,
    }
    if data is not None:
        event["data"] = data
    return event


def jsonl_log(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` request-log lines alternating two versions, latencies and errors drawn from rng."""
    lines = []
    for i in range(n):
        fields: dict[str, Any] = {
            "version": "v1" if i % 2 else "v2",
            "latency_ms": round(float(rng.lognormal(3.0, 0.3)), 3),
            "status": 500 if rng.random() < 0.02 else 200,
            "prediction": int(rng.integers(0, 3)),
            "request_id": f"r{i}",
            "time": T0 + i * 0.01,
        }
        lines.append(line(**fields))
    return lines


def collect(log: RecordLog) -> list[Record | Label]:
    return list(log)


class TestParseLine:
    def test_every_field(self) -> None:
        """A full line gives a Record with every field converted."""
        record = parse_line(
            line(
                version="v2",
                latency_s=0.012,
                error=None,
                status=200,
                prediction=[0.1, 0.9],
                request_id="r-1",
                time="2024-05-01T12:00:00Z",
                label=1,
            )
        )
        assert (
            Record(
                version="v2",
                latency_s=0.012,
                status=200,
                outputs=[0.1, 0.9],
                request_id="r-1",
                time=T0,
                label=1,
            )
            == record
        )

    @pytest.mark.parametrize(
        ("fields", "attribute", "expected"),
        [
            ({"latency_ms": 25}, "latency_s", 0.025),
            ({"outputs": [1, 2]}, "outputs", [1, 2]),
            ({"id": 17}, "request_id", "17"),
            ({"status": "503"}, "status", 503),
            ({"error": True}, "error", "error"),
            ({"error": False}, "error", None),
            ({"error": "timeout"}, "error", "timeout"),
            ({"time": T0 + 0.5}, "time", T0 + 0.5),
            ({"time": "2024-05-01T14:00:00.5+02:00"}, "time", T0 + 0.5),
            ({"time": "2024-05-01 12:00:00"}, "time", T0),
            ({"version": 3}, "version", "3"),
        ],
    )
    def test_aliases_and_conversions(
        self, fields: dict[str, Any], attribute: str, expected: Any
    ) -> None:
        """Each alias and accepted spelling lands in the Record's field."""
        record = parse_line(line(**{"version": "v1", **fields}))
        assert expected == getattr(record, attribute)

    def test_unknown_keys_are_ignored(self) -> None:
        """Keys outside the schema do not matter."""
        assert Record(version="v1") == parse_line(line(version="v1", pod="p-1", path="/infer"))

    def test_late_label(self) -> None:
        """request_id and label without a version is a Label, with its time."""
        assert Label("r-9", 2, time=T0) == parse_line(
            line(request_id="r-9", label=2, time="2024-05-01T12:00:00Z")
        )
        assert Label("7", "cat") == parse_line(line(id=7, label="cat"))

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("{not json", "not JSON"),
            ("[1, 2]", "must be a JSON object"),
            (line(latency_s=0.1), "no 'version'"),
            (line(request_id="r"), "no 'version'"),
            (line(version="v1", latency_s=0.1, latency_ms=100), "'latency_s' and 'latency_ms'"),
            (line(version="v1", prediction=1, outputs=1), "'prediction' and 'outputs'"),
            (line(version="v1", latency_s=-1), "'latency_s' must be finite and >= 0"),
            (line(version="v1", latency_ms="9ms"), "'latency_ms' must be a number"),
            (line(version="v1", status=700), "'status' must be an HTTP status code"),
            (line(version="v1", error=3), "'error' must be a message"),
            (line(version="", latency_s=0.1), "'version' must be a non-empty string"),
            (line(version="v1", time="yesterday"), "'time' must be epoch seconds or ISO-8601"),
            (line(version="v1", time="2024-13-01T00:00:00Z"), "not a valid date"),
            (line(version="v1", id=[1]), "'request_id' must be a non-empty string"),
        ],
    )
    def test_problems_are_named(self, text: str, message: str) -> None:
        """A bad line raises InvalidInput saying what is wrong."""
        with pytest.raises(InvalidInput, match=message):
            parse_line(text)

    def test_from_json_takes_a_decoded_object(self) -> None:
        """from_json reads an already decoded line."""
        assert "oom" == from_json({"version": "v1", "error": "oom"}).failure


class TestParseTime:
    def test_nanoseconds_and_zones(self) -> None:
        """Go's nanosecond times and numeric offsets read exactly (to float precision)."""
        assert T0 + 0.080736102 == pytest.approx(parse_time("2024-05-01T12:00:00.080736102Z"))
        assert T0 == parse_time("2024-05-01T07:00:00-0500")
        assert T0 == parse_time(str(T0))

    def test_negative_is_rejected(self) -> None:
        """Negative and non-finite times are rejected."""
        with pytest.raises(InvalidInput, match="finite and >= 0"):
            parse_time(-1.0)
        with pytest.raises(InvalidInput, match="epoch seconds"):
            parse_time(True)


class TestLabel:
    def test_fields(self) -> None:
        """A Label holds the request id as text, the label and the time."""
        assert ("3", 1, 10.0) == (Label(3, 1, time=10).request_id, 1, Label("a", 1, 10).time)

    @pytest.mark.parametrize(
        ("args", "message"), [(("", 1), "'request_id'"), (("r", None), "'label' must not be")]
    )
    def test_rejects(self, args: tuple[Any, Any], message: str) -> None:
        """An empty request id or a missing label is refused."""
        with pytest.raises(InvalidInput, match=message):
            Label(*args)


class TestCloudEventPairer:
    def test_kserve_v1_pair(self) -> None:
        """KServe's request and response events make one record: latency, outputs, version."""
        pairer = CloudEventPairer()
        assert [] == pairer.add(kserve_event("request", "a", T0, {"instances": [[6.8, 2.8]]}))
        [record] = pairer.add(kserve_event("response", "a", T0 + 0.025, {"predictions": [1]}))
        assert ("default", [1], "a") == (record.version, record.outputs, record.request_id)
        assert T0 + 0.025 == pytest.approx(record.time, abs=1e-6)
        assert 0.025 == pytest.approx(record.latency_s, abs=1e-6)
        assert record.ok
        assert 0 == pairer.pending

    def test_empty_endpoint_falls_back_to_the_inference_service(self) -> None:
        """KServe writes an empty endpoint for v1beta1 services: the service name is the version."""
        pairer = CloudEventPairer()
        pairer.add(kserve_event("request", "a", T0, endpoint=""))
        [record] = pairer.add(kserve_event("response", "a", T0 + 0.01, {}, endpoint=""))
        assert "iris" == record.version

    def test_knative_revision_from_the_pod_name(self) -> None:
        """KServe's logger sends the pod's name as source: its Knative revision is the version."""
        pairer = CloudEventPairer()
        records = []
        for rid, pod in (("a", "iris-predictor-00001-deployment-7c9d-abcde"), ("b", "iris-pred")):
            pod_name = {"endpoint": "", "source": pod}
            pairer.add(kserve_event("request", rid, T0, **pod_name))
            records += pairer.add(kserve_event("response", rid, T0 + 0.01, **pod_name))
        assert ["iris-predictor-00001", "iris"] == [r.version for r in records]

    def test_mlserver_v2_outputs_are_reshaped(self) -> None:
        """MLServer's events pair by requestid; the first V2 output is decoded with its shape."""
        ext = {"modelid": "iris_2", "endpoint": "iris_2", "inferenceservicename": "mlserver"}
        body = {
            "model_name": "iris",
            "outputs": [
                {"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [1, 2]},
                {"name": "other", "shape": [1], "datatype": "FP32", "data": [0.5]},
            ],
        }
        pairer = CloudEventPairer(version_from="modelid")
        request = {"specversion": "0.3", "type": f"{SELDON}.request", "id": "x", "time": T0}
        pairer.add({**request, "requestid": "r1", **ext})
        [record] = pairer.add(
            {**request, "type": f"{SELDON}.response", "requestid": "r1", "time": T0 + 0.1}
            | ext
            | {"data": body}
        )
        assert ("iris_2", "r1") == (record.version, record.request_id)
        np.testing.assert_array_equal(np.array([[1], [2]]), record.outputs)

    def test_response_before_request(self) -> None:
        """Events out of order still pair, with the right latency."""
        pairer = CloudEventPairer()
        assert [] == pairer.add(kserve_event("response", "a", T0 + 0.2, {"predictions": [0]}))
        [record] = pairer.add(kserve_event("request", "a", T0))
        assert 0.2 == pytest.approx(record.latency_s, abs=1e-6)
        assert {"paired": 1, "unrequested": 0} == {
            k: pairer.counts[k] for k in ("paired", "unrequested")
        }

    def test_missing_response_fails_after_the_pair_timeout(self) -> None:
        """A request with no response within pair_timeout_s of log time is a failed record."""
        pairer = CloudEventPairer(pair_timeout_s=5.0)
        pairer.add(kserve_event("request", "lost", T0))
        assert [] == pairer.add(kserve_event("request", "b", T0 + 4.0))
        [failed] = pairer.add(kserve_event("request", "c", T0 + 5.5))
        assert ("lost", "no response logged", None, T0) == (
            failed.request_id,
            failed.failure,
            failed.latency_s,
            failed.time,
        )
        assert 2 == pairer.pending

    def test_a_response_after_its_request_failed_is_dropped(self) -> None:
        """A response logged after its request was given up is counted late, not a record."""
        pairer = CloudEventPairer(pair_timeout_s=1.0)
        pairer.add(kserve_event("request", "a", T0))
        [failed] = pairer.add(kserve_event("request", "b", T0 + 2))
        assert [] == pairer.add(kserve_event("response", "a", T0 + 2.5))
        assert (1, "a") == (pairer.counts["late"], failed.request_id)
        pairer.add(kserve_event("request", "a", T0 + 2.6))  # the id used again: a new request
        [record] = pairer.add(kserve_event("response", "a", T0 + 2.7))
        assert record.ok

    def test_flush_ends_every_wait(self) -> None:
        """At the end of a log requests fail and lone responses become records without latency."""
        pairer = CloudEventPairer()
        pairer.add(kserve_event("request", "a", T0))
        pairer.add(kserve_event("response", "b", T0, {"predictions": [2]}))
        records = {r.request_id: r for r in pairer.flush()}
        assert "no response logged" == records["a"].failure
        assert (True, None, [2]) == (records["b"].ok, records["b"].latency_s, records["b"].outputs)
        assert (0, 1, 1) == (
            pairer.pending,
            pairer.counts["unanswered"],
            pairer.counts["unrequested"],
        )

    def test_expire_with_a_clock(self) -> None:
        """A live sink ends old waits with its own clock."""
        pairer = CloudEventPairer(pair_timeout_s=1.0)
        pairer.add(kserve_event("request", "a", T0))
        assert [] == pairer.expire(T0 + 0.5)
        assert ["a"] == [r.request_id for r in pairer.expire(T0 + 2.0)]

    def test_failures_a_response_reports(self) -> None:
        """A statuscode attribute and an error body are kept on the record."""
        pairer = CloudEventPairer()
        pairer.add(kserve_event("request", "a", T0))
        [record] = pairer.add(
            kserve_event("response", "a", T0 + 0.1, {"error": "bad shape"}, statuscode="422")
        )
        assert (422, "bad shape") == (record.status, record.failure)

    def test_base64_text_and_seldon_payloads(self) -> None:
        """data_base64, JSON carried as text and Seldon's tensor are decoded."""
        pairer = CloudEventPairer()
        encoded = "eyJwcmVkaWN0aW9ucyI6IFszXX0="  # {"predictions": [3]}
        tensor = {"data": {"tensor": {"shape": [1, 2], "values": [0.2, 0.8]}}}
        bodies = {"a": {"data_base64": encoded}, "b": {"data": '{"predictions": [4]}'}}
        bodies["c"] = {"data": tensor}
        outputs = {}
        for rid, body in bodies.items():
            pairer.add(kserve_event("request", rid, T0))
            [record] = pairer.add({**kserve_event("response", rid, T0 + 0.1), **body})
            outputs[rid] = record.outputs
        assert ([3], [4]) == (outputs["a"], outputs["b"])
        np.testing.assert_array_equal([[0.2, 0.8]], outputs["c"])

    def test_other_event_types_are_ignored(self) -> None:
        """Outlier or drift events are counted, not paired."""
        pairer = CloudEventPairer()
        assert [] == pairer.add({"type": f"{SELDON}.outlier", "id": "a", "specversion": "1.0"})
        assert (1, 0) == (pairer.counts["ignored"], pairer.pending)

    def test_legacy_attribute_names(self) -> None:
        """CloudEvents 0.1 names (eventtype, eventid, eventtime) are read."""
        pairer = CloudEventPairer(version_from="endpoint")
        legacy = {"cloudeventsversion": "0.1", "eventid": "a", "endpoint": "canary"}
        pairer.add({**legacy, "eventtype": f"{KSERVE}.request", "eventtime": T0})
        [record] = pairer.add({**legacy, "eventtype": f"{KSERVE}.response", "eventtime": T0 + 1})
        assert ("canary", 1.0) == (record.version, record.latency_s)

    def test_components_pair_separately(self) -> None:
        """A transformer's and a predictor's events with the same id do not cross."""
        pairer = CloudEventPairer()
        pairer.add(kserve_event("request", "a", T0, component="transformer"))
        pairer.add(kserve_event("request", "a", T0 + 0.01, component="predictor"))
        [record] = pairer.add(kserve_event("response", "a", T0 + 0.03, component="predictor"))
        assert 0.02 == pytest.approx(record.latency_s, abs=1e-6)
        assert 1 == pairer.pending

    def test_duplicates_and_negative_latency(self) -> None:
        """A repeated request id is counted; a response stamped before its request: no latency."""
        pairer = CloudEventPairer()
        pairer.add(kserve_event("request", "a", T0 + 1))
        pairer.add(kserve_event("request", "a", T0 + 2))
        [record] = pairer.add(kserve_event("response", "a", T0))
        assert (1, None) == (pairer.counts["duplicates"], record.latency_s)

    def test_n_pending_gives_up_the_oldest(self) -> None:
        """Beyond n_pending waiting events, the oldest becomes a record at once."""
        pairer = CloudEventPairer(n_pending=2)
        for rid in "abc":
            out = pairer.add(kserve_event("request", rid, T0))
        assert ["a"] == [r.request_id for r in out]

    def test_version_from_a_callable(self) -> None:
        """version_from may compute the version from the event."""
        pairer = CloudEventPairer(version_from=lambda e: e["source"].rsplit("/", 2)[-2])
        pairer.add(kserve_event("request", "a", T0, source="http://iris-v7/"))
        [record] = pairer.add(kserve_event("response", "a", T0, source="http://iris-v7/"))
        assert "iris-v7" == record.version

    @pytest.mark.parametrize(
        ("event", "message"),
        [
            ({"type": f"{KSERVE}.request", "id": "a"}, "none of the version attributes"),
            ({"type": f"{KSERVE}.request", "endpoint": "x"}, "must have an 'id'"),
            ({"type": f"{KSERVE}.request", "id": "a", "endpoint": "x", "time": "?"}, "'time'"),
            ([1], "must be a JSON object"),
        ],
    )
    def test_bad_events(self, event: Any, message: str) -> None:
        """An event the pairer cannot use raises InvalidInput and is not kept."""
        pairer = CloudEventPairer()
        with pytest.raises(InvalidInput, match=message):
            pairer.add(event)
        assert 0 == pairer.pending

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"version_from": ()}, "'version_from'"),
            ({"pair_timeout_s": 0}, "'pair_timeout_s'"),
            ({"n_pending": 0}, "'n_pending'"),
        ],
    )
    def test_bad_settings(self, options: dict[str, Any], message: str) -> None:
        """Settings are checked at construction."""
        with pytest.raises(InvalidInput, match=message):
            CloudEventPairer(**options)


class TestEventFromHttp:
    def test_binary_mode(self) -> None:
        """ce-* headers (any case, percent-encoded) and a JSON body make the event."""
        headers = [
            ("Ce-Specversion", "1.0"),
            ("CE-TYPE", f"{KSERVE}.request"),
            ("ce-id", "a"),
            ("ce-time", "2024-05-01T12:00:00Z"),
            ("ce-endpoint", "canary%20v2"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ]
        event = event_from_http(headers, b'{"instances": [[1, 2]]}')
        assert {
            "specversion": "1.0",
            "type": f"{KSERVE}.request",
            "id": "a",
            "time": "2024-05-01T12:00:00Z",
            "endpoint": "canary v2",
            "datacontenttype": "application/x-www-form-urlencoded",
            "data": {"instances": [[1, 2]]},
        } == event

    def test_headers_of_http_server(self) -> None:
        """The HTTPMessage http.server hands a handler is read like a mapping."""
        message = http.client.HTTPMessage()
        message["Ce-Type"] = f"{KSERVE}.request"
        message["Ce-Id"] = "a"
        assert {"type": f"{KSERVE}.request", "id": "a"} == event_from_http(message, b"")

    def test_bodies_that_are_not_json(self) -> None:
        """Text stays text; bytes that are not UTF-8 become data_base64."""
        headers = {"ce-type": f"{KSERVE}.response", "ce-id": "a"}
        assert "plain" == event_from_http(headers, b"plain")["data"]
        assert "/w==" == event_from_http(headers, b"\xff")["data_base64"]
        assert "data" not in event_from_http(headers, b"")

    def test_structured_mode(self) -> None:
        """application/cloudevents+json carries the whole event in the body."""
        event = kserve_event("response", "a", T0, {"predictions": [1]})
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
        assert event == event_from_http(headers, json.dumps(event).encode())

    @pytest.mark.parametrize(
        ("headers", "body", "message"),
        [
            ({"content-type": "application/json"}, b"{}", "not a CloudEvent"),
            ({"content-type": "application/cloudevents+json"}, b"[1]", "JSON object"),
            ({"content-type": "application/cloudevents+json"}, b"{", "not JSON"),
        ],
    )
    def test_not_an_event(self, headers: dict[str, str], body: bytes, message: str) -> None:
        """A request without a CloudEvent is refused with the reason."""
        with pytest.raises(InvalidInput, match=message):
            event_from_http(headers, body)

    def test_http_events_feed_the_pairer(self) -> None:
        """Binary-mode events from HTTP pair like logged ones."""
        base = {"ce-id": "a", "ce-endpoint": "canary", "ce-specversion": "1.0"}
        pairer = CloudEventPairer()
        pairer.add(event_from_http({**base, "ce-type": f"{KSERVE}.request", "ce-time": "5"}, b""))
        response = {**base, "ce-type": f"{KSERVE}.response", "ce-time": "5.5"}
        [record] = pairer.add(event_from_http(response, b'{"predictions": [0]}'))
        assert ("canary", 0.5, [0]) == (record.version, record.latency_s, record.outputs)


class TestReadRecords:
    def test_jsonl_file(self, tmp_path: Path) -> None:
        """Every good line is a record, in order, and the stats count them."""
        lines = jsonl_log(np.random.default_rng(0), 50)
        path = tmp_path / "requests.jsonl"
        path.write_text("".join(lines))
        log = read_records(path)
        records = collect(log)
        assert [parse_line(text) for text in lines] == records
        assert (50, 50, 0, 0, "jsonl") == (
            log.stats.lines,
            log.stats.records,
            log.stats.labels,
            log.stats.bad_lines,
            log.stats.format,
        )

    def test_bad_lines_are_counted_with_line_numbers(self, tmp_path: Path) -> None:
        """Bad lines are counted, the first few kept with their line number and reason."""
        lines = [line(version="v1"), "garbage\n", "\n", line(latency_s=1), line(version="v1")]
        lines += [line(version="v1", status=99)] * 6 + [line(id="r", label=1)]
        path = tmp_path / "log.jsonl"
        path.write_text("".join(lines))
        log = RecordLog(path, max_bad_examples=3)
        items = collect(log)
        assert (2, 1, 8) == (log.stats.records, log.stats.labels, log.stats.bad_lines)
        assert [2, 4, 6] == [bad.line for bad in log.stats.bad_examples]
        assert log.stats.bad_examples[0].reason.startswith("not JSON: Expecting value")
        assert "no 'version'" in log.stats.bad_examples[1].reason
        assert "'status' must be an HTTP status code" in log.stats.bad_examples[2].reason
        assert "8 bad lines (line 2: not JSON" in log.stats.summary()
        assert "; and 5 more)" in log.stats.summary()
        assert 12 == log.stats.lines
        assert isinstance(items[-1], Label)

    def test_partial_last_line_at_the_end(self, tmp_path: Path) -> None:
        """An unfinished last line is counted as bad; a complete one without newline is read."""
        path = tmp_path / "log.jsonl"
        path.write_text(line(version="v1") + '{"version": "v2", "lat')
        log = read_records(path)
        assert 1 == len(collect(log))
        assert (True, 1) == (log.stats.partial_last_line, log.stats.bad_lines)
        assert "partial last line" in log.stats.bad_examples[0].reason
        path.write_text(line(version="v1") + '{"version": "v2"}')
        assert ["v1", "v2"] == [r.version for r in read_records(path)]

    def test_cloudevents_are_detected_and_paired(self, tmp_path: Path) -> None:
        """A log of structured CloudEvents is recognised, paired, and late labels mixed in."""
        events = [
            kserve_event("request", "a", T0),
            kserve_event("request", "b", T0 + 0.01, endpoint="canary"),
            kserve_event("response", "b", T0 + 0.03, {"predictions": [1]}, endpoint="canary"),
            kserve_event("response", "a", T0 + 0.05, {"predictions": [0]}),
            {"specversion": "1.0", "type": f"{SELDON}.outlier", "id": "o"},
            kserve_event("request", "c", T0 + 0.06),  # never answered
        ]
        text = "".join(json.dumps(e) + "\n" for e in events) + line(request_id="a", label=0)
        path = tmp_path / "events.jsonl"
        path.write_text(text)
        log = read_records(path)
        items = collect(log)
        assert ["b", "a", "a", "c"] == [i.request_id for i in items]
        assert ["canary", "default"] == [items[0].version, items[1].version]
        assert isinstance(items[2], Label)
        assert "no response logged" == items[3].failure
        stats = log.stats
        assert ("cloudevents", 6, 1, 1, 3) == (
            stats.format,
            stats.events,
            stats.ignored,
            stats.unanswered,
            stats.records,
        )
        assert "6 events, 1 of other types, 1 request without a logged response" in stats.summary()

    def test_formats_do_not_mix(self, tmp_path: Path) -> None:
        """A CloudEvent in a log read as jsonl is a bad line naming the fix."""
        path = tmp_path / "log.jsonl"
        path.write_text(line(version="v1") + json.dumps(kserve_event("request", "a", T0)) + "\n")
        log = read_records(path, format="jsonl")
        assert 1 == len(collect(log))
        assert "read it as cloudevents" in log.stats.bad_examples[0].reason

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file raises FileNotFoundError when read."""
        with pytest.raises(FileNotFoundError):
            collect(read_records(tmp_path / "nope.jsonl"))

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"format": "csv"}, "'format' must be one of"),
            ({"poll_s": 0}, "'poll_s'"),
            ({"idle_timeout_s": -1}, "'idle_timeout_s'"),
            ({"pair_timeout_s": "1"}, "'pair_timeout_s'"),
        ],
    )
    def test_bad_options(self, tmp_path: Path, options: dict[str, Any], message: str) -> None:
        """Options are checked when the reader is made."""
        with pytest.raises(InvalidInput, match=message):
            read_records(tmp_path / "log.jsonl", **options)

    def test_stats_to_dict(self, tmp_path: Path) -> None:
        """The stats serialize to JSON."""
        path = tmp_path / "log.jsonl"
        path.write_text("x\n")
        log = read_records(path)
        collect(log)
        stats = json.loads(json.dumps(log.stats.to_dict()))
        assert [{"line": 1, "reason": "not JSON: Expecting value"}] == stats["bad_examples"]


class Writer(threading.Thread):
    """Writes chunks to a file with pauses, as a server writing its log."""

    def __init__(self, path: Path, chunks: list[str], pause_s: float) -> None:
        super().__init__(daemon=True)
        self.path, self.chunks, self.pause_s = path, chunks, pause_s

    def run(self) -> None:
        with self.path.open("a") as file:
            for chunk in self.chunks:
                file.write(chunk)
                file.flush()
                time.sleep(self.pause_s)


@pytest.fixture
def writer() -> Iterator[list[Writer]]:
    started: list[Writer] = []
    yield started
    for thread in started:
        thread.join(timeout=10)
        assert not thread.is_alive()


class TestFollow:
    def test_partial_last_line_is_waited_for(self, tmp_path: Path, writer: list[Writer]) -> None:
        """While following, a line being written is read once its newline arrives."""
        path = tmp_path / "log.jsonl"
        path.write_text(line(version="v1"))
        text = line(version="v2", latency_s=0.5, request_id="slow")
        writer.append(Writer(path, [text[:12], text[12:30], text[30:]], pause_s=0.15))
        log = read_records(path, follow=True, poll_s=0.02, idle_timeout_s=0.6)
        writer[0].start()
        items = collect(log)
        assert ["v1", "v2"] == [r.version for r in items]
        assert (0, False) == (log.stats.bad_lines, log.stats.partial_last_line)

    def test_growing_file_is_read_as_written(self, tmp_path: Path, writer: list[Writer]) -> None:
        """Items come while a thread is still writing; idle_timeout_s ends the reading."""
        path = tmp_path / "log.jsonl"
        path.write_text("")
        lines = jsonl_log(np.random.default_rng(1), 40)
        writer.append(Writer(path, lines, pause_s=0.01))
        log = read_records(path, follow=True, poll_s=0.01, idle_timeout_s=0.5)
        writer[0].start()
        seen_while_writing = 0
        items = []
        for item in log:
            items.append(item)
            seen_while_writing += writer[0].is_alive()
        assert 40 == len(items)
        assert seen_while_writing > 10

    def test_stop_ends_a_follow_without_idle_timeout(self, tmp_path: Path) -> None:
        """stop() from another thread ends the reading; waiting requests are not failed."""
        path = tmp_path / "events.jsonl"
        path.write_text(json.dumps(kserve_event("request", "a", T0)) + "\n")
        stop = threading.Event()
        log = read_records(path, follow=True, poll_s=0.01, stop_event=stop)
        timer = threading.Timer(0.3, stop.set)
        timer.start()
        started = time.monotonic()
        assert [] == collect(log)
        assert time.monotonic() - started < 5
        assert log.stopped
        timer.join()

    def test_rotation_and_truncation_reopen(self, tmp_path: Path) -> None:
        """A replaced or truncated file is read again from its start."""
        path = tmp_path / "log.jsonl"
        path.write_text(line(version="a"))
        log = read_records(path, follow=True, poll_s=0.01, idle_timeout_s=3.0)
        seen: list[str] = []

        def rotate_then_truncate() -> None:
            _wait_for(lambda: len(seen) == 1)
            path.rename(tmp_path / "log.jsonl.1")
            path.write_text(line(version="b") + line(version="c"))
            _wait_for(lambda: len(seen) == 3)
            path.write_text(line(version="d"))  # truncated, then shorter than what was read
            _wait_for(lambda: len(seen) == 4)
            log.stop()

        thread = threading.Thread(target=rotate_then_truncate, daemon=True)
        thread.start()
        for record in log:
            seen.append(record.version)
        thread.join(timeout=10)
        assert ["a", "b", "c", "d"] == seen
        assert 2 == log.stats.reopened


def _wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_records_compare_as_values(tmp_path: Path) -> None:
    """Two reads of the same log give equal items (a reader keeps no state between reads)."""
    path = tmp_path / "log.jsonl"
    path.write_text("".join(jsonl_log(np.random.default_rng(2), 10)))
    log = read_records(path)
    first, second = collect(log), collect(log)
    assert first == second
    assert 10 == log.stats.records
