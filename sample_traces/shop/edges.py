"""The look-alikes of an orchestrator: a routing gateway and a composing storefront."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Response

from shop.backends import sku_of
from shop.env import Env, Peers, service_app
from shop.models import Price, Product, ProductPage, Recommendations, Reviews, SearchResult, Stock, User


def build_api_gateway(env: Env) -> FastAPI:
    """Forwards every request to exactly one downstream service, chosen by path."""
    peers = Peers(env, "api-gateway")
    app = service_app(env, "api-gateway", "API Gateway", on_stop=peers.close)

    async def relay(service: str, path: str, params: dict[str, str] | None = None) -> Response:
        upstream = await peers(service).get(path, params=params)
        return Response(upstream.content, upstream.status_code, media_type="application/json")

    @app.get("/api/products/{productId}", operation_id="routeGetProduct", response_model=Product)
    async def product(productId: str) -> Response:
        return await relay("catalog", f"/products/{productId}")

    @app.get("/api/products/{productId}/reviews", operation_id="routeGetReviews", response_model=Reviews)
    async def reviews(productId: str) -> Response:
        return await relay("reviews", f"/reviews/{productId}")

    @app.get("/api/users/{userId}", operation_id="routeGetUser", response_model=User)
    async def user(userId: str) -> Response:
        return await relay("users", f"/users/{userId}")

    @app.get(
        "/api/recommendations/{productId}",
        operation_id="routeGetRecommendations",
        response_model=Recommendations,
    )
    async def recommendations(productId: str) -> Response:
        return await relay("recommendations", f"/recommendations/{productId}")

    @app.get("/api/prices/{productId}", operation_id="routeGetPrice", response_model=Price)
    async def price(productId: str) -> Response:
        return await relay("pricing", f"/prices/{productId}")

    @app.get("/api/stock/{sku}", operation_id="routeGetStock", response_model=Stock)
    async def stock(sku: str) -> Response:
        return await relay("inventory", f"/stock/{sku}")

    @app.get("/api/search", operation_id="routeSearch", response_model=SearchResult)
    async def search(q: str) -> Response:
        return await relay("search", "/search", {"q": q})

    return app


def build_storefront(env: Env) -> FastAPI:
    """Builds a product page from five services read in parallel."""
    peers = Peers(env, "storefront")
    app = service_app(env, "storefront", "Storefront", on_stop=peers.close)

    @app.get("/product-page/{productId}", operation_id="getProductPage", response_model=ProductPage)
    async def page(productId: str) -> ProductPage:
        product, price, stock, reviews, recommended = await asyncio.gather(
            peers("catalog").get(f"/products/{productId}"),
            peers("pricing").get(f"/prices/{productId}"),
            peers("inventory").get(f"/stock/{sku_of(productId)}"),
            peers("reviews").get(f"/reviews/{productId}"),
            peers("recommendations").get(f"/recommendations/{productId}"),
        )
        for response in (product, price, stock, reviews, recommended):
            response.raise_for_status()
        return ProductPage(
            product=Product.model_validate_json(product.content),
            price=Price.model_validate_json(price.content),
            stock=Stock.model_validate_json(stock.content),
            reviews=Reviews.model_validate_json(reviews.content),
            recommendations=Recommendations.model_validate_json(recommended.content),
        )

    return app
