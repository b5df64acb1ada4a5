"""Grafana Tempo's HTTP API: search a time window, then read each trace found by its id.

``/api/search?q=&start=&end=&limit=`` (times in Unix seconds) answers ``{"traces": [{traceID,
startTimeUnixNano, ...}], "metrics": {...}}``: ids only, at most ``limit`` of them, no cursor.
Each trace is then read from ``/api/v2/traces/<id>`` (``api=v2``, the default: a
``TraceByIDResponse`` whose ``status`` says whether the trace is partial) or ``/api/traces/<id>``
(``api=v1``, for Tempo before 2.7: the bare ``Trace``), as protobuf (``encoding=protobuf``,
the default) or JSON. Tempo's ``Trace`` message is wire-identical to OTLP ``TracesData``
(field 1, repeated ``ResourceSpans``), so the protobuf goes to the ``otlp-proto`` reader as it
is; its JSON (``{"batches": ...}`` in API v1, ``{"trace": {"resourceSpans": ...}}`` in API v2) goes
to the ``otlp-json`` reader as it is.
``tenant=`` sends ``X-Scope-OrgID`` for multi-tenant Tempo; ``q=`` narrows the search with a
TraceQL filter (default ``{}``: every trace).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from orchscan.collectors.model.records import Skipped, SourceReport
from orchscan.collectors.traces.ids import hex_id
from orchscan.collectors.traces.jsonio import JsonInputError, loads
from orchscan.collectors.traces.sources.base import (
    ESTIMATED_BYTES_PER_TRACE,
    Payload,
    SearchWalk,
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
from orchscan.collectors.traces.sources.window import NS_PER_S, TimeWindow

KIND = "tempo"
OPTIONS = ("api", "encoding", "q", "tenant")
APIS = ("v2", "v1")
ENCODINGS = ("protobuf", "json")
#: Tempo's search takes whole seconds, so no window is narrower than one.
TEMPO_MIN_WINDOW_S = 1.0

_PROTOBUF = "application/protobuf"
_PARTIAL = 1  # tempopb.PartialStatus.PARTIAL

T = TypeVar("T")
R = TypeVar("R")


def _trace_by_id_response() -> Any:
    """``tempopb.TraceByIDResponse`` with its ``trace`` kept as encoded bytes (the same wire type).

    Fields as in Tempo's ``pkg/tempopb/tempo.proto``: trace = 1, metrics = 2 (not needed, left
    to the unknown fields), status = 3 (``PartialStatus``: COMPLETE 0, PARTIAL 1), message = 4.
    """
    proto = descriptor_pb2.FileDescriptorProto(name="orchscan_tempo.proto", package="orchscan.tempo")
    message = proto.message_type.add(name="TraceByIDResponse")
    field = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="trace", number=1, type=field.TYPE_BYTES, label=field.LABEL_OPTIONAL)
    message.field.add(name="status", number=3, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    message.field.add(name="message", number=4, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("orchscan.tempo.TraceByIDResponse"))


_TraceByIDResponse = _trace_by_id_response()


class TempoSource:
    """The traces a Tempo search finds in a window, each read by its id."""

    def __init__(
        self,
        spec: SourceSpec,
        window: TimeWindow,
        limits: FetchLimits,
        auth: AuthHeader | None = None,
    ) -> None:
        check_options(spec, OPTIONS)
        self._api = spec.option("api", "v2", APIS)
        self._encoding = spec.option("encoding", "protobuf", ENCODINGS)
        self._query = spec.option("q", "{}") or "{}"
        tenant = spec.option("tenant", "")
        self._name = spec.label
        self._window = window
        self._limits = limits
        self._stats = FetchStats()
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        self._client = HttpClient(spec.base_url, limits=limits, stats=self._stats, headers=headers, auth=auth)
        self._ledger = TraceLedger(limits.max_traces)
        self._pages = 0

    @property
    def name(self) -> str:
        """The source URL as given."""
        return self._name

    @property
    def format(self) -> str:
        """OTLP protobuf or OTLP JSON, as asked for with ``encoding``."""
        return "otlp-proto" if self._encoding == "protobuf" else "otlp-json"

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
        """Search pages earliest first; the traces of each page in the order Tempo listed them."""
        min_window = max(self._limits.min_window_s, TEMPO_MIN_WINDOW_S)
        walk = SearchWalk(self._window, page_size=self._limits.page_size, min_window_s=min_window)
        for window in walk:
            if self._ledger.full:
                yield budget_skip(self._name, "search", walk.rest(), self._limits.max_traces)
                break
            where = f"search {window.label()}"
            try:
                found = self._search(window)
            except FetchError as error:
                yield Skipped(self._name, where, f"search failed: {error}")
                if error.status in AUTH_STATUSES:
                    yield Skipped(self._name, where, "the credentials were refused; stopped")
                    return
                continue
            self._pages += 1
            if walk.split_if_full(window, len(found)):
                continue
            if walk.is_full(len(found)):
                reason = (
                    f"the answer for a window of the minimum width ({min_window:g} s) was full "
                    f"({len(found)} traces, the page size): it may hold more (raise --page-size)"
                )
                yield Skipped(self._name, where, reason)
            fresh = [(text, key) for text, key in found if not self._ledger.seen(key)]
            admitted = [(text, key) for text, key in fresh if self._ledger.admit(key)]
            if len(admitted) < len(fresh):
                reason = (
                    f"{len(fresh) - len(admitted)} trace(s) not read: the --max-traces limit of "
                    f"{self._limits.max_traces:,} was reached"
                )
                yield Skipped(self._name, where, reason)
            for items in ordered_map(self._trace, (text for text, _ in admitted), self._limits.concurrency):
                yield from items

    def _search(self, window: TimeWindow) -> list[tuple[str, str]]:
        """The (id as Tempo spells it, normalised id) of each trace found, without repeats."""
        params = [
            ("q", self._query),
            ("start", str(window.start_ns // NS_PER_S)),
            ("end", str(-(-window.end_ns // NS_PER_S))),
            ("limit", str(self._limits.page_size)),
        ]
        answer = self._client.get("/api/search", params)
        try:
            document = loads(answer.body)
        except JsonInputError as error:
            raise FetchError(f"/api/search answered no JSON: {error}") from None
        traces = document.get("traces") if isinstance(document, dict) else None
        if traces is None and isinstance(document, dict):
            traces = []  # an empty result may leave the field out
        if not isinstance(traces, list):
            raise FetchError("/api/search answered no list of traces")
        found: dict[str, str] = {}
        for trace in traces:
            text = trace.get("traceID") if isinstance(trace, dict) else None
            key = hex_id(text, 32)
            if key is None:
                raise FetchError(f"/api/search listed a trace without a readable traceID: {trace!r:.120}")
            found.setdefault(key, str(text))
        return [(text, key) for key, text in found.items()]

    def _trace(self, trace_id: str) -> list[Payload | Skipped]:
        path = ("/api/v2/traces/" if self._api == "v2" else "/api/traces/") + quote(trace_id, safe="")
        where = f"trace {trace_id}"
        accept = _PROTOBUF if self._encoding == "protobuf" else "application/json"
        try:
            answer = self._client.get(path, accept=accept)
        except FetchError as error:
            if error.status == 404:
                reason = "trace not found (expired, or not yet flushed when searched)"
                return [Skipped(self._name, where, reason)]
            return [Skipped(self._name, where, f"cannot read the trace: {error}")]
        try:
            if answer.content_type in (_PROTOBUF, "application/x-protobuf"):
                return self._protobuf(where, answer.body)
            return self._json(where, answer.body)
        except ValueError as error:
            media = answer.content_type or "no content type"
            return [Skipped(self._name, where, f"unreadable answer ({media}): {error}")]

    def _protobuf(self, where: str, body: bytes) -> list[Payload | Skipped]:
        if self._api == "v1":
            trace = body
        else:
            response = _TraceByIDResponse()
            try:
                response.ParseFromString(body)
            except DecodeError as error:
                raise ValueError(f"not a TraceByIDResponse: {error}") from None
            if response.status == _PARTIAL:
                return self._partial(where, response.trace, "otlp-proto", response.message)
            trace = response.trace
        if not trace:
            return [Skipped(self._name, where, "Tempo answered an empty trace")]
        return [Payload(where, trace, "otlp-proto")]

    def _json(self, where: str, body: bytes) -> list[Payload | Skipped]:
        try:
            document = loads(body)
        except JsonInputError as error:
            raise ValueError(str(error)) from None
        if not isinstance(document, dict):
            raise ValueError("JSON that is not an object")
        trace = document.get("trace", document) if self._api == "v2" else document
        if not isinstance(trace, dict):
            raise ValueError("no trace object")
        if not trace.get("resourceSpans", trace.get("batches")):
            return [Skipped(self._name, where, "Tempo answered an empty trace")]
        # The otlp-json reader reads both of Tempo's envelopes; only the status is the source's.
        if self._api == "v2" and document.get("status") in ("PARTIAL", _PARTIAL):
            return self._partial(where, body, "otlp-json", str(document.get("message") or ""))
        return [Payload(where, body, "otlp-json")]

    def _partial(self, where: str, data: bytes, fmt: str, message: str) -> list[Payload | Skipped]:
        """Tempo cut the trace (too large, or a block failed): read what came, record what is missing."""
        reason = f"Tempo answered a partial trace: {message or 'no reason given'}"
        return [Skipped(self._name, where, reason), *([Payload(where, data, fmt)] if data else [])]


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map`` on ``workers`` threads, results in input order, at most ``2 * workers`` in flight."""
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orchscan-fetch") as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
