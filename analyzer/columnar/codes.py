"""Text columns as integer codes, so that stages work on numbers rather than a million strings.

A span table's text repeats (services, kinds, methods, routes); its Arrow columns are often
dictionary-coded per batch already. Coding a column once, combining several coded columns into
one id per distinct combination, and working out something once per combination is how the
analysis stays columnar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, slots=True)
class Coded:
    """A column as integer codes: row ``i`` holds ``values[codes[i]]``; the last value is None."""

    codes: npt.NDArray[np.int64]
    values: list[Any]


def encode(column: pa.ChunkedArray | pa.Array) -> Coded:
    """Dictionary codes of a column, one dictionary for all its chunks; nulls get the last code."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    # Batches carry dictionaries of their own: unify them so that one code means one value.
    chunk = pa.table({"c": column}).unify_dictionaries().combine_chunks()["c"]
    if chunk.num_chunks == 0:
        return Coded(np.zeros(0, dtype=np.int64), [None])
    array = chunk.chunk(0)
    values = array.dictionary.to_pylist()
    indices = array.indices
    # Straight from the buffer: converting an array with nulls would go through floats.
    raw = np.frombuffer(indices.buffers()[1], dtype=indices.type.to_pandas_dtype())
    codes = raw[indices.offset : indices.offset + len(indices)].astype(np.int64)
    if indices.null_count:
        codes[~pc.is_valid(indices).to_numpy(zero_copy_only=False)] = len(values)
    return Coded(codes, [*values, None])


def _factorize(values: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], int]:
    """Dense ids ``0 .. count-1`` for the distinct values, and their count."""
    encoded = pc.dictionary_encode(pa.array(values, pa.int64()))
    ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return ids, len(encoded.dictionary)


def combine(
    codes: Sequence[npt.NDArray[np.int64]], sizes: Sequence[int]
) -> tuple[npt.NDArray[np.int64], int]:
    """One dense id per distinct combination of several code columns (row-aligned), and the count.

    ``sizes`` bound each column's codes (``0 <= code < size``).
    """
    combined = np.zeros(len(codes[0]) if codes else 0, dtype=np.int64)
    span = 1
    for code, size in zip(codes, sizes, strict=True):
        if span * size >= 1 << 62:  # keep the mixed-radix number inside int64
            combined, span = _factorize(combined)
        combined = combined * size + code
        span *= size
    return _factorize(combined)


def representatives(ids: npt.NDArray[np.int64], count: int) -> npt.NDArray[np.int64]:
    """A row carrying each id (any one: rows with equal ids agree on what the id encodes)."""
    rows = np.zeros(count, dtype=np.int64)
    rows[ids] = np.arange(len(ids), dtype=np.int64)
    return rows
