"""Repeating text columns are dictionary-coded in every reader's table and decode to the same text."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from paths import ROOT
from sdk_spans import batches, framed, otlp_json_lines, record_landscape, write

from orchscan.analyzer.requests.calls import build_call_tables
from orchscan.collectors.model.spans import CODED, COLUMNS, SCHEMA, plain_strings, span_batch, total_services
from orchscan.collectors.traces.ingest import ingest

FIXTURES = ROOT / "tests" / "fixtures"
CODED_COLUMNS = [name for name, (dtype, _) in COLUMNS.items() if dtype == CODED]

# One real input per reader: SDK spans as OTLP protobuf and JSON Lines, the sample's Zipkin
# rendition (recorded by the Zipkin exporter), PetClinic's Jaeger JSON.
READERS = {
    "zipkin-json": ROOT / "sample_traces" / "renditions" / "shop.zipkin.json.gz",
    "jaeger-json": FIXTURES / "spring-petclinic" / "traces",
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    folder = Path(tmp_path_factory.mktemp("coding"))
    requests = batches(record_landscape().spans, 7)
    # A file per request, so that the batches' dictionaries differ.
    parts = [write(folder / f"part-{i}.binpb", framed([r])) for i, r in enumerate(requests)]
    paths = {
        "otlp-proto": parts,
        "otlp-json": [write(folder / "spans.jsonl", otlp_json_lines(requests))],
        **{fmt: [path] for fmt, path in READERS.items()},
    }
    return {fmt: ingest(files, jobs=1).spans for fmt, files in paths.items()}


def test_the_listed_columns_are_coded_in_every_reader(tables: dict[str, pa.Table]) -> None:
    assert {"service", "name", "kind", "status", "http_method", "http_route"} <= set(CODED_COLUMNS)
    for fmt, table in tables.items():
        assert table.schema.equals(SCHEMA), fmt
        assert table.num_rows > 0 and set(table["kind"].to_pylist()) >= {"server", "client"}, fmt


def test_plain_strings_decodes_to_the_same_text(tables: dict[str, pa.Table]) -> None:
    for fmt, table in tables.items():
        plain = plain_strings(table)
        for name in CODED_COLUMNS:
            assert plain.schema.field(name).type == pa.string(), (fmt, name)
            assert plain[name].to_pylist() == table[name].to_pylist(), (fmt, name)
        others = [name for name in COLUMNS if name not in CODED_COLUMNS]
        assert plain.select(others).equals(table.select(others)), fmt
        # Idempotent, and free on a table that is already plain.
        assert plain_strings(plain) is plain


def test_services_are_counted_across_differing_dictionaries(tables: dict[str, pa.Table]) -> None:
    table = tables["otlp-proto"]
    dictionaries = {tuple(chunk.dictionary.to_pylist()) for chunk in table["service"].chunks}
    assert len(dictionaries) > 1, "the batches should hold different services"
    assert total_services(table) == len(set(table["service"].to_pylist()))


def test_analysis_reads_coded_and_plain_tables_alike(tables: dict[str, pa.Table]) -> None:
    table = tables["otlp-proto"]
    coded, plain = build_call_tables(table), build_call_tables(plain_strings(table))
    for frame, expected in (
        (coded.spans, plain.spans),
        (coded.requests, plain.requests),
        (coded.calls, plain.calls),
    ):
        assert not any(isinstance(dtype, pd.CategoricalDtype) for dtype in frame.dtypes)
        pd.testing.assert_frame_equal(frame, expected)
    assert len(coded.calls) > 0


def test_span_batch_codes_plain_text_and_keeps_coded_arrays() -> None:
    rows = 3
    columns = {field.name: pa.nulls(rows, field.type) for field in SCHEMA}
    columns["service"] = pa.array(["orders", "payment", "orders"])
    columns["kind"] = pa.array(["server", "client", "server"], type=CODED)
    batch = span_batch(columns)
    assert batch.schema.equals(SCHEMA)
    assert batch.column("service").dictionary.to_pylist() == ["orders", "payment"]
    assert batch.column("service").to_pylist() == ["orders", "payment", "orders"]
    assert batch.column("kind").to_pylist() == ["server", "client", "server"]
