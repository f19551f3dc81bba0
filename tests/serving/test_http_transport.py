"""The serving clients' HTTP transport: retries, TLS, header callables, request ids, timeouts.

The servers here are small stand-ins that plant what a real model server does only now and
then (a 503 while it restarts, a connection reset, a slow load) and an HTTPS server with a
test certificate authority made by ``openssl`` (mutual TLS included). Against a real
MLServer the same client is tested in tests/serving/test_v2.py.
"""

from __future__ import annotations

import json
import pickle
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _pki import make_pki

from mlchecks.exceptions import InvalidInput
from mlchecks.serving.v2 import V2Endpoint


class _Handler(BaseHTTPRequestHandler):
    """A V2 stand-in. Model ``flaky`` answers 503 ``server.n_unavailable`` times first;
    ``reset`` closes the connection without answering ``server.n_resets`` times first; the
    repository load of ``slowload`` takes 1 s. Every request's headers and body are kept."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers), b""))
        inputs = {
            "/v2/models/typed": [{"name": "features", "datatype": "FP32", "shape": [-1, 2]}],
            "/v2/models/two": [
                {"name": "a", "datatype": "INT64", "shape": [-1]},
                {"name": "b", "datatype": "BYTES", "shape": [-1]},
            ],
        }
        self._send(200, {"name": self.path.split("/")[-1], "inputs": inputs.get(self.path, [])})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append((self.path, dict(self.headers), body))
        name = self.path.split("/")[3] if self.path.startswith("/v2/models/") else ""
        with self.server.lock:
            if name == "flaky" and self.server.n_unavailable > 0:
                self.server.n_unavailable -= 1
                self._send(503, {"error": "restarting"})
                return
            if name == "reset" and self.server.n_resets > 0:
                self.server.n_resets -= 1
                self.close_connection = True
                self.connection.close()
                return
        if self.path.endswith("/load"):
            time.sleep(1.0 if "slowload" in self.path else 0.0)
            self._send(200, {})
            return
        request = json.loads(body)
        outputs = [{**t, "name": "out"} for t in request["inputs"]]
        self._send(200, {"id": request.get("id"), "model_name": name, "outputs": outputs})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.n_unavailable = 0
        self.n_resets = 0
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.scheme = "http"
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that fail the TLS handshake on purpose


def _serve(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def plain() -> Iterator[_Server]:
    yield from _serve(_Server())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, via openssl."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls_server(pki: Path, *, client_cert: bool) -> _Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    if client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki / "ca.pem")
    return _Server(context)


X = np.array([[1.0, 2.0]])


class TestRetries:
    def test_a_503_is_retried_and_counted(self, plain: _Server) -> None:
        """Two 503s while the server restarts, then an answer: the request succeeds and
        says it was retried twice."""
        plain.n_unavailable = 2
        response = V2Endpoint(plain.url, "flaky", retry_backoff_s=0.01).infer(X)
        assert (None, 2) == (response.error, response.n_retries)
        np.testing.assert_array_equal(X, response.outputs)

    def test_retries_are_bounded(self, plain: _Server) -> None:
        """More 503s than n_retries: the last 503 is the answer, a server error."""
        plain.n_unavailable = 5
        response = V2Endpoint(plain.url, "flaky", n_retries=1, retry_backoff_s=0.01).infer(X)
        assert ("server", 1) == (response.error_kind, response.n_retries)
        assert response.error is not None
        assert response.error.startswith("HTTP 503")
        assert 3 == plain.n_unavailable

    def test_a_reset_connection_is_retried(self, plain: _Server) -> None:
        """A connection reset in flight is retried; beyond n_retries it is a connection
        failure that says how often it was retried."""
        plain.n_resets = 1
        endpoint = V2Endpoint(plain.url, "reset", input_name="x", retry_backoff_s=0.01)
        response = endpoint.infer(X)
        assert (None, 1) == (response.error, response.n_retries)
        plain.n_resets = 5
        failed = V2Endpoint(
            plain.url, "reset", input_name="x", n_retries=2, retry_backoff_s=0.01
        ).infer(X)
        assert ("connection", 2) == (failed.error_kind, failed.n_retries)

    def test_no_retries(self, plain: _Server) -> None:
        """n_retries=0 answers the first 503."""
        plain.n_unavailable = 1
        response = V2Endpoint(plain.url, "flaky", n_retries=0).infer(X)
        assert ("server", 0) == (response.error_kind, response.n_retries)


class TestRequests:
    def test_every_inference_request_has_an_id(self, plain: _Server) -> None:
        """A fresh id per request, sent in the body and kept in Response.request_id."""
        endpoint = V2Endpoint(plain.url, "m")
        ids = [endpoint.infer(X).request_id for _ in range(3)]
        sent = [json.loads(body)["id"] for path, _, body in plain.seen if path.endswith("/infer")]
        assert ids == sent
        assert 3 == len(set(ids))

    def test_a_header_callable_is_called_before_every_request(self, plain: _Server) -> None:
        """A refreshing token: each request carries the header the callable made then."""
        tokens = iter(["a", "b", "c"])
        endpoint = V2Endpoint(
            plain.url, "m", input_name="x", headers=lambda: {"Authorization": next(tokens)}
        )
        for _ in range(3):
            assert endpoint.infer(X).ok
        assert ["a", "b", "c"] == [headers["Authorization"] for _, headers, _ in plain.seen]

    def test_a_header_callable_that_returns_garbage_fails_the_request(self, plain: _Server) -> None:
        """Not a mapping: the request fails as the client's error, naming what came back."""
        response = V2Endpoint(plain.url, "m", headers=lambda: "token").infer(X)  # type: ignore[arg-type,return-value]
        assert "client" == response.error_kind
        assert "not a mapping" in str(response.error)

    def test_inputs_follow_the_models_metadata(self, plain: _Server) -> None:
        """Without input_name the declared input's name and datatype are used: float64
        features go to a model that declares FP32 as FP32 under its name; the metadata is
        asked once. A model declaring none gets "input-0"."""
        endpoint = V2Endpoint(plain.url, "typed")
        assert {"features": "FP32"} == endpoint.declared_inputs()
        for _ in range(2):
            assert endpoint.infer(X).ok
        bodies = [json.loads(body) for path, _, body in plain.seen if path.endswith("/infer")]
        assert [("features", "FP32")] * 2 == [
            (b["inputs"][0]["name"], b["inputs"][0]["datatype"]) for b in bodies
        ]
        assert 1 == sum(path == "/v2/models/typed" for path, _, _ in plain.seen)
        assert "input-0" == V2Endpoint(plain.url, "plain").encode(X)["inputs"][0]["name"]
        given = V2Endpoint(plain.url, "typed", input_name="mine").encode(X)["inputs"][0]
        assert ("mine", "FP64") == (given["name"], given["datatype"])

    def test_several_declared_inputs_need_a_mapping(self, plain: _Server) -> None:
        """A single array for a model with two inputs fails as a client error naming them;
        a mapping is cast input by input (BYTES stays as given)."""
        endpoint = V2Endpoint(plain.url, "two")
        failed = endpoint.infer(X)
        assert "client" == failed.error_kind
        assert "declares 2 inputs (a, b): pass a mapping" in str(failed.error)
        body = endpoint.encode({"a": np.array([1.0, 2.0]), "b": np.array(["x", "y"])})
        assert ["INT64", "BYTES"] == [t["datatype"] for t in body["inputs"]]

    def test_loading_has_its_own_timeout(self, plain: _Server) -> None:
        """A load that takes 1 s succeeds with timeout_s=0.3 and load_timeout_s=5; with
        load_timeout_s=0.3 it times out, naming the timeout it used."""
        V2Endpoint(plain.url, "slowload", timeout_s=0.3, load_timeout_s=5.0).load("1")
        with pytest.raises(Exception, match=r"timeout_s=0.3"):
            V2Endpoint(plain.url, "slowload", timeout_s=5.0, load_timeout_s=0.3).load("1")


class TestTLS:
    def test_trusts_the_ca_it_is_given(self, pki: Path) -> None:
        """https with ca_file: the request succeeds; without it the default trust store
        rejects the test CA and the failure says TLS failed."""
        for server in _serve(_tls_server(pki, client_cert=False)):
            assert V2Endpoint(server.url, "m", ca_file=pki / "ca.pem").infer(X).ok
            failed = V2Endpoint(server.url, "m").infer(X)
            assert "connection" == failed.error_kind
            assert "TLS" in str(failed.error)
            context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
            assert V2Endpoint(server.url, "m", ssl_context=context).infer(X).ok

    def test_mutual_tls(self, pki: Path) -> None:
        """A server that requires a client certificate answers only with cert_file and
        key_file given."""
        for server in _serve(_tls_server(pki, client_cert=True)):
            endpoint = V2Endpoint(
                server.url,
                "m",
                ca_file=pki / "ca.pem",
                cert_file=pki / "client.pem",
                key_file=pki / "client.key",
            )
            assert endpoint.infer(X).ok
            # pickles by paths, and the copy connects on its own
            assert pickle.loads(pickle.dumps(endpoint)).infer(X).ok
            assert not V2Endpoint(server.url, "m", ca_file=pki / "ca.pem").infer(X).ok

    def test_tls_settings_are_checked(self, pki: Path, tmp_path: Path) -> None:
        """TLS settings need https and existing files; key_file needs cert_file; an
        endpoint with an SSLContext refuses to pickle, saying what to give instead."""
        with pytest.raises(InvalidInput, match="need an https URL"):
            V2Endpoint("http://127.0.0.1:9", "m", ca_file=pki / "ca.pem")
        with pytest.raises(InvalidInput, match="'ca_file' is not a file"):
            V2Endpoint("https://127.0.0.1:9", "m", ca_file=tmp_path / "missing.pem")
        with pytest.raises(InvalidInput, match="'key_file' needs 'cert_file'"):
            V2Endpoint("https://127.0.0.1:9", "m", key_file=pki / "client.key")
        with pytest.raises(InvalidInput, match="'ssl_context' must be an ssl.SSLContext"):
            V2Endpoint("https://127.0.0.1:9", "m", ssl_context="yes")  # type: ignore[arg-type]
        endpoint = V2Endpoint("https://127.0.0.1:9", "m", ssl_context=ssl.create_default_context())
        with pytest.raises(TypeError, match="give ca_file="):
            pickle.dumps(endpoint)

    def test_other_arguments_are_checked(self) -> None:
        """Retries, backoff, load timeout and headers name the argument and the value."""
        with pytest.raises(InvalidInput, match="'n_retries' must be an integer >= 0"):
            V2Endpoint("http://127.0.0.1:9", "m", n_retries=-1)
        with pytest.raises(InvalidInput, match="'retry_backoff_s' must be a non-negative"):
            V2Endpoint("http://127.0.0.1:9", "m", retry_backoff_s=-0.1)
        with pytest.raises(InvalidInput, match="'load_timeout_s' must be a positive"):
            V2Endpoint("http://127.0.0.1:9", "m", load_timeout_s=0)
        with pytest.raises(InvalidInput, match="'headers' must be a mapping, a callable"):
            V2Endpoint("http://127.0.0.1:9", "m", headers=["x"])  # type: ignore[arg-type]
