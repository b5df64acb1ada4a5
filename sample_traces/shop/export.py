"""Write the recorded spans with the SDK's real encoders, in the framings collectors produce.

* OTLP protobuf: ``encode_spans`` -> ``ExportTraceServiceRequest``, each message preceded by
  its 4-byte big-endian size (the Collector file exporter's ``proto`` format).
* OTLP/JSON Lines: the same messages, one JSON object per line, with hex ids and enums as
  integers as the OTLP/JSON specification requires (the Collector file exporter's ``json``).
* Zipkin v2 JSON: the same spans through ``opentelemetry-exporter-zipkin-json``'s
  ``JsonV2Encoder`` (the body the Zipkin exporter POSTs), gathered into one array.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint
from opentelemetry.sdk.trace import ReadableSpan

#: Spans per export request, the BatchSpanProcessor's default batch size.
BATCH = 512


@dataclass(frozen=True)
class Written:
    """One written rendition and what is in it."""

    path: str
    format: str
    encoder: str
    spans: int
    traces: int
    services: tuple[str, ...]


def service_of(span: ReadableSpan) -> str:
    """The span's service.name resource attribute."""
    return str(span.resource.attributes["service.name"])


def batches(spans: Sequence[ReadableSpan]) -> list[list[ReadableSpan]]:
    """Per-service batches in end order, as each service's batch processor would send them."""
    by_service: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_service.setdefault(service_of(span), []).append(span)
    result = [group[i : i + BATCH] for group in by_service.values() for i in range(0, len(group), BATCH)]
    result.sort(key=lambda batch: (batch[-1].end_time or 0, service_of(batch[0])))
    return result


@contextmanager
def _gzip(path: Path) -> Iterator[gzip.GzipFile]:
    # mtime=0 and no file name keep re-recorded files byte-comparable apart from their content.
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out,
    ):
        yield out


def write_otlp_proto(path: Path, groups: list[list[ReadableSpan]]) -> None:
    """Size-prefixed ExportTraceServiceRequest messages, gzip-compressed."""
    with _gzip(path) as out:
        for group in groups:
            message = encode_spans(group).SerializeToString()
            out.write(struct.pack(">I", len(message)) + message)


def _hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_ids(document: dict[str, Any]) -> dict[str, Any]:
    # protobuf's generic JSON mapping writes bytes as base64; OTLP/JSON wants hex.
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _hex(span[key])
                for link in span.get("links", []):
                    link["traceId"], link["spanId"] = _hex(link["traceId"]), _hex(link["spanId"])
    return document


def otlp_json_lines(groups: list[list[ReadableSpan]]) -> Iterator[bytes]:
    """One OTLP/JSON document per export request."""
    for group in groups:
        document = MessageToDict(encode_spans(group), use_integers_for_enums=True)
        yield json.dumps(_hex_ids(document), separators=(",", ":")).encode() + b"\n"


def write_otlp_json(path: Path, groups: list[list[ReadableSpan]]) -> None:
    """OTLP/JSON Lines, gzip-compressed."""
    with _gzip(path) as out:
        for line in otlp_json_lines(groups):
            out.write(line)


def write_zipkin(path: Path, groups: list[list[ReadableSpan]]) -> None:
    """One Zipkin v2 JSON array of every span, gzip-compressed."""
    encoder = JsonV2Encoder()
    spans: list[Any] = []
    for group in groups:
        endpoint = NodeEndpoint(ipv4="127.0.0.1")
        endpoint.service_name = service_of(group[0])
        spans += json.loads(encoder.serialize(group, endpoint))
    with _gzip(path) as out:
        out.write(json.dumps(spans, separators=(",", ":")).encode())


RENDITIONS = (
    (
        "traces/shop.otlp.pb.gz",
        "otlp-proto",
        "opentelemetry-exporter-otlp-proto-common encode_spans",
        write_otlp_proto,
    ),
    (
        "renditions/shop.otlp.jsonl.gz",
        "otlp-json",
        "opentelemetry-exporter-otlp-proto-common encode_spans + protobuf json_format (ids as hex)",
        write_otlp_json,
    ),
    (
        "renditions/shop.zipkin.json.gz",
        "zipkin-json",
        "opentelemetry-exporter-zipkin-json JsonV2Encoder",
        write_zipkin,
    ),
)


def write_all(out: Path, spans: Sequence[ReadableSpan]) -> list[Written]:
    """Write every rendition of ``spans`` below ``out``."""
    groups = batches(spans)
    traces = len({span.context.trace_id for span in spans})
    services = tuple(sorted({service_of(span) for span in spans}))
    written = []
    for relative, fmt, encoder, write in RENDITIONS:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, groups)
        written.append(Written(relative, fmt, encoder, len(spans), traces, services))
    return written
