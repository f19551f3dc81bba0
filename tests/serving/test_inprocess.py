"""Tests for mlchecks.serving.inprocess: `InProcessServer`."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pytest

from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Response
from mlchecks.serving import InProcessServer


def constant(value: float) -> Any:
    """A model answering ``value`` for every row of its batch."""

    def model(inputs: Any) -> np.ndarray:
        return np.full(len(inputs), value)

    return model


def numbered(version: str) -> Any:
    """A loader: version "3" answers 3.0 for every row."""
    return constant(float(version))


class Predictor:
    """A model object with a predict() method (scikit-learn style) that is also callable."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, inputs: Any) -> np.ndarray:
        return np.full(len(inputs), self.value)

    def __call__(self, inputs: Any) -> np.ndarray:
        raise AssertionError("predict() must be preferred over __call__")


def two_versions(**kwargs: Any) -> InProcessServer:
    """A server with versions "1" (answers 1.0) and "2" (answers 2.0), "1" live."""
    server = InProcessServer(**kwargs).add("1", constant(1.0)).add("2", constant(2.0))
    server.set_live("1")
    return server


BATCH = np.zeros((3, 2))


class TestConstruction:
    def test_rejects_non_callable_loader(self) -> None:
        """A loader that is not callable is rejected, naming the argument."""
        with pytest.raises(InvalidInput, match=r"'loader' must be callable or None \(got 3"):
            InProcessServer(loader=3)  # type: ignore[arg-type]

    @pytest.mark.parametrize("seed", [1.5, "7", True])
    def test_rejects_non_integer_seed(self, seed: Any) -> None:
        """A seed that is not an integer is rejected, naming the argument."""
        with pytest.raises(InvalidInput, match="'seed' must be an integer or None"):
            InProcessServer(seed=seed)

    def test_starts_empty(self) -> None:
        """A new server has no versions, nothing live, no routes and no stats."""
        server = InProcessServer()
        assert () == server.versions()
        assert server.live_version() is None
        assert {} == server.weights()
        assert server.route() is None
        assert {} == server.stats()

    def test_repr_shows_live_and_loaded_versions(self) -> None:
        """The repr names the server, the live version and the loaded versions."""
        expected = "InProcessServer(name='canary', live='1', versions=['1', '2'])"
        server = InProcessServer(name="canary").add("1", abs).add("2", abs)
        server.set_live("1")
        assert expected == repr(server)

    def test_repr_shows_a_weighted_split(self) -> None:
        """While a split is active, the repr shows the weights."""
        server = two_versions()
        server.set_weights({"1": 3, "2": 1})
        assert repr(server).endswith("weights={'1': 0.75, '2': 0.25})")


class TestLoad:
    def test_loads_through_the_loader(self) -> None:
        """load() calls the loader with the version and serves what it returns."""
        calls: list[str] = []

        def loader(version: str) -> Any:
            calls.append(version)
            return numbered(version)

        server = InProcessServer(loader)
        server.load("3")
        assert ["3"] == calls
        assert ("3",) == server.versions()
        np.testing.assert_array_equal([3.0, 3.0, 3.0], server.infer(BATCH, version="3").outputs)

    def test_without_loader_raises(self) -> None:
        """load() on a server without a loader raises and points to add()."""
        with pytest.raises(InvalidInput, match=r"cannot load version '1': .*no loader.*add\(\)"):
            InProcessServer().load("1")

    def test_loader_returning_a_non_model_raises(self) -> None:
        """A loader result that is neither callable nor has predict() is rejected."""
        server = InProcessServer(lambda version: 42)
        with pytest.raises(InvalidInput, match=r"'loader' returned 42 .* for version '1'"):
            server.load("1")
        assert () == server.versions()

    def test_loader_exceptions_propagate(self) -> None:
        """An exception raised by the loader reaches the caller unchanged."""

        def loader(version: str) -> Any:
            raise FileNotFoundError(f"no checkpoint for {version}")

        with pytest.raises(FileNotFoundError, match="no checkpoint for 9"):
            InProcessServer(loader).load("9")

    def test_reload_replaces_the_model_and_keeps_the_order(self) -> None:
        """Loading a loaded version again serves the new model in the same position."""
        values = iter([1.0, 5.0])
        server = InProcessServer(lambda version: constant(next(values)))
        server.load("a")
        server.add("b", abs)
        server.load("a")
        assert ("a", "b") == server.versions()
        np.testing.assert_array_equal([5.0, 5.0, 5.0], server.infer(BATCH, version="a").outputs)

    @pytest.mark.parametrize("version", ["", 1, None])
    def test_rejects_bad_version(self, version: Any) -> None:
        """A version that is not a non-empty string is rejected, naming the argument."""
        with pytest.raises(InvalidInput, match="'version' must be a non-empty string"):
            InProcessServer(numbered).load(version)


class TestAdd:
    def test_returns_the_server(self) -> None:
        """add() returns the server itself so registrations chain."""
        server = InProcessServer()
        assert server is server.add("1", abs)

    def test_prefers_predict_over_call(self) -> None:
        """An object with predict() is served through predict()."""
        server = InProcessServer().add("1", Predictor(7.0))
        np.testing.assert_array_equal([7.0, 7.0, 7.0], server.infer(BATCH, version="1").outputs)

    def test_rejects_non_model(self) -> None:
        """An object that is neither callable nor has predict() is rejected."""
        with pytest.raises(InvalidInput, match=r"'model' must be callable or have a predict"):
            InProcessServer().add("1", object())

    def test_replacing_a_version_keeps_it_live(self) -> None:
        """Re-adding the live version swaps its model without changing what is live."""
        server = two_versions()
        server.add("1", constant(9.0))
        assert "1" == server.live_version()
        np.testing.assert_array_equal([9.0, 9.0, 9.0], server.infer(BATCH).outputs)


class TestVersions:
    def test_in_load_order(self) -> None:
        """versions() lists loaded versions in the order they were first loaded."""
        server = InProcessServer(numbered).add("z", abs).add("a", abs)
        server.load("5")
        assert ("z", "a", "5") == server.versions()

    def test_unloaded_version_disappears(self) -> None:
        """An unloaded version is no longer listed; loading it again appends it."""
        server = InProcessServer().add("a", abs).add("b", abs).add("c", abs)
        server.unload("a")
        assert ("b", "c") == server.versions()
        server.add("a", abs)
        assert ("b", "c", "a") == server.versions()


class TestSetLive:
    def test_switches_unversioned_traffic(self) -> None:
        """After set_live(), unversioned requests are served by the new live version."""
        server = two_versions()
        assert "1" == server.infer(BATCH).version
        server.set_live("2")
        assert "2" == server.live_version()
        response = server.infer(BATCH)
        assert "2" == response.version
        np.testing.assert_array_equal([2.0, 2.0, 2.0], response.outputs)

    def test_unknown_version_names_it_and_the_loaded_ones(self) -> None:
        """set_live() of a version that is not loaded says which versions are."""
        server = two_versions()
        with pytest.raises(InvalidInput, match=r"'3': it is not loaded \(loaded: '1', '2'\)"):
            server.set_live("3")
        assert "1" == server.live_version()

    def test_clears_a_weighted_split(self) -> None:
        """set_live() ends a split: all unversioned traffic goes to the live version."""
        server = two_versions()
        server.set_weights({"1": 0.5, "2": 0.5})
        server.set_live("1")
        assert {"1": 1.0} == server.weights()
        assert {"1"} == {server.infer(BATCH).version for _ in range(50)}

    def test_request_in_flight_finishes_on_its_version(self) -> None:
        """A switch made while a request runs does not change the version serving it."""
        server = InProcessServer().add("b", constant(2.0))

        def switching_model(inputs: Any) -> np.ndarray:
            server.set_live("b")
            return np.full(len(inputs), 1.0)

        server.add("a", switching_model)
        server.set_live("a")
        first = server.infer(BATCH)
        assert ("a", 1.0) == (first.version, first.outputs[0])
        assert "b" == server.infer(BATCH).version


class TestUnload:
    def test_refuses_the_live_version(self) -> None:
        """The live version cannot be unloaded."""
        server = two_versions()
        with pytest.raises(InvalidInput, match="cannot unload version '1': it is the live"):
            server.unload("1")
        assert ("1", "2") == server.versions()

    def test_refuses_a_version_with_traffic(self) -> None:
        """A version that still receives a share of traffic cannot be unloaded."""
        server = two_versions()
        server.set_weights({"1": 0.9, "2": 0.1})
        with pytest.raises(InvalidInput, match="cannot unload version '2': it receives 0.1 "):
            server.unload("2")

    def test_allows_a_version_with_zero_weight(self) -> None:
        """A version named in the split with weight 0 can be unloaded; the split remains."""
        server = two_versions().add("3", abs)
        server.set_weights({"1": 1.0, "3": 0.0})
        server.unload("3")
        assert {"1": 1.0} == server.weights()

    def test_refuses_an_unknown_version(self) -> None:
        """Unloading a version that is not loaded names it and the loaded ones."""
        with pytest.raises(InvalidInput, match=r"'7': it is not loaded \(loaded: '1', '2'\)"):
            two_versions().unload("7")

    def test_unloaded_version_is_not_served(self) -> None:
        """Explicit requests for an unloaded version get a client error."""
        server = two_versions()
        server.unload("2")
        response = server.infer(BATCH, version="2")
        assert "client" == response.error_kind
        assert "version '2' is not loaded (loaded: '1')" == response.error

    def test_request_in_flight_survives_its_unload(self) -> None:
        """A request already routed to a version finishes even if the version is unloaded."""
        server = two_versions()

        def unloading_model(inputs: Any) -> np.ndarray:
            server.unload("3")
            return np.full(len(inputs), 3.0)

        server.add("3", unloading_model)
        response = server.infer(BATCH, version="3")
        assert (True, "3") == (response.ok, response.version)
        assert ("1", "2") == server.versions()


class TestInfer:
    def test_explicit_version(self) -> None:
        """An explicit version is served by that version, whatever is live."""
        response = two_versions().infer(BATCH, version="2")
        assert "2" == response.version
        np.testing.assert_array_equal([2.0, 2.0, 2.0], response.outputs)

    def test_outputs_returned_as_produced(self) -> None:
        """The model's output object is returned unchanged."""
        produced = np.arange(3)
        server = InProcessServer().add("1", lambda inputs: produced)
        assert produced is server.infer(BATCH, version="1").outputs

    def test_unknown_version_is_a_client_error(self) -> None:
        """A request for a version that is not loaded names it and the loaded ones."""
        response = two_versions().infer(BATCH, version="3")
        expected = Response(
            error="version '3' is not loaded (loaded: '1', '2')", error_kind="client"
        )
        assert expected == response

    def test_non_string_version_is_a_client_error(self) -> None:
        """A version of the wrong type is reported in the response, not raised."""
        response = two_versions().infer(BATCH, version=2)  # type: ignore[arg-type]
        assert "version 2 is not loaded (loaded: '1', '2')" == response.error

    def test_nothing_live_is_a_server_error(self) -> None:
        """An unversioned request while nothing is live fails as a server error."""
        response = InProcessServer().add("1", abs).infer(BATCH)
        assert ("server", None) == (response.error_kind, response.version)
        assert "no live version: call set_live() first (loaded: '1')" == response.error

    def test_model_exception_becomes_a_server_error(self) -> None:
        """An exception in the model becomes an error response naming its type and message."""

        def broken(inputs: Any) -> Any:
            raise ValueError("expected 4 features, got 2")

        server = two_versions().add("bad", broken)
        response = server.infer(BATCH, version="bad")
        assert "ValueError: expected 4 features, got 2" == response.error
        assert ("server", "bad", None) == (
            response.error_kind,
            response.version,
            response.outputs,
        )
        assert response.latency_s >= 0.0

    def test_latency_is_a_non_negative_float(self) -> None:
        """Every successful response carries a non-negative float latency."""
        response = two_versions().infer(BATCH)
        assert type(response.latency_s) is float
        assert response.latency_s >= 0.0

    def test_base_exceptions_propagate(self) -> None:
        """KeyboardInterrupt and friends are not swallowed."""

        def interrupted(inputs: Any) -> Any:
            raise KeyboardInterrupt

        server = InProcessServer().add("1", interrupted)
        with pytest.raises(KeyboardInterrupt):
            server.infer(BATCH, version="1")


class TestWeights:
    def test_normalized_and_zero_weights_dropped(self) -> None:
        """weights() reports normalized shares of the versions that receive traffic."""
        server = two_versions().add("3", abs)
        server.set_weights({"1": 6, "2": 2, "3": 0})
        assert {"1": 0.75, "2": 0.25} == server.weights()

    def test_live_version_unchanged_by_a_split(self) -> None:
        """A split does not move the live pointer."""
        server = two_versions()
        server.set_weights({"2": 1.0})
        assert "1" == server.live_version()
        assert "2" == server.infer(BATCH).version

    def test_routing_frequencies_match_the_weights(self) -> None:
        """With weights 0.9/0.1, 10,000 requests send 1,000 +- 5 sigma to the canary."""
        server = two_versions(seed=12345)
        server.set_weights({"1": 0.9, "2": 0.1})
        served = [server.infer(BATCH).version for _ in range(10_000)]
        sigma = math.sqrt(10_000 * 0.1 * 0.9)
        assert abs(served.count("2") - 1_000) <= 5 * sigma
        assert 10_000 == served.count("1") + served.count("2")

    def test_routing_reproducible_with_the_same_seed(self) -> None:
        """Two servers with the same seed route the same request sequence identically."""
        routes = []
        for seed in (7, 7, 8):
            server = two_versions(seed=seed)
            server.set_weights({"1": 0.5, "2": 0.5})
            routes.append([server.infer(BATCH).version for _ in range(200)])
        assert routes[0] == routes[1]
        assert routes[0] != routes[2]

    def test_route_follows_the_weights(self) -> None:
        """route() draws versions in proportion to their weights."""
        server = two_versions(seed=3)
        server.set_weights({"1": 0.2, "2": 0.8})
        drawn = [server.route() for _ in range(5_000)]
        assert abs(drawn.count("2") - 4_000) <= 5 * math.sqrt(5_000 * 0.2 * 0.8)

    @pytest.mark.parametrize(
        ("weights", "message"),
        [
            ([("1", 1.0)], "'weights' must be a mapping"),
            ({}, "'weights' must name at least one version"),
            ({"1": -0.1}, r"finite numbers >= 0 \(got -0.1 for version '1'\)"),
            ({"1": math.nan}, r"finite numbers >= 0 \(got nan for version '1'\)"),
            ({"1": math.inf}, r"finite numbers >= 0 \(got inf for version '1'\)"),
            ({"1": "heavy"}, r"finite numbers >= 0 \(got 'heavy' for version '1'\)"),
            ({"1": True}, r"finite numbers >= 0 \(got True for version '1'\)"),
            ({"1": 0, "2": 0.0}, r"'weights' must have a positive sum \(got 0.0\)"),
            ({"3": 1.0}, r"names version '3' that is not loaded \(loaded: '1', '2'\)"),
            ({1: 1.0}, "'weights' keys must be non-empty version strings"),
        ],
    )
    def test_rejects_bad_weights(self, weights: Any, message: str) -> None:
        """Bad weights raise InvalidInput naming the problem, and routing is unchanged."""
        server = two_versions()
        generation = server.generation
        with pytest.raises(InvalidInput, match=message):
            server.set_weights(weights)
        assert {"1": 1.0} == server.weights()
        assert generation == server.generation


class TestStats:
    def test_counts_requests_and_errors_per_version(self) -> None:
        """stats() counts requests and model errors for each version that served."""
        server = two_versions().add("bad", lambda inputs: 1 / 0)
        for _ in range(3):
            server.infer(BATCH)
        server.infer(BATCH, version="2")
        server.infer(BATCH, version="bad")
        server.infer(BATCH, version="missing")
        expected = {
            "1": {"requests": 3, "errors": 0},
            "2": {"requests": 1, "errors": 0},
            "bad": {"requests": 1, "errors": 1},
        }
        assert expected == server.stats()

    def test_kept_after_unload(self) -> None:
        """A version's counts survive its unload."""
        server = two_versions()
        server.infer(BATCH, version="2")
        server.unload("2")
        assert {"requests": 1, "errors": 0} == server.stats()["2"]


class TestGeneration:
    def test_every_change_adds_one(self) -> None:
        """Each add, load, set_live, set_weights and unload makes a new generation."""
        server = InProcessServer(numbered)
        seen = [server.generation]
        server.add("1", abs)
        seen.append(server.generation)
        server.load("2")
        seen.append(server.generation)
        server.set_live("1")
        seen.append(server.generation)
        server.set_weights({"1": 1, "2": 1})
        seen.append(server.generation)
        server.set_live("2")
        seen.append(server.generation)
        server.unload("1")
        seen.append(server.generation)
        assert [0, 1, 2, 3, 4, 5, 6] == seen

    def test_failed_change_adds_nothing(self) -> None:
        """A refused change leaves the generation as it was."""
        server = two_versions()
        generation = server.generation
        with pytest.raises(InvalidInput):
            server.unload("1")
        with pytest.raises(InvalidInput):
            server.set_live("9")
        assert generation == server.generation


class TestImport:
    def test_serving_import_is_light(self) -> None:
        """Importing mlchecks.serving loads neither scipy, pandas, pytest nor matplotlib."""
        code = (
            "import sys, mlchecks.serving; "
            "print(sorted(m for m in ('scipy', 'pandas', 'pytest', 'matplotlib') "
            "if m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert "[]" == out.strip()


N_THREADS = 8
N_REQUESTS = 5_000  # per thread
N_FLIPS = 1_000
WAIT_S = 120.0  # generous bound on any single wait, so a bug fails instead of hanging


def gil_releasing_constant(value: float) -> Any:
    """A constant model that releases the GIL mid-call, as BLAS kernels and I/O do."""

    def model(inputs: Any) -> np.ndarray:
        time.sleep(0)  # lets another thread (the flipper) run while this request is in flight
        return np.full(len(inputs), value)

    return model


class TestConcurrency:
    def test_live_flips_under_load(self) -> None:
        """8 threads x 5,000 requests while the live version flips 1,000 times: none fail.

        Each client brackets its request between two reads of ``server.generation``; the
        version that served it must have been live in one of the generations in between,
        i.e. at some instant during the request. Clients and the flipper advance in
        lockstep (a client may not run more than a few requests ahead of the flips, and the
        flipper waits for traffic), so every flip happens while requests are in flight.
        """
        value_of = {"a": 1.0, "b": 2.0}
        server = InProcessServer()
        for version, value in value_of.items():
            server.add(version, gil_releasing_constant(value))
        server.set_live("a")
        first_generation = server.generation
        live_at = {first_generation: "a"}  # generation -> version live in it
        gate = threading.Condition()
        progress = {"flips": 0, "done": 0}
        done_at_last_flip: list[int] = []
        start = threading.Barrier(N_THREADS + 1, timeout=WAIT_S)
        inputs = np.zeros((2, 4))

        def reached(counter: str, target: int) -> bool:
            return progress[counter] >= target

        def client() -> list[tuple[int, int, Response]]:
            records = []
            start.wait()
            for j in range(N_REQUESTS):
                needed = min(j // 4, N_FLIPS)
                if progress["flips"] < needed:
                    with gate:
                        assert gate.wait_for(partial(reached, "flips", needed), WAIT_S)
                before = server.generation
                response = server.infer(inputs)
                after = server.generation
                records.append((before, after, response))
                with gate:
                    progress["done"] += 1
                    if progress["done"] % 32 == 0:
                        gate.notify_all()
            return records

        def flipper() -> None:
            start.wait()
            for k in range(N_FLIPS):
                with gate:
                    assert gate.wait_for(partial(reached, "done", 32 * k), WAIT_S)
                version = "b" if k % 2 == 0 else "a"
                server.set_live(version)
                live_at[server.generation] = version  # the flipper is the only writer
                with gate:
                    progress["flips"] += 1
                    gate.notify_all()
            done_at_last_flip.append(progress["done"])

        with ThreadPoolExecutor(max_workers=N_THREADS + 1) as pool:
            flips = pool.submit(flipper)
            clients = [pool.submit(client) for _ in range(N_THREADS)]
            records = [record for future in clients for record in future.result()]
            flips.result()

        total = N_THREADS * N_REQUESTS
        assert total == len(records)
        assert [] == [r for _, _, r in records if not r.ok]
        assert list(range(first_generation, first_generation + N_FLIPS + 1)) == sorted(live_at)
        assert done_at_last_flip[0] < total  # the last flip happened with requests to come
        not_live_during_request = [
            (before, after, r.version)
            for before, after, r in records
            if r.version not in {live_at[g] for g in range(before, after + 1)}
        ]
        assert [] == not_live_during_request
        assert [] == [r for _, _, r in records if r.outputs[0] != value_of[str(r.version)]]
        straddling = sum(before != after for before, after, _ in records)
        assert straddling > 0  # some requests ran across a switch
        stats = server.stats()
        assert total == stats["a"]["requests"] + stats["b"]["requests"]
        assert 0 == stats["a"]["errors"] + stats["b"]["errors"]

    def test_unload_and_reload_under_explicit_traffic(self) -> None:
        """Requests for a version that is being unloaded and reloaded never raise.

        Each response is either served by that version with its own outputs or is a
        client error saying the version is not loaded; requests already routed to the
        version finish on the model they were routed to.
        """
        server = two_versions().add("c", gil_releasing_constant(3.0))
        stop = threading.Event()

        def churn() -> int:
            cycles = 0
            while not stop.is_set():
                server.unload("c")
                time.sleep(0)  # yield with "c" unloaded ...
                server.add("c", gil_releasing_constant(3.0))
                time.sleep(0)  # ... and with "c" loaded
                cycles += 1
            return cycles

        def client() -> list[Response]:
            responses = []
            for _ in range(2_000):
                responses.append(server.infer(BATCH, version="c"))
                time.sleep(0)  # let the churner run between requests too
            return responses

        with ThreadPoolExecutor(max_workers=5) as pool:
            churner = pool.submit(churn)
            try:
                clients = [pool.submit(client) for _ in range(4)]
                responses = [response for future in clients for response in future.result()]
            finally:
                stop.set()
            assert churner.result() > 0

        served = [r for r in responses if r.ok]
        refused = [r for r in responses if not r.ok]
        assert 8_000 == len(served) + len(refused)
        assert served  # both outcomes happened: the churn interleaved with the requests
        assert refused
        assert [] == [r for r in served if (r.version, r.outputs[0]) != ("c", 3.0)]
        assert [] == [r for r in refused if r.error_kind != "client"]
