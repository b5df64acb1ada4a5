"""Plain data for the report's "Teams" section: who owns what, and where flows cross teams.

One row per team (its services, the flows they own, which of those cross more than one team
boundary, other teams' flows it takes part in, and the orchestrators that drive services across
team lines), then the flows that cross teams and the orchestrators that coordinate other teams'
services, for the reviewer who asks "who would have to agree to change this?".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchscan.analyzer.results import Analysis, Flow
from orchscan.reports.html.cells import ListCell, list_cell
from orchscan.reports.teams import Coordination, crosses_teams, team_summaries


@dataclass(frozen=True)
class FlowLink:
    """A flow named for a reader (``owner: entry``, event-driven flows marked) and its anchor."""

    label: str
    anchor: str


@dataclass(frozen=True)
class TeamRow:
    """One team as the teams table shows it."""

    name: str
    services: ListCell
    sources: str
    flows: tuple[FlowLink, ...]
    cross_team: tuple[FlowLink, ...]
    part_of: tuple[FlowLink, ...]
    coordinates: tuple[str, ...]
    coordinated_by: tuple[str, ...]


@dataclass(frozen=True)
class CrossingFlow:
    """A flow whose steps cross more than one team boundary, with the boundaries."""

    flow: FlowLink
    teams: str
    boundaries: str


@dataclass(frozen=True)
class TeamsView:
    """The section: ``known`` is false when no service's team could be read."""

    known: bool
    rows: tuple[TeamRow, ...]
    unowned: ListCell
    crossing: tuple[CrossingFlow, ...]
    coordinators: tuple[str, ...]


def flow_label(flow: Flow) -> str:
    """How the report names a flow in lists: its owner and entry, event-driven ones marked."""
    return f"{flow.owner}: {flow.entry.key}" + (" (events)" if flow.kind == "choreographed" else "")


def _coordination(item: Coordination) -> str:
    hidden = ", hidden orchestrator" if item.hidden else ""
    return (
        f"{item.orchestrator} (team {item.orchestrator_team}{hidden}) drives "
        + ", ".join(item.services)
        + f" of team {item.team}"
    )


def build_teams(analysis: Analysis, flow_anchors: Mapping[str, str]) -> TeamsView:
    """The teams section of one analysis."""
    flows = {flow.id: flow for flow in analysis.flows}

    def links(ids: tuple[str, ...]) -> tuple[FlowLink, ...]:
        return tuple(FlowLink(flow_label(flows[i]), flow_anchors[i]) for i in ids)

    summaries = team_summaries(analysis)
    rows = tuple(
        TeamRow(
            name=team.name,
            services=list_cell(team.services),
            sources=", ".join(team.sources),
            flows=links(team.flows),
            cross_team=links(team.cross_team_flows),
            part_of=links(team.part_of_flows),
            coordinates=tuple(_coordination(c) for c in team.coordinates),
            coordinated_by=tuple(_coordination(c) for c in team.coordinated_by),
        )
        for team in summaries
    )
    owned = analysis.team_of()
    crossing = tuple(
        CrossingFlow(
            FlowLink(flow_label(flow), flow_anchors[flow.id]),
            ", ".join(flow.teams),
            ", ".join(f"{a} ↔ {b}" for a, b in flow.team_boundaries),
        )
        for flow in analysis.flows
        if crosses_teams(flow)
    )
    coordinators = tuple(_coordination(c) for team in summaries for c in team.coordinates)
    return TeamsView(
        known=bool(summaries),
        rows=rows,
        unowned=list_cell([s.name for s in analysis.services if s.name not in owned]),
        crossing=crossing,
        coordinators=coordinators,
    )
