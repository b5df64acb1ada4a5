"""Cost of the call, graph and role analysis, measured against the cost of ingesting the spans.

Builds a span table directly with pyarrow and numpy (default 1,000,000 spans, about 300
services) from request shapes seen in real landscapes: orchestrators calling four services one
after another, each with its own database; gateways forwarding to one of many backends;
composers reading five services in parallel; scheduled jobs publishing events consumed by two
services (one by parent, one by span link); payments calling an uninstrumented provider; and
leaf lookups. Then times ``build_call_tables``, the behaviour and role classification and both
graphs, and compares with ingesting the ingest benchmark's OTLP protobuf file of the same size
(target: analysis at most 50% of ingest time). The table comes in batches of the size ingest
hands over. The analysis runs independent numpy and Arrow work on a second thread, as ingest
runs ``--jobs`` worker processes, so both sides of the share use the same cores; CPU seconds are
printed beside wall time. Each stage is timed once, as a scan runs it (the first call pays for
fresh memory). Peak memory is the process's maximum RSS.

    python benchmarks/analysis.py                      # 1,000,000 spans
    python benchmarks/analysis.py --spans 200000 --no-ingest
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from orchscan.analyzer.landscape.graph import build_edges, build_operation_graph, build_service_graph  # noqa: E402
from orchscan.analyzer.landscape.roles import classify_services  # noqa: E402
from orchscan.analyzer.requests.calls import build_call_tables  # noqa: E402
from orchscan.collectors.model.spans import SCHEMA  # noqa: E402
from orchscan.collectors.traces.ingest import ingest  # noqa: E402

BASE_NS = 1_754_000_000_000_000_000
INGEST_BATCH_SPANS = 13_000
MS = 1_000_000

#: Service pools: how many of each kind the landscape has (about 300 in all).
POOLS = {
    "orchestrator": 12,
    "gateway": 4,
    "composer": 6,
    "job": 8,
    "listener": 20,
    "backend": 250,
    "external": 6,
}


@dataclass(frozen=True)
class SpanShape:
    """One span of a request shape: its parent (index in the shape), who emits it and when."""

    parent: int
    slot: str
    kind: str
    name: str
    at: float
    ms: float
    method: str | None = None
    route: str | None = None
    db: str | None = None
    destination: str | None = None
    peer: str | None = None
    link_to: int | None = None


def _call(
    parent: int, caller: str, callee: str, method: str, route: str, at: float, ms: float
) -> list[SpanShape]:
    """Client span in the caller, server span below it in the callee (indices parent+1, parent+2)."""
    return [
        SpanShape(parent, caller, "client", method, at, ms, method=method, peer=callee),
        SpanShape(-2, callee, "server", f"{method} {route}", at + 0.2, ms - 0.4, method=method, route=route),
    ]


def _orchestration() -> list[SpanShape]:
    shape = [SpanShape(-1, "orchestrator", "server", "POST /orders", 0, 220, method="POST", route="/orders")]
    shape.append(SpanShape(0, "orchestrator", "client", "INSERT", 2, 4, db="postgresql"))
    for i, (method, route) in enumerate((("POST", "/a"), ("POST", "/b"), ("GET", "/c"), ("POST", "/d"))):
        at = 10 + 50 * i
        shape += _call(0, "orchestrator", f"backend{i}", method, route, at, 40)
        shape.append(
            SpanShape(len(shape) - 1, f"backend{i}", "client", "SELECT", at + 5, 10, db="postgresql")
        )
    return shape


def _gateway() -> list[SpanShape]:
    shape = [SpanShape(-1, "gateway", "server", "GET /api/items", 0, 30, method="GET", route="/api/items")]
    shape += _call(0, "gateway", "backend0", "GET", "/items/{id}", 1, 25)
    shape.append(SpanShape(2, "backend0", "client", "SELECT", 3, 8, db="postgresql"))
    return shape


def _composition() -> list[SpanShape]:
    shape = [SpanShape(-1, "composer", "server", "GET /page", 0, 60, method="GET", route="/page")]
    for i in range(5):
        shape += _call(0, "composer", f"backend{i}", "GET", f"/part{i}", 1 + 0.1 * i, 40)
    return shape


def _events() -> list[SpanShape]:
    return [
        SpanShape(-1, "job", "internal", "nightly run", 0, 20),
        SpanShape(0, "job", "producer", "publish", 2, 2, destination="events"),
        SpanShape(1, "listener0", "consumer", "process", 5, 10, destination="events"),
        SpanShape(2, "listener0", "client", "INSERT", 6, 3, db="postgresql"),
        SpanShape(-1, "listener1", "consumer", "process", 30, 10, destination="events", link_to=1),
    ]


def _payment() -> list[SpanShape]:
    shape = [SpanShape(-1, "backend0", "server", "POST /charges", 0, 80, method="POST", route="/charges")]
    shape.append(SpanShape(0, "backend0", "client", "POST", 5, 60, method="POST", peer="external0"))
    return shape


def _lookup() -> list[SpanShape]:
    return [
        SpanShape(-1, "backend0", "server", "GET /items/{id}", 0, 12, method="GET", route="/items/{id}"),
        SpanShape(0, "backend0", "internal", "load", 1, 10),
        SpanShape(1, "backend0", "client", "GET", 2, 3, db="redis"),
    ]


#: Request shapes and the share of traces each makes up.
MIX: list[tuple[Callable[[], list[SpanShape]], float]] = [
    (_orchestration, 0.2),
    (_gateway, 0.3),
    (_composition, 0.1),
    (_events, 0.1),
    (_payment, 0.1),
    (_lookup, 0.2),
]


def _resolve(shape: list[SpanShape]) -> list[SpanShape]:
    """Replace the ``-2`` placeholder of server spans by the preceding client span's index."""
    return [
        SpanShape(**{**span.__dict__, "parent": i - 1}) if span.parent == -2 else span
        for i, span in enumerate(shape)
    ]


def build_table(spans: int, seed: int = 7) -> pa.Table:
    """A span table of about ``spans`` rows drawn from :data:`MIX`, ids and times vectorised."""
    rng = np.random.default_rng(seed)
    shapes = [(_resolve(make()), share) for make, share in MIX]
    mean = sum(len(shape) * share for shape, share in shapes)
    traces = int(spans / mean)
    pools = {kind: np.array([f"{kind}-{i:03d}" for i in range(n)], dtype=object) for kind, n in POOLS.items()}
    parts: list[dict[str, Any]] = []
    first_trace = 0
    for shape, share in shapes:
        n = int(traces * share)
        parts.append(_expand(shape, n, first_trace, pools, rng))
        first_trace += n
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    rows = len(columns["trace_id"])
    arrays = []
    for field in SCHEMA:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], field.type, from_pandas=True))
        elif field.name == "idempotency_key":
            arrays.append(pa.array(np.zeros(rows, dtype=bool)))
        else:
            arrays.append(pa.nulls(rows, field.type))
    table = pa.Table.from_arrays(arrays, schema=SCHEMA)
    # In batches the size ingest hands over (4 MB of protobuf, about 13,000 spans), not one chunk.
    return pa.Table.from_batches(table.to_batches(max_chunksize=INGEST_BATCH_SPANS), schema=SCHEMA)


def _ids(numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(np.char.mod("%x", numbers), width).astype(object)


def _expand(
    shape: list[SpanShape], n: int, first_trace: int, pools: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, Any]:
    """``n`` traces of one shape: every span of the shape repeated per trace, services drawn per trace."""
    k = len(shape)
    trace_numbers = np.repeat(np.arange(first_trace, first_trace + n), k)
    trace_ids = _ids(trace_numbers + 1, 32)
    span_numbers = trace_numbers * 64 + np.tile(np.arange(k), n) + 1
    span_ids = _ids(span_numbers, 16)
    slots = sorted({span.slot for span in shape} | {span.peer for span in shape if span.peer})
    drawn = {}
    for slot in slots:
        pool = pools[slot.rstrip("0123456789")]
        drawn[slot] = pool[rng.integers(0, len(pool), n)]
    service = np.empty(n * k, dtype=object)
    peer = np.full(n * k, None, dtype=object)
    parent = np.full(n * k, None, dtype=object)
    links = np.full(n * k, None, dtype=object)
    offsets = rng.integers(0, 5 * MS, n)
    start = np.empty(n * k, dtype=np.int64)
    end = np.empty(n * k, dtype=np.int64)
    base = BASE_NS + np.arange(first_trace, first_trace + n, dtype=np.int64) * 10 * MS + offsets
    columns: dict[str, Any] = {}
    for name in (
        "kind",
        "name",
        "http_method",
        "http_route",
        "db_system",
        "messaging_destination",
        "server_address",
    ):
        columns[name] = np.full(n * k, None, dtype=object)
    for i, span in enumerate(shape):
        at = slice(i, n * k, k)
        service[at] = drawn[span.slot]
        jitter = rng.integers(0, MS // 2, n)
        start[at] = base + int(span.at * MS) + jitter
        end[at] = start[at] + int(span.ms * MS)
        if span.parent >= 0:
            parent[at] = span_ids[span.parent :: k]
        if span.peer:
            peer[at] = drawn[span.peer]
            columns["server_address"][at] = drawn[span.peer]
        if span.db:
            columns["server_address"][at] = drawn[span.slot] + "-db"
        if span.link_to is not None:
            links[at] = [
                [{"trace_id": t, "span_id": s}]
                for t, s in zip(trace_ids[span.link_to :: k], span_ids[span.link_to :: k], strict=True)
            ]
        columns["kind"][at] = span.kind
        columns["name"][at] = span.name
        columns["http_method"][at] = span.method
        columns["http_route"][at] = span.route
        columns["db_system"][at] = span.db
        columns["messaging_destination"][at] = span.destination
    # A linked consumer starts its own trace (same number as its producer's, other high bits).
    for i, span in enumerate(shape):
        if span.link_to is not None:
            trace_ids[i::k] = "f" + _ids(trace_numbers[i::k] + 1, 31)
    columns.update(
        trace_id=trace_ids,
        span_id=span_ids,
        parent_span_id=parent,
        service=service,
        peer_service=peer,
        start_ns=start,
        end_ns=end,
        status=np.full(n * k, "unset", dtype=object),
        messaging_system=np.where(columns["messaging_destination"] != None, "kafka", None),  # noqa: E711
        links=links,
        source=np.full(n * k, "synthetic", dtype=object),
    )
    return columns


def _cpu() -> float:
    """CPU seconds of this process and its finished children (ingest's worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Build the table, time each analysis stage, compare with ingest and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-ingest", action="store_true", help="skip the ingest comparison")
    args = parser.parse_args()

    generate, table = _timed(lambda: build_table(args.spans))
    services = len(set(table["service"].to_pylist()))
    print(f"synthetic table: {table.num_rows:,} spans, {services} services, built in {generate:.1f} s")
    print(f"table size: {table.nbytes / 2**20:.0f} MiB; peak RSS before analysis: {_rss_mb():.0f} MiB")
    # Wall time suffers when other work shares the machine; CPU time is reported beside it.
    cpu_start = _cpu()
    calls_s, tables = _timed(lambda: build_call_tables(table))
    roles_s, roles = _timed(lambda: classify_services(tables))
    edges_s, edges = _timed(lambda: build_edges(tables))
    graph_s, _ = _timed(lambda: build_service_graph(tables))
    ops_s, operations = _timed(lambda: build_operation_graph(tables))
    total = calls_s + roles_s + edges_s + graph_s + ops_s
    print(
        f"build_call_tables: {calls_s:.2f} s ({len(tables.requests):,} requests, {len(tables.calls):,} calls)"
    )
    print(f"behaviour + roles: {roles_s:.2f} s ({len(roles)} services)")
    print(f"edges: {edges_s:.2f} s ({len(edges)}); service graph: {graph_s:.2f} s; ", end="")
    print(f"operation graph: {ops_s:.2f} s ({operations.number_of_edges()} edges)")
    analysis_cpu = _cpu() - cpu_start
    print(f"analysis total: {total:.2f} s wall, {analysis_cpu:.2f} s CPU; peak RSS: {_rss_mb():.0f} MiB")
    counts: dict[str, int] = {}
    for role in roles:
        counts[role.role] = counts.get(role.role, 0) + 1
    print("roles:", ", ".join(f"{name} {count}" for name, count in sorted(counts.items())))
    if args.no_ingest:
        return

    from ingest import write_inputs  # the ingest benchmark's synthetic landscape

    path = write_inputs(args.spans, with_jaeger=False)["otlp-proto"]
    cpu_start = _cpu()
    ingest_s, result = _timed(lambda: ingest([path], jobs=args.jobs))
    ingest_cpu = _cpu() - cpu_start
    per_million = ingest_s * 1_000_000 / result.spans.num_rows
    share = total * 1_000_000 / table.num_rows / per_million
    print(
        f"ingest: {result.spans.num_rows:,} spans in {ingest_s:.2f} s wall, "
        f"{ingest_cpu:.2f} s CPU (jobs={args.jobs})"
    )
    print(f"analysis per 1M spans: {share:.0%} of ingest wall time per 1M spans (target <= 50%)")
    cpu_share = analysis_cpu * 1_000_000 / table.num_rows / (ingest_cpu * 1_000_000 / result.spans.num_rows)
    print(f"analysis CPU per 1M spans: {cpu_share:.0%} of ingest CPU per 1M spans")


if __name__ == "__main__":
    main()
