"""Whole-table checks on spans the SDK recorded: duplicates, parent cycles, absent parents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sdk_spans import Landscape, encode, record_landscape, write

from orchscan.collectors.model.integrity import _on_cycle, drop_duplicates, parent_rows, repair_parents
from orchscan.collectors.model.records import Notice, Skipped
from orchscan.collectors.traces.ingest import ingest


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


@pytest.fixture
def table(land: Landscape, tmp_path: Path) -> pa.Table:
    return ingest([write(tmp_path / "t.pb", encode(land.spans).SerializeToString())], jobs=1).spans


def _with_parents(table: pa.Table, parents: dict[str, str | None]) -> pa.Table:
    """Re-point the parents of the spans named in ``parents`` (by span name) at other spans."""
    ids = dict(zip(table["name"].to_pylist(), table["span_id"].to_pylist(), strict=False))
    column = [
        (ids.get(parents[name], parents[name]) if parents.get(name) else None) if name in parents else parent
        for name, parent in zip(table["name"].to_pylist(), table["parent_span_id"].to_pylist(), strict=True)
    ]
    return table.set_column(
        table.schema.get_field_index("parent_span_id"), "parent_span_id", pa.array(column)
    )


def _parent_of(table: pa.Table, name: str) -> str | None:
    names = table["name"].to_pylist()
    return table["parent_span_id"].to_pylist()[names.index(name)]  # type: ignore[no-any-return]


def test_intact_table_passes_unchanged(table: pa.Table) -> None:
    assert drop_duplicates(table) == (table, [])
    repaired, notices, _ = repair_parents(table)
    assert repaired.equals(table) and notices == []


@pytest.mark.parametrize(
    ("loop", "members"),
    [
        ({"compute total": "compute total"}, 1),
        ({"SELECT carts": "INSERT orders", "INSERT orders": "SELECT carts"}, 2),
        (
            {
                "SELECT carts": "INSERT orders",
                "INSERT orders": "orders publish",
                "orders publish": "SELECT carts",
            },
            3,
        ),
    ],
    ids=["self", "two", "three"],
)
def test_cycles_are_cut_but_spans_hanging_below_keep_their_parent(
    table: pa.Table, loop: dict[str, str], members: int
) -> None:
    # "compute total" hangs below the cycle unless it is the cycle itself.
    below = {} if "compute total" in loop else {"compute total": "SELECT carts"}
    damaged = _with_parents(table, {**loop, **below})
    repaired, notices, parents = repair_parents(damaged)
    assert repaired.num_rows == table.num_rows
    # The parent rows handed on are those of the repaired links, cut ones -1.
    assert parents.tolist() == parent_rows(repaired).tolist()
    assert parents.tolist() != parent_rows(damaged).tolist()
    assert notices == [
        Notice(
            table["source"][0].as_py(),
            "parent links formed a cycle (links cut, spans kept as roots)",
            members,
        )
    ]
    for name in loop:
        assert _parent_of(repaired, name) is None
    for name in below:
        assert _parent_of(repaired, name) == _parent_of(damaged, name)
    assert _parent_of(repaired, "POST /orders") == _parent_of(table, "POST /orders")


def test_absent_parents_are_reported_and_kept(table: pa.Table) -> None:
    damaged = _with_parents(table, {"compute total": "00000000deadbeef", "SELECT carts": "00000000cafebabe"})
    repaired, notices, parents = repair_parents(damaged)
    assert repaired.equals(damaged)
    assert parents.tolist() == parent_rows(damaged).tolist()
    assert notices == [
        Notice(
            table["source"][0].as_py(), "parent span absent from the input (span kept as a fragment root)", 2
        )
    ]


def test_duplicates_keep_the_first_copy_and_count_per_file(table: pa.Table) -> None:
    again = table.slice(2, 5).set_column(
        table.schema.get_field_index("source"), "source", pa.array(["replay.pb"] * 5)
    )
    kept, skipped = drop_duplicates(pa.concat_tables([table, again, again]))
    assert kept.equals(table)
    assert skipped == [
        Skipped("replay.pb", "whole file", "duplicate span id (same trace); first copy kept", 10)
    ]


def test_the_same_span_id_in_another_trace_is_not_a_duplicate(table: pa.Table) -> None:
    other = table.set_column(
        table.schema.get_field_index("trace_id"), "trace_id", pa.array(["f" * 32] * table.num_rows)
    )
    kept, skipped = drop_duplicates(pa.concat_tables([table, other]))
    assert kept.num_rows == 2 * table.num_rows and skipped == []


def test_long_chains_are_not_mistaken_for_cycles() -> None:
    depth = 5000
    chain = np.arange(-1, depth - 1, dtype=np.int64)  # row i's parent is row i - 1
    assert not _on_cycle(chain).any()
    looped = chain.copy()
    looped[0] = depth - 1
    assert _on_cycle(looped).all()
