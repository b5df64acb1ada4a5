"""Zipkin v2 JSON: real production traces from Zipkin's UI test data, the OpenTelemetry Zipkin
exporter's own encoding of SDK spans, shared-span splitting and bad input."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint
from paths import FIXTURES
from sdk_spans import KIND_NAMES, STATUS_NAMES, Landscape, hex_span_id, hex_trace_id, record_landscape

from orchscan.cli import EXIT_INPUT, main
from orchscan.collectors.model.records import Chunk, Skipped
from orchscan.collectors.model.spans import SEMANTIC_COLUMNS
from orchscan.collectors.traces.formats.zipkin import NAME, parse
from orchscan.collectors.traces.ingest import ingest

LENS = FIXTURES / "zipkin-lens-testdata" / "traces"

# file -> (traces, span records, named services), as PROVENANCE.md counts them.
PROVENANCE = {
    "smartthings-mobile-web-install.json": (1, 1041, 16),
    "smartthings-oauth-authorization.json": (1, 175, 8),
    "yelp.json": (1, 16, 6),
    "messaging-kafka.json": (1, 28, 2),
    "messaging2.json": (1, 11, 4),
    "ascend.json": (1, 8, 3),
    "simple-db-p6.json": (1, 5, 1),
    "messaging.json": (1, 4, 2),
    "skew.json": (1, 4, 2),
    "envoy.json": (1, 1, 0),
}
# Records without a timestamp in smartthings-mobile-web-install: parts carrying only a name and
# an endpoint, each merged into the server record with the same id and endpoint.
PARTS = 84
# Server records that share their id with a client (B3 shared spans): each gets a derived id.
SERVER_HALVES = 348


def _parse(path: Path) -> tuple[list[dict[str, Any]], tuple[Skipped, ...]]:
    result = parse(Chunk(NAME, path.as_posix(), path.read_bytes(), 0))
    return result.batch.to_pylist(), result.skipped


def _raw(name: str) -> list[dict[str, Any]]:
    return json.loads((LENS / name).read_text())  # type: ignore[no-any-return]


# --- the real Zipkin Lens traces ---------------------------------------------------------------


def test_fixture_records_match_provenance() -> None:
    for name, (traces, records, services) in PROVENANCE.items():
        raw = _raw(name)
        assert len({s["traceId"] for s in raw}) == traces, name
        assert len(raw) == records, name
        assert len({s["localEndpoint"].get("serviceName") for s in raw} - {None}) == services, name
    assert sum(records for _, records, _ in PROVENANCE.values()) == 1293


def test_lens_traces_read_with_parts_merged_and_shared_spans_split() -> None:
    result = ingest([LENS], jobs=1)
    assert result.skipped == ()
    assert {f.format for f in result.files} == {"zipkin-json"}
    rows = result.spans.to_pylist()
    # 1,293 records: 84 parts merge away, leaving 1,209 spans. 864 distinct ids were in the
    # input; splitting gives 348 server halves ids of their own (3 ids were carried only by a
    # server whose client is not in the data, so 864 - 3 + 348 = 1,209).
    assert len(rows) == 1293 - PARTS == 1209
    raw_ids = {s["id"] for name in PROVENANCE for s in _raw(name)}
    assert len(raw_ids) == 864
    assert sum(1 for r in rows if r["span_id"] not in raw_ids) == SERVER_HALVES
    assert len({(r["trace_id"], r["span_id"]) for r in rows}) == 1209
    assert len({r["trace_id"] for r in rows}) == 10
    assert len({r["service"] for r in rows}) == 34
    per_file = {Path(f.file).name: (f.traces, f.spans) for f in result.files}
    assert per_file["smartthings-mobile-web-install.json"] == (1, 1041 - PARTS)
    assert all(
        per_file[name] == (t, n)
        for name, (t, n, _) in PROVENANCE.items()
        if name != "smartthings-mobile-web-install.json"
    )
    # messaging2 lacks the span its transfer-service spans name as parent; nothing else is headless.
    assert [(Path(n.file).name, n.count) for n in result.notices] == [("messaging2.json", 6)]


@pytest.mark.parametrize("name", sorted(PROVENANCE))
def test_each_lens_trace_is_one_tree_with_sane_kinds_and_times(name: str) -> None:
    rows, skipped = _parse(LENS / name)
    assert skipped == ()
    keys = {(r["trace_id"], r["span_id"]) for r in rows}
    assert len(keys) == len(rows)
    assert sum(1 for r in rows if r["parent_span_id"] is None) == 1
    for row in rows:
        assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16
        assert row["end_ns"] >= row["start_ns"] > 1_400_000_000 * 10**9
        assert row["kind"] in {"client", "server", "producer", "consumer", "internal"}
        assert row["parent_span_id"] != row["span_id"]
    # Every record with a timestamp is one span of its own kind; parts only add detail.
    timed = [s for s in _raw(name) if "timestamp" in s]
    assert Counter(r["kind"] for r in rows) == Counter((s.get("kind") or "internal").lower() for s in timed)


def test_skew_trace_server_half_gets_own_id_under_its_client() -> None:
    rows, _ = _parse(LENS / "skew.json")
    by_name = {(r["service"], r["kind"], r["name"]): r for r in rows}
    client = by_name[("servicea", "client", "post")]
    server = by_name[("serviceb", "server", "post")]
    local = by_name[("serviceb", "internal", "async")]
    root = by_name[("servicea", "server", "get")]
    assert client["span_id"] == "74280ae0c10d8062" and client["parent_span_id"] == root["span_id"]
    assert server["span_id"] != "74280ae0c10d8062" and server["parent_span_id"] == "74280ae0c10d8062"
    # serviceb's local span named the shared id as parent: it belongs below serviceb's server half.
    assert local["parent_span_id"] == server["span_id"]
    assert (
        server["start_ns"] == 1470150004008761 * 1000
        and server["end_ns"] == (1470150004008761 + 93577) * 1000
    )


def test_yelp_root_server_without_client_takes_its_place() -> None:
    rows, _ = _parse(LENS / "yelp.json")
    (root,) = [r for r in rows if r["parent_span_id"] is None]
    assert (root["service"], root["kind"], root["name"]) == ("routing", "server", "post /location/update/v4")
    below_root = {(r["service"], r["kind"]) for r in rows if r["parent_span_id"] == root["span_id"]}
    assert below_root == {("unknown", "client"), ("yelp-main", "client")}
    # mobile_api's server half sits under yelp-main's client; mobile_api's own calls under the server half.
    (mobile,) = [r for r in rows if r["service"] == "mobile_api" and r["kind"] == "server"]
    assert mobile["parent_span_id"] == "f5f268651b2a2b34"
    calls = [r for r in rows if r["service"] == "mobile_api" and r["kind"] == "client"]
    assert len(calls) == 4 and {c["parent_span_id"] for c in calls} == {mobile["span_id"]}
    assert {c["peer_service"] for c in calls} == {"memcache", "spectre", "blt"}


def test_parts_merge_into_the_server_half_of_the_same_endpoint() -> None:
    rows, _ = _parse(LENS / "smartthings-mobile-web-install.json")
    # Three records share this id: strongman's client, platformapi's shared server, and a
    # name-only part from platformapi. The part joins the server: two spans remain.
    same_call = [r for r in rows if "a0dc23f22c4fee3f" in (r["span_id"], r["parent_span_id"])]
    assert sorted((r["service"], r["kind"]) for r in same_call if r["name"].startswith("post")) == [
        ("platformapi", "server"),
        ("strongman", "client"),
    ]
    server = next(r for r in same_call if r["service"] == "platformapi" and r["kind"] == "server")
    assert server["start_ns"] == 1543549825673008 * 1000
    assert dict(server["attributes"])["oauth.clientId"] == "57a6c0a8-cac9-4921-a349-267092837d72"


def test_a_part_fills_in_what_the_timed_record_lacks(tmp_path: Path) -> None:
    timed = _good("a1", kind=None, tags={})
    timed.pop("duration")
    part = {
        "traceId": timed["traceId"],
        "id": "a1",
        "kind": "SERVER",
        "duration": 2_000,
        "localEndpoint": {"serviceName": "orders"},
        "tags": {"http.route": "/orders"},
        "annotations": [{"timestamp": 1_700_000_000_000_100, "value": "wr"}],
    }
    other = {**part, "localEndpoint": {"serviceName": "billing"}, "id": "a2"}
    rows, skipped = _parse(_write(tmp_path, "parts.json", [part, timed, other]))
    (row,) = rows
    assert (row["kind"], row["http_route"], row["end_ns"] - row["start_ns"]) == (
        "server",
        "/orders",
        2_000_000,
    )
    assert dict(row["attributes"])["zipkin.annotations"] == "wr"
    assert [(s.position, s.reason) for s in skipped] == [
        ("[2]", "span has no timestamp and no other part of it carries one")
    ]


def test_flushed_client_spans_without_duration_are_kept_as_instants() -> None:
    rows, _ = _parse(LENS / "smartthings-mobile-web-install.json")
    flushed = [r for r in rows if dict(r["attributes"]).get("zipkin.annotations") == "brave.flush"]
    assert len(flushed) == 83
    assert {r["kind"] for r in flushed} == {"client"} and all(r["end_ns"] == r["start_ns"] for r in flushed)


def test_a_message_delivered_five_times_gives_five_server_halves() -> None:
    rows, _ = _parse(LENS / "smartthings-oauth-authorization.json")
    halves = [r for r in rows if r["parent_span_id"] == "9d2d35b746db84f3" and r["service"] == "pusher"]
    assert len(halves) == 5 and len({h["span_id"] for h in halves}) == 5
    processing = [r for r in rows if r["name"].startswith("process.") and r["service"] == "pusher"]
    half_ids = {h["span_id"] for h in halves}
    assert processing and all(p["parent_span_id"] in half_ids for p in processing)


def test_derived_ids_do_not_depend_on_record_order(tmp_path: Path) -> None:
    raw = _raw("smartthings-oauth-authorization.json")
    random.Random(7).shuffle(raw)
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps(raw))
    original, _ = _parse(LENS / "smartthings-oauth-authorization.json")
    again, _ = _parse(shuffled)

    def tree(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {(r["span_id"], r["parent_span_id"], r["service"], r["start_ns"]) for r in rows}

    assert tree(original) == tree(again)


def test_messaging_and_database_tags_fill_semantic_columns() -> None:
    kafka, _ = _parse(LENS / "messaging-kafka.json")
    sends = [r for r in kafka if r["kind"] == "producer"]
    assert {(r["messaging_system"], r["messaging_destination"], r["peer_service"]) for r in sends} == {
        ("kafka", "messages", "kafka"),
        ("kafka", "command-messages", "kafka"),
        ("kafka", "central.messages", "kafka"),
    }
    failed = sorted((r["status_message"] or "") for r in kafka if r["status"] == "error")
    assert failed == ["", "some error", "some error"]
    rabbit, _ = _parse(LENS / "messaging.json")
    consumer = next(r for r in rabbit if r["kind"] == "consumer")
    assert (consumer["messaging_system"], consumer["messaging_destination"]) == ("rabbitmq", "backend")
    db, _ = _parse(LENS / "simple-db-p6.json")
    calls = [r for r in db if r["kind"] == "client"]
    assert {r["db_system"] for r in calls} == {"other_sql"}
    assert Counter(r["db_operation"] for r in calls) == Counter({"INSERT": 3, "CALL": 1})
    assert {r["peer_service"] for r in calls} == {"app_db"}
    server = next(r for r in db if r["kind"] == "server")
    assert (server["http_method"], server["url_path"]) == ("POST", "/book")
    assert dict(server["attributes"])["http.url"] == "http://localhost:9777/book"


def test_envoy_span_without_service_name_is_unknown() -> None:
    rows, _ = _parse(LENS / "envoy.json")
    (row,) = rows
    assert (row["service"], row["kind"], row["parent_span_id"], row["http_status_code"]) == (
        "unknown",
        "server",
        None,
        200,
    )


# --- a real producer: the OpenTelemetry Zipkin exporter's JSON v2 encoder ------------------------


def _zipkin_json(land: Landscape, *, nested: bool) -> str:
    """Encode every SDK span as each service's Zipkin exporter would, one endpoint per service."""
    addresses = {
        "frontend": "10.1.0.1",
        "checkout": "10.1.0.2",
        "payment": "10.1.0.3",
        "accounting": "10.1.0.4",
    }
    encoded: list[dict[str, Any]] = []
    for span in land.spans:
        service = str(span.resource.attributes["service.name"])
        endpoint = NodeEndpoint(ipv4=addresses[service], port=8080)
        # The exporter takes the name from the global tracer provider; here each service has its own.
        endpoint.service_name = service
        encoded += json.loads(JsonV2Encoder().serialize([span], endpoint))
    if not nested:
        return json.dumps(encoded)
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span_json in encoded:
        by_trace.setdefault(span_json["traceId"], []).append(span_json)
    return json.dumps(list(by_trace.values()))


def _micro_round(ns: int) -> int:
    return (ns + 500) // 1000 * 1000


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


@pytest.mark.parametrize("nested", [False, True], ids=["span-list", "trace-lists"])
def test_opentelemetry_zipkin_encoding_round_trips(land: Landscape, tmp_path: Path, nested: bool) -> None:
    path = tmp_path / "zipkin.json"
    path.write_text(_zipkin_json(land, nested=nested))
    result = ingest([path], jobs=1)
    assert result.skipped == () and result.notices == ()
    assert result.files[0].format == "zipkin-json"
    rows = {(r["trace_id"], r["span_id"]): r for r in result.spans.to_pylist()}
    assert len(rows) == len(land.spans) == 10
    for span in land.spans:
        row = rows[(hex_trace_id(span), hex_span_id(span))]
        resource = span.resource.attributes
        assert row["parent_span_id"] == (format(span.parent.span_id, "016x") if span.parent else None)
        assert (row["service"], row["service_namespace"], row["service_instance"], row["k8s_namespace"]) == (
            resource.get("service.name"),
            resource.get("service.namespace"),
            resource.get("service.instance.id"),
            resource.get("k8s.namespace.name"),
        )
        assert (row["name"], row["kind"]) == (span.name, KIND_NAMES[span.kind])
        # Zipkin keeps microseconds: start rounds, and so does the duration.
        assert span.start_time is not None and span.end_time is not None
        assert row["start_ns"] == _micro_round(span.start_time)
        assert row["end_ns"] - row["start_ns"] == _micro_round(span.end_time - span.start_time)
        assert row["status"] == STATUS_NAMES[span.status.status_code]
        assert row["status_message"] == (span.status.description or None)
        assert row["links"] is None  # Zipkin has no links
        expectation = land.expected[(row["service"], span.name)]
        semantic = {c: row[c] for c in SEMANTIC_COLUMNS if row[c] is not None}
        assert semantic == expectation.semantic, span.name
        assert row["idempotency_key"] is expectation.idempotency_key, span.name
        attributes = dict(row["attributes"])
        assert attributes["otel.scope.name"] == "orchscan.tests"
        assert "error" not in attributes and "service.namespace" not in attributes
    charge = rows[
        next(
            (hex_trace_id(s), hex_span_id(s))
            for s in land.spans
            if s.kind.name == "SERVER" and s.name.startswith("oteldemo")
        )
    ]
    assert charge["status_message"] == "card declined"
    assert "CardError" in dict(charge["attributes"])["zipkin.annotations"]


# --- bad input -----------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, payload: Any) -> Path:
    path = tmp_path / name
    path.write_bytes(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    return path


def _good(span_id: str, **extra: Any) -> dict[str, Any]:
    span = {
        "traceId": "463ac35c9f6413ad48485a3953bb6124",
        "id": span_id,
        "kind": "SERVER",
        "name": "get /orders",
        "timestamp": 1_700_000_000_000_000,
        "duration": 1_500,
        "localEndpoint": {"serviceName": "orders", "ipv4": "10.0.0.9"},
        "tags": {"http.method": "GET", "http.path": "/orders"},
    }
    span.update(extra)
    return span


def test_malformed_json_is_skipped_naming_the_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.json", b'[{"traceId": "463ac35c9f6413ad", "id": ')
    result = parse(Chunk(NAME, path.as_posix(), path.read_bytes(), 0))
    (skip,) = result.skipped
    assert (skip.file, skip.position) == (path.as_posix(), "document")
    assert skip.reason.startswith("malformed JSON:")


def test_per_span_defects_are_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    spans = [
        _good("a1"),
        _good("", name="no id"),
        _good("a3", traceId="not-hex"),
        {k: v for k, v in _good("a4").items() if k != "timestamp"},
        _good("a5", timestamp="noon"),
        "not a span",
        _good(
            "a7",
            parentId="a1",
            kind="CLIENT",
            remoteEndpoint={"serviceName": "stock", "ipv4": "10.0.0.3", "port": 9000},
        ),
    ]
    rows, skipped = _parse(_write(tmp_path, "mixed.json", spans))
    assert [r["span_id"] for r in rows] == ["00000000000000a1", "00000000000000a7"]
    assert {s.position: s.reason for s in skipped} == {
        "[1]": "missing or invalid traceId/id (expected 16 or 32 / 16 hex digits)",
        "[2]": "missing or invalid traceId/id (expected 16 or 32 / 16 hex digits)",
        "[3]": "span has no timestamp and no other part of it carries one",
        "[4]": "invalid timestamp/duration (expected microseconds)",
        "[5]": "span is not an object",
    }
    client = rows[1]
    assert (client["peer_service"], client["server_address"], client["server_port"]) == (
        "stock",
        "10.0.0.3",
        9000,
    )


def test_invalid_utf8_in_a_name_keeps_the_span_with_a_replacement_character(tmp_path: Path) -> None:
    raw = json.dumps([_good("a1", name="get @@"), _good("a2")]).encode().replace(b"@@", b"\xc3\x28")
    rows, skipped = _parse(_write(tmp_path, "bad-utf8.json", raw))
    assert skipped == ()
    assert sorted(r["name"] for r in rows) == ["get /orders", "get \ufffd("]


def test_zipkin_v1_is_rejected_with_a_clear_reason(tmp_path: Path) -> None:
    v1 = [
        {
            "traceId": "463ac35c9f6413ad",
            "id": "a1",
            "name": "get",
            "timestamp": 1_700_000_000_000_000,
            "annotations": [
                {"timestamp": 1_700_000_000_000_000, "value": "sr", "endpoint": {"serviceName": "orders"}},
                {"timestamp": 1_700_000_000_001_000, "value": "ss", "endpoint": {"serviceName": "orders"}},
            ],
            "binaryAnnotations": [{"key": "http.path", "value": "/orders"}],
        }
    ]
    path = _write(tmp_path, "v1.json", v1)
    result = ingest([path, _write(tmp_path, "v2.json", [_good("b1")])], jobs=1)
    assert result.spans.num_rows == 1
    (skip,) = result.skipped
    assert (Path(skip.file).name, skip.reason, skip.count) == (
        "v1.json",
        "Zipkin v1 format is not supported (convert to v2)",
        1,
    )
    assert result.files[0].format == "zipkin-json"


def test_empty_list_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.json", [])
    rows, skipped = _parse(path)
    assert rows == [] and [s.reason for s in skipped] == ["empty list: no spans"]


def test_64_bit_records_join_their_128_bit_trace() -> None:
    wide = _good("a1")
    narrow = _good("a2", traceId="48485a3953bb6124", parentId="a1", kind="CLIENT")
    rows = parse(Chunk(NAME, "mixed-width.json", json.dumps([wide, narrow]).encode(), 0)).batch.to_pylist()
    assert {r["trace_id"] for r in rows} == {"463ac35c9f6413ad48485a3953bb6124"}


def test_gzip_and_json_lines_are_read(tmp_path: Path) -> None:
    lines = "\n".join(json.dumps([_good(f"c{i}")]) for i in range(3)) + "\n"
    path = tmp_path / "spans.jsonl.gz"
    path.write_bytes(gzip.compress(lines.encode()))
    result = ingest([path], jobs=1)
    assert result.files[0].format == "zipkin-json" and result.spans.num_rows == 3


def test_inspect_exits_2_only_when_nothing_was_read(tmp_path: Path) -> None:
    partly = _write(tmp_path, "partly.json", [_good("a1"), _good("", name="x")])
    hopeless = _write(tmp_path, "hopeless.json", [_good(""), _good("zz")])
    ok = CliRunner().invoke(main, ["inspect", "--json", "-j", "1", str(partly)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["totals"]["skipped"] == 1
    nothing = CliRunner().invoke(main, ["inspect", "-j", "1", str(hopeless)])
    assert nothing.exit_code == EXIT_INPUT
    assert "hopeless.json" in nothing.output and "missing or invalid traceId/id" in nothing.output
    empty = CliRunner().invoke(main, ["inspect", "-j", "1", str(_write(tmp_path, "empty.json", []))])
    assert empty.exit_code == EXIT_INPUT and "empty list: no spans" in empty.output
