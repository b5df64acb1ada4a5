"""Jaeger JSON (query API / UI download): real PetClinic traces, every tag convention, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from paths import FIXTURES

from orchscan.cli import EXIT_INPUT, main
from orchscan.collectors.model.records import Chunk, Notice, Skipped
from orchscan.collectors.traces.formats.jaeger import NAME, parse
from orchscan.collectors.traces.ids import hex_id
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.limits import END_BEFORE_START

PETCLINIC = FIXTURES / "spring-petclinic" / "traces"
START_US = 1_700_000_000_123_456


def _rows(path: Path) -> tuple[list[dict[str, Any]], tuple[Skipped, ...]]:
    result = parse(Chunk(NAME, path.as_posix(), path.read_bytes(), 0))
    return result.batch.to_pylist(), result.skipped


def _notices(path: Path) -> tuple[Notice, ...]:
    return parse(Chunk(NAME, path.as_posix(), path.read_bytes(), 0)).notices


# --- the real PetClinic traces -----------------------------------------------------------------


def test_petclinic_counts_match_provenance() -> None:
    result = ingest([PETCLINIC], jobs=1)
    assert result.skipped == () and result.notices == ()
    assert {f.format for f in result.files} == {"jaeger-json"}
    assert result.spans.num_rows == 30
    assert len(set(result.spans["trace_id"].to_pylist())) == 3
    assert set(result.spans["service"].to_pylist()) == {"api-gateway", "customers-service"}
    spans_per_file = {Path(f.file).name: (f.spans, f.traces) for f in result.files}
    assert spans_per_file == {
        "spanAmongEachOtherGroupedAndSpans.jaeger.json": (17, 1),
        "spanLongerAsParent.jaeger.json": (8, 1),
        "testTraceNormal.jaeger.json": (5, 1),
    }


def test_petclinic_ids_times_kinds_and_parents_are_sane() -> None:
    rows = ingest([PETCLINIC], jobs=1).spans.to_pylist()
    keys = {(r["trace_id"], r["span_id"]) for r in rows}
    assert len(keys) == 30
    for row in rows:
        assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16
        assert row["end_ns"] >= row["start_ns"]
        assert row["parent_span_id"] is None or (row["trace_id"], row["parent_span_id"]) in keys
    roots = [r for r in rows if r["parent_span_id"] is None]
    assert {(r["service"], r["kind"]) for r in roots} == {("api-gateway", "server")}
    assert len(roots) == 3
    # The gateway calls the customers service: client span in api-gateway, server span below it.
    by_key = {(r["trace_id"], r["span_id"]): r for r in rows}
    served = [r for r in rows if r["service"] == "customers-service" and r["kind"] == "server"]
    assert served and all(
        by_key[(r["trace_id"], r["parent_span_id"])]["service"] == "api-gateway" for r in served
    )
    # JDBC spans carry no span.kind tag: OpenTracing's local spans.
    jdbc = [r for r in rows if r["name"] == "HikariProxyPreparedStatement.executeQuery"]
    assert len(jdbc) == 18 and {r["kind"] for r in jdbc} == {"internal"}


def test_petclinic_short_ids_are_left_padded_and_times_are_nanoseconds() -> None:
    rows, _ = _rows(PETCLINIC / "spanAmongEachOtherGroupedAndSpans.jaeger.json")
    # The file writes the trace id with 31 digits and some span ids as "1", "2", "3".
    assert {r["trace_id"] for r in rows} == {"0df84e36b9e2ee3815d07f0867a5be1f"}
    assert {"0000000000000001", "0000000000000002", "0000000000000003"} <= {r["span_id"] for r in rows}
    first = next(r for r in rows if r["span_id"] == "6962df17f54c3741")
    assert first["start_ns"] == 1573131432955376 * 1000
    assert first["end_ns"] - first["start_ns"] == 2977 * 1000
    assert first["parent_span_id"] == "9afcdf2e24e8d70a"
    assert (first["service"], first["kind"], first["name"]) == ("api-gateway", "client", "GET /owners")
    rows, _ = _rows(PETCLINIC / "spanLongerAsParent.jaeger.json")
    assert {r["parent_span_id"] for r in rows if r["name"].startswith("Hikari")} == {"04b52eb0cabcb50a"}


# --- tag conventions, references, processes ----------------------------------------------------


def _tag(key: str, value: Any) -> dict[str, Any]:
    kind = {bool: "bool", int: "int64", float: "float64"}.get(type(value), "string")
    return {"key": key, "type": kind, "value": value}


def _span(
    span_id: str, name: str, process: str, offset_us: int, duration_us: int, **extra: Any
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceID": "1f2e3d4c5b6a7988",
        "spanID": span_id,
        "flags": 1,
        "operationName": name,
        "references": [],
        "startTime": START_US + offset_us,
        "duration": duration_us,
        "tags": [],
        "logs": [],
        "processID": process,
        "warnings": None,
    }
    span.update(extra)
    return span


def _child_of(span_id: str, trace_id: str = "1f2e3d4c5b6a7988", ref: str = "CHILD_OF") -> dict[str, str]:
    return {"refType": ref, "traceID": trace_id, "spanID": span_id}


def hotrod_trace() -> dict[str, Any]:
    """A HotROD-style trace as Jaeger's query API returns it, with OpenTracing and OTel tags."""
    return {
        "traceID": "1f2e3d4c5b6a7988",
        "processes": {
            "p1": {
                "serviceName": "frontend",
                "tags": [
                    _tag("hostname", "hotrod-1"),
                    _tag("service.namespace", "hotrod"),
                    _tag("service.instance.id", "fe-7"),
                    _tag("k8s.namespace.name", "web"),
                ],
            },
            "p2": {"serviceName": "customer", "tags": [_tag("ip", "10.0.0.5")]},
            "p3": {"serviceName": "driver", "tags": []},
        },
        "warnings": None,
        "spans": [
            _span(
                "a1",
                "HTTP GET /dispatch",
                "p1",
                0,
                700_000,
                tags=[
                    _tag("span.kind", "server"),
                    _tag("http.method", "GET"),
                    _tag("http.url", "/dispatch?customer=123&nonse=0.6"),
                    _tag("http.status_code", 200),
                    _tag("component", "net/http"),
                ],
            ),
            _span(
                "a2",
                "HTTP GET",
                "p1",
                1_000,
                300_000,
                references=[_child_of("a1")],
                tags=[
                    _tag("span.kind", "client"),
                    _tag("http.method", "GET"),
                    _tag("http.url", "http://0.0.0.0:8081/customer?customer=123"),
                    _tag("peer.service", "customer"),
                    _tag("error", True),
                ],
                logs=[
                    {"timestamp": START_US + 2_000, "fields": [_tag("event", "GetConn")]},
                    {
                        "timestamp": START_US + 290_000,
                        "fields": [_tag("event", "error"), _tag("message", "customer lookup timed out")],
                    },
                ],
            ),
            _span(
                "a3",
                "SQL SELECT",
                "p2",
                5_000,
                280_000,
                references=[_child_of("a2")],
                tags=[
                    _tag("span.kind", "client"),
                    _tag("peer.service", "mysql"),
                    _tag("db.type", "sql"),
                    _tag("db.statement", "select * from customer where customerId = 123"),
                    _tag("peer.hostname", "mysql.hotrod"),
                    _tag("peer.port", 3306),
                ],
            ),
            # Two parents in this trace and a reference into another trace: first CHILD_OF wins.
            _span(
                "a4",
                "FindDriverIDs",
                "p3",
                310_000,
                20_000,
                references=[
                    _child_of("feed", trace_id="00000000000000000000000000abcdef", ref="FOLLOWS_FROM"),
                    _child_of("a2", ref="FOLLOWS_FROM"),
                    _child_of("a1"),
                ],
                tags=[_tag("otel.status_code", "ERROR"), _tag("otel.status_description", "redis timeout")],
            ),
            _span(
                "a5",
                "orders publish",
                "p1",
                330_000,
                5_000,
                references=[_child_of("a1", ref="FOLLOWS_FROM")],
                tags=[_tag("span.kind", "producer"), _tag("message_bus.destination", "orders")],
            ),
            # Legacy exports name the parent in a field of the span, not in references.
            _span(
                "a6", "render", "p1", 340_000, 1_000, parentSpanID="a1", tags=[_tag("otel.status_code", "OK")]
            ),
            # Per-span defects: each is skipped, the others are kept.
            _span("a7", "lost", "p9", 350_000, 1_000),
            _span("", "no id", "p1", 350_000, 1_000),
            _span("a8", "bad time", "p1", 0, 1_000, startTime="yesterday"),
            _span("a9", "negative", "p1", 350_000, -5),
        ],
    }


def test_tags_references_processes_and_status_become_columns(tmp_path: Path) -> None:
    path = tmp_path / "hotrod.json"
    path.write_text(
        json.dumps({"data": [hotrod_trace()], "total": 0, "limit": 0, "offset": 0, "errors": None})
    )
    rows, skipped = _rows(path)
    by_id = {r["span_id"][-2:]: r for r in rows}
    assert set(by_id) == {"a1", "a2", "a3", "a4", "a5", "a6", "a9"}
    assert {r["trace_id"] for r in rows} == {"00000000000000001f2e3d4c5b6a7988"}
    # A negative duration is an end before the start: kept, ending at its start, and counted.
    assert by_id["a9"]["end_ns"] == by_id["a9"]["start_ns"]
    assert [(n.reason, n.count) for n in _notices(path)] == [(END_BEFORE_START, 1)]

    root = by_id["a1"]
    assert root["parent_span_id"] is None
    assert (root["service"], root["service_namespace"], root["service_instance"], root["k8s_namespace"]) == (
        "frontend",
        "hotrod",
        "fe-7",
        "web",
    )
    assert (root["kind"], root["http_method"], root["url_path"], root["http_status_code"]) == (
        "server",
        "GET",
        "/dispatch",
        200,
    )
    assert root["start_ns"] == START_US * 1000 and root["end_ns"] == (START_US + 700_000) * 1000
    assert dict(root["attributes"]) == {
        "component": "net/http",
        "http.url": "/dispatch?customer=123&nonse=0.6",
    }

    call = by_id["a2"]
    assert call["parent_span_id"] == "00000000000000a1"
    assert (call["kind"], call["status"], call["status_message"]) == (
        "client",
        "error",
        "customer lookup timed out",
    )
    assert (call["peer_service"], call["server_address"], call["server_port"], call["url_path"]) == (
        "customer",
        "0.0.0.0",
        8081,
        "/customer",
    )
    assert "error" not in dict(call["attributes"]) and "span.kind" not in dict(call["attributes"])

    db = by_id["a3"]
    assert (db["service"], db["service_namespace"]) == ("customer", None)
    assert (db["db_system"], db["db_operation"], db["server_address"], db["server_port"]) == (
        "sql",
        "SELECT",
        "mysql.hotrod",
        3306,
    )

    driver = by_id["a4"]
    assert driver["parent_span_id"] == "00000000000000a1"
    assert driver["kind"] == "internal"
    assert (driver["status"], driver["status_message"]) == ("error", "redis timeout")
    assert driver["links"] == [
        {"trace_id": "00000000000000000000000000abcdef", "span_id": "000000000000feed"},
        {"trace_id": "00000000000000001f2e3d4c5b6a7988", "span_id": "00000000000000a2"},
    ]

    publish = by_id["a5"]
    assert (publish["parent_span_id"], publish["kind"], publish["messaging_destination"]) == (
        "00000000000000a1",
        "producer",
        "orders",
    )
    assert publish["links"] is None
    assert (by_id["a6"]["parent_span_id"], by_id["a6"]["status"]) == ("00000000000000a1", "ok")

    reasons = {s.position: s.reason for s in skipped}
    assert reasons == {
        "data[0].spans[6]": "unknown processID 'p9' (not in the trace's processes)",
        "data[0].spans[7]": "missing or invalid traceID/spanID (expected up to 32/16 hex digits)",
        "data[0].spans[8]": "missing or invalid startTime/duration (expected microseconds)",
    }
    assert {s.file for s in skipped} == {path.as_posix()}


def test_embedded_process_is_used_when_the_processes_map_is_absent(tmp_path: Path) -> None:
    trace = hotrod_trace()
    span = trace["spans"][0]
    span.pop("processID")
    span["process"] = {"serviceName": "embedded", "tags": []}
    path = tmp_path / "embedded.json"
    path.write_text(json.dumps({"traceID": trace["traceID"], "spans": [span]}))
    rows, skipped = _rows(path)
    assert skipped == () and [r["service"] for r in rows] == ["embedded"]


@pytest.mark.parametrize("shape", ["envelope", "bare", "list", "lines", "gzip"])
def test_every_document_shape_is_detected_and_read(tmp_path: Path, shape: str) -> None:
    trace = hotrod_trace()
    other = json.loads(json.dumps(trace).replace("1f2e3d4c5b6a7988", "2f2e3d4c5b6a7988"))
    payload = {
        "envelope": json.dumps({"data": [trace, other]}),
        "bare": json.dumps(trace),
        "list": json.dumps([trace, other]),
        "lines": json.dumps(trace) + "\n" + json.dumps(other) + "\n",
        "gzip": json.dumps({"data": [trace, other]}),
    }[shape].encode()
    path = tmp_path / ("traces.json.gz" if shape == "gzip" else "traces.json")
    path.write_bytes(gzip.compress(payload) if shape == "gzip" else payload)
    result = ingest([path], jobs=1)
    assert result.files[0].format == "jaeger-json"
    traces = 1 if shape == "bare" else 2
    assert (result.files[0].spans, result.files[0].traces) == (7 * traces, traces)
    assert sum(s.count for s in result.skipped) == 3 * traces
    positions = {s.position for s in result.skipped}
    expected_prefix = {
        "envelope": "data[1].spans[",
        "bare": "spans[",
        "list": "[1].spans[",
        "lines": "line 2: spans[",
        "gzip": "data[1].spans[",
    }[shape]
    assert any(p.startswith(expected_prefix) for p in positions), positions


# --- bad input -----------------------------------------------------------------------------------


def test_malformed_json_is_skipped_naming_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"data": [{"traceID": "ab", "spans": [')
    result = parse(Chunk(NAME, path.as_posix(), path.read_bytes(), 0))
    (skip,) = result.skipped
    assert (skip.file, skip.position) == (path.as_posix(), "document")
    assert skip.reason.startswith("malformed JSON:")
    assert result.batch.num_rows == 0


def test_invalid_utf8_in_a_name_keeps_the_span_with_a_replacement_character(tmp_path: Path) -> None:
    trace = hotrod_trace()
    trace["spans"][0]["operationName"] = "HTTP GET @@"
    raw = json.dumps({"data": [trace]}).encode().replace(b"@@", b"\xff\xfe")
    path = tmp_path / "latin1.json"
    path.write_bytes(raw)
    rows, skipped = _rows(path)
    assert len(rows) == 7 and len(skipped) == 3
    assert "HTTP GET \ufffd\ufffd" in {r["name"] for r in rows}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "empty list: no traces"),
        ({"data": []}, "Jaeger API response with no traces (empty data)"),
        (
            {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]},
            "Jaeger API response carries errors and no traces: trace not found",
        ),
        ({"data": [{"traceID": "ab"}]}, "not a trace object (no spans list)"),
    ],
)
def test_documents_without_spans_say_why(tmp_path: Path, document: Any, reason: str) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(document))
    result = parse(Chunk(NAME, path.as_posix(), path.read_bytes(), 0))
    assert [s.reason for s in result.skipped] == [reason]
    assert result.batch.num_rows == 0


def test_inspect_exits_2_only_when_nothing_was_read(tmp_path: Path) -> None:
    good = tmp_path / "partly-bad.json"
    good.write_text(json.dumps({"data": [hotrod_trace()]}))
    bad = tmp_path / "all-bad.json"
    trace = hotrod_trace()
    trace["spans"] = trace["spans"][6:9]
    bad.write_text(json.dumps({"data": [trace]}))

    partly = CliRunner().invoke(main, ["inspect", "--json", "-j", "1", str(good)])
    assert partly.exit_code == 0, partly.output
    doc = json.loads(partly.output)
    assert doc["totals"]["spans"] == 7 and doc["totals"]["skipped"] == 3

    nothing = CliRunner().invoke(main, ["inspect", "-j", "1", str(bad)])
    assert nothing.exit_code == EXIT_INPUT
    assert "all-bad.json" in nothing.output and "unknown processID 'p9'" in nothing.output


@pytest.mark.parametrize(
    ("value", "width", "expected"),
    [
        ("4B52EB0CABCB50A", 16, "04b52eb0cabcb50a"),
        ("1f2e3d4c5b6a7988", 32, "00000000000000001f2e3d4c5b6a7988"),
        ("0000000000000000", 16, None),
        ("0x1f", 16, None),
        ("+1f", 16, None),
        (" 1f", 16, None),
        ("1_f", 16, None),
        ("1" * 17, 16, None),
        ("", 16, None),
        (31, 16, None),
        (None, 16, None),
    ],
)
def test_hex_ids_are_validated_and_padded(value: Any, width: int, expected: str | None) -> None:
    assert hex_id(value, width) == expected
