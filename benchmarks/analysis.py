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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from landscape import build_table  # noqa: E402

from orchscan.analyzer.landscape.behaviour import measure_behaviour, summarise_behaviour  # noqa: E402
from orchscan.analyzer.landscape.graph import (  # noqa: E402
    EdgePartial,
    build_edges,
    build_operation_graph,
    build_service_graph,
)
from orchscan.analyzer.landscape.roles import classify_behaviours  # noqa: E402
from orchscan.analyzer.requests.calls import build_call_tables  # noqa: E402
from orchscan.collectors.traces.ingest import ingest  # noqa: E402


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
    roles_s, roles = _timed(lambda: classify_behaviours(summarise_behaviour(measure_behaviour(tables))))
    edges_s, edges = _timed(lambda: build_edges(EdgePartial.of(tables.calls)))
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
