"""Recognise a trace format from the first bytes of its content, never from the file name."""

from __future__ import annotations

import re

from orchscan.collectors.traces.registry import FORMATS

HEAD_BYTES = 1 << 16


def detect(head: bytes) -> str | None:
    """Name of the format ``head`` (the first bytes of a decompressed input) is in, or None.

    Every registered format sniffs the head; the surest wins, ties go to the one listed first.
    """
    best, confidence = None, 0
    for name, fmt in FORMATS.items():
        found = fmt.sniff(head)
        if found > confidence:
            best, confidence = name, found
    return best


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
