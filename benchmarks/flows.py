"""Cost of flow mining (steps, variants, handoffs, failure logic, duplicates, pitfalls) against ingest.

Uses the analysis benchmark's pyarrow-generated landscape (default 1,000,000 spans, about 300
services: orchestrators calling four services one after another, gateways, composers, event
jobs, lookups) and makes a share of the calls fail with 503 so that the failure analysis has
work to do. Times the flow stage on top of ``build_call_tables`` (whose cost the analysis
benchmark already reports) and compares it with ingesting the ingest benchmark's OTLP protobuf
file of the same size (target: flow mining at most 50% of ingest time).

    python benchmarks/flows.py                         # 1,000,000 spans
    python benchmarks/flows.py --spans 200000 --no-ingest
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from analysis import build_table  # noqa: E402  (the analysis benchmark's landscape)

from orchscan.analyzer.findings.rules import find_findings  # noqa: E402
from orchscan.analyzer.flows.mining import analyze_flows  # noqa: E402
from orchscan.analyzer.requests.calls import build_call_tables  # noqa: E402
from orchscan.collectors.traces.ingest import ingest  # noqa: E402


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def with_failures(table: pa.Table, share: float, seed: int = 11) -> pa.Table:
    """The same spans with ``share`` of the server spans answering 503 (an error status)."""
    rng = np.random.default_rng(seed)
    server = pc.equal(table["kind"], "server").to_numpy(zero_copy_only=False)
    failing = server & (rng.random(table.num_rows) < share)
    codes = table["http_status_code"].to_numpy(zero_copy_only=False)
    codes = np.where(failing, 503, codes)
    status = np.where(failing, "error", table["status"].to_numpy(zero_copy_only=False))
    table = table.set_column(table.schema.get_field_index("status"), "status", pa.array(status, pa.string()))
    index = table.schema.get_field_index("http_status_code")
    return table.set_column(index, "http_status_code", pa.array(codes, pa.int32(), from_pandas=True))


def main() -> None:
    """Build the table, time the flow stage, compare with ingest and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--failures", type=float, default=0.03, help="share of server spans that fail")
    parser.add_argument("--no-ingest", action="store_true", help="skip the ingest comparison")
    args = parser.parse_args()

    generate, table = _timed(lambda: with_failures(build_table(args.spans), args.failures))
    print(f"synthetic table: {table.num_rows:,} spans, built in {generate:.1f} s")
    calls_s, tables = _timed(lambda: build_call_tables(table))
    print(f"build_call_tables (shared with the role analysis): {calls_s:.2f} s")
    owners = sorted({s for s in tables.requests["service"].unique() if str(s).startswith("orchestrator")})
    flows_s, (flows, steps) = _timed(lambda: analyze_flows(tables, table, owners=owners))
    findings_s, findings = _timed(lambda: find_findings(flows, steps, tables))
    mined = flows_s + findings_s
    print(
        f"flows: {flows_s:.2f} s ({len(flows)} flows, {len(steps.requests):,} requests, "
        f"{len(steps.calls):,} step calls); findings: {findings_s:.2f} s ({len(findings)})"
    )
    rules: dict[str, int] = {}
    for finding in findings:
        rules[finding.rule] = rules.get(finding.rule, 0) + 1
    print("findings:", ", ".join(f"{rule} {count}" for rule, count in sorted(rules.items())) or "none")
    print(f"flow mining total: {mined:.2f} s")
    if args.no_ingest:
        return

    from ingest import write_inputs  # the ingest benchmark's synthetic landscape

    path = write_inputs(args.spans, with_jaeger=False)["otlp-proto"]
    ingest_s, result = _timed(lambda: ingest([path], jobs=args.jobs))
    per_million = ingest_s * 1_000_000 / result.spans.num_rows
    share = mined * 1_000_000 / table.num_rows / per_million
    print(f"ingest: {result.spans.num_rows:,} spans in {ingest_s:.2f} s (jobs={args.jobs})")
    print(f"flow mining per 1M spans: {share:.0%} of ingest time per 1M spans (target <= 50%)")
    both = (mined + calls_s) * 1_000_000 / table.num_rows / per_million
    print(f"with build_call_tables: {both:.0%} of ingest time")


if __name__ == "__main__":
    main()
