"""LightGBM adapter: `LightGBMTrainer` drives ``lightgbm.train`` as a `Trainer`, rounds as steps.

Install with ``pip install "mlchecks-infra[lightgbm]"``; LightGBM is imported only when a
`LightGBMTrainer` is built, so importing this module costs nothing.

Each `train_step` adds ``rounds_per_step`` boosting rounds to the current booster with
``lightgbm.train(..., init_model=booster)`` and returns the last value of the metric on
the step's training data, read with ``lightgbm.record_evaluation``.

>>> from sklearn.datasets import load_breast_cancer  # doctest: +SKIP
>>> X, y = load_breast_cancer(return_X_y=True)  # doctest: +SKIP
>>> params = {"objective": "binary", "num_threads": 1, "seed": 0, "verbose": -1}
>>> trainer = LightGBMTrainer(params, rounds_per_step=2)  # doctest: +SKIP
>>> loss = trainer.train_step((X, y))  # doctest: +SKIP
>>> trainer.step, trainer.booster.current_iteration()  # doctest: +SKIP
(1, 2)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.integrations import _boosting
from mlchecks.integrations._leaves import flatten

__all__ = ["LightGBMTrainer"]

_MODEL_FILE = "model.txt"
_ESTIMATOR_FILE = "model.pkl"


def _import_lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MissingDependency(
            'LightGBMTrainer needs LightGBM: pip install "mlchecks-infra[lightgbm]"'
        ) from exc
    return lightgbm


class LightGBMTrainer:
    """A LightGBM booster trained ``rounds_per_step`` rounds a step, native or scikit-learn API.

    Args:
        params: the parameters you pass to ``lightgbm.train`` (objective, ``metric``,
            ``learning_rate``, ``bagging_fraction``, ``seed``, ``num_threads``: set
            ``num_threads=1`` and ``deterministic=True`` for bitwise reproducible runs,
            ``verbose=-1`` for quiet ones); or a scikit-learn estimator
            (``LGBMClassifier``, ``LGBMRegressor``), then trained with
            ``fit(X, y, eval_set=..., init_model=booster, callbacks=...)`` and its
            ``n_estimators`` set to ``rounds_per_step``.
        rounds_per_step: boosting rounds each `train_step` adds.
        valid_sets: ``(X, y)`` pairs evaluated every round after the step's training data
            (named ``"train"``).
        valid_names: their names (None: ``valid_0``, ``valid_1``, ...).
        loss_data: the evaluated data set whose metric `train_step` returns.
        loss_metric: the metric `train_step` returns (None: the last one evaluated).
        callbacks: callables ``callback(env)`` passed to ``lightgbm.train``, the same objects
            every step (a callback class keeps its attributes across steps).
        save: ``save(booster, file)``, your checkpoint code for the booster (None:
            ``booster.save_model(file, num_iteration=-1)``, every tree, with the best
            iteration and score kept in ``trainer.json``).
        load: ``load(file) -> Booster`` (None: ``lightgbm.Booster(model_file=file)``).
            With an estimator, ``save(estimator, file)`` and ``load(file) -> estimator``
            (None: the estimator pickled, as ``joblib.dump`` would; trusted files only).

    A batch is an ``(X, y)`` pair, made into a ``lightgbm.Dataset`` each step. `predict`
    returns ``booster.predict(inputs)``: probabilities for ``binary`` and ``multiclass``,
    values for regression objectives (at the best iteration when one is set).

    `state` is a bitwise fingerprint: ``model`` (``model_to_string(num_iteration=-1)``:
    every tree and the parameters, seeds included), ``current_iteration``,
    ``best_iteration`` (0 when unset), ``best_score/<data>/<metric>``,
    ``callbacks/<i>/<attribute>`` (the numeric state of each callback object) and ``step``.

    LightGBM's own ``save_model`` does not keep ``best_iteration`` or ``best_score`` (a
    booster loaded from the file has ``best_iteration == -1``), and with its default
    ``num_iteration=None`` it writes only the trees up to the best iteration. The default
    checkpoint (a directory: ``model.txt``, ``trainer.json``, and the callbacks pickled in
    ``callbacks.pkl``, trusted files only) keeps them all; your own ``save``/``load`` keep
    what they write, and `mlchecks.checks.training.CheckpointRestoreCheck` names the rest.

    Raises:
        MissingDependency: LightGBM is not installed.
        InvalidInput: ``params`` is not a mapping, or a field is out of range.
    """

    def __init__(
        self,
        params: Mapping[str, Any] | Any,
        *,
        rounds_per_step: int = 1,
        valid_sets: Sequence[Any] = (),
        valid_names: Sequence[str] | None = None,
        loss_data: str = "train",
        loss_metric: str | None = None,
        callbacks: Sequence[Callable[..., Any]] = (),
        save: Callable[[Any, str], None] | None = None,
        load: Callable[[str], Any] | None = None,
    ) -> None:
        lgb = _import_lightgbm()
        self.model: Any
        self.model, self.params = _boosting.estimator_or_params(
            params, lgb.LGBMModel, "a LightGBM estimator"
        )
        self.rounds_per_step = _boosting.check_rounds(rounds_per_step)
        self.valid_sets = [_boosting.check_pair(v, "an (X, y) pair") for v in valid_sets]
        names = [f"valid_{i}" for i in range(len(self.valid_sets))]
        self.valid_names = names if valid_names is None else [str(n) for n in valid_names]
        if len(self.valid_names) != len(self.valid_sets):
            raise InvalidInput(
                f"'valid_names' must name each of the {len(self.valid_sets)} valid sets "
                f"(got {len(self.valid_names)} names)"
            )
        self.loss_data = loss_data
        self.loss_metric = loss_metric
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            _boosting.check_callable(callback, "callbacks")
        self.save_fn = _boosting.check_callable(save, "save")
        self.load_fn = _boosting.check_callable(load, "load")
        self._booster: Any = None
        self.history: dict[str, dict[str, list[float]]] = {}
        self._step = 0

    def __repr__(self) -> str:
        rounds = 0 if self.booster is None else self.booster.current_iteration()
        return f"LightGBMTrainer(step={self._step}, rounds={rounds})"

    @property
    def booster(self) -> Any:
        """The current ``lightgbm.Booster`` (None before the first step)."""
        if self.model is not None:
            return self.model.booster_ if self.model.__sklearn_is_fitted__() else None
        return self._booster

    @booster.setter
    def booster(self, value: Any) -> None:
        if self.model is not None:
            raise InvalidInput("set the estimator, not the booster, of an estimator trainer")
        self._booster = value

    def _fit_step(self, X: Any, y: Any) -> dict[str, Any]:
        self.model.set_params(n_estimators=self.rounds_per_step)
        pairs = [(X, y), *self.valid_sets]
        # LightGBM 4.7 takes eval_X/eval_y and deprecates eval_set; older 4.x only eval_set.
        if "eval_X" in inspect.signature(self.model.fit).parameters:
            evals: dict[str, Any] = {
                "eval_X": tuple(p[0] for p in pairs),
                "eval_y": tuple(p[1] for p in pairs),
            }
        else:  # pragma: no cover - LightGBM < 4.7
            evals = {"eval_set": pairs}
        self.model.fit(
            X,
            y,
            eval_names=["train", *self.valid_names],
            init_model=self.booster,
            callbacks=list(self.callbacks),
            **evals,
        )
        return dict(self.model.evals_result_)

    @property
    def step(self) -> int:
        """How many `train_step` calls the booster has seen (restored by `load`)."""
        return self._step

    def train_step(self, batch: Any) -> float:
        """Add ``rounds_per_step`` rounds on ``batch = (X, y)``; the step's last loss.

        Raises:
            InvalidInput: ``batch`` is not a pair, or the loss data or metric was not
                evaluated.
        """
        lgb = _import_lightgbm()
        X, y = _boosting.check_pair(batch, "an (X, y) pair")
        if self.model is not None:
            self._step += 1
            return self._record(self._fit_step(X, y))
        train_set = lgb.Dataset(X, y, params=self.params)
        valid = [lgb.Dataset(Xv, yv, reference=train_set) for Xv, yv in self.valid_sets]
        history: dict[str, Any] = {}
        self.booster = lgb.train(
            self.params,
            train_set,
            num_boost_round=self.rounds_per_step,
            valid_sets=[train_set, *valid],
            valid_names=["train", *self.valid_names],
            init_model=self.booster,
            callbacks=[lgb.record_evaluation(history), *self.callbacks],
        )
        self._step += 1
        return self._record(history)

    def _record(self, history: Mapping[str, Mapping[str, Any]]) -> float:
        for data, metrics in history.items():
            for metric, values in metrics.items():
                self.history.setdefault(data, {}).setdefault(metric, []).extend(
                    float(v) for v in values
                )
        return _boosting.last_loss(history, self.loss_data, self.loss_metric)

    def predict(self, inputs: Any) -> np.ndarray:
        """``booster.predict(inputs)`` as a numpy array.

        Raises:
            InvalidInput: nothing has been trained yet.
        """
        if self.booster is None:
            raise InvalidInput("the booster has not been trained yet: call train_step first")
        if self.model is not None:
            method = getattr(self.model, "predict_proba", self.model.predict)
            return np.asarray(method(inputs))
        return np.asarray(self.booster.predict(inputs))

    def state(self) -> dict[str, np.ndarray]:
        """The booster's text and metadata, callback state and ``step`` (see the class)."""
        out: dict[str, np.ndarray] = {"step": np.array(self._step, dtype=np.int64)}
        if self.booster is not None:
            text = self.booster.model_to_string(num_iteration=-1).encode()
            out["model"] = np.frombuffer(text, dtype=np.uint8).copy()
            out["current_iteration"] = np.array(self.booster.current_iteration())
            out["best_iteration"] = np.array(max(int(self.booster.best_iteration), 0))
            flatten("best_score", dict(self.booster.best_score), out)
        out.update(_boosting.callback_state(self.callbacks))
        return dict(sorted(out.items()))

    def save(self, path: str | Path) -> None:
        """Write the checkpoint directory ``path`` (see the class).

        Raises:
            InvalidInput: nothing has been trained yet.
        """
        if self.booster is None:
            raise InvalidInput("the booster has not been trained yet: nothing to save")
        directory = Path(path)
        os.makedirs(directory, exist_ok=True)
        file = str(directory / _MODEL_FILE)
        meta: dict[str, Any] = {"step": self._step}
        if self.model is not None:
            if self.save_fn is None:
                _boosting.write_pickle(directory / _ESTIMATOR_FILE, self.model)
                _boosting.write_callbacks(directory, self.callbacks)
            else:
                self.save_fn(self.model, str(directory / _ESTIMATOR_FILE))
        elif self.save_fn is None:
            self.booster.save_model(file, num_iteration=-1)
            _boosting.write_callbacks(directory, self.callbacks)
            meta["best_iteration"] = int(self.booster.best_iteration)
            meta["best_score"] = {
                data: {metric: float(value) for metric, value in scores.items()}
                for data, scores in self.booster.best_score.items()
            }
        else:
            self.save_fn(self.booster, file)
        _boosting.write_meta(directory, meta)

    def load(self, path: str | Path) -> None:
        """Restore the booster, the step counter and (default load) the best iteration,
        best score and callbacks."""
        lgb = _import_lightgbm()
        directory = Path(path)
        file = str(directory / _MODEL_FILE)
        meta = _boosting.read_meta(directory)
        self._step = int(meta["step"])
        if self.model is not None:
            estimator_file = directory / _ESTIMATOR_FILE
            if self.load_fn is None:
                self.model = _boosting.read_pickle(estimator_file)
                callbacks = _boosting.read_callbacks(directory)
                if callbacks is not None:
                    self.callbacks = callbacks
            else:
                self.model = self.load_fn(str(estimator_file))
            return
        if self.load_fn is None:
            booster = lgb.Booster(model_file=file)
            if "best_iteration" in meta:
                booster.best_iteration = int(meta["best_iteration"])
            for data, scores in meta.get("best_score", {}).items():
                booster.best_score.setdefault(data, {}).update(scores)
            callbacks = _boosting.read_callbacks(directory)
            if callbacks is not None:
                self.callbacks = callbacks
        else:
            booster = self.load_fn(file)
        self.booster = booster
        self._step = int(meta["step"])
