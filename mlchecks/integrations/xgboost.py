"""XGBoost adapter: `XGBoostTrainer` drives ``xgboost.train`` as a `Trainer`, rounds as steps.

Install with ``pip install "mlchecks-infra[xgboost]"`` (or ``pip install xgboost-cpu`` for the
CPU-only wheel); XGBoost is imported only when an `XGBoostTrainer` is built, so importing
this module costs nothing.

Each `train_step` adds ``rounds_per_step`` boosting rounds to the current booster with
``xgboost.train(..., xgb_model=booster)`` and returns the last value of the evaluation
metric on the step's training data, read from ``evals_result``.

>>> import numpy as np  # doctest: +SKIP
>>> import xgboost as xgb  # doctest: +SKIP
>>> from sklearn.datasets import load_breast_cancer  # doctest: +SKIP
>>> X, y = load_breast_cancer(return_X_y=True)  # doctest: +SKIP
>>> params = {"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1}
>>> trainer = XGBoostTrainer(params, rounds_per_step=2)  # doctest: +SKIP
>>> loss = trainer.train_step(xgb.DMatrix(X, label=y))  # doctest: +SKIP
>>> trainer.step, trainer.booster.num_boosted_rounds()  # doctest: +SKIP
(1, 2)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.integrations import _boosting

__all__ = ["XGBoostTrainer"]

_MODEL_FILE = "model.ubj"


def _import_xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise MissingDependency(
            'XGBoostTrainer needs XGBoost: pip install "mlchecks-infra[xgboost]"'
        ) from exc
    return xgboost


def _model_bytes(booster: Any) -> np.ndarray:
    """The booster's JSON model (trees, configuration, attributes) as bytes, keys sorted.

    ``boost_from_average`` is left out once trees exist: it only decides how the first
    round estimates ``base_score`` (kept), and ``XGBModel.load_model`` resets it to 0
    without changing what the model computes or how it trains on.
    """
    model = json.loads(bytes(booster.save_raw(raw_format="json")))
    if booster.num_boosted_rounds() > 0:
        model.get("learner", {}).get("learner_model_param", {}).pop("boost_from_average", None)
    text: bytes = json.dumps(model, sort_keys=True, separators=(",", ":")).encode()
    out: np.ndarray = np.frombuffer(text, dtype=np.uint8).copy()
    return out


class XGBoostTrainer:
    """An XGBoost booster trained ``rounds_per_step`` rounds a step, native or scikit-learn API.

    Args:
        params: the booster parameters you pass to ``xgboost.train`` (objective,
            ``eval_metric``, ``eta``, ``max_depth``, ``subsample``, ``seed``,
            ``nthread``: set ``nthread=1`` and a ``seed`` for bitwise reproducible runs);
            or a scikit-learn estimator (``XGBClassifier``, ``XGBRegressor``), then trained
            with ``fit(X, y, eval_set=..., xgb_model=booster)`` and its ``n_estimators``
            set to ``rounds_per_step``; its ``callbacks`` are the callbacks.
        rounds_per_step: boosting rounds each `train_step` adds.
        evals: more ``(DMatrix, name)`` pairs evaluated every round, after the step's
            training data (named ``"train"``); the last one is what an ``EarlyStopping``
            callback watches by default. With an estimator, ``((X, y), name)`` pairs.
        loss_data: the evaluated data set whose metric `train_step` returns.
        loss_metric: the metric `train_step` returns (None: the last in ``eval_metric``,
            the one early stopping uses).
        callbacks: ``xgboost.callback.TrainingCallback`` objects, kept across steps (an
            ``EarlyStopping`` keeps its best score and patience counter between steps).
        obj, custom_metric: passed to ``xgboost.train``.
        save: ``save(booster, file)``, your checkpoint code for the booster (None:
            ``booster.save_model(file)``); with an estimator ``save(estimator, file)``
            (None: ``estimator.save_model(file)``).
        load: ``load(file) -> Booster`` (None: ``xgboost.Booster(model_file=file)``); with
            an estimator ``load(file) -> estimator`` (None: ``estimator.load_model(file)``).

    A batch is a ``DMatrix`` or an ``(X, y)`` pair (made into a ``DMatrix``; an estimator
    takes the pair). `predict` returns ``booster.predict`` on a ``DMatrix`` of the inputs:
    probabilities for ``binary:logistic`` and ``multi:softprob``, values for regression
    objectives (an estimator's ``predict_proba``, or ``predict`` for a regressor).

    `state` is a bitwise fingerprint: ``model`` (the bytes of the JSON model of
    ``save_raw("json")``: trees, configuration and attributes; without the
    ``boost_from_average`` flag once trees exist, which ``XGBModel.load_model`` resets),
    ``num_boosted_rounds``, ``best_iteration`` (-1 when unset), ``best_score``,
    ``callbacks/<i>/<attribute>`` (the numeric state of each callback object) and ``step``.

    A checkpoint is a directory: ``model.ubj`` written by ``save``, ``trainer.json`` with
    the step counter, and, with the default ``save`` only, the callbacks pickled in
    ``callbacks.pkl`` (restored by the default ``load``; trusted files only). Your own
    ``save``/``load`` write and read the booster only: callback state they do not keep is
    what `mlchecks.checks.training.CheckpointRestoreCheck` reports.

    Raises:
        MissingDependency: XGBoost is not installed.
        InvalidInput: ``params`` is not a mapping, or a field is out of range.
    """

    def __init__(
        self,
        params: Mapping[str, Any] | Any,
        *,
        rounds_per_step: int = 1,
        evals: Sequence[tuple[Any, str]] = (),
        loss_data: str = "train",
        loss_metric: str | None = None,
        callbacks: Sequence[Any] = (),
        obj: Callable[..., Any] | None = None,
        custom_metric: Callable[..., Any] | None = None,
        save: Callable[[Any, str], None] | None = None,
        load: Callable[[str], Any] | None = None,
    ) -> None:
        xgb = _import_xgboost()
        self.model: Any
        self.model, self.params = _boosting.estimator_or_params(
            params, xgb.XGBModel, "an XGBoost estimator"
        )
        self.rounds_per_step = _boosting.check_rounds(rounds_per_step)
        self.evals = [(data, str(name)) for data, name in evals]
        if self.model is not None:
            for data, _ in self.evals:
                _boosting.check_pair(data, "an (X, y) pair")
            if callbacks:
                raise InvalidInput(
                    "'callbacks' go into the estimator (XGBClassifier(callbacks=...)) "
                    f"(got {len(callbacks)} here)"
                )
        self.loss_data = loss_data
        self.loss_metric = loss_metric
        self.callbacks = list(callbacks)
        self.obj = _boosting.check_callable(obj, "obj")
        self.custom_metric = _boosting.check_callable(custom_metric, "custom_metric")
        self.save_fn = _boosting.check_callable(save, "save")
        self.load_fn = _boosting.check_callable(load, "load")
        self._booster: Any = None
        self.history: dict[str, dict[str, list[float]]] = {}
        self._step = 0

    def __repr__(self) -> str:
        rounds = 0 if self.booster is None else self.booster.num_boosted_rounds()
        return f"XGBoostTrainer(step={self._step}, rounds={rounds})"

    @property
    def _xgb(self) -> Any:
        return _import_xgboost()

    @property
    def booster(self) -> Any:
        """The current ``xgboost.Booster`` (None before the first step)."""
        if self.model is not None:
            fitted = self.model.__sklearn_is_fitted__()
            return self.model.get_booster() if fitted else None
        return self._booster

    @booster.setter
    def booster(self, value: Any) -> None:
        if self.model is not None:
            raise InvalidInput("set the estimator, not the booster, of an estimator trainer")
        self._booster = value

    def _callbacks(self) -> list[Any]:
        if self.model is not None:
            return list(self.model.get_params()["callbacks"] or ())
        return self.callbacks

    def _fit_step(self, batch: Any) -> dict[str, Any]:
        X, y = _boosting.check_pair(batch, "an (X, y) pair")
        booster = self.booster
        self.model.set_params(n_estimators=self.rounds_per_step)
        eval_set = [(X, y), *(data for data, _ in self.evals)]
        self.model.fit(X, y, eval_set=eval_set, verbose=False, xgb_model=booster)
        names = ["train", *(name for _, name in self.evals)]
        found = self.model.evals_result()
        return {names[i]: found[f"validation_{i}"] for i in range(len(names))}

    @property
    def step(self) -> int:
        """How many `train_step` calls the booster has seen (restored by `load`)."""
        return self._step

    def _dmatrix(self, data: Any) -> Any:
        if isinstance(data, self._xgb.DMatrix):
            return data
        X, y = _boosting.check_pair(data, "a DMatrix or an (X, y) pair")
        return self._xgb.DMatrix(X, label=y, nthread=self.params.get("nthread", -1))

    def train_step(self, batch: Any) -> float:
        """Add ``rounds_per_step`` rounds on ``batch``; the step's last ``loss_metric``.

        Raises:
            InvalidInput: ``batch`` is neither a DMatrix nor a pair, or the loss data or
                metric was not evaluated.
        """
        if self.model is not None:
            history = self._fit_step(batch)
            self._step += 1
            return self._record(history)
        dtrain = self._dmatrix(batch)
        history = {}
        self.booster = self._xgb.train(
            self.params,
            dtrain,
            num_boost_round=self.rounds_per_step,
            evals=[(dtrain, "train"), *self.evals],
            obj=self.obj,
            custom_metric=self.custom_metric,
            evals_result=history,
            verbose_eval=False,
            xgb_model=self.booster,
            callbacks=self.callbacks or None,
        )
        self._step += 1
        return self._record(history)

    def _record(self, history: Mapping[str, Mapping[str, Any]]) -> float:
        for data, metrics in history.items():
            for metric, values in metrics.items():
                self.history.setdefault(data, {}).setdefault(metric, []).extend(values)
        return _boosting.last_loss(history, self.loss_data, self.loss_metric)

    def predict(self, inputs: Any) -> np.ndarray:
        """``booster.predict`` on ``inputs`` (a DMatrix or an array), as a numpy array.

        Raises:
            InvalidInput: nothing has been trained yet.
        """
        if self.booster is None:
            raise InvalidInput("the booster has not been trained yet: call train_step first")
        if self.model is not None:
            method = getattr(self.model, "predict_proba", self.model.predict)
            return np.asarray(method(inputs))
        if not isinstance(inputs, self._xgb.DMatrix):
            inputs = self._xgb.DMatrix(inputs, nthread=self.params.get("nthread", -1))
        return np.asarray(self.booster.predict(inputs))

    def state(self) -> dict[str, np.ndarray]:
        """The booster's bytes and metadata, callback state and ``step`` (see the class)."""
        out: dict[str, np.ndarray] = {"step": np.array(self._step, dtype=np.int64)}
        if self.booster is not None:
            out["model"] = _model_bytes(self.booster)
            out["num_boosted_rounds"] = np.array(self.booster.num_boosted_rounds())
            best = self.booster.attr("best_iteration")
            out["best_iteration"] = np.array(-1 if best is None else int(best))
            score = self.booster.attr("best_score")
            out["best_score"] = np.array(np.nan if score is None else float(score))
        out.update(_boosting.callback_state(self._callbacks()))
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
        target = self.booster if self.model is None else self.model
        if self.save_fn is None:
            target.save_model(file)
            _boosting.write_callbacks(directory, self._callbacks())
        else:
            self.save_fn(target, file)
        _boosting.write_meta(directory, {"step": self._step})

    def load(self, path: str | Path) -> None:
        """Restore the booster, the step counter and (default load) the callbacks."""
        directory = Path(path)
        file = str(directory / _MODEL_FILE)
        if self.load_fn is None:
            callbacks = _boosting.read_callbacks(directory)
            if self.model is not None:
                self.model.load_model(file)
                if callbacks is not None:
                    self.model.set_params(callbacks=callbacks or None)
            else:
                self.booster = self._xgb.Booster(model_file=file)
                if callbacks is not None:
                    self.callbacks = callbacks
        elif self.model is not None:
            self.model = self.load_fn(file)
        else:
            self.booster = self.load_fn(file)
        self._step = int(_boosting.read_meta(directory)["step"])
