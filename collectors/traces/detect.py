"""Recognise a trace format from the first bytes of its content, never from the file name."""

from __future__ import annotations

import re

from orchscan.collectors.traces.formats import otlp_proto
from orchscan.collectors.traces.jsonio import is_json_lines

HEAD_BYTES = 1 << 16

_FIRST_KEY = re.compile(rb'^\{\s*"([A-Za-z_]+)"')
_OTLP_KEYS = frozenset((b"resourceSpans", b"resource_spans", b"result"))
_JAEGER_TRACE_ID = re.compile(rb'"traceID"\s*:')
_ZIPKIN_TRACE_ID = re.compile(rb'"traceId"\s*:')
_EMPTY_LIST = re.compile(rb"^\[\s*\]\s*$")


def detect(head: bytes) -> str | None:
    """Name of the format ``head`` (the first bytes of a decompressed input) is in, or None."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return None
    if text[:1] == b"{":
        return _detect_object(text)
    if text[:1] == b"[":
        return _detect_list(text)
    if otlp_proto.looks_like_otlp(head):
        return "otlp-proto"
    return None


def _detect_list(text: bytes) -> str | None:
    window = text[:8192]
    # Jaeger spells its ids traceID/spanID, Zipkin traceId/id; only a list of Jaeger traces has both.
    if _JAEGER_TRACE_ID.search(window) and b'"spans"' in window:
        return "jaeger-json"
    if _ZIPKIN_TRACE_ID.search(window):
        return "zipkin-json"
    # ``[]`` is what Zipkin's API answers when it found nothing; its reader says so.
    if _EMPTY_LIST.match(text):
        return "zipkin-json"
    return None


def _detect_object(text: bytes) -> str | None:
    first = _FIRST_KEY.match(text)
    key = first.group(1) if first else b""
    if key in _OTLP_KEYS:
        return "otlp-json"
    if key == b"data":
        return "jaeger-json"
    window = text[:8192] if not is_json_lines(text) else text.split(b"\n", 1)[0]
    if b'"resourceSpans"' in window or b'"resource_spans"' in window:
        return "otlp-json"
    if _JAEGER_TRACE_ID.search(window) and b'"spans"' in window:
        return "jaeger-json"
    return None


# A version key of an API description: "openapi": "3.1.0" in JSON, openapi: 3.1.0 in YAML.
_API_DESCRIPTION = re.compile(
    rb'"(openapi|swagger|arazzo)"\s*:\s*"|^(openapi|swagger|arazzo)\s*:', re.MULTILINE
)


def describe_unrecognised(head: bytes) -> str:
    """Why content is not a trace input, naming API descriptions that were passed as traces."""
    found = _API_DESCRIPTION.search(head[:4096])
    if found:
        kind = (found.group(1) or found.group(2)).decode()
        if kind == "arazzo":
            return "an Arazzo document, not traces (pass it with --arazzo)"
        return "an OpenAPI document, not traces (pass it with --openapi)"
    return "unrecognised content: not OTLP (protobuf/JSON), Jaeger or Zipkin JSON"
