"""Documented Arazzo workflows against observed flows: workflow-drift findings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from arazzo_flows import OBSERVED_STATUSES, order_flow, sock_shop_apis
from paths import FIXTURES

from orchscan.analyzer.findings.conformance import check_conformance
from orchscan.collectors.arazzo import ArazzoError, parse_arazzo, read_arazzo
from orchscan.reports.arazzo.drafts import build_arazzo, plan_apis

EXAMPLES = FIXTURES / "arazzo-examples"
OFFICIAL = sorted((EXAMPLES / "1.0.0").glob("*arazzo*.yaml")) + sorted(
    (EXAMPLES / "schema-tests-v1.1" / "pass").glob("*.yaml")
)


@pytest.fixture
def generated(tmp_path: Path) -> dict[str, Any]:
    """The drafted Sock Shop order workflow, as a team would commit it."""
    flows = [order_flow()]
    apis = plan_apis(
        flows, sock_shop_apis(tmp_path / "specs"), folder=tmp_path, success_statuses=OBSERVED_STATUSES
    )
    return build_arazzo(
        flows, apis, arazzo_path=tmp_path / "orders.arazzo.yaml", success_statuses=OBSERVED_STATUSES
    )


def _messages(document: dict[str, Any]) -> list[tuple[str, str]]:
    workflows = parse_arazzo(document, "orders.arazzo.yaml").workflows
    return [(f.severity, f.message) for f in check_conformance(workflows, [order_flow()])]


@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: p.name)
def test_official_examples_parse(path: Path) -> None:
    document = read_arazzo(path)
    assert document.workflows
    assert all(w.steps for w in document.workflows)


def test_official_example_unrelated_to_the_traffic_is_reported_unobserved() -> None:
    document = read_arazzo(EXAMPLES / "1.0.0" / "pet-coupons.arazzo.yaml")
    findings = check_conformance(document.workflows, [order_flow()])
    assert [f.message for f in findings] == [
        f"Workflow {w} was never observed: no traced flow calls its steps."
        for w in ("apply-coupon", "buy-available-pet", "place-order")
    ]
    assert {(f.rule, f.severity) for f in findings} == {("workflow-drift", "low")}


def test_official_steps_read_operations_inputs_and_failure_actions() -> None:
    document = read_arazzo(EXAMPLES / "1.0.0" / "pet-coupons.arazzo.yaml")
    find_coupons = document.workflows[0].steps[1]
    assert find_coupons.operation_id == "getPetCoupons"
    assert [(i.location, i.name, i.value) for i in find_coupons.inputs] == [
        ("path", "pet_id", "$steps.find-pet.outputs.my_pet_id")
    ]
    assert document.workflows[0].steps[2].workflow == "place-order"


def test_a_faithful_workflow_has_no_drift(generated: dict[str, Any]) -> None:
    assert _messages(generated) == []


def test_a_drifted_copy_reports_every_difference(generated: dict[str, Any]) -> None:
    drifted = copy.deepcopy(generated)
    steps = drifted["workflows"][0]["steps"]
    by_id = {s["stepId"]: s for s in steps}
    # Someone documented the cart read before the customer lookup, dropped the payment step,
    # invented a catalogue check, changed where the cart's customer id comes from, and lost the
    # compensation of a failed shipment.
    steps.remove(by_id["paymentAuth-POST"])
    steps.remove(by_id["Get-cart"])
    steps.insert(0, by_id["Get-cart"])
    steps.insert(
        1,
        {
            "stepId": "check-stock",
            "operationPath": "{$sourceDescriptions.catalogue.url}#/paths/~1catalogue/get",
            "successCriteria": [{"condition": "$statusCode == 200"}],
        },
    )
    by_id["Get-cart"]["parameters"][0]["value"] = "$inputs.cart"
    by_id["post_shipping"]["onFailure"] = [{"name": "stop", "type": "end"}]
    steps.remove(by_id["undo-Get-cart-after-post_shipping"])
    by_id["Get-card"]["onFailure"].insert(
        0, {"name": "again", "type": "retry", "retryAfter": 1, "retryLimit": 3}
    )
    assert _messages(drifted) == [
        (
            "medium",
            "Documented step check-stock of orders-POST-orders was never observed in orders:POST /orders.",
        ),
        (
            "medium",
            "Observed step 5 (payment POST /paymentAuth) of orders:POST /orders is missing from workflow "
            "orders-POST-orders.",
        ),
        (
            "medium",
            "Step Get-cart takes path customerId from $inputs.cart, but traces show it comes from step 1.",
        ),
        (
            "medium",
            "When step post_shipping fails the orchestrator compensates; the workflow does not say so.",
        ),
        ("low", "Step Get-card documents a retry that was never observed."),
        ("low", "Workflow orders-POST-orders orders its steps differently from orders:POST /orders."),
    ]


def test_a_workflow_without_orchscan_notes_is_paired_by_its_operations(generated: dict[str, Any]) -> None:
    plain = copy.deepcopy(generated)
    del plain["workflows"][0]["x-orchscan-flow"]
    # Steps named by operationPath carry their method and path; the inferred shipping operation
    # is known only by its synthesised operationId, which the flow's reference lacks here.
    for step in plain["workflows"][0]["steps"]:
        if "operationPath" in step:
            step.pop("x-orchscan-step", None)
    assert _messages(plain) == []


def test_undocumented_retry_is_reported(generated: dict[str, Any]) -> None:
    drifted = copy.deepcopy(generated)
    payment = next(s for s in drifted["workflows"][0]["steps"] if s["stepId"] == "paymentAuth-POST")
    payment["onFailure"] = [{"name": "stop", "type": "end"}]
    assert _messages(drifted) == [
        ("medium", "Step paymentAuth-POST is retried in traffic, but the workflow documents no retry.")
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("arazzo: [1", "malformed YAML"),
        ("openapi: 3.1.0\npaths: {}\n", "not an Arazzo document"),
        ("arazzo: 1.0.1\nworkflows:\n  - steps: []\n", "#/workflows/0: a workflow needs a workflowId"),
        (
            "arazzo: 1.0.1\nworkflows:\n  - workflowId: w\n    steps:\n      - operationId: x\n",
            "#/workflows/0/steps/0: a step needs a stepId",
        ),
        (
            "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
            "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
            "alias bomb",
        ),
    ],
)
def test_bad_documents_are_refused_naming_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.arazzo.yaml"
    path.write_text(text)
    with pytest.raises(ArazzoError, match=problem) as raised:
        read_arazzo(path)
    assert str(path) in str(raised.value)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ArazzoError, match=r"missing\.yaml: cannot read"):
        read_arazzo(tmp_path / "missing.yaml")


def test_generated_yaml_round_trips_through_the_reader(tmp_path: Path, generated: dict[str, Any]) -> None:
    path = tmp_path / "orders.arazzo.yaml"
    path.write_text(yaml.safe_dump(generated, sort_keys=False))
    workflow = read_arazzo(path).workflows[0]
    assert workflow.flow_id == "orders:POST /orders"
    assert [s.operation_key for s in workflow.steps][:2] == ["GET /customers/{id}", "GET /addresses/{id}"]
