"""Data handoffs: from the API descriptions (names and types) and from ids seen in URL paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from factories import LandscapeBuilder
from scans import mined_flows

from orchscan.analyzer.flows.handoffs import SpecIndex, normalise, resource_of
from orchscan.analyzer.results import Flow, Handoff
from orchscan.collectors.openapi import load_specs


def _flow(table: pa.Table, specs: SpecIndex | None = None) -> Flow:
    (flow,) = mined_flows(table, owners=("orders",), specs=specs)[0]
    return flow


def _body(**properties: str) -> dict[str, Any]:
    return {
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {k: {"type": v} for k, v in properties.items()}}
            }
        }
    }


def _spec(tmp_path: Path, service: str, paths: dict[str, Any]) -> Path:
    document = {
        "openapi": "3.0.3",
        "info": {"title": service, "version": "1"},
        "x-service-name": service,
        "paths": paths,
    }
    path = tmp_path / f"{service}.json"
    path.write_text(json.dumps(document))
    return path


def _specs(tmp_path: Path) -> SpecIndex:
    files = [
        _spec(
            tmp_path,
            "orders",
            {
                "/orders": {
                    "post": {
                        "requestBody": _body(customerId="string", sku="string"),
                        "responses": {"201": {}},
                    }
                }
            },
        ),
        _spec(
            tmp_path,
            "inventory",
            {
                "/reservations": {
                    "post": {
                        "requestBody": _body(sku="string"),
                        "responses": {"201": {"description": "ok", **_body(id="string", sku="string")}},
                    }
                },
                "/reservations/{reservationId}": {
                    "delete": {
                        "parameters": [
                            {
                                "name": "reservationId",
                                "in": "path",
                                "required": True,
                                "schema": {"type": "string"},
                            }
                        ],
                        "responses": {"204": {"description": "released"}},
                    }
                },
            },
        ),
        _spec(
            tmp_path,
            "payment",
            {
                "/payments": {
                    "post": {
                        "requestBody": _body(customerId="string"),
                        "responses": {
                            "201": {"description": "ok", **_body(paymentId="string", status="string")}
                        },
                    }
                }
            },
        ),
        _spec(
            tmp_path,
            "shipping",
            {
                "/shipments": {
                    "post": {
                        "requestBody": _body(reservation_id="string", paymentId="string", status="string"),
                        "responses": {"201": {"description": "ok", **_body(shipmentId="string")}},
                    }
                }
            },
        ),
    ]
    loaded = load_specs(files)
    assert loaded.problems == ()
    return {spec.service_name or spec.title: spec.operations for spec in loaded.specs}


def _orders(land: LandscapeBuilder, count: int) -> None:
    for i in range(count):
        order = land.trace().request("orders", "POST /orders", ms=200, status_code=201)
        order.call("inventory", "POST /reservations", at=5, ms=20, status_code=201)
        order.call("payment", "POST /payments", at=30, ms=30, status_code=201)
        order.call("shipping", "POST /shipments", at=70, ms=20, status_code=201)
        order.call(
            "inventory", "GET /reservations/{reservationId}", path=f"/reservations/r-{i:05d}", at=95, ms=5
        )


def _by_target(flow: Flow) -> dict[tuple[int, str], Handoff]:
    return {(h.to_step, h.parameter): h for h in flow.handoffs}


def test_names_are_normalised_and_resources_singular() -> None:
    assert normalise("reservation_id") == normalise("reservationId") == "reservationid"
    assert resource_of("/reservations/{id}") == "reservation"
    assert resource_of("/categories") == "category"
    assert resource_of("/{id}") is None


def test_schema_handoffs_link_responses_to_later_requests(tmp_path: Path) -> None:
    land = LandscapeBuilder()
    _orders(land, 4)
    flow = _flow(land.table(), _specs(tmp_path))
    handoffs = _by_target(flow)
    # id of a Reservation response feeds reservation_id of the shipment request.
    reservation = handoffs[(3, "/reservation_id")]
    assert (reservation.from_step, reservation.output, reservation.location) == (1, "/id", "body")
    assert 0.5 <= reservation.confidence < 1
    assert "POST /reservations response field '/id'" in reservation.evidence[0]
    payment = handoffs[(3, "/paymentId")]
    assert payment.from_step == 2
    # The entry request's customerId is a flow input.
    assert handoffs[(2, "/customerId")].from_step == 0
    assert flow.inputs == ("/customerId", "/sku")
    # Generic names link nothing: payment's "status" is not shipping's "status".
    assert (3, "/status") not in handoffs


def test_trace_handoff_an_id_created_earlier_appears_in_a_later_path() -> None:
    land = LandscapeBuilder()
    _orders(land, 5)
    flow = _flow(land.table())
    handoff = _by_target(flow)[(4, "reservationId")]
    assert (handoff.from_step, handoff.output, handoff.location) == (1, "id", "path")
    assert handoff.confidence == 0.9
    assert "in 5 of 5 requests" in handoff.evidence[0]


def test_trace_and_schema_evidence_add_up(tmp_path: Path) -> None:
    land = LandscapeBuilder()
    _orders(land, 3)
    specs = dict(_specs(tmp_path))
    loaded = load_specs(
        [
            _spec(
                tmp_path,
                "inventory2",
                {
                    "/reservations": {
                        "post": {"responses": {"201": {"description": "ok", **_body(reservationId="string")}}}
                    },
                    "/reservations/{reservationId}": {
                        "get": {
                            "parameters": [
                                {
                                    "name": "reservationId",
                                    "in": "path",
                                    "required": True,
                                    "schema": {"type": "string"},
                                }
                            ],
                            "responses": {"200": {"description": "ok"}},
                        }
                    },
                },
            )
        ]
    )
    specs["inventory"] = loaded.specs[0].operations
    handoff = _by_target(_flow(land.table(), specs))[(4, "reservationId")]
    assert handoff.from_step == 1
    assert len(handoff.evidence) == 2
    assert handoff.confidence > 0.9


def test_an_id_from_the_entry_path_is_a_flow_input() -> None:
    land = LandscapeBuilder()
    for i in range(3):
        order = land.trace().request(
            "orders", "POST /orders/{id}/checkout", path=f"/orders/{1000 + i}/checkout"
        )
        order.call("carts", "GET /carts/{orderId}", path=f"/carts/{1000 + i}", at=5, ms=10)
        order.call("payment", "POST /payments", at=20, ms=10)
        order.call("shipping", "POST /shipments", at=40, ms=10)
    flow = _flow(land.table())
    handoff = _by_target(flow)[(1, "orderId")]
    assert handoff.from_step == 0
    assert flow.inputs == ("orderId",)


def test_unrelated_ids_make_no_handoff() -> None:
    land = LandscapeBuilder()
    for i in range(3):
        order = land.trace().request("orders", "POST /orders", ms=200)
        order.call("inventory", "POST /reservations", at=5, ms=20)
        order.call("payment", "POST /payments", at=30, ms=30)
        # A different collection: the id was not created by the reservation step.
        order.call("catalog", "GET /products/{id}", path=f"/products/{500 + i}", at=70, ms=5)
    assert _flow(land.table()).handoffs == ()
