"""Rubric test 6: the model goes through a canary before it enters production serving.

"Modeling code can change more frequently than serving code, so there is a danger that an
older serving system will not be able to serve a model trained from newer code. This
includes testing that a model can be loaded into the production serving binaries and
perform inference on production input data at all. It also includes a canary process, in
which a new version is tested on a small trickle of live data" (Breck et al.,
ML Test Score).

`CanaryCheck` runs both stages against any `ModelServer`:

- **Stage 0, load and query.** Load the candidate into the server (within
  ``load_timeout_s``, retried on errors), send ``n_probe`` production inputs one request
  each, and judge: errors by class (timeout, client/4xx, server/5xx or exception,
  connection), which version answered, output shape, dtype and finiteness, latency
  quantiles, and agreement with the candidate's *offline* predictions on the same inputs.
  Disagreement is how an older serving stack that cannot serve a model from newer code
  shows itself (features handled differently, a changed schema). Optionally the library
  versions the model was trained with are compared with those the server runs.
- **Stage 1, trickle.** Consume live requests from ``traffic``; route a ``fraction`` to
  the candidate and the rest to the baseline (``mode="split"``), or mirror a fraction to
  both (``mode="shadow"``, paired comparison). After every request anytime-valid
  sequential tests (`mlchecks.stats.sequential.CanaryMonitor`) judge errors, latency
  and prediction shift, and in shadow mode also how often the two versions' predictions
  differ on the same request (the disagreement rate, against ``max_disagreement``); each
  gets an equal share of ``alpha`` (Bonferroni), so the chance of a false FAIL for a
  candidate identical to the baseline is at most ``alpha`` although the canary is
  judged after every request. Split mode compares only the two versions' class
  proportions: a candidate predicting another class for most requests with the same
  overall mix (trained on inverted labels) passes it; the report says so and suggests
  shadow mode. The canary stops early on a FAIL, PASSes once the
  candidate has served ``candidate_requests`` requests with no regression detected, and
  WARNs "inconclusive after N requests" when the traffic, ``max_requests`` or
  ``max_duration_s`` runs out first.

Outputs are read per request as one example's: a vector of class scores of shape ``(k,)``
or ``(1, k)`` (the leading batch axis of a single-row request, as V2 servers answer), or
one score of shape ``()``, ``(1,)`` or ``(1, 1)``.

Every request the check sends is bounded: ``request_timeout_s`` each, ``max_requests``
and ``max_duration_s`` in total, and only to 127.0.0.1 unless ``allow_remote=True``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np

from mlchecks.check import Context
from mlchecks.checks._load import (
    TimedCaller,
    as_output_array,
    ensure_local,
    error_class,
    latency_quantiles,
    probe_inputs,
    server_versions,
)
from mlchecks.checks._series import even_indices, quantile_sample, significant
from mlchecks.conditions import AtLeast, AtMost
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Endpoint, Response
from mlchecks.result import Finding, Result, Status
from mlchecks._validate import (
    callable_field,
    describe,
    int_at_least,
    non_empty_string,
    number_in,
    one_of,
    optional,
)
from mlchecks.stats.sequential import CanaryMonitor

__all__ = ["CanaryCheck"]

_SCORE_BINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Why split mode cannot catch a candidate that predicts differently request by request.
_SPLIT_NOTE = (
    "split mode compares the two versions' class proportions, not individual predictions "
    "(each request goes to one version only), so a candidate that predicts another class for "
    "most requests with the same overall mix, e.g. one trained on inverted labels, passes it; "
    "use mode='shadow' to test how often the candidate disagrees with the baseline"
)


# ------------------------------------------------------------------------------ fields


def _server(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Endpoint):
        raise InvalidInput(
            "'server' must be a ModelServer (infer, load, unload, versions) "
            f"(got {describe(value)})"
        )


def _offline(value: Any) -> Any:
    if value is None or callable(value):
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.ndim == 0:
        raise InvalidInput(
            "'offline_predictions' must be numeric predictions, one per probe input, or a "
            f"callable (got {describe(array)})"
        )
    return array


def _traffic(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or callable(value):
        return
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidInput(
            f"'traffic' must be an iterable of request inputs or a callable returning one "
            f"(got {describe(value)})"
        )


def _metadata(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or (attribute.name == "serving_with" and callable(value)):
        return
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"'{attribute.name}' must be a mapping of component -> version (got {describe(value)})"
        )


def _bins(value: Any) -> tuple[float, ...]:
    bins = tuple(float(v) for v in value)
    if any(b >= a for a, b in zip(bins[1:], bins, strict=False)) or not bins:
        raise InvalidInput(f"'score_bins' must be increasing numbers (got {value!r})")
    return bins


_POSITIVE = number_in(0.0, low_open=True)
_UNIT_OPEN = number_in(0.0, 1.0, low_open=True, high_open=True)


# ------------------------------------------------------------------------------- check


@attrs.frozen
class CanaryCheck:
    """Load a candidate into the serving system, probe it, then watch a trickle of live traffic.

    Args:
        server: the `ModelServer` (an `Endpoint` with ``load``/``versions``) running the
            production serving code; the candidate is loaded into it.
        candidate: the version under test.
        probe_inputs: production inputs for stage 0, one request each.
        offline_predictions: the candidate's offline predictions for ``probe_inputs``
            (one per input: ``(n, k)``, or ``(n, 1, k)`` like single-row V2 answers), or
            ``f(inputs) -> predictions`` computing them with the training-side code. None
            skips the agreement check.
        baseline: the version live traffic goes to; None: the server's ``live_version()``.
        traffic: live request inputs for stage 1 (an iterable, or a callable returning a
            fresh one per run). None skips stage 1.
        n_probe: probe at most this many inputs.
        load: call ``server.load(candidate)`` (False when it is already loaded).
        load_timeout_s: the longest loading may take, over all attempts.
        load_retries: further attempts when loading raises.
        request_timeout_s: the longest one request may take (slower: a timeout error).
        max_probe_errors: failed probe requests allowed.
        min_agreement: the least fraction of probes whose served output must match the
            offline prediction within ``atol`` + ``rtol``.
        atol, rtol: the agreement tolerance.
        max_probe_latency_s: a limit on the probes' p99 latency (None: reported only).
        trained_with: component -> version the model was trained with (``{"numpy":
            "2.4.1", "feature_schema": "7"}``).
        serving_with: the same for the serving system, or a callable returning it; every
            component in both must match exactly.
        fraction: the candidate's share of live requests (split) or of mirrored requests
            (shadow).
        mode: ``"split"`` (route; compares class proportions only) or ``"shadow"`` (mirror
            to both, users get the baseline; also tests the disagreement rate).
        alpha: the false-FAIL rate bound of stage 1 as a whole, shared equally by its
            tests (three in split mode, four in shadow mode).
        candidate_requests: stage 1 passes once the candidate served this many requests.
        max_requests: the most live requests stage 1 consumes.
        max_duration_s: the longest stage 1 runs.
        max_latency_ratio: the candidate may be this many times slower (geometric mean).
        clip_ratio: per-pair latency ratios are clipped to ``[1/clip, clip]``.
        max_psi, max_js: a detected prediction shift fails only above these effect sizes.
        max_disagreement: shadow mode: the highest tolerated rate of mirrored requests on
            which the candidate's prediction differs from the baseline's (another top
            class, or a scalar score further than ``score_tolerance``); None reports the
            rate without judging it. Retrained models typically change a few percent of
            predictions; set it from your own seed-to-seed churn (rubric test 1).
        score_tolerance: two scalar scores differ when they are further apart than this.
        score_bins: bin edges turning scalar scores into classes for the shift test.
        classify: ``classify(outputs) -> int | None``, a response's class (default: the
            argmax of a ``(k,)`` or ``(1, k)`` vector, the bin of a scalar score, an
            integer scalar as is). When given, it also decides disagreement (the classes
            differ).
        unload: unload the candidate afterwards when the check loaded it.
        allow_remote: allow a server that is not on 127.0.0.1.
        name: the check's name.
        rubric: the ML Test Score test number.

    Raises:
        InvalidInput: a field has the wrong type or value.

    Stage 0 alone (no ``traffic``), on an in-process server whose loader builds models:

    >>> import numpy as np
    >>> from mlchecks.serving import InProcessServer
    >>> weights = {"1": 1.0, "2": 2.0}
    >>> server = InProcessServer(loader=lambda v: lambda x: np.asarray(x) * weights[v])
    >>> server.load("1")
    >>> server.set_live("1")
    >>> probes = [[0.5, 1.0], [2.0, 0.0]]
    >>> check = CanaryCheck(server, "2", probes, offline_predictions=[[1.0, 2.0], [4.0, 0.0]])
    >>> result = check.run()
    >>> result.status, result.metrics["probe_agreement"]
    (<Status.PASS: 'pass'>, 1.0)
    >>> CanaryCheck(server, "2", probes, offline_predictions=[[1, 2], [3, 0]]).run().status
    <Status.FAIL: 'fail'>
    """

    server: Endpoint = attrs.field(validator=_server)
    candidate: str = attrs.field(validator=optional(non_empty_string))
    probe_inputs: tuple[Any, ...] = attrs.field(converter=probe_inputs)
    offline_predictions: Any = attrs.field(default=None, converter=_offline)
    baseline: str | None = attrs.field(default=None, validator=optional(non_empty_string))
    traffic: Iterable[Any] | Callable[[], Iterable[Any]] | None = attrs.field(
        default=None, validator=_traffic
    )
    n_probe: int = attrs.field(default=100, validator=int_at_least(1))
    load: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    load_timeout_s: float = attrs.field(default=60.0, validator=_POSITIVE)
    load_retries: int = attrs.field(default=2, validator=int_at_least(0))
    request_timeout_s: float = attrs.field(default=5.0, validator=_POSITIVE)
    max_probe_errors: int = attrs.field(default=0, validator=int_at_least(0))
    min_agreement: float = attrs.field(default=0.99, validator=number_in(0.0, 1.0))
    atol: float = attrs.field(default=1e-6, validator=number_in(0.0))
    rtol: float = attrs.field(default=1e-5, validator=number_in(0.0))
    max_probe_latency_s: float | None = attrs.field(default=None, validator=optional(_POSITIVE))
    trained_with: Mapping[str, str] | None = attrs.field(default=None, validator=_metadata)
    serving_with: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = attrs.field(
        default=None, validator=_metadata
    )
    fraction: float = attrs.field(default=0.05, validator=_UNIT_OPEN)
    mode: Literal["split", "shadow"] = attrs.field(
        default="split", validator=one_of("split", "shadow")
    )
    alpha: float = attrs.field(default=0.05, validator=_UNIT_OPEN)
    candidate_requests: int = attrs.field(default=500, validator=int_at_least(1))
    max_requests: int = attrs.field(default=20_000, validator=int_at_least(1))
    max_duration_s: float = attrs.field(default=120.0, validator=_POSITIVE)
    max_latency_ratio: float = attrs.field(default=1.2, validator=number_in(1.0))
    clip_ratio: float = attrs.field(default=10.0, validator=_POSITIVE)
    max_psi: float | None = attrs.field(default=0.1, validator=optional(number_in(0.0)))
    max_js: float | None = attrs.field(default=None, validator=optional(number_in(0.0, 1.0)))
    max_disagreement: float | None = attrs.field(default=0.1, validator=optional(_UNIT_OPEN))
    score_tolerance: float = attrs.field(default=0.1, validator=number_in(0.0))
    score_bins: tuple[float, ...] = attrs.field(default=_SCORE_BINS, converter=_bins)
    classify: Callable[[Any], int | None] | None = attrs.field(
        default=None, validator=optional(callable_field)
    )
    unload: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    allow_remote: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    name: str = attrs.field(default="canary", validator=attrs.validators.instance_of(str))
    rubric: int | None = 6

    def __attrs_post_init__(self) -> None:
        if self.clip_ratio <= self.max_latency_ratio:
            raise InvalidInput(
                f"'clip_ratio' must exceed 'max_latency_ratio' (got {self.clip_ratio} and "
                f"{self.max_latency_ratio})"
            )
        if isinstance(self.offline_predictions, np.ndarray):
            n = min(self.n_probe, len(self.probe_inputs))
            if len(self.offline_predictions) < n:
                raise InvalidInput(
                    f"'offline_predictions' has {len(self.offline_predictions)} rows; it needs "
                    f"one per probe input ({n})"
                )
        if self.load and not callable(getattr(self.server, "load", None)):
            raise InvalidInput("'server' has no load() method; pass load=False if it is loaded")
        ensure_local(self.server, "server", allow_remote=self.allow_remote)

    # ------------------------------------------------------------------------- run

    def run(self, context: Context | None = None) -> Result:
        """Run stage 0 and, when it passes and ``traffic`` is given, stage 1."""
        ctx = context if context is not None else Context()
        findings: list[Finding] = []
        metrics: dict[str, float] = {}
        details: dict[str, Any] = {"candidate": self.candidate}
        server: Any = self.server
        caller = TimedCaller()
        before = server_versions(server)
        loaded = False
        try:
            ctx.report(f"canary: loading version {self.candidate!r}")
            load_finding, loaded = self._load(caller, server, metrics, details)
            findings.append(load_finding)
            if loaded:
                ctx.report(f"canary: probing version {self.candidate!r}")
                findings += self._probe(caller, server, metrics, details)
                findings += self._metadata()
                stage0_ok = all(f.status < Status.FAIL for f in findings)
                if self.traffic is None:
                    pass
                elif not stage0_ok:
                    findings.append(
                        Finding(
                            "trickle",
                            Status.SKIP,
                            message="stage 1 (live trickle) did not run because stage 0 failed",
                        )
                    )
                else:
                    findings += self._trickle(caller, server, ctx, metrics, details)
        finally:
            caller.close()
            if loaded and self.load and self.unload and before is not None:
                self._restore(server, before, details)
        note = details.get("trickle", {}).get("note")
        return Result.from_findings(
            self.name,
            findings,
            summary=_summary(findings, self.candidate, note),
            metrics=metrics,
            details=details,
            rubric=self.rubric,
        )

    # --------------------------------------------------------------------- stage 0

    def _load(
        self, caller: TimedCaller, server: Any, metrics: dict[str, float], details: dict[str, Any]
    ) -> tuple[Finding, bool]:
        limit = f"<= {self.load_timeout_s:g} s"
        if not self.load:
            versions = server_versions(server)
            if versions is not None and self.candidate not in versions:
                return (
                    Finding(
                        "load",
                        Status.FAIL,
                        None,
                        "loaded",
                        f"version {self.candidate!r} is not loaded in the server (loaded: "
                        f"{list(versions)}) and load=False",
                    ),
                    False,
                )
            return Finding(
                "load", Status.PASS, 0.0, limit, "the candidate was already loaded"
            ), True
        start = time.perf_counter()
        deadline = start + self.load_timeout_s
        errors: list[str] = []
        succeeded = False
        for attempt in range(self.load_retries + 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                errors.append("no time left for another attempt")
                break
            call = caller.call(functools.partial(server.load, self.candidate), remaining)
            if call.timed_out:
                errors.append(f"attempt {attempt + 1} did not finish in time")
                break
            if call.exception is None:
                succeeded = True
                break
            exc = call.exception
            errors.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
            if attempt < self.load_retries:
                time.sleep(min(0.05 * 2**attempt, max(0.0, deadline - time.perf_counter())))
        elapsed = time.perf_counter() - start
        metrics["load_seconds"] = elapsed
        details["load_attempts"] = errors
        if succeeded:
            versions = server_versions(server)
            if versions is not None and self.candidate not in versions:
                return (
                    Finding(
                        "load",
                        Status.FAIL,
                        elapsed,
                        limit,
                        f"load({self.candidate!r}) returned but the server does not list the "
                        f"version (loaded: {list(versions)})",
                    ),
                    False,
                )
            retried = f" after {len(errors)} failed attempts" if errors else ""
            return (
                Finding(
                    "load",
                    Status.PASS,
                    elapsed,
                    limit,
                    f"version {self.candidate!r} loaded in {elapsed:.3g} s{retried}",
                ),
                True,
            )
        why = "; ".join(errors)
        return (
            Finding(
                "load",
                Status.FAIL,
                elapsed,
                limit,
                f"version {self.candidate!r} could not be loaded within load_timeout_s="
                f"{self.load_timeout_s:g} s and {self.load_retries} retries: {why}",
            ),
            False,
        )

    def _send(self, caller: TimedCaller, server: Any, inputs: Any, version: str) -> Response:
        call = caller.call(
            functools.partial(server.infer, inputs, version=version), self.request_timeout_s
        )
        if call.timed_out:
            return Response(
                version=version,
                latency_s=self.request_timeout_s,
                error=f"no answer within request_timeout_s={self.request_timeout_s:g} s",
                error_kind="timeout",
            )
        if call.exception is not None:
            exc = call.exception
            return Response(error=f"{type(exc).__name__}: {exc}", error_kind="connection")
        response = call.value
        if not isinstance(response, Response):
            return Response(
                error=f"infer() returned {describe(response)}, not a Response", error_kind="server"
            )
        if response.ok and response.latency_s <= 0.0:
            return attrs.evolve(response, latency_s=call.elapsed_s)
        return response

    def _probe(
        self, caller: TimedCaller, server: Any, metrics: dict[str, float], details: dict[str, Any]
    ) -> list[Finding]:
        probes = list(self.probe_inputs[: self.n_probe])
        n = len(probes)
        responses = [self._send(caller, server, p, self.candidate) for p in probes]
        findings: list[Finding] = []

        errors: dict[str, list[int]] = {}
        for i, r in enumerate(responses):
            if not r.ok:
                errors.setdefault(error_class(r), []).append(i)
        n_errors = sum(len(v) for v in errors.values())
        metrics["probe_requests"] = float(n)
        metrics["probe_errors"] = float(n_errors)
        details["probe_errors"] = {
            kind: {"count": len(rows), "first_row": rows[0], "first": responses[rows[0]].error}
            for kind, rows in errors.items()
        }
        if n_errors > self.max_probe_errors:
            by_class = ", ".join(f"{len(v)} {k}" for k, v in sorted(errors.items()))
            first_kind = max(errors, key=lambda k: len(errors[k]))
            first = responses[errors[first_kind][0]].error
            findings.append(
                Finding(
                    "probe.errors",
                    Status.FAIL,
                    float(n_errors),
                    f"<= {self.max_probe_errors}",
                    f"{n_errors} of {n} probe requests to version {self.candidate!r} failed "
                    f"({by_class} errors), more than max_probe_errors {self.max_probe_errors}; "
                    f"e.g. {first}",
                )
            )
        else:
            findings.append(
                Finding(
                    "probe.errors",
                    Status.PASS,
                    float(n_errors),
                    f"<= {self.max_probe_errors}",
                    f"{n - n_errors} of {n} probe requests to version {self.candidate!r} succeeded",
                )
            )
        ok = [i for i, r in enumerate(responses) if r.ok]
        wrong = [
            responses[i].version for i in ok if responses[i].version not in (None, self.candidate)
        ]
        if wrong:
            findings.append(
                Finding(
                    "probe.version",
                    Status.FAIL,
                    float(len(wrong)),
                    "== 0",
                    f"{len(wrong)} of {len(ok)} probe responses came from version {wrong[0]!r}, "
                    f"not the candidate {self.candidate!r}",
                )
            )
        latencies = [responses[i].latency_s for i in ok]
        quantiles = latency_quantiles(latencies)
        metrics.update({f"probe_latency_{k}": v for k, v in quantiles.items()})
        if self.max_probe_latency_s is not None and latencies:
            findings.append(
                AtMost(self.max_probe_latency_s).judge(
                    "probe.latency_p99_s",
                    quantiles["p99_s"],
                    context=f" (p99 latency of the candidate's {len(ok)} probe responses, s)",
                )
            )
        if ok:
            findings += self._outputs(probes, responses, ok, metrics, details)
        return findings

    def _outputs(
        self,
        probes: list[Any],
        responses: list[Response],
        ok: list[int],
        metrics: dict[str, float],
        details: dict[str, Any],
    ) -> list[Finding]:
        findings: list[Finding] = []
        arrays = {i: as_output_array(responses[i].outputs) for i in ok}
        not_numeric = [i for i, a in arrays.items() if a is None]
        shapes = {a.shape for a in arrays.values() if a is not None}
        dtypes = {str(a.dtype) for a in arrays.values() if a is not None}
        nonfinite = [
            i
            for i, a in arrays.items()
            if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all()
        ]
        details["probe_outputs"] = {
            "shapes": sorted(str(s) for s in shapes),
            "dtypes": sorted(dtypes),
        }
        problems = []
        if not_numeric:
            problems.append(
                f"{len(not_numeric)} outputs are not numeric "
                f"(e.g. {describe(responses[not_numeric[0]].outputs)})"
            )
        if len(shapes) > 1:
            problems.append(f"outputs have {len(shapes)} different shapes {sorted(shapes)}")
        if nonfinite:
            problems.append(
                f"{len(nonfinite)} outputs contain NaN or infinity (first at probe {nonfinite[0]})"
            )
        offline = self._offline(probes)
        if isinstance(offline, str):
            findings.append(Finding("probe.agreement", Status.FAIL, None, "", offline))
            offline = None
        if offline is not None and shapes and len(shapes) == 1:
            want = offline.shape[1:]
            (got,) = shapes
            if _example_shape(got) != _example_shape(want):
                problems.append(
                    f"outputs have shape {got}; the offline predictions have shape {want} per input"
                )
        if problems:
            findings.append(
                Finding(
                    "probe.outputs",
                    Status.FAIL,
                    None,
                    "numeric, one shape, finite",
                    f"the candidate's probe outputs are malformed: {'; '.join(problems)}",
                )
            )
        else:
            shape = next(iter(shapes)) if shapes else ()
            findings.append(
                Finding(
                    "probe.outputs",
                    Status.PASS,
                    None,
                    "numeric, one shape, finite",
                    f"all {len(ok)} probe outputs are finite {', '.join(sorted(dtypes))} arrays of "
                    f"shape {shape}",
                )
            )
        if offline is not None:
            findings.append(self._agreement(offline, arrays, metrics, details))
        return findings

    def _offline(self, probes: list[Any]) -> np.ndarray | str | None:
        source = self.offline_predictions
        if source is None:
            return None
        try:
            values = np.asarray(source(probes) if callable(source) else source)
        except Exception as exc:
            return f"computing the offline predictions raised {type(exc).__name__}: {exc}"
        if values.dtype.kind not in "biuf" or values.ndim == 0 or len(values) < len(probes):
            return (
                f"the offline predictions must be numeric, one per probe ({len(probes)}) "
                f"(got {describe(values)})"
            )
        return values[: len(probes)]

    def _agreement(
        self,
        offline: np.ndarray,
        arrays: Mapping[int, np.ndarray | None],
        metrics: dict[str, float],
        details: dict[str, Any],
    ) -> Finding:
        agree = 0
        class_agree = 0
        classed = 0
        worst = 0.0
        examples: list[dict[str, Any]] = []
        for i, raw in arrays.items():
            want = _one_example(offline[i])
            served = None if raw is None else _one_example(raw)
            if served is None or served.shape != want.shape:
                if len(examples) < 5:
                    examples.append({"probe": i, "reason": "shape or type differs"})
                continue
            diff = np.abs(served.astype(np.float64) - want.astype(np.float64))
            worst = max(worst, float(diff.max()) if diff.size else 0.0)
            close = bool(np.allclose(served, want, atol=self.atol, rtol=self.rtol))
            agree += close
            if served.ndim == 1 and served.size > 1:
                classed += 1
                class_agree += int(np.argmax(served) == np.argmax(want))
            if not close and len(examples) < 5:
                examples.append({"probe": i, "served": served.tolist(), "offline": want.tolist()})
        compared = len(arrays)
        fraction = agree / compared if compared else 0.0
        metrics["probe_agreement"] = fraction
        metrics["probe_max_abs_diff"] = worst
        if classed:
            metrics["probe_class_agreement"] = class_agree / classed
        details["probe_disagreements"] = examples
        limit = AtLeast(self.min_agreement)
        classes = f"; {class_agree} of {classed} predict the same class" if classed else ""
        if limit.holds(fraction):
            return Finding(
                "probe.agreement",
                Status.PASS,
                fraction,
                limit.describe(),
                f"{agree} of {compared} served outputs match the candidate's offline predictions "
                f"(agreement {fraction:.4g} >= {self.min_agreement:g}, max abs diff {worst:.3g})",
            )
        return Finding(
            "probe.agreement",
            Status.FAIL,
            fraction,
            limit.describe(),
            f"only {agree} of {compared} outputs served for version {self.candidate!r} match its "
            f"offline predictions (agreement {fraction:.4g} < min_agreement "
            f"{self.min_agreement:g}, max abs diff {worst:.4g}{classes}): the serving stack "
            "does not compute what the training code computes (feature handling or schema "
            "skew)",
        )

    def _metadata(self) -> list[Finding]:
        if self.trained_with is None or self.serving_with is None:
            return []
        try:
            serving = self.serving_with() if callable(self.serving_with) else self.serving_with
            serving = dict(serving)
        except Exception as exc:
            return [
                Finding(
                    "metadata",
                    Status.FAIL,
                    message=f"reading serving_with raised {type(exc).__name__}: {exc}",
                )
            ]
        findings = []
        for key, trained in self.trained_with.items():
            if key not in serving:
                findings.append(
                    Finding(
                        f"metadata.{key}",
                        Status.WARN,
                        None,
                        f"== {trained}",
                        f"the server does not report its {key!r} version (the model was "
                        f"trained with {trained!r})",
                    )
                )
            elif str(serving[key]) != str(trained):
                findings.append(
                    Finding(
                        f"metadata.{key}",
                        Status.FAIL,
                        None,
                        f"== {trained}",
                        f"version skew: the model was trained with {key} {trained!r} but the "
                        f"server runs {serving[key]!r}",
                    )
                )
        if not findings:
            findings.append(
                Finding(
                    "metadata",
                    Status.PASS,
                    None,
                    "all equal",
                    f"the server runs the versions the model was trained with "
                    f"({', '.join(f'{k} {v}' for k, v in self.trained_with.items())})",
                )
            )
        return findings

    # --------------------------------------------------------------------- stage 1

    def _label(self, outputs: Any) -> int | None:
        if self.classify is not None:
            try:
                label = self.classify(outputs)
            except Exception:
                return None
            return None if label is None else int(label)
        array = as_output_array(outputs)
        if array is None or array.size == 0:
            return None
        example = _one_example(array)
        if example.ndim == 0:
            if example.dtype.kind in "biu":
                return int(example)
            score = float(example)
            if not math.isfinite(score):
                return None
            return int(np.searchsorted(np.asarray(self.score_bins), score, side="right"))
        if example.ndim == 1:
            return int(np.argmax(example))
        return None

    def _disagree(self, candidate: Any, baseline: Any) -> bool | None:
        """Whether two versions' outputs for one request differ (None: not comparable).

        With ``classify``: their classes differ. Otherwise class-score vectors differ in
        their argmax, scalar scores by more than ``score_tolerance`` (integer scalars when
        unequal), and outputs of different shapes always; batch outputs are not compared.
        """
        if self.classify is not None:
            c_label, b_label = self._label(candidate), self._label(baseline)
            return None if c_label is None or b_label is None else c_label != b_label
        c_array, b_array = as_output_array(candidate), as_output_array(baseline)
        if c_array is None or b_array is None or c_array.size == 0 or b_array.size == 0:
            return None
        c, b = _one_example(c_array), _one_example(b_array)
        if c.ndim > 1 or b.ndim > 1:
            return None
        if c.shape != b.shape:
            return True
        if c.ndim == 1:
            return int(np.argmax(c)) != int(np.argmax(b))
        if c.dtype.kind in "biu" and b.dtype.kind in "biu":
            return int(c) != int(b)
        x, y = float(c), float(b)
        finite = (math.isfinite(x), math.isfinite(y))
        if not all(finite):
            return True if any(finite) else None  # NaN against a number differs
        return abs(x - y) > self.score_tolerance

    def _trickle(
        self,
        caller: TimedCaller,
        server: Any,
        ctx: Context,
        metrics: dict[str, float],
        details: dict[str, Any],
    ) -> list[Finding]:
        baseline = self.baseline
        if baseline is None:
            live = getattr(server, "live_version", None)
            baseline = live() if callable(live) else None
            if baseline is None:
                return [
                    Finding(
                        "trickle",
                        Status.FAIL,
                        message="stage 1 needs a baseline: pass baseline=... or use a server "
                        "with live_version()",
                    )
                ]
        if baseline == self.candidate:
            return [
                Finding(
                    "trickle",
                    Status.FAIL,
                    message=f"the baseline is the candidate itself ({baseline!r}); pass the "
                    "version live traffic goes to as baseline=...",
                )
            ]
        monitor = CanaryMonitor(
            fraction=self.fraction,
            mode=self.mode,
            alpha=self.alpha,
            max_latency_ratio=self.max_latency_ratio,
            clip_ratio=self.clip_ratio,
            max_psi=self.max_psi,
            max_js=self.max_js,
            candidate_requests=self.candidate_requests,
            max_disagreement=self.max_disagreement,
        )
        traffic = self.traffic() if callable(self.traffic) else self.traffic
        assert traffic is not None
        rng = ctx.rng("canary-routing")
        arms: dict[str, dict[str, Any]] = {
            "candidate": {"requests": 0, "errors": {}, "latencies": []},
            "baseline": {"requests": 0, "errors": {}, "latencies": []},
        }
        examples: list[dict[str, Any]] = []  # the first mirrored requests that disagree
        ctx.report(f"canary: trickle to {self.candidate!r} against {baseline!r}")
        start = time.perf_counter()
        stop_reason = "the traffic ran out"
        consumed = 0
        trajectory: list[tuple[float, ...]] = []  # log e-values after each request
        for request in traffic:
            if time.perf_counter() - start >= self.max_duration_s:
                stop_reason = f"max_duration_s={self.max_duration_s:g} passed"
                break
            consumed += 1
            to_candidate = bool(rng.random() < self.fraction)
            if self.mode == "split":
                version, arm = (
                    (self.candidate, "candidate") if to_candidate else (baseline, "baseline")
                )
                response = self._send(caller, server, request, version)
                ok = self._tally(arms[arm], response, version)
                monitor.observe(
                    candidate=to_candidate,
                    error=not ok,
                    latency_s=response.latency_s if ok else None,
                    label=self._label(response.outputs) if ok else None,
                )
            elif not to_candidate:
                response = self._send(caller, server, request, baseline)
                self._tally(arms["baseline"], response, baseline)
            else:
                order = [(self.candidate, "candidate"), (baseline, "baseline")]
                if rng.random() < 0.5:
                    order.reverse()
                got = {arm: self._send(caller, server, request, v) for v, arm in order}
                c_ok = self._tally(arms["candidate"], got["candidate"], self.candidate)
                b_ok = self._tally(arms["baseline"], got["baseline"], baseline)
                c_out, b_out = got["candidate"].outputs, got["baseline"].outputs
                differ = self._disagree(c_out, b_out) if c_ok and b_ok else None
                c_label = self._label(c_out) if c_ok else None
                b_label = self._label(b_out) if b_ok else None
                monitor.observe_pair(
                    candidate_error=not c_ok,
                    baseline_error=not b_ok,
                    candidate_latency_s=got["candidate"].latency_s if c_ok else None,
                    baseline_latency_s=got["baseline"].latency_s if b_ok else None,
                    candidate_label=c_label,
                    baseline_label=b_label,
                    disagree=differ,
                )
                if differ and len(examples) < 5:
                    examples.append(
                        {
                            "request": consumed - 1,
                            "candidate": _brief(c_out, c_label),
                            "baseline": _brief(b_out, b_label),
                        }
                    )
            disagreement = monitor.disagreement
            trajectory.append(
                (
                    monitor.errors.log_evalue,
                    monitor.latency.log_evalue,
                    monitor.shift.log_evalue,
                    math.nan if disagreement is None else disagreement.log_evalue,
                )
            )
            if monitor.decision != "continue":
                stop_reason = (
                    "a regression was detected"
                    if monitor.decision == "fail"
                    else f"the candidate served candidate_requests={self.candidate_requests}"
                )
                break
            if consumed >= self.max_requests:
                stop_reason = f"max_requests={self.max_requests} was reached"
                break
        elapsed = time.perf_counter() - start
        if self.mode == "shadow":
            details["disagreement_examples"] = examples
        return self._verdict(
            monitor, arms, baseline, consumed, elapsed, stop_reason, trajectory, metrics, details
        )

    @staticmethod
    def _tally(arm: dict[str, Any], response: Response, version: str) -> bool:
        arm["requests"] += 1
        ok = response.ok and response.version in (None, version)
        if not ok:
            kind = error_class(response) if not response.ok else "wrong_version"
            arm["errors"][kind] = arm["errors"].get(kind, 0) + 1
            arm.setdefault("first_error", response.error or f"served by {response.version!r}")
        else:
            arm["latencies"].append(response.latency_s)
        return ok

    def _verdict(
        self,
        monitor: CanaryMonitor,
        arms: dict[str, dict[str, Any]],
        baseline: str,
        consumed: int,
        elapsed: float,
        stop_reason: str,
        trajectory: list[tuple[float, ...]],
        metrics: dict[str, float],
        details: dict[str, Any],
    ) -> list[Finding]:
        evidence = monitor.evidence()
        cfg = monitor.config
        threshold = cfg.n_tests / cfg.alpha
        evidence["stop_reason"] = stop_reason
        evidence["seconds"] = elapsed
        evidence["baseline"] = baseline
        evidence["arms"] = {
            name: {
                "requests": arm["requests"],
                "errors": dict(arm["errors"]),
                "first_error": arm.get("first_error"),
                **latency_quantiles(arm["latencies"]),
                "latency_sample_s": quantile_sample(arm["latencies"], limit=200),
            }
            for name, arm in arms.items()
        }
        if cfg.mode == "split":
            evidence["note"] = _SPLIT_NOTE
        evidence["trajectory"] = _trajectory(trajectory)  # last: the longest entry
        details["trickle"] = evidence
        metrics.update(
            {
                "trickle_requests": float(consumed),
                "trickle_candidate_requests": float(monitor.n_candidate),
                "trickle_seconds": elapsed,
                "candidate_errors": float(monitor.candidate_errors),
                "baseline_errors": float(monitor.baseline_errors),
                "errors_evalue": monitor.errors.evalue,
                "latency_ratio": monitor.latency_ratio,
                "latency_evalue": monitor.latency.evalue,
                "shift_evalue": monitor.shift.evalue,
                "psi": monitor.psi,
                "js": monitor.js,
            }
        )
        reasons = set(monitor.reasons)
        n_c = max(1, arms["candidate"]["requests"])
        n_b = max(1, arms["baseline"]["requests"])
        limit = f"e-value < {threshold:.4g}"
        findings = []

        c_err, b_err = monitor.candidate_errors, monitor.baseline_errors
        rates = (
            f"candidate {c_err}/{arms['candidate']['requests']} = {c_err / n_c:.3%}, "
            f"baseline {b_err}/{arms['baseline']['requests']} = {b_err / n_b:.3%}"
        )
        if "errors" in reasons:
            kinds = ", ".join(f"{v} {k}" for k, v in sorted(arms["candidate"]["errors"].items()))
            first = arms["candidate"].get("first_error")
            findings.append(
                Finding(
                    "trickle.errors",
                    Status.FAIL,
                    monitor.errors.evalue,
                    limit,
                    f"the candidate fails more often than the baseline ({rates}; candidate "
                    f"errors: {kinds}; e-value {monitor.errors.evalue:.4g} >= {threshold:.4g}); "
                    f"e.g. {first}",
                )
            )
        else:
            findings.append(
                Finding(
                    "trickle.errors",
                    Status.PASS,
                    monitor.errors.evalue,
                    limit,
                    f"no evidence that the candidate fails more often ({rates}; e-value "
                    f"{monitor.errors.evalue:.4g} < {threshold:.4g})",
                )
            )

        ratio = monitor.latency_ratio
        low, high = evidence["latency_ratio_interval"]
        conf = 1.0 - cfg.alpha_per_test
        lat_text = (
            f"latency ratio {ratio:.3g} (geometric mean of {len(monitor.differences)} pairs, "
            f"{conf:.1%} confidence sequence [{low:.3g}, {high:.3g}])"
            if monitor.differences
            else "no latency pairs yet"
        )
        medians = [evidence["arms"][arm]["p50_s"] for arm in ("candidate", "baseline")]
        if all(math.isfinite(m) for m in medians):
            lat_text += (
                f"; median latency {medians[0] * 1e3:.3g} ms on the candidate, "
                f"{medians[1] * 1e3:.3g} ms on the baseline"
            )
        if "latency" in reasons:
            findings.append(
                Finding(
                    "trickle.latency",
                    Status.FAIL,
                    ratio,
                    f"<= {cfg.max_latency_ratio:g}",
                    f"the candidate is slower than max_latency_ratio {cfg.max_latency_ratio:g} "
                    f"allows: {lat_text}, e-value {monitor.latency.evalue:.4g} >= "
                    f"{threshold:.4g}",
                )
            )
        else:
            findings.append(
                Finding(
                    "trickle.latency",
                    Status.PASS,
                    ratio,
                    f"<= {cfg.max_latency_ratio:g}",
                    f"no evidence that the candidate is slower than max_latency_ratio "
                    f"{cfg.max_latency_ratio:g}: {lat_text}",
                )
            )

        psi_value, js_value = monitor.psi, monitor.js
        effect = f"PSI {psi_value:.3g}, JS {js_value:.3g}"
        if "shift" in reasons:
            findings.append(
                Finding(
                    "trickle.shift",
                    Status.FAIL,
                    psi_value,
                    _shift_limit(cfg.max_psi, cfg.max_js),
                    f"the candidate's predicted-class distribution differs from the baseline's "
                    f"({effect}; e-value {monitor.shift.evalue:.4g} >= {threshold:.4g}; "
                    f"classes candidate/baseline: {_classes(evidence['classes'])})",
                )
            )
        else:
            note = (
                " (a statistically detectable shift smaller than the effect-size limit)"
                if monitor.shift_tolerated
                else ""
            )
            findings.append(
                Finding(
                    "trickle.shift",
                    Status.PASS,
                    psi_value,
                    _shift_limit(cfg.max_psi, cfg.max_js),
                    f"no prediction shift beyond the limit ({effect}; e-value "
                    f"{monitor.shift.evalue:.4g}){note}",
                )
            )

        disagreement_text = ""
        if cfg.mode == "shadow":
            level = 1.0 - 2.0 * cfg.alpha_per_test
            finding, disagreement_text = self._disagreement(monitor, threshold, level, metrics)
            findings.append(finding)

        served = f"the candidate served {monitor.n_candidate} of {consumed} requests"
        if monitor.decision == "fail":
            names = ", ".join(sorted(reasons))
            verdict = Finding(
                "trickle",
                Status.FAIL,
                float(consumed),
                "",
                f"stage 1 stopped after {consumed} requests on a regression in {names} ({served})",
            )
        elif monitor.decision == "pass":
            verdict = Finding(
                "trickle",
                Status.PASS,
                float(consumed),
                "",
                f"no regression detected after {consumed} requests; {served} "
                f"(candidate_requests={self.candidate_requests})",
            )
        else:
            verdict = Finding(
                "trickle",
                Status.WARN,
                float(consumed),
                "",
                f"inconclusive after {consumed} requests: {stop_reason} before the candidate "
                f"served candidate_requests={self.candidate_requests} ({served}; no regression "
                f"detected so far: errors e-value {monitor.errors.evalue:.3g}, {lat_text}, "
                f"{effect}{disagreement_text})",
            )
        return [*findings, verdict]

    def _disagreement(
        self, monitor: CanaryMonitor, threshold: float, conf: float, metrics: dict[str, float]
    ) -> tuple[Finding, str]:
        """The shadow-mode disagreement finding, and a clause for the inconclusive verdict."""
        n, k = monitor.n_compared, monitor.n_disagreed
        rate = monitor.disagreement_rate
        low, high = monitor.disagreement_interval()
        test = monitor.disagreement
        metrics.update(
            {
                "disagreement_pairs": float(n),
                "disagreement_rate": rate,
                "disagreement_rate_low": low,
                "disagreement_rate_high": high,
            }
        )
        if test is not None:
            metrics["disagreement_evalue"] = test.evalue
        limit = (
            "reported only" if self.max_disagreement is None else f"<= {self.max_disagreement:g}"
        )
        observed = None if n == 0 else rate
        if n == 0:
            pairs = len(monitor.differences)
            status = Status.WARN if pairs else Status.PASS
            why = (
                f"none of the {pairs} mirrored requests both versions answered gave outputs "
                "with a class or a score to compare (pass classify=...)"
                if pairs
                else "no mirrored request was answered by both versions yet"
            )
            message = f"the disagreement rate could not be measured: {why}"
            return Finding("trickle.disagreement", status, observed, limit, message), ""
        counts = (
            f"{k} of {n} paired requests (disagreement rate {rate:.3g}, {conf:.1%} "
            f"confidence sequence [{low:.3g}, {high:.3g}])"
        )
        clause = f", disagreement rate {rate:.3g} on {n} pairs"
        if test is None:
            message = (
                f"the candidate's prediction differs from the baseline's on {counts}; not judged "
                "(max_disagreement=None)"
            )
            return Finding("trickle.disagreement", Status.PASS, observed, limit, message), clause
        if "disagreement" in monitor.reasons:
            message = (
                f"the candidate's prediction differs from the baseline's on {counts}, more often "
                f"than max_disagreement {self.max_disagreement:g} allows (e-value "
                f"{test.evalue:.4g} >= {threshold:.4g}): request by request it predicts "
                "differently from the live model, as a model trained on wrong or inverted "
                "labels does"
            )
            return Finding("trickle.disagreement", Status.FAIL, observed, limit, message), clause
        message = (
            f"no evidence that the candidate disagrees with the baseline more often than "
            f"max_disagreement {self.max_disagreement:g}: its prediction differs on {counts}, "
            f"e-value {test.evalue:.4g} < {threshold:.4g}"
        )
        return Finding("trickle.disagreement", Status.PASS, observed, limit, message), clause

    def _restore(self, server: Any, before: tuple[str, ...], details: dict[str, Any]) -> None:
        if self.candidate in before:
            return
        live = getattr(server, "live_version", None)
        try:
            if callable(live) and live() == self.candidate:
                return
            server.unload(self.candidate)
            details["unloaded"] = self.candidate
        except Exception as exc:
            details["unload_error"] = f"{type(exc).__name__}: {exc}"


_TESTS = ("errors", "latency", "shift", "disagreement")


def _trajectory(log_evalues: Sequence[tuple[float, ...]]) -> dict[str, list[float]]:
    """Each test's e-value after up to `MAX_POINTS` requests; its peak and the end kept.

    A test that did not run (NaN throughout: disagreement outside shadow mode) is left out.
    """
    values = np.asarray(log_evalues, dtype=np.float64).reshape(-1, len(_TESTS))
    ran = [k for k in range(len(_TESTS)) if len(values) and not np.isnan(values[:, k]).all()]
    peaks = [int(np.nanargmax(values[:, k])) for k in ran]
    kept = even_indices(len(values), keep=[*peaks, len(values) - 1])
    evalues = np.exp(np.minimum(values[kept], 709.0))  # capped below float overflow
    out: dict[str, list[float]] = {"request": (kept + 1).tolist()}
    for k in ran:
        out[f"{_TESTS[k]}_evalue"] = significant(evalues[:, k])
    return out


def _shift_limit(max_psi: float | None, max_js: float | None) -> str:
    parts = []
    if max_psi is not None:
        parts.append(f"PSI <= {max_psi:g}")
    if max_js is not None:
        parts.append(f"JS <= {max_js:g}")
    return " and ".join(parts) or "no significant shift"


def _classes(table: Mapping[str, Sequence[int]]) -> str:
    return ", ".join(f"{k}: {c}/{b}" for k, (c, b) in table.items())


def _example_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one example's output: ``(1, k) -> (k,)``, any single value -> ``()``."""
    if math.prod(shape) == 1:
        return ()
    if len(shape) >= 2 and shape[0] == 1:
        return shape[1:]
    return shape


def _one_example(array: np.ndarray) -> np.ndarray:
    """``array`` as one example's output: a single-row batch axis dropped (see `_example_shape`).

    V2 servers answer a one-row request with shape ``(1, k)``; ``(k,)`` and ``(1, k)`` both
    mean one example's ``k`` class scores, and ``()``, ``(1,)`` and ``(1, 1)`` one score.
    """
    return array.reshape(_example_shape(array.shape))


def _brief(outputs: Any, label: int | None) -> dict[str, Any]:
    """A JSON-safe summary of one response's outputs for the report."""
    array = as_output_array(outputs)
    if array is not None and array.size <= 10:
        return {"class": label, "outputs": array.tolist()}
    return {"class": label}


def _summary(findings: Sequence[Finding], candidate: str, note: str | None) -> str:
    bad = [f for f in findings if f.status >= Status.FAIL]
    if bad:
        head = bad[0]
        if head.name == "trickle":  # the verdict line; the test's own message says more
            head = next((f for f in bad if f.name.startswith("trickle.")), head)
        more = f" (and {len(bad) - 1} more failed conditions)" if len(bad) > 1 else ""
        return head.message + more
    caveat = (
        " (split mode compares class mixes; mode='shadow' compares predictions)" if note else ""
    )
    warn = [f for f in findings if f.status is Status.WARN]
    if warn:
        return warn[0].message + caveat
    trickle = next((f for f in findings if f.name == "trickle" and f.status is Status.PASS), None)
    if trickle is not None:
        return (
            f"version {candidate!r} passed stage 0 and the live trickle: {trickle.message}{caveat}"
        )
    return (
        f"version {candidate!r} loads, serves production inputs and matches its offline predictions"
    )
