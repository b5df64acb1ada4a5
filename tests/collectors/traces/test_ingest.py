"""The ingest pipeline: walking inputs, gzip, parallel parsing, and format round-trip invariants."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
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

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import InputError, expand_paths, ingest


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


def test_corrupt_gzip_is_a_skipped_file_not_a_crash(land: Landscape, tmp_path: Path) -> None:
    good = write(tmp_path / "good.pb", encode(land.spans).SerializeToString())
    packed = gzip.compress(protobuf_json(encode(land.spans)).encode())
    bad = write(tmp_path / "bad.json.gz", packed[: len(packed) // 2])
    result = ingest([good, bad], jobs=1)
    assert result.spans.num_rows == len(land.spans)
    ((skipped,),) = [[s for s in result.skipped if s.file == bad.as_posix()]]
    assert skipped.position in ("file", "document")


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
