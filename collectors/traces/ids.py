"""Span and trace ids written as hex text by Jaeger and Zipkin, normalised to fixed-width hex."""

from __future__ import annotations

from typing import Any

_HEX = "0123456789abcdefABCDEF"


def hex_id(value: Any, width: int) -> str | None:
    """An id as ``width`` lower-case hex digits; tracers drop leading zeros, so pad them back.

    64-bit trace ids become 32 digits with 16 leading zeros. Returns None for absent, all-zero,
    over-long or non-hex ids. Called several times per span, hence plain string methods.
    """
    if value.__class__ is not str or not 0 < len(value) <= width:
        return None
    if value.strip(_HEX) or not value.strip("0"):
        return None
    return value.lower().rjust(width, "0")
