"""A span table read in many chunks keeps repeated column values once, not once per chunk."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.trace import SpanKind
from sdk_spans import BASE_NS, Recorder, batches, framed, write

from orchscan.collectors.traces.ingest import ingest


def test_source_and_empty_columns_share_one_buffer_across_chunks(tmp_path: Path) -> None:
    recorder = Recorder()
    tracer = recorder.tracer("orders")
    for index in range(12_000):
        # Long statements make the file span several 4 MB chunks.
        attributes = {"db.system.name": "postgresql", "db.query.text": f"SELECT {index} " + "x" * 400}
        tracer.start_span(
            f"query {index}", kind=SpanKind.CLIENT, attributes=attributes, start_time=BASE_NS
        ).end(end_time=BASE_NS + 1)
    spans = recorder.finished()
    recorder.shutdown()
    path = write(tmp_path / "many.binpb", framed(batches(spans, 100)))
    table = ingest([path], jobs=2).spans
    assert table.num_rows == len(spans)
    source = table["source"]
    assert source.num_chunks > 1
    assert set(source.to_pylist()) == {path.as_posix()}
    assert len({chunk.buffers()[2].address for chunk in source.chunks}) == 1
    empty = table["messaging_system"]
    assert empty.null_count == table.num_rows
    assert len({chunk.buffers()[1].address for chunk in empty.chunks}) == 1
    assert table["db_operation"].to_pylist() == ["SELECT"] * len(spans)
