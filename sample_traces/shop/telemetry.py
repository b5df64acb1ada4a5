"""One TracerProvider per service, all exporting into one in-memory span store.

Every service gets its own ``service.name`` resource, as it would in its own process; the
store keeps the SDK's finished spans so the recorder can run the real encoders over them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

NAMESPACE = "shop"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def configure_environment() -> None:
    """Select the stable HTTP conventions and header capture before any instrumentation starts."""
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
    # The httpx instrumentation reads client header capture from the environment only.
    os.environ["OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"] = IDEMPOTENCY_HEADER


class Database:
    """An instrumented SQLite connection.

    The instrumentation wraps cursors; ``Connection.execute`` is a C shortcut that bypasses
    them, so every statement goes through an explicit cursor.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, statement: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement as a database client span of the owning service."""
        cursor: sqlite3.Cursor = self._connection.cursor()
        return cursor.execute(statement, parameters)


class Telemetry:
    """The tracer providers of all services and the store their spans end up in."""

    def __init__(self) -> None:
        self.store = InMemorySpanExporter()
        self.providers: dict[str, TracerProvider] = {}

    def provider(self, service: str) -> TracerProvider:
        """The service's own provider, created on first use with its resource."""
        if service not in self.providers:
            resource = Resource.create(
                {
                    "service.name": service,
                    "service.namespace": NAMESPACE,
                    "service.instance.id": f"{service}-0",
                    "service.version": "1.4.2",
                    "deployment.environment.name": "sample",
                }
            )
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(SimpleSpanProcessor(self.store))
            self.providers[service] = provider
        return self.providers[service]

    def instrument_app(self, app: FastAPI, service: str) -> None:
        """Server spans for every request, with the Idempotency-Key header captured."""
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider(service),
            http_capture_headers_server_request=[IDEMPOTENCY_HEADER],
            # The per-message ASGI send/receive spans triple the volume and say nothing new.
            exclude_spans=["receive", "send"],
        )

    def async_client(self, service: str, base_url: str, **hooks: Any) -> httpx.AsyncClient:
        """An instrumented client: client spans plus traceparent propagation."""
        client = httpx.AsyncClient(base_url=base_url, timeout=30.0)
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider(service), **hooks)
        return client

    def sync_client(self, service: str, base_url: str) -> httpx.Client:
        """An instrumented blocking client, for code that runs in worker threads."""
        client = httpx.Client(base_url=base_url, timeout=30.0)
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider(service))
        return client

    def database(self, service: str, uri: str, setup: Callable[[sqlite3.Connection], object]) -> Database:
        """A SQLite connection whose statements become client spans of ``service``.

        ``setup`` (schema and seed data) runs on a plain connection first: provisioning is
        not part of the traffic and must not leave root spans behind.
        """
        plain = sqlite3.connect(uri, uri=True, isolation_level=None)
        setup(plain)
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        plain.close()
        return Database(
            SQLite3Instrumentor.instrument_connection(connection, tracer_provider=self.provider(service))
        )

    def finished_spans(self) -> Sequence[ReadableSpan]:
        """Flush every provider and return all finished spans, in the order they ended."""
        for provider in self.providers.values():
            provider.force_flush()
        return self.store.get_finished_spans()

    def shutdown(self) -> None:
        """Flush and close every provider."""
        for provider in self.providers.values():
            provider.shutdown()
