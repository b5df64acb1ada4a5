"""Dask's memory manager sees a reduced unit at the size of its records, not of its wrappers."""

from __future__ import annotations

from pathlib import Path

from dask.sizeof import sizeof
from paths import SAMPLE

from orchscan.analyzer.thresholds import Thresholds
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.partition import Partition
from orchscan.engines.units import ReduceTask, reduce_unit


def test_a_reduced_unit_weighs_what_its_frames_weigh(tmp_path: Path) -> None:
    spans = ingest([SAMPLE / "traces"], jobs=1).spans
    unit = [Partition(tuple(spans.to_batches()), (), spans.num_rows)]
    light, heavy = reduced = reduce_unit(0, unit, ReduceTask({}, Thresholds(), 0, tmp_path))
    frames = [heavy.steps.calls, heavy.steps.requests, heavy.context.hosts, heavy.context.sent]
    # Dask's measure of a frame samples its text columns; it stays near pandas' deep count.
    records = sum(int(sizeof(frame)) for frame in frames)
    deep = sum(int(frame.memory_usage(deep=True).sum()) for frame in frames)
    assert records > 1_000_000 and deep / 2 < records < deep * 2
    assert sizeof(heavy) >= records
    assert sizeof(reduced) > records and sizeof(light) < records  # light: the partials sent back
