"""Loading real third-party specs: Sock Shop (Swagger 2.0), eShop (OpenAPI 3.1), Petstore (OpenAPI 3.0)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from paths import FIXTURES

from orchscan.collectors.openapi import Field, Parameter, Server, load_specs

SPECS = FIXTURES / "specs"
ID = re.compile(r"[A-Za-z0-9_-]+")


def test_sock_shop_swagger_2_loads_with_every_operation() -> None:
    loaded = load_specs([SPECS / "sock-shop" / "spec"])
    assert loaded.problems == ()
    counts = {Path(s.source).name: len(s.operations) for s in loaded.specs}
    assert counts == {
        "carts--carts.json": 5,
        "catalogue--catalogue.json": 4,
        "orders--orders.json": 2,
        "payment--payment.json": 2,
        "user--user.json": 15,
    }
    assert {s.version for s in loaded.specs} == {"2.0"}
    orders = next(s for s in loaded.specs if s.title == "Orders")
    assert orders.servers == (Server("http://orders", "orders", ""),)
    create = next(op for op in orders.operations if op.key == "POST /orders")
    # The spec's own ids are kept verbatim, even when they are not identifier-like.
    assert create.operation_id == "/orders POST" and not create.inferred
    assert create.pointer == "/paths/~1orders/post"
    (created,) = create.responses
    assert created.status == "201"
    # Flattened through #/definitions/Order, nested objects and arrays of objects.
    pointers = {f.pointer: f.type for f in created.fields}
    assert pointers["/customer/firstName"] == "string"
    assert pointers["/items/0/quantity"] == "integer"
    assert pointers["/total"] == "number"


def test_sock_shop_path_parameters_come_from_swagger_parameters() -> None:
    loaded = load_specs([SPECS / "sock-shop" / "spec" / "carts--carts.json"])
    delete_item = next(
        op for op in loaded.operations if op.key == "DELETE /carts/{customerId}/items/{itemId}"
    )
    names = {(p.location, p.name) for p in delete_item.parameters}
    assert {("path", "customerId"), ("path", "itemId")} <= names
    assert all(p.required for p in delete_item.parameters if p.location == "path")


def test_eshop_openapi_3_1_loads_both_versions() -> None:
    loaded = load_specs([SPECS / "eshop" / "spec"])
    assert loaded.problems == ()
    counts = {Path(s.source).name: len(s.operations) for s in loaded.specs}
    assert counts == {"Catalog.API.json": 13, "Catalog.API_v2.json": 10}
    assert {s.version for s in loaded.specs} == {"3.1.1"}
    assert {s.title for s in loaded.specs} == {"eShop - Catalog HTTP API"}
    for spec in loaded.specs:
        ids = [op.operation_id for op in spec.operations]
        assert not any(op.inferred for op in spec.operations)
        assert all(ID.fullmatch(i) for i in ids)
        assert len(set(ids)) == len(ids)
    v1 = next(s for s in loaded.specs if s.source.endswith("Catalog.API.json"))
    by_id = next(op for op in v1.operations if op.key == "GET /api/catalog/items/{id}")
    assert by_id.operation_id == "GetItem"
    assert Parameter("path", "id", True, "integer") in by_id.parameters
    # OpenAPI 3.1 type lists become unions.
    by_brand = next(op for op in v1.operations if op.operation_id == "GetItemsByBrand")
    assert Parameter("path", "brandId", True, "integer|string") in by_brand.parameters


def test_petstore_openapi_3_0_yaml() -> None:
    loaded = load_specs([SPECS / "petstore" / "spec" / "openapi.yaml"])
    assert loaded.problems == ()
    (spec,) = loaded.specs
    assert spec.title == "Swagger Petstore - OpenAPI 3.0"
    assert len(spec.operations) == 19
    assert spec.servers == (Server("https://petstore3.swagger.io/api/v3", "petstore3.swagger.io", "/api/v3"),)
    ops = {op.operation_id: op for op in spec.operations}
    assert not any(op.inferred for op in spec.operations)
    assert ops["getPetById"].key == "GET /pet/{petId}"
    assert ops["getPetById"].tags == ("pet",)
    assert ops["getPetById"].servers == spec.servers
    assert ops["getPetById"].title == spec.title and ops["getPetById"].source == spec.source
    # requestBody -> #/components/schemas/Pet -> Category / Tag, flattened with their required flags.
    add = ops["addPet"].request_fields
    assert Field("/name", "string", True) in add
    assert Field("/photoUrls", "array", True) in add
    assert Field("/category/name", "string", False) in add
    assert Field("/tags/0/name", "string", False) in add
    statuses = {r.status for r in ops["addPet"].responses}
    assert statuses == {"200", "400", "422", "default"}
    assert {(p.location, p.name) for p in ops["deletePet"].parameters} == {
        ("header", "api_key"),
        ("path", "petId"),
    }


def test_several_inputs_load_together_in_a_stable_order() -> None:
    first = load_specs([SPECS])
    second = load_specs([SPECS])
    assert first == second
    assert len(first.specs) == 8
    assert len(first.operations) == 28 + 23 + 19


@pytest.mark.parametrize("name", ["sock-shop", "eshop", "petstore"])
def test_every_operation_key_is_unique_per_spec(name: str) -> None:
    for spec in load_specs([SPECS / name]).specs:
        keys = [op.key for op in spec.operations]
        assert len(keys) == len(set(keys))
