"""The ingest pipeline: walking inputs, gzip, parallel parsing, and format round-trip invariants."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from paths import FIXTURES
from sdk_spans import (
    BASE_NS,
    Landscape,
    Recorder,
    assert_matches_landscape,
    batches,
    encode,
    framed,
    otlp_json_lines,
    protobuf_json,
    record_landscape,
    write,
)

from orchscan.collectors.model.records import Chunk
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import InputError, InputReader, _parse_lean, expand_paths, ingest


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


def test_directories_are_walked_for_trace_files_only(land: Landscape, tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    proto = write(tmp_path / "nested" / "a.binpb", framed(batches(land.spans, 4)))
    lines = write(tmp_path / "b.jsonl", otlp_json_lines(batches(land.spans, 4)))
    write(tmp_path / "notes.txt", "not a trace")
    write(tmp_path / ".hidden.json", "{}")
    explicit = write(tmp_path / "export.data", encode(land.spans).SerializeToString())
    assert expand_paths([tmp_path]) == [lines, proto]
    assert expand_paths([tmp_path, explicit]) == [lines, proto, explicit]


def test_gzip_is_recognised_by_content_not_name(land: Landscape, tmp_path: Path) -> None:
    path = write(tmp_path / "traces.json", protobuf_json(encode(land.spans)), compress=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    result = ingest([path], jobs=1)
    assert result.files[0].format == "otlp-json"
    assert_matches_landscape(result.spans.to_pylist(), land)


def test_corrupt_gzip_is_a_skipped_file_not_a_crash(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json.gz", b"\x1f\x8b\x08\x00garbage that is no deflate stream")
    with pytest.raises(InputError, match="compressed data damaged or cut short"):
        ingest([bad], jobs=1)


def test_a_truncated_gzip_keeps_what_was_decompressed_before_the_cut(land: Landscape, tmp_path: Path) -> None:
    # 400 distinct spans: the landscape's, each copy under other trace ids.
    lines = b"".join(
        otlp_json_lines(batches(land.spans, 1)).replace(b'"traceId":"', f'"traceId":"{copy:04x}'.encode())
        for copy in range(40)
    )
    lines = b"\n".join(_shorten_ids(line) for line in lines.split(b"\n"))
    packed = gzip.compress(lines)
    cut = packed[: len(packed) * 6 // 10]
    result = ingest([write(tmp_path / "cut.jsonl.gz", cut)], jobs=1)
    readable = zlib.decompressobj(31).decompress(cut)
    # The same spans as the uncompressed data up to the cut (the last, partial line excepted).
    plain = ingest([write(tmp_path / "plain.jsonl", readable)], jobs=1)
    assert len(land.spans) < result.spans.num_rows == plain.spans.num_rows < len(land.spans) * 40
    (damage,) = [s for s in result.skipped if "compressed data" in s.reason]
    assert damage.position == f"byte {len(readable)} (decompressed)"
    assert (
        "cut short" in damage.reason and "everything decompressed before the damage was read" in damage.reason
    )


def _shorten_ids(line: bytes) -> bytes:
    """Trace ids back to 32 hex digits after a copy number was put in front of them."""
    return re.sub(rb'"traceId":"([0-9a-f]{4})[0-9a-f]{4}([0-9a-f]{28})"', rb'"traceId":"\1\2"', line)


def test_a_gzip_bomb_is_cut_at_the_inflate_ratio(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchscan.collectors.traces import inputs

    # Whitespace between JSON lines compresses a thousandfold, as a bomb does.
    payload = otlp_json_lines(batches(land.spans, 1)) + b" " * (20 << 20)
    packed = write(tmp_path / "bomb.jsonl.gz", payload, compress=True)
    assert packed.stat().st_size * 500 < len(payload)
    monkeypatch.setattr(inputs, "INFLATE_GRACE_BYTES", 1 << 20)
    result = ingest([packed], jobs=1)
    assert result.spans.num_rows == len(land.spans)
    (cut,) = [s for s in result.skipped if "times its compressed size" in s.reason]
    assert "decompression bomb" in cut.reason and cut.reason.endswith("the rest of the file is not read")


def test_file_reports_and_progress(land: Landscape, tmp_path: Path) -> None:
    proto = write(tmp_path / "a.pb", encode(land.spans[:5]).SerializeToString())
    lines = write(tmp_path / "b.jsonl", otlp_json_lines(batches(land.spans[5:], 2)))
    seen: list[int] = []
    result = ingest([proto, lines], jobs=1, on_progress=seen.append)
    assert seen == [proto.stat().st_size, lines.stat().st_size]
    by_file = {Path(f.file).name: f for f in result.files}
    assert by_file["a.pb"].format == "otlp-proto" and by_file["b.jsonl"].format == "otlp-json"
    assert by_file["a.pb"].spans + by_file["b.jsonl"].spans == len(land.spans)
    first = land.spans[:5]
    assert by_file["a.pb"].start_ns == min(s.start_time for s in first if s.start_time is not None)
    assert by_file["a.pb"].end_ns == max(s.end_time for s in first if s.end_time is not None)
    assert by_file["a.pb"].services == tuple(
        sorted({str(s.resource.attributes["service.name"]) for s in first})
    )


def test_parallel_json_lines_equal_serial(land: Landscape, tmp_path: Path) -> None:
    # 1,500 lines are cut into several chunks, parsed by two workers and put back in order.
    requests = batches(land.spans, 1) * 150
    path = write(tmp_path / "many.jsonl", otlp_json_lines(requests))
    serial, parallel = ingest([path], jobs=1), ingest([path], jobs=2)
    assert serial.spans.equals(parallel.spans) and serial.skipped == parallel.skipped
    assert serial.skipped_total == len(land.spans) * 149


def test_no_input_files_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no input files"):
        ingest([tmp_path], jobs=1)


# --- round-trip invariants over random SDK-recorded spans ---------------------------------------------

_KEYS = (
    "http.request.method",
    "http.method",
    "http.route",
    "url.full",
    "url.path",
    "http.response.status_code",
    "server.port",
    "db.system",
    "db.statement",
    "messaging.destination.name",
    "http.request.header.idempotency-key",
    "app.note",
    "app.count",
)
_values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.lists(st.text(alphabet="abc-/?", max_size=5), min_size=1, max_size=3).map(tuple),
)
_span_specs = st.lists(
    st.fixed_dictionaries(
        {
            "service": st.sampled_from(("orders", "billing", "stock")),
            "name": st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=16),
            "kind": st.sampled_from(list(SpanKind)),
            "parent": st.integers(min_value=-1, max_value=30),
            "link": st.integers(min_value=-1, max_value=30),
            "duration": st.integers(min_value=0, max_value=10**9),
            "error": st.one_of(st.none(), st.text(max_size=10, alphabet="xyz <>&")),
            "attributes": st.dictionaries(st.sampled_from(_KEYS), _values, max_size=6),
        }
    ),
    min_size=1,
    max_size=12,
)


def _record(specs: list[dict[str, Any]]) -> list[ReadableSpan]:
    recorder = Recorder()
    started = []
    for index, spec in enumerate(specs):
        parent = started[spec["parent"]] if 0 <= spec["parent"] < index else None
        links = [Link(started[spec["link"]].get_span_context())] if 0 <= spec["link"] < index else []

        span = recorder.tracer(spec["service"], "ns").start_span(
            spec["name"],
            context=trace.set_span_in_context(parent) if parent else None,
            kind=spec["kind"],
            attributes=spec["attributes"],
            links=links,
            start_time=BASE_NS + index,
        )
        if spec["error"] is not None:
            span.set_status(Status(StatusCode.ERROR, spec["error"]))
        started.append(span)
    for span, spec in zip(reversed(started), reversed(specs), strict=True):
        span.end(end_time=BASE_NS + spec["duration"])
    spans = recorder.finished()
    recorder.shutdown()
    return spans


def _sorted(table: pa.Table) -> pa.Table:
    # Decoded: batches holding the same text may number their dictionary entries differently.
    return (
        plain_strings(table)
        .drop_columns(["source"])
        .sort_by([("trace_id", "ascending"), ("span_id", "ascending")])
    )


_settings = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(specs=_span_specs, size=st.integers(min_value=1, max_value=5))
def test_proto_and_json_encodings_give_the_same_table(
    tmp_path: Path, specs: list[dict[str, Any]], size: int
) -> None:
    spans = _record(specs)
    requests = batches(spans, size)
    tables = [
        ingest([write(tmp_path / name, payload)], jobs=1)
        for name, payload in (
            ("a.binpb", framed(requests)),
            ("b.pb", encode(spans).SerializeToString()),
            ("c.json", protobuf_json(encode(spans))),
            ("d.jsonl", otlp_json_lines(requests)),
        )
    ]
    reference = _sorted(tables[0].spans)
    assert reference.num_rows == len(spans)
    for result in tables:
        assert result.skipped == ()
        assert _sorted(result.spans).equals(reference)


@_settings
@given(
    specs=_span_specs,
    repeats=st.integers(min_value=1, max_value=3),
    overlap=st.integers(min_value=0, max_value=12),
)
def test_duplicated_inputs_keep_each_span_once_and_count_the_rest(
    tmp_path: Path, specs: list[dict[str, Any]], repeats: int, overlap: int
) -> None:
    spans = _record(specs)
    whole = framed(batches(spans, 2))
    concatenated = write(tmp_path / "repeated.binpb", whole * repeats)
    part = spans[:overlap]
    files = [concatenated]
    if part:
        files.append(write(tmp_path / "part.jsonl", otlp_json_lines(batches(part, 3))))
    result = ingest(files, jobs=1)
    assert _sorted(result.spans).equals(_sorted(ingest([write(tmp_path / "once.pb", whole)], jobs=1).spans))
    assert result.skipped_total == len(spans) * (repeats - 1) + len(part)
    assert {s.reason for s in result.skipped} <= {"duplicate span id (same trace); first copy kept"}


def test_decompression_past_the_size_limit_keeps_what_was_read_and_names_the_limit(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchscan.collectors.traces import inputs

    monkeypatch.setattr(inputs, "MAX_DECOMPRESSED_BYTES", 64 << 10)
    monkeypatch.setattr(inputs, "_BUFFER", 4096)
    payload = otlp_json_lines(batches(land.spans, 1) * 100)
    path = write(tmp_path / "big.jsonl.gz", payload, compress=True)
    result = ingest([path], jobs=1)
    assert result.spans.num_rows == len(land.spans)
    (cut,) = [s for s in result.skipped if "limit" in s.reason]
    assert cut.file == path.as_posix()
    assert (
        cut.reason == "decompressed size exceeds the limit of 65,536 bytes: the rest of the file is not read"
    )


def test_a_reader_that_fails_on_a_chunk_loses_that_chunk_not_the_scan() -> None:
    # Readers skip bad records themselves; an exception out of one is a bug, and it must cost
    # the chunk it happened in (counted), never the other chunks or files of the scan.
    result = _parse_lean(Chunk("no-such-format", "traces/a.json", b"{}", 7))
    assert result.batch.num_rows == 0
    (skipped,) = result.skipped
    assert (skipped.file, skipped.position) == ("traces/a.json", "chunk at 7")
    assert skipped.reason.startswith("reader failed on this chunk (KeyError")


@pytest.mark.parametrize(
    "relative",
    [
        "hotrod/traces/jaeger-skills_n_plus_one_full_serial.otlp.json",
        "opentelemetry-demo/traces/jaeger-skills_error_timeout_masked.otlp.json",
        "spring-petclinic/traces/spanAmongEachOtherGroupedAndSpans.jaeger.json",
        "zipkin-lens-testdata/traces/messaging-kafka.json",
        "tempo/traces/oats-trace_by_id.tempo-v2.json",
        "../../sample_traces/traces/shop.otlp.pb.gz",
        "../../sample_traces/renditions/shop.zipkin.json.gz",
    ],
)
def test_leaving_the_other_attributes_out_changes_nothing_else(relative: str) -> None:
    """Real traces of every format, and the sample landscape as OTLP protobuf and Zipkin, read both ways."""
    source = FIXTURES / relative
    tables = {}
    for keep in (True, False):
        reader = InputReader([source], jobs=1, keep_attributes=keep)
        tables[keep] = pa.Table.from_batches(list(reader.batches()))
        assert not reader.skipped
    kept, left_out = tables[True], tables[False]
    assert kept.num_rows > 0 and any(kept["attributes"].to_pylist())
    assert left_out["attributes"].null_count == left_out.num_rows
    others = [name for name in kept.schema.names if name != "attributes"]
    assert plain_strings(left_out.select(others)).equals(plain_strings(kept.select(others)))


def test_values_left_out_are_not_counted_as_cut(tmp_path: Path) -> None:
    """A statement past the length cap is cut, and the cut counted, only where it is kept."""
    statement = "SELECT " + "x" * 9_000
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "SELECT",
                                "kind": 3,
                                "startTimeUnixNano": "1754000000000000000",
                                "endTimeUnixNano": "1754000000100000000",
                                "attributes": [
                                    {"key": "db.system", "value": {"stringValue": "postgresql"}},
                                    {
                                        "key": "db.statement",
                                        "value": {"stringValue": statement},
                                    },
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    path = write(tmp_path / "long.json", json.dumps(document).encode())
    cuts = {}
    for keep in (True, False):
        reader = InputReader([path], jobs=1, keep_attributes=keep)
        (batch,) = list(reader.batches())
        assert batch.column("db_operation").to_pylist() == ["SELECT"]
        cuts[keep] = [notice.reason for notice in reader.notices]
    assert cuts == {True: ["value longer than 8,192 characters cut to that length"], False: []}
