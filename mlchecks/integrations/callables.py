"""`FunctionTrainer`: a `Trainer` built from your own training callables.

For training code that already exists in any framework (or none): your step, prediction,
state and checkpoint functions become a `Trainer` the checks drive, with no subclassing
and no private hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput

__all__ = ["FunctionTrainer"]


def _require_callable(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise InvalidInput(f"'{name}' must be callable (got {describe(value)})")


class FunctionTrainer:
    """A `Trainer` from your own callables: ``step``, ``predict``, ``state``, ``save``, ``load``.

    Args:
        step: ``step(batch) -> loss``: one optimization step of your training code; the
            loss may be a float or anything ``float()`` accepts (a 0-d tensor or array).
        predict: ``predict(inputs) -> outputs`` (class probabilities or scores).
        state: ``state() -> mapping`` name -> array of everything that defines the model
            now (parameters, optimizer slots, buffers, scheduler and RNG state, the step
            counter): what the checks compare.
        save: ``save(path)``: your checkpoint writer.
        load: ``load(path)``: your checkpoint reader; it restores what ``save`` wrote into
            the same objects.
        gradients: optional ``gradients() -> mapping`` name -> array of the last step's
            gradients (use the names of ``state``; None for a parameter that takes no
            gradient, such as a frozen one).
        trace: optional ``trace(inputs) -> mapping`` name -> array of intermediate
            activations.

    The callables close over your objects, so a `FunctionTrainer` cannot be deep-copied:
    checks given ``trainer=`` train it in place and put it back with your ``save`` and
    ``load`` (``isolation="checkpoint"``); checks that need fresh trainers take a factory
    ``make_trainer(seed)`` that builds your objects and the `FunctionTrainer` over them.
    `gradients` and `trace` exist on the object only when you give them, so checks see
    exactly what your code offers.

    Raises:
        InvalidInput: a callable is missing or not callable.

    >>> import numpy as np
    >>> from mlchecks.checks.training import LossDecreasesCheck
    >>> def make_trainer(seed):
    ...     rng = np.random.default_rng(seed)
    ...     w = {"w": rng.normal(size=3)}
    ...     def step(batch):
    ...         X, y = batch
    ...         error = X @ w["w"] - y
    ...         w["w"] = w["w"] - 0.1 * X.T @ error / len(y)
    ...         return float(np.mean(error**2))
    ...     def save(path):
    ...         with open(path, "wb") as f:
    ...             np.save(f, w["w"])
    ...     def load(path):
    ...         with open(path, "rb") as f:
    ...             w["w"] = np.load(f)
    ...     return FunctionTrainer(
    ...         step=step,
    ...         predict=lambda X: X @ w["w"],
    ...         state=lambda: {"param/w": w["w"].copy()},
    ...         save=save,
    ...         load=load,
    ...     )
    >>> X = np.random.default_rng(0).normal(size=(64, 3))
    >>> batch = (X, X @ np.array([1.0, -2.0, 0.5]))
    >>> check = LossDecreasesCheck(make_trainer=make_trainer, batches=[batch], n_steps=30)
    >>> check.run().status
    <Status.PASS: 'pass'>
    """

    def __init__(
        self,
        *,
        step: Callable[[Any], Any],
        predict: Callable[[Any], Any],
        state: Callable[[], Mapping[str, Any]],
        save: Callable[[Path], Any],
        load: Callable[[Path], Any],
        gradients: Callable[[], Mapping[str, Any]] | None = None,
        trace: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        for name, value in (
            ("step", step),
            ("predict", predict),
            ("state", state),
            ("save", save),
            ("load", load),
        ):
            _require_callable(name, value)
        _require_callable("gradients", gradients, optional=True)
        _require_callable("trace", trace, optional=True)
        self._step_fn = step
        self._predict_fn = predict
        self._state_fn = state
        self._save_fn = save
        self._load_fn = load
        self._gradients_fn = gradients
        self._trace_fn = trace

    def __repr__(self) -> str:
        names = [
            getattr(fn, "__name__", type(fn).__name__)
            for fn in (self._step_fn, self._predict_fn, self._save_fn, self._load_fn)
        ]
        return "FunctionTrainer(step={}, predict={}, save={}, load={})".format(*names)

    def __getattr__(self, name: str) -> Any:
        # gradients() and trace() exist only when given, so hasattr() tells the checks.
        if name == "gradients" and self.__dict__.get("_gradients_fn") is not None:
            return self.__dict__["_gradients_fn"]
        if name == "trace" and self.__dict__.get("_trace_fn") is not None:
            return self.__dict__["_trace_fn"]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __deepcopy__(self, memo: dict[int, Any]) -> FunctionTrainer:
        raise TypeError(
            "a FunctionTrainer cannot be deep-copied: its callables close over your objects "
            "(checks fall back to isolation='checkpoint', or pass make_trainer)"
        )

    def train_step(self, batch: Any) -> float:
        """``step(batch)``, as a float."""
        return float(self._step_fn(batch))

    def predict(self, inputs: Any) -> Any:
        """``predict(inputs)``."""
        return self._predict_fn(inputs)

    def state(self) -> Mapping[str, Any]:
        """``state()``."""
        return self._state_fn()

    def save(self, path: str | Path) -> None:
        """``save(path)``."""
        self._save_fn(Path(path))

    def load(self, path: str | Path) -> None:
        """``load(path)``."""
        self._load_fn(Path(path))
