"""What changed between two scans: orchestrators, flows and findings, as a pure function.

Orchestrators are matched by service name, flows by id (``owner:entry``), steps by their key
(``service operation``), findings by fingerprint. Counts, timings and scores are not compared:
they move with every window and would bury the changes a reviewer acts on. A service that
turned into an orchestrator is *added* and one that stopped being one is *removed*, each with
the role it had or has instead; *changed* orchestrators stayed orchestrators and turned hidden or
explicit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from orchscan.analyzer.changes.snapshot import (
    CompensationState,
    FindingState,
    FlowState,
    ScanSnapshot,
    ServiceState,
)
from orchscan.analyzer.results import SEVERITIES

ORCHESTRATOR = "orchestrator"


@dataclass(frozen=True)
class OrchestratorChange:
    """A service that is, was, or both, an orchestrator; ``old``/``new`` is None where it was unseen."""

    service: str
    old: ServiceState | None
    new: ServiceState | None

    @property
    def changes(self) -> tuple[str, ...]:
        """What differs between the two scans: ``role`` and/or ``hidden``."""
        old_role = self.old.role if self.old else None
        new_role = self.new.role if self.new else None
        hidden = self.old is not None and self.new is not None and self.old.hidden != self.new.hidden
        differences = (("role", old_role != new_role), ("hidden", hidden))
        return tuple(name for name, differs in differences if differs)


@dataclass(frozen=True)
class Reorder:
    """The steps both scans share, in the old and in the new order."""

    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class KeyChange:
    """A retried step whose idempotency key appeared (``new`` true) or disappeared."""

    step: str
    old: bool
    new: bool


@dataclass(frozen=True)
class FlowChange:
    """How a flow present in both scans changed; every field is empty when that part did not."""

    id: str
    owner: str
    entry: str
    steps_added: tuple[str, ...] = ()
    steps_removed: tuple[str, ...] = ()
    reordered: Reorder | None = None
    retries_added: tuple[str, ...] = ()
    retries_removed: tuple[str, ...] = ()
    idempotency: tuple[KeyChange, ...] = ()
    compensations_added: tuple[CompensationState, ...] = ()
    compensations_removed: tuple[CompensationState, ...] = ()

    @property
    def changes(self) -> tuple[str, ...]:
        """Names of the parts that changed, in a fixed order."""
        parts = (
            ("steps added", self.steps_added),
            ("steps removed", self.steps_removed),
            ("steps reordered", self.reordered),
            ("retries added", self.retries_added),
            ("retries removed", self.retries_removed),
            ("idempotency keys changed", self.idempotency),
            ("compensations added", self.compensations_added),
            ("compensations removed", self.compensations_removed),
        )
        return tuple(name for name, value in parts if value)


@dataclass(frozen=True)
class ScanDiff:
    """Everything that changed from an old scan to a new one, each part sorted.

    Orchestrator changes are sorted by service, flows by id, findings by
    :meth:`FindingState.sort_key`.
    """

    orchestrators_added: tuple[OrchestratorChange, ...]
    orchestrators_removed: tuple[OrchestratorChange, ...]
    orchestrators_changed: tuple[OrchestratorChange, ...]
    flows_added: tuple[FlowState, ...]
    flows_removed: tuple[FlowState, ...]
    flows_changed: tuple[FlowChange, ...]
    findings_new: tuple[FindingState, ...]
    findings_resolved: tuple[FindingState, ...]

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not any(
            (
                self.orchestrators_added,
                self.orchestrators_removed,
                self.orchestrators_changed,
                self.flows_added,
                self.flows_removed,
                self.flows_changed,
                self.findings_new,
                self.findings_resolved,
            )
        )

    def new_findings_at_least(self, severity: str) -> tuple[FindingState, ...]:
        """New findings of this severity or a more severe one."""
        limit = SEVERITIES.index(severity)
        return tuple(f for f in self.findings_new if SEVERITIES.index(f.severity) <= limit)


def compare_scans(old: ScanSnapshot, new: ScanSnapshot) -> ScanDiff:
    """What changed from ``old`` to ``new``; the same scan twice gives an empty diff."""
    added, removed, changed = _orchestrators(old.services, new.services)
    old_flows = {f.id: f for f in old.flows}
    new_flows = {f.id: f for f in new.flows}
    flow_changes = (
        _flow_change(old_flows[i], new_flows[i]) for i in sorted(old_flows.keys() & new_flows.keys())
    )
    old_findings = {f.fingerprint: f for f in old.findings}
    new_findings = {f.fingerprint: f for f in new.findings}
    return ScanDiff(
        orchestrators_added=added,
        orchestrators_removed=removed,
        orchestrators_changed=changed,
        flows_added=tuple(new_flows[i] for i in sorted(new_flows.keys() - old_flows.keys())),
        flows_removed=tuple(old_flows[i] for i in sorted(old_flows.keys() - new_flows.keys())),
        flows_changed=tuple(change for change in flow_changes if change.changes),
        findings_new=_findings(new_findings, old_findings),
        findings_resolved=_findings(old_findings, new_findings),
    )


def _orchestrators(
    old: Iterable[ServiceState], new: Iterable[ServiceState]
) -> tuple[tuple[OrchestratorChange, ...], tuple[OrchestratorChange, ...], tuple[OrchestratorChange, ...]]:
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    names = sorted(
        {n for n, s in before.items() if s.role == ORCHESTRATOR}
        | {n for n, s in after.items() if s.role == ORCHESTRATOR}
    )
    added, removed, changed = [], [], []
    for name in names:
        change = OrchestratorChange(name, before.get(name), after.get(name))
        was = change.old is not None and change.old.role == ORCHESTRATOR
        now = change.new is not None and change.new.role == ORCHESTRATOR
        if now and not was:
            added.append(change)
        elif was and not now:
            removed.append(change)
        elif change.changes:
            changed.append(change)
    return tuple(added), tuple(removed), tuple(changed)


def _flow_change(old: FlowState, new: FlowState) -> FlowChange:
    old_keys, new_keys = Counter(old.step_keys), Counter(new.step_keys)
    old_retries = {s.key: retry for s in old.steps if (retry := s.retry) is not None}
    new_retries = {s.key: retry for s in new.steps if (retry := s.retry) is not None}
    both = sorted(old_retries.keys() & new_retries.keys())
    old_compensations, new_compensations = set(old.compensations), set(new.compensations)
    return FlowChange(
        id=new.id,
        owner=new.owner,
        entry=new.entry,
        steps_added=tuple(sorted((new_keys - old_keys).elements())),
        steps_removed=tuple(sorted((old_keys - new_keys).elements())),
        reordered=_reorder(old, new),
        retries_added=tuple(sorted(new_retries.keys() - old_retries.keys())),
        retries_removed=tuple(sorted(old_retries.keys() - new_retries.keys())),
        idempotency=tuple(
            KeyChange(key, old_retries[key].idempotency_key, new_retries[key].idempotency_key)
            for key in both
            if old_retries[key].idempotency_key != new_retries[key].idempotency_key
        ),
        compensations_added=tuple(sorted(new_compensations - old_compensations)),
        compensations_removed=tuple(sorted(old_compensations - new_compensations)),
    )


def _stages(flow: FlowState, shared: Counter[str]) -> list[tuple[str, int]]:
    """The shared steps as ``(key#occurrence, stage)``: steps of one parallel group share a stage.

    Steps that run in parallel have no order among themselves, so only moves across stages count
    as a reordering; occurrences number repeated keys so that a flow calling one operation twice
    still compares position by position.
    """
    seen: Counter[str] = Counter()
    stages: list[tuple[str, int]] = []
    stage, group = -1, None
    for step in flow.steps:
        if step.parallel_group is None or step.parallel_group != group:
            stage += 1
        group = step.parallel_group
        seen[step.key] += 1
        if seen[step.key] <= shared[step.key]:
            stages.append((f"{step.key}#{seen[step.key]}", stage))
    return stages


def _reorder(old: FlowState, new: FlowState) -> Reorder | None:
    shared = Counter(old.step_keys) & Counter(new.step_keys)
    before, after = _stages(old, shared), _stages(new, shared)
    stage_after = dict(after)
    moved = any(
        stage_after[a] > stage_after[b]
        for i, (a, stage_a) in enumerate(before)
        for b, stage_b in before[i + 1 :]
        if stage_a < stage_b
    )
    if not moved:
        return None
    return Reorder(
        tuple(k.rpartition("#")[0] for k, _ in before), tuple(k.rpartition("#")[0] for k, _ in after)
    )


def _findings(these: dict[str, FindingState], others: dict[str, FindingState]) -> tuple[FindingState, ...]:
    return tuple(sorted((these[k] for k in these.keys() - others.keys()), key=FindingState.sort_key))
