"""A trainer that replays a recorded loss curve, for the loss-trend tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CurveTrainer"]


class CurveTrainer:
    """A fake trainer whose train_step returns the next value of a fixed loss curve."""

    def __init__(self, curve: np.ndarray) -> None:
        self.curve = np.asarray(curve, dtype=float)
        self.position = 0

    def train_step(self, batch: Any) -> float:
        value = float(self.curve[self.position])
        self.position += 1
        return value

    def predict(self, inputs: Any) -> Any:
        return inputs

    def state(self) -> dict[str, Any]:
        return {"position": np.array(self.position)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(str(self.position))

    def load(self, path: str | Path) -> None:
        self.position = int(Path(path).read_text())
