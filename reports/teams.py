"""The per-team view every report shows: a team's services, its flows and who coordinates whom.

Built from an analysis whose services carry their teams (``Analysis.ownership``) and whose flows
carry their team boundaries, so findings.json, the HTML report and summary.md say the same.
A flow *crosses teams* when its steps go between more than one pair of different teams (more
than one team boundary).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchscan.analyzer.landscape.ownership import coordinated_teams
from orchscan.analyzer.results import Analysis, Flow


@dataclass(frozen=True)
class Coordination:
    """An orchestrator driving services of another team: ``services`` are that team's, sorted."""

    orchestrator: str
    orchestrator_team: str
    hidden: bool
    team: str
    services: tuple[str, ...]


@dataclass(frozen=True)
class TeamSummary:
    """One team: its services (sorted), where their teams were read (``sources``), the flows its
    services own, those of them that cross teams, other teams' flows it takes part in, and the
    orchestrators that drive other teams' services (``coordinates``, by its orchestrators;
    ``coordinated_by``, of other teams on its services)."""

    name: str
    services: tuple[str, ...]
    sources: tuple[str, ...]
    flows: tuple[str, ...]
    cross_team_flows: tuple[str, ...]
    part_of_flows: tuple[str, ...]
    coordinates: tuple[Coordination, ...]
    coordinated_by: tuple[Coordination, ...]


def crosses_teams(flow: Flow) -> bool:
    """Whether the flow's steps cross more than one team boundary."""
    return len(flow.team_boundaries) > 1


def coordinations(analysis: Analysis) -> tuple[Coordination, ...]:
    """Every orchestrator's driving of another team's services, by orchestrator and team."""
    teams = analysis.team_of()
    roles = {s.name: s for s in analysis.services}
    found = []
    for owner, by_team in coordinated_teams(analysis.flows, teams).items():
        role = roles.get(owner)
        if role is None or role.role != "orchestrator":
            continue
        found += [
            Coordination(owner, teams[owner], role.hidden, team, services)
            for team, services in by_team.items()
        ]
    return tuple(found)


def team_summaries(analysis: Analysis) -> tuple[TeamSummary, ...]:
    """One summary per known team, by name."""
    teams = analysis.team_of()
    members: dict[str, list[str]] = {}
    sources: dict[str, set[str]] = {}
    for record in analysis.ownership:
        members.setdefault(record.team, []).append(record.service)
        sources.setdefault(record.team, set()).add(record.source)
    links = coordinations(analysis)
    summaries = []
    for name in sorted(members):
        owned = [f for f in analysis.flows if teams.get(f.owner) == name]
        part_of = [
            f.id
            for f in analysis.flows
            if teams.get(f.owner) != name and any(teams.get(s.operation.service) == name for s in f.steps)
        ]
        summaries.append(
            TeamSummary(
                name=name,
                services=tuple(sorted(members[name])),
                sources=tuple(sorted(sources[name])),
                flows=tuple(f.id for f in owned),
                cross_team_flows=tuple(f.id for f in owned if crosses_teams(f)),
                part_of_flows=tuple(part_of),
                coordinates=tuple(c for c in links if c.orchestrator_team == name),
                coordinated_by=tuple(c for c in links if c.team == name),
            )
        )
    return tuple(summaries)
