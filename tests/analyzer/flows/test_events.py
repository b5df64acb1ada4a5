"""Event-driven flows: message chains mined as flows, where they fail and what compensates."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from factories import LandscapeBuilder, SpanHandle
from saga_factories import SHIPPED_STEPS, SagaMix, build_saga

from orchscan.analyzer.pipeline import analyze
from orchscan.analyzer.reduction import reduce_partition
from orchscan.analyzer.results import Analysis, Flow
from orchscan.analyzer.thresholds import FlowThresholds, Thresholds
from orchscan.collectors.model.records import Ingest
from orchscan.collectors.traces.ingest import check_spans


def _analysis(land: LandscapeBuilder, **flows: int) -> Analysis:
    thresholds = Thresholds(flows=FlowThresholds(**flows))
    return analyze(Ingest(land.table(), (), (), ()), thresholds=thresholds).analysis


def _events(analysis: Analysis) -> dict[str, Flow]:
    return {f.id: f for f in analysis.flows if f.kind == "choreographed"}


def _keys(flow: Flow) -> list[str]:
    return [f"{s.caller} → {s.operation.service} {s.operation.key}" for s in flow.steps]


@pytest.fixture(scope="module")
def saga() -> Analysis:
    return _analysis(build_saga(LandscapeBuilder()))


def test_a_choreographed_saga_is_one_flow_of_its_origin_with_messages_and_the_consumers_calls(
    saga: Analysis,
) -> None:
    (flow,) = _events(saga).values()
    assert (flow.id, flow.owner, flow.entry.key, flow.requests) == (
        "checkout:POST /orders (events)",
        "checkout",
        "POST /orders",
        11,
    )
    assert _keys(flow) == list(SHIPPED_STEPS)
    kinds = [(s.kind, s.topic) for s in flow.steps]
    assert kinds[:3] == [("message", "order-created"), ("message", "order-created"), ("call", None)]
    # analytics and payments receive order-created at once: one parallel block.
    assert [s.parallel_group for s in flow.steps] == [1, 1, None, None, None, None, None]
    # The inventory hop is a trace of its own, linked to payment-completed: the chain goes on.
    assert flow.steps[3].operation.service == "inventory" and flow.steps[3].support == pytest.approx(9 / 11)
    assert [v.requests for v in flow.variants] == [6, 2, 2, 1]
    assert flow.variants[0].steps == SHIPPED_STEPS


def test_where_chains_fail_what_compensates_and_what_is_left(saga: Analysis) -> None:
    (flow,) = _events(saga).values()
    failure = flow.failure
    # A declined card fails the charge (step 3); out of stock is announced by inventory (its step
    # 4); the carrier's 503 fails shipping's call (step 6).
    assert failure.failed_steps == ((3, 2), (4, 2), (6, 1))
    undo = {
        (c.failed_step, c.undone_step, c.operation.service, c.operation.key, c.topic)
        for c in failure.compensations
    }
    assert undo == {
        (3, 0, "kafka", "publish order-cancelled", "order-cancelled"),
        (4, 0, "kafka", "publish order-cancelled", "order-cancelled"),
        (4, 2, "checkout", "consume payment-refunded", "payment-refunded"),
        (4, 3, "psp", "POST /v1/refunds", None),
    }
    (left,) = failure.uncompensated
    # The analytics side branch is not on the failure's path; the origin wrote its order.
    assert (left.failed_step, left.left_in_place, left.requests) == (6, (0, 2, 3, 4, 5), 1)
    (finding,) = [f for f in saga.findings if f.flow == flow.id]
    assert finding.rule == "uncompensated-failure" and finding.severity == "high"
    assert finding.message.startswith(
        "When step 6 (shipping → carrier POST /labels) fails, the event chain checkout starts leaves "
        "the origin's request (POST /orders), step 2 (checkout → payments consume order-created)"
    )
    assert finding.subject == f"{flow.id} > shipping → carrier POST /labels"


def test_an_origin_with_more_chains_than_the_budget_is_mined_from_a_sample_of_its_traces() -> None:
    land = build_saga(LandscapeBuilder(), SagaMix(shipped=60, declined=20, out_of_stock=20, carrier_down=10))
    ingested = Ingest(land.table(), (), (), ())
    (whole,) = _events(analyze(ingested).analysis).values()
    assert (whole.requests, whole.sample_rate) == (110, 1.0)
    # 40 chains fit the landscape stage's budget: the origin's 110 are cut to about that many.
    (sampled,) = _events(analyze(ingested, mined_requests=40).analysis).values()
    assert sampled.sample_rate == pytest.approx(40 / 110)
    assert 20 <= sampled.requests <= 60
    assert any("sample of 36.4%" in caveat for caveat in sampled.caveats)
    assert _keys(sampled)[:3] == list(SHIPPED_STEPS)[:3]
    # The sample is chosen by trace id: the same chains every time.
    (again,) = _events(analyze(ingested, mined_requests=40).analysis).values()
    assert again == sampled


def test_chains_without_failures_have_none() -> None:
    (flow,) = _events(
        _analysis(build_saga(LandscapeBuilder(), SagaMix(declined=0, out_of_stock=0, carrier_down=0)))
    ).values()
    assert (
        flow.failure.failed_steps == ()
        and flow.failure.compensations == ()
        and flow.failure.uncompensated == ()
    )
    assert flow.requests == flow.variants[0].requests == 6


def test_one_delivery_is_a_notification_not_a_flow() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        order = land.trace().request("orders", "POST /orders", ms=30)
        order.publish("order-placed", at=5).consume("email", at=8, ms=5)
    assert _events(_analysis(land)) == {}
    (flow,) = _events(_analysis(land, event_flow_min_steps=1, evidence_min_steps=1)).values()
    assert _keys(flow) == ["orders → email consume order-placed"]
    # Mined with one step, it is still no claim: a flow needs flows.evidence_min_steps steps.
    (observed,) = _analysis(land, event_flow_min_steps=1).observed_flows
    assert (observed.kind, observed.verdict) == ("choreographed", "too-little-evidence")


def test_chains_seen_too_rarely_are_observed_not_claimed() -> None:
    land = LandscapeBuilder()
    for _ in range(2):
        order = land.trace().request("orders", "POST /orders", ms=30)
        order.publish("order-placed", at=5).consume("billing", at=8, ms=10).publish("invoice-issued", at=12)
    analysis = _analysis(land)
    assert _events(analysis) == {}
    (observed,) = analysis.observed_flows
    assert (observed.id, observed.verdict, observed.requests) == (
        "orders:POST /orders (events)",
        "too-little-evidence",
        2,
    )
    assert not any(f.rule == "uncompensated-failure" for f in analysis.findings)


def test_a_message_nobody_consumed_is_a_step_published_to_the_broker() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        order = land.trace().request("orders", "POST /orders", ms=30)
        order.publish("order-placed", at=5).consume("billing", at=8, ms=10).publish("invoice-issued", at=12)
    (flow,) = _events(_analysis(land)).values()
    assert _keys(flow) == ["orders → billing consume order-placed", "billing → kafka publish invoice-issued"]
    assert [(s.kind, s.topic) for s in flow.steps] == [
        ("message", "order-placed"),
        ("message", "invoice-issued"),
    ]


def _relay(land: LandscapeBuilder, hops: int) -> None:
    entry = land.trace().request("source", "POST /start", ms=10)
    producer: SpanHandle = entry.publish("hop-0", at=2)
    for hop in range(1, hops + 1):
        consumer = producer.consume(f"relay-{hop}", at=3 * hop, ms=2)
        producer = consumer.publish(f"hop-{hop}", at=3 * hop + 1)


def test_a_chain_is_followed_at_most_so_many_hops() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        _relay(land, 5)
    (whole,) = _events(_analysis(land)).values()
    assert len(whole.steps) == 6  # five deliveries and the last, unconsumed message
    (cut,) = _events(_analysis(land, event_chain_max_hops=3)).values()
    assert _keys(cut) == [
        "source → relay-1 consume hop-0",
        "relay-1 → relay-2 consume hop-1",
        "relay-2 → relay-3 consume hop-2",
    ]


def test_a_consumers_nested_processing_request_counts_for_its_delivery() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        order = land.trace().request("orders", "POST /orders", ms=50)
        received = order.publish("order-placed", at=5).consume("billing", at=8, ms=30)
        # The library's receive span, then the handler's own consumer span inside it.
        handler = land.add_span(
            order.trace,
            service="billing",
            kind="consumer",
            at=9,
            ms=25,
            parent=received,
            name="process order-placed",
        )
        handler.call("ledger", "POST /entries", at=12, ms=10)
    (flow,) = _events(_analysis(land)).values()
    assert _keys(flow) == ["orders → billing consume order-placed", "billing → ledger POST /entries"]


def test_a_consumer_in_error_fails_its_own_step() -> None:
    land = LandscapeBuilder()
    for i in range(4):
        order = land.trace().request("orders", "POST /orders", ms=50)
        order.query("postgresql", "INSERT", at=1, ms=2)
        billing = order.publish("order-placed", at=5).consume("billing", at=8, ms=30)
        land.add_span(
            order.trace,
            service="shipping",
            kind="consumer",
            at=40,
            ms=5,
            parent=billing.publish("invoiced", at=20),
            error=i == 0,
            name="process invoiced",
        )
    (flow,) = _events(_analysis(land)).values()
    assert flow.failure.failed_steps == ((2, 1),)
    (left,) = flow.failure.uncompensated
    assert left.left_in_place == (0, 1)


def test_the_sample_landscapes_broker_continues_the_order_flow() -> None:
    from paths import SAMPLE

    from orchscan.collectors.traces.ingest import ingest

    analysis = analyze(ingest([SAMPLE / "traces"], jobs=1)).analysis
    (flow,) = _events(analysis).values()
    assert (flow.id, flow.requests, flow.support) == ("orders:POST /orders (events)", 342, 1.0)
    assert _keys(flow) == [f"orders → {c} consume order-placed" for c in ("analytics", "email", "loyalty")]
    assert {(s.kind, s.topic, s.parallel_group) for s in flow.steps} == {("message", "order-placed", 1)}
    assert flow.failure.failed_steps == () and flow.teams == ("shop",) and flow.team_boundaries == ()
    orchestrated = next(f for f in analysis.flows if f.id == "orders:POST /orders")
    # The chain starts after the orchestrated part: the last consumer ends after orders answered.
    assert flow.duration_p50_ms > orchestrated.duration_p50_ms


def test_a_producer_whose_request_was_lost_is_no_chain_origin() -> None:
    land = LandscapeBuilder()
    lost = []
    for i in range(5):
        order = land.trace().request("orders", "POST /orders", ms=30)
        order.publish("order-placed", at=5).consume("billing", at=8, ms=10)
        if i >= 3:
            lost.append(order.span_id)
    spans = land.table()
    spans = spans.filter(pc.invert(pc.is_in(spans["span_id"], pa.array(lost))))
    _, heavy = reduce_partition(check_spans(spans).table)
    origins = heavy.chains.origins
    # The two producers left without their request are their fragments' roots: no origin rows
    # with empty ids or times for them, and the three whole chains keep theirs.
    assert len(origins) == 3 and len(heavy.chains.deliveries) == 5
    assert origins["trace_id"].notna().all() and origins["service"].eq("orders").all()
    starts = pc.min(spans["start_ns"]).as_py()
    assert (origins["start_ns"] >= starts).all() and (origins["end_ns"] >= origins["start_ns"]).all()
