"""Meaning of OTLP enums and ids shared by the protobuf and JSON readers."""

from __future__ import annotations

import base64
import binascii
import gc
from collections.abc import Iterator
from contextlib import contextmanager

# SpanKind and StatusCode numbers from opentelemetry/proto/trace/v1/trace.proto.
KIND_BY_NUMBER = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_BY_NUMBER = ("unset", "ok", "error")

_KIND_BY_NAME = {f"SPAN_KIND_{name.upper()}": name for name in KIND_BY_NUMBER}
_STATUS_BY_NAME = {f"STATUS_CODE_{name.upper()}": name for name in STATUS_BY_NUMBER}

_HEX_DIGITS = frozenset("0123456789abcdef")


def kind_name(value: object) -> str:
    """Span kind from its number or enum name; unknown values read as 'unspecified'."""
    if isinstance(value, int):
        return KIND_BY_NUMBER[value] if 0 <= value < len(KIND_BY_NUMBER) else "unspecified"
    if isinstance(value, str):
        return _KIND_BY_NAME.get(
            value.upper(), value.lower() if value.lower() in KIND_BY_NUMBER else "unspecified"
        )
    return "unspecified"


def status_name(value: object) -> str:
    """Status code from its number or enum name; unknown values read as 'unset'."""
    if isinstance(value, int):
        return STATUS_BY_NUMBER[value] if 0 <= value < len(STATUS_BY_NUMBER) else "unset"
    if isinstance(value, str):
        return _STATUS_BY_NAME.get(value.upper(), "unset")
    return "unset"


def json_id(value: object, width: int) -> str | None:
    """An OTLP/JSON id as lower-case hex.

    OTLP/JSON specifies hex, but producers that used protobuf's generic JSON mapping wrote
    base64; both occur in the wild. Returns None for empty or undecodable ids.
    """
    if not isinstance(value, str) or not value:
        return None
    lowered = value.lower()
    if len(lowered) == width and _HEX_DIGITS.issuperset(lowered):
        return None if set(lowered) == {"0"} else lowered
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) * 2 != width or not any(raw):
        return None
    return raw.hex()


def bytes_id(value: bytes) -> str | None:
    """A protobuf id as lower-case hex; all-zero or empty ids mean 'absent'."""
    return value.hex() if value and any(value) else None


@contextmanager
def paused_gc() -> Iterator[None]:
    """Suspend the cyclic garbage collector while a chunk is parsed.

    Parsing allocates millions of small acyclic containers (attribute dicts, pair lists); each
    allocation burst triggers a collection that rescans everything still alive, which costs
    more than the parsing itself. Nothing built here forms a cycle, so reference counting frees it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
