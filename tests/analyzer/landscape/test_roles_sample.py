"""Roles on the recorded sample landscape: every planted role is found, no false orchestrator."""

from __future__ import annotations

import json
from functools import cache

import pytest
from paths import SAMPLE
from scans import roles_of

from orchscan.analyzer.requests.calls import build_call_tables
from orchscan.analyzer.results import ServiceRole
from orchscan.collectors.traces.ingest import ingest


@cache
def _roles() -> dict[str, ServiceRole]:
    spans = ingest([SAMPLE / "traces"], jobs=1).spans
    return {role.name: role for role in roles_of(build_call_tables(spans))}


@cache
def _expected() -> dict[str, object]:
    return json.loads((SAMPLE / "expected.json").read_text())  # type: ignore[no-any-return]


def _planted() -> dict[str, str]:
    roles = _expected()["roles"]
    assert isinstance(roles, dict)
    return roles


PLANTED = sorted(_planted())


@pytest.mark.parametrize("name", PLANTED)
def test_every_planted_role_is_found(name: str) -> None:
    role = _roles()[name]
    assert role.role == _planted()[name], role.evidence


def test_no_false_orchestrator() -> None:
    found = {name for name, role in _roles().items() if role.role == "orchestrator"}
    assert found == {name for name, role in _planted().items() if role == "orchestrator"}


def test_hidden_orchestrators_do_their_own_work() -> None:
    roles = _roles()
    # orders and returns write to their own SQLite; the BFF and partner API only coordinate.
    assert {name: roles[name].hidden for name in ("orders", "returns", "mobile-bff", "partner-api")} == {
        "orders": True,
        "returns": True,
        "mobile-bff": False,
        "partner-api": False,
    }
    # Declined payments (40 of 400) stop the flow early, so fewer than four callees on average.
    assert roles["orders"].evidence[0].startswith("per POST /orders request it calls 3.8 services")
    assert "(inventory, payment, shipping, notification)" in roles["orders"].evidence[0]


def test_uninstrumented_approval_desk_is_external() -> None:
    approvals = _roles()["approvals"]
    assert approvals.requests == 0
    assert approvals.evidence[0].endswith("calls from returns reached it with no instrumented answer")


def test_stores_are_infrastructure_and_nothing_else_is() -> None:
    infrastructure = _expected()["infrastructure"]
    assert isinstance(infrastructure, dict)
    known = set(infrastructure["databases"]) | set(infrastructure["brokers"])
    found = {name for name, role in _roles().items() if role.role == "infrastructure"}
    assert found and found <= known


def test_orchestrators_outrank_everything_but_the_composer() -> None:
    ranked = sorted(_roles().values(), key=lambda r: (-r.score, r.name))
    assert [r.role for r in ranked[:5]].count("orchestrator") == 4
    assert ranked[0].role in ("orchestrator", "composer")
