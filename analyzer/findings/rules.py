"""The pitfall rules: what a reviewer should look at in the mined flows, with evidence.

Every rule is one function returning findings; :func:`find_findings` runs them all. Rule ids are
stable (reports and ``--fail-on`` key on them): ``hidden-orchestration``,
``overloaded-orchestrator``, ``duplicated-flow``, ``missing-idempotency``,
``uncompensated-failure``, ``missing-trace-context``, ``unbounded-wait`` and the hint
``workflow-description``.

Rules about flows look at claimed flows only (enough evidence, no mixed entry); rules about a
coordinating service only at orchestrators. A rule that can count its cases says how often the
problem showed, and its severity follows that count (:mod:`orchscan.analyzer.findings.severity`).
One problem at one place is one finding, with its count and examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from orchscan.analyzer.findings.severity import weigh
from orchscan.analyzer.flows.duplicates import group_copies
from orchscan.analyzer.flows.failures import is_timeout, is_write, with_step_indices
from orchscan.analyzer.flows.handoffs import SpecIndex
from orchscan.analyzer.flows.steps import StepCalls
from orchscan.analyzer.requests.calls import SYNC, CallTables
from orchscan.analyzer.results import EvidenceCounts, Finding, Flow, ServiceRole, Step, Uncompensated
from orchscan.analyzer.specs.operations import operation_of
from orchscan.analyzer.thresholds import DEFAULT_CALL_THRESHOLDS, DEFAULT_FLOW_THRESHOLDS, FlowThresholds

_MS = 1_000_000
RULES = (
    "hidden-orchestration",
    "overloaded-orchestrator",
    "duplicated-flow",
    "missing-idempotency",
    "uncompensated-failure",
    "missing-trace-context",
    "unbounded-wait",
    "workflow-description",
    "cross-team-orchestration",
)


def find_findings(
    flows: Sequence[Flow],
    steps: StepCalls,
    context: TraceContextEvidence,
    *,
    roles: Sequence[ServiceRole] = (),
    specs: SpecIndex | None = None,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
    tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms,
) -> tuple[Finding, ...]:
    """Run every pitfall rule over the claimed ``flows``; findings sorted most severe first."""
    found = [
        *hidden_orchestration(flows, roles),
        *overloaded_orchestrator(flows, steps, roles=roles, thresholds=thresholds),
        *duplicated_flow(flows, thresholds=thresholds),
        *missing_idempotency(flows, steps, specs=specs, thresholds=thresholds),
        *uncompensated_failure(flows, thresholds=thresholds),
        *missing_trace_context(context, thresholds=thresholds),
        *unbounded_wait(flows, steps, thresholds=thresholds, tolerance_ms=tolerance_ms),
        *workflow_description(flows, thresholds=thresholds),
    ]
    return tuple(sorted(found, key=Finding.sort_key))


def _label(step: Step) -> str:
    return f"step {step.index} ({step.operation.service} {step.operation.key})"


def hidden_orchestration(flows: Sequence[Flow], roles: Sequence[ServiceRole]) -> list[Finding]:
    """A business service that also holds the control of flows: the orchestration is hidden in it."""
    out = []
    for role in roles:
        owned = sorted(
            (f for f in flows if f.owner == role.name and f.steps), key=lambda f: (-f.requests, f.id)
        )
        if not role.hidden or not owned:
            continue
        main = owned[0]
        out.append(
            Finding(
                rule="hidden-orchestration",
                severity="medium",
                service=role.name,
                flow=main.id,
                message=(
                    f"{role.name} is a business service that also coordinates {len(owned)} flow(s); "
                    f"its main flow {main.entry.key} drives {len(main.steps)} steps across "
                    f"{len({s.operation.service for s in main.steps})} services"
                ),
                evidence=(
                    *role.evidence,
                    *(f"flow {f.id}: {f.requests} requests, {len(f.steps)} steps" for f in owned),
                ),
                recommendation=(
                    "Make the orchestration explicit: describe the flow as a workflow (see the Arazzo "
                    "draft) or move it into a dedicated orchestrator, so the business service keeps only "
                    "its own work."
                ),
                example_traces=main.example_traces,
            )
        )
    return out


def overloaded_orchestrator(
    flows: Sequence[Flow],
    steps: StepCalls,
    *,
    roles: Sequence[ServiceRole] = (),
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
) -> list[Finding]:
    """An orchestrator whose requests also do heavy work of their own (queries, computation).

    One finding per orchestrator, naming every flow of it that is overloaded.
    """
    orchestrators = {role.name for role in roles if role.role == "orchestrator"}
    requests = steps.requests
    duration = (requests["end_ns"] - requests["start_ns"]).clip(lower=1)
    load = (
        pd.DataFrame(
            {
                "flow_id": requests["flow_id"],
                "db": requests["infra_calls"],
                "self": 1 - requests["busy_ns"] / duration,
            }
        )
        .groupby("flow_id")
        .agg(db=("db", "mean"), self_share=("self", "median"))
    )
    overloaded: dict[str, list[tuple[Flow, float, float]]] = {}
    for flow in flows:
        if flow.owner not in orchestrators or len(flow.steps) < 2 or flow.id not in load.index:
            continue
        db, share = float(load.loc[flow.id, "db"]), float(load.loc[flow.id, "self_share"])
        if db >= thresholds.overloaded_db_calls and share >= thresholds.overloaded_self_time_share:
            overloaded.setdefault(flow.owner, []).append((flow, db, share))
    out = []
    for owner, found in sorted(overloaded.items()):
        found.sort(key=lambda item: (-item[0].requests, item[0].id))
        main, db, share = found[0]
        out.append(
            Finding(
                rule="overloaded-orchestrator",
                severity="medium",
                service=owner,
                flow=main.id,
                message=(
                    f"{owner} coordinates {len(main.steps)} steps in {main.entry.key} and also makes "
                    f"{db:.1f} database calls per request, spending {share:.0%} of the request outside "
                    "downstream calls"
                    + (f" ({len(found)} of its flows are loaded so)" if len(found) > 1 else "")
                ),
                evidence=(
                    *(
                        f"{flow.id}: {flow.requests} requests; mean database calls per request {db:.1f}, "
                        f"median self-time share {share:.0%}"
                        for flow, db, share in found
                    ),
                    f"thresholds: {thresholds.overloaded_db_calls:g} database calls per request and "
                    f"{thresholds.overloaded_self_time_share:.0%} self time",
                ),
                recommendation=(
                    "Separate coordination from business logic: keep the flow's control in one place "
                    "and move "
                    "the data work behind its own service or step."
                ),
                example_traces=main.example_traces,
            )
        )
    return out


def duplicated_flow(
    flows: Sequence[Flow], *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> list[Finding]:
    """The same flow driven by several owners: one finding per copy of the most used one, with its drift."""
    out = []
    for group in group_copies(flows, thresholds=thresholds):
        original = max(group, key=lambda f: (f.requests, f.id))
        drift = {(d.owner, d.entry.key): d.differences for d in original.duplicates}
        for copy in group:
            if copy.id == original.id:
                continue
            differences = drift.get((copy.owner, copy.entry.key), ())
            what = "a drifted copy" if differences else "a copy"
            out.append(
                Finding(
                    rule="duplicated-flow",
                    severity="medium",
                    service=copy.owner,
                    flow=copy.id,
                    message=(
                        f"{copy.owner} {copy.entry.key} is {what} of the flow behind {original.owner} "
                        f"{original.entry.key}" + (": " + "; ".join(differences) if differences else "")
                    ),
                    evidence=(
                        f"{original.id}: {original.requests} requests, steps "
                        + ", ".join(f"{s.operation.service} {s.operation.key}" for s in original.steps),
                        f"{copy.id}: {copy.requests} requests, steps "
                        + ", ".join(f"{s.operation.service} {s.operation.key}" for s in copy.steps),
                        *differences,
                    ),
                    recommendation=(
                        f"Keep one implementation of the flow and let {copy.owner} call it "
                        "(or share one workflow "
                        "description), so ordering and failure handling cannot drift apart."
                    ),
                    example_traces=copy.example_traces,
                    subject=copy.id,
                )
            )
    return out


def missing_idempotency(
    flows: Sequence[Flow],
    steps: StepCalls,
    *,
    specs: SpecIndex | None = None,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
) -> list[Finding]:
    """A write step that is retried without an idempotency key: a retry may apply it twice.

    Counted over the requests that retried the step: how many sent no key on every attempt.
    """
    # Operations for which some caller's key was recorded: header capture works there, so a
    # missing key on other callers' attempts is real.
    keyed = set(steps.calls["step"][steps.calls["idempotency_key"]])
    calls = with_step_indices(steps, flows)
    written = calls[["flow_id", "step_index"]][is_write(calls)].groupby("flow_id")["step_index"].unique()
    out = []
    for flow in flows:
        writes = set(written.get(flow.id, ()))
        for step in flow.steps:
            policy = step.retries
            method = (step.operation.method or "").upper()
            # PUT and DELETE are idempotent by definition; POST, PATCH and RPC writes are not.
            if policy is None or step.index not in writes or method in ("PUT", "DELETE"):
                continue
            documented = (
                operation_of(step.operation, specs.get(step.operation.service, ())) if specs else None
            )
            declared = documented.idempotency_header if documented is not None else None
            # A declared header may simply not be captured by the instrumentation; only trust its
            # absence where other callers' keys were recorded.
            captured = f"{step.operation.service} {step.operation.key}" in keyed
            counts = EvidenceCounts(
                affected=policy.requests_with_retries - policy.keyed_requests,
                cases=policy.requests_with_retries,
            )
            if policy.idempotency_key or counts.affected == 0 or (declared and not captured):
                continue
            severity, why = weigh(counts, severity="high", thresholds=thresholds)
            out.append(
                Finding(
                    rule="missing-idempotency",
                    severity=severity,
                    service=flow.owner,
                    flow=flow.id,
                    message=(
                        f"{flow.owner} retries {_label(step)}, a write, without an idempotency key in "
                        f"{counts.affected} of {counts.cases} retrying requests: a retry after a lost "
                        "response can apply it twice"
                    ),
                    evidence=(
                        f"{policy.requests_with_retries} requests retried it, "
                        f"up to {policy.max_attempts} attempts"
                        + (
                            f", after status {', '.join(map(str, policy.status_codes))}"
                            if policy.status_codes
                            else ""
                        ),
                        f"{counts.affected} of them sent no Idempotency-Key header on every attempt"
                        + (
                            f", although the API declares {declared} and other callers send it"
                            if declared
                            else ", and the API description declares none"
                        ),
                        f"severity {severity}: {why}",
                    ),
                    recommendation=(
                        f"Send an Idempotency-Key header with {step.operation.key} and have "
                        f"{step.operation.service} deduplicate on it, or stop retrying the write."
                    ),
                    example_traces=flow.example_traces,
                    subject=f"{flow.id} > {step.operation.service} {step.operation.key}",
                    counts=counts,
                )
            )
    return out


def uncompensated_failure(
    flows: Sequence[Flow], *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> list[Finding]:
    """A failed later step leaves the side effects of earlier steps in place.

    One finding per flow and failed step, counted over the failures of that step after earlier
    writes: requests that left different subsets of the earlier steps in place are summed, every
    step any of them left is named, and those compensated are said too.
    """
    out = []
    for flow in flows:
        by_index = {s.index: s for s in flow.steps}
        by_failed: dict[int, list[Uncompensated]] = {}
        for gap in flow.failure.uncompensated:
            by_failed.setdefault(gap.failed_step, []).append(gap)
        for failed_index, gaps in sorted(by_failed.items()):
            failed = by_index.get(failed_index)
            left = [by_index[i] for i in sorted({i for g in gaps for i in g.left_in_place}) if i in by_index]
            if failed is None or not left:
                continue
            holed = sum(g.holes for g in gaps)
            # Holes explain a case only where they are the exception in the flow.
            exceptional = flow.holes <= thresholds.holes_explain_max_share * flow.requests
            counts = EvidenceCounts(
                affected=sum(g.requests for g in gaps),
                cases=max(g.failures for g in gaps),
                explained=holed if exceptional else 0,
            )
            severity, why = weigh(counts, severity="high", thresholds=thresholds)
            compensated = counts.cases - counts.affected
            left_names = ", ".join(_label(s) for s in left)
            out.append(
                Finding(
                    rule="uncompensated-failure",
                    severity=severity,
                    service=flow.owner,
                    flow=flow.id,
                    message=(
                        f"When {_label(failed)} fails, {flow.owner} leaves {left_names} in place: "
                        f"{counts.affected} of {counts.cases} such failures "
                        f"{'was' if counts.affected == 1 else 'were'} not compensated"
                    ),
                    evidence=(
                        f"{counts.affected} of {counts.cases} failures of step {failed.index} left "
                        f"{_steps_named(left)} in place; "
                        + (
                            "none was compensated"
                            if compensated == 0
                            else f"{compensated} {'was' if compensated == 1 else 'were'} compensated"
                        ),
                        *(
                            (
                                f"{holed} of the {counts.affected} traces lost spans (a span's parent is "
                                "missing): their compensation may have been lost with them"
                                + (
                                    ""
                                    if exceptional
                                    else f"; but {flow.holes} of the flow's {flow.requests} requests lost "
                                    "spans, so holes explain nothing here"
                                ),
                            )
                            if holed
                            else ()
                        ),
                        f"severity {severity}: {why}",
                    ),
                    recommendation=(
                        "Undo the earlier steps when a later one fails (cancel / release / refund), "
                        "or make the flow resumable; describe the compensation in the workflow."
                    ),
                    example_traces=tuple(sorted({t for g in gaps for t in g.example_traces}))[:5],
                    subject=f"{flow.id} > {failed.operation.service} {failed.operation.key}",
                    counts=counts,
                )
            )
    return out


def _steps_named(steps: Sequence[Step]) -> str:
    """``step 1`` or ``steps 1 and 2``."""
    numbers = [str(s.index) for s in steps]
    if len(numbers) == 1:
        return f"step {numbers[0]}"
    return f"steps {', '.join(numbers[:-1])} and {numbers[-1]}"


@dataclass(frozen=True)
class TraceContextEvidence:
    """What one partition shows of broken trace propagation; partials merge by concatenation.

    ``orphans``: requests that start with a client or producer span at the very root (their
    service lost the context of the request it was serving), with the ``callees`` they called;
    ``hosts``: every served request (server or consumer) an orphan may have been sent from;
    ``roots``: root server spans (a callee that got no context), with their ``server_address``;
    ``sent``: synchronous calls no callee span answered, which an orphan root may have
    received; ``unanswered``: how many such calls each caller made. ``hosts`` and ``sent`` are
    large: :meth:`relevant` keeps only what the orphans and roots of the whole landscape need.
    """

    orphans: pd.DataFrame
    hosts: pd.DataFrame
    roots: pd.DataFrame
    sent: pd.DataFrame
    unanswered: pd.DataFrame

    @classmethod
    def of(cls, tables: CallTables) -> TraceContextEvidence:
        """The evidence in one partition's calls."""
        requests, calls = tables.requests, tables.calls
        timing = ["service", "trace_id", "start_ns", "end_ns"]
        orphan = requests["root"] & requests["kind"].isin(("client", "producer"))
        orphans = requests.loc[orphan, ["row", *timing]]
        made = calls.loc[calls["entry_row"].isin(orphans["row"]), ["entry_row", "callee"]]
        callees = made.groupby("entry_row")["callee"].agg(lambda names: tuple(sorted(set(map(str, names)))))
        orphans = orphans.assign(callees=callees.reindex(orphans["row"]).to_numpy()).drop(columns="row")
        roots = requests[requests["root"] & (requests["kind"] == "server")]
        address = tables.spans["server_address"].to_numpy()[roots["row"].to_numpy()]
        sent = calls[(calls["callee_row"] < 0) & (calls["kind"] == SYNC)]
        # Hosts, roots and sent calls keep their Arrow-backed text: most of them are dropped by
        # :meth:`relevant`, which spells out only what it keeps.
        return cls(
            orphans=_plain(orphans),
            hosts=requests.loc[
                requests["kind"].isin(("server", "consumer")), [*timing, "operation"]
            ].reset_index(drop=True),
            roots=roots[[*timing, "span_id"]].assign(server_address=address).reset_index(drop=True),
            sent=sent[["caller", "callee", "trace_id", "start_ns", "end_ns"]].reset_index(drop=True),
            unanswered=sent.groupby("caller", as_index=False).size().rename(columns={"size": "calls"}),
        )

    @classmethod
    def merge(cls, parts: Sequence[TraceContextEvidence]) -> TraceContextEvidence:
        """The evidence of the union of the partitions ``parts`` came from."""

        def joined(name: str) -> pd.DataFrame:
            return _plain(pd.concat([getattr(part, name) for part in parts], ignore_index=True))

        unanswered = joined("unanswered").groupby("caller", as_index=False)["calls"].sum()
        return cls(joined("orphans"), joined("hosts"), joined("roots"), joined("sent"), unanswered)

    def relevant(
        self, orphan_services: frozenset[str], root_keys: frozenset[str], sent_callees: frozenset[str]
    ) -> TraceContextEvidence:
        """Only the hosts, roots and sent calls the landscape's orphans, roots and unanswered calls
        can be matched with: a root span is matched with a sent call by the name it answers to,
        and every trace has a root (they are a tenth of the selected records otherwise)."""
        callees = list(sent_callees)
        reachable = self.roots["service"].isin(callees) | self.roots["server_address"].isin(callees)
        return TraceContextEvidence(
            self.orphans,
            _plain(self.hosts[self.hosts["service"].isin(list(orphan_services))]),
            _plain(self.roots[reachable.to_numpy()]),
            _plain(self.sent[self.sent["callee"].isin(list(root_keys))]),
            self.unanswered,
        )

    def orphan_services(self) -> frozenset[str]:
        """Services with orphan requests: whose hosts :meth:`relevant` keeps."""
        return frozenset(map(str, self.orphans["service"]))

    def sent_callees(self) -> frozenset[str]:
        """Names unanswered calls were sent to: the roots :meth:`relevant` keeps answer to one."""
        return frozenset(map(str, self.sent["callee"].dropna()))

    def root_keys(self) -> frozenset[str]:
        """Names a root server span answers to: whose sent calls :meth:`relevant` keeps."""
        names = pd.concat([self.roots["service"], self.roots["server_address"]]).dropna()
        return frozenset(map(str, names))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings, so that frames of several partitions concatenate."""
    return frame.reset_index(drop=True).astype(
        {c: object for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])}
    )


def missing_trace_context(
    evidence: TraceContextEvidence, *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> list[Finding]:
    """Broken propagation, seen from either end: a caller whose calls start new traces, or a callee
    whose root spans nest inside another service's unanswered client span."""
    return [*_lost_outgoing_context(evidence, thresholds), *_orphan_callees(evidence, thresholds)]


def _lost_outgoing_context(evidence: TraceContextEvidence, thresholds: FlowThresholds) -> list[Finding]:
    """Root client spans of a service that nest in time inside one of its own requests (another trace)."""
    # Plain text either way: evidence straight from one partition keeps Arrow-backed columns.
    orphans, hosts = evidence.orphans, _plain(evidence.hosts)
    if orphans.empty or hosts.empty:
        return []
    tolerance = int(thresholds.orphan_tolerance_ms * _MS)
    left = orphans.assign(probe=orphans["start_ns"] + tolerance).sort_values(["probe", "trace_id"])
    right = (
        hosts.rename(columns={"trace_id": "host_trace", "start_ns": "host_start", "end_ns": "host_end"})
        .sort_values(["host_start", "host_trace"])
        .reset_index(drop=True)
    )
    # Concurrent requests overlap: the latest one to start need not be the one still running, so
    # compare with the latest end of all requests started so far.
    right["host_end"] = right.groupby("service", sort=False)["host_end"].cummax()
    matched = pd.merge_asof(
        left, right, left_on="probe", right_on="host_start", by="service", direction="backward"
    )
    matched = matched.dropna(subset=["host_start"])
    matched = matched[matched["end_ns"] <= matched["host_end"] + tolerance]
    roots = orphans.groupby("service").size()
    out = []
    for service, group in matched.groupby("service", sort=True):
        callees = sorted({str(name) for names in group["callees"].dropna() for name in names})
        entries = sorted(set(group["operation"].astype(str)))
        counts = EvidenceCounts(affected=len(group), cases=int(roots[service]))
        severity, why = weigh(counts, severity="medium", thresholds=thresholds)
        out.append(
            Finding(
                rule="missing-trace-context",
                severity=severity,
                service=str(service),
                flow=None,
                message=(
                    f"{service}'s outgoing calls start new traces: {len(group)} calls made while serving "
                    f"{', '.join(entries)} lost the trace context, so a failed transaction cannot be followed"
                ),
                evidence=(
                    f"{counts.affected} of {counts.cases} root client spans of {service} fall inside its own "
                    f"requests ({', '.join(entries)}) recorded in other traces",
                    f"services called without context: {', '.join(callees) if callees else 'none recorded'}",
                    f"severity {severity}: {why}",
                ),
                recommendation=(
                    f"Carry the context into {service}'s worker threads or tasks (e.g. copy the context into "
                    "the executor, or use the instrumentation's context-propagating executor)."
                ),
                example_traces=tuple(sorted(set(group["trace_id"]) | set(group["host_trace"])))[
                    : thresholds.example_traces
                ],
                subject="outgoing calls",
                counts=counts,
            )
        )
    return out


def _orphan_callees(evidence: TraceContextEvidence, thresholds: FlowThresholds) -> list[Finding]:
    """Root server spans that nest inside another service's client span that got no child."""
    sent, roots = _plain(evidence.sent), _plain(evidence.roots)
    if sent.empty or roots.empty:
        return []
    keyed = pd.concat(
        [
            roots.assign(key=roots["service"]),
            roots.assign(key=roots["server_address"]).dropna(subset=["key"]),
        ],
        ignore_index=True,
    )
    tolerance = int(thresholds.orphan_tolerance_ms * _MS)
    left = keyed.assign(probe=keyed["start_ns"] + tolerance).sort_values(["probe", "trace_id"])
    right = (
        sent.rename(
            columns={
                "callee": "key",
                "trace_id": "client_trace",
                "start_ns": "client_start",
                "end_ns": "client_end",
            }
        )
        .sort_values(["client_start", "client_trace"])
        .reset_index(drop=True)
    )
    right["client_end"] = right.groupby("key", sort=False)["client_end"].cummax()
    matched = pd.merge_asof(
        left, right, left_on="probe", right_on="client_start", by="key", direction="backward"
    )
    matched = matched.dropna(subset=["client_start"])
    nested = (matched["end_ns"] <= matched["client_end"] + tolerance) & (
        matched["caller"] != matched["service"]
    )
    matched = matched[nested].drop_duplicates(["trace_id", "span_id"])
    unanswered = evidence.unanswered.set_index("caller")["calls"]
    sent_to = sent.groupby(["caller", "callee"]).size()
    out = []
    for (caller, callee), group in matched.groupby(["caller", "service"], sort=True):
        calls = sum(int(sent_to.get((caller, key), 0)) for key in group["key"].unique())
        counts = EvidenceCounts(affected=len(group), cases=max(calls, len(group)))
        severity, why = weigh(counts, severity="medium", thresholds=thresholds)
        out.append(
            Finding(
                rule="missing-trace-context",
                severity=severity,
                service=str(caller),
                flow=None,
                message=(
                    f"{caller}'s calls to {callee} do not carry the trace context: {callee}'s spans start "
                    f"new traces, so a failed transaction cannot be followed across the two"
                ),
                evidence=(
                    f"{counts.affected} root server spans of {callee} nest in time inside {caller} client "
                    f"spans to {callee} that got no child span ({counts.cases} such calls)",
                    f"{int(unanswered.get(caller, 0))} outgoing calls of {caller} without a traced callee "
                    "in total",
                    f"severity {severity}: {why}",
                ),
                recommendation=(
                    f"Propagate the W3C traceparent header from {caller} (instrument its HTTP client) "
                    "and accept "
                    f"it in {callee}."
                ),
                example_traces=tuple(sorted(set(group["client_trace"]) | set(group["trace_id"])))[
                    : thresholds.example_traces
                ],
                subject=f"calls to {callee}",
                counts=counts,
            )
        )
    return out


def unbounded_wait(
    flows: Sequence[Flow],
    steps: StepCalls,
    *,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
    tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms,
) -> list[Finding]:
    """A step that takes, or waits, minutes with no observed upper bound (no timeout ever fired).

    Raised when the step's p95 hold reaches the limit; counted over the requests that reached it.
    """
    limit_ns = thresholds.long_running_s * 1e9
    tolerance = int(tolerance_ms * _MS)
    calls = with_step_indices(steps, flows)
    calls = calls.assign(timeout=is_timeout(calls, tolerance))
    # A step repeated in a loop (polling) waits from its first call to its last one.
    per_request = calls.groupby(["flow_id", "step_index", "entry_row"], sort=False).agg(
        start=("start_ns", "min"),
        end=("end_ns", "max"),
        gap=("gap_ns", "first"),
        timeouts=("timeout", "sum"),
    )
    per_request["duration"] = per_request["end"] - per_request["start"]
    # The flow is held at a step from the moment the previous step ended (the wait before it)
    # until its last call returned: a polling loop spreads that over a gap and many short calls.
    per_request["held"] = per_request["duration"] + per_request["gap"].fillna(0).clip(lower=0)
    per_request["long"] = per_request["held"] >= limit_ns
    # A step at which no request was held that long cannot reach the limit at its p95: its
    # quantiles are not worked out.
    reaching = per_request["long"].groupby(level=["flow_id", "step_index"], sort=False).transform("any")
    per_request = per_request[reaching.to_numpy()]
    by_step = per_request.groupby(level=["flow_id", "step_index"])
    per_step = (
        by_step[["duration", "gap", "held"]]
        .quantile(0.95)
        .join(by_step["timeouts"].sum())
        .join(by_step["long"].agg(["sum", "size"]))
    )
    long_waits = per_step[(per_step["held"] >= limit_ns) & (per_step["timeouts"] == 0)]
    waiting_flows = set(long_waits.index.get_level_values("flow_id"))
    out = []
    for flow in flows:
        if flow.id not in waiting_flows:
            continue
        waits = long_waits.xs(flow.id, level="flow_id")
        by_index = {s.index: s for s in flow.steps}
        for index, row in waits.iterrows():
            step = by_index.get(int(index))
            if step is None:
                continue
            counts = EvidenceCounts(affected=int(row["sum"]), cases=int(row["size"]))
            severity, why = weigh(counts, severity="medium", thresholds=thresholds)
            out.append(
                Finding(
                    rule="unbounded-wait",
                    severity=severity,
                    service=flow.owner,
                    flow=flow.id,
                    message=(
                        f"the flow is held {row['held'] / 1e9:.0f} s (p95) at {_label(step)} and no timeout "
                        "was ever observed: nothing bounds how long the flow may hang"
                    ),
                    evidence=(
                        f"{counts.affected} of {counts.cases} requests that reached the step were held "
                        f"{thresholds.long_running_s:g} s or longer",
                        f"p95 wait before the step {row['gap'] / 1e9:.1f} s, "
                        f"p95 from its first call to its last answer {row['duration'] / 1e9:.1f} s "
                        f"(threshold {thresholds.long_running_s:g} s)",
                        "no call of this step ended in a timeout",
                        f"severity {severity}: {why}",
                    ),
                    recommendation=(
                        "Set an explicit timeout or deadline on the step and decide what the flow does "
                        "when it fires; for genuinely long work use an asynchronous workflow with a "
                        "durable state."
                    ),
                    example_traces=flow.example_traces,
                    subject=f"{flow.id} > {step.operation.service} {step.operation.key}",
                    counts=counts,
                )
            )
    return out


def workflow_description(
    flows: Sequence[Flow], *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> list[Finding]:
    """Three or more steps passing data along: an explicit workflow description pays off."""
    out = []
    for flow in flows:
        linked = {h.to_step for h in flow.handoffs if h.from_step > 0} | {
            h.from_step for h in flow.handoffs if h.from_step > 0
        }
        if len(linked) < thresholds.workflow_min_steps:
            continue
        out.append(
            Finding(
                rule="workflow-description",
                severity="info",
                service=flow.owner,
                flow=flow.id,
                message=(
                    f"{flow.entry.key} chains {len(linked)} steps that pass data to each other: an explicit "
                    "workflow description would document and test this flow"
                ),
                evidence=tuple(
                    f"step {h.from_step} {h.output} -> step {h.to_step} {h.parameter} ({h.location})"
                    for h in flow.handoffs
                    if h.from_step > 0
                ),
                recommendation="Adopt the drafted Arazzo workflow as the flow's reviewed description.",
                example_traces=flow.example_traces,
                subject=flow.id,
            )
        )
    return out
