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


def test_flows_carry_kind_teams_parallel_opportunities_and_message_steps() -> None:
    document = json.loads(render_json(shop_analysis()))
    flows = {f["id"]: f for f in document["flows"]}
    checkout = flows["checkout:POST /checkout"]
    assert checkout["kind"] == "orchestrated"
    assert checkout["teams"] == ["logistics", "payments", "sales"]
    assert checkout["team_boundaries"] == [["logistics", "sales"], ["payments", "sales"]]
    assert checkout["crosses_teams"] is True
    assert checkout["parallel_opportunities"] == [
        {
            "steps": [6, 7],
            "saving_ms": {"p50": 2.0, "p95": 3.5},
            "requests": 3990,
            "evidence": checkout["parallel_opportunities"][0]["evidence"],
        }
    ]
    assert {s["caller"] for s in checkout["steps"]} == {"checkout"}
    assert {s["kind"] for s in checkout["steps"]} == {"call"}
    events = flows["checkout:POST /checkout (events)"]
    assert events["kind"] == "choreographed" and events["arazzo"] is None
    delivery = events["steps"][1]
    assert (delivery["kind"], delivery["topic"], delivery["service"], delivery["caller"]) == (
        "message",
        "order.placed",
        "order-saga",
        "checkout",
    )
    assert events["steps"][2]["caller"] == "order-saga" and events["steps"][2]["kind"] == "call"
    assert events["failure"]["failed_steps"] == [{"step": 2, "requests": 3}, {"step": 3, "requests": 9}]
    assert events["failure"]["compensations"][0]["topic"] == "order.cancelled"
    assert events["failure"]["compensations"][0]["undone_step"] == 0


def test_teams_and_ownership_are_listed_with_their_evidence() -> None:
    document = json.loads(render_json(shop_analysis()))
    ownership = {o["service"]: o for o in document["ownership"]}
    assert ownership["shipping"] == {
        "service": "shipping",
        "team": "logistics",
        "source": "k8s.namespace.name",
        "evidence": "k8s.namespace.name 'logistics' on 6,100 spans",
    }
    teams = {t["name"]: t for t in document["teams"]}
    sales = teams["sales"]
    assert sales["services"] == ["cart", "checkout", "legacy-checkout", "order-saga"]
    assert sales["sources"] == ["owners-file", "service.namespace"]
    assert "checkout:POST /checkout" in sales["cross_team_flows"]
    assert {(c["orchestrator"], c["team"]) for c in sales["coordinates"]} == {
        ("checkout", "logistics"),
        ("checkout", "payments"),
        ("order-saga", "logistics"),
        ("order-saga", "payments"),
    }
    assert {c["orchestrator"] for c in teams["payments"]["coordinated_by"]} == {"checkout", "order-saga"}
    assert teams["payments"]["part_of_flows"] == [
        "checkout:POST /checkout",
        "order-saga:order.placed process",
    ]


def test_the_schema_refuses_an_unknown_flow_or_step_kind() -> None:
    document = json.loads(render_json(shop_analysis()))
    document["flows"][0]["kind"] = "improvised"
    document["flows"][1]["steps"][0]["kind"] = "telepathy"
    messages = " ".join(e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    assert "improvised" in messages and "telepathy" in messages
