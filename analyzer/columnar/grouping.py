"""Collecting the values of each group into tuples without a pandas call per group.

``groupby(...).agg(tuple)`` and iterating groups run Python-level pandas code once per group,
which dominates on landscapes with tens of thousands of edges or operations. Sorting once and
splitting a plain numpy array at the group boundaries costs one slice per group instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.collectors.side_threads import side_pool


def distinct_names(*columns: pd.Series) -> list[str]:
    """Sorted distinct non-null strings over several columns."""
    names: set[str] = set()
    for column in columns:
        names.update(str(v) for v in pd.unique(column.dropna()))
    return sorted(names)


def tuples_by_code(
    codes: np.ndarray, values: pd.Series | np.ndarray, groups: int, limit: int | None = None
) -> list[tuple[object, ...]]:
    """Per integer group code ``0..groups-1``: its distinct values, sorted, at most ``limit``."""
    counts, items = smallest_by_code(codes, values, groups, limit)
    bounds = np.r_[0, np.cumsum(counts)]
    return [tuple(items[bounds[g] : bounds[g + 1]].tolist()) for g in range(groups)]


def smallest_by_code(
    codes: np.ndarray, values: pd.Series | np.ndarray, groups: int, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per integer group code ``0..groups-1`` its distinct values, sorted, at most ``limit``: how
    many each group has, and the values group after group (no Python step per group).

    Pass a Series rather than an object array where there is one: factorizing the Arrow-backed
    text column directly avoids creating a Python string per row.
    """
    ranks, uniques = sorted_codes(values)
    present = ranks >= 0  # nulls are no values
    width = max(len(uniques), 1)
    # One sort of (code, rank) packed into an integer yields the distinct pairs in order.
    pairs = sorted_unique(codes[present].astype(np.int64) * width + ranks[present])
    code, rank = np.divmod(pairs, width)
    if limit is not None:
        kept = np.arange(len(code)) - np.searchsorted(code, code) < limit  # place in its group
        code, rank = code[kept], rank[kept]
    return np.bincount(code, minlength=groups), np.asarray(uniques, dtype=object)[rank]


def smallest_text_by_code(
    codes: np.ndarray, values: pd.Series | np.ndarray | pa.Array, groups: int, limit: int | None = None
) -> tuple[np.ndarray, pa.Array]:
    """:func:`smallest_by_code` for text (trace ids, say), with the values as an Arrow string
    array: partials merged again and again never spell them as Python strings.

    Arrow sorts by code first and compares text only within a code, half the time of ranking
    every distinct value as :func:`sorted_codes` does. ``codes`` are not negative; raises
    TypeError for values that are not all text UTF-8 can hold.
    """
    text = _as_text(values)
    if text is None:
        raise TypeError("values are not all text")
    table = pa.table({"code": pa.array(codes, type=pa.int64()), "value": text}).filter(pc.is_valid(text))
    table = table.take(pc.sort_indices(table, sort_keys=[("code", "ascending"), ("value", "ascending")]))
    code = table["code"].to_numpy()
    value = table["value"].combine_chunks()
    first = np.ones(len(code), dtype=bool)  # of its (code, value) pair
    if len(code) > 1:
        first[1:] = (code[1:] != code[:-1]) | pc.not_equal(value[1:], value[:-1]).to_numpy(
            zero_copy_only=False
        )
    kept = np.flatnonzero(first)
    code = code[kept]
    if limit is not None:
        within = np.arange(len(code)) - np.searchsorted(code, code) < limit  # place in its group
        kept, code = kept[within], code[within]
    return np.bincount(code, minlength=groups), value.take(pa.array(kept, type=pa.int64()))


def sorted_codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each value among the sorted distinct values (-1 for null), and those values.

    Calls come ordered by trace id; for a column that is already sorted the ranks are a running
    count of changes, which spares sorting half a million ids again.
    """
    text = _as_text(values)
    if text is None:
        ranks, uniques = pd.factorize(values, sort=True)
        return ranks, np.asarray(uniques, dtype=object)
    if len(text) > 1 and not text.null_count and pc.all(pc.greater_equal(text[1:], text[:-1])).as_py():
        changes = np.r_[False, pc.not_equal(text[1:], text[:-1]).to_numpy(zero_copy_only=False)]
        ranks = np.cumsum(changes)
        return ranks, text.filter(pa.array(np.r_[True, changes[1:]])).to_numpy(zero_copy_only=False)
    # Numbered and sorted by Arrow: pandas sorts the distinct values of text with a Python
    # comparison each, which made merging edge examples most of the parent's work at 10M spans.
    encoded = pc.dictionary_encode(text)
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    ranks = np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(rank) else -1, -1)
    return ranks, encoded.dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False)


def _as_text(values: pd.Series | np.ndarray | pa.Array) -> pa.Array | None:
    """``values`` as an Arrow string array (nulls for None and NaN); None unless all are text."""
    try:
        text = (
            values
            if isinstance(values, pa.Array)
            else pa.array(values.array if isinstance(values, pd.Series) else values, from_pandas=True)
        )
    except (ValueError, TypeError, pa.ArrowException):  # not text, or text UTF-8 cannot hold
        return None
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if pa.types.is_large_string(text.type):
        text = text.cast(pa.string())
    return text if pa.types.is_string(text.type) else None


def group_codes(frame: pd.DataFrame, keys: list[str], *, dropna: bool) -> tuple[np.ndarray, pd.DataFrame]:
    """Group code per row in sorted key order, and one row of keys per group, as pandas groups.

    With ``dropna`` rows with a null key get code -1; without, nulls form groups of their
    own, sorted last. Codes come from factorizing each key once, not from a multi-key group-by.
    """
    # Factorizing Arrow-backed text releases the GIL: the keys are numbered side by side.
    with side_pool(2) as pool:
        factorized = list(pool.map(lambda key: pd.factorize(frame[key], sort=True), keys))
    valid = np.ones(len(frame), dtype=bool)
    combined = np.zeros(len(frame), dtype=np.int64)
    span = 1
    key_codes, spelled = [], []
    for codes, names in factorized:
        valid &= codes >= 0
        codes = np.where(codes < 0, len(names), codes)  # nulls sort last
        if span * (len(names) + 1) >= 1 << 62:
            # Renumber the keys so far densely, in the same order, to stay inside int64.
            distinct = sorted_unique(combined)
            combined, span = np.searchsorted(distinct, combined), len(distinct)
        combined = combined * (len(names) + 1) + codes
        span *= len(names) + 1
        key_codes.append(codes)
        spelled.append(np.concatenate([np.asarray(names, dtype=object), np.array([np.nan], dtype=object)]))
    # Numbered by pandas' hash factorization, sorted: four times a sort and a binary search of
    # every row (16 ms of a 110,000-span unit's reduction).
    if dropna and not valid.all():
        code = np.full(len(frame), -1, dtype=np.int64)
        code[valid], distinct = pd.factorize(combined[valid], sort=True)
    else:
        code, distinct = pd.factorize(combined, sort=True)
    # Any row of a group spells its keys: every row of it has the same codes.
    rows = np.zeros(len(distinct), dtype=np.int64)
    kept = np.flatnonzero(code >= 0)
    rows[code[kept]] = kept
    return code, pd.DataFrame(
        {key: names[codes[rows]] for key, codes, names in zip(keys, key_codes, spelled, strict=True)}
    )


def positions_in(rows: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position of each wanted row in the ascending ``rows``, -1 where it is not there."""
    at = np.searchsorted(rows, wanted)
    inside = at < len(rows)
    found = np.zeros(len(wanted), dtype=bool)
    found[inside] = rows[at[inside]] == wanted[inside]
    return np.where(found, at, -1)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted; one sort, where ``np.unique`` of large arrays hashes slower."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def split_by_code(codes: np.ndarray, items: np.ndarray, groups: int) -> list[tuple[object, ...]]:
    """Per integer group code ``0..groups-1``: its items in the given order (``codes`` sorted)."""
    bounds = np.searchsorted(codes, np.arange(groups + 1))
    return [tuple(items[bounds[g] : bounds[g + 1]].tolist()) for g in range(groups)]
