"""Hub ranking and role classification on every pattern, on real traces, and under invariants."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from factories import SHOP_ROLES, LandscapeBuilder, ShopMix, build_shop, rename_services, with_copies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scans import behaviour_of, roles_of

from orchscan.analyzer.landscape.roles import find_hubs
from orchscan.analyzer.requests.calls import build_call_tables
from orchscan.analyzer.results import ROLES, ServiceRole
from orchscan.analyzer.thresholds import RoleThresholds
from orchscan.collectors.traces.ingest import ingest

SKEW = {"shipping": 4.0, "inventory": -3.0, "cart": 2.5}


def _roles(table: pa.Table, **thresholds: float) -> dict[str, ServiceRole]:
    roles = roles_of(build_call_tables(table), thresholds=RoleThresholds(**thresholds))
    return {role.name: role for role in roles}


def _shop(mix: ShopMix | None = None) -> pa.Table:
    return build_shop(LandscapeBuilder(skew_ms=SKEW), mix or ShopMix()).table()


def test_every_pattern_gets_its_role() -> None:
    roles = _roles(_shop())
    assert {name: (r.role, r.hidden) for name, r in roles.items()} == SHOP_ROLES
    assert all(r.role in ROLES for r in roles.values())


def test_hidden_orchestrator_evidence_names_callees_order_writes_and_own_work() -> None:
    orders = _roles(_shop())["orders"]
    assert orders.evidence[0] == (
        "per POST /orders request it calls 4 services (inventory, payment, shipping, notification) "
        "in 4 calls, 100% of them one after another; 4 of 4 write; "
        "2.0 own database calls per request (6 requests)"
    )
    assert orders.evidence[1].startswith(
        "hidden orchestration: besides coordinating it does its own work (2.0"
    )
    assert orders.operations == ("POST /orders",)
    assert (orders.distinct_callees_per_request, orders.write_share, orders.parallel_share) == (4.0, 1.0, 0.0)
    assert orders.db_calls_per_request == 2.0
    assert (orders.fan_out, orders.fan_in) == (4, 1)


def test_explicit_orchestrator_is_a_thin_layer() -> None:
    checkout = _roles(_shop())["checkout"]
    assert checkout.evidence[0].startswith(
        "per POST /checkout request it calls 3 services (cart, pricing, orders)"
    )
    assert "1 RPC calls of unknown effect" in checkout.evidence[0]
    assert checkout.evidence[1].startswith("explicit coordination layer")


def test_gateway_composer_choreography_infrastructure_and_external_evidence() -> None:
    roles = _roles(_shop())
    assert roles["gateway"].evidence[0] == (
        "per request it calls 1 service, but 5 distinct services in all "
        "(cart, catalogue, pricing, recommendations, users); 15 of 15 requests forwarded"
    )
    assert "0% of them one after another; 0 of 4 write" in roles["bff"].evidence[0]
    assert roles["bff"].parallel_share == 1.0
    assert roles["procurement"].evidence[0] == (
        "3 of 3 requests take part in events; 3 message deliveries consumed; "
        "1.0 messages published per request to purchase-ordered"
    )
    assert roles["legacy-mainframe"].evidence == (
        "only called as a store, cache or broker (6 calls from inventory) and calls nobody",
    )
    assert roles["stripe"].evidence == (
        "emitted no spans: 5 calls from payment reached it with no instrumented answer",
    )


def test_per_request_fan_out_beats_aggregate_fan_out() -> None:
    # The gateway has the widest aggregate fan-out of all (Bogner's ADS would rank it first) and
    # the orchestrators are called by at most one service (Arcan's hub rule would miss them).
    services = behaviour_of(build_call_tables(_shop()))
    widest = max(services, key=lambda s: len(s.callees))
    assert widest.name == "gateway"
    hubs = find_hubs(services)
    assert [hub.service for hub in hubs[:3]] == ["bff", "orders", "checkout"]
    by_name = {hub.service: hub for hub in hubs}
    assert by_name["orders"].operation == "POST /orders"
    assert by_name["gateway"].score < by_name["checkout"].score
    assert (by_name["orders"].median, by_name["orders"].spread) == (0.0, 0.5)


def test_conspicuous_adapts_to_the_landscape() -> None:
    # Where every service orchestrates three others per request, three is not conspicuous.
    land = LandscapeBuilder()
    for hub in ("a", "b", "c", "d", "e"):
        trace = land.trace().request(hub, "POST /x", ms=100)
        for i, callee in enumerate(("p", "q", "r")):
            trace.call(callee, "POST /y", at=1 + 20 * i, ms=15)
    roles = _roles(land.table())
    assert {roles[h].role for h in "abcde"} == {"service"}
    assert {roles[h].score for h in "abcde"} == {0.0}


def test_thresholds_are_configurable_from_a_flat_mapping() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(RoleThresholds)}
    assert all(isinstance(value, (int, float)) for value in fields.values())
    strict = _roles(_shop(), **{"orchestrator_min_callees": 5.0, "hidden_min_db_calls": 9.0})
    assert strict["orders"].role != "orchestrator"
    assert _roles(_shop(), hidden_min_db_calls=9.0, hidden_min_self_time=0.9)["orders"].hidden is False


def test_roles_are_sorted_by_score_then_name() -> None:
    roles = roles_of(build_call_tables(_shop()))
    assert [(-r.score, r.name) for r in roles] == sorted((-r.score, r.name) for r in roles)


def test_hotrod_frontend_is_the_top_orchestrator(fixtures: Path) -> None:
    spans = ingest([fixtures / "hotrod" / "traces"], jobs=1).spans
    roles = roles_of(build_call_tables(spans))
    assert roles[0].name == "frontend" and roles[0].role == "orchestrator"
    assert (
        roles[0]
        .evidence[0]
        .startswith("per GET /dispatch request it calls 3 services (customer, driver, route)")
    )
    by_name = {r.name: r for r in roles}
    assert by_name["customer"].role != "orchestrator" and by_name["driver"].role != "orchestrator"
    assert (by_name["mysql"].role, by_name["redis-manual"].role) == ("infrastructure", "infrastructure")
    assert [r.name for r in roles if r.role == "orchestrator"] == ["frontend"]


def test_petclinic_api_gateway_is_not_an_orchestrator(fixtures: Path) -> None:
    spans = ingest([fixtures / "spring-petclinic" / "traces"], jobs=1).spans
    roles = {r.name: r for r in roles_of(build_call_tables(spans))}
    assert roles["api-gateway"].role != "orchestrator"
    assert not [r for r in roles.values() if r.role == "orchestrator"]


def _all_names(table: pa.Table) -> list[str]:
    names: set[str] = set()
    for column in ("service", "peer_service", "server_address"):
        names |= {v for v in pc.unique(table[column]).to_pylist() if v is not None}
    return sorted(names)


mixes = st.builds(
    ShopMix,
    orders=st.integers(1, 3),
    order_lookups=st.integers(0, 3),
    checkouts=st.integers(1, 2),
    routed=st.integers(1, 2),
    homes=st.integers(1, 2),
    restocks=st.integers(1, 2),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=mixes, seed=st.randoms(use_true_random=False))
def test_renaming_services_changes_no_role(mix: ShopMix, seed: object) -> None:
    table = _shop(mix)
    names = _all_names(table)
    shuffled = list(names)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    mapping = {old: f"svc-{new}" for old, new in zip(names, shuffled, strict=True)}
    before = {name: (r.role, r.hidden) for name, r in _roles(table).items()}
    after = {name: (r.role, r.hidden) for name, r in _roles(rename_services(table, mapping)).items()}
    # Broker names are the messaging system's, not a service's: they stay.
    assert after == {mapping.get(name, name): verdict for name, verdict in before.items()}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=mixes, copies=st.integers(2, 3))
def test_duplicating_every_trace_changes_no_role(mix: ShopMix, copies: int) -> None:
    # Roles follow shares, not sizes; only the least evidence a claim needs is a size (below).
    table = _shop(mix)
    once = _roles(table, evidence_min_requests=1)
    repeated = _roles(with_copies(table, copies), evidence_min_requests=1)
    assert {n: (r.role, r.hidden, r.score) for n, r in repeated.items()} == {
        n: (r.role, r.hidden, r.score) for n, r in once.items()
    }
    assert repeated["orders"].requests == copies * once["orders"].requests


def test_a_traffic_source_is_external_not_a_gateway() -> None:
    land = build_shop(LandscapeBuilder())
    for backend in ("gateway", "bff", "checkout", "orders"):
        for _ in range(3):
            land.trace().background("loadgen", "run").call(backend, "GET /", at=1, ms=10)
    roles = _roles(land.table())
    assert roles["loadgen"].role == "external"
    assert roles["loadgen"].evidence[0].startswith("a traffic source outside the landscape: its 12 requests")
    assert roles["orders"].role == "orchestrator"


def _coordinating(land: LandscapeBuilder, service: str, operation: str, callees: list[str]) -> None:
    """One request of ``service`` writing to ``callees`` one after another."""
    entry = land.trace().request(service, operation, ms=200)
    for i, callee in enumerate(callees):
        entry.call(callee, "POST /items", at=5 + 40 * i, ms=30)


def test_one_request_makes_no_orchestrator() -> None:
    land = build_shop(LandscapeBuilder())
    # An older capture mixed in: a service seen once, calling two others.
    _coordinating(land, "booking", "POST /bookings", ["seats", "payment"])
    roles = _roles(land.table())
    assert roles["booking"].role == "service"
    assert roles["booking"].evidence[-1] == (
        "too little evidence to judge POST /bookings: it calls 2 services per request, "
        "but was seen in only 1 request (3 needed)"
    )
    assert _roles(land.table(), evidence_min_requests=1)["booking"].role == "orchestrator"


def _front_end(land: LandscapeBuilder, *calls: tuple[str, str]) -> None:
    """A request the front end records as "HTTP request": no route, no path."""
    entry = land.trace().request("web", "HTTP request", ms=200)
    for i, (callee, operation) in enumerate(calls):
        entry.call(callee, operation, at=5 + 40 * i, ms=30)


def test_a_route_less_entry_hiding_several_request_types_claims_no_coordination() -> None:
    land = build_shop(LandscapeBuilder())
    for _ in range(4):
        _front_end(
            land,
            ("catalogue", "GET /items"),
            ("recommendations", "GET /recommendations"),
            ("users", "GET /users/{id}"),
        )
        _front_end(land, ("cart", "GET /cart"), ("catalogue", "GET /items"))
        _front_end(land, ("cart", "POST /cart/items"), ("pricing", "POST /quotes"))
        _front_end(land, ("orders", "POST /orders"), ("users", "GET /users/{id}"))
    # Taken as one operation, it would be an orchestrator: 2.25 services per request, in turn, writing.
    assert _roles(land.table(), core_callee_share=0.0)["web"].role == "orchestrator"
    web = _roles(land.table())["web"]
    assert web.role == "service"
    assert web.evidence[-1].startswith(
        "HTTP request is a mixed entry: its requests carry no route, path or RPC method, and no service "
        "is called by more than 50% of those that call any"
    )


def test_a_route_less_entry_of_one_request_type_still_coordinates() -> None:
    land = build_shop(LandscapeBuilder())
    for _ in range(4):
        _front_end(land, ("cart", "POST /carts"), ("pricing", "POST /quotes"), ("orders", "POST /orders"))
    assert _roles(land.table())["web"].role == "orchestrator"
