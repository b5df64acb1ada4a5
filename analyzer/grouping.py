"""Collecting the values of each group into tuples without a pandas call per group.

``groupby(...).agg(tuple)`` and iterating groups run Python-level pandas code once per group,
which dominates on landscapes with tens of thousands of edges or operations. Sorting once and
splitting a plain numpy array at the group boundaries costs one slice per group instead.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd


def collect(frame: pd.DataFrame, keys: Sequence[str], value: str) -> dict[Hashable, tuple[object, ...]]:
    """Map each group of ``keys`` to the tuple of its ``value`` column, in the frame's row order.

    Keys are scalars for one key column and tuples for several, as pandas' groupby names them.
    """
    if frame.empty:
        return {}
    codes = frame.groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    values = frame[value].to_numpy(dtype=object)[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    heads = frame.iloc[order[starts]]
    if len(keys) == 1:
        names: list[Hashable] = list(heads[keys[0]].to_numpy(dtype=object))
    else:
        names = list(zip(*(heads[k].to_numpy(dtype=object) for k in keys), strict=True))
    chunks = np.split(values, starts[1:])
    return {name: tuple(chunk.tolist()) for name, chunk in zip(names, chunks, strict=True)}


def distinct_names(*columns: pd.Series) -> list[str]:
    """Sorted distinct non-null strings over several columns."""
    names: set[str] = set()
    for column in columns:
        names.update(str(v) for v in pd.unique(column.dropna()))
    return sorted(names)


def tuples_by_code(
    codes: np.ndarray, values: pd.Series | np.ndarray, groups: int, limit: int | None = None
) -> list[tuple[object, ...]]:
    """Per integer group code ``0..groups-1``: its distinct values, sorted, at most ``limit``.

    Pass a Series rather than an object array where there is one: factorizing the Arrow-backed
    text column directly avoids creating a Python string per row.
    """
    ranks, uniques = pd.factorize(values, sort=True)
    present = ranks >= 0  # nulls are no values
    width = max(len(uniques), 1)
    # One sort of (code, rank) packed into an integer yields the distinct pairs in order.
    pairs = np.sort(codes[present].astype(np.int64) * width + ranks[present])
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
    code, rank = np.divmod(pairs, width)
    bounds = np.searchsorted(code, np.arange(groups + 1))
    bounds_end = np.minimum(bounds[1:], bounds[:-1] + limit) if limit is not None else bounds[1:]
    items = np.asarray(uniques, dtype=object)[rank]
    return [tuple(items[bounds[g] : bounds_end[g]].tolist()) for g in range(groups)]


def split_by_code(codes: np.ndarray, items: np.ndarray, groups: int) -> list[tuple[object, ...]]:
    """Per integer group code ``0..groups-1``: its items in the given order (``codes`` sorted)."""
    bounds = np.searchsorted(codes, np.arange(groups + 1))
    return [tuple(items[bounds[g] : bounds[g + 1]].tolist()) for g in range(groups)]
