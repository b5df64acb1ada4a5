"""Jaeger's query HTTP API: every service's traces in a time window, read page by page.

``api=v1`` (the default) is the API the Jaeger UI uses, ``/api/services`` and
``/api/traces?service=&start=&end=&limit=`` answering Jaeger JSON ``{"data": [...], "errors":
...}`` with times in microseconds. ``api=v3`` is ``/api/v3/services`` and ``/api/v3/traces``
answering OTLP JSON as ``{"result": {...}}`` (one object, or one per line from the older
grpc-gateway), RFC 3339 times, and 404 ``{"error": ...}`` "No traces found" for an empty window.
API v3 parameters are sent in both spellings: camelCase, which Jaeger 2.x prefers, and the
snake_case names older releases know (Jaeger ignores the spelling it does not use).

Both APIs search one service at a time, so the same trace comes back once for every service it
touches; only its first copy goes to the reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from orchscan.collectors.model.records import Skipped, SourceReport
from orchscan.collectors.traces.formats.otlp_common import json_id
from orchscan.collectors.traces.ids import hex_id
from orchscan.collectors.traces.jsonio import JsonInputError, loads
from orchscan.collectors.traces.sources.base import (
    ESTIMATED_BYTES_PER_TRACE,
    Payload,
    SearchWalk,
    SourceError,
    SourceSpec,
    TraceLedger,
    budget_skip,
    check_options,
)
from orchscan.collectors.traces.sources.http import (
    AUTH_STATUSES,
    AuthHeader,
    FetchError,
    FetchLimits,
    FetchStats,
    HttpClient,
)
from orchscan.collectors.traces.sources.window import TimeWindow, rfc3339

KIND = "jaeger"
OPTIONS = ("api", "service")
APIS = ("v1", "v3")


class JaegerSource:
    """The traces of every (or every named) service in a window, from one Jaeger query service."""

    def __init__(
        self,
        spec: SourceSpec,
        window: TimeWindow,
        limits: FetchLimits,
        auth: AuthHeader | None = None,
    ) -> None:
        check_options(spec, OPTIONS)
        self._api = spec.option("api", "v1", APIS)
        if any(not s for s in spec.options.get("service", ())):
            raise SourceError(f"{spec.label}: service= needs a service name")
        self._services = tuple(sorted(set(spec.options.get("service", ()))))
        self._name = spec.label
        self._window = window
        self._limits = limits
        self._stats = FetchStats()
        self._client = HttpClient(spec.base_url, limits=limits, stats=self._stats, auth=auth)
        self._ledger = TraceLedger(limits.max_traces)
        self._pages = 0

    @property
    def name(self) -> str:
        """The source URL as given."""
        return self._name

    @property
    def format(self) -> str:
        """Jaeger JSON for API v1, OTLP JSON for API v3."""
        return "jaeger-json" if self._api == "v1" else "otlp-json"

    def estimated_bytes(self) -> int:
        """The ``max_traces`` limit in bytes of typical traces."""
        return self._limits.max_traces * ESTIMATED_BYTES_PER_TRACE

    def report(self) -> SourceReport:
        """Requests, pages and traces so far."""
        stats = self._stats
        window = self._window
        return SourceReport(
            self._name,
            self.format,
            window.start_ns,
            window.end_ns,
            stats.requests,
            stats.retries,
            self._pages,
            len(self._ledger),
            stats.errors,
            stats.bytes,
        )

    def payloads(self) -> Iterator[Payload | Skipped]:
        """Each service's pages, services in name order, windows earliest first."""
        services = self._services
        if not services:
            try:
                services = self._list_services()
            except FetchError as error:
                yield Skipped(self._name, self._services_path(), f"cannot list services: {error}")
                return
        for index, service in enumerate(services):
            if self._ledger.full:
                for rest in services[index:]:
                    yield budget_skip(self._name, f"service {rest}", self._window, self._limits.max_traces)
                return
            try:
                yield from self._service(service)
            except _Unauthorized as error:
                yield Skipped(self._name, error.where, f"{error} (every request would fail; stopped)")
                return

    def _services_path(self) -> str:
        return "/api/services" if self._api == "v1" else "/api/v3/services"

    def _list_services(self) -> tuple[str, ...]:
        answer = self._client.get(self._services_path())
        document = _json(answer.body, self._services_path())
        names = document.get("data") if self._api == "v1" else document.get("services")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise FetchError(f"{self._services_path()} answered no list of service names")
        return tuple(sorted(set(names)))

    def _service(self, service: str) -> Iterator[Payload | Skipped]:
        limits = self._limits
        walk = SearchWalk(self._window, page_size=limits.page_size, min_window_s=limits.min_window_s)
        for window in walk:
            if self._ledger.full:
                yield budget_skip(self._name, f"service {service}", walk.rest(), self._limits.max_traces)
                walk.abandon()
                break
            where = f"service {service} {window.label()}"
            try:
                documents = self._search(service, window)
            except FetchError as error:
                if error.status in AUTH_STATUSES:
                    raise _Unauthorized(str(error), where) from None
                yield Skipped(self._name, where, f"search failed: {error}")
                continue
            self._pages += 1
            page = _v1_page(documents) if self._api == "v1" else _v3_page(documents)
            if walk.split_if_full(window, page.count):
                continue
            if walk.is_full(page.count):
                reason = (
                    f"the answer for a window of the minimum width ({limits.min_window_s:g} s) was full "
                    f"({page.count} traces, the page size): it may hold more (raise --page-size)"
                )
                yield Skipped(self._name, where, reason)
            yield from (Skipped(self._name, where, f"Jaeger reported: {message}") for message in page.errors)
            kept, left_out = page.admit(self._ledger)
            if left_out:
                limit = f"the --max-traces limit of {limits.max_traces:,} was reached"
                yield Skipped(self._name, where, f"{left_out} trace(s) not read: {limit}")
            if kept is not None:
                yield Payload(where, kept, self.format)

    def _search(self, service: str, window: TimeWindow) -> list[Any]:
        size = str(self._limits.page_size)
        if self._api == "v1":
            params = [
                ("service", service),
                ("start", str(window.start_ns // 1000)),
                ("end", str(-(-window.end_ns // 1000))),
                ("limit", size),
            ]
            answer = self._client.get("/api/traces", params)
            return [_json(answer.body, "/api/traces")]
        start, end = rfc3339(window.start_ns), rfc3339(window.end_ns)
        params = [
            *_both_spellings("query.serviceName", "query.service_name", service),
            *_both_spellings("query.startTimeMin", "query.start_time_min", start),
            *_both_spellings("query.startTimeMax", "query.start_time_max", end),
            *_both_spellings("query.searchDepth", "query.num_traces", size),
        ]
        answer = self._client.get("/api/v3/traces", params, accept_statuses=frozenset({404}))
        documents = _json_documents(answer.body, "/api/v3/traces")
        if answer.status == 404:
            message = _v3_error(documents)
            if message is None or "no traces found" not in message.lower():
                raise FetchError(f"HTTP 404: {message or 'not found'}", 404)
            return []
        return documents


def _both_spellings(canonical: str, legacy: str, value: str) -> list[tuple[str, str]]:
    """A parameter as Jaeger 2.x names it and as releases before the camelCase rename do."""
    return [(canonical, value), (legacy, value)]


class _Unauthorized(Exception):
    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


class _Page:
    """One search answer: how many traces it held, its reported errors, and how to admit its traces."""

    def __init__(self, count: int, errors: list[str], traces: dict[str | None, list[Any]], wrap: str) -> None:
        self.count = count
        self.errors = errors
        self._traces = traces
        self._wrap = wrap

    def admit(self, ledger: TraceLedger) -> tuple[bytes | None, int]:
        """The body of the traces not seen before (None if none), and how many the limit left out.

        Parts whose trace id cannot be read are kept, so that the reader reports them.
        """
        kept: list[Any] = []
        left_out = 0
        for trace_id, parts in self._traces.items():
            if trace_id is None or ledger.admit(trace_id):
                kept += parts
            elif not ledger.seen(trace_id):
                left_out += 1
        if not kept:
            return None, left_out
        if self._wrap == "data":
            return orjson.dumps({"data": kept}), left_out
        return orjson.dumps({"resourceSpans": kept}), left_out


def _v1_page(documents: list[Any]) -> _Page:
    document = documents[0]
    data = document.get("data")
    traces: dict[str | None, list[Any]] = {}
    for trace in data if isinstance(data, list) else []:
        key = hex_id(trace.get("traceID"), 32) if isinstance(trace, dict) else None
        traces.setdefault(key, []).append(trace)
    if data is not None and not isinstance(data, list):
        traces[None] = [data]
    errors = []
    for error in document.get("errors") or []:
        if isinstance(error, dict):
            trace = f" (trace {error['traceID']})" if error.get("traceID") else ""
            errors.append(f"{error.get('msg', error)}{trace}")
        else:
            errors.append(str(error))
    return _Page(sum(1 for key in traces if key is not None), errors, traces, "data")


def _v3_page(documents: list[Any]) -> _Page:
    """Regroup the resource spans of one or more ``{"result": ...}`` objects by trace id.

    A resource's spans may belong to several traces; each trace gets its own copy of the
    resource and scope holding only its spans, so that a repeated trace can be left out whole.
    """
    traces: dict[str | None, list[Any]] = {}
    errors: list[str] = []
    for document in documents:
        message = _v3_error([document])
        if message is not None:
            errors.append(message)
            continue
        result = document.get("result", document) if isinstance(document, dict) else document
        resource_spans = result.get("resourceSpans") if isinstance(result, dict) else None
        if not isinstance(resource_spans, list):
            traces.setdefault(None, []).append(result)
            continue
        for resource_span in resource_spans:
            _regroup(resource_span, traces)
    return _Page(sum(1 for key in traces if key is not None), errors, traces, "resourceSpans")


def _regroup(resource_span: Any, traces: dict[str | None, list[Any]]) -> None:
    scopes = resource_span.get("scopeSpans") if isinstance(resource_span, dict) else None
    if not isinstance(scopes, list):
        traces.setdefault(None, []).append(resource_span)
        return
    by_trace: dict[str | None, list[Any]] = {}
    for scope in scopes:
        spans = scope.get("spans") if isinstance(scope, dict) else None
        if not isinstance(spans, list):
            by_trace.setdefault(None, []).append(scope)
            continue
        grouped: dict[str | None, list[Any]] = {}
        for span in spans:
            key = json_id(span.get("traceId"), 32) if isinstance(span, dict) else None
            grouped.setdefault(key, []).append(span)
        for key, members in grouped.items():
            by_trace.setdefault(key, []).append({**scope, "spans": members})
    for key, scope_list in by_trace.items():
        traces.setdefault(key, []).append({**resource_span, "scopeSpans": scope_list})


def _v3_error(documents: list[Any]) -> str | None:
    """The message of an API v3 ``{"error": {"httpCode", "message"}}`` answer, if it is one."""
    for document in documents:
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or error)
    return None


def _json(body: bytes, path: str) -> dict[str, Any]:
    try:
        document = loads(body)
    except JsonInputError as error:
        raise FetchError(f"{path} answered no JSON: {error}") from None
    if not isinstance(document, dict):
        raise FetchError(f"{path} answered JSON that is not an object")
    return document


def _json_documents(body: bytes, path: str) -> list[Any]:
    """One JSON object, or one per line as grpc-gateway streams a server-streaming call."""
    if not body.strip():
        return []
    try:
        return [loads(body)]
    except JsonInputError:
        pass
    try:
        return [loads(line) for line in body.splitlines() if line.strip()]
    except JsonInputError as error:
        raise FetchError(f"{path} answered no JSON: {error}") from None
