"""Which spec belongs to which traced service: mapping, x-service-name, hosts, title, file name."""

from __future__ import annotations

from pathlib import Path

from paths import FIXTURES

from orchscan.collectors.openapi import (
    Binding,
    SpecProblem,
    bind_specs,
    load_mapping,
    load_specs,
    normalise_name,
)

SPECS = FIXTURES / "specs"


def test_real_specs_bind_by_host_title_and_file_name() -> None:
    loaded = load_specs([SPECS])
    services = ["orders", "carts", "user", "catalogue", "payment", "shipping", "catalog-api", "petstore"]
    result = bind_specs(loaded.specs, services)
    reasons = {(b.service, Path(b.source).name): b.reason for b in result.bindings}
    assert reasons == {
        ("orders", "orders--orders.json"): "server-host",
        ("carts", "carts--carts.json"): "server-host",
        ("user", "user--user.json"): "server-host",
        ("catalogue", "catalogue--catalogue.json"): "server-host",
        ("payment", "payment--payment.json"): "server-host",
        ("catalog-api", "Catalog.API.json"): "file-name",
        ("catalog-api", "Catalog.API_v2.json"): "file-name",
        ("petstore", "openapi.yaml"): "title",
    }
    assert result.unmatched_services == ("shipping",)
    assert result.unmatched_specs == ()


def test_unmatched_specs_are_reported() -> None:
    loaded = load_specs([SPECS / "sock-shop"])
    result = bind_specs(loaded.specs, ["orders", "front-end"])
    assert {Path(s).name for s in result.unmatched_specs} == {
        "carts--carts.json",
        "catalogue--catalogue.json",
        "payment--payment.json",
        "user--user.json",
    }
    assert result.unmatched_services == ("front-end",)


def test_explicit_mapping_wins_over_everything(tmp_path: Path) -> None:
    mapping_file = tmp_path / "services.yaml"
    spec_file = SPECS / "petstore" / "spec" / "openapi.yaml"
    mapping_file.write_text(
        f"pet-api-prod: {spec_file}\nshop-front: {SPECS / 'sock-shop/spec/orders--orders.json'}\n"
    )
    mapping, problems = load_mapping(mapping_file)
    assert problems == ()
    loaded = load_specs([spec_file, SPECS / "sock-shop" / "spec" / "orders--orders.json"])
    result = bind_specs(loaded.specs, ["pet-api-prod", "petstore", "shop-front", "orders"], mapping=mapping)
    assert result.bindings == (
        Binding("pet-api-prod", str(spec_file), "mapping"),
        Binding("shop-front", str(SPECS / "sock-shop" / "spec" / "orders--orders.json"), "mapping"),
    )
    assert result.unmatched_services == ("orders", "petstore")


def test_relative_mapping_entries_and_bad_mappings(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    spec = tmp_path / "api" / "billing.yaml"
    spec.write_text("openapi: 3.0.0\ninfo: {title: Ledger}\nx-service-name: ledger-svc\npaths: {}\n")
    (tmp_path / "map.yaml").write_text("billing: api/billing.yaml\n7: [x]\n")
    mapping, problems = load_mapping(tmp_path / "map.yaml")
    assert problems == (
        SpecProblem(str(tmp_path / "map.yaml"), "/7", "expected a service name mapped to a spec file name"),
    )
    loaded = load_specs([spec])
    assert bind_specs(loaded.specs, ["billing", "ledger"], mapping=mapping).bindings == (
        Binding("billing", str(spec), "mapping"),
    )
    # Without the mapping, x-service-name comes before the title.
    assert bind_specs(loaded.specs, ["ledger"]).bindings == (Binding("ledger", str(spec), "x-service-name"),)
    broken = tmp_path / "broken.yaml"
    broken.write_text("- a\n- b\n")
    assert load_mapping(broken)[1][0].message == "the service mapping must be a mapping of service: spec-file"


def test_names_are_normalised() -> None:
    assert normalise_name("eShop - Catalog HTTP API") == "eshopcatalog"
    assert normalise_name("catalog-api") == normalise_name("Catalog.API") == "catalog"
    assert normalise_name("Orders Service") == normalise_name("orders") == "orders"
    assert normalise_name("Swagger Petstore - OpenAPI 3.0") == "petstore"
