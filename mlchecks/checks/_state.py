"""Private helpers for the checks that drive a `Trainer`: snapshots, diffs and isolation.

- `snapshot` copies a trainer's ``state()`` into plain numpy arrays;
- `compare_states` lists every entry that differs between two snapshots (bitwise by default);
- `preserve_global_rngs` / `seed_global_rngs` save, restore and re-seed the process-wide
  generators (``random``, numpy's legacy global, torch's when it is imported);
- `TrainerSource` hands out working trainers in the user's starting state and proves
  afterwards that the user's trainer is bitwise what it was; `run_isolated` wraps it for a
  check's ``run`` and `note_restored` records the ``trainer_restored`` finding;
- `batches_field` and `loss_value` validate the batches and the losses of the checks that
  train.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import math
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs
import numpy as np

from mlchecks._deadline import Deadline
from mlchecks._validate import describe, is_collection
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Trainer
from mlchecks.result import Status

if TYPE_CHECKING:
    from mlchecks.check import Context
    from mlchecks.checks._result import ResultBuilder

_T = TypeVar("_T")

__all__ = [
    "ISOLATIONS",
    "EntryDiff",
    "Isolation",
    "TrainerSource",
    "batches_field",
    "clauses",
    "compare_states",
    "diff_names",
    "loss_value",
    "matches",
    "note_restored",
    "one_source",
    "preserve_global_rngs",
    "run_isolated",
    "seed_global_rngs",
    "snapshot",
    "summarize_diffs",
    "to_numpy",
    "trainer_or_none",
    "validate_patterns",
]

Isolation = Literal["auto", "copy", "checkpoint"]
#: The values of `Isolation`.
ISOLATIONS: tuple[str, ...] = ("auto", "copy", "checkpoint")


def to_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array that owns its data (torch tensors are detached first).

    >>> to_numpy(3).dtype.kind, to_numpy([1.5, 2.0]).shape
    ('i', (2,))
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without torch
        value = value.detach().cpu().numpy()
    return np.array(value, copy=True)


def snapshot(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Copies of every entry of a ``state()`` mapping, as numpy arrays, in name order.

    Raises:
        InvalidInput: ``state`` is not a mapping with string keys.

    >>> snapshot({"b": [1.0], "a": 2})
    {'a': array(2), 'b': array([1.])}
    """
    if not isinstance(state, Mapping):
        raise InvalidInput(
            f"'state()' must return a mapping of name to array (got {describe(state)})"
        )
    out: dict[str, np.ndarray] = {}
    for name in sorted(state, key=str):
        if not isinstance(name, str):
            raise InvalidInput(f"'state()' keys must be strings (got {name!r})")
        out[name] = to_numpy(state[name])
    return out


@attrs.frozen
class EntryDiff:
    """How one state entry differs between an expected and an actual snapshot.

    Args:
        name: the state entry.
        reason: ``"missing"`` (only in the expected state), ``"unexpected"`` (only in the
            actual state), ``"shape"``, ``"dtype"`` or ``"values"``.
        n_different: how many elements differ (for ``"values"``).
        size: the number of elements of the entry.
        max_abs_diff: the largest absolute difference (inf when one side is not finite).
        first_index: the index of the first differing element.

    >>> EntryDiff("adam/t", "values", 1, 1, 10.0, (), "10", "0").describe()
    "'adam/t' is 0, expected 10"
    """

    name: str
    reason: str
    n_different: int = 0
    size: int = 0
    max_abs_diff: float | None = None
    first_index: tuple[int, ...] | None = None
    expected: str = ""
    actual: str = ""

    def describe(self) -> str:
        """One clause for a finding's message, e.g. ``'W1' differs in 12 of 64 values``."""
        if self.reason == "missing":
            return f"{self.name!r} is missing"
        if self.reason == "unexpected":
            return f"{self.name!r} is unexpected"
        if self.reason in ("shape", "dtype"):
            return f"{self.name!r} has {self.reason} {self.actual}, expected {self.expected}"
        if self.size == 1:
            return f"{self.name!r} is {self.actual}, expected {self.expected}"
        text = f"{self.name!r} differs in {self.n_different} of {self.size} values"
        if self.max_abs_diff is not None:
            text += f" (max |diff| {self.max_abs_diff:.3g})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe row for a result's details."""
        return {
            "name": self.name,
            "reason": self.reason,
            "n_different": self.n_different,
            "size": self.size,
            "max_abs_diff": self.max_abs_diff,
            "first_index": None if self.first_index is None else list(self.first_index),
            "expected": self.expected,
            "actual": self.actual,
        }


def _short(value: np.ndarray) -> str:
    if value.size == 1:
        return repr(value.reshape(-1)[0].item())
    return f"array of shape {value.shape}"


def _differing(expected: np.ndarray, actual: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Boolean mask of the elements that differ (bitwise when both tolerances are 0)."""
    if expected.dtype == object:
        pairs = zip(expected.reshape(-1), actual.reshape(-1), strict=True)
        flat = [not _same_object(a, b) for a, b in pairs]
        return np.array(flat, dtype=bool).reshape(expected.shape)
    if (atol or rtol) and expected.dtype.kind in "fc":
        close = np.isclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True)
        return ~np.asarray(close)
    size = expected.dtype.itemsize
    a = np.ascontiguousarray(expected).view(np.uint8).reshape(*expected.shape, size)
    b = np.ascontiguousarray(actual).view(np.uint8).reshape(*actual.shape, size)
    return np.asarray((a != b).any(axis=-1))


def _same_object(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an uncomparable object counts as different
        return False


def _max_abs_diff(expected: np.ndarray, actual: np.ndarray, mask: np.ndarray) -> float | None:
    if expected.dtype.kind not in "biufc":
        return None
    with np.errstate(all="ignore"):
        e = expected[mask].astype(np.complex128 if expected.dtype.kind == "c" else np.float64)
        a = actual[mask].astype(e.dtype)
        diff = np.abs(a - e)
    if diff.size == 0:
        return 0.0
    diff = np.where(np.isnan(diff), math.inf, diff)
    return float(diff.max())


def compare_states(
    expected: Mapping[str, np.ndarray],
    actual: Mapping[str, np.ndarray],
    *,
    atol: float = 0.0,
    rtol: float = 0.0,
    ignore: Sequence[str] = (),
) -> list[EntryDiff]:
    """Every entry that differs between two snapshots, in name order.

    Entries are compared bitwise when ``atol`` and ``rtol`` are 0 (NaN equals NaN with the
    same bits; 0.0 and -0.0 differ), else floating entries with
    ``|actual - expected| <= atol + rtol * |expected|``. Names matching an ``ignore`` pattern
    (`fnmatch` syntax) are skipped.

    >>> a = {"w": np.array([1.0, 2.0]), "t": np.array(3)}
    >>> [d.describe() for d in compare_states(a, {"w": np.array([1.0, 2.5]), "t": np.array(3)})]
    ["'w' differs in 1 of 2 values (max |diff| 0.5)"]
    >>> compare_states(a, {"w": np.array([1.0, 2.0])})[0].describe()
    "'t' is missing"
    """
    diffs: list[EntryDiff] = []
    for name in sorted(set(expected) | set(actual)):
        if matches(name, ignore):
            continue
        if name not in actual:
            diffs.append(EntryDiff(name, "missing", expected=_short(expected[name])))
            continue
        if name not in expected:
            diffs.append(EntryDiff(name, "unexpected", actual=_short(actual[name])))
            continue
        e, a = np.asarray(expected[name]), np.asarray(actual[name])
        if e.shape != a.shape:
            diffs.append(EntryDiff(name, "shape", expected=str(e.shape), actual=str(a.shape)))
            continue
        if e.dtype != a.dtype:
            diffs.append(EntryDiff(name, "dtype", expected=str(e.dtype), actual=str(a.dtype)))
            continue
        mask = _differing(e, a, atol, rtol)
        count = int(mask.sum())
        if count:
            first = tuple(
                int(i) for i in np.unravel_index(int(np.argmax(mask.reshape(-1))), e.shape)
            )
            diffs.append(
                EntryDiff(
                    name,
                    "values",
                    n_different=count,
                    size=int(e.size),
                    max_abs_diff=_max_abs_diff(e, a, mask),
                    first_index=first,
                    expected=_short(e),
                    actual=_short(a),
                )
            )
    return diffs


def summarize_diffs(diffs: Sequence[EntryDiff], limit: int = 6) -> str:
    """The differing entries as one clause, at most ``limit`` of them spelled out.

    >>> summarize_diffs([EntryDiff("a", "missing"), EntryDiff("b", "missing")], limit=1)
    "'a' is missing; and 1 more"
    """
    return clauses([d.describe() for d in diffs], limit)


def clauses(parts: Sequence[str], limit: int = 6) -> str:
    """Clauses joined with ``"; "``, at most ``limit`` of them spelled out.

    >>> clauses(["'a' (1 of 4)", "'b' (2 of 4)", "'c' (4 of 4)"], limit=2)
    "'a' (1 of 4); 'b' (2 of 4); and 1 more"
    """
    shown = list(parts[:limit])
    if len(parts) > limit:
        shown.append(f"and {len(parts) - limit} more")
    return "; ".join(shown)


def diff_names(diffs: Iterable[EntryDiff]) -> list[str]:
    """The entry names of ``diffs``."""
    return [d.name for d in diffs]


def matches(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` matches any `fnmatch` pattern (``"param/*"``, ``"adam/m/W1"``).

    >>> matches("adam/m/W1", ["adam/*"]), matches("step", ["adam/*"])
    (True, False)
    """
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def validate_patterns(value: Any, name: str) -> tuple[str, ...]:
    """A tuple of name patterns; a single string is one pattern.

    Raises:
        InvalidInput: ``value`` is not a string or a sequence of strings.
    """
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else value
    try:
        out = tuple(items)
    except TypeError:
        raise InvalidInput(
            f"'{name}' must be a sequence of state names or patterns (got {describe(value)})"
        ) from None
    for item in out:
        if not isinstance(item, str):
            raise InvalidInput(f"'{name}' must contain strings (got {item!r})")
    return out


# --------------------------------------------------------------------------- global RNGs


@contextlib.contextmanager
def preserve_global_rngs() -> Iterator[None]:
    """Restore ``random``'s, numpy's global and (when imported) torch's generators on exit.

    A check that trains a copy of the user's model in the user's process consumes random
    numbers from these process-wide generators (dropout, shuffling); putting them back keeps
    the user's process as it was.

    >>> import random
    >>> before = random.random()
    >>> random.seed(1)
    >>> with preserve_global_rngs():
    ...     _ = random.random()
    >>> after = random.random()
    >>> random.seed(1); random.random() == after
    True
    """
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global is what we preserve
    torch = sys.modules.get("torch")
    torch_state = cuda_states = None
    if torch is not None:
        torch_state = torch.get_rng_state()
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            cuda_states = cuda.get_rng_state_all()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        if torch is not None and torch_state is not None:
            torch.set_rng_state(torch_state)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)


def seed_global_rngs(seed: int) -> None:
    """Seed ``random``, numpy's global generator and, when it is imported, torch's."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - user code may draw from the global
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed % 2**63)


# --------------------------------------------------------------------------- isolation


class TrainerSource:
    """Working trainers in the user's starting state; the user's trainer is left as it was.

    Modes:

    - ``"factory"`` (``make_trainer`` given): each `fresh` call builds ``make_trainer(seed)``;
    - ``"copy"``: each `fresh` call returns ``copy.deepcopy(trainer)``; the user's object is
      never trained;
    - ``"checkpoint"``: the user's trainer itself, saved with its own ``save`` first and
      restored with its own ``load`` before each further use and at `close`.

    ``"auto"`` is ``"copy"`` when the trainer can be deep-copied faithfully (the copy's state
    equals the original's), else ``"checkpoint"``. `restore` puts the user's trainer back;
    `changes` lists the entries of its ``state()`` that differ from before.
    """

    def __init__(
        self,
        *,
        trainer: Trainer | None,
        make_trainer: Callable[[int], Trainer] | None,
        seed: int,
        isolation: Isolation,
        workdir: Path,
    ) -> None:
        self._trainer = trainer
        self._make_trainer = make_trainer
        self._seed = seed
        self._path = workdir / "mlchecks-snapshot.ckpt"
        self._uses = 0
        self._probe: Trainer | None = None
        self.before: dict[str, np.ndarray] | None = None
        self.mode: str
        if make_trainer is not None:
            self.mode = "factory"
            return
        assert trainer is not None
        self.before = snapshot(trainer.state())
        mode: str = isolation
        if isolation in ("auto", "copy"):
            try:
                probe = copy.deepcopy(trainer)
                faithful = not compare_states(self.before, snapshot(probe.state()))
            except Exception:
                if isolation == "copy":
                    raise
                faithful = False
            if faithful:
                mode = "copy"
                self._probe = probe
            elif isolation == "copy":
                raise InvalidInput(
                    "isolation='copy' needs a trainer whose deep copy has the same state(); "
                    "use isolation='checkpoint' or pass make_trainer"
                )
            else:
                mode = "checkpoint"
        if mode == "checkpoint":
            trainer.save(self._path)
        self.mode = mode

    def fresh(self) -> Trainer:
        """A trainer in the starting state (see the class for what each mode hands out)."""
        self._uses += 1
        if self.mode == "factory":
            assert self._make_trainer is not None
            return self._make_trainer(self._seed)
        assert self._trainer is not None
        if self.mode == "copy":
            probe, self._probe = self._probe, None
            return probe if probe is not None else copy.deepcopy(self._trainer)
        if self._uses > 1:
            self._trainer.load(self._path)
        return self._trainer

    def restore(self) -> None:
        """Put the user's trainer back (checkpoint mode: its own ``load``); else nothing."""
        if self._trainer is not None and self.mode == "checkpoint" and self._uses:
            self._trainer.load(self._path)

    def changes(self) -> list[EntryDiff]:
        """The entries of the user's ``state()`` that differ from before (empty: untouched).

        Call it after the global generators are restored: a trainer's state may include
        them (a torch trainer's ``rng/torch``).
        """
        if self._trainer is None or self.before is None:
            return []
        return compare_states(self.before, snapshot(self._trainer.state()))


def run_isolated(
    ctx: Context,
    *,
    trainer: Trainer | None,
    make_trainer: Callable[[int], Trainer] | None,
    seed: int,
    isolation: Isolation,
    work: Callable[[TrainerSource], _T],
    deadline: Deadline | None = None,
    doing: str = "training",
) -> tuple[_T, list[EntryDiff], str]:
    """Run ``work`` on a `TrainerSource`, then put the user's trainer and generators back.

    ``work`` runs inside the context's temporary directory with the global generators
    preserved; the user's trainer is restored even when ``work`` raises. With a
    ``deadline``, ``work`` and the restore run on its worker thread
    (`mlchecks._deadline.Deadline.call`): past the deadline this raises `CheckTimeout`
    naming what ``work`` was doing, and the worker restores the trainer when the user code
    it runs returns.

    Returns:
        What ``work`` returned, the entries of the user's ``state()`` that still differ
        (empty: untouched; see `TrainerSource.changes`) and the isolation mode used.
    """
    with ctx.tempdir() as workdir:
        with preserve_global_rngs():
            source = TrainerSource(
                trainer=trainer,
                make_trainer=make_trainer,
                seed=seed,
                isolation=isolation,
                workdir=workdir,
            )

            def attempt() -> _T:
                try:
                    return work(source)
                finally:
                    source.restore()

            out = (deadline or Deadline(None)).call(attempt, doing=doing)
        changed = source.changes()
    return out, changed, source.mode


def note_restored(builder: ResultBuilder, changed: Sequence[EntryDiff]) -> None:
    """Record ``trainer_restored``: PASS when `TrainerSource.changes` found no change."""
    limit = "== 0 entries changed"
    if not changed:
        builder.note(
            "trainer_restored",
            Status.PASS,
            "your trainer's state() is bitwise what it was before the check",
            observed=0.0,
            limit=limit,
        )
        return
    builder.note(
        "trainer_restored",
        Status.FAIL,
        f"the check could not leave your trainer as it was: {summarize_diffs(changed)} "
        "(its deep copy or its save/load does not capture everything state() reports)",
        observed=len(changed),
        limit=limit,
    )


# --------------------------------------------------------------------------- field validators


def trainer_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: None or an object with the `Trainer` methods."""
    if value is not None and not isinstance(value, Trainer):
        raise InvalidInput(
            f"'{attribute.name}' must implement the Trainer protocol (train_step, predict, "
            f"state, save, load) (got {describe(value)})"
        )


def one_source(trainer: Any, make_trainer: Any) -> None:
    """Raise unless exactly one of ``trainer`` and ``make_trainer`` is given."""
    if (trainer is None) == (make_trainer is None):
        raise InvalidInput(
            "pass exactly one of 'trainer' (a Trainer to copy) and 'make_trainer' "
            f"(a factory seed -> Trainer) (got trainer={trainer!r}, make_trainer={make_trainer!r})"
        )


def batches_field(value: Any) -> tuple[Any, ...]:
    """An attrs converter: the training batches as a non-empty tuple (read once)."""
    if not is_collection(value):
        raise InvalidInput(f"'batches' must be a sequence of batches (got {describe(value)})")
    batches = tuple(value)
    if not batches:
        raise InvalidInput("'batches' must contain at least one batch (got an empty sequence)")
    return batches


def loss_value(value: Any, step: int) -> float:
    """What ``train_step`` returned at ``step``, as a float.

    Raises:
        InvalidInput: it is not a number.
    """
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"train_step() must return the loss as a number (got {describe(value)} at step {step})"
        ) from None
