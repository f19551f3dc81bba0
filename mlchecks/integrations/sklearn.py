"""scikit-learn adapter: `SklearnTrainer` drives any estimator as a `Trainer`.

A "step" is ``partial_fit`` on one batch for estimators that learn incrementally, a refit
on the batches seen so far for those that do not (forests, boosting, ``Pipeline``), or a
``warm_start`` growth of an ensemble (see `SklearnTrainer`).

Install with ``pip install "mlchecks-infra[sklearn]"``; scikit-learn is imported only when a
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

import hashlib
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlchecks._validate import check_pair, describe
from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.integrations._leaves import flatten

__all__ = ["SklearnTrainer"]

_MAX_DEPTH = 3
#: How `SklearnTrainer` turns a batch into a training step.
Steps = Literal["auto", "partial_fit", "refit", "warm_start"]
_STEPS = ("auto", "partial_fit", "refit", "warm_start")
#: The parameter a ``warm_start`` ensemble grows by, in order of preference.
_GROWTH_PARAMS = ("n_estimators", "max_iter")


def _import_sklearn() -> Any:
    try:
        import sklearn.base
        import sklearn.metrics
    except ImportError as exc:  # pragma: no cover - scikit-learn is installed where tested
        raise MissingDependency(
            'SklearnTrainer needs scikit-learn: pip install "mlchecks-infra[sklearn]"'
        ) from exc
    return sklearn


def _import_metrics() -> Any:
    return _import_sklearn().metrics


def _is_estimator(value: Any) -> bool:
    return (
        not isinstance(value, type)
        and callable(getattr(value, "get_params", None))
        and callable(getattr(value, "fit", None))
    )


def _holds_estimators(value: Any) -> bool:
    if _is_estimator(value):
        return True
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return any(_is_estimator(v) for v in value.ravel()[:1])
    if isinstance(value, list | tuple):
        return any(_holds_estimators(v) for v in value[:3])
    return False


def _hash_into(h: Any, value: Any, depth: int, seen: set[int]) -> None:
    """Feed ``value``'s content (not its object identity or sharing) into the hash ``h``."""
    if depth > 12:
        return
    if value is None or isinstance(value, bool | int | float | complex | str | np.generic):
        h.update(f"{type(value).__name__}:{value!r};".encode())
        return
    if isinstance(value, bytes):
        h.update(b"bytes:" + value + b";")
        return
    if isinstance(value, np.ndarray):
        h.update(f"array{value.shape}{value.dtype.str};".encode())
        if value.dtype.names:  # field by field: padding bytes are not content
            for name in value.dtype.names:
                _hash_into(h, np.ascontiguousarray(value[name]), depth + 1, seen)
        elif value.dtype.kind == "O":
            for item in value.ravel():
                _hash_into(h, item, depth + 1, seen)
        else:
            h.update(np.ascontiguousarray(value).tobytes())
        return
    if isinstance(value, type) or (callable(value) and not hasattr(value, "__dict__")):
        h.update(f"callable:{getattr(value, '__qualname__', type(value).__name__)};".encode())
        return
    if id(value) in seen:
        h.update(b"cycle;")
        return
    seen.add(id(value))
    if isinstance(value, np.random.RandomState):
        _hash_into(h, value.get_state(legacy=True), depth + 1, seen)
    elif isinstance(value, np.random.Generator):
        _hash_into(h, value.bit_generator.state, depth + 1, seen)
    elif isinstance(value, Mapping):
        h.update(b"map{")
        for key in sorted(value, key=repr):
            _hash_into(h, key, depth + 1, seen)
            _hash_into(h, value[key], depth + 1, seen)
        h.update(b"}")
    elif isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        h.update(f"{type(value).__name__}[".encode())
        for item in items:
            _hash_into(h, item, depth + 1, seen)
        h.update(b"]")
    else:
        h.update(f"{type(value).__qualname__}(".encode())
        _hash_into(h, _content(value), depth + 1, seen)
        h.update(b")")
    seen.discard(id(value))


def _content(value: Any) -> Any:
    """What defines an object: its pickled state, or its reduce arguments (extension
    types such as fitted trees and loss objects), never its address."""
    state = value.__getstate__() if hasattr(value, "__getstate__") else None
    if state is not None:
        return state
    if getattr(value, "__dict__", None):
        return vars(value)
    try:
        reduced = value.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
    if isinstance(reduced, tuple):
        return tuple(item for item in reduced[1:3] if item is not value)
    return None


def _digest(value: Any) -> np.ndarray:
    """The SHA-256 of ``value``'s content, as 32 bytes: a bitwise fingerprint that does not
    depend on object identity (a restored copy hashes as the original)."""
    h = hashlib.sha256()
    _hash_into(h, value, 0, set())
    return np.array(list(h.digest()), dtype=np.uint8)


def _params(estimator: Any) -> dict[str, Any]:
    get_params = getattr(estimator, "get_params", None)
    return dict(get_params(deep=False)) if callable(get_params) else {}


def _restore_into(target: Any, source: Any) -> Any:
    """Give ``target`` the state of ``source`` in place and return ``target``.

    The estimators and random generators among ``target``'s parameters (a ``Pipeline``'s
    steps, a meta-estimator's ``estimator``, a ``RandomState``) keep their identity too,
    each restored in place, so whoever holds them sees the restored state. When the two
    are not of the same type, ``source`` itself is returned (nothing to restore into).
    """
    if target is source:
        return target
    if type(target) is not type(source) or not hasattr(source, "__dict__"):
        return source
    mine = vars(target)
    state = dict(vars(source))
    for key in _params(target):
        if key in state and key in mine:
            state[key] = _kept(mine[key], state[key])
    mine.clear()
    mine.update(state)
    return target


def _kept(mine: Any, theirs: Any) -> Any:
    """``mine`` restored to ``theirs`` in place when it is an estimator, a generator or a
    list of them; else ``theirs``."""
    if _is_estimator(mine) and _is_estimator(theirs):
        return _restore_into(mine, theirs)
    if isinstance(mine, np.random.RandomState) and isinstance(theirs, np.random.RandomState):
        mine.set_state(theirs.get_state())
        return mine
    if (
        isinstance(mine, np.random.Generator)
        and isinstance(theirs, np.random.Generator)
        and type(mine.bit_generator) is type(theirs.bit_generator)
    ):
        mine.bit_generator.state = theirs.bit_generator.state
        return mine
    if isinstance(mine, list | tuple) and type(mine) is type(theirs) and len(mine) == len(theirs):
        items = [_kept(a, b) for a, b in zip(mine, theirs, strict=True)]
        if isinstance(mine, list):
            mine[:] = items
            return mine
        return tuple(items) if type(mine) is tuple else theirs
    return theirs


def _fitted_state(prefix: str, estimator: Any, out: dict[str, np.ndarray]) -> None:
    """The fitted attributes of ``estimator`` (and of the estimators it holds) into ``out``.

    Numeric attributes appear as arrays; attributes whose content is not numeric arrays
    (fitted trees, lists of fitted sub-estimators) as ``name#sha256``, the hash of their
    content. Hyperparameters are left out, except random generators and sub-estimators
    (``Pipeline`` steps), which are walked.
    """
    params = _params(estimator)
    for key, value in vars(estimator).items():
        name = f"{prefix}{key}"
        if key in params:
            if isinstance(value, np.random.RandomState | np.random.Generator):
                flatten(name, value, out, 1, max_depth=_MAX_DEPTH)
            elif _is_estimator(value):
                _fitted_state(f"{name}/", value, out)
            elif key == "steps" and isinstance(value, list):
                for item in value:
                    if isinstance(item, tuple) and len(item) == 2 and _is_estimator(item[1]):
                        _fitted_state(f"{name}/{item[0]}/", item[1], out)
            continue
        if _holds_estimators(value):
            out[f"{name}#sha256"] = _digest(value)
            continue
        found = len(out)
        flatten(name, value, out, 1, max_depth=_MAX_DEPTH)
        if len(out) == found and value is not None and not isinstance(value, str | bytes):
            out[f"{name}#sha256"] = _digest(value)


class SklearnTrainer:
    """A scikit-learn estimator as a `Trainer`: incremental, refit or grown step by step.

    Args:
        estimator: any estimator: one with ``partial_fit`` (``SGDClassifier``,
            ``MLPClassifier``, ``MultinomialNB``, ...), a forest, a boosting model, or a
            ``sklearn.pipeline.Pipeline``.
        classes: every class label, for classifiers (``partial_fit`` needs them up front;
            the losses use them); None for regressors, or to use the labels seen so far.
        steps: what one `train_step` does (see below): ``"partial_fit"``, ``"refit"``,
            ``"warm_start"``, or ``"auto"`` (``partial_fit`` when the estimator has it,
            else ``warm_start`` when its ``warm_start`` parameter is True, else ``refit``).
        n_estimators_per_step: with ``steps="warm_start"``, how many trees (boosting
            iterations) each step adds.
        loss: ``loss(estimator, X, y) -> float`` for `train_step` to report. The default
            is the log loss when the estimator has ``predict_proba``, the hinge loss when it
            has only ``decision_function``, and the mean squared error for regressors.

    A batch is ``(X, y)``. What a *step* means, by mode:

    - ``"partial_fit"``: ``partial_fit(X, y, classes=classes)`` on the step's batch; the
      loss is on that batch *after* the update.
    - ``"refit"``: step ``k`` fits a fresh clone of the estimator on the first ``k``
      batches (the data seen so far, concatenated) and gives its fitted state to the
      estimator you passed, which stays ``trainer.estimator``; the loss is on the step's batch
      *before* it is fitted (held-out, so it falls as more data is seen). Before the
      first fit the model is untrained: uniform class probabilities (log loss
      ``ln(n_classes)``), a zero decision function (hinge loss 1), a zero prediction
      (the mean squared label).
    - ``"warm_start"``: step ``k`` grows the ensemble by ``n_estimators_per_step`` trees
      (``n_estimators`` or, for histogram boosting, ``max_iter``) with
      ``warm_start=True``, fitted on the first ``k`` batches; the loss is read as in
      ``"refit"``. Needs an estimator with a ``warm_start`` parameter (not a
      ``Pipeline``).

    `state` holds the fitted attributes: every numeric attribute that is not a
    hyperparameter (``coef_``, ``intercept_``, ``t_``, private optimizer slots), lists and
    nested objects flattened to ``name/index`` (``coefs_/0``, ``_optimizer/velocities/0``),
    random generators as their state, attributes that are not numeric arrays (fitted
    trees, ``estimators_``) as ``name#sha256`` (a hash of their content, so a restored
    forest compares bitwise), the fitted steps of a ``Pipeline`` under
    ``steps/<name>/``, ``step``, and in the ``refit`` and ``warm_start`` modes the data
    seen so far (``data/n_rows``, ``data#sha256``).

    `save` and `load` use `pickle` (estimator, step counter, data seen), which runs code
    from the file while loading: load only checkpoints you wrote yourself (trusted input
    only). `load` restores the checkpoint into the estimator object the trainer holds (and
    into its sub-estimators and random generators), so ``trainer.estimator`` stays the
    object you passed: a check that trains your trainer itself
    (``isolation="checkpoint"``) leaves your estimator as it found it.

    A random forest, refit on growing data:

    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(90, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> trainer = SklearnTrainer(RandomForestClassifier(n_estimators=5, random_state=0))
    >>> trainer.mode
    'refit'
    >>> losses = [trainer.train_step((X[i : i + 30], y[i : i + 30])) for i in (0, 30, 60)]
    >>> round(losses[0], 4), trainer.step, int(trainer.state()["data/n_rows"])
    (0.6931, 3, 90)
    >>> "estimators_#sha256" in trainer.state()
    True

    Raises:
        InvalidInput: ``steps`` is unknown or does not fit the estimator (``partial_fit``
            without the method, ``warm_start`` without the parameter), or ``loss`` is not
            callable.
    """

    def __init__(
        self,
        estimator: Any,
        classes: Sequence[Any] | np.ndarray | None = None,
        *,
        steps: Steps = "auto",
        n_estimators_per_step: int = 10,
        loss: Callable[[Any, Any, Any], float] | None = None,
    ) -> None:
        if steps not in _STEPS:
            raise InvalidInput(
                f"'steps' must be one of {', '.join(repr(s) for s in _STEPS)} (got {steps!r})"
            )
        if (
            isinstance(n_estimators_per_step, bool)
            or not isinstance(n_estimators_per_step, int)
            or n_estimators_per_step < 1
        ):
            raise InvalidInput(
                "'n_estimators_per_step' must be an integer >= 1 "
                f"(got {describe(n_estimators_per_step)})"
            )
        if not _is_estimator(estimator) and not callable(getattr(estimator, "partial_fit", None)):
            raise InvalidInput(
                f"'estimator' must be a scikit-learn estimator (got {describe(estimator)})"
            )
        if loss is not None and not callable(loss):
            raise InvalidInput(f"'loss' must be callable (got {describe(loss)})")
        params = _params(estimator)
        growth = next((p for p in _GROWTH_PARAMS if p in params), None)
        has_partial_fit = callable(getattr(estimator, "partial_fit", None))
        if steps == "auto":
            if has_partial_fit:
                steps = "partial_fit"
            elif params.get("warm_start") is True and growth is not None:
                steps = "warm_start"
            else:
                steps = "refit"
        if steps == "partial_fit" and not has_partial_fit:
            raise InvalidInput(
                "steps='partial_fit' needs an estimator with a partial_fit method "
                f"(got {describe(estimator)}); use steps='refit' or 'auto'"
            )
        if steps == "warm_start" and ("warm_start" not in params or growth is None):
            raise InvalidInput(
                "steps='warm_start' needs an estimator with warm_start and n_estimators "
                f"(or max_iter) parameters (got {describe(estimator)}); use steps='refit'"
            )
        self.estimator = estimator
        self.classes = None if classes is None else np.asarray(classes)
        if self.classes is not None and self.classes.ndim != 1:
            raise InvalidInput(f"'classes' must be 1-D (got {describe(self.classes)})")
        self.loss = loss
        self.n_estimators_per_step = n_estimators_per_step
        self._mode: str = steps
        self._growth = growth
        self._step = 0
        self._fitted = steps == "partial_fit"
        self._seen_x: list[np.ndarray] = []
        self._seen_y: list[np.ndarray] = []
        if steps == "warm_start":
            self.estimator.set_params(warm_start=True)

    def __repr__(self) -> str:
        return (
            f"SklearnTrainer({type(self.estimator).__name__}, steps={self._mode!r}, "
            f"step={self._step})"
        )

    @property
    def mode(self) -> str:
        """What a step does: ``"partial_fit"``, ``"refit"`` or ``"warm_start"``."""
        return self._mode

    @property
    def step(self) -> int:
        """How many `train_step` calls the estimator has seen (restored by `load`)."""
        return self._step

    def _labels(self, y: Any) -> np.ndarray | None:
        if self.classes is not None:
            return self.classes
        fitted = getattr(self.estimator, "classes_", None) if self._fitted else None
        seen = [*self._seen_y, np.asarray(y)]
        labels = np.unique(np.concatenate([np.ravel(v) for v in seen]))
        return labels if fitted is None else np.union1d(np.asarray(fitted), labels)

    def _is_classifier(self) -> bool:
        return bool(_import_sklearn().base.is_classifier(self.estimator))

    def _batch_loss(self, X: Any, y: Any) -> float:
        if self.loss is not None:
            return float(self.loss(self.estimator, X, y))
        metrics = _import_metrics()
        if self._mode == "partial_fit":
            if hasattr(self.estimator, "predict_proba"):
                labels = self.classes if self.classes is not None else self.estimator.classes_
                proba = self.estimator.predict_proba(X)  # columns in sorted class order
                return float(metrics.log_loss(y, proba, labels=np.unique(labels)))
            if self.classes is not None and hasattr(self.estimator, "decision_function"):
                decision = self.estimator.decision_function(X)
                return float(metrics.hinge_loss(y, decision, labels=self.classes))
            return float(metrics.mean_squared_error(y, self.estimator.predict(X)))
        if not self._is_classifier():
            predicted = self.estimator.predict(X) if self._fitted else np.zeros_like(y, float)
            return float(metrics.mean_squared_error(y, predicted))
        labels = self._labels(y)
        assert labels is not None
        labels = np.unique(labels)  # scikit-learn's metrics read columns in sorted order
        n = len(np.asarray(y))
        has_proba = hasattr(self.estimator, "predict_proba")
        if not self._fitted:  # untrained: uniform probabilities, or a zero decision function
            return float(np.log(len(labels))) if has_proba else 1.0
        if has_proba:
            proba = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
            full = np.zeros((n, len(labels)))
            where = {label: i for i, label in enumerate(labels.tolist())}
            columns = [where[label] for label in np.asarray(self.estimator.classes_).tolist()]
            full[:, columns] = proba
            return float(metrics.log_loss(y, full, labels=labels))
        decision = np.asarray(self.estimator.decision_function(X), dtype=np.float64)
        return float(metrics.hinge_loss(y, decision, labels=labels))

    def train_step(self, batch: Any) -> float:
        """One step on ``batch = (X, y)`` (see the class for what a step is); the loss.

        Raises:
            InvalidInput: ``batch`` is not a pair.
        """
        X, y = check_pair(batch, "batch", "(X, y)")
        if self._mode == "partial_fit":
            if self.classes is not None:
                self.estimator.partial_fit(X, y, classes=self.classes)
            else:
                self.estimator.partial_fit(X, y)
            self._step += 1
            return self._batch_loss(X, y)
        loss = self._batch_loss(X, y)
        self._seen_x.append(np.asarray(X))
        self._seen_y.append(np.asarray(y))
        data_x, data_y = np.concatenate(self._seen_x), np.concatenate(self._seen_y)
        if self._mode == "refit":
            fresh = _import_sklearn().base.clone(self.estimator)
            fresh.fit(data_x, data_y)
            self.estimator = _restore_into(self.estimator, fresh)
        else:
            assert self._growth is not None
            grown = (self._step + 1) * self.n_estimators_per_step
            self.estimator.set_params(**{self._growth: grown})
            self.estimator.fit(data_x, data_y)
        self._fitted = True
        self._step += 1
        return loss

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
        _fitted_state("", self.estimator, out)
        out["step"] = np.array(self._step, dtype=np.int64)
        if self._mode != "partial_fit":
            out["data/n_rows"] = np.array(sum(len(v) for v in self._seen_y), dtype=np.int64)
            out["data#sha256"] = _digest((self._seen_x, self._seen_y))
        return dict(sorted(out.items()))

    def save(self, path: str | Path) -> None:
        """Pickle the estimator, the step counter and the data seen to ``path``."""
        with open(Path(path), "wb") as handle:
            pickle.dump(
                {
                    "estimator": self.estimator,
                    "step": self._step,
                    "fitted": self._fitted,
                    "seen": (self._seen_x, self._seen_y),
                },
                handle,
                protocol=pickle.HIGHEST_PROTOCOL,
            )

    def load(self, path: str | Path) -> None:
        """Restore the state pickled at ``path`` (trusted files only).

        The estimator object stays the same (``trainer.estimator`` is still the one you
        passed); its state, its sub-estimators' and its random generators' are restored
        in place.
        """
        with open(Path(path), "rb") as handle:
            data = pickle.load(handle)  # documented: trusted checkpoints only
        self.estimator = _restore_into(self.estimator, data["estimator"])
        self._step = int(data["step"])
        self._fitted = bool(data.get("fitted", self._mode == "partial_fit"))
        seen_x, seen_y = data.get("seen", ([], []))
        self._seen_x, self._seen_y = list(seen_x), list(seen_y)
