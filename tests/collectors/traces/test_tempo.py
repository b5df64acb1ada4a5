"""Grafana Tempo's trace-by-id answers (API v1 ``batches``, API v2 ``trace``) read as OTLP/JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from paths import FIXTURES

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.detect import HEAD_BYTES, detect
from orchscan.collectors.traces.ingest import ingest

TEMPO = FIXTURES / "tempo" / "traces"
TRACE = "077bd30f2f8154b5948dc04724f89ff5"


@pytest.mark.parametrize("name", ["oats-trace_by_id.tempo-v1.json", "oats-trace_by_id.tempo-v2.json"])
def test_tempo_trace_by_id_is_detected_and_read_whole(name: str) -> None:
    path = TEMPO / name
    assert detect(path.read_bytes()[:HEAD_BYTES]) == "otlp-json"
    result = ingest([path], jobs=1)
    assert result.skipped == () and result.notices == ()
    rows = {r["name"]: r for r in plain_strings(result.spans).to_pylist()}
    assert set(rows) == {"GET /stock", "StockController.getStock", "kafkaTopic publish"}
    assert {r["trace_id"] for r in rows.values()} == {TRACE}
    server, controller, publish = (
        rows["GET /stock"],
        rows["StockController.getStock"],
        rows["kafkaTopic publish"],
    )
    assert (server["span_id"], server["parent_span_id"]) == ("3fb4dd6f07c798b7", None)
    assert (
        controller["parent_span_id"] == server["span_id"]
        and publish["parent_span_id"] == controller["span_id"]
    )
    assert [r["kind"] for r in (server, controller, publish)] == ["server", "internal", "producer"]
    assert (server["service"], server["service_namespace"], server["service_instance"]) == (
        "app",
        "shop",
        "7d722ae5-15ae-47c5-81c5-41842a9b98ac",
    )
    assert (server["http_method"], server["http_route"], server["http_status_code"]) == ("GET", "/stock", 200)
    assert (publish["messaging_system"], publish["messaging_destination"]) == ("kafka", "kafkaTopic")
    assert server["start_ns"] == 1_693_573_635_765_422_206 and server["end_ns"] == 1_693_573_635_766_725_356


def test_both_api_versions_give_the_same_spans(tmp_path: Path) -> None:
    v1, v2 = (
        plain_strings(ingest([TEMPO / f"oats-trace_by_id.tempo-{v}.json"], jobs=1).spans).drop_columns(
            ["source"]
        )
        for v in ("v1", "v2")
    )
    assert v1.to_pylist() == v2.to_pylist()
