"""findings.json: every field the schema promises, validated against the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from analyzer.analysis import Analysis, InputFile, InputSummary, SkippedInput
from analyzer.model import (
    Compensation,
    Duplicate,
    Edge,
    FailureLogic,
    Finding,
    Flow,
    Handoff,
    OperationRef,
    RetryPolicy,
    ServiceRole,
    Step,
    Uncompensated,
    Variant,
)
from reports.json_report import FORMAT_VERSION, render_json

SCHEMA = Path(__file__).parents[1] / "reports" / "schemas" / "findings.schema.json"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _op(service: str, method: str, route: str, operation_id: str) -> OperationRef:
    return OperationRef(service, f"{method} {route}", method, route, operation_id)


def order_analysis() -> Analysis:
    reserve = _op("inventory", "POST", "/reservations", "reserveStock")
    pay = _op("payment", "POST", "/payments", "authorizePayment")
    ship = _op("shipping", "POST", "/shipments", "createShipment")
    release = _op("inventory", "DELETE", "/reservations/{reservationId}", "releaseStock")
    retry = RetryPolicy(
        requests_with_retries=37,
        max_attempts=3,
        status_codes=(503,),
        median_delay_ms=102.5,
        idempotency_key=False,
    )
    flow = Flow(
        id="orders.POST_orders",
        owner="orders",
        entry=_op("orders", "POST", "/orders", "placeOrder"),
        requests=400,
        support=0.82,
        long_running=False,
        steps=(
            Step(1, reserve, None, False, 1.0, p50_ms=4.2),
            Step(2, pay, None, False, 1.0, p50_ms=6.1),
            Step(3, ship, None, False, 0.9, retries=retry, p50_ms=5.0),
        ),
        handoffs=(Handoff(1, "reservationId", 3, "reservationId", "body", 0.9, ("schema: Reservation.id",)),),
        failure=FailureLogic(
            retries=((3, retry),),
            compensations=(Compensation(2, 1, release, 41),),
            uncompensated=(Uncompensated(3, (1, 2), 9, (TRACE,)),),
            failure_statuses=(402, 502),
        ),
        variants=(Variant(("inventory POST /reservations", "payment POST /payments"), 41, 0.1025),),
        duplicates=(
            Duplicate(
                "partner-api",
                _op("partner-api", "POST", "/partner/orders", "partnerOrder"),
                ("calls payment before inventory",),
            ),
        ),
        example_traces=(TRACE,),
        inputs=("sku", "quantity"),
        duration_p50_ms=25.0,
        duration_p95_ms=60.0,
        duration_max_ms=340.0,
    )
    return Analysis(
        input=InputSummary(
            files=(InputFile("sample_traces/traces.otlp.jsonl", "otlp-json", 5000, 400),),
            spans=5000,
            traces=400,
            services=9,
            start_ns=1,
            end_ns=2,
            skipped=(SkippedInput("x.json", "line 3", "malformed JSON", 1),),
        ),
        services=(
            ServiceRole(
                "orders", "orchestrator", True, 4, 1, 400, 4.2, ("calls 4 services per request",), (TRACE,)
            ),
        ),
        edges=(Edge("orders", "inventory", "sync", 441, 0, 4.0, 9.0, (TRACE,)),),
        flows=(flow,),
        findings=(
            Finding(
                "missing-idempotency",
                "high",
                "orders",
                flow.id,
                "POST /shipments retried without key",
                ("37 requests retried",),
                "Send an Idempotency-Key header",
                (TRACE,),
            ),
        ),
    )


def test_document_validates_against_published_schema() -> None:
    document = json.loads(
        render_json(order_analysis(), arazzo_files={"orders.POST_orders": "arazzo/orders.arazzo.yaml"})
    )
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(document)
    assert document["format_version"] == FORMAT_VERSION
    flow = document["flows"][0]
    assert [s["operation_id"] for s in flow["steps"]] == [
        "reserveStock",
        "authorizePayment",
        "createShipment",
    ]
    assert flow["steps"][2]["retries"]["status_codes"] == [503]
    assert flow["failure"]["compensations"][0]["operation"]["operation_id"] == "releaseStock"
    assert flow["arazzo"] == "arazzo/orders.arazzo.yaml"


def test_schema_rejects_an_unknown_role() -> None:
    document = json.loads(render_json(order_analysis()))
    document["services"][0]["role"] = "boss"
    errors = list(jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(document))
    assert errors and "boss" in errors[0].message


def test_output_is_deterministic() -> None:
    assert render_json(order_analysis()) == render_json(order_analysis())
