"""The input reader's workers: a head start before the batches are read, a window across file
ends, and workers that stop when the reader is left unread."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pytest
from paths import FIXTURES
from sdk_spans import Landscape, batches, framed, otlp_json_lines, record_landscape, write

from orchscan.collectors.model.records import Notice, Skipped
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces import jsonio
from orchscan.collectors.traces.formats import otlp_frames
from orchscan.collectors.traces.ingest import InputReader


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


@pytest.fixture
def inputs(land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Files of several formats, each split into many small chunks, with an empty and an
    unreadable file between them."""
    monkeypatch.setattr(otlp_frames, "CHUNK_BYTES", 2000)
    monkeypatch.setattr(jsonio, "CHUNK_BYTES", 2048)
    return [
        write(tmp_path / "a.binpb", framed(batches(list(land.spans) * 20, 40))),
        write(tmp_path / "b.json", ""),
        FIXTURES / "spring-petclinic/traces/spanAmongEachOtherGroupedAndSpans.jaeger.json",
        write(tmp_path / "c.json", "{not json"),
        write(tmp_path / "d.jsonl", otlp_json_lines(batches(list(land.spans) * 10, 50))),
        FIXTURES / "zipkin-lens-testdata/traces/messaging-kafka.json",
    ]


class _Read(NamedTuple):
    table: pa.Table
    batches: int
    progress: list[int]
    skipped: list[Skipped]
    notices: list[Notice]
    formats: dict[str, str]


def _read_all(paths: list[Path], jobs: int, head_start: int | None) -> _Read:
    progress: list[int] = []
    reader = InputReader(paths, jobs=jobs, on_progress=progress.append)
    if head_start is not None:
        reader.start(head_start)
    read = list(reader.batches())
    table = plain_strings(pa.Table.from_batches(read))
    return _Read(table, len(read), progress, sorted(reader.skipped), sorted(reader.notices), reader.formats)


@pytest.mark.parametrize("head_start", [None, 0, 10_000, 1 << 30])
def test_workers_read_what_one_process_reads_in_the_same_order(
    inputs: list[Path], head_start: int | None
) -> None:
    """Whatever the head start, every file's spans come in input order, each file's progress is
    reported once its last chunk is read, and nothing is skipped or noticed differently."""
    alone = _read_all(inputs, 1, None)
    workers = _read_all(inputs, 3, head_start)
    assert alone.batches > 10 and alone.table.num_rows > 300
    assert workers.table.equals(alone.table) and workers.batches == alone.batches
    assert workers.progress == alone.progress == [path.stat().st_size for path in inputs]
    assert workers.skipped == alone.skipped and len(workers.skipped) == 2
    assert workers.formats == alone.formats and workers.notices == alone.notices


def test_a_head_start_hands_the_workers_chunks_before_any_batch_is_read(inputs: list[Path]) -> None:
    with InputReader(inputs, jobs=2) as reader:
        reader.start(30_000)
        assert reader.formats[inputs[0].as_posix()] == "otlp-proto"  # opened, its format detected
        assert len(multiprocessing.active_children()) == 2
    assert not multiprocessing.active_children()


def test_a_started_reader_left_unread_stops_its_workers(inputs: list[Path]) -> None:
    reader = InputReader(inputs, jobs=2)
    reader.start(1 << 30)
    assert multiprocessing.active_children()
    reader.close()
    assert not multiprocessing.active_children()


def test_a_reader_of_one_job_starts_no_worker(inputs: list[Path]) -> None:
    reader = InputReader(inputs, jobs=1)
    reader.start(1 << 30)
    assert not multiprocessing.active_children() and not reader.formats
    assert pa.Table.from_batches(list(reader.batches())).num_rows > 100
