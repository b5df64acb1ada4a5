"""Names made from service names: safe, unique where file systems fold case, bounded, stable."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from orchscan.reports.names import ARAZZO_NAMES, FILE_NAMES, unique_labels, unique_names

SAFE_FILE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def test_safe_distinct_names_are_kept_verbatim() -> None:
    assert unique_names(["orders", "mobile-bff", "Catalog.API"], FILE_NAMES) == {
        "orders": "orders",
        "mobile-bff": "mobile-bff",
        "Catalog.API": "Catalog.API",
    }


def test_names_that_sanitise_alike_get_their_own_hashed_suffix() -> None:
    names = unique_names(["team/a", "team-a", "team:a", "team a"], FILE_NAMES)
    assert names["team-a"] == "team-a"
    others = [names[n] for n in ("team/a", "team:a", "team a")]
    assert all(re.fullmatch(r"team-a-[0-9a-f]{8}", n) for n in others)
    assert len(set(names.values())) == 4


def test_names_differing_in_case_collide_on_case_insensitive_file_systems() -> None:
    names = unique_names(["stLogin", "stlogin", "STLOGIN"], FILE_NAMES)
    # The lower-case spelling keeps its name; the others get a suffix.
    assert names["stlogin"] == "stlogin"
    assert re.fullmatch(r"stLogin-[0-9a-f]{8}", names["stLogin"])
    assert re.fullmatch(r"STLOGIN-[0-9a-f]{8}", names["STLOGIN"])
    assert unique_names(["stLogin", "STLOGIN"], FILE_NAMES)["stLogin"] == names["stLogin"]
    # Inside an Arazzo document names are case-sensitive: both stay as they are.
    assert unique_names(["stLogin", "stlogin"], ARAZZO_NAMES) == {"stLogin": "stLogin", "stlogin": "stlogin"}


def test_long_empty_hidden_and_device_names_become_safe_file_names() -> None:
    long = "order-" + "x" * 300
    names = unique_names([long, "", ".env", "CON", "nul.txt", "ü"], FILE_NAMES)
    assert len(names[long]) == FILE_NAMES.max_length and names[long].startswith("order-xxx")
    assert all(SAFE_FILE.fullmatch(name) for name in names.values()), names
    assert not names["CON"].casefold().startswith("con.") and names["CON"] != "CON"


def test_a_name_keeps_its_file_name_whatever_other_names_appear() -> None:
    alone = unique_names(["team/a"], FILE_NAMES)["team/a"]
    crowded = unique_names(["team/a", "team-a", "team:a", "a" * 500], FILE_NAMES)["team/a"]
    assert alone == crowded


def test_labels_are_hashed_by_their_key() -> None:
    labels = {"a/openapi.yaml": "openapi", "b/openapi.yaml": "openapi", "c/orders.json": "orders"}
    names = unique_labels(labels, FILE_NAMES)
    assert names["c/orders.json"] == "orders"
    assert names["a/openapi.yaml"] != names["b/openapi.yaml"]
    assert all(names[k].startswith("openapi-") for k in ("a/openapi.yaml", "b/openapi.yaml"))


def test_a_label_crafted_to_look_hashed_does_not_take_another_name() -> None:
    hashed = unique_names(["team/a"], FILE_NAMES)["team/a"]
    names = unique_names(["team/a", hashed], FILE_NAMES)
    assert names[hashed] == hashed and names["team/a"] != hashed


@given(st.lists(st.text(min_size=0, max_size=300), max_size=12))
def test_any_names_map_to_unique_safe_bounded_file_names(originals: list[str]) -> None:
    names = unique_names(originals, FILE_NAMES)
    assert set(names) == set(originals)
    chosen = list(names.values())
    assert len({n.casefold() for n in chosen}) == len(chosen)
    assert all(SAFE_FILE.fullmatch(n) and len(n) <= FILE_NAMES.max_length for n in chosen), chosen
