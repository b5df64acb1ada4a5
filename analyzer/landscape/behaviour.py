"""What each service does per request: whom it calls, in which order, how much of it in parallel.

For every request (a row of :attr:`CallTables.requests`) the calls made while handling it (calls
with that ``entry_row``) are measured, then aggregated per entry operation and per service:

* distinct downstream services (synchronous calls, external peers included);
* *stages*: calls are cut into groups that overlap in time (a call joins the running group when
  it starts before every earlier call of the request has ended, less a skew tolerance). A
  request whose distinct callees first appear in different stages calls them one after another,
  i.e. each waits for the previous one: the *sequential share* of a request is
  ``(stages holding a first call to some service − 1) / (distinct services − 1)``;
* reads (GET/HEAD/OPTIONS) against writes (POST/PUT/PATCH/DELETE); RPC methods count as unknown;
* own work: database/cache calls and self time (duration minus the union of all downstream
  call intervals, clipped to the request);
* events: requests that are message deliveries, and producer spans sent while handling them.

Everything is a group-by over the calls table; stages and interval unions use sorted starts with
a cumulative maximum of ends per request, never a Python loop per request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchscan.analyzer.columnar.grouping import (
    distinct_names,
    group_codes,
    positions_in,
    sorted_codes,
    sorted_unique,
    split_by_code,
)
from orchscan.analyzer.requests.calls import INFRASTRUCTURE, MESSAGING, SYNC, CallTables
from orchscan.analyzer.thresholds import DEFAULT_ROLE_THRESHOLDS, RoleThresholds

#: HTTP methods that only read, and those that change state.
READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))

#: How many example trace ids a behaviour record keeps.
EXAMPLES = 5

#: A distinct callee is typical of an operation when this share of its requests call it.
_TYPICAL_SHARE = 0.5

_SUMMED = (
    "sync_calls",
    "distinct_callees",
    "sequential_steps",
    "dependent_pairs",
    "overlapping_calls",
    "reads",
    "writes",
    "unknown_methods",
    "db_calls",
    "publishes",
    "duration_ns",
    "self_ns",
)


@dataclass(frozen=True)
class Behaviour:
    """How one entry operation of a service (or, with ``operation`` None, all of them) behaves.

    Per-request figures are means over ``requests``. ``sequential_share`` is pooled over the
    requests that call at least two distinct services (0 when there are none);
    ``overlapping_call_share`` is the share of synchronous calls that overlap another call of
    the same request. ``callees`` lists the services a typical request calls, in the order of
    their first call. ``event_requests`` counts requests that consumed or published a message;
    ``served`` the requests that arrived from outside (server or consumer spans) rather than
    starting in the service itself (a client span or background work at the root).
    """

    service: str
    operation: str | None
    requests: int
    errors: int
    calls_per_request: float
    distinct_callees_per_request: float
    forwarding_requests: int
    multi_callee_requests: int
    sequential_share: float
    overlapping_call_share: float
    reads: int
    writes: int
    unknown_methods: int
    db_calls_per_request: float
    publishes_per_request: float
    consumed: int
    served: int
    event_requests: int
    self_time_share: float
    callees: tuple[str, ...]
    example_traces: tuple[str, ...]

    @property
    def error_rate(self) -> float:
        """Share of requests that failed."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def write_share(self) -> float:
        """Share of calls with a known method that write."""
        known = self.reads + self.writes
        return self.writes / known if known else 0.0


@dataclass(frozen=True)
class ServiceBehaviour:
    """Everything one service does and receives.

    ``overall`` aggregates all its requests; ``operations`` has one record per entry operation,
    most requests first. ``callers``/``callees`` are the distinct services on synchronous and
    messaging calls (infrastructure excluded); ``stores`` the stores, caches and brokers it
    uses. ``received_*`` count incoming calls by kind (``received_external``: synchronous calls
    answered by nothing, so the service emitted no span for them). ``emits_spans`` is false for
    peers only known from other services' client spans.
    """

    name: str
    emits_spans: bool
    overall: Behaviour
    operations: tuple[Behaviour, ...]
    callers: tuple[str, ...]
    callees: tuple[str, ...]
    stores: tuple[str, ...]
    store_users: tuple[str, ...]
    destinations: tuple[str, ...]
    received_sync: int
    received_messages: int
    received_infrastructure: int
    received_external: int

    @property
    def received(self) -> int:
        """Calls received, of every kind."""
        return self.received_sync + self.received_messages + self.received_infrastructure


def measure_requests(
    tables: CallTables, *, thresholds: RoleThresholds = DEFAULT_ROLE_THRESHOLDS
) -> pd.DataFrame:
    """One row per request with the figures of :class:`Behaviour`, so aggregates stay group-bys.

    Columns: the request's ``row``, ``trace_id``, ``service``, ``operation``, ``kind``,
    ``error`` plus ``sync_calls``, ``distinct_callees``, ``sequential_steps`` (stages holding a
    first call to a service, minus one), ``dependent_pairs`` (distinct callees minus one),
    ``overlapping_calls``, ``reads``, ``writes``, ``unknown_methods``, ``db_calls``,
    ``publishes``, ``duration_ns``, ``self_ns``.
    """
    requests = tables.requests
    calls = tables.calls
    count = len(requests)
    # Each call's request as a position in ``requests`` (whose rows ascend); -1 for none.
    position = positions_in(requests["row"].to_numpy(), calls["entry_row"].to_numpy())
    start, end = requests["start_ns"].to_numpy(), requests["end_ns"].to_numpy()
    frame = pd.DataFrame(
        {
            "row": requests["row"].to_numpy(),
            "trace_id": requests["trace_id"].array,
            "service": requests["service"].array,
            "operation": requests["operation"].array,
            "kind": requests["kind"].array,
            "error": requests["error"].to_numpy(dtype=bool),
            "duration_ns": np.clip(end - start, 0, None),
        }
    )
    sync = (calls["kind"] == SYNC).to_numpy(dtype=bool) & (position >= 0)
    tolerance = int(thresholds.overlap_tolerance_ms * 1_000_000)
    figures = {
        **_sync_figures(calls, position, sync, tolerance, count),
        **_method_figures(calls["method"], position, sync, count),
        **_own_work(tables, position, count),
    }
    for column, values in figures.items():
        frame[column] = values
    busy = _busy_time(calls, position, start, end, count)
    frame["self_ns"] = np.clip(frame["duration_ns"].to_numpy() - busy, 0, None)
    return frame


def _counts(position: np.ndarray, count: int, weights: np.ndarray | None = None) -> np.ndarray:
    """How many (or how much of ``weights``) per request position, as integers."""
    return np.bincount(position, weights=weights, minlength=count).astype(np.int64)


def _first_rows(keys: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct key, in their original order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    heads = np.ones(len(keys), dtype=bool)
    heads[1:] = ordered[1:] != ordered[:-1]
    return np.sort(order[heads])


def _sync_figures(
    calls: pd.DataFrame, position: np.ndarray, sync: np.ndarray, tolerance: int, count: int
) -> dict[str, np.ndarray]:
    """Calls, distinct callees, stages and overlaps per request."""
    rows = np.flatnonzero(sync)
    callee = pd.factorize(calls["callee"].iloc[rows])[0].astype(np.int64)
    entry, start, end = position[rows], calls["start_ns"].to_numpy()[rows], calls["end_ns"].to_numpy()[rows]
    order = np.lexsort((end, start, entry))
    entry, start, end, callee = entry[order], start[order], end[order], callee[order]
    first = np.ones(len(entry), dtype=bool)
    first[1:] = entry[1:] != entry[:-1]
    reach = pd.Series(end).groupby(entry).cummax().to_numpy()
    new_stage = first | (start >= np.roll(reach, 1) - tolerance)
    stage = np.cumsum(new_stage) - 1  # numbered across all requests: each request opens one
    stage_size = np.bincount(stage)[stage] if len(stage) else stage
    firsts = _first_rows(entry * (int(callee.max(initial=0)) + 1) + callee)
    first_stages = sorted_unique(stage[firsts])
    stage_entry = entry[new_stage]
    distinct = _counts(entry[firsts], count)
    has_calls = distinct > 0
    return {
        "sync_calls": _counts(entry, count),
        "distinct_callees": distinct,
        "sequential_steps": np.where(has_calls, _counts(stage_entry[first_stages], count) - 1, 0),
        "dependent_pairs": np.where(has_calls, distinct - 1, 0),
        "overlapping_calls": _counts(entry, count, (stage_size > 1).astype(np.float64)),
    }


def _method_figures(
    method: pd.Series, position: np.ndarray, sync: np.ndarray, count: int
) -> dict[str, np.ndarray]:
    """Reads, writes and calls of unknown method per request; spelled once per distinct method."""
    codes, names = pd.factorize(method)
    upper = [str(name).upper() for name in names]
    reads_by_code = np.array([name in READ_METHODS for name in upper] + [False])
    writes_by_code = np.array([name in WRITE_METHODS for name in upper] + [False])
    codes, entry = codes[sync], position[sync]
    reads, writes = reads_by_code[codes], writes_by_code[codes]
    return {
        "reads": _counts(entry, count, reads.astype(np.float64)),
        "writes": _counts(entry, count, writes.astype(np.float64)),
        "unknown_methods": _counts(entry, count, (~(reads | writes)).astype(np.float64)),
    }


def _own_work(tables: CallTables, position: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Database/cache calls and messages published per request."""
    spans, calls = tables.spans, tables.calls
    producer = (spans["kind"] == "producer").to_numpy(dtype=bool)
    db = (calls["kind"] == INFRASTRUCTURE).to_numpy(dtype=bool) & ~producer[calls["caller_row"].to_numpy()]
    db &= position >= 0
    publishing = positions_in(tables.requests["row"].to_numpy(), spans["entry_row"].to_numpy()[producer])
    return {
        "db_calls": _counts(position[db], count),
        "publishes": _counts(publishing[publishing >= 0], count),
    }


def _busy_time(
    calls: pd.DataFrame, position: np.ndarray, low: np.ndarray, high: np.ndarray, count: int
) -> np.ndarray:
    """Length of the union of downstream call intervals, clipped to each request."""
    known = position >= 0
    entry = position[known]
    start = np.clip(calls["start_ns"].to_numpy()[known], low[entry], high[entry])
    end = np.clip(calls["end_ns"].to_numpy()[known], low[entry], high[entry])
    order = np.lexsort((start, entry))
    entry, start, end = entry[order], start[order], end[order]
    reach = pd.Series(end).groupby(entry).cummax().to_numpy()
    previous = np.roll(reach, 1)
    first = np.ones(len(entry), dtype=bool)
    first[1:] = entry[1:] != entry[:-1]
    previous[first] = np.iinfo(np.int64).min
    added = np.maximum(end - np.maximum(start, previous), 0)
    busy = np.zeros(count, dtype=np.int64)
    heads = np.flatnonzero(first)
    if len(heads):
        busy[entry[heads]] = np.add.reduceat(added, heads)  # exact in integers, unlike bincount
    return busy


def summarise_behaviour(
    tables: CallTables, *, thresholds: RoleThresholds = DEFAULT_ROLE_THRESHOLDS
) -> tuple[ServiceBehaviour, ...]:
    """Per service and entry operation, what its requests do downstream; sorted by name."""
    # Most of the work is numpy and Arrow, which release the GIL: independent parts share two threads.
    with ThreadPoolExecutor(max_workers=2) as pool:
        shared_work = pool.submit(_Shared.of, tables)
        links = pool.submit(_Links.of, tables)
        per_request = measure_requests(tables, thresholds=thresholds)
        shared = shared_work.result()
        overall_work = pool.submit(_aggregate, per_request, shared, ["service"])
        operations = _aggregate(per_request, shared, ["service", "operation"])
        overall = overall_work.result()
    by_service: dict[str, list[Behaviour]] = {}
    for behaviour in sorted(operations, key=lambda b: (-b.requests, b.operation or "")):
        by_service.setdefault(behaviour.service, []).append(behaviour)
    overall_by_service = {b.service: b for b in overall}
    names = distinct_names(per_request["service"], tables.calls["callee"], tables.calls["caller"])
    return _with_links(links.result(), names, overall_by_service, by_service)


@dataclass(frozen=True)
class _Shared:
    """What both aggregations (per operation, per service) need, computed once.

    ``trace``: each request's trace as a rank into the sorted ``traces``. ``first_calls``:
    the first synchronous call of each request to each callee, ordered by request and start,
    as request position, callee code (into the sorted ``callees``) and its place among them.
    """

    trace: np.ndarray
    traces: np.ndarray
    first_entry: np.ndarray
    first_callee: np.ndarray
    first_place: np.ndarray
    callees: np.ndarray

    @classmethod
    def of(cls, tables: CallTables) -> _Shared:
        trace, traces = sorted_codes(tables.requests["trace_id"])
        calls = tables.calls
        position = positions_in(tables.requests["row"].to_numpy(), calls["entry_row"].to_numpy())
        sync = np.flatnonzero((calls["kind"] == SYNC).to_numpy(dtype=bool) & (position >= 0))
        callee, callees = pd.factorize(calls["callee"].iloc[sync], sort=True)
        entry = position[sync]
        order = np.lexsort((calls["start_ns"].to_numpy()[sync], entry))
        entry, callee = entry[order], callee[order].astype(np.int64)
        firsts = _first_rows(entry * (int(callee.max(initial=0)) + 1) + callee)
        entry, callee = entry[firsts], callee[firsts]
        return cls(
            trace=trace.astype(np.int64),
            traces=np.asarray(traces, dtype=object),
            first_entry=entry,
            first_callee=callee,
            first_place=np.arange(len(entry)) - np.searchsorted(entry, entry),
            callees=np.asarray(callees, dtype=object),
        )


def _aggregate(per_request: pd.DataFrame, shared: _Shared, keys: list[str]) -> list[Behaviour]:
    # Integer group codes once; every further group-by and split runs on them, not on strings.
    code, key_frame = group_codes(per_request, keys, dropna=False)
    names = list(key_frame.itertuples(index=False, name=None))
    groups = len(names)

    def count(flags: pd.Series | np.ndarray) -> np.ndarray:
        return np.bincount(code, weights=np.asarray(flags, dtype=float), minlength=groups)

    sums = {column: count(per_request[column]) for column in _SUMMED}
    sums["requests"] = np.bincount(code, minlength=groups).astype(float)
    sums["errors"] = count(per_request["error"])
    distinct = per_request["distinct_callees"].to_numpy()
    consumer = (per_request["kind"] == "consumer").to_numpy(dtype=bool)
    server = (per_request["kind"] == "server").to_numpy(dtype=bool)
    sums["forwarding"] = count(distinct > 0)
    sums["multi"] = count(distinct > 1)
    sums["consumed"] = count(consumer)
    sums["served"] = count(server | consumer)
    sums["events"] = count(consumer | (per_request["publishes"].to_numpy() > 0))
    examples = _examples(per_request, shared, code, groups)
    typical = _typical_callees(shared, code, groups)
    records = []
    for g, key in enumerate(names):
        row = {column: values[g] for column, values in sums.items()}
        n = int(row["requests"])
        records.append(
            Behaviour(
                service=str(key[0]),
                operation=str(key[1]) if len(key) > 1 else None,
                requests=n,
                errors=int(row["errors"]),
                calls_per_request=float(row["sync_calls"] / n),
                distinct_callees_per_request=float(row["distinct_callees"] / n),
                forwarding_requests=int(row["forwarding"]),
                multi_callee_requests=int(row["multi"]),
                sequential_share=_ratio(row["sequential_steps"], row["dependent_pairs"]),
                overlapping_call_share=_ratio(row["overlapping_calls"], row["sync_calls"]),
                reads=int(row["reads"]),
                writes=int(row["writes"]),
                unknown_methods=int(row["unknown_methods"]),
                db_calls_per_request=float(row["db_calls"] / n),
                publishes_per_request=float(row["publishes"] / n),
                consumed=int(row["consumed"]),
                served=int(row["served"]),
                event_requests=int(row["events"]),
                self_time_share=_ratio(row["self_ns"], row["duration_ns"]),
                callees=tuple(map(str, typical[g])),
                example_traces=tuple(map(str, examples[g])),
            )
        )
    return records


def _ratio(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else 0.0


def _examples(
    per_request: pd.DataFrame, shared: _Shared, code: np.ndarray, groups: int
) -> list[tuple[object, ...]]:
    """Up to :data:`EXAMPLES` trace ids per group, preferring requests that call the most services."""
    busy = -per_request["distinct_callees"].to_numpy()
    order = np.lexsort((shared.trace, busy, code))
    # A trace counts once per group, at its busiest request.
    kept = order[_first_rows(code[order] * (len(shared.traces) + 1) + shared.trace[order])]
    group = code[kept]
    top = kept[np.arange(len(kept)) - np.searchsorted(group, group) < EXAMPLES]
    ranked = top[np.lexsort((shared.trace[top], code[top]))]
    return split_by_code(code[ranked], shared.traces[shared.trace[ranked]], groups)


def _typical_callees(shared: _Shared, code: np.ndarray, groups: int) -> list[tuple[object, ...]]:
    """Callees most requests of a group call, ordered by where they first appear in a request."""
    stats = (
        pd.DataFrame(
            {"group": code[shared.first_entry], "callee": shared.first_callee, "position": shared.first_place}
        )
        .groupby(["group", "callee"], sort=False)
        .agg(requests=("position", "size"), position=("position", "mean"))
        .reset_index()
    )
    totals = np.bincount(code, minlength=groups)
    stats = stats[stats["requests"].to_numpy() >= _TYPICAL_SHARE * totals[stats["group"].to_numpy()]]
    stats = stats.sort_values(["group", "position", "callee"])
    return split_by_code(stats["group"].to_numpy(), shared.callees[stats["callee"].to_numpy()], groups)


def _shared_codes(keys: pd.Series, values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of two text columns into one sorted vocabulary of their names."""
    codes, names = pd.factorize(pd.concat([keys, values], ignore_index=True), sort=True)
    return (
        codes[: len(keys)].astype(np.int64),
        codes[len(keys) :].astype(np.int64),
        np.asarray(names, dtype=object),
    )


def _distinct_pairs(keys: np.ndarray, values: np.ndarray, names: np.ndarray) -> dict[str, tuple[str, ...]]:
    """Each key's distinct values, sorted by name (codes of a sorted vocabulary sort alike)."""
    if not len(keys):
        return {}
    pairs = sorted_unique(keys * len(names) + values)
    key, value = np.divmod(pairs, len(names))
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return {
        str(names[key[start]]): tuple(str(names[v]) for v in value[start:stop])
        for start, stop in zip(starts, [*starts[1:], len(key)], strict=True)
    }


def _idle(name: str) -> Behaviour:
    """The behaviour of a service that handled no request of its own."""
    return Behaviour(name, None, 0, 0, 0.0, 0.0, 0, 0, 0.0, 0.0, 0, 0, 0, 0.0, 0.0, 0, 0, 0, 0.0, (), ())


@dataclass(frozen=True)
class _Links:
    """Who calls whom, by service name: distinct partners and incoming calls by kind."""

    callers: dict[str, tuple[str, ...]]
    callees: dict[str, tuple[str, ...]]
    stores: dict[str, tuple[str, ...]]
    store_users: dict[str, tuple[str, ...]]
    destinations: dict[str, tuple[str, ...]]
    received: dict[tuple[str, str], int]
    external: dict[str, int]
    emitting: set[str]

    @classmethod
    def of(cls, tables: CallTables) -> _Links:
        calls = tables.calls
        spans = tables.spans
        kind = calls["kind"]
        business = kind.isin((SYNC, MESSAGING)).to_numpy(dtype=bool)
        infrastructure = (kind == INFRASTRUCTURE).to_numpy(dtype=bool)
        caller, callee, parties = _shared_codes(calls["caller"], calls["callee"])
        producers = ((spans["kind"] == "producer") & spans["messaging_destination"].notna()).to_numpy(
            dtype=bool
        )
        service, destination, publishing = _shared_codes(
            spans["service"][producers], spans["messaging_destination"][producers]
        )
        kind_code, kinds = pd.factorize(kind)
        pairs = np.bincount(callee * len(kinds) + kind_code, minlength=len(parties) * len(kinds))
        external = np.bincount(callee[calls["external"].to_numpy(dtype=bool)], minlength=len(parties))
        return cls(
            callers=_distinct_pairs(callee[business], caller[business], parties),
            callees=_distinct_pairs(caller[business], callee[business], parties),
            stores=_distinct_pairs(caller[infrastructure], callee[infrastructure], parties),
            store_users=_distinct_pairs(callee[infrastructure], caller[infrastructure], parties),
            destinations=_distinct_pairs(service, destination, publishing),
            received={
                (str(parties[i // len(kinds)]), str(kinds[i % len(kinds)])): int(n)
                for i, n in enumerate(pairs)
                if n
            },
            external={str(parties[i]): int(n) for i, n in enumerate(external) if n},
            emitting=set(distinct_names(spans["service"])),
        )


def _with_links(
    links: _Links,
    names: list[str],
    overall: dict[str, Behaviour],
    operations: dict[str, list[Behaviour]],
) -> tuple[ServiceBehaviour, ...]:
    """Attach who calls whom to each service's behaviour."""
    return tuple(
        ServiceBehaviour(
            name=name,
            emits_spans=name in links.emitting,
            overall=overall.get(name) or _idle(name),
            operations=tuple(operations.get(name, ())),
            callers=links.callers.get(name, ()),
            callees=links.callees.get(name, ()),
            stores=links.stores.get(name, ()),
            store_users=links.store_users.get(name, ()),
            destinations=links.destinations.get(name, ()),
            received_sync=int(links.received.get((name, SYNC), 0)),
            received_messages=int(links.received.get((name, MESSAGING), 0)),
            received_infrastructure=int(links.received.get((name, INFRASTRUCTURE), 0)),
            received_external=int(links.external.get(name, 0)),
        )
        for name in names
    )
