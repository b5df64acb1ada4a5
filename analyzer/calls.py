"""Calls between services, derived from parent links of the span table.

A call is a pair (caller span, callee span) that crosses a service boundary, found without a
Python loop per span:

* a span whose parent belongs to another service: the parent's service called the span's
  service. This covers a client span with its server child, a server span under an
  uninstrumented client (its parent is the caller's server or internal span), a pseudo-service
  that only emits client spans (HotROD's ``mysql``), and a consumer under its producer;
* a client or producer span with no child in another service: the peer was not instrumented,
  so it is named from ``peer.service``, then ``server.address``; it is external unless it is
  a database, cache or broker;
* a consumer span linked (span link) to a producer span in another trace.

Every call is attributed to the *request* during which it was made: the nearest ancestor of the
caller span, in the caller's service, that is a server or consumer span (or the local root of the
caller's fragment, for background work). This is the unit later stages reason about: "per request
of service A, which calls did it make, in which order".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collectors.integrity import parent_rows
from collectors.spans import plain_strings

#: Call kinds: a synchronous request/response, an asynchronous message, or a call to a store.
SYNC, MESSAGING, INFRASTRUCTURE = "sync", "messaging", "infrastructure"

#: Database systems that are caches rather than systems of record.
CACHE_SYSTEMS = frozenset(("redis", "memcached", "valkey", "hazelcast", "ehcache"))

_ENTRY_KINDS = ("server", "consumer")
_SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status",
    "http_method",
    "http_route",
    "url_path",
    "http_status_code",
    "server_address",
    "peer_service",
    "rpc_system",
    "rpc_service",
    "rpc_method",
    "db_system",
    "db_operation",
    "messaging_system",
    "messaging_destination",
    "messaging_operation",
    "idempotency_key",
)


@dataclass(frozen=True)
class CallTables:
    """The span table reshaped for analysis.

    ``spans``: the analysed span columns plus ``row`` (position), ``parent_row`` (-1 if none or
    absent), ``entry_row`` (the request the span belongs to) and ``operation`` (see
    :func:`operation_keys`).

    ``requests``: one row per request (server/consumer span, or fragment root): ``row``,
    ``trace_id``, ``span_id``, ``service``, ``operation``, ``method``, ``start_ns``, ``end_ns``,
    ``error``, ``caller`` (service that sent it, or null), ``root`` (no parent span at all).

    ``calls``: one row per call: ``trace_id``, ``caller``, ``callee``, ``kind`` (sync /
    messaging / infrastructure), ``external`` (callee not instrumented), ``entry_row`` (the
    caller's request), ``caller_row`` / ``callee_row`` (span rows; callee -1 when not
    instrumented), ``operation`` (callee operation), ``method``, ``start_ns``/``end_ns`` (as
    the caller saw them when it has a client span), ``status_code``, ``error``,
    ``idempotency_key``, ``system`` (db/messaging system for infrastructure and messaging).
    """

    spans: pd.DataFrame
    requests: pd.DataFrame
    calls: pd.DataFrame


def operation_keys(spans: pd.DataFrame) -> pd.Series:
    """A readable operation name per span: ``METHOD /route``, ``rpc Service/Method`` or the span name.

    The route template is preferred over the concrete path (which carries ids); without a
    template the concrete path is used as seen.
    """
    route = spans["http_route"].fillna(spans["url_path"])
    http = spans["http_method"].notna() & route.notna()
    rpc = spans["rpc_service"].notna() & spans["rpc_method"].notna()
    keys = spans["name"].astype(object).copy()
    keys[rpc] = spans.loc[rpc, "rpc_service"] + "/" + spans.loc[rpc, "rpc_method"]
    keys[http] = spans.loc[http, "http_method"] + " " + route[http]
    return keys


def _span_keys(table: pa.Table) -> pa.Array:
    """``trace_id/span_id`` per span: the key parent links and span links point at."""
    return pc.binary_join_element_wise(table["trace_id"], table["span_id"], "/").combine_chunks()


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


def build_call_tables(table: pa.Table) -> CallTables:
    """Derive requests and calls from a span table (see the module docstring)."""
    table = plain_strings(table)
    spans = table.select(list(_SPAN_COLUMNS)).to_pandas()
    spans["row"] = np.arange(len(spans))
    parent = parent_rows(table)
    spans["parent_row"] = parent
    service_code = pd.factorize(spans["service"])[0]
    is_entry = spans["kind"].isin(_ENTRY_KINDS).to_numpy()
    spans["entry_row"] = _entry_rows(parent, service_code, is_entry)
    spans["operation"] = operation_keys(spans)
    requests = _requests(spans)
    calls = pd.concat(
        [_boundary_calls(spans), _unanswered_calls(spans), _linked_messages(table, spans)],
        ignore_index=True,
    )
    calls = calls.sort_values(["trace_id", "start_ns", "caller_row"], kind="stable", ignore_index=True)
    return CallTables(spans=spans, requests=requests, calls=calls)


def _requests(spans: pd.DataFrame) -> pd.DataFrame:
    entries = spans[spans["entry_row"].to_numpy() == spans["row"].to_numpy()]
    parent = entries["parent_row"].to_numpy()
    has_parent = parent >= 0
    caller = pd.Series(pd.NA, index=entries.index, dtype=object)
    caller[has_parent] = spans["service"].to_numpy()[parent[has_parent]]
    return pd.DataFrame(
        {
            "row": entries["row"],
            "trace_id": entries["trace_id"],
            "span_id": entries["span_id"],
            "service": entries["service"],
            "kind": entries["kind"],
            "operation": entries["operation"],
            "method": entries["http_method"],
            "start_ns": entries["start_ns"],
            "end_ns": entries["end_ns"],
            "error": _is_error(entries),
            "caller": caller.where(caller != entries["service"]),
            "root": entries["parent_span_id"].isna(),
        }
    ).reset_index(drop=True)


def _is_error(spans: pd.DataFrame) -> pd.Series:
    code = spans["http_status_code"]
    return (spans["status"] == "error") | (code.notna() & (code.fillna(0) >= 500))


def _call_kind(spans: pd.DataFrame) -> pd.Series:
    kind = pd.Series(SYNC, index=spans.index, dtype=object)
    kind[spans["db_system"].notna()] = INFRASTRUCTURE
    messaging = spans["kind"].isin(("producer", "consumer")) | spans["messaging_system"].notna()
    kind[messaging] = MESSAGING
    return kind


# The columns each kind of call reads, so that only these are taken row by row.
_CALLER_COLUMNS = (
    "trace_id",
    "service",
    "kind",
    "row",
    "entry_row",
    "start_ns",
    "end_ns",
    "status",
    "http_method",
    "http_status_code",
    "idempotency_key",
    "db_system",
    "messaging_system",
)
_CALLEE_COLUMNS = (*_CALLER_COLUMNS, "operation")
_UNANSWERED_COLUMNS = (*_CALLEE_COLUMNS, "peer_service", "server_address")


def _boundary_calls(spans: pd.DataFrame) -> pd.DataFrame:
    """Spans whose parent lives in another service."""
    # Select rows with numpy first and take the wide frame once: taking every column of a
    # million-row frame dominates the cost otherwise.
    parent_of = spans["parent_row"].to_numpy()
    service = spans["service"].to_numpy()
    rows = np.flatnonzero(parent_of >= 0)
    rows = rows[service[rows] != service[parent_of[rows]]]
    child = spans[list(_CALLEE_COLUMNS)].iloc[rows]
    parent = spans[list(_CALLER_COLUMNS)].iloc[parent_of[rows]]
    # The caller's view of timing is the client/producer span when there is one; a server span
    # under an uninstrumented client only has its own clock.
    caller_has_client = parent["kind"].isin(("client", "producer")).to_numpy()
    timing = pd.DataFrame(
        {
            column: np.where(caller_has_client, parent[column].to_numpy(), child[column].to_numpy())
            for column in (
                "start_ns",
                "end_ns",
                "http_method",
                "http_status_code",
                "idempotency_key",
                "status",
            )
        },
        index=child.index,
    )
    kind = _call_kind(child)
    kind[_call_kind(parent).to_numpy() == MESSAGING] = MESSAGING
    # A client span reported under its own service name, below another service's span, is a
    # store seen from its client (HotROD's "mysql"): a pseudo-service, not a business call.
    kind[(child["kind"] == "client").to_numpy() & (kind == SYNC).to_numpy()] = INFRASTRUCTURE
    system = child["db_system"].fillna(child["messaging_system"])
    return pd.DataFrame(
        {
            "trace_id": child["trace_id"].to_numpy(),
            "caller": parent["service"].to_numpy(),
            "callee": child["service"].to_numpy(),
            "kind": kind.to_numpy(),
            "external": False,
            "entry_row": parent["entry_row"].to_numpy(),
            "caller_row": parent["row"].to_numpy(),
            "callee_row": child["row"].to_numpy(),
            "operation": child["operation"].to_numpy(),
            "method": child["http_method"].fillna(timing["http_method"]).to_numpy(),
            "start_ns": timing["start_ns"].astype(np.int64).to_numpy(),
            "end_ns": timing["end_ns"].astype(np.int64).to_numpy(),
            "status_code": child["http_status_code"].fillna(timing["http_status_code"]).to_numpy(),
            "error": (_is_error(child) | _is_error(timing)).to_numpy(),
            "idempotency_key": (
                child["idempotency_key"].fillna(False) | timing["idempotency_key"].fillna(False)
            )
            .astype(bool)
            .to_numpy(),
            "system": system.to_numpy(),
        }
    )


def _peer_name(spans: pd.DataFrame) -> pd.Series:
    name = spans["peer_service"].fillna(spans["server_address"])
    name = name.fillna(spans["db_system"]).fillna(spans["messaging_system"])
    return name.fillna("unknown-peer")


def _unanswered_calls(spans: pd.DataFrame) -> pd.DataFrame:
    """Client and producer spans whose callee emitted nothing: an uninstrumented peer or a store."""
    parent_of = spans["parent_row"].to_numpy()
    service = spans["service"].to_numpy()
    children = np.flatnonzero(parent_of >= 0)
    remote_child = children[service[children] != service[parent_of[children]]]
    answered = np.zeros(len(spans), dtype=bool)
    answered[parent_of[remote_child]] = True
    outgoing = spans["kind"].isin(("client", "producer")).to_numpy()
    rows = np.flatnonzero(outgoing & ~answered)
    # A pseudo-service's own client spans (its parent is in another service) are already a
    # boundary call; their absent children are not a second call.
    parents = parent_of[rows]
    own_parent = (parents < 0) | (service[np.maximum(parents, 0)] == service[rows])
    calls = spans[list(_UNANSWERED_COLUMNS)].iloc[rows[own_parent]]
    kind = _call_kind(calls)
    peer = _peer_name(calls)
    messaging = kind == MESSAGING
    peer[messaging] = calls["messaging_system"].fillna("broker")[messaging]
    kind[messaging] = INFRASTRUCTURE
    # A peer that emits spans elsewhere in the input is instrumented; only this call's callee
    # spans are missing (lost, sampled away), so it is not an external system.
    instrumented = peer.isin(pd.unique(spans["service"])).to_numpy()
    return pd.DataFrame(
        {
            "trace_id": calls["trace_id"].to_numpy(),
            "caller": calls["service"].to_numpy(),
            "callee": peer.to_numpy(),
            "kind": kind.to_numpy(),
            "external": (kind == SYNC).to_numpy() & ~instrumented,
            "entry_row": calls["entry_row"].to_numpy(),
            "caller_row": calls["row"].to_numpy(),
            "callee_row": -1,
            "operation": calls["operation"].to_numpy(),
            "method": calls["http_method"].to_numpy(),
            "start_ns": calls["start_ns"].to_numpy(),
            "end_ns": calls["end_ns"].to_numpy(),
            "status_code": calls["http_status_code"].to_numpy(),
            "error": _is_error(calls).to_numpy(),
            "idempotency_key": calls["idempotency_key"].fillna(False).astype(bool).to_numpy(),
            "system": calls["db_system"].fillna(calls["messaging_system"]).to_numpy(),
        }
    )


def _linked_messages(table: pa.Table, spans: pd.DataFrame) -> pd.DataFrame:
    """Consumers that name their producer by a span link rather than as parent."""
    consumers = pc.equal(table["kind"], "consumer")
    has_links = pc.and_(consumers, pc.greater(pc.list_value_length(table["links"]).fill_null(0), 0))
    if not pc.any(has_links).as_py():
        return _linked_frame(spans.iloc[:0], spans.iloc[:0])
    rows = np.flatnonzero(has_links.to_numpy(zero_copy_only=False))
    linked = table.take(pa.array(rows)).select(["links"])
    flat = pc.list_flatten(linked["links"])
    owner = rows[pc.list_parent_indices(linked["links"]).to_numpy()]
    keys = pc.binary_join_element_wise(
        pc.struct_field(flat, "trace_id"), pc.struct_field(flat, "span_id"), "/"
    )
    span_keys = _span_keys(table)
    producer = np.asarray(pc.index_in(keys, value_set=span_keys).fill_null(-1).to_numpy(zero_copy_only=False))
    found = producer >= 0
    producers = spans.iloc[producer[found]]
    consumers_df = spans.iloc[owner[found]]
    keep = (producers["service"].to_numpy() != consumers_df["service"].to_numpy()) & (
        consumers_df["parent_row"].to_numpy() != producers["row"].to_numpy()
    )
    return _linked_frame(producers[keep], consumers_df[keep])


def _linked_frame(producers: pd.DataFrame, consumers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trace_id": consumers["trace_id"].to_numpy(),
            "caller": producers["service"].to_numpy(),
            "callee": consumers["service"].to_numpy(),
            "kind": MESSAGING,
            "external": False,
            "entry_row": producers["entry_row"].to_numpy(),
            "caller_row": producers["row"].to_numpy(),
            "callee_row": consumers["row"].to_numpy(),
            "operation": consumers["operation"].to_numpy(),
            "method": consumers["http_method"].to_numpy(),
            "start_ns": producers["start_ns"].to_numpy(),
            "end_ns": producers["end_ns"].to_numpy(),
            "status_code": consumers["http_status_code"].to_numpy(),
            "error": _is_error(consumers).to_numpy(),
            "idempotency_key": False,
            "system": consumers["messaging_system"].to_numpy(),
        }
    )
