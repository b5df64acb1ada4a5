"""Format detection from content: every real fixture, tiny heads of each format, gzip via ingest."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from paths import FIXTURES
from sdk_spans import encode, record_landscape

from orchscan.collectors.traces.detect import HEAD_BYTES, detect
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.registry import FORMATS
from orchscan.collectors.traces.sniffing import NO, SURE

# Every copied trace file and what it is; manifests beside the traces describe them, are not traces.
EXPECTED = {
    "hotrod/traces/jaeger-skills_n_plus_one_full_concurrent.otlp.json": "otlp-json",
    "hotrod/traces/jaeger-skills_n_plus_one_full_serial.otlp.json": "otlp-json",
    "hotrod/traces/jaeger-ui_getTrace-response.otlp.json": "otlp-json",
    "hotrod/traces/jaeger-skills_n_plus_one_full_concurrent.manifest.json": None,
    "hotrod/traces/jaeger-skills_n_plus_one_full_serial.manifest.json": None,
    "opentelemetry-demo/traces/jaeger-skills_error_timeout_masked.otlp.json": "otlp-json",
    "opentelemetry-demo/traces/jaeger-skills_error_timeout_masked.manifest.json": None,
    "tempo/traces/oats-trace_by_id.tempo-v1.json": "otlp-json",
    "tempo/traces/oats-trace_by_id.tempo-v2.json": "otlp-json",
    **{
        f"spring-petclinic/traces/{p.name}": "jaeger-json"
        for p in (FIXTURES / "spring-petclinic" / "traces").iterdir()
    },
    **{
        f"zipkin-lens-testdata/traces/{p.name}": "zipkin-json"
        for p in (FIXTURES / "zipkin-lens-testdata" / "traces").iterdir()
    },
}


def test_every_fixture_trace_file_is_listed() -> None:
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.glob("*/traces/*") if p.is_file()}
    assert on_disk == set(EXPECTED)
    assert len([v for v in EXPECTED.values() if v == "zipkin-json"]) == 10
    assert len([v for v in EXPECTED.values() if v == "jaeger-json"]) == 3


@pytest.mark.parametrize(("name", "fmt"), sorted(EXPECTED.items(), key=lambda item: item[0]))
def test_real_fixture_is_detected_from_its_head(name: str, fmt: str | None) -> None:
    assert detect((FIXTURES / name).read_bytes()[:HEAD_BYTES]) == fmt


def _request() -> bytes:
    span = Span(trace_id=bytes(range(16)), span_id=bytes(range(8)), name="GET /", start_time_unix_nano=1)
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    return request.SerializeToString()


TRACE = {"traceID": "ab", "spanID": "cd"}


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b'{"resourceSpans": [{"resource": {}}]}', "otlp-json"),
        (b'\xef\xbb\xbf\n  {"resource_spans": []}', "otlp-json"),
        (b'{"result": {"resourceSpans": []}}', "otlp-json"),
        # Keys in another order: the first key is not decisive, the window is.
        (b'{"schemaUrl": "", "resourceSpans": []}', "otlp-json"),
        (b'{"resourceSpans": []}\n{"resourceSpans": []}\n', "otlp-json"),
        (_request(), "otlp-proto"),
        (struct.pack(">I", len(_request())) + _request(), "otlp-proto"),
        (json.dumps({"data": [{**TRACE, "spans": []}], "total": 0}).encode(), "jaeger-json"),
        (json.dumps({"traceID": "ab", "spans": [TRACE], "processes": {}}).encode(), "jaeger-json"),
        (json.dumps({"spans": [TRACE], "traceID": "ab"}).encode(), "jaeger-json"),
        (json.dumps([{"traceID": "ab", "spans": [TRACE]}]).encode(), "jaeger-json"),
        (b'[{"traceId": "463ac35c9f6413ad", "id": "a1"}]', "zipkin-json"),
        (b'[[{"traceId" : "463ac35c9f6413ad", "id": "a1"}]]', "zipkin-json"),
        (b"[ ]\n", "zipkin-json"),
        (b'{"openapi": "3.0.0"}', None),
        (b'[{"name": "not a span"}]', None),
        (b"  \n", None),
        (b"\x00\x01garbage", None),
    ],
    ids=lambda value: value.decode("latin-1")[:32] if isinstance(value, bytes) else str(value),
)
def test_small_heads_are_recognised(head: bytes, fmt: str | None) -> None:
    assert detect(head) == fmt
    assert fmt is None or fmt in FORMATS


def test_gzip_is_detected_by_content_whatever_the_name(tmp_path: Path) -> None:
    zipkin = (FIXTURES / "zipkin-lens-testdata" / "traces" / "yelp.json").read_bytes()
    jaeger = (FIXTURES / "spring-petclinic" / "traces" / "testTraceNormal.jaeger.json").read_bytes()
    (tmp_path / "yelp.json.gz").write_bytes(gzip.compress(zipkin))
    # A misleading name: gzip inside, Jaeger JSON inside that.
    (tmp_path / "trace.pb").write_bytes(gzip.compress(jaeger))
    result = ingest([tmp_path / "yelp.json.gz", tmp_path / "trace.pb"], jobs=1)
    assert [(Path(f.file).name, f.format, f.spans) for f in result.files] == [
        ("yelp.json.gz", "zipkin-json", 16),
        ("trace.pb", "jaeger-json", 5),
    ]
    assert result.skipped == ()


def test_every_registered_format_sniffs_its_own_fixture_surest() -> None:
    heads = {fmt: (FIXTURES / name).read_bytes()[:HEAD_BYTES] for name, fmt in EXPECTED.items() if fmt}
    heads["otlp-proto"] = encode(record_landscape().spans).SerializeToString()
    assert set(heads) == set(FORMATS)
    for name, fmt in FORMATS.items():
        mine = fmt.sniff(heads[name])
        assert mine > NO, name
        assert all(other.sniff(heads[name]) < mine for key, other in FORMATS.items() if key != name), name


def _request_whose_first_resource_spans_is(size: int) -> bytes:
    """A real SDK-encoded request, its first ResourceSpans padded to exactly ``size`` bytes."""
    request = encode(record_landscape().spans)
    first = request.resource_spans[0]
    del first.resource.attributes[:]
    del first.scope_spans[1:]
    del first.scope_spans[0].spans[1:]
    first.scope_spans[0].ClearField("scope")
    span = first.scope_spans[0].spans[0]
    del span.attributes[:]
    span.name = "GET"
    for field in ("parent_span_id", "flags", "status"):
        span.ClearField(field)
    pad = first.resource.attributes.add(key="pad")
    for length in range(size):
        pad.value.string_value = "x" * length
        if first.ByteSize() >= size:
            break
    assert first.ByteSize() == size
    return request.SerializeToString()


# First-message sizes whose length varint reads like JSON once a BOM or whitespace byte is
# stripped: 91 = 0x5b '[', 123 = 0x7b '{', 11,759 = 0xef 0x5b, 15,803 = 0xbb 0x7b, 15,855 = 0xef 0x7b.
@pytest.mark.parametrize("size", [91, 123, 11_759, 15_803, 15_855, 300])
def test_valid_protobuf_is_never_taken_for_text(tmp_path: Path, size: int) -> None:
    body = _request_whose_first_resource_spans_is(size)
    assert body[0] == 0x0A
    for payload in (body, struct.pack(">I", len(body)) + body):
        assert detect(payload[:HEAD_BYTES]) == "otlp-proto"
        assert FORMATS["otlp-proto"].sniff(payload[:HEAD_BYTES]) == SURE
        path = tmp_path / "request.pb"
        path.write_bytes(payload)
        result = ingest([path], jobs=1)
        assert result.files[0].format == "otlp-proto"
        assert result.skipped == ()
        assert result.spans.num_rows == sum(
            len(scope.spans)
            for rs in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope in rs.scope_spans
        )


@pytest.mark.parametrize(
    "text",
    [b'\n{"resourceSpans": []}', b'\n\n[{"traceId": "ab", "id": "cd"}]', b"\n" + b"{" * 40],
    ids=["newline-otlp", "newlines-zipkin", "braces"],
)
def test_text_starting_with_a_newline_is_not_protobuf(text: bytes) -> None:
    assert FORMATS["otlp-proto"].sniff(text) == NO
