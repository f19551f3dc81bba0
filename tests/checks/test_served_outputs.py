"""Served-versus-offline comparisons read both sides through one normalisation.

A scikit-learn model served one row per request answers ``(1, k)`` where the offline batch
call gives the row ``(k,)``; `PipelineCheck` (see tests/checks/test_pipeline.py), `CanaryCheck`
and `RollbackCheck` must treat the two as the same prediction, and report outputs as numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mlchecks import CanaryCheck, RollbackCheck, Status
from mlchecks.serving import InProcessServer

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, Y = load_iris(return_X_y=True)
MODEL = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y)
PROBES = [X[i] for i in range(0, 150, 5)]


def one_row(row: Any) -> Any:
    """A serving handler: one request is one row, answered as a batch of one."""
    return MODEL.predict_proba(np.asarray(row).reshape(1, -1))


def unscaled(row: Any) -> Any:
    """A handler that skips the fitted scaler."""
    return MODEL[-1].predict_proba(np.asarray(row).reshape(1, -1))


def server_with(candidate: Callable[[Any], Any]) -> InProcessServer:
    models: dict[str, Callable[[Any], Any]] = {"1": one_row, "2": candidate}
    server = InProcessServer(loader=models.__getitem__)
    server.load("1")
    server.set_live("1")
    return server


class TestCanaryStageZero:
    def test_one_row_answers_match_offline_rows(self) -> None:
        """(1, 3) answers against offline (3,) rows agree: PASS."""
        offline = MODEL.predict_proba(np.asarray(PROBES))
        check = CanaryCheck(
            server_with(one_row), "2", probe_inputs=PROBES, offline_predictions=offline
        )
        result = check.run()
        assert Status.PASS == result.finding("probe.agreement").status, str(result)
        assert Status.PASS == result.finding("probe.outputs").status, str(result)
        assert 1.0 == result.metrics["probe.agreement"]

    def test_a_serving_path_that_computes_something_else_fails(self) -> None:
        """Answers without the scaler disagree; the examples hold numbers."""
        offline = MODEL.predict_proba(np.asarray(PROBES))
        check = CanaryCheck(
            server_with(unscaled), "2", probe_inputs=PROBES, offline_predictions=offline
        )
        result = check.run()
        assert Status.FAIL == result.finding("probe.agreement").status
        example = result.details["probe_disagreements"][0]
        assert 3 == len(example["served"][0])
        assert all(isinstance(v, float) for v in example["served"][0])
        json.dumps(result.to_dict())


class TestRollback:
    def test_one_row_answers_roll_back_cleanly(self) -> None:
        """Rolling back to a model served one row at a time finds its predictions again."""
        server = server_with(unscaled)
        server.load("2")
        result = RollbackCheck(server, server, "2", probe_inputs=PROBES[:5], n_repeats=1).run()
        assert Status.PASS == result.finding("predictions_after_rollback").status, str(result)
