"""The Jaeger source against Jaeger's query API replayed on 127.0.0.1: what it asks, what it reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from live_backends import LIVE, JaegerV1, JaegerV3, OtlpTrace, hotrod_files, petclinic_files, replicate
from replay import Received, Reply, replay

from orchscan.collectors.model.records import Ingest, Skipped
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import InputError, ingest
from orchscan.collectors.traces.sources import open_source, parse_source
from orchscan.collectors.traces.sources.base import SourceError
from orchscan.collectors.traces.sources.http import FetchLimits
from orchscan.collectors.traces.sources.window import TimeWindow, parse_instant

QUICK = FetchLimits(timeout_s=5.0, retries=1, backoff_s=0.01)
# The PetClinic captures were recorded in November 2019 and January 2020.
PETCLINIC_WINDOW = TimeWindow(parse_instant("2019-11-01T00:00:00Z"), parse_instant("2020-02-01T00:00:00Z"))
HOTROD_WINDOW = TimeWindow(parse_instant("2026-06-01T00:00:00Z"), parse_instant("2026-08-31T00:00:00Z"))


def source(url: str, window: TimeWindow, limits: FetchLimits = QUICK, options: str = "") -> Any:
    spec = parse_source(f"jaeger+{url}{options}")
    assert spec is not None
    return open_source(spec, window, limits)


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """Span rows without the source column, in id order."""
    plain = plain_strings(table).drop_columns(["source"])
    return sorted(plain.to_pylist(), key=lambda row: (row["trace_id"], row["span_id"]))


def read_files(paths: list[Path]) -> Ingest:
    return ingest(paths, jobs=1)


def test_v1_reads_every_service_and_each_trace_once() -> None:
    backend = JaegerV1.from_files(petclinic_files())
    with replay(backend.route) as server:
        live = source(server.url, PETCLINIC_WINDOW)
        result = ingest([], sources=[live], jobs=1)
    assert rows(result.spans) == rows(read_files(petclinic_files()).spans)
    searches = [r for r in server.received if r.path == "/api/traces"]
    assert server.paths()[0] == "/api/services"
    assert [r.param("service") for r in searches] == ["api-gateway", "customers-service"]
    assert searches[0].param("start") == str(PETCLINIC_WINDOW.start_ns // 1000)
    assert searches[0].param("end") == str(PETCLINIC_WINDOW.end_ns // 1000)
    assert searches[0].param("limit") == str(QUICK.page_size)
    # Both services touch all three traces; the second search's copies are not read again.
    assert result.skipped == ()
    (report,) = result.sources
    assert (report.traces, report.pages, report.requests, report.errors) == (3, 2, 3, 0)
    (entry,) = result.files
    assert (entry.file, entry.format, entry.spans, entry.traces) == (live.name, "jaeger-json", 30, 3)
    assert set(plain_strings(result.spans)["source"].to_pylist()) == {live.name}


def test_v1_full_pages_halve_the_window_until_every_trace_is_read() -> None:
    (normal,) = [p for p in petclinic_files() if p.name.startswith("testTrace")]
    copies = replicate(json.loads(normal.read_text()), 10, step_us=60_000_000)
    backend = JaegerV1(copies)
    limits = FetchLimits(timeout_s=5.0, retries=0, page_size=3)
    with replay(backend.route) as server:
        live = source(server.url, PETCLINIC_WINDOW, limits, "?service=api-gateway")
        result = ingest([], sources=[live], jobs=1)
    assert len(set(result.spans["trace_id"].to_pylist())) == 10
    assert result.skipped == ()
    widths = [int(r.param("end")) - int(r.param("start")) for r in server.received]
    assert widths[0] > widths[-1] and len(widths) > 4  # narrower and narrower windows
    assert server.paths().count("/api/services") == 0  # service= names the services


def test_max_traces_stops_the_fetch_and_says_what_was_left() -> None:
    (normal,) = [p for p in petclinic_files() if p.name.startswith("testTrace")]
    backend = JaegerV1(replicate(json.loads(normal.read_text()), 10, step_us=60_000_000))
    limits = FetchLimits(timeout_s=5.0, retries=0, page_size=3, max_traces=4)
    with replay(backend.route) as server:
        result = ingest([], sources=[source(server.url, PETCLINIC_WINDOW, limits)], jobs=1)
    assert len(set(result.spans["trace_id"].to_pylist())) == 4
    reasons = [s.reason for s in result.skipped]
    assert reasons and all("--max-traces limit of 4" in reason for reason in reasons)
    assert any(s.position.startswith("service customers-service") for s in result.skipped)


def test_a_failing_search_is_skipped_and_the_other_services_are_read() -> None:
    backend = JaegerV1.from_files(petclinic_files())
    failure = (LIVE / "jaeger" / "search-500.json").read_bytes()

    def route(request: Received) -> Reply:
        if request.path == "/api/traces" and request.param("service") == "api-gateway":
            return Reply(failure, 500)
        return backend.route(request)

    with replay(route) as server:
        result = ingest([], sources=[source(server.url, PETCLINIC_WINDOW)], jobs=1)
    (skip,) = result.skipped
    assert skip.position.startswith("service api-gateway 2019-11-01T00:00:00.000000000Z..")
    assert "search failed: HTTP 500" in skip.reason and "whatsamattayou" in skip.reason
    assert "(2 attempts)" in skip.reason
    assert len(set(result.spans["trace_id"].to_pylist())) == 3  # customers-service found them all
    assert result.sources[0].errors == 1 and result.sources[0].retries == 1


def test_errors_in_a_partial_answer_are_recorded_and_its_traces_read() -> None:
    trace = json.loads(petclinic_files()[0].read_text())
    missing = json.loads((LIVE / "jaeger" / "trace-404.json").read_text())["errors"][0]
    error = {"msg": missing["msg"], "traceID": "00000000000000000000000000abcdef"}
    answer = {"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": [error]}

    def route(request: Received) -> Reply:
        return Reply(json.dumps(answer).encode())

    with replay(route) as server:
        result = ingest(
            [], sources=[source(server.url, PETCLINIC_WINDOW, options="?service=api-gateway")], jobs=1
        )
    (skip,) = result.skipped
    assert skip.reason == "Jaeger reported: trace not found (trace 00000000000000000000000000abcdef)"
    assert result.spans.num_rows == len(trace["spans"])


def test_refused_credentials_stop_the_source() -> None:
    with replay(lambda request: Reply(b'{"errors":[{"code":401,"msg":"unauthorized"}]}', 401)) as server:
        live = source(server.url, PETCLINIC_WINDOW, options="?service=a&service=b")
        items = list(live.payloads())
    assert len(server.received) == 1  # not retried, and service b not asked
    (skip,) = items
    assert isinstance(skip, Skipped) and "HTTP 401" in skip.reason and "stopped" in skip.reason


def test_the_real_query_service_answer_is_read_with_its_duplicate_span_counted() -> None:
    body = (LIVE / "jaeger" / "otlp2jaeger-out.json").read_bytes()
    with replay(lambda request: Reply(body)) as server:
        window = TimeWindow(parse_instant("2024-01-31T00:00:00Z"), parse_instant("2024-02-01T00:00:00Z"))
        result = ingest([], sources=[source(server.url, window, options="?service=telemetrygen")], jobs=1)
    assert result.spans.num_rows == 1
    (duplicate,) = result.skipped
    assert duplicate.file.startswith("jaeger+http://127.0.0.1:") and "duplicate" in duplicate.reason


def test_v3_reads_hotrod_as_the_files_read() -> None:
    backend = JaegerV3([OtlpTrace.load(path) for path in hotrod_files()])
    with replay(backend.route) as server:
        live = source(server.url, HOTROD_WINDOW, options="?api=v3")
        result = ingest([], sources=[live], jobs=1)
    assert rows(result.spans) == rows(read_files(hotrod_files()).spans)
    assert live.format == "otlp-json" and result.skipped == ()
    search = next(r for r in server.received if r.path == "/api/v3/traces")
    # Jaeger 2.x reads the camelCase names, earlier releases the snake_case ones.
    assert search.param("query.serviceName") == search.param("query.service_name") == "customer"
    assert (
        search.param("query.startTimeMin")
        == search.param("query.start_time_min")
        == "2026-06-01T00:00:00.000000000Z"
    )
    assert search.param("query.searchDepth") == search.param("query.num_traces") == "100"
    assert result.sources[0].traces == 3


def test_v3_no_traces_found_is_an_empty_page_not_an_error() -> None:
    backend = JaegerV3([OtlpTrace.load(path) for path in hotrod_files()])
    empty = TimeWindow(parse_instant("2020-01-01T00:00:00Z"), parse_instant("2020-01-02T00:00:00Z"))
    with replay(backend.route) as server:
        live = source(server.url, empty, options="?api=v3")
        assert list(live.payloads()) == []
        with pytest.raises(InputError, match="no spans could be read from 0 file"):
            ingest([], sources=[source(server.url, empty, options="?api=v3")], jobs=1)
    assert live.report().pages == 6 and live.report().errors == 0


def test_v3_reads_jaeger_own_snapshots_and_streamed_answers() -> None:
    services = (LIVE / "jaeger" / "v3-GetServices.json").read_bytes()
    found = (LIVE / "jaeger" / "v3-FindTraces.json").read_bytes()
    probe = (LIVE / "jaeger" / "v3-trace-local-2.21.0.json").read_bytes()
    # grpc-gateway (Jaeger 1.x) streamed one {"result": ...} object per line.
    streamed = json.dumps(json.loads(found)).encode() + b"\n" + json.dumps(json.loads(probe)).encode() + b"\n"

    def route(request: Received) -> Reply:
        return Reply(services if request.path == "/api/v3/services" else streamed)

    with replay(route) as server:
        window = TimeWindow(0, parse_instant("2026-12-31T00:00:00Z"))
        result = ingest([], sources=[source(server.url, window, options="?api=v3")], jobs=1)
    table = plain_strings(result.spans)
    assert sorted(table["name"].to_pylist()) == [
        "numeric-kind-and-status",
        "root-with-any-values",
        "unset-kind-and-status",
    ]
    # Jaeger's own snapshot span has no times; the reader skips it, and says in which answer.
    (skip,) = result.skipped
    assert skip.position == (
        "service foo 1970-01-01T00:00:00.000000000Z..2026-12-31T00:00:00.000000000Z: "
        "document: resourceSpans[0].scopeSpans[0].spans[0]"
    )
    assert skip.reason == "missing or invalid start/end time"
    assert result.sources[0].traces == 2


def test_v3_regroups_a_resource_shared_by_two_traces() -> None:
    traces = [OtlpTrace.load(path) for path in hotrod_files()[:2]]
    first, second = (t.otlp_json()["resourceSpans"] for t in traces)

    def service(resource_spans: dict[str, Any]) -> str:
        return next(
            a["value"]["stringValue"]
            for a in resource_spans["resource"]["attributes"]
            if a["key"] == "service.name"
        )

    # One "frontend" resource holding the spans of both traces, as a process exporting both
    # writes it; the rest of both traces beside it. Both traces are whole in the answer.
    mine = next(rs for rs in first if service(rs) == "frontend")
    theirs = next(rs for rs in second if service(rs) == "frontend")
    mine["scopeSpans"][0]["spans"] += [s for scope in theirs["scopeSpans"] for s in scope["spans"]]
    rest = [rs for rs in second if rs is not theirs]
    answers = iter([{"result": traces[1].otlp_json()}, {"result": {"resourceSpans": first + rest}}])

    def route(request: Received) -> Reply:
        return Reply(json.dumps(next(answers)).encode())

    with replay(route) as server:
        window = TimeWindow(0, parse_instant("2026-12-31T00:00:00Z"))
        live = source(server.url, window, options="?api=v3&service=a&service=b")
        result = ingest([], sources=[live], jobs=1)
    # The second search finds the second trace again: its spans are left out, also those that
    # share a resource with the first trace's; no span is counted twice and none is lost.
    assert rows(result.spans) == rows(read_files(hotrod_files()[:2]).spans)
    assert result.skipped == ()
    assert (live.report().traces, live.report().pages) == (2, 2)


def test_source_urls_are_checked() -> None:
    assert parse_source("traces/") is None
    with pytest.raises(SourceError, match="unknown source kind 'zipkin'"):
        parse_source("zipkin+http://host:9411")
    with pytest.raises(SourceError, match="credentials do not belong in the URL"):
        parse_source("jaeger+http://user:secret@host:16686")
    spec = parse_source("jaeger+https://host/jaeger/?api=v3&service=a&service=b")
    assert spec is not None and spec.base_url == "https://host/jaeger"
    assert spec.options == {"api": ("v3",), "service": ("a", "b")}
    with pytest.raises(SourceError, match="unknown option"):
        open_source(parse_source("jaeger+http://h?srvice=a"), PETCLINIC_WINDOW, QUICK)  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="api=v2 is not one of v1, v3"):
        open_source(parse_source("jaeger+http://h?api=v2"), PETCLINIC_WINDOW, QUICK)  # type: ignore[arg-type]


def test_worker_processes_parse_live_answers_as_the_parent_does() -> None:
    backend = JaegerV1.from_files(petclinic_files())
    with replay(backend.route) as server:
        single = ingest([], sources=[source(server.url, PETCLINIC_WINDOW)], jobs=1)
        pooled = ingest([], sources=[source(server.url, PETCLINIC_WINDOW)], jobs=2)
    assert rows(pooled.spans) == rows(single.spans)
