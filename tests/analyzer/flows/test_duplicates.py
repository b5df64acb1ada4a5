"""Duplicated flows: the same steps behind different owners, with each copy's drift in plain words."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from factories import LandscapeBuilder
from scans import mined_flows

from orchscan.analyzer.results import Flow
from orchscan.analyzer.thresholds import FlowThresholds

_STEPS = {
    "inventory": "POST /reservations",
    "payment": "POST /payments",
    "shipping": "POST /shipments",
    "notification": "POST /notifications",
}


def _checkout(
    land: LandscapeBuilder,
    owner: str,
    entry: str,
    order: list[str],
    *,
    payment_fails: bool = False,
    release: bool = True,
) -> None:
    request = land.trace().request(owner, entry, ms=300, status_code=402 if payment_fails else 201)
    at = 5.0
    for service in order:
        failing = payment_fails and service == "payment"
        request.call(service, _STEPS[service], at=at, ms=20, status_code=402 if failing else 201)
        at += 25
        if failing:
            if release:
                request.call(
                    "inventory", "DELETE /reservations/{id}", path="/reservations/r-000001", at=at, ms=5
                )
            return


def _landscape() -> pa.Table:
    land = LandscapeBuilder()
    full = ["inventory", "payment", "shipping", "notification"]
    for _ in range(6):
        _checkout(land, "orders", "POST /orders", full)
        _checkout(land, "mobile-bff", "POST /mobile/checkout", full)
        _checkout(land, "partner-api", "POST /partner/orders", ["payment", "inventory", "shipping"])
        _checkout(land, "search", "GET /search", [])
    for _ in range(2):
        _checkout(land, "orders", "POST /orders", full, payment_fails=True)
        _checkout(land, "mobile-bff", "POST /mobile/checkout", full, payment_fails=True, release=False)
    return land.table()


def _flows(table: pa.Table, **thresholds: Any) -> dict[str, Flow]:
    owners = ("orders", "mobile-bff", "partner-api")
    flows, _ = mined_flows(table, owners=owners, thresholds=FlowThresholds(**thresholds))
    return {f.owner: f for f in flows}


def test_copies_are_grouped_and_their_drift_described() -> None:
    flows = _flows(_landscape())
    orders = flows["orders"]
    drift = {d.owner: d.differences for d in orders.duplicates}
    assert set(drift) == {"mobile-bff", "partner-api"}
    assert drift["partner-api"] == (
        "partner-api never calls notification",
        "partner-api calls payment before inventory",
    )
    assert drift["mobile-bff"] == (
        "mobile-bff does not call inventory DELETE /reservations/{id} to undo inventory when payment fails",
    )
    # Seen from the copy, the original adds what the copy lacks.
    back = {d.owner: d.differences for d in flows["partner-api"].duplicates}
    assert back["orders"] == ("orders also calls notification", "orders calls inventory before payment")


def test_a_dissimilar_flow_is_no_copy() -> None:
    flows = _flows(_landscape(), duplicate_similarity=0.8)
    assert {d.owner for d in flows["orders"].duplicates} == {"mobile-bff"}
    assert flows["partner-api"].duplicates == ()


def test_one_owner_is_never_its_own_duplicate() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        _checkout(land, "orders", "POST /orders", ["inventory", "payment", "shipping"])
        _checkout(land, "orders", "POST /orders/express", ["inventory", "payment", "shipping"])
    flows, _ = mined_flows(land.table())
    assert len(flows) == 2
    assert all(f.duplicates == () for f in flows)


def test_a_copy_that_compensates_more_says_so_from_both_sides() -> None:
    flows = _flows(_landscape())
    # mobile-bff leaves the reservation in place when payment fails; orders releases it.
    seen_from_mobile = {d.owner: d.differences for d in flows["mobile-bff"].duplicates}
    assert (
        "orders also calls inventory DELETE /reservations/{id} to undo inventory when payment fails"
        in seen_from_mobile["orders"]
    )
    # partner-api pays before it reserves: a payment failure there has nothing to undo, so the
    # original's release is no difference worth reporting.
    seen_from_partner = {d.owner: d.differences for d in flows["partner-api"].duplicates}
    assert not any("DELETE /reservations" in note for note in seen_from_partner["orders"])


def test_many_differences_of_one_kind_are_listed_up_to_a_limit_then_counted() -> None:
    land = LandscapeBuilder()
    ledgers = [f"ledger-{i:02d}" for i in range(11)]
    for _ in range(6):
        for owner, entry, callees in (
            ("orders", "POST /orders", [*_STEPS, *ledgers]),
            ("mobile-bff", "POST /mobile/checkout", list(_STEPS)),
        ):
            request = land.trace().request(owner, entry, ms=600, status_code=201)
            for i, service in enumerate(callees):
                request.call(
                    service, _STEPS.get(service, "POST /entries"), at=5 + 25 * i, ms=20, status_code=201
                )
    flows = _flows(land.table(), duplicate_similarity=0.2)
    (mobile_copy,) = flows["orders"].duplicates
    assert mobile_copy.differences == (
        *(f"mobile-bff never calls {ledger}" for ledger in ledgers[:8]),
        "... and 3 more missing steps",
    )
    (orders_copy,) = flows["mobile-bff"].duplicates
    assert orders_copy.differences == (
        *(f"orders also calls {ledger}" for ledger in ledgers[:8]),
        "... and 3 more extra steps",
    )
