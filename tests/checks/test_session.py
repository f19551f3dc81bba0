"""Tests for mlchecks.checks._session: the one serving session of pipeline, canary, rollback."""

from __future__ import annotations

import time
from typing import Any

from mlchecks.checks._session import Session, infer
from mlchecks.protocols import Response
from mlchecks.serving import InProcessServer


class Flaky:
    """A model server whose load raises ``failures`` times, then works."""

    def __init__(self, failures: int, *, listed: bool = True) -> None:
        self.failures = failures
        self.listed = listed
        self.loaded: list[str] = []
        self.live: str | None = None

    def load(self, version: str) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("registry busy")
        if version not in self.loaded:
            self.loaded.append(version)

    def unload(self, version: str) -> None:
        self.loaded.remove(version)

    def versions(self) -> tuple[str, ...]:
        return tuple(self.loaded) if self.listed else ()

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        return Response(outputs=inputs, version=version)


class TestLoad:
    def test_retries_until_it_loads(self) -> None:
        """Failed attempts are retried and listed; the load passes."""
        server = Flaky(failures=2)
        loaded = Session(server).load("2", timeout_s=5.0, retries=2)
        assert loaded.ok
        assert ["attempt 1: OSError: registry busy", "attempt 2: OSError: registry busy"] == list(
            loaded.attempts
        )
        assert "loaded in" in loaded.message
        assert "after 2 failed attempts" in loaded.message

    def test_gives_up_after_its_retries(self) -> None:
        """More failures than retries fail, naming the timeout, the retries and each error."""
        loaded = Session(Flaky(failures=3)).load("2", timeout_s=5.0, retries=1)
        assert not loaded.ok
        assert loaded.message.startswith(
            "version '2' could not be loaded within load_timeout_s=5 s and 1 retry: attempt 1"
        )

    def test_a_hung_load_times_out(self) -> None:
        """A load slower than timeout_s fails without waiting for it."""

        class Hung(Flaky):
            def load(self, version: str) -> None:
                time.sleep(1.0)

        start = time.perf_counter()
        loaded = Session(Hung(0)).load("2", timeout_s=0.05)
        assert not loaded.ok
        assert "did not finish in time" in loaded.reason
        assert time.perf_counter() - start < 0.5

    def test_an_unlisted_version_did_not_load(self) -> None:
        """load() returning while the server does not list the version is a failure."""
        loaded = Session(Flaky(0, listed=False)).load("2", timeout_s=5.0)
        assert not loaded.ok
        assert "does not list the version" in loaded.reason

    def test_a_server_without_load(self) -> None:
        """A plain endpoint cannot load."""

        class Endpoint:
            def infer(self, inputs: Any, version: str | None = None) -> Response:
                return Response(outputs=inputs)

        missing = Session(Endpoint()).load("2", timeout_s=1.0)
        assert "the server has no load() method" in missing.reason


class TestSend:
    def test_one_wording_for_every_failure(self) -> None:
        """An exception, a wrong return value and a timeout each become a failed Response."""

        class Broken:
            def infer(self, inputs: Any, version: str | None = None) -> Any:
                if inputs == "raise":
                    raise ConnectionRefusedError("port 9")
                if inputs == "slow":
                    time.sleep(0.5)
                return "not a response"

        session = Session(Broken(), request_timeout_s=0.05)
        raised = session.send("raise")
        assert ("infer() raised ConnectionRefusedError: port 9", "connection") == (
            raised.error,
            raised.error_kind,
        )
        wrong = session.send("value")
        assert ("infer() returned 'not a response' that is a str, not a Response", "server") == (
            wrong.error,
            wrong.error_kind,
        )
        slow = session.send("slow", version="2")
        assert ("no answer within request_timeout_s=0.05 s", "timeout", "2") == (
            slow.error,
            slow.error_kind,
            slow.version,
        )
        assert raised.error == infer(Broken(), "raise").error

    def test_fills_in_a_missing_latency(self) -> None:
        """A successful response without a latency gets the measured one."""
        response = Session(Flaky(0), request_timeout_s=1.0).send([1.0], version="1")
        assert response.ok
        assert response.latency_s > 0.0


class TestRestore:
    def test_unloads_what_it_loaded_only(self) -> None:
        """A version listed before the session is left; one the session loaded is unloaded."""
        server = Flaky(0)
        server.loaded.append("1")
        session = Session(server)
        session.load("1", timeout_s=1.0)
        session.load("2", timeout_s=1.0)
        assert {"unloaded": "2"} == session.restore()
        assert ["1"] == server.loaded

    def test_unload_false_keeps_it(self) -> None:
        """restore(unload=False) leaves loaded versions in place."""
        server = Flaky(0)
        session = Session(server)
        session.load("2", timeout_s=1.0)
        assert {} == session.restore(unload=False)
        assert ["2"] == server.loaded

    def test_puts_the_live_pointer_back(self) -> None:
        """The live version before the first set_live is live again after restore."""
        server = InProcessServer().add("1", abs).add("2", abs)
        server.set_live("1")
        session = Session(server)
        assert session.set_live("2") >= 0.0
        assert {"restored_live_version": "1"} == session.restore()
        assert "1" == server.live_version()

    def test_reports_a_failed_restore(self) -> None:
        """A set_live that raises while restoring is reported, not raised."""

        class Locking(Flaky):
            def live_version(self) -> str | None:
                return self.live

            def set_live(self, version: str) -> None:
                if self.live == "2":
                    raise RuntimeError("registry locked")
                self.live = version

        server = Locking(0)
        server.live = "1"
        session = Session(server)
        session.set_live("2")
        assert "registry locked" in session.restore()["restore_error"]
