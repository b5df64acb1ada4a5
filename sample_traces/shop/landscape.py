"""Start every service on its own port, each uvicorn server on a thread with its own event loop.

Separate threads keep the services' context variables apart, as separate processes would: a
server only ever learns its parent from the traceparent header it receives.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shop.backends import (
    build_approvals,
    build_catalog,
    build_inventory,
    build_notification,
    build_payment,
    build_pricing,
    build_recommendations,
    build_reviews,
    build_search,
    build_shipping,
    build_users,
)
from shop.consumers import start_consumers
from shop.edges import build_api_gateway, build_storefront
from shop.env import Env
from shop.orchestrators import (
    build_legacy_billing,
    build_mobile_bff,
    build_orders,
    build_partner_api,
    build_returns,
)

#: Every HTTP service of the landscape, by service.name.
BUILDERS: dict[str, Callable[[Env], FastAPI]] = {
    "api-gateway": build_api_gateway,
    "approvals": build_approvals,
    "catalog": build_catalog,
    "inventory": build_inventory,
    "legacy-billing": build_legacy_billing,
    "mobile-bff": build_mobile_bff,
    "notification": build_notification,
    "orders": build_orders,
    "partner-api": build_partner_api,
    "payment": build_payment,
    "pricing": build_pricing,
    "recommendations": build_recommendations,
    "returns": build_returns,
    "reviews": build_reviews,
    "search": build_search,
    "shipping": build_shipping,
    "storefront": build_storefront,
    "users": build_users,
}


class Landscape:
    """The running services; a context manager that stops them on exit."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.apps: dict[str, FastAPI] = {}
        self._servers: list[uvicorn.Server] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Landscape:
        sockets: dict[str, socket.socket] = {}
        # Bind every port first so each service knows where the others listen before it starts.
        for name in BUILDERS:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets[name] = sock
            self.env.urls[name] = f"http://127.0.0.1:{sock.getsockname()[1]}"
        start_consumers(self.env)
        for name, build in BUILDERS.items():
            app = self.apps[name] = build(self.env)
            config = uvicorn.Config(
                app,
                lifespan="on",
                log_level="warning",
                access_log=False,
                loop="asyncio",
                http="h11",
                ws="none",
                backlog=512,
                # Outlive the clients' idle connections: no close races mid-request.
                timeout_keep_alive=120,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sockets[name]]}, name=name, daemon=True
            )
            self._servers.append(server)
            self._threads.append(thread)
            thread.start()
        deadline = time.monotonic() + 60
        while not all(server.started for server in self._servers):
            if time.monotonic() > deadline or not all(t.is_alive() for t in self._threads):
                raise RuntimeError("the sample services did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.env.background.wait(timeout=600)
        self.env.broker.close()
        for server in self._servers:
            server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=30)
