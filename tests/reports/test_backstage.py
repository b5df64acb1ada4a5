"""Backstage catalog export: valid against Backstage's own schemas and name rules, complete, movable.

The schemas are Backstage's published JSON Schemas for catalog entities (copied with their
provenance into ``tests/fixtures/backstage-schemas``). ``$text`` placeholders are resolved the
way Backstage's placeholder processor does, relative to the catalog file, before validation:
the schema wants the definition's text.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import yaml
from click.testing import CliRunner
from paths import FIXTURES, SAMPLE
from referencing.jsonschema import DRAFT7
from renamed_sample import HOSTILE_NAMES, renamed_sample

from orchscan.analyzer.pipeline import analyze
from orchscan.cli import main
from orchscan.reports.arazzo.checks import check_references, validate_arazzo
from orchscan.reports.backstage import CATALOG_FILE, catalog_files
from orchscan.reports.output import write_artifact
from orchscan.reports.registry import report_context

SCHEMAS = FIXTURES / "backstage-schemas"
KIND_SCHEMAS = {"Component": "ComponentV1alpha1", "API": "ApiV1alpha1"}

# Backstage's default validators (KubernetesValidatorFunctions, CommonValidatorFunctions).
OBJECT_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
DNS_LABEL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _validators() -> dict[str, jsonschema.Draft7Validator]:
    schemas = [json.loads(p.read_text()) for p in sorted(SCHEMAS.rglob("*.schema.json"))]
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s, default_specification=DRAFT7)) for s in schemas
    )
    by_id = {s["$id"]: s for s in schemas}
    return {kind: jsonschema.Draft7Validator(by_id[i], registry=registry) for kind, i in KIND_SCHEMAS.items()}


VALIDATORS = _validators()


def _errors(entity: dict[str, Any]) -> list[str]:
    return sorted(e.message for e in VALIDATORS[entity["kind"]].iter_errors(entity))


def _resolved(entity: dict[str, Any], base: Path) -> dict[str, Any]:
    """The entity with its ``$text`` definition replaced by the referenced file's text."""
    definition = entity["spec"].get("definition")
    if definition is None:
        return entity
    assert set(definition) == {"$text"}
    spec = entity["spec"] | {"definition": (base / definition["$text"]).read_text(encoding="utf-8")}
    return entity | {"spec": spec}


def _scan(out: Path, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["scan", *args, "--out", str(out), "--format", "backstage"])
    assert result.exit_code == 0, result.output
    return list(yaml.safe_load_all((out / CATALOG_FILE).read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The sample landscape's catalog with specs, its folder moved after writing."""
    written = tmp_path_factory.mktemp("written") / "out"
    entities = _scan(written, str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi"))
    moved = tmp_path_factory.mktemp("moved") / "catalog"
    shutil.move(written, moved)
    return moved, entities


def _by(entities: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {e["metadata"]["name"]: e for e in entities if e["kind"] == kind}


def _check_catalog(base: Path, entities: list[dict[str, Any]]) -> None:
    """Schema-valid, Backstage names, unique per kind, no reference to a missing entity."""
    for entity in entities:
        assert _errors(_resolved(entity, base)) == [], entity["metadata"]["name"]
        name = entity["metadata"]["name"]
        assert len(name) <= 63 and OBJECT_NAME.fullmatch(name), name
        assert all(len(t) <= 63 and DNS_LABEL.fullmatch(t) for t in entity["metadata"]["tags"])
    for kind in ("Component", "API"):
        names = [e["metadata"]["name"].casefold() for e in entities if e["kind"] == kind]
        assert len(names) == len(set(names))
    components, apis = _by(entities, "Component"), _by(entities, "API")
    for component in components.values():
        spec = component["spec"]
        assert {r.removeprefix("component:") for r in spec.get("dependsOn", [])} <= set(components)
        assert set(spec.get("providesApis", [])) | set(spec.get("consumesApis", [])) <= set(apis)


def test_every_entity_is_valid_for_backstage_after_the_folder_moved(
    catalog: tuple[Path, list[dict[str, Any]]],
) -> None:
    base, entities = catalog
    _check_catalog(base, entities)
    assert len(_by(entities, "Component")) == 23
    assert len(_by(entities, "API")) == 18 + 4


def test_the_schemas_catch_a_broken_entity(catalog: tuple[Path, list[dict[str, Any]]]) -> None:
    base, entities = catalog
    api = _resolved(_by(entities, "API")["orders"], base)
    broken = api | {"spec": {k: v for k, v in api["spec"].items() if k != "owner"}, "extra": 1}
    assert _errors(broken) == [
        "'owner' is a required property",
        "Additional properties are not allowed ('extra' was unexpected)",
    ]
    # Unresolved, the definition is an object, not the text Backstage's schema asks for.
    assert _errors(_by(entities, "API")["orders"]) == [
        "{'$text': './arazzo/openapi/orders/orders.json'} is not of type 'string'"
    ]


def test_an_orchestrator_provides_its_workflows_and_depends_on_what_it_calls(
    catalog: tuple[Path, list[dict[str, Any]]],
) -> None:
    base, entities = catalog
    orders = _by(entities, "Component")["orders"]
    assert orders["metadata"]["annotations"]["orchscan/role"] == "orchestrator"
    assert "hidden-orchestrator" in orders["metadata"]["tags"]
    assert orders["spec"]["providesApis"] == ["orders", "orders-workflows"]
    calls = {"inventory", "payment", "shipping", "notification"}
    assert calls <= {r.removeprefix("component:") for r in orders["spec"]["dependsOn"]}
    assert calls <= set(orders["spec"]["consumesApis"])
    workflows = _by(entities, "API")["orders-workflows"]
    assert (workflows["spec"]["type"], workflows["spec"]["lifecycle"]) == ("arazzo", "experimental")
    draft = base / workflows["spec"]["definition"]["$text"]
    document = yaml.safe_load(draft.read_text())
    assert validate_arazzo(document) == () and check_references(document, base=draft.parent) == ()
    spec = _by(entities, "API")["orders"]
    assert spec["spec"]["type"] == "openapi"
    copied = base / spec["spec"]["definition"]["$text"]
    assert copied.read_bytes() == (SAMPLE / "openapi" / "orders.json").read_bytes()


def test_messages_are_not_dependencies(tmp_path: Path, catalog: tuple[Path, list[dict[str, Any]]]) -> None:
    _, entities = catalog
    result = CliRunner().invoke(
        main, ["scan", str(SAMPLE / "traces"), "--out", str(tmp_path), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    edges = json.loads((tmp_path / "findings.json").read_text())["edges"]
    kinds: dict[tuple[str, str], set[str]] = {}
    for edge in edges:
        kinds.setdefault((edge["caller"], edge["callee"]), set()).add(edge["kind"])
    components = _by(entities, "Component")
    messaging_only = [pair for pair, seen in kinds.items() if seen == {"messaging"}]
    assert messaging_only
    for caller, callee in messaging_only:
        assert f"component:{callee}" not in components[caller]["spec"].get("dependsOn", [])
    for (caller, callee), seen in kinds.items():
        if seen - {"messaging"}:
            assert f"component:{callee}" in components[caller]["spec"]["dependsOn"]


def test_without_specs_only_the_drafted_workflows_are_apis(tmp_path: Path) -> None:
    entities = _scan(tmp_path, str(SAMPLE / "traces"))
    _check_catalog(tmp_path, entities)
    apis = _by(entities, "API")
    assert sorted(apis) == [
        "mobile-bff-workflows",
        "orders-workflows",
        "partner-api-workflows",
        "returns-workflows",
    ]
    assert not any("consumesApis" in c["spec"] for c in _by(entities, "Component").values())


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_hostile_service_names_become_valid_unique_entity_names(tmp_path: Path, case: str) -> None:
    renames = HOSTILE_NAMES[case]
    context = report_context(analyze(renamed_sample(renames)), None)
    for relative, content in catalog_files(context.result.analysis, context.drafts).items():
        write_artifact(tmp_path / relative, content)
    text = (tmp_path / CATALOG_FILE).read_text(encoding="utf-8")
    assert not any(ch in text for ch in "\u202e\x1b")
    entities = list(yaml.safe_load_all(text))
    _check_catalog(tmp_path, entities)
    traced = {
        e["metadata"]["annotations"]["orchscan/service-name"]: e for e in _by(entities, "Component").values()
    }
    assert set(renames.values()) <= set(traced)
    workflows = {e["metadata"]["annotations"]["orchscan/service-name"] for e in _by(entities, "API").values()}
    assert workflows == set(renames.values())


def test_owners_are_the_services_teams(tmp_path: Path, catalog: tuple[Path, list[dict[str, Any]]]) -> None:
    # Without an owners file, the sample's one service.namespace names the owner of everything traced.
    _, entities = catalog
    components = _by(entities, "Component")
    assert components["orders"]["spec"]["owner"] == "shop"
    assert components["approvals"]["spec"]["owner"] == "unknown"  # never emitted a span
    owned = _scan(
        tmp_path / "out",
        str(SAMPLE / "traces"),
        "--openapi",
        str(SAMPLE / "openapi"),
        "--owners",
        str(SAMPLE / "owners.yaml"),
    )
    _check_catalog(tmp_path / "out", owned)
    components, apis = _by(owned, "Component"), _by(owned, "API")
    assert {name: components[name]["spec"]["owner"] for name in ("orders", "payment", "api-gateway")} == {
        "orders": "checkout",
        "payment": "payments",
        "api-gateway": "web",
    }
    assert (apis["orders-workflows"]["spec"]["owner"], apis["payment"]["spec"]["owner"]) == (
        "checkout",
        "payments",
    )
