"""Teams: from the owners file, service.namespace or the Kubernetes namespace; flows' boundaries."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import LandscapeBuilder

from orchscan.analyzer.findings.ownership import SUBJECT, cross_team_orchestration
from orchscan.analyzer.landscape.ownership import NamespacePartial, assign_teams, team_boundaries
from orchscan.analyzer.pipeline import analyze
from orchscan.analyzer.results import Flow, OperationRef, ServiceRole, ServiceTeam, Step
from orchscan.analyzer.thresholds import FlowThresholds
from orchscan.collectors.model.records import Ingest
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.owners import OwnersFile, TeamPatterns, load_owners


def _owners(*teams: tuple[str, tuple[str, ...]]) -> OwnersFile:
    return OwnersFile("owners.yaml", tuple(TeamPatterns(team, patterns) for team, patterns in teams))


def _no_namespaces() -> NamespacePartial:
    return NamespacePartial.of(plain_strings(LandscapeBuilder().table()))


def test_an_exact_name_beats_a_glob_and_a_tighter_glob_beats_a_looser_one() -> None:
    owners = _owners(
        ("platform", ("*-api", "*")), ("payments", ("payment*",)), ("partners", ("partner-api",))
    )
    found = {
        r.service: r for r in assign_teams(["partner-api", "payment-api", "search"], _no_namespaces(), owners)
    }
    assert found["partner-api"] == ServiceTeam(
        "partner-api",
        "partners",
        "owners-file",
        "owners.yaml: team partners lists 'partner-api' (also matched by platform: the more specific "
        "pattern, then the first team, wins)",
    )
    assert found["payment-api"].team == "payments"  # 'payment*' pins 7 characters, '*-api' 4
    assert found["search"].team == "platform"


def test_a_tie_goes_to_the_team_listed_first() -> None:
    owners = _owners(("web", ("shop-*",)), ("growth", ("*-web",)))
    (record,) = assign_teams(["shop-web"], _no_namespaces(), owners)
    assert record.team == "web"


def _landscape() -> LandscapeBuilder:
    land = LandscapeBuilder(
        namespaces={"checkout": "sales", "payment": "payments"},
        k8s_namespaces={"payment": "pay-prod", "shipping": "logistics"},
    )
    for _ in range(3):
        entry = land.trace().request("checkout", "POST /checkout", ms=100)
        entry.call("payment", "POST /charges", at=5, ms=20)
        entry.call("shipping", "POST /shipments", at=30, ms=20)
        entry.call("legacy", "POST /ledger", at=55, ms=20, instrumented=False)
        entry.query("postgresql", "INSERT", at=80, ms=10)  # its own work: a hidden orchestrator
    return land


def test_namespaces_name_teams_the_owners_file_does_not() -> None:
    table = plain_strings(_landscape().table())
    owners = _owners(("checkout-team", ("checkout",)))
    found = {
        r.service: r
        for r in assign_teams(
            ["checkout", "payment", "shipping", "legacy"], NamespacePartial.of(table), owners
        )
    }
    assert found["checkout"].source == "owners-file"
    # service.namespace is preferred over the Kubernetes namespace.
    assert (found["payment"].team, found["payment"].source) == ("payments", "service.namespace")
    assert found["payment"].evidence == "service.namespace 'payments' on 3 spans"
    assert (found["shipping"].team, found["shipping"].source) == ("logistics", "k8s.namespace.name")
    assert "legacy" not in found  # an uninstrumented peer names no namespace


def test_the_namespace_most_spans_carry_wins_and_the_others_are_named() -> None:
    land = LandscapeBuilder(namespaces={"payment": "payments"})
    for _ in range(3):
        land.trace().request("payment", "GET /health", ms=5)
    other = LandscapeBuilder(namespaces={"payment": "legacy"})
    other.trace().request("payment", "GET /health", ms=5)
    parts = [NamespacePartial.of(plain_strings(b.table())) for b in (land, other)]
    (record,) = assign_teams(["payment"], NamespacePartial.merge(parts))
    assert record == ServiceTeam(
        "payment",
        "payments",
        "service.namespace",
        "service.namespace 'payments' on 3 spans (also 'legacy' on 1)",
    )


def test_flows_know_their_teams_and_boundaries_and_the_hidden_orchestrator_is_reported(
    tmp_path: Path,
) -> None:
    land = _landscape()
    path = tmp_path / "owners.yaml"
    path.write_text("sales: [checkout]\nfinance: [legacy]\n")
    result = analyze(Ingest(land.table(), (), (), ()), owners_file=load_owners(path)).analysis
    (flow,) = result.flows
    assert flow.teams == ("finance", "logistics", "payments", "sales")
    assert flow.team_boundaries == (("finance", "sales"), ("logistics", "sales"), ("payments", "sales"))
    assert result.team_of()["legacy"] == "finance"
    role = result.service("checkout")
    assert role is not None and (role.role, role.hidden) == ("orchestrator", True)
    (finding,) = [f for f in result.findings if f.rule == "cross-team-orchestration"]
    assert (finding.service, finding.flow, finding.subject) == ("checkout", flow.id, SUBJECT)
    assert "drives services of 3 other teams (finance, logistics, payments)" in finding.message


def _flow(owner: str, *services: str) -> Flow:
    steps = tuple(
        Step(i, OperationRef(service, "POST /x", "POST"), None, False, 1.0)
        for i, service in enumerate(services, 1)
    )
    return Flow(f"{owner}:POST /go", owner, OperationRef(owner, "POST /go", "POST"), 10, 1.0, False, steps)


def test_boundaries_run_from_each_steps_caller_and_unknown_teams_are_no_boundary() -> None:
    teams = {"a": "red", "b": "blue", "c": "red", "d": "green"}
    flow = _flow("a", "b", "c", "d", "e")
    assert team_boundaries(flow, teams) == (("blue", "red"), ("green", "red"))


@pytest.mark.parametrize(
    ("services", "reported"), [(("b", "d"), True), (("b", "c"), False), (("b", "e"), False)]
)
def test_the_rule_needs_several_other_teams(services: tuple[str, ...], reported: bool) -> None:
    teams = {"a": "red", "b": "blue", "c": "red", "d": "green"}
    role = ServiceRole("a", "orchestrator", True, 2, 0, 10, 3.0, (), ())
    flows = [_flow("a", *services)]
    found = cross_team_orchestration(flows, [role], teams)
    assert bool(found) is reported
    if found:
        assert found[0].subject == SUBJECT and found[0].rule == "cross-team-orchestration"
        assert found[0].evidence[:2] == ("team blue: b", "team green: d")
    explicit = ServiceRole("a", "orchestrator", False, 2, 0, 10, 3.0, (), ())
    assert cross_team_orchestration(flows, [explicit], teams) == []
    assert (
        cross_team_orchestration(flows, [role], teams, thresholds=FlowThresholds(cross_team_min_teams=3))
        == []
    )
