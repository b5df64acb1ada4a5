"""Spec coverage findings on the sample landscape with a spec that drifted from the traffic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from paths import SAMPLE

from orchscan.analyzer.pipeline import analyze
from orchscan.collectors.openapi.loader import load_specs
from orchscan.collectors.traces.ingest import ingest


def test_undocumented_and_unused_operations_become_findings(tmp_path: Path) -> None:
    specs = tmp_path / "openapi"
    shutil.copytree(SAMPLE / "openapi", specs)
    inventory = json.loads((specs / "inventory.json").read_text())
    inventory["paths"]["/legacy/export"] = {"get": {"operationId": "exportStock", "responses": {"200": {}}}}
    del inventory["paths"]["/stock/{sku}"]
    (specs / "inventory.json").write_text(json.dumps(inventory))

    result = analyze(ingest([SAMPLE / "traces"], jobs=1), specs=load_specs([specs]))
    findings = {(f.rule, f.service): f for f in result.analysis.findings}

    undocumented = findings[("undocumented-endpoint", "inventory")]
    assert undocumented.severity == "low"
    assert any(line.startswith("GET /stock/") for line in undocumented.evidence)
    unused = findings[("unused-operation", "inventory")]
    assert unused.evidence == ("GET /legacy/export",)
    coverage = {c.service: c for c in result.analysis.coverage}
    assert 0 < coverage["inventory"].match_rate < 1
    assert coverage["payment"].match_rate == 1.0
    assert result.analysis.input.openapi_match_rate is not None
    assert result.analysis.input.openapi_match_rate < 1.0
    assert not any(service == "payment" for rule, service in findings if rule == "undocumented-endpoint")
