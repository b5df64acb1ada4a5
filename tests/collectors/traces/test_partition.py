"""Routing spans into partitions of whole traces: traces stay whole, links reach their producers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from factories import LandscapeBuilder, ShopMix, build_shop
from paths import SAMPLE

from orchscan.collectors.model.spans import SCHEMA
from orchscan.collectors.traces import partition
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.partition import (
    MAX_PARTITIONS,
    MIN_PARTITIONS,
    MIN_SPILL_WRITE_BUFFER,
    SPILL_BUFFERS_SHARE,
    SPILL_WRITE_BUFFER,
    Partitions,
    PartitionStore,
    load_unit,
    partition_count,
    trace_buckets,
)


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return ingest([SAMPLE / "traces"], jobs=1).spans


def _route(table: pa.Table, count: int, work_dir: Path, *, spill_bytes: int = 1 << 40) -> Partitions:
    store = PartitionStore(count, spill_bytes=spill_bytes, work_dir=work_dir)
    for batch in table.to_batches(max_chunksize=997):
        store.add(batch)
    return store.finish()


def _keys(table: pa.Table) -> list[tuple[str, str]]:
    return sorted(zip(table["trace_id"].to_pylist(), table["span_id"].to_pylist(), strict=True))


def test_every_trace_lands_whole_in_one_partition(sample: pa.Table, tmp_path: Path) -> None:
    partitions = _route(sample, 16, tmp_path)
    owner: dict[str, int] = {}
    for index, part in enumerate(partitions.parts):
        spans, _ = part.load()
        assert spans.num_rows == part.span_rows
        for trace in set(spans["trace_id"].to_pylist()):
            assert owner.setdefault(trace, index) == index
    assert partitions.spans == sample.num_rows
    assert sum(part.span_rows > 0 for part in partitions.parts) == 16
    together = pa.concat_tables(part.load()[0] for part in partitions.parts)
    assert _keys(together) == _keys(sample)


@pytest.mark.parametrize("spill_bytes", [1, 2_000_000], ids=["unbuffered", "buffered"])
def test_spilled_partitions_read_back_as_held_ones(
    sample: pa.Table, tmp_path: Path, spill_bytes: int
) -> None:
    held = _route(sample, 8, tmp_path / "held")
    spilled = _route(sample, 8, tmp_path / "spilled", spill_bytes=spill_bytes)
    assert not (tmp_path / "held").exists()  # nothing spilled, nothing written
    assert len(list((tmp_path / "spilled").glob("spans-*.arrow"))) == 8
    for kept, written in zip(held.parts, spilled.parts, strict=True):
        assert written.files and not written.spans
        (a_spans, a_stubs), (b_spans, b_stubs) = kept.load(), written.load()
        assert a_spans.to_pylist() == b_spans.to_pylist()
        assert a_stubs.to_pylist() == b_stubs.to_pylist()
        assert a_spans.schema == b_spans.schema == SCHEMA


@pytest.mark.parametrize("count", [MIN_PARTITIONS, 96, MAX_PARTITIONS])
@pytest.mark.parametrize("spill_bytes", [1, 50 << 20, 1 << 40])
def test_the_spill_files_buffers_stay_within_their_share(
    count: int, spill_bytes: int, tmp_path: Path
) -> None:
    store = PartitionStore(count, spill_bytes=spill_bytes, work_dir=tmp_path)
    assert 2 * count * store.write_buffer_bytes <= spill_bytes * SPILL_BUFFERS_SHARE
    assert store.write_buffer_bytes in {0} | set(range(MIN_SPILL_WRITE_BUFFER, SPILL_WRITE_BUFFER + 1))


def test_routed_spans_hold_their_source_path_once_per_batch(sample: pa.Table, tmp_path: Path) -> None:
    # The path repeats in every row; spilled as text it was a third of what routing wrote.
    written = {}
    for path in ("/a.binpb", "/" + "very-long-folder/" * 20 + "spans.binpb"):
        spans = sample.set_column(
            sample.schema.get_field_index("source"), "source", pa.array([path] * sample.num_rows)
        )
        folder = tmp_path / str(len(path))
        partitions = _route(spans, 8, folder, spill_bytes=1)
        written[path] = sum(file.stat().st_size for file in folder.glob("*.arrow"))
        loaded = pa.concat_tables(part.load()[0] for part in partitions.parts)
        assert set(loaded["source"].to_pylist()) == {path} and loaded.schema == SCHEMA
    short, long = written.values()
    assert long - short < sample.num_rows * 340 / 10  # as text: 340 more bytes a span


def test_linked_consumers_are_stubbed_where_their_producers_live(sample: pa.Table, tmp_path: Path) -> None:
    partitions = _route(sample, 32, tmp_path)
    linked = sample.filter(pc.greater(pc.list_value_length(sample["links"]).fill_null(0), 0))
    assert linked.num_rows > 100
    for part in partitions.parts:
        spans, stubs = part.load()
        own = set(spans["trace_id"].to_pylist())
        # Every stub links into this partition, and every consumer linking here is stubbed.
        for links in stubs["links"].to_pylist():
            assert any(link["trace_id"] in own for link in links)
        wanted = {
            (row["trace_id"], row["span_id"])
            for row in linked.to_pylist()
            if any(link["trace_id"] in own for link in row["links"])
        }
        assert set(zip(stubs["trace_id"].to_pylist(), stubs["span_id"].to_pylist(), strict=True)) == wanted


def test_a_unit_keeps_a_consumer_linked_into_two_of_its_partitions_once(tmp_path: Path) -> None:
    land = build_shop(LandscapeBuilder(), ShopMix(orders=0, order_lookups=0, checkouts=0, routed=0, homes=0))
    table = land.table()
    partitions = _route(table, 64, tmp_path)
    (unit,) = partitions.units(10**9)
    spans, stubs = load_unit(unit)
    assert _keys(spans) == _keys(table)
    consumers = table.filter(pc.greater(pc.list_value_length(table["links"]).fill_null(0), 0))
    assert Counter(_keys(stubs)) == Counter(_keys(consumers))


def test_a_unit_loads_as_one_chunk_per_partition_in_partition_order(sample: pa.Table, tmp_path: Path) -> None:
    partitions = _route(sample, 16, tmp_path, spill_bytes=1)  # a spill, so a file batch, per batch
    (unit,) = partitions.units(10**9)
    assert sum(part.load()[0].column("trace_id").num_chunks for part in unit) > 100
    spans, _ = load_unit(unit)
    assert {column.num_chunks for column in spans.columns} == {sum(part.span_rows > 0 for part in unit)}
    assert spans.to_pylist() == pa.concat_tables(part.load()[0] for part in unit).to_pylist()


@pytest.mark.parametrize("groups", [1, 5], ids=["at once", "in groups"])
def test_batches_waiting_together_are_sorted_into_one_slice_per_partition(
    sample: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, groups: int
) -> None:
    batches = sample.to_batches(max_chunksize=997)
    assert len(batches) > 20
    if groups > 1:
        monkeypatch.setattr(partition, "SORT_BYTES", sum(batch.nbytes for batch in batches) // groups)
    partitions = _route(sample, 16, tmp_path)
    buckets = trace_buckets(sample.column("trace_id").combine_chunks(), 16)
    for index, part in enumerate(partitions.parts):
        # At most one slice per sort, not one per routed batch; rows in the order they came.
        assert 1 <= len(part.spans) <= groups + 1
        expected = sample.filter(pa.array(buckets == index))
        assert pa.Table.from_batches(part.spans).to_pylist() == expected.to_pylist()


def test_units_group_consecutive_partitions_up_to_their_size(sample: pa.Table, tmp_path: Path) -> None:
    partitions = _route(sample, 64, tmp_path)
    units = partitions.units(3000)
    sizes = [sum(part.span_rows for part in unit) for unit in units]
    assert sum(sizes) == sample.num_rows
    biggest = max(part.span_rows for part in partitions.parts)
    assert all(size <= max(3000, biggest) for size in sizes)
    assert len(units) >= sample.num_rows // 3000


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_a_last_unit_left_over_is_shared_among_the_workers(
    sample: pa.Table, tmp_path: Path, workers: int
) -> None:
    """Units that do not divide evenly among the workers end in pieces of the last one, as many
    as the workers (or its partitions) allow; the partitions and their order stay the same."""
    partitions = _route(sample, 64, tmp_path)
    grouped = partitions.units(3000)
    shared = partitions.units(3000, workers)
    assert [part for unit in shared for part in unit] == [part for unit in grouped for part in unit]
    assert shared[: len(grouped) - 1] == grouped[:-1]
    if len(grouped) % workers:
        assert len(shared) == len(grouped) - 1 + min(workers, len(grouped[-1]))
        assert len(shared[-1]) < len(grouped[-1]) or len(grouped[-1]) == 1
    else:
        assert shared == grouped


def test_buckets_depend_on_the_trace_id_only() -> None:
    ids = pa.array(["0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"] * 3)
    odd = pa.array(["abc", "a-much-longer-trace-id", "abc"])
    buckets = trace_buckets(ids, 64)
    assert len(set(buckets[0::2])) == 1 and len(set(buckets[1::2])) == 1
    assert trace_buckets(odd, 8)[0] == trace_buckets(odd, 8)[2]
    assert (trace_buckets(ids, 64) < 64).all()


def test_partition_count_follows_the_input_size() -> None:
    assert partition_count(0, 100_000) == MIN_PARTITIONS
    assert partition_count(10**9, 100_000) == 100  # about 10M spans in units of 100k
    assert partition_count(10**15, 1000) == MAX_PARTITIONS
