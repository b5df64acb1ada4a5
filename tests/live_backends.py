"""Jaeger's and Tempo's query APIs answered over recorded traces, in the shapes those projects write.

The traces are real captures kept in ``tests/fixtures`` (HotROD as OTLP JSON, Spring PetClinic
as Jaeger JSON). The answers are shaped as the backends' own code and documentation shape them
(``tests/fixtures/live-apis/PROVENANCE.md`` says from where): Jaeger v1 wraps traces in
``{"data", "total", "limit", "offset", "errors"}``; Jaeger API v3 in ``{"result": ...}`` and
answers an empty search with 404 "No traces found"; Tempo's search lists ids with leading zeros
dropped, and its trace endpoints answer protobuf (``Trace``, or ``TraceByIDResponse`` in v2) or
JSON with base64 ids and enum names (protobuf's JSON mapping, as Tempo's gogo jsonpb writes it).
Search semantics (time window, page limit) are the backends' as documented; the tests check
what the client asks and reads, not how a backend indexes.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from paths import FIXTURES
from replay import Received, Reply

HOTROD = FIXTURES / "hotrod" / "traces"
PETCLINIC = FIXTURES / "spring-petclinic" / "traces"
LIVE = FIXTURES / "live-apis"
NS_PER_US = 1000


def hotrod_files() -> list[Path]:
    """The three captured HotROD traces (OTLP JSON), each a whole trace."""
    return sorted(HOTROD.glob("*.otlp.json"))


def petclinic_files() -> list[Path]:
    """The three captured Spring PetClinic traces (Jaeger JSON trace objects)."""
    return sorted(PETCLINIC.glob("*.jaeger.json"))


def _hex_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64encode(bytes.fromhex(value)).decode()
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str)
            else _hex_to_base64(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_to_base64(item) for item in node]
    return node


@dataclass(frozen=True)
class OtlpTrace:
    """One whole trace as OTLP: its id, span start range, services and the TracesData message."""

    trace_id: str
    start_ns: int
    end_ns: int
    root_service: str
    root_name: str
    data: TracesData

    @classmethod
    def load(cls, path: Path) -> OtlpTrace:
        """Read a HotROD capture (a TracesData, or Jaeger API v3's ``{"result": ...}``)."""
        document = json.loads(path.read_text())
        return cls.of(ParseDict(_hex_to_base64(document.get("result", document)), TracesData()))

    @classmethod
    def of(cls, data: TracesData) -> OtlpTrace:
        """A trace from a TracesData holding its spans (a trace whose root was lost starts earliest)."""
        spans = [(rs, span) for rs in data.resource_spans for ss in rs.scope_spans for span in ss.spans]
        roots = [(rs, span) for rs, span in spans if not span.parent_span_id]
        root_rs, root = min(roots or spans, key=lambda pair: pair[1].start_time_unix_nano)
        return cls(
            trace_id=spans[0][1].trace_id.hex(),
            start_ns=min(span.start_time_unix_nano for _, span in spans),
            end_ns=max(span.end_time_unix_nano for _, span in spans),
            root_service=_service(root_rs),
            root_name=root.name,
            data=data,
        )

    def services(self) -> set[str]:
        """Every service.name with a span in the trace."""
        return {_service(rs) for rs in self.data.resource_spans}

    def span_starts(self, service: str) -> list[int]:
        """Start times of the spans ``service`` emitted."""
        return [
            span.start_time_unix_nano
            for rs in self.data.resource_spans
            if _service(rs) == service
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def otlp_json(self) -> dict[str, Any]:
        """OTLP JSON as Jaeger writes it: hex ids, integer enums."""
        document = MessageToDict(self.data, use_integers_for_enums=True)
        return _base64_to_hex(document)  # type: ignore[no-any-return]

    def tempo_json_resource_spans(self) -> list[Any]:
        """The resource spans as Tempo's JSON writes them: base64 ids, enum names."""
        return MessageToDict(self.data)["resourceSpans"]  # type: ignore[no-any-return]


def split_traces(requests: list[ExportTraceServiceRequest]) -> list[OtlpTrace]:
    """The traces in export requests, each with its resources and scopes, as a store keeps them."""
    by_trace: dict[bytes, TracesData] = {}
    for request in requests:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    data = by_trace.setdefault(span.trace_id, TracesData())
                    target = data.resource_spans.add(resource=resource_spans.resource)
                    target.scope_spans.add(scope=scope_spans.scope).spans.append(span)
    return [OtlpTrace.of(data) for data in by_trace.values()]


def _base64_to_hex(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str)
            else _base64_to_hex(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_base64_to_hex(item) for item in node]
    return node


def _service(resource_spans: Any) -> str:
    for attribute in resource_spans.resource.attributes:
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return "unknown"


def _json(document: Any, status: int = 200) -> Reply:
    return Reply(json.dumps(document).encode(), status)


class JaegerV1:
    """``/api/services`` and ``/api/traces`` over Jaeger JSON trace objects."""

    def __init__(self, traces: list[dict[str, Any]]) -> None:
        self.traces = traces

    @staticmethod
    def from_files(paths: list[Path]) -> JaegerV1:
        """Serve the trace objects stored in ``paths``."""
        return JaegerV1([json.loads(path.read_text()) for path in paths])

    def services(self) -> list[str]:
        """Every service of every trace."""
        return sorted({p["serviceName"] for trace in self.traces for p in trace["processes"].values()})

    def route(self, request: Received) -> Reply:
        """Answer as Jaeger's ``APIHandler`` does."""
        if request.path == "/api/services":
            names = self.services()
            return _json({"data": names, "total": len(names), "limit": 0, "offset": 0, "errors": None})
        if request.path == "/api/traces":
            if "service" not in request.query:
                return Reply((LIVE / "jaeger" / "search-400.json").read_bytes(), 400)
            return _json({"data": self.search(request), "total": 0, "limit": 0, "offset": 0, "errors": None})
        return Reply(b"404 page not found\n", 404, "text/plain; charset=utf-8")

    def search(self, request: Received) -> list[dict[str, Any]]:
        """Traces with a span of the service starting in [start, end] (microseconds), newest first."""
        service = request.param("service")
        start, end, limit = (int(request.param(name)) for name in ("start", "end", "limit"))
        found = []
        for trace in self.traces:
            processes = {key for key, p in trace["processes"].items() if p["serviceName"] == service}
            starts = [s["startTime"] for s in trace["spans"] if s["processID"] in processes]
            if any(start <= t <= end for t in starts):
                found.append((max(starts), trace))
        found.sort(key=lambda pair: -pair[0])
        return [trace for _, trace in found[:limit]]


def replicate(trace: dict[str, Any], copies: int, step_us: int) -> list[dict[str, Any]]:
    """``copies`` of a Jaeger trace under new trace ids, each ``step_us`` later than the one before.

    Paging needs more traces in a window than a page holds; the captured traces are few, so
    the test shifts copies of a real one rather than inventing spans.
    """
    result = []
    for index in range(copies):
        clone = copy.deepcopy(trace)
        trace_id = f"{index + 1:016x}{trace['traceID'][16:]}"
        clone["traceID"] = trace_id
        for span in clone["spans"]:
            span["traceID"] = trace_id
            span["startTime"] += index * step_us
            for reference in span.get("references", []):
                reference["traceID"] = trace_id
        result.append(clone)
    return result


class JaegerV3:
    """``/api/v3/services`` and ``/api/v3/traces`` over OTLP traces."""

    def __init__(self, traces: list[OtlpTrace]) -> None:
        self.traces = traces

    def route(self, request: Received) -> Reply:
        """Answer as Jaeger's API v3 ``HTTPGateway`` does."""
        if request.path == "/api/v3/services":
            return _json({"services": sorted({s for t in self.traces for s in t.services()})})
        if request.path != "/api/v3/traces":
            return Reply(b"404 page not found\n", 404, "text/plain; charset=utf-8")
        service = request.param("query.serviceName")
        low, high = (
            _rfc3339_ns(request.param(name)) for name in ("query.startTimeMin", "query.startTimeMax")
        )
        depth = int(request.param("query.searchDepth"))
        found = [t for t in self.traces if any(low <= s <= high for s in t.span_starts(service))][:depth]
        if not found:
            return _json({"error": {"httpCode": 404, "message": "No traces found"}}, 404)
        combined = [rs for trace in found for rs in trace.otlp_json()["resourceSpans"]]
        return _json({"result": {"resourceSpans": combined}})


def _rfc3339_ns(text: str) -> int:
    from datetime import datetime

    stamp, _, fraction = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(stamp + "+00:00").timestamp())
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


class Tempo:
    """``/api/search`` and the trace-by-id endpoints over OTLP traces."""

    def __init__(self, traces: list[OtlpTrace], partial: frozenset[str] = frozenset()) -> None:
        self.traces = {trace.trace_id: trace for trace in traces}
        self.partial = partial

    def route(self, request: Received) -> Reply:
        """Answer as Tempo's query frontend does."""
        if request.path == "/api/search":
            return _json(self.search(request))
        for prefix, version in (("/api/v2/traces/", "v2"), ("/api/traces/", "v1")):
            if request.path.startswith(prefix):
                return self.trace(request.path[len(prefix) :], version, request.header("Accept") or "")
        return Reply(b"404 page not found\n", 404, "text/plain; charset=utf-8")

    def search(self, request: Received) -> dict[str, Any]:
        """Traces starting in [start, end] (Unix seconds), at most ``limit``, ids without leading zeros."""
        start, end, limit = (int(request.param(name)) for name in ("start", "end", "limit"))
        found = [t for t in self.traces.values() if start * 10**9 <= t.start_ns <= end * 10**9]
        found.sort(key=lambda t: t.start_ns)
        listed = [
            {
                "traceID": t.trace_id.lstrip("0"),
                "rootServiceName": t.root_service,
                "rootTraceName": t.root_name,
                "startTimeUnixNano": str(t.start_ns),
                "durationMs": (t.end_ns - t.start_ns) // 1_000_000,
            }
            for t in found[:limit]
        ]
        return {"traces": listed, "metrics": {"inspectedTraces": len(found), "inspectedBytes": "0"}}

    def trace(self, trace_id: str, version: str, accept: str) -> Reply:
        """One trace, in the encoding the Accept header asks for."""
        trace = self.traces.get(trace_id.rjust(32, "0"))
        if trace is None:
            return Reply(b"trace not found\n", 404, "text/plain; charset=utf-8")
        partial = trace.trace_id in self.partial
        if "application/protobuf" in accept:
            body = trace.data.SerializeToString()
            if version == "v2":
                body = _length_delimited(1, body)
                if partial:
                    body += b"\x18\x01" + _length_delimited(4, b"trace exceeds max size")
            return Reply(body, content_type="application/protobuf")
        if version == "v1":
            return _json({"batches": trace.tempo_json_resource_spans()})
        document: dict[str, Any] = {
            "trace": {"resourceSpans": trace.tempo_json_resource_spans()},
            "metrics": {},
        }
        if partial:
            document.update(status="PARTIAL", message="trace exceeds max size")
        return _json(document)


def _length_delimited(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, encoded by hand (independent of the code under test)."""
    out = bytearray([field << 3 | 2])
    size = len(payload)
    while size >= 0x80:
        out.append(size & 0x7F | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out) + payload
