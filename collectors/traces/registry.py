"""The trace formats orchscan reads, by name. CLI choices and format detection come from here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.traces.formats import jaeger, otlp_json, otlp_proto, zipkin


@dataclass(frozen=True)
class TraceFormat:
    """A readable trace format: how sure it is of a head, how to cut an input, how to parse a
    chunk (keeping the attributes that fill no column, or not)."""

    name: str
    description: str
    sniff: Callable[[bytes], int]
    split: Callable[[IO[bytes], str], Iterator[Chunk | Skipped]]
    parse: Callable[[Chunk, bool], ChunkResult]


#: Every format, in the order detection prefers them when two are equally sure.
FORMATS: dict[str, TraceFormat] = {
    otlp_proto.NAME: TraceFormat(
        otlp_proto.NAME,
        "OTLP protobuf: an ExportTraceServiceRequest, or the Collector file exporter's size-prefixed stream",
        otlp_proto.sniff,
        otlp_proto.split,
        otlp_proto.parse,
    ),
    otlp_json.NAME: TraceFormat(
        otlp_json.NAME,
        "OTLP JSON: a TracesData document, JSON Lines (Collector file exporter), Jaeger API v3 "
        "{result: ...}, Grafana Tempo's trace by id {batches: [...]} and {trace: {...}}",
        otlp_json.sniff,
        otlp_json.split,
        otlp_json.parse,
    ),
    jaeger.NAME: TraceFormat(
        jaeger.NAME,
        "Jaeger JSON: the query API / UI download {data: [...]}, a bare trace object, a list of traces",
        jaeger.sniff,
        jaeger.split,
        jaeger.parse,
    ),
    zipkin.NAME: TraceFormat(
        zipkin.NAME,
        "Zipkin v2 JSON: a list of spans, or a list of traces (lists of spans) from /api/v2/traces",
        zipkin.sniff,
        zipkin.split,
        zipkin.parse,
    ),
}


def parse_chunk(chunk: Chunk, keep_attributes: bool = True) -> ChunkResult:
    """Parse a chunk with its format's parser; the entry point worker processes run.

    Without ``keep_attributes`` the ``attributes`` column (every attribute that fills no other
    column) is null: a scan reads no attribute but those, and leaving the rest out spares their
    reading, their transfer between processes and their spilling (a third of a batch's bytes in
    spans as OpenTelemetry SDKs record them).
    """
    return FORMATS[chunk.format].parse(chunk, keep_attributes)
