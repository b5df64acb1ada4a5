"""One attribute vocabulary for every producer.

OpenTelemetry renamed most HTTP, network and database attributes between semantic-convention
versions, Jaeger clients still speak OpenTracing tags, and Zipkin has its own names. Each
semantic column of the span table accepts a ranked list of source keys; the best-ranked key a
span carries wins, everything unrecognised is kept as a plain string attribute.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from collectors.spans import SEMANTIC_COLUMNS

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


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, (list, tuple)) and value:
        return _as_int(value[0])
    try:
        number = int(str(value).strip())
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


def _classify(key: str) -> tuple[int, int] | bool | None:
    found = _ALIASES.get(key)
    result: tuple[int, int] | bool | None = found if found is not None else (_is_idempotency_key(key) or None)
    if len(_KEY_CLASS) < _KEY_CLASS_LIMIT:
        _KEY_CLASS[key] = result
    return result


def normalize(attributes: dict[str, Any]) -> tuple[list[Any], bool, list[tuple[str, str]]]:
    """Split raw attributes into semantic column values, the idempotency flag and the rest.

    Returns ``(semantic, idempotency_key, rest)``: ``semantic`` holds one value per
    ``SEMANTIC_COLUMNS`` entry (None when absent); ``rest`` keeps every attribute that did not
    fill a column, as sorted ``(key, text)`` pairs.
    """
    semantic: list[Any] = [None] * len(SEMANTIC_COLUMNS)
    ranks: dict[int, int] = {}
    rest: list[tuple[str, str]] = []
    idempotent = False
    for key, value in attributes.items():
        kind = _KEY_CLASS[key] if key in _KEY_CLASS else _classify(key)
        if kind is None or kind is True:
            idempotent = idempotent or kind is True
        elif value is not None and value != "":
            column, rank = kind  # type: ignore[misc]
            if rank < ranks.get(column, 99):
                semantic[column] = value
                ranks[column] = rank
            if key not in _FULL_URL_KEYS:
                continue
        rest.append((key, value if type(value) is str else stringify(value)))
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
                semantic[column] = _as_int(value)
        elif type(value) is not str:
            semantic[column] = stringify(value)
    if semantic[_METHOD] is not None:
        semantic[_METHOD] = semantic[_METHOD].upper()
    if semantic[_DB_OPERATION] is None and semantic[_DB_SYSTEM] is not None:
        for key in _STATEMENT_KEYS:
            statement = attributes.get(key)
            if statement:
                semantic[_DB_OPERATION] = _statement_verb(stringify(statement))
                break


_PATH, _HOST, _PORT = _COL["url_path"], _COL["server_address"], _COL["server_port"]
_METHOD, _DB_OPERATION, _DB_SYSTEM = _COL["http_method"], _COL["db_operation"], _COL["db_system"]
