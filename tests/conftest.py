"""Fixtures shared across the test suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from mlchecks.checks.reproducibility import TrainingRun

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def gpu_arrays() -> dict[str, np.ndarray]:
    """Every array of the recorded GPU training runs (see tests/data/README.md)."""
    with np.load(DATA / "gpu_training_runs.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def gpu_runs(gpu_arrays: dict[str, np.ndarray]) -> dict[str, TrainingRun]:
    """The five recorded GPU runs as TrainingRun objects, by run name.

    Each has test-set probabilities, labels, the region slices, per-step losses and
    per-step parameter hashes.
    """
    from mlchecks.checks.reproducibility import TrainingRun

    meta = json.loads((DATA / "gpu_training_runs.json").read_text())
    return {
        name: TrainingRun(
            predictions=gpu_arrays[f"{name}__probs"],
            labels=gpu_arrays["y_test"],
            slices={"region": gpu_arrays["region_test"]},
            losses=gpu_arrays[f"{name}__losses"],
            step_hashes=info["step_hashes"],
            name=name,
        )
        for name, info in meta["runs"].items()
    }
