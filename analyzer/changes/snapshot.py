"""What a later comparison needs of a scan: a small snapshot of its results.

A history file and a findings.json document both hold more than a comparison reads; both are
reduced to this snapshot, so that comparing two scans is one pure function whatever they were
read from. Everything is keyed by names that stay the same across scans (service names, flow ids,
step operations, finding fingerprints), never by counts, timings or trace ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchscan.analyzer.results import SEVERITIES, Analysis, Flow

#: Scores are kept to the precision findings.json writes, so that a scan read back from its
#: findings.json and the same scan read back from a history compare equal.
SCORE_DIGITS = 4


@dataclass(frozen=True, order=True)
class ServiceState:
    """A service's role as one scan saw it (``hidden``: an orchestrator doing its own work too)."""

    name: str
    role: str
    hidden: bool
    score: float


@dataclass(frozen=True)
class RetryState:
    """A step the owner repeated after failures: how often at most, and whether it sent a key."""

    max_attempts: int
    idempotency_key: bool


@dataclass(frozen=True)
class StepState:
    """One step of a flow, in main-flow order; ``key`` (``service operation``) identifies it."""

    service: str
    operation: str
    optional: bool
    parallel_group: int | None
    retry: RetryState | None

    @property
    def key(self) -> str:
        """The step's identity across scans: the called service and its operation."""
        return f"{self.service} {self.operation}"


@dataclass(frozen=True, order=True)
class CompensationState:
    """A call that undoes an earlier step when a later one fails, with both steps named by key."""

    failed_step: str
    undone_step: str
    service: str
    operation: str


@dataclass(frozen=True)
class FlowState:
    """A flow's identity (``id`` is ``owner:entry``), its ordered steps and its compensations."""

    id: str
    owner: str
    entry: str
    requests: int
    steps: tuple[StepState, ...]
    compensations: tuple[CompensationState, ...]

    @property
    def step_keys(self) -> tuple[str, ...]:
        """The steps' keys in main-flow order."""
        return tuple(step.key for step in self.steps)


@dataclass(frozen=True)
class FindingState:
    """A finding as a comparison needs it: ``fingerprint`` is its identity across scans."""

    fingerprint: str
    rule: str
    severity: str
    service: str
    flow: str | None
    subject: str | None
    message: str

    def sort_key(self) -> tuple[int, str, str, str]:
        """Most severe first, then by rule, service and fingerprint."""
        return (SEVERITIES.index(self.severity), self.rule, self.service, self.fingerprint)


@dataclass(frozen=True)
class ScanSnapshot:
    """What a scan recorded: its input window and size, roles, flows and findings.

    ``start_ns``/``end_ns`` bound the observed window (None for an empty input); ``calls`` is the
    number of calls between services the scan counted. ``services`` are sorted by name, ``flows``
    by id, ``findings`` by :meth:`FindingState.sort_key`.
    """

    start_ns: int | None
    end_ns: int | None
    spans: int
    traces: int
    calls: int
    services: tuple[ServiceState, ...]
    flows: tuple[FlowState, ...]
    findings: tuple[FindingState, ...]


@dataclass(frozen=True)
class ScanCounts:
    """A scan's headline numbers, for listings and trends.

    ``findings`` pairs every severity of :data:`SEVERITIES`, most severe first, with its count.
    """

    spans: int
    traces: int
    calls: int
    services: int
    orchestrators: int
    flows: int
    findings: tuple[tuple[str, int], ...]

    def findings_of(self, severity: str) -> int:
        """How many findings of this severity the scan had."""
        return dict(self.findings)[severity]


def take_snapshot(analysis: Analysis) -> ScanSnapshot:
    """Reduce an analysis to what a later comparison reads."""
    summary = analysis.input
    services = tuple(
        sorted(
            ServiceState(s.name, s.role, s.hidden, round(s.score, SCORE_DIGITS)) for s in analysis.services
        )
    )
    findings = tuple(
        sorted(
            (
                FindingState(f.fingerprint, f.rule, f.severity, f.service, f.flow, f.subject, f.message)
                for f in analysis.findings
            ),
            key=FindingState.sort_key,
        )
    )
    return ScanSnapshot(
        start_ns=summary.start_ns,
        end_ns=summary.end_ns,
        spans=summary.spans,
        traces=summary.traces,
        calls=sum(edge.calls for edge in analysis.edges),
        services=services,
        flows=tuple(sorted((_flow_state(f) for f in analysis.flows), key=lambda f: f.id)),
        findings=findings,
    )


def _flow_state(flow: Flow) -> FlowState:
    ordered = sorted(flow.steps, key=lambda s: s.index)
    steps = tuple(
        StepState(
            service=step.operation.service,
            operation=step.operation.key,
            optional=step.optional,
            parallel_group=step.parallel_group,
            retry=(
                RetryState(step.retries.max_attempts, step.retries.idempotency_key) if step.retries else None
            ),
        )
        for step in ordered
    )
    keys = {step.index: state.key for step, state in zip(ordered, steps, strict=True)}
    compensations = tuple(
        sorted(
            CompensationState(
                failed_step=step_name(keys, c.failed_step),
                undone_step=step_name(keys, c.undone_step),
                service=c.operation.service,
                operation=c.operation.key,
            )
            for c in flow.failure.compensations
        )
    )
    return FlowState(flow.id, flow.owner, flow.entry.key, flow.requests, steps, compensations)


def step_name(keys: dict[int, str], index: int) -> str:
    """A step's key by its 1-based index; ``step N`` when the flow has no such step."""
    return keys.get(index, f"step {index}")


def count_scan(snapshot: ScanSnapshot) -> ScanCounts:
    """The headline numbers of one snapshot."""
    severities = [f.severity for f in snapshot.findings]
    return ScanCounts(
        spans=snapshot.spans,
        traces=snapshot.traces,
        calls=snapshot.calls,
        services=len(snapshot.services),
        orchestrators=sum(1 for s in snapshot.services if s.role == "orchestrator"),
        flows=len(snapshot.flows),
        findings=tuple((severity, severities.count(severity)) for severity in SEVERITIES),
    )
