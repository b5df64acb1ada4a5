"""OTLP/HTTP trace requests and responses, as opentelemetry-proto's ``docs/specification.md`` defines them.

A request body is an ``ExportTraceServiceRequest``, binary protobuf (``application/x-protobuf``)
or OTLP JSON (``application/json``: hex trace and span ids, lowerCamelCase keys, unknown fields
ignored), optionally gzip-compressed. Its size is limited as sent and again once unpacked.
Spans without a valid trace or span id are rejected one by one and reported in the response's
``partial_success``; an undecodable body is rejected whole (400). Error responses carry a
``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.json_format import MessageToJson, ParseDict, ParseError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)

# google.rpc.Code values for the Status body; the specification leaves Status.code to the
# server and clients act on the HTTP status only.
_INVALID_ARGUMENT = 3
_RESOURCE_EXHAUSTED = 8
_UNIMPLEMENTED = 12
_UNAVAILABLE = 14
_GRPC_CODES = {
    400: _INVALID_ARGUMENT,
    404: _UNIMPLEMENTED,
    405: _UNIMPLEMENTED,
    413: _RESOURCE_EXHAUSTED,
    415: _INVALID_ARGUMENT,
    429: _RESOURCE_EXHAUSTED,
    503: _UNAVAILABLE,
}

_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId"))


class RequestError(Exception):
    """A request refused whole: the HTTP status to answer and a message for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Accepted:
    """A decoded request: the message to keep (rejected spans removed), how many spans it holds and lost."""

    body: bytes
    spans: int
    rejected: int
    reason: str


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, without parameters, lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def unpack(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body with its Content-Encoding undone, at most ``limit`` bytes once unpacked."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as unpacked:
            data = unpacked.read(limit + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise RequestError(400, f"body is not valid gzip: {error}") from None
    if len(data) > limit:
        raise RequestError(413, f"body larger than {limit:,} bytes once unpacked")
    return data


def decode(body: bytes, media: str) -> Accepted:
    """Decode an ExportTraceServiceRequest and set aside spans that cannot be traced."""
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            raise RequestError(400, f"not an ExportTraceServiceRequest: {error}") from None
    elif media == JSON:
        try:
            document = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as error:
            raise RequestError(400, f"not JSON: {error}") from None
        if not isinstance(document, dict):
            raise RequestError(400, "not an ExportTraceServiceRequest: the JSON is not an object")
        try:
            ParseDict(_base64_ids(document), request, ignore_unknown_fields=True)
        except ParseError as error:
            raise RequestError(400, f"not an ExportTraceServiceRequest: {error}") from None
    else:
        raise RequestError(415, f"unsupported Content-Type {media!r}; use {PROTOBUF} or {JSON}")
    total, rejected = _drop_untraceable(request)
    reason = (
        f"{rejected} span(s) rejected: a span needs a 16-byte trace id and an 8-byte span id, not all zero"
        if rejected
        else ""
    )
    if rejected or media == JSON:
        body = bytes(request.SerializeToString())
    return Accepted(body, total - rejected, rejected, reason)


def _base64_ids(node: Any) -> Any:
    """OTLP JSON's hex ids as the base64 protobuf's JSON mapping reads; a bad id becomes empty."""
    if isinstance(node, dict):
        return {
            key: _hex_to_base64(value) if key in _ID_KEYS else _base64_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_base64_ids(item) for item in node]
    return node


def _hex_to_base64(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except (ValueError, binascii.Error):
        return ""  # rejected with its span below, rather than failing the whole request


def _valid(identifier: bytes, size: int) -> bool:
    return len(identifier) == size and any(identifier)


def _drop_untraceable(request: ExportTraceServiceRequest) -> tuple[int, int]:
    """Remove spans whose ids make them unplaceable; return (spans seen, spans removed)."""
    total = rejected = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            keep = []
            for span in scope_spans.spans:
                total += 1
                parent_ok = not span.parent_span_id or len(span.parent_span_id) == _SPAN_ID_BYTES
                if (
                    _valid(span.trace_id, _TRACE_ID_BYTES)
                    and _valid(span.span_id, _SPAN_ID_BYTES)
                    and parent_ok
                ):
                    keep.append(span)
                else:
                    rejected += 1
            if len(keep) < len(scope_spans.spans):
                del scope_spans.spans[:]
                scope_spans.spans.extend(keep)
    return total, rejected


def success(media: str, accepted: Accepted | None = None) -> bytes:
    """An ExportTraceServiceResponse; ``partial_success`` set only when spans were rejected."""
    response = ExportTraceServiceResponse()
    if accepted is not None and accepted.rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=accepted.rejected, error_message=accepted.reason)
        )
    if media == JSON:
        return str(MessageToJson(response, indent=None)).encode()
    return bytes(response.SerializeToString())


def status(media: str, http_status: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (code = 1, message = 2) for an error response."""
    code = _GRPC_CODES.get(http_status, _INVALID_ARGUMENT)
    if media == JSON:
        return orjson.dumps({"code": code, "message": message})
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
