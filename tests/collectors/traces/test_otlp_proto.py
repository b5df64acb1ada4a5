"""OTLP protobuf as the OpenTelemetry SDK and its OTLP/HTTP exporter write it, read back field by field."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace.export import SpanExportResult
from sdk_spans import (
    BASE_NS,
    Landscape,
    assert_matches_landscape,
    batches,
    encode,
    framed,
    record_landscape,
    write,
)

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.limits import MARKER, NAME_CHARS, NAME_CUT


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_bare_export_request_round_trips_every_field(land: Landscape, tmp_path: Path, compress: bool) -> None:
    path = write(tmp_path / "request.pb", encode(land.spans).SerializeToString(), compress=compress)
    result = ingest([path], jobs=1)
    assert result.skipped == () and result.notices == ()
    assert result.files[0].format == "otlp-proto"
    assert_matches_landscape(result.spans.to_pylist(), land)
    assert set(result.spans["source"].to_pylist()) == {path.as_posix()}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_collector_framed_stream_of_several_messages_round_trips(
    land: Landscape, tmp_path: Path, compress: bool
) -> None:
    requests = batches(land.spans, 3)
    assert len(requests) == 4
    path = write(tmp_path / "traces.binpb", framed(requests), compress=compress)
    result = ingest([path], jobs=1)
    assert result.skipped == () and result.notices == ()
    assert_matches_landscape(result.spans.to_pylist(), land)


def test_parallel_parse_of_many_frames_equals_serial(land: Landscape, tmp_path: Path) -> None:
    # 12,000 one-span frames make the reader cut several chunks, so worker order matters.
    requests = batches(land.spans, 1) * 1200
    path = write(tmp_path / "many.binpb", framed(requests))
    serial = ingest([path], jobs=1)
    parallel = ingest([path], jobs=2)
    assert serial.spans.equals(parallel.spans)
    assert serial.skipped == parallel.skipped
    (dupes,) = serial.skipped
    assert dupes.count == len(land.spans) * 1199
    assert_matches_landscape(serial.spans.to_pylist(), land)


class _Sink(BaseHTTPRequestHandler):
    """Records what an OTLP/HTTP exporter POSTs, answering like a collector would."""

    bodies: ClassVar[list[tuple[str, str | None, bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append((self.path, self.headers.get("Content-Encoding"), self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str | None, bytes]]]]:
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    _Sink.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", _Sink.bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_body_posted_by_real_otlp_http_exporter_is_read(
    land: Landscape,
    collector: tuple[str, list[tuple[str, str | None, bytes]]],
    tmp_path: Path,
    compression: Compression,
) -> None:
    endpoint, bodies = collector
    exporter = OTLPSpanExporter(endpoint=endpoint, compression=compression)
    assert exporter.export(land.spans[:4]) is SpanExportResult.SUCCESS
    assert exporter.export(land.spans[4:]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert [(path, encoding is not None) for path, encoding, _ in bodies] == [
        ("/v1/traces", compression is Compression.Gzip)
    ] * 2
    files = [write(tmp_path / f"post-{i}.bin", body) for i, (_, _, body) in enumerate(bodies)]
    if compression is Compression.Gzip:
        assert all(gzip.decompress(f.read_bytes()) for f in files)
    result = ingest(files, jobs=1)
    assert [f.format for f in result.files] == ["otlp-proto", "otlp-proto"]
    assert [f.spans for f in result.files] == [4, len(land.spans) - 4]
    assert_matches_landscape(result.spans.to_pylist(), land)
    # Spans whose parent travelled in the other request are whole again once both are read.
    assert result.notices == ()


def test_a_resource_repeated_in_many_resource_spans_is_cut_and_counted_each_time(tmp_path: Path) -> None:
    long = "s" * (NAME_CHARS + 10)
    request = ExportTraceServiceRequest()
    for index, service in enumerate([long, "payments", long, long]):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name").value.string_value = service
        resource_spans.resource.attributes.add(key="service.namespace").value.string_value = "shop"
        resource_spans.scope_spans.add().spans.add(
            trace_id=b"\x01" * 16,
            span_id=(index + 1).to_bytes(8, "big"),
            name=f"op {index}",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=BASE_NS,
            end_time_unix_nano=BASE_NS + 1,
        )
    result = ingest([write(tmp_path / "resources.pb", request.SerializeToString())], jobs=1)
    rows = sorted(plain_strings(result.spans).to_pylist(), key=lambda row: row["name"])
    cut = "s" * (NAME_CHARS - len(MARKER)) + MARKER
    assert [row["service"] for row in rows] == [cut, "payments", cut, cut]
    assert {row["service_namespace"] for row in rows} == {"shop"}
    assert (NAME_CUT, 3) in [(notice.reason, notice.count) for notice in result.notices]
