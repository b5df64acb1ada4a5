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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchscan.analyzer.columnar.frames import rows, values, with_columns
from orchscan.analyzer.columnar.grouping import (
    distinct_names,
    group_codes,
    positions_in,
    sorted_codes,
    sorted_unique,
)
from orchscan.analyzer.requests.calls import INFRASTRUCTURE, MESSAGING, SYNC, CallTables
from orchscan.analyzer.thresholds import DEFAULT_CALL_THRESHOLDS
from orchscan.collectors.side_threads import side_pool

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
    "named",
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
    ``named_requests`` counts requests known only by their span's name (no route, path or RPC
    method); ``core_callee_share`` is the share of requests calling anything that call its most
    called service (0 when none calls anything).
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
    named_requests: int = 0
    core_callee_share: float = 0.0

    @property
    def route_less(self) -> bool:
        """Every request is known only by its span's name: nothing says which kind of request it was."""
        return self.requests > 0 and self.named_requests == self.requests

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
    tables: CallTables, *, tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms
) -> pd.DataFrame:
    """One row per request with the figures of :class:`Behaviour`, so aggregates stay group-bys.

    Columns: the request's ``row``, ``trace_id``, ``service``, ``operation``, ``kind``,
    ``error``, ``named`` plus ``sync_calls``, ``distinct_callees``, ``sequential_steps`` (stages holding a
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
    duration = np.clip(end - start, 0, None)
    sync = (calls["kind"] == SYNC).to_numpy(dtype=bool) & (position >= 0)
    tolerance = int(tolerance_ms * 1_000_000)
    busy = _busy_time(calls, position, start, end, count)
    # One frame built at once: adding two dozen columns one by one costs a copy of its index each.
    return pd.DataFrame(
        {
            "row": requests["row"].to_numpy(),
            "trace_id": requests["trace_id"].array,
            "service": requests["service"].array,
            "operation": requests["operation"].array,
            "kind": requests["kind"].array,
            "error": requests["error"].to_numpy(dtype=bool),
            "named": requests["named"].to_numpy(dtype=bool),
            "duration_ns": duration,
            **_sync_figures(calls, position, sync, tolerance, count),
            **_method_figures(calls["method"], position, sync, count),
            **_own_work(tables, position, count),
            "self_ns": np.clip(duration - busy, 0, None),
        }
    )


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


@dataclass(frozen=True)
class BehaviourPartial:
    """One partition's share of every service's behaviour; partials merge by summing.

    Per (service, entry operation): ``operations`` holds the summed figures of its requests;
    ``examples`` up to :data:`EXAMPLES` of its traces, busiest request first (``busy`` is minus
    the distinct callees); ``typical`` per callee the requests that call it and the sum of its
    place among their first calls. ``links`` counts calls per (caller, callee, kind), with
    ``unanswered`` the synchronous ones no callee span answered; ``destinations`` are (service,
    destination) pairs of published messages; ``emitting`` the services that emitted spans.
    A trace lives in one partition, so per-trace choices (a trace's busiest request) are final.
    """

    operations: pd.DataFrame
    examples: pd.DataFrame
    typical: pd.DataFrame
    links: pd.DataFrame
    destinations: pd.DataFrame
    emitting: pd.DataFrame

    @classmethod
    def merge(cls, parts: Sequence[BehaviourPartial]) -> BehaviourPartial:
        """The partial of the union of the partitions ``parts`` came from."""

        def joined(name: str) -> pd.DataFrame:
            return pd.concat([getattr(part, name) for part in parts], ignore_index=True)

        keys = ["service", "operation"]
        examples = _top_examples(joined("examples"), keys)
        return cls(
            operations=_summed(joined("operations"), keys),
            examples=examples,
            typical=_summed(joined("typical"), [*keys, "callee"]),
            links=_summed(joined("links"), ["caller", "callee", "kind"]),
            destinations=joined("destinations").drop_duplicates(ignore_index=True),
            emitting=joined("emitting").drop_duplicates(ignore_index=True),
        )


def _summed(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows with equal ``keys`` added up (null keys form groups of their own)."""
    return frame.groupby(keys, sort=True, dropna=False, as_index=False).sum()


def _top_examples(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of ``keys``: each trace once at its busiest, the :data:`EXAMPLES` busiest traces."""
    frame = frame.sort_values([*keys, "busy", "trace_id"], kind="stable", na_position="last")
    frame = frame.drop_duplicates([*keys, "trace_id"])
    return frame.groupby(keys, sort=False, dropna=False).head(EXAMPLES).reset_index(drop=True)


def measure_behaviour(
    tables: CallTables, *, tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms
) -> BehaviourPartial:
    """What the requests of one partition (whole traces) contribute to every service's behaviour."""
    with side_pool(2) as pool:
        # Numpy and Arrow work releases the GIL: the link counts run beside the per-request figures.
        links = pool.submit(_links, tables)
        per_request = measure_requests(tables, tolerance_ms=tolerance_ms)
        code, keys = group_codes(per_request, ["service", "operation"], dropna=False)
        operations = _operation_sums(per_request, code, keys)
        examples = _examples(per_request, code, keys)
        typical = _typical(tables, code, keys)
        link_counts, destinations, emitting = links.result()
    return BehaviourPartial(operations, examples, typical, link_counts, destinations, emitting)


def _operation_sums(per_request: pd.DataFrame, code: np.ndarray, keys: pd.DataFrame) -> pd.DataFrame:
    groups = len(keys)

    def count(flags: pd.Series | np.ndarray) -> np.ndarray:
        return np.bincount(code, weights=np.asarray(flags, dtype=float), minlength=groups)

    sums = {column: count(per_request[column]) for column in _SUMMED}
    distinct = per_request["distinct_callees"].to_numpy()
    consumer = (per_request["kind"] == "consumer").to_numpy(dtype=bool)
    server = (per_request["kind"] == "server").to_numpy(dtype=bool)
    sums["requests"] = np.bincount(code, minlength=groups).astype(float)
    sums["errors"] = count(per_request["error"])
    sums["forwarding"] = count(distinct > 0)
    sums["multi"] = count(distinct > 1)
    sums["consumed"] = count(consumer)
    sums["served"] = count(server | consumer)
    sums["events"] = count(consumer | (per_request["publishes"].to_numpy() > 0))
    return with_columns(keys, **sums)


def _examples(per_request: pd.DataFrame, code: np.ndarray, keys: pd.DataFrame) -> pd.DataFrame:
    """Each operation's busiest traces (a trace once, at its busiest request)."""
    trace, traces = sorted_codes(per_request["trace_id"])
    busy = -per_request["distinct_callees"].to_numpy()
    order = np.lexsort((trace, busy, code))
    kept = order[_first_rows(code[order] * (len(traces) + 1) + trace[order])]
    group = code[kept]
    top = kept[np.arange(len(kept)) - np.searchsorted(group, group) < EXAMPLES]
    return with_columns(
        keys.iloc[code[top]].reset_index(drop=True),
        trace_id=np.asarray(traces, dtype=object)[trace[top]],
        busy=busy[top],
    )


def _typical(tables: CallTables, code: np.ndarray, keys: pd.DataFrame) -> pd.DataFrame:
    """Per operation and callee: requests calling it, and the sum of its place among their first calls."""
    calls = tables.calls
    position = positions_in(tables.requests["row"].to_numpy(), calls["entry_row"].to_numpy())
    sync = np.flatnonzero((calls["kind"] == SYNC).to_numpy(dtype=bool) & (position >= 0))
    callee, callees = pd.factorize(calls["callee"].iloc[sync], sort=True)
    entry = position[sync]
    order = np.lexsort((calls["start_ns"].to_numpy()[sync], entry))
    entry, callee = entry[order], callee[order].astype(np.int64)
    firsts = _first_rows(entry * (int(callee.max(initial=0)) + 1) + callee)
    entry, callee = entry[firsts], callee[firsts]
    place = np.arange(len(entry)) - np.searchsorted(entry, entry)
    # Pairs of (operation group, callee) numbered in sorted order, as a sorted group-by would.
    width = max(len(callees), 1)
    pairs, pair = np.unique(code[entry].astype(np.int64) * width + callee, return_inverse=True)
    group, callee = np.divmod(pairs, width)
    return with_columns(
        keys.iloc[group].reset_index(drop=True),
        callee=np.asarray(callees, dtype=object)[callee],
        requests=np.bincount(pair, minlength=len(pairs)).astype(np.int64),
        position=np.bincount(pair, weights=place, minlength=len(pairs)).astype(np.int64),
    )


def _links(tables: CallTables) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Calls per (caller, callee, kind), published destinations, and the services emitting spans."""
    calls, spans = tables.calls, tables.spans
    unanswered = (calls["callee_row"].to_numpy() < 0) & (calls["kind"] == SYNC).to_numpy(dtype=bool)
    code, links = group_codes(calls, ["caller", "callee", "kind"], dropna=False)
    links = with_columns(
        links,
        calls=np.bincount(code, minlength=len(links)).astype(np.int64),
        unanswered=np.bincount(code, weights=unanswered, minlength=len(links)).astype(np.int64),
    )
    producers = ((spans["kind"] == "producer") & spans["messaging_destination"].notna()).to_numpy(dtype=bool)
    destinations = pd.DataFrame(
        {
            "service": spans["service"][producers].astype(object).to_numpy(),
            "destination": spans["messaging_destination"][producers].astype(object).to_numpy(),
        }
    ).drop_duplicates(ignore_index=True)
    emitting = pd.DataFrame({"service": distinct_names(spans["service"])})
    return links, destinations, emitting


def summarise_behaviour(partial: BehaviourPartial) -> tuple[ServiceBehaviour, ...]:
    """Per service and entry operation, what its requests do downstream; sorted by name."""
    operations = _behaviours(partial.operations, partial.examples, partial.typical, ["service", "operation"])
    service_sums = _summed(partial.operations.drop(columns="operation"), ["service"])
    service_examples = _top_examples(partial.examples.drop(columns="operation"), ["service"])
    service_typical = _summed(partial.typical.drop(columns="operation"), ["service", "callee"])
    overall = _behaviours(service_sums, service_examples, service_typical, ["service"])
    by_service: dict[str, list[Behaviour]] = {}
    for behaviour in sorted(operations, key=lambda b: (-b.requests, b.operation or "")):
        by_service.setdefault(behaviour.service, []).append(behaviour)
    overall_by_service = {b.service: b for b in overall}
    links = partial.links
    names = sorted(
        set(values(partial.operations["service"].dropna()))
        | set(values(links["caller"].dropna()))
        | set(values(links["callee"].dropna()))
    )
    return _with_links(_Links.of(partial), names, overall_by_service, by_service)


def _behaviours(
    sums: pd.DataFrame, examples: pd.DataFrame, typical: pd.DataFrame, keys: list[str]
) -> list[Behaviour]:
    """One :class:`Behaviour` per row of ``sums`` (keyed by ``keys``), from merged partials."""

    def per_group(frame: pd.DataFrame, column: str) -> dict[tuple[object, ...], tuple[str, ...]]:
        found: dict[tuple[object, ...], list[str]] = {}
        for key, value in zip(_group_keys(frame, keys), values(frame[column]), strict=True):
            found.setdefault(key, []).append(str(value))
        return {key: tuple(values) for key, values in found.items()}

    totals = sums.set_index(keys)["requests"]
    typical = typical.assign(
        total=totals.reindex(
            pd.MultiIndex.from_frame(typical[keys]) if len(keys) > 1 else typical[keys[0]]
        ).to_numpy()
    )
    most = typical.groupby(keys, sort=False, dropna=False)["requests"].max()
    core = dict(zip(_group_keys(most.index.to_frame(index=False), keys), most.tolist(), strict=True))
    typical = typical[typical["requests"].to_numpy() >= _TYPICAL_SHARE * typical["total"].to_numpy()]
    typical = typical.assign(mean=typical["position"] / typical["requests"])
    callees = per_group(typical.sort_values([*keys, "mean", "callee"], na_position="last"), "callee")
    traces = per_group(examples.sort_values([*keys, "trace_id"], na_position="last"), "trace_id")
    records = []
    for row in sums.to_dict("records"):
        key = tuple(_key(row[k]) for k in keys)
        n = int(row["requests"])
        records.append(
            Behaviour(
                service=str(row["service"]),
                operation=str(row["operation"]) if len(keys) > 1 else None,
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
                callees=callees.get(key, ()),
                example_traces=traces.get(key, ()),
                named_requests=int(row["named"]),
                core_callee_share=_ratio(core.get(key, 0), row["forwarding"]),
            )
        )
    return records


def _key(value: object) -> object:
    """A group key value; nulls (NaN or None) compare equal as None."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _group_keys(frame: pd.DataFrame, keys: list[str]) -> Iterator[tuple[object, ...]]:
    """Each row's values of ``keys`` as a tuple, nulls as None (see :func:`_key`)."""
    columns = [[_key(value) for value in values(frame[key])] for key in keys]
    return zip(*columns, strict=True)


def _ratio(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else 0.0


def _distinct_pairs(keys: pd.Series, values: pd.Series) -> dict[str, tuple[str, ...]]:
    """Each key's distinct values, sorted by name."""
    pairs = pd.DataFrame({"key": keys.astype(str), "value": values.astype(str)}).drop_duplicates()
    pairs = pairs.sort_values(["key", "value"])
    found: dict[str, list[str]] = {}
    for key, value in rows(pairs):
        found.setdefault(key, []).append(value)
    return {key: tuple(values) for key, values in found.items()}


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
    def of(cls, partial: BehaviourPartial) -> _Links:
        links = partial.links.dropna(subset=["caller", "callee"])
        business = links["kind"].isin((SYNC, MESSAGING))
        infrastructure = links["kind"] == INFRASTRUCTURE
        emitting = set(partial.emitting["service"])
        received = links.groupby(["callee", "kind"], sort=True)["calls"].sum()
        # A peer that emits spans anywhere in the input is instrumented: when a call to it went
        # unanswered, its spans were lost (sampled away), so it is not an external system.
        unanswered = links[~links["callee"].isin(emitting)].groupby("callee", sort=True)["unanswered"].sum()
        return cls(
            callers=_distinct_pairs(links["callee"][business], links["caller"][business]),
            callees=_distinct_pairs(links["caller"][business], links["callee"][business]),
            stores=_distinct_pairs(links["caller"][infrastructure], links["callee"][infrastructure]),
            store_users=_distinct_pairs(links["callee"][infrastructure], links["caller"][infrastructure]),
            destinations=_distinct_pairs(
                partial.destinations["service"], partial.destinations["destination"]
            ),
            received={(str(callee), str(kind)): int(n) for (callee, kind), n in received.items() if n},
            external={str(callee): int(n) for callee, n in unanswered.items() if n},
            emitting=emitting,
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
