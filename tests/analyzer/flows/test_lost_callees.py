"""A call whose answer was lost keeps its step: named after the service that answers it elsewhere."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from factories import LandscapeBuilder, TraceBuilder
from scans import mined_flows

from orchscan.analyzer.flows.lost_callees import count_answers, decide_answers, sum_answers

ADDRESSES = {"inventory": "10.0.0.7", "payment": "10.0.0.8"}


def _order(trace: TraceBuilder, *, answered: bool = True) -> None:
    order = trace.request("orders", "POST /orders", ms=200)
    order.call("inventory", "POST /reservations", at=10, ms=30, peer=False, instrumented=answered)
    order.call("payment", "POST /payments", at=50, ms=30, peer=False)


def _by_address(table: pa.Table) -> pa.Table:
    """Clients that record only the address and port they called, as most HTTP clients do."""
    address = table["server_address"].combine_chunks()
    index = pc.index_in(address, value_set=pa.array(list(ADDRESSES)))
    moved = pc.if_else(pc.is_null(index), address, pc.take(pa.array(list(ADDRESSES.values())), index))
    table = table.set_column(table.schema.get_field_index("server_address"), "server_address", moved)
    port = pc.if_else(pc.is_null(index), pa.scalar(None, pa.int32()), pa.scalar(8080, pa.int32()))
    return table.set_column(table.schema.get_field_index("server_port"), "server_port", port)


def test_a_lost_answer_leaves_the_step_as_it_was() -> None:
    land = LandscapeBuilder()
    for i in range(5):
        _order(land.trace(), answered=i != 2)
    flows, _ = mined_flows(_by_address(land.table()), owners=["orders"])
    (flow,) = flows
    assert [(s.operation.service, s.operation.key, s.optional) for s in flow.steps] == [
        ("inventory", "POST /reservations", False),
        ("payment", "POST /payments", False),
    ]
    assert len(flow.variants) == 1


def test_without_an_answer_anywhere_the_address_names_the_callee() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        _order(land.trace(), answered=False)
    (flow,) = mined_flows(_by_address(land.table()), owners=["orders"])[0]
    assert [s.operation.service for s in flow.steps] == ["10.0.0.7", "payment"]


def test_an_address_two_services_answer_names_neither() -> None:
    answers = [
        pa.table(
            {
                "address": ["lb:80", "lb:80", "shop:80"],
                "client_key": ["GET /items", "GET /items", "GET /cart"],
                "callee": ["catalogue", "search", "cart"],
                "operation": ["GET /items", "GET /items", "GET /cart"],
                "route": ["/items", "/items", "/cart"],
                "calls": [5, 1, 2],
            }
        ).to_pandas(),
    ]
    merged = decide_answers(sum_answers(answers))
    assert merged[["address", "callee"]].values.tolist() == [["shop:80", "cart"]]
    assert count_answers(merged.assign(callee_row=-1)).empty
