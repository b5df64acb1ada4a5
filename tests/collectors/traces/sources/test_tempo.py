"""The Tempo source against Tempo's HTTP API replayed on 127.0.0.1: search, then each trace by id."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from live_backends import LIVE, OtlpTrace, Tempo, hotrod_files
from replay import Received, Reply, replay

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import InputError, ingest
from orchscan.collectors.traces.sources import open_source, parse_source
from orchscan.collectors.traces.sources.http import FetchLimits
from orchscan.collectors.traces.sources.window import TimeWindow, parse_instant

QUICK = FetchLimits(timeout_s=5.0, retries=1, backoff_s=0.01)
HOTROD_WINDOW = TimeWindow(parse_instant("2026-06-01T00:00:00Z"), parse_instant("2026-08-31T00:00:00Z"))


def source(
    url: str, window: TimeWindow = HOTROD_WINDOW, limits: FetchLimits = QUICK, options: str = ""
) -> Any:
    spec = parse_source(f"tempo+{url}{options}")
    assert spec is not None
    return open_source(spec, window, limits)


def rows(table: pa.Table) -> list[dict[str, Any]]:
    plain = plain_strings(table).drop_columns(["source"])
    return sorted(plain.to_pylist(), key=lambda row: (row["trace_id"], row["span_id"]))


@pytest.fixture(scope="module")
def traces() -> list[OtlpTrace]:
    return [OtlpTrace.load(path) for path in hotrod_files()]


@pytest.fixture(scope="module")
def from_files() -> list[dict[str, Any]]:
    return rows(ingest(hotrod_files(), jobs=1).spans)


@pytest.mark.parametrize(
    ("options", "fmt", "path", "accept"),
    [
        ("", "otlp-proto", "/api/v2/traces/", "application/protobuf"),
        ("?encoding=json", "otlp-json", "/api/v2/traces/", "application/json"),
        ("?api=v1", "otlp-proto", "/api/traces/", "application/protobuf"),
        ("?api=v1&encoding=json", "otlp-json", "/api/traces/", "application/json"),
    ],
)
def test_every_api_and_encoding_reads_what_the_files_hold(
    traces: list[OtlpTrace], from_files: list[dict[str, Any]], options: str, fmt: str, path: str, accept: str
) -> None:
    backend = Tempo(traces)
    with replay(backend.route) as server:
        live = source(server.url, options=options)
        result = ingest([], sources=[live], jobs=1)
    assert rows(result.spans) == from_files
    assert result.skipped == ()
    assert live.format == fmt and result.files[0].format == fmt
    search, *fetches = server.received
    assert search.path == "/api/search"
    assert search.param("q") == "{}" and search.param("limit") == "100"
    assert search.param("start") == str(HOTROD_WINDOW.start_ns // 10**9)
    assert search.param("end") == str(HOTROD_WINDOW.end_ns // 10**9)
    assert sorted(r.path for r in fetches) == sorted(path + t.trace_id for t in traces)
    assert {r.header("Accept") for r in fetches} == {accept}
    report = result.sources[0]
    assert (report.traces, report.pages, report.requests, report.errors) == (3, 1, 4, 0)


@pytest.mark.parametrize("options", ["", "?encoding=json"])
def test_a_partial_trace_is_read_and_recorded(traces: list[OtlpTrace], options: str) -> None:
    cut = traces[0].trace_id
    with replay(Tempo(traces, partial=frozenset({cut})).route) as server:
        result = ingest([], sources=[source(server.url, options=options)], jobs=1)
    (skip,) = result.skipped
    assert skip.position == f"trace {cut}"
    assert skip.reason == "Tempo answered a partial trace: trace exceeds max size"
    assert len(set(result.spans["trace_id"].to_pylist())) == 3


def test_the_documented_search_answer_and_traces_not_found() -> None:
    example = (LIVE / "tempo" / "search-tags-example.json").read_bytes()

    def route(request: Received) -> Reply:
        if request.path == "/api/search":
            return Reply(example)
        return Reply(b"trace not found\n", 404, "text/plain; charset=utf-8")

    with replay(route) as server:
        window = TimeWindow(parse_instant("2021-10-20T00:00:00Z"), parse_instant("2021-10-21T00:00:00Z"))
        live = source(server.url, window)
        items = list(live.payloads())
    assert sorted(r.path for r in server.received[1:]) == [
        "/api/v2/traces/1b1ba462b409200d",
        "/api/v2/traces/d6e9329d67b6146a",
    ]
    assert [(s.position, s.reason) for s in items] == [  # type: ignore[union-attr]
        ("trace d6e9329d67b6146a", "trace not found (expired, or not yet flushed when searched)"),
        ("trace 1b1ba462b409200d", "trace not found (expired, or not yet flushed when searched)"),
    ]
    assert live.report().traces == 2
    with replay(route) as server, pytest.raises(InputError, match="trace not found"):
        ingest([], sources=[source(server.url, window)], jobs=1)


def test_full_search_pages_halve_the_window(
    traces: list[OtlpTrace], from_files: list[dict[str, Any]]
) -> None:
    limits = FetchLimits(timeout_s=5.0, retries=0, page_size=2)
    with replay(Tempo(traces).route) as server:
        result = ingest([], sources=[source(server.url, limits=limits)], jobs=1)
    assert rows(result.spans) == from_files and result.skipped == ()
    searches = [r for r in server.received if r.path == "/api/search"]
    widths = [int(r.param("end")) - int(r.param("start")) for r in searches]
    assert len(searches) > 3 and min(widths) < widths[0]
    assert len([r for r in server.received if r.path != "/api/search"]) == 3  # each trace read once


def test_a_window_still_full_at_one_second_is_read_and_reported(traces: list[OtlpTrace]) -> None:
    limits = FetchLimits(timeout_s=5.0, retries=0, page_size=1)
    start = traces[0].start_ns // 10**9
    # The two n_plus_one traces begin 54 s apart; a one-second window around the first holds
    # one trace, which fills a page of one.
    window = TimeWindow(start * 10**9, (start + 1) * 10**9)
    with replay(Tempo(traces).route) as server:
        result = ingest([], sources=[source(server.url, window, limits)], jobs=1)
    (skip,) = result.skipped
    assert skip.reason == (
        "the answer for a window of the minimum width (1 s) was full (1 traces, the page size): "
        "it may hold more (raise --page-size)"
    )
    assert len(set(result.spans["trace_id"].to_pylist())) == 1


def test_tenant_and_traceql_filter_are_sent(traces: list[OtlpTrace]) -> None:
    with replay(Tempo(traces).route) as server:
        live = source(server.url, options="?tenant=team-a&q=%7Bresource.service.name%3D%22frontend%22%7D")
        list(live.payloads())
    assert {r.header("X-Scope-OrgID") for r in server.received} == {"team-a"}
    assert server.received[0].param("q") == '{resource.service.name="frontend"}'


def test_a_search_that_fails_is_recorded() -> None:
    with replay(lambda request: Reply(b"invalid TraceQL query", 400, "text/plain")) as server:
        items = list(source(server.url, options="?q=%7B").payloads())
    (skip,) = items
    assert skip.reason == "search failed: HTTP 400 Bad Request: invalid TraceQL query"  # type: ignore[union-attr]
