"""OTLP/JSON traces: the Collector file exporter (JSON Lines), single documents, Jaeger API v3.

Accepts the camelCase names of the OTLP/JSON specification and the snake_case names protobuf's
JSON printer writes with ``preserving_proto_field_name``; ids in hex (as specified) or base64
(as protobuf's generic JSON mapping writes them); enums as numbers or names; 64-bit integers as
strings or numbers. Jaeger's API v3 wraps a ``TracesData`` as ``{"result": {...}}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.model.spans import SpanRows
from orchscan.collectors.traces.formats.otlp_common import json_id, kind_name, status_name
from orchscan.collectors.traces.jsonio import is_json_lines, parse_documents, split_json
from orchscan.collectors.traces.sniffing import LIKELY, NO, SURE, WINDOW, first_key, json_text
from orchscan.collectors.traces.vocabulary import normalize

NAME = "otlp-json"

# Keys that open a TracesData (or a wrapper around one) as its first key.
_FIRST_KEYS = frozenset((b"resourceSpans", b"resource_spans", b"result", b"batches", b"trace"))
_CONTAINERS = (b'"resourceSpans"', b'"resource_spans"', b'"batches"')
_SCOPE_KEYS = (b'"scopeSpans"', b'"scope_spans"', b'"instrumentationLibrarySpans"', b'"spans"')


def sniff(head: bytes) -> int:
    """Sure when the first key opens a TracesData (or Tempo's or Jaeger v3's wrapper), likely when
    a ``resourceSpans`` key is near the start, else no."""
    text = json_text(head)
    if text is None or text[:1] != b"{":
        return NO
    window = text.split(b"\n", 1)[0] if is_json_lines(text) else text[:WINDOW]
    key = first_key(text)
    if key in (b"resourceSpans", b"resource_spans", b"result"):
        return SURE
    # Tempo: {"batches": [...]} (trace by id, API v1), {"trace": {"resourceSpans": ...}} (v2).
    if key in _FIRST_KEYS and any(name in window for name in _CONTAINERS):
        if key == b"trace" or any(name in window for name in _SCOPE_KEYS) or b'"batches":[]' in window:
            return SURE
    if b'"resourceSpans"' in window or b'"resource_spans"' in window:
        return LIKELY
    return NO


def _get(mapping: dict[str, Any], camel: str, snake: str) -> Any:
    value = mapping.get(camel)
    return mapping.get(snake) if value is None else value


def any_value(value: Any) -> Any:
    """Decode an OTLP/JSON AnyValue into a Python scalar, list or dict."""
    if not isinstance(value, dict) or not value:
        return None
    key, inner = next(iter(value.items()))
    if key in ("stringValue", "string_value"):
        return inner
    if key in ("intValue", "int_value"):
        try:
            return int(inner)
        except (TypeError, ValueError):
            return None
    if key in ("boolValue", "bool_value", "doubleValue", "double_value", "bytesValue", "bytes_value"):
        return inner
    if key in ("arrayValue", "array_value"):
        return [any_value(item) for item in (inner or {}).get("values", [])]
    if key in ("kvlistValue", "kvlist_value"):
        return {kv.get("key"): any_value(kv.get("value")) for kv in (inner or {}).get("values", [])}
    return None


def attribute_dict(attributes: Any) -> dict[str, Any]:
    """Turn a list of OTLP/JSON KeyValue objects into a plain dict."""
    if not isinstance(attributes, list):
        return {}
    result: dict[str, Any] = {}
    for kv in attributes:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            result[kv["key"]] = any_value(kv.get("value"))
    return result


def _nanos(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _links(span: dict[str, Any]) -> list[dict[str, str]] | None:
    raw = span.get("links")
    if not isinstance(raw, list) or not raw:
        return None
    links = []
    for link in raw:
        if not isinstance(link, dict):
            continue
        trace_id = json_id(_get(link, "traceId", "trace_id"), 32)
        span_id = json_id(_get(link, "spanId", "span_id"), 16)
        if trace_id and span_id:
            links.append({"trace_id": trace_id, "span_id": span_id})
    return links or None


def traces_data(document: Any) -> Any:
    """Unwrap Jaeger API v3's ``{"result": ...}`` envelope around a TracesData."""
    if isinstance(document, dict) and "result" in document and "resourceSpans" not in document:
        return document["result"]
    return document


def add_traces_data(document: Any, rows: SpanRows, source: str, where: str) -> list[Skipped]:
    """Append every span of one TracesData document to ``rows``; return what was skipped."""
    skipped: list[Skipped] = []
    document = traces_data(document)
    resource_spans = _get(document, "resourceSpans", "resource_spans") if isinstance(document, dict) else None
    if not isinstance(resource_spans, list):
        return [Skipped(source, where, "not an OTLP TracesData object (no resourceSpans list)")]
    for r_index, resource_span in enumerate(resource_spans):
        if not isinstance(resource_span, dict):
            skipped.append(Skipped(source, f"{where}: resourceSpans[{r_index}]", "not an object"))
            continue
        resource = attribute_dict((resource_span.get("resource") or {}).get("attributes"))
        service = resource.get("service.name") or "unknown"
        namespace = resource.get("service.namespace")
        instance = resource.get("service.instance.id")
        scopes = _get(resource_span, "scopeSpans", "scope_spans")
        if scopes is None:
            scopes = _get(resource_span, "instrumentationLibrarySpans", "instrumentation_library_spans")
        for s_index, scope in enumerate(scopes or []):
            spans = scope.get("spans") if isinstance(scope, dict) else None
            for p_index, span in enumerate(spans or []):
                position = f"{where}: resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{p_index}]"
                reason = _add_span(span, rows, source, str(service), namespace, instance)
                if reason:
                    skipped.append(Skipped(source, position, reason))
    return skipped


def _add_span(
    span: Any, rows: SpanRows, source: str, service: str, namespace: Any, instance: Any
) -> str | None:
    if not isinstance(span, dict):
        return "span is not an object"
    trace_id = json_id(_get(span, "traceId", "trace_id"), 32)
    span_id = json_id(_get(span, "spanId", "span_id"), 16)
    if trace_id is None or span_id is None:
        return "missing or invalid trace/span id"
    start = _nanos(_get(span, "startTimeUnixNano", "start_time_unix_nano"))
    end = _nanos(_get(span, "endTimeUnixNano", "end_time_unix_nano"))
    if start is None or end is None:
        return "missing or invalid start/end time"
    status = span.get("status") or {}
    semantic, idempotent, rest = normalize(attribute_dict(span.get("attributes")))
    rows.append(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=json_id(_get(span, "parentSpanId", "parent_span_id"), 16),
        service=service,
        service_namespace=None if namespace is None else str(namespace),
        service_instance=None if instance is None else str(instance),
        name=str(span.get("name") or ""),
        kind=kind_name(span.get("kind", 0)),
        start_ns=start,
        end_ns=max(end, start),
        status=status_name(status.get("code", 0)) if isinstance(status, dict) else "unset",
        status_message=(status.get("message") or None) if isinstance(status, dict) else None,
        semantic=semantic,
        links=_links(span),
        idempotency_key=idempotent,
        attributes=rest,
        source=source,
    )
    return None


def split(stream: IO[bytes], source: str) -> Iterator[Chunk | Skipped]:
    """Cut an OTLP/JSON input into chunks (whole document, or batches of JSON Lines)."""
    return split_json(stream, NAME, source)


def parse(chunk: Chunk) -> ChunkResult:
    """Parse one chunk of OTLP/JSON into spans."""
    return parse_documents(chunk, add_traces_data)
