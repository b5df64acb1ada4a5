"""A request's ``(trace_id, span_id)`` as one 64-bit number, for stitching millions of them.

Message chains are stitched by joining requests across millions of deliveries. Text keys (the
two hex ids side by side) cost a Python string of about 100 bytes each; at 10M spans they
alone took about half a gigabyte. A key here is eight bytes: the ids' own bits (every reader
writes them as fixed-width lower-case hex: 32 digits for a trace, 16 for a span) mixed into one
number. Its order is a pure function of the ids, so sorting by it is the same in any
partitioning. Two different requests share a key with probability about n² / 2⁶⁵ for n
requests (under 10⁻⁵ at 10M), the same odds at which two random 64-bit span ids collide.
An id that is not fixed-width hex (records written by another tool) is keyed by a hash of
its text instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

#: Hex digits of a trace id and of a span id, as every reader normalises them.
TRACE_DIGITS = 32
SPAN_DIGITS = 16

#: Requests parsed per step: bounds the parsing buffers to a few MB.
_CHUNK = 1 << 18

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)

#: Each byte's value as a hex digit, or ``_INVALID``.
_INVALID = 0xFF
_NIBBLE = np.full(256, _INVALID, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def request_keys(trace_ids: Sequence[object], span_ids: Sequence[object]) -> np.ndarray:
    """One uint64 per request (``trace_ids[i]``, ``span_ids[i]``); see the module docstring."""
    traces = np.asarray(trace_ids, dtype=object)
    spans = np.asarray(span_ids, dtype=object)
    keys = np.empty(len(traces), dtype=np.uint64)
    for start in range(0, len(traces), _CHUNK):
        stop = min(start + _CHUNK, len(traces))
        keys[start:stop] = _chunk_keys(traces[start:stop], spans[start:stop])
    return keys


def text_request_keys(trace_ids: pa.Array, span_ids: pa.Array) -> np.ndarray | None:
    """:func:`request_keys` of ids held as Arrow text, read from their bytes in place (spelling
    them as Python strings took most of the time); None unless every id is fixed-width hex."""
    trace_digits, span_digits = _digits(trace_ids, TRACE_DIGITS), _digits(span_ids, SPAN_DIGITS)
    if trace_digits is None or span_digits is None:
        return None
    words, span_words = _words(trace_digits), _words(span_digits)
    if words is None or span_words is None:
        return None
    return _mix(words[:, 0], words[:, 1], span_words[:, 0])


def _chunk_keys(traces: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Keys of one chunk: parsed in bulk when every id is fixed-width hex, else one by one."""
    words = _hex_words(traces, TRACE_DIGITS)
    span_words = _hex_words(spans, SPAN_DIGITS)
    if words is None or span_words is None:
        return np.fromiter(
            (_one_key(trace, span) for trace, span in zip(traces, spans, strict=True)),
            dtype=np.uint64,
            count=len(traces),
        )
    return _mix(words[:, 0], words[:, 1], span_words[:, 0])


def _hex_words(ids: np.ndarray, digits: int) -> np.ndarray | None:
    """The ids as big-endian 64-bit words, or None when one is not ``digits`` lower-case hex digits.

    Vectorised: the ids as fixed-width bytes (one spare byte shows an over-long id), each digit
    looked up as a nibble (anything else, including the padding of a short id, is invalid).
    """
    try:
        fixed = np.asarray(ids, dtype=f"S{digits + 1}")
    except (TypeError, ValueError, UnicodeError):
        return None
    raw = fixed.view(np.uint8).reshape(len(ids), digits + 1)
    if raw[:, digits].any():
        return None
    return _words(raw[:, :digits])


def _digits(ids: pa.Array, digits: int) -> np.ndarray | None:
    """Arrow text ids' bytes, one row of ``digits`` per id, when every id has that many bytes;
    a view of the array's own buffer."""
    if ids.null_count or not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        return None
    width = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    _, offsets_buffer, data_buffer = ids.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[ids.offset : ids.offset + len(ids) + 1]
    if not len(ids) or (np.diff(offsets) != digits).any():
        return None
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    return data[offsets[0] : offsets[0] + len(ids) * digits].reshape(len(ids), digits)


def _words(raw: np.ndarray) -> np.ndarray | None:
    """Rows of hex digits as big-endian 64-bit words, or None when one holds anything but
    lower-case hex digits."""
    nibbles = _NIBBLE[raw]
    if (nibbles == _INVALID).any():
        return None
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])
    words: np.ndarray = packed.view(">u8").astype(np.uint64)
    return words


def _one_key(trace: object, span: object) -> int:
    """The key of one request whose ids may not be fixed-width hex."""
    words = _hex_words(np.asarray([trace], dtype=object), TRACE_DIGITS)
    span_words = _hex_words(np.asarray([span], dtype=object), SPAN_DIGITS)
    if words is not None and span_words is not None:
        return int(_mix(words[:, 0], words[:, 1], span_words[:, 0])[0])
    text = np.asarray([f"{trace}\x00{span}"], dtype=object)
    return int(pd.util.hash_array(text)[0])


def _mix(high: np.ndarray, low: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Fold three 64-bit words into one, each through a full-avalanche finaliser (splitmix64)."""
    return _finalise(high ^ _finalise(low ^ _finalise(span)))


def _finalise(words: np.ndarray) -> np.ndarray:
    """splitmix64's output function: every input bit flips about half of the output bits."""
    words = (words + np.uint64(0x9E3779B97F4A7C15)) & _MASK
    words = ((words ^ (words >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
    words = ((words ^ (words >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
    return words ^ (words >> np.uint64(31))
