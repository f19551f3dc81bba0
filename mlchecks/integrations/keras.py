"""Keras 3 adapter: `KerasTrainer` wraps a compiled ``keras.Model`` as a `Trainer`.

Install with ``pip install "mlchecks-infra[keras]"``. Keras runs on its PyTorch backend here (no
TensorFlow needed): set the environment variable ``KERAS_BACKEND=torch`` before Keras is
first imported. Keras is imported only when a `KerasTrainer` is built.

A step is ``model.train_on_batch(x, y)``; `predict` is ``model.predict_on_batch``; `save` and
`load` are your checkpoint code: ``model.save`` / ``keras.models.load_model`` (the default),
``model.save_weights`` / ``model.load_weights``, or your own two callables.

>>> import os
>>> _ = os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
>>> import keras, numpy as np
>>> keras.utils.set_random_seed(0)
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
>>> trainer = KerasTrainer(model)
>>> loss = trainer.train_step((np.ones((8, 4), "float32"), np.zeros(8, "int64")))
>>> trainer.predict(np.ones((2, 4), "float32")).shape, trainer.step
((2, 3), 1)
>>> [name for name in trainer.state() if name.startswith("optim/layer0")][:2]
['optim/layer0.Dense/kernel/momentum', 'optim/layer0.Dense/kernel/velocity']
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput, MissingDependency

__all__ = ["KerasTrainer"]

Checkpoint = Literal["model", "weights"]
SaveFn = Callable[[Any, Path], None]
LoadFn = Callable[[Any, Path], Any]


def _import_keras() -> Any:
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - keras is installed where this is tested
        raise MissingDependency(
            'KerasTrainer needs Keras 3: pip install "mlchecks-infra[keras]"'
        ) from exc
    return keras


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the one known NumPy 2 deprecation Keras 3 triggers on its torch backend."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="__array__ implementation doesn't accept a copy keyword",
            category=DeprecationWarning,
        )
        yield


def _numpy(value: Any) -> np.ndarray:
    """A Keras variable or backend tensor as a numpy array that owns its data."""
    value = getattr(value, "value", value)
    if hasattr(value, "detach"):
        return np.array(value.detach().cpu().numpy(), copy=True)
    return np.array(value, copy=True)


#: The sidecar entry holding torch's global generator (unseeded dropout draws from it).
_TORCH_RNG = "torch"


def _torch_rng() -> np.ndarray:
    import torch

    return np.array(torch.get_rng_state().numpy(), copy=True)


def _set_torch_rng(state: np.ndarray) -> None:
    import torch

    torch.set_rng_state(torch.from_numpy(np.array(state, dtype=np.uint8)))


def _walk(layer: Any) -> Iterator[Any]:
    """``layer`` and every layer nested in it (public ``layers`` attributes)."""
    yield layer
    for child in getattr(layer, "layers", ()) or ():
        yield from _walk(child)


class KerasTrainer:
    """A compiled Keras 3 model driven one ``train_on_batch`` at a time.

    Args:
        model: a ``keras.Model`` compiled with an optimizer and a loss.
        checkpoint: what `save` and `load` do when ``save``/``load`` are not given:
            ``"model"`` writes the whole model with ``model.save`` (weights, optimizer
            variables, compile configuration) and restores it with
            ``keras.models.load_model``; ``"weights"`` uses ``model.save_weights`` /
            ``model.load_weights`` (the weights only: the optimizer starts over).
        save: your own checkpoint code, ``save(model, path)``.
        load: your own restore code, ``load(model, path)``; return a model to replace the
            wrapped one (as ``keras.models.load_model`` does) or None (restored in place).

    A batch is ``(x, y)`` or ``(x, y, sample_weight)``. Keras checks file suffixes: when
    ``path`` does not end in ``.keras`` (``"model"``) or ``.weights.h5`` (``"weights"``),
    the file written is ``path`` with that suffix appended.

    `state` names are structural, so two models built alike have the same names whatever
    Keras numbered their layers: ``param/layer<i>.<Class>/<variable>`` (trainable weights,
    and the weights of a layer frozen with ``layer.trainable = False``),
    ``buffer/...`` (other non-trainable variables, such as batch-norm moving statistics),
    ``rng/...`` (seed generator states, such as a ``Dropout``'s),
    ``optim/<param name>/<slot>`` (Adam moments, momentum) and ``optim/<name>`` (the
    iteration counter, learning rate), ``rng/torch`` (torch's global generator: a
    ``Dropout`` without a ``seed`` draws from it) and ``step`` (the optimizer's iterations).

    The default `save` writes, beside the Keras file, ``<file>.rng.npz`` with the seed
    generator states and torch's global generator state, which Keras files do not hold;
    the default `load` restores them, so training resumes exactly. Your own ``save`` and
    ``load`` are used as they are.

    Raises:
        MissingDependency: Keras is not installed.
        InvalidInput: ``model`` is not a compiled ``keras.Model``, or ``checkpoint`` is
            unknown.
    """

    global_state = ("rng",)  # torch's global generator: checks on threads run one at a time

    def __init__(
        self,
        model: Any,
        *,
        checkpoint: Checkpoint = "model",
        save: SaveFn | None = None,
        load: LoadFn | None = None,
    ) -> None:
        keras = _import_keras()
        if not isinstance(model, keras.Model):
            raise InvalidInput(f"'model' must be a keras.Model (got {describe(model)})")
        if getattr(model, "optimizer", None) is None:
            raise InvalidInput(
                "'model' must be compiled with an optimizer and a loss (call model.compile)"
            )
        if checkpoint not in ("model", "weights"):
            raise InvalidInput(f"'checkpoint' must be 'model' or 'weights' (got {checkpoint!r})")
        for name, fn in (("save", save), ("load", load)):
            if fn is not None and not callable(fn):
                raise InvalidInput(f"'{name}' must be callable or None (got {describe(fn)})")
        if keras.backend.backend() != "torch":
            raise InvalidInput(
                "KerasTrainer needs Keras on its torch backend: set KERAS_BACKEND=torch before "
                f"importing keras (got backend {keras.backend.backend()!r})"
            )
        self.model = model
        self.checkpoint: Checkpoint = checkpoint
        self._save = save
        self._load = load
        self._stepped = False

    def __repr__(self) -> str:
        return f"KerasTrainer({type(self.model).__name__}, checkpoint={self.checkpoint!r})"

    @property
    def step(self) -> int:
        """The optimizer's iteration counter (restored by `load` with ``"model"``)."""
        return int(_numpy(self.model.optimizer.iterations))

    # ------------------------------------------------------------------ the protocol

    def train_step(self, batch: Any) -> float:
        """``model.train_on_batch(x, y[, sample_weight])``; returns the batch loss.

        Raises:
            InvalidInput: ``batch`` is not ``(x, y)`` or ``(x, y, sample_weight)``.
        """
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise InvalidInput(
                f"'batch' must be (x, y) or (x, y, sample_weight) (got {describe(batch)})"
            )
        with _quiet():
            loss = self.model.train_on_batch(*batch)
        self._stepped = True
        return float(_numpy(loss).reshape(-1)[0])

    def predict(self, inputs: Any) -> np.ndarray:
        """``model.predict_on_batch(inputs)`` (inference mode) as a numpy array."""
        with _quiet():
            return _numpy(self.model.predict_on_batch(inputs))

    def _names(self) -> tuple[dict[int, str], set[int]]:
        """Variable id -> structural name (without its kind), and the ids of parameters."""
        names: dict[int, str] = {}
        params: set[int] = {id(v) for v in self.model.trainable_variables}
        for i, layer in enumerate(self.model.layers):
            for sub in _walk(layer):
                # A layer frozen with `trainable = False` keeps its weights in this list.
                params.update(id(v) for v in getattr(sub, "_trainable_variables", ()))
            prefix = f"layer{i}.{type(layer).__name__}"
            seen: set[str] = set()
            for v in layer.variables:
                parts = str(v.path).split("/")
                rest = parts[parts.index(layer.name) + 1 :] if layer.name in parts else [v.name]
                name = "/".join(rest) or str(v.name)
                while name in seen:
                    name += "_"
                seen.add(name)
                names.setdefault(id(v), f"{prefix}/{name}")
        for v in self.model.variables:  # variables of the model itself
            names.setdefault(id(v), f"model/{v.name}")
        return names, params

    @staticmethod
    def _kind(variable: Any, params: set[int]) -> str:
        if id(variable) in params:
            return "param"
        if "seed_generator" in str(variable.path):
            return "rng"
        return "buffer"

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the weights, optimizer variables and seed states (see the class)."""
        names, params = self._names()
        out: dict[str, np.ndarray] = {}
        prefixes: list[tuple[str, str]] = []
        for v in self.model.variables:
            key = f"{self._kind(v, params)}/{names[id(v)]}"
            out[key] = _numpy(v)
            prefixes.append((str(v.path).replace("/", "_") + "_", key.split("/", 1)[1]))
        prefixes.sort(key=lambda pair: -len(pair[0]))
        for v in self.model.optimizer.variables:
            slot_name = str(v.name)
            for prefix, param in prefixes:
                if slot_name.startswith(prefix):
                    slot_name = f"{param}/{slot_name[len(prefix) :]}"
                    break
            out[f"optim/{slot_name}"] = _numpy(v)
        out["rng/torch"] = _torch_rng()
        out["step"] = np.array(self.step, dtype=np.int64)
        return out

    def _file(self, path: str | Path) -> Path:
        suffix = ".keras" if self.checkpoint == "model" else ".weights.h5"
        path = Path(path)
        if self._save is not None or str(path).endswith(suffix):
            return path
        return path.with_name(path.name + suffix)

    def _rng_file(self, file: Path) -> Path:
        return file.with_name(file.name + ".rng.npz")

    def _seed_variables(self) -> dict[str, Any]:
        names, params = self._names()
        return {names[id(v)]: v for v in self.model.variables if self._kind(v, params) == "rng"}

    def save(self, path: str | Path) -> None:
        """Write a checkpoint: your ``save``, or ``model.save`` / ``model.save_weights`` plus
        the seed generator states beside it (``<file>.rng.npz``: Keras files omit them)."""
        file = self._file(path)
        with _quiet():
            if self._save is not None:
                self._save(self.model, file)
                return
            if self.checkpoint == "model":
                self.model.save(file)
            else:
                self.model.save_weights(file)
            seeds = {name: _numpy(v) for name, v in self._seed_variables().items()}
            seeds[_TORCH_RNG] = _torch_rng()
        with open(self._rng_file(file), "wb") as handle:
            np.savez(handle, **seeds)  # type: ignore[arg-type]

    def load(self, path: str | Path) -> None:
        """Restore from ``path``: your ``load``, or ``keras.models.load_model`` (the loaded
        model replaces the wrapped one) / ``model.load_weights`` (after building the
        optimizer, so its saved variables load), then the seed generator states."""
        file = self._file(path)
        with _quiet():
            if self._load is not None:
                loaded = self._load(self.model, file)
                if loaded is not None:
                    self.model = loaded
                self._stepped = False
                return
            if self.checkpoint == "model":
                self.model = _import_keras().models.load_model(file)
            else:
                optimizer = self.model.optimizer
                if not optimizer.built:
                    optimizer.build(self.model.trainable_variables)
                self.model.load_weights(file)
            rng = self._rng_file(file)
            if rng.exists():
                variables = self._seed_variables()
                with np.load(rng) as saved:
                    for name in saved.files:
                        if name == _TORCH_RNG:
                            _set_torch_rng(saved[name])
                        elif name in variables:
                            variables[name].assign(saved[name])
        self._stepped = False

    # ------------------------------------------------------------------ the extras

    def gradients(self) -> dict[str, np.ndarray | None]:
        """The gradients of the last `train_step`, keyed ``param/<name>`` like `state`.

        Every parameter appears: the weights of a layer frozen with ``layer.trainable =
        False`` with None (they take no gradient), so `SingleBatchCheck` names a layer
        frozen by mistake. Empty before the first step.
        """
        if not self._stepped:
            return {}
        names, params = self._names()
        trainable = {id(v) for v in self.model.trainable_variables}
        out: dict[str, np.ndarray | None] = {}
        for v in self.model.variables:
            if id(v) not in params:
                continue
            key = f"param/{names[id(v)]}"
            if id(v) not in trainable:
                out[key] = None
                continue
            grad = getattr(getattr(v, "value", None), "grad", None)
            value = _numpy(v)
            out[key] = np.zeros_like(value) if grad is None else _numpy(grad).astype(value.dtype)
        return out
