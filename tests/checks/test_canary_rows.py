"""The canary judges every row of batched requests, and reads text labels.

Real scikit-learn classifiers on ``load_breast_cancer`` behind an `InProcessServer`: a
healthy model, a healthy retrain, one trained on inverted labels, and string-label versions
(the way a model trained on class names answers V2 ``BYTES``). The same check code must
FAIL the inverted candidate however the traffic is batched, and PASS the retrain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from mlchecks import Status
from mlchecks.checks._canary_agreement import offline_input, offline_rows
from mlchecks.checks._canary_outputs import LabelReader, row_outputs
from mlchecks.checks.canary import CanaryCheck
from mlchecks.exceptions import InvalidInput
from mlchecks.serving import InProcessServer
from mlchecks.stats.sequential import (
    RateTest,
    categorical_share_log_evalues,
    rate_confidence_sequence,
    rate_log_evalue,
)

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

NAMES = np.array(["malignant", "benign"])


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_live, y_train, _ = train_test_split(X, y, test_size=0.5, random_state=0)

    def fit(labels: np.ndarray, seed: int) -> Any:
        rows = np.random.default_rng(seed).choice(len(X_train), len(X_train) - 20, replace=False)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        return model.fit(X_train[rows], labels[rows])

    models = {
        "1": fit(y_train, 1),
        "2": fit(y_train, 2),
        "3": fit(1 - y_train, 3),  # inverted labels
        "names-1": fit(NAMES[y_train], 1),
        "names-2": fit(NAMES[y_train], 2),
        "names-3": fit(NAMES[1 - y_train], 3),
    }
    return {"X": X_live, "models": models}


def server_for(data: dict[str, Any], answer: str = "proba") -> InProcessServer:
    """Every version loaded, "1" (or "names-1") live; answers probabilities or labels."""
    server = InProcessServer()
    for version, model in data["models"].items():
        predict = model.predict_proba if answer == "proba" else model.predict
        server.add(version, lambda x, predict=predict: predict(np.atleast_2d(x)))
    return server


def batches(X: np.ndarray, size: int, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [X[rng.choice(len(X), size, replace=False)] for _ in range(n)]


def canary(server: Any, candidate: str, baseline: str, traffic: Any, **kwargs: Any) -> Any:
    settings: dict[str, Any] = {
        "traffic_fraction": 0.5,
        "n_candidate_requests": 150,
        "budget_requests": 2000,
        "load": False,
        "unload": False,
        **kwargs,
    }
    return CanaryCheck(server, candidate, baseline=baseline, traffic=traffic, **settings).run()


class TestBatchedTraffic:
    @pytest.mark.parametrize("mode", ["split", "shadow"])
    @pytest.mark.parametrize("size", [1, 8])
    def test_healthy_retrain_passes(self, data: dict[str, Any], mode: str, size: int) -> None:
        server = server_for(data)
        X = data["X"]
        traffic = list(X) * 3 if size == 1 else batches(X, size, 600)
        probes = batches(X, size, 20) if size > 1 else list(X[:20])
        offline = data["models"]["2"].predict_proba
        result = canary(
            server, "2", "1", traffic, mode=mode, probe_inputs=probes, offline_predictions=offline
        )
        assert result.status == Status.PASS, result.summary
        assert result.metrics["probe.agreement"] == 1.0

    @pytest.mark.parametrize("mode", ["split", "shadow"])
    @pytest.mark.parametrize("size", [1, 8])
    def test_inverted_labels_fail(self, data: dict[str, Any], mode: str, size: int) -> None:
        """The class mix flips (split) and nearly every row disagrees (shadow)."""
        server = server_for(data)
        X = data["X"]
        traffic = list(X) * 6 if size == 1 else batches(X, size, 1600)
        probes = batches(X, size, 10) if size > 1 else list(X[:10])
        # the shift's size gate needs a few hundred candidate requests (docs/checks/canary.md)
        result = canary(
            server, "3", "1", traffic, mode=mode, probe_inputs=probes, n_candidate_requests=600
        )
        assert result.status == Status.FAIL, result.summary
        failed = {f.name for f in result.findings if f.status == Status.FAIL}
        assert ("trickle.shift" if mode == "split" else "trickle.disagreement") in failed

    def test_shadow_disagreement_is_the_share_of_rows(self, data: dict[str, Any]) -> None:
        server = server_for(data)
        X = data["X"]
        result = canary(
            server, "3", "1", batches(X, 8, 300), mode="shadow", probe_inputs=list(X[:5])
        )
        rate = result.metrics["trickle.disagreement.rate"]
        assert rate > 0.9
        example = result.details["disagreement_examples"][0]
        assert example["rows"] == 8

    def test_stage_zero_judges_every_row_of_batched_probes(self, data: dict[str, Any]) -> None:
        """One wrong row in a batch of eight lowers the agreement by one row, not one probe."""
        server = server_for(data)
        probes = batches(data["X"], 8, 5)
        offline = [data["models"]["2"].predict_proba(p) for p in probes]
        offline[1] = offline[1].copy()
        offline[1][3] = offline[1][3][::-1]
        result = CanaryCheck(
            server,
            "2",
            probe_inputs=probes,
            offline_predictions=offline,
            load=False,
            unload=False,
            min_agreement=0.9,
        ).run()
        assert result.metrics["probe.agreement"] == pytest.approx(39 / 40)
        assert result.details["probe_disagreements"][0]["probe"] == 1
        assert result.details["probe_disagreements"][0]["row"] == 3
        assert "40 answers in 5 probe outputs" in result.finding("probe.outputs").message

    def test_outputs_that_do_not_hold_every_row_fail(self, data: dict[str, Any]) -> None:
        """A server answering one row for a batch of eight is malformed."""
        server = InProcessServer().add("1", lambda x: np.array([[0.5, 0.5]]))
        server.add("2", lambda x: np.array([[0.5, 0.5]]))
        result = CanaryCheck(
            server, "2", probe_inputs=batches(data["X"], 8, 3), load=False, unload=False
        ).run()
        assert result.finding("probe.outputs").status == Status.FAIL
        assert "one answer per row" in result.finding("probe.outputs").message


class TestTextLabels:
    @pytest.mark.parametrize("mode", ["split", "shadow"])
    @pytest.mark.parametrize("size", [1, 8])
    def test_string_labels_with_a_class_list(
        self, data: dict[str, Any], mode: str, size: int
    ) -> None:
        """A model answering class names: the retrain PASSes, the inverted one FAILs."""
        server = server_for(data, answer="labels")
        X = data["X"]
        traffic = list(X) * 6 if size == 1 else batches(X, size, 1600)
        probes = batches(X, size, 10) if size > 1 else list(X[:10])
        classes = data["models"]["names-1"].classes_
        results = {
            candidate: canary(
                server,
                candidate,
                "names-1",
                traffic,
                mode=mode,
                classes=classes,
                probe_inputs=probes,
                offline_predictions=data["models"][candidate].predict,
                n_candidate_requests=600 if candidate == "names-3" else 150,
            )
            for candidate in ("names-2", "names-3")
        }
        assert results["names-2"].status == Status.PASS, results["names-2"].summary
        assert results["names-2"].metrics["probe.agreement"] == 1.0
        assert results["names-3"].status == Status.FAIL, results["names-3"].summary

    def test_offline_string_predictions_are_compared_with_served_labels(
        self, data: dict[str, Any]
    ) -> None:
        server = server_for(data, answer="labels")
        X = data["X"][:20]
        wrong = data["models"]["names-3"].predict(X)
        result = CanaryCheck(
            server,
            "names-2",
            probe_inputs=list(X),
            offline_predictions=wrong,
            load=False,
            unload=False,
        ).run()
        assert result.finding("probe.agreement").status == Status.FAIL
        right = data["models"]["names-2"].predict(X).astype(object)  # str objects, as lists are
        result = CanaryCheck(
            server,
            "names-2",
            probe_inputs=list(X),
            offline_predictions=list(right),
            load=False,
            unload=False,
        ).run()
        assert result.finding("probe.agreement").status == Status.PASS

    def test_bytes_labels_match_their_text(self) -> None:
        reader = LabelReader(classes=("no", "yes"))
        assert reader.labels(np.array([b"yes", b"no"], dtype=object), 2) == [1, 0]
        assert reader.label(np.array([[b"yes"]])) == 1
        assert reader.label("maybe") is None  # outside the class list: no class

    def test_labels_are_coded_in_order_first_seen_without_classes(self) -> None:
        reader = LabelReader()
        assert reader.labels(["b", "a", "b"], 3) == [0, 1, 0]
        assert reader.disagreements(["b", "a"], ["b", "b"], 2) == [False, True]

    @pytest.mark.parametrize(
        ("classes", "match"),
        [("ab", "sequence"), ([], "non-empty"), (["a", "a"], "repeat"), ([1.5], "int")],
    )
    def test_rejects_bad_class_lists(self, classes: Any, match: str) -> None:
        with pytest.raises(InvalidInput, match=match):
            CanaryCheck(InProcessServer(), "1", probe_inputs=[1], classes=classes, load=False)


class TestKernels:
    def test_row_outputs_split_batches_and_keep_single_rows_whole(self) -> None:
        rows = row_outputs(np.zeros((1, 4, 2)), 4)
        assert rows is not None
        assert [r.shape for r in rows] == [(2,)] * 4
        assert row_outputs(np.zeros((1, 2)), 1)[0].shape == (1, 2)  # type: ignore[index]
        assert row_outputs({"proba": np.zeros((4, 2))}, 4) is None
        assert row_outputs(np.zeros(3), 4) is None

    @pytest.mark.parametrize(
        ("values", "rows", "shape"),
        [
            (np.zeros((6, 2)), [1] * 6, (6, 2)),
            (np.zeros((6, 1, 2)), [1] * 6, (6, 2)),
            (np.zeros((3, 4, 2)), [4, 4, 4], (12, 2)),
            (np.zeros((12, 2)), [4, 4, 4], (12, 2)),
            ([np.zeros((4, 2)), np.zeros((1, 2)), np.zeros((3, 2))], [4, 1, 3], (8, 2)),
            (np.arange(12), [4, 4, 4], (12, 1)),
            (np.array(["a", "b", "c", "d"]), [2, 2], (4,)),
            ([["a", "b"], ["c", "d"]], [2, 2], (4,)),
        ],
    )
    def test_offline_rows_gives_one_entry_per_row(
        self, values: Any, rows: list[int], shape: tuple[int, ...]
    ) -> None:
        got = offline_rows(values, rows)
        assert got is not None
        assert got.shape == shape

    @pytest.mark.parametrize(
        ("values", "rows"),
        [(np.zeros((5, 2)), [1] * 6), (np.zeros((2, 4, 2)), [4, 4, 4]), ({"a": 1}, [1])],
    )
    def test_offline_rows_rejects_what_does_not_fit(self, values: Any, rows: list[int]) -> None:
        assert offline_rows(values, rows) is None

    def test_offline_callables_get_the_rows_of_batched_probes(self) -> None:
        probes = [np.zeros((3, 5)), np.ones((2, 5))]
        assert offline_input(probes).shape == (5, 5)
        single = [np.zeros(5), np.ones(5)]
        assert offline_input(single) is single

    def test_fraction_updates_match_zero_one_updates_exactly(self) -> None:
        a, b = RateTest(0.1), RateTest(0.1)
        for hit in [True, False, False, True, True]:
            a.update(hit)
            b.update_fraction(float(hit))
        assert a.log_evalue == b.log_evalue

    def test_fraction_updates_match_the_closed_form_on_counts(self) -> None:
        test = RateTest(0.2)
        fractions = [0.25, 0.5, 0.0, 1.0, 0.875]
        for x in fractions:
            test.update_fraction(x)
        assert test.log_evalue == pytest.approx(float(rate_log_evalue(sum(fractions), 5, 0.2)))
        ci = rate_confidence_sequence(sum(fractions), 5)
        assert ci.low < sum(fractions) / 5 < ci.high
        with pytest.raises(InvalidInput, match="fraction"):
            test.update_fraction(1.5)


def clustered_batches(rng: np.random.Generator, n: int, size: int, p: float) -> np.ndarray:
    """Labels of ``n`` batches of ``size`` rows, strongly alike within a batch (a batch is
    one client's rows): the batch's class (1 with probability ``p``) for 90% of its rows,
    a fair coin for the rest."""
    batch_class = rng.random(n) < p
    keep = rng.random((n, size)) < 0.9
    coin = rng.random((n, size)) < 0.5
    return np.where(keep, batch_class[:, None], coin).astype(int)


class TestBatchedLevelAndPower:
    """The one-drawn-row rule holds the shift test's level on clustered batches, where
    counting every row as an event would not; the share-of-rows disagreement holds its
    level at the boundary. Simulated on the kernels the canary feeds (the shift test's
    `categorical_share_log_evalues`, `RateTest.update_fraction`'s closed form)."""

    N_REQUESTS, SIZE = 400, 8
    THRESHOLD = np.log(4 / 0.05)  # the canary's four split-mode tests share alpha = 0.05

    def shift_alarms(
        self, seed: int, n_runs: int, *, every_row: bool, flip: bool, p: float = 0.5
    ) -> float:
        rng = np.random.default_rng(seed)
        alarms = 0
        for _ in range(n_runs):
            labels = clustered_batches(rng, self.N_REQUESTS, self.SIZE, p)
            hits = rng.random(self.N_REQUESTS) < 0.5  # routed to the candidate
            if flip:
                labels = np.where(hits[:, None], 1 - labels, labels)
            if every_row:
                codes, events = labels.reshape(-1), np.repeat(hits, self.SIZE)
            else:
                codes = labels[np.arange(self.N_REQUESTS), rng.integers(self.SIZE, size=len(hits))]
                events = hits
            path = categorical_share_log_evalues(codes, events, 0.5)
            alarms += bool(path.max() >= self.THRESHOLD)
        return alarms / n_runs

    @pytest.mark.slow
    def test_one_drawn_row_holds_the_level_where_every_row_does_not(self) -> None:
        n_runs = 2000
        k = round(self.shift_alarms(7, n_runs, every_row=False, flip=False) * n_runs)
        assert k == 27  # quoted in docs/checks/canary.md
        # the shift test's share of alpha is 0.0125; 27 of 2000 runs (1.35%) cross it here,
        # within the simulation's noise: the exact 95% lower bound is below 0.0125
        assert stats.beta.ppf(0.05, k, n_runs - k + 1) <= 0.05 / 4
        assert stats.beta.ppf(0.95, k + 1, n_runs - k) <= 0.02
        assert self.shift_alarms(8, 200, every_row=True, flip=False) > 0.05

    def test_one_drawn_row_catches_inverted_labels_of_unbalanced_classes(self) -> None:
        """Rows of class 1 at 62% on the baseline, 38% on the candidate."""
        assert self.shift_alarms(9, 200, every_row=False, flip=True, p=0.63) >= 0.75

    def test_share_of_rows_holds_the_level_at_the_boundary(self) -> None:
        """An eighth of the batches disagree on 60-100% of their rows: rate 0.1, the limit."""
        rng = np.random.default_rng(11)
        disagreeing = rng.random((2000, 500)) < 0.125
        shares = np.where(disagreeing, rng.uniform(0.6, 1.0, size=disagreeing.shape), 0.0)
        k = np.cumsum(shares, axis=1)
        n = np.arange(1, shares.shape[1] + 1)
        paths = rate_log_evalue(k, n, 0.1)
        rate = float((paths.max(axis=1) >= np.log(5 / 0.05)).mean())
        alarms = round(rate * len(shares))
        assert stats.beta.ppf(0.95, alarms + 1, len(shares) - alarms) <= 0.05 / 5 * 1.2

    def test_share_of_rows_catches_inverted_labels(self) -> None:
        rng = np.random.default_rng(12)
        shares = rng.uniform(0.85, 1.0, size=(200, 60))
        paths = rate_log_evalue(np.cumsum(shares, axis=1), np.arange(1, 61), 0.1)
        assert (paths.max(axis=1) >= np.log(5 / 0.05)).mean() == 1.0


def test_traffic_failing_on_both_versions_never_passes() -> None:
    """Every live request fails on both versions (the traffic is malformed): the tests see
    no difference between them, but nothing served was judged, so the verdict is WARN."""

    def model(inputs: Any) -> np.ndarray:
        if np.asarray(inputs).shape != (2,):
            raise ValueError("expected two features")
        return np.array([0.3, 0.7])

    server = InProcessServer().add("1", model).add("2", model)
    server.set_live("1")
    result = CanaryCheck(
        server,
        "2",
        probe_inputs=[[0.0, 1.0]] * 5,
        traffic=[[0.0, 1.0, 2.0]] * 400,
        traffic_fraction=0.5,
        n_candidate_requests=100,
        load=False,
        unload=False,
    ).run()
    assert result.status == Status.WARN
    assert "insufficient data" in result.finding("trickle").message
    assert "none of the candidate's 100 requests succeeded" in result.finding("trickle").message


@pytest.mark.parametrize("mode", ["split", "shadow"])
def test_monitor_never_passes_a_candidate_that_served_nothing(mode: str) -> None:
    """Failures alike on both versions leave the error test silent; the decision is then
    "insufficient", not "pass"; one success among them makes it "pass"."""
    from mlchecks.checks._canary_policy import CanaryMonitor, CanaryPolicy

    def run(successes: int) -> str:
        policy = CanaryPolicy(traffic_fraction=0.5, mode=mode, n_candidate_requests=20)
        monitor = CanaryMonitor(policy)
        for i in range(40):
            error = i >= 2 * successes
            if mode == "split":
                monitor.observe(candidate=i % 2 == 0, error=error, latency_s=0.01, label=0)
            else:
                monitor.observe_pair(
                    candidate_error=error,
                    baseline_error=error,
                    candidate_latency_s=0.01,
                    baseline_latency_s=0.01,
                    candidate_label=0,
                    baseline_label=0,
                )
        return monitor.decision

    assert run(0) == "insufficient"
    assert run(1) == "pass"


def test_batched_probes_served_with_skewed_features_fail_agreement(
    data: dict[str, Any],
) -> None:
    """The planted fault stage 0 exists to catch, in batches: the serving side reverses the
    feature order (a schema skew), so its answers differ from the training code's on many
    rows of every batch."""
    model = data["models"]["2"]
    server = InProcessServer()
    server.add("1", lambda x: data["models"]["1"].predict_proba(np.atleast_2d(x)))
    server.add("2", lambda x: model.predict_proba(np.atleast_2d(x)[:, ::-1]))
    result = CanaryCheck(
        server,
        "2",
        probe_inputs=batches(data["X"], 8, 10),
        offline_predictions=model.predict_proba,
        load=False,
        unload=False,
    ).run()
    finding = result.finding("probe.agreement")
    assert finding.status == Status.FAIL
    assert "of 80 rows served for version '2' match" in finding.message
    assert result.metrics["probe.agreement"] < 0.9
