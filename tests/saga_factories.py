"""A choreographed checkout saga, built in code: services react to each other's events.

``checkout POST /orders`` stores the order and publishes ``order-created``; ``payments`` charges
the card at the external PSP and publishes ``payment-completed`` (or ``payment-failed`` for a
declined card, after which ``checkout`` publishes ``order-cancelled``); ``inventory`` reserves
stock in a trace of its own that links to the payment event, and publishes ``stock-reserved``
(or ``stock-rejected``, after which ``payments`` refunds at the PSP and publishes
``payment-refunded``, and ``checkout`` cancels the order); ``shipping`` books a label at the
carrier and publishes ``shipment-created`` for ``notification``. ``analytics`` records every
``order-created`` on the side. When the carrier is down, shipping fails and nobody compensates.
"""

from __future__ import annotations

from dataclasses import dataclass

from factories import LandscapeBuilder, SpanHandle


@dataclass(frozen=True)
class SagaMix:
    """How many checkouts of each outcome :func:`build_saga` records."""

    shipped: int = 6
    declined: int = 2
    out_of_stock: int = 2
    carrier_down: int = 1


#: The event-driven flow's steps on the success path, as ``caller → callee operation``.
SHIPPED_STEPS = (
    "checkout → analytics consume order-created",
    "checkout → payments consume order-created",
    "payments → psp POST /v1/charges",
    "payments → inventory consume payment-completed",
    "inventory → shipping consume stock-reserved",
    "shipping → carrier POST /labels",
    "shipping → notification consume shipment-created",
)


def build_saga(land: LandscapeBuilder, mix: SagaMix = SagaMix()) -> LandscapeBuilder:
    """Record the checkouts of ``mix`` into ``land``; returns ``land`` for chaining."""
    outcomes = (
        ["shipped"] * mix.shipped
        + ["declined"] * mix.declined
        + ["out-of-stock"] * mix.out_of_stock
        + ["carrier-down"] * mix.carrier_down
    )
    for outcome in outcomes:
        _checkout(land, outcome)
    return land


def _checkout(land: LandscapeBuilder, outcome: str) -> None:
    order = land.trace().request("checkout", "POST /orders", ms=40)
    order.query("postgresql", "INSERT", at=2, ms=5)
    created = order.publish("order-created", at=10)
    created.consume("analytics", at=14, ms=8).query("postgresql", "INSERT", at=15, ms=3)
    payments = created.consume("payments", at=15, ms=60)
    declined = outcome == "declined"
    payments.call(
        "psp", "POST /v1/charges", at=18, ms=30, instrumented=False, status_code=402 if declined else 201
    )
    if declined:
        failed = payments.publish("payment-failed", at=55)
        _cancel(failed.consume("checkout", at=60, ms=10), at=62)
        return
    completed = payments.publish("payment-completed", at=55)
    # Inventory takes its messages in a trace of its own and links back to the event.
    stock = land.trace().consume("inventory", "payment-completed", link=completed, ms=50)
    stock.query("postgresql", "UPDATE", at=5, ms=10)
    if outcome == "out-of-stock":
        rejected = stock.publish("stock-rejected", at=30)
        refunds = rejected.consume("payments", at=35, ms=50)
        refunds.call("psp", "POST /v1/refunds", at=38, ms=25, instrumented=False, status_code=201)
        refunded = refunds.publish("payment-refunded", at=70)
        _cancel(refunded.consume("checkout", at=75, ms=10), at=77)
        return
    reserved = stock.publish("stock-reserved", at=30)
    shipping = reserved.consume("shipping", at=35, ms=60)
    down = outcome == "carrier-down"
    shipping.call("carrier", "POST /labels", at=38, ms=30, error=down, status_code=503 if down else 201)
    if down:
        return
    shipped = shipping.publish("shipment-created", at=75)
    shipped.consume("notification", at=80, ms=10)


def _cancel(checkout: SpanHandle, *, at: float) -> None:
    """checkout cancels the order it stored and says so."""
    checkout.query("postgresql", "UPDATE", at=at, ms=3)
    checkout.publish("order-cancelled", at=at + 5)
