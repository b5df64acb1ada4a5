"""Hostile and broken specs are refused or partly loaded, with the file and JSON pointer named."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from orchscan.collectors.openapi import Field, Limits, load_specs
from orchscan.collectors.openapi.documents import _bounded_loader

ID = re.compile(r"[A-Za-z0-9_-]+")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def spec_with_body(schema_ref: str) -> str:
    return f"""
openapi: 3.0.3
info: {{title: Orders, version: "1"}}
paths:
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {{$ref: '{schema_ref}'}}
      responses:
        "201": {{description: created}}
"""


def test_yaml_bomb_is_refused_before_anything_walks_it(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        prev = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([prev] * 9)}]")
    bomb = write(tmp_path / "bomb.yaml", "openapi: 3.0.0\n" + "\n".join(lines) + "\n")
    loaded = load_specs([bomb])
    assert loaded.specs == ()
    (problem,) = loaded.problems
    assert problem.file == str(bomb) and problem.pointer == ""
    assert "alias bomb" in problem.message


def test_small_node_budget_applies_to_ordinary_yaml_too(tmp_path: Path) -> None:
    spec = write(tmp_path / "api.yaml", spec_with_body("#/components/schemas/Order"))
    loaded = load_specs([spec], limits=Limits(max_nodes=10))
    assert loaded.specs == () and "more than 10 nodes" in loaded.problems[0].message


def test_oversized_document_is_refused(tmp_path: Path) -> None:
    spec = write(tmp_path / "api.yaml", spec_with_body("#/components/schemas/Order"))
    (problem,) = load_specs([spec], limits=Limits(max_bytes=64)).problems
    assert problem.file == str(spec) and "more than the limit of 64" in problem.message


def test_ref_loop_is_reported_at_the_reference_and_the_rest_loads(tmp_path: Path) -> None:
    text = (
        spec_with_body("#/components/schemas/A")
        + """
  /health:
    get:
      responses:
        "200": {description: fine}
components:
  schemas:
    A: {$ref: '#/components/schemas/B'}
    B: {$ref: '#/components/schemas/A'}
"""
    )
    spec = write(tmp_path / "loop.yaml", text)
    loaded = load_specs([spec])
    (loaded_spec,) = loaded.specs
    assert {op.key for op in loaded_spec.operations} == {"POST /orders", "GET /health"}
    assert any(
        p.file == str(spec) and p.pointer.startswith("/components/schemas/") and "$ref loop" in p.message
        for p in loaded.problems
    )


def test_recursive_schema_is_legal_and_cut_where_it_reenters(tmp_path: Path) -> None:
    text = (
        spec_with_body("#/components/schemas/Node")
        + """
components:
  schemas:
    Node:
      type: object
      required: [name]
      properties:
        name: {type: string}
        children:
          type: array
          items: {$ref: '#/components/schemas/Node'}
"""
    )
    loaded = load_specs([write(tmp_path / "tree.yaml", text)])
    assert loaded.problems == ()
    fields = loaded.operations[0].request_fields
    assert fields == (
        Field("/children", "array", False),
        Field("/name", "string", True),
    )


def test_remote_ref_is_refused_without_the_flag(tmp_path: Path) -> None:
    spec = write(tmp_path / "remote.yaml", spec_with_body("https://example.com/schemas.yaml#/Order"))
    loaded = load_specs([spec])
    (loaded_spec,) = loaded.specs
    assert loaded_spec.operations[0].request_fields == ()
    (problem,) = loaded.problems
    assert problem.file == str(spec)
    assert problem.pointer == "/paths/~1orders/post/requestBody/content/application~1json/schema"
    assert "remote $ref" in problem.message and "allow_remote=True" in problem.message


@pytest.fixture
def schema_server() -> Iterator[str]:
    """A local HTTP server publishing one schema document, standing in for a remote spec host."""
    body = json.dumps({"Order": {"type": "object", "properties": {"total": {"type": "number"}}}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_remote_ref_is_fetched_with_the_flag(tmp_path: Path, schema_server: str) -> None:
    spec = write(tmp_path / "remote.yaml", spec_with_body(f"{schema_server}/schemas.json#/Order"))
    loaded = load_specs([spec], allow_remote=True)
    assert loaded.problems == ()
    assert loaded.operations[0].request_fields == (Field("/total", "number", False),)


def test_ref_outside_the_spec_folder_is_refused_unless_allowed(tmp_path: Path) -> None:
    write(tmp_path / "secret.yaml", "Order: {type: object, properties: {password: {type: string}}}\n")
    spec = write(tmp_path / "api" / "spec.yaml", spec_with_body("../secret.yaml#/Order"))
    loaded = load_specs([spec])
    assert loaded.operations[0].request_fields == ()
    (problem,) = loaded.problems
    assert problem.file == str(spec) and "leaves the spec's folder" in problem.message
    allowed = load_specs([spec], allow_outside=True)
    assert allowed.problems == ()
    assert allowed.operations[0].request_fields == (Field("/password", "string", False),)


def test_relative_file_refs_inside_the_folder_resolve(tmp_path: Path) -> None:
    write(
        tmp_path / "schemas" / "order.yaml",
        "Order:\n  allOf:\n    - $ref: '#/Base'\n"
        "    - {type: object, required: [total], properties: {total: {type: number}}}\n"
        "Base: {type: object, properties: {id: {type: string}}}\n"
        "Broken: {$ref: 'missing.yaml#/X'}\n",
    )
    spec = write(tmp_path / "spec.yaml", spec_with_body("schemas/order.yaml#/Order"))
    loaded = load_specs([tmp_path])
    assert loaded.problems == ()
    assert loaded.operations[0].request_fields == (
        Field("/id", "string", False),
        Field("/total", "number", True),
    )
    assert [s.source for s in loaded.specs] == [str(spec)]


def test_one_of_gives_the_union_of_fields_none_required(tmp_path: Path) -> None:
    text = (
        spec_with_body("#/components/schemas/Payment")
        + """
components:
  schemas:
    Payment:
      oneOf:
        - {type: object, required: [card], properties: {card: {type: string}, amount: {type: number}}}
        - {type: object, required: [iban], properties: {iban: {type: string}, amount: {type: integer}}}
"""
    )
    fields = load_specs([write(tmp_path / "pay.yaml", text)]).operations[0].request_fields
    assert fields == (
        Field("/amount", "integer|number", False),
        Field("/card", "string", False),
        Field("/iban", "string", False),
    )


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    spec = write(tmp_path / "broken.yaml", "openapi: 3.0.0\ninfo: {title: x\npaths: {}\n")
    loaded = load_specs([spec])
    (problem,) = loaded.problems
    assert problem.file == str(spec) and problem.pointer == ""
    assert problem.message.startswith("malformed YAML") and "line" in problem.message


def test_paths_as_a_list_is_reported_and_the_spec_still_loads(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "list.yaml",
        "openapi: 3.0.0\ninfo: {title: Lister}\nservers: [{url: 'http://lister/v1'}]\npaths: [/a, /b]\n",
    )
    loaded = load_specs([spec])
    (loaded_spec,) = loaded.specs
    assert loaded_spec.title == "Lister" and loaded_spec.operations == ()
    assert loaded_spec.servers[0].base_path == "/v1"
    (problem,) = loaded.problems
    assert (problem.file, problem.pointer) == (str(spec), "/paths")
    assert "found a list" in problem.message


def test_a_broken_operation_does_not_cost_its_siblings(tmp_path: Path) -> None:
    text = """
swagger: "2.0"
info: {title: Shop}
host: shop.internal
basePath: /api
paths:
  /items/{id}:
    get:
      parameters: {id: oops}
      responses: {"200": {description: ok}}
    delete: not-an-operation
  /items:
    post:
      parameters:
        - {in: header, name: Idempotency-Key, type: string, required: true}
        - {in: body, name: item, schema: {type: object, properties: {sku: {type: string}}}}
      responses: {"201": {description: created}}
"""
    spec = write(tmp_path / "shop.yaml", text)
    loaded = load_specs([spec])
    ops = {op.key: op for op in loaded.operations}
    assert set(ops) == {"GET /items/{id}", "POST /items"}
    assert {(p.file, p.pointer) for p in loaded.problems} == {
        (str(spec), "/paths/~1items~1{id}/get/parameters"),
        (str(spec), "/paths/~1items~1{id}/delete"),
    }
    post = ops["POST /items"]
    assert post.idempotency_header == "Idempotency-Key"
    assert post.request_fields == (Field("/sku", "string", False),)
    # No operationId anywhere: synthesised, identifier-like, flagged.
    assert post.inferred and post.operation_id == "post_items"
    assert ops["GET /items/{id}"].operation_id == "get_items_id"
    assert all(ID.fullmatch(op.operation_id) for op in ops.values())
    assert post.servers[0].url == "http://shop.internal/api" and post.servers[0].base_path == "/api"


def test_unsupported_documents_are_named(tmp_path: Path) -> None:
    old = write(tmp_path / "old.yaml", "swagger: '1.2'\ninfo: {title: x}\n")
    listing = write(tmp_path / "list.json", "[1, 2]")
    stray = write(tmp_path / "dir" / "notes.yaml", "hello: world\n")
    loaded = load_specs([old, listing, tmp_path / "dir"])
    messages = {(p.file, p.pointer): p.message for p in loaded.problems}
    assert "unsupported version '1.2'" in messages[(str(old), "/swagger")]
    assert "top level is a list" in messages[(str(listing), "")]
    assert "not an OpenAPI or Swagger document" in messages[(str(stray), "")]


def test_yaml_specs_load_with_libyaml_where_pyyaml_has_it() -> None:
    # The C loader reads large YAML specs several times faster; it stays a safe loader with the
    # expansion limit on top (the bomb test above runs through the same class).
    loader = _bounded_loader(1000)
    assert issubclass(loader, yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)
    assert yaml.load(["a: [1, 2]\n", " !!python/name:os.system\n"][0], Loader=loader) == {"a": [1, 2]}
    with pytest.raises(yaml.YAMLError):
        yaml.load("b: !!python/name:os.system\n", Loader=loader)
