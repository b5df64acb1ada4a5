"""The committed sample landscape: its files parse, agree with their manifest and with each other.

The renditions were written by the OpenTelemetry SDK's own encoders (see
sample_traces/README.md); these tests read them back with orchscan's collectors.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from paths import SAMPLE

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.registry import FORMATS

MANIFEST: dict[str, Any] = json.loads((SAMPLE / "manifest.json").read_text())
EXPECTED: dict[str, Any] = json.loads((SAMPLE / "expected.json").read_text())
FILES = {entry["format"]: entry for entry in MANIFEST["files"]}


def read(entry: dict[str, Any], folder: Path = SAMPLE) -> pa.Table:
    """Ingest one rendition, checking it against its manifest entry on the way."""
    result = ingest([folder / entry["path"]], jobs=1)
    (report,) = result.files
    assert report.format == entry["format"]
    assert (report.spans, report.traces, list(report.services)) == (
        entry["spans"],
        entry["traces"],
        entry["services"],
    )
    assert result.skipped == ()
    assert result.notices == ()
    # As text: the checks below group and join across batches, whose dictionaries differ.
    return plain_strings(result.spans)


def readable(fmt: str) -> None:
    """Skip when no reader for ``fmt`` is registered yet (only Zipkin may be missing)."""
    if fmt not in FORMATS:
        assert fmt == "zipkin-json", f"no reader for {fmt}"
        pytest.skip(f"no {fmt} reader registered")


@pytest.fixture(scope="module")
def otlp() -> pa.Table:
    """The primary rendition's span table."""
    return read(FILES["otlp-proto"])


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=[entry["path"] for entry in MANIFEST["files"]])
def test_committed_file_matches_manifest(entry: dict[str, Any]) -> None:
    readable(entry["format"])
    table = read(entry)
    per_service = table.group_by("service").aggregate([("span_id", "count")]).to_pylist()
    assert {row["service"]: row["span_id_count"] for row in per_service} == MANIFEST["services"]


def test_the_readme_gives_the_counts_a_scan_reads(otlp: pa.Table) -> None:
    readme = (SAMPLE / "README.md").read_text()
    match = re.search(r"\(([\d ]+) spans in ([\d ]+) traces\)", readme)
    assert match is not None
    spans, traces = (int(group.replace(" ", "")) for group in match.groups())
    assert spans == otlp.num_rows == MANIFEST["files"][0]["spans"]
    assert traces == len(set(otlp["trace_id"].to_pylist())) == MANIFEST["files"][0]["traces"]


def _identity(table: pa.Table) -> set[tuple[str, str, str | None, str]]:
    rows = table.select(["trace_id", "span_id", "parent_span_id", "service"]).to_pylist()
    return {(r["trace_id"], r["span_id"], r["parent_span_id"], r["service"]) for r in rows}


def test_otlp_json_is_the_same_traffic(otlp: pa.Table) -> None:
    other = read(FILES["otlp-json"])
    assert _identity(other) == _identity(otlp)
    columns = [
        "span_id",
        "kind",
        "start_ns",
        "end_ns",
        "status",
        "http_route",
        "http_status_code",
        "idempotency_key",
    ]
    assert other.select(columns).sort_by("span_id").equals(otlp.select(columns).sort_by("span_id"))


def test_zipkin_is_the_same_traffic(otlp: pa.Table) -> None:
    readable("zipkin-json")
    other = read(FILES["zipkin-json"])
    assert other.num_rows == otlp.num_rows
    assert pc.count_distinct(other["trace_id"]).as_py() == pc.count_distinct(otlp["trace_id"]).as_py()
    assert _identity(other) == _identity(otlp)


def test_expectations_cover_every_recorded_service() -> None:
    assert set(EXPECTED["roles"]) == set(MANIFEST["services"]) | {"approvals"}


def test_openapi_specs_name_their_service_and_operations() -> None:
    operations: dict[str, dict[str, Any]] = {}
    for relative in MANIFEST["openapi"]:
        spec = json.loads((SAMPLE / relative).read_text())
        assert spec["x-service-name"] == Path(relative).stem
        for path, methods in spec["paths"].items():
            for method, operation in methods.items():
                operations[f"{spec['x-service-name']} {method.upper()} {path}"] = operation
    steps = {step for flow in EXPECTED["flows"] for step in flow["steps"]}
    assert steps <= set(operations), steps - set(operations)
    for key in ("shipping POST /shipments", "payment POST /payments", "payment POST /refunds"):
        headers = [p["name"] for p in operations[key].get("parameters", []) if p["in"] == "header"]
        assert headers == ["Idempotency-Key"], key
    assert operations["inventory POST /reservations"]["operationId"] == "reserveStock"


def _calls(otlp: pa.Table) -> pa.Table:
    """Server spans joined to the client span that called them: caller, callee, route, status."""
    servers = otlp.filter(pc.equal(otlp["kind"], "server")).select(
        [
            "trace_id",
            "parent_span_id",
            "service",
            "http_method",
            "http_route",
            "http_status_code",
            "idempotency_key",
        ]
    )
    clients = otlp.filter(pc.equal(otlp["kind"], "client")).select(["trace_id", "span_id", "service"])
    clients = clients.rename_columns(["trace_id", "parent_span_id", "caller"])
    return servers.join(clients, ["trace_id", "parent_span_id"], join_type="inner")


def _count(table: pa.Table, **equal: object) -> int:
    mask = None
    for column, value in equal.items():
        test = pc.equal(table[column], value)
        mask = test if mask is None else pc.and_(mask, test)
    return table.filter(mask).num_rows


def test_failure_logic_is_in_the_traces(otlp: pa.Table) -> None:
    calls = _calls(otlp)
    responses = MANIFEST["patterns"]["responses"]
    # Declined payments are compensated by releasing the reservation.
    released = _count(calls, caller="orders", service="inventory", http_method="DELETE")
    assert released == responses["orders"]["402"] > 0
    # Shipping retries from orders carry no Idempotency-Key; those from mobile-bff do.
    retried = _count(calls, caller="orders", service="shipping", http_status_code=503)
    assert retried > responses["orders"]["503"] * 3
    assert _count(calls, caller="orders", service="shipping", idempotency_key=True) == 0
    assert _count(calls, caller="mobile-bff", service="shipping", idempotency_key=False) == 0


def test_legacy_billing_starts_new_traces(otlp: pa.Table) -> None:
    roots = otlp.filter(pc.invert(otlp["parent_span_id"].is_valid()))
    orphaned = _count(roots, service="legacy-billing", kind="client")
    assert orphaned == 3 * MANIFEST["settings"]["mix"]["invoices"]


def test_consumers_link_to_their_producer(otlp: pa.Table) -> None:
    consumers = otlp.filter(pc.equal(otlp["kind"], "consumer"))
    producers = set(otlp.filter(pc.equal(otlp["kind"], "producer"))["span_id"].to_pylist())
    assert set(consumers["service"].to_pylist()) == set(EXPECTED["choreographies"][0]["consumers"])
    linked = {link["span_id"] for links in consumers["links"].to_pylist() for link in links}
    assert linked == producers
    assert set(consumers["parent_span_id"].to_pylist()) == producers


def test_returns_outlast_every_other_flow(otlp: pa.Table) -> None:
    spans = otlp.group_by("trace_id").aggregate([("start_ns", "min"), ("end_ns", "max")])
    durations = pc.subtract(spans["end_ns_max"], spans["start_ns_min"])
    returns = set(otlp.filter(pc.equal(otlp["service"], "returns"))["trace_id"].to_pylist())
    is_return = pc.is_in(spans["trace_id"], pa.array(sorted(returns)))
    wait_ns = MANIFEST["settings"]["approval_wait_seconds"] * 1e9
    assert pc.min(durations.filter(is_return)).as_py() >= wait_ns
    assert pc.max(durations.filter(pc.invert(is_return))).as_py() < wait_ns / 2


@pytest.mark.slow
def test_recording_a_tiny_mix(tmp_path: Path) -> None:
    mix = [
        "--orders",
        "12",
        "--mobile",
        "4",
        "--partner",
        "4",
        "--gateway",
        "8",
        "--pages",
        "3",
        "--returns",
        "2",
        "--invoices",
        "2",
        "--lookups",
        "2",
        "--approval-wait",
        "0.3",
    ]
    subprocess.run(
        [sys.executable, str(SAMPLE / "record.py"), "--out", str(tmp_path), *mix],
        check=True,
        timeout=120,
        capture_output=True,
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["settings"]["mix"]["orders"] == 12
    for entry in manifest["files"]:
        if entry["format"] in FORMATS:
            table = read(entry, tmp_path)
            assert set(table["service"].to_pylist()) >= {"orders", "inventory", "payment", "shop-client"}
    assert sum(manifest["patterns"]["responses"]["orders"].values()) == 12
    assert len(manifest["openapi"]) == 18
