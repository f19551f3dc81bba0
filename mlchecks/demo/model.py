"""The demo system's model: a one-hidden-layer MLP classifier trained with Adam.

`MLPTrainer` implements the `mlchecks.protocols.Trainer` protocol with everything a real
trainer has that checks care about: parameters, Adam moment estimates and step counter,
a random generator that drives dropout, real ``.npz`` checkpoint files, the gradients of
the last step and named activations.

The model: ``hidden = relu(X @ W1 + b1)``, dropout on ``hidden`` while training,
``logits = hidden @ W2 + b2``, softmax. The loss is the mean softmax cross-entropy. The
update is AdamW (Adam with bias correction; decoupled weight decay on ``W1`` and ``W2``
only) with the step size ``lr / sqrt(t)`` at step ``t = 1, 2, ...``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlchecks._validate import as_array, as_labels, check_pair, describe
from mlchecks.exceptions import InvalidInput

__all__ = [
    "PARAM_NAMES",
    "MLPTrainer",
    "make_batches",
    "param_fingerprint",
    "predict_proba",
]

PARAM_NAMES: tuple[str, ...] = ("W1", "b1", "W2", "b2")
Batch = tuple[np.ndarray, np.ndarray]

_MASK64 = (1 << 64) - 1


def predict_proba(params: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Class probabilities of the MLP with ``params`` (keys `PARAM_NAMES`) on features ``X``.

    The inference function serving uses; no dropout, no validation.

    >>> params = {"W1": np.eye(2), "b1": np.zeros(2), "W2": np.eye(2), "b2": np.zeros(2)}
    >>> predict_proba(params, np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    """
    with np.errstate(all="ignore"):  # non-finite parameters give NaN outputs, not warnings
        hidden = np.maximum(X @ params["W1"] + params["b1"], 0.0)
        return _softmax(hidden @ params["W2"] + params["b2"])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def param_fingerprint(arrays: Iterable[np.ndarray]) -> str:
    """A 16-hex-digit SHA-256 prefix of the bytes of ``arrays`` (in order).

    Two trainers whose parameters are bitwise equal have equal fingerprints.

    >>> param_fingerprint([np.zeros(2)])
    '374708fff7719dd5'
    """
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _encode_rng(generator: np.random.Generator) -> np.ndarray:
    """The PCG64 state as 6 uint64: state (hi, lo), increment (hi, lo), has_uint32, uinteger."""
    state = generator.bit_generator.state
    inner = state["state"]
    return np.array(
        [
            inner["state"] >> 64,
            inner["state"] & _MASK64,
            inner["inc"] >> 64,
            inner["inc"] & _MASK64,
            state["has_uint32"],
            state["uinteger"],
        ],
        dtype=np.uint64,
    )


def _decode_rng(encoded: np.ndarray) -> dict[str, Any]:
    hi, lo, inc_hi, inc_lo, has_uint32, uinteger = (int(v) for v in encoded.tolist())
    return {
        "bit_generator": "PCG64",
        "state": {"state": (hi << 64) | lo, "inc": (inc_hi << 64) | inc_lo},
        "has_uint32": has_uint32,
        "uinteger": uinteger,
    }


def _positive(value: Any, name: str, *, integer: bool = False, upper: float | None = None) -> Any:
    kinds: tuple[type, ...] = (
        (int, np.integer) if integer else (int, float, np.integer, np.floating)
    )
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(float(value)) and value > 0 and (upper is None or value < upper)
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f" in (0, {upper})" if upper is not None else " > 0"
        raise InvalidInput(f"'{name}' must be {kind}{bound} (got {describe(value)})")
    return int(value) if integer else float(value)


class MLPTrainer:
    """A one-hidden-layer MLP classifier with Adam, dropout and real checkpoints.

    Args:
        n_features: input width.
        n_classes: number of classes (>= 2).
        hidden: hidden units.
        lr: base step size; step ``t`` uses ``lr / sqrt(t)``.
        dropout: probability of zeroing each hidden unit while training, in [0, 1).
        weight_decay: decoupled weight decay on ``W1`` and ``W2`` (>= 0).
        seed: seeds the generator that draws the initial weights and the dropout masks.

    Raises:
        InvalidInput: an argument is out of range.

    `state` names: ``param/W1``, ``param/b1``, ``param/W2``, ``param/b2``,
    ``adam/m/<param>``, ``adam/v/<param>``, ``adam/t`` (optimizer steps), ``rng/state``
    (the PCG64 state as 6 uint64) and ``step`` (calls to `train_step`).

    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(32, 4)), rng.integers(0, 3, 32)
    >>> trainer = MLPTrainer(4, 3, hidden=8, seed=0)
    >>> losses = [trainer.train_step((X, y)) for _ in range(20)]
    >>> losses[-1] < losses[0]
    True
    >>> trainer.predict(X).shape
    (32, 3)
    >>> sorted(trainer.state())[:3]
    ['adam/m/W1', 'adam/m/W2', 'adam/m/b1']
    """

    # Parameters with and without weight decay: the optimizer updates exactly these.
    _decay_group: tuple[str, ...] = ("W1", "W2")
    _no_decay_group: tuple[str, ...] = ("b1", "b2")

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        hidden: int = 16,
        lr: float = 0.05,
        dropout: float = 0.1,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.n_features = _positive(n_features, "n_features", integer=True)
        self.n_classes = _positive(n_classes, "n_classes", integer=True)
        if self.n_classes < 2:
            raise InvalidInput(f"'n_classes' must be >= 2 (got {n_classes!r})")
        self.hidden = _positive(hidden, "hidden", integer=True)
        self.lr = _positive(lr, "lr")
        if not (isinstance(dropout, int | float) and 0.0 <= dropout < 1.0):
            raise InvalidInput(f"'dropout' must be a number in [0, 1) (got {describe(dropout)})")
        self.dropout = float(dropout)
        if not (isinstance(weight_decay, int | float) and 0.0 <= weight_decay < math.inf):
            raise InvalidInput(
                f"'weight_decay' must be a number >= 0 (got {describe(weight_decay)})"
            )
        self.weight_decay = float(weight_decay)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidInput(f"'seed' must be a non-negative integer (got {describe(seed)})")
        self.seed = int(seed)
        self.beta1, self.beta2, self.eps = 0.9, 0.999, 1e-8

        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        d, h, c = self.n_features, self.hidden, self.n_classes
        self._params: dict[str, np.ndarray] = {
            "W1": self._rng.normal(0.0, math.sqrt(2.0 / d), (d, h)),
            "b1": np.zeros(h),
            "W2": self._rng.normal(0.0, math.sqrt(1.0 / h), (h, c)),
            "b2": np.zeros(c),
        }
        self._m = {name: np.zeros_like(p) for name, p in self._params.items()}
        self._v = {name: np.zeros_like(p) for name, p in self._params.items()}
        self._t = 0
        self._step = 0
        self._grads: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_features={self.n_features}, n_classes={self.n_classes}, "
            f"hidden={self.hidden}, lr={self.lr}, seed={self.seed}, step={self._step})"
        )

    @property
    def step(self) -> int:
        """How many times `train_step` has run (restored by `load`)."""
        return self._step

    # ------------------------------------------------------------------ the protocol

    def train_step(self, batch: Batch) -> float:
        """One AdamW step on ``batch = (X, y)``; returns the batch's mean cross-entropy.

        The loss is computed with dropout on, before the update. Non-finite parameters
        propagate (NaN loss) rather than raising, as in real frameworks.

        Raises:
            InvalidInput: ``batch`` is not ``(X, y)`` with ``X`` finite of shape
                (n, n_features) and ``y`` class indices of length n.
        """
        X, y = self._check_batch(batch)
        n = len(y)
        p = self._params
        with np.errstate(all="ignore"):
            pre = X @ p["W1"] + p["b1"]
            hidden = np.maximum(pre, 0.0)
            keep = 1.0 - self.dropout
            mask = (self._rng.random(hidden.shape) < keep) / keep if self.dropout else 1.0
            dropped = hidden * mask
            logits = dropped @ p["W2"] + p["b2"]
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(shifted).sum(axis=1))
            loss = float(np.mean(log_norm - shifted[np.arange(n), y]))

            dlogits = np.exp(shifted - log_norm[:, None])
            dlogits[np.arange(n), y] -= 1.0
            dlogits /= n
            dhidden = (dlogits @ p["W2"].T) * mask * (pre > 0.0)
            self._grads = {
                "W1": X.T @ dhidden,
                "b1": dhidden.sum(axis=0),
                "W2": dropped.T @ dlogits,
                "b2": dlogits.sum(axis=0),
            }
            self._update(self._grads)
        self._step += 1
        return loss

    def predict(self, inputs: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), for features of shape (n, n_features).

        Raises:
            InvalidInput: ``inputs`` is not a finite 2-D array of the right width.
        """
        return predict_proba(self._params, self._check_features(inputs, "inputs"))

    def state(self) -> dict[str, np.ndarray]:
        """Copies of everything that defines the trainer now, name -> array (see the class)."""
        out: dict[str, np.ndarray] = {}
        for name in PARAM_NAMES:
            out[f"param/{name}"] = self._params[name].copy()
        for name in PARAM_NAMES:
            out[f"adam/m/{name}"] = self._m[name].copy()
            out[f"adam/v/{name}"] = self._v[name].copy()
        out["adam/t"] = np.array(self._t, dtype=np.int64)
        out["rng/state"] = _encode_rng(self._rng)
        out["step"] = np.array(self._step, dtype=np.int64)
        return out

    def save(self, path: str | Path) -> None:
        """Write a checkpoint to ``path`` (an uncompressed ``.npz``), atomically.

        The file is written next to ``path`` and renamed into place, so a crash never leaves
        a half-written checkpoint. ``path`` is used exactly (no suffix is added).
        """
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        with open(partial, "wb") as handle:
            arrays: dict[str, Any] = self._checkpoint_arrays()
            np.savez(handle, **arrays)
        os.replace(partial, target)

    def load(self, path: str | Path) -> None:
        """Restore this trainer from the checkpoint written by `save` at ``path``.

        Raises:
            InvalidInput: the file is not such a checkpoint (a missing or unexpected entry,
                or an entry of the wrong shape).
        """
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        self._restore(arrays, source=str(path))

    # ------------------------------------------------------------------ the extras

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore from a `state` mapping (all entries required); the arrays are copied.

        Raises:
            InvalidInput: an entry is missing, unexpected, or of the wrong shape.

        >>> a, b = MLPTrainer(3, 2, seed=0), MLPTrainer(3, 2, seed=1)
        >>> b.load_state(a.state())
        >>> a.fingerprint() == b.fingerprint()
        True
        """
        self._restore_all(dict(state), source="state")

    def gradients(self) -> dict[str, np.ndarray]:
        """Copies of the gradients of the last `train_step`, keyed like the parameters.

        Keys are ``param/W1`` ... (the `state` names of the parameters); empty before the
        first step.
        """
        return {f"param/{name}": self._grads[name].copy() for name in PARAM_NAMES if self._grads}

    def trace(self, inputs: Any) -> dict[str, np.ndarray]:
        """Named activations for ``inputs`` in inference mode (no dropout).

        Returns:
            ``hidden_pre`` (n, hidden), ``hidden`` (after ReLU), ``logits`` and ``probs``
            (n, n_classes).

        >>> MLPTrainer(3, 2, hidden=4).trace(np.zeros((1, 3)))["hidden"].shape
        (1, 4)
        """
        X = self._check_features(inputs, "inputs")
        p = self._params
        with np.errstate(all="ignore"):
            pre = X @ p["W1"] + p["b1"]
            hidden = np.maximum(pre, 0.0)
            logits = hidden @ p["W2"] + p["b2"]
            probs = _softmax(logits)
        return {"hidden_pre": pre, "hidden": hidden, "logits": logits, "probs": probs}

    def params(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, keyed by `PARAM_NAMES` (what `predict_proba` takes)."""
        return {name: self._params[name].copy() for name in PARAM_NAMES}

    def fingerprint(self) -> str:
        """`param_fingerprint` of the parameters in `PARAM_NAMES` order."""
        return param_fingerprint(self._params[name] for name in PARAM_NAMES)

    # ------------------------------------------------------------------ internals

    def _learning_rate(self, t: int) -> Any:
        """The step size of optimizer step ``t`` (1-based)."""
        return self.lr / math.sqrt(t)

    def _update(self, grads: Mapping[str, np.ndarray]) -> None:
        self._t += 1
        lr_t = self._learning_rate(self._t)
        correction1 = 1.0 - self.beta1**self._t
        correction2 = 1.0 - self.beta2**self._t
        for group, decay in ((self._decay_group, self.weight_decay), (self._no_decay_group, 0.0)):
            for name in group:
                g = grads[name]
                m = self._m[name]
                v = self._v[name]
                m *= self.beta1
                m += (1.0 - self.beta1) * g
                v *= self.beta2
                v += (1.0 - self.beta2) * g * g
                step = lr_t * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
                param = self._params[name]
                if decay:
                    param -= lr_t * decay * param
                param -= step

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """What `save` writes."""
        return self.state()

    def _restore(self, arrays: dict[str, np.ndarray], *, source: str) -> None:
        """What `load` does with the arrays read from a checkpoint."""
        self._restore_all(arrays, source=source)

    def _restore_all(self, arrays: dict[str, np.ndarray], *, source: str) -> None:
        expected = self.state()
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        if missing or extra:
            raise InvalidInput(
                f"checkpoint {source!r} does not match this trainer: missing {missing}, "
                f"unexpected {extra}"
            )
        for name, reference in expected.items():
            got = np.asarray(arrays[name])
            if got.shape != reference.shape:
                raise InvalidInput(
                    f"checkpoint {source!r} entry {name!r} has shape {got.shape}, "
                    f"expected {reference.shape}"
                )
        self._set_params(arrays)
        self._set_optimizer(arrays)
        self._set_rng(arrays["rng/state"])
        self._step = int(arrays["step"])

    def _set_params(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name in PARAM_NAMES:
            self._params[name] = np.array(arrays[f"param/{name}"], dtype=np.float64)

    def _set_optimizer(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name in PARAM_NAMES:
            self._m[name] = np.array(arrays[f"adam/m/{name}"], dtype=np.float64)
            self._v[name] = np.array(arrays[f"adam/v/{name}"], dtype=np.float64)
        self._t = int(arrays["adam/t"])

    def _set_rng(self, encoded: np.ndarray) -> None:
        self._rng.bit_generator.state = _decode_rng(np.asarray(encoded))

    def _reset_optimizer(self) -> None:
        self._m = {name: np.zeros_like(p) for name, p in self._params.items()}
        self._v = {name: np.zeros_like(p) for name, p in self._params.items()}
        self._t = 0

    def _check_features(self, value: Any, name: str) -> np.ndarray:
        X = as_array(value, name, ndim=2, dtype=np.float64)
        if X.shape[1] != self.n_features:
            raise InvalidInput(f"'{name}' must have {self.n_features} columns (got {describe(X)})")
        return X

    def _check_batch(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        raw_x, raw_y = check_pair(batch, "batch", "(X, y)")
        X = self._check_features(raw_x, "batch X")
        y = as_labels(raw_y, "batch y", n_classes=self.n_classes)
        if len(y) != len(X):
            raise InvalidInput(
                f"'batch' X and y must have the same number of rows (got {len(X)} and {len(y)})"
            )
        return X, y


def make_batches(X: Any, y: Any, n_steps: int, batch_size: int, seed: int | None) -> list[Batch]:
    """Deterministic shuffled mini-batches: one fresh permutation of the rows per epoch.

    Args:
        X: features, shape (n, d).
        y: labels, shape (n,).
        n_steps: number of batches.
        batch_size: rows per batch (at most n).
        seed: seeds the shuffling; None shuffles from OS entropy (not reproducible).

    Returns:
        ``n_steps`` pairs ``(X_batch, y_batch)`` (copies). Batches may span an epoch boundary.

    Raises:
        InvalidInput: the shapes disagree, or a count is out of range.

    >>> batches = make_batches(np.zeros((10, 2)), np.arange(10), n_steps=3, batch_size=4, seed=0)
    >>> [b[0].shape for b in batches]
    [(4, 2), (4, 2), (4, 2)]
    """
    X = as_array(X, "X", ndim=2)
    y = as_array(y, "y", ndim=1)
    if len(X) != len(y):
        raise InvalidInput(f"'X' and 'y' must have the same number of rows ({len(X)} and {len(y)})")
    n_steps = _positive(n_steps, "n_steps", integer=True)
    batch_size = _positive(batch_size, "batch_size", integer=True)
    if batch_size > len(y):
        raise InvalidInput(f"'batch_size' must be <= the {len(y)} rows (got {batch_size})")
    rng = np.random.default_rng(None if seed is None else [seed, 0x0BA7C4])
    needed = n_steps * batch_size
    epochs = -(-needed // len(y))
    order = np.concatenate([rng.permutation(len(y)) for _ in range(epochs)])[:needed]
    return [(X[index], y[index]) for index in order.reshape(n_steps, batch_size)]
