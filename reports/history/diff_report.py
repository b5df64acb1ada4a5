"""``orchscan diff`` output: one JSON object for machines, or a readable summary for people."""

from __future__ import annotations

from typing import Any

import orjson

from orchscan.analyzer.changes.diff import FlowChange, OrchestratorChange, ScanDiff
from orchscan.analyzer.changes.snapshot import CompensationState, FindingState, FlowState, ServiceState
from orchscan.reports.history.describe import describe_changes

_SIGNS = {"added": "+", "new": "+", "removed": "-", "resolved": "-", "changed": "~"}


def _pair(old: object, new: object) -> dict[str, object]:
    return {"old": old, "new": new}


def _orchestrator(change: OrchestratorChange) -> dict[str, Any]:
    def side(state: ServiceState | None, attribute: str) -> object:
        return getattr(state, attribute) if state else None

    return {
        "service": change.service,
        "changes": list(change.changes),
        **{
            attribute: _pair(side(change.old, attribute), side(change.new, attribute))
            for attribute in ("role", "hidden", "score")
        },
    }


def _compensation(item: CompensationState) -> dict[str, str]:
    return {
        "failed_step": item.failed_step,
        "undone_step": item.undone_step,
        "service": item.service,
        "operation": item.operation,
    }


def _flow(flow: FlowState) -> dict[str, Any]:
    return {
        "owner": flow.owner,
        "id": flow.id,
        "entry": flow.entry,
        "requests": flow.requests,
        "steps": list(flow.step_keys),
        "compensations": [_compensation(c) for c in flow.compensations],
    }


def _flow_change(change: FlowChange) -> dict[str, Any]:
    reordered = change.reordered
    return {
        "owner": change.owner,
        "id": change.id,
        "entry": change.entry,
        "changes": list(change.changes),
        "steps": {
            "added": list(change.steps_added),
            "removed": list(change.steps_removed),
            "reordered": _pair(list(reordered.old), list(reordered.new)) if reordered else None,
        },
        "retries": {
            "added": list(change.retries_added),
            "removed": list(change.retries_removed),
            "idempotency_key": [{"step": k.step, **_pair(k.old, k.new)} for k in change.idempotency],
        },
        "compensations": {
            "added": [_compensation(c) for c in change.compensations_added],
            "removed": [_compensation(c) for c in change.compensations_removed],
        },
    }


def _finding(finding: FindingState) -> dict[str, Any]:
    return {
        "fingerprint": finding.fingerprint,
        "rule": finding.rule,
        "severity": finding.severity,
        "service": finding.service,
        "flow": finding.flow,
        "subject": finding.subject,
        "message": finding.message,
    }


def diff_document(diff: ScanDiff) -> dict[str, Any]:
    """The diff as plain data: orchestrators, flows and findings, each part sorted."""
    return {
        "orchestrators": {
            "added": [_orchestrator(c) for c in diff.orchestrators_added],
            "removed": [_orchestrator(c) for c in diff.orchestrators_removed],
            "changed": [_orchestrator(c) for c in diff.orchestrators_changed],
        },
        "flows": {
            "added": [_flow(f) for f in diff.flows_added],
            "removed": [_flow(f) for f in diff.flows_removed],
            "changed": [_flow_change(c) for c in diff.flows_changed],
        },
        "findings": {
            "new": [_finding(f) for f in diff.findings_new],
            "resolved": [_finding(f) for f in diff.findings_resolved],
        },
    }


def render_diff_json(diff: ScanDiff) -> str:
    """The diff as one indented JSON object, newline-terminated."""
    return orjson.dumps(diff_document(diff), option=orjson.OPT_INDENT_2).decode() + "\n"


def render_diff_text(diff: ScanDiff, *, old: str, new: str) -> str:
    """A readable summary: a tally per part and one line per change (``+`` added or new, ``-`` gone)."""
    if diff.empty:
        return f"No changes from {old} to {new}.\n"
    lines = [f"Changes from {old} to {new}:"]
    for group in describe_changes(diff):
        lines.append(f"{group.title}: {group.tally}")
        for line in group.lines:
            severity = f"[{line.severity}] " if line.severity else ""
            lines.append(f"  {_SIGNS[line.kind]} {severity}{line.subject}: {line.text}")
            lines += [f"      {detail}" for detail in line.details]
    return "\n".join(lines) + "\n"
