"""Services that run multi-step business flows by calling other services one after another."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, HTTPException
from opentelemetry.trace import Span

from shop.env import Env, Peers, ids, service_app
from shop.models import Invoice, InvoiceRequest, Order, OrderRequest, ReturnCase, ReturnRequest

UNIT_PRICE = 19.99
FAILURES = {402: {"description": "Payment declined"}, 503: {"description": "Shipping unavailable"}}


def _amount(body: OrderRequest) -> float:
    return round(sum(item.quantity for item in body.items) * UNIT_PRICE, 2)


def _items(body: OrderRequest) -> list[dict[str, Any]]:
    return [item.model_dump() for item in body.items]


def build_orders(env: Env) -> FastAPI:
    """The hidden orchestrator: reserve, authorise, ship, notify; then publish ``order-placed``.

    A declined payment releases the reservation (compensation). Shipping is retried on 503
    with a backoff but without an Idempotency-Key, and when it fails for good the reservation
    and the payment are left as they are.
    """

    def setup(db: sqlite3.Connection) -> None:
        db.execute(
            "CREATE TABLE orders (id TEXT PRIMARY KEY, customer_id TEXT, status TEXT, shipment_id TEXT)"
        )

    db = env.telemetry.database("orders", env.db_uri("orders"), setup)
    peers = Peers(env, "orders")
    tracer = env.telemetry.provider("orders").get_tracer("shop.orders")
    app = service_app(env, "orders", "Orders", on_stop=peers.close)
    next_id = ids("ord")

    @app.post("/orders", operation_id="placeOrder", status_code=201, response_model=Order, responses=FAILURES)
    async def place(body: OrderRequest) -> Order:
        order_id = next_id()
        db.execute("INSERT INTO orders VALUES (?, ?, 'pending', NULL)", (order_id, body.customerId))
        reserved = await peers("inventory").post(
            "/reservations", json={"orderId": order_id, "items": _items(body)}
        )
        reserved.raise_for_status()
        reservation_id = reserved.json()["reservationId"]
        paid = await peers("payment").post(
            "/payments",
            json={
                "orderId": order_id,
                "customerId": body.customerId,
                "amount": _amount(body),
                "cardToken": body.cardToken,
            },
        )
        if paid.status_code == 402:
            await peers("inventory").delete(f"/reservations/{reservation_id}")
            db.execute("UPDATE orders SET status = 'declined' WHERE id = ?", (order_id,))
            raise HTTPException(402, "payment declined")
        paid.raise_for_status()
        payment_id = paid.json()["paymentId"]
        shipment = {
            "orderId": order_id,
            "reservationId": reservation_id,
            "paymentId": payment_id,
            "address": body.address.model_dump(),
        }
        for attempt in range(env.settings.shipping_attempts):
            if attempt:
                await asyncio.sleep(env.settings.retry_backoff * 2 ** (attempt - 1))
            shipped = await peers("shipping").post("/shipments", json=shipment)
            if shipped.status_code != 503:
                break
        if shipped.status_code == 503:
            db.execute("UPDATE orders SET status = 'failed' WHERE id = ?", (order_id,))
            raise HTTPException(503, "shipping unavailable")
        shipped.raise_for_status()
        shipment_id = shipped.json()["shipmentId"]
        await peers("notification").post(
            "/notifications",
            json={
                "customerId": body.customerId,
                "template": "order-confirmation",
                "orderId": order_id,
                "shipmentId": shipment_id,
            },
        )
        env.broker.publish(
            tracer,
            "order-placed",
            {
                "orderId": order_id,
                "customerId": body.customerId,
                "amount": _amount(body),
                "shipmentId": shipment_id,
            },
        )
        db.execute(
            "UPDATE orders SET status = 'placed', shipment_id = ? WHERE id = ?", (shipment_id, order_id)
        )
        return Order(
            orderId=order_id,
            status="placed",
            reservationId=reservation_id,
            paymentId=payment_id,
            shipmentId=shipment_id,
        )

    @app.get("/orders/{orderId}", operation_id="getOrder", response_model=Order)
    def get(orderId: str) -> Order:
        row = db.execute("SELECT status, shipment_id FROM orders WHERE id = ?", (orderId,)).fetchone()
        if row is None:
            raise HTTPException(404, f"no order {orderId}")
        return Order(orderId=orderId, status=row[0], shipmentId=row[1])

    return app


def build_mobile_bff(env: Env) -> FastAPI:
    """The order flow again, for the mobile app: same steps, idempotent retries, full compensation."""
    peers = Peers(env, "mobile-bff")
    app = service_app(env, "mobile-bff", "Mobile BFF", on_stop=peers.close)
    next_id = ids("mob")

    @app.post(
        "/mobile/checkout",
        operation_id="placeMobileOrder",
        status_code=201,
        response_model=Order,
        responses=FAILURES,
    )
    async def checkout(body: OrderRequest) -> Order:
        order_id = next_id()
        reserved = await peers("inventory").post(
            "/reservations", json={"orderId": order_id, "items": _items(body)}
        )
        reserved.raise_for_status()
        reservation_id = reserved.json()["reservationId"]
        paid = await peers("payment").post(
            "/payments",
            json={
                "orderId": order_id,
                "customerId": body.customerId,
                "amount": _amount(body),
                "cardToken": body.cardToken,
            },
            headers={"Idempotency-Key": f"{order_id}-payment"},
        )
        if paid.status_code == 402:
            await peers("inventory").delete(f"/reservations/{reservation_id}")
            raise HTTPException(402, "payment declined")
        paid.raise_for_status()
        payment_id = paid.json()["paymentId"]
        shipment = {
            "orderId": order_id,
            "reservationId": reservation_id,
            "paymentId": payment_id,
            "address": body.address.model_dump(),
        }
        for attempt in range(env.settings.shipping_attempts):
            if attempt:
                await asyncio.sleep(env.settings.retry_backoff * 2 ** (attempt - 1))
            shipped = await peers("shipping").post(
                "/shipments", json=shipment, headers={"Idempotency-Key": f"{order_id}-shipment"}
            )
            if shipped.status_code != 503:
                break
        if shipped.status_code == 503:
            # Undo both earlier steps, newest first.
            await peers("payment").post(
                "/refunds",
                json={"paymentId": payment_id, "amount": _amount(body), "reason": "not shippable"},
                headers={"Idempotency-Key": f"{order_id}-refund"},
            )
            await peers("inventory").delete(f"/reservations/{reservation_id}")
            raise HTTPException(503, "shipping unavailable")
        shipped.raise_for_status()
        shipment_id = shipped.json()["shipmentId"]
        await peers("notification").post(
            "/notifications",
            json={
                "customerId": body.customerId,
                "template": "order-confirmation",
                "orderId": order_id,
                "shipmentId": shipment_id,
            },
        )
        return Order(
            orderId=order_id,
            status="placed",
            reservationId=reservation_id,
            paymentId=payment_id,
            shipmentId=shipment_id,
        )

    return app


def build_partner_api(env: Env) -> FastAPI:
    """A drifted copy of the order flow: pays before reserving, never retries, never notifies."""
    peers = Peers(env, "partner-api")
    app = service_app(env, "partner-api", "Partner API", on_stop=peers.close)
    next_id = ids("prt")

    @app.post(
        "/partner/v1/orders",
        operation_id="submitPartnerOrder",
        status_code=201,
        response_model=Order,
        responses=FAILURES,
    )
    async def submit(body: OrderRequest) -> Order:
        order_id = next_id()
        paid = await peers("payment").post(
            "/payments",
            json={
                "orderId": order_id,
                "customerId": body.customerId,
                "amount": _amount(body),
                "cardToken": body.cardToken,
            },
        )
        if paid.status_code == 402:
            raise HTTPException(402, "payment declined")
        paid.raise_for_status()
        payment_id = paid.json()["paymentId"]
        reserved = await peers("inventory").post(
            "/reservations", json={"orderId": order_id, "items": _items(body)}
        )
        reserved.raise_for_status()
        reservation_id = reserved.json()["reservationId"]
        shipped = await peers("shipping").post(
            "/shipments",
            json={
                "orderId": order_id,
                "reservationId": reservation_id,
                "paymentId": payment_id,
                "address": body.address.model_dump(),
            },
        )
        if shipped.status_code == 503:
            raise HTTPException(503, "shipping unavailable")
        shipped.raise_for_status()
        return Order(
            orderId=order_id,
            status="placed",
            reservationId=reservation_id,
            paymentId=payment_id,
            shipmentId=shipped.json()["shipmentId"],
        )

    return app


def build_returns(env: Env) -> FastAPI:
    """A long-running flow: accept a return, wait for the external approval desk, then refund.

    The request is answered at once (202); the rest runs in a background task that keeps the
    request's trace context, polling ``approvals`` until the return is approved.
    """

    def setup(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE return_case (id TEXT PRIMARY KEY, order_id TEXT, status TEXT)")

    db = env.telemetry.database("returns", env.db_uri("returns"), setup)

    async def name_peer(span: Span, request: Any) -> None:
        # The approval desk is not instrumented; naming it is the only way it shows up as a service.
        span.set_attribute("peer.service", "approvals")

    peers = Peers(env, "returns")
    desk = Peers(env, "returns", request_hook=name_peer)
    tracer = env.telemetry.provider("returns").get_tracer("shop.returns")

    async def stop() -> None:
        await peers.close()
        await desk.close()

    app = service_app(env, "returns", "Returns", on_stop=stop)
    next_id = ids("ret")
    tasks: set[asyncio.Task[None]] = set()

    async def settle(return_id: str, body: ReturnRequest) -> None:
        try:
            with tracer.start_as_current_span("settle return", attributes={"shop.return.id": return_id}):
                filed = await desk("approvals").post(
                    "/approvals", json={"subject": return_id, "kind": "return"}
                )
                filed.raise_for_status()
                approval = filed.json()
                interval = max(env.settings.approval_wait / 4, 0.05)
                while approval["status"] != "approved":
                    await asyncio.sleep(interval)
                    polled = await desk("approvals").get(f"/approvals/{approval['approvalId']}")
                    polled.raise_for_status()
                    approval = polled.json()
                refunded = await peers("payment").post(
                    "/refunds",
                    json={
                        "paymentId": body.paymentId,
                        "amount": body.amount,
                        "reason": body.reason,
                        "returnId": return_id,
                    },
                    headers={"Idempotency-Key": f"{return_id}-refund"},
                )
                refunded.raise_for_status()
                await peers("inventory").post(
                    "/restocks", json={"returnId": return_id, "items": [i.model_dump() for i in body.items]}
                )
                await peers("notification").post(
                    "/notifications",
                    json={
                        "customerId": body.customerId,
                        "template": "return-refunded",
                        "orderId": body.orderId,
                        "returnId": return_id,
                    },
                )
                db.execute("UPDATE return_case SET status = 'refunded' WHERE id = ?", (return_id,))
        finally:
            env.background.finished()

    @app.post("/returns", operation_id="requestReturn", status_code=202, response_model=ReturnCase)
    async def request(body: ReturnRequest) -> ReturnCase:
        return_id = next_id()
        db.execute("INSERT INTO return_case VALUES (?, ?, 'awaiting-approval')", (return_id, body.orderId))
        env.background.started()
        task = asyncio.create_task(settle(return_id, body))  # copies the context: same trace
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return ReturnCase(returnId=return_id, status="awaiting-approval")

    return app


def build_legacy_billing(env: Env) -> FastAPI:
    """Invoices built from three lookups made on a thread pool, where the trace context is lost.

    ``loop.run_in_executor`` does not carry context variables into the worker thread, so the
    instrumented client there starts a new trace for every call: a real and common way
    propagation breaks.
    """
    users = env.telemetry.sync_client("legacy-billing", env.urls["users"])
    pricing = env.telemetry.sync_client("legacy-billing", env.urls["pricing"])
    notification = env.telemetry.sync_client("legacy-billing", env.urls["notification"])
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="billing")

    def stop() -> None:
        pool.shutdown()
        for client in (users, pricing, notification):
            client.close()

    app = service_app(env, "legacy-billing", "Legacy Billing", on_stop=stop)
    next_id = ids("inv")

    def compile_invoice(invoice_id: str, body: InvoiceRequest) -> float:
        customer = users.get(f"/users/{body.customerId}")
        customer.raise_for_status()
        price = pricing.get(f"/prices/{body.productId}")
        price.raise_for_status()
        notification.post(
            "/notifications",
            json={
                "customerId": body.customerId,
                "template": "invoice",
                "orderId": body.orderId,
                "invoiceId": invoice_id,
            },
        ).raise_for_status()
        return float(price.json()["amount"])

    @app.post("/invoices", operation_id="createInvoice", status_code=201, response_model=Invoice)
    async def create(body: InvoiceRequest) -> Invoice:
        invoice_id = next_id()
        total = await asyncio.get_running_loop().run_in_executor(pool, compile_invoice, invoice_id, body)
        return Invoice(invoiceId=invoice_id, orderId=body.orderId, total=total)

    return app
