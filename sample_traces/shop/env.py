"""What every service factory receives: telemetry, the broker, where the others listen, settings."""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fastapi import FastAPI

from shop.broker import Broker
from shop.telemetry import Telemetry


@dataclass(frozen=True)
class Settings:
    """Behaviour knobs of the landscape; the recorder sets them from its command line."""

    approval_wait: float = 3.0
    shipping_attempts: int = 3
    retry_backoff: float = 0.02
    # Shipping's carrier: "sometimes" briefly busy (503s decided by the reservation id, as in the
    # recorded traffic), "never" (every shippable request succeeds at once), or busy "once" for
    # every reservation (so a retry is always needed and always suffices).
    carrier: Literal["sometimes", "never", "once"] = "sometimes"


@dataclass
class Env:
    """Shared wiring of one recorded landscape."""

    telemetry: Telemetry
    broker: Broker
    data_dir: Path
    settings: Settings
    urls: dict[str, str] = field(default_factory=dict)
    background: BackgroundWork = field(default_factory=lambda: BackgroundWork())

    def db_uri(self, name: str) -> str:
        """SQLite URI of a service's database file."""
        return (self.data_dir / f"{name}.db").as_uri()


class BackgroundWork:
    """Counts work that outlives its HTTP request, so the recorder can wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Event()
        self._idle.set()

    def started(self) -> None:
        """Note one more running job."""
        with self._lock:
            self._running += 1
            self._idle.clear()

    def finished(self) -> None:
        """Note one job done."""
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    def wait(self, timeout: float) -> bool:
        """Block until nothing is running; False on timeout."""
        return self._idle.wait(timeout)


def ids(prefix: str) -> Callable[[], str]:
    """A thread-safe sequence of readable ids such as ``res-000042``."""
    counter = itertools.count(1)
    lock = threading.Lock()

    def next_id() -> str:
        with lock:
            return f"{prefix}-{next(counter):06d}"

    return next_id


Lifespan = Callable[[FastAPI], AsyncIterator[None]]


def service_app(
    env: Env,
    service: str,
    title: str,
    *,
    instrumented: bool = True,
    on_start: Callable[[], object] | None = None,
    on_stop: Callable[[], object] | None = None,
) -> FastAPI:
    """A FastAPI app named after its service, instrumented with that service's provider."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if on_start is not None:
            on_start()
        yield
        if on_stop is not None:
            result = on_stop()
            if hasattr(result, "__await__"):
                await result  # type: ignore[misc]

    app = FastAPI(title=title, version="1.4.2", lifespan=lifespan)
    app.state.service = service
    if instrumented:
        env.telemetry.instrument_app(app, service)
    return app


class Peers:
    """Instrumented clients of one service, one per downstream, created in the service's loop."""

    def __init__(self, env: Env, service: str, **hooks: object) -> None:
        self._env = env
        self._service = service
        self._hooks = hooks
        self._clients: dict[str, object] = {}

    def __call__(self, name: str):  # type: ignore[no-untyped-def]
        """The client for downstream ``name``."""
        if name not in self._clients:
            self._clients[name] = self._env.telemetry.async_client(
                self._service, self._env.urls[name], **self._hooks
            )
        return self._clients[name]

    async def close(self) -> None:
        """Close every client (called when the service stops)."""
        for client in self._clients.values():
            await client.aclose()  # type: ignore[attr-defined]
        self._clients.clear()
