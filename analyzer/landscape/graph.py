"""The service graph and the operation graph, with per-edge traffic, errors and latency.

Both are networkx DiGraphs built from one group-by over the calls table. Service graph nodes are
service names; operation graph nodes are ``(service, operation)`` pairs, and an edge runs from
the caller's entry operation (the request during which it called) to the callee's operation.
Edge attributes: ``calls``, ``errors``, ``error_rate``, ``p50_ms``, ``p95_ms`` (the caller's view
of latency), ``example_traces`` (up to five, sorted) and ``kinds`` (sorted call kinds).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import networkx as nx
import numpy as np
import pandas as pd

from orchscan.analyzer.columnar.grouping import distinct_names, group_codes, positions_in, tuples_by_code
from orchscan.analyzer.requests.calls import CallTables
from orchscan.analyzer.results import Edge

#: How many example trace ids an edge keeps.
EXAMPLES = 5


def group_quantiles(
    code: np.ndarray, values: np.ndarray, groups: int, quantiles: tuple[float, ...]
) -> list[np.ndarray]:
    """Each quantile of ``values`` per group code, linearly interpolated as pandas does.

    One sort for all groups and quantiles instead of pandas' per-group quantile machinery;
    every group ``0..groups-1`` must have at least one value.
    """
    order = np.lexsort((values, code))
    ordered = values[order]
    starts = np.searchsorted(code[order], np.arange(groups))
    last = np.bincount(code, minlength=groups) - 1
    result = []
    for q in quantiles:
        position = q * last.astype(np.float64)
        low = position.astype(np.int64)
        below, above = ordered[starts + low], ordered[starts + np.minimum(low + 1, last)]
        fraction = position % 1
        result.append(np.where(fraction == 0, below, below + (above - below) * fraction))
    return result


def _edge_stats(calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Calls, errors, latency percentiles, example traces and kinds per group of ``keys``."""
    code, stats = group_codes(calls, keys, dropna=True)
    groups = len(stats)
    kept = code >= 0  # rows with a null key belong to no group
    code = code[kept]
    stats["calls"] = np.bincount(code, minlength=groups)
    latency = (calls["end_ns"].to_numpy()[kept] - calls["start_ns"].to_numpy()[kept]).clip(min=0) / 1e6
    errors = calls["error"].to_numpy(dtype=bool)[kept]
    stats["errors"] = np.bincount(code, weights=errors, minlength=groups).astype(int)
    # The sorts behind percentiles and examples release the GIL: they run side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        quantiles = pool.submit(group_quantiles, code, latency, groups, (0.5, 0.95))
        kinds = pool.submit(tuples_by_code, code, calls["kind"][kept], groups)
        examples = tuples_by_code(code, calls["trace_id"][kept], groups, EXAMPLES)
        stats["p50_ms"], stats["p95_ms"] = quantiles.result()
    stats["example_traces"] = pd.Series(examples, dtype=object)
    stats["kinds"] = pd.Series(kinds.result(), dtype=object)
    return stats


def build_edges(tables: CallTables) -> tuple[Edge, ...]:
    """One :class:`Edge` per caller, callee and call kind, sorted by ``(caller, callee, kind)``."""
    stats = _edge_stats(tables.calls, ["caller", "callee", "kind"])
    columns = ("caller", "callee", "kind", "calls", "errors", "p50_ms", "p95_ms", "example_traces")
    return tuple(
        Edge(
            caller=str(caller),
            callee=str(callee),
            kind=str(kind),
            calls=int(calls),
            errors=int(errors),
            p50_ms=round(float(p50), 3),
            p95_ms=round(float(p95), 3),
            example_traces=tuple(examples),
        )
        for caller, callee, kind, calls, errors, p50, p95, examples in zip(
            *(stats[c].tolist() for c in columns), strict=True
        )
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
    requests = tables.requests
    # Each call's entry request by position (request rows ascend), instead of a join on the frame.
    at = positions_in(requests["row"].to_numpy(), tables.calls["entry_row"].to_numpy())
    entry_operation = pd.Series(requests["operation"].array.take(at, allow_fill=True))
    calls = tables.calls.assign(entry_operation=entry_operation.fillna("(unknown)").array)
    graph: nx.DiGraph = nx.DiGraph()
    _, nodes = group_codes(requests, ["service", "operation"], dropna=False)
    for service, operation in nodes.itertuples(index=False, name=None):
        graph.add_node((service, operation), service=service, operation=operation)
    keys = ["caller", "entry_operation", "callee", "operation"]
    _add_edges(graph, _edge_stats(calls, keys), ["caller", "entry_operation"], ["callee", "operation"])
    for node in graph.nodes:
        graph.nodes[node].setdefault("service", node[0])
        graph.nodes[node].setdefault("operation", node[1])
    return graph
