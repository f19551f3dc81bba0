"""JSON nested too deeply for Python is bad input everywhere a log, an event or a body is read."""

from __future__ import annotations

import pytest

from mlchecks.checks import CanaryJudge
from mlchecks.serving import JudgeService, event_from_http
from mlchecks.serving.records import parse_line

NESTED = "[" * 100_000


class TestNestedJson:
    """`[[[[...` is refused with the reader's usual error, never a RecursionError."""

    def test_a_log_line_is_invalid_input(self) -> None:
        """A request-log line of nested arrays raises the reader's ValueError."""
        with pytest.raises(ValueError, match="nested deeper than"):
            parse_line(NESTED)

    def test_a_structured_cloudevent_is_invalid_input(self) -> None:
        """A structured CloudEvent body of nested arrays is refused as not JSON."""
        headers = {"content-type": "application/cloudevents+json"}
        with pytest.raises(ValueError, match="nested deeper than"):
            event_from_http(headers, NESTED.encode())

    def test_a_binary_cloudevent_keeps_the_text(self) -> None:
        """A binary-mode event whose body is nested arrays keeps the body as text."""
        headers = {"ce-type": "org.kubeflow.serving.inference.response", "ce-id": "1"}
        assert NESTED == event_from_http(headers, NESTED.encode())["data"]

    def test_the_judge_service_answers_400(self) -> None:
        """POST /records and POST /flagger/<hook> with nested arrays answer 400."""
        service = JudgeService(CanaryJudge(baseline="1", candidate="2"))
        assert 400 == service.post_records(NESTED.encode())[0]
        assert 400 == service.flagger("confirm-rollout", NESTED.encode())[0]
