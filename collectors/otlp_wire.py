"""Span attributes of OTLP protobuf decoded from their wire bytes, a whole chunk at a time.

Reading an attribute through the protobuf runtime costs a Python object per key, per value
wrapper and per value: about a microsecond per attribute, more than the rest of the span. So
spans are parsed with a twin of ``TracesData`` whose ``Span.attributes`` field is declared as
``repeated bytes`` (the same wire encoding), which hands over each ``KeyValue`` still encoded.
The common encodings (a short key with a short string or an integer value) are then decoded
for all attributes of a chunk at once with numpy; anything else goes through the real
``KeyValue`` message one by one, so every value reads exactly as the protobuf runtime reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from collectors.vocabulary import stringify

# Wire tags: field number << 3 | wire type.
_KEY = 0x0A  # KeyValue.key, length-delimited
_VALUE = 0x12  # KeyValue.value, length-delimited
_STRING = 0x0A  # AnyValue.string_value, length-delimited
_INT = 0x18  # AnyValue.int_value, varint
_SHORT = 0x80  # lengths below this fit in one varint byte
_VARINT_BYTES = 10


class MalformedAttribute(ValueError):
    """An attribute's bytes are not a valid ``KeyValue`` (bad structure or UTF-8)."""


def _lite_traces_data() -> Any:
    """``TracesData`` with ``Span.attributes`` left as encoded ``KeyValue`` bytes."""
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    proto = descriptor_pb2.FileDescriptorProto()
    trace_pb2.DESCRIPTOR.CopyToProto(proto)
    span = next(message for message in proto.message_type if message.name == "Span")
    attributes = next(field for field in span.field if field.name == "attributes")
    attributes.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    attributes.ClearField("type_name")
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("opentelemetry.proto.trace.v1.TracesData")
    )


#: Parses an ``ExportTraceServiceRequest`` / ``TracesData`` body (both: field 1, ResourceSpans).
LiteTracesData = _lite_traces_data()


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


def decode_attributes(blobs: list[bytes]) -> tuple[pa.Array, pa.Array]:
    """Keys and value texts of encoded ``KeyValue`` messages, in order.

    Raises :class:`MalformedAttribute` when an attribute is malformed, as the protobuf runtime
    would have rejected the message holding it.
    """
    encoded = pa.array(blobs, type=pa.binary())
    offsets = np.frombuffer(encoded.buffers()[1], dtype=np.int32).astype(np.int64)
    buffer = encoded.buffers()[2]
    data = (
        np.frombuffer(buffer, dtype=np.uint8) if buffer is not None and len(buffer) else np.zeros(1, np.uint8)
    )
    start, end = offsets[:-1], offsets[1:]
    last = len(data) - 1

    def at(position: np.ndarray) -> np.ndarray:
        found: np.ndarray = data[np.minimum(position, last)].astype(np.int64)
        return found

    key_length = at(start + 1)
    value_tag_at = start + 2 + key_length
    value_length = at(value_tag_at + 1)
    inner = value_tag_at + 2
    simple = (
        (end - start >= 4)
        & (at(start) == _KEY)
        & (key_length < _SHORT)
        & (at(value_tag_at) == _VALUE)
        & (value_length < _SHORT)
        & (value_length >= 2)
        & (inner + value_length == end)
    )
    string_length = at(inner + 1)
    is_string = (
        simple & (at(inner) == _STRING) & (string_length < _SHORT) & (inner + 2 + string_length == end)
    )
    is_int = simple & (at(inner) == _INT) & _is_varint(data, inner + 1, end, at)
    fast = is_string | is_int

    keys = _gather(data, start + 2, np.where(fast, key_length, 0))
    strings = _gather(data, inner + 2, np.where(is_string, string_length, 0))
    integers = pa.array(_varints(data, inner + 1, end, is_int)).cast(pa.string())
    try:
        keys, strings = keys.cast(pa.string()), strings.cast(pa.string())
    except pa.ArrowInvalid as error:
        raise MalformedAttribute(f"attribute text is not valid UTF-8: {error}") from None
    values = pc.if_else(pa.array(is_int), integers, strings)
    slow = np.flatnonzero(~fast)
    if len(slow):
        keys, values = _decode_slowly(blobs, slow, keys, values)
    return keys, values


def _is_varint(data: np.ndarray, begin: np.ndarray, end: np.ndarray, at: Any) -> np.ndarray:
    """Whether ``data[begin:end]`` is exactly one varint (continuation bits on all but the last)."""
    length = end - begin
    valid = (length >= 1) & (length <= _VARINT_BYTES)
    for step in range(_VARINT_BYTES):
        inside = step < length - 1
        valid &= ~inside | (at(begin + step) >= _SHORT)
    result: np.ndarray = valid & (at(end - 1) < _SHORT)
    return result


def _varints(data: np.ndarray, begin: np.ndarray, end: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Decode the varint in ``data[begin:end]`` where ``chosen`` (int64, two's complement)."""
    value = np.zeros(len(begin), dtype=np.uint64)
    last = len(data) - 1
    for step in range(_VARINT_BYTES):
        inside = chosen & (begin + step < end)
        if not inside.any():
            break
        byte = data[np.minimum(begin + step, last)].astype(np.uint64) & np.uint64(0x7F)
        value |= np.where(inside, byte << np.uint64(7 * step), np.uint64(0))
    return value.view(np.int64)


def _gather(data: np.ndarray, begin: np.ndarray, length: np.ndarray) -> pa.Array:
    """A binary array of the slices ``data[begin:begin + length]``."""
    offsets = np.zeros(len(begin) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    index = np.repeat(begin - offsets[:-1], length) + np.arange(offsets[-1], dtype=np.int64)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(begin), [None, pa.py_buffer(offsets), pa.py_buffer(data[index].tobytes())]
    ).cast(pa.binary())


def _decode_slowly(
    blobs: list[bytes], rows: np.ndarray, keys: pa.Array, values: pa.Array
) -> tuple[pa.Array, pa.Array]:
    """Decode the unusual attributes through the real ``KeyValue`` message."""
    slow_keys: list[str] = []
    slow_values: list[str | None] = []
    for row in rows.tolist():
        try:
            kv = KeyValue.FromString(blobs[row])
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
