"""One scan, start to finish: span table (+ specs) in, :class:`Analysis` out.

Every stage is a pure function of the previous stages' results; this module only decides the
order and hands each stage what it needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from orchscan.analyzer.findings.rules import find_findings
from orchscan.analyzer.findings.specs import find_spec_findings
from orchscan.analyzer.flows.handoffs import match_operation
from orchscan.analyzer.flows.mining import analyze_flows
from orchscan.analyzer.landscape.graph import build_edges
from orchscan.analyzer.landscape.roles import classify_services
from orchscan.analyzer.requests.calls import SYNC, CallTables, build_call_tables
from orchscan.analyzer.results import (
    Analysis,
    Finding,
    Flow,
    InputFile,
    InputSummary,
    ServiceCoverage,
    SkippedInput,
)
from orchscan.analyzer.specs.operations import index_operations, match_operations, measure_coverage
from orchscan.analyzer.thresholds import DEFAULT_THRESHOLDS, Thresholds
from orchscan.collectors.model.records import Ingest
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.openapi.binding import SpecBindings, bind_specs
from orchscan.collectors.openapi.model import Operation, SpecSet
from orchscan.collectors.traces.ingest import total_services, total_traces


@dataclass(frozen=True)
class ScanResult:
    """The analysis plus what the report stages need beyond it."""

    analysis: Analysis
    tables: CallTables
    bindings: SpecBindings | None
    operations: Mapping[str, Sequence[Operation]]
    success_statuses: Mapping[tuple[str, str], tuple[int, ...]]


def analyze(
    ingest: Ingest,
    *,
    specs: SpecSet | None = None,
    service_map: Mapping[str, str] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> ScanResult:
    """Run calls, roles, graph, operation matching, flows and findings over one ingest."""
    # Decoded once here, so that every stage below reads plain text columns.
    table = plain_strings(ingest.spans)
    tables = build_call_tables(table)
    roles = classify_services(tables, thresholds=thresholds.roles)
    bindings = None
    operations: Mapping[str, Sequence[Operation]] = {}
    match_rate = None
    matches = None
    coverage: tuple[ServiceCoverage, ...] = ()
    if specs is not None and specs.specs:
        bindings = bind_specs(specs.specs, _service_names(table), mapping=service_map)
        operations = index_operations(specs.specs, bindings)
        if operations:
            matches = match_operations(table, operations)
            coverage = measure_coverage(table, matches, operations)
            calls = sum(c.calls for c in coverage)
            match_rate = sum(c.matched for c in coverage) / calls if calls else None
    owners = [r.name for r in roles if r.role == "orchestrator"]
    flows, steps = analyze_flows(
        tables, table, owners=owners, specs=operations or None, matches=matches, thresholds=thresholds.flows
    )
    flows = _document_entries(flows, operations)
    findings = find_findings(
        flows, steps, tables, roles=roles, specs=operations or None, thresholds=thresholds.flows
    ) + find_spec_findings(coverage)
    analysis = Analysis(
        input=_summary(ingest, specs, bindings, match_rate),
        services=roles,
        edges=build_edges(tables),
        flows=tuple(sorted(flows, key=lambda f: (f.owner, f.entry.key, f.id))),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        coverage=tuple(sorted(coverage, key=lambda c: c.service)),
    )
    return ScanResult(analysis, tables, bindings, operations, _success_statuses(tables))


def _document_entries(
    flows: Sequence[Flow], operations: Mapping[str, Sequence[Operation]]
) -> tuple[Flow, ...]:
    """Name each flow's entry after the owner's documented operation, when its spec has one."""
    named = []
    for flow in flows:
        documented = match_operation(flow.entry, operations.get(flow.owner, ()))
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


def _service_names(table: object) -> list[str]:
    """Traced services plus peer names, so a spec of an uninstrumented service can still bind."""
    services = pc.unique(table["service"]).to_pylist()  # type: ignore[index]
    peers = pc.unique(pc.drop_null(table["peer_service"])).to_pylist()  # type: ignore[index]
    return sorted({str(s) for s in services + peers})


def _success_statuses(tables: CallTables) -> dict[tuple[str, str], tuple[int, ...]]:
    """Status codes each (callee, operation) answered successfully with, as observed."""
    calls = tables.calls
    ok = calls[(calls["kind"] == SYNC) & calls["status_code"].notna() & (calls["status_code"] < 400)]
    if ok.empty:
        return {}
    grouped = ok.groupby(["callee", "operation"])["status_code"].unique()
    return {
        (str(callee), str(operation)): tuple(sorted({int(code) for code in np.asarray(codes)}))
        for (callee, operation), codes in grouped.items()
    }


def _summary(
    ingest: Ingest, specs: SpecSet | None, bindings: SpecBindings | None, match_rate: float | None
) -> InputSummary:
    starts = [f.start_ns for f in ingest.files if f.start_ns is not None]
    ends = [f.end_ns for f in ingest.files if f.end_ns is not None]
    skipped = [SkippedInput(s.file, s.position, s.reason, s.count) for s in ingest.skipped]
    if specs is not None:
        skipped += [SkippedInput(p.file, p.pointer or "document", p.message, 1) for p in specs.problems]
    notices = [f"{n.file}: {n.reason} ({n.count} spans)" for n in ingest.notices]
    if bindings is not None:
        notices += [f"{spec}: OpenAPI spec matched no traced service" for spec in bindings.unmatched_specs]
    return InputSummary(
        files=tuple(InputFile(f.file, f.format, f.spans, f.traces) for f in ingest.files),
        spans=ingest.spans.num_rows,
        traces=total_traces(ingest.spans),
        services=total_services(ingest.spans),
        start_ns=min(starts) if starts else None,
        end_ns=max(ends) if ends else None,
        skipped=tuple(sorted(skipped, key=lambda s: (s.file, s.position, s.reason))),
        notices=tuple(notices),
        specs=tuple(spec.source for spec in specs.specs) if specs is not None else (),
        openapi_match_rate=match_rate,
    )
