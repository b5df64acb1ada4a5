"""Side work runs in threads, or inline in a process that has a core to itself."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from factories import LandscapeBuilder, ShopMix, build_shop

from orchscan.analyzer.thresholds import Thresholds
from orchscan.collectors import side_threads
from orchscan.collectors.traces.partition import PartitionStore
from orchscan.engines import local
from orchscan.engines.units import ReduceTask, UnitsHandover


def _thread_of_task(pool_threads: int) -> tuple[int, int]:
    with side_threads.side_pool(pool_threads) as pool:
        return threading.get_ident(), pool.submit(threading.get_ident).result()


def test_side_work_runs_in_a_thread_until_the_process_runs_it_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    caller, worker = _thread_of_task(2)
    assert caller != worker
    monkeypatch.setattr(side_threads, "_inline", False)
    side_threads.run_inline()
    caller, worker = _thread_of_task(2)
    assert caller == worker
    with side_threads.side_pool(2) as pool:
        assert list(pool.map(lambda n: n * n, [1, 2, 3])) == [1, 4, 9]
        failed = pool.submit(lambda: 1 // 0)
    with pytest.raises(ZeroDivisionError):
        failed.result()


def test_reducing_workers_run_side_work_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spans = build_shop(LandscapeBuilder(), ShopMix(orders=5, checkouts=5, routed=5)).table()
    store = PartitionStore(8, spill_bytes=1 << 40, work_dir=tmp_path)
    for batch in spans.to_batches(max_chunksize=997):
        store.add(batch)
    units = UnitsHandover(store.finish().units(50))
    assert units.count >= 2  # so that the engine starts workers
    seen = tmp_path / "inline"
    reduce_unit = local.reduce_unit

    def noted(*args: object) -> object:
        seen.write_text(str(side_threads._inline))  # the forked workers inherit this function
        return reduce_unit(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "reduce_unit", noted)
    task = ReduceTask({}, Thresholds(), heavy_bytes=1 << 30, work_dir=tmp_path)
    with local.local_engine(units, task, jobs=2) as engine:
        engine.reduce()
    assert seen.read_text() == "True"
    assert not side_threads._inline  # the parent keeps its threads
