"""Jaeger JSON traces, as the Jaeger UI downloads them and the query API (``/api/traces``) returns them.

Accepts ``{"data": [trace, ...]}``, a bare trace object ``{"traceID", "spans", "processes"}``
and a plain list of trace objects, as whole documents or one per line. Jaeger writes times in
microseconds, ids as hex that may lack leading zeros, tags as ``{key, type, value}`` with
OpenTracing names, and the service in a per-trace ``processes`` map (older exports embed a
``process`` in each span instead).

Parents come from ``references``: the first CHILD_OF reference within the same trace wins, else
the first FOLLOWS_FROM; every other reference (to another trace, or a second parent) becomes a
span link, so no relation is lost. The legacy ``parentSpanID`` field is used when no reference
names a parent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import IO, Any

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.model.spans import KINDS, SpanRows
from orchscan.collectors.traces.ids import hex_id
from orchscan.collectors.traces.jsonio import find_record_path, is_json_lines, parse_documents, split_json
from orchscan.collectors.traces.limits import MALFORMED_FIELD, OUT_OF_RANGE, Tally, cap_name, nanos, span_end
from orchscan.collectors.traces.sniffing import LIKELY, NO, SURE, WINDOW, first_key, json_text
from orchscan.collectors.traces.vocabulary import normalize, stringify

NAME = "jaeger-json"

_TRACE_ID = re.compile(rb'"traceID"\s*:')
# Where a large document's traces are: the query API's ``data`` list, or a top-level list.
_TRACE_LISTS = frozenset(("data", ""))


def sniff(head: bytes) -> int:
    """Sure for the query API's ``{"data": ...}``; likely for text with Jaeger's ``traceID`` and
    ``spans`` (Zipkin spells it ``traceId``), else no."""
    text = json_text(head)
    if text is None:
        return NO
    if text[:1] == b"{" and first_key(text) == b"data":
        return SURE
    window = text.split(b"\n", 1)[0] if text[:1] == b"{" and is_json_lines(text) else text[:WINDOW]
    return LIKELY if _TRACE_ID.search(window) and b'"spans"' in window else NO


_KINDS = frozenset(KINDS)
# Tags that become columns of their own rather than attributes.
_STATUS_TAGS = ("error", "otel.status_code", "otel.status_description", "span.kind")
# Log fields that carry an error's message, best first (OpenTracing, then OpenTelemetry's exporter).
_MESSAGE_FIELDS = ("message", "error.object", "exception.message", "error.message", "error.kind", "error")
_ERROR_EVENTS = frozenset(("error", "exception"))


class _SpanError(ValueError):
    """A span that cannot become a row; the message is the Skipped reason."""


def tag_dict(tags: Any) -> dict[str, Any]:
    """Turn Jaeger ``[{key, type, value}]`` tags into a plain dict (later duplicates win)."""
    if not isinstance(tags, list):
        return {}
    return {
        tag["key"]: tag.get("value")
        for tag in tags
        if isinstance(tag, dict) and isinstance(tag.get("key"), str)
    }


def _micros(value: Any) -> int | None:
    """Microseconds as nanoseconds; None for anything but a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if not value.is_integer():
            return round(value * 1000)  # keep sub-microsecond precision some exporters write
    return int(value) * 1000


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _log_error_message(logs: Any) -> str | None:
    """The message of the first log that records an error or exception."""
    if not isinstance(logs, list):
        return None
    for log in logs:
        fields = tag_dict(log.get("fields")) if isinstance(log, dict) else {}
        if str(fields.get("event", "")).lower() not in _ERROR_EVENTS and "error" not in fields:
            continue
        for key in _MESSAGE_FIELDS:
            value = fields.get(key)
            if value not in (None, "", True, "true"):
                return stringify(value)
    return None


def _status(tags: dict[str, Any], logs: Any) -> tuple[str, str | None]:
    code = str(tags.get("otel.status_code", "")).upper()
    description = tags.get("otel.status_description")
    if code == "ERROR" or _is_true(tags.get("error")):
        message = description or _log_error_message(logs)
        if message is None and isinstance(tags.get("error"), str) and not _is_true(tags["error"]):
            message = tags["error"]
        return "error", None if message in (None, "") else stringify(message)
    if code == "OK":
        return "ok", None
    return "unset", None


def _kind(tags: dict[str, Any]) -> str:
    value = tags.get("span.kind")
    if value is None:
        return "internal"  # OpenTracing leaves local spans untagged
    lowered = str(value).lower()
    return lowered if lowered in _KINDS else "unspecified"


def _relations(
    span: dict[str, Any], trace_id: str, tally: Tally
) -> tuple[str | None, list[dict[str, str]] | None]:
    """The parent span id and the remaining references as links."""
    refs: list[tuple[str, str, str]] = []
    references = span.get("references")
    if references is not None and not isinstance(references, list):
        tally.note(MALFORMED_FIELD)
    for ref in references if isinstance(references, list) else ():
        if not isinstance(ref, dict):
            tally.note(MALFORMED_FIELD)
            continue
        ref_trace = hex_id(ref.get("traceID"), 32) or trace_id
        ref_span = hex_id(ref.get("spanID"), 16)
        if ref_span is not None:
            refs.append((str(ref.get("refType", "CHILD_OF")).upper(), ref_trace, ref_span))
    parent_index = next(
        (
            i
            for ref_type in ("CHILD_OF", "FOLLOWS_FROM")
            for i, ref in enumerate(refs)
            if ref[0] == ref_type and ref[1] == trace_id
        ),
        None,
    )
    parent = refs[parent_index][2] if parent_index is not None else hex_id(span.get("parentSpanID"), 16)
    links = [
        {"trace_id": ref_trace, "span_id": ref_span}
        for i, (_, ref_trace, ref_span) in enumerate(refs)
        if i != parent_index
    ]
    return parent, links or None


def _process(span: dict[str, Any], processes: dict[str, Any]) -> dict[str, Any]:
    process_id = span.get("processID")
    process = processes.get(process_id) if isinstance(process_id, str) else None
    if process is None and isinstance(span.get("process"), dict):
        process = span["process"]
    if not isinstance(process, dict):
        if process_id is None:
            raise _SpanError("span has neither processID nor process")
        raise _SpanError(f"unknown processID {process_id!r} (not in the trace's processes)")
    return process


def _process_names(process: dict[str, Any], tally: Tally) -> tuple[str, str | None, str | None, str | None]:
    """Service, namespace, instance and Kubernetes namespace of a process, cut once: they repeat
    on all its spans."""
    process_tags = tag_dict(process.get("tags"))
    namespace = process_tags.get("service.namespace")
    instance = process_tags.get("service.instance.id")
    k8s = process_tags.get("k8s.namespace.name")
    return (
        cap_name(stringify(process.get("serviceName") or "unknown"), tally),
        None if namespace is None else cap_name(stringify(namespace), tally),
        None if instance is None else cap_name(stringify(instance), tally),
        None if k8s is None else cap_name(stringify(k8s), tally),
    )


def _add_span(
    span: Any, processes: dict[str, Any], rows: SpanRows, source: str, tally: Tally, names: dict[int, Any]
) -> None:
    if not isinstance(span, dict):
        raise _SpanError("span is not an object")
    trace_id = hex_id(span.get("traceID"), 32)
    span_id = hex_id(span.get("spanID"), 16)
    if trace_id is None or span_id is None:
        raise _SpanError("missing or invalid traceID/spanID (expected up to 32/16 hex digits)")
    start = _micros(span.get("startTime"))
    duration = _micros(span.get("duration", 0))
    if start is None or duration is None:
        raise _SpanError("missing or invalid startTime/duration (expected microseconds)")
    if not (nanos(start) and nanos(start + max(duration, 0))):
        raise _SpanError(OUT_OF_RANGE)
    process = _process(span, processes)
    found = names.get(id(process))
    if found is None:
        found = names[id(process)] = (process, _process_names(process, tally))
    service, namespace, instance, k8s = found[1]
    tags = tag_dict(span.get("tags"))
    status, message = _status(tags, span.get("logs"))
    kind = _kind(tags)
    parent, links = _relations(span, trace_id, tally)
    semantic, idempotent, rest = normalize({k: v for k, v in tags.items() if k not in _STATUS_TAGS})
    rows.append(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent if parent != span_id else None,
        service=service,
        service_namespace=namespace,
        service_instance=instance,
        k8s_namespace=k8s,
        name=stringify(span.get("operationName") or ""),
        kind=kind,
        start_ns=start,
        end_ns=span_end(start, start + duration, tally),
        status=status,
        status_message=message,
        semantic=semantic,
        links=links,
        idempotency_key=idempotent,
        attributes=rest,
        source=source,
    )


def _error_text(errors: Any) -> str:
    """The ``msg`` of each entry of a query API ``errors`` list (``{code, msg, traceID}``)."""
    items = errors if isinstance(errors, list) else [errors]
    return "; ".join(str(item.get("msg") or item) if isinstance(item, dict) else str(item) for item in items)[
        :500
    ]


def _traces(document: Any) -> list[tuple[str, Any]] | str:
    """The trace objects of a document with their paths, or the reason the document has none."""
    if isinstance(document, dict) and "data" in document:
        data = document["data"]
        if not data:
            errors = document.get("errors")
            if errors:
                return f"Jaeger API response carries errors and no traces: {_error_text(errors)}"
            return "Jaeger API response with no traces (empty data)"
        if not isinstance(data, list):
            return "'data' is not a list of traces"
        return [(f"data[{i}]", trace) for i, trace in enumerate(data)]
    if isinstance(document, dict) and "spans" in document:
        return [("", document)]
    if isinstance(document, list):
        if not document:
            return "empty list: no traces"
        return [(f"[{i}]", trace) for i, trace in enumerate(document)]
    return "not a Jaeger trace document (expected {data: [...]}, a trace object or a list of traces)"


def records(head: bytes) -> tuple[str, str] | None:
    """Where a large document's records are: its traces, under ``data`` or in a top-level list."""
    return find_record_path(head, _TRACE_LISTS, "{container}[{}]")


def add_document(document: Any, rows: SpanRows, source: str, where: str, tally: Tally) -> list[Skipped]:
    """Append every span of one Jaeger JSON document to ``rows``; return what was skipped."""
    traces = _traces(document)
    if isinstance(traces, str):
        return [Skipped(source, where, traces)]
    # Positions inside a whole document read like ``data[0].spans[3]``; JSON Lines add the line.
    prefix = "" if where == "document" else f"{where}: "
    skipped: list[Skipped] = []
    for path, trace in traces:
        skipped += _add_trace(trace, rows, source, prefix + path, tally)
    return skipped


def read_parts(parts: list[tuple[str, Any]], rows: SpanRows, source: str, tally: Tally) -> list[Skipped]:
    """Append the spans of a streamed document's traces."""
    skipped: list[Skipped] = []
    for path, trace in parts:
        skipped += _add_trace(trace, rows, source, path, tally)
    return skipped


def _add_trace(trace: Any, rows: SpanRows, source: str, path: str, tally: Tally) -> list[Skipped]:
    """Append the spans of one trace object (``path`` names it in skips)."""
    spans = trace.get("spans") if isinstance(trace, dict) else None
    if not isinstance(spans, list):
        return [Skipped(source, path.rstrip(": ") or "trace", "not a trace object (no spans list)")]
    processes = trace.get("processes")
    if processes is not None and not isinstance(processes, dict):
        tally.note(MALFORMED_FIELD)
    processes = processes if isinstance(processes, dict) else {}
    dot = "." if path and not path.endswith(": ") else ""
    skipped: list[Skipped] = []
    names: dict[int, Any] = {}
    for index, span in enumerate(spans):
        try:
            _add_span(span, processes, rows, source, tally, names)
        except _SpanError as error:
            skipped.append(Skipped(source, f"{path}{dot}spans[{index}]", str(error)))
        except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as error:
            reason = f"unreadable span ({type(error).__name__}: {str(error)[:120]})"
            skipped.append(Skipped(source, f"{path}{dot}spans[{index}]", reason))
    return skipped


def split(stream: IO[bytes], source: str) -> Iterator[Chunk | Skipped]:
    """Cut a Jaeger JSON input into chunks (a document whole or by traces, or batches of JSON Lines)."""
    return split_json(stream, NAME, source, records)


def parse(chunk: Chunk, keep_attributes: bool = True) -> ChunkResult:
    """Parse one chunk of Jaeger JSON into spans (see :func:`parse_documents`)."""
    return parse_documents(chunk, add_document, read_parts, records, keep_attributes)
