"""Fuzz the constructors of every public check and settings class (issue 16, item 6).

Every init field of every class in `CLASSES` gets every value of `hostile_values` (wrong types,
NaN, infinities, negative and huge numbers, empty and odd strings, None, containers) plus
``N_RANDOM`` values drawn with a seeded generator, one field at a time on a valid instance
(``attrs.evolve``). Construction only: nothing is run. Each attempt ends one of three ways:

- a *clear error*: `InvalidInput` (or `TypeError`) whose message names the field in quotes;
- *accepted*: the instance was built (tests/fuzz/test_constructors.py checks that what a field
  holds then fits its kind: a count holds an int in range, a name a printable string, ...);
- an *obscure error*: any other exception, a message that does not name the field, or a
  construction that took longer than ``TIME_LIMIT_S``.

docs/robustness.md quotes the table this prints; tests/fuzz/test_constructors.py asserts the
docs table equals it and that there are no obscure errors.
Run: ``python benchmarks/fuzz_constructors.py``.
"""

from __future__ import annotations

import math
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import attrs
import numpy as np

import mlchecks
from mlchecks import AtLeast, AtMost, Between, NoWorseThan, Status
from mlchecks.exceptions import InvalidInput

#: Random values per field on top of the fixed list.
N_RANDOM = 24
#: The generator's seed: the same values every run.
SEED = 20_160
#: One construction taking longer than this counts as an obscure error (a hang).
TIME_LIMIT_S = 10.0  # generous: a loaded CI machine must not make a slow build look like a hang


# ------------------------------------------------------------------------ valid instances


class _Server:
    """A do-nothing model server (construction only: nothing calls it)."""

    def infer(self, inputs: Any, version: str | None = None) -> Any:
        raise NotImplementedError

    def load(self, version: str) -> None:
        raise NotImplementedError

    def unload(self, version: str) -> None:
        raise NotImplementedError

    def versions(self) -> list[str]:
        return []

    def live_version(self) -> str:
        return "1"

    def set_live(self, version: str) -> None:
        raise NotImplementedError


def _trainer(seed: int) -> Any:
    raise NotImplementedError


def _source() -> list[float]:
    return [1.0, 2.0]


def _bases() -> dict[str, Callable[[], Any]]:
    """A builder of one valid instance per public class, by class name."""
    from mlchecks.checks.pipeline import Pipeline, Stage
    from mlchecks.checks.quality import GoldenSet

    labels = np.array([0, 1, 0, 1, 1, 0])
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.4, 0.6], [0.7, 0.3]])
    batches = [(np.zeros((2, 2)), np.array([0, 1]))] * 20
    pipeline = Pipeline([Stage("source", _source)])
    server = _Server()

    def runs() -> list[mlchecks.TrainingRun]:
        return [
            mlchecks.TrainingRun(predictions=probs, labels=labels, name="a"),
            mlchecks.TrainingRun(predictions=probs, labels=labels, name="b"),
        ]

    return {
        "ReproducibilityCheck": lambda: mlchecks.ReproducibilityCheck(runs()),
        "LossDecreasesCheck": lambda: mlchecks.LossDecreasesCheck(
            batches=batches, make_trainer=_trainer
        ),
        "CheckpointRestoreCheck": lambda: mlchecks.CheckpointRestoreCheck(
            make_trainer=_trainer, batches=batches
        ),
        "PipelineCheck": lambda: mlchecks.PipelineCheck(pipeline),
        "QualityCheck": lambda: mlchecks.QualityCheck(
            labels=labels, predictions=probs, metric_limits={"accuracy": 0.5}
        ),
        "SingleBatchCheck": lambda: mlchecks.SingleBatchCheck(
            batch=batches[0], make_trainer=_trainer
        ),
        "CanaryCheck": lambda: mlchecks.CanaryCheck(server, "2", probe_inputs=[[0.0, 1.0]]),
        "RollbackCheck": lambda: mlchecks.RollbackCheck(
            server, server, "2", probe_inputs=[[0.0, 1.0]]
        ),
        "CanaryJudge": lambda: mlchecks.CanaryJudge("1", "2"),
        "RollbackRecordCheck": lambda: mlchecks.RollbackRecordCheck(
            [], known_good="1", rolled_back_at=0.0
        ),
        "TrainingRun": lambda: runs()[0],
        "GoldenSet": lambda: GoldenSet([[0.0]], [1]),
        "Stage": lambda: Stage("source", _source),
        "Pipeline": lambda: pipeline,
        "AtMost": lambda: AtMost(0.5),
        "AtLeast": lambda: AtLeast(0.5),
        "Between": lambda: Between(0.0, 1.0),
        "NoWorseThan": lambda: NoWorseThan(abs=0.01),
        "Suite": lambda: mlchecks.Suite([mlchecks.CanaryJudge("1", "2")]),
        "MLTestScore": lambda: mlchecks.MLTestScore.from_results(()),
    }


#: The classes fuzzed, in the table's order.
CLASSES = tuple(_bases())


# ------------------------------------------------------------------------------- values


def hostile_values() -> list[Any]:
    """The fixed list every field gets: wrong types, odd numbers, odd strings, containers."""
    nan, inf = math.nan, math.inf
    return [
        None,
        True,
        False,
        0,
        1,
        -1,
        2,
        9,
        10**6,
        10**12,
        10**18,
        2**64,
        -(10**18),
        0.0,
        -0.0,
        0.5,
        1.5,
        -0.5,
        1e-300,
        1e300,
        nan,
        inf,
        -inf,
        np.float64(nan),
        np.int64(3),
        np.float32(0.5),
        np.bool_(True),
        1 + 2j,
        Fraction(1, 3),
        "",
        " ",
        "3",
        "0.5",
        "nan",
        "abc",
        "\x1b[32mALL PASSED\x1b[0m",
        "a\nb",
        "\x00",
        "\ud800",
        "x" * 10_000,
        b"bytes",
        [],
        [1, 2],
        [nan, 1.0],
        [[1]],
        (),
        (1, 2),
        (nan, 1.0),
        (2.0, 1.0),
        {},
        {"accuracy": 0.5},
        {"accuracy": nan},
        {1: "x"},
        set(),
        frozenset({1}),
        object(),
        _source,
        np.array([]),
        np.array([1.0, nan]),
        np.zeros((2, 0)),
        np.array(["a", "b"]),
        Status.WARN,
        "warn",
        AtMost(0.5),
        AtLeast(0.5),
        Between(0.0, 1.0),
        NoWorseThan(abs=0.1),
        range(3),
        iter([1, 2]),
    ]


def _random_value(rng: np.random.Generator) -> Any:
    kind = int(rng.integers(0, 7))
    if kind == 0:
        return int(rng.integers(-(2**62), 2**62)) >> int(rng.integers(0, 62))
    if kind == 1:
        return float(rng.standard_normal() * 10.0 ** int(rng.integers(-10, 300)))
    if kind == 2:
        codes = rng.integers(0, 0x2FF, size=int(rng.integers(0, 12)))
        return "".join(chr(int(c)) for c in codes)
    if kind == 3:
        return [float(x) for x in rng.standard_normal(int(rng.integers(0, 5)))]
    if kind == 4:
        return tuple(int(x) for x in rng.integers(-5, 5, size=int(rng.integers(0, 4))))
    if kind == 5:
        keys, values = rng.integers(0, 9, 2), rng.random(2)
        return {str(int(k)): float(v) for k, v in zip(keys, values, strict=True)}
    return rng.standard_normal(int(rng.integers(0, 4)))


def values_for(cls_name: str, field: str) -> list[Any]:
    """The fixed list plus ``N_RANDOM`` values seeded by the class and field names."""
    key = sum(ord(c) for c in f"{cls_name}.{field}")
    rng = np.random.default_rng([SEED, key])
    return [*hostile_values(), *(_random_value(rng) for _ in range(N_RANDOM))]


# ------------------------------------------------------------------------------ attempts


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


def init_fields(instance: Any) -> list[str]:
    """The names of the fields ``instance``'s constructor takes."""
    return [f.alias for f in attrs.fields(type(instance)) if f.init]


def attempt(base: Any, field: str, value: Any) -> tuple[str, Any]:
    """Build ``base`` with ``field=value``: ("accepted", instance), ("clear", exc) or
    ("obscure", exc or a description)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        built = attrs.evolve(base, **{field: value})
    except _Hang:
        return "obscure", f"took longer than {TIME_LIMIT_S} s"
    except (InvalidInput, TypeError) as exc:
        return ("clear" if names(str(exc), field) else "obscure"), exc
    except Exception as exc:
        return "obscure", exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old)
    return "accepted", built


def names(message: str, field: str) -> bool:
    """``message`` names ``field``: quoted (``'n_steps'``, ``'metrics[0]'``) or as a word."""
    return re.search(rf"(?<![\w.]){re.escape(field)}(?![\w(])", message) is not None


def attempts() -> Iterator[tuple[str, str, Any, str, Any]]:
    """Every (class, field, value, outcome, instance or error), in a fixed order."""
    for cls_name, build in _bases().items():
        base = build()
        for field in init_fields(base):
            for value in values_for(cls_name, field):
                outcome, what = attempt(base, field, value)
                yield cls_name, field, value, outcome, what


def table() -> tuple[list[tuple[str, int, int, int, int, int]], list[str]]:
    """Rows (class, fields, tried, clear, accepted, obscure) with a total; obscure cases."""
    counts: dict[str, list[int]] = {name: [0, 0, 0, 0, 0] for name in CLASSES}
    fields: dict[str, set[str]] = {name: set() for name in CLASSES}
    obscure: list[str] = []
    for cls_name, field, value, outcome, what in attempts():
        row = counts[cls_name]
        fields[cls_name].add(field)
        row[1] += 1
        row[{"clear": 2, "accepted": 3, "obscure": 4}[outcome]] += 1
        if outcome == "obscure":
            shown = repr(value)[:60]
            obscure.append(f"{cls_name}({field}={shown}): {type(what).__name__}: {what}")
    rows = [(name, len(fields[name]), *counts[name][1:]) for name in CLASSES]
    total = tuple(sum(int(r[i]) for r in rows) for i in range(1, 6))
    return [*rows, ("total", *total)], obscure  # type: ignore[list-item]


def markdown(rows: list[tuple[str, int, int, int, int, int]]) -> str:
    """The table docs/robustness.md quotes."""
    lines = [
        "| class | fields | inputs tried | clear errors | accepted | obscure errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, n_fields, tried, clear, accepted, obscure in rows:
        shown = f"**{name}**" if name == "total" else f"`{name}`"
        lines.append(
            f"| {shown} | {n_fields:,} | {tried:,} | {clear:,} | {accepted:,} | {obscure:,} |"
        )
    return "\n".join(lines)


def main() -> int:
    start = time.perf_counter()
    rows, obscure = table()
    print(markdown(rows))
    for line in obscure:
        print("obscure:", line[:300], file=sys.stderr)
    print(f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 1 if obscure else 0


if __name__ == "__main__":
    sys.exit(main())
