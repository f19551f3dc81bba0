"""The serving clients under a hostile server: whole-call deadlines, a response-size cap,
JSON nested too deeply, and credentials in URLs.

The server is `_faulty.FaultyServer` (tests/serving/_faulty.py): it trickles, stalls,
drops, floods or nests its answers on demand. Every call must end within its timeout
+ 1 s with a failed `Response` (or a `V2Error` from a management call) that names what
happened, and leave no thread behind.
"""

from __future__ import annotations

import base64
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from _faulty import FaultyServer

from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving import EndpointsDeployment, RestEndpoint, V2Endpoint, V2Error

X = np.array([[1.0, 2.0]], dtype=np.float32)
#: How long past its timeout a call may end here (the clients aim at ~0.2 s; the slack is
#: for a busy test machine).
SLACK = 0.5
SECRET = "s3cret"
Client = Callable[[str], Any]


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    """A fault server; after the test it must have stopped every thread it started."""
    before = set(threading.enumerate())
    with FaultyServer() as running:
        yield running
    assert [] == running.threads
    assert [] == [t.name for t in set(threading.enumerate()) - before]


def v2(url: str, **kwargs: Any) -> V2Endpoint:
    return V2Endpoint(url, "m", **{"retry_backoff_s": 0.05, **kwargs})


def rest(url: str, **kwargs: Any) -> RestEndpoint:
    return RestEndpoint(url + "/predict", **{"retry_backoff_s": 0.05, **kwargs})


CLIENTS = {"v2": v2, "rest": rest}


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def infer(client: Client, url: str, **kwargs: Any) -> tuple[Response, float]:
    endpoint = client(url, **kwargs)
    try:
        response, elapsed = timed(lambda: endpoint.infer(X))
    finally:
        endpoint.close()
    return response, elapsed


class TestFaultyServer:
    def test_answers_like_a_v2_server(self, server: FaultyServer) -> None:
        """Without a fault both clients get their inputs back, the V2 one with the
        version asked for."""
        response = V2Endpoint(server.url, "m").infer(X, version="2")
        assert (None, "2") == (response.error, response.version)
        np.testing.assert_array_equal(X, response.outputs)
        np.testing.assert_array_equal(X, RestEndpoint(server.url + "/predict").infer(X).outputs)

    def test_rejects_unknown_modes_and_options(self, server: FaultyServer) -> None:
        """A typo in a mode, an option or a kind of request is an error, not a quiet 'ok'."""
        with pytest.raises(ValueError, match="unknown mode 'slow'"):
            server.fault("slow")
        with pytest.raises(ValueError, match="takes no option"):
            server.fault("stall", s_per_byte=1)
        with pytest.raises(ValueError, match="'on' must name kinds"):
            server.fault("drop", on=("predict",))

    def test_faults_apply_per_model_and_kind(self, server: FaultyServer) -> None:
        """A fault for one model's inference leaves the other models and its readiness
        alone."""
        server.fault("drop", model="bad", on=("infer",))
        assert V2Endpoint(server.url, "good", input_name="x").infer(X).ok
        bad = V2Endpoint(server.url, "bad", input_name="x", n_retries=0)
        assert bad.ready()
        assert "connection" == bad.infer(X).error_kind


class TestWholeCallDeadline:
    @pytest.mark.parametrize("client", CLIENTS.values(), ids=list(CLIENTS))
    @pytest.mark.parametrize(
        ("mode", "options"),
        [
            ("trickle", {"s_per_byte": 0.05}),
            ("trickle", {"s_per_byte": 0.5}),
            ("stall", {"headers": True}),
            ("stall", {"headers": False}),
            ("flood", {"framing": "length", "pause_s": 0.01}),
            ("flood", {"framing": "chunked", "pause_s": 0.01}),
            ("flood", {"framing": "close", "pause_s": 0.01}),
        ],
        ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())),
    )
    def test_a_slow_answer_ends_at_timeout_s(
        self, server: FaultyServer, client: Client, mode: str, options: dict[str, Any]
    ) -> None:
        """An answer trickled, stalled or endless (no size cap) ends the call at timeout_s
        (before the fix: 12 s for one trickled at 0.05 s/byte), as a timeout naming it."""
        server.fault(mode, **options)
        response, elapsed = infer(client, server.url, timeout_s=1.0, max_response_bytes=None)
        assert "timeout" == response.error_kind
        assert "within timeout_s=1 s" in str(response.error)
        assert elapsed < 1.0 + SLACK

    @pytest.mark.parametrize("client", CLIENTS.values(), ids=list(CLIENTS))
    def test_a_dropped_connection_is_retried_only_while_time_remains(
        self, server: FaultyServer, client: Client
    ) -> None:
        """Every try dropped: retries with their backoff stop before timeout_s, and the
        connection failure says how often it was retried."""
        server.fault("drop")
        response, elapsed = infer(
            client, server.url, timeout_s=1.0, n_retries=10, retry_backoff_s=0.2
        )
        assert "connection" == response.error_kind
        assert 1 <= response.n_retries < 10
        assert elapsed < 1.0 + SLACK

    def test_the_metadata_lookup_shares_the_deadline(self, server: FaultyServer) -> None:
        """The first infer asks the model's metadata; both requests together end within
        timeout_s (before the fix each had its own)."""
        server.fault("trickle", s_per_byte=0.004)  # 0.6 s for the metadata, 1 s for the answer
        response, elapsed = infer(v2, server.url, timeout_s=1.0)
        assert "timeout" == response.error_kind
        assert elapsed < 1.4
        assert ["metadata", "infer"] == [
            "metadata" if r.path == "/v2/models/m" else "infer" for r in server.requests
        ]

    @pytest.mark.parametrize("mode", ["trickle", "stall", "flood"])
    @pytest.mark.parametrize("call", ["load", "unload_all", "load_model"])
    def test_load_and_unload_end_at_load_timeout_s(
        self, server: FaultyServer, mode: str, call: str
    ) -> None:
        """A repository call against a slow server raises a timeout V2Error naming
        load_timeout_s within it."""
        slowly: dict[str, Any] = {"pause_s": 0.01} if mode == "flood" else {}
        server.fault(mode, on=("load", "unload"), **slowly)
        endpoint = v2(server.url, timeout_s=5.0, load_timeout_s=1.0, max_response_bytes=None)
        method = getattr(endpoint, call)
        start = time.monotonic()
        with pytest.raises(V2Error, match=r"within load_timeout_s=1 s") as caught:
            method("1") if call == "load" else method()
        assert time.monotonic() - start < 1.0 + SLACK
        assert "timeout" == caught.value.kind
        endpoint.close()

    def test_load_with_its_readiness_checks_ends_at_load_timeout_s(
        self, server: FaultyServer
    ) -> None:
        """A quick load followed by stalled readiness checks still ends within
        load_timeout_s, though each check alone may take timeout_s."""
        server.fault("stall", on=("ready", "index"))
        endpoint = v2(server.url, timeout_s=5.0, load_timeout_s=1.0)
        start = time.monotonic()
        with pytest.raises(V2Error, match="load_timeout_s=1 s"):
            endpoint.load("1")
        assert time.monotonic() - start < 1.0 + SLACK

    def test_a_fast_server_is_unaffected(self, server: FaultyServer) -> None:
        """Many calls on one kept-alive connection, each well within timeout_s."""
        endpoint = v2(server.url, timeout_s=1.0)
        assert all(endpoint.infer(X).ok for _ in range(20))
        endpoint.load("1")
        assert 1 == server.n_connections


class TestResponseSizeCap:
    @pytest.mark.parametrize("client", CLIENTS.values(), ids=list(CLIENTS))
    def test_an_announced_huge_answer_is_refused_unread(
        self, server: FaultyServer, client: Client
    ) -> None:
        """Content-Length 10**15 over the default 64 MiB cap: refused at once, as a
        server failure naming max_response_bytes and the announced size."""
        server.fault("flood", framing="length")
        response, elapsed = infer(client, server.url, timeout_s=5.0)
        assert "server" == response.error_kind
        assert "larger than max_response_bytes=67,108,864" in str(response.error)
        assert "1,000,000,000,000,000 bytes announced" in str(response.error)
        assert elapsed < 1.0

    @pytest.mark.parametrize("client", CLIENTS.values(), ids=list(CLIENTS))
    @pytest.mark.parametrize("framing", ["chunked", "close"])
    def test_an_endless_body_is_cut_at_the_cap(
        self, server: FaultyServer, client: Client, framing: str
    ) -> None:
        """A chunked or unbounded endless body is read only up to the cap."""
        server.fault("flood", framing=framing)
        response, elapsed = infer(client, server.url, timeout_s=5.0, max_response_bytes=1_000_000)
        assert "server" == response.error_kind
        assert "larger than max_response_bytes=1,000,000" in str(response.error)
        assert "read so far" in str(response.error)
        assert elapsed < 2.0

    def test_the_connection_of_a_refused_answer_is_not_reused(self, server: FaultyServer) -> None:
        """An honest answer over a small cap is refused; the next request opens a new
        connection, and an answer within the cap is read."""
        endpoint = v2(server.url, input_name="x", max_response_bytes=150)
        failed = endpoint.infer(np.zeros((1, 50), dtype=np.float32))
        assert "server" == failed.error_kind
        assert "bytes announced" in str(failed.error)
        assert endpoint.ready()
        assert 2 == server.n_connections
        assert 150 == endpoint.max_response_bytes

    def test_no_cap(self, server: FaultyServer) -> None:
        """max_response_bytes=None reads an answer of any size."""
        big = np.zeros((1, 100_000), dtype=np.float32)
        response = v2(server.url, input_name="x", max_response_bytes=None).infer(big)
        assert response.ok

    @pytest.mark.parametrize("value", [0, -1, 1.5, True, "64MB"])
    def test_the_cap_is_checked(self, value: Any) -> None:
        """Not a positive whole number of bytes: an error naming the argument and value."""
        for make in (v2, rest):
            with pytest.raises(InvalidInput, match="'max_response_bytes' must be a positive"):
                make("http://127.0.0.1:9", max_response_bytes=value)


class TestNestedJson:
    @pytest.mark.parametrize("client", CLIENTS.values(), ids=list(CLIENTS))
    @pytest.mark.parametrize("status", [200, 500])
    def test_a_deeply_nested_answer_is_a_failed_response(
        self, server: FaultyServer, client: Client, status: int
    ) -> None:
        """100,000 nested arrays in a 200 or 500 body: a server failure, never a
        RecursionError out of infer."""
        server.fault("nested", status=status, on=("infer", "other"))
        response, _ = infer(client, server.url)
        assert "server" == response.error_kind
        if status == 200:
            assert "nested deeper than" in str(response.error)
        else:
            assert str(response.error).startswith("HTTP 500: [[[[")

    def test_nested_metadata_is_no_declared_inputs(self, server: FaultyServer) -> None:
        """A nested metadata answer declares nothing (inference goes on); metadata()
        raises a V2Error saying why."""
        server.fault("nested", on=("metadata",))
        endpoint = v2(server.url)
        assert endpoint.infer(X).ok
        with pytest.raises(V2Error, match="nested deeper than") as caught:
            endpoint.metadata()
        assert "server" == caught.value.kind

    def test_score_rejects_a_nested_report(self, tmp_path: Path, capsys: Any) -> None:
        """`mlchecks score` on a deeply nested JSON file: exit 2 and one line saying it
        is not a report (before the fix: a RecursionError traceback and exit 1)."""
        from mlchecks.cli import main

        path = tmp_path / "nested.json"
        path.write_text("[" * 100_000)
        assert 2 == main(["score", str(path)])
        err = capsys.readouterr().err.strip()
        assert 1 == len(err.splitlines())
        assert "is not a mlchecks JSON report" in err


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TestCredentials:
    @pytest.mark.parametrize("client", CLIENTS.values(), ids=list(CLIENTS))
    def test_url_credentials_are_sent_as_basic_auth(
        self, server: FaultyServer, client: Client
    ) -> None:
        """user:password in the URL arrive as an Authorization header (percent-decoded)
        and are not sent in the request line."""
        url = server.url.replace("http://", "http://ml:p%40ss@")
        response, _ = infer(client, url)
        assert response.ok
        assert {_basic("ml", "p@ss")} == {r.headers["authorization"] for r in server.requests}
        assert all("p%40ss" not in r.path for r in server.requests)

    def test_the_users_authorization_header_wins(self, server: FaultyServer) -> None:
        """Headers that set Authorization (in any case) replace the URL's credentials."""
        url = server.url.replace("http://", f"http://ml:{SECRET}@")
        assert v2(url, headers={"authorization": "Bearer t"}).infer(X).ok
        assert {"Bearer t"} == {r.headers["authorization"] for r in server.requests}

    @pytest.mark.parametrize("mode", ["stall", "drop", "flood"])
    def test_the_password_appears_in_no_text(self, server: FaultyServer, mode: str) -> None:
        """Reprs, url attributes, failed responses and V2Errors show the password as ***;
        the host checks read the host from the redacted url."""
        from mlchecks.checks._session import _host_of

        server.fault(mode)
        url = server.url.replace("http://", f"http://ml:{SECRET}@")
        endpoint = v2(url, timeout_s=0.5, load_timeout_s=0.5, n_retries=0)
        service = rest(url, timeout_s=0.5, n_retries=0)
        texts = [repr(endpoint), endpoint.url, repr(service), service.url]
        texts += [str(endpoint.infer(X).error), str(service.infer(X).error)]
        for call in (lambda: endpoint.load("1"), endpoint.metadata, endpoint.versions):
            with pytest.raises(V2Error) as caught:
                call()
            texts.append(str(caught.value))
        deployment = EndpointsDeployment({"1": service})
        texts += [repr(deployment), str(deployment.url)]
        assert [] == [text for text in texts if SECRET in text]
        assert f"http://ml:***@127.0.0.1:{server.port}" == endpoint.url
        assert "127.0.0.1" == _host_of(endpoint) == _host_of(service)
        # the copy still authenticates
        server.clear()
        assert pickle.loads(pickle.dumps(endpoint)).infer(X).ok

    @pytest.mark.parametrize(
        "url",
        [
            f"http://ml:{SECRET}@127.0.0.1:9/?q=1",
            f"http://ml:{SECRET}@127.0.0.1:port",
            f"ftp://ml:{SECRET}@127.0.0.1:9",
        ],
    )
    def test_a_bad_url_is_shown_redacted(self, url: str) -> None:
        """The message refusing a malformed URL shows it without the password."""
        makers: list[Callable[[], object]] = [
            lambda: V2Endpoint(url, "m"),
            lambda: RestEndpoint(url),
        ]
        for make in makers:
            with pytest.raises(InvalidInput) as caught:
                make()
            assert SECRET not in str(caught.value)
            assert "ml:***@" in str(caught.value)


class TestGrpc:
    """The gRPC client: the deadline bounds the call with its retries, the cap is gRPC's
    own limit, credentials become metadata."""

    def test_retries_stop_at_the_deadline(self) -> None:
        """Nothing listening, 10 retries of growing backoff allowed: the call ends at
        timeout_s (before the fix: each try had timeout_s, and the backoff added 3 min)."""
        pytest.importorskip("grpc")
        from _mlserver_models import free_port

        from mlchecks.serving import V2GrpcEndpoint

        endpoint = V2GrpcEndpoint(
            f"127.0.0.1:{free_port()}",
            "m",
            input_name="x",
            timeout_s=1.0,
            n_retries=10,
            retry_backoff_s=0.2,
        )
        response, elapsed = timed(lambda: endpoint.infer(X))
        endpoint.close()
        assert "connection" == response.error_kind
        assert response.n_retries < 10
        assert elapsed < 1.0 + SLACK

    def test_a_huge_answer_is_capped_and_the_call_bounded(self) -> None:
        """An answer over max_response_bytes is a server failure naming the cap; a slow
        metadata lookup and a slow answer together end within timeout_s; URL
        credentials arrive as metadata and are shown as ***."""
        grpc = pytest.importorskip("grpc")
        with _GrpcServer(grpc) as target:
            url = f"grpc://ml:{SECRET}@{target}"
            from mlchecks.serving import V2GrpcEndpoint

            capped = V2GrpcEndpoint(url, "big", input_name="x", max_response_bytes=100_000)
            failed = capped.infer(X)
            assert "server" == failed.error_kind
            assert "larger than max_response_bytes=100,000" in str(failed.error)
            assert V2GrpcEndpoint(url, "big", input_name="x").infer(X).ok
            slow = V2GrpcEndpoint(url, "slow", timeout_s=1.0)
            response, elapsed = timed(lambda: slow.infer(X))
            assert "timeout" == response.error_kind
            assert elapsed < 1.0 + SLACK
            for endpoint in (capped, slow):
                assert SECRET not in repr(endpoint) + str(endpoint.url)
                endpoint.close()
        assert {_basic("ml", SECRET)} == set(_GrpcServer.authorization)


class _GrpcServer:
    """A gRPC server on 127.0.0.1: model ``big`` answers 1 MB; model ``slow`` takes 0.7 s
    for its metadata and for its answer."""

    authorization: ClassVar[list[str]] = []

    def __init__(self, grpc: Any) -> None:
        from concurrent import futures

        from mlchecks.serving._grpc_wire import SERVICE, protocol

        messages = protocol().messages
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(
                self.infer,
                request_deserializer=messages["ModelInferRequest"].FromString,
                response_serializer=messages["ModelInferResponse"].SerializeToString,
            ),
            "ModelMetadata": grpc.unary_unary_rpc_method_handler(
                self.metadata,
                request_deserializer=messages["ModelMetadataRequest"].FromString,
                response_serializer=messages["ModelMetadataResponse"].SerializeToString,
            ),
        }
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, handlers)]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.messages = messages
        _GrpcServer.authorization = []

    def infer(self, request: Any, context: Any) -> Any:
        _GrpcServer.authorization.append(dict(context.invocation_metadata())["authorization"])
        if request.model_name == "slow":
            time.sleep(0.7)
        response = self.messages["ModelInferResponse"](model_name=request.model_name)
        size = 250_000 if request.model_name == "big" else 1
        response.outputs.add(name="out", datatype="FP32", shape=[size])
        response.raw_output_contents.append(np.zeros(size, dtype=np.float32).tobytes())
        return response

    def metadata(self, request: Any, context: Any) -> Any:
        time.sleep(0.7)
        return self.messages["ModelMetadataResponse"](name=request.name)

    def __enter__(self) -> str:
        self.server.start()
        return f"127.0.0.1:{self.port}"

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop(grace=None).wait(5)


class TestMLflowCredentials:
    """MLflow URIs with a password never reach a repr, an attribute or an error."""

    URI = f"postgresql://ml:{SECRET}@127.0.0.1:9/mlflow"

    def test_deployment_shows_the_uri_redacted(self) -> None:
        """repr and tracking_uri hide the password; a missing model's error too."""
        pytest.importorskip("mlflow")
        from mlchecks.serving.mlflow import MLflowDeployment

        deployment = MLflowDeployment("fraud", tracking_uri=self.URI, registry_uri=self.URI)
        assert "postgresql://ml:***@127.0.0.1:9/mlflow" == deployment.tracking_uri
        assert SECRET not in repr(deployment) + str(deployment.registry_uri)
        deployment._registry._client = _Registry(missing=True)
        with pytest.raises(InvalidInput, match=r"does not exist in postgresql://ml:\*\*\*@"):
            deployment.live_version()
        # the endpoint it makes still has the real URI to connect with
        assert self.URI == deployment.endpoint()._registry.tracking_uri

    def test_endpoint_errors_are_redacted(self) -> None:
        """Errors of the registry, the loader and the model reach Response.error redacted."""
        pytest.importorskip("mlflow")
        from mlchecks.serving.mlflow import MLflowEndpoint

        def loader(uri: str) -> Any:
            raise OSError(f"cannot fetch s3://key:{SECRET}@bucket/{uri}")

        endpoint = MLflowEndpoint("fraud", tracking_uri=self.URI, loader=loader)
        endpoint._registry._client = _Registry(missing=False)
        errors = [endpoint.infer(X).error, endpoint.infer(X, version="1").error]
        endpoint._registry._client = _Registry(missing=False, broken=True)
        errors.append(endpoint.infer(X).error)
        assert all(error is not None and "***" in error for error in errors)
        assert [] == [e for e in errors if SECRET in str(e)]


class _Registry:
    """A stand-in MlflowClient whose failures quote the tracking URI with its password."""

    def __init__(self, *, missing: bool, broken: bool = False) -> None:
        self.missing = missing
        self.broken = broken

    def get_registered_model(self, name: str) -> Any:
        if self.broken:
            raise ConnectionError(f"cannot reach {TestMLflowCredentials.URI}")
        if self.missing:
            error = RuntimeError("missing")
            error.error_code = "RESOURCE_DOES_NOT_EXIST"  # type: ignore[attr-defined]
            raise error
        return type("Model", (), {"aliases": {"champion": "1"}})()

    def get_model_version(self, name: str, version: str) -> Any:
        return object()

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        return f"models/{version}"
