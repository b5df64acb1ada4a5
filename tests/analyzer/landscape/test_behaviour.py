"""Per-request behaviour: order, overlap, reads and writes, own work, missing spans."""

from __future__ import annotations

import pyarrow.compute as pc
from factories import LandscapeBuilder, parallel, sequential
from scans import behaviour_of

from orchscan.analyzer.landscape.behaviour import (
    Behaviour,
    BehaviourPartial,
    ServiceBehaviour,
    measure_behaviour,
    measure_requests,
    summarise_behaviour,
)
from orchscan.analyzer.requests.calls import build_call_tables

THREE = [("a", "GET /a"), ("b", "POST /b"), ("c", "PUT /c")]


def _service(land: LandscapeBuilder, name: str, *, tolerance_ms: float = 1.0) -> ServiceBehaviour:
    services = behaviour_of(build_call_tables(land.table()), tolerance_ms=tolerance_ms)
    return next(s for s in services if s.name == name)


def _operation(land: LandscapeBuilder, name: str, operation: str) -> Behaviour:
    return next(op for op in _service(land, name).operations if op.operation == operation)


def test_sequential_calls_are_one_stage_each() -> None:
    land = LandscapeBuilder()
    land.trace().request("hub", "POST /x").calls(THREE, sequential(5, 10, 20, 10))
    op = _operation(land, "hub", "POST /x")
    assert (op.distinct_callees_per_request, op.sequential_share, op.overlapping_call_share) == (
        3.0,
        1.0,
        0.0,
    )
    assert op.callees == ("a", "b", "c")
    assert (op.reads, op.writes, op.unknown_methods) == (1, 2, 0)


def test_parallel_calls_share_one_stage() -> None:
    land = LandscapeBuilder()
    land.trace().request("hub", "GET /x").calls(THREE, parallel(5, 10, 20, 10))
    op = _operation(land, "hub", "GET /x")
    assert (op.sequential_share, op.overlapping_call_share) == (0.0, 1.0)


def test_first_call_then_two_in_parallel_is_half_sequential() -> None:
    land = LandscapeBuilder()
    hub = land.trace().request("hub", "GET /x")
    hub.call("a", "GET /a", at=1, ms=10)
    hub.calls(THREE[1:], parallel(12, 10, 10))
    op = _operation(land, "hub", "GET /x")
    assert op.sequential_share == 0.5
    assert op.overlapping_call_share == 2 / 3


def test_repeated_callee_in_parallel_keeps_distinct_callees_sequential() -> None:
    # HotROD's shape: one lookup, then the same service many times in parallel.
    land = LandscapeBuilder()
    hub = land.trace().request("hub", "GET /x", ms=200)
    hub.call("a", "GET /a", at=1, ms=10)
    hub.calls([("b", "GET /b")] * 6, parallel(12, *[30] * 6))
    op = _operation(land, "hub", "GET /x")
    assert (op.distinct_callees_per_request, op.calls_per_request, op.sequential_share) == (2.0, 7.0, 1.0)
    assert op.overlapping_call_share == 6 / 7


def test_overlap_below_the_skew_tolerance_is_still_sequential() -> None:
    land = LandscapeBuilder()
    hub = land.trace().request("hub", "GET /x")
    hub.call("a", "GET /a", at=1, ms=10)
    hub.call("b", "GET /b", at=10.4, ms=10)  # starts 0.6 ms before a ends
    assert _service(land, "hub").overall.sequential_share == 1.0
    assert _service(land, "hub", tolerance_ms=0.0).overall.sequential_share == 0.0


def test_self_time_is_duration_minus_union_of_calls_clipped_to_the_request() -> None:
    land = LandscapeBuilder()
    hub = land.trace().request("hub", "GET /x", ms=100)
    hub.call("a", "GET /a", at=10, ms=20)  # 10-30
    hub.call("b", "GET /b", at=20, ms=30)  # 20-50, union so far 40 ms
    hub.query("postgresql", "SELECT", at=60, ms=10)  # 60-70
    hub.call("c", "GET /c", at=95, ms=20)  # runs past the end (skew): 5 ms count
    table = build_call_tables(land.table())
    row = measure_requests(table).set_index("service").loc["hub"]
    assert row["duration_ns"] == 100_000_000
    assert row["self_ns"] == 45_000_000
    assert _service(land, "hub").overall.self_time_share == 0.45


def test_own_work_counts_database_calls_and_publishes() -> None:
    land = LandscapeBuilder()
    for _ in range(2):
        hub = land.trace().request("hub", "POST /x")
        hub.query("postgresql", "INSERT", at=1, ms=2)
        hub.query("redis", "SET", at=4, ms=1)
        hub.publish("x-created", at=6).consume("listener", at=10)
    service = _service(land, "hub")
    assert service.overall.db_calls_per_request == 2.0
    assert service.overall.publishes_per_request == 1.0
    assert service.overall.event_requests == 2
    assert service.stores == ("hub-postgresql", "hub-redis")
    assert service.destinations == ("x-created",)
    listener = _service(land, "listener")
    assert (listener.overall.consumed, listener.received_messages, listener.callers) == (2, 2, ("hub",))


def test_grpc_methods_are_neither_reads_nor_writes() -> None:
    land = LandscapeBuilder()
    land.trace().request("hub", "GET /x").call("driver", "driver.DriverService/FindNearest", at=1, ms=5)
    op = _operation(land, "hub", "GET /x")
    assert (op.reads, op.writes, op.unknown_methods, op.write_share) == (0, 0, 1, 0.0)


def test_lost_callee_spans_still_count_and_do_not_make_the_callee_external() -> None:
    land = LandscapeBuilder()
    for lost in (False, True):
        land.trace().request("hub", "GET /x").calls(THREE, sequential(1, 5, 5, 5))
        land.trace().request("hub", "GET /x").call("a", "GET /a", at=1, ms=5, instrumented=not lost)
    a = _service(land, "a")
    assert (a.emits_spans, a.received_sync, a.received_external) == (True, 4, 0)
    # Also when each trace is reduced in a partition of its own: the trace whose callee spans
    # were lost does not see "a" emit spans, the merged landscape does.
    table = land.table()
    parts = [table.filter(pc.equal(table["trace_id"], trace)) for trace in pc.unique(table["trace_id"])]
    merged = BehaviourPartial.merge([measure_behaviour(build_call_tables(part)) for part in parts])
    (split,) = (s for s in summarise_behaviour(merged) if s.name == "a")
    assert split == a


def test_uninstrumented_peer_is_known_only_from_client_spans() -> None:
    land = LandscapeBuilder()
    land.trace().request("payment", "POST /charges").call(
        "stripe", "POST /v1/charges", at=1, ms=5, instrumented=False
    )
    stripe = _service(land, "stripe")
    assert (stripe.emits_spans, stripe.received_external, stripe.overall.requests) == (False, 1, 0)


def test_operations_are_measured_separately_and_most_requested_first() -> None:
    land = LandscapeBuilder()
    land.trace().request("hub", "POST /x").calls(THREE, sequential(1, 5, 5, 5))
    for _ in range(3):
        land.trace().request("hub", "GET /y").query("postgresql", "SELECT", at=1, ms=2)
    service = _service(land, "hub")
    assert [op.operation for op in service.operations] == ["GET /y", "POST /x"]
    assert [op.distinct_callees_per_request for op in service.operations] == [0.0, 3.0]
    assert service.overall.distinct_callees_per_request == 0.75
    assert service.overall.requests == 4
    assert service.callees == ("a", "b", "c")


def test_example_traces_prefer_requests_that_call_the_most() -> None:
    land = LandscapeBuilder()
    for _ in range(6):
        land.trace().request("hub", "GET /x")
    busy = land.trace()
    busy.request("hub", "GET /x").calls(THREE, sequential(1, 5, 5, 5))
    examples = _service(land, "hub").overall.example_traces
    assert len(examples) == 5
    assert busy.trace_id in examples
    assert list(examples) == sorted(examples)
