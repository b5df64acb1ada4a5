"""Operations by route template: ids folded by their shape (the analyzer's fold) or by their siblings."""

from __future__ import annotations

from orchscan.reports.html.routes import fold_operations


def test_ids_the_analyzer_recognises_are_folded_even_alone() -> None:
    keys = ["GET /orders/1234", "GET /carts/3f2504e0-4f89-11d3-9a0c-0305e82c3301/items", "POST /orders"]
    assert fold_operations(keys) == (
        ("GET /carts/{}/items", 1),
        ("GET /orders/{}", 1),
        ("POST /orders", 1),
    )


def test_ids_of_any_shape_are_folded_when_siblings_vary_in_that_segment() -> None:
    keys = [f"GET /prices/p-{i:03d}" for i in (22, 14, 1, 18)] + ["GET /prices/search", "POST /invoices"]
    assert fold_operations(keys) == (
        ("GET /prices/{}", 4),
        ("GET /prices/search", 1),
        ("POST /invoices", 1),
    )


def test_a_lone_path_and_names_without_digits_stay_as_observed() -> None:
    keys = ["GET /prices/p-022", "GET /api/stock", "GET /api/prices", "GET /api/users/{userId}"]
    assert [key for key, _ in fold_operations(keys)] == sorted(keys)


def test_folding_repeats_until_every_varying_segment_is_folded() -> None:
    # Two id segments: each is told once the other is folded.
    keys = [f"GET /shops/s-{s}/items/i-{i}" for s in (1, 2, 3) for i in (7, 8)]
    assert fold_operations(keys) == (("GET /shops/{}/items/{}", 6),)


def test_rpc_and_message_operations_are_kept_and_counted() -> None:
    keys = ["process order-placed", "grpc.health.v1.Health/Check", "process order-placed"]
    assert fold_operations(keys) == (("process order-placed", 2), ("grpc.health.v1.Health/Check", 1))


def test_the_most_frequent_template_comes_first_and_counts_add_up() -> None:
    keys = [f"GET /users/u{i}" for i in range(103)] + [f"GET /prices/p-{i}" for i in range(38)] + ["POST /x"]
    folded = fold_operations(keys)
    assert folded[:2] == (("GET /users/{}", 103), ("GET /prices/{}", 38))
    assert sum(count for _, count in folded) == len(keys)
