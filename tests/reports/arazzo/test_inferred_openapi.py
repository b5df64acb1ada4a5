"""Inferred OpenAPI stand-ins name operations exactly as the spec reader does for a spec without ids."""

from __future__ import annotations

import json
from pathlib import Path

from arazzo_flows import ref

from orchscan.analyzer.results import Flow, Step
from orchscan.collectors.openapi.loader import load_specs
from orchscan.reports.arazzo.inferred_openapi import observed_operations

ROUTES = ("GET /orders/{orderId}", "DELETE /orders/{orderId}/items/{itemId}", "POST /a-b", "POST /a_b")


def _flow() -> Flow:
    steps = tuple(Step(n, ref("orders", key), None, False, 1.0) for n, key in enumerate(ROUTES, 1))
    return Flow("shop:POST /checkout", "shop", ref("shop", "POST /checkout"), 10, 1.0, False, steps)


def test_stand_in_and_spec_reader_give_one_operation_id_per_route(tmp_path: Path) -> None:
    paths: dict[str, dict[str, object]] = {}
    for key in ROUTES:
        method, _, route = key.partition(" ")
        paths.setdefault(route, {})[method.lower()] = {"responses": {"200": {"description": "ok"}}}
    spec = tmp_path / "orders.json"
    spec.write_text(
        json.dumps({"openapi": "3.1.0", "info": {"title": "orders", "version": "1"}, "paths": paths})
    )
    loaded = load_specs([spec])
    assert loaded.problems == ()
    documented = {op.key: op.operation_id for op in loaded.operations}
    inferred = {op.key: op.operation_id for op in observed_operations("orders", [_flow()], source="x.yaml")}
    assert inferred == documented
    assert documented["GET /orders/{orderId}"] == "get_orders_orderId"
    # Two routes that spell the same id are told apart, the same way in both.
    assert {documented["POST /a-b"], documented["POST /a_b"]} == {"post_a_b", "post_a_b_2"}
