"""The local engine lets go of routed spans it no longer needs, and keeps its workers busy while it merges."""

from __future__ import annotations

import pickle
import time
import weakref
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from factories import LandscapeBuilder, ShopMix, build_shop, with_copies

from orchscan.analyzer.pipeline import SpecContext, plan_landscape
from orchscan.analyzer.reduction import PartitionHeavy, SelectedRecords, Selection
from orchscan.analyzer.thresholds import Thresholds
from orchscan.collectors.traces.partition import PartitionStore
from orchscan.engines import local
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


@pytest.mark.parametrize("jobs", [1, 2])
def test_spilled_partitions_are_deleted_once_reduced(jobs: int, tmp_path: Path) -> None:
    spans = with_copies(
        build_shop(LandscapeBuilder(), ShopMix(orders=20, checkouts=20, routed=20)).table(), 5
    )
    spilled, held = tmp_path / "spilled", tmp_path / "held"
    results = {}
    for folder, spill_bytes in ((spilled, 1), (held, 1 << 40)):
        store = PartitionStore(16, spill_bytes=spill_bytes, work_dir=folder / "parts")
        for batch in spans.to_batches(max_chunksize=997):
            store.add(batch)
        units = UnitsHandover(store.finish().units(2_000))
        files = sorted((folder / "parts").glob("*.arrow"))
        assert bool(files) == (folder == spilled)
        task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=folder)
        with local_engine(units, task, jobs=jobs) as engine:
            reduced = engine.reduce()
        assert not any(path.exists() for path in files)
        results[folder] = sorted((r.traces, len(r.light.edges.edges)) for r in reduced)
    assert results[spilled] == results[held]


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_engine_lets_go_of_its_records_and_workers_once_it_has_selected(
    jobs: int, tmp_path: Path
) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    with local_engine(units, task, jobs=jobs) as engine:
        results = engine.reduce()
        # One job keeps the records in this process (the last unit's as they are, the others
        # packed); more keep them in the workers.
        workers = [process for process, _ in engine._workers]
        held = [*engine._held._memory, *([engine._held._live[0]] if engine._held._live else [])]
        assert (len(workers), sorted(held)) == ((0, list(range(units.count))) if jobs == 1 else (jobs, []))
        selected = engine.select(
            Selection(frozenset(), frozenset(), frozenset(), frozenset(), 1.0, results[0].light.answers)
        )
        # Still inside the engine's block: the landscape's mining runs here, without them.
        assert not any(process.is_alive() for process in workers)
        assert not engine._held._memory and engine._held._live is None
    assert len(selected) == units.count


@pytest.mark.parametrize("jobs", [1, 2])
def test_records_spilled_to_disk_select_the_same_as_records_held_in_memory(jobs: int, tmp_path: Path) -> None:
    selected = {}
    for budget in (1 << 30, 0):
        work_dir = tmp_path / str(budget)
        work_dir.mkdir()
        units, *_ = _routed_in_memory(work_dir)
        task = ReduceTask({}, Thresholds(), heavy_bytes=budget, work_dir=work_dir)
        with local_engine(units, task, jobs=jobs) as engine:
            results = engine.reduce()
            spilled = list(work_dir.glob("heavy-*"))
            # Each worker's last unit is selected from as it is, never packed.
            assert len(spilled) == (units.count - min(jobs, units.count) if budget == 0 else 0)
            assert units.count > jobs
            landscape = plan_landscape([r.light for r in results], specs=SpecContext.of(None, (), None))
            assert landscape.selection.candidates  # the shop's orchestrations are selected
            selected[budget] = SelectedRecords.merge(engine.select(landscape.selection))
        assert not list(work_dir.glob("heavy-*"))
    held, spilled_records = selected[1 << 30], selected[0]
    assert len(held.steps.requests) > 20
    pd.testing.assert_frame_equal(held.steps.calls, spilled_records.steps.calls)
    pd.testing.assert_frame_equal(held.steps.requests, spilled_records.steps.requests)


def test_workers_send_each_units_selected_records_on_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    sizes: list[int] = []
    answer = local._answer

    def counted(worker: int, workers: Any) -> Any:
        payload = answer(worker, workers)
        sizes.append(len(payload))
        return payload

    with local_engine(units, task, jobs=2) as engine:
        results = engine.reduce()
        monkeypatch.setattr(local, "_answer", counted)
        selected = engine.select(
            Selection(frozenset(), frozenset(), frozenset(), frozenset(), 1.0, results[0].light.answers)
        )
    # One answer per unit, then an empty one from each worker: no worker holds all of its units'.
    assert sorted(sizes) == [0, 0] + [1] * units.count
    assert len(selected) == units.count


def test_workers_end_quietly_when_their_parent_is_gone(tmp_path: Path) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    with local_engine(units, task, jobs=2) as engine:
        engine.reduce()
        workers = [process for process, _ in engine._workers]
        # What a parent killed outright leaves: its ends of the pipes closed, no "stop" sent.
        for _, connection in engine._workers:
            connection.close()
        for process in workers:
            process.join(timeout=10)
        assert [process.exitcode for process in workers] == [0, 0]


def test_a_worker_whose_parent_went_away_during_its_reduction_ends_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    reduce_unit = local.reduce_unit

    def slow(*args: Any) -> Any:
        time.sleep(0.5)  # the parent is gone by the time the answer is ready
        return reduce_unit(*args)

    monkeypatch.setattr(local, "reduce_unit", slow)  # the forked workers inherit it
    engine = local.LocalEngine(
        units, ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path), jobs=2
    )
    engine._start()
    engine._send(0, [0], {0: []})
    (process, connection), _ = engine._workers
    connection.close()  # what a parent killed outright leaves
    process.join(timeout=30)
    # Not 1: the answer it could not send is no failure to report, with nobody left to read it.
    assert process.exitcode == 0
    engine.close()


def test_an_eof_error_inside_a_units_reduction_is_reported_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the parent's closed connection ends a worker quietly; the same exception raised by
    the reduction (a truncated stream, say) is a failure like any other."""
    units, *_ = _routed_in_memory(tmp_path)

    def truncated(*args: Any) -> Any:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")

    monkeypatch.setattr(local, "reduce_unit", truncated)  # the forked workers inherit it
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    with (
        pytest.raises(local.WorkerError, match="end-of-stream marker"),
        local_engine(units, task, jobs=2) as engine,
    ):
        engine.reduce()


def test_units_are_handed_over_once(tmp_path: Path) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    units.take()
    with pytest.raises(RuntimeError, match="handed over already"):
        units.take()


def test_a_worker_has_its_next_unit_before_the_parent_merges_partials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    assert units.count > FOLD_BLOCK + 2
    events: list[tuple[str, int]] = []
    tell, add = local._tell, local.ResultsInBlocks.add

    def sent(worker: int, workers: Any, message: tuple[str, Any]) -> None:
        if message[0] == "reduce":
            events.append(("sent", message[1]))
        tell(worker, workers, message)

    def merged(self: local.ResultsInBlocks, index: int, result: Any) -> None:
        events.append(("merged", index))
        add(self, index, result)

    monkeypatch.setattr(local, "_tell", sent)
    monkeypatch.setattr(local.ResultsInBlocks, "add", merged)
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    with local_engine(units, task, jobs=2) as engine:
        engine.reduce()
    # Each worker was sent UNITS_IN_FLIGHT units at the start, and before the parent merges a
    # unit's partials, its worker has been sent the next one (while any remained).
    assert local.UNITS_IN_FLIGHT == 2
    for position, (kind, _) in enumerate(events):
        if kind == "merged":
            sent_before = sum(1 for k, _ in events[:position] if k == "sent")
            merged_before = position - sent_before
            assert sent_before == min(units.count, merged_before + 1 + 2 * local.UNITS_IN_FLIGHT)


def test_records_wait_pickled_within_the_budget_compressed_beyond_it_and_unpack_ahead(tmp_path: Path) -> None:
    selected, sizes = [], []
    for run in ("in memory", "two units in memory"):
        (tmp_path / run).mkdir()
        units, *_ = _routed_in_memory(tmp_path / run)
        budget = sum(sizes[:2]) if sizes else 1 << 30
        task = ReduceTask({}, Thresholds(), heavy_bytes=budget, work_dir=tmp_path / run)
        with local_engine(units, task, jobs=1) as engine:
            results = engine.reduce()
            held = engine._held
            assert units.count >= 4
            if not sizes:
                # Every unit but the last, as plain pickles: nothing compressed in memory.
                pickles = [held._memory[i] for i in range(units.count - 1)]
                assert all(isinstance(pickle.loads(p), PartitionHeavy) for p in pickles)
                sizes = [len(p) for p in pickles]
            else:
                assert sorted(held._memory) == [0, 1]
                on_disk = {index: path.stat().st_size for index, (path, _) in held._files.items()}
                assert sorted(on_disk) == list(range(2, units.count - 1))
                assert all(on_disk[i] < sizes[i] for i in on_disk)  # compressed
                held.unpack_ahead()
                assert not held._memory and sorted(i for i, _, _ in held._unpacked) == [0, 1]
                assert held._bytes == budget
            landscape = plan_landscape([r.light for r in results], specs=SpecContext.of(None, (), None))
            selected.append(SelectedRecords.merge(engine.select(landscape.selection)))
    kept, unpacked = selected
    assert len(kept.steps.requests) > 20
    pd.testing.assert_frame_equal(kept.steps.calls, unpacked.steps.calls)
    pd.testing.assert_frame_equal(kept.steps.requests, unpacked.steps.requests)


def test_each_worker_is_told_to_unpack_once_its_last_unit_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units, *_ = _routed_in_memory(tmp_path)
    told: dict[int, list[str]] = {0: [], 1: []}
    tell = local._tell

    def sent(worker: int, workers: Any, message: tuple[str, Any]) -> None:
        told[worker].append(message[0])
        tell(worker, workers, message)

    monkeypatch.setattr(local, "_tell", sent)
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    with local_engine(units, task, jobs=2) as engine:
        results = engine.reduce()
        engine.select(
            Selection(frozenset(), frozenset(), frozenset(), frozenset(), 1.0, results[0].light.answers)
        )
    # Every unit went to a worker; then each worker was told to unpack, once, before the selection.
    assert sum(kinds.count("reduce") for kinds in told.values()) == units.count
    for kinds in told.values():
        assert kinds == ["reduce"] * kinds.count("reduce") + ["unpack", "select"]
