"""Zipkin v2 JSON traces: a list of spans (what reporters POST to ``/api/v2/spans``), or a list of
traces, each a list of spans (what ``/api/v2/traces`` returns).

Zipkin writes times in microseconds and keeps the service in ``localEndpoint``; tags are
strings. Two Zipkin habits need care before spans fit the span table:

* **Spans sent in parts.** A reporter may send one span in several records with the same id
  (real traces hold records carrying only a name and an endpoint). A record without a
  timestamp is merged into a record with the same trace id, span id and a compatible local
  endpoint (same service and address where both name one), filling in what it lacks. A part
  with nothing to merge into cannot be placed in time and is skipped.

* **Shared spans (B3 "shared" mode).** The client and the server of one RPC may report the same
  span id: the server record carries ``shared: true``, or is a SERVER record sharing its id with
  a CLIENT record of the same trace. Span ids must be unique per trace in the span table, so the
  server half gets a derived id: 16 hex digits of a BLAKE2b hash of trace id, shared id, the
  server's local endpoint and its rank among identical server records (a message redelivered
  to the same consumer), so the same input always gives the same ids, and an explicitly shared
  server gets the same id whether or not its client is read with it. The server half's parent
  is the shared id, i.e. the client half. Then, as Zipkin's own ``SpanNodeBuilder`` does, every
  span whose ``parentId`` is the shared id *and* whose local service is the server's is
  re-parented onto the server half; the client's own local children stay with the client.
  When the document holds no client half (the client was not instrumented, or the server is
  the root), the server half takes the client's place: its parent is the record's
  ``parentId`` and every span naming the shared id as parent hangs below it. This works within
  one document (one file, or one line of JSON Lines).

Zipkin v1 (``binaryAnnotations``, ``cs``/``sr`` annotations with endpoints) is not read.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.model.spans import SEMANTIC_COLUMNS, SpanRows
from orchscan.collectors.traces.ids import hex_id
from orchscan.collectors.traces.jsonio import find_record_path, parse_documents, split_json
from orchscan.collectors.traces.limits import MAX_NANOS, OUT_OF_RANGE, Tally, nanos, span_end
from orchscan.collectors.traces.sniffing import LIKELY, NO, WEAK, WINDOW, json_text
from orchscan.collectors.traces.vocabulary import normalize, stringify

NAME = "zipkin-json"

_TRACE_ID = re.compile(rb'"traceId"\s*:')
_EMPTY_LIST = re.compile(rb"^\[\s*\]\s*$")


def sniff(head: bytes) -> int:
    """Likely for a list holding Zipkin's ``traceId`` (Jaeger spells it ``traceID``); weak for the
    empty list Zipkin's API answers when it found nothing (its reader says so), else no."""
    text = json_text(head)
    if text is None or text[:1] != b"[":
        return NO
    if _TRACE_ID.search(text, 0, WINDOW):
        return LIKELY
    return WEAK if _EMPTY_LIST.match(text) else NO


_KINDS = {"CLIENT": "client", "SERVER": "server", "PRODUCER": "producer", "CONSUMER": "consumer"}
_SERVER_ADDRESS = SEMANTIC_COLUMNS.index("server_address")
_SERVER_PORT = SEMANTIC_COLUMNS.index("server_port")
_PEER_SERVICE = SEMANTIC_COLUMNS.index("peer_service")
# Tags that become columns of their own rather than attributes.
_COLUMN_TAGS = (
    "error",
    "otel.status_code",
    "otel.status_description",
    "service.namespace",
    "service.instance.id",
    "k8s.namespace.name",
)
# Brave's messaging and database tag names, which the shared vocabulary does not know:
# tag -> (OpenTelemetry key it means, system it implies).
_BRAVE_TAGS = {
    "kafka.topic": ("messaging.destination.name", ("messaging.system", "kafka")),
    "rabbit.queue": ("messaging.destination.name", ("messaging.system", "rabbitmq")),
    "rabbit.exchange": ("messaging.destination.name", ("messaging.system", "rabbitmq")),
    "jms.queue": ("messaging.destination.name", ("messaging.system", "jms")),
    "jms.topic": ("messaging.destination.name", ("messaging.system", "jms")),
    "cassandra.query": ("db.statement", ("db.system", "cassandra")),
    # p6spy and Brave's JDBC wrappers name no database product; OpenTelemetry calls that other_sql.
    "sql.query": ("db.statement", ("db.system", "other_sql")),
}
# Each annotation value is cut to this length in the summary attribute: the summary says what
# happened, the full text stays in the source file.
_ANNOTATION_CHARS = 200


class _SpanError(ValueError):
    """A record that cannot become a row; the message is the Skipped reason."""


@dataclass(slots=True)
class _Record:
    """One Zipkin span record while parts are merged and shared spans are split."""

    position: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str | None
    shared: bool
    name: str
    timestamp: int | None
    duration: int | None
    local: dict[str, Any]
    remote: dict[str, Any]
    tags: dict[str, Any]
    annotations: list[tuple[int, str]] = field(default_factory=list)
    row_id: str = ""
    row_parent: str | None = None

    @property
    def service(self) -> str | None:
        """The local endpoint's service name, if it names one."""
        name = self.local.get("serviceName")
        return name if isinstance(name, str) and name else None


def _micros(value: Any, *, signed: bool = False) -> int | None:
    """Microseconds as an integer (None when absent); a negative duration is kept for the clamp."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or (value < 0 and not signed)
    ):
        raise _SpanError("invalid timestamp/duration (expected microseconds)")
    micros = int(value)
    if abs(micros) * 1000 > MAX_NANOS:
        raise _SpanError(OUT_OF_RANGE)
    return micros


def is_v1(span: Any) -> bool:
    """True for a Zipkin v1 span: binary annotations, or annotations that carry an endpoint."""
    if not isinstance(span, dict):
        return False
    if "binaryAnnotations" in span:
        return True
    annotations = span.get("annotations")
    return isinstance(annotations, list) and any(isinstance(a, dict) and "endpoint" in a for a in annotations)


def _record(span: Any, position: str) -> _Record:
    if not isinstance(span, dict):
        raise _SpanError("empty trace (no spans)" if span == [] else "span is not an object")
    trace_id = hex_id(span.get("traceId"), 32)
    span_id = hex_id(span.get("id"), 16)
    if trace_id is None or span_id is None:
        raise _SpanError("missing or invalid traceId/id (expected 16 or 32 / 16 hex digits)")
    parent_id = hex_id(span.get("parentId"), 16)
    kind = span.get("kind")
    kind = kind.upper() if isinstance(kind, str) else None
    local = span.get("localEndpoint")
    remote = span.get("remoteEndpoint")
    tags = span.get("tags")
    annotations = span.get("annotations")
    return _Record(
        position=position,
        trace_id=trace_id,
        span_id=span_id,
        # A span cannot be its own parent; Zipkin's cleaner drops such links too.
        parent_id=parent_id if parent_id != span_id else None,
        kind=kind,
        # ``shared`` describes the server side; Zipkin ignores it on a client record.
        shared=span.get("shared") is True and kind != "CLIENT",
        name=stringify(span.get("name") or ""),
        timestamp=_micros(span.get("timestamp")),
        duration=_micros(span.get("duration"), signed=True),
        local=local if isinstance(local, dict) else {},
        remote=remote if isinstance(remote, dict) else {},
        tags=tags if isinstance(tags, dict) else {},
        annotations=[
            (_annotation_time(a.get("timestamp")), stringify(a.get("value", "")))
            for a in (annotations if isinstance(annotations, list) else [])
            if isinstance(a, dict)
        ],
    )


def _annotation_time(value: Any) -> int:
    """An annotation's timestamp for ordering; anything but an integer sorts first."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _compatible(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Two local endpoints may be the same process: no field both name differs."""
    return all(
        left.get(key) in (None, "") or right.get(key) in (None, "") or left.get(key) == right.get(key)
        for key in ("serviceName", "ipv4", "ipv6", "port")
    )


def _merge(into: _Record, part: _Record) -> None:
    """Fill what ``into`` lacks from ``part``; values already present win."""
    into.parent_id = into.parent_id or part.parent_id
    into.kind = into.kind or part.kind
    into.shared = into.shared or (part.shared and into.kind != "CLIENT")
    into.name = into.name or part.name
    into.timestamp = into.timestamp if into.timestamp is not None else part.timestamp
    into.duration = into.duration if into.duration is not None else part.duration
    into.local = {**part.local, **into.local}
    into.remote = {**part.remote, **into.remote}
    into.tags = {**part.tags, **into.tags}
    into.annotations = sorted(set(into.annotations + part.annotations))


def _merge_parts(group: list[_Record]) -> list[_Record]:
    """Merge the timestamp-less parts of one span id into a compatible record."""
    complete = [r for r in group if r.timestamp is not None]
    kept = list(complete)
    for part in (r for r in group if r.timestamp is None):
        target = next(
            (r for r in kept if r.shared == part.shared and _compatible(r.local, part.local)), None
        ) or next((r for r in kept if r.kind != "CLIENT" and _compatible(r.local, part.local)), None)
        if target is None:
            kept.append(part)
        else:
            _merge(target, part)
    return kept


def _derived_id(record: _Record, rank: int) -> str:
    local = record.local
    key = "/".join(
        str(part)
        for part in (
            record.trace_id,
            record.span_id,
            local.get("serviceName"),
            local.get("ipv4"),
            local.get("ipv6"),
            local.get("port"),
            rank,
        )
    )
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return digest if digest != "0" * 16 else "0" * 15 + "1"


def _endpoint(record: _Record) -> tuple[str, ...]:
    return tuple(str(record.local.get(key, "")) for key in ("serviceName", "ipv4", "ipv6", "port"))


@dataclass(slots=True)
class _Halves:
    """The server halves of one shared span id, and whether its client half was read."""

    by_service: dict[str | None, list[_Record]]
    has_client: bool

    def candidates(self, service: str | None) -> list[_Record]:
        """Server halves a span of ``service`` whose parent is the shared id may belong to."""
        same = self.by_service.get(service, [])
        if same or self.has_client:
            return same
        # No client half: the server half is the only span left that carries the shared id.
        return [server for halves in self.by_service.values() for server in halves]


def _split_shared(group: list[_Record]) -> _Halves:
    """Give the server halves of one span id their own ids and parents."""
    has_client = any(r.kind == "CLIENT" for r in group)
    servers = [r for r in group if r.shared or (has_client and r.kind == "SERVER")]
    client_half = len(servers) < len(group)
    for record in group:
        record.row_id, record.row_parent = record.span_id, record.parent_id
    by_service: dict[str | None, list[_Record]] = defaultdict(list)
    ranks: dict[tuple[str, ...], int] = defaultdict(int)
    for server in sorted(servers, key=lambda r: (r.timestamp or 0, r.name, r.position)):
        endpoint = _endpoint(server)
        server.row_id = _derived_id(server, ranks[endpoint])
        # Without its client half the server takes the client's place under the client's parent.
        server.row_parent = server.span_id if client_half else server.parent_id
        ranks[endpoint] += 1
        by_service[server.service].append(server)
    return _Halves(dict(by_service), client_half)


def _server_for(child: _Record, candidates: list[_Record]) -> _Record:
    """The server half a child span belongs to: same endpoint first, then the latest one started."""
    same = [s for s in candidates if _endpoint(s) == _endpoint(child)] or candidates
    started = [s for s in same if (s.timestamp or 0) <= (child.timestamp or 0)]
    return max(started, key=lambda s: s.timestamp or 0) if started else same[0]


def _resolve(records: list[_Record]) -> tuple[list[_Record], list[_Record]]:
    """Merge parts and split shared spans; return (placeable records, records without a time)."""
    groups: dict[tuple[str, str], list[_Record]] = defaultdict(list)
    for record in records:
        groups[(record.trace_id, record.span_id)].append(record)
    placed: list[_Record] = []
    shared: dict[tuple[str, str], _Halves] = {}
    for key, group in groups.items():
        merged = _merge_parts(group) if len(group) > 1 else group
        shared[key] = _split_shared(merged)
        placed += merged
    for record in placed:
        if record.row_id != record.span_id or record.row_parent is None:
            continue  # server halves already point at their client
        halves = shared.get((record.trace_id, record.row_parent))
        candidates = halves.candidates(record.service) if halves else []
        if candidates:
            record.row_parent = _server_for(record, candidates).row_id
    timed = [r for r in placed if r.timestamp is not None]
    untimed = [r for r in placed if r.timestamp is None]
    return timed, untimed


def _widen_trace_ids(records: list[_Record]) -> None:
    """Use the 128-bit trace id where some records of a trace carry only its lower 64 bits.

    Instrumentation that moved to 128-bit ids reports both widths during the change; Zipkin
    joins them the same way.
    """
    wide = {r.trace_id[16:]: r.trace_id for r in records if not r.trace_id.startswith("0" * 16)}
    for record in records:
        if record.trace_id.startswith("0" * 16):
            record.trace_id = wide.get(record.trace_id[16:], record.trace_id)


def _attributes(record: _Record) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    implied: dict[str, str] = {}
    for key, value in record.tags.items():
        if key in _COLUMN_TAGS or (key == "service.name" and value == record.service):
            continue
        translated = _BRAVE_TAGS.get(key)
        if translated is not None and value not in (None, ""):
            meaning, (system_key, system) = translated
            attributes.setdefault(meaning, value)
            implied.setdefault(system_key, system)
            if meaning == "db.statement":
                continue  # the statement is kept under its OpenTelemetry name
        attributes[key] = value
    for key, value in implied.items():
        attributes.setdefault(key, value)
    if record.annotations:
        attributes["zipkin.annotations"] = ",".join(v[:_ANNOTATION_CHARS] for _, v in record.annotations)
    return attributes


def _status(tags: dict[str, Any]) -> tuple[str, str | None]:
    description = tags.get("otel.status_description")
    description = None if description in (None, "") else stringify(description)
    if "error" in tags:
        message = tags["error"]
        # Zipkin's convention: the error tag's value is the message; "" or "true" say only "failed".
        text = None if message is None or message in ("", "true", True) else stringify(message)
        return "error", text or description
    if str(tags.get("otel.status_code", "")).upper() == "ERROR":
        return "error", description
    if str(tags.get("otel.status_code", "")).upper() == "OK":
        return "ok", None
    return "unset", None


def _append(record: _Record, rows: SpanRows, source: str, tally: Tally) -> None:
    assert record.timestamp is not None
    start = record.timestamp * 1000
    end = start + (record.duration or 0) * 1000
    if not nanos(end):
        raise _SpanError(OUT_OF_RANGE)
    kind = _KINDS.get(record.kind or "", "internal" if record.kind is None else "unspecified")
    semantic, idempotent, rest = normalize(_attributes(record))
    remote_service = record.remote.get("serviceName")
    if semantic[_PEER_SERVICE] is None and isinstance(remote_service, str) and remote_service:
        semantic[_PEER_SERVICE] = remote_service
    if kind in ("client", "producer"):
        # Host names from tags (e.g. http.url) say more than the IP Zipkin recorded, so they win.
        if semantic[_SERVER_ADDRESS] is None:
            address = record.remote.get("ipv4") or record.remote.get("ipv6")
            semantic[_SERVER_ADDRESS] = str(address) if address else None
        port = record.remote.get("port")
        if semantic[_SERVER_PORT] is None and isinstance(port, int) and 0 < port < 65536:
            semantic[_SERVER_PORT] = port
    status, message = _status(record.tags)
    namespace = record.tags.get("service.namespace")
    instance = record.tags.get("service.instance.id")
    k8s = record.tags.get("k8s.namespace.name")
    rows.append(
        trace_id=record.trace_id,
        span_id=record.row_id,
        parent_span_id=record.row_parent,
        service=record.service or "unknown",
        service_namespace=None if namespace is None else stringify(namespace),
        service_instance=None if instance is None else stringify(instance),
        k8s_namespace=None if k8s is None else stringify(k8s),
        name=record.name,
        kind=kind,
        start_ns=start,
        end_ns=span_end(start, end, tally),
        status=status,
        status_message=message,
        semantic=semantic,
        links=None,
        idempotency_key=idempotent,
        attributes=rest,
        source=source,
    )


def _spans(document: Any) -> list[tuple[str, Any]] | str:
    """The span records of a document with their positions, or why it has none."""
    if isinstance(document, dict):
        return [("", document)] if "traceId" in document else "not a Zipkin span list or span object"
    if not isinstance(document, list):
        return "not a Zipkin span list"
    if not document:
        return "empty list: no spans"
    found: list[tuple[str, Any]] = []
    for i, item in enumerate(document):
        if isinstance(item, list) and item:
            found += [(f"[{i}][{j}]", span) for j, span in enumerate(item)]
        else:
            found.append((f"[{i}]", item))  # an empty trace is a record too: it is counted
    return found


def add_document(document: Any, rows: SpanRows, source: str, where: str, tally: Tally) -> list[Skipped]:
    """Append every span of one Zipkin v2 document to ``rows``; return what was skipped."""
    spans = _spans(document)
    if isinstance(spans, str):
        return [Skipped(source, where, spans)]
    # Positions inside a whole document read like ``[3]``; JSON Lines add the line.
    prefix = "" if where == "document" else f"{where}: "
    return _add_spans(
        [(prefix + (position or "span"), span) for position, span in spans], rows, source, tally
    )


def records(head: bytes) -> tuple[str, str] | None:
    """Where a large document's records are: the items (spans, or traces) of its top-level list."""
    return find_record_path(head, frozenset(("",)), "[{}]")


def cut_between(previous: Any, record: Any) -> bool:
    """Whether a chunk may end between two records: between traces, never inside one.

    Shared spans are split and parts merged within a chunk, so a flat list's spans are only
    cut where the trace id changes (spans of a trace written together stay together).
    """
    if isinstance(previous, dict) and isinstance(record, dict):
        return bool(previous.get("traceId") != record.get("traceId"))
    return True


def read_parts(parts: list[tuple[str, Any]], rows: SpanRows, source: str, tally: Tally) -> list[Skipped]:
    """Append the spans of a streamed document's records (spans, or traces as lists of spans)."""
    spans: list[tuple[str, Any]] = []
    for path, record in parts:
        if isinstance(record, list) and record:
            spans += [(f"{path}[{index}]", span) for index, span in enumerate(record)]
        else:
            spans.append((path, record))
    return _add_spans(spans, rows, source, tally)


def _add_spans(spans: list[tuple[str, Any]], rows: SpanRows, source: str, tally: Tally) -> list[Skipped]:
    """Append the spans of one group read together (a document, a line, a chunk of records)."""
    if any(is_v1(span) for _, span in spans):
        where = spans[0][0].split(":", 1)[0] if ":" in spans[0][0] else "document"
        return [Skipped(source, where, "Zipkin v1 format is not supported (convert to v2)", len(spans))]
    skipped: list[Skipped] = []
    records: list[_Record] = []
    for position, span in spans:
        try:
            records.append(_record(span, position))
        except _SpanError as error:
            skipped.append(Skipped(source, position, str(error)))
        except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as error:
            skipped.append(Skipped(source, position, _unreadable(error)))
    _widen_trace_ids(records)
    timed, untimed = _resolve(records)
    for record in timed:
        try:
            _append(record, rows, source, tally)
        except _SpanError as error:
            skipped.append(Skipped(source, record.position, str(error)))
        except (TypeError, ValueError, AttributeError, OverflowError, RecursionError) as error:
            skipped.append(Skipped(source, record.position, _unreadable(error)))
    skipped += [
        Skipped(source, r.position, "span has no timestamp and no other part of it carries one")
        for r in untimed
    ]
    return skipped


def _unreadable(error: Exception) -> str:
    return f"unreadable span ({type(error).__name__}: {str(error)[:120]})"


def split(stream: IO[bytes], source: str) -> Iterator[Chunk | Skipped]:
    """Cut a Zipkin JSON input into chunks (a document whole or by traces, or batches of JSON Lines)."""
    return split_json(stream, NAME, source, records, cut_between)


def parse(chunk: Chunk, keep_attributes: bool = True) -> ChunkResult:
    """Parse one chunk of Zipkin v2 JSON into spans (see :func:`parse_documents`)."""
    return parse_documents(chunk, add_document, read_parts, records, keep_attributes)
