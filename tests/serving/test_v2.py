"""Tests for mlchecks.serving.v2: `V2Endpoint`, `V2Deployment` and the tensor coding.

The first classes run against a small stand-in server (``http.server`` on 127.0.0.1) to
pin the wire format, error mapping and connection handling; the classes marked
``integration`` run against a real MLServer started by the session fixture.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from _mlserver_models import ECHO, MODEL, MLServerProcess, free_port

from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, Endpoint, ModelServer
from mlchecks.result import Status
from mlchecks.serving.v2 import (
    V2Deployment,
    V2Endpoint,
    V2Error,
    datatype_of,
    decode_tensor,
    encode_tensor,
)

TYPED = {
    "fp32": np.array([[0.5, -1.25], [3.0, 1e-3]], dtype=np.float32),
    "fp64": np.array([0.1, 2.0 / 3.0, -1e300]),
    "int64": np.array([[2**40, -3]], dtype=np.int64),
    "int32": np.array([7, -8, 9], dtype=np.int32),
    "bool": np.array([[True], [False]]),
    "bytes": np.array(["héllo", "", "wörld"], dtype=object),
}


# ----------------------------------------------------------------- stand-in server


class _Stub(BaseHTTPRequestHandler):
    """Answers by model name: ok, slow, garbage, boom, multi, noversion, close, drop."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _StubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _send(self, status: int, body: bytes, *, close: bool = False, ctype: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path in ("/v2/health/ready", "/v2/models/ok/ready"):
            self._send(200, b"")
        else:
            self._send(503 if "health" in self.path else 404, b'{"error": "not ready"}')

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers), body))
        name = self.path.split("/")[3]
        request = json.loads(body)
        echo = [{**t, "name": f"out-{t['name']}"} for t in request["inputs"]]
        answer = {"model_name": name, "model_version": "7", "outputs": echo}
        if name == "slow":
            time.sleep(1.0)
        if name == "garbage":
            self._send(200, b"<html>not json</html>", ctype="text/html")
        elif name == "boom":
            self._send(500, b"Internal Server Error", ctype="text/plain")
        elif name == "missing":
            self._send(404, b'{"error": "Model missing not found"}')
        elif name == "busy":
            self._send(504, b'{"error": "upstream timed out"}')
        elif name == "multi":
            answer["outputs"] = [*echo, {**echo[0], "name": "second"}]
            self._send(200, json.dumps(answer).encode())
        elif name == "noversion":
            del answer["model_version"]
            self._send(200, json.dumps(answer).encode())
        elif name == "close":
            self._send(200, json.dumps(answer).encode(), close=True)
            self.close_connection = True
        elif name == "drop":  # close the kept-alive connection silently after answering
            self._send(200, json.dumps(answer).encode())
            self.close_connection = True
        else:
            self._send(200, json.dumps(answer).encode())


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Stub)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) breaks the pipe: expected


@pytest.fixture
def stub() -> Iterator[_StubServer]:
    server = _StubServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------------- tensor coding


class TestTensorCoding:
    @pytest.mark.parametrize(
        ("dtype", "datatype"),
        [
            (np.float32, "FP32"),
            (np.float64, "FP64"),
            (np.float16, "FP16"),
            (np.int64, "INT64"),
            (np.int32, "INT32"),
            (np.int8, "INT8"),
            (np.uint8, "UINT8"),
            (np.uint64, "UINT64"),
            (np.bool_, "BOOL"),
            (np.str_, "BYTES"),
            (np.bytes_, "BYTES"),
            (object, "BYTES"),
        ],
    )
    def test_datatype_follows_the_numpy_dtype(self, dtype: Any, datatype: str) -> None:
        """Each numpy dtype maps to the V2 datatype of the same kind and width."""
        assert datatype == datatype_of(np.zeros(2, dtype=dtype))

    def test_encodes_shape_and_row_major_flat_data(self) -> None:
        """A 2-D array is sent with its shape and its data flattened row by row."""
        tensor = encode_tensor("x", np.array([[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]]))
        assert {
            "name": "x",
            "shape": [2, 3],
            "datatype": "FP64",
            "data": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5],
        } == tensor

    def test_encodes_strings_and_utf8_bytes_as_text(self) -> None:
        """BYTES elements travel as JSON strings, bytes decoded as UTF-8."""
        tensor = encode_tensor("s", np.array([b"ab", "c\u00e9"], dtype=object))
        assert ("BYTES", ["ab", "c\u00e9"]) == (tensor["datatype"], tensor["data"])

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            (np.zeros(2, dtype=np.complex128), "dtype complex128 that the V2 protocol"),
            (np.array([b"\xff\xfe"], dtype=object), "not UTF-8 text"),
            (np.array([1.5, "a"], dtype=object), "must hold str or bytes"),
            (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime64"),
        ],
    )
    def test_rejects_what_json_cannot_carry(self, value: Any, match: str) -> None:
        """Inputs the JSON binding cannot carry are rejected, naming 'inputs'."""
        with pytest.raises(InvalidInput, match=match):
            encode_tensor("x", value)

    @pytest.mark.parametrize("name", sorted(TYPED))
    def test_round_trip_keeps_dtype_shape_and_values(self, name: str) -> None:
        """Encoding then decoding gives back the same array, dtype and shape."""
        array = TYPED[name]
        back = decode_tensor(json.loads(json.dumps(encode_tensor(name, array))))
        assert array.shape == back.shape
        assert (object if name == "bytes" else array.dtype) == back.dtype
        assert array.tolist() == back.tolist()

    def test_decodes_nested_data_like_flat_data(self) -> None:
        """Nested data (allowed by the protocol) decodes to the same array as flat data."""
        flat = {"name": "p", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]}
        nested = {**flat, "data": [[1, 2], [3, 4]]}
        np.testing.assert_array_equal(decode_tensor(flat), decode_tensor(nested))

    @pytest.mark.parametrize(
        ("tensor", "match"),
        [
            ({"name": "p", "shape": [3], "datatype": "FP32", "data": [1.0, 2.0]}, "does not"),
            ({"name": "p", "shape": [1], "datatype": "FP128", "data": [1.0]}, "unknown"),
            ({"name": "p", "datatype": "FP32", "data": [1.0]}, "missing or bad field"),
        ],
    )
    def test_rejects_malformed_tensors(self, tensor: dict[str, Any], match: str) -> None:
        """A tensor whose data does not match its shape or datatype is a ValueError."""
        with pytest.raises(ValueError, match=match):
            decode_tensor(tensor)


# ------------------------------------------------------------------------ construction


class TestConstruction:
    @pytest.mark.parametrize(
        "url", ["ftp://host:1", "http://", "localhost:8080", "http://h:1?q=1", "http://h:x"]
    )
    def test_rejects_bad_urls(self, url: str) -> None:
        """A URL that is not http(s)://host[:port][/prefix] is rejected, naming 'url'."""
        with pytest.raises(InvalidInput, match="'url'"):
            V2Endpoint(url, "m")

    def test_grpc_urls_point_at_the_grpc_endpoint(self) -> None:
        """gRPC is the default transport of V2 servers; the error says which class speaks it."""
        with pytest.raises(InvalidInput, match="for gRPC use V2GrpcEndpoint"):
            V2Endpoint("grpc://127.0.0.1:8081", "m")

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"model": ""}, "'model' must be a non-empty string"),
            ({"timeout_s": 0}, "'timeout_s' must be a positive number"),
            ({"timeout_s": float("nan")}, "'timeout_s' must be a positive number"),
            ({"timeout_s": True}, "'timeout_s' must be a positive number"),
            ({"outputs": "predict"}, "'outputs' must be a sequence"),
            ({"output": ""}, "'output' must be a non-empty string"),
            ({"parameters": [1]}, "'parameters' must be a mapping"),
            ({"headers": "x"}, "'headers' must be a mapping"),
            ({"input_name": ""}, "'input_name' must be a non-empty string"),
        ],
    )
    def test_rejects_bad_arguments(self, kwargs: dict[str, Any], match: str) -> None:
        """Each invalid argument is rejected with a message naming it."""
        arguments = {"model": "m", **kwargs}
        with pytest.raises(InvalidInput, match=match):
            V2Endpoint("http://127.0.0.1:1", **arguments)

    def test_request_body_carries_outputs_and_parameters(self) -> None:
        """The body names the requested outputs and the request-level parameters."""
        endpoint = V2Endpoint(
            "http://h:1/prefix/",
            "m",
            outputs=["predict_proba"],
            parameters={"content_type": "np"},
        )
        body = endpoint.encode({"a": [1, 2], "b": np.array(["x"])})
        assert [{"name": "predict_proba"}] == body["outputs"]
        assert {"content_type": "np"} == body["parameters"]
        assert ["a", "b"] == [t["name"] for t in body["inputs"]]
        assert "http://h:1/prefix" == endpoint.url

    def test_pickles_without_its_connections(self, stub: _StubServer) -> None:
        """A pickled endpoint (for a process pool) works in its copy, with new connections."""
        endpoint = V2Endpoint(stub.url, "ok")
        assert endpoint.infer([1.0]).ok
        copy = pickle.loads(pickle.dumps(endpoint))
        assert copy.infer([1.0]).ok
        assert (stub.url, "ok") == (copy.url, copy.model)

    def test_deployment_rejects_non_endpoints(self) -> None:
        """V2Deployment needs a V2Endpoint and a string live version."""
        with pytest.raises(InvalidInput, match="'endpoint' must be a V2Endpoint"):
            V2Deployment("http://h:1")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="'live' must be a non-empty string"):
            V2Deployment(V2Endpoint("http://h:1", "m"), live=2)  # type: ignore[arg-type]


# ---------------------------------------------------------- behaviour (stand-in server)


class TestInferAgainstStub:
    def test_sends_json_to_the_versioned_path(self, stub: _StubServer) -> None:
        """A versioned request goes to /versions/{v}/infer with a JSON body and headers."""
        endpoint = V2Endpoint(stub.url, "ok", headers={"Authorization": "Bearer t"})
        response = endpoint.infer(np.array([[1, 2]], dtype=np.int32), version="3")
        path, headers, body = stub.requests[-1]
        assert "/v2/models/ok/versions/3/infer" == path
        assert "application/json" == headers["Content-Type"]
        assert "Bearer t" == headers["Authorization"]
        assert {"name": "input-0", "shape": [1, 2], "datatype": "INT32", "data": [1, 2]} == (
            json.loads(body)["inputs"][0]
        )
        assert response.ok
        np.testing.assert_array_equal(np.array([[1, 2]], dtype=np.int32), response.outputs)

    def test_version_comes_from_the_answer(self, stub: _StubServer) -> None:
        """Response.version is the model_version the server reported, not the one asked."""
        assert "7" == V2Endpoint(stub.url, "ok").infer([1.0], version="3").version
        assert V2Endpoint(stub.url, "noversion").infer([1.0]).version is None

    def test_several_outputs_give_a_dict_unless_one_is_chosen(self, stub: _StubServer) -> None:
        """Two output tensors decode to a dict; ``output`` picks one of them."""
        outputs = V2Endpoint(stub.url, "multi").infer([1.0]).outputs
        assert ["out-input-0", "second"] == sorted(outputs)
        chosen = V2Endpoint(stub.url, "multi", output="second").infer([1.0])
        np.testing.assert_array_equal([1.0], chosen.outputs)
        missing = V2Endpoint(stub.url, "multi", output="nope").infer([1.0])
        assert ("server", True) == (missing.error_kind, "no output tensor named" in missing.error)

    @pytest.mark.parametrize(
        ("model", "kind", "text"),
        [
            ("missing", "client", "HTTP 404: Model missing not found"),
            ("boom", "server", "HTTP 500: Internal Server Error"),
            ("busy", "timeout", "HTTP 504: upstream timed out"),
            ("garbage", "server", "malformed answer"),
        ],
    )
    def test_failures_map_to_error_kinds(
        self, stub: _StubServer, model: str, kind: str, text: str
    ) -> None:
        """4xx is a client error, 5xx a server error, 504 a timeout, junk a server error."""
        response = V2Endpoint(stub.url, model).infer([1.0])
        assert (None, kind) == (response.outputs, response.error_kind)
        assert text in response.error

    def test_slow_answer_is_a_timeout(self, stub: _StubServer) -> None:
        """No answer within timeout_s gives error_kind 'timeout' naming the limit."""
        response = V2Endpoint(stub.url, "slow", timeout_s=0.2).infer([1.0])
        assert "timeout" == response.error_kind
        assert "timeout_s=0.2" in response.error

    def test_nothing_listening_is_a_connection_error(self) -> None:
        """A port nobody listens on gives error_kind 'connection'; ready() is False."""
        endpoint = V2Endpoint(f"http://127.0.0.1:{free_port()}", "m", timeout_s=2.0)
        response = endpoint.infer([1.0])
        assert "connection" == response.error_kind
        assert "cannot reach" in response.error
        assert not endpoint.ready()

    def test_bad_inputs_and_versions_are_client_errors(self, stub: _StubServer) -> None:
        """Inputs that cannot be encoded and non-string versions are client errors, unsent."""
        endpoint = V2Endpoint(stub.url, "ok")
        assert "client" == endpoint.infer(np.zeros(1, dtype=complex)).error_kind
        assert "client" == endpoint.infer([1.0], version=3).error_kind  # type: ignore[arg-type]
        assert "client" == endpoint.infer({}).error_kind
        assert [] == stub.requests

    def test_keeps_one_connection_alive_per_thread(self, stub: _StubServer) -> None:
        """Sequential requests from one thread reuse one connection."""
        endpoint = V2Endpoint(stub.url, "ok")
        assert all(endpoint.infer([float(i)]).ok for i in range(20))
        assert 1 == stub.connections

    def test_reconnects_when_the_server_closes(self, stub: _StubServer) -> None:
        """A connection closed by the server (announced or silently) is replaced."""
        for model in ("close", "drop"):
            endpoint = V2Endpoint(stub.url, model)
            assert all(endpoint.infer([float(i)]).ok for i in range(5))
        assert 10 == stub.connections

    def test_threads_share_an_endpoint(self, stub: _StubServer) -> None:
        """Four threads sending 25 requests each all get their own answers."""
        endpoint = V2Endpoint(stub.url, "ok")
        results: list[bool] = []

        def send(offset: int) -> None:
            for i in range(25):
                response = endpoint.infer(np.array([offset + i], dtype=np.int64))
                results.append(response.ok and int(response.outputs[0]) == offset + i)

        threads = [threading.Thread(target=send, args=(k * 1000,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        endpoint.close()
        assert [True] * 100 == results
        assert 4 == stub.connections

    def test_wait_ready(self, stub: _StubServer) -> None:
        """wait_ready returns for a ready model and names what is missing on timeout."""
        assert 0.0 <= V2Endpoint(stub.url, "ok").wait_ready(5.0)
        with pytest.raises(TimeoutError, match="model 'nope' .* not ready after .* HTTP 404"):
            V2Endpoint(stub.url, "nope").wait_ready(0.3, interval_s=0.05)
        with pytest.raises(InvalidInput, match="'timeout_s'"):
            V2Endpoint(stub.url, "ok").wait_ready(-1.0)


# ------------------------------------------------------------------- real MLServer


@pytest.mark.integration
class TestV2EndpointMLServer:
    def test_is_a_model_server(self, mlserver: Any) -> None:
        """V2Endpoint satisfies ModelServer (and Endpoint); V2Deployment also Deployment."""
        endpoint = V2Endpoint(mlserver.url, MODEL)
        assert isinstance(endpoint, ModelServer)
        assert isinstance(endpoint, Endpoint)
        deployment = V2Deployment(endpoint)
        assert isinstance(deployment, ModelServer)
        assert isinstance(deployment, Deployment)

    def test_serves_probabilities_of_the_version_asked(self, mlserver: Any) -> None:
        """predict_proba comes back as a float64 (n, 2) array equal to the offline one."""
        endpoint = mlserver.process.endpoint(MODEL)
        for version in ("1", "2"):
            response = endpoint.infer(mlserver.inputs, version=version)
            assert (None, version) == (response.error, response.version)
            assert (np.dtype(np.float64), (200, 2)) == (
                response.outputs.dtype,
                response.outputs.shape,
            )
            np.testing.assert_allclose(mlserver.offline(version), response.outputs, rtol=1e-12)
        assert response.latency_s > 0

    def test_requests_carry_an_id_mlserver_accepts(self, mlserver: Any) -> None:
        """Every request sends an id (kept in Response.request_id); MLServer serves it."""
        endpoint = mlserver.process.endpoint(MODEL)
        first, second = (endpoint.infer(mlserver.inputs[:2]) for _ in range(2))
        assert (None, None) == (first.error, second.error)
        assert (0, 0) == (first.n_retries, second.n_retries)
        assert first.request_id != second.request_id
        assert 32 == len(str(first.request_id))

    def test_unversioned_requests_go_to_the_highest_version(self, mlserver: Any) -> None:
        """Without a version MLServer serves the highest loaded one, and says which."""
        response = mlserver.process.endpoint(MODEL).infer(mlserver.inputs[:3])
        assert "2" == response.version

    def test_asks_for_named_outputs(self, mlserver: Any) -> None:
        """``outputs`` asks the scikit-learn runtime for predict and predict_proba."""
        endpoint = mlserver.process.endpoint(MODEL, outputs=["predict", "predict_proba"])
        outputs = endpoint.infer(mlserver.inputs, version="1").outputs
        expected = mlserver.offline("1")
        np.testing.assert_array_equal(expected.argmax(axis=1), outputs["predict"].ravel())
        np.testing.assert_allclose(expected, outputs["predict_proba"], rtol=1e-12)

    def test_typed_tensors_round_trip(self, mlserver: Any) -> None:
        """FP32, FP64, INT64, INT32, BOOL and BYTES tensors come back unchanged."""
        response = mlserver.process.endpoint(ECHO).infer(TYPED)
        assert response.ok, response.error
        assert sorted(TYPED) == sorted(response.outputs)
        for name, array in TYPED.items():
            back = response.outputs[name]
            assert (array.shape, array.tolist()) == (back.shape, back.tolist())
            assert (object if name == "bytes" else array.dtype) == back.dtype

    @pytest.mark.parametrize(
        ("model", "version", "inputs", "kind", "text"),
        [
            ("nope", None, np.zeros((1, 4)), "client", "HTTP 404: Model nope not found"),
            (MODEL, "9", np.zeros((1, 4)), "client", "HTTP 404: Model clf with version 9"),
            (MODEL, "1", np.zeros((2, 3)), "server", "HTTP 500"),
            (MODEL, "1", np.array([["a", "b", "c", "d"]]), "server", "HTTP 500"),
        ],
        ids=["unknown-model", "unknown-version", "wrong-feature-count", "strings"],
    )
    def test_failures_are_mapped(
        self, mlserver: Any, model: str, version: str | None, inputs: Any, kind: str, text: str
    ) -> None:
        """Unknown models and versions are client errors; inputs the model rejects, server."""
        response = V2Endpoint(mlserver.url, model).infer(inputs, version=version)
        assert (False, kind) == (response.ok, response.error_kind)
        assert text in response.error

    def test_invalid_output_name_is_a_client_error(self, mlserver: Any) -> None:
        """Asking the scikit-learn runtime for an output it lacks is an HTTP 400."""
        response = mlserver.process.endpoint(MODEL, outputs=["decision"]).infer(mlserver.inputs)
        assert "client" == response.error_kind
        assert "HTTP 400: SKLearnModel only supports" in response.error

    def test_readiness_and_metadata(self, mlserver: Any) -> None:
        """ready/wait_ready see loaded versions only; metadata names the model."""
        endpoint = mlserver.process.endpoint(MODEL)
        assert (True, True, False) == (
            endpoint.ready(),
            endpoint.ready("1"),
            endpoint.ready("9"),
        )
        assert endpoint.wait_ready(10.0, version="2") >= 0.0
        with pytest.raises(TimeoutError, match="version '9' is not ready"):
            endpoint.wait_ready(0.3, version="9")
        assert MODEL == endpoint.metadata("1")["name"]
        with pytest.raises(V2Error, match="HTTP 404") as info:
            mlserver.process.endpoint("nope").metadata()
        assert ("client", 404) == (info.value.kind, info.value.status)

    def test_repository_load_and_unload(self, mlserver: Any) -> None:
        """Versions appear when put in the repository and loaded, and go when removed."""
        endpoint = mlserver.process.endpoint(MODEL)
        assert ("1", "2") == endpoint.versions()
        with mlserver.staged("3"):
            assert not endpoint.ready("3")  # in the repository, not loaded yet
            assert ("1", "2", "3") == endpoint.repository_versions()
            endpoint.load("3")
            assert ("1", "2", "3") == endpoint.versions()
            assert "3" == endpoint.infer(np.zeros((1, 3))).version
            with pytest.raises(V2Error, match="unloads every version") as info:
                endpoint.unload("3")
            assert "unsupported" == info.value.kind
        assert ("1", "2") == endpoint.versions()
        with pytest.raises(InvalidInput, match="version '9' of model 'clf' is not ready"):
            endpoint.load("9")
        with pytest.raises(InvalidInput, match="it is not loaded"):
            endpoint.unload("9")

    def test_unload_all_then_load(self, mlserver: Any) -> None:
        """unload_all unloads every version (requests fail); load brings them back."""
        endpoint = mlserver.process.endpoint(MODEL)
        try:
            endpoint.unload_all()
            assert () == endpoint.versions()
            assert "client" == endpoint.infer(mlserver.inputs).error_kind
        finally:
            endpoint.load("1")
        assert ("1", "2") == endpoint.versions()
        assert endpoint.infer(mlserver.inputs).ok

    def test_stopped_server_is_a_connection_error(
        self, own_mlserver: MLServerProcess, mlserver_exe: str
    ) -> None:
        """After the server stops requests fail with 'connection'; after a restart they work."""
        endpoint = own_mlserver.endpoint(MODEL)
        assert endpoint.infer(np.zeros((1, 4))).ok
        own_mlserver.stop()
        response = endpoint.infer(np.zeros((1, 4)))
        assert "connection" == response.error_kind
        with pytest.raises(V2Error) as info:
            endpoint.versions()
        assert "connection" == info.value.kind
        restarted = MLServerProcess(
            mlserver_exe, own_mlserver.root, http_port=own_mlserver.http_port
        )
        try:
            restarted.start()
            assert endpoint.infer(np.zeros((1, 4))).ok
        finally:
            restarted.stop()


@pytest.mark.integration
class TestV2DeploymentMLServer:
    def test_routes_unversioned_requests_to_the_live_version(self, mlserver: Any) -> None:
        """Unversioned requests follow set_live; explicit versions bypass the pointer."""
        deployment = V2Deployment(mlserver.process.endpoint(MODEL), live="1")
        assert "1" == deployment.infer(mlserver.inputs).version
        deployment.set_live("2")
        assert ("2", "2") == (deployment.live_version(), deployment.infer(mlserver.inputs).version)
        deployment.set_live("1")  # roll back
        assert "1" == deployment.infer(mlserver.inputs).version
        assert "2" == deployment.infer(mlserver.inputs, version="2").version

    def test_set_live_loads_a_version_from_the_repository(self, mlserver: Any) -> None:
        """A version in the repository but not loaded is loaded by set_live."""
        deployment = V2Deployment(mlserver.process.endpoint(MODEL), live="1")
        with mlserver.staged("4"):
            deployment.set_live("4")
            assert "4" == deployment.infer(mlserver.inputs).version
            deployment.set_live("1")

    def test_set_live_refuses_unknown_versions(self, mlserver: Any) -> None:
        """A version the server cannot load is refused and the pointer does not move."""
        deployment = V2Deployment(mlserver.process.endpoint(MODEL), live="1")
        with pytest.raises(InvalidInput, match="version '9' .* not ready"):
            deployment.set_live("9")
        strict = V2Deployment(mlserver.process.endpoint(MODEL), live="1", load_missing=False)
        with pytest.raises(InvalidInput, match="load_missing is false"):
            strict.set_live("9")
        assert ("1", "1") == (deployment.live_version(), strict.live_version())

    def test_unload_refuses_the_live_version(self, mlserver: Any) -> None:
        """The live version cannot be unloaded through the deployment."""
        deployment = V2Deployment(mlserver.process.endpoint(MODEL), live="2")
        with pytest.raises(InvalidInput, match="it is the live version"):
            deployment.unload("2")
        assert ("1", "2") == deployment.versions()


# ------------------------------------------------------ the checks against MLServer


def rows(inputs: np.ndarray) -> list[np.ndarray]:
    """One single-row (1, 4) request per input row."""
    return [inputs[i : i + 1] for i in range(len(inputs))]


def live_traffic() -> Iterator[np.ndarray]:
    """Production requests for the canary's trickle: 1,500 single rows."""
    return iter(rows(np.random.default_rng(7).normal(size=(1500, 4))))


def top_class(outputs: Any) -> int:
    """The predicted class of a (1, n_classes) probability answer."""
    return int(np.argmax(outputs))


def canary(mlserver: Any, candidate: str, **overrides: Any) -> Any:
    """A CanaryCheck of ``candidate`` against live version "1" behind a V2Deployment."""
    from mlchecks.checks.canary import CanaryCheck

    probes = rows(mlserver.inputs[:50])
    if "offline_predictions" not in overrides:
        overrides["offline_predictions"] = mlserver.offline(candidate)[:50, None, :]
    settings: dict[str, Any] = {
        "traffic": live_traffic,
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150,
        "budget_requests": 1500,
        "alpha": 0.01,
        "classify": top_class,
        "max_latency_ratio": 3.0,
    }
    settings.update(overrides)
    deployment = V2Deployment(mlserver.process.endpoint(MODEL), live="1")
    return CanaryCheck(deployment, candidate, probe_inputs=probes, **settings)


@pytest.mark.integration
class TestCanaryCheckOnMLServer:
    def test_healthy_candidate_passes(self, mlserver: Any) -> None:
        """A retrained model loads from the repository, matches offline and passes the trickle."""
        with mlserver.staged("5"):
            result = canary(mlserver, "5").run()
        assert Status.PASS == result.status, str(result)
        assert 1.0 == result.metrics["probe.agreement"]
        assert Status.PASS == result.finding("trickle").status

    def test_candidate_for_another_feature_count_fails(self, mlserver: Any) -> None:
        """A model trained on 3 features loads but fails every production request."""
        with mlserver.staged("3"):
            result = canary(mlserver, "3", offline_predictions=None).run()
        assert Status.FAIL == result.status
        finding = result.finding("probe.errors")
        assert (Status.FAIL, 50.0) == (finding.status, finding.observed)
        assert "50 server errors" in finding.message

    def test_skewed_candidate_fails_the_trickle(self, mlserver: Any) -> None:
        """A model trained on a wrong label serves what it computes offline, but the trickle
        catches the shift of its predicted classes against the live version.

        The size gate must show the shift exceeds max_psi, not just that there is one: with
        alpha 0.01 that takes a few hundred candidate requests (150 leave it inconclusive).
        """
        with mlserver.staged("4"):
            result = canary(mlserver, "4", n_candidate_requests=400).run()
        assert Status.PASS == result.finding("probe.agreement").status
        assert Status.FAIL == result.status
        assert Status.FAIL == result.finding("trickle").status

    def test_offline_skew_fails_stage_0(self, mlserver: Any) -> None:
        """Served outputs that differ from the candidate's offline predictions fail stage 0."""
        result = canary(mlserver, "2", offline_predictions=mlserver.offline("4")[:50, None, :])
        outcome = result.run()
        assert Status.FAIL == outcome.finding("probe.agreement").status
        assert 0.0 == outcome.metrics["probe.agreement"]


@pytest.mark.integration
class TestRollbackCheckOnMLServer:
    def test_rollback_through_the_live_pointer_passes(self, mlserver: Any) -> None:
        """Deploying the skewed model and rolling back to "1" loses no request."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment = V2Deployment(mlserver.process.endpoint(MODEL), live="1")
        with mlserver.staged("4", load=True):
            check = RollbackCheck(
                deployment,
                deployment,
                "4",
                probe_inputs=rows(mlserver.inputs[:20]),
                n_repeats=3,
                request_rate=300.0,
                n_settle_requests=30,
            )
            result = check.run()
        assert Status.PASS == result.status, str(result)
        assert 0.0 == result.metrics["n_failed_requests_total"]
        assert "1" == deployment.live_version()

    def test_traffic_that_bypasses_the_pointer_fails(self, mlserver: Any) -> None:
        """Moving the pointer does not roll back traffic sent without a version: MLServer
        keeps serving its highest version, so the check never sees the rollback land."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment = V2Deployment(mlserver.process.endpoint(MODEL), live="1")
        unversioned = mlserver.process.endpoint(MODEL)  # MLServer picks "2", the highest
        check = RollbackCheck(
            deployment,
            unversioned,
            "2",
            probe_inputs=rows(mlserver.inputs[:20]),
            n_repeats=1,
            request_rate=300.0,
            budget_s=1.5,
            n_settle_requests=20,
        )
        result = check.run()
        assert Status.FAIL == result.status
        assert Status.FAIL == result.finding("rollback_time").status
        assert "never came only from version '1'" in result.finding("rollback_time").message
