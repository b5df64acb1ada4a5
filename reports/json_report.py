"""``findings.json``: the machine-readable result of a scan, with a format version and a JSON Schema.

The document is deterministic (sorted collections, no timestamps, paths as given) so that it
can be committed and diffed. Its schema is ``reports/schemas/findings.schema.json``; bump
``FORMAT_VERSION`` (semantic versioning: minor for additions, major for changes) with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from orchscan.analyzer.results import (
    Analysis,
    Compensation,
    Duplicate,
    Edge,
    EvidenceCounts,
    Finding,
    Flow,
    FragmentSummary,
    Handoff,
    OperationRef,
    ParallelOpportunity,
    RetryPolicy,
    ServiceCoverage,
    ServiceRole,
    ServiceTeam,
    Step,
    Suppression,
    Suppressions,
    Uncompensated,
    Variant,
)
from orchscan.reports.teams import Coordination, TeamSummary, crosses_teams, team_summaries

#: 1.3: ``suppressions`` (findings a suppression file accepted, expired and unused entries).
#: 1.4: ``input.sources`` (what was fetched from each live source for its time window).
#: 1.5: fragments in the input section; flows' verdict, caveats, split_from and holes;
#: ``observed_flows``; findings' ``counts``; retries' keyed requests; uncompensated failures' step
#: failures and holes.
#: 1.6: flows' ``kind``, ``teams``, ``team_boundaries``, ``crosses_teams`` and
#: ``parallel_opportunities``; steps' ``kind``, ``topic`` and ``caller``; compensations' ``topic``;
#: ``failure.failed_steps``; ``ownership`` and ``teams``.
#: 1.7: flows' ``sample_rate`` (an entry with very many requests is mined from a sample).
FORMAT_VERSION = "1.7"


def _operation(op: OperationRef) -> dict[str, Any]:
    return {
        "service": op.service,
        "operation": op.key,
        "method": op.method,
        "route": op.route,
        "operation_id": op.operation_id,
        "operation_id_inferred": op.operation_id_inferred,
    }


def _retry(policy: RetryPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "requests_with_retries": policy.requests_with_retries,
        "max_attempts": policy.max_attempts,
        "status_codes": list(policy.status_codes),
        "median_delay_ms": round(policy.median_delay_ms, 3),
        "idempotency_key": policy.idempotency_key,
        "keyed_requests": policy.keyed_requests,
    }


def _step(step: Step, owner: str) -> dict[str, Any]:
    return {
        "index": step.index,
        **_operation(step.operation),
        # A message step is a delivery of its topic to the consumer named as its service.
        "kind": step.kind,
        "topic": step.topic,
        "caller": step.caller or owner,
        "parallel_group": step.parallel_group,
        "optional": step.optional,
        "support": round(step.support, 4),
        "p50_ms": round(step.p50_ms, 3),
        "retries": _retry(step.retries),
    }


def _handoff(handoff: Handoff) -> dict[str, Any]:
    return {
        "from_step": handoff.from_step,
        "output": handoff.output,
        "to_step": handoff.to_step,
        "parameter": handoff.parameter,
        "location": handoff.location,
        "confidence": round(handoff.confidence, 3),
        "evidence": list(handoff.evidence),
    }


def _compensation(item: Compensation) -> dict[str, Any]:
    return {
        "failed_step": item.failed_step,
        "undone_step": item.undone_step,
        "operation": _operation(item.operation),
        "topic": item.topic,
        "requests": item.requests,
    }


def _opportunity(item: ParallelOpportunity) -> dict[str, Any]:
    return {
        "steps": list(item.steps),
        "saving_ms": {"p50": round(item.saving_p50_ms, 3), "p95": round(item.saving_p95_ms, 3)},
        "requests": item.requests,
        "evidence": list(item.evidence),
    }


def _uncompensated(item: Uncompensated) -> dict[str, Any]:
    return {
        "failed_step": item.failed_step,
        "left_in_place": list(item.left_in_place),
        "requests": item.requests,
        "example_traces": list(item.example_traces),
        "failures": item.failures,
        "holes": item.holes,
    }


def _variant(variant: Variant) -> dict[str, Any]:
    return {"steps": list(variant.steps), "requests": variant.requests, "support": round(variant.support, 4)}


def _duplicate(duplicate: Duplicate) -> dict[str, Any]:
    return {
        "owner": duplicate.owner,
        "entry": _operation(duplicate.entry),
        "differences": list(duplicate.differences),
    }


def _flow(flow: Flow, arazzo_files: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": flow.id,
        "kind": flow.kind,
        "owner": flow.owner,
        "entry": _operation(flow.entry),
        "verdict": flow.verdict,
        "caveats": list(flow.caveats),
        "split_from": flow.split_from,
        "requests": flow.requests,
        "sample_rate": flow.sample_rate,
        "holes": flow.holes,
        "support": round(flow.support, 4),
        "long_running": flow.long_running,
        "duration_ms": {
            "p50": round(flow.duration_p50_ms, 3),
            "p95": round(flow.duration_p95_ms, 3),
            "max": round(flow.duration_max_ms, 3),
        },
        "inputs": list(flow.inputs),
        "teams": list(flow.teams),
        "team_boundaries": [list(pair) for pair in flow.team_boundaries],
        "crosses_teams": crosses_teams(flow),
        "steps": [_step(step, flow.owner) for step in flow.steps],
        "handoffs": [_handoff(h) for h in flow.handoffs],
        "failure": {
            "retries": [{"step": index, **(_retry(policy) or {})} for index, policy in flow.failure.retries],
            "compensations": [_compensation(c) for c in flow.failure.compensations],
            "uncompensated": [_uncompensated(u) for u in flow.failure.uncompensated],
            "timeouts": list(flow.failure.timeouts),
            "failure_statuses": list(flow.failure.failure_statuses),
            "failed_steps": [{"step": index, "requests": n} for index, n in flow.failure.failed_steps],
        },
        "parallel_opportunities": [_opportunity(o) for o in flow.parallel_opportunities],
        "variants": [_variant(v) for v in flow.variants],
        "duplicates": [_duplicate(d) for d in flow.duplicates],
        "example_traces": list(flow.example_traces),
        "arazzo": arazzo_files.get(flow.id),
    }


def _service(service: ServiceRole) -> dict[str, Any]:
    return {
        "name": service.name,
        "role": service.role,
        "hidden": service.hidden,
        "fan_out": service.fan_out,
        "fan_in": service.fan_in,
        "requests": service.requests,
        "score": round(service.score, 4),
        "error_rate": round(service.error_rate, 4),
        "calls_per_request": round(service.calls_per_request, 4),
        "distinct_callees_per_request": round(service.distinct_callees_per_request, 4),
        "parallel_share": round(service.parallel_share, 4),
        "write_share": round(service.write_share, 4),
        "db_calls_per_request": round(service.db_calls_per_request, 4),
        "self_time_share": round(service.self_time_share, 4),
        "operations": list(service.operations),
        "evidence": list(service.evidence),
        "example_traces": list(service.example_traces),
    }


def _edge(edge: Edge) -> dict[str, Any]:
    return {
        "caller": edge.caller,
        "callee": edge.callee,
        "kind": edge.kind,
        "calls": edge.calls,
        "errors": edge.errors,
        "p50_ms": round(edge.p50_ms, 3),
        "p95_ms": round(edge.p95_ms, 3),
        "example_traces": list(edge.example_traces),
    }


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "fingerprint": finding.fingerprint,
        "rule": finding.rule,
        "severity": finding.severity,
        "service": finding.service,
        "flow": finding.flow,
        "message": finding.message,
        "evidence": list(finding.evidence),
        "recommendation": finding.recommendation,
        "example_traces": list(finding.example_traces),
        "subject": finding.subject,
        "counts": _counts(finding.counts),
    }


def _counts(counts: EvidenceCounts | None) -> dict[str, Any] | None:
    if counts is None:
        return None
    return {"affected": counts.affected, "cases": counts.cases, "explained": counts.explained}


def _fragments(fragments: FragmentSummary) -> dict[str, Any]:
    return {
        "attached": fragments.attached,
        "kept": fragments.kept,
        "calls": fragments.calls,
        "services": [{"service": name, "kept": kept} for name, kept in fragments.services],
    }


def _suppression(entry: Suppression) -> dict[str, Any]:
    return {
        "origin": entry.origin,
        "reason": entry.reason,
        "fingerprint": entry.fingerprint,
        "rule": entry.rule,
        "service": entry.service,
        "expires": entry.expires.isoformat() if entry.expires else None,
    }


def _suppressions(item: Suppressions) -> dict[str, Any]:
    return {
        "suppressed": [
            {"finding": _finding(s.finding), "suppression": _suppression(s.suppression)}
            for s in item.suppressed
        ],
        "expired": [_suppression(e) for e in item.expired],
        "unused": [_suppression(e) for e in item.unused],
    }


def _ownership(item: ServiceTeam) -> dict[str, Any]:
    return {"service": item.service, "team": item.team, "source": item.source, "evidence": item.evidence}


def _coordination(item: Coordination) -> dict[str, Any]:
    return {
        "orchestrator": item.orchestrator,
        "orchestrator_team": item.orchestrator_team,
        "hidden": item.hidden,
        "team": item.team,
        "services": list(item.services),
    }


def _team(item: TeamSummary) -> dict[str, Any]:
    return {
        "name": item.name,
        "services": list(item.services),
        "sources": list(item.sources),
        "flows": list(item.flows),
        "cross_team_flows": list(item.cross_team_flows),
        "part_of_flows": list(item.part_of_flows),
        "coordinates": [_coordination(c) for c in item.coordinates],
        "coordinated_by": [_coordination(c) for c in item.coordinated_by],
    }


def _coverage(item: ServiceCoverage) -> dict[str, Any]:
    return {
        "service": item.service,
        "observed_from": item.observed_from,
        "calls": item.calls,
        "matched": item.matched,
        "match_rate": round(item.match_rate, 4),
        "undocumented": [{"method": u.method, "path": u.path, "count": u.count} for u in item.undocumented],
        "unused": list(item.unseen),
    }


def findings_document(analysis: Analysis, *, arazzo_files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The findings document as plain data; ``arazzo_files`` maps flow ids to draft files."""
    summary = analysis.input
    return {
        "format_version": FORMAT_VERSION,
        "input": {
            "files": [
                {"file": f.file, "format": f.format, "spans": f.spans, "traces": f.traces}
                for f in summary.files
            ],
            "spans": summary.spans,
            "traces": summary.traces,
            "services": summary.services,
            "start_ns": summary.start_ns,
            "end_ns": summary.end_ns,
            "skipped": [
                {"file": s.file, "position": s.position, "reason": s.reason, "count": s.count}
                for s in summary.skipped
            ],
            "notices": list(summary.notices),
            "specs": list(summary.specs),
            "openapi_match_rate": summary.openapi_match_rate,
            "sources": [
                {
                    "source": s.source,
                    "format": s.format,
                    "window_start_ns": s.start_ns,
                    "window_end_ns": s.end_ns,
                    "requests": s.requests,
                    "retries": s.retries,
                    "pages": s.pages,
                    "traces": s.traces,
                    "errors": s.errors,
                    "bytes": s.bytes,
                }
                for s in summary.sources
            ],
            "fragments": _fragments(summary.fragments),
        },
        "services": [_service(s) for s in analysis.services],
        "edges": [_edge(e) for e in analysis.edges],
        "flows": [_flow(f, arazzo_files or {}) for f in analysis.flows],
        "observed_flows": [_flow(f, {}) for f in analysis.observed_flows],
        "findings": [_finding(f) for f in analysis.findings],
        "coverage": [_coverage(c) for c in analysis.coverage],
        "suppressions": _suppressions(analysis.suppressions),
        "ownership": [_ownership(o) for o in analysis.ownership],
        "teams": [_team(t) for t in team_summaries(analysis)],
    }


def render_json(analysis: Analysis, *, arazzo_files: Mapping[str, str] | None = None) -> bytes:
    """``findings.json`` as UTF-8: indented, key order fixed, newline-terminated. Bytes, as they
    are written: decoding and encoding again took a fifth of the rendering at 1M spans."""
    document = findings_document(analysis, arazzo_files=arazzo_files)
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
