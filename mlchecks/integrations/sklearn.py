"""scikit-learn adapter: `SklearnTrainer` drives an estimator's ``partial_fit`` as a `Trainer`.

Install with ``pip install "mlchecks[sklearn]"``; scikit-learn is imported only when a
loss is computed, so importing this module costs nothing.

>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(64, 3))
>>> y = (X[:, 0] > 0).astype(int)
>>> trainer = SklearnTrainer(SGDClassifier(loss="log_loss", random_state=0), classes=[0, 1])
>>> loss = trainer.train_step((X, y))
>>> trainer.predict(X).shape, {"coef_", "intercept_", "step"} <= set(trainer.state())
((64, 2), True)
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks._validate import check_pair, describe
from mlchecks.exceptions import InvalidInput, MissingDependency

__all__ = ["SklearnTrainer"]

_MAX_DEPTH = 3


def _import_metrics() -> Any:
    try:
        import sklearn.metrics
    except ImportError as exc:  # pragma: no cover - scikit-learn is installed where tested
        raise MissingDependency(
            'SklearnTrainer needs scikit-learn: pip install "mlchecks[sklearn]"'
        ) from exc
    return sklearn.metrics


def _flatten(prefix: str, value: Any, out: dict[str, np.ndarray], depth: int) -> None:
    """Numeric leaves of ``value`` into ``out`` under ``prefix/...`` (objects, lists, dicts)."""
    if value is None or isinstance(value, str | bytes | type):
        return
    if isinstance(value, np.random.RandomState):
        _, key, pos, has_gauss, cached = value.get_state(legacy=True)
        out[f"{prefix}/key"] = np.array(key, copy=True)
        out[f"{prefix}/pos"] = np.array([pos, has_gauss], dtype=np.int64)
        out[f"{prefix}/gauss"] = np.array(cached, dtype=np.float64)
        return
    if isinstance(value, np.random.Generator):
        _flatten(prefix, value.bit_generator.state, out, depth)
        return
    if isinstance(value, bool | int | float | complex | np.generic):
        array = np.array(value)
        if array.dtype.kind in "biufc":
            out[prefix] = array
        return
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufcUS":
            out[prefix] = np.array(value, copy=True)
        return
    if depth >= _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}/{key}", item, out, depth + 1)
        return
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, int | float | np.number) for v in value):
            out[prefix] = np.array(value)
            return
        for i, item in enumerate(value):
            _flatten(f"{prefix}/{i}", item, out, depth + 1)
        return
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and not isinstance(value, type):
        for key, item in attributes.items():
            _flatten(f"{prefix}/{key}", item, out, depth + 1)


class SklearnTrainer:
    """A scikit-learn estimator trained incrementally with ``partial_fit``.

    Args:
        estimator: an estimator with ``partial_fit`` (``SGDClassifier``, ``SGDRegressor``,
            ``MLPClassifier``, ``Perceptron``, ``MultinomialNB``, ...).
        classes: every class label, for classifiers (``partial_fit`` needs them up front);
            None for regressors.
        loss: ``loss(estimator, X, y) -> float`` for `train_step` to report. The default
            is the log loss when the estimator has ``predict_proba``, the hinge loss when it
            has only ``decision_function``, and the mean squared error for regressors.

    A batch is ``(X, y)``. `train_step` calls ``partial_fit(X, y, classes=classes)`` and
    returns the loss on the batch *after* the update (before the first update an estimator
    cannot predict).

    `state` holds the fitted attributes: every numeric attribute that is not a
    hyperparameter (``coef_``, ``intercept_``, ``t_``, private optimizer slots), lists and
    nested objects flattened to ``name/index`` (``coefs_/0``, ``_optimizer/velocities/0``),
    random generators as their state, and ``step``.

    `save` and `load` use `pickle`, which runs code from the file while loading:
    load only checkpoints you wrote yourself (trusted input only).

    Raises:
        InvalidInput: ``estimator`` has no ``partial_fit``, or ``loss`` is not callable.
    """

    def __init__(
        self,
        estimator: Any,
        classes: Sequence[Any] | np.ndarray | None = None,
        *,
        loss: Callable[[Any, Any, Any], float] | None = None,
    ) -> None:
        if not callable(getattr(estimator, "partial_fit", None)):
            raise InvalidInput(
                f"'estimator' must have a partial_fit method (got {describe(estimator)})"
            )
        if loss is not None and not callable(loss):
            raise InvalidInput(f"'loss' must be callable (got {describe(loss)})")
        self.estimator = estimator
        self.classes = None if classes is None else np.asarray(classes)
        if self.classes is not None and self.classes.ndim != 1:
            raise InvalidInput(f"'classes' must be 1-D (got {describe(self.classes)})")
        self.loss = loss
        self._step = 0

    def __repr__(self) -> str:
        return f"SklearnTrainer({type(self.estimator).__name__}, step={self._step})"

    @property
    def step(self) -> int:
        """How many `train_step` calls the estimator has seen (restored by `load`)."""
        return self._step

    def _batch_loss(self, X: Any, y: Any) -> float:
        if self.loss is not None:
            return float(self.loss(self.estimator, X, y))
        metrics = _import_metrics()
        if hasattr(self.estimator, "predict_proba"):
            labels = self.classes if self.classes is not None else self.estimator.classes_
            return float(metrics.log_loss(y, self.estimator.predict_proba(X), labels=labels))
        if self.classes is not None and hasattr(self.estimator, "decision_function"):
            decision = self.estimator.decision_function(X)
            return float(metrics.hinge_loss(y, decision, labels=self.classes))
        return float(metrics.mean_squared_error(y, self.estimator.predict(X)))

    def train_step(self, batch: Any) -> float:
        """``partial_fit`` on ``batch = (X, y)``; returns the batch loss after the update.

        Raises:
            InvalidInput: ``batch`` is not a pair.
        """
        X, y = check_pair(batch, "batch", "(X, y)")
        if self.classes is not None:
            self.estimator.partial_fit(X, y, classes=self.classes)
        else:
            self.estimator.partial_fit(X, y)
        self._step += 1
        return self._batch_loss(X, y)

    def predict(self, inputs: Any) -> np.ndarray:
        """``predict_proba`` when the estimator has it, else ``decision_function``, else
        ``predict``; as a numpy array."""
        for method in ("predict_proba", "decision_function", "predict"):
            if hasattr(self.estimator, method):
                return np.asarray(getattr(self.estimator, method)(inputs))
        raise InvalidInput(f"the estimator cannot predict (got {describe(self.estimator)})")

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the fitted attributes and generators, name -> array (see the class)."""
        out: dict[str, np.ndarray] = {}
        get_params = getattr(self.estimator, "get_params", None)
        params = get_params(deep=False) if callable(get_params) else {}
        for key, value in vars(self.estimator).items():
            if key in params:
                if isinstance(value, np.random.RandomState | np.random.Generator):
                    _flatten(key, value, out, 1)
                continue
            _flatten(key, value, out, 1)
        out["step"] = np.array(self._step, dtype=np.int64)
        return dict(sorted(out.items()))

    def save(self, path: str | Path) -> None:
        """Pickle the estimator and the step counter to ``path``."""
        with open(Path(path), "wb") as handle:
            pickle.dump(
                {"estimator": self.estimator, "step": self._step},
                handle,
                protocol=pickle.HIGHEST_PROTOCOL,
            )

    def load(self, path: str | Path) -> None:
        """Replace the estimator with the one pickled at ``path`` (trusted files only)."""
        with open(Path(path), "rb") as handle:
            data = pickle.load(handle)  # documented: trusted checkpoints only
        self.estimator = data["estimator"]
        self._step = int(data["step"])
