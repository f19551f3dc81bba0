"""Rubric test 7: a model can be rolled back quickly and safely to the previous version.

"Test how quickly and safely a model can be rolled back to a previous serving version"
(Breck et al., ML Test Score).

`RollbackCheck` drives a `Deployment` (the live pointer) and an `Endpoint` (live traffic):

1. record the known-good version's predictions on the probe inputs (asked for by name,
   or given: ``known_good_predictions``, computed offline, for a server that cannot
   answer named versions, such as MLflow's scoring server or a FastAPI service);
2. deploy the candidate (``set_live(candidate)``) and confirm it serves live traffic;
3. start a background load generator sending the probe inputs as live requests, and roll
   back with ``set_live(known_good)`` while it runs;
4. from the responses, measure the time from the command to the first response from the
   known-good version, and to the point after which *every* response comes from it
   (``n_settle_requests`` in a row), the requests that failed during the switch, and the
   longest gap without a successful response;
5. after the rollback, the served predictions must equal the known-good ones (bitwise by
   default), which catches caches and replicas that keep serving the candidate.

Each response is attributed by its version label *and* its outputs: it counts as the
known-good version's only when it carries that label (or none) and the known-good outputs
for its input. An endpoint that reports no version is judged by outputs alone: the
candidate's outputs are asked for by name, given (``candidate_predictions``), or learnt
from live traffic once the deployment serves it, and probes on which both versions answer
alike are left out of the timing (they cannot tell the versions apart).

The whole procedure runs ``n_repeats`` times (sequentially: the repeats share the one live
pointer); p50 and p99 over the repeats are judged against ``max_rollback_s``, and the
worst repeat's failures against ``max_failed_requests``. The live version is restored at
the end.

The load generator is bounded (``request_rate``, ``budget_requests`` and ``budget_s`` per
repeat), stops by itself, and sends only to 127.0.0.1 unless ``allow_remote=True``. Every
other request goes through one `mlchecks.checks._session.Session`, bounded by
``request_timeout_s``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import attrs

from mlchecks import _fields
from mlchecks._deadline import Deadline
from mlchecks._fields import MaxLimit, count, held, held_or_none, limit, renamed, seconds, tolerance
from mlchecks._text import fmt, plural
from mlchecks._validate import describe, non_empty_string, optional
from mlchecks.check import Context
from mlchecks.checks._result import ResultBuilder
from mlchecks.checks._rollback_refs import (
    StepFailed,
    check_live_known_good,
    given_references,
    references,
)
from mlchecks.checks._rollback_repeat import (
    Attribution,
    Repeat,
    candidate_predictions,
    known_good_predictions,
    measure,
    quantiles,
)
from mlchecks.checks._session import Session, ensure_local, probe_inputs
from mlchecks.checks._traffic import LoadGenerator, Record
from mlchecks.exceptions import InvalidInput
from mlchecks.protocols import Deployment, Endpoint
from mlchecks.result import Result, Status

__all__ = ["RollbackCheck"]


_RENAMED = {
    "repeats": "n_repeats",
    "warmup_requests": "n_warmup_requests",
    "settle_requests": "n_settle_requests",
    "max_requests": "budget_requests",
    "max_duration_s": "budget_s",
    "atol": "prediction_atol",
    "rtol": "prediction_rtol",
    "rate_per_s": "request_rate",
}


def _deployment(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Deployment):
        raise InvalidInput(
            f"'deployment' must be a Deployment (live_version, set_live) (got {describe(value)})"
        )


def _endpoint(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Endpoint):
        raise InvalidInput(f"'endpoint' must be an Endpoint with infer() (got {describe(value)})")


@renamed(_RENAMED)
@attrs.frozen
class RollbackCheck:
    """Deploy a candidate, roll back under live traffic, and judge speed and safety.

    Every limit (``max_*``) takes a number or `AtMost` (``severity="warn"`` makes it a
    warning).

    Args:
        deployment: the `Deployment` whose ``set_live`` deploys and rolls back.
        endpoint: the `Endpoint` live traffic goes to (often the same object).
        candidate: the version to deploy and roll back from.
        probe_inputs: request inputs; the load generator cycles through them and the
            predictions are compared on them.
        known_good: the version to roll back to; None: the live version at the start.
        known_good_predictions: the known-good version's outputs for the probes, computed
            offline: one per probe input (a sequence, or an array whose first axis runs
            over the probes), or ``f(probe) -> outputs`` called once per probe input.
            Give them when the endpoint cannot answer a named version (a server of one
            model); None asks the endpoint for ``known_good`` by name. Before the first
            deploy the live version must answer them.
        candidate_predictions: the same for the candidate; None asks the endpoint for the
            candidate by name and, where it cannot answer, learns the candidate's outputs
            from live traffic once it serves.
        n_repeats: deploy-and-roll-back cycles; p50 and p99 are over these.
        max_rollback_s: the p99 time from the rollback command until every response
            comes from the known-good version must not exceed this.
        max_failed_requests: failed requests allowed during a switch (worst repeat).
        max_gap_s: an optional limit on the longest gap without a successful response.
        exact: after the rollback, served predictions must equal the known-good ones
            bitwise; False compares within ``prediction_atol`` and ``prediction_rtol``.
        prediction_atol, prediction_rtol: the tolerance when ``exact`` is False.
        request_rate: the load generator's requests per second.
        n_warmup_requests: responses from the candidate before rolling back.
        n_settle_requests: consecutive known-good responses that end a repeat's observation.
        budget_requests: the most requests the load generator sends per repeat.
        budget_s: the longest the load generator runs per repeat.
        deploy_timeout_s: the longest the candidate may take to serve after
            ``set_live(candidate)``.
        request_timeout_s: the longest one request may take (slower: a failed request).
        check_timeout_s: the longest the whole check may take, every call included; past it the
            check stops, puts the live version back and ends in ERROR naming what ran
            over. None: no limit.
        allow_remote: allow an endpoint that is not on 127.0.0.1.
        name: the check's name.
        rubric: the ML Test Score test number.

    Raises:
        InvalidInput: a field has the wrong type or value.
        TypeError: a keyword renamed in 0.2.0 (``repeats``, ``max_requests``, ...) was passed.

    An `mlchecks.serving.InProcessServer` is both the deployment and the endpoint; its
    switch is atomic, so the rollback loses no request:

    >>> from mlchecks.serving import InProcessServer
    >>> server = InProcessServer().add("1", lambda x: [v * 1.0 for v in x])
    >>> server = server.add("2", lambda x: [v * 2.0 for v in x])
    >>> server.set_live("1")
    >>> check = RollbackCheck(server, server, "2", probe_inputs=[[1.0], [2.0]], n_repeats=2)
    >>> result = check.run()
    >>> result.status, result.metrics["n_failed_requests"], server.live_version()
    (<Status.PASS: 'pass'>, 0.0, '1')
    """

    deployment: Deployment = attrs.field(validator=_deployment)
    endpoint: Endpoint = attrs.field(validator=_endpoint)
    candidate: str = attrs.field(validator=non_empty_string)
    probe_inputs: tuple[Any, ...] = attrs.field(converter=probe_inputs, kw_only=True)
    known_good: str | None = attrs.field(
        default=None, validator=optional(non_empty_string), kw_only=True
    )
    known_good_predictions: Any = attrs.field(
        default=None, converter=known_good_predictions, kw_only=True
    )
    candidate_predictions: Any = attrs.field(
        default=None, converter=candidate_predictions, kw_only=True
    )
    n_repeats: int = count(3, minimum=1, maximum=1000)
    max_rollback_s: MaxLimit = limit("max", 1.0)
    max_failed_requests: MaxLimit = limit("max", 0, integer=True)
    max_gap_s: MaxLimit | None = limit("max", None, optional=True)
    exact: bool = _fields.flag(True)
    prediction_atol: float = tolerance(0.0)
    prediction_rtol: float = tolerance(0.0)
    request_rate: float = _fields.number(1000.0, low=0.0, high=1e6, low_open=True)
    n_warmup_requests: int = count(20, minimum=1)
    n_settle_requests: int = count(50, minimum=1)
    budget_requests: int = count(5000, minimum=1)
    budget_s: float = seconds(10.0)
    deploy_timeout_s: float = seconds(10.0)
    request_timeout_s: float = seconds(10.0)
    check_timeout_s: float | None = seconds(600.0, optional=True)
    allow_remote: bool = _fields.flag(False)
    name: str = _fields.name_field("rollback")
    rubric: int | None = _fields.rubric(7)

    def __attrs_post_init__(self) -> None:
        if self.known_good is not None and self.known_good == self.candidate:
            raise InvalidInput(
                f"'known_good' and 'candidate' must differ (both are {self.candidate!r})"
            )
        if self.n_warmup_requests + self.n_settle_requests > self.budget_requests:
            raise InvalidInput(
                f"'budget_requests' ({self.budget_requests}) must allow 'n_warmup_requests' + "
                f"'n_settle_requests' ({self.n_warmup_requests + self.n_settle_requests})"
            )
        for name in ("known_good_predictions", "candidate_predictions"):
            given = getattr(self, name)
            if isinstance(given, tuple) and len(given) != len(self.probe_inputs):
                raise InvalidInput(
                    f"'{name}' must have one entry per probe input ({len(self.probe_inputs)}) "
                    f"(got {len(given)})"
                )
        ensure_local(self.endpoint, "endpoint", allow_remote=self.allow_remote)

    # ------------------------------------------------------------------------- run

    def run(self, context: Context | None = None) -> Result:
        """Deploy and roll back ``n_repeats`` times; a bad rollback fails, never raises."""
        ctx = context if context is not None else Context()
        b = ResultBuilder.of(self)
        b.detail("candidate", self.candidate)
        original = self.deployment.live_version()
        known_good = self.known_good if self.known_good is not None else original
        if known_good is None or known_good == self.candidate:
            message = (
                "nothing is live and no known_good version was given, so there is nothing to "
                "roll back to"
                if known_good is None
                else f"the candidate {self.candidate!r} is already live; pass the version to "
                "roll back to as known_good=..."
            )
            b.note("known_good", Status.FAIL, message)
            _lead(b, "", self.candidate)
            return b.result()
        b.detail("known_good", known_good)
        repeats: list[Repeat] = []
        after: tuple[int, int, int] | None = None
        with (
            Deadline(self.check_timeout_s, self.name) as deadline,
            Session(
                self.endpoint,
                request_timeout_s=self.request_timeout_s,
                deployment=self.deployment,
                deadline=deadline,
            ) as session,
        ):
            try:
                if original != known_good:
                    session.set_live(known_good)
                probes = self.probe_inputs
                good_refs = given_references(
                    self.known_good_predictions, "known_good_predictions", probes, deadline
                )
                if good_refs is None:
                    good_refs = references(session, probes, known_good)
                cand_refs = given_references(
                    self.candidate_predictions, "candidate_predictions", probes, deadline
                )
                if cand_refs is None:
                    cand_refs = references(session, probes, self.candidate, required=False)
                who = Attribution(
                    known_good,
                    self.candidate,
                    good_refs,
                    cand_refs,
                    self.exact,
                    self.prediction_atol,
                    self.prediction_rtol,
                )
                if self.known_good_predictions is not None:
                    check_live_known_good(session, probes, who)
                for i in range(self.n_repeats):
                    ctx.report(f"rollback: repeat {i + 1} of {self.n_repeats}")
                    repeats.append(self._cycle(session, who))
                    if not repeats[-1].settled:
                        b.detail(
                            "stopped_early",
                            f"repeat {i + 1} never settled on version {known_good!r}; "
                            "further repeats would only repeat that",
                        )
                        break
                after = self._after(session, who, b)
            except StepFailed as failure:
                b.note(
                    failure.name,
                    Status.FAIL,
                    failure.message,
                    observed=failure.observed,
                    limit=failure.limit,
                )
            finally:
                restored = session.restore()
        if repeats:
            self._judge(b, repeats, known_good)
        if after is not None:
            self._judge_after(b, after, known_good)
        if "restored_live_version" in restored:
            b.detail("restored_live_version", restored["restored_live_version"])
        if "restore_error" in restored:
            b.note("restore", Status.FAIL, restored["restore_error"])
        return b.result(summary=self._summary(b, repeats, known_good))

    # ----------------------------------------------------------------- procedure

    def _set_live(self, session: Session, version: str, what: str) -> float:
        try:
            return session.set_live(version)
        except Exception as exc:
            raise StepFailed(
                what, f"set_live({version!r}) raised {type(exc).__name__}: {exc}"
            ) from exc

    def _cycle(self, session: Session, who: Attribution) -> Repeat:
        self._set_live(session, self.candidate, "deploy")
        self._confirm_candidate(session, who)
        generator = LoadGenerator(
            self.endpoint,
            self.probe_inputs,
            rate_per_s=self.request_rate,
            budget_requests=self.budget_requests,
            budget_s=self.budget_s,
            request_timeout_s=self.request_timeout_s,
            deadline=session.deadline,
        ).start()
        try:
            generator.wait_for(
                lambda records: len(records) >= self.n_warmup_requests, self.budget_s
            )
            session.deadline.check("waiting for the warm-up requests")
            t0 = time.perf_counter()
            command_s = self._set_live(session, who.known_good, "rollback")

            def settled(records: list[Record]) -> bool:
                run = 0
                for record in reversed(records):
                    if record.sent < t0:
                        break
                    if not who.tells_apart(record.response, record.index):
                        continue
                    if not who.is_good(record.response, record.index):
                        return False
                    run += 1
                    if run >= self.n_settle_requests:
                        return True
                return False

            is_settled = generator.wait_for(settled, self.budget_s)
            session.deadline.check("waiting for the rollback to settle")
        finally:
            generator.stop()
            records = generator.join(timeout_s=max(1.0, session.deadline.remaining()))
        return measure(records, t0, command_s, who, is_settled)

    def _confirm_candidate(self, session: Session, who: Attribution) -> None:
        deadline = time.perf_counter() + self.deploy_timeout_s
        last = ""
        while True:
            session.deadline.check(f"waiting for the candidate {self.candidate!r} to serve")
            live = self.deployment.live_version()
            if live == self.candidate:
                served = [session.send(p) for p in self.probe_inputs]
                if who.serves_candidate(served):
                    who.learn_candidate(served)
                    if not any(who.tells_apart(r, i) for i, r in enumerate(served)):
                        raise StepFailed(
                            "attribution",
                            f"the endpoint reports no version and the candidate "
                            f"{self.candidate!r} answers every probe exactly like version "
                            f"{who.known_good!r}, so no response can be attributed: choose "
                            "probe inputs on which the two versions differ",
                        )
                    return
                good = [who.reached_candidate(r, i) for i, r in enumerate(served)]
                bad = served[good.index(False)] if not all(good) else served[0]
                if bad.error:
                    last = f"live traffic still got {bad.error}"
                elif bad.version is not None:
                    last = f"live traffic still got outputs from version {bad.version!r}"
                else:
                    last = (
                        f"live traffic still got the outputs of version {who.known_good!r} "
                        "(the endpoint reports no version)"
                    )
            else:
                last = f"live_version() is {live!r}"
            if time.perf_counter() >= deadline:
                break
            time.sleep(0.005)
        timeout = fmt(self.deploy_timeout_s)
        raise StepFailed(
            "deploy",
            f"the candidate {self.candidate!r} was not serving live traffic {timeout} s after "
            f"set_live({self.candidate!r}): {last}",
            self.deploy_timeout_s,
            f"<= {timeout} s",
        )

    def _after(self, session: Session, who: Attribution, b: ResultBuilder) -> tuple[int, int, int]:
        """Live predictions after the last rollback: (matching, carrying candidate outputs, n)."""
        match = stale = 0
        examples: list[dict[str, Any]] = []
        for i, probe in enumerate(self.probe_inputs):
            response = session.send(probe)
            if who.is_good(response, i):
                match += 1
                continue
            is_candidate = who.carries_candidate_outputs(response, i)
            stale += is_candidate
            if len(examples) < 5:
                examples.append(
                    {
                        "probe": i,
                        "version": response.version,
                        "error": response.error,
                        "carries_candidate_outputs": is_candidate,
                    }
                )
        b.detail("mismatches_after_rollback", examples)
        return match, stale, len(self.probe_inputs)

    # ------------------------------------------------------------------- judging

    def _judge(self, b: ResultBuilder, repeats: Sequence[Repeat], known_good: str) -> None:
        b.detail("repeats", [r.row(i + 1) for i, r in enumerate(repeats)])
        shown = max(
            range(len(repeats)),
            key=lambda i: (repeats[i].failed, repeats[i].candidate_after, repeats[i].all_s),
        )
        b.detail("timeline", {"repeat": shown + 1, **repeats[shown].timeline})
        n = len(repeats)
        all_p50, all_p99 = quantiles([r.all_s for r in repeats])
        first_p50, first_p99 = quantiles([r.first_s for r in repeats])
        cmd_p50, cmd_p99 = quantiles([r.command_s for r in repeats])
        failed = [r.failed for r in repeats]
        n_requests = sum(r.requests for r in repeats)
        longest_gap = max(r.gap_s for r in repeats)
        b.update_metrics(
            {
                "rollback.p50_s": all_p50,
                "rollback.p99_s": all_p99,
                "first_response.p50_s": first_p50,
                "first_response.p99_s": first_p99,
                "command.p50_s": cmd_p50,
                "command.p99_s": cmd_p99,
                "n_failed_requests": max(failed),
                "n_failed_requests_total": sum(failed),
                "longest_gap_s": longest_gap,
                "n_requests": n_requests,
                "n_repeats": n,
            }
        )
        limit = held(self.max_rollback_s)
        stuck = [r for r in repeats if not math.isfinite(r.all_s)]
        if stuck:
            worst = max(stuck, key=lambda r: r.candidate_after)
            why = (
                f"{worst.candidate_after} responses after the command still carried the "
                f"outputs of the candidate {self.candidate!r}"
                if worst.candidate_after
                else "responses did not settle on the known-good outputs"
            )
            message = (
                f"in {len(stuck)} of {n} rollbacks live traffic never came only from version "
                f"{known_good!r} (observed for up to budget_s={fmt(self.budget_s)} s): {why}"
            )
        else:
            message = (
                f"after set_live({known_good!r}) every response came from version "
                f"{known_good!r} within p50 {_ms(all_p50)} / p99 {_ms(all_p99)} over {n} "
                f"rollbacks ({'within' if limit.holds(all_p99) else 'exceeding'} max_rollback_s "
                f"{fmt(limit.value)} s; first response from it after p50 "
                f"{_ms(first_p50)})"
            )
        b.judge("rollback_time", limit, all_p99, message=message, unit="s")
        worst_failed = max(failed)
        allowed = held(self.max_failed_requests)
        if allowed.holds(worst_failed):
            message = (
                f"{sum(failed)} of {n_requests} requests failed across {n} rollbacks under "
                f"load (at most {worst_failed} per rollback)"
            )
        else:
            worst_repeat = repeats[failed.index(worst_failed)]
            kinds = ", ".join(f"{v} {k}" for k, v in sorted(worst_repeat.errors.items()))
            message = (
                f"{worst_failed} requests failed during a rollback ({kinds}; per repeat: "
                f"{', '.join(map(str, failed))}), more than max_failed_requests "
                f"{fmt(allowed.value)}; e.g. {worst_repeat.first_error}"
            )
        b.judge("failed_requests", allowed, worst_failed, message=message)
        b.judge(
            "longest_gap_s",
            held_or_none(self.max_gap_s),
            longest_gap,
            context=" (the longest time without a successful response)",
            unit="s",
        )

    def _judge_after(self, b: ResultBuilder, after: tuple[int, int, int], known_good: str) -> None:
        match, stale, n = after
        how = (
            "bitwise"
            if self.exact
            else f"within prediction_atol={fmt(self.prediction_atol)}, "
            f"prediction_rtol={fmt(self.prediction_rtol)}"
        )
        if match == n:
            message = (
                f"after the rollback all {n} probe responses equal the known-good predictions "
                f"of version {known_good!r} ({how})"
            )
        else:
            cause = (
                f"; {stale} carry the outputs of the candidate {self.candidate!r} (a cache or "
                "replica still serves the candidate)"
                if stale
                else ""
            )
            message = (
                f"after the rollback {n - match} of {n} probe responses differ from the "
                f"known-good predictions of version {known_good!r} ({how}){cause}"
            )
        status = Status.PASS if match == n else Status.FAIL
        b.note(
            "predictions_after_rollback",
            status,
            message,
            observed=n - match,
            limit="== 0 mismatches",
        )

    def _summary(self, b: ResultBuilder, repeats: Sequence[Repeat], good: str) -> str | None:
        _lead(b, good, self.candidate)
        bad = [f for f in b.findings if f.status >= Status.FAIL]
        if bad:
            more = f" (and {plural(len(bad) - 1, 'more failed condition')})" if len(bad) > 1 else ""
            return bad[0].message + more
        if b.status is not Status.PASS or not repeats:
            return None
        failed = sum(r.failed for r in repeats)
        worst = max(r.all_s for r in repeats)
        return (
            f"Rolled back to version {good!r} {plural(len(repeats), 'time')} under load with "
            f"{failed} failed requests; every response came from {good!r} within {_ms(worst)} "
            "of the command in the slowest rollback."
        )


def _lead(b: ResultBuilder, good: str, candidate: str) -> None:
    """Open each failing finding with a plain sentence: what went wrong in the rollback."""
    stuck = not math.isfinite(b.metrics.get("rollback.p99_s", 0.0))
    for name, sentence in {
        "known_good": "There is no earlier version to roll back to",
        "deploy": "The candidate never went live, so no rollback could be tried",
        "attribution": "The check cannot tell the two versions' answers apart",
        "references": f"The predictions of version {good!r} could not be recorded",
        "rollback_time": f"After the rollback, live traffic kept getting answers from the "
        f"candidate {candidate!r}"
        if stuck
        else f"Rolling back to version {good!r} took longer than allowed",
        "failed_requests": f"Requests failed while rolling back to version {good!r}",
        "longest_gap_s": "Live traffic went unanswered for too long during a rollback",
        "predictions_after_rollback": f"After the rollback, the service does not answer like "
        f"version {good!r}",
        "restore": "The check could not put the deployment back as it was",
    }.items():
        b.lead(name, sentence)


def _ms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    return f"{fmt(seconds * 1e3, 3)} ms"
