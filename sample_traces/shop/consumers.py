"""Services that react to events only: the choreography around ``order-placed``."""

from __future__ import annotations

import sqlite3
from typing import Any

from shop.env import Env

TOPIC = "order-placed"


def start_consumers(env: Env) -> None:
    """Subscribe loyalty, analytics and email to ``order-placed``, each with its own database."""
    _subscribe(
        env,
        "loyalty",
        "CREATE TABLE points (customer_id TEXT, order_id TEXT, points INTEGER)",
        "INSERT INTO points VALUES (:customerId, :orderId, CAST(:amount AS INTEGER))",
    )
    _subscribe(
        env,
        "analytics",
        "CREATE TABLE sale (order_id TEXT, amount REAL)",
        "INSERT INTO sale VALUES (:orderId, :amount)",
    )
    _subscribe(
        env,
        "email",
        "CREATE TABLE outbox (customer_id TEXT, template TEXT, order_id TEXT)",
        "INSERT INTO outbox VALUES (:customerId, 'thank-you', :orderId)",
    )


def _subscribe(env: Env, service: str, schema: str, statement: str) -> None:
    def setup(db: sqlite3.Connection) -> None:
        db.execute(schema)

    db = env.telemetry.database(service, env.db_uri(service), setup)
    tracer = env.telemetry.provider(service).get_tracer(f"shop.{service}")

    def handle(event: dict[str, Any]) -> None:
        db.execute(statement, event)

    env.broker.subscribe(tracer, service, TOPIC, handle)
