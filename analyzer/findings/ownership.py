"""The team-boundary rule: a hidden orchestrator that drives several other teams' services.

A business service that also holds a flow's control is a hidden orchestrator
(``hidden-orchestration``). When the steps it drives belong to several other teams, the flow's
control sits in one team's code while its behaviour is spread over others: a change in any of
those teams can break a flow they cannot see, and nobody owns the flow as a whole. That is rule
``cross-team-orchestration``; its subject is fixed, so the finding keeps its fingerprint however
the set of teams changes from scan to scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchscan.analyzer.landscape.ownership import coordinated_teams
from orchscan.analyzer.results import Finding, Flow, ServiceRole
from orchscan.analyzer.thresholds import DEFAULT_FLOW_THRESHOLDS, FlowThresholds

RULE = "cross-team-orchestration"

#: What the finding is about inside the orchestrator: the same for every scan.
SUBJECT = "other teams' services"


def cross_team_orchestration(
    flows: Sequence[Flow],
    roles: Sequence[ServiceRole],
    teams: Mapping[str, str],
    *,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
) -> list[Finding]:
    """One finding per hidden orchestrator whose flows call services of enough other teams."""
    coordinated = coordinated_teams(flows, teams)
    out = []
    for role in sorted(roles, key=lambda r: r.name):
        others = coordinated.get(role.name, {})
        if role.role != "orchestrator" or not role.hidden or len(others) < thresholds.cross_team_min_teams:
            continue
        owned = sorted(
            (f for f in flows if f.owner == role.name and f.kind == "orchestrated" and f.steps),
            key=lambda f: (-f.requests, f.id),
        )
        own = teams[role.name]
        crossing = [
            f for f in owned if any(teams.get(s.operation.service) not in (None, own) for s in f.steps)
        ]
        main = crossing[0]
        out.append(
            Finding(
                rule=RULE,
                severity="medium",
                service=role.name,
                flow=main.id,
                message=(
                    f"{role.name} (team {own}) is a business service that drives services of "
                    f"{len(others)} other teams ({', '.join(others)}) in {len(crossing)} flow(s): "
                    "the flow's control sits in one team, its steps in others"
                ),
                evidence=(
                    *(f"team {team}: {', '.join(services)}" for team, services in others.items()),
                    *(f"flow {f.id}: {f.requests} requests, teams {', '.join(f.teams)}" for f in crossing),
                    f"threshold: services of at least {thresholds.cross_team_min_teams} other teams",
                ),
                recommendation=(
                    "Give the flow an owner: describe it as a workflow all teams review (see the Arazzo "
                    "draft), or move its control into an orchestrator owned by the team responsible for "
                    "the business process, and agree on the contracts of the steps it calls."
                ),
                example_traces=main.example_traces,
                subject=SUBJECT,
            )
        )
    return out
