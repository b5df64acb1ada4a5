"""Whole-table checks that no single chunk can make: duplicates, parent cycles, absent parents."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.collectors.model.records import Notice, Skipped


def _keys(table: pa.Table, column: str) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(table["trace_id"], table[column], "/")


# Odd multipliers that spread the id words over the whole 64-bit hash, one per word.
_MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
    ],
    dtype=np.uint64,
)


def _chunk_words(ids: pa.Array, width: int) -> np.ndarray | None:
    """Fixed-width ids as their text bytes in uint64 words, shape (rows, width // 8).

    Equal words mean equal ids, without decoding the hex; the view shares the array's memory
    unless nulls had to be filled (with ``width`` zeros). None when some id is not ``width``
    characters long, so that callers fall back to comparing the strings.
    """
    if ids.type != pa.string():
        ids = ids.cast(pa.string())
    rows = len(ids)
    if not rows:
        return np.zeros((0, width // 8), dtype=np.uint64)
    if ids.null_count:
        ids = ids.fill_null("0" * width)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + rows + 1]
    if not np.all(np.diff(offsets) == width):
        return None
    text = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return text.view(np.uint64).reshape(rows, width // 8)


_SHIFT = np.uint64(33)
_FINAL = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


def _mixed(views: list[np.ndarray], salt: int) -> np.ndarray:
    """A 64-bit hash of each id; XOR two of them to hash a (trace id, span id) pair.

    Each word goes through MurmurHash3's 64-bit finaliser after it is folded in: without it,
    ids that count up (sequential test ids, some tracers) collide often enough that every
    check falls back to comparing strings.
    """
    parts = []
    for view in views:
        mixed = np.zeros(len(view), dtype=np.uint64)
        for index in range(view.shape[1]):
            mixed ^= view[:, index] * _MIX[salt + index]
            for multiplier in _FINAL:
                mixed ^= mixed >> _SHIFT
                mixed *= multiplier
            mixed ^= mixed >> _SHIFT
        parts.append(mixed)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def id_hashes(ids: pa.Array | pa.ChunkedArray, width: int) -> np.ndarray | None:
    """A 64-bit hash of each id of ``width`` hex digits (nulls hash as zeros), None when some id
    has another length."""
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    parts = []
    for chunk in chunks:
        words = _chunk_words(chunk, width)
        if words is None:
            return None
        parts.append(_mixed([words], 0))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _pair_hashes(table: pa.Table, column: str) -> np.ndarray | None:
    """A 64-bit hash of every (trace id, ``column``) pair, or None when an id has an unusual length.

    Hashed batch by batch into one preallocated array, so that only a batch's worth of id
    words (and of filled nulls) exists beside it at any time.
    """
    hashes = np.empty(table.num_rows, dtype=np.uint64)
    at = 0
    # Trace ids and ``column`` in aligned pieces (zero-copy), whatever their chunking.
    batches: list[pa.RecordBatch] = table.select(["trace_id", column]).to_batches()
    for batch in batches:
        trace, other = _chunk_words(batch.column(0), 32), _chunk_words(batch.column(1), 16)
        if trace is None or other is None:
            return None
        hashes[at : at + batch.num_rows] = _mixed([trace], 0) ^ _mixed([other], 4)
        at += batch.num_rows
    return hashes


def _word(table: pa.Table, column: str, width: int, index: int) -> np.ndarray:
    """One word of every id of ``column``, for the whole table: 8 bytes per row."""
    word = np.empty(table.num_rows, dtype=np.uint64)
    at = 0
    for chunk in table[column].chunks:
        view = _chunk_words(chunk, width)
        assert view is not None, "ids were checked when they were hashed"
        word[at : at + len(chunk)] = view[:, index]
        at += len(chunk)
    return word


def _per_file(sources: list[str]) -> Counter[str]:
    return Counter(sources)


def drop_duplicates(table: pa.Table) -> tuple[pa.Table, list[Skipped]]:
    """Keep the first copy of each (trace id, span id); duplicate deliveries are skipped."""
    suspects = _suspected_copies(table)
    if suspects is not None and not len(suspects):
        return table, []
    # Only the rows whose hash repeats are compared by their strings: exporters' retries put
    # copies in a few percent of the rows, and keying every row took a second per million.
    pairs = table.select(["trace_id", "span_id"])
    if suspects is not None:
        pairs = pairs.take(pa.array(suspects))
    keys = _keys(pairs, "span_id").combine_chunks()
    if pc.count_distinct(keys).as_py() == len(keys):
        return table, []
    frame = pa.table({"key": keys, "row": pa.array(np.arange(len(keys)))})
    first = frame.group_by("key", use_threads=False).aggregate([("row", "min")])["row_min"].to_numpy()
    copies = np.ones(len(keys), dtype=bool)
    copies[first] = False
    keep = np.ones(table.num_rows, dtype=bool)
    keep[copies if suspects is None else suspects[copies]] = False
    counts = _per_file(table["source"].filter(pa.array(~keep)).to_pylist())
    skipped = [
        Skipped(file, "whole file", "duplicate span id (same trace); first copy kept", count)
        for file, count in sorted(counts.items())
    ]
    return table.filter(pa.array(keep)), skipped


def _suspected_copies(table: pa.Table) -> np.ndarray | None:
    """Rows, ascending, whose (trace id, span id) hash is shared with another row; None when an id
    has an unusual length and every row must be compared.

    Distinct hashes prove distinct keys, so a row outside these has no copy; ascending order
    keeps the first copy the first row of its key.
    """
    hashes = _pair_hashes(table, "span_id")
    if hashes is None:
        return None
    # Counted in a hash table, not sorted: a stable sort of the hashes took 10 ms of a
    # 110,000-span unit.
    numbered = pc.dictionary_encode(pa.array(hashes)).indices.to_numpy()
    return np.flatnonzero(np.bincount(numbered)[numbered] > 1)


def repair_parents(table: pa.Table) -> tuple[pa.Table, list[Notice], np.ndarray]:
    """Cut parent links that form cycles and report spans whose parent is absent.

    Spans with an absent parent stay as they are (the parent may simply not have been
    exported); a cycle cannot be right, so the link of each span on a cycle is removed. Also
    returns the row of each span's parent in the repaired table (see :func:`parent_rows`), which
    the reduction needs again.
    """
    notices: list[Notice] = []
    parent_index = parent_rows(table)
    has_parent = pc.is_valid(table["parent_span_id"]).combine_chunks()
    absent = pc.and_(has_parent, pa.array(parent_index < 0))
    if pc.any(absent).as_py():
        counts = _per_file(table.filter(absent)["source"].to_pylist())
        notices += [
            Notice(file, "parent span absent from the input (span kept as a fragment root)", count)
            for file, count in sorted(counts.items())
        ]
    on_cycle = _on_cycle(parent_index)
    if on_cycle.any():
        counts = _per_file(table.filter(pa.array(on_cycle))["source"].to_pylist())
        notices += [
            Notice(file, "parent links formed a cycle (links cut, spans kept as roots)", count)
            for file, count in sorted(counts.items())
        ]
        parents = table["parent_span_id"].combine_chunks()
        repaired = pc.if_else(pa.array(on_cycle), pa.scalar(None, pa.string()), parents)
        table = table.set_column(table.schema.get_field_index("parent_span_id"), "parent_span_id", repaired)
        parent_index = np.where(on_cycle, -1, parent_index)
    return table, notices, parent_index


def parent_rows(table: pa.Table) -> np.ndarray:
    """Row of each span's parent in ``table``, -1 when it has none or the parent is absent.

    Joins on 64-bit hashes of the ids and confirms every match word by word; only when an
    id has an unusual length, or a hash collides, are the id strings joined instead.
    """
    spans = _pair_hashes(table, "span_id")
    parents = _pair_hashes(table, "parent_span_id")
    if spans is not None and parents is not None:
        has_parent = pc.is_valid(table["parent_span_id"]).to_numpy()
        index = _hash_lookup(spans, parents, has_parent, [len(b) for b in table["trace_id"].chunks])
        del spans, parents
        if _confirmed(table, index):
            return index
    span_keys = _keys(table, "span_id").combine_chunks()
    parent_keys = _keys(table, "parent_span_id").combine_chunks()
    rows: np.ndarray = (
        pc.index_in(parent_keys, value_set=span_keys)
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )
    return rows


def span_rows(table: pa.Table, trace_ids: pa.Array, span_ids: pa.Array) -> np.ndarray:
    """Row of the span with each (trace id, span id) pair, -1 where no span has it.

    For span links: the few linked pairs are hashed and every span is probed against them,
    rather than building a lookup of a million id strings; hits are confirmed by comparing
    the strings, and the strings are joined instead when a hash collides.
    """
    wanted = pa.table({"trace_id": trace_ids, "span_id": span_ids})
    complete = pc.and_(pc.is_valid(trace_ids), pc.is_valid(span_ids)).to_numpy(zero_copy_only=False)
    wanted_hashes = _pair_hashes(wanted, "span_id")
    spans = _pair_hashes(table, "span_id")
    if wanted_hashes is not None and spans is not None:
        rows = np.where(complete, _probe(spans, wanted_hashes), -1)
        found = np.flatnonzero(rows >= 0)
        taken = pa.array(rows[found])
        same = [
            pc.equal(table[column].take(taken), wanted[column].take(pa.array(found)))
            for column in ("trace_id", "span_id")
        ]
        if all(pc.all(check).as_py() is not False for check in same):
            return rows
    keys = pc.binary_join_element_wise(trace_ids, span_ids, "/")
    index = pc.index_in(keys, value_set=_keys(table, "span_id").combine_chunks())
    result: np.ndarray = index.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return result


def _hash_lookup(spans: np.ndarray, parents: np.ndarray, wanted: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Row whose span hash equals each wanted parent hash (-1 when none does).

    Parents are looked up within their own batch first: a batch holds whole messages, which
    hold whole traces or large parts of them, so the hash tables stay a batch small. Only the
    parents not found there are looked up in the whole table (:func:`_probe`).
    """
    index = np.full(len(spans), -1, dtype=np.int64)
    start = 0
    for size in sizes:
        stop = start + size
        local = pc.index_in(pa.array(parents[start:stop]), value_set=pa.array(spans[start:stop]))
        found = local.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        index[start:stop] = np.where(found >= 0, found + start, -1)
        start = stop
    index[~wanted] = -1
    missing = np.flatnonzero(wanted & (index < 0))
    if len(missing):
        index[missing] = _probe(spans, parents[missing])
    return index


def _probe(spans: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row whose span hash equals each wanted hash (-1 when none does), for a few wanted hashes.

    Every span is probed against a table of the wanted hashes, rather than building one of a
    million span hashes (about 50 MB).
    """
    distinct, which = np.unique(wanted, return_inverse=True)
    probe = pc.index_in(pa.array(spans), value_set=pa.array(distinct))
    hit = np.flatnonzero(np.asarray(pc.is_valid(probe)))
    row_of = np.full(len(distinct), -1, dtype=np.int64)
    row_of[probe.to_numpy(zero_copy_only=False)[hit].astype(np.int64)] = hit
    rows: np.ndarray = row_of[which.reshape(-1)]
    return rows


def _confirmed(table: pa.Table, index: np.ndarray) -> bool:
    """Every hash match is a true match: the trace ids, and span id against parent id, are equal.

    Equal ids always hash equal, so a miss is a truly absent parent; a hit is confirmed one
    word at a time, so that only a word's worth of rows is copied at once.
    """
    found = np.flatnonzero(index >= 0)
    target = index[found]
    pairs = [("trace_id", "trace_id", 32, word) for word in range(4)]
    pairs += [("span_id", "parent_span_id", 16, word) for word in range(2)]
    for target_column, found_column, width, word in pairs:
        column = _word(table, target_column, width, word)
        at_target = column[target]
        if found_column != target_column:
            column = _word(table, found_column, width, word)
        if not np.array_equal(at_target, column[found]):
            return False
    return True


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
