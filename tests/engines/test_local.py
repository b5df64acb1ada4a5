"""The local engine lets go of routed spans it no longer needs, so they weigh on no later peak."""

from __future__ import annotations

import weakref
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from factories import LandscapeBuilder, ShopMix, build_shop, with_copies

from orchscan.analyzer.reduction import Selection
from orchscan.analyzer.thresholds import Thresholds
from orchscan.collectors.traces.partition import PartitionStore
from orchscan.engines.local import local_engine
from orchscan.engines.units import FOLD_BLOCK, ReduceTask, UnitsHandover


def _routed_in_memory(work_dir: Path) -> tuple[UnitsHandover, int, int, list[weakref.ref[pa.RecordBatch]]]:
    """A generated shop of a few thousand spans, routed into partitions held in memory; also the
    Arrow memory they hold, the number of traces and weak references to the routed batches."""
    base = pa.total_allocated_bytes()
    spans = with_copies(
        build_shop(LandscapeBuilder(), ShopMix(orders=20, checkouts=20, routed=20)).table(), 20
    )
    store = PartitionStore(16, spill_bytes=1 << 40, work_dir=work_dir)
    for batch in spans.to_batches(max_chunksize=997):
        store.add(batch)
    traces = len(pc.unique(spans.column("trace_id")))
    del spans
    partitions = store.finish()
    assert not partitions.parts[0].files  # nothing was spilled
    batches = [batch for part in partitions.parts for batch in part.spans]
    held = pa.total_allocated_bytes() - base
    return UnitsHandover(partitions.units(2_000)), held, traces, [weakref.ref(b) for b in batches]


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_routed_spans_are_freed_once_reduced(jobs: int, tmp_path: Path) -> None:
    units, held, traces, batches = _routed_in_memory(tmp_path)
    assert units.count > 2
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    with local_engine(units, task, jobs=jobs) as engine:
        before = pa.total_allocated_bytes()
        results = engine.reduce()
        after = pa.total_allocated_bytes()
        assert not any(batch() for batch in batches)
        selected = engine.select(
            Selection(frozenset(), frozenset(), frozenset(), frozenset(), 1.0, results[0].light.answers)
        )
    # Every unit is selected from; the partials come merged in blocks of consecutive units.
    assert len(selected) == units.count
    assert len(results) == -(-units.count // FOLD_BLOCK)
    assert sum(r.traces for r in results) == traces
    if jobs > 1:
        # The workers reduce and keep their records in their own memory: the parent's Arrow
        # memory shrinks by the routed spans.
        assert before - after >= held * 0.9


def test_units_are_handed_over_once(tmp_path: Path) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    units.take()
    with pytest.raises(RuntimeError, match="handed over already"):
        units.take()
