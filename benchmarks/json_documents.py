"""Peak memory and time of reading one large JSON document: OTLP/JSON and Jaeger JSON.

Users export whole trace stores as a single document (``{"resourceSpans": [...]}`` from an OTLP
dump, ``{"data": [...]}`` from Jaeger's query API). The generator writes such documents of a given
size from the ingest benchmark's synthetic landscape, one trace batch at a time, so that the
generator itself never holds the document; each measurement runs ``orchscan inspect`` in a fresh
child process, beside the bare protobuf loop of ``ingest.py`` over the same spans.

    python benchmarks/json_documents.py                     # ~1 GB each, -j 2
    python benchmarks/json_documents.py --megabytes 200 --formats otlp-json
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as bench  # the sibling benchmark's landscape and measurement

# Spans per OTLP ResourceSpans group, as an exporter's batch would hold them.
_SPANS_PER_BATCH = bench.SPANS_PER_MESSAGE


def _otlp_resource_spans(spans: list[bench.SyntheticSpan]) -> bytes:
    """The ``resourceSpans`` items of one batch, as the bytes between the list's brackets."""
    line = bench._otlp_json_line(bench._request(spans), spans).rstrip(b"\n")
    prefix = b'{"resourceSpans":['
    assert line.startswith(prefix) and line.endswith(b"]}")
    return line[len(prefix) : -2]


def _items(fmt: str) -> Iterator[tuple[bytes, list[bench.SyntheticSpan]]]:
    """Document items (with the spans behind them), endlessly: the caller stops at its size."""
    batch: list[bench.SyntheticSpan] = []
    for trace in bench.generate(10**9):
        if fmt == "jaeger-json":
            yield orjson.dumps(bench._jaeger_trace(trace)), trace
            continue
        batch += trace
        if len(batch) >= _SPANS_PER_BATCH:
            yield _otlp_resource_spans(batch), batch
            batch = []


def write_document(fmt: str, megabytes: int) -> tuple[Path, Path, int]:
    """Write one ``fmt`` document of about ``megabytes`` MB and the same spans as framed protobuf.

    Returns the document, the protobuf twin (for the bare loop) and the span count. Files of the
    same size are reused.
    """
    bench.DATA.mkdir(parents=True, exist_ok=True)
    document = bench.DATA / f"document-{fmt}-{megabytes}MB.json"
    twin = bench.DATA / f"document-{fmt}-{megabytes}MB.binpb"
    count_file = bench.DATA / f"document-{fmt}-{megabytes}MB.spans"
    if document.exists() and twin.exists() and count_file.exists():
        return document, twin, int(count_file.read_text())
    opening, closing = (b'{"data":[', b"]}") if fmt == "jaeger-json" else (b'{"resourceSpans":[', b"]}")
    limit = megabytes * 10**6
    written = spans = 0
    pending: list[bench.SyntheticSpan] = []
    with document.open("wb") as out, twin.open("wb") as proto:
        out.write(opening)
        for index, (item, batch) in enumerate(_items(fmt)):
            out.write((b"," if index else b"") + item)
            written += len(item) + 1
            spans += len(batch)
            pending += batch
            if len(pending) >= _SPANS_PER_BATCH:
                body = bench._request(pending).SerializeToString()
                proto.write(struct.pack(">I", len(body)) + body)
                pending = []
            if written >= limit:
                break
        if pending:
            body = bench._request(pending).SerializeToString()
            proto.write(struct.pack(">I", len(body)) + body)
        out.write(closing)
    count_file.write_text(str(spans))
    return document, twin, spans


def main() -> None:
    """Generate the documents, then measure the bare loop and ``orchscan inspect`` on each."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=1000, help="size of each document (default 1000)")
    parser.add_argument("--formats", default="otlp-json,jaeger-json")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    python = sys.executable
    for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
        document, twin, spans = write_document(fmt, args.megabytes)
        print(f"{document.name}: {document.stat().st_size / 2**20:.0f} MB, {spans:,} spans", flush=True)
        for round_ in range(args.repeat):
            baseline = bench._isolated(
                "bare loop (same spans, otlp-proto)", [python, bench.__file__, "--bare", str(twin)]
            )
            bench._report(baseline, twin, None, spans, header=round_ == 0)
            command = [python, "-m", "orchscan", "inspect", "--json", "--no-progress", "-j", str(args.jobs)]
            run = bench._isolated(f"orchscan inspect {fmt} -j {args.jobs}", [*command, str(document)])
            bench._report(run, document, baseline, spans, header=False)


if __name__ == "__main__":
    main()
