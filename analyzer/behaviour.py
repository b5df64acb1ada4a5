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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzer.calls import INFRASTRUCTURE, MESSAGING, SYNC, CallTables
from analyzer.grouping import collect, distinct_names, split_by_code, tuples_by_code
from analyzer.thresholds import DEFAULT_THRESHOLDS, RoleThresholds

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


def measure_requests(tables: CallTables, *, thresholds: RoleThresholds = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """One row per request with the figures of :class:`Behaviour`, so aggregates stay group-bys.

    Columns: the request's ``row``, ``trace_id``, ``service``, ``operation``, ``kind``,
    ``error`` plus ``sync_calls``, ``distinct_callees``, ``sequential_steps`` (stages holding a
    first call to a service, minus one), ``dependent_pairs`` (distinct callees minus one),
    ``overlapping_calls``, ``reads``, ``writes``, ``unknown_methods``, ``db_calls``,
    ``publishes``, ``duration_ns``, ``self_ns``.
    """
    requests = tables.requests
    calls = tables.calls
    frame = pd.DataFrame(
        {
            "row": requests["row"].to_numpy(),
            "trace_id": requests["trace_id"].to_numpy(),
            "service": requests["service"].to_numpy(),
            "operation": requests["operation"].astype(object).to_numpy(),
            "kind": requests["kind"].to_numpy(),
            "error": requests["error"].to_numpy(dtype=bool),
            "duration_ns": (requests["end_ns"] - requests["start_ns"]).clip(lower=0).to_numpy(),
        }
    )
    frame = frame.set_index("row", drop=False)
    sync = calls[calls["kind"].to_numpy() == SYNC]
    tolerance = int(thresholds.overlap_tolerance_ms * 1_000_000)
    per_request = [
        _sync_figures(sync, tolerance),
        _method_figures(sync),
        _own_work(tables),
        _busy_time(tables, frame),
    ]
    for figures in per_request:
        frame = frame.join(figures)
    for column in _SUMMED[:-2]:
        frame[column] = frame[column].fillna(0).astype(np.int64)
    frame["self_ns"] = (frame["duration_ns"] - frame.pop("busy_ns").fillna(0).astype(np.int64)).clip(lower=0)
    return frame.reset_index(drop=True)


def _sync_figures(sync: pd.DataFrame, tolerance: int) -> pd.DataFrame:
    """Calls, distinct callees, stages and overlaps per request."""
    ordered = sync.sort_values(["entry_row", "start_ns", "end_ns"], kind="stable")
    entry = ordered["entry_row"].to_numpy()
    start = ordered["start_ns"].to_numpy()
    end = ordered["end_ns"].to_numpy()
    first = np.ones(len(entry), dtype=bool)
    first[1:] = entry[1:] != entry[:-1]
    reach = pd.Series(end).groupby(entry).cummax().to_numpy()
    previous_reach = np.roll(reach, 1)
    new_stage = first | (start >= previous_reach - tolerance)
    stage = pd.Series(new_stage.astype(np.int64)).groupby(entry).cumsum().to_numpy()
    stage_size = (
        pd.Series(np.ones(len(entry), dtype=np.int64)).groupby([entry, stage]).transform("size").to_numpy()
    )
    staged = pd.DataFrame({"entry_row": entry, "callee": ordered["callee"].to_numpy(), "stage": stage})
    firsts = staged.drop_duplicates(["entry_row", "callee"])
    grouped = firsts.groupby("entry_row")
    distinct = grouped["callee"].size()
    first_stages = grouped["stage"].nunique()
    calls = pd.Series(entry).value_counts()
    overlapping = pd.Series(stage_size > 1).groupby(entry).sum()
    return pd.DataFrame(
        {
            "sync_calls": calls,
            "distinct_callees": distinct,
            "sequential_steps": first_stages - 1,
            "dependent_pairs": distinct - 1,
            "overlapping_calls": overlapping,
        }
    )


def _method_figures(sync: pd.DataFrame) -> pd.DataFrame:
    method = sync["method"].astype(object).str.upper()
    flags = pd.DataFrame(
        {
            "reads": method.isin(READ_METHODS).to_numpy(),
            "writes": method.isin(WRITE_METHODS).to_numpy(),
        }
    )
    flags["unknown_methods"] = ~(flags["reads"] | flags["writes"])
    return flags.groupby(sync["entry_row"].to_numpy()).sum()


def _own_work(tables: CallTables) -> pd.DataFrame:
    """Database/cache calls and messages published per request."""
    spans, calls = tables.spans, tables.calls
    producer_rows = spans["kind"].to_numpy() == "producer"
    caller_kind = spans["kind"].to_numpy()[calls["caller_row"].to_numpy()]
    db = (calls["kind"].to_numpy() == INFRASTRUCTURE) & (caller_kind != "producer")
    return pd.DataFrame(
        {
            "db_calls": pd.Series(calls["entry_row"].to_numpy()[db]).value_counts(),
            "publishes": pd.Series(spans["entry_row"].to_numpy()[producer_rows]).value_counts(),
        }
    )


def _busy_time(tables: CallTables, frame: pd.DataFrame) -> pd.DataFrame:
    """Length of the union of downstream call intervals, clipped to each request."""
    calls = tables.calls
    requests = tables.requests.set_index("row")
    entry = calls["entry_row"].to_numpy()
    known = np.isin(entry, requests.index.to_numpy())
    entry = entry[known]
    low = requests["start_ns"].reindex(entry).to_numpy()
    high = requests["end_ns"].reindex(entry).to_numpy()
    start = np.clip(calls["start_ns"].to_numpy()[known], low, high)
    end = np.clip(calls["end_ns"].to_numpy()[known], low, high)
    order = np.lexsort((start, entry))
    entry, start, end = entry[order], start[order], end[order]
    reach = pd.Series(end).groupby(entry).cummax().to_numpy()
    previous = np.roll(reach, 1)
    first = np.ones(len(entry), dtype=bool)
    first[1:] = entry[1:] != entry[:-1]
    previous[first] = np.iinfo(np.int64).min
    added = np.maximum(end - np.maximum(start, previous), 0)
    return pd.DataFrame({"busy_ns": pd.Series(added).groupby(entry).sum()})


def summarise_behaviour(
    tables: CallTables, *, thresholds: RoleThresholds = DEFAULT_THRESHOLDS
) -> tuple[ServiceBehaviour, ...]:
    """Per service and entry operation, what its requests do downstream; sorted by name."""
    per_request = measure_requests(tables, thresholds=thresholds)
    operations = _aggregate(per_request, tables, ["service", "operation"])
    overall = _aggregate(per_request, tables, ["service"])
    by_service: dict[str, list[Behaviour]] = {}
    for behaviour in sorted(operations, key=lambda b: (-b.requests, b.operation or "")):
        by_service.setdefault(behaviour.service, []).append(behaviour)
    overall_by_service = {b.service: b for b in overall}
    names = distinct_names(per_request["service"], tables.calls["callee"], tables.calls["caller"])
    return _with_links(tables, names, overall_by_service, by_service)


def _aggregate(per_request: pd.DataFrame, tables: CallTables, keys: list[str]) -> list[Behaviour]:
    grouped = per_request.groupby(keys, sort=True, dropna=False)
    # Integer group codes once; every further group-by and split runs on them, not on strings.
    code = grouped.ngroup().to_numpy()
    names = list(grouped.size().index)
    groups = len(names)

    def count(flags: pd.Series | np.ndarray) -> np.ndarray:
        return np.bincount(code, weights=np.asarray(flags, dtype=float), minlength=groups)

    sums = {column: count(per_request[column]) for column in _SUMMED}
    sums["requests"] = np.bincount(code, minlength=groups).astype(float)
    sums["errors"] = count(per_request["error"])
    distinct = per_request["distinct_callees"].to_numpy()
    kind = per_request["kind"].to_numpy(dtype=object)
    sums["forwarding"] = count(distinct > 0)
    sums["multi"] = count(distinct > 1)
    sums["consumed"] = count(kind == "consumer")
    sums["served"] = count((kind == "server") | (kind == "consumer"))
    sums["events"] = count((kind == "consumer") | (per_request["publishes"].to_numpy() > 0))
    examples = _examples(per_request, code, groups)
    typical = _typical_callees(per_request, tables, code, groups)
    records = []
    for g, key in enumerate(names):
        key_tuple = key if isinstance(key, tuple) else (key,)
        row = {column: values[g] for column, values in sums.items()}
        n = int(row["requests"])
        records.append(
            Behaviour(
                service=str(key_tuple[0]),
                operation=str(key_tuple[1]) if len(key_tuple) > 1 else None,
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


def _examples(per_request: pd.DataFrame, code: np.ndarray, groups: int) -> list[tuple[object, ...]]:
    """Up to :data:`EXAMPLES` trace ids per group, preferring requests that call the most services."""
    trace, traces = pd.factorize(per_request["trace_id"], sort=True)
    ranked = pd.DataFrame({"code": code, "busy": -per_request["distinct_callees"].to_numpy(), "trace": trace})
    ranked = ranked.sort_values(["code", "busy", "trace"], kind="stable").drop_duplicates(["code", "trace"])
    ranked = ranked[ranked.groupby("code", sort=False).cumcount().to_numpy() < EXAMPLES]
    picked = np.asarray(traces, dtype=object)[ranked["trace"].to_numpy()]
    return tuples_by_code(ranked["code"].to_numpy(), picked, groups)


def _typical_callees(
    per_request: pd.DataFrame, tables: CallTables, code: np.ndarray, groups: int
) -> list[tuple[object, ...]]:
    """Callees most requests of a group call, ordered by where they first appear in a request."""
    sync = tables.calls[tables.calls["kind"].to_numpy() == SYNC]
    callee, callees = pd.factorize(sync["callee"], sort=True)
    entry = sync["entry_row"].to_numpy()
    order = np.lexsort((sync["start_ns"].to_numpy(), entry))
    entry, callee = entry[order], callee[order]
    first = ~pd.DataFrame({"entry": entry, "callee": callee}).duplicated().to_numpy()
    entry, callee = entry[first], callee[first]
    position = np.arange(len(entry)) - np.searchsorted(entry, entry)
    group_of_row = np.full(int(per_request["row"].to_numpy().max(initial=0)) + 1, -1, dtype=np.int64)
    group_of_row[per_request["row"].to_numpy()] = code
    group = group_of_row[entry] if len(entry) else entry
    stats = (
        pd.DataFrame({"group": group, "callee": callee, "position": position})
        .groupby(["group", "callee"], sort=False)
        .agg(requests=("position", "size"), position=("position", "mean"))
        .reset_index()
    )
    totals = np.bincount(code, minlength=groups)
    stats = stats[stats["requests"].to_numpy() >= _TYPICAL_SHARE * totals[stats["group"].to_numpy()]]
    stats = stats.sort_values(["group", "position", "callee"])
    names = np.asarray(callees, dtype=object)[stats["callee"].to_numpy()]
    return split_by_code(stats["group"].to_numpy(), names, groups)


def _idle(name: str) -> Behaviour:
    """The behaviour of a service that handled no request of its own."""
    return Behaviour(name, None, 0, 0, 0.0, 0.0, 0, 0, 0.0, 0.0, 0, 0, 0, 0.0, 0.0, 0, 0, 0, 0.0, (), ())


def _with_links(
    tables: CallTables,
    names: list[str],
    overall: dict[str, Behaviour],
    operations: dict[str, list[Behaviour]],
) -> tuple[ServiceBehaviour, ...]:
    """Attach who calls whom: distinct partners and incoming calls by kind."""
    calls = tables.calls
    business = calls[calls["kind"].isin((SYNC, MESSAGING))]
    infrastructure = calls[calls["kind"] == INFRASTRUCTURE]
    spans = tables.spans
    producers = spans[(spans["kind"] == "producer") & spans["messaging_destination"].notna()]

    def distinct(frame: pd.DataFrame, key: str, value: str) -> dict[str, tuple[str, ...]]:
        pairs = frame[[key, value]].drop_duplicates().sort_values([key, value])
        return {str(name): tuple(map(str, group)) for name, group in collect(pairs, [key], value).items()}

    callers = distinct(business, "callee", "caller")
    callees = distinct(business, "caller", "callee")
    stores = distinct(infrastructure, "caller", "callee")
    store_users = distinct(infrastructure, "callee", "caller")
    destinations = distinct(producers, "service", "messaging_destination")
    received = calls.groupby(["callee", "kind"]).size().to_dict()
    external = calls[calls["external"].to_numpy(dtype=bool)]["callee"].value_counts().to_dict()
    emitting = set(distinct_names(spans["service"]))
    return tuple(
        ServiceBehaviour(
            name=name,
            emits_spans=name in emitting,
            overall=overall.get(name) or _idle(name),
            operations=tuple(operations.get(name, ())),
            callers=callers.get(name, ()),
            callees=callees.get(name, ()),
            stores=stores.get(name, ()),
            store_users=store_users.get(name, ()),
            destinations=destinations.get(name, ()),
            received_sync=int(received.get((name, SYNC), 0)),
            received_messages=int(received.get((name, MESSAGING), 0)),
            received_infrastructure=int(received.get((name, INFRASTRUCTURE), 0)),
            received_external=int(external.get(name, 0)),
        )
        for name in names
    )
