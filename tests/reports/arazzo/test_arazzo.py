"""Arazzo drafts: schema-valid, referencing real operations, faithful to the observed flow."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from arazzo_flows import order_flow, ref, sock_shop_apis, write_draft
from hypothesis import given
from hypothesis import strategies as st
from paths import FIXTURES

from orchscan.analyzer.results import Flow, ParallelOpportunity
from orchscan.reports.arazzo.checks import check_references, validate_arazzo
from orchscan.reports.arazzo.drafts import _Ids, build_arazzo, plan_apis
from orchscan.reports.yaml_text import render_yaml

EXAMPLES = FIXTURES / "arazzo-examples"


def _draft(tmp_path: Path, flows: list[Flow] | None = None) -> tuple[dict[str, Any], Path]:
    target = tmp_path / "arazzo" / "orders.arazzo.yaml"
    return write_draft(flows or [order_flow()], sock_shop_apis(tmp_path / "specs"), target), target


def _steps(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["stepId"]: step for step in document["workflows"][0]["steps"]}


def test_generated_document_is_schema_valid_and_references_real_operations(tmp_path: Path) -> None:
    document, target = _draft(tmp_path)
    assert document["arazzo"] == "1.0.1"
    assert validate_arazzo(document) == ()
    assert check_references(document, base=target.parent) == ()


def test_sources_are_relative_and_an_undocumented_service_gets_an_inferred_spec(tmp_path: Path) -> None:
    document, target = _draft(tmp_path)
    sources = {s["name"]: s for s in document["sourceDescriptions"]}
    assert sources["carts"]["url"] == "../specs/carts--carts.json"
    assert sources["shipping"] == {
        "name": "shipping",
        "url": "shipping.inferred.openapi.yaml",
        "type": "openapi",
        "x-orchscan-inferred": True,
    }
    inferred = yaml.safe_load((target.parent / "shipping.inferred.openapi.yaml").read_text())
    assert inferred["x-orchscan-inferred"] is True
    operation = inferred["paths"]["/shipping"]["post"]
    assert operation["operationId"] == "post_shipping"
    assert set(operation["responses"]) == {"201"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is True and set(body["properties"]) == {"name", "paid"}
    # orders is the owner, not a step target: it is not a source description.
    assert "orders" not in sources


def test_handoffs_become_runtime_expressions(tmp_path: Path) -> None:
    document, _ = _draft(tmp_path)
    workflow = document["workflows"][0]
    steps = _steps(document)
    assert steps["Get-customer"]["parameters"][0]["value"] == "$inputs.customer"
    assert steps["Get-customer"]["outputs"] == {"id": "$response.body#/id"}
    assert steps["Get-cart"]["parameters"] == [
        {
            "name": "customerId",
            "in": "path",
            "value": "$steps.Get-customer.outputs.id",
            "x-orchscan-confidence": 0.95,
            "x-orchscan-evidence": ["customer id equals the cart path in 120/120 traces"],
        }
    ]
    shipping = steps["post_shipping"]
    assert shipping["operationId"] == "$sourceDescriptions.shipping.post_shipping"
    assert shipping["requestBody"]["payload"] == {
        "name": "$steps.Get-cart.outputs.customerId",
        "paid": "$steps.paymentAuth-POST.outputs.authorised",
    }
    assert {h["x-orchscan-confidence"] for h in shipping["x-orchscan-body-handoffs"]} == {0.4, 0.3}
    assert workflow["inputs"]["required"] == ["address", "card", "customer"]
    assert workflow["outputs"]["authorised"] == "$steps.paymentAuth-POST.outputs.authorised"


def test_success_criteria_come_from_observed_then_documented_statuses(tmp_path: Path) -> None:
    steps = _steps(_draft(tmp_path)[0])
    assert steps["post_shipping"]["successCriteria"] == [{"condition": "$statusCode == 201"}]
    assert steps["Delete-cart"]["successCriteria"] == [{"condition": "$statusCode == 202"}]
    assert steps["Get-customer"]["successCriteria"] == [{"condition": "$statusCode == 200"}]


def test_failure_handling_follows_observed_retries_and_compensations(tmp_path: Path) -> None:
    document, _ = _draft(tmp_path)
    steps = _steps(document)
    order = list(steps)
    assert steps["paymentAuth-POST"]["onFailure"][0] == {
        "name": "retry",
        "type": "retry",
        "retryAfter": 0.2,
        "retryLimit": 2,
        "criteria": [{"condition": "$statusCode == 503"}],
        "x-orchscan-evidence": [
            "4 request(s) repeated this call after a failure, up to 3 attempts, median delay 200 ms"
        ],
    }
    assert steps["paymentAuth-POST"]["onFailure"][1] == {"name": "stop", "type": "end"}
    compensate = steps["post_shipping"]["onFailure"]
    assert [a["type"] for a in compensate] == ["goto"]
    undo = steps[compensate[0]["stepId"]]
    assert undo["parameters"][0]["value"] == "$steps.Get-cart.outputs.customerId"
    # The compensation comes after the main path and is reached only through the goto: the main
    # path's last step ends the workflow explicitly on success.
    assert order[-1] == undo["stepId"]
    assert steps[order[-2]]["onSuccess"] == [{"name": "done", "type": "end"}]
    gotos = [
        a["stepId"]
        for s in steps.values()
        for a in s.get("onFailure", []) + s.get("onSuccess", [])
        if a["type"] == "goto"
    ]
    assert gotos == [undo["stepId"]]


def test_parallel_and_optional_steps_are_described_honestly(tmp_path: Path) -> None:
    flow = order_flow()
    steps = tuple(replace(s, optional=True, support=0.4) if s.index == 7 else s for s in flow.steps)
    document, _ = _draft(tmp_path, [replace(flow, steps=steps)])
    drafted = _steps(document)
    assert drafted["Get-address"]["x-orchscan-parallel-group"] == 1
    assert "Ran concurrently with steps 1, 3" in drafted["Get-address"]["description"]
    assert drafted["Delete-cart"]["x-orchscan-optional"] is True
    assert "no parallel construct" in document["workflows"][0]["description"]
    assert validate_arazzo(document) == ()


def test_parallel_opportunities_are_hinted_in_an_extension_and_stay_valid(tmp_path: Path) -> None:
    # Payment authorisation and the cart read share no data: they could run together.
    opportunity = ParallelOpportunity((4, 5), 5.9, 11.5, 120, ("no data handoff between them",))
    document, target = _draft(tmp_path, [replace(order_flow(), parallel_opportunities=(opportunity,))])
    workflow = document["workflows"][0]
    assert workflow["x-orchscan-parallel-opportunities"] == [
        {
            "steps": ["Get-cart", "paymentAuth-POST"],
            "saving-ms": {"p50": 5.9, "p95": 11.5},
            "requests": 120,
            "evidence": ["no data handoff between them"],
        }
    ]
    assert "could run together" in workflow["description"]
    assert [s["stepId"] for s in workflow["steps"]][3:5] == ["Get-cart", "paymentAuth-POST"]  # order kept
    assert validate_arazzo(document) == ()
    assert check_references(document, base=target.parent) == ()
    plain, _ = _draft(tmp_path / "plain")
    assert "x-orchscan-parallel-opportunities" not in plain["workflows"][0]


def test_required_parameters_without_a_handoff_become_workflow_inputs(tmp_path: Path) -> None:
    flow = order_flow()
    flow = replace(flow, handoffs=tuple(h for h in flow.handoffs if h.to_step != 4))
    document, target = _draft(tmp_path, [flow])
    cart = _steps(document)["Get-cart"]["parameters"]
    assert cart == [{"name": "customerId", "in": "path", "value": "$inputs.customerId"}]
    assert "customerId" in document["workflows"][0]["inputs"]["required"]
    assert check_references(document, base=target.parent) == ()


def test_output_is_deterministic(tmp_path: Path) -> None:
    flow = order_flow()
    second = replace(flow, id="orders:GET /orders", entry=ref("orders", "GET /orders"), requests=40)
    apis = plan_apis([flow, second], sock_shop_apis(tmp_path / "specs"), folder=tmp_path)
    target = tmp_path / "orders.arazzo.yaml"
    one = render_yaml(build_arazzo([flow, second], apis, arazzo_path=target))
    two = render_yaml(build_arazzo([second, flow], dict(reversed(apis.items())), arazzo_path=target))
    assert one == two
    ids = [w["workflowId"] for w in yaml.safe_load(one)["workflows"]]
    assert ids == ["orders-GET-orders", "orders-POST-orders"]


def test_build_rejects_flows_of_several_owners(tmp_path: Path) -> None:
    flow = order_flow()
    with pytest.raises(ValueError, match="exactly one owner"):
        build_arazzo([flow, replace(flow, owner="front-end")], {}, arazzo_path=tmp_path / "x.yaml")


def test_check_references_reports_what_the_schema_cannot(tmp_path: Path) -> None:
    document, target = _draft(tmp_path)
    broken = copy.deepcopy(document)
    steps = _steps(broken)
    del steps["Get-cart"]["parameters"]
    steps["post_shipping"]["operationId"] = "$sourceDescriptions.shipping.ship_it"
    steps["Get-card"]["parameters"].append({"name": "verbose", "in": "query", "value": True})
    steps["Delete-cart"]["operationPath"] = "{$sourceDescriptions.carts.url}#/paths/~1nowhere/get"
    assert validate_arazzo(broken) == ()
    problems = check_references(broken, base=target.parent)
    assert problems == (
        "workflow orders-POST-orders step Get-card: "
        "$sourceDescriptions.user.Get card has no query parameter 'verbose'",
        "workflow orders-POST-orders step Get-cart: "
        "required path parameter 'customerId' of $sourceDescriptions.carts.Get cart not set",
        "workflow orders-POST-orders step post_shipping: "
        "operationId 'ship_it' not found in source 'shipping'",
        "workflow orders-POST-orders step Delete-cart: operationPath "
        "'{$sourceDescriptions.carts.url}#/paths/~1nowhere/get' points at no operation",
    )


@pytest.mark.parametrize("path", sorted((EXAMPLES / "1.0.0").glob("*arazzo*.yaml")), ids=lambda p: p.name)
def test_official_1_0_examples_validate(path: Path) -> None:
    assert validate_arazzo(yaml.safe_load(path.read_text())) == ()


@pytest.mark.parametrize(
    "path",
    sorted((EXAMPLES / "schema-tests-v1.1").glob("*/*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_official_1_1_schema_cases_pass_and_fail_as_labelled(path: Path) -> None:
    errors = validate_arazzo(yaml.safe_load(path.read_text()))
    assert (errors == ()) is (path.parent.name == "pass"), errors


def test_unknown_version_is_refused_with_a_clear_message() -> None:
    assert validate_arazzo({"arazzo": "2.0.0"}) == (
        "unsupported or missing arazzo version '2.0.0'; known: 1.0, 1.1",
    )


def _first_free(names: list[str]) -> list[str]:
    """The ids the drafts' naming rule gives: the name, else its first ``-N`` not given yet."""
    taken: set[str] = set()
    given = []
    for name in names:
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate)
        given.append(candidate)
    return given


@given(st.lists(st.sampled_from(["pay", "pay-2", "pay-3", "pay-2-2", "ship", "ship-2"]), max_size=40))
def test_step_ids_are_the_first_free_suffix_in_order(names: list[str]) -> None:
    ids = _Ids()
    assert [ids.unique(name) for name in names] == _first_free(names)
