"""Lists in table cells: the first few items shown, the rest folded behind their count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: A list in a table cell longer than this folds behind its count.
CELL_ITEMS = 3


@dataclass(frozen=True)
class ListCell:
    """A list in a table cell: the first ``CELL_ITEMS`` items, the rest folded behind their count."""

    head: tuple[str, ...]
    rest: tuple[str, ...]


def list_cell(items: Sequence[str]) -> ListCell:
    """A cell list showing its first ``CELL_ITEMS`` items; the others fold behind their count."""
    return ListCell(tuple(items[:CELL_ITEMS]), tuple(items[CELL_ITEMS:]))
