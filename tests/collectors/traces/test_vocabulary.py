"""One attribute vocabulary: old and new semantic conventions and OpenTracing tags land in the same column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from sdk_spans import BASE_NS, Recorder, encode, hex_span_id, write

from orchscan.collectors.model.spans import SEMANTIC_COLUMNS
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.vocabulary import SOURCE_KEYS, normalize

# (column, source key, raw value, value in the column): every key of every convention.
ALIASES: list[tuple[str, str, Any, Any]] = [
    ("http_method", "http.request.method", "GET", "GET"),
    ("http_method", "http.method", "get", "GET"),
    ("http_route", "http.route", "/users/{id}", "/users/{id}"),
    ("url_path", "url.path", "/users/7", "/users/7"),
    ("url_path", "http.target", "/users/7?expand=1", "/users/7"),
    ("url_path", "http.path", "/users/7", "/users/7"),
    ("url_path", "url.full", "https://api.example:8443/users/7?x=1", "/users/7"),
    ("url_path", "http.url", "https://api.example:8443/users/7#top", "/users/7"),
    ("http_status_code", "http.response.status_code", 404, 404),
    ("http_status_code", "http.status_code", "404", 404),
    ("server_address", "server.address", "users", "users"),
    ("server_address", "net.peer.name", "users", "users"),
    ("server_address", "peer.hostname", "users", "users"),
    ("server_address", "net.sock.peer.name", "users", "users"),
    ("server_port", "server.port", 8080, 8080),
    ("server_port", "net.peer.port", 8080, 8080),
    ("server_port", "peer.port", "8080", 8080),
    ("peer_service", "service.peer.name", "users", "users"),
    ("peer_service", "peer.service", "users", "users"),
    ("rpc_system", "rpc.system", "grpc", "grpc"),
    ("rpc_system", "rpc.system.name", "grpc", "grpc"),
    ("rpc_service", "rpc.service", "users.UserService", "users.UserService"),
    ("rpc_method", "rpc.method", "GetUser", "GetUser"),
    ("db_system", "db.system.name", "postgresql", "postgresql"),
    ("db_system", "db.system", "postgresql", "postgresql"),
    ("db_system", "db.type", "postgresql", "postgresql"),
    ("db_operation", "db.operation.name", "SELECT", "SELECT"),
    ("db_operation", "db.operation", "SELECT", "SELECT"),
    ("messaging_system", "messaging.system", "kafka", "kafka"),
    ("messaging_destination", "messaging.destination.name", "orders", "orders"),
    ("messaging_destination", "messaging.destination", "orders", "orders"),
    ("messaging_destination", "message_bus.destination", "orders", "orders"),
    ("messaging_operation", "messaging.operation.type", "publish", "publish"),
    ("messaging_operation", "messaging.operation", "publish", "publish"),
    ("messaging_operation", "messaging.operation.name", "publish", "publish"),
]


def test_every_vocabulary_key_is_covered_here() -> None:
    assert {(column, key) for column, key, _, _ in ALIASES} == {
        (column, key) for column, keys in SOURCE_KEYS.items() for key in keys
    }
    assert set(SOURCE_KEYS) == set(SEMANTIC_COLUMNS)


def test_each_alias_recorded_by_the_sdk_fills_its_column(tmp_path: Path) -> None:
    recorder = Recorder()
    tracer = recorder.tracer("users")
    for index, (_, key, raw, _) in enumerate(ALIASES):
        tracer.start_span(
            f"span {index}", kind=SpanKind.CLIENT, attributes={key: raw}, start_time=BASE_NS
        ).end(end_time=BASE_NS + 1)
    spans = recorder.finished()
    recorder.shutdown()
    path = write(tmp_path / "aliases.pb", encode(spans).SerializeToString())
    rows = {row["name"]: row for row in ingest([path], jobs=1).spans.to_pylist()}
    for index, (column, key, _, value) in enumerate(ALIASES):
        row = rows[f"span {index}"]
        assert row[column] == value, key
    # A full URL is also the only record of scheme and query, so it stays an attribute as well.
    assert dict(rows[f"span {6}"]["attributes"]) == {"url.full": "https://api.example:8443/users/7?x=1"}
    assert rows["span 6"]["server_address"] == "api.example" and rows["span 6"]["server_port"] == 8443
    assert {hex_span_id(s) for s in spans} == {row["span_id"] for row in rows.values()}


def _distinct(column: str, rank: int) -> Any:
    if column in ("http_status_code", "server_port"):
        return 400 + rank
    return f"/p{rank}" if column == "url_path" else f"V{rank}"


@pytest.mark.parametrize("column", sorted(c for c, keys in SOURCE_KEYS.items() if len(keys) > 1))
def test_newest_convention_wins_whatever_the_attribute_order(column: str) -> None:
    keys = SOURCE_KEYS[column]
    index = SEMANTIC_COLUMNS.index(column)
    for order in (keys, tuple(reversed(keys))):
        semantic, _, _ = normalize({key: _distinct(column, keys.index(key)) for key in order})
        assert semantic[index] == _distinct(column, 0)
        # Without the best key, the next one wins.
        semantic, _, _ = normalize(
            {key: _distinct(column, keys.index(key)) for key in order if key != keys[0]}
        )
        assert semantic[index] == _distinct(column, 1)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("http.request.header.idempotency-key", ["k-1"]),
        ("http.request.header.Idempotency-Key", ["k-1"]),
        ("http.request.header.x-idempotency-key", ["k-1", "k-1"]),
        ("idempotency_key", "k-1"),
    ],
)
def test_idempotency_headers_set_the_flag_and_stay_attributes(key: str, value: Any) -> None:
    _, idempotent, rest = normalize({key: value, "http.request.method": "POST"})
    assert idempotent is True
    assert [k for k, _ in rest] == [key]


def test_other_request_headers_do_not_set_the_flag() -> None:
    _, idempotent, rest = normalize({"http.request.header.content-type": ["application/json"]})
    assert idempotent is False and rest == [("http.request.header.content-type", "application/json")]


def test_unusable_numbers_are_left_empty_not_guessed() -> None:
    semantic, _, _ = normalize({"http.response.status_code": "OK", "server.port": 2**40})
    assert semantic[SEMANTIC_COLUMNS.index("http_status_code")] is None
    assert semantic[SEMANTIC_COLUMNS.index("server_port")] is None


def test_statement_verb_only_names_the_operation_of_a_database_span() -> None:
    semantic, _, rest = normalize({"db.system": "mysql", "db.statement": "  update users set a=1"})
    assert semantic[SEMANTIC_COLUMNS.index("db_operation")] == "UPDATE"
    assert rest == [("db.statement", "  update users set a=1")]
    semantic, _, _ = normalize({"db.statement": "select 1"})
    assert semantic[SEMANTIC_COLUMNS.index("db_operation")] is None


def test_empty_values_do_not_shadow_an_older_key() -> None:
    semantic, _, _ = normalize({"http.request.method": "", "http.method": "PUT"})
    assert semantic[SEMANTIC_COLUMNS.index("http_method")] == "PUT"
