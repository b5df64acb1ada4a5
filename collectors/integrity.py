"""Whole-table checks that no single chunk can make: duplicates, parent cycles, absent parents."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors.records import Notice, Skipped


def _keys(table: pa.Table, column: str) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(table["trace_id"], table[column], "/")


def _per_file(sources: list[str]) -> Counter[str]:
    return Counter(sources)


def drop_duplicates(table: pa.Table) -> tuple[pa.Table, list[Skipped]]:
    """Keep the first copy of each (trace id, span id); duplicate deliveries are skipped."""
    keys = _keys(table, "span_id").combine_chunks()
    if pc.count_distinct(keys).as_py() == len(keys):
        return table, []
    frame = pa.table({"key": keys, "row": pa.array(np.arange(len(keys)))})
    first = frame.group_by("key", use_threads=False).aggregate([("row", "min")])["row_min"]
    keep = np.zeros(len(keys), dtype=bool)
    keep[first.to_numpy()] = True
    dropped = table.filter(pa.array(~keep))
    counts = _per_file(dropped["source"].to_pylist())
    skipped = [
        Skipped(file, "whole file", "duplicate span id (same trace); first copy kept", count)
        for file, count in sorted(counts.items())
    ]
    return table.filter(pa.array(keep)), skipped


def repair_parents(table: pa.Table) -> tuple[pa.Table, list[Notice]]:
    """Cut parent links that form cycles and report spans whose parent is absent.

    Spans with an absent parent stay as they are (the parent may simply not have been
    exported); a cycle cannot be right, so the link of each span on a cycle is removed.
    """
    notices: list[Notice] = []
    span_keys = _keys(table, "span_id").combine_chunks()
    parent_keys = _keys(table, "parent_span_id").combine_chunks()
    has_parent = pc.is_valid(parent_keys)
    present = pc.is_in(parent_keys, value_set=span_keys)
    absent = pc.and_(has_parent, pc.invert(present))
    if pc.any(absent).as_py():
        counts = _per_file(table.filter(absent)["source"].to_pylist())
        notices += [
            Notice(file, "parent span absent from the input (span kept as a fragment root)", count)
            for file, count in sorted(counts.items())
        ]
    parent_index = pc.index_in(parent_keys, value_set=span_keys).fill_null(-1).to_numpy(zero_copy_only=False)
    on_cycle = _on_cycle(parent_index.astype(np.int64))
    if on_cycle.any():
        counts = _per_file(table.filter(pa.array(on_cycle))["source"].to_pylist())
        notices += [
            Notice(file, "parent links formed a cycle (links cut, spans kept as roots)", count)
            for file, count in sorted(counts.items())
        ]
        parents = table["parent_span_id"].combine_chunks()
        repaired = pc.if_else(pa.array(on_cycle), pa.scalar(None, pa.string()), parents)
        table = table.set_column(table.schema.get_field_index("parent_span_id"), "parent_span_id", repaired)
    return table, notices


def _on_cycle(parent: np.ndarray) -> np.ndarray:
    """Rows that lie on a parent cycle, by pointer doubling (log depth vectorised steps)."""
    n = len(parent)
    ancestor = parent.copy()
    # After k doublings ``ancestor`` is the 2**k-th ancestor; 2**40 exceeds any real depth,
    # so whatever still has an ancestor then is on, or hangs below, a cycle.
    for _ in range(40):
        valid = ancestor >= 0
        if not valid.any():
            return np.zeros(n, dtype=bool)
        nxt = np.full(n, -1, dtype=np.int64)
        nxt[valid] = ancestor[ancestor[valid]]
        if np.array_equal(nxt, ancestor):
            break
        ancestor = nxt
    suspects = np.flatnonzero(ancestor >= 0)
    on_cycle = np.zeros(n, dtype=bool)
    for start in suspects:
        seen: dict[int, int] = {}
        node = int(start)
        while node >= 0 and node not in seen and not on_cycle[node]:
            seen[node] = len(seen)
            node = int(parent[node])
        if node >= 0 and node in seen:
            cycle_start = seen[node]
            for member, order in seen.items():
                if order >= cycle_start:
                    on_cycle[member] = True
    return on_cycle
