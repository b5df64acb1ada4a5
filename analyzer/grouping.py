"""Collecting the values of each group into tuples without a pandas call per group.

``groupby(...).agg(tuple)`` and iterating groups run Python-level pandas code once per group,
which dominates on landscapes with tens of thousands of edges or operations. Sorting once and
splitting a plain numpy array at the group boundaries costs one slice per group instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
    pairs = sorted_unique(codes[present].astype(np.int64) * width + ranks[present])
    code, rank = np.divmod(pairs, width)
    bounds = np.searchsorted(code, np.arange(groups + 1))
    bounds_end = np.minimum(bounds[1:], bounds[:-1] + limit) if limit is not None else bounds[1:]
    items = np.asarray(uniques, dtype=object)[rank]
    return [tuple(items[bounds[g] : bounds_end[g]].tolist()) for g in range(groups)]


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted; one sort, where ``np.unique`` of large arrays hashes slower."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def split_by_code(codes: np.ndarray, items: np.ndarray, groups: int) -> list[tuple[object, ...]]:
    """Per integer group code ``0..groups-1``: its items in the given order (``codes`` sorted)."""
    bounds = np.searchsorted(codes, np.arange(groups + 1))
    return [tuple(items[bounds[g] : bounds[g + 1]].tolist()) for g in range(groups)]
