"""summary.md's sections on what architects ask next: flows side by side, parallelism, teams.

Kept beside :mod:`reports.markdown` (which places them after the orchestrators, before the
flows' step lists, within its size budget) so that each section is one function over the
analysis; span-derived text is escaped like everywhere in summary.md.
"""

from __future__ import annotations

from orchscan.analyzer.results import Analysis, Flow, Step
from orchscan.reports.html.comparison_view import failure_summary
from orchscan.reports.html.figures import format_duration
from orchscan.reports.markdown_text import escape_markdown
from orchscan.reports.teams import crosses_teams, team_summaries

#: Rows each table lists (the most telling first); the rest are counted and left to the HTML report.
TABLE_ROWS = 15


def _more(rest: int, what: str) -> list[str]:
    """The closing line of a cut table or list."""
    return ["", f"… and {rest:,} more {what} in the HTML report."] if rest > 0 else []


def architecture_sections(analysis: Analysis) -> list[tuple[str, list[str]]]:
    """The flow-kinds, parallelisation and teams sections, in that order, each named for the
    summary's count of what it had to leave out."""
    return [
        ("flow kinds table", _flow_kinds(analysis)),
        ("parallelisation table", _parallel(analysis)),
        ("teams table", _teams(analysis)),
    ]


def _chain(flow: Flow) -> str:
    steps = sorted(flow.steps, key=lambda s: s.index)
    if flow.kind == "choreographed":
        return " → ".join(
            escape_markdown(
                f"{s.operation.service} ({s.topic})"
                if s.topic
                else f"{s.operation.service} {s.operation.key}"
            )
            for s in steps
        )
    return " → ".join(escape_markdown(s.operation.service) for s in steps)


def _call(service: str, step: Step) -> str:
    return f"{service} {step.operation.key}"


def _flow_kinds(analysis: Analysis) -> list[str]:
    by_entry: dict[tuple[str, str], dict[str, Flow]] = {}
    for flow in analysis.flows:
        by_entry.setdefault((flow.owner, flow.entry.key), {})[flow.kind] = flow
    rows = [(key, kinds) for key, kinds in sorted(by_entry.items()) if "choreographed" in kinds]
    lines = ["## Orchestrated and event-driven flows", ""]
    if not rows:
        return [*lines, "No flow continues through messaging: every flow found is orchestrated.", ""]
    lines += [
        "| Service | Entry | Orchestrated (calls in turn) | Event-driven (reactions to events) |",
        "|---|---|---|---|",
    ]
    # The longest chains first: they are where choreography does the most.
    rows.sort(key=lambda row: (-row[1]["choreographed"].requests, row[0]))
    for (owner, entry), kinds in rows[:TABLE_ROWS]:
        cells = []
        for kind in ("orchestrated", "choreographed"):
            found = kinds.get(kind)
            cells.append(
                "none"
                if found is None
                else f"{_chain(found)}; p50 {format_duration(found.duration_p50_ms)}; "
                + escape_markdown(failure_summary(found))
            )
        lines.append(f"| {escape_markdown(owner)} | {escape_markdown(entry)} | {cells[0]} | {cells[1]} |")
    return [*lines, *_more(len(rows) - TABLE_ROWS, "entries"), ""]


def _parallel(analysis: Analysis) -> list[str]:
    # The largest savings first.
    found = sorted(
        ((flow, o) for flow in analysis.flows for o in flow.parallel_opportunities),
        key=lambda pair: (-pair[1].saving_p50_ms, pair[0].id, pair[1].steps),
    )
    lines = ["## Parallelisation opportunities", ""]
    if not found:
        return [*lines, "No sequential steps were found that nothing orders.", ""]
    lines += ["| Flow | Steps that could run together | Saving p50 | Saving p95 |", "|---|---|---|---|"]
    for flow, opportunity in found[:TABLE_ROWS]:
        by_index = {s.index: s for s in flow.steps}
        steps = ", ".join(
            escape_markdown(f"{i}. {by_index[i].operation.service} {by_index[i].operation.key}")
            for i in opportunity.steps
            if i in by_index
        )
        lines.append(
            f"| {escape_markdown(flow.owner)}: {escape_markdown(flow.entry.key)} | {steps} | "
            f"{format_duration(opportunity.saving_p50_ms)} | {format_duration(opportunity.saving_p95_ms)} |"
        )
    return [*lines, *_more(len(found) - TABLE_ROWS, "opportunities"), ""]


def _teams(analysis: Analysis) -> list[str]:
    summaries = team_summaries(analysis)
    lines = ["## Teams", ""]
    if not summaries:
        return [*lines, "No service's team is known (give --owners, or set service.namespace).", ""]
    lines += [
        "| Team | Services | Flows owned | Crossing teams | Its orchestrators drive |",
        "|---|---|---|---|---|",
    ]
    # The teams whose orchestrators drive the most other teams first.
    ranked = sorted(summaries, key=lambda t: (-len(t.coordinates), -len(t.flows), t.name))
    for team in ranked[:TABLE_ROWS]:
        driven = "; ".join(f"{c.orchestrator} → {c.team} ({', '.join(c.services)})" for c in team.coordinates)
        lines.append(
            f"| {escape_markdown(team.name)} | {escape_markdown(', '.join(team.services))} | "
            f"{len(team.flows)} | {len(team.cross_team_flows)} | {escape_markdown(driven) or '—'} |"
        )
    lines += _more(len(ranked) - TABLE_ROWS, "teams")
    crossing = [flow for flow in analysis.flows if crosses_teams(flow)]
    if crossing:
        lines += ["", f"Flows crossing more than one team boundary ({len(crossing):,}):", ""]
        lines += [
            f"- {escape_markdown(flow.owner)}: {escape_markdown(flow.entry.key)}"
            + (" (events)" if flow.kind == "choreographed" else "")
            + f", teams {escape_markdown(', '.join(flow.teams))}"
            for flow in crossing[:TABLE_ROWS]
        ]
        lines += _more(len(crossing) - TABLE_ROWS, "flows")
    return [*lines, ""]
