"""The hashed duplicate and parent checks give the same answers as comparing the id strings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sdk_spans import batches, encode, framed, record_landscape, write

from orchscan.collectors.model import integrity
from orchscan.collectors.model.integrity import drop_duplicates, repair_parents
from orchscan.collectors.traces.ingest import ingest


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    land = record_landscape()
    path = write(Path(tmp_path_factory.mktemp("t")) / "t.pb", encode(land.spans).SerializeToString())
    return ingest([path], jobs=1).spans


def _damaged(table: pa.Table) -> pa.Table:
    """Two duplicate rows, one absent parent and a two-span parent cycle."""
    spans = table["span_id"].to_pylist()
    parents = table["parent_span_id"].to_pylist()
    parents[1] = "00000000deadbeef"
    parents[2], parents[3] = spans[3], spans[2]
    cut = table.set_column(
        table.schema.get_field_index("parent_span_id"), "parent_span_id", pa.array(parents)
    )
    return pa.concat_tables([cut, cut.slice(4, 2)])


def _answers(table: pa.Table) -> tuple[pa.Table, list[object]]:
    kept, skipped = drop_duplicates(table)
    repaired, notices, _ = repair_parents(kept)
    return repaired, [*skipped, *notices]


def test_colliding_hashes_fall_back_to_the_strings(table: pa.Table, monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = _damaged(table)
    expected = _answers(damaged)
    assert len(expected[1]) == 3
    # Every key hashing alike is the worst collision there is; the answers must not change.
    monkeypatch.setattr(
        integrity, "_mixed", lambda views, salt: np.zeros(sum(len(v) for v in views), dtype=np.uint64)
    )
    repaired, records = _answers(damaged)
    assert repaired.equals(expected[0]) and records == expected[1]


def test_partly_colliding_hashes_keep_the_first_copy_of_each_span(
    table: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    damaged = _damaged(table)
    expected = drop_duplicates(damaged)
    assert expected[1][0].count == 2
    # Hashes cut to three bits: distinct spans now share hashes with copies and with each other,
    # and only the strings of the rows whose hash repeats can tell them apart.
    real = integrity._mixed
    monkeypatch.setattr(integrity, "_mixed", lambda views, salt: real(views, salt) & np.uint64(7))
    kept, skipped = drop_duplicates(damaged)
    assert kept.equals(expected[0]) and skipped == expected[1]


def test_ids_of_unusual_length_are_compared_as_strings(table: pa.Table) -> None:
    damaged = _damaged(table)
    short = [s[-6:] for s in damaged["span_id"].to_pylist()]
    parents = [p if p is None else p[-6:] for p in damaged["parent_span_id"].to_pylist()]
    odd = damaged.set_column(damaged.schema.get_field_index("span_id"), "span_id", pa.array(short))
    odd = odd.set_column(odd.schema.get_field_index("parent_span_id"), "parent_span_id", pa.array(parents))
    repaired, records = _answers(odd)
    expected_table, expected_records = _answers(damaged)
    assert repaired.num_rows == expected_table.num_rows and records == expected_records


def test_parents_in_other_batches_are_found(tmp_path: Path) -> None:
    land = record_landscape()
    # A file per few spans: most parents sit in another batch than their children.
    requests = batches(land.spans, 3)
    paths = [write(tmp_path / f"part-{i}.binpb", framed([r])) for i, r in enumerate(requests)]
    table = ingest(paths, jobs=1).spans
    assert table["trace_id"].num_chunks == len(requests)
    keys = list(zip(table["trace_id"].to_pylist(), table["span_id"].to_pylist(), strict=True))
    row_of = {key: row for row, key in enumerate(keys)}
    parents = zip(table["trace_id"].to_pylist(), table["parent_span_id"].to_pylist(), strict=True)
    expected = [row_of.get((trace, parent), -1) for trace, parent in parents]
    assert sum(row >= 0 for row in expected) > len(requests)
    assert integrity.parent_rows(table).tolist() == expected


def test_ids_that_count_up_hash_apart() -> None:
    # Sequential ids, as test rigs and some tracers write them: trace n, spans 64(n-1)+1, +2, ...
    # Before the finaliser, pairs such as (trace 0x4d0, span 0x133c7) and (0x4cf, 0x13389) collided.
    traces = np.repeat(np.arange(1, 20_001), 12)
    spans = (traces - 1) * 64 + np.tile(np.arange(1, 13), 20_000)
    table = pa.table(
        {
            "trace_id": pa.array([f"{t:032x}" for t in traces]),
            "span_id": pa.array([f"{s:016x}" for s in spans]),
        }
    )
    hashes = integrity._pair_hashes(table, "span_id")
    assert hashes is not None
    assert len(np.unique(hashes)) == table.num_rows


def test_span_rows_finds_linked_spans_and_survives_colliding_hashes(
    table: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    traces, spans = table["trace_id"].to_pylist(), table["span_id"].to_pylist()
    wanted_traces = pa.array([traces[5], traces[0], traces[5], None], pa.string())
    wanted_spans = pa.array([spans[5], spans[0], "00000000deadbeef", spans[1]], pa.string())
    expected = [5, 0, -1, -1]
    assert integrity.span_rows(table, wanted_traces, wanted_spans).tolist() == expected
    monkeypatch.setattr(
        integrity, "_mixed", lambda views, salt: np.zeros(sum(len(v) for v in views), dtype=np.uint64)
    )
    assert integrity.span_rows(table, wanted_traces, wanted_spans).tolist() == expected
