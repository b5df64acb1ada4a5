"""A short Markdown summary of a scan, for pull-request comments and chat.

It carries the headline only (input, top findings, orchestrators, flows with their steps) and
points at the HTML report for the evidence. Span-derived text is escaped so that it renders as
text and cannot inject links, images or HTML into the comment.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType

from orchscan.analyzer.results import SEVERITIES, Analysis, Flow, Step
from orchscan.reports.html.view_model import format_share, format_window
from orchscan.reports.untrusted import printable

#: How many findings the summary lists; the rest are counted.
TOP_FINDINGS = 10

_NO_DRAFTS: Mapping[str, str] = MappingProxyType({})
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~&])")


def escape_markdown(text: str) -> str:
    """Backslash-escape the characters that start Markdown or HTML constructs; fold line breaks.

    Control and bidi characters left after folding are written as visible escapes.
    """
    return _SPECIAL.sub(r"\\\1", printable(" ".join(text.split())))


#: Said of a copy that matches its flow in steps, order and failure handling.
NO_DRIFT = "same steps, order and failure handling"


def render_markdown(
    analysis: Analysis,
    *,
    arazzo: Mapping[str, str] = _NO_DRAFTS,
    generated_at: datetime | None = None,
    changes: Sequence[str] = (),
) -> str:
    """Summarise the scan in Markdown; equal input gives equal text.

    ``changes`` are the lines of a section on what changed since the previous scan, placed
    right after the input line (:mod:`reports.history.markdown` writes them).
    """
    lines = ["# orchscan summary", ""]
    if generated_at:
        lines += [f"Generated {generated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.", ""]
    lines += [_input_line(analysis), "", *changes]
    lines += _findings(analysis)
    lines += _orchestrators(analysis)
    lines += _flows(analysis, arazzo)
    return "\n".join(lines).rstrip() + "\n"


def _input_line(analysis: Analysis) -> str:
    summary = analysis.input
    formats = ", ".join(sorted({f.format for f in summary.files})) or "no format"
    skipped = sum(s.count for s in summary.skipped)
    match = (
        ""
        if summary.openapi_match_rate is None
        else f", OpenAPI match rate {format_share(summary.openapi_match_rate)}"
    )
    return (
        f"**Input:** {len(summary.files):,} files ({formats}), {summary.spans:,} spans, "
        f"{summary.traces:,} traces, {summary.services:,} services, "
        f"{escape_markdown(format_window(summary))}; "
        f"{skipped:,} skipped records{match}."
    )


def _findings(analysis: Analysis) -> list[str]:
    if not analysis.findings:
        return ["## Findings", "", "No findings.", ""]
    counts = Counter(f.severity for f in analysis.findings)
    tally = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    lines = [f"## Findings ({tally})", "", "| Severity | Rule | Service | Finding |", "|---|---|---|---|"]
    for finding in analysis.findings[:TOP_FINDINGS]:
        lines.append(
            f"| {finding.severity} | {escape_markdown(finding.rule)} | {escape_markdown(finding.service)} | "
            f"{escape_markdown(finding.message)} |"
        )
    rest = len(analysis.findings) - TOP_FINDINGS
    if rest > 0:
        lines += ["", f"… and {rest} more in the HTML report."]
    return [*lines, ""]


def _orchestrators(analysis: Analysis) -> list[str]:
    orchestrators = [s for s in analysis.services if s.role == "orchestrator"]
    lines = ["## Orchestrators", ""]
    if not orchestrators:
        return [*lines, "No orchestrator stood out.", ""]
    for service in orchestrators:
        hidden = " (hidden: also does its own business work)" if service.hidden else ""
        reason = f": {escape_markdown(service.evidence[0])}" if service.evidence else ""
        lines.append(
            f"- **{escape_markdown(service.name)}**{hidden}, score {service.score:.2f}, "
            f"fan-out {service.fan_out}{reason}"
        )
    return [*lines, ""]


def _flows(analysis: Analysis, arazzo: Mapping[str, str]) -> list[str]:
    lines = ["## Flows", ""]
    if not analysis.flows:
        return [*lines, "No recurring flow was found.", ""]
    for flow in analysis.flows:
        lines += _flow(flow, draft=flow.id in arazzo or flow.owner in arazzo)
    return lines


def _flow(flow: Flow, *, draft: bool) -> list[str]:
    kind = ", long-running" if flow.long_running else ""
    lines = [
        f"### {escape_markdown(flow.owner)}: {escape_markdown(flow.entry.key)}",
        "",
        f"{flow.requests:,} requests, support {format_share(flow.support)}{kind}"
        + ("; Arazzo draft in the report." if draft else "."),
        "",
    ]
    lines += [f"{step.index}. {_step(step)}" for step in sorted(flow.steps, key=lambda s: s.index)]
    notes: list[str] = []
    for compensation in flow.failure.compensations:
        notes.append(
            f"- compensation: when step {compensation.failed_step} fails, "
            f"{escape_markdown(compensation.operation.service)} "
            f"{escape_markdown(compensation.operation.key)} undoes step {compensation.undone_step}"
        )
    for gap in flow.failure.uncompensated:
        left = ", ".join(str(i) for i in gap.left_in_place)
        notes.append(f"- **uncompensated**: when step {gap.failed_step} fails, steps {left} stay in place")
    for duplicate in flow.duplicates:
        notes.append(
            f"- duplicated by **{escape_markdown(duplicate.owner)}** "
            f"({escape_markdown(duplicate.entry.key)}): "
            + ("; ".join(escape_markdown(d) for d in duplicate.differences) or NO_DRIFT)
        )
    # A blank line ends the numbered steps, so the notes render as their own list.
    return [*lines, *(["", *notes] if notes else []), ""]


def _step(step: Step) -> str:
    text = f"{escape_markdown(step.operation.key)} → {escape_markdown(step.operation.service)}"
    notes = []
    if step.parallel_group is not None:
        notes.append(f"parallel group {step.parallel_group}")
    if step.optional:
        notes.append(f"optional, {format_share(step.support)}")
    if step.retries:
        key = "with" if step.retries.idempotency_key else "without"
        notes.append(f"retried up to {step.retries.max_attempts} attempts, {key} idempotency key")
    return text + (f" ({'; '.join(notes)})" if notes else "")
