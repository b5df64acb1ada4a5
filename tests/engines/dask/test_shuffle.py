"""Shuffle files hold exactly the partitions and units the local engine routes and groups in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import LandscapeBuilder, ShopMix, build_shop, with_copies

from orchscan.collectors.traces.partition import PartitionStore, load_unit
from orchscan.engines.dask.shuffle import load_partitions, piece_location, shuffled_units, write_partitions

COUNT, UNIT_SPANS = 8, 150


@pytest.mark.parametrize("at_url", [False, True], ids=["path", "file-url"])
def test_pieces_written_apart_read_back_as_the_local_units(at_url: bool, tmp_path: Path) -> None:
    table = with_copies(build_shop(LandscapeBuilder(), ShopMix(orders=4, restocks=4)).table(), 3)
    local = PartitionStore(COUNT, spill_bytes=1 << 40, work_dir=tmp_path)
    pieces = []
    for index, half in enumerate([table.slice(0, table.num_rows // 2), table.slice(table.num_rows // 2)]):
        store = PartitionStore(COUNT, spill_bytes=1 << 40, work_dir=tmp_path)
        for batch in half.to_batches(max_chunksize=97):
            store.add(batch)
            local.add(batch)
        folder = tmp_path.as_uri() if at_url else str(tmp_path)
        pieces.append(write_partitions(store.finish(), piece_location(folder, index)))
    expected = local.finish().units(UNIT_SPANS)
    units = shuffled_units(pieces, UNIT_SPANS)
    assert len(units) == len(expected) > 2
    stubs = 0
    for unit, parts in zip(units, expected, strict=True):
        assert unit.rows == tuple(part.span_rows for part in parts)
        (spans, unit_stubs), (local_spans, local_stubs) = load_unit(load_partitions(unit)), load_unit(parts)
        assert spans.equals(local_spans) and unit_stubs.equals(local_stubs)
        stubs += unit_stubs.num_rows
    assert stubs  # linked consumers were stubbed into the partitions of the traces they link to
