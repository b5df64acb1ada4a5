"""OTLP/JSON traces: the Collector file exporter (JSON Lines), single documents, Jaeger API v3.

Accepts the camelCase names of the OTLP/JSON specification and the snake_case names protobuf's
JSON printer writes with ``preserving_proto_field_name``; ids in hex (as specified) or base64
(as protobuf's generic JSON mapping writes them); enums as numbers or names; 64-bit integers as
strings or numbers. Jaeger's API v3 wraps a ``TracesData`` as ``{"result": {...}}``. Grafana
Tempo's trace-by-id API answers with the same ResourceSpans under its own names:
``{"batches": [...]}`` (API v1, older versions with ``instrumentationLibrarySpans``) and
``{"trace": {"resourceSpans": [...]}, "metrics": {...}}`` (API v2), base64 ids and enum names.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import IO, Any

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.model.spans import SpanRows
from orchscan.collectors.traces.formats.otlp_common import json_id, kind_name, status_name
from orchscan.collectors.traces.jsonio import find_record_path, is_json_lines, parse_documents, split_json
from orchscan.collectors.traces.limits import (
    MALFORMED_FIELD,
    OUT_OF_RANGE,
    Tally,
    cap_name,
    nanos,
    span_end,
)
from orchscan.collectors.traces.sniffing import LIKELY, NO, SURE, WINDOW, first_key, json_text
from orchscan.collectors.traces.vocabulary import normalize, stringify

NAME = "otlp-json"

# Keys that open a TracesData (or a wrapper around one) as its first key.
_FIRST_KEYS = frozenset((b"resourceSpans", b"resource_spans", b"result", b"batches", b"trace"))
_CONTAINERS = (b'"resourceSpans"', b'"resource_spans"', b'"batches"')
# The list of ResourceSpans: OTLP's spellings, and Tempo's (trace by id, API v1).
_LIST_KEYS = ("resourceSpans", "resource_spans", "batches")
_LIST_NAMES = frozenset(_LIST_KEYS)
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
    tempo = key == b"trace" or any(name in window for name in _SCOPE_KEYS) or b'"batches":[]' in window
    if key in _FIRST_KEYS and tempo and any(name in window for name in _CONTAINERS):
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
        except (TypeError, ValueError, OverflowError):
            return None
    if key in ("boolValue", "bool_value", "doubleValue", "double_value", "bytesValue", "bytes_value"):
        return inner
    values = inner.get("values") if isinstance(inner, dict) else None
    if not isinstance(values, list):
        return None
    if key in ("arrayValue", "array_value"):
        return [any_value(item) for item in values]
    if key in ("kvlistValue", "kvlist_value"):
        return {
            kv["key"]: any_value(kv.get("value"))
            for kv in values
            if isinstance(kv, dict) and isinstance(kv.get("key"), str)
        }
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
    """A time as an integer: a number or a decimal string (64-bit integers travel as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and len(value) <= 24:
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else stringify(value)


def _links(span: dict[str, Any], tally: Tally) -> list[dict[str, str]] | None:
    raw = span.get("links")
    if raw is None:
        return None
    if not isinstance(raw, list):
        tally.note(MALFORMED_FIELD)
        return None
    links = []
    for link in raw:
        trace_id = json_id(_get(link, "traceId", "trace_id"), 32) if isinstance(link, dict) else None
        span_id = json_id(_get(link, "spanId", "span_id"), 16) if isinstance(link, dict) else None
        if trace_id and span_id:
            links.append({"trace_id": trace_id, "span_id": span_id})
        else:
            tally.note(MALFORMED_FIELD)
    return links or None


def traces_data(document: Any) -> Any:
    """Unwrap Jaeger API v3's ``{"result": ...}`` and Tempo API v2's ``{"trace": ...}`` envelopes."""
    if isinstance(document, dict) and not any(key in document for key in _LIST_KEYS):
        for envelope in ("result", "trace"):
            if envelope in document:
                return document[envelope]
    return document


def records(head: bytes) -> tuple[str, str] | None:
    """Where a large document's records are: the items of its resourceSpans (or Tempo's batches) list."""
    return find_record_path(head, _LIST_NAMES, "{container}[{}]")


def add_traces_data(document: Any, rows: SpanRows, source: str, where: str, tally: Tally) -> list[Skipped]:
    """Append every span of one TracesData document to ``rows``; return what was skipped."""
    document = traces_data(document)
    resource_spans = None
    if isinstance(document, dict):
        resource_spans = next((document[key] for key in _LIST_KEYS if document.get(key) is not None), None)
    if not isinstance(resource_spans, list):
        return [Skipped(source, where, "not an OTLP TracesData object (no resourceSpans list)")]
    skipped: list[Skipped] = []
    for r_index, resource_span in enumerate(resource_spans):
        skipped += _add_resource_spans(
            resource_span, rows, source, f"{where}: resourceSpans[{r_index}]", tally
        )
    return skipped


def read_parts(parts: list[tuple[str, Any]], rows: SpanRows, source: str, tally: Tally) -> list[Skipped]:
    """Append the spans of a streamed document's resourceSpans entries."""
    skipped: list[Skipped] = []
    for path, resource_span in parts:
        skipped += _add_resource_spans(resource_span, rows, source, f"document: {path}", tally)
    return skipped


def _add_resource_spans(
    resource_span: Any, rows: SpanRows, source: str, where: str, tally: Tally
) -> list[Skipped]:
    """Append the spans of one ResourceSpans entry (``where`` names it in skips)."""
    if not isinstance(resource_span, dict):
        return [Skipped(source, where, "not an object")]
    raw_resource = resource_span.get("resource")
    resource = attribute_dict(raw_resource.get("attributes") if isinstance(raw_resource, dict) else None)
    # Resource values repeat on every span of the entry: cut them once, here.
    service = cap_name(_text(resource.get("service.name")) or "unknown", tally)
    namespace, instance, k8s = (
        _text(resource.get(key)) for key in ("service.namespace", "service.instance.id", "k8s.namespace.name")
    )
    context = (
        service,
        None if namespace is None else cap_name(namespace, tally),
        None if instance is None else cap_name(instance, tally),
        None if k8s is None else cap_name(k8s, tally),
    )
    scopes = _get(resource_span, "scopeSpans", "scope_spans")
    if scopes is None:
        scopes = _get(resource_span, "instrumentationLibrarySpans", "instrumentation_library_spans")
    if scopes is None:
        return []
    if not isinstance(scopes, list):
        return [Skipped(source, f"{where}.scopeSpans", "not a list")]
    skipped: list[Skipped] = []
    for s_index, scope in enumerate(scopes):
        spans = scope.get("spans") if isinstance(scope, dict) else None
        if spans is None and isinstance(scope, dict):
            continue
        if not isinstance(spans, list):
            skipped.append(Skipped(source, f"{where}.scopeSpans[{s_index}]", "no list of spans"))
            continue
        for p_index, span in enumerate(spans):
            try:
                reason = _add_span(span, rows, source, context, tally)
            except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as error:
                reason = f"unreadable span ({type(error).__name__}: {str(error)[:120]})"
            if reason:
                skipped.append(Skipped(source, f"{where}.scopeSpans[{s_index}].spans[{p_index}]", reason))
    return skipped


def _add_span(
    span: Any,
    rows: SpanRows,
    source: str,
    context: tuple[str, str | None, str | None, str | None],
    tally: Tally,
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
    if not (nanos(start) and nanos(end)):
        return OUT_OF_RANGE
    status = span.get("status")
    if status is not None and not isinstance(status, dict):
        tally.note(MALFORMED_FIELD)
    status = status if isinstance(status, dict) else {}
    raw_attributes = span.get("attributes")
    if raw_attributes is not None and not isinstance(raw_attributes, list):
        tally.note(MALFORMED_FIELD)
    semantic, idempotent, rest = normalize(attribute_dict(raw_attributes))
    service, namespace, instance, k8s = context
    rows.append(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=json_id(_get(span, "parentSpanId", "parent_span_id"), 16),
        service=service,
        service_namespace=namespace,
        service_instance=instance,
        k8s_namespace=k8s,
        name=_text(span.get("name")) or "",
        kind=kind_name(span.get("kind", 0)),
        start_ns=start,
        end_ns=span_end(start, end, tally),
        status=status_name(status.get("code", 0)),
        status_message=_text(status.get("message")) or None,
        semantic=semantic,
        links=_links(span, tally),
        idempotency_key=idempotent,
        attributes=rest,
        source=source,
    )
    return None


def split(stream: IO[bytes], source: str) -> Iterator[Chunk | Skipped]:
    """Cut an OTLP/JSON input into chunks (a document whole or by records, or batches of JSON Lines)."""
    return split_json(stream, NAME, source, records)


def parse(chunk: Chunk, keep_attributes: bool = True) -> ChunkResult:
    """Parse one chunk of OTLP/JSON into spans (see :func:`parse_documents`)."""
    return parse_documents(chunk, add_traces_data, read_parts, records, keep_attributes)
