"""Rubric test 6: the model goes through a canary before it enters production serving.

"Modeling code can change more frequently than serving code, so there is a danger that an
older serving system will not be able to serve a model trained from newer code. This
includes testing that a model can be loaded into the production serving binaries and
perform inference on production input data at all. It also includes a canary process, in
which a new version is tested on a small trickle of live data" (Breck et al.,
ML Test Score).

`CanaryCheck` runs both stages against any `ModelServer`:

- **Stage 0, load and query.** Load the candidate into the server (within
  ``load_timeout_s``, retried ``n_load_retries`` times on errors), send ``n_probes``
  production inputs one request each (the same ones to the baseline, when it is loaded),
  and judge: errors by class (timeout, client/4xx, server/5xx or exception, connection),
  against the baseline's on the same probes (an exact paired test), which version
  answered, output shape, dtype and finiteness, latency quantiles, and agreement with the
  candidate's *offline* predictions on the same inputs. Disagreement is how an older
  serving stack that cannot serve a model from newer code shows itself (features handled
  differently, a changed schema). Optionally the library versions the model was trained
  with are compared with those the server runs.
- **Stage 1, trickle.** Consume live requests from ``traffic``; route a
  ``traffic_fraction`` to the candidate and the rest to the baseline (``mode="split"``),
  or mirror a fraction to both (``mode="shadow"``, paired comparison). After every
  request anytime-valid sequential tests (the kernels of `mlchecks.stats.sequential`)
  judge errors, latency (the typical ratio, and how often the candidate is slow: the
  tail) and prediction shift, and in shadow mode also how often the two
  versions' predictions differ on the same request (the disagreement rate, against
  ``max_disagreement``); each, and stage 0's probe-error test, gets an equal share of
  ``alpha`` (Bonferroni), so the chance of a false FAIL for a candidate identical to the
  baseline is at most ``alpha`` although the canary is judged after every request. Split
  mode compares only the two versions' class proportions: a candidate predicting another
  class for most requests with the same overall mix (trained on inverted labels) passes
  it; the report says so and suggests shadow mode. The canary stops early on a
  regression, PASSes once the candidate has served ``n_candidate_requests`` requests with
  none detected, and WARNs "inconclusive after N requests" when the traffic,
  ``budget_requests`` or ``budget_s`` runs out first.

Every limit (``max_*``/``min_*``) takes a number or a condition; a condition with
``severity="warn"`` makes crossing it a warning. A request is one row or a batch of rows,
and each row's answer is read on its own: a vector of class scores of shape ``(k,)`` or
``(1, k)`` (the leading batch axis of a single-row request, as V2 servers answer), one
score, or a class label (an integer, or text numbered through ``classes``). Stage 0 and the
disagreement test judge every row; the shift test takes one row per request, drawn at
random, as a request's rows share its route. Every request the check sends is bounded:
``request_timeout_s`` each, ``budget_requests`` and ``budget_s`` in total, and only to
127.0.0.1 unless ``allow_remote=True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from mlchecks._deadline import Deadline, bounded_iter
from mlchecks._fields import (
    MaxLimit,
    MinLimit,
    count,
    flag,
    limit,
    name_field,
    number,
    renamed,
    rubric,
    seconds,
    tolerance,
)
from mlchecks._text import fmt
from mlchecks._validate import (
    describe,
    is_collection,
    non_empty_string,
    optional,
)
from mlchecks.check import Context
from mlchecks.checks._canary_agreement import offline_rows
from mlchecks.checks._canary_fields import TrickleSettings
from mlchecks.checks._canary_leads import lead
from mlchecks.checks._canary_outputs import LabelReader, Row, brief, offline_field
from mlchecks.checks._canary_policy import CanaryMonitor, CanaryPolicy
from mlchecks.checks._canary_probe import judge_metadata, judge_probes
from mlchecks.checks._canary_report import Trickle, report_trickle, summary
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._session import Session, ensure_local, probe_inputs, server_versions
from mlchecks.checks._traffic import request_rows
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Endpoint
from mlchecks.result import Result, Status

__all__ = ["CanaryCheck"]

# ------------------------------------------------------------------------------ fields


def _server(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Endpoint):
        raise InvalidInput(
            "'server' must be a ModelServer (infer, load, unload, versions) "
            f"(got {describe(value)})"
        )


def _traffic(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or callable(value):
        return
    if not is_collection(value):
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


def _flag(default: bool) -> Any:
    return flag(default)


#: Every keyword of mlchecks 0.1 that has a new name.
RENAMED = {
    "n_probe": "n_probes",
    "fraction": "traffic_fraction",
    "candidate_requests": "n_candidate_requests",
    "max_requests": "budget_requests",
    "max_duration_s": "budget_s",
    "atol": "prediction_atol",
    "rtol": "prediction_rtol",
    "score_tolerance": "score_atol",
    "load_retries": "n_load_retries",
}


# ------------------------------------------------------------------------------- check


@renamed(RENAMED)
@attrs.frozen
class CanaryCheck(TrickleSettings):
    """Load a candidate into the serving system, probe it, then watch a trickle of live traffic.

    Args:
        server: the `ModelServer` (an `Endpoint` with ``load``/``versions``) running the
            production serving code; the candidate is loaded into it.
        candidate: the version under test.
        probe_inputs: production inputs for stage 0, one request each (keyword-only, like
            every field after ``candidate``); a request may be a batch of rows
            (``(m, n_features)``), and every row is judged.
        offline_predictions: the candidate's offline predictions for ``probe_inputs``,
            one per row: ``(n, k)`` scores, ``(n,)`` labels (numbers or text), ``(n, 1,
            k)`` like single-row V2 answers, or for batched probes ``(n_probes, m, k)``
            or one array per probe; or ``f(inputs) -> predictions`` computing them with
            the training-side code (given all the probes' rows stacked into one array
            when the probes are arrays of rows, ``(m, n_features)`` or ``(1,
            n_features)``; else the probes as they are). None skips the agreement check.
        baseline: the version live traffic goes to; None: the server's ``live_version()``.
        traffic: live request inputs for stage 1 (an iterable, or a callable returning a
            fresh one per run). None skips stage 1.
        n_probes: probe at most this many inputs.
        load: call ``server.load(candidate)`` (False when it is already loaded).
        load_timeout_s: the longest loading may take, over all attempts.
        n_load_retries: further attempts when loading raises.
        request_timeout_s: the longest one request may take (slower: a timeout error).
        max_probe_errors: failed probe requests allowed (a whole number). With a loaded
            baseline the same probes also go to it, and the candidate FAILs when it fails
            significantly more of them (an exact one-sided paired test at its share of
            ``alpha``) by more than this many; without one, when the lower Clopper-Pearson
            bound of its expected error count is above this (WARN when only the count
            is). Failing most probes always FAILs.
        min_agreement: the least fraction of probes whose served output must match the
            offline prediction within ``prediction_atol`` + ``prediction_rtol``.
        prediction_atol, prediction_rtol: the agreement tolerance.
        max_probe_latency_s: a limit on the probes' p99 latency (None: reported only).
        trained_with: component -> version the model was trained with (``{"numpy":
            "2.4.1", "feature_schema": "7"}``).
        serving_with: the same for the serving system, or a callable returning it; every
            component in both must match exactly.
        traffic_fraction: the candidate's share of live requests (split) or of mirrored
            requests (shadow), in (0, 1).
        mode: ``"split"`` (route; compares class proportions only) or ``"shadow"`` (mirror
            to both, users get the baseline; also tests the disagreement rate).
        alpha: the false-FAIL rate bound of the check's statistical tests as a whole,
            shared equally by stage 0's probe-error test and stage 1's tests (errors,
            latency, tail latency and shift; disagreement in shadow mode): ``alpha / 5``
            or ``alpha / 6`` each at the defaults; all of it to the probe-error test
            without ``traffic``.
        n_candidate_requests: stage 1 passes once the candidate served this many requests.
        budget_requests: the most live requests stage 1 consumes.
        budget_s: the longest stage 1 runs.
        check_timeout_s: the longest the whole check may take, every request, load and read of
            ``traffic`` included; past it the check unloads what it loaded and ends in
            ERROR naming what ran over. None: no limit.
        max_latency_ratio: the candidate may be this many times slower (geometric mean).
        clip_ratio: per-pair latency ratios are clipped to ``[1/clip, clip]``.
        max_tail_ratio: the candidate may be *slow* (beyond the ``latency_quantile`` of
            all earlier latencies, both versions pooled) at most this many times as often
            as the baseline, which catches slower tails with an unchanged median; None:
            not tested.
        latency_quantile: the quantile that makes a request slow, in (0.5, 1).
        max_psi, max_js: a detected prediction shift is a regression only when the data
            show its effect size above these (a test on the size, not the small-sample
            plug-in estimate; both None: any detected shift is).
        max_disagreement: shadow mode: the highest tolerated rate of mirrored requests on
            which the candidate's prediction differs from the baseline's (another top
            class, or a scalar score further than ``score_atol``); None reports the rate
            without judging it. Retrained models typically change a few percent of
            predictions; set it from your own seed-to-seed churn (rubric test 1).
        score_atol: two scalar scores differ when they are further apart than this.
        score_bins: bin edges turning scalar scores into classes for the shift test.
        classify: ``classify(outputs) -> int | None``, one row's class (default: the
            argmax of a ``(k,)`` or ``(1, k)`` vector, the bin of a scalar score, an
            integer scalar as is, a text label by ``classes``). When given, it also
            decides disagreement (the classes differ).
        classes: the class labels in class order (``["benign", "malignant"]``, a
            classifier's ``classes_``): text labels served as V2 ``BYTES`` are coded by
            their position here; without it, in the order they are first seen.
        unload: unload the candidate afterwards when the check loaded it.
        allow_remote: allow a server that is not on 127.0.0.1.
        name: the check's name.
        rubric: the ML Test Score test number.

    Raises:
        InvalidInput: a field has the wrong type or value.
        TypeError: a keyword of mlchecks 0.1 (the message names its new name).

    Stage 0 alone (no ``traffic``), on an in-process server whose loader builds models:

    >>> import numpy as np
    >>> from mlchecks.serving import InProcessServer
    >>> weights = {"1": 1.0, "2": 2.0}
    >>> server = InProcessServer(loader=lambda v: lambda x: np.asarray(x) * weights[v])
    >>> server.load("1")
    >>> server.set_live("1")
    >>> probes = [[0.5, 1.0], [2.0, 0.0]]
    >>> offline = [[1.0, 2.0], [4.0, 0.0]]
    >>> result = CanaryCheck(server, "2", probe_inputs=probes, offline_predictions=offline).run()
    >>> result.status, result.metrics["probe.agreement"]
    (<Status.PASS: 'pass'>, 1.0)
    >>> wrong = [[1, 2], [3, 0]]
    >>> CanaryCheck(server, "2", probe_inputs=probes, offline_predictions=wrong).run().status
    <Status.FAIL: 'fail'>
    """

    server: Endpoint = attrs.field(validator=_server)
    candidate: str = attrs.field(validator=optional(non_empty_string))
    probe_inputs: tuple[Any, ...] = attrs.field(converter=probe_inputs, kw_only=True)
    offline_predictions: Any = attrs.field(default=None, converter=offline_field, kw_only=True)
    baseline: str | None = attrs.field(
        default=None, validator=optional(non_empty_string), kw_only=True
    )
    traffic: Iterable[Any] | Callable[[], Iterable[Any]] | None = attrs.field(
        default=None, validator=_traffic, kw_only=True
    )
    n_probes: int = count(100, minimum=1)
    load: bool = _flag(True)
    load_timeout_s: float = seconds(60.0)
    n_load_retries: int = count(2, maximum=100)
    request_timeout_s: float = seconds(5.0)
    max_probe_errors: MaxLimit = limit("max", 0, integer=True)
    min_agreement: MinLimit = limit("min", 0.99, high=1.0)
    prediction_atol: float = tolerance(1e-6)
    prediction_rtol: float = tolerance(1e-5)
    max_probe_latency_s: MaxLimit | None = limit("max", None, optional=True)
    trained_with: Mapping[str, str] | None = attrs.field(
        default=None, validator=_metadata, kw_only=True
    )
    serving_with: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = attrs.field(
        default=None, validator=_metadata, kw_only=True
    )
    traffic_fraction: float = number(0.05, low=0.0, high=1.0, low_open=True, high_open=True)
    budget_requests: int = count(20_000, minimum=1)
    budget_s: float = seconds(120.0)
    check_timeout_s: float | None = seconds(600.0, optional=True)
    unload: bool = _flag(True)
    allow_remote: bool = _flag(False)
    name: str = name_field("canary")
    rubric: int | None = rubric(6)

    def __attrs_post_init__(self) -> None:
        self._check_limits()
        offline = self.offline_predictions
        if offline is not None and not callable(offline):
            rows = [request_rows(p) for p in self.probe_inputs[: self.n_probes]]
            if offline_rows(offline, rows) is None:
                need = (
                    f"one per probe input ({len(rows)})"
                    if sum(rows) == len(rows)
                    else f"one per probe row ({sum(rows)} rows in {len(rows)} probes)"
                )
                raise InvalidInput(
                    f"'offline_predictions' has {len(offline)} rows; it needs {need}"
                )
        if self.load and not callable(getattr(self.server, "load", None)):
            raise InvalidInput("'server' has no load() method; pass load=False if it is loaded")
        ensure_local(self.server, "server", allow_remote=self.allow_remote)

    # ------------------------------------------------------------------------- run

    def run(self, context: Context | None = None) -> Result:
        """Run stage 0 and, when it did not fail and ``traffic`` is given, stage 1."""
        ctx = context if context is not None else Context()
        b = ResultBuilder.of(self)
        b.detail("candidate", self.candidate)
        with (
            Deadline(self.check_timeout_s, self.name) as deadline,
            Session(
                self.server, request_timeout_s=self.request_timeout_s, deadline=deadline
            ) as session,
        ):
            try:
                ctx.report(f"canary: loading version {self.candidate!r}")
                if self._load(session, b):
                    ctx.report(f"canary: probing version {self.candidate!r}")
                    probes = list(self.probe_inputs[: self.n_probes])
                    baseline = self._probe_baseline(session.server)
                    responses, answers = [], []
                    for p in probes:  # the same probes to both versions, in turn
                        responses.append(session.send(p, self.candidate))
                        if baseline is not None:
                            answers.append(session.send(p, baseline))
                    paired = None if baseline is None else (baseline, answers)
                    stage0, _ = self._alphas()
                    judge_probes(self, probes, responses, b, baseline=paired, alpha=stage0)
                    judge_metadata(self, b)
                    if self.traffic is None:
                        pass
                    elif b.status >= Status.FAIL:
                        message = "stage 1 (live trickle) did not run because stage 0 failed"
                        b.note("trickle", Status.SKIP, message)
                    else:
                        self._trickle(session, ctx, b)
            finally:
                b.details.update(session.restore(unload=self.unload))
        note = b.details.get("trickle", {}).get("note")
        lead(b, self.candidate)
        return b.result(summary=summary(b.findings, self.candidate, note))

    # --------------------------------------------------------------------- stage 0

    def _listed(self, server: Any, b: ResultBuilder) -> bool:
        """Whether the server lists the already-loaded candidate; a FAIL finding when not."""
        versions = server_versions(server)
        if versions is None or self.candidate in versions:
            return True
        message = (
            f"version {self.candidate!r} is not loaded in the server (loaded: "
            f"{list(versions)}) and load=False"
        )
        b.note("load", Status.FAIL, message, limit="loaded")
        return False

    def _load(self, session: Session, b: ResultBuilder) -> bool:
        """Load the candidate (retried within ``load_timeout_s``); True when it is loaded."""
        limit = f"<= {fmt(self.load_timeout_s)} s"
        if not self.load:
            if not self._listed(session.server, b):
                return False
            b.note(
                "load", Status.PASS, "the candidate was already loaded", observed=0.0, limit=limit
            )
            return True
        loaded = session.load(
            self.candidate, timeout_s=self.load_timeout_s, retries=self.n_load_retries
        )
        b.metric("load.duration_s", loaded.elapsed_s)
        b.detail("load_attempts", list(loaded.attempts))
        b.note("load", loaded.status, loaded.message, observed=loaded.elapsed_s, limit=limit)
        return loaded.ok

    # --------------------------------------------------------------------- stage 1

    def _baseline(self) -> str | None:
        if self.baseline is not None:
            return self.baseline
        live = getattr(self.server, "live_version", None)
        return live() if callable(live) else None

    def _probe_baseline(self, server: Any) -> str | None:
        """The baseline stage 0 probes too: a loaded version other than the candidate."""
        baseline = self._baseline()
        if baseline is None or baseline == self.candidate:
            return None
        versions = server_versions(server)
        return baseline if versions is None or baseline in versions else None

    def _alphas(self) -> tuple[float, float]:
        """``alpha`` split into (stage 0's probe-error test, stage 1 as a whole).

        Without ``traffic`` the probe-error test has all of it; with it, it is one more test
        beside stage 1's (Bonferroni): ``alpha / (n + 1)`` each for stage 1's ``n`` tests.
        """
        if self.traffic is None:
            return self.alpha, 0.0
        n = self._trickle_policy().n_tests
        return self.alpha / (n + 1), self.alpha * n / (n + 1)

    def _policy(self) -> CanaryPolicy:
        """The numbers stage 1 decides by: these fields' values."""
        return self._trickle_policy(traffic_fraction=self.traffic_fraction, alpha=self._alphas()[1])

    def _trickle(self, session: Session, ctx: Context, b: ResultBuilder) -> None:
        baseline = self._baseline()
        if baseline is None:
            message = (
                "stage 1 needs a baseline: pass baseline=... or use a server with live_version()"
            )
            b.note("trickle", Status.FAIL, message)
            return
        if baseline == self.candidate:
            message = (
                f"the baseline is the candidate itself ({baseline!r}); pass the version live "
                "traffic goes to as baseline=..."
            )
            b.note("trickle", Status.FAIL, message)
            return
        monitor = CanaryMonitor(self._policy())
        traffic = self.traffic() if callable(self.traffic) else self.traffic
        assert traffic is not None
        rng = ctx.rng("canary-routing")
        reader = self._reader()
        run = Trickle(baseline)
        ctx.report(f"canary: trickle to {self.candidate!r} against {baseline!r}")
        start = time.perf_counter()
        for request in bounded_iter(traffic, session.deadline, "reading the next traffic request"):
            if time.perf_counter() - start >= self.budget_s:
                run.stop_reason = f"budget_s={self.budget_s:g} passed"
                break
            run.consumed += 1
            to_candidate = bool(rng.random() < self.traffic_fraction)
            # A batch's rows share one route, so they are not independent evidence of a
            # shift: one row, drawn at random, speaks for the request (see docs/checks/canary.md).
            n_rows = request_rows(request)
            row = Row(n_rows, min(int(rng.random() * n_rows), n_rows - 1) if n_rows > 1 else 0)
            if self.mode == "split":
                self._split(session, request, row, to_candidate, monitor, run, reader)
            elif not to_candidate:
                run.tally("baseline", session.send(request, baseline), baseline)
            else:
                first = bool(rng.random() < 0.5)
                self._shadow(session, request, row, first, monitor, run, reader)
            run.track(monitor.log_evalues)
            if run.decided(monitor.decision, self.n_candidate_requests):
                break
            if run.consumed >= self.budget_requests:
                run.stop_reason = f"budget_requests={self.budget_requests} was reached"
                break
        run.elapsed_s = time.perf_counter() - start
        if self.mode == "shadow":
            b.detail("disagreement_examples", run.examples)
        report_trickle(self, monitor, run, b)

    def _split(
        self,
        session: Session,
        request: Any,
        row: Row,
        to_candidate: bool,
        monitor: CanaryMonitor,
        run: Trickle,
        reader: LabelReader,
    ) -> None:
        arm = "candidate" if to_candidate else "baseline"
        version = self.candidate if to_candidate else run.baseline
        response = session.send(request, version)
        ok = run.tally(arm, response, version)
        monitor.observe(
            candidate=to_candidate,
            error=not ok,
            latency_s=response.latency_s if ok else None,
            label=reader.row_label(response.outputs, row.n, row.drawn) if ok else None,
        )

    def _shadow(
        self,
        session: Session,
        request: Any,
        row: Row,
        baseline_first: bool,
        monitor: CanaryMonitor,
        run: Trickle,
        reader: LabelReader,
    ) -> None:
        order = [(self.candidate, "candidate"), (run.baseline, "baseline")]
        if baseline_first:
            order.reverse()
        got = {arm: session.send(request, v) for v, arm in order}
        c_ok = run.tally("candidate", got["candidate"], self.candidate)
        b_ok = run.tally("baseline", got["baseline"], run.baseline)
        c_out, b_out = got["candidate"].outputs, got["baseline"].outputs
        differ = row.disagreement(reader, c_out, b_out) if c_ok and b_ok else None
        c_label = reader.row_label(c_out, row.n, row.drawn) if c_ok else None
        b_label = reader.row_label(b_out, row.n, row.drawn) if b_ok else None
        monitor.observe_pair(
            candidate_error=not c_ok,
            baseline_error=not b_ok,
            candidate_latency_s=got["candidate"].latency_s if c_ok else None,
            baseline_latency_s=got["baseline"].latency_s if b_ok else None,
            candidate_label=c_label,
            baseline_label=b_label,
            disagree=differ,
        )
        if differ and len(run.examples) < 5:
            example = {
                "request": run.consumed - 1,
                "candidate": brief(c_out, c_label),
                "baseline": brief(b_out, b_label),
            }
            if row.n > 1:
                example["rows"], example["rows_differing"] = row.n, fmt(float(differ) * row.n)
            run.examples.append(example)
