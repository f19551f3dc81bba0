"""The interfaces checks drive: `Trainer`, `Endpoint`, `ModelServer`, `Deployment`.

They are structural (`typing_extensions.Protocol`): your classes need no base class,
only the methods. Version identifiers are strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from typing_extensions import Protocol, runtime_checkable

from mlchecks._json import to_float

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Deployment", "Endpoint", "ModelServer", "Response", "Trainer"]


@runtime_checkable
class Trainer(Protocol):
    """A model under training, driven one step at a time.

    Required: ``train_step(batch) -> float`` (the loss), ``predict(inputs)``,
    ``state() -> Mapping[str, array]`` (everything that defines the model: parameters,
    optimizer slots, buffers, RNG state, step counter), ``save(path)`` and ``load(path)``
    (your real checkpoint code). Optional: ``gradients() -> Mapping[str, array]`` (after the
    last step; every parameter, a frozen one mapped to None) and
    ``trace(inputs) -> Mapping[str, array]`` (named activations), and
    ``global_state``, the names of the process-global state its training uses (``("rng",)``
    for the global random generators, as `mlchecks.integrations.torch.TorchTrainer`
    declares): a check holding such a ``trainer`` runs one at a time with other such work on
    the threads of one process (see `mlchecks.Check`).
    Checks that need fresh trainers take a factory ``make_trainer(seed) -> Trainer``.
    """

    def train_step(self, batch: Any) -> float:
        """Run one optimization step on ``batch`` and return its loss."""
        ...

    def predict(self, inputs: Any) -> Any:
        """Model outputs (class probabilities or scores) for ``inputs``, as an array."""
        ...

    def state(self) -> Mapping[str, Any]:
        """Everything that defines the model now, name -> array (copies, not views)."""
        ...

    def save(self, path: str | Path) -> None:
        """Write a checkpoint to ``path``."""
        ...

    def load(self, path: str | Path) -> None:
        """Restore this trainer from the checkpoint at ``path``."""
        ...


@attrs.frozen
class Response:
    """What an endpoint answered to one request.

    Args:
        outputs: the model's outputs (None when the request failed).
        version: the model version that actually served the request.
        latency_s: wall time from sending the request to the answer.
        error: a message when the request failed, else None.
        error_kind: the class of failure: ``"timeout"``, ``"client"`` (4xx, bad input),
            ``"server"`` (5xx or an exception in the model), ``"connection"``.
        n_retries: transient failures (an HTTP 503, a reset connection) the client
            retried before this answer; they are not failures of the request, and the
            checks count them apart.
        request_id: the ``id`` the client sent with the request (None: it sent none).

    >>> Response(outputs=[0.1, 0.9], version="2", latency_s=0.004).ok
    True
    """

    outputs: Any = None
    version: str | None = None
    latency_s: float = attrs.field(default=0.0, converter=to_float)
    error: str | None = None
    error_kind: str | None = None
    n_retries: int = 0
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.error is None


@runtime_checkable
class Endpoint(Protocol):
    """Something that serves predictions: ``infer(inputs, version=None) -> Response``.

    ``version=None`` asks for whatever the endpoint routes to (the live version); a named
    version asks for that version explicitly.
    """

    def infer(self, inputs: Any, version: str | None = None) -> Response:
        """Send one request (one example or a batch) and return the response."""
        ...


@runtime_checkable
class ModelServer(Endpoint, Protocol):
    """An endpoint that hosts several versions and loads and unloads them."""

    def load(self, version: str) -> None:
        """Load ``version`` so it can serve requests."""
        ...

    def unload(self, version: str) -> None:
        """Stop serving ``version`` and free it."""
        ...

    def versions(self) -> Sequence[str]:
        """The versions loaded now."""
        ...


@runtime_checkable
class Deployment(Protocol):
    """The live pointer of a serving system: deploy by moving it, roll back by moving it back."""

    def live_version(self) -> str | None:
        """The version that serves traffic now."""
        ...

    def set_live(self, version: str) -> None:
        """Make ``version`` the live one (deploy or roll back)."""
        ...
