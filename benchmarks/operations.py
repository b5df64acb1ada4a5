"""Cost of tying spans to OpenAPI operations, measured against the cost of ingesting them.

Builds a span table directly with pyarrow (default 1,000,000 rows; half server spans with routes,
the rest client spans with concrete paths carrying ids, some undocumented calls) against specs
with a few hundred operations written as OpenAPI YAML and loaded by the real loader. Then ingests
the ingest benchmark's synthetic OTLP protobuf file of the same size and reports matching time as
a share of ingest time (target: at most 20%). Matching runs its row-parallel kernels on Arrow's
CPU count of threads, as ingest runs ``--jobs`` worker processes (default: the CPU count), so
both sides of the share use the same cores.

    python benchmarks/operations.py                       # 1,000,000 rows, 300 operations
    python benchmarks/operations.py --rows 200000 --ingest-spans 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from orchscan.analyzer.specs.operations import index_operations, match_operations, measure_coverage  # noqa: E402
from orchscan.collectors.model.spans import SCHEMA  # noqa: E402
from orchscan.collectors.openapi import bind_specs, load_specs  # noqa: E402
from orchscan.collectors.traces.ingest import ingest  # noqa: E402

METHODS = ("GET", "POST", "PUT", "DELETE")


def templates(service_index: int, per_service: int) -> list[tuple[str, str]]:
    """(method, path template) pairs: resources with literal, templated and nested segments."""
    found: list[tuple[str, str]] = []
    resource = 0
    while len(found) < per_service:
        base = f"/api/res{service_index}x{resource}"
        for method, path in (
            ("GET", base),
            ("POST", base),
            ("GET", base + "/{id}"),
            ("PUT", base + "/{id}"),
            ("DELETE", base + "/{id}"),
            ("GET", base + "/mine"),
            ("GET", base + "/{id}/items"),
            ("POST", base + "/{id}/items/{itemId}"),
        ):
            if len(found) < per_service:
                found.append((method, path))
        resource += 1
    return found


def write_specs(folder: Path, services: int, per_service: int) -> dict[str, list[tuple[str, str]]]:
    """One OpenAPI 3.0 YAML document per service; returns service -> its operations."""
    result: dict[str, list[tuple[str, str]]] = {}
    for index in range(services):
        name = f"svc{index}"
        ops = templates(index, per_service)
        paths: dict[str, dict[str, object]] = {}
        for method, path in ops:
            parameters = [
                {"name": p.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
                for p in path.split("/")
                if p.startswith("{")
            ]
            paths.setdefault(path, {})[method.lower()] = {
                "parameters": parameters,
                "responses": {"200": {"description": "ok"}},
            }
        document = {
            "openapi": "3.0.3",
            "info": {"title": f"{name} service", "version": "1"},
            "servers": [{"url": f"http://{name}"}],
            "paths": paths,
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        result[name] = ops
    return result


def build_table(rows: int, ops: dict[str, list[tuple[str, str]]], seed: int = 11) -> pa.Table:
    """A span table of HTTP server and client spans over the documented operations."""
    rng = np.random.default_rng(seed)
    flat = [(service, method, path) for service, pairs in ops.items() for method, path in pairs]
    pick = rng.integers(0, len(flat), rows)
    is_server = rng.random(rows) < 0.5
    undocumented = rng.random(rows) < 0.03
    ids = rng.integers(0, 100_000, rows)
    services, methods, routes, paths, kinds, addresses, callers = [], [], [], [], [], [], []
    for row in range(rows):
        service, method, template = flat[pick[row]]
        if undocumented[row]:
            template = template + "/extra"
        concrete = template.replace("{id}", str(ids[row])).replace("{itemId}", str(ids[row] % 97))
        server = bool(is_server[row])
        kinds.append("server" if server else "client")
        services.append(service if server else "frontend")
        callers.append(service)
        methods.append(method)
        routes.append(template if server else None)
        paths.append(concrete)
        addresses.append(service)
    count = pa.array(range(rows), pa.int64())
    columns = {
        "trace_id": pa.array([f"{i:032x}" for i in range(rows)]),
        "span_id": pa.array([f"{i + 1:016x}" for i in range(rows)]),
        "service": pa.array(services),
        "name": pa.array(methods),
        "kind": pa.array(kinds),
        "start_ns": count,
        "end_ns": count,
        "status": pa.array(["unset"] * rows),
        "http_method": pa.array(methods),
        "http_route": pa.array(routes, pa.string()),
        "url_path": pa.array(paths),
        "server_address": pa.array(addresses),
        "idempotency_key": pa.array([False] * rows),
    }
    arrays = [columns.get(f.name, pa.nulls(rows, f.type)) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def best_of(runs: int, action: object) -> float:
    """The fastest of several timed runs, in seconds."""
    assert callable(action)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    """Measure matching and ingest, print the figures and the share."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--operations-per-service", type=int, default=30)
    parser.add_argument("--ingest-spans", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        ops = write_specs(Path(folder), args.services, args.operations_per_service)
        start = time.perf_counter()
        loaded = load_specs([folder])
        load_seconds = time.perf_counter() - start
    assert loaded.problems == (), loaded.problems
    table = build_table(args.rows, ops)
    bindings = bind_specs(loaded.specs, table["service"].unique().to_pylist() + list(ops))
    by_service = index_operations(loaded.specs, bindings)
    total_ops = sum(len(v) for v in by_service.values())
    match_seconds = best_of(3, lambda: match_operations(table, by_service))
    matches = match_operations(table, by_service)
    coverage_seconds = best_of(3, lambda: measure_coverage(table, matches, by_service))
    matched = matches.table["op_service"].length() - matches.table["op_service"].null_count
    print(f"specs: {len(loaded.specs)} documents, {total_ops} operations, loaded in {load_seconds:.2f} s")
    print(
        f"match_operations: {args.rows:,} rows in {match_seconds:.2f} s ({matched / args.rows:.1%} matched,"
        f" {pa.cpu_count()} threads)"
    )
    print(f"measure_coverage: {coverage_seconds:.2f} s")

    from ingest import write_inputs  # the ingest benchmark's synthetic landscape

    path = write_inputs(args.ingest_spans, with_jaeger=False)["otlp-proto"]
    start = time.perf_counter()
    result = ingest([path], jobs=args.jobs)
    ingest_seconds = time.perf_counter() - start
    per_million = ingest_seconds * 1_000_000 / result.spans.num_rows
    spans_matching = best_of(3, lambda: match_operations(result.spans, by_service))
    print(f"ingest: {result.spans.num_rows:,} spans in {ingest_seconds:.2f} s (jobs={args.jobs})")
    print(f"match_operations on the ingested spans: {spans_matching:.2f} s")
    share = (match_seconds + coverage_seconds) * 1_000_000 / args.rows / per_million
    print(f"matching + coverage per 1M spans: {share:.1%} of ingest time per 1M spans (target <= 20%)")


if __name__ == "__main__":
    main()
