"""A short Markdown summary of a scan, for pull-request comments and chat.

It carries the headline only (input, top findings, suppressions, orchestrators, flows side by
side, parallelisation, teams, flows with their steps) and points at the HTML report for the
evidence. Span-derived text is escaped so that it
renders as text and cannot inject links, images or HTML into the comment.

Whatever the landscape's size the summary stays under :data:`MAX_CHARS` (a pull-request comment
takes at most 65,536): sections are filled most important first, long texts and step lists are
cut, and a closing line counts what was left out and where to find it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType

from orchscan.analyzer.results import SEVERITIES, Analysis, Flow, ServiceRole, Step
from orchscan.reports.html.figures import describe_fetch
from orchscan.reports.html.view_model import format_counts, format_share, format_window
from orchscan.reports.markdown_architecture import architecture_sections
from orchscan.reports.markdown_text import MAX_TEXT, escape_markdown

__all__ = ["MAX_CHARS", "MAX_TEXT", "NO_DRIFT", "TOP_FINDINGS", "escape_markdown", "render_markdown"]

#: How many findings the summary lists; the rest are counted.
TOP_FINDINGS = 10
#: How many suppressed findings the summary lists with their reasons; the rest are counted.
TOP_SUPPRESSED = 10
#: The summary never exceeds this many characters (GitHub's comment limit is 65,536).
MAX_CHARS = 60_000
#: Steps listed per flow; the rest are counted.
MAX_STEPS = 40

_NO_DRAFTS: Mapping[str, str] = MappingProxyType({})


#: Said of a copy that matches its flow in steps, order and failure handling.
NO_DRIFT = "same steps, order and failure handling"


def render_markdown(
    analysis: Analysis,
    *,
    arazzo: Mapping[str, str] = _NO_DRAFTS,
    generated_at: datetime | None = None,
    changes: Sequence[str] = (),
) -> str:
    """Summarise the scan in Markdown, under :data:`MAX_CHARS`; equal input gives equal text.

    ``changes`` are the lines of a section on what changed since the previous scan, placed
    right after the input line (:mod:`reports.history.markdown` writes them, short by design).
    """
    head = ["# orchscan summary", ""]
    if generated_at:
        head += [f"Generated {generated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.", ""]
    head += [_input_line(analysis), "", *changes]
    summary = _Summary(head)
    summary.add("findings table", _findings(analysis))
    summary.add("suppression list", _suppressions(analysis))
    orchestrators = [s for s in analysis.services if s.role == "orchestrator"]
    summary.add("orchestrators heading", ["## Orchestrators", ""])
    if not orchestrators:
        summary.add("orchestrators heading", ["No orchestrator stood out.", ""])
    for number, service in enumerate(orchestrators, start=1):
        # The list ends with a blank line, so the next heading does not follow its last item.
        summary.add("orchestrators", _orchestrator(service) + ([""] if number == len(orchestrators) else []))
    for section, block in architecture_sections(analysis):
        summary.add(section, block)
    summary.add("flows heading", ["## Flows", ""])
    if not analysis.flows:
        summary.add("flows heading", ["No recurring flow was found.", ""])
    for flow in analysis.flows:
        summary.add("flows", _flow(flow, draft=flow.id in arazzo or flow.owner in arazzo))
    if analysis.observed_flows:
        summary.add("observed flows line", _observed(analysis))
    return summary.text()


class _Summary:
    """Lines added block by block while they fit, counting the blocks that did not."""

    #: Kept free for the closing line that says what was left out.
    RESERVE = 400

    def __init__(self, head: list[str]) -> None:
        self.lines = list(head)
        self.size = sum(len(line) + 1 for line in head)
        self.left_out: Counter[str] = Counter()

    def add(self, kind: str, block: list[str]) -> None:
        size = sum(len(line) + 1 for line in block)
        # Blocks come most important first: once one is left out, so is everything after it.
        if self.left_out or self.size + size > MAX_CHARS - self.RESERVE:
            self.left_out[kind] += 1
            return
        self.lines += block
        self.size += size

    def text(self) -> str:
        lines = self.lines
        if self.left_out:
            counted = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.left_out.items()))
            lines = [
                *lines,
                f"*Left out to keep this summary under {MAX_CHARS:,} characters: {counted}; "
                "report.html and findings.json have everything.*",
            ]
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
    fetched = "".join(
        f" Fetched from {escape_markdown(s.source)}: {escape_markdown(describe_fetch(s))}."
        for s in summary.sources
    )
    fragments = summary.fragments
    lost = (
        f"; {fragments.attached + fragments.kept:,} spans had lost their parent: "
        f"{fragments.attached:,} put back into their request, {fragments.kept:,} kept apart as "
        "fragments (never flows)"
        if fragments.attached or fragments.kept
        else ""
    )
    return (
        f"**Input:** {len(summary.files):,} files ({formats}), {summary.spans:,} spans, "
        f"{summary.traces:,} traces, {summary.services:,} services, "
        f"{escape_markdown(format_window(summary))}; "
        f"{skipped:,} skipped records{match}{lost}.{fetched}"
    )


def _findings(analysis: Analysis) -> list[str]:
    if not analysis.findings:
        return ["## Findings", "", "No findings.", ""]
    counts = Counter(f.severity for f in analysis.findings)
    tally = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    lines = [f"## Findings ({tally})", "", "| Severity | Rule | Service | Finding |", "|---|---|---|---|"]
    for finding in analysis.findings[:TOP_FINDINGS]:
        cases = format_counts(finding.counts)
        severity = f"{finding.severity} ({cases})" if cases else finding.severity
        lines.append(
            f"| {severity} | {escape_markdown(finding.rule)} | {escape_markdown(finding.service)} | "
            f"{escape_markdown(finding.message)} |"
        )
    rest = len(analysis.findings) - TOP_FINDINGS
    if rest > 0:
        lines += ["", f"… and {rest} more in the HTML report."]
    return [*lines, ""]


def _suppressions(analysis: Analysis) -> list[str]:
    """Accepted findings with their reasons, and entries that expired or matched nothing."""
    suppressions = analysis.suppressions
    if not (suppressions.suppressed or suppressions.expired or suppressions.unused):
        return []
    lines = [f"## Suppressed findings ({len(suppressions.suppressed):,})", ""]
    for item in suppressions.suppressed[:TOP_SUPPRESSED]:
        finding, entry = item.finding, item.suppression
        until = f" (until {entry.expires})" if entry.expires else ""
        lines.append(
            f"- {finding.severity} {escape_markdown(finding.rule)} at {escape_markdown(finding.service)}: "
            f"{escape_markdown(finding.message, 120)} — *{escape_markdown(entry.reason)}*{until}"
        )
    rest = len(suppressions.suppressed) - TOP_SUPPRESSED
    if rest > 0:
        lines.append(f"- … and {rest:,} more in findings.json.")
    for entry in suppressions.expired:
        lines.append(
            f"- **expired** on {entry.expires}, its findings count again: {escape_markdown(entry.origin)}"
        )
    for entry in suppressions.unused:
        lines.append(f"- matched no finding: {escape_markdown(entry.origin)}")
    return [*lines, ""]


def _orchestrator(service: ServiceRole) -> list[str]:
    hidden = " (hidden: also does its own business work)" if service.hidden else ""
    reason = f": {escape_markdown(service.evidence[0])}" if service.evidence else ""
    return [
        f"- **{escape_markdown(service.name)}**{hidden}, score {service.score:.2f}, "
        f"fan-out {service.fan_out}{reason}"
    ]


def _observed(analysis: Analysis) -> list[str]:
    """One line on the entries mined but not claimed as flows."""
    verdicts = Counter(flow.verdict for flow in analysis.observed_flows)
    kinds = ", ".join(
        f"{count:,} with too little evidence"
        if verdict == "too-little-evidence"
        else f"{count:,} mixed {'entry' if count == 1 else 'entries'}"
        for verdict, count in sorted(verdicts.items(), reverse=True)
    )
    return [
        f"Observed but not claimed as flows: {len(analysis.observed_flows):,} entries ({kinds}); "
        "report.html lists them with the reasons.",
        "",
    ]


def _flow(flow: Flow, *, draft: bool) -> list[str]:
    kind = ", long-running" if flow.long_running else ""
    events = flow.kind == "choreographed"
    lines = [
        f"### {escape_markdown(flow.owner)}: {escape_markdown(flow.entry.key)}"
        + (" (events)" if events else ""),
        "",
        f"{flow.requests:,} {'event chains' if events else 'requests'}, "
        f"support {format_share(flow.support)}{kind}" + ("; Arazzo draft in the report." if draft else "."),
        "",
        *(f"*{escape_markdown(caveat)}*" for caveat in flow.caveats),
        *([""] if flow.caveats else []),
    ]
    steps = sorted(flow.steps, key=lambda s: s.index)
    lines += [f"{step.index}. {_step(step)}" for step in steps[:MAX_STEPS]]
    if len(steps) > MAX_STEPS:
        lines.append(f"{steps[MAX_STEPS].index}. … and {len(steps) - MAX_STEPS:,} more steps")
    notes: list[str] = []
    for compensation in flow.failure.compensations:
        undone = compensation.undone_step
        notes.append(
            f"- compensation: when step {compensation.failed_step} fails, "
            f"{escape_markdown(compensation.operation.service)} "
            f"{escape_markdown(compensation.operation.key)} undoes "
            + (f"step {undone}" if undone else "the origin's request")
        )
    for gap in flow.failure.uncompensated:
        left = ", ".join(str(i) if i else "0 (the origin's request)" for i in gap.left_in_place)
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
    if step.caller is not None:
        sent = f"message from {step.caller}" if step.kind == "message" else f"called by {step.caller}"
        notes.append(escape_markdown(sent))
    if step.parallel_group is not None:
        notes.append(f"parallel group {step.parallel_group}")
    if step.optional:
        notes.append(f"optional, {format_share(step.support)}")
    if step.retries:
        key = "with" if step.retries.idempotency_key else "without"
        notes.append(f"retried up to {step.retries.max_attempts} attempts, {key} idempotency key")
    return text + (f" ({'; '.join(notes)})" if notes else "")
