"""One scan, start to finish: partitions of whole traces (+ specs) in, the finished result out.

The scan is a map and a reduce. Each partition is reduced on its own
(:func:`orchscan.analyzer.reduction.reduce_partition`); the landscape stage then works on the
reductions only, in two steps:

1. :func:`plan_landscape` merges the small partials and decides everything that needs the whole
   landscape: roles, edges, spec coverage, which flows are worth mining and which trace-context
   evidence can matter;
2. :func:`finish_analysis` takes what each partition's heavy records hold of that selection
   (:func:`orchscan.analyzer.reduction.select_records`) and mines flows, checks documented
   workflows and raises findings.

Between the two, the caller may keep heavy records wherever it likes (memory, disk, a cluster);
every function here is pure. :func:`analyze` runs the whole scan over one in-memory span table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from orchscan.analyzer.columnar.frames import rows
from orchscan.analyzer.findings.conformance import check_conformance
from orchscan.analyzer.findings.events import event_findings
from orchscan.analyzer.findings.ownership import cross_team_orchestration
from orchscan.analyzer.findings.rules import find_findings
from orchscan.analyzer.findings.specs import find_spec_findings
from orchscan.analyzer.flows.events import mine_event_flows
from orchscan.analyzer.flows.judgement import FLOW, NO_MIXED_ENTRIES, judge_flows, split_mixed_entries
from orchscan.analyzer.flows.lost_callees import decide_answers
from orchscan.analyzer.flows.mining import analyze_flows
from orchscan.analyzer.flows.parallelism import with_parallel_opportunities
from orchscan.analyzer.flows.sampling import sample_rates, with_sample_rates
from orchscan.analyzer.flows.steps import (
    candidate_flows,
    flow_figures,
    wanted_flows,
)
from orchscan.analyzer.landscape.behaviour import summarise_behaviour
from orchscan.analyzer.landscape.graph import build_edges
from orchscan.analyzer.landscape.ownership import assign_teams, with_teams
from orchscan.analyzer.landscape.roles import classify_behaviours
from orchscan.analyzer.reduction import (
    PartitionLight,
    SelectedRecords,
    Selection,
    reduce_partition,
    select_records,
)
from orchscan.analyzer.results import (
    Analysis,
    Edge,
    Finding,
    Flow,
    FragmentSummary,
    InputFile,
    InputSource,
    InputSummary,
    ServiceCoverage,
    ServiceRole,
    ServiceTeam,
    SkippedInput,
)
from orchscan.analyzer.specs.operations import (
    index_operations,
    operation_of,
    summarise_coverage,
)
from orchscan.analyzer.thresholds import DEFAULT_THRESHOLDS, Thresholds
from orchscan.collectors.arazzo import DocumentedWorkflow
from orchscan.collectors.model.records import Ingest, IngestReport
from orchscan.collectors.model.spans import service_names
from orchscan.collectors.openapi.binding import SpecBindings, bind_specs
from orchscan.collectors.openapi.model import Operation, SpecSet
from orchscan.collectors.owners import OwnersFile


@dataclass(frozen=True)
class SpecContext:
    """The specs of a scan, bound to the traced services: what reduction and reports need of them."""

    specs: SpecSet | None
    bindings: SpecBindings | None
    operations: Mapping[str, Sequence[Operation]]

    @classmethod
    def of(
        cls, specs: SpecSet | None, services: Sequence[str], mapping: Mapping[str, str] | None = None
    ) -> SpecContext:
        """Bind ``specs`` to ``services`` (traced services and the peers they call)."""
        if specs is None or not specs.specs:
            return cls(specs, None, {})
        bindings = bind_specs(specs.specs, services, mapping=mapping)
        return cls(specs, bindings, index_operations(specs.specs, bindings))


@dataclass(frozen=True)
class Landscape:
    """What the merged partials tell about the whole landscape, before flows are mined."""

    roles: tuple[ServiceRole, ...]
    owners: frozenset[str]
    edges: tuple[Edge, ...]
    coverage: tuple[ServiceCoverage, ...]
    statuses: Mapping[tuple[str, str], tuple[int, ...]]
    selection: Selection
    fragments: FragmentSummary
    ownership: tuple[ServiceTeam, ...] = ()
    #: The most requests (and, apart, message chains) the landscape stage mines; None for no
    #: bound beyond ``flows.max_mined_requests``.
    mined_requests: int | None = None


@dataclass(frozen=True)
class ScanResult:
    """The finished analysis plus what the report stages need beyond it."""

    analysis: Analysis
    bindings: SpecBindings | None
    operations: Mapping[str, Sequence[Operation]]
    success_statuses: Mapping[tuple[str, str], tuple[int, ...]]


def plan_landscape(
    lights: Sequence[PartitionLight],
    *,
    specs: SpecContext,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    owners_file: OwnersFile | None = None,
    mined_requests: int | None = None,
) -> Landscape:
    """Merge the partitions' partials: roles, edges, coverage, teams, and what to keep of the heavy
    records. ``owners_file`` is the ``--owners`` file, when one was given; ``mined_requests`` the
    most requests the memory budget lets the landscape stage mine (see
    :mod:`orchscan.analyzer.flows.sampling`), None for no bound beyond the thresholds'."""
    light = PartitionLight.merge(lights)
    behaviour = light.behaviour
    roles = classify_behaviours(summarise_behaviour(behaviour), thresholds=thresholds.roles)
    owners = frozenset(role.name for role in roles if role.role == "orchestrator")
    candidates = candidate_flows(light.calls, owners, thresholds.flows.min_steps)
    return Landscape(
        roles=roles,
        owners=owners,
        edges=build_edges(light.edges),
        coverage=summarise_coverage(light.coverage, specs.operations) if light.coverage else (),
        statuses=_statuses(light.statuses),
        selection=Selection(
            candidates=candidates,
            orphan_services=light.orphan_services,
            root_keys=light.root_keys,
            sent_callees=light.sent_callees,
            tolerance_ms=thresholds.calls.overlap_tolerance_ms,
            answers=decide_answers(light.answers),
            sample_rates=sample_rates(
                behaviour.operations, candidates, thresholds.flows.max_mined_requests, mined_requests
            ),
        ),
        fragments=_fragments(light.fragments),
        ownership=assign_teams((role.name for role in roles), light.namespaces, owners_file),
        mined_requests=mined_requests,
    )


def merge_selected(
    parts: Sequence[SelectedRecords], landscape: Landscape, *, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> SelectedRecords:
    """Every unit's selected records as one, with the steps of the flows worth mining only: each
    unit's flow figures merge by their maximum, and the others are left out while merging (a
    third of the requests at 1M spans, never copied)."""
    figures = pd.concat([flow_figures(part.steps.requests) for part in parts])
    return SelectedRecords.merge(parts, wanted_flows(figures, landscape.owners, thresholds.flows.min_steps))


def finish_analysis(
    landscape: Landscape,
    selected: SelectedRecords,
    report: IngestReport,
    *,
    specs: SpecContext,
    workflows: Sequence[DocumentedWorkflow] = (),
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    events: Callable[[], tuple[Flow, ...]] | None = None,
) -> ScanResult:
    """Mine flows from the selected records of every partition (merged by
    :func:`merge_selected`), check documented workflows, raise every finding.

    ``events`` gives the event-driven flows where the caller mines them elsewhere (with
    :func:`mine_events`, on another core); it is called once the orchestrated flows are mined.
    """
    operations = specs.operations
    tolerance = thresholds.calls.overlap_tolerance_ms
    steps, mixed = split_mixed_entries(selected.steps, thresholds=thresholds.flows)
    mined = with_sample_rates(
        _document_entries(
            analyze_flows(
                steps,
                specs=operations or None,
                thresholds=thresholds.flows,
                tolerance_ms=tolerance,
                mixed=mixed,
            ),
            operations,
        ),
        landscape.selection.sample_rates,
    )
    # Claims rest on claimed flows only; the others are listed as observed.
    claimed = tuple(flow for flow in mined if flow.verdict == FLOW)
    orchestrated = with_parallel_opportunities(steps, claimed, thresholds=thresholds.flows)
    judged_events = (
        events() if events is not None else mine_events(landscape, selected, thresholds=thresholds)
    )
    choreographed = tuple(flow for flow in judged_events if flow.verdict == FLOW)
    teams = {record.service: record.team for record in landscape.ownership}
    orchestrated, choreographed = with_teams(orchestrated, teams), with_teams(choreographed, teams)
    flows = orchestrated + choreographed
    findings = (
        find_findings(
            orchestrated,
            steps,
            selected.context,
            roles=landscape.roles,
            specs=operations or None,
            thresholds=thresholds.flows,
            tolerance_ms=tolerance,
        )
        + tuple(cross_team_orchestration(orchestrated, landscape.roles, teams, thresholds=thresholds.flows))
        + tuple(event_findings(choreographed))
        + find_spec_findings(landscape.coverage)
        + check_conformance(workflows, orchestrated)
    )
    calls = sum(c.calls for c in landscape.coverage)
    match_rate = sum(c.matched for c in landscape.coverage) / calls if calls else None
    analysis = Analysis(
        input=_summary(report, specs, match_rate, landscape.fragments),
        services=landscape.roles,
        edges=landscape.edges,
        flows=tuple(sorted(flows, key=lambda f: (f.owner, f.entry.key, f.id))),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        coverage=tuple(sorted(landscape.coverage, key=lambda c: c.service)),
        observed_flows=tuple(
            sorted(
                (f for f in mined + judged_events if f.verdict != FLOW),
                key=lambda f: (f.owner, f.entry.key, f.id),
            )
        ),
        ownership=landscape.ownership,
    )
    return ScanResult(analysis, specs.bindings, operations, landscape.statuses)


def mine_events(
    landscape: Landscape, selected: SelectedRecords, *, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> tuple[Flow, ...]:
    """The event-driven flows of the selected message chains, judged: claims too, on the same
    evidence as orchestrated flows, never split (no mixed entry). Independent of the
    orchestrated flows, so it may run beside their mining."""
    return judge_flows(
        mine_event_flows(selected.chains, thresholds=thresholds.flows, budget=landscape.mined_requests),
        NO_MIXED_ENTRIES,
        thresholds=thresholds.flows,
    )


def analyze(
    ingest: Ingest,
    *,
    specs: SpecSet | None = None,
    service_map: Mapping[str, str] | None = None,
    workflows: Sequence[DocumentedWorkflow] = (),
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    owners_file: OwnersFile | None = None,
    mined_requests: int | None = None,
) -> ScanResult:
    """The whole scan over one in-memory span table, as a single partition; flows are mined from
    at most ``mined_requests`` requests (see :func:`plan_landscape`)."""
    context = SpecContext.of(specs, service_names(ingest.spans), service_map)
    light, heavy = reduce_partition(ingest.spans, operations=context.operations, thresholds=thresholds)
    landscape = plan_landscape(
        [light], specs=context, thresholds=thresholds, owners_file=owners_file, mined_requests=mined_requests
    )
    return finish_analysis(
        landscape,
        merge_selected([select_records(heavy, landscape.selection)], landscape, thresholds=thresholds),
        ingest.report(),
        specs=context,
        workflows=workflows,
        thresholds=thresholds,
    )


def _document_entries(
    flows: Sequence[Flow], operations: Mapping[str, Sequence[Operation]]
) -> tuple[Flow, ...]:
    """Name each flow's entry after the owner's documented operation, when its spec has one."""
    named = []
    for flow in flows:
        documented = operation_of(flow.entry, operations.get(flow.owner, ()))
        if documented is not None and flow.entry.operation_id is None:
            entry = dataclasses.replace(
                flow.entry,
                route=flow.entry.route or documented.path,
                operation_id=documented.operation_id,
                operation_id_inferred=documented.inferred,
            )
            flow = dataclasses.replace(flow, entry=entry)
        named.append(flow)
    return tuple(named)


def _statuses(observed: pd.DataFrame) -> dict[tuple[str, str], tuple[int, ...]]:
    """Status codes each (callee, operation) answered successfully with, as observed."""
    found: dict[tuple[str, str], set[int]] = {}
    for callee, operation, code in rows(observed):
        found.setdefault((str(callee), str(operation)), set()).add(int(code))
    return {key: tuple(sorted(codes)) for key, codes in sorted(found.items())}


def _fragments(counts: pd.DataFrame) -> FragmentSummary:
    """The fragments of every partition, summed per service."""
    per_service = counts.groupby("service", sort=True)[["attached", "kept", "calls"]].sum()
    kept = per_service["kept"][per_service["kept"] > 0]
    return FragmentSummary(
        attached=int(per_service["attached"].sum()),
        kept=int(per_service["kept"].sum()),
        calls=int(per_service["calls"].sum()),
        services=tuple(
            (str(name), int(count))
            for name, count in sorted(kept.items(), key=lambda pair: (-int(pair[1]), str(pair[0])))
        ),
    )


def _summary(
    report: IngestReport, specs: SpecContext, match_rate: float | None, fragments: FragmentSummary
) -> InputSummary:
    starts = [f.start_ns for f in report.files if f.start_ns is not None]
    ends = [f.end_ns for f in report.files if f.end_ns is not None]
    skipped = [SkippedInput(s.file, s.position, s.reason, s.count) for s in report.skipped]
    if specs.specs is not None:
        skipped += [SkippedInput(p.file, p.pointer or "document", p.message, 1) for p in specs.specs.problems]
    notices = [f"{n.file}: {n.reason} ({n.count} spans)" for n in report.notices]
    if specs.bindings is not None:
        notices += [
            f"{spec}: OpenAPI spec matched no traced service" for spec in specs.bindings.unmatched_specs
        ]
    return InputSummary(
        files=tuple(InputFile(f.file, f.format, f.spans, f.traces) for f in report.files),
        spans=report.spans,
        traces=report.traces,
        services=report.services,
        start_ns=min(starts) if starts else None,
        end_ns=max(ends) if ends else None,
        skipped=tuple(sorted(skipped, key=lambda s: (s.file, s.position, s.reason))),
        notices=tuple(notices),
        specs=tuple(spec.source for spec in specs.specs.specs) if specs.specs is not None else (),
        openapi_match_rate=match_rate,
        sources=tuple(InputSource(**dataclasses.asdict(s)) for s in report.sources),
        fragments=fragments,
    )
