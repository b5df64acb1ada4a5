"""A scan diff in words: one line per change, shared by the terminal, Markdown and HTML renderings."""

from __future__ import annotations

from dataclasses import dataclass

from orchscan.analyzer.changes.diff import FlowChange, OrchestratorChange, ScanDiff
from orchscan.analyzer.changes.snapshot import CompensationState, FindingState, FlowState

#: How many steps a line about an added or removed flow spells out before counting the rest.
SHOWN_STEPS = 8


@dataclass(frozen=True)
class ChangeLine:
    """One change: ``kind`` is added, removed, changed, new or resolved; ``severity`` for findings.

    ``details`` spell out a changed flow's changes one by one; ``text`` names them together.
    """

    kind: str
    subject: str
    text: str
    severity: str | None = None
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeGroup:
    """The changes of one kind of thing (orchestrators, flows, findings), its tally and its lines.

    ``noun`` names one such thing, for text that lists the lines of every group together.
    """

    title: str
    noun: str
    tally: str
    lines: tuple[ChangeLine, ...]


def describe_changes(diff: ScanDiff) -> tuple[ChangeGroup, ...]:
    """Orchestrators, flows and findings, each with a tally and a line per change."""
    return (
        ChangeGroup(
            "Orchestrators",
            "orchestrator",
            _tally(
                ("added", diff.orchestrators_added),
                ("removed", diff.orchestrators_removed),
                ("changed", diff.orchestrators_changed),
            ),
            tuple(
                [_orchestrator("added", c) for c in diff.orchestrators_added]
                + [_orchestrator("removed", c) for c in diff.orchestrators_removed]
                + [_orchestrator("changed", c) for c in diff.orchestrators_changed]
            ),
        ),
        ChangeGroup(
            "Flows",
            "flow",
            _tally(
                ("added", diff.flows_added), ("removed", diff.flows_removed), ("changed", diff.flows_changed)
            ),
            tuple(
                [_flow("added", f) for f in diff.flows_added]
                + [_flow("removed", f) for f in diff.flows_removed]
                + [_flow_change(c) for c in diff.flows_changed]
            ),
        ),
        ChangeGroup(
            "Findings",
            "finding",
            _tally(("new", diff.findings_new), ("resolved", diff.findings_resolved)),
            tuple(
                [_finding("new", f) for f in diff.findings_new]
                + [_finding("resolved", f) for f in diff.findings_resolved]
            ),
        ),
    )


def _tally(*parts: tuple[str, tuple[object, ...]]) -> str:
    return ", ".join(f"{len(items)} {name}" for name, items in parts)


def _article(role: str) -> str:
    return f"{'an' if role[:1] in 'aeiou' else 'a'} {role}"


def _orchestrator(kind: str, change: OrchestratorChange) -> ChangeLine:
    old, new = change.old, change.new
    if kind == "added" and new is not None:
        hidden = " (hidden)" if new.hidden else ""
        before = f"was {_article(old.role)}" if old else "not seen before"
        text = f"now an orchestrator{hidden}, score {new.score:.2f}; {before}"
    elif kind == "removed":
        text = (
            f"no longer an orchestrator, now {_article(new.role)}" if new else "no longer seen in the traces"
        )
    elif new is not None and new.hidden:
        text = "now hidden: it also does its own business work"
    else:
        text = "now explicit: it no longer does business work of its own"
    return ChangeLine(kind, change.service, text)


def _steps(keys: tuple[str, ...]) -> str:
    shown = " → ".join(keys[:SHOWN_STEPS])
    return shown + (f" → … ({len(keys) - SHOWN_STEPS} more)" if len(keys) > SHOWN_STEPS else "")


def _flow(kind: str, flow: FlowState) -> ChangeLine:
    count = len(flow.steps)
    return ChangeLine(
        kind, f"{flow.owner} {flow.entry}", f"{count} step{'s' * (count != 1)}: {_steps(flow.step_keys)}"
    )


def _compensation(item: CompensationState) -> str:
    return f"when {item.failed_step} fails, {item.service} {item.operation} undoes {item.undone_step}"


def _flow_change(change: FlowChange) -> ChangeLine:
    parts = []
    if change.steps_added:
        parts.append(f"steps added: {', '.join(change.steps_added)}")
    if change.steps_removed:
        parts.append(f"steps removed: {', '.join(change.steps_removed)}")
    if change.reordered:
        parts.append(f"steps reordered: {_steps(change.reordered.new)} (was {_steps(change.reordered.old)})")
    if change.retries_added:
        parts.append(f"retries added: {', '.join(change.retries_added)}")
    if change.retries_removed:
        parts.append(f"retries removed: {', '.join(change.retries_removed)}")
    for key in change.idempotency:
        sent = "now sends" if key.new else "no longer sends"
        parts.append(f"{sent} an idempotency key when retrying {key.step}")
    parts += [f"compensation added: {_compensation(c)}" for c in change.compensations_added]
    parts += [f"compensation removed: {_compensation(c)}" for c in change.compensations_removed]
    return ChangeLine(
        "changed", f"{change.owner} {change.entry}", ", ".join(change.changes), details=tuple(parts)
    )


def _finding(kind: str, finding: FindingState) -> ChangeLine:
    return ChangeLine(kind, f"{finding.rule} {finding.service}", finding.message, finding.severity)
