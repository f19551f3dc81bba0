"""`V2GrpcEndpoint`: the Open Inference Protocol over gRPC, against real MLServer and Triton.

The first classes pin the wire format (the messages compiled from
mlchecks/serving/proto/open_inference.proto, both tensor encodings) and the constructor
without a server, and the transport (retries, deadlines, metadata, TLS and mutual TLS)
against a small stand-in gRPC server on 127.0.0.1 that plants what real servers do only
now and then (UNAVAILABLE during a restart, a slow answer). The ``integration`` classes
run against MLServer's gRPC port (the session's server, see conftest.py) and Triton's
(the ``triton`` fixture): the same checks as over HTTP, with only the endpoint object
changed. docs/servers/grpc.md's server blocks run here too.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _mlserver_models import ECHO, MODEL, free_port, model_dir
from _pages import run_server_blocks
from _pki import make_pki

from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, Endpoint, ModelServer
from mlchecks.result import Status
from mlchecks.serving import V2Deployment, V2Error, V2GrpcEndpoint, V2ModelsDeployment
from mlchecks.serving._grpc_wire import SERVICE

grpc = pytest.importorskip(
    "grpc", reason='grpcio is not installed (pip install "mlchecks-infra[grpc]")'
)

TYPED = {
    "fp32": np.array([[0.5, -1.25], [3.0, 1e-3]], dtype=np.float32),
    "fp64": np.array([0.1, 2.0 / 3.0, -1e300]),
    "int64": np.array([[2**40, -3]], dtype=np.int64),
    "int32": np.array([7, -8, 9], dtype=np.int32),
    "uint8": np.array([0, 255], dtype=np.uint8),
    "bool": np.array([[True], [False]]),
    "bytes": np.array(["héllo", "", "wörld"], dtype=object),
}


def echo_response(request: Any, *, raw: bool) -> Any:
    """The ``ModelInferResponse`` a server echoing ``request``'s inputs would send."""
    from mlchecks.serving._grpc_wire import protocol

    response = protocol().messages["ModelInferResponse"](model_name="echo", model_version="1")
    for tensor in request.inputs:
        out = response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if not raw:
            out.contents.CopyFrom(tensor.contents)
    if raw:
        response.raw_output_contents.extend(request.raw_input_contents)
    return response


class TestWire:
    def test_protocol_compiles_once_into_a_pool_of_its_own(self) -> None:
        """The .proto compiles at first use; its messages live outside protobuf's default
        pool, so another copy of the ``inference`` package (tritonclient, MLServer) in the
        same process cannot clash with them."""
        from google.protobuf import descriptor_pool

        from mlchecks.serving._grpc_wire import protocol

        compiled = protocol()
        assert compiled is protocol()
        assert {
            "ServerLive",
            "ServerReady",
            "ModelReady",
            "ServerMetadata",
            "ModelMetadata",
            "ModelInfer",
            "RepositoryIndex",
            "RepositoryModelLoad",
            "RepositoryModelUnload",
        } == set(compiled.methods)
        path, _, _ = compiled.methods["ModelInfer"]
        assert "/inference.GRPCInferenceService/ModelInfer" == path
        descriptor = compiled.messages["ModelInferRequest"].DESCRIPTOR
        assert descriptor.file.pool is not descriptor_pool.Default()

    @pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
    def test_every_datatype_round_trips(self, raw: bool) -> None:
        """Inputs encode (raw bytes or typed contents) and decode back to the same arrays,
        shapes and dtypes; BYTES come back as str."""
        from mlchecks.serving._grpc_wire import add_input, decode_outputs, protocol

        request = protocol().messages["ModelInferRequest"]()
        contents = [add_input(request, name, value, raw=raw) for name, value in TYPED.items()]
        if raw:
            request.raw_input_contents.extend(contents)
        decoded = decode_outputs(echo_response(request, raw=raw))
        assert list(TYPED) == list(decoded)
        for name, expected in TYPED.items():
            assert expected.shape == decoded[name].shape, name
            assert expected.dtype == decoded[name].dtype, name
            assert expected.tolist() == decoded[name].tolist(), name

    def test_fp16_travels_raw_only(self) -> None:
        """FP16 has no typed contents: typed encoding refuses it, raw carries it."""
        from mlchecks.serving._grpc_wire import add_input, decode_outputs, protocol

        half = np.array([0.5, -2.0], dtype=np.float16)
        request = protocol().messages["ModelInferRequest"]()
        with pytest.raises(InvalidInput, match="FP16, which gRPC carries only as raw bytes"):
            add_input(request, "h", half, raw=False)
        request = protocol().messages["ModelInferRequest"]()
        request.raw_input_contents.append(add_input(request, "h", half, raw=True))
        assert half.tolist() == decode_outputs(echo_response(request, raw=True))["h"].tolist()

    def test_malformed_answers_are_errors(self) -> None:
        """Contents that do not fill the shape, or raw contents that do not match the
        outputs one to one, raise ValueError naming the tensor."""
        from mlchecks.serving._grpc_wire import decode_outputs, protocol

        response = protocol().messages["ModelInferResponse"]()
        tensor = response.outputs.add(name="p", datatype="FP64", shape=[2, 2])
        tensor.contents.fp64_contents.extend([1.0, 2.0, 3.0])
        with pytest.raises(ValueError, match="output tensor 'p' \\(FP64, shape \\[2, 2\\]\\)"):
            decode_outputs(response)
        response.raw_output_contents.extend([b"", b""])
        with pytest.raises(ValueError, match="2 raw output contents for 1 output tensors"):
            decode_outputs(response)


class TestConstruction:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("grpc://127.0.0.1:8001", "grpc://127.0.0.1:8001"),
            ("127.0.0.1:8081", "grpc://127.0.0.1:8081"),
            ("grpcs://models.example.com", "grpcs://models.example.com:443"),
            ("grpc://[::1]:8001", "grpc://[::1]:8001"),
        ],
    )
    def test_url_forms(self, url: str, expected: str) -> None:
        """grpc://, grpcs:// (port 443 by default) and gRPC's own host:port are accepted."""
        assert expected == V2GrpcEndpoint(url, "clf").url

    @pytest.mark.parametrize(
        ("url", "match"),
        [
            ("http://127.0.0.1:8000", "must look like grpc://host:port"),
            ("grpc://127.0.0.1", "give the port"),
            ("grpc://127.0.0.1:8001/v2", "gRPC has no path"),
            ("grpc://127.0.0.1:99999", "invalid port"),
        ],
    )
    def test_bad_urls_are_refused(self, url: str, match: str) -> None:
        """A URL that is not a gRPC address is refused, saying what one looks like."""
        with pytest.raises(InvalidInput, match=match):
            V2GrpcEndpoint(url, "clf")

    def test_tls_settings(self, tmp_path: Any) -> None:
        """A CA file turns a host:port address into TLS; with grpc:// it is refused; a key
        needs its certificate."""
        ca = tmp_path / "ca.pem"
        ca.write_text("not checked until the channel opens")
        assert "grpcs://127.0.0.1:8001" == V2GrpcEndpoint("127.0.0.1:8001", "m", ca_file=ca).url
        with pytest.raises(InvalidInput, match="need a grpcs:// URL"):
            V2GrpcEndpoint("grpc://127.0.0.1:8001", "m", ca_file=ca)
        with pytest.raises(InvalidInput, match="'key_file' needs 'cert_file'"):
            V2GrpcEndpoint("grpcs://127.0.0.1:8001", "m", key_file=ca)
        with pytest.raises(InvalidInput, match="'ca_file' is not a file"):
            V2GrpcEndpoint("grpcs://127.0.0.1:8001", "m", ca_file=tmp_path / "missing.pem")

    def test_parameters_are_checked_at_construction(self) -> None:
        """A parameter value gRPC cannot carry fails when the endpoint is made."""
        with pytest.raises(InvalidInput, match="'parameters' value of 'x' must be a bool"):
            V2GrpcEndpoint("127.0.0.1:8001", "m", parameters={"x": [1, 2]})

    def test_unreachable_server_is_a_counted_connection_error(self) -> None:
        """Nothing listening: UNAVAILABLE is retried n_retries times, then a connection
        error whose retries are counted; the pickled copy opens its own channel."""
        endpoint = V2GrpcEndpoint(f"127.0.0.1:{free_port()}", "m", retry_backoff_s=0.01)
        response = endpoint.infer(np.zeros((1, 4)))
        assert ("connection", 2) == (response.error_kind, response.n_retries)
        assert "gRPC UNAVAILABLE" in str(response.error)
        copy = pickle.loads(pickle.dumps(endpoint))
        assert "connection" == copy.infer(np.zeros((1, 4))).error_kind
        assert not copy.ready()

    def test_deployments_take_a_grpc_endpoint(self) -> None:
        """V2Deployment and V2ModelsDeployment accept a V2GrpcEndpoint like a V2Endpoint."""
        endpoint = V2GrpcEndpoint("127.0.0.1:8001", "clf")
        assert "1" == V2Deployment(endpoint, live="1").live_version()
        models = V2ModelsDeployment({"1": endpoint, "2": V2GrpcEndpoint("127.0.0.1:8001", "c2")})
        assert endpoint is models.endpoints["1"]

    def test_importing_the_package_does_not_import_grpc(self) -> None:
        """`mlchecks.serving` (V2Deployment, even the V2GrpcEndpoint class) loads without
        grpcio; without it, making an endpoint says how to install it."""
        code = textwrap.dedent(
            """
            import sys
            import mlchecks.serving as serving
            serving.V2Deployment, serving.V2GrpcEndpoint
            loaded = [m for m in ("grpc", "grpc_tools", "google.protobuf") if m in sys.modules]
            assert not loaded, loaded
            sys.modules["grpc"] = None  # as if grpcio were not installed
            try:
                serving.V2GrpcEndpoint("127.0.0.1:8001", "clf")
            except ImportError as exc:
                print(exc)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert 0 == done.returncode, done.stderr
        assert 'pip install "mlchecks-infra[grpc]"' in done.stdout


# ------------------------------------------------------------------ stand-in server


class StandIn:
    """A gRPC server on 127.0.0.1 answering ``ModelInfer`` with the request's inputs.

    It plants what real servers do only now and then: ``UNAVAILABLE`` for the first
    ``n_unavailable`` calls to model ``flaky`` (a restart), a slow answer for ``slow``;
    it records each call's metadata. With ``credentials`` it serves TLS.
    """

    def __init__(self, credentials: Any = None) -> None:
        from concurrent import futures

        from mlchecks.serving._grpc_wire import protocol

        messages = protocol().messages
        self.n_unavailable = 0
        self.metadata: list[dict[str, str]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self.infer,
            request_deserializer=messages["ModelInferRequest"].FromString,
            response_serializer=messages["ModelInferResponse"].SerializeToString,
        )
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler})]
        )
        if credentials is None:
            port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.target = f"127.0.0.1:{port}"

    def infer(self, request: Any, context: Any) -> Any:
        self.metadata.append(dict(context.invocation_metadata()))
        if request.model_name == "flaky" and self.n_unavailable > 0:
            self.n_unavailable -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        if request.model_name == "slow":
            time.sleep(1.0)
        return echo_response(request, raw=bool(request.raw_input_contents))

    def __enter__(self) -> StandIn:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop(grace=None)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_credentials(pki: Path, *, client_cert: bool) -> Any:
    pair = ((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=(pki / "ca.pem").read_bytes() if client_cert else None,
        require_client_auth=client_cert,
    )


X = np.array([[1.0, 2.0]])


class TestTransport:
    def test_unavailable_is_retried_and_counted(self) -> None:
        """Two UNAVAILABLE answers while the server restarts, then the answer: the request
        succeeds and says it was retried twice; more than n_retries is a connection
        error that still counts them."""
        with StandIn() as server:
            server.n_unavailable = 2
            flaky = V2GrpcEndpoint(server.target, "flaky", input_name="x", retry_backoff_s=0.01)
            response = flaky.infer(X)
            assert (None, 2) == (response.error, response.n_retries)
            np.testing.assert_array_equal(X, response.outputs)
            server.n_unavailable = 5
            failed = flaky.infer(X)
            assert ("connection", 2) == (failed.error_kind, failed.n_retries)
            assert "gRPC UNAVAILABLE: restarting" in str(failed.error)

    def test_deadline_is_a_timeout(self) -> None:
        """An answer slower than timeout_s is a timeout naming it, not retried."""
        with StandIn() as server:
            slow = V2GrpcEndpoint(server.target, "slow", input_name="x", timeout_s=0.2)
            response = slow.infer(X)
            assert ("timeout", 0) == (response.error_kind, response.n_retries)
            assert "within timeout_s=0.2 s (ModelInfer)" in str(response.error)

    def test_headers_arrive_as_metadata(self) -> None:
        """Static headers and a callable's (called per request) arrive, keys in lower
        case; every request carries a fresh id, echoed back."""
        tokens = iter(["t1", "t2"])
        with StandIn() as server:
            static = V2GrpcEndpoint(server.target, "m", input_name="x", headers={"X-Team": "ml"})
            assert static.infer(X).ok
            refreshing = V2GrpcEndpoint(
                server.target,
                "m",
                input_name="x",
                headers=lambda: {"Authorization": f"Bearer {next(tokens)}"},
            )
            first, second = refreshing.infer(X), refreshing.infer(X)
        assert "ml" == server.metadata[0]["x-team"]
        assert ["Bearer t1", "Bearer t2"] == [m["authorization"] for m in server.metadata[1:]]
        assert first.request_id != second.request_id

    def test_tls_trusts_the_ca_it_is_given(self, pki: Path) -> None:
        """grpcs with ca_file succeeds; without it the system's roots reject the test CA."""
        with StandIn(tls_credentials(pki, client_cert=False)) as server:
            trusted = V2GrpcEndpoint(server.target, "m", input_name="x", ca_file=pki / "ca.pem")
            assert trusted.infer(X).ok
            untrusted = V2GrpcEndpoint(f"grpcs://{server.target}", "m", input_name="x")
            assert "connection" == untrusted.infer(X).error_kind

    def test_mutual_tls(self, pki: Path) -> None:
        """A server requiring a client certificate answers only with cert_file and
        key_file; the pickled copy connects on its own."""
        with StandIn(tls_credentials(pki, client_cert=True)) as server:
            endpoint = V2GrpcEndpoint(
                server.target,
                "m",
                input_name="x",
                ca_file=pki / "ca.pem",
                cert_file=pki / "client.pem",
                key_file=pki / "client.key",
            )
            assert endpoint.infer(X).ok
            assert pickle.loads(pickle.dumps(endpoint)).infer(X).ok
            anonymous = V2GrpcEndpoint(server.target, "m", input_name="x", ca_file=pki / "ca.pem")
            assert not anonymous.infer(X).ok


# -------------------------------------------------------------------------- MLServer


def endpoint(mlserver: Any, model: str = MODEL, **kwargs: Any) -> V2GrpcEndpoint:
    """A V2GrpcEndpoint for ``model`` on the session's MLServer (its gRPC port)."""
    return V2GrpcEndpoint(mlserver.process.grpc_url, model, **kwargs)


def rows(inputs: np.ndarray) -> list[np.ndarray]:
    return [inputs[i : i + 1] for i in range(len(inputs))]


@pytest.mark.integration
class TestOnMLServer:
    def test_is_a_model_server(self, mlserver: Any) -> None:
        """V2GrpcEndpoint is a ModelServer (and Endpoint); behind V2Deployment a Deployment."""
        grpc_endpoint = endpoint(mlserver)
        assert isinstance(grpc_endpoint, ModelServer)
        assert isinstance(grpc_endpoint, Endpoint)
        assert isinstance(V2Deployment(grpc_endpoint), Deployment)

    @pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
    def test_infer_answers_the_offline_predictions(self, mlserver: Any, raw: bool) -> None:
        """Raw or typed requests: the answer is version 1's offline predict_proba, with
        the version that served it, the request id and no retries."""
        response = endpoint(mlserver, raw_inputs=raw).infer(mlserver.inputs, version="1")
        assert (None, "1", 0) == (response.error, response.version, response.n_retries)
        np.testing.assert_allclose(mlserver.offline("1"), response.outputs, rtol=1e-12)
        assert response.request_id is not None
        assert 32 == len(response.request_id)

    @pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
    def test_echo_round_trips_every_datatype(self, mlserver: Any, raw: bool) -> None:
        """A custom runtime answering its inputs unchanged returns every tensor with its
        datatype, shape and values (MLServer answers raw to raw, typed to typed)."""
        response = endpoint(mlserver, ECHO, raw_inputs=raw).infer(TYPED)
        assert response.error is None, response.error
        for name, expected in TYPED.items():
            assert expected.dtype == response.outputs[name].dtype, name
            assert expected.tolist() == response.outputs[name].tolist(), name

    def test_versions_metadata_and_readiness(self, mlserver: Any) -> None:
        """versions() lists the ready versions; metadata() is keyed as in the JSON
        binding; readiness is False for unknown versions and models, never an error."""
        grpc_endpoint = endpoint(mlserver)
        assert ("1", "2") == grpc_endpoint.versions()
        assert ("1", "2") == grpc_endpoint.repository_versions()
        metadata = grpc_endpoint.metadata("2")
        assert {"name", "versions", "platform", "inputs", "outputs"} <= set(metadata)
        assert MODEL == metadata["name"]
        assert grpc_endpoint.ready()
        assert grpc_endpoint.ready("2")
        assert not grpc_endpoint.ready("9")
        assert not endpoint(mlserver, "nope").ready()
        assert 0.0 <= grpc_endpoint.wait_ready(10.0, version="1")
        with pytest.raises(TimeoutError, match="model 'nope' .* not ready"):
            endpoint(mlserver, "nope").wait_ready(0.3)

    def test_failures_become_error_responses(self, mlserver: Any) -> None:
        """An unknown model is the client's error, a 3-feature model fed 4 features the
        server's; neither raises, and metadata of an unknown model raises V2Error."""
        missing = endpoint(mlserver, "nope").infer(mlserver.inputs[:1])
        assert "client" == missing.error_kind
        assert "gRPC NOT_FOUND" in str(missing.error)
        with mlserver.staged("3", load=True):
            broken = endpoint(mlserver).infer(mlserver.inputs[:1], version="3")
        assert "server" == broken.error_kind
        assert "gRPC INTERNAL: X has 4 features" in str(broken.error)
        with pytest.raises(V2Error, match="metadata of model 'nope': gRPC NOT_FOUND"):
            endpoint(mlserver, "nope").metadata()

    def test_headers_go_with_every_call(self, mlserver: Any) -> None:
        """Static metadata and a callable (called before every call, a refreshing token)."""
        calls: list[int] = []

        def token() -> dict[str, str]:
            calls.append(1)
            return {"Authorization": f"Bearer {len(calls)}"}

        grpc_endpoint = endpoint(mlserver, headers=token, input_name="input-0")
        for _ in range(3):
            assert grpc_endpoint.infer(mlserver.inputs[:1]).ok
        assert 3 == len(calls)
        static = endpoint(mlserver, headers={"X-Team": "ml"}, input_name="input-0")
        assert static.infer(mlserver.inputs[:1]).ok

    def test_load_and_unload(self, mlserver: Any) -> None:
        """load() (re)loads from the repository and checks the version; a version not in
        it is refused; unload() of one of two versions is unsupported (the extension
        unloads whole models); unload_all()/load_model() take a model out and back."""
        grpc_endpoint = endpoint(mlserver)
        grpc_endpoint.load("2")
        with pytest.raises(InvalidInput, match="version '9' of model 'clf' is not ready"):
            grpc_endpoint.load("9")
        with pytest.raises(V2Error, match="'2' would go too") as raised:
            grpc_endpoint.unload("1")
        assert "unsupported" == raised.value.kind
        echo = endpoint(mlserver, ECHO)
        echo.unload_all()
        try:
            assert not echo.ready()
        finally:
            echo.load_model()
        assert echo.ready()


# ---------------------------------------------------------- the checks on MLServer


def canary(mlserver: Any, candidate: str, *, rows_per_request: int = 1, **overrides: Any) -> Any:
    """A CanaryCheck of ``candidate`` against live version "1", over gRPC."""
    from mlchecks.checks.canary import CanaryCheck

    live = np.random.default_rng(7).normal(size=(1500, rows_per_request, 4))
    traffic = list(live)  # one request per item: rows_per_request rows of 4 features
    settings: dict[str, Any] = {
        "probe_inputs": rows(mlserver.inputs[:50]),
        "offline_predictions": mlserver.offline(candidate)[:50, None, :],
        "traffic": lambda: iter(traffic),
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150,
        "budget_requests": 1500,
        "alpha": 0.01,
        "max_latency_ratio": 3.0,
    }
    settings.update(overrides)
    return CanaryCheck(V2Deployment(endpoint(mlserver), live="1"), candidate, **settings)


@pytest.mark.integration
class TestChecksOnMLServer:
    def test_healthy_candidate_passes_the_canary(self, mlserver: Any) -> None:
        """The healthy retrain loads over gRPC, matches offline and passes the trickle."""
        with mlserver.staged("5"):
            result = canary(mlserver, "5").run()
        assert Status.PASS == result.status, str(result)
        assert 1.0 == result.metrics["probe.agreement"]

    @pytest.mark.parametrize(("mode", "rows_per_request"), [("split", 1), ("shadow", 8)])
    def test_skewed_candidate_fails_the_canary(
        self, mlserver: Any, mode: str, rows_per_request: int
    ) -> None:
        """The model trained on a wrong label serves its offline predictions (stage 0
        passes) and fails the trickle: on its shifted class mix (split mode, one row per
        request), on the rows where it disagrees with version 1 (shadow mode, 8 rows)."""
        with mlserver.staged("4"):
            result = canary(
                mlserver,
                "4",
                mode=mode,
                rows_per_request=rows_per_request,
                n_candidate_requests=400 if mode == "split" else 150,
            ).run()
        assert Status.PASS == result.finding("probe.agreement").status
        assert Status.FAIL == result.status, str(result)
        assert Status.FAIL == result.finding("trickle").status

    def test_rollback_passes(self, mlserver: Any) -> None:
        """Deploy the skewed version, roll back to "1" under load: no request lost."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment = V2Deployment(endpoint(mlserver), live="1")
        with mlserver.staged("4", load=True):
            result = RollbackCheck(
                deployment,
                deployment,
                "4",
                probe_inputs=rows(mlserver.inputs[:20]),
                n_repeats=2,
                request_rate=300.0,
                n_settle_requests=30,
            ).run()
        assert Status.PASS == result.status, str(result)
        assert "1" == deployment.live_version()

    def test_stale_pointer_fails_the_rollback(self, mlserver: Any) -> None:
        """The pointer moves back to "1", but clients calling without a version get
        MLServer's highest version, "2": the rollback never lands and the check FAILs."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment = V2Deployment(endpoint(mlserver), live="1")
        result = RollbackCheck(
            deployment,
            endpoint(mlserver),
            "2",
            probe_inputs=rows(mlserver.inputs[:20]),
            n_repeats=1,
            request_rate=300.0,
            budget_s=1.5,
            n_settle_requests=20,
        ).run()
        assert Status.FAIL == result.status, str(result)
        assert Status.FAIL == result.finding("rollback_time").status

    def test_docs_page_runs(self, mlserver: Any) -> None:
        """docs/servers/grpc.md's server blocks give the verdicts the page states."""
        replacements = {
            "127.0.0.1:8081": mlserver.process.grpc_url.removeprefix("grpc://"),
            "models/clf/v5/offline_proba.npy": str(
                model_dir(mlserver.staging, MODEL, "5") / "offline_proba.npy"
            ),
            "eval_inputs.npy": str(mlserver.staging / "eval_inputs.npy"),
        }
        with mlserver.staged("5"):
            scope = run_server_blocks("docs/servers/grpc.md", replacements)
        assert ("1", (3, 2)) == (scope["response"].version, scope["response"].outputs.shape)
        assert Status.PASS == scope["result"].status, str(scope["result"])
        assert Status.PASS == scope["rollback_result"].status, str(scope["rollback_result"])


# ---------------------------------------------------------------------------- Triton

N_PROBES = 40


def triton_deployment(triton: Any, live: str = "1", **kwargs: Any) -> V2Deployment:
    """The live pointer in front of ``clf`` on Triton's gRPC port, answering ``proba``."""
    return V2Deployment(V2GrpcEndpoint(triton.grpc_target, "clf", output="proba", **kwargs), live)


def triton_canary(
    triton: Any, candidate: str, *, rows_per_request: int = 1, **overrides: Any
) -> Any:
    """A CanaryCheck of ``candidate`` against live version "1", over gRPC."""
    from mlchecks.checks.canary import CanaryCheck

    picks = np.random.default_rng(7).integers(0, len(triton.inputs), (1500, rows_per_request))
    traffic = [triton.inputs[p] for p in picks]
    settings: dict[str, Any] = {
        "probe_inputs": rows(triton.inputs[:N_PROBES]),
        "offline_predictions": triton.offline(candidate)[:N_PROBES, None, :],
        "traffic": lambda: iter(traffic),
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150,
        "budget_requests": 1500,
        "alpha": 0.01,
        "max_latency_ratio": 3.0,
        "max_tail_ratio": None,
    }
    settings.update(overrides)
    return CanaryCheck(triton_deployment(triton), candidate, **settings)


@pytest.mark.integration
class TestOnTriton:
    @pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
    def test_infer_over_grpc(self, triton: Any, raw: bool) -> None:
        """Inputs named and typed from Triton's metadata ("features", FP64, float32 rows
        cast); Triton answers raw_output_contents, decoded to both named outputs."""
        grpc_endpoint = V2GrpcEndpoint(triton.grpc_target, "clf", raw_inputs=raw)
        assert {"features": "FP64"} == grpc_endpoint.declared_inputs()
        assert ("1", "2", "3") == grpc_endpoint.versions()
        response = grpc_endpoint.infer(triton.inputs[:8].astype(np.float32), version="2")
        assert (None, "2") == (response.error, response.version)
        assert {"proba", "label"} == set(response.outputs)
        assert (8, 1) == response.outputs["label"].shape
        np.testing.assert_allclose(
            triton.offline("2")[:8], response.outputs["proba"], rtol=1e-5, atol=1e-6
        )
        one_row = grpc_endpoint.infer(triton.inputs[0], version="1")  # sent as [1, 30]
        assert (None, (1, 2)) == (one_row.error, one_row.outputs["proba"].shape)

    def test_healthy_candidate_passes_the_canary(self, triton: Any) -> None:
        """The healthy retrain (2) passes both stages against live version 1."""
        result = triton_canary(triton, "2").run()
        assert Status.PASS == result.status, str(result)

    @pytest.mark.parametrize("mode", ["split", "shadow"])
    @pytest.mark.parametrize("rows_per_request", [1, 8])
    def test_inverted_labels_fail_the_canary(
        self, triton: Any, mode: str, rows_per_request: int
    ) -> None:
        """The inverted-labels version serves its offline predictions (stage 0 passes)
        and fails the trickle, one row or eight rows per request.

        Split mode sees only the class mix (63% against 37% benign, PSI ~0.3): showing it
        beyond max_psi=0.1 at alpha 0.01 takes ~500 candidate requests (at 150 the shift
        is not yet detected and the canary passes); shadow mode compares each request.
        """
        n_candidate = 600 if mode == "split" else 150
        result = triton_canary(
            triton,
            "3",
            mode=mode,
            rows_per_request=rows_per_request,
            n_candidate_requests=n_candidate,
        ).run()
        assert Status.PASS == result.finding("probe.agreement").status
        assert Status.FAIL == result.status, str(result)
        assert Status.FAIL == result.finding("trickle").status, str(result)

    def test_rollback_passes(self, triton: Any) -> None:
        """Deploy 3, roll back to 1 under load over gRPC: no request lost."""
        from mlchecks.checks.rollback import RollbackCheck

        deployment = triton_deployment(triton)
        result = RollbackCheck(
            deployment,
            deployment,
            "3",
            probe_inputs=rows(triton.inputs[:20]),
            n_repeats=2,
            request_rate=200.0,
            n_settle_requests=30,
            budget_s=3.0,
        ).run()
        assert Status.PASS == result.status, str(result)
        assert "1" == deployment.live_version()

    def test_stale_pointer_fails_the_rollback(self, triton: Any) -> None:
        """Clients that name no version get Triton's highest version, the candidate 3,
        whatever the pointer says: the rollback never reaches them and the check FAILs."""
        from mlchecks.checks.rollback import RollbackCheck

        clients = V2GrpcEndpoint(triton.grpc_target, "clf", output="proba")
        result = RollbackCheck(
            triton_deployment(triton),
            clients,
            "3",
            probe_inputs=rows(triton.inputs[:20]),
            n_repeats=1,
            request_rate=200.0,
            n_settle_requests=30,
            budget_s=3.0,
        ).run()
        assert Status.FAIL == result.status, str(result)
        assert Status.FAIL == result.finding("predictions_after_rollback").status
