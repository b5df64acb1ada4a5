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

from orchscan.collectors.traces.detect import HEAD_BYTES, detect
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.registry import FORMATS

# Every copied trace file and what it is; manifests beside the traces describe them, are not traces.
EXPECTED = {
    "hotrod/traces/jaeger-skills_n_plus_one_full_concurrent.otlp.json": "otlp-json",
    "hotrod/traces/jaeger-skills_n_plus_one_full_serial.otlp.json": "otlp-json",
    "hotrod/traces/jaeger-ui_getTrace-response.otlp.json": "otlp-json",
    "hotrod/traces/jaeger-skills_n_plus_one_full_concurrent.manifest.json": None,
    "hotrod/traces/jaeger-skills_n_plus_one_full_serial.manifest.json": None,
    "opentelemetry-demo/traces/jaeger-skills_error_timeout_masked.otlp.json": "otlp-json",
    "opentelemetry-demo/traces/jaeger-skills_error_timeout_masked.manifest.json": None,
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
