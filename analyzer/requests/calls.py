"""Calls between services, derived from parent links of the span table.

A call is a pair (caller span, callee span) that crosses a service boundary, found without a
Python loop per span:

* a span whose parent belongs to another service: the parent's service called the span's
  service. This covers a client span with its server child, a server span under an
  uninstrumented client (its parent is the caller's server or internal span), a pseudo-service
  that only emits client spans (HotROD's ``mysql``), and a consumer under its producer;
* a client or producer span with no child in another service: the peer was not instrumented
  (or its spans were lost), so it is named from ``peer.service``, then ``server.address``;
  whether it is an external system is a landscape question (does it emit spans anywhere?);
* a consumer span linked (span link) to a producer span, usually in another trace: both ends
  are recorded here (:func:`link_ends`) and joined by the landscape stage, because the two
  traces may live in different partitions.

Everything here is decided within one trace, so it runs on any partition of the spans that
keeps traces whole.

Every call is attributed to the *request* during which it was made: the nearest ancestor of the
caller span, in the caller's service, that is a server or consumer span (or the local root of the
caller's spans, for background work). This is the unit later stages reason about: "per request
of service A, which calls did it make, in which order". Spans cut off from their request by a
lost parent are put back into it when that is unambiguous, or else kept apart as fragments
(:mod:`orchscan.analyzer.requests.fragments`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.analyzer.columnar.codes import combine, encode, representatives
from orchscan.analyzer.columnar.frames import with_columns
from orchscan.analyzer.requests.fragments import Fragments, adopt_fragments
from orchscan.analyzer.thresholds import DEFAULT_CALL_THRESHOLDS
from orchscan.collectors.model.integrity import parent_rows, span_rows
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.side_threads import side_pool

#: Call kinds: a synchronous request/response, an asynchronous message, or a call to a store.
SYNC, MESSAGING, INFRASTRUCTURE = "sync", "messaging", "infrastructure"

#: Database systems that are caches rather than systems of record.
CACHE_SYSTEMS = frozenset(("redis", "memcached", "valkey", "hazelcast", "ehcache"))

_ENTRY_KINDS = ("server", "consumer")
#: The span columns :attr:`CallTables.spans` spells out as text. The other text columns (span
#: names, RPC and database details, messaging systems, peers) are read as codes where calls and
#: operations are assembled: decoding them for every span cost a tenth of the reduction.
_SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "kind",
    "start_ns",
    "end_ns",
    "status",
    "http_method",
    "http_route",
    "url_path",
    "http_status_code",
    "server_address",
    "messaging_destination",
    "idempotency_key",
)


@dataclass(frozen=True)
class CallTables:
    """The span table reshaped for analysis.

    ``spans``: the span columns the analysis reads as text (:data:`_SPAN_COLUMNS`) plus ``row``
    (position), ``parent_row`` (-1 if none or absent), ``lost_parent`` (it names a parent that
    is absent: its trace has a hole), ``entry_row`` (the request the span belongs to),
    ``operation`` (see :func:`_operations`) and ``named`` (the operation is only the span's
    name).

    ``requests``: one row per request (server/consumer span, or the local root of background
    work): ``row``, ``trace_id``, ``span_id``, ``service``, ``operation``, ``method``,
    ``start_ns``, ``end_ns``, ``error``, ``named`` (its operation is only the span's name: no
    route, path or RPC method says what kind of request it was), ``caller`` (service that sent
    it, or null), ``root`` (no parent span at all). Fragments that stayed fragments are no
    requests.

    ``calls``: one row per call: ``trace_id``, ``caller``, ``callee``, ``kind`` (sync /
    messaging / infrastructure), ``entry_row`` (the caller's request), ``caller_row`` /
    ``callee_row`` (span rows; callee -1 when the callee emitted no span for it),
    ``operation`` (callee operation), ``method``, ``start_ns``/``end_ns`` (as the caller saw
    them when it has a client span), ``status_code``, ``error``, ``idempotency_key``,
    ``system`` (db/messaging system for infrastructure and messaging). A call made below a kept
    fragment has the fragment root as ``entry_row``, a row no request has.

    ``fragments``: one row per fragment root (see :mod:`orchscan.analyzer.requests.fragments`):
    ``row``, ``trace_id``, ``service``, ``attached`` (put back into its service's request).
    """

    spans: pd.DataFrame
    requests: pd.DataFrame
    calls: pd.DataFrame
    fragments: pd.DataFrame


@dataclass(frozen=True)
class _Text:
    """A text column as integer codes (-1 for null) into its distinct values.

    Calls and requests are assembled from span rows; moving codes instead of strings keeps
    every step a numpy take, and the text is spelled out once per output column.
    """

    codes: np.ndarray
    names: np.ndarray

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> _Text:
        """A span table column's codes; a dictionary-coded column gives its own."""
        coded = encode(column)
        null = len(coded.values) - 1
        names = np.asarray(coded.values[:null], dtype=object)
        return cls(np.where(coded.codes == null, -1, coded.codes), names)

    def code(self, name: str) -> int:
        """The code of ``name``; -2 (matching no row) when the column never holds it."""
        found = np.flatnonzero(self.names == name)
        return int(found[0]) if len(found) else -2

    def isin(self, names: tuple[str, ...]) -> np.ndarray:
        wanted = np.zeros(len(self.names) + 1, dtype=bool)  # the last slot answers for nulls
        wanted[[code for code in map(self.code, names) if code >= 0]] = True
        found: np.ndarray = wanted[self.codes]
        return found

    def values(self, rows: np.ndarray) -> pa.Array:
        """The text at ``rows``; a null code reads the ``None`` appended after the names."""
        padded = np.concatenate([self.names, np.array([None], dtype=object)])
        return pa.array(padded[self.codes[rows]], pa.string())


@dataclass(frozen=True)
class _Vocabulary:
    """Callee and system names in one vocabulary: services, peers, addresses, stores, brokers.

    Each attribute holds that span column's codes moved into ``names`` (a name may appear
    under several columns); ``unknown_peer`` and ``broker`` are the codes of those fallbacks.
    """

    names: np.ndarray
    service: np.ndarray
    peer_service: np.ndarray
    server_address: np.ndarray
    db_system: np.ndarray
    messaging_system: np.ndarray
    unknown_peer: int
    broker: int

    @classmethod
    def of(
        cls, service: _Text, peer_service: _Text, server_address: _Text, db_system: _Text, messaging: _Text
    ) -> _Vocabulary:
        columns = (service, peer_service, server_address, db_system, messaging)
        offsets = np.cumsum([0] + [len(c.names) for c in columns])
        moved = [np.where(c.codes >= 0, c.codes + at, -1) for c, at in zip(columns, offsets, strict=False)]
        fallbacks = np.array(["unknown-peer", "broker"], dtype=object)
        names = np.concatenate([*(c.names for c in columns), fallbacks])
        service_codes, peer_codes, address_codes, db_codes, messaging_codes = moved
        return cls(
            names,
            service=service_codes,
            peer_service=peer_codes,
            server_address=address_codes,
            db_system=db_codes,
            messaging_system=messaging_codes,
            unknown_peer=len(names) - 2,
            broker=len(names) - 1,
        )


def _coalesce(*codes: np.ndarray) -> np.ndarray:
    """Per row, the first code that is not null."""
    result = codes[0].copy()
    for more in codes[1:]:
        result = np.where(result >= 0, result, more)
    return result


def _series(codes: np.ndarray, names: np.ndarray) -> pd.Series:
    """Codes spelled out as a text column (pandas' Arrow-backed ``str``)."""
    dictionary = pa.array(names, pa.string()) if len(names) else pa.array([""], pa.string())
    indices = pa.array(codes, pa.int64(), mask=codes < 0)
    return pd.Series(pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string()).to_pandas())


def _operations(table: pa.Table, method: _Text, text: Callable[[str], _Text]) -> tuple[_Text, np.ndarray]:
    """A readable operation name per span: ``METHOD /route``, ``rpc Service/Method`` or the span name.

    The route template is preferred over the concrete path (which carries ids); without a
    template the concrete path is used as seen. Spelled once per distinct combination of the
    columns involved, not once per span. Also per combination: whether the name is only the span's
    name (no route, path or RPC method tells the request's type).
    """
    parts = [
        method,
        _Text.of(pc.coalesce(table["http_route"], table["url_path"])),
        text("rpc_service"),
        text("rpc_method"),
        text("name"),
    ]
    combined, groups = combine([part.codes + 1 for part in parts], [len(part.names) + 1 for part in parts])
    first = representatives(combined, groups)
    verb, route, rpc_service, rpc_method, name = (part.values(first) for part in parts)
    rpc = pc.and_(pc.is_valid(rpc_service), pc.is_valid(rpc_method))
    http = pc.and_(pc.is_valid(verb), pc.is_valid(route))
    keys = pc.if_else(rpc, pc.binary_join_element_wise(rpc_service, rpc_method, "/"), name)
    keys = pc.if_else(http, pc.binary_join_element_wise(verb, route, " "), keys)
    named = pc.invert(pc.or_(rpc, http)).to_numpy(zero_copy_only=False)
    return _Text(combined, np.asarray(keys.to_pylist(), dtype=object)), named


def _entry_rows(parent: np.ndarray, service_code: np.ndarray, is_entry: np.ndarray) -> np.ndarray:
    """Nearest ancestor-or-self that is an entry span, staying inside the span's own service."""
    n = len(parent)
    same_service = parent >= 0
    same_service[same_service] = service_code[parent[same_service]] == service_code[same_service]
    up = np.where(~is_entry & same_service, parent, np.arange(n))
    # Pointer doubling: each round doubles the distance climbed; stops at a fixed point.
    for _ in range(64):
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    return up


@dataclass(frozen=True)
class _Spans:
    """The per-span arrays calls are assembled from."""

    service: _Text
    kind: _Text
    method: _Text
    operation: _Text
    peer_service: _Text
    server_address: _Text
    db_system: _Text
    messaging_system: _Text
    parent: np.ndarray
    entry: np.ndarray
    start: np.ndarray
    end: np.ndarray
    status_code: np.ndarray
    error: np.ndarray
    idempotency_key: np.ndarray

    @cached_property
    def vocabulary(self) -> _Vocabulary:
        """The shared vocabulary of callee and system names."""
        return _Vocabulary.of(
            self.service, self.peer_service, self.server_address, self.db_system, self.messaging_system
        )


def link_stubs(table: pa.Table) -> pa.Table:
    """Consumer spans that carry span links: the copies a partition resolves its links from.

    A linked producer usually lives in another trace, and so possibly in another partition: the
    partitioning hands each partition a copy of every consumer linked into one of its traces.
    For a table that holds every trace, the stubs are its own linked consumers.
    """
    consumers = pc.equal(table["kind"], "consumer")
    linked = pc.greater(pc.list_value_length(table["links"]).fill_null(0), 0)
    return table.filter(pc.and_(consumers, linked).fill_null(False))


def build_call_tables(
    table: pa.Table,
    stubs: pa.Table | None = None,
    *,
    fragment_tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.fragment_tolerance_ms,
    parents: np.ndarray | None = None,
) -> CallTables:
    """Derive requests and calls from a span table (see the module docstring).

    ``stubs`` are the linked consumers whose producers may be in ``table`` (see
    :func:`link_stubs`; computed from ``table`` itself when not given). They take part in link
    resolution only: they are rows after the table's own in :attr:`CallTables.spans`, but never
    requests, parents or callers. ``fragment_tolerance_ms`` is the slack allowed when placing a
    fragment inside a request of its service. ``parents``, each span's parent row (see
    :func:`orchscan.collectors.model.integrity.parent_rows`), is found here when not given.
    """
    own_rows = table.num_rows
    stubs = link_stubs(table) if stubs is None else stubs
    full = pa.concat_tables([table, stubs.cast(table.schema)]) if stubs.num_rows else table
    with side_pool(2) as pool:
        # Id lookups and sorts are numpy and Arrow work that releases the GIL: they run beside
        # the text work on the second core.
        found_parents = pool.submit(parent_rows, table) if parents is None else None
        traces = pool.submit(_trace_ranks, full)
        coded, full = full, plain_strings(full.select([*_SPAN_COLUMNS, "links"]))
        links = pool.submit(_span_links, full, own_rows)
        # One chunk per column: taking rows from a many-chunk Arrow column costs a copy each time.
        spans = full.select(list(_SPAN_COLUMNS)).combine_chunks().to_pandas(use_threads=False)

        def text(name: str) -> _Text:
            return _Text.of(coded[name])

        service = text("service")
        kind = text("kind")
        method = text("http_method")
        operation, named = _operations(full, method, text)
        own_parents = parents if found_parents is None else found_parents.result()
        parent = np.concatenate([own_parents, np.full(len(spans) - own_rows, -1, dtype=np.int64)])
        is_entry = kind.isin(_ENTRY_KINDS)
        is_entry[own_rows:] = False
        start = spans["start_ns"].to_numpy(dtype=np.int64)
        end = spans["end_ns"].to_numpy(dtype=np.int64)
        trace_rank = traces.result()
        lost = (parent < 0) & spans["parent_span_id"].notna().to_numpy()
        lost[own_rows:] = False
        fragments = adopt_fragments(
            trace_rank,
            service.codes,
            start,
            end,
            lost,
            is_entry,
            tolerance_ns=int(fragment_tolerance_ms * 1_000_000),
        )
        # An adopted fragment climbs to its request as if the lost spans were still there.
        climb = parent.copy()
        climb[fragments.roots] = fragments.hosts
        entry = _entry_rows(climb, service.codes, is_entry)
        status_code = spans["http_status_code"].to_numpy(dtype=np.float64, na_value=np.nan)
        columns = _Spans(
            service=service,
            kind=kind,
            method=method,
            operation=operation,
            peer_service=text("peer_service"),
            server_address=text("server_address"),
            db_system=text("db_system"),
            messaging_system=text("messaging_system"),
            parent=parent,
            entry=entry,
            start=start,
            end=end,
            status_code=status_code,
            error=(spans["status"] == "error").to_numpy(dtype=bool) | (status_code >= 500),
            idempotency_key=spans["idempotency_key"].fillna(False).to_numpy(dtype=bool),
        )
        spans = with_columns(
            spans,
            row=np.arange(len(spans)),
            parent_row=parent,
            lost_parent=lost,
            entry_row=entry,
            operation=_series(operation.codes, operation.names),
            named=named[operation.codes],
        )
        requests = _requests(spans, columns, own_rows, fragments.kept)
        parts = [
            _boundary_calls(columns),
            _unanswered_calls(columns),
            _linked_messages(links.result(), columns, spans),
        ]
        calls = _calls_frame(full, columns, parts, trace_rank, pool)
    return CallTables(spans=spans, requests=requests, calls=calls, fragments=_fragments(spans, fragments))


def _trace_ranks(table: pa.Table) -> np.ndarray:
    """Each span's trace id as its rank among the sorted distinct trace ids."""
    ranks: np.ndarray = pd.factorize(table["trace_id"].to_pandas(), sort=True)[0]
    return ranks


def _fragments(spans: pd.DataFrame, fragments: Fragments) -> pd.DataFrame:
    """The fragment roots, each with its trace, service and whether a request took it in."""
    rows = fragments.roots
    return pd.DataFrame(
        {
            "row": rows,
            "trace_id": spans["trace_id"].array.take(rows),
            "service": spans["service"].array.take(rows),
            "attached": fragments.hosts >= 0,
        }
    )


def _requests(spans: pd.DataFrame, s: _Spans, own_rows: int, kept: np.ndarray) -> pd.DataFrame:
    own = s.entry[:own_rows] == np.arange(own_rows)
    own[kept] = False
    rows = np.flatnonzero(own)
    parent = s.parent[rows]
    caller = np.where(parent >= 0, s.service.codes[np.maximum(parent, 0)], -1)
    caller[caller == s.service.codes[rows]] = -1

    def take(column: str) -> pd.api.extensions.ExtensionArray:
        return spans[column].array.take(rows)

    return pd.DataFrame(
        {
            "row": rows,
            "trace_id": take("trace_id"),
            "span_id": take("span_id"),
            "service": take("service"),
            "kind": take("kind"),
            "operation": _series(s.operation.codes[rows], s.operation.names).array,
            "method": take("http_method"),
            "start_ns": s.start[rows],
            "end_ns": s.end[rows],
            "error": s.error[rows],
            "named": spans["named"].to_numpy()[rows],
            "caller": _series(caller, s.service.names).array,
            "root": spans["parent_span_id"].isna().to_numpy()[rows],
        }
    )


#: Call kind codes while calls are assembled; spelled out by ``_KINDS``.
_SYNC, _MESSAGING, _INFRASTRUCTURE = 0, 1, 2
_KINDS = np.array([SYNC, MESSAGING, INFRASTRUCTURE], dtype=object)


def _call_kind(s: _Spans, rows: np.ndarray) -> np.ndarray:
    kind = np.full(len(rows), _SYNC, dtype=np.int64)
    kind[s.db_system.codes[rows] >= 0] = _INFRASTRUCTURE
    messaging = s.kind.isin(("producer", "consumer"))[rows] | (s.messaging_system.codes[rows] >= 0)
    kind[messaging] = _MESSAGING
    return kind


@dataclass(frozen=True)
class _CallPart:
    """Calls of one origin, as row numbers and codes; ``callee`` and ``system`` index ``names``."""

    trace_row: np.ndarray
    caller_row: np.ndarray
    callee_row: np.ndarray
    callee: np.ndarray
    kind: np.ndarray
    operation_row: np.ndarray
    method: np.ndarray
    start: np.ndarray
    end: np.ndarray
    status_code: np.ndarray
    error: np.ndarray
    idempotency_key: np.ndarray
    system: np.ndarray


def _remote_children(s: _Spans) -> np.ndarray:
    """Spans whose parent lives in another service."""
    rows = np.flatnonzero(s.parent >= 0)
    remote: np.ndarray = rows[s.service.codes[rows] != s.service.codes[s.parent[rows]]]
    return remote


def _boundary_calls(s: _Spans) -> _CallPart:
    """Spans whose parent lives in another service."""
    names = s.vocabulary
    rows = _remote_children(s)
    parent = s.parent[rows]
    # The caller's view of timing is the client/producer span when there is one; a server span
    # under an uninstrumented client only has its own clock.
    timing = np.where(s.kind.isin(("client", "producer"))[parent], parent, rows)
    kind = _call_kind(s, rows)
    kind[_call_kind(s, parent) == _MESSAGING] = _MESSAGING
    # A client span reported under its own service name, below another service's span, is a
    # store seen from its client (HotROD's "mysql"): a pseudo-service, not a business call.
    kind[(s.kind.codes[rows] == s.kind.code("client")) & (kind == _SYNC)] = _INFRASTRUCTURE
    code = s.status_code[rows]
    return _CallPart(
        trace_row=rows,
        caller_row=parent,
        callee_row=rows,
        callee=names.service[rows],
        kind=kind,
        operation_row=rows,
        method=_coalesce(s.method.codes[rows], s.method.codes[timing]),
        start=s.start[timing],
        end=s.end[timing],
        status_code=np.where(np.isnan(code), s.status_code[timing], code),
        error=s.error[rows] | s.error[timing],
        idempotency_key=s.idempotency_key[rows] | s.idempotency_key[timing],
        system=_coalesce(names.db_system[rows], names.messaging_system[rows]),
    )


def _unanswered_calls(s: _Spans) -> _CallPart:
    """Client and producer spans whose callee emitted nothing: an uninstrumented peer or a store."""
    names = s.vocabulary
    answered = np.zeros(len(s.parent), dtype=bool)
    answered[s.parent[_remote_children(s)]] = True
    outgoing = s.kind.isin(("client", "producer"))
    rows = np.flatnonzero(outgoing & ~answered)
    # A pseudo-service's own client spans (its parent is in another service) are already a
    # boundary call; their absent children are not a second call.
    parents = s.parent[rows]
    own_parent = (parents < 0) | (s.service.codes[np.maximum(parents, 0)] == s.service.codes[rows])
    rows = rows[own_parent]
    kind = _call_kind(s, rows)
    system = _coalesce(names.db_system[rows], names.messaging_system[rows])
    peer = _coalesce(names.peer_service[rows], names.server_address[rows], system)
    peer[peer < 0] = names.unknown_peer
    is_messaging = kind == _MESSAGING
    broker_name = names.messaging_system[rows]
    broker_name[broker_name < 0] = names.broker
    peer[is_messaging] = broker_name[is_messaging]
    kind[is_messaging] = _INFRASTRUCTURE
    return _CallPart(
        trace_row=rows,
        caller_row=rows,
        callee_row=np.full(len(rows), -1, dtype=np.int64),
        callee=peer,
        kind=kind,
        operation_row=rows,
        method=s.method.codes[rows],
        start=s.start[rows],
        end=s.end[rows],
        status_code=s.status_code[rows],
        error=s.error[rows],
        idempotency_key=s.idempotency_key[rows],
        system=system,
    )


def _span_links(table: pa.Table, own_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(linked span, consumer stub) row pairs: each stub's links that point into the own rows."""
    if table.num_rows == own_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    stubs = table.slice(own_rows).select(["links"])
    flat = pc.list_flatten(stubs["links"])
    owner = own_rows + pc.list_parent_indices(stubs["links"]).to_numpy()
    found_rows = span_rows(
        table.slice(0, own_rows), pc.struct_field(flat, "trace_id"), pc.struct_field(flat, "span_id")
    )
    found = found_rows >= 0
    return found_rows[found], owner[found]


def _linked_messages(links: tuple[np.ndarray, np.ndarray], s: _Spans, spans: pd.DataFrame) -> _CallPart:
    """Consumers that name their producer by a span link rather than as parent."""
    names = s.vocabulary
    producer, consumer = links

    # A consumer whose parent is the linked producer is a boundary call already.
    def at(column: str, rows: np.ndarray) -> np.ndarray:
        return np.asarray(spans[column].array.take(rows), dtype=object)

    direct = (at("trace_id", consumer) == at("trace_id", producer)) & (
        at("parent_span_id", consumer) == at("span_id", producer)
    )
    keep = (s.service.codes[producer] != s.service.codes[consumer]) & ~direct
    producer, consumer = producer[keep], consumer[keep]
    return _CallPart(
        trace_row=consumer,
        caller_row=producer,
        callee_row=consumer,
        callee=names.service[consumer],
        kind=np.full(len(consumer), _MESSAGING, dtype=np.int64),
        operation_row=consumer,
        method=s.method.codes[consumer],
        start=s.start[producer],
        end=s.end[producer],
        status_code=s.status_code[consumer],
        error=s.error[consumer],
        idempotency_key=np.zeros(len(consumer), dtype=bool),
        system=names.messaging_system[consumer],
    )


def _calls_frame(
    table: pa.Table, s: _Spans, parts: list[_CallPart], trace_rank: np.ndarray, pool: Executor
) -> pd.DataFrame:
    """The calls of every origin in one frame, ordered by trace, start and caller span."""
    names = s.vocabulary.names

    def joined(field: str) -> np.ndarray:
        return np.concatenate([getattr(part, field) for part in parts])

    trace_row, start, caller_row = joined("trace_row"), joined("start"), joined("caller_row")
    # Stable, like the concatenation order it refines.
    order = np.lexsort((caller_row, start, trace_rank[trace_row]))
    texts = {
        "caller": (s.service.codes[caller_row[order]], s.service.names),
        "callee": (joined("callee")[order], names),
        "kind": (joined("kind")[order], _KINDS),
        "operation": (s.operation.codes[joined("operation_row")[order]], s.operation.names),
        "method": (joined("method")[order], s.method.names),
        "system": (joined("system")[order], names),
    }
    spelled = dict(zip(texts, pool.map(lambda pair: _series(*pair).array, texts.values()), strict=True))
    return pd.DataFrame(
        {
            "trace_id": table["trace_id"].take(pa.array(trace_row[order], pa.int64())).to_pandas().array,
            "caller": spelled["caller"],
            "callee": spelled["callee"],
            "kind": spelled["kind"],
            "entry_row": s.entry[caller_row[order]],
            "caller_row": caller_row[order],
            "callee_row": joined("callee_row")[order],
            "operation": spelled["operation"],
            "method": spelled["method"],
            "start_ns": start[order],
            "end_ns": joined("end")[order],
            "status_code": joined("status_code")[order],
            "error": joined("error")[order],
            "idempotency_key": joined("idempotency_key")[order],
            "system": spelled["system"],
        }
    )
