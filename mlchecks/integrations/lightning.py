"""PyTorch Lightning adapter: `LightningTrainer` drives a ``LightningModule`` through its
``Trainer`` one optimizer step at a time.

Install with ``pip install "mlchecks-infra[lightning]"`` (the ``lightning`` package; the older
``pytorch_lightning`` package works too). Lightning is imported only when a
`LightningTrainer` is built.

A step is ``trainer.fit(module, ...)`` resumed from the previous step's checkpoint
(``ckpt_path=``) for one more optimizer step on the batch: Lightning runs it with everything
it normally runs (``training_step``, ``configure_optimizers``, callbacks, LR schedulers,
precision, gradient clipping), then writes the next checkpoint with
``trainer.save_checkpoint``. `save` is ``trainer.save_checkpoint(path)`` and `load` resumes
the Trainer from ``ckpt_path=path``, so the checks test Lightning's own checkpoints.

>>> import lightning as L, torch
>>> from torch import nn
>>> class Classifier(L.LightningModule):
...     def __init__(self):
...         super().__init__()
...         self.net = nn.Linear(4, 3)
...     def forward(self, x):
...         return self.net(x)
...     def training_step(self, batch, batch_idx):
...         x, y = batch
...         return nn.functional.cross_entropy(self(x), y)
...     def configure_optimizers(self):
...         return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
>>> _ = L.seed_everything(0, verbose=False)
>>> trainer = LightningTrainer(
...     Classifier(),
...     L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
...               enable_checkpointing=False, enable_model_summary=False),
... )
>>> loss = trainer.train_step((torch.randn(8, 4), torch.randint(0, 3, (8,))))
>>> trainer.step, trainer.predict(torch.randn(2, 4)).shape
(1, (2, 3))
>>> sorted(name for name in trainer.state() if name.startswith("optim/net."))
['optim/net.bias/momentum_buffer', 'optim/net.weight/momentum_buffer']
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.integrations.torch import _numeric

__all__ = ["LightningTrainer", "take_batches"]

Output = Literal["raw", "softmax", "sigmoid"]


def _import_lightning() -> Any:
    """``lightning.pytorch``, else the older ``pytorch_lightning`` package."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl  # type: ignore[no-redef]
        except ImportError as exc:  # pragma: no cover - installed where this is tested
            raise MissingDependency(
                'LightningTrainer needs Lightning: pip install "mlchecks-infra[lightning]"'
            ) from exc
    return pl


#: Loggers that report every resume and stop at INFO: one line per step for the adapter.
_CHATTY = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.trainer.connectors.checkpoint_connector",
    "pytorch_lightning.utilities.rank_zero",
    "pytorch_lightning.trainer.connectors.checkpoint_connector",
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the warnings the adapter's own one-batch loaders cause, the pytree
    deprecation Lightning triggers on newer torch, and the per-step INFO lines about
    resuming; nothing the user's code raises. Logger levels are put back afterwards."""
    loggers = [logging.getLogger(name) for name in _CHATTY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            warnings.filterwarnings("ignore", message=r".*log_every_n_steps.*")
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _flatten(prefix: str, value: Any, out: dict[str, np.ndarray]) -> None:
    """Numeric leaves of nested mappings and sequences as ``prefix/key`` entries."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}/{key}", item, out)
        return
    if isinstance(value, list | tuple) and not all(
        isinstance(v, int | float | bool) for v in value
    ):
        for i, item in enumerate(value):
            _flatten(f"{prefix}/{i}", item, out)
        return
    array = _numeric(value)
    if array is not None and array.dtype.kind != "b":
        out[prefix] = array


class _OneBatch:
    """A loader of exactly one batch (an epoch of one step)."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch

    def __iter__(self) -> Iterator[Any]:
        return iter([self.batch])

    def __len__(self) -> int:
        return 1


def _recorder_class(pl: Any) -> type:
    class _MLChecksRecorder(pl.Callback):  # type: ignore[misc]
        """Records the loss and the gradients of each step; carries the process RNG states
        in the checkpoint (Lightning does not save them) so a resumed step draws the same
        dropout masks as an uninterrupted one."""

        def __init__(self) -> None:
            self.loss: float | None = None
            self.gradients: dict[str, np.ndarray | None] = {}

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            self.loss = None if loss is None else float(loss.detach().cpu().item())

        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            grads: dict[str, np.ndarray | None] = {}
            for name, param in pl_module.named_parameters():
                value = param.detach().cpu().numpy()
                grads[f"param/{name}"] = (
                    None
                    if not param.requires_grad
                    else np.zeros_like(value)
                    if param.grad is None
                    else np.array(param.grad.detach().cpu().numpy(), copy=True)
                )
            self.gradients = grads

        def state_dict(self) -> dict[str, Any]:
            import torch

            kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
            # Tensors and plain Python values only: Lightning reads checkpoints with
            # torch.load(weights_only=True).
            return {
                "torch": torch.get_rng_state(),
                "numpy": [
                    str(kind),
                    torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                    int(pos),
                    int(has_gauss),
                    float(gauss),
                ],
                "python": list(random.getstate()),
            }

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            import torch

            torch.set_rng_state(state_dict["torch"])
            kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
            np.random.set_state(  # noqa: NPY002 - the global user code draws from
                (kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss)
            )
            version, internal, gauss_next = state_dict["python"]
            random.setstate((version, tuple(internal), gauss_next))

    return _MLChecksRecorder


class LightningTrainer:
    """A ``LightningModule`` and its Lightning ``Trainer``, driven one optimizer step at a time.

    Args:
        module: your ``LightningModule`` (automatic optimization: ``training_step`` returns
            the loss, ``configure_optimizers`` returns the optimizers and schedulers).
        trainer: your ``lightning.Trainer`` (``accelerator="cpu"``, your callbacks,
            ``precision``, ``gradient_clip_val``...). Its ``max_steps`` and ``max_epochs``
            are set by the adapter; every batch is one epoch of one step, so ``"epoch"``
            schedulers step after every step; ``accumulate_grad_batches`` must be 1.
        output: what `predict` returns: the module's ``"raw"`` outputs, or their
            ``"softmax"`` (over the last axis) or ``"sigmoid"``.

    `state` names: ``param/<name>`` and ``buffer/<name>`` (the module's ``state_dict``),
    ``optim/<param name>/<slot>`` and ``optim/group<i>/<hyperparameter>`` (``optim1/`` ...
    for further optimizers), ``sched/<key>`` (``sched1/`` ...), ``callback/<state key>/
    <key>`` (each callback's ``state_dict``, or its public numeric attributes when it has
    no ``state_dict``: state a checkpoint would lose), ``rng/torch`` and ``step`` (the
    Trainer's ``global_step``). The adapter adds one callback of its own that records the
    loss and gradients and writes the process RNG states into every checkpoint.

    Raises:
        MissingDependency: Lightning is not installed.
        InvalidInput: ``module`` or ``trainer`` has the wrong type.
    """

    global_state = ("rng",)  # torch's global generator: checks on threads run one at a time

    def __init__(self, module: Any, trainer: Any, *, output: Output = "raw") -> None:
        pl = _import_lightning()
        if not isinstance(module, pl.LightningModule):
            raise InvalidInput(f"'module' must be a LightningModule (got {describe(module)})")
        if not isinstance(trainer, pl.Trainer):
            raise InvalidInput(f"'trainer' must be a lightning Trainer (got {describe(trainer)})")
        if output not in ("raw", "softmax", "sigmoid"):
            raise InvalidInput(
                f"'output' must be one of 'raw', 'softmax', 'sigmoid' (got {output!r})"
            )
        if trainer.accumulate_grad_batches != 1:
            raise InvalidInput(
                "the Trainer's 'accumulate_grad_batches' must be 1: one batch is one optimizer "
                f"step (got {trainer.accumulate_grad_batches})"
            )
        self.module = module
        self.trainer = trainer
        self.output: Output = output
        self._recorder = _recorder_class(pl)()
        trainer.callbacks.append(self._recorder)
        self._dir = Path(tempfile.mkdtemp(prefix="mlchecks-lightning-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._resume = self._dir / "resume.ckpt"
        self._fitted = False
        self._stepped = False

    def __deepcopy__(self, memo: dict[int, Any]) -> LightningTrainer:
        raise TypeError(
            "a LightningTrainer is not deep-copied (its Trainer and checkpoint folder are "
            "shared); checks fall back to its own save/load, or pass make_trainer"
        )

    def __repr__(self) -> str:
        return f"LightningTrainer({type(self.module).__name__}, step={self.step})"

    @property
    def step(self) -> int:
        """The Trainer's ``global_step`` (optimizer steps taken; restored by `load`)."""
        return int(self.trainer.global_step)

    # ------------------------------------------------------------------ fitting

    def _fit(self, steps: int, batch: Any, ckpt_path: Path | None) -> None:
        loop = self.trainer.fit_loop
        loop.epoch_loop.max_steps = steps
        loop.max_epochs = -1
        with _quiet():
            self.trainer.fit(
                self.module,
                train_dataloaders=_OneBatch(batch),
                ckpt_path=None if ckpt_path is None else str(ckpt_path),
            )
            self.trainer.save_checkpoint(self._resume)
        self._fitted = True

    def _setup(self) -> None:
        """A fit of zero steps: Lightning builds the optimizers and schedulers."""
        if not self._fitted:
            self._fit(0, None, None)

    # ------------------------------------------------------------------ the protocol

    def train_step(self, batch: Any) -> float:
        """One optimizer step on ``batch`` through ``trainer.fit``; returns its loss.

        Raises:
            InvalidInput: ``training_step`` returned no loss (manual optimization).
        """
        self._setup()
        self._recorder.loss = None
        self._fit(self.step + 1, batch, self._resume)
        if self._recorder.loss is None:
            raise InvalidInput(
                "training_step returned no loss: LightningTrainer needs automatic "
                "optimization (training_step returns the loss or {'loss': ...})"
            )
        self._stepped = True
        return float(self._recorder.loss)

    def _tensor(self, value: Any) -> Any:
        import torch

        if isinstance(value, np.ndarray):
            tensor = torch.as_tensor(value)
            if tensor.is_floating_point():
                param = next(self.module.parameters(), None)
                tensor = tensor.to(param.dtype if param is not None else torch.float32)
            return tensor.to(self.module.device)
        if isinstance(value, torch.Tensor):
            return value.to(self.module.device)
        if isinstance(value, Mapping):
            return {k: self._tensor(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return type(value)(self._tensor(v) for v in value)
        return value

    def predict(self, inputs: Any) -> np.ndarray:
        """``module(inputs)`` in eval mode without gradients, as a numpy array."""
        import torch

        inputs = self._tensor(inputs)
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                if isinstance(inputs, Mapping):
                    outputs = self.module(**inputs)
                elif isinstance(inputs, tuple):
                    outputs = self.module(*inputs)
                else:
                    outputs = self.module(inputs)
                if self.output == "softmax":
                    outputs = torch.softmax(outputs, dim=-1)
                elif self.output == "sigmoid":
                    outputs = torch.sigmoid(outputs)
        finally:
            self.module.train(was_training)
        return np.array(outputs.detach().cpu().numpy(), copy=True)

    def _optimizer_state(self, out: dict[str, np.ndarray]) -> None:
        by_id = {id(p): name for name, p in self.module.named_parameters()}
        for j, optimizer in enumerate(self.trainer.optimizers):
            prefix = "optim" if j == 0 else f"optim{j}"
            ordered = [p for group in optimizer.param_groups for p in group["params"]]
            names = {i: by_id.get(id(p), f"#{i}") for i, p in enumerate(ordered)}
            state = optimizer.state_dict()
            for index, slots in state["state"].items():
                for slot, value in slots.items():
                    array = _numeric(value)
                    if array is not None:
                        out[f"{prefix}/{names.get(index, f'#{index}')}/{slot}"] = array
            for g, group in enumerate(state["param_groups"]):
                for key, value in group.items():
                    array = None if key == "params" else _numeric(value)
                    if array is not None and array.dtype.kind != "b":
                        out[f"{prefix}/group{g}/{key}"] = array

    def _callback_state(self, out: dict[str, np.ndarray]) -> None:
        pl = _import_lightning()
        for callback in self.trainer.callbacks:
            if callback is self._recorder:
                continue
            key = f"callback/{callback.state_key}"
            if type(callback).state_dict is not pl.Callback.state_dict:
                _flatten(key, callback.state_dict(), out)
                continue
            if type(callback).__module__.startswith(("lightning.", "pytorch_lightning.")):
                continue  # Lightning's own stateless callbacks
            for name, value in vars(callback).items():
                if not name.startswith("_"):
                    _flatten(f"{key}/{name}", value, out)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of everything training depends on, name -> numpy array (see the class)."""
        import torch

        out: dict[str, np.ndarray] = {}
        params = dict(self.module.named_parameters())
        for name, value in self.module.state_dict().items():
            kind = "param" if name in params else "buffer"
            out[f"{kind}/{name}"] = np.array(value.detach().cpu().numpy(), copy=True)
        self._optimizer_state(out)
        for j, config in enumerate(self.trainer.lr_scheduler_configs):
            _flatten("sched" if j == 0 else f"sched{j}", config.scheduler.state_dict(), out)
        self._callback_state(out)
        out["rng/torch"] = torch.get_rng_state().numpy().copy()
        out["step"] = np.array(self.step, dtype=np.int64)
        return out

    def save(self, path: str | Path) -> None:
        """``trainer.save_checkpoint(path)``: module, optimizers, schedulers, callbacks,
        loops, and (through the adapter's callback) the RNG states."""
        self._setup()
        with _quiet():
            self.trainer.save_checkpoint(Path(path))

    def load(self, path: str | Path) -> None:
        """Resume the Trainer from the checkpoint: ``trainer.fit(..., ckpt_path=path)`` for
        zero further steps, so Lightning restores everything it saved."""
        import torch

        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=False)
        steps = int(checkpoint["global_step"])
        shutil.copyfile(Path(path), self._dir / "restore.ckpt")
        self._fit(steps, None, self._dir / "restore.ckpt")
        self._stepped = False

    # ------------------------------------------------------------------ the extras

    def gradients(self) -> dict[str, np.ndarray | None]:
        """The gradients of the last `train_step` (before the optimizer step, after any
        unscaling and clipping), keyed ``param/<name>``; every parameter appears, a frozen
        one (``requires_grad=False``) with None. Empty before the first step."""
        if not self._stepped:
            return {}
        return {k: None if v is None else v.copy() for k, v in self._recorder.gradients.items()}


def take_batches(source: Any, n: int | None = None) -> tuple[Any, ...]:
    """The first ``n`` training batches of a ``LightningDataModule`` or any data loader.

    A DataModule is prepared first (``prepare_data()``, ``setup("fit")``) and its
    ``train_dataloader()`` read. Pass the result as the checks' ``batches``. Seed the
    generators first (``L.seed_everything``) when the loader shuffles.

    Args:
        source: a ``LightningDataModule`` or an iterable of batches.
        n: how many batches (None: all of one epoch).

    Raises:
        InvalidInput: ``source`` yields no batch.

    >>> take_batches([(1, 2), (3, 4), (5, 6)], n=2)
    ((1, 2), (3, 4))
    """
    loader = source
    if hasattr(source, "train_dataloader") and hasattr(source, "setup"):
        source.prepare_data()
        source.setup("fit")
        loader = source.train_dataloader()
    batches: list[Any] = []
    for batch in loader:
        if n is not None and len(batches) >= n:
            break
        batches.append(batch)
    if not batches:
        raise InvalidInput(f"'source' yielded no batch (got {describe(source)})")
    return tuple(batches)
