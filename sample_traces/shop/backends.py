"""The leaf services: they own data (SQLite) or a cache and call no other service."""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
import time
import zlib
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Response

from shop.env import Env, ids, service_app
from shop.models import (
    Approval,
    ApprovalRequest,
    Notification,
    NotificationRequest,
    Payment,
    PaymentRequest,
    Price,
    Product,
    Recommendations,
    Refund,
    RefundRequest,
    Reservation,
    ReservationRequest,
    Restock,
    RestockRequest,
    Review,
    Reviews,
    SearchResult,
    Shipment,
    ShipmentRequest,
    Stock,
    User,
)

PRODUCTS = [f"p-{n:03d}" for n in range(1, 41)]
CATEGORIES = ("books", "garden", "kitchen", "toys", "audio")
CUSTOMERS = [f"c-{n:04d}" for n in range(1, 201)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", description="Makes a retried request safe")
]


def sku_of(product_id: str) -> str:
    """The stock-keeping unit of a product."""
    return "sku-" + product_id.removeprefix("p-")


def _seeded(text: str) -> random.Random:
    # Stable per entity, so repeated reads of the same product return the same data.
    return random.Random(zlib.crc32(text.encode()))


def build_inventory(env: Env) -> FastAPI:
    """Stock and reservations in SQLite; reservations can be released (compensation)."""

    def setup(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL)")
        db.execute(
            "CREATE TABLE reservation (id TEXT, order_id TEXT, sku TEXT, quantity INTEGER, status TEXT)"
        )
        db.executemany("INSERT INTO stock VALUES (?, ?)", [(sku_of(p), 100_000) for p in PRODUCTS])

    db = env.telemetry.database("inventory", env.db_uri("inventory"), setup)
    app = service_app(env, "inventory", "Inventory")
    next_id, next_restock = ids("res"), ids("rst")

    @app.post("/reservations", operation_id="reserveStock", status_code=201, response_model=Reservation)
    def reserve(body: ReservationRequest) -> Reservation:
        reservation_id = next_id()
        for item in body.items:
            db.execute("UPDATE stock SET available = available - ? WHERE sku = ?", (item.quantity, item.sku))
            db.execute(
                "INSERT INTO reservation VALUES (?, ?, ?, ?, 'held')",
                (reservation_id, body.orderId, item.sku, item.quantity),
            )
        return Reservation(reservationId=reservation_id, orderId=body.orderId, status="held")

    @app.delete("/reservations/{reservationId}", operation_id="releaseReservation", status_code=204)
    def release(reservationId: str) -> Response:
        rows = db.execute("SELECT sku, quantity FROM reservation WHERE id = ?", (reservationId,)).fetchall()
        if not rows:
            raise HTTPException(404, f"no reservation {reservationId}")
        for sku, quantity in rows:
            db.execute("UPDATE stock SET available = available + ? WHERE sku = ?", (quantity, sku))
        db.execute("UPDATE reservation SET status = 'released' WHERE id = ?", (reservationId,))
        return Response(status_code=204)

    @app.get("/stock/{sku}", operation_id="getStock", response_model=Stock)
    def stock(sku: str) -> Stock:
        row = db.execute("SELECT available FROM stock WHERE sku = ?", (sku,)).fetchone()
        if row is None:
            raise HTTPException(404, f"unknown sku {sku}")
        return Stock(sku=sku, available=row[0])

    @app.post("/restocks", operation_id="restockItems", status_code=201, response_model=Restock)
    def restock(body: RestockRequest) -> Restock:
        for item in body.items:
            db.execute("UPDATE stock SET available = available + ? WHERE sku = ?", (item.quantity, item.sku))
        return Restock(restockId=next_restock(), returnId=body.returnId)

    return app


def build_payment(env: Env) -> FastAPI:
    """Authorises card payments (declining some cards) and refunds them."""
    db = env.telemetry.database(
        "payment",
        env.db_uri("payment"),
        lambda db: db.execute(
            "CREATE TABLE payment (id TEXT PRIMARY KEY, order_id TEXT, amount REAL, status TEXT, idem TEXT)"
        ),
    )
    app = service_app(env, "payment", "Payment")
    next_id, next_refund = ids("pay"), ids("ref")

    @app.post(
        "/payments",
        operation_id="authorizePayment",
        status_code=201,
        response_model=Payment,
        responses={402: {"description": "Payment declined"}},
    )
    def authorize(body: PaymentRequest, idempotency_key: IdempotencyKey = None) -> Payment:
        if idempotency_key:
            row = db.execute("SELECT id, status FROM payment WHERE idem = ?", (idempotency_key,)).fetchone()
            if row is not None:
                return Payment(paymentId=row[0], orderId=body.orderId, status=row[1])
        if body.cardToken.startswith("tok_declined"):
            raise HTTPException(402, "card declined by issuer")
        payment_id = next_id()
        db.execute(
            "INSERT INTO payment VALUES (?, ?, ?, 'authorized', ?)",
            (payment_id, body.orderId, body.amount, idempotency_key),
        )
        return Payment(paymentId=payment_id, orderId=body.orderId, status="authorized")

    @app.post("/refunds", operation_id="refundPayment", status_code=201, response_model=Refund)
    def refund(body: RefundRequest, idempotency_key: IdempotencyKey = None) -> Refund:
        row = db.execute("SELECT status FROM payment WHERE id = ?", (body.paymentId,)).fetchone()
        if row is None:
            raise HTTPException(404, f"no payment {body.paymentId}")
        db.execute("UPDATE payment SET status = 'refunded' WHERE id = ?", (body.paymentId,))
        return Refund(refundId=next_refund(), paymentId=body.paymentId, status="refunded")

    return app


def build_shipping(env: Env) -> FastAPI:
    """Creates shipments; the carrier is sometimes briefly unavailable, for one region always."""
    db = env.telemetry.database(
        "shipping",
        env.db_uri("shipping"),
        lambda db: db.execute(
            "CREATE TABLE shipment (id TEXT PRIMARY KEY, order_id TEXT, reservation_id TEXT, payment_id TEXT)"
        ),
    )
    app = service_app(env, "shipping", "Shipping")
    next_id = ids("shp")
    attempts: dict[str, int] = {}

    @app.post(
        "/shipments",
        operation_id="createShipment",
        status_code=201,
        response_model=Shipment,
        responses={503: {"description": "Carrier temporarily unavailable; retry"}},
    )
    def create(body: ShipmentRequest, idempotency_key: IdempotencyKey = None) -> Shipment:
        if body.address.zip.startswith("99"):
            raise HTTPException(503, "no carrier serves this region")
        attempt = attempts[body.reservationId] = attempts.get(body.reservationId, 0) + 1
        if attempt <= _busy_attempts(env.settings.carrier, body.reservationId):
            raise HTTPException(503, "carrier API busy")
        shipment_id = next_id()
        db.execute(
            "INSERT INTO shipment VALUES (?, ?, ?, ?)",
            (shipment_id, body.orderId, body.reservationId, body.paymentId),
        )
        return Shipment(shipmentId=shipment_id, orderId=body.orderId, carrier="DHL", status="created")

    return app


def _busy_attempts(carrier: str, reservation_id: str) -> int:
    """How many first attempts to ship a reservation meet a busy carrier."""
    if carrier == "never":
        return 0
    if carrier == "once":
        return 1
    # About one shipment in eight meets a busy carrier once, one in thirty twice.
    bucket = zlib.crc32(reservation_id.encode()) % 100
    return 2 if bucket < 3 else 1 if bucket < 12 else 0


def build_notification(env: Env) -> FastAPI:
    """Sends customer notifications (the mail gateway itself is outside the landscape)."""
    app = service_app(env, "notification", "Notification")
    next_id = ids("ntf")

    @app.post("/notifications", operation_id="sendNotification", status_code=202, response_model=Notification)
    def send(body: NotificationRequest) -> Notification:
        return Notification(notificationId=next_id(), status="queued")

    return app


def build_catalog(env: Env) -> FastAPI:
    """Product master data in SQLite."""

    def setup(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE product (id TEXT PRIMARY KEY, title TEXT, category TEXT)")
        db.executemany(
            "INSERT INTO product VALUES (?, ?, ?)",
            [(p, f"Product {p[2:]}", CATEGORIES[i % len(CATEGORIES)]) for i, p in enumerate(PRODUCTS)],
        )

    db = env.telemetry.database("catalog", env.db_uri("catalog"), setup)
    app = service_app(env, "catalog", "Catalog")

    @app.get("/products/{productId}", operation_id="getProduct", response_model=Product)
    def product(productId: str) -> Product:
        row = db.execute("SELECT title, category FROM product WHERE id = ?", (productId,)).fetchone()
        if row is None:
            raise HTTPException(404, f"unknown product {productId}")
        return Product(productId=productId, title=row[0], category=row[1])

    return app


def build_reviews(env: Env) -> FastAPI:
    """Review summaries served from a cache (an in-memory SQLite table), filled on a miss."""
    cache = env.telemetry.database(
        "reviews",
        "file:reviews-cache?mode=memory&cache=shared",
        lambda db: db.execute(
            "CREATE TABLE review_cache (product_id TEXT PRIMARY KEY, body TEXT, expires REAL)"
        ),
    )
    app = service_app(env, "reviews", "Reviews")

    @app.get("/reviews/{productId}", operation_id="getReviews", response_model=Reviews)
    def reviews(productId: str) -> Reviews:
        row = cache.execute(
            "SELECT body FROM review_cache WHERE product_id = ? AND expires > ?", (productId, time.time())
        ).fetchone()
        if row is not None:
            return Reviews.model_validate_json(row[0])
        rng = _seeded(productId)
        items = [Review(author=rng.choice(CUSTOMERS), rating=rng.randint(1, 5), text="ok") for _ in range(3)]
        result = Reviews(productId=productId, average=sum(r.rating for r in items) / 3, reviews=items)
        cache.execute(
            "INSERT OR REPLACE INTO review_cache VALUES (?, ?, ?)",
            (productId, result.model_dump_json(), time.time() + 5.0),
        )
        return result

    return app


def build_users(env: Env) -> FastAPI:
    """Customer accounts in SQLite."""

    def setup(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE account (id TEXT PRIMARY KEY, name TEXT, tier TEXT)")
        db.executemany(
            "INSERT INTO account VALUES (?, ?, ?)",
            [(c, f"Customer {c[2:]}", ("basic", "silver", "gold")[i % 3]) for i, c in enumerate(CUSTOMERS)],
        )

    db = env.telemetry.database("users", env.db_uri("users"), setup)
    app = service_app(env, "users", "Users")

    @app.get("/users/{userId}", operation_id="getUser", response_model=User)
    def user(userId: str) -> User:
        row = db.execute("SELECT name, tier FROM account WHERE id = ?", (userId,)).fetchone()
        if row is None:
            raise HTTPException(404, f"unknown user {userId}")
        return User(userId=userId, name=row[0], tier=row[1])

    return app


def build_search(env: Env) -> FastAPI:
    """Full-text search over an in-process index."""
    app = service_app(env, "search", "Search")

    @app.get("/search", operation_id="searchProducts", response_model=SearchResult)
    def search(q: str) -> SearchResult:
        hits = [p for p in PRODUCTS if q in CATEGORIES[PRODUCTS.index(p) % len(CATEGORIES)]]
        return SearchResult(query=q, productIds=hits[:10])

    return app


def build_recommendations(env: Env) -> FastAPI:
    """Products bought together, from a model held in memory."""
    app = service_app(env, "recommendations", "Recommendations")

    @app.get(
        "/recommendations/{productId}", operation_id="getRecommendations", response_model=Recommendations
    )
    def recommend(productId: str) -> Recommendations:
        return Recommendations(productId=productId, productIds=_seeded(productId).sample(PRODUCTS, 4))

    return app


def build_pricing(env: Env) -> FastAPI:
    """Current prices, computed from a price list held in memory."""
    app = service_app(env, "pricing", "Pricing")

    @app.get("/prices/{productId}", operation_id="getPrice", response_model=Price)
    def price(productId: str) -> Price:
        cents = int(hashlib.sha256(productId.encode()).hexdigest()[:4], 16) % 9000 + 500
        return Price(productId=productId, amount=cents / 100, currency="EUR")

    return app


def build_approvals(env: Env) -> FastAPI:
    """A third-party approval desk: not instrumented, it only appears through its callers' spans.

    A request is approved once ``approval_wait`` seconds have passed since it was filed.
    """
    app = service_app(env, "approvals", "Approvals (external)", instrumented=False)
    next_id = ids("apr")
    filed: dict[str, tuple[str, float]] = {}

    @app.post("/approvals", operation_id="requestApproval", status_code=201, response_model=Approval)
    async def request(body: ApprovalRequest) -> Approval:
        approval_id = next_id()
        filed[approval_id] = (body.subject, time.monotonic())
        return Approval(approvalId=approval_id, subject=body.subject, status="pending")

    @app.get("/approvals/{approvalId}", operation_id="getApproval", response_model=Approval)
    async def status(approvalId: str) -> Approval:
        if approvalId not in filed:
            raise HTTPException(404, f"no approval {approvalId}")
        subject, since = filed[approvalId]
        await asyncio.sleep(0)
        done = time.monotonic() - since >= env.settings.approval_wait
        return Approval(approvalId=approvalId, subject=subject, status="approved" if done else "pending")

    return app
