"""Entries with very many requests are sampled by trace id: whole traces, about the rate asked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchscan.analyzer.flows.sampling import in_sample, sample_rates

RNG = np.random.default_rng(7)


def _requests(traces: int, per_trace: int = 2) -> pd.DataFrame:
    ids = [f"{RNG.integers(0, 2**63):016x}{RNG.integers(0, 2**63):016x}" for _ in range(traces)]
    return pd.DataFrame(
        {
            "owner": "orders",
            "entry": np.resize(["POST /orders", "GET /orders/{id}"], traces * per_trace),
            "trace_id": np.repeat(ids, per_trace),
        }
    )


def test_only_candidates_above_the_bound_get_a_rate() -> None:
    operations = pd.DataFrame(
        {
            "service": ["orders", "orders", "orders", "cart"],
            "operation": ["POST /orders", "POST /orders", "GET /orders/{id}", "POST /cart"],
            "requests": [30_000.0, 10_000.0, 500.0, 90_000.0],
        }
    )
    candidates = [("orders", "POST /orders"), ("orders", "GET /orders/{id}")]
    assert sample_rates(operations, candidates, 20_000) == {("orders", "POST /orders"): 0.5}


def test_the_sample_keeps_about_the_rate_and_whole_traces() -> None:
    requests = _requests(20_000)
    keep = in_sample(requests, {("orders", "POST /orders"): 0.25, ("orders", "GET /orders/{id}"): 0.25})
    # Every trace's requests are kept or dropped together, whichever entry they belong to.
    assert pd.Series(keep).groupby(requests["trace_id"].to_numpy()).nunique().max() == 1
    share = keep.mean()
    assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 20_000)


def test_an_entry_without_a_rate_is_kept_whole_and_the_choice_is_repeatable() -> None:
    requests = _requests(5_000)
    rates = {("orders", "POST /orders"): 0.1}
    keep = in_sample(requests, rates)
    assert keep[requests["entry"].to_numpy() == "GET /orders/{id}"].all()
    assert not keep[requests["entry"].to_numpy() == "POST /orders"].all()
    shuffled = requests.sample(frac=1.0, random_state=3)
    assert (in_sample(shuffled, rates) == keep[shuffled.index.to_numpy()]).all()
    assert in_sample(requests, {}).all()


def test_a_budget_cuts_the_largest_entries_to_one_level_and_leaves_small_ones_whole() -> None:
    operations = pd.DataFrame(
        {
            "service": ["orders", "orders", "cart", "payments"],
            "operation": ["POST /orders", "GET /orders/{id}", "POST /cart", "POST /payments"],
            "requests": [50_000.0, 1_000.0, 30_000.0, 9_000.0],
        }
    )
    candidates = [
        ("orders", "POST /orders"),
        ("orders", "GET /orders/{id}"),
        ("cart", "POST /cart"),
        ("payments", "POST /payments"),
    ]
    rates = sample_rates(operations, candidates, 20_000, budget=25_000)
    # 1,000 fit; the 24,000 left are shared by the three larger entries: 8,000 each.
    assert rates == {
        ("orders", "POST /orders"): 8_000 / 50_000,
        ("cart", "POST /cart"): 8_000 / 30_000,
        ("payments", "POST /payments"): 8_000 / 9_000,
    }
    assert sum(min(t, 8_000) for t in operations["requests"]) == 25_000
    assert sample_rates(operations, candidates, 20_000, budget=10**9) == {
        ("orders", "POST /orders"): 0.4,
        ("cart", "POST /cart"): 20_000 / 30_000,
    }
