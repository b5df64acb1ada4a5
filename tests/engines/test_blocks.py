"""Units' partials are merged level by level as they arrive: in unit order, a few held at a time."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from orchscan.engines import units as units_module
from orchscan.engines.units import FOLD_BLOCK, ResultsInBlocks


def _merged_as_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Stand-in results are tuples of unit indices; merging concatenates them and records the size."""
    sizes: list[int] = []

    def fold(results: Sequence[Any]) -> Any:
        sizes.append(len(results))
        return tuple(index for result in results for index in result)

    monkeypatch.setattr(units_module, "fold_results", fold)
    return sizes


@pytest.mark.parametrize("count", [1, 5, 8, 9, 20, 64, 65, 130, 600])
def test_any_arrival_order_gives_every_unit_once_in_unit_order(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _merged_as_runs(monkeypatch)
    order = list(range(count))
    random.Random(count).shuffle(order)
    blocks = ResultsInBlocks(count)
    for index in order:
        blocks.add(index, (index,))  # type: ignore[arg-type]
    results = blocks.results()
    assert [index for result in results for index in result] == list(range(count))  # type: ignore[attr-defined]
    assert all(size <= FOLD_BLOCK for size in sizes)
    # First-level blocks always; a level above only where the scan has that many units.
    expected = {1: 1, 5: 1, 8: 1, 9: 2, 20: 3, 64: 1, 65: 2, 130: 3, 600: 2}
    assert len(results) == expected[count]


def test_units_arriving_in_order_are_held_a_few_per_level(monkeypatch: pytest.MonkeyPatch) -> None:
    _merged_as_runs(monkeypatch)
    count = 4_000  # four levels of blocks
    blocks = ResultsInBlocks(count)
    most = 0
    for index in range(count):
        blocks.add(index, (index,))  # type: ignore[arg-type]
        most = max(most, len(blocks._held))
    assert most <= 4 * (FOLD_BLOCK - 1) + 1
    assert len(blocks.results()) <= 2 * FOLD_BLOCK
