"""The seeded traffic mix a 'shop-client' sends through the landscape, with instrumented httpx."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from shop.backends import CATEGORIES, CUSTOMERS, PRODUCTS, sku_of
from shop.env import Env

CLIENT = "shop-client"


@dataclass(frozen=True)
class Mix:
    """How many requests of each kind the client sends."""

    orders: int = 400
    mobile: int = 150
    partner: int = 150
    gateway: int = 600
    pages: int = 300
    returns: int = 150
    invoices: int = 150
    lookups: int = 40
    decline_rate: float = 0.1
    unshippable_rate: float = 0.04

    def as_dict(self) -> dict[str, Any]:
        """The mix as plain data, for the manifest."""
        return asdict(self)


#: pattern name -> (target service, HTTP method, path template)
ENTRIES = {
    "orders": ("orders", "POST", "/orders"),
    "mobile": ("mobile-bff", "POST", "/mobile/checkout"),
    "partner": ("partner-api", "POST", "/partner/v1/orders"),
    "pages": ("storefront", "GET", "/product-page/{productId}"),
    "returns": ("returns", "POST", "/returns"),
    "invoices": ("legacy-billing", "POST", "/invoices"),
    "lookups": ("orders", "GET", "/orders/{orderId}"),
}


class Driver:
    """Sends the mix with bounded concurrency and counts the answers per pattern and status."""

    def __init__(self, env: Env, mix: Mix, seed: int, concurrency: int) -> None:
        self.env = env
        self.mix = mix
        self.rng = random.Random(seed)
        self.concurrency = concurrency
        self.outcomes: Counter[tuple[str, int]] = Counter()
        self.placed: list[dict[str, Any]] = []
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, service: str) -> httpx.AsyncClient:
        """The instrumented client for one target service."""
        if service not in self._clients:
            self._clients[service] = self.env.telemetry.async_client(CLIENT, self.env.urls[service])
        return self._clients[service]

    def plan(self) -> list[tuple[str, dict[str, Any]]]:
        """The shuffled list of (pattern, request) jobs; all randomness is drawn here."""
        jobs: list[tuple[str, dict[str, Any]]] = []
        for pattern in ("orders", "mobile", "partner"):
            jobs += [(pattern, self._order()) for _ in range(getattr(self.mix, pattern))]
        jobs += [("gateway", self._gateway()) for _ in range(self.mix.gateway)]
        jobs += [("pages", {"productId": self.rng.choice(PRODUCTS)}) for _ in range(self.mix.pages)]
        jobs += [
            (
                "returns",
                {"pick": self.rng.random(), "reason": self.rng.choice(["damaged", "wrong size", "late"])},
            )
            for _ in range(self.mix.returns)
        ]
        jobs += [
            (
                "invoices",
                {
                    "orderId": f"ord-{self.rng.randint(1, 999999):06d}",
                    "customerId": self.rng.choice(CUSTOMERS),
                    "productId": self.rng.choice(PRODUCTS),
                },
            )
            for _ in range(self.mix.invoices)
        ]
        jobs += [("lookups", {"pick": self.rng.random()}) for _ in range(self.mix.lookups)]
        self.rng.shuffle(jobs)
        # Long-running returns start early so their wait overlaps the rest of the traffic.
        jobs.sort(key=lambda job: job[0] != "returns" and job[0] != "orders")
        return jobs

    def _order(self) -> dict[str, Any]:
        rng = self.rng
        declined = rng.random() < self.mix.decline_rate
        zip_code = (
            f"99{rng.randint(0, 999):03d}"
            if rng.random() < self.mix.unshippable_rate
            else str(rng.randint(10000, 89999))
        )
        return {
            "customerId": rng.choice(CUSTOMERS),
            "items": [
                {"sku": sku_of(p), "quantity": rng.randint(1, 3)}
                for p in rng.sample(PRODUCTS, rng.randint(1, 3))
            ],
            "cardToken": f"tok_{'declined' if declined else 'visa'}_{rng.randint(1000, 9999)}",
            "address": {"name": "A. Customer", "street": f"Hauptstr. {rng.randint(1, 200)}", "zip": zip_code},
        }

    def _gateway(self) -> dict[str, Any]:
        rng = self.rng
        product = rng.choice(PRODUCTS)
        path = rng.choice(
            [
                f"/api/products/{product}",
                f"/api/products/{product}/reviews",
                f"/api/users/{rng.choice(CUSTOMERS)}",
                f"/api/recommendations/{product}",
                f"/api/prices/{product}",
                f"/api/stock/{sku_of(product)}",
                f"/api/search?q={rng.choice(CATEGORIES)}",
            ]
        )
        return {"path": path}

    async def run(self) -> None:
        """Send every planned request; returns and lookups wait for a placed order to refer to."""
        jobs = self.plan()
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        workers = [asyncio.create_task(self._work(queue)) for _ in range(self.concurrency)]
        await asyncio.gather(*workers)
        for client in self._clients.values():
            await client.aclose()

    async def _work(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        while not queue.empty():
            pattern, request = queue.get_nowait()
            status = await self._send(pattern, request)
            self.outcomes[(pattern, status)] += 1

    async def _send(self, pattern: str, request: dict[str, Any]) -> int:
        if pattern == "gateway":
            return (await self.client("api-gateway").get(request["path"])).status_code
        if pattern == "pages":
            return (await self.client("storefront").get(f"/product-page/{request['productId']}")).status_code
        if pattern == "invoices":
            return (await self.client("legacy-billing").post("/invoices", json=request)).status_code
        if pattern in ("returns", "lookups"):
            order = await self._placed(request["pick"])
            if pattern == "lookups":
                return (await self.client("orders").get(f"/orders/{order['orderId']}")).status_code
            body = {
                "orderId": order["orderId"],
                "paymentId": order["paymentId"],
                "customerId": order["customerId"],
                "items": order["items"],
                "amount": 19.99,
                "reason": request["reason"],
            }
            return (await self.client("returns").post("/returns", json=body)).status_code
        service, method, path = ENTRIES[pattern]
        response = await self.client(service).request(method, path, json=request)
        if pattern == "orders" and response.status_code == 201:
            self.placed.append(
                {**response.json(), "customerId": request["customerId"], "items": request["items"]}
            )
        return response.status_code

    async def _placed(self, pick: float) -> dict[str, Any]:
        while not self.placed:
            await asyncio.sleep(0.01)
        return self.placed[int(pick * len(self.placed))]

    def summary(self) -> dict[str, dict[str, int]]:
        """Responses per pattern and HTTP status, as the client saw them."""
        result: dict[str, dict[str, int]] = {}
        for (pattern, status), count in sorted(self.outcomes.items()):
            result.setdefault(pattern, {})[str(status)] = count
        return result
