"""Span attributes of OTLP protobuf decoded from their wire bytes, a whole chunk at a time.

Reading an attribute through the protobuf runtime costs a Python object per key, per value
wrapper and per value: about a microsecond per attribute. The span decoder (:mod:`otlp_spans`)
hands over each span's ``KeyValue`` messages still encoded. The common encodings (a short key
with a short string or an integer value) are then decoded for all attributes of a chunk at once
with numpy; anything else goes through the real
``KeyValue`` message one by one, so every value reads exactly as the protobuf runtime reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from orchscan.collectors.traces.vocabulary import stringify

# Wire tags: field number << 3 | wire type.
_KEY = 0x0A  # KeyValue.key, length-delimited
_VALUE = 0x12  # KeyValue.value, length-delimited
_STRING = 0x0A  # AnyValue.string_value, length-delimited
_INT = 0x18  # AnyValue.int_value, varint
_SHORT = 0x80  # lengths below this fit in one varint byte
_VARINT_BYTES = 10
# Furthest any probe reads past an attribute's start: a key of up to 255 bytes plus four.
_PADDING = 512


class NeedsFullParse(ValueError):
    """Wire bytes hold something the bulk decoders do not vouch for: the real message types decide."""


class MalformedAttribute(NeedsFullParse):
    """An attribute's bytes are not a valid ``KeyValue`` (bad structure or UTF-8)."""


def _any(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def value_text(value: Any) -> str | None:
    """An ``AnyValue`` as the text the span table keeps (None when it holds nothing)."""
    text = value.string_value
    if text:
        return text  # type: ignore[no-any-return]
    found = _any(value)
    return found if found is None or type(found) is str else stringify(found)


def decode_attributes(encoded: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Keys and value texts of encoded ``KeyValue`` messages, in order.

    Raises :class:`MalformedAttribute` when an attribute is malformed, as the protobuf runtime
    would have rejected the message holding it.
    """
    # Zero padding lets every probe below read past a short attribute without a bounds check.
    data, start, end = padded_bytes(encoded, _PADDING)

    key_length = data[start + 1].astype(np.int32)
    value_tag_at = start + 2 + key_length
    value_length = data[value_tag_at + 1].astype(np.int32)
    inner = value_tag_at + 2
    tag = data[inner]
    simple = (
        (data[start] == _KEY)
        & (key_length < _SHORT)
        & (data[value_tag_at] == _VALUE)
        & (value_length < _SHORT)
        & (value_length >= 2)
        & (inner + value_length == end)
    )
    string_length = data[inner + 1].astype(np.int32)
    is_string = simple & (tag == _STRING) & (string_length < _SHORT) & (inner + 2 + string_length == end)
    is_int = simple & (tag == _INT)
    numbers = np.flatnonzero(is_int)
    decoded, after, whole = read_varints(data, inner[numbers] + 1, end[numbers])
    valid = whole & (after == end[numbers])
    decoded = decoded.view(np.int64)  # two's complement, as the runtime reads int_value
    is_int[numbers[~valid]] = False
    fast = is_string | is_int

    keys = gather(data, start + 2, np.where(fast, key_length, 0))
    strings = gather(data, inner + 2, np.where(is_string, string_length, 0))
    try:
        keys, strings = keys.cast(pa.string()), strings.cast(pa.string())
    except pa.ArrowInvalid as error:
        raise MalformedAttribute(f"attribute text is not valid UTF-8: {error}") from None
    if len(numbers):
        texts = pa.array(decoded[valid]).cast(pa.string())
        strings = pc.replace_with_mask(strings, pa.array(is_int), texts)
    slow = np.flatnonzero(~fast)
    if len(slow):
        keys, strings = _decode_slowly(encoded, slow, keys, strings)
    return keys, strings


def padded_bytes(encoded: pa.Array, padding: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A binary array's bytes followed by ``padding`` zero bytes, and where each value starts and ends."""
    offsets = np.frombuffer(encoded.buffers()[1], dtype=np.int32)[
        encoded.offset : encoded.offset + len(encoded) + 1
    ]
    buffer = encoded.buffers()[2]
    raw = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    data = np.concatenate((raw[: offsets[-1]], np.zeros(padding, dtype=np.uint8)))
    return data, offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)


def read_varints(
    data: np.ndarray, at: np.ndarray, stop: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The varint at each position, the position after it, and whether it is whole: ended within
    ten bytes and by ``stop``. ``data`` must be padded by ten bytes past the last ``stop``."""
    first = data[at]
    if (first < _SHORT).all():  # tags and short lengths: one byte each
        return first.astype(np.uint64), at + 1, at < stop
    value = np.zeros(len(at), dtype=np.uint64)
    size = np.zeros(len(at), dtype=np.int64)
    going = np.ones(len(at), dtype=bool)
    for step in range(_VARINT_BYTES):
        byte = data[at + step]
        value |= np.where(going, (byte & 0x7F).astype(np.uint64) << np.uint64(7 * step), np.uint64(0))
        size[going] = step + 1
        going &= byte >= _SHORT
        if not going.any():
            break
    after = at + size
    return value, after, ~going & (after <= stop)


def gather(data: np.ndarray, begin: np.ndarray, length: np.ndarray) -> pa.Array:
    """A binary array of the slices ``data[begin:begin + length]``."""
    offsets = np.zeros(len(begin) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(length, dtype=np.int64)
    if len(length) and (length == length[0]).all():  # ids: one width for all
        index = (begin[:, None] + np.arange(length[0])).reshape(-1)
    else:
        index = np.repeat(begin - offsets[:-1], length) + np.arange(offsets[-1], dtype=np.int32)
    return pa.BinaryArray.from_buffers(
        pa.binary(), len(begin), [None, pa.py_buffer(offsets), pa.py_buffer(data[index].tobytes())]
    )


def _decode_slowly(
    encoded: pa.Array, rows: np.ndarray, keys: pa.Array, values: pa.Array
) -> tuple[pa.Array, pa.Array]:
    """Decode the unusual attributes through the real ``KeyValue`` message."""
    slow_keys: list[str] = []
    slow_values: list[str | None] = []
    for row in rows.tolist():
        try:
            kv = KeyValue.FromString(encoded[row].as_py())
        except DecodeError as error:
            raise MalformedAttribute(f"malformed attribute: {error}") from None
        slow_keys.append(kv.key)
        slow_values.append(value_text(kv.value))
    mask = np.zeros(len(keys), dtype=bool)
    mask[rows] = True
    selector = pa.array(mask)
    return (
        pc.replace_with_mask(keys, selector, pa.array(slow_keys, type=pa.string())),
        pc.replace_with_mask(values, selector, pa.array(slow_values, type=pa.string())),
    )
