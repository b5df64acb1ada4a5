"""OTLP/JSON as real producers write it (protobuf's JSON printer, the Collector, Jaeger), read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson
from sdk_spans import (
    Landscape,
    assert_matches_landscape,
    batches,
    encode,
    otlp_json,
    otlp_json_lines,
    protobuf_json,
    record_landscape,
    write,
)

from orchscan.collectors.traces.ingest import ingest


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


def _read(path: Path, land: Landscape, fmt: str = "otlp-json") -> None:
    result = ingest([path], jobs=1)
    assert result.skipped == () and result.notices == ()
    assert [f.format for f in result.files] == [fmt]
    assert_matches_landscape(result.spans.to_pylist(), land)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_protobuf_json_printer_output_base64_ids_enum_names(
    land: Landscape, tmp_path: Path, compress: bool
) -> None:
    text = protobuf_json(encode(land.spans))
    assert '"kind": "SPAN_KIND_SERVER"' in text and '"code": "STATUS_CODE_ERROR"' in text
    _read(write(tmp_path / "traces.json", text, compress=compress), land)


def test_protobuf_json_printer_with_proto_field_names(land: Landscape, tmp_path: Path) -> None:
    text = MessageToJson(encode(land.spans), preserving_proto_field_name=True)
    assert '"resource_spans"' in text and '"start_time_unix_nano"' in text
    _read(write(tmp_path / "traces.json", text), land)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_collector_json_lines_hex_ids(land: Landscape, tmp_path: Path, compress: bool) -> None:
    payload = otlp_json_lines(batches(land.spans, 3))
    assert payload.count(b"\n") == 4
    first = json.loads(payload.splitlines()[0])
    span = first["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
    _read(write(tmp_path / "traces.jsonl", payload, compress=compress), land)


def test_single_pretty_printed_document_hex_ids(land: Landscape, tmp_path: Path) -> None:
    _read(write(tmp_path / "traces.json", json.dumps(otlp_json(encode(land.spans)), indent=2)), land)


def test_jaeger_api_v3_result_envelope(land: Landscape, tmp_path: Path) -> None:
    _read(write(tmp_path / "trace.json", json.dumps({"result": otlp_json(encode(land.spans))})), land)


def test_hotrod_traces_counts_kinds_parents_and_rpc(fixtures: Path) -> None:
    result = ingest([fixtures / "hotrod" / "traces"], jobs=1)
    traces = {Path(f.file).name: f for f in result.files if f.spans}
    assert sorted(traces) == [
        "jaeger-skills_n_plus_one_full_concurrent.otlp.json",
        "jaeger-skills_n_plus_one_full_serial.otlp.json",
        "jaeger-ui_getTrace-response.otlp.json",
    ]
    services = ("customer", "driver", "frontend", "mysql", "redis-manual", "route")
    assert {(f.spans, f.traces, f.services) for f in traces.values()} == {(40, 1, services)}
    assert result.notices == ()
    frame = result.spans.to_pandas()
    roots = frame[frame.parent_span_id.isna()]
    assert sorted(roots.name) == ["GET /dispatch"] * 3 and set(roots.kind) == {"server"}
    # Every non-root span's parent is a span of the same trace.
    ids = set(zip(frame.trace_id, frame.span_id, strict=True))
    children = frame[frame.parent_span_id.notna()]
    assert all((t, p) in ids for t, p in zip(children.trace_id, children.parent_span_id, strict=True))
    kinds = frame.groupby(["service", "kind"]).size().to_dict()
    assert kinds[("frontend", "server")] == 3 and kinds[("route", "server")] == 30
    assert kinds[("redis-manual", "client")] == 42
    grpc = frame[frame.rpc_system.notna()]
    assert set(zip(grpc.service, grpc.kind, grpc.rpc_system, strict=True)) == {
        ("frontend", "client", "grpc"),
        ("driver", "server", "grpc"),
    }
    assert set(frame[frame.service == "route"].http_route) == {"/route"}
    assert (frame.end_ns >= frame.start_ns).all() and (frame.start_ns > 1_500_000_000 * 10**9).all()


def test_opentelemetry_demo_trace_counts_and_services(fixtures: Path) -> None:
    result = ingest([fixtures / "opentelemetry-demo" / "traces"], jobs=1)
    (trace,) = [f for f in result.files if f.spans]
    assert (trace.spans, trace.traces) == (26, 1)
    assert trace.services == ("cart", "frontend", "frontend-proxy", "load-generator", "product-catalog")
    frame = result.spans.to_pandas()
    (root,) = frame[frame.parent_span_id.isna()].itertuples()
    assert (root.service, root.name) == ("load-generator", "user_checkout_multi")
    assert set(frame.kind) <= {"server", "client", "internal"}
    catalog = frame[frame.rpc_service == "oteldemo.ProductCatalogService"]
    assert set(catalog.rpc_method) == {"GetProduct"} and set(catalog.rpc_system) == {"grpc"}
    assert set(frame[frame.service == "cart"].db_system.dropna()) == {"redis"}
    assert (frame.status == "error").any()
