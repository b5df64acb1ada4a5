"""The service graph and the operation graph, with per-edge traffic, errors and latency.

Both are networkx DiGraphs built from one group-by over the calls table. Service graph nodes are
service names; operation graph nodes are ``(service, operation)`` pairs, and an edge runs from
the caller's entry operation (the request during which it called) to the callee's operation.
Edge attributes: ``calls``, ``errors``, ``error_rate``, ``p50_ms``, ``p95_ms`` (the caller's view
of latency), ``example_traces`` (up to five, sorted) and ``kinds`` (sorted call kinds).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from analyzer.calls import CallTables
from analyzer.grouping import distinct_names, tuples_by_code
from analyzer.model import Edge

#: How many example trace ids an edge keeps.
EXAMPLES = 5


def _edge_stats(calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Calls, errors, latency percentiles, example traces and kinds per group of ``keys``."""
    grouped = calls.groupby(keys, sort=True)
    code = grouped.ngroup().to_numpy()
    stats = grouped.size().rename("calls").reset_index()
    groups = len(stats)
    latency = (calls["end_ns"].to_numpy() - calls["start_ns"].to_numpy()).clip(min=0) / 1e6
    stats["errors"] = np.bincount(code, weights=calls["error"].to_numpy(dtype=bool), minlength=groups).astype(
        int
    )
    quantiles = pd.Series(latency).groupby(code).quantile([0.5, 0.95]).unstack()
    stats["p50_ms"] = quantiles[0.5].to_numpy()
    stats["p95_ms"] = quantiles[0.95].to_numpy()
    stats["example_traces"] = pd.Series(
        tuples_by_code(code, calls["trace_id"].to_numpy(dtype=object), groups, EXAMPLES), dtype=object
    )
    stats["kinds"] = pd.Series(
        tuples_by_code(code, calls["kind"].to_numpy(dtype=object), groups), dtype=object
    )
    return stats


def build_edges(tables: CallTables) -> tuple[Edge, ...]:
    """One :class:`Edge` per caller, callee and call kind, sorted by ``(caller, callee, kind)``."""
    stats = _edge_stats(tables.calls, ["caller", "callee", "kind"])
    return tuple(
        Edge(
            caller=str(row.caller),
            callee=str(row.callee),
            kind=str(row.kind),
            calls=int(row.calls),
            errors=int(row.errors),
            p50_ms=round(float(row.p50_ms), 3),
            p95_ms=round(float(row.p95_ms), 3),
            example_traces=tuple(row.example_traces),
        )
        for row in stats.itertuples(index=False)
    )


def _add_edges(graph: nx.DiGraph, stats: pd.DataFrame, source: list[str], target: list[str]) -> None:
    def nodes(columns: list[str]) -> list[object]:
        arrays = [stats[c].to_numpy(dtype=object) for c in columns]
        return list(zip(*arrays, strict=True)) if len(arrays) > 1 else list(arrays[0])

    calls = stats["calls"].to_numpy()
    errors = stats["errors"].to_numpy()
    p50 = stats["p50_ms"].to_numpy().round(3)
    p95 = stats["p95_ms"].to_numpy().round(3)
    examples = stats["example_traces"].tolist()
    kinds = stats["kinds"].tolist()
    graph.add_edges_from(
        (
            u,
            v,
            {
                "calls": int(calls[i]),
                "errors": int(errors[i]),
                "error_rate": int(errors[i]) / int(calls[i]),
                "p50_ms": float(p50[i]),
                "p95_ms": float(p95[i]),
                "example_traces": examples[i],
                "kinds": kinds[i],
            },
        )
        for i, (u, v) in enumerate(zip(nodes(source), nodes(target), strict=True))
    )


def build_service_graph(tables: CallTables) -> nx.DiGraph:
    """Services as nodes (``emits_spans`` attribute), calls of every kind folded into one edge per pair."""
    graph: nx.DiGraph = nx.DiGraph()
    emitting = set(distinct_names(tables.spans["service"]))
    for name in distinct_names(tables.spans["service"], tables.calls["caller"], tables.calls["callee"]):
        graph.add_node(name, emits_spans=name in emitting)
    keys = ["caller", "callee"]
    _add_edges(graph, _edge_stats(tables.calls, keys), ["caller"], ["callee"])
    return graph


def build_operation_graph(tables: CallTables) -> nx.DiGraph:
    """``(service, operation)`` nodes; edges from the caller's entry operation to the callee's operation."""
    requests = tables.requests.set_index("row")[["service", "operation"]]
    calls = tables.calls.join(requests.rename(columns={"operation": "entry_operation"}), on="entry_row")
    calls = calls.assign(entry_operation=calls["entry_operation"].fillna("(unknown)"))
    graph: nx.DiGraph = nx.DiGraph()
    for row in requests.drop_duplicates().sort_values(["service", "operation"]).itertuples(index=False):
        graph.add_node((row.service, row.operation), service=row.service, operation=row.operation)
    keys = ["caller", "entry_operation", "callee", "operation"]
    _add_edges(graph, _edge_stats(calls, keys), ["caller", "entry_operation"], ["callee", "operation"])
    for node in graph.nodes:
        graph.nodes[node].setdefault("service", node[0])
        graph.nodes[node].setdefault("operation", node[1])
    return graph
