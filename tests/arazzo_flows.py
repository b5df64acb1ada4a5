"""The Sock Shop order flow as flow mining reports it, with the services' real specs, for Arazzo tests.

Sock Shop's ``orders`` service places an order by reading the customer, address and card from
``user`` (concurrently), the cart from ``carts``, authorising the payment (retried on 503),
creating the shipment in ``shipping`` (which ships no OpenAPI description) and emptying the cart.
When shipping fails, the cart read in step 4 is emptied as a compensation.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from paths import FIXTURES

from orchscan.analyzer.results import (
    Compensation,
    FailureLogic,
    Flow,
    Handoff,
    OperationRef,
    RetryPolicy,
    Step,
    Variant,
)
from orchscan.collectors.openapi.loader import load_specs
from orchscan.reports.arazzo.drafts import ServiceApi, build_arazzo, plan_apis
from orchscan.reports.arazzo.inferred_openapi import build_inferred_openapi
from orchscan.reports.yaml_text import render_yaml

SOCK_SHOP_SPECS = FIXTURES / "specs" / "sock-shop" / "spec"


def ref(service: str, key: str) -> OperationRef:
    """An operation reference as the analyzer builds it for an HTTP call."""
    method, _, route = key.partition(" ")
    return OperationRef(service, key, method, route)


def sock_shop_apis(folder: Path) -> dict[str, ServiceApi]:
    """Copy the Sock Shop specs into ``folder`` and load them, keyed by service name."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in SOCK_SHOP_SPECS.glob("*.json"):
        shutil.copy(path, folder / path.name)
    loaded = load_specs([folder])
    assert not loaded.problems, loaded.problems
    return {
        Path(spec.source).name.split("--")[0]: ServiceApi(
            Path(spec.source).name.split("--")[0], Path(spec.source), spec
        )
        for spec in loaded.specs
    }


def order_flow() -> Flow:
    """The order flow of Sock Shop's orders service, as mined from 120 requests."""
    retry = RetryPolicy(
        requests_with_retries=4,
        max_attempts=3,
        status_codes=(503,),
        median_delay_ms=200.0,
        idempotency_key=False,
    )
    steps = (
        Step(1, ref("user", "GET /customers/{id}"), 1, False, 1.0, p50_ms=4.0),
        Step(2, ref("user", "GET /addresses/{id}"), 1, False, 1.0, p50_ms=3.5),
        Step(3, ref("user", "GET /cards/{id}"), 1, False, 1.0, p50_ms=3.2),
        Step(4, ref("carts", "GET /carts/{customerId}"), None, False, 1.0, p50_ms=6.0),
        Step(5, ref("payment", "POST /paymentAuth"), None, False, 1.0, retries=retry, p50_ms=12.0),
        Step(6, ref("shipping", "POST /shipping"), None, False, 0.97, p50_ms=20.0),
        Step(7, ref("carts", "DELETE /carts/{customerId}"), None, False, 0.97, p50_ms=5.0),
    )
    handoffs = (
        Handoff(
            0,
            "customer",
            1,
            "id",
            "path",
            0.9,
            ("entry field customer equals the path id in 120/120 traces",),
        ),
        Handoff(
            0, "address", 2, "id", "path", 0.85, ("entry field address equals the path id in 118/120 traces",)
        ),
        Handoff(0, "card", 3, "id", "path", 0.85, ("entry field card equals the path id in 118/120 traces",)),
        Handoff(
            1, "/id", 4, "customerId", "path", 0.95, ("customer id equals the cart path in 120/120 traces",)
        ),
        Handoff(
            1, "/id", 7, "customerId", "path", 0.95, ("customer id equals the cart path in 116/116 traces",)
        ),
        Handoff(4, "/customerId", 6, "/name", "body", 0.4, ("schema name similarity only",)),
        Handoff(5, "/authorised", 6, "/paid", "body", 0.3, ("schema name similarity only",)),
    )
    failure = FailureLogic(
        retries=((5, retry),),
        compensations=(Compensation(6, 4, ref("carts", "DELETE /carts/{customerId}"), 3),),
        failure_statuses=(500, 503),
    )
    variants = (
        Variant(tuple(s.operation.key for s in steps), 116, 0.967),
        Variant((*(s.operation.key for s in steps[:6]), "DELETE /carts/{customerId}"), 3, 0.025),
    )
    return Flow(
        id="orders:POST /orders",
        owner="orders",
        entry=ref("orders", "POST /orders"),
        requests=120,
        support=0.98,
        long_running=False,
        steps=steps,
        handoffs=handoffs,
        failure=failure,
        variants=variants,
        example_traces=("4bf92f3577b34da6a3ce929d0e0e4736",),
        duration_p50_ms=64.0,
        duration_p95_ms=180.0,
        duration_max_ms=900.0,
    )


#: Observed success statuses of undocumented operations (the span table's status codes).
OBSERVED_STATUSES = {("shipping", "POST /shipping"): (201,)}


def write_draft(
    flows: Sequence[Flow],
    specs: Mapping[str, ServiceApi],
    target: Path,
    statuses: Mapping[tuple[str, str], tuple[int, ...]] = OBSERVED_STATUSES,
) -> dict[str, Any]:
    """Draft one owner's flows into ``target``, with the stand-ins it needs beside it; the document."""
    apis = plan_apis(flows, specs, folder=target.parent, success_statuses=statuses)
    document = build_arazzo(flows, apis, arazzo_path=target, success_statuses=statuses)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_yaml(document), encoding="utf-8")
    for api in apis.values():
        if api.spec is None:
            Path(api.path).write_text(render_yaml(build_inferred_openapi(api.service, api.operations)))
    loaded: dict[str, Any] = yaml.safe_load(target.read_text(encoding="utf-8"))
    return loaded
