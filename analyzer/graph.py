"""The service graph and the operation graph, with per-edge traffic, errors and latency.

Both are networkx DiGraphs built from one group-by over the calls table. Service graph nodes are
service names; operation graph nodes are ``(service, operation)`` pairs, and an edge runs from
the caller's entry operation (the request during which it called) to the callee's operation.
Edge attributes: ``calls``, ``errors``, ``error_rate``, ``p50_ms``, ``p95_ms`` (the caller's view
of latency), ``example_traces`` (up to five, sorted) and ``kinds`` (sorted call kinds).
"""

from __future__ import annotations

import networkx as nx
import pandas as pd

from analyzer.calls import CallTables
from analyzer.model import Edge

#: How many example trace ids an edge keeps.
EXAMPLES = 5


def _edge_stats(calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Calls, errors, latency percentiles and example traces per group of ``keys``."""
    latency = (calls["end_ns"] - calls["start_ns"]).clip(lower=0) / 1e6
    frame = calls[keys].assign(latency=latency.to_numpy(), error=calls["error"].to_numpy(dtype=bool))
    grouped = frame.groupby(keys, sort=True)
    stats = grouped.agg(calls=("latency", "size"), errors=("error", "sum"))
    quantiles = grouped["latency"].quantile([0.5, 0.95]).unstack()
    stats["p50_ms"] = quantiles[0.5]
    stats["p95_ms"] = quantiles[0.95]
    traces = calls[[*keys, "trace_id"]].drop_duplicates().sort_values([*keys, "trace_id"])
    traces = traces.groupby(keys, sort=False).head(EXAMPLES)
    stats["example_traces"] = traces.groupby(keys)["trace_id"].agg(tuple)
    columns = list(dict.fromkeys([*keys, "kind"]))
    kinds = calls[columns].drop_duplicates().sort_values(columns)
    stats["kinds"] = kinds.groupby(keys)["kind"].agg(tuple)
    return stats.reset_index()


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
    for row in stats.to_dict("records"):
        calls = int(row["calls"])
        errors = int(row["errors"])
        graph.add_edge(
            tuple(row[k] for k in source) if len(source) > 1 else row[source[0]],
            tuple(row[k] for k in target) if len(target) > 1 else row[target[0]],
            calls=calls,
            errors=errors,
            error_rate=errors / calls if calls else 0.0,
            p50_ms=round(float(row["p50_ms"]), 3),
            p95_ms=round(float(row["p95_ms"]), 3),
            example_traces=tuple(row["example_traces"]),
            kinds=tuple(row["kinds"]),
        )


def build_service_graph(tables: CallTables) -> nx.DiGraph:
    """Services as nodes (``emits_spans`` attribute), calls of every kind folded into one edge per pair."""
    graph: nx.DiGraph = nx.DiGraph()
    emitting = set(tables.spans["service"])
    for name in sorted(emitting | set(tables.calls["caller"]) | set(tables.calls["callee"])):
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
