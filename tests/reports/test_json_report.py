"""findings.json: every field the schema promises, validated against the published JSON Schema."""

from __future__ import annotations

import json

import jsonschema
from analysis_factories import shop_analysis
from landscape import SAGA_MIX, Noise, add_noise, build_table
from paths import ROOT

from orchscan.analyzer.pipeline import analyze
from orchscan.collectors.model.records import Ingest
from orchscan.collectors.traces.ingest import check_spans
from orchscan.reports.json_report import FORMAT_VERSION, render_json

SCHEMA = json.loads((ROOT / "reports" / "schemas" / "findings.schema.json").read_text())
DRAFT = "arazzo/checkout.arazzo.yaml"


def test_document_validates_against_published_schema() -> None:
    text = render_json(shop_analysis(), arazzo_files={"checkout:POST /checkout": DRAFT})
    document = json.loads(text)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["format_version"] == FORMAT_VERSION
    checkout = next(f for f in document["flows"] if f["id"] == "checkout:POST /checkout")
    assert [s["operation_id"] for s in checkout["steps"]][:3] == ["getCart", "reserveStock", "quoteShipping"]
    assert checkout["failure"]["retries"][0]["step"] == 5
    assert checkout["failure"]["retries"][0]["status_codes"] == [502, 503]
    assert checkout["failure"]["compensations"][0]["operation"]["operation_id"] == "releaseStock"
    assert checkout["arazzo"] == DRAFT
    assert {f["arazzo"] for f in document["flows"] if f["id"] != checkout["id"]} == {None}


def test_schema_rejects_an_unknown_role() -> None:
    document = json.loads(render_json(shop_analysis()))
    document["services"][0]["role"] = "boss"
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    assert errors and "boss" in errors[0].message


def test_output_is_deterministic() -> None:
    assert render_json(shop_analysis()) == render_json(shop_analysis())


def test_fragments_observed_flows_and_finding_counts_validate() -> None:
    # The saga landscape with spans lost: fragments, observed sub-entries, counted findings.
    checked = check_spans(add_noise(build_table(20_000, seed=11, mix=SAGA_MIX), Noise(dropped=0.03)))
    analysis = analyze(Ingest(checked.table, (), checked.skipped, checked.notices)).analysis
    document = json.loads(render_json(analysis))
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    fragments = document["input"]["fragments"]
    assert fragments["kept"] == sum(s["kept"] for s in fragments["services"]) > 0
    assert {f["verdict"] for f in document["flows"]} == {"flow"}
    assert {f["verdict"] for f in document["observed_flows"]} == {"too-little-evidence"}
    counted = [f for f in document["findings"] if f["rule"] == "uncompensated-failure"]
    assert counted and all(f["counts"]["affected"] <= f["counts"]["cases"] for f in counted)
    hidden = [f for f in document["findings"] if f["rule"] == "hidden-orchestration"]
    assert hidden and all(f["counts"] is None for f in hidden)
