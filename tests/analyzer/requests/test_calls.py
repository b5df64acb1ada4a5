"""Call derivation on real HotROD traces: who called whom, per request, with the caller's timing."""

from __future__ import annotations

from pathlib import Path

from orchscan.analyzer.requests.calls import INFRASTRUCTURE, SYNC, build_call_tables
from orchscan.collectors.traces.ingest import ingest


def _hotrod(fixtures: Path, name: str = "jaeger-ui_getTrace-response.otlp.json"):  # type: ignore[no-untyped-def]
    return build_call_tables(ingest([fixtures / "hotrod" / "traces" / name], jobs=1).spans)


def test_frontend_dispatch_calls_customer_driver_and_route(fixtures: Path) -> None:
    tables = _hotrod(fixtures)
    calls = tables.calls
    dispatch = tables.requests[tables.requests["operation"] == "GET /dispatch"]
    assert len(dispatch) == 1
    made = calls[calls["entry_row"] == dispatch["row"].iloc[0]]
    assert made["callee"].tolist() == ["customer", "driver"] + ["route"] * 10
    assert set(made["kind"]) == {SYNC}
    assert made["operation"].tolist()[:2] == ["GET /customer", "driver.DriverService/FindNearest"]


def test_store_pseudo_services_are_infrastructure_calls(fixtures: Path) -> None:
    calls = _hotrod(fixtures).calls
    stores = calls[calls["callee"].isin(["mysql", "redis-manual"])]
    assert set(stores["kind"]) == {INFRASTRUCTURE}
    assert stores.groupby("caller")["callee"].first().to_dict() == {
        "customer": "mysql",
        "driver": "redis-manual",
    }
    # 1 SQL query + 1 FindDriverIDs + 13 GetDriver
    assert len(stores) == 15
    assert stores["error"].sum() == 3


def test_caller_view_timing_is_used_for_client_calls(fixtures: Path) -> None:
    tables = _hotrod(fixtures)
    calls, spans = tables.calls, tables.spans
    route = calls[calls["callee"] == "route"]
    client_start = spans["start_ns"].to_numpy()[route["caller_row"].to_numpy()]
    assert (route["start_ns"].to_numpy() == client_start).all()
    assert (route["end_ns"] >= route["start_ns"]).all()
