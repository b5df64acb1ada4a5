"""One attribute vocabulary for every producer.

OpenTelemetry renamed most HTTP, network and database attributes between semantic-convention
versions, Jaeger clients still speak OpenTracing tags, and Zipkin has its own names. Each
semantic column of the span table accepts a ranked list of source keys; the best-ranked key a
span carries wins, everything unrecognised is kept as a plain string attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.collectors.model.spans import COLUMNS, SEMANTIC_COLUMNS

#: Source keys per semantic column, best first (newest convention first).
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "http_method": ("http.request.method", "http.method"),
    "http_route": ("http.route",),
    "url_path": ("url.path", "http.target", "http.path", "url.full", "http.url"),
    "http_status_code": ("http.response.status_code", "http.status_code"),
    "server_address": ("server.address", "net.peer.name", "peer.hostname", "net.sock.peer.name"),
    "server_port": ("server.port", "net.peer.port", "peer.port"),
    "peer_service": ("service.peer.name", "peer.service"),
    "rpc_system": ("rpc.system", "rpc.system.name"),
    "rpc_service": ("rpc.service",),
    "rpc_method": ("rpc.method",),
    "db_system": ("db.system.name", "db.system", "db.type"),
    "db_operation": ("db.operation.name", "db.operation"),
    "messaging_system": ("messaging.system",),
    "messaging_destination": (
        "messaging.destination.name",
        "messaging.destination",
        "message_bus.destination",
    ),
    "messaging_operation": ("messaging.operation.type", "messaging.operation", "messaging.operation.name"),
}

# Attributes that only feed a semantic column indirectly; kept as plain attributes too.
_STATEMENT_KEYS = ("db.query.text", "db.statement", "sql.query", "sql")
_FULL_URL_KEYS = ("url.full", "http.url")

_ALIASES: dict[str, tuple[int, int]] = {
    key: (SEMANTIC_COLUMNS.index(column), rank)
    for column, keys in SOURCE_KEYS.items()
    for rank, key in enumerate(keys)
}
_COL = {name: index for index, name in enumerate(SEMANTIC_COLUMNS)}
_INT_COLUMNS = frozenset((_COL["http_status_code"], _COL["server_port"]))

# Header names that carry an idempotency key, as captured by OpenTelemetry's
# http.request.header.<name> attributes or set explicitly by applications.
_IDEMPOTENCY_HEADERS = frozenset(("idempotency-key", "x-idempotency-key", "idempotency_key"))
_HEADER_PREFIX = "http.request.header."


def stringify(value: Any) -> str:
    """Render an attribute value as text for the generic attribute column."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(stringify(item) for item in value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@lru_cache(maxsize=4096)
def _as_int(text: str) -> int | None:
    """An int32 from an attribute's text; a list's text counts by its first item."""
    try:
        number = int(text.split(",", 1)[0].strip())
    except ValueError:
        return None
    return number if -(2**31) <= number < 2**31 else None


def _is_idempotency_key(key: str) -> bool:
    lowered = key.lower()
    if lowered.startswith(_HEADER_PREFIX):
        lowered = lowered[len(_HEADER_PREFIX) :]
    return lowered in _IDEMPOTENCY_HEADERS


def _statement_verb(statement: str) -> str | None:
    words = statement.strip().split(None, 1)
    return words[0].upper() if words else None


# Per key: its (column, rank) alias, True for an idempotency header, None for a plain attribute.
# Landscapes use a few hundred distinct keys; classifying each once keeps the per-span loop cheap.
_KEY_CLASS: dict[str, tuple[int, int] | bool | None] = {}
_KEY_CLASS_LIMIT = 100_000


def _class_of(key: str) -> tuple[int, int] | bool | None:
    """A key's class (see :data:`_KEY_CLASS`), looked up once it was worked out."""
    return _KEY_CLASS[key] if key in _KEY_CLASS else _classify(key)


def _classify(key: str) -> tuple[int, int] | bool | None:
    found = _ALIASES.get(key)
    result: tuple[int, int] | bool | None = found if found is not None else (_is_idempotency_key(key) or None)
    if len(_KEY_CLASS) < _KEY_CLASS_LIMIT:
        _KEY_CLASS[key] = result
    return result


def normalize(attributes: dict[str, Any]) -> tuple[list[Any], bool, list[tuple[str, str | None]]]:
    """Split raw attributes into semantic column values, the idempotency flag and the rest.

    Returns ``(semantic, idempotency_key, rest)``: ``semantic`` holds one value per
    ``SEMANTIC_COLUMNS`` entry (None when absent); ``rest`` keeps every attribute that did not
    fill a column, as sorted ``(key, text)`` pairs.
    """
    semantic: list[Any] = [None] * len(SEMANTIC_COLUMNS)
    ranks: dict[int, int] = {}
    rest: list[tuple[str, str | None]] = []
    idempotent = False
    for key, raw in attributes.items():
        # Values count by their text, as the columnar readers see them (a list [""] is empty).
        value = raw if type(raw) is str or raw is None else stringify(raw)
        kind = _class_of(key)
        if kind is None or kind is True:
            idempotent = idempotent or kind is True
        elif value:
            column, rank = kind  # type: ignore[misc]
            if rank < ranks.get(column, 99):
                semantic[column] = value
                ranks[column] = rank
            if key not in _FULL_URL_KEYS:
                continue
        rest.append((key, value))
    if ranks:
        _finish(semantic, ranks, attributes)
    rest.sort()
    return semantic, idempotent, rest


# Client spans repeat the same few URLs; parsing each distinct one once is much cheaper.
@lru_cache(maxsize=8192)
def _split_url(text: str) -> tuple[str, str | None, int | None]:
    """Path, host and port of a full URL; a malformed authority yields no host or port."""
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        path = "/" + text.split("://", 1)[1].partition("/")[2]
        return unquote(path.split("?", 1)[0].split("#", 1)[0]), None, None
    return unquote(parts.path) or "/", host, port


def _finish(semantic: list[Any], filled: dict[int, int], attributes: dict[str, Any]) -> None:
    """Derive values one convention only implies: paths from URLs, hosts, statement verbs."""
    path = semantic[_PATH]
    if path is not None:
        text = path if type(path) is str else stringify(path)
        if "://" in text:
            semantic[_PATH], host, port = _split_url(text)
            if semantic[_HOST] is None and host:
                semantic[_HOST] = host
            if semantic[_PORT] is None and port:
                semantic[_PORT] = port
        else:
            semantic[_PATH] = unquote(text.split("?", 1)[0].split("#", 1)[0]) or "/"
    for column in filled:
        value = semantic[column]
        if column in _INT_COLUMNS:
            if type(value) is not int or not -(2**31) <= value < 2**31:
                semantic[column] = _as_int(stringify(value))
        elif type(value) is not str:
            semantic[column] = stringify(value)
    if semantic[_METHOD] is not None:
        semantic[_METHOD] = semantic[_METHOD].upper()
    if semantic[_DB_OPERATION] is None and semantic[_DB_SYSTEM] is not None:
        for key in _STATEMENT_KEYS:
            statement = attributes.get(key)
            text = "" if statement is None else stringify(statement)
            if text:
                semantic[_DB_OPERATION] = _statement_verb(text)
                break


_PATH, _HOST, _PORT = _COL["url_path"], _COL["server_address"], _COL["server_port"]
_METHOD, _DB_OPERATION, _DB_SYSTEM = _COL["http_method"], _COL["db_operation"], _COL["db_system"]


# --- the same vocabulary over whole columns --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NormalizedColumns:
    """A chunk's attributes split as :func:`normalize` splits one span's, as Arrow columns."""

    semantic: dict[str, pa.Array]
    idempotency_key: np.ndarray
    attributes: pa.Array


def fills_a_column(keys: list[str]) -> np.ndarray:
    """Which of these attribute keys have values that fill a column (or the statement a
    column is derived from): the values a reader that drops the other attributes must read."""
    return np.array([key in _STATEMENT_KEYS or type(_class_of(key)) is tuple for key in keys], dtype=bool)


def normalize_columns(
    counts: np.ndarray, keys: pa.Array, values: pa.Array, *, keep_attributes: bool = True
) -> NormalizedColumns:
    """Split the flat attributes of many spans the way :func:`normalize` splits one span's.

    ``counts`` holds each span's number of attributes; ``keys`` (text, or dictionary-encoded
    text) and ``values`` hold the attributes of all spans back to back, values as text (null
    for an empty value). Readers that see millions of spans use this: the vocabulary is applied
    once per distinct key and per distinct value instead of once per attribute in Python.
    Without ``keep_attributes`` the ``attributes`` column is null: only values of keys that
    :func:`fills_a_column` picks need be given.
    """
    spans = len(counts)
    owner = np.repeat(np.arange(spans, dtype=np.int64), counts)
    encoded = keys if pa.types.is_dictionary(keys.type) else pc.dictionary_encode(keys)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    distinct: list[str] = encoded.dictionary.to_pylist()
    classes = [_class_of(key) for key in distinct]
    column_of = np.array([c[0] if type(c) is tuple else -1 for c in classes], dtype=np.int64)
    rank_of = np.array([c[1] if type(c) is tuple else 0 for c in classes], dtype=np.int64)
    idempotent_key = np.array([c is True for c in classes], dtype=bool)
    full_url_key = np.array([key in _FULL_URL_KEYS for key in distinct], dtype=bool)
    statement_rank = np.array(
        [_STATEMENT_KEYS.index(key) if key in _STATEMENT_KEYS else -1 for key in distinct], dtype=np.int64
    )
    # One pass in (span, key) order: it sorts each span's leftover attributes by key and puts
    # repeated keys side by side, of which the last one counts (as in a dict).
    by_name = np.argsort(np.array(distinct, dtype=object), kind="stable")
    key_order = np.empty(len(distinct), dtype=np.int64)
    key_order[by_name] = np.arange(len(distinct))
    composite = owner * max(len(distinct), 1) + key_order[codes]
    order = np.argsort(composite, kind="stable")
    sorted_key = composite[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_key[1:] != sorted_key[:-1]
    order = order[last]
    code = codes[order]
    span = owner[order]
    filled = np.asarray(pc.fill_null(pc.greater(pc.utf8_length(values), 0), False))[order]
    column = column_of[code]
    statement = statement_rank[code]

    semantic = _semantic_columns(spans, values, span, column, rank_of[code], order, filled)
    statements = _best_per_span(spans, values, span, statement, order, filled & (statement >= 0))
    _derive(semantic, statements)

    idempotent = np.zeros(spans, dtype=bool)
    idempotent[span[idempotent_key[code]]] = True
    if not keep_attributes:
        return NormalizedColumns(semantic, idempotent, pa.nulls(spans, COLUMNS["attributes"][0]))
    kept = (column < 0) | ~filled | full_url_key[code]
    offsets = np.zeros(spans + 1, dtype=np.int32)
    np.cumsum(np.bincount(span[kept], minlength=spans), out=offsets[1:])
    # Keys as codes into the sorted names of the keys kept, as attribute_map would build them.
    rank = key_order[code[kept]]
    used = np.bincount(rank, minlength=len(distinct)) > 0
    names = pa.array(distinct, type=pa.string()).take(pa.array(by_name[used]))
    keys_kept = pa.DictionaryArray.from_arrays(pa.array((np.cumsum(used) - 1)[rank], type=pa.int32()), names)
    attributes = pa.MapArray.from_arrays(
        pa.array(offsets), keys_kept, values.take(pa.array(order[kept])), type=COLUMNS["attributes"][0]
    )
    return NormalizedColumns(semantic, idempotent, attributes)


def _best_per_span(
    spans: int,
    values: pa.Array,
    owner: np.ndarray,
    rank: np.ndarray,
    rows: np.ndarray,
    candidate: np.ndarray,
) -> pa.Array:
    """Per span, the value of its best-ranked candidate attribute (null when it has none)."""
    chosen = np.full(spans, -1, dtype=np.int64)
    picked = np.flatnonzero(candidate)
    # Worst rank first, so that a better rank of the same span overwrites it.
    for level in np.unique(rank[picked])[::-1]:
        at = picked[rank[picked] == level]
        chosen[owner[at]] = rows[at]
    return values.take(pa.array(chosen, mask=chosen < 0))


def _semantic_columns(
    spans: int,
    values: pa.Array,
    owner: np.ndarray,
    column: np.ndarray,
    rank: np.ndarray,
    rows: np.ndarray,
    filled: np.ndarray,
) -> dict[str, pa.Array]:
    empty = pa.nulls(spans, pa.string())
    semantic: dict[str, pa.Array] = {}
    present = set(np.unique(column[filled]).tolist())
    for index, name in enumerate(SEMANTIC_COLUMNS):
        semantic[name] = (
            _best_per_span(spans, values, owner, rank, rows, filled & (column == index))
            if index in present
            else empty
        )
    return semantic


def _per_distinct(column: pa.Array, convert: Any, dtype: pa.DataType) -> pa.Array:
    """Apply a Python conversion once per distinct value of a column."""
    encoded = pc.dictionary_encode(column)
    converted = pa.array([convert(text) for text in encoded.dictionary.to_pylist()], type=dtype)
    return converted.take(encoded.indices)


def _derive(semantic: dict[str, pa.Array], statements: pa.Array) -> None:
    """Columnar :func:`_finish`: paths and hosts from URLs, integers, methods, statement verbs."""
    path = semantic["url_path"]
    if path.null_count < len(path):
        parts = _per_distinct(
            path,
            _path_parts,
            pa.struct([("path", pa.string()), ("host", pa.string()), ("port", pa.int64())]),
        )
        semantic["url_path"] = parts.field("path")
        semantic["server_address"] = pc.coalesce(semantic["server_address"], parts.field("host"))
        raw_port = semantic["server_port"]
        port = _per_distinct(raw_port, _as_int, pa.int32()) if raw_port.null_count < len(raw_port) else None
        from_url = pc.if_else(pc.is_null(raw_port), parts.field("port"), None).cast(pa.int32())
        semantic["server_port"] = from_url if port is None else pc.coalesce(port, from_url)
    else:
        semantic["server_port"] = _per_distinct(semantic["server_port"], _as_int, pa.int32())
    semantic["http_status_code"] = _per_distinct(semantic["http_status_code"], _as_int, pa.int32())
    semantic["http_method"] = _per_distinct(semantic["http_method"], str.upper, pa.string())
    missing = pc.and_(pc.is_null(semantic["db_operation"]), pc.is_valid(semantic["db_system"]))
    if pc.any(missing).as_py():
        verbs = _per_distinct(statements, _statement_verb, pa.string())
        semantic["db_operation"] = pc.if_else(missing, verbs, semantic["db_operation"])


def _path_parts(text: str) -> dict[str, Any]:
    if "://" in text:
        path, host, port = _split_url(text)
        return {"path": path, "host": host or None, "port": port or None}
    return {"path": unquote(text.split("?", 1)[0].split("#", 1)[0]) or "/", "host": None, "port": None}
