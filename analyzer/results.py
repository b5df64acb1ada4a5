"""The analysis results: small frozen dataclasses every report renders, and the whole result.

They are the contract between the analyzer and the reports. Tuples, not lists, so results are
hashable and cannot be changed after the fact; every collection is sorted in a stable order
(documented per field) so that output is deterministic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date

#: Service roles, most specific first.
ROLES = ("orchestrator", "gateway", "composer", "choreography", "service", "infrastructure", "external")

#: Finding severities, most severe first.
SEVERITIES = ("critical", "high", "medium", "low", "info")

#: Flow kinds: one service calls the steps in turn, or services react to each other's messages.
FLOW_KINDS = ("orchestrated", "choreographed")

#: Step kinds: a synchronous call, or a message delivered to a consumer (or published unconsumed).
STEP_KINDS = ("call", "message")

#: Where a service's team was read from, strongest first.
TEAM_SOURCES = ("owners-file", "service.namespace", "k8s.namespace.name")


@dataclass(frozen=True, order=True)
class OperationRef:
    """One operation of one service, as observed and (when a spec matched) as documented.

    ``key`` is the readable operation name used everywhere for grouping: ``METHOD /route``,
    ``Service/Method`` for RPC, or the span name. ``operation_id`` is the OpenAPI operationId
    when a spec matched (``operation_id_inferred`` when orchscan synthesised it).
    """

    service: str
    key: str
    method: str | None = None
    route: str | None = None
    operation_id: str | None = None
    operation_id_inferred: bool = False


@dataclass(frozen=True)
class Edge:
    """Calls from one service to another, aggregated over the whole input.

    ``kind`` is ``sync``, ``messaging`` or ``infrastructure``. Latencies are the caller's view
    (client span) in milliseconds. ``example_traces``: up to five trace ids, sorted.
    """

    caller: str
    callee: str
    kind: str
    calls: int
    errors: int
    p50_ms: float
    p95_ms: float
    example_traces: tuple[str, ...]

    @property
    def error_rate(self) -> float:
        """Share of calls that failed."""
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class ServiceRole:
    """What one service does in the landscape, with the evidence behind the verdict.

    ``role`` is one of :data:`ROLES`; ``hidden`` is true for an orchestrator that also does its
    own business work (database access, significant self time). ``fan_out``/``fan_in`` count
    distinct services called / calling (synchronous and messaging, infrastructure excluded).
    ``score`` ranks how conspicuously many others the service coordinates (robust z-score over
    the landscape; higher is more conspicuous). ``evidence`` holds plain-language sentences.
    """

    name: str
    role: str
    hidden: bool
    fan_out: int
    fan_in: int
    requests: int
    score: float
    evidence: tuple[str, ...]
    example_traces: tuple[str, ...]
    error_rate: float = 0.0
    calls_per_request: float = 0.0
    distinct_callees_per_request: float = 0.0
    parallel_share: float = 0.0
    write_share: float = 0.0
    db_calls_per_request: float = 0.0
    self_time_share: float = 0.0
    operations: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetryPolicy:
    """Retries observed for one step: the same call repeated after a failure within a request.

    ``idempotency_key``: every attempt carried one; ``keyed_requests``: requests whose every
    attempt did.
    """

    requests_with_retries: int
    max_attempts: int
    status_codes: tuple[int, ...]
    median_delay_ms: float
    idempotency_key: bool
    keyed_requests: int = 0


@dataclass(frozen=True)
class Step:
    """One step of a flow: a call the owner makes to another service's operation.

    ``index`` is the 1-based position in the main flow. Steps that overlap in time share a
    ``parallel_group`` number (None when the step runs alone). ``optional`` steps appear in only
    some variants; ``support`` is the share of the flow's requests that contain the step.
    ``repeats`` is the median number of times a request calls the step (a loop or fan-out over
    items, retries not counted); ``parallel_group`` is also set when those repeats overlap.
    ``kind`` is ``call`` or ``message`` (:data:`STEP_KINDS`): a message step is the delivery of
    ``topic`` to the consumer ``operation.service`` (or, when nobody consumed it, its publication
    to the broker named there). ``caller`` is the service that made the call or published the
    message; None means the flow's owner.
    """

    index: int
    operation: OperationRef
    parallel_group: int | None
    optional: bool
    support: float
    retries: RetryPolicy | None = None
    p50_ms: float = 0.0
    repeats: int = 1
    kind: str = "call"
    topic: str | None = None
    caller: str | None = None


@dataclass(frozen=True)
class Handoff:
    """Data passed from an earlier step's output to a later step's input.

    ``from_step`` 0 means the flow's own input (the entry request). ``location`` is ``path``,
    ``query``, ``header``, ``cookie`` or ``body``. ``confidence`` is in [0, 1]; ``evidence``
    says how it was inferred (schema names, values seen in traces).
    """

    from_step: int
    output: str
    to_step: int
    parameter: str
    location: str
    confidence: float
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Compensation:
    """A call (or, with ``topic``, a message) after a failed step that undoes an earlier step.

    ``undone_step`` 0 means the flow's own entry request (its owner's work).
    """

    failed_step: int
    undone_step: int
    operation: OperationRef
    requests: int
    topic: str | None = None


@dataclass(frozen=True)
class Uncompensated:
    """A failure after which earlier side effects were left in place.

    ``requests`` left exactly ``left_in_place`` in place when ``failed_step`` failed;
    ``failures`` counts every failure of that step after earlier writes (compensated or not);
    ``holes`` how many of ``requests`` are in traces that lost spans.
    """

    failed_step: int
    left_in_place: tuple[int, ...]
    requests: int
    example_traces: tuple[str, ...]
    failures: int = 0
    holes: int = 0


@dataclass(frozen=True)
class FailureLogic:
    """How the flow behaves when a step fails.

    ``failed_steps`` pairs each step index with the number of requests (chains, for a
    choreographed flow) that first failed there, by index.
    """

    retries: tuple[tuple[int, RetryPolicy], ...] = ()
    compensations: tuple[Compensation, ...] = ()
    uncompensated: tuple[Uncompensated, ...] = ()
    timeouts: tuple[str, ...] = ()
    failure_statuses: tuple[int, ...] = ()
    failed_steps: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Variant:
    """One distinct step sequence (operation keys in order) and how many requests followed it."""

    steps: tuple[str, ...]
    requests: int
    support: float


@dataclass(frozen=True)
class Duplicate:
    """Another owner driving the same flow, and how its copy drifted."""

    owner: str
    entry: OperationRef
    differences: tuple[str, ...]


@dataclass(frozen=True)
class ParallelOpportunity:
    """Sequential steps of a flow that nothing observed orders, so they could run together.

    ``steps`` are the step indices (ascending; a step of a parallel group stands for its group);
    ``saving_p50_ms``/``saving_p95_ms`` are the median and 95th percentile, over the ``requests``
    that made all of them, of how much shorter the flow's critical path would have been had they
    overlapped (their summed durations less the longest one). ``evidence`` says why they look
    independent.
    """

    steps: tuple[int, ...]
    saving_p50_ms: float
    saving_p95_ms: float
    requests: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Flow:
    """A recurring call sequence behind one entry operation of one owner.

    ``verdict`` is ``flow`` for a flow the analysis claims, ``too-little-evidence`` or
    ``mixed-entry`` for an entry only observed (see :mod:`orchscan.analyzer.flows.judgement`),
    with ``caveats`` saying why; a sub-entry split from a mixed entry names it in ``split_from``.
    ``holes`` counts the requests whose trace lost spans (some span's parent is missing).
    ``kind`` is ``orchestrated`` (the owner calls every step) or ``choreographed`` (an event chain
    the owner's requests start: steps are message deliveries and the consumers' own calls), see
    :data:`FLOW_KINDS`. ``teams`` are the teams of the owner and every step's service (sorted);
    ``team_boundaries`` the distinct pairs of different teams a step crosses between (from the
    caller's team to the callee's, each pair sorted). ``parallel_opportunities`` are sorted by
    their first step. ``sample_rate`` is the share of the entry's requests (an event-driven
    flow's: its origin's chains) the flow was mined from: below 1 when there were more than
    ``flows.max_mined_requests`` or the memory budget's share (see
    :mod:`orchscan.analyzer.flows.sampling`), and its counts are then the sample's.
    """

    id: str
    owner: str
    entry: OperationRef
    requests: int
    support: float
    long_running: bool
    steps: tuple[Step, ...]
    handoffs: tuple[Handoff, ...] = ()
    failure: FailureLogic = field(default_factory=FailureLogic)
    variants: tuple[Variant, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    example_traces: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    duration_p50_ms: float = 0.0
    duration_p95_ms: float = 0.0
    duration_max_ms: float = 0.0
    verdict: str = "flow"
    caveats: tuple[str, ...] = ()
    split_from: str | None = None
    holes: int = 0
    kind: str = "orchestrated"
    parallel_opportunities: tuple[ParallelOpportunity, ...] = ()
    teams: tuple[str, ...] = ()
    team_boundaries: tuple[tuple[str, str], ...] = ()
    sample_rate: float = 1.0


@dataclass(frozen=True)
class EvidenceCounts:
    """How often a finding's problem showed: in ``affected`` of the ``cases`` where it could, and
    how many of those a sampling hole explains (``explained``: their trace lost spans)."""

    affected: int
    cases: int
    explained: int = 0


@dataclass(frozen=True, order=True)
class ServiceTeam:
    """The team that owns a service and where that was read (``source``, one of
    :data:`TEAM_SOURCES`); ``evidence`` says how, e.g. the owners file's pattern that matched."""

    service: str
    team: str
    source: str
    evidence: str


@dataclass(frozen=True)
class Finding:
    """A pitfall a reviewer should look at, with evidence and a recommendation.

    ``rule`` is a stable id such as ``hidden-orchestration``; ``severity`` one of
    :data:`SEVERITIES`. ``subject`` names what inside the service the finding is about (a flow, a
    flow's step, a callee), None when it is about the service as a whole. ``counts`` says how
    often the problem showed, for rules that count it (its severity follows them, see
    :mod:`orchscan.analyzer.findings.severity`). Sorted by severity, then rule, service and flow.
    """

    rule: str
    severity: str
    service: str
    flow: str | None
    message: str
    evidence: tuple[str, ...]
    recommendation: str
    example_traces: tuple[str, ...] = ()
    subject: str | None = None
    counts: EvidenceCounts | None = None

    @property
    def fingerprint(self) -> str:
        """The same for the same problem at the same place in every scan.

        Built from the rule, the service and the subject only, never from counts, timings or
        trace ids, so that scans of different windows can be compared finding by finding.
        """
        identity = "\x1f".join((self.rule, self.service, self.subject or ""))
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]

    def sort_key(self) -> tuple[int, str, str, str]:
        """Most severe first, then by rule, service and flow."""
        return (SEVERITIES.index(self.severity), self.rule, self.service, self.flow or "")


@dataclass(frozen=True)
class Suppression:
    """One entry of a suppression file: a finding (or kind of finding) the team accepted, and why.

    It matches a finding by ``fingerprint``, or by ``rule`` and ``service``. Past its ``expires``
    date (the last day it holds) it suppresses nothing and is reported as expired. ``origin``
    names the file and entry, so that every message can point at it.
    """

    reason: str
    origin: str
    fingerprint: str | None = None
    rule: str | None = None
    service: str | None = None
    expires: date | None = None

    def matches(self, finding: Finding) -> bool:
        """Whether this entry is about ``finding``."""
        if self.fingerprint is not None:
            return finding.fingerprint == self.fingerprint
        return finding.rule == self.rule and finding.service == self.service


@dataclass(frozen=True)
class SuppressedFinding:
    """A finding kept out of the gate and the counts by a suppression, listed with its reason."""

    finding: Finding
    suppression: Suppression


@dataclass(frozen=True)
class Suppressions:
    """What a suppression file did to a scan's findings.

    ``suppressed`` in the findings' order; ``expired`` entries (they suppressed nothing) and
    ``unused`` entries (they matched no finding) in file order.
    """

    suppressed: tuple[SuppressedFinding, ...] = ()
    expired: tuple[Suppression, ...] = ()
    unused: tuple[Suppression, ...] = ()


@dataclass(frozen=True, order=True, slots=True)
class UndocumentedCall:
    """Traffic to a path no operation of the service's spec documents."""

    method: str
    path: str
    count: int


@dataclass(frozen=True, order=True, slots=True)
class ServiceCoverage:
    """How well a service's spec covers the calls it receives.

    ``observed_from`` is ``server`` when the service's own server spans were counted, ``client``
    when it emits none and the client spans calling it stand in. ``unseen`` lists documented
    operation keys no span (server or client) matched.
    """

    service: str
    observed_from: str
    calls: int
    matched: int
    undocumented: tuple[UndocumentedCall, ...]
    unseen: tuple[str, ...]

    @property
    def match_rate(self) -> float:
        """Share of observed calls that matched a documented operation (1.0 when there were none)."""
        return self.matched / self.calls if self.calls else 1.0


@dataclass(frozen=True)
class SkippedInput:
    """Input records that could not be used, folded by file, position and reason."""

    file: str
    position: str
    reason: str
    count: int


@dataclass(frozen=True)
class InputFile:
    """One input file: its detected format and what it contributed."""

    file: str
    format: str
    spans: int
    traces: int


@dataclass(frozen=True)
class InputSource:
    """One live source: the time window it was read for and what fetching it took.

    ``requests`` counts retries too; ``errors`` the requests that failed for good (each also a
    skipped input); ``bytes`` the response bodies as received.
    """

    source: str
    format: str
    start_ns: int
    end_ns: int
    requests: int
    retries: int
    pages: int
    traces: int
    errors: int
    bytes: int


@dataclass(frozen=True)
class FragmentSummary:
    """Spans whose parent was lost, and what the scan did with them.

    ``attached``: fragment roots put back into their service's request in the same trace;
    ``kept``: those no single request could take in, kept apart (their calls count between
    services, but they are never requests, flows or evidence of a role); ``calls``: the calls
    made below the kept ones; ``services``: kept fragments per service, most first.
    """

    attached: int = 0
    kept: int = 0
    calls: int = 0
    services: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class InputSummary:
    """What the scan read. Paths are as given on the command line (relative stays relative).

    ``start_ns``/``end_ns`` bound the observed time window; ``openapi_match_rate`` is the share
    of server spans tied to a documented operation (None without specs); ``fragments`` says how
    many spans had lost their parent and what was done with them.
    """

    files: tuple[InputFile, ...]
    spans: int
    traces: int
    services: int
    start_ns: int | None
    end_ns: int | None
    skipped: tuple[SkippedInput, ...]
    notices: tuple[str, ...] = ()
    specs: tuple[str, ...] = ()
    openapi_match_rate: float | None = None
    sources: tuple[InputSource, ...] = ()
    fragments: FragmentSummary = field(default_factory=FragmentSummary)


@dataclass(frozen=True)
class Analysis:
    """Everything a report renders.

    ``services`` are sorted by ``(-score, name)``; ``edges`` by ``(caller, callee, kind)``;
    ``flows`` (the claimed ones) and ``observed_flows`` (entries mined but not claimed: too
    little evidence, mixed entries) by ``(owner, entry key)``; ``findings`` by
    :meth:`Finding.sort_key`; ``coverage`` (one record per service with a spec) by service name;
    ``ownership`` (one record per service whose team is known) by service name. ``findings``
    holds the active findings only; those a suppression file accepted are in ``suppressions``.
    """

    input: InputSummary
    services: tuple[ServiceRole, ...]
    edges: tuple[Edge, ...]
    flows: tuple[Flow, ...] = ()
    findings: tuple[Finding, ...] = ()
    coverage: tuple[ServiceCoverage, ...] = ()
    suppressions: Suppressions = field(default_factory=Suppressions)
    observed_flows: tuple[Flow, ...] = ()
    ownership: tuple[ServiceTeam, ...] = ()

    def service(self, name: str) -> ServiceRole | None:
        """The role record of a service, if it was seen."""
        return next((s for s in self.services if s.name == name), None)

    def team_of(self) -> dict[str, str]:
        """Service name -> its team, for the services whose team is known."""
        return {record.service: record.team for record in self.ownership}
