"""PyTorch adapter: `TorchTrainer` wraps a module, optimizer and loss as a `Trainer`.

Install with ``pip install "mlchecks-infra[torch]"``; torch is imported only when a
`TorchTrainer` is built, so importing this module costs nothing.

`record_run` trains any `Trainer` over batches and returns the
`mlchecks.checks.reproducibility.TrainingRun` that `ReproducibilityCheck` compares.

>>> import torch
>>> from torch import nn
>>> _ = torch.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> trainer = TorchTrainer(model, optimizer, nn.CrossEntropyLoss())
>>> X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
>>> loss = trainer.train_step((X, y))
>>> trainer.predict(X).shape, trainer.step
((16, 3), 1)
>>> [name for name in trainer.state() if name.startswith("optim/0.")]
['optim/0.weight/momentum_buffer', 'optim/0.bias/momentum_buffer']
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlchecks._validate import check_pair, describe
from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.integrations._torch_steps import track_optimizer_steps

if TYPE_CHECKING:
    from mlchecks.checks.reproducibility import TrainingRun
    from mlchecks.protocols import Trainer

__all__ = ["TorchTrainer", "record_run"]

Output = Literal["raw", "softmax", "sigmoid"]


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed where this is tested
        raise MissingDependency(
            'TorchTrainer needs PyTorch: pip install "mlchecks-infra[torch]"'
        ) from exc
    return torch


def _numeric(value: Any) -> np.ndarray | None:
    """``value`` as a numeric numpy array, or None for what is not numeric (None, strings)."""
    if value is None or isinstance(value, str):
        return None
    if hasattr(value, "detach"):
        return np.array(value.detach().cpu().numpy(), copy=True)
    try:
        array = np.array(value)
    except (TypeError, ValueError):
        return None
    return array if array.dtype.kind in "biufc" else None


class TorchTrainer:
    """A PyTorch ``nn.Module`` with its optimizer and loss, driven one step at a time.

    Args:
        model: the ``torch.nn.Module``; it is moved to ``device``.
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters.
        loss_fn: ``loss_fn(outputs, targets) -> scalar tensor`` (not needed with
            ``step_fn``).
        device: where the model runs (``"cpu"``, ``"cuda:0"``).
        scheduler: an optional learning-rate scheduler, stepped after every optimizer step
            and saved with the checkpoint.
        output: what `predict` returns: the model's ``"raw"`` outputs, or their
            ``"softmax"`` (over the last axis) or ``"sigmoid"``.
        trace_modules: module names `trace` records (None: every leaf module).
        step_fn: your own training step, ``step_fn(model, optimizer, batch) -> loss`` (a
            tensor or a float): it zeroes the gradients, runs the forward and backward
            passes and steps the optimizer as your training loop does (gradient clipping,
            ``torch.autocast``, several losses kept). The trainer puts the model in train
            mode before it, records the gradients the optimizer applies, then steps
            ``scheduler`` and counts the step. Without it, the default step is
            ``loss_fn(model(inputs), targets)``, ``backward()``, ``optimizer.step()``.
        save_fn: your own checkpoint writer, ``save_fn(trainer, path)``; it reaches the
            objects as ``trainer.model``, ``trainer.optimizer`` and ``trainer.scheduler``.
            Without it, `save` writes everything `state` lists.
        load_fn: your own checkpoint reader, ``load_fn(trainer, path)`` (with ``save_fn``).

    With ``save_fn``/``load_fn`` the checkpoint is yours: `state` still lists the model,
    optimizer, scheduler and RNG state (but no ``step`` counter, which your checkpoint
    may keep its own way), so `CheckpointRestoreCheck` names whatever your checkpoint
    forgets (a scheduler, the optimizer's moments, the generator of dropout).

    Parameters with ``requires_grad=False`` are listed by `state` like every parameter and
    reported by `gradients` with the gradient None, so `SingleBatchCheck` judges them as
    frozen (and FAILS on one you did not declare frozen).

    A batch is ``(inputs, targets)``. ``inputs`` is a tensor or array (``model(inputs)``),
    a tuple of them (``model(*inputs)``) or a mapping (``model(**inputs)``). numpy floating
    arrays are converted to the model's parameter dtype; everything is moved to ``device``.

    `state` names: ``param/<name>`` and ``buffer/<name>`` (the module's ``state_dict``),
    ``optim/<param name>/<slot>`` (momentum buffers, Adam moments and steps),
    ``optim/group<i>/<hyperparameter>`` (learning rate, betas, ...), ``sched/<key>``,
    ``rng/torch`` (and ``rng/cuda`` on a GPU) and ``step``. `save` writes all of it with
    ``torch.save`` and `load` restores it (with ``weights_only=True``), so training resumes
    exactly where it stopped.

    Raises:
        MissingDependency: torch is not installed.
        InvalidInput: ``model``, ``optimizer``, ``loss_fn``, ``step_fn``, ``save_fn`` or
            ``load_fn`` has the wrong type, or neither ``loss_fn`` nor ``step_fn`` is given.

    Your own training step and checkpoint code, unchanged:

    >>> import torch
    >>> from torch import nn
    >>> def my_step(model, optimizer, batch):
    ...     inputs, targets = batch
    ...     optimizer.zero_grad()
    ...     loss = nn.functional.cross_entropy(model(inputs), targets)
    ...     loss.backward()
    ...     nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    ...     optimizer.step()
    ...     return loss
    >>> def my_save(trainer, path):
    ...     torch.save({"model": trainer.model.state_dict(),
    ...                 "optimizer": trainer.optimizer.state_dict()}, path)
    >>> def my_load(trainer, path):
    ...     checkpoint = torch.load(path)
    ...     trainer.model.load_state_dict(checkpoint["model"])
    ...     trainer.optimizer.load_state_dict(checkpoint["optimizer"])
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> _ = model[0].bias.requires_grad_(False)  # frozen on purpose
    >>> optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    >>> trainer = TorchTrainer(model, optimizer, step_fn=my_step, save_fn=my_save,
    ...                        load_fn=my_load)
    >>> loss = trainer.train_step((torch.randn(16, 4), torch.randint(0, 3, (16,))))
    >>> {name: grad is None for name, grad in trainer.gradients().items()}
    {'param/0.weight': False, 'param/0.bias': True, 'param/2.weight': False, 'param/2.bias': False}
    """

    global_state = ("rng",)  # torch's global generator: checks on threads run one at a time

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        device: Any = "cpu",
        *,
        scheduler: Any = None,
        output: Output = "raw",
        trace_modules: Sequence[str] | None = None,
        step_fn: Callable[[Any, Any, Any], Any] | None = None,
        save_fn: Callable[[TorchTrainer, Path], None] | None = None,
        load_fn: Callable[[TorchTrainer, Path], None] | None = None,
    ) -> None:
        torch = _import_torch()
        if not isinstance(model, torch.nn.Module):
            raise InvalidInput(f"'model' must be a torch.nn.Module (got {describe(model)})")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InvalidInput(
                f"'optimizer' must be a torch.optim.Optimizer (got {describe(optimizer)})"
            )
        if loss_fn is None and step_fn is None:
            raise InvalidInput("TorchTrainer needs 'loss_fn' or 'step_fn' (got neither)")
        for field, value in (
            ("loss_fn", loss_fn),
            ("step_fn", step_fn),
            ("save_fn", save_fn),
            ("load_fn", load_fn),
        ):
            if value is not None and not callable(value):
                raise InvalidInput(f"'{field}' must be callable (got {describe(value)})")
        if (save_fn is None) != (load_fn is None):
            raise InvalidInput(
                "'save_fn' and 'load_fn' go together (got only "
                f"{'save_fn' if load_fn is None else 'load_fn'})"
            )
        if output not in ("raw", "softmax", "sigmoid"):
            raise InvalidInput(
                f"'output' must be one of 'raw', 'softmax', 'sigmoid' (got {output!r})"
            )
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.step_fn = step_fn
        self.save_fn = save_fn
        self.load_fn = load_fn
        self.scheduler = scheduler
        self.output: Output = output
        self.trace_modules = None if trace_modules is None else tuple(trace_modules)
        if self.trace_modules is not None:
            known = {name for name, _ in self.model.named_modules()}
            unknown = [m for m in self.trace_modules if m not in known]
            if unknown:
                raise InvalidInput(
                    f"'trace_modules' names modules the model does not have: {unknown}"
                )
        self._step = 0
        self._stepped = False
        self._gradients: dict[str, np.ndarray | None] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> TorchTrainer:
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = copy.deepcopy(value, memo)
        if new.scheduler is not None:
            track_optimizer_steps(new.optimizer)
        return new

    def __repr__(self) -> str:
        return (
            f"TorchTrainer({type(self.model).__name__}, {type(self.optimizer).__name__}, "
            f"device={str(self.device)!r}, step={self._step})"
        )

    @property
    def step(self) -> int:
        """How many optimizer steps `train_step` has taken (restored by `load`)."""
        return self._step

    # ------------------------------------------------------------------ conversion

    def _float_dtype(self) -> Any:
        torch = _import_torch()
        for param in self.model.parameters():
            if param.is_floating_point():
                return param.dtype
        return torch.get_default_dtype()

    def _to_device(self, value: Any) -> Any:
        torch = _import_torch()
        if isinstance(value, torch.Tensor):
            return value.to(self.device)
        if isinstance(value, np.ndarray):
            tensor = torch.as_tensor(value)
            if tensor.is_floating_point():
                tensor = tensor.to(self._float_dtype())
            return tensor.to(self.device)
        if isinstance(value, Mapping):
            return {k: self._to_device(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return type(value)(self._to_device(v) for v in value)
        return value

    def _forward(self, inputs: Any) -> Any:
        inputs = self._to_device(inputs)
        if isinstance(inputs, Mapping):
            return self.model(**inputs)
        if isinstance(inputs, tuple):
            return self.model(*inputs)
        return self.model(inputs)

    # ------------------------------------------------------------------ the protocol

    def train_step(self, batch: Any) -> float:
        """One optimizer step on ``batch``; returns the loss before it.

        With ``step_fn``, ``step_fn(model, optimizer, batch)`` does the step (``batch`` is
        moved to ``device`` first); else ``batch = (inputs, targets)`` goes through
        ``loss_fn``. Either way the gradients the optimizer applies are recorded for
        `gradients` and the scheduler, when given, is stepped.

        Raises:
            InvalidInput: without ``step_fn``, ``batch`` is not a pair.
        """
        self.model.train()
        recorded: dict[str, np.ndarray | None] = {}
        handle = self.optimizer.register_step_pre_hook(
            lambda optimizer, args, kwargs: recorded.update(self._read_gradients())
        )
        try:
            if self.step_fn is not None:
                loss = self.step_fn(self.model, self.optimizer, self._to_device(batch))
            else:
                loss = self._default_step(batch)
        finally:
            handle.remove()
        # No optimizer step (a skipped AMP step, a step of your own): what .grad holds.
        self._gradients = recorded or self._read_gradients()
        if self.scheduler is not None:
            self.scheduler.step()
        self._step += 1
        self._stepped = True
        if hasattr(loss, "detach"):
            return float(loss.detach().float().cpu().item())
        return float(loss)

    def _default_step(self, batch: Any) -> Any:
        if self.loss_fn is None:  # pragma: no cover - __init__ requires one of the two
            raise InvalidInput("TorchTrainer needs 'loss_fn' or 'step_fn' (got neither)")
        inputs, targets = check_pair(batch, "batch", "(inputs, targets)")
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self._forward(inputs)
        loss = self.loss_fn(outputs, self._to_device(targets))
        loss.backward()
        self.optimizer.step()
        return loss

    def _read_gradients(self) -> dict[str, np.ndarray | None]:
        """Every parameter's ``.grad`` now: zeros when it has none, None when frozen."""
        out: dict[str, np.ndarray | None] = {}
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                out[f"param/{name}"] = None
                continue
            grad = param.grad
            array = (
                np.zeros(tuple(param.shape), dtype=param.detach().cpu().numpy().dtype)
                if grad is None
                else grad.detach().cpu().numpy()
            )
            out[f"param/{name}"] = np.array(array, copy=True)
        return out

    def _transform(self, outputs: Any) -> Any:
        torch = _import_torch()
        if self.output == "softmax":
            return torch.softmax(outputs, dim=-1)
        if self.output == "sigmoid":
            return torch.sigmoid(outputs)
        return outputs

    def predict(self, inputs: Any) -> np.ndarray:
        """Outputs for ``inputs`` in eval mode without gradients, as a numpy array."""
        torch = _import_torch()
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                outputs = self._transform(self._forward(inputs))
        finally:
            self.model.train(was_training)
        return np.array(outputs.detach().cpu().numpy(), copy=True)

    def _param_names(self) -> dict[int, str]:
        """Optimizer state index -> parameter name (the order of ``state_dict()``)."""
        by_id = {id(p): name for name, p in self.model.named_parameters()}
        ordered = [p for group in self.optimizer.param_groups for p in group["params"]]
        return {i: by_id.get(id(p), f"#{i}") for i, p in enumerate(ordered)}

    def state(self) -> dict[str, np.ndarray]:
        """Copies of everything training depends on, name -> numpy array (see the class)."""
        torch = _import_torch()
        out: dict[str, np.ndarray] = {}
        params = dict(self.model.named_parameters())
        for name, value in self.model.state_dict().items():
            prefix = "param" if name in params else "buffer"
            out[f"{prefix}/{name}"] = np.array(value.detach().cpu().numpy(), copy=True)
        optim = self.optimizer.state_dict()
        names = self._param_names()
        for index, slots in optim["state"].items():
            for slot, value in slots.items():
                array = _numeric(value)
                if array is not None:
                    out[f"optim/{names.get(index, f'#{index}')}/{slot}"] = array
        for g, group in enumerate(optim["param_groups"]):
            for key, value in group.items():
                array = None if key == "params" else _numeric(value)
                if array is not None and array.dtype.kind != "b":  # flags are not state
                    out[f"optim/group{g}/{key}"] = array
        if self.scheduler is not None:
            for key, value in self.scheduler.state_dict().items():
                array = _numeric(value)
                if array is not None:
                    out[f"sched/{key}"] = array
        out["rng/torch"] = torch.get_rng_state().numpy().copy()
        if self.device.type == "cuda":  # pragma: no cover - no GPU where this is tested
            out["rng/cuda"] = torch.cuda.get_rng_state(self.device).numpy().copy()
        if self.save_fn is None:
            out["step"] = np.array(self._step, dtype=np.int64)
        return out

    def _checkpoint(self) -> dict[str, Any]:
        """What `save` writes (override to customize what a checkpoint holds)."""
        torch = _import_torch()
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":  # pragma: no cover - no GPU where this is tested
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        checkpoint: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "step": self._step,
        }
        if self.scheduler is not None:
            checkpoint["scheduler"] = self.scheduler.state_dict()
        return checkpoint

    def _restore(self, checkpoint: Mapping[str, Any]) -> None:
        """What `load` does with the checkpoint read from disk."""
        torch = _import_torch()
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and "scheduler" in checkpoint:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if "cuda" in checkpoint["rng"]:  # pragma: no cover - no GPU where this is tested
            torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], self.device)
        self._step = int(checkpoint["step"])

    def save(self, path: str | Path) -> None:
        """Write a checkpoint to ``path``: ``save_fn(self, path)``, else with ``torch.save``."""
        if self.save_fn is not None:
            self.save_fn(self, Path(path))
            return
        _import_torch().save(self._checkpoint(), Path(path))

    def load(self, path: str | Path) -> None:
        """Restore model, optimizer, scheduler, RNG state and step from ``path``.

        With ``load_fn``, ``load_fn(self, path)`` restores what your checkpoint holds.

        The file is read with ``torch.load(..., weights_only=True)``: tensors and plain
        containers only, no arbitrary code.
        """
        if self.load_fn is not None:
            self.load_fn(self, Path(path))
            return
        torch = _import_torch()
        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
        self._restore(checkpoint)

    # ------------------------------------------------------------------ the extras

    def gradients(self) -> dict[str, np.ndarray | None]:
        """Every parameter's gradient, keyed ``param/<name>`` like `state`.

        After a `train_step`, the gradients the optimizer applied in it (after your
        clipping or unscaling); before any step, what ``.grad`` holds. A trainable
        parameter that received no gradient (not used in the forward pass) appears as
        zeros; a frozen parameter (``requires_grad=False``) appears with None.
        """
        if self._gradients is None:
            return self._read_gradients()
        return dict(self._gradients)

    def trace(self, inputs: Any) -> dict[str, np.ndarray]:
        """Outputs of named modules for ``inputs`` (eval mode, no gradients), via forward hooks.

        Records ``trace_modules``, or every leaf module; a module returning a tuple gives
        ``<name>.0``, ``<name>.1``, ... The hooks are removed afterwards.
        """
        torch = _import_torch()
        captured: dict[str, np.ndarray] = {}
        wanted = self.trace_modules
        modules = [
            (name, module)
            for name, module in self.model.named_modules()
            if (name in wanted if wanted is not None else name and not any(module.children()))
        ]

        def hook_for(name: str) -> Callable[..., None]:
            def hook(module: Any, args: Any, output: Any) -> None:
                if isinstance(output, torch.Tensor):
                    captured[name] = output.detach().cpu().numpy().copy()
                elif isinstance(output, tuple | list):
                    for i, item in enumerate(output):
                        if isinstance(item, torch.Tensor):
                            captured[f"{name}.{i}"] = item.detach().cpu().numpy().copy()

            return hook

        handles = [module.register_forward_hook(hook_for(name)) for name, module in modules]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                self._forward(inputs)
        finally:
            for handle in handles:
                handle.remove()
            self.model.train(was_training)
        return captured

    def fingerprint(self) -> str:
        """A 16-hex-digit SHA-256 prefix of all parameter bytes (equal parameters, equal
        fingerprints)."""
        digest = hashlib.sha256()
        for _, param in self.model.named_parameters():
            digest.update(np.ascontiguousarray(param.detach().cpu().numpy()).tobytes())
        return digest.hexdigest()[:16]


def _fingerprint(trainer: Trainer) -> str:
    method = getattr(trainer, "fingerprint", None)
    if callable(method):
        return str(method())
    state = trainer.state()
    names = sorted(k for k in state if k.startswith("param/")) or sorted(state)
    digest = hashlib.sha256()
    for name in names:
        value = state[name]
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        digest.update(np.ascontiguousarray(np.asarray(value)).tobytes())
    return digest.hexdigest()[:16]


def _accuracy(predictions: np.ndarray, labels: np.ndarray) -> float | None:
    if predictions.ndim == 2 and predictions.shape[1] > 1 and labels.dtype.kind in "iu":
        return float(np.mean(np.argmax(predictions, axis=1) == labels))
    return None


def record_run(
    trainer: Trainer,
    batches: Iterable[Any],
    eval_inputs: Any,
    eval_labels: Any,
    slices: Any = None,
    *,
    name: str = "run",
) -> TrainingRun:
    """Train ``trainer`` on ``batches`` and record what `ReproducibilityCheck` compares.

    Works with any `Trainer` (a `TorchTrainer`, the demo's ``MLPTrainer``, your own). For a
    classifier, have ``predict`` return class probabilities (``TorchTrainer(...,
    output="softmax")``) so every metric, log loss included, can be compared.

    Args:
        trainer: the trainer to train (it is trained in place).
        batches: the batches, one step each.
        eval_inputs: inputs of a fixed evaluation set, as ``predict`` takes them.
        eval_labels: their labels.
        slices: one slice id per evaluation example, or a mapping name -> ids.
        name: the run's name in reports.

    Returns:
        A ``TrainingRun`` with the loss of every step, the parameter fingerprint after
        every step (``trainer.fingerprint()`` when it has one, else a SHA-256 prefix of the
        ``param/*`` state entries, or of all entries), the evaluation predictions, and the
        metrics ``final_loss`` (mean of the last 10 losses) and, for class scores,
        ``accuracy``.

    >>> from mlchecks.demo import DemoSystem, make_trainer
    >>> system = DemoSystem(seed=0)
    >>> run = record_run(make_trainer(0), system.batches(0)[:20], system.X_valid, system.y_valid)
    >>> len(run.losses), len(run.step_hashes), run.predictions.shape == (len(system.y_valid), 3)
    (20, 20, True)
    """
    from mlchecks.checks.reproducibility import TrainingRun

    losses: list[float] = []
    hashes: list[str] = []
    for batch in batches:
        losses.append(float(trainer.train_step(batch)))
        hashes.append(_fingerprint(trainer))
    if not losses:
        raise InvalidInput("'batches' must contain at least one batch (got none)")
    raw = trainer.predict(eval_inputs)
    predictions = np.asarray(raw.detach().cpu().numpy() if hasattr(raw, "detach") else raw)
    labels = np.asarray(eval_labels)
    tail = np.asarray(losses[-10:])
    metrics: dict[str, float] = {}
    if np.all(np.isfinite(tail)):
        metrics["final_loss"] = float(tail.mean())
    accuracy = _accuracy(predictions, labels)
    if accuracy is not None:
        metrics["accuracy"] = accuracy
    return TrainingRun(
        metrics=metrics,
        predictions=predictions,
        labels=labels,
        slices=slices,
        losses=np.asarray(losses),
        step_hashes=tuple(hashes),
        name=name,
    )
