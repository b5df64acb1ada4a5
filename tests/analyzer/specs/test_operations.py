"""Matching spans to operations: real instrumented FastAPI traffic, real specs, HotROD without a spec."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import FIXTURES, SAMPLE

from orchscan.analyzer.results import OperationRef, ServiceCoverage, UndocumentedCall
from orchscan.analyzer.specs.operations import (
    OperationMatches,
    _fold_identifiers,
    index_operations,
    match_operations,
    measure_coverage,
    operation_of,
    summarise_coverage,
)
from orchscan.collectors.model.spans import SCHEMA
from orchscan.collectors.openapi import Operation, bind_specs, load_specs
from orchscan.collectors.traces.ingest import ingest

SPECS = FIXTURES / "specs"


def span_table(rows: list[dict[str, Any]]) -> pa.Table:
    """A span table from partial rows; ids are generated, absent columns are null."""
    full = []
    for number, row in enumerate(rows):
        base = {
            "trace_id": f"{number:032x}",
            "span_id": f"{number + 1:016x}",
            "service": "unknown",
            "name": "span",
            "kind": "server",
            "start_ns": 0,
            "end_ns": 1,
            "status": "unset",
            "idempotency_key": False,
            "attributes": [],
            "source": "factory",
        }
        full.append({**base, **row})
    return pa.Table.from_pylist(full, schema=SCHEMA)


def by_service(*paths: Path, services: list[str]) -> dict[str, tuple[Operation, ...]]:
    loaded = load_specs(list(paths))
    assert loaded.problems == ()
    return index_operations(loaded.specs, bind_specs(loaded.specs, services))


_PETSTORE = load_specs([SPECS / "petstore" / "spec" / "openapi.yaml"]).specs
PETSTORE_OPS = index_operations(_PETSTORE, bind_specs(_PETSTORE, ["petstore"]))


# -- without any spec ------------------------------------------------------------------------


def test_hotrod_gets_fallback_operations_without_a_spec() -> None:
    spans = ingest([FIXTURES / "hotrod" / "traces" / "jaeger-skills_n_plus_one_full_serial.otlp.json"]).spans
    table = match_operations(spans, {}).table
    assert table.num_rows == spans.num_rows
    assert table["op_service"].null_count == spans.num_rows
    rows = zip(
        spans["service"].to_pylist(),
        spans["kind"].to_pylist(),
        table["operation_key"].to_pylist(),
        strict=True,
    )
    server_ops = {(service, key) for service, kind, key in rows if kind == "server"}
    assert server_ops == {
        ("frontend", "GET /dispatch"),
        ("customer", "GET /customer"),
        ("route", "GET /route"),
        ("driver", "driver.DriverService/FindNearest"),
    }
    # Client spans find the service they call from what the servers report (address and port).
    calls = Counter(
        target
        for kind, service, target in zip(
            spans["kind"].to_pylist(),
            spans["service"].to_pylist(),
            table["target_service"].to_pylist(),
            strict=True,
        )
        if kind == "client" and service == "frontend"
    )
    assert calls == Counter({"route": 10, "customer": 1, "driver": 1})


# -- real specs, synthetic spans --------------------------------------------------------------


def test_petstore_precedence_base_path_trailing_slash_and_encoding() -> None:
    ops = by_service(SPECS / "petstore" / "spec" / "openapi.yaml", services=["petstore"])
    paths = [
        ("GET", "/api/v3/pet/findByStatus"),  # concrete segment before /pet/{petId}
        ("GET", "/api/v3/pet/42/"),  # trailing slash
        ("GET", "/pet/42"),  # served without the base path (behind a prefix-stripping proxy)
        ("GET", "/api/v3/user/j%C3%B6rg%2Fx"),  # an encoded slash stays inside its segment
        ("DELETE", "/api/v3/store/order/7"),
        ("POST", "/api/v3/pet/42/uploadImage"),
        ("GET", "/api/v3/pet/42/vaccinations"),  # undocumented
        ("PATCH", "/api/v3/pet/42"),  # documented path, undocumented method
    ]
    spans = span_table([{"service": "petstore", "http_method": m, "url_path": p} for m, p in paths])
    table = match_operations(spans, ops).table
    assert table["operation_id"].to_pylist() == [
        "findPetsByStatus",
        "getPetById",
        "getPetById",
        "getUserByName",
        "deleteOrder",
        "uploadFile",
        None,
        None,
    ]
    assert table["operation_key"].to_pylist()[:2] == ["GET /pet/findByStatus", "GET /pet/{petId}"]
    assert table["inferred"].to_pylist()[:1] == [False]
    coverage = summarise_coverage(measure_coverage(spans, match_operations(spans, ops), ops), ops)
    (petstore,) = coverage
    assert (petstore.calls, petstore.matched, petstore.observed_from) == (8, 6, "server")
    assert petstore.match_rate == pytest.approx(0.75)
    assert set(petstore.undocumented) == {
        UndocumentedCall("GET", "/api/v3/pet/42/vaccinations", 1),
        UndocumentedCall("PATCH", "/api/v3/pet/42", 1),
    }
    assert len(petstore.unseen) == 19 - 5
    assert "GET /pet/findByTags" in petstore.unseen and "GET /pet/{petId}" not in petstore.unseen


def test_route_templates_match_structurally_not_as_text() -> None:
    ops = by_service(SPECS / "petstore" / "spec" / "openapi.yaml", services=["petstore"])
    spans = span_table(
        [
            {"service": "petstore", "http_method": "GET", "http_route": "/pet/{id}", "url_path": "/pet/1"},
            {"service": "petstore", "http_method": "GET", "http_route": "/api/v3/pet/:petId"},
            {
                "service": "petstore",
                "http_method": "GET",
                "http_route": "/pet/findByStatus",
                "url_path": "/x",
            },
            # A route parameter never matches a concrete spec segment.
            {"service": "petstore", "http_method": "GET", "http_route": "/store/{what}"},
        ]
    )
    table = match_operations(spans, ops).table
    assert table["operation_id"].to_pylist() == ["getPetById", "getPetById", "findPetsByStatus", None]
    assert table["operation_key"].to_pylist()[3] == "GET /store/{what}"


def test_pets_mine_before_pets_id_and_synthesised_ids(tmp_path: Path) -> None:
    spec = tmp_path / "pets.yaml"
    spec.write_text(
        "openapi: 3.1.0\ninfo: {title: Pets Service}\nservers: [{url: 'https://pets.example/v1/'}]\npaths:\n"
        "  /pets/{id}: {get: {responses: {'200': {description: ok}}}}\n"
        "  /pets/mine: {get: {responses: {'200': {description: ok}}}}\n"
        "  /pets/{id}.json: {get: {responses: {'200': {description: ok}}}}\n",
        encoding="utf-8",
    )
    ops = by_service(spec, services=["pets"])
    spans = span_table(
        [
            {"service": "pets", "http_method": "GET", "url_path": p}
            for p in ("/v1/pets/mine", "/v1/pets/7", "/v1/pets/7.json")
        ]
    )
    table = match_operations(spans, ops).table
    assert table["op_path"].to_pylist() == ["/pets/mine", "/pets/{id}", "/pets/{id}.json"]
    assert table["operation_id"].to_pylist() == ["get_pets_mine", "get_pets_id", "get_pets_id_json"]
    assert table["inferred"].to_pylist() == [True, True, True]


def test_an_observed_operation_finds_the_operation_its_spans_matched(tmp_path: Path) -> None:
    """Handoffs, findings and drafts ask operation_of; it answers as the spans' matching did."""
    spec = tmp_path / "pets.yaml"
    spec.write_text(
        "openapi: 3.1.0\ninfo: {title: Pets Service}\nservers: [{url: 'https://pets.example/v1/'}]\npaths:\n"
        "  /pets/{id}: {get: {responses: {'200': {description: ok}}}}\n"
        "  /pets/mine: {get: {responses: {'200': {description: ok}}}}\n",
        encoding="utf-8",
    )
    pets = by_service(spec, services=["pets"])["pets"]
    petstore = PETSTORE_OPS["petstore"]
    cases = [
        # A concrete path, listed after the template that would also fit: the literal segment wins.
        (OperationRef("pets", "GET /v1/pets/mine", "GET"), pets, "get_pets_mine"),
        # The route with the server's base path and another parameter name.
        (OperationRef("petstore", "GET /api/v3/pet/{id}", "GET", "/api/v3/pet/{id}"), petstore, "getPetById"),
        (
            OperationRef("petstore", "GET /pet/findByStatus", "GET", "/pet/findByStatus"),
            petstore,
            "findPetsByStatus",
        ),
        # The operationId the spans' match gave decides, whatever the key says.
        (OperationRef("petstore", "anything", None, None, "deleteOrder"), petstore, "deleteOrder"),
        (OperationRef("petstore", "GET /api/v3/pet/42/vaccinations", "GET"), petstore, None),
        (OperationRef("petstore", "petstore.Find", None), petstore, None),
    ]
    for ref, operations, expected in cases:
        found = operation_of(ref, operations)
        assert (found.operation_id if found else None) == expected, ref


def test_client_spans_reach_the_spec_of_the_service_they_call() -> None:
    ops = by_service(
        SPECS / "sock-shop" / "spec", services=["orders", "payment", "carts", "user", "front-end"]
    )
    spans = span_table(
        [
            # orders -> payment named by host (Kubernetes DNS name = spec host = service name)
            {
                "service": "orders",
                "kind": "client",
                "http_method": "POST",
                "url_path": "/paymentAuth",
                "server_address": "payment",
                "server_port": 80,
            },
            # orders -> carts named by peer.service
            {
                "service": "orders",
                "kind": "client",
                "http_method": "POST",
                "url_path": "/carts/57a98d98/items",
                "peer_service": "carts",
            },
            # front-end -> 10.0.0.9:8080, an address only the user service's server spans report
            {
                "service": "front-end",
                "kind": "client",
                "http_method": "GET",
                "url_path": "/customers/57a98d98",
                "server_address": "10.0.0.9",
                "server_port": 8080,
            },
            {
                "service": "user",
                "http_method": "GET",
                "http_route": "/customers/{id}",
                "server_address": "10.0.0.9",
                "server_port": 8080,
            },
            # a client span to something with no spec keeps its fallback key
            {
                "service": "orders",
                "kind": "client",
                "name": "POST",
                "http_method": "POST",
                "url_path": "/shipping",
                "server_address": "shipping",
            },
        ]
    )
    matches = match_operations(spans, ops)
    table = matches.table
    assert table["target_service"].to_pylist() == ["payment", "carts", "user", "user", None]
    assert table["operation_id"].to_pylist() == [
        "/paymentAuth > POST",
        "Add an item to the cart",
        "Get customer",
        "Get customer",
        None,
    ]
    assert table["operation_key"].to_pylist()[4] == "POST"
    coverage = {c.service: c for c in summarise_coverage(measure_coverage(spans, matches, ops), ops)}
    # payment emits no server spans: the client spans calling it stand in.
    assert coverage["payment"].observed_from == "client" and coverage["payment"].matched == 1
    assert coverage["payment"].unseen == ("GET /health",)
    assert coverage["user"].observed_from == "server" and (
        coverage["user"].calls,
        coverage["user"].matched,
    ) == (1, 1)
    assert coverage["orders"] == ServiceCoverage(
        "orders", "client", 0, 0, (), ("GET /orders", "POST /orders")
    )


# -- real producer: a FastAPI service instrumented with the OpenTelemetry SDK ----------------


@pytest.fixture(scope="module")
def fastapi_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Serve a FastAPI app with uvicorn, call it over HTTP with httpx, both instrumented with the
    OpenTelemetry SDK; keep the exported OTLP protobuf and the OpenAPI document FastAPI generates."""
    import httpx
    import uvicorn
    from fastapi import FastAPI
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    server_side = TracerProvider(resource=Resource.create({"service.name": "pets-service"}))
    server_side.add_span_processor(SimpleSpanProcessor(exporter))
    client_side = TracerProvider(resource=Resource.create({"service.name": "pets-client"}))
    client_side.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(title="Pets Service")

    @app.get("/pets/mine")
    def my_pets() -> list[str]:
        return ["rex"]

    @app.get("/pets/{pet_id}")
    def get_pet(pet_id: int) -> dict[str, int]:
        return {"id": pet_id}

    @app.post("/pets")
    def add_pet(name: str) -> dict[str, str]:
        return {"name": name}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=server_side)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            HTTPXClientInstrumentor.instrument_client(client, tracer_provider=client_side)
            for path in ("/pets/mine", "/pets/3", "/pets/4/", "/pets/mine", "/nowhere"):
                client.get(path)
            client.post("/pets", params={"name": "tom"})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    folder = tmp_path_factory.mktemp("fastapi")
    spec = folder / "pets-service.json"
    spec.write_text(json.dumps(app.openapi()), encoding="utf-8")
    traces = folder / "pets.otlp.pb"
    traces.write_bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())
    return traces, spec


def test_instrumented_fastapi_traffic_matches_its_generated_spec(fastapi_capture: tuple[Path, Path]) -> None:
    traces, spec = fastapi_capture
    spans = ingest([traces]).spans
    loaded = load_specs([spec])
    bindings = bind_specs(loaded.specs, spans["service"].to_pylist())
    assert [(b.service, b.reason) for b in bindings.bindings] == [("pets-service", "title")]
    ops = index_operations(loaded.specs, bindings)
    matches = match_operations(spans, ops)
    kinds = spans["kind"].to_pylist()
    methods = spans["http_method"].to_pylist()
    observed = [
        (kind, key)
        for kind, method, key in zip(kinds, methods, matches.table["operation_key"].to_pylist(), strict=True)
        if kind in ("server", "client") and method
    ]
    server = Counter(key for kind, key in observed if kind == "server")
    client = Counter(key for kind, key in observed if kind == "client")
    # /pets/4/ (FastAPI answers with a redirect, no route) is matched with its trailing slash trimmed.
    assert server["GET /pets/mine"] == 2 and server["GET /pets/{pet_id}"] == 2 and server["POST /pets"] == 1
    assert client["GET /pets/mine"] == 2 and client["GET /pets/{pet_id}"] == 2 and client["POST /pets"] == 1
    (coverage,) = summarise_coverage(measure_coverage(spans, matches, ops), ops)
    assert coverage.observed_from == "server"
    assert (coverage.calls, coverage.matched, coverage.unseen) == (6, 5, ())
    assert coverage.undocumented == (UndocumentedCall("GET", "/nowhere", 1),)
    # Client spans reached the server's spec through the address and port its server spans report.
    targets = {
        t for k, t in zip(kinds, matches.table["target_service"].to_pylist(), strict=True) if k == "client"
    }
    assert targets == {"pets-service"}


# -- the sample landscape: FastAPI services recorded with OpenTelemetry, their generated specs --


@pytest.mark.skipif(not (SAMPLE / "openapi").is_dir(), reason="sample landscape not recorded")
def test_every_instrumented_http_server_span_of_the_sample_matches_an_operation() -> None:
    spans = ingest(sorted((SAMPLE / "traces").iterdir())).spans
    loaded = load_specs([SAMPLE / "openapi"])
    assert loaded.problems == ()
    services = set(spans["service"].to_pylist()) | set(filter(None, spans["peer_service"].to_pylist()))
    bindings = bind_specs(loaded.specs, services)
    ops = index_operations(loaded.specs, bindings)
    matches = match_operations(spans, ops)
    http_server = [
        (service, op)
        for service, kind, method, op in zip(
            spans["service"].to_pylist(),
            spans["kind"].to_pylist(),
            spans["http_method"].to_pylist(),
            matches.table["operation_id"].to_pylist(),
            strict=True,
        )
        if kind == "server" and method
    ]
    assert len(http_server) > 1000
    unmatched = Counter(service for service, op in http_server if op is None)
    assert unmatched == Counter()
    for coverage in summarise_coverage(measure_coverage(spans, matches, ops), ops):
        if coverage.observed_from == "server":
            assert coverage.match_rate == 1.0, coverage


def test_grpc_spans_match_a_spec_documenting_the_wire_path(tmp_path: Path) -> None:
    spec = tmp_path / "driver.yaml"
    spec.write_text(
        "openapi: 3.0.3\ninfo: {title: Driver}\npaths:\n"
        "  /driver.DriverService/FindNearest:\n"
        "    post: {operationId: FindNearest, responses: {'200': {description: ok}}}\n",
        encoding="utf-8",
    )
    ops = by_service(spec, services=["driver"])
    spans = span_table(
        [
            {
                "service": "driver",
                "rpc_system": "grpc",
                "rpc_service": "driver.DriverService",
                "rpc_method": "FindNearest",
            },
            {
                "service": "driver",
                "rpc_system": "grpc",
                "rpc_service": "driver.DriverService",
                "rpc_method": "Other",
            },
        ]
    )
    table = match_operations(spans, ops).table
    assert table["operation_id"].to_pylist() == ["FindNearest", None]
    assert table["operation_key"].to_pylist() == [
        "POST /driver.DriverService/FindNearest",
        "driver.DriverService/Other",
    ]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
            st.lists(
                st.sampled_from(["pet", "mine", "42", "findByStatus", "store", "order", "user", "x"]),
                max_size=4,
            ),
            st.booleans(),
        ),
        max_size=40,
    )
)
@settings(max_examples=60, deadline=None)
def test_matching_is_row_aligned_and_independent_of_batching(rows: list[tuple[str, list[str], bool]]) -> None:
    ops = PETSTORE_OPS
    spans = span_table(
        [
            {
                "service": "petstore",
                "http_method": m,
                "url_path": "/" + "/".join(segments) + ("/" if slash else ""),
            }
            for m, segments, slash in rows
        ]
    )
    whole = match_operations(spans, ops).table
    assert whole.num_rows == spans.num_rows
    # The same spans in many small batches give the same answers row by row.
    batched = pa.Table.from_batches(spans.to_batches(max_chunksize=3), schema=SCHEMA) if rows else spans
    assert match_operations(batched, ops).table.equals(whole)
    # Each span matched alone gives its row's answer: distinct-key grouping changes nothing.
    for index in range(min(len(rows), 5)):
        alone = match_operations(spans.slice(index, 1), ops).table
        assert alone["operation_id"].to_pylist() == whole["operation_id"].to_pylist()[index : index + 1]


# -- the columnar machinery: identifier folding, batches, children, coverage from the table ----

# The definition the segment-wise fold must agree with: the regular expression over whole paths,
# twice (one match consumes the slash a directly following identifier needs).
_REFERENCE_IDENTIFIER = (
    r"/(?:[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{24,})(/|$)"
)


def reference_fold(paths: list[str | None]) -> list[str | None]:
    folded = pa.array(paths, pa.string())
    for _ in range(2):
        folded = pc.replace_substring_regex(folded, _REFERENCE_IDENTIFIER, r"/{}\1")
    return list(folded.to_pylist())


TRICKY_PATHS = [
    "",
    None,
    "/",
    "//",
    "/1",
    "1/2",  # the text before the first slash is never an identifier
    "/1/2/3",
    "/1/2/3/4/",
    "/orders/42/items/7",
    "/orders/42/",
    "/a//1//b",
    "/x/0x1f/12a/a12/007",
    "/u/123e4567-e89b-12d3-a456-426614174000/v",
    "/u/123E4567-E89B-12D3-A456-426614174000",
    "/u/123e4567e89b12d3a456426614174000",  # 32 hex: a long hex id
    "/u/123e4567-e89b-12d3-a456-42661417400",  # one digit short of a UUID, 35 chars
    "/o/507f1f77bcf86cd799439011",  # 24 hex (a Mongo ObjectId)
    "/o/507f1f77bcf86cd79943901",  # 23 hex
    "/o/507f1f77bcf86cd79943901g",
    "/%31%32/%2F/12%20",  # percent-encoded segments stay as they are
    "/١٢/²/x",  # non-ASCII digits are not identifiers
    "/12\n/\n12/12",
    "/ü/1/ü",
]


def test_segment_fold_agrees_with_the_regular_expression_on_tricky_paths() -> None:
    folded = _fold_identifiers(pa.array(TRICKY_PATHS, pa.string()))
    assert folded.to_pylist() == reference_fold(TRICKY_PATHS)
    assert folded.to_pylist()[6:9] == ["/{}/{}/{}", "/{}/{}/{}/{}/", "/orders/{}/items/{}"]


_SEGMENTS = st.one_of(
    st.sampled_from(["", "1", "42", "007", "pets", "mine", "a1", "ff", "x.json", "{}", "%2F", "١"]),
    st.text(alphabet="0123456789abcdefABCDEF-", min_size=20, max_size=40),
    st.uuids().map(str),
    st.text(max_size=6).filter(lambda s: "/" not in s),
)


@given(st.lists(st.one_of(st.none(), st.lists(_SEGMENTS, max_size=6).map("/".join)), max_size=30))
@settings(max_examples=200, deadline=None)
def test_segment_fold_agrees_with_the_regular_expression(paths: list[str | None]) -> None:
    for prefix in ("", "/"):
        given_paths = [prefix + p if p is not None else None for p in paths]
        assert _fold_identifiers(pa.array(given_paths, pa.string())).to_pylist() == reference_fold(
            given_paths
        )


def test_batches_with_their_own_dictionaries_match_like_one_table() -> None:
    rows: list[dict[str, Any]] = [
        {"service": "petstore", "http_method": "GET", "url_path": "/api/v3/pet/42"},
        {
            "service": "front",
            "kind": "client",
            "http_method": "GET",
            "url_path": "/pet/7",
            "peer_service": "petstore",
        },
        {"service": "petstore", "http_method": "DELETE", "url_path": "/api/v3/store/order/7"},
    ]
    whole = span_table(rows)
    # Each batch codes its text with a dictionary of its own (as ingested batches do).
    batched = pa.concat_tables([span_table(rows[2:]), span_table(rows[:2])])
    assert batched["service"].chunk(0).dictionary != batched["service"].chunk(1).dictionary
    expected = match_operations(whole, PETSTORE_OPS).table.to_pylist()
    table = match_operations(batched, PETSTORE_OPS).table
    assert table.to_pylist() == expected[2:] + expected[:2]
    assert table["operation_id"].to_pylist() == ["deleteOrder", "getPetById", "getPetById"]


def test_client_spans_without_an_address_take_the_service_of_their_server_child() -> None:
    ops = by_service(SPECS / "petstore" / "spec" / "openapi.yaml", services=["petstore"])
    rows: list[dict[str, Any]] = [
        {
            "service": "front",
            "kind": "client",
            "http_method": "GET",
            "url_path": "/pet/1",
            "server_address": "lb",
        },
        {"service": "petstore", "http_method": "GET", "http_route": "/pet/{id}"},
        {
            "service": "front",
            "kind": "client",
            "http_method": "GET",
            "url_path": "/pet/2",
            "server_address": "lb",
        },
    ]
    spans = span_table(rows)
    # The server span of row 1 is the child of the client span of row 0 (same trace).
    spans = spans.set_column(0, "trace_id", pa.array(["t" * 32] * 3))
    spans = spans.set_column(
        2, "parent_span_id", pa.array([None, spans["span_id"][0].as_py(), None], pa.string())
    )
    table = match_operations(spans, ops).table
    assert table["target_service"].to_pylist() == ["petstore", "petstore", None]
    assert table["operation_id"].to_pylist() == ["getPetById", "getPetById", None]


def test_coverage_reads_a_match_table_built_elsewhere_the_same() -> None:
    ops = by_service(SPECS / "petstore" / "spec" / "openapi.yaml", services=["petstore"])
    paths = ["/api/v3/pet/findByStatus", "/api/v3/pet/42", "/api/v3/pet/42/vaccinations", "/nowhere"]
    spans = span_table(
        [{"service": "petstore", "http_method": "GET", "url_path": p} for p in paths]
        + [{"service": "petstore", "http_method": "PATCH", "http_route": "/pet/{petId}"}]
        + [{"service": "front", "kind": "client", "http_method": "GET", "peer_service": "petstore"}]
    )
    matches = match_operations(spans, ops)
    (coverage,) = summarise_coverage(measure_coverage(spans, matches, ops), ops)
    assert coverage.undocumented == (
        UndocumentedCall("GET", "/api/v3/pet/42/vaccinations", 1),
        UndocumentedCall("GET", "/nowhere", 1),
        UndocumentedCall("PATCH", "/pet/{petId}", 1),
    )
    assert summarise_coverage(measure_coverage(spans, OperationMatches(matches.table), ops), ops) == (
        coverage,
    )
